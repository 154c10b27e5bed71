//! Code shared by the two ARM implementations ([`super::vivt`] and [`super::v6`]), after
//! arch/arm/mm/flush.c, fault-armv.c and probes/uprobes/core.c: `flush_dcache_page` with the
//! lazy `PG_arch_1` scheme, the deferred flush done when a page is mapped, `make_coherent` for
//! shared aliases in one address space on VIVT, and the uprobes slot copy with its flush.

use super::generic::{colour_alias_op, kernel_alias_op, page_op};
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
/// kernel alias of each of its pages; for a page-cache folio, on aliasing VIPT the user colour
/// of the folio's first page only (`flush_pfn_alias` at `folio_pos`: mainline flushes that one
/// page's alias, congruent with every shared mapping of it, and no other page's), on VIVT every
/// shared user mapping of its pages in the current address space.
pub async fn flush_dcache_page_now<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let (head, nr) = cx.folio(pfn);
    for p in head..head + nr as Pfn {
        kernel_alias_op(cx, p, CacheOp::Flush).await;
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
    } else {
        if cx.dcache_aliases() {
            colour_alias_op(cx, head, index * page, CacheOp::Flush);
        }
        cx.icache_all(Scope::AllCpus);
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

/// ARM `flush_dcache_folio` of the `nr` pages from `pfn`: a page-cache folio none of whose
/// pages has a user mapping is only marked (when maintenance is broadcast, or on UP); anything
/// else is flushed now and marked clean.
pub async fn flush_dcache_folio<A: Arch>(cx: &Cx<A>, pfn: Pfn, nr: u64) {
    let file = cx.page_is_file(pfn);
    let mapped = (pfn..pfn + nr as Pfn).any(|p| !cx.user_mappings(p, None).is_empty());
    if cx.cache_ops_broadcast() && file && !mapped {
        set_kernel_alias_clean(cx, pfn, false);
        return;
    }
    flush_dcache_page_now(cx, pfn).await;
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

/// `flush_uprobe_xol_access`: `__flush_ptrace_access` for an executable mapping of an address
/// space live on this CPU. VIVT: `__cpuc_coherent_kern_range` (what `flush_icache_range` is) of
/// the kernel address written. Aliasing VIPT: the lines of the user's colour
/// (`flush_pfn_alias`) and the whole I-cache; the kernel address written is left as it is.
/// Non-aliasing: `__cpuc_coherent_kern_range` of the kernel address, and every other CPU's
/// I-cache by IPI when maintenance is not broadcast.
pub async fn flush_uprobe_xol_access<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    uaddr: Va,
    kaddr: Va,
    len: u64,
) {
    if cx.dcache_vivt() {
        cx.arch().flush_icache_range(cx, kaddr, kaddr + len).await;
        return;
    }
    if cx.dcache_aliases() {
        colour_alias_op(cx, pfn, uaddr, CacheOp::Flush);
        cx.icache_all(Scope::AllCpus);
        return;
    }
    cx.arch().flush_icache_range(cx, kaddr, kaddr + len).await;
    if !cx.cache_ops_broadcast() {
        cx.icache_all(Scope::AllCpus);
    }
}
