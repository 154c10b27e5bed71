//! `flushfuzz hunt [--preset NAME]... [--machine FILE] [--target DIR:NAME] [--seconds N]
//! [--jobs N] [--seed N] [--json] [--crashes DIR] [--work DIR]`: the front end of the campaign
//! engine ([`flushfuzz::campaign`]): builds the coverage-instrumented fuzz target (the shipped
//! `races`, or a target of the user's own crate), runs a libFuzzer campaign per preset on a copy
//! of its seeds, follows it on a live status line, and prints what the target reports of the
//! race it finds (minimized, checked on its `-fixed` twin, explained). A race whose signature no
//! trace in the crashes folder has yet is written there as a new trace (never overwriting).
//!
//! Exit codes: 0 nothing found, 1 a race found, 2 an error.

use anyhow::bail;
use flushfuzz::campaign::{self, Campaign, Coverage, Event, Outcome, Source};
use flushfuzz::harness::Mutator;
use flushfuzz::tool::Twin;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The preset of `flushfuzz hunt` on the shipped target without `--preset` or `--machine`.
///
/// gup-anon-alias: a historical race that campaigns found in every trial measured, within
/// seconds (`flushfuzz bench`), and that its `-fixed` twin does not have.
pub const DEFAULT_PRESET: &str = "gup-anon-alias";
/// The time budget of one campaign, in seconds.
pub const DEFAULT_SECONDS: u64 = 60;
/// libFuzzer's seed unless `--seed` is given: fixed, so that campaigns are comparable. They
/// repeat only mostly: libFuzzer also depends on the order it reads the corpus in.
pub const DEFAULT_SEED: u64 = 1;

/// Arguments of `hunt`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A preset to hunt on (repeat for several; one campaign each). Default on the shipped
    /// target: gup-anon-alias; on a target of your own: each input chooses among its presets.
    #[arg(long = "preset", value_name = "NAME")]
    presets: Vec<String>,
    /// A machine file (see `flushfuzz presets --show NAME`) to hunt on instead of a preset:
    /// the shipped target runs the shipped arch it names, a target of your own its own arch
    /// and paths.
    #[arg(long, value_name = "FILE", conflicts_with = "presets")]
    machine: Option<PathBuf>,
    /// A fuzz target of your own crate instead of the shipped one: DIR:NAME, the crate's
    /// folder and a `[[bin]]` that is a `flushfuzz::fuzz_target!` shim. Its finds are
    /// minimized, explained and recorded with its own arch, paths and machine.
    #[arg(long, value_name = "DIR:NAME")]
    target: Option<String>,
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
    /// Print one JSON object per campaign: {preset, found, seconds_to_first, execs_to_first,
    /// execs_per_second, signature, minimized_ops, trace, paths_reached, reach, ...}.
    #[arg(long)]
    json: bool,
    /// Where new reproducers go (default: `crashes/` of the project, or of your crate).
    #[arg(long)]
    crashes: Option<PathBuf>,
    /// Work in this folder and keep it (seed copy, libFuzzer's log, crash inputs). By default a
    /// temporary folder is used and removed.
    #[arg(long)]
    work: Option<PathBuf>,
    /// How inputs are mutated: `ops` (op-level mutations and crossover), `mixed` (op-level,
    /// one mutation in eight left to libFuzzer's byte mutator) or `bytes` (libFuzzer's only).
    #[arg(long, default_value = "ops", value_parser = parse_mutator)]
    mutator: Mutator,
    /// What the fuzz target's instrumentation counts: `functions` (function entries, the
    /// cheaper) or `edges` (every control-flow edge, as cargo-fuzz builds it).
    #[arg(long, default_value = "functions", value_parser = parse_coverage)]
    coverage: Coverage,
    /// Pass over violations of the race families mainline behaviour has too (those `flushfuzz
    /// triage` marks as mainline, listed in the README), to look beyond them on a `-fixed`
    /// twin.
    #[arg(long)]
    skip_mainline: bool,
    /// With --skip-mainline, a mainline family not to pass over all the same (repeatable), for a
    /// bug whose race falls into a family mainline has on other machines.
    #[arg(
        long = "keep-family",
        value_name = "FAMILY",
        requires = "skip_mainline"
    )]
    keep_families: Vec<String>,
    /// Further libFuzzer flags, after `--` (e.g. `-- -use_value_profile=1 -max_len=1024`).
    #[arg(last = true, value_name = "LIBFUZZER_FLAG")]
    libfuzzer: Vec<String>,
}

/// Parses a `--mutator` value.
pub fn parse_mutator(name: &str) -> Result<Mutator, String> {
    Mutator::by_name(name).ok_or_else(|| {
        format!(
            "unknown mutator `{name}` (known: {})",
            Mutator::NAMES.join(", ")
        )
    })
}

/// Parses a `--coverage` value.
pub fn parse_coverage(name: &str) -> Result<Coverage, String> {
    Coverage::by_name(name).ok_or_else(|| {
        format!(
            "unknown coverage `{name}` (known: {})",
            Coverage::NAMES.join(", ")
        )
    })
}

/// The project root (see [`campaign::project_root`]).
pub fn project_root() -> anyhow::Result<PathBuf> {
    let built = Path::new(env!("CARGO_MANIFEST_DIR"));
    Ok(campaign::project_root(built.parent())?)
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

fn status_text(st: &campaign::Status, found: usize) -> String {
    let paths = match st.paths {
        (_, 0) => String::new(),
        (r, n) => format!(", paths {r}/{n}"),
    };
    format!(
        "{} execs, {}/s, cov {}, corpus {}{paths}, races {}",
        thousands(st.execs),
        thousands(st.rate() as u64),
        st.cov,
        st.corpus,
        found
    )
}

/// Runs one campaign, showing its progress as `show` says.
pub fn run_shown(
    bin: &Path,
    c: &Campaign,
    show: Show,
    found_before: usize,
) -> anyhow::Result<Outcome> {
    let label = c.label();
    let bar = (show == Show::Bar).then(|| {
        let b = indicatif::ProgressBar::new_spinner();
        b.set_style(
            indicatif::ProgressStyle::with_template("{spinner} {prefix} [{elapsed_precise}] {msg}")
                .expect("valid template"),
        );
        b.set_prefix(format!("{label} ({} s budget)", c.seconds));
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut last_print = 0.0f64;
    let mut on = |e: Event| match e {
        Event::Started(msg) => match (&bar, show) {
            (Some(b), _) => b.println(msg),
            (None, Show::Lines) => eprintln!("{msg}"),
            _ => {}
        },
        Event::Status(st) => {
            let found = found_before + usize::from(st.crashed);
            if let Some(b) = &bar {
                b.set_message(status_text(&st, found));
            } else if show == Show::Lines && st.seconds - last_print >= 10.0 {
                last_print = st.seconds;
                eprintln!(
                    "  {label} [{:.0} s] {}",
                    st.seconds,
                    status_text(&st, found)
                );
            }
        }
    };
    let o = campaign::run(bin, c, &mut on);
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    Ok(o?)
}

/// Checks preset names against the shipped ones.
pub fn check_presets(names: &[String]) -> anyhow::Result<()> {
    let known = flushfuzz::preset::names();
    for n in names {
        if !known.contains(n) {
            bail!("unknown preset `{n}` (known: {})", known.join(", "));
        }
    }
    Ok(())
}

/// The JSON of a campaign's outcome.
fn outcome_json(
    o: &Outcome,
    c: &Campaign,
    rec: Option<&campaign::Recorded>,
    coverage: Coverage,
    target: &Source,
) -> serde_json::Value {
    let h = o.found.as_ref();
    let f = h.map(|h| &h.found);
    let (reached, known) = o.reach.reached();
    serde_json::json!({
        "preset": o.label,
        "target": target.name(),
        "found": h.is_some(),
        "seconds_to_first": h.map(|h| h.seconds),
        "execs_to_first": h.map(|h| h.execs),
        "execs_per_second": o.execs_per_second().round(),
        "signature": f.map(|f| f.signature.clone()),
        "family": f.map(|f| f.family.clone()),
        "minimized_ops": f.map(|f| f.minimized_ops),
        "input_ops": f.map(|f| f.input_ops),
        "trace": rec.map(|r| r.path.display().to_string()),
        "new_trace": rec.map(|r| r.new),
        "fixed_twin_signature": f.and_then(|f| f.twin.signature()),
        "twin": f.map(|f| f.twin_name.clone()),
        "historical": f.map(|f| f.is_historical()),
        "mainline_family": f.and_then(|f| f.mainline_family.clone()),
        "execs": o.execs,
        "seconds": o.seconds,
        "seed": c.seed,
        "jobs": c.jobs,
        "mutator": c.mutator.name(),
        "coverage": coverage.name(),
        "paths_reached": reached,
        "paths": known,
        "reach": o.reach.paths,
    })
}

/// Runs `hunt`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if a.seconds == 0 {
        bail!("--seconds must be at least 1");
    }
    if a.jobs == 0 {
        bail!("--jobs must be at least 1");
    }
    let (source, default_crashes) = match &a.target {
        Some(t) => {
            let s = Source::parse_target(t)?;
            let Source::Crate { dir, .. } = &s else {
                unreachable!("a target is a crate")
            };
            let crashes = dir.join("crashes");
            (s, crashes)
        }
        None => {
            let root = project_root()?;
            (Source::Shipped { root: root.clone() }, root.join("crashes"))
        }
    };
    let shipped = matches!(source, Source::Shipped { .. });
    if shipped {
        check_presets(&a.presets)?;
    }
    if let Some(m) = &a.machine {
        // Read it now for a clear error; the target reads it again.
        flushfuzz::preset::load_machine(m)?;
    }
    let presets: Vec<Option<String>> = match (&a.machine, a.presets.is_empty(), shipped) {
        (Some(_), _, _) => vec![None],
        (None, true, true) => vec![Some(DEFAULT_PRESET.to_string())],
        (None, true, false) => vec![None],
        (None, false, _) => a.presets.iter().cloned().map(Some).collect(),
    };
    let crashes = a.crashes.clone().unwrap_or(default_crashes);
    let bin = campaign::build(&source, a.mutator, a.coverage, &mut |msg| {
        if !a.json {
            eprintln!("{msg}");
        }
    })?;
    let show = Show::choose(a.json);
    let mut found = 0usize;
    for preset in presets {
        let seeds = campaign::seeds_in(&source.seed_dir(), preset.as_deref())?;
        if seeds.is_empty() && !a.json {
            eprintln!(
                "note: no seed inputs in {}; starting from nothing",
                source.seed_dir().display()
            );
        }
        let c = Campaign {
            preset,
            machine: a.machine.clone(),
            seconds: a.seconds,
            jobs: a.jobs,
            seed: a.seed,
            work: a.work.clone(),
            mutator: a.mutator,
            skip_mainline: a.skip_mainline,
            keep_families: a.keep_families.clone(),
            seeds,
            extra: a.libfuzzer.clone(),
        };
        let o = run_shown(&bin, &c, show, found)?;
        let how = format!(
            "found by `flushfuzz hunt {}--seed {}{}`",
            match (&c.preset, &c.machine) {
                (Some(p), _) => format!("--preset {p} "),
                (None, Some(m)) => format!("--machine {} ", m.display()),
                (None, None) => String::new(),
            },
            c.seed,
            if c.jobs > 1 {
                format!(" --jobs {}", c.jobs)
            } else {
                String::new()
            },
        );
        let rec = match &o.found {
            Some(h) => Some(campaign::record(&crashes, h, &how)?),
            None => None,
        };
        if o.found.is_some() {
            found += 1;
        }
        if a.json {
            println!(
                "{}",
                outcome_json(&o, &c, rec.as_ref(), a.coverage, &source)
            );
            continue;
        }
        let (reached, known) = o.reach.reached();
        match (&o.found, &rec) {
            (Some(h), Some(r)) => {
                let f = &h.found;
                println!(
                    "== {}: race found after {:.1} s and {} executions ({}/s): {}",
                    f.preset,
                    h.seconds,
                    thousands(h.execs),
                    thousands(o.execs_per_second() as u64),
                    f.signature
                );
                println!(
                    "   minimized from {} to {} ops ({} runs); {} {}",
                    f.input_ops,
                    f.minimized_ops,
                    f.runs,
                    if r.new {
                        "new reproducer written to"
                    } else {
                        "already known as"
                    },
                    r.path.display()
                );
                match (&f.twin, &f.mainline_family) {
                    (_, Some(family)) => println!(
                        "   a hole mainline behaviour has too (race family {family}, a reproducer \
                         is in crashes/): not a historical race; --skip-mainline passes over it"
                    ),
                    (Twin::Violation { signature, family }, None) if !f.is_historical() => {
                        println!(
                            "   WARNING: it also happens on its twin {} (mainline behaviour: \
                             {signature}, race family {family}): not a historical race but a \
                             false positive of the model or a mainline bug",
                            f.twin_name
                        )
                    }
                    (Twin::Violation { family, .. }, None) => println!(
                        "   its twin {} (mainline behaviour) runs it into another mechanism (race \
                         family {family}), not this one: a historical race",
                        f.twin_name
                    ),
                    (Twin::Clean, None) => println!(
                        "   its twin {} (mainline behaviour) does not have it: a historical race",
                        f.twin_name
                    ),
                    (Twin::None, None) => {}
                }
                println!();
                print!("{}", f.shown);
                println!(
                    "replay with: flushfuzz replay {}{}",
                    match &a.target {
                        Some(t) => format!("--target {t} "),
                        None => String::new(),
                    },
                    r.path.display()
                );
                println!();
            }
            _ => println!(
                "== {}: nothing found in {} executions, {:.1} s ({}/s, coverage {}, corpus {}, \
                 {reached} of {known} kernel paths reached)",
                o.label,
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

/// The target of `--target DIR:NAME`, built as `hunt` builds it, for the commands that run
/// inputs in it; progress lines go to standard error.
pub fn built_target(target: &str) -> anyhow::Result<PathBuf> {
    let source = Source::parse_target(target)?;
    Ok(campaign::build(
        &source,
        Mutator::Ops,
        Coverage::Functions,
        &mut |msg| eprintln!("{msg}"),
    )?)
}

/// Runs `request` in the target of `--target` and passes its output on; returns its exit code.
pub fn in_target(
    target: &str,
    machine: Option<&Path>,
    request: &flushfuzz::tool::Request,
) -> anyhow::Result<u8> {
    let bin = built_target(target)?;
    let mut o = campaign::ask(&bin, request, machine)?;
    // The target does not know it is one: its hints name the command as the shipped tool
    // would run it, which must run it in the target again (and on the same machine file).
    let how = match machine {
        Some(m) => format!(
            "flushfuzz replay --target {target} --machine {} ",
            m.display()
        ),
        None => format!("flushfuzz replay --target {target} "),
    };
    o.stdout = o.stdout.replace("flushfuzz replay ", &how);
    o.stderr = o.stderr.replace("flushfuzz replay ", &how);
    print_output(&o);
    Ok(o.code)
}

/// Prints a command's output.
pub fn print_output(o: &flushfuzz::tool::Output) {
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(o.stdout.as_bytes());
    let _ = std::io::stderr().write_all(o.stderr.as_bytes());
}
