//! Every kernel path is a path a maintainer's bug can be on: for each, a test arch that drops
//! the one flush the path relies on (`core/tests/dropped`, not shipped) is found by a
//! coverage-guided campaign, the race is one the shipped arch does not have, and its minimized
//! trace starts that path; and `verify` of that trace's program, in the same target, reports a
//! violation. The figures (seconds and executions to the first find, minimized length,
//! schedules and states verify explored) are printed for the record.

use flushfuzz::campaign::{self, Campaign, Coverage, Source};
use flushfuzz::harness::Mutator;
use flushfuzz::tool::{Request, VerifyArgs};
use std::path::PathBuf;

/// Paths whose dropped flush leaves a race of a family mainline behaviour has on another
/// machine (the uprobes slot copy's on aliasing VIPT ARM, a ring's on VIVT and PA-RISC, a pipe
/// reader's of a spliced page-cache page), with
/// those families: campaigns on them do not pass over these (`hunt --keep-family`), and the
/// twin check alone tells the dropped flush's race apart.
const FOUND_AMONG_MAINLINE_FAMILIES: &[(&str, &[&str])] = &[
    ("uprobe-hit", &["uprobe-slot-left-dirty-at-kernel-alias"]),
    (
        "vmsplice",
        &["spliced-page-cache-read-after-shared-mapping-write"],
    ),
    (
        "splice-read",
        &["spliced-page-cache-read-after-shared-mapping-write"],
    ),
    (
        "ring-mmap",
        &[
            "ring-written-through-incongruent-vmalloc-alias",
            "ring-read-through-incongruent-vmalloc-alias",
            "ring-vmalloc-alias-line-buries-user-write",
        ],
    ),
];

/// The preemptions and events `verify` may add to the found program's actions.
const VERIFY_BOUND: u32 = 2;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/dropped")
}

#[test]
fn every_dropped_flush_is_found_through_its_path() {
    let source = Source::Crate {
        dir: crate_dir(),
        bin: "dropped".into(),
    };
    let bin = campaign::build(&source, Mutator::Ops, Coverage::Functions, &mut |_| {})
        .expect("the test arches' fuzz target builds");
    let described = campaign::ask(&bin, &Request::Describe, None).expect("it describes itself");
    let v: serde_json::Value = serde_json::from_str(described.stdout.trim()).unwrap();
    let names: Vec<String> = v["presets"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap().to_string())
        .filter(|n| n.contains("--"))
        .collect();
    assert!(!names.is_empty());
    // The shipped races' seeds: realistic sequences of the shipped paths to start from.
    let seeds = campaign::seeds_in(
        &PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../corpus/races"),
        None,
    )
    .unwrap();
    let scratch = crate::Scratch::new("dropped");
    let mut missed = Vec::new();
    for name in &names {
        let path = name.split("--").next().unwrap();
        // A loaded machine may need more than one seed; each campaign stops at its first race.
        // The first starts from the shipped races' seeds; the others from nothing, since a seed
        // may lead straight to a race the shipped arch has too on a test machine (speculating
        // ARMv6), which ends that campaign without a word on the dropped flush.
        let found = (1..=3).find_map(|seed| {
            let c = Campaign {
                preset: Some(name.clone()),
                machine: None,
                seconds: 60,
                jobs: 1,
                seed,
                work: None,
                mutator: Mutator::Ops,
                skip_mainline: true,
                keep_families: FOUND_AMONG_MAINLINE_FAMILIES
                    .iter()
                    .filter(|(p, _)| *p == path)
                    .flat_map(|(_, f)| f.iter().map(|f| f.to_string()))
                    .collect(),
                seeds: if seed == 1 { seeds.clone() } else { Vec::new() },
                extra: Vec::new(),
            };
            let o = campaign::run(&bin, &c, &mut |_| {}).expect("the campaign runs");
            o.found.filter(|h| h.found.is_historical())
        });
        match found {
            Some(h) => {
                let starts_path =
                    h.found.trace.lines().any(|l| {
                        l.starts_with("start ") && l.split_whitespace().nth(3) == Some(path)
                    });
                eprintln!(
                    "{name}: found after {:.2} s, {} executions; {} -> {} ops: {}",
                    h.seconds, h.execs, h.found.input_ops, h.found.minimized_ops, h.found.signature
                );
                if !starts_path {
                    missed.push(format!(
                        "{name}: the race does not start {path}:\n{}",
                        h.found.trace
                    ));
                }
                // The program the campaign found, its schedule forgotten: some schedule within
                // growing bounds violates (the found one makes few preemptions and events; the
                // smallest bounds that hold it are searched first, as a user would).
                let file = scratch.0.join(format!("{name}.trace"));
                std::fs::write(&file, &h.found.trace).unwrap();
                let verify = |bound: u32| {
                    let request = Request::Verify {
                        file: file.clone(),
                        preset: Some(name.clone()),
                        args: VerifyArgs {
                            preemptions: bound,
                            events: bound,
                            out: Some(scratch.0.join(format!("{name}.verify-{bound}.trace"))),
                        },
                        json: true,
                    };
                    let out = campaign::ask(&bin, &request, None).expect("the target verifies");
                    let v: serde_json::Value = serde_json::from_str(out.stdout.trim())
                        .unwrap_or_else(|e| panic!("{name}: {e}: {}{}", out.stdout, out.stderr));
                    (out, v)
                };
                let mut bound = 0;
                let (out, v) = loop {
                    let (out, v) = verify(bound);
                    if out.code == 1 || bound == VERIFY_BOUND {
                        break (out, v);
                    }
                    bound += 1;
                };
                if out.code == 1 {
                    eprintln!(
                        "{name}: verify with K=E={bound} found {} after {} schedule(s), {} state(s); {} ops; twin {}",
                        v["violation"]["signature"], v["schedules"], v["states"], v["minimized_ops"], v["twin"]
                    );
                }
                // The violation must be the dropped flush's: one the shipped arch (the twin)
                // does not have.
                if out.code != 1 || v["historical"] != serde_json::json!(true) {
                    missed.push(format!(
                        "{name}: verify of the found program reports no violation the shipped arch lacks (exit {}): {}",
                        out.code, out.stdout
                    ));
                }
            }
            None => missed.push(format!("{name}: nothing the shipped arch lacks found")),
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
