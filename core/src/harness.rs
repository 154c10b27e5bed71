//! The one harness every front end calls: decoding fuzzer bytes into a preset and ops, loading
//! input files (trace text or raw libFuzzer bytes), and the fuzz entry point that turns a
//! violation into a panic so libFuzzer records the input.

use crate::op::Op;
use crate::preset::{self, Preset};
use crate::run::{run, Report, RunOptions};
use crate::trace::{Trace, TraceError};
use arbitrary::Arbitrary;
use std::cell::RefCell;
use std::sync::OnceLock;

/// The presets a fuzz input may choose among when no preset is fixed: the five races.
pub const RACE_PRESETS: [&str; 5] = [
    "nfs-vmap-alias",
    "gup-anon-alias",
    "exec-icache-smp",
    "kmap-recycle-dma",
    "fork-cow-alias",
];

/// The environment variable that fixes the preset of fuzz inputs (set by `flushfuzz hunt`).
pub const PRESET_ENV: &str = "FLUSHFUZZ_PRESET";

/// The environment variable that, set to `1`, makes the fuzz target pass over violations of
/// families mainline behaviour has too ([`crate::triage::in_mainline`]), so that a campaign on a
/// `-fixed` twin looks beyond them (set by `flushfuzz hunt --skip-mainline`).
pub const SKIP_MAINLINE_ENV: &str = "FLUSHFUZZ_SKIP_MAINLINE";

fn skip_mainline() -> bool {
    static SKIP: OnceLock<bool> = OnceLock::new();
    *SKIP.get_or_init(|| std::env::var(SKIP_MAINLINE_ENV).is_ok_and(|v| v == "1"))
}

/// A fuzz input: a preset choice (ignored when the preset is fixed) and the ops.
#[derive(Arbitrary, Clone, Debug, Default, PartialEq, Eq)]
pub struct FuzzInput {
    /// Index into [`RACE_PRESETS`], modulo its length.
    pub preset: u8,
    /// The ops.
    pub ops: Vec<Op>,
}

fn fixed_preset() -> Option<&'static Preset> {
    static FIXED: OnceLock<Option<Preset>> = OnceLock::new();
    FIXED
        .get_or_init(|| {
            let name = std::env::var(PRESET_ENV).ok()?;
            Some(
                preset::by_name(&name)
                    .unwrap_or_else(|| panic!("{PRESET_ENV}={name}: unknown preset")),
            )
        })
        .as_ref()
}

/// Decodes fuzzer bytes. `fixed` overrides the input's preset choice.
pub fn decode(data: &[u8], fixed: Option<&Preset>) -> (Preset, Vec<Op>) {
    let (p, ops) = decode_ref(data, fixed);
    (p.clone(), ops)
}

/// [`decode`] without copying the preset: `fixed`, or one of the race presets built once.
fn decode_ref<'a>(data: &[u8], fixed: Option<&'a Preset>) -> (&'a Preset, Vec<Op>) {
    let input = crate::mutate::decode_input(data);
    (preset_of(&input, fixed), input.ops)
}

/// The preset `input` runs on: `fixed`, or its choice among the race presets (built once).
fn preset_of<'a>(input: &FuzzInput, fixed: Option<&'a Preset>) -> &'a Preset {
    static RACES: OnceLock<Vec<Preset>> = OnceLock::new();
    match fixed {
        Some(p) => p,
        None => {
            let races = RACES.get_or_init(|| {
                RACE_PRESETS
                    .iter()
                    .map(|n| preset::by_name(n).expect("race preset exists"))
                    .collect()
            });
            &races[input.preset as usize % races.len()]
        }
    }
}

thread_local! {
    /// The last input the custom mutator or crossover produced, with its decoded form.
    /// libFuzzer runs each mutant right after producing it and mutates it again in the next
    /// round, so most inputs need no decoding. The mutator's outputs are the encoding of the ops
    /// it hands over (a test checks it), so a hit decodes exactly as the bytes would.
    static LAST: RefCell<(Vec<u8>, FuzzInput)> = const {
        RefCell::new((
            Vec::new(),
            FuzzInput { preset: 0, ops: Vec::new() },
        ))
    };
}

/// How many decoded inputs [`DECODED`] keeps before it starts over.
const DECODED_CAP: usize = 4096;

thread_local! {
    /// Inputs decoded for the custom mutator and crossover, by their bytes: libFuzzer hands
    /// them corpus entries, the same few hundred again and again. Decoding is a pure function
    /// of the bytes, so a hit is exactly what decoding would give.
    static DECODED: RefCell<std::collections::BTreeMap<Vec<u8>, FuzzInput>> =
        const { RefCell::new(std::collections::BTreeMap::new()) };
}

/// `data` decoded, from [`LAST`] or [`DECODED`] when they hold these bytes. A hit in `LAST`
/// is taken out of it: this is for a mutation or crossover, whose output replaces it.
fn decoded(data: &[u8]) -> FuzzInput {
    let last = LAST.with_borrow_mut(|(bytes, input)| {
        (bytes.as_slice() == data).then(|| {
            bytes.clear();
            std::mem::take(input)
        })
    });
    if let Some(input) = last {
        return input;
    }
    DECODED.with_borrow_mut(|cache| {
        if let Some(input) = cache.get(data) {
            return input.clone();
        }
        let input = crate::mutate::decode_input(data);
        if cache.len() >= DECODED_CAP {
            cache.clear();
        }
        cache.insert(data.to_vec(), input.clone());
        input
    })
}

/// Records a mutant and its decoded form in [`LAST`] and returns its bytes.
fn remember(out: (Vec<u8>, FuzzInput)) -> Vec<u8> {
    LAST.with_borrow_mut(|last| {
        last.0.clear();
        last.0.extend_from_slice(&out.0);
        last.1 = out.1;
    });
    out.0
}

/// Encodes a preset choice and ops as fuzzer bytes that [`decode`] maps back to them (for
/// seeding corpora).
pub fn encode(preset_index: u8, ops: &[Op]) -> Vec<u8> {
    crate::encode::encode_input(preset_index, ops)
}

/// The fuzz target body: runs the input and panics on a violation (unless [`SKIP_MAINLINE_ENV`]
/// passes over its family).
pub fn fuzz_one(data: &[u8]) {
    let fixed = fixed_preset();
    let (p, r) = LAST.with_borrow(|(bytes, input)| {
        let run_on = |input: &FuzzInput| {
            let p = preset_of(input, fixed);
            (p, run(p, &input.ops, RunOptions::default()))
        };
        if bytes.as_slice() == data {
            run_on(input)
        } else {
            run_on(&crate::mutate::decode_input(data))
        }
    });
    if let Some(v) = r.violation {
        if skip_mainline() && crate::triage::in_mainline(&v) {
            return;
        }
        panic!(
            "flushfuzz: {} on preset {} ({} ops)",
            v.signature(),
            p.name,
            r.ops_applied
        );
    }
}

/// The environment variable that chooses the campaign's mutator (set by `flushfuzz hunt`):
/// `ops` (the default), `mixed` or `bytes`; see [`Mutator`].
pub const MUTATOR_ENV: &str = "FLUSHFUZZ_MUTATOR";

/// How a campaign mutates inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mutator {
    /// Op-level mutations and crossover ([`crate::mutate`]).
    Ops,
    /// Op-level, with one mutation in [`MIXED_BYTES_ONE_IN`] left to libFuzzer's byte mutator
    /// (which also inserts values the program compared against).
    Mixed,
    /// libFuzzer's byte mutator only, and a byte-level crossover.
    Bytes,
}

/// In [`Mutator::Mixed`], one mutation in this many is libFuzzer's.
pub const MIXED_BYTES_ONE_IN: u32 = 8;

impl Mutator {
    /// The names `FLUSHFUZZ_MUTATOR` and `flushfuzz hunt --mutator` accept.
    pub const NAMES: [&'static str; 3] = ["ops", "mixed", "bytes"];

    /// The mutator called `name`.
    pub fn by_name(name: &str) -> Option<Mutator> {
        match name {
            "ops" => Some(Mutator::Ops),
            "mixed" => Some(Mutator::Mixed),
            "bytes" => Some(Mutator::Bytes),
            _ => None,
        }
    }

    /// Its name.
    pub fn name(self) -> &'static str {
        match self {
            Mutator::Ops => "ops",
            Mutator::Mixed => "mixed",
            Mutator::Bytes => "bytes",
        }
    }
}

fn mutator() -> Mutator {
    static M: OnceLock<Mutator> = OnceLock::new();
    *M.get_or_init(|| match std::env::var(MUTATOR_ENV) {
        Ok(name) => Mutator::by_name(&name).unwrap_or_else(|| {
            panic!(
                "{MUTATOR_ENV}={name}: unknown mutator (known: {})",
                Mutator::NAMES.join(", ")
            )
        }),
        Err(_) => Mutator::Ops,
    })
}

/// The fuzz target's custom mutator: mutates `data[..size]` in place within `max_size` bytes
/// and returns the new size, or `None` when this mutation is left to libFuzzer's byte mutator
/// (see [`Mutator`]). `data` must hold at least `max(size, max_size)` bytes.
pub fn fuzz_mutate(data: &mut [u8], size: usize, max_size: usize, seed: u32) -> Option<usize> {
    match mutator() {
        Mutator::Bytes => return None,
        Mutator::Mixed if seed % MIXED_BYTES_ONE_IN == 0 => return None,
        Mutator::Ops | Mutator::Mixed => {}
    }
    let max = max_size.min(data.len());
    let out = remember(crate::mutate::mutate_decoded(
        decoded(&data[..size.min(data.len())]),
        max,
        seed,
        fixed_preset().is_none(),
    ));
    data[..out.len()].copy_from_slice(&out);
    Some(out.len())
}

/// The fuzz target's custom crossover: combines `a` and `b` into `out` and returns the size
/// written. Op-level ([`crate::mutate::crossover`]) unless the mutator is `bytes`, which
/// joins a prefix of `a` to a suffix of `b`.
pub fn fuzz_crossover(a: &[u8], b: &[u8], out: &mut [u8], seed: u32) -> usize {
    let joined = if mutator() == Mutator::Bytes {
        let cut_a = if a.is_empty() {
            0
        } else {
            seed as usize % (a.len() + 1)
        };
        let cut_b = if b.is_empty() {
            0
        } else {
            (seed as usize / 7919) % (b.len() + 1)
        };
        let mut v = a[..cut_a].to_vec();
        v.extend_from_slice(&b[cut_b..]);
        v
    } else {
        remember(crate::mutate::crossover_decoded(
            decoded(a),
            &decoded(b),
            out.len(),
            seed,
        ))
    };
    let n = joined.len().min(out.len());
    out[..n].copy_from_slice(&joined[..n]);
    n
}

/// An input loaded from a file.
#[derive(Clone, Debug)]
pub struct Loaded {
    /// The preset it runs on.
    pub preset: Preset,
    /// Its ops.
    pub ops: Vec<Op>,
    /// The outcome it expects, for traces (`Some(None)`: expects no violation).
    pub expect: Option<Option<String>>,
    /// Whether it was a trace (text) rather than raw fuzzer bytes.
    pub is_trace: bool,
}

/// Why a file could not be loaded.
#[derive(Debug)]
pub enum LoadError {
    /// The file could not be read.
    Io(std::io::Error),
    /// The trace text is malformed.
    Trace(TraceError),
    /// The file is larger than any input flushfuzz writes: it holds at least this many bytes
    /// (a pipe or a device may never end).
    TooLarge(u64),
    /// The preset given does not exist.
    UnknownPreset(String),
}

impl std::fmt::Display for LoadError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            LoadError::Io(e) => write!(f, "{e}"),
            LoadError::Trace(e) => write!(f, "{e}"),
            LoadError::TooLarge(n) => write!(
                f,
                "at least {n} bytes, larger than any input ({} bytes at most)",
                MAX_INPUT
            ),
            LoadError::UnknownPreset(p) => write!(
                f,
                "unknown preset `{p}` (known: {})",
                preset::names().join(", ")
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// The largest file accepted as an input.
pub const MAX_INPUT: u64 = 1 << 20;

/// Loads a trace file or raw fuzzer bytes. A file is a trace if it starts with
/// `flushfuzz-trace` (after comments and blank lines). `preset` overrides the file's preset.
pub fn load_bytes(bytes: &[u8], preset_override: Option<&str>) -> Result<Loaded, LoadError> {
    if bytes.len() as u64 > MAX_INPUT {
        return Err(LoadError::TooLarge(bytes.len() as u64));
    }
    let over = match preset_override {
        Some(n) => Some(preset::by_name(n).ok_or_else(|| LoadError::UnknownPreset(n.into()))?),
        None => None,
    };
    let looks_like_trace = |t: &str| {
        t.lines()
            .map(str::trim)
            .find(|l| !l.is_empty() && !l.starts_with('#'))
            .is_some_and(|l| l.starts_with("flushfuzz-trace"))
    };
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => Some(t),
        Err(e) => {
            // A trace with a bad byte is a broken trace, not raw fuzzer bytes: say where.
            if looks_like_trace(&String::from_utf8_lossy(bytes)) {
                let valid = &bytes[..e.valid_up_to()];
                let line_start = valid.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
                return Err(LoadError::Trace(TraceError {
                    line: valid.iter().filter(|&&b| b == b'\n').count() + 1,
                    column: valid.len() - line_start + 1,
                    message: "invalid UTF-8".into(),
                }));
            }
            None
        }
    };
    let is_trace = text.is_some_and(looks_like_trace);
    if is_trace {
        let t = Trace::parse(text.expect("utf-8")).map_err(LoadError::Trace)?;
        let p = over
            .clone()
            .unwrap_or_else(|| preset::by_name(&t.preset).expect("parser checked the preset"));
        let ops = crate::trace::canonical(&p, &t.ops);
        let expect = if over.is_some() { None } else { Some(t.expect) };
        return Ok(Loaded {
            preset: p,
            ops,
            expect,
            is_trace: true,
        });
    }
    let (p, ops) = decode(bytes, over.as_ref());
    Ok(Loaded {
        ops: crate::trace::canonical(&p, &ops),
        preset: p,
        expect: None,
        is_trace: false,
    })
}

/// Reads the file at `path` whole if it holds at most `limit` bytes, and fails with an error of
/// kind [`std::io::ErrorKind::FileTooLarge`] as soon as it holds more. It reads through
/// [`std::io::Read::take`] rather than trusting the file's length, which is 0 for `/dev/zero`,
/// a FIFO or `<(command)`, whose reads might never end. Every reader of input files goes
/// through it.
pub fn read_at_most(path: &std::path::Path, limit: u64) -> std::io::Result<Vec<u8>> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut bytes = Vec::new();
    file.take(limit.saturating_add(1)).read_to_end(&mut bytes)?;
    if bytes.len() as u64 > limit {
        return Err(std::io::Error::new(
            std::io::ErrorKind::FileTooLarge,
            format!("more than {limit} bytes, the most this file may hold"),
        ));
    }
    Ok(bytes)
}

/// Loads a file (see [`load_bytes`]), reading at most [`MAX_INPUT`] bytes of it.
pub fn load_file(
    path: &std::path::Path,
    preset_override: Option<&str>,
) -> Result<Loaded, LoadError> {
    // A regular file says how large it is: no need to read it to refuse it.
    let meta = std::fs::metadata(path).map_err(LoadError::Io)?;
    if meta.len() > MAX_INPUT {
        return Err(LoadError::TooLarge(meta.len()));
    }
    let bytes = read_at_most(path, MAX_INPUT).map_err(|e| match e.kind() {
        std::io::ErrorKind::FileTooLarge => LoadError::TooLarge(MAX_INPUT + 1),
        _ => LoadError::Io(e),
    })?;
    load_bytes(&bytes, preset_override)
}

/// Runs a loaded input with the event log on.
pub fn replay(l: &Loaded) -> Report {
    run(&l.preset, &l.ops, RunOptions { log: true })
}

/// The trace-parser fuzz target body: parsing never panics, and an accepted trace prints and
/// parses back to the same trace.
pub fn fuzz_trace_parser(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(t) = Trace::parse(text) {
        let again = Trace::parse(&t.to_text(&[])).expect("printed traces parse");
        assert_eq!(again, t, "trace round trip");
    }
}
