//! Test arches, each a shipped arch with one flush dropped that one kernel path relies on, on
//! the machine where that path needs it. Each is a model whose preset is named
//! `<path>--<dropped flush>` and whose twin is the shipped arch on the same machine: a
//! coverage-guided campaign on it must find a race the twin does not have, and its minimized
//! trace must start that path (flushfuzz's integration test `dropped`). A test arch drops the
//! flush only while the actor is in that path ([`Cx::path`]) when the same flush serves other
//! paths too, so that the race found is the path's.

use flushfuzz::addr::{MmId, Pfn, Vpn};
use flushfuzz::arch::{vivt::ArmVivt, Arch};
use flushfuzz::harness::Target;
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

/// Every dropped flush.
pub fn all() -> Vec<Dropped> {
    vec![dropped(
        "gup",
        "flush_anon_page",
        "gup-anon-alias-fixed",
        VivtNoFlushAnonPage::default(),
        ArmVivt,
    )]
}

/// The fuzz target's models.
pub fn target() -> Target {
    Target::new(all().into_iter().map(|d| d.model).collect())
}
