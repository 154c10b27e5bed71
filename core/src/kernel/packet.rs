//! A `PACKET_MMAP` ring (`AF_PACKET` with `PACKET_RX_RING`/`PACKET_TX_RING`, `TPACKET_V2`):
//! frames the kernel and a process hand to each other through a status word in each frame's
//! header. The kernel reaches the ring through the linear map (`alloc_pg_vec` takes whole
//! page blocks with `__get_free_pages`), the process through its `mmap` of the socket
//! (`packet_mmap`, `vm_insert_page` of each page), at whatever colour `mmap` gives a shared
//! mapping of page offset 0.
//!
//! Mainline's maintenance (net/packet/af_packet.c): `__packet_set_status` stores the status and
//! runs `flush_dcache_page` of its page; `__packet_get_status` runs `flush_dcache_page` before
//! it reads the status; `tpacket_rcv` runs `flush_dcache_page` of every page of a frame it
//! filled, before it sets the status (`ARCH_IMPLEMENTS_FLUSH_DCACHE_PAGE`); `tpacket_snd` runs
//! `flush_dcache_page` of each page of a frame's data before attaching it to the packet. Ring
//! pages belong to no file, so an arch's `flush_dcache_page` sees a page without a mapping.
//!
//! The model keeps one ring (slot [`ring::PACKET_RING`]) of one or two pages, each holding
//! [`FRAMES_PER_PAGE`] frames, used in both directions; it lives for the rest of the run. The
//! process reads and writes frames with its own loads and stores. The kernel does not act on
//! the status values it reads (the oracle judges the read itself), so a frame may be written by
//! both sides in any order, each write judged like any other.

use super::ring::{self, Ring};
use super::{mutex_lock, mutex_unlock, object_lock, KernelState};
use crate::addr::{MmId, Pfn, Va};
use crate::arch::Arch;
use crate::world::{Cx, StoreKind};

/// Frames in each page of the ring (`tp_frame_size` is half a page).
pub const FRAMES_PER_PAGE: u64 = 2;

/// Bytes of `tp_status`, at the start of a frame's header.
pub const STATUS: u64 = 4;

/// Bytes of the rest of the header the kernel fills (`tp_len`, `tp_snaplen`, `tp_mac`).
const HEADER: u64 = 4;

/// Bytes of packet data, which start half way into the frame (`tp_mac`).
const DATA: u64 = 4;

/// `setsockopt(PACKET_RX_RING)` then `mmap()` of the socket: the ring's page blocks are
/// allocated and zeroed on first use (`packet_set_ring`, `alloc_pg_vec`: 1 or 2 pages,
/// `pages`), then each page is inserted into a shared mapping of the process at a free address
/// at or after page `at` (`packet_mmap`). A process maps the ring once.
pub async fn packet_mmap<A: Arch>(cx: &Cx<A>, mm: MmId, pages: u8, at: u8) {
    let n = ring::PACKET_RING;
    let mmap_lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, mmap_lock).await;
    let pg_vec_lock = object_lock(cx, super::locks::RING + n);
    mutex_lock(cx, pg_vec_lock).await;
    if !ring::maps(cx, mm, n) {
        let existing = cx.kernel().rings[n].clone();
        let r = match existing {
            Some(r) => Some(r),
            None => alloc_pg_vec(cx, 1 + pages as usize % 2).await,
        };
        if let Some(r) = r {
            let modulus = cx.arch().mmap_colour_pages(cx, true);
            ring::remap(cx, mm, n, &r, at, 0, modulus, true, "packet_mmap").await;
        }
    }
    mutex_unlock(cx, pg_vec_lock);
    mutex_unlock(cx, mmap_lock);
}

/// `packet_set_ring`'s `alloc_pg_vec`: `count` zeroed lowmem pages (`__get_free_pages` with
/// `__GFP_ZERO`, one block each), published as the ring.
async fn alloc_pg_vec<A: Arch>(cx: &Cx<A>, count: usize) -> Option<Ring> {
    let prev = cx.enter("packet_set_ring", || format!("{count} pages"));
    let r = ring::alloc_linear(cx, ring::PACKET_RING, count).await;
    cx.leave(prev);
    r
}

/// Frame `frame` of the ring (modulo its frames): its page and the kernel address of its
/// header; `None` if there is no ring yet.
fn frame_at<A: Arch>(cx: &Cx<A>, frame: u8) -> Option<(Pfn, Va)> {
    let r = cx.kernel().rings[ring::PACKET_RING].clone()?;
    let frames = r.pfns.len() as u64 * FRAMES_PER_PAGE;
    let f = frame as u64 % frames;
    let page = (f / FRAMES_PER_PAGE) as usize;
    let size = cx.page_size() / FRAMES_PER_PAGE;
    Some((r.pfns[page], r.kva[page] + (f % FRAMES_PER_PAGE) * size))
}

/// The offset of a frame's data in the frame (`tp_mac`).
fn data_off<A: Arch>(cx: &Cx<A>) -> u64 {
    cx.page_size() / FRAMES_PER_PAGE / 2
}

/// `__packet_get_status`: `flush_dcache_page` of the status's page, then the status read
/// through the kernel's address of the frame.
async fn get_status<A: Arch>(cx: &Cx<A>, pfn: Pfn, frame: Va) {
    let prev = cx.enter("__packet_get_status", || format!("frame {frame:#x}"));
    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(p);
    cx.kload_run(frame, STATUS);
    cx.leave(prev);
}

/// `__packet_set_status`: a new status stored through the kernel's address of the frame,
/// then `flush_dcache_page` of its page.
async fn set_status<A: Arch>(cx: &Cx<A>, pfn: Pfn, frame: Va) {
    let prev = cx.enter("__packet_set_status", || format!("frame {frame:#x}"));
    let status: Vec<_> = (0..STATUS).map(|_| cx.fresh()).collect();
    cx.kstore_run(frame, &status, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(p);
    cx.leave(prev);
}

/// `tpacket_rcv` of a packet into frame `frame`, in softirq context: the frame's status is
/// read (`__packet_get_status`), its header and the packet's data are stored through the
/// kernel's address (`skb_copy_bits`), every page of the frame is flushed with
/// `flush_dcache_page`, and the status handed to the user is set (`__packet_set_status`).
pub async fn tpacket_rcv<A: Arch>(cx: &Cx<A>, frame: u8) {
    let Some((pfn, k)) = frame_at(cx, frame) else {
        return;
    };
    cx.preempt_disable();
    let prev = cx.enter("tpacket_rcv", || format!("frame {frame}, {k:#x}"));
    get_status(cx, pfn, k).await;
    cx.step().await;
    let header: Vec<_> = (0..HEADER).map(|_| cx.fresh()).collect();
    cx.kstore_run(k + STATUS, &header, false, StoreKind::UserData);
    let data: Vec<_> = (0..DATA).map(|_| cx.fresh()).collect();
    cx.kstore_run(k + data_off(cx), &data, false, StoreKind::UserData);
    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(p);
    cx.step().await;
    set_status(cx, pfn, k).await;
    cx.leave(prev);
    cx.preempt_enable();
}

/// `sendmsg()` on the socket, `tpacket_snd` of frame `frame`: its status is read
/// (`__packet_get_status`), its data page flushed with `flush_dcache_page` and attached to a
/// packet (`tpacket_fill_skb`), which the stack reads through the page's kernel address
/// (`dev_queue_xmit`, a software device copying it); when the packet is freed,
/// `tpacket_destruct_skb` hands the frame back (`__packet_set_status`).
pub async fn tpacket_snd<A: Arch>(cx: &Cx<A>, frame: u8) {
    let Some((pfn, k)) = frame_at(cx, frame) else {
        return;
    };
    let prev = cx.enter("tpacket_snd", || format!("frame {frame}, {k:#x}"));
    get_status(cx, pfn, k).await;
    cx.step().await;
    let p = cx.enter("tpacket_fill_skb", || format!("frame {frame}"));
    let f = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(f);
    cx.leave(p);
    cx.step().await;
    let x = cx.enter("dev_queue_xmit", || format!("frame {frame}"));
    cx.kload_run(k + STATUS, HEADER);
    cx.kload_run(k + data_off(cx), DATA);
    cx.leave(x);
    cx.step().await;
    let d = cx.enter("tpacket_destruct_skb", || format!("frame {frame}"));
    set_status(cx, pfn, k).await;
    cx.leave(d);
    cx.leave(prev);
}
