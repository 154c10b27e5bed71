//! An implementation that records which flush APIs each kernel path calls and otherwise does
//! what the one it wraps does: `Recording::new(ArmV6)` runs like ARMv6 and notes, for every
//! call of an `Arch` method, the path the calling actor's action started ([`Cx::action`]) and
//! the method's name. It serves to check what paths declare they call
//! ([`crate::paths::PathInfo::calls`]) and to see what a path of one's own calls.

use super::Arch;
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::machine::Pte;
use crate::op::DmaDir;
use crate::world::Cx;
use std::cell::RefCell;
use std::collections::BTreeSet;
use std::rc::Rc;

/// The `Arch` methods a [`Recording`] notes: every method that does cache or TLB work.
pub const METHODS: &[&str] = &[
    "clear_user_highpage",
    "copy_from_user_page",
    "copy_to_user_page",
    "copy_user_highpage",
    "copy_user_page_done",
    "flush_anon_page",
    "flush_cache_dup_mm",
    "flush_cache_kmaps",
    "flush_cache_mm",
    "flush_cache_page",
    "flush_cache_range",
    "flush_cache_vmap",
    "flush_cache_vunmap",
    "flush_dcache_folio",
    "flush_dcache_page",
    "flush_icache_page",
    "flush_icache_pages",
    "flush_icache_range",
    "flush_icache_user_range",
    "flush_kernel_vmap_range",
    "flush_tlb_kernel_range",
    "flush_tlb_mm",
    "flush_tlb_page",
    "flush_tlb_range",
    "invalidate_kernel_vmap_range",
    "kunmap_atomic_flush",
    "kunmap_flush_on_unmap",
    "set_pte_at",
    "set_ptes",
    "switch_mm",
    "sync_dma_for_cpu",
    "sync_dma_for_device",
    "update_mmu_cache",
    "update_mmu_cache_range",
    "uprobe_copy_ixol",
];

/// The calls recorded: (path of the calling action, `Arch` method).
pub type Calls = Rc<RefCell<BTreeSet<(&'static str, &'static str)>>>;

/// An implementation that records the calls made to `B`.
#[derive(Clone, Debug, Default)]
pub struct Recording<B> {
    base: B,
    calls: Calls,
}

impl<B: Arch> Recording<B> {
    /// Records the calls made to `base`.
    pub fn new(base: B) -> Recording<B> {
        Recording {
            base,
            calls: Calls::default(),
        }
    }

    /// The calls recorded so far (shared by every clone: a model clones its arch into each run).
    pub fn calls(&self) -> Calls {
        self.calls.clone()
    }

    fn note<O: Arch>(&self, cx: &Cx<O>, api: &'static str) {
        self.calls.borrow_mut().insert((cx.action(), api));
    }
}

impl<B: Arch> Arch for Recording<B> {
    type Base = B;

    fn base(&self) -> &B {
        &self.base
    }

    async fn switch_mm<O: Arch>(&self, cx: &Cx<O>, prev: Option<MmId>, next: MmId) {
        self.note(cx, "switch_mm");
        self.base().switch_mm(cx, prev, next).await
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        self.note(cx, "flush_cache_mm");
        self.base().flush_cache_mm(cx, mm).await
    }

    async fn flush_cache_dup_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        self.note(cx, "flush_cache_dup_mm");
        self.base().flush_cache_dup_mm(cx, mm).await
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) {
        self.note(cx, "flush_cache_range");
        self.base()
            .flush_cache_range(cx, mm, start, end, exec)
            .await
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        self.note(cx, "flush_cache_page");
        self.base().flush_cache_page(cx, mm, vpn, pfn, exec).await
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        self.note(cx, "flush_dcache_page");
        self.base().flush_dcache_page(cx, pfn).await
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        self.note(cx, "flush_anon_page");
        self.base().flush_anon_page(cx, mm, pfn, vpn).await
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        self.note(cx, "flush_kernel_vmap_range");
        self.base().flush_kernel_vmap_range(cx, va, len).await
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        self.note(cx, "invalidate_kernel_vmap_range");
        self.base().invalidate_kernel_vmap_range(cx, va, len).await
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        self.note(cx, "flush_cache_vmap");
        self.base().flush_cache_vmap(cx, start, end).await
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        self.note(cx, "flush_cache_vunmap");
        self.base().flush_cache_vunmap(cx, start, end).await
    }

    async fn flush_cache_kmaps<O: Arch>(&self, cx: &Cx<O>) {
        self.note(cx, "flush_cache_kmaps");
        self.base().flush_cache_kmaps(cx).await
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        self.note(cx, "flush_icache_range");
        self.base().flush_icache_range(cx, start, end).await
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        self.note(cx, "flush_icache_user_range");
        self.base().flush_icache_user_range(cx, start, end).await
    }

    async fn flush_icache_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn) {
        self.note(cx, "flush_icache_page");
        self.base().flush_icache_page(cx, mm, pfn).await
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        self.note(cx, "flush_dcache_folio");
        self.base().flush_dcache_folio(cx, pfn, nr).await
    }

    async fn flush_icache_pages<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, nr: u64) {
        self.note(cx, "flush_icache_pages");
        self.base().flush_icache_pages(cx, mm, pfn, nr).await
    }

    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        self.note(cx, "set_pte_at");
        self.base().set_pte_at(cx, mm, vpn, pte).await
    }

    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        self.note(cx, "update_mmu_cache");
        self.base().update_mmu_cache(cx, mm, vpn).await
    }

    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        self.note(cx, "set_ptes");
        self.base().set_ptes(cx, mm, vpn, pte, nr).await
    }

    async fn update_mmu_cache_range<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, nr: u64) {
        self.note(cx, "update_mmu_cache_range");
        self.base().update_mmu_cache_range(cx, mm, vpn, nr).await
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) {
        self.note(cx, "copy_user_highpage");
        self.base().copy_user_highpage(cx, to, from, vpn, mm).await
    }

    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, vpn: Vpn) {
        self.note(cx, "clear_user_highpage");
        self.base().clear_user_highpage(cx, pfn, vpn).await
    }

    async fn copy_user_page_done<O: Arch>(&self, cx: &Cx<O>, kto: Va, to: Pfn, vpn: Vpn) {
        self.note(cx, "copy_user_page_done");
        self.base().copy_user_page_done(cx, kto, to, vpn).await
    }

    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        self.note(cx, "copy_to_user_page");
        self.base().copy_to_user_page(cx, mm, pfn, vpn, off).await
    }

    async fn copy_from_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> Stamp {
        self.note(cx, "copy_from_user_page");
        self.base().copy_from_user_page(cx, mm, pfn, vpn, off).await
    }

    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        self.note(cx, "uprobe_copy_ixol");
        self.base()
            .uprobe_copy_ixol(cx, pfn, vpn, off, values)
            .await
    }

    fn flush_cache_range_syncs_icache<O: Arch>(&self, cx: &Cx<O>) -> bool {
        self.base().flush_cache_range_syncs_icache(cx)
    }

    async fn kunmap_flush_on_unmap<O: Arch>(&self, cx: &Cx<O>, va: Va) {
        self.note(cx, "kunmap_flush_on_unmap");
        self.base().kunmap_flush_on_unmap(cx, va).await
    }

    async fn kunmap_atomic_flush<O: Arch>(&self, cx: &Cx<O>, va: Va) {
        self.note(cx, "kunmap_atomic_flush");
        self.base().kunmap_atomic_flush(cx, va).await
    }

    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        self.note(cx, "sync_dma_for_device");
        self.base().sync_dma_for_device(cx, pa, len, dir).await
    }

    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        self.note(cx, "sync_dma_for_cpu");
        self.base().sync_dma_for_cpu(cx, pa, len, dir).await
    }

    async fn flush_tlb_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        self.note(cx, "flush_tlb_mm");
        self.base().flush_tlb_mm(cx, mm).await
    }

    async fn flush_tlb_range<O: Arch>(&self, cx: &Cx<O>, mm: MmId, start: Vpn, end: Vpn) {
        self.note(cx, "flush_tlb_range");
        self.base().flush_tlb_range(cx, mm, start, end).await
    }

    async fn flush_tlb_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        self.note(cx, "flush_tlb_page");
        self.base().flush_tlb_page(cx, mm, vpn).await
    }

    async fn flush_tlb_kernel_range<O: Arch>(&self, cx: &Cx<O>, start: Vpn, end: Vpn) {
        self.note(cx, "flush_tlb_kernel_range");
        self.base().flush_tlb_kernel_range(cx, start, end).await
    }

    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, shared: bool) -> u64 {
        self.base().mmap_colour_pages(cx, shared)
    }
}
