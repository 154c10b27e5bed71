//! `execve`: a new address space is built while the old one still runs, the argument strings
//! are copied from the old one into the new one's stack page through a kernel mapping
//! (`copy_strings`), then the new address space replaces the old (`exec_mmap`) and the new
//! program reads its arguments through its own stack mapping.
//!
//! `copy_strings` takes the stack page with `get_arg_page` (`get_user_pages_remote` of the new
//! address space, faulting the page in and doing GUP's `flush_anon_page` and
//! `flush_dcache_page`), maps it with `kmap`, calls `flush_arg_page` (`flush_cache_page` of the
//! page's address in the new address space) before copying into it, and `flush_dcache_page`
//! once the page is written. The stack is built where the program keeps it: `setup_arg_pages`
//! does not move it here.

use super::{file, fork, gup, kmap, Mm, Vma, VmaKind};
use crate::addr::{layout, MmId, Pfn, Vpn};
use crate::arch::Arch;
use crate::sched::ActorKind;
use crate::world::{Cx, StoreKind};

/// Bytes of argument strings copied.
pub const ARGV_BYTES: u64 = 4;

/// Pages of the new program's stack, at the top of the user address space.
pub const STACK_PAGES: u64 = 2;

/// `execve()` by a thread of `mm`, whose argument strings are the [`ARGV_BYTES`] bytes at `off`
/// of its `page`-th mapped page: the process's other threads are killed first (`de_thread`),
/// the new address space gets a stack (`bprm_mm_init`), the strings are copied into its top page
/// (`copy_strings`), the new address space replaces the old (`exec_mmap`, and `exit_mmap` of
/// the old), and the new program's heap and text are mapped (`load_elf_binary`).
pub async fn execve<A: Arch>(cx: &Cx<A>, mm: MmId, page: u8, off: u8) {
    let Some(vpn) = super::nth_user_page(cx, mm, page) else {
        return;
    };
    let ActorKind::Thread { pid } = cx.st().sched.actor(cx.me()).kind else {
        return;
    };
    let prev = cx.enter("do_execve", || format!("mm {mm}"));
    // The strings, read from the old address space (copy_from_user, faulting as needed).
    let size = cx.page_size();
    let at = off as u64 % size;
    let n = ARGV_BYTES.min(size - at);
    let mut argv = Vec::with_capacity(n as usize);
    for i in 0..n {
        match file::copy_from_user(cx, mm, vpn * size + at + i).await {
            Some(v) => argv.push(v),
            None => break,
        }
    }
    if argv.len() as u64 == n {
        if let Some(new) = bprm_mm_init(cx) {
            let top = layout::USER_PAGES - 1;
            if copy_strings(cx, new, top, size - n, &argv).await {
                de_thread(cx, mm, pid).await;
                exec_mmap(cx, pid, mm, new).await;
                load_elf_binary(cx, new);
            }
        }
    }
    cx.leave(prev);
}

/// `bprm_mm_init`: a new address space with only its stack VMA; `None` if none can be made.
fn bprm_mm_init<A: Arch>(cx: &Cx<A>) -> Option<MmId> {
    let mut st = cx.st();
    if st.k.mms.len() >= fork::MAX_MMS {
        return None;
    }
    let new = st.k.mms.len() as MmId;
    st.k.mms.push(Mm {
        vmas: vec![Vma {
            start: layout::USER_PAGES - STACK_PAGES,
            end: layout::USER_PAGES,
            kind: VmaKind::Anon,
            write: true,
            exec: false,
        }],
        alive: true,
        cpumask: 0,
        exiting: false,
        context: 0,
        swap_ptes: Vec::new(),
        vma_locks: Default::default(),
        xol: None,
        users: 1,
    });
    st.m.create_user_pt(new);
    Some(new)
}

/// `copy_strings` of `argv` to byte `at` of stack page `vpn` of the new address space `new`.
/// False if the page cannot be had.
async fn copy_strings<A: Arch>(
    cx: &Cx<A>,
    new: MmId,
    vpn: Vpn,
    at: u64,
    argv: &[crate::addr::Stamp],
) -> bool {
    let prev = cx.enter("copy_strings", || format!("mm {new}, user page {vpn}"));
    // get_arg_page: get_user_pages_remote(FOLL_FORCE | FOLL_WRITE).
    let Some(pfn) = gup::get_user_pages(cx, new, vpn, true, true).await else {
        cx.leave(prev);
        return false;
    };
    cx.step().await;
    let k = kmap::kmap(cx, pfn).await;
    flush_arg_page(cx, new, vpn, pfn).await;
    cx.step().await;
    let p = cx.enter("copy_from_user", || format!("{} bytes", argv.len()));
    cx.kstore_run(k + at, argv, false, StoreKind::UserData);
    cx.leave(p);
    cx.step().await;
    let p = cx.enter("flush_dcache_page", || format!("page {pfn}"));
    cx.arch().flush_dcache_page(cx, pfn).await;
    cx.leave(p);
    kmap::kunmap(cx, pfn).await;
    // put_arg_page.
    gup::unpin(cx, pfn);
    cx.leave(prev);
    true
}

/// `flush_arg_page`: `flush_cache_page` of the stack page's address in the new address space.
async fn flush_arg_page<A: Arch>(cx: &Cx<A>, new: MmId, vpn: Vpn, pfn: Pfn) {
    let p = cx.enter("flush_arg_page", || format!("mm {new}, user page {vpn}"));
    cx.arch().flush_cache_page(cx, new, vpn, pfn, false).await;
    cx.leave(p);
}

/// `de_thread`: the process's other threads finish what they are doing in the kernel (they
/// start nothing new) and are killed.
async fn de_thread<A: Arch>(cx: &Cx<A>, mm: MmId, pid: u8) {
    // A vfork child is single-threaded and gives the address space back to its parent.
    if cx.st().k.mms[mm as usize].users == 1 {
        cx.st().k.mms[mm as usize].exiting = true;
    }
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
    let mut st = cx.st();
    for i in 0..st.sched.len() {
        let a = st.sched.actor(i as u8);
        if a.alive && a.kind == (ActorKind::Thread { pid }) && i != cx.me() as usize {
            st.sched.kill(i as u8);
        }
    }
}

/// `exec_mmap`: the process takes the new address space, this CPU switches to it
/// (`activate_mm`), and the old one is dropped (`mmput`: torn down unless a vfork parent still
/// uses it).
async fn exec_mmap<A: Arch>(cx: &Cx<A>, pid: u8, old: MmId, new: MmId) {
    let p = cx.enter("exec_mmap", || format!("mm {old} -> mm {new}"));
    cx.st().k.procs[pid as usize] = new;
    let cpu = cx.cpu();
    let prev = cx.current_mm();
    cx.arch().switch_mm(cx, prev, new).await;
    {
        let mut st = cx.st();
        st.m.set_cpu_mm(cpu, Some(new));
        st.k.mms[new as usize].cpumask |= 1 << cpu;
    }
    cx.leave(p);
    fork::mmput(cx, old).await;
}

/// `load_elf_binary` maps the new program: its heap and its text (file 0, private and
/// executable), as the first process has them.
fn load_elf_binary<A: Arch>(cx: &Cx<A>, new: MmId) {
    let mut k = cx.kernel_mut();
    let fp = k.files[0].pages.len() as u64;
    let m = &mut k.mms[new as usize];
    m.vmas.push(Vma {
        start: 0,
        end: 4,
        kind: VmaKind::Anon,
        write: true,
        exec: false,
    });
    m.vmas.push(Vma {
        start: 8,
        end: 8 + fp,
        kind: VmaKind::File {
            file: 0,
            pgoff: 0,
            shared: false,
        },
        write: false,
        exec: true,
    });
    m.vmas.sort_by_key(|v| v.start);
}
