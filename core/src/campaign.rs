//! The campaign engine: builds a fuzz target with libFuzzer's coverage instrumentation (stable
//! Rust, no cargo-fuzz), runs a libFuzzer campaign on a copy of its seeds, follows its output,
//! stops at the first violation, and has the target itself report what it found ([`Found`]:
//! minimized, checked on its twin, explained), then records it as a trace. `flushfuzz hunt`
//! and `bench` are front ends of it; a user's crate runs the same campaign on its own fuzz
//! target ([`Source::Crate`]), whose arch, paths and machine the CLI does not know: every run
//! after the campaign happens inside the target, in tool mode ([`crate::tool::serve`]).
//!
//! This module and the command line are the only ones that read clocks: the model never does.
//! It knows nothing of terminals; progress goes to a callback.

use crate::corpus::libfuzzer::{parse_line, Line, Progress};
use crate::harness::{self, Mutator};
use crate::tool::{self, Found, Request};
use std::collections::BTreeMap;
use std::io::BufRead as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// What went wrong around a campaign (not a finding).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Error(pub String);

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Error {}

macro_rules! fail {
    ($($t:tt)*) => { return Err(Error(format!($($t)*))) };
}

/// The flags that instrument a fuzz target for libFuzzer on stable Rust (what cargo-fuzz
/// passes, without a sanitizer), less the coverage level ([`Coverage::level`]) and comparison
/// tracing ([`CMP_FLAGS`]).
pub const SANCOV_FLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    --cfg fuzzing";

/// Comparison tracing, added for the `mixed` and `bytes` mutators only. It records the operands
/// of every comparison so that libFuzzer's byte mutators can insert them; the op-level mutator
/// never uses them, and the callbacks cost a third of each execution.
pub const CMP_FLAGS: &str = "-Cllvm-args=-sanitizer-coverage-trace-compares";

/// Seconds a campaign may overrun its budget before it is killed.
pub const GRACE_SECONDS: u64 = 60;

/// What the instrumented target counts for libFuzzer.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Coverage {
    /// Entries of each function left after inlining (about 550 counters), with libFuzzer's
    /// hit-count buckets: how often each kernel path, flush API and cache primitive ran.
    /// Executions cost far less, and on the five races campaigns find them at least as fast as
    /// with edges.
    Functions,
    /// Every edge of the control flow (about 19,000 counters), what cargo-fuzz instruments:
    /// finer feedback at several times the cost per execution.
    Edges,
}

impl Coverage {
    /// The names `--coverage` takes.
    pub const NAMES: [&'static str; 2] = ["functions", "edges"];

    /// The value of `-sanitizer-coverage-level`.
    pub fn level(self) -> u8 {
        match self {
            Coverage::Functions => 1,
            Coverage::Edges => 4,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Coverage::Functions => "functions",
            Coverage::Edges => "edges",
        }
    }

    /// The coverage called `name`.
    pub fn by_name(name: &str) -> Option<Coverage> {
        match name {
            "functions" => Some(Coverage::Functions),
            "edges" => Some(Coverage::Edges),
            _ => None,
        }
    }
}

/// Where a fuzz target comes from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Source {
    /// The shipped `races` target of the flushfuzz project at this root.
    Shipped {
        /// The project root (with `fuzz/Cargo.toml`).
        root: PathBuf,
    },
    /// A fuzz target of a user's crate: the crate's folder (with its `Cargo.toml`) and the
    /// target's binary name (a `[[bin]]` whose source is a [`crate::fuzz_target!`] shim).
    Crate {
        /// The crate's folder.
        dir: PathBuf,
        /// The binary.
        bin: String,
    },
}

impl Source {
    /// Parses `DIR:NAME` (a user's fuzz crate and target).
    pub fn parse_target(s: &str) -> Result<Source, Error> {
        match s.rsplit_once(':') {
            Some((dir, bin)) if !dir.is_empty() && !bin.is_empty() => Ok(Source::Crate {
                dir: PathBuf::from(dir),
                bin: bin.into(),
            }),
            _ => fail!("`{s}`: a target is DIR:NAME (a fuzz crate's folder and a target of it)"),
        }
    }

    /// The crate folder and binary name.
    fn crate_and_bin(&self) -> (PathBuf, &str) {
        match self {
            Source::Shipped { root } => (root.join("fuzz"), "races"),
            Source::Crate { dir, bin } => (dir.clone(), bin),
        }
    }

    /// The target's name, for messages.
    pub fn name(&self) -> String {
        match self {
            Source::Shipped { .. } => "races".into(),
            Source::Crate { dir, bin } => format!("{}:{bin}", dir.display()),
        }
    }

    /// The target's own seed folder: `corpus/races/` of the project, or `corpus/NAME/` of the
    /// user's crate.
    pub fn seed_dir(&self) -> PathBuf {
        match self {
            Source::Shipped { root } => root.join("corpus").join(crate::corpus::RACES_DIR),
            Source::Crate { dir, bin } => dir.join("corpus").join(bin),
        }
    }
}

/// The project root: the nearest folder at or above the current one with `fuzz/Cargo.toml`,
/// else `fallback` (where the binary was built from) if it is one.
pub fn project_root(fallback: Option<&Path>) -> Result<PathBuf, Error> {
    let is_root = |d: &Path| d.join("fuzz").join("Cargo.toml").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(d) = cwd.ancestors().find(|d| is_root(d)) {
            return Ok(d.to_path_buf());
        }
    }
    match fallback {
        Some(d) if is_root(d) => Ok(d.to_path_buf()),
        _ => fail!(
            "cannot find the flushfuzz project (a folder with fuzz/Cargo.toml) at or above the \
             current folder{}",
            fallback.map_or(String::new(), |d| format!(", nor at {}", d.display()))
        ),
    }
}

/// The host's target triple (the fuzz target is built for it explicitly, so that the
/// instrumentation flags do not reach build scripts and proc macros).
fn host_triple() -> Result<String, Error> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .map_err(|e| Error(format!("running `{rustc} -vV`: {e}")))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .ok_or_else(|| Error(format!("`{rustc} -vV` printed no host triple")))
}

/// The cargo profile campaigns build targets with: the crate's `hunt` profile if it defines
/// one (the shipped crate does: one codegen unit and fat LTO), else `release`.
fn profile(manifest: &Path) -> &'static str {
    let text = std::fs::read_to_string(manifest).unwrap_or_default();
    if text.lines().any(|l| l.trim() == "[profile.hunt]") {
        "hunt"
    } else {
        "release"
    }
}

/// Builds the instrumented target for campaigns with `mutator` and `coverage` into
/// `<crate>/target/hunt-<coverage>` (with `-cmp` appended for the byte mutators, which get
/// comparison tracing) and returns its path. `say` gets a line before a build starts.
pub fn build(
    source: &Source,
    mutator: Mutator,
    coverage: Coverage,
    say: &mut dyn FnMut(String),
) -> Result<PathBuf, Error> {
    let triple = host_triple()?;
    let (dir, bin) = source.crate_and_bin();
    let manifest = dir.join("Cargo.toml");
    if !manifest.is_file() {
        fail!("{}: no such fuzz crate", manifest.display());
    }
    let cmp = mutator != Mutator::Ops;
    let target_dir = dir.join("target").join(format!(
        "hunt-{}{}",
        coverage.name(),
        if cmp { "-cmp" } else { "" }
    ));
    let mut flags = format!(
        "{SANCOV_FLAGS} -Cllvm-args=-sanitizer-coverage-level={}",
        coverage.level()
    );
    if cmp {
        flags = format!("{flags} {CMP_FLAGS}");
    }
    let profile = profile(&manifest);
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    say(format!(
        "building the instrumented fuzz target {} into {} (the first build takes a few minutes)",
        source.name(),
        target_dir.display()
    ));
    let out = Command::new(&cargo)
        .args(["build", "--profile", profile, "--bin", bin])
        .args(dir.join("Cargo.lock").is_file().then_some("--locked"))
        .arg("--manifest-path")
        .arg(&manifest)
        .arg("--target")
        .arg(&triple)
        .arg("--target-dir")
        .arg(&target_dir)
        .env("RUSTFLAGS", &flags)
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_RUSTFLAGS")
        .stdin(Stdio::null())
        .output()
        .map_err(|e| {
            Error(format!(
                "running `{cargo} build` for {}: {e}",
                manifest.display()
            ))
        })?;
    if !out.status.success() {
        fail!(
            "building the fuzz target {} failed ({}):\n{}",
            source.name(),
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let dir_name = if profile == "release" {
        "release"
    } else {
        profile
    };
    let path = target_dir.join(&triple).join(dir_name).join(bin);
    if !path.is_file() {
        fail!("the build succeeded but {} is missing", path.display());
    }
    Ok(path)
}

/// One campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The preset to fix (`FLUSHFUZZ_PRESET`: one of the target's models, or for the shipped
    /// target any shipped preset); `None` lets each input choose.
    pub preset: Option<String>,
    /// A machine file to fix instead (`FLUSHFUZZ_MACHINE`).
    pub machine: Option<PathBuf>,
    /// The time budget, in seconds.
    pub seconds: u64,
    /// libFuzzer processes (`-fork=N` above 1).
    pub jobs: u32,
    /// libFuzzer's seed (0: its choice).
    pub seed: u64,
    /// A folder to work in and keep; `None`: a temporary one.
    pub work: Option<PathBuf>,
    /// How inputs are mutated (`FLUSHFUZZ_MUTATOR`).
    pub mutator: Mutator,
    /// Pass over violations of families mainline behaviour has too (`FLUSHFUZZ_SKIP_MAINLINE`).
    pub skip_mainline: bool,
    /// Mainline families not passed over all the same (`FLUSHFUZZ_KEEP_FAMILIES`): where the
    /// bug looked for falls into a family mainline has on other machines.
    pub keep_families: Vec<String>,
    /// Seed inputs copied into the campaign's corpus.
    pub seeds: Vec<PathBuf>,
    /// Further libFuzzer flags.
    pub extra: Vec<String>,
}

impl Campaign {
    /// What the campaign runs on, for messages and file names: the preset, the machine file's
    /// stem, or `any`.
    pub fn label(&self) -> String {
        match (&self.preset, &self.machine) {
            (Some(p), _) => p.clone(),
            (None, Some(m)) => m
                .file_stem()
                .map_or("machine".into(), |s| s.to_string_lossy().into_owned()),
            (None, None) => "any".into(),
        }
    }
}

/// The seed files of `dir` meant for `preset` (the shipped corpus names its files after the
/// preset they were made for; a file named after no preset is for any); none if `dir` does not
/// exist.
pub fn seeds_in(dir: &Path, preset: Option<&str>) -> Result<Vec<PathBuf>, Error> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Ok(Vec::new());
    };
    let mut v = Vec::new();
    for e in rd {
        let e = e.map_err(|e| Error(format!("reading {}: {e}", dir.display())))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !e.file_type().is_ok_and(|t| t.is_file()) || name.starts_with('.') {
            continue;
        }
        if preset.is_none_or(|p| crate::corpus::seed_is_for(name, p)) {
            v.push(e.path());
        }
    }
    v.sort();
    Ok(v)
}

/// What a campaign's progress callback hears.
#[derive(Clone, Debug)]
pub enum Event {
    /// The campaign starts: a line saying what it runs.
    Started(String),
    /// A status update (every quarter of a second or so).
    Status(Status),
}

/// A campaign's status.
#[derive(Clone, Debug, Default)]
pub struct Status {
    /// Seconds since libFuzzer started.
    pub seconds: f64,
    /// Executions so far.
    pub execs: u64,
    /// Coverage.
    pub cov: u64,
    /// Corpus size.
    pub corpus: u64,
    /// Kernel paths reached so far, and how many the target has.
    pub paths: (usize, usize),
    /// Whether libFuzzer has stopped on a crash.
    pub crashed: bool,
}

impl Status {
    /// Executions per second.
    pub fn rate(&self) -> f64 {
        if self.seconds > 0.0 {
            self.execs as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// How many executions started each kernel path, summed over the target's processes.
#[derive(Clone, Debug, Default, PartialEq, Eq, serde::Serialize)]
pub struct Reach {
    /// Executions the counts cover (the processes' last saves).
    pub execs: u64,
    /// Executions that started each path, by name.
    pub paths: BTreeMap<String, u64>,
}

impl Reach {
    /// Reads the reach files a target wrote into `dir` ([`harness::STATS_ENV`]).
    pub fn read(dir: &Path) -> Reach {
        let mut r = Reach::default();
        let Ok(rd) = std::fs::read_dir(dir) else {
            return r;
        };
        for e in rd.flatten() {
            let p = e.path();
            if p.extension().is_none_or(|x| x != "json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&p) else {
                continue;
            };
            let Ok(v) = serde_json::from_str::<serde_json::Value>(&text) else {
                continue;
            };
            r.execs += v["execs"].as_u64().unwrap_or(0);
            if let Some(m) = v["paths"].as_object() {
                for (k, n) in m {
                    *r.paths.entry(k.clone()).or_default() += n.as_u64().unwrap_or(0);
                }
            }
        }
        r
    }

    /// Paths reached at least once, and paths known.
    pub fn reached(&self) -> (usize, usize) {
        (
            self.paths.values().filter(|&&n| n > 0).count(),
            self.paths.len(),
        )
    }
}

/// What a campaign did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// What it ran on ([`Campaign::label`]).
    pub label: String,
    /// Executions in all.
    pub execs: u64,
    /// Wall-clock seconds in all.
    pub seconds: f64,
    /// Coverage reached.
    pub cov: u64,
    /// Corpus size reached.
    pub corpus: u64,
    /// How many executions started each path.
    pub reach: Reach,
    /// The race, if one was found.
    pub found: Option<Hit>,
}

impl Outcome {
    /// Executions per second over the whole campaign.
    pub fn execs_per_second(&self) -> f64 {
        if self.seconds > 0.0 {
            self.execs as f64 / self.seconds
        } else {
            0.0
        }
    }
}

/// A race a campaign found: when, and what the target reported of it.
#[derive(Clone, Debug)]
pub struct Hit {
    /// Seconds from the start of libFuzzer to the crash.
    pub seconds: f64,
    /// Executions to the crash (in fork mode: finished jobs' plus the crashing job's).
    pub execs: u64,
    /// The crash input libFuzzer wrote.
    pub input: PathBuf,
    /// The target's report.
    pub found: Found,
}

/// The wall clock. Campaigns and the command line measure wall time; the model never does.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

/// A work folder that removes itself unless it was given or must be kept.
struct Work {
    dir: PathBuf,
    keep: bool,
}

impl Drop for Work {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// Runs one campaign of the target `bin`, and has the target report what it finds.
pub fn run(bin: &Path, c: &Campaign, on: &mut dyn FnMut(Event)) -> Result<Outcome, Error> {
    let label = c.label();
    let io = |what: String| move |e: std::io::Error| Error(format!("{what}: {e}"));
    let mut work = match &c.work {
        Some(w) => Work {
            dir: w.join(format!("{label}-seed{}", c.seed)),
            keep: true,
        },
        None => Work {
            dir: std::env::temp_dir().join(format!(
                "flushfuzz-hunt-{}-{label}-seed{}",
                std::process::id(),
                c.seed
            )),
            keep: false,
        },
    };
    if work.dir.exists() {
        std::fs::remove_dir_all(&work.dir)
            .map_err(io(format!("clearing {}", work.dir.display())))?;
    }
    let corpus_dir = work.dir.join("corpus");
    let stats_dir = work.dir.join("stats");
    for d in [&corpus_dir, &stats_dir] {
        std::fs::create_dir_all(d).map_err(io(format!("creating {}", d.display())))?;
    }
    for s in &c.seeds {
        let name = s.file_name().unwrap_or_default();
        std::fs::copy(s, corpus_dir.join(name)).map_err(io(format!("copying {}", s.display())))?;
    }
    let log_path = work.dir.join("libfuzzer.log");
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&log_path).map_err(io(format!("creating {}", log_path.display())))?,
    );

    let mut cmd = Command::new(bin);
    cmd.arg(&corpus_dir)
        .arg(format!("-max_total_time={}", c.seconds))
        .arg("-len_control=0")
        // libFuzzer's corpus reduction swaps entries for shorter inputs with the same features:
        // a search of the parent's features for each feature of each execution, and a file
        // rewrite for each swap. Inputs are at most 32 ops and races are minimized op by op
        // afterwards; without it campaigns run about 6% more executions per second and find
        // the five races as fast (`flushfuzz bench`). `-- -reduce_inputs=1` turns it back on.
        .arg("-reduce_inputs=0")
        .arg("-timeout=10")
        .arg(format!("-artifact_prefix={}/", work.dir.display()))
        .arg("-print_final_stats=1");
    if c.seed > 0 {
        cmd.arg(format!("-seed={}", c.seed));
    }
    if c.jobs > 1 {
        cmd.arg(format!("-fork={}", c.jobs))
            .arg("-ignore_crashes=0");
    }
    cmd.args(&c.extra);
    cmd.env_remove(harness::PRESET_ENV)
        .env_remove(harness::MACHINE_ENV)
        .env_remove(tool::TOOL_ENV);
    if let Some(p) = &c.preset {
        cmd.env(harness::PRESET_ENV, p);
    }
    if let Some(m) = &c.machine {
        cmd.env(harness::MACHINE_ENV, m);
    }
    cmd.env(harness::MUTATOR_ENV, c.mutator.name())
        .env(
            harness::SKIP_MAINLINE_ENV,
            if c.skip_mainline { "1" } else { "0" },
        )
        .env(harness::KEEP_FAMILIES_ENV, c.keep_families.join(","))
        .env(harness::STATS_ENV, &stats_dir)
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());

    on(Event::Started(format!(
        "hunting on {label} for up to {} s ({} seed inputs, seed {}, {} job(s)) in {}",
        c.seconds,
        c.seeds.len(),
        if c.seed > 0 {
            c.seed.to_string()
        } else {
            "random".into()
        },
        c.jobs,
        work.dir.display()
    )));

    let start = now();
    let mut child = cmd
        .spawn()
        .map_err(io(format!("starting {}", bin.display())))?;
    let stderr = child.stderr.take().expect("piped stderr");
    let (tx, rx) = mpsc::channel::<(Instant, String)>();
    let reader = std::thread::spawn(move || {
        let r = std::io::BufReader::new(stderr);
        for line in r.split(b'\n') {
            let Ok(line) = line else { break };
            if tx
                .send((now(), String::from_utf8_lossy(&line).into_owned()))
                .is_err()
            {
                break;
            }
        }
    });

    let mut p = Progress::default();
    let mut crash_at: Option<f64> = None;
    let mut tail: std::collections::VecDeque<String> = Default::default();
    let deadline = Duration::from_secs(c.seconds + GRACE_SECONDS);
    let mut killed = false;
    let mut reach = Reach::default();
    let mut last_reach = start;
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok((t, line)) => {
                use std::io::Write as _;
                let _ = writeln!(log, "{line}");
                if tail.len() == 40 {
                    tail.pop_front();
                }
                tail.push_back(line.clone());
                if let Some(l) = parse_line(&line) {
                    if crash_at.is_none()
                        && matches!(
                            l,
                            Line::Error(_) | Line::Violation { .. } | Line::Artifact(_)
                        )
                    {
                        crash_at = Some(t.duration_since(start).as_secs_f64());
                    }
                    p.feed(&l);
                }
            }
            Err(mpsc::RecvTimeoutError::Timeout) => {}
            Err(mpsc::RecvTimeoutError::Disconnected) => break,
        }
        let elapsed = start.elapsed();
        if last_reach.elapsed() >= Duration::from_secs(1) {
            last_reach = now();
            reach = Reach::read(&stats_dir);
        }
        on(Event::Status(Status {
            seconds: elapsed.as_secs_f64(),
            execs: p.total_execs(),
            cov: p.cov,
            corpus: p.corpus,
            paths: reach.reached(),
            crashed: crash_at.is_some(),
        }));
        if elapsed > deadline && !killed {
            let _ = child.kill();
            killed = true;
        }
    }
    let status_code = child.wait().map_err(io("waiting for libFuzzer".into()))?;
    let seconds = start.elapsed().as_secs_f64();
    let _ = reader.join();
    {
        use std::io::Write as _;
        let _ = log.flush();
    }
    let mut out = Outcome {
        label: label.clone(),
        execs: p.total_execs(),
        seconds,
        cov: p.cov,
        corpus: p.corpus,
        reach: Reach::read(&stats_dir),
        found: None,
    };
    let tail_text = || tail.iter().cloned().collect::<Vec<_>>().join("\n");

    // The crash input: the one libFuzzer named, else any it left in the work folder.
    let mut artifact = p.artifact.as_ref().map(PathBuf::from);
    if artifact.is_none() {
        let mut left: Vec<PathBuf> = std::fs::read_dir(&work.dir)
            .map(|rd| {
                rd.filter_map(|e| e.ok().map(|e| e.path()))
                    .filter(|p| {
                        p.file_name().and_then(|n| n.to_str()).is_some_and(|n| {
                            ["crash-", "timeout-", "oom-", "leak-"]
                                .iter()
                                .any(|k| n.starts_with(k))
                        })
                    })
                    .collect()
            })
            .unwrap_or_default();
        left.sort();
        artifact = left.into_iter().next();
    }
    let Some(artifact) = artifact else {
        if killed {
            fail!(
                "libFuzzer on {label} overran its {} s budget by {GRACE_SECONDS} s and was killed; its log is {}",
                c.seconds,
                log_path.display()
            );
        }
        if let Some(e) = &p.error {
            fail!(
                "libFuzzer on {label} reported `{e}` but wrote no input; the end of its log:\n{}",
                tail_text()
            );
        }
        if !status_code.success() {
            fail!(
                "libFuzzer on {label} exited with {status_code}; the end of its log:\n{}",
                tail_text()
            );
        }
        return Ok(out);
    };
    // The target reports the race itself, with its own arch, paths and machine. A panic of the
    // model on the input (a bug of the model, which libFuzzer reports as a crash too) ends that
    // report with an error: keep the evidence.
    let request = Request::Report {
        file: artifact.clone(),
        preset: c.preset.clone(),
    };
    let answer = ask(bin, &request, c.machine.as_deref())?;
    let found = match answer.code {
        0 => serde_json::from_str::<Found>(answer.stdout.trim()).map_err(|e| {
            Error(format!(
                "the target's report of {} is not a report ({e}): {}",
                artifact.display(),
                answer.stdout
            ))
        })?,
        _ => {
            work.keep = true;
            let what = match answer.stderr.lines().find(|l| l.contains("panicked")) {
                Some(l) => format!(
                    "the model itself panics on it ({}): a bug of the model",
                    l.trim()
                ),
                None => answer.stderr.trim().to_string(),
            };
            fail!(
                "libFuzzer on {label} stopped on {} ({}), but {what}. Kept {}; the end of \
                 libFuzzer's log:\n{}",
                artifact.display(),
                p.error.as_deref().unwrap_or("no error line"),
                work.dir.display(),
                tail_text()
            );
        }
    };
    out.found = Some(Hit {
        seconds: crash_at.unwrap_or(seconds),
        execs: p.crash_execs.unwrap_or(p.total_execs()),
        input: artifact,
        found,
    });
    Ok(out)
}

/// Asks the target `bin` in tool mode ([`crate::tool::serve`]), with the machine file a
/// campaign fixed, if any.
pub fn ask(bin: &Path, request: &Request, machine: Option<&Path>) -> Result<tool::Output, Error> {
    let mut cmd = Command::new(bin);
    cmd.env(
        tool::TOOL_ENV,
        serde_json::to_string(request).expect("serializes"),
    )
    .env_remove(harness::PRESET_ENV)
    .env_remove(harness::MACHINE_ENV)
    .env("RUST_BACKTRACE", "0")
    .stdin(Stdio::null());
    if let Some(m) = machine {
        cmd.env(harness::MACHINE_ENV, m);
    }
    let out = cmd
        .output()
        .map_err(|e| Error(format!("starting {}: {e}", bin.display())))?;
    // libFuzzer looks for sanitizer hooks before the target's tool mode starts, and says so
    // when the target was built without a sanitizer: not the command's output.
    let stderr: String = String::from_utf8_lossy(&out.stderr)
        .split_inclusive('\n')
        .filter(|l| !l.starts_with("WARNING: Failed to find function \"__sanitizer"))
        .collect();
    Ok(tool::Output {
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr,
        code: out.status.code().map_or(2, |c| c.clamp(0, 255) as u8),
    })
}

/// The traces in `dir` whose `expect` line is `signature`, sorted.
pub fn traces_with_signature(dir: &Path, signature: &str) -> Vec<PathBuf> {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut out: Vec<PathBuf> = rd
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().and_then(|x| x.to_str()) == Some("trace"))
        .filter(|p| {
            std::fs::read_to_string(p)
                .ok()
                .and_then(|t| crate::trace::header(&t).ok())
                .is_some_and(|(_, expect)| expect.as_deref() == Some(signature))
        })
        .collect();
    out.sort();
    out
}

/// A file-name slug of a preset and a signature.
pub fn slug(preset: &str, signature: &str) -> String {
    let mut s = String::new();
    for c in format!("{preset}-{signature}").chars() {
        if c.is_ascii_alphanumeric() {
            s.push(c.to_ascii_lowercase());
        } else if !s.ends_with('-') {
            s.push('-');
        }
    }
    let mut s = s.trim_matches('-').to_string();
    s.truncate(96);
    s.trim_end_matches('-').to_string()
}

/// Where a found race's trace is: an existing one with its signature, or a new file.
#[derive(Clone, Debug)]
pub struct Recorded {
    /// The trace file.
    pub path: PathBuf,
    /// Whether this campaign wrote it.
    pub new: bool,
}

/// Writes the minimized race to `crashes` unless a trace there has its signature already.
/// `how` is a comment saying how it was found.
pub fn record(crashes: &Path, hit: &Hit, how: &str) -> Result<Recorded, Error> {
    let f = &hit.found;
    if let Some(p) = traces_with_signature(crashes, &f.signature)
        .into_iter()
        .next()
    {
        return Ok(Recorded {
            path: p,
            new: false,
        });
    }
    let base = slug(&f.preset, &f.signature);
    let path = (1..1000)
        .map(|i| {
            crashes.join(if i == 1 {
                format!("{base}.trace")
            } else {
                format!("{base}-{i}.trace")
            })
        })
        .find(|p| !p.exists())
        .ok_or_else(|| Error("no free file name".into()))?;
    let text = crate::trace::with_comment(
        &f.trace,
        &format!(
            "{how} after {} executions; minimized from {} to {} ops",
            hit.execs, f.input_ops, f.minimized_ops
        ),
    );
    tool::write_new(&path, &text).map_err(Error)?;
    Ok(Recorded { path, new: true })
}
