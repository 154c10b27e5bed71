//! The integration tests: one binary, one module per theme.

mod campaign;
mod crashes;
mod inputs;
mod properties;
mod raw;
mod triage;
