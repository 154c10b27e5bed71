//! `flushfuzz minimize FILE [-o OUT] [--preset NAME] [--family] [--json]`: reduces a trace file
//! or raw libFuzzer input to the shortest ops that keep its violation signature (with
//! `--family`, then only its race family), and writes a trace.

use anyhow::Context as _;
use flushfuzz::{harness, minimize, trace::Trace};
use std::path::PathBuf;

/// Arguments of `minimize`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// A trace file or a raw fuzzer input.
    file: PathBuf,
    /// Where to write the minimized trace (default: print it).
    #[arg(short, long)]
    out: Option<PathBuf>,
    /// Decode a raw input on this preset rather than the preset its first byte chooses.
    #[arg(long)]
    preset: Option<String>,
    /// Then reduce further keeping only the race family (the mechanism), not the exact
    /// signature: the same race through a reader that takes fewer ops, as `hunt` reports it.
    #[arg(long)]
    family: bool,
    /// Print {file, preset, signature, ops_before, ops_after, runs, trace} as JSON.
    #[arg(long)]
    json: bool,
}

/// Writes `text` to `path` through a temporary file and a rename, refusing to overwrite.
pub fn write_new(path: &std::path::Path, text: &str) -> anyhow::Result<()> {
    if path.exists() {
        anyhow::bail!("{} exists; not overwriting it", path.display());
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(std::path::Path::new("."));
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("trace")
    ));
    std::fs::write(&tmp, text).with_context(|| format!("writing {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("renaming to {}", path.display()))?;
    Ok(())
}

/// Runs `minimize`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let loaded = harness::load_file(&a.file, a.preset.as_deref())
        .with_context(|| a.file.display().to_string())?;
    let Some(m) = minimize::minimize(&*loaded.model, &loaded.ops) else {
        anyhow::bail!(
            "{}: no violation on preset {}: nothing to minimize",
            a.file.display(),
            loaded.preset().name
        );
    };
    let m = if a.family {
        minimize::shorten_in_family(&*loaded.model, m)
    } else {
        m
    };
    let trace = Trace::new(&*loaded.model, &m.ops, Some(m.signature.clone()));
    let text = trace.to_text(&[format!(
        "minimized by flushfuzz from {} ({} ops -> {} ops)",
        a.file.display(),
        loaded.ops.len(),
        m.ops.len()
    )]);
    if let Some(out) = &a.out {
        write_new(out, &text)?;
    }
    if a.json {
        let v = serde_json::json!({
            "file": a.file.display().to_string(),
            "preset": loaded.preset().name,
            "signature": m.signature,
            "ops_before": loaded.ops.len(),
            "ops_after": m.ops.len(),
            "runs": m.runs,
            "trace": a.out.as_ref().map(|p| p.display().to_string()),
        });
        println!("{v}");
    } else if a.out.is_none() {
        print!("{text}");
    } else {
        eprintln!(
            "{} ops -> {} ops ({} runs): {}",
            loaded.ops.len(),
            m.ops.len(),
            m.runs,
            m.signature
        );
        eprintln!(
            "wrote {}; replay with: flushfuzz replay {}",
            a.out.as_ref().expect("out").display(),
            a.out.as_ref().expect("out").display()
        );
    }
    Ok(1)
}
