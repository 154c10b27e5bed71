//! What a stretch of a run read and wrote of the hardware: cache sets, memory, TLB entries,
//! page-table entries and the address-space register of each CPU.
//!
//! [`crate::verify`] decides that an injected hardware event commutes with a step, or with
//! another event, when neither wrote what the other touched. The machine records touches while
//! a watch is on (`Machine::watch`): each cache notes the sets it looked at
//! or changed, memory the units (the smaller line size) it read or wrote, the machine the
//! translations, page-table entries and address-space registers. A whole-cache walk reads every
//! set. Nothing here knows the kernel or the oracle: hardware events touch neither, so an
//! event's conflicts with a step are all in the hardware.
//!
//! Recording costs one branch per access when no watch is on (fuzzing runs).

use std::cell::RefCell;

/// A set of resource numbers.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Bits {
    words: Vec<u64>,
    /// Every number (a whole-cache walk, a scan of every translation).
    all: bool,
}

impl Bits {
    /// Adds `i`.
    pub fn insert(&mut self, i: usize) {
        let w = i / 64;
        if self.words.len() <= w {
            self.words.resize(w + 1, 0);
        }
        self.words[w] |= 1 << (i % 64);
    }

    /// Adds every number.
    pub fn insert_all(&mut self) {
        self.all = true;
    }

    /// Whether `i` is in.
    pub fn contains(&self, i: usize) -> bool {
        self.all
            || self
                .words
                .get(i / 64)
                .is_some_and(|w| w & (1 << (i % 64)) != 0)
    }

    /// Whether nothing is in.
    pub fn is_empty(&self) -> bool {
        !self.all && self.words.iter().all(|&w| w == 0)
    }

    /// Whether the two share a number.
    pub fn intersects(&self, other: &Bits) -> bool {
        if self.is_empty() || other.is_empty() {
            return false;
        }
        if self.all || other.all {
            return true;
        }
        self.words.iter().zip(&other.words).any(|(a, b)| a & b != 0)
    }
}

/// Touches recorded through shared references (most reads happen in `&self` methods).
#[derive(Clone, Debug, Default)]
pub(crate) struct Touches {
    read: RefCell<Bits>,
    write: RefCell<Bits>,
}

impl Touches {
    #[inline]
    pub(crate) fn read(&self, i: usize) {
        self.read.borrow_mut().insert(i);
    }

    #[inline]
    pub(crate) fn write(&self, i: usize) {
        self.write.borrow_mut().insert(i);
    }

    #[inline]
    pub(crate) fn read_all(&self) {
        self.read.borrow_mut().insert_all();
    }

    /// What was recorded, as (read, written).
    pub(crate) fn take(&self) -> (Bits, Bits) {
        (self.read.take(), self.write.take())
    }
}

/// The kinds of hardware resources, each numbered on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub enum Resource {
    /// Memory, in units of the smaller line size.
    Memory,
    /// Page-table entries: kernel pages first, then 64 per user address space.
    PageTable,
    /// The address space each CPU's MMU walks, a bit per CPU.
    CpuMm,
    /// The sets of a CPU's D-cache.
    DSets(u8),
    /// The sets of a CPU's I-cache.
    ISets(u8),
    /// A CPU's TLB entries, numbered as page-table entries are.
    Tlb(u8),
}

/// What a stretch of a run read and wrote, per kind of resource.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Footprint {
    touched: Vec<(Resource, Bits, Bits)>,
    /// A summary of everything read or written and of everything written: each resource's
    /// numbers folded into 64 bits and turned by the resource, so that two footprints whose
    /// summaries do not meet cannot conflict (most pairs, which `conflicts` then skips).
    any_sum: u64,
    written_sum: u64,
}

impl Footprint {
    /// Adds what was read and written of `r`.
    pub fn add(&mut self, r: Resource, read: Bits, write: Bits) {
        if read.is_empty() && write.is_empty() {
            return;
        }
        let (rs, ws) = (summary(r, &read), summary(r, &write));
        self.any_sum |= rs | ws;
        self.written_sum |= ws;
        match self.touched.iter_mut().find(|(k, _, _)| *k == r) {
            Some((_, rd, wr)) => {
                merge(rd, read);
                merge(wr, write);
            }
            None => self.touched.push((r, read, write)),
        }
    }

    /// What was read and written of `r`.
    pub fn of(&self, r: Resource) -> Option<(&Bits, &Bits)> {
        self.touched
            .iter()
            .find(|(k, _, _)| *k == r)
            .map(|(_, rd, wr)| (rd, wr))
    }

    /// Whether nothing was touched.
    pub fn is_empty(&self) -> bool {
        self.touched.is_empty()
    }

    /// Whether the two stretches may not commute: one wrote something the other read or wrote.
    pub fn conflicts(&self, other: &Footprint) -> bool {
        if self.written_sum & other.any_sum == 0 && self.any_sum & other.written_sum == 0 {
            return false;
        }
        self.touched.iter().any(|(r, rd, wr)| {
            other.of(*r).is_some_and(|(ord, owr)| {
                wr.intersects(ord) || wr.intersects(owr) || rd.intersects(owr)
            })
        })
    }
}

/// The numbers of `b` folded into 64 bits (all of them for every number), turned by the
/// resource so that the same number of two resources usually lands on different bits.
fn summary(r: Resource, b: &Bits) -> u64 {
    if b.all {
        return u64::MAX;
    }
    let folded = b.words.iter().fold(0, |a, w| a | w);
    let turn = match r {
        Resource::Memory => 0,
        Resource::PageTable => 1,
        Resource::CpuMm => 2,
        Resource::DSets(c) => 3 + 3 * c as u32,
        Resource::ISets(c) => 4 + 3 * c as u32,
        Resource::Tlb(c) => 5 + 3 * c as u32,
    };
    folded.rotate_left(turn.wrapping_mul(11) % 64)
}

fn merge(into: &mut Bits, from: Bits) {
    if from.all {
        into.all = true;
    }
    if into.words.len() < from.words.len() {
        into.words.resize(from.words.len(), 0);
    }
    for (a, b) in into.words.iter_mut().zip(from.words) {
        *a |= b;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn bits(v: &[usize]) -> Bits {
        let mut b = Bits::default();
        for &i in v {
            b.insert(i);
        }
        b
    }

    /// Reads commute with reads; a write conflicts with a read or a write of the same resource
    /// number, in either order, and with anything after a whole walk.
    #[test]
    fn only_writes_conflict() {
        let fp = |r: &[usize], w: &[usize]| {
            let mut f = Footprint::default();
            f.add(Resource::DSets(0), bits(r), bits(w));
            f
        };
        assert!(!fp(&[1, 2], &[]).conflicts(&fp(&[1, 2], &[])));
        assert!(fp(&[1], &[]).conflicts(&fp(&[], &[1])));
        assert!(fp(&[], &[1]).conflicts(&fp(&[1], &[])));
        assert!(fp(&[], &[70]).conflicts(&fp(&[], &[70])));
        assert!(!fp(&[], &[70]).conflicts(&fp(&[], &[71])));
        let mut walk = Bits::default();
        walk.insert_all();
        let mut all = Footprint::default();
        all.add(Resource::DSets(0), walk, Bits::default());
        assert!(all.conflicts(&fp(&[], &[9])));
        assert!(!all.conflicts(&fp(&[9], &[])));
        // Another CPU's cache is another resource.
        let mut other = Footprint::default();
        other.add(Resource::DSets(1), bits(&[1]), bits(&[1]));
        assert!(!other.conflicts(&fp(&[1], &[1])));
    }
}
