//! A maintainer's own code under flushfuzz's campaigns, with flushfuzz's public API alone:
//!
//! - [`PatchedV6`]: the shipped ARMv6 implementation with one method changed, a
//!   `flush_dcache_page` that writes back the kernel alias only;
//! - [`status_update`]: a kernel path of the crate's own, a driver updating a status byte of a
//!   page-cache page that user space maps (a sysfs binary attribute or a driver's mmapped
//!   status file), through `kmap`, then `flush_dcache_page`;
//! - `machine.toml`: the board, a machine file;
//! - [`target`]: the fuzz target's models, which `fuzz_targets/patched.rs` turns into a
//!   libFuzzer target in one line.
//!
//! ```sh
//! flushfuzz hunt --target core/examples/own_target:patched --seconds 60
//! cargo fuzz run --fuzz-dir core/examples/own_target patched --sanitizer none
//! ```

use flushfuzz::addr::Pfn;
use flushfuzz::arch::{generic, set_kernel_alias_clean, v6::ArmV6, Arch};
use flushfuzz::harness::Target;
use flushfuzz::kernel::{self, file, kmap};
use flushfuzz::machine::CacheOp;
use flushfuzz::model::{DynModel, Model};
use flushfuzz::paths::{Field, Path, PathInfo, Paths, Runs};
use flushfuzz::preset::{self, Preset};
use flushfuzz::world::{Cx, StoreKind};
use std::rc::Rc;

/// ARMv6 with a patched `flush_dcache_page`.
#[derive(Clone, Copy, Debug, Default)]
pub struct PatchedV6(ArmV6);

impl Arch for PatchedV6 {
    type Base = ArmV6;
    fn base(&self) -> &ArmV6 {
        &self.0
    }
    fn name(&self) -> &'static str {
        "patched-v6"
    }
    /// The patch: the kernel alias is written back, the user colours are left alone.
    async fn flush_dcache_page<O: Arch>(&self, cx: &Cx<O>, pfn: Pfn) {
        generic::kernel_alias_op(cx, pfn, CacheOp::Flush).await;
        set_kernel_alias_clean(cx, pfn, true);
    }
}

/// The fields of [`status_update`].
const STATUS: &[Field] = &[Field::num("file"), Field::num("index"), Field::num("off")];

/// A driver updates one byte of a file page that user space may map: it finds the page-cache
/// page (reading it in if needed), stores through `kmap`, and calls `flush_dcache_page`, as a
/// kernel writer of a user-visible page must.
pub fn status_update<A: Arch>() -> Path<A> {
    Path::new(
        PathInfo {
            name: "status-update",
            fields: STATUS,
            runs: Runs::Kernel,
            follows: "sysfs_kf_bin_mmap",
            calls: &["kmap", "kunmap", "flush_dcache_page"],
            doc: "a driver stores a status byte into a user-mapped page-cache page",
        },
        |cx: Cx<A>, a| async move {
            let Some(pfn) = file::find_or_read_page(&cx, a.num(0), a.num(1)).await else {
                return;
            };
            let va = kmap::kmap(&cx, pfn).await;
            let v = cx.fresh();
            cx.kstore_run(
                va + a.num(2) as u64 % cx.page_size(),
                &[v],
                false,
                StoreKind::Kernel,
            );
            kmap::kunmap(&cx, pfn).await;
            cx.step().await;
            cx.arch().flush_dcache_page(&cx, pfn).await;
            kernel::put_page(&cx, pfn);
        },
    )
}

/// The shipped kernel paths and [`status_update`].
pub fn paths<A: Arch>() -> Paths<A> {
    let mut p = Paths::shipped();
    p.add(status_update());
    p
}

/// The board, from `machine.toml`.
pub fn board() -> Preset {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("machine.toml");
    preset::load_machine(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The patched arch on the board, with the unpatched one as its twin: a race the unpatched
/// arch does not have is the patch's.
pub fn model() -> Model<PatchedV6> {
    let unpatched = Model::new(board(), ArmV6).with_paths(paths());
    Model::new(board(), PatchedV6::default())
        .with_paths(paths())
        .with_twin(Rc::new(unpatched) as Rc<dyn DynModel>)
}

/// The fuzz target's models.
pub fn target() -> Target {
    Target::of(model())
}
