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
pub mod choice;
pub mod corpus;
pub mod encode;
pub mod event;
pub mod explain;
pub mod geometry;
pub mod harness;
pub mod kernel;
pub mod machine;
pub mod minimize;
pub mod mutate;
pub mod op;
pub mod oracle;
pub mod preset;
pub mod raw;
mod reuse;
pub mod run;
pub mod sched;
pub mod trace;
pub mod triage;
pub mod world;
