//! An io_uring instance's shared rings: the SQ/CQ ring region (heads, tails, the SQ index
//! array, the CQEs) and the SQE array, each allocated zeroed by the kernel and mapped into the
//! process by `mmap` of the ring file (`io_uring_mmap`, `vm_insert_pages` of the region's
//! pages). The process writes SQEs and the SQ tail and reads CQEs and the CQ tail with its own
//! loads and stores; the kernel reads and writes the other side through the region's kernel
//! address (`page_address` of the single-block allocation, the linear map).
//!
//! Mainline (io_uring/memmap.c, io_uring/io_uring.c) does no cache maintenance on either side
//! after the mapping. What keeps an aliasing cache coherent is only where the user mapping
//! goes: `io_uring_get_unmapped_area` passes the region's kernel address as the placement hint
//! and its page number as the offset where the arch defines `SHM_COLOUR` (PA-RISC), so that
//! both addresses share lines; elsewhere it asks for any shared mapping of offset 0.
//!
//! The model keeps one instance (slots [`ring::URING_RINGS`] and [`ring::URING_SQES`], one page
//! each) for the rest of the run. The kernel does not act on the values it reads (the oracle
//! judges each read).

use super::ring::{self, Ring};
use super::{mutex_lock, mutex_unlock, object_lock, KernelState};
use crate::addr::{MmId, Va};
use crate::arch::Arch;
use crate::world::{Cx, StoreKind};

/// Bytes of each head and tail word of the ring region.
const WORD: u64 = 4;

/// The offset in the ring region of head or tail word `i` (SQ head, SQ tail, CQ head, CQ
/// tail): each starts its own eighth of the page, so on its own cache line
/// (`____cacheline_aligned_in_smp` in `struct io_uring`).
fn word<A: Arch>(cx: &Cx<A>, i: u64) -> u64 {
    i * cx.page_size() / 8
}

/// The SQ head's index among the words.
const SQ_HEAD: u64 = 0;

/// The SQ tail's index.
const SQ_TAIL: u64 = 1;

/// The CQ head's index.
const CQ_HEAD: u64 = 2;

/// The CQ tail's index.
const CQ_TAIL: u64 = 3;

/// SQEs in the SQE array's page: each has a quarter page, of which it uses up to
/// [`SQE_BYTES`].
pub const SQES: u64 = 4;

/// CQEs in the ring region, in its second half: each has a quarter page, of which it uses up
/// to [`CQE_BYTES`].
pub const CQES: u64 = 2;

/// Bytes of an SQE.
pub const SQE_BYTES: u64 = 64;

/// Bytes of a CQE.
pub const CQE_BYTES: u64 = 16;

/// `io_uring_setup()` and the `mmap()` of both regions (`IORING_OFF_SQ_RING`,
/// `IORING_OFF_SQES`): the regions are allocated zeroed on first use (`io_create_region`:
/// `alloc_pages` with `__GFP_ZERO`, a single block, so `page_address` is their kernel address),
/// then each is mapped where `io_uring_get_unmapped_area` puts it, at or after user page `at`.
/// A process maps the instance once.
pub async fn setup<A: Arch>(cx: &Cx<A>, mm: MmId, at: u8) {
    let mmap_lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, mmap_lock).await;
    let ctx_lock = object_lock(cx, super::locks::RING + ring::URING_RINGS);
    mutex_lock(cx, ctx_lock).await;
    if !ring::maps(cx, mm, ring::URING_RINGS) {
        let mut regions = Vec::with_capacity(2);
        for n in [ring::URING_RINGS, ring::URING_SQES] {
            match region(cx, n).await {
                Some(r) => regions.push((n, r)),
                None => break,
            }
        }
        if regions.len() == 2 {
            for (n, r) in regions {
                // io_uring_get_unmapped_area: the kernel address's page as the offset under
                // SHM_COLOUR; otherwise a shared mapping of offset 0.
                let (pgoff, modulus) = match cx.arch().shm_colour_pages(cx) {
                    Some(c) => (r.kva[0] / cx.page_size(), c),
                    None => (0, cx.arch().mmap_colour_pages(cx, true)),
                };
                ring::remap(cx, mm, n, &r, at, pgoff, modulus, true, "io_uring_mmap").await;
            }
        }
    }
    mutex_unlock(cx, ctx_lock);
    mutex_unlock(cx, mmap_lock);
}

/// Region `n` of the instance, allocated and zeroed if it does not exist yet
/// (`io_create_region`).
async fn region<A: Arch>(cx: &Cx<A>, n: usize) -> Option<Ring> {
    if let Some(r) = cx.kernel().rings[n].clone() {
        return Some(r);
    }
    let what = if n == ring::URING_RINGS {
        "rings"
    } else {
        "sqes"
    };
    let prev = cx.enter("io_create_region", || what.into());
    let r = ring::alloc_linear(cx, n, 1).await;
    cx.leave(prev);
    r
}

/// The kernel addresses of both regions' first bytes, if the instance exists.
fn regions<A: Arch>(cx: &Cx<A>) -> Option<(Va, Va)> {
    let k = cx.kernel();
    let rings = k.rings[ring::URING_RINGS].as_ref()?.kva[0];
    let sqes = k.rings[ring::URING_SQES].as_ref()?.kva[0];
    Some((rings, sqes))
}

/// Submission and completion of one request (`io_uring_enter`, or the `SQPOLL` thread):
/// the SQ tail and SQE `sqe` are read (`io_get_sqe`, `io_init_req`) and the SQ head moved on
/// (`io_commit_sqring`), the request runs, and its CQE is written into CQ slot `cqe` after a
/// read of the CQ head and published by a new CQ tail (`io_fill_cqe_req`, `io_commit_cqring`),
/// all through the regions' kernel address, with no flush.
pub async fn submit<A: Arch>(cx: &Cx<A>, sqe: u8, cqe: u8) {
    let Some((rings, sqes)) = regions(cx) else {
        return;
    };
    let page = cx.page_size();
    let sqe_at = sqes + sqe as u64 % SQES * (page / SQES);
    let prev = cx.enter("io_submit_sqes", || format!("sqe {}", sqe as u64 % SQES));
    cx.kload_run(rings + word(cx, SQ_TAIL), WORD);
    cx.kload_run(sqe_at, SQE_BYTES.min(page / SQES));
    // io_commit_sqring: the SQ head the user waits on.
    let head: Vec<_> = (0..WORD).map(|_| cx.fresh()).collect();
    cx.kstore_run(rings + word(cx, SQ_HEAD), &head, false, StoreKind::UserData);
    cx.leave(prev);
    cx.step().await;
    let cqe_at = rings + page / 2 + cqe as u64 % CQES * (page / 2 / CQES);
    let prev = cx.enter("io_fill_cqe_req", || format!("cqe {}", cqe as u64 % CQES));
    // The room left in the CQ ring: the CQ head the user advanced.
    cx.kload_run(rings + word(cx, CQ_HEAD), WORD);
    let values: Vec<_> = (0..CQE_BYTES.min(page / 2 / CQES))
        .map(|_| cx.fresh())
        .collect();
    cx.kstore_run(cqe_at, &values, false, StoreKind::UserData);
    cx.leave(prev);
    let prev = cx.enter("io_commit_cqring", || "cq tail".into());
    let tail: Vec<_> = (0..WORD).map(|_| cx.fresh()).collect();
    cx.kstore_run(rings + word(cx, CQ_TAIL), &tail, false, StoreKind::UserData);
    cx.leave(prev);
}
