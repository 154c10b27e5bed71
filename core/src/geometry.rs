//! Cache geometry: how an address picks a set and a tag, and what a colour is.
//!
//! A geometry is a line size, a number of sets and ways, an indexing scheme (VIVT, VIPT or
//! PIPT) and a write policy. Set and tag are computed as the hardware does: the set from the
//! virtual address (VIVT, VIPT) or the physical one (PIPT), the tag from the virtual address
//! (VIVT) or the physical one (VIPT, PIPT). Two accesses hit the same line exactly when set and
//! tag agree, which is what makes aliases appear or disappear. Nothing here depends on absolute
//! sizes: only the ratios of page, line and way sizes matter. This module knows nothing of
//! caches' contents, processes or kernels.

use crate::addr::{div_size, rem_size, Pa, Va};
use serde::{Deserialize, Serialize};

/// Where set and tag come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Indexing {
    /// Virtually indexed, virtually tagged (ARMv4/v5, XScale). Two virtual addresses of one
    /// physical byte always occupy different lines; equal user addresses of two processes
    /// collide unless `asid_tagged`.
    Vivt {
        /// Whether user lines carry the address-space identifier in their tag.
        asid_tagged: bool,
    },
    /// Virtually indexed, physically tagged. Aliasing when a way is larger than a page.
    Vipt,
    /// Physically indexed, physically tagged: no aliases.
    Pipt,
}

/// What a store does.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum WritePolicy {
    /// Stores stay in the line, which becomes dirty and is written back whole.
    WriteBack {
        /// Whether a store miss fills the line first (otherwise the store goes to memory).
        write_allocate: bool,
    },
    /// Stores update memory too; lines are never dirty.
    WriteThrough,
}

/// The shape of one cache.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheGeometry {
    /// Bytes per line; a power of two.
    pub line: u32,
    /// Number of sets; a power of two.
    pub sets: u32,
    /// Lines per set.
    pub ways: u32,
    /// Where set and tag come from.
    pub indexing: Indexing,
    /// What a store does.
    pub policy: WritePolicy,
}

/// The position of a line in a cache: which set, and which tag it must carry.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Key {
    /// The set the address indexes.
    pub set: u32,
    /// The tag a line must carry to hit.
    pub tag: u64,
}

impl CacheGeometry {
    /// Bytes covered by one way (line size times sets).
    pub fn way_size(&self) -> u64 {
        self.line as u64 * self.sets as u64
    }

    /// Total capacity in bytes.
    pub fn size(&self) -> u64 {
        self.way_size() * self.ways as u64
    }

    /// Number of page colours: how many distinct sets-groups one physical page can occupy.
    /// 1 means the cache cannot alias (PIPT, or VIPT with a way no larger than a page).
    /// VIVT caches alias whatever this says; use [`CacheGeometry::aliases`].
    pub fn colours(&self, page_size: u32) -> u64 {
        match self.indexing {
            Indexing::Pipt => 1,
            Indexing::Vipt | Indexing::Vivt { .. } => (self.way_size() / page_size as u64).max(1),
        }
    }

    /// The colour of a virtual address: its page number modulo the number of colours.
    pub fn colour(&self, va: Va, page_size: u32) -> u64 {
        (va / page_size as u64) % self.colours(page_size)
    }

    /// Whether two different virtual addresses of one physical byte may sit in different lines.
    pub fn aliases(&self, page_size: u32) -> bool {
        match self.indexing {
            Indexing::Vivt { .. } => true,
            Indexing::Vipt => self.colours(page_size) > 1,
            Indexing::Pipt => false,
        }
    }

    /// Whether the set comes from the virtual address.
    pub fn virtually_indexed(&self) -> bool {
        !matches!(self.indexing, Indexing::Pipt)
    }

    /// Whether the tag comes from the virtual address (so maintenance by VA needs no
    /// translation and lines of different address spaces may collide).
    pub fn virtually_tagged(&self) -> bool {
        matches!(self.indexing, Indexing::Vivt { .. })
    }

    /// The set and tag an access through `va` to `pa` uses. `asid` is the address space of a
    /// user access (None for kernel addresses); only ASID-tagged VIVT caches look at it.
    pub fn key(&self, va: Va, pa: Pa, asid: Option<u16>) -> Key {
        // Tags are kept as whole line addresses. Given the set, that is equivalent to the
        // hardware's truncated tag (VA[31:10] on XScale, the frame number on VIPT), and it keeps
        // the comparison exact whatever the ratio of way size to page size.
        let line_no = |a: u64| div_size(a, self.line);
        let set_of = |a: u64| rem_size(line_no(a), self.sets) as u32;
        match self.indexing {
            Indexing::Vivt { asid_tagged } => {
                let space = if asid_tagged {
                    asid.map_or(0, |a| a as u64 + 1)
                } else {
                    0
                };
                Key {
                    set: set_of(va),
                    tag: line_no(va) | (space << 48),
                }
            }
            Indexing::Vipt => Key {
                set: set_of(va),
                tag: line_no(pa),
            },
            Indexing::Pipt => Key {
                set: set_of(pa),
                tag: line_no(pa),
            },
        }
    }

    /// The address of the start of the line containing `a`.
    pub fn line_base(&self, a: u64) -> u64 {
        a & !(self.line as u64 - 1)
    }

    /// Checks the geometry is well formed: powers of two, at least one set and way.
    pub fn validate(&self) -> Result<(), String> {
        if !self.line.is_power_of_two() || !self.sets.is_power_of_two() || self.ways == 0 {
            return Err(format!(
                "cache geometry needs power-of-two line size and set count and at least one way, got line {} sets {} ways {}",
                self.line, self.sets, self.ways
            ));
        }
        Ok(())
    }
}

/// Real and scaled geometries. The real ones keep the published numbers; the scaled ones keep
/// the ratios that matter (colours, ways) with small pages for speed.
pub mod presets {
    use super::*;

    /// XScale D-cache: 32 KiB, 32 ways, 32-byte lines, VIVT; set = `VA[9:5]`, tag = `VA[31:10]`.
    pub const XSCALE: CacheGeometry = CacheGeometry {
        line: 32,
        sets: 32,
        ways: 32,
        indexing: Indexing::Vivt { asid_tagged: false },
        policy: WritePolicy::WriteBack {
            write_allocate: true,
        },
    };
    /// ARMv6 (ARM1136/1176) 32 KiB 4-way VIPT D-cache: 2 colours with 4 KiB pages.
    pub const ARMV6_2COLOUR: CacheGeometry = CacheGeometry {
        line: 32,
        sets: 256,
        ways: 4,
        indexing: Indexing::Vipt,
        policy: WritePolicy::WriteBack {
            write_allocate: true,
        },
    };
    /// ARMv6 64 KiB 4-way VIPT D-cache: 4 colours with 4 KiB pages (`VA[13:12]`).
    pub const ARMV6_4COLOUR: CacheGeometry = CacheGeometry {
        line: 32,
        sets: 512,
        ways: 4,
        indexing: Indexing::Vipt,
        policy: WritePolicy::WriteBack {
            write_allocate: true,
        },
    };
    /// MIPS R4K-style 16 KiB direct-mapped VIPT primary: 4 colours with 4 KiB pages.
    pub const R4K: CacheGeometry = CacheGeometry {
        line: 32,
        sets: 512,
        ways: 1,
        indexing: Indexing::Vipt,
        policy: WritePolicy::WriteBack {
            write_allocate: true,
        },
    };
    /// A 32 KiB 4-way PIPT cache: no aliases.
    pub const PIPT: CacheGeometry = CacheGeometry {
        line: 32,
        sets: 256,
        ways: 4,
        indexing: Indexing::Pipt,
        policy: WritePolicy::WriteBack {
            write_allocate: true,
        },
    };

    /// Page size of the real geometries.
    pub const REAL_PAGE: u32 = 4096;
    /// Page size of the scaled geometries.
    pub const SMALL_PAGE: u32 = 64;

    /// XScale-like VIVT with 64-byte pages: 8 ways of 4 sets, 8-byte lines.
    pub const SMALL_VIVT: CacheGeometry = CacheGeometry {
        line: 8,
        sets: 4,
        ways: 8,
        ..XSCALE
    };
    /// ARMv6-like 4-way VIPT with 2 colours of 64-byte pages.
    pub const SMALL_V6_2COLOUR: CacheGeometry = CacheGeometry {
        line: 8,
        sets: 16,
        ways: 4,
        ..ARMV6_2COLOUR
    };
    /// ARMv6-like 4-way VIPT with 4 colours of 64-byte pages.
    pub const SMALL_V6_4COLOUR: CacheGeometry = CacheGeometry {
        line: 8,
        sets: 32,
        ways: 4,
        ..ARMV6_4COLOUR
    };
    /// R4K-like direct-mapped VIPT with 4 colours of 64-byte pages.
    pub const SMALL_R4K: CacheGeometry = CacheGeometry {
        line: 16,
        sets: 16,
        ways: 1,
        ..R4K
    };
    /// A small 2-way PIPT cache.
    pub const SMALL_PIPT: CacheGeometry = CacheGeometry {
        line: 8,
        sets: 8,
        ways: 2,
        ..PIPT
    };
}

#[cfg(test)]
mod tests {
    use super::presets::*;
    use super::*;

    #[test]
    fn xscale_set_is_va_bits_9_to_5_and_tag_bits_31_to_10() {
        let g = XSCALE;
        let va = 0b1011_0110_1010_0000u64 | 0x1234_0000;
        let k = g.key(va, 0x9999_0000, None);
        assert_eq!(k.set as u64, (va >> 5) & 0x1f);
        // The tag identifies VA[31:10] together with the set bits VA[9:5].
        assert_eq!(k.tag >> 5, va >> 10);
        // Same physical address through another VA: another line.
        assert_ne!(g.key(va + 4096, 0x9999_0000, None), k);
        assert!(g.aliases(REAL_PAGE));
        assert_eq!(g.size(), 32 * 1024);
    }

    #[test]
    fn armv6_colours_are_2_and_4() {
        assert_eq!(ARMV6_2COLOUR.size(), 32 * 1024);
        assert_eq!(ARMV6_4COLOUR.size(), 64 * 1024);
        assert_eq!(ARMV6_2COLOUR.colours(REAL_PAGE), 2);
        assert_eq!(ARMV6_4COLOUR.colours(REAL_PAGE), 4);
        // Colour is VA[13:12] with 4 colours.
        assert_eq!(ARMV6_4COLOUR.colour(0x3000, REAL_PAGE), 3);
        assert_eq!(ARMV6_4COLOUR.colour(0x7000, REAL_PAGE), 3);
        assert_eq!(ARMV6_4COLOUR.colour(0x4000, REAL_PAGE), 0);
    }

    #[test]
    fn vipt_congruent_addresses_share_a_line_and_incongruent_do_not() {
        for g in [ARMV6_2COLOUR, ARMV6_4COLOUR, R4K] {
            let pa = 0x42_0000 + 0x40;
            let colours = g.colours(REAL_PAGE);
            let a = 0x1000_0000 + 0x40;
            let congruent = a + colours * REAL_PAGE as u64 * 3;
            let incongruent = a + REAL_PAGE as u64;
            assert_eq!(g.key(a, pa, None), g.key(congruent, pa, None));
            assert_ne!(g.key(a, pa, None).set, g.key(incongruent, pa, None).set);
            // Different physical pages at one VA: same set, different tag.
            assert_ne!(g.key(a, pa, None).tag, g.key(a, pa + 0x10_0000, None).tag);
        }
    }

    #[test]
    fn r4k_is_direct_mapped_with_4_colours() {
        assert_eq!(R4K.size(), 16 * 1024);
        assert_eq!(R4K.ways, 1);
        assert_eq!(R4K.colours(REAL_PAGE), 4);
    }

    #[test]
    fn pipt_ignores_the_virtual_address() {
        let pa = 0x8040;
        assert_eq!(PIPT.key(0x1000, pa, None), PIPT.key(0x7_7000, pa, Some(3)));
        assert!(!PIPT.aliases(REAL_PAGE));
        assert_eq!(PIPT.colours(REAL_PAGE), 1);
    }

    #[test]
    fn vivt_asid_tagging_separates_equal_user_addresses() {
        let tagged = CacheGeometry {
            indexing: Indexing::Vivt { asid_tagged: true },
            ..SMALL_VIVT
        };
        assert_ne!(tagged.key(0x40, 0, Some(1)), tagged.key(0x40, 0, Some(2)));
        assert_eq!(
            SMALL_VIVT.key(0x40, 0, Some(1)),
            SMALL_VIVT.key(0x40, 64, Some(2))
        );
    }

    #[test]
    fn scaled_geometries_keep_the_ratios() {
        assert_eq!(
            SMALL_V6_2COLOUR.colours(SMALL_PAGE),
            ARMV6_2COLOUR.colours(REAL_PAGE)
        );
        assert_eq!(
            SMALL_V6_4COLOUR.colours(SMALL_PAGE),
            ARMV6_4COLOUR.colours(REAL_PAGE)
        );
        assert_eq!(SMALL_R4K.colours(SMALL_PAGE), R4K.colours(REAL_PAGE));
        assert_eq!(SMALL_V6_4COLOUR.ways, ARMV6_4COLOUR.ways);
        assert_eq!(SMALL_R4K.ways, 1);
        for g in [
            SMALL_VIVT,
            SMALL_V6_2COLOUR,
            SMALL_V6_4COLOUR,
            SMALL_R4K,
            SMALL_PIPT,
            XSCALE,
        ] {
            g.validate().unwrap();
        }
    }
}
