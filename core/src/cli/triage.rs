//! `flushfuzz triage PATH... [--out DIR] [--preset NAME] [--json]`: sorts crashing inputs
//! (libFuzzer artifacts or trace files; folders are searched recursively) into race families,
//! minimizes the smallest input of each family, and writes it to `--out` as a new trace unless
//! a trace of that family is already there. Inputs are only read.
//!
//! Exit codes: 1 if any input reproduces a violation; 2 if the model panicked on an input and
//! nothing was found, if every input was unreadable, or if a trace could not be written;
//! 0 otherwise.

use super::ModelArgs;
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;

/// Arguments of `triage`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Crash files (raw fuzzer inputs or traces) and folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where minimized traces go, and where known races are looked up.
    #[arg(long, default_value = "crashes")]
    out: PathBuf,
    /// Decode raw inputs on this preset (for inputs found with FLUSHFUZZ_PRESET set); trace
    /// files keep their own.
    #[arg(long, conflicts_with = "machine")]
    preset: Option<String>,
    #[command(flatten)]
    models: ModelArgs,
    /// Print {inputs, unique, no_violation, groups: [{family, signature, count, minimized_ops,
    /// trace, new, signatures: [{signature, count}]}], tool_errors, unreadable, write_errors}
    /// as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `triage`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let (models, preset) = a.models.resolve(a.preset)?;
    let Some(models) = models else {
        let request = flushfuzz::tool::Request::Triage {
            paths: a.paths,
            out: a.out,
            preset,
            json: a.json,
        };
        return super::answer(&a.models, None, &request);
    };
    let bar = (!a.json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inputs, {per_sec} ({eta} left)")
                .expect("template"),
        );
        b
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let o = flushfuzz::tool::triage(
        &models,
        &a.paths,
        &a.out,
        preset.as_deref(),
        a.json,
        &mut progress,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    super::hunt::print_output(&o);
    Ok(o.code)
}
