//! The whole flow on the crate's own arch, path and machine, with flushfuzz's public API:
//! minimize a race of the patch keeping it the patch's, write it as a trace, read the trace
//! back, replay it, explain it and triage it. (Finding it is the coverage-guided campaign of
//! `fuzz_targets/patched.rs`: flushfuzz's integration test `own_target`, and CI's.)

use flushfuzz::minimize::minimize_if;
use flushfuzz::model::{DynModel, ModelSet};
use flushfuzz::run::RunOptions;
use flushfuzz::trace::Trace;
use flushfuzz::{explain, tool};
use own_target::{board, model, paths};

/// The unpatched arch on the board: what the patch is judged against.
fn unpatched() -> flushfuzz::model::Model<flushfuzz::arch::v6::ArmV6> {
    flushfuzz::model::Model::new(board(), flushfuzz::arch::v6::ArmV6).with_paths(paths())
}

#[test]
fn the_patch_is_found_minimized_replayed_and_triaged() {
    let m = model();
    let reference = unpatched();
    // What a campaign found (`flushfuzz hunt --target core/examples/own_target:patched`): a
    // store through a shared file mapping leaves a dirty line at the user's colour; direct I/O
    // from the device into the page calls flush_dcache_page, which the patch made write back
    // the kernel alias only; the device writes memory; the old user line is written back over
    // it. With ops that do not matter around it.
    let found = "flushfuzz-trace 1\npreset my-board\nexpect none\n\
                 start K0 cpu1 kmap-write buf=1 off=5\n\
                 start T1 cpu0 store page=141 off=0\nstep T1 cpu0\nstep T1 cpu0\nstep T1 cpu0\n\
                 evict cpu1 d pick=3\n\
                 start T0 cpu0 direct-io page=189 to-device=false\n\
                 start K0 cpu1 status-update file=0 index=2 off=1\n";
    let ops = Trace::parse_in(found, &m).expect("it parses").ops;
    let signature = m
        .run(&ops, RunOptions::default())
        .violation
        .expect("the patch has the race")
        .signature();
    assert!(reference
        .run(&ops, RunOptions::default())
        .violation
        .is_none());
    // Minimized keeping the signature and keeping the unpatched arch clean.
    let mut unpatched_clean =
        |o: &[flushfuzz::op::Op]| reference.run(o, RunOptions::default()).violation.is_none();
    let min = minimize_if(&m, &ops, &mut unpatched_clean).expect("it reproduces");
    assert_eq!(min.signature, signature);
    assert_eq!(min.ops.len(), 5, "{:?}", min.ops);
    assert!(unpatched_clean(&min.ops));

    // The trace names the board and the crate's paths, and reads back with the crate's model.
    let text = Trace::new(&m, &min.ops, Some(min.signature.clone())).to_text(&[]);
    assert!(text.contains("preset my-board"), "{text}");
    let back = Trace::parse_in(&text, &m).expect("the trace parses");
    assert_eq!(back.ops, min.ops);
    assert!(
        Trace::parse(&text).is_err(),
        "the shipped presets do not know my-board"
    );

    // Replayed with the event log, explained.
    let r = m.run(&back.ops, RunOptions { log: true });
    let v = r.violation.clone().expect("the trace reproduces");
    assert_eq!(v.signature(), signature);
    let shown = explain::timeline(&m, &back.ops, &r) + &explain::explain(&v, m.preset(), &r.actors);
    assert!(shown.contains("VIOLATION"), "{shown}");

    // Triaged with the crate's models, written to a folder of its own.
    let dir = std::env::temp_dir().join(format!("own-target-flow-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(dir.join("in")).unwrap();
    std::fs::write(dir.join("in").join("found.trace"), &text).unwrap();
    let models = ModelSet::new().with(model()).only();
    let o = tool::triage(
        &models,
        &[dir.join("in")],
        &dir.join("out"),
        None,
        true,
        &mut |_, _| {},
    );
    assert_eq!(o.code, 1, "{o:?}");
    let t: serde_json::Value = serde_json::from_str(&o.stdout).unwrap();
    assert_eq!(t["groups"][0]["signature"], signature.as_str());
    assert_eq!(t["groups"][0]["new"], true);
    let o = tool::replay(&models, &[dir.join("in").join("found.trace")], None, false);
    assert_eq!(o.code, 1, "{o:?}");
    let _ = std::fs::remove_dir_all(&dir);
}

/// The crate's own path runs, under its name, and the patched arch delegates everything but
/// `flush_dcache_page` to ARMv6.
#[test]
fn the_own_path_and_the_delegation_work() {
    let m = model();
    assert_eq!(
        m.catalog().name(
            &m.catalog()
                .action(
                    "status-update",
                    &[("file", "1"), ("index", "0"), ("off", "3")]
                )
                .unwrap()
        ),
        "status-update"
    );
    assert_eq!(
        flushfuzz::arch::Arch::arch_1_polarity(m.arch()),
        flushfuzz::arch::Arch1Polarity::DcacheClean
    );
    let text = "flushfuzz-trace 1\npreset my-board\nexpect none\nstart K0 cpu0 status-update file=1 index=0 off=3\n";
    let t = Trace::parse_in(text, &m).unwrap();
    let r = m.run(&t.ops, RunOptions { log: true });
    assert!(r.violation.is_none());
    assert!(r
        .events
        .iter()
        .any(|e| format!("{:?}", e.event).contains("flush_dcache_page")));
}
