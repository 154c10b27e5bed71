//! Running an input: building the world from a preset, applying ops, draining, auditing.
//!
//! [`Runner`] owns the actors' scripts (pinned futures) and the shared [`World`]. Each op is one
//! step: it starts or steps an actor (polling its script once) or injects a hardware event. When
//! the ops run out, busy actors are stepped round-robin to completion, then the end-of-run audit
//! checks for lost writes, dirty lines that would overwrite newer data, and stale user views.
//! A run is a pure function of the preset, the arch and the ops.

use crate::addr::{layout, ActorId, AliasKind, CpuId, MmId, Pa, Pfn, Stamp, Va};
use crate::arch::Arch;
use crate::event::{Log, Logged, Side};
use crate::kernel::{self, File, KernelState, Mm, Page, PageKind, Pkmap, Vma, VmaKind};
use crate::machine::{Machine, Observed};
use crate::model::Model;
use crate::op::{Action, Op};
use crate::oracle::{Oracle, ReadKind, Violation};
use crate::paths::{Paths, Runs, Script};
use crate::preset::Preset;
use crate::sched::{Actor, ActorKind, Placement, Sched};
use crate::world::{Cx, State, World};
use std::future::Future;
use std::rc::Rc;
use std::task::{Context, Poll, Waker};

/// The most polls the drain phase makes before giving up on actors that cannot finish.
pub const MAX_DRAIN_POLLS: usize = 4096;

/// Options of a run.
#[derive(Clone, Copy, Debug, Default)]
pub struct RunOptions {
    /// Record the event log (slower; for replays and explanations).
    pub log: bool,
}

/// What a run found.
#[derive(Clone, Debug)]
pub struct Report {
    /// The first violation, if any.
    pub violation: Option<Violation>,
    /// Ops applied before the run ended (all of them unless a violation stopped it).
    pub ops_applied: usize,
    /// Steps taken, including the drain.
    pub steps: u32,
    /// The event log, if recorded.
    pub events: Vec<Logged>,
    /// Actor names, by id, to read the events and the violation by; empty when the run kept
    /// no log and found nothing (a campaign's runs, which would otherwise copy them each time).
    pub actors: Vec<String>,
    /// The kernel paths the run started, as a bit per path index (the registry's first
    /// [`crate::paths::MAX_PATHS`]).
    pub paths_started: u128,
}

/// An injected hardware event, named by what it touches rather than by an op's pick.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Hardware {
    /// A speculative fill of the line holding `va` on `cpu`.
    Speculate { cpu: CpuId, side: Side, va: Va },
    /// The eviction of the line in `slot`.
    Evict {
        cpu: CpuId,
        side: Side,
        slot: crate::cache::Slot,
    },
}

/// Executes one input on one world.
pub struct Runner<'m, A: Arch> {
    w: Rc<World<A>>,
    paths: &'m Paths<A>,
    scripts: Vec<Option<Script>>,
    ops_applied: usize,
    paths_started: u128,
}

impl<A: Arch> std::fmt::Debug for Runner<'_, A> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runner")
            .field("ops_applied", &self.ops_applied)
            .finish()
    }
}

/// The initial stamp of byte `pa`: distinct from every other byte and every later write.
fn initial(pa: Pa) -> Stamp {
    pa as Stamp + 1
}

/// Builds the initial state of `preset`.
pub fn build_state(preset: &Preset, log: bool) -> State {
    let cfg = preset.machine.clone();
    cfg.validate()
        .unwrap_or_else(|e| panic!("preset {}: {e}", preset.name));
    let frames = cfg.frames();
    let page = cfg.page_size as u64;
    let mut m = Machine::new(cfg.clone(), Log::new(log), initial);
    let mut next = frames as Stamp * page as Stamp + 1;
    let shape = preset.world;
    let mut pages: Vec<Page> = (0..frames).map(|_| Page::new(PageKind::Free, 0)).collect();
    let mut o = Oracle::new(frames, cfg.page_size, initial, 0);
    // Driver buffers: lowmem from the top of lowmem, highmem from the top of highmem.
    let mut buffers = Vec::new();
    let take = |pfn: Pfn, pages: &mut Vec<Page>, o: &mut Oracle| {
        pages[pfn as usize] = Page::new(PageKind::Kernel, 1);
        o.set_live(pfn, true);
        pfn
    };
    for i in 0..shape.buffers_low as u32 {
        buffers.push(take(cfg.lowmem_frames - 1 - i, &mut pages, &mut o));
    }
    for i in 0..shape.buffers_high as u32 {
        let pfn = if cfg.highmem_frames > i {
            frames - 1 - i
        } else {
            cfg.lowmem_frames - 1 - shape.buffers_low as u32 - i
        };
        buffers.push(take(pfn, &mut pages, &mut o));
    }
    // The zero page: the highest lowmem frame left (`empty_zero_page`, set aside at boot). Its
    // initial bytes stand for its zeros; nothing writes it.
    let zero_pfn = (0..cfg.lowmem_frames)
        .rev()
        .find(|&p| pages[p as usize].kind == PageKind::Free)
        .expect("a free lowmem frame for the zero page");
    take(zero_pfn, &mut pages, &mut o);
    pages[zero_pfn as usize].kind = PageKind::Zero;
    let mut files: Vec<File> = (0..shape.files)
        .map(|_| File {
            pages: vec![None; shape.file_pages as usize],
            disk: (0..shape.file_pages as u64 * page)
                .map(|_| {
                    next += 1;
                    next
                })
                .collect(),
        })
        .collect();
    // The AIO ring's file (`KernelState::aio_file`): created in memory, never read from disk.
    files.push(File {
        pages: vec![None; kernel::aio::RING_PAGES],
        disk: vec![0; kernel::aio::RING_PAGES * page as usize],
    });
    // Process 0: anonymous heap at pages 0..4, private read-only executable text at 8..12
    // (file 0), a shared writable file mapping at 16..20 (file 1). User programs are W^X: no
    // mapping is writable and executable at once.
    let fp = shape.file_pages as u64;
    let vmas = vec![
        Vma {
            start: 0,
            end: 4,
            kind: VmaKind::Anon,
            write: true,
            exec: false,
        },
        Vma {
            start: 8,
            end: 8 + fp,
            kind: VmaKind::File {
                file: 0,
                pgoff: 0,
                shared: false,
            },
            write: false,
            exec: true,
        },
        Vma {
            start: 16,
            end: 16 + fp,
            kind: VmaKind::File {
                file: 1.min(shape.files - 1),
                pgoff: 0,
                shared: true,
            },
            write: true,
            exec: false,
        },
    ];
    m.create_user_pt(0);
    let mms = vec![Mm {
        vmas,
        alive: true,
        cpumask: 0,
        exiting: false,
        context: 0,
        xol: None,
        users: 1,
        swap_ptes: Vec::new(),
        vma_locks: Default::default(),
    }];
    let mut actors = Vec::new();
    for t in 0..shape.threads + shape.spare_threads {
        actors.push(Actor::idle(
            ActorKind::Thread { pid: 0 },
            t < shape.threads,
            format!("T{t}"),
        ));
    }
    for k in 0..shape.kthreads {
        actors.push(Actor::idle(ActorKind::Kthread, true, format!("K{k}")));
    }
    if shape.irq {
        actors.push(Actor::idle(ActorKind::Irq, true, "IRQ".into()));
    }
    let k = KernelState {
        pages,
        mms,
        procs: vec![0],
        files,
        pkmap: Pkmap {
            count: vec![0; cfg.pkmap_slots as usize],
            page: vec![None; cfg.pkmap_slots as usize],
            last: 0,
        },
        buffers,
        locks: vec![
            None;
            kernel::buffer_lock(0)
                + (shape.buffers_low + shape.buffers_high) as usize
                + kernel::locks::COUNT
        ],
        vmalloc: vec![false; layout::VMALLOC_PAGES as usize],
        fixmap_depth: [0; crate::addr::MAX_CPUS],
        io: preset.io,
        arch_words: [0; kernel::ARCH_WORDS],
        vmap_bufs: vec![None; kernel::bio::VMAP_BUFS],
        rings: vec![None; kernel::ring::ALL_RINGS],
        text: vec![None; kernel::text::TEXT_SLOTS],
        swap: (0..kernel::SWAP_SLOTS)
            .map(|_| kernel::SwapSlot {
                data: vec![0; page as usize],
                count: 0,
                cache: None,
            })
            .collect(),
        pipe: Vec::with_capacity(kernel::pipe::PIPE_BUFS),
        aio: None,
        zero_pfn,
    };
    // Fresh stamps start above every initial and disk value.
    let mut o2 = o;
    while o2.fresh() < next {}
    State {
        m,
        k,
        o: o2,
        sched: Sched::new(cfg.cpus, actors),
        sw: preset.switches,
        violation: None,
        arch: [""; crate::arch::LINEAGE],
    }
}

thread_local! {
    /// The last initial state built, by preset: runs of one campaign copy it instead of
    /// building it again. A cache only: the state is a pure function of the preset.
    static TEMPLATE: std::cell::RefCell<Option<(Preset, State)>> = const { std::cell::RefCell::new(None) };
    /// The state of the last finished run, kept for its allocations: the next run copies the
    /// template into it (`clone_from`) rather than allocating a new state.
    static SPARE: std::cell::RefCell<Option<State>> = const { std::cell::RefCell::new(None) };
}

/// The initial state of `preset`, from the cache when possible.
fn initial_state(preset: &Preset, log: bool) -> State {
    if log {
        return build_state(preset, true);
    }
    TEMPLATE.with(|t| {
        let mut t = t.borrow_mut();
        match t.as_ref() {
            Some((p, st)) if p == preset => match SPARE.with(|s| s.borrow_mut().take()) {
                Some(mut spare) => {
                    spare.clone_from(st);
                    spare
                }
                None => st.clone(),
            },
            _ => {
                let mut st = build_state(preset, false);
                st.snapshot();
                *t = Some((preset.clone(), st.clone()));
                st
            }
        }
    })
}

/// Keeps a finished run's state for the next run's allocations.
fn recycle(st: State) {
    SPARE.with(|s| *s.borrow_mut() = Some(st));
}

impl<'m, A: Arch + Clone> Runner<'m, A> {
    /// A runner of `model`.
    pub fn new(model: &'m Model<A>, opts: RunOptions) -> Runner<'m, A> {
        let mut st = initial_state(model.preset(), opts.log);
        st.arch = model.lineage();
        let n = st.sched.len();
        Runner {
            w: Rc::new(World {
                st: std::cell::RefCell::new(st),
                arch: model.arch().clone(),
            }),
            paths: model.paths(),
            scripts: (0..n).map(|_| None).collect(),
            ops_applied: 0,
            paths_started: 0,
        }
    }

    fn cx(&self, a: ActorId) -> Cx<A> {
        Cx::new(self.w.clone(), a)
    }

    /// Whether a violation ended the run.
    pub fn stopped(&self) -> bool {
        self.w.st.borrow().violation.is_some()
    }

    /// Places `a` on a CPU and switches address space if needed. False if it cannot run now.
    fn place(&mut self, a: ActorId, want: CpuId) -> bool {
        let placed = self.w.st.borrow_mut().sched.place(a, want);
        let Placement::On { cpu, .. } = placed else {
            return false;
        };
        let need = {
            let st = self.w.st.borrow();
            match st.sched.actor(a).kind {
                ActorKind::Thread { pid } => Some(st.k.procs[pid as usize]),
                _ => None,
            }
        };
        let cur = self.w.st.borrow().m.cpus[cpu as usize].mm;
        if let Some(next) = need {
            if cur != Some(next) {
                let cx = self.cx(a);
                let fut = self.w.arch.switch_mm(&cx, cur, next);
                poll_to_completion(fut, "switch_mm");
                let mut st = self.w.st.borrow_mut();
                st.m.set_cpu_mm(cpu, Some(next));
                st.k.mms[next as usize].cpumask |= 1 << cpu;
            }
        }
        true
    }

    /// Polls `a`'s script once. False if the actor only found again that what it waits for has
    /// not happened ([`Cx::wait`]): the step changed nothing.
    fn poll(&mut self, a: ActorId) -> bool {
        {
            let mut st = self.w.st.borrow_mut();
            let actor = st.sched.actor_mut(a);
            actor.stalled = false;
            actor.waiting = false;
            st.m.log.actor = Some(a);
            let cpu = st.sched.cpu_of(a).unwrap_or(0);
            st.m.log
                .push(|| crate::event::Event::Step { actor: a, cpu });
        }
        let mut cx = Context::from_waker(Waker::noop());
        let done = match self.scripts[a as usize].as_mut() {
            Some(f) => f.as_mut().poll(&mut cx).is_ready(),
            None => return true,
        };
        if done {
            self.scripts[a as usize] = None;
            let mut st = self.w.st.borrow_mut();
            st.o.operation_done(a);
            let actor = st.sched.actor_mut(a);
            actor.busy = false;
            actor.path = "idle";
            actor.action = "idle";
            assert_eq!(
                actor.preempt, 0,
                "an action returned with preemption disabled"
            );
            let (kind, alive) = (actor.kind, actor.alive);
            if kind == ActorKind::Irq {
                st.sched.irq_done(a);
            }
            if !alive {
                st.sched.kill(a);
            }
        }
        let mut st = self.w.st.borrow_mut();
        st.m.log.actor = None;
        !st.sched.actor(a).stalled
    }

    fn step_actor(&mut self, a: ActorId, cpu: CpuId) {
        if self.scripts[a as usize].is_some() && self.place(a, cpu) {
            self.poll(a);
        }
    }

    /// Whether idle actor `a` can start `action` now, on some CPU: it is alive, and interrupt
    /// context only runs paths that never sleep. (Whether a CPU can take it is the scheduler's
    /// [`Sched::placement`].)
    pub(crate) fn can_start(&self, a: ActorId, action: &Action) -> bool {
        let st = self.w.st.borrow();
        let actor = st.sched.actor(a);
        let info = self.paths.path(action).info();
        actor.alive && !(actor.kind == ActorKind::Irq && info.runs != Runs::Atomic)
    }

    /// Starts `action` on idle actor `a`; false if it could not start (see
    /// [`Runner::can_start`]) or no CPU could take it.
    fn start(&mut self, a: ActorId, cpu: CpuId, action: Action) -> bool {
        if !self.can_start(a, &action) {
            return false;
        }
        let info = self.paths.path(&action).info();
        if !self.place(a, cpu) {
            return false;
        }
        let name = info.name;
        let user = {
            let mut st = self.w.st.borrow_mut();
            let actor = st.sched.actor_mut(a);
            actor.busy = true;
            actor.path = name;
            actor.action = name;
            actor.op_start = self.ops_applied as u32;
            actor.marks.clear();
            match actor.kind {
                ActorKind::Thread { pid } => Some(st.k.procs[pid as usize]),
                _ => None,
            }
        };
        let cx = self.cx(a);
        // A thread of a process that is exiting (or gone) starts nothing new: its action ends
        // at its first step, as does a user path started by anything but a user thread.
        let idle = match user {
            Some(mm) => {
                let st = self.w.st.borrow();
                let m = &st.k.mms[mm as usize];
                m.exiting || !m.alive
            }
            None => info.runs == Runs::User,
        };
        self.scripts[a as usize] = Some(if idle {
            Box::pin(std::future::ready(()))
        } else {
            self.paths_started |= 1 << self.paths.index(&action);
            self.paths.start(cx, &action)
        });
        self.poll(a);
        true
    }

    /// Applies one op.
    pub fn apply(&mut self, op: &Op) {
        self.apply_op(op);
    }

    /// Applies one op; returns the actor it started an action on, if it did.
    pub(crate) fn apply_op(&mut self, op: &Op) -> Option<ActorId> {
        if self.stopped() {
            return None;
        }
        self.ops_applied += 1;
        let n = self.scripts.len() as u8;
        let ncpus = self.w.st.borrow().m.config().cpus;
        self.w.st.borrow_mut().m.log.step = self.ops_applied as u32;
        match *op {
            Op::Step { actor, cpu } => self.step_actor(actor % n, cpu % ncpus),
            Op::Start { actor, cpu, action } => {
                let a = actor % n;
                if self.scripts[a as usize].is_some() {
                    self.step_actor(a, cpu % ncpus);
                } else if self.start(a, cpu % ncpus, action) {
                    return Some(a);
                }
            }
            Op::Speculate { cpu, icache, pick } => {
                let side = if icache { Side::I } else { Side::D };
                let va = self.w.st.borrow().m.speculation_va(cpu % ncpus, side, pick);
                if let Some(va) = va {
                    self.hardware(Hardware::Speculate {
                        cpu: cpu % ncpus,
                        side,
                        va,
                    });
                }
            }
            Op::Evict { cpu, icache, pick } => {
                let side = if icache { Side::I } else { Side::D };
                let slot = self
                    .w
                    .st
                    .borrow()
                    .m
                    .nth_valid_slot(cpu % ncpus, side, pick as usize);
                if let Some(slot) = slot {
                    self.hardware(Hardware::Evict {
                        cpu: cpu % ncpus,
                        side,
                        slot,
                    });
                }
            }
        }
        None
    }

    /// What an injected hardware event does, once its op's pick is resolved to a line or an
    /// address: both the ops and [`crate::verify`], which names events by what they touch,
    /// come through here.
    fn hardware(&mut self, h: Hardware) {
        let mut st = self.w.st.borrow_mut();
        match h {
            Hardware::Speculate { cpu, side, va } => {
                st.m.speculate(cpu, va, side);
            }
            Hardware::Evict { cpu, side, slot } => {
                st.m.evict_slot(cpu, side, slot);
            }
        }
    }

    /// Applies a hardware event named by what it touches, as one op (the op with the pick that
    /// resolves to it in this state, [`Machine::speculation_pick`] or
    /// [`Machine::valid_slot_pick`], does the same).
    pub(crate) fn apply_hardware(&mut self, h: Hardware) {
        if self.stopped() {
            return;
        }
        self.ops_applied += 1;
        self.w.st.borrow_mut().m.log.step = self.ops_applied as u32;
        self.hardware(h);
    }

    /// The state, to read.
    pub(crate) fn state(&self) -> std::cell::Ref<'_, State> {
        self.w.st.borrow()
    }

    /// The state, to change (verify's snapshots of the hardware around an event).
    pub(crate) fn state_mut(&self) -> std::cell::RefMut<'_, State> {
        self.w.st.borrow_mut()
    }

    /// Whether actor `a` is in the middle of an action.
    pub(crate) fn busy(&self, a: ActorId) -> bool {
        self.scripts[a as usize].is_some()
    }

    /// The number of actors.
    pub(crate) fn actors(&self) -> usize {
        self.scripts.len()
    }

    /// Ops applied so far.
    pub(crate) fn ops_applied(&self) -> usize {
        self.ops_applied
    }

    /// Sets the op count, after the hardware was restored to what it was that many ops ago
    /// (verify's snapshots around an event, which touches nothing else).
    pub(crate) fn set_ops_applied(&mut self, n: usize) {
        self.ops_applied = n;
        self.w.st.borrow_mut().m.log.step = n as u32;
    }

    /// Steps busy actors round-robin until all are idle, then audits. Stops early, without the
    /// audit, when actors are stuck: a round in which none could run or every one that ran only
    /// waited again ([`Cx::wait`]) would repeat forever.
    pub fn finish(&mut self) {
        let n = self.scripts.len();
        let mut polls = 0;
        let mut step = self.ops_applied as u32;
        while !self.stopped() && polls < MAX_DRAIN_POLLS {
            // A round steps each actor busy when it starts. Only an actor's own step ends its
            // script and none starts while draining, so those are the ones busy at their turn.
            let mut busy = false;
            let mut progressed = false;
            for a in 0..n as ActorId {
                if self.scripts[a as usize].is_none() {
                    continue;
                }
                busy = true;
                if self.stopped() {
                    break;
                }
                let cpu = self.w.st.borrow().sched.cpu_of(a).unwrap_or(0);
                step += 1;
                self.w.st.borrow_mut().m.log.step = step;
                if self.place(a, cpu) && self.poll(a) {
                    progressed = true;
                }
                polls += 1;
            }
            if !busy || !progressed {
                break;
            }
        }
        {
            let mut st = self.w.st.borrow_mut();
            st.m.log.step = step + 1;
            st.m.log.actor = None;
            if st.violation.is_some() || self.scripts.iter().any(|s| s.is_some()) {
                return;
            }
        }
        // A user view that reads wrong on a CPU running another address space is judged as a
        // thread of it would find it there: after `switch_mm` (a RISC-V hart marked stale
        // fences its I-cache then). The switch is made on a copy of the state, swapped in for
        // the time of the check; the run's own state comes back, with the violation if the
        // view is still wrong after the switch.
        let mut settled = Vec::new();
        loop {
            let pending = audit(&mut self.w.st.borrow_mut(), &settled);
            let Some((mm, cpu)) = pending else {
                return;
            };
            let copy = self.w.st.borrow().clone();
            let own = std::mem::replace(&mut *self.w.st.borrow_mut(), copy);
            self.switch_for_audit(mm, cpu);
            user_view_is_right(&mut self.w.st.borrow_mut(), mm, cpu, true);
            let violation = self.w.st.borrow_mut().violation.take();
            *self.w.st.borrow_mut() = own;
            if violation.is_some() {
                self.w.st.borrow_mut().violation = violation;
                return;
            }
            settled.push((mm, cpu));
        }
    }

    /// Switches `cpu` to address space `mm` as scheduling a thread of it there would
    /// ([`Runner::place`]): the arch's `switch_mm`, run by the first actor, borrowed onto `cpu`.
    fn switch_for_audit(&mut self, mm: MmId, cpu: CpuId) {
        let cur = self.w.st.borrow().m.cpus[cpu as usize].mm;
        let home = self.w.st.borrow().sched.actor(0).cpu;
        self.w.st.borrow_mut().sched.borrow_cpu(0, cpu);
        let cx = self.cx(0);
        poll_to_completion(self.w.arch.switch_mm(&cx, cur, mm), "switch_mm");
        let mut st = self.w.st.borrow_mut();
        st.m.set_cpu_mm(cpu, Some(mm));
        st.k.mms[mm as usize].cpumask |= 1 << cpu;
        st.sched.actor_mut(0).cpu = home;
    }

    /// The result.
    pub fn report(mut self) -> Report {
        let report = {
            let mut st = self.w.st.borrow_mut();
            let step = st.m.log.step;
            let mut events = st.m.log.take();
            let mut violation = st.violation.take();
            if let Some(v) = violation.as_mut() {
                let line = st.m.config().dcache.line.max(st.m.config().icache.line) as u64;
                let pa_line = v.pa & !(line - 1);
                v.history = events
                    .iter()
                    .filter(|e| e.event.touches(pa_line, line))
                    .cloned()
                    .collect();
            }
            events.shrink_to_fit();
            let actors = if violation.is_some() || st.m.log.enabled() {
                st.sched.actors().iter().map(|a| a.name.clone()).collect()
            } else {
                Vec::new()
            };
            Report {
                violation,
                ops_applied: self.ops_applied,
                steps: step,
                events,
                actors,
                paths_started: self.paths_started,
            }
        };
        // The scripts hold the only other handles on the world.
        self.scripts.clear();
        if let Ok(w) = Rc::try_unwrap(self.w) {
            recycle(w.st.into_inner());
        }
        report
    }
}

fn poll_to_completion<F: Future<Output = ()>>(fut: F, what: &str) {
    let mut fut = std::pin::pin!(fut);
    let mut cx = Context::from_waker(Waker::noop());
    match fut.as_mut().poll(&mut cx) {
        Poll::Ready(()) => {}
        Poll::Pending => panic!("{what} must not yield"),
    }
}

thread_local! {
    /// The audit's buffers of observed bytes, kept between runs for their allocations.
    static AUDIT_BUFFERS: std::cell::Cell<(Vec<Observed>, Vec<Observed>)> =
        const { std::cell::Cell::new((Vec::new(), Vec::new())) };
}

/// The first byte of the page at `base` whose newest value is neither in memory nor in any
/// D-line ([`crate::world::survives`]) and whose memory value is not the other side of a
/// contest; a line at a time, finding the lines that hold it once.
fn first_lost_byte(st: &State, base: Pa, page: u64) -> Option<Pa> {
    let line = st.m.config().dcache.line as u64;
    let mut holders: Vec<&[Stamp]> = Vec::new();
    for lpa in (base..base + page).step_by(line as usize) {
        let mem = st.m.memory_bytes(lpa, line);
        let want = st.o.intended_bytes(lpa, line);
        if mem == want {
            continue;
        }
        holders.clear();
        for c in &st.m.cpus {
            holders.extend(c.d.slots_holding(lpa).map(|s| c.d.data(s)));
        }
        for i in 0..line as usize {
            let pa = lpa + i as u64;
            if mem[i] == want[i]
                || holders.iter().any(|d| d[i] == want[i])
                || st.o.contested(pa) == Some(mem[i])
            {
                continue;
            }
            debug_assert!(!crate::world::survives(st, pa));
            return Some(pa);
        }
    }
    None
}

/// The end-of-run audit: lost writes, stale dirty lines, stale user views. Sets the violation
/// it finds; returns an address space and a CPU that runs another one, not in `settled`, on
/// which a user view of that address space reads wrong now: whether it is a violation depends
/// on what the arch's `switch_mm` does first (see [`Runner::finish`]).
pub fn audit(st: &mut State, settled: &[(MmId, CpuId)]) -> Option<(MmId, CpuId)> {
    let page = st.m.page_size() as u64;
    let frames = st.m.config().frames();
    // 1. The newest value of every live byte must still exist somewhere, unless memory holds
    // the other value of two racing writes, which may as well have landed last.
    for pfn in 0..frames {
        if !st.o.is_live(pfn) {
            continue;
        }
        let base = pfn as u64 * page;
        if st.m.memory_bytes(base, page) == st.o.intended_bytes(base, page) {
            // Memory holds every newest value.
            continue;
        }
        if let Some(pa) = first_lost_byte(st, base, page) {
            let obs = st.m.memory(pa);
            let v = crate::world::violation_at(
                st,
                pa,
                obs,
                crate::event::Source::Memory,
                0,
                AliasKind::Unmapped,
                crate::oracle::Kind::LostWrite,
                "end-of-run audit",
            );
            st.violation = Some(v);
            return None;
        }
    }
    // 2. No dirty line may hold an older value than the intended one.
    for (cpu, slot, lpa, lva) in st.m.dirty_lines() {
        let data = st.m.cpus[cpu as usize].d.data(slot);
        if data == st.o.intended_bytes(lpa, data.len() as u64) {
            // Every byte is the newest value, which passes every judgement.
            continue;
        }
        let line = data.to_vec();
        for (i, value) in line.into_iter().enumerate() {
            let pa = lpa + i as u64;
            if st.o.judge(pa, value, ReadKind::DirtyLine, None).is_err() {
                let from = crate::event::Source::Cache {
                    cpu,
                    side: Side::D,
                    slot,
                    dirty: true,
                    line_va: lva,
                };
                let v = crate::world::violation_at(
                    st,
                    pa,
                    value,
                    from,
                    lva + i as u64,
                    AliasKind::of(lva, page as u32),
                    crate::oracle::Kind::LostWrite,
                    "end-of-run audit",
                );
                st.violation = Some(v);
                return None;
            }
        }
    }
    // 3. Every live user mapping reads the intended values, on every CPU that could run it.
    let vivt = st.m.config().dcache.virtually_tagged();
    let ncpus = st.m.config().cpus;
    for mm in 0..st.k.mms.len() as u16 {
        if !st.k.mms[mm as usize].alive {
            continue;
        }
        for cpu in 0..ncpus {
            let here = st.m.cpus[cpu as usize].mm == Some(mm);
            if (vivt && !here) || settled.contains(&(mm, cpu)) {
                continue;
            }
            if !user_view_is_right(st, mm, cpu, here) {
                return Some((mm, cpu));
            }
            if st.violation.is_some() {
                return None;
            }
        }
    }
    None
}

/// Phase 3 of the audit for one address space on one CPU: every byte of every live user
/// mapping of `mm` must read its intended value on `cpu`, through the D-side and, where
/// executable, the I-side. A wrong byte sets the violation when `cpu` runs `mm` now (`here`);
/// otherwise the function returns false without judging: a thread of `mm` reaches that CPU
/// only through `switch_mm`, whose work the caller must do first.
fn user_view_is_right(st: &mut State, mm: MmId, cpu: CpuId, here: bool) -> bool {
    let page = st.m.page_size() as u64;
    let (mut seen_d, mut seen_i) = AUDIT_BUFFERS.take();
    // Every mapped page in address order (`Mm::pages`); the audit changes no VMA.
    for vi in 0..st.k.mms[mm as usize].vmas.len() {
        let vma = st.k.mms[mm as usize].vmas[vi];
        for vpn in vma.start..vma.end {
            let pte = st.m.pte(Some(mm), vpn);
            if !pte.present || !pte.cacheable {
                continue;
            }
            let (va0, pa0) = (vpn * page, pte.pfn as u64 * page);
            // A page whose every byte reads its intended value passes every judgement.
            let want = st.o.intended_bytes(pa0, page);
            if st.m.peek_page_is(cpu, va0, pa0, Some(mm), Side::D, want)
                && (!pte.exec || st.m.peek_page_is(cpu, va0, pa0, Some(mm), Side::I, want))
            {
                continue;
            }
            let private_file = st.k.is_private_file_mapping(Some(mm), vpn, pte.pfn);
            // What each byte reads, byte by byte as a user would see it now.
            st.m.peek_page(cpu, va0, pa0, Some(mm), Side::D, &mut seen_d);
            if pte.exec {
                st.m.peek_page(cpu, va0, pa0, Some(mm), Side::I, &mut seen_i);
            }
            let sides = [
                (&seen_d, ReadKind::UserLoad { private_file }),
                (&seen_i, ReadKind::UserFetch { private_file }),
            ];
            let sides = &sides[..if pte.exec { 2 } else { 1 }];
            for off in 0..page {
                let (va, pa) = (va0 + off, pa0 + off);
                for &(seen, how) in sides {
                    let obs = seen[off as usize];
                    if let Err(kind) = st.o.judge(pa, obs.value, how, None) {
                        if !here {
                            AUDIT_BUFFERS.set((seen_d, seen_i));
                            return false;
                        }
                        let mut v = crate::world::violation_at(
                            st,
                            pa,
                            obs.value,
                            obs.from,
                            va,
                            AliasKind::User,
                            kind,
                            "end-of-run audit",
                        );
                        v.cpu = Some(cpu);
                        st.violation = Some(v);
                        AUDIT_BUFFERS.set((seen_d, seen_i));
                        return true;
                    }
                }
            }
        }
    }
    AUDIT_BUFFERS.set((seen_d, seen_i));
    true
}

/// Runs `ops` on `preset` with the shipped arch it names and the shipped paths.
///
/// # Panics
/// If the preset names no shipped arch (use a [`Model`] for your own).
pub fn run(preset: &Preset, ops: &[Op], opts: RunOptions) -> Report {
    crate::model::shipped_cached(preset).run(ops, opts)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernel::KernelState;

    /// A thread that waits for a lock nobody will release: the drain stops at the first round
    /// that changes nothing, without an audit, instead of spinning to [`MAX_DRAIN_POLLS`].
    #[test]
    fn the_drain_stops_when_every_busy_actor_only_waits() {
        let p = crate::preset::by_name("coherent").expect("a shipped preset");
        let m = Model::new(p, crate::arch::null::Null);
        let mut r = Runner::new(&m, RunOptions { log: true });
        {
            let mut st = r.w.st.borrow_mut();
            let thread = (0..st.sched.len() as ActorId)
                .find(|&a| st.sched.actor(a).kind == ActorKind::Thread { pid: 0 })
                .expect("a thread of process 0");
            let mm = st.k.procs[0];
            // An actor that is not running holds the address space's mmap_lock.
            let holder = (0..st.sched.len() as ActorId)
                .find(|&a| a != thread)
                .expect("another actor");
            st.k.locks[KernelState::mmap_lock(mm)] = Some(holder);
            drop(st);
            let store = m.paths().catalog().index("store").expect("a store path");
            r.apply(&Op::Start {
                actor: thread,
                cpu: 0,
                action: Action {
                    path: store,
                    args: [0; crate::paths::MAX_ARGS],
                },
            });
        }
        assert!(r.scripts.iter().any(|s| s.is_some()), "the store waits");
        r.finish();
        let report = r.report();
        assert!(report.violation.is_none());
        assert!(
            report.steps < 8,
            "the drain took {} steps for one waiting thread",
            report.steps
        );
    }
}
