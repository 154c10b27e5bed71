//! Presets: a machine, an arch implementation, historical behaviour switches, and the initial
//! world (processes, files, driver buffers, actors).
//!
//! Each race of the mails has a preset with the behaviour of the kernel that had it and a
//! `-fixed` twin with mainline behaviour on the same machine; `coherent` is fully coherent
//! hardware with every historical switch on. Switches describe what old code did, in its order;
//! none names a race.

use crate::geometry::{presets as geo, CacheGeometry, Indexing, WritePolicy};
use crate::machine::{Broadcast, IcacheCoherence, MachineConfig, Speculation};
use serde::{Deserialize, Serialize};

/// Historical kernel behaviours. `Default` is mainline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Switches {
    /// `get_user_pages` calls only `flush_dcache_page`, not `flush_anon_page` (before 2.6.20).
    pub gup_without_flush_anon_page: bool,
    /// The deferred D-cache flush and I-cache invalidation of a newly mapped page happen in
    /// `update_mmu_cache`, after `set_pte_at` published it (ARM before 2.6.37).
    pub icache_sync_after_set_pte: bool,
    /// Streaming-DMA maintenance of highmem reads `page_address` without pinning the pkmap slot
    /// with `kmap_high_get` (ARM before 2.6.30).
    pub dma_page_address_unpinned: bool,
    /// `copy_user_highpage` is the generic one, through `kmap_atomic` at any colour (before
    /// 2.6.19).
    pub generic_copy_user_highpage: bool,
    /// readdir decodes its pages through the `vm_map_ram` alias (NFS in 2.6.37).
    pub readdir_decodes_through_vmap: bool,
    /// Fork calls `flush_cache_mm` rather than `flush_cache_dup_mm` (before 2.6.19).
    pub fork_flush_cache_mm: bool,
    /// A PIO driver fills page-cache pages without calling `flush_dcache_page`.
    pub pio_without_flush_dcache_page: bool,
    /// `PG_arch_1` means "kernel alias dirty" on ARM too (before 2.6.37).
    pub arch_1_dirty_polarity: bool,
}

impl Switches {
    /// Every switch on.
    pub fn all() -> Switches {
        Switches {
            gup_without_flush_anon_page: true,
            icache_sync_after_set_pte: true,
            dma_page_address_unpinned: true,
            generic_copy_user_highpage: true,
            readdir_decodes_through_vmap: true,
            fork_flush_cache_mm: true,
            pio_without_flush_dcache_page: true,
            arch_1_dirty_polarity: true,
        }
    }

    /// The names of the switches that are on.
    pub fn names(&self) -> Vec<&'static str> {
        let mut v = Vec::new();
        let mut add = |on: bool, n: &'static str| {
            if on {
                v.push(n)
            }
        };
        add(
            self.gup_without_flush_anon_page,
            "gup_without_flush_anon_page",
        );
        add(self.icache_sync_after_set_pte, "icache_sync_after_set_pte");
        add(self.dma_page_address_unpinned, "dma_page_address_unpinned");
        add(
            self.generic_copy_user_highpage,
            "generic_copy_user_highpage",
        );
        add(
            self.readdir_decodes_through_vmap,
            "readdir_decodes_through_vmap",
        );
        add(self.fork_flush_cache_mm, "fork_flush_cache_mm");
        add(
            self.pio_without_flush_dcache_page,
            "pio_without_flush_dcache_page",
        );
        add(self.arch_1_dirty_polarity, "arch_1_dirty_polarity");
        v
    }

    /// Sets a switch by name; false if there is no such switch.
    pub fn set(&mut self, name: &str, on: bool) -> bool {
        let f = match name {
            "gup_without_flush_anon_page" => &mut self.gup_without_flush_anon_page,
            "icache_sync_after_set_pte" => &mut self.icache_sync_after_set_pte,
            "dma_page_address_unpinned" => &mut self.dma_page_address_unpinned,
            "generic_copy_user_highpage" => &mut self.generic_copy_user_highpage,
            "readdir_decodes_through_vmap" => &mut self.readdir_decodes_through_vmap,
            "fork_flush_cache_mm" => &mut self.fork_flush_cache_mm,
            "pio_without_flush_dcache_page" => &mut self.pio_without_flush_dcache_page,
            "arch_1_dirty_polarity" => &mut self.arch_1_dirty_polarity,
            _ => return false,
        };
        *f = on;
        true
    }
}

/// How the page cache is filled from disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Io {
    /// Programmed I/O: the driver stores the data through a kernel mapping.
    Pio,
    /// Streaming DMA from the device.
    Dma,
}

/// The initial world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WorldShape {
    /// Threads of the first process.
    pub threads: u8,
    /// Dead thread slots that fork children take.
    pub spare_threads: u8,
    /// Kernel threads.
    pub kthreads: u8,
    /// Whether there is an interrupt-context actor.
    pub irq: bool,
    /// Files.
    pub files: u8,
    /// Pages per file.
    pub file_pages: u8,
    /// Lowmem driver buffers.
    pub buffers_low: u8,
    /// Highmem driver buffers (lowmem if there is no highmem).
    pub buffers_high: u8,
}

impl Default for WorldShape {
    fn default() -> Self {
        WorldShape {
            threads: 2,
            spare_threads: 1,
            kthreads: 2,
            irq: true,
            files: 2,
            file_pages: 4,
            buffers_low: 1,
            buffers_high: 3,
        }
    }
}

/// A preset: a machine, an arch, historical switches and an initial world. Shipped ones come
/// from [`all`]; a user's from a machine file ([`from_toml`], [`load_machine`]) or a
/// [`Builder`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Preset {
    /// Its name (traces name their preset by it).
    pub name: String,
    /// One line saying what it is.
    #[serde(default)]
    pub description: String,
    /// The arch implementation, by name (one of [`crate::model::SHIPPED_ARCHES`], or a user's
    /// arch name when a user's model pairs the preset with it).
    pub arch: String,
    /// How the page cache is filled.
    #[serde(default = "default_io")]
    pub io: Io,
    /// The machine.
    pub machine: MachineConfig,
    /// Historical behaviours (all off, mainline, by default).
    #[serde(default)]
    pub switches: Switches,
    /// The initial world.
    #[serde(default)]
    pub world: WorldShape,
}

fn default_io() -> Io {
    Io::Pio
}

fn small(dcache: CacheGeometry, icache: CacheGeometry) -> MachineConfig {
    MachineConfig {
        cpus: 1,
        page_size: geo::SMALL_PAGE,
        dcache,
        icache,
        icache_coherence: IcacheCoherence::None,
        dcache_coherent: true,
        broadcast: Broadcast::CacheAndTlb,
        dma_coherent: false,
        lowmem_frames: 16,
        highmem_frames: 0,
        pkmap_slots: 2,
        speculation: Speculation::None,
        hw_walker: true,
        linear_exec: true,
    }
}

fn icache_of(d: CacheGeometry) -> CacheGeometry {
    CacheGeometry {
        policy: WritePolicy::WriteThrough,
        ..d
    }
}

fn base_presets() -> Vec<Preset> {
    let vivt = small(geo::SMALL_VIVT, icache_of(geo::SMALL_VIVT));
    let v6 = small(geo::SMALL_V6_4COLOUR, icache_of(geo::SMALL_V6_4COLOUR));
    let r4k = small(geo::SMALL_R4K, icache_of(geo::SMALL_R4K));
    let smp = MachineConfig {
        cpus: 2,
        broadcast: Broadcast::None,
        speculation: Speculation::Icache,
        // ARMv6 maps lowmem execute-never: instruction prefetch goes through text mappings.
        linear_exec: false,
        ..small(
            geo::SMALL_PIPT,
            CacheGeometry {
                indexing: Indexing::Pipt,
                ..icache_of(geo::SMALL_PIPT)
            },
        )
    };
    let highmem = MachineConfig {
        lowmem_frames: 12,
        highmem_frames: 4,
        ..vivt.clone()
    };
    let world = WorldShape::default();
    vec![
        Preset {
            name: "nfs-vmap-alias".into(),
            description: "ARMv6-like aliasing VIPT (4 colours); readdir decodes through vm_map_ram pages filled through kmap (mail 000)".into(),
            machine: v6.clone(),
            arch: "arm-v6".into(),
            switches: Switches { readdir_decodes_through_vmap: true, ..Switches::default() },
            io: Io::Pio,
            world,
        },
        Preset {
            name: "gup-anon-alias".into(),
            description: "XScale-like VIVT; get_user_pages without flush_anon_page (mail 001)".into(),
            machine: vivt.clone(),
            arch: "arm-vivt".into(),
            switches: Switches { gup_without_flush_anon_page: true, ..Switches::default() },
            io: Io::Pio,
            world,
        },
        Preset {
            name: "exec-icache-smp".into(),
            description: "2 CPUs, coherent D-caches, non-snooping I-caches, maintenance not broadcast; a PIO driver that skips flush_dcache_page; the D-cache write-back and I-cache sync in update_mmu_cache, after set_pte_at (mail 002)".into(),
            machine: smp,
            arch: "arm-v6".into(),
            switches: Switches { icache_sync_after_set_pte: true, pio_without_flush_dcache_page: true, ..Switches::default() },
            io: Io::Pio,
            world,
        },
        Preset {
            name: "kmap-recycle-dma".into(),
            description: "VIVT with highmem and 2 pkmap slots; dma_map_page maintains through page_address without kmap_high_get (mail 003)".into(),
            machine: highmem,
            arch: "arm-vivt".into(),
            switches: Switches { dma_page_address_unpinned: true, ..Switches::default() },
            io: Io::Pio,
            world,
        },
        Preset {
            name: "fork-cow-alias".into(),
            description: "MIPS R4K-like direct-mapped VIPT (4 colours); a two-thread process forks; generic copy_user_highpage through kmap_atomic (mail 004)".into(),
            machine: r4k.clone(),
            arch: "mips-r4k".into(),
            switches: Switches { generic_copy_user_highpage: true, fork_flush_cache_mm: true, ..Switches::default() },
            io: Io::Pio,
            world,
        },
    ]
}

/// Every preset: the five races, their `-fixed` twins, `coherent`, a PA-RISC machine, two
/// arm64 machines, three ARMv7 ones (two scaled, one on the Cortex-A9's geometry), a RISC-V one and three SH-4 ones (two scaled, one on the SH7750's geometry).
pub fn all() -> Vec<Preset> {
    let mut v = Vec::new();
    for p in base_presets() {
        let fixed = Preset {
            name: format!("{}-fixed", p.name),
            description: format!("the {} machine with mainline behaviour", p.name),
            switches: Switches::default(),
            ..p.clone()
        };
        v.push(p);
        v.push(fixed);
    }
    v.push(Preset {
        name: "coherent".into(),
        description: "fully coherent hardware (PIPT D-cache, snooping I-cache, coherent DMA, 2 CPUs) with every historical switch on".into(),
        machine: MachineConfig {
            cpus: 2,
            icache_coherence: IcacheCoherence::Snooping,
            dma_coherent: true,
            lowmem_frames: 12,
            highmem_frames: 4,
            speculation: Speculation::Both,
            ..small(geo::SMALL_PIPT, CacheGeometry { indexing: Indexing::Pipt, ..icache_of(geo::SMALL_PIPT) })
        },
        arch: "null".into(),
        switches: Switches::all(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "parisc".into(),
        description: "PA-RISC-like equivalent aliasing (4 colours, speculative fills) with mainline behaviour".into(),
        machine: MachineConfig { speculation: Speculation::Both, hw_walker: false, ..small(geo::SMALL_V6_4COLOUR, icache_of(geo::SMALL_V6_4COLOUR)) },
        arch: "parisc".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    // arm64: D-caches that never alias, I-caches that do not snoop, maintenance by address
    // broadcast, speculative fills on both sides, non-coherent DMA.
    let arm64 = MachineConfig {
        cpus: 2,
        speculation: Speculation::Both,
        linear_exec: false,
        ..small(
            geo::SMALL_PIPT,
            CacheGeometry {
                indexing: Indexing::Pipt,
                ..icache_of(geo::SMALL_PIPT)
            },
        )
    };
    v.push(Preset {
        name: "arm64".into(),
        description: "arm64 (mainline): 2 CPUs, PIPT D-caches, non-snooping PIPT I-caches, broadcast maintenance, speculative fills, non-coherent DMA, block I/O by DMA".into(),
        machine: arm64.clone(),
        arch: "arm64".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "arm64-aliasing-icache".into(),
        description: "arm64 (mainline) whose VIPT I-caches alias (4 colours, icache_is_aliasing); file reads by PIO".into(),
        machine: MachineConfig { icache: icache_of(geo::SMALL_V6_4COLOUR), ..arm64 },
        arch: "arm64".into(),
        switches: Switches::default(),
        io: Io::Pio,
        world: WorldShape::default(),
    });
    // arm64 whose CTR_EL0 lets the kernel skip half of its I-side maintenance: IDC (instruction
    // fills see the D-cache), and IDC with DIC (an I-cache kept coherent by hardware).
    v.push(Preset {
        name: "arm64-idc".into(),
        description: "arm64 (mainline) with CTR_EL0.IDC: PIPT I-caches that fill from the D-side but ignore stores, so only the I-cache invalidation remains; 2 CPUs, speculative fills, non-coherent DMA, block I/O by DMA".into(),
        machine: MachineConfig { icache_coherence: IcacheCoherence::FillsFromDcache, ..arm64.clone() },
        arch: "arm64".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "arm64-idc-dic".into(),
        description: "arm64 (mainline) with CTR_EL0.IDC and DIC (Neoverse-N1-like): snooping I-caches, so the kernel skips both halves of its I-side maintenance; 2 CPUs, speculative fills, I/O-coherent DMA as on the server SoCs that set DIC, block I/O by DMA".into(),
        // DIC promises instruction fetches see the PE's own stores without an I-cache
        // invalidation; a non-coherent device's write reaches memory past every cache and no
        // snoop reaches the I-cache, while mainline, trusting DIC, invalidates nothing after
        // such DMA. The parts that set DIC (Neoverse-N1-class servers) do their DMA through the
        // interconnect's coherency, so the preset does too.
        machine: MachineConfig { icache_coherence: IcacheCoherence::Snooping, dma_coherent: true, ..arm64.clone() },
        arch: "arm64".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    // ARMv7-A MP (Cortex-A9-like): non-aliasing D-caches, VIPT I-caches of 2 colours that do
    // not snoop, maintenance by address broadcast, speculative fills on both sides (not
    // through the execute-never linear map on the I-side), highmem, non-coherent DMA.
    let armv7 = MachineConfig {
        cpus: 2,
        speculation: Speculation::Both,
        linear_exec: false,
        lowmem_frames: 12,
        highmem_frames: 4,
        ..small(geo::SMALL_PIPT, icache_of(geo::SMALL_V6_2COLOUR))
    };
    v.push(Preset {
        name: "armv7".into(),
        description: "ARMv7-A MP (mainline), Cortex-A9-like: 2 CPUs, PIPT D-caches, non-snooping VIPT I-caches of 2 colours, broadcast maintenance, speculative fills, highmem, non-coherent DMA, block I/O by DMA".into(),
        machine: armv7.clone(),
        arch: "arm-v7".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "armv7-pipt-icache".into(),
        description: "ARMv7-A MP (mainline), Cortex-A15-like: the armv7 machine with PIPT I-caches; file reads by PIO".into(),
        machine: MachineConfig {
            icache: CacheGeometry { indexing: Indexing::Pipt, ..icache_of(geo::SMALL_PIPT) },
            ..armv7
        },
        arch: "arm-v7".into(),
        switches: Switches::default(),
        io: Io::Pio,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "cortex-a9".into(),
        description: "ARMv7-A MP (mainline) on the Cortex-A9's own geometry: 4 KiB pages, 32 KiB 4-way PIPT D-caches and VIPT I-caches (2 colours) of 32-byte lines, 2 CPUs, broadcast maintenance, speculative fills, highmem, non-coherent DMA, block I/O by DMA (the scaled `armv7` runs faster)".into(),
        machine: MachineConfig {
            cpus: 2,
            speculation: Speculation::Both,
            linear_exec: false,
            lowmem_frames: 12,
            highmem_frames: 4,
            page_size: geo::REAL_PAGE,
            ..small(geo::PIPT, icache_of(geo::ARMV6_2COLOUR))
        },
        arch: "arm-v7".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    // RISC-V: coherent D-caches that instruction fills see (the I-cache refills through the
    // coherent memory system), I-caches fenced per hart, no broadcast maintenance,
    // speculative fills, non-coherent DMA through cache-block operations.
    v.push(Preset {
        name: "riscv".into(),
        description: "RISC-V (mainline): 2 harts, coherent PIPT D-caches, I-caches kept by fence.i and remote fences, no broadcast maintenance, speculative fills, non-coherent DMA (Zicbom), block I/O by DMA".into(),
        machine: MachineConfig {
            cpus: 2,
            broadcast: Broadcast::None,
            speculation: Speculation::Both,
            icache_coherence: IcacheCoherence::FillsFromDcache,
            // The linear map is not executable on RV64, but fence.i's contract lets a hart's
            // fetches see any older value of memory it has not fenced since: an I-side fill
            // through any translation stands for that.
            ..small(geo::SMALL_PIPT, CacheGeometry { indexing: Indexing::Pipt, ..icache_of(geo::SMALL_PIPT) })
        },
        arch: "riscv".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    // SH-4: VIPT caches that never snoop, maintained by address (`ocb*`) or through the
    // address arrays, no speculation, non-coherent DMA maintained before the transfer only.
    // Uniprocessors: `sh4` is SH7750-like (direct-mapped D-cache of 4 colours, I-cache of 2),
    // `sh4a` SH7780-like (4-way D- and I-caches of 2 colours).
    let sh7750 = small(
        geo::SMALL_R4K,
        CacheGeometry {
            sets: geo::SMALL_R4K.sets / 2,
            ..icache_of(geo::SMALL_R4K)
        },
    );
    v.push(Preset {
        name: "sh4".into(),
        description: "SH-4 (mainline), SH7750-like: 1 CPU, direct-mapped VIPT D-cache (4 colours) and I-cache (2 colours), non-coherent DMA, block I/O by DMA".into(),
        machine: sh7750,
        arch: "sh4".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "sh7750".into(),
        description: "SH-4 (mainline) on the SH7750's own geometry: 4 KiB pages, 16 KiB direct-mapped VIPT D-cache of 32-byte lines (4 colours), 8 KiB I-cache (2 colours), 1 CPU, non-coherent DMA, block I/O by DMA (the scaled `sh4` runs faster)".into(),
        machine: MachineConfig {
            page_size: 4096,
            ..small(geo::R4K, CacheGeometry { sets: geo::R4K.sets / 2, ..icache_of(geo::R4K) })
        },
        arch: "sh4".into(),
        switches: Switches::default(),
        io: Io::Dma,
        world: WorldShape::default(),
    });
    v.push(Preset {
        name: "sh4a".into(),
        description: "SH-4A (mainline), SH7780-like: 1 CPU, 4-way VIPT D- and I-caches (2 colours), non-coherent DMA, file reads by PIO".into(),
        machine: small(geo::SMALL_V6_2COLOUR, icache_of(geo::SMALL_V6_2COLOUR)),
        arch: "sh4".into(),
        switches: Switches::default(),
        io: Io::Pio,
        world: WorldShape::default(),
    });
    v
}

/// The preset called `name`.
pub fn by_name(name: &str) -> Option<Preset> {
    all().into_iter().find(|p| p.name == name)
}

/// Names of every preset.
pub fn names() -> Vec<String> {
    all().into_iter().map(|p| p.name).collect()
}

impl Preset {
    /// The actors' names, by id: threads `T0..`, kernel threads `K0..`, then `IRQ`.
    pub fn actor_names(&self) -> Vec<String> {
        let w = &self.world;
        let mut v: Vec<String> = (0..w.threads + w.spare_threads)
            .map(|t| format!("T{t}"))
            .collect();
        v.extend((0..w.kthreads).map(|k| format!("K{k}")));
        if w.irq {
            v.push("IRQ".into());
        }
        v
    }
}

/// Why a machine file or a built preset is not usable.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MachineError {
    /// Where: the file, and the line and column when the text is at fault.
    pub at: String,
    /// What is wrong.
    pub message: String,
}

impl std::fmt::Display for MachineError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.at.is_empty() {
            write!(f, "{}", self.message)
        } else {
            write!(f, "{}: {}", self.at, self.message)
        }
    }
}

impl std::error::Error for MachineError {}

/// The largest machine file read.
pub const MAX_MACHINE_FILE: u64 = 64 * 1024;

impl Preset {
    /// Checks that the preset can be built: the machine's shape ([`MachineConfig::validate`])
    /// and a world that fits it.
    pub fn validate(&self) -> Result<(), String> {
        if self.name.is_empty() || self.name.chars().any(char::is_whitespace) {
            return Err(format!("a preset's name is one word, not `{}`", self.name));
        }
        self.machine.validate()?;
        let w = &self.world;
        if w.threads == 0 {
            return Err("the world needs at least one thread".into());
        }
        let actors =
            w.threads as usize + w.spare_threads as usize + w.kthreads as usize + w.irq as usize;
        if actors > crate::addr::MAX_ACTORS {
            return Err(format!(
                "{actors} actors is more than {}",
                crate::addr::MAX_ACTORS
            ));
        }
        if w.files == 0 || !(1..=8).contains(&w.file_pages) {
            return Err("the world needs at least one file, of 1 to 8 pages".into());
        }
        let buffers = w.buffers_low as u32 + w.buffers_high as u32;
        if buffers == 0 {
            return Err("the world needs at least one driver buffer".into());
        }
        let lowmem_taken = w.buffers_low as u32
            + (w.buffers_high as u32).saturating_sub(self.machine.highmem_frames);
        if lowmem_taken >= self.machine.lowmem_frames {
            return Err(format!(
                "{} lowmem frames cannot hold {lowmem_taken} driver buffers and anything else",
                self.machine.lowmem_frames
            ));
        }
        Ok(())
    }

    /// The preset as a machine file ([`from_toml`] reads it back to the same preset).
    pub fn to_toml(&self) -> String {
        let body = toml::to_string_pretty(self).expect("a preset serializes");
        format!(
            "# flushfuzz machine file: `flushfuzz presets --show NAME` prints any preset this way;\n\
             # `--machine FILE` runs it wherever `--preset` works.\n{body}"
        )
    }
}

/// Reads a machine file's text (`path` names it in errors).
pub fn from_toml(text: &str, path: &str) -> Result<Preset, MachineError> {
    let p: Preset = toml::from_str(text).map_err(|e| {
        let at = match e.span() {
            Some(span) => {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
                format!("{path}:{line}:{column}")
            }
            None => path.to_string(),
        };
        MachineError {
            at,
            message: e.message().to_string(),
        }
    })?;
    p.validate().map_err(|message| MachineError {
        at: path.to_string(),
        message,
    })?;
    Ok(p)
}

/// Reads a machine file (at most [`MAX_MACHINE_FILE`] bytes).
pub fn load_machine(path: &std::path::Path) -> Result<Preset, MachineError> {
    use std::io::Read as _;
    let at = path.display().to_string();
    let err = |message: String| MachineError {
        at: at.clone(),
        message,
    };
    let f = std::fs::File::open(path).map_err(|e| err(e.to_string()))?;
    let mut bytes = Vec::new();
    f.take(MAX_MACHINE_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| err(e.to_string()))?;
    if bytes.len() as u64 > MAX_MACHINE_FILE {
        return Err(err(format!(
            "larger than any machine file ({MAX_MACHINE_FILE} bytes at most)"
        )));
    }
    let text = String::from_utf8(bytes).map_err(|_| err("not UTF-8 text".into()))?;
    from_toml(&text, &at)
}

/// Builds a preset from another, a setting at a time, and checks it.
///
/// ```
/// use flushfuzz::preset::{self, Builder};
/// let p = Builder::from(preset::by_name("nfs-vmap-alias-fixed").unwrap())
///     .name("my-soc")
///     .cpus(2)
///     .switch("readdir_decodes_through_vmap", true)
///     .build()
///     .unwrap();
/// assert_eq!(p.machine.cpus, 2);
/// ```
#[derive(Clone, Debug)]
pub struct Builder {
    p: Preset,
    bad_switch: Option<String>,
}

impl From<Preset> for Builder {
    fn from(p: Preset) -> Builder {
        Builder {
            p,
            bad_switch: None,
        }
    }
}

impl Builder {
    /// Names the preset.
    pub fn name(mut self, name: &str) -> Builder {
        self.p.name = name.into();
        self
    }

    /// Describes it.
    pub fn description(mut self, d: &str) -> Builder {
        self.p.description = d.into();
        self
    }

    /// Names its arch.
    pub fn arch(mut self, arch: &str) -> Builder {
        self.p.arch = arch.into();
        self
    }

    /// Sets the number of CPUs.
    pub fn cpus(mut self, n: u8) -> Builder {
        self.p.machine.cpus = n;
        self
    }

    /// Sets the D-cache geometry.
    pub fn dcache(mut self, g: CacheGeometry) -> Builder {
        self.p.machine.dcache = g;
        self
    }

    /// Sets the I-cache geometry.
    pub fn icache(mut self, g: CacheGeometry) -> Builder {
        self.p.machine.icache = g;
        self
    }

    /// Changes anything else of the machine.
    pub fn machine(mut self, f: impl FnOnce(&mut MachineConfig)) -> Builder {
        f(&mut self.p.machine);
        self
    }

    /// Sets a historical switch by name.
    pub fn switch(mut self, name: &str, on: bool) -> Builder {
        if !self.p.switches.set(name, on) {
            self.bad_switch = Some(name.into());
        }
        self
    }

    /// Sets the initial world.
    pub fn world(mut self, w: WorldShape) -> Builder {
        self.p.world = w;
        self
    }

    /// Sets how the page cache is filled.
    pub fn io(mut self, io: Io) -> Builder {
        self.p.io = io;
        self
    }

    /// The preset, checked.
    pub fn build(self) -> Result<Preset, MachineError> {
        let err = |message| MachineError {
            at: String::new(),
            message,
        };
        if let Some(s) = self.bad_switch {
            return Err(err(format!("unknown switch `{s}`")));
        }
        self.p.validate().map_err(err)?;
        Ok(self.p)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every shipped preset prints as a machine file that reads back to the same preset.
    #[test]
    fn machine_files_round_trip() {
        for p in all() {
            let text = p.to_toml();
            let back =
                from_toml(&text, "x.toml").unwrap_or_else(|e| panic!("{}: {e}\n{text}", p.name));
            assert_eq!(back, p, "{text}");
        }
    }

    /// A mistake in a machine file is named with its place.
    #[test]
    fn machine_file_errors_say_where() {
        let p = by_name("coherent").unwrap();
        let text = p.to_toml().replace("cpus = 2", "cpus = 9");
        let e = from_toml(&text, "m.toml").unwrap_err();
        assert!(e.to_string().contains("1 to 4 CPUs"), "{e}");
        let text = p.to_toml().replace("dcache_coherent", "dcache_coherant");
        let e = from_toml(&text, "m.toml").unwrap_err();
        assert!(e.at.starts_with("m.toml:"), "{e}");
        assert!(e.message.contains("dcache_coherant"), "{e}");
        let e = Builder::from(p)
            .switch("no_such_switch", true)
            .build()
            .unwrap_err();
        assert!(e.message.contains("no_such_switch"), "{e}");
    }
}
