//! The input language: operations that drive a run.
//!
//! An input is a preset plus a list of [`Op`]s. Each op either starts an action on an actor (or
//! steps it, if it is already busy), steps an actor, or injects a hardware event (a speculative
//! fill through a valid translation, an eviction). An action is a kernel path of the model's
//! open registry ([`crate::paths`]) with byte-sized fields. Every decoded input is valid:
//! identifiers wrap modulo what exists and impossible actions become deterministic no-ops, so
//! every byte string is usable and shrinking never produces an invalid program. Variant 0 of
//! every enum and path 0 are cheap and harmless, because an exhausted fuzzer input decodes as
//! zeros.
//!
//! `Op` derives `arbitrary::Arbitrary` (cargo-fuzz) and `bolero_generator::TypeGenerator`
//! (bolero). Adding or reordering variants re-maps stored bytes; trace files, which name ops in
//! text, survive such changes, and so do the indices of paths a registry adds after the shipped
//! ones.

use arbitrary::Arbitrary;
use bolero_generator::TypeGenerator;
use serde::Serialize;

/// Direction of a streaming DMA transfer.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum DmaDir {
    /// The device reads the buffer.
    ToDevice,
    /// The device writes the buffer.
    FromDevice,
    /// Both.
    Bidirectional,
}

/// What an actor does: the kernel path it starts (an index into the model's
/// [`Paths`](crate::paths::Paths), modulo their number) and the path's fields, in the path's
/// order (bytes past its last field are ignored). What each field means, and its name in trace
/// files, is the path's [`Catalog`](crate::paths::Catalog) entry: user pages index the pages the
/// actor's process has mapped, `buf` the kernel's driver buffers, `file` the files, each modulo
/// what exists.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Action {
    /// The path's index.
    pub path: u8,
    /// The path's fields.
    pub args: [u8; crate::paths::MAX_ARGS],
}

/// One operation of an input.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Op {
    /// Step a busy actor, on `cpu` if it may move there; nothing if it is idle.
    Step { actor: u8, cpu: u8 },
    /// Start `action` on an idle actor (placing it on `cpu` if possible) and run its first
    /// step; a busy actor is stepped instead.
    Start { actor: u8, cpu: u8, action: Action },
    /// A speculative fill, on `cpu`, through the `pick`-th valid translation.
    Speculate { cpu: u8, icache: bool, pick: u16 },
    /// Eviction of the `pick`-th valid line of a cache of `cpu`.
    Evict { cpu: u8, icache: bool, pick: u16 },
}
