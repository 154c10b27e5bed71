//! One model per dropped flush; `FLUSHFUZZ_PRESET` picks one.
#![no_main]
flushfuzz::fuzz_target!(dropped::target);
