//! Building blocks shared by arch implementations: the generic `copy_user_highpage` and
//! `clear_user_highpage` (colour-blind, through `kmap_atomic`), the generic
//! `copy_to_user_page`, maintenance of a page's kernel alias, of a user alias through a colour
//! window, and streaming-DMA maintenance through the kernel alias.

use super::Arch;
use crate::addr::{Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// The generic `copy_user_highpage`: maps both pages with `kmap_atomic` at whatever address
/// that gives, copies through those aliases, and lets the arch's `copy_user_page_done` flush the
/// destination's kernel alias.
pub async fn copy_user_highpage<A: Arch>(cx: &Cx<A>, to: Pfn, from: Pfn, vpn: Vpn) {
    let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
    let (kto, ht) = kmap::kmap_atomic(cx, to).await;
    copy_page(cx, kto, kfrom);
    cx.arch().copy_user_page_done(cx, kto, to, vpn).await;
    kmap::kunmap_atomic(cx, kto, ht).await;
    kmap::kunmap_atomic(cx, kfrom, hf).await;
}

/// Copies one page from kernel address `kfrom` to kernel address `kto`: every source byte is a
/// checked kernel read, every destination byte a logical write of the value read.
pub fn copy_page<A: Arch>(cx: &Cx<A>, kto: Va, kfrom: Va) {
    cx.kcopy(kto, kfrom, cx.page_size());
}

/// The generic `clear_user_highpage`: `kmap_atomic`, fresh zeros, `copy_user_page_done`.
pub async fn clear_user_highpage<A: Arch>(cx: &Cx<A>, pfn: Pfn, vpn: Vpn) {
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    clear_page(cx, k);
    cx.arch().copy_user_page_done(cx, k, pfn, vpn).await;
    kmap::kunmap_atomic(cx, k, how).await;
}

/// Fills the page at kernel address `k` with fresh values (zeros, as far as anyone can tell).
/// Fresh anonymous memory is data: executing it before the user's cacheflush is undefined, so
/// the zeros are user data for the oracle's I-side rule.
pub fn clear_page<A: Arch>(cx: &Cx<A>, k: Va) {
    let zeros: Vec<_> = (0..cx.page_size()).map(|_| cx.fresh()).collect();
    cx.kstore_run(k, &zeros, false, crate::world::StoreKind::UserData);
}

/// The generic `copy_to_user_page` for coherent hardware: writes through a kmap.
pub async fn copy_to_user_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, _vpn: Vpn, off: u64) {
    let k = kmap::kmap(cx, pfn).await;
    let v = cx.fresh();
    cx.kstore(k + off, v, false);
    kmap::kunmap(cx, pfn).await;
}

/// The generic `copy_from_user_page`: reads through a kmap.
pub async fn copy_from_user_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, _vpn: Vpn, off: u64) -> Stamp {
    let k = kmap::kmap(cx, pfn).await;
    let v = cx.kload(k + off);
    kmap::kunmap(cx, pfn).await;
    v
}

/// The generic `arch_uprobe_copy_ixol` (`kernel/events/uprobes.c`): copies the slot through
/// `kmap_atomic`, then `flush_dcache_page` of the page.
pub async fn uprobe_copy_ixol<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    _vpn: Vpn,
    off: u64,
    values: &[Stamp],
) {
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    cx.kstore_run(k + off, values, false, crate::world::StoreKind::Kernel);
    kmap::kunmap_atomic(cx, k, how).await;
    cx.arch().flush_dcache_page(cx, pfn).await;
}

/// `pages_do_alias` (MIPS, SH): whether two addresses have different D-cache colours.
pub fn pages_do_alias<A: Arch>(cx: &Cx<A>, a: Va, b: Va) -> bool {
    cx.dcache_aliases() && !cx.congruent(a, b)
}

/// `folio_mapped`: whether a page of the folio of `pfn` has a user mapping.
pub fn folio_mapped<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> bool {
    let (head, nr) = cx.folio(pfn);
    (head..head + nr as Pfn).any(|p| !cx.user_mappings(p, None).is_empty())
}

/// Maintenance of every line of page-sized range `[va, va + page)`, in one step.
pub fn page_op<A: Arch>(cx: &Cx<A>, op: CacheOp, va: Va, scope: Scope) {
    let page = cx.page_size();
    cx.dcache_range(op, va, va + page, scope);
}

/// The scope whole-CPU maintenance needs on this machine: every CPU when maintenance is not
/// broadcast by hardware (the kernel uses IPIs then), else local-and-broadcast.
pub fn smp_scope<A: Arch>(cx: &Cx<A>) -> Scope {
    if cx.ncpus() > 1 {
        Scope::AllCpus
    } else {
        Scope::Local
    }
}

/// Maintenance of a page's kernel alias: the linear map for lowmem, the pkmap address (pinned
/// with `kmap_high_get`) for kmapped highmem; an unmapped highmem page is assumed to have no
/// lines there.
pub async fn kernel_alias_op<A: Arch>(cx: &Cx<A>, pfn: Pfn, op: CacheOp) {
    let scope = smp_scope(cx);
    if let Some(va) = cx.linear_va(pfn) {
        page_op(cx, op, va, scope);
        return;
    }
    if let Some(va) = kmap::kmap_high_get(cx, pfn).await {
        page_op(cx, op, va, scope);
        kmap::kunmap_high(cx, pfn).await;
    }
}

/// Maintenance of the lines a user mapping at `like_va`'s colour would use for `pfn`, through a
/// colour window (ARM `flush_pfn_alias`, MIPS `kmap_coherent`, PA-RISC tmpalias).
pub fn colour_alias_op<A: Arch>(cx: &Cx<A>, pfn: Pfn, like_va: Va, op: CacheOp) {
    cx.preempt_disable();
    let w = cx.map_colour_window(0, like_va, pfn);
    page_op(cx, op, w, smp_scope(cx));
    cx.unmap_colour_window(w);
    cx.preempt_enable();
}

/// Streaming-DMA maintenance of physical range `[pa, pa + len)` through each page's kernel
/// alias, on the device's side of the transfer (`for_device`: mapping or syncing for the device)
/// or the CPU's, with the operation the direction calls for on every line, including lines the
/// range covers only partly (see [`dma_lines`]).
pub async fn dma_maint<A: Arch>(cx: &Cx<A>, pa: Pa, len: u64, dir: DmaDir, for_device: bool) {
    let op = match (for_device, dir) {
        (true, DmaDir::ToDevice) => CacheOp::Clean,
        (true, DmaDir::FromDevice) => CacheOp::Invalidate,
        (true, DmaDir::Bidirectional) => CacheOp::Flush,
        (false, DmaDir::ToDevice) => return,
        (false, _) => CacheOp::Invalidate,
    };
    let scope = if cx.cache_ops_broadcast() {
        Scope::Local
    } else {
        Scope::AllCpus
    };
    dma_lines(cx, pa, len, scope, |_| op).await;
}

/// Maintenance of every D-cache line physical range `[pa, pa + len)` touches, through each
/// page's kernel alias, one line per step (the loop is preemptible): `op` chooses each line's
/// operation from whether the range covers the line whole. Highmem pages are reached through
/// `kmap_high_get`, or through `page_address` without a pin when the historical switch says
/// so; an unmapped highmem page is skipped.
pub async fn dma_lines<A: Arch>(
    cx: &Cx<A>,
    pa: Pa,
    len: u64,
    scope: Scope,
    op: impl Fn(bool) -> CacheOp,
) {
    let line = cx.dcache_geometry().line as u64;
    let page = cx.page_size();
    let end = pa + len;
    // The first line of the range; each page's lines then run up to the range's end.
    let mut at = pa & !(line - 1);
    while at < end {
        let pfn = (at / page) as Pfn;
        let page_end = ((pfn as u64 + 1) * page).min(end);
        let (va, pinned) = match cx.linear_va(pfn) {
            Some(va) => (Some(va), false),
            None => {
                if cx.switches().dma_page_address_unpinned {
                    (cx.page_address(pfn), false)
                } else {
                    (kmap::kmap_high_get(cx, pfn).await, true)
                }
            }
        };
        let Some(va) = va else {
            at = (pfn as u64 + 1) * page;
            continue;
        };
        while at < page_end {
            let whole = at >= pa && at + line <= end;
            cx.dcache_line(op(whole), va + at % page, scope);
            at += line;
            if at < end {
                cx.step().await;
            }
        }
        if pinned {
            kmap::kunmap_high(cx, pfn).await;
        }
    }
}
