//! The fuzz target: `cargo fuzz run patched` (or `flushfuzz hunt --target DIR:patched`).
#![no_main]
flushfuzz::fuzz_target!(own_target::target);
