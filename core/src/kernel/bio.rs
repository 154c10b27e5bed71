//! Block I/O on vmalloc'd metadata buffers, as XFS (`xfs_buf`) and device-mapper (`dm_io` on a
//! `DM_IO_VMA` area) use them: a buffer of several pages the kernel reaches through one
//! vmalloc-space alias, transferred by the device page by page.
//!
//! The device's streaming DMA maintains each page through its linear (or pinned pkmap) alias
//! only; the vmalloc alias is the caller's: `flush_kernel_vmap_range` over the buffer before any
//! I/O is submitted (what the kernel stored through the alias reaches memory, and its lines
//! go), `invalidate_kernel_vmap_range` when a read completes, before the kernel reads the data
//! through the alias (lines fetched meanwhile, speculatively, go). A buffer lives in the buffer
//! cache for the rest of the run once built, and its lock is held for each I/O.

use super::{dma, mutex_lock, mutex_unlock, object_lock, vmap};
use crate::addr::{Pfn, Va};
use crate::arch::Arch;
use crate::op::DmaDir;
use crate::world::{Cx, StoreKind};

/// How many metadata buffers the buffer cache holds.
pub const VMAP_BUFS: usize = 2;

/// Bytes a transaction changes in a buffer before writing it back.
pub const DIRTY_BYTES: u64 = 4;

/// A metadata buffer: its pages and the vmalloc address they are mapped at.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VmapBuf {
    /// The vmalloc address (`bp->b_addr`).
    pub va: Va,
    /// Its pages, in address order.
    pub pfns: Vec<Pfn>,
}

/// `xfs_buf_get` of metadata buffer `buf`: the cached buffer, or a new one of 1 or 2 pages
/// (`pages`) mapped at or after vmalloc page `at` (`xfs_buf_alloc_backing_mem`: `__vmalloc` of
/// a buffer larger than a page, zeroed unless it is to be read).
async fn xfs_buf_get<A: Arch>(
    cx: &Cx<A>,
    buf: usize,
    at: u8,
    pages: u8,
    zero: bool,
) -> Option<VmapBuf> {
    if let Some(b) = cx.kernel().vmap_bufs[buf].clone() {
        return Some(b);
    }
    let n = 1 + pages as usize % 2;
    let prev = cx.enter("xfs_buf_alloc", || format!("buffer {buf}, {n} pages"));
    let made = vmap::vmalloc(cx, n, at, 1, false, zero.then_some(StoreKind::Kernel)).await;
    cx.leave(prev);
    let (va, pfns) = made?;
    let b = VmapBuf { va, pfns };
    cx.kernel_mut().vmap_bufs[buf] = Some(b.clone());
    Some(b)
}

/// One I/O on metadata buffer `buf`, under its lock: a write (`write`) after a transaction
/// stored [`DIRTY_BYTES`] fresh bytes at `off` through the vmap, or a read whose data the
/// verifier then reads through the vmap. Each page goes to the device as one bio segment
/// (`xfs_buf_submit` / `dm_io`): `flush_kernel_vmap_range` first, then for each page the
/// streaming DMA of its transfer; a read ends with `invalidate_kernel_vmap_range`
/// (`xfs_buf_ioend` / dm-io's `complete_io`).
pub async fn xfs_buf_io<A: Arch>(cx: &Cx<A>, buf: u8, at: u8, pages: u8, write: bool, off: u8) {
    let buf = buf as usize % VMAP_BUFS;
    let lock = object_lock(cx, super::locks::VMAP_BUF + buf);
    mutex_lock(cx, lock).await;
    if let Some(b) = xfs_buf_get(cx, buf, at, pages, write).await {
        io(cx, buf, &b, write, off).await;
    }
    mutex_unlock(cx, lock);
}

async fn io<A: Arch>(cx: &Cx<A>, buf: usize, b: &VmapBuf, write: bool, off: u8) {
    let page = cx.page_size();
    let len = b.pfns.len() as u64 * page;
    if write {
        // The transaction's change, within one page of the buffer.
        let at = off as u64 % len;
        let n = DIRTY_BYTES.min(page - at % page);
        let values: Vec<_> = (0..n).map(|_| cx.fresh()).collect();
        let p = cx.enter("xfs_trans_log_buf", || format!("buffer {buf}, byte {at}"));
        cx.kstore_run(b.va + at, &values, false, StoreKind::Kernel);
        cx.leave(p);
        cx.step().await;
    }
    let dir = if write {
        DmaDir::ToDevice
    } else {
        DmaDir::FromDevice
    };
    let prev = cx.enter("xfs_buf_submit", || {
        format!("buffer {buf} at {:#x}, {dir:?}", b.va)
    });
    let p = cx.enter("flush_kernel_vmap_range", || format!("{:#x}, {len}", b.va));
    cx.arch().flush_kernel_vmap_range(cx, b.va, len).await;
    cx.leave(p);
    cx.step().await;
    for &pfn in &b.pfns {
        dma::dma_map_page(cx, pfn, dir, "dma_map_page").await;
        cx.step().await;
        dma::device_access(cx, pfn, dir, None);
        cx.step().await;
        dma::dma_unmap_page(cx, pfn, dir, "dma_unmap_page").await;
        cx.step().await;
    }
    if !write {
        let p = cx.enter("invalidate_kernel_vmap_range", || {
            format!("{:#x}, {len}", b.va)
        });
        cx.arch().invalidate_kernel_vmap_range(cx, b.va, len).await;
        cx.leave(p);
        cx.step().await;
        // The buffer's verifier reads what came from the disk.
        let p = cx.enter("xfs_buf_verify_read", || format!("buffer {buf}"));
        for i in 0..b.pfns.len() as u64 {
            cx.kload_run(b.va + i * page, page);
        }
        cx.leave(p);
    }
    cx.leave(prev);
}
