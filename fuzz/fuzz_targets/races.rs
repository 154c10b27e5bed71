//! Runs one input (a preset choice and ops, decoded with `arbitrary`) and crashes on a
//! violation. `FLUSHFUZZ_PRESET=name` fixes the preset.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| flushfuzz::harness::fuzz_one(data));
