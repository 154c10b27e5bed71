//! Trace files: the durable, human-readable form of an input and its outcome.
//!
//! A trace is text: a version line, the preset, the expected outcome (a violation signature or
//! `none`), then one op per line. Comments start with `#`. Actors are named as the preset names
//! them (`T0`, `K1`, `IRQ`) or by number (`#4`); CPUs as `cpu0` (the CPU an op asks for: an
//! actor that cannot move, because it has preemption disabled or runs an interrupt, runs where
//! it is, and timelines say where each step ran); actions by their kernel path's
//! name and fields, as the model's [`Catalog`] describes them. Printing canonicalises actor and
//! CPU numbers and action fields (they wrap modulo what exists, so behaviour is unchanged) and
//! parsing the printed text gives back exactly the canonical ops. Parse errors name the line and
//! column. The preset line names the model: a shipped preset, or one of a user's
//! ([`Trace::parse_in`]).
//!
//! ```text
//! flushfuzz-trace 1
//! preset gup-anon-alias
//! expect stale-load:fuse-read-from-user@linear<-user store@user
//! start T0 cpu0 store page=1 off=0
//! start T0 cpu0 gup page=1 off=0 write=false
//! ```

use crate::model::{DynModel, Models, Shipped};
use crate::op::{Action, Op};
use crate::paths::{ActionError, Catalog, MAX_ARGS};
use std::fmt::{self, Write as _};
use std::sync::Arc;

/// The format version this code reads and writes.
pub const VERSION: u32 = 1;

/// A parsed trace.
#[derive(Clone, Debug)]
pub struct Trace {
    /// The preset's name.
    pub preset: String,
    /// The expected violation signature; `None` means no violation is expected.
    pub expect: Option<String>,
    /// The ops.
    pub ops: Vec<Op>,
    /// How its ops print.
    vocabulary: Vocabulary,
}

impl PartialEq for Trace {
    fn eq(&self, o: &Trace) -> bool {
        (&self.preset, &self.expect, &self.ops) == (&o.preset, &o.expect, &o.ops)
    }
}

impl Eq for Trace {}

/// What reading and writing ops takes: the model's actor names, CPUs and kernel paths.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vocabulary {
    /// Actor names, by id.
    pub actors: Vec<String>,
    /// The number of CPUs.
    pub cpus: u8,
    /// The kernel paths.
    pub catalog: Arc<Catalog>,
}

impl Vocabulary {
    /// The vocabulary of a model.
    pub fn of(model: &dyn DynModel) -> Vocabulary {
        Vocabulary {
            actors: model.preset().actor_names(),
            cpus: model.preset().machine.cpus,
            catalog: model.catalog().clone(),
        }
    }
}

/// A syntax or content error, with its position (1-based).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TraceError {
    /// Line number.
    pub line: usize,
    /// Column number.
    pub column: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for TraceError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "line {}, column {}: {}",
            self.line, self.column, self.message
        )
    }
}

impl std::error::Error for TraceError {}

/// Canonical ops: actor and CPU numbers reduced modulo what the model has, actions in their
/// canonical form ([`Catalog::canonical`]).
pub fn canonical(model: &dyn DynModel, ops: &[Op]) -> Vec<Op> {
    canonical_in(&Vocabulary::of(model), ops)
}

fn canonical_in(v: &Vocabulary, ops: &[Op]) -> Vec<Op> {
    let n = v.actors.len() as u8;
    let c = v.cpus;
    ops.iter()
        .map(|op| match *op {
            Op::Step { actor, cpu } => Op::Step {
                actor: actor % n,
                cpu: cpu % c,
            },
            Op::Start { actor, cpu, action } => Op::Start {
                actor: actor % n,
                cpu: cpu % c,
                action: v.catalog.canonical(&action),
            },
            Op::Speculate { cpu, icache, pick } => Op::Speculate {
                cpu: cpu % c,
                icache,
                pick,
            },
            Op::Evict { cpu, icache, pick } => Op::Evict {
                cpu: cpu % c,
                icache,
                pick,
            },
        })
        .collect()
}

/// One op as trace text, with actors named as in `names` and actions as `catalog` names them.
pub fn format_op(op: &Op, names: &[String], catalog: &Catalog) -> String {
    let actor = |a: u8| {
        names
            .get(a as usize)
            .cloned()
            .unwrap_or_else(|| format!("#{a}"))
    };
    let side = |i: bool| if i { "i" } else { "d" };
    match op {
        Op::Step { actor: a, cpu } => format!("step {} cpu{cpu}", actor(*a)),
        Op::Start {
            actor: a,
            cpu,
            action,
        } => {
            let mut s = format!("start {} cpu{cpu} {}", actor(*a), catalog.name(action));
            for (k, v) in catalog.fields(action) {
                let _ = write!(s, " {k}={v}");
            }
            s
        }
        Op::Speculate { cpu, icache, pick } => {
            format!("speculate cpu{cpu} {} pick={pick}", side(*icache))
        }
        Op::Evict { cpu, icache, pick } => format!("evict cpu{cpu} {} pick={pick}", side(*icache)),
    }
}

/// The preset and expected signature of a trace's text, from its first three lines alone
/// (without resolving the preset).
pub fn header(text: &str) -> Result<(String, Option<String>), TraceError> {
    let mut lines = text
        .lines()
        .enumerate()
        .map(|(i, l)| (i + 1, l))
        .filter(|(_, l)| {
            let t = l.trim();
            !t.is_empty() && !t.starts_with('#')
        });
    let err = |line: usize, message: &str| TraceError {
        line,
        column: 1,
        message: message.into(),
    };
    match lines.next() {
        Some((_, l)) if l.trim() == format!("flushfuzz-trace {VERSION}") => {}
        Some((n, _)) => return Err(err(n, "expected `flushfuzz-trace 1` as the first line")),
        None => return Err(err(1, "empty trace")),
    }
    let preset = match lines.next().map(|(n, l)| (n, tokens(l))) {
        Some((_, t)) if t.len() == 2 && t[0].1 == "preset" => t[1].1.to_string(),
        Some((n, _)) => return Err(err(n, "expected `preset NAME`")),
        None => return Err(err(2, "missing `preset NAME` line")),
    };
    let expect = match lines.next() {
        Some((_, l)) => match l.trim_start().strip_prefix("expect") {
            Some(rest) if rest.starts_with(char::is_whitespace) && !rest.trim().is_empty() => {
                Some(rest.trim()).filter(|s| *s != "none").map(String::from)
            }
            _ => return Err(err(3, "expected `expect SIGNATURE` or `expect none`")),
        },
        None => return Err(err(3, "missing `expect SIGNATURE|none` line")),
    };
    Ok((preset, expect))
}

/// Trace text with `comment` lines added as `#` comments after its header (the version,
/// preset and expect lines), as [`Trace::to_text`] writes them.
pub fn with_comment(text: &str, comment: &str) -> String {
    let mut out = String::new();
    let mut header = 0;
    let mut done = false;
    for l in text.split_inclusive('\n') {
        out.push_str(l);
        let t = l.trim();
        if !done && !t.is_empty() && !t.starts_with('#') {
            header += 1;
            if header == 3 {
                for c in comment.lines() {
                    let _ = writeln!(out, "# {c}");
                }
                done = true;
            }
        }
    }
    out
}

impl Trace {
    /// A trace of `ops` (canonicalised) on `model`.
    pub fn new(model: &dyn DynModel, ops: &[Op], expect: Option<String>) -> Trace {
        let vocabulary = Vocabulary::of(model);
        Trace {
            preset: model.preset().name.clone(),
            expect,
            ops: canonical_in(&vocabulary, ops),
            vocabulary,
        }
    }

    /// How the trace's ops print.
    pub fn vocabulary(&self) -> &Vocabulary {
        &self.vocabulary
    }

    /// The trace as text. `comment` lines, if any, are written as `#` comments after the header.
    pub fn to_text(&self, comment: &[String]) -> String {
        let names = &self.vocabulary.actors;
        let mut s = format!(
            "flushfuzz-trace {VERSION}\npreset {}\nexpect {}\n",
            self.preset,
            self.expect.as_deref().unwrap_or("none")
        );
        for c in comment {
            for l in c.lines() {
                let _ = writeln!(s, "# {l}");
            }
        }
        for op in &self.ops {
            s.push_str(&format_op(op, names, &self.vocabulary.catalog));
            s.push('\n');
        }
        s
    }

    /// Parses trace text naming a shipped preset.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
        Trace::parse_in(text, &Shipped)
    }

    /// Parses trace text naming a preset `models` knows.
    pub fn parse_in(text: &str, models: &dyn Models) -> Result<Trace, TraceError> {
        let mut lines = text
            .lines()
            .enumerate()
            .map(|(i, l)| (i + 1, l))
            .filter(|(_, l)| {
                let t = l.trim();
                !t.is_empty() && !t.starts_with('#')
            });
        let err = |line: usize, column: usize, message: String| TraceError {
            line,
            column,
            message,
        };
        let (ln, l) = lines
            .next()
            .ok_or_else(|| err(1, 1, "empty trace: expected `flushfuzz-trace 1`".into()))?;
        let toks = tokens(l);
        match toks.as_slice() {
            [(_, "flushfuzz-trace"), (c, v)] => {
                if v.parse::<u32>().ok() != Some(VERSION) {
                    return Err(err(ln, *c, format!("unsupported trace version `{v}` (this flushfuzz reads version {VERSION})")));
                }
            }
            _ => {
                return Err(err(
                    ln,
                    1,
                    "expected `flushfuzz-trace 1` as the first line".into(),
                ))
            }
        }
        let (ln, l) = lines
            .next()
            .ok_or_else(|| err(ln + 1, 1, "missing `preset NAME` line".into()))?;
        let toks = tokens(l);
        let model = match toks.as_slice() {
            [(_, "preset"), (c, name)] => models.model(name).ok_or_else(|| {
                err(
                    ln,
                    *c,
                    format!(
                        "unknown preset `{name}` (known: {})",
                        models.names().join(", ")
                    ),
                )
            })?,
            _ => return Err(err(ln, 1, "expected `preset NAME`".into())),
        };
        let (ln, l) = lines
            .next()
            .ok_or_else(|| err(ln + 1, 1, "missing `expect SIGNATURE|none` line".into()))?;
        let expect = match l.trim_start().strip_prefix("expect") {
            Some(rest) if rest.starts_with(char::is_whitespace) => {
                let sig = rest.trim();
                if sig.is_empty() {
                    return Err(err(ln, 1, "`expect` needs a signature or `none`".into()));
                }
                (sig != "none").then(|| sig.to_string())
            }
            _ => {
                return Err(err(
                    ln,
                    1,
                    "expected `expect SIGNATURE` or `expect none`".into(),
                ))
            }
        };
        let vocabulary = Vocabulary::of(&*model);
        let mut ops = Vec::new();
        for (ln, l) in lines {
            ops.push(parse_op(l, &vocabulary).map_err(|(c, m)| err(ln, c, m))?);
        }
        Ok(Trace {
            preset: model.preset().name.clone(),
            expect,
            ops,
            vocabulary,
        })
    }
}

/// Whitespace-separated tokens with their 1-based columns.
fn tokens(l: &str) -> Vec<(usize, &str)> {
    let mut v = Vec::new();
    let mut start = None;
    for (i, ch) in l.char_indices() {
        match (ch.is_whitespace(), start) {
            (true, Some(s)) => {
                v.push((s + 1, &l[s..i]));
                start = None;
            }
            (false, None) => start = Some(i),
            _ => {}
        }
    }
    if let Some(s) = start {
        if !l[s..].starts_with('#') {
            v.push((s + 1, &l[s..]));
        }
    }
    // A trailing comment ends the line.
    if let Some(p) = v.iter().position(|(_, t)| {
        t.starts_with('#') && t.len() > 1 && !t[1..].chars().all(|c| c.is_ascii_digit())
    }) {
        v.truncate(p);
    }
    v
}

type PErr = (usize, String);

fn parse_actor(tok: (usize, &str), names: &[String]) -> Result<u8, PErr> {
    let (c, t) = tok;
    if let Some(n) = t.strip_prefix('#') {
        let v: u8 = n
            .parse()
            .map_err(|_| (c, format!("bad actor number `{t}`")))?;
        if (v as usize) < names.len() {
            return Ok(v);
        }
        return Err((
            c,
            format!(
                "actor `{t}` does not exist: this preset has {} actors",
                names.len()
            ),
        ));
    }
    names
        .iter()
        .position(|n| n == t)
        .map(|p| p as u8)
        .ok_or_else(|| {
            (
                c,
                format!("unknown actor `{t}` (this preset has {})", names.join(", ")),
            )
        })
}

fn parse_cpu(tok: (usize, &str), cpus: u8) -> Result<u8, PErr> {
    let (c, t) = tok;
    let v: u8 = t
        .strip_prefix("cpu")
        .and_then(|n| n.parse().ok())
        .ok_or_else(|| (c, format!("expected a CPU like `cpu0`, found `{t}`")))?;
    if v >= cpus {
        return Err((
            c,
            format!("`{t}` does not exist: this preset has {cpus} CPU(s)"),
        ));
    }
    Ok(v)
}

fn parse_side(tok: (usize, &str)) -> Result<bool, PErr> {
    match tok.1 {
        "d" => Ok(false),
        "i" => Ok(true),
        t => Err((
            tok.0,
            format!("expected a cache side `d` or `i`, found `{t}`"),
        )),
    }
}

/// An action's `name=value` tokens, checked for shape: at most [`MAX_ARGS`], each once.
fn field_tokens<'a>(toks: &[(usize, &'a str)]) -> Result<Vec<(usize, &'a str, &'a str)>, PErr> {
    let mut items: Vec<(usize, &str, &str)> = Vec::new();
    for &(c, t) in toks {
        // Bounded before the duplicate check, which is quadratic: a hostile line of a million
        // fields must fail at once.
        if items.len() == MAX_ARGS {
            return Err((
                c,
                format!("unexpected `{t}`: an action has at most {MAX_ARGS} fields"),
            ));
        }
        let (k, v) = t
            .split_once('=')
            .ok_or_else(|| (c, format!("expected `name=value`, found `{t}`")))?;
        if items.iter().any(|(_, k2, _)| *k2 == k) {
            return Err((c, format!("field `{k}` given twice")));
        }
        items.push((c, k, v));
    }
    Ok(items)
}

fn parse_action(
    name: (usize, &str),
    rest: &[(usize, &str)],
    catalog: &Catalog,
) -> Result<Action, PErr> {
    let items = field_tokens(rest)?;
    let fields: Vec<(&str, &str)> = items.iter().map(|&(_, k, v)| (k, v)).collect();
    catalog.action(name.1, &fields).map_err(|e| match e {
        ActionError::UnknownPath(n) => (name.0, format!("unknown action `{n}`")),
        ActionError::Missing(k) => (name.0, format!("missing field `{k}=`")),
        ActionError::Value(i, m) => (items[i].0 + items[i].1.len() + 1, m),
        ActionError::Unknown(i) => (items[i].0, format!("unknown field `{}`", items[i].1)),
    })
}

fn parse_op(l: &str, v: &Vocabulary) -> Result<Op, PErr> {
    let (names, cpus) = (&v.actors, v.cpus);
    let toks = tokens(l);
    let need = |i: usize, what: &str| -> Result<(usize, &str), PErr> {
        toks.get(i)
            .copied()
            .ok_or_else(|| (l.trim_end().len() + 1, format!("expected {what}")))
    };
    let kw = need(0, "an op")?;
    let extra = |n: usize| -> Result<(), PErr> {
        match toks.get(n) {
            Some((c, t)) => Err((*c, format!("unexpected `{t}`"))),
            None => Ok(()),
        }
    };
    let pick = |tok: (usize, &str)| -> Result<u16, PErr> {
        tok.1
            .strip_prefix("pick=")
            .and_then(|v| v.parse().ok())
            .ok_or_else(|| {
                (
                    tok.0,
                    format!("expected `pick=N` (0 to 65535), found `{}`", tok.1),
                )
            })
    };
    match kw.1 {
        "step" => {
            let actor = parse_actor(need(1, "an actor")?, names)?;
            let cpu = parse_cpu(need(2, "a CPU")?, cpus)?;
            extra(3)?;
            Ok(Op::Step { actor, cpu })
        }
        "start" => {
            let actor = parse_actor(need(1, "an actor")?, names)?;
            let cpu = parse_cpu(need(2, "a CPU")?, cpus)?;
            let action = parse_action(need(3, "an action")?, &toks[4..], &v.catalog)?;
            Ok(Op::Start { actor, cpu, action })
        }
        "speculate" | "evict" => {
            let cpu = parse_cpu(need(1, "a CPU")?, cpus)?;
            let icache = parse_side(need(2, "a cache side `d` or `i`")?)?;
            let pick = pick(need(3, "`pick=N`")?)?;
            extra(4)?;
            Ok(if kw.1 == "speculate" {
                Op::Speculate { cpu, icache, pick }
            } else {
                Op::Evict { cpu, icache, pick }
            })
        }
        other => Err((
            kw.0,
            format!("unknown op `{other}` (expected step, start, speculate or evict)"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check_err(text: &str, line: usize, column: usize, needle: &str) {
        let e = Trace::parse(text).unwrap_err();
        assert_eq!((e.line, e.column), (line, column), "{e}");
        assert!(e.message.contains(needle), "{e}");
    }

    #[test]
    fn parse_errors_name_line_and_column() {
        check_err("", 1, 1, "empty");
        check_err("flushfuzz-trace 9\n", 1, 17, "version");
        check_err("flushfuzz-trace 1\npreset nope\n", 2, 8, "unknown preset");
        check_err(
            "flushfuzz-trace 1\npreset coherent\nexpect none\nstart T0 cpu7 load page=0 off=0\n",
            4,
            10,
            "CPU",
        );
        check_err(
            "flushfuzz-trace 1\npreset coherent\nexpect none\nstart T0 cpu0 load page=0 of=0\n",
            4,
            15,
            "missing field `off=`",
        );
        check_err("flushfuzz-trace 1\npreset coherent\nexpect none\nstart T0 cpu0 load page=0 off=0 x=1\n", 4, 33, "unknown field `x`");
        check_err(
            "flushfuzz-trace 1\npreset coherent\nexpect none\nstart T0 cpu0 load page=300 off=0\n",
            4,
            25,
            "0 to 255",
        );
        check_err(
            "flushfuzz-trace 1\npreset coherent\nexpect none\nstart Z9 cpu0 fork\n",
            4,
            7,
            "unknown actor",
        );
        check_err(
            "flushfuzz-trace 1\npreset coherent\nexpect none\njump\n",
            4,
            1,
            "unknown op",
        );
    }

    #[test]
    fn text_round_trips_exactly() {
        let p = crate::preset::by_name("kmap-recycle-dma").unwrap();
        let m = crate::model::shipped_cached(&p);
        let c = m.catalog();
        let mmap = c
            .action(
                "mmap",
                &[
                    ("file", "1"),
                    ("pgoff", "2"),
                    ("at", "200"),
                    ("shared", "true"),
                    ("exec", "false"),
                    ("fixed", "true"),
                ],
            )
            .unwrap();
        let dma = c
            .action("dma", &[("buf", "3"), ("dir", "bidirectional")])
            .unwrap();
        // Bytes the fields ignore (a flag's high bits, a path index past the last path, bytes
        // past the last field) print as the canonical action.
        let mut raw = mmap;
        raw.path += c.len() as u8;
        raw.args[3] |= 0xfe;
        let mut raw_dma = dma;
        raw_dma.args[5] = 77;
        let ops = vec![
            Op::Start {
                actor: 9,
                cpu: 3,
                action: raw,
            },
            Op::Step { actor: 5, cpu: 0 },
            Op::Speculate {
                cpu: 0,
                icache: true,
                pick: 65535,
            },
            Op::Evict {
                cpu: 0,
                icache: false,
                pick: 7,
            },
            Op::Start {
                actor: 4,
                cpu: 0,
                action: raw_dma,
            },
        ];
        let t = Trace::new(&*m, &ops, Some("stale-load:x@linear<-y@user".into()));
        let text = t.to_text(&["a comment".into()]);
        assert_eq!(Trace::parse(&text).unwrap(), t);
        assert_eq!(
            t.ops[0],
            Op::Start {
                actor: 3,
                cpu: 0,
                action: mmap
            }
        );
        assert_eq!(
            t.ops[4],
            Op::Start {
                actor: 4,
                cpu: 0,
                action: dma
            }
        );
        assert!(
            text.contains(
                "start K0 cpu0 mmap file=1 pgoff=2 at=200 shared=true exec=false fixed=true"
            ),
            "{text}"
        );
    }
}
