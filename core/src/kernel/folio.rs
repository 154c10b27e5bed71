//! Large folios: page-cache folios of several pages read ahead (`page_cache_ra_order`) and
//! flushed whole (`flush_dcache_folio`), fault-around mapping several cached pages at once
//! (`do_fault_around`, `filemap_map_pages`, `set_pte_range`: `flush_icache_pages`, `set_ptes`,
//! `update_mmu_cache_range`), and large anonymous folios, zeroed and copied a subpage at a time
//! at each subpage's own user address (`folio_zero_user` and `copy_user_large_folio`, through
//! `process_huge_page`).
//!
//! A folio's pages are consecutive frames aligned to their number ([`super::alloc_folio`]); the
//! kernel keeps references, mappings and the reverse map per page, and `PG_arch_1` per folio (in
//! its first page). A page of a large folio freed alone splits the folio. The model's anonymous
//! large folios also stand for the huge pages of a private hugetlb mapping, which PA-RISC, like
//! the model, maps with one PTE per page: their copy-on-write fault copies the whole folio as
//! `hugetlb_wp` does.

use super::fault::copy_user_highpage;
use super::{alloc_folio, file, get_page, kmap, put_page, PageKind, Vma};
use crate::addr::{MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::op::DmaDir;
use crate::preset::Io;
use crate::world::{Cx, StoreKind};

/// `fault_around_bytes` at its default (64 KiB), in pages of 4 KiB.
pub const FAULT_AROUND_PAGES: u64 = 16;

/// The order `process_huge_page` handles the `nr` subpages of a folio in when the user touched
/// subpage `target`: subpages far from the target first, then pairs closing in on it from both
/// sides, the target last (so its lines are the ones still in the cache).
pub fn process_huge_page_order(nr: u64, target: u64) -> Vec<u64> {
    let mut order = Vec::with_capacity(nr as usize);
    let (base, l);
    if 2 * target <= nr {
        base = 0;
        l = target;
        order.extend((2 * target..nr).rev());
    } else {
        base = nr - 2 * (nr - target);
        l = nr - target;
        order.extend(0..base);
    }
    for i in 0..l {
        order.push(base + i);
        order.push(base + 2 * l - 1 - i);
    }
    order
}

/// `set_pte_range` with the page-table lock held: the `nr` pages from `pfn` (of one folio) get
/// read-only PTEs from `vpn` of `mm`: the I-cache hook, `set_ptes`, then `update_mmu_cache_range`.
pub async fn set_pte_range<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pfn: Pfn, nr: u64, pte: Pte) {
    let prev = cx.enter("set_pte_range", || {
        format!("mm {mm}, pages {vpn}..{} -> pfn {pfn}", vpn + nr)
    });
    for i in 0..nr {
        let mut st = cx.st();
        st.k.pages[pfn as usize + i as usize]
            .rmap
            .push((mm, vpn + i));
    }
    let p = cx.enter("flush_icache_pages", || format!("pages {pfn}.."));
    cx.arch().flush_icache_pages(cx, mm, pfn, nr).await;
    cx.leave(p);
    let p = cx.enter("set_ptes", || {
        format!("mm {mm}, pages {vpn}..{} -> pfn {pfn}", vpn + nr)
    });
    cx.arch().set_ptes(cx, mm, vpn, pte, nr).await;
    cx.leave(p);
    cx.step().await;
    let p = cx.enter("update_mmu_cache_range", || {
        format!("mm {mm}, pages {vpn}..{}", vpn + nr)
    });
    cx.arch().update_mmu_cache_range(cx, mm, vpn, nr).await;
    cx.leave(p);
    cx.leave(prev);
}

/// `do_fault_around` for a read fault at `vpn` of `mm` in file VMA `vma`, with the mmap lock
/// held: `filemap_map_pages` maps, under one page-table lock, every page of the window around
/// `vpn` (`FAULT_AROUND_PAGES`, aligned, within the VMA) that has no PTE and is in the page cache,
/// up to date and unlocked, a run of one folio's pages at a time.
pub async fn do_fault_around<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma) {
    let start = (vpn - vpn % FAULT_AROUND_PAGES).max(vma.start);
    let end = (vpn - vpn % FAULT_AROUND_PAGES + FAULT_AROUND_PAGES).min(vma.end);
    let prev = cx.enter("filemap_map_pages", || {
        format!("mm {mm}, pages {start}..{end}")
    });
    cx.preempt_disable();
    let mut v = start;
    while v < end {
        let run = {
            let st = cx.st();
            let page_at = |v: Vpn| {
                let (f, index) = vma.file_index(v)?;
                let pfn = *st.k.files[f as usize].pages.get(index as usize)?;
                let pfn = pfn?;
                let free =
                    !st.m.pte(Some(mm), v).present && st.k.mms[mm as usize].swap_pte(v).is_none();
                let ready = !st.k.pages[pfn as usize].locked && !st.o.device_owned(pfn);
                (free && ready).then_some(pfn)
            };
            page_at(v).map(|pfn| {
                let (head, nr) = st.k.folio(pfn);
                let mut n = 1;
                while v + n < end
                    && ((pfn + n as Pfn) as u64) < head as u64 + nr
                    && page_at(v + n) == Some(pfn + n as Pfn)
                {
                    n += 1;
                }
                (pfn, n)
            })
        };
        let Some((pfn, n)) = run else {
            v += 1;
            continue;
        };
        // The mapping's references.
        for i in 0..n as Pfn {
            get_page(cx, pfn + i);
        }
        set_pte_range(cx, mm, v, pfn, n, super::user_pte(vma, pfn, false)).await;
        v += n;
    }
    cx.preempt_enable();
    cx.leave(prev);
}

/// `readahead(2)` of the page of `file` at `index` (`page_cache_ra_order`): a folio of `nr`
/// pages (fewer when the aligned range would pass the end of the file) is allocated, added to
/// the page cache locked, and filled from disk (`read_pages`): by a PIO driver copying into it
/// through kernel mappings, one page at a time, then `flush_dcache_folio` (`memcpy_to_folio`),
/// or by DMA. Nothing is read if a page of the range is cached already. A kernel without large
/// folios ([`Arch::transparent_hugepage`]) reads the page alone, an order-0 folio.
pub async fn page_cache_ra_order<A: Arch>(cx: &Cx<A>, file: u8, index: u8, nr: u64) {
    let (f, index) = file::file_page(cx, file, index);
    let pages = cx.kernel().files[f as usize].pages.len() as u64;
    let mut nr = if cx.arch().transparent_hugepage() {
        nr.max(1)
    } else {
        1
    };
    while nr > 1 && (index as u64 - index as u64 % nr) + nr > pages {
        nr /= 2;
    }
    let start = index as u64 - index as u64 % nr;
    if (start..start + nr).any(|i| cx.kernel().files[f as usize].pages[i as usize].is_some()) {
        return;
    }
    let prev = cx.enter("page_cache_ra_order", || {
        format!("file {f} pages {start}..{}", start + nr)
    });
    let kind = |i: u64| PageKind::PageCache {
        file: f,
        index: (start + i) as u8,
    };
    let Some(head) = alloc_folio(cx, true, nr, kind) else {
        cx.leave(prev);
        return;
    };
    {
        // filemap_add_folio: in the page cache, locked until read.
        let mut st = cx.st();
        for i in 0..nr {
            st.k.files[f as usize].pages[(start + i) as usize] = Some(head + i as Pfn);
            st.k.pages[head as usize + i as usize].lock_for_io();
        }
    }
    cx.step().await;
    let page = cx.page_size();
    let io = cx.kernel().io;
    match io {
        Io::Pio => {
            for i in 0..nr {
                let pfn = head + i as Pfn;
                let va = kmap::kmap(cx, pfn).await;
                let sectors = {
                    let k = cx.kernel();
                    let at = ((start + i) * page) as usize;
                    k.files[f as usize].disk[at..at + page as usize].to_vec()
                };
                cx.kstore_run(va, &sectors, false, StoreKind::Fill);
                kmap::kunmap(cx, pfn).await;
            }
            if !cx.switches().pio_without_flush_dcache_page {
                let p = cx.enter("flush_dcache_folio", || {
                    format!("pages {head}..{}", head as u64 + nr)
                });
                cx.arch().flush_dcache_folio(cx, head, nr).await;
                cx.leave(p);
            }
        }
        Io::Dma => {
            for i in 0..nr {
                super::dma::dma_map_page(cx, head + i as Pfn, DmaDir::FromDevice, "dma_map_page")
                    .await;
            }
            cx.step().await;
            for i in 0..nr {
                let sectors = {
                    let k = cx.kernel();
                    let at = ((start + i) * page) as usize;
                    k.files[f as usize].disk[at..at + page as usize].to_vec()
                };
                super::dma::device_write_page(cx, head + i as Pfn, &sectors);
            }
            cx.step().await;
            for i in 0..nr {
                super::dma::dma_unmap_page(
                    cx,
                    head + i as Pfn,
                    DmaDir::FromDevice,
                    "dma_unmap_page",
                )
                .await;
            }
        }
    }
    {
        // folio_end_read
        let mut st = cx.st();
        for i in 0..nr {
            st.k.pages[head as usize + i as usize].unlock_after_io();
        }
    }
    cx.leave(prev);
}

/// `folio_zero_user`: the `nr` pages of the new anonymous folio `head`, which `mm` will map from
/// user page `start`, cleared a subpage at a time with `clear_user_highpage` at that subpage's
/// user address, in `process_huge_page`'s order around the faulting page `vpn`.
pub async fn folio_zero_user<A: Arch>(cx: &Cx<A>, head: Pfn, nr: u64, start: Vpn, vpn: Vpn) {
    let prev = cx.enter("folio_zero_user", || {
        format!("pages {head}..{}, user page {vpn}", head as u64 + nr)
    });
    for (k, i) in process_huge_page_order(nr, vpn - start)
        .into_iter()
        .enumerate()
    {
        if k > 0 {
            cx.step().await;
        }
        super::fault::clear_user_highpage(cx, head + i as Pfn, start + i).await;
    }
    cx.leave(prev);
}

/// `do_anonymous_page` with a large folio (`alloc_anon_folio`), with the mmap lock held: when
/// the `nr`-page range around `vpn`, aligned to `nr`, lies in `vma` with no page mapped or
/// swapped, a folio of `nr` pages is zeroed for the user (`folio_zero_user`) and mapped writable
/// with `set_ptes` then `update_mmu_cache_range`. Returns false when it does not apply.
pub async fn do_anonymous_large<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    vma: &Vma,
    nr: u64,
) -> bool {
    let start = vpn - vpn % nr;
    if start < vma.start || start + nr > vma.end {
        return false;
    }
    let none = {
        let st = cx.st();
        (start..start + nr)
            .all(|v| !st.m.pte(Some(mm), v).present && st.k.mms[mm as usize].swap_pte(v).is_none())
    };
    if !none {
        return false;
    }
    let Some(head) = alloc_folio(cx, true, nr, |_| PageKind::Anon) else {
        return false;
    };
    let prev = cx.enter("alloc_anon_folio", || {
        format!(
            "pages {head}..{} for user pages {start}..{}",
            head as u64 + nr,
            start + nr
        )
    });
    folio_zero_user(cx, head, nr, start, vpn).await;
    cx.step().await;
    cx.preempt_disable();
    for i in 0..nr {
        cx.st().k.pages[(head + i as Pfn) as usize]
            .rmap
            .push((mm, start + i));
    }
    let p = cx.enter("set_ptes", || {
        format!("mm {mm}, pages {start}..{} -> pfn {head}", start + nr)
    });
    cx.arch()
        .set_ptes(cx, mm, start, super::user_pte(vma, head, true), nr)
        .await;
    cx.leave(p);
    cx.step().await;
    let p = cx.enter("update_mmu_cache_range", || {
        format!("mm {mm}, pages {start}..{}", start + nr)
    });
    cx.arch().update_mmu_cache_range(cx, mm, start, nr).await;
    cx.leave(p);
    cx.preempt_enable();
    cx.leave(prev);
    true
}

/// `copy_user_large_folio`: the `nr` pages of folio `src` copied into the new folio `dst` for
/// `mm`, which maps them from user page `start`, a subpage at a time with `copy_user_highpage`
/// at that subpage's user address, in `process_huge_page`'s order around the faulting page `vpn`.
pub async fn copy_user_large_folio<A: Arch>(
    cx: &Cx<A>,
    dst: Pfn,
    src: Pfn,
    nr: u64,
    mm: MmId,
    start: Vpn,
    vpn: Vpn,
) {
    let prev = cx.enter("copy_user_large_folio", || {
        format!("pages {src}.. -> pages {dst}..{}", dst as u64 + nr)
    });
    for (k, i) in process_huge_page_order(nr, vpn - start)
        .into_iter()
        .enumerate()
    {
        if k > 0 {
            cx.step().await;
        }
        copy_user_highpage(cx, dst + i as Pfn, src + i as Pfn, start + i, mm).await;
    }
    cx.leave(prev);
}

/// `hugetlb_wp`, with the mmap lock held: a write fault at `vpn` on the read-only PTE `pte` of a
/// large anonymous folio mapped whole from its first page. The only mapping of the folio makes
/// all its PTEs writable; otherwise the folio is copied whole (`copy_user_large_folio`) and,
/// under the page-table lock, its PTEs are cleared (`huge_ptep_clear_flush`: the TLB flush, and
/// no cache flush) and set to the copy (`set_huge_pte_at`, here `set_ptes`). Returns false when
/// the page is no such folio's, for the fault to copy the one page.
pub async fn hugetlb_wp<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma, pte: Pte) -> bool {
    let old = pte.pfn;
    let (head, nr) = cx.folio(old);
    if nr == 1 || !cx.page_is_anon(old) || cx.st().k.pages[old as usize].ksm {
        return false;
    }
    let start = vpn - (old - head) as u64;
    let whole = (0..nr).all(|i| {
        let p = cx.pte(mm, start + i);
        p.present && p.pfn == head + i as Pfn
    });
    if !whole || start < vma.start || start + nr > vma.end {
        return false;
    }
    let prev = cx.enter("hugetlb_wp", || {
        format!("mm {mm}, pages {start}..{} (pfn {head})", start + nr)
    });
    let exclusive = {
        let st = cx.st();
        (head..head + nr as Pfn).all(|p| {
            let page = &st.k.pages[p as usize];
            page.rmap.len() == 1 && page.refs == 1
        })
    };
    if exclusive {
        // set_huge_ptep_writable
        for i in 0..nr {
            let p = cx.pte(mm, start + i);
            cx.write_pte(Some(mm), start + i, Pte { write: true, ..p });
        }
        cx.arch().flush_tlb_range(cx, mm, start, start + nr).await;
        cx.leave(prev);
        return true;
    }
    let Some(new) = alloc_folio(cx, true, nr, |_| PageKind::Anon) else {
        cx.leave(prev);
        return true;
    };
    copy_user_large_folio(cx, new, head, nr, mm, start, vpn).await;
    cx.step().await;
    cx.preempt_disable();
    // huge_ptep_clear_flush
    for i in 0..nr {
        cx.write_pte(Some(mm), start + i, Pte::default());
    }
    cx.arch().flush_tlb_range(cx, mm, start, start + nr).await;
    {
        let mut st = cx.st();
        for i in 0..nr {
            let (o, n) = ((head + i as Pfn) as usize, (new + i as Pfn) as usize);
            st.k.pages[o]
                .rmap
                .retain(|&(m, v)| (m, v) != (mm, start + i));
            st.k.pages[n].rmap.push((mm, start + i));
        }
    }
    let p = cx.enter("set_huge_pte_at", || {
        format!("mm {mm}, pages {start}..{} -> pfn {new}", start + nr)
    });
    cx.arch()
        .set_ptes(cx, mm, start, super::user_pte(vma, new, true), nr)
        .await;
    cx.leave(p);
    cx.preempt_enable();
    for i in 0..nr as Pfn {
        put_page(cx, head + i);
    }
    cx.leave(prev);
    true
}
