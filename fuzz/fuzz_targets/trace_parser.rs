//! The trace parser must never panic, and what it accepts must print and parse back the same.
#![no_main]
libfuzzer_sys::fuzz_target!(|data: &[u8]| flushfuzz::harness::fuzz_trace_parser(data));
