//! User accesses and the page-fault paths: anonymous zero-fill, file read faults, copy-on-write
//! of private file pages and of shared anonymous pages, write-protect faults, and the exec
//! fault that publishes a page with `set_pte_at` before `update_mmu_cache`; faults on swap and
//! migration entries. Also the cacheflush system call a JIT uses after writing code.
//!
//! [`FaultOpts`] selects the variants of a fault that mainline takes under settings the other
//! paths leave at their defaults: fault-around of file read faults, large anonymous folios,
//! the unsharing fault that breaks a KSM page, and the copy of a whole large folio.

use super::{
    alloc_page, file, get_page, mutex_lock, mutex_unlock, nth_user_page, put_page, uva,
    KernelState, PageKind, SwapPte, Vma, VmaKind,
};
use crate::addr::{MmId, Pfn, Va, Vpn};
use crate::arch::Arch;
use crate::machine::{Access, Fault, Pte};
use crate::world::Cx;

/// Variants of a fault (all off: the fault the other paths take).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FaultOpts {
    /// A read fault of a file page first maps the file's cached pages around it
    /// (`do_fault_around`, `fault_around_bytes` at its default); off, as if it were one page.
    pub around: bool,
    /// A fault of an anonymous page allocates a folio of this many pages, when the aligned
    /// range it would map is all unmapped (`alloc_anon_folio` with multi-size THP enabled).
    pub large: Option<u64>,
    /// The fault unshares a KSM page (`FAULT_FLAG_UNSHARE`, from `break_ksm`).
    pub unshare: bool,
    /// A write-protect fault on a large anonymous folio copies the whole folio, as `hugetlb_wp`
    /// does for a hugetlb page of a private mapping (`copy_user_large_folio`).
    pub huge_cow: bool,
}

/// A user load, store or fetch of byte `off` of the process's `page`-th mapped page, with fault
/// handling and retry as the hardware and kernel do. A user thread does not touch a page while
/// I/O is in progress on it; it waits.
pub async fn user_access<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8, access: Access) {
    user_access_with(cx, mm, page, off, access, FaultOpts::default()).await
}

/// [`user_access`] whose faults take the variants `opts` selects.
pub async fn user_access_with<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    page: u8,
    off: u8,
    access: Access,
    opts: FaultOpts,
) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let va = uva(cx, vpn, off);
    let name = match access {
        Access::Read => "user load",
        Access::Write => "user store",
        Access::Exec => "user fetch",
    };
    let prev = cx.enter(name, || format!("{va:#x}"));
    user_access_at(cx, mm, va, access, opts).await;
    cx.leave(prev);
}

/// A user access of the byte at `va` of `mm`, with fault handling and retry as
/// [`user_access`] does it, its faults taking the variants `opts` selects.
pub async fn user_access_at<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    va: Va,
    access: Access,
    opts: FaultOpts,
) {
    for _ in 0..8 {
        if io_in_progress(cx, va) {
            cx.step().await;
            continue;
        }
        match cx.user_access(va, access) {
            Ok(_) => break,
            Err(fault) => {
                let vpn = va / cx.page_size();
                if !handle_user_fault(cx, mm, vpn, access, fault, opts).await {
                    cx.note(|| "SIGSEGV".into());
                    break;
                }
                cx.step().await;
            }
        }
    }
}

/// Whether I/O is in progress on the page `va` translates to on this CPU: a user thread (or a
/// system call copying to or from its memory) waits rather than touch it.
pub fn io_in_progress<A: Arch>(cx: &Cx<A>, va: Va) -> bool {
    let cpu = cx.cpu();
    let st = cx.st();
    match st.m.probe(cpu, va) {
        Some(t) => {
            let pfn = (t.pa / st.m.page_size() as u64) as Pfn;
            st.o.device_owned(pfn) || st.k.pages[pfn as usize].io_pin > 0
        }
        None => false,
    }
}

/// The arch's `do_page_fault` for a fault of a user-mode access. Where the arch has per-VMA
/// locks ([`Arch::per_vma_lock`]), the fault first takes the faulting VMA's read lock
/// (`lock_vma_under_rcu`) and runs without `mmap_lock`, unless a writer has write-locked the VMA
/// (`vma_start_write`). The model takes that path while a `fork` of the address space holds
/// `mmap_lock` and has not reached the VMA yet (`dup_mmap` write-locks each VMA as it comes to
/// it): the one writer that lets faults on other VMAs run meanwhile; every other writer is
/// taken to have locked every VMA. Otherwise the fault takes `mmap_lock` (`lock_mmap`).
async fn handle_user_fault<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    access: Access,
    fault: Fault,
    opts: FaultOpts,
) -> bool {
    let unlocked_vma = cx.arch().per_vma_lock().then(|| {
        let k = cx.kernel();
        let m = &k.mms[mm as usize];
        let reached = m.vma_locks.fork_reached?;
        m.vma(vpn).map(|v| v.start).filter(|&s| s >= reached)
    });
    let Some(start) = unlocked_vma.flatten() else {
        return handle_mm_fault_with(cx, mm, vpn, access, fault, false, opts).await;
    };
    cx.kernel_mut().mms[mm as usize]
        .vma_locks
        .readers
        .push(start);
    let prev = cx.enter("lock_vma_under_rcu", || format!("mm {mm}, page {vpn}"));
    let ok = fault_locked(cx, mm, vpn, access, fault, false, opts).await;
    cx.leave(prev);
    // vma_end_read.
    let mut k = cx.kernel_mut();
    let readers = &mut k.mms[mm as usize].vma_locks.readers;
    let i = readers
        .iter()
        .position(|&s| s == start)
        .expect("the fault holds its VMA's read lock");
    readers.swap_remove(i);
    ok
}

/// `handle_mm_fault`: resolves a fault of `mm` at `vpn`. `force` is GUP's `FOLL_FORCE` (ptrace
/// writes to read-only private mappings). Returns false for SIGSEGV.
pub async fn handle_mm_fault<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    access: Access,
    fault: Fault,
    force: bool,
) -> bool {
    handle_mm_fault_with(cx, mm, vpn, access, fault, force, FaultOpts::default()).await
}

/// [`handle_mm_fault`] taking the variants `opts` selects.
pub async fn handle_mm_fault_with<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    access: Access,
    fault: Fault,
    force: bool,
    opts: FaultOpts,
) -> bool {
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    // I/O may have started on the page while this thread waited for the lock: leave it alone
    // and let the access retry.
    let busy = {
        let st = cx.st();
        let pte = st.m.pte(Some(mm), vpn);
        pte.present && (st.k.pages[pte.pfn as usize].io_pin > 0 || st.o.device_owned(pte.pfn))
    };
    let ok = busy || fault_locked(cx, mm, vpn, access, fault, force, opts).await;
    mutex_unlock(cx, lock);
    ok
}

/// The fault with `mm`'s mmap lock held.
pub(crate) async fn fault_locked<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    access: Access,
    _fault: Fault,
    force: bool,
    opts: FaultOpts,
) -> bool {
    let Some(vma) = cx.st().k.mms[mm as usize].vma(vpn).copied() else {
        return false;
    };
    let allowed = match access {
        Access::Read => true,
        Access::Write => vma.write || (force && !vma.shared()),
        Access::Exec => vma.exec,
    };
    if !allowed {
        return false;
    }
    if let VmaKind::Special { .. } = vma.kind {
        return special_fault(cx, mm, vpn, &vma, access).await;
    }
    let pte = cx.st().m.pte(Some(mm), vpn);
    let prev = cx.enter("handle_mm_fault", || {
        format!("mm {mm}, page {vpn}, {access:?}")
    });
    let swap_pte = cx.st().k.mms[mm as usize].swap_pte(vpn);
    let ksm = pte.present && cx.st().k.pages[pte.pfn as usize].ksm;
    if !pte.present {
        match (swap_pte, vma.kind, access) {
            (Some(SwapPte::Migration { pfn, .. }), _, _) => {
                // migration_entry_wait: the fault is retried once the new page is mapped.
                cx.note(|| format!("migration_entry_wait: page {pfn} is being migrated"));
            }
            (Some(SwapPte::Swap(slot)), _, _) => {
                super::swap::do_swap_page(cx, mm, vpn, &vma, slot).await
            }
            (None, VmaKind::Anon, _) => do_anonymous_page(cx, mm, vpn, &vma, access, opts).await,
            (None, VmaKind::File { shared: false, .. }, Access::Write) => {
                do_cow_fault(cx, mm, vpn, &vma).await
            }
            (None, VmaKind::File { .. }, _) => do_read_fault(cx, mm, vpn, &vma, access, opts).await,
            (None, VmaKind::Special { .. }, _) => unreachable!("handled above"),
        }
    } else if access == Access::Write && !pte.write || opts.unshare && ksm {
        do_wp_page(cx, mm, vpn, &vma, pte, opts).await;
    } else {
        // The PTE already allows the access: the TLB held an older entry.
        cx.arch().flush_tlb_page(cx, mm, vpn).await;
    }
    cx.leave(prev);
    true
}

/// A fault on a VMA mapping kernel pages ([`VmaKind::Special`]): the object's page is mapped
/// (`xol_fault`, or a ring's page again), or a write to a writable VMA through a read-only
/// entry makes the entry writable (`wp_page_shared`; such pages are never copied). False if
/// the object has no page there (`SIGBUS`).
async fn special_fault<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma, access: Access) -> bool {
    let pte = cx.pte(mm, vpn);
    let prev = cx.enter("handle_mm_fault", || {
        format!("mm {mm}, page {vpn}, {access:?}")
    });
    let ok = if !pte.present {
        match super::text::special_page(cx, mm, vma, vpn) {
            Some(pfn) => {
                let write = access == Access::Write;
                install_pte(cx, mm, vpn, super::user_pte(vma, pfn, write)).await;
                true
            }
            None => false,
        }
    } else if access == Access::Write && !pte.write {
        cx.write_pte(Some(mm), vpn, Pte { write: true, ..pte });
        cx.arch().flush_tlb_page(cx, mm, vpn).await;
        cx.arch().update_mmu_cache(cx, mm, vpn).await;
        true
    } else {
        cx.arch().flush_tlb_page(cx, mm, vpn).await;
        true
    };
    cx.leave(prev);
    ok
}

/// Installs `pte` for a new mapping the way the fault path does: `set_pte_at` publishes it
/// under the page-table lock, `update_mmu_cache` follows; other CPUs may run in between.
pub async fn install_pte<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pte: Pte) {
    super::rmap_add(cx, pte.pfn, mm, vpn);
    cx.preempt_disable();
    let prev = cx.enter("set_pte_at", || {
        format!("mm {mm}, page {vpn} -> pfn {}", pte.pfn)
    });
    cx.arch().set_pte_at(cx, mm, vpn, pte).await;
    cx.leave(prev);
    cx.step().await;
    let prev = cx.enter("update_mmu_cache", || format!("mm {mm}, page {vpn}"));
    cx.arch().update_mmu_cache(cx, mm, vpn).await;
    cx.leave(prev);
    cx.preempt_enable();
}

/// `do_anonymous_page`: a fault that does not write maps the zero page read-only (a special
/// PTE, `my_zero_pfn`); a write allocates a page (a large folio where `opts` asks for one),
/// clears it for the user's address (`clear_user_highpage`) and maps it writable.
async fn do_anonymous_page<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    vma: &Vma,
    access: Access,
    opts: FaultOpts,
) {
    if access != Access::Write {
        let zero = cx.kernel().zero_pfn;
        install_pte(cx, mm, vpn, super::user_pte(vma, zero, false)).await;
        return;
    }
    // `alloc_anon_folio` tries large orders only under `CONFIG_TRANSPARENT_HUGEPAGE`.
    let thp = cx.arch().transparent_hugepage();
    if let Some(nr) = opts.large.filter(|&nr| nr > 1 && thp) {
        if super::folio::do_anonymous_large(cx, mm, vpn, vma, nr).await {
            return;
        }
    }
    let Some(pfn) = alloc_page(cx, true, PageKind::Anon) else {
        return;
    };
    clear_user_highpage(cx, pfn, vpn).await;
    cx.step().await;
    install_pte(cx, mm, vpn, super::user_pte(vma, pfn, true)).await;
}

/// `clear_user_highpage` of page `pfn`, which the user will see at `vpn`.
pub(crate) async fn clear_user_highpage<A: Arch>(cx: &Cx<A>, pfn: Pfn, vpn: Vpn) {
    let prev = cx.enter("clear_user_highpage", || {
        format!("page {pfn}, user page {vpn}")
    });
    cx.arch().clear_user_highpage(cx, pfn, vpn).await;
    cx.leave(prev);
}

async fn do_read_fault<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    vma: &Vma,
    access: Access,
    opts: FaultOpts,
) {
    if opts.around && access != Access::Write {
        super::folio::do_fault_around(cx, mm, vpn, vma).await;
        if cx.pte(mm, vpn).present {
            return;
        }
    }
    let (f, index) = vma.file_index(vpn).expect("file vma");
    let Some(pfn) = file::find_or_read_page(cx, f, index as u8).await else {
        return;
    };
    let prev = cx.enter("flush_icache_page", || format!("page {pfn}"));
    cx.arch().flush_icache_page(cx, mm, pfn).await;
    cx.leave(prev);
    let writable = vma.shared() && access == Access::Write;
    install_pte(cx, mm, vpn, super::user_pte(vma, pfn, writable)).await;
}

async fn do_cow_fault<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma) {
    let (f, index) = vma.file_index(vpn).expect("file vma");
    let Some(src) = file::find_or_read_page(cx, f, index as u8).await else {
        return;
    };
    let Some(new) = alloc_page(cx, true, PageKind::Anon) else {
        put_page(cx, src);
        return;
    };
    copy_user_highpage(cx, new, src, vpn, mm).await;
    put_page(cx, src);
    cx.step().await;
    install_pte(cx, mm, vpn, super::user_pte(vma, new, true)).await;
}

/// `copy_user_highpage` of page `from` to page `to` for `mm`, which will see `to` at `vpn`,
/// with what the oracle must know of the copy.
pub(crate) async fn copy_user_highpage<A: Arch>(
    cx: &Cx<A>,
    to: Pfn,
    from: Pfn,
    vpn: Vpn,
    mm: MmId,
) {
    let prev = cx.enter("copy_user_highpage", || {
        format!("page {from} -> page {to}, user page {vpn}")
    });
    // A copy of a page-cache page for a private mapping reads the file as that mapping sees it.
    let private = cx.page_is_file(from);
    cx.st().sched.actor_mut(cx.me()).private_copy = private;
    cx.st().sched.actor_mut(cx.me()).copy_for = Some(mm);
    cx.arch().copy_user_highpage(cx, to, from, vpn, mm).await;
    {
        let mut st = cx.st();
        let me = st.sched.actor_mut(cx.me());
        me.private_copy = false;
        me.copy_for = None;
    }
    cx.leave(prev);
}

/// `do_wp_page`: a write to a present read-only PTE of a writable VMA. Reuses the page of a
/// shared mapping (`wp_page_shared`) and an exclusive anonymous page, copies otherwise
/// (`wp_page_copy`); a KSM page is never reused. An
/// unsharing fault (`opts.unshare`) copies a KSM page into a page mapped read-only.
async fn do_wp_page<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, vma: &Vma, pte: Pte, opts: FaultOpts) {
    let old = pte.pfn;
    let zero = cx.page_kind(old) == PageKind::Zero;
    if opts.huge_cow
        && !zero
        && !opts.unshare
        && super::folio::hugetlb_wp(cx, mm, vpn, vma, pte).await
    {
        return;
    }
    let exclusive = {
        let st = cx.st();
        let p = &st.k.pages[old as usize];
        p.kind == PageKind::Anon && !p.ksm && p.rmap.len() == 1 && p.refs == 1
    };
    // A shared mapping writes the page itself (wp_page_shared); only private ones copy.
    if (exclusive || vma.shared()) && !opts.unshare {
        let prev = cx.enter("wp_page_reuse", || format!("page {old}"));
        cx.write_pte(Some(mm), vpn, Pte { write: true, ..pte });
        cx.arch().flush_tlb_page(cx, mm, vpn).await;
        cx.arch().update_mmu_cache(cx, mm, vpn).await;
        cx.leave(prev);
        return;
    }
    let Some(new) = alloc_page(cx, true, PageKind::Anon) else {
        return;
    };
    let prev = cx.enter("wp_page_copy", || format!("page {old} -> page {new}"));
    if zero {
        // A copy of the zero page is a page cleared for the user's address
        // (`vma_alloc_zeroed_movable_folio`).
        clear_user_highpage(cx, new, vpn).await;
    } else {
        copy_user_highpage(cx, new, old, vpn, mm).await;
    }
    cx.step().await;
    cx.preempt_disable();
    // ptep_clear_flush: cache first, then the PTE, then the TLB.
    cx.arch().flush_cache_page(cx, mm, vpn, old, vma.exec).await;
    cx.write_pte(Some(mm), vpn, Pte::default());
    cx.arch().flush_tlb_page(cx, mm, vpn).await;
    cx.st().k.pages[old as usize]
        .rmap
        .retain(|&(m, v)| (m, v) != (mm, vpn));
    cx.preempt_enable();
    install_pte(cx, mm, vpn, super::user_pte(vma, new, !opts.unshare)).await;
    put_page(cx, old);
    cx.leave(prev);
}

/// GUP's `follow_page` + `faultin_page`: the frame at `vpn` of `mm`, faulting it in (for write
/// if `write`) as needed, with a reference taken. `None` if it cannot be had.
pub async fn get_user_page<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    vpn: Vpn,
    write: bool,
    force: bool,
) -> Option<Pfn> {
    // VM_IO: the kernel's own pages mapped into a process are no user pages to pin.
    if cx
        .vma(mm, vpn)
        .is_some_and(|v| matches!(v.kind, VmaKind::Special { .. }))
    {
        return None;
    }
    for _ in 0..4 {
        let pte = cx.st().m.pte(Some(mm), vpn);
        if pte.present && (!write || pte.write) {
            get_page(cx, pte.pfn);
            return Some(pte.pfn);
        }
        let access = if write { Access::Write } else { Access::Read };
        let fault = if pte.present {
            Fault::WriteProtect
        } else {
            Fault::NotPresent
        };
        if !fault_locked(cx, mm, vpn, access, fault, force, FaultOpts::default()).await {
            return None;
        }
    }
    None
}

/// The cacheflush system call over user page `page` of the caller (after a JIT wrote code).
pub async fn cacheflush<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let size = cx.page_size();
    let prev = cx.enter("sys_cacheflush", || {
        format!("{:#x}..{:#x}", vpn * size, (vpn + 1) * size)
    });
    cx.arch()
        .flush_icache_user_range(cx, vpn * size, (vpn + 1) * size)
        .await;
    let pte = cx.st().m.pte(Some(mm), vpn);
    if pte.present {
        code_synced_through(cx, mm, vpn, pte.pfn);
    }
    cx.leave(prev);
}

/// The I-side of user page `vpn` of `mm` (frame `pfn`) was just synchronised through the
/// page's own user addresses (the user's cacheflush; `flush_cache_range` of an executable
/// range where the arch promises it): marks synchronised the bytes whose last write such a
/// clean reaches.
pub(crate) fn code_synced_through<A: Arch>(cx: &Cx<A>, mm: MmId, vpn: Vpn, pfn: Pfn) {
    let size = cx.page_size();
    // The call cleans the D-side through the range's own addresses: code the user stored
    // through another alias of the page (a line of another colour, or under VIVT another
    // address or address space) is still not synchronised. On a physically tagged cache
    // that holds for user data the kernel wrote at the user's request (a ptrace poke through
    // a colour window or a kmap) as well: only a line of the range's colour is cleaned.
    let mut st = cx.st();
    let g = st.m.config().dcache;
    let page = st.m.page_size();
    let base = pfn as u64 * size;
    for off in 0..size {
        let w = st.o.last_write(base + off).0;
        let va = vpn * size + off;
        let writer_mm = w.actor.and_then(|a| match st.sched.actor(a).kind {
            crate::sched::ActorKind::Thread { pid } => Some(st.k.procs[pid as usize]),
            _ => None,
        });
        let cleaned = match w.alias {
            // The device's data or the initial contents: no CPU line holds it dirty.
            None => true,
            Some(_) if !g.aliases(page) => true,
            Some(kind) if g.virtually_tagged() => {
                kind != crate::addr::AliasKind::User || (w.va == va && writer_mm == Some(mm))
            }
            Some(_) => g.colour(w.va, page) == g.colour(va, page),
        };
        if cleaned {
            st.o.user_code_synced(base + off, 1);
        }
    }
}
