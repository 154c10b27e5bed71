//! What the commands that read inputs print: `replay`, `minimize`, `triage`, and the report of
//! a race a campaign found. Each takes the models to resolve inputs with ([`Models`]: the
//! shipped presets, machine files, or a fuzz target's own models) and returns its output and
//! exit code instead of printing, so that the `flushfuzz` command line and a fuzz target built
//! from a user's crate ([`serve`], what `flushfuzz replay --target` runs) say exactly the same.
//!
//! Files are written only where asked (`minimize -o`, `triage --out`), never over an existing
//! one. This module knows nothing of argument parsing or terminals.

use crate::harness::{self, Loaded};
use crate::minimize::{self, Minimized};
use crate::model::{DynModel, Models};
use crate::oracle::Violation;
use crate::trace::Trace;
use crate::triage::{self, Problem, Triage};
use crate::{explain, run::RunOptions};
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// What a command printed, and its exit code (0 nothing found, 1 a violation, 2 an error).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// Standard output.
    pub stdout: String,
    /// Standard error.
    pub stderr: String,
    /// The exit code.
    pub code: u8,
}

impl Output {
    fn error(message: String) -> Output {
        Output {
            stdout: String::new(),
            stderr: format!("error: {message}\n"),
            code: 2,
        }
    }
}

/// Writes `text` to `path` through a temporary file and a rename, refusing to overwrite.
pub fn write_new(path: &Path, text: &str) -> Result<(), String> {
    if path.exists() {
        return Err(format!("{} exists; not overwriting it", path.display()));
    }
    let dir = path
        .parent()
        .filter(|d| !d.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir).map_err(|e| format!("creating {}: {e}", dir.display()))?;
    let tmp = dir.join(format!(
        ".{}.tmp",
        path.file_name().and_then(|n| n.to_str()).unwrap_or("trace")
    ));
    std::fs::write(&tmp, text).map_err(|e| format!("writing {}: {e}", tmp.display()))?;
    std::fs::rename(&tmp, path).map_err(|e| format!("renaming to {}: {e}", path.display()))?;
    Ok(())
}

/// The JSON form of a violation.
pub fn violation_json(v: &Violation) -> serde_json::Value {
    serde_json::json!({
        "kind": v.kind.name(),
        "signature": v.signature(),
        "step": v.step,
        "pa": v.pa,
        "alias": { "va": v.va, "kind": v.alias.name() },
        "expected": v.expected,
        "observed": v.observed,
    })
}

fn check_preset(models: &dyn Models, preset: Option<&str>) -> Result<(), String> {
    match preset {
        Some(p) if models.model(p).is_none() => Err(format!(
            "unknown preset `{p}` (known: {})",
            models.names().join(", ")
        )),
        _ => Ok(()),
    }
}

/// `replay FILE... [--preset NAME] [--json]`: runs each input with the event log on and prints
/// its timeline and, if a violation occurs, the explanation; compares with the outcome the trace
/// expects.
pub fn replay(models: &dyn Models, files: &[PathBuf], preset: Option<&str>, json: bool) -> Output {
    if let Err(e) = check_preset(models, preset) {
        return Output::error(e);
    }
    let mut o = Output::default();
    for f in files {
        let loaded = match harness::load_file_in(f, models, preset) {
            Ok(l) => l,
            Err(e) => {
                let _ = writeln!(o.stderr, "error: {}: {e}", f.display());
                o.code = 2;
                continue;
            }
        };
        let report = harness::replay(&loaded);
        let s = &mut o.stdout;
        if json {
            let v = serde_json::json!({
                "file": f.display().to_string(),
                "preset": loaded.preset().name,
                "ops": loaded.ops.len(),
                "violation": report.violation.as_ref().map(violation_json),
            });
            let _ = writeln!(s, "{v}");
        } else {
            let _ = writeln!(
                s,
                "== {} (preset {}, {} ops)",
                f.display(),
                loaded.preset().name,
                loaded.ops.len()
            );
            s.push_str(&explain::timeline(&*loaded.model, &loaded.ops, &report));
            match &report.violation {
                Some(v) => {
                    s.push('\n');
                    s.push_str(&explain::explain(v, loaded.preset(), &report.actors));
                }
                None => s.push_str("\nNo violation.\n"),
            }
            if let Some(expect) = &loaded.expect {
                let got = report.violation.as_ref().map(|v| v.signature());
                if *expect != got {
                    let _ = writeln!(
                        s,
                        "note: the trace expects {}, this run gave {}",
                        expect.as_deref().unwrap_or("no violation"),
                        got.as_deref().unwrap_or("no violation")
                    );
                }
            }
            if report.violation.is_some() {
                let _ = writeln!(s, "replay with: flushfuzz replay {}", f.display());
            }
            s.push('\n');
        }
        if report.violation.is_some() && o.code == 0 {
            o.code = 1;
        }
    }
    o
}

/// `minimize FILE [-o OUT] [--preset NAME] [--family] [--json]`: reduces an input to the
/// shortest ops that keep its violation signature (with `family`, then only its race family)
/// and prints or writes the trace.
pub fn minimize(
    models: &dyn Models,
    file: &Path,
    out: Option<&Path>,
    preset: Option<&str>,
    family: bool,
    json: bool,
) -> Output {
    let loaded = match harness::load_file_in(file, models, preset) {
        Ok(l) => l,
        Err(e) => return Output::error(format!("{}: {e}", file.display())),
    };
    let Some(m) = minimize::minimize(&*loaded.model, &loaded.ops) else {
        return Output::error(format!(
            "{}: no violation on preset {}: nothing to minimize",
            file.display(),
            loaded.preset().name
        ));
    };
    let m = if family {
        minimize::shorten_in_family(&*loaded.model, m)
    } else {
        m
    };
    let trace = Trace::new(&*loaded.model, &m.ops, Some(m.signature.clone()));
    let text = trace.to_text(&[format!(
        "minimized by flushfuzz from {} ({} ops -> {} ops)",
        file.display(),
        loaded.ops.len(),
        m.ops.len()
    )]);
    if let Some(out) = out {
        if let Err(e) = write_new(out, &text) {
            return Output::error(e);
        }
    }
    let mut o = Output {
        code: 1,
        ..Output::default()
    };
    if json {
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "preset": loaded.preset().name,
            "signature": m.signature,
            "ops_before": loaded.ops.len(),
            "ops_after": m.ops.len(),
            "runs": m.runs,
            "trace": out.map(|p| p.display().to_string()),
        });
        let _ = writeln!(o.stdout, "{v}");
    } else if let Some(out) = out {
        let _ = writeln!(
            o.stderr,
            "{} ops -> {} ops ({} runs): {}",
            loaded.ops.len(),
            m.ops.len(),
            m.runs,
            m.signature
        );
        let _ = writeln!(
            o.stderr,
            "wrote {}; replay with: flushfuzz replay {}",
            out.display(),
            out.display()
        );
    } else {
        o.stdout = text;
    }
    o
}

fn problems_json(v: &[Problem]) -> serde_json::Value {
    v.iter()
        .map(|p| serde_json::json!({ "file": p.file.display().to_string(), "error": p.error }))
        .collect()
}

fn triage_json(t: &Triage) -> String {
    let groups: Vec<_> = t
        .groups
        .iter()
        .map(|g| {
            serde_json::json!({
                "family": g.family,
                "signature": g.signature,
                "count": g.files.len(),
                "minimized_ops": g.minimized.len(),
                "trace": g.trace.as_ref().map(|p| p.display().to_string()),
                "new": g.trace.is_some() && !g.existing,
                "signatures": g.signatures.iter()
                    .map(|(s, n)| serde_json::json!({ "signature": s, "count": n }))
                    .collect::<Vec<_>>(),
            })
        })
        .collect();
    let v = serde_json::json!({
        "inputs": t.inputs,
        "unique": t.groups.len(),
        "no_violation": t.no_violation,
        "groups": groups,
        "tool_errors": problems_json(&t.tool_errors),
        "unreadable": problems_json(&t.unreadable),
        "write_errors": problems_json(&t.write_errors),
    });
    format!("{v}\n")
}

fn triage_table(t: &Triage, o: &mut Output) {
    for p in &t.unreadable {
        let _ = writeln!(o.stderr, "unreadable: {}: {}", p.file.display(), p.error);
    }
    for p in &t.tool_errors {
        let _ = writeln!(
            o.stderr,
            "flushfuzz bug (please report it with this input): {}: {}",
            p.file.display(),
            p.error
        );
    }
    for p in &t.write_errors {
        let _ = writeln!(o.stderr, "error: {}: {}", p.file.display(), p.error);
    }
    let s = &mut o.stdout;
    if !t.groups.is_empty() {
        let w = t
            .groups
            .iter()
            .map(|g| g.family.len())
            .max()
            .unwrap_or(0)
            .max(6);
        let _ = writeln!(s, "{:<w$}  {:>5}  {:>5}  trace", "family", "count", "steps");
        for g in &t.groups {
            let file = match &g.trace {
                Some(p) if g.existing => format!("{} (known)", p.display()),
                Some(p) => format!("{} (new)", p.display()),
                None => "(not written)".into(),
            };
            let _ = writeln!(
                s,
                "{:<w$}  {:>5}  {:>5}  {file}",
                g.family,
                g.files.len(),
                g.minimized.len()
            );
            // One mechanism may show under several signatures: say which, and how often.
            if g.signatures.len() > 1 {
                for (sig, n) in &g.signatures {
                    let _ = writeln!(s, "{:<w$}  {n:>5}         {sig}", "");
                }
            }
        }
    }
    let _ = writeln!(
        s,
        "{} input(s): {} finding(s) in {} group(s), {} without a violation, {} unreadable, {} tool error(s)",
        t.inputs,
        t.findings(),
        t.groups.len(),
        t.no_violation,
        t.unreadable.len(),
        t.tool_errors.len()
    );
    let first_new = t
        .groups
        .iter()
        .filter(|g| !g.existing)
        .find_map(|g| g.trace.as_ref());
    if let Some(f) = first_new {
        let _ = writeln!(s, "replay with: flushfuzz replay {}", f.display());
    }
}

/// The exit code of a triage: 2 if a trace could not be written, 1 if any input reproduces a
/// violation, 2 if the model panicked on an input and nothing was found or every input was
/// unreadable, 0 otherwise.
pub fn triage_exit_code(t: &Triage) -> u8 {
    if !t.write_errors.is_empty() {
        2
    } else if t.findings() > 0 {
        1
    } else if !t.tool_errors.is_empty() || (t.inputs > 0 && t.unreadable.len() == t.inputs) {
        2
    } else {
        0
    }
}

/// `triage PATH... [--out DIR] [--preset NAME] [--json]`: sorts crashing inputs into race
/// families, minimizes each family's smallest input and writes it to `out` unless a trace of
/// that family is there already. `progress(done, total)` follows the inputs.
pub fn triage(
    models: &dyn Models,
    paths: &[PathBuf],
    out: &Path,
    preset: Option<&str>,
    json: bool,
    progress: &mut dyn FnMut(usize, usize),
) -> Output {
    if let Err(e) = check_preset(models, preset) {
        return Output::error(e);
    }
    let mut t = triage::triage(paths, models, preset, progress);
    t.save(out, models, &mut |path, text| write_new(path, text));
    let mut o = Output {
        code: triage_exit_code(&t),
        ..Output::default()
    };
    if json {
        o.stdout = triage_json(&t);
    } else {
        triage_table(&t, &mut o);
    }
    o
}

/// What `verify` is asked: the bounds, and where a violating schedule's trace goes.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VerifyArgs {
    /// The most preemptions a schedule makes.
    pub preemptions: u32,
    /// The most hardware events a schedule injects.
    pub events: u32,
    /// Where to write the minimized violating schedule (default: the first free
    /// `STEM.verify.trace`, `STEM.verify-2.trace`, ... in the current folder).
    pub out: Option<PathBuf>,
}

/// Where `verify` writes a violating schedule of `file` by default: the first name of the
/// form `STEM.verify.trace`, `STEM.verify-N.trace` in the current folder that is free.
fn verify_out(file: &Path) -> PathBuf {
    let stem = file
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("input")
        .to_string();
    (1..)
        .map(|n| {
            PathBuf::from(if n == 1 {
                format!("{stem}.verify.trace")
            } else {
                format!("{stem}.verify-{n}.trace")
            })
        })
        .find(|p| !p.exists())
        .expect("a free name")
}

/// `verify FILE [--preset NAME] [--preemptions K] [--events E] [-o OUT] [--json]`: keeps the
/// actions of a trace (or raw input) and explores every schedule of them within the bounds
/// ([`crate::verify`]). Clean: "no violation in any schedule within the bound", exit 0. A
/// violation: the first violating schedule, minimized ([`minimize::minimize`]), its timeline
/// and explanation, written as a trace that overwrites nothing, exit 1. Schedules cut at the
/// depth limit make the verdict no proof: exit 2. `progress` hears the search's statistics.
pub fn verify(
    models: &dyn Models,
    file: &Path,
    preset: Option<&str>,
    args: &VerifyArgs,
    json: bool,
    progress: &mut dyn FnMut(&crate::verify::Stats),
) -> Output {
    use crate::verify::{Options, Program};
    if let Err(e) = check_preset(models, preset) {
        return Output::error(e);
    }
    let loaded = match harness::load_file_in(file, models, preset) {
        Ok(l) => l,
        Err(e) => return Output::error(format!("{}: {e}", file.display())),
    };
    let model = &*loaded.model;
    let program = Program::of(model, &loaded.ops);
    if program.is_empty() {
        return Output::error(format!(
            "{}: its ops start no action on preset {}: nothing to verify",
            file.display(),
            model.preset().name
        ));
    }
    let opts = Options::bounded(args.preemptions, args.events);
    let out = model.verify(&program, &opts, progress);
    let st = out.stats;
    let mut o = Output::default();
    let catalog = model.catalog();
    let names = crate::trace::Vocabulary::of(model).actors;
    let actions: Vec<String> = program
        .by_actor()
        .flat_map(|(a, v)| {
            let who = names
                .get(a as usize)
                .cloned()
                .unwrap_or_else(|| a.to_string());
            v.iter().map(move |x| {
                let fields: Vec<String> = catalog
                    .fields(x)
                    .into_iter()
                    .map(|(k, v)| format!("{k}={v}"))
                    .collect();
                format!("{who}: {} {}", catalog.name(x), fields.join(" "))
                    .trim_end()
                    .to_string()
            })
        })
        .collect();
    // The first violating schedule, minimized, logged and written.
    let mut shown = None;
    if let Some(v) = &out.violation {
        let m = minimize::minimize(model, &v.ops).unwrap_or(Minimized {
            ops: v.ops.clone(),
            signature: v.violation.signature(),
            runs: 0,
        });
        let logged = model.run(&m.ops, RunOptions { log: true });
        let Some(lv) = logged.violation.as_ref() else {
            return Output::error(format!(
                "the violating schedule does not replay its violation ({}): a flushfuzz bug",
                v.violation.signature()
            ));
        };
        let mut text = explain::timeline(model, &m.ops, &logged);
        text.push('\n');
        text.push_str(&explain::explain(lv, model.preset(), &logged.actors));
        let trace = Trace::new(model, &m.ops, Some(m.signature.clone())).to_text(&[
            format!(
                "found by flushfuzz verify in {} ({} actions, at most {} preemptions and {} events)",
                file.display(),
                program.len(),
                args.preemptions,
                args.events
            ),
            format!(
                "the first violating schedule had {} ops; minimized to {}",
                v.ops.len(),
                m.ops.len()
            ),
        ]);
        let path = args.out.clone().unwrap_or_else(|| verify_out(file));
        if let Err(e) = write_new(&path, &trace) {
            return Output::error(e);
        }
        // What the model's twin with mainline behaviour makes of the schedule: a violation
        // there too is a mainline hole, not the arch's or the switches' own.
        let twin = Twin::run(model.twin().as_deref(), &m.ops);
        let family = triage::family(lv);
        shown = Some((v, m, text, path, twin, family));
    }
    let verdict = match (&shown, st.cut) {
        (Some(_), _) => "violation",
        (None, 0) => "clean",
        (None, _) => "inconclusive",
    };
    o.code = match verdict {
        "violation" => 1,
        "clean" => 0,
        _ => 2,
    };
    if json {
        let v = serde_json::json!({
            "file": file.display().to_string(),
            "preset": model.preset().name,
            "arch": model.arch_name(),
            "actions": program.len(),
            "preemptions": args.preemptions,
            "events": args.events,
            "verdict": verdict,
            "schedules": st.schedules,
            "states": st.states,
            "distinct": st.distinct,
            "choices": st.choices,
            "replays": st.replays,
            "slept": st.slept,
            "cached": st.cached,
            "dead": st.dead,
            "cut": st.cut,
            "depth": st.depth,
            "violation": shown.as_ref().map(|(v, ..)| violation_json(&v.violation)),
            "family": shown.as_ref().map(|(.., f)| f),
            "schedule_ops": shown.as_ref().map(|(v, ..)| v.ops.len()),
            "minimized_ops": shown.as_ref().map(|(_, m, ..)| m.ops.len()),
            "trace": shown.as_ref().map(|(_, _, _, p, ..)| p.display().to_string()),
            "twin": shown.as_ref().map(|(.., t, _)| t),
            "historical": shown.as_ref().map(|(.., t, f)| t.lacks(f)),
        });
        let _ = writeln!(o.stdout, "{v}");
        return o;
    }
    let s = &mut o.stdout;
    let _ = writeln!(
        s,
        "== verify {} on preset {} (arch {}): {} action(s), at most {} preemption(s) and {} event(s)",
        file.display(),
        model.preset().name,
        model.arch_name(),
        program.len(),
        args.preemptions,
        args.events
    );
    for a in &actions {
        let _ = writeln!(s, "   {a}");
    }
    let _ = writeln!(
        s,
        "explored {} schedule(s), {} state(s) ({} distinct), {} choice(s) tried, {} slept, {} reached an explored state, {} event(s) led nowhere",
        st.schedules, st.states, st.distinct, st.choices, st.slept, st.cached, st.dead
    );
    match &shown {
        Some((v, m, text, path, twin, family)) => {
            let _ = writeln!(
                s,
                "violation: {} (a schedule of {} ops, minimized to {}), family {family}",
                m.signature,
                v.ops.len(),
                m.ops.len()
            );
            let twin_name = twin_name(model);
            let _ = match twin {
                Twin::None => writeln!(s, "(no twin with mainline behaviour to compare with)\n"),
                Twin::Clean => writeln!(
                    s,
                    "the twin with mainline behaviour, {twin_name}, runs this schedule clean\n"
                ),
                Twin::Violation { signature, .. } if !twin.lacks(family) => writeln!(
                    s,
                    "the twin with mainline behaviour, {twin_name}, has it too ({signature}): a mainline hole\n"
                ),
                Twin::Violation { signature, .. } => writeln!(
                    s,
                    "the twin with mainline behaviour, {twin_name}, goes wrong otherwise ({signature})\n"
                ),
            };
            s.push_str(text);
            let _ = writeln!(
                s,
                "\nwrote {}; replay with: flushfuzz replay {}",
                path.display(),
                path.display()
            );
        }
        None if st.cut == 0 => {
            let _ = writeln!(s, "no violation in any schedule within the bound");
        }
        None => {
            let _ = writeln!(
                s,
                "no violation found, but {} schedule(s) were cut at {} choices: no proof",
                st.cut,
                crate::verify::MAX_DEPTH
            );
        }
    }
    o
}

/// What a campaign's race turned out to be, as the fuzz target that found it reports it
/// ([`report`]).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Found {
    /// The preset it was found on.
    pub preset: String,
    /// Ops of the input libFuzzer stopped on.
    pub input_ops: usize,
    /// The minimized race's signature.
    pub signature: String,
    /// Its race family.
    pub family: String,
    /// The minimized race's ops.
    pub minimized_ops: usize,
    /// Runs the minimization made.
    pub runs: usize,
    /// The minimized race as a trace file (without comments).
    pub trace: String,
    /// What the preset's twin with mainline behaviour (a `-fixed` twin, or the model's
    /// reference) makes of the minimized race.
    pub twin: Twin,
    /// The twin's preset and arch, for messages (empty without a twin).
    pub twin_name: String,
    /// The race family, if mainline behaviour has it too ([`triage::in_mainline`]).
    pub mainline_family: Option<String>,
    /// The timeline and explanation of the minimized race.
    pub shown: String,
}

impl Found {
    /// Whether the race is one of the preset's historical behaviours: it has a twin and its
    /// mechanism does not happen there (the twin runs the race clean, or into a violation of
    /// another family: a mainline hole of the same signature, say, whose stale line got there
    /// another way).
    pub fn is_historical(&self) -> bool {
        self.twin.lacks(&self.family)
    }
}

/// The name of `model`'s twin with mainline behaviour, as `PRESET (ARCH)`, for messages (empty
/// without a twin).
fn twin_name(model: &dyn DynModel) -> String {
    model
        .twin()
        .map(|t| format!("{} ({})", t.preset().name, t.arch_name()))
        .unwrap_or_default()
}

/// What a race does on its preset's twin.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Twin {
    /// The preset has no twin.
    None,
    /// The twin has no violation: the race is one of the preset's historical behaviours.
    Clean,
    /// The twin has a violation too.
    Violation {
        /// Its signature.
        signature: String,
        /// Its race family ([`triage::family`]).
        family: String,
    },
}

impl Twin {
    /// What `twin` (if there is one) makes of `ops`.
    pub fn run(twin: Option<&dyn DynModel>, ops: &[crate::op::Op]) -> Twin {
        let Some(t) = twin else { return Twin::None };
        match t.run(ops, RunOptions::default()).violation {
            None => Twin::Clean,
            Some(v) => Twin::Violation {
                signature: v.signature(),
                family: triage::family(&v),
            },
        }
    }

    /// The twin's signature, if it has a violation.
    pub fn signature(&self) -> Option<&str> {
        match self {
            Twin::Violation { signature, .. } => Some(signature),
            _ => None,
        }
    }

    /// Whether the twin has no violation of `family`: a race of that family is historical.
    pub fn lacks(&self, family: &str) -> bool {
        match self {
            Twin::None => false,
            Twin::Clean => true,
            Twin::Violation { family: f, .. } => f != family,
        }
    }
}

/// A minimized race reduced further within its family ([`minimize::shorten_in_family`]), with
/// what `model`'s twin makes of it. A shorter input whose mechanism the twin has too never
/// replaces one whose mechanism it lacks: the race stays historical.
pub fn shorten(model: &dyn DynModel, m: Minimized) -> (Minimized, Twin) {
    let twin = model.twin();
    let on_twin = |ops: &[crate::op::Op]| Twin::run(twin.as_deref(), ops);
    let family = |ops: &[crate::op::Op]| {
        let v = model.run(ops, RunOptions::default()).violation;
        v.map(|v| triage::family(&v)).unwrap_or_default()
    };
    let before = on_twin(&m.ops);
    let s = minimize::shorten_in_family(model, m.clone());
    if s.ops == m.ops {
        return (s, before);
    }
    let after = on_twin(&s.ops);
    let f = family(&s.ops);
    if before.lacks(&f) && !after.lacks(&f) {
        (Minimized { runs: s.runs, ..m }, before)
    } else {
        (s, after)
    }
}

/// The report of a race a campaign found in `file` (raw fuzzer bytes, run on the model called
/// `preset` when given): minimized keeping its signature, then within its family
/// ([`shorten`]), checked on the twin, with its timeline and explanation.
pub fn report(models: &dyn Models, file: &Path, preset: Option<&str>) -> Result<Found, String> {
    let loaded = harness::load_file_in(file, models, preset)
        .map_err(|e| format!("{}: {e}", file.display()))?;
    found(&loaded).ok_or_else(|| "it produces no violation when replayed: a hang?".to_string())
}

/// [`report`] of an input already loaded; `None` if it produces no violation.
pub fn found(loaded: &Loaded) -> Option<Found> {
    let model: &Rc<dyn DynModel> = &loaded.model;
    let m = minimize::minimize(&**model, &loaded.ops)?;
    let (m, twin) = shorten(&**model, m);
    let twin_name = twin_name(&**model);
    let logged = model.run(&m.ops, RunOptions { log: true });
    let v = logged.violation.as_ref()?;
    let mut shown = explain::timeline(&**model, &m.ops, &logged);
    shown.push('\n');
    shown.push_str(&explain::explain(v, model.preset(), &logged.actors));
    Some(Found {
        preset: model.preset().name.clone(),
        input_ops: loaded.ops.len(),
        signature: m.signature.clone(),
        family: triage::family(v),
        minimized_ops: m.ops.len(),
        runs: m.runs,
        trace: Trace::new(&**model, &m.ops, Some(m.signature.clone())).to_text(&[]),
        twin,
        twin_name,
        mainline_family: triage::in_mainline(v).then(|| triage::family(v)),
        shown,
    })
}

/// A request to a fuzz target's tool mode ([`serve`]): one of the commands above, as the
/// `flushfuzz` command line asks it of a target built from a user's crate.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "kebab-case")]
pub enum Request {
    /// [`replay()`].
    Replay {
        /// Input files.
        files: Vec<PathBuf>,
        /// The preset to run on instead.
        preset: Option<String>,
        /// JSON output.
        json: bool,
    },
    /// [`minimize()`].
    Minimize {
        /// The input.
        file: PathBuf,
        /// Where to write the trace.
        out: Option<PathBuf>,
        /// The preset to run on instead.
        preset: Option<String>,
        /// Keep only the family.
        family: bool,
        /// JSON output.
        json: bool,
    },
    /// [`triage()`].
    Triage {
        /// Inputs and folders.
        paths: Vec<PathBuf>,
        /// Where traces go.
        out: PathBuf,
        /// The preset raw inputs run on.
        preset: Option<String>,
        /// JSON output.
        json: bool,
    },
    /// [`report`], printed as the JSON of a [`Found`] (exit 0), or an error (exit 2).
    Report {
        /// The crash file.
        file: PathBuf,
        /// The preset it ran on.
        preset: Option<String>,
    },
    /// The target's presets and paths, as JSON (exit 0).
    Describe,
    /// [`verify()`].
    Verify {
        /// The input.
        file: PathBuf,
        /// The preset to run on instead.
        preset: Option<String>,
        /// Bounds and output.
        args: VerifyArgs,
        /// JSON output.
        json: bool,
    },
    /// [`paths_text`] of the target's kernel paths.
    Paths {
        /// JSON output.
        json: bool,
    },
}

/// The environment variable that puts a fuzz target in tool mode: a JSON [`Request`].
pub const TOOL_ENV: &str = "FLUSHFUZZ_TOOL";

/// Answers a request with `models`.
pub fn answer(models: &dyn Models, r: &Request) -> Output {
    match r {
        Request::Replay {
            files,
            preset,
            json,
        } => replay(models, files, preset.as_deref(), *json),
        Request::Minimize {
            file,
            out,
            preset,
            family,
            json,
        } => minimize(
            models,
            file,
            out.as_deref(),
            preset.as_deref(),
            *family,
            *json,
        ),
        Request::Triage {
            paths,
            out,
            preset,
            json,
        } => triage(models, paths, out, preset.as_deref(), *json, &mut |_, _| {}),
        Request::Report { file, preset } => match report(models, file, preset.as_deref()) {
            Ok(f) => Output {
                stdout: serde_json::to_string(&f).expect("a report serializes") + "\n",
                ..Output::default()
            },
            Err(e) => Output::error(e),
        },
        Request::Verify {
            file,
            preset,
            args,
            json,
        } => verify(models, file, preset.as_deref(), args, *json, &mut |_| {}),
        Request::Paths { json } => match models.names().first().and_then(|n| models.model(n)) {
            Some(m) => Output {
                stdout: paths_text(m.catalog(), *json),
                ..Output::default()
            },
            None => Output::error("no model".into()),
        },
        Request::Describe => {
            let presets: Vec<serde_json::Value> = models
                .names()
                .iter()
                .filter_map(|n| models.model(n))
                .map(|m| {
                    serde_json::json!({
                        "name": m.preset().name,
                        "arch": m.arch_name(),
                        "paths": m.catalog().paths().iter().map(|p| p.name).collect::<Vec<_>>(),
                    })
                })
                .collect();
            Output {
                stdout: serde_json::json!({ "presets": presets }).to_string() + "\n",
                ..Output::default()
            }
        }
    }
}

/// The tool mode of a fuzz target: when [`TOOL_ENV`] holds a request, answers it with the
/// target's models, prints the output and exits with its code; otherwise returns, and the
/// target fuzzes. [`crate::fuzz_target!`] calls it before libFuzzer starts.
pub fn serve(models: &dyn Models) {
    let Ok(text) = std::env::var(TOOL_ENV) else {
        return;
    };
    let o = match serde_json::from_str::<Request>(&text) {
        Ok(r) => answer(models, &r),
        Err(e) => Output::error(format!("{TOOL_ENV}: not a request: {e}")),
    };
    use std::io::Write as _;
    let _ = std::io::stdout().write_all(o.stdout.as_bytes());
    let _ = std::io::stderr().write_all(o.stderr.as_bytes());
    let _ = std::io::stdout().flush();
    std::process::exit(o.code as i32);
}

fn runs_name(r: crate::paths::Runs) -> &'static str {
    match r {
        crate::paths::Runs::User => "user",
        crate::paths::Runs::Kernel => "kernel",
        crate::paths::Runs::Atomic => "atomic",
    }
}

fn kind_name(k: crate::paths::FieldKind) -> String {
    match k {
        crate::paths::FieldKind::Num => "number".into(),
        crate::paths::FieldKind::Flag => "flag".into(),
        crate::paths::FieldKind::Choice(names) => names.join("|"),
    }
}

/// `paths [--json]`: every kernel path of a registry, the mainline function it follows, the
/// flush and mapping APIs it may call, who may run it, and its fields.
pub fn paths_text(c: &crate::paths::Catalog, json: bool) -> String {
    if json {
        let v: Vec<serde_json::Value> = c
            .paths()
            .iter()
            .map(|p| {
                serde_json::json!({
                    "name": p.name,
                    "follows": p.follows,
                    "calls": p.calls,
                    "runs": runs_name(p.runs),
                    "fields": p.fields.iter().map(|f| serde_json::json!({
                        "name": f.name,
                        "kind": kind_name(f.kind),
                    })).collect::<Vec<_>>(),
                    "doc": p.doc,
                })
            })
            .collect();
        return serde_json::to_string_pretty(&v).expect("serializes") + "\n";
    }
    let mut s = String::new();
    for p in c.paths() {
        let fields: Vec<String> = p
            .fields
            .iter()
            .map(|f| format!("{}={}", f.name, kind_name(f.kind)))
            .collect();
        let _ = writeln!(s, "{} {}", p.name, fields.join(" "));
        let _ = writeln!(s, "    {}", p.doc);
        let _ = writeln!(
            s,
            "    follows {}; runs in {} context; calls {}",
            p.follows,
            runs_name(p.runs),
            if p.calls.is_empty() {
                "no flush API".to_string()
            } else {
                p.calls.join(", ")
            }
        );
    }
    s
}
