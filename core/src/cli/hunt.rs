//! `flushfuzz hunt [--preset NAME]... [--seconds N] [--jobs N] [--seed N] [--json]`: not yet built.

/// Arguments of `hunt`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `hunt`.
pub fn run(_a: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`flushfuzz hunt` is not built yet")
}
