//! Per-process state, computed once: the environment, where caches live,
//! the package manifest and the build script's code identity. Whatever the
//! hit path reads, it reads once, however many steps a build script has.

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Mutex, OnceLock};

use pcache_core::record::CodeParts;
use pcache_core::{CacheMeta, conventions};

use crate::env::{BuildEnv, Mode};
use crate::identity;
use crate::locate;
use crate::manifest::{self, Manifest};
use crate::remote;
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
    /// The size cap and the problem met reading it, once asked for.
    max_size: OnceLock<(Option<u64>, Option<Problem>)>,
    /// Cache directories whose `cache.toml` this process has written or
    /// checked, with what it says.
    metas_written: Mutex<HashSet<(PathBuf, CacheMeta)>>,
    /// The remote tier's set-up, made on the first local miss.
    remote: OnceLock<remote::Setup>,
}

impl Session {
    pub(crate) fn get() -> &'static Session {
        static SESSION: OnceLock<Session> = OnceLock::new();
        SESSION.get_or_init(|| Session::new(BuildEnv::from_process()))
    }

    pub(crate) fn new(env: BuildEnv) -> Session {
        let mut setup_problems = Vec::new();
        let mode = Mode::parse(env.pcache.as_deref()).unwrap_or_else(|other| {
            setup_problems.push(Problem::new(
                format!("unknown PCACHE value `{other}` (expected off, 0, false or verify); caching as usual"),
                None,
            ));
            Mode::On
        });
        let root = locate::pcache_root(
            env.pcache_dir.as_deref(),
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
            env,
            mode,
            root,
            manifest,
            setup_problems,
            setup_reported: AtomicBool::new(false),
            identity: OnceLock::new(),
            max_size: OnceLock::new(),
            metas_written: Mutex::new(HashSet::new()),
            remote: OnceLock::new(),
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

    /// The remote tier's set-up; `None` without `PCACHE_REMOTE`.
    pub(crate) fn remote(&self) -> Option<&remote::Setup> {
        self.env.remote.as_ref()?;
        Some(
            self.remote
                .get_or_init(|| remote::Setup::from_env(&self.env)),
        )
    }

    /// The setup problems, the first time they are asked for.
    pub(crate) fn take_setup_problems(&self) -> &[Problem] {
        if self.setup_reported.swap(true, Ordering::Relaxed) {
            &[]
        } else {
            &self.setup_problems
        }
    }

    /// The size cap of the pcache directory: `PCACHE_MAX_SIZE`, else the
    /// workspace's `[workspace.metadata.pcache] max-size`. Read once, and
    /// only after a store (never on the hit path). A bad value is reported
    /// once, as a warning of its own.
    pub(crate) fn max_size(&self) -> Option<u64> {
        let (cap, problem) = self.max_size.get_or_init(|| match &self.env.max_size {
            Some(text) => match conventions::parse_size(text) {
                Ok(bytes) => (Some(bytes), None),
                Err(e) => (
                    None,
                    Some(Problem::new(format!("PCACHE_MAX_SIZE: {e}"), None)),
                ),
            },
            None => match self
                .env
                .manifest_dir
                .as_deref()
                .map(manifest::workspace_max_size)
            {
                Some(Ok(cap)) => (cap, None),
                Some(Err((path, e))) => (None, Some(Problem::new(e, Some(path)))),
                None => (None, None),
            },
        });
        if let Some(problem) = problem {
            static REPORTED: AtomicBool = AtomicBool::new(false);
            if !REPORTED.swap(true, Ordering::Relaxed) {
                report::emit(&report::warning_line(
                    "size cap",
                    std::slice::from_ref(problem),
                ));
            }
        }
        *cap
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
