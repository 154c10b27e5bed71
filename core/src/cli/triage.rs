//! `flushfuzz triage PATH... [--out DIR] [--json]`: not yet built.

/// Arguments of `triage`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `triage`.
pub fn run(_a: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`flushfuzz triage` is not built yet")
}
