//! Addresses, identifiers and the virtual address layout shared by every part of the model.
//!
//! Addresses are byte addresses in model units: a "byte" holds a [`Stamp`] rather than eight bits,
//! so that every logical write can carry a value nobody else ever wrote. The layout places the
//! user region, the kernel linear map, the pkmap area, the per-CPU fixmap, the vmalloc area and
//! the colour windows at page numbers that are multiples of 64, so the colour of any kernel
//! address is a pure function of its page number within its region, whatever the geometry.
//! This module knows nothing of caches, processes or the kernel's policies.

use serde::Serialize;

/// The value of one modelled byte. Every logical write uses a fresh stamp, so a stale value can
/// never equal the newer one by chance.
pub type Stamp = u32;

/// A virtual address, in bytes.
pub type Va = u64;
/// A physical address, in bytes.
pub type Pa = u64;
/// A physical frame number.
pub type Pfn = u32;
/// A virtual page number.
pub type Vpn = u64;
/// A CPU number, `0..MAX_CPUS`.
pub type CpuId = u8;
/// An address-space (mm) identifier; it doubles as the ASID where the hardware has one.
pub type MmId = u16;
/// An actor (thread, kernel thread or interrupt context) of a run.
pub type ActorId = u8;

/// The most CPUs a machine may have.
pub const MAX_CPUS: usize = 4;

/// The most actors a world has (threads, kernel threads and the interrupt context).
pub const MAX_ACTORS: usize = 16;

/// First virtual page of each region. Each region is 64 pages long and starts on a multiple of
/// 64 pages, so colours computed from a page number inside a region match the hardware's.
pub mod layout {
    use super::Vpn;
    /// User addresses: pages `0..USER_PAGES`.
    pub const USER_PAGES: Vpn = 64;
    /// The kernel linear map of lowmem: frame `n` is at page `LINEAR + n`.
    pub const LINEAR: Vpn = 64;
    /// The pkmap area: slot `n` is at page `PKMAP + n`.
    pub const PKMAP: Vpn = 128;
    /// Per-CPU fixmap slots: CPU `c`, slot `s` at page `FIXMAP + c * FIXMAP_PER_CPU + s`.
    pub const FIXMAP: Vpn = 192;
    /// Fixmap slots per CPU.
    pub const FIXMAP_PER_CPU: Vpn = 16;
    /// The vmalloc area used by `vm_map_ram` and `vmap`.
    pub const VMALLOC: Vpn = 256;
    /// Pages in the vmalloc area.
    pub const VMALLOC_PAGES: Vpn = 64;
    /// Colour windows: CPU `c`, window `w` (0 = from, 1 = to), colour `k` at page
    /// `COLOUR_WIN + (c * 2 + w) * COLOUR_WIN_STRIDE + k`.
    pub const COLOUR_WIN: Vpn = 320;
    /// Pages reserved per colour window (the largest colour count supported).
    pub const COLOUR_WIN_STRIDE: Vpn = 8;
    /// One past the last kernel page.
    pub const KERNEL_END: Vpn = 384;
    /// The most pkmap slots a machine may have.
    pub const MAX_PKMAP: usize = 64;
}

/// `a / d`, by a shift when `d` is a power of two (as every validated size is).
#[inline]
pub fn div_size(a: u64, d: u32) -> u64 {
    if d.is_power_of_two() {
        a >> d.trailing_zeros()
    } else {
        a / d as u64
    }
}

/// `a % d`, by a mask when `d` is a power of two (as every validated size is).
#[inline]
pub fn rem_size(a: u64, d: u32) -> u64 {
    if d.is_power_of_two() {
        a & (d as u64 - 1)
    } else {
        a % d as u64
    }
}

/// Which kind of mapping an address belongs to. Reports name aliases by kind so that a reader
/// sees at once which two views of a page disagreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum AliasKind {
    /// A user virtual address of some process.
    User,
    /// The kernel linear map of lowmem.
    Linear,
    /// A pkmap slot (`kmap` of a highmem page).
    Pkmap,
    /// A per-CPU fixmap slot (`kmap_atomic`, `kmap_local_page`).
    Fixmap,
    /// The vmalloc area (`vm_map_ram`, `vmap`).
    Vmap,
    /// A colour window (`kmap_coherent` and the arch copy/flush windows).
    ColourWindow,
    /// Outside every region.
    Unmapped,
}

impl AliasKind {
    /// The kind of mapping `va` belongs to, for a machine with pages of `page_size` bytes.
    pub fn of(va: Va, page_size: u32) -> AliasKind {
        let vpn = div_size(va, page_size);
        use layout::*;
        match vpn {
            v if v < USER_PAGES => AliasKind::User,
            v if v < PKMAP => AliasKind::Linear,
            v if v < FIXMAP => AliasKind::Pkmap,
            v if v < VMALLOC => AliasKind::Fixmap,
            v if v < COLOUR_WIN => AliasKind::Vmap,
            v if v < KERNEL_END => AliasKind::ColourWindow,
            _ => AliasKind::Unmapped,
        }
    }

    /// The short name used in timelines and trace files.
    pub fn name(self) -> &'static str {
        match self {
            AliasKind::User => "user",
            AliasKind::Linear => "linear",
            AliasKind::Pkmap => "pkmap",
            AliasKind::Fixmap => "fixmap",
            AliasKind::Vmap => "vmap",
            AliasKind::ColourWindow => "colour-window",
            AliasKind::Unmapped => "unmapped",
        }
    }
}

/// True if `vpn` is a user page.
pub fn is_user_vpn(vpn: Vpn) -> bool {
    vpn < layout::USER_PAGES
}
