//! Swap of anonymous pages: reclaim writing a page out to the swap device (`shrink_folio_list`:
//! `add_to_swap`, `try_to_unmap`, `swap_writepage`, `__remove_mapping`), reading it back into
//! the swap cache (`read_swap_cache_async`, also ahead of a fault by `madvise(MADV_WILLNEED)`),
//! and the fault that maps it again (`do_swap_page`).
//!
//! The swap device is a few slots of [`super::SwapSlot`], each a page's contents on disk (one
//! stamp per byte, like a file's disk) with the count of swap PTEs referring to it and its
//! swap-cache page. The device reads and writes the pages by streaming DMA through the
//! [`super::dma`] helpers. A page of the swap cache is locked (`io_pin`) while its I/O runs;
//! faults on its swap PTEs wait for it.

use super::fault::install_pte;
use super::{
    alloc_page, dma, get_page, mutex_lock, mutex_unlock, nth_user_page, put_page, KernelState,
    PageKind, SwapPte, Vma,
};
use crate::addr::{MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::op::DmaDir;
use crate::world::Cx;

/// `copy_nonpresent_pte` at fork: the child gets the parent's swap or migration entry of
/// `vpn`. A swap entry takes a reference on its slot (`swap_duplicate`); a writable migration
/// entry of a copy-on-write mapping becomes read-only in both.
pub fn copy_nonpresent_pte<A: Arch>(cx: &Cx<A>, parent: MmId, child: MmId, vpn: Vpn, cow: bool) {
    let mut st = cx.st();
    let Some(entry) = st.k.mms[parent as usize].swap_pte(vpn) else {
        return;
    };
    let entry = match entry {
        SwapPte::Swap(slot) => {
            st.k.swap[slot as usize].count += 1;
            entry
        }
        SwapPte::Migration { pfn, write } => {
            let write = write && !cow;
            let read_only = SwapPte::Migration { pfn, write };
            for e in &mut st.k.mms[parent as usize].swap_ptes {
                if e.0 == vpn {
                    e.1 = read_only;
                }
            }
            read_only
        }
    };
    st.k.mms[child as usize].swap_ptes.push((vpn, entry));
}

/// Drops the swap and migration entries of pages `[start, end)` of `mm` (`zap_pte_range`): a
/// swap entry's slot loses a reference (`free_swap_and_cache`).
pub fn zap_swap_ptes<A: Arch>(cx: &Cx<A>, mm: MmId, start: Vpn, end: Vpn) {
    let gone: Vec<SwapPte> = {
        let mut st = cx.st();
        let m = &mut st.k.mms[mm as usize];
        if m.swap_ptes.is_empty() {
            return;
        }
        let gone = m
            .swap_ptes
            .iter()
            .filter(|(v, _)| (start..end).contains(v))
            .map(|&(_, e)| e)
            .collect();
        m.swap_ptes.retain(|(v, _)| !(start..end).contains(v));
        gone
    };
    for e in gone {
        if let SwapPte::Swap(slot) = e {
            swap_free(cx, slot);
        }
    }
}

/// Drops one swap PTE's reference on `slot`; the last one frees the slot and, when it is not
/// locked or under I/O (`folio_trylock`), its swap-cache page (`free_swap_and_cache`).
pub fn swap_free<A: Arch>(cx: &Cx<A>, slot: u8) {
    let cached = {
        let mut st = cx.st();
        let s = &mut st.k.swap[slot as usize];
        s.count -= 1;
        let (count, cache) = (s.count, s.cache);
        match cache {
            Some(pfn)
                if count == 0
                    && st.k.pages[pfn as usize].io_pin == 0
                    && !st.k.pages[pfn as usize].locked =>
            {
                Some(pfn)
            }
            _ => None,
        }
    };
    if let Some(pfn) = cached {
        delete_from_swap_cache(cx, pfn);
    }
}

/// Takes page `pfn` out of the swap cache, dropping the cache's reference.
pub fn delete_from_swap_cache<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    {
        let mut st = cx.st();
        let slot = st.k.pages[pfn as usize]
            .swap
            .take()
            .expect("a page of the swap cache");
        st.k.swap[slot as usize].cache = None;
    }
    put_page(cx, pfn);
}

/// Whether frame `pfn` is an anonymous page reclaim may write out: on the LRU (mapped, or in
/// the swap cache), not a KSM page, not locked or under I/O.
fn reclaimable(st: &crate::world::State, pfn: Pfn) -> bool {
    let p = &st.k.pages[pfn as usize];
    p.kind == PageKind::Anon
        && !p.ksm
        && !p.isolated
        && p.io_pin == 0
        && !st.o.device_owned(pfn)
        && (!p.rmap.is_empty() || p.swap.is_some())
}

/// The `n`-th anonymous page reclaim may write out (modulo their number).
fn nth_reclaimable<A: Arch>(cx: &Cx<A>, n: u8) -> Option<Pfn> {
    let st = cx.st();
    let pages: Vec<Pfn> = (0..st.k.pages.len() as Pfn)
        .filter(|&p| reclaimable(&st, p))
        .collect();
    (!pages.is_empty()).then(|| pages[n as usize % pages.len()])
}

/// `try_to_unmap_one` (`try_to_migrate_one` for a migration entry): replaces `mm`'s mapping of
/// `pfn` at `vpn` with `entry`. The user alias is flushed first (`flush_cache_page`), then the
/// PTE is cleared and the TLB flushed (`ptep_clear_flush`), all under the page-table lock. The
/// mmap lock the model takes around it stands for the lock's re-check of the PTE. An anonymous
/// page pinned since it was chosen (GUP for direct I/O) is mapped again and kept. Returns
/// whether the mapping was replaced.
pub async fn try_to_unmap_one<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    mm: MmId,
    vpn: Vpn,
    entry: SwapPte,
    name: &'static str,
) -> bool {
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let pte = cx.pte(mm, vpn);
    let vma = cx.vma(mm, vpn);
    let done = match vma {
        Some(vma) if pte.present && pte.pfn == pfn => {
            cx.preempt_disable();
            let prev = cx.enter(name, || format!("mm {mm}, page {vpn}, pfn {pfn}"));
            let p = cx.enter("flush_cache_page", || format!("mm {mm}, page {vpn}"));
            cx.arch().flush_cache_page(cx, mm, vpn, pfn, vma.exec).await;
            cx.leave(p);
            cx.write_pte(Some(mm), vpn, Pte::default());
            cx.arch().flush_tlb_page(cx, mm, vpn).await;
            // An exclusive anonymous page that may be pinned for DMA cannot be shared with the
            // swap or migration entry (`folio_try_share_anon_rmap_pte` fails): the PTE is put
            // back and the unmap gives up.
            let pinned = {
                let st = cx.st();
                st.k.pages[pfn as usize].kind == PageKind::Anon
                    && (st.k.pages[pfn as usize].io_pin > 0 || st.o.device_owned(pfn))
            };
            if pinned {
                cx.arch().set_pte_at(cx, mm, vpn, pte).await;
                cx.leave(prev);
                cx.preempt_enable();
                mutex_unlock(cx, lock);
                return false;
            }
            let entry = match entry {
                SwapPte::Migration { pfn, .. } => SwapPte::Migration {
                    pfn,
                    write: pte.write,
                },
                e => e,
            };
            {
                let mut st = cx.st();
                if let SwapPte::Swap(slot) = entry {
                    st.k.swap[slot as usize].count += 1;
                }
                st.k.mms[mm as usize].swap_ptes.push((vpn, entry));
                st.k.pages[pfn as usize]
                    .rmap
                    .retain(|&(m, v)| (m, v) != (mm, vpn));
            }
            put_page(cx, pfn);
            cx.leave(prev);
            cx.preempt_enable();
            true
        }
        _ => false,
    };
    mutex_unlock(cx, lock);
    done
}

/// Reclaim of the `n`-th anonymous page it may write out (`shrink_folio_list`): the page goes
/// to the swap cache and a swap slot (`add_to_swap`), every mapping of it becomes a swap PTE
/// (`try_to_unmap`), the device writes it to the slot (`pageout`, `swap_writepage`), and if
/// nobody took it back meanwhile it leaves the swap cache and is freed (`__remove_mapping`).
pub async fn shrink_folio_list<A: Arch>(cx: &Cx<A>, n: u8) {
    let Some(pfn) = nth_reclaimable(cx, n) else {
        return;
    };
    let prev = cx.enter("shrink_folio_list", || format!("page {pfn}"));
    // isolate_lru_folios: off the LRU, so no other reclaimer or compaction picks it, with
    // reclaim's own reference; then folio_trylock, held until reclaim is done with it.
    get_page(cx, pfn);
    {
        let mut st = cx.st();
        let p = &mut st.k.pages[pfn as usize];
        p.isolated = true;
        p.locked = true;
    }
    // A large folio that cannot go to swap whole is split first.
    if cx.st().k.pages[pfn as usize].folio.is_some() {
        cx.st().k.split_folio(pfn);
    }
    let cached = cx.st().k.pages[pfn as usize].swap;
    let slot = cached.or_else(|| add_to_swap(cx, pfn));
    let Some(slot) = slot else {
        putback(cx, pfn);
        cx.leave(prev);
        return;
    };
    cx.step().await;
    let rmap = cx.st().k.pages[pfn as usize].rmap.clone();
    for (mm, vpn) in rmap {
        try_to_unmap_one(cx, pfn, mm, vpn, SwapPte::Swap(slot), "try_to_unmap_one").await;
        cx.step().await;
    }
    let mapped = !cx.st().k.pages[pfn as usize].rmap.is_empty();
    if !mapped {
        swap_writepage(cx, pfn, slot).await;
        cx.step().await;
        // __remove_mapping: only reclaim's and the swap cache's references are left.
        let free = {
            let st = cx.st();
            let p = &st.k.pages[pfn as usize];
            p.refs == 2 && p.rmap.is_empty() && p.io_pin == 0 && p.swap == Some(slot)
        };
        if free {
            delete_from_swap_cache(cx, pfn);
        }
    }
    putback(cx, pfn);
    cx.leave(prev);
}

/// The end of reclaim's hold on `pfn`: unlocked, back on the LRU (`folio_putback_lru`) or
/// freed with the last reference.
fn putback<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    {
        let mut st = cx.st();
        let p = &mut st.k.pages[pfn as usize];
        p.isolated = false;
        p.locked = false;
    }
    put_page(cx, pfn);
}

/// `add_to_swap`: a free slot for `pfn`, which enters the swap cache. `None` when swap is full.
fn add_to_swap<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Option<u8> {
    let mut st = cx.st();
    let slot = st.k.swap.iter().position(|s| s.is_free())? as u8;
    st.k.swap[slot as usize].cache = Some(pfn);
    let p = &mut st.k.pages[pfn as usize];
    p.swap = Some(slot);
    p.refs += 1;
    Some(slot)
}

/// `swap_writepage`: the device writes page `pfn` to `slot` by streaming DMA, the page locked
/// meanwhile.
async fn swap_writepage<A: Arch>(cx: &Cx<A>, pfn: Pfn, slot: u8) {
    let prev = cx.enter("swap_writepage", || format!("page {pfn} to slot {slot}"));
    // Under reclaim's folio lock; the I/O pin keeps users off the page meanwhile.
    cx.st().k.pages[pfn as usize].io_pin += 1;
    dma::dma_map_page(cx, pfn, DmaDir::ToDevice, "dma_map_page").await;
    cx.step().await;
    let data = dma::device_read_page(cx, pfn);
    cx.st().k.swap[slot as usize].data = data;
    cx.step().await;
    dma::dma_unmap_page(cx, pfn, DmaDir::ToDevice, "dma_unmap_page").await;
    cx.st().k.pages[pfn as usize].io_pin -= 1;
    cx.leave(prev);
}

/// `swap_read_folio`: the device reads `slot` into the new, locked page `pfn` by streaming DMA.
async fn swap_read_folio<A: Arch>(cx: &Cx<A>, pfn: Pfn, slot: u8) {
    let prev = cx.enter("swap_read_folio", || format!("slot {slot} into page {pfn}"));
    dma::dma_map_page(cx, pfn, DmaDir::FromDevice, "dma_map_page").await;
    cx.step().await;
    let data = cx.st().k.swap[slot as usize].data.clone();
    dma::device_write_page(cx, pfn, &data);
    cx.step().await;
    dma::dma_unmap_page(cx, pfn, DmaDir::FromDevice, "dma_unmap_page").await;
    cx.leave(prev);
}

/// `read_swap_cache_async`: the swap-cache page of `slot` with a reference taken, read from the
/// device into a new page first if the slot has none. `None` when no page can be had.
pub async fn read_swap_cache_async<A: Arch>(cx: &Cx<A>, slot: u8) -> Option<Pfn> {
    let cached = cx.st().k.swap[slot as usize].cache;
    if let Some(pfn) = cached {
        get_page(cx, pfn);
        return Some(pfn);
    }
    let pfn = alloc_page(cx, true, PageKind::Anon)?;
    {
        // add_to_swap_cache, locked until the read completes.
        let mut st = cx.st();
        st.k.swap[slot as usize].cache = Some(pfn);
        let p = &mut st.k.pages[pfn as usize];
        p.swap = Some(slot);
        p.refs += 1;
        p.lock_for_io();
    }
    swap_read_folio(cx, pfn, slot).await;
    cx.st().k.pages[pfn as usize].unlock_after_io();
    // The swap PTEs may all have gone while the page was read: it leaves the swap cache.
    if cx.st().k.swap[slot as usize].count == 0 {
        delete_from_swap_cache(cx, pfn);
    }
    Some(pfn)
}

/// `madvise(MADV_WILLNEED)` of the caller's `page`-th mapped page: a swapped-out page is read
/// back into the swap cache ahead of the fault (`swapin_walk_pmd_entry`); the fault then maps
/// it without I/O.
pub async fn madvise_willneed<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let entry = cx.st().k.mms[mm as usize].swap_pte(vpn);
    let Some(SwapPte::Swap(slot)) = entry else {
        return;
    };
    let prev = cx.enter("swapin_walk_pmd_entry", || format!("mm {mm}, page {vpn}"));
    if let Some(pfn) = read_swap_cache_async(cx, slot).await {
        put_page(cx, pfn);
    }
    cx.leave(prev);
}

/// `do_swap_page`: a fault on the swap PTE of `vpn` (slot `slot`) of `mm`, with its mmap lock
/// held. The page comes from the swap cache or the device, locked until its I/O is done; the
/// PTE's reference on the slot goes (`swap_free`), and with the last one the page leaves the
/// swap cache. `arch_swap_restore` runs before the slot goes, the I-cache hook before the PTE is
/// built; the page is mapped writable only when nobody else can reach it.
pub async fn do_swap_page<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma, slot: u8) {
    let prev = cx.enter("do_swap_page", || {
        format!("mm {mm}, page {vpn}, slot {slot}")
    });
    let Some(pfn) = read_swap_cache_async(cx, slot).await else {
        cx.leave(prev);
        return;
    };
    // folio_lock_or_retry: wait for its read; a folio reclaim holds locked (and whose
    // try_to_unmap needs the page-table lock this fault's mmap lock stands for) makes the
    // fault drop the lock and retry, as VM_FAULT_RETRY does.
    let mut again = false;
    loop {
        let (locked, isolated) = {
            let st = cx.st();
            let p = &st.k.pages[pfn as usize];
            (p.locked, p.isolated)
        };
        if !locked {
            break;
        }
        if isolated {
            cx.note(|| format!("page {pfn} is locked by reclaim: the fault is retried"));
            put_page(cx, pfn);
            cx.leave(prev);
            return;
        }
        cx.wait(again).await;
        again = true;
    }
    // The mmap lock is held: the swap PTE is still there.
    debug_assert_eq!(
        cx.st().k.mms[mm as usize].swap_pte(vpn),
        Some(SwapPte::Swap(slot))
    );
    let p = cx.enter("arch_swap_restore", || format!("slot {slot}, page {pfn}"));
    cx.arch().arch_swap_restore(cx, slot, pfn).await;
    cx.leave(p);
    let (exclusive, last) = {
        let mut st = cx.st();
        st.k.mms[mm as usize].swap_ptes.retain(|(v, _)| *v != vpn);
        let s = &mut st.k.swap[slot as usize];
        s.count -= 1;
        let last = s.count == 0;
        (last && st.k.pages[pfn as usize].rmap.is_empty(), last)
    };
    if last {
        // should_try_to_free_swap: nothing refers to the slot any more.
        delete_from_swap_cache(cx, pfn);
    }
    let p = cx.enter("flush_icache_page", || format!("page {pfn}"));
    cx.arch().flush_icache_page(cx, mm, pfn).await;
    cx.leave(p);
    // The reference taken by the lookup is the mapping's; a page nobody else can reach is
    // mapped writable at once (for a read fault too), as a fresh anonymous page is.
    install_pte(cx, mm, vpn, super::user_pte(vma, pfn, exclusive)).await;
    cx.leave(prev);
}
