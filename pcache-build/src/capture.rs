//! Capturing the Cargo directives a step prints, so that a hit can print
//! them again.
//!
//! # How
//!
//! While a step's closure runs, file descriptor 1 — the build script's
//! stdout, which Cargo reads — is a pipe pcache reads from a thread of its
//! own. Everything written there is seen: Rust's `print!`, C code called
//! through FFI, and child processes that inherit stdout (a compiler run by
//! `cc` or `cmake`, `pkg-config`). The thread forwards every line to the
//! real stdout as it arrives, so Cargo sees the same output in the same
//! order; the lines that are Cargo directives (`cargo:` and `cargo::`) are
//! also recorded, with every path under the scratch directory, the
//! destination, `OUT_DIR` or the package directory written relative to it.
//! Directives naming the scratch directory are forwarded already rewritten to
//! the destination, so that path never reaches Cargo — in every mode: a
//! `cached_files` step that is not stored (`PCACHE=off`, `PCACHE=verify`,
//! an unusable cache) is still captured for that rewriting alone.
//!
//! # Limits
//!
//! - Unix only. Where capture cannot be set up (another platform, no free
//!   file descriptors, stdout closed), the step computes without the cache,
//!   with a warning: a lost link line is worse than a recompute.
//! - Every thread's output is captured while a closure runs, including
//!   threads that have nothing to do with the step. Steps computed on
//!   several threads at once capture one at a time: a step waits up to a
//!   minute for another thread's capture to end, then computes without the
//!   cache (with a warning) rather than risk waiting for a thread that waits
//!   for it.
//! - A child process that outlives the closure and keeps stdout open (a
//!   daemon that does not close its inherited descriptors) makes the capture
//!   incomplete: the step's value is used but not stored, with a warning.
//! - Paths are recognised by their text: a directive naming one of the
//!   places through a symlink or a relative path is replayed as written.

use std::path::Path;

use serde::{Deserialize, Serialize};

use pcache_core::record::KeyParts;

use crate::notes;

/// A directory a directive's paths are relative to, so that a hit in
/// another profile, target directory or checkout names paths that exist
/// there.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) enum Place {
    /// `cached_files`' destination (and its scratch directory).
    Dest,
    /// The build script's `OUT_DIR`.
    OutDir,
    /// The package directory, `CARGO_MANIFEST_DIR`.
    ManifestDir,
}

/// A recorded directive: its text, with each place written as a NUL and a
/// letter (`D`, `O`, `M`) and a NUL in the text doubled. One string rather
/// than a list of parts, so that a hit decodes it with a bulk copy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(transparent)]
pub(crate) struct Directive(String);

impl Directive {
    /// The directive's stored form.
    pub(crate) fn into_template(self) -> String {
        self.0
    }

    /// A directive from its stored form (checked when rendered).
    pub(crate) fn from_template(template: String) -> Directive {
        Directive(template)
    }
}

impl Place {
    fn code(self) -> char {
        match self {
            Place::Dest => 'D',
            Place::OutDir => 'O',
            Place::ManifestDir => 'M',
        }
    }

    fn from_code(code: char) -> Option<Place> {
        match code {
            'D' => Some(Place::Dest),
            'O' => Some(Place::OutDir),
            'M' => Some(Place::ManifestDir),
            _ => None,
        }
    }
}

/// The places of this run.
#[derive(Debug, Clone, Default)]
pub(crate) struct Places {
    /// Paths recognised in directives, longest first so that the most
    /// specific wins (`OUT_DIR` usually lies inside the package directory).
    matches: Vec<(String, Place)>,
    /// Where each place is in this run.
    paths: Vec<(Place, String)>,
}

impl Places {
    pub(crate) fn new(out_dir: Option<&Path>, manifest_dir: Option<&Path>) -> Places {
        let mut places = Places::default();
        if let Some(dir) = out_dir {
            places.add(dir, Place::OutDir);
        }
        if let Some(dir) = manifest_dir {
            places.add(dir, Place::ManifestDir);
        }
        places
    }

    /// Sets where `place` is. Only UTF-8 paths can be recognised in text.
    pub(crate) fn add(&mut self, dir: &Path, place: Place) {
        if let Some(text) = self.add_alias(dir, place) {
            self.paths.retain(|(p, _)| *p != place);
            self.paths.push((place, text));
        }
    }

    /// Recognises `dir` as `place` without rendering `place` to it: a
    /// scratch directory whose files end up in the destination.
    pub(crate) fn add_alias(&mut self, dir: &Path, place: Place) -> Option<String> {
        let text = dir.to_str()?.trim_end_matches('/');
        if text.is_empty() {
            return None;
        }
        self.matches.push((text.to_owned(), place));
        self.matches
            .sort_by_key(|(path, _)| std::cmp::Reverse(path.len()));
        Some(text.to_owned())
    }

    fn path_of(&self, place: Place) -> Option<&str> {
        self.paths
            .iter()
            .find(|(p, _)| *p == place)
            .map(|(_, path)| path.as_str())
    }

    /// `line` with every path under one of the places made relative to it.
    pub(crate) fn template(&self, line: &str) -> Directive {
        let mut template = String::with_capacity(line.len());
        let mut rest = line;
        'scan: while let Some(c) = rest.chars().next() {
            for (path, place) in &self.matches {
                if let Some(after) = rest.strip_prefix(path.as_str()) {
                    if !continues_a_name(after) {
                        template.push('\0');
                        template.push(place.code());
                        rest = after;
                        continue 'scan;
                    }
                }
            }
            if c == '\0' {
                template.push('\0');
            }
            template.push(c);
            rest = &rest[c.len_utf8()..];
        }
        Directive(template)
    }

    /// The directive with this run's paths; `Err` names a place this run
    /// does not have (or is `None` for a template that does not parse).
    pub(crate) fn render(&self, directive: &Directive) -> Result<String, Option<Place>> {
        let mut line = String::with_capacity(directive.0.len() + 64);
        let mut parts = directive.0.split('\0');
        line.push_str(parts.next().unwrap_or(""));
        // After each NUL: a place code or, for a doubled NUL, an empty part.
        let mut escaped = false;
        for part in parts {
            if escaped {
                escaped = false;
                line.push_str(part);
                continue;
            }
            let mut chars = part.chars();
            match chars.next() {
                None => {
                    line.push('\0');
                    escaped = true;
                }
                Some(code) => {
                    let place = Place::from_code(code).ok_or(None)?;
                    line.push_str(self.path_of(place).ok_or(Some(place))?);
                    line.push_str(chars.as_str());
                }
            }
        }
        Ok(line)
    }
}

/// Whether the text right after a matched path continues a file name
/// (`/t/out` in `/t/output`), so the match is not a whole path.
fn continues_a_name(after: &str) -> bool {
    after
        .chars()
        .next()
        .is_some_and(|c| c.is_alphanumeric() || matches!(c, '-' | '_' | '.'))
}

/// Whether a stdout line is a Cargo directive.
pub(crate) fn is_directive(line: &str) -> bool {
    line.starts_with("cargo:")
}

/// Whether a directive is one pcache must not store: pcache's own warnings
/// (they describe this run's cache, not the step).
fn is_own_warning(line: &str) -> bool {
    line.starts_with("cargo:warning=pcache:") || line.starts_with("cargo::warning=pcache:")
}

/// Whether a directive fails the build (`cargo::error=`): such a step is
/// never stored.
fn is_error(line: &str) -> bool {
    line.starts_with("cargo::error=")
}

/// What a capture recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct Captured {
    pub(crate) directives: Vec<Directive>,
    /// A `cargo::error=` was printed: the step must not be stored.
    pub(crate) error: bool,
}

impl Captured {
    fn record(&mut self, places: &Places, line: &str) {
        if is_error(line) {
            self.error = true;
        }
        if !is_own_warning(line) {
            self.directives.push(places.template(line));
        }
    }
}

/// Why a capture could not be used.
#[derive(Debug)]
pub(crate) enum CaptureError {
    /// Capture could not be set up: the step must not be cached.
    Setup(std::io::Error),
    /// Output may have been missed (a child process kept stdout open).
    Incomplete,
}

impl std::fmt::Display for CaptureError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CaptureError::Setup(e) => write!(
                f,
                "cannot capture the step's Cargo directives ({e}); computed without the cache"
            ),
            CaptureError::Incomplete => f.write_str(
                "a process the step started kept stdout open, so its Cargo directives may be \
                 incomplete; computed, not stored",
            ),
        }
    }
}

pub(crate) use imp::Capture;

#[cfg(unix)]
mod imp {
    use std::fs::File;
    use std::io::{self, Read, Write};
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::path::Path;
    use std::sync::{Arc, Condvar, Mutex, PoisonError};
    use std::thread;
    use std::time::Duration;

    use super::{CaptureError, Captured, Place, Places, is_directive};

    /// Marks a point in the pipe: the reader reports when it gets there.
    const SYNC: &str = "\u{0}pcache-sync\u{0}";
    /// How long to wait for stdout to be closed by every process of a step
    /// once its closure has returned.
    const DRAIN: Duration = Duration::from_secs(2);
    /// How long a step waits for another thread's capture to end.
    const TAKE_TURN: Duration = Duration::from_secs(60);

    /// fd 1 belongs to the whole process: one thread captures at a time.
    /// Re-entrant, for a step computed inside another step's closure.
    #[derive(Debug, Default)]
    struct Turn {
        holder: Option<thread::ThreadId>,
        depth: usize,
    }

    static TURN: Mutex<Turn> = Mutex::new(Turn {
        holder: None,
        depth: 0,
    });
    static TURN_FREED: Condvar = Condvar::new();

    fn take_turn() -> io::Result<()> {
        let me = thread::current().id();
        let turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        let (mut turn, _) = TURN_FREED
            .wait_timeout_while(turn, TAKE_TURN, |t| t.holder.is_some_and(|h| h != me))
            .unwrap_or_else(PoisonError::into_inner);
        if turn.holder.is_some_and(|h| h != me) {
            return Err(io::Error::new(
                io::ErrorKind::WouldBlock,
                "another thread of this build script has been capturing stdout for a minute",
            ));
        }
        turn.holder = Some(me);
        turn.depth += 1;
        Ok(())
    }

    fn end_turn() {
        let mut turn = TURN.lock().unwrap_or_else(PoisonError::into_inner);
        turn.depth = turn.depth.saturating_sub(1);
        if turn.depth == 0 {
            turn.holder = None;
            TURN_FREED.notify_all();
        }
    }

    #[derive(Debug, Default)]
    struct Shared {
        places: Places,
        captured: Captured,
        /// The last sync mark the reader passed.
        synced: u64,
        /// The pipe was closed by every writer and everything forwarded.
        done: bool,
    }

    #[derive(Debug, Default)]
    struct State {
        shared: Mutex<Shared>,
        changed: Condvar,
    }

    impl State {
        fn lock(&self) -> std::sync::MutexGuard<'_, Shared> {
            self.shared.lock().unwrap_or_else(PoisonError::into_inner)
        }

        /// Waits until `until` holds, for at most `limit`.
        fn wait(&self, limit: Duration, until: impl Fn(&Shared) -> bool) -> bool {
            let guard = self.lock();
            let (guard, _) = self
                .changed
                .wait_timeout_while(guard, limit, |s| !until(s))
                .unwrap_or_else(PoisonError::into_inner);
            until(&guard)
        }
    }

    /// An active capture of fd 1. Dropping it restores stdout.
    #[derive(Debug)]
    pub(crate) struct Capture {
        /// The real stdout, where fd 1 is restored to.
        saved: OwnedFd,
        /// Our write end of the pipe, for sync marks (and resuming).
        pipe: Option<OwnedFd>,
        state: Arc<State>,
        /// Whether fd 1 is the pipe right now.
        active: bool,
        marks: u64,
    }

    impl Capture {
        /// Starts capturing fd 1, recording directives relative to `places`.
        pub(crate) fn start(places: Places) -> Result<Capture, CaptureError> {
            Capture::setup(places).map_err(CaptureError::Setup)
        }

        fn setup(places: Places) -> io::Result<Capture> {
            // What fd 1 is must be read during our turn: another thread's
            // capture may have it pointing at a pipe that is about to go.
            take_turn()?;
            let started = Capture::redirect(places);
            if started.is_err() {
                end_turn();
            }
            started
        }

        /// Sets up the pipe and its reader and makes fd 1 the pipe; called
        /// with the turn taken, which the returned capture then holds.
        fn redirect(places: Places) -> io::Result<Capture> {
            // What Rust code printed before belongs before the capture.
            io::stdout().flush()?;
            let saved = dup(1)?;
            let forward = File::from(dup(saved.as_raw_fd())?);
            let (read, write) = pipe()?;
            let state = Arc::new(State::default());
            state.lock().places = places;
            let reader_state = Arc::clone(&state);
            thread::Builder::new()
                .name("pcache-capture".into())
                .spawn(move || relay(File::from(read), forward, &reader_state))?;
            // Dropping `write` on an error ends the reader.
            dup2(write.as_raw_fd(), 1)?;
            Ok(Capture {
                saved,
                pipe: Some(write),
                state,
                active: true,
                marks: 0,
            })
        }

        /// Recognises a scratch directory created after the capture started
        /// as `place`.
        pub(crate) fn add_alias(&self, dir: &Path, place: Place) {
            self.state.lock().places.add_alias(dir, place);
        }

        /// Makes fd 1 the pipe again after [`pause`](Capture::pause).
        pub(crate) fn resume(&mut self) -> io::Result<()> {
            if let (false, Some(pipe)) = (self.active, &self.pipe) {
                take_turn()?;
                let redirected = io::stdout()
                    .flush()
                    .and_then(|()| dup2(pipe.as_raw_fd(), 1));
                if redirected.is_err() {
                    end_turn();
                }
                redirected?;
                self.active = true;
            }
            Ok(())
        }

        /// Gives fd 1 back to the real stdout, once everything written to the
        /// pipe so far has been forwarded (so lines stay in order). `false`
        /// if the reader did not get there in time.
        pub(crate) fn pause(&mut self) -> bool {
            if !self.active {
                return true;
            }
            // A failed flush loses nothing pcache needs: the bytes stay in
            // Rust's buffer and reach the real stdout later.
            let _ = io::stdout().flush();
            let restored = dup2(self.saved.as_raw_fd(), 1).is_ok();
            self.active = false;
            end_turn();
            let Some(pipe) = &self.pipe else { return false };
            self.marks += 1;
            let mark = self.marks;
            let line = format!("{SYNC}{mark}\n");
            if write_all(pipe, line.as_bytes()).is_err() {
                return false;
            }
            restored && self.state.wait(DRAIN, |s| s.synced >= mark || s.done)
        }

        /// Stops capturing and returns what was recorded.
        pub(crate) fn finish(mut self) -> Result<Captured, CaptureError> {
            let synced = self.pause();
            // Close our write end: the reader sees the end of the pipe once
            // every child process holding it has closed it too.
            self.pipe = None;
            let done = self.state.wait(DRAIN, |s| s.done);
            if !(synced && done) {
                return Err(CaptureError::Incomplete);
            }
            Ok(std::mem::take(&mut self.state.lock().captured))
        }
    }

    impl Drop for Capture {
        fn drop(&mut self) {
            // A panic in the closure unwinds through here: give Cargo its
            // stdout back.
            if self.active {
                let _ = io::stdout().flush();
                let _ = dup2(self.saved.as_raw_fd(), 1);
                end_turn();
            }
        }
    }

    /// The reader thread: forwards every line, records directives, notes
    /// sync marks.
    fn relay(mut read: File, mut forward: File, state: &State) {
        let mut pending = Vec::new();
        // The start of a line the writer has not finished when a sync mark
        // arrived (a `print!` without a newline): it continues after the mark.
        let mut carry = Vec::new();
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let n = match read.read(&mut buf) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => break,
            };
            pending.extend_from_slice(&buf[..n]);
            let mut start = 0;
            while let Some(end) = pending[start..].iter().position(|&b| b == b'\n') {
                let mut line = std::mem::take(&mut carry);
                line.extend_from_slice(&pending[start..start + end]);
                start += end + 1;
                match find(&line, SYNC.as_bytes()) {
                    Some(at) => {
                        synced(&line[at + SYNC.len()..], state);
                        line.truncate(at);
                        carry = line;
                    }
                    None => handle(&line, &mut forward, state),
                }
            }
            pending.drain(..start);
        }
        // A last line without a newline: Cargo ignores it as a directive,
        // so do we.
        carry.extend_from_slice(&pending);
        let _ = forward.write_all(&carry);
        let _ = forward.flush();
        state.lock().done = true;
        state.changed.notify_all();
    }

    fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
        haystack.windows(needle.len()).position(|w| w == needle)
    }

    fn synced(mark: &[u8], state: &State) {
        if let Some(mark) = std::str::from_utf8(mark).ok().and_then(|m| m.parse().ok()) {
            state.lock().synced = mark;
            state.changed.notify_all();
        }
    }

    fn handle(line: &[u8], forward: &mut File, state: &State) {
        let text = String::from_utf8_lossy(line);
        if is_directive(&text) {
            let mut shared = state.lock();
            let Shared {
                places, captured, ..
            } = &mut *shared;
            captured.record(places, &text);
            let template = places.template(&text);
            // Forward with this run's paths: a scratch path becomes the
            // destination it will be restored to.
            let rendered = places
                .render(&template)
                .unwrap_or_else(|_| text.into_owned());
            drop(shared);
            let _ = forward.write_all(rendered.as_bytes());
        } else {
            let _ = forward.write_all(line);
        }
        let _ = forward.write_all(b"\n");
    }

    fn dup(fd: i32) -> io::Result<OwnedFd> {
        // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor we own, or -1.
        let new = unsafe { libc::fcntl(fd, libc::F_DUPFD_CLOEXEC, 3) };
        if new < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `new` is a fresh descriptor owned by no one else.
        Ok(unsafe { OwnedFd::from_raw_fd(new) })
    }

    fn dup2(from: i32, to: i32) -> io::Result<()> {
        loop {
            // SAFETY: plain syscall on descriptors we hold; fd 1 is replaced
            // atomically and stays inheritable (dup2 clears CLOEXEC).
            if unsafe { libc::dup2(from, to) } >= 0 {
                return Ok(());
            }
            let e = io::Error::last_os_error();
            if e.kind() != io::ErrorKind::Interrupted {
                return Err(e);
            }
        }
    }

    fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
        let mut fds = [0; 2];
        // SAFETY: `fds` has room for the two descriptors pipe writes.
        if unsafe { libc::pipe(fds.as_mut_ptr()) } != 0 {
            return Err(io::Error::last_os_error());
        }
        for fd in fds {
            // SAFETY: both descriptors were just created by pipe(). The
            // write end becomes fd 1 through dup2, which is inheritable.
            unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) };
        }
        // SAFETY: fresh descriptors owned by no one else.
        Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
    }

    fn write_all(fd: &OwnedFd, mut bytes: &[u8]) -> io::Result<()> {
        while !bytes.is_empty() {
            // SAFETY: writing from a live slice to a descriptor we hold.
            let n = unsafe { libc::write(fd.as_raw_fd(), bytes.as_ptr().cast(), bytes.len()) };
            if n < 0 {
                let e = io::Error::last_os_error();
                if e.kind() == io::ErrorKind::Interrupted {
                    continue;
                }
                return Err(e);
            }
            bytes = &bytes[n as usize..];
        }
        Ok(())
    }
}

#[cfg(not(unix))]
mod imp {
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
}

/// A step's computation under capture, from before the user's closure runs
/// to after it returns.
#[derive(Debug)]
pub(crate) struct Recorder {
    /// `None` when not recording (the cache is off or unusable).
    capture: Option<Result<Capture, CaptureError>>,
}

/// How a recorded computation may be stored.
#[derive(Debug)]
pub(crate) enum Recorded {
    /// Store it with these notes.
    Store(Vec<u8>),
    /// The step printed `cargo::error=`: never store it.
    Failed,
    /// Capture failed: use the value, do not store it, warn.
    Unusable(CaptureError),
}

impl Recorder {
    pub(crate) fn start(places: Places) -> Recorder {
        Recorder {
            capture: Some(Capture::start(places)),
        }
    }

    /// A recorder that records nothing, for steps without a cache.
    pub(crate) fn idle() -> Recorder {
        Recorder { capture: None }
    }

    /// A recorder for a step that is computed but not stored: it only
    /// forwards the step's output with paths rewritten (a scratch directory
    /// to the destination). Where capture cannot be set up, the output goes
    /// to Cargo as it is.
    pub(crate) fn forwarding(places: Places) -> Recorder {
        Recorder {
            capture: Capture::start(places).ok().map(Ok),
        }
    }

    /// Runs `compute` under this recorder and ends the capture once its
    /// output has been forwarded; nothing is kept.
    pub(crate) fn run_unstored<T>(self, compute: impl FnOnce(&Recorder) -> T) -> T {
        let value = compute(&self);
        if let Some(Ok(capture)) = self.capture {
            // Nothing is stored: an incomplete capture only means a child
            // still holds stdout, which then writes to Cargo directly.
            let _ = capture.finish();
        }
        value
    }

    /// Recognises `dir` (a scratch directory) as the destination.
    pub(crate) fn alias(&self, dir: &Path) {
        if let Some(Ok(capture)) = &self.capture {
            capture.add_alias(dir, Place::Dest);
        }
    }

    /// Stops capturing for a while (the caller's own code runs).
    pub(crate) fn pause(&mut self) {
        if let Some(Ok(capture)) = &mut self.capture {
            if !capture.pause() {
                self.capture = Some(Err(CaptureError::Incomplete));
            }
        }
    }

    /// Captures again after [`pause`](Recorder::pause).
    pub(crate) fn resume(&mut self) {
        if let Some(Ok(capture)) = &mut self.capture {
            if let Err(e) = capture.resume() {
                self.capture = Some(Err(CaptureError::Setup(e)));
            }
        }
    }

    /// Stops recording; the notes to store say what was captured and what
    /// the key is made of (`parts`).
    pub(crate) fn finish(self, parts: Option<KeyParts>) -> Recorded {
        match self.capture.map(|c| c.and_then(Capture::finish)) {
            None => Recorded::Failed,
            Some(Ok(captured)) if captured.error => Recorded::Failed,
            Some(Ok(captured)) => Recorded::Store(notes::encode(captured, parts)),
            Some(Err(e)) => Recorded::Unusable(e),
        }
    }
}

/// This run's text of stored directives, in their order; `Err` names a
/// place this run lacks (or is `None` for a template that does not parse).
pub(crate) fn replay(
    places: &Places,
    directives: &[Directive],
) -> Result<Vec<String>, Option<Place>> {
    directives.iter().map(|d| places.render(d)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn places() -> Places {
        let mut places = Places::new(
            Some(Path::new("/w/target/debug/build/x-1/out")),
            Some(Path::new("/w/crate")),
        );
        places.add(Path::new("/w/target/debug/build/x-1/out/gen"), Place::Dest);
        places.add_alias(
            Path::new("/w/target/debug/build/x-1/out/.pcache-scratch-Ab12"),
            Place::Dest,
        );
        places
    }

    #[test]
    fn paths_under_places_become_relative_and_render_back() {
        let p = places();
        let line = "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/lib";
        let d = p.template(line);
        assert_eq!(d.0, "cargo:rustc-link-search=native=\0O/lib");
        assert_eq!(p.render(&d).unwrap(), line);
        // The scratch directory renders as the destination.
        let scratch = p.template(
            "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/.pcache-scratch-Ab12/lib",
        );
        assert_eq!(
            p.render(&scratch).unwrap(),
            "cargo:rustc-link-search=native=/w/target/debug/build/x-1/out/gen/lib"
        );

        let mut elsewhere = Places::new(
            Some(Path::new("/x/t/release/build/x-9/out")),
            Some(Path::new("/home/me/crate")),
        );
        elsewhere.add(Path::new("/x/t/release/build/x-9/out/gen"), Place::Dest);
        assert_eq!(
            elsewhere.render(&d).unwrap(),
            "cargo:rustc-link-search=native=/x/t/release/build/x-9/out/lib"
        );
        assert_eq!(
            elsewhere.render(&scratch).unwrap(),
            "cargo:rustc-link-search=native=/x/t/release/build/x-9/out/gen/lib"
        );
        let manifest = p.template("cargo:rerun-if-changed=/w/crate/csrc/a.c");
        assert_eq!(
            elsewhere.render(&manifest).unwrap(),
            "cargo:rerun-if-changed=/home/me/crate/csrc/a.c"
        );
    }

    #[test]
    fn a_longer_name_sharing_a_prefix_is_not_a_place() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        let d = p.template("cargo:rustc-env=X=/t/output/y:/t/out");
        assert_eq!(d.0, "cargo:rustc-env=X=/t/output/y:\0O");
    }

    #[test]
    fn a_place_missing_in_this_run_is_reported() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        let d = p.template("cargo:include=/t/out/include");
        assert_eq!(Places::default().render(&d), Err(Some(Place::OutDir)));
        assert_eq!(p.render(&Directive("x\0Z".into())), Err(None));
    }

    #[test]
    fn nuls_in_the_text_survive() {
        let p = Places::new(Some(Path::new("/t/out")), None);
        for line in ["a\0b", "\0", "x\0\0/t/out\0", "\0O literally"] {
            assert_eq!(p.render(&p.template(line)).unwrap(), line, "{line:?}");
        }
    }

    #[cfg(unix)]
    fn sh(script: &str) {
        let status = std::process::Command::new("sh")
            .args(["-c", script])
            .status()
            .unwrap();
        assert!(status.success());
    }

    #[cfg(unix)]
    #[test]
    fn directives_from_child_processes_are_captured_with_places() {
        // Rust's test harness captures `print!`, so only output written to
        // fd 1 by other means (here, child processes) reaches the pipe.
        let out = tempfile::tempdir().unwrap();
        let scratch = out.path().join(".pcache-scratch-x");
        let mut places = Places::new(Some(out.path()), None);
        places.add(&out.path().join("gen"), Place::Dest);
        let mut capture = Capture::start(places.clone()).unwrap();
        capture.add_alias(&scratch, Place::Dest);
        sh(&format!(
            "echo 'cargo:rustc-link-search=native={}/lib'; echo plain output; echo 'cargo::rustc-cfg=x'",
            scratch.display()
        ));
        // Paused: what runs now is not the step's.
        assert!(capture.pause());
        sh("echo 'cargo:rustc-cfg=not_the_step'");
        capture.resume().unwrap();
        sh("echo 'cargo:warning=pcache: nested: noise'; printf 'cargo:rustc-cfg=unterminated'");
        let captured = capture.finish().unwrap();
        let lines: Vec<String> = captured
            .directives
            .iter()
            .map(|d| places.render(d).unwrap())
            .collect();
        assert_eq!(
            lines,
            [
                format!(
                    "cargo:rustc-link-search=native={}/gen/lib",
                    out.path().display()
                ),
                "cargo::rustc-cfg=x".to_owned(),
            ]
        );
        assert!(!captured.error);
    }

    #[cfg(unix)]
    #[test]
    fn captures_on_several_threads_take_turns_and_keep_their_own_lines() {
        let threads: Vec<_> = (0..4)
            .map(|i| {
                std::thread::spawn(move || {
                    let capture = Capture::start(Places::default()).unwrap();
                    for _ in 0..3 {
                        sh(&format!("echo 'cargo:rustc-cfg=thread_{i}'"));
                    }
                    let places = Places::default();
                    let lines: Vec<String> = capture
                        .finish()
                        .unwrap()
                        .directives
                        .iter()
                        .map(|d| places.render(d).unwrap())
                        .collect();
                    (i, lines)
                })
            })
            .collect();
        for thread in threads {
            let (i, lines) = thread.join().unwrap();
            assert_eq!(lines, vec![format!("cargo:rustc-cfg=thread_{i}"); 3]);
        }
    }

    #[cfg(unix)]
    #[test]
    fn a_child_that_keeps_stdout_open_makes_the_capture_incomplete() {
        let capture = Capture::start(Places::default()).unwrap();
        sh("(sleep 4) &");
        let started = std::time::Instant::now();
        assert!(matches!(capture.finish(), Err(CaptureError::Incomplete)));
        assert!(started.elapsed() < std::time::Duration::from_secs(4));
    }

    #[test]
    fn pcache_warnings_are_not_recorded_and_errors_are_flagged() {
        let p = Places::default();
        let mut c = Captured::default();
        c.record(&p, "cargo:warning=pcache: inner: disk full");
        c.record(&p, "cargo::warning=from the step");
        c.record(&p, "cargo::error=no compiler");
        assert_eq!(c.directives.len(), 2);
        assert!(c.error);
    }
}
