//! Every kernel path is a path a maintainer's bug can be on: for each, a test arch that drops
//! the one flush the path relies on (`core/tests/dropped`, not shipped) is found by a
//! coverage-guided campaign, the race is one the shipped arch does not have, and its minimized
//! trace starts that path. The figures (seconds and executions to the first find, minimized
//! length) are printed for the record.

use flushfuzz::campaign::{self, Campaign, Coverage, Source};
use flushfuzz::harness::Mutator;
use flushfuzz::tool::Request;
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
        ],
    ),
];

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
            }
            None => missed.push(format!("{name}: nothing the shipped arch lacks found")),
        }
    }
    assert!(missed.is_empty(), "{}", missed.join("\n"));
}
