//! Look up Unicode characters by name, through a perfect-hash table that
//! `build.rs` generates (once, thanks to pcache) from `data/UnicodeNames.txt`.
//!
//! ```
//! assert_eq!(pcache_example_tables::lookup("latin small letter sharp s"), Some('ß'));
//! assert_eq!(pcache_example_tables::lookup("CRAB"), Some('🦀'));
//! ```

include!(concat!(env!("OUT_DIR"), "/names.rs"));

/// The character with this name, ignoring ASCII case.
pub fn lookup(name: &str) -> Option<char> {
    BY_NAME.get(name.to_ascii_uppercase().as_str()).copied()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_characters_by_name() {
        assert_eq!(lookup("GREEK SMALL LETTER LAMDA"), Some('λ'));
        assert_eq!(lookup("snowman"), Some('☃'));
        assert_eq!(lookup("no such character"), None);
        assert!(BY_NAME.len() > 30_000, "{}", BY_NAME.len());
    }
}
