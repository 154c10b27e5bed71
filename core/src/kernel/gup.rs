//! `get_user_pages` users: a FUSE-like path that reads or writes a user page through a kmap,
//! direct I/O that DMAs to or from a user page, ptrace pokes and peeks through
//! `copy_to_user_page`/`copy_from_user_page`, and `process_vm_readv`/`writev`.
//!
//! GUP calls `flush_anon_page` then `flush_dcache_page` for every page it returns (unless the
//! historical switch says the kernel predates `flush_anon_page`). While a page is pinned for I/O
//! its user threads do not touch it.

use super::fault::get_user_page;
use super::{dma, kmap, mutex_lock, mutex_unlock, nth_user_page, put_page, KernelState};
use crate::addr::{MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::op::DmaDir;
use crate::sched::ActorKind;
use crate::world::Cx;

/// `get_user_pages` of one page, with the flushes GUP does for it. The page comes back pinned
/// for I/O.
pub async fn get_user_pages<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    write: bool,
    force: bool,
) -> Option<Pfn> {
    let lock = KernelState::mmap_lock(mm);
    // A program does not start two I/Os on one buffer at once: wait for the other to end.
    for _ in 0..64 {
        mutex_lock(cx, lock).await;
        let busy = {
            let st = cx.st();
            let pte = st.m.pte(Some(mm), vpn);
            pte.present && (st.k.pages[pte.pfn as usize].io_pin > 0 || st.o.device_owned(pte.pfn))
        };
        if !busy {
            break;
        }
        mutex_unlock(cx, lock);
        cx.step().await;
    }
    if cx.st().k.locks[lock] != Some(cx.me()) {
        mutex_lock(cx, lock).await;
    }
    let prev = cx.enter("get_user_pages", || {
        format!("mm {mm}, page {vpn}{}", if write { ", write" } else { "" })
    });
    let pfn = get_user_page(cx, mm, vpn, write, force).await;
    if let Some(pfn) = pfn {
        cx.st().k.pages[pfn as usize].io_pin += 1;
        if !cx.switches().gup_without_flush_anon_page {
            let p = cx.enter("flush_anon_page", || format!("page {pfn}, user page {vpn}"));
            cx.arch().flush_anon_page(cx, mm, pfn, vpn).await;
            cx.leave(p);
        }
        let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
        cx.arch().flush_dcache_page(cx, pfn).await;
        cx.leave(p);
    }
    cx.leave(prev);
    mutex_unlock(cx, lock);
    pfn
}

/// Drops a page [`get_user_pages`] returned: its I/O pin and its reference.
pub fn unpin<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    cx.st().k.pages[pfn as usize].io_pin -= 1;
    put_page(cx, pfn);
}

/// A FUSE-like request: the kernel pins the caller's page and reads or writes one byte of it
/// through a kmap, then `flush_dcache_page` if it wrote.
pub async fn fuse_access<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8, write: bool) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter(
        if write {
            "fuse-write-to-user"
        } else {
            "fuse-read-from-user"
        },
        || format!("user page {vpn}"),
    );
    if let Some(pfn) = get_user_pages(cx, mm, vpn, write, false).await {
        cx.step().await;
        let va = kmap::kmap(cx, pfn).await;
        let a = va + off as u64 % cx.page_size();
        if write {
            let v = cx.fresh();
            cx.kstore_as(a, v, false, crate::world::StoreKind::UserData);
            // Data written at the user's request into an executable mapping is code the user
            // must cacheflush before running, as if it had stored it itself.
            if cx.st().k.mms[mm as usize].vma(vpn).is_some_and(|v| v.exec) {
                cx.st().o.user_code_page(pfn);
            }
        } else {
            cx.kload(a);
        }
        kmap::kunmap(cx, pfn).await;
        if write {
            let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
            cx.arch().flush_dcache_page(cx, pfn).await;
            cx.leave(p);
        }
        cx.step().await;
        unpin(cx, pfn);
    }
    cx.leave(prev);
}

/// Direct I/O on the caller's page: GUP, `dma_map_page`, the device's transfer,
/// `dma_unmap_page`.
pub async fn direct_io<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, to_device: bool) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let dir = if to_device {
        DmaDir::ToDevice
    } else {
        DmaDir::FromDevice
    };
    let prev = cx.enter("direct-io", || format!("user page {vpn}, {dir:?}"));
    if let Some(pfn) = get_user_pages(cx, mm, vpn, !to_device, false).await {
        let pinned_at = cx.mark_step();
        cx.step().await;
        dma::dma_map_page(cx, pfn, dir, "dma_map_page").await;
        cx.step().await;
        dma::device_access(cx, pfn, dir, Some(pinned_at));
        cx.step().await;
        dma::dma_unmap_page(cx, pfn, dir, "dma_unmap_page").await;
        if !to_device {
            // The device's data is user data: the I-side waits for the user's cacheflush.
            // A page-cache page changed under the file's private mappings too.
            let page = cx.page_size();
            let mut st = cx.st();
            let pc = st.k.is_page_cache(pfn as u64);
            st.o.user_data_written(pfn as u64 * page, page, pc);
        }
        unpin(cx, pfn);
    }
    cx.leave(prev);
}

/// `ptrace(PTRACE_POKETEXT)`: writes one byte into the address space of actor `target`'s
/// process through `access_process_vm` (GUP with `FOLL_FORCE`, then `copy_to_user_page`).
pub async fn ptrace_poke<A: Arch>(cx: &Cx<A>, target: u8, page: u8, off: u8) {
    let Some(mm) = other_process_mm(cx, target) else {
        return;
    };
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("access_process_vm", || format!("mm {mm}, user page {vpn}"));
    if let Some(pfn) = get_user_pages(cx, mm, vpn, true, true).await {
        cx.step().await;
        let p = cx.enter("copy_to_user_page", || {
            format!("page {pfn}, user page {vpn}")
        });
        let off = off as u64 % cx.page_size();
        cx.arch().copy_to_user_page(cx, mm, pfn, vpn, off).await;
        cx.leave(p);
        // The kernel keeps the I-side coherent only for an executable target VMA. A poke into
        // a data mapping is data, as a store by the tracee there would be: another, executable
        // mapping of the page may run it only after the user's cacheflush.
        let exec = cx.st().k.mms[mm as usize].vma(vpn).is_some_and(|v| v.exec);
        if !exec {
            let pa = pfn as u64 * cx.page_size() + off;
            let pc = cx.st().k.is_page_cache(pfn as u64);
            cx.st().o.user_data_written(pa, 1, pc);
        }
        cx.step().await;
        unpin(cx, pfn);
    }
    cx.leave(prev);
}

/// The address space of actor `target`'s process (wrapped onto the actors), if it is a live
/// thread of another process than the caller's: a process cannot trace itself or attach to
/// itself (`ptrace_attach`, `mm_access` with `PTRACE_MODE_ATTACH` from another process).
pub(crate) fn other_process_mm<A: Arch>(cx: &Cx<A>, target: u8) -> Option<MmId> {
    let mm = {
        let st = cx.st();
        let t = target as usize % st.sched.len();
        match st.sched.actor(t as u8) {
            a if a.alive => match a.kind {
                ActorKind::Thread { pid } => st.k.procs[pid as usize],
                _ => return None,
            },
            _ => return None,
        }
    };
    (cx.st().k.mms[mm as usize].alive && super::my_mm(cx) != Some(mm)).then_some(mm)
}

/// `ptrace(PTRACE_PEEKDATA)` and reads of `/proc/pid/mem`: one byte of actor `target`'s
/// process read through `access_process_vm` (GUP with `FOLL_FORCE`, then
/// `copy_from_user_page`).
pub async fn ptrace_peek<A: Arch>(cx: &Cx<A>, target: u8, page: u8, off: u8) {
    let Some(mm) = other_process_mm(cx, target) else {
        return;
    };
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter("access_process_vm", || {
        format!("mm {mm}, user page {vpn}, read")
    });
    if let Some(pfn) = get_user_pages(cx, mm, vpn, false, true).await {
        cx.step().await;
        let p = cx.enter("copy_from_user_page", || {
            format!("page {pfn}, user page {vpn}")
        });
        let off = off as u64 % cx.page_size();
        cx.arch().copy_from_user_page(cx, mm, pfn, vpn, off).await;
        cx.leave(p);
        cx.step().await;
        unpin(cx, pfn);
    }
    cx.leave(prev);
}

/// `process_vm_readv`/`process_vm_writev` of one byte of actor `target`'s process
/// (`process_vm_rw_core`): the remote page pinned by GUP (with its flushes), then copied
/// through a local kernel mapping (`copy_page_to_iter`/`copy_page_from_iter` under
/// `kmap_local_page`), then unpinned dirty. Mainline makes no cache maintenance after a write.
pub async fn process_vm_rw<A: Arch>(cx: &Cx<A>, target: u8, page: u8, off: u8, write: bool) {
    let Some(mm) = other_process_mm(cx, target) else {
        return;
    };
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let prev = cx.enter(
        if write {
            "process_vm_writev"
        } else {
            "process_vm_readv"
        },
        || format!("mm {mm}, user page {vpn}"),
    );
    if let Some(pfn) = get_user_pages(cx, mm, vpn, write, false).await {
        cx.step().await;
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        let a = k + off as u64 % cx.page_size();
        if write {
            let v = cx.fresh();
            cx.kstore_as(a, v, false, crate::world::StoreKind::UserData);
            let pc = cx.st().k.is_page_cache(pfn as u64);
            let pa = pfn as u64 * cx.page_size() + off as u64 % cx.page_size();
            cx.st().o.user_data_written(pa, 1, pc);
        } else {
            cx.kload(a);
        }
        kmap::kunmap_atomic(cx, k, how).await;
        cx.step().await;
        unpin(cx, pfn);
    }
    cx.leave(prev);
}
