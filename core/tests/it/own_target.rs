//! A user's own crate under a coverage-guided campaign, through the library alone: the fuzz
//! crate `core/examples/own_target` (ARMv6 with a patched `flush_dcache_page`, a kernel path
//! and a machine file of its own, and a one-line `flushfuzz::fuzz_target!` shim) is built with
//! coverage, fuzzed until it finds the patch's race, and the race is reported, replayed and
//! triaged by the target itself, with its own arch, paths and machine.

use flushfuzz::campaign::{self, Campaign, Coverage, Source};
use flushfuzz::harness::Mutator;
use flushfuzz::tool::Request;
use std::path::PathBuf;

fn crate_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples/own_target")
}

#[test]
fn a_patched_arch_in_a_users_crate_is_found_by_a_campaign() {
    let source = Source::Crate {
        dir: crate_dir(),
        bin: "patched".into(),
    };
    let bin = campaign::build(&source, Mutator::Ops, Coverage::Functions, &mut |_| {})
        .expect("the user's fuzz target builds");
    let work = std::env::temp_dir().join(format!("flushfuzz-own-target-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&work);
    // A loaded machine may need more than the first seed: the race took 3 s and 113,000
    // executions with seed 1.
    let hit = (1..=3)
        .find_map(|seed| {
            let c = Campaign {
                preset: None,
                machine: None,
                seconds: 120,
                jobs: 1,
                seed,
                work: Some(work.join("campaign")),
                mutator: Mutator::Ops,
                // Its ARMv6 board has the holes mainline has on aliasing VIPT ARM (the
                // uprobes slot copy's among them): pass over them, as `hunt --skip-mainline`.
                skip_mainline: true,
                keep_families: Vec::new(),
                seeds: campaign::seeds_in(&source.seed_dir(), None).unwrap(),
                extra: Vec::new(),
            };
            let o = campaign::run(&bin, &c, &mut |_| {}).expect("the campaign runs");
            o.found.filter(|h| h.found.is_historical())
        })
        .expect("a campaign finds a race the unpatched arch does not have");
    let f = &hit.found;
    assert_eq!(f.preset, "my-board");
    assert!(f.twin_name.contains("arm-v6"), "{}", f.twin_name);
    assert!(
        f.minimized_ops <= f.input_ops && f.minimized_ops <= 12,
        "{f:?}"
    );
    assert!(
        f.trace.starts_with("flushfuzz-trace 1\npreset my-board\n"),
        "{}",
        f.trace
    );
    assert!(f.shown.contains("VIOLATION"), "{}", f.shown);

    // Recorded, then replayed and triaged in the target: only it knows my-board.
    let rec = campaign::record(&work.join("crashes"), &hit, "found by the own_target test")
        .expect("recorded");
    assert!(rec.new);
    let o = campaign::ask(
        &bin,
        &Request::Replay {
            files: vec![rec.path.clone()],
            preset: None,
            json: false,
        },
        None,
    )
    .unwrap();
    assert_eq!(o.code, 1, "{o:?}");
    assert!(o.stdout.contains(&f.signature), "{}", o.stdout);
    assert!(o.stderr.is_empty(), "{}", o.stderr);
    let o = campaign::ask(
        &bin,
        &Request::Triage {
            paths: vec![hit.input.clone(), rec.path.clone()],
            out: work.join("triaged"),
            preset: None,
            json: true,
        },
        None,
    )
    .unwrap();
    assert_eq!(o.code, 1, "{o:?}");
    let t: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(t["inputs"], 2);
    assert_eq!(t["groups"][0]["count"], 2, "{t}");
    // A shipped trace names a preset the target lacks: with a preset given, its actions run
    // there.
    let o = campaign::ask(
        &bin,
        &Request::Verify {
            file: PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crashes/gup-anon-alias.trace"),
            preset: Some("my-board".into()),
            args: flushfuzz::tool::VerifyArgs {
                preemptions: 0,
                events: 0,
                out: None,
            },
            json: true,
        },
        None,
    )
    .unwrap();
    assert_eq!(o.code, 0, "{o:?}");
    let v: serde_json::Value = serde_json::from_str(o.stdout.trim()).unwrap();
    assert_eq!(v["preset"], "my-board", "{v}");
    assert_eq!(v["actions"], 2, "{v}");
    let _ = std::fs::remove_dir_all(&work);
}
