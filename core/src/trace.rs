//! Trace files: the durable, human-readable form of an input and its outcome.
//!
//! A trace is text: a version line, the preset, the expected outcome (a violation signature or
//! `none`), then one op per line. Comments start with `#`. Actors are named as the preset names
//! them (`T0`, `K1`, `IRQ`) or by number (`#4`); CPUs as `cpu0`. Printing canonicalises actor
//! and CPU numbers (they wrap modulo what exists, so behaviour is unchanged) and parsing the
//! printed text gives back exactly the canonical ops. Parse errors name the line and column.
//!
//! ```text
//! flushfuzz-trace 1
//! preset gup-anon-alias
//! expect stale-load:fuse-read-from-user@linear<-user store@user
//! start T0 cpu0 store page=1 off=0
//! start T0 cpu0 gup page=1 off=0 write=false
//! ```

use crate::op::{Action, DmaDir, Op};
use crate::preset::{self, Preset};
use std::fmt::{self, Write as _};

/// The format version this code reads and writes.
pub const VERSION: u32 = 1;

/// A parsed trace.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trace {
    /// The preset's name.
    pub preset: String,
    /// The expected violation signature; `None` means no violation is expected.
    pub expect: Option<String>,
    /// The ops.
    pub ops: Vec<Op>,
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

/// Canonical ops: actor and CPU numbers reduced modulo what the preset has.
pub fn canonical(preset: &Preset, ops: &[Op]) -> Vec<Op> {
    let n = preset.actor_names().len() as u8;
    let c = preset.machine.cpus;
    ops.iter()
        .map(|op| match *op {
            Op::Step { actor, cpu } => Op::Step {
                actor: actor % n,
                cpu: cpu % c,
            },
            Op::Start { actor, cpu, action } => Op::Start {
                actor: actor % n,
                cpu: cpu % c,
                action,
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

fn dir_name(d: DmaDir) -> &'static str {
    match d {
        DmaDir::ToDevice => "to-device",
        DmaDir::FromDevice => "from-device",
        DmaDir::Bidirectional => "bidirectional",
    }
}

/// The fields of an action, as `(name, value)` text pairs, in declaration order.
pub fn action_fields(a: &Action) -> Vec<(&'static str, String)> {
    let n = |x: u8| x.to_string();
    let b = |x: bool| x.to_string();
    match *a {
        Action::Load { page, off } | Action::Store { page, off } | Action::Fetch { page, off } => {
            vec![("page", n(page)), ("off", n(off))]
        }
        Action::Fork | Action::Exit => vec![],
        Action::Munmap { page, pages } => vec![("page", n(page)), ("pages", n(pages))],
        Action::Mmap {
            file,
            pgoff,
            at,
            shared,
            exec,
            fixed,
        } => {
            vec![
                ("file", n(file)),
                ("pgoff", n(pgoff)),
                ("at", n(at)),
                ("shared", b(shared)),
                ("exec", b(exec)),
                ("fixed", b(fixed)),
            ]
        }
        Action::Mprotect { page, write, exec } => {
            vec![("page", n(page)), ("write", b(write)), ("exec", b(exec))]
        }
        Action::ReadFile {
            file,
            index,
            off,
            page,
        }
        | Action::WriteFile {
            file,
            index,
            off,
            page,
        } => {
            vec![
                ("file", n(file)),
                ("index", n(index)),
                ("off", n(off)),
                ("page", n(page)),
            ]
        }
        Action::Gup { page, off, write } => {
            vec![("page", n(page)), ("off", n(off)), ("write", b(write))]
        }
        Action::DirectIo { page, to_device } => {
            vec![("page", n(page)), ("to-device", b(to_device))]
        }
        Action::PtracePoke { target, page, off } => {
            vec![("target", n(target)), ("page", n(page)), ("off", n(off))]
        }
        Action::Cacheflush { page } => vec![("page", n(page))],
        Action::KmapWrite { buf, off }
        | Action::KmapRead { buf, off }
        | Action::KmapAtomicWrite { buf, off } => vec![("buf", n(buf)), ("off", n(off))],
        Action::Readdir { at, pages } => vec![("at", n(at)), ("pages", n(pages))],
        Action::Dma { buf, dir } | Action::DmaSync { buf, dir } => {
            vec![("buf", n(buf)), ("dir", dir_name(dir).into())]
        }
    }
}

/// One op as trace text, with actors named as in `names`.
pub fn format_op(op: &Op, names: &[String]) -> String {
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
            let mut s = format!("start {} cpu{cpu} {}", actor(*a), action.name());
            for (k, v) in action_fields(action) {
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

impl Trace {
    /// A trace of `ops` (canonicalised) on `preset`.
    pub fn new(preset: &Preset, ops: &[Op], expect: Option<String>) -> Trace {
        Trace {
            preset: preset.name.clone(),
            expect,
            ops: canonical(preset, ops),
        }
    }

    /// The trace as text. `comment` lines, if any, are written as `#` comments after the header.
    pub fn to_text(&self, comment: &[String]) -> String {
        let names = preset::by_name(&self.preset)
            .map(|p| p.actor_names())
            .unwrap_or_default();
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
            s.push_str(&format_op(op, &names));
            s.push('\n');
        }
        s
    }

    /// Parses trace text.
    pub fn parse(text: &str) -> Result<Trace, TraceError> {
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
        let preset = match toks.as_slice() {
            [(_, "preset"), (c, name)] => preset::by_name(name).ok_or_else(|| {
                err(
                    ln,
                    *c,
                    format!(
                        "unknown preset `{name}` (known: {})",
                        preset::names().join(", ")
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
        let names = preset.actor_names();
        let mut ops = Vec::new();
        for (ln, l) in lines {
            ops.push(parse_op(l, &names, preset.machine.cpus).map_err(|(c, m)| err(ln, c, m))?);
        }
        Ok(Trace {
            preset: preset.name.clone(),
            expect,
            ops,
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

/// The most `name=value` fields an action has (`mmap`).
const MAX_FIELDS: usize = 6;

struct Fields<'a> {
    items: Vec<(usize, &'a str, &'a str)>,
    used: Vec<bool>,
    at: usize,
}

impl<'a> Fields<'a> {
    fn new(toks: &[(usize, &'a str)], at: usize) -> Result<Fields<'a>, PErr> {
        let mut items = Vec::new();
        for &(c, t) in toks {
            // Bounded before the duplicate check, which is quadratic: a hostile line of a
            // million fields must fail at once.
            if items.len() == MAX_FIELDS {
                return Err((
                    c,
                    format!("unexpected `{t}`: an action has at most {MAX_FIELDS} fields"),
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
        let n = items.len();
        Ok(Fields {
            items,
            used: vec![false; n],
            at,
        })
    }

    fn raw(&mut self, k: &str) -> Result<(usize, &'a str), PErr> {
        let i = self
            .items
            .iter()
            .position(|(_, k2, _)| *k2 == k)
            .ok_or_else(|| (self.at, format!("missing field `{k}=`")))?;
        self.used[i] = true;
        Ok((self.items[i].0 + k.len() + 1, self.items[i].2))
    }

    fn u8(&mut self, k: &str) -> Result<u8, PErr> {
        let (c, v) = self.raw(k)?;
        v.parse().map_err(|_| {
            (
                c,
                format!("`{k}` must be a number from 0 to 255, found `{v}`"),
            )
        })
    }

    fn bool(&mut self, k: &str) -> Result<bool, PErr> {
        let (c, v) = self.raw(k)?;
        v.parse()
            .map_err(|_| (c, format!("`{k}` must be `true` or `false`, found `{v}`")))
    }

    fn dir(&mut self, k: &str) -> Result<DmaDir, PErr> {
        let (c, v) = self.raw(k)?;
        match v {
            "to-device" => Ok(DmaDir::ToDevice),
            "from-device" => Ok(DmaDir::FromDevice),
            "bidirectional" => Ok(DmaDir::Bidirectional),
            _ => Err((
                c,
                format!("`{k}` must be to-device, from-device or bidirectional, found `{v}`"),
            )),
        }
    }

    fn done(self) -> Result<(), PErr> {
        match self.used.iter().position(|u| !u) {
            Some(i) => Err((
                self.items[i].0,
                format!("unknown field `{}`", self.items[i].1),
            )),
            None => Ok(()),
        }
    }
}

/// Builds an action from its trace name and `name=value` fields (the inverse of
/// [`action_fields`]).
pub fn action_from_fields(name: &str, fields: &[(&str, String)]) -> Option<Action> {
    let texts: Vec<String> = fields.iter().map(|(k, v)| format!("{k}={v}")).collect();
    let toks: Vec<(usize, &str)> = texts.iter().map(|t| (1, t.as_str())).collect();
    parse_action((1, name), &toks).ok()
}

fn parse_action(name: (usize, &str), rest: &[(usize, &str)]) -> Result<Action, PErr> {
    let mut f = Fields::new(rest, name.0)?;
    let a = match name.1 {
        "load" => Action::Load {
            page: f.u8("page")?,
            off: f.u8("off")?,
        },
        "store" => Action::Store {
            page: f.u8("page")?,
            off: f.u8("off")?,
        },
        "fetch" => Action::Fetch {
            page: f.u8("page")?,
            off: f.u8("off")?,
        },
        "fork" => Action::Fork,
        "exit" => Action::Exit,
        "munmap" => Action::Munmap {
            page: f.u8("page")?,
            pages: f.u8("pages")?,
        },
        "mmap" => Action::Mmap {
            file: f.u8("file")?,
            pgoff: f.u8("pgoff")?,
            at: f.u8("at")?,
            shared: f.bool("shared")?,
            exec: f.bool("exec")?,
            fixed: f.bool("fixed")?,
        },
        "mprotect" => Action::Mprotect {
            page: f.u8("page")?,
            write: f.bool("write")?,
            exec: f.bool("exec")?,
        },
        "read" => Action::ReadFile {
            file: f.u8("file")?,
            index: f.u8("index")?,
            off: f.u8("off")?,
            page: f.u8("page")?,
        },
        "write" => Action::WriteFile {
            file: f.u8("file")?,
            index: f.u8("index")?,
            off: f.u8("off")?,
            page: f.u8("page")?,
        },
        "gup" => Action::Gup {
            page: f.u8("page")?,
            off: f.u8("off")?,
            write: f.bool("write")?,
        },
        "direct-io" => Action::DirectIo {
            page: f.u8("page")?,
            to_device: f.bool("to-device")?,
        },
        "ptrace-poke" => Action::PtracePoke {
            target: f.u8("target")?,
            page: f.u8("page")?,
            off: f.u8("off")?,
        },
        "cacheflush" => Action::Cacheflush {
            page: f.u8("page")?,
        },
        "kmap-write" => Action::KmapWrite {
            buf: f.u8("buf")?,
            off: f.u8("off")?,
        },
        "kmap-read" => Action::KmapRead {
            buf: f.u8("buf")?,
            off: f.u8("off")?,
        },
        "kmap-atomic-write" => Action::KmapAtomicWrite {
            buf: f.u8("buf")?,
            off: f.u8("off")?,
        },
        "readdir" => Action::Readdir {
            at: f.u8("at")?,
            pages: f.u8("pages")?,
        },
        "dma" => Action::Dma {
            buf: f.u8("buf")?,
            dir: f.dir("dir")?,
        },
        "dma-sync" => Action::DmaSync {
            buf: f.u8("buf")?,
            dir: f.dir("dir")?,
        },
        other => return Err((name.0, format!("unknown action `{other}`"))),
    };
    f.done()?;
    Ok(a)
}

fn parse_op(l: &str, names: &[String], cpus: u8) -> Result<Op, PErr> {
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
            let action = parse_action(need(3, "an action")?, &toks[4..])?;
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
        let p = preset::by_name("kmap-recycle-dma").unwrap();
        let ops = vec![
            Op::Start {
                actor: 9,
                cpu: 3,
                action: Action::Mmap {
                    file: 1,
                    pgoff: 2,
                    at: 200,
                    shared: true,
                    exec: false,
                    fixed: true,
                },
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
                action: Action::Dma {
                    buf: 3,
                    dir: DmaDir::Bidirectional,
                },
            },
        ];
        let t = Trace::new(&p, &ops, Some("stale-load:x@linear<-y@user".into()));
        let text = t.to_text(&["a comment".into()]);
        assert_eq!(Trace::parse(&text).unwrap(), t);
        assert_eq!(
            t.ops[0],
            Op::Start {
                actor: 3,
                cpu: 0,
                action: Action::Mmap {
                    file: 1,
                    pgoff: 2,
                    at: 200,
                    shared: true,
                    exec: false,
                    fixed: true
                }
            }
        );
    }
}
