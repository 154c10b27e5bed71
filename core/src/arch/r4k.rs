//! MIPS R4K-style VIPT primaries, after arch/mips (`c-r4k.c`, `cache.c`, `init.c`'s
//! `copy_user_highpage` and `kmap_coherent`, `dma-noncoherent.c`).
//!
//! Deferred flushes use the "dcache dirty" polarity; `flush_cache_dup_mm` does nothing because
//! copy-on-write copies read the source through `kmap_coherent` at the user's colour (unless the
//! historical switch selects the generic colour-blind copy, as before 2.6.19). The deferred
//! flush runs in `set_pte_at`, or in `update_mmu_cache` under the historical switch.

use super::generic::{self, colour_alias_op, page_op, smp_scope};
use super::null::Null;
use super::{kernel_alias_maybe_dirty, set_kernel_alias_clean, Arch, Arch1Polarity};
use crate::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use crate::kernel::kmap;
use crate::machine::{CacheOp, Pte, Scope};
use crate::op::DmaDir;
use crate::world::{Cx, StoreKind};

/// MIPS R4K.
#[derive(Clone, Copy, Debug, Default)]
pub struct MipsR4k;

pub use super::generic::pages_do_alias;

/// `flush_data_cache_page` on a kernel address.
pub fn flush_data_cache_page<A: Arch>(cx: &Cx<A>, k: Va) {
    page_op(cx, CacheOp::Flush, k, smp_scope(cx));
}

/// `__update_cache`: the deferred kernel-alias flush when a page gets a user mapping at `vpn`,
/// for every page of its folio (each at the user address it has when the folio is mapped
/// whole around `vpn`).
pub async fn update_cache<A: Arch>(cx: &Cx<A>, vpn: Vpn, pte: Pte) {
    let page = cx.page_size();
    if !cx.dcache_aliases() && !pte.exec {
        return;
    }
    if kernel_alias_maybe_dirty(cx, pte.pfn) {
        let (head, nr) = cx.folio(pte.pfn);
        let first = vpn.wrapping_sub((pte.pfn - head) as u64);
        let mut flushed = false;
        for i in 0..nr {
            let (k, how) = kmap::kmap_atomic(cx, head + i as Pfn).await;
            let flush = pte.exec || pages_do_alias(cx, k, first.wrapping_add(i) * page);
            if flush {
                flush_data_cache_page(cx, k);
                flushed = true;
            }
            kmap::kunmap_atomic(cx, k, how).await;
        }
        // Mainline clears PG_dcache_dirty here even when it did not flush (a congruent,
        // non-executable mapping), so a later executable mapping of the page is not flushed and
        // the I-cache can fetch stale memory. This model keeps the flag until a flush happens.
        if flushed {
            set_kernel_alias_clean(cx, pte.pfn, true);
        }
    }
    if pte.exec {
        cx.icache_all(Scope::AllCpus);
    }
}

/// `flush_dcache_folio` on a D-cache without aliases: nothing to flush for other mappings, but
/// when the I-cache does not fill from the D-cache the page is marked `PG_dcache_dirty`, so
/// that `__update_cache` writes it back before an executable mapping of it is set.
fn mark_for_icache<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    if !cx.icache_fills_from_dcache() {
        set_kernel_alias_clean(cx, pfn, false);
    }
}

/// The MIPS flush of page `pfn`'s kernel alias and, beyond mainline (see
/// [`MipsR4k::flush_dcache_page`]), the colours of all its user mappings.
async fn flush_page_aliases<A: Arch>(cx: &Cx<A>, pfn: Pfn) {
    let (k, how) = kmap::kmap_atomic(cx, pfn).await;
    flush_data_cache_page(cx, k);
    kmap::kunmap_atomic(cx, k, how).await;
    let page = cx.page_size();
    for (_, vpn, _) in cx.user_mappings(pfn, None) {
        colour_alias_op(cx, pfn, vpn * page, CacheOp::Flush);
    }
}

impl Arch for MipsR4k {
    type Base = Null;

    fn base(&self) -> &Null {
        &Null
    }

    fn name(&self) -> &'static str {
        "mips-r4k"
    }

    async fn flush_cache_mm<O: Arch>(&self, cx: &Cx<O>, _mm: MmId) {
        if cx.dcache_aliases() {
            cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        }
    }

    async fn flush_cache_dup_mm<O: Arch>(&self, _cx: &Cx<O>, _mm: MmId) {}

    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        _start: Vpn,
        _end: Vpn,
        exec: bool,
    ) {
        // r4k_flush_cache_range: the D-cache for aliases, or for code the I-cache cannot see
        // in it.
        if cx.dcache_aliases() || (exec && !cx.icache_fills_from_dcache()) {
            cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        }
        if exec {
            cx.icache_all(Scope::AllCpus);
        }
    }

    /// `r4k_flush_cache_range` (arch/mips/mm/c-r4k.c) blasts the D-cache, then the I-cache,
    /// for an executable VMA.
    fn flush_cache_range_syncs_icache<O: Arch>(&self, _cx: &Cx<O>) -> bool {
        true
    }

    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        let present = cx.pte(mm, vpn).present;
        // local_r4k_flush_cache_page: the same test as r4k_flush_cache_range's.
        if present && (cx.dcache_aliases() || (exec && !cx.icache_fills_from_dcache())) {
            colour_alias_op(cx, pfn, vpn * cx.page_size(), CacheOp::Flush);
        }
        if exec {
            cx.icache_all(Scope::AllCpus);
        }
    }

    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        if !cx.dcache_aliases() {
            mark_for_icache(cx, pfn);
            return;
        }
        let file = cx.page_is_file(pfn);
        if file && cx.user_mappings(pfn, None).is_empty() {
            set_kernel_alias_clean(cx, pfn, false);
            return;
        }
        // Mainline writes back the kernel alias only, so a user mapping at another colour
        // keeps stale or dirty lines across write() and read(). This model also flushes the
        // colours of all the page's user mappings, as PA-RISC does. Private ones too: the cache
        // is physically tagged, so a clean line a private mapping filled is hit by any later
        // mapping of the page at that colour, such as a shared one faulted in after the write.
        flush_page_aliases(cx, pfn).await;
    }

    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        // __flush_dcache_pages of the whole folio: one decision for the folio, then each page.
        if !cx.dcache_aliases() {
            mark_for_icache(cx, pfn);
            return;
        }
        let mapped = (pfn..pfn + nr as Pfn).any(|p| !cx.user_mappings(p, None).is_empty());
        if cx.page_is_file(pfn) && !mapped {
            set_kernel_alias_clean(cx, pfn, false);
            return;
        }
        for p in pfn..pfn + nr as Pfn {
            flush_page_aliases(cx, p).await;
        }
    }

    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, _mm: MmId, pfn: Pfn, vpn: Vpn) {
        let page = cx.page_size();
        let Some(k) = cx.linear_va(pfn) else { return };
        if pages_do_alias(cx, k, vpn * page) {
            if !cx.user_mappings(pfn, None).is_empty() && !kernel_alias_maybe_dirty(cx, pfn) {
                colour_alias_op(cx, pfn, vpn * page, CacheOp::Flush);
            } else {
                flush_data_cache_page(cx, k);
            }
        }
    }

    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.dcache_aliases() {
            cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
        }
    }

    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.dcache_aliases() {
            cx.dcache_range(CacheOp::Flush, va, va + len, smp_scope(cx));
        }
    }

    async fn flush_cache_vmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        if cx.dcache_aliases() {
            cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        }
    }

    async fn flush_cache_vunmap<O: Arch>(&self, cx: &Cx<O>, _start: Va, _end: Va) {
        if cx.dcache_aliases() {
            cx.dcache_all(CacheOp::Flush, smp_scope(cx));
        }
    }

    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn flush_icache_user_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        cx.dcache_range(CacheOp::Clean, start, end, smp_scope(cx));
        cx.icache_all(Scope::AllCpus);
    }

    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        if !cx.switches().icache_sync_after_set_pte {
            update_cache(cx, vpn, pte).await;
        }
        cx.write_pte(Some(mm), vpn, pte);
    }

    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        // __update_cache once, for the first PTE's folio, when any PTE changes; then every PTE.
        let changes = (0..nr).any(|i| {
            let old = cx.pte(mm, vpn + i);
            !(old.present && old.pfn == pte.pfn + i as Pfn)
        });
        if changes && !cx.switches().icache_sync_after_set_pte {
            update_cache(cx, vpn, pte).await;
        }
        for i in 0..nr {
            let p = Pte {
                pfn: pte.pfn + i as Pfn,
                ..pte
            };
            cx.write_pte(Some(mm), vpn + i, p);
        }
    }

    async fn update_mmu_cache<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn) {
        if cx.switches().icache_sync_after_set_pte {
            let pte = cx.pte(mm, vpn);
            if pte.present {
                update_cache(cx, vpn, pte).await;
            }
        }
    }

    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        _mm: MmId,
    ) {
        if cx.switches().generic_copy_user_highpage {
            return generic::copy_user_highpage(cx, to, from, vpn).await;
        }
        let page = cx.page_size();
        let (kto, ht) = kmap::kmap_atomic(cx, to).await;
        if cx.dcache_aliases()
            && !cx.user_mappings(from, None).is_empty()
            && !kernel_alias_maybe_dirty(cx, from)
        {
            // kmap_coherent: the source at the user's colour, so a dirty user line is read.
            let kfrom = kmap::kmap_coherent(cx, from, vpn * page);
            generic::copy_page(cx, kto, kfrom);
            kmap::kunmap_coherent(cx, kfrom);
        } else {
            let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
            generic::copy_page(cx, kto, kfrom);
            kmap::kunmap_atomic(cx, kfrom, hf).await;
        }
        // copy_user_highpage (arch/mips/mm/init.c): written back for the I-cache too when it
        // does not fill from the D-cache.
        if !cx.icache_fills_from_dcache() || pages_do_alias(cx, kto, vpn * page) {
            flush_data_cache_page(cx, kto);
        }
        kmap::kunmap_atomic(cx, kto, ht).await;
    }

    async fn copy_user_page_done<O: Arch>(&self, cx: &Cx<O>, kto: Va, _to: Pfn, vpn: Vpn) {
        // clear_user_page / copy_user_page: flush the kernel alias if it does not match the
        // user's colour.
        if pages_do_alias(cx, kto, vpn * cx.page_size()) {
            flush_data_cache_page(cx, kto);
        }
    }

    async fn copy_to_user_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn, off: u64) {
        let page = cx.page_size();
        let v = cx.fresh();
        if cx.dcache_aliases()
            && !cx.user_mappings(pfn, None).is_empty()
            && !kernel_alias_maybe_dirty(cx, pfn)
        {
            let w = kmap::kmap_coherent(cx, pfn, vpn * page);
            cx.kstore(w + off, v, false);
            kmap::kunmap_coherent(cx, w);
        } else {
            let k = kmap::kmap(cx, pfn).await;
            cx.kstore(k + off, v, false);
            kmap::kunmap(cx, pfn).await;
            if cx.dcache_aliases() {
                set_kernel_alias_clean(cx, pfn, false);
            }
        }
        let exec = cx.vma(mm, vpn).is_some_and(|v| v.exec);
        if exec {
            cx.arch().flush_cache_page(cx, mm, vpn, pfn, true).await;
        }
    }

    async fn sync_dma_for_device<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, true).await;
    }

    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        generic::dma_maint(cx, pa, len, dir, false).await;
    }

    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        _vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        // arch/mips/kernel/uprobes.c: the slot written through kmap_atomic, then
        // flush_icache_range of the kernel address written.
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        let kstart = k + off;
        cx.kstore_run(kstart, values, false, StoreKind::Kernel);
        cx.arch()
            .flush_icache_range(cx, kstart, kstart + values.len() as u64)
            .await;
        kmap::kunmap_atomic(cx, k, how).await;
    }

    /// Large folios: MIPS selects `HAVE_ARCH_TRANSPARENT_HUGEPAGE` with
    /// `CPU_SUPPORTS_HUGEPAGES`, which the 64-bit R4X00, R5000 and R10000 kernels have.
    fn transparent_hugepage(&self) -> bool {
        true
    }

    fn arch_1_polarity(&self) -> Arch1Polarity {
        Arch1Polarity::DcacheDirty
    }

    fn shmlba_pages<O: Arch>(&self, cx: &Cx<O>) -> u64 {
        // SHMLBA is 256 KiB, a multiple of every colour count.
        cx.dcache_colours()
    }

    fn mmap_colour_pages<O: Arch>(&self, cx: &Cx<O>, _shared: bool) -> u64 {
        cx.dcache_colours()
    }

    fn rejects_incongruent_fixed(&self) -> bool {
        true
    }

    /// `do_page_fault` takes `mmap_lock` for every fault.
    fn per_vma_lock(&self) -> bool {
        false
    }
}
