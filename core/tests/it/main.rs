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
