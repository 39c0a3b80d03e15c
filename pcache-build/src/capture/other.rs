//! Capture where it is not implemented: every step that would need it
//! computes without the cache.

use std::path::Path;

use super::{CaptureError, Captured, Place, Places};

/// Capture is not implemented here: every step that would need it
/// computes without the cache.
#[derive(Debug)]
pub(crate) struct Capture;

impl Capture {
    pub(crate) fn start(_places: Places) -> Result<Capture, CaptureError> {
        Err(CaptureError::Setup(std::io::Error::new(
            std::io::ErrorKind::Unsupported,
            "directive capture is implemented on Unix only",
        )))
    }
    pub(crate) fn add_alias(&self, _dir: &Path, _place: Place) {}
    pub(crate) fn resume(&mut self) -> std::io::Result<()> {
        Ok(())
    }
    pub(crate) fn pause(&mut self) -> bool {
        true
    }
    pub(crate) fn finish(self) -> Result<Captured, CaptureError> {
        Ok(Captured::default())
    }
}
