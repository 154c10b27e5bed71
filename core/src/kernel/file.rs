//! The page cache and file I/O: filling a page from disk by PIO through a kernel mapping or by
//! DMA, `read()` and `write()` through the kernel mapping with `flush_dcache_page` and the lazy
//! `PG_arch_1` scheme.

use super::{alloc_page, dma, get_page, kmap, nth_user_page, put_page, uva, PageKind};
use crate::addr::{MmId, Pfn};
use crate::arch::Arch;
use crate::machine::Access;
use crate::op::DmaDir;
use crate::preset::Io;
use crate::world::{Cx, StoreKind};

/// A file and page index chosen by an op's fields, each wrapped onto what exists: the file
/// modulo the files, the index modulo the file's pages.
pub fn file_page<A: Arch>(cx: &Cx<A>, file: u8, index: u8) -> (u8, u8) {
    let k = cx.kernel();
    let f = file % k.user_files();
    let pages = k.files[f as usize].pages.len() as u8;
    (f, index % pages.max(1))
}

/// `filemap_fault`'s page lookup: the page-cache page of `file` at `index` with a reference
/// taken, read from disk first if absent. `None` for an index past the end of the file.
pub async fn find_or_read_page<A: Arch>(cx: &Cx<A>, file: u8, index: u8) -> Option<Pfn> {
    let existing = {
        let st = cx.st();
        let f = &st.k.files[file as usize % st.k.files.len()];
        if index as usize >= f.pages.len() {
            return None;
        }
        f.pages[index as usize]
    };
    let file = file % cx.st().k.files.len() as u8;
    if let Some(pfn) = existing {
        get_page(cx, pfn);
        // The page is locked while readpage fills it or a migration copies into it: wait until
        // it is unlocked. A caller never uses a locked page: one that waited too long gives up,
        // as a fault does when lock_folio_maybe_drop_mmap drops mmap_lock and returns
        // VM_FAULT_RETRY (the access is retried).
        for _ in 0..256 {
            if !cx.st().k.pages[pfn as usize].locked {
                return Some(pfn);
            }
            cx.step().await;
        }
        put_page(cx, pfn);
        return None;
    }
    let pfn = alloc_page(cx, true, PageKind::PageCache { file, index })?;
    {
        let mut st = cx.st();
        st.k.files[file as usize].pages[index as usize] = Some(pfn);
        // Locked (PG_locked) until it is up to date.
        st.k.pages[pfn as usize].lock_for_io();
    }
    // The page-cache reference plus the caller's.
    get_page(cx, pfn);
    let prev = cx.enter("readpage", || {
        format!("file {file} page {index} into page {pfn}")
    });
    let io = cx.st().k.io;
    let page = cx.page_size();
    match io {
        Io::Pio => {
            // A PIO driver copies the sectors through a kernel mapping of the page.
            let va = kmap::kmap(cx, pfn).await;
            let sectors = {
                let st = cx.st();
                let at = (index as u64 * page) as usize;
                st.k.files[file as usize].disk[at..at + page as usize].to_vec()
            };
            cx.kstore_run(va, &sectors, false, StoreKind::Fill);
            kmap::kunmap(cx, pfn).await;
            if !cx.switches().pio_without_flush_dcache_page {
                let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
                cx.arch().flush_dcache_page(cx, pfn).await;
                cx.leave(p);
            }
        }
        Io::Dma => {
            dma::dma_map_page(cx, pfn, DmaDir::FromDevice, "dma_map_page").await;
            cx.step().await;
            let values: Vec<_> = (0..page)
                .map(|off| {
                    cx.st().k.files[file as usize].disk[(index as u64 * page + off) as usize]
                })
                .collect();
            {
                let mut st = cx.st();
                let pa = pfn as u64 * page;
                st.m.device_write(pa, &values);
                let step = st.m.log.step;
                st.o.write_run(
                    pa,
                    &values,
                    crate::oracle::WriteInfo {
                        step,
                        ..Default::default()
                    },
                    "device",
                    crate::oracle::WriteFlags::default(),
                );
            }
            cx.step().await;
            dma::dma_unmap_page(cx, pfn, DmaDir::FromDevice, "dma_unmap_page").await;
        }
    }
    cx.st().k.pages[pfn as usize].unlock_after_io();
    cx.leave(prev);
    // Waiting for the I/O: others run.
    cx.step().await;
    Some(pfn)
}

/// `read()` of one byte of a file page into the caller's `page`-th user page.
pub async fn read<A: Arch>(cx: &Cx<A>, mm: MmId, file: u8, index: u8, off: u8, page: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let (file, index) = file_page(cx, file, index);
    let prev = cx.enter("sys_read", || format!("file {file} page {index}"));
    if let Some(pfn) = find_or_read_page(cx, file, index).await {
        // generic read: a folio that user space may write through shared mappings is flushed
        // before the kernel reads it.
        if writably_mapped(cx, pfn) {
            let (head, nr) = cx.folio(pfn);
            if nr > 1 {
                let p = cx.enter("flush_dcache_folio", || format!("pages {head}.."));
                cx.arch().flush_dcache_folio(cx, head, nr).await;
                cx.leave(p);
            } else {
                cx.arch().flush_dcache_page(cx, pfn).await;
            }
        }
        let ka = kmap::kmap(cx, pfn).await;
        let v = cx.kload(ka + off as u64 % cx.page_size());
        kmap::kunmap(cx, pfn).await;
        put_page(cx, pfn);
        cx.step().await;
        copy_to_user(cx, mm, uva(cx, vpn, off), v).await;
    }
    cx.leave(prev);
}

/// `copy_to_user` of one byte, faulting the destination in as needed.
pub async fn copy_to_user<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    va: crate::addr::Va,
    v: crate::addr::Stamp,
) {
    for _ in 0..16 {
        if super::fault::io_in_progress(cx, va) {
            cx.step().await;
            continue;
        }
        match cx.user_access_value(va, Access::Write, Some(v)) {
            Ok(_) => return,
            Err(f) => {
                if !super::fault::handle_mm_fault(
                    cx,
                    mm,
                    va / cx.page_size(),
                    Access::Write,
                    f,
                    false,
                )
                .await
                {
                    return;
                }
            }
        }
    }
}

/// `copy_from_user` of the byte at `va` of `mm`, the caller's address space, faulting it in as
/// needed; `None` if it cannot be read (`EFAULT`).
pub async fn copy_from_user<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    va: crate::addr::Va,
) -> Option<crate::addr::Stamp> {
    let vpn = va / cx.page_size();
    for _ in 0..16 {
        if super::fault::io_in_progress(cx, va) {
            cx.step().await;
            continue;
        }
        match cx.user_access(va, Access::Read) {
            Ok(x) => return x,
            Err(f) => {
                if !super::fault::handle_mm_fault(cx, mm, vpn, Access::Read, f, false).await {
                    return None;
                }
            }
        }
    }
    None
}

/// `write()` of one byte of the caller's `page`-th user page into a file page.
pub async fn write<A: Arch>(cx: &Cx<A>, mm: MmId, file: u8, index: u8, off: u8, page: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let (file, index) = file_page(cx, file, index);
    let prev = cx.enter("sys_write", || format!("file {file} page {index}"));
    let v = copy_from_user(cx, mm, uva(cx, vpn, off)).await;
    cx.step().await;
    if let (Some(v), Some(pfn)) = (v, find_or_read_page(cx, file, index).await) {
        store_into_page_cache(cx, pfn, off, v).await;
        put_page(cx, pfn);
    }
    cx.leave(prev);
}

/// `generic_perform_write` of byte `v` at `off` (modulo the page size) of page-cache page
/// `pfn`: a folio user space may write through shared mappings is flushed before the kernel
/// writes it, so no older user line lands on the new data; the store goes through a kernel
/// mapping; `flush_dcache_folio` follows.
pub(crate) async fn store_into_page_cache<A: Arch>(
    cx: &Cx<A>,
    pfn: Pfn,
    off: u8,
    v: crate::addr::Stamp,
) {
    if writably_mapped(cx, pfn) {
        flush_dcache_folio_of(cx, pfn).await;
    }
    let ka = kmap::kmap(cx, pfn).await;
    cx.kstore_as(
        ka + off as u64 % cx.page_size(),
        v,
        false,
        StoreKind::UserData,
    );
    kmap::kunmap(cx, pfn).await;
    flush_dcache_folio_of(cx, pfn).await;
}

/// Whether a page of the folio of `pfn` is mapped shared (writably, as far as the kernel can
/// tell: `mapping_writably_mapped`).
pub(crate) fn writably_mapped<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> bool {
    let (head, nr) = cx.folio(pfn);
    (head..head + nr as Pfn).any(|p| cx.user_mappings(p, None).iter().any(|m| m.2))
}

/// `flush_dcache_folio` of the folio of `pfn`, or `flush_dcache_page` of a page of its own.
pub(crate) async fn flush_dcache_folio_of<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let (head, nr) = cx.folio(pfn);
    if nr > 1 {
        let p = cx.enter("flush_dcache_folio", || {
            format!("pages {head}..{}", head as u64 + nr)
        });
        cx.arch().flush_dcache_folio(cx, head, nr).await;
        cx.leave(p);
    } else {
        let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
        cx.arch().flush_dcache_page(cx, pfn).await;
        cx.leave(p);
    }
}
