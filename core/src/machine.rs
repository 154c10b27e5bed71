//! The hardware: memory, CPUs with their D-cache, I-cache and TLB, the page tables the MMU
//! walks, and a DMA device.
//!
//! Every access goes through a translation (TLB, then a page-table walk that fills the TLB) and
//! then through the caches the configuration describes: write-back or write-through, write
//! allocation, hardware coherence between CPUs' D-caches for the same physical line, I-caches
//! that fill from memory or from the D-side and may or may not snoop stores, and a device that
//! reads and writes memory coherently or not. Maintenance primitives (clean, invalidate, flush by
//! virtual address, by set and way, whole cache; I-cache invalidate; TLB invalidate) are what
//! arch implementations build the Linux flush APIs from.
//!
//! The machine knows nothing of processes, VMAs, page flags or the kernel's policies, and
//! nothing of the oracle: it reports where every value came from and lets callers judge.

use crate::addr::{
    div_size, layout, rem_size, AliasKind, CpuId, MmId, Pa, Pfn, Stamp, Va, Vpn, MAX_CPUS,
};
use crate::cache::{Cache, Slot, Victim};
use crate::canon::Canon;
use crate::event::{Event, Log, Side, Source};
use crate::footprint::{Footprint, Resource, Touches};
use crate::geometry::{CacheGeometry, WritePolicy};
use crate::reuse::Changes;
use serde::{Deserialize, Serialize};

/// How the I-cache relates to the D-side.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum IcacheCoherence {
    /// Fills from memory and ignores stores (ARM, PA-RISC).
    None,
    /// Fills from the local D-cache when the line is there, else memory (through the other
    /// CPUs' D-caches where those are coherent); ignores stores (MIPS `cpu_has_ic_fills_f_dc`).
    FillsFromDcache,
    /// Fully coherent: stores anywhere invalidate matching I-lines, fills see dirty D-lines.
    Snooping,
}

/// Whether maintenance by virtual address reaches other CPUs (ARM ID_MMFR3 "maintenance
/// broadcast").
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Broadcast {
    /// Cache and TLB maintenance act on the issuing CPU only (ARM11MPCore).
    None,
    /// Cache maintenance by VA is broadcast; TLB maintenance is local.
    Cache,
    /// Both are broadcast (ARMv7 MP).
    CacheAndTlb,
}

/// The hardware's shape.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MachineConfig {
    /// Number of CPUs, 1 to [`MAX_CPUS`].
    pub cpus: u8,
    /// Bytes per page; a power of two.
    pub page_size: u32,
    /// Data cache of each CPU.
    pub dcache: CacheGeometry,
    /// Instruction cache of each CPU.
    pub icache: CacheGeometry,
    /// How the I-cache relates to the D-side.
    pub icache_coherence: IcacheCoherence,
    /// Whether hardware keeps the CPUs' D-caches coherent for lines with the same set and tag.
    pub dcache_coherent: bool,
    /// Whether maintenance by VA reaches other CPUs.
    pub broadcast: Broadcast,
    /// Whether the device's memory accesses snoop the caches.
    pub dma_coherent: bool,
    /// Frames of lowmem (in the linear map), at most 64.
    pub lowmem_frames: u32,
    /// Frames of highmem (reachable only through temporary mappings).
    pub highmem_frames: u32,
    /// pkmap slots (at most [`layout::MAX_PKMAP`]).
    pub pkmap_slots: u32,
    /// Which caches may be filled speculatively through any valid translation.
    pub speculation: Speculation,
    /// Whether the MMU walks page tables itself. Without a walker (PA-RISC's software-loaded
    /// TLB) speculation only goes through TLB entries, so purging a TLB entry stops it.
    pub hw_walker: bool,
    /// Whether the linear map of lowmem is executable, so that the I-side may fill through it
    /// (speculatively; nothing in the kernel model executes through it). Not on ARMv6 and
    /// later, where `build_mem_type_table` makes `MT_MEMORY_RW`, the type of lowmem outside
    /// the kernel image, execute-never, and the architecture fetches nothing, not even
    /// speculatively, from execute-never memory; nor on arm64 (`PAGE_KERNEL` is PXN). ARMv4/v5
    /// have no execute-never bit, and MIPS kseg0 and SH-4 P1 are unmapped segments, executable
    /// throughout. A machine file that leaves it out has it.
    #[serde(default = "executable")]
    pub linear_exec: bool,
}

/// The default of [`MachineConfig::linear_exec`].
fn executable() -> bool {
    true
}

/// Which caches the CPU fills speculatively (prefetch through any valid translation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Speculation {
    /// No speculative fills (ARMv4/v5 data side, MIPS R4K).
    None,
    /// Instruction prefetch only.
    Icache,
    /// Both caches (modern out-of-order cores, PA8800).
    Both,
}

impl MachineConfig {
    /// Checks the configuration can be built.
    pub fn validate(&self) -> Result<(), String> {
        self.dcache.validate()?;
        self.icache.validate()?;
        if self.cpus == 0 || self.cpus as usize > MAX_CPUS {
            return Err(format!(
                "a machine has 1 to {MAX_CPUS} CPUs, not {}",
                self.cpus
            ));
        }
        if !self.page_size.is_power_of_two() || self.page_size < self.dcache.line {
            return Err(format!(
                "page size {} must be a power of two no smaller than a line",
                self.page_size
            ));
        }
        for g in [&self.dcache, &self.icache] {
            if g.colours(self.page_size) > layout::COLOUR_WIN_STRIDE {
                return Err(format!(
                    "at most {} colours are supported",
                    layout::COLOUR_WIN_STRIDE
                ));
            }
        }
        if self.lowmem_frames == 0 || self.lowmem_frames as u64 > layout::PKMAP - layout::LINEAR {
            return Err("lowmem must have 1 to 64 frames".into());
        }
        if self.pkmap_slots == 0 || self.pkmap_slots as usize > layout::MAX_PKMAP {
            return Err(format!("pkmap needs 1 to {} slots", layout::MAX_PKMAP));
        }
        Ok(())
    }

    /// Total frames.
    pub fn frames(&self) -> u32 {
        self.lowmem_frames + self.highmem_frames
    }

    /// Whether frame `pfn` is highmem.
    pub fn is_highmem(&self, pfn: Pfn) -> bool {
        pfn >= self.lowmem_frames
    }
}

/// A page-table entry. Kernel and user tables use the same format.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Pte {
    /// The frame it maps.
    pub pfn: Pfn,
    /// Whether it maps anything.
    pub present: bool,
    /// Whether stores are allowed.
    pub write: bool,
    /// Whether instruction fetches are allowed.
    pub exec: bool,
    /// Whether the cache is used (VIVT `make_coherent` clears this).
    pub cacheable: bool,
}

impl Pte {
    /// A present, cacheable entry.
    pub fn new(pfn: Pfn, write: bool, exec: bool) -> Pte {
        Pte {
            pfn,
            present: true,
            write,
            exec,
            cacheable: true,
        }
    }
}

/// What an access wants to do.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// A data read.
    Read,
    /// A data write.
    Write,
    /// An instruction fetch.
    Exec,
}

/// Why a translation failed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fault {
    /// No present entry.
    NotPresent,
    /// A store to a read-only entry.
    WriteProtect,
    /// A fetch from a non-executable entry.
    NoExec,
}

/// A successful translation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Translation {
    /// The physical address.
    pub pa: Pa,
    /// The entry used (from the TLB, possibly stale).
    pub pte: Pte,
    /// The address space of a user address, for ASID-tagged caches.
    pub asid: Option<MmId>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
struct TlbEntry {
    asid: Option<MmId>,
    vpn: Vpn,
    pte: Pte,
}

/// One CPU's private hardware state.
#[derive(Debug)]
pub struct Cpu {
    /// Data cache.
    pub d: Cache,
    /// Instruction cache.
    pub i: Cache,
    tlb: Vec<TlbEntry>,
    /// The TLB entry found last: where the next lookup looks first. Entries are unique per
    /// address space and page, so where a lookup starts changes nothing but its speed.
    tlb_hint: std::cell::Cell<usize>,
    /// The address space whose user page table the MMU walks.
    pub mm: Option<MmId>,
}

crate::reuse::clone_reusing!(Cpu {
    d,
    i,
    tlb,
    tlb_hint,
    mm
});

impl Cpu {
    /// The TLB entry for `vpn` in `asid`, if any.
    fn tlb_entry(&self, vpn: Vpn, asid: Option<MmId>) -> Option<&TlbEntry> {
        let hit = |e: &TlbEntry| e.vpn == vpn && e.asid == asid;
        if let Some(e) = self.tlb.get(self.tlb_hint.get()).filter(|e| hit(e)) {
            return Some(e);
        }
        let i = self.tlb.iter().position(hit)?;
        self.tlb_hint.set(i);
        Some(&self.tlb[i])
    }
}

/// A value read, and where it came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Observed {
    /// The value.
    pub value: Stamp,
    /// Its origin.
    pub from: Source,
}

/// Cache maintenance operations.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum CacheOp {
    /// Write back if dirty; keep the line.
    Clean,
    /// Discard, dirty or not.
    Invalidate,
    /// Write back if dirty, then discard (Linux "flush").
    Flush,
}

impl CacheOp {
    fn why(self) -> &'static str {
        match self {
            CacheOp::Clean => "clean",
            CacheOp::Invalidate => "invalidate",
            CacheOp::Flush => "flush",
        }
    }
}

/// Whether a maintenance operation acts on this CPU or on all of them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// The issuing CPU (plus others if the hardware broadcasts VA maintenance).
    Local,
    /// Every CPU (by hardware broadcast or by inter-processor interrupt).
    AllCpus,
}

/// Where a peek finds a line: a cache line, memory, or the bytes of an I-fill (at this line
/// address) in the scratch buffer.
#[derive(Clone, Copy, Debug)]
enum Peeked {
    Line(CpuId, Side, Slot),
    Memory,
    Fill(Pa),
}

/// Physical memory, one stamp per byte, with the frames written since it was a copy of a
/// snapshot: resetting a copy to its snapshot copies back only those.
#[derive(Debug)]
struct Memory {
    bytes: Vec<Stamp>,
    page: u32,
    changes: Changes,
    /// The units read and written while a watch is on ([`crate::footprint`]), and the unit.
    watch: Option<Box<(Touches, u32)>>,
}

impl Memory {
    fn new(bytes: Vec<Stamp>, page: u32) -> Memory {
        let frames = bytes.len().div_ceil(page as usize);
        Memory {
            bytes,
            page,
            changes: Changes::new(frames),
            watch: None,
        }
    }

    #[inline]
    fn note(&self, pa: usize, len: usize, write: bool) {
        if let Some(w) = &self.watch {
            let (t, unit) = &**w;
            let unit = *unit as usize;
            for u in pa / unit..(pa + len.max(1)).div_ceil(unit) {
                t.read(u);
                if write {
                    t.write(u);
                }
            }
        }
    }

    /// The byte at `pa`.
    #[inline]
    fn get(&self, pa: usize) -> Stamp {
        self.note(pa, 1, false);
        self.bytes[pa]
    }

    /// The `len` bytes from `pa`.
    #[inline]
    fn slice(&self, pa: usize, len: usize) -> &[Stamp] {
        self.note(pa, len, false);
        &self.bytes[pa..pa + len]
    }

    /// Writes `values` from `pa` on.
    fn write(&mut self, pa: usize, values: &[Stamp]) {
        if values.is_empty() {
            return;
        }
        self.note(pa, values.len(), true);
        let first = div_size(pa as u64, self.page) as usize;
        let last = div_size((pa + values.len() - 1) as u64, self.page) as usize;
        self.changes.mark_range(first, last);
        self.bytes[pa..pa + values.len()].copy_from_slice(values);
    }

    /// Writes one byte.
    fn set(&mut self, pa: usize, v: Stamp) {
        self.write(pa, &[v]);
    }
}

impl Clone for Memory {
    fn clone(&self) -> Self {
        Memory {
            bytes: self.bytes.clone(),
            page: self.page,
            changes: self.changes.clone(),
            watch: self.watch.clone(),
        }
    }

    /// Reuses the allocation, and copies back only the frames written when `source` is this
    /// copy's unchanged snapshot.
    fn clone_from(&mut self, source: &Self) {
        if self.changes.resets_from(&source.changes) {
            let (p, bytes) = (self.page as usize, &mut self.bytes);
            self.changes.take(|f| {
                let r = f * p..((f + 1) * p).min(bytes.len());
                bytes[r.clone()].copy_from_slice(&source.bytes[r]);
            });
        } else {
            self.bytes.clone_from(&source.bytes);
            self.changes.clone_from(&source.changes);
        }
        self.page = source.page;
        self.watch.clone_from(&source.watch);
    }
}

/// The hardware state of a run.
#[derive(Debug)]
pub struct Machine {
    cfg: MachineConfig,
    mem: Memory,
    /// The CPUs.
    pub cpus: Vec<Cpu>,
    kernel_pt: Vec<Pte>,
    user_pt: Vec<Vec<Pte>>,
    /// Present entries of the kernel table, and of each user table (kept with the tables).
    kernel_present: usize,
    user_present: Vec<usize>,
    /// The event log.
    pub log: Log,
    scratch: Vec<Stamp>,
    /// The translations, page-table entries and address-space registers read and written
    /// while a watch is on ([`crate::footprint`]).
    watch: Option<Box<XlateWatch>>,
}

crate::reuse::clone_reusing!(Machine {
    cfg,
    mem,
    cpus,
    kernel_pt,
    user_pt,
    kernel_present,
    user_present,
    log,
    scratch,
    watch
});

/// A page-table entry as one word.
fn pte_word(p: Pte) -> u64 {
    p.pfn as u64
        | (p.present as u64) << 32
        | (p.write as u64) << 33
        | (p.exec as u64) << 34
        | (p.cacheable as u64) << 35
}

/// What a watch records of translation ([`Machine::set_watch`]).
#[derive(Clone, Debug, Default)]
struct XlateWatch {
    pt: Touches,
    mm: Touches,
    tlb: Vec<Touches>,
}

/// The number of a page-table entry (and of the TLB entries that cache it) among the
/// [`Resource::PageTable`] and [`Resource::Tlb`] resources: kernel pages first, then 64 per
/// user address space.
fn xlate_unit(asid: Option<MmId>, vpn: Vpn) -> usize {
    match asid {
        Some(m) if vpn < layout::USER_PAGES => {
            (layout::KERNEL_END - layout::USER_PAGES) as usize
                + m as usize * layout::USER_PAGES as usize
                + vpn as usize
        }
        _ => vpn.saturating_sub(layout::USER_PAGES) as usize,
    }
}

impl Machine {
    /// Makes this machine's memory and caches snapshots their copies can be reset to cheaply
    /// (see [`crate::world::State::snapshot`]).
    pub fn snapshot(&mut self) {
        self.mem.changes.snapshot();
        for c in &mut self.cpus {
            c.d.snapshot();
            c.i.snapshot();
        }
    }

    /// Starts recording what the machine reads and writes (see [`crate::footprint`]), or
    /// stops.
    pub(crate) fn set_watch(&mut self, on: bool) {
        let unit = self.cfg.dcache.line.min(self.cfg.icache.line);
        self.mem.watch = on.then(|| Box::new((Touches::default(), unit)));
        for c in &mut self.cpus {
            c.d.set_watch(on);
            c.i.set_watch(on);
        }
        self.watch = on.then(|| {
            Box::new(XlateWatch {
                tlb: vec![Touches::default(); self.cpus.len()],
                ..XlateWatch::default()
            })
        });
    }

    /// What was read and written since the watch began, and clears it for the next stretch.
    pub(crate) fn footprint(&self) -> Footprint {
        let mut f = Footprint::default();
        if let Some(w) = &self.mem.watch {
            let (r, wr) = w.0.take();
            f.add(Resource::Memory, r, wr);
        }
        for (i, c) in self.cpus.iter().enumerate() {
            let (r, wr) = c.d.watched();
            f.add(Resource::DSets(i as u8), r, wr);
            let (r, wr) = c.i.watched();
            f.add(Resource::ISets(i as u8), r, wr);
        }
        if let Some(w) = &self.watch {
            let (r, wr) = w.pt.take();
            f.add(Resource::PageTable, r, wr);
            let (r, wr) = w.mm.take();
            f.add(Resource::CpuMm, r, wr);
            for (i, t) in w.tlb.iter().enumerate() {
                let (r, wr) = t.take();
                f.add(Resource::Tlb(i as u8), r, wr);
            }
        }
        f
    }

    /// Writes the canonical form of this machine (see [`crate::canon`]): memory frames, cache
    /// lines and page-table entries that differ from `tpl`'s, each CPU's address space and TLB
    /// (as a set: entries are unique per page and address space, and only their presence
    /// matters). The event log, the scratch buffer and the watch are no part of it.
    pub(crate) fn canon(&self, tpl: &Machine, c: &mut Canon<'_>) {
        c.part(1);
        let page = self.cfg.page_size as usize;
        for (f, (a, b)) in self
            .mem
            .bytes
            .chunks(page)
            .zip(tpl.mem.bytes.chunks(page))
            .enumerate()
        {
            if self.mem.changes.marked(f) && a != b {
                c.word(f as u64);
                c.stamps(a);
            }
        }
        c.part(2);
        let mut tlb: Vec<(u64, u64)> = Vec::new();
        for cpu in &self.cpus {
            c.word(cpu.mm.map_or(0, |m| m as u64 + 1));
            cpu.d.canon(c);
            cpu.i.canon(c);
            tlb.clear();
            tlb.extend(
                cpu.tlb
                    .iter()
                    .map(|e| (xlate_unit(e.asid, e.vpn) as u64, pte_word(e.pte))),
            );
            tlb.sort_unstable();
            c.word(tlb.len() as u64);
            for &(u, p) in &tlb {
                c.word(u);
                c.word(p);
            }
        }
        c.part(3);
        for (i, (a, b)) in self.kernel_pt.iter().zip(&tpl.kernel_pt).enumerate() {
            if a != b {
                c.word(i as u64);
                c.word(pte_word(*a));
            }
        }
        c.part(4);
        for (m, t) in self.user_pt.iter().enumerate() {
            c.word(m as u64 | (t.len() as u64) << 32);
            for (v, p) in t.iter().enumerate() {
                if *p != Pte::default() {
                    c.word(v as u64);
                    c.word(pte_word(*p));
                }
            }
        }
    }

    #[inline]
    fn note_xlate(&self, f: impl FnOnce(&XlateWatch)) {
        if let Some(w) = &self.watch {
            f(w);
        }
    }

    /// A machine with memory holding `initial(pa)` at each byte.
    pub fn new(cfg: MachineConfig, log: Log, mut initial: impl FnMut(Pa) -> Stamp) -> Machine {
        let bytes = cfg.frames() as u64 * cfg.page_size as u64;
        let mem = Memory::new((0..bytes).map(&mut initial).collect(), cfg.page_size);
        let cpus = (0..cfg.cpus)
            .map(|_| Cpu {
                d: Cache::new(cfg.dcache),
                i: Cache::new(cfg.icache),
                tlb: Vec::new(),
                tlb_hint: std::cell::Cell::new(0),
                mm: None,
            })
            .collect();
        let kernel_pt = vec![Pte::default(); (layout::KERNEL_END - layout::USER_PAGES) as usize];
        let scratch = vec![0; cfg.dcache.line.max(cfg.icache.line) as usize];
        let mut m = Machine {
            cfg,
            mem,
            cpus,
            kernel_pt,
            user_pt: Vec::new(),
            kernel_present: 0,
            user_present: Vec::new(),
            log,
            scratch,
            watch: None,
        };
        for pfn in 0..m.cfg.lowmem_frames {
            m.kernel_pt[(layout::LINEAR - layout::USER_PAGES) as usize + pfn as usize] =
                Pte::new(pfn, true, m.cfg.linear_exec);
        }
        m.kernel_present = m.kernel_pt.iter().filter(|p| p.present).count();
        m
    }

    /// The configuration.
    pub fn config(&self) -> &MachineConfig {
        &self.cfg
    }

    /// Bytes per page.
    #[inline]
    pub fn page_size(&self) -> u32 {
        self.cfg.page_size
    }

    /// The memory contents of byte `pa`, bypassing every cache.
    pub fn memory(&self, pa: Pa) -> Stamp {
        self.mem.get(pa as usize)
    }

    /// The memory contents of the `len` bytes from `pa`, bypassing every cache.
    pub fn memory_bytes(&self, pa: Pa, len: u64) -> &[Stamp] {
        self.mem.slice(pa as usize, len as usize)
    }

    /// Writes memory directly, bypassing every cache (setup only).
    pub fn poke_memory(&mut self, pa: Pa, v: Stamp) {
        self.mem.set(pa as usize, v);
    }

    /// The linear-map address of lowmem frame `pfn`.
    pub fn linear_va(&self, pfn: Pfn) -> Option<Va> {
        (pfn < self.cfg.lowmem_frames)
            .then(|| (layout::LINEAR + pfn as u64) * self.cfg.page_size as u64)
    }

    // ---- page tables -------------------------------------------------------------------

    /// Creates an empty user page table for `mm` (ids are dense and increasing).
    pub fn create_user_pt(&mut self, mm: MmId) {
        self.note_xlate(|w| {
            for vpn in 0..layout::USER_PAGES {
                w.pt.write(xlate_unit(Some(mm), vpn));
            }
        });
        let need = mm as usize + 1;
        if self.user_pt.len() < need {
            self.user_pt.resize(need, Vec::new());
            self.user_present.resize(need, 0);
        }
        self.user_pt[mm as usize] = vec![Pte::default(); layout::USER_PAGES as usize];
        self.user_present[mm as usize] = 0;
    }

    /// The entry for `vpn` in `mm`'s table (user pages) or the kernel table.
    pub fn pte(&self, mm: Option<MmId>, vpn: Vpn) -> Pte {
        self.note_xlate(|w| w.pt.read(xlate_unit(mm, vpn)));
        if vpn < layout::USER_PAGES {
            mm.and_then(|m| self.user_pt.get(m as usize))
                .and_then(|t| t.get(vpn as usize))
                .copied()
                .unwrap_or_default()
        } else {
            self.kernel_pt
                .get((vpn - layout::USER_PAGES) as usize)
                .copied()
                .unwrap_or_default()
        }
    }

    /// Writes a page-table entry. This is the moment a mapping becomes visible to every CPU's
    /// table walker; TLBs keep old entries until flushed.
    pub fn set_pte(&mut self, mm: Option<MmId>, vpn: Vpn, pte: Pte) {
        self.note_xlate(|w| w.pt.write(xlate_unit(mm, vpn)));
        let page = self.cfg.page_size as u64;
        self.log.push(|| Event::Pte {
            va: vpn * page,
            what: if pte.present {
                format!(
                    "-> pfn {}{}{}{}",
                    pte.pfn,
                    if pte.write { " w" } else { " ro" },
                    if pte.exec { " x" } else { "" },
                    if pte.cacheable { "" } else { " uncached" }
                )
            } else {
                "cleared".into()
            },
        });
        if vpn < layout::USER_PAGES {
            if let Some(m) = mm.filter(|&m| (m as usize) < self.user_pt.len()) {
                let e = &mut self.user_pt[m as usize][vpn as usize];
                self.user_present[m as usize] += pte.present as usize;
                self.user_present[m as usize] -= e.present as usize;
                *e = pte;
            }
        } else if let Some(e) = self.kernel_pt.get_mut((vpn - layout::USER_PAGES) as usize) {
            self.kernel_present += pte.present as usize;
            self.kernel_present -= e.present as usize;
            *e = pte;
        }
    }

    // ---- translation -------------------------------------------------------------------

    fn asid_of(&self, cpu: CpuId, vpn: Vpn) -> Option<MmId> {
        if vpn < layout::USER_PAGES {
            self.note_xlate(|w| w.mm.read(cpu as usize));
            self.cpus[cpu as usize].mm
        } else {
            None
        }
    }

    /// Looks `va` up in `cpu`'s TLB, walking the page tables and filling the TLB on a miss.
    /// Permission faults come from the entry used, which may be stale.
    pub fn translate(&mut self, cpu: CpuId, va: Va, access: Access) -> Result<Translation, Fault> {
        let (vpn, asid, cached) = self.find(cpu, va).ok_or(Fault::NotPresent)?;
        let pte = match cached {
            Some(pte) => pte,
            None => {
                let pte = self.pte(asid, vpn);
                if !pte.present {
                    return Err(Fault::NotPresent);
                }
                self.note_xlate(|w| w.tlb[cpu as usize].write(xlate_unit(asid, vpn)));
                let c = &mut self.cpus[cpu as usize];
                c.tlb.push(TlbEntry { asid, vpn, pte });
                c.tlb_hint.set(c.tlb.len() - 1);
                let page = self.cfg.page_size as u64;
                self.log.push(|| Event::TlbFill {
                    cpu,
                    va: vpn * page,
                    pa: pte.pfn as u64 * page,
                });
                pte
            }
        };
        match access {
            Access::Write if !pte.write => return Err(Fault::WriteProtect),
            Access::Exec if !pte.exec => return Err(Fault::NoExec),
            _ => {}
        }
        Ok(self.translation(va, pte, asid))
    }

    /// The translation `cpu` would use for `va` without changing anything (TLB, else tables).
    pub fn probe(&self, cpu: CpuId, va: Va) -> Option<Translation> {
        let (vpn, asid, cached) = self.find(cpu, va)?;
        let pte = cached.unwrap_or_else(|| self.pte(asid, vpn));
        pte.present.then(|| self.translation(va, pte, asid))
    }

    /// The translation `cpu`'s TLB holds for `va`, if any.
    pub fn tlb_probe(&self, cpu: CpuId, va: Va) -> Option<Translation> {
        let vpn = div_size(va, self.cfg.page_size);
        let asid = self.asid_of(cpu, vpn);
        self.note_xlate(|w| w.tlb[cpu as usize].read(xlate_unit(asid, vpn)));
        let e = self.cpus[cpu as usize].tlb_entry(vpn, asid)?;
        Some(self.translation(va, e.pte, asid))
    }

    /// What a lookup of `va` on `cpu` starts from: the page, its address space, and the
    /// entry the TLB holds for it. `None` for a user address while no address space is current.
    #[inline(always)]
    fn find(&self, cpu: CpuId, va: Va) -> Option<(Vpn, Option<MmId>, Option<Pte>)> {
        let vpn = div_size(va, self.cfg.page_size);
        let asid = self.asid_of(cpu, vpn);
        if vpn < layout::USER_PAGES && asid.is_none() {
            return None;
        }
        self.note_xlate(|w| w.tlb[cpu as usize].read(xlate_unit(asid, vpn)));
        let cached = self.cpus[cpu as usize].tlb_entry(vpn, asid).map(|e| e.pte);
        Some((vpn, asid, cached))
    }

    /// The translation of `va` through `pte`.
    #[inline]
    fn translation(&self, va: Va, pte: Pte, asid: Option<MmId>) -> Translation {
        Translation {
            pa: pte.pfn as u64 * self.cfg.page_size as u64 + rem_size(va, self.cfg.page_size),
            pte,
            asid,
        }
    }

    /// The `pick`-th (modulo their number) virtual page `cpu` can translate right now: present
    /// kernel entries, present entries of its current address space, then TLB entries whose
    /// page-table entry has gone (stale translations). `None` if there are none.
    pub fn nth_valid_translation(&self, cpu: CpuId, pick: usize) -> Option<Vpn> {
        self.note_xlate(|w| {
            w.mm.read(cpu as usize);
            w.pt.read_all();
            w.tlb[cpu as usize].read_all();
        });
        let c = &self.cpus[cpu as usize];
        let user = c.mm.and_then(|m| self.user_pt.get(m as usize));
        let stale = |e: &&TlbEntry| {
            let pte = if e.vpn < layout::USER_PAGES {
                if e.asid == c.mm {
                    user.map(|t| t[e.vpn as usize])
                } else {
                    None
                }
            } else {
                Some(self.kernel_pt[(e.vpn - layout::USER_PAGES) as usize])
            };
            pte.is_some_and(|p| !p.present)
        };
        let nk = self.kernel_present;
        let nu =
            c.mm.and_then(|m| self.user_present.get(m as usize))
                .map_or(0, |&n| n);
        let ns = c.tlb.iter().filter(|e| stale(e)).count();
        let n = nk + nu + ns;
        if n == 0 {
            return None;
        }
        let mut i = pick % n;
        if i < nk {
            let k = self
                .kernel_pt
                .iter()
                .enumerate()
                .filter(|(_, p)| p.present)
                .nth(i)
                .expect("counted")
                .0;
            return Some(k as u64 + layout::USER_PAGES);
        }
        i -= nk;
        if i < nu {
            return user
                .and_then(|t| t.iter().enumerate().filter(|(_, p)| p.present).nth(i))
                .map(|(v, _)| v as u64);
        }
        i -= nu;
        c.tlb.iter().filter(|e| stale(e)).nth(i).map(|e| e.vpn)
    }

    /// Switches the address space `cpu`'s MMU walks for user addresses. Nothing is flushed:
    /// that is the arch's business.
    pub fn set_cpu_mm(&mut self, cpu: CpuId, mm: Option<MmId>) {
        self.note_xlate(|w| w.mm.write(cpu as usize));
        self.cpus[cpu as usize].mm = mm;
    }

    // ---- TLB maintenance ---------------------------------------------------------------

    fn tlb_targets(&self, cpu: CpuId, scope: Scope) -> std::ops::Range<usize> {
        if scope == Scope::AllCpus || self.cfg.broadcast == Broadcast::CacheAndTlb {
            0..self.cpus.len()
        } else {
            cpu as usize..cpu as usize + 1
        }
    }

    /// Invalidates TLB entries matching `pred(asid, vpn)`.
    pub fn tlb_invalidate(
        &mut self,
        cpu: CpuId,
        scope: Scope,
        what: impl Fn() -> String,
        pred: impl Fn(Option<MmId>, Vpn) -> bool,
    ) {
        for c in self.tlb_targets(cpu, scope) {
            if let Some(w) = &self.watch {
                for e in self.cpus[c].tlb.iter().filter(|e| pred(e.asid, e.vpn)) {
                    w.tlb[c].write(xlate_unit(e.asid, e.vpn));
                }
            }
            self.cpus[c].tlb.retain(|e| !pred(e.asid, e.vpn));
            self.log.push(|| Event::TlbFlush {
                cpu: c as CpuId,
                what: what(),
            });
        }
    }

    // ---- data accesses -----------------------------------------------------------------

    fn line_of(&self, side: Side) -> u64 {
        match side {
            Side::D => self.cfg.dcache.line as u64,
            Side::I => self.cfg.icache.line as u64,
        }
    }

    fn write_back(&mut self, cpu: CpuId, v: &Victim, why: &'static str) {
        let c = &self.cpus[cpu as usize];
        let data = c.d.data(v.slot);
        let pa = v.meta.pa as usize;
        self.mem.write(pa, data);
        let (slot, va, pa) = (v.slot, v.meta.va, v.meta.pa);
        self.log.push(|| Event::WriteBack {
            cpu,
            slot,
            va,
            pa,
            why,
        });
    }

    /// Writes back and removes a D-line.
    fn evict_d(&mut self, cpu: CpuId, slot: Slot, why: &'static str) -> bool {
        let meta = *self.cpus[cpu as usize].d.meta(slot);
        if !meta.valid {
            return false;
        }
        if meta.dirty {
            self.write_back(cpu, &Victim { slot, meta }, why);
        }
        self.cpus[cpu as usize].d.take(slot);
        self.log.push(|| Event::Drop {
            cpu,
            side: Side::D,
            slot,
            va: meta.va,
            pa: meta.pa,
            dirty: false,
            why,
        });
        true
    }

    /// Hardware coherence: before `cpu` reads (or, if `exclusive`, writes) the line with the same
    /// set and tag, other CPUs write back a dirty copy, and drop theirs if exclusive.
    fn snoop_others(&mut self, cpu: CpuId, key: crate::geometry::Key, exclusive: bool) {
        if !self.cfg.dcache_coherent || self.cpus.len() == 1 {
            return;
        }
        for other in 0..self.cpus.len() as CpuId {
            if other == cpu {
                continue;
            }
            if let Some(slot) = self.cpus[other as usize].d.lookup(key) {
                let meta = *self.cpus[other as usize].d.meta(slot);
                if meta.dirty {
                    self.write_back(other, &Victim { slot, meta }, "coherence snoop");
                    self.cpus[other as usize].d.mark_clean(slot);
                }
                if exclusive {
                    self.cpus[other as usize].d.take(slot);
                    self.log.push(|| Event::Drop {
                        cpu: other,
                        side: Side::D,
                        slot,
                        va: meta.va,
                        pa: meta.pa,
                        dirty: false,
                        why: "coherence snoop",
                    });
                }
            }
        }
    }

    /// Fills the D-line for (`va`, `pa`) on `cpu` from memory, writing back the victim.
    fn fill_d(
        &mut self,
        cpu: CpuId,
        va: Va,
        pa: Pa,
        asid: Option<MmId>,
        speculative: bool,
    ) -> Slot {
        let g = self.cfg.dcache;
        let key = g.key(va, pa, asid);
        self.snoop_others(cpu, key, false);
        let victim = self.cpus[cpu as usize].d.victim_slot(key);
        self.evict_d(cpu, victim, "replaced");
        let (lpa, lva) = (g.line_base(pa), g.line_base(va));
        let n = g.line as usize;
        let (slot, _) = {
            let bytes = self.mem.slice(lpa as usize, n);
            self.cpus[cpu as usize].d.install(key, lpa, lva, bytes)
        };
        self.log.push(|| Event::Fill {
            cpu,
            side: Side::D,
            slot,
            va: lva,
            pa: lpa,
            speculative,
        });
        slot
    }

    /// A data load by `cpu` through `va`, translated to `t`.
    pub fn load(&mut self, cpu: CpuId, va: Va, t: &Translation) -> Observed {
        self.load_from(cpu, va, t, None)
    }

    /// [`Machine::load`] of the next byte of the line a load just read `prev` from, with
    /// nothing done to the caches in between: the same line (or memory, when uncacheable) is
    /// read without looking it up again.
    pub fn load_next(&mut self, cpu: CpuId, va: Va, t: &Translation, prev: Source) -> Observed {
        self.load_from(cpu, va, t, Some(prev))
    }

    /// What the `n` bytes from `va` (at `t.pa`), all in one D-line, read from `from`, where a
    /// load of the first found it: as [`Machine::load_next`] of each would.
    pub fn run_from(
        &self,
        cpu: CpuId,
        va: Va,
        t: &Translation,
        from: Source,
        n: usize,
    ) -> &[Stamp] {
        match from {
            Source::Cache { slot, .. } => {
                let off = rem_size(va, self.cfg.dcache.line) as usize;
                &self.cpus[cpu as usize].d.data(slot)[off..off + n]
            }
            Source::Memory => self.mem.slice(t.pa as usize, n),
        }
    }

    fn load_from(&mut self, cpu: CpuId, va: Va, t: &Translation, prev: Option<Source>) -> Observed {
        let obs = if let Some(from) = prev {
            let value = match from {
                Source::Cache { slot, .. } => {
                    let d = &self.cpus[cpu as usize].d;
                    debug_assert_eq!(d.lookup(self.cfg.dcache.key(va, t.pa, t.asid)), Some(slot));
                    d.read(slot, rem_size(va, self.cfg.dcache.line) as u32)
                }
                Source::Memory => self.mem.get(t.pa as usize),
            };
            Observed { value, from }
        } else if !t.pte.cacheable {
            Observed {
                value: self.mem.get(t.pa as usize),
                from: Source::Memory,
            }
        } else {
            let g = self.cfg.dcache;
            let key = g.key(va, t.pa, t.asid);
            let slot = match self.cpus[cpu as usize].d.lookup(key) {
                Some(s) => s,
                None => self.fill_d(cpu, va, t.pa, t.asid, false),
            };
            let d = &self.cpus[cpu as usize].d;
            let meta = d.meta(slot);
            Observed {
                value: d.read(slot, rem_size(va, g.line) as u32),
                from: Source::Cache {
                    cpu,
                    side: Side::D,
                    slot,
                    dirty: meta.dirty,
                    line_va: meta.va,
                },
            }
        };
        let page = self.cfg.page_size;
        self.log.push(|| Event::Load {
            cpu,
            va,
            pa: t.pa,
            alias: AliasKind::of(va, page),
            value: obs.value,
            from: obs.from,
            fetch: false,
        });
        obs
    }

    /// A data store of `v` by `cpu` through `va`, translated to `t`.
    pub fn store(&mut self, cpu: CpuId, va: Va, t: &Translation, v: Stamp) {
        self.store_run(cpu, va, t, &[v]);
    }

    /// Stores of `values` by `cpu` to the consecutive bytes from `va` (translated to `t`), all
    /// in one D-cache line: what [`Machine::store`] of each byte in turn does, with the line
    /// found (or filled) and the other CPUs' copies snooped once, as the first byte's store
    /// leaves them for the others.
    pub fn store_run(&mut self, cpu: CpuId, va: Va, t: &Translation, values: &[Stamp]) {
        let g = self.cfg.dcache;
        debug_assert!(rem_size(va, g.line) + values.len() as u64 <= g.line as u64);
        let key = g.key(va, t.pa, t.asid);
        let mut hit = false;
        let slot = if t.pte.cacheable {
            self.snoop_others(cpu, key, true);
            match self.cpus[cpu as usize].d.lookup(key) {
                Some(s) => {
                    hit = true;
                    Some(s)
                }
                None => match g.policy {
                    WritePolicy::WriteBack {
                        write_allocate: true,
                    } => Some(self.fill_d(cpu, va, t.pa, t.asid, false)),
                    _ => None,
                },
            }
        } else {
            None
        };
        let wb = matches!(g.policy, WritePolicy::WriteBack { .. });
        if !self.log.enabled() {
            // The same effects, a run at a time: the D-side writes and the I-cache snoops touch
            // different caches, so their order does not matter (it does for the event log).
            let r = t.pa as usize..t.pa as usize + values.len();
            match slot {
                Some(slot) => {
                    let off = rem_size(va, g.line) as u32;
                    self.cpus[cpu as usize].d.write_run(slot, off, values, wb);
                    if !wb {
                        self.mem.write(r.start, values);
                    }
                }
                None => self.mem.write(r.start, values),
            }
            if self.cfg.icache_coherence == IcacheCoherence::Snooping && !values.is_empty() {
                let il = self.cfg.icache.line as u64;
                let mut lpa = self.cfg.icache.line_base(t.pa);
                while lpa < r.end as u64 {
                    self.snoop_icaches(lpa);
                    lpa += il;
                }
            }
            return;
        }
        let page = self.cfg.page_size;
        for (i, &v) in values.iter().enumerate() {
            let (va, pa) = (va + i as u64, t.pa + i as u64);
            match slot {
                Some(slot) => {
                    // The offset in a line is the same in the virtual and the physical address;
                    // a VIVT hit may be a line of another frame filled through the same address.
                    let off = rem_size(va, g.line) as u32;
                    self.cpus[cpu as usize].d.write(slot, off, v, wb);
                    if !wb {
                        self.mem.set(pa as usize, v);
                    }
                }
                None => self.mem.set(pa as usize, v),
            }
            self.snoop_icaches(pa);
            self.log.push(|| Event::Store {
                cpu,
                va,
                pa,
                alias: AliasKind::of(va, page),
                value: v,
                hit,
            });
            // The later bytes hit the line the first one found or filled.
            hit = slot.is_some();
        }
    }

    fn snoop_icaches(&mut self, pa: Pa) {
        if self.cfg.icache_coherence != IcacheCoherence::Snooping {
            return;
        }
        let lpa = self.cfg.icache.line_base(pa);
        for cpu in 0..self.cpus.len() {
            let mut from = 0;
            while let Some((i, s)) = self.cpus[cpu].i.next_holding(from, lpa) {
                from = i + 1;
                let m = self.cpus[cpu].i.take(s).expect("valid slot").meta;
                self.log.push(|| Event::Drop {
                    cpu: cpu as CpuId,
                    side: Side::I,
                    slot: s,
                    va: m.va,
                    pa: m.pa,
                    dirty: false,
                    why: "I-cache snoop",
                });
            }
        }
    }

    /// The bytes an I-cache fill of (`va`, `pa`) on `cpu` would bring in.
    fn ifill_bytes(&mut self, cpu: CpuId, va: Va, pa: Pa, asid: Option<MmId>) -> Pa {
        let gi = self.cfg.icache;
        let lpa = gi.line_base(pa);
        let n = gi.line as usize;
        self.scratch[..n].copy_from_slice(self.mem.slice(lpa as usize, n));
        // Overlay D-side bytes where the I-cache fills from the D-side.
        let overlay = |m: &Self, c: usize, only_dirty: bool, scratch: &mut [Stamp]| {
            let d = &m.cpus[c].d;
            let dl = m.cfg.dcache.line as u64;
            for s in d.valid_slots() {
                let meta = d.meta(s);
                if only_dirty && !meta.dirty {
                    continue;
                }
                let (a, b) = (meta.pa.max(lpa), (meta.pa + dl).min(lpa + n as u64));
                for p in a..b {
                    scratch[(p - lpa) as usize] = d.read(s, (p - meta.pa) as u32);
                }
            }
        };
        let mut scratch = std::mem::take(&mut self.scratch);
        match self.cfg.icache_coherence {
            IcacheCoherence::None => {}
            IcacheCoherence::FillsFromDcache => {
                // With coherent D-caches the fill is a coherent read: a line another CPU holds
                // dirty is supplied by that CPU, as it would be to a load.
                if self.cfg.dcache_coherent {
                    for c in (0..self.cpus.len()).filter(|&c| c != cpu as usize) {
                        overlay(self, c, true, &mut scratch);
                    }
                }
                let gd = self.cfg.dcache;
                let dl = gd.line as u64;
                let mut p = lpa;
                while p < lpa + n as u64 {
                    let dva = va - (pa - p);
                    if let Some(s) = self.cpus[cpu as usize].d.lookup(gd.key(dva, p, asid)) {
                        let meta = self.cpus[cpu as usize].d.meta(s);
                        let end = (meta.pa + dl).min(lpa + n as u64);
                        for q in p..end {
                            scratch[(q - lpa) as usize] =
                                self.cpus[cpu as usize].d.read(s, (q - meta.pa) as u32);
                        }
                        p = end;
                    } else {
                        p = gd.line_base(p) + dl;
                    }
                }
            }
            IcacheCoherence::Snooping => {
                for c in 0..self.cpus.len() {
                    overlay(self, c, true, &mut scratch);
                }
            }
        }
        self.scratch = scratch;
        lpa
    }

    fn fill_i(
        &mut self,
        cpu: CpuId,
        va: Va,
        pa: Pa,
        asid: Option<MmId>,
        speculative: bool,
    ) -> Slot {
        let gi = self.cfg.icache;
        let key = gi.key(va, pa, asid);
        let lpa = self.ifill_bytes(cpu, va, pa, asid);
        let lva = gi.line_base(va);
        let n = gi.line as usize;
        let scratch = std::mem::take(&mut self.scratch);
        let (slot, old) = self.cpus[cpu as usize]
            .i
            .install(key, lpa, lva, &scratch[..n]);
        self.scratch = scratch;
        if let Some(o) = old {
            self.log.push(|| Event::Drop {
                cpu,
                side: Side::I,
                slot,
                va: o.meta.va,
                pa: o.meta.pa,
                dirty: false,
                why: "replaced",
            });
        }
        self.log.push(|| Event::Fill {
            cpu,
            side: Side::I,
            slot,
            va: lva,
            pa: lpa,
            speculative,
        });
        slot
    }

    /// An instruction fetch by `cpu` through `va`, translated to `t`.
    pub fn fetch(&mut self, cpu: CpuId, va: Va, t: &Translation) -> Observed {
        let gi = self.cfg.icache;
        let key = gi.key(va, t.pa, t.asid);
        let slot = match self.cpus[cpu as usize].i.lookup(key) {
            Some(s) => s,
            None => self.fill_i(cpu, va, t.pa, t.asid, false),
        };
        let i = &self.cpus[cpu as usize].i;
        let meta = i.meta(slot);
        let obs = Observed {
            value: i.read(slot, rem_size(va, gi.line) as u32),
            from: Source::Cache {
                cpu,
                side: Side::I,
                slot,
                dirty: false,
                line_va: meta.va,
            },
        };
        let page = self.cfg.page_size;
        self.log.push(|| Event::Load {
            cpu,
            va,
            pa: t.pa,
            alias: AliasKind::of(va, page),
            value: obs.value,
            from: obs.from,
            fetch: true,
        });
        obs
    }

    /// What a load (or fetch) through `va`/`pa` on `cpu` would return, changing nothing. A miss
    /// reports what the fill would bring.
    pub fn peek(&mut self, cpu: CpuId, va: Va, pa: Pa, asid: Option<MmId>, side: Side) -> Observed {
        let at = self.peek_line(cpu, va, pa, asid, side);
        self.peek_read(at, pa)
    }

    /// [`Machine::peek`] of every byte of the page at `va`/`pa`, into `out`. Every byte of one
    /// line comes from the same place, so each line is looked up once.
    pub fn peek_page(
        &mut self,
        cpu: CpuId,
        va: Va,
        pa: Pa,
        asid: Option<MmId>,
        side: Side,
        out: &mut Vec<Observed>,
    ) {
        let len = self.cfg.page_size as u64;
        out.clear();
        let line = self.line_of(side);
        let mut off = 0;
        while off < len {
            let at = self.peek_line(cpu, va + off, pa + off, asid, side);
            // Up to the next line boundary of either address.
            let rest = |a: u64| (a | (line - 1)) + 1 - a;
            let end = (off + rest(va + off).min(rest(pa + off))).min(len);
            out.extend((off..end).map(|o| self.peek_read(at, pa + o)));
            off = end;
        }
    }

    /// Whether [`Machine::peek_page`] would see exactly `want` (a page of values), compared a
    /// line at a time without building the observations: the audit's common case.
    pub fn peek_page_is(
        &mut self,
        cpu: CpuId,
        va: Va,
        pa: Pa,
        asid: Option<MmId>,
        side: Side,
        want: &[Stamp],
    ) -> bool {
        let len = self.cfg.page_size as u64;
        let line = self.line_of(side);
        let mut off = 0;
        while off < len {
            let at = self.peek_line(cpu, va + off, pa + off, asid, side);
            let rest = |a: u64| (a | (line - 1)) + 1 - a;
            let end = (off + rest(va + off).min(rest(pa + off))).min(len);
            let n = (end - off) as usize;
            let seen: &[Stamp] = match at {
                Peeked::Line(c, sd, s) => {
                    let c = &self.cpus[c as usize];
                    let cache = if sd == Side::D { &c.d } else { &c.i };
                    let o = rem_size(pa + off, cache.geometry().line) as usize;
                    &cache.data(s)[o..o + n]
                }
                Peeked::Memory => self.mem.slice((pa + off) as usize, n),
                Peeked::Fill(lpa) => &self.scratch[(pa + off - lpa) as usize..][..n],
            };
            if seen != &want[off as usize..end as usize] {
                return false;
            }
            off = end;
        }
        true
    }

    /// Where a peek through `va`/`pa` finds its line (the same for every byte of the line).
    fn peek_line(&mut self, cpu: CpuId, va: Va, pa: Pa, asid: Option<MmId>, side: Side) -> Peeked {
        match side {
            Side::D => {
                let key = self.cfg.dcache.key(va, pa, asid);
                if let Some(s) = self.cpus[cpu as usize].d.lookup(key) {
                    return Peeked::Line(cpu, Side::D, s);
                }
                if self.cfg.dcache_coherent {
                    for c in 0..self.cpus.len() {
                        let d = &self.cpus[c].d;
                        if let Some(s) = d.lookup(key) {
                            if d.meta(s).dirty {
                                return Peeked::Line(c as CpuId, Side::D, s);
                            }
                        }
                    }
                }
                Peeked::Memory
            }
            Side::I => {
                let key = self.cfg.icache.key(va, pa, asid);
                if let Some(s) = self.cpus[cpu as usize].i.lookup(key) {
                    return Peeked::Line(cpu, Side::I, s);
                }
                Peeked::Fill(self.ifill_bytes(cpu, va, pa, asid))
            }
        }
    }

    /// The byte `pa` where [`Machine::peek_line`] found its line.
    fn peek_read(&self, at: Peeked, pa: Pa) -> Observed {
        match at {
            Peeked::Line(cpu, side, s) => {
                let c = &self.cpus[cpu as usize];
                let cache = if side == Side::D { &c.d } else { &c.i };
                let m = cache.meta(s);
                Observed {
                    value: cache.read(s, rem_size(pa, cache.geometry().line) as u32),
                    from: Source::Cache {
                        cpu,
                        side,
                        slot: s,
                        dirty: side == Side::D && m.dirty,
                        line_va: m.va,
                    },
                }
            }
            Peeked::Memory => Observed {
                value: self.mem.get(pa as usize),
                from: Source::Memory,
            },
            Peeked::Fill(lpa) => Observed {
                value: self.scratch[(pa - lpa) as usize],
                from: Source::Memory,
            },
        }
    }

    // ---- hardware events ---------------------------------------------------------------

    /// Whether the CPUs fill caches of `side` speculatively at all.
    pub fn speculates(&self, side: Side) -> bool {
        match self.cfg.speculation {
            Speculation::None => false,
            Speculation::Icache => side == Side::I,
            Speculation::Both => true,
        }
    }

    /// A speculative fill of the line for `va` on `cpu`, if `va` has a valid cacheable (and, for
    /// the I-side, executable) translation there. Returns whether anything was filled.
    pub fn speculate(&mut self, cpu: CpuId, va: Va, side: Side) -> bool {
        if !self.would_speculate(cpu, va, side) {
            return false;
        }
        let t = if self.cfg.hw_walker {
            self.probe(cpu, va)
        } else {
            self.tlb_probe(cpu, va)
        }
        .expect("a translation would_speculate found");
        match side {
            Side::D => {
                self.fill_d(cpu, va, t.pa, t.asid, true);
            }
            Side::I => {
                self.fill_i(cpu, va, t.pa, t.asid, true);
            }
        }
        true
    }

    /// Evicts the `pick`-th valid line (modulo their number) of a cache, writing it back if
    /// dirty. Returns whether a line was evicted.
    pub fn evict(&mut self, cpu: CpuId, side: Side, pick: usize) -> bool {
        match self.nth_valid_slot(cpu, side, pick) {
            Some(slot) => self.evict_slot(cpu, side, slot),
            None => false,
        }
    }

    fn cache(&self, cpu: CpuId, side: Side) -> &Cache {
        let c = &self.cpus[cpu as usize];
        if side == Side::D {
            &c.d
        } else {
            &c.i
        }
    }

    /// The slot of the `pick`-th valid line (modulo their number) of a cache, as an eviction's
    /// pick names it.
    pub fn nth_valid_slot(&self, cpu: CpuId, side: Side, pick: usize) -> Option<Slot> {
        let cache = self.cache(cpu, side);
        let n = cache.valid_count();
        if n == 0 {
            return None;
        }
        cache.valid_slots().nth(pick % n)
    }

    /// The valid lines of a cache, in the order eviction picks number them.
    pub fn valid_slots(&self, cpu: CpuId, side: Side) -> Vec<Slot> {
        self.cache(cpu, side).valid_slots().collect()
    }

    /// A pick that names the valid line in `slot` ([`Machine::nth_valid_slot`]), if it is valid.
    pub fn valid_slot_pick(&self, cpu: CpuId, side: Side, slot: Slot) -> Option<u16> {
        self.cache(cpu, side)
            .valid_slots()
            .position(|s| s == slot)
            .and_then(|i| u16::try_from(i).ok())
    }

    /// The virtual pages `cpu` can translate right now, in the order picks number them
    /// ([`Machine::nth_valid_translation`]): present kernel entries, present entries of its
    /// current address space, then stale TLB entries.
    pub fn valid_translations(&self, cpu: CpuId) -> Vec<Vpn> {
        self.note_xlate(|w| {
            w.mm.read(cpu as usize);
            w.pt.read_all();
            w.tlb[cpu as usize].read_all();
        });
        let c = &self.cpus[cpu as usize];
        let user = c.mm.and_then(|m| self.user_pt.get(m as usize));
        let mut v: Vec<Vpn> = self
            .kernel_pt
            .iter()
            .enumerate()
            .filter(|(_, p)| p.present)
            .map(|(k, _)| k as u64 + layout::USER_PAGES)
            .collect();
        if let Some(t) = user {
            v.extend(
                t.iter()
                    .enumerate()
                    .filter(|(_, p)| p.present)
                    .map(|(k, _)| k as u64),
            );
        }
        v.extend(
            c.tlb
                .iter()
                .filter(|e| {
                    let pte = if e.vpn < layout::USER_PAGES {
                        if e.asid == c.mm {
                            user.map(|t| t[e.vpn as usize])
                        } else {
                            None
                        }
                    } else {
                        Some(self.kernel_pt[(e.vpn - layout::USER_PAGES) as usize])
                    };
                    pte.is_some_and(|p| !p.present)
                })
                .map(|e| e.vpn),
        );
        v
    }

    /// Every line a speculative fill on `cpu` could bring into its cache of `side` now, each
    /// once, with a pick that makes a speculation op fill it ([`Machine::speculation_va`]).
    /// Lines no pick can name (beyond the 256th valid translation) are left out, as no input
    /// can fill them either.
    pub fn speculation_choices(&self, cpu: CpuId, side: Side) -> Vec<(Va, u16)> {
        if !self.speculates(side) {
            return Vec::new();
        }
        let list = self.valid_translations(cpu);
        let n = list.len();
        let page = self.page_size() as u64;
        let line = self.line_size(side);
        let mut out = Vec::new();
        if n == 0 || n > 256 {
            return out;
        }
        for (i, &vpn) in list.iter().enumerate() {
            for j in 0..(page / line).min(256) {
                let va = vpn * page + j * line;
                if !self.would_speculate(cpu, va, side) {
                    continue;
                }
                let x = (i + n - (j as usize * 256) % n) % n;
                if let Ok(pick) = u16::try_from(j as usize * 256 + x) {
                    out.push((va, pick));
                }
            }
        }
        out
    }

    /// The address a speculation op's `pick` fills through on `cpu`: the pick (modulo their
    /// number) chooses among the valid translations ([`Machine::nth_valid_translation`]), its
    /// high byte the line within the page. `None` where nothing can be filled speculatively.
    pub fn speculation_va(&self, cpu: CpuId, side: Side, pick: u16) -> Option<Va> {
        if !self.speculates(side) {
            return None;
        }
        let vpn = self.nth_valid_translation(cpu, pick as usize)?;
        let page = self.page_size() as u64;
        let line = self.line_size(side);
        let off = ((pick as u64 >> 8) * line) % page;
        Some(vpn * page + off)
    }

    /// A pick that makes a speculation op fill through the line of `va` on `cpu`
    /// ([`Machine::speculation_va`]), if one can: the page must be one of the valid
    /// translations, and there must be at most 256 of them.
    pub fn speculation_pick(&self, cpu: CpuId, side: Side, va: Va) -> Option<u16> {
        let page = self.page_size() as u64;
        let line = self.line_size(side);
        let (vpn, j) = (va / page, (va % page) / line);
        let list = self.valid_translations(cpu);
        let n = list.len();
        let i = list.iter().position(|&v| v == vpn)?;
        if n > 256 || j > 255 {
            return None;
        }
        let x = (i + n - (j as usize * 256) % n) % n;
        let pick = u16::try_from(j as usize * 256 + x).ok()?;
        (self.speculation_va(cpu, side, pick) == Some(va - va % line)).then_some(pick)
    }

    /// Whether a speculative fill through `va` on `cpu` would fill anything
    /// ([`Machine::speculate`]), changing nothing.
    pub fn would_speculate(&self, cpu: CpuId, va: Va, side: Side) -> bool {
        if !self.speculates(side) {
            return false;
        }
        let t = if self.cfg.hw_walker {
            self.probe(cpu, va)
        } else {
            self.tlb_probe(cpu, va)
        };
        let Some(t) = t else { return false };
        if !t.pte.cacheable {
            return false;
        }
        match side {
            Side::D => self.cpus[cpu as usize]
                .d
                .lookup(self.cfg.dcache.key(va, t.pa, t.asid))
                .is_none(),
            Side::I => {
                t.pte.exec
                    && self.cpus[cpu as usize]
                        .i
                        .lookup(self.cfg.icache.key(va, t.pa, t.asid))
                        .is_none()
            }
        }
    }

    /// Evicts the line in `slot` of a cache, writing it back if dirty. Returns whether a line
    /// was evicted.
    pub fn evict_slot(&mut self, cpu: CpuId, side: Side, slot: Slot) -> bool {
        match side {
            Side::D => self.evict_d(cpu, slot, "evicted"),
            Side::I => {
                let Some(v) = self.cpus[cpu as usize].i.take(slot) else {
                    return false;
                };
                let m = v.meta;
                self.log.push(|| Event::Drop {
                    cpu,
                    side,
                    slot,
                    va: m.va,
                    pa: m.pa,
                    dirty: false,
                    why: "evicted",
                });
                true
            }
        }
    }

    // ---- cache maintenance -------------------------------------------------------------

    fn cache_targets(&self, cpu: CpuId, scope: Scope) -> std::ops::Range<usize> {
        if scope == Scope::AllCpus || self.cfg.broadcast >= Broadcast::Cache {
            0..self.cpus.len()
        } else {
            cpu as usize..cpu as usize + 1
        }
    }

    fn apply_d(&mut self, cpu: CpuId, slot: Slot, op: CacheOp) {
        let meta = *self.cpus[cpu as usize].d.meta(slot);
        if !meta.valid {
            return;
        }
        if meta.dirty && op != CacheOp::Invalidate {
            self.write_back(cpu, &Victim { slot, meta }, op.why());
            self.cpus[cpu as usize].d.mark_clean(slot);
        }
        if op != CacheOp::Clean {
            self.cpus[cpu as usize].d.take(slot);
            let dirty = meta.dirty && op == CacheOp::Invalidate;
            self.log.push(|| Event::Drop {
                cpu,
                side: Side::D,
                slot,
                va: meta.va,
                pa: meta.pa,
                dirty,
                why: op.why(),
            });
        }
    }

    /// Maintenance of the D-line holding `va`, as the issuing CPU translates it. VIVT caches need
    /// no translation; physically tagged caches do nothing when `va` has no translation, as a
    /// maintenance-by-MVA instruction finds no line without one.
    pub fn dcache_va(&mut self, cpu: CpuId, op: CacheOp, va: Va, scope: Scope) {
        self.dcache_va_range(cpu, op, va, va + 1, scope);
    }

    /// [`Machine::dcache_va`] of each line of `[start, end)` in turn, each page translated once
    /// (maintenance changes no translation).
    pub fn dcache_va_range(&mut self, cpu: CpuId, op: CacheOp, start: Va, end: Va, scope: Scope) {
        let g = self.cfg.dcache;
        let (line, page) = (g.line as u64, self.cfg.page_size as u64);
        let mut a = start & !(line - 1);
        while a < end {
            let base = a & !(page - 1);
            let stop = end.min(base + page);
            let t = self.probe(cpu, base);
            let asid = if g.virtually_tagged() {
                t.and_then(|t| t.asid).or_else(|| {
                    (base / page <= layout::USER_PAGES)
                        .then_some(self.cpus[cpu as usize].mm)
                        .flatten()
                })
            } else {
                match t {
                    Some(t) => t.asid,
                    None => {
                        a = stop.next_multiple_of(line);
                        continue;
                    }
                }
            };
            while a < stop {
                let key = if g.virtually_tagged() {
                    g.key(a, 0, asid)
                } else {
                    g.key(a, t.expect("translated").pa + (a - base), asid)
                };
                for c in self.cache_targets(cpu, scope) {
                    if let Some(slot) = self.cpus[c].d.lookup(key) {
                        self.apply_d(c as CpuId, slot, op);
                    }
                }
                a += line;
            }
        }
    }

    /// Maintenance of one D-cache line by set and way on `cpu` (never broadcast).
    pub fn dcache_setway(&mut self, cpu: CpuId, op: CacheOp, slot: Slot) {
        self.apply_d(cpu, slot, op);
    }

    /// Maintenance of the whole D-cache of `cpu`, or of every CPU.
    pub fn dcache_all(&mut self, cpu: CpuId, op: CacheOp, scope: Scope) {
        let targets = if scope == Scope::AllCpus {
            0..self.cpus.len()
        } else {
            cpu as usize..cpu as usize + 1
        };
        for c in targets {
            let mut from = 0;
            while let Some((i, s)) = self.cpus[c].d.next_valid(from) {
                from = i + 1;
                self.apply_d(c as CpuId, s, op);
            }
        }
    }

    /// Invalidates the I-line holding `va` as the issuing CPU translates it.
    pub fn icache_va(&mut self, cpu: CpuId, va: Va, scope: Scope) {
        let g = self.cfg.icache;
        let key = match self.probe(cpu, va) {
            Some(t) => g.key(va, t.pa, t.asid),
            None if g.virtually_tagged() => g.key(va, 0, None),
            None => return,
        };
        for c in self.cache_targets(cpu, scope) {
            if let Some(s) = self.cpus[c].i.lookup(key) {
                let m = self.cpus[c].i.take(s).expect("valid").meta;
                self.log.push(|| Event::Drop {
                    cpu: c as CpuId,
                    side: Side::I,
                    slot: s,
                    va: m.va,
                    pa: m.pa,
                    dirty: false,
                    why: "I-cache invalidate",
                });
            }
        }
    }

    /// Invalidates the whole I-cache of `cpu`, or of every CPU.
    pub fn icache_all(&mut self, cpu: CpuId, scope: Scope) {
        let targets = if scope == Scope::AllCpus || self.cfg.broadcast >= Broadcast::Cache {
            0..self.cpus.len()
        } else {
            cpu as usize..cpu as usize + 1
        };
        for c in targets {
            let mut from = 0;
            while let Some((i, s)) = self.cpus[c].i.next_valid(from) {
                from = i + 1;
                let m = self.cpus[c].i.take(s).expect("valid").meta;
                self.log.push(|| Event::Drop {
                    cpu: c as CpuId,
                    side: Side::I,
                    slot: s,
                    va: m.va,
                    pa: m.pa,
                    dirty: false,
                    why: "I-cache invalidate all",
                });
            }
        }
    }

    // ---- the device --------------------------------------------------------------------

    /// The device reads `len` bytes at `pa` into `out`.
    pub fn device_read(&mut self, pa: Pa, out: &mut Vec<Observed>, len: u32) {
        out.clear();
        for p in pa..pa + len as u64 {
            let mut obs = Observed {
                value: self.mem.get(p as usize),
                from: Source::Memory,
            };
            if self.cfg.dma_coherent {
                let lpa = self.cfg.dcache.line_base(p);
                'outer: for c in 0..self.cpus.len() {
                    let d = &self.cpus[c].d;
                    for s in d.slots_holding(lpa) {
                        let m = d.meta(s);
                        if m.dirty {
                            obs = Observed {
                                value: d.read(s, (p - lpa) as u32),
                                from: Source::Cache {
                                    cpu: c as CpuId,
                                    side: Side::D,
                                    slot: s,
                                    dirty: true,
                                    line_va: m.va,
                                },
                            };
                            break 'outer;
                        }
                    }
                }
            }
            out.push(obs);
        }
        self.log.push(|| Event::Device {
            pa,
            len,
            write: false,
        });
    }

    /// The device writes `values` at `pa`.
    pub fn device_write(&mut self, pa: Pa, values: &[Stamp]) {
        let len = values.len() as u32;
        self.mem.write(pa as usize, values);
        if self.cfg.dma_coherent {
            // A coherent device write updates memory and invalidates every cached copy, so a
            // dirty line in its way is first merged: hardware writes the line back, then the
            // device's bytes land over it.
            let dl = self.cfg.dcache.line as u64;
            let mut lpa = self.cfg.dcache.line_base(pa);
            while lpa < pa + len as u64 {
                for c in 0..self.cpus.len() {
                    let mut from = 0;
                    while let Some((i, s)) = self.cpus[c].d.next_holding(from, lpa) {
                        from = i + 1;
                        let meta = *self.cpus[c].d.meta(s);
                        if meta.dirty {
                            let data = self.cpus[c].d.data(s).to_vec();
                            for (i, v) in data.iter().enumerate() {
                                let p = lpa + i as u64;
                                if p < pa || p >= pa + len as u64 {
                                    self.mem.set(p as usize, *v);
                                }
                            }
                        }
                        self.cpus[c].d.take(s);
                        self.log.push(|| Event::Drop {
                            cpu: c as CpuId,
                            side: Side::D,
                            slot: s,
                            va: meta.va,
                            pa: meta.pa,
                            dirty: false,
                            why: "coherent DMA",
                        });
                    }
                }
                lpa += dl;
            }
            for p in (pa..pa + len as u64).step_by(self.cfg.icache.line as usize) {
                self.snoop_icaches_force(p);
            }
        }
        self.log.push(|| Event::Device {
            pa,
            len,
            write: true,
        });
    }

    fn snoop_icaches_force(&mut self, pa: Pa) {
        let lpa = self.cfg.icache.line_base(pa);
        for cpu in 0..self.cpus.len() {
            let mut from = 0;
            while let Some((i, s)) = self.cpus[cpu].i.next_holding(from, lpa) {
                from = i + 1;
                self.cpus[cpu].i.take(s);
            }
        }
    }

    /// Every valid D-line, on every CPU: `(cpu, slot, dirty, pa, va)`.
    pub fn dirty_lines(&self) -> Vec<(CpuId, Slot, Pa, Va)> {
        let mut v = Vec::new();
        for (c, cpu) in self.cpus.iter().enumerate() {
            for s in cpu.d.valid_slots() {
                let m = cpu.d.meta(s);
                if m.dirty {
                    v.push((c as CpuId, s, m.pa, m.va));
                }
            }
        }
        v
    }

    /// Line size of a side.
    pub fn line_size(&self, side: Side) -> u64 {
        self.line_of(side)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand_core::{RngCore, SeedableRng};
    use rand_xoshiro::Xoshiro256PlusPlus;

    /// A copy of a snapshot of memory, written across frames, is reset to the snapshot by
    /// copying back only the frames it wrote; a copy of another snapshot is copied whole.
    #[test]
    fn resetting_a_copy_of_a_memory_snapshot_restores_every_byte() {
        let mut template = Memory::new((0..70 * 8).map(|b| b as Stamp).collect(), 8);
        template.changes.snapshot();
        let mut m = template.clone();
        m.set(3, 99);
        m.write(14, &[7; 4]);
        m.write(8 * 69, &[5; 8]);
        assert_ne!(format!("{m:?}"), format!("{template:?}"));
        m.clone_from(&template);
        assert_eq!(format!("{m:?}"), format!("{template:?}"));

        let mut other = Memory::new(vec![1; 70 * 8], 8);
        other.changes.snapshot();
        m.clone_from(&other);
        assert_eq!(format!("{m:?}"), format!("{other:?}"));
    }

    /// Instruction prefetch goes through executable translations only: with an execute-never
    /// linear map (ARMv6 and later, arm64) a machine with no text mapped has no I-side fill to
    /// make, while every line of lowmem is one where the linear map is executable.
    #[test]
    fn instruction_prefetch_needs_an_executable_linear_map() {
        let p = crate::preset::by_name("exec-icache-smp").expect("a preset");
        assert!(!p.machine.linear_exec);
        let choices = |cfg: MachineConfig| {
            let m = Machine::new(cfg, Log::new(false), |pa| pa as Stamp);
            (0..m.cfg.cpus)
                .map(|cpu| m.speculation_choices(cpu, Side::I).len())
                .sum::<usize>()
        };
        assert_eq!(choices(p.machine.clone()), 0);
        let exec = MachineConfig {
            linear_exec: true,
            ..p.machine.clone()
        };
        let lines = (exec.page_size / exec.icache.line) as usize;
        let cpus = exec.cpus as usize;
        assert_eq!(
            choices(exec.clone()),
            exec.lowmem_frames as usize * lines * cpus
        );
    }

    /// `store_run` and `load`/`load_next` over a line leave the machine, its log and the
    /// observations exactly as the same bytes stored or loaded one at a time do, on every
    /// preset's machine, through aliases of every colour, cached or not.
    #[test]
    fn runs_over_a_line_match_bytes_one_at_a_time() {
        for p in crate::preset::all() {
            let cfg = p.machine.clone();
            let page = cfg.page_size as u64;
            let line = cfg.dcache.line as u64;
            let mk = || Machine::new(cfg.clone(), Log::new(true), |pa| pa as Stamp);
            let (mut runs, mut bytes) = (mk(), mk());
            let mut rng = Xoshiro256PlusPlus::seed_from_u64(7);
            let mut below = |n: u64| rng.next_u64() % n;
            let mut next = 1_000_000;
            for _ in 0..3000 {
                let cpu = below(cfg.cpus as u64) as CpuId;
                let pfn = below(cfg.frames() as u64) as Pfn;
                let start = below(page / line) * line + below(line);
                let len = 1 + below(line - start % line);
                let va = below(512) * page + start;
                let cacheable = below(8) != 0;
                let t0 = Translation {
                    pa: pfn as u64 * page + start,
                    pte: Pte {
                        cacheable,
                        ..Pte::new(pfn, true, false)
                    },
                    asid: None,
                };
                let at = |i: u64| Translation {
                    pa: t0.pa + i,
                    ..t0
                };
                if below(2) == 0 {
                    let values: Vec<Stamp> = (0..len).map(|i| next + i as Stamp).collect();
                    next += len as Stamp;
                    runs.store_run(cpu, va, &t0, &values);
                    for (i, &v) in values.iter().enumerate() {
                        bytes.store(cpu, va + i as u64, &at(i as u64), v);
                    }
                } else {
                    let mut prev = None;
                    for i in 0..len {
                        let a = match prev {
                            Some(from) => runs.load_next(cpu, va + i, &at(i), from),
                            None => runs.load(cpu, va + i, &at(i)),
                        };
                        prev = Some(a.from);
                        assert_eq!(a, bytes.load(cpu, va + i, &at(i)), "{}", p.name);
                    }
                }
                if below(16) == 0 {
                    // Some eviction between runs, so lines come and go.
                    let c = below(cfg.cpus as u64) as CpuId;
                    let pick = below(64) as usize;
                    runs.evict(c, Side::D, pick);
                    bytes.evict(c, Side::D, pick);
                }
            }
            assert_eq!(format!("{runs:?}"), format!("{bytes:?}"), "{}", p.name);
        }
    }
}
