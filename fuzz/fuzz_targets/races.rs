//! Runs one input (a preset choice and ops, decoded with `arbitrary`) and crashes on a
//! violation. `FLUSHFUZZ_PRESET=name` fixes the preset; `FLUSHFUZZ_MUTATOR` chooses op-level
//! (default), mixed or byte-level mutation.
#![no_main]
use libfuzzer_sys::{fuzz_crossover, fuzz_mutator, fuzz_target, fuzzer_mutate};

fuzz_target!(|data: &[u8]| flushfuzz::harness::fuzz_one(data));

fuzz_mutator!(|data: &mut [u8], size: usize, max_size: usize, seed: u32| {
    flushfuzz::harness::fuzz_mutate(data, size, max_size, seed)
        .unwrap_or_else(|| fuzzer_mutate(data, size, max_size))
});

fuzz_crossover!(|a: &[u8], b: &[u8], out: &mut [u8], seed: u32| {
    flushfuzz::harness::fuzz_crossover(a, b, out, seed)
});
