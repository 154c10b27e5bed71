//! The input language: operations that drive a run.
//!
//! An input is a preset plus a list of [`Op`]s. Each op either starts an action on an actor (or
//! steps it, if it is already busy), steps an actor, or injects a hardware event (a speculative
//! fill through a valid translation, an eviction). Every decoded input is valid: identifiers wrap
//! modulo what exists and impossible actions become deterministic no-ops, so every byte string
//! is usable and shrinking never produces an invalid program. Variant 0 of every enum is cheap
//! and harmless, because an exhausted fuzzer input decodes as zeros.
//!
//! `Op` derives `arbitrary::Arbitrary` (cargo-fuzz) and `bolero_generator::TypeGenerator`
//! (bolero). Adding or reordering variants re-maps stored bytes; trace files, which name ops in
//! text, survive such changes.

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

/// What an actor does. Page arguments of user actions index the pages the actor's process has
/// mapped (modulo their number); `buf` indexes the kernel's driver buffers; `file` the files.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "action")]
pub enum Action {
    /// A user load.
    Load { page: u8, off: u8 },
    /// A user store of a fresh value.
    Store { page: u8, off: u8 },
    /// A user instruction fetch.
    Fetch { page: u8, off: u8 },
    /// `fork()`: `dup_mmap` into a new process with one thread.
    Fork,
    /// `exit()` of the whole process (only when its other threads are idle).
    Exit,
    /// `munmap()` of `pages` pages from a mapped page.
    Munmap { page: u8, pages: u8 },
    /// `mmap()` of a file at user page `at` (a hint, or exact with `fixed`).
    Mmap {
        file: u8,
        pgoff: u8,
        at: u8,
        shared: bool,
        exec: bool,
        fixed: bool,
    },
    /// `mprotect()` of one mapped page.
    Mprotect { page: u8, write: bool, exec: bool },
    /// `read()` of a file page into a user page.
    ReadFile {
        file: u8,
        index: u8,
        off: u8,
        page: u8,
    },
    /// `write()` of a user page into a file page.
    WriteFile {
        file: u8,
        index: u8,
        off: u8,
        page: u8,
    },
    /// A `get_user_pages` user (FUSE): pins a user page, reads or writes it through a kmap.
    Gup { page: u8, off: u8, write: bool },
    /// Direct I/O: pins a user page and DMAs to or from it.
    DirectIo { page: u8, to_device: bool },
    /// `ptrace(PTRACE_POKETEXT)` into another thread's address space.
    PtracePoke { target: u8, page: u8, off: u8 },
    /// The cacheflush system call over one user page (after writing code).
    Cacheflush { page: u8 },
    /// `kmap` a driver buffer, store to it, `kunmap`.
    KmapWrite { buf: u8, off: u8 },
    /// `kmap` a driver buffer, load from it, `kunmap`.
    KmapRead { buf: u8, off: u8 },
    /// `kmap_atomic` a driver buffer, store to it, `kunmap_atomic`.
    KmapAtomicWrite { buf: u8, off: u8 },
    /// An NFS-readdir-like path: map fresh pages with `vm_map_ram` at vmalloc page `at`, fill
    /// them through kmap as replies arrive, decode them.
    Readdir { at: u8, pages: u8 },
    /// A streaming DMA transfer of a driver buffer: map, device access, unmap, CPU access.
    Dma { buf: u8, dir: DmaDir },
    /// A DMA buffer handed back and forth with `dma_sync_single_for_cpu` and `_for_device`.
    DmaSync { buf: u8, dir: DmaDir },
}

/// One operation of an input.
#[derive(Arbitrary, TypeGenerator, Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case", tag = "op")]
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

impl Action {
    /// The action's name as written in trace files.
    pub fn name(&self) -> &'static str {
        match self {
            Action::Load { .. } => "load",
            Action::Store { .. } => "store",
            Action::Fetch { .. } => "fetch",
            Action::Fork => "fork",
            Action::Exit => "exit",
            Action::Munmap { .. } => "munmap",
            Action::Mmap { .. } => "mmap",
            Action::Mprotect { .. } => "mprotect",
            Action::ReadFile { .. } => "read",
            Action::WriteFile { .. } => "write",
            Action::Gup { .. } => "gup",
            Action::DirectIo { .. } => "direct-io",
            Action::PtracePoke { .. } => "ptrace-poke",
            Action::Cacheflush { .. } => "cacheflush",
            Action::KmapWrite { .. } => "kmap-write",
            Action::KmapRead { .. } => "kmap-read",
            Action::KmapAtomicWrite { .. } => "kmap-atomic-write",
            Action::Readdir { .. } => "readdir",
            Action::Dma { .. } => "dma",
            Action::DmaSync { .. } => "dma-sync",
        }
    }
}
