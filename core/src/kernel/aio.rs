//! Native AIO's completion ring (fs/aio.c, mainline 6.18): `io_setup` allocates the ring as
//! page-cache pages of a private file of the `aio` pseudo filesystem and maps that file shared
//! into the process; completions (`aio_complete`) write events and the ring's tail, and
//! `io_getevents` (`aio_read_events_ring`) reads head and tail, copies events out and writes the
//! head, all through the pages' kernel address. A process may also reap events itself: it reads
//! events and the tail and writes the head through its own mapping (libaio's user-space
//! `io_getevents`), which the model's user loads and stores on the ring's pages do.
//!
//! Mainline's maintenance: `aio_setup_ring` runs `flush_dcache_folio` of the first page after
//! writing the header; `aio_complete` runs it after the event's page and after the tail's;
//! `aio_read_events_ring` runs it after writing the head. Nothing is flushed before the kernel
//! reads what the process may have written (the head, read by `aio_complete` and
//! `aio_read_events_ring`), and `ioctx_add_table` stores `ring->id` after `aio_setup_ring`'s
//! flush, with none after it; `lookup_ioctx` reads the id back through the process's mapping
//! (`get_user`). The ring pages are lowmem (`GFP_USER`), so their kernel address is the linear
//! map (`folio_address`).
//!
//! The model keeps one context, of [`RING_PAGES`] pages, for the rest of the run (ring slot
//! [`ring::AIO_RING`]); its pages are those of a file of their own that no file operation of a
//! process reaches ([`super::KernelState::aio_file`]). Its pages are not migrated: they hold
//! the context's reference, which the model's migration does not expect (mainline's
//! `aio_migrate_folio` moves them under the ring lock). The kernel does not act on the values it
//! reads (the oracle judges each read); which events it reads and where it writes the next one
//! follow its own head and tail.

use super::ring::{self, Ring};
use super::{file, mutex_lock, mutex_unlock, object_lock, KernelState, PageKind, Vma, VmaKind};
use crate::addr::{MmId, Pfn, Va, Vpn};
use crate::arch::Arch;
use crate::world::{Cx, StoreKind};

/// Pages of the ring: the header and the first event, then more events.
pub const RING_PAGES: usize = 2;

/// Bytes of `struct aio_ring` before the events (`id`, `nr`, `head`, `tail`, `magic`, the
/// feature words, `header_length`).
const HEADER: u64 = 32;
/// The offset of `id` in the header.
const ID: u64 = 0;
/// The offset of `head`.
const HEAD: u64 = 8;
/// The offset of `tail`, in the same cache line as `head`.
const TAIL: u64 = 12;
/// Bytes of a word of the header.
const WORD: u64 = 4;
/// Bytes of a `struct io_event` (`data`, `obj`, `res`, `res2`).
const EVENT: u64 = 32;

/// The kernel's side of the context (`struct kioctx`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Ctx {
    /// The address space whose `ioctx_table` holds it.
    pub owner: MmId,
    /// `ctx->user_id`: the user page the ring was mapped at (`ctx->mmap_base`).
    pub base: Vpn,
    /// `ctx->tail`: the next event slot `aio_complete` writes.
    pub tail: u8,
    /// The head the kernel last wrote (`aio_read_events_ring`).
    pub head: u8,
}

/// `ctx->nr_events`: the events the ring holds on this machine's page size.
fn nr_events<A: Arch>(cx: &Cx<A>) -> u64 {
    ((RING_PAGES as u64 * cx.page_size()).saturating_sub(HEADER) / EVENT).max(1)
}

/// The page index and byte offset of event slot `slot` (`AIO_EVENTS_OFFSET`: the header takes
/// the first page's first event slots).
fn event_at<A: Arch>(cx: &Cx<A>, slot: u64) -> (usize, u64) {
    let page = cx.page_size();
    let at = HEADER.div_ceil(EVENT) * EVENT + slot * EVENT;
    ((at / page) as usize % RING_PAGES, at % page)
}

/// The ring, if a context exists.
fn ring<A: Arch>(cx: &Cx<A>) -> Option<(Ctx, Ring)> {
    let k = cx.kernel();
    Some((k.aio?, k.rings[ring::AIO_RING].clone()?))
}

/// `io_setup()`: `ioctx_alloc` with the ring lock held throughout. `aio_setup_ring` creates
/// [`RING_PAGES`] zeroed lowmem page-cache pages of the context's file (`__filemap_get_folio`
/// with `GFP_USER | __GFP_ZERO`), maps the file shared at a free address at or after user page
/// `at` that the arch's colouring allows for offset 0 (`do_mmap` under `mmap_lock`), writes the
/// header through the first page's kernel address and runs `flush_dcache_folio` of it; then
/// `ioctx_add_table` stores the context's id into the header, with no flush. The model keeps one
/// context: a second `io_setup` fails (`EAGAIN`).
pub async fn io_setup<A: Arch>(cx: &Cx<A>, mm: MmId, at: u8) {
    let ring_lock = object_lock(cx, super::locks::RING + ring::AIO_RING);
    mutex_lock(cx, ring_lock).await;
    let prev = cx.enter("ioctx_alloc", || format!("mm {mm}"));
    if cx.kernel().aio.is_some() {
        cx.note(|| "EAGAIN: the model keeps one AIO context".into());
    } else if let Some(r) = setup_ring(cx, mm, at).await {
        cx.step().await;
        let p = cx.enter("ioctx_add_table", || "ring->id".into());
        let id: Vec<_> = (0..WORD).map(|_| cx.fresh()).collect();
        cx.kstore_run(r.kva[0] + ID, &id, false, StoreKind::UserData);
        cx.leave(p);
    }
    cx.leave(prev);
    mutex_unlock(cx, ring_lock);
}

/// `aio_setup_ring`: the ring's pages, its mapping and its header; `None` (nothing kept) when
/// memory or address space runs out.
async fn setup_ring<A: Arch>(cx: &Cx<A>, mm: MmId, at: u8) -> Option<Ring> {
    let prev = cx.enter("aio_setup_ring", || format!("{RING_PAGES} pages"));
    let file = cx.kernel().aio_file();
    let mut pfns: Vec<Pfn> = Vec::with_capacity(RING_PAGES);
    for index in 0..RING_PAGES as u8 {
        let Some(pfn) = super::alloc_page(cx, false, PageKind::PageCache { file, index }) else {
            cx.note(|| "ENOMEM: no page for the AIO ring".into());
            release(cx, &pfns);
            cx.leave(prev);
            return None;
        };
        cx.kernel_mut().files[file as usize].pages[index as usize] = Some(pfn);
        // The page cache's reference, and the context's (`ctx->ring_folios`).
        super::get_page(cx, pfn);
        super::vmap::clear_highpage(cx, pfn, StoreKind::UserData).await;
        pfns.push(pfn);
    }
    let kva: Vec<Va> = pfns
        .iter()
        .map(|&p| {
            cx.linear_va(p)
                .expect("GFP_USER pages are in the linear map")
        })
        .collect();
    // `ctx->ring_folios`: the pages are the context's from here on.
    let r = Ring { kva, pfns };
    cx.kernel_mut().rings[ring::AIO_RING] = Some(r.clone());
    let Ring { kva, pfns } = r;
    let mmap_lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, mmap_lock).await;
    let modulus = cx.arch().mmap_colour_pages(cx, true);
    let len = RING_PAGES as u64;
    let start = ring::get_unmapped_area(cx, mm, at, len, 0, modulus);
    if let Some(start) = start {
        let vma = Vma {
            start,
            end: start + len,
            kind: VmaKind::File {
                file,
                pgoff: 0,
                shared: true,
            },
            write: true,
            exec: false,
        };
        cx.kernel_mut().mms[mm as usize].insert_vma(vma);
        cx.note(|| format!("ring mapped at user pages {start}..{}", start + len));
    }
    mutex_unlock(cx, mmap_lock);
    let Some(start) = start else {
        cx.note(|| "ENOMEM: no room for the ring's mapping".into());
        cx.kernel_mut().rings[ring::AIO_RING] = None;
        release(cx, &pfns);
        cx.leave(prev);
        return None;
    };
    cx.step().await;
    let header: Vec<_> = (0..HEADER).map(|_| cx.fresh()).collect();
    cx.kstore_run(kva[0], &header, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_folio", || format!("page {}", pfns[0]));
    cx.arch().flush_dcache_folio(cx, pfns[0], 1).await;
    cx.leave(p);
    let r = Ring { kva, pfns };
    {
        let mut k = cx.kernel_mut();
        k.aio = Some(Ctx {
            owner: mm,
            base: start,
            tail: 0,
            head: 0,
        });
    }
    cx.leave(prev);
    Some(r)
}

/// Drops the page cache's and the context's references of pages allocated for a ring that
/// was not set up (`aio_free_ring`).
fn release<A: Arch>(cx: &Cx<A>, pfns: &[Pfn]) {
    for &p in pfns {
        super::put_page(cx, p);
        super::put_page(cx, p);
    }
}

/// `aio_complete` of a request, in interrupt context (a bio's completion): under
/// `completion_lock` (which it does not wait for in the model: a completion that finds it taken
/// comes later, outside the run), the event is written into slot `ctx->tail` through its page's
/// kernel address and `flush_dcache_folio` of that page follows; the head is read (to refill
/// the free slots) and the new tail written through the first page, then `flush_dcache_folio`
/// of it.
pub async fn aio_complete<A: Arch>(cx: &Cx<A>) {
    let Some((ctx, r)) = ring(cx) else {
        return;
    };
    let lock = object_lock(cx, super::locks::AIO_COMPLETION);
    let n = nr_events(cx);
    {
        let mut k = cx.kernel_mut();
        if k.locks[lock].is_some() {
            drop(k);
            cx.note(|| "completion_lock is taken: the completion comes later".into());
            return;
        }
        k.locks[lock] = Some(cx.me());
        let next = (ctx.tail as u64 + 1) % n;
        k.aio.as_mut().expect("checked").tail = next as u8;
    }
    cx.preempt_disable();
    let (page, off) = event_at(cx, ctx.tail as u64);
    let prev = cx.enter("aio_complete", || format!("event {}", ctx.tail));
    let event: Vec<_> = (0..EVENT.min(cx.page_size() - off))
        .map(|_| cx.fresh())
        .collect();
    cx.kstore_run(r.kva[page] + off, &event, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_folio", || format!("page {}", r.pfns[page]));
    cx.arch().flush_dcache_folio(cx, r.pfns[page], 1).await;
    cx.leave(p);
    cx.step().await;
    cx.kload_run(r.kva[0] + HEAD, WORD);
    let tail: Vec<_> = (0..WORD).map(|_| cx.fresh()).collect();
    cx.kstore_run(r.kva[0] + TAIL, &tail, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_folio", || format!("page {}", r.pfns[0]));
    cx.arch().flush_dcache_folio(cx, r.pfns[0], 1).await;
    cx.leave(p);
    cx.leave(prev);
    cx.preempt_enable();
    cx.kernel_mut().locks[lock] = None;
}

/// `io_getevents()`: `lookup_ioctx` reads the ring's id through the caller's mapping
/// (`get_user` of `ring->id` at the context's address), then, for the context's own process,
/// `aio_read_events_ring` under the ring lock reads head and tail through the first page's
/// kernel address, copies out the events from its head to its tail (reading them through
/// their pages' kernel address), writes the new head and runs `flush_dcache_folio` of the
/// first page.
pub async fn io_getevents<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let Some((ctx, r)) = ring(cx) else {
        return;
    };
    let prev = cx.enter("lookup_ioctx", || format!("user page {}", ctx.base));
    let va = ctx.base * cx.page_size() + ID;
    for i in 0..WORD {
        if file::copy_from_user(cx, mm, va + i).await.is_none() {
            cx.note(|| "EFAULT: the ring's id cannot be read".into());
            cx.leave(prev);
            return;
        }
    }
    cx.leave(prev);
    if mm != ctx.owner {
        cx.note(|| "EINVAL: no such context in this address space".into());
        return;
    }
    cx.step().await;
    let ring_lock = object_lock(cx, super::locks::RING + ring::AIO_RING);
    mutex_lock(cx, ring_lock).await;
    let prev = cx.enter("aio_read_events_ring", || "head and tail".into());
    cx.kload_run(r.kva[0] + HEAD, 2 * WORD);
    let (head, tail) = {
        let k = cx.kernel();
        let c = k.aio.expect("a context is never freed");
        (c.head as u64, c.tail as u64)
    };
    let n = nr_events(cx);
    let mut slot = head;
    while slot != tail {
        cx.step().await;
        let (page, off) = event_at(cx, slot);
        cx.kload_run(r.kva[page] + off, EVENT.min(cx.page_size() - off));
        slot = (slot + 1) % n;
    }
    let new_head: Vec<_> = (0..WORD).map(|_| cx.fresh()).collect();
    cx.kstore_run(r.kva[0] + HEAD, &new_head, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_folio", || format!("page {}", r.pfns[0]));
    cx.arch().flush_dcache_folio(cx, r.pfns[0], 1).await;
    cx.leave(p);
    cx.kernel_mut().aio.as_mut().expect("checked").head = tail as u8;
    cx.leave(prev);
    mutex_unlock(cx, ring_lock);
}
