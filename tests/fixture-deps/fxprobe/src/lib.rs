//! Reads what pkg-config found.

/// The link paths pkg-config reported.
pub const FOUND: &str = include_str!(concat!(env!("OUT_DIR"), "/found.txt"));
