//! The integration tests: one binary, one module per theme.

mod campaign;
mod crashes;
mod dropped;
mod inputs;
mod own_target;
mod paths;
mod properties;
mod raw;
mod triage;
mod verify;

use std::path::PathBuf;

/// A scratch folder, removed when dropped.
pub(crate) struct Scratch(pub(crate) PathBuf);

impl Scratch {
    pub(crate) fn new(name: &str) -> Scratch {
        let p = std::env::temp_dir().join(format!("flushfuzz-it-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&p);
        std::fs::create_dir_all(&p).unwrap();
        Scratch(p)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
