//! Page migration, as compaction does it (`compact_zone` then `migrate_pages`): anonymous and
//! page-cache folios, mapped or not, move to a new folio.
//!
//! Every mapping of the old folio becomes a migration entry (`try_to_migrate_one`: the user
//! alias is flushed with `flush_cache_page` before the PTE is cleared and the TLB flushed), the
//! page cache or swap cache switches to the new folio once nothing else holds a reference
//! (`folio_migrate_mapping`), the contents are copied through kernel mappings (`folio_copy`,
//! `copy_highpage`), the new folio is flushed (`flush_dcache_folio` in `move_to_new_folio`),
//! and the migration entries become PTEs of the new folio (`remove_migration_pte`: `set_pte_at`
//! then `update_mmu_cache`). Faults on a migration entry wait; a folio something else still
//! holds is put back where it was.

use super::fault::install_pte;
use super::swap::try_to_unmap_one;
use super::{alloc_folio, get_page, kmap, put_page, PageKind, SwapPte};
use crate::addr::{MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::world::Cx;

/// Whether frame `pfn` holds a page compaction may migrate: anonymous or page cache, not
/// isolated by another migration, locked, under I/O or owned by the device.
fn movable(st: &crate::world::State, pfn: Pfn) -> bool {
    let p = &st.k.pages[pfn as usize];
    matches!(p.kind, PageKind::Anon | PageKind::PageCache { .. })
        && !p.isolated
        && p.io_pin == 0
        && !st.o.device_owned(pfn)
}

/// The folio (first frame) of the `n`-th page compaction may migrate (modulo their number).
fn nth_movable<A: Arch>(cx: &Cx<A>, n: u8) -> Option<Pfn> {
    let st = cx.st();
    let pages: Vec<Pfn> = (0..st.k.pages.len() as Pfn)
        .filter(|&p| movable(&st, p))
        .collect();
    if pages.is_empty() {
        return None;
    }
    let pfn = pages[n as usize % pages.len()];
    let (head, nr) = st.k.folio(pfn);
    (head..head + nr as Pfn)
        .all(|p| movable(&st, p))
        .then_some(head)
}

/// The references page `pfn` has when nothing but migration holds it: migration's own, the page
/// cache's and the swap cache's (`folio_expected_refs`).
fn expected_refs(st: &crate::world::State, pfn: Pfn) -> u32 {
    let p = &st.k.pages[pfn as usize];
    let cached = match p.kind {
        PageKind::PageCache { file, index } => {
            st.k.files[file as usize].pages[index as usize] == Some(pfn)
        }
        _ => false,
    };
    1 + cached as u32 + p.swap.is_some() as u32
}

/// `copy_highpage`: page `from` copied to page `to` through kernel mappings of each, whatever
/// their colours (mainline maps both with `kmap_local_page`, which the model's `kmap_atomic`
/// stands for).
pub async fn copy_highpage<A: Arch>(cx: &Cx<A>, to: Pfn, from: Pfn) {
    let prev = cx.enter("copy_highpage", || format!("page {from} -> page {to}"));
    let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
    let (kto, ht) = kmap::kmap_atomic(cx, to).await;
    cx.kcopy(kto, kfrom, cx.page_size());
    kmap::kunmap_atomic(cx, kto, ht).await;
    kmap::kunmap_atomic(cx, kfrom, hf).await;
    cx.leave(prev);
}

/// `remove_migration_ptes`: every migration entry of the `nr` pages from `src` becomes a PTE of
/// the page at the same offset from `dst` (`dst == src` puts the old folio back), each under
/// its page-table lock: `set_pte_at`, then `update_mmu_cache`.
pub async fn remove_migration_ptes<A: Arch>(cx: &Cx<A>, src: Pfn, dst: Pfn, nr: u64) {
    let mms = cx.st().k.mms.len() as MmId;
    for mm in 0..mms {
        let entries: Vec<(Vpn, Pfn, bool)> = cx.st().k.mms[mm as usize]
            .swap_ptes
            .iter()
            .filter_map(|&(vpn, e)| match e {
                SwapPte::Migration { pfn, write } if (src..src + nr as Pfn).contains(&pfn) => {
                    Some((vpn, pfn, write))
                }
                _ => None,
            })
            .collect();
        for (vpn, pfn, write) in entries {
            let Some(vma) = cx.vma(mm, vpn) else { continue };
            let new = dst + (pfn - src);
            let prev = cx.enter("remove_migration_pte", || {
                format!("mm {mm}, page {vpn} -> pfn {new}")
            });
            cx.st().k.mms[mm as usize]
                .swap_ptes
                .retain(|(v, _)| *v != vpn);
            get_page(cx, new);
            install_pte(cx, mm, vpn, super::user_pte(&vma, new, write)).await;
            cx.leave(prev);
            cx.step().await;
        }
    }
}

/// Compaction migrates the folio of the `n`-th page it may move (`migrate_pages`, one folio in
/// synchronous mode): unmap, move the mapping, copy, flush, remap, free the old folio.
pub async fn migrate_pages<A: Arch>(cx: &Cx<A>, n: u8) {
    let Some(src) = nth_movable(cx, n) else {
        return;
    };
    let (_, nr) = cx.folio(src);
    let prev = cx.enter("migrate_pages", || {
        format!("pages {src}..{}", src as u64 + nr)
    });
    // isolate_migratepages_block: compaction's reference on every page, which leaves the LRU.
    for i in 0..nr as Pfn {
        get_page(cx, src + i);
        cx.st().k.pages[(src + i) as usize].isolated = true;
    }
    let kinds: Vec<PageKind> = (0..nr as Pfn).map(|i| cx.page_kind(src + i)).collect();
    // compaction_alloc: the new folio.
    let Some(dst) = alloc_folio(cx, true, nr, |i| kinds[i as usize]) else {
        for i in 0..nr as Pfn {
            cx.st().k.pages[(src + i) as usize].isolated = false;
            put_page(cx, src + i);
        }
        cx.leave(prev);
        return;
    };
    cx.step().await;
    // migrate_folio_unmap: every mapping becomes a migration entry.
    for i in 0..nr as Pfn {
        let rmap = cx.st().k.pages[(src + i) as usize].rmap.clone();
        for (mm, vpn) in rmap {
            let entry = SwapPte::Migration {
                pfn: src + i,
                write: false,
            };
            try_to_unmap_one(cx, src + i, mm, vpn, entry, "try_to_migrate_one").await;
            cx.step().await;
        }
    }
    // folio_migrate_mapping: only with no mapping and no reference but the expected ones.
    let moved = {
        let mut st = cx.st();
        let free = (src..src + nr as Pfn).all(|p| {
            let page = &st.k.pages[p as usize];
            page.rmap.is_empty()
                && page.io_pin == 0
                && !st.o.device_owned(p)
                && page.refs == expected_refs(&st, p)
        });
        if free {
            for i in 0..nr as Pfn {
                let (s, d) = ((src + i) as usize, (dst + i) as usize);
                if let PageKind::PageCache { file, index } = st.k.pages[s].kind {
                    let slot = &mut st.k.files[file as usize].pages[index as usize];
                    if *slot == Some(src + i) {
                        *slot = Some(dst + i);
                        st.k.pages[d].refs += 1;
                        st.k.pages[s].refs -= 1;
                    }
                }
                if let Some(slot) = st.k.pages[s].swap.take() {
                    st.k.swap[slot as usize].cache = Some(dst + i);
                    st.k.pages[d].swap = Some(slot);
                    st.k.pages[d].refs += 1;
                    st.k.pages[s].refs -= 1;
                }
                st.k.pages[d].ksm = st.k.pages[s].ksm;
                // The new folio stays locked until it is mapped.
                st.k.pages[d].lock_for_io();
            }
        }
        free
    };
    if moved {
        // folio_migrate_copy: folio_copy, a page at a time, preemptible between them (and
        // everywhere but inside the model's kmap_atomic).
        for i in 0..nr as Pfn {
            cx.step().await;
            copy_highpage(cx, dst + i, src + i).await;
            {
                let page = cx.page_size();
                let mut st = cx.st();
                st.o.copy_flags((src + i) as u64 * page, (dst + i) as u64 * page, page);
            }
        }
        cx.step().await;
        // move_to_new_folio
        let p = cx.enter("flush_dcache_folio", || {
            format!("pages {dst}..{}", dst as u64 + nr)
        });
        cx.arch().flush_dcache_folio(cx, dst, nr).await;
        cx.leave(p);
        cx.step().await;
        remove_migration_ptes(cx, src, dst, nr).await;
        for i in 0..nr as Pfn {
            cx.st().k.pages[(dst + i) as usize].unlock_after_io();
        }
    } else {
        cx.note(|| "migration failed: the folio is put back".into());
        remove_migration_ptes(cx, src, src, nr).await;
    }
    // The new folio's allocation reference and compaction's on the old one, back on the LRU.
    for i in 0..nr as Pfn {
        put_page(cx, dst + i);
        cx.st().k.pages[(src + i) as usize].isolated = false;
        put_page(cx, src + i);
    }
    cx.leave(prev);
}
