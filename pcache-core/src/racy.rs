//! When a file's identity can stand for its contents: the racy window.
//!
//! pcache trusts a large entry it verified once (`seen`) and a file digest it
//! took once (`digests`) for as long as the file keeps its identity —
//! device, inode, size and *ctime*, the change time no user code can set.
//! Any write, truncation or rename over the path moves ctime to the
//! kernel's current time. The catch, as for git's index: the kernel stamps
//! files with a *coarse* clock that ticks every few milliseconds
//! (`CLOCK_REALTIME_COARSE`), so a second change within the same tick as the
//! first leaves ctime unchanged. A file's identity is therefore only trusted
//! once its ctime is older than one tick at the moment the contents were
//! seen: any later change then gets a later ctime.
//!
//! The window is that tick, measured (`clock_getres`, 4 ms on a kernel built
//! with 250 Hz), plus a millisecond of margin — on local file systems that
//! keep sub-second timestamps. Elsewhere pcache falls back:
//!
//! - timestamps in whole seconds (FAT, ext3 with small inodes, some
//!   archives' file systems): a two-second window, as before;
//! - network and user-space file systems (NFS, SMB/CIFS, FUSE, 9p, Ceph,
//!   AFS…), whose timestamps come from another machine's clock: never
//!   trusted; every read is checked in full, every input hashed.

use std::path::Path;
use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

/// The window when timestamps are whole seconds.
const COARSE: Duration = Duration::from_secs(2);
/// Added to the clock's tick.
const MARGIN: Duration = Duration::from_millis(1);

/// How much older than the moment its contents were seen a file's last
/// change must be for its identity to stand for them, on the file system
/// holding `dir`, for a file whose ctime has `ctime_nanos` nanoseconds;
/// `None` where identities are never trusted.
pub(crate) fn window(dir: &Path, ctime_nanos: u32) -> Option<Duration> {
    // `Path::new("a.h").parent()` is the empty path: the current directory.
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    if is_remote(dir) {
        return None;
    }
    if ctime_nanos == 0 {
        // Most likely a file system that keeps whole seconds.
        return Some(COARSE);
    }
    Some(tick() + MARGIN)
}

/// Whether contents seen at `now` may be remembered for a file last changed
/// at `changed`, given the `window`.
///
/// Files are stamped from the kernel's coarse clock, which can lag the
/// fine one by more than a tick (a CPU waking from idle): while the change
/// is recent, the coarse clock itself must have moved past it, so that any
/// later change gets a later ctime.
pub(crate) fn settled(changed: Duration, now: SystemTime, window: Option<Duration>) -> bool {
    let Some(window) = window else {
        return false;
    };
    let Some(age) = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .ok()
        .and_then(|now| now.checked_sub(changed))
    else {
        return false;
    };
    age >= window && (age >= LONG_SETTLED || coarse_now().is_none_or(|coarse| coarse > changed))
}

/// A change this old is behind every clock.
const LONG_SETTLED: Duration = Duration::from_secs(1);

/// The clock files are stamped from, since the epoch (`None` where it is
/// not known).
#[cfg(target_os = "linux")]
fn coarse_now() -> Option<Duration> {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write into.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_REALTIME_COARSE, &mut ts) } == 0;
    ok.then(|| {
        Duration::new(
            u64::try_from(ts.tv_sec).unwrap_or(0),
            u32::try_from(ts.tv_nsec).unwrap_or(0),
        )
    })
}

#[cfg(not(target_os = "linux"))]
fn coarse_now() -> Option<Duration> {
    None
}

/// The coarse clock's tick: how far apart two changes may be and still get
/// the same ctime. Measured once per process.
pub(crate) fn tick() -> Duration {
    static TICK: OnceLock<Duration> = OnceLock::new();
    *TICK.get_or_init(measure_tick)
}

#[cfg(target_os = "linux")]
fn measure_tick() -> Duration {
    let mut res = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: a valid clock id and a timespec to write into.
    let ok = unsafe { libc::clock_getres(libc::CLOCK_REALTIME_COARSE, &mut res) } == 0;
    let tick = Duration::new(
        u64::try_from(res.tv_sec).unwrap_or(0),
        u32::try_from(res.tv_nsec).unwrap_or(0),
    );
    if ok && !tick.is_zero() && tick <= Duration::from_millis(100) {
        tick
    } else {
        // An answer not to rely on: the slowest tick Linux is built with.
        Duration::from_millis(10)
    }
}

#[cfg(not(target_os = "linux"))]
fn measure_tick() -> Duration {
    // Other kernels stamp files from clocks whose tick is not queried here:
    // a conservative 10 ms (Windows' default timer is 15.6 ms, but no
    // identity is trusted there).
    Duration::from_millis(10)
}

/// Whether `dir` is on a network or user-space file system.
#[cfg(target_os = "linux")]
fn is_remote(dir: &Path) -> bool {
    use std::os::unix::ffi::OsStrExt;
    let Ok(path) = std::ffi::CString::new(dir.as_os_str().as_bytes()) else {
        return true;
    };
    // SAFETY: a NUL-terminated path and a zeroed statfs to fill in.
    let mut stat: libc::statfs = unsafe { std::mem::zeroed() };
    if unsafe { libc::statfs(path.as_ptr(), &mut stat) } != 0 {
        // Unknown: be careful.
        return true;
    }
    // The `f_type` width differs between targets; compare as u64.
    #[allow(clippy::unnecessary_cast)]
    let kind = stat.f_type as u64 & 0xffff_ffff;
    matches!(
        kind,
        0x6969            // NFS
            | 0x517b      // SMB
            | 0xfe53_4d42 // SMB2
            | 0xff53_4d42 // CIFS
            | 0x6573_5546 // FUSE
            | 0x0102_1997 // 9p
            | 0x00c3_6400 // Ceph
            | 0x5346_414f // AFS
            | 0x7375_7245 // Coda
            | 0x0bd0_0bd0 // Lustre
            | 0x0116_1970 // GFS2
            | 0x7461_636f // OCFS2
            | 0x564c // NCP
    )
}

#[cfg(not(target_os = "linux"))]
fn is_remote(_dir: &Path) -> bool {
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tick_is_measured_and_small() {
        let tick = tick();
        assert!(
            tick > Duration::ZERO && tick <= Duration::from_millis(100),
            "{tick:?}"
        );
    }

    #[test]
    fn a_bare_file_name_is_in_the_current_directory() {
        // `file("header.h")` in a build script: the parent is "".
        let parent = Path::new("header.h").parent().unwrap();
        assert_eq!(window(parent, 123), window(Path::new("."), 123));
        assert!(is_remote(Path::new(".")) || window(parent, 123).is_some());
    }

    #[test]
    fn a_local_fine_grained_file_system_waits_one_tick() {
        let dir = tempfile::tempdir().unwrap();
        let window = window(dir.path(), 123).unwrap();
        assert_eq!(window, tick() + MARGIN);
        assert_eq!(super::window(dir.path(), 0), Some(COARSE));
        let changed = Duration::new(1_700_000_000, 5);
        let at = |d: Duration| SystemTime::UNIX_EPOCH + changed + d;
        assert!(!settled(changed, at(Duration::ZERO), Some(window)));
        assert!(!settled(
            changed,
            at(window - Duration::from_nanos(1)),
            Some(window)
        ));
        assert!(settled(changed, at(window), Some(window)));
        assert!(
            !settled(changed, SystemTime::UNIX_EPOCH, Some(window)),
            "clock behind the file"
        );
        assert!(!settled(changed, at(Duration::from_secs(3600)), None));
    }
}
