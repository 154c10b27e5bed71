//! Test arches, each a shipped arch with one flush dropped that one kernel path relies on, on
//! the machine where that path needs it. Each is a model whose preset is named
//! `<path>--<dropped flush>` and whose twin is the shipped arch on the same machine: a
//! coverage-guided campaign on it must find a race the twin does not have, and its minimized
//! trace must start that path (flushfuzz's integration test `dropped`). A test arch drops the
//! flush only while the actor is in that path ([`Cx::path`]) when the same flush serves other
//! paths too, so that the race found is the path's.

use flushfuzz::addr::{MmId, Pa, Pfn, Stamp, Va, Vpn};
use flushfuzz::arch::arm64::{self, Arm64};
use flushfuzz::arch::r4k::MipsR4k;
use flushfuzz::arch::{
    generic, kernel_alias_maybe_dirty, v6::ArmV6, v7::ArmV7, vivt::ArmVivt, Arch,
};
use flushfuzz::harness::Target;
use flushfuzz::kernel::kmap;
use flushfuzz::machine::{Pte, Speculation};
use flushfuzz::model::{DynModel, Model};
use flushfuzz::op::DmaDir;
use flushfuzz::preset::{self, Preset};
use flushfuzz::world::Cx;
use flushfuzz::world::StoreKind;
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
    // `<preset>+speculation`: the preset's machine, speculating D- and I-side fills through any
    // valid translation, as a page-table walker may.
    let (name, speculates) = match machine.strip_suffix("+speculation") {
        Some(n) => (n, true),
        None => (machine, false),
    };
    let mut base = preset::by_name(name).unwrap_or_else(|| panic!("no preset {name}"));
    if speculates {
        base.machine.speculation = Speculation::Both;
        base.machine.hw_walker = true;
    }
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

/// ARMv6 without `flush_kernel_vmap_range` (what block I/O on a vmapped buffer relies on
/// before the device reads it).
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoFlushKernelVmapRange(ArmV6);

impl Arch for V6NoFlushKernelVmapRange {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-flush_kernel_vmap_range"
    }
    async fn flush_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.action() != "xfs-buf-io" {
            self.base().flush_kernel_vmap_range(cx, va, len).await;
        }
    }
}

/// ARMv6 without `invalidate_kernel_vmap_range` (what a read into a vmapped buffer relies on
/// when lines of its vmalloc alias were fetched, speculatively, during the I/O).
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoInvalidateKernelVmapRange(ArmV6);

impl Arch for V6NoInvalidateKernelVmapRange {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-invalidate_kernel_vmap_range"
    }
    async fn invalidate_kernel_vmap_range<O: Arch>(&self, cx: &Cx<O>, va: Va, len: u64) {
        if cx.action() != "xfs-buf-io" {
            self.base().invalidate_kernel_vmap_range(cx, va, len).await;
        }
    }
}

/// ARMv6 whose `vmalloc_user` does not align the kernel address to `SHMLBA`: a ring buffer
/// relies on no flush, but on that colouring to share its lines with the user's mapping.
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoShmlbaAlignment(ArmV6);

impl Arch for V6NoShmlbaAlignment {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-shmlba-alignment"
    }
    fn shmlba_pages<O: Arch>(&self, cx: &Cx<O>) -> u64 {
        if cx.action() == "ring-mmap" {
            1
        } else {
            self.base().shmlba_pages(cx)
        }
    }
}

/// ARMv6 without `flush_icache_range` in one path (module loading, the BPF JIT).
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoFlushIcacheRange<const JIT: bool>(ArmV6);

impl<const JIT: bool> Arch for V6NoFlushIcacheRange<JIT> {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        if JIT {
            "arm-v6-without-flush_icache_range-in-the-jit"
        } else {
            "arm-v6-without-flush_icache_range-in-module-load"
        }
    }
    async fn flush_icache_range<O: Arch>(&self, cx: &Cx<O>, start: Va, end: Va) {
        let path = if JIT { "bpf-jit" } else { "module-load" };
        if cx.action() != path {
            self.base().flush_icache_range(cx, start, end).await;
        }
    }
}

/// ARMv6 whose `arch_uprobe_copy_ixol` copies the slot but skips `flush_uprobe_xol_access`.
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoFlushUprobeXolAccess(ArmV6);

impl Arch for V6NoFlushUprobeXolAccess {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-flush_uprobe_xol_access"
    }
    async fn uprobe_copy_ixol<O: Arch>(
        &self,
        cx: &Cx<O>,
        pfn: Pfn,
        _vpn: Vpn,
        off: u64,
        values: &[Stamp],
    ) {
        let (k, how) = kmap::kmap_atomic(cx, pfn).await;
        cx.kstore_run(k + off, values, false, StoreKind::Kernel);
        kmap::kunmap_atomic(cx, k, how).await;
    }
}

/// ARMv6 without `flush_dcache_page` in one path (`execve`: what `copy_strings` relies on once
/// it has written the new stack page through kmap; `splice-read`: what `filemap_splice_read`
/// relies on for a file mapped shared; `splice-write`: what the page-cache write relies on).
#[derive(Clone, Copy, Debug)]
pub struct V6NoFlushDcachePageIn {
    arch: ArmV6,
    path: &'static str,
}

impl V6NoFlushDcachePageIn {
    /// ARMv6 without `flush_dcache_page` in `path`.
    pub fn new(path: &'static str) -> Self {
        V6NoFlushDcachePageIn { arch: ArmV6, path }
    }
}

impl Arch for V6NoFlushDcachePageIn {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.arch
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-flush_dcache_page-in-one-path"
    }
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        if cx.action() != self.path {
            self.base().flush_dcache_page(cx, pfn).await;
        }
    }
}

/// ARM VIVT without `flush_dcache_folio` (nor `flush_dcache_page`) in one path
/// (`aio-complete`: what `aio_complete` relies on for the event and the tail it writes through
/// the linear map to reach the process's mapping of the ring).
#[derive(Clone, Copy, Debug)]
pub struct VivtNoFlushDcacheFolioIn {
    arch: ArmVivt,
    path: &'static str,
}

impl VivtNoFlushDcacheFolioIn {
    /// ARM VIVT without `flush_dcache_folio` in `path`.
    pub fn new(path: &'static str) -> Self {
        VivtNoFlushDcacheFolioIn {
            arch: ArmVivt,
            path,
        }
    }
}

impl Arch for VivtNoFlushDcacheFolioIn {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.arch
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_dcache_folio-in-one-path"
    }
    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        if cx.action() != self.path {
            self.base().flush_dcache_folio(cx, pfn, nr).await;
        }
    }
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        if cx.action() != self.path {
            self.base().flush_dcache_page(cx, pfn).await;
        }
    }
}

/// ARMv6 without `flush_anon_page` in one path (`ptrace-peek`, `process-vm`, `vmsplice`: what GUP's callers
/// rely on to write the user's lines back before the kernel reads the page through kmap).
#[derive(Clone, Copy, Debug)]
pub struct V6NoFlushAnonPageIn {
    arch: ArmV6,
    path: &'static str,
}

impl V6NoFlushAnonPageIn {
    /// ARMv6 without `flush_anon_page` in `path`.
    pub fn new(path: &'static str) -> Self {
        V6NoFlushAnonPageIn { arch: ArmV6, path }
    }
}

impl Arch for V6NoFlushAnonPageIn {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.arch
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-flush_anon_page-in-one-path"
    }
    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        if cx.action() != self.path {
            self.base().flush_anon_page(cx, mm, pfn, vpn).await;
        }
    }
}

/// ARMv6 (aliasing VIPT) whose `flush_cache_range` does nothing when `mprotect` makes a range
/// executable (what mainline's promise to code stored before `mprotect(PROT_EXEC)` rests on).
#[derive(Clone, Copy, Debug, Default)]
pub struct V6NoFlushCacheRange(ArmV6);

impl Arch for V6NoFlushCacheRange {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v6-without-flush_cache_range"
    }
    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) {
        if cx.action() != "mprotect" {
            self.base()
                .flush_cache_range(cx, mm, start, end, exec)
                .await;
        }
    }
}

/// MIPS R4K without `flush_dcache_folio` and `flush_dcache_page` in `UFFDIO_COPY` (what
/// `mfill_atomic_pte_copy` relies on to write the copy back from the kernel alias before the
/// page is mapped at the user's colour).
#[derive(Clone, Copy, Debug, Default)]
pub struct R4kUffdCopyNoFlushDcache(MipsR4k);

impl Arch for R4kUffdCopyNoFlushDcache {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.0
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-flush_dcache-in-uffd-copy"
    }
    async fn flush_dcache_folio<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn, nr: u64) {
        if cx.action() != "uffd-copy" {
            self.base().flush_dcache_folio(cx, pfn, nr).await;
        }
    }
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        if cx.action() != "uffd-copy" {
            self.base().flush_dcache_page(cx, pfn).await;
        }
    }
}

/// ARM VIVT without `flush_cache_range` in `mremap` (what `move_page_tables` and the unmap of
/// the old range rely on to write back the lines of the old user address before the page is
/// reached at the new one).
#[derive(Clone, Copy, Debug, Default)]
pub struct VivtMremapNoFlushCacheRange(ArmVivt);

impl Arch for VivtMremapNoFlushCacheRange {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_cache_range-in-mremap"
    }
    async fn flush_cache_range<O: Arch>(
        &self,
        cx: &Cx<O>,
        mm: MmId,
        start: Vpn,
        end: Vpn,
        exec: bool,
    ) {
        if cx.action() != "mremap" {
            self.base()
                .flush_cache_range(cx, mm, start, end, exec)
                .await;
        }
    }
}

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

/// MIPS R4K whose `copy_user_highpage` in one path (`huge-cow`: the per-subpage copy of a huge
/// page's copy-on-write; `ksm-unmerge`: breaking a KSM page) leaves out the flush of the
/// destination's kernel address that the copy makes when it aliases the user's (what a copy
/// relies on for the process to read it through its own colour).
#[derive(Clone, Copy, Debug)]
pub struct R4kCowCopyNoFlushIn {
    arch: MipsR4k,
    path: &'static str,
}

impl R4kCowCopyNoFlushIn {
    /// MIPS R4K whose `copy_user_highpage` in `path` leaves out the destination's flush.
    pub fn new(path: &'static str) -> Self {
        R4kCowCopyNoFlushIn {
            arch: MipsR4k,
            path,
        }
    }
}

impl Arch for R4kCowCopyNoFlushIn {
    type Base = MipsR4k;
    fn base(&self) -> &MipsR4k {
        &self.arch
    }
    fn name(&self) -> &'static str {
        "mips-r4k-without-the-destination-flush-of-copy_user_highpage-in-one-path"
    }
    async fn copy_user_highpage<O: Arch>(
        &self,
        cx: &Cx<O>,
        to: Pfn,
        from: Pfn,
        vpn: Vpn,
        mm: MmId,
    ) {
        if cx.action() != self.path {
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
            "gup-anon-alias-fixed",
            VivtNoFlushAnonPage::default(),
            ArmVivt,
        ),
        dropped(
            "xfs-buf-io",
            "flush_kernel_vmap_range",
            "nfs-vmap-alias-fixed",
            V6NoFlushKernelVmapRange::default(),
            ArmV6,
        ),
        dropped(
            "xfs-buf-io",
            "invalidate_kernel_vmap_range",
            "nfs-vmap-alias-fixed+speculation",
            V6NoInvalidateKernelVmapRange::default(),
            ArmV6,
        ),
        dropped(
            "ring-mmap",
            "shmlba-alignment",
            "nfs-vmap-alias-fixed",
            V6NoShmlbaAlignment::default(),
            ArmV6,
        ),
        dropped(
            "module-load",
            "flush_icache_range",
            "exec-icache-smp-fixed",
            V6NoFlushIcacheRange::<false>::default(),
            ArmV6,
        ),
        dropped(
            "bpf-jit",
            "flush_icache_range",
            "exec-icache-smp-fixed",
            V6NoFlushIcacheRange::<true>::default(),
            ArmV6,
        ),
        dropped(
            "uprobe-hit",
            "flush_uprobe_xol_access",
            "exec-icache-smp-fixed",
            V6NoFlushUprobeXolAccess::default(),
            ArmV6,
        ),
        dropped(
            "execve",
            "flush_dcache_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushDcachePageIn::new("execve"),
            ArmV6,
        ),
        dropped(
            "mprotect",
            "flush_cache_range",
            "nfs-vmap-alias-fixed",
            V6NoFlushCacheRange::default(),
            ArmV6,
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
            R4kCowCopyNoFlushIn::new("huge-cow"),
            MipsR4k,
        ),
        dropped(
            "mremap",
            "flush_cache_range",
            VIVT,
            VivtMremapNoFlushCacheRange::default(),
            ArmVivt,
        ),
        dropped(
            "uffd-copy",
            "flush_dcache_folio",
            R4K,
            R4kUffdCopyNoFlushDcache::default(),
            MipsR4k,
        ),
        dropped(
            "ptrace-peek",
            "flush_anon_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushAnonPageIn::new("ptrace-peek"),
            ArmV6,
        ),
        dropped(
            "process-vm",
            "flush_anon_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushAnonPageIn::new("process-vm"),
            ArmV6,
        ),
        dropped(
            "splice-read",
            "flush_dcache_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushDcachePageIn::new("splice-read"),
            ArmV6,
        ),
        dropped(
            "splice-write",
            "flush_dcache_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushDcachePageIn::new("splice-write"),
            ArmV6,
        ),
        dropped(
            "aio-complete",
            "flush_dcache_folio",
            VIVT,
            VivtNoFlushDcacheFolioIn::new("aio-complete"),
            ArmVivt,
        ),
        dropped(
            "vmsplice",
            "flush_anon_page",
            "nfs-vmap-alias-fixed",
            V6NoFlushAnonPageIn::new("vmsplice"),
            ArmV6,
        ),
        dropped(
            "ptrace-poke",
            "flush_ptrace_access",
            "arm64",
            Arm64NoFlushPtraceAccess::default(),
            Arm64,
        ),
        dropped(
            "fetch",
            "__sync_icache_dcache",
            "arm64",
            Arm64FetchNoSyncIcacheDcache::default(),
            Arm64,
        ),
        dropped(
            "dma",
            "v7_dma_unmap_area",
            "armv7",
            V7DmaWithoutUnmapArea::default(),
            ArmV7,
        ),
    ]
}

/// ARMv7 whose `dma_unmap_page` in a driver's DMA (`dma`) leaves out `v7_dma_unmap_area`: lines
/// the cores filled speculatively while the device wrote the buffer survive the transfer.
#[derive(Clone, Copy, Debug, Default)]
pub struct V7DmaWithoutUnmapArea(ArmV7);

impl Arch for V7DmaWithoutUnmapArea {
    type Base = ArmV7;
    fn base(&self) -> &ArmV7 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-v7-without-v7_dma_unmap_area-in-dma"
    }
    async fn sync_dma_for_cpu<O: Arch>(&self, cx: &Cx<O>, pa: Pa, len: u64, dir: DmaDir) {
        if cx.action() != "dma" {
            self.base().sync_dma_for_cpu(cx, pa, len, dir).await;
        }
    }
}

/// arm64 whose `copy_to_user_page` leaves out `flush_ptrace_access`: a ptrace write into
/// executable text is not made visible to the I-side.
#[derive(Clone, Copy, Debug, Default)]
pub struct Arm64NoFlushPtraceAccess(Arm64);

impl Arch for Arm64NoFlushPtraceAccess {
    type Base = Arm64;
    fn base(&self) -> &Arm64 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm64-without-flush_ptrace_access"
    }
    async fn copy_to_user_page<O: Arch>(
        &self,
        cx: &Cx<O>,
        _mm: MmId,
        pfn: Pfn,
        vpn: Vpn,
        off: u64,
    ) {
        generic::copy_to_user_page(cx, pfn, vpn, off).await;
    }
}

/// arm64 whose `set_pte_at` publishes an executable entry without `__sync_icache_dcache` on a
/// fetch fault (the same call serves every other path that maps a page).
#[derive(Clone, Copy, Debug, Default)]
pub struct Arm64FetchNoSyncIcacheDcache(Arm64);

impl Arch for Arm64FetchNoSyncIcacheDcache {
    type Base = Arm64;
    fn base(&self) -> &Arm64 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm64-without-__sync_icache_dcache"
    }
    async fn set_pte_at<O: Arch>(&self, cx: &Cx<O>, mm: MmId, vpn: Vpn, pte: Pte) {
        if cx.action() != "fetch" {
            arm64::sync_icache_dcache(cx, pte);
        }
        cx.write_pte(Some(mm), vpn, pte);
    }
}

/// The fuzz target's models.
pub fn target() -> Target {
    Target::new(all().into_iter().map(|d| d.model).collect())
}
