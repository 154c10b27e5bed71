//! Presets: a machine, an arch implementation, historical behaviour switches, and the initial
//! world (processes, files, driver buffers, actors).
//!
//! Each race of the mails has a preset with the behaviour of the kernel that had it and a
//! `-fixed` twin with mainline behaviour on the same machine; `coherent` is fully coherent
//! hardware with every historical switch on. Switches describe what old code did, in its order;
//! none names a race.

use crate::geometry::{presets as geo, CacheGeometry, Indexing, WritePolicy};
use crate::machine::{Broadcast, IcacheCoherence, MachineConfig, Speculation};
use serde::Serialize;

/// Historical kernel behaviours. `Default` is mainline.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Io {
    /// Programmed I/O: the driver stores the data through a kernel mapping.
    Pio,
    /// Streaming DMA from the device.
    Dma,
}

/// The initial world.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
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

/// A preset.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Preset {
    /// Its name.
    pub name: String,
    /// One line saying what it is.
    pub description: String,
    /// The machine.
    pub machine: MachineConfig,
    /// The arch implementation, by name (one of [`crate::model::SHIPPED_ARCHES`], or a user's
    /// arch name when a user's model pairs the preset with it).
    pub arch: String,
    /// Historical behaviours.
    pub switches: Switches,
    /// How the page cache is filled.
    pub io: Io,
    /// The initial world.
    pub world: WorldShape,
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

/// Every preset: the five races, their `-fixed` twins, `coherent`, and a PA-RISC machine.
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
