//! `flushfuzz bench [--trials N] [--seconds N] [--presets NAME...|--machine FILE]
//! [--target DIR:NAME] [--fixed-seconds N] [--fixed-jobs N] [--first-seed N] [--no-random]
//! [--json]`: measures the fuzzer (the shipped target, or one of the user's crate; on the race
//! presets, the given ones, or a machine file). For each
//! race preset, `--trials` single-process `hunt` campaigns with seeds `--first-seed`,
//! `--first-seed`+1, ... each capped at `--seconds`, recording time and executions to the first
//! race, executions per second and the minimized race's length; then the same number of trials
//! of a pure-random baseline with the same seeds and cap (random op sequences run directly, no
//! coverage feedback, see [`flushfuzz::corpus::random_search`]). It prints medians and maxima
//! (a trial that finds nothing counts as longer than the cap), checks the targets, and
//! finally runs each race's `-fixed` twin and `coherent` for `--fixed-seconds` with
//! `--fixed-jobs` processes, where nothing may be found. Every campaign passes over the race
//! families mainline behaviour has too (`hunt --skip-mainline`): they are neither the
//! historical races measured nor false positives.
//!
//! Exit codes: 0 measured (targets met or not), 1 a `-fixed` twin or `coherent` had a
//! violation (a false positive of the model), 2 an error.

use super::hunt::{self, Show};
use flushfuzz::campaign::{self, Campaign, Coverage, Source};
use flushfuzz::corpus::random_search;
use flushfuzz::harness::RACE_PRESETS;
use flushfuzz::trace::Trace;
use flushfuzz::{minimize, preset};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trials per preset and mode.
    #[arg(long, default_value_t = 3)]
    trials: u32,
    /// The cap of one trial, in seconds (guided and random alike).
    #[arg(long, default_value_t = 30)]
    seconds: u64,
    /// The race presets to measure (default: all five).
    #[arg(long, num_args = 1.., value_name = "NAME")]
    presets: Vec<String>,
    /// Budget of each `-fixed` twin and `coherent` run, in seconds (0: skip them).
    #[arg(long, default_value_t = 60)]
    fixed_seconds: u64,
    /// Fuzzing processes for the `-fixed` twin and `coherent` runs.
    #[arg(long, default_value_t = 2)]
    fixed_jobs: u32,
    /// The seed of the first trial; trial i uses first-seed + i.
    #[arg(long, default_value_t = 1)]
    first_seed: u64,
    /// Skip the random baseline.
    #[arg(long)]
    no_random: bool,
    /// Print one JSON object with every trial, the summary and the fixed-twin runs.
    #[arg(long)]
    json: bool,
    /// How guided campaigns mutate inputs: `ops`, `mixed` or `bytes` (see `hunt --mutator`).
    #[arg(long, default_value = "ops", value_parser = hunt::parse_mutator)]
    mutator: flushfuzz::harness::Mutator,
    /// What guided campaigns' instrumentation counts: `functions` or `edges` (see
    /// `hunt --coverage`).
    #[arg(long, default_value = "functions", value_parser = hunt::parse_coverage)]
    coverage: Coverage,
    /// Measure on a machine file (`flushfuzz presets --show NAME` prints one) instead of the
    /// race presets, with the shipped arch it names.
    #[arg(long, value_name = "FILE", conflicts_with = "presets")]
    machine: Option<PathBuf>,
    /// Measure a fuzz target of your own crate, DIR:NAME, on its presets (`--presets`, or each
    /// input choosing, as `hunt --target` does). The random baseline runs models in this
    /// process and is skipped: a target's arch and paths live in its crate.
    #[arg(long, value_name = "DIR:NAME")]
    target: Option<String>,
    /// Further libFuzzer flags for every campaign, after `--`.
    #[arg(last = true, value_name = "LIBFUZZER_FLAG")]
    libfuzzer: Vec<String>,
}

/// One trial.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Trial {
    /// The preset.
    pub preset: String,
    /// `guided` (libFuzzer) or `random`.
    pub mode: &'static str,
    /// The seed.
    pub seed: u64,
    /// Whether a historical race (one the `-fixed` twin does not have; any race on a model
    /// without a twin) was found within the cap.
    pub found: bool,
    /// A violation that stopped the trial but also happens on the `-fixed` twin: a false
    /// positive of the model.
    pub false_positive: Option<String>,
    /// Seconds to the first race (or the whole trial's seconds if none).
    pub seconds: f64,
    /// Executions to the first race (or in all if none).
    pub execs: u64,
    /// Executions per second over the trial.
    pub execs_per_second: f64,
    /// The race's signature.
    pub signature: Option<String>,
    /// Ops of the input that found it.
    pub input_ops: Option<usize>,
    /// Ops after minimization.
    pub minimized_ops: Option<usize>,
}

/// The median of values where `None` (not found) is larger than everything.
fn median(v: &[Option<f64>]) -> Option<f64> {
    if v.is_empty() {
        return None;
    }
    let mut s: Vec<f64> = v.iter().map(|x| x.unwrap_or(f64::INFINITY)).collect();
    s.sort_by(f64::total_cmp);
    let n = s.len();
    let m = if n % 2 == 1 {
        s[n / 2]
    } else {
        (s[n / 2 - 1] + s[n / 2]) / 2.0
    };
    m.is_finite().then_some(m)
}

fn max(v: &[Option<f64>]) -> Option<f64> {
    v.iter()
        .try_fold(0f64, |m, x| x.map(|x| m.max(x)))
        .filter(|_| !v.is_empty())
}

/// A summary of a preset's trials in one mode.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Summary {
    /// The preset.
    pub preset: String,
    /// `guided` or `random`.
    pub mode: &'static str,
    /// Trials that found a race.
    pub found: usize,
    /// Trials stopped by a false positive (a violation the `-fixed` twin has too).
    pub false_positives: usize,
    /// Trials.
    pub trials: usize,
    /// Median seconds to the first race (`None`: more than the cap).
    pub median_seconds: Option<f64>,
    /// Maximum seconds (`None`: some trial found nothing).
    pub max_seconds: Option<f64>,
    /// Median executions to the first race.
    pub median_execs: Option<f64>,
    /// Maximum executions.
    pub max_execs: Option<f64>,
    /// Median executions per second over the trials that lasted at least a second.
    pub median_execs_per_second: Option<f64>,
    /// Largest minimized race, in ops.
    pub max_minimized_ops: Option<usize>,
    /// Ops of the hand-written reproducer `crashes/<preset>.trace`, if there is one.
    pub hand_written_ops: Option<usize>,
}

fn summarize(preset: &str, mode: &'static str, t: &[&Trial], hand: Option<usize>) -> Summary {
    let secs: Vec<Option<f64>> = t.iter().map(|t| t.found.then_some(t.seconds)).collect();
    let execs: Vec<Option<f64>> = t
        .iter()
        .map(|t| t.found.then_some(t.execs as f64))
        .collect();
    // Rates of trials shorter than a second mostly measure libFuzzer's start-up.
    let rates: Vec<Option<f64>> = t
        .iter()
        .filter(|t| t.seconds >= 1.0)
        .map(|t| Some(t.execs_per_second))
        .collect();
    Summary {
        preset: preset.into(),
        mode,
        found: t.iter().filter(|t| t.found).count(),
        false_positives: t.iter().filter(|t| t.false_positive.is_some()).count(),
        trials: t.len(),
        median_seconds: median(&secs),
        max_seconds: max(&secs),
        median_execs: median(&execs),
        max_execs: max(&execs),
        median_execs_per_second: median(&rates),
        max_minimized_ops: t.iter().filter_map(|t| t.minimized_ops).max(),
        hand_written_ops: hand,
    }
}

fn hand_written_ops(root: &Path, preset: &str) -> Option<usize> {
    let text =
        super::corpus::read_text(&root.join("crashes").join(format!("{preset}.trace"))).ok()?;
    Some(Trace::parse(&text).ok()?.ops.len())
}

/// One guided campaign, `c` (single process).
fn guided_trial(bin: &Path, c: Campaign, show: Show) -> anyhow::Result<Trial> {
    let (preset, seed) = (c.label(), c.seed);
    let o = hunt::run_shown(bin, &c, show, 0)?;
    let h = o.found.as_ref();
    let f = h.map(|h| &h.found);
    Ok(Trial {
        preset,
        mode: "guided",
        seed,
        found: f.is_some_and(|f| f.is_historical() || f.twin == flushfuzz::tool::Twin::None),
        false_positive: f
            .filter(|f| !f.is_historical() && f.twin != flushfuzz::tool::Twin::None)
            .map(|f| f.signature.clone()),
        seconds: h.map_or(o.seconds, |h| h.seconds),
        execs: h.map_or(o.execs, |h| h.execs),
        execs_per_second: o.execs_per_second(),
        signature: f.map(|f| f.signature.clone()),
        input_ops: f.map(|f| f.input_ops),
        minimized_ops: f.map(|f| f.minimized_ops),
    })
}

fn random_trial(p: &preset::Preset, seed: u64, seconds: u64) -> Trial {
    let preset = p.name.as_str();
    let cap = Duration::from_secs(seconds);
    let start = campaign::now();
    let (execs, hit) = random_search(p, seed, |_| start.elapsed() < cap);
    let elapsed = start.elapsed().as_secs_f64();
    let model = flushfuzz::model::shipped_cached(p);
    let m = hit
        .as_ref()
        .and_then(|h| minimize::minimize(&*model, &h.ops))
        .map(|m| flushfuzz::tool::shorten(&*model, m));
    let historical = m.as_ref().is_some_and(|(m, twin)| {
        let v = model.run(&m.ops, Default::default()).violation;
        let family = v.map(|v| flushfuzz::triage::family(&v)).unwrap_or_default();
        *twin == flushfuzz::tool::Twin::None || twin.lacks(&family)
    });
    let m = m.map(|(m, _)| m);
    Trial {
        preset: preset.into(),
        mode: "random",
        seed,
        found: historical,
        false_positive: m
            .as_ref()
            .filter(|_| !historical)
            .map(|m| m.signature.clone()),
        seconds: elapsed,
        execs,
        execs_per_second: if elapsed > 0.0 {
            execs as f64 / elapsed
        } else {
            0.0
        },
        signature: hit.as_ref().map(|h| h.signature.clone()),
        input_ops: hit.as_ref().map(|h| h.ops.len()),
        minimized_ops: m.map(|m| m.ops.len()),
    }
}

fn fmt_opt(v: Option<f64>, cap: &str, digits: usize) -> String {
    match v {
        Some(x) => format!("{x:.digits$}"),
        None => format!(">{cap}"),
    }
}

/// A fixed twin's or coherent's run.
#[derive(Clone, Debug, serde::Serialize)]
pub struct FixedRun {
    /// The preset.
    pub preset: String,
    /// Executions.
    pub execs: u64,
    /// Seconds.
    pub seconds: f64,
    /// Processes.
    pub jobs: u32,
    /// What was found (a false positive of the model).
    pub signature: Option<String>,
    /// The minimized trace, as text.
    pub trace: Option<String>,
}

/// Runs `bench`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if a.trials == 0 || a.seconds == 0 {
        anyhow::bail!("--trials and --seconds must be at least 1");
    }
    if a.fixed_jobs == 0 {
        anyhow::bail!("--fixed-jobs must be at least 1");
    }
    let source = match &a.target {
        Some(t) => Source::parse_target(t)?,
        None => Source::Shipped {
            root: hunt::project_root()?,
        },
    };
    let shipped = matches!(source, Source::Shipped { .. });
    // The machine file, read now for a clear error (the target reads it again).
    let machine = match &a.machine {
        Some(m) => Some(preset::load_machine(m)?),
        None => None,
    };
    if let (true, Some(m)) = (shipped, &machine) {
        if flushfuzz::model::shipped(m).is_none() {
            anyhow::bail!(
                "{}: arch `{}` is not shipped (known: {}); bench your own arch in a fuzz target \
                 of your crate (--target DIR:NAME)",
                a.machine.as_ref().expect("machine").display(),
                m.arch,
                flushfuzz::model::SHIPPED_ARCHES.join(", ")
            );
        }
    }
    // What each trial runs on: a preset, or the machine file (`None`), or each input choosing
    // among the target's presets (`None` too).
    let presets: Vec<Option<String>> = if !a.presets.is_empty() {
        if shipped {
            hunt::check_presets(&a.presets)?;
        }
        a.presets.iter().cloned().map(Some).collect()
    } else if machine.is_some() || !shipped {
        vec![None]
    } else {
        RACE_PRESETS.iter().map(|s| Some(s.to_string())).collect()
    };
    let bin = campaign::build(&source, a.mutator, a.coverage, &mut |msg| {
        if !a.json {
            eprintln!("{msg}");
        }
    })?;
    let seed_dir: PathBuf = source.seed_dir();
    let show = if !a.json && std::io::IsTerminal::is_terminal(&std::io::stderr()) {
        Show::Bar
    } else {
        Show::Quiet
    };
    let say = |s: String| {
        if !a.json {
            eprintln!("{s}");
        }
    };
    // Every campaign of the bench: single-process unless given jobs, mainline families passed
    // over, in a temporary folder.
    let campaign =
        |preset: Option<&str>, seconds: u64, jobs: u32, seed: u64| -> anyhow::Result<Campaign> {
            Ok(Campaign {
                preset: preset.map(str::to_string),
                machine: a.machine.clone(),
                seconds,
                jobs,
                seed,
                work: None,
                mutator: a.mutator,
                skip_mainline: true,
                keep_families: Vec::new(),
                seeds: campaign::seeds_in(&seed_dir, preset)?,
                extra: a.libfuzzer.clone(),
            })
        };
    if !shipped && !a.no_random {
        say(
            "note: no random baseline for a target of your own (its models live in its crate)"
                .into(),
        );
    }
    let mut trials: Vec<Trial> = Vec::new();
    let mut labels: Vec<String> = Vec::new();
    for p in &presets {
        let mut label = String::new();
        for i in 0..a.trials {
            let seed = a.first_seed + i as u64;
            let t = guided_trial(&bin, campaign(p.as_deref(), a.seconds, 1, seed)?, show)?;
            say(trial_line(&t, i, a.trials));
            label = t.preset.clone();
            trials.push(t);
        }
        labels.push(label.clone());
        // The random baseline runs the shipped model of the preset or machine in this process.
        let random_on = match (p, &machine) {
            _ if !shipped || a.no_random => None,
            (Some(p), _) => preset::by_name(p),
            (None, Some(m)) => Some(m.clone()),
            (None, None) => None,
        };
        if let Some(rp) = random_on {
            for i in 0..a.trials {
                let seed = a.first_seed + i as u64;
                let mut t = random_trial(&rp, seed, a.seconds);
                t.preset = label.clone();
                say(trial_line(&t, i, a.trials));
                trials.push(t);
            }
        }
    }
    let mut summaries = Vec::new();
    for p in &labels {
        let hand = match &source {
            Source::Shipped { root } if machine.is_none() => hand_written_ops(root, p),
            _ => None,
        };
        for mode in ["guided", "random"] {
            let t: Vec<&Trial> = trials
                .iter()
                .filter(|t| t.preset == *p && t.mode == mode)
                .collect();
            if !t.is_empty() {
                summaries.push(summarize(p, mode, &t, hand));
            }
        }
    }

    let mut fixed_runs = Vec::new();
    if a.fixed_seconds > 0 && !(shipped && machine.is_none()) {
        say("note: no -fixed twin runs on a machine file or a target of your own".into());
    } else if a.fixed_seconds > 0 {
        let mut names: Vec<String> = labels
            .iter()
            .map(|p| format!("{p}-fixed"))
            .filter(|n| preset::by_name(n).is_some())
            .collect();
        names.push("coherent".into());
        for n in names {
            let c = campaign(Some(&n), a.fixed_seconds, a.fixed_jobs, a.first_seed)?;
            let o = hunt::run_shown(&bin, &c, show, 0)?;
            let f = o.found.as_ref().map(|h| &h.found);
            let r = FixedRun {
                preset: n,
                execs: o.execs,
                seconds: o.seconds,
                jobs: a.fixed_jobs,
                signature: f.map(|f| f.signature.clone()),
                trace: f.map(|f| {
                    flushfuzz::trace::with_comment(
                        &f.trace,
                        &format!(
                            "found by `flushfuzz bench` (seed {}, {} jobs)",
                            a.first_seed, a.fixed_jobs
                        ),
                    )
                }),
            };
            say(match &r.signature {
                None => format!(
                    "{}: 0 found in {} execs ({:.0} s, {} jobs)",
                    r.preset, r.execs, r.seconds, r.jobs
                ),
                Some(s) => format!("{}: FOUND {s}", r.preset),
            });
            fixed_runs.push(r);
        }
    }
    let false_positive = fixed_runs.iter().any(|r| r.signature.is_some());

    if a.json {
        let v = serde_json::json!({
            "trials_per_preset": a.trials,
            "mutator": a.mutator.name(),
            "coverage": a.coverage.name(),
            "seconds_cap": a.seconds,
            "trials": trials,
            "summary": summaries,
            "fixed": fixed_runs,
            "targets": targets(&summaries, &fixed_runs, a.seconds),
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(u8::from(false_positive));
    }
    print_table(&summaries, a.seconds);
    println!(
        "(found: trials that found a historical race, one the -fixed twin does not have; fp: trials \
         stopped first by a violation the -fixed twin has too; medians count a miss as longer than \
         the {} s cap; execs/s: median over trials of at least 1 s; ops: the longest minimized race \
         vs crashes/<preset>.trace; campaigns pass over the families mainline has too)",
        a.seconds
    );
    if !fixed_runs.is_empty() {
        println!();
        println!("-fixed twins and coherent (nothing may be found):");
        for r in &fixed_runs {
            match (&r.signature, &r.trace) {
                (Some(s), Some(t)) => {
                    println!(
                        "  {}: FOUND {s} after {} execs; minimized trace:",
                        r.preset, r.execs
                    );
                    for l in t.lines() {
                        println!("    {l}");
                    }
                }
                _ => println!(
                    "  {}: 0 found in {} execs ({:.0} s, {} jobs, {:.0} execs/s)",
                    r.preset,
                    r.execs,
                    r.seconds,
                    r.jobs,
                    r.execs as f64 / r.seconds.max(1e-9)
                ),
            }
        }
    }
    println!();
    println!("targets:");
    for (name, ok, detail) in targets(&summaries, &fixed_runs, a.seconds) {
        println!(
            "  [{}] {name}: {detail}",
            match ok {
                Some(true) => "met",
                Some(false) => "MISSED",
                None => "n/a",
            }
        );
    }
    Ok(u8::from(false_positive))
}

fn trial_line(t: &Trial, i: u32, n: u32) -> String {
    let head = format!(
        "{} {} trial {}/{} (seed {})",
        t.preset,
        t.mode,
        i + 1,
        n,
        t.seed
    );
    let ops = format!(
        "{} -> {} ops",
        t.input_ops.unwrap_or(0),
        t.minimized_ops.map_or("?".into(), |m| m.to_string())
    );
    match (&t.signature, &t.false_positive) {
        (_, Some(fp)) => format!(
            "{head}: stopped by a violation the -fixed twin has too (a false positive) after {:.2} s, {} execs ({:.0}/s); {ops}: {fp}",
            t.seconds, t.execs, t.execs_per_second
        ),
        (Some(s), None) => format!(
            "{head}: found after {:.2} s, {} execs ({:.0}/s); {ops}: {s}",
            t.seconds, t.execs, t.execs_per_second
        ),
        (None, None) => format!(
            "{head}: nothing in {:.1} s, {} execs ({:.0}/s)",
            t.seconds, t.execs, t.execs_per_second
        ),
    }
}

fn print_table(s: &[Summary], cap: u64) {
    let cap_s = cap.to_string();
    println!(
        "{:<18} {:<7} {:>6} {:>4} {:>9} {:>9} {:>12} {:>12} {:>9} {:>10}",
        "preset",
        "mode",
        "found",
        "fp",
        "median s",
        "max s",
        "median execs",
        "max execs",
        "execs/s",
        "ops (hand)"
    );
    for r in s {
        println!(
            "{:<18} {:<7} {:>6} {:>4} {:>9} {:>9} {:>12} {:>12} {:>9} {:>10}",
            r.preset,
            r.mode,
            format!("{}/{}", r.found, r.trials),
            r.false_positives,
            fmt_opt(r.median_seconds, &cap_s, 2),
            fmt_opt(r.max_seconds, &cap_s, 2),
            fmt_opt(r.median_execs, "cap", 0),
            fmt_opt(r.max_execs, "cap", 0),
            r.median_execs_per_second
                .map_or("-".into(), |x| format!("{x:.0}")),
            format!(
                "{} ({})",
                r.max_minimized_ops.map_or("-".into(), |m| m.to_string()),
                r.hand_written_ops.map_or("-".into(), |m| m.to_string())
            ),
        );
    }
}

/// The targets: (name, met (None: not measured), detail).
fn targets(s: &[Summary], fixed: &[FixedRun], cap: u64) -> Vec<(String, Option<bool>, String)> {
    let guided: Vec<&Summary> = s.iter().filter(|r| r.mode == "guided").collect();
    let random = |p: &str| s.iter().find(|r| r.mode == "random" && r.preset == p);
    let mut out = Vec::new();
    let list =
        |f: &dyn Fn(&Summary) -> String| guided.iter().map(|r| f(r)).collect::<Vec<_>>().join(", ");
    out.push((
        "each race found in every trial".to_string(),
        Some(guided.iter().all(|r| r.found == r.trials)),
        list(&|r| format!("{} {}/{}", r.preset, r.found, r.trials)),
    ));
    out.push((
        "median time to first race <= 10 s on one core".to_string(),
        Some(
            guided
                .iter()
                .all(|r| r.median_seconds.is_some_and(|m| m <= 10.0)),
        ),
        list(&|r| {
            format!(
                "{} {} s",
                r.preset,
                fmt_opt(r.median_seconds, &cap.to_string(), 2)
            )
        }),
    ));
    // A race is found in well under a second, too soon for a steady rate: its `-fixed` twin
    // (the same machine, campaigned for the full budget) gives one, per process.
    let rate = |r: &Summary| -> Option<(f64, &'static str)> {
        r.median_execs_per_second.map(|x| (x, "")).or_else(|| {
            let twin = format!("{}-fixed", r.preset);
            fixed
                .iter()
                .find(|f| f.preset == twin && f.seconds >= 1.0)
                .map(|f| {
                    let per_core = f.execs as f64 / f.seconds / f64::from(f.jobs.max(1));
                    (per_core, " (its -fixed twin)")
                })
        })
    };
    out.push((
        ">= 100k execs/s per core".to_string(),
        if guided.iter().all(|r| rate(r).is_none()) {
            None
        } else {
            Some(
                guided
                    .iter()
                    .filter_map(|r| rate(r))
                    .all(|(x, _)| x >= 100_000.0),
            )
        },
        list(&|r| {
            format!(
                "{} {}",
                r.preset,
                rate(r).map_or("- (no trial or twin run lasted 1 s)".into(), |(x, how)| {
                    format!("{x:.0}{how}")
                })
            )
        }),
    ));
    out.push((
        "minimized races no longer than the hand-written reproducers".to_string(),
        if guided.iter().any(|r| r.hand_written_ops.is_none()) {
            None
        } else {
            Some(guided.iter().all(|r| {
                r.max_minimized_ops
                    .is_some_and(|m| Some(m) <= r.hand_written_ops)
            }))
        },
        list(&|r| {
            format!(
                "{} {} vs {}",
                r.preset,
                r.max_minimized_ops.map_or("-".into(), |m| m.to_string()),
                r.hand_written_ops.map_or("-".into(), |m| m.to_string())
            )
        }),
    ));
    out.push((
        "-fixed twins and coherent find nothing".to_string(),
        (!fixed.is_empty()).then(|| fixed.iter().all(|r| r.signature.is_none())),
        fixed
            .iter()
            .map(|r| {
                format!(
                    "{} {} in {} execs",
                    r.preset,
                    if r.signature.is_some() { "FOUND" } else { "0" },
                    r.execs
                )
            })
            .collect::<Vec<_>>()
            .join(", "),
    ));
    // The hardest race: the largest median in either mode (a race never found is hardest).
    let slowest = |h: &&Summary| {
        let r = random(&h.preset).map_or(Some(0.0), |r| r.median_seconds);
        match (h.median_seconds, r) {
            (Some(g), Some(r)) => g.max(r),
            _ => f64::INFINITY,
        }
    };
    let hardest = guided
        .iter()
        .max_by(|a, b| slowest(a).total_cmp(&slowest(b)));
    let (ok, detail) = match hardest.map(|h| (h, random(&h.preset))) {
        Some((h, Some(r))) => match (h.median_seconds, r.median_seconds) {
            (Some(g), Some(rs)) => (
                Some(rs >= 10.0 * g),
                format!(
                    "{}: guided median {g:.2} s, random median {rs:.2} s ({:.1}x)",
                    h.preset,
                    rs / g.max(1e-9)
                ),
            ),
            (Some(g), None) => (
                if cap as f64 >= 10.0 * g {
                    Some(true)
                } else {
                    None
                },
                format!(
                    "{}: guided median {g:.2} s, random median > {cap} s (at least {:.1}x)",
                    h.preset,
                    cap as f64 / g.max(1e-9)
                ),
            ),
            (None, _) => (
                Some(false),
                format!("{}: the guided median exceeds the {cap} s cap", h.preset),
            ),
        },
        _ => (None, "random baseline not run".into()),
    };
    out.push((
        "guided >= 10x faster than random on the hardest race".to_string(),
        ok,
        detail,
    ));
    out
}
