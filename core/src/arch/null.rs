//! The null implementation, for coherent hardware (PIPT D-cache, snooping I-cache, coherent
//! DMA): every flush API does nothing beyond the TLB maintenance the defaults do.

use super::Arch;

/// Flush APIs for fully coherent hardware.
#[derive(Clone, Copy, Debug, Default)]
pub struct Null;

impl Arch for Null {
    fn name(&self) -> &'static str {
        "null"
    }
}
