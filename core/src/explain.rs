//! Human-readable output: the timeline of a logged run, one column per CPU, and the
//! explanation of a violation (which byte, read through which alias, expected and observed,
//! where the stale and the newer values lived, what maintenance was missing or came too late).
//!
//! It reads reports and event logs; it knows nothing of how they were produced.

use crate::addr::{AliasKind, Pa};
use crate::event::{Event, Logged, Side, Source};
use crate::model::DynModel;
use crate::op::Op;
use crate::oracle::{Kind, Violation};
use crate::preset::Preset;
use crate::run::Report;
use crate::trace::format_op;
use std::fmt::Write as _;

fn alias(va: u64, page: u32) -> String {
    format!("{va:#x} ({})", AliasKind::of(va, page).name())
}

/// What a run of accesses merged into one line is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Access {
    Load,
    Fetch,
    Store,
    /// A load and a store of the value loaded (a kernel copy), byte after byte.
    Copy,
}

/// A run of accesses to consecutive addresses (for a copy: from consecutive addresses to
/// consecutive addresses), merged into one line.
struct Run {
    what: Access,
    first: u64,
    last: u64,
    /// Where a copy's stores went.
    to: (u64, u64),
    n: usize,
    star: bool,
    values: (u32, u32),
    /// Where the loads of a run touching the violation's line read from: they are merged only
    /// while it stays the same, and it is shown.
    from: Option<Source>,
}

impl Run {
    fn text(&self, page: u32, mark: bool) -> String {
        let star = if self.star && mark { "* " } else { "" };
        let from = match &self.from {
            Some(src) => format!(", read from {src}"),
            None => String::new(),
        };
        format!("{}{from}", self.text_plain(page, star))
    }

    fn text_plain(&self, page: u32, star: &str) -> String {
        let what = match self.what {
            Access::Load => "load",
            Access::Fetch => "fetch",
            Access::Store => "store",
            Access::Copy => "copy",
        };
        let range = |a: u64, b: u64| {
            if a == b {
                alias(a, page)
            } else {
                format!("{a:#x}..{:#x} ({})", b + 1, AliasKind::of(a, page).name())
            }
        };
        match (self.what, self.n) {
            (Access::Copy, 1) => format!(
                "{star}copy #{} from {} to {}",
                self.values.0,
                alias(self.first, page),
                alias(self.to.0, page)
            ),
            (Access::Copy, n) => format!(
                "{star}{n} bytes #{}..#{} copied from {} to {}",
                self.values.0,
                self.values.1,
                range(self.first, self.last),
                range(self.to.0, self.to.1)
            ),
            (_, 1) => format!(
                "{star}{what} #{} {} {}",
                self.values.0,
                if self.what == Access::Store {
                    "to"
                } else {
                    "from"
                },
                alias(self.first, page)
            ),
            (_, n) => format!(
                "{star}{n} {what}s #{}..#{} {} {}",
                self.values.0,
                self.values.1,
                if self.what == Access::Store {
                    "to"
                } else {
                    "from"
                },
                range(self.first, self.last)
            ),
        }
    }
}

/// Condenses the events of one step into short lines. Runs of loads or stores to consecutive
/// addresses are merged, and so are the alternating loads and stores of a kernel copy; events
/// touching `focus` (the violation's line) are marked `*` and never folded into the "other
/// lines" count.
fn condense(events: &[&Logged], page: u32, focus: Option<(Pa, u64)>, mark: bool) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let mut run: Option<Run> = None;
    let mut maint = (0usize, 0usize);
    let flush_run = |run: &mut Option<Run>, out: &mut Vec<String>| {
        if let Some(r) = run.take() {
            out.push(r.text(page, mark));
        }
    };
    let in_focus = |e: &Event| focus.is_some_and(|(pa, line)| e.touches(pa, line));
    let out_marked = |out: &mut Vec<String>, star: bool, text: String| {
        out.push(format!("{}{text}", if star && mark { "* " } else { "" }))
    };
    let mut i = 0;
    while i < events.len() {
        let e = &events[i].event;
        let star = in_focus(e);
        i += 1;
        match e {
            Event::Load { va, value, .. } | Event::Store { va, value, .. } => {
                let fetch = matches!(e, Event::Load { fetch: true, .. });
                // Loads of the violation's line say where they read from, and are merged only
                // with loads from the same place.
                let src = match e {
                    Event::Load { from, .. } if star => Some(*from),
                    _ => None,
                };
                let mut what = match e {
                    Event::Store { .. } => Access::Store,
                    _ if fetch => Access::Fetch,
                    _ => Access::Load,
                };
                // A load followed at once by a store of the value loaded is one byte of a copy.
                let mut to = (0, 0);
                let mut star = star;
                if what == Access::Load {
                    // The store may come after the fills and write-backs of other lines that
                    // its line needed, which are only counted.
                    let quiet = |e: &Event| {
                        !in_focus(e)
                            && matches!(
                                e,
                                Event::Fill { .. }
                                    | Event::Drop { .. }
                                    | Event::WriteBack { .. }
                                    | Event::TlbFill { .. }
                            )
                    };
                    let mut j = i;
                    while events.get(j).is_some_and(|l| quiet(&l.event)) {
                        j += 1;
                    }
                    if let Some(Event::Store {
                        va: dst, value: v2, ..
                    }) = events.get(j).map(|l| &l.event)
                    {
                        if v2 == value {
                            for l in &events[i..j] {
                                match l.event {
                                    Event::WriteBack { .. } => maint.0 += 1,
                                    Event::Fill { .. } | Event::Drop { .. } => maint.1 += 1,
                                    _ => {}
                                }
                            }
                            what = Access::Copy;
                            to = (*dst, *dst);
                            star |= in_focus(&events[j].event);
                            i = j + 1;
                        }
                    }
                }
                match run.as_mut() {
                    Some(r)
                        if r.what == what
                            && r.from == src
                            && *va == r.last + 1
                            && (what != Access::Copy || to.0 == r.to.1 + 1) =>
                    {
                        r.last = *va;
                        r.to.1 = to.1;
                        r.n += 1;
                        r.star |= star;
                        r.values.1 = *value;
                    }
                    _ => {
                        flush_run(&mut run, &mut out);
                        run = Some(Run {
                            what,
                            first: *va,
                            last: *va,
                            to,
                            n: 1,
                            star,
                            values: (*value, *value),
                            from: src,
                        });
                    }
                }
            }
            Event::WriteBack { .. } if !star => maint.0 += 1,
            Event::Drop { .. } | Event::Fill { .. } if !star => maint.1 += 1,
            Event::TlbFill { .. } | Event::Step { .. } => {}
            _ => {
                flush_run(&mut run, &mut out);
                out_marked(&mut out, star, e.to_string());
            }
        }
    }
    flush_run(&mut run, &mut out);
    if maint.0 > 0 || maint.1 > 0 {
        out.push(format!(
            "({} other line(s) written back, {} filled or dropped)",
            maint.0, maint.1
        ));
    }
    out
}

fn wrap(s: &str, width: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut cur = String::new();
    for word in s.split(' ') {
        if !cur.is_empty() && cur.chars().count() + 1 + word.chars().count() > width {
            lines.push(std::mem::take(&mut cur));
            cur.push_str("  ");
        }
        if !cur.is_empty() && !cur.ends_with("  ") {
            cur.push(' ');
        }
        cur.push_str(word);
    }
    if !cur.is_empty() {
        lines.push(cur);
    }
    lines
}

/// The timeline of a logged run of `ops` on `model`: one column per CPU, one block per step.
/// Ops are written in their canonical form, as a trace file of them would be.
pub fn timeline(model: &dyn DynModel, ops: &[Op], report: &Report) -> String {
    let preset = model.preset();
    let catalog = model.catalog();
    let ops = crate::trace::canonical(model, ops);
    let page = preset.machine.page_size;
    let ncpus = preset.machine.cpus as usize;
    let width = if ncpus == 1 { 96 } else { 58 };
    let names = &report.actors;
    let focus = report.violation.as_ref().map(|v| {
        let line = preset.machine.dcache.line.max(preset.machine.icache.line) as u64;
        (v.pa & !(line - 1), line)
    });
    let mut s = String::new();
    let _ = write!(s, "{:>5}  ", "step");
    for c in 0..ncpus {
        let _ = write!(s, "{:<width$}", format!("CPU{c}"));
        if c + 1 < ncpus {
            s.push_str(" | ");
        }
    }
    s.push('\n');
    let _ = writeln!(s, "{}", "-".repeat(7 + ncpus * width + (ncpus - 1) * 3));
    let last = report.events.last().map_or(0, |e| e.step);
    for step in 1..=last {
        let evs: Vec<&Logged> = report.events.iter().filter(|e| e.step == step).collect();
        let title = match ops.get(step as usize - 1) {
            Some(op) if (step as usize) <= report.ops_applied => format_op(op, names, catalog),
            _ => {
                if evs.is_empty() {
                    continue;
                }
                match evs.iter().find_map(|e| e.actor) {
                    Some(a) => format!("(drain) step {}", names[a as usize]),
                    None => "(end of run)".to_string(),
                }
            }
        };
        // The CPU of the step: the actor's, or the hardware event's.
        let cpu = evs
            .iter()
            .find_map(|e| match e.event {
                Event::Step { cpu, .. } => Some(cpu as usize),
                Event::Fill { cpu, .. }
                | Event::Drop { cpu, .. }
                | Event::WriteBack { cpu, .. } => Some(cpu as usize),
                _ => None,
            })
            .unwrap_or(0);
        // An op names the CPU it asks for; an actor that cannot move runs where it is.
        let asked = match ops.get(step as usize - 1) {
            Some(Op::Step { cpu, .. } | Op::Start { cpu, .. })
                if (step as usize) <= report.ops_applied =>
            {
                Some(*cpu as usize)
            }
            _ => None,
        };
        let ran = evs.iter().any(|e| matches!(e.event, Event::Step { .. }));
        let title = match asked {
            Some(c) if ran && c != cpu => format!("{title} [ran on CPU{cpu}]"),
            _ => title,
        };
        let mut lines = wrap(&title, width);
        for l in condense(&evs, page, focus, true) {
            lines.extend(wrap(&format!("  {l}"), width));
        }
        if lines.len() == 1 && evs.is_empty() {
            lines.push("  (no effect)".into());
        }
        for (i, l) in lines.iter().enumerate() {
            let num = if i == 0 {
                format!("{step:>5}  ")
            } else {
                "       ".into()
            };
            s.push_str(&num);
            for c in 0..ncpus {
                let cell = if c == cpu { l.as_str() } else { "" };
                if c + 1 < ncpus {
                    let _ = write!(s, "{cell:<width$} | ");
                } else {
                    s.push_str(cell);
                }
            }
            s.push('\n');
        }
    }
    s
}

fn source_text(src: &Source, page: u32) -> String {
    match src {
        Source::Memory => "memory".into(),
        Source::Cache {
            cpu,
            side,
            dirty,
            line_va,
            slot,
        } => format!(
            "a {} line of CPU{cpu}'s {}-cache (set {}, way {}) filled through {}",
            if *dirty { "dirty" } else { "clean" },
            if *side == Side::D { "D" } else { "I" },
            slot.set,
            slot.way,
            alias(*line_va, page)
        ),
    }
}

/// The explanation of a violation, ready to paste into a mail.
pub fn explain(v: &Violation, preset: &Preset, names: &[String]) -> String {
    let page = preset.machine.page_size;
    let who = |a: Option<u8>| {
        a.map_or("the device".to_string(), |a| {
            names.get(a as usize).cloned().unwrap_or(format!("#{a}"))
        })
    };
    let mut s = String::new();
    let _ = writeln!(
        s,
        "VIOLATION: {} at step {} on preset {}",
        v.kind.name(),
        v.step,
        preset.name
    );
    let _ = writeln!(s, "signature: {}", v.signature());
    let read = match v.kind {
        Kind::LostWrite if v.reader.is_none() && v.va == 0 => format!(
            "At the end of the run, byte pa {:#x} no longer holds its newest value anywhere: memory holds #{}",
            v.pa, v.observed
        ),
        Kind::LostWrite => format!(
            "At the end of the run, {} holds #{} for pa {:#x}, older than the newest value: when it is written back, it overwrites newer data",
            source_text(&v.from, page),
            v.observed,
            v.pa
        ),
        Kind::StaleDeviceRead => format!(
            "The device read pa {:#x} from memory (it reads memory, through no alias) and saw #{}",
            v.pa, v.observed
        ),
        _ if v.reader.is_none() && v.context == "end-of-run audit" => format!(
            "The end-of-run audit {} pa {:#x} through {}{}",
            if v.kind == Kind::StaleFetch { "fetched" } else { "read" },
            v.pa,
            alias(v.va, page),
            v.cpu.map_or(String::new(), |c| format!(" on CPU{c}"))
        ),
        _ => format!(
            "{} ({}) {} pa {:#x} through {}{}",
            who(v.reader),
            v.context,
            if v.kind == Kind::StaleFetch { "fetched" } else { "read" },
            v.pa,
            alias(v.va, page),
            v.cpu.map_or(String::new(), |c| format!(" on CPU{c}"))
        ),
    };
    if matches!(v.kind, Kind::LostWrite | Kind::StaleDeviceRead) {
        let _ = writeln!(s, "{read}.");
    } else {
        let _ = writeln!(
            s,
            "{read} and saw #{}, which came from {}.",
            v.observed,
            source_text(&v.from, page)
        );
    }
    let wrote = match v.write.alias {
        Some(a) => format!(
            "{} ({}) at step {} through {:#x} ({}){}",
            who(v.write.actor),
            v.write_context,
            v.write.step,
            v.write.va,
            a.name(),
            v.write.cpu.map_or(String::new(), |c| format!(" on CPU{c}"))
        ),
        None => format!("the {} at step {}", v.write_context, v.write.step),
    };
    let _ = writeln!(
        s,
        "The newest value is #{}, written by {wrote}.",
        v.expected
    );
    if v.newest_at.is_empty() {
        let _ = writeln!(
            s,
            "That value is nowhere any more: neither memory nor any cache line holds it."
        );
    } else {
        let places: Vec<String> = v.newest_at.iter().map(|p| source_text(p, page)).collect();
        let _ = writeln!(
            s,
            "At that moment the newest value was in {}.",
            places.join(" and in ")
        );
    }
    let _ = writeln!(s, "{}", diagnosis(v, page));
    if !v.history.is_empty() {
        let _ = writeln!(s, "History of the line (step: event):");
        let mut i = 0;
        while i < v.history.len() {
            let step = v.history[i].step;
            let actor = v.history[i].actor;
            let group: Vec<&Logged> = v.history[i..]
                .iter()
                .take_while(|e| e.step == step && e.actor == actor)
                .collect();
            i += group.len();
            let line_of = |pa: Pa| {
                let l = preset.machine.dcache.line.max(preset.machine.icache.line) as u64;
                (pa & !(l - 1), l)
            };
            for line in condense(&group, page, Some(line_of(v.pa)), false) {
                let _ = writeln!(
                    s,
                    "  {:>4}: {}{line}",
                    step,
                    actor.map_or(String::new(), |a| format!("{} ", who(Some(a))))
                );
            }
        }
    }
    s
}

/// Which maintenance was missing or came too late, from where the values were.
fn diagnosis(v: &Violation, page: u32) -> String {
    let dirty_elsewhere = v.newest_at.iter().find_map(|p| match p {
        Source::Cache {
            dirty: true,
            line_va,
            cpu,
            ..
        } => Some((*line_va, *cpu)),
        _ => None,
    });
    let read_alias = AliasKind::of(v.va, page).name();
    // Whether the read missed and filled its line in the same step (rather than hitting a line
    // that was already there).
    let missed = v.history.iter().any(|e| e.step == v.step && matches!((e.event.clone(), &v.from), (Event::Fill { va, .. }, Source::Cache { line_va, .. }) if va == *line_va));
    let dropped = v
        .history
        .iter()
        .rev()
        .find(|e| matches!(e.event, Event::Drop { dirty: true, .. }));
    match (v.kind, dirty_elsewhere, &v.from) {
        (Kind::LostWrite, _, _) if v.newest_at.is_empty() => match dropped {
            Some(e) => format!("Diagnosis: the newest data sat in a dirty line that was discarded without write-back at step {} ({}); the invalidation hit a line it did not own, or came after the data was written.", e.step, e.event),
            None => "Diagnosis: the newest data was overwritten in memory by the write-back of an older dirty alias, before it reached every place it had to.".into(),
        },
        (Kind::LostWrite, _, _) => format!(
            "Diagnosis: the dirty line at {} holds an older value; when it is evicted it will overwrite the newer data. That alias needed an invalidate (or a clean before the newer write) when the data was written through another alias.",
            alias(v.va, page)
        ),
        (Kind::StaleDeviceRead, Some((va, cpu)), _) => format!(
            "Diagnosis: missing write-back. The newer data was still dirty in CPU{cpu}'s line for {}; nothing cleaned that alias before the device read memory.",
            alias(va, page)
        ),
        (Kind::StaleDeviceRead, None, _) => "Diagnosis: the device read memory, which the newer data had not reached.".into(),
        (_, Some((va, cpu)), from) if !matches!(from, Source::Cache { line_va, .. } if *line_va == va) => format!(
            "Diagnosis: missing write-back. The newer data was still dirty in CPU{cpu}'s line for {}; nothing cleaned that alias before the read through the {read_alias} alias{}.",
            alias(va, page),
            if matches!(from, Source::Cache { .. }) && !missed { ", which also hit a stale line of its own that needed an invalidate" } else { ", which missed and brought the old value in from memory" }
        ),
        (Kind::StaleFetch, _, Source::Cache { cpu, .. }) => format!(
            "Diagnosis: the I-cache of CPU{cpu} held a stale line (filled before the newer data reached the point where instruction fetches see it) and no I-cache invalidation on that CPU came between that fill and this fetch."
        ),
        (_, _, Source::Cache { cpu, line_va, .. }) => format!(
            "Diagnosis: missing or late invalidate. The newer data had reached memory, but CPU{cpu}'s line for {} still held the old value and nothing invalidated it before this read.",
            alias(*line_va, page)
        ),
        (_, _, Source::Memory) => "Diagnosis: the read went to memory, which the newer data had not reached.".into(),
    }
}
