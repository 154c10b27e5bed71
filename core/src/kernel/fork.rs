//! Address-space lifecycle: `fork` (`dup_mmap`), `exit` (`exit_mmap`), `munmap`, `mremap`,
//! `mmap` of files with the arch's colour alignment, and `mprotect`.

use super::{
    get_page, mutex_lock, mutex_unlock, nth_user_page, put_page, KernelState, Mm, Vma, VmaKind,
};
use crate::addr::{layout, MmId, Vpn};
use crate::arch::Arch;
use crate::machine::Pte;
use crate::sched::ActorKind;
use crate::world::Cx;

/// The most address spaces a run may create.
pub const MAX_MMS: usize = 8;

/// `fork()`: `dup_mmap` copies the parent's VMAs and page tables into a new address space,
/// write-protecting private writable pages in both for copy-on-write.
///
/// Order, as in the kernel: the cache flush for the parent (`flush_cache_dup_mm`, or
/// `flush_cache_mm` in older kernels), then the page-table copy (preemptible), then
/// `flush_tlb_mm`. Until that TLB flush, the parent's other threads may still store through
/// writable TLB entries.
pub async fn fork<A: Arch>(cx: &Cx<A>, mm: MmId) {
    // The child's actor slot and address space are taken before anything can yield, so that
    // concurrent forks get different ones.
    let (slot, child_mm) = {
        let mut st = cx.st();
        let (slot, child_mm) = match st.sched.free_thread_slot() {
            Some(s) if st.k.mms.len() < MAX_MMS => (s, st.k.mms.len() as MmId),
            _ => return,
        };
        st.sched.actor_mut(slot).reserved = true;
        // `dup_mm` starts from a copy of the parent's `mm_struct`, arch context included
        // (RISC-V's `icache_stale_mask` is inherited), and clears `mm_cpumask`.
        let context = st.k.mms[mm as usize].context;
        st.k.mms.push(Mm {
            vmas: Vec::new(),
            alive: true,
            cpumask: 0,
            exiting: false,
            context,
            xol: None,
            users: 1,
            swap_ptes: Vec::new(),
            vma_locks: Default::default(),
        });
        st.m.create_user_pt(child_mm);
        (slot, child_mm)
    };
    let prev = cx.enter("dup_mmap", || format!("mm {mm} -> mm {child_mm}"));
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    // No VMA is write-locked yet: user-mode faults on any of them may run under their VMA's
    // lock until `dup_mmap` reaches it.
    cx.kernel_mut().mms[mm as usize].vma_locks.fork_reached = Some(0);
    if cx.switches().fork_flush_cache_mm {
        let p = cx.enter("flush_cache_mm", || format!("mm {mm}"));
        cx.arch().flush_cache_mm(cx, mm).await;
        cx.leave(p);
    } else {
        let p = cx.enter("flush_cache_dup_mm", || format!("mm {mm}"));
        cx.arch().flush_cache_dup_mm(cx, mm).await;
        cx.leave(p);
    }
    // From here to the TLB flush, stores by the parent's other threads race with the fork.
    cx.st().o.fork_window(true);
    cx.step().await;
    let vmas = cx.st().k.mms[mm as usize].vmas.clone();
    for vma in &vmas {
        vma_start_write(cx, mm, vma.start).await;
        if vma.dontcopy() {
            continue;
        }
        cx.st().k.mms[child_mm as usize].vmas.push(*vma);
        for vpn in vma.start..vma.end {
            let pte = cx.st().m.pte(Some(mm), vpn);
            if !pte.present {
                super::swap::copy_nonpresent_pte(cx, mm, child_mm, vpn, !vma.shared());
                continue;
            }
            let cow = !vma.shared();
            if cow && pte.write {
                // ptep_set_wrprotect: no cache work, the TLB flush comes at the end.
                cx.write_pte(
                    Some(mm),
                    vpn,
                    Pte {
                        write: false,
                        ..pte
                    },
                );
            }
            let child = if cow {
                Pte {
                    write: false,
                    ..pte
                }
            } else {
                pte
            };
            cx.write_pte(Some(child_mm), vpn, child);
            super::rmap_add(cx, pte.pfn, child_mm, vpn);
            get_page(cx, pte.pfn);
        }
        cx.step().await;
    }
    let p = cx.enter("flush_tlb_mm", || format!("mm {mm}"));
    cx.arch().flush_tlb_mm(cx, mm).await;
    cx.leave(p);
    cx.st().o.fork_window(false);
    // mmap_write_unlock ends every VMA's write lock.
    cx.kernel_mut().mms[mm as usize].vma_locks.fork_reached = None;
    mutex_unlock(cx, lock);
    {
        let mut st = cx.st();
        let pid = st.k.procs.len() as u8;
        st.k.procs.push(child_mm);
        let a = st.sched.actor_mut(slot);
        a.alive = true;
        a.reserved = false;
        a.kind = ActorKind::Thread { pid };
        a.busy = false;
        a.name = format!("T{slot}");
    }
    cx.note(|| format!("child process with mm {child_mm} runs as actor {slot}"));
    cx.leave(prev);
}

/// `vma_start_write` of `mm`'s VMA starting at page `start`, by `dup_mmap` holding `mmap_lock`:
/// waits until no fault holds the VMA's read lock, then write-locks it (and, the VMAs being
/// reached in address order, every VMA below it).
async fn vma_start_write<A: Arch>(cx: &Cx<A>, mm: MmId, start: Vpn) {
    let mut again = false;
    loop {
        {
            let mut k = cx.kernel_mut();
            let locks = &mut k.mms[mm as usize].vma_locks;
            if !locks.readers.contains(&start) {
                locks.fork_reached = Some(start + 1);
                return;
            }
        }
        cx.wait(again).await;
        again = true;
    }
}

/// `vfork()` (`kernel_clone` with `CLONE_VM | CLONE_VFORK`, as `posix_spawn` uses it): a new
/// process with one thread that shares the caller's address space, while the caller waits
/// until the child has exec'd or exited (`wait_for_vfork_done`). No cache or TLB work: nothing
/// is copied.
pub async fn vfork<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let slot = {
        let mut st = cx.st();
        let Some(slot) = st.sched.free_thread_slot() else {
            return;
        };
        let pid = st.k.procs.len() as u8;
        st.k.procs.push(mm);
        st.k.mms[mm as usize].users += 1;
        let a = st.sched.actor_mut(slot);
        a.alive = true;
        a.kind = ActorKind::Thread { pid };
        a.busy = false;
        a.name = format!("T{slot}");
        slot
    };
    let prev = cx.enter("vfork", || format!("mm {mm}"));
    cx.note(|| format!("child process sharing mm {mm} runs as actor {slot}"));
    let mut again = false;
    loop {
        let done = {
            let st = cx.st();
            let child = st.sched.actor(slot);
            match child.kind {
                ActorKind::Thread { pid } => !child.alive || st.k.procs[pid as usize] != mm,
                _ => true,
            }
        };
        if done {
            break;
        }
        cx.wait(again).await;
        again = true;
    }
    cx.leave(prev);
}

/// Unmaps every present page of `[start, end)` of `mm`: cache flush, PTE clear, TLB flush, then
/// the pages are freed, in that order.
async fn unmap_range<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    start: Vpn,
    end: Vpn,
    exec: bool,
    whole_mm: bool,
) {
    if !whole_mm {
        let p = cx.enter("flush_cache_range", || {
            format!("mm {mm}, pages {start}..{end}")
        });
        cx.arch().flush_cache_range(cx, mm, start, end, exec).await;
        cx.leave(p);
    }
    let mut freed = Vec::new();
    super::swap::zap_swap_ptes(cx, mm, start, end);
    for vpn in start..end {
        let pte = cx.st().m.pte(Some(mm), vpn);
        if pte.present {
            cx.write_pte(Some(mm), vpn, Pte::default());
            cx.st().k.pages[pte.pfn as usize]
                .rmap
                .retain(|&(m, v)| (m, v) != (mm, vpn));
            freed.push(pte.pfn);
        }
    }
    if !whole_mm {
        cx.arch().flush_tlb_range(cx, mm, start, end).await;
    }
    for pfn in freed {
        put_page(cx, pfn);
    }
}

/// `exit()` of the whole process: `exit_mmap` flushes the address space's caches, unmaps
/// everything, flushes its TLB entries, once the process's other threads have finished their
/// current work (they start nothing new).
pub async fn exit<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let kind = cx.st().sched.actor(cx.me()).kind;
    let pid = match kind {
        ActorKind::Thread { pid } => pid,
        _ => return,
    };
    // A vfork child gives the address space back to its parent.
    let last = cx.st().k.mms[mm as usize].users == 1;
    if last {
        cx.st().k.mms[mm as usize].exiting = true;
    }
    // The other threads finish what they are doing in the kernel before the address space goes.
    let mut again = false;
    loop {
        let others_busy = cx.st().sched.actors().iter().enumerate().any(|(i, a)| {
            i != cx.me() as usize && a.alive && a.busy && a.kind == ActorKind::Thread { pid }
        });
        if !others_busy {
            break;
        }
        cx.wait(again).await;
        again = true;
    }
    mmput(cx, mm).await;
    let mut st = cx.st();
    let me = cx.me();
    for i in 0..st.sched.len() {
        let a = st.sched.actor(i as u8);
        if a.alive && a.kind == (ActorKind::Thread { pid }) && i != me as usize {
            st.sched.kill(i as u8);
        }
    }
    // The caller itself dies when this action returns.
    st.sched.actor_mut(me).alive = false;
}

/// `mmput`: one process less uses `mm`; the last one tears it down ([`exit_mmap`]).
pub async fn mmput<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let users = {
        let mut st = cx.st();
        let m = &mut st.k.mms[mm as usize];
        m.users -= 1;
        m.users
    };
    if users == 0 {
        exit_mmap(cx, mm).await;
    }
}

/// `exit_mmap`: the address space's caches flushed, everything unmapped, its TLB entries
/// flushed, its uprobes area dropped; it is gone.
pub async fn exit_mmap<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let prev = cx.enter("exit_mmap", || format!("mm {mm}"));
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let p = cx.enter("flush_cache_mm", || format!("mm {mm}"));
    cx.arch().flush_cache_mm(cx, mm).await;
    cx.leave(p);
    cx.step().await;
    let vmas = std::mem::take(&mut cx.st().k.mms[mm as usize].vmas);
    for v in &vmas {
        unmap_range(cx, mm, v.start, v.end, v.exec, true).await;
    }
    let p = cx.enter("flush_tlb_mm", || format!("mm {mm}"));
    cx.arch().flush_tlb_mm(cx, mm).await;
    cx.leave(p);
    super::text::uprobe_clear_state(cx, mm);
    cx.st().k.mms[mm as usize].alive = false;
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

fn remove_vma_range(m: &mut Mm, start: Vpn, end: Vpn, replace: impl Fn(&Vma) -> Option<Vma>) {
    let mut out = Vec::new();
    for v in &m.vmas {
        if v.end <= start || v.start >= end {
            out.push(*v);
            continue;
        }
        if v.start < start {
            out.push(Vma { end: start, ..*v });
        }
        let mid = Vma {
            start: v.start.max(start),
            end: v.end.min(end),
            kind: v.kind_from(v.start.max(start)),
            ..*v
        };
        if let Some(r) = replace(&mid) {
            out.push(r);
        }
        if v.end > end {
            out.push(Vma {
                start: end,
                kind: v.kind_from(end),
                ..*v
            });
        }
    }
    out.sort_by_key(|v| v.start);
    m.vmas = out;
}

/// `munmap()` of up to `pages` pages starting at the caller's `page`-th mapped page, within
/// its VMA.
pub async fn munmap<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, pages: u8) {
    let Some(start) = nth_user_page(cx, mm, page) else {
        return;
    };
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let Some(vma) = cx.st().k.mms[mm as usize].vma(start).copied() else {
        mutex_unlock(cx, lock);
        return;
    };
    let end = (start + 1 + pages as u64 % 4).min(vma.end);
    let prev = cx.enter("munmap", || format!("mm {mm}, pages {start}..{end}"));
    unmap_range(cx, mm, start, end, vma.exec, false).await;
    remove_vma_range(&mut cx.st().k.mms[mm as usize], start, end, |_| None);
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `mmap()` of a file from page `pgoff` to its end. Without `fixed`, the lowest free range at
/// or above `at` that the arch's colouring allows; with `fixed`, exactly `at`, refused when it
/// overlaps a mapping or when the arch rejects an incongruent shared mapping.
#[allow(clippy::too_many_arguments)]
pub async fn mmap<A: Arch>(
    cx: &Cx<A>,
    mm: MmId,
    file: u8,
    pgoff: u8,
    at: u8,
    shared: bool,
    exec: bool,
    fixed: bool,
) {
    let (file, npages) = {
        let st = cx.st();
        let f = file % st.k.user_files();
        (f, st.k.files[f as usize].pages.len() as u64)
    };
    let pgoff = pgoff as u64 % npages;
    let len = npages - pgoff;
    let modulus = cx.arch().mmap_colour_pages(cx, shared).max(1);
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let prev = cx.enter("mmap", || {
        format!(
            "file {file} from page {pgoff}, {}{}",
            if shared { "shared" } else { "private" },
            if fixed { ", fixed" } else { "" }
        )
    });
    let free = |st: &crate::world::State, s: Vpn| {
        s + len <= layout::USER_PAGES
            && st.k.mms[mm as usize]
                .vmas
                .iter()
                .all(|v| v.end <= s || v.start >= s + len)
    };
    let congruent = |s: Vpn| (s + modulus * layout::USER_PAGES - pgoff) % modulus == 0;
    let start = if fixed {
        let at = at as u64 % layout::USER_PAGES;
        if shared && cx.arch().rejects_incongruent_fixed() && !congruent(at) {
            cx.note(|| "EINVAL: MAP_FIXED shared mapping at an incongruent address".into());
            None
        } else {
            free(&cx.st(), at).then_some(at)
        }
    } else {
        super::ring::get_unmapped_area(cx, mm, at, len, pgoff, modulus)
    };
    if let Some(start) = start {
        // W^X: an executable mapping is not writable.
        let vma = Vma {
            start,
            end: start + len,
            kind: VmaKind::File {
                file,
                pgoff: pgoff as u32,
                shared,
            },
            write: !exec,
            exec,
        };
        cx.st().k.mms[mm as usize].insert_vma(vma);
        cx.note(|| format!("mapped at user pages {start}..{}", start + len));
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `mprotect()` of one mapped page (`mprotect_fixup`, `change_protection`): new permissions
/// (read always; never write and execute together), the range flushed by `flush_cache_range`
/// under its new flags, PTE rewritten through `set_pte_at`, TLB flushed. Write permission on private
/// mappings stays for the COW fault.
pub async fn mprotect<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, write: bool, exec: bool) {
    let Some(vpn) = nth_user_page(cx, mm, page) else {
        return;
    };
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let prev = cx.enter("mprotect", || {
        format!(
            "mm {mm}, page {vpn}, {}{}",
            if write { "w" } else { "ro" },
            if exec { "x" } else { "" }
        )
    });
    // W^X: asking for both gives execute only.
    let write = write && !exec;
    remove_vma_range(&mut cx.st().k.mms[mm as usize], vpn, vpn + 1, |v| {
        Some(Vma { write, exec, ..*v })
    });
    // change_protection opens the VMA's walk with tlb_start_vma, which flushes the VMA's range
    // under its new flags: the range's user lines are written back and, for an executable
    // VMA, the I-side is maintained as the arch's flush_cache_range does it.
    cx.arch()
        .flush_cache_range(cx, mm, vpn, vpn + 1, exec)
        .await;
    let pte = cx.st().m.pte(Some(mm), vpn);
    if pte.present && exec && !pte.exec {
        // Making memory executable is the first half of loading code; the second is the user's
        // cacheflush, until which the I-side of the page is the user's business, unless the
        // arch's flush_cache_range of an executable range keeps the I-side coherent with what
        // was stored through the range: then the code stored so far is the arch's to deliver.
        cx.st().o.user_code_page(pte.pfn);
        if cx.arch().flush_cache_range_syncs_icache(cx) {
            super::fault::code_synced_through(cx, mm, vpn, pte.pfn);
        }
    }
    if pte.present {
        let new = Pte {
            write: pte.write && write,
            exec,
            ..pte
        };
        if new != pte {
            cx.arch().set_pte_at(cx, mm, vpn, new).await;
            cx.arch().flush_tlb_page(cx, mm, vpn).await;
        }
    }
    mutex_unlock(cx, lock);
    cx.leave(prev);
}

/// `mremap()` of one mapped page to another user address (`MREMAP_MAYMOVE`): the lowest free
/// page at or above `to` (wrapping) that the arch's colouring allows for the mapping
/// (`get_unmapped_area`), so a private page may change colour.
///
/// Order, as `move_vma` runs it: `copy_vma` adds the new VMA; `move_page_tables` flushes the
/// old range (`flush_cache_range`), then `move_ptes` takes each old PTE
/// (`ptep_get_and_clear`), installs it at the new address with `set_pte_at` and flushes the old
/// range's TLB entries (`flush_tlb_range`); last, `do_vmi_munmap` removes the old range
/// (`unmap_region`: `flush_cache_range` and `flush_tlb_range` again, over PTEs now empty).
/// Special mappings (rings, the uprobes area) do not move (`VM_DONTEXPAND`, `-EFAULT` in
/// `resize_is_valid`).
pub async fn mremap<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, to: u8) {
    let Some(old) = nth_user_page(cx, mm, page) else {
        return;
    };
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let vma = cx.st().k.mms[mm as usize].vma(old).copied();
    let Some(vma) = vma.filter(|v| !matches!(v.kind, VmaKind::Special { .. })) else {
        cx.note(|| "EFAULT: no movable mapping there".into());
        mutex_unlock(cx, lock);
        return;
    };
    let modulus = cx.arch().mmap_colour_pages(cx, vma.shared()).max(1);
    // The mapping's colour key: the file page it maps, or for anonymous memory the page's
    // original address (`vm_pgoff` of an anonymous VMA), which mremap keeps.
    let key = vma.file_index(old).map_or(old, |(_, i)| i as u64) % modulus;
    let new = {
        let st = cx.st();
        let m = &st.k.mms[mm as usize];
        let at = to as u64 % layout::USER_PAGES;
        (at..layout::USER_PAGES)
            .chain(0..at)
            .find(|&s| s % modulus == key && m.vma(s).is_none())
    };
    let Some(new) = new else {
        cx.note(|| "ENOMEM: no free address of the mapping's colour".into());
        mutex_unlock(cx, lock);
        return;
    };
    let prev = cx.enter("mremap", || format!("mm {mm}, page {old} -> page {new}"));
    {
        let mut st = cx.st();
        let m = &mut st.k.mms[mm as usize];
        m.vmas.push(Vma {
            start: new,
            end: new + 1,
            kind: vma.kind_from(old),
            ..vma
        });
        m.vmas.sort_by_key(|v| v.start);
    }
    cx.step().await;
    let p = cx.enter("move_page_tables", || {
        format!("mm {mm}, page {old} -> page {new}")
    });
    let f = cx.enter("flush_cache_range", || {
        format!("mm {mm}, pages {old}..{}", old + 1)
    });
    cx.arch()
        .flush_cache_range(cx, mm, old, old + 1, vma.exec)
        .await;
    cx.leave(f);
    // cond_resched() before the PTEs move: the process's other threads may still store
    // through the old mapping.
    cx.step().await;
    let pte = cx.st().m.pte(Some(mm), old);
    {
        let mut st = cx.st();
        for e in st.k.mms[mm as usize].swap_ptes.iter_mut() {
            if e.0 == old {
                e.0 = new;
            }
        }
    }
    if pte.present {
        cx.write_pte(Some(mm), old, Pte::default());
        for e in cx.st().k.pages[pte.pfn as usize].rmap.iter_mut() {
            if *e == (mm, old) {
                e.1 = new;
            }
        }
        cx.arch().set_pte_at(cx, mm, new, pte).await;
        cx.arch().flush_tlb_range(cx, mm, old, old + 1).await;
    }
    cx.leave(p);
    cx.step().await;
    unmap_range(cx, mm, old, old + 1, vma.exec, false).await;
    remove_vma_range(&mut cx.st().k.mms[mm as usize], old, old + 1, |_| None);
    mutex_unlock(cx, lock);
    cx.leave(prev);
}
