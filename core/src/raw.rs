//! Raw access: a harness that drives a [`Machine`] and an [`Oracle`] directly, without the
//! kernel model, to test the cache model and the oracle on their own.
//!
//! This module owns a fixed set of kernel aliases of two lowmem frames (each frame's linear-map
//! address plus one vmalloc alias at every colour), the raw operation language [`RawOp`] (loads,
//! stores, fetches, maintenance by virtual address and of whole caches, speculative fills,
//! evictions, device reads and writes), the judgement of every read, and an end-of-run audit of
//! dirty lines and lost values. A run is a pure function of the configuration and the ops:
//! [`run_raw`].
//!
//! It does not know processes, page flags, the flush APIs or any `Arch` implementation, and it
//! never maintains a cache by itself: every clean, invalidate and flush is an op of the input.
//! So on an aliasing machine most inputs *should* report violations; on fully coherent hardware
//! none may. Two choices keep the second law honest:
//!
//! - Instruction fetches are judged only when the I-cache snoops stores
//!   ([`IcacheCoherence::Snooping`]): elsewhere the I-side is allowed to be stale until someone
//!   synchronises it, and nothing in a raw run promises that anyone did.
//! - A raw [`RawOp::Invalidate`] discards dirty data, which loses a write on any hardware. On
//!   hardware where no D-line can ever be stale (no aliases, coherent D-caches, coherent DMA;
//!   see [`invalidate_is_flush`]) there is no legitimate reason to discard a line, so the
//!   harness issues it as a flush (clean, then invalidate), as software written for such
//!   hardware would. On every other machine it is a true invalidate.

use crate::addr::{layout, AliasKind, CpuId, Pa, Pfn, Stamp, Va, Vpn};
use crate::event::{Log, Side, Source};
use crate::machine::{
    Access, CacheOp, IcacheCoherence, Machine, MachineConfig, Observed, Pte, Scope,
};
use crate::oracle::{Kind, Oracle, ReadKind, WriteInfo};
use arbitrary::Arbitrary;
use bolero_generator::TypeGenerator;
use std::fmt;

/// Lowmem frames the harness maps and keeps live (fewer if the machine has fewer).
pub const RAW_FRAMES: u32 = 2;

/// One of the harness's kernel aliases: a virtual page that maps a frame.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RawAlias {
    /// The frame it maps.
    pub pfn: Pfn,
    /// The first byte of the page.
    pub va: Va,
    /// Its kind ([`AliasKind::Linear`] or [`AliasKind::Vmap`]).
    pub kind: AliasKind,
}

/// The number of colours the harness covers: the larger of the D- and I-cache's.
pub fn colours(cfg: &MachineConfig) -> u64 {
    cfg.dcache
        .colours(cfg.page_size)
        .max(cfg.icache.colours(cfg.page_size))
}

/// The aliases of a raw run on `cfg`, in the order alias ids index them: for each frame, its
/// linear-map page, then its vmalloc pages at colours `0..colours(cfg)`, at page
/// `layout::VMALLOC + frame * 8 + colour`.
pub fn aliases(cfg: &MachineConfig) -> Vec<RawAlias> {
    let page = cfg.page_size as u64;
    let mut v = Vec::new();
    for pfn in 0..RAW_FRAMES.min(cfg.lowmem_frames) {
        v.push(RawAlias {
            pfn,
            va: (layout::LINEAR + pfn as u64) * page,
            kind: AliasKind::Linear,
        });
        for colour in 0..colours(cfg) {
            let vpn: Vpn = layout::VMALLOC + pfn as u64 * layout::COLOUR_WIN_STRIDE + colour;
            v.push(RawAlias {
                pfn,
                va: vpn * page,
                kind: AliasKind::Vmap,
            });
        }
    }
    v
}

/// Whether [`RawOp::Invalidate`] is issued as a flush on `cfg`: when no D-line can ever hold a
/// value older than memory or than another CPU's copy (the D-cache cannot alias, hardware keeps
/// the CPUs' D-caches coherent, and the device snoops them).
pub fn invalidate_is_flush(cfg: &MachineConfig) -> bool {
    !cfg.dcache.aliases(cfg.page_size) && cfg.dcache_coherent && cfg.dma_coherent
}

/// One raw operation. CPU, alias and frame ids wrap modulo what exists and `off` modulo the page
/// size, so every decoded value is valid. Variant 0 (a load) changes no intended value, because
/// an exhausted fuzzer input decodes as zeros.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, PartialEq, Eq)]
pub enum RawOp {
    /// A data load through an alias, judged as a kernel read.
    Load { cpu: u8, alias: u8, off: u8 },
    /// A data store of a fresh stamp through an alias (a kernel-style write, so the I-side is
    /// expected to see it where the I-cache snoops).
    Store { cpu: u8, alias: u8, off: u8 },
    /// An instruction fetch through an alias; judged only where the I-cache snoops.
    Fetch { cpu: u8, alias: u8, off: u8 },
    /// Clean (write back, keep) the D-line of an alias byte.
    Clean { cpu: u8, alias: u8, off: u8 },
    /// Invalidate (discard, dirty or not) the D-line of an alias byte; a flush where
    /// [`invalidate_is_flush`] holds.
    Invalidate { cpu: u8, alias: u8, off: u8 },
    /// Flush (clean, then invalidate) the D-line of an alias byte.
    Flush { cpu: u8, alias: u8, off: u8 },
    /// Clean the whole D-cache of a CPU.
    CleanAll { cpu: u8 },
    /// Flush the whole D-cache of a CPU.
    FlushAll { cpu: u8 },
    /// Invalidate the whole I-cache of a CPU (and others', where maintenance is broadcast).
    IcacheInvalidateAll { cpu: u8 },
    /// Invalidate the I-line of an alias byte.
    IcacheInvalidate { cpu: u8, alias: u8, off: u8 },
    /// A speculative fill through an alias, where the machine speculates on that side.
    Speculate {
        cpu: u8,
        alias: u8,
        off: u8,
        icache: bool,
    },
    /// Eviction of the `pick`-th valid line of a cache (written back if dirty).
    Evict { cpu: u8, icache: bool, pick: u16 },
    /// The device reads a whole frame, judged byte by byte.
    DeviceRead { frame: u8 },
    /// The device writes fresh stamps over a whole frame.
    DeviceWrite { frame: u8 },
}

/// A violation found by a raw run.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawViolation {
    /// What went wrong.
    pub kind: Kind,
    /// The byte.
    pub pa: Pa,
    /// The address read through: the alias byte for loads and fetches, the byte's address in
    /// the line for dirty-line audits, 0 for the device and for values lost everywhere.
    pub va: Va,
    /// The kind of `va` ([`AliasKind::Unmapped`] when `va` is 0).
    pub alias: AliasKind,
    /// The CPU that read, or whose dirty line holds the older value.
    pub cpu: Option<CpuId>,
    /// Index of the op that read; `None` for the end-of-run audit.
    pub op: Option<usize>,
    /// The intended value.
    pub expected: Stamp,
    /// The value found.
    pub observed: Stamp,
    /// The line (or memory) holding the observed value.
    pub from: Source,
    /// Every place the intended value was at that moment: memory and valid D-lines.
    pub newest_at: Vec<Source>,
    /// The last write of the byte. Its `step` is the index of the writing op plus one; 0 means
    /// the initial contents.
    pub last_write: WriteInfo,
}

impl fmt::Display for RawViolation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} of pa {:#x}", self.kind, self.pa)?;
        if self.va != 0 {
            write!(f, " through {:#x} ({})", self.va, self.alias.name())?;
        }
        if let Some(c) = self.cpu {
            write!(f, " on CPU{c}")?;
        }
        match self.op {
            Some(i) => write!(f, " at op {i}")?,
            None => write!(f, " at the end-of-run audit")?,
        }
        write!(
            f,
            ": expected #{}, observed #{} from {}",
            self.expected, self.observed, self.from
        )?;
        if self.newest_at.is_empty() {
            write!(f, "; the intended value is nowhere")?;
        } else {
            let at: Vec<String> = self.newest_at.iter().map(|s| s.to_string()).collect();
            write!(f, "; intended value in {}", at.join(", "))?;
        }
        let w = &self.last_write;
        match (w.step, w.alias) {
            (0, _) => write!(f, "; last written: initial contents"),
            (s, Some(a)) => write!(
                f,
                "; last written by op {} through {:#x} ({})",
                s - 1,
                w.va,
                a.name()
            ),
            (s, None) => write!(f, "; last written by op {} (device)", s - 1),
        }
    }
}

/// What a raw run found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RawReport {
    /// The first violation, if any.
    pub violation: Option<RawViolation>,
}

/// The initial stamp of byte `pa`: distinct from every other byte and from every fresh stamp.
fn initial(pa: Pa) -> Stamp {
    pa as Stamp + 1
}

struct Raw {
    m: Machine,
    o: Oracle,
    aliases: Vec<RawAlias>,
    frames: u32,
    check_fetch: bool,
    invalidate_is_flush: bool,
    device: Vec<Observed>,
}

impl Raw {
    fn new(cfg: &MachineConfig) -> Raw {
        cfg.validate()
            .unwrap_or_else(|e| panic!("raw run: invalid machine: {e}"));
        let mut m = Machine::new(cfg.clone(), Log::new(false), initial);
        let bytes = cfg.frames() as u64 * cfg.page_size as u64;
        let mut o = Oracle::new(cfg.frames(), cfg.page_size, initial, bytes as Stamp + 1);
        let aliases = aliases(cfg);
        for a in &aliases {
            // The linear map is already in the kernel table; the vmalloc pages are ours.
            if a.kind == AliasKind::Vmap {
                m.set_pte(
                    None,
                    a.va / cfg.page_size as u64,
                    Pte::new(a.pfn, true, true),
                );
            }
            o.set_live(a.pfn, true);
        }
        Raw {
            m,
            o,
            aliases,
            frames: RAW_FRAMES.min(cfg.lowmem_frames),
            check_fetch: cfg.icache_coherence == IcacheCoherence::Snooping,
            invalidate_is_flush: invalidate_is_flush(cfg),
            device: Vec::with_capacity(cfg.page_size as usize),
        }
    }

    fn cpu(&self, cpu: u8) -> CpuId {
        cpu % self.m.config().cpus
    }

    fn va(&self, alias: u8, off: u8) -> (Va, AliasKind) {
        let a = self.aliases[alias as usize % self.aliases.len()];
        (a.va + off as u64 % self.m.page_size() as u64, a.kind)
    }

    /// Every place the intended value of `pa` is: memory and the valid D-lines holding it.
    fn newest_at(&self, pa: Pa) -> Vec<Source> {
        let want = self.o.intended(pa);
        let mut v = Vec::new();
        if self.m.memory(pa) == want {
            v.push(Source::Memory);
        }
        let lpa = self.m.config().dcache.line_base(pa);
        for (c, cpu) in self.m.cpus.iter().enumerate() {
            for s in cpu.d.slots_holding(lpa) {
                if cpu.d.read(s, (pa - lpa) as u32) == want {
                    let meta = cpu.d.meta(s);
                    v.push(Source::Cache {
                        cpu: c as CpuId,
                        side: Side::D,
                        slot: s,
                        dirty: meta.dirty,
                        line_va: meta.va,
                    });
                }
            }
        }
        v
    }

    #[allow(clippy::too_many_arguments)]
    fn violation(
        &self,
        kind: Kind,
        pa: Pa,
        va: Va,
        alias: AliasKind,
        cpu: Option<CpuId>,
        op: Option<usize>,
        obs: Observed,
    ) -> RawViolation {
        RawViolation {
            kind,
            pa,
            va,
            alias,
            cpu,
            op,
            expected: self.o.intended(pa),
            observed: obs.value,
            from: obs.from,
            newest_at: self.newest_at(pa),
            last_write: self.o.last_write(pa).0,
        }
    }

    /// Applies op number `i`; returns the violation it observed, if any.
    fn apply(&mut self, i: usize, op: RawOp) -> Option<RawViolation> {
        let step = i as u32 + 1;
        match op {
            RawOp::Load { cpu, alias, off } => {
                let (cpu, (va, kind)) = (self.cpu(cpu), self.va(alias, off));
                let t = self
                    .m
                    .translate(cpu, va, Access::Read)
                    .expect("raw aliases are always mapped");
                let obs = self.m.load(cpu, va, &t);
                if let Err(k) = self.o.judge(t.pa, obs.value, ReadKind::Kernel, None) {
                    return Some(self.violation(k, t.pa, va, kind, Some(cpu), Some(i), obs));
                }
            }
            RawOp::Store { cpu, alias, off } => {
                let (cpu, (va, kind)) = (self.cpu(cpu), self.va(alias, off));
                let t = self
                    .m
                    .translate(cpu, va, Access::Write)
                    .expect("raw aliases are always writable");
                let v = self.o.fresh();
                let info = WriteInfo {
                    step,
                    actor: None,
                    cpu: Some(cpu),
                    va,
                    alias: Some(kind),
                };
                self.o.write(
                    t.pa,
                    v,
                    info,
                    "raw store",
                    crate::oracle::WriteFlags {
                        racing: None,
                        user_data: false,
                        page_cache: false,
                    },
                );
                self.m.store(cpu, va, &t, v);
            }
            RawOp::Fetch { cpu, alias, off } => {
                let (cpu, (va, kind)) = (self.cpu(cpu), self.va(alias, off));
                let t = self
                    .m
                    .translate(cpu, va, Access::Exec)
                    .expect("raw aliases are always executable");
                let obs = self.m.fetch(cpu, va, &t);
                if self.check_fetch {
                    if let Err(k) = self.o.judge(
                        t.pa,
                        obs.value,
                        ReadKind::UserFetch {
                            private_file: false,
                        },
                        None,
                    ) {
                        return Some(self.violation(k, t.pa, va, kind, Some(cpu), Some(i), obs));
                    }
                }
            }
            RawOp::Clean { cpu, alias, off } => {
                let (cpu, (va, _)) = (self.cpu(cpu), self.va(alias, off));
                self.m.dcache_va(cpu, CacheOp::Clean, va, Scope::Local);
            }
            RawOp::Invalidate { cpu, alias, off } => {
                let (cpu, (va, _)) = (self.cpu(cpu), self.va(alias, off));
                let op = if self.invalidate_is_flush {
                    CacheOp::Flush
                } else {
                    CacheOp::Invalidate
                };
                self.m.dcache_va(cpu, op, va, Scope::Local);
            }
            RawOp::Flush { cpu, alias, off } => {
                let (cpu, (va, _)) = (self.cpu(cpu), self.va(alias, off));
                self.m.dcache_va(cpu, CacheOp::Flush, va, Scope::Local);
            }
            RawOp::CleanAll { cpu } => {
                let cpu = self.cpu(cpu);
                self.m.dcache_all(cpu, CacheOp::Clean, Scope::Local);
            }
            RawOp::FlushAll { cpu } => {
                let cpu = self.cpu(cpu);
                self.m.dcache_all(cpu, CacheOp::Flush, Scope::Local);
            }
            RawOp::IcacheInvalidateAll { cpu } => {
                let cpu = self.cpu(cpu);
                self.m.icache_all(cpu, Scope::Local);
            }
            RawOp::IcacheInvalidate { cpu, alias, off } => {
                let (cpu, (va, _)) = (self.cpu(cpu), self.va(alias, off));
                self.m.icache_va(cpu, va, Scope::Local);
            }
            RawOp::Speculate {
                cpu,
                alias,
                off,
                icache,
            } => {
                let (cpu, (va, _)) = (self.cpu(cpu), self.va(alias, off));
                self.m
                    .speculate(cpu, va, if icache { Side::I } else { Side::D });
            }
            RawOp::Evict { cpu, icache, pick } => {
                let cpu = self.cpu(cpu);
                self.m
                    .evict(cpu, if icache { Side::I } else { Side::D }, pick as usize);
            }
            RawOp::DeviceRead { frame } => {
                let page = self.m.page_size();
                let pa = (frame as u32 % self.frames) as Pa * page as Pa;
                let mut out = std::mem::take(&mut self.device);
                self.m.device_read(pa, &mut out, page);
                let bad = out.iter().zip(pa..).find_map(|(obs, p)| {
                    self.o
                        .judge(p, obs.value, ReadKind::Device, None)
                        .err()
                        .map(|k| (k, p, *obs))
                });
                self.device = out;
                if let Some((k, p, obs)) = bad {
                    return Some(self.violation(k, p, 0, AliasKind::Unmapped, None, Some(i), obs));
                }
            }
            RawOp::DeviceWrite { frame } => {
                let page = self.m.page_size();
                let pa = (frame as u32 % self.frames) as Pa * page as Pa;
                let info = WriteInfo {
                    step,
                    actor: None,
                    cpu: None,
                    va: 0,
                    alias: None,
                };
                let mut values = Vec::with_capacity(page as usize);
                for p in pa..pa + page as Pa {
                    let v = self.o.fresh();
                    self.o.write(
                        p,
                        v,
                        info,
                        "raw device write",
                        crate::oracle::WriteFlags::default(),
                    );
                    values.push(v);
                }
                self.m.device_write(pa, &values);
            }
        }
        None
    }

    /// The end-of-run audit: (a) every dirty line holds its bytes' intended values, else its
    /// write-back would put an older value over newer data; (b) every live byte's intended value
    /// is still in memory or in a valid D-line.
    fn audit(&self) -> Option<RawViolation> {
        for (cpu, slot, lpa, lva) in self.m.dirty_lines() {
            let d = &self.m.cpus[cpu as usize].d;
            for (i, &value) in d.data(slot).iter().enumerate() {
                let pa = lpa + i as u64;
                if let Err(k) = self.o.judge(pa, value, ReadKind::DirtyLine, None) {
                    let va = lva + i as u64;
                    let from = Source::Cache {
                        cpu,
                        side: Side::D,
                        slot,
                        dirty: true,
                        line_va: lva,
                    };
                    let alias = AliasKind::of(va, self.m.page_size());
                    return Some(self.violation(
                        k,
                        pa,
                        va,
                        alias,
                        Some(cpu),
                        None,
                        Observed { value, from },
                    ));
                }
            }
        }
        let page = self.m.page_size() as Pa;
        let dl = self.m.config().dcache.line as Pa;
        for pfn in 0..self.frames {
            for pa in pfn as Pa * page..(pfn as Pa + 1) * page {
                let want = self.o.intended(pa);
                let lpa = pa & !(dl - 1);
                let in_cache = || {
                    self.m.cpus.iter().any(|c| {
                        c.d.slots_holding(lpa)
                            .any(|s| c.d.read(s, (pa - lpa) as u32) == want)
                    })
                };
                if self.m.memory(pa) != want && !in_cache() {
                    let obs = Observed {
                        value: self.m.memory(pa),
                        from: Source::Memory,
                    };
                    return Some(self.violation(
                        Kind::LostWrite,
                        pa,
                        0,
                        AliasKind::Unmapped,
                        None,
                        None,
                        obs,
                    ));
                }
            }
        }
        None
    }
}

/// Runs `ops` on a fresh machine built from `cfg` and judges every read and the final state.
/// Stops at the first violation. Panics if `cfg` does not validate.
pub fn run_raw(cfg: &MachineConfig, ops: &[RawOp]) -> RawReport {
    let mut r = Raw::new(cfg);
    for (i, op) in ops.iter().enumerate() {
        if let Some(v) = r.apply(i, *op) {
            return RawReport { violation: Some(v) };
        }
    }
    RawReport {
        violation: r.audit(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::{presets as geo, CacheGeometry, WritePolicy};
    use crate::machine::{Broadcast, Speculation};

    fn v6() -> MachineConfig {
        MachineConfig {
            cpus: 1,
            page_size: geo::SMALL_PAGE,
            dcache: geo::SMALL_V6_4COLOUR,
            icache: CacheGeometry {
                policy: WritePolicy::WriteThrough,
                ..geo::SMALL_V6_4COLOUR
            },
            icache_coherence: IcacheCoherence::None,
            dcache_coherent: true,
            broadcast: Broadcast::CacheAndTlb,
            dma_coherent: false,
            lowmem_frames: 4,
            highmem_frames: 0,
            pkmap_slots: 2,
            speculation: Speculation::None,
            // Fields not set here keep the race presets' values.
            ..crate::preset::by_name("nfs-vmap-alias")
                .expect("race preset exists")
                .machine
        }
    }

    #[test]
    fn aliases_cover_every_colour_of_both_frames_and_are_mapped() {
        let cfg = v6();
        let a = aliases(&cfg);
        assert_eq!(a.len(), 2 * (1 + 4));
        let d = cfg.dcache;
        let colours: Vec<u64> = a
            .iter()
            .filter(|x| x.pfn == 1)
            .map(|x| d.colour(x.va, cfg.page_size))
            .collect();
        // Frame 1's linear page is at colour 1; its vmalloc pages at colours 0..4.
        assert_eq!(colours, vec![1, 0, 1, 2, 3]);
        let r = Raw::new(&cfg);
        for x in &a {
            let t = r.m.probe(0, x.va + 5).expect("mapped");
            assert_eq!(t.pa, x.pfn as u64 * cfg.page_size as u64 + 5);
            assert!(r.o.is_live(x.pfn));
        }
        assert!(!r.o.is_live(2));
    }

    #[test]
    fn a_pristine_machine_passes_the_audit() {
        assert_eq!(run_raw(&v6(), &[]), RawReport { violation: None });
    }
}
