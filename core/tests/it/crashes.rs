//! Every committed reproducer in `crashes/` is replayed: it must give the violation it
//! records, twice with the identical event log (hidden nondeterminism would show here), and
//! the race reproducers must give nothing on their `-fixed` twins.

use flushfuzz::harness::{load_file, replay, Loaded};
use flushfuzz::run::{run, RunOptions};
use flushfuzz::{explain, preset};
use std::path::PathBuf;

fn crash_files() -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crashes");
    let mut v: Vec<PathBuf> = std::fs::read_dir(&dir)
        .expect("crashes/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .collect();
    v.sort();
    v
}

fn load(p: &std::path::Path) -> Loaded {
    load_file(p, None).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

/// A reproducer that stops reproducing means the model or a path changed behaviour.
#[test]
fn every_crash_reproduces_its_recorded_violation() {
    let files = crash_files();
    assert!(
        files.len() >= 5,
        "the five hand-written reproducers are in crashes/"
    );
    for f in files {
        let l = load(&f);
        let r = replay(&l);
        let want = l.expect.clone().expect("a trace file");
        assert_eq!(
            r.violation.as_ref().map(|v| v.signature()),
            want,
            "{}",
            f.display()
        );
    }
}

/// Runs are pure functions of their input: replaying twice gives the same event log.
#[test]
fn every_crash_replays_twice_with_the_identical_event_log() {
    for f in crash_files() {
        let l = load(&f);
        let a = replay(&l);
        let b = replay(&l);
        assert!(!a.events.is_empty());
        assert_eq!(a.events, b.events, "{}", f.display());
        assert_eq!(a.violation, b.violation, "{}", f.display());
    }
}

/// The same ops under mainline behaviour on the same machine find nothing: the race comes
/// from the historical behaviour, not from the model.
#[test]
fn race_reproducers_pass_on_their_fixed_twins() {
    for f in crash_files() {
        let l = load(&f);
        let fixed = preset::by_name(&format!("{}-fixed", l.preset.name));
        let Some(fixed) = fixed else { continue };
        let r = run(&fixed, &l.ops, RunOptions::default());
        assert!(
            r.violation.is_none(),
            "{} on {}: {:?}",
            f.display(),
            fixed.name,
            r.violation.map(|v| v.signature())
        );
    }
}

/// The five races by name, with the kind of violation each must be.
#[test]
fn the_five_races_have_the_expected_kinds() {
    use flushfuzz::oracle::Kind;
    let want = [
        ("nfs-vmap-alias", Kind::StaleLoad),
        ("gup-anon-alias", Kind::StaleLoad),
        ("exec-icache-smp", Kind::StaleFetch),
        ("kmap-recycle-dma", Kind::LostWrite),
        ("fork-cow-alias", Kind::StaleLoad),
    ];
    for (name, kind) in want {
        let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../crashes/{name}.trace"));
        let r = replay(&load(&f));
        assert_eq!(r.violation.map(|v| v.kind), Some(kind), "{name}");
    }
}

/// The timelines people paste into mails; update with `INSTA_UPDATE=always cargo test`.
#[test]
fn timelines_of_the_five_races() {
    for name in [
        "nfs-vmap-alias",
        "gup-anon-alias",
        "exec-icache-smp",
        "kmap-recycle-dma",
        "fork-cow-alias",
    ] {
        let f = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(format!("../crashes/{name}.trace"));
        let l = load(&f);
        let r = replay(&l);
        let mut text = explain::timeline(&l.preset, &l.ops, &r);
        text.push('\n');
        text.push_str(&explain::explain(
            r.violation.as_ref().expect("violation"),
            &l.preset,
            &r.actors,
        ));
        insta::assert_snapshot!(name, text);
    }
}

/// A VIVT line hit through an address that now maps another frame must read the line's bytes
/// at the address's offset: this input once indexed past the end of the line (a model panic
/// found by a campaign on gup-anon-alias-fixed).
#[test]
fn vivt_hit_on_a_line_of_another_frame_does_not_panic() {
    let text = "flushfuzz-trace 1\npreset gup-anon-alias-fixed\nexpect none\n\
        start T1 cpu0 fetch page=91 off=91\n\
        start T1 cpu0 mprotect page=91 write=true exec=true\n\
        start T1 cpu0 mprotect page=91 write=true exec=true\n\
        start T1 cpu0 mprotect page=91 write=true exec=true\n\
        start T1 cpu0 mprotect page=91 write=true exec=false\n\
        start T1 cpu0 gup page=91 off=91 write=true\n\
        start T1 cpu0 read file=103 index=103 off=61 page=1\n\
        start T1 cpu0 fetch page=91 off=91\n\
        start T1 cpu0 read file=103 index=103 off=44 page=103\n\
        start T1 cpu0 mprotect page=129 write=true exec=true\n\
        start T1 cpu0 mprotect page=91 write=true exec=true\n";
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    for p in ["gup-anon-alias-fixed", "gup-anon-alias", "kmap-recycle-dma"] {
        let p = preset::by_name(p).unwrap();
        let ops = flushfuzz::trace::canonical(&p, &l.ops);
        let a = run(&p, &ops, RunOptions { log: true });
        let b = run(&p, &ops, RunOptions { log: true });
        assert_eq!(a.events, b.events);
    }
}
