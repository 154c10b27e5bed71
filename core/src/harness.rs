//! The one harness every front end calls: decoding fuzzer bytes into a model and ops, loading
//! input files (trace text or raw libFuzzer bytes), and the fuzz target ([`Target`]) that turns a
//! violation into a panic so libFuzzer records the input, for the shipped models or a user's.

use crate::model::{DynModel, Models, Shipped};
use crate::op::Op;
use crate::preset::{self, Preset};
use crate::run::{Report, RunOptions};
use crate::trace::{Trace, TraceError};
use arbitrary::Arbitrary;
use std::cell::RefCell;
use std::rc::Rc;

/// The presets a fuzz input may choose among when no preset is fixed: the five races.
pub const RACE_PRESETS: [&str; 5] = [
    "nfs-vmap-alias",
    "gup-anon-alias",
    "exec-icache-smp",
    "kmap-recycle-dma",
    "fork-cow-alias",
];

/// The environment variable that fixes the preset of fuzz inputs (set by `flushfuzz hunt`).
pub const PRESET_ENV: &str = "FLUSHFUZZ_PRESET";

/// The environment variable naming a machine file that fixes the preset of fuzz inputs (set by
/// `flushfuzz hunt --machine`): a shipped target runs the shipped arch the file names, a
/// user's target its own arch and paths on that machine.
pub const MACHINE_ENV: &str = "FLUSHFUZZ_MACHINE";

/// The environment variable that, set to `1`, makes the fuzz target pass over violations of
/// families mainline behaviour has too ([`crate::triage::in_mainline`]), so that a campaign on a
/// `-fixed` twin looks beyond them (set by `flushfuzz hunt --skip-mainline`).
pub const SKIP_MAINLINE_ENV: &str = "FLUSHFUZZ_SKIP_MAINLINE";

/// The environment variable listing (comma-separated) mainline families the fuzz target does
/// not pass over under [`SKIP_MAINLINE_ENV`] (set by `flushfuzz hunt --keep-family`).
pub const KEEP_FAMILIES_ENV: &str = "FLUSHFUZZ_KEEP_FAMILIES";

/// A fuzz input: a model choice (ignored when the model is fixed) and the ops.
#[derive(Arbitrary, Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzInput {
    /// Index into the target's models, modulo their number.
    pub preset: u8,
    /// The ops.
    pub ops: Vec<Op>,
}

/// What a fuzz target runs: its models, one of which each input's first byte picks unless the
/// target fixes one ([`PRESET_ENV`]), how it mutates inputs, and whether it passes over the
/// mainline families. The shipped `races` target is [`Target::shipped`]; a user's target is
/// [`Target::new`] over their own models (see [`crate::fuzz_target!`]).
#[derive(Debug)]
pub struct Target {
    models: Vec<Rc<dyn DynModel>>,
    fixed: Option<Rc<dyn DynModel>>,
    shipped: bool,
    skip_mainline: bool,
    keep_families: Vec<String>,
    mutator: Mutator,
    reach: RefCell<Reach>,
}

/// The environment variable naming a folder where a fuzz target keeps how many executions
/// started each kernel path (`reach-<pid>.json`, rewritten every [`REACH_EVERY`] executions
/// and before a crash; set by `flushfuzz hunt`).
pub const STATS_ENV: &str = "FLUSHFUZZ_STATS";

/// How often a target rewrites its reach file, in executions.
pub const REACH_EVERY: u64 = 1 << 16;

/// How many executions started each path, by catalog.
#[derive(Debug, Default)]
struct Reach {
    execs: u64,
    counts: Vec<(std::sync::Arc<crate::paths::Catalog>, Vec<u64>)>,
    file: Option<std::path::PathBuf>,
}

impl Reach {
    fn note(&mut self, catalog: &std::sync::Arc<crate::paths::Catalog>, started: u128) {
        self.execs += 1;
        let i = match self
            .counts
            .iter()
            .position(|(c, _)| std::sync::Arc::ptr_eq(c, catalog))
        {
            Some(i) => i,
            None => {
                self.counts.push((catalog.clone(), vec![0; catalog.len()]));
                self.counts.len() - 1
            }
        };
        let counts = &mut self.counts[i].1;
        let mut bits = started;
        while bits != 0 {
            let p = bits.trailing_zeros() as usize;
            counts[p] += 1;
            bits &= bits - 1;
        }
        if self.execs % REACH_EVERY == 0 {
            self.save();
        }
    }

    /// Executions by path name.
    fn by_name(&self) -> std::collections::BTreeMap<&'static str, u64> {
        let mut m = std::collections::BTreeMap::new();
        for (c, counts) in &self.counts {
            for (p, n) in c.paths().iter().zip(counts) {
                *m.entry(p.name).or_default() += n;
            }
        }
        m
    }

    fn save(&self) {
        let Some(f) = &self.file else { return };
        let v = serde_json::json!({ "execs": self.execs, "paths": self.by_name() });
        // A lost update only costs the counts since the last one.
        let tmp = f.with_extension("tmp");
        if std::fs::write(&tmp, v.to_string()).is_ok() {
            let _ = std::fs::rename(&tmp, f);
        }
    }
}

impl Target {
    /// A target over `models` (at least one), with the environment's settings: [`PRESET_ENV`]
    /// fixes one of them by its preset's name, [`MUTATOR_ENV`] and [`SKIP_MAINLINE_ENV`] as for
    /// the shipped target.
    ///
    /// # Panics
    /// If `models` is empty or the environment names a model or mutator that does not exist
    /// (a campaign must not run on something else than asked).
    pub fn new(models: Vec<Rc<dyn DynModel>>) -> Target {
        assert!(!models.is_empty(), "a fuzz target needs a model");
        Target {
            models,
            fixed: None,
            shipped: false,
            skip_mainline: false,
            keep_families: Vec::new(),
            mutator: Mutator::Ops,
            reach: RefCell::default(),
        }
        .with_env()
    }

    /// A target over one model.
    pub fn of(model: impl DynModel + 'static) -> Target {
        Target::new(vec![Rc::new(model)])
    }

    /// The shipped `races` target: the five race presets, or any shipped preset that
    /// [`PRESET_ENV`] names.
    pub fn shipped() -> Target {
        let models = RACE_PRESETS
            .iter()
            .map(|n| crate::model::shipped_cached(&preset::by_name(n).expect("race preset")))
            .collect();
        Target {
            models,
            fixed: None,
            shipped: true,
            skip_mainline: false,
            keep_families: Vec::new(),
            mutator: Mutator::Ops,
            reach: RefCell::default(),
        }
        .with_env()
    }

    fn with_env(mut self) -> Target {
        if let Ok(name) = std::env::var(PRESET_ENV) {
            let m = self.model(&name).unwrap_or_else(|| {
                panic!(
                    "{PRESET_ENV}={name}: unknown preset (known: {})",
                    self.names().join(", ")
                )
            });
            self.fixed = Some(m);
        }
        if let Ok(path) = std::env::var(MACHINE_ENV) {
            let p = preset::load_machine(std::path::Path::new(&path))
                .unwrap_or_else(|e| panic!("{MACHINE_ENV}: {e}"));
            // The machine runs with this target's own arch and paths when the target has one
            // model; a shipped target runs the shipped arch the file names.
            let m = if self.shipped {
                crate::model::shipped(&p).map(Rc::from).unwrap_or_else(|| {
                    panic!(
                        "{MACHINE_ENV}: {path}: arch `{}` is not shipped (known: {})",
                        p.arch,
                        crate::model::SHIPPED_ARCHES.join(", ")
                    )
                })
            } else {
                self.models[0].on_preset(p)
            };
            self.fixed = Some(m);
        }
        self.skip_mainline = std::env::var(SKIP_MAINLINE_ENV).is_ok_and(|v| v == "1");
        self.keep_families = std::env::var(KEEP_FAMILIES_ENV)
            .map(|v| {
                v.split(',')
                    .filter(|f| !f.is_empty())
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        if let Ok(dir) = std::env::var(STATS_ENV) {
            self.reach.borrow_mut().file =
                Some(std::path::Path::new(&dir).join(format!("reach-{}.json", std::process::id())));
        }
        if let Ok(name) = std::env::var(MUTATOR_ENV) {
            self.mutator = Mutator::by_name(&name).unwrap_or_else(|| {
                panic!(
                    "{MUTATOR_ENV}={name}: unknown mutator (known: {})",
                    Mutator::NAMES.join(", ")
                )
            });
        }
        self
    }

    /// Fixes the model every input runs on.
    pub fn fixed(mut self, model: Rc<dyn DynModel>) -> Target {
        self.fixed = Some(model);
        self
    }

    /// The model `input` runs on: the fixed one, or its choice among the target's.
    pub fn model_of(&self, input: &FuzzInput) -> &Rc<dyn DynModel> {
        match &self.fixed {
            Some(m) => m,
            None => &self.models[input.preset as usize % self.models.len()],
        }
    }

    /// Decodes fuzzer bytes into the model they run on and their ops.
    pub fn decode(&self, data: &[u8]) -> (Rc<dyn DynModel>, Vec<Op>) {
        let input = crate::mutate::decode_input(data);
        (self.model_of(&input).clone(), input.ops)
    }

    /// The fuzz target body: runs the input and panics on a violation (unless the target
    /// passes over its family, [`SKIP_MAINLINE_ENV`]).
    pub fn fuzz_one(&self, data: &[u8]) {
        let (m, r) = LAST.with_borrow(|(bytes, input)| {
            let run_on = |input: &FuzzInput| {
                let m = self.model_of(input);
                (m, m.run(&input.ops, RunOptions::default()))
            };
            if bytes.as_slice() == data {
                run_on(input)
            } else {
                run_on(&crate::mutate::decode_input(data))
            }
        });
        self.reach.borrow_mut().note(m.catalog(), r.paths_started);
        if let Some(v) = r.violation {
            if self.skip_mainline
                && crate::triage::in_mainline(&v)
                && !self.keep_families.contains(&crate::triage::family(&v))
            {
                return;
            }
            self.reach.borrow().save();
            panic!(
                "flushfuzz: {} on preset {} ({} ops)",
                v.signature(),
                m.preset().name,
                r.ops_applied
            );
        }
    }

    /// The fuzz target's custom mutator: mutates `data[..size]` in place within `max_size`
    /// bytes and returns the new size, or `None` when this mutation is left to libFuzzer's
    /// byte mutator (see [`Mutator`]). `data` must hold at least `max(size, max_size)` bytes.
    pub fn fuzz_mutate(
        &self,
        data: &mut [u8],
        size: usize,
        max_size: usize,
        seed: u32,
    ) -> Option<usize> {
        match self.mutator {
            Mutator::Bytes => return None,
            Mutator::Mixed if seed % MIXED_BYTES_ONE_IN == 0 => return None,
            Mutator::Ops | Mutator::Mixed => {}
        }
        let max = max_size.min(data.len());
        let out = remember(crate::mutate::mutate_decoded(
            decoded(&data[..size.min(data.len())]),
            max,
            seed,
            self.fixed.is_none() && self.models.len() > 1,
        ));
        data[..out.len()].copy_from_slice(&out);
        Some(out.len())
    }

    /// The fuzz target's custom crossover: combines `a` and `b` into `out` and returns the
    /// size written. Op-level ([`crate::mutate::crossover`]) unless the mutator is `bytes`,
    /// which joins a prefix of `a` to a suffix of `b`.
    pub fn fuzz_crossover(&self, a: &[u8], b: &[u8], out: &mut [u8], seed: u32) -> usize {
        let joined = if self.mutator == Mutator::Bytes {
            let cut_a = if a.is_empty() {
                0
            } else {
                seed as usize % (a.len() + 1)
            };
            let cut_b = if b.is_empty() {
                0
            } else {
                (seed as usize / 7919) % (b.len() + 1)
            };
            let mut v = a[..cut_a].to_vec();
            v.extend_from_slice(&b[cut_b..]);
            v
        } else {
            remember(crate::mutate::crossover_decoded(
                decoded(a),
                &decoded(b),
                out.len(),
                seed,
            ))
        };
        let n = joined.len().min(out.len());
        out[..n].copy_from_slice(&joined[..n]);
        n
    }
}

impl Models for Target {
    fn model(&self, name: &str) -> Option<Rc<dyn DynModel>> {
        let own = self
            .fixed
            .iter()
            .chain(&self.models)
            .find(|m| m.preset().name == name)
            .cloned();
        own.or_else(|| self.shipped.then(|| Shipped.model(name)).flatten())
    }

    fn names(&self) -> Vec<String> {
        let mut v: Vec<String> = self
            .fixed
            .iter()
            .chain(&self.models)
            .map(|m| m.preset().name.clone())
            .collect();
        v.dedup();
        if self.shipped {
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
        let input = FuzzInput {
            preset: index,
            ops: Vec::new(),
        };
        Some(self.model_of(&input).clone())
    }
}

/// Decodes fuzzer bytes as the shipped target does. `fixed` overrides the input's preset
/// choice.
pub fn decode(data: &[u8], fixed: Option<&Preset>) -> (Preset, Vec<Op>) {
    let input = crate::mutate::decode_input(data);
    let p = match fixed {
        Some(p) => p.clone(),
        None => preset::by_name(RACE_PRESETS[input.preset as usize % RACE_PRESETS.len()])
            .expect("race preset"),
    };
    (p, input.ops)
}

thread_local! {
    /// The last input the custom mutator or crossover produced, with its decoded form.
    /// libFuzzer runs each mutant right after producing it and mutates it again in the next
    /// round, so most inputs need no decoding. The mutator's outputs are the encoding of the ops
    /// it hands over (a test checks it), so a hit decodes exactly as the bytes would.
    static LAST: RefCell<(Vec<u8>, FuzzInput)> = const {
        RefCell::new((
            Vec::new(),
            FuzzInput { preset: 0, ops: Vec::new() },
        ))
    };
}

/// How many decoded inputs [`DECODED`] keeps before it starts over.
const DECODED_CAP: usize = 4096;

thread_local! {
    /// Inputs decoded for the custom mutator and crossover, by their bytes: libFuzzer hands
    /// them corpus entries, the same few hundred again and again. Decoding is a pure function
    /// of the bytes, so a hit is exactly what decoding would give.
    static DECODED: RefCell<std::collections::BTreeMap<Vec<u8>, FuzzInput>> =
        const { RefCell::new(std::collections::BTreeMap::new()) };
}

/// `data` decoded, from [`LAST`] or [`DECODED`] when they hold these bytes. A hit in `LAST`
/// is taken out of it: this is for a mutation or crossover, whose output replaces it.
fn decoded(data: &[u8]) -> FuzzInput {
    let last = LAST.with_borrow_mut(|(bytes, input)| {
        (bytes.as_slice() == data).then(|| {
            bytes.clear();
            std::mem::take(input)
        })
    });
    if let Some(input) = last {
        return input;
    }
    DECODED.with_borrow_mut(|cache| {
        if let Some(input) = cache.get(data) {
            return input.clone();
        }
        let input = crate::mutate::decode_input(data);
        if cache.len() >= DECODED_CAP {
            cache.clear();
        }
        cache.insert(data.to_vec(), input.clone());
        input
    })
}

/// Records a mutant and its decoded form in [`LAST`] and returns its bytes.
fn remember(out: (Vec<u8>, FuzzInput)) -> Vec<u8> {
    LAST.with_borrow_mut(|last| {
        last.0.clear();
        last.0.extend_from_slice(&out.0);
        last.1 = out.1;
    });
    out.0
}

/// Encodes a preset choice and ops as fuzzer bytes that [`decode`] maps back to them (for
/// seeding corpora).
pub fn encode(preset_index: u8, ops: &[Op]) -> Vec<u8> {
    crate::encode::encode_input(preset_index, ops)
}

thread_local! {
    /// The shipped target, built once per thread for [`fuzz_one`] and its siblings.
    static SHIPPED: Target = Target::shipped();
}

/// The shipped target's body ([`Target::fuzz_one`] of [`Target::shipped`]).
pub fn fuzz_one(data: &[u8]) {
    SHIPPED.with(|t| t.fuzz_one(data))
}

/// The shipped target's mutator ([`Target::fuzz_mutate`]).
pub fn fuzz_mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> Option<usize> {
    SHIPPED.with(|t| t.fuzz_mutate(data, size, max_size, seed))
}

/// The shipped target's crossover ([`Target::fuzz_crossover`]).
pub fn fuzz_crossover(a: &[u8], b: &[u8], out: &mut [u8], seed: u32) -> usize {
    SHIPPED.with(|t| t.fuzz_crossover(a, b, out, seed))
}

/// The environment variable that chooses the campaign's mutator (set by `flushfuzz hunt`):
/// `ops` (the default), `mixed` or `bytes`; see [`Mutator`].
pub const MUTATOR_ENV: &str = "FLUSHFUZZ_MUTATOR";

/// How a campaign mutates inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutator {
    /// Op-level mutations and crossover ([`crate::mutate`]).
    Ops,
    /// Op-level, with one mutation in [`MIXED_BYTES_ONE_IN`] left to libFuzzer's byte mutator
    /// (which also inserts values the program compared against).
    Mixed,
    /// libFuzzer's byte mutator only, and a byte-level crossover.
    Bytes,
}

/// In [`Mutator::Mixed`], one mutation in this many is libFuzzer's.
pub const MIXED_BYTES_ONE_IN: u32 = 8;

impl Mutator {
    /// The names `FLUSHFUZZ_MUTATOR` and `flushfuzz hunt --mutator` accept.
    pub const NAMES: [&'static str; 3] = ["ops", "mixed", "bytes"];

    /// The mutator called `name`.
    pub fn by_name(name: &str) -> Option<Mutator> {
        match name {
            "ops" => Some(Mutator::Ops),
            "mixed" => Some(Mutator::Mixed),
            "bytes" => Some(Mutator::Bytes),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Mutator::Ops => "ops",
            Mutator::Mixed => "mixed",
            Mutator::Bytes => "bytes",
        }
    }
}

/// An input loaded from a file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The model it runs on.
    pub model: Rc<dyn DynModel>,
    /// Its ops.
    pub ops: Vec<Op>,
    /// The outcome it expects, for traces (`Some(None)`: expects no violation).
    pub expect: Option<Option<String>>,
    /// Whether it was a trace (text) rather than raw fuzzer bytes.
    pub is_trace: bool,
}

impl Loaded {
    /// The preset it runs on.
    pub fn preset(&self) -> &Preset {
        self.model.preset()
    }
}

/// Why a file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The trace text is malformed.
    Trace(TraceError),
    /// The file is larger than any input flushfuzz writes: it holds at least this many bytes
    /// (a pipe or a device may never end).
    TooLarge(u64),
    /// The preset given does not exist: its name, and the names that do.
    UnknownPreset(String, Vec<String>),
    /// Raw fuzzer bytes, and nothing says which model they run on.
    NoModel,
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Trace(e) => write!(f, "{e}"),
            LoadError::TooLarge(n) => write!(
                f,
                "at least {n} bytes, larger than any input ({} bytes at most)",
                MAX_INPUT
            ),
            LoadError::UnknownPreset(p, known) => {
                write!(f, "unknown preset `{p}` (known: {})", known.join(", "))
            }
            LoadError::NoModel => write!(
                f,
                "raw fuzzer bytes, and no preset or machine given to run them on"
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// The largest file accepted as an input.
pub const MAX_INPUT: u64 = 1 << 20;

/// Loads a trace or raw fuzzer bytes on the shipped presets (see [`load_bytes_in`]).
pub fn load_bytes(bytes: &[u8], preset_override: Option<&str>) -> Result<Loaded, LoadError> {
    load_bytes_in(bytes, &Shipped, preset_override)
}

/// `models`, with every name they do not know resolving to `model`.
struct OrElse<'a> {
    models: &'a dyn Models,
    model: std::rc::Rc<dyn DynModel>,
}

impl Models for OrElse<'_> {
    fn model(&self, name: &str) -> Option<std::rc::Rc<dyn DynModel>> {
        self.models.model(name).or_else(|| Some(self.model.clone()))
    }

    fn names(&self) -> Vec<String> {
        self.models.names()
    }

    fn raw(&self, index: u8) -> Option<std::rc::Rc<dyn DynModel>> {
        self.models.raw(index)
    }
}

/// Loads a trace or raw fuzzer bytes. A file is a trace if it starts with `flushfuzz-trace`
/// (after comments and blank lines); its preset line names a model of `models`. Raw bytes run on
/// the model their first byte picks among `models`' ([`Models::raw`]). `preset_override` names
/// the model to run on instead (the trace's own still reads its ops).
pub fn load_bytes_in(
    bytes: &[u8],
    models: &dyn Models,
    preset_override: Option<&str>,
) -> Result<Loaded, LoadError> {
    if bytes.len() as u64 > MAX_INPUT {
        return Err(LoadError::TooLarge(bytes.len() as u64));
    }
    let over = match preset_override {
        Some(n) => Some(
            models
                .model(n)
                .ok_or_else(|| LoadError::UnknownPreset(n.into(), models.names()))?,
        ),
        None => None,
    };
    let looks_like_trace = |t: &str| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with("flushfuzz-trace"))
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            // A trace with a bad byte is a broken trace, not raw fuzzer bytes: say where.
            if looks_like_trace(&String::from_utf8_lossy(bytes)) {
                let valid = &bytes[..e.valid_up_to()];
                let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                return Err(LoadError::Trace(TraceError {
                    line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                    column: valid.len() - line_start + 1,
                    message: "invalid UTF-8".into(),
                }));
            }
            None
        }
    };
    let is_trace = text.is_some_and(looks_like_trace);
    if is_trace {
        // With a preset given, a trace of a preset these models lack reads in its vocabulary.
        let t = match &over {
            Some(m) => Trace::parse_in(
                text.expect("utf-8"),
                &OrElse {
                    models,
                    model: m.clone(),
                },
            ),
            None => Trace::parse_in(text.expect("utf-8"), models),
        }
        .map_err(LoadError::Trace)?;
        let model = match &over {
            Some(m) => m.clone(),
            None => models
                .model(&t.preset)
                .expect("the parser resolved the preset"),
        };
        let ops = crate::trace::canonical(&*model, &t.ops);
        let expect = if over.is_some() { None } else { Some(t.expect) };
        return Ok(Loaded {
            model,
            ops,
            expect,
            is_trace: true,
        });
    }
    let input = crate::mutate::decode_input(bytes);
    let model = match over {
        Some(m) => m,
        None => models.raw(input.preset).ok_or(LoadError::NoModel)?,
    };
    Ok(Loaded {
        ops: crate::trace::canonical(&*model, &input.ops),
        model,
        expect: None,
        is_trace: false,
    })
}

/// Reads the file at `path` whole if it holds at most `limit` bytes, and fails with an error of
/// kind [`std::io::ErrorKind::FileTooLarge`] as soon as it holds more. It reads through
/// [`std::io::Read::take`] rather than trusting the file's length, which is 0 for `/dev/zero`,
/// a FIFO or `<(command)`, whose reads might never end. Every reader of input files goes
/// through it.
pub fn read_at_most(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("more than {limit} bytes, the most this file may hold"),
        ));
    }
    Ok(bytes)
}

/// Loads a file on the shipped presets (see [`load_bytes_in`]).
pub fn load_file(
    path: &std::path::Path,
    preset_override: Option<&str>,
) -> Result<Loaded, LoadError> {
    load_file_in(path, &Shipped, preset_override)
}

/// Loads a file (see [`load_bytes_in`]), reading at most [`MAX_INPUT`] bytes of it.
pub fn load_file_in(
    path: &std::path::Path,
    models: &dyn Models,
    preset_override: Option<&str>,
) -> Result<Loaded, LoadError> {
    // A regular file says how large it is: no need to read it to refuse it.
    let meta = std::fs::metadata(path).map_err(LoadError::Io)?;
    if meta.len() > MAX_INPUT {
        return Err(LoadError::TooLarge(meta.len()));
    }
    let bytes = read_at_most(path, MAX_INPUT).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => LoadError::TooLarge(MAX_INPUT + 1),
        _ => LoadError::Io(e),
    })?;
    load_bytes_in(&bytes, models, preset_override)
}

/// Runs a loaded input with the event log on.
pub fn replay(l: &Loaded) -> Report {
    l.model.run(&l.ops, RunOptions { log: true })
}

/// The trace-parser fuzz target body: parsing never panics, and an accepted trace prints and
/// parses back to the same trace.
pub fn fuzz_trace_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Trace::parse(text) {
        let again = Trace::parse(&t.to_text(&[])).expect("printed traces parse");
        assert_eq!(again, t, "trace round trip");
    }
}
