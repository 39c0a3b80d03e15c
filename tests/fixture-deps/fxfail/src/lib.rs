//! Reads what its build script wrote.

/// `ok` after a successful run.
pub const STATE: &str = include_str!(concat!(env!("OUT_DIR"), "/state.txt"));
