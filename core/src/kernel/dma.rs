//! Streaming DMA: `dma_map_page`, `dma_unmap_page`, `dma_sync_single_for_cpu` and
//! `_for_device`, and the device's accesses while it owns a buffer.
//!
//! Ownership moves to the device when mapping starts and back to the CPU when unmapping (or
//! syncing for the CPU) returns; the oracle is told, so a kernel access in between is reported as
//! misuse and user threads wait (a program does not touch a buffer under I/O).

use super::kmap;
use crate::addr::{Pa, Pfn};
use crate::arch::Arch;
use crate::op::DmaDir;
use crate::oracle::{ReadKind, WriteInfo};
use crate::world::{Cx, State};

/// `dma_map_page` (and `dma_sync_single_for_device`): the CPU gives the page to the device.
pub async fn dma_map_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, dir: DmaDir, name: &'static str) {
    let prev = cx.enter(name, || format!("page {pfn}, {dir:?}"));
    let driver = cx.st().k.pages[pfn as usize].kind == crate::kernel::PageKind::Kernel;
    cx.st().o.set_device_owned(pfn, true, driver);
    if !cx.st().m.config().dma_coherent {
        let page = cx.page_size();
        cx.arch()
            .sync_dma_for_device(cx, pfn as u64 * page, page, dir)
            .await;
    }
    cx.leave(prev);
}

/// `dma_unmap_page` (and `dma_sync_single_for_cpu`): the device gives the page back.
pub async fn dma_unmap_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, dir: DmaDir, name: &'static str) {
    let prev = cx.enter(name, || format!("page {pfn}, {dir:?}"));
    if !cx.st().m.config().dma_coherent {
        let page = cx.page_size();
        cx.arch()
            .sync_dma_for_cpu(cx, pfn as u64 * page, page, dir)
            .await;
    }
    cx.st().o.set_device_owned(pfn, false, false);
    cx.leave(prev);
}

/// Whether byte `pa` was last written by an actor other than the caller at or after step
/// `since`.
fn written_by_another_since<A: Arch>(cx: &Cx<A>, st: &State, pa: Pa, since: u32) -> bool {
    let (w, _) = st.o.last_write(pa);
    w.actor.is_some_and(|a| a != cx.me()) && w.step >= since
}

/// The device's access to a whole page it owns: reads it (checked) for `ToDevice`, writes fresh
/// values for `FromDevice`, both for `Bidirectional`.
///
/// `user_io_since` is the step from which the page was pinned for the user's own I/O (direct
/// I/O), `None` for a driver's buffer. Another actor's write to the page from then on (a tracer's
/// poke, a store through another process's mapping) is a race the user made with its I/O: the
/// device may read either value, and after a transfer from the device each byte of the page may
/// end up with the device's value or the one before, since the other write (and the cache line
/// it went through) may as well have landed last. Another actor's read of the page from then on
/// is the same race: the line it filled may outlive the transfer, so each byte may keep its old
/// value.
pub fn device_access<A: Arch>(cx: &Cx<A>, pfn: Pfn, dir: DmaDir, user_io_since: Option<u32>) {
    let raced = |st: &State, p: Pa| {
        user_io_since.is_some_and(|since| written_by_another_since(cx, st, p, since))
    };
    let page = cx.page_size();
    let pa = pfn as u64 * page;
    if matches!(dir, DmaDir::ToDevice | DmaDir::Bidirectional) {
        let mut st = cx.st();
        let mut seen = Vec::with_capacity(page as usize);
        st.m.device_read(pa, &mut seen, page as u32);
        for (i, obs) in seen.into_iter().enumerate() {
            let p = pa + i as u64;
            if let Err(kind) = st.o.judge(p, obs.value, ReadKind::Device, None) {
                if raced(&st, p) {
                    continue;
                }
                let v = crate::world::violation_at(
                    &st,
                    p,
                    obs.value,
                    obs.from,
                    0,
                    crate::addr::AliasKind::Unmapped,
                    kind,
                    "device",
                );
                cx.report(&mut st, v);
                return;
            }
        }
    }
    if matches!(dir, DmaDir::FromDevice | DmaDir::Bidirectional) {
        let mut st = cx.st();
        let values: Vec<_> = (0..page).map(|_| st.o.fresh()).collect();
        st.m.device_write(pa, &values);
        let step = st.m.log.step;
        let read_by_another =
            user_io_since.is_some_and(|since| st.o.read_by_another_since(pfn, cx.me(), since));
        let raced = read_by_another
            || (user_io_since
                .is_some_and(|since| st.o.written_by_another_since(pfn, cx.me(), since))
                && (pa..pa + page).any(|p| raced(&st, p)));
        let info = WriteInfo {
            step,
            ..WriteInfo::default()
        };
        let flags = crate::oracle::WriteFlags::default();
        if !raced {
            st.o.write_run(pa, &values, info, "device", flags);
            return;
        }
        for (i, v) in values.iter().enumerate() {
            let p = pa + i as u64;
            let prev = st.o.intended(p);
            st.o.write(p, *v, info, "device", flags);
            st.o.contest(p, prev);
        }
    }
}

/// A driver's whole streaming transfer of one page.
pub async fn transfer<A: Arch>(cx: &Cx<A>, pfn: Pfn, dir: DmaDir) {
    let prev = cx.enter("dma-transfer", || format!("page {pfn}, {dir:?}"));
    if dir != DmaDir::FromDevice {
        // The driver prepares the buffer.
        cpu_access(cx, pfn, true).await;
        cx.step().await;
    }
    dma_map_page(cx, pfn, dir, "dma_map_page").await;
    cx.step().await;
    device_access(cx, pfn, dir, None);
    cx.step().await;
    dma_unmap_page(cx, pfn, dir, "dma_unmap_page").await;
    cx.step().await;
    if dir != DmaDir::ToDevice {
        // The driver reads what came back.
        cpu_access(cx, pfn, false).await;
    }
    cx.leave(prev);
}

/// The driver's CPU touches its buffer: stores a fresh value at its start (`prepare`) or reads
/// it all back. Through `kmap` in process context; an interrupt cannot sleep waiting for a
/// pkmap slot, so there through `kmap_atomic`.
async fn cpu_access<A: Arch>(cx: &Cx<A>, pfn: Pfn, prepare: bool) {
    let touch = |va| {
        if prepare {
            let v = cx.fresh();
            cx.kstore(va, v, false);
        } else {
            cx.kload_run(va, cx.page_size());
        }
    };
    if cx.st().sched.actor(cx.me()).kind == crate::sched::ActorKind::Irq {
        let (va, how) = kmap::kmap_atomic(cx, pfn).await;
        touch(va);
        kmap::kunmap_atomic(cx, va, how).await;
    } else {
        let va = kmap::kmap(cx, pfn).await;
        touch(va);
        kmap::kunmap(cx, pfn).await;
    }
}

/// A buffer handed back and forth with the sync calls, as a ring-buffer driver does.
pub async fn sync_cycle<A: Arch>(cx: &Cx<A>, pfn: Pfn, dir: DmaDir) {
    let prev = cx.enter("dma-sync-cycle", || format!("page {pfn}, {dir:?}"));
    dma_map_page(cx, pfn, dir, "dma_map_page").await;
    cx.step().await;
    device_access(cx, pfn, dir, None);
    cx.step().await;
    dma_unmap_page(cx, pfn, dir, "dma_sync_single_for_cpu").await;
    cx.step().await;
    cpu_access(cx, pfn, dir == DmaDir::ToDevice).await;
    cx.step().await;
    dma_map_page(cx, pfn, dir, "dma_sync_single_for_device").await;
    cx.step().await;
    device_access(cx, pfn, dir, None);
    cx.step().await;
    dma_unmap_page(cx, pfn, dir, "dma_unmap_page").await;
    cx.leave(prev);
}

/// The device reads the whole page `pfn` it owns, a block write of the page to disk: each byte
/// a checked device read. Returns what it read.
pub fn device_read_page<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Vec<crate::addr::Stamp> {
    let page = cx.page_size();
    let pa = pfn as u64 * page;
    let mut st = cx.st();
    let mut seen = Vec::with_capacity(page as usize);
    st.m.device_read(pa, &mut seen, page as u32);
    let values = seen.iter().map(|o| o.value).collect();
    for (i, obs) in seen.into_iter().enumerate() {
        let p = pa + i as u64;
        if let Err(kind) = st.o.judge(p, obs.value, ReadKind::Device, None) {
            let v = crate::world::violation_at(
                &st,
                p,
                obs.value,
                obs.from,
                0,
                crate::addr::AliasKind::Unmapped,
                kind,
                "device",
            );
            cx.report(&mut st, v);
            break;
        }
    }
    values
}

/// The device writes `values` over the page `pfn` it owns, a block read of the page from disk:
/// the device's logical writes.
pub fn device_write_page<A: Arch>(cx: &Cx<A>, pfn: Pfn, values: &[crate::addr::Stamp]) {
    let pa = pfn as u64 * cx.page_size();
    let mut st = cx.st();
    st.m.device_write(pa, values);
    let info = WriteInfo {
        step: st.m.log.step,
        ..WriteInfo::default()
    };
    let flags = crate::oracle::WriteFlags::default();
    st.o.write_run(pa, values, info, "device", flags);
}
