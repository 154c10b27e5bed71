//! Crash triage: sorting a pile of crashing inputs into race families, one minimized trace each.
//!
//! A *family* names the mechanism of a race, not the preset it was found on. It is computed from
//! what a [`Violation`] says about the race (its kind, the kernel path that read, the alias kinds
//! read and written through, the path that wrote, and whether the newest value still exists) by
//! the first matching row of [`FAMILIES`]; when no row matches, a generic name is built from the
//! kind and the two alias kinds, so that unknown mechanisms still group.
//!
//! [`triage`] loads every input (raw libFuzzer bytes or trace files) and replays it inside
//! [`catch_unwind`](std::panic::catch_unwind), so that a panic of the model (a flushfuzz bug) is
//! told apart from a violation (a finding). Findings are grouped by family (one mechanism may
//! show under several signatures, which each group counts), and the smallest input of each group
//! is minimized. [`Triage::save`] recognises the families already in the output folder by
//! replaying its traces, and writes the others through a writer the caller provides (the CLI
//! passes its never-overwriting `write_new`). This module knows nothing of terminals or argument
//! parsing, and it never modifies an input.

use crate::event::Source;
use crate::harness::{self, LoadError, Loaded};
use crate::minimize;
use crate::model::{DynModel, Models};
use crate::op::Op;
use crate::oracle::{Kind, Violation};
use crate::run::RunOptions;
use crate::trace::Trace;
use std::cell::{Cell, RefCell};
use std::collections::BTreeMap;
use std::panic::{self, AssertUnwindSafe};
use std::path::{Path, PathBuf};
use std::rc::Rc;

// ---- families ----------------------------------------------------------------------------

/// The alias kinds of kernel mappings (everything but the user's own addresses).
const KERNEL_ALIASES: &[&str] = KERNEL_ALIASES_OR_NONE.split_at(5).0;
/// The kernel's aliases, and `unmapped`: the audit of a value that is nowhere any more.
const KERNEL_ALIASES_OR_NONE: &[&str] = &[
    "linear",
    "pkmap",
    "fixmap",
    "vmap",
    "colour-window",
    "unmapped",
];

/// The kernel's aliases, and `device`: a write by the kernel or by a device.
const KERNEL_ALIASES_OR_DEVICE: &[&str] = &[
    "linear",
    "pkmap",
    "fixmap",
    "vmap",
    "colour-window",
    "device",
];

/// What a family requires of the newest value of the byte when the violation is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Newest {
    /// Either way.
    Any,
    /// It still exists somewhere (memory or a line): the read missed it.
    Survives,
    /// It is nowhere any more: it was discarded or overwritten.
    Lost,
    /// It reached memory (clean copies may linger in lines: the reader hit an older line that
    /// nothing invalidated after the newest value was written back), or it is nowhere any more
    /// (such a line, dirtied, was written back over it).
    WrittenBack,
    /// It survives in cache lines only, memory holding an older value: dirty data that the
    /// reader's path did not have written back.
    NotWrittenBack,
}

/// Where the newest value of the byte is when the violation is found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NewestAt {
    /// In memory (and perhaps in clean cache lines too).
    InMemory,
    /// In cache lines only: memory holds an older value.
    OnlyInLines,
    /// Nowhere any more.
    Lost,
}

/// One row of the family table: a mechanism and the facts that identify it. An empty list
/// matches anything.
#[derive(Clone, Copy, Debug)]
pub struct FamilyRule {
    /// The family's name (also the file name of its trace).
    pub name: &'static str,
    /// Violation kinds.
    pub kinds: &'static [Kind],
    /// Kernel paths (or `user load`, `end-of-run audit`, `device`, ...) that read.
    pub read_paths: &'static [&'static str],
    /// Alias kinds read through (`unmapped` for the audit of a value that is nowhere any more).
    pub read_via: &'static [&'static str],
    /// Alias kinds the last write went through (`device` for the device).
    pub write_via: &'static [&'static str],
    /// Kernel paths (or `user store`, ...) that made the last write.
    pub write_paths: &'static [&'static str],
    /// Kernel paths (or `user store`, ...) that wrote the stale value observed, where it is the
    /// value before the last write ([`Violation::observed_context`]).
    pub observed_paths: &'static [&'static str],
    /// Whether the newest value must still exist.
    pub newest: Newest,
    /// The shared kernel buffers ([`Violation::object`]) the byte must belong to; empty for
    /// any byte, a buffer's or not.
    pub objects: &'static [&'static str],
    /// The arch implementations ([`crate::arch::Arch::name`]) whose own handling the
    /// mechanism is, matched by the run's arch or any it builds on; empty for any.
    pub arches: &'static [&'static str],
    /// The mechanism, in one sentence.
    pub mechanism: &'static str,
    /// Whether mainline behaviour has it too: a hole in the kernel's handling itself, not a
    /// historical behaviour that a `-fixed` twin corrects.
    pub mainline: bool,
}

const STALE_READS: &[Kind] = &[
    Kind::StaleLoad,
    Kind::StaleFetch,
    Kind::StaleDeviceRead,
    Kind::LostWrite,
];

/// The race families flushfuzz knows, most specific first: the first row that matches a
/// violation names its family.
pub const FAMILIES: &[FamilyRule] = &[
    FamilyRule {
        name: "kmap-slot-recycled-during-maintenance",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &[],
        write_via: &["pkmap"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Lost,
        objects: &[],
        arches: &[],
        mechanism: "cache maintenance through an unpinned page_address of a recycled pkmap slot \
                    discards a dirty line written through the slot's new mapping; whoever reads \
                    the byte next (the audit, a load, a fetch, the device) sees the old value \
                    (mail 003)",
        mainline: false,
    },
    FamilyRule {
        name: "process-vm-writev-leaves-kernel-alias-dirty",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &["process_vm_writev"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "process_vm_writev copies into the other process's page through a kernel \
                    mapping (copy_page_from_iter under kmap_local_page) after GUP's flushes and \
                    makes no flush_dcache_page afterwards: on an aliasing cache the data stays \
                    dirty in the kernel alias, and the process reading through its own mapping \
                    sees the old value (mainline on aliasing VIPT ARM and MIPS; PA-RISC flushes \
                    on kunmap)",
        mainline: true,
    },
    FamilyRule {
        name: "cow-copy-reads-kernel-alias-filled-before-user-write",
        kinds: &[Kind::StaleLoad],
        read_paths: &["copy_user_highpage"],
        read_via: KERNEL_ALIASES,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::WrittenBack,
        objects: &[],
        arches: &["arm-vivt"],
        mechanism: "on VIVT, the copy-on-write copy writes the source page's user address back \
                    (write_protect_page's or the fault's flush_cache_page) and reads the page \
                    through its kernel address, where a kernel reader left a clean line before \
                    the process stored again (ksmd's calc_checksum and memcmp_pages read \
                    anonymous pages through the linear map): nothing invalidates that line, and \
                    the copy takes the old data (mainline on VIVT ARM)",
        mainline: true,
    },
    FamilyRule {
        name: "cow-copy-through-incongruent-alias",
        kinds: &[Kind::StaleLoad],
        read_paths: &["copy_user_highpage"],
        read_via: KERNEL_ALIASES,
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Survives,
        objects: &[],
        arches: &[],
        mechanism: "the copy-on-write copy reads the old page through a kernel alias whose \
                    colour differs from the alias holding newer dirty data (mail 004)",
        mainline: false,
    },
    FamilyRule {
        name: "vmap-read-after-kmap-write",
        kinds: &[Kind::StaleLoad],
        read_paths: &[],
        read_via: &["vmap"],
        write_via: &["linear", "pkmap", "fixmap"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Survives,
        objects: &[],
        arches: &[],
        mechanism: "the kernel reads through a vm_map_ram/vmap alias data it wrote through kmap \
                    or the linear map, whose dirty lines that read misses (mail 000)",
        mainline: false,
    },
    FamilyRule {
        name: "ring-written-through-incongruent-vmalloc-alias",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user", "unmapped"],
        write_via: &["vmap"],
        write_paths: &["perf_output_copy"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "the kernel writes a ring buffer (perf's under CONFIG_PERF_USE_VMALLOC, a \
                    vb2-vmalloc buffer) through its vmalloc alias and nothing writes those lines \
                    back; where the user's mapping of the ring does not share the alias's lines \
                    (VIVT, and PA-RISC, whose vmalloc_user gets no colour), the user reads the \
                    old data (mainline on VIVT and PA-RISC)",
        mainline: true,
    },
    FamilyRule {
        name: "ring-vmalloc-alias-line-buries-user-write",
        kinds: &[Kind::LostWrite],
        read_paths: &[],
        read_via: &["vmap"],
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["perf-ring"],
        arches: &[],
        mechanism: "the kernel writes a ring buffer (perf's under CONFIG_PERF_USE_VMALLOC, a \
                    vb2-vmalloc buffer) through its vmalloc alias and nothing writes those lines \
                    back; where the user's mapping of the ring does not share the alias's lines \
                    (VIVT, and PA-RISC, whose vmalloc_user gets no colour), a later store of the \
                    user to the same bytes goes to its own line, and the kernel alias's dirty \
                    line, written back after it, buries it (mainline on VIVT and PA-RISC)",
        mainline: true,
    },
    FamilyRule {
        name: "ring-read-through-incongruent-vmalloc-alias",
        kinds: &[Kind::StaleLoad],
        read_paths: &["perf_output_begin"],
        read_via: &["vmap"],
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "the kernel reads what the user wrote into a ring buffer (perf's data_tail, a \
                    vb2 output buffer) through the ring's vmalloc alias, with nothing written \
                    back; where the user's mapping does not share that alias's lines (VIVT, \
                    PA-RISC), it reads the old data (mainline on VIVT and PA-RISC)",
        mainline: true,
    },
    FamilyRule {
        name: "packet-ring-user-alias-left-by-flush-dcache-page",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["packet-ring"],
        arches: &[],
        mechanism: "the PACKET_MMAP ring's pages belong to no file, so the flush_dcache_page \
                    that __packet_set_status, __packet_get_status, tpacket_rcv and tpacket_snd \
                    run writes back and invalidates only the kernel's alias: the process's \
                    mapping, at the colour mmap gives offset 0 (any other address on VIVT), \
                    keeps its lines, so the kernel misses a status or frame the process wrote, \
                    the process reads an old one, or a dirty line of one side buries the \
                    other's write (mainline on VIVT, aliasing VIPT ARM, MIPS and PA-RISC)",
        mainline: true,
    },
    FamilyRule {
        name: "io-uring-rings-through-incongruent-aliases",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["io_uring"],
        arches: &[],
        mechanism: "io_uring's rings and SQE array are read and written by the kernel through \
                    their kernel address and by the process through its mapping, with no cache \
                    maintenance on either side; io_uring_get_unmapped_area makes the two \
                    addresses share lines only under SHM_COLOUR (PA-RISC), so on VIVT and on \
                    aliasing VIPT ARM and MIPS, where the mapping goes to colour 0 whatever the \
                    kernel address's colour, each side can read the other's old data and a \
                    dirty line of one can bury the other's write (mainline)",
        mainline: true,
    },
    FamilyRule {
        name: "aio-ring-id-stored-after-flush",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["ioctx_add_table"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["aio-ring"],
        arches: &[],
        mechanism: "ioctx_add_table stores the AIO ring's id through the first ring page's \
                    kernel address after aio_setup_ring's flush_dcache_folio, with no flush of \
                    its own: the process's mapping of the ring (at the colour of offset 0) reads \
                    the old id, as lookup_ioctx's get_user does for io_submit and io_getevents, \
                    once the page was mapped (and the fault path's flush done) before the \
                    store: a thread touching the ring during io_setup (mainline on VIVT and \
                    aliasing VIPT caches; mainline MIPS's __flush_dcache_pages flushes at once \
                    whenever the file is mapped anywhere, so there no such thread is needed)",
        mainline: true,
    },
    FamilyRule {
        name: "aio-ring-head-read-without-flush",
        kinds: STALE_READS,
        read_paths: &["aio_complete", "aio_read_events_ring"],
        read_via: KERNEL_ALIASES,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["aio-ring"],
        arches: &[],
        mechanism: "aio_complete and aio_read_events_ring read the AIO ring's head (which a \
                    process reaping events itself writes through its mapping) through the ring \
                    page's kernel address with no flush_dcache_folio first, although the \
                    flush API's contract asks for one before the kernel reads a page-cache page \
                    that user mappings may have written: on VIVT and aliasing VIPT caches the \
                    kernel reads the old head (mainline)",
        mainline: true,
    },
    FamilyRule {
        name: "aio-ring-line-written-through-both-aliases",
        kinds: &[Kind::LostWrite],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["aio-ring"],
        arches: &[],
        mechanism: "the AIO ring's header line is written by the kernel through the ring page's \
                    kernel address (the header and id at io_setup, the tail in aio_complete, the \
                    head in aio_read_events_ring) and by a process through its mapping (the head, \
                    as a process reaping events itself writes it), and aio_setup_ring maps the \
                    ring at the colour of offset 0 whatever the kernel address's colour: on VIVT \
                    and aliasing VIPT caches the write-back of one side's dirty line, in \
                    whatever order flush_dcache_folio or an eviction writes them, buries the \
                    other side's newer bytes of the same line (mainline)",
        mainline: true,
    },
    FamilyRule {
        // The same mechanism seen by a later read instead of the audit: the side whose bytes
        // were buried reads the other side's older ones.
        name: "aio-ring-line-written-through-both-aliases",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Lost,
        objects: &["aio-ring"],
        arches: &[],
        mechanism: "the AIO ring's header line is written by the kernel through the ring page's \
                    kernel address and by a process through its mapping, at different colours \
                    on VIVT and aliasing VIPT caches: the write-back of one side's dirty line \
                    buries the other side's newer bytes, and a later read of them (lookup_ioctx, \
                    aio_read_events_ring, the process polling the ring) sees the old ones \
                    (mainline)",
        mainline: true,
    },
    FamilyRule {
        name: "uprobe-slot-left-dirty-at-kernel-alias",
        kinds: &[Kind::StaleFetch, Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["arch_uprobe_copy_ixol"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "ARM's flush_uprobe_xol_access on an aliasing VIPT D-cache flushes the user \
                    colour of the out-of-line page (flush_pfn_alias) and the I-cache, not the \
                    kmap_atomic address arch_uprobe_copy_ixol stored the instruction through: a \
                    task executing a reused slot fetches the old instruction from memory \
                    (mainline on aliasing ARMv6)",
        mainline: true,
    },
    FamilyRule {
        name: "ptrace-write-left-dirty-at-kernel-alias",
        kinds: &[Kind::StaleFetch, Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["copy_to_user_page"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["arm-v6"],
        mechanism: "ARM's copy_to_user_page writes a ptrace poke through the kernel mapping \
                    __access_remote_vm made (kmap_local_folio), and __flush_ptrace_access on \
                    an aliasing VIPT D-cache flushes the user colour of the page \
                    (flush_pfn_alias) and the I-cache, not that kernel address: the tracee \
                    reads the old data from memory while the poked bytes stay dirty at the \
                    kernel alias (mainline on aliasing ARMv6)",
        mainline: true,
    },
    FamilyRule {
        // The same hole seen from the other side: the poked bytes, dirty at the kernel alias,
        // are written back over a store the tracee made since through its own colour.
        name: "ptrace-write-left-dirty-at-kernel-alias",
        kinds: &[Kind::LostWrite],
        read_paths: &[],
        read_via: KERNEL_ALIASES,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &["copy_to_user_page"],
        newest: Newest::Any,
        objects: &[],
        arches: &["arm-v6"],
        mechanism: "ARM's copy_to_user_page writes a ptrace poke through the kernel mapping \
                    __access_remote_vm made (kmap_local_folio), and __flush_ptrace_access on \
                    an aliasing VIPT D-cache flushes the user colour of the page \
                    (flush_pfn_alias) and the I-cache, not that kernel address: the poked \
                    bytes stay dirty at the kernel alias and, written back later, bury what the \
                    tracee stored since through its own colour (mainline on aliasing ARMv6)",
        mainline: true,
    },
    FamilyRule {
        name: "ptrace-write-left-dirty-while-tracee-not-live",
        kinds: &[Kind::StaleFetch, Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["copy_to_user_page"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["arm-vivt"],
        mechanism: "ARM's copy_to_user_page writes a ptrace poke through the kernel mapping \
                    __access_remote_vm made, and __flush_ptrace_access on a VIVT cache cleans \
                    it only when this CPU is in the tracee's mm_cpumask, which a tracee that \
                    is not running here is not: the context switch to the tracee flushes the \
                    cache, but an address space already running here that maps the page too \
                    (a shared mapping, the tracer's own) reads the old data through its user \
                    alias while the poked bytes stay dirty at the kernel alias (mainline on \
                    VIVT ARM)",
        mainline: true,
    },
    FamilyRule {
        name: "zeroed-special-page-stale-in-user-mapping",
        kinds: &[Kind::StaleLoad, Kind::StaleFetch, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["xol_add_vma"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "the uprobes out-of-line page is zeroed (__GFP_ZERO) through its kernel alias \
                    and mapped into the process by a special mapping with no flush, and MIPS's \
                    set_pte_at (__update_cache) flushes only a page marked PG_dcache_dirty: \
                    through the mapping at another colour the process reads the frame's old \
                    memory instead of the zeros (mainline on MIPS with aliasing D-caches)",
        mainline: true,
    },
    FamilyRule {
        name: "aio-ring-zeroed-page-stale-in-user-mapping",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &["aio_setup_ring"],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &["aio-ring"],
        arches: &["mips-r4k"],
        mechanism: "aio_setup_ring's pages are zeroed (__GFP_ZERO) through their kernel alias and \
                    only the first is flushed (after the header is written), and MIPS's \
                    set_pte_at (__update_cache) flushes only a page marked PG_dcache_dirty, \
                    which a mapped file's flush_dcache_folio does not mark: through the \
                    process's mapping at another colour the ring's other pages read the frame's \
                    old memory instead of zeros, and the first page too until the header's \
                    flush (mainline on MIPS with aliasing D-caches)",
        mainline: true,
    },
    FamilyRule {
        name: "spliced-page-cache-read-after-shared-mapping-write",
        kinds: STALE_READS,
        read_paths: &["pipe_read", "iter_file_splice_write"],
        read_via: &[],
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "filemap_splice_read flushes a page-cache folio a process may write through \
                    a shared mapping, then puts a reference to it in the pipe; the data is \
                    copied out only later, by pipe_read (copy_page_to_iter under \
                    kmap_local_page) or a splice to a file, with no flush: a store the process \
                    makes through its shared mapping in between stays in the user alias's line, \
                    and the reader gets the page as it was at splice time through the kernel \
                    alias (mainline on VIVT and aliasing VIPT; read() flushes right before its \
                    copy for this reason)",
        mainline: true,
    },
    FamilyRule {
        name: "user-colour-stale-after-kernel-colour-flush",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &["user", "unmapped"],
        write_via: KERNEL_ALIASES_OR_DEVICE,
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["sh4"],
        mechanism: "SH-4's flush_dcache_folio writes back and invalidates only the D-cache slice \
                    at the page's kernel colour, and its DMA maintenance reaches only the kernel \
                    alias: a line of a user mapping at another colour survives a write(), a \
                    splice or a device's write into the page: the user reads the old data, or \
                    the line, dirty, is written back over the new (mainline on SH-4)",
        mainline: true,
    },
    FamilyRule {
        name: "user-colour-stale-after-kernel-colour-flush",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: KERNEL_ALIASES,
        write_via: KERNEL_ALIASES_OR_DEVICE,
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Lost,
        objects: &[],
        arches: &["sh4"],
        mechanism: "the same SH-4 hole, seen by the kernel: an older dirty line at the user's \
                    colour survives the flush of a kernel write and is written back over it \
                    (by flush_cache_page, another page's flush at that colour, an eviction), \
                    and the kernel reads the old data (mainline on SH-4)",
        mainline: true,
    },
    FamilyRule {
        name: "user-colour-dirty-past-kernel-colour-flush",
        kinds: STALE_READS,
        read_paths: &[],
        read_via: &[],
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::NotWrittenBack,
        objects: &[],
        arches: &["sh4"],
        mechanism: "SH-4's flush_dcache_folio writes back only the D-cache slice at the page's \
                    kernel colour: what the user stored through a mapping at another colour \
                    stays dirty there, and read(), a splice or a device reading the page \
                    (an O_DIRECT write) sees the old data (mainline on SH-4)",
        mainline: true,
    },
    FamilyRule {
        name: "kernel-alias-filled-during-dma-read",
        kinds: &[Kind::StaleLoad],
        read_paths: &[],
        read_via: KERNEL_ALIASES,
        write_via: &["device"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["sh4"],
        mechanism: "SH-4 maintains a streaming-DMA buffer before the transfer only (no \
                    arch_sync_dma_for_cpu): a kernel path that reads a page while a device \
                    writes it (ksmd's checksum and memcmp_pages of a page under O_DIRECT) fills \
                    a line of the kernel alias that outlives the transfer, and later kernel \
                    reads see the old data (mainline on SH-4)",
        mainline: true,
    },
    FamilyRule {
        name: "icache-fenced-for-one-address-space",
        kinds: &[Kind::StaleFetch],
        read_paths: &[],
        read_via: &["user"],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["riscv"],
        mechanism: "RISC-V's flush_icache_pte runs flush_icache_mm of the faulting address space \
                    only, then marks the folio clean for every address space: a hart running \
                    another address space that maps the same text, and that the mask of the \
                    first does not reach, fetches the old instructions (mainline on RISC-V)",
        mainline: true,
    },
    FamilyRule {
        name: "kernel-alias-stale-after-user-write-back",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: KERNEL_ALIASES_OR_NONE,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::WrittenBack,
        objects: &[],
        arches: &[],
        mechanism: "a clean line of the kernel's alias of a page, filled by a kernel read \
                    (read(), KSM's checksum) before the user wrote the page through its own \
                    mapping, outlives the write-back of the user's line (munmap's \
                    flush_cache_range, write_protect_page's flush_cache_page), which touches no \
                    kernel alias: a later read() (it flushes only while the file is writably \
                    mapped) or KSM's pages_identical returns the old line, and a later write() \
                    dirties it, and its write-back buries the user's data (mainline on aliasing \
                    VIPT ARM and on VIVT)",
        mainline: true,
    },
    FamilyRule {
        name: "kernel-alias-stale-after-coherent-window-write-back",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: KERNEL_ALIASES_OR_NONE,
        write_via: &["colour-window"],
        write_paths: &["copy_to_user_page"],
        observed_paths: &[],
        newest: Newest::WrittenBack,
        objects: &[],
        arches: &[],
        mechanism: "MIPS copy_to_user_page (ptrace's pokes) writes a page that has a user \
                    mapping through kmap_coherent, at the user's colour; a clean line of the \
                    kernel's linear alias filled before (KSM's checksum) outlives the \
                    write-back of that colour by write_protect_page's flush_cache_page, and \
                    KSM's pages_identical compares the old line, so the merge may drop the \
                    poked data (mainline on aliasing MIPS; kernel-alias-stale-after-user-\
                    write-back with the store made by the kernel at the user's colour)",
        mainline: true,
    },
    FamilyRule {
        name: "ksm-compares-page-missing-parents-fork-window-store",
        kinds: &[Kind::StaleLoad],
        read_paths: &["memcmp_pages"],
        read_via: KERNEL_ALIASES,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::NotWrittenBack,
        objects: &[],
        arches: &["arm-vivt"],
        mechanism: "a thread of the parent stores to an anonymous page between dup_mmap's \
                    flush_cache_dup_mm and the write-protect of its PTEs, and on VIVT the data \
                    stays dirty at the parent's user address of the page the child now shares. \
                    ksmd makes that shared page a KSM page through the child's mapping and then \
                    compares another page with it: no flush on the way writes the parent's line \
                    back (get_mergeable_page's flush_anon_page and write_protect_page's \
                    flush_cache_page of the child's mapping act on an address space no CPU has \
                    run, so VIVT ARM flushes no user line; those of the other page act on its \
                    own address), pages_identical reads the KSM page through the linear map \
                    without the store, and the other page's mapping may be replaced by a page \
                    whose contents differ (mainline on VIVT ARM)",
        mainline: true,
    },
    FamilyRule {
        name: "shared-alias-mapped-by-fault-around-left-cacheable",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &["arm-vivt"],
        mechanism: "on VIVT, a page-cache page mapped shared at two addresses of one address \
                    space is kept coherent by make_coherent, which update_mmu_cache runs when a \
                    fault maps the page and which makes every such mapping uncacheable; but \
                    update_mmu_cache_range runs it for the first page of the range only, so the \
                    further pages fault-around maps (filemap_map_pages, set_pte_range) stay \
                    cacheable beside a shared alias elsewhere: one mapping reads the old data the \
                    other wrote, or the write-back of one buries the other's (latent in \
                    mainline: update_mmu_cache_range ignores its count on VIVT ARM, but VIVT \
                    kernels build no large folios, ARM's THP needing LPAE, so fault-around maps \
                    one page per call there)",
        mainline: false,
    },
    FamilyRule {
        name: "kernel-read-misses-dirty-user-alias",
        kinds: &[Kind::StaleLoad],
        read_paths: &[],
        read_via: KERNEL_ALIASES,
        write_via: &["user"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::NotWrittenBack,
        objects: &[],
        arches: &[],
        mechanism: "the kernel reads a user page through its own alias while the data the user \
                    wrote sits dirty at the user alias (GUP without flush_anon_page, mail 001)",
        mainline: false,
    },
    FamilyRule {
        name: "cow-copy-left-dirty-at-user-colour-for-icache",
        kinds: &[Kind::StaleFetch],
        read_paths: &[],
        read_via: &["user"],
        write_via: &["colour-window"],
        write_paths: &["copy_user_highpage"],
        observed_paths: &[],
        newest: Newest::NotWrittenBack,
        objects: &[],
        arches: &[],
        mechanism: "ARMv6's aliasing copy_user_highpage (v6_copy_user_highpage_aliasing) copies \
                    a copy-on-write page through a window at the user's colour and leaves the \
                    copy dirty there; when the new anonymous page is mapped executable, \
                    __sync_icache_dcache's __flush_dcache_folio writes back only the kernel's \
                    linear alias (an anonymous folio has no mapping to find the user colour \
                    by) before it invalidates the I-cache, and the I-cache fills from the \
                    frame's old memory (mainline on aliasing VIPT ARMv6)",
        mainline: true,
    },
    FamilyRule {
        name: "icache-fill-before-sync",
        kinds: &[Kind::StaleFetch],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &["readpage", "clear_user_highpage", "copy_user_highpage"],
        observed_paths: &[],
        newest: Newest::Survives,
        objects: &[],
        arches: &[],
        mechanism: "a freshly filled page is made executable before its D-cache write-back and \
                    I-cache sync, and an I-cache fills from the old memory (mail 002)",
        mainline: false,
    },
    FamilyRule {
        name: "device-read-behind-dirty-line",
        kinds: &[Kind::StaleDeviceRead],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Survives,
        objects: &[],
        arches: &[],
        mechanism: "the device reads memory while the newest data is still in a dirty CPU line \
                    that nobody wrote back before the transfer",
        mainline: false,
    },
    FamilyRule {
        name: "user-alias-stale-after-kernel-write",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: KERNEL_ALIASES,
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "the kernel writes a user page through its own alias while an older line of \
                    the user alias survives: the user reads it, or its write-back buries the write",
        mainline: false,
    },
    FamilyRule {
        name: "user-alias-stale-after-device-write",
        kinds: &[Kind::StaleLoad, Kind::LostWrite],
        read_paths: &[],
        read_via: &["user"],
        write_via: &["device"],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "the device writes a user page while an older line of the user alias \
                    survives: the user reads it, or its write-back buries the device's data",
        mainline: false,
    },
    FamilyRule {
        name: "cpu-access-to-device-owned-buffer",
        kinds: &[Kind::Misuse],
        read_paths: &[],
        read_via: &[],
        write_via: &[],
        write_paths: &[],
        observed_paths: &[],
        newest: Newest::Any,
        objects: &[],
        arches: &[],
        mechanism: "a kernel path touches a buffer while it is mapped for streaming DMA",
        mainline: false,
    },
];

/// The facts of a violation that decide its family: what its signature records, and where the
/// newest value is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Facts<'a> {
    /// What went wrong.
    pub kind: Kind,
    /// The path that read.
    pub read_path: &'a str,
    /// The alias kind read through.
    pub read_via: &'a str,
    /// The path of the last write.
    pub write_path: &'a str,
    /// The alias kind of the last write (`device` for the device).
    pub write_via: &'a str,
    /// The path that wrote the stale value observed, when it is the value before the last
    /// write ([`Violation::observed_context`]); empty otherwise.
    pub observed_path: &'a str,
    /// Where the newest value is.
    pub newest: NewestAt,
    /// The shared kernel buffer the byte belongs to.
    pub object: Option<&'a str>,
    /// The arch implementation of the run and those it builds on ([`crate::arch::lineage`]).
    pub arch: [&'a str; crate::arch::LINEAGE],
}

impl Facts<'static> {
    /// The facts of a violation.
    pub fn of(v: &Violation) -> Facts<'static> {
        Facts {
            kind: v.kind,
            read_path: v.context,
            read_via: v.alias.name(),
            write_path: v.write_context,
            write_via: v.write.alias.map_or("device", |a| a.name()),
            observed_path: v.observed_context,
            newest: if !v.newest_survives {
                NewestAt::Lost
            } else if v.newest_at.contains(&Source::Memory) {
                NewestAt::InMemory
            } else {
                NewestAt::OnlyInLines
            },
            object: v.object,
            arch: v.arch,
        }
    }
}

impl Facts<'_> {
    /// The first row of [`FAMILIES`] these facts match.
    pub fn rule(&self) -> Option<&'static FamilyRule> {
        let any = |set: &[&str], x: &str| set.is_empty() || set.contains(&x);
        FAMILIES.iter().find(|r| {
            r.kinds.contains(&self.kind)
                && any(r.read_paths, self.read_path)
                && any(r.read_via, self.read_via)
                && any(r.write_via, self.write_via)
                && any(r.write_paths, self.write_path)
                && any(r.observed_paths, self.observed_path)
                && (r.objects.is_empty() || self.object.is_some_and(|o| r.objects.contains(&o)))
                && (r.arches.is_empty() || self.arch.iter().any(|a| r.arches.contains(a)))
                && match r.newest {
                    Newest::Any => true,
                    Newest::Survives => self.newest != NewestAt::Lost,
                    Newest::Lost => self.newest == NewestAt::Lost,
                    Newest::WrittenBack => self.newest != NewestAt::OnlyInLines,
                    Newest::NotWrittenBack => self.newest == NewestAt::OnlyInLines,
                }
        })
    }

    /// The family: the matching row's name, else `<kind>-<read alias>-after-<write alias>-write`
    /// (for example `stale-load-linear-after-user-write`).
    pub fn family(&self) -> String {
        match self.rule() {
            Some(r) => r.name.to_string(),
            None => format!(
                "{}-{}-after-{}-write",
                self.kind.name(),
                file_safe(self.read_via),
                file_safe(self.write_via)
            ),
        }
    }
}

/// Alias names are lower-case words and hyphens; anything else becomes a hyphen, so that a
/// family is always a safe file name.
fn file_safe(s: &str) -> String {
    s.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_lowercase()
            } else {
                '-'
            }
        })
        .collect()
}

/// The race family of a violation: the mechanism, whatever the preset.
pub fn family(v: &Violation) -> String {
    Facts::of(v).family()
}

/// Whether a violation belongs to a family mainline behaviour has too
/// ([`FamilyRule::mainline`]).
pub fn in_mainline(v: &Violation) -> bool {
    Facts::of(v).rule().is_some_and(|r| r.mainline)
}

// ---- panics --------------------------------------------------------------------------------

thread_local! {
    /// Whether panics on this thread are being caught by [`catch_quietly`].
    static QUIET: Cell<bool> = const { Cell::new(false) };
    /// The message of the last panic caught quietly on this thread.
    static LAST_PANIC: RefCell<Option<String>> = const { RefCell::new(None) };
}

/// Runs `f`, turning a panic into its message (`panicked at FILE:LINE:COL: MESSAGE`) without
/// printing it. Only panics on the calling thread are silenced: the process-wide panic hook
/// is wrapped once and passes every other panic to the hook that was there before.
pub fn catch_quietly<T>(f: impl FnOnce() -> T) -> Result<T, String> {
    static HOOK: std::sync::Once = std::sync::Once::new();
    HOOK.call_once(|| {
        let previous = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            if QUIET.get() {
                let p = info.payload();
                let msg = p
                    .downcast_ref::<&str>()
                    .copied()
                    .or_else(|| p.downcast_ref::<String>().map(String::as_str))
                    .unwrap_or("(a non-string payload)");
                let text = match info.location() {
                    Some(l) => format!(
                        "panicked at {}:{}:{}: {msg}",
                        l.file(),
                        l.line(),
                        l.column()
                    ),
                    None => format!("panicked: {msg}"),
                };
                LAST_PANIC.set(Some(text));
            } else {
                previous(info);
            }
        }));
    });
    let was = QUIET.replace(true);
    let r = panic::catch_unwind(AssertUnwindSafe(f));
    QUIET.set(was);
    r.map_err(|_| LAST_PANIC.take().unwrap_or_else(|| "panicked".to_string()))
}

// ---- inputs --------------------------------------------------------------------------------

/// The most ops an input may have. libFuzzer inputs (4096 bytes at most by default) decode to
/// far fewer; a longer input would make each run, and above all its minimization (up to
/// [`minimize::MAX_RUNS`] runs), slow enough to stall triage.
pub const MAX_OPS: usize = 10_000;

/// The longest error message kept for one input: errors quote the input, which may be hostile.
const MAX_ERROR: usize = 240;

/// The most input files a written trace lists by name.
const MAX_LISTED: usize = 20;

/// An input that could not be triaged, and why (one line).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Problem {
    /// The file.
    pub file: PathBuf,
    /// What went wrong.
    pub error: String,
}

impl Problem {
    fn new(file: &Path, error: impl std::fmt::Display) -> Problem {
        Problem {
            file: file.to_path_buf(),
            error: one_line(&error.to_string()),
        }
    }
}

/// `s` on one short line: control characters escaped, cut after about [`MAX_ERROR`] bytes.
fn one_line(s: &str) -> String {
    let mut out = String::new();
    for c in s.chars() {
        if out.len() >= MAX_ERROR {
            out.push('…');
            break;
        }
        if c.is_control() {
            out.extend(c.escape_default());
        } else {
            out.push(c);
        }
    }
    out
}

fn skipped(name: &std::ffi::OsStr) -> bool {
    let name = name.to_string_lossy();
    name.starts_with('.') || name.ends_with(".tmp")
}

fn walk(dir: &Path, files: &mut Vec<PathBuf>, problems: &mut Vec<Problem>) {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) => return problems.push(Problem::new(dir, e)),
    };
    let mut entries: Vec<_> = entries.filter_map(|e| e.ok()).collect();
    entries.sort_by_key(|e| e.file_name());
    for e in entries {
        if skipped(&e.file_name()) {
            continue;
        }
        let path = e.path();
        match e.file_type() {
            Ok(t) if t.is_dir() => walk(&path, files, problems),
            Ok(t) if t.is_file() => files.push(path),
            // A link to a file is an input; links to folders are not followed (no cycles).
            Ok(t) if t.is_symlink() => {
                if std::fs::metadata(&path).is_ok_and(|m| m.is_file()) {
                    files.push(path);
                }
            }
            // FIFOs, sockets and devices could block a read forever.
            Ok(_) => {}
            Err(e) => problems.push(Problem::new(&path, e)),
        }
    }
}

/// The input files under `paths`: files as given, folders recursively (in name order), skipping
/// hidden names, `*.tmp` files, links to folders and anything that is not a regular file.
pub fn collect_inputs(paths: &[PathBuf]) -> (Vec<PathBuf>, Vec<Problem>) {
    let mut files = Vec::new();
    let mut problems = Vec::new();
    for p in paths {
        match std::fs::metadata(p) {
            Ok(m) if m.is_dir() => walk(p, &mut files, &mut problems),
            Ok(m) if m.is_file() => files.push(p.clone()),
            Ok(_) => problems.push(Problem::new(p, "not a regular file or a folder")),
            Err(e) => problems.push(Problem::new(p, e)),
        }
    }
    let mut seen = std::collections::BTreeSet::new();
    files.retain(|f| seen.insert(f.clone()));
    (files, problems)
}

/// What one input turned out to be.
#[derive(Clone, Debug)]
pub enum Outcome {
    /// It could not be loaded (I/O, trace syntax, too large): the error, on one line.
    Unreadable(String),
    /// The model panicked on it (a flushfuzz bug): the panic message.
    ToolError(String),
    /// It runs without a violation.
    NoViolation,
    /// It reproduces a violation.
    Finding(Finding),
}

/// A violation found by an input.
#[derive(Clone, Debug)]
pub struct Finding {
    /// The race family.
    pub family: String,
    /// The violation's signature.
    pub signature: String,
    /// The model it ran on.
    pub model: Rc<dyn DynModel>,
    /// The ops (canonical).
    pub ops: Vec<Op>,
    /// The ops that ran up to the violation: the input's size for choosing a representative.
    pub size: usize,
}

/// Loads an input on `models`; `preset` decodes raw inputs on that preset (for inputs found
/// under `FLUSHFUZZ_PRESET`) and leaves trace files on their own.
fn load(path: &Path, models: &dyn Models, preset: Option<&str>) -> Result<Loaded, LoadError> {
    let loaded = harness::load_file_in(path, models, None)?;
    match preset {
        Some(p) if !loaded.is_trace => harness::load_file_in(path, models, Some(p)),
        _ => Ok(loaded),
    }
}

/// Loads and runs one input (without the event log), telling unreadable inputs, model panics,
/// clean runs and findings apart.
pub fn examine(path: &Path, models: &dyn Models, preset: Option<&str>) -> Outcome {
    match std::fs::metadata(path) {
        Ok(m) if m.len() == 0 => return Outcome::Unreadable("empty file".into()),
        Ok(_) => {}
        Err(e) => return Outcome::Unreadable(one_line(&e.to_string())),
    }
    let loaded = match catch_quietly(|| load(path, models, preset)) {
        Ok(Ok(l)) => l,
        Ok(Err(e)) => return Outcome::Unreadable(one_line(&e.to_string())),
        Err(panic) => return Outcome::ToolError(one_line(&format!("while loading: {panic}"))),
    };
    if loaded.ops.len() > MAX_OPS {
        return Outcome::Unreadable(format!(
            "{} ops is more than triage takes ({MAX_OPS} at most)",
            loaded.ops.len()
        ));
    }
    match catch_quietly(|| loaded.model.run(&loaded.ops, RunOptions::default())) {
        Err(panic) => Outcome::ToolError(one_line(&panic)),
        Ok(r) => match r.violation {
            None => Outcome::NoViolation,
            Some(v) => Outcome::Finding(Finding {
                family: family(&v),
                signature: v.signature(),
                model: loaded.model,
                ops: loaded.ops,
                size: r.ops_applied,
            }),
        },
    }
}

// ---- known traces ----------------------------------------------------------------------------

/// A trace already in the output folder, and the race it reproduces today.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Known {
    /// The file.
    pub path: PathBuf,
    /// Its race family.
    pub family: String,
    /// Its violation's signature.
    pub signature: String,
    /// Its ops.
    pub ops: usize,
}

/// The traces in `dir` (not recursive, `*.trace`, not hidden) that reproduce a violation,
/// replayed to learn their family. A missing folder has none; traces that do not load or
/// reproduce nothing are ignored (they only keep their names from being reused).
pub fn known_traces(dir: &Path, models: &dyn Models) -> std::io::Result<Vec<Known>> {
    let entries = match std::fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(e),
    };
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok())
        .filter(|e| !skipped(&e.file_name()) && e.file_type().is_ok_and(|t| !t.is_dir()))
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "trace"))
        .collect();
    paths.sort();
    Ok(paths
        .into_iter()
        .filter_map(|path| match examine(&path, models, None) {
            Outcome::Finding(f) => Some(Known {
                path,
                family: f.family,
                signature: f.signature,
                ops: f.ops.len(),
            }),
            _ => None,
        })
        .collect())
}

// ---- triage --------------------------------------------------------------------------------

/// One race family, with its minimized representative.
#[derive(Clone, Debug)]
pub struct Group {
    /// The race family.
    pub family: String,
    /// The signature of the minimized trace: the representative's, or another of the same
    /// family when that took fewer ops ([`minimize::shorten_in_family`]).
    pub signature: String,
    /// Every signature seen in the group, with how many inputs gave it (most first).
    pub signatures: Vec<(String, usize)>,
    /// The inputs of the group, in triage order.
    pub files: Vec<PathBuf>,
    /// The input minimized for the group: the one with the fewest ops up to its violation.
    pub representative: PathBuf,
    /// The representative's model.
    pub model: Rc<dyn DynModel>,
    /// The representative's op count before minimization.
    pub ops_before: usize,
    /// The minimized ops.
    pub minimized: Vec<Op>,
    /// The trace file that holds this family: one already in the output folder, or the one
    /// [`Triage::save`] wrote. `None` until saved.
    pub trace: Option<PathBuf>,
    /// Whether `trace` was there before this triage.
    pub existing: bool,
}

impl Group {
    /// The text of the group's trace, with comments naming what it represents.
    pub fn trace_text(&self) -> String {
        let mut comment = vec![
            format!("Race family {} (flushfuzz triage).", self.family),
            format!(
                "Represents {} input(s); minimized from {} ({} ops -> {} ops).",
                self.files.len(),
                self.representative.display(),
                self.ops_before,
                self.minimized.len()
            ),
        ];
        if self.signatures.len() > 1 {
            comment.push("Signatures:".into());
            for (s, n) in &self.signatures {
                comment.push(format!("  {n} x {s}"));
            }
        }
        comment.push("Inputs:".into());
        for f in self.files.iter().take(MAX_LISTED) {
            comment.push(format!("  {}", f.display()));
        }
        if self.files.len() > MAX_LISTED {
            comment.push(format!("  ... and {} more", self.files.len() - MAX_LISTED));
        }
        Trace::new(&*self.model, &self.minimized, Some(self.signature.clone())).to_text(&comment)
    }
}

/// The outcome of a triage.
#[derive(Clone, Debug, Default)]
pub struct Triage {
    /// Input files examined.
    pub inputs: usize,
    /// Inputs that run without a violation.
    pub no_violation: usize,
    /// Findings, by family (sorted by name).
    pub groups: Vec<Group>,
    /// Inputs that could not be loaded.
    pub unreadable: Vec<Problem>,
    /// Inputs on which the model panicked (flushfuzz bugs to report, with the input).
    pub tool_errors: Vec<Problem>,
    /// Errors reading the output folder or writing traces.
    pub write_errors: Vec<Problem>,
}

/// A group being gathered: its files, signatures and smallest finding so far.
#[derive(Default)]
struct Acc {
    files: Vec<PathBuf>,
    signatures: BTreeMap<String, usize>,
    best: Option<(PathBuf, Finding)>,
}

/// Triages the inputs under `paths` (see [`collect_inputs`]): examines each, calling
/// `progress(done, total)` after it, groups the findings by family and minimizes each group's
/// smallest input (keeping its signature, then only its family). `preset` decodes raw inputs on that preset. Nothing is written; see
/// [`Triage::save`].
pub fn triage(
    paths: &[PathBuf],
    models: &dyn Models,
    preset: Option<&str>,
    progress: &mut dyn FnMut(usize, usize),
) -> Triage {
    let (files, mut unreadable) = collect_inputs(paths);
    let mut t = Triage {
        inputs: files.len() + unreadable.len(),
        ..Triage::default()
    };
    let mut groups: BTreeMap<String, Acc> = BTreeMap::new();
    for (i, f) in files.iter().enumerate() {
        match examine(f, models, preset) {
            Outcome::Unreadable(e) => unreadable.push(Problem::new(f, e)),
            Outcome::ToolError(e) => t.tool_errors.push(Problem::new(f, e)),
            Outcome::NoViolation => t.no_violation += 1,
            Outcome::Finding(x) => {
                let acc = groups.entry(x.family.clone()).or_default();
                acc.files.push(f.clone());
                *acc.signatures.entry(x.signature.clone()).or_default() += 1;
                if acc.best.as_ref().is_none_or(|(_, b)| x.size < b.size) {
                    acc.best = Some((f.clone(), x));
                }
            }
        }
        progress(i + 1, files.len());
    }
    t.unreadable = unreadable;
    for (family, acc) in groups {
        let (rep, best) = acc.best.expect("a group has a finding");
        let minimized = catch_quietly(|| {
            minimize::minimize(&*best.model, &best.ops)
                .filter(|m| m.signature == best.signature)
                .map(|m| minimize::shorten_in_family(&*best.model, m))
        });
        let (minimized, signature) = match minimized {
            Ok(Some(m)) => (m.ops, m.signature),
            Ok(None) => (best.ops.clone(), best.signature),
            Err(panic) => {
                t.tool_errors
                    .push(Problem::new(&rep, format!("while minimizing: {panic}")));
                (best.ops.clone(), best.signature)
            }
        };
        let mut signatures: Vec<(String, usize)> = acc.signatures.into_iter().collect();
        signatures.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        t.groups.push(Group {
            family,
            signature,
            signatures,
            files: acc.files,
            representative: rep,
            model: best.model,
            ops_before: best.ops.len(),
            minimized,
            trace: None,
            existing: false,
        });
    }
    t
}

impl Triage {
    /// Inputs that reproduce a violation.
    pub fn findings(&self) -> usize {
        self.groups.iter().map(|g| g.files.len()).sum()
    }

    /// Gives each group its trace in `out`: a trace already there of the same family (the one
    /// with the same signature if there are several), else a new `<family>.trace` (or
    /// `<family>-2.trace`, ... when the name is taken) written with `write`, which must refuse
    /// to overwrite. Errors go to [`Triage::write_errors`]; inputs are never touched.
    pub fn save(
        &mut self,
        out: &Path,
        models: &dyn Models,
        write: &mut dyn FnMut(&Path, &str) -> Result<(), String>,
    ) {
        let known = match known_traces(out, models) {
            Ok(k) => k,
            Err(e) => {
                self.write_errors.push(Problem::new(out, e));
                return;
            }
        };
        for g in &mut self.groups {
            let same: Vec<&Known> = known.iter().filter(|k| k.family == g.family).collect();
            let found = same
                .iter()
                .find(|k| k.signature == g.signature)
                .or(same.first());
            if let Some(k) = found {
                g.trace = Some(k.path.clone());
                g.existing = true;
                continue;
            }
            let path = (1..)
                .map(|i| match i {
                    1 => out.join(format!("{}.trace", g.family)),
                    i => out.join(format!("{}-{i}.trace", g.family)),
                })
                .find(|p| std::fs::symlink_metadata(p).is_err())
                .expect("a free name");
            match write(&path, &g.trace_text()) {
                Ok(()) => g.trace = Some(path),
                Err(e) => self.write_errors.push(Problem::new(&path, e)),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn facts(kind: Kind, read: &'static str, write: &'static str, lost: bool) -> Facts<'static> {
        let (read_path, read_via) = read.rsplit_once('@').unwrap();
        let (write_path, write_via) = write.rsplit_once('@').unwrap();
        Facts {
            kind,
            read_path,
            read_via,
            write_path,
            write_via,
            observed_path: "",
            newest: if lost {
                NewestAt::Lost
            } else {
                NewestAt::OnlyInLines
            },
            object: None,
            arch: [""; crate::arch::LINEAGE],
        }
    }

    /// Where a surviving newest value is tells a dirty user line the kernel missed from a
    /// stale kernel line nobody invalidated.
    #[test]
    fn a_stale_kernel_line_is_not_a_missed_dirty_user_line() {
        let dirty = facts(Kind::StaleLoad, "sys_read@linear", "user store@user", false);
        assert_eq!(dirty.family(), "kernel-read-misses-dirty-user-alias");
        let stale = Facts {
            newest: NewestAt::InMemory,
            ..dirty
        };
        assert_eq!(stale.family(), "kernel-alias-stale-after-user-write-back");
        // Dirtied by a later write() and written back over the user's data.
        let buried = facts(
            Kind::LostWrite,
            "end-of-run audit@unmapped",
            "user store@user",
            true,
        );
        assert_eq!(buried.family(), "kernel-alias-stale-after-user-write-back");
    }

    /// Unknown mechanisms still group: by kind and the two alias kinds.
    #[test]
    fn unknown_mechanisms_get_a_generic_family() {
        let f = facts(
            Kind::StaleLoad,
            "sys_write@fixmap",
            "sys_read@colour-window",
            false,
        );
        assert_eq!(f.family(), "stale-load-fixmap-after-colour-window-write");
        let f = facts(
            Kind::StaleFetch,
            "user fetch@user",
            "sys_write@linear",
            false,
        );
        assert_eq!(f.family(), "stale-fetch-user-after-linear-write");
        // Whatever an alias name holds, a family is a safe file name.
        let f = facts(Kind::LostWrite, "x@../etc", "y@A b", false);
        assert_eq!(f.family(), "lost-write----etc-after-a-b-write");
    }

    /// Whether the newest value survives tells a missed dirty line from a discarded one.
    #[test]
    fn a_lost_pkmap_write_is_the_recycled_slot_whatever_reads_it() {
        for (kind, read) in [
            (Kind::LostWrite, "end-of-run audit@unmapped"),
            (Kind::StaleFetch, "user fetch@user"),
            (Kind::StaleDeviceRead, "device@unmapped"),
        ] {
            let lost = facts(kind, read, "readpage@pkmap", true);
            assert_eq!(lost.family(), "kmap-slot-recycled-during-maintenance");
            let kept = facts(kind, read, "readpage@pkmap", false);
            assert_ne!(kept.family(), "kmap-slot-recycled-during-maintenance");
        }
    }

    #[test]
    fn every_family_row_is_reachable() {
        for (i, r) in FAMILIES.iter().enumerate() {
            let pick = |set: &'static [&'static str], default: &'static str| {
                set.first().copied().unwrap_or(default)
            };
            let f = Facts {
                kind: r.kinds[0],
                read_path: pick(r.read_paths, "some path"),
                read_via: pick(r.read_via, "linear"),
                write_path: pick(r.write_paths, "some path"),
                write_via: pick(r.write_via, "user"),
                observed_path: pick(r.observed_paths, ""),
                newest: match r.newest {
                    Newest::Lost => NewestAt::Lost,
                    Newest::WrittenBack => NewestAt::InMemory,
                    Newest::Any | Newest::Survives | Newest::NotWrittenBack => {
                        NewestAt::OnlyInLines
                    }
                },
                object: r.objects.first().copied(),
                arch: [r.arches.first().copied().unwrap_or("some-arch"), "", "", ""],
            };
            assert_eq!(f.rule().map(|r| r.name), Some(r.name), "row {i}");
            assert!(r.name.chars().all(|c| c.is_ascii_lowercase() || c == '-'));
        }
    }

    #[test]
    fn panics_become_messages_with_their_location() {
        let e = catch_quietly(|| -> u8 { panic!("model invariant {}", 7) }).unwrap_err();
        assert!(e.starts_with("panicked at "), "{e}");
        assert!(
            e.contains("triage.rs") && e.ends_with("model invariant 7"),
            "{e}"
        );
        assert_eq!(catch_quietly(|| 3), Ok(3));
    }

    #[test]
    fn errors_are_cut_to_one_short_line() {
        let e = one_line(&format!("a\nb\u{1b}[31m{}", "x".repeat(1000)));
        assert!(!e.contains('\n') && !e.contains('\u{1b}'), "{e}");
        assert!(e.starts_with("a\\nb\\u{1b}[31m"), "{e}");
        assert!(e.ends_with('…') && e.len() < MAX_ERROR + 16, "{e}");
        assert_eq!(one_line("short"), "short");
    }
}
