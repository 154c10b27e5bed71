//! vmalloc space: `vm_map_ram` and `vm_unmap_ram`, `vmap`, `vmalloc` and `vmalloc_user` with
//! `vfree`, and a readdir-like path (as NFS had in 2.6.37) that maps fresh pages into vmalloc
//! space, fills them through kmap as replies arrive, and decodes them.
//!
//! A mapping is placed at the first free range at or after the page the input chooses (so the
//! colour), aligned as the caller asks (`SHMLBA` for `vmalloc_user`), and `flush_cache_vmap`
//! runs on the new range only: no maintenance of the pages' other aliases, as in the kernel.
//! `vmalloc` zeroes each page through its own kernel mapping before mapping it (`__GFP_ZERO`
//! through `clear_highpage`).

use super::{alloc_page, kmap, put_page, PageKind};
use crate::addr::{layout, Pfn, Va};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::world::{Cx, StoreKind};

/// Maps `pfns` at the first free vmalloc range at or after page `at` whose first page is a
/// multiple of `align` pages, with executable entries if `exec`, then `flush_cache_vmap`, all
/// under the name `name` (`vm_map_ram`, `vmap`).
async fn map_area<A: Arch>(
    cx: &Cx<A>,
    pfns: &[Pfn],
    at: u8,
    align: u64,
    exec: bool,
    name: &'static str,
) -> Option<Va> {
    let n = pfns.len() as u64;
    let align = align.clamp(1, layout::VMALLOC_PAGES);
    let start = {
        let st = cx.st();
        let at = at as u64 % layout::VMALLOC_PAGES;
        (at..layout::VMALLOC_PAGES)
            .chain(0..at)
            .filter(|s| s % align == 0)
            .find(|&s| {
                s + n <= layout::VMALLOC_PAGES && (s..s + n).all(|p| !st.k.vmalloc[p as usize])
            })?
    };
    let page = cx.page_size();
    let va = (layout::VMALLOC + start) * page;
    let prev = cx.enter(name, || format!("pages {pfns:?} at {va:#x}"));
    for (i, &pfn) in pfns.iter().enumerate() {
        let mut st = cx.st();
        st.k.vmalloc[(start + i as u64) as usize] = true;
        st.m.set_pte(
            None,
            layout::VMALLOC + start + i as u64,
            Pte::new(pfn, true, exec),
        );
    }
    cx.arch().flush_cache_vmap(cx, va, va + n * page).await;
    cx.leave(prev);
    Some(va)
}

/// `vm_map_ram`: maps `pfns` at the first free vmalloc range at or after page `at`.
pub async fn vm_map_ram<A: Arch>(cx: &Cx<A>, pfns: &[Pfn], at: u8) -> Option<Va> {
    map_area(cx, pfns, at, 1, false, "vm_map_ram").await
}

/// `vmap` (`vmap_pages_range`, and the `__vmalloc_node_range` that calls it): maps `pfns` at
/// the first free vmalloc range at or after page `at` aligned to `align` pages, executable
/// (`PAGE_KERNEL_EXEC`) if `exec`.
pub async fn vmap<A: Arch>(cx: &Cx<A>, pfns: &[Pfn], at: u8, align: u64, exec: bool) -> Option<Va> {
    map_area(cx, pfns, at, align, exec, "vmap").await
}

/// `vunmap`: `flush_cache_vunmap`, PTEs cleared, kernel TLB flushed (the same as
/// [`vm_unmap_ram`] does).
pub async fn vunmap<A: Arch>(cx: &Cx<A>, va: Va, n: u64) {
    let prev = cx.enter("vunmap", || format!("{va:#x}, {n} pages"));
    unmap_area(cx, va, n).await;
    cx.leave(prev);
}

/// `__vmalloc_node_range`: `n` fresh pages (highmem when there is some), each zeroed through its
/// own kernel mapping if `zero` says with what meaning for the oracle (`__GFP_ZERO`:
/// `clear_highpage` through `kmap_local_page`), then mapped with [`vmap`]. Returns the address and the pages, or `None` (nothing left allocated)
/// if memory or vmalloc space runs out.
pub async fn vmalloc<A: Arch>(
    cx: &Cx<A>,
    n: usize,
    at: u8,
    align: u64,
    exec: bool,
    zero: Option<StoreKind>,
) -> Option<(Va, Vec<Pfn>)> {
    let mut pfns = Vec::with_capacity(n);
    for _ in 0..n {
        match alloc_page(cx, true, PageKind::Kernel) {
            Some(p) => pfns.push(p),
            None => {
                pfns.into_iter().for_each(|p| put_page(cx, p));
                return None;
            }
        }
    }
    if let Some(kind) = zero {
        for &pfn in &pfns {
            clear_highpage(cx, pfn, kind).await;
        }
    }
    match vmap(cx, &pfns, at, align, exec).await {
        Some(va) => Some((va, pfns)),
        None => {
            pfns.into_iter().for_each(|p| put_page(cx, p));
            None
        }
    }
}

/// `vmalloc_user`: zeroed pages whose vmalloc address is `SHMLBA`-aligned, for a driver to map
/// into user space with `remap_vmalloc_range`. The zeros are the user's data, as what the
/// kernel later writes there is: nothing makes them instructions.
pub async fn vmalloc_user<A: Arch>(cx: &Cx<A>, n: usize, at: u8) -> Option<(Va, Vec<Pfn>)> {
    let prev = cx.enter("vmalloc_user", || format!("{n} pages"));
    let align = cx.arch().shmlba_pages(cx);
    let r = vmalloc(cx, n, at, align, false, Some(StoreKind::UserData)).await;
    cx.leave(prev);
    r
}

/// `vfree`: the area unmapped as [`vunmap`] does, then its pages freed.
pub async fn vfree<A: Arch>(cx: &Cx<A>, va: Va, pfns: &[Pfn]) {
    let prev = cx.enter("vfree", || format!("{va:#x}, pages {pfns:?}"));
    unmap_area(cx, va, pfns.len() as u64).await;
    for &pfn in pfns {
        put_page(cx, pfn);
    }
    cx.leave(prev);
}

/// `clear_highpage`: fresh zeros stored through `kmap_atomic` of the page, with the meaning
/// `kind` gives them for the oracle.
pub async fn clear_highpage<A: Arch>(cx: &Cx<A>, pfn: Pfn, kind: StoreKind) {
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    let zeros: Vec<_> = (0..cx.page_size()).map(|_| cx.fresh()).collect();
    cx.kstore_run(k, &zeros, false, kind);
    kmap::kunmap_atomic(cx, k, how).await;
}

/// `vm_unmap_ram`: `flush_cache_vunmap`, PTEs cleared, kernel TLB flushed.
pub async fn vm_unmap_ram<A: Arch>(cx: &Cx<A>, va: Va, n: u64) {
    let prev = cx.enter("vm_unmap_ram", || format!("{va:#x}, {n} pages"));
    unmap_area(cx, va, n).await;
    cx.leave(prev);
}

/// What every unmap of vmalloc space does: `flush_cache_vunmap`, PTEs cleared, kernel TLB
/// flushed.
async fn unmap_area<A: Arch>(cx: &Cx<A>, va: Va, n: u64) {
    let page = cx.page_size();
    cx.arch().flush_cache_vunmap(cx, va, va + n * page).await;
    let vpn = va / page;
    for i in 0..n {
        let mut st = cx.st();
        st.m.set_pte(None, vpn + i, Pte::default());
        st.k.vmalloc[(vpn + i - layout::VMALLOC) as usize] = false;
    }
    cx.arch().flush_tlb_kernel_range(cx, vpn, vpn + n).await;
}

/// The readdir path: 1 or 2 fresh lowmem pages are mapped with `vm_map_ram` before the reply
/// arrives; each reply page is stored through `kmap`; the entries are then decoded, through the
/// vmap (the 2.6.37 code, selected by a switch) or through each page's direct mapping.
pub async fn readdir<A: Arch>(cx: &Cx<A>, at: u8, pages: u8) {
    let n = 1 + pages as usize % 2;
    let prev = cx.enter("readdir", || format!("{n} pages"));
    let mut pfns = Vec::new();
    for _ in 0..n {
        match alloc_page(cx, false, PageKind::Kernel) {
            Some(p) => pfns.push(p),
            None => break,
        }
    }
    let through_vmap = cx.switches().readdir_decodes_through_vmap;
    let vmap = if through_vmap && pfns.len() == n {
        vm_map_ram(cx, &pfns, at).await
    } else {
        None
    };
    cx.step().await;
    let page = cx.page_size();
    for &pfn in &pfns {
        // A reply arrives and is copied into the page.
        let ka = kmap::kmap(cx, pfn).await;
        let reply: Vec<_> = (0..page).map(|_| cx.fresh()).collect();
        cx.kstore_run(ka, &reply, false, StoreKind::Kernel);
        kmap::kunmap(cx, pfn).await;
        cx.step().await;
    }
    let decode = cx.enter("decode", String::new);
    for (i, &pfn) in pfns.iter().enumerate() {
        let base = match vmap {
            Some(v) => v + i as u64 * page,
            None => kmap::kmap(cx, pfn).await,
        };
        cx.kload_run(base, page);
        if vmap.is_none() {
            kmap::kunmap(cx, pfn).await;
        }
        cx.step().await;
    }
    cx.leave(decode);
    if let Some(v) = vmap {
        vm_unmap_ram(cx, v, n as u64).await;
    }
    for pfn in pfns {
        put_page(cx, pfn);
    }
    cx.leave(prev);
}
