//! Command-line front end: argument parsing and dispatch. Each subcommand lives in its own file
//! and returns the process exit code (0 nothing found, 1 violation, 2 error).

pub mod bench;
pub mod corpus;
pub mod hunt;
pub mod minimize;
pub mod paths;
pub mod presets;
pub mod replay;
pub mod triage;
pub mod verify;

use clap::{Parser, Subcommand};
use flushfuzz::model::ModelSet;
use std::path::PathBuf;

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
    /// List the kernel paths (mainline function followed, flush APIs called, fields).
    Paths(paths::Args),
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
    /// Explore every schedule of a trace's actions up to a bound: prove it clean or find a
    /// violation.
    Verify(verify::Args),
}

/// Runs the chosen subcommand.
pub fn dispatch(cli: Cli) -> anyhow::Result<u8> {
    match cli.cmd {
        Cmd::Presets(a) => presets::run(a),
        Cmd::Paths(a) => paths::run(a),
        Cmd::Replay(a) => replay::run(a),
        Cmd::Minimize(a) => minimize::run(a),
        Cmd::Triage(a) => triage::run(a),
        Cmd::Hunt(a) => hunt::run(a),
        Cmd::Bench(a) => bench::run(a),
        Cmd::Corpus(a) => corpus::run(a),
        Cmd::Verify(a) => verify::run(a),
    }
}

/// Where the models of a command come from: the shipped presets, a machine file, or a fuzz
/// target of the user's own crate.
#[derive(clap::Args, Debug)]
pub struct ModelArgs {
    /// A machine file (TOML; `flushfuzz presets --show NAME` prints one) to run on, with the
    /// shipped arch it names; traces naming its preset load too.
    #[arg(long, value_name = "FILE")]
    machine: Option<PathBuf>,
    /// A fuzz target of your own crate, DIR:NAME (a `flushfuzz::fuzz_target!` shim): the
    /// command runs inside it, with its own arch, paths and machine (built as `hunt` builds it).
    #[arg(long, value_name = "DIR:NAME")]
    target: Option<String>,
}

impl ModelArgs {
    /// The models to run the command with in this process (`None` when it runs in a target),
    /// and the preset inputs run on: `preset`, or the machine file's.
    pub fn resolve(
        &self,
        preset: Option<String>,
    ) -> anyhow::Result<(Option<ModelSet>, Option<String>)> {
        let machine = match &self.machine {
            Some(m) => Some(flushfuzz::preset::load_machine(m)?),
            None => None,
        };
        let preset = preset.or(machine.as_ref().map(|m| m.name.clone()));
        if self.target.is_some() {
            return Ok((None, preset));
        }
        let mut models = ModelSet::new();
        if let Some(m) = machine {
            let model = flushfuzz::model::shipped(&m).ok_or_else(|| {
                anyhow::anyhow!(
                    "{}: arch `{}` is not shipped (known: {}); run your own arch in a fuzz \
                     target of your crate (--target DIR:NAME)",
                    self.machine.as_ref().expect("machine").display(),
                    m.arch,
                    flushfuzz::model::SHIPPED_ARCHES.join(", ")
                )
            })?;
            models = models.with_rc(model.into());
        }
        Ok((Some(models), preset))
    }
}

/// Answers `request` with `models`, or in the target of `--target`; prints the output and
/// returns the exit code.
pub fn answer(
    a: &ModelArgs,
    models: Option<&ModelSet>,
    request: &flushfuzz::tool::Request,
) -> anyhow::Result<u8> {
    match (models, &a.target) {
        (Some(m), _) => {
            let o = flushfuzz::tool::answer(m, request);
            hunt::print_output(&o);
            Ok(o.code)
        }
        (None, Some(t)) => hunt::in_target(t, a.machine.as_deref(), request),
        (None, None) => unreachable!("models are resolved unless a target is given"),
    }
}
