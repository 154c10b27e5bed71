//! The integration tests: one binary, one module per theme.

mod campaign;
mod crashes;
mod properties;
mod raw;
mod triage;
