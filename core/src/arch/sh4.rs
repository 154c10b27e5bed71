//! SuperH SH-4 and SH-4A, after mainline Linux 6.18: arch/sh/mm/cache.c (`copy_to_user_page`,
//! `copy_from_user_page`, `copy_user_highpage`, `clear_user_highpage`, `__update_cache`,
//! `__flush_anon_page`, `cacheop_on_each_cpu`), arch/sh/mm/cache-sh4.c (`sh4_flush_dcache_folio`,
//! `sh4_flush_cache_mm`, `sh4_flush_cache_page`, `sh4_flush_cache_range`,
//! `sh4_flush_icache_range`, `flush_cache_one`), arch/sh/mm/kmap.c (`kmap_coherent`,
//! `kunmap_coherent`), arch/sh/include/asm/cacheflush.h and arch/sh/kernel/dma-coherent.c
//! (`arch_sync_dma_for_device`).
//!
//! The D-cache is virtually indexed and physically tagged, with as many colours as its way
//! holds pages (`n_aliases`); the I-cache likewise, and it never snoops. Two kinds of
//! maintenance exist. By address (`ocbwb`, `ocbp`, `ocbi`: `__flush_wback_region`,
//! `__flush_purge_region`, `__flush_invalidate_region`), which goes through the TLB and acts on
//! the lines of the physical bytes at that address's colour. And through the memory-mapped
//! address array without association (`flush_cache_one`, `flush_dcache_all`): each write
//! writes back a valid dirty entry and invalidates it, whatever its tag, so `flush_cache_one`
//! empties the page-sized slice of every way at one colour, and `flush_dcache_all` empties the
//! whole cache. Both act on the issuing CPU only; `cacheop_on_each_cpu` runs the `local_`
//! functions on every CPU (by IPI on SH-X3, the SMP part).
//!
//! `PG_arch_1` is `PG_dcache_clean`. `flush_dcache_folio` flushes the slice at each page's
//! kernel colour (on a uniprocessor kernel it only clears `PG_dcache_clean` when the file is
//! mapped nowhere); `update_mmu_cache` (`__update_cache`) purges the folio's kernel alias the
//! first time it is mapped after the flag was cleared. Copies and ptrace accesses to a mapped,
//! clean page go through `kmap_coherent` at the user's colour, whose `kunmap_coherent` purges
//! the window. Streaming DMA maintains the kernel alias before the transfer only: SH does not
//! define `arch_sync_dma_for_cpu`, and its cores do not fill lines speculatively.
//!
//! SH has no highmem and no uprobes. `flush_icache_range` invalidates the I-cache entries of
//! each line's index in every way and colour; the model invalidates this CPU's whole I-cache
//! instead, which removes those entries and others.

use super::generic::{self, dma_lines, folio_mapped, pages_do_alias};
use super::null::Null;
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::cache::Slot;
use crate::kernel::{kmap, PageKind, VmaKind};
use crate::machine::{CacheOp, Scope};
use crate::op::DmaDir;
use crate::world::Cx;

/// SuperH SH-4 / SH-4A with VIPT caches.
#[derive(Clone, Copy, Debug, Default)]
pub struct Sh4;

/// The largest range `sh4_flush_icache_range` walks line by line, in pages (`MAX_ICACHE_PAGES`).
pub const MAX_ICACHE_PAGES: u64 = 32;

/// `flush_cache_one` through the address array: writes back and invalidates every entry of
/// the page-sized slice of each way at the colour of `va`, on this CPU.
pub fn flush_cache_one<A: Arch>(cx: &Cx<A>, va: Va) {
    let g = cx.dcache_geometry();
    let page = cx.page_size();
    let line = g.line as u64;
    let per_page = (page / line).min(g.sets as u64) as u32;
    let first = ((va & !(page - 1)) / line % g.sets as u64) as u32;
    for way in 0..g.ways {
        for i in 0..per_page {
            let set = (first + i) % g.sets;
            cx.dcache_setway(CacheOp::Flush, Slot { set, way });
        }
    }
}

/// `flush_dcache_all` through the address array: the whole D-cache of this CPU.
fn flush_dcache_all<A: Arch>(cx: &Cx<A>) {
    cx.dcache_all(CacheOp::Flush, Scope::Local);
}

/// `flush_icache_all`: `CCR.ICI`, this CPU's whole I-cache.
fn flush_icache_all<A: Arch>(cx: &Cx<A>) {
    cx.icache_all(Scope::Local);
}

/// `__flush_purge_region`: `ocbp` of every line of `[va, va + len)`.
pub fn purge_region<A: Arch>(cx: &Cx<A>, va: Va, len: u64) {
    cx.dcache_range(CacheOp::Flush, va, va + len, Scope::Local);
}

/// Whether `mm` has an ASID on this CPU (`cpu_context(cpu, mm) != NO_CONTEXT`): it has run here.
fn has_context<A: Arch>(cx: &Cx<A>, mm: MmId) -> bool {
    cx.mm_cpumask(mm) & (1 << cx.cpu()) != 0
}

/// `folio_flush_mapping(folio) && !mapping_mapped(mapping)`: a page-cache page whose file no
/// address space maps.
fn file_mapped_nowhere<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> bool {
    let PageKind::PageCache { file, .. } = cx.page_kind(pfn) else {
        return false;
    };
    let k = cx.kernel();
    !k.mms.iter().filter(|m| m.alive).any(|m| {
        m.vmas
            .iter()
            .any(|v| matches!(v.kind, VmaKind::File { file: f, .. } if f == file))
    })
}

/// Whether the page is mapped and `PG_dcache_clean`, so a kernel access may go through
/// `kmap_coherent` at the user's colour.
pub fn coherent_window<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> bool {
    cx.dcache_aliases() && folio_mapped(cx, pfn) && !kernel_alias_maybe_dirty(cx, pfn)
}

/// `kunmap_coherent`: the window purged, then unmapped.
pub fn kunmap_coherent<A: Arch>(cx: &Cx<A>, w: Va) {
    purge_region(cx, w & !(cx.page_size() - 1), cx.page_size());
    kmap::kunmap_coherent(cx, w);
}

/// The kernel address of `pfn` (`page_address`; SH has no highmem).
fn kaddr<A: Arch>(cx: &Cx<A>, pfn: Pfn) -> Option<Va> {
    cx.linear_va(pfn)
}

/// `flush_dcache_folio` (`sh4_flush_dcache_folio` on each CPU): on a uniprocessor kernel, a
/// page-cache folio whose file is mapped nowhere only has `PG_dcache_clean` cleared; otherwise
/// the slice at each page's kernel colour is flushed (the flag is left as it was).
pub fn flush_dcache_folio<A: Arch>(cx: &Cx<A>, pfn: Pfn, nr: u64) {
    if cx.ncpus() == 1 && file_mapped_nowhere(cx, pfn) {
        set_kernel_alias_clean(cx, pfn, false);
        return;
    }
    cx.on_each_cpu(|c| {
        for p in pfn..pfn + nr as Pfn {
            if let Some(k) = kaddr(c, p) {
                flush_cache_one(c, k);
            }
        }
    });
}

/// `flush_icache_range` (`sh4_flush_icache_range` on each CPU): both caches whole for a range
/// of [`MAX_ICACHE_PAGES`] pages or more; else each line written back by address (`ocbwb`) and
/// the I-cache invalidated.
pub fn flush_icache_range<A: Arch>(cx: &Cx<A>, start: Va, end: Va) {
    let pages = end.saturating_sub(start) / cx.page_size();
    cx.on_each_cpu(|c| {
        if pages >= MAX_ICACHE_PAGES {
            flush_dcache_all(c);
        } else {
            c.dcache_range(CacheOp::Clean, start, end, Scope::Local);
        }
        flush_icache_all(c);
    });
}

impl Arch for Sh4 {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "sh4"
    }

    /// `flush_cache_mm`: nothing without aliases; else `sh4_flush_cache_mm` on each CPU where
    /// `mm` has a context: the whole D-cache.
    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, mm: MmId) {
        if !cx.dcache_aliases() {
            return;
        }
        cx.on_each_cpu(|c| {
            if has_context(c, mm) {
                flush_dcache_all(c);
            }
        });
    }

    /// `sh4_flush_cache_range` on each CPU where `mm` has a context: nothing without aliases;
    /// else the whole D-cache, and the whole I-cache for an executable VMA.
    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        _start: Vpn,
        _end: Vpn,
        exec: bool,
    ) {
        cx.on_each_cpu(|c| {
            if !has_context(c, mm) || !c.dcache_aliases() {
                return;
            }
            flush_dcache_all(c);
            if exec {
                flush_icache_all(c);
            }
        });
    }

    /// With aliases, `sh4_flush_cache_range` empties both caches for an executable VMA.
    fn flush_cache_range_syncs_icache<O: Arch>(&self, cx: &Cx<O>) -> bool {
        cx.dcache_aliases()
    }

    /// `sh4_flush_cache_page` on each CPU where `mm` has a context, for a present entry: the
    /// slice at the user's colour when `mm` runs on that CPU; for another address space, the
    /// slice at the colour of a `kmap_coherent` window (a mapped, clean page) or of the page's
    /// kernel address; then the whole I-cache for an executable VMA.
    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        let uva = vpn * cx.page_size();
        if !cx.pte(mm, vpn).present {
            return;
        }
        cx.on_each_cpu(|c| {
            if !has_context(c, mm) {
                return;
            }
            if c.current_mm() == Some(mm) {
                flush_cache_one(c, uva);
            } else if coherent_window(c, pfn) {
                let w = kmap::kmap_coherent(c, pfn, uva);
                flush_cache_one(c, w);
                kunmap_coherent(c, w);
            } else if let Some(k) = kaddr(c, pfn) {
                flush_cache_one(c, k);
            }
            if exec {
                flush_icache_all(c);
            }
        });
    }

    /// `flush_dcache_page`: `flush_dcache_folio` of the page's folio.
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        let (head, nr) = cx.folio(pfn);
        flush_dcache_folio(cx, head, nr);
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        flush_dcache_folio(cx, pfn, nr);
    }

    /// `flush_anon_page` (`__flush_anon_page`) of an anonymous page whose kernel address has
    /// another colour than `vpn`: through a `kmap_coherent` window at the user's colour, whose
    /// unmapping purges it, when the page is mapped and clean; else the folio's kernel alias.
    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, _mm: MmId, pfn: Pfn, vpn: Vpn) {
        if !cx.dcache_aliases() || !cx.page_is_anon(pfn) {
            return;
        }
        let page = cx.page_size();
        let uva = vpn * page;
        let Some(k) = kaddr(cx, pfn) else { return };
        if !pages_do_alias(cx, k, uva) {
            return;
        }
        if coherent_window(cx, pfn) {
            let w = kmap::kmap_coherent(cx, pfn, uva);
            kunmap_coherent(cx, w);
        } else {
            let (head, nr) = cx.folio(pfn);
            if let Some(hk) = kaddr(cx, head) {
                purge_region(cx, hk, nr * page);
            }
        }
    }

    /// `__flush_wback_region` of the range.
    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Clean, va, va + len, Scope::Local);
    }

    /// `__flush_invalidate_region` of the range.
    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        cx.dcache_range(CacheOp::Invalidate, va, va + len, Scope::Local);
    }

    /// `local_flush_cache_all`: both caches of this CPU only.
    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        flush_dcache_all(cx);
        flush_icache_all(cx);
    }

    /// `local_flush_cache_all`, as `flush_cache_vmap`.
    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        flush_dcache_all(cx);
        flush_icache_all(cx);
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        flush_icache_range(cx, start, end);
    }

    /// SH does not define it: the generic `flush_icache_user_range` is `flush_icache_range`.
    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        flush_icache_range(cx, start, end);
    }

    /// `__update_cache`: with aliases, the first mapping of a folio whose `PG_dcache_clean` is
    /// clear sets it and purges the folio's kernel alias.
    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        if !cx.dcache_aliases() {
            return;
        }
        let pte = cx.pte(mm, vpn);
        if !pte.present {
            return;
        }
        let (head, nr) = cx.folio(pte.pfn);
        if kernel_alias_maybe_dirty(cx, head) {
            set_kernel_alias_clean(cx, head, true);
            if let Some(k) = kaddr(cx, head) {
                purge_region(cx, k, nr * cx.page_size());
            }
        }
    }

    /// `copy_user_highpage` (arch/sh/mm/cache.c): the source read through `kmap_coherent` at
    /// the user's colour when it is mapped and clean, else through `kmap_atomic`; the copy's
    /// kernel alias purged when it has another colour than the user's or the VMA is
    /// executable.
    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) {
        let page = cx.page_size();
        let uva = vpn * page;
        let (kto, ht) = kmap::kmap_atomic(cx, to).await;
        if coherent_window(cx, from) {
            let kfrom = kmap::kmap_coherent(cx, from, uva);
            generic::copy_page(cx, kto, kfrom);
            kunmap_coherent(cx, kfrom);
        } else {
            let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
            generic::copy_page(cx, kto, kfrom);
            kmap::kunmap_atomic(cx, kfrom, hf).await;
        }
        let exec = cx.vma(mm, vpn).is_some_and(|v| v.exec);
        if pages_do_alias(cx, kto, uva) || exec {
            purge_region(cx, kto, page);
        }
        kmap::kunmap_atomic(cx, kto, ht).await;
    }

    /// `clear_user_highpage`: zeros through `kmap_atomic`, purged when the kernel address has
    /// another colour than the user's.
    async fn clear_user_highpage<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, vpn: Vpn) {
        let page = cx.page_size();
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        generic::clear_page(cx, k);
        if pages_do_alias(cx, k, vpn * page) {
            purge_region(cx, k, page);
        }
        kmap::kunmap_atomic(cx, k, how).await;
    }

    /// `copy_to_user_page`: through `kmap_coherent` at the user's colour when the page is
    /// mapped and clean; else through the caller's kernel mapping, clearing `PG_dcache_clean`;
    /// then `flush_cache_page` for an executable VMA.
    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        let page = cx.page_size();
        if coherent_window(cx, pfn) {
            let v = cx.fresh();
            let w = kmap::kmap_coherent(cx, pfn, vpn * page);
            cx.kstore(w + off, v, false);
            kunmap_coherent(cx, w);
        } else {
            generic::copy_to_user_page(cx, pfn, vpn, off).await;
            if cx.dcache_aliases() {
                set_kernel_alias_clean(cx, pfn, false);
            }
        }
        if cx.vma(mm, vpn).is_some_and(|v| v.exec) {
            cx.arch().flush_cache_page(cx, mm, vpn, pfn, true).await;
        }
    }

    /// `copy_from_user_page`: as `copy_to_user_page`, reading (the kernel-mapping branch also
    /// clears `PG_dcache_clean`).
    async fn copy_from_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) -> Stamp {
        if coherent_window(cx, pfn) {
            let w = kmap::kmap_coherent(cx, pfn, vpn * cx.page_size());
            let v = cx.kload(w + off);
            kunmap_coherent(cx, w);
            v
        } else {
            let v = generic::copy_from_user_page(cx, pfn, vpn, off).await;
            if cx.dcache_aliases() {
                set_kernel_alias_clean(cx, pfn, false);
            }
            v
        }
    }

    /// `arch_sync_dma_for_device`: the kernel alias written back (to the device), invalidated
    /// (from the device) or both, line by line on this CPU.
    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        let op = match dir {
            DmaDir::ToDevice => CacheOp::Clean,
            DmaDir::FromDevice => CacheOp::Invalidate,
            DmaDir::Bidirectional => CacheOp::Flush,
        };
        dma_lines(cx, pa, len, Scope::Local, |_| op).await;
    }

    /// SH does not select `ARCH_HAS_SYNC_DMA_FOR_CPU`: nothing after the transfer.
    async fn sync_dma_for_cpu<O: Arch>(&self, _cx: &Cx<O>, _pa: Pa, _len: u64, _dir: DmaDir) {}

    /// No large folios: SH does not select `HAVE_ARCH_TRANSPARENT_HUGEPAGE`.
    fn transparent_hugepage(&self) -> bool {
        false
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheClean
    }

    /// `arch_get_unmapped_area` colours file and shared mappings by `shm_align_mask` (the
    /// D-cache way).
    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, _shared: bool) -> u64 {
        cx.dcache_colours()
    }

    /// A `MAP_FIXED` shared mapping at another colour than its file offset is refused.
    fn rejects_incongruent_fixed(&self) -> bool {
        true
    }

    /// `do_page_fault` takes `mmap_lock` for every fault.
    fn per_vma_lock(&self) -> bool {
        false
    }

    /// `SHMLBA` is 16 KiB, a multiple of the colours.
    fn shmlba_pages<O: Arch>(&self, cx: &Cx<O>) -> u64 {
        cx.dcache_colours()
    }

    fn has_uprobes(&self) -> bool {
        false
    }
}
