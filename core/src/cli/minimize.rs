//! `flushfuzz minimize FILE [-o OUT] [--preset NAME | --machine FILE] [--target DIR:NAME]
//! [--family] [--json]`: reduces a trace file or raw libFuzzer input to the shortest ops that
//! keep its violation signature and race family (with `--family`, then only the family), and
//! writes a trace.

use super::ModelArgs;
use std::path::PathBuf;

/// Arguments of `minimize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A trace file or a raw fuzzer input.
    file: PathBuf,
    /// Where to write the minimized trace (default: print it).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Decode a raw input on this preset rather than the preset its first byte chooses.
    #[arg(long, conflicts_with = "machine")]
    preset: Option<String>,
    #[command(flatten)]
    models: ModelArgs,
    /// Then reduce further keeping only the race family (the mechanism), not the exact
    /// signature: the same race through a reader that takes fewer ops, as `hunt` reports it.
    #[arg(long)]
    family: bool,
    /// Print {file, preset, signature, ops_before, ops_after, runs, trace} as JSON.
    #[arg(long)]
    json: bool,
}

/// Runs `minimize`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let (models, preset) = a.models.resolve(a.preset)?;
    let request = flushfuzz::tool::Request::Minimize {
        file: a.file,
        out: a.out,
        preset,
        family: a.family,
        json: a.json,
    };
    super::answer(&a.models, models.as_ref(), &request)
}
