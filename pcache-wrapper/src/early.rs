//! The pass-through, before Rust's runtime starts.
//!
//! Cargo runs the wrapper for every rustc call, and all but a handful are
//! not build scripts: for them the wrapper's whole job is one `exec`. On
//! Linux with glibc, the C runtime calls the functions in an executable's
//! `.init_array` with `argc`, `argv` and `envp` before `main`, as it does
//! for the standard library's own argument capture. From there,
//! [`pass_through_early`] hands a compilation that cannot be a build
//! script's straight to rustc (or to the wrapper pcache chains), before the
//! standard library sets up its runtime (which, for the main thread's stack
//! guard, reads `/proc/self/maps`): about 0.15 ms less per rustc call on a
//! machine where an `exec` costs 1 ms.
//!
//! It only ever `exec`s or returns. Whatever it leaves — a command line
//! that may compile a build script, an `exec` that failed — `main` handles
//! as before, and reports.

use std::ffi::{CStr, OsStr, OsString, c_char, c_int};
use std::os::unix::ffi::OsStrExt;
use std::os::unix::process::CommandExt;

use crate::{args, wrapper};

/// The type of a function in `.init_array`, as glibc calls it.
pub type InitArrayFn = unsafe extern "C" fn(c_int, *const *const c_char, *const *const c_char);

/// Replaces this process by `argv[1]` (rustc) with the rest of the command
/// line, or by the wrapper to chain with all of it, as `main` would, when
/// the command line cannot compile a build script; returns in every other
/// case. Meant for the `pcache-wrapper` binary's `.init_array`:
///
/// ```no_run
/// #[cfg(all(target_os = "linux", target_env = "gnu"))]
/// #[used]
/// #[unsafe(link_section = ".init_array")]
/// static PASS_THROUGH: pcache_wrapper::InitArrayFn = pcache_wrapper::pass_through_early;
///
/// fn main() -> std::process::ExitCode {
///     pcache_wrapper::main()
/// }
/// ```
///
/// # Safety
///
/// `argv` holds `argc` pointers to NUL-terminated strings, followed by a
/// null pointer, as the C runtime passes them; the process is still
/// single-threaded.
pub unsafe extern "C" fn pass_through_early(
    argc: c_int,
    argv: *const *const c_char,
    _envp: *const *const c_char,
) {
    let Ok(argc) = usize::try_from(argc) else {
        return;
    };
    if argc < 2 || argv.is_null() {
        // The launcher (Cargo runs build scripts without arguments), or a
        // usage error `main` explains.
        return;
    }
    // SAFETY: the caller's contract: `argc` valid strings.
    let arg = |i: usize| unsafe { CStr::from_ptr(*argv.add(i)) }.to_bytes();
    if !args::surely_not_a_build_script((2..argc).map(arg)) {
        return;
    }
    let rustc_args: Vec<OsString> = (2..argc)
        .map(|i| OsStr::from_bytes(arg(i)).to_owned())
        .collect();
    let _ = wrapper::compilation(OsStr::from_bytes(arg(1)), &rustc_args).exec();
    // `exec` failed: `main` runs, tries again and reports why.
}
