//! Code shared by the ARM implementations ([`super::vivt`], [`super::v6`] and [`super::v7`]), after
//! arch/arm/mm/flush.c, fault-armv.c and probes/uprobes/core.c: `flush_dcache_page` with the
//! lazy `PG_arch_1` scheme, the deferred flush done when a page is mapped, `make_coherent` for
//! shared aliases in one address space on VIVT, and the uprobes slot copy with its flush.

use super::generic::{colour_alias_op, kernel_alias_op, page_op, smp_scope};
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch};
use crate::addr::{MmId, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Pte, Scope};
use crate::world::{Cx, StoreKind};

/// SHMLBA on ARM: 4 pages, whatever the cache.
pub const SHMLBA_PAGES: u64 = 4;

/// Whether `mm` is live on this CPU (so its user lines may be in this CPU's VIVT cache).
pub fn live_here<A: Arch>(cx: &Cx<A>, mm: MmId) -> bool {
    cx.current_mm() == Some(mm)
}

/// `__flush_dcache_folio` (with `__flush_dcache_aliases` on VIVT) for the folio of `pfn`: the
/// kernel alias of each of its pages (a highmem page through a `kmap_local` mapping on a
/// non-aliasing cache, where any address reaches its lines, and through its pkmap address, if it
/// has one, otherwise); for a page-cache folio, on aliasing VIPT the user colour of the folio's
/// first page only (`flush_pfn_alias` at `folio_pos`: mainline flushes that one page's alias,
/// congruent with every shared mapping of it, and no other page's), on VIVT every shared user
/// mapping of its pages in the current address space.
pub async fn flush_dcache_page_now<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let (head, nr) = cx.folio(pfn);
    let nonaliasing = !cx.dcache_vivt() && !cx.dcache_aliases();
    for p in head..head + nr as Pfn {
        if nonaliasing && cx.linear_va(p).is_none() {
            let (k, how) = kmap::kmap_atomic(cx, p).await;
            page_op(cx, CacheOp::Flush, k, smp_scope(cx));
            kmap::kunmap_atomic(cx, k, how).await;
        } else {
            kernel_alias_op(cx, p, CacheOp::Flush).await;
        }
    }
    let Some(index) = page_index(cx, head) else {
        return;
    };
    let page = cx.page_size();
    if cx.dcache_vivt() {
        for p in head..head + nr as Pfn {
            for (mm, vpn, shared) in cx.user_mappings(p, cx.current_mm()) {
                if shared && live_here(cx, mm) {
                    page_op(cx, CacheOp::Flush, vpn * page, Scope::Local);
                }
            }
        }
    } else if cx.dcache_aliases() {
        colour_alias_op(cx, head, index * page, CacheOp::Flush);
    }
}

/// The file index of a page-cache page.
pub fn page_index<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Option<u64> {
    match cx.page_kind(pfn) {
        crate::kernel::PageKind::PageCache { index, .. } => Some(index as u64),
        _ => None,
    }
}

/// ARM `flush_dcache_page`: `flush_dcache_folio` of the page's folio.
pub async fn flush_dcache_page<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let (head, nr) = cx.folio(pfn);
    flush_dcache_folio(cx, head, nr).await;
}

/// ARM `flush_dcache_folio` of the `nr` pages from `pfn`. The zero page is never written, so
/// it is left alone. A non-aliasing cache whose maintenance reaches every CPU (broadcast, or UP)
/// only has the folio marked, whatever maps it: the I-side work waits for `__sync_icache_dcache`.
/// Otherwise a page-cache folio none of whose pages has a user mapping is only marked (when
/// maintenance is broadcast, or on UP); anything else is flushed now (with the I-cache, for a
/// page-cache folio on VIPT) and marked clean.
pub async fn flush_dcache_folio<A: Arch>(cx: &Cx<A>, pfn: Pfn, nr: u64) {
    if cx.page_kind(pfn) == crate::kernel::PageKind::Zero {
        return;
    }
    let nonaliasing = !cx.dcache_vivt() && !cx.dcache_aliases();
    if cx.cache_ops_broadcast() && nonaliasing {
        set_kernel_alias_clean(cx, pfn, false);
        return;
    }
    let file = cx.page_is_file(pfn);
    let mapped = (pfn..pfn + nr as Pfn).any(|p| !cx.user_mappings(p, None).is_empty());
    if cx.cache_ops_broadcast() && file && !mapped {
        set_kernel_alias_clean(cx, pfn, false);
        return;
    }
    flush_dcache_page_now(cx, pfn).await;
    if file && !cx.dcache_vivt() {
        cx.icache_all(Scope::AllCpus);
    }
    set_kernel_alias_clean(cx, pfn, true);
}

/// The deferred part, run when a page gets a user mapping (`__sync_icache_dcache` in
/// `set_pte_at`, or `update_mmu_cache` in older kernels): the whole folio of `pfn`, once.
pub async fn deferred_flush<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    if kernel_alias_maybe_dirty(cx, pfn) {
        flush_dcache_page_now(cx, pfn).await;
        set_kernel_alias_clean(cx, pfn, true);
    }
}

/// VIVT `make_coherent`: if this shared file page is mapped shared at another address of the
/// same address space, every such mapping is flushed and made uncacheable.
pub async fn make_coherent<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pte: Pte) {
    if !cx.vma(mm, vpn).is_some_and(|v| v.shared()) {
        return;
    }
    let aliases: Vec<Vpn> = cx
        .user_mappings(pte.pfn, Some(mm))
        .into_iter()
        .filter(|&(_, v, shared)| shared && v != vpn)
        .map(|(_, v, _)| v)
        .collect();
    if aliases.is_empty() {
        return;
    }
    let page = cx.page_size();
    for v in aliases.into_iter().chain(std::iter::once(vpn)) {
        let p = cx.pte(mm, v);
        if p.present && p.cacheable {
            page_op(cx, CacheOp::Flush, v * page, Scope::Local);
            cx.write_pte(
                Some(mm),
                v,
                Pte {
                    cacheable: false,
                    ..p
                },
            );
            cx.arch().flush_tlb_page(cx, mm, v).await;
        }
    }
    cx.note(|| {
        format!(
            "make_coherent: shared aliases of page {} made uncacheable",
            pte.pfn
        )
    });
}

/// ARM `arch_uprobe_copy_ixol`: the slot is written through `kmap_atomic` with preemption off,
/// then `flush_uprobe_xol_access` makes it executable.
pub async fn uprobe_copy_ixol<A: Arch>(cx: &Cx<A>, pfn: Pfn, vpn: Vpn, off: u64, values: &[Stamp]) {
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    cx.preempt_disable();
    let kaddr = k + off;
    cx.kstore_run(kaddr, values, false, StoreKind::Kernel);
    let uaddr = vpn * cx.page_size() + off;
    flush_uprobe_xol_access(cx, pfn, uaddr, kaddr, values.len() as u64).await;
    cx.preempt_enable();
    kmap::kunmap_atomic(cx, k, how).await;
}

/// `icache_is_vipt_aliasing`: a VIPT I-cache whose ways are larger than a page, so that
/// invalidation by one address misses the lines another colour filled.
pub fn icache_is_vipt_aliasing<A: Arch>(cx: &Cx<A>) -> bool {
    let g = cx.icache_geometry();
    !g.virtually_tagged() && g.aliases(cx.page_size() as u32)
}

/// `flush_uprobe_xol_access`: `__flush_ptrace_access` for an executable mapping of an address
/// space live on this CPU.
pub async fn flush_uprobe_xol_access<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    uaddr: Va,
    kaddr: Va,
    len: u64,
) {
    flush_ptrace_access(cx, pfn, uaddr, kaddr, len, true, true).await;
}

/// `__flush_ptrace_access` after `len` bytes of `pfn` were written through kernel address
/// `kaddr` for user address `uaddr`, in a VMA that is executable (`exec`), of an address space
/// whose `mm_cpumask` holds this CPU (`core_in_mm`). VIVT: `__cpuc_coherent_kern_range` of the
/// bytes written, only if the address space is live here. Aliasing VIPT: the lines of the user's
/// colour (`flush_pfn_alias`) and the whole I-cache; the kernel address written is left as it
/// is. Non-aliasing, executable only: `flush_icache_alias` (the I-side through a window at the
/// user's colour) on an aliasing VIPT I-cache, `__cpuc_coherent_kern_range` of the kernel
/// address otherwise, and every other CPU's I-cache by IPI when maintenance is not broadcast.
pub async fn flush_ptrace_access<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    uaddr: Va,
    kaddr: Va,
    len: u64,
    exec: bool,
    core_in_mm: bool,
) {
    if cx.dcache_vivt() {
        if core_in_mm {
            cx.arch().flush_icache_range(cx, kaddr, kaddr + len).await;
        }
        return;
    }
    if cx.dcache_aliases() {
        colour_alias_op(cx, pfn, uaddr, CacheOp::Flush);
        cx.icache_all(Scope::AllCpus);
        return;
    }
    if !exec {
        return;
    }
    if icache_is_vipt_aliasing(cx) {
        flush_icache_alias(cx, pfn, uaddr, len).await;
    } else {
        cx.arch().flush_icache_range(cx, kaddr, kaddr + len).await;
    }
    if !cx.cache_ops_broadcast() {
        cx.icache_all(Scope::AllCpus);
    }
}

/// `flush_icache_alias`: `flush_icache_range` of `len` bytes from `uaddr`'s offset, through a
/// kernel window onto `pfn` at `uaddr`'s colour.
pub async fn flush_icache_alias<A: Arch>(cx: &Cx<A>, pfn: Pfn, uaddr: Va, len: u64) {
    let page = cx.page_size();
    cx.preempt_disable();
    let w = cx.map_colour_window(0, uaddr, pfn);
    let to = w + uaddr % page;
    cx.arch().flush_icache_range(cx, to, to + len).await;
    cx.unmap_colour_window(w);
    cx.preempt_enable();
}
