//! Test arches, each a shipped arch with one flush dropped that one kernel path relies on, on
//! the machine where that path needs it. Each is a model whose preset is named
//! `<path>--<dropped flush>` and whose twin is the shipped arch on the same machine: a
//! coverage-guided campaign on it must find a race the twin does not have, and its minimized
//! trace must start that path (flushfuzz's integration test `dropped`). A test arch drops the
//! flush only while the actor is in that path ([`Cx::path`]) when the same flush serves other
//! paths too, so that the race found is the path's.

use flushfuzz::addr::{MmId, Pfn, Va, Vpn};
use flushfuzz::arch::r4k::MipsR4k;
use flushfuzz::arch::{generic, kernel_alias_maybe_dirty, vivt::ArmVivt, Arch};
use flushfuzz::harness::Target;
use flushfuzz::kernel::kmap;
use flushfuzz::machine::Pte;
use flushfuzz::model::{DynModel, Model};
use flushfuzz::preset::{self, Preset};
use flushfuzz::world::Cx;
use std::rc::Rc;

/// A dropped flush: the path that relies on it, the flush, the machine, and the model.
pub struct Dropped {
    /// The kernel path whose race the campaign must find.
    pub path: &'static str,
    /// The flush dropped.
    pub flush: &'static str,
    /// The model (its twin is the shipped arch).
    pub model: Rc<dyn DynModel>,
}

/// The model of `arch` on `machine`, named `<path>--<flush>`, with `real` as its twin.
pub fn dropped<A: Arch + Clone, R: Arch + Clone>(
    path: &'static str,
    flush: &'static str,
    machine: &str,
    arch: A,
    real: R,
) -> Dropped {
    let base = preset::by_name(machine).unwrap_or_else(|| panic!("no preset {machine}"));
    let p = Preset {
        name: format!("{path}--{flush}"),
        description: format!("{} with {flush} dropped in {path}", base.name),
        ..base
    };
    let twin: Rc<dyn DynModel> = Rc::new(Model::new(p.clone(), real));
    Dropped {
        path,
        flush,
        model: Rc::new(Model::new(p, arch).with_twin(twin)),
    }
}

/// ARM VIVT without `flush_anon_page` (what GUP relies on for anonymous pages).
#[derive(Clone, Copy, Debug, Default)]
pub struct VivtNoFlushAnonPage(ArmVivt);

impl Arch for VivtNoFlushAnonPage {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_anon_page"
    }
    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        if cx.action() != "gup" {
            self.base().flush_anon_page(cx, mm, pfn, vpn).await;
        }
    }
}

/// ARM VIVT without `flush_cache_page` in compaction's migration (what `try_to_migrate_one`
/// relies on to write the user's lines back before the copy).
#[derive(Clone, Copy, Debug, Default)]
pub struct VivtMigrateNoFlushCachePage(ArmVivt);

impl Arch for VivtMigrateNoFlushCachePage {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_cache_page-in-migrate"
    }
    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        if cx.action() != "migrate" {
            self.base().flush_cache_page(cx, mm, vpn, pfn, exec).await;
        }
    }
}

/// ARM VIVT without `flush_cache_page` in ksmd's merge (`write_protect_page`, `replace_page`).
#[derive(Clone, Copy, Debug, Default)]
pub struct VivtKsmNoFlushCachePage(ArmVivt);

impl Arch for VivtKsmNoFlushCachePage {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_cache_page-in-ksm-merge"
    }
    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        if cx.action() != "ksm-merge" {
            self.base().flush_cache_page(cx, mm, vpn, pfn, exec).await;
        }
    }
}

/// ARM VIVT without `flush_cache_page` in reclaim (what `try_to_unmap_one` relies on to write
/// the user's lines back before the device reads the page).
#[derive(Clone, Copy, Debug, Default)]
pub struct VivtSwapOutNoFlushCachePage(ArmVivt);

impl Arch for VivtSwapOutNoFlushCachePage {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_cache_page-in-swap-out"
    }
    async fn flush_cache_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        vpn: Vpn,
        pfn: Pfn,
        exec: bool,
    ) {
        if cx.action() != "swap-out" {
            self.base().flush_cache_page(cx, mm, vpn, pfn, exec).await;
        }
    }
}

/// MIPS R4K without `flush_dcache_folio` in readahead (what a page-cache folio filled through
/// the kernel mapping relies on to be flushed, or marked for the flush at its mapping).
#[derive(Clone, Copy, Debug, Default)]
pub struct R4kReadaheadNoFlushDcacheFolio(MipsR4k);

impl Arch for R4kReadaheadNoFlushDcacheFolio {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.0
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-flush_dcache_folio-in-readahead"
    }
    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        if cx.action() != "readahead" {
            self.base().flush_dcache_folio(cx, pfn, nr).await;
        }
    }
}

/// MIPS R4K whose `set_ptes`, mapping pages around a fault, skips the deferred flush of the
/// kernel alias (`__update_cache`).
#[derive(Clone, Copy, Debug, Default)]
pub struct R4kFaultAroundNoUpdateCache(MipsR4k);

impl Arch for R4kFaultAroundNoUpdateCache {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.0
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-__update_cache-in-set_ptes-of-fault-around"
    }
    async fn set_ptes<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte, nr: u64) {
        if cx.action() != "fault-around" {
            return self.base().set_ptes(cx, mm, vpn, pte, nr).await;
        }
        for i in 0..nr {
            let p = Pte {
                pfn: pte.pfn + i as Pfn,
                ..pte
            };
            cx.write_pte(Some(mm), vpn + i, p);
        }
    }
}

/// MIPS R4K whose clear of a large anonymous folio's subpages leaves the zeros in dirty lines of
/// the kernel alias (`clear_user_page`'s flush when the colours differ, dropped).
#[derive(Clone, Copy, Debug, Default)]
pub struct R4kThpClearNoFlush(MipsR4k);

impl Arch for R4kThpClearNoFlush {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.0
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-the-flush-of-clear_user_page-in-thp-fault"
    }
    async fn copy_user_page_done<O: Arch>(&self, cx: &Cx<O>, kto: Va, to: Pfn, vpn: Vpn) {
        if cx.action() != "thp-fault" {
            self.base().copy_user_page_done(cx, kto, to, vpn).await;
        }
    }
}

/// MIPS R4K whose `copy_user_highpage`, copying a large folio on a write fault, leaves the copy
/// in dirty lines of the destination's kernel alias (its flush when the colours differ,
/// dropped).
#[derive(Clone, Copy, Debug, Default)]
pub struct R4kHugeCowCopyNoFlush(MipsR4k);

impl Arch for R4kHugeCowCopyNoFlush {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.0
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-the-destination-flush-of-copy_user_highpage-in-huge-cow"
    }
    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) {
        if cx.action() != "huge-cow" {
            return self.base().copy_user_highpage(cx, to, from, vpn, mm).await;
        }
        let page = cx.page_size();
        let (kto, ht) = kmap::kmap_atomic(cx, to).await;
        if cx.dcache_aliases()
            && !cx.user_mappings(from, None).is_empty()
            && !kernel_alias_maybe_dirty(cx, from)
        {
            let kfrom = kmap::kmap_coherent(cx, from, vpn * page);
            generic::copy_page(cx, kto, kfrom);
            kmap::kunmap_coherent(cx, kfrom);
        } else {
            let (kfrom, hf) = kmap::kmap_atomic(cx, from).await;
            generic::copy_page(cx, kto, kfrom);
            kmap::kunmap_atomic(cx, kfrom, hf).await;
        }
        kmap::kunmap_atomic(cx, kto, ht).await;
    }
}

/// Every dropped flush.
pub fn all() -> Vec<Dropped> {
    const VIVT: &str = "gup-anon-alias-fixed";
    const R4K: &str = "fork-cow-alias-fixed";
    vec![
        dropped(
            "gup",
            "flush_anon_page",
            VIVT,
            VivtNoFlushAnonPage::default(),
            ArmVivt,
        ),
        dropped(
            "migrate",
            "flush_cache_page",
            VIVT,
            VivtMigrateNoFlushCachePage::default(),
            ArmVivt,
        ),
        dropped(
            "ksm-merge",
            "flush_cache_page",
            VIVT,
            VivtKsmNoFlushCachePage::default(),
            ArmVivt,
        ),
        dropped(
            "swap-out",
            "flush_cache_page",
            VIVT,
            VivtSwapOutNoFlushCachePage::default(),
            ArmVivt,
        ),
        dropped(
            "readahead",
            "flush_dcache_folio",
            R4K,
            R4kReadaheadNoFlushDcacheFolio::default(),
            MipsR4k,
        ),
        dropped(
            "fault-around",
            "set_ptes-update_cache",
            R4K,
            R4kFaultAroundNoUpdateCache::default(),
            MipsR4k,
        ),
        dropped(
            "thp-fault",
            "clear_user_page-flush",
            R4K,
            R4kThpClearNoFlush::default(),
            MipsR4k,
        ),
        dropped(
            "huge-cow",
            "copy_user_highpage-flush",
            R4K,
            R4kHugeCowCopyNoFlush::default(),
            MipsR4k,
        ),
    ]
}

/// The fuzz target's models.
pub fn target() -> Target {
    Target::new(all().into_iter().map(|d| d.model).collect())
}
