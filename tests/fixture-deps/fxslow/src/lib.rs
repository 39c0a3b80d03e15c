//! Reads what its build script wrote.

/// `slow`.
pub const SLOW: &str = include_str!(concat!(env!("OUT_DIR"), "/slow.txt"));
