//! The kernel paths an op can start: the open vocabulary of the input language.
//!
//! An [`Action`] names a path by its index in a [`Paths`] registry and gives
//! it up to [`MAX_ARGS`] byte-sized fields. The registry says what each path is called in trace
//! files, what its fields mean ([`Field`]), which actors may run it ([`Runs`]), which mainline
//! function it follows and which flush APIs it calls, and holds the `async` script that runs
//! it. The shipped paths are [`crate::kernel::paths`]; a user adds paths of their own or
//! replaces a shipped one ([`Paths::add`], [`Paths::replace`]) and hands the registry to a
//! [`crate::model::Model`], so that fuzzer ops start and step them and traces, timelines and
//! triage name them like the shipped ones.
//!
//! The registry is generic over the [`Arch`] because scripts call it; what traces, the
//! minimizer and the mutator need is the arch-free [`Catalog`] of names and fields. Neither
//! knows any particular race.

use crate::arch::Arch;
use crate::op::{Action, DmaDir};
use crate::world::Cx;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// The most fields an action has.
pub const MAX_ARGS: usize = 6;

/// The most paths a registry holds (a run records the paths it started as bits of a `u128`).
pub const MAX_PATHS: usize = 128;

/// A running kernel path: the script of one actor's action.
pub type Script = Pin<Box<dyn Future<Output = ()>>>;

/// What values a field takes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FieldKind {
    /// A number from 0 to 255. Paths reduce it modulo what exists when they run (the n-th
    /// mapped page, a file's pages, the driver buffers), so every value lands somewhere.
    Num,
    /// `true` or `false` (the byte's low bit).
    Flag,
    /// One of these names (the byte modulo their number).
    Choice(&'static [&'static str]),
}

/// One field of a path: its name in trace files (`page=3`) and its kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Field {
    /// The name, as trace files write it.
    pub name: &'static str,
    /// Its values.
    pub kind: FieldKind,
}

impl Field {
    /// A numeric field.
    pub const fn num(name: &'static str) -> Field {
        Field {
            name,
            kind: FieldKind::Num,
        }
    }

    /// A flag.
    pub const fn flag(name: &'static str) -> Field {
        Field {
            name,
            kind: FieldKind::Flag,
        }
    }

    /// A choice among names.
    pub const fn choice(name: &'static str, names: &'static [&'static str]) -> Field {
        Field {
            name,
            kind: FieldKind::Choice(names),
        }
    }

    /// The canonical byte of `raw`: a flag's low bit, a choice modulo its names.
    pub fn canonical(&self, raw: u8) -> u8 {
        match self.kind {
            FieldKind::Num => raw,
            FieldKind::Flag => raw & 1,
            FieldKind::Choice(names) => raw % names.len() as u8,
        }
    }

    /// The value of canonical byte `raw` as trace text.
    pub fn text(&self, raw: u8) -> String {
        match self.kind {
            FieldKind::Num => raw.to_string(),
            FieldKind::Flag => (raw & 1 == 1).to_string(),
            FieldKind::Choice(names) => names[raw as usize % names.len()].to_string(),
        }
    }

    /// The byte of a trace-text value, or what a valid value looks like.
    pub fn parse(&self, text: &str) -> Result<u8, String> {
        match self.kind {
            FieldKind::Num => text.parse().map_err(|_| {
                format!(
                    "`{}` must be a number from 0 to 255, found `{text}`",
                    self.name
                )
            }),
            FieldKind::Flag => match text {
                "true" => Ok(1),
                "false" => Ok(0),
                _ => Err(format!(
                    "`{}` must be `true` or `false`, found `{text}`",
                    self.name
                )),
            },
            FieldKind::Choice(names) => names
                .iter()
                .position(|n| *n == text)
                .map(|i| i as u8)
                .ok_or_else(|| {
                    format!("`{}` must be {}, found `{text}`", self.name, one_of(names))
                }),
        }
    }
}

/// "a, b or c".
fn one_of(names: &[&str]) -> String {
    match names {
        [] => String::new(),
        [one] => one.to_string(),
        [rest @ .., last] => format!("{} or {last}", rest.join(", ")),
    }
}

/// The DMA directions, as a choice field names them.
pub const DMA_DIRS: &[&str] = &["to-device", "from-device", "bidirectional"];

/// Which actors may run a path.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Runs {
    /// A thread of a user process, in its address space (a system call, a fault). Started by
    /// anything else, it does nothing.
    User,
    /// Process context: user threads and kernel threads; it may sleep.
    Kernel,
    /// Any context, interrupts included: it never sleeps.
    Atomic,
}

/// What a path is, apart from its script.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathInfo {
    /// Its name in trace files, timelines and reports.
    pub name: &'static str,
    /// Its fields, in order.
    pub fields: &'static [Field],
    /// Which actors may run it.
    pub runs: Runs,
    /// The mainline kernel function (or system call) it follows.
    pub follows: &'static str,
    /// The `Arch` methods (the flush API) it calls, directly or through what it runs (faults,
    /// readpage, kmap, DMA mapping): a `Recording` of every shipped arch over seeds and random
    /// inputs makes exactly these calls (`tests/it/paths.rs`). `flushfuzz paths` prints them.
    pub calls: &'static [&'static str],
    /// What it does, in one sentence.
    pub doc: &'static str,
}

/// The arch-free part of a registry: names and fields, what traces, the minimizer and the
/// mutator need.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Catalog {
    paths: Vec<PathInfo>,
}

impl Catalog {
    /// The paths, by index.
    pub fn paths(&self) -> &[PathInfo] {
        &self.paths
    }

    /// The number of paths.
    pub fn len(&self) -> usize {
        self.paths.len()
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.paths.is_empty()
    }

    /// The index of the path called `name`.
    pub fn index(&self, name: &str) -> Option<u8> {
        self.paths
            .iter()
            .position(|p| p.name == name)
            .map(|i| i as u8)
    }

    /// The path an action starts (its index modulo the number of paths).
    pub fn path_of(&self, a: &Action) -> &PathInfo {
        &self.paths[a.path as usize % self.paths.len()]
    }

    /// The action's path name.
    pub fn name(&self, a: &Action) -> &'static str {
        self.path_of(a).name
    }

    /// The canonical form of an action: the path index reduced, each field's byte canonical
    /// ([`Field::canonical`]), unused bytes zero. It runs exactly as the action does.
    pub fn canonical(&self, a: &Action) -> Action {
        let index = a.path as usize % self.paths.len();
        let p = &self.paths[index];
        let mut args = [0u8; MAX_ARGS];
        for (i, f) in p.fields.iter().enumerate() {
            args[i] = f.canonical(a.args[i]);
        }
        Action {
            path: index as u8,
            args,
        }
    }

    /// The fields of an action as `(name, value)` text pairs, in order.
    pub fn fields(&self, a: &Action) -> Vec<(&'static str, String)> {
        let p = self.path_of(a);
        p.fields
            .iter()
            .enumerate()
            .map(|(i, f)| (f.name, f.text(a.args[i])))
            .collect()
    }

    /// The action of path `name` with these `(name, value)` text fields (every field of the
    /// path, each once, in any order), or what is wrong with them.
    pub fn action(&self, name: &str, fields: &[(&str, &str)]) -> Result<Action, ActionError> {
        let index = self
            .index(name)
            .ok_or_else(|| ActionError::UnknownPath(name.to_string()))?;
        let p = &self.paths[index as usize];
        let mut args = [0u8; MAX_ARGS];
        let mut used = vec![false; fields.len()];
        for (i, f) in p.fields.iter().enumerate() {
            let at = fields
                .iter()
                .position(|(k, _)| *k == f.name)
                .ok_or(ActionError::Missing(f.name))?;
            used[at] = true;
            args[i] = f
                .parse(fields[at].1)
                .map_err(|m| ActionError::Value(at, m))?;
        }
        if let Some(at) = used.iter().position(|u| !u) {
            return Err(ActionError::Unknown(at));
        }
        Ok(Action { path: index, args })
    }

    /// [`Catalog::action`] from text fields, for the minimizer; `None` on any error.
    pub fn action_from_fields(&self, name: &str, fields: &[(&str, String)]) -> Option<Action> {
        let f: Vec<(&str, &str)> = fields.iter().map(|(k, v)| (*k, v.as_str())).collect();
        self.action(name, &f).ok()
    }
}

/// Why text fields do not make an action ([`Catalog::action`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ActionError {
    /// No path has this name.
    UnknownPath(String),
    /// The path's field of this name is missing.
    Missing(&'static str),
    /// The field at this index has a bad value.
    Value(usize, String),
    /// The field at this index is not one of the path's.
    Unknown(usize),
}

/// An action's fields, as its script reads them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Args(pub [u8; MAX_ARGS]);

impl Args {
    /// Field `i` as a number.
    pub fn num(&self, i: usize) -> u8 {
        self.0[i]
    }

    /// Field `i` as a flag.
    pub fn flag(&self, i: usize) -> bool {
        self.0[i] & 1 == 1
    }

    /// Field `i` as a choice among `n` (its index).
    pub fn choice(&self, i: usize, n: usize) -> usize {
        self.0[i] as usize % n
    }

    /// Field `i` as a DMA direction (a choice among [`DMA_DIRS`]).
    pub fn dma_dir(&self, i: usize) -> DmaDir {
        match self.choice(i, 3) {
            0 => DmaDir::ToDevice,
            1 => DmaDir::FromDevice,
            _ => DmaDir::Bidirectional,
        }
    }
}

type Start<A> = Box<dyn Fn(Cx<A>, Args) -> Script>;

/// A kernel path: what it is, and how to start it.
pub struct Path<A> {
    info: PathInfo,
    start: Start<A>,
}

impl<A> std::fmt::Debug for Path<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Path").field("info", &self.info).finish()
    }
}

impl<A: Arch> Path<A> {
    /// A path described by `info` whose script is `script(cx, args)`, run by the actor of `cx`.
    /// A [`Runs::User`] script runs only for a thread of a live process (find its address space
    /// with [`crate::kernel::my_mm`]).
    pub fn new<F, Fut>(info: PathInfo, script: F) -> Path<A>
    where
        F: Fn(Cx<A>, Args) -> Fut + 'static,
        Fut: Future<Output = ()> + 'static,
    {
        assert!(
            info.fields.len() <= MAX_ARGS,
            "path {} has more than {MAX_ARGS} fields",
            info.name
        );
        Path {
            info,
            start: Box::new(move |cx, args| Box::pin(script(cx, args))),
        }
    }

    /// What the path is.
    pub fn info(&self) -> &PathInfo {
        &self.info
    }
}

/// A registry of kernel paths: the shipped ones ([`crate::kernel::paths`]) and a user's.
pub struct Paths<A> {
    list: Vec<Path<A>>,
    catalog: Arc<Catalog>,
}

impl<A> std::fmt::Debug for Paths<A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Paths")
            .field("catalog", &self.catalog)
            .finish()
    }
}

impl<A: Arch> Paths<A> {
    /// A registry of these paths, in this order (an action's path index refers to it).
    pub fn new(list: Vec<Path<A>>) -> Paths<A> {
        let mut p = Paths {
            list: Vec::new(),
            catalog: Arc::default(),
        };
        for path in list {
            p.add(path);
        }
        p
    }

    /// The shipped kernel paths.
    pub fn shipped() -> Paths<A> {
        crate::kernel::paths()
    }

    /// Adds a path after the others (so the indices of those stay).
    ///
    /// # Panics
    /// If a path of that name is there already, or the registry is full.
    pub fn add(&mut self, path: Path<A>) -> &mut Paths<A> {
        assert!(
            self.list.iter().all(|p| p.info.name != path.info.name),
            "a path called {} is registered already",
            path.info.name
        );
        assert!(self.list.len() < MAX_PATHS, "too many paths");
        self.list.push(path);
        self.rebuild();
        self
    }

    /// Replaces the path of the same name with `path` (a variant of a shipped path), keeping
    /// its index.
    ///
    /// # Panics
    /// If no path has that name.
    pub fn replace(&mut self, path: Path<A>) -> &mut Paths<A> {
        let i = self
            .list
            .iter()
            .position(|p| p.info.name == path.info.name)
            .unwrap_or_else(|| panic!("no path called {} to replace", path.info.name));
        self.list[i] = path;
        self.rebuild();
        self
    }

    /// Removes the path called `name` (later paths move down one index).
    pub fn remove(&mut self, name: &str) -> &mut Paths<A> {
        self.list.retain(|p| p.info.name != name);
        self.rebuild();
        self
    }

    fn rebuild(&mut self) {
        self.catalog = Arc::new(Catalog {
            paths: self.list.iter().map(|p| p.info.clone()).collect(),
        });
    }

    /// The arch-free description of the paths.
    pub fn catalog(&self) -> &Arc<Catalog> {
        &self.catalog
    }

    /// The index of the path an action starts.
    pub fn index(&self, a: &Action) -> usize {
        a.path as usize % self.list.len()
    }

    /// The path an action starts.
    pub fn path(&self, a: &Action) -> &Path<A> {
        &self.list[self.index(a)]
    }

    /// Starts the action's script as the actor of `cx`.
    pub fn start(&self, cx: Cx<A>, a: &Action) -> Script {
        (self.path(a).start)(cx, Args(a.args))
    }
}
