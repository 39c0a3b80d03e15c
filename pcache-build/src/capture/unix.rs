//! Capture on Unix: fd 1 becomes a pipe that a thread of pcache's reads,
//! forwards and records from.

use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::sync::{Arc, Condvar, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use super::{CaptureError, Captured, Place, Places};
use crate::directives::is_directive;

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
