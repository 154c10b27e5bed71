//! Throughput of the model: raw machine ops per second ([`flushfuzz::raw::run_raw`]), whole
//! kernel-model runs per second for each race preset ([`flushfuzz::run::run`]), and runs per
//! second of inputs a campaign kept ([`CAMPAIGN_CORPUS`]) on each `-fixed` twin.
//!
//! Workloads are random but fixed: bytes from a seeded `Xoshiro256PlusPlus`, decoded with
//! `arbitrary` as a fuzzer's would be. Each benchmark cycles through [`WORKLOADS`] of them, so
//! one lucky input does not decide the figure. Runs stop at their first violation, and random
//! inputs on the race machines often find one, so the item counter counts the ops a run actually
//! applied (computed once, outside the timed region), not the ops it was given. A thousand
//! samples per benchmark visit every workload many times.
//!
//! `cargo bench -p flushfuzz --bench throughput`

use arbitrary::{Arbitrary, Unstructured};
use divan::counter::ItemsCount;
use divan::Bencher;
use flushfuzz::geometry::{presets as geo, CacheGeometry, Indexing, WritePolicy};
use flushfuzz::machine::{Broadcast, IcacheCoherence, MachineConfig, Speculation};
use flushfuzz::op::Op;
use flushfuzz::preset::{self, Preset};
use flushfuzz::raw::{run_raw, RawOp};
use flushfuzz::run::{run, RunOptions};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// Raw ops per raw workload.
const RAW_OPS: usize = 200;
/// Ops per kernel-model input.
const KERNEL_OPS: usize = 32;
/// Distinct workloads each benchmark cycles through.
const WORKLOADS: usize = 64;
/// The seed of every workload.
const SEED: u64 = 0x666c_7573_6866_757a;

/// The race presets.
const PRESETS: [&str; 5] = [
    "gup-anon-alias",
    "fork-cow-alias",
    "exec-icache-smp",
    "kmap-recycle-dma",
    "nfs-vmap-alias",
];

/// The `-fixed` twins the campaign corpus runs on.
const FIXED: [&str; 5] = [
    "gup-anon-alias-fixed",
    "fork-cow-alias-fixed",
    "exec-icache-smp-fixed",
    "kmap-recycle-dma-fixed",
    "nfs-vmap-alias-fixed",
];

/// 256 inputs of the corpus a `flushfuzz hunt --preset kmap-recycle-dma-fixed --skip-mainline`
/// campaign kept after about 11 million executions: what a coverage-guided campaign runs,
/// longer and richer than random inputs (about 280 bytes, 28 ops each). They are decoded as the
/// fuzz target decodes them, so the figure is that of a campaign's executions without
/// libFuzzer's own work.
const CAMPAIGN_CORPUS: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/campaign-corpus");

/// The raw machines: the race presets' aliasing ARMv6-like machine, and fully coherent hardware
/// (where no run stops early).
const RAW_MACHINES: [&str; 2] = ["v6-4colour", "coherent"];

fn raw_machine(name: &str) -> MachineConfig {
    let v6 = MachineConfig {
        cpus: 1,
        page_size: geo::SMALL_PAGE,
        dcache: geo::SMALL_V6_4COLOUR,
        icache: CacheGeometry {
            policy: WritePolicy::WriteThrough,
            ..geo::SMALL_V6_4COLOUR
        },
        icache_coherence: IcacheCoherence::None,
        dcache_coherent: true,
        broadcast: Broadcast::CacheAndTlb,
        dma_coherent: false,
        lowmem_frames: 16,
        highmem_frames: 0,
        pkmap_slots: 2,
        speculation: Speculation::None,
        // Fields not set here keep the race presets' values.
        ..preset::by_name("nfs-vmap-alias")
            .expect("race preset exists")
            .machine
    };
    match name {
        "v6-4colour" => v6,
        "coherent" => {
            let pipt = CacheGeometry {
                indexing: Indexing::Pipt,
                ..geo::SMALL_PIPT
            };
            MachineConfig {
                cpus: 2,
                dcache: pipt,
                icache: CacheGeometry {
                    policy: WritePolicy::WriteThrough,
                    ..pipt
                },
                icache_coherence: IcacheCoherence::Snooping,
                dma_coherent: true,
                speculation: Speculation::Both,
                ..v6
            }
        }
        _ => unreachable!("unknown raw machine {name}"),
    }
}

/// `n` values decoded from fresh random bytes, as a fuzzer would decode them.
fn decode<T: for<'a> Arbitrary<'a>>(rng: &mut Xoshiro256PlusPlus, n: usize) -> Vec<T> {
    // Far more bytes than `n` values need, so none decodes from an exhausted input.
    let mut bytes = vec![0u8; n * 64];
    rng.fill_bytes(&mut bytes);
    let mut u = Unstructured::new(&bytes);
    (0..n)
        .map(|_| T::arbitrary(&mut u).expect("enough bytes"))
        .collect()
}

/// An input with the number of ops a run applies before it stops.
struct Workload<T> {
    ops: Vec<T>,
    applied: usize,
}

fn raw_workloads(cfg: &MachineConfig) -> Vec<Workload<RawOp>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    (0..WORKLOADS)
        .map(|_| {
            let ops: Vec<RawOp> = decode(&mut rng, RAW_OPS);
            let applied = run_raw(cfg, &ops)
                .violation
                .and_then(|v| v.op)
                .map_or(ops.len(), |i| i + 1);
            Workload { ops, applied }
        })
        .collect()
}

fn kernel_workloads(p: &Preset) -> Vec<Workload<Op>> {
    let mut rng = Xoshiro256PlusPlus::seed_from_u64(SEED);
    (0..WORKLOADS)
        .map(|_| {
            let ops: Vec<Op> = decode(&mut rng, KERNEL_OPS);
            let applied = run(p, &ops, RunOptions::default()).ops_applied;
            Workload { ops, applied }
        })
        .collect()
}

/// Raw ops per second: machine accesses, maintenance and device transfers judged by the oracle,
/// plus each run's construction and audit.
#[divan::bench(args = RAW_MACHINES, sample_count = 1000)]
fn raw(bencher: Bencher, machine: &str) {
    let cfg = raw_machine(machine);
    let workloads = raw_workloads(&cfg);
    let mut next = 0;
    bencher
        .with_inputs(|| {
            next = (next + 1) % WORKLOADS;
            &workloads[next]
        })
        .input_counter(|w: &&Workload<RawOp>| ItemsCount::new(w.applied))
        .bench_local_values(|w| run_raw(&cfg, &w.ops));
}

/// Kernel-model runs of 32 random ops on each race preset; the counter counts applied ops, and
/// runs per second are the inverse of the time per run.
#[divan::bench(args = PRESETS, sample_count = 1000)]
fn kernel(bencher: Bencher, name: &str) {
    let p = preset::by_name(name).expect("race preset exists");
    let workloads = kernel_workloads(&p);
    let mut next = 0;
    bencher
        .with_inputs(|| {
            next = (next + 1) % WORKLOADS;
            &workloads[next]
        })
        .input_counter(|w: &&Workload<Op>| ItemsCount::new(w.applied))
        .bench_local_values(|w| run(&p, &w.ops, RunOptions::default()));
}

fn campaign_inputs() -> Vec<Vec<Op>> {
    let mut files: Vec<_> = std::fs::read_dir(CAMPAIGN_CORPUS)
        .expect("campaign corpus")
        .map(|e| e.expect("corpus entry").path())
        .collect();
    files.sort();
    files
        .iter()
        .map(|f| flushfuzz::mutate::decode_input(&std::fs::read(f).expect("corpus input")).ops)
        .collect()
}

/// Runs of a campaign's kept inputs on each `-fixed` twin, one input per iteration in turn;
/// the counter counts runs. (A run a mainline family stops early is cheaper than a fuzzer's,
/// which passes over it with `--skip-mainline`; this bench does not.)
#[divan::bench(args = FIXED, sample_count = 1000)]
fn campaign(bencher: Bencher, name: &str) {
    let model =
        flushfuzz::model::shipped_cached(&preset::by_name(name).expect("fixed twin exists"));
    let inputs = campaign_inputs();
    let mut next = 0;
    bencher
        .with_inputs(|| {
            next = (next + 1) % inputs.len();
            &inputs[next]
        })
        .input_counter(|_| ItemsCount::new(1usize))
        .bench_local_values(|ops| model.run(ops, RunOptions::default()));
}

fn main() {
    // What the counters count, once per workload set: runs stop at their first violation.
    for m in RAW_MACHINES {
        let w = raw_workloads(&raw_machine(m));
        let applied: usize = w.iter().map(|w| w.applied).sum();
        eprintln!(
            "raw {m}: {WORKLOADS} workloads of {RAW_OPS} ops, {:.1} applied on average",
            applied as f64 / WORKLOADS as f64
        );
    }
    for name in PRESETS {
        let w = kernel_workloads(&preset::by_name(name).expect("race preset exists"));
        let applied: usize = w.iter().map(|w| w.applied).sum();
        eprintln!(
            "kernel {name}: {WORKLOADS} inputs of {KERNEL_OPS} ops, {:.1} applied on average",
            applied as f64 / WORKLOADS as f64
        );
    }
    divan::main();
}
