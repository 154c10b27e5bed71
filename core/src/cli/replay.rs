//! `flushfuzz replay FILE... [--preset NAME | --machine FILE] [--target DIR:NAME] [--json]`:
//! runs each input with the event log on, prints its timeline and, if a violation occurs, the
//! explanation; compares with the outcome the trace expects.

use super::ModelArgs;
use std::path::PathBuf;

/// Arguments of `replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or raw fuzzer inputs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run the same ops on this preset instead of the file's.
    #[arg(long, conflicts_with = "machine")]
    preset: Option<String>,
    #[command(flatten)]
    models: ModelArgs,
    /// Print one JSON object per file: {file, preset, ops, violation}.
    #[arg(long)]
    json: bool,
}

/// Runs `replay`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let (models, preset) = a.models.resolve(a.preset)?;
    let request = flushfuzz::tool::Request::Replay {
        files: a.files,
        preset,
        json: a.json,
    };
    super::answer(&a.models, models.as_ref(), &request)
}
