//! Actors, CPUs and who may step next.
//!
//! An actor is a user thread, a kernel thread or an interrupt context. Each runs one action at a
//! time as a script of steps (an `async` block whose `.await` points are the steps' ends). The
//! input picks the actor to step and the CPU it should run on; the scheduler decides whether
//! that is possible: an actor with preemption disabled stays on its CPU and keeps it, an idle or
//! preemptible actor can be displaced, an interrupt nests on top of whatever runs on its CPU and
//! blocks it until it returns. This module knows nothing of caches or flush APIs; it calls the
//! arch's `switch_mm` when a CPU changes address space.

use crate::addr::{ActorId, CpuId, MmId, MAX_CPUS};
use crate::canon::Canon;
use serde::Serialize;

/// What an actor is.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum ActorKind {
    /// A thread of a user process.
    Thread {
        /// Its process.
        pid: u8,
    },
    /// A kernel thread (no user address space of its own).
    Kthread,
    /// Interrupt context.
    Irq,
}

/// The scheduler's view of one actor.
#[derive(Debug)]
pub struct Actor {
    /// What it is.
    pub kind: ActorKind,
    /// Whether it exists (a fork child's slot is dead until the fork).
    pub alive: bool,
    /// Whether it is in the middle of an action.
    pub busy: bool,
    /// The CPU it runs on, if any.
    pub cpu: Option<CpuId>,
    /// Preemption-disable depth; non-zero pins it to its CPU.
    pub preempt: u32,
    /// Spinlocks held; interrupts are off while non-zero (every lock is taken irqsave).
    pub irqs_off: u32,
    /// The kernel path or user action it is in, for reports.
    pub path: &'static str,
    /// The kernel path its current action started (the registry's name).
    pub action: &'static str,
    /// The step its current action started in.
    pub op_start: u32,
    /// Whether it is copying a page-cache page for a private mapping (a COW of a file page):
    /// its reads see the file as a private mapping does.
    pub private_copy: bool,
    /// The address space a copy-on-write copy it is making is for (or whose mapping KSM's
    /// `pages_identical` is deciding to replace): its reads of the source need not see a store
    /// another address space's thread made during a fork window.
    pub copy_for: Option<crate::addr::MmId>,
    /// Its display name (T0, K1, IRQ).
    pub name: String,
    /// A dead thread slot that a fork in progress will give to its child.
    pub reserved: bool,
    /// Whether its last step did nothing but find, once more, that what it waits for has not
    /// happened (see [`crate::world::Cx::wait`]).
    pub stalled: bool,
    /// Whether its last step ended waiting for another actor (a lock, a free pkmap slot): it
    /// is not running, so switching to another actor preempts nothing.
    pub waiting: bool,
    /// The step numbers its current action keeps to compare others' steps with
    /// ([`crate::world::Cx::mark_step`]), besides the step it started in.
    pub marks: Vec<u32>,
}

crate::reuse::clone_reusing!(Actor {
    kind,
    alive,
    busy,
    cpu,
    preempt,
    irqs_off,
    path,
    action,
    op_start,
    private_copy,
    copy_for,
    name,
    reserved,
    stalled,
    waiting,
    marks
});

impl Actor {
    /// An idle actor of `kind`, alive or not yet (a fork child's slot).
    pub fn idle(kind: ActorKind, alive: bool, name: String) -> Actor {
        Actor {
            kind,
            alive,
            busy: false,
            cpu: None,
            preempt: 0,
            irqs_off: 0,
            path: "idle",
            action: "idle",
            op_start: 0,
            private_copy: false,
            copy_for: None,
            name,
            reserved: false,
            stalled: false,
            waiting: false,
            marks: Vec::new(),
        }
    }
}

/// Actors and what each CPU runs.
#[derive(Debug)]
pub struct Sched {
    actors: Vec<Actor>,
    current: [Option<ActorId>; MAX_CPUS],
    irq: [Option<ActorId>; MAX_CPUS],
    ncpus: u8,
}

crate::reuse::clone_reusing!(Sched {
    actors,
    current,
    irq,
    ncpus
});

/// The outcome of asking to run an actor on a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Placement {
    /// It runs on this CPU now; `switched` says it was switched in (not already running there).
    On { cpu: CpuId, switched: bool },
    /// No CPU can take it now.
    Blocked,
}

impl Sched {
    /// A scheduler for `ncpus` CPUs and these actors.
    pub fn new(ncpus: u8, actors: Vec<Actor>) -> Sched {
        Sched {
            actors,
            current: [None; MAX_CPUS],
            irq: [None; MAX_CPUS],
            ncpus,
        }
    }

    /// Number of actors.
    pub fn len(&self) -> usize {
        self.actors.len()
    }

    /// Whether there are no actors.
    pub fn is_empty(&self) -> bool {
        self.actors.is_empty()
    }

    /// An actor.
    pub fn actor(&self, a: ActorId) -> &Actor {
        &self.actors[a as usize]
    }

    /// An actor, mutably.
    pub fn actor_mut(&mut self, a: ActorId) -> &mut Actor {
        &mut self.actors[a as usize]
    }

    /// All actors.
    pub fn actors(&self) -> &[Actor] {
        &self.actors
    }

    /// The CPU an actor runs on.
    pub fn cpu_of(&self, a: ActorId) -> Option<CpuId> {
        self.actors[a as usize].cpu
    }

    /// The task running on a CPU (not counting an interrupt on top of it).
    pub fn current(&self, cpu: CpuId) -> Option<ActorId> {
        self.current[cpu as usize]
    }

    /// Temporarily places an actor on another CPU (inter-processor interrupt handlers).
    pub fn borrow_cpu(&mut self, a: ActorId, cpu: CpuId) {
        self.actors[a as usize].cpu = Some(cpu);
    }

    fn displaceable(&self, cpu: CpuId) -> bool {
        if self.irq[cpu as usize].is_some() {
            return false;
        }
        match self.current[cpu as usize] {
            None => true,
            Some(c) => {
                let a = &self.actors[c as usize];
                !a.busy || a.preempt == 0
            }
        }
    }

    /// Puts actor `a` on a CPU, preferring `want`, if the rules allow. An actor already running
    /// stays where it is unless it may migrate; otherwise it takes the first CPU, starting from
    /// `want`, whose current actor can be displaced.
    pub fn place(&mut self, a: ActorId, want: CpuId) -> Placement {
        let p = self.placement(a, want);
        if let Placement::On {
            cpu,
            switched: true,
        } = p
        {
            if self.actors[a as usize].kind == ActorKind::Irq {
                self.irq[cpu as usize] = Some(a);
                self.actors[a as usize].cpu = Some(cpu);
            } else {
                if let Some(c) = self.actors[a as usize].cpu {
                    self.current[c as usize] = None;
                }
                self.switch_in(a, cpu);
            }
        }
        p
    }

    /// Where [`Sched::place`] would put `a`, changing nothing: the CPUs that different `want`s
    /// give are the placements an input can choose among.
    pub fn placement(&self, a: ActorId, want: CpuId) -> Placement {
        let n = self.ncpus;
        let want = want % n;
        let actor = &self.actors[a as usize];
        if actor.kind == ActorKind::Irq {
            if let Some(c) = actor.cpu {
                return Placement::On {
                    cpu: c,
                    switched: false,
                };
            }
            // An interrupt nests on top of whatever runs, unless another interrupt is there or
            // that task has interrupts off.
            for i in 0..n {
                let c = (want + i) % n;
                let irqs_off =
                    self.current[c as usize].is_some_and(|t| self.actors[t as usize].irqs_off > 0);
                if self.irq[c as usize].is_none() && !irqs_off {
                    return Placement::On {
                        cpu: c,
                        switched: true,
                    };
                }
            }
            return Placement::Blocked;
        }
        if let Some(c) = actor.cpu {
            if self.irq[c as usize].is_some() {
                return Placement::Blocked;
            }
            let pinned = actor.busy && actor.preempt > 0;
            if c == want || pinned || !self.displaceable(want) {
                return Placement::On {
                    cpu: c,
                    switched: false,
                };
            }
            return Placement::On {
                cpu: want,
                switched: true,
            };
        }
        for i in 0..n {
            let c = (want + i) % n;
            if self.displaceable(c) {
                return Placement::On {
                    cpu: c,
                    switched: true,
                };
            }
        }
        Placement::Blocked
    }

    /// The step numbers the busy actors' actions compare others' steps with: the steps they
    /// started in and their marks (see [`crate::canon`]).
    pub(crate) fn thresholds(&self) -> Vec<u32> {
        self.actors
            .iter()
            .filter(|a| a.busy)
            .flat_map(|a| std::iter::once(a.op_start).chain(a.marks.iter().copied()))
            .collect()
    }

    /// Writes the canonical form of the scheduler (see [`crate::canon`]): each actor's
    /// liveness, CPU, preemption and interrupt depths, path and copy modes, and for a busy one
    /// the step it started in and its marks; what each CPU runs. Whether an actor's last step
    /// stalled or waited only matters to whoever counts steps (the drain, verify's preemption
    /// bound), and is no part of it.
    pub(crate) fn canon(&self, c: &mut Canon<'_>) {
        c.part(30);
        for a in &self.actors {
            c.word(
                a.alive as u64
                    | (a.busy as u64) << 1
                    | (a.private_copy as u64) << 2
                    | (a.reserved as u64) << 3
                    | a.cpu.map_or(0, |c| c as u64 + 1) << 8
                    | a.copy_for.map_or(0, |m| m as u64 + 1) << 16,
            );
            c.word(a.preempt as u64 | (a.irqs_off as u64) << 32);
            c.text(a.path);
            c.text(a.action);
            if a.busy {
                c.step(a.op_start);
                c.word(a.marks.len() as u64);
                for &m in &a.marks {
                    c.step(m);
                }
            }
        }
        for cpu in 0..self.ncpus as usize {
            c.word(
                self.current[cpu].map_or(0, |a| a as u64 + 1)
                    | self.irq[cpu].map_or(0, |a| a as u64 + 1) << 16,
            );
        }
    }

    /// The number of CPUs.
    pub fn ncpus(&self) -> u8 {
        self.ncpus
    }

    fn switch_in(&mut self, a: ActorId, cpu: CpuId) {
        if let Some(prev) = self.current[cpu as usize] {
            self.actors[prev as usize].cpu = None;
        }
        self.current[cpu as usize] = Some(a);
        self.actors[a as usize].cpu = Some(cpu);
    }

    /// An interrupt actor finished: its CPU resumes what it interrupted.
    pub fn irq_done(&mut self, a: ActorId) {
        if let Some(c) = self.actors[a as usize].cpu.take() {
            if self.irq[c as usize] == Some(a) {
                self.irq[c as usize] = None;
            }
        }
    }

    /// Kills an actor (process exit): it leaves its CPU.
    pub fn kill(&mut self, a: ActorId) {
        if let Some(c) = self.actors[a as usize].cpu.take() {
            if self.current[c as usize] == Some(a) {
                self.current[c as usize] = None;
            }
        }
        self.actors[a as usize].alive = false;
    }

    /// The first dead thread slot, for a fork child.
    pub fn free_thread_slot(&self) -> Option<ActorId> {
        self.actors
            .iter()
            .position(|a| !a.alive && !a.reserved && matches!(a.kind, ActorKind::Thread { .. }))
            .map(|i| i as ActorId)
    }

    /// The address space an actor needs loaded, if any.
    pub fn mm_needed(&self, a: ActorId, mm_of_pid: impl Fn(u8) -> MmId) -> Option<MmId> {
        match self.actors[a as usize].kind {
            ActorKind::Thread { pid } => Some(mm_of_pid(pid)),
            _ => None,
        }
    }
}
