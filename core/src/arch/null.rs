//! The null implementation, for coherent hardware (PIPT D-cache, snooping I-cache, coherent
//! DMA): every cache flush API does nothing, `set_pte_at` only writes the entry, the TLB calls
//! invalidate what they name on every CPU, and the copy, clear and ptrace write go through
//! plain kernel mappings.
//!
//! It is the root every other implementation builds on ([`Arch::Base`]), so it implements every
//! method itself: what an implementation does not override behaves as on coherent hardware.

use super::{generic, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::machine::{Pte, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// Flush APIs for fully coherent hardware.
#[derive(Clone, Copy, Debug, Default)]
pub struct Null;

impl Arch for Null {
    type Base = Null;

    fn base(&self) -> &Null {
        self
    }

    fn name(&self) -> &'static str {
        "null"
    }

    async fn switch_mm<O: Arch>(&self, _cx: &Cx<O>, _prev: Option<MmId>, _next: MmId) {}

    async fn flush_cache_mm<O: Arch>(&self, _cx: &Cx<O>, _mm: MmId) {}

    async fn flush_cache_dup_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        // Generic `flush_cache_dup_mm` is `flush_cache_mm`.
        cx.arch().flush_cache_mm(cx, mm).await;
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        _cx: &Cx<O>,
        _mm: MmId,
        _start: Vpn,
        _end: Vpn,
        _exec: bool,
    ) {
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        _cx: &Cx<O>,
        _mm: MmId,
        _vpn: Vpn,
        _pfn: Pfn,
        _exec: bool,
    ) {
    }

    async fn flush_dcache_page<O: Arch>(&self, _cx: &Cx<O>, _pfn: Pfn) {}

    async fn flush_anon_page<O: Arch>(&self, _cx: &Cx<O>, _mm: MmId, _pfn: Pfn, _vpn: Vpn) {}

    async fn flush_kernel_vmap_range<O: Arch>(&self, _cx: &Cx<O>, _va: Va, _len: u64) {}

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, _cx: &Cx<O>, _va: Va, _len: u64) {}

    async fn flush_cache_vmap<O: Arch>(&self, _cx: &Cx<O>, _start: Va, _end: Va) {}

    async fn flush_cache_vunmap<O: Arch>(&self, _cx: &Cx<O>, _start: Va, _end: Va) {}

    async fn flush_cache_kmaps<O: Arch>(&self, _cx: &Cx<O>) {}

    async fn flush_icache_range<O: Arch>(&self, _cx: &Cx<O>, _start: Va, _end: Va) {}

    async fn flush_icache_user_range<O: Arch>(&self, _cx: &Cx<O>, _start: Va, _end: Va) {}

    async fn flush_icache_page<O: Arch>(&self, _cx: &Cx<O>, _mm: MmId, _pfn: Pfn) {}

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        for i in 0..nr {
            cx.arch().flush_dcache_page(cx, pfn + i as Pfn).await;
        }
    }

    async fn flush_icache_pages<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, nr: u64) {
        for i in 0..nr {
            cx.arch().flush_icache_page(cx, mm, pfn + i as Pfn).await;
        }
    }

    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        for i in 0..nr {
            let p = Pte {
                pfn: pte.pfn + i as Pfn,
                ..pte
            };
            cx.arch().set_pte_at(cx, mm, vpn + i, p).await;
        }
    }

    async fn update_mmu_cache_range<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, nr: u64) {
        for i in 0..nr {
            cx.arch().update_mmu_cache(cx, mm, vpn + i).await;
        }
    }

    async fn copy_from_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> Stamp {
        generic::copy_from_user_page(cx, pfn, vpn, off).await
    }

    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        generic::uprobe_copy_ixol(cx, pfn, vpn, off, values).await;
    }

    fn flush_cache_range_syncs_icache<O: Arch>(&self, _cx: &Cx<O>) -> bool {
        false
    }

    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        cx.write_pte(Some(mm), vpn, pte);
    }

    async fn update_mmu_cache<O: Arch>(&self, _cx: &Cx<O>, _mm: MmId, _vpn: Vpn) {}

    async fn arch_swap_restore<O: Arch>(&self, _cx: &Cx<O>, _slot: u8, _pfn: Pfn) {}

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        generic::copy_user_highpage(cx, to, from, vpn).await;
    }

    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, vpn: Vpn) {
        generic::clear_user_highpage(cx, pfn, vpn).await;
    }

    async fn copy_user_page_done<O: Arch>(&self, _cx: &Cx<O>, _kto: Va, _to: Pfn, _vpn: Vpn) {}

    async fn copy_to_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) {
        generic::copy_to_user_page(cx, pfn, vpn, off).await;
    }

    async fn kunmap_flush_on_unmap<O: Arch>(&self, _cx: &Cx<O>, _va: Va) {}

    async fn kunmap_atomic_flush<O: Arch>(&self, _cx: &Cx<O>, _va: Va) {}

    fn kmap_atomic_reuses_pkmap(&self) -> bool {
        false
    }

    async fn sync_dma_for_device<O: Arch>(&self, _cx: &Cx<O>, _pa: Pa, _len: u64, _dir: DmaDir) {}

    async fn sync_dma_for_cpu<O: Arch>(&self, _cx: &Cx<O>, _pa: Pa, _len: u64, _dir: DmaDir) {}

    async fn flush_tlb_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        cx.tlb_user(mm, None, Scope::AllCpus);
    }

    async fn flush_tlb_range<O: Arch>(&self, cx: &Cx<O>, mm: MmId, start: Vpn, end: Vpn) {
        cx.tlb_user(mm, Some((start, end)), Scope::AllCpus);
    }

    async fn flush_tlb_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        cx.tlb_user(mm, Some((vpn, vpn + 1)), Scope::AllCpus);
    }

    async fn flush_tlb_kernel_range<O: Arch>(&self, cx: &Cx<O>, start: Vpn, end: Vpn) {
        cx.tlb_kernel(start, end, Scope::AllCpus);
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheDirty
    }

    /// Coherent hardware under a kernel that builds large folios.
    fn transparent_hugepage(&self) -> bool {
        true
    }

    fn mmap_colour_pages<O: Arch>(&self, _cx: &Cx<O>, _shared: bool) -> u64 {
        1
    }

    fn rejects_incongruent_fixed(&self) -> bool {
        false
    }

    /// As x86 does.
    fn per_vma_lock(&self) -> bool {
        true
    }

    fn shm_colour_pages<O: Arch>(&self, _cx: &Cx<O>) -> Option<u64> {
        None
    }

    fn shmlba_pages<O: Arch>(&self, _cx: &Cx<O>) -> u64 {
        1
    }

    fn has_uprobes(&self) -> bool {
        true
    }
}
