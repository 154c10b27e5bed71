//! flushfuzz
pub mod addr;
pub mod arch;
pub mod cache;
pub mod event;
pub mod geometry;
pub mod kernel;
pub mod machine;
pub mod op;
pub mod oracle;
pub mod preset;
pub mod run;
pub mod sched;
pub mod world;
