//! What a step stores beside its value in the entry's notes: the Cargo
//! directives it printed. Named MessagePack fields, so later versions can
//! add more and still read these.

use serde::{Deserialize, Serialize};

use crate::capture::{self, Captured, Directive, Places};

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct StepNotes {
    #[serde(default)]
    pub(crate) directives: Vec<Directive>,
}

impl StepNotes {
    pub(crate) fn from_captured(captured: Captured) -> StepNotes {
        StepNotes {
            directives: captured.directives,
        }
    }

    pub(crate) fn encode(&self) -> Vec<u8> {
        // Plain data (strings and enums) always serializes.
        rmp_serde::to_vec_named(self).expect("step notes serialize")
    }

    /// The notes in `bytes`; none at all is a step without directives.
    pub(crate) fn decode(bytes: &[u8]) -> Option<StepNotes> {
        if bytes.is_empty() {
            return Some(StepNotes::default());
        }
        rmp_serde::from_slice(bytes).ok()
    }

    /// The directives as this run prints them, or `None` if the notes do
    /// not decode or name a place this run lacks: such an entry cannot be
    /// replayed faithfully and must be a miss.
    pub(crate) fn replay_lines(bytes: &[u8], places: &Places) -> Option<Vec<String>> {
        capture::replay(places, &StepNotes::decode(bytes)?.directives).ok()
    }
}
