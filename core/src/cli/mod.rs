//! Command-line front end: argument parsing and dispatch. Each subcommand lives in its own file
//! and returns the process exit code (0 nothing found, 1 violation, 2 error).

pub mod bench;
pub mod corpus;
pub mod hunt;
pub mod minimize;
pub mod presets;
pub mod replay;
pub mod triage;

use clap::{Parser, Subcommand};

/// Finds data-corruption races in the Linux cache-flush APIs on CPUs with virtually indexed
/// caches.
#[derive(Parser, Debug)]
#[command(name = "flushfuzz", version, about, long_about = None)]
pub struct Cli {
    #[command(subcommand)]
    cmd: Cmd,
}

#[derive(Subcommand, Debug)]
enum Cmd {
    /// List the presets (machine, arch, historical switches).
    Presets(presets::Args),
    /// Run trace files (or raw fuzzer inputs) and print their timelines and violations.
    Replay(replay::Args),
    /// Reduce a crashing input to a short trace with the same violation.
    Minimize(minimize::Args),
    /// Group a folder of crashes into race families, one minimized trace each.
    Triage(triage::Args),
    /// Build the fuzz target and run a campaign; minimize and show what it finds.
    Hunt(hunt::Args),
    /// Measure time to first detection against a random baseline.
    Bench(bench::Args),
    /// Regenerate the seed corpus under corpus/.
    Corpus(corpus::Args),
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.cmd {
        Cmd::Presets(a) => presets::run(a),
        Cmd::Replay(a) => replay::run(a),
        Cmd::Minimize(a) => minimize::run(a),
        Cmd::Triage(a) => triage::run(a),
        Cmd::Hunt(a) => hunt::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Corpus(a) => corpus::run(a),
    }
}

/// The JSON form of a violation.
pub fn violation_json(v: &flushfuzz::oracle::Violation) -> serde_json::Value {
    serde_json::json!({
        "kind": v.kind.name(),
        "signature": v.signature(),
        "step": v.step,
        "pa": v.pa,
        "alias": { "va": v.va, "kind": v.alias.name() },
        "expected": v.expected,
        "observed": v.observed,
    })
}
