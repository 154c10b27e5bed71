//! Instructions the kernel writes and then executes, or has a task execute: module loading
//! (`load_module`), a BPF JIT (`bpf_int_jit_compile` as ARM's and MIPS's JITs do it), the kernel
//! running that text on any CPU, freeing it (`execmem_free`), and uprobes' out-of-line slots
//! (`xol_get_insn_slot` with `arch_uprobe_copy_ixol`, the probed task then executing the slot).
//!
//! Module and JIT text is written through its vmalloc alias and made executable with
//! `flush_icache_range` over what was written, before `set_memory_rox` and before any CPU runs
//! it; a kernel fetch of it ([`Cx::kfetch_run`]) is judged like a user fetch of kernel text. A
//! uprobes slot is written by the arch's `uprobe_copy_ixol`, whose contract is that the task
//! fetches the new instruction on whatever CPU it runs next. None of this knows a race.

use super::{
    alloc_page, fault, get_page, mutex_lock, mutex_unlock, object_lock, put_page, vmap,
    KernelState, Special, Vma, VmaKind,
};
use crate::addr::{layout, MmId, Pfn, Va, Vpn};
use crate::arch::Arch;
use crate::machine::{Access, Pte};
use crate::world::{Cx, StoreKind};

/// How many pieces of kernel text (modules, JIT images) may be loaded at once.
pub const TEXT_SLOTS: usize = 2;

/// Bytes the kernel executes of loaded text in one call.
pub const FETCH: u64 = 4;

/// Bytes a relocation patches in a module's text.
pub const RELOC: u64 = 4;

/// Bytes of a JIT image.
pub const JIT_IMAGE: u64 = 16;

/// Bytes of a uprobes out-of-line slot.
pub const XOL_SLOT: u64 = 4;

/// Slots of an out-of-line area (slot 0 holds the return-probe trampoline).
pub const XOL_SLOTS: u64 = 4;

/// What a piece of kernel text is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TextKind {
    /// A loaded module's core text.
    Module,
    /// A BPF program's JIT image.
    Jit,
}

/// Kernel text in vmalloc space.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Text {
    /// What it is.
    pub kind: TextKind,
    /// The vmalloc address of its allocation.
    pub va: Va,
    /// Its pages.
    pub pfns: Vec<Pfn>,
    /// Where the instructions start in the allocation (a JIT image's random offset).
    pub start: u64,
    /// How many bytes of instructions there are.
    pub len: u64,
}

/// An address space's uprobes out-of-line area (`struct xol_area`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct XolArea {
    /// Its page.
    pub pfn: Pfn,
    /// The user page it is mapped at.
    pub vpn: Vpn,
    /// Slots in use, a bit each.
    pub used: u64,
}

/// The kernel name of what runs loaded text of `kind`.
fn runner(kind: TextKind) -> &'static str {
    match kind {
        TextKind::Module => "module text",
        TextKind::Jit => "bpf_prog_run",
    }
}

/// `set_memory_rox` of `n` kernel pages from `va`: their entries made read-only, then the
/// kernel TLB flushed.
async fn set_memory_rox<A: Arch>(cx: &Cx<A>, va: Va, n: u64) {
    let p = cx.enter("set_memory_rox", || format!("{va:#x}, {n} pages"));
    let vpn = va / cx.page_size();
    for v in vpn..vpn + n {
        let pte = cx.kernel_pte(v);
        cx.write_pte(
            None,
            v,
            Pte {
                write: false,
                exec: true,
                ..pte
            },
        );
    }
    cx.arch().flush_tlb_kernel_range(cx, vpn, vpn + n).await;
    cx.leave(p);
}

/// `flush_icache_range` of `[start, end)`, named in reports.
async fn flush_icache_range<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    let p = cx.enter("flush_icache_range", || format!("{start:#x}..{end:#x}"));
    cx.arch().flush_icache_range(cx, start, end).await;
    cx.leave(p);
}

/// `load_module` into text slot `slot`, if free: the module's memory allocated executable at or
/// after vmalloc page `at` (`execmem_alloc`), its text copied in (`move_module`), [`RELOC`]
/// bytes at `off` patched (`apply_relocations`), `flush_module_icache`, `module_enable_rox`, then
/// its init function run on this CPU (`do_init_module`). Under `module_mutex`, which also keeps
/// the module from being freed before its init has run.
pub async fn load_module<A: Arch>(cx: &Cx<A>, slot: u8, at: u8, off: u8) {
    let s = slot as usize % TEXT_SLOTS;
    let lock = object_lock(cx, super::locks::TEXT_MUTEX);
    mutex_lock(cx, lock).await;
    if cx.kernel().text[s].is_none() {
        let prev = cx.enter("load_module", || format!("slot {s}"));
        if let Some((va, pfns)) = vmap::vmalloc(cx, 1, at, 1, true, None).await {
            let page = cx.page_size();
            let p = cx.enter("move_module", || format!("text at {va:#x}"));
            let text: Vec<_> = (0..page).map(|_| cx.fresh()).collect();
            cx.kstore_run(va, &text, false, StoreKind::Kernel);
            cx.leave(p);
            cx.step().await;
            let at = off as u64 % page;
            let n = RELOC.min(page - at);
            let p = cx.enter("apply_relocations", || format!("{:#x}", va + at));
            let patch: Vec<_> = (0..n).map(|_| cx.fresh()).collect();
            cx.kstore_run(va + at, &patch, false, StoreKind::Kernel);
            cx.leave(p);
            cx.step().await;
            let p = cx.enter("flush_module_icache", String::new);
            flush_icache_range(cx, va, va + page).await;
            cx.leave(p);
            set_memory_rox(cx, va, 1).await;
            cx.kernel_mut().text[s] = Some(Text {
                kind: TextKind::Module,
                va,
                pfns,
                start: 0,
                len: page,
            });
            cx.step().await;
            let p = cx.enter("do_init_module", || format!("slot {s}"));
            cx.kfetch_run(va, FETCH.min(page));
            cx.leave(p);
        }
        cx.leave(prev);
    }
    mutex_unlock(cx, lock);
}

/// `bpf_int_jit_compile` into text slot `slot`, if free, as the ARM and MIPS JITs do it:
/// `bpf_jit_binary_alloc` (executable memory at or after vmalloc page `at`, filled with illegal
/// instructions, the image at an offset chosen by `off`), the image emitted through the vmalloc
/// alias, `flush_icache_range` from the allocation's start to the image's end, then
/// `bpf_jit_binary_lock_ro`. The program runs later, from any context ([`run_text`]).
pub async fn bpf_jit<A: Arch>(cx: &Cx<A>, slot: u8, at: u8, off: u8) {
    let s = slot as usize % TEXT_SLOTS;
    let lock = object_lock(cx, super::locks::TEXT_MUTEX);
    mutex_lock(cx, lock).await;
    if cx.kernel().text[s].is_none() {
        let prev = cx.enter("bpf_int_jit_compile", || format!("slot {s}"));
        let page = cx.page_size();
        let p = cx.enter("bpf_jit_binary_alloc", String::new);
        let made = vmap::vmalloc(cx, 1, at, 1, true, None).await;
        if let Some((va, _)) = made {
            let fill: Vec<_> = (0..page).map(|_| cx.fresh()).collect();
            cx.kstore_run(va, &fill, false, StoreKind::Kernel);
        }
        cx.leave(p);
        if let Some((va, pfns)) = made {
            cx.step().await;
            let len = JIT_IMAGE.min(page / 2);
            let start = off as u64 % (page - len + 1);
            let p = cx.enter("build_body", || format!("image at {:#x}", va + start));
            let image: Vec<_> = (0..len).map(|_| cx.fresh()).collect();
            cx.kstore_run(va + start, &image, false, StoreKind::Kernel);
            cx.leave(p);
            cx.step().await;
            flush_icache_range(cx, va, va + start + len).await;
            let p = cx.enter("bpf_jit_binary_lock_ro", String::new);
            set_memory_rox(cx, va, 1).await;
            cx.leave(p);
            cx.kernel_mut().text[s] = Some(Text {
                kind: TextKind::Jit,
                va,
                pfns,
                start,
                len,
            });
        }
        cx.leave(prev);
    }
    mutex_unlock(cx, lock);
}

/// The kernel runs [`FETCH`] bytes of the text in slot `slot` from byte `off` of it, on this
/// CPU, in one step (a call into a module, `bpf_prog_run`): from any context, on any CPU.
pub async fn run_text<A: Arch>(cx: &Cx<A>, slot: u8, off: u8) {
    let Some(t) = cx.kernel().text[slot as usize % TEXT_SLOTS].clone() else {
        return;
    };
    let at = t.start + off as u64 % t.len;
    let n = FETCH.min(t.start + t.len - at);
    let p = cx.enter(runner(t.kind), || format!("{:#x}", t.va + at));
    cx.kfetch_run(t.va + at, n);
    cx.leave(p);
}

/// The text in slot `slot` freed, if any (`free_module`, `bpf_jit_free`): its memory given
/// back with `execmem_free` (`vfree`), under `module_mutex`.
pub async fn free_text<A: Arch>(cx: &Cx<A>, slot: u8) {
    let s = slot as usize % TEXT_SLOTS;
    let lock = object_lock(cx, super::locks::TEXT_MUTEX);
    mutex_lock(cx, lock).await;
    let taken = cx.kernel_mut().text[s].take();
    if let Some(t) = taken {
        let name = match t.kind {
            TextKind::Module => "free_module",
            TextKind::Jit => "bpf_jit_free",
        };
        let prev = cx.enter(name, || format!("slot {s}"));
        vmap::vfree(cx, t.va, &t.pfns).await;
        cx.leave(prev);
    }
    mutex_unlock(cx, lock);
}

/// A thread of `mm` hits a uprobe's breakpoint (`handle_swbp`): the probed instruction is
/// copied into a free out-of-line slot (`xol_get_insn_slot`: `arch_uprobe_copy_ixol`), the
/// thread returns to user mode to execute it, on whatever CPU it runs by then, and the slot is
/// freed (`arch_uprobe_post_xol`, `xol_free_insn_slot`). Nothing on an arch without uprobes.
pub async fn uprobe_hit<A: Arch>(cx: &Cx<A>, mm: MmId) {
    if !cx.arch().has_uprobes() {
        return;
    }
    let prev = cx.enter("handle_swbp", || format!("mm {mm}"));
    if let Some(area) = get_xol_area(cx, mm).await {
        let slot = take_slot(cx, mm).await;
        let off = slot * XOL_SLOT;
        let insn: Vec<_> = (0..XOL_SLOT).map(|_| cx.fresh()).collect();
        let p = cx.enter("arch_uprobe_copy_ixol", || format!("slot {slot}"));
        cx.arch()
            .uprobe_copy_ixol(cx, area.pfn, area.vpn, off, &insn)
            .await;
        cx.leave(p);
        // arch_uprobe_pre_xol: back to user mode, to single-step the slot.
        cx.step().await;
        let va = area.vpn * cx.page_size() + off;
        let p = cx.enter("user fetch", || format!("{va:#x} (out-of-line slot)"));
        for i in 0..XOL_SLOT {
            fault::user_access_at(cx, mm, va + i, Access::Exec, fault::FaultOpts::default()).await;
        }
        cx.leave(p);
        cx.step().await;
        if let Some(x) = cx.kernel_mut().mms[mm as usize].xol.as_mut() {
            x.used &= !(1 << slot);
        }
    }
    cx.leave(prev);
}

/// `xol_take_insn_slot`: a free slot of the area, waiting for one as long as all are taken.
async fn take_slot<A: Arch>(cx: &Cx<A>, mm: MmId) -> u64 {
    let slots = XOL_SLOTS.min(cx.page_size() / XOL_SLOT);
    let mut again = false;
    loop {
        {
            let mut k = cx.kernel_mut();
            let x = k.mms[mm as usize].xol.as_mut().expect("an area");
            if let Some(s) = (1..slots).find(|s| x.used & (1 << s) == 0) {
                x.used |= 1 << s;
                return s;
            }
        }
        cx.wait(again).await;
        again = true;
    }
}

/// `get_xol_area`: the address space's out-of-line area, made on first use (`xol_add_vma`,
/// under `mmap_lock`): a zeroed page with the return-probe trampoline in slot 0 (through
/// `arch_uprobe_copy_ixol`), mapped executable at the highest free user page by a special
/// mapping whose fault maps the page.
async fn get_xol_area<A: Arch>(cx: &Cx<A>, mm: MmId) -> Option<XolArea> {
    if let Some(x) = cx.kernel().mms[mm as usize].xol {
        return Some(x);
    }
    let lock = KernelState::mmap_lock(mm);
    mutex_lock(cx, lock).await;
    let existing = cx.kernel().mms[mm as usize].xol;
    let made = match existing {
        Some(x) => Some(x),
        None => xol_add_vma(cx, mm).await,
    };
    mutex_unlock(cx, lock);
    made
}

async fn xol_add_vma<A: Arch>(cx: &Cx<A>, mm: MmId) -> Option<XolArea> {
    let vpn = {
        let k = cx.kernel();
        let m = &k.mms[mm as usize];
        (0..layout::USER_PAGES)
            .rev()
            .find(|&v| m.vma(v).is_none())?
    };
    let pfn = alloc_page(cx, true, super::PageKind::Kernel)?;
    let prev = cx.enter("xol_add_vma", || format!("mm {mm}, user page {vpn}"));
    // __GFP_ZERO: zeros nobody executes, so no instructions for the oracle's I-side rule.
    vmap::clear_highpage(cx, pfn, StoreKind::UserData).await;
    let area = XolArea { pfn, vpn, used: 1 };
    {
        let mut k = cx.kernel_mut();
        let m = &mut k.mms[mm as usize];
        m.xol = Some(area);
        m.vmas.push(Vma {
            start: vpn,
            end: vpn + 1,
            kind: VmaKind::Special {
                what: Special::Xol,
                pgoff: 0,
            },
            write: false,
            exec: true,
        });
        m.vmas.sort_by_key(|v| v.start);
    }
    let trampoline: Vec<_> = (0..XOL_SLOT).map(|_| cx.fresh()).collect();
    let p = cx.enter("arch_uprobe_copy_ixol", || "slot 0".into());
    cx.arch()
        .uprobe_copy_ixol(cx, pfn, vpn, 0, &trampoline)
        .await;
    cx.leave(p);
    cx.leave(prev);
    Some(area)
}

/// `uprobe_clear_state` at the end of an address space: the area's page is dropped.
pub fn uprobe_clear_state<A: Arch>(cx: &Cx<A>, mm: MmId) {
    let x = cx.kernel_mut().mms[mm as usize].xol.take();
    if let Some(x) = x {
        put_page(cx, x.pfn);
    }
}

/// The page a [`VmaKind::Special`] VMA of `mm` maps at `vpn`, with a reference taken for the
/// mapping (`xol_fault`; the ring's pages, mapped up front, again after a fault).
pub fn special_page<A: Arch>(cx: &Cx<A>, mm: MmId, vma: &Vma, vpn: Vpn) -> Option<Pfn> {
    let VmaKind::Special { what, pgoff } = vma.kind else {
        return None;
    };
    let pfn = {
        let k = cx.kernel();
        match what {
            Special::Xol => k.mms[mm as usize].xol.map(|x| x.pfn),
            Special::Ring(n) => k.rings[n as usize].as_ref().and_then(|r| {
                r.pfns
                    .get((pgoff as u64 + vpn - vma.start) as usize)
                    .copied()
            }),
        }
    }?;
    get_page(cx, pfn);
    Some(pfn)
}
