//! `flushfuzz corpus`: not yet built.

/// Arguments of `corpus`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `corpus`.
pub fn run(_a: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`flushfuzz corpus` is not built yet")
}
