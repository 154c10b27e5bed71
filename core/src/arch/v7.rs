//! ARMv7-A (Cortex-A9 and A15 class MP cores), after mainline Linux 6.18: the cache functions
//! of arch/arm/mm/cache-v7.S (`v7_coherent_kern_range`, `v7_coherent_user_range`,
//! `v7_dma_map_area`, `v7_dma_unmap_area`) and the streaming DMA of arch/arm/mm/dma-mapping.c
//! (`__dma_page_cpu_to_dev`, `__dma_page_dev_to_cpu`). Everything else is ARM's shared code, as
//! in mainline: flush.c, fault-armv.c and the highmem hooks come from [`super::v6`] and
//! [`super::arm`].
//!
//! An ARMv7 D-cache never aliases (PIPT, or VIPT whose way fits in a page), so the flush.c calls
//! take their non-aliasing branches: `flush_dcache_folio` only clears `PG_dcache_clean` when
//! maintenance reaches every CPU, `set_pte_at` (`__sync_icache_dcache`) settles a folio before
//! publishing an executable user entry and invalidates the whole I-cache, `update_mmu_cache`
//! does nothing, and ptrace and uprobes make the I-side coherent through the user's colour when
//! the I-cache is an aliasing VIPT one (`flush_icache_alias`). With the multiprocessing
//! extensions, maintenance by address is broadcast to the inner-shareable domain (a machine of
//! this arch should have `broadcast = "cache_and_tlb"`), and the cores fill both caches
//! speculatively through any valid translation (`speculation = "both"`).
//!
//! What differs from ARMv6:
//! - `flush_icache_range` cleans the D-cache lines of the range to the point of unification and
//!   invalidates the I-cache lines of the same addresses (`ICIMVAU`), not the whole I-cache: on
//!   an aliasing VIPT I-cache, code fetched through another colour than the address written
//!   keeps its old lines.
//! - Streaming DMA: before a transfer from the device the range is invalidated, the partly
//!   covered lines at either edge cleaned and invalidated (`v7_dma_inv_range`); before any other
//!   transfer it is cleaned; after a transfer the device may have written it is invalidated the
//!   same way, and each folio the transfer covered whole is marked `PG_dcache_clean`. A highmem
//!   page is reached through a `kmap_atomic` mapping, any address reaching its lines on a
//!   non-aliasing cache.

use super::generic::smp_scope;
use super::v6::ArmV6;
use super::{set_kernel_alias_clean, Arch};
use crate::addr::{Pa, Pfn, Va};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// ARMv7-A with a non-aliasing D-cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct ArmV7;

/// `v7_coherent_kern_range` / `v7_coherent_user_range`: the D-cache lines of `[start, end)`
/// cleaned to the point of unification, then the I-cache lines of the same addresses
/// invalidated (broadcast by the hardware on MP cores).
pub fn coherent_range<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    cx.dcache_range(CacheOp::Clean, start, end, Scope::Local);
    cx.icache_range(start, end, Scope::Local);
}

/// `dma_cache_maint_page` with a v7 cache function: every D-cache line physical range
/// `[pa, pa + len)` touches, through each page's linear address or, for highmem, a
/// `kmap_atomic` mapping (on an aliasing cache, the page's pkmap address if it has one:
/// `kmap_high_get`); `op` chooses each line's operation from whether the range covers it whole.
/// The loop may be preempted between lines of lowmem pages.
pub async fn dma_cache_maint<A: Arch>(cx: &Cx<A>, pa: Pa, len: u64, op: impl Fn(bool) -> CacheOp) {
    let line = cx.dcache_geometry().line as u64;
    let page = cx.page_size();
    let end = pa + len;
    let nonaliasing = !cx.dcache_vivt() && !cx.dcache_aliases();
    let scope = if cx.cache_ops_broadcast() {
        Scope::Local
    } else {
        smp_scope(cx)
    };
    let mut at = pa & !(line - 1);
    while at < end {
        let pfn = (at / page) as Pfn;
        let page_end = ((pfn as u64 + 1) * page).min(end);
        let lines = |cx: &Cx<A>, va: Va, mut at: u64| {
            while at < page_end {
                let whole = at >= pa && at + line <= end;
                cx.dcache_line(op(whole), va + at % page, scope);
                at += line;
            }
        };
        if let Some(va) = cx.linear_va(pfn) {
            while at < page_end {
                let whole = at >= pa && at + line <= end;
                cx.dcache_line(op(whole), va + at % page, scope);
                at += line;
                if at < end {
                    cx.step().await;
                }
            }
            continue;
        }
        if nonaliasing {
            let (k, how) = kmap::kmap_atomic(cx, pfn).await;
            lines(cx, k, at);
            kmap::kunmap_atomic(cx, k, how).await;
        } else if let Some(k) = kmap::kmap_high_get(cx, pfn).await {
            lines(cx, k, at);
            kmap::kunmap_high(cx, pfn).await;
        }
        at = page_end;
        if at < end {
            cx.step().await;
        }
    }
}

impl Arch for ArmV7 {
    type Base = ArmV6;

    fn base(&self) -> &ArmV6 {
        &ArmV6
    }

    fn name(&self) -> &'static str {
        "arm-v7"
    }

    /// Large folios: ARM selects `HAVE_ARCH_TRANSPARENT_HUGEPAGE` with `ARM_LPAE`, which ARMv7
    /// cores with the large physical address extension (Cortex-A7, A15, A17) run.
    fn transparent_hugepage(&self) -> bool {
        true
    }

    /// `flush_icache_range` (`__cpuc_coherent_kern_range`: `v7_coherent_kern_range`).
    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        coherent_range(cx, start, end);
    }

    /// The `cacheflush` system call (`__do_cache_op`: `flush_icache_user_range`, that is
    /// `v7_coherent_user_range`).
    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        coherent_range(cx, start, end);
    }

    /// `arch_sync_dma_for_device` (`__dma_page_cpu_to_dev` with `v7_dma_map_area`): a transfer
    /// from the device invalidates the range (`v7_dma_inv_range`: the partly covered edge lines
    /// cleaned and invalidated), any other cleans it (`v7_dma_clean_range`).
    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        if dir == DmaDir::FromDevice {
            dma_cache_maint(cx, pa, len, inv_range_op).await;
        } else {
            dma_cache_maint(cx, pa, len, |_| CacheOp::Clean).await;
        }
    }

    /// `arch_sync_dma_for_cpu` (`__dma_page_dev_to_cpu` with `v7_dma_unmap_area`): nothing after
    /// a transfer to the device; otherwise `v7_dma_inv_range`, and each folio the range covers
    /// whole is marked `PG_dcache_clean` (no line of it is left anywhere).
    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        if dir == DmaDir::ToDevice {
            return;
        }
        dma_cache_maint(cx, pa, len, inv_range_op).await;
        let page = cx.page_size();
        if len < page {
            return;
        }
        let (mut at, mut left) = (pa, len);
        loop {
            let (head, nr) = cx.folio((at / page) as Pfn);
            let offset = at - head as u64 * page;
            let size = nr * page - offset;
            if left < size {
                break;
            }
            if offset == 0 {
                set_kernel_alias_clean(cx, head, true);
            }
            left -= size;
            if left == 0 {
                break;
            }
            at += size;
        }
    }
}

/// `v7_dma_inv_range`'s operation on a line: invalidate one the range covers whole, clean and
/// invalidate one it covers in part.
fn inv_range_op(whole: bool) -> CacheOp {
    if whole {
        CacheOp::Invalidate
    } else {
        CacheOp::Flush
    }
}
