//! A pipe and `splice`: data that moves between processes, the page cache and the pipe by
//! reference to the page that holds it, not by copy, and is copied only when a reader takes it
//! out (fs/pipe.c, fs/splice.c, mm/filemap.c). `kmap_local_page` is modelled as
//! `kmap_atomic`, which it replaces.
//!
//! A pipe buffer names a page and the byte in it: a page of the pipe's own that `write()`
//! filled, a user page `vmsplice()` took by `get_user_pages`, or a page-cache page `splice()`
//! from a file took. `read()` of the pipe copies the byte out of the page through a kernel
//! mapping (`copy_page_to_iter` under `kmap_local_page`), and `splice()` to a file writes it
//! into a page-cache page as `write()` does. Nothing on the way flushes but what mainline
//! does: GUP's `flush_anon_page` and `flush_dcache_page` of a vmspliced page,
//! `filemap_splice_read`'s `flush_dcache_folio` of a page-cache folio a process may write
//! through a shared mapping, and the writer's `flush_dcache_folio` after it stores into the
//! page cache.
//!
//! The model has one pipe of [`PIPE_BUFS`] buffers, each one byte long, shared by every
//! process; a full pipe makes a writer give up (`O_NONBLOCK`'s `EAGAIN`) and an empty one a
//! reader. A vmspliced page stays pinned for I/O until the pipe lets it go: its process does not
//! touch it meanwhile, as `vmsplice(2)` asks of a program (and the model asks of every user
//! page under I/O).

use super::file::{copy_from_user, copy_to_user, file_page, find_or_read_page};
use super::{alloc_page, gup, kmap, mutex_lock, mutex_unlock, nth_user_page, object_lock};
use super::{put_page, uva, PageKind};
use crate::addr::{MmId, Pfn, Stamp};
use crate::arch::Arch;
use crate::world::{Cx, StoreKind};

/// Buffers in the pipe (`pipe->max_usage`, 16 in mainline).
pub const PIPE_BUFS: usize = 2;

/// What a pipe buffer's page is (its `pipe_buf_operations`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BufKind {
    /// A page of the pipe's own, filled by `write()` (`anon_pipe_buf_ops`).
    Anon,
    /// A user page taken by `vmsplice()` (`user_page_pipe_buf_ops`), pinned for I/O.
    User,
    /// A page-cache page spliced from a file (`page_cache_pipe_buf_ops`).
    PageCache,
}

/// One pipe buffer: a byte of a page.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct PipeBuf {
    /// The page.
    pub pfn: Pfn,
    /// The byte's offset in it.
    pub off: u64,
    /// What the page is.
    pub kind: BufKind,
}

/// Takes the pipe's mutex (`pipe_lock`).
async fn pipe_lock<A: Arch>(cx: &Cx<A>) -> usize {
    let lock = object_lock(cx, super::locks::PIPE);
    mutex_lock(cx, lock).await;
    lock
}

/// Whether the pipe has room for another buffer; a full pipe makes the writer give up
/// (`EAGAIN`).
fn has_room<A: Arch>(cx: &Cx<A>) -> bool {
    let room = cx.kernel().pipe.len() < PIPE_BUFS;
    if !room {
        cx.note(|| "EAGAIN: the pipe is full".into());
    }
    room
}

/// Adds a buffer for byte `off` (modulo the page size) of page `pfn` at the pipe's head.
fn push<A: Arch>(cx: &Cx<A>, pfn: Pfn, off: u64, kind: BufKind) {
    let off = off % cx.page_size();
    cx.st().k.pipe.push(PipeBuf { pfn, off, kind });
}

/// Takes the pipe's oldest buffer out, with its byte read through a kernel mapping of its page
/// (`kmap_local_page`, no flush); `None` (`EAGAIN`) when the pipe is empty. The caller
/// releases the buffer once it is done with the byte.
async fn take_oldest<A: Arch>(cx: &Cx<A>) -> Option<(PipeBuf, Stamp)> {
    let Some(buf) = cx.kernel().pipe.first().copied() else {
        cx.note(|| "EAGAIN: the pipe is empty".into());
        return None;
    };
    let (k, how) = kmap::kmap_atomic(cx, buf.pfn).await;
    let v = cx.kload(k + buf.off);
    kmap::kunmap_atomic(cx, k, how).await;
    cx.st().k.pipe.remove(0);
    Some((buf, v))
}

/// Drops a buffer the pipe let go of (`pipe_buf_release`): its page reference, and a
/// vmspliced page's pin.
fn release<A: Arch>(cx: &Cx<A>, buf: PipeBuf) {
    match buf.kind {
        BufKind::User => gup::unpin(cx, buf.pfn),
        BufKind::Anon | BufKind::PageCache => put_page(cx, buf.pfn),
    }
}

/// `write()` of one byte of the caller's `page`-th user page into the pipe (`pipe_write`): a
/// new pipe page (possibly highmem) takes it through `kmap_local_page`, with no flush.
pub async fn pipe_write<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("pipe_write", || format!("user page {vpn}"));
    let lock = pipe_lock(cx).await;
    if has_room(cx) {
        // copy_page_from_iter faults the source in; the pipe's mutex is held throughout.
        let va = uva(cx, vpn, off);
        if let Some(v) = copy_from_user(cx, mm, va).await {
            if let Some(pfn) = alloc_page(cx, true, PageKind::Kernel) {
                let off = va % cx.page_size();
                let (k, how) = kmap::kmap_atomic(cx, pfn).await;
                cx.kstore_as(k + off, v, false, StoreKind::UserData);
                kmap::kunmap_atomic(cx, k, how).await;
                push(cx, pfn, off, BufKind::Anon);
            }
        }
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `vmsplice()` of one byte of the caller's `page`-th user page into the pipe
/// (`vmsplice_to_pipe`, `iter_to_pipe`): under the pipe's mutex, `get_user_pages` takes the
/// page, with its `flush_anon_page` and `flush_dcache_page` (GUP-fast, which flushes nothing,
/// is not permitted where the D-cache aliases: ARM has it only with LPAE, MIPS's
/// `gup_fast_permitted` refuses it, PA-RISC lacks it), and the buffer refers to the page.
pub async fn vmsplice<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("vmsplice_to_pipe", || format!("user page {vpn}"));
    let lock = pipe_lock(cx).await;
    if has_room(cx) {
        if let Some(pfn) = gup::get_user_pages(cx, mm, vpn, false, false).await {
            push(cx, pfn, uva(cx, vpn, off), BufKind::User);
        }
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `splice()` of one byte of a file page into the pipe (`filemap_splice_read`): the page is
/// found or read in, `flush_dcache_folio` runs if a process may write the file through a shared
/// mapping, and the buffer refers to the page-cache page (`splice_folio_into_pipe`).
pub async fn splice_read<A: Arch>(cx: &Cx<A>, file: u8, index: u8, off: u8) {
    let (file, index) = file_page(cx, file, index);
    let prev = cx.enter("filemap_splice_read", || {
        format!("file {file} page {index}")
    });
    let lock = pipe_lock(cx).await;
    if has_room(cx) {
        if let Some(pfn) = find_or_read_page(cx, file, index).await {
            if super::file::writably_mapped(cx, pfn) {
                super::file::flush_dcache_folio_of(cx, pfn).await;
            }
            push(cx, pfn, off as u64, BufKind::PageCache);
        }
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `read()` of the pipe's oldest byte into the caller's `page`-th user page (`pipe_read`):
/// `copy_page_to_iter` reads the buffer's page through `kmap_local_page`, with no flush, and
/// the buffer is released.
pub async fn pipe_read<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("pipe_read", || format!("user page {vpn}"));
    let lock = pipe_lock(cx).await;
    if let Some((buf, v)) = take_oldest(cx).await {
        copy_to_user(cx, mm, uva(cx, vpn, off), v).await;
        release(cx, buf);
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `splice()` of the pipe's oldest byte into a file page (`iter_file_splice_write`): the byte
/// is read out of the buffer's page through a kernel mapping and written into the page cache as
/// `generic_perform_write` writes (`flush_dcache_folio` first if the file is mapped shared, then
/// after the store), and the buffer is released.
pub async fn splice_write<A: Arch>(cx: &Cx<A>, file: u8, index: u8, off: u8) {
    let (file, index) = file_page(cx, file, index);
    let prev = cx.enter("iter_file_splice_write", || {
        format!("file {file} page {index}")
    });
    let lock = pipe_lock(cx).await;
    if let Some((buf, v)) = take_oldest(cx).await {
        if let Some(pfn) = find_or_read_page(cx, file, index).await {
            super::file::store_into_page_cache(cx, pfn, off, v).await;
            put_page(cx, pfn);
        }
        release(cx, buf);
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}
