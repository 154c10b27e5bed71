//! Op-level mutation and crossover for coverage-guided campaigns.
//!
//! libFuzzer's own mutators work on bytes. An op is 7 to 16 bytes with a variable layout, so a
//! byte inserted or erased re-frames every later op, and most byte mutations of a useful
//! interleaving destroy it. These mutators decode the input into ops, change the sequence at
//! the level the races live at (insert an op, let an actor run a few more steps, delete, swap,
//! move or duplicate ops, change one field, move an op to another actor or CPU, splice two
//! inputs), and encode the result back with [`crate::encode`], so every output is the canonical
//! encoding of its ops. The same input and seed always give the same output.

use crate::choice::{OpSource as _, Random};
use crate::encode::{encode_input, encode_op};
use crate::harness::FuzzInput;
use crate::op::Op;
use arbitrary::{Arbitrary as _, Unstructured};
use rand_core::{RngCore, SeedableRng};
use rand_xoshiro::Xoshiro256PlusPlus;

/// How many mutations one call stacks, at most.
pub const MAX_STACK: u64 = 4;
/// The longest run of steps one mutation inserts.
pub const MAX_STEP_RUN: u64 = 8;
/// The longest block of ops one mutation deletes, duplicates or moves.
pub const MAX_BLOCK: u64 = 4;
/// The most ops an output has. Runs cost time in proportion to their length, and campaign
/// inputs grow to the cap: with 32 a campaign runs about 1.7 times as many executions per second
/// as with 80, and the longest race campaigns minimize to (13 ops) fits more than twice.
/// Campaigns found each of the five races at least as fast as with 80.
pub const MAX_OPS: usize = 32;

struct Rng(Xoshiro256PlusPlus);

impl Rng {
    fn new(seed: u32, salt: u64) -> Rng {
        Rng(Xoshiro256PlusPlus::seed_from_u64(
            u64::from(seed) ^ salt.rotate_left(32),
        ))
    }

    /// Uniform in `0..n` (`n > 0`).
    fn below(&mut self, n: u64) -> u64 {
        debug_assert!(n > 0);
        ((u128::from(self.0.next_u64()) * u128::from(n)) >> 64) as u64
    }

    fn index(&mut self, len: usize) -> usize {
        self.below(len as u64) as usize
    }

    fn chance(&mut self, one_in: u64) -> bool {
        self.below(one_in) == 0
    }

    fn op(&mut self) -> Op {
        Random::new(self.0.next_u64(), 1)
            .next_op()
            .expect("a random op always decodes")
    }
}

/// Decodes fuzzer bytes as the fuzz target does (the preset choice and the ops).
pub fn decode_input(data: &[u8]) -> FuzzInput {
    FuzzInput::arbitrary_take_rest(Unstructured::new(data)).unwrap_or_default()
}

/// The encoding of `input`, dropping ops from the end until it has at most [`MAX_OPS`] ops and
/// fits in `max_size` bytes.
pub fn encode_within(input: &FuzzInput, max_size: usize) -> Vec<u8> {
    encode_kept(input.clone(), max_size).0
}

/// [`encode_within`], with the input the bytes decode to: `input` less the ops dropped.
fn encode_kept(mut input: FuzzInput, max_size: usize) -> (Vec<u8>, FuzzInput) {
    let n = input.ops.len().min(MAX_OPS);
    let mut out = encode_input(input.preset, &input.ops[..n]);
    let mut kept = n;
    if out.len() > max_size {
        out.truncate(1);
        let mut buf = Vec::with_capacity(32);
        kept = 0;
        for op in &input.ops[..n] {
            buf.clear();
            buf.push(1);
            encode_op(&mut buf, op);
            if out.len() + buf.len() > max_size {
                break;
            }
            out.extend_from_slice(&buf);
            kept += 1;
        }
        out.truncate(max_size);
    }
    input.ops.truncate(kept);
    if out.is_empty() {
        // No bytes at all decode as preset 0.
        input.preset = 0;
    }
    (out, input)
}

/// The actor and CPU an op names, if any.
fn who(op: &Op) -> Option<(u8, u8)> {
    match *op {
        Op::Step { actor, cpu } | Op::Start { actor, cpu, .. } => Some((actor, cpu)),
        Op::Speculate { .. } | Op::Evict { .. } => None,
    }
}

/// An actor and CPU taken from the ops (so that inserted steps drive actors the input uses),
/// or random ones when no op names an actor.
fn some_actor(ops: &[Op], rng: &mut Rng) -> (u8, u8) {
    let named: Vec<(u8, u8)> = ops.iter().filter_map(who).collect();
    if named.is_empty() {
        (rng.below(256) as u8, rng.below(256) as u8)
    } else {
        named[rng.index(named.len())]
    }
}

/// One field of `op` changed: a byte of its encoding replaced (by a random byte, a neighbour
/// value or zero) and the op decoded again. Changing a tag byte changes the variant.
fn tweak(op: &Op, rng: &mut Rng) -> Op {
    let mut buf = Vec::with_capacity(24);
    encode_op(&mut buf, op);
    // Bytes 0..=2 of the little-endian variant tag barely move it; byte 3 picks the variant.
    let i = 3 + rng.index(buf.len() - 3);
    buf[i] = match rng.below(4) {
        0 => buf[i].wrapping_add(1),
        1 => buf[i].wrapping_sub(1),
        2 => 0,
        _ => rng.below(256) as u8,
    };
    Op::arbitrary(&mut Unstructured::new(&buf)).unwrap_or(*op)
}

fn block(len: usize, rng: &mut Rng) -> (usize, usize) {
    let start = rng.index(len);
    let n = 1 + rng.below(MAX_BLOCK.min((len - start) as u64)) as usize;
    (start, n)
}

/// Applies one mutation to `input`.
fn mutate_once(input: &mut FuzzInput, rng: &mut Rng, vary_preset: bool) {
    let ops = &mut input.ops;
    let len = ops.len();
    // Weights: insert 4, steps 3, tweak 4, delete 3, swap 2, duplicate 2, move 1, retarget 2,
    // preset 1 (only when the preset is not fixed).
    let total = 21 + u64::from(vary_preset);
    let mut pick = rng.below(total);
    let mut take = |w: u64| {
        let hit = pick < w;
        pick = pick.wrapping_sub(w);
        hit
    };
    if len == 0 || take(4) {
        let at = rng.index(len + 1);
        let op = rng.op();
        ops.insert(at, op);
    } else if take(3) {
        let (actor, cpu) = some_actor(ops, rng);
        let at = rng.index(len + 1);
        let n = 1 + rng.below(MAX_STEP_RUN) as usize;
        ops.splice(at..at, std::iter::repeat_n(Op::Step { actor, cpu }, n));
    } else if take(4) {
        let i = rng.index(len);
        ops[i] = tweak(&ops[i], rng);
    } else if take(3) {
        let (start, n) = block(len, rng);
        ops.drain(start..start + n);
    } else if take(2) {
        let i = rng.index(len);
        let j = if rng.chance(2) && i + 1 < len {
            i + 1
        } else {
            rng.index(len)
        };
        ops.swap(i, j);
    } else if take(2) {
        let (start, n) = block(len, rng);
        let copy: Vec<Op> = ops[start..start + n].to_vec();
        let at = rng.index(len + 1);
        ops.splice(at..at, copy);
    } else if take(1) {
        let (start, n) = block(len, rng);
        let moved: Vec<Op> = ops.drain(start..start + n).collect();
        let at = rng.index(ops.len() + 1);
        ops.splice(at..at, moved);
    } else if take(2) {
        let i = rng.index(len);
        let (actor, cpu) = some_actor(ops, rng);
        match &mut ops[i] {
            Op::Step { actor: a, cpu: c }
            | Op::Start {
                actor: a, cpu: c, ..
            } => {
                if rng.chance(2) {
                    *a = actor;
                } else {
                    *c = cpu;
                }
            }
            Op::Speculate { cpu: c, .. } | Op::Evict { cpu: c, .. } => *c = cpu,
        }
    } else {
        input.preset = rng.below(256) as u8;
    }
}

/// Mutates the input `data` with `seed`: one to [`MAX_STACK`] op-level mutations, encoded back
/// within `max_size` bytes. The preset choice changes only with `vary_preset`.
pub fn mutate(data: &[u8], max_size: usize, seed: u32, vary_preset: bool) -> Vec<u8> {
    mutate_decoded(decode_input(data), max_size, seed, vary_preset).0
}

/// [`mutate`] on an input already decoded, returning the output bytes with the input they decode
/// to, so that a caller may run it without decoding it again.
pub fn mutate_decoded(
    mut input: FuzzInput,
    max_size: usize,
    seed: u32,
    vary_preset: bool,
) -> (Vec<u8>, FuzzInput) {
    let mut rng = Rng::new(seed, 0x6d75_7461_7465);
    let rounds = 1 + rng.below(MAX_STACK);
    for _ in 0..rounds {
        mutate_once(&mut input, &mut rng, vary_preset);
    }
    encode_kept(input, max_size)
}

/// Crosses two inputs with `seed`: a prefix of `a`'s ops followed by a suffix of `b`'s, or a
/// block of `b`'s ops inserted into `a`'s, on `a`'s preset, within `max_size` bytes.
pub fn crossover(a: &[u8], b: &[u8], max_size: usize, seed: u32) -> Vec<u8> {
    crossover_decoded(decode_input(a), &decode_input(b), max_size, seed).0
}

/// [`crossover`] on inputs already decoded, returning the output bytes with the input they
/// decode to.
pub fn crossover_decoded(
    mut x: FuzzInput,
    y: &FuzzInput,
    max_size: usize,
    seed: u32,
) -> (Vec<u8>, FuzzInput) {
    let mut rng = Rng::new(seed, 0x63_726f_7373);
    if y.ops.is_empty() {
        return encode_kept(x, max_size);
    }
    if rng.chance(2) {
        let cut_x = rng.index(x.ops.len() + 1);
        let cut_y = rng.index(y.ops.len() + 1);
        x.ops.truncate(cut_x);
        x.ops.extend_from_slice(&y.ops[cut_y..]);
    } else {
        let (start, n) = block(y.ops.len(), &mut rng);
        let n = (n * 4).min(y.ops.len() - start);
        let at = rng.index(x.ops.len() + 1);
        x.ops
            .splice(at..at, y.ops[start..start + n].iter().copied());
    }
    encode_kept(x, max_size)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(seed: u64, n: usize) -> Vec<u8> {
        let mut src = Random::new(seed, n);
        let ops: Vec<Op> = std::iter::from_fn(|| src.next_op()).collect();
        encode_input(seed as u8, &ops)
    }

    #[test]
    fn outputs_are_canonical_fit_and_deterministic() {
        for s in 0..400u32 {
            let data = sample(u64::from(s), (s % 30) as usize);
            let max = 40 + (s as usize * 7) % 400;
            let out = mutate(&data, max, s, s % 2 == 0);
            assert!(out.len() <= max);
            assert!(decode_input(&out).ops.len() <= MAX_OPS);
            assert_eq!(out, mutate(&data, max, s, s % 2 == 0));
            let back = decode_input(&out);
            assert_eq!(encode_input(back.preset, &back.ops), out, "canonical");
            if s % 2 == 1 {
                assert_eq!(back.preset, decode_input(&data).preset);
            }
            let other = sample(u64::from(s) + 1000, 20);
            let c = crossover(&data, &other, max, s);
            assert!(c.len() <= max);
            assert_eq!(c, crossover(&data, &other, max, s));
            let cb = decode_input(&c);
            assert_eq!(encode_input(cb.preset, &cb.ops), c, "canonical");
            // The decoded forms handed to the harness are what the bytes decode to.
            let (bytes, kept) = mutate_decoded(decode_input(&data), max, s, s % 2 == 0);
            assert_eq!((&bytes, decode_input(&bytes)), (&out, kept));
            let (bytes, kept) =
                crossover_decoded(decode_input(&data), &decode_input(&other), max, s);
            assert_eq!((&bytes, decode_input(&bytes)), (&c, kept));
            let tiny = s as usize % 12;
            let (bytes, kept) = mutate_decoded(decode_input(&data), tiny, s, true);
            assert!(bytes.len() <= tiny);
            assert_eq!(decode_input(&bytes), kept, "within {tiny} bytes");
        }
    }

    #[test]
    fn mutations_change_inputs_and_reach_every_length() {
        let data = sample(7, 12);
        let before = decode_input(&data).ops.len();
        let (mut changed, mut longer, mut shorter) = (0, 0, 0);
        for s in 0..500u32 {
            let out = mutate(&data, 4096, s, false);
            let n = decode_input(&out).ops.len();
            changed += usize::from(out != data);
            longer += usize::from(n > before);
            shorter += usize::from(n < before);
        }
        assert!(
            changed > 450,
            "{changed} of 500 mutations changed the input"
        );
        assert!(
            longer > 100 && shorter > 50,
            "{longer} longer, {shorter} shorter"
        );
        // Mutating garbage and empty inputs works too.
        assert!(!decode_input(&mutate(&[], 4096, 3, true)).ops.is_empty());
        let _ = mutate(&[0xff; 37], 64, 9, true);
    }
}
