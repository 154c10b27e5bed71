//! The `flushfuzz` command-line tool. One module per subcommand under `cli/`.
//! Exit codes: 0 no violation, 1 violation reproduced or found, 2 error.

mod cli;

use clap::Parser;
use std::process::ExitCode;

fn main() -> ExitCode {
    let args = cli::Cli::parse();
    match cli::dispatch(args) {
        Ok(code) => ExitCode::from(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}
