//! `vm_map_ram` and `vm_unmap_ram`, and a readdir-like path (as NFS had in 2.6.37) that maps
//! fresh pages into vmalloc space, fills them through kmap as replies arrive, and decodes them.
//!
//! `vm_map_ram` places the mapping where asked (the input chooses the vmalloc page, so the
//! colour) and calls `flush_cache_vmap` on the new range only: it does no maintenance of the
//! pages' other aliases, as in the kernel.

use super::{alloc_page, kmap, put_page, PageKind};
use crate::addr::{layout, Pfn, Va};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::world::Cx;

/// `vm_map_ram`: maps `pfns` at the first free vmalloc range at or after page `at`.
pub async fn vm_map_ram<A: Arch>(cx: &Cx<A>, pfns: &[Pfn], at: u8) -> Option<Va> {
    let n = pfns.len() as u64;
    let start = {
        let st = cx.st();
        let at = at as u64 % layout::VMALLOC_PAGES;
        (at..layout::VMALLOC_PAGES).chain(0..at).find(|&s| {
            s + n <= layout::VMALLOC_PAGES && (s..s + n).all(|p| !st.k.vmalloc[p as usize])
        })?
    };
    let page = cx.page_size();
    let va = (layout::VMALLOC + start) * page;
    let prev = cx.enter("vm_map_ram", || format!("pages {pfns:?} at {va:#x}"));
    for (i, &pfn) in pfns.iter().enumerate() {
        let mut st = cx.st();
        st.k.vmalloc[(start + i as u64) as usize] = true;
        st.m.set_pte(
            None,
            layout::VMALLOC + start + i as u64,
            Pte::new(pfn, true, false),
        );
    }
    cx.arch().flush_cache_vmap(cx, va, va + n * page).await;
    cx.leave(prev);
    Some(va)
}

/// `vm_unmap_ram`: `flush_cache_vunmap`, PTEs cleared, kernel TLB flushed.
pub async fn vm_unmap_ram<A: Arch>(cx: &Cx<A>, va: Va, n: u64) {
    let page = cx.page_size();
    let prev = cx.enter("vm_unmap_ram", || format!("{va:#x}, {n} pages"));
    cx.arch().flush_cache_vunmap(cx, va, va + n * page).await;
    let vpn = va / page;
    for i in 0..n {
        let mut st = cx.st();
        st.m.set_pte(None, vpn + i, Pte::default());
        st.k.vmalloc[(vpn + i - layout::VMALLOC) as usize] = false;
    }
    cx.arch().flush_tlb_kernel_range(cx, vpn, vpn + n).await;
    cx.leave(prev);
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
        cx.kstore_run(ka, &reply, false, crate::world::StoreKind::Kernel);
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
