//! The flush API: the public [`Arch`] trait and the shipped implementations.
//!
//! Kernel paths call the Linux flush APIs by their names; an `Arch` implements them from the
//! cache primitives [`Cx`] offers (clean, invalidate or flush a line by virtual address, locally
//! or on every CPU; by set and way; whole caches; I-cache invalidation; TLB invalidation; colour
//! windows). A method may take several steps: `cx.step().await` inside a loop makes it
//! preemptible there, as a per-line loop in the real kernel is.
//!
//! Every method has a default that is correct on fully coherent hardware (PIPT D-cache, snooping
//! I-cache, coherent DMA): an implementation overrides what its cache needs. The generic bodies
//! shared by several implementations live in [`generic`]. An implementation must not know about
//! particular races; it implements contracts.
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
//! - `copy_to_user_page`: a ptrace write into another address space, coherent on both sides.
//! - `dma_map_area` / `dma_unmap_area`: the cache maintenance of a streaming DMA mapping of a
//!   page for a non-coherent device.
//! - `flush_tlb_*`: no stale translation remains on any CPU that may use it.

pub mod arm;
pub mod generic;
pub mod null;
pub mod parisc;
pub mod r4k;
pub mod v6;
pub mod vivt;

use crate::addr::{MmId, Pfn, Va, Vpn};
use crate::machine::{Pte, Scope};
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
pub trait Arch: Sized + 'static {
    /// A short name.
    fn name(&self) -> &'static str;

    /// The CPU switches to user address space `next`. Must not yield.
    fn switch_mm(&self, cx: &Cx<Self>, prev: Option<MmId>, next: MmId) -> impl Future<Output = ()> {
        let _ = (cx, prev, next);
        async {}
    }

    /// Before all user mappings of `mm` go (exit, exec).
    fn flush_cache_mm(&self, cx: &Cx<Self>, mm: MmId) -> impl Future<Output = ()> {
        let _ = (cx, mm);
        async {}
    }

    /// At fork, before the parent's page tables are copied and write-protected.
    fn flush_cache_dup_mm(&self, cx: &Cx<Self>, mm: MmId) -> impl Future<Output = ()> {
        self.flush_cache_mm(cx, mm)
    }

    /// Before the translations of user pages `[start, end)` of `mm` change.
    fn flush_cache_range(
        &self,
        cx: &Cx<Self>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) -> impl Future<Output = ()> {
        let _ = (cx, mm, start, end, exec);
        async {}
    }

    /// Before the translation of user page `vpn` of `mm` (mapping `pfn`) changes.
    fn flush_cache_page(
        &self,
        cx: &Cx<Self>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) -> impl Future<Output = ()> {
        let _ = (cx, mm, vpn, pfn, exec);
        async {}
    }

    /// After a kernel write to a page-cache page, or before a kernel read of one.
    fn flush_dcache_page(&self, cx: &Cx<Self>, pfn: Pfn) -> impl Future<Output = ()> {
        let _ = (cx, pfn);
        async {}
    }

    /// Before the kernel accesses anonymous page `pfn` that `mm` maps at `vpn` (GUP).
    fn flush_anon_page(
        &self,
        cx: &Cx<Self>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        let _ = (cx, mm, pfn, vpn);
        async {}
    }

    /// Before I/O on pages the kernel wrote through vmap range `[va, va + len)`.
    fn flush_kernel_vmap_range(&self, cx: &Cx<Self>, va: Va, len: u64) -> impl Future<Output = ()> {
        let _ = (cx, va, len);
        async {}
    }

    /// After I/O into pages the kernel will read through vmap range `[va, va + len)`.
    fn invalidate_kernel_vmap_range(
        &self,
        cx: &Cx<Self>,
        va: Va,
        len: u64,
    ) -> impl Future<Output = ()> {
        let _ = (cx, va, len);
        async {}
    }

    /// After kernel page-table entries for `[start, end)` of vmalloc space were installed.
    fn flush_cache_vmap(&self, cx: &Cx<Self>, start: Va, end: Va) -> impl Future<Output = ()> {
        let _ = (cx, start, end);
        async {}
    }

    /// Before kernel page-table entries for `[start, end)` of vmalloc space are removed.
    fn flush_cache_vunmap(&self, cx: &Cx<Self>, start: Va, end: Va) -> impl Future<Output = ()> {
        let _ = (cx, start, end);
        async {}
    }

    /// Before unused pkmap slots are unmapped for recycling.
    fn flush_cache_kmaps(&self, cx: &Cx<Self>) -> impl Future<Output = ()> {
        let _ = cx;
        async {}
    }

    /// After the kernel wrote instructions to `[start, end)` of kernel space.
    fn flush_icache_range(&self, cx: &Cx<Self>, start: Va, end: Va) -> impl Future<Output = ()> {
        let _ = (cx, start, end);
        async {}
    }

    /// The cacheflush system call over user range `[start, end)` of the current address space.
    fn flush_icache_user_range(
        &self,
        cx: &Cx<Self>,
        start: Va,
        end: Va,
    ) -> impl Future<Output = ()> {
        let _ = (cx, start, end);
        async {}
    }

    /// In the fault path, right before the PTE for a file page is built.
    fn flush_icache_page(&self, cx: &Cx<Self>, mm: MmId, pfn: Pfn) -> impl Future<Output = ()> {
        let _ = (cx, mm, pfn);
        async {}
    }

    /// Publishes user PTE `pte` for `vpn` of `mm`. Work the new mapping needs must happen before
    /// [`Cx::write_pte`], which makes it visible to every CPU.
    fn set_pte_at(&self, cx: &Cx<Self>, mm: MmId, vpn: Vpn, pte: Pte) -> impl Future<Output = ()> {
        async move { cx.write_pte(Some(mm), vpn, pte) }
    }

    /// At the end of a fault, after the PTE was published.
    fn update_mmu_cache(&self, cx: &Cx<Self>, mm: MmId, vpn: Vpn) -> impl Future<Output = ()> {
        let _ = (cx, mm, vpn);
        async {}
    }

    /// Copies page `from` to page `to` for the user of `mm` who will see `to` at `vpn`.
    fn copy_user_highpage(
        &self,
        cx: &Cx<Self>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) -> impl Future<Output = ()> {
        let _ = mm;
        generic::copy_user_highpage(cx, to, from, vpn)
    }

    /// Fills page `pfn` with fresh zeros for the user who will see it at `vpn`.
    fn clear_user_highpage(&self, cx: &Cx<Self>, pfn: Pfn, vpn: Vpn) -> impl Future<Output = ()> {
        generic::clear_user_highpage(cx, pfn, vpn)
    }

    /// Called by the generic copy and clear with the kernel address `kto` just written and the
    /// user page `vpn` it will appear at (MIPS `copy_user_page`'s trailing flush).
    fn copy_user_page_done(
        &self,
        cx: &Cx<Self>,
        kto: Va,
        to: Pfn,
        vpn: Vpn,
    ) -> impl Future<Output = ()> {
        let _ = (cx, kto, to, vpn);
        async {}
    }

    /// ptrace: writes one byte at offset `off` of page `pfn`, which `mm` maps at `vpn`.
    fn copy_to_user_page(
        &self,
        cx: &Cx<Self>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> impl Future<Output = ()> {
        let _ = mm;
        generic::copy_to_user_page(cx, pfn, vpn, off)
    }

    /// `kunmap_atomic` of the fixmap address `va` (VIVT arches flush the slot's lines).
    fn kunmap_atomic_flush(&self, cx: &Cx<Self>, va: Va) -> impl Future<Output = ()> {
        let _ = (cx, va);
        async {}
    }

    /// Whether `kmap_atomic` of a highmem page already in pkmap reuses that address
    /// (`kmap_high_get`), as ARM does, instead of creating a second alias.
    fn kmap_atomic_reuses_pkmap(&self) -> bool {
        false
    }

    /// Cache maintenance when page `pfn` is mapped for the device in direction `dir`.
    fn dma_map_area(&self, cx: &Cx<Self>, pfn: Pfn, dir: DmaDir) -> impl Future<Output = ()> {
        let _ = (cx, pfn, dir);
        async {}
    }

    /// Cache maintenance when page `pfn` comes back from the device in direction `dir`.
    fn dma_unmap_area(&self, cx: &Cx<Self>, pfn: Pfn, dir: DmaDir) -> impl Future<Output = ()> {
        let _ = (cx, pfn, dir);
        async {}
    }

    /// No translation of `mm` remains in any TLB.
    fn flush_tlb_mm(&self, cx: &Cx<Self>, mm: MmId) -> impl Future<Output = ()> {
        async move { cx.tlb_user(mm, None, Scope::AllCpus) }
    }

    /// No translation of user pages `[start, end)` of `mm` remains.
    fn flush_tlb_range(
        &self,
        cx: &Cx<Self>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
    ) -> impl Future<Output = ()> {
        async move { cx.tlb_user(mm, Some((start, end)), Scope::AllCpus) }
    }

    /// No translation of user page `vpn` of `mm` remains.
    fn flush_tlb_page(&self, cx: &Cx<Self>, mm: MmId, vpn: Vpn) -> impl Future<Output = ()> {
        async move { cx.tlb_user(mm, Some((vpn, vpn + 1)), Scope::AllCpus) }
    }

    /// No translation of kernel pages `[start, end)` remains.
    fn flush_tlb_kernel_range(
        &self,
        cx: &Cx<Self>,
        start: Vpn,
        end: Vpn,
    ) -> impl Future<Output = ()> {
        async move { cx.tlb_kernel(start, end, Scope::AllCpus) }
    }

    /// How `PG_arch_1` reads on this arch.
    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheDirty
    }

    /// The colour modulus, in pages, that `mmap` applies to file and shared mappings so that
    /// `vpn - pgoff` is a multiple of it (1: no colouring). `MAP_FIXED` shared mappings that
    /// break it are refused when [`Arch::rejects_incongruent_fixed`] says so.
    fn mmap_colour_pages(&self, cx: &Cx<Self>, shared: bool) -> u64 {
        let _ = (cx, shared);
        1
    }

    /// Whether `MAP_FIXED|MAP_SHARED` at an incongruent address fails with `EINVAL`.
    fn rejects_incongruent_fixed(&self) -> bool {
        false
    }
}

/// The polarity in force: the arch's, unless the historical switch selects the old
/// "dcache dirty" meaning.
pub fn polarity<A: Arch>(arch: &A, cx: &Cx<A>) -> Arch1Polarity {
    if cx.switches().arch_1_dirty_polarity {
        Arch1Polarity::DcacheDirty
    } else {
        arch.arch_1_polarity()
    }
}

/// Whether `PG_arch_1` says the page's kernel alias may hold dirty lines.
pub fn kernel_alias_maybe_dirty<A: Arch>(arch: &A, cx: &Cx<A>, pfn: Pfn) -> bool {
    let flag = cx.pg_arch_1(pfn);
    match polarity(arch, cx) {
        Arch1Polarity::DcacheDirty => flag,
        Arch1Polarity::DcacheClean => !flag,
    }
}

/// Records in `PG_arch_1` that the kernel alias is clean (`true`) or may be dirty (`false`).
pub fn set_kernel_alias_clean<A: Arch>(arch: &A, cx: &Cx<A>, pfn: Pfn, clean: bool) {
    let flag = match polarity(arch, cx) {
        Arch1Polarity::DcacheDirty => !clean,
        Arch1Polarity::DcacheClean => clean,
    };
    cx.set_pg_arch_1(pfn, flag);
}
