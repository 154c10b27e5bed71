//! Fuzz campaigns without running libFuzzer: the seed corpus (generated deterministically, every
//! seed decoding to a harmless input on its preset, the committed files up to date), the
//! pure-random baseline's determinism, and the reader of libFuzzer's output that `hunt` uses.

use flushfuzz::corpus::libfuzzer::{parse_line, Line, Progress};
use flushfuzz::corpus::{
    self, random_search, script_ops, seed_is_for, seed_preset, RandomOps, SeedFile, RACES_DIR,
    RANDOM_LEN, TRACE_PARSER_DIR,
};
use flushfuzz::harness::{self, RACE_PRESETS};
use flushfuzz::preset;
use flushfuzz::run::{run, RunOptions};
use flushfuzz::trace::Trace;
use std::path::PathBuf;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn crash_traces() -> Vec<(String, String)> {
    let mut v: Vec<(String, String)> = std::fs::read_dir(root().join("crashes"))
        .expect("crashes/ exists")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "trace"))
        .map(|p| {
            (
                p.file_stem().unwrap().to_str().unwrap().to_string(),
                std::fs::read_to_string(&p).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn races(files: &[SeedFile]) -> Vec<&SeedFile> {
    files.iter().filter(|f| f.dir == RACES_DIR).collect()
}

/// Every `races/` seed decodes (as libFuzzer would feed it, preset byte included) to its own
/// preset, and produces no violation there, on the preset's `-fixed` twin or on `coherent`:
/// a seed that crashed would stop a campaign before it started.
#[test]
fn race_seeds_decode_to_inputs_that_do_not_crash() {
    let files = corpus::generate(&[]).expect("seeds generate");
    let seeds = races(&files);
    for p in RACE_PRESETS {
        let hand = seeds
            .iter()
            .filter(|f| f.name.starts_with(&format!("{p}-hand-")))
            .count();
        let rand = seeds
            .iter()
            .filter(|f| f.name.starts_with(&format!("{p}-rand-")))
            .count();
        assert!(hand >= 3, "{p}: {hand} hand-picked seeds");
        assert_eq!(rand, corpus::RANDOM_SEEDS_PER_PRESET, "{p}: random seeds");
    }
    let coherent = preset::by_name("coherent").unwrap();
    for f in seeds {
        let want = seed_preset(&f.name).unwrap_or_else(|| panic!("{}: unnamed seed", f.name));
        let (p, ops) = harness::decode(&f.bytes, None);
        assert_eq!(p.name, want, "{}: decodes to another preset", f.name);
        assert!(!ops.is_empty(), "{}: no ops", f.name);
        let twin = preset::by_name(&format!("{want}-fixed")).unwrap();
        for q in [&p, &twin, &coherent] {
            let r = run(q, &ops, RunOptions::default());
            assert!(
                r.violation.is_none(),
                "{} crashes on {}: {}\n{}",
                f.name,
                q.name,
                r.violation.unwrap().signature(),
                Trace::new(&*flushfuzz::model::shipped_cached(q), &ops, None).to_text(&[])
            );
        }
        // What the fuzz target runs: it must not panic.
        harness::fuzz_one(&f.bytes);
    }
}

/// The hand-picked seeds are the scripts' ops, encoded exactly (the encoder and `arbitrary`
/// agree), and `run` lines really run each action to its end.
#[test]
fn hand_seeds_encode_their_scripts_exactly() {
    for (i, name) in RACE_PRESETS.iter().enumerate() {
        let seeds = corpus::hand_seeds(name).unwrap();
        assert!(!seeds.is_empty());
        for ops in &seeds {
            let bytes = harness::encode(i as u8, ops);
            let (p, back) = harness::decode(&bytes, None);
            assert_eq!(p.name, *name);
            assert_eq!(&back, ops);
        }
    }
    // A store to a fresh anonymous page faults, zero-fills, maps and stores: several steps.
    let p = preset::by_name("gup-anon-alias").unwrap();
    let ops = script_ops(&p, "run T0 cpu0 store page=1 off=0").unwrap();
    assert!(ops.len() > 2, "{ops:?}");
    let started = script_ops(&p, "start T0 cpu0 store page=1 off=0").unwrap();
    assert_eq!(started.len(), 1);
    assert_eq!(started[0], ops[0]);
    // After `run`, the actor is idle: another action starts at once.
    let two = script_ops(
        &p,
        "run T0 cpu0 store page=1 off=0\nstart T0 cpu0 load page=1 off=0",
    )
    .unwrap();
    assert_eq!(two.len(), ops.len() + 1);
    assert!(script_ops(&p, "walk T0 cpu0").is_err());
    assert!(script_ops(&p, "run T9 cpu0 fork").is_err());
    assert!(script_ops(&p, "run step T0 cpu0").is_err());
}

/// The same inputs give the same files, byte for byte, with distinct names.
#[test]
fn corpus_generation_is_deterministic() {
    let traces = crash_traces();
    let a = corpus::generate(&traces).unwrap();
    let b = corpus::generate(&traces).unwrap();
    assert_eq!(a, b);
    let mut names: Vec<(&str, &str)> = a.iter().map(|f| (f.dir, f.name.as_str())).collect();
    names.sort();
    let n = names.len();
    names.dedup();
    assert_eq!(names.len(), n, "duplicate file names");
    // Every reproducer is in the trace-parser corpus as is.
    for (stem, text) in &traces {
        assert!(a.iter().any(|f| f.dir == TRACE_PARSER_DIR
            && f.name == format!("{stem}.trace")
            && f.bytes == text.as_bytes()));
    }
}

/// The committed corpus is what this version generates (`flushfuzz corpus --check`): a change
/// to the op encoding must come with regenerated seeds.
#[test]
fn committed_corpus_is_up_to_date() {
    let files = corpus::generate(&crash_traces()).unwrap();
    for f in &files {
        let path = root().join("corpus").join(f.dir).join(&f.name);
        let got = std::fs::read(&path).unwrap_or_else(|e| {
            panic!(
                "{}: {e}; regenerate the corpus with `flushfuzz corpus`",
                path.display()
            )
        });
        assert!(
            got == f.bytes,
            "{} differs from what `flushfuzz corpus` generates",
            path.display()
        );
    }
}

/// The trace-parser seeds: variants parse (or fail) as intended.
#[test]
fn trace_parser_seed_variants() {
    let traces = crash_traces();
    let files = corpus::generate(&traces).unwrap();
    let tp: Vec<&SeedFile> = files.iter().filter(|f| f.dir == TRACE_PARSER_DIR).collect();
    for (stem, text) in &traces {
        let t = Trace::parse(text).unwrap();
        let get = |suffix: &str| {
            let name = format!("{stem}-{suffix}.trace");
            let f = tp
                .iter()
                .find(|f| f.name == name)
                .unwrap_or_else(|| panic!("{name} missing"));
            String::from_utf8(f.bytes.clone()).unwrap()
        };
        assert_eq!(Trace::parse(&get("canonical")).unwrap(), t);
        assert_eq!(Trace::parse(&get("numbered")).unwrap(), t);
        for l in get("numbered").lines() {
            if l.starts_with("start ") || l.starts_with("step ") {
                assert!(l.split(' ').nth(1).unwrap().starts_with('#'), "{l}");
            }
        }
        assert_eq!(Trace::parse(&get("expect-none")).unwrap().expect, None);
        assert!(Trace::parse(&get("version-2")).is_err());
        assert!(Trace::parse(&get("cut")).is_err() || Trace::parse(&get("cut")).unwrap() != t);
        // The parser target's body accepts them all without panicking.
        for suffix in ["canonical", "numbered", "expect-none", "version-2", "cut"] {
            harness::fuzz_trace_parser(get(suffix).as_bytes());
        }
    }
    // The hand-picked race seeds are there as traces too, with `expect none`.
    let seeds = tp
        .iter()
        .filter(|f| f.name.contains("-hand-"))
        .collect::<Vec<_>>();
    assert!(seeds.len() >= RACE_PRESETS.len() * 3);
    for f in seeds {
        let t = Trace::parse(std::str::from_utf8(&f.bytes).unwrap()).unwrap();
        assert_eq!(t.expect, None, "{}", f.name);
    }
}

/// Campaigns on a preset take its own seeds (the `-fixed` twin its race's); other presets take
/// them all.
#[test]
fn seed_selection_by_preset() {
    assert_eq!(
        seed_preset("fork-cow-alias-hand-00"),
        Some("fork-cow-alias")
    );
    assert_eq!(
        seed_preset("fork-cow-alias-rand-03"),
        Some("fork-cow-alias")
    );
    assert_eq!(seed_preset("fork-cow-alias-00"), None);
    assert_eq!(seed_preset("crash-1234"), None);
    assert!(seed_is_for("fork-cow-alias-hand-00", "fork-cow-alias"));
    assert!(seed_is_for(
        "fork-cow-alias-hand-00",
        "fork-cow-alias-fixed"
    ));
    assert!(!seed_is_for("gup-anon-alias-rand-01", "fork-cow-alias"));
    assert!(!seed_is_for(
        "gup-anon-alias-rand-01",
        "fork-cow-alias-fixed"
    ));
    assert!(seed_is_for("gup-anon-alias-rand-01", "coherent"));
    assert!(seed_is_for("my-own-input", "fork-cow-alias"));
}

/// The random baseline is a pure function of its seed.
#[test]
fn random_baseline_is_deterministic_for_a_seed() {
    let seqs = |seed| {
        let mut g = RandomOps::new(seed);
        (0..20).map(|_| g.ops()).collect::<Vec<_>>()
    };
    let a = seqs(11);
    assert_eq!(a, seqs(11));
    assert_ne!(a, seqs(12));
    for s in &a {
        assert!(RANDOM_LEN.contains(&s.len()), "length {}", s.len());
    }
    assert!(
        a.iter()
            .map(Vec::len)
            .collect::<std::collections::BTreeSet<_>>()
            .len()
            > 5
    );
    assert!(RandomOps::with_len(1, std::ops::RangeInclusive::new(5, 4))
        .ops()
        .is_empty());
    assert_eq!(RandomOps::with_len(1, 7..=7).ops().len(), 7);

    // A budget of runs: the same outcome twice; a hit replays to its signature.
    let p = preset::by_name("gup-anon-alias").unwrap();
    let x = random_search(&p, 5, |n| n < 3000);
    let y = random_search(&p, 5, |n| n < 3000);
    assert_eq!(x, y);
    match &x.1 {
        Some(hit) => {
            assert_eq!(hit.execs, x.0);
            let r = run(&p, &hit.ops, RunOptions::default());
            assert_eq!(
                r.violation.map(|v| v.signature()),
                Some(hit.signature.clone())
            );
        }
        None => assert_eq!(x.0, 3000),
    }
    // On coherent hardware nothing is found and the budget is spent exactly.
    let c = preset::by_name("coherent").unwrap();
    assert_eq!(random_search(&c, 5, |n| n < 300), (300, None));
}

fn status(execs: u64, what: &str, cov: Option<u64>, corpus: Option<u64>, eps: Option<u64>) -> Line {
    Line::Status {
        execs,
        what: what.into(),
        cov,
        ft: match what {
            "NEW" => Some(890),
            "pulse" => Some(2290),
            "fork" => Some(4912),
            _ => None,
        },
        corpus,
        exec_per_sec: eps,
    }
}

/// libFuzzer's lines, as this version prints them.
#[test]
fn libfuzzer_lines_parse() {
    assert_eq!(
        parse_line("#1234\tNEW    cov: 567 ft: 890 corp: 89/12Kb lim: 4096 exec/s: 123456 rss: 29Mb L: 2/2 MS: 3 ShuffleBytes-ChangeBit-CrossOver-"),
        Some(status(1234, "NEW", Some(567), Some(89), Some(123456)))
    );
    assert_eq!(
        parse_line(
            "#65536\tpulse  cov: 1068 ft: 2290 corp: 59/7292b lim: 4096 exec/s: 21845 rss: 31Mb"
        ),
        Some(status(65536, "pulse", Some(1068), Some(59), Some(21845)))
    );
    assert_eq!(
        parse_line("#16263: cov: 1715 ft: 4912 corp: 286 exec/s: 3171 oom/timeout/crash: 0/0/0 time: 3s job: 2 dft_time: 0"),
        Some(status(16263, "fork", Some(1715), Some(286), Some(3171)))
    );
    assert!(matches!(
        parse_line("#69\tINITED cov: 1068 ft: 2153 corp: 59/7292b exec/s: 0 rss: 29Mb"),
        Some(Line::Status { execs: 69, ref what, corpus: Some(59), .. }) if what == "INITED"
    ));
    assert_eq!(
        parse_line("==26043== ERROR: libFuzzer: deadly signal"),
        Some(Line::Error("deadly signal".into()))
    );
    assert_eq!(
        parse_line("artifact_prefix='/tmp/w/'; Test unit written to /tmp/w/crash-791400d16237cb0efcaa0c45237a5b03e3e63db1"),
        Some(Line::Artifact("/tmp/w/crash-791400d16237cb0efcaa0c45237a5b03e3e63db1".into()))
    );
    assert_eq!(
        parse_line("stat::number_of_executed_units: 309345"),
        Some(Line::Stat("number_of_executed_units".into(), 309345))
    );
    assert_eq!(
        parse_line("stat::average_exec_per_sec:     9978"),
        Some(Line::Stat("average_exec_per_sec".into(), 9978))
    );
    assert_eq!(
        parse_line("Done 309345 runs in 31 second(s)"),
        Some(Line::Done {
            execs: 309345,
            seconds: 31
        })
    );
    assert_eq!(
        parse_line(
            "flushfuzz: stale-load:decode@vmap<-readdir@linear on preset nfs-vmap-alias (19 ops)"
        ),
        Some(Line::Violation {
            signature: "stale-load:decode@vmap<-readdir@linear".into(),
            preset: "nfs-vmap-alias".into()
        })
    );
    assert_eq!(
        parse_line("INFO: log from the inner process:"),
        Some(Line::InnerLog)
    );
    for other in [
        "INFO: Seed: 1",
        "###### Recommended dictionary. ######",
        "\"\\377\\377\" # Uses: 21",
        "\tNEW_FUNC[1/3]: 0x558192c06f61",
        "MS: 1 InsertRepeatedBytes-; base unit: d9d2526089d048e78a0370fe0a201a33e314fef3",
        "thread '<unnamed>' (26043) panicked at /work/main/core/src/harness.rs:71:9:",
        "",
    ] {
        assert_eq!(parse_line(other), None, "{other:?}");
    }
}

fn feed(lines: &str) -> Progress {
    let mut p = Progress::default();
    for l in lines.lines() {
        if let Some(l) = parse_line(l) {
            p.feed(&l);
        }
    }
    p
}

/// A single-process campaign that crashes: executions to the crash come from the final stats.
#[test]
fn progress_of_a_crashing_campaign() {
    let p = feed(
        "#69\tINITED cov: 1068 ft: 2153 corp: 59/7292b exec/s: 0 rss: 29Mb
#4096\tpulse  cov: 1100 ft: 2290 corp: 70/9Kb lim: 4096 exec/s: 4096 rss: 31Mb
#5000\tNEW    cov: 1102 ft: 2300 corp: 71/9Kb lim: 4096 exec/s: 5000 rss: 31Mb L: 3/3 MS: 1 CopyPart-
flushfuzz: stale-fetch:user fetch@user<-readpage@linear on preset exec-icache-smp (3 ops)
==1== ERROR: libFuzzer: deadly signal
artifact_prefix='/w/'; Test unit written to /w/crash-abc
stat::number_of_executed_units: 8912
stat::average_exec_per_sec:     0
stat::new_units_added:          447",
    );
    assert_eq!(p.cov, 1102);
    assert_eq!(p.corpus, 71);
    assert_eq!(p.error.as_deref(), Some("deadly signal"));
    assert_eq!(
        p.signature.as_deref(),
        Some("stale-fetch:user fetch@user<-readpage@linear")
    );
    assert_eq!(p.artifact.as_deref(), Some("/w/crash-abc"));
    assert_eq!(p.crash_execs, Some(8912));
    assert_eq!(p.total_execs(), 8912);
    assert!(!p.fork_mode);
    assert_eq!(p.stats.get("new_units_added"), Some(&447));
}

/// Fork mode: the main process counts finished jobs; the crashed job's log follows, with its
/// own counts, which are added.
#[test]
fn progress_of_a_fork_mode_campaign() {
    let p = feed(
        "#6748: cov: 0 ft: 0 corp: 0 exec/s: 3374 oom/timeout/crash: 0/0/0 time: 2s job: 1 dft_time: 0
#16751: cov: 1749 ft: 5282 corp: 352 exec/s: 0 oom/timeout/crash: 0/0/0 time: 4s job: 4 dft_time: 0
INFO: log from the inner process:
#19\tINITED cov: 1393 ft: 3072 corp: 18/6006b exec/s: 0 rss: 29Mb
#400\tNEW    cov: 1400 ft: 3080 corp: 19/6100b lim: 4096 exec/s: 0 rss: 29Mb L: 3/3 MS: 1 CopyPart-
flushfuzz: stale-load:end-of-run audit@user<-fuse-write-to-user@linear on preset gup-anon-alias (13 ops)
==27395== ERROR: libFuzzer: deadly signal
artifact_prefix='/w/'; Test unit written to /w/crash-b933
stat::number_of_executed_units: 488
stat::average_exec_per_sec:     0
INFO: exiting: 77 time: 4s",
    );
    assert!(p.fork_mode);
    assert_eq!(p.execs, 16751);
    assert_eq!(p.inner_execs, 488);
    assert_eq!(p.cov, 1749, "the job's coverage is not the campaign's");
    assert_eq!(p.corpus, 352);
    assert_eq!(p.crash_execs, Some(16751 + 488));
    assert_eq!(p.artifact.as_deref(), Some("/w/crash-b933"));
}

/// A campaign that runs out of time: no crash.
#[test]
fn progress_of_a_quiet_campaign() {
    let p = feed(
        "#131072\tpulse  cov: 1823 ft: 6447 corp: 665/80Kb lim: 4096 exec/s: 13107 rss: 40Mb
Done 309345 runs in 31 second(s)
stat::number_of_executed_units: 309345
stat::average_exec_per_sec:     9978",
    );
    assert_eq!(p.total_execs(), 309345);
    assert_eq!(p.crash_execs, None);
    assert_eq!(p.artifact, None);
    assert_eq!(p.error, None);
    assert_eq!(p.stats.get("average_exec_per_sec"), Some(&9978));
}
