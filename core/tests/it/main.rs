//! The integration tests: one binary, one module per theme.

mod crashes;
mod properties;
mod raw;
