//! The shipped target: runs one input (a preset choice and ops, decoded with `arbitrary`) and
//! crashes on a violation. `FLUSHFUZZ_PRESET=name` (or `FLUSHFUZZ_MACHINE=file`) fixes the
//! preset; `FLUSHFUZZ_MUTATOR` chooses op-level (default), mixed or byte-level mutation.
#![no_main]
flushfuzz::fuzz_target!(flushfuzz::harness::Target::shipped);
