//! Bounded verification: every schedule of a program, up to a bound.
//!
//! A [`Program`] is what a trace does, without its schedule: for each actor, the actions it
//! starts, in order, with their fields ([`Program::of`] keeps them from a trace's ops). A
//! schedule of it is a sequence of choices: which actor makes the next step (starting its next
//! action when it is idle), on which CPU where the scheduler lets it choose
//! ([`crate::sched::Sched::placement`]), and injected hardware events between steps: a
//! speculative fill of any line a valid translation reaches, the eviction of any valid line. A
//! schedule ends when no actor can move: the run's drain and audit then judge it (the step
//! that ends a run, as after a trace's last op), unless a violation ended it earlier.
//!
//! [`verify`] explores every schedule with at most `preemptions` preemptions (a step by
//! another actor while the last one to step is in the middle of an action and not waiting for
//! anyone, or that actor's next step on another CPU: a running task migrates only when it is
//! preempted) and at most `events` hardware events ([`Bounds`]), depth first, replaying each
//! schedule's prefix from the initial state (a run is a pure function of the model and its
//! ops), and stops at the first violation, whose ops replay it (`Model::run`). Choices are
//! tried in a fixed order (the last actor first, then actors by number, then the CPUs, then
//! events), so the search is deterministic.
//!
//! # Pruning, and why it is exact
//!
//! Three reductions keep the search small without losing a schedule's outcome; the tests run
//! small programs both ways ([`Pruning::Naive`]) and compare verdicts, the first violating
//! schedule, every violation signature and every final state.
//!
//! **Commuting events** (sleep sets, as in loom's and shuttle's exploration). The machine
//! records what each choice read and wrote of the hardware ([`crate::footprint`]: cache sets,
//! memory, TLB and page-table entries, address-space registers). A hardware event touches
//! nothing but the hardware, so an event and another choice that wrote nothing the other
//! touched commute: both orders leave the same state, and the second is not tried (its choice
//! sleeps in the other branch until something it conflicts with happens). Only pairs with an
//! event are ever swapped: moving an event past a step changes neither the number of events
//! nor the sequence of actors' steps, so the representative explored has the same preemptions
//! and events as the schedule it stands for. Two steps of actors are never swapped, because
//! swapping them can change the number of preemptions, and with it whether the bound admits
//! the schedule. The op counter, which numbers steps, differs between the orders, but steps
//! are only compared by order, and the event records none.
//!
//! **Explored states** are not explored again. A state's key hashes (128 bits, two SipHash
//! lanes) its canonical form (`canon`: what differs from the template, with stamps
//! named by the actor step that made them and step numbers classed by the thresholds running
//! actions compare with), the position of each actor in its program, whether the last actor
//! is running (a switch then costs a preemption), and for each busy actor its action and the
//! hash of the state at each of its polls, with the CPU it was polled on. The history is what
//! makes equal keys mean equal futures: a script is an `async` block whose locals depend on
//! everything it observed, and it observed nothing but the state at its polls, its CPU and
//! what it did itself since; the stamps it keeps are named consistently along the whole run,
//! and the step numbers it keeps are marks the state records ([`crate::world::Cx::mark_step`]).
//! So two configurations with equal keys run alike under the same choices (up to the renaming
//! the canonical form makes), and a state reached again is skipped when it was explored before
//! with budgets as large and a sleep set no larger (the sleep set, as Godefroid's state caching
//! with sleep sets requires, since choices that slept there were not tried there).
//!
//! **Dead ends.** After the last event the budget allows, only actors can move; when every
//! actor that could sleeps there (or would cost a preemption the budget lacks), no choice is
//! left and, an actor being able to move, the schedule may not end either: the state holds no
//! schedule, and is neither hashed nor pushed ([`Stats::dead`]). The event still counts as
//! tried for the sleep sets of the choices after it, which is what a pushed state without
//! children would have left.
//!
//! A step that changes nothing (an actor that waits for another, checking its condition again
//! after a step that did the same, on the same CPU) is no choice: its state is its parent's,
//! whose other choices cover it, and it costs at most the same preemptions. Without it a
//! spinning actor would make every schedule infinite, naive or not.
//!
//! The bounds limit what is explored, not how: within them the search is exhaustive. Beyond
//! [`Options::max_depth`] choices a schedule is cut and counted ([`Stats::cut`]); a verdict
//! with cuts is not a proof.
//!
//! This module knows nothing of files or command lines; [`crate::tool::verify`] is the
//! command's report. The only clock is the caller's: progress goes to a callback.

use crate::addr::{ActorId, CpuId};
use crate::arch::Arch;
use crate::canon::{hash_words, Canon, Names};
use crate::event::Side;
use crate::footprint::Footprint;
use crate::model::{DynModel, Model};
use crate::op::{Action, Op};
use crate::oracle::Violation;
use crate::run::{build_state, Hardware, RunOptions, Runner};
use crate::sched::Placement;
use crate::world::State;
use std::collections::{BTreeMap, BTreeSet};
use std::rc::Rc;

/// What a program's actors do, without the schedule: each actor's actions, in order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Program {
    actions: Vec<Vec<Action>>,
}

impl Program {
    /// A program in which nobody does anything.
    pub fn new() -> Program {
        Program::default()
    }

    /// The program with `action` added after `actor`'s others.
    pub fn start(mut self, actor: ActorId, action: Action) -> Program {
        let a = actor as usize;
        if self.actions.len() <= a {
            self.actions.resize(a + 1, Vec::new());
        }
        self.actions[a].push(action);
        self
    }

    /// The actions a trace's ops start on `model`, actor by actor, in the order its run starts
    /// them (an op that starts nothing, such as a `start` of a busy actor, adds nothing; ops
    /// after a violation are not run).
    pub fn of(model: &dyn DynModel, ops: &[Op]) -> Program {
        model.program(ops)
    }

    /// The actions of `actor`.
    pub fn actions(&self, actor: ActorId) -> &[Action] {
        self.actions
            .get(actor as usize)
            .map_or(&[][..], |v| v.as_slice())
    }

    /// Every actor with actions, with them.
    pub fn by_actor(&self) -> impl Iterator<Item = (ActorId, &[Action])> {
        self.actions
            .iter()
            .enumerate()
            .filter(|(_, v)| !v.is_empty())
            .map(|(a, v)| (a as ActorId, v.as_slice()))
    }

    /// The number of actions.
    pub fn len(&self) -> usize {
        self.actions.iter().map(Vec::len).sum()
    }

    /// Whether nobody does anything.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The ops of one schedule of `program` on `model`: each actor's actions in order, actor by
/// actor, each started on CPU 0 and stepped there until it ends, before the next starts. With
/// no preemption and no event, it is one of the schedules [`verify`] explores.
pub fn sequential_ops<A: Arch + Clone>(model: &Model<A>, program: &Program) -> Vec<Op> {
    let mut r = Runner::new(model, RunOptions::default());
    let mut ops = Vec::new();
    for (actor, actions) in program.by_actor() {
        for &action in actions {
            let mut op = Op::Start {
                actor,
                cpu: 0,
                action,
            };
            let mut steps = 0;
            while !r.stopped() && steps <= MAX_DEPTH {
                r.apply_op(&op);
                ops.push(op);
                if !r.busy(actor) {
                    break;
                }
                op = Op::Step { actor, cpu: 0 };
                steps += 1;
            }
        }
    }
    r.report();
    ops
}

/// The actions `ops` start on `model` (see [`Program::of`]).
pub fn program_of<A: Arch + Clone>(model: &Model<A>, ops: &[Op]) -> Program {
    let mut r = Runner::new(model, RunOptions::default());
    let mut p = Program::new();
    let catalog = model.paths().catalog().clone();
    let n = r.actors() as u8;
    for op in ops {
        if r.stopped() {
            break;
        }
        if let (Some(a), Op::Start { action, .. }) = (r.apply_op(op), op) {
            debug_assert!(a < n);
            p = p.start(a, catalog.canonical(action));
        }
    }
    r.report();
    p
}

/// How far schedules go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Bounds {
    /// The most preemptions a schedule makes: steps of another actor while the last actor to
    /// step is in the middle of an action and not waiting for another.
    pub preemptions: u32,
    /// The most hardware events (speculative fills, evictions) a schedule injects.
    pub events: u32,
}

/// Which reductions the search uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Pruning {
    /// None: every schedule within the bounds (for comparisons).
    Naive,
    /// Commuting events only.
    Commute,
    /// Explored states only.
    States,
    /// Both.
    Full,
}

impl Pruning {
    fn commutes(self) -> bool {
        matches!(self, Pruning::Commute | Pruning::Full)
    }

    fn caches(self) -> bool {
        matches!(self, Pruning::States | Pruning::Full)
    }
}

/// When the search stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stop {
    /// At the first violation.
    First,
    /// When everything within the bounds was explored, collecting every violation's signature
    /// and every clean schedule's final state (for comparisons).
    Never,
}

/// The most choices a schedule makes before it is cut.
pub const MAX_DEPTH: usize = 400;

/// How often, in choices tried, progress is reported.
pub const PROGRESS_EVERY: u64 = 4096;

/// A search's options.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Options {
    /// The bounds.
    pub bounds: Bounds,
    /// The reductions.
    pub pruning: Pruning,
    /// When to stop.
    pub stop: Stop,
    /// The most choices in one schedule.
    pub max_depth: usize,
}

impl Options {
    /// Every schedule with at most `preemptions` preemptions and `events` hardware events,
    /// pruned, stopping at the first violation.
    pub fn bounded(preemptions: u32, events: u32) -> Options {
        Options {
            bounds: Bounds {
                preemptions,
                events,
            },
            pruning: Pruning::Full,
            stop: Stop::First,
            max_depth: MAX_DEPTH,
        }
    }

    /// These options with another pruning.
    pub fn pruning(self, pruning: Pruning) -> Options {
        Options { pruning, ..self }
    }

    /// These options with another stop.
    pub fn stop(self, stop: Stop) -> Options {
        Options { stop, ..self }
    }
}

/// What a search did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Stats {
    /// Schedules run to their end (the drain and audit, or a violation).
    pub schedules: u64,
    /// States explored (with pruning, each distinct state once per budget it was explored
    /// with).
    pub states: u64,
    /// Distinct states seen (keys of the explored-state table; 0 without it).
    pub distinct: u64,
    /// Choices tried.
    pub choices: u64,
    /// Replays of a prefix from the initial state.
    pub replays: u64,
    /// Choices not tried because they commute with one tried in another branch.
    pub slept: u64,
    /// Choices whose state was explored already.
    pub cached: u64,
    /// Hardware events not explored further because nothing could follow them: the last
    /// event of the budget, after which every actor's choice sleeps or is beyond the
    /// preemption bound (so no schedule ends there).
    pub dead: u64,
    /// Steps that changed nothing (an actor checking again what it waits for).
    pub idle_steps: u64,
    /// Choices that came back to a state on their own path (an actor moving between CPUs
    /// while it waits, and back).
    pub cycles: u64,
    /// Schedules cut at [`Options::max_depth`]: if any, the verdict is no proof.
    pub cut: u64,
    /// The longest schedule, in choices.
    pub depth: usize,
}

/// The first violating schedule a search found.
#[derive(Clone, Debug)]
pub struct Violating {
    /// Its ops: `Model::run` of them gives the violation.
    pub ops: Vec<Op>,
    /// The violation.
    pub violation: Violation,
}

/// What a search found.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// What it did.
    pub stats: Stats,
    /// The first violating schedule, if any.
    pub violation: Option<Violating>,
    /// The signatures of the violations found (every one with [`Stop::Never`]).
    pub signatures: BTreeSet<String>,
    /// With [`Stop::Never`], the canonical hashes of the final states of the schedules that
    /// ended without a violation.
    pub finals: BTreeSet<u128>,
}

impl Outcome {
    /// Whether no schedule within the bounds has a violation, and none was cut.
    pub fn is_clean(&self) -> bool {
        self.violation.is_none() && self.signatures.is_empty() && self.stats.cut == 0
    }
}

/// One choice of a schedule, named by what it does (not by an op's pick, which depends on the
/// state), so that the same choice can be recognised in another state.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
enum Choice {
    /// The actor steps (or starts its next action) on this CPU.
    Actor { actor: ActorId, cpu: CpuId },
    /// A hardware event.
    Hw(Hardware),
    /// The end of the schedule: the drain and the audit.
    Finish,
}

impl Choice {
    fn is_hw(&self) -> bool {
        matches!(self, Choice::Hw(_))
    }
}

/// What a node knows besides the runner's state.
#[derive(Clone, Debug)]
struct Aux {
    names: Names,
    /// Per actor: actions started.
    pos: Vec<u32>,
    /// Per actor: polls of its current action.
    polls: Vec<u32>,
    /// Per actor: the history of its current action (0 when idle).
    hist: Vec<u128>,
    /// The last actor to step.
    last: Option<ActorId>,
    /// Preemptions left.
    k: u32,
    /// Events left.
    e: u32,
}

/// A node on the search's path.
#[derive(Debug)]
struct Frame {
    /// The length of the op prefix that reaches it.
    ops: usize,
    aux: Aux,
    /// The canonical hash of its state.
    world: u128,
    /// Its key ([`Engine::key`]).
    key: u128,
    /// Choices left to try, each with its op.
    todo: Vec<(Choice, Op)>,
    /// Choices tried, with what they touched.
    done: Vec<(Choice, Rc<Footprint>)>,
    /// Choices that sleep here.
    sleep: Vec<(Choice, Rc<Footprint>)>,
    /// Whether some actor can do something here (a choice that changed something, or one
    /// asleep or beyond the preemption bound): if not, the schedule may end here.
    progress: bool,
    finish: bool,
}

/// An explored state: the budgets it was explored with and the choices that slept there.
/// The longest sleep set a state is remembered with ([`Engine::remember`]).
const MAX_REMEMBERED_SLEEP: usize = 16;

#[derive(Debug)]
struct Explored {
    k: u32,
    e: u32,
    sleep: Vec<Choice>,
}

struct Engine<'m, A: Arch + Clone> {
    model: &'m Model<A>,
    program: &'m Program,
    opts: Options,
    tpl: State,
    runner: Option<Runner<'m, A>>,
    /// Which frame the runner's state is, if any.
    at: Option<usize>,
    path: Vec<Op>,
    stack: Vec<Frame>,
    explored: BTreeMap<u128, Vec<Explored>>,
    out: Outcome,
    /// The machine before a hardware event, to undo it when its state was explored already.
    saved: Option<crate::machine::Machine>,
}

/// Explores every schedule of `program` on `model` within `opts` (see the module
/// documentation); `progress` hears how far it got every [`PROGRESS_EVERY`] choices.
pub fn verify<A: Arch + Clone>(
    model: &Model<A>,
    program: &Program,
    opts: &Options,
    progress: &mut dyn FnMut(&Stats),
) -> Outcome {
    let tpl = build_state(model.preset(), false);
    let base = tpl.o.issued();
    let runner = Runner::new(model, RunOptions::default());
    let n = runner.actors();
    let mut e = Engine {
        model,
        program,
        opts: *opts,
        tpl,
        runner: Some(runner),
        at: None,
        path: Vec::new(),
        stack: Vec::new(),
        explored: BTreeMap::new(),
        out: Outcome::default(),
        saved: None,
    };
    let aux = Aux {
        names: Names::new(base),
        pos: vec![0; n],
        polls: vec![0; n],
        hist: vec![0; n],
        last: None,
        k: opts.bounds.preemptions,
        e: opts.bounds.events,
    };
    let world = e.world(&aux.names);
    let key = e.key(world, &aux);
    if e.opts.pruning.caches() {
        e.remember(key, &aux, &[]);
    }
    e.push(aux, world, key, 0, Vec::new());
    e.run(progress);
    e.out.stats.distinct = e.explored.len() as u64;
    if let Some(r) = e.runner.take() {
        r.report();
    }
    e.out
}

impl<'m, A: Arch + Clone> Engine<'m, A> {
    fn runner(&mut self) -> &mut Runner<'m, A> {
        self.runner.as_mut().expect("a runner")
    }

    /// The canonical hash of the runner's state.
    fn world(&self, names: &Names) -> u128 {
        let r = self.runner.as_ref().expect("a runner");
        let st = r.state();
        let mut c = Canon::new(names, st.sched.thresholds());
        st.canon(&self.tpl, &mut c);
        c.finish()
    }

    /// The key of a node: its state, the actors' positions and busy actors' histories, and
    /// whether a switch away from the last actor costs a preemption.
    fn key(&self, world: u128, aux: &Aux) -> u128 {
        let r = self.runner.as_ref().expect("a runner");
        let mut w = vec![world as u64, (world >> 64) as u64];
        for a in 0..aux.pos.len() {
            w.push(aux.pos[a] as u64);
            if r.busy(a as ActorId) {
                w.push(aux.hist[a] as u64);
                w.push((aux.hist[a] >> 64) as u64);
            }
        }
        w.push(self.running(aux).map_or(0, |a| a as u64 + 1));
        hash_words(&w)
    }

    /// The last actor to step, if switching away from it is a preemption: it is in the middle
    /// of an action and not waiting for another.
    fn running(&self, aux: &Aux) -> Option<ActorId> {
        let r = self.runner.as_ref().expect("a runner");
        let a = aux.last?;
        (r.busy(a) && !r.state().sched.actor(a).waiting).then_some(a)
    }

    /// The preemptions a step of `a` on `cpu` costs: one when another actor is in the middle
    /// of an action and not waiting, or when `a` is and moves to another CPU (a running task
    /// changes CPU only when it is preempted); none otherwise.
    fn cost(&self, aux: &Aux, a: ActorId, cpu: CpuId) -> u32 {
        let r = self.runner.as_ref().expect("a runner");
        match self.running(aux) {
            Some(l) if l != a => 1,
            Some(_) => u32::from(r.state().sched.actor(a).cpu.is_some_and(|c| c != cpu)),
            None => 0,
        }
    }

    /// Records that a state was explored with these budgets and sleep set.
    fn remember(&mut self, key: u128, aux: &Aux, sleep: &[(Choice, Rc<Footprint>)]) {
        // Only a state reached again with every choice of this sleep set asleep is covered by
        // it: a long sleep set seldom is, and would cost more memory than the state saves.
        if sleep.len() > MAX_REMEMBERED_SLEEP {
            return;
        }
        let mut s: Vec<Choice> = sleep.iter().map(|(c, _)| *c).collect();
        s.sort_unstable();
        let v = self.explored.entry(key).or_default();
        v.retain(|x| !(x.k <= aux.k && x.e <= aux.e && s.iter().all(|c| x.sleep.contains(c))));
        v.push(Explored {
            k: aux.k,
            e: aux.e,
            sleep: s,
        });
    }

    /// Whether a state was explored with budgets at least these and a sleep set within this
    /// one.
    fn covered(&self, key: u128, aux: &Aux, sleep: &[(Choice, Rc<Footprint>)]) -> bool {
        self.explored.get(&key).is_some_and(|v| {
            v.iter().any(|x| {
                x.k >= aux.k
                    && x.e >= aux.e
                    && x.sleep.iter().all(|c| sleep.iter().any(|(s, _)| s == c))
            })
        })
    }

    /// Pushes a node the runner is at.
    fn push(
        &mut self,
        aux: Aux,
        world: u128,
        key: u128,
        ops: usize,
        sleep: Vec<(Choice, Rc<Footprint>)>,
    ) {
        let (todo, slept, beyond) = self.choices(&aux, &sleep);
        self.out.stats.slept += slept.len() as u64;
        self.out.stats.states += 1;
        self.out.stats.depth = self.out.stats.depth.max(self.path.len());
        let progress = can_move(&slept, beyond);
        self.stack.push(Frame {
            ops,
            aux,
            world,
            key,
            todo,
            done: Vec::new(),
            sleep,
            progress,
            finish: false,
        });
        self.at = Some(self.stack.len() - 1);
    }

    /// The choices of the node the runner is at, in order, each with its op; those asleep;
    /// and whether some actor choice was left out for the preemption bound.
    fn choices(
        &self,
        aux: &Aux,
        sleep: &[(Choice, Rc<Footprint>)],
    ) -> (Vec<(Choice, Op)>, Vec<Choice>, bool) {
        let r = self.runner.as_ref().expect("a runner");
        let st = r.state();
        let n = r.actors() as ActorId;
        let ncpus = st.sched.ncpus();
        let running = self.running(aux);
        let mut all: Vec<(Choice, Op)> = Vec::new();
        let mut beyond = false;
        let order = running
            .into_iter()
            .chain((0..n).filter(|&a| Some(a) != running));
        for a in order {
            let action = if r.busy(a) {
                None
            } else {
                match self.program.actions(a).get(aux.pos[a as usize] as usize) {
                    Some(action) if r.can_start(a, action) => Some(*action),
                    _ => continue,
                }
            };
            let mut seen: Vec<CpuId> = Vec::new();
            for want in 0..ncpus {
                let Placement::On { cpu, .. } = st.sched.placement(a, want) else {
                    continue;
                };
                if seen.contains(&cpu) {
                    continue;
                }
                seen.push(cpu);
                if self.cost(aux, a, cpu) > aux.k {
                    beyond = true;
                    continue;
                }
                let op = match action {
                    Some(action) => Op::Start {
                        actor: a,
                        cpu,
                        action,
                    },
                    None => Op::Step { actor: a, cpu },
                };
                all.push((Choice::Actor { actor: a, cpu }, op));
            }
        }
        if aux.e > 0 {
            for cpu in 0..ncpus {
                for side in [Side::D, Side::I] {
                    let icache = side == Side::I;
                    for (pick, slot) in st.m.valid_slots(cpu, side).into_iter().enumerate() {
                        let Ok(pick) = u16::try_from(pick) else { break };
                        all.push((
                            Choice::Hw(Hardware::Evict { cpu, side, slot }),
                            Op::Evict { cpu, icache, pick },
                        ));
                    }
                    for (va, pick) in st.m.speculation_choices(cpu, side) {
                        all.push((
                            Choice::Hw(Hardware::Speculate { cpu, side, va }),
                            Op::Speculate { cpu, icache, pick },
                        ));
                    }
                }
            }
        }
        let mut slept = Vec::new();
        all.retain(|(c, _)| {
            let asleep = sleep.iter().any(|(s, _)| s == c);
            if asleep {
                slept.push(*c);
            }
            !asleep
        });
        (all, slept, beyond)
    }

    /// Replays the op prefix of frame `i` on a fresh runner.
    fn go_to(&mut self, i: usize) {
        if self.at == Some(i) {
            return;
        }
        if let Some(r) = self.runner.take() {
            r.report();
        }
        let mut r = Runner::new(self.model, RunOptions::default());
        for op in &self.path[..self.stack[i].ops] {
            r.apply_op(op);
        }
        self.runner = Some(r);
        self.at = Some(i);
        self.out.stats.replays += 1;
    }

    fn run(&mut self, progress: &mut dyn FnMut(&Stats)) {
        while let Some(top) = self.stack.last_mut() {
            let Some((choice, op)) = (!top.todo.is_empty()).then(|| top.todo.remove(0)) else {
                if !top.progress && !top.finish {
                    top.finish = true;
                    top.todo
                        .push((Choice::Finish, Op::Step { actor: 0, cpu: 0 }));
                    continue;
                }
                self.stack.pop();
                self.at = self.at.filter(|&a| a < self.stack.len());
                continue;
            };
            let i = self.stack.len() - 1;
            self.out.stats.choices += 1;
            if self.out.stats.choices % PROGRESS_EVERY == 0 {
                progress(&self.out.stats);
            }
            self.go_to(i);
            let stop = match choice {
                Choice::Finish => self.finish(i),
                Choice::Hw(h) => self.event(i, choice, h, op),
                Choice::Actor { actor, cpu } => self.step(i, choice, actor, cpu, op),
            };
            if stop {
                break;
            }
        }
        progress(&self.out.stats);
    }

    /// Records a schedule's end: a violation, or (with [`Stop::Never`]) its final state.
    /// Returns whether the search stops.
    fn ended(&mut self, ops: Vec<Op>, names: &Names) -> bool {
        self.out.stats.schedules += 1;
        let v = self
            .runner
            .as_ref()
            .and_then(|r| r.state().violation.clone());
        match v {
            Some(v) => {
                self.out.signatures.insert(v.signature());
                if self.out.violation.is_none() {
                    self.out.violation = Some(Violating { ops, violation: v });
                }
                self.opts.stop == Stop::First
            }
            None => {
                if self.opts.stop == Stop::Never {
                    let w = self.world(names);
                    self.out.finals.insert(w);
                }
                false
            }
        }
    }

    fn finish(&mut self, i: usize) -> bool {
        self.runner().finish();
        self.at = None;
        let ops = self.path[..self.stack[i].ops].to_vec();
        let names = self.stack[i].aux.names.clone();
        self.ended(ops, &names)
    }

    /// The sleep set of the child reached by `choice`, which touched `fp`: the choices asleep
    /// here or tried here before that commute with it, where one of the two is an event.
    fn child_sleep(
        &self,
        i: usize,
        choice: Choice,
        fp: &Footprint,
    ) -> Vec<(Choice, Rc<Footprint>)> {
        if !self.opts.pruning.commutes() {
            return Vec::new();
        }
        let f = &self.stack[i];
        f.sleep
            .iter()
            .chain(&f.done)
            .filter(|(z, fz)| (z.is_hw() || choice.is_hw()) && !fz.conflicts(fp))
            .cloned()
            .collect()
    }

    fn event(&mut self, i: usize, choice: Choice, h: Hardware, op: Op) -> bool {
        let ops_before = self.runner().ops_applied();
        let mut aux = self.stack[i].aux.clone();
        aux.e -= 1;
        {
            let r = self.runner.as_mut().expect("a runner");
            let mut st = r.state_mut();
            match self.saved.as_mut() {
                Some(m) => m.clone_from(&st.m),
                None => self.saved = Some(st.m.clone()),
            }
            st.m.set_watch(true);
        }
        let issued = self.runner().state().o.issued();
        self.runner().apply_hardware(h);
        let fp = {
            let r = self.runner.as_mut().expect("a runner");
            let mut st = r.state_mut();
            let fp = st.m.footprint();
            st.m.set_watch(false);
            debug_assert_eq!(st.o.issued(), issued, "a hardware event made a value");
            fp
        };
        let undo = |e: &mut Self| {
            let saved = e.saved.as_ref().expect("saved");
            e.runner
                .as_mut()
                .expect("a runner")
                .state_mut()
                .m
                .clone_from(saved);
            e.runner().set_ops_applied(ops_before);
        };
        // The last event of the budget, after which every actor that could move sleeps (or
        // would cost a preemption the budget lacks): no choice is left there, and with a
        // sleeping actor the schedule may not end either, so the child holds no schedule. The
        // child's choices are what `push` would compute; only its state's hash is saved.
        let sleep = self.child_sleep(i, choice, &fp);
        if aux.e == 0 && self.opts.pruning.commutes() && !self.runner().stopped() {
            let (todo, slept, beyond) = self.choices(&aux, &sleep);
            if todo.is_empty() && can_move(&slept, beyond) {
                self.out.stats.dead += 1;
                self.stack[i].done.push((choice, Rc::new(fp)));
                undo(self);
                return false;
            }
        }
        self.descend(i, choice, op, fp, sleep, aux, None, undo)
    }

    fn step(&mut self, i: usize, choice: Choice, a: ActorId, cpu: CpuId, op: Op) -> bool {
        let parent = self.stack[i].world;
        let mut aux = self.stack[i].aux.clone();
        aux.k -= self.cost(&aux, a, cpu);
        let (issued, stalled) = {
            let r = self.runner.as_mut().expect("a runner");
            let mut st = r.state_mut();
            st.m.set_watch(true);
            (st.o.issued(), st.sched.actor(a).stalled)
        };
        let started = self.runner().apply_op(&op).is_some();
        let (fp, after, stalls) = {
            let r = self.runner.as_mut().expect("a runner");
            let mut st = r.state_mut();
            let fp = st.m.footprint();
            st.m.set_watch(false);
            (fp, st.o.issued(), st.sched.actor(a).stalled)
        };
        let ai = a as usize;
        if started {
            aux.pos[ai] += 1;
            aux.polls[ai] = 0;
            aux.hist[ai] = hash_words(&[0xac71_0000 | aux.pos[ai] as u64]);
        }
        // A poll that began and ended checking again what the actor waits for changed none of
        // its script's locals (the contract of `Cx::wait`): it is no part of its history.
        let again = !started && stalled && stalls;
        if !again {
            aux.names.made(issued, after, a, aux.pos[ai], aux.polls[ai]);
            aux.polls[ai] += 1;
            aux.hist[ai] = hash_words(&[
                aux.hist[ai] as u64,
                (aux.hist[ai] >> 64) as u64,
                parent as u64,
                (parent >> 64) as u64,
                cpu as u64,
            ]);
        }
        aux.last = Some(a);
        if !self.runner().busy(a) {
            aux.polls[ai] = 0;
            aux.hist[ai] = 0;
        }
        let repeat = again.then_some(parent);
        let sleep = self.child_sleep(i, choice, &fp);
        self.descend(i, choice, op, fp, sleep, aux, repeat, |e: &mut Self| {
            e.at = None
        })
    }

    /// Goes on from the child a choice reached, unless it ended the schedule, its state was
    /// explored already, or it changed nothing; `undo` brings the runner back to the parent
    /// (or marks it elsewhere). `sleep` is the child's sleep set ([`Engine::child_sleep`]);
    /// `repeat` is the parent's state hash when the choice was a step that only checked again
    /// what its actor waits for.
    #[allow(clippy::too_many_arguments)]
    fn descend(
        &mut self,
        i: usize,
        choice: Choice,
        op: Op,
        fp: Footprint,
        sleep: Vec<(Choice, Rc<Footprint>)>,
        aux: Aux,
        repeat: Option<u128>,
        undo: impl FnOnce(&mut Self),
    ) -> bool {
        let ops = self.stack[i].ops;
        if self.runner().stopped() {
            let mut v = self.path[..ops].to_vec();
            v.push(op);
            self.at = None;
            self.stack[i].progress |= matches!(choice, Choice::Actor { .. });
            return self.ended(v, &aux.names);
        }
        let world = self.world(&aux.names);
        if repeat == Some(world) {
            self.out.stats.idle_steps += 1;
            undo(self);
            return false;
        }
        if matches!(choice, Choice::Actor { .. }) {
            self.stack[i].progress = true;
        }
        self.stack[i].done.push((choice, Rc::new(fp)));
        if ops + 1 > self.opts.max_depth {
            self.out.stats.cut += 1;
            undo(self);
            return false;
        }
        let key = self.key(world, &aux);
        // A state already on the path, reached again with no more budget: whatever follows was
        // or will be explored from there. Without this, actors that only move between CPUs
        // while they wait would make schedules endless, naive or not.
        if self
            .stack
            .iter()
            .any(|f| f.key == key && f.aux.k >= aux.k && f.aux.e >= aux.e)
        {
            self.out.stats.cycles += 1;
            undo(self);
            return false;
        }
        if self.opts.pruning.caches() {
            if self.covered(key, &aux, &sleep) {
                self.out.stats.cached += 1;
                undo(self);
                return false;
            }
            self.remember(key, &aux, &sleep);
        }
        self.path.truncate(ops);
        self.path.push(op);
        self.push(aux, world, key, ops + 1, sleep);
        false
    }
}

/// Whether some actor can still do something where these choices slept and some were beyond
/// the preemption bound: if so, a schedule may not end there.
fn can_move(slept: &[Choice], beyond: bool) -> bool {
    beyond || slept.iter().any(|c| matches!(c, Choice::Actor { .. }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset;

    fn model(name: &str) -> std::rc::Rc<dyn DynModel> {
        crate::model::shipped_cached(&preset::by_name(name).expect("a preset"))
    }

    fn trace(name: &str) -> Vec<Op> {
        let text = std::fs::read_to_string(format!(
            "{}/../crashes/{name}.trace",
            env!("CARGO_MANIFEST_DIR")
        ))
        .expect("a committed trace");
        let t = crate::trace::Trace::parse(&text).expect("it parses");
        t.ops
    }

    /// A trace's program keeps the actions its ops started, actor by actor: a `start` of a busy
    /// actor only stepped it.
    #[test]
    fn a_program_keeps_the_actions_a_trace_started() {
        let m = model("fork-cow-alias");
        let p = Program::of(&*m, &trace("fork-cow-alias"));
        let names = |a: ActorId| -> Vec<&str> {
            p.actions(a).iter().map(|x| m.catalog().name(x)).collect()
        };
        assert_eq!(names(0), ["store", "fork", "store"]);
        assert_eq!(names(1), ["store"]);
        assert_eq!(p.len(), 4);
    }

    /// A program run one action after another, on CPU 0, is the first schedule verify explores:
    /// without preemptions or events, verify finds its violation.
    #[test]
    fn the_sequential_schedule_is_explored_first() {
        let p = preset::by_name("gup-anon-alias").expect("a preset");
        let m = Model::new(p, crate::arch::vivt::ArmVivt);
        let prog = program_of(&m, &trace("gup-anon-alias"));
        let seq = sequential_ops(&m, &prog);
        let ran = m.run(&seq, RunOptions::default());
        let sig = ran.violation.map(|v| v.signature());
        assert!(sig.is_some(), "the race needs no preemption");
        let out = verify(&m, &prog, &Options::bounded(0, 0), &mut |_| {});
        let found = out.violation.expect("a violation");
        assert_eq!(Some(found.violation.signature()), sig);
        assert_eq!(found.ops, seq);
    }
}
