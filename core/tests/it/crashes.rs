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
        let fixed = preset::by_name(&format!("{}-fixed", l.preset().name));
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
        let mut text = explain::timeline(&*l.model, &l.ops, &r);
        text.push('\n');
        text.push_str(&explain::explain(
            r.violation.as_ref().expect("violation"),
            l.preset(),
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
        let ops = flushfuzz::trace::canonical(&*flushfuzz::model::shipped_cached(&p), &l.ops);
        let a = run(&p, &ops, RunOptions { log: true });
        let b = run(&p, &ops, RunOptions { log: true });
        assert_eq!(a.events, b.events);
    }
}

/// Runs `ops` (trace lines) on `preset` and asserts it finds nothing.
fn assert_clean_trace(preset: &str, ops: &str) {
    let text = format!("flushfuzz-trace 1\npreset {preset}\nexpect none\n{ops}");
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let r = l.model.run(&l.ops, RunOptions::default());
    assert!(
        r.violation.is_none(),
        "{preset}: {:?}",
        r.violation.map(|v| v.signature())
    );
}

/// A ptrace poke into a shared data mapping of a file page that another mapping executes:
/// the kernel syncs the I-cache only for an executable target VMA, so running the poked bytes
/// through the other mapping needs the user's cacheflush, as a store there would. Random
/// search on fork-cow-alias-fixed once reported the audit's fetch as stale.
#[test]
fn ptrace_poke_into_a_data_mapping_is_user_data_for_the_icache() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T0 cpu0 mmap file=89 pgoff=0 at=197 shared=true exec=true fixed=false\n\
         start T0 cpu0 write file=0 index=0 off=0 page=74\n\
         start T1 cpu0 ptrace-poke target=0 page=94 off=0\n",
    );
}

/// A record the kernel writes into a ring buffer the user has made executable with mprotect:
/// like `copy_to_user`'s data, it is the user's to sync before running it. `flushfuzz hunt` on
/// nfs-vmap-alias-fixed once reported the audit's fetch through the user mapping as stale.
#[test]
fn a_ring_record_is_user_data_for_the_icache() {
    assert_clean_trace(
        "nfs-vmap-alias-fixed",
        "start T0 cpu0 ring-mmap ring=0 pages=1 at=5 write=false\n\
         start T0 cpu0 mprotect page=191 write=false exec=true\n\
         start T0 cpu0 ring-output ring=0 page=1 off=0\n",
    );
}

/// A direct-I/O read into a shared file page while a tracer pokes the same page through
/// another process's mapping, after GUP pinned it and before `dma_map_page`: the user raced its
/// own I/O, so the poked line may land over the device's data. Random search on
/// fork-cow-alias-fixed once reported the dirty poked line as a lost write.
#[test]
fn a_store_racing_a_direct_io_read_may_win() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T1 cpu0 fork\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         start T1 cpu0 direct-io page=22 to-device=false\n\
         start T0 cpu0 ptrace-poke target=110 page=22 off=0\n",
    );
}

/// The same race the other way: a direct-I/O write from a shared file page while a tracer pokes
/// it through another process's mapping; the device may read either value. Random search on
/// fork-cow-alias-fixed once reported the device's read as stale.
#[test]
fn a_store_racing_a_direct_io_write_may_be_missed_by_the_device() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T1 cpu0 fork\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         start T0 cpu0 direct-io page=165 to-device=true\n\
         start T1 cpu0 ptrace-poke target=230 page=21 off=0\n",
    );
}

/// A FUSE write into a pinned shared file page and a tracer's poke of the same byte through
/// another process's mapping race: either may be the byte's final value, even when the older
/// one's alias is written back last and the newer one is gone. Random search on
/// fork-cow-alias-fixed once reported the end-of-run audit's memory value as a lost write.
#[test]
fn two_racing_writes_to_one_byte_may_end_with_either() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T0 cpu0 fork\n\
         start T1 cpu0 gup page=225 off=48 write=true\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T1 cpu0\n\
         start T0 cpu0 ptrace-poke target=182 page=33 off=48\n",
    );
}

/// The same with the two writes on neighbouring bytes of one cache line: the poked line at the
/// user's colour carries the old byte the FUSE write changed through the kernel alias, and no
/// order of write-backs keeps both. The operations were in flight together on the user's pinned
/// page, so the FUSE byte may end with its old value.
#[test]
fn racing_writes_to_one_line_through_incongruent_aliases_may_lose_either() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T0 cpu0 fork\n\
         start T1 cpu0 gup page=225 off=48 write=true\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T0 cpu0\n\
         step T1 cpu0\n\
         start T0 cpu0 ptrace-poke target=182 page=33 off=49\n",
    );
}

/// A child's copy-on-write fault reads a shared file page while the parent's direct I/O from a
/// device has it pinned: the copy leaves a clean line at the user's colour that outlives the
/// transfer. The user raced its own I/O, so each byte may keep its old value.
#[test]
fn reading_a_page_under_the_users_own_io_may_leave_its_old_value() {
    assert_clean_trace(
        "fork-cow-alias-fixed",
        "start T0 cpu0 munmap page=0 pages=82\n\
         start T0 cpu0 mmap file=25 pgoff=0 at=0 shared=false exec=false fixed=false\n\
         start T1 cpu0 fork\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         step T1 cpu0\n\
         start T2 cpu0 store page=133 off=0\n\
         start T0 cpu0 direct-io page=245 to-device=false\n",
    );
}

/// Two threads fork at once: each fork takes its child's actor slot and address space before
/// it can yield, so the two never share them (they once did, and the second child took over
/// the first one's slot while it held a `kmap_atomic` on another CPU). With one free slot, the
/// second fork fails.
#[test]
fn concurrent_forks_never_share_a_child() {
    let text = "flushfuzz-trace 1\npreset coherent\nexpect none\n\
                start T0 cpu0 fork\nstart T1 cpu1 fork\n";
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let r = l.model.run(&l.ops, RunOptions { log: true });
    let children: Vec<String> = r
        .events
        .iter()
        .filter_map(|e| match &e.event {
            flushfuzz::event::Event::Note(s) if s.starts_with("child process") => Some(s.clone()),
            _ => None,
        })
        .collect();
    assert_eq!(children.len(), 1, "{children:?}");
    assert!(r.violation.is_none());
}

/// Two compactions pick the same page: the first isolates it (takes it off the LRU), so the
/// second finds nothing to migrate. They once migrated it both: the second found the page
/// unmapped by the first, failed, and put it back by mapping it again while the first was still
/// to copy it, so the copy missed the user's next store (a stale `copy_highpage` on VIVT).
#[test]
fn a_page_under_migration_is_not_migrated_again() {
    let text = "flushfuzz-trace 1\npreset gup-anon-alias-fixed\nexpect none\n\
                start T0 cpu0 store page=0 off=0\nstart K1 cpu0 migrate page=0\n\
                step T0 cpu0\nstep T0 cpu0\nstep K1 cpu0\nstep K1 cpu0\n\
                start K0 cpu0 migrate page=0\nstep K0 cpu0\nstep K0 cpu0\n";
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let r = l.model.run(&l.ops, RunOptions { log: true });
    let failed = r.events.iter().any(|e| {
        matches!(&e.event, flushfuzz::event::Event::Note(s) if s.starts_with("migration failed"))
    });
    assert!(!failed, "the second compaction migrated an isolated page");
    assert!(r.violation.is_none(), "{:?}", r.violation);
}

/// A family said to be in mainline behaviour (`triage::in_mainline`) is no bare claim: a
/// committed reproducer shows it on a preset with mainline behaviour (a `-fixed` twin, or a
/// machine of one arch's mainline code, such as `riscv` or `sh4`: no historical switch on).
#[test]
fn every_mainline_hole_reproduces_with_mainline_behaviour() {
    let shown: Vec<String> = crash_files()
        .iter()
        .map(|f| load(f))
        .filter(|l| l.preset().switches == flushfuzz::preset::Switches::default())
        .filter_map(|l| replay(&l).violation)
        .filter(flushfuzz::triage::in_mainline)
        .map(|v| flushfuzz::triage::family(&v))
        .collect();
    let claimed: Vec<&str> = flushfuzz::triage::FAMILIES
        .iter()
        .filter(|r| r.mainline)
        .map(|r| r.name)
        .collect();
    for name in claimed {
        assert!(shown.iter().any(|s| s == name), "{name}: no reproducer");
    }
}

/// A hart marked stale for an address space fences its I-cache in `switch_mm` before a thread
/// of that address space runs there (RISC-V `flush_icache_deferred`), so the end-of-run audit
/// judges that hart's view after the switch: a line the hart fetched before the page was read
/// in is no violation (it was one before the audit knew of `switch_mm`, found by random
/// inputs on the `riscv` preset). The same program on a RISC-V whose `switch_mm` forgets the
/// deferred fence is one.
#[test]
fn the_audit_judges_another_harts_view_after_switch_mm() {
    use flushfuzz::addr::MmId;
    use flushfuzz::arch::{riscv::Riscv, Arch};
    use flushfuzz::model::Model;
    use flushfuzz::world::Cx;

    #[derive(Clone, Copy, Debug, Default)]
    struct NoDeferredFence(Riscv);
    impl Arch for NoDeferredFence {
        type Base = Riscv;
        fn base(&self) -> &Riscv {
            &self.0
        }
        async fn switch_mm<O: Arch>(&self, _cx: &Cx<O>, _prev: Option<MmId>, _next: MmId) {}
    }

    let text = "flushfuzz-trace 1\npreset riscv\nexpect none\n\
        speculate cpu0 i pick=0\n\
        start T0 cpu1 load page=4 off=0\n";
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let p = preset::by_name("riscv").unwrap();
    let r = run(&p, &l.ops, RunOptions::default());
    assert_eq!(r.violation.map(|v| v.signature()), None);
    let forgetful = Model::new(p, NoDeferredFence::default());
    let v = forgetful.run(&l.ops, RunOptions::default()).violation;
    assert_eq!(
        v.map(|v| v.signature()).as_deref(),
        Some("stale-fetch:end-of-run audit@user<-device@device")
    );
}

/// `dup_mm` copies the parent's `mm_struct`, so a forked child inherits RISC-V's
/// `icache_stale_mask`: a child forked after the parent's `flush_icache_pte` marked hart 1 stale
/// fences hart 1 when it first runs there. A campaign on `riscv` reported this program while the
/// model gave every child a zero context.
#[test]
fn a_forked_child_inherits_its_parents_stale_harts() {
    let steps = |n: usize| "step T0 cpu0\n".repeat(n);
    let text = format!(
        "flushfuzz-trace 1\npreset riscv\nexpect none\n\
         start T0 cpu0 load page=4 off=0\n{}speculate cpu1 i pick=0\n{}start T1 cpu0 fork\n",
        steps(6),
        steps(12)
    );
    let l = flushfuzz::harness::load_bytes(text.as_bytes(), None).unwrap();
    let p = preset::by_name("riscv").unwrap();
    let r = run(&p, &l.ops, RunOptions::default());
    assert_eq!(r.violation.map(|v| v.signature()), None);
}
