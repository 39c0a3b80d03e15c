//! What the wrapper leaves beside a build script it compiled: the real
//! binary, renamed, a launcher in its place (a copy of this binary, which
//! Cargo then runs as the build script), and the launch record that tells
//! the launcher which binary is the real one and what it was compiled from
//! (its compiled identity, see `identity`).
//!
//! ```text
//! <dir>/build_script_build-<hash>                 the launcher (Cargo runs it)
//! <dir>/build_script_build-<hash>.pcache-real     the compiled build script
//! <dir>/.pcache-launch                            the launch record
//! ```
//!
//! The launcher keeps the real binary's mtime: Cargo judges whether the
//! build script is fresh by it. Any trouble installing leaves the real
//! binary in place, so the script simply runs uncached.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::Xxh3;

/// The record's file name, beside the build script.
pub(crate) const RECORD: &str = ".pcache-launch";
/// The suffix of the real binary.
const REAL_SUFFIX: &str = ".pcache-real";
/// Version of the record's encoding.
const RECORD_VERSION: u16 = 2;

/// What the launcher needs to know about the build script it stands for.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub(crate) struct LaunchRecord {
    pub(crate) version: u16,
    /// The real binary's file name, in the same directory.
    pub(crate) real: String,
    /// The script's compiled identity: what the binary was built from.
    pub(crate) identity: u128,
    /// The real binary's size, to notice a binary replaced under the record.
    pub(crate) len: u64,
    /// Whether the package is a path package (named for caching) rather
    /// than a registry or git one.
    pub(crate) local: bool,
}

impl LaunchRecord {
    /// The real binary's path, beside the launcher in `dir`.
    pub(crate) fn real_path(&self, dir: &Path) -> PathBuf {
        dir.join(&self.real)
    }

    fn encode(&self) -> Vec<u8> {
        // Plain data always serializes.
        let mut bytes = rmp_serde::to_vec(self).expect("launch record serializes");
        let crc = crc32fast::hash(&bytes);
        bytes.extend_from_slice(&crc.to_le_bytes());
        bytes
    }

    fn decode(bytes: &[u8]) -> Option<LaunchRecord> {
        let (body, crc) = bytes.split_at_checked(bytes.len().checked_sub(4)?)?;
        if crc32fast::hash(body).to_le_bytes() != *crc {
            return None;
        }
        rmp_serde::from_slice(body)
            .ok()
            .filter(|r: &LaunchRecord| r.version == RECORD_VERSION)
    }

    /// The record in `dir`, if there is a whole one of this version.
    pub(crate) fn read(dir: &Path) -> io::Result<LaunchRecord> {
        let path = dir.join(RECORD);
        let bytes = fs::read(&path)?;
        LaunchRecord::decode(&bytes).ok_or_else(|| {
            io::Error::new(
                io::ErrorKind::InvalidData,
                format!("`{}` is damaged or of another version", path.display()),
            )
        })
    }
}

/// Installs the launcher in place of the build script at `binary`, which
/// the wrapper has just compiled from what `identity` digests; `launcher` is
/// this program.
///
/// # Errors
///
/// Whatever fails; everything is then put back as rustc left it.
pub(crate) fn install(
    binary: &Path,
    launcher: &Path,
    identity: u128,
    local: bool,
) -> io::Result<()> {
    let dir = binary.parent().unwrap_or(Path::new("."));
    let name = binary.file_name().and_then(|n| n.to_str()).ok_or_else(|| {
        io::Error::new(
            io::ErrorKind::InvalidInput,
            "build script name is not UTF-8",
        )
    })?;
    let meta = fs::metadata(binary)?;
    let modified = meta.modified()?;
    let real_name = format!("{name}{REAL_SUFFIX}");
    let real = dir.join(&real_name);
    let record = LaunchRecord {
        version: RECORD_VERSION,
        real: real_name,
        identity,
        len: meta.len(),
        local,
    };
    // The copy is made beside the binary and swapped in by a rename, so
    // Cargo never finds a half-written program.
    let staged = dir.join(format!("{name}.pcache-launcher.{}", std::process::id()));
    let installed = (|| -> io::Result<()> {
        fs::copy(launcher, &staged)?;
        make_executable(&staged)?;
        fs::File::options()
            .write(true)
            .open(&staged)?
            .set_modified(modified)?;
        fs::rename(binary, &real)?;
        fs::write(dir.join(RECORD), record.encode())?;
        fs::rename(&staged, binary)
    })();
    if let Err(e) = installed {
        let _ = fs::remove_file(&staged);
        if real.exists() && !binary.exists() {
            let _ = fs::rename(&real, binary);
        }
        let _ = fs::remove_file(dir.join(RECORD));
        return Err(e);
    }
    Ok(())
}

/// The XXH3-128 of the file at `path`, read in blocks.
pub(crate) fn digest_file(path: &Path) -> io::Result<u128> {
    use std::io::Read;
    let mut file = fs::File::open(path)?;
    let mut hasher = Xxh3::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        match file.read(&mut buf) {
            Ok(0) => return Ok(hasher.digest128()),
            Ok(n) => hasher.update(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

#[cfg(unix)]
fn make_executable(path: &Path) -> io::Result<()> {
    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(path, fs::Permissions::from_mode(0o755))
}

#[cfg(not(unix))]
fn make_executable(_path: &Path) -> io::Result<()> {
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_launcher_takes_the_binary_s_place_and_time_and_the_record_says_which_is_real() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("build_script_build-0123");
        fs::write(&binary, b"the real build script").unwrap();
        let then = std::time::SystemTime::UNIX_EPOCH + std::time::Duration::from_secs(1_000_000);
        fs::File::options()
            .write(true)
            .open(&binary)
            .unwrap()
            .set_modified(then)
            .unwrap();
        let launcher = dir.path().join("pcache-wrapper");
        fs::write(&launcher, b"the launcher").unwrap();

        install(&binary, &launcher, 7, false).unwrap();
        assert_eq!(fs::read(&binary).unwrap(), b"the launcher");
        assert_eq!(fs::metadata(&binary).unwrap().modified().unwrap(), then);
        let record = LaunchRecord::read(dir.path()).unwrap();
        assert_eq!(
            fs::read(record.real_path(dir.path())).unwrap(),
            b"the real build script"
        );
        assert_eq!(record.identity, 7);
        assert_eq!(record.len, b"the real build script".len() as u64);
        assert!(!record.local);

        // A damaged record is not read as one.
        let path = dir.path().join(RECORD);
        let mut bytes = fs::read(&path).unwrap();
        bytes[2] ^= 1;
        fs::write(&path, bytes).unwrap();
        assert!(LaunchRecord::read(dir.path()).is_err());
    }

    #[test]
    fn a_failed_install_leaves_the_binary_as_rustc_wrote_it() {
        let dir = tempfile::tempdir().unwrap();
        let binary = dir.path().join("build_script_build-0123");
        fs::write(&binary, b"real").unwrap();
        let missing = dir.path().join("no-such-launcher");
        assert!(install(&binary, &missing, 7, false).is_err());
        assert_eq!(fs::read(&binary).unwrap(), b"real");
        let names: Vec<_> = fs::read_dir(dir.path())
            .unwrap()
            .flatten()
            .map(|e| e.file_name())
            .collect();
        assert_eq!(names, ["build_script_build-0123"]);
    }
}
