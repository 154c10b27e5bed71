//! `userfaultfd`'s `UFFDIO_COPY` (`mfill_atomic_copy`): a missing anonymous page filled with a
//! copy of a user buffer through a kernel mapping of the new page, then mapped; and
//! `UFFDIO_ZEROPAGE` (`mfill_atomic_zeropage`): the zero page mapped in its place. A fault
//! handler thread resolves another thread's missing-page fault this way, as live migration and
//! checkpoint-restore do.

use super::{
    alloc_page, fault, file, kmap, mutex_lock, mutex_unlock, nth_user_page, put_page, user_pte,
    KernelState, PageKind, VmaKind,
};
use crate::addr::{MmId, Pfn, Va, Vpn};
use crate::arch::Arch;
use crate::machine::Access;
use crate::world::{Cx, StoreKind};

/// `ioctl(UFFDIO_COPY)` of one page: the caller's `src`-th mapped page copied into its
/// `dst`-th mapped page, which must be missing (no PTE, no swap entry) in a private anonymous
/// mapping.
///
/// Order, as `mfill_atomic` runs it: under `mmap_lock`, the destination is checked (`-EEXIST`
/// when a PTE is there); `mfill_atomic_pte_copy` allocates a page, maps it with
/// `kmap_local_folio` and copies the source with page faults disabled. A source that is not
/// present ends that copy with `-ENOENT`: `mfill_atomic` drops the lock, copies again through
/// `kmap_local_page` with faults allowed, runs `flush_dcache_page`, and retries with the page it
/// filled. Otherwise `flush_dcache_folio` follows the copy. `mfill_atomic_install_pte` maps the
/// page (`set_pte_at`, `update_mmu_cache`).
pub async fn copy<A: Arch>(cx: &Cx<A>, mm: MmId, dst: u8, src: u8) {
    let (Some(d), Some(s)) = (nth_user_page(cx, mm, dst), nth_user_page(cx, mm, src)) else {
        return;
    };
    if d == s {
        cx.note(|| "EINVAL: source and destination overlap".into());
        return;
    }
    let prev = cx.enter("mfill_atomic_copy", || {
        format!("mm {mm}, user page {s} -> user page {d}")
    });
    let lock = KernelState::mmap_lock(mm);
    // The page the -ENOENT path filled outside the lock.
    let mut filled: Option<Pfn> = None;
    loop {
        mutex_lock(cx, lock).await;
        let Some(vma) = missing_anon(cx, mm, d) else {
            cx.note(|| "EEXIST: the destination is mapped or not anonymous".into());
            mutex_unlock(cx, lock);
            if let Some(p) = filled {
                put_page(cx, p);
            }
            break;
        };
        let pfn = match filled.take() {
            Some(p) => p,
            None => {
                let Some(pfn) = alloc_page(cx, true, PageKind::Anon) else {
                    mutex_unlock(cx, lock);
                    break;
                };
                let (k, how) = kmap::kmap_atomic(cx, pfn).await;
                let copied = copy_page_from_user(cx, mm, k, pfn, s, false).await;
                kmap::kunmap_atomic(cx, k, how).await;
                if !copied {
                    // -ENOENT: the copy again without mmap_lock, faulting the source in.
                    mutex_unlock(cx, lock);
                    cx.step().await;
                    // Mainline copies under kmap_local_folio, which leaves preemption on, so
                    // the copy's faults may sleep (on a locked page, the I/O, the mmap lock).
                    // The model's kmap_atomic stands for kmap_local but may not sleep: the
                    // source is faulted in first, with preemption on.
                    if file::copy_from_user(cx, mm, s * cx.page_size())
                        .await
                        .is_none()
                    {
                        cx.note(|| "EFAULT: the source cannot be read".into());
                        put_page(cx, pfn);
                        break;
                    }
                    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
                    let copied = copy_page_from_user(cx, mm, k, pfn, s, true).await;
                    kmap::kunmap_atomic(cx, k, how).await;
                    if !copied {
                        cx.note(|| "EFAULT: the source cannot be read".into());
                        put_page(cx, pfn);
                        break;
                    }
                    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
                    cx.arch().flush_dcache_page(cx, pfn).await;
                    cx.leave(p);
                    filled = Some(pfn);
                    cx.step().await;
                    continue;
                }
                let p = cx.enter("flush_dcache_folio", || format!("pages {pfn}..{}", pfn + 1));
                cx.arch().flush_dcache_folio(cx, pfn, 1).await;
                cx.leave(p);
                pfn
            }
        };
        cx.step().await;
        fault::install_pte(cx, mm, d, user_pte(&vma, pfn, true)).await;
        mutex_unlock(cx, lock);
        break;
    }
    cx.leave(prev);
}

/// The VMA of `mm`'s user page `d` if `d` is missing (no PTE, no swap entry) in a private
/// anonymous mapping, as `mfill_atomic` requires of its destination.
fn missing_anon<A: Arch>(cx: &Cx<A>, mm: MmId, d: Vpn) -> Option<super::Vma> {
    let st = cx.st();
    let m = &st.k.mms[mm as usize];
    let missing = !st.m.pte(Some(mm), d).present && m.swap_ptes.iter().all(|e| e.0 != d);
    m.vma(d)
        .copied()
        .filter(|v| v.kind == VmaKind::Anon && missing)
}

/// `ioctl(UFFDIO_ZEROPAGE)` of one page: the caller's `dst`-th mapped page, which must be
/// missing in a private anonymous mapping, is mapped to the zero page under `mmap_lock`
/// (`mfill_atomic_pte_zeropage`: a special read-only PTE of `my_zero_pfn`, `set_pte_at`, then
/// `update_mmu_cache`). No cache maintenance: the zero page is never written. A later write
/// takes the write-protect fault, which gives the page a cleared copy.
pub async fn zeropage<A: Arch>(cx: &Cx<A>, mm: MmId, dst: u8) {
    let Some(d) = nth_user_page(cx, mm, dst) else {
        return;
    };
    let prev = cx.enter("mfill_atomic_zeropage", || {
        format!("mm {mm}, user page {d}")
    });
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    match missing_anon(cx, mm, d) {
        Some(vma) => {
            let zero = cx.kernel().zero_pfn;
            fault::install_pte(cx, mm, d, user_pte(&vma, zero, false)).await;
        }
        None => cx.note(|| "EEXIST: the destination is mapped or not anonymous".into()),
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// Copies user page `src` of `mm` into `pfn` through its kernel address `k`, a byte at a
/// time: each byte a read through the user's mapping, then a store of user data through `k`.
/// With `faults`, a missing source page is faulted in (`copy_from_user`); without, the copy
/// stops at the first byte that would fault, or whose page is under the user's I/O, and
/// returns false.
async fn copy_page_from_user<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    k: Va,
    pfn: Pfn,
    src: Vpn,
    faults: bool,
) -> bool {
    let page = cx.page_size();
    for i in 0..page {
        let va = src * page + i;
        let v = if faults {
            file::copy_from_user(cx, mm, va).await
        } else if super::fault::io_in_progress(cx, va) {
            // A program does not hand a buffer under its own I/O to another system call: the
            // copy that may not sleep gives up, and the one that may waits for the I/O.
            None
        } else {
            cx.user_access(va, Access::Read).ok().flatten()
        };
        let Some(v) = v else {
            return false;
        };
        cx.kstore_as(k + i, v, false, StoreKind::UserData);
        cx.st().o.user_data_written(pfn as u64 * page + i, 1, false);
    }
    true
}
