//! What a step stores beside its value in the entry's notes (pcache-core's
//! `EntryNotes`): the Cargo directives it printed, and its key's parts for
//! `cargo pcache why`.

use pcache_core::record::{EntryNotes, KeyParts};

use crate::directives::{self, Captured, Directive, Places};

/// The notes of a step that printed `captured` and whose key is `parts`.
pub(crate) fn encode(captured: Captured, parts: Option<KeyParts>) -> Vec<u8> {
    let directives = captured
        .directives
        .into_iter()
        .map(Directive::into_string)
        .collect();
    EntryNotes::new(directives, parts).encode()
}

/// The directives as this run prints them, or `None` if the notes do not
/// decode or name a place this run lacks: such an entry cannot be replayed
/// faithfully and must be a miss.
pub(crate) fn replay_lines(bytes: &[u8], places: &Places) -> Option<Vec<String>> {
    let directives: Vec<Directive> = EntryNotes::directives(bytes)?
        .into_iter()
        .map(Directive::from_string)
        .collect();
    directives::replay(places, &directives).ok()
}
