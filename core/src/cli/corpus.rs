//! `flushfuzz corpus [--out DIR] [--crashes DIR] [--check]`: regenerates the seed corpora under
//! `corpus/` (`races/`: encoded realistic and random op sequences, none of which produces a
//! violation; `trace_parser/`: the reproducers of `crashes/` and variants of them), or checks
//! that the committed files are what this version generates.

use anyhow::Context as _;
use flushfuzz::corpus::{self, SeedFile, RACES_DIR, TRACE_PARSER_DIR};
use flushfuzz::harness;
use std::path::{Path, PathBuf};

/// Arguments of `corpus`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// The corpus root (default: `corpus/` of the project).
    #[arg(long)]
    out: Option<PathBuf>,
    /// Where the reproducers for the trace-parser seeds are (default: `crashes/` of the project).
    #[arg(long)]
    crashes: Option<PathBuf>,
    /// Change nothing; fail if a generated file is missing or differs.
    #[arg(long)]
    check: bool,
}

/// The text of the trace file `p`, of at most [`harness::MAX_INPUT`] bytes.
pub fn read_text(p: &Path) -> anyhow::Result<String> {
    let bytes = harness::read_at_most(p, harness::MAX_INPUT)
        .with_context(|| format!("reading {}", p.display()))?;
    String::from_utf8(bytes).with_context(|| format!("{}: not UTF-8 text", p.display()))
}

/// The `*.trace` files of `dir`, as `(stem, text)`, sorted by name.
pub fn read_traces(dir: &Path) -> anyhow::Result<Vec<(String, String)>> {
    let mut out = Vec::new();
    let rd = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?;
    for e in rd {
        let p = e
            .with_context(|| format!("reading {}", dir.display()))?
            .path();
        if p.extension().and_then(|x| x.to_str()) != Some("trace") {
            continue;
        }
        let stem = p
            .file_stem()
            .and_then(|s| s.to_str())
            .context("non-UTF-8 file name")?
            .to_string();
        let text = read_text(&p)?;
        out.push((stem, text));
    }
    out.sort();
    Ok(out)
}

/// Generated files no longer generated: seed-named files of `races/`, `.trace` files of
/// `trace_parser/`.
fn stale(root: &Path, files: &[SeedFile]) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for dir in [RACES_DIR, TRACE_PARSER_DIR] {
        let Ok(rd) = std::fs::read_dir(root.join(dir)) else {
            continue;
        };
        let mut names: Vec<String> = rd
            .filter_map(|e| e.ok()?.file_name().into_string().ok())
            .collect();
        names.sort();
        for n in names {
            let ours = if dir == RACES_DIR {
                corpus::seed_preset(&n).is_some()
            } else {
                n.ends_with(".trace")
            };
            if ours && !files.iter().any(|f| f.dir == dir && f.name == n) {
                out.push(root.join(dir).join(n));
            }
        }
    }
    out
}

/// Runs `corpus`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    let project = super::hunt::project_root().ok();
    let under = |name: &str| -> anyhow::Result<PathBuf> {
        match &project {
            Some(p) => Ok(p.join(name)),
            None => anyhow::bail!(
                "cannot find the project root (a folder with fuzz/Cargo.toml); pass --out and --crashes"
            ),
        }
    };
    let out = match a.out {
        Some(o) => o,
        None => under("corpus")?,
    };
    let crashes = match a.crashes {
        Some(c) => c,
        None => under("crashes")?,
    };
    let traces = read_traces(&crashes)?;
    let files = corpus::generate(&traces).context("generating the seeds")?;
    let old = stale(&out, &files);
    let mut differ = Vec::new();
    for f in &files {
        let path = out.join(f.dir).join(&f.name);
        // Reading one byte more than the generated file tells a longer file apart.
        let on_disk = harness::read_at_most(&path, f.bytes.len() as u64).ok();
        if on_disk.as_deref() != Some(f.bytes.as_slice()) {
            differ.push((path, f));
        }
    }
    if a.check {
        if differ.is_empty() && old.is_empty() {
            eprintln!(
                "{}: {} seed files, all up to date",
                out.display(),
                files.len()
            );
            return Ok(0);
        }
        let mut msg = String::new();
        for (p, _) in &differ {
            msg.push_str(&format!("\n  missing or different: {}", p.display()));
        }
        for p in &old {
            msg.push_str(&format!("\n  no longer generated: {}", p.display()));
        }
        anyhow::bail!(
            "the seed corpus in {} is out of date (regenerate it with `flushfuzz corpus`):{msg}",
            out.display()
        );
    }
    for (path, f) in &differ {
        let dir = path.parent().expect("file in a folder");
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::write(path, &f.bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    for p in &old {
        std::fs::remove_file(p).with_context(|| format!("removing {}", p.display()))?;
    }
    let n = |d: &str| files.iter().filter(|f| f.dir == d).count();
    eprintln!(
        "{}: {} seeds in {RACES_DIR}/, {} in {TRACE_PARSER_DIR}/; {} written, {} removed, {} unchanged",
        out.display(),
        n(RACES_DIR),
        n(TRACE_PARSER_DIR),
        differ.len(),
        old.len(),
        files.len() - differ.len()
    );
    Ok(0)
}
