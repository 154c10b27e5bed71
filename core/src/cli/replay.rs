//! `flushfuzz replay FILE... [--preset NAME] [--json]`: runs each input with the event log on,
//! prints its timeline and, if a violation occurs, the explanation; compares with the outcome
//! the trace expects.

use anyhow::Context as _;
use flushfuzz::{explain, harness};
use std::path::PathBuf;

/// Arguments of `replay`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Trace files or raw fuzzer inputs.
    #[arg(required = true)]
    files: Vec<PathBuf>,
    /// Run the same ops on this preset instead of the file's.
    #[arg(long)]
    preset: Option<String>,
    /// Print one JSON object per file: {file, preset, ops, violation}.
    #[arg(long)]
    json: bool,
}

/// Runs `replay`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if let Some(p) = &a.preset {
        if flushfuzz::preset::by_name(p).is_none() {
            anyhow::bail!(
                "unknown preset `{p}` (known: {})",
                flushfuzz::preset::names().join(", ")
            );
        }
    }
    let mut code = 0u8;
    for f in &a.files {
        let loaded = match harness::load_file(f, a.preset.as_deref())
            .with_context(|| format!("{}", f.display()))
        {
            Ok(l) => l,
            Err(e) => {
                eprintln!("error: {e:#}");
                code = 2;
                continue;
            }
        };
        let report = harness::replay(&loaded);
        if a.json {
            let v = serde_json::json!({
                "file": f.display().to_string(),
                "preset": loaded.preset().name,
                "ops": loaded.ops.len(),
                "violation": report.violation.as_ref().map(super::violation_json),
            });
            println!("{v}");
        } else {
            println!(
                "== {} (preset {}, {} ops)",
                f.display(),
                loaded.preset().name,
                loaded.ops.len()
            );
            print!(
                "{}",
                explain::timeline(&*loaded.model, &loaded.ops, &report)
            );
            match &report.violation {
                Some(v) => {
                    println!();
                    print!("{}", explain::explain(v, loaded.preset(), &report.actors));
                }
                None => println!("\nNo violation."),
            }
            if let Some(expect) = &loaded.expect {
                let got = report.violation.as_ref().map(|v| v.signature());
                if *expect != got {
                    println!(
                        "note: the trace expects {}, this run gave {}",
                        expect.as_deref().unwrap_or("no violation"),
                        got.as_deref().unwrap_or("no violation")
                    );
                }
            }
            if report.violation.is_some() {
                println!("replay with: flushfuzz replay {}", f.display());
            }
            println!();
        }
        if report.violation.is_some() && code == 0 {
            code = 1;
        }
    }
    Ok(code)
}
