//! bolero properties of the whole model: no false positives on coherent hardware whatever the
//! kernel does, none under mainline behaviour on the race machines, determinism, and the
//! minimizer's laws. Bounded for `cargo test` (a fixed number of random inputs each);
//! `cargo bolero test properties::<name>` runs one under libFuzzer, with coverage feedback,
//! until it is stopped or its time is up (`-T 10min`): see the README. Under libFuzzer a
//! property's `check!` never returns, so each property is a single `check!` whose input also
//! picks the preset where it covers several.

use flushfuzz::minimize::minimize;
use flushfuzz::op::Op;
use flushfuzz::preset;
use flushfuzz::run::{run, RunOptions};
use flushfuzz::trace::Trace;

/// Fails with the input as a trace file, ready for `flushfuzz replay`.
fn assert_clean(p: &flushfuzz::preset::Preset, ops: &[Op]) {
    check(p, ops, false)
}

/// As [`assert_clean`], passing over the race families mainline behaviour has too
/// (`triage::in_mainline`, each with a reproducer in `crashes/`).
fn assert_clean_but_mainline_holes(p: &flushfuzz::preset::Preset, ops: &[Op]) {
    check(p, ops, true)
}

fn check(p: &flushfuzz::preset::Preset, ops: &[Op], pass_mainline: bool) {
    let r = run(p, ops, RunOptions::default());
    if let Some(v) = r.violation {
        if pass_mainline && flushfuzz::triage::in_mainline(&v) {
            return;
        }
        let m = flushfuzz::model::shipped_cached(p);
        let t = Trace::new(
            &*m,
            &ops[..r.ops_applied.min(ops.len())],
            Some(v.signature()),
        );
        panic!(
            "{} on {}; as a trace:\n{}",
            v.signature(),
            p.name,
            t.to_text(&[])
        );
    }
}

fn ops_gen() -> impl bolero::generator::ValueGenerator<Output = Vec<Op>> {
    bolero::produce::<Vec<Op>>().with().len(1usize..=48)
}

/// On `coherent` (PIPT D-cache, snooping I-cache, coherent DMA, 2 CPUs) with every historical
/// switch on, no input may produce a violation: a report from flushfuzz is a real bug.
#[test]
fn coherent_hardware_with_every_historical_switch_has_no_violation() {
    let p = preset::by_name("coherent").unwrap();
    assert!(p.switches.names().len() >= 8);
    bolero::check!()
        .with_generator(ops_gen())
        .with_iterations(1500)
        .for_each(|ops: &Vec<Op>| assert_clean(&p, ops));
}

/// Mainline behaviour on each race machine finds nothing either, but for the holes mainline
/// is known to have.
#[test]
fn fixed_twins_have_no_violation() {
    let presets: Vec<_> = [
        "nfs-vmap-alias-fixed",
        "gup-anon-alias-fixed",
        "exec-icache-smp-fixed",
        "kmap-recycle-dma-fixed",
        "fork-cow-alias-fixed",
        "parisc",
        "arm64",
        "arm64-aliasing-icache",
        "arm64-idc",
        "arm64-idc-dic",
        "armv7",
        "armv7-pipt-icache",
        "riscv",
        "sh4",
        "sh4a",
    ]
    .iter()
    .map(|n| preset::by_name(n).unwrap())
    .collect();
    bolero::check!()
        .with_generator((0..presets.len(), ops_gen()))
        .with_iterations(400 * presets.len())
        .for_each(|(i, ops): &(usize, Vec<Op>)| assert_clean_but_mainline_holes(&presets[*i], ops));
}

/// The same input twice gives the identical event log and outcome.
#[test]
fn runs_are_deterministic() {
    let p = preset::by_name("kmap-recycle-dma").unwrap();
    let q = preset::by_name("exec-icache-smp").unwrap();
    bolero::check!()
        .with_generator(ops_gen())
        .with_iterations(300)
        .for_each(|ops: &Vec<Op>| {
            for p in [&p, &q] {
                let a = run(p, ops, RunOptions { log: true });
                let b = run(p, ops, RunOptions { log: true });
                assert_eq!(a.events, b.events);
                assert_eq!(a.violation, b.violation);
            }
        });
}

/// The five race presets.
fn race_presets() -> Vec<flushfuzz::preset::Preset> {
    flushfuzz::harness::RACE_PRESETS
        .iter()
        .map(|n| preset::by_name(n).unwrap())
        .collect()
}

/// A run on a state recycled from earlier runs (the fuzzing path) finds what a run on a freshly
/// built state (the logged path) finds, after the same number of ops and steps.
#[test]
fn recycled_states_run_like_fresh_ones() {
    let presets = race_presets();
    bolero::check!()
        .with_generator(ops_gen())
        .with_iterations(300)
        .for_each(|ops: &Vec<Op>| {
            for p in &presets {
                let recycled = run(p, ops, RunOptions::default());
                let fresh = run(p, ops, RunOptions { log: true });
                let mut expected = fresh.violation;
                if let Some(v) = expected.as_mut() {
                    v.history.clear();
                }
                assert_eq!(recycled.violation, expected, "on {}", p.name);
                assert_eq!(recycled.ops_applied, fresh.ops_applied);
                assert_eq!(recycled.steps, fresh.steps);
            }
        });
}

/// The minimizer keeps the violation's signature and never grows the input; shortening the
/// result within its family keeps the family.
#[test]
fn minimizer_keeps_the_signature_and_never_grows() {
    let presets = race_presets();
    bolero::check!()
        .with_generator(ops_gen())
        .with_iterations(300)
        .for_each(|ops: &Vec<Op>| {
            for p in &presets {
                let p = &*flushfuzz::model::shipped_cached(p);
                let Some(sig) = flushfuzz::minimize::signature_of(p, ops) else {
                    continue;
                };
                let m = minimize(p, ops).expect("violation");
                assert_eq!(m.signature, sig);
                assert!(m.ops.len() <= ops.len());
                assert_eq!(flushfuzz::minimize::signature_of(p, &m.ops), Some(sig));
                // Shortening within the family keeps the family and never grows the input, and
                // its signature is what its ops produce.
                let family = |ops: &[Op]| {
                    p.run(ops, RunOptions::default())
                        .violation
                        .map(|v| flushfuzz::triage::family(&v))
                };
                let s = flushfuzz::minimize::shorten_in_family(p, m.clone());
                assert!(s.ops.len() <= m.ops.len());
                assert_eq!(family(&s.ops), family(&m.ops));
                assert_eq!(
                    flushfuzz::minimize::signature_of(p, &s.ops),
                    Some(s.signature)
                );
            }
        });
}

/// Every machine mainline behaviour runs on: coherent hardware (with every historical switch
/// on) and each `-fixed` twin, PA-RISC, arm64 (with and without `CTR_EL0.IDC`/`DIC`), ARMv7, RISC-V and SH-4.
const MAINLINE_MACHINES: &[&str] = &[
    "coherent",
    "nfs-vmap-alias-fixed",
    "gup-anon-alias-fixed",
    "exec-icache-smp-fixed",
    "kmap-recycle-dma-fixed",
    "fork-cow-alias-fixed",
    "parisc",
    "arm64",
    "arm64-aliasing-icache",
    "arm64-idc",
    "armv7",
    "armv7-pipt-icache",
    "riscv",
    "sh4",
    "sh4a",
];

/// Random inputs in which every other op that starts an action starts one of `group` instead
/// (the byte that named the path picks which), on every machine of [`MAINLINE_MACHINES`]: none
/// may find anything but a documented mainline family (none at all on coherent hardware), and
/// every path of the group must have started in some run.
fn group_is_clean_but_mainline_holes(group: &[&str], iterations: usize) {
    use flushfuzz::op::Op;
    use std::sync::Mutex;
    for name in MAINLINE_MACHINES {
        let p = preset::by_name(name).unwrap();
        let m = flushfuzz::model::shipped_cached(&p);
        let catalog = m.catalog().clone();
        let indices: Vec<u8> = group
            .iter()
            .map(|g| catalog.index(g).unwrap_or_else(|| panic!("no path {g}")))
            .collect();
        let reached = Mutex::new(0u128);
        bolero::check!()
            .with_generator(ops_gen())
            .with_iterations(iterations)
            .for_each(|ops: &Vec<Op>| {
                let mut ops = ops.clone();
                let mut starts = 0;
                for op in &mut ops {
                    if let Op::Start { action, .. } = op {
                        if starts % 2 == 0 {
                            action.path = indices[action.path as usize % indices.len()];
                        }
                        starts += 1;
                    }
                }
                let r = run(&p, &ops, RunOptions::default());
                *reached.lock().unwrap() |= r.paths_started;
                check(&p, &ops, *name != "coherent");
            });
        let reached = *reached.lock().unwrap();
        for (g, i) in group.iter().zip(&indices) {
            assert!(reached & (1 << i) != 0, "{g} never started on {name}");
        }
    }
}

/// Block I/O on vmalloc'd metadata buffers (`xfs_buf_submit`, `dm_io`):
/// `flush_kernel_vmap_range` before every I/O, `invalidate_kernel_vmap_range` after a read.
#[test]
fn vmapped_block_io_is_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(&["xfs-buf-io", "kmap-write", "dma"], 150);
}

/// Ring buffers shared through `vmalloc_user` and `remap_vmalloc_range` (perf, vb2-vmalloc),
/// with the user's loads and stores of them.
#[test]
fn vmalloc_user_rings_are_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(
        &["ring-mmap", "ring-output", "ring-read", "load", "store"],
        150,
    );
}

/// Kernel text written then executed: module loading, the BPF JIT, running and freeing that
/// text, and uprobes' out-of-line slots.
#[test]
fn kernel_text_writers_are_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(
        &[
            "module-load",
            "bpf-jit",
            "text-run",
            "text-free",
            "uprobe-hit",
            "fetch",
        ],
        150,
    );
}

/// `execve` of a fork or vfork child: argument strings copied into the new stack page through
/// kmap, then read by the new program.
#[test]
fn execve_is_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(&["fork", "vfork", "execve", "load", "store"], 150);
}

/// `mremap` of a page to another address (and colour), with stores and loads around it by the
/// process's threads, and fork.
#[test]
fn mremap_is_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(&["mremap", "store", "load", "fork", "munmap"], 150);
}

/// A `PACKET_MMAP` ring: packets received into frames and sent from them, with the user's
/// loads and stores of the frames.
#[test]
fn packet_mmap_rings_are_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(
        &["packet-mmap", "packet-rcv", "packet-snd", "load", "store"],
        150,
    );
}

/// An io_uring instance: submissions and completions through the rings' kernel address, with
/// the user's loads and stores of the rings.
#[test]
fn io_uring_rings_are_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(&["uring-setup", "uring-submit", "load", "store"], 150);
}

/// `UFFDIO_COPY` into missing pages, from pages the process stores to (or has not touched
/// yet), with loads of the result, fork and munmap.
#[test]
fn uffd_copy_is_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(&["uffd-copy", "store", "load", "fork", "munmap"], 150);
}

/// A shipped arch is right on every machine its mainline code supports, not only on the preset
/// it ships with: MIPS R4K on the non-aliasing SMP machine of `exec-icache-smp`, with an
/// I-cache that fills from memory only (`flush_dcache_page` must mark the page for
/// `__update_cache`) and with one that fills from the D-cache (`cpu_has_ic_fills_f_dc`, where
/// nothing needs writing back for the I-cache).
#[test]
fn mips_r4k_is_clean_without_dcache_aliases() {
    use flushfuzz::machine::IcacheCoherence;
    let base = preset::by_name("exec-icache-smp-fixed").unwrap();
    assert!(!base.machine.dcache.aliases(base.machine.page_size));
    let machines: Vec<_> = [IcacheCoherence::None, IcacheCoherence::FillsFromDcache]
        .into_iter()
        .map(|icache_coherence| {
            let mut p = base.clone();
            p.name = format!("r4k-pipt-{icache_coherence:?}").to_lowercase();
            p.arch = "mips-r4k".into();
            p.machine.icache_coherence = icache_coherence;
            p
        })
        .collect();
    bolero::check!()
        .with_generator((0..machines.len(), ops_gen()))
        .with_iterations(3000 * machines.len())
        .for_each(|(i, ops): &(usize, Vec<Op>)| {
            assert_clean_but_mainline_holes(&machines[*i], ops)
        });
}

/// A pipe and splice: bytes written into it, vmspliced from user pages and spliced from file
/// pages, read out into user pages and spliced into files, with user stores, the shared file
/// mapping and write().
#[test]
fn pipes_and_splice_are_clean_on_mainline_machines() {
    group_is_clean_but_mainline_holes(
        &[
            "pipe-write",
            "vmsplice",
            "splice-read",
            "pipe-read",
            "splice-write",
            "store",
            "mmap",
            "write",
        ],
        150,
    );
}
