//! The canonical form of a run's state, for [`crate::verify`]'s state hashes.
//!
//! Two schedules that reach the same state up to the names of values and the numbering of
//! steps behave alike from there on, and should hash alike. Each part of the state (machine,
//! caches, oracle, kernel, scheduler) writes itself into a [`Canon`] sink, skipping what equals
//! the template it started from; the sink renames what depends on the order of steps:
//!
//! - a stamp (a fresh value) is named after where it was made: the actor, which of its
//!   actions, which poll of it, and its rank among the values that poll made
//!   ([`Names`]). Initial and disk values keep their numbers. The model only ever compares
//!   stamps for equality, so renaming them changes no behaviour, and a name means the same
//!   value all along a run, in the state and in a script's locals alike.
//! - a step number (a write's or a read's step, an action's start) is kept only as where it
//!   falls among the thresholds a running action can still compare steps with: the steps the
//!   busy actors started in and the marks they keep ([`crate::world::Cx::mark_step`]). The
//!   model compares recorded steps only with those (`Oracle::written_by_another_since`, a
//!   write's provenance against the writer's start), and every later threshold comes after
//!   every recorded step.
//!
//! This module knows nothing of what the parts are; each decides what it writes.

use crate::addr::Stamp;

/// How fresh stamps are named: for each stretch of stamps one op made, the name of its first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Names {
    /// The last stamp the template issued: stamps up to it are initial or disk values.
    base: Stamp,
    /// `(first, last, name of first)` for each op that made stamps, in order.
    runs: Vec<(Stamp, Stamp, u64)>,
}

/// The tag of a renamed stamp, above every initial value.
const FRESH: u64 = 1 << 63;

impl Names {
    /// Names for a run whose template issued stamps up to `base`.
    pub(crate) fn new(base: Stamp) -> Names {
        Names {
            base,
            runs: Vec::new(),
        }
    }

    /// The stamps after `before` up to `after` were made by poll `poll` of action `action` of
    /// `actor`.
    pub(crate) fn made(&mut self, before: Stamp, after: Stamp, actor: u8, action: u32, poll: u32) {
        if after > before {
            let name = (actor as u64) << 52 | (action as u64 & 0xfff) << 40 | (poll as u64) << 24;
            self.runs.push((before + 1, after, name));
        }
    }

    /// The name of stamp `s`.
    pub(crate) fn of(&self, s: Stamp) -> u64 {
        if s <= self.base {
            return s as u64;
        }
        let i = self.runs.partition_point(|r| r.1 < s);
        match self.runs.get(i) {
            Some(&(first, last, name)) if first <= s && s <= last => {
                FRESH | name | (s - first) as u64
            }
            // A stamp nobody made (an arch's own value): keep it.
            _ => s as u64,
        }
    }
}

/// A sink for the canonical form of a state: words, renamed stamps, step classes, hashed as
/// they come.
#[derive(Debug)]
pub(crate) struct Canon<'a> {
    hash: Hash128,
    names: &'a Names,
    thresholds: Vec<u32>,
    /// Texts hashed already, by address: paths' names are a few static strings.
    texts: Vec<(usize, usize, u64)>,
}

impl<'a> Canon<'a> {
    /// A sink renaming stamps with `names` and classing steps by `thresholds`.
    pub(crate) fn new(names: &'a Names, mut thresholds: Vec<u32>) -> Canon<'a> {
        thresholds.sort_unstable();
        thresholds.dedup();
        Canon {
            hash: Hash128::new(),
            names,
            thresholds,
            texts: Vec::new(),
        }
    }

    /// A word.
    #[inline]
    pub(crate) fn word(&mut self, x: u64) {
        self.hash.word(x);
    }

    /// The name of a stamp, to sort by before writing.
    pub(crate) fn name(&self, s: Stamp) -> u64 {
        self.names.of(s)
    }

    /// A stamp, by its name.
    #[inline]
    pub(crate) fn stamp(&mut self, s: Stamp) {
        let n = self.names.of(s);
        self.hash.word(n);
    }

    /// Stamps.
    pub(crate) fn stamps(&mut self, s: &[Stamp]) {
        for &v in s {
            self.stamp(v);
        }
    }

    /// A step number, by where it falls among the thresholds: twice the number of thresholds
    /// before it, plus one if it is one.
    #[inline]
    pub(crate) fn step(&mut self, s: u32) {
        let x = self.step_class(s);
        self.hash.word(x);
    }

    /// The class [`Canon::step`] writes for `s`.
    pub(crate) fn step_class(&self, s: u32) -> u64 {
        let below = self.thresholds.partition_point(|&t| t < s);
        let at = self.thresholds.get(below) == Some(&s);
        2 * below as u64 + at as u64
    }

    /// A text (a path's name), by its contents.
    pub(crate) fn text(&mut self, s: &str) {
        let key = (s.as_ptr() as usize, s.len());
        let h = match self.texts.iter().find(|t| (t.0, t.1) == key) {
            Some(t) => t.2,
            None => {
                let mut h = Hash128::new();
                for chunk in s.as_bytes().chunks(8) {
                    let mut w = [0u8; 8];
                    w[..chunk.len()].copy_from_slice(chunk);
                    h.word(u64::from_le_bytes(w));
                }
                let h = h.finish(s.len() as u64) as u64;
                self.texts.push((key.0, key.1, h));
                h
            }
        };
        self.hash.word(h);
    }

    /// A separator between parts, so that one part's words never read as another's.
    pub(crate) fn part(&mut self, tag: u64) {
        self.hash.word(0x5eed_0000_0000_0000 ^ tag);
    }

    /// The 128-bit hash of everything written.
    pub(crate) fn finish(&self) -> u128 {
        self.hash.finish(0)
    }
}

/// A 128-bit hash of a stream of words, two at a time: two lanes, each folding the 128-bit
/// product of (its state and the first word) and the second word, each with its own secrets
/// (wyhash's construction). Not for adversaries; for telling states apart, where two different
/// states collide with a probability near 2^-128.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Hash128 {
    a: u64,
    b: u64,
    pending: Option<u64>,
    n: u64,
}

const K: [u64; 6] = [
    0xa076_1d64_78bd_642f,
    0xe703_7ed1_a0b4_28db,
    0x8ebc_6af0_9c88_c6e3,
    0x5899_65cc_7537_4cc3,
    0x1d8e_4e27_c47d_124f,
    0x9e37_79b9_7f4a_7c15,
];

#[inline]
fn fold(x: u64, y: u64) -> u64 {
    let r = (x as u128).wrapping_mul(y as u128);
    (r as u64) ^ ((r >> 64) as u64)
}

impl Hash128 {
    pub(crate) fn new() -> Hash128 {
        Hash128 {
            a: K[4],
            b: K[5],
            pending: None,
            n: 0,
        }
    }

    #[inline]
    pub(crate) fn word(&mut self, w: u64) {
        self.n += 1;
        match self.pending.take() {
            None => self.pending = Some(w),
            Some(p) => {
                self.a = fold(p ^ K[0] ^ self.a, w ^ K[1]);
                self.b = fold(p ^ K[2] ^ self.b, w ^ K[3]);
            }
        }
    }

    pub(crate) fn finish(&self, extra: u64) -> u128 {
        let mut h = *self;
        let n = h.n;
        if h.pending.is_some() {
            h.word(0x0123_4567_89ab_cdef);
        }
        let a = fold(h.a ^ K[1], n ^ extra ^ K[4]);
        let b = fold(h.b ^ K[3], a ^ K[5]);
        let a = fold(a ^ K[0], b ^ K[2]);
        (a as u128) << 64 | b as u128
    }
}

/// The 128-bit hash of `words`.
pub(crate) fn hash_words(words: &[u64]) -> u128 {
    let mut h = Hash128::new();
    for &w in words {
        h.word(w);
    }
    h.finish(words.len() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A stamp is named by the op that made it and its rank there; initial values and values
    /// nobody made keep their numbers.
    #[test]
    fn stamps_are_named_by_where_they_were_made() {
        let mut n = Names::new(100);
        n.made(100, 103, 1, 0, 2);
        n.made(103, 103, 2, 0, 0);
        n.made(103, 105, 0, 1, 0);
        assert_eq!(n.of(7), 7);
        assert_eq!(n.of(101) + 2, n.of(103));
        assert_ne!(n.of(103), n.of(104));
        let mut m = Names::new(100);
        m.made(100, 102, 0, 1, 0);
        m.made(102, 105, 1, 0, 2);
        // The same actors' same polls made them in the other order: same names.
        assert_eq!(n.of(101), m.of(103));
        assert_eq!(n.of(104), m.of(101));
        assert_eq!(n.of(999), 999);
    }

    /// Steps are kept only as where they fall among the thresholds.
    #[test]
    fn steps_are_classed_by_thresholds() {
        let names = Names::new(0);
        let classes = |steps: &[u32], th: Vec<u32>| {
            let c = Canon::new(&names, th);
            steps.iter().map(|&s| c.step_class(s)).collect::<Vec<u64>>()
        };
        assert_eq!(classes(&[1, 4, 5, 9], vec![5]), vec![0, 0, 1, 2]);
        assert_eq!(classes(&[1, 4, 5, 9], vec![]), vec![0, 0, 0, 0]);
        assert_eq!(classes(&[3, 7], vec![7, 2]), vec![2, 3]);
    }
}
