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
pub(crate) fn snapshot_id() -> u64 {
    static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1);
    NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
}
