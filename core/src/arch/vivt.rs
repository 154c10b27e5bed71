//! ARMv4/v5 and XScale VIVT caches, after arch/arm (`cache-v4wb`, `flush.c`, `fault-armv.c`,
//! `copypage-v4wb.c`, `dma-mapping.c`, `highmem.c`).
//!
//! Every alias is a separate line and user lines of different address spaces collide, so the
//! context switch flushes the whole cache, user-range operations act only when the address space
//! is live on this CPU, and shared writable aliases inside one address space are made uncached
//! (`make_coherent`). Kernel aliases are flushed by address: the linear map, pkmap slots
//! (`kmap_high_get`), fixmap slots on `kunmap_atomic`.

use super::arm::{self, live_here, SHMLBA_PAGES};
use super::generic::{self, page_op, smp_scope};
use super::null::Null;
use super::{Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// ARM VIVT (v4/v5, XScale).
#[derive(Clone, Copy, Debug, Default)]
pub struct ArmVivt;

pub fn flush_all<A: Arch>(cx: &Cx<A>) {
    cx.dcache_all(CacheOp::Flush, smp_scope(cx));
    cx.icache_all(smp_scope(cx));
}

impl Arch for ArmVivt {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "arm-vivt"
    }

    async fn switch_mm<O: Arch>(&self, cx: &Cx<O>, prev: Option<MmId>, next: MmId) {
        if prev != Some(next) {
            // cpu_switch_mm on v4/v5: clean and invalidate the caches, flush the TLB.
            cx.dcache_all(CacheOp::Flush, Scope::Local);
            cx.icache_all(Scope::Local);
            if let Some(p) = prev {
                cx.tlb_user(p, None, Scope::Local);
            }
        }
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        if live_here(cx, mm) {
            flush_all(cx);
        }
    }

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) {
        if live_here(cx, mm) {
            let page = cx.page_size();
            cx.dcache_range(CacheOp::Flush, start * page, end * page, Scope::Local);
            if exec {
                cx.icache_all(Scope::Local);
            }
        }
    }

    /// `vivt_flush_cache_range` (arch/arm/include/asm/cacheflush.h) cleans the VMA's user lines
    /// and, for an executable VMA, invalidates the I-cache, on the CPU the mm runs on (VIVT
    /// ARM is uniprocessor).
    fn flush_cache_range_syncs_icache<O: Arch>(&self, _cx: &Cx<O>) -> bool {
        true
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        _pfn: Pfn,
        exec: bool,
    ) {
        if live_here(cx, mm) {
            let page = cx.page_size();
            page_op(cx, CacheOp::Flush, vpn * page, Scope::Local);
            if exec {
                cx.icache_all(Scope::Local);
            }
        }
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        arm::flush_dcache_page(cx, pfn).await;
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        arm::flush_dcache_folio(cx, pfn, nr).await;
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        if !cx.page_is_anon(pfn) {
            return;
        }
        if live_here(cx, mm) {
            page_op(cx, CacheOp::Flush, vpn * cx.page_size(), Scope::Local);
        }
        if let Some(va) = cx.linear_va(pfn) {
            page_op(cx, CacheOp::Flush, va, Scope::Local);
        }
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        flush_all(cx);
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        flush_all(cx);
    }

    async fn flush_cache_kmaps<O: Arch>(&self, cx: &Cx<O>) {
        flush_all(cx);
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(smp_scope(cx));
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_range(start, end, smp_scope(cx));
    }

    async fn update_mmu_cache_range<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, _nr: u64) {
        // Once, for the first PTE: the deferred flush covers its whole folio, but the shared
        // aliases of the other pages are not made coherent.
        cx.arch().update_mmu_cache(cx, mm, vpn).await;
    }

    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        let pte = cx.pte(mm, vpn);
        // The zero page is never written, so it has no dirty line to flush.
        if !pte.present || cx.page_kind(pte.pfn) == crate::kernel::PageKind::Zero {
            return;
        }
        arm::deferred_flush(cx, pte.pfn).await;
        if cx.page_is_file(pte.pfn) {
            arm::make_coherent(cx, mm, vpn, pte).await;
        }
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) {
        // v4wb/xscale copypage: write back the source's user alias, copy through kernel
        // aliases, leave nothing dirty in the destination's kernel alias.
        cx.arch().flush_cache_page(cx, mm, vpn, from, false).await;
        arm::deferred_flush(cx, from).await;
        let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
        let (kto, ht) = kmap::kmap_atomic(cx, to).await;
        generic::copy_page(cx, kto, kfrom);
        page_op(cx, CacheOp::Flush, kto, Scope::Local);
        kmap::kunmap_atomic(cx, kto, ht).await;
        kmap::kunmap_atomic(cx, kfrom, hf).await;
    }

    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, _vpn: Vpn) {
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        generic::clear_page(cx, k);
        page_op(cx, CacheOp::Flush, k, Scope::Local);
        kmap::kunmap_atomic(cx, k, how).await;
    }

    /// `copy_to_user_page` (arch/arm/mm/flush.c): the store through the kernel mapping that
    /// `access_remote_vm` took, then `flush_ptrace_access`, which on VIVT cleans the bytes
    /// written and invalidates the I-cache only when this CPU is in the address space's
    /// `mm_cpumask`; the user's lines are left to GUP's `flush_anon_page`/`flush_dcache_page`
    /// before and to the context switch, which flushes both caches, after.
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

    async fn kunmap_atomic_flush<O: Arch>(&self, cx: &Cx<O>, va: Va) {
        page_op(cx, CacheOp::Flush, va, Scope::Local);
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
}
