//! `flushfuzz verify FILE [--preset NAME | --machine FILE] [--target DIR:NAME]
//! [--preemptions K] [--events E] [-o OUT] [--json]`: keeps the actions of a trace (or raw
//! input) and explores every schedule of them within the bounds: which actor steps next, on
//! which CPU, with at most K preemptions and E injected hardware events. Shows the search on a
//! status line, then either "no violation in any schedule within the bound" or the first
//! violating schedule, minimized, with its timeline, written as a new trace.
//!
//! Exit codes: 0 no violation within the bound, 1 a violation, 2 an error (or schedules cut at
//! the depth limit, which makes the verdict no proof).

use super::ModelArgs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;
use std::time::Duration;

/// Arguments of `verify`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A trace file or a raw fuzzer input: its actions are kept, its schedule is not.
    file: PathBuf,
    /// Run the actions on this preset instead of the file's.
    #[arg(long, conflicts_with = "machine")]
    preset: Option<String>,
    #[command(flatten)]
    models: ModelArgs,
    /// The most preemptions of a running actor in one schedule.
    #[arg(long, short = 'k', default_value_t = 2)]
    preemptions: u32,
    /// The most injected hardware events (speculative fills, evictions) in one schedule.
    #[arg(long, short = 'e', default_value_t = 2)]
    events: u32,
    /// Where to write a violating schedule (default: the first free FILE-STEM.verify.trace,
    /// FILE-STEM.verify-2.trace, ... here).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Print {file, preset, arch, actions, preemptions, events, verdict, schedules, states,
    /// distinct, choices, replays, slept, cached, dead, cut, depth, violation, family,
    /// schedule_ops, minimized_ops, trace, twin, historical, seconds} as JSON (`twin`: what the
    /// model's twin with mainline behaviour makes of the violating schedule; `historical`:
    /// whether the twin lacks its family).
    #[arg(long)]
    json: bool,
}

/// Runs `verify`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let (models, preset) = a.models.resolve(a.preset)?;
    let args = flushfuzz::tool::VerifyArgs {
        preemptions: a.preemptions,
        events: a.events,
        out: a.out,
    };
    let Some(models) = models else {
        let request = flushfuzz::tool::Request::Verify {
            file: a.file,
            preset,
            args,
            json: a.json,
        };
        return super::answer(&a.models, None, &request);
    };
    let start = flushfuzz::campaign::now();
    let bar = std::io::stderr().is_terminal().then(|| {
        let b = ProgressBar::new_spinner();
        b.set_style(
            ProgressStyle::with_template("{spinner} verify [{elapsed_precise}] {msg}")
                .expect("template"),
        );
        b.enable_steady_tick(Duration::from_millis(200));
        b
    });
    let mut progress = |s: &flushfuzz::verify::Stats| {
        if let Some(b) = &bar {
            let secs = start.elapsed().as_secs_f64().max(1e-3);
            b.set_message(format!(
                "{} schedules, {} states ({} distinct so far), {} choices ({:.0}/s), depth {}",
                s.schedules,
                s.states,
                s.states - s.cached.min(s.states),
                s.choices,
                s.choices as f64 / secs,
                s.depth
            ));
        }
    };
    let mut o = flushfuzz::tool::verify(
        &models,
        &a.file,
        preset.as_deref(),
        &args,
        a.json,
        &mut progress,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    let secs = start.elapsed().as_secs_f64();
    if a.json {
        // The library reads no clock: the seconds are the command's.
        if let Ok(mut v) = serde_json::from_str::<serde_json::Value>(o.stdout.trim()) {
            v["seconds"] = serde_json::json!((secs * 1000.0).round() / 1000.0);
            o.stdout = format!("{v}\n");
        }
    } else if o.code != 2 {
        o.stderr.push_str(&format!("verify took {secs:.2} s\n"));
    }
    super::hunt::print_output(&o);
    Ok(o.code)
}
