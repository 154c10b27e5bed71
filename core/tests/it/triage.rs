//! Triage: race families, grouping, bad inputs, and the promise that triage only ever adds new
//! traces (never twice, never over a file, never touching an input).

use flushfuzz::encode::encode_input;
use flushfuzz::harness::{self, load_bytes, load_file, RACE_PRESETS};
use flushfuzz::model::Shipped;
use flushfuzz::run::RunOptions;
use flushfuzz::triage::{self, Outcome, Triage};
use std::collections::BTreeMap;
use std::io::Write as _;
use std::path::{Path, PathBuf};

/// The five races and the family each must get: the names are the files triage writes, so a
/// change here renames people's reproducers.
const FAMILIES: [(&str, &str); 5] = [
    ("nfs-vmap-alias", "vmap-read-after-kmap-write"),
    ("gup-anon-alias", "kernel-read-misses-dirty-user-alias"),
    ("exec-icache-smp", "icache-fill-before-sync"),
    ("kmap-recycle-dma", "kmap-slot-recycled-during-maintenance"),
    ("fork-cow-alias", "cow-copy-through-incongruent-alias"),
];

/// Other inputs of the five races: extra harmless ops, other offsets, actors, CPUs and pages,
/// another writer, another reader of the lost data. Each must reproduce a violation of its
/// race's family without being the committed reproducer.
const VARIANTS: [(&str, &str); 8] = [
    (
        "nfs-vmap-alias",
        "evict cpu0 d pick=5\nstart K1 cpu0 readdir at=3 pages=1\n",
    ),
    (
        "gup-anon-alias",
        "start T0 cpu0 store page=1 off=24\nstep T2 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
         step T0 cpu0\nstart T0 cpu0 gup page=1 off=24 write=false\n",
    ),
    // The user's data comes from read() (copy_to_user), not a store.
    (
        "gup-anon-alias",
        "start T0 cpu0 read file=0 index=0 off=0 page=1\nstep T0 cpu0\nstep T0 cpu0\n\
         start T1 cpu0 gup page=1 off=0 write=false\n",
    ),
    // The CPUs swapped, another offset.
    (
        "exec-icache-smp",
        "start T0 cpu1 fetch page=4 off=40\nstep T0 cpu1\nstart T1 cpu0 fetch page=4 off=40\n",
    ),
    // The discarded store is then read by the device rather than found by the audit.
    (
        "kmap-recycle-dma",
        "start K0 cpu0 kmap-write buf=1 off=0\nstep K0 cpu0\nstep K0 cpu0\n\
         start T1 cpu0 dma buf=1 dir=from-device\nstart T0 cpu0 kmap-write buf=2 off=0\n\
         step T0 cpu0\nstep T0 cpu0\nstart T0 cpu0 kmap-write buf=3 off=8\n\
         start K0 cpu0 dma buf=3 dir=to-device\n",
    ),
    // The newer data is a read() into the page during the fork (copy_to_user through the stale
    // writable TLB entry), and the copy-on-write copy is made for a ptrace poke from the child.
    (
        "fork-cow-alias",
        "start T0 cpu0 store page=1 off=0\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
         start T0 cpu0 fork\nstart T1 cpu0 read file=0 index=0 off=0 page=1\nstep T1 cpu0\n\
         step T1 cpu0\nstep T1 cpu0\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
         start T2 cpu0 ptrace-poke target=0 page=1 off=8\n",
    ),
    (
        "fork-cow-alias",
        "start T0 cpu0 store page=1 off=8\nstep T0 cpu0\nstep T0 cpu0\nstep T0 cpu0\n\
         start T0 cpu0 fork\nstart T1 cpu0 store page=1 off=8\nstep T0 cpu0\nstep T0 cpu0\n\
         step T0 cpu0\nstep T0 cpu0\nstart T0 cpu0 store page=1 off=8\nevict cpu0 i pick=3\n",
    ),
    (
        "nfs-vmap-alias",
        "start T0 cpu0 store page=0 off=0\nstart K0 cpu0 readdir at=7 pages=0\n",
    ),
];

fn crashes_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../crashes")
}

fn variant_text(preset: &str, ops: &str) -> String {
    format!("flushfuzz-trace 1\npreset {preset}\nexpect none\n{ops}")
}

/// The family and signature of an input's violation.
fn outcome(bytes: &[u8]) -> Option<(String, String)> {
    let l = load_bytes(bytes, None).expect("loads");
    let v = l.model.run(&l.ops, RunOptions::default()).violation?;
    Some((triage::family(&v), v.signature()))
}

/// A folder under the system's temporary folder, removed when dropped.
struct Scratch(PathBuf);

impl Scratch {
    fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("flushfuzz-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }

    fn put(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.0.join(name);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, bytes).unwrap();
        p
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut m = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap() {
            let p = e.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                m.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    m
}

/// A writer like the CLI's: creates the folder, never overwrites. Records what it wrote.
fn writer(written: &mut Vec<PathBuf>) -> impl FnMut(&Path, &str) -> Result<(), String> + '_ {
    move |path, text| {
        std::fs::create_dir_all(path.parent().unwrap()).map_err(|e| e.to_string())?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(path)
            .map_err(|e| e.to_string())?;
        f.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
        written.push(path.to_path_buf());
        Ok(())
    }
}

fn triage_into(inputs: &Path, out: &Path) -> (Triage, Vec<PathBuf>) {
    let mut t = triage::triage(&[inputs.to_path_buf()], &Shipped, None, &mut |_, _| {});
    let mut written = Vec::new();
    t.save(out, &Shipped, &mut writer(&mut written));
    assert!(t.write_errors.is_empty(), "{:?}", t.write_errors);
    (t, written)
}

/// The family names are the file names of triaged traces: they must not drift, and the five
/// races are five mechanisms.
#[test]
fn the_five_races_have_five_distinct_stable_families() {
    for (race, family) in FAMILIES {
        let l = load_file(&crashes_dir().join(format!("{race}.trace")), None).unwrap();
        let v = harness::replay(&l).violation.expect("the race reproduces");
        assert_eq!(triage::family(&v), family, "{race}");
    }
    let names: std::collections::BTreeSet<_> = FAMILIES.iter().map(|(_, f)| f).collect();
    assert_eq!(names.len(), 5);
}

/// Grouping by mechanism, not by input: other inputs of a race share its family, even when
/// their signature differs.
#[test]
fn variants_of_a_race_share_its_family() {
    for (race, ops) in VARIANTS {
        let want = FAMILIES.iter().find(|(r, _)| *r == race).unwrap().1;
        let text = variant_text(race, ops);
        let (family, sig) = outcome(text.as_bytes())
            .unwrap_or_else(|| panic!("the variant of {race} reproduces nothing:\n{text}"));
        assert_eq!(family, want, "{race}: {sig}\n{text}");
        // Raw fuzzer bytes of the same ops group the same way.
        let l = load_bytes(text.as_bytes(), None).unwrap();
        let index = RACE_PRESETS.iter().position(|p| *p == race).unwrap() as u8;
        let raw = encode_input(index, &l.ops);
        assert_eq!(outcome(&raw), Some((family, sig)), "{race} raw");
    }
    // Some variants are other signatures of the same mechanism.
    let differing = VARIANTS
        .iter()
        .filter(|(race, ops)| {
            let original = std::fs::read(crashes_dir().join(format!("{race}.trace"))).unwrap();
            outcome(&original).unwrap().1 != outcome(variant_text(race, ops).as_bytes()).unwrap().1
        })
        .count();
    assert!(differing >= 3, "{differing}");
}

/// Raw inputs found with FLUSHFUZZ_PRESET set decode on `--preset`; trace files keep theirs.
#[test]
fn the_preset_override_applies_to_raw_inputs_only() {
    let s = Scratch::new("override");
    let trace = std::fs::read(crashes_dir().join("fork-cow-alias.trace")).unwrap();
    let l = load_bytes(&trace, None).unwrap();
    // Preset index 0 is nfs-vmap-alias, where these ops are harmless.
    let raw = s.put("crash-raw", &encode_input(0, &l.ops));
    let traced = s.put("fork.trace", &trace);
    assert!(matches!(
        triage::examine(&raw, &Shipped, None),
        Outcome::NoViolation
    ));
    let family = |o: Outcome| match o {
        Outcome::Finding(f) => f.family,
        o => panic!("{o:?}"),
    };
    assert_eq!(
        family(triage::examine(&raw, &Shipped, Some("fork-cow-alias"))),
        "cow-copy-through-incongruent-alias"
    );
    assert_eq!(
        family(triage::examine(&traced, &Shipped, Some("nfs-vmap-alias"))),
        "cow-copy-through-incongruent-alias"
    );
}

/// Each kind of bad input is unreadable with a one-line error (line and column for trace
/// syntax), quickly, and triage goes on with the rest.
#[test]
fn bad_inputs_are_unreadable_with_a_one_line_error() {
    let s = Scratch::new("bad");
    let head = "flushfuzz-trace 1\npreset gup-anon-alias\nexpect none\n";
    let mut long_line = format!("{head}start T0 cpu0 store ");
    for i in 0..100_000 {
        long_line.push_str(&format!("k{i}={i} "));
    }
    long_line.truncate(harness::MAX_INPUT as usize - 1);
    let mut bad_utf8 = format!("{head}start T0 cpu0 store page=0 off=").into_bytes();
    bad_utf8.extend([0xff, b'\n']);
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("empty", vec![], "empty file"),
        (
            "truncated.trace",
            format!("{head}start T0 cpu0 store pa").into_bytes(),
            "line 4, column 21: expected `name=value`",
        ),
        (
            "truncated-header",
            b"flushfuzz-trace 1\npres".to_vec(),
            "line 2, column 1",
        ),
        (
            "huge",
            vec![0x55; harness::MAX_INPUT as usize + 1],
            "larger than any input",
        ),
        (
            "long-line.trace",
            long_line.into_bytes(),
            "line 4, column 51: unexpected `k6=6`: an action has at most 6 fields",
        ),
        (
            "nul.trace",
            format!("{head}start T0 cpu0 st\0ore page=0 off=0\n").into_bytes(),
            "line 4, column 15: unknown action `st\\u{0}ore`",
        ),
        (
            "bad-utf8.trace",
            bad_utf8,
            "line 4, column 32: invalid UTF-8",
        ),
        (
            "100k-ops.trace",
            format!("{head}{}", "step T0 cpu0\n".repeat(100_000)).into_bytes(),
            "larger than any input",
        ),
        (
            "10k-ops.trace",
            format!("{head}{}", "step T0 cpu0\n".repeat(triage::MAX_OPS + 1)).into_bytes(),
            "10001 ops is more than triage takes (10000 at most)",
        ),
    ];
    for (name, bytes, want) in &cases {
        let p = s.put(&format!("in/{name}"), bytes);
        match triage::examine(&p, &Shipped, None) {
            Outcome::Unreadable(e) => {
                assert!(e.contains(want), "{name}: {e}");
                assert!(!e.contains('\n') && e.len() < 300, "{name}: {e}");
            }
            o => panic!("{name}: {o:?}"),
        }
    }
    // Random bytes are a valid fuzzer input: they run, whatever they find.
    let mut rng = <rand_xoshiro::Xoshiro256PlusPlus as rand_core::SeedableRng>::seed_from_u64(9);
    let mut random = vec![0u8; 512];
    rand_core::RngCore::fill_bytes(&mut rng, &mut random);
    s.put("in/random.bin", &random);
    s.put(
        "in/gup.trace",
        &std::fs::read(crashes_dir().join("gup-anon-alias.trace")).unwrap(),
    );
    // Hidden and temporary files are not inputs.
    s.put("in/.hidden", b"");
    s.put("in/sub/x.tmp", b"");
    let t = triage::triage(
        &[s.0.join("in"), s.0.join("missing")],
        &Shipped,
        None,
        &mut |_, _| {},
    );
    let mut unreadable: Vec<_> = t
        .unreadable
        .iter()
        .map(|p| p.file.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    unreadable.sort();
    let mut want: Vec<String> = cases.iter().map(|c| c.0.to_string()).collect();
    want.push("missing".into());
    want.sort();
    assert_eq!(unreadable, want);
    assert_eq!(t.inputs, cases.len() + 3);
    assert!(t.tool_errors.is_empty(), "{:?}", t.tool_errors);
    assert_eq!(t.no_violation + t.findings(), 2);
    assert!(t
        .groups
        .iter()
        .any(|g| g.family == "kernel-read-misses-dirty-user-alias"));
}

fn build_inputs(s: &Scratch) -> PathBuf {
    // The five reproducers as traces, their variants as raw fuzzer bytes in a subfolder, and a
    // clean input.
    for (race, _) in FAMILIES {
        let bytes = std::fs::read(crashes_dir().join(format!("{race}.trace"))).unwrap();
        s.put(&format!("in/{race}.trace"), &bytes);
    }
    for (i, (race, ops)) in VARIANTS.iter().enumerate() {
        let l = load_bytes(variant_text(race, ops).as_bytes(), None).unwrap();
        let index = RACE_PRESETS.iter().position(|p| p == race).unwrap() as u8;
        s.put(
            &format!("in/artifacts/crash-{i}"),
            &encode_input(index, &l.ops),
        );
    }
    s.put(
        "in/clean.trace",
        b"flushfuzz-trace 1\npreset coherent\nexpect none\nstart T0 cpu0 store page=0 off=0\n",
    );
    s.0.join("in")
}

/// A second triage of the same inputs finds every race already written and writes nothing; the
/// inputs are byte for byte what they were.
#[test]
fn a_folder_triaged_twice_writes_nothing_the_second_time() {
    let s = Scratch::new("twice");
    let inputs = build_inputs(&s);
    let out = s.0.join("out");
    let before = snapshot(&inputs);

    let (t, written) = triage_into(&inputs, &out);
    assert_eq!(t.inputs, 5 + VARIANTS.len() + 1);
    assert_eq!(t.no_violation, 1);
    assert_eq!(t.groups.len(), 5, "{:?}", t.groups);
    let mut names: Vec<_> = written
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    names.sort();
    let mut want: Vec<_> = FAMILIES.iter().map(|(_, f)| format!("{f}.trace")).collect();
    want.sort();
    assert_eq!(names, want);
    for g in &t.groups {
        let want_ops = load_file(
            &crashes_dir().join(format!("{}.trace", race_of(&g.family))),
            None,
        )
        .unwrap()
        .ops
        .len();
        assert!(g.minimized.len() <= want_ops, "{}", g.family);
        // What was written reproduces the family.
        let (family, _) = outcome(&std::fs::read(g.trace.as_ref().unwrap()).unwrap()).unwrap();
        assert_eq!(family, g.family);
    }
    let out_after_first = snapshot(&out);

    let (t2, written2) = triage_into(&inputs, &out);
    assert!(written2.is_empty(), "{written2:?}");
    assert!(t2.groups.iter().all(|g| g.existing));
    assert_eq!(snapshot(&out), out_after_first);
    assert_eq!(snapshot(&inputs), before);
}

fn race_of(family: &str) -> &'static str {
    FAMILIES.iter().find(|(_, f)| *f == family).unwrap().0
}

/// The committed reproducers are recognised by family in the output folder, whatever their
/// names; a name taken by another race is never overwritten.
#[test]
fn known_races_are_recognised_and_taken_names_are_kept() {
    let s = Scratch::new("known");
    let inputs = build_inputs(&s);
    let out = s.0.join("out");
    for (race, _) in FAMILIES {
        let bytes = std::fs::read(crashes_dir().join(format!("{race}.trace"))).unwrap();
        // The gup reproducer squats on the name the nfs family would get.
        let name = if race == "gup-anon-alias" {
            "vmap-read-after-kmap-write.trace".to_string()
        } else if race == "nfs-vmap-alias" {
            continue;
        } else {
            format!("{race}.trace")
        };
        s.put(&format!("out/{name}"), &bytes);
    }
    let before = snapshot(&out);
    let (t, written) = triage_into(&inputs, &out);
    assert_eq!(
        written,
        vec![out.join("vmap-read-after-kmap-write-2.trace")]
    );
    for g in &t.groups {
        let want = match g.family.as_str() {
            "vmap-read-after-kmap-write" => "vmap-read-after-kmap-write-2.trace".to_string(),
            "kernel-read-misses-dirty-user-alias" => "vmap-read-after-kmap-write.trace".into(),
            f => format!("{}.trace", race_of(f)),
        };
        assert_eq!(
            g.trace.as_deref(),
            Some(out.join(&want).as_path()),
            "{}",
            g.family
        );
        assert_eq!(g.existing, want != "vmap-read-after-kmap-write-2.trace");
    }
    for (p, bytes) in before {
        assert_eq!(std::fs::read(&p).unwrap(), bytes, "{}", p.display());
    }
}

/// The command itself: exit codes, JSON, and no second write.
#[cfg(feature = "cli")]
#[test]
fn the_triage_command_reports_and_writes_once() {
    let s = Scratch::new("cli");
    let inputs = build_inputs(&s);
    let out = s.0.join("out");
    let before = snapshot(&inputs);
    let cmd = |args: &[&Path]| {
        let o = std::process::Command::new(env!("CARGO_BIN_EXE_flushfuzz"))
            .arg("triage")
            .args(args)
            .output()
            .unwrap();
        let json: serde_json::Value = if o.stdout.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&o.stdout).unwrap()
        };
        (o.status.code(), json)
    };
    let run = || cmd(&[&inputs, Path::new("--out"), &out, Path::new("--json")]);
    let (code, first) = run();
    assert_eq!(code, Some(1), "{first}");
    assert_eq!(first["inputs"], 5 + VARIANTS.len() as u64 + 1);
    assert_eq!(first["unique"], 5);
    assert_eq!(first["groups"].as_array().unwrap().len(), 5);
    assert!(first["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["new"] == true));
    let out_after_first = snapshot(&out);
    assert_eq!(out_after_first.len(), 5);
    let (code, second) = run();
    assert_eq!(code, Some(1));
    assert!(second["groups"]
        .as_array()
        .unwrap()
        .iter()
        .all(|g| g["new"] == false));
    assert_eq!(snapshot(&out), out_after_first);
    assert_eq!(snapshot(&inputs), before);

    // Nothing but unreadable inputs: 2. Nothing found: 0.
    let bad = s.put("bad/empty", b"");
    let (code, j) = cmd(&[&bad, Path::new("--out"), &out, Path::new("--json")]);
    assert_eq!(
        (code, j["unreadable"].as_array().unwrap().len()),
        (Some(2), 1)
    );
    let clean = inputs.join("clean.trace");
    let (code, j) = cmd(&[&clean, Path::new("--out"), &out, Path::new("--json")]);
    assert_eq!((code, j["unique"].as_u64()), (Some(0), Some(0)));
}
