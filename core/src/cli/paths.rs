//! `flushfuzz paths [--json] [--target DIR:NAME]`: every kernel path the model runs, the
//! mainline function it follows, the flush and mapping APIs it may call, and its fields; the
//! shipped registry, or a user's target's.

use super::hunt;

/// Arguments of `paths`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON array of {name, follows, calls, runs, fields: [{name, kind}], doc}.
    #[arg(long)]
    json: bool,
    /// The paths of a fuzz target of your own crate, DIR:NAME, instead of the shipped ones.
    #[arg(long, value_name = "DIR:NAME")]
    target: Option<String>,
}

/// Runs `paths`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if let Some(t) = &a.target {
        let bin = hunt::built_target(t)?;
        let o = flushfuzz::campaign::ask(
            &bin,
            &flushfuzz::tool::Request::Paths { json: a.json },
            None,
        )?;
        hunt::print_output(&o);
        return Ok(o.code);
    }
    let c = flushfuzz::paths::Paths::<flushfuzz::arch::null::Null>::shipped()
        .catalog()
        .clone();
    print!("{}", flushfuzz::tool::paths_text(&c, a.json));
    Ok(0)
}
