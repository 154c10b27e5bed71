//! `flushfuzz triage PATH... [--out DIR] [--preset NAME] [--json]`: sorts crashing inputs
//! (libFuzzer artifacts or trace files; folders are searched recursively) into race families,
//! minimizes the smallest input of each family, and writes it to `--out` as a new trace unless
//! a trace of that family is already there. Inputs are only read.
//!
//! Exit codes: 1 if any input reproduces a violation; 2 if the model panicked on an input and
//! nothing was found, if every input was unreadable, or if a trace could not be written;
//! 0 otherwise.

use super::minimize::write_new;
use flushfuzz::triage::{self, Problem, Triage};
use indicatif::{ProgressBar, ProgressStyle};
use std::io::IsTerminal as _;
use std::path::PathBuf;

/// Arguments of `triage`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Crash files (raw fuzzer inputs or traces) and folders of them.
    #[arg(required = true)]
    paths: Vec<PathBuf>,
    /// Where minimized traces go, and where known races are looked up.
    #[arg(long, default_value = "crashes")]
    out: PathBuf,
    /// Decode raw inputs on this preset (for inputs found with FLUSHFUZZ_PRESET set); trace
    /// files keep their own.
    #[arg(long)]
    preset: Option<String>,
    /// Print {inputs, unique, no_violation, groups: [{family, signature, count, minimized_ops,
    /// trace, new, signatures: [{signature, count}]}], tool_errors, unreadable, write_errors}
    /// as JSON.
    #[arg(long)]
    json: bool,
}

fn problems_json(v: &[Problem]) -> serde_json::Value {
    v.iter()
        .map(|p| serde_json::json!({ "file": p.file.display().to_string(), "error": p.error }))
        .collect()
}

fn print_json(t: &Triage) {
    let groups: Vec<_> = t
        .groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "family": g.family,
                "signature": g.signature,
                "count": g.files.len(),
                "minimized_ops": g.minimized.len(),
                "trace": g.trace.as_ref().map(|p| p.display().to_string()),
                "new": g.trace.is_some() && !g.existing,
                "signatures": g.signatures.iter()
                    .map(|(s, n)| serde_json::json!({ "signature": s, "count": n }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = serde_json::json!({
        "inputs": t.inputs,
        "unique": t.groups.len(),
        "no_violation": t.no_violation,
        "groups": groups,
        "tool_errors": problems_json(&t.tool_errors),
        "unreadable": problems_json(&t.unreadable),
        "write_errors": problems_json(&t.write_errors),
    });
    println!("{v}");
}

fn print_table(t: &Triage) {
    for p in &t.unreadable {
        eprintln!("unreadable: {}: {}", p.file.display(), p.error);
    }
    for p in &t.tool_errors {
        eprintln!(
            "flushfuzz bug (please report it with this input): {}: {}",
            p.file.display(),
            p.error
        );
    }
    for p in &t.write_errors {
        eprintln!("error: {}: {}", p.file.display(), p.error);
    }
    if !t.groups.is_empty() {
        let w = t
            .groups
            .iter()
            .map(|g| g.family.len())
            .max()
            .unwrap_or(0)
            .max(6);
        println!("{:<w$}  {:>5}  {:>5}  trace", "family", "count", "steps");
        for g in &t.groups {
            let file = match &g.trace {
                Some(p) if g.existing => format!("{} (known)", p.display()),
                Some(p) => format!("{} (new)", p.display()),
                None => "(not written)".into(),
            };
            println!(
                "{:<w$}  {:>5}  {:>5}  {file}",
                g.family,
                g.files.len(),
                g.minimized.len()
            );
            // One mechanism may show under several signatures: say which, and how often.
            if g.signatures.len() > 1 {
                for (s, n) in &g.signatures {
                    println!("{:<w$}  {n:>5}         {s}", "");
                }
            }
        }
    }
    println!(
        "{} input(s): {} finding(s) in {} group(s), {} without a violation, {} unreadable, {} tool error(s)",
        t.inputs,
        t.findings(),
        t.groups.len(),
        t.no_violation,
        t.unreadable.len(),
        t.tool_errors.len()
    );
    let first_new = t
        .groups
        .iter()
        .filter(|g| !g.existing)
        .find_map(|g| g.trace.as_ref());
    if let Some(f) = first_new {
        println!("replay with: flushfuzz replay {}", f.display());
    }
}

/// The exit code of a triage (see the module documentation).
fn exit_code(t: &Triage) -> u8 {
    if !t.write_errors.is_empty() {
        2
    } else if t.findings() > 0 {
        1
    } else if !t.tool_errors.is_empty() || (t.inputs > 0 && t.unreadable.len() == t.inputs) {
        2
    } else {
        0
    }
}

/// Runs `triage`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if let Some(p) = &a.preset {
        if flushfuzz::preset::by_name(p).is_none() {
            anyhow::bail!(
                "unknown preset `{p}` (known: {})",
                flushfuzz::preset::names().join(", ")
            );
        }
    }
    let bar = (!a.json && std::io::stderr().is_terminal()).then(|| {
        let b = ProgressBar::new(0);
        b.set_style(
            ProgressStyle::with_template("{bar:40} {pos}/{len} inputs, {per_sec} ({eta} left)")
                .expect("template"),
        );
        b
    });
    let mut progress = |done: usize, total: usize| {
        if let Some(b) = &bar {
            b.set_length(total as u64);
            b.set_position(done as u64);
        }
    };
    let mut t = triage::triage(
        &a.paths,
        &flushfuzz::model::Shipped,
        a.preset.as_deref(),
        &mut progress,
    );
    if let Some(b) = &bar {
        b.finish_and_clear();
    }
    t.save(&a.out, &flushfuzz::model::Shipped, &mut |path, text| {
        write_new(path, text).map_err(|e| format!("{e:#}"))
    });
    if a.json {
        print_json(&t);
    } else {
        print_table(&t);
    }
    Ok(exit_code(&t))
}
