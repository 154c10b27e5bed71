//! Seed corpora and the pieces of a fuzz campaign that need no clock: the seed inputs committed
//! under `corpus/`, the pure-random baseline that `flushfuzz bench` compares the fuzzer with, and
//! a reader for libFuzzer's output ([`libfuzzer`]), which `flushfuzz hunt` uses to follow a
//! campaign.
//!
//! Seeds for the `races` target are realistic workloads for each race preset, written as short
//! scripts in trace syntax (see [`HAND_SEEDS`]), plus random sequences from a seeded
//! [`Xoshiro256PlusPlus`]. Each is encoded with [`crate::encode::encode_input`] as the raw bytes
//! libFuzzer feeds the target. No seed produces a violation on its preset: the fuzzer has to find
//! the interleaving, the colour or the hardware event that makes the race. Seeds for the
//! `trace_parser` target are the committed reproducers, variants of them (canonical text, actors
//! by number, broken headers) and the race seeds as trace text.
//!
//! Everything here is a pure function of its arguments: `flushfuzz corpus` regenerates the same
//! files byte for byte, and `flushfuzz corpus --check` verifies the committed ones.

use crate::choice::{OpSource, Random};
use crate::event::Event;
use crate::harness::RACE_PRESETS;
use crate::op::Op;
use crate::preset::{self, Preset};
use crate::run::{run, RunOptions};
use crate::trace::Trace;
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;
use std::ops::RangeInclusive;

/// The folder (under the corpus root) of seeds for the `races` fuzz target.
pub const RACES_DIR: &str = "races";
/// The folder (under the corpus root) of seeds for the `trace_parser` fuzz target.
pub const TRACE_PARSER_DIR: &str = "trace_parser";
/// The number of ops of a random sequence (seeds and the random baseline).
pub const RANDOM_LEN: RangeInclusive<usize> = 10..=80;
/// Random seeds per race preset.
pub const RANDOM_SEEDS_PER_PRESET: usize = 6;
/// The seed of the random seeds' generator (per preset, it is mixed with the preset's index).
pub const CORPUS_RNG_SEED: u64 = 0x666c_7573_6866_757a;
/// The most steps `run` adds to let an action finish.
const MAX_RUN_STEPS: usize = 64;

/// Hand-picked workloads, per race preset. One script per string; one command per line:
///
/// - `run <start op>`: start the action, then step the actor until it is idle again;
/// - `start <start op>`: start the action only (its first step);
/// - `step <actor> <cpu>`: one step.
///
/// Ops are written as in trace files (`start T0 cpu0 store page=1 off=0`, without `start` after
/// `run`). The workloads run the paths of each race the ordinary way (one action after the other,
/// or with other actors' steps in between at harmless places) and produce no violation.
pub const HAND_SEEDS: &[(&str, &[&str])] = &[
    (
        "nfs-vmap-alias",
        &[
            // A readdir whose vmap lands at the pages' own colour, then a second one.
            "run K0 cpu0 readdir at=0 pages=0\nrun K1 cpu0 readdir at=4 pages=0",
            // User work, a driver buffer written and read through kmap, a readdir.
            "run T0 cpu0 store page=0 off=0\nrun T0 cpu0 load page=0 off=0\n\
             run K1 cpu0 kmap-write buf=0 off=0\nrun K1 cpu0 kmap-read buf=0 off=0\n\
             run K0 cpu0 readdir at=1 pages=0",
            // File reads into user memory while a readdir waits for its reply.
            "start K0 cpu0 readdir at=0 pages=0\nrun T0 cpu0 read file=0 index=0 off=0 page=1\n\
             step K0 cpu0\nrun T1 cpu0 load page=1 off=0\nstep K0 cpu0\nstep K0 cpu0\n\
             step K0 cpu0",
            // Two-page readdir and a shared-file write.
            "run T0 cpu0 store page=8 off=0\nrun K0 cpu0 readdir at=1 pages=1\n\
             run T0 cpu0 write file=1 index=0 off=0 page=8",
            // Metadata buffers written and read by block I/O through their vmalloc alias.
            "run K0 cpu0 xfs-buf-io buf=0 at=1 pages=1 write=true off=3\n\
             run K1 cpu0 xfs-buf-io buf=0 at=0 pages=0 write=false off=0\n\
             run K0 cpu0 xfs-buf-io buf=1 at=2 pages=0 write=false off=0\n\
             run K1 cpu0 kmap-write buf=0 off=0\n\
             run K0 cpu0 xfs-buf-io buf=1 at=2 pages=0 write=true off=60",
            // A ring buffer mapped into the process: the kernel writes a record the user
            // reads, the user writes what the kernel reads back.
            "run T0 cpu0 ring-mmap ring=0 pages=1 at=5 write=true\n\
             run K0 cpu0 ring-output ring=0 page=1 off=2\nrun T0 cpu0 load page=9 off=2\n\
             run T0 cpu0 store page=8 off=9\nrun K1 cpu0 ring-read ring=0 page=0 off=9",
            // The shared file read ahead (a large folio where the kernel builds them, single pages
            // on ARMv6), written and read through the mapping, mapped around a fault, written by
            // write().
            "run T0 cpu0 readahead file=1 index=0 pages=4\nrun T0 cpu0 fault-around page=9 off=0\n\
             run T0 cpu0 store page=8 off=0\nrun T1 cpu0 load page=10 off=0\n\
             run T1 cpu0 write file=1 index=2 off=0 page=0\nrun T0 cpu0 load page=10 off=0",
            // A record written into a file mapped shared, spliced into the pipe and read out by
            // another thread; a byte written into the pipe, spliced into the file, read back
            // through the mapping.
            "run T0 cpu0 mmap file=0 pgoff=0 at=13 shared=true exec=false fixed=false\n\
             run T0 cpu0 store page=13 off=0\nrun T0 cpu0 splice-read file=0 index=1 off=0\n\
             run T1 cpu0 pipe-read page=1 off=0\nrun T1 cpu0 pipe-write page=1 off=0\n\
             run T1 cpu0 splice-write file=0 index=1 off=1\nrun T0 cpu0 load page=13 off=1",
            // Two heap pages merged by ksmd, then written again, and one unmerged.
            "run T0 cpu0 store page=0 off=0\nrun T1 cpu0 store page=1 off=8\n\
             run K0 cpu0 ksm-merge page=0 with=1\nrun T0 cpu0 load page=1 off=8\n\
             run T1 cpu0 store page=0 off=0\nrun T0 cpu0 ksm-unmerge page=1\n\
             run T0 cpu0 load page=1 off=8",
            // A debugger: the tracee writes a variable after fork, its forked tracer reads it
            // and writes another, the tracee reads that. (On a page whose copy-on-write copy
            // has another colour in the linear map, the poke falls into mainline's
            // `ptrace-write-left-dirty-at-kernel-alias`; this one's has the user's.)
            "run T0 cpu0 store page=1 off=0\nrun T1 cpu0 fork\nrun T0 cpu0 store page=1 off=1\n\
             run T2 cpu0 ptrace-peek target=0 page=1 off=1\n\
             run T2 cpu0 ptrace-poke target=0 page=1 off=2\nrun T0 cpu0 load page=1 off=2",
        ],
    ),
    (
        "gup-anon-alias",
        &[
            // A FUSE-like user reads a page the process has not touched, then the process
            // stores to it and reads it back.
            "run T0 cpu0 gup page=1 off=0 write=false\nrun T0 cpu0 store page=1 off=0\n\
             run T0 cpu0 load page=1 off=0",
            // read() and write() through user buffers; the shared file mapping.
            "run T0 cpu0 read file=0 index=1 off=0 page=2\nrun T0 cpu0 load page=2 off=0\n\
             run T1 cpu0 store page=8 off=0\nrun T1 cpu0 write file=1 index=0 off=0 page=8",
            // Direct I/O from the device into a fresh page, then user accesses.
            "run T0 cpu0 direct-io page=3 to-device=false\nrun T0 cpu0 load page=3 off=0\n\
             run T1 cpu0 store page=0 off=0",
            // A private file mapping, loads from it, a driver buffer through kmap.
            "run T0 cpu0 mmap file=0 pgoff=0 at=0 shared=false exec=false fixed=false\n\
             run T0 cpu0 load page=4 off=0\nrun K0 cpu0 kmap-write buf=0 off=0\n\
             run T1 cpu0 store page=0 off=0",
            // Heap pages written, one migrated by compaction, read and written again.
            "run T0 cpu0 store page=1 off=0\nrun T1 cpu0 store page=2 off=8\n\
             run K0 cpu0 migrate page=0\nrun T0 cpu0 load page=1 off=0\n\
             run T0 cpu0 store page=1 off=8\nrun K1 cpu0 migrate page=1",
            // A heap page swapped out, read back ahead of the fault, then touched again.
            "run T0 cpu0 store page=2 off=0\nrun K0 cpu0 swap-out page=0\n\
             run T1 cpu0 swap-in page=2\nrun T0 cpu0 load page=2 off=0\n\
             run T0 cpu0 store page=2 off=8",
            // Bytes through the pipe: written, vmspliced from the heap, spliced from a file,
            // read into another thread's buffer and spliced into a file.
            "run T0 cpu0 store page=1 off=0\nrun T0 cpu0 pipe-write page=1 off=0\n\
             run T0 cpu0 vmsplice page=1 off=8\nrun T1 cpu0 pipe-read page=2 off=0\n\
             run T1 cpu0 splice-write file=1 index=0 off=4\n\
             run T0 cpu0 splice-read file=0 index=1 off=0\nrun T1 cpu0 pipe-read page=2 off=8\n\
             run T1 cpu0 load page=2 off=8",
        ],
    ),
    (
        "exec-icache-smp",
        &[
            // T0 on CPU0 runs a text page, then T1 on CPU1 runs it too.
            "run T0 cpu0 fetch page=4 off=0\nrun T1 cpu1 fetch page=4 off=0",
            // Loads of text pages, then fetches, on both CPUs.
            "run T0 cpu0 load page=5 off=0\nrun T0 cpu0 fetch page=5 off=0\n\
             run T1 cpu1 load page=6 off=0\nrun T1 cpu1 fetch page=6 off=0",
            // Data on both CPUs with steps of the other in between, then code.
            "start T0 cpu0 store page=0 off=0\nstart T1 cpu1 store page=1 off=0\n\
             step T0 cpu0\nstep T1 cpu1\nstep T0 cpu0\nstep T1 cpu1\nstep T0 cpu0\n\
             step T1 cpu1\nrun T1 cpu1 fetch page=7 off=0\nrun T0 cpu0 load page=1 off=0",
            // read() of an executable file's page into the heap, then running the text.
            "run T0 cpu0 read file=0 index=2 off=0 page=2\nrun T1 cpu1 fetch page=6 off=8\n\
             run T0 cpu0 fetch page=6 off=0",
            // A packet socket's ring: a packet received into a frame the user reads and hands
            // back, a frame the user fills sent from the other CPU.
            "run T0 cpu0 packet-mmap pages=1 at=5\nrun IRQ cpu1 packet-rcv frame=1\n\
             run T0 cpu0 load page=8 off=32\nrun T0 cpu0 load page=8 off=48\n\
             run T0 cpu0 store page=8 off=32\nrun T0 cpu0 store page=8 off=16\n\
             run T1 cpu1 packet-snd frame=0",
            // An io_uring instance: the user writes an SQE and the SQ tail, the kernel
            // completes it on the other CPU, the user reads the CQ tail and the CQE.
            "run T0 cpu0 uring-setup at=5\nrun T0 cpu0 store page=13 off=0\n\
             run T0 cpu0 store page=8 off=8\nrun K0 cpu1 uring-submit sqe=0 cqe=0\n\
             run T0 cpu0 load page=8 off=24\nrun T0 cpu0 load page=8 off=32\n\
             run T0 cpu0 store page=8 off=16",
            // A native AIO context: a completion on the other CPU, the process reads the tail
            // and the event, reaps it by writing the head, another completion, then
            // io_getevents from the other CPU.
            "run T0 cpu0 aio-setup at=5\nrun IRQ cpu1 aio-complete\n\
             run T0 cpu0 load page=4 off=12\nrun T0 cpu0 load page=4 off=32\n\
             run T0 cpu0 store page=4 off=8\nrun IRQ cpu1 aio-complete\n\
             run T1 cpu1 aio-getevents",
            // A module loaded and run on the other CPU, freed; a BPF program compiled and run
            // from an interrupt on the other CPU.
            "run K0 cpu0 module-load slot=0 at=3 off=5\nrun K1 cpu1 text-run slot=0 off=2\n\
             run K0 cpu0 text-free slot=0\nrun K0 cpu0 bpf-jit slot=1 at=1 off=7\n\
             run IRQ cpu1 text-run slot=1 off=0",
            // Both threads hit uprobes on both CPUs, with text run in between.
            "run T0 cpu0 uprobe-hit\nrun T1 cpu1 uprobe-hit\nrun T0 cpu1 fetch page=4 off=0\n\
             run T1 cpu0 uprobe-hit",
            // The text read ahead (a large folio where the kernel builds them), mapped around a
            // fault, run on both CPUs.
            "run T0 cpu0 readahead file=0 index=0 pages=4\nrun T0 cpu0 fault-around page=5 off=0\n\
             run T1 cpu1 fetch page=6 off=0\nrun T0 cpu0 fetch page=4 off=8",
            // A text page migrated while mapped, run on the other CPU.
            "run T0 cpu0 fetch page=4 off=0\nrun K0 cpu0 migrate page=0\n\
             run T1 cpu1 fetch page=4 off=0",
            // A debugger sets a breakpoint: its forked tracer writes the text the tracee runs,
            // from the other CPU, and the tracee runs it again.
            "run T0 cpu0 fetch page=4 off=0\nrun T1 cpu0 fork\n\
             run T2 cpu1 ptrace-poke target=0 page=4 off=0\nrun T0 cpu0 fetch page=4 off=0",
        ],
    ),
    (
        "kmap-recycle-dma",
        &[
            // Buffers written through kmap, then DMA of them, one after the other.
            "run K0 cpu0 kmap-write buf=1 off=0\nrun T1 cpu0 dma buf=1 dir=from-device\n\
             run T0 cpu0 kmap-write buf=2 off=0\nrun T0 cpu0 kmap-write buf=3 off=8",
            // DMA to the device, a sync cycle in interrupt context, atomic kmaps.
            "run K1 cpu0 dma buf=0 dir=to-device\nrun IRQ cpu0 dma-sync buf=2 dir=bidirectional\n\
             run K0 cpu0 kmap-atomic-write buf=3 off=0\nrun K0 cpu0 kmap-read buf=3 off=0",
            // kmap traffic on all highmem buffers, then a DMA read of one.
            "run T0 cpu0 kmap-write buf=1 off=0\nrun T0 cpu0 kmap-read buf=2 off=0\n\
             run K0 cpu0 kmap-write buf=3 off=0\nrun K0 cpu0 kmap-read buf=1 off=0\n\
             run T1 cpu0 dma buf=3 dir=to-device",
            // A DMA transfer with another buffer's kmap in between its steps.
            "start T1 cpu0 dma buf=2 dir=to-device\nrun K0 cpu0 kmap-write buf=1 off=0\n\
             step T1 cpu0\nstep T1 cpu0\nrun T1 cpu0 dma buf=2 dir=to-device",
            // Heap pages swapped out and in by DMA while drivers use their buffers.
            "run T0 cpu0 store page=0 off=0\nrun T0 cpu0 store page=1 off=0\n\
             run K0 cpu0 swap-out page=1\nrun K1 cpu0 kmap-write buf=1 off=0\n\
             run T1 cpu0 load page=1 off=0\nrun K0 cpu0 swap-out page=0",
        ],
    ),
    (
        "fork-cow-alias",
        &[
            // A two-thread process stores, forks, then both threads write the page.
            "run T0 cpu0 store page=1 off=0\nrun T0 cpu0 fork\nrun T1 cpu0 store page=1 off=0\n\
             run T0 cpu0 store page=1 off=0",
            // The child writes its copy, the parent reads, the child exits.
            "run T0 cpu0 store page=0 off=0\nrun T1 cpu0 store page=2 off=0\nrun T0 cpu0 fork\n\
             run T2 cpu0 store page=0 off=0\nrun T0 cpu0 load page=0 off=0\nrun T2 cpu0 exit",
            // A file read into the heap, a fork, text in the child, a store in the parent.
            "run T0 cpu0 read file=0 index=0 off=0 page=1\nrun T0 cpu0 fork\n\
             run T2 cpu0 fetch page=4 off=0\nrun T0 cpu0 store page=1 off=8",
            // Both threads using the heap with steps of the other in between, then a fork.
            "start T0 cpu0 store page=1 off=0\nstep T0 cpu0\nstart T1 cpu0 load page=3 off=0\n\
             step T0 cpu0\nstep T1 cpu0\nstep T0 cpu0\nstep T1 cpu0\nstep T1 cpu0\n\
             run T0 cpu0 fork\nrun T2 cpu0 load page=1 off=0",
            // posix_spawn: vfork, the child execs with an argument from the heap and reads
            // it from its new stack, the parent goes on.
            "run T0 cpu0 store page=1 off=0\nstart T0 cpu0 vfork\n\
             run T2 cpu0 execve page=1 off=0\nstep T0 cpu0\nrun T2 cpu0 load page=9 off=61\n\
             run T0 cpu0 load page=1 off=1",
            // fork then exec with an argument the parent stored, the new program running.
            "run T0 cpu0 store page=2 off=8\nrun T0 cpu0 fork\n\
             run T2 cpu0 execve page=2 off=8\nrun T2 cpu0 fetch page=4 off=0\n\
             run T2 cpu0 load page=9 off=60\nrun T0 cpu0 load page=2 off=8",
            // A large anonymous folio faulted in, shared by a fork, copied whole by the child.
            "run T0 cpu0 thp-fault page=1 off=0 pages=4\nrun T0 cpu0 fork\n\
             run T2 cpu0 huge-cow page=2 off=0\nrun T0 cpu0 load page=2 off=0\n\
             run T2 cpu0 load page=1 off=0",
            // The text read ahead as a large folio and mapped around a fault, the heap migrated.
            "run T0 cpu0 readahead file=0 index=0 pages=2\nrun T0 cpu0 fault-around page=4 off=0\n\
             run T0 cpu0 fetch page=5 off=0\nrun T1 cpu0 store page=0 off=0\n\
             run K0 cpu0 migrate page=2\nrun T1 cpu0 load page=0 off=0",
            // A fault handler thread resolves a missing page with UFFDIO_ZEROPAGE; the faulting
            // thread reads it, writes it (a cleared copy), the handler reads it back.
            "run T1 cpu0 uffd-zeropage dst=1\nrun T0 cpu0 load page=1 off=0\n\
             run T0 cpu0 store page=1 off=8\nrun T1 cpu0 load page=1 off=8",
        ],
    ),
];

/// One file of a seed corpus.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SeedFile {
    /// The folder under the corpus root ([`RACES_DIR`] or [`TRACE_PARSER_DIR`]).
    pub dir: &'static str,
    /// The file name.
    pub name: String,
    /// The contents.
    pub bytes: Vec<u8>,
}

/// Why the seeds could not be generated.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SeedError {
    /// A hand-picked script does not parse.
    Script {
        /// The preset.
        preset: String,
        /// The script's index in [`HAND_SEEDS`].
        index: usize,
        /// What is wrong.
        message: String,
    },
    /// A hand-picked seed produces a violation on its preset.
    Crashes {
        /// The preset.
        preset: String,
        /// The script's index in [`HAND_SEEDS`].
        index: usize,
        /// The violation.
        signature: String,
    },
}

impl std::fmt::Display for SeedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SeedError::Script {
                preset,
                index,
                message,
            } => write!(f, "hand seed {index} of {preset}: {message}"),
            SeedError::Crashes {
                preset,
                index,
                signature,
            } => write!(
                f,
                "hand seed {index} of {preset} produces a violation ({signature}); seeds must not"
            ),
        }
    }
}

impl std::error::Error for SeedError {}

/// Random op sequences, as [`crate::choice::Random`] makes them (each op decoded by `arbitrary`
/// from fresh bytes of a seeded [`Xoshiro256PlusPlus`], as a fuzzer's bytes would be, but without
/// any feedback), with lengths uniform in a range (by default [`RANDOM_LEN`]). The same seed
/// always gives the same sequences.
#[derive(Clone, Debug)]
pub struct RandomOps {
    rng: Xoshiro256PlusPlus,
    len: RangeInclusive<usize>,
}

impl RandomOps {
    /// Sequences of [`RANDOM_LEN`] ops.
    pub fn new(seed: u64) -> RandomOps {
        RandomOps::with_len(seed, RANDOM_LEN)
    }

    /// Sequences with lengths in `len` (an empty range gives empty sequences).
    pub fn with_len(seed: u64, len: RangeInclusive<usize>) -> RandomOps {
        RandomOps {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            len,
        }
    }

    /// One random sequence.
    pub fn ops(&mut self) -> Vec<Op> {
        let (lo, hi) = (*self.len.start(), *self.len.end());
        if hi < lo {
            return Vec::new();
        }
        let span = (hi - lo) as u64 + 1;
        let n = lo + (self.rng.next_u64() % span) as usize;
        let mut src = Random::new(self.rng.next_u64(), n);
        std::iter::from_fn(|| src.next_op()).collect()
    }
}

/// The first violation a random search found.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RandomHit {
    /// Runs made up to and including the one that found it.
    pub execs: u64,
    /// The sequence.
    pub ops: Vec<Op>,
    /// Its violation.
    pub signature: String,
}

/// The pure-random baseline: runs [`RandomOps::new(seed)`](RandomOps::new) sequences on
/// `preset`, with no feedback, until one produces a violation or `go_on(runs so far)` says
/// stop. Returns the runs made and the first violation. Deterministic for a seed and a budget
/// of runs; the caller may also stop on a clock.
pub fn random_search(
    preset: &Preset,
    seed: u64,
    mut go_on: impl FnMut(u64) -> bool,
) -> (u64, Option<RandomHit>) {
    let mut g = RandomOps::new(seed);
    let mut execs = 0u64;
    while go_on(execs) {
        let ops = g.ops();
        execs += 1;
        if let Some(v) = run(preset, &ops, RunOptions::default()).violation {
            return (
                execs,
                Some(RandomHit {
                    execs,
                    ops,
                    signature: v.signature(),
                }),
            );
        }
    }
    (execs, None)
}

/// Whether `actor` took a step at each of `extra` steps appended to `ops`: the number of polls
/// it needs to become idle (capped at `extra`).
fn steps_to_idle(p: &Preset, ops: &[Op], actor: u8, cpu: u8, extra: usize) -> usize {
    let mut all = ops.to_vec();
    all.extend(std::iter::repeat_n(Op::Step { actor, cpu }, extra));
    let r = run(p, &all, RunOptions { log: true });
    let first = ops.len() as u32;
    let mut steps: Vec<u32> = r
        .events
        .iter()
        .filter(|e| {
            e.step > first
                && e.step <= first + extra as u32
                && matches!(e.event, Event::Step { actor: a, .. } if a == actor)
        })
        .map(|e| e.step)
        .collect();
    steps.dedup();
    steps.len()
}

fn parse_one(p: &Preset, line: &str) -> Result<Op, String> {
    let text = format!(
        "flushfuzz-trace 1\npreset {}\nexpect none\n{line}\n",
        p.name
    );
    let t = Trace::parse(&text).map_err(|e| format!("`{line}`: {}", e.message))?;
    t.ops
        .first()
        .copied()
        .ok_or_else(|| format!("`{line}`: no op"))
}

/// Builds the ops of a script (see [`HAND_SEEDS`]) on `p`.
pub fn script_ops(p: &Preset, script: &str) -> Result<Vec<Op>, String> {
    let mut ops = Vec::new();
    for line in script.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(rest) = line.strip_prefix("run ") {
            let op = parse_one(p, &format!("start {rest}"))?;
            let Op::Start { actor, cpu, .. } = op else {
                return Err(format!("`{line}`: `run` takes a start op"));
            };
            ops.push(op);
            let n = steps_to_idle(p, &ops, actor, cpu, MAX_RUN_STEPS);
            ops.extend(std::iter::repeat_n(Op::Step { actor, cpu }, n));
        } else if line.starts_with("start ") || line.starts_with("step ") {
            ops.push(parse_one(p, line)?);
        } else {
            return Err(format!("`{line}`: expected `run`, `start` or `step`"));
        }
    }
    Ok(ops)
}

/// The hand-picked seeds of a race preset, as ops, checked to produce no violation.
pub fn hand_seeds(preset_name: &str) -> Result<Vec<Vec<Op>>, SeedError> {
    let Some((_, scripts)) = HAND_SEEDS.iter().find(|(n, _)| *n == preset_name) else {
        return Ok(Vec::new());
    };
    let p = preset::by_name(preset_name).ok_or_else(|| SeedError::Script {
        preset: preset_name.into(),
        index: 0,
        message: "no such preset".into(),
    })?;
    let mut out = Vec::new();
    for (index, s) in scripts.iter().enumerate() {
        let ops = script_ops(&p, s).map_err(|message| SeedError::Script {
            preset: preset_name.into(),
            index,
            message,
        })?;
        if let Some(v) = run(&p, &ops, RunOptions::default()).violation {
            return Err(SeedError::Crashes {
                preset: preset_name.into(),
                index,
                signature: v.signature(),
            });
        }
        out.push(ops);
    }
    Ok(out)
}

/// The random seeds of a race preset: the first [`RANDOM_SEEDS_PER_PRESET`] sequences of
/// [`RandomOps`] (seeded from [`CORPUS_RNG_SEED`] and the preset's index) that produce no
/// violation on it.
pub fn random_seeds(preset_index: usize) -> Vec<Vec<Op>> {
    let p = preset::by_name(RACE_PRESETS[preset_index]).expect("race preset exists");
    let mut g = RandomOps::new(CORPUS_RNG_SEED ^ (preset_index as u64 + 1));
    let mut out = Vec::new();
    for _ in 0..10_000 {
        if out.len() == RANDOM_SEEDS_PER_PRESET {
            break;
        }
        let ops = g.ops();
        if run(&p, &ops, RunOptions::default()).violation.is_none() {
            out.push(ops);
        }
    }
    out
}

/// The race preset whose seed a `races/` file name is (`<preset>-hand-NN`, `<preset>-rand-NN`).
pub fn seed_preset(file_name: &str) -> Option<&'static str> {
    RACE_PRESETS.iter().copied().find(|p| {
        file_name
            .strip_prefix(p)
            .is_some_and(|rest| rest.starts_with("-hand-") || rest.starts_with("-rand-"))
    })
}

/// Whether the `races/` seed called `file_name` belongs in a campaign on `preset`: seeds of the
/// same race machine (a `-fixed` twin uses its race's seeds), every seed for other presets, and
/// files not named by [`generate`] always.
pub fn seed_is_for(file_name: &str, preset: &str) -> bool {
    let base = preset.strip_suffix("-fixed").unwrap_or(preset);
    match seed_preset(file_name) {
        Some(p) => p == base || !RACE_PRESETS.contains(&base),
        None => true,
    }
}

/// The seeds of the `races` target.
pub fn race_seeds() -> Result<Vec<SeedFile>, SeedError> {
    let mut out = Vec::new();
    for (i, name) in RACE_PRESETS.iter().enumerate() {
        for (k, ops) in hand_seeds(name)?.iter().enumerate() {
            out.push(SeedFile {
                dir: RACES_DIR,
                name: format!("{name}-hand-{k:02}"),
                bytes: crate::encode::encode_input(i as u8, ops),
            });
        }
        for (k, ops) in random_seeds(i).iter().enumerate() {
            out.push(SeedFile {
                dir: RACES_DIR,
                name: format!("{name}-rand-{k:02}"),
                bytes: crate::encode::encode_input(i as u8, ops),
            });
        }
    }
    Ok(out)
}

/// The op lines of a trace with actors written by number (`#0`) instead of by name.
fn numbered(t: &Trace) -> String {
    let names = preset::by_name(&t.preset)
        .map(|p| p.actor_names())
        .unwrap_or_default();
    let text = t.to_text(&[]);
    let mut out = String::new();
    for line in text.lines() {
        let mut toks: Vec<String> = line.split(' ').map(str::to_string).collect();
        if (toks[0] == "start" || toks[0] == "step") && toks.len() > 1 {
            if let Some(i) = names.iter().position(|n| *n == toks[1]) {
                toks[1] = format!("#{i}");
            }
        }
        out.push_str(&toks.join(" "));
        out.push('\n');
    }
    out
}

/// The seeds of the `trace_parser` target: each given trace (`(stem, text)`, e.g. the files of
/// `crashes/`) as is and in variants (canonical, actors by number, `expect none`, an unsupported
/// version, cut in the middle of a line), and the race seeds as trace text.
pub fn trace_parser_seeds(
    traces: &[(String, String)],
    races: &[(String, Vec<Op>)],
) -> Vec<SeedFile> {
    let mut out = Vec::new();
    let mut add = |name: String, text: String| {
        out.push(SeedFile {
            dir: TRACE_PARSER_DIR,
            name,
            bytes: text.into_bytes(),
        })
    };
    for (stem, text) in traces {
        add(format!("{stem}.trace"), text.clone());
        if let Ok(t) = Trace::parse(text) {
            add(format!("{stem}-canonical.trace"), t.to_text(&[]));
            add(format!("{stem}-numbered.trace"), numbered(&t));
            let mut none = t.clone();
            none.expect = None;
            add(format!("{stem}-expect-none.trace"), none.to_text(&[]));
        }
        add(
            format!("{stem}-version-2.trace"),
            text.replacen("flushfuzz-trace 1", "flushfuzz-trace 2", 1),
        );
        let cut = text.trim_end().len().saturating_sub(3);
        let cut = (0..=cut)
            .rev()
            .find(|&i| text.is_char_boundary(i))
            .unwrap_or(0);
        add(format!("{stem}-cut.trace"), text[..cut].to_string());
    }
    for (stem, ops) in races {
        let Some(p) = seed_preset(stem).and_then(preset::by_name) else {
            continue;
        };
        add(
            format!("{stem}.trace"),
            Trace::new(&*crate::model::shipped_cached(&p), ops, None).to_text(&[]),
        );
    }
    out
}

/// Every seed file: the `races` seeds and the `trace_parser` seeds built from `traces` (the
/// committed reproducers, `(stem, text)`, in a fixed order) and the hand-picked race seeds.
pub fn generate(traces: &[(String, String)]) -> Result<Vec<SeedFile>, SeedError> {
    let mut out = race_seeds()?;
    let mut hand = Vec::new();
    for name in RACE_PRESETS {
        for (k, ops) in hand_seeds(name)?.into_iter().enumerate() {
            hand.push((format!("{name}-hand-{k:02}"), ops));
        }
    }
    out.extend(trace_parser_seeds(traces, &hand));
    Ok(out)
}

/// Reading libFuzzer's output (its standard error), line by line.
pub mod libfuzzer {
    use std::collections::BTreeMap;

    /// What one line of libFuzzer's output says.
    #[derive(Clone, Debug, PartialEq, Eq)]
    pub enum Line {
        /// A status line: `#1234\tNEW    cov: 567 ft: 890 corp: 89/12Kb ... exec/s: 1000 ...`
        /// (`what` is `NEW`, `REDUCE`, `pulse`, `INITED`, `DONE`, ...), or in fork mode
        /// `#1234: cov: 567 ft: 890 corp: 89 exec/s: 1000 oom/timeout/crash: 0/0/0 ...`
        /// (`what` is `fork`).
        Status {
            /// Executions so far.
            execs: u64,
            /// The kind of line.
            what: String,
            /// Coverage (edges).
            cov: Option<u64>,
            /// Features.
            ft: Option<u64>,
            /// Corpus size (inputs).
            corpus: Option<u64>,
            /// Executions per second, as libFuzzer computes it.
            exec_per_sec: Option<u64>,
        },
        /// `==1234== ERROR: libFuzzer: deadly signal` (or a timeout, out-of-memory, ...): the
        /// text after `libFuzzer: `.
        Error(String),
        /// The panic message of the harness: `flushfuzz: SIGNATURE on preset NAME (N ops)`.
        Violation {
            /// The signature.
            signature: String,
            /// The preset.
            preset: String,
        },
        /// `... Test unit written to PATH`.
        Artifact(String),
        /// `stat::name: value`.
        Stat(String, u64),
        /// `Done 1234 runs in 30 second(s)`.
        Done {
            /// Executions.
            execs: u64,
            /// Seconds.
            seconds: u64,
        },
        /// `INFO: log from the inner process:` (fork mode: what follows is one job's output).
        InnerLog,
    }

    fn field(toks: &[&str], key: &str) -> Option<u64> {
        let i = toks.iter().position(|t| *t == key)?;
        let v = toks.get(i + 1)?;
        let digits: String = v.chars().take_while(|c| c.is_ascii_digit()).collect();
        digits.parse().ok()
    }

    /// Parses one line; `None` for lines that say nothing a campaign needs.
    pub fn parse_line(line: &str) -> Option<Line> {
        let l = line.trim_end();
        if let Some(rest) = l.strip_prefix('#') {
            let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
            if digits.is_empty() {
                return None;
            }
            let execs = digits.parse().ok()?;
            let after = &rest[digits.len()..];
            let toks: Vec<&str> = after.split_whitespace().collect();
            let what = if after.starts_with(':') {
                "fork".to_string()
            } else {
                toks.first()?.to_string()
            };
            if what != "fork" && !what.chars().all(|c| c.is_ascii_alphabetic()) {
                return None;
            }
            return Some(Line::Status {
                execs,
                what,
                cov: field(&toks, "cov:"),
                ft: field(&toks, "ft:"),
                corpus: field(&toks, "corp:"),
                exec_per_sec: field(&toks, "exec/s:"),
            });
        }
        if let Some(i) = l.find("ERROR: libFuzzer: ") {
            return Some(Line::Error(l[i + "ERROR: libFuzzer: ".len()..].to_string()));
        }
        if let Some(i) = l.find("Test unit written to ") {
            return Some(Line::Artifact(
                l[i + "Test unit written to ".len()..].trim().to_string(),
            ));
        }
        if let Some(rest) = l.strip_prefix("stat::") {
            let (name, v) = rest.split_once(':')?;
            return Some(Line::Stat(name.trim().to_string(), v.trim().parse().ok()?));
        }
        if let Some(rest) = l.strip_prefix("flushfuzz: ") {
            let (signature, tail) = rest.rsplit_once(" on preset ")?;
            let preset = tail.split_whitespace().next()?.to_string();
            return Some(Line::Violation {
                signature: signature.to_string(),
                preset,
            });
        }
        if let Some(rest) = l.strip_prefix("Done ") {
            let toks: Vec<&str> = rest.split_whitespace().collect();
            if let [n, "runs", "in", s, ..] = toks.as_slice() {
                return Some(Line::Done {
                    execs: n.parse().ok()?,
                    seconds: s.parse().ok()?,
                });
            }
            return None;
        }
        if l.starts_with("INFO: log from the inner process") {
            return Some(Line::InnerLog);
        }
        None
    }

    /// The state of a campaign, from its lines in order.
    #[derive(Clone, Debug, Default, PartialEq, Eq)]
    pub struct Progress {
        /// Executions (the main process's count; in fork mode, of the finished jobs).
        pub execs: u64,
        /// Coverage.
        pub cov: u64,
        /// Features.
        pub ft: u64,
        /// Corpus size.
        pub corpus: u64,
        /// libFuzzer's executions per second, last reported.
        pub exec_per_sec: u64,
        /// Whether libFuzzer runs jobs in child processes (`-fork`).
        pub fork_mode: bool,
        /// Inside the log of a fork-mode job.
        pub inner: bool,
        /// Executions of the fork-mode job that crashed, last reported.
        pub inner_execs: u64,
        /// libFuzzer reported an error (the text after `libFuzzer: `).
        pub error: Option<String>,
        /// The violation the harness reported.
        pub signature: Option<String>,
        /// The crash input.
        pub artifact: Option<String>,
        /// Executions to the crash, if there was one.
        pub crash_execs: Option<u64>,
        /// Final statistics (`stat::...`) of the main process.
        pub stats: BTreeMap<String, u64>,
    }

    impl Progress {
        /// Takes one line into account.
        pub fn feed(&mut self, line: &Line) {
            match line {
                Line::Status {
                    execs,
                    what,
                    cov,
                    ft,
                    corpus,
                    exec_per_sec,
                } => {
                    if what == "fork" {
                        self.fork_mode = true;
                    }
                    if self.inner {
                        self.inner_execs = self.inner_execs.max(*execs);
                        return;
                    }
                    self.execs = self.execs.max(*execs);
                    if let Some(c) = cov {
                        self.cov = *c;
                    }
                    if let Some(f) = ft {
                        self.ft = *f;
                    }
                    if let Some(c) = corpus {
                        self.corpus = *c;
                    }
                    if let Some(e) = exec_per_sec {
                        self.exec_per_sec = *e;
                    }
                }
                Line::InnerLog => self.inner = true,
                Line::Error(e) => {
                    if self.error.is_none() {
                        self.error = Some(e.clone());
                    }
                }
                Line::Violation { signature, .. } => {
                    if self.signature.is_none() {
                        self.signature = Some(signature.clone());
                    }
                }
                Line::Artifact(a) => {
                    if self.artifact.is_none() {
                        self.artifact = Some(a.clone());
                    }
                    if self.crash_execs.is_none() {
                        self.crash_execs = Some(self.total_execs());
                    }
                }
                Line::Stat(name, v) => {
                    if self.inner {
                        if name == "number_of_executed_units" {
                            self.inner_execs = self.inner_execs.max(*v);
                            if self.artifact.is_some() {
                                self.crash_execs = Some(self.total_execs());
                            }
                        }
                        return;
                    }
                    if name == "number_of_executed_units" {
                        self.execs = self.execs.max(*v);
                        if self.artifact.is_some() {
                            self.crash_execs = Some(self.total_execs());
                        }
                    }
                    self.stats.insert(name.clone(), *v);
                }
                Line::Done { execs, .. } => {
                    if !self.inner {
                        self.execs = self.execs.max(*execs);
                    }
                }
            }
        }

        /// Executions so far: the main count, plus the crashed job's in fork mode (whose
        /// executions the main process never counted).
        pub fn total_execs(&self) -> u64 {
            self.execs + if self.fork_mode { self.inner_execs } else { 0 }
        }
    }
}
