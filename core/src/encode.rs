//! Encoding ops as the fuzzer bytes that `arbitrary` decodes back to them, for seeding corpora
//! with realistic sequences. It mirrors the byte layout of `arbitrary` 1.5 (pinned exactly in
//! Cargo.toml): enum variants from a little-endian `u32` scaled by the variant count, integers
//! little-endian, booleans from the low bit of a byte, and one "continue" byte before each element
//! of a trailing vector. A test checks the round trip.

use crate::op::{Action, DmaDir, Op};

fn tag(out: &mut Vec<u8>, i: u64, n: u64) {
    // The smallest x with (x * n) >> 32 == i.
    let x = (i << 32).div_ceil(n);
    out.extend_from_slice(&(x as u32).to_le_bytes());
}

fn b(out: &mut Vec<u8>, v: bool) {
    out.push(v as u8);
}

fn dir(out: &mut Vec<u8>, d: DmaDir) {
    let i = match d {
        DmaDir::ToDevice => 0,
        DmaDir::FromDevice => 1,
        DmaDir::Bidirectional => 2,
    };
    tag(out, i, 3);
}

fn action(out: &mut Vec<u8>, a: &Action) {
    const N: u64 = 20;
    match *a {
        Action::Load { page, off } => {
            tag(out, 0, N);
            out.extend([page, off]);
        }
        Action::Store { page, off } => {
            tag(out, 1, N);
            out.extend([page, off]);
        }
        Action::Fetch { page, off } => {
            tag(out, 2, N);
            out.extend([page, off]);
        }
        Action::Fork => tag(out, 3, N),
        Action::Exit => tag(out, 4, N),
        Action::Munmap { page, pages } => {
            tag(out, 5, N);
            out.extend([page, pages]);
        }
        Action::Mmap {
            file,
            pgoff,
            at,
            shared,
            exec,
            fixed,
        } => {
            tag(out, 6, N);
            out.extend([file, pgoff, at]);
            b(out, shared);
            b(out, exec);
            b(out, fixed);
        }
        Action::Mprotect { page, write, exec } => {
            tag(out, 7, N);
            out.push(page);
            b(out, write);
            b(out, exec);
        }
        Action::ReadFile {
            file,
            index,
            off,
            page,
        } => {
            tag(out, 8, N);
            out.extend([file, index, off, page]);
        }
        Action::WriteFile {
            file,
            index,
            off,
            page,
        } => {
            tag(out, 9, N);
            out.extend([file, index, off, page]);
        }
        Action::Gup { page, off, write } => {
            tag(out, 10, N);
            out.extend([page, off]);
            b(out, write);
        }
        Action::DirectIo { page, to_device } => {
            tag(out, 11, N);
            out.push(page);
            b(out, to_device);
        }
        Action::PtracePoke { target, page, off } => {
            tag(out, 12, N);
            out.extend([target, page, off]);
        }
        Action::Cacheflush { page } => {
            tag(out, 13, N);
            out.push(page);
        }
        Action::KmapWrite { buf, off } => {
            tag(out, 14, N);
            out.extend([buf, off]);
        }
        Action::KmapRead { buf, off } => {
            tag(out, 15, N);
            out.extend([buf, off]);
        }
        Action::KmapAtomicWrite { buf, off } => {
            tag(out, 16, N);
            out.extend([buf, off]);
        }
        Action::Readdir { at, pages } => {
            tag(out, 17, N);
            out.extend([at, pages]);
        }
        Action::Dma { buf, dir: d } => {
            tag(out, 18, N);
            out.push(buf);
            dir(out, d);
        }
        Action::DmaSync { buf, dir: d } => {
            tag(out, 19, N);
            out.push(buf);
            dir(out, d);
        }
    }
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
