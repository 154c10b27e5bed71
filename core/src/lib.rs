#![doc = include_str!("doc.md")]
// `cargo bolero test` instruments every binary of the package for libFuzzer (the unit tests, the
// tool, the example, the integration tests). Under AddressSanitizer its runtime lends default
// coverage hooks; under `--sanitizer NONE` each binary must link libFuzzer itself: through this
// library, which then depends on bolero (core/Cargo.toml).
#[cfg(fuzzing_libfuzzer)]
extern crate bolero as _;

pub mod addr;
pub mod arch;
pub mod cache;
pub mod campaign;
mod canon;
pub mod choice;
pub mod corpus;
pub mod encode;
pub mod event;
pub mod explain;
pub mod footprint;
pub mod geometry;
pub mod harness;
pub mod kernel;
pub mod machine;
pub mod minimize;
pub mod model;
pub mod mutate;
pub mod op;
pub mod oracle;
pub mod paths;
pub mod preset;
pub mod raw;
mod reuse;
pub mod run;
pub mod sched;
pub mod tool;
pub mod trace;
pub mod triage;
pub mod verify;
pub mod world;

/// A libFuzzer fuzz target over a [`harness::Target`], in one line of a fuzz crate that depends
/// on `libfuzzer-sys` (`cargo fuzz run` works on it, stable or nightly):
///
/// ```text
/// #![no_main]
/// flushfuzz::fuzz_target!(|| flushfuzz::harness::Target::of(my_model()));
/// ```
///
/// The target runs each input on its models and crashes on a violation, mutates inputs op by
/// op, and answers `flushfuzz replay|minimize|triage|hunt --target` in tool mode
/// ([`tool::serve`]), so its finds are minimized, explained and triaged with its own arch,
/// paths and machine.
#[macro_export]
macro_rules! fuzz_target {
    ($make:expr) => {
        ::std::thread_local! {
            static FLUSHFUZZ_TARGET: $crate::harness::Target = ($make)();
        }
        ::libfuzzer_sys::fuzz_target!(
            init: FLUSHFUZZ_TARGET.with(|t| $crate::tool::serve(t)),
            |data: &[u8]| FLUSHFUZZ_TARGET.with(|t| t.fuzz_one(data))
        );
        ::libfuzzer_sys::fuzz_mutator!(
            |data: &mut [u8], size: usize, max_size: usize, seed: u32| {
                FLUSHFUZZ_TARGET
                    .with(|t| t.fuzz_mutate(data, size, max_size, seed))
                    .unwrap_or_else(|| ::libfuzzer_sys::fuzzer_mutate(data, size, max_size))
            }
        );
        ::libfuzzer_sys::fuzz_crossover!(
            |a: &[u8], b: &[u8], out: &mut [u8], seed: u32| {
                FLUSHFUZZ_TARGET.with(|t| t.fuzz_crossover(a, b, out, seed))
            }
        );
    };
}
