//! Per-process state, computed once: the environment, where caches live,
//! the package manifest and the build script's code identity. Whatever the
//! hit path reads, it reads once, however many steps a build script has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};
use std::time::Duration;

use pcache_core::CacheMeta;
use pcache_core::config::{self, Settings};
use pcache_core::record::CodeParts;

use crate::env::{BuildEnv, Mode};
use crate::identity;
use crate::locate;
use crate::manifest::{self, Manifest};
use crate::report::{self, Problem};

#[derive(Debug)]
pub(crate) struct Session {
    pub(crate) env: BuildEnv,
    pub(crate) mode: Mode,
    pub(crate) root: Result<PathBuf, String>,
    pub(crate) manifest: Manifest,
    /// Problems found while setting up, reported with the first step.
    setup_problems: Vec<Problem>,
    setup_reported: AtomicBool,
    identity: OnceLock<(CodeParts, Vec<Problem>)>,
    /// `[workspace.metadata.pcache]`, once asked for.
    workspace: OnceLock<Result<Settings, Problem>>,
    /// The size cap and the problems met reading it, once asked for.
    max_size: OnceLock<(Option<u64>, Vec<Problem>)>,
    /// Cache directories whose `cache.toml` this process has written or
    /// checked, with what it says.
    metas_written: Mutex<HashSet<(PathBuf, CacheMeta)>>,
    /// Whether steps record statistics (`PCACHE_STATS`).
    pub(crate) stats: bool,
    /// Whether steps print where their time went (`PCACHE_TRACE`).
    pub(crate) trace: bool,
}

impl Session {
    pub(crate) fn get() -> &'static Session {
        static SESSION: OnceLock<Session> = OnceLock::new();
        SESSION.get_or_init(|| Session::new(BuildEnv::from_process()))
    }

    pub(crate) fn new(env: BuildEnv) -> Session {
        let mut setup_problems = Vec::new();
        let mut problems = Vec::new();
        let mode = config::mode(&env.vars, &mut problems);
        setup_problems.extend(problems.into_iter().map(|p| Problem::new(p, None)));
        let root = locate::pcache_root(
            env.pcache_dir().as_deref(),
            env.out_dir.as_deref(),
            env.target.as_deref(),
        );
        let manifest = match &env.manifest_dir {
            Some(dir) if mode != Mode::Off => {
                let (manifest, problems) = Manifest::read(dir);
                let path = dir.join("Cargo.toml");
                setup_problems.extend(
                    problems
                        .into_iter()
                        .map(|p| Problem::new(p, Some(path.clone()))),
                );
                manifest
            }
            _ => Manifest::default(),
        };
        Session {
            mode,
            root,
            manifest,
            setup_problems,
            setup_reported: AtomicBool::new(false),
            identity: OnceLock::new(),
            workspace: OnceLock::new(),
            max_size: OnceLock::new(),
            metas_written: Mutex::new(HashSet::new()),
            stats: config::stats(&env.vars),
            trace: config::trace(&env.vars),
            env,
        }
    }

    /// Whether `cache.toml` in `dir` still needs writing as `meta` by this
    /// process (a build script calling one cache in a loop checks it once).
    pub(crate) fn meta_needs_write(&self, dir: &Path, meta: &CacheMeta) -> bool {
        let key = (dir.to_owned(), meta.clone());
        self.metas_written
            .lock()
            .map_or(true, |mut done| done.insert(key))
    }

    /// The setup problems, the first time they are asked for.
    pub(crate) fn take_setup_problems(&self) -> &[Problem] {
        if self.setup_reported.swap(true, Ordering::Relaxed) {
            &[]
        } else {
            &self.setup_problems
        }
    }

    /// The size cap of the pcache directory, by the register's precedence
    /// (`PCACHE_MAX_SIZE`, else the workspace's `max-size`). Read once, and
    /// only after a store (never on the hit path). A bad value is reported
    /// once, as a warning of its own.
    pub(crate) fn max_size(&self) -> Option<u64> {
        let (cap, problems) = self.max_size.get_or_init(|| {
            let mut problems = Vec::new();
            let workspace = match self.workspace_settings() {
                Ok(settings) => settings.clone(),
                Err(problem) => {
                    problems.push(problem.clone());
                    Settings::default()
                }
            };
            let mut texts = Vec::new();
            let cap = config::max_size(None, &self.env.vars, &workspace, &mut texts);
            problems.extend(texts.into_iter().map(|p| Problem::new(p, None)));
            (cap, problems)
        });
        if !problems.is_empty() {
            static REPORTED: AtomicBool = AtomicBool::new(false);
            if !REPORTED.swap(true, Ordering::Relaxed) {
                report::emit(&report::warning_line("size cap", problems));
            }
        }
        *cap
    }

    /// `[workspace.metadata.pcache]` of the package's workspace, read once
    /// when first asked for: from the package's own manifest when it is the
    /// workspace root, else from the nearest one above that is.
    fn workspace_settings(&self) -> &Result<Settings, Problem> {
        self.workspace
            .get_or_init(|| match &self.manifest.workspace {
                Some(Ok(settings)) => Ok(settings.clone()),
                Some(Err(e)) => Err(Problem::new(
                    e.clone(),
                    self.env.manifest_dir.as_ref().map(|d| d.join("Cargo.toml")),
                )),
                None => match self.env.manifest_dir.as_deref().and_then(Path::parent) {
                    Some(parent) => manifest::workspace_settings(parent)
                        .map_err(|(path, e)| Problem::new(e, Some(path))),
                    None => Ok(Settings::default()),
                },
            })
    }

    /// The expiry of caches that set none: the package's
    /// `[package.metadata.pcache] expiry`, else the workspace's.
    pub(crate) fn default_expiry(&self) -> Option<Duration> {
        if self.manifest.expiry.is_some() {
            return self.manifest.expiry;
        }
        // A bad workspace table is reported with the size cap.
        let workspace = self.workspace_settings().as_ref().ok();
        config::expiry(
            None,
            &Settings::default(),
            workspace.unwrap_or(&Settings::default()),
        )
    }

    /// The code identity and the problems met computing it (reported by the
    /// first step that asks).
    pub(crate) fn code_identity(&self) -> (&CodeParts, Vec<Problem>) {
        let mut first = false;
        let (digest, problems) = self.identity.get_or_init(|| {
            first = true;
            let exe = std::env::current_exe().ok();
            let (digest, problems) = identity::code_identity(
                exe.as_deref(),
                self.env.manifest_dir.as_deref(),
                &self.manifest,
            );
            (
                digest,
                problems
                    .into_iter()
                    .map(|p| Problem::new(p, None))
                    .collect(),
            )
        });
        (digest, if first { problems.clone() } else { Vec::new() })
    }
}
