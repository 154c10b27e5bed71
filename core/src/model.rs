//! Models: what a run is a pure function of, besides its ops.
//!
//! A [`Model`] is a preset (the machine, the historical switches, the initial world), an
//! [`Arch`] implementation and a registry of kernel [`Paths`]. Everything that runs inputs
//! (replay, minimization, triage, explanations, campaigns) takes a model as a [`DynModel`], the
//! arch-erased view, so that a user's own arch, paths and machine go everywhere the shipped
//! ones go. [`shipped`] builds the model of a shipped preset; [`Models`] resolves the preset
//! named in a trace file to a model (the shipped presets, or a user's).
//!
//! This module knows nothing of files or command lines.

use crate::arch::{
    arm64::Arm64, null::Null, parisc::Parisc, r4k::MipsR4k, riscv::Riscv, sh4::Sh4, v6::ArmV6,
    v7::ArmV7, vivt::ArmVivt, Arch,
};
use crate::op::Op;
use crate::paths::{Catalog, Paths};
use crate::preset::{self, Preset};
use crate::run::{Report, RunOptions, Runner};
use crate::verify;
use std::rc::Rc;
use std::sync::Arc;

/// A preset, an arch implementation and kernel paths.
#[derive(Debug)]
pub struct Model<A> {
    preset: Preset,
    arch: A,
    /// `arch`'s lineage ([`crate::arch::lineage`]), which every run's violations carry.
    lineage: [&'static str; crate::arch::LINEAGE],
    paths: Rc<Paths<A>>,
    twin: Option<Rc<dyn DynModel>>,
}

impl<A: Clone> Clone for Model<A> {
    fn clone(&self) -> Self {
        Model {
            preset: self.preset.clone(),
            arch: self.arch.clone(),
            lineage: self.lineage,
            paths: self.paths.clone(),
            twin: self.twin.clone(),
        }
    }
}

impl<A: Arch + Clone> Model<A> {
    /// `preset`'s machine and world with `arch` and the shipped kernel paths.
    pub fn new(preset: Preset, arch: A) -> Model<A> {
        Model {
            preset,
            lineage: crate::arch::lineage(&arch),
            arch,
            paths: Rc::new(Paths::shipped()),
            twin: None,
        }
    }

    /// The model whose twin is `twin`: what a race found on this one is checked against to be
    /// called historical (a fix, the unpatched arch). By default a preset with historical
    /// switches on has the same model with them off as its twin ([`DynModel::twin`]).
    pub fn with_twin(mut self, twin: Rc<dyn DynModel>) -> Model<A> {
        self.twin = Some(twin);
        self
    }

    /// The model with these kernel paths instead.
    pub fn with_paths(mut self, paths: Paths<A>) -> Model<A> {
        self.paths = Rc::new(paths);
        self
    }

    /// The model on another preset (a machine file, a `-fixed` twin), with the same arch and
    /// paths, and no twin of its own.
    pub fn on(&self, preset: Preset) -> Model<A> {
        Model {
            preset,
            twin: None,
            ..self.clone()
        }
    }

    /// The arch implementation.
    pub fn arch(&self) -> &A {
        &self.arch
    }

    /// The names of the arch implementation and of those it builds on.
    pub fn lineage(&self) -> [&'static str; crate::arch::LINEAGE] {
        self.lineage
    }

    /// The kernel paths.
    pub fn paths(&self) -> &Paths<A> {
        &self.paths
    }

    /// Runs `ops`.
    pub fn run(&self, ops: &[Op], opts: RunOptions) -> Report {
        let mut r = Runner::new(self, opts);
        for op in ops {
            r.apply(op);
            if r.stopped() {
                break;
            }
        }
        if !r.stopped() {
            r.finish();
        }
        r.report()
    }
}

impl<A> Model<A> {
    /// The preset.
    pub fn preset(&self) -> &Preset {
        &self.preset
    }
}

/// A model whose arch is erased: what replay, minimization, triage and campaigns take.
pub trait DynModel {
    /// The preset.
    fn preset(&self) -> &Preset;
    /// The kernel paths' names and fields.
    fn catalog(&self) -> &Arc<Catalog>;
    /// The arch implementation's name.
    fn arch_name(&self) -> &'static str;
    /// Runs `ops`.
    fn run(&self, ops: &[Op], opts: RunOptions) -> Report;
    /// The same arch and paths on another preset.
    fn on_preset(&self, preset: Preset) -> Rc<dyn DynModel>;
    /// The model a race found on this one is checked against: the one given
    /// ([`Model::with_twin`]), else, when the preset has historical switches on, the same model
    /// with them off (a shipped preset's `-fixed` twin), else none.
    fn twin(&self) -> Option<Rc<dyn DynModel>>;
    /// The actions `ops` start, without their schedule ([`verify::Program::of`]).
    fn program(&self, ops: &[Op]) -> verify::Program;
    /// Every schedule of `program` within `opts` ([`verify::verify`]).
    fn verify(
        &self,
        program: &verify::Program,
        opts: &verify::Options,
        progress: &mut dyn FnMut(&verify::Stats),
    ) -> verify::Outcome;
}

impl<A: Arch + Clone> DynModel for Model<A> {
    fn preset(&self) -> &Preset {
        &self.preset
    }

    fn catalog(&self) -> &Arc<Catalog> {
        self.paths.catalog()
    }

    fn arch_name(&self) -> &'static str {
        self.arch.name()
    }

    fn run(&self, ops: &[Op], opts: RunOptions) -> Report {
        Model::run(self, ops, opts)
    }

    fn on_preset(&self, preset: Preset) -> Rc<dyn DynModel> {
        Rc::new(self.on(preset))
    }

    fn program(&self, ops: &[Op]) -> verify::Program {
        verify::program_of(self, ops)
    }

    fn verify(
        &self,
        program: &verify::Program,
        opts: &verify::Options,
        progress: &mut dyn FnMut(&verify::Stats),
    ) -> verify::Outcome {
        verify::verify(self, program, opts, progress)
    }

    fn twin(&self) -> Option<Rc<dyn DynModel>> {
        if let Some(t) = &self.twin {
            return Some(t.clone());
        }
        if self.preset.switches == preset::Switches::default() {
            return None;
        }
        let name = format!("{}-fixed", self.preset.name);
        let p = preset::by_name(&name)
            .filter(|p| p.machine == self.preset.machine && p.arch == self.preset.arch)
            .unwrap_or_else(|| Preset {
                name,
                description: format!("the {} machine with mainline behaviour", self.preset.name),
                switches: preset::Switches::default(),
                ..self.preset.clone()
            });
        Some(self.on_preset(p))
    }
}

impl std::fmt::Debug for dyn DynModel + '_ {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DynModel")
            .field("preset", &self.preset().name)
            .field("arch", &self.arch_name())
            .finish()
    }
}

/// The names of the shipped arch implementations, as presets and machine files name them.
pub const SHIPPED_ARCHES: [&str; 9] = [
    "null", "arm-vivt", "arm-v6", "arm-v7", "mips-r4k", "parisc", "arm64", "riscv", "sh4",
];

/// The model of `preset` with the shipped arch it names and the shipped paths, or `None` if it
/// names no shipped arch.
pub fn shipped(preset: &Preset) -> Option<Box<dyn DynModel>> {
    let p = preset.clone();
    Some(match preset.arch.as_str() {
        "null" => Box::new(Model::new(p, Null)),
        "arm-vivt" => Box::new(Model::new(p, ArmVivt)),
        "arm-v6" => Box::new(Model::new(p, ArmV6)),
        "arm-v7" => Box::new(Model::new(p, ArmV7)),
        "mips-r4k" => Box::new(Model::new(p, MipsR4k)),
        "parisc" => Box::new(Model::new(p, Parisc)),
        "arm64" => Box::new(Model::new(p, Arm64)),
        "riscv" => Box::new(Model::new(p, Riscv)),
        "sh4" => Box::new(Model::new(p, Sh4)),
        _ => return None,
    })
}

thread_local! {
    /// Shipped models built on this thread, by preset: building one registers every path.
    static SHIPPED: std::cell::RefCell<Vec<Rc<dyn DynModel>>> = const { std::cell::RefCell::new(Vec::new()) };
}

/// The shipped model of `preset`, built once per thread.
///
/// # Panics
/// If the preset names no shipped arch.
pub fn shipped_cached(preset: &Preset) -> Rc<dyn DynModel> {
    SHIPPED.with_borrow_mut(|v| {
        if let Some(m) = v.iter().find(|m| m.preset() == preset) {
            return m.clone();
        }
        let m: Rc<dyn DynModel> = shipped(preset)
            .unwrap_or_else(|| {
                panic!(
                    "preset {} names arch `{}`, which is not shipped (known: {})",
                    preset.name,
                    preset.arch,
                    SHIPPED_ARCHES.join(", ")
                )
            })
            .into();
        v.push(m.clone());
        m
    })
}

/// Resolves the preset a trace file names to a model, and the model raw fuzzer bytes run on.
pub trait Models {
    /// The model of the preset called `name`.
    fn model(&self, name: &str) -> Option<Rc<dyn DynModel>>;
    /// The names it knows, for error messages.
    fn names(&self) -> Vec<String>;
    /// The model raw fuzzer bytes whose first byte is `index` run on, as the fuzz target that
    /// wrote them chose it.
    fn raw(&self, index: u8) -> Option<Rc<dyn DynModel>>;
}

/// The shipped presets.
#[derive(Clone, Copy, Debug, Default)]
pub struct Shipped;

impl Models for Shipped {
    fn model(&self, name: &str) -> Option<Rc<dyn DynModel>> {
        preset::by_name(name).map(|p| shipped_cached(&p))
    }

    fn names(&self) -> Vec<String> {
        preset::names()
    }

    fn raw(&self, index: u8) -> Option<Rc<dyn DynModel>> {
        let races = crate::harness::RACE_PRESETS;
        self.model(races[index as usize % races.len()])
    }
}

/// A user's models, then (unless `only` says not to) the shipped presets.
#[derive(Debug, Default)]
pub struct ModelSet {
    models: Vec<Rc<dyn DynModel>>,
    only: bool,
}

impl ModelSet {
    /// The shipped presets and nothing else yet.
    pub fn new() -> ModelSet {
        ModelSet::default()
    }

    /// Adds a model; it hides a shipped preset of the same name.
    pub fn with(mut self, m: impl DynModel + 'static) -> ModelSet {
        self.models.push(Rc::new(m));
        self
    }

    /// Adds a model already shared.
    pub fn with_rc(mut self, m: Rc<dyn DynModel>) -> ModelSet {
        self.models.push(m);
        self
    }

    /// Resolves only the models added, not the shipped presets.
    pub fn only(mut self) -> ModelSet {
        self.only = true;
        self
    }
}

impl Models for ModelSet {
    fn model(&self, name: &str) -> Option<Rc<dyn DynModel>> {
        self.models
            .iter()
            .find(|m| m.preset().name == name)
            .cloned()
            .or_else(|| (!self.only).then(|| Shipped.model(name)).flatten())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .models
            .iter()
            .map(|m| m.preset().name.clone())
            .collect();
        if !self.only {
            let more: Vec<String> = Shipped
                .names()
                .into_iter()
                .filter(|n| !v.contains(n))
                .collect();
            v.extend(more);
        }
        v
    }

    fn raw(&self, index: u8) -> Option<Rc<dyn DynModel>> {
        if self.models.is_empty() {
            return (!self.only).then(|| Shipped.raw(index)).flatten();
        }
        Some(self.models[index as usize % self.models.len()].clone())
    }
}

impl<A: Arch + Clone> Models for Model<A> {
    fn model(&self, name: &str) -> Option<Rc<dyn DynModel>> {
        (self.preset.name == name).then(|| Rc::new(self.clone()) as Rc<dyn DynModel>)
    }

    fn names(&self) -> Vec<String> {
        vec![self.preset.name.clone()]
    }

    fn raw(&self, _index: u8) -> Option<Rc<dyn DynModel>> {
        Some(Rc::new(self.clone()))
    }
}
