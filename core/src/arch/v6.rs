//! ARMv6 VIPT D-caches, aliasing or not (and ARMv7's through [`super::v7`]), after arch/arm (`flush.c`, `fault-armv.c`,
//! `copypage-v6.c`, `dma-mapping.c`).
//!
//! On an aliasing cache, user mappings of file and shared pages are coloured (SHMLBA = 4
//! pages), user aliases of a frame are reached through colour windows (`flush_pfn_alias`), and
//! the copy and clear of user pages go through colour windows at the user's colour after
//! discarding the destination's kernel alias. `set_pte_at` performs the deferred D-cache flush
//! and the I-cache invalidation before publishing an executable mapping
//! (`__sync_icache_dcache`); the historical switch moves that work to `update_mmu_cache`, after
//! publication, as kernels before 2.6.37 did.

use super::arm;
use super::generic::{self, colour_alias_op, page_op, smp_scope};
use super::null::Null;
use super::{Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Pte, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// ARMv6/v7 VIPT.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArmV6;

pub use super::arm::SHMLBA_PAGES;

/// The whole D-cache and I-cache, on every CPU (`flush_cache_all`).
pub fn flush_all<A: Arch>(cx: &Cx<A>) {
    cx.dcache_all(CacheOp::Flush, smp_scope(cx));
    cx.icache_all(Scope::AllCpus);
}

/// `__sync_icache_dcache`: the deferred D-cache flush, and for executable mappings the I-cache
/// invalidation on every CPU.
pub async fn sync_icache_dcache<A: Arch>(cx: &Cx<A>, pte: Pte) {
    if !cx.dcache_aliases() && !pte.exec {
        return;
    }
    // `set_ptes` skips special entries (the zero page).
    if cx.page_kind(pte.pfn) == crate::kernel::PageKind::Zero {
        return;
    }
    arm::deferred_flush(cx, pte.pfn).await;
    if pte.exec {
        cx.icache_all(Scope::AllCpus);
    }
}

impl Arch for ArmV6 {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "arm-v6"
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, _mm: MmId) {
        if cx.dcache_aliases() {
            flush_all(cx);
        }
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        _start: Vpn,
        _end: Vpn,
        exec: bool,
    ) {
        if cx.dcache_aliases() {
            cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        }
        if exec {
            cx.icache_all(Scope::AllCpus);
        }
    }

    /// `flush_cache_range` (arch/arm/mm/flush.c) cleans and invalidates the whole D-cache on an
    /// aliasing VIPT cache before invalidating the I-cache of an executable VMA: what was
    /// stored reaches the I-side. On a non-aliasing cache it only invalidates the I-cache,
    /// leaving dirty lines where the fetch does not look.
    fn flush_cache_range_syncs_icache<O: Arch>(&self, cx: &Cx<O>) -> bool {
        cx.dcache_aliases()
    }

    /// `flush_cache_pages` of one page: on an aliasing cache the user colour's lines
    /// (`flush_pfn_alias`) and the whole I-cache; on a non-aliasing one the I-cache only for an
    /// executable VMA and an ASID-tagged VIVT I-cache.
    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        if cx.dcache_aliases() {
            colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
            cx.icache_all(Scope::AllCpus);
        }
        if exec && cx.icache_geometry().virtually_tagged() {
            cx.icache_all(Scope::AllCpus);
        }
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        arm::flush_dcache_page(cx, pfn).await;
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        arm::flush_dcache_folio(cx, pfn, nr).await;
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, _mm: MmId, pfn: Pfn, vpn: Vpn) {
        if !cx.page_is_anon(pfn) || !cx.dcache_aliases() {
            return;
        }
        colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        if let Some(va) = cx.linear_va(pfn) {
            page_op(cx, CacheOp::Flush, va, smp_scope(cx));
        }
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.dcache_aliases() {
            cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
        }
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.dcache_aliases() {
            cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
        }
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        if cx.dcache_aliases() {
            flush_all(cx);
        }
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        if cx.dcache_aliases() {
            flush_all(cx);
        }
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        if !cx.switches().icache_sync_after_set_pte {
            sync_icache_dcache(cx, pte).await;
        }
        cx.write_pte(Some(mm), vpn, pte);
    }

    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        // __sync_icache_dcache once, for the first PTE's folio, then every PTE.
        if !cx.switches().icache_sync_after_set_pte {
            sync_icache_dcache(cx, pte).await;
        }
        for i in 0..nr {
            let p = Pte {
                pfn: pte.pfn + i as Pfn,
                ..pte
            };
            cx.write_pte(Some(mm), vpn + i, p);
        }
    }

    /// `update_mmu_cache`: nothing on ARMv6 and later (`set_pte_at` did the work before
    /// publishing); the historical switch runs `__sync_icache_dcache` here instead, after
    /// publication, as kernels before 2.6.37 did.
    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        if !cx.switches().icache_sync_after_set_pte {
            return;
        }
        let pte = cx.pte(mm, vpn);
        // The zero page is never written, so it has no dirty line to flush.
        if !pte.present || cx.page_kind(pte.pfn) == crate::kernel::PageKind::Zero {
            return;
        }
        sync_icache_dcache(cx, pte).await;
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        if !cx.dcache_aliases() {
            return generic::copy_user_highpage(cx, to, from, vpn).await;
        }
        // v6_copy_user_highpage_aliasing: settle the source's deferred kernel flush, discard the
        // destination's kernel alias, copy between colour windows at the user's colour.
        arm::deferred_flush(cx, from).await;
        if let Some(k) = cx.linear_va(to) {
            page_op(cx, CacheOp::Invalidate, k, smp_scope(cx));
        }
        let page = cx.page_size();
        cx.preempt_disable();
        let kfrom = cx.map_colour_window(0, vpn * page, from);
        let kto = cx.map_colour_window(1, vpn * page, to);
        generic::copy_page(cx, kto, kfrom);
        cx.unmap_colour_window(kfrom);
        cx.unmap_colour_window(kto);
        cx.preempt_enable();
    }

    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, vpn: Vpn) {
        if !cx.dcache_aliases() {
            return generic::clear_user_highpage(cx, pfn, vpn).await;
        }
        if let Some(k) = cx.linear_va(pfn) {
            page_op(cx, CacheOp::Invalidate, k, smp_scope(cx));
        }
        cx.preempt_disable();
        let w = cx.map_colour_window(1, vpn * cx.page_size(), pfn);
        generic::clear_page(cx, w);
        cx.unmap_colour_window(w);
        cx.preempt_enable();
    }

    /// `copy_to_user_page`: the write through the kernel mapping with preemption off, then
    /// `flush_ptrace_access` (`__flush_ptrace_access`).
    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        let k = kmap::kmap(cx, pfn).await;
        cx.preempt_disable();
        let v = cx.fresh();
        cx.kstore(k + off, v, false);
        let exec = cx.vma(mm, vpn).is_some_and(|vma| vma.exec);
        let core_in_mm = cx.mm_cpumask(mm) & (1 << cx.cpu()) != 0;
        let uaddr = vpn * cx.page_size() + off;
        arm::flush_ptrace_access(cx, pfn, uaddr, k + off, 1, exec, core_in_mm).await;
        cx.preempt_enable();
        kmap::kunmap(cx, pfn).await;
    }

    fn kmap_atomic_reuses_pkmap(&self) -> bool {
        true
    }

    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, true).await;
    }

    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, false).await;
    }

    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        arm::uprobe_copy_ixol(cx, pfn, vpn, off, values).await;
    }

    /// No large folios: ARM selects `HAVE_ARCH_TRANSPARENT_HUGEPAGE` only with `ARM_LPAE`,
    /// which needs an ARMv7 core.
    fn transparent_hugepage(&self) -> bool {
        false
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheClean
    }

    fn shmlba_pages<O: Arch>(&self, _cx: &Cx<O>) -> u64 {
        SHMLBA_PAGES
    }

    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, _shared: bool) -> u64 {
        if cx.dcache_aliases() {
            SHMLBA_PAGES
        } else {
            1
        }
    }

    fn rejects_incongruent_fixed(&self) -> bool {
        true
    }
}
