//! Cache dependencies' build-script runs, with no change to their code.
//!
//! Most of the build-script time a Rust user waits for is in dependencies —
//! `aws-lc-sys`, `ring`, `zstd-sys`, `libsqlite3-sys` with `bundled` compile
//! C on every clean build, new worktree and fresh CI runner — whose
//! `build.rs` nobody in the workspace can edit. `pcache-wrapper` caches
//! those runs whole: `OUT_DIR` and the script's stdout, in a per-user store
//! that outlives `cargo clean` and serves every workspace.
//!
//! ```sh
//! cargo install cargo-pcache     # installs the pcache-wrapper binary beside it
//! cargo pcache enable            # build.rustc-wrapper in .cargo/config.toml
//! cargo clean && cargo build     # the second time, no C is compiled
//! ```
//!
//! This crate is the program's code; its binary, `pcache-wrapper`, is built
//! and installed by `cargo-pcache` (its `main` calls [`main`]).
//!
//! # How
//!
//! One program with two roles:
//!
//! - **The rustc wrapper** (Cargo's `build.rustc-wrapper`, or
//!   `RUSTC_WRAPPER`). Every compilation passes straight through, by
//!   `exec`, to rustc or to the wrapper the user had (`PCACHE_RUSTC_WRAPPER`,
//!   such as sccache); on Linux with glibc, one that cannot be a build
//!   script's is handed on before Rust's runtime starts
//!   ([`pass_through_early`]). When rustc compiles a build script of a
//!   registry or git package (or a path package named in
//!   `[workspace.metadata.pcache] build-scripts`), the wrapper then puts a
//!   copy of itself where Cargo will run the script, the *launcher*, keeping
//!   the real binary beside it.
//! - **The launcher.** Its key's first level is known before the run: the
//!   package's identity and sources, the script's compiled identity, the
//!   rustc, the target and profile, features and `CARGO_CFG_*`, the
//!   variables C build tools read, and every `DEP_*` variable (paths into a
//!   producer's `OUT_DIR` written as the producer's run). The second level
//!   is learnt from the run: the variables and files it declared with
//!   `rerun-if-env-changed` and `rerun-if-changed`. On a hit, `OUT_DIR` is
//!   restored exactly and atomically and the stdout printed again with this
//!   run's paths; the real script does not run. On a miss the real script
//!   runs as Cargo would have run it, and a successful run that took longer
//!   than `PCACHE_BUILD_SCRIPT_MIN_TIME` (100 ms) is stored.
//!
//! An entry whose stdout or declarations name other paths of the machine (a
//! system library found by pkg-config) is kept locally, keyed by those
//! files' contents, and never sent to a remote; the others are portable and
//! go through the remote tier like every other entry. `PCACHE=off` runs
//! every script directly and writes nothing; `PCACHE=verify` runs it and
//! compares `OUT_DIR` and stdout with the entry.

mod args;
mod declare;
mod depinfo;
#[cfg(unix)]
mod early;
mod identity;
mod key;
mod launcher;
mod record;
mod run;
mod source;
mod wrapper;

use std::ffi::OsString;
use std::process::ExitCode;

#[cfg(unix)]
pub use early::{InitArrayFn, pass_through_early};
pub use launcher::CACHE_NAME;

/// The program's entry point: the launcher when it runs as a build script
/// (Cargo runs build scripts without arguments, and the launch record is
/// beside it), the rustc wrapper otherwise.
pub fn main() -> ExitCode {
    let args: Vec<OsString> = std::env::args_os().collect();
    if args.len() == 1 {
        if let Some(dir) = std::env::current_exe().ok().and_then(|exe| {
            let dir = exe.parent()?.to_owned();
            dir.join(record::RECORD).is_file().then_some(dir)
        }) {
            return launcher::run(&dir);
        }
    }
    wrapper::run(&args)
}
