//! Cloning that reuses the destination's allocations.
//!
//! A fuzz campaign runs one initial state over and over: each run starts from a copy of a
//! template. [`clone_reusing!`] implements `Clone` for a struct with a `clone_from` that clones
//! field by field into the existing value, so that resetting a used state to the template copies
//! bytes into buffers it already has instead of allocating new ones. Both methods destructure the
//! struct without `..`: a field added later is a compile error here until it is listed.

/// `clone_reusing!(Type { field, ... })`: `Clone` for `Type`, whose `clone_from` reuses every
/// field's allocations. Every field must be listed.
macro_rules! clone_reusing {
    ($t:ident { $($f:ident),* $(,)? }) => {
        impl Clone for $t {
            fn clone(&self) -> Self {
                let $t { $($f),* } = self;
                $t { $($f: $f.clone()),* }
            }

            fn clone_from(&mut self, source: &Self) {
                let $t { $($f),* } = self;
                $( $f.clone_from(&source.$f); )*
            }
        }
    };
}

pub(crate) use clone_reusing;

/// A new snapshot identity, never 0: a value made a snapshot of itself takes one, and copies
/// that share it with their source may be reset to it by copying back only what they changed.
fn snapshot_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}

/// The parts (frames, lines) of a value changed since it was a copy of a snapshot: one mark
/// per part, and the snapshot's identity ([`snapshot_id`]; 0 for none). A copy whose source is
/// its unchanged snapshot is reset by copying back only the marked parts.
#[derive(Clone, Debug)]
pub(crate) struct Changes {
    marks: Vec<u64>,
    origin: u64,
}

impl Changes {
    /// No marks over `parts` parts, and no snapshot.
    pub(crate) fn new(parts: usize) -> Changes {
        Changes {
            marks: vec![0; parts.div_ceil(64)],
            origin: 0,
        }
    }

    /// Makes the value a snapshot: a new identity, no marks.
    pub(crate) fn snapshot(&mut self) {
        self.origin = snapshot_id();
        self.marks.fill(0);
    }

    /// Marks part `p` changed.
    #[inline]
    pub(crate) fn mark(&mut self, p: usize) {
        self.marks[p / 64] |= 1 << (p % 64);
    }

    /// Marks parts `first..=last` changed.
    #[inline]
    pub(crate) fn mark_range(&mut self, first: usize, last: usize) {
        for p in first..last + 1 {
            self.mark(p);
        }
    }

    /// Whether part `p` may have changed since the value was a copy of its snapshot (an
    /// unmarked part is the snapshot's).
    #[inline]
    pub(crate) fn marked(&self, p: usize) -> bool {
        self.marks
            .get(p / 64)
            .is_none_or(|w| w & (1 << (p % 64)) != 0)
    }

    /// Whether a value with these changes is reset to `source` by copying back its marked
    /// parts: both are copies of one snapshot and `source` has not changed since.
    #[inline]
    pub(crate) fn resets_from(&self, source: &Changes) -> bool {
        self.origin != 0
            && self.origin == source.origin
            && self.marks.len() == source.marks.len()
            && source.marks.iter().all(|&m| m == 0)
    }

    /// Calls `copy` with each marked part, clearing the marks.
    #[inline]
    pub(crate) fn take(&mut self, mut copy: impl FnMut(usize)) {
        for (w, bits) in self.marks.iter_mut().enumerate() {
            while *bits != 0 {
                copy(w * 64 + bits.trailing_zeros() as usize);
                *bits &= *bits - 1;
            }
        }
    }
}
