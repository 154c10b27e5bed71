//! One cache: sets of ways of lines, each line holding its bytes, its tag, and whether it is dirty.
//!
//! The cache stores and finds lines; it decides nothing. Which way a fill replaces, whether a
//! store allocates, and which other caches must be snooped are the machine's decisions. A line
//! remembers the physical line it holds (so a write-back knows where to go, as the hardware's
//! physical tag RAM does) and the virtual line it was filled through (for reports). The cache
//! knows nothing of processes, page tables or the kernel.

use crate::addr::{Pa, Stamp, Va};
use crate::canon::Canon;
use crate::footprint::{Bits, Touches};
use crate::geometry::{CacheGeometry, Key};
use crate::reuse::Changes;

/// The bookkeeping of one line.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LineMeta {
    /// Whether the line holds data.
    pub valid: bool,
    /// Whether the line holds data newer than memory.
    pub dirty: bool,
    /// The tag the line carries.
    pub tag: u64,
    /// Physical address of the first byte of the line.
    pub pa: Pa,
    /// Virtual address of the first byte of the line, as it was filled.
    pub va: Va,
}

/// Where a line sits.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Slot {
    /// The set.
    pub set: u32,
    /// The way within the set.
    pub way: u32,
}

/// A line pushed out of the cache, with its data if it was dirty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Victim {
    /// Where it was.
    pub slot: Slot,
    /// Its bookkeeping before removal.
    pub meta: LineMeta,
}

/// One cache's state.
#[derive(Debug)]
pub struct Cache {
    geo: CacheGeometry,
    meta: Vec<LineMeta>,
    data: Vec<Stamp>,
    /// One bit per line, set when the line is valid: whole-cache walks skip empty lines 64
    /// at a time.
    valid: Vec<u64>,
    /// Next way to replace in each set when no way is free (round robin). Any other line can be
    /// evicted at any moment by an injected eviction, so this choice hides no behaviour.
    next: Vec<u32>,
    /// The lines whose metadata or data changed since this cache was a copy of a snapshot.
    changes: Changes,
    /// The sets read and written while a watch is on ([`crate::footprint`]).
    watch: Option<Box<Touches>>,
}

impl Clone for Cache {
    fn clone(&self) -> Self {
        Cache {
            geo: self.geo,
            meta: self.meta.clone(),
            data: self.data.clone(),
            valid: self.valid.clone(),
            next: self.next.clone(),
            changes: self.changes.clone(),
            watch: self.watch.clone(),
        }
    }

    /// Reuses the allocations. When `source` is this copy's unchanged snapshot, only the lines
    /// this one touched are copied back (a run fills a few lines of many).
    fn clone_from(&mut self, source: &Self) {
        let Cache {
            geo,
            meta,
            data,
            valid,
            next,
            changes,
            watch,
        } = self;
        if changes.resets_from(&source.changes) {
            let l = geo.line as usize;
            changes.take(|i| {
                meta[i] = source.meta[i];
                data[i * l..(i + 1) * l].copy_from_slice(&source.data[i * l..(i + 1) * l]);
            });
        } else {
            meta.clone_from(&source.meta);
            data.clone_from(&source.data);
            changes.clone_from(&source.changes);
        }
        *geo = source.geo;
        valid.clone_from(&source.valid);
        next.clone_from(&source.next);
        watch.clone_from(&source.watch);
    }
}

impl Cache {
    /// An empty cache of the given shape.
    pub fn new(geo: CacheGeometry) -> Cache {
        let lines = (geo.sets * geo.ways) as usize;
        Cache {
            geo,
            meta: vec![LineMeta::default(); lines],
            data: vec![0; lines * geo.line as usize],
            valid: vec![0; lines.div_ceil(64)],
            next: vec![0; geo.sets as usize],
            changes: Changes::new(lines),
            watch: None,
        }
    }

    /// Writes the canonical form of this cache (see [`crate::canon`]): each valid line with
    /// its place, bookkeeping and bytes, and each set's next way to replace.
    pub(crate) fn canon(&self, c: &mut Canon<'_>) {
        c.part(10);
        let l = self.geo.line as usize;
        let mut from = 0;
        while let Some((i, _)) = self.next_valid_unwatched(from) {
            from = i + 1;
            let m = &self.meta[i];
            c.word(i as u64 | (m.dirty as u64) << 32);
            c.word(m.tag);
            c.word(m.pa);
            c.word(m.va);
            c.stamps(&self.data[i * l..(i + 1) * l]);
        }
        c.part(11);
        for (set, &n) in self.next.iter().enumerate() {
            if n != 0 {
                c.word(set as u64 | (n as u64) << 32);
            }
        }
    }

    /// Starts recording the sets read and written, or stops (see [`crate::footprint`]).
    pub(crate) fn set_watch(&mut self, on: bool) {
        self.watch = on.then(Box::default);
    }

    /// The sets read and written since the watch began, as (read, written).
    pub(crate) fn watched(&self) -> (Bits, Bits) {
        self.watch.as_ref().map(|w| w.take()).unwrap_or_default()
    }

    #[inline]
    fn note_read(&self, set: u32) {
        if let Some(w) = &self.watch {
            w.read(set as usize);
        }
    }

    #[inline]
    fn note_write(&self, set: u32) {
        if let Some(w) = &self.watch {
            w.read(set as usize);
            w.write(set as usize);
        }
    }

    #[inline]
    fn note_walk(&self) {
        if let Some(w) = &self.watch {
            w.read_all();
        }
    }

    /// Makes this cache a snapshot that its copies can be reset to by copying back only the
    /// lines they touched (see `clone_from`).
    pub fn snapshot(&mut self) {
        self.changes.snapshot();
    }

    #[inline]
    fn touch(&mut self, i: usize) {
        self.changes.mark(i);
    }

    /// The shape of this cache.
    pub fn geometry(&self) -> &CacheGeometry {
        &self.geo
    }

    fn idx(&self, s: Slot) -> usize {
        (s.set * self.geo.ways + s.way) as usize
    }

    /// The way of `key`'s set holding `key`'s tag, if any.
    pub fn lookup(&self, key: Key) -> Option<Slot> {
        self.note_read(key.set);
        let base = (key.set * self.geo.ways) as usize;
        self.meta[base..base + self.geo.ways as usize]
            .iter()
            .position(|m| m.valid && m.tag == key.tag)
            .map(|w| Slot {
                set: key.set,
                way: w as u32,
            })
    }

    /// The bookkeeping of a slot.
    pub fn meta(&self, s: Slot) -> &LineMeta {
        self.note_read(s.set);
        &self.meta[self.idx(s)]
    }

    /// The bytes of a slot.
    pub fn data(&self, s: Slot) -> &[Stamp] {
        self.note_read(s.set);
        let l = self.geo.line as usize;
        let i = self.idx(s) * l;
        &self.data[i..i + l]
    }

    /// Reads one byte of a valid line.
    pub fn read(&self, s: Slot, offset: u32) -> Stamp {
        self.data(s)[offset as usize]
    }

    /// Writes one byte of a valid line, marking it dirty if `dirty`.
    pub fn write(&mut self, s: Slot, offset: u32, v: Stamp, dirty: bool) {
        self.note_write(s.set);
        let l = self.geo.line as usize;
        let i = self.idx(s);
        self.touch(i);
        self.data[i * l + offset as usize] = v;
        if dirty {
            self.meta[i].dirty = true;
        }
    }

    /// Writes `values` into line `s` from `offset` on, as [`Cache::write`] of each in turn.
    pub fn write_run(&mut self, s: Slot, offset: u32, values: &[Stamp], dirty: bool) {
        self.note_write(s.set);
        let l = self.geo.line as usize;
        let i = self.idx(s);
        self.touch(i);
        let at = i * l + offset as usize;
        self.data[at..at + values.len()].copy_from_slice(values);
        if dirty {
            self.meta[i].dirty = true;
        }
    }

    /// The slot a fill of `key` would use: a free way if there is one, else the round-robin way.
    pub fn victim_slot(&self, key: Key) -> Slot {
        self.note_read(key.set);
        let base = (key.set * self.geo.ways) as usize;
        let free = self.meta[base..base + self.geo.ways as usize]
            .iter()
            .position(|m| !m.valid);
        Slot {
            set: key.set,
            way: free.map_or(self.next[key.set as usize], |w| w as u32),
        }
    }

    /// Installs a line for `key` with `bytes`, replacing whatever `victim_slot` names. Returns
    /// the replaced line if it was valid; the caller writes it back if it was dirty.
    pub fn install(&mut self, key: Key, pa: Pa, va: Va, bytes: &[Stamp]) -> (Slot, Option<Victim>) {
        self.note_write(key.set);
        let slot = self.victim_slot(key);
        let old = self.take(slot);
        if old.is_some() {
            self.next[key.set as usize] = (slot.way + 1) % self.geo.ways;
        }
        let i = self.idx(slot);
        self.touch(i);
        self.valid[i / 64] |= 1 << (i % 64);
        self.meta[i] = LineMeta {
            valid: true,
            dirty: false,
            tag: key.tag,
            pa,
            va,
        };
        let l = self.geo.line as usize;
        self.data[i * l..(i + 1) * l].copy_from_slice(bytes);
        (slot, old)
    }

    /// Removes a line, returning it if it was valid.
    pub fn take(&mut self, s: Slot) -> Option<Victim> {
        self.note_write(s.set);
        let i = self.idx(s);
        let m = self.meta[i];
        if !m.valid {
            return None;
        }
        self.touch(i);
        self.meta[i] = LineMeta::default();
        self.valid[i / 64] &= !(1 << (i % 64));
        Some(Victim { slot: s, meta: m })
    }

    /// Marks a line clean (after its data was written back).
    pub fn mark_clean(&mut self, s: Slot) {
        self.note_write(s.set);
        let i = self.idx(s);
        self.touch(i);
        self.meta[i].dirty = false;
    }

    /// Every valid line, in set-then-way order.
    pub fn valid_slots(&self) -> impl Iterator<Item = Slot> + '_ {
        let mut from = 0;
        std::iter::from_fn(move || {
            let (i, s) = self.next_valid(from)?;
            from = i + 1;
            Some(s)
        })
    }

    /// The first valid line at index `from` or later (set-then-way order), with its index.
    /// Looping from one past the last index found visits what [`Cache::valid_slots`] does
    /// without borrowing the cache across the loop.
    pub fn next_valid(&self, from: usize) -> Option<(usize, Slot)> {
        self.note_walk();
        self.next_valid_unwatched(from)
    }

    fn next_valid_unwatched(&self, from: usize) -> Option<(usize, Slot)> {
        let mut w = from / 64;
        let mut bits = *self.valid.get(w)? & (!0u64 << (from % 64));
        loop {
            if bits != 0 {
                let i = w * 64 + bits.trailing_zeros() as usize;
                let ways = self.geo.ways;
                return Some((
                    i,
                    Slot {
                        set: i as u32 / ways,
                        way: i as u32 % ways,
                    },
                ));
            }
            w += 1;
            bits = *self.valid.get(w)?;
        }
    }

    /// The first valid line at index `from` or later holding physical line `pa_line`.
    pub fn next_holding(&self, mut from: usize, pa_line: Pa) -> Option<(usize, Slot)> {
        loop {
            let (i, s) = self.next_valid(from)?;
            if self.meta[i].pa == pa_line {
                return Some((i, s));
            }
            from = i + 1;
        }
    }

    /// Number of valid lines.
    pub fn valid_count(&self) -> usize {
        self.note_walk();
        self.valid.iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Every valid line holding physical line `pa_line`, whatever its set.
    pub fn slots_holding(&self, pa_line: Pa) -> impl Iterator<Item = Slot> + '_ {
        self.valid_slots()
            .filter(move |s| self.meta(*s).pa == pa_line)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::geometry::presets::SMALL_V6_2COLOUR;

    /// A copy of a snapshot that filled, wrote, cleaned and dropped lines is reset to the
    /// snapshot by copying back only those lines; a copy of another snapshot is copied whole.
    #[test]
    fn resetting_a_copy_of_a_snapshot_restores_every_line() {
        let g = SMALL_V6_2COLOUR;
        let mut template = Cache::new(g);
        let key = |va: u64, pa: u64| g.key(va, pa, None);
        template.install(key(0, 0), 0, 0, &vec![1; g.line as usize]);
        template.snapshot();
        let mut c = template.clone();
        let line = vec![7; g.line as usize];
        for (va, pa) in [(8, 64), (0, 1024), (0, 2048), (504, 4096)] {
            c.install(key(va, pa), pa, va, &line);
        }
        let s = c.lookup(key(0, 0)).expect("the template's line");
        c.write(s, 1, 5, true);
        c.write_run(s, 2, &[6, 6], true);
        c.mark_clean(s);
        let s = c.lookup(key(504, 4096)).expect("filled");
        c.take(s);
        assert_ne!(format!("{c:?}"), format!("{template:?}"));
        c.clone_from(&template);
        assert_eq!(format!("{c:?}"), format!("{template:?}"));

        let mut other = Cache::new(g);
        other.snapshot();
        c.clone_from(&other);
        assert_eq!(format!("{c:?}"), format!("{other:?}"));
    }

    #[test]
    fn install_lookup_and_replace_round_robin() {
        let g = SMALL_V6_2COLOUR;
        let mut c = Cache::new(g);
        let line = vec![7; g.line as usize];
        let key = |pa: u64| g.key(0, pa, None);
        for w in 0..g.ways as u64 {
            // Same set (VA 0), different physical lines.
            let (slot, old) = c.install(key(w * 1024), w * 1024, 0, &line);
            assert_eq!(slot.way as u64, w);
            assert!(old.is_none());
        }
        assert_eq!(c.lookup(key(1024)), Some(Slot { set: 0, way: 1 }));
        let (slot, old) = c.install(key(9 * 1024), 9 * 1024, 0, &line);
        assert_eq!(slot.way, 0);
        assert_eq!(old.unwrap().meta.pa, 0);
        assert_eq!(c.lookup(key(0)), None);
        c.write(slot, 3, 99, true);
        assert!(c.meta(slot).dirty);
        assert_eq!(c.read(slot, 3), 99);
        assert_eq!(c.slots_holding(9 * 1024).count(), 1);
    }

    /// The validity bitmap agrees with the lines' own flags across several 64-bit words, after
    /// fills, replacements and removals.
    #[test]
    fn valid_line_walks_match_the_lines() {
        let g = CacheGeometry {
            sets: 64,
            ways: 3,
            ..SMALL_V6_2COLOUR
        };
        let mut c = Cache::new(g);
        let line = vec![1; g.line as usize];
        let stride = g.line as u64;
        let by_flags = |c: &Cache| -> Vec<Slot> {
            (0..g.sets * g.ways)
                .map(|i| Slot {
                    set: i / g.ways,
                    way: i % g.ways,
                })
                .filter(|s| c.meta(*s).valid)
                .collect()
        };
        for k in 0..300u64 {
            // Scattered fills (some replace), and every fifth step a removal.
            let pa = (k * 37 % 500) * stride;
            c.install(g.key(pa, pa, None), pa, pa, &line);
            if k % 5 == 0 {
                let s = Slot {
                    set: (k * 13 % 64) as u32,
                    way: (k % 3) as u32,
                };
                c.take(s);
            }
            let expect = by_flags(&c);
            assert_eq!(c.valid_slots().collect::<Vec<_>>(), expect);
            assert_eq!(c.valid_count(), expect.len());
            let holding: Vec<Slot> = expect
                .iter()
                .copied()
                .filter(|s| c.meta(*s).pa == pa)
                .collect();
            let mut walked = Vec::new();
            let mut from = 0;
            while let Some((i, s)) = c.next_holding(from, pa) {
                walked.push(s);
                from = i + 1;
            }
            assert_eq!(walked, holding);
        }
    }
}
