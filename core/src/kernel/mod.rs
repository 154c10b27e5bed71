//! The kernel's bookkeeping and paths.
//!
//! [`KernelState`] holds what Linux keeps in `struct page`, `mm_struct`, VMAs, the page cache,
//! the pkmap table and the vmalloc allocator. The paths (one file per family) are `async`
//! functions over [`Cx`] that call the flush APIs through the [`Arch`] by their Linux names, in
//! the order the kernel does, and end a step (`cx.step().await`) wherever the real code can be
//! preempted or interleaved with other CPUs. Historical behaviours are selected by
//! [`Switches`](crate::preset::Switches), never by knowledge of a race.
//!
//! The kernel knows nothing of the oracle's rules; it tells the oracle what it writes through
//! `Cx`.

pub mod aio;
pub mod bio;
pub mod dma;
pub mod exec;
pub mod fault;
pub mod file;
pub mod folio;
pub mod fork;
pub mod gup;
pub mod kmap;
pub mod ksm;
pub mod migrate;
pub mod packet;
pub mod pipe;
pub mod ring;
pub mod swap;
pub mod text;
pub mod uffd;
pub mod uring;
pub mod vmap;

use crate::addr::{layout, ActorId, MmId, Pfn, Stamp, Va, Vpn};
use crate::arch::Arch;
use crate::machine::Access;
use crate::op::DmaDir;
use crate::paths::{Args, Field, Path, PathInfo, Paths, Runs, DMA_DIRS};
use crate::world::Cx;

/// Lock numbers: `kmap_lock`, then one `mmap_lock` per address space.
pub const KMAP_LOCK: usize = 0;
/// The first `mmap_lock`.
pub const MMAP_LOCK_BASE: usize = 1;

/// What a frame holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// Nothing.
    Free,
    /// Anonymous user memory.
    Anon,
    /// A page of the page cache.
    PageCache {
        /// The file.
        file: u8,
        /// The page index in the file.
        index: u8,
    },
    /// A kernel page (driver buffer, readdir page).
    Kernel,
    /// The zero page (`ZERO_PAGE`, `empty_zero_page`): zeroed at boot, mapped read-only by
    /// read faults of anonymous memory and by `UFFDIO_ZEROPAGE`, never written, never freed;
    /// its special PTEs (`vm_normal_page` is `NULL` for them) take no reference and no reverse
    /// map.
    Zero,
}

/// The kernel's `struct page`.
#[derive(Debug)]
pub struct Page {
    /// What it holds.
    pub kind: PageKind,
    /// Reverse map: the user mappings of the page.
    pub rmap: Vec<(MmId, Vpn)>,
    /// References (mappings, page cache, pins).
    pub refs: u32,
    /// `PG_arch_1`.
    pub arch_1: bool,
    /// I/O in progress on the page (GUP for I/O, ptrace, and while it is locked): its user
    /// threads wait.
    pub io_pin: u32,
    /// `PG_locked`: a read fills it, a migration copies into it, or it is written to swap. A
    /// lookup that needs it up to date waits for the unlock; a GUP pin ([`Page::io_pin`]
    /// alone) does not lock it.
    pub locked: bool,
    /// Arch-private bits ([`crate::world::Cx::page_arch_bits`]).
    pub arch_bits: u64,
    /// `PageKsm`: an anonymous page KSM merged, mapped read-only wherever it is mapped.
    pub ksm: bool,
    /// `PageSwapCache`: the swap slot whose cached copy this page is.
    pub swap: Option<u8>,
    /// The large folio the page belongs to, as its first frame and its number of pages; `None`
    /// for a page of its own (an order-0 folio).
    pub folio: Option<(Pfn, u8)>,
    /// Taken off the LRU by compaction (`isolate_migratepages_block`) until its migration ends:
    /// no other migration or reclaim picks it.
    pub isolated: bool,
}

crate::reuse::clone_reusing!(Page {
    kind,
    rmap,
    refs,
    arch_1,
    io_pin,
    locked,
    arch_bits,
    ksm,
    swap,
    folio,
    isolated
});

impl Page {
    /// Locks the page for I/O that fills it (a read, a migration's copy): `PG_locked`, and
    /// the I/O pin that keeps its users off it.
    pub fn lock_for_io(&mut self) {
        self.io_pin += 1;
        self.locked = true;
    }

    /// Ends [`Page::lock_for_io`]: the page is up to date.
    pub fn unlock_after_io(&mut self) {
        self.io_pin -= 1;
        self.locked = false;
    }

    /// A page of `kind` with `refs` references and nothing else.
    pub fn new(kind: PageKind, refs: u32) -> Page {
        Page {
            kind,
            rmap: Vec::new(),
            refs,
            arch_1: false,
            io_pin: 0,
            locked: false,
            arch_bits: 0,
            ksm: false,
            swap: None,
            folio: None,
            isolated: false,
        }
    }
}

/// What a non-present user PTE holds (a swap PTE, `swp_entry_t`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SwapPte {
    /// The page is on swap, in this slot.
    Swap(u8),
    /// The page is being migrated (a migration entry): faults wait until the new page is
    /// mapped in its place.
    Migration {
        /// The frame being migrated.
        pfn: Pfn,
        /// Whether the PTE was writable (a writable migration entry).
        write: bool,
    },
}

/// A slot of the swap device: a page's contents on disk and who refers to it.
#[derive(Debug)]
pub struct SwapSlot {
    /// The contents, one stamp per byte.
    pub data: Vec<Stamp>,
    /// Swap PTEs referring to the slot (`swap_map`).
    pub count: u32,
    /// The page of the swap cache holding the slot's contents, if any.
    pub cache: Option<Pfn>,
}

crate::reuse::clone_reusing!(SwapSlot { data, count, cache });

impl SwapSlot {
    /// Whether nothing refers to the slot: it may be allocated.
    pub fn is_free(&self) -> bool {
        self.count == 0 && self.cache.is_none()
    }
}

/// Slots of the swap device.
pub const SWAP_SLOTS: usize = 4;

/// What a VMA maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VmaKind {
    /// Anonymous private memory.
    Anon,
    /// A file.
    File {
        /// The file.
        file: u8,
        /// File page of the VMA's first page.
        pgoff: u32,
        /// `MAP_SHARED`.
        shared: bool,
    },
    /// Kernel pages mapped into the process by a driver or the kernel itself
    /// (`remap_vmalloc_range`, a special mapping): never anonymous, never copied at fork
    /// (`VM_DONTCOPY`), refused to `get_user_pages` (`VM_IO`); a fault maps the object's page.
    Special {
        /// What is mapped.
        what: Special,
        /// The object's page of the VMA's first page.
        pgoff: u32,
    },
}

/// The kernel object a [`VmaKind::Special`] VMA maps.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Special {
    /// A buffer the kernel shares with the process, by its slot in [`KernelState::rings`]:
    /// a `vmalloc_user` ring ([`ring`]), the `PACKET_MMAP` ring, io_uring's rings.
    Ring(u8),
    /// The address space's uprobes out-of-line slots ([`text`]): one executable page.
    Xol,
}

/// A virtual memory area.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Vma {
    /// First page.
    pub start: Vpn,
    /// One past the last page.
    pub end: Vpn,
    /// What it maps.
    pub kind: VmaKind,
    /// `PROT_WRITE`.
    pub write: bool,
    /// `PROT_EXEC`.
    pub exec: bool,
}

impl Vma {
    /// The file page mapped at `vpn`, for file VMAs.
    pub fn file_index(&self, vpn: Vpn) -> Option<(u8, u32)> {
        match self.kind {
            VmaKind::File { file, pgoff, .. } => Some((file, pgoff + (vpn - self.start) as u32)),
            VmaKind::Anon | VmaKind::Special { .. } => None,
        }
    }

    /// Whether the VMA is `MAP_SHARED` (a driver's ring buffer is).
    pub fn shared(&self) -> bool {
        matches!(
            self.kind,
            VmaKind::File { shared: true, .. }
                | VmaKind::Special {
                    what: Special::Ring(_),
                    ..
                }
        )
    }

    /// Whether fork leaves the VMA out of the child (`VM_DONTCOPY`).
    pub fn dontcopy(&self) -> bool {
        matches!(self.kind, VmaKind::Special { .. })
    }

    /// The kind of the part of the VMA from `vpn` on: a file's or an object's page offset moves
    /// with the start.
    pub fn kind_from(&self, vpn: Vpn) -> VmaKind {
        let skip = (vpn - self.start) as u32;
        match self.kind {
            VmaKind::File {
                file,
                pgoff,
                shared,
            } => VmaKind::File {
                file,
                pgoff: pgoff + skip,
                shared,
            },
            VmaKind::Special { what, pgoff } => VmaKind::Special {
                what,
                pgoff: pgoff + skip,
            },
            VmaKind::Anon => VmaKind::Anon,
        }
    }
}

/// An address space.
#[derive(Debug, Default)]
pub struct Mm {
    /// Its VMAs, sorted by start.
    pub vmas: Vec<Vma>,
    /// Whether it exists.
    pub alive: bool,
    /// CPUs that have run it.
    pub cpumask: u8,
    /// `exit` has begun: its threads start nothing new.
    pub exiting: bool,
    /// The arch's context ([`crate::world::Cx::mm_context`]).
    pub context: u64,
    /// The uprobes out-of-line area (`mm->uprobes_state.xol_area`), once a probe was hit.
    pub xol: Option<text::XolArea>,
    /// Processes using it (`mm_users`): more than one after `vfork`, until the child execs or
    /// exits.
    pub users: u32,
    /// Non-present PTEs that hold a swap or migration entry, by user page.
    pub swap_ptes: Vec<(Vpn, SwapPte)>,
    /// The per-VMA locks ([`VmaLocks`]).
    pub vma_locks: VmaLocks,
}

crate::reuse::clone_reusing!(Mm {
    vmas,
    alive,
    cpumask,
    exiting,
    context,
    xol,
    users,
    swap_ptes,
    vma_locks
});

/// The per-VMA locks of an address space (`vm_lock`, `CONFIG_PER_VMA_LOCK`), as far as the
/// model uses them: `fork` write-locks each VMA as it reaches it (`vma_start_write` in
/// `dup_mmap`), and user-mode faults on the VMAs it has not reached yet run under their VMA's
/// read lock without `mmap_lock` ([`fault`]).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct VmaLocks {
    /// While a `fork` of the address space holds `mmap_lock`: the VMAs starting below this page
    /// are write-locked; `None` when no fork runs.
    pub fork_reached: Option<Vpn>,
    /// The first page of the VMA each fault in progress under a VMA read lock holds.
    pub readers: Vec<Vpn>,
}

impl Mm {
    /// Adds `vma`, keeping the VMAs sorted by start.
    pub fn insert_vma(&mut self, vma: Vma) {
        self.vmas.push(vma);
        self.vmas.sort_by_key(|v| v.start);
    }

    /// The VMA containing `vpn`.
    pub fn vma(&self, vpn: Vpn) -> Option<&Vma> {
        self.vmas.iter().find(|v| v.start <= vpn && vpn < v.end)
    }

    /// Every mapped page, in address order.
    pub fn pages(&self) -> impl Iterator<Item = Vpn> + '_ {
        self.vmas.iter().flat_map(|v| v.start..v.end)
    }

    /// The swap or migration entry of the non-present PTE of `vpn`.
    pub fn swap_pte(&self, vpn: Vpn) -> Option<SwapPte> {
        self.swap_ptes
            .iter()
            .find(|(v, _)| *v == vpn)
            .map(|&(_, e)| e)
    }
}

/// A file: its contents on disk and its page cache.
#[derive(Debug)]
pub struct File {
    /// Page cache: file page -> frame.
    pub pages: Vec<Option<Pfn>>,
    /// Contents on disk, one stamp per byte.
    pub disk: Vec<Stamp>,
}

crate::reuse::clone_reusing!(File { pages, disk });

/// The pkmap table (`pkmap_count`, `page_address`, `last_pkmap_nr`).
#[derive(Debug)]
pub struct Pkmap {
    /// Per slot: 0 free, 1 mapped but unused, n mapped with n-1 users.
    pub count: Vec<u32>,
    /// Per slot: the page mapped there.
    pub page: Vec<Option<Pfn>>,
    /// The last slot handed out.
    pub last: u32,
}

crate::reuse::clone_reusing!(Pkmap { count, page, last });

impl Pkmap {
    /// The slot mapping `pfn`, if any (`page_address` of a highmem page).
    pub fn slot_of(&self, pfn: Pfn) -> Option<u32> {
        self.page
            .iter()
            .position(|p| *p == Some(pfn))
            .map(|s| s as u32)
    }
}

/// The kernel's state.
#[derive(Debug)]
pub struct KernelState {
    /// One per frame.
    pub pages: Vec<Page>,
    /// Address spaces, by id.
    pub mms: Vec<Mm>,
    /// The address space of each process.
    pub procs: Vec<MmId>,
    /// Files.
    pub files: Vec<File>,
    /// pkmap.
    pub pkmap: Pkmap,
    /// Driver buffers (kernel pages some lowmem, some highmem).
    pub buffers: Vec<Pfn>,
    /// Lock holders.
    pub locks: Vec<Option<ActorId>>,
    /// vmalloc pages in use.
    pub vmalloc: Vec<bool>,
    /// Per-CPU fixmap slots in use (a stack depth).
    pub fixmap_depth: [u64; crate::addr::MAX_CPUS],
    /// How the page cache is filled.
    pub io: crate::preset::Io,
    /// The arch's global per-run words ([`crate::world::Cx::arch_word`]).
    pub arch_words: [u64; ARCH_WORDS],
    /// Filesystem metadata buffers built from several pages and one vmap ([`bio`]).
    pub vmap_bufs: Vec<Option<bio::VmapBuf>>,
    /// Buffers the kernel shares with processes, by slot ([`ring`]): perf-like
    /// `vmalloc_user` rings, the `PACKET_MMAP` ring ([`packet`]), io_uring's ([`uring`]).
    pub rings: Vec<Option<ring::Ring>>,
    /// Kernel text in vmalloc space: loaded modules and JIT images ([`text`]).
    pub text: Vec<Option<text::Text>>,
    /// The swap device.
    pub swap: Vec<SwapSlot>,
    /// The pipe's buffers, oldest first ([`pipe`]).
    pub pipe: Vec<pipe::PipeBuf>,
    /// The native AIO context ([`aio`]), once a process has set it up.
    pub aio: Option<aio::Ctx>,
    /// The zero page's frame ([`PageKind::Zero`]).
    pub zero_pfn: Pfn,
}

/// How many global words of per-run state an arch has.
pub const ARCH_WORDS: usize = 8;

crate::reuse::clone_reusing!(KernelState {
    pages,
    mms,
    procs,
    files,
    pkmap,
    buffers,
    locks,
    vmalloc,
    fixmap_depth,
    io,
    arch_words,
    vmap_bufs,
    rings,
    text,
    swap,
    pipe,
    aio,
    zero_pfn
});

impl KernelState {
    /// Writes the canonical form of the kernel's bookkeeping (see [`crate::canon`]): all of it
    /// but the files' contents on disk, which no path changes.
    pub(crate) fn canon(&self, c: &mut crate::canon::Canon<'_>) {
        c.part(40);
        for p in &self.pages {
            let kind = match p.kind {
                PageKind::Free => 0,
                PageKind::Anon => 1,
                PageKind::PageCache { file, index } => {
                    2 | (file as u64) << 8 | (index as u64) << 16
                }
                PageKind::Kernel => 3,
                PageKind::Zero => 4,
            };
            c.word(kind | (p.refs as u64) << 32);
            c.word(p.arch_1 as u64 | (p.io_pin as u64) << 32);
            c.word(p.arch_bits);
            c.word(
                p.ksm as u64
                    | (p.isolated as u64) << 1
                    | (p.locked as u64) << 2
                    | p.swap.map_or(0, |s| s as u64 + 1) << 8
                    | p.folio
                        .map_or(0, |(f, n)| (f as u64 + 1) << 16 | (n as u64) << 48),
            );
            c.word(p.rmap.len() as u64);
            for &(m, v) in &p.rmap {
                c.word(m as u64 | v << 16);
            }
        }
        c.part(41);
        for m in &self.mms {
            c.word(m.alive as u64 | (m.exiting as u64) << 1 | (m.cpumask as u64) << 8);
            c.word(m.context);
            c.word(m.users as u64);
            c.text(&format!("{:?}{:?}{:?}", m.xol, m.swap_ptes, m.vma_locks));
            c.word(m.vmas.len() as u64);
            for v in &m.vmas {
                c.word(v.start | v.end << 24 | (v.write as u64) << 48 | (v.exec as u64) << 49);
                c.word(match v.kind {
                    VmaKind::Anon => 0,
                    VmaKind::File {
                        file,
                        pgoff,
                        shared,
                    } => 1 | (file as u64) << 8 | (pgoff as u64) << 16 | (shared as u64) << 48,
                    VmaKind::Special { what, pgoff } => {
                        let w = match what {
                            Special::Ring(r) => r as u64,
                            Special::Xol => 1 << 8,
                        };
                        2 | w << 8 | (pgoff as u64) << 24
                    }
                });
            }
        }
        c.part(42);
        for &p in &self.procs {
            c.word(p as u64);
        }
        for f in &self.files {
            c.word(f.pages.len() as u64);
            for p in &f.pages {
                c.word(p.map_or(0, |p| p as u64 + 1));
            }
        }
        c.part(43);
        for (n, p) in self.pkmap.count.iter().zip(&self.pkmap.page) {
            c.word(*n as u64 | p.map_or(0, |p| p as u64 + 1) << 32);
        }
        c.word(self.pkmap.last as u64);
        for &b in &self.buffers {
            c.word(b as u64);
        }
        for l in &self.locks {
            c.word(l.map_or(0, |a| a as u64 + 1));
        }
        for &v in &self.vmalloc {
            c.word(v as u64);
        }
        for &d in &self.fixmap_depth {
            c.word(d);
        }
        for &w in &self.arch_words {
            c.word(w);
        }
        // Buffers, rings, kernel text and the pipe, as their debug text: exact, if blind to the renaming
        // of values (equal states may hash apart, never unequal ones together).
        c.part(44);
        c.text(&format!(
            "{:?}{:?}{:?}{:?}{:?}",
            self.vmap_bufs, self.rings, self.text, self.pipe, self.aio
        ));
    }

    /// The name of the buffer shared with user space that frame `pfn` belongs to, if any
    /// (see [`crate::oracle::Violation::object`]).
    pub fn shared_object(&self, pfn: u64) -> Option<&'static str> {
        let slot = self.rings.iter().position(|r| {
            r.as_ref()
                .is_some_and(|r| r.pfns.iter().any(|&p| p as u64 == pfn))
        })?;
        Some(match slot {
            ring::PACKET_RING => "packet-ring",
            ring::URING_RINGS | ring::URING_SQES => "io_uring",
            ring::AIO_RING => "aio-ring",
            _ => "perf-ring",
        })
    }

    /// The files a process's file operations reach (`read`, `write`, `mmap`, ...): all but the
    /// last, which is the AIO ring's ([`Self::aio_file`]).
    pub fn user_files(&self) -> u8 {
        self.files.len() as u8 - 1
    }

    /// The file whose page cache holds the AIO ring's pages (the `aio` pseudo filesystem's
    /// file of the context, `aio_private_file`).
    pub fn aio_file(&self) -> u8 {
        self.files.len() as u8 - 1
    }

    /// Whether frame `pfn` (given as a page number of physical memory) is in the page cache.
    pub fn is_page_cache(&self, pfn: u64) -> bool {
        matches!(
            self.pages.get(pfn as usize).map(|p| p.kind),
            Some(PageKind::PageCache { .. })
        )
    }

    /// Whether `vpn` of `mm` is a private file mapping still showing page-cache page `pfn`.
    pub fn is_private_file_mapping(&self, mm: Option<MmId>, vpn: Vpn, pfn: Pfn) -> bool {
        let Some(mm) = mm else { return false };
        matches!(
            self.mms[mm as usize].vma(vpn).map(|v| v.kind),
            Some(VmaKind::File { shared: false, .. })
        ) && self.is_page_cache(pfn as u64)
    }

    /// Whether `vpn` of `mm` is in a shared mapping.
    pub fn is_shared_mapping(&self, mm: MmId, vpn: Vpn) -> bool {
        self.mms[mm as usize].vma(vpn).is_some_and(|v| v.shared())
    }

    /// The mmap lock of `mm`.
    pub fn mmap_lock(mm: MmId) -> usize {
        MMAP_LOCK_BASE + mm as usize
    }

    /// The folio of frame `pfn`: its first frame and number of pages (`pfn` and 1 for a page
    /// of its own).
    pub fn folio(&self, pfn: Pfn) -> (Pfn, u64) {
        match self.pages[pfn as usize].folio {
            Some((head, nr)) => (head, nr as u64),
            None => (pfn, 1),
        }
    }

    /// `split_folio`: the pages of the large folio holding `pfn` become pages of their own,
    /// each keeping the folio's `PG_arch_1` (as `__split_huge_page_tail` copies it).
    pub fn split_folio(&mut self, pfn: Pfn) {
        let (head, nr) = self.folio(pfn);
        let arch_1 = self.pages[head as usize].arch_1;
        for p in head..head + nr as Pfn {
            let page = &mut self.pages[p as usize];
            page.folio = None;
            page.arch_1 = arch_1;
        }
    }
}

/// Allocates the lowest free frame of a zone, or `None`.
pub fn alloc_page<A: Arch>(cx: &Cx<A>, highmem: bool, kind: PageKind) -> Option<Pfn> {
    let mut st = cx.st();
    let cfg = st.m.config().clone();
    let zone = if highmem {
        cfg.lowmem_frames..cfg.frames()
    } else {
        0..cfg.lowmem_frames
    };
    let pick = zone
        .clone()
        .find(|&p| st.k.pages[p as usize].kind == PageKind::Free);
    // GFP_HIGHUSER falls back to lowmem when highmem is exhausted.
    let pfn = pick.or_else(|| {
        if highmem {
            (0..cfg.lowmem_frames).find(|&p| st.k.pages[p as usize].kind == PageKind::Free)
        } else {
            None
        }
    })?;
    st.k.pages[pfn as usize] = Page::new(kind, 1);
    st.o.set_live(pfn, true);
    st.o.reset_flags(pfn);
    drop(st);
    cx.note(|| format!("page {pfn} allocated ({kind:?})"));
    Some(pfn)
}

/// Allocates a large folio of `nr` pages (a power of two): the lowest free run of `nr` frames
/// aligned to `nr` in a zone, as [`alloc_page`] picks zones; page `i` holds `kind(i)`. Returns
/// its first frame, or `None`. A folio of one page is an [`alloc_page`].
pub fn alloc_folio<A: Arch>(
    cx: &Cx<A>,
    highmem: bool,
    nr: u64,
    kind: impl Fn(u64) -> PageKind,
) -> Option<Pfn> {
    if nr <= 1 {
        return alloc_page(cx, highmem, kind(0));
    }
    let mut st = cx.st();
    let cfg = st.m.config().clone();
    let free_run = |st: &crate::world::State, zone: std::ops::Range<u32>| {
        zone.clone()
            .filter(|&h| h % nr as u32 == 0 && h + nr as u32 <= zone.end)
            .find(|&h| (h..h + nr as u32).all(|p| st.k.pages[p as usize].kind == PageKind::Free))
    };
    let high = cfg.lowmem_frames..cfg.frames();
    let low = 0..cfg.lowmem_frames;
    let head = if highmem {
        free_run(&st, high).or_else(|| free_run(&st, low))
    } else {
        free_run(&st, low)
    }?;
    for i in 0..nr {
        let pfn = head + i as Pfn;
        let mut page = Page::new(kind(i), 1);
        page.folio = Some((head, nr as u8));
        st.k.pages[pfn as usize] = page;
        st.o.set_live(pfn, true);
        st.o.reset_flags(pfn);
    }
    drop(st);
    cx.note(|| format!("folio of pages {head}..{} allocated", head as u64 + nr));
    Some(head)
}

/// Drops a reference; frees the frame at zero. A page of a large folio freed alone splits the
/// folio first (what a partly unmapped folio's deferred split does).
pub fn put_page<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let mut st = cx.st();
    let p = &mut st.k.pages[pfn as usize];
    if p.kind == PageKind::Zero {
        return;
    }
    p.refs = p.refs.checked_sub(1).expect("put_page of a free page");
    if p.refs == 0 {
        if p.folio.is_some() {
            st.k.split_folio(pfn);
        }
        let p = &st.k.pages[pfn as usize];
        debug_assert!(p.swap.is_none(), "a page of the swap cache freed");
        if let PageKind::PageCache { file, index } = p.kind {
            // A migrated page's index already names its successor.
            let slot = &mut st.k.files[file as usize].pages[index as usize];
            if *slot == Some(pfn) {
                *slot = None;
            }
        }
        st.k.pages[pfn as usize] = Page::new(PageKind::Free, 0);
        st.o.set_live(pfn, false);
    }
}

/// Takes a reference.
pub fn get_page<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let mut st = cx.st();
    let p = &mut st.k.pages[pfn as usize];
    if p.kind != PageKind::Zero {
        p.refs += 1;
    }
}

/// Adds `(mm, vpn)` to the reverse map of `pfn`, which the zero page has none of
/// (`page_add_*_rmap` is skipped for a special PTE).
pub fn rmap_add<A: Arch>(cx: &Cx<A>, pfn: Pfn, mm: MmId, vpn: Vpn) {
    let mut st = cx.st();
    let p = &mut st.k.pages[pfn as usize];
    if p.kind != PageKind::Zero {
        p.rmap.push((mm, vpn));
    }
}

/// A sleeping lock (mmap_lock): waits, yielding, while another actor holds it. Preemption
/// stays enabled.
pub async fn mutex_lock<A: Arch>(cx: &Cx<A>, lock: usize) {
    let mut again = false;
    loop {
        {
            let mut st = cx.st();
            if st.k.locks[lock].is_none() {
                st.k.locks[lock] = Some(cx.me());
                return;
            }
        }
        cx.wait(again).await;
        again = true;
    }
}

/// Releases a sleeping lock.
pub fn mutex_unlock<A: Arch>(cx: &Cx<A>, lock: usize) {
    let mut st = cx.st();
    assert_eq!(
        st.k.locks[lock],
        Some(cx.me()),
        "mutex_unlock by a non-owner"
    );
    st.k.locks[lock] = None;
}

/// The address space of the acting thread, if it is a user thread.
pub fn my_mm<A: Arch>(cx: &Cx<A>) -> Option<MmId> {
    let st = cx.st();
    match st.sched.actor(cx.me()).kind {
        crate::sched::ActorKind::Thread { pid } => Some(st.k.procs[pid as usize]),
        _ => None,
    }
}

/// The `n`-th mapped user page of `mm` (modulo their number).
pub fn nth_user_page<A: Arch>(cx: &Cx<A>, mm: MmId, n: u8) -> Option<Vpn> {
    let st = cx.st();
    let m = &st.k.mms[mm as usize];
    let count = m.pages().count();
    (count > 0).then(|| m.pages().nth(n as usize % count).expect("in range"))
}

/// The lock a driver holds on its buffer `n` for the whole of an action: a driver never
/// touches a buffer while it has given it to the device, and two drivers do not share one.
pub fn buffer_lock(n: usize) -> usize {
    MMAP_LOCK_BASE + fork::MAX_MMS + n
}

/// Sleeping locks of the kernel's objects, after the driver buffers' (see [`object_lock`]).
pub mod locks {
    /// `module_mutex` (and `text_mutex`): loading and freeing kernel text.
    pub const TEXT_MUTEX: usize = 0;
    /// The first metadata buffer's lock (`xfs_buf_lock`); buffer `n` has `VMAP_BUF + n`.
    pub const VMAP_BUF: usize = 1;
    /// The first ring slot's lock (perf's `mmap_mutex`, the packet socket's `pg_vec_lock`,
    /// io_uring's `uring_lock`); slot `n` has `RING + n`.
    pub const RING: usize = VMAP_BUF + super::bio::VMAP_BUFS;
    /// The pipe's mutex (`pipe->mutex`, [`super::pipe`]).
    pub const PIPE: usize = RING + super::ring::ALL_RINGS;
    /// The AIO context's `completion_lock` ([`super::aio`]).
    pub const AIO_COMPLETION: usize = PIPE + 1;
    /// How many there are.
    pub const COUNT: usize = AIO_COMPLETION + 1;
}

/// The index in [`KernelState::locks`] of object lock `i` (one of [`locks`]).
pub fn object_lock<A: Arch>(cx: &Cx<A>, i: usize) -> usize {
    buffer_lock(cx.kernel().buffers.len()) + i
}

/// Takes driver buffer `n`'s lock: waits in process context; in interrupt context (which
/// cannot sleep) gives up if it is taken.
pub async fn lock_buffer<A: Arch>(cx: &Cx<A>, n: usize) -> bool {
    let irq = cx.st().sched.actor(cx.me()).kind == crate::sched::ActorKind::Irq;
    if irq {
        let mut st = cx.st();
        if st.k.locks[buffer_lock(n)].is_some() {
            return false;
        }
        st.k.locks[buffer_lock(n)] = Some(cx.me());
        return true;
    }
    mutex_lock(cx, buffer_lock(n)).await;
    true
}

/// The `n`-th driver buffer.
pub fn buffer<A: Arch>(cx: &Cx<A>, n: u8) -> Pfn {
    let st = cx.st();
    st.k.buffers[n as usize % st.k.buffers.len()]
}

/// A user virtual address: page `vpn`, byte `off` (modulo the page size).
pub fn uva<A: Arch>(cx: &Cx<A>, vpn: Vpn, off: u8) -> Va {
    let page = cx.page_size();
    vpn * page + off as u64 % page
}

/// Fields of user accesses and of paths on one byte of a user page.
const PAGE_OFF: &[Field] = &[Field::num("page"), Field::num("off")];
/// Fields of a driver touching one byte of its buffer.
const BUF_OFF: &[Field] = &[Field::num("buf"), Field::num("off")];
/// Fields of a streaming DMA transfer of a driver buffer.
const BUF_DIR: &[Field] = &[Field::num("buf"), Field::choice("dir", DMA_DIRS)];
/// Fields of `read()` and `write()` of one byte.
const FILE_IO: &[Field] = &[
    Field::num("file"),
    Field::num("index"),
    Field::num("off"),
    Field::num("page"),
];

/// Fields of `munmap()`.
const MUNMAP: &[Field] = &[Field::num("page"), Field::num("pages")];
/// Fields of `mmap()`.
const MMAP: &[Field] = &[
    Field::num("file"),
    Field::num("pgoff"),
    Field::num("at"),
    Field::flag("shared"),
    Field::flag("exec"),
    Field::flag("fixed"),
];
/// Fields of `UFFDIO_COPY`.
const UFFD_COPY: &[Field] = &[Field::num("dst"), Field::num("src")];
/// Fields of `UFFDIO_ZEROPAGE`.
const UFFD_ZEROPAGE: &[Field] = &[Field::num("dst")];
/// Fields of `mremap()`.
const MREMAP: &[Field] = &[Field::num("page"), Field::num("to")];
/// Fields of `mprotect()`.
const MPROTECT: &[Field] = &[
    Field::num("page"),
    Field::flag("write"),
    Field::flag("exec"),
];
/// Fields of a FUSE-like access.
const GUP: &[Field] = &[Field::num("page"), Field::num("off"), Field::flag("write")];
/// Fields of direct I/O.
const DIRECT_IO: &[Field] = &[Field::num("page"), Field::flag("to-device")];
/// Fields of a ptrace poke.
const POKE: &[Field] = &[Field::num("target"), Field::num("page"), Field::num("off")];
/// Fields of process_vm_readv/writev.
const PROCESS_VM: &[Field] = &[
    Field::num("target"),
    Field::num("page"),
    Field::num("off"),
    Field::flag("write"),
];
/// Fields of the cacheflush system call.
const CACHEFLUSH: &[Field] = &[Field::num("page")];
/// Fields of readdir.
const READDIR: &[Field] = &[Field::num("at"), Field::num("pages")];

/// Fields of block I/O on a metadata buffer.
const XFS_BUF_IO: &[Field] = &[
    Field::num("buf"),
    Field::num("at"),
    Field::num("pages"),
    Field::flag("write"),
    Field::num("off"),
];
/// Fields of `mmap()` of a ring buffer.
const RING_MMAP: &[Field] = &[
    Field::num("ring"),
    Field::num("pages"),
    Field::num("at"),
    Field::flag("write"),
];
/// Fields of a kernel access to a ring buffer.
const RING_AT: &[Field] = &[Field::num("ring"), Field::num("page"), Field::num("off")];
/// Fields of mapping the `PACKET_MMAP` ring.
const PACKET_MMAP: &[Field] = &[Field::num("pages"), Field::num("at")];
/// Fields of a packet received into or sent from a frame of the `PACKET_MMAP` ring.
const PACKET_FRAME: &[Field] = &[Field::num("frame")];
/// Fields of setting up and mapping the io_uring instance (and the AIO context).
const URING_SETUP: &[Field] = &[Field::num("at")];
/// Fields of an io_uring submission and its completion.
const URING_SUBMIT: &[Field] = &[Field::num("sqe"), Field::num("cqe")];
/// Fields of loading kernel text.
const TEXT_LOAD: &[Field] = &[Field::num("slot"), Field::num("at"), Field::num("off")];
/// Fields of running kernel text.
const TEXT_RUN: &[Field] = &[Field::num("slot"), Field::num("off")];
/// Fields of freeing kernel text.
const TEXT_FREE: &[Field] = &[Field::num("slot")];

/// The user's access to one byte of a page, with its faults.
fn access<A: Arch>(
    name: &'static str,
    access: Access,
    calls: &'static [&'static str],
    doc: &'static str,
) -> Path<A> {
    Path::new(
        PathInfo {
            name,
            fields: PAGE_OFF,
            runs: Runs::User,
            follows: "handle_mm_fault",
            calls,
            doc,
        },
        move |cx, a| async move {
            if let Some(mm) = my_mm(&cx) {
                fault::user_access(&cx, mm, a.num(0), a.num(1), access).await;
            }
        },
    )
}

/// A driver's path on its buffer `a.num(0)`, holding the buffer's lock throughout.
async fn on_buffer<A: Arch>(cx: &Cx<A>, buf: u8, what: BufferWork) {
    let n = buf as usize % cx.st().k.buffers.len();
    if !lock_buffer(cx, n).await {
        return;
    }
    let pfn = buffer(cx, buf);
    match what {
        BufferWork::Kmap { off, write } => kmap::kmap_access(cx, pfn, off, write).await,
        BufferWork::KmapAtomicWrite { off } => kmap::kmap_atomic_write(cx, pfn, off).await,
        BufferWork::Dma { dir } => dma::transfer(cx, pfn, dir).await,
        BufferWork::DmaSync { dir } => dma::sync_cycle(cx, pfn, dir).await,
    }
    mutex_unlock(cx, buffer_lock(n));
}

/// What a driver does with its buffer.
#[derive(Clone, Copy, Debug)]
enum BufferWork {
    Kmap { off: u8, write: bool },
    KmapAtomicWrite { off: u8 },
    Dma { dir: DmaDir },
    DmaSync { dir: DmaDir },
}

/// A path of a user process, started with its address space.
fn user<A: Arch, F, Fut>(info: PathInfo, f: F) -> Path<A>
where
    F: Fn(Cx<A>, MmId, Args) -> Fut + 'static,
    Fut: std::future::Future<Output = ()> + 'static,
{
    Path::new(info, move |cx, a| {
        let run = my_mm(&cx).map(|mm| f(cx, mm, a));
        async move {
            if let Some(run) = run {
                run.await;
            }
        }
    })
}

/// The shipped kernel paths, in the order their indices have in actions.
pub fn paths<A: Arch>() -> Paths<A> {
    Paths::new(vec![
        access("load", Access::Read, &["clear_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"], "a user load of one byte"),
        access("store", Access::Write, &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"], "a user store of a fresh value to one byte"),
        access("fetch", Access::Exec, &["clear_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"], "a user instruction fetch of one byte"),
        user(
            PathInfo {
                name: "fork",
                fields: &[],
                runs: Runs::User,
                follows: "dup_mmap",
                calls: &["flush_cache_dup_mm", "flush_cache_mm", "flush_tlb_mm"],
                doc: "fork(): the address space copied into a new process with one thread",
            },
            |cx, mm, _| async move { fork::fork(&cx, mm).await },
        ),
        user(
            PathInfo {
                name: "exit",
                fields: &[],
                runs: Runs::User,
                follows: "exit_mmap",
                calls: &["flush_cache_mm", "flush_tlb_mm"],
                doc: "exit() of the whole process, once its other threads are idle",
            },
            |cx, mm, _| async move { fork::exit(&cx, mm).await },
        ),
        user(
            PathInfo {
                name: "munmap",
                fields: MUNMAP,
                runs: Runs::User,
                follows: "do_vmi_munmap",
                calls: &["flush_cache_range", "flush_tlb_range"],
                doc: "munmap() of 1 to 4 pages from a mapped page, within its VMA",
            },
            |cx, mm, a| async move { fork::munmap(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "mmap",
                fields: MMAP,
                runs: Runs::User,
                follows: "do_mmap",
                calls: &[],
                doc: "mmap() of a file, at a colour the arch allows (arch_get_unmapped_area)",
            },
            |cx, mm, a| async move {
                let (shared, exec, fixed) = (a.flag(3), a.flag(4), a.flag(5));
                fork::mmap(&cx, mm, a.num(0), a.num(1), a.num(2), shared, exec, fixed).await
            },
        ),
        user(
            PathInfo {
                name: "mprotect",
                fields: MPROTECT,
                runs: Runs::User,
                follows: "mprotect_fixup",
                calls: &["flush_cache_range", "flush_tlb_page", "set_pte_at"],
                doc: "mprotect() of one mapped page",
            },
            |cx, mm, a| async move { fork::mprotect(&cx, mm, a.num(0), a.flag(1), a.flag(2)).await },
        ),
        user(
            PathInfo {
                name: "read",
                fields: FILE_IO,
                runs: Runs::User,
                follows: "filemap_read",
                calls: &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "read() of one byte of a file page into a user page",
            },
            |cx, mm, a| async move {
                file::read(&cx, mm, a.num(0), a.num(1), a.num(2), a.num(3)).await
            },
        ),
        user(
            PathInfo {
                name: "write",
                fields: FILE_IO,
                runs: Runs::User,
                follows: "generic_perform_write",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "write() of one byte of a user page into a file page",
            },
            |cx, mm, a| async move {
                file::write(&cx, mm, a.num(0), a.num(1), a.num(2), a.num(3)).await
            },
        ),
        user(
            PathInfo {
                name: "gup",
                fields: GUP,
                runs: Runs::User,
                follows: "get_user_pages",
                calls: &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "a FUSE-like request: pins a user page and reads or writes a byte through kmap",
            },
            |cx, mm, a| async move { gup::fuse_access(&cx, mm, a.num(0), a.num(1), a.flag(2)).await },
        ),
        user(
            PathInfo {
                name: "direct-io",
                fields: DIRECT_IO,
                runs: Runs::User,
                follows: "__blockdev_direct_IO",
                calls: &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "direct I/O: pins a user page and DMAs to or from it",
            },
            |cx, mm, a| async move { gup::direct_io(&cx, mm, a.num(0), a.flag(1)).await },
        ),
        user(
            PathInfo {
                name: "ptrace-poke",
                fields: POKE,
                runs: Runs::User,
                follows: "access_process_vm",
                calls: &["clear_user_highpage", "copy_to_user_page", "copy_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_icache_range", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "ptrace(PTRACE_POKETEXT) of one byte into another thread's address space",
            },
            |cx, _, a| async move { gup::ptrace_poke(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        user(
            PathInfo {
                name: "cacheflush",
                fields: CACHEFLUSH,
                runs: Runs::User,
                follows: "sys_cacheflush",
                calls: &["flush_icache_user_range"],
                doc: "the cacheflush system call over one user page, after writing code",
            },
            |cx, mm, a| async move { fault::cacheflush(&cx, mm, a.num(0)).await },
        ),
        Path::new(
            PathInfo {
                name: "kmap-write",
                fields: BUF_OFF,
                runs: Runs::Kernel,
                follows: "kmap",
                calls: &["flush_cache_kmaps", "flush_tlb_kernel_range", "kunmap_flush_on_unmap"],
                doc: "a driver stores one byte of its buffer through kmap",
            },
            |cx, a| async move {
                let work = BufferWork::Kmap { off: a.num(1), write: true };
                on_buffer(&cx, a.num(0), work).await
            },
        ),
        Path::new(
            PathInfo {
                name: "kmap-read",
                fields: BUF_OFF,
                runs: Runs::Kernel,
                follows: "kmap",
                calls: &["flush_cache_kmaps", "flush_tlb_kernel_range", "kunmap_flush_on_unmap"],
                doc: "a driver loads one byte of its buffer through kmap",
            },
            |cx, a| async move {
                let work = BufferWork::Kmap { off: a.num(1), write: false };
                on_buffer(&cx, a.num(0), work).await
            },
        ),
        Path::new(
            PathInfo {
                name: "kmap-atomic-write",
                fields: BUF_OFF,
                runs: Runs::Atomic,
                follows: "kmap_atomic",
                calls: &["kunmap_atomic_flush", "kunmap_flush_on_unmap"],
                doc: "a driver stores one byte of its buffer through kmap_atomic",
            },
            |cx, a| async move {
                let work = BufferWork::KmapAtomicWrite { off: a.num(1) };
                on_buffer(&cx, a.num(0), work).await
            },
        ),
        Path::new(
            PathInfo {
                name: "readdir",
                fields: READDIR,
                runs: Runs::Kernel,
                follows: "nfs_readdir_xdr_to_array",
                calls: &["flush_cache_vmap", "flush_cache_vunmap", "flush_tlb_kernel_range", "kunmap_flush_on_unmap"],
                doc: "an NFS-readdir-like path: replies stored through kmap, decoded through vm_map_ram or kmap",
            },
            |cx, a| async move { vmap::readdir(&cx, a.num(0), a.num(1)).await },
        ),
        Path::new(
            PathInfo {
                name: "dma",
                fields: BUF_DIR,
                runs: Runs::Atomic,
                follows: "dma_map_page",
                calls: &["flush_cache_kmaps", "flush_tlb_kernel_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "a streaming DMA transfer of a driver buffer: map, device access, unmap, CPU access",
            },
            |cx, a| async move {
                let work = BufferWork::Dma { dir: a.dma_dir(1) };
                on_buffer(&cx, a.num(0), work).await
            },
        ),
        Path::new(
            PathInfo {
                name: "dma-sync",
                fields: BUF_DIR,
                runs: Runs::Atomic,
                follows: "dma_sync_single_for_cpu",
                calls: &["flush_cache_kmaps", "flush_tlb_kernel_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "a DMA buffer handed back and forth with dma_sync_single_for_cpu and _for_device",
            },
            |cx, a| async move {
                let work = BufferWork::DmaSync { dir: a.dma_dir(1) };
                on_buffer(&cx, a.num(0), work).await
            },
        ),
        user(
            PathInfo {
                name: "ptrace-peek",
                fields: POKE,
                runs: Runs::User,
                follows: "access_process_vm",
                calls: &["clear_user_highpage", "copy_from_user_page", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "ptrace(PTRACE_PEEKDATA) or a /proc/pid/mem read of one byte of another process",
            },
            |cx, _, a| async move { gup::ptrace_peek(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        user(
            PathInfo {
                name: "process-vm",
                fields: PROCESS_VM,
                runs: Runs::User,
                follows: "process_vm_rw_core",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "process_vm_readv() or process_vm_writev() of one byte of another process",
            },
            |cx, _, a| async move {
                gup::process_vm_rw(&cx, a.num(0), a.num(1), a.num(2), a.flag(3)).await
            },
        ),
        Path::new(
            PathInfo {
                name: "xfs-buf-io",
                fields: XFS_BUF_IO,
                runs: Runs::Kernel,
                follows: "xfs_buf_submit",
                calls: &["flush_cache_vmap", "flush_kernel_vmap_range", "invalidate_kernel_vmap_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "block I/O on a metadata buffer of 1 or 2 pages reached through one vmalloc alias (xfs_buf, dm-io): a write of what a transaction stored through it, or a read the verifier then reads through it",
            },
            |cx, a| async move {
                bio::xfs_buf_io(&cx, a.num(0), a.num(1), a.num(2), a.flag(3), a.num(4)).await
            },
        ),
        user(
            PathInfo {
                name: "ring-mmap",
                fields: RING_MMAP,
                runs: Runs::User,
                follows: "perf_mmap",
                calls: &["flush_cache_vmap", "flush_dcache_folio", "flush_dcache_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at"],
                doc: "mmap() of a vmalloc_user ring buffer of 1 or 2 pages (perf, vb2-vmalloc): allocated on first use, mapped with remap_vmalloc_range",
            },
            |cx, mm, a| async move {
                ring::ring_mmap(&cx, mm, a.num(0), a.num(1), a.num(2), a.flag(3)).await
            },
        ),
        Path::new(
            PathInfo {
                name: "ring-output",
                fields: RING_AT,
                runs: Runs::Atomic,
                follows: "perf_output_copy",
                calls: &[],
                doc: "the kernel writes a record into a ring buffer through its vmalloc alias, for the user to read through its mapping",
            },
            |cx, a| async move { ring::ring_output(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        Path::new(
            PathInfo {
                name: "ring-read",
                fields: RING_AT,
                runs: Runs::Atomic,
                follows: "perf_output_begin",
                calls: &[],
                doc: "the kernel reads what the user wrote into a ring buffer (perf's data_tail, a vb2 output frame) through its vmalloc alias",
            },
            |cx, a| async move { ring::ring_read(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        Path::new(
            PathInfo {
                name: "module-load",
                fields: TEXT_LOAD,
                runs: Runs::Kernel,
                follows: "load_module",
                calls: &["flush_cache_vmap", "flush_icache_range", "flush_tlb_kernel_range"],
                doc: "a module loaded into executable vmalloc memory: text copied and relocated through that alias, flush_module_icache, set_memory_rox, its init run",
            },
            |cx, a| async move { text::load_module(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        Path::new(
            PathInfo {
                name: "bpf-jit",
                fields: TEXT_LOAD,
                runs: Runs::Kernel,
                follows: "bpf_int_jit_compile",
                calls: &["flush_cache_vmap", "flush_icache_range", "flush_tlb_kernel_range"],
                doc: "a BPF program compiled into executable vmalloc memory (ARM's and MIPS's JITs): image emitted through that alias, flush_icache_range, bpf_jit_binary_lock_ro",
            },
            |cx, a| async move { text::bpf_jit(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        Path::new(
            PathInfo {
                name: "text-run",
                fields: TEXT_RUN,
                runs: Runs::Atomic,
                follows: "bpf_prog_run",
                calls: &[],
                doc: "the kernel executes loaded module or JIT text, on any CPU, from any context",
            },
            |cx, a| async move { text::run_text(&cx, a.num(0), a.num(1)).await },
        ),
        Path::new(
            PathInfo {
                name: "text-free",
                fields: TEXT_FREE,
                runs: Runs::Kernel,
                follows: "execmem_free",
                calls: &["flush_cache_vunmap", "flush_tlb_kernel_range"],
                doc: "loaded module or JIT text freed (free_module, bpf_jit_free): its vmalloc memory unmapped and given back",
            },
            |cx, a| async move { text::free_text(&cx, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "uprobe-hit",
                fields: &[],
                runs: Runs::User,
                follows: "xol_get_insn_slot",
                calls: &["flush_dcache_page", "flush_icache_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "update_mmu_cache", "uprobe_copy_ixol"],
                doc: "a thread hits a uprobe: the probed instruction copied into an out-of-line slot (arch_uprobe_copy_ixol), which the thread then executes",
            },
            |cx, mm, _| async move { text::uprobe_hit(&cx, mm).await },
        ),
        user(
            PathInfo {
                name: "execve",
                fields: PAGE_OFF,
                runs: Runs::User,
                follows: "copy_strings",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_cache_mm", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_mm", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "execve(): argument strings copied from the old address space into the new one's stack page through kmap (copy_strings), then the new address space replaces the old",
            },
            |cx, mm, a| async move { exec::execve(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "vfork",
                fields: &[],
                runs: Runs::User,
                follows: "kernel_clone",
                calls: &["flush_dcache_page", "flush_icache_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "update_mmu_cache", "uprobe_copy_ixol"],
                doc: "vfork() (posix_spawn): a child process sharing the address space, the caller waiting until it execs or exits",
            },
            |cx, mm, _| async move { fork::vfork(&cx, mm).await },
        ),
        Path::new(
            PathInfo {
                name: "migrate",
                fields: PAGE,
                runs: Runs::Kernel,
                follows: "migrate_pages",
                calls: &["flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "update_mmu_cache"],
                doc: "compaction migrates the folio of a movable page (anonymous or page cache, mapped or not) to new frames",
            },
            |cx, a| async move { migrate::migrate_pages(&cx, a.num(0)).await },
        ),
        Path::new(
            PathInfo {
                name: "ksm-merge",
                fields: KSM_MERGE,
                runs: Runs::Kernel,
                follows: "ksm_do_scan",
                calls: &["copy_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_page", "flush_dcache_folio", "flush_dcache_page", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "update_mmu_cache"],
                doc: "ksmd merges two mapped anonymous pages: the first becomes a KSM page mapped read-only in place of the second",
            },
            |cx, a| async move { ksm::ksm_do_scan(&cx, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "ksm-unmerge",
                fields: PAGE,
                runs: Runs::User,
                follows: "unmerge_ksm_pages",
                calls: &["copy_user_highpage", "flush_cache_page", "flush_tlb_page", "set_pte_at", "update_mmu_cache"],
                doc: "madvise(MADV_UNMERGEABLE) of one page: a KSM page mapped there is replaced by a copy of its own",
            },
            |cx, mm, a| async move { ksm::unmerge_ksm_pages(&cx, mm, a.num(0)).await },
        ),
        Path::new(
            PathInfo {
                name: "swap-out",
                fields: PAGE,
                runs: Runs::Kernel,
                follows: "shrink_folio_list",
                calls: &["flush_cache_page", "flush_tlb_page", "kunmap_atomic_flush", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "reclaim writes an anonymous page out to swap: unmapped everywhere, written by the device, freed",
            },
            |cx, a| async move { swap::shrink_folio_list(&cx, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "swap-in",
                fields: PAGE,
                runs: Runs::User,
                follows: "swapin_walk_pmd_entry",
                calls: &["sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "madvise(MADV_WILLNEED) of a swapped-out page: the device reads it back into the swap cache, for the fault (do_swap_page) to map",
            },
            |cx, mm, a| async move { swap::madvise_willneed(&cx, mm, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "readahead",
                fields: READAHEAD,
                runs: Runs::User,
                follows: "page_cache_ra_order",
                calls: &["flush_cache_kmaps", "flush_dcache_folio", "flush_tlb_kernel_range", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "readahead() of a file page: a large page-cache folio (a single page where the kernel has no large folios) read from disk, then flushed whole",
            },
            |cx, _, a| async move {
                let nr = 2 << a.choice(2, FOLIO_PAGES.len());
                folio::page_cache_ra_order(&cx, a.num(0), a.num(1), nr).await
            },
        ),
        user(
            PathInfo {
                name: "fault-around",
                fields: PAGE_OFF,
                runs: Runs::User,
                follows: "do_fault_around",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_dcache_page", "flush_icache_page", "flush_icache_pages", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "set_ptes", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache", "update_mmu_cache_range"],
                doc: "a user load whose read fault of a file page first maps the cached pages around it (filemap_map_pages)",
            },
            |cx, mm, a| async move {
                let opts = fault::FaultOpts { around: true, ..fault::FaultOpts::default() };
                fault::user_access_with(&cx, mm, a.num(0), a.num(1), Access::Read, opts).await
            },
        ),
        user(
            PathInfo {
                name: "thp-fault",
                fields: LARGE_ANON,
                runs: Runs::User,
                follows: "alloc_anon_folio",
                calls: &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "set_ptes", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache", "update_mmu_cache_range"],
                doc: "a user store whose fault maps a large anonymous folio (a single page where the kernel has no large folios), zeroed a subpage at a time at each subpage's address (folio_zero_user)",
            },
            |cx, mm, a| async move {
                let nr = 2 << a.choice(2, FOLIO_PAGES.len());
                let opts = fault::FaultOpts { large: Some(nr), ..fault::FaultOpts::default() };
                fault::user_access_with(&cx, mm, a.num(0), a.num(1), Access::Write, opts).await
            },
        ),
        user(
            PathInfo {
                name: "huge-cow",
                fields: PAGE_OFF,
                runs: Runs::User,
                follows: "hugetlb_wp",
                calls: &["clear_user_highpage", "copy_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_cache_page", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "flush_tlb_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "set_ptes", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "a user store whose write-protect fault on a large anonymous folio shared copy-on-write copies it whole, a subpage at a time at each subpage's address (copy_user_large_folio)",
            },
            |cx, mm, a| async move {
                let opts = fault::FaultOpts { huge_cow: true, ..fault::FaultOpts::default() };
                fault::user_access_with(&cx, mm, a.num(0), a.num(1), Access::Write, opts).await
            },
        ),
        user(
            PathInfo {
                name: "mremap",
                fields: MREMAP,
                runs: Runs::User,
                follows: "move_vma",
                calls: &["flush_cache_range", "flush_tlb_range", "kunmap_flush_on_unmap", "set_pte_at"],
                doc: "mremap() of one mapped page to another user address (and colour, for a private page)",
            },
            |cx, mm, a| async move { fork::mremap(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "uffd-copy",
                fields: UFFD_COPY,
                runs: Runs::User,
                follows: "mfill_atomic_copy",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "ioctl(UFFDIO_COPY) of one of the caller's pages into a missing anonymous page, copied through a kernel mapping of the new page",
            },
            |cx, mm, a| async move { uffd::copy(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "uffd-zeropage",
                fields: UFFD_ZEROPAGE,
                runs: Runs::User,
                follows: "mfill_atomic_zeropage",
                calls: &["set_pte_at", "update_mmu_cache"],
                doc: "ioctl(UFFDIO_ZEROPAGE) of a missing anonymous page of the caller: the zero page mapped read-only in its place",
            },
            |cx, mm, a| async move { uffd::zeropage(&cx, mm, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "packet-mmap",
                fields: PACKET_MMAP,
                runs: Runs::User,
                follows: "packet_mmap",
                calls: &["flush_dcache_folio", "flush_dcache_page", "kunmap_flush_on_unmap", "set_pte_at"],
                doc: "setsockopt(PACKET_RX_RING) and mmap() of a packet socket: a ring of 1 or 2 zeroed pages allocated on first use, each inserted into a shared mapping",
            },
            |cx, mm, a| async move { packet::packet_mmap(&cx, mm, a.num(0), a.num(1)).await },
        ),
        Path::new(
            PathInfo {
                name: "packet-rcv",
                fields: PACKET_FRAME,
                runs: Runs::Atomic,
                follows: "tpacket_rcv",
                calls: &["flush_dcache_folio", "flush_dcache_page", "kunmap_flush_on_unmap"],
                doc: "a packet received into a frame of the PACKET_MMAP ring: status read, header and data stored through the linear map, flush_dcache_page, status handed to the user",
            },
            |cx, a| async move { packet::tpacket_rcv(&cx, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "packet-snd",
                fields: PACKET_FRAME,
                runs: Runs::User,
                follows: "tpacket_snd",
                calls: &["flush_dcache_folio", "flush_dcache_page", "kunmap_flush_on_unmap"],
                doc: "sendmsg() of a frame the user filled in the PACKET_MMAP ring: status read, data page flushed and read through the linear map, frame handed back",
            },
            |cx, _, a| async move { packet::tpacket_snd(&cx, a.num(0)).await },
        ),
        user(
            PathInfo {
                name: "uring-setup",
                fields: URING_SETUP,
                runs: Runs::User,
                follows: "io_uring_setup",
                calls: &["flush_dcache_folio", "flush_dcache_page", "kunmap_flush_on_unmap", "set_pte_at"],
                doc: "io_uring_setup() and mmap() of its SQ/CQ ring region and SQE array, allocated zeroed on first use and placed by io_uring_get_unmapped_area",
            },
            |cx, mm, a| async move { uring::setup(&cx, mm, a.num(0)).await },
        ),
        Path::new(
            PathInfo {
                name: "uring-submit",
                fields: URING_SUBMIT,
                runs: Runs::Kernel,
                follows: "io_submit_sqes",
                calls: &[],
                doc: "io_uring_enter() or the SQPOLL thread: an SQE the user wrote read, its CQE written, through the rings' kernel address with no flush",
            },
            |cx, a| async move { uring::submit(&cx, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "aio-setup",
                fields: URING_SETUP,
                runs: Runs::User,
                follows: "io_setup",
                calls: &["flush_dcache_folio", "flush_dcache_page", "kunmap_flush_on_unmap"],
                doc: "io_setup(): the AIO ring's zeroed page-cache pages mapped shared, its header written through the linear map and flushed, then its id stored with no flush",
            },
            |cx, mm, a| async move { aio::io_setup(&cx, mm, a.num(0)).await },
        ),
        Path::new(
            PathInfo {
                name: "aio-complete",
                fields: &[],
                runs: Runs::Atomic,
                follows: "aio_complete",
                calls: &["flush_dcache_folio", "flush_dcache_page"],
                doc: "a request's completion: its event and the ring's tail written through the linear map, each page flushed after, the head read with no flush before",
            },
            |cx, _| async move { aio::aio_complete(&cx).await },
        ),
        user(
            PathInfo {
                name: "aio-getevents",
                fields: &[],
                runs: Runs::User,
                follows: "io_getevents",
                calls: &["flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "kunmap_flush_on_unmap", "set_pte_at", "update_mmu_cache"],
                doc: "io_getevents(): the ring's id read through the caller's mapping, head, tail and events read through the linear map with no flush before, the new head written and flushed",
            },
            |cx, mm, _| async move { aio::io_getevents(&cx, mm).await },
        ),
        user(
            PathInfo {
                name: "pipe-write",
                fields: PIPE_USER,
                runs: Runs::User,
                follows: "pipe_write",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_cache_kmaps", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "write() of one byte of a user page into the pipe: a new pipe page takes it through kmap_local_page",
            },
            |cx, mm, a| async move { pipe::pipe_write(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "vmsplice",
                fields: PIPE_USER,
                runs: Runs::User,
                follows: "vmsplice_to_pipe",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_anon_page", "flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_icache_page", "flush_tlb_kernel_range", "flush_tlb_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "vmsplice() of one byte of a user page into the pipe: get_user_pages (flush_anon_page, flush_dcache_page) and a buffer referring to the page",
            },
            |cx, mm, a| async move { pipe::vmsplice(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "splice-read",
                fields: PIPE_FILE,
                runs: Runs::User,
                follows: "filemap_splice_read",
                calls: &["flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_tlb_kernel_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "splice() of one byte of a file page into the pipe: flush_dcache_folio if the file is mapped shared, and a buffer referring to the page-cache page",
            },
            |cx, _, a| async move { pipe::splice_read(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
        user(
            PathInfo {
                name: "pipe-read",
                fields: PIPE_USER,
                runs: Runs::User,
                follows: "pipe_read",
                calls: &["clear_user_highpage", "copy_user_page_done", "flush_dcache_page", "flush_icache_page", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "set_pte_at", "sync_dma_for_cpu", "sync_dma_for_device", "update_mmu_cache"],
                doc: "read() of the pipe's oldest byte into a user page: copy_page_to_iter through kmap_local_page of the buffer's page, no flush",
            },
            |cx, mm, a| async move { pipe::pipe_read(&cx, mm, a.num(0), a.num(1)).await },
        ),
        user(
            PathInfo {
                name: "splice-write",
                fields: PIPE_FILE,
                runs: Runs::User,
                follows: "iter_file_splice_write",
                calls: &["flush_cache_kmaps", "flush_dcache_folio", "flush_dcache_page", "flush_tlb_kernel_range", "kunmap_atomic_flush", "kunmap_flush_on_unmap", "sync_dma_for_cpu", "sync_dma_for_device"],
                doc: "splice() of the pipe's oldest byte into a file page: read through a kernel mapping of the buffer's page, written into the page cache as write() writes",
            },
            |cx, _, a| async move { pipe::splice_write(&cx, a.num(0), a.num(1), a.num(2)).await },
        ),
    ])
}

/// Fields of a pipe path on one byte of a user page.
const PIPE_USER: &[Field] = &[Field::num("page"), Field::num("off")];
/// Fields of a splice between the pipe and one byte of a file page.
const PIPE_FILE: &[Field] = &[Field::num("file"), Field::num("index"), Field::num("off")];

/// Fields of a path on one user page, or on one page it picks.
const PAGE: &[Field] = &[Field::num("page")];
/// Fields of ksmd's scan of two pages.
const KSM_MERGE: &[Field] = &[Field::num("page"), Field::num("with")];
/// The sizes of a large folio, in pages, as a choice field names them.
const FOLIO_PAGES: &[&str] = &["2", "4"];
/// Fields of `readahead()`.
const READAHEAD: &[Field] = &[
    Field::num("file"),
    Field::num("index"),
    Field::choice("pages", FOLIO_PAGES),
];
/// Fields of a fault mapping a large anonymous folio.
const LARGE_ANON: &[Field] = &[
    Field::num("page"),
    Field::num("off"),
    Field::choice("pages", FOLIO_PAGES),
];

/// The page-table entry a user mapping of `pfn` in `vma` gets.
pub fn user_pte(vma: &Vma, pfn: Pfn, writable: bool) -> crate::machine::Pte {
    crate::machine::Pte::new(pfn, writable && vma.write, vma.exec)
}

/// The page number of a kernel address.
pub fn kvpn<A: Arch>(cx: &Cx<A>, va: Va) -> Vpn {
    va / cx.page_size()
}

/// First vmalloc page.
pub const VMALLOC_BASE: Vpn = layout::VMALLOC;
