//! Temporary kernel mappings: `kmap`/`kunmap` through the pkmap slots (with `page_address` and
//! recycling by `flush_all_zero_pkmaps` when allocation wraps), `kmap_high_get`, and
//! `kmap_atomic`/`kunmap_atomic` through per-CPU fixmap slots.

use super::KMAP_LOCK;
use crate::addr::{layout, Pfn, Va};
use crate::arch::Arch;
use crate::machine::{Pte, Scope};
use crate::world::Cx;

/// `flush_all_zero_pkmaps`: called with `kmap_lock` held when slot allocation wraps. Flushes
/// the caches for the pkmap area, then unmaps every slot mapped but unused (count 1), clearing
/// its `page_address`, then flushes the kernel TLB for the area.
pub async fn flush_all_zero_pkmaps<A: Arch>(cx: &Cx<A>) {
    let prev = cx.enter("flush_all_zero_pkmaps", String::new);
    cx.arch().flush_cache_kmaps(cx).await;
    let page = cx.page_size();
    let slots = cx.st().k.pkmap.count.len();
    let mut any = false;
    for s in 0..slots {
        let mut st = cx.st();
        if st.k.pkmap.count[s] == 1 {
            st.k.pkmap.count[s] = 0;
            let old = st.k.pkmap.page[s].take();
            st.m.set_pte(None, layout::PKMAP + s as u64, Pte::default());
            drop(st);
            cx.note(|| {
                format!(
                    "pkmap slot {s} ({:#x}) recycled: page {} loses its page_address",
                    (layout::PKMAP + s as u64) * page,
                    old.map_or(-1, |p| p as i64)
                )
            });
            any = true;
        }
    }
    if any {
        let (a, b) = cx.pkmap_range();
        cx.arch().flush_tlb_kernel_range(cx, a, b).await;
    }
    cx.leave(prev);
}

/// `kmap_high`: the page's pkmap address, mapping it in a free slot if needed. Sleeps (yields
/// without the lock) while no slot is free.
pub async fn kmap_high<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Va {
    let page = cx.page_size();
    let mut again = false;
    loop {
        cx.spin_lock(KMAP_LOCK).await;
        let slot = cx.st().k.pkmap.slot_of(pfn);
        if let Some(s) = slot {
            cx.st().k.pkmap.count[s as usize] += 1;
            cx.spin_unlock(KMAP_LOCK);
            return (layout::PKMAP + s as u64) * page;
        }
        // map_new_virtual: scan from the last slot handed out, recycling on wrap.
        let n = cx.st().k.pkmap.count.len() as u32;
        let mut found = None;
        for _ in 0..n {
            let last = {
                let mut st = cx.st();
                st.k.pkmap.last = (st.k.pkmap.last + 1) % n;
                st.k.pkmap.last
            };
            if last == 0 {
                flush_all_zero_pkmaps(cx).await;
            }
            if cx.st().k.pkmap.count[last as usize] == 0 {
                found = Some(last);
                break;
            }
        }
        if let Some(s) = found {
            let mut st = cx.st();
            st.m.set_pte(None, layout::PKMAP + s as u64, Pte::new(pfn, true, false));
            st.k.pkmap.count[s as usize] = 2;
            st.k.pkmap.page[s as usize] = Some(pfn);
            drop(st);
            cx.note(|| {
                format!(
                    "page {pfn} kmapped at pkmap slot {s} ({:#x})",
                    (layout::PKMAP + s as u64) * page
                )
            });
            cx.spin_unlock(KMAP_LOCK);
            return (layout::PKMAP + s as u64) * page;
        }
        cx.spin_unlock(KMAP_LOCK);
        // Sleep until a kunmap frees a slot. Looking again, if nothing changed, undoes what it
        // does (the scan comes back to the same slot; flushing again finds nothing to flush).
        cx.wait(again).await;
        again = true;
    }
}

/// `kunmap_high`: drops one user of the page's slot; the mapping stays until recycled.
pub async fn kunmap_high<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    cx.spin_lock(KMAP_LOCK).await;
    let s = cx
        .st()
        .k
        .pkmap
        .slot_of(pfn)
        .expect("kunmap_high of a page that is not kmapped");
    cx.st().k.pkmap.count[s as usize] -= 1;
    cx.spin_unlock(KMAP_LOCK);
}

/// `kmap_high_get`: the page's pkmap address with its count pinned, or `None` if unmapped.
pub async fn kmap_high_get<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Option<Va> {
    cx.spin_lock(KMAP_LOCK).await;
    let s = cx.st().k.pkmap.slot_of(pfn);
    if let Some(s) = s {
        cx.st().k.pkmap.count[s as usize] += 1;
    }
    cx.spin_unlock(KMAP_LOCK);
    s.map(|s| (layout::PKMAP + s as u64) * cx.page_size())
}

/// `kmap`: the linear address of a lowmem page, or a pkmap slot for highmem.
pub async fn kmap<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Va {
    match cx.linear_va(pfn) {
        Some(va) => va,
        None => kmap_high(cx, pfn).await,
    }
}

/// `kunmap`.
pub async fn kunmap<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    if cx.is_highmem(pfn) {
        kunmap_high(cx, pfn).await;
    } else if let Some(va) = cx.linear_va(pfn) {
        cx.arch().kunmap_flush_on_unmap(cx, va).await;
    }
}

/// How a `kmap_atomic` mapping was made, for the matching unmap.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AtomicMap {
    /// The linear map (lowmem).
    Linear,
    /// An existing pkmap slot pinned with `kmap_high_get`.
    Pkmap(Pfn),
    /// A fixmap slot of this CPU.
    Fixmap,
}

/// `kmap_atomic`: disables preemption and returns an address for the page.
pub async fn kmap_atomic<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> (Va, AtomicMap) {
    cx.preempt_disable();
    if let Some(va) = cx.linear_va(pfn) {
        return (va, AtomicMap::Linear);
    }
    if cx.arch().kmap_atomic_reuses_pkmap() {
        if let Some(va) = kmap_high_get(cx, pfn).await {
            return (va, AtomicMap::Pkmap(pfn));
        }
    }
    let cpu = cx.cpu();
    let vpn = {
        let mut st = cx.st();
        let depth = st.k.fixmap_depth[cpu as usize];
        assert!(
            depth < layout::FIXMAP_PER_CPU,
            "kmap_atomic nesting too deep"
        );
        st.k.fixmap_depth[cpu as usize] += 1;
        let vpn = layout::FIXMAP + cpu as u64 * layout::FIXMAP_PER_CPU + depth;
        st.m.set_pte(None, vpn, Pte::new(pfn, true, false));
        vpn
    };
    cx.tlb_kernel(vpn, vpn + 1, Scope::Local);
    (vpn * cx.page_size(), AtomicMap::Fixmap)
}

/// `kunmap_atomic`.
pub async fn kunmap_atomic<A: Arch>(cx: &Cx<A>, va: Va, how: AtomicMap) {
    match how {
        AtomicMap::Linear => {
            let page = cx.page_size();
            cx.arch().kunmap_flush_on_unmap(cx, va / page * page).await;
        }
        AtomicMap::Pkmap(pfn) => kunmap_high(cx, pfn).await,
        AtomicMap::Fixmap => {
            cx.arch().kunmap_atomic_flush(cx, va).await;
            let vpn = va / cx.page_size();
            cx.write_pte(None, vpn, Pte::default());
            cx.tlb_kernel(vpn, vpn + 1, Scope::Local);
            let cpu = cx.cpu();
            cx.st().k.fixmap_depth[cpu as usize] -= 1;
        }
    }
    cx.preempt_enable();
}

/// A driver touching one byte of its buffer through `kmap`.
pub async fn kmap_access<A: Arch>(cx: &Cx<A>, pfn: Pfn, off: u8, write: bool) {
    let prev = cx.enter(if write { "kmap-write" } else { "kmap-read" }, || {
        format!("page {pfn}")
    });
    let va = kmap(cx, pfn).await;
    cx.step().await;
    let a = va + off as u64 % cx.page_size();
    if write {
        let v = cx.fresh();
        cx.kstore(a, v, false);
    } else {
        cx.kload(a);
    }
    cx.step().await;
    kunmap(cx, pfn).await;
    cx.leave(prev);
}

/// A driver storing one byte of its buffer through `kmap_atomic`.
pub async fn kmap_atomic_write<A: Arch>(cx: &Cx<A>, pfn: Pfn, off: u8) {
    let prev = cx.enter("kmap-atomic-write", || format!("page {pfn}"));
    let (va, how) = kmap_atomic(cx, pfn).await;
    let v = cx.fresh();
    cx.kstore(va + off as u64 % cx.page_size(), v, false);
    cx.step().await;
    kunmap_atomic(cx, va, how).await;
    cx.leave(prev);
}

/// `kmap_coherent`: maps `pfn` at a per-CPU colour window of the same colour as user address
/// `uva`, with preemption disabled until [`kunmap_coherent`], so kernel accesses hit the lines
/// a user mapping at `uva` would use.
pub fn kmap_coherent<A: Arch>(cx: &Cx<A>, pfn: Pfn, uva: Va) -> Va {
    cx.preempt_disable();
    cx.map_colour_window(0, uva, pfn)
}

/// `kunmap_coherent`.
pub fn kunmap_coherent<A: Arch>(cx: &Cx<A>, va: Va) {
    cx.unmap_colour_window(va);
    cx.preempt_enable();
}
