//! The one funnel every decision of a run goes through.
//!
//! A run's nondeterminism is its op stream: which actor steps next on which CPU, what it does,
//! which hardware event happens. Ops come from an [`OpSource`]: fuzzer bytes decoded with
//! `arbitrary`, a seeded `rand_xoshiro` generator, or a replayed list. [`run_source`] pulls ops
//! from a source until it is exhausted (or a violation ends the run) and records every op it
//! took, so any run, whatever its source, can be written as a trace and replayed exactly.

use crate::arch::Arch;
use crate::model::Model;
use crate::op::Op;
use crate::run::{Report, RunOptions, Runner};
use arbitrary::{Arbitrary, Unstructured};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// A source of ops.
pub trait OpSource {
    /// The next op, or `None` when the source is exhausted.
    fn next_op(&mut self) -> Option<Op>;
}

/// Ops decoded from fuzzer bytes, as `Vec<Op>::arbitrary_take_rest` would decode them.
#[derive(Debug)]
pub struct Bytes<'a> {
    u: Unstructured<'a>,
}

impl<'a> Bytes<'a> {
    /// A source over `data`.
    pub fn new(data: &'a [u8]) -> Bytes<'a> {
        Bytes {
            u: Unstructured::new(data),
        }
    }
}

impl OpSource for Bytes<'_> {
    fn next_op(&mut self) -> Option<Op> {
        // The same layout as `arbitrary`'s take-rest iteration: a "continue" byte, then the op.
        if !bool::arbitrary(&mut self.u).unwrap_or(false) {
            return None;
        }
        Op::arbitrary(&mut self.u).ok()
    }
}

/// `len` ops from a seeded generator (xoshiro256++, whose output never changes between
/// versions), each decoded from fresh random bytes.
#[derive(Debug)]
pub struct Random {
    rng: Xoshiro256PlusPlus,
    left: usize,
    buf: [u8; 64],
}

impl Random {
    /// `len` ops from `seed`.
    pub fn new(seed: u64, len: usize) -> Random {
        Random {
            rng: Xoshiro256PlusPlus::seed_from_u64(seed),
            left: len,
            buf: [0; 64],
        }
    }
}

impl OpSource for Random {
    fn next_op(&mut self) -> Option<Op> {
        if self.left == 0 {
            return None;
        }
        self.left -= 1;
        self.rng.fill_bytes(&mut self.buf);
        Op::arbitrary(&mut Unstructured::new(&self.buf)).ok()
    }
}

/// A replayed list of ops.
#[derive(Debug)]
pub struct Replay<'a> {
    ops: std::slice::Iter<'a, Op>,
}

impl<'a> Replay<'a> {
    /// A source replaying `ops`.
    pub fn new(ops: &'a [Op]) -> Replay<'a> {
        Replay { ops: ops.iter() }
    }
}

impl OpSource for Replay<'_> {
    fn next_op(&mut self) -> Option<Op> {
        self.ops.next().copied()
    }
}

/// Runs ops from `source` on `model`; returns the report and the ops taken.
pub fn run_source<A: Arch + Clone>(
    model: &Model<A>,
    source: &mut dyn OpSource,
    opts: RunOptions,
) -> (Report, Vec<Op>) {
    let mut r = Runner::new(model, opts);
    let mut taken = Vec::new();
    while let Some(op) = source.next_op() {
        taken.push(op);
        r.apply(&op);
        if r.stopped() {
            break;
        }
    }
    if !r.stopped() {
        r.finish();
    }
    (r.report(), taken)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::arch::vivt::ArmVivt;

    #[test]
    fn every_source_replays_to_the_same_run() {
        let p = Model::new(crate::preset::by_name("gup-anon-alias").unwrap(), ArmVivt);
        let mut seeded = Vec::new();
        while seeded.len() < 30 {
            seeded.extend(Random::new(seeded.len() as u64, 1).next_op());
        }
        let bytes = crate::encode::encode_input(0, &seeded)[1..].to_vec();
        let (a, taken_a) = run_source(&p, &mut Bytes::new(&bytes), RunOptions { log: true });
        let (b, _) = run_source(&p, &mut Replay::new(&taken_a), RunOptions { log: true });
        assert_eq!(a.events, b.events);
        let (c, taken_c) = run_source(&p, &mut Random::new(9, 40), RunOptions { log: true });
        let (d, taken_d) = run_source(&p, &mut Random::new(9, 40), RunOptions { log: true });
        assert_eq!(taken_c, taken_d);
        assert_eq!(c.events, d.events);
        let (e, _) = run_source(&p, &mut Replay::new(&taken_c), RunOptions { log: true });
        assert_eq!(c.events, e.events);
        assert!(!taken_a.is_empty() && !taken_c.is_empty());
        assert!(a.ops_applied <= seeded.len());
    }

    #[test]
    fn bytes_source_decodes_like_the_fuzz_input() {
        let bytes: Vec<u8> = (0..500u32)
            .map(|i| (i.wrapping_mul(40503) >> 7) as u8)
            .collect();
        let input =
            crate::harness::FuzzInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
        let mut src = Bytes::new(&bytes[1..]);
        let mut ops = Vec::new();
        while let Some(op) = src.next_op() {
            ops.push(op);
        }
        assert_eq!(ops, input.ops);
    }
}
