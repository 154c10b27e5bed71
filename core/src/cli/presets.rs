//! `flushfuzz presets [--json] [--show NAME]`: the presets, with machine, arch, switches and
//! description; `--show` prints one as a machine file, which `--machine FILE` takes wherever
//! `--preset` works.

use flushfuzz::preset;

/// Arguments of `presets`.
#[derive(clap::Args, Debug)]
pub struct Args {
    /// Print one JSON array of {name, machine, arch, switches, description}.
    #[arg(long)]
    json: bool,
    /// Print the preset called NAME as a machine file (TOML), to copy and edit.
    #[arg(long, value_name = "NAME")]
    show: Option<String>,
}

/// Runs `presets`.
pub fn run(a: Args) -> anyhow::Result<u8> {
    if let Some(name) = &a.show {
        let p = preset::by_name(name).ok_or_else(|| {
            anyhow::anyhow!(
                "unknown preset `{name}` (known: {})",
                preset::names().join(", ")
            )
        })?;
        print!("{}", p.to_toml());
        return Ok(0);
    }
    let all = preset::all();
    if a.json {
        let v: Vec<_> = all
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "machine": p.machine,
                    "arch": p.arch,
                    "switches": p.switches.names(),
                    "io": p.io,
                    "description": p.description,
                })
            })
            .collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(0);
    }
    for p in &all {
        let m = &p.machine;
        let shape = |g: &flushfuzz::geometry::CacheGeometry| {
            let index = match g.indexing {
                flushfuzz::geometry::Indexing::Vivt { .. } => "VIVT",
                flushfuzz::geometry::Indexing::Vipt => "VIPT",
                flushfuzz::geometry::Indexing::Pipt => "PIPT",
            };
            format!(
                "{index} {} sets x {} ways x {}-byte lines ({} colour(s))",
                g.sets,
                g.ways,
                g.line,
                g.colours(m.page_size)
            )
        };
        let icache = match m.icache_coherence {
            flushfuzz::machine::IcacheCoherence::None => "not snooping",
            flushfuzz::machine::IcacheCoherence::FillsFromDcache => "filling from the D-cache",
            flushfuzz::machine::IcacheCoherence::Snooping => "snooping",
        };
        println!("{}", p.name);
        println!("    {}", p.description);
        println!(
            "    machine: {} CPU(s), {}-byte pages, D-cache {}, I-cache {} ({icache}), DMA {}",
            m.cpus,
            m.page_size,
            shape(&m.dcache),
            shape(&m.icache),
            if m.dma_coherent {
                "coherent"
            } else {
                "non-coherent"
            }
        );
        let sw = p.switches.names();
        println!(
            "    arch: {}; switches: {}",
            p.arch,
            if sw.is_empty() {
                "none (mainline)".to_string()
            } else {
                sw.join(", ")
            }
        );
    }
    Ok(0)
}
