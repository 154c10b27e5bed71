//! The oracle: the intended value of every physical byte, and the judgement of every read.
//!
//! Each logical write (a user or kernel store, a kernel copy, a zero-fill, a device write) sets a
//! byte's intended value to a fresh stamp and remembers who wrote it. A read that the kernel's
//! contract says must be coherent is checked against the intended value; reads the contract
//! leaves undefined are skipped, each under a named [`Rule`]. The oracle knows nothing of caches,
//! arch implementations or kernel paths: callers tell it what was read, how, and by whom.

use crate::addr::{ActorId, AliasKind, CpuId, Pa, Pfn, Stamp, Va};
use crate::canon::Canon;
use crate::event::{Logged, Source};
use crate::reuse::Changes;
use serde::Serialize;
use std::fmt;

/// What went wrong.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Kind {
    /// A data read (user or kernel) returned an older value.
    StaleLoad,
    /// An instruction fetch returned an older value.
    StaleFetch,
    /// The device read an older value from memory.
    StaleDeviceRead,
    /// The newest value of a byte is nowhere any more, or a dirty line holds an older value that
    /// its write-back would put over newer data.
    LostWrite,
    /// A kernel path touched a buffer the device owns.
    Misuse,
}

impl Kind {
    /// The name used in signatures and trace files.
    pub fn name(self) -> &'static str {
        match self {
            Kind::StaleLoad => "stale-load",
            Kind::StaleFetch => "stale-fetch",
            Kind::StaleDeviceRead => "stale-device-read",
            Kind::LostWrite => "lost-write",
            Kind::Misuse => "misuse",
        }
    }

    /// Parses a name written by [`Kind::name`].
    pub fn from_name(s: &str) -> Option<Kind> {
        [
            Kind::StaleLoad,
            Kind::StaleFetch,
            Kind::StaleDeviceRead,
            Kind::LostWrite,
            Kind::Misuse,
        ]
        .into_iter()
        .find(|k| k.name() == s)
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// How a byte was read.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ReadKind {
    /// A user-mode load.
    UserLoad {
        /// Through a private mapping of a page-cache page (not yet copied on write).
        private_file: bool,
    },
    /// A user-mode instruction fetch.
    UserFetch {
        /// Through a private mapping of a page-cache page (not yet copied on write).
        private_file: bool,
    },
    /// A kernel read inside a kernel path (copy source, decode, checksum).
    Kernel,
    /// A kernel read of a page-cache page on behalf of a private mapping (the source of a
    /// copy-on-write of a file page): it need not see changes made after the mapping.
    KernelForPrivate,
    /// A kernel instruction fetch of kernel text (a module, a JIT image) through a kernel
    /// address: once the path that wrote the text has made its flushes, every CPU must fetch
    /// what it wrote.
    KernelFetch,
    /// A kernel read of the source of a copy-on-write copy for one address space, of a byte
    /// last written by a user store of a thread of another address space: the page was shared
    /// copy-on-write, so that store went through a TLB entry fork had not yet flushed, and the
    /// copy may or may not see it.
    KernelForCopyOfOthersStore,
    /// The device reading a buffer mapped to it.
    Device,
    /// The end-of-run audit of a dirty line.
    DirtyLine,
}

/// Why a read was not checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Rule {
    /// The frame is free: nobody may read it.
    FreeFrame,
    /// Another actor's write to these bytes has not returned: either value is allowed.
    RacingWrite,
    /// User code stored since the last cacheflush: the I-side is the user's business.
    UserCodeUnsynced,
    /// A private file mapping sees a change made to the file after it was mapped: unspecified.
    PrivateMappingOfModifiedFile,
    /// A kernel path read a user or page-cache page while I/O the user started owns it (another
    /// system call on a buffer under direct I/O): the user raced its own I/O.
    UserBufferUnderIo,
    /// A copy-on-write copy for one address space (or KSM's comparison deciding whether to
    /// replace that address space's mapping of the page) missed a store another address
    /// space's thread made while a fork was copying the page tables (before the write-protect,
    /// or through a stale TLB entry before the TLB flush): the copy may show any value the
    /// byte held in that window.
    ForkWindowStore,
}

/// A logical write's provenance.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize)]
pub struct WriteInfo {
    /// The step it happened in.
    pub step: u32,
    /// The actor (None for the device or initial contents).
    pub actor: Option<ActorId>,
    /// The CPU (None for the device or initial contents).
    pub cpu: Option<CpuId>,
    /// The virtual address written through (0 for the device).
    pub va: Va,
    /// The kind of that address.
    pub alias: Option<AliasKind>,
}

/// A coherence violation, with everything needed to explain it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    /// What went wrong.
    pub kind: Kind,
    /// The byte.
    pub pa: Pa,
    /// The address read through (0 for the device and dirty-line audits).
    pub va: Va,
    /// Its kind.
    pub alias: AliasKind,
    /// The intended value.
    pub expected: Stamp,
    /// The value read.
    pub observed: Stamp,
    /// Where the observed value came from.
    pub from: Source,
    /// The reader (None for the device and the audit).
    pub reader: Option<ActorId>,
    /// The CPU that read.
    pub cpu: Option<CpuId>,
    /// The step of the read.
    pub step: u32,
    /// The kernel path or user action that read.
    pub context: &'static str,
    /// The last write of the byte.
    pub write: WriteInfo,
    /// The kernel path or user action of that write.
    pub write_context: &'static str,
    /// The kernel path (or `user store`, ...) that wrote the value observed, when it is the
    /// value the byte held before its last write (as a buried dirty line's often is); empty
    /// otherwise.
    pub observed_context: &'static str,
    /// Whether the newest value still exists anywhere (memory or a cache line).
    pub newest_survives: bool,
    /// Where the newest value is at the moment of the violation.
    pub newest_at: Vec<Source>,
    /// The kernel buffer shared with user space that the byte's frame belongs to, if any
    /// (`perf-ring`, `packet-ring`, `io_uring`): what a family of a buffer's own protocol
    /// matches on.
    pub object: Option<&'static str>,
    /// The names of the arch implementation the run used and of those it builds on
    /// ([`crate::arch::lineage`]): what a family of one arch's own mechanism matches on.
    pub arch: [&'static str; crate::arch::LINEAGE],
    /// Events that touched the byte's line, when the run was logged.
    pub history: Vec<Logged>,
}

impl Violation {
    /// The signature: what kind of read, through which alias and in which path, saw what kind
    /// of write. Two crashes of one mechanism share it, whatever the preset or the values.
    pub fn signature(&self) -> String {
        format!(
            "{}:{}@{}<-{}@{}",
            self.kind,
            self.context,
            self.alias.name(),
            self.write_context,
            self.write.alias.map_or("device", |a| a.name())
        )
    }
}

/// What a logical write means to the oracle.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WriteFlags {
    /// The writer, when the write belongs to an operation that has not returned: until it does,
    /// readers may still see the old value.
    pub racing: Option<ActorId>,
    /// User data (a user store, or data written at the user's request): the I-side may ignore
    /// it until the user's cacheflush.
    pub user_data: bool,
    /// A change to a page-cache page after its fill: private mappings need not see it.
    pub page_cache: bool,
}

const UNSYNCED: u8 = 1;
const PRIVATE_UNSPEC: u8 = 2;

/// The provenance of a run of logical writes: `info` and `ctx` are those of the write of `pa`;
/// the others differ at most in the address, which follows the physical one for a CPU's
/// writes (each byte through its own address) and stays put for the device's (none).
#[derive(Clone, Copy, Debug)]
struct LogEntry {
    pa: Pa,
    info: WriteInfo,
    ctx: &'static str,
}

impl LogEntry {
    fn new(pa: Pa, info: WriteInfo, ctx: &'static str) -> LogEntry {
        LogEntry { pa, info, ctx }
    }

    /// Whether the address of a byte follows its physical address.
    fn strided(&self) -> bool {
        self.info.cpu.is_some() || self.info.actor.is_some()
    }

    /// The address the write of byte `pa` went through, if this entry stands for it.
    fn va_of(&self, pa: Pa) -> Va {
        if self.strided() {
            self.info.va.wrapping_add(pa.wrapping_sub(self.pa))
        } else {
            self.info.va
        }
    }

    /// Whether a write of `pa` with `info` and `ctx` is one this entry can stand for.
    fn covers(&self, pa: Pa, info: &WriteInfo, ctx: &'static str) -> bool {
        (std::ptr::eq(self.ctx, ctx) || self.ctx == ctx)
            && *info
                == WriteInfo {
                    va: self.va_of(pa),
                    ..self.info
                }
    }
}

/// Per-byte intended values and their provenance.
#[derive(Debug)]
pub struct Oracle {
    intended: Vec<Stamp>,
    previous: Vec<Stamp>,
    racing: Vec<Option<ActorId>>,
    flags: Vec<u8>,
    /// Per byte, the index of its last write in `write_log` (0: the initial contents). The log
    /// keeps the provenance of every logical write without 40 bytes of it per byte: one entry
    /// stands for a run of bytes written alike (see [`LogEntry`]).
    write_idx: Vec<u32>,
    /// Per byte, the index in `write_log` of the write before its last: the provenance of
    /// `previous`.
    prev_write_idx: Vec<u32>,
    write_log: Vec<LogEntry>,
    live: Vec<bool>,
    device_owned: Vec<u8>,
    /// Per frame, the last CPU read of it: the reader and the step.
    last_read: Vec<(Option<ActorId>, u32)>,
    /// Per frame, the two actors that wrote it last, each with the step of its last write
    /// there (the later first): enough to tell, without visiting the frame's bytes, that no
    /// actor but one wrote it since a step.
    writers: Vec<[(Option<ActorId>, u32); 2]>,
    page_size: u32,
    next: Stamp,
    racing_bytes: Vec<Pa>,
    /// Forks between their cache flush and their TLB flush.
    fork_windows: u32,
    /// Values bytes held while a fork window was open: each write then records the value it
    /// replaces and its own.
    window_values: Vec<(Pa, Stamp)>,
    contested: Vec<Option<Stamp>>,
    /// The frames whose per-byte state (`intended`, `previous`, `racing`, `flags`,
    /// `write_idx`, `contested`) changed since this oracle was a copy of a snapshot
    /// ([`Oracle::snapshot`]).
    changes: Changes,
}

impl Clone for Oracle {
    fn clone(&self) -> Self {
        Oracle {
            intended: self.intended.clone(),
            previous: self.previous.clone(),
            racing: self.racing.clone(),
            flags: self.flags.clone(),
            write_idx: self.write_idx.clone(),
            prev_write_idx: self.prev_write_idx.clone(),
            write_log: self.write_log.clone(),
            live: self.live.clone(),
            device_owned: self.device_owned.clone(),
            last_read: self.last_read.clone(),
            writers: self.writers.clone(),
            page_size: self.page_size,
            next: self.next,
            racing_bytes: self.racing_bytes.clone(),
            fork_windows: self.fork_windows,
            window_values: self.window_values.clone(),
            contested: self.contested.clone(),
            changes: self.changes.clone(),
        }
    }

    /// Reuses the allocations. When both are copies of one snapshot and `source` is unchanged,
    /// only the frames this one changed are copied back: a campaign resets its state to the
    /// template after every run, and a run touches a few frames of many.
    fn clone_from(&mut self, source: &Self) {
        let Oracle {
            intended,
            previous,
            racing,
            flags,
            write_idx,
            prev_write_idx,
            write_log,
            live,
            device_owned,
            last_read,
            writers,
            page_size,
            next,
            racing_bytes,
            fork_windows,
            window_values,
            contested,
            changes,
        } = self;
        if changes.resets_from(&source.changes) {
            let p = *page_size as usize;
            changes.take(|f| {
                let r = f * p..(f + 1) * p;
                intended[r.clone()].copy_from_slice(&source.intended[r.clone()]);
                previous[r.clone()].copy_from_slice(&source.previous[r.clone()]);
                racing[r.clone()].copy_from_slice(&source.racing[r.clone()]);
                flags[r.clone()].copy_from_slice(&source.flags[r.clone()]);
                write_idx[r.clone()].copy_from_slice(&source.write_idx[r.clone()]);
                prev_write_idx[r.clone()].copy_from_slice(&source.prev_write_idx[r.clone()]);
                contested[r.clone()].copy_from_slice(&source.contested[r]);
            });
        } else {
            intended.clone_from(&source.intended);
            previous.clone_from(&source.previous);
            racing.clone_from(&source.racing);
            flags.clone_from(&source.flags);
            write_idx.clone_from(&source.write_idx);
            prev_write_idx.clone_from(&source.prev_write_idx);
            contested.clone_from(&source.contested);
            changes.clone_from(&source.changes);
        }
        write_log.clone_from(&source.write_log);
        live.clone_from(&source.live);
        device_owned.clone_from(&source.device_owned);
        last_read.clone_from(&source.last_read);
        writers.clone_from(&source.writers);
        *page_size = source.page_size;
        *next = source.next;
        racing_bytes.clone_from(&source.racing_bytes);
        *fork_windows = source.fork_windows;
        window_values.clone_from(&source.window_values);
    }
}

impl Oracle {
    /// An oracle for `frames` frames whose bytes initially intend what memory holds.
    pub fn new(frames: u32, page_size: u32, initial: impl Fn(Pa) -> Stamp, next: Stamp) -> Oracle {
        let n = frames as usize * page_size as usize;
        let intended: Vec<Stamp> = (0..n as u64).map(initial).collect();
        Oracle {
            previous: intended.clone(),
            intended,
            racing: vec![None; n],
            flags: vec![0; n],
            write_idx: vec![0; n],
            prev_write_idx: vec![0; n],
            write_log: vec![LogEntry::new(0, WriteInfo::default(), "initial contents")],
            live: vec![false; frames as usize],
            device_owned: vec![0; frames as usize],
            last_read: vec![(None, 0); frames as usize],
            writers: vec![[(None, 0); 2]; frames as usize],
            page_size,
            next,
            racing_bytes: Vec::new(),
            fork_windows: 0,
            window_values: Vec::new(),
            contested: vec![None; n],
            changes: Changes::new(frames as usize),
        }
    }

    /// Makes this oracle a snapshot that its copies can be reset to by copying back only the
    /// frames they changed (see `clone_from`).
    pub fn snapshot(&mut self) {
        self.changes.snapshot();
    }

    /// Notes that the per-byte state of the `len` bytes from `pa` is changing.
    fn touch(&mut self, pa: Pa, len: u64) {
        if len == 0 {
            return;
        }
        self.changes
            .mark_range(self.frame(pa), self.frame(pa + len - 1));
    }

    /// The last stamp issued ([`Oracle::fresh`]): later ones are greater.
    pub(crate) fn issued(&self) -> Stamp {
        self.next
    }

    /// Writes the canonical form of this oracle (see [`crate::canon`]): for each frame whose
    /// bytes differ from `tpl`'s in any way, every byte's intended and previous value, racing
    /// writer, flags, provenance (the log entry's fields, not its place in the log) and
    /// contested value; then each frame's liveness, device ownership, last reader and last
    /// writers, the open fork windows and, as sets, the values they saw and the racing bytes.
    /// The counter of stamps is no part of it: stamps are renamed.
    pub(crate) fn canon(&self, tpl: &Oracle, c: &mut Canon<'_>) {
        c.part(20);
        let p = self.page_size as usize;
        let frames = self.live.len();
        for f in 0..frames {
            let r = f * p..(f + 1) * p;
            // A frame unchanged since the copy of the template is the template's.
            if !self.changes.marked(f) {
                continue;
            }
            if self.intended[r.clone()] == tpl.intended[r.clone()]
                && self.previous[r.clone()] == tpl.previous[r.clone()]
                && self.racing[r.clone()] == tpl.racing[r.clone()]
                && self.flags[r.clone()] == tpl.flags[r.clone()]
                && self.write_idx[r.clone()] == tpl.write_idx[r.clone()]
                && self.prev_write_idx[r.clone()] == tpl.prev_write_idx[r.clone()]
                && self.contested[r.clone()] == tpl.contested[r.clone()]
            {
                continue;
            }
            c.word(f as u64);
            for i in r.clone() {
                c.stamp(self.intended[i]);
                c.stamp(self.previous[i]);
                c.word(self.racing[i].map_or(0, |a| a as u64 + 1) | (self.flags[i] as u64) << 16);
                match self.contested[i] {
                    Some(v) => c.stamp(v),
                    None => c.word(u64::MAX),
                }
            }
            // Provenance, by runs of bytes written alike: a byte whose last write says what the
            // previous byte's says, through the next address, extends the run. The runs follow
            // from the bytes' provenance alone, not from how the log stores it.
            let mut run: Option<(WriteInfo, &'static str, u64)> = None;
            let flush = |c: &mut Canon<'_>, run: &Option<(WriteInfo, &'static str, u64)>| {
                if let Some((w, ctx, n)) = run {
                    c.word(
                        w.actor.map_or(0, |a| a as u64 + 1)
                            | w.cpu.map_or(0, |a| a as u64 + 1) << 16
                            | w.alias.map_or(0, |a| a as u64 + 1) << 32
                            | n << 40,
                    );
                    c.word(w.va);
                    c.step(w.step);
                    c.text(ctx);
                }
            };
            for i in r {
                let (w, ctx) = self.last_write(i as Pa);
                let extends = run.as_ref().is_some_and(|(rw, rctx, n)| {
                    *rctx == ctx
                        && w == WriteInfo {
                            va: if w.cpu.is_some() || w.actor.is_some() {
                                rw.va.wrapping_add(*n)
                            } else {
                                rw.va
                            },
                            ..*rw
                        }
                });
                if extends {
                    if let Some(r) = run.as_mut() {
                        r.2 += 1;
                    }
                } else {
                    flush(c, &run);
                    run = Some((w, ctx, 1));
                }
            }
            flush(c, &run);
        }
        c.part(21);
        for f in 0..frames {
            c.word(self.live[f] as u64 | (self.device_owned[f] as u64) << 8);
            let (reader, step) = self.last_read[f];
            c.word(reader.map_or(0, |a| a as u64 + 1));
            c.step(step);
            for (a, step) in self.writers[f] {
                c.word(a.map_or(0, |a| a as u64 + 1));
                c.step(step);
            }
        }
        c.part(22);
        c.word(self.fork_windows as u64);
        let mut seen: Vec<(Pa, u64)> = self
            .window_values
            .iter()
            .map(|&(pa, v)| (pa, c.name(v)))
            .collect();
        seen.sort_unstable();
        seen.dedup();
        for (pa, v) in seen {
            c.word(pa);
            c.word(v);
        }
        c.part(23);
        let mut racing = self.racing_bytes.clone();
        racing.sort_unstable();
        racing.dedup();
        for pa in racing {
            c.word(pa);
        }
    }

    /// A value never used before.
    pub fn fresh(&mut self) -> Stamp {
        self.next += 1;
        self.next
    }

    /// The intended value of a byte.
    pub fn intended(&self, pa: Pa) -> Stamp {
        self.intended[pa as usize]
    }

    /// The intended values of the `len` bytes from `pa`.
    pub fn intended_bytes(&self, pa: Pa, len: u64) -> &[Stamp] {
        &self.intended[pa as usize..(pa + len) as usize]
    }

    /// The value a byte held before its last write, with that value's provenance: the write
    /// a stale line still holding it saw last.
    pub fn previous_write(&self, pa: Pa) -> (Stamp, WriteInfo, &'static str) {
        let e = &self.write_log[self.prev_write_idx[pa as usize] as usize];
        (
            self.previous[pa as usize],
            WriteInfo {
                va: e.va_of(pa),
                ..e.info
            },
            e.ctx,
        )
    }

    /// The provenance of a byte's last write.
    pub fn last_write(&self, pa: Pa) -> (WriteInfo, &'static str) {
        let e = &self.write_log[self.write_idx[pa as usize] as usize];
        (
            WriteInfo {
                va: e.va_of(pa),
                ..e.info
            },
            e.ctx,
        )
    }

    fn frame(&self, pa: Pa) -> usize {
        crate::addr::div_size(pa, self.page_size) as usize
    }

    /// Marks a frame allocated (its contents matter) or free (they do not).
    pub fn set_live(&mut self, pfn: Pfn, live: bool) {
        self.live[pfn as usize] = live;
    }

    /// Whether a frame is allocated.
    pub fn is_live(&self, pfn: Pfn) -> bool {
        self.live[pfn as usize]
    }

    /// Marks a frame as owned by the device (streaming DMA mapping) or given back to the CPU.
    /// `driver_buffer` says a driver mapped its own buffer: any kernel access to it meanwhile is
    /// misuse. Otherwise the I/O is the user's (direct I/O, a page-cache fill) and kernel reads
    /// of the page meanwhile come from the user's own racing system calls.
    pub fn set_device_owned(&mut self, pfn: Pfn, owned: bool, driver_buffer: bool) {
        self.device_owned[pfn as usize] = match (owned, driver_buffer) {
            (false, _) => 0,
            (true, false) => 1,
            (true, true) => 2,
        };
    }

    /// Records a CPU read of `pa` by `reader` at `step`.
    pub fn note_read(&mut self, pa: Pa, reader: Option<ActorId>, step: u32) {
        let f = self.frame(pa);
        self.last_read[f] = (reader, step);
    }

    /// Whether an actor other than `me` read frame `pfn` through a CPU at step `since` or
    /// later (its cache may keep what it read).
    pub fn read_by_another_since(&self, pfn: Pfn, me: ActorId, since: u32) -> bool {
        let (r, step) = self.last_read[pfn as usize];
        r.is_some_and(|r| r != me) && step >= since
    }

    /// Whether an actor other than `me` wrote frame `pfn` at step `since` or later (whether
    /// or not a later write replaced what it wrote).
    pub fn written_by_another_since(&self, pfn: Pfn, me: ActorId, since: u32) -> bool {
        let [first, second] = self.writers[pfn as usize];
        let other = if first.0 == Some(me) { second } else { first };
        other.0.is_some() && other.1 >= since
    }

    /// A fork has flushed the parent's caches and starts copying its page tables (`open`), or
    /// has flushed the parent's TLB (`!open`). Until then the parent's other threads may store
    /// to pages the child will share, and a copy for the child may show any value a byte held
    /// meanwhile ([`Rule::ForkWindowStore`]).
    pub fn fork_window(&mut self, open: bool) {
        if open {
            self.fork_windows += 1;
        } else {
            self.fork_windows -= 1;
        }
    }

    /// Whether the device owns a frame.
    pub fn device_owned(&self, pfn: Pfn) -> bool {
        self.device_owned[pfn as usize] != 0
    }

    /// Whether a kernel read of the intended value of a byte of `pfn` is coherent: true unless
    /// the frame is a driver's buffer the device owns, where any kernel access is misuse (see
    /// [`Oracle::judge`]).
    pub fn kernel_read_of_intended_is_coherent(&self, pfn: Pfn) -> bool {
        self.device_owned[pfn as usize] != 2
    }

    /// Records a logical write of `v` to `pa`, with what the write means (see [`WriteFlags`]).
    pub fn write(
        &mut self,
        pa: Pa,
        v: Stamp,
        info: WriteInfo,
        ctx: &'static str,
        flags: WriteFlags,
    ) {
        self.write_run(pa, &[v], info, ctx, flags)
    }

    /// Records logical writes of `values` to the consecutive bytes from `pa`, all in one frame,
    /// exactly as [`Oracle::write`] of each in turn would: a CPU's (`info.cpu` or `info.actor`
    /// set) each through its own address from `info.va` on, the device's all with `info.va`.
    pub fn write_run(
        &mut self,
        pa: Pa,
        values: &[Stamp],
        info: WriteInfo,
        ctx: &'static str,
        flags: WriteFlags,
    ) {
        let WriteFlags {
            racing: racing_until_done,
            user_data: user_store,
            page_cache,
        } = flags;
        if values.is_empty() {
            return;
        }
        self.touch(pa, values.len() as u64);
        let r = pa as usize..pa as usize + values.len();
        debug_assert_eq!(self.frame(pa), self.frame(pa + values.len() as u64 - 1));
        if racing_until_done.is_none() && self.fork_windows == 0 {
            // The common case: what the loop below does when nothing races and no fork window
            // is open.
            for i in r.clone() {
                if self.racing[i].is_none() {
                    self.previous[i] = self.intended[i];
                    self.prev_write_idx[i] = self.write_idx[i];
                }
            }
            self.intended[r.clone()].copy_from_slice(values);
        } else {
            for (i, &v) in r.clone().zip(values) {
                if self.racing[i].is_none() {
                    // The value before this write (before the first write of a racing
                    // operation while it is in flight).
                    self.previous[i] = self.intended[i];
                    self.prev_write_idx[i] = self.write_idx[i];
                    if racing_until_done.is_some() {
                        self.racing_bytes.push(i as Pa);
                    }
                }
                if racing_until_done.is_some() {
                    self.racing[i] = racing_until_done;
                }
                if self.fork_windows > 0 {
                    self.window_values.push((i as Pa, self.intended[i]));
                    self.window_values.push((i as Pa, v));
                }
                self.intended[i] = v;
            }
        }
        self.contested[r.clone()].fill(None);
        if let Some(a) = info.actor {
            let f = self.frame(pa);
            let w = &mut self.writers[f];
            if w[0].0 != Some(a) {
                w[1] = w[0];
            }
            w[0] = (Some(a), info.step);
        }
        // Consecutive writes alike share one log entry: the bytes of one copy by a CPU, or of
        // one transfer by the device. An entry that stands for the first byte of the run
        // stands for the others too.
        let same = self
            .write_log
            .last()
            .is_some_and(|e| e.covers(pa, &info, ctx));
        if !same {
            self.write_log.push(LogEntry::new(pa, info, ctx));
        }
        self.write_idx[r.clone()].fill((self.write_log.len() - 1) as u32);
        for f in &mut self.flags[r] {
            if user_store {
                *f |= UNSYNCED;
            } else {
                *f &= !UNSYNCED;
            }
            if page_cache {
                *f |= PRIVATE_UNSPEC;
            }
        }
    }

    /// Clears the private-mapping rule for a frame (a fresh page-cache fill, or a new owner).
    pub fn reset_flags(&mut self, pfn: Pfn) {
        let p = self.page_size as usize;
        self.touch(pfn as Pa * p as Pa, p as u64);
        for f in &mut self.flags[pfn as usize * p..(pfn as usize + 1) * p] {
            *f = 0;
        }
    }

    /// Carries what the `len` bytes at `from` mean (user data not yet synchronised for the
    /// I-side, a page-cache change private mappings need not see) to the bytes at `to`: a page
    /// whose contents moved to another frame (migration) means what it meant.
    pub fn copy_flags(&mut self, from: Pa, to: Pa, len: u64) {
        self.touch(to, len);
        self.flags
            .copy_within(from as usize..(from + len) as usize, to as usize);
    }

    /// Whether the byte was last written as user data not yet synchronised for the I-side.
    pub fn user_code(&self, pa: Pa) -> bool {
        self.flags[pa as usize] & UNSYNCED != 0
    }

    /// The write just made to `pa` raced with `other`, written by another actor while the
    /// writer's operation was in flight: either may be the byte's final value.
    pub fn contest(&mut self, pa: Pa, other: Stamp) {
        self.touch(pa, 1);
        self.contested[pa as usize] = Some(other);
    }

    /// The other value a byte may end with, when its last write raced another (see
    /// [`Oracle::contest`]).
    pub fn contested(&self, pa: Pa) -> Option<Stamp> {
        self.contested[pa as usize]
    }

    /// A user store into an executable mapping of frame `pfn`: the user is writing code, and
    /// until its cacheflush the I-side of the whole page is its business.
    pub fn user_code_page(&mut self, pfn: Pfn) {
        let p = self.page_size as usize;
        self.touch(pfn as Pa * p as Pa, p as u64);
        for f in &mut self.flags[pfn as usize * p..(pfn as usize + 1) * p] {
            *f |= UNSYNCED;
        }
    }

    /// Bytes just written as data at a user's request (a ptrace poke into a data mapping, a
    /// direct-I/O read): like a user store, the I-side is the user's business until its
    /// cacheflush; `page_cache` says they changed a page-cache page under the file's private
    /// mappings. Intended values, provenance and contested values stay as they are.
    pub fn user_data_written(&mut self, pa: Pa, len: u64, page_cache: bool) {
        self.touch(pa, len);
        for f in &mut self.flags[pa as usize..(pa + len) as usize] {
            *f |= UNSYNCED;
            if page_cache {
                *f |= PRIVATE_UNSPEC;
            }
        }
    }

    /// The user synchronised the I-side for these bytes (cacheflush returned).
    pub fn user_code_synced(&mut self, pa: Pa, len: u64) {
        self.touch(pa, len);
        for f in &mut self.flags[pa as usize..(pa + len) as usize] {
            *f &= !UNSYNCED;
        }
    }

    /// The operation of `actor` returned: its writes are no longer racing.
    pub fn operation_done(&mut self, actor: ActorId) {
        if self.racing_bytes.is_empty() {
            return;
        }
        let (racing, changes) = (&mut self.racing, &mut self.changes);
        let page = self.page_size;
        self.racing_bytes.retain(|&pa| {
            if racing[pa as usize] == Some(actor) {
                let f = crate::addr::div_size(pa, page) as usize;
                changes.mark(f);
                racing[pa as usize] = None;
                false
            } else {
                true
            }
        });
    }

    /// Judges a read of `observed` at `pa`: `Ok(None)` if coherent, `Ok(Some(rule))` if not
    /// checked, `Err(kind)` if it is a violation.
    pub fn judge(
        &self,
        pa: Pa,
        observed: Stamp,
        how: ReadKind,
        reader: Option<ActorId>,
    ) -> Result<Option<Rule>, Kind> {
        let i = pa as usize;
        let frame = self.frame(pa);
        if !self.live[frame] {
            return Ok(Some(Rule::FreeFrame));
        }
        if matches!(
            how,
            ReadKind::Kernel
                | ReadKind::KernelForPrivate
                | ReadKind::KernelForCopyOfOthersStore
                | ReadKind::KernelFetch
        ) {
            match self.device_owned[frame] {
                2 => return Err(Kind::Misuse),
                1 => return Ok(Some(Rule::UserBufferUnderIo)),
                _ => {}
            }
        }
        if observed == self.intended[i] {
            return Ok(None);
        }
        if self.contested[i] == Some(observed) {
            return Ok(Some(Rule::RacingWrite));
        }
        if let Some(w) = self.racing[i] {
            if Some(w) != reader && observed == self.previous[i] {
                return Ok(Some(Rule::RacingWrite));
            }
        }
        match how {
            ReadKind::UserFetch { private_file } => {
                if self.flags[i] & UNSYNCED != 0 {
                    return Ok(Some(Rule::UserCodeUnsynced));
                }
                if private_file && self.flags[i] & PRIVATE_UNSPEC != 0 {
                    return Ok(Some(Rule::PrivateMappingOfModifiedFile));
                }
                Err(Kind::StaleFetch)
            }
            ReadKind::UserLoad { private_file } => {
                if private_file && self.flags[i] & PRIVATE_UNSPEC != 0 {
                    return Ok(Some(Rule::PrivateMappingOfModifiedFile));
                }
                Err(Kind::StaleLoad)
            }
            ReadKind::Kernel => Err(Kind::StaleLoad),
            ReadKind::KernelFetch => Err(Kind::StaleFetch),
            ReadKind::KernelForPrivate => {
                if self.flags[i] & PRIVATE_UNSPEC != 0 {
                    return Ok(Some(Rule::PrivateMappingOfModifiedFile));
                }
                Err(Kind::StaleLoad)
            }
            ReadKind::KernelForCopyOfOthersStore => {
                if observed == self.previous[i] || self.window_values.contains(&(pa, observed)) {
                    return Ok(Some(Rule::ForkWindowStore));
                }
                Err(Kind::StaleLoad)
            }
            ReadKind::Device => Err(Kind::StaleDeviceRead),
            ReadKind::DirtyLine => Err(Kind::LostWrite),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A copy of a snapshot, changed by every kind of per-byte update across frames, is reset
    /// to the snapshot by copying back only its changed frames; a copy of another snapshot is
    /// copied whole.
    #[test]
    fn resetting_a_copy_of_a_snapshot_restores_every_byte() {
        let mut template = Oracle::new(70, 8, |pa| pa as Stamp + 1, 1000);
        template.snapshot();
        let mut o = template.clone();
        let info = WriteInfo {
            actor: Some(1),
            cpu: Some(0),
            ..WriteInfo::default()
        };
        let racing = WriteFlags {
            racing: Some(1),
            user_data: true,
            page_cache: true,
        };
        o.write_run(8, &[7; 8], info, "kernel", racing);
        o.write(530, 9, info, "kernel", WriteFlags::default());
        o.contest(17, 3);
        o.reset_flags(3);
        o.user_code_page(66);
        o.user_data_written(300, 4, true);
        o.user_code_synced(9, 1);
        o.operation_done(1);
        assert_ne!(format!("{o:?}"), format!("{template:?}"));
        o.clone_from(&template);
        assert_eq!(format!("{o:?}"), format!("{template:?}"));

        let mut other = Oracle::new(70, 8, |_| 5, 1000);
        other.snapshot();
        o.clone_from(&other);
        assert_eq!(format!("{o:?}"), format!("{other:?}"));
    }

    /// A copy for another address space may show any value a byte held while a fork was
    /// copying page tables, and no value it held only before or after.
    #[test]
    fn a_fork_window_allows_every_value_it_saw() {
        let mut o = Oracle::new(1, 64, |_| 10, 100);
        o.set_live(0, true);
        let info = WriteInfo {
            actor: Some(0),
            cpu: Some(0),
            alias: Some(AliasKind::User),
            ..WriteInfo::default()
        };
        let flags = WriteFlags::default();
        let copy = ReadKind::KernelForCopyOfOthersStore;
        o.write(0, 11, info, "user store", flags);
        o.fork_window(true);
        for v in [12, 13, 14] {
            o.write(0, v, info, "user store", flags);
        }
        o.fork_window(false);
        o.write(0, 15, info, "user store", flags);
        assert_eq!(o.judge(0, 15, copy, Some(1)), Ok(None));
        // 14 is also the value before the last write.
        for v in [11, 12, 13, 14] {
            assert_eq!(
                o.judge(0, v, copy, Some(1)),
                Ok(Some(Rule::ForkWindowStore)),
                "{v}"
            );
        }
        assert_eq!(o.judge(0, 10, copy, Some(1)), Err(Kind::StaleLoad));
        assert_eq!(
            o.judge(0, 12, ReadKind::Kernel, Some(1)),
            Err(Kind::StaleLoad)
        );
    }

    /// A CPU's copy of a run of bytes and a device transfer each take one log entry, and every
    /// byte still reads back its own provenance; anything else starts a new entry.
    #[test]
    fn the_write_log_shares_entries_without_losing_provenance() {
        let mut o = Oracle::new(2, 64, |_| 0, 1);
        let cpu = |va, step| WriteInfo {
            step,
            actor: Some(1),
            cpu: Some(0),
            va,
            alias: Some(AliasKind::User),
        };
        let flags = WriteFlags::default();
        for d in 0..16 {
            o.write(64 + d, 7, cpu(0x1000 + d, 3), "copy", flags);
        }
        assert_eq!(o.write_log.len(), 2);
        // The next byte through an address that does not follow, then at another step.
        o.write(80, 7, cpu(0x2000, 3), "copy", flags);
        o.write(81, 7, cpu(0x2001, 4), "copy", flags);
        o.write(82, 7, cpu(0x2002, 4), "other", flags);
        assert_eq!(o.write_log.len(), 5);
        let device = |step| WriteInfo {
            step,
            ..WriteInfo::default()
        };
        for d in 0..8 {
            o.write(d, 9, device(5), "device", flags);
        }
        assert_eq!(o.write_log.len(), 6);
        for d in 0..16 {
            assert_eq!(o.last_write(64 + d), (cpu(0x1000 + d, 3), "copy"));
        }
        assert_eq!(o.last_write(80), (cpu(0x2000, 3), "copy"));
        assert_eq!(o.last_write(81), (cpu(0x2001, 4), "copy"));
        assert_eq!(o.last_write(82), (cpu(0x2002, 4), "other"));
        for d in 0..8 {
            assert_eq!(o.last_write(d), (device(5), "device"));
        }
        assert_eq!(
            o.last_write(100),
            (WriteInfo::default(), "initial contents")
        );
    }

    /// The per-frame writer record answers like a scan of the frame's writes.
    #[test]
    fn writers_since_a_step_are_remembered_per_frame() {
        let mut o = Oracle::new(2, 8, |pa| pa as Stamp, 100);
        let put = |o: &mut Oracle, pa: Pa, actor: Option<ActorId>, step: u32| {
            let v = o.fresh();
            let info = WriteInfo {
                step,
                actor,
                ..WriteInfo::default()
            };
            o.write(pa, v, info, "test", WriteFlags::default());
        };
        assert!(!o.written_by_another_since(0, 1, 0));
        put(&mut o, 1, Some(1), 3);
        // Only actor 1 wrote frame 0; frame 1 is untouched.
        assert!(!o.written_by_another_since(0, 1, 0));
        assert!(o.written_by_another_since(0, 2, 3));
        assert!(!o.written_by_another_since(0, 2, 4));
        assert!(!o.written_by_another_since(1, 2, 0));
        put(&mut o, 2, Some(2), 5);
        put(&mut o, 3, Some(1), 7);
        // Actor 2's write at step 5 stays visible to actor 1 behind actor 1's later one.
        assert!(o.written_by_another_since(0, 1, 5));
        assert!(!o.written_by_another_since(0, 1, 6));
        put(&mut o, 4, Some(3), 8);
        // A third writer: for actor 3 the latest other is actor 1 at step 7.
        assert!(o.written_by_another_since(0, 3, 7));
        assert!(!o.written_by_another_since(0, 3, 8));
        // The device is no actor.
        put(&mut o, 5, None, 9);
        assert!(!o.written_by_another_since(0, 1, 9));
    }

    #[test]
    fn fresh_stamps_never_repeat_and_racing_reads_may_see_the_old_value() {
        let mut o = Oracle::new(2, 8, |pa| pa as Stamp + 1, 100);
        o.set_live(0, true);
        let a = o.fresh();
        let b = o.fresh();
        assert_ne!(a, b);
        assert!(a > 100);
        o.write(
            3,
            a,
            WriteInfo::default(),
            "test",
            WriteFlags {
                racing: Some(1),
                user_data: false,
                page_cache: false,
            },
        );
        // Actor 2 may see the old value while actor 1's operation runs, but not a third value.
        assert_eq!(
            o.judge(3, 4, ReadKind::Kernel, Some(2)),
            Ok(Some(Rule::RacingWrite))
        );
        assert_eq!(
            o.judge(3, 999, ReadKind::Kernel, Some(2)),
            Err(Kind::StaleLoad)
        );
        // The writer itself must see its own write.
        assert_eq!(
            o.judge(3, 4, ReadKind::Kernel, Some(1)),
            Err(Kind::StaleLoad)
        );
        o.operation_done(1);
        assert_eq!(
            o.judge(3, 4, ReadKind::Kernel, Some(2)),
            Err(Kind::StaleLoad)
        );
        assert_eq!(o.judge(3, a, ReadKind::Kernel, Some(2)), Ok(None));
        // Free frames are never judged.
        assert_eq!(
            o.judge(9, 0, ReadKind::Kernel, None),
            Ok(Some(Rule::FreeFrame))
        );
    }

    #[test]
    fn user_code_is_unchecked_on_the_i_side_until_synced() {
        let mut o = Oracle::new(1, 8, |_| 0, 10);
        o.set_live(0, true);
        let v = o.fresh();
        o.write(
            2,
            v,
            WriteInfo::default(),
            "store",
            WriteFlags {
                racing: None,
                user_data: true,
                page_cache: false,
            },
        );
        let fetch = ReadKind::UserFetch {
            private_file: false,
        };
        assert_eq!(
            o.judge(2, 0, fetch, Some(0)),
            Ok(Some(Rule::UserCodeUnsynced))
        );
        assert_eq!(
            o.judge(
                2,
                0,
                ReadKind::UserLoad {
                    private_file: false
                },
                Some(0)
            ),
            Err(Kind::StaleLoad)
        );
        o.user_code_synced(0, 8);
        assert_eq!(o.judge(2, 0, fetch, Some(0)), Err(Kind::StaleFetch));
    }
}
