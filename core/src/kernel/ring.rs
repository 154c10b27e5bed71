//! Ring buffers the kernel shares with a process through three aliases of each page: the
//! kernel mapping of the page (through which `vmalloc_user` zeroed it), its vmalloc-space alias
//! (through which the kernel writes records and reads what the user wrote), and the process's
//! mapping of it (`remap_vmalloc_range`). perf's ring buffer under `CONFIG_PERF_USE_VMALLOC`
//! (`perf_mmap`, `perf_output_copy`, the `data_tail` the user writes back) and videobuf2's
//! vmalloc buffers (`vb2_vmalloc_mmap`) are built this way.
//!
//! Mainline does no cache maintenance around the sharing itself: `vm_insert_page` calls
//! `flush_dcache_page` as it maps each page, and `vmalloc_user` aligns the kernel address to
//! `SHMLBA`, so that a user mapping the kernel colours alike shares the kernel's lines wherever
//! the cache's colours fit in `SHMLBA`. Records are written and read through the vmalloc alias
//! with no flush. A ring lives for the rest of the run once allocated; the user mapping is a
//! [`VmaKind::Special`] VMA, not copied at fork.

use super::{
    get_page, mutex_lock, mutex_unlock, object_lock, vmap, KernelState, Special, Vma, VmaKind,
};
use crate::addr::{layout, MmId, Pfn, Va, Vpn};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::world::{Cx, StoreKind};

/// How many perf-like ring buffers there may be (the `ring` field of their ops).
pub const RINGS: usize = 2;
/// The `PACKET_MMAP` ring's slot ([`super::packet`]).
pub const PACKET_RING: usize = RINGS;
/// The io_uring instance's SQ/CQ ring region's slot ([`super::uring`]).
pub const URING_RINGS: usize = RINGS + 1;
/// The io_uring instance's SQE array's slot.
pub const URING_SQES: usize = RINGS + 2;
/// The native AIO context's ring's slot ([`super::aio`]).
pub const AIO_RING: usize = RINGS + 3;
/// How many ring slots there are, all kinds together.
pub const ALL_RINGS: usize = RINGS + 4;

/// Bytes of a record the kernel writes, or of what it reads back.
pub const RECORD: u64 = 4;

/// A buffer the kernel shares with user space: its pages and the kernel address of each.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Ring {
    /// The kernel address of each page: consecutive vmalloc addresses for a `vmalloc_user`
    /// ring (`rb->user_page`, the data pages following it), the linear map for page blocks.
    pub kva: Vec<Va>,
    /// Its pages, in address order.
    pub pfns: Vec<Pfn>,
}

/// The first free range of `len` user pages of `mm` at or after page `at` (wrapping) whose
/// first page less `pgoff` is a multiple of `modulus` (`arch_get_unmapped_area`: `mmap` without
/// `MAP_FIXED` and the kernel's own shared buffers; a `modulus` of 1 asks for no colour).
pub fn get_unmapped_area<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    at: u8,
    len: u64,
    pgoff: u64,
    modulus: u64,
) -> Option<Vpn> {
    let k = cx.kernel();
    let m = &k.mms[mm as usize];
    let free = |s: Vpn| {
        s + len <= layout::USER_PAGES && m.vmas.iter().all(|v| v.end <= s || v.start >= s + len)
    };
    let modulus = modulus.max(1);
    let congruent = |s: Vpn| (s + modulus * layout::USER_PAGES - pgoff) % modulus == 0;
    let at = at as u64 % layout::USER_PAGES;
    (at..layout::USER_PAGES)
        .chain(0..at)
        .find(|&s| congruent(s) && free(s))
}

/// `mmap()` of ring `ring` (`perf_mmap`; `vb2_vmalloc_mmap`): the ring is allocated with
/// `vmalloc_user` at or after vmalloc page `at` (1 or 2 pages, `pages`) if it does not exist
/// yet, then every page is mapped at a colour-aligned user address (`remap_vmalloc_range`:
/// `vm_insert_page` of each, `flush_dcache_page` then `set_pte_at`). A process maps a ring once.
pub async fn ring_mmap<A: Arch>(cx: &Cx<A>, mm: MmId, ring: u8, pages: u8, at: u8, write: bool) {
    let n = ring as usize % RINGS;
    let mmap_lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, mmap_lock).await;
    let ring_lock = object_lock(cx, super::locks::RING + n);
    mutex_lock(cx, ring_lock).await;
    let prev = cx.enter("perf_mmap", || format!("ring {n}"));
    if !maps(cx, mm, n) {
        if let Some(r) = rb_alloc(cx, n, pages, at).await {
            let modulus = cx.arch().mmap_colour_pages(cx, true);
            remap(cx, mm, n, &r, at, 0, modulus, write, "remap_vmalloc_range").await;
        }
    }
    cx.leave(prev);
    mutex_unlock(cx, ring_lock);
    mutex_unlock(cx, mmap_lock);
}

/// Whether `mm` maps ring slot `n` (from its first page; a process maps a ring once).
pub fn maps<A: Arch>(cx: &Cx<A>, mm: MmId, n: usize) -> bool {
    cx.kernel().mms[mm as usize].vmas.iter().any(|v| {
        v.kind
            == VmaKind::Special {
                what: Special::Ring(n as u8),
                pgoff: 0,
            }
    })
}

/// `count` zeroed lowmem pages (`alloc_pages` with `__GFP_ZERO`: a block of its own each,
/// reached through the linear map), published as ring slot `n`; `None`, with nothing kept, when
/// memory runs out. The packet ring's `alloc_pg_vec` and io_uring's `io_create_region`.
pub async fn alloc_linear<A: Arch>(cx: &Cx<A>, n: usize, count: usize) -> Option<Ring> {
    let mut pfns = Vec::with_capacity(count);
    for _ in 0..count {
        let Some(pfn) = super::alloc_page(cx, false, super::PageKind::Kernel) else {
            cx.note(|| "ENOMEM: no page for the ring".into());
            for &p in &pfns {
                super::put_page(cx, p);
            }
            return None;
        };
        vmap::clear_highpage(cx, pfn, StoreKind::UserData).await;
        pfns.push(pfn);
    }
    let kva = pfns
        .iter()
        .map(|&p| cx.linear_va(p).expect("lowmem pages are in the linear map"))
        .collect();
    let r = Ring { kva, pfns };
    cx.kernel_mut().rings[n] = Some(r.clone());
    Some(r)
}

/// `rb_alloc` under `CONFIG_PERF_USE_VMALLOC`: the ring, allocated with `vmalloc_user` if it
/// does not exist yet.
async fn rb_alloc<A: Arch>(cx: &Cx<A>, n: usize, pages: u8, at: u8) -> Option<Ring> {
    if let Some(r) = cx.kernel().rings[n].clone() {
        return Some(r);
    }
    let (va, pfns) = vmap::vmalloc_user(cx, 1 + pages as usize % 2, at).await?;
    let size = cx.page_size();
    let kva = (0..pfns.len() as u64).map(|i| va + i * size).collect();
    let r = Ring { kva, pfns };
    cx.kernel_mut().rings[n] = Some(r.clone());
    Some(r)
}

/// The whole of ring slot `n` mapped into `mm` at a free address whose first page less
/// `pgoff` is a multiple of `modulus`, as `what` (`remap_vmalloc_range`, a driver's mmap
/// handler) does it: page by page with [`vm_insert_page`], in a [`Special::Ring`] VMA.
#[allow(clippy::too_many_arguments)]
pub async fn remap<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    n: usize,
    r: &Ring,
    at: u8,
    pgoff: u64,
    modulus: u64,
    write: bool,
    what: &'static str,
) {
    let len = r.pfns.len() as u64;
    let Some(start) = get_unmapped_area(cx, mm, at, len, pgoff, modulus) else {
        cx.note(|| "ENOMEM: no room for the ring's mapping".into());
        return;
    };
    let vma = Vma {
        start,
        end: start + len,
        kind: VmaKind::Special {
            what: Special::Ring(n as u8),
            pgoff: 0,
        },
        write,
        exec: false,
    };
    cx.kernel_mut().mms[mm as usize].insert_vma(vma);
    let prev = cx.enter(what, || {
        format!("ring {n} at user pages {start}..{}", start + len)
    });
    for (i, &pfn) in r.pfns.iter().enumerate() {
        vm_insert_page(cx, mm, start + i as Vpn, pfn, write).await;
    }
    cx.leave(prev);
}

/// `vm_insert_page`: `flush_dcache_page` of the page (`validate_page_before_insert`), then its
/// entry published with `set_pte_at` under the page-table lock.
pub async fn vm_insert_page<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pfn: Pfn, write: bool) {
    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(p);
    get_page(cx, pfn);
    cx.kernel_mut().pages[pfn as usize].rmap.push((mm, vpn));
    cx.preempt_disable();
    let p = cx.enter("set_pte_at", || format!("mm {mm}, page {vpn} -> pfn {pfn}"));
    cx.arch()
        .set_pte_at(cx, mm, vpn, Pte::new(pfn, write, false))
        .await;
    cx.leave(p);
    cx.preempt_enable();
}

/// The kernel writes a record of up to [`RECORD`] fresh bytes at byte `off` of page `page` of
/// ring `ring` through its vmalloc alias, with preemption off (`perf_output_begin`,
/// `perf_output_copy`, `perf_output_end`; a vb2 capture driver filling a buffer). No flush.
/// The record is data for the user, as `copy_to_user`'s is: if the user maps the ring
/// executable, running it is the user's business (its own `cacheflush`).
pub async fn ring_output<A: Arch>(cx: &Cx<A>, ring: u8, page: u8, off: u8) {
    let Some((va, n)) = record_at(cx, ring, page, off) else {
        return;
    };
    cx.preempt_disable();
    let prev = cx.enter("perf_output_copy", || {
        format!("ring {}, {va:#x}", ring as usize % RINGS)
    });
    let values: Vec<_> = (0..n).map(|_| cx.fresh()).collect();
    cx.kstore_run(va, &values, false, StoreKind::UserData);
    cx.leave(prev);
    cx.preempt_enable();
}

/// The kernel reads up to [`RECORD`] bytes the user may have written at byte `off` of page
/// `page` of ring `ring` through its vmalloc alias (`perf_output_begin` reading `data_tail`; a
/// vb2 output driver reading a buffer the user filled). No flush.
pub async fn ring_read<A: Arch>(cx: &Cx<A>, ring: u8, page: u8, off: u8) {
    let Some((va, n)) = record_at(cx, ring, page, off) else {
        return;
    };
    let prev = cx.enter("perf_output_begin", || {
        format!("ring {}, {va:#x}", ring as usize % RINGS)
    });
    cx.kload_run(va, n);
    cx.leave(prev);
}

/// The vmalloc address of byte `off` of page `page` of ring `ring`, and how many bytes of a
/// record fit from there in the page; `None` if the ring does not exist.
fn record_at<A: Arch>(cx: &Cx<A>, ring: u8, page: u8, off: u8) -> Option<(Va, u64)> {
    let r = cx.kernel().rings[ring as usize % RINGS].clone()?;
    let size = cx.page_size();
    let p = page as usize % r.pfns.len();
    let o = off as u64 % size;
    Some((r.kva[p] + o, RECORD.min(size - o)))
}
