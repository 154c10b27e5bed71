//! The flush API: the public [`Arch`] trait and the shipped implementations.
//!
//! Kernel paths call the Linux flush APIs by their names; an `Arch` implements them from the
//! cache primitives [`Cx`] offers (clean, invalidate or flush a line by virtual address, locally
//! or on every CPU; by set and way; whole caches; I-cache invalidation; TLB invalidation; colour
//! windows). A method may take several steps: `cx.step().await` inside a loop makes it
//! preemptible there, as a per-line loop in the real kernel is.
//!
//! An implementation builds on another ([`Arch::Base`]) and overrides what its cache needs; the
//! root of every chain is [`null::Null`], correct on fully coherent hardware (PIPT D-cache,
//! snooping I-cache, coherent DMA). The generic bodies shared by several implementations live in
//! [`generic`]; every helper a shipped implementation uses is public, so an implementation out of
//! tree is built from the same pieces. An implementation must not know about particular races;
//! it implements contracts.
//!
//! Contracts, in short (see `Documentation/core-api/cachetlb.rst`):
//! - `flush_cache_mm`, `flush_cache_dup_mm`, `flush_cache_range`, `flush_cache_page`: on return
//!   no cache line of those user addresses holds data newer than memory or that could be read
//!   after the translation changes.
//! - `flush_dcache_page`: after the kernel wrote a page-cache page through its kernel alias, or
//!   before it reads one that user mappings may have written; may be deferred with `PG_arch_1`.
//! - `flush_anon_page`: before the kernel accesses an anonymous page pinned by GUP, make the
//!   user alias's data visible to the kernel alias.
//! - `flush_kernel_vmap_range` / `invalidate_kernel_vmap_range`: write back / drop the lines of
//!   a vmap alias around I/O.
//! - `flush_cache_vmap` / `flush_cache_vunmap`: after mapping / before unmapping a vmalloc range.
//! - `flush_cache_kmaps`: before pkmap slots are recycled.
//! - `flush_icache_range`, `flush_icache_user_range`: make the I-side see what the D-side holds
//!   for that range, on every CPU.
//! - `set_pte_at`: publish a user PTE; anything the new mapping needs must be done before the
//!   write, since other CPUs see it at once. `update_mmu_cache` runs after publication.
//! - `copy_user_highpage`, `clear_user_highpage`: the destination ends up holding what the user
//!   last stored (copy) or fresh zeros (clear) as seen through the user address `va`, with no
//!   dirty line that would shadow it there.
//! - `copy_to_user_page`, `copy_from_user_page`: a ptrace write into (read from) another
//!   address space, coherent on both sides.
//! - `flush_dcache_folio`, `set_ptes`, `update_mmu_cache_range`, `flush_icache_pages`: the same
//!   for several pages at once (large folios, fault-around).
//! - `uprobe_copy_ixol`: an out-of-line instruction slot written for a task to execute: on
//!   return, any CPU running the task fetches the new instructions.
//! - `arch_swap_restore`: what the arch keeps beside a swapped-out page, restored before the
//!   page is mapped again.
//! - `sync_dma_for_device` / `sync_dma_for_cpu`: the cache maintenance of a streaming DMA
//!   mapping of a physical range for a non-coherent device, when ownership passes to the device
//!   and back (`arch_sync_dma_for_device`, `arch_sync_dma_for_cpu`).
//! - `flush_tlb_*`: no stale translation remains on any CPU that may use it.

pub mod arm;
pub mod arm64;
pub mod generic;
pub mod null;
pub mod parisc;
pub mod r4k;
pub mod recording;
pub mod riscv;
pub mod sh4;
pub mod v6;
pub mod v7;
pub mod vivt;

use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::machine::Pte;
use crate::op::DmaDir;
use crate::world::Cx;
use std::future::Future;

/// Which way `PG_arch_1` reads.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Arch1Polarity {
    /// Set means the kernel alias may be dirty (sparc64, MIPS, PA-RISC): a fresh page is clean.
    DcacheDirty,
    /// Set means known clean (ARM since 2.6.37): a fresh page is presumed dirty.
    DcacheClean,
}

/// The Linux cache-flush API of one architecture. See the module documentation for contracts.
///
/// # Building on another implementation
///
/// Every method an implementation does not write delegates to [`Arch::base`], so an
/// implementation names what it builds on and overrides only what differs: the shipped ARMv6
/// with one `flush_dcache_page` of your own is
///
/// ```
/// use flushfuzz::addr::Pfn;
/// use flushfuzz::arch::{v6::ArmV6, Arch};
/// use flushfuzz::world::Cx;
///
/// #[derive(Debug, Default)]
/// struct MyV6(ArmV6);
///
/// impl Arch for MyV6 {
///     type Base = ArmV6;
///     fn base(&self) -> &ArmV6 { &self.0 }
///     fn name(&self) -> &'static str { "my-v6" }
///     async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
///         // ... your version; `self.base().flush_dcache_page(cx, pfn).await` runs ARMv6's.
///     }
/// }
/// ```
///
/// Methods are generic over `O`, the outermost implementation of the run, and get a
/// [`Cx<O>`]: a shipped method calls the other APIs through `cx.arch()`, so it reaches your
/// overrides, as a C implementation calling its own exported functions would. The coherent
/// [`null::Null`] is the root: it builds on nothing and implements every method.
pub trait Arch: Sized + 'static {
    /// The implementation this one builds on.
    type Base: Arch;

    /// The implementation this one builds on, to which every method not overridden delegates.
    fn base(&self) -> &Self::Base;

    /// A short name.
    fn name(&self) -> &'static str {
        self.base().name()
    }

    /// The CPU switches to user address space `next` (`switch_mm`). Must not yield.
    fn switch_mm<O: Arch>(
        &self,
        cx: &Cx<O>,
        prev: Option<MmId>,
        next: MmId,
    ) -> impl Future<Output = ()> {
        self.base().switch_mm(cx, prev, next)
    }

    /// Before all user mappings of `mm` go (exit, exec).
    fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) -> impl Future<Output = ()> {
        self.base().flush_cache_mm(cx, mm)
    }

    /// At fork, before the parent's page tables are copied and write-protected.
    fn flush_cache_dup_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) -> impl Future<Output = ()> {
        self.base().flush_cache_dup_mm(cx, mm)
    }

    /// Before the translations of user pages `[start, end)` of `mm` change.
    fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) -> impl Future<Output = ()> {
        self.base().flush_cache_range(cx, mm, start, end, exec)
    }

    /// Before the translation of user page `vpn` of `mm` (mapping `pfn`) changes.
    fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) -> impl Future<Output = ()> {
        self.base().flush_cache_page(cx, mm, vpn, pfn, exec)
    }

    /// After a kernel write to a page-cache page, or before a kernel read of one.
    fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) -> impl Future<Output = ()> {
        self.base().flush_dcache_page(cx, pfn)
    }

    /// Before the kernel accesses anonymous page `pfn` that `mm` maps at `vpn` (GUP).
    fn flush_anon_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().flush_anon_page(cx, mm, pfn, vpn)
    }

    /// Before I/O on pages the kernel wrote through vmap range `[va, va + len)`.
    fn flush_kernel_vmap_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        va: Va,
        len: u64,
    ) -> impl Future<Output = ()> {
        self.base().flush_kernel_vmap_range(cx, va, len)
    }

    /// After I/O into pages the kernel will read through vmap range `[va, va + len)`.
    fn invalidate_kernel_vmap_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        va: Va,
        len: u64,
    ) -> impl Future<Output = ()> {
        self.base().invalidate_kernel_vmap_range(cx, va, len)
    }

    /// After kernel page-table entries for `[start, end)` of vmalloc space were installed.
    fn flush_cache_vmap<O: Arch>(
        &self,
        cx: &Cx<O>,
        start: Va,
        end: Va,
    ) -> impl Future<Output = ()> {
        self.base().flush_cache_vmap(cx, start, end)
    }

    /// Before kernel page-table entries for `[start, end)` of vmalloc space are removed.
    fn flush_cache_vunmap<O: Arch>(
        &self,
        cx: &Cx<O>,
        start: Va,
        end: Va,
    ) -> impl Future<Output = ()> {
        self.base().flush_cache_vunmap(cx, start, end)
    }

    /// Before unused pkmap slots are unmapped for recycling.
    fn flush_cache_kmaps<O: Arch>(&self, cx: &Cx<O>) -> impl Future<Output = ()> {
        self.base().flush_cache_kmaps(cx)
    }

    /// After the kernel wrote instructions to `[start, end)` of kernel space.
    fn flush_icache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        start: Va,
        end: Va,
    ) -> impl Future<Output = ()> {
        self.base().flush_icache_range(cx, start, end)
    }

    /// The cacheflush system call over user range `[start, end)` of the current address space.
    fn flush_icache_user_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        start: Va,
        end: Va,
    ) -> impl Future<Output = ()> {
        self.base().flush_icache_user_range(cx, start, end)
    }

    /// In the fault path, right before the PTE for a file page is built.
    fn flush_icache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
    ) -> impl Future<Output = ()> {
        self.base().flush_icache_page(cx, mm, pfn)
    }

    /// After a kernel write to the folio of `nr` pages from `pfn` (a page-cache folio), or before
    /// a kernel read of it (`flush_dcache_folio`). The generic one flushes each page.
    fn flush_dcache_folio<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        nr: u64,
    ) -> impl Future<Output = ()> {
        self.base().flush_dcache_folio(cx, pfn, nr)
    }

    /// In the fault path, right before the PTEs for `nr` pages of a file folio from `pfn` are
    /// built (`flush_icache_pages`). The generic one is `flush_icache_page` of each.
    fn flush_icache_pages<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
        nr: u64,
    ) -> impl Future<Output = ()> {
        self.base().flush_icache_pages(cx, mm, pfn, nr)
    }

    /// Publishes user PTE `pte` for `vpn` of `mm`. Work the new mapping needs must happen before
    /// [`Cx::write_pte`], which makes it visible to every CPU.
    fn set_pte_at<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pte: Pte,
    ) -> impl Future<Output = ()> {
        self.base().set_pte_at(cx, mm, vpn, pte)
    }

    /// At the end of a fault, after the PTE was published.
    fn update_mmu_cache<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().update_mmu_cache(cx, mm, vpn)
    }

    /// Publishes the PTEs of `nr` consecutive user pages from `vpn` of `mm`, mapping the
    /// frames from `pte.pfn` (`set_ptes`, fault-around and large folios). The generic one is
    /// `set_pte_at` of each.
    fn set_ptes<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pte: Pte,
        nr: u64,
    ) -> impl Future<Output = ()> {
        self.base().set_ptes(cx, mm, vpn, pte, nr)
    }

    /// After `nr` PTEs from `vpn` were published (`update_mmu_cache_range`). The generic one
    /// is `update_mmu_cache` of each.
    fn update_mmu_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        nr: u64,
    ) -> impl Future<Output = ()> {
        self.base().update_mmu_cache_range(cx, mm, vpn, nr)
    }

    /// Before page `pfn`, just read back from swap slot `slot`, is mapped again
    /// (`arch_swap_restore`): the arch restores what it kept of the page beside its contents
    /// (arm64's MTE tags, SPARC ADI). Nothing on the shipped arches.
    fn arch_swap_restore<O: Arch>(
        &self,
        cx: &Cx<O>,
        slot: u8,
        pfn: Pfn,
    ) -> impl Future<Output = ()> {
        self.base().arch_swap_restore(cx, slot, pfn)
    }

    /// Copies page `from` to page `to` for the user of `mm` who will see `to` at `vpn`.
    fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) -> impl Future<Output = ()> {
        self.base().copy_user_highpage(cx, to, from, vpn, mm)
    }

    /// Fills page `pfn` with fresh zeros for the user who will see it at `vpn`.
    fn clear_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().clear_user_highpage(cx, pfn, vpn)
    }

    /// Called by the generic copy and clear with the kernel address `kto` just written and the
    /// user page `vpn` it will appear at (MIPS `copy_user_page`'s trailing flush).
    fn copy_user_page_done<O: Arch>(
        &self,
        cx: &Cx<O>,
        kto: Va,
        to: Pfn,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().copy_user_page_done(cx, kto, to, vpn)
    }

    /// ptrace: writes one byte at offset `off` of page `pfn`, which `mm` maps at `vpn`.
    fn copy_to_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> impl Future<Output = ()> {
        self.base().copy_to_user_page(cx, mm, pfn, vpn, off)
    }

    /// ptrace and `/proc/pid/mem` reads: reads one byte at offset `off` of page `pfn`, which
    /// `mm` maps at `vpn`, through a kernel mapping, coherently with what the user stored there
    /// (`copy_from_user_page`). Returns the value read.
    fn copy_from_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> impl Future<Output = Stamp> {
        self.base().copy_from_user_page(cx, mm, pfn, vpn, off)
    }

    /// uprobes: writes the `values` of an out-of-line instruction slot at offset `off` of page
    /// `pfn`, which the probed task maps at `vpn` and will execute on any CPU
    /// (`arch_uprobe_copy_ixol`): on return the slot's instructions are what any CPU fetches.
    fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) -> impl Future<Output = ()> {
        self.base().uprobe_copy_ixol(cx, pfn, vpn, off, values)
    }

    /// Whether `flush_cache_range` of an executable range leaves the I-side coherent with what
    /// was stored through the range's user addresses: the promise `mprotect(PROT_EXEC)` makes
    /// (through `change_protection`'s opening `flush_cache_range`) to code written before it.
    /// Where it holds (ARMv6 aliasing VIPT, MIPS, PA-RISC), a stale fetch after `mprotect` is
    /// the arch's fault; where it does not (coherent hardware, non-aliasing ARM), the user's
    /// cacheflush is still needed.
    fn flush_cache_range_syncs_icache<O: Arch>(&self, cx: &Cx<O>) -> bool {
        self.base().flush_cache_range_syncs_icache(cx)
    }

    /// `kunmap`, `kunmap_local` or `kunmap_atomic` of a page the kernel reached at `va` (its
    /// page-aligned linear address) without a mapping of its own (`kunmap_flush_on_unmap`,
    /// where the arch defines `ARCH_HAS_FLUSH_ON_KUNMAP`: PA-RISC writes the kernel alias
    /// back). Nothing elsewhere.
    fn kunmap_flush_on_unmap<O: Arch>(&self, cx: &Cx<O>, va: Va) -> impl Future<Output = ()> {
        self.base().kunmap_flush_on_unmap(cx, va)
    }

    /// `kunmap_atomic` of the fixmap address `va` (VIVT arches flush the slot's lines).
    fn kunmap_atomic_flush<O: Arch>(&self, cx: &Cx<O>, va: Va) -> impl Future<Output = ()> {
        self.base().kunmap_atomic_flush(cx, va)
    }

    /// Whether `kmap_atomic` of a highmem page already in pkmap reuses that address
    /// (`kmap_high_get`), as ARM does, instead of creating a second alias.
    fn kmap_atomic_reuses_pkmap(&self) -> bool {
        self.base().kmap_atomic_reuses_pkmap()
    }

    /// Cache maintenance before the device may access physical range `[pa, pa + len)` in
    /// direction `dir` (`arch_sync_dma_for_device`: from `dma_map_*` and
    /// `dma_sync_*_for_device`). The range may start and end inside cache lines.
    fn sync_dma_for_device<O: Arch>(
        &self,
        cx: &Cx<O>,
        pa: Pa,
        len: u64,
        dir: DmaDir,
    ) -> impl Future<Output = ()> {
        self.base().sync_dma_for_device(cx, pa, len, dir)
    }

    /// Cache maintenance before the CPU may access physical range `[pa, pa + len)` the device
    /// had in direction `dir` (`arch_sync_dma_for_cpu`: from `dma_unmap_*` and
    /// `dma_sync_*_for_cpu`).
    fn sync_dma_for_cpu<O: Arch>(
        &self,
        cx: &Cx<O>,
        pa: Pa,
        len: u64,
        dir: DmaDir,
    ) -> impl Future<Output = ()> {
        self.base().sync_dma_for_cpu(cx, pa, len, dir)
    }

    /// No translation of `mm` remains in any TLB.
    fn flush_tlb_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) -> impl Future<Output = ()> {
        self.base().flush_tlb_mm(cx, mm)
    }

    /// No translation of user pages `[start, end)` of `mm` remains.
    fn flush_tlb_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().flush_tlb_range(cx, mm, start, end)
    }

    /// No translation of user page `vpn` of `mm` remains.
    fn flush_tlb_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) -> impl Future<Output = ()> {
        self.base().flush_tlb_page(cx, mm, vpn)
    }

    /// No translation of kernel pages `[start, end)` remains.
    fn flush_tlb_kernel_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        start: Vpn,
        end: Vpn,
    ) -> impl Future<Output = ()> {
        self.base().flush_tlb_kernel_range(cx, start, end)
    }

    /// How `PG_arch_1` reads on this arch.
    fn arch_1_polarity(&self) -> Arch1Polarity {
        self.base().arch_1_polarity()
    }

    /// Whether the kernel can build large folios: page-cache large folios and anonymous mTHP
    /// exist only under `CONFIG_TRANSPARENT_HUGEPAGE`, which an arch enables by selecting
    /// `HAVE_ARCH_TRANSPARENT_HUGEPAGE` (`mapping_set_folio_order_range`, `alloc_anon_folio`).
    /// Where it cannot, readahead and anonymous faults allocate single pages.
    fn transparent_hugepage(&self) -> bool {
        self.base().transparent_hugepage()
    }

    /// The colour modulus, in pages, that `mmap` applies to file and shared mappings so that
    /// `vpn - pgoff` is a multiple of it (1: no colouring). `MAP_FIXED` shared mappings that
    /// break it are refused when [`Arch::rejects_incongruent_fixed`] says so.
    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, shared: bool) -> u64 {
        self.base().mmap_colour_pages(cx, shared)
    }

    /// Whether `MAP_FIXED|MAP_SHARED` at an incongruent address fails with `EINVAL`.
    fn rejects_incongruent_fixed(&self) -> bool {
        self.base().rejects_incongruent_fixed()
    }

    /// Whether the arch's `do_page_fault` first handles a user-mode fault under the faulting
    /// VMA's own lock, without `mmap_lock` (`lock_vma_under_rcu`; the arch selects
    /// `ARCH_SUPPORTS_PER_VMA_LOCK`, since 6.4): x86, arm64, RISC-V and ARM do, MIPS, PA-RISC
    /// and SH take `mmap_lock` for every fault.
    fn per_vma_lock(&self) -> bool {
        self.base().per_vma_lock()
    }

    /// `SHM_COLOUR` in pages, where the arch defines one (PA-RISC): the modulus by which
    /// kernel and user addresses of a page must agree to share its lines. io_uring places the
    /// user mapping of its rings congruent with their kernel address by it
    /// (`io_uring_get_unmapped_area`); `None` (every other arch) leaves that mapping wherever
    /// `mmap` colours a shared anonymous mapping.
    fn shm_colour_pages<O: Arch>(&self, cx: &Cx<O>) -> Option<u64> {
        self.base().shm_colour_pages(cx)
    }

    /// `SHMLBA` in pages: the alignment `vmalloc_user` gives the kernel address of a buffer a
    /// driver will map into user space (`remap_vmalloc_range`), so that on a cache whose
    /// colours fit in it the kernel's and a colour-aligned user mapping's lines coincide.
    /// Whatever exceeds the layout's colour windows acts as the largest colour count does.
    fn shmlba_pages<O: Arch>(&self, cx: &Cx<O>) -> u64 {
        self.base().shmlba_pages(cx)
    }

    /// Whether the arch implements uprobes (`ARCH_SUPPORTS_UPROBES`): without them no task
    /// ever executes an out-of-line slot.
    fn has_uprobes(&self) -> bool {
        self.base().has_uprobes()
    }
}

/// How many names [`lineage`] keeps.
pub const LINEAGE: usize = 4;

/// The names ([`Arch::name`]) of `arch` and of the implementations it builds on
/// ([`Arch::Base`]), outermost first, down to the root or [`LINEAGE`] names; empty past them.
/// A race family of one arch's own handling holds for every implementation built on it.
pub fn lineage<A: Arch>(arch: &A) -> [&'static str; LINEAGE] {
    fn fill<A: Arch>(a: &A, out: &mut [&'static str; LINEAGE], i: usize) {
        out[i] = a.name();
        if i + 1 < LINEAGE && std::any::TypeId::of::<A>() != std::any::TypeId::of::<A::Base>() {
            fill(a.base(), out, i + 1);
        }
    }
    let mut out = [""; LINEAGE];
    fill(arch, &mut out, 0);
    out
}

/// The polarity in force: the arch's, unless the historical switch selects the old
/// "dcache dirty" meaning.
pub fn polarity<A: Arch>(cx: &Cx<A>) -> Arch1Polarity {
    if cx.switches().arch_1_dirty_polarity {
        Arch1Polarity::DcacheDirty
    } else {
        cx.arch().arch_1_polarity()
    }
}

/// Whether `PG_arch_1` says the page's kernel alias may hold dirty lines.
pub fn kernel_alias_maybe_dirty<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> bool {
    let flag = cx.pg_arch_1(pfn);
    match polarity(cx) {
        Arch1Polarity::DcacheDirty => flag,
        Arch1Polarity::DcacheClean => !flag,
    }
}

/// Records in `PG_arch_1` that the kernel alias is clean (`true`) or may be dirty (`false`).
pub fn set_kernel_alias_clean<A: Arch>(cx: &Cx<A>, pfn: Pfn, clean: bool) {
    let flag = match polarity(cx) {
        Arch1Polarity::DcacheDirty => !clean,
        Arch1Polarity::DcacheClean => clean,
    };
    cx.set_pg_arch_1(pfn, flag);
}
