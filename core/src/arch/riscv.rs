//! RISC-V, after mainline Linux 6.17: arch/riscv/mm/cacheflush.c (`flush_icache_all`,
//! `flush_icache_mm`, `flush_icache_pte`), arch/riscv/include/asm/cacheflush.h and pgtable.h
//! (`__set_pte_at`), arch/riscv/mm/context.c (`switch_mm`, `flush_icache_deferred`),
//! arch/riscv/mm/dma-noncoherent.c with include/linux/dma-sync.h, and
//! arch/riscv/kernel/probes/uprobes.c.
//!
//! Harts keep their D-caches coherent (no D-cache flush API call does anything), but an
//! I-cache is made coherent with stores only by that hart's `fence.i`; other harts are reached
//! by IPI or SBI, and cache and TLB maintenance is never broadcast by hardware. Where the
//! kernel needs other harts' I-caches clean for one address space it does not interrupt the
//! harts that are not running it: `flush_icache_mm` marks every other hart stale in the
//! address space's `icache_stale_mask` (the `mm->context` word here), fences its own I-cache,
//! and sends a remote `fence.i` only to the other harts in `mm_cpumask`; a stale hart fences
//! when it next switches to that address space (`flush_icache_deferred`). Page-cache and
//! anonymous pages are synchronised lazily: `flush_dcache_folio` clears `PG_dcache_clean`,
//! `__set_pte_at` of an executable entry calls `flush_icache_pte`, which runs
//! `flush_icache_mm` of the mapping's address space once per folio and marks it clean.
//!
//! Non-coherent DMA goes through the Zicbom cache-block operations: every direction is cleaned
//! before the device gets the buffer (`arch_sync_dma_clean_before_fromdevice`), and what the
//! device may have written is invalidated afterwards (`arch_sync_dma_cpu_needs_post_dma_flush`).
//!
//! The ASID allocator is taken to be in use, so `switch_mm` never clears a hart from the
//! previous address space's `mm_cpumask` (the model's mask only grows).

use super::generic::{self, dma_lines};
use super::null::Null;
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Pte, Scope};
use crate::op::DmaDir;
use crate::world::{Cx, StoreKind};

/// RISC-V with coherent D-caches, I-caches kept by `fence.i`, and non-coherent DMA.
#[derive(Clone, Copy, Debug, Default)]
pub struct Riscv;

/// `local_flush_icache_all`: `fence.i` on this hart.
pub fn local_flush_icache_all<A: Arch>(cx: &Cx<A>) {
    cx.icache_all(Scope::Local);
}

/// `flush_icache_all`: `fence.i` here and on every other hart (SBI or IPI).
pub fn flush_icache_all<A: Arch>(cx: &Cx<A>) {
    cx.icache_all(Scope::AllCpus);
}

/// `flush_icache_mm`: every hart but this one marked stale for `mm`, this hart fenced, and the
/// other harts in `mm_cpumask(mm)` fenced by remote `fence.i`, unless `mm` is the one running
/// here and the caller asked for a local flush (or no other hart has run `mm`).
pub fn flush_icache_mm<A: Arch>(cx: &Cx<A>, mm: MmId, local: bool) {
    cx.preempt_disable();
    let cpu = cx.cpu();
    let all = (1u64 << cx.ncpus()) - 1;
    cx.set_mm_context(mm, all & !(1 << cpu));
    local_flush_icache_all(cx);
    let others = u64::from(cx.mm_cpumask(mm)) & !(1 << cpu);
    let local = local || others == 0;
    if !(cx.current_mm() == Some(mm) && local) {
        cx.on_each_cpu(|c| {
            if others & (1 << c.cpu()) != 0 {
                local_flush_icache_all(c);
            }
        });
    }
    cx.preempt_enable();
}

/// `flush_icache_pte`: a folio not yet known clean gets `flush_icache_mm(mm, false)` and is
/// marked clean.
pub fn flush_icache_pte<A: Arch>(cx: &Cx<A>, mm: MmId, pte: Pte) {
    let (head, _) = cx.folio(pte.pfn);
    if kernel_alias_maybe_dirty(cx, head) {
        flush_icache_mm(cx, mm, false);
        set_kernel_alias_clean(cx, head, true);
    }
}

impl Arch for Riscv {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "riscv"
    }

    /// `switch_mm` with `flush_icache_deferred`: a hart marked stale for `next` clears its bit
    /// and fences its I-cache before running it.
    async fn switch_mm<O: Arch>(&self, cx: &Cx<O>, _prev: Option<MmId>, next: MmId) {
        let bit = 1u64 << cx.cpu();
        let stale = cx.mm_context(next);
        if stale & bit != 0 {
            cx.set_mm_context(next, stale & !bit);
            local_flush_icache_all(cx);
        }
    }

    /// `flush_dcache_page`: `flush_dcache_folio` of its folio.
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        set_kernel_alias_clean(cx, pfn, false);
    }

    /// `flush_dcache_folio`: clears `PG_dcache_clean`.
    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, _nr: u64) {
        set_kernel_alias_clean(cx, pfn, false);
    }

    /// `__set_pte_at`: `flush_icache_pte` for a present executable entry, then the write.
    /// (`set_ptes` is `__set_pte_at` of each entry, the generic default.)
    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        if pte.present && pte.exec {
            flush_icache_pte(cx, mm, pte);
        }
        cx.write_pte(Some(mm), vpn, pte);
    }

    /// The generic `copy_to_user_page`: the write through a kernel mapping, then
    /// `flush_icache_user_page`: `flush_icache_mm(mm, false)` when the VMA is executable.
    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        generic::copy_to_user_page(cx, pfn, vpn, off).await;
        if cx.vma(mm, vpn).is_some_and(|vma| vma.exec) {
            flush_icache_mm(cx, mm, false);
        }
    }

    /// `arch_uprobe_copy_ixol`: the slot written through `kmap_atomic`, then
    /// `flush_icache_range` of it, which is `flush_icache_all`.
    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        _vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        cx.kstore_run(k + off, values, false, StoreKind::Kernel);
        flush_icache_all(cx);
        kmap::kunmap_atomic(cx, k, how).await;
    }

    /// `flush_icache_range`: `flush_icache_all` (RISC-V cannot fence part of an I-cache).
    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        flush_icache_all(cx);
    }

    /// The `riscv_flush_icache` system call without `SYS_RISCV_FLUSH_ICACHE_LOCAL`:
    /// `flush_icache_mm` of the caller's address space.
    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        if let Some(mm) = cx.current_mm() {
            flush_icache_mm(cx, mm, false);
        }
    }

    /// `arch_sync_dma_for_device` (dma-sync.h with clean-before-from-device and a post-DMA
    /// invalidation): every direction is written back.
    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, _dir: DmaDir) {
        dma_lines(cx, pa, len, Scope::AllCpus, |_| CacheOp::Clean).await;
    }

    /// `arch_sync_dma_for_cpu`: what the device may have written is invalidated.
    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        if dir == DmaDir::ToDevice {
            return;
        }
        dma_lines(cx, pa, len, Scope::AllCpus, |_| CacheOp::Invalidate).await;
    }

    /// Large folios: RISC-V selects `HAVE_ARCH_TRANSPARENT_HUGEPAGE` on 64-bit kernels.
    fn transparent_hugepage(&self) -> bool {
        true
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheClean
    }
}
