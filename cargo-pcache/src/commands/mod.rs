//! One module per verb; flush, clear and delete share the plan-then-apply
//! flow in `remove`.

pub(crate) mod enable;
pub(crate) mod gc;
pub(crate) mod keygen;
pub(crate) mod ls;
pub(crate) mod remote;
pub(crate) mod remove;
pub(crate) mod stats;
pub(crate) mod transfer;
pub(crate) mod why;

use std::io::Write;
use std::time::Duration;

use pcache_core::config::Env;

use crate::caches::Cache;
use crate::output::{Paint, Style};
use crate::workspace::Workspace;

/// What every command gets.
pub(crate) struct Ctx<'a> {
    pub(crate) workspace: Workspace,
    /// The environment, with Cargo's `[env]`: where settings come from.
    pub(crate) env: Env,
    pub(crate) style: Style,
    pub(crate) out: &'a mut dyn Write,
    pub(crate) err: &'a mut dyn Write,
}

impl Ctx<'_> {
    pub(crate) fn warn(&mut self, message: &str) {
        if !self.style.quiet {
            let warning = self.style.paint_err(Paint::Yellow, "warning");
            let _ = writeln!(self.err, "{warning}: {message}");
        }
    }

    /// The expiry a cache's entries are judged by: the one it recorded,
    /// else its package's metadata (`[package.metadata.pcache] expiry`, else
    /// the workspace's).
    pub(crate) fn expiry_of(&self, cache: &Cache) -> Option<Duration> {
        cache
            .meta
            .as_ref()
            .and_then(|m| m.expiry_duration())
            .or_else(|| self.workspace.package_expiry(&cache.package))
    }
}
