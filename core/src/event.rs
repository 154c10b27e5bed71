//! The event log: what happened at each step, for timelines, explanations and determinism checks.
//!
//! Logging is off in fuzzing runs (nothing is allocated) and on in replays. Events are plain data
//! with a `Display` that reads like a line of a mail. This module knows nothing of how events are
//! produced.

use crate::addr::{ActorId, AliasKind, CpuId, Pa, Stamp, Va};
use crate::cache::Slot;
use std::fmt;

/// Which cache of a CPU.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Side {
    /// The data cache.
    D,
    /// The instruction cache.
    I,
}

/// Where an observed value came from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Source {
    /// A cache line.
    Cache {
        /// Whose cache.
        cpu: CpuId,
        /// Which of its caches.
        side: Side,
        /// Where in it.
        slot: Slot,
        /// Whether the line was dirty.
        dirty: bool,
        /// The virtual line address the line was filled through.
        line_va: Va,
    },
    /// Memory.
    Memory,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Source::Cache {
                cpu,
                side,
                slot,
                dirty,
                line_va,
            } => write!(
                f,
                "CPU{cpu} {}-cache set {} way {} ({}, filled through {:#x})",
                if *side == Side::D { "D" } else { "I" },
                slot.set,
                slot.way,
                if *dirty { "dirty" } else { "clean" },
                line_va
            ),
            Source::Memory => write!(f, "memory"),
        }
    }
}

/// One thing that happened.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Event {
    /// An actor began a step of its script on a CPU.
    Step {
        /// Who.
        actor: ActorId,
        /// Where.
        cpu: CpuId,
    },
    /// A kernel path or flush API was entered.
    Call {
        /// The kernel's name for it.
        name: &'static str,
        /// Its arguments, as text.
        args: String,
    },
    /// A free-form note from a kernel path.
    Note(String),
    /// A CPU read a byte.
    Load {
        cpu: CpuId,
        va: Va,
        pa: Pa,
        alias: AliasKind,
        value: Stamp,
        from: Source,
        fetch: bool,
    },
    /// A CPU wrote a byte.
    Store {
        cpu: CpuId,
        va: Va,
        pa: Pa,
        alias: AliasKind,
        value: Stamp,
        hit: bool,
    },
    /// A line was filled.
    Fill {
        cpu: CpuId,
        side: Side,
        slot: Slot,
        va: Va,
        pa: Pa,
        speculative: bool,
    },
    /// A dirty line was written back to memory.
    WriteBack {
        cpu: CpuId,
        slot: Slot,
        va: Va,
        pa: Pa,
        why: &'static str,
    },
    /// A line was dropped.
    Drop {
        cpu: CpuId,
        side: Side,
        slot: Slot,
        va: Va,
        pa: Pa,
        dirty: bool,
        why: &'static str,
    },
    /// A TLB entry was filled.
    TlbFill { cpu: CpuId, va: Va, pa: Pa },
    /// TLB entries were invalidated.
    TlbFlush { cpu: CpuId, what: String },
    /// A page-table entry changed.
    Pte { va: Va, what: String },
    /// The device read or wrote memory.
    Device { pa: Pa, len: u32, write: bool },
}

impl Event {
    /// The physical line addresses this event touches, for a line's history.
    pub fn touches(&self, pa_line: Pa, line: u64) -> bool {
        let same = |pa: Pa| pa & !(line - 1) == pa_line;
        match self {
            Event::Load { pa, .. } | Event::Store { pa, .. } => same(*pa),
            Event::Fill { pa, .. } | Event::WriteBack { pa, .. } | Event::Drop { pa, .. } => {
                same(*pa)
            }
            Event::Device { pa, len, .. } => *pa <= pa_line && pa_line < *pa + *len as u64,
            _ => false,
        }
    }
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Step { actor, cpu } => write!(f, "actor {actor} steps on CPU{cpu}"),
            Event::Call { name, args } => write!(f, "{name}({args})"),
            Event::Note(s) => write!(f, "{s}"),
            Event::Load {
                va,
                alias,
                value,
                from,
                fetch,
                ..
            } => write!(
                f,
                "{} {:#x} ({}) = #{value} from {from}",
                if *fetch { "fetch" } else { "load" },
                va,
                alias.name()
            ),
            Event::Store {
                va,
                alias,
                value,
                hit,
                ..
            } => write!(
                f,
                "store #{value} to {:#x} ({}){}",
                va,
                alias.name(),
                if *hit { "" } else { ", line miss" }
            ),
            Event::Fill {
                side,
                slot,
                va,
                pa,
                speculative,
                ..
            } => write!(
                f,
                "{}{}-line {:#x} -> pa {:#x} filled into set {} way {}",
                if *speculative { "speculative " } else { "" },
                if *side == Side::D { "D" } else { "I" },
                va,
                pa,
                slot.set,
                slot.way
            ),
            Event::WriteBack { va, pa, why, .. } => write!(
                f,
                "dirty line {:#x} written back to pa {:#x} ({why})",
                va, pa
            ),
            Event::Drop {
                side,
                va,
                pa,
                dirty,
                why,
                ..
            } => write!(
                f,
                "{}{}-line {:#x} (pa {:#x}) dropped ({why})",
                if *dirty { "DIRTY " } else { "" },
                if *side == Side::D { "D" } else { "I" },
                va,
                pa
            ),
            Event::TlbFill { va, pa, .. } => write!(f, "TLB entry {:#x} -> {:#x}", va, pa),
            Event::TlbFlush { what, .. } => write!(f, "TLB flush {what}"),
            Event::Pte { va, what } => write!(f, "pte {:#x}: {what}", va),
            Event::Device { pa, len, write } => {
                write!(
                    f,
                    "device {} {len} bytes at pa {:#x}",
                    if *write { "writes" } else { "reads" },
                    pa
                )
            }
        }
    }
}

/// An event stamped with the step it happened in.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Logged {
    /// The global step number.
    pub step: u32,
    /// The actor whose step it was (`None` for hardware events and end-of-run work).
    pub actor: Option<ActorId>,
    /// The event.
    pub event: Event,
}

/// The log of a run: empty and free when disabled.
#[derive(Debug, Default)]
pub struct Log {
    enabled: bool,
    /// The current step number.
    pub step: u32,
    /// The actor whose step is running.
    pub actor: Option<ActorId>,
    events: Vec<Logged>,
}

crate::reuse::clone_reusing!(Log {
    enabled,
    step,
    actor,
    events
});

impl Log {
    /// A log that records if `enabled`.
    pub fn new(enabled: bool) -> Log {
        Log {
            enabled,
            ..Log::default()
        }
    }

    /// Whether events are recorded.
    #[inline]
    pub fn enabled(&self) -> bool {
        self.enabled
    }

    /// Records an event built lazily, so disabled logs cost nothing.
    #[inline]
    pub fn push(&mut self, f: impl FnOnce() -> Event) {
        if self.enabled {
            let event = f();
            self.events.push(Logged {
                step: self.step,
                actor: self.actor,
                event,
            });
        }
    }

    /// Everything recorded.
    pub fn events(&self) -> &[Logged] {
        &self.events
    }

    /// Takes the recorded events.
    pub fn take(&mut self) -> Vec<Logged> {
        std::mem::take(&mut self.events)
    }
}
