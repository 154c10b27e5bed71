//! `flushfuzz bench`: not yet built.

/// Arguments of `bench`.
#[derive(clap::Args, Debug)]
pub struct Args {}

/// Runs `bench`.
pub fn run(_a: Args) -> anyhow::Result<u8> {
    anyhow::bail!("`flushfuzz bench` is not built yet")
}
