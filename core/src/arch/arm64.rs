//! arm64 (AArch64), after mainline Linux 6.18: arch/arm64/mm/flush.c, copypage.c,
//! dma-mapping.c, arch/arm64/include/asm/cacheflush.h and pgtable.h (`__set_ptes`,
//! `__sync_cache_and_tags`), arch/arm64/kernel/probes/uprobes.c.
//!
//! The D-cache never aliases (PIPT, or VIPT whose way fits in a page), so every call that only
//! concerns D-cache aliases is the generic no-op: `flush_cache_mm`, `flush_cache_range`,
//! `flush_cache_page`, `flush_anon_page`, the vmap-range and vmap/vunmap calls. What remains is
//! the I-cache, which does not snoop, and non-coherent DMA:
//! - `flush_dcache_page`/`flush_dcache_folio` only clear `PG_dcache_clean` (`PG_arch_1`, the
//!   "known clean" polarity); the work is deferred to `set_pte_at`/`set_ptes`, which run
//!   `__sync_icache_dcache` before publishing a user-executable entry: the folio's linear alias
//!   is cleaned to the point of unification and the I-cache invalidated over it, once, and the
//!   folio marked clean.
//! - `copy_user_highpage` copies through the linear map and then calls `flush_dcache_page` of
//!   the destination.
//! - `copy_to_user_page` (ptrace), `arch_uprobe_copy_ixol` and `flush_icache_range` run
//!   `sync_icache_aliases` / `caches_clean_inval_pou` over the kernel address written; on an
//!   aliasing VIPT I-cache (`icache_is_aliasing`) the I-side part is a whole-cache invalidation
//!   on every CPU, since the user fetches through another colour.
//! - Streaming DMA (`arch_sync_dma_for_device` / `arch_sync_dma_for_cpu`): the range is
//!   cleaned before the device sees it, whatever the direction; after a transfer the device
//!   may have written, it is invalidated (`dcache_inval_poc`, which cleans and invalidates the
//!   partly covered lines at either edge).
//!
//! - Where `CTR_EL0` says the hardware needs less (`ARM64_HAS_CACHE_IDC`: instruction fills see
//!   the D-cache, no clean to the point of unification; `ARM64_HAS_CACHE_DIC`: the I-cache is
//!   coherent, no invalidation), `dcache_clean_pou`, `caches_clean_inval_pou` and
//!   `icache_inval_all_pou` leave that half out; the machine's I-cache coherence stands for the
//!   two bits (`fills_from_dcache`: IDC; `snooping`: IDC and DIC).
//!
//! Cache and TLB maintenance by address is broadcast to the inner-shareable domain, so an
//! arm64 machine must broadcast (`broadcast = "cache_and_tlb"`); whole-I-cache invalidation is
//! `IC IALLUIS`, every CPU. The speculative fills any valid translation may cause (D and I) are
//! the machine's (`speculation = "both"`).

use super::generic::{self, dma_lines};
use super::null::Null;
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, IcacheCoherence, Pte, Scope};
use crate::op::DmaDir;
use crate::world::{Cx, StoreKind};

/// arm64 with a non-aliasing D-cache and a non-snooping I-cache.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arm64;

/// `icache_is_aliasing`: whether the I-cache is VIPT with ways larger than a page (or VIVT),
/// so that invalidation by one address misses the lines another alias filled.
pub fn icache_is_aliasing<A: Arch>(cx: &Cx<A>) -> bool {
    let g = cx.icache_geometry();
    g.virtually_tagged() || g.aliases(cx.page_size() as u32)
}

/// `ARM64_HAS_CACHE_IDC` (`CTR_EL0.IDC`): instruction fills see data the D-cache holds, so no
/// clean to the point of unification is needed for the I-side (an I-cache that fills from the
/// D-cache, or one that snoops).
pub fn has_cache_idc<A: Arch>(cx: &Cx<A>) -> bool {
    cx.icache_fills_from_dcache()
}

/// `ARM64_HAS_CACHE_DIC` (`CTR_EL0.DIC`): the I-cache is kept coherent with data by hardware,
/// so no I-cache invalidation is needed (an I-cache that snoops).
pub fn has_cache_dic<A: Arch>(cx: &Cx<A>) -> bool {
    cx.st().m.config().icache_coherence == IcacheCoherence::Snooping
}

/// `dcache_clean_pou`: the D-cache lines of `[start, end)` cleaned to the point of
/// unification, unless `CTR_EL0.IDC` makes that needless.
pub fn dcache_clean_pou<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    if !has_cache_idc(cx) {
        cx.dcache_range(CacheOp::Clean, start, end, Scope::Local);
    }
}

/// `icache_inval_all_pou`: every CPU's I-cache invalidated (`IC IALLUIS`), unless
/// `CTR_EL0.DIC` makes that needless.
pub fn icache_inval_all_pou<A: Arch>(cx: &Cx<A>) {
    if !has_cache_dic(cx) {
        cx.icache_all(Scope::AllCpus);
    }
}

/// `caches_clean_inval_pou`: the D-cache lines of `[start, end)` cleaned to the point of
/// unification, then the I-cache lines of the same addresses invalidated (both broadcast);
/// each half left out where `CTR_EL0.IDC` or `.DIC` makes it needless.
pub fn caches_clean_inval_pou<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    dcache_clean_pou(cx, start, end);
    if !has_cache_dic(cx) {
        cx.icache_range(start, end, Scope::Local);
    }
}

/// `sync_icache_aliases`: make the I-side see what was written to `[start, end)` through a
/// kernel address, whatever address the code will be fetched through.
pub fn sync_icache_aliases<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    if icache_is_aliasing(cx) {
        dcache_clean_pou(cx, start, end);
        icache_inval_all_pou(cx);
    } else {
        caches_clean_inval_pou(cx, start, end);
    }
}

/// `__sync_icache_dcache`, from `__sync_cache_and_tags` for a present user-executable entry:
/// a folio not yet known clean is synchronised over its linear alias, once, and marked clean.
/// A highmem frame (no linear alias; arm64 has no highmem) is left alone.
pub fn sync_icache_dcache<A: Arch>(cx: &Cx<A>, pte: Pte) {
    if !pte.present || !pte.exec {
        return;
    }
    let (head, nr) = cx.folio(pte.pfn);
    if !kernel_alias_maybe_dirty(cx, head) {
        return;
    }
    if let Some(start) = cx.linear_va(head) {
        sync_icache_aliases(cx, start, start + nr * cx.page_size());
    }
    set_kernel_alias_clean(cx, head, true);
}

impl Arch for Arm64 {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "arm64"
    }

    /// `flush_dcache_page`: `flush_dcache_folio` of the page's folio (whose flag lives in its
    /// first page).
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        set_kernel_alias_clean(cx, pfn, false);
    }

    /// `flush_dcache_folio`: clears `PG_dcache_clean`, nothing more.
    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, _nr: u64) {
        set_kernel_alias_clean(cx, pfn, false);
    }

    /// `__set_ptes` of one entry.
    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        sync_icache_dcache(cx, pte);
        cx.write_pte(Some(mm), vpn, pte);
    }

    /// `__set_ptes`: `__sync_cache_and_tags` once, for the first entry's folio, then every
    /// entry.
    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        sync_icache_dcache(cx, pte);
        for i in 0..nr {
            let p = Pte {
                pfn: pte.pfn + i as Pfn,
                ..pte
            };
            cx.write_pte(Some(mm), vpn + i, p);
        }
    }

    /// `copy_user_highpage`: `copy_highpage` through the kernel mappings, then
    /// `flush_dcache_page` of the destination.
    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        generic::copy_user_highpage(cx, to, from, vpn).await;
        cx.arch().flush_dcache_page(cx, to).await;
    }

    /// `copy_to_user_page`: the write through the kernel mapping, then `flush_ptrace_access`:
    /// `sync_icache_aliases` of the bytes written when the VMA is executable.
    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        let k = kmap::kmap(cx, pfn).await;
        let v = cx.fresh();
        cx.kstore(k + off, v, false);
        if cx.vma(mm, vpn).is_some_and(|vma| vma.exec) {
            sync_icache_aliases(cx, k + off, k + off + 1);
        }
        kmap::kunmap(cx, pfn).await;
    }

    /// `arch_uprobe_copy_ixol`: the slot written through `kmap_atomic`, then
    /// `sync_icache_aliases` of the bytes written.
    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        _vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        let dst = k + off;
        cx.kstore_run(dst, values, false, StoreKind::Kernel);
        sync_icache_aliases(cx, dst, dst + values.len() as u64);
        kmap::kunmap_atomic(cx, k, how).await;
    }

    /// `flush_icache_range`: `caches_clean_inval_pou`, then `kick_all_cpus_sync` (a context
    /// synchronisation on every CPU, which the model needs no step for).
    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        caches_clean_inval_pou(cx, start, end);
    }

    /// What user space does on arm64 instead of a system call (`DC CVAU`, `IC IVAU` over the
    /// range, as `caches_clean_inval_user_pou` does for compat tasks' `cacheflush`).
    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        caches_clean_inval_pou(cx, start, end);
    }

    /// `arch_sync_dma_for_device`: `dcache_clean_poc` of the range, whatever the direction.
    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, _dir: DmaDir) {
        dma_lines(cx, pa, len, Scope::Local, |_| CacheOp::Clean).await;
    }

    /// `arch_sync_dma_for_cpu`: nothing for `DMA_TO_DEVICE`; otherwise `dcache_inval_poc`,
    /// which cleans and invalidates a line the range covers only in part and invalidates the
    /// others.
    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        if dir == DmaDir::ToDevice {
            return;
        }
        dma_lines(cx, pa, len, Scope::Local, |whole| {
            if whole {
                CacheOp::Invalidate
            } else {
                CacheOp::Flush
            }
        })
        .await;
    }

    /// Large folios: arm64 always selects `HAVE_ARCH_TRANSPARENT_HUGEPAGE`.
    fn transparent_hugepage(&self) -> bool {
        true
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheClean
    }
}
