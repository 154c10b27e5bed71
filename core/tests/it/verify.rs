//! Bounded verification through the library: the pruned search gives what the naive one gives
//! (verdicts, the first violating schedule, every violation's signature, every clean final
//! state), it is deterministic, it runs over a user's own arch, and a bolero property says
//! "this program is clean on this arch within K and E".

use flushfuzz::addr::{MmId, Pfn, Vpn};
use flushfuzz::arch::{vivt::ArmVivt, Arch};
use flushfuzz::model::{DynModel, Model};
use flushfuzz::op::Op;
use flushfuzz::preset;
use flushfuzz::run::RunOptions;
use flushfuzz::trace::Trace;
use flushfuzz::verify::{self, Options, Outcome, Program, Pruning, Stop};
use flushfuzz::world::Cx;

fn model(name: &str) -> std::rc::Rc<dyn DynModel> {
    flushfuzz::model::shipped_cached(&preset::by_name(name).expect("a preset"))
}

fn crash(name: &str) -> Vec<Op> {
    let text = std::fs::read_to_string(format!(
        "{}/../crashes/{name}.trace",
        env!("CARGO_MANIFEST_DIR")
    ))
    .expect("a committed trace");
    Trace::parse(&text).expect("it parses").ops
}

/// `actor` starts `name` with `fields` on `m`.
fn action(m: &dyn DynModel, name: &str, fields: &[(&str, &str)]) -> flushfuzz::op::Action {
    m.catalog().action(name, fields).expect("an action")
}

fn search(m: &dyn DynModel, p: &Program, k: u32, e: u32, pruning: Pruning, stop: Stop) -> Outcome {
    let o = m.verify(
        p,
        &Options::bounded(k, e).pruning(pruning).stop(stop),
        &mut |_| {},
    );
    assert_eq!(
        o.stats.cut, 0,
        "a schedule was cut: the comparison would be partial"
    );
    o
}

/// Small programs on the race machines, each explored every way: naive, with commuting events
/// only, with explored states only, and with both. The pruned searches must end with what the
/// naive one ends with: the same signatures of violations (all of them), the same final states
/// of the clean schedules, and, stopping at the first violation, the same schedule.
#[test]
fn pruned_and_naive_searches_agree_on_small_programs() {
    struct Case {
        preset: &'static str,
        program: Program,
        k: u32,
        e: u32,
    }
    // A committed race's program on `preset`.
    let of_crash = |preset: &'static str, race: &str, k: u32, e: u32| Case {
        preset,
        program: Program::of(&*model(preset), &crash(race)),
        k,
        e,
    };
    let mut cases = Vec::new();
    // The GUP race: a store and a FUSE read of the same page; on the fixed twin, clean.
    for preset in ["gup-anon-alias", "gup-anon-alias-fixed"] {
        cases.push(of_crash(preset, "gup-anon-alias", 1, 1));
    }
    // Two threads storing to their pages, with events.
    {
        let m = model("fork-cow-alias");
        let store = |page: &str| action(&*m, "store", &[("page", page), ("off", "0")]);
        let load = |page: &str| action(&*m, "load", &[("page", page), ("off", "0")]);
        let p = Program::new()
            .start(0, store("1"))
            .start(1, load("1"))
            .start(0, load("1"));
        cases.push(Case {
            preset: "fork-cow-alias",
            program: p,
            k: 1,
            e: 0,
        });
    }
    // The exec race's program with one event: thousands of schedules, many of them
    // equivalent.
    cases.push(of_crash("exec-icache-smp", "exec-icache-smp", 0, 1));
    // The same program on the fixed twin with two events: where the second event leaves
    // every actor asleep, the search does not follow it (a dead end holds no schedule).
    cases.push(of_crash("exec-icache-smp-fixed", "exec-icache-smp", 0, 2));
    let mut violations = 0;
    let mut clean = 0;
    for c in &cases {
        let m = model(c.preset);
        assert!(!c.program.is_empty(), "{}", c.preset);
        let naive = search(&*m, &c.program, c.k, c.e, Pruning::Naive, Stop::Never);
        let naive_first = search(&*m, &c.program, c.k, c.e, Pruning::Naive, Stop::First);
        for pruning in [Pruning::Commute, Pruning::States, Pruning::Full] {
            let what = format!("{} with {pruning:?}, K={} E={}", c.preset, c.k, c.e);
            let all = search(&*m, &c.program, c.k, c.e, pruning, Stop::Never);
            assert_eq!(all.signatures, naive.signatures, "{what}: violations");
            assert_eq!(all.finals, naive.finals, "{what}: final states");
            assert!(
                all.stats.states <= naive.stats.states,
                "{what}: {:?} against {:?}",
                all.stats,
                naive.stats
            );
            let first = search(&*m, &c.program, c.k, c.e, pruning, Stop::First);
            assert_eq!(
                first.violation.as_ref().map(|v| &v.ops),
                naive_first.violation.as_ref().map(|v| &v.ops),
                "{what}: the first violating schedule"
            );
        }
        let full = search(&*m, &c.program, c.k, c.e, Pruning::Full, Stop::Never);
        if c.e >= 2 {
            assert!(full.stats.dead > 0, "{}: no dead end", c.preset);
        }
        eprintln!(
            "{} K={} E={}: naive {} schedules, {} states; pruned {} schedules, {} states; {} violation signature(s), {} final state(s)",
            c.preset,
            c.k,
            c.e,
            naive.stats.schedules,
            naive.stats.states,
            full.stats.schedules,
            full.stats.states,
            naive.signatures.len(),
            naive.finals.len()
        );
        if naive.signatures.is_empty() {
            clean += 1;
        } else {
            violations += 1;
            // The first violating schedule replays its violation.
            let v = naive_first.violation.expect("a first violation");
            let r = m.run(&v.ops, RunOptions::default());
            assert_eq!(
                r.violation.map(|x| x.signature()),
                Some(v.violation.signature())
            );
        }
    }
    // Both kinds of verdict were compared.
    assert!(violations >= 1 && clean >= 1, "{violations} {clean}");
}

/// The same search twice gives the same everything.
#[test]
fn verify_is_deterministic() {
    let m = model("kmap-recycle-dma");
    let p = Program::of(&*m, &crash("kmap-recycle-dma"));
    let run = || m.verify(&p, &Options::bounded(1, 1), &mut |_| {});
    let (a, b) = (run(), run());
    assert_eq!(a.stats, b.stats);
    assert_eq!(
        a.violation
            .as_ref()
            .map(|v| (&v.ops, v.violation.signature())),
        b.violation
            .as_ref()
            .map(|v| (&v.ops, v.violation.signature()))
    );
}

/// A user's arch: ARM VIVT that forgets `flush_anon_page` in GUP, as a maintainer's bug would.
#[derive(Clone, Copy, Debug, Default)]
struct NoFlushAnonPage(ArmVivt);

impl Arch for NoFlushAnonPage {
    type Base = ArmVivt;
    fn base(&self) -> &ArmVivt {
        &self.0
    }
    fn name(&self) -> &'static str {
        "arm-vivt-without-flush_anon_page-in-gup"
    }
    async fn flush_anon_page<O: Arch>(&self, cx: &Cx<O>, mm: MmId, pfn: Pfn, vpn: Vpn) {
        if cx.action() != "gup" {
            self.base().flush_anon_page(cx, mm, pfn, vpn).await;
        }
    }
}

/// Over any arch: the GUP program on mainline behaviour is clean with the shipped ARM VIVT and
/// has a violation with the user's arch that drops the flush, found by `verify::verify` on a
/// `Model` of it, with a schedule `Model::run` replays.
#[test]
fn verify_runs_over_a_users_arch() {
    let p = preset::by_name("gup-anon-alias-fixed").unwrap();
    let shipped = Model::new(p.clone(), ArmVivt);
    let mine = Model::new(p, NoFlushAnonPage::default());
    let program = verify::program_of(&shipped, &crash("gup-anon-alias"));
    let opts = Options::bounded(2, 2);
    let clean = verify::verify(&shipped, &program, &opts, &mut |_| {});
    assert!(clean.is_clean(), "{:?}", clean.violation);
    let found = verify::verify(&mine, &program, &opts, &mut |_| {});
    let v = found.violation.expect("the dropped flush is found");
    assert!(
        v.violation.signature().contains("fuse"),
        "{}",
        v.violation.signature()
    );
    let r = mine.run(&v.ops, RunOptions::default());
    assert_eq!(
        r.violation.map(|x| x.signature()),
        Some(v.violation.signature())
    );
}

/// A bolero property over verify: any program of up to two actions on `coherent` (every
/// historical switch on, coherent hardware) is clean in every schedule with one preemption and
/// one event. Two actions keep every exploration small (a third one of the long paths, execve or
/// a large-folio fault, multiplies the states by thousands). Under `cargo bolero test
/// verify::coherent_programs_are_clean_in_every_schedule` it runs with coverage feedback.
#[test]
fn coherent_programs_are_clean_in_every_schedule() {
    bolero::check!()
        .with_generator(bolero::produce::<Vec<Op>>().with().len(1usize..=2))
        .with_iterations(12)
        .for_each(|ops: &Vec<Op>| {
            let m = model("coherent");
            let p = Program::of(&*m, ops);
            let out = m.verify(&p, &Options::bounded(1, 1), &mut |_| {});
            if let Some(v) = &out.violation {
                let t = Trace::new(&*m, &v.ops, Some(v.violation.signature()));
                panic!(
                    "{}; as a trace:\n{}",
                    v.violation.signature(),
                    t.to_text(&[])
                );
            }
        });
}
