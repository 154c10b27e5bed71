//! KSM: ksmd merging two anonymous pages into one KSM page mapped read-only in both places
//! (`ksm_do_scan`, `try_to_merge_two_pages`), and breaking a merged page again.
//!
//! The scan flushes each page for the kernel's reads (`flush_anon_page`, `flush_dcache_page`)
//! and reads it through a kernel mapping (`calc_checksum`, `memcmp_pages`). Merging
//! write-protects each page (`write_protect_page`: `flush_cache_page` before the PTE is cleared
//! and made read-only), then maps the KSM page in place of the other (`replace_page`:
//! `flush_cache_page`, `ptep_clear_flush`, `set_pte_at`). A KSM page is never reused by a write
//! fault: the copy-on-write fault (`do_wp_page`, `wp_page_copy`) breaks the merge, and so does
//! `madvise(MADV_UNMERGEABLE)` through an unsharing fault (`break_ksm`).
//!
//! Every byte the model writes is a value nobody else ever wrote, so no two pages are ever
//! identical: the model merges the two pages the scan picked whatever they hold. A read after
//! the merge is judged against the KSM page's own data, so what the model checks is that every
//! alias of the merged page agrees with it, not that the merge kept the other page's contents.

use super::fault::{handle_mm_fault_with, FaultOpts};
use super::{get_page, kmap, mutex_lock, mutex_unlock, nth_user_page, put_page, KernelState};
use super::{PageKind, VmaKind};
use crate::addr::{MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::machine::{Access, Fault, Pte};
use crate::world::Cx;

/// The `n`-th page of an anonymous VMA of a live address space whose PTE maps an anonymous page
/// (modulo their number), as ksmd's scan finds it: the address space and the user page.
fn nth_anon_mapping<A: Arch>(cx: &Cx<A>, n: u8) -> Option<(MmId, Vpn)> {
    let st = cx.st();
    let mut found = Vec::new();
    for (mm, m) in st.k.mms.iter().enumerate() {
        if !m.alive || m.exiting {
            continue;
        }
        for v in m.vmas.iter().filter(|v| v.kind == VmaKind::Anon) {
            for vpn in v.start..v.end {
                let pte = st.m.pte(Some(mm as MmId), vpn);
                if pte.present && st.k.pages[pte.pfn as usize].kind == PageKind::Anon {
                    found.push((mm as MmId, vpn));
                }
            }
        }
    }
    (!found.is_empty()).then(|| found[n as usize % found.len()])
}

/// `get_mergeable_page` (and the scan's `follow_page`): under `mm`'s mmap lock, the anonymous
/// page mapped at `vpn` with a reference taken, flushed for the kernel's reads.
async fn get_mergeable_page<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn) -> Option<Pfn> {
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let pte = cx.pte(mm, vpn);
    let page = (pte.present && cx.page_is_anon(pte.pfn)).then_some(pte.pfn);
    if let Some(pfn) = page {
        get_page(cx, pfn);
        let p = cx.enter("flush_anon_page", || format!("page {pfn}, user page {vpn}"));
        cx.arch().flush_anon_page(cx, mm, pfn, vpn).await;
        cx.leave(p);
        let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
        cx.arch().flush_dcache_page(cx, pfn).await;
        cx.leave(p);
    }
    mutex_unlock(cx, lock);
    page
}

/// The kernel reads all of page `pfn` through a kernel mapping, as `calc_checksum` and
/// `memcmp_pages` do (`kmap_local_page`, which the model's `kmap_atomic` stands for). A `hint`
/// read is of a page its user may still be writing: the scan only uses it to pick a candidate,
/// which `pages_identical` checks again after `write_protect_page`, so its values are not judged.
async fn read_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, name: &'static str, hint: bool) {
    let prev = cx.enter(name, || format!("page {pfn}"));
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    if hint {
        cx.kload_run_hint(k, cx.page_size());
    } else {
        cx.kload_run(k, cx.page_size());
    }
    kmap::kunmap_atomic(cx, k, how).await;
    cx.leave(prev);
}

/// `write_protect_page`, with `mm`'s mmap lock held: under the page-table lock, the PTE of `pfn`
/// at `vpn` is flushed (`flush_cache_page`), cleared (`ptep_clear_flush`) and, unless someone
/// else holds a reference (I/O in flight), set again read-only (`set_pte_at`). Mainline does
/// this when the PTE is writable or dirty; the model keeps no dirty bit, and the PTE of a page
/// its user wrote is dirty (a copy-on-write page after fork too), so it always does. Returns
/// the resulting PTE, or `None` if the page cannot be merged.
async fn write_protect_page<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pfn: Pfn) -> Option<Pte> {
    let pte = cx.pte(mm, vpn);
    let vma = cx.vma(mm, vpn)?;
    if !pte.present || pte.pfn != pfn {
        return None;
    }
    cx.preempt_disable();
    let prev = cx.enter("write_protect_page", || {
        format!("mm {mm}, page {vpn}, pfn {pfn}")
    });
    let ok = {
        let p = cx.enter("flush_cache_page", || format!("mm {mm}, page {vpn}"));
        cx.arch().flush_cache_page(cx, mm, vpn, pfn, vma.exec).await;
        cx.leave(p);
        cx.write_pte(Some(mm), vpn, Pte::default());
        cx.arch().flush_tlb_page(cx, mm, vpn).await;
        // No I/O may be in flight on the page: its references are its mappings, the scan's and
        // the swap cache's.
        let expected = {
            let st = cx.st();
            let p = &st.k.pages[pfn as usize];
            p.rmap.len() as u32 + 1 + p.swap.is_some() as u32
        };
        let ok = cx.st().k.pages[pfn as usize].refs == expected;
        let new = if ok {
            Pte {
                write: false,
                ..pte
            }
        } else {
            pte
        };
        let p = cx.enter("set_pte_at", || format!("mm {mm}, page {vpn} -> pfn {pfn}"));
        cx.arch().set_pte_at(cx, mm, vpn, new).await;
        cx.leave(p);
        ok
    };
    cx.leave(prev);
    cx.preempt_enable();
    ok.then(|| cx.pte(mm, vpn))
}

/// `replace_page`, with `mm`'s mmap lock held: the KSM page `kpage` is mapped read-only at
/// `vpn` in place of `page`, under the page-table lock: `flush_cache_page` of the old page,
/// `ptep_clear_flush`, `set_pte_at`. The old page loses that mapping's reference.
async fn replace_page<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    page: Pfn,
    kpage: Pfn,
    orig: Pte,
) -> bool {
    let Some(vma) = cx.vma(mm, vpn) else {
        return false;
    };
    if cx.pte(mm, vpn) != orig {
        return false;
    }
    cx.preempt_disable();
    let prev = cx.enter("replace_page", || {
        format!("mm {mm}, page {vpn}: {page} -> {kpage}")
    });
    get_page(cx, kpage);
    cx.st().k.pages[kpage as usize].rmap.push((mm, vpn));
    let p = cx.enter("flush_cache_page", || format!("mm {mm}, page {vpn}"));
    cx.arch()
        .flush_cache_page(cx, mm, vpn, page, vma.exec)
        .await;
    cx.leave(p);
    cx.write_pte(Some(mm), vpn, Pte::default());
    cx.arch().flush_tlb_page(cx, mm, vpn).await;
    let new = super::user_pte(&vma, kpage, false);
    let p = cx.enter("set_pte_at", || {
        format!("mm {mm}, page {vpn} -> pfn {kpage}")
    });
    cx.arch().set_pte_at(cx, mm, vpn, new).await;
    cx.leave(p);
    cx.st().k.pages[page as usize]
        .rmap
        .retain(|&(m, v)| (m, v) != (mm, vpn));
    put_page(cx, page);
    cx.leave(prev);
    cx.preempt_enable();
    true
}

/// `try_to_merge_with_ksm_page`: under `mm`'s mmap lock, `page` (mapped at `vpn`) is
/// write-protected and becomes a KSM page (`kpage` `None`), or is replaced by `kpage`.
async fn try_to_merge_with_ksm_page<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    page: Pfn,
    kpage: Option<Pfn>,
) -> bool {
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let prev = cx.enter("try_to_merge_one_page", || format!("mm {mm}, page {vpn}"));
    // A large folio is split first.
    if cx.st().k.pages[page as usize].folio.is_some() {
        cx.st().k.split_folio(page);
    }
    let merged = match write_protect_page(cx, mm, vpn, page).await {
        None => false,
        Some(orig) => match kpage {
            None => {
                cx.st().k.pages[page as usize].ksm = true;
                true
            }
            Some(kpage) => {
                // pages_identical. Its verdict changes only `mm`'s mapping of the page, as a
                // copy-on-write copy for `mm` would: a byte another address space's thread
                // stored during a fork window may read as any value it held in the window.
                cx.st().sched.actor_mut(cx.me()).copy_for = Some(mm);
                read_page(cx, page, "memcmp_pages", false).await;
                cx.st().sched.actor_mut(cx.me()).copy_for = None;
                read_page(cx, kpage, "memcmp_pages", false).await;
                replace_page(cx, mm, vpn, page, kpage, orig).await
            }
        },
    };
    cx.leave(prev);
    mutex_unlock(cx, lock);
    merged
}

/// `break_ksm`: an unsharing fault at `vpn` of `mm` replaces a KSM page mapped there with a
/// copy of its own.
pub async fn break_ksm<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn) {
    let prev = cx.enter("break_ksm", || format!("mm {mm}, page {vpn}"));
    let opts = FaultOpts {
        unshare: true,
        ..FaultOpts::default()
    };
    let ksm = |cx: &Cx<A>| {
        let pte = cx.pte(mm, vpn);
        pte.present && cx.st().k.pages[pte.pfn as usize].ksm
    };
    if ksm(cx) {
        handle_mm_fault_with(cx, mm, vpn, Access::Read, Fault::WriteProtect, false, opts).await;
    }
    cx.leave(prev);
}

/// ksmd's scan of two anonymous mappings, the `a`-th and `b`-th it finds
/// (`ksm_do_scan`, `cmp_and_merge_page`): both pages are flushed and read, then the first becomes
/// the KSM page mapped in place of the second (`try_to_merge_two_pages`); a page that is a KSM
/// page already takes the other in.
pub async fn ksm_do_scan<A: Arch>(cx: &Cx<A>, a: u8, b: u8) {
    let (Some((mm1, v1)), Some((mm2, v2))) = (nth_anon_mapping(cx, a), nth_anon_mapping(cx, b))
    else {
        return;
    };
    if (mm1, v1) == (mm2, v2) {
        return;
    }
    let prev = cx.enter("ksm_do_scan", || {
        format!("mm {mm1} page {v1}, mm {mm2} page {v2}")
    });
    let Some(p1) = get_mergeable_page(cx, mm1, v1).await else {
        cx.leave(prev);
        return;
    };
    read_page(cx, p1, "calc_checksum", true).await;
    cx.step().await;
    let Some(p2) = get_mergeable_page(cx, mm2, v2).await else {
        put_page(cx, p1);
        cx.leave(prev);
        return;
    };
    let (k1, k2) = {
        let st = cx.st();
        (st.k.pages[p1 as usize].ksm, st.k.pages[p2 as usize].ksm)
    };
    if p1 != p2 && !(k1 && k2) {
        // unstable_tree_search_insert
        read_page(cx, p1, "memcmp_pages", true).await;
        read_page(cx, p2, "memcmp_pages", true).await;
        cx.step().await;
        if k2 {
            try_to_merge_with_ksm_page(cx, mm1, v1, p1, Some(p2)).await;
        } else if k1 {
            try_to_merge_with_ksm_page(cx, mm2, v2, p2, Some(p1)).await;
        } else if try_to_merge_with_ksm_page(cx, mm1, v1, p1, None).await {
            cx.step().await;
            if !try_to_merge_with_ksm_page(cx, mm2, v2, p2, Some(p1)).await {
                // A KSM page with only one mapping is broken again (break_cow).
                break_ksm(cx, mm1, v1).await;
            }
        }
    }
    put_page(cx, p1);
    put_page(cx, p2);
    cx.leave(prev);
}

/// `madvise(MADV_UNMERGEABLE)` of the caller's `page`-th mapped page (`unmerge_ksm_pages`): a
/// KSM page mapped there is replaced by a copy of its own (`break_ksm`).
pub async fn unmerge_ksm_pages<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("unmerge_ksm_pages", || format!("mm {mm}, page {vpn}"));
    break_ksm(cx, mm, vpn).await;
    cx.leave(prev);
}
