//! PA-RISC with equivalent aliasing, after arch/parisc/kernel/cache.c.
//!
//! Every user mapping of a file is congruent (file mappings are coloured whether private or
//! shared); user aliases are flushed through tmpalias colour windows; `flush_dcache_page` flushes
//! the kernel alias and every user alias it finds in the reverse map, or defers with
//! `PG_dcache_dirty` when the page is unmapped; `invalidate_kernel_vmap_range` first flushes the
//! kernel alias of pages with a deferred flush (the fix that followed the NFS readdir reports).
//! The deferred flush runs in `update_mmu_cache`, after publication, as on PA-RISC. `SHMLBA`
//! is one page, so `vmalloc_user` buffers get no colour; PA-RISC has no uprobes.

use super::generic::{self, colour_alias_op, kernel_alias_op, page_op, smp_scope};
use super::null::Null;
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// PA-RISC.
#[derive(Clone, Copy, Debug, Default)]
pub struct Parisc;

pub fn flush_user_aliases<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let page = cx.page_size();
    for (_, vpn, _) in cx.user_mappings(pfn, None) {
        colour_alias_op(cx, pfn, vpn * page, CacheOp::Flush);
    }
}

impl Arch for Parisc {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "parisc"
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, _mm: MmId) {
        cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        _start: Vpn,
        _end: Vpn,
        _exec: bool,
    ) {
        cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    /// `flush_cache_range` (arch/parisc/kernel/cache.c) flushes the D-side and the I-side of
    /// the range (or both caches whole).
    fn flush_cache_range_syncs_icache<O: Arch>(&self, _cx: &Cx<O>) -> bool {
        true
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        if exec {
            cx.icache_all(Scope::AllCpus);
        }
    }

    /// `kunmap_flush_on_unmap` (`ARCH_HAS_FLUSH_ON_KUNMAP`, arch/parisc/include/asm/cacheflush.h):
    /// `flush_kernel_dcache_page_addr` of the kernel address the page was used through.
    async fn kunmap_flush_on_unmap<O: Arch>(&self, cx: &Cx<O>, va: Va) {
        page_op(cx, CacheOp::Flush, va, smp_scope(cx));
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        // flush_dcache_folio of the page's folio.
        let (head, nr) = cx.folio(pfn);
        cx.arch().flush_dcache_folio(cx, head, nr).await;
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        let pages = pfn..pfn + nr as Pfn;
        let mapped = pages.clone().any(|p| !cx.user_mappings(p, None).is_empty());
        if cx.page_is_file(pfn) && !mapped {
            set_kernel_alias_clean(cx, pfn, false);
            return;
        }
        for p in pages.clone() {
            kernel_alias_op(cx, p, CacheOp::Flush).await;
        }
        for p in pages {
            flush_user_aliases(cx, p);
        }
        set_kernel_alias_clean(cx, pfn, true);
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        if cx.page_is_anon(pfn) {
            cx.arch().flush_tlb_page(cx, mm, vpn).await;
            colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        }
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        let page = cx.page_size();
        let mut a = va;
        while a < va + len {
            let pfn = cx.probe(a).map(|t| (t.pa / page) as Pfn);
            if let Some(pfn) = pfn {
                if kernel_alias_maybe_dirty(cx, pfn) {
                    kernel_alias_op(cx, pfn, CacheOp::Flush).await;
                    set_kernel_alias_clean(cx, pfn, true);
                }
            }
            a += page;
        }
        cx.dcache_range(CacheOp::Invalidate, va, va + len, smp_scope(cx));
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        cx.dcache_all(CacheOp::Flush, smp_scope(cx));
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Flush, start, end, smp_scope(cx));
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn flush_icache_page<O: Arch>(&self, cx: &Cx<O>, _mm: MmId, pfn: Pfn) {
        kernel_alias_op(cx, pfn, CacheOp::Flush).await;
        cx.icache_all(Scope::AllCpus);
    }

    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        // __update_cache: the deferred flush covers the page's whole folio.
        let pte = cx.pte(mm, vpn);
        if pte.present && cx.page_is_file(pte.pfn) && kernel_alias_maybe_dirty(cx, pte.pfn) {
            let (head, nr) = cx.folio(pte.pfn);
            for p in head..head + nr as Pfn {
                kernel_alias_op(cx, p, CacheOp::Flush).await;
            }
            set_kernel_alias_clean(cx, pte.pfn, true);
        }
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
        let (kto, ht) = kmap::kmap_atomic(cx, to).await;
        colour_alias_op(cx, from, vpn * cx.page_size(), CacheOp::Flush);
        generic::copy_page(cx, kto, kfrom);
        page_op(cx, CacheOp::Flush, kto, smp_scope(cx));
        kmap::kunmap_atomic(cx, kto, ht).await;
        kmap::kunmap_atomic(cx, kfrom, hf).await;
    }

    async fn copy_user_page_done<O: Arch>(&self, cx: &Cx<O>, kto: Va, _to: Pfn, _vpn: Vpn) {
        page_op(cx, CacheOp::Flush, kto, smp_scope(cx));
    }

    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        cx.arch().flush_cache_page(cx, mm, vpn, pfn, false).await;
        let k = kmap::kmap(cx, pfn).await;
        let v = cx.fresh();
        cx.kstore(k + off, v, false);
        page_op(cx, CacheOp::Flush, k, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
        kmap::kunmap(cx, pfn).await;
    }

    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, true).await;
    }

    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, false).await;
    }

    /// No large folios: PA-RISC does not select `HAVE_ARCH_TRANSPARENT_HUGEPAGE`.
    fn transparent_hugepage(&self) -> bool {
        false
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheDirty
    }

    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, _shared: bool) -> u64 {
        cx.dcache_colours()
    }

    fn rejects_incongruent_fixed(&self) -> bool {
        true
    }

    /// `do_page_fault` takes `mmap_lock` for every fault.
    fn per_vma_lock(&self) -> bool {
        false
    }

    fn shm_colour_pages<O: Arch>(&self, cx: &Cx<O>) -> Option<u64> {
        // asm/shmparam.h defines SHM_COLOUR, the colour span of the D-cache.
        Some(cx.dcache_colours())
    }

    fn shmlba_pages<O: Arch>(&self, _cx: &Cx<O>) -> u64 {
        // SHMLBA is PAGE_SIZE; SHM_COLOUR (mmap_colour_pages) is the congruence modulus.
        1
    }

    fn has_uprobes(&self) -> bool {
        // arch/parisc selects no ARCH_SUPPORTS_UPROBES.
        false
    }
}
