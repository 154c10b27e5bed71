//! Encoding ops as the fuzzer bytes that `arbitrary` decodes back to them, for seeding corpora
//! with realistic sequences. It mirrors the byte layout of `arbitrary` 1.5 (pinned exactly in
//! Cargo.toml): enum variants from a little-endian `u32` scaled by the variant count, integers
//! little-endian, booleans from the low bit of a byte, and one "continue" byte before each element
//! of a trailing vector. A test checks the round trip.

use crate::op::{Action, Op};

fn tag(out: &mut Vec<u8>, i: u64, n: u64) {
    // The smallest x with (x * n) >> 32 == i.
    let x = (i << 32).div_ceil(n);
    out.extend_from_slice(&(x as u32).to_le_bytes());
}

fn b(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

fn action(out: &mut Vec<u8>, a: &Action) {
    out.push(a.path);
    out.extend_from_slice(&a.args);
}

/// Appends the encoding of one op.
pub fn encode_op(out: &mut Vec<u8>, op: &Op) {
    match *op {
        Op::Step { actor, cpu } => {
            tag(out, 0, 4);
            out.extend([actor, cpu]);
        }
        Op::Start {
            actor,
            cpu,
            action: a,
        } => {
            tag(out, 1, 4);
            out.extend([actor, cpu]);
            action(out, &a);
        }
        Op::Speculate { cpu, icache, pick } => {
            tag(out, 2, 4);
            out.push(cpu);
            b(out, icache);
            out.extend(pick.to_le_bytes());
        }
        Op::Evict { cpu, icache, pick } => {
            tag(out, 3, 4);
            out.push(cpu);
            b(out, icache);
            out.extend(pick.to_le_bytes());
        }
    }
}

/// The bytes of a [`crate::harness::FuzzInput`] with this preset choice and these ops.
pub fn encode_input(preset: u8, ops: &[Op]) -> Vec<u8> {
    // A continue byte and an op take a dozen bytes or so: reserve enough to never grow.
    let mut out = Vec::with_capacity(1 + ops.len() * 24);
    out.push(preset);
    for op in ops {
        out.push(1);
        encode_op(&mut out, op);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::harness::FuzzInput;
    use arbitrary::{Arbitrary, Unstructured};

    #[test]
    fn encoding_round_trips_through_arbitrary() {
        // Random inputs decoded by arbitrary, re-encoded, decoded again: same input.
        let mut seed = 0x1234_5678_9abc_def0u64;
        for _ in 0..300 {
            let bytes: Vec<u8> = (0..400)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let a = FuzzInput::arbitrary_take_rest(Unstructured::new(&bytes)).unwrap();
            let enc = encode_input(a.preset, &a.ops);
            let b = FuzzInput::arbitrary_take_rest(Unstructured::new(&enc)).unwrap();
            assert_eq!(a, b);
        }
    }
}
