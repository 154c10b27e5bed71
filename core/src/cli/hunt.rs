//! `flushfuzz hunt [--preset NAME]... [--seconds N] [--jobs N] [--seed N] [--json]
//! [--crashes DIR] [--work DIR]`: builds the coverage-instrumented `races` fuzz target itself
//! (stable Rust, no cargo-fuzz), runs a libFuzzer campaign per preset on a copy of the seed
//! corpus, follows it on a live status line, and minimizes what it finds. A race whose signature
//! no trace in `crashes/` has yet is written there as a new trace (never overwriting); either way
//! its timeline and explanation are printed.
//!
//! Exit codes: 0 nothing found, 1 a race found, 2 an error.

use anyhow::{bail, Context as _};
use flushfuzz::corpus::libfuzzer::{parse_line, Line, Progress};
use flushfuzz::corpus::{seed_is_for, RACES_DIR};
use flushfuzz::minimize::Minimized;
use flushfuzz::run::RunOptions;
use flushfuzz::{explain, harness, minimize, preset, trace::Trace, triage};
use std::io::{BufRead as _, IsTerminal as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// The preset of `flushfuzz hunt` without `--preset`.
///
/// gup-anon-alias: a historical race that campaigns found in every trial measured, within
/// seconds (`flushfuzz bench`), and that its `-fixed` twin does not have.
pub const DEFAULT_PRESET: &str = "gup-anon-alias";
/// The time budget of one campaign, in seconds.
pub const DEFAULT_SECONDS: u64 = 60;
/// libFuzzer's seed unless `--seed` is given: fixed, so that campaigns are comparable. They
/// repeat only mostly: libFuzzer also depends on the order it reads the corpus in.
pub const DEFAULT_SEED: u64 = 1;
/// The flags that instrument the fuzz target for libFuzzer on stable Rust (what cargo-fuzz
/// passes, without a sanitizer), less the coverage level ([`Coverage::level`]) and comparison
/// tracing ([`CMP_FLAGS`]).
pub const SANCOV_FLAGS: &str = "-Cpasses=sancov-module \
    -Cllvm-args=-sanitizer-coverage-inline-8bit-counters \
    -Cllvm-args=-sanitizer-coverage-pc-table \
    --cfg fuzzing";

/// What the instrumented target counts for libFuzzer.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
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
    /// The value of `-sanitizer-coverage-level`.
    pub fn level(self) -> u8 {
        match self {
            Coverage::Functions => 1,
            Coverage::Edges => 4,
        }
    }

    /// The name `--coverage` takes.
    pub fn name(self) -> &'static str {
        match self {
            Coverage::Functions => "functions",
            Coverage::Edges => "edges",
        }
    }
}
/// Comparison tracing, added for the `mixed` and `bytes` mutators only. It records the operands
/// of every comparison so that libFuzzer's byte mutators can insert them; the op-level mutator
/// never uses them, and the callbacks cost a third of each execution.
pub const CMP_FLAGS: &str = "-Cllvm-args=-sanitizer-coverage-trace-compares";
/// The cargo profile of the fuzz crate that campaigns build with (`fuzz/Cargo.toml`: release
/// with one codegen unit and fat LTO; cargo-fuzz's own builds use plain release, because LTO
/// breaks their AddressSanitizer link).
pub const HUNT_PROFILE: &str = "hunt";
/// Seconds a campaign may overrun its budget before it is killed.
const GRACE_SECONDS: u64 = 60;

/// Arguments of `hunt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A preset to hunt on (repeat for several; one campaign each). Default: gup-anon-alias.
    #[arg(long = "preset", value_name = "NAME")]
    presets: Vec<String>,
    /// Time budget of each campaign, in seconds (it stops at the first race found).
    #[arg(long, default_value_t = DEFAULT_SECONDS)]
    seconds: u64,
    /// Fuzzing processes (libFuzzer `-fork=N`, which also stops at the first race).
    #[arg(long, default_value_t = 1)]
    jobs: u32,
    /// libFuzzer's random seed; 0 lets libFuzzer pick one. With the fixed default a
    /// single-process campaign usually, not always, repeats (libFuzzer also depends on the order
    /// it reads the corpus in).
    #[arg(long, default_value_t = DEFAULT_SEED)]
    seed: u64,
    /// Print one JSON object per preset: {preset, found, seconds_to_first, execs_to_first,
    /// execs_per_second, signature, minimized_ops, trace, ...}.
    #[arg(long)]
    json: bool,
    /// Where new reproducers go (default: `crashes/` of the project).
    #[arg(long)]
    crashes: Option<PathBuf>,
    /// Work in this folder and keep it (seed copy, libFuzzer's log, crash inputs). By default a
    /// temporary folder is used and removed.
    #[arg(long)]
    work: Option<PathBuf>,
    /// How inputs are mutated: `ops` (op-level mutations and crossover), `mixed` (op-level,
    /// one mutation in eight left to libFuzzer's byte mutator) or `bytes` (libFuzzer's only).
    #[arg(long, default_value = "ops", value_parser = parse_mutator)]
    mutator: harness::Mutator,
    /// What the fuzz target's instrumentation counts: `functions` (function entries, the
    /// cheaper) or `edges` (every control-flow edge, as cargo-fuzz builds it).
    #[arg(long, value_enum, default_value = "functions")]
    coverage: Coverage,
    /// Pass over violations of the race families mainline behaviour has too (see `flushfuzz
    /// triage`; today kernel-alias-stale-after-user-write-back on VIVT), to look beyond them
    /// on a `-fixed` twin.
    #[arg(long)]
    skip_mainline: bool,
    /// Further libFuzzer flags, after `--` (e.g. `-- -use_value_profile=1 -max_len=1024`).
    #[arg(last = true, value_name = "LIBFUZZER_FLAG")]
    libfuzzer: Vec<String>,
}

/// The project root: the nearest folder at or above the current one with `fuzz/Cargo.toml`,
/// else the one this binary was built from.
pub fn project_root() -> anyhow::Result<PathBuf> {
    let is_root = |d: &Path| d.join("fuzz").join("Cargo.toml").is_file();
    if let Ok(cwd) = std::env::current_dir() {
        if let Some(d) = cwd.ancestors().find(|d| is_root(d)) {
            return Ok(d.to_path_buf());
        }
    }
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    match built.parent() {
        Some(d) if is_root(d) => Ok(d.to_path_buf()),
        _ => bail!(
            "cannot find the flushfuzz project (a folder with fuzz/Cargo.toml) at or above the \
             current folder, nor at {}",
            built.display()
        ),
    }
}

/// The host's target triple (the fuzz target is built for it explicitly, so that the
/// instrumentation flags do not reach build scripts and proc macros).
fn host_triple() -> anyhow::Result<String> {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let out = Command::new(&rustc)
        .arg("-vV")
        .output()
        .with_context(|| format!("running `{rustc} -vV`"))?;
    let text = String::from_utf8_lossy(&out.stdout);
    text.lines()
        .find_map(|l| l.strip_prefix("host: "))
        .map(|h| h.trim().to_string())
        .with_context(|| format!("`{rustc} -vV` printed no host triple"))
}

/// Builds the instrumented `races` target for campaigns with `mutator` and `coverage` into
/// `fuzz/target/hunt-<coverage>` (with `-cmp` appended for the byte mutators, which get
/// comparison tracing) and returns its path.
pub fn build_target(
    root: &Path,
    mutator: harness::Mutator,
    coverage: Coverage,
    quiet: bool,
) -> anyhow::Result<PathBuf> {
    let triple = host_triple()?;
    let cmp = mutator != harness::Mutator::Ops;
    let target_dir = root.join("fuzz").join("target").join(format!(
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
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = root.join("fuzz").join("Cargo.toml");
    if !quiet {
        eprintln!(
            "building the instrumented fuzz target into {} (the first build takes a few minutes)",
            target_dir.display()
        );
    }
    let out = Command::new(&cargo)
        .args(["build", "--locked", "--bin", "races"])
        .args(["--profile", HUNT_PROFILE])
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
        .with_context(|| format!("running `{cargo} build` for {}", manifest.display()))?;
    if !out.status.success() {
        bail!(
            "building the fuzz target failed ({}):\n{}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim_end()
        );
    }
    let bin = target_dir.join(&triple).join(HUNT_PROFILE).join("races");
    if !bin.is_file() {
        bail!("the build succeeded but {} is missing", bin.display());
    }
    Ok(bin)
}

/// How a campaign shows its progress.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Show {
    /// A live status line (indicatif) on standard error.
    Bar,
    /// A plain status line every ten seconds on standard error.
    Lines,
    /// Nothing.
    Quiet,
}

impl Show {
    /// The bar on a terminal, plain lines otherwise, nothing for JSON output.
    pub fn choose(json: bool) -> Show {
        if json {
            Show::Quiet
        } else if std::io::stderr().is_terminal() {
            Show::Bar
        } else {
            Show::Lines
        }
    }
}

/// One campaign.
#[derive(Clone, Debug)]
pub struct Campaign {
    /// The preset (`FLUSHFUZZ_PRESET`).
    pub preset: String,
    /// The time budget.
    pub seconds: u64,
    /// libFuzzer processes.
    pub jobs: u32,
    /// libFuzzer's seed (0: its choice).
    pub seed: u64,
    /// Progress display.
    pub show: Show,
    /// A folder to work in and keep; `None`: a temporary one.
    pub work: Option<PathBuf>,
    /// Races found so far by the caller, for the status line.
    pub found_before: usize,
    /// How inputs are mutated (`FLUSHFUZZ_MUTATOR`).
    pub mutator: harness::Mutator,
    /// Pass over violations of families mainline behaviour has too (`FLUSHFUZZ_SKIP_MAINLINE`).
    pub skip_mainline: bool,
    /// Further libFuzzer flags.
    pub extra: Vec<String>,
}

/// Parses a `--mutator` value.
pub fn parse_mutator(name: &str) -> Result<harness::Mutator, String> {
    harness::Mutator::by_name(name).ok_or_else(|| {
        format!(
            "unknown mutator `{name}` (known: {})",
            harness::Mutator::NAMES.join(", ")
        )
    })
}

/// A race a campaign found.
#[derive(Clone, Debug)]
pub struct Found {
    /// Seconds from the start of libFuzzer to the crash.
    pub seconds: f64,
    /// Executions to the crash (in fork mode: finished jobs' plus the crashing job's).
    pub execs: u64,
    /// The crashing input as loaded.
    pub loaded: harness::Loaded,
    /// The minimized input and its signature.
    pub minimized: Minimized,
    /// The violation the minimized input produces on the preset's `-fixed` twin (mainline
    /// behaviour on the same machine), if it has one: `Some(Some(_))` means the race is not a
    /// historical behaviour's but a false positive of the model (or a mainline bug).
    pub on_fixed_twin: Option<Option<String>>,
    /// The race family, if mainline behaviour has it too ([`triage::in_mainline`]): a hole of
    /// mainline rather than a historical race.
    pub mainline_family: Option<String>,
}

impl Found {
    /// Whether the race is one of the preset's historical behaviours: it has a `-fixed` twin
    /// and does not happen there.
    pub fn is_historical(&self) -> bool {
        matches!(self.on_fixed_twin, Some(None))
    }
}

/// The violation `ops` produce on the `-fixed` twin of `preset`, if the preset has a twin.
pub fn on_fixed_twin(preset: &str, ops: &[flushfuzz::op::Op]) -> Option<Option<String>> {
    let twin = preset::by_name(&format!("{preset}-fixed"))?;
    Some(minimize::signature_of(&twin, ops))
}

/// A minimized race reduced further within its family ([`minimize::shorten_in_family`]), with
/// the violation it produces on the `-fixed` twin of `name` ([`on_fixed_twin`]). A shorter input
/// that the twin has too never replaces one the twin does not have: the race stays historical.
pub fn shorten(
    preset: &preset::Preset,
    name: &str,
    m: Minimized,
) -> (Minimized, Option<Option<String>>) {
    let twin = on_fixed_twin(name, &m.ops);
    let s = minimize::shorten_in_family(preset, m.clone());
    if s.ops == m.ops {
        return (s, twin);
    }
    let s_twin = on_fixed_twin(name, &s.ops);
    let historical = |t: &Option<Option<String>>| matches!(t, Some(None));
    if historical(&twin) && !historical(&s_twin) {
        (Minimized { runs: s.runs, ..m }, twin)
    } else {
        (s, s_twin)
    }
}

/// What a campaign did.
#[derive(Clone, Debug)]
pub struct Outcome {
    /// The preset.
    pub preset: String,
    /// Executions in all.
    pub execs: u64,
    /// Wall-clock seconds in all.
    pub seconds: f64,
    /// Coverage reached.
    pub cov: u64,
    /// Corpus size reached.
    pub corpus: u64,
    /// The race, if one was found.
    pub found: Option<Found>,
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

/// The wall clock. The CLI measures wall time; the model never does.
#[allow(clippy::disallowed_methods)]
pub fn now() -> Instant {
    Instant::now()
}

fn thousands(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn status(p: &Progress, secs: f64, found: usize) -> String {
    let rate = if secs > 0.0 {
        p.total_execs() as f64 / secs
    } else {
        0.0
    };
    format!(
        "{} execs, {}/s, cov {}, corpus {}, races {}",
        thousands(p.total_execs()),
        thousands(rate as u64),
        p.cov,
        p.corpus,
        found
    )
}

/// A work folder that removes itself unless it was given.
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

fn copy_seeds(root: &Path, preset: &str, to: &Path) -> anyhow::Result<usize> {
    let from = root.join("corpus").join(RACES_DIR);
    let Ok(rd) = std::fs::read_dir(&from) else {
        eprintln!(
            "warning: no seed corpus at {}; starting from nothing (generate it with `flushfuzz corpus`)",
            from.display()
        );
        return Ok(0);
    };
    let mut n = 0;
    for e in rd {
        let e = e.with_context(|| format!("reading {}", from.display()))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if !e.file_type().is_ok_and(|t| t.is_file()) || !seed_is_for(name, preset) {
            continue;
        }
        std::fs::copy(e.path(), to.join(name))
            .with_context(|| format!("copying {}", e.path().display()))?;
        n += 1;
    }
    Ok(n)
}

/// Runs one campaign of the fuzz target `bin` and minimizes what it finds.
pub fn run_campaign(root: &Path, bin: &Path, c: &Campaign) -> anyhow::Result<Outcome> {
    let work = match &c.work {
        Some(w) => Work {
            dir: w.join(format!("{}-seed{}", c.preset, c.seed)),
            keep: true,
        },
        None => Work {
            dir: std::env::temp_dir().join(format!(
                "flushfuzz-hunt-{}-{}-seed{}",
                std::process::id(),
                c.preset,
                c.seed
            )),
            keep: false,
        },
    };
    if work.dir.exists() {
        std::fs::remove_dir_all(&work.dir)
            .with_context(|| format!("clearing {}", work.dir.display()))?;
    }
    let corpus_dir = work.dir.join("corpus");
    std::fs::create_dir_all(&corpus_dir)
        .with_context(|| format!("creating {}", corpus_dir.display()))?;
    let seeds = copy_seeds(root, &c.preset, &corpus_dir)?;
    let log_path = work.dir.join("libfuzzer.log");
    let mut log = std::io::BufWriter::new(
        std::fs::File::create(&log_path)
            .with_context(|| format!("creating {}", log_path.display()))?,
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
    cmd.env(harness::PRESET_ENV, &c.preset)
        .env(harness::MUTATOR_ENV, c.mutator.name())
        .env(
            harness::SKIP_MAINLINE_ENV,
            if c.skip_mainline { "1" } else { "0" },
        )
        .env("RUST_BACKTRACE", "0")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());

    let bar = match c.show {
        Show::Bar => {
            let b = indicatif::ProgressBar::new_spinner();
            b.set_style(
                indicatif::ProgressStyle::with_template(
                    "{spinner} {prefix} [{elapsed_precise}] {msg}",
                )
                .expect("valid template"),
            );
            b.set_prefix(format!("{} ({} s budget)", c.preset, c.seconds));
            b.enable_steady_tick(Duration::from_millis(200));
            Some(b)
        }
        _ => None,
    };
    if c.show != Show::Quiet {
        let msg = format!(
            "hunting on {} for up to {} s ({} seed inputs, seed {}, {} job(s)) in {}",
            c.preset,
            c.seconds,
            seeds,
            if c.seed > 0 {
                c.seed.to_string()
            } else {
                "random".into()
            },
            c.jobs,
            work.dir.display()
        );
        match &bar {
            Some(b) => b.println(msg),
            None => eprintln!("{msg}"),
        }
    }

    let start = now();
    let mut child = cmd
        .spawn()
        .with_context(|| format!("starting {}", bin.display()))?;
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
    let mut last_print = start;
    let deadline = Duration::from_secs(c.seconds + GRACE_SECONDS);
    let mut killed = false;
    loop {
        match rx.recv_timeout(Duration::from_millis(250)) {
            Ok((t, line)) => {
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
        let found = c.found_before + usize::from(crash_at.is_some());
        if let Some(b) = &bar {
            b.set_message(status(&p, elapsed.as_secs_f64(), found));
        } else if c.show == Show::Lines && last_print.elapsed() >= Duration::from_secs(10) {
            last_print = now();
            eprintln!(
                "  {} [{:.0} s] {}",
                c.preset,
                elapsed.as_secs_f64(),
                status(&p, elapsed.as_secs_f64(), found)
            );
        }
        if elapsed > deadline && !killed {
            let _ = child.kill();
            killed = true;
        }
    }
    let status_code = child.wait().context("waiting for libFuzzer")?;
    let seconds = start.elapsed().as_secs_f64();
    let _ = reader.join();
    let _ = log.flush();
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let mut out = Outcome {
        preset: c.preset.clone(),
        execs: p.total_execs(),
        seconds,
        cov: p.cov,
        corpus: p.corpus,
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
            bail!(
                "libFuzzer on {} overran its {} s budget by {GRACE_SECONDS} s and was killed; its log is {}",
                c.preset,
                c.seconds,
                log_path.display()
            );
        }
        if let Some(e) = &p.error {
            bail!(
                "libFuzzer on {} reported `{e}` but wrote no input; the end of its log:\n{}",
                c.preset,
                tail_text()
            );
        }
        if !status_code.success() {
            bail!(
                "libFuzzer on {} exited with {status_code}; the end of its log:\n{}",
                c.preset,
                tail_text()
            );
        }
        return Ok(out);
    };
    let bytes = harness::read_at_most(&artifact, harness::MAX_INPUT)
        .with_context(|| format!("reading {}", artifact.display()))?;
    let loaded = harness::load_bytes(&bytes, Some(&c.preset))
        .map_err(|e| anyhow::anyhow!("{}: {e}", artifact.display()))?;
    // The input may make the model itself panic (a bug of the model, which libFuzzer reports
    // as a crash too): replay it where a panic is caught, and keep the evidence.
    let minimized = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        minimize::minimize(&loaded.preset, &loaded.ops)
            .map(|m| shorten(&loaded.preset, &c.preset, m))
    }));
    let (m, twin) = match minimized {
        Ok(Some(m)) => m,
        Ok(None) | Err(_) => {
            let mut work = work;
            work.keep = true;
            let what = match &minimized {
                Err(e) => format!(
                    "the model itself panics on it ({}): a bug of the model",
                    e.downcast_ref::<String>()
                        .map(String::as_str)
                        .or_else(|| e.downcast_ref::<&str>().copied())
                        .unwrap_or("no message")
                ),
                _ => "it produces no violation when replayed: a hang?".to_string(),
            };
            let input = work.dir.join("input.trace");
            let _ = std::fs::write(
                &input,
                Trace::new(&loaded.preset, &loaded.ops, None).to_text(&[format!(
                    "the input libFuzzer stopped on ({}), decoded; {what}",
                    artifact.display()
                )]),
            );
            bail!(
                "libFuzzer on {} stopped on {} ({}), but {what}. Kept {} (the input as a trace: \
                 {}); the end of libFuzzer's log:\n{}",
                c.preset,
                artifact.display(),
                p.error.as_deref().unwrap_or("no error line"),
                work.dir.display(),
                input.display(),
                tail_text()
            );
        }
    };
    let mainline_family = flushfuzz::run::run(&loaded.preset, &m.ops, RunOptions::default())
        .violation
        .filter(triage::in_mainline)
        .map(|v| triage::family(&v));
    out.found = Some(Found {
        seconds: crash_at.unwrap_or(seconds),
        execs: p.crash_execs.unwrap_or(p.total_execs()),
        loaded,
        minimized: m,
        on_fixed_twin: twin,
        mainline_family,
    });
    Ok(out)
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
            super::corpus::read_text(p)
                .ok()
                .and_then(|t| Trace::parse(&t).ok())
                .is_some_and(|t| t.expect.as_deref() == Some(signature))
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
pub fn record(crashes: &Path, c: &Campaign, f: &Found) -> anyhow::Result<Recorded> {
    let sig = &f.minimized.signature;
    if let Some(p) = traces_with_signature(crashes, sig).into_iter().next() {
        return Ok(Recorded {
            path: p,
            new: false,
        });
    }
    let base = slug(&c.preset, sig);
    let path = (1..1000)
        .map(|i| {
            crashes.join(if i == 1 {
                format!("{base}.trace")
            } else {
                format!("{base}-{i}.trace")
            })
        })
        .find(|p| !p.exists())
        .context("no free file name")?;
    let trace = Trace::new(&f.loaded.preset, &f.minimized.ops, Some(sig.clone()));
    let how = format!(
        "found by `flushfuzz hunt --preset {} --seed {}{}` after {} executions; minimized from {} to {} ops",
        c.preset,
        c.seed,
        if c.jobs > 1 {
            format!(" --jobs {}", c.jobs)
        } else {
            String::new()
        },
        f.execs,
        f.loaded.ops.len(),
        f.minimized.ops.len()
    );
    super::minimize::write_new(&path, &trace.to_text(&[how]))?;
    Ok(Recorded { path, new: true })
}

/// The timeline and explanation of a minimized race.
pub fn show_race(f: &Found) -> String {
    let l = harness::Loaded {
        preset: f.loaded.preset.clone(),
        ops: f.minimized.ops.clone(),
        expect: None,
        is_trace: true,
    };
    let r = harness::replay(&l);
    let mut s = explain::timeline(&l.preset, &l.ops, &r);
    if let Some(v) = &r.violation {
        s.push('\n');
        s.push_str(&explain::explain(v, &l.preset, &r.actors));
    }
    s
}

/// Checks preset names.
pub fn check_presets(names: &[String]) -> anyhow::Result<()> {
    let known = preset::names();
    for n in names {
        if !known.contains(n) {
            bail!("unknown preset `{n}` (known: {})", known.join(", "));
        }
    }
    Ok(())
}

/// Runs `hunt`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let presets = if a.presets.is_empty() {
        vec![DEFAULT_PRESET.to_string()]
    } else {
        a.presets.clone()
    };
    check_presets(&presets)?;
    if a.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let root = project_root()?;
    let crashes = a.crashes.clone().unwrap_or_else(|| root.join("crashes"));
    let bin = build_target(&root, a.mutator, a.coverage, a.json)?;
    let show = Show::choose(a.json);
    let mut found = 0usize;
    for name in &presets {
        let c = Campaign {
            preset: name.clone(),
            seconds: a.seconds,
            jobs: a.jobs,
            seed: a.seed,
            show,
            work: a.work.clone(),
            found_before: found,
            mutator: a.mutator,
            skip_mainline: a.skip_mainline,
            extra: a.libfuzzer.clone(),
        };
        let o = run_campaign(&root, &bin, &c)?;
        let rec = match &o.found {
            Some(f) => Some(record(&crashes, &c, f)?),
            None => None,
        };
        if o.found.is_some() {
            found += 1;
        }
        if a.json {
            let f = o.found.as_ref();
            let v = serde_json::json!({
                "preset": o.preset,
                "found": f.is_some(),
                "seconds_to_first": f.map(|f| f.seconds),
                "execs_to_first": f.map(|f| f.execs),
                "execs_per_second": o.execs_per_second().round(),
                "signature": f.map(|f| f.minimized.signature.clone()),
                "minimized_ops": f.map(|f| f.minimized.ops.len()),
                "input_ops": f.map(|f| f.loaded.ops.len()),
                "trace": rec.as_ref().map(|r| r.path.display().to_string()),
                "new_trace": rec.as_ref().map(|r| r.new),
                "fixed_twin_signature": f.and_then(|f| f.on_fixed_twin.clone().flatten()),
                "historical": f.map(|f| f.is_historical()),
                "execs": o.execs,
                "seconds": o.seconds,
                "seed": c.seed,
                "jobs": c.jobs,
                "mutator": c.mutator.name(),
                "coverage": a.coverage.name(),
            });
            println!("{v}");
            continue;
        }
        match (&o.found, &rec) {
            (Some(f), Some(r)) => {
                println!(
                    "== {}: race found after {:.1} s and {} executions ({}/s): {}",
                    o.preset,
                    f.seconds,
                    thousands(f.execs),
                    thousands(o.execs_per_second() as u64),
                    f.minimized.signature
                );
                println!(
                    "   minimized from {} to {} ops ({} runs); {} {}",
                    f.loaded.ops.len(),
                    f.minimized.ops.len(),
                    f.minimized.runs,
                    if r.new {
                        "new reproducer written to"
                    } else {
                        "already known as"
                    },
                    r.path.display()
                );
                match (&f.on_fixed_twin, &f.mainline_family) {
                    (_, Some(family)) => println!(
                        "   a hole mainline behaviour has too (race family {family}, a reproducer \
                         is in crashes/): not a historical race; --skip-mainline passes over it"
                    ),
                    (Some(Some(sig)), None) => println!(
                        "   WARNING: it also happens on {}-fixed (mainline behaviour: {sig}): not a \
                         historical race but a false positive of the model or a mainline bug",
                        o.preset
                    ),
                    (Some(None), None) => println!(
                        "   {}-fixed (mainline behaviour) does not have it: a historical race",
                        o.preset
                    ),
                    (None, None) => {}
                }
                println!();
                print!("{}", show_race(f));
                println!("replay with: flushfuzz replay {}", r.path.display());
                println!();
            }
            _ => println!(
                "== {}: nothing found in {} executions, {:.1} s ({}/s, coverage {}, corpus {})",
                o.preset,
                thousands(o.execs),
                o.seconds,
                thousands(o.execs_per_second() as u64),
                o.cov,
                o.corpus
            ),
        }
    }
    Ok(u8::from(found > 0))
}
