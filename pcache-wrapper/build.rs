//! Links GCC's unwinder statically into the programs built on this crate,
//! on Linux with glibc.
//!
//! Cargo runs `pcache-wrapper` for every rustc call, and for almost all of
//! them the wrapper only `exec`s rustc: its cost is the time to start a
//! process. The standard library's unwinder is `libgcc_s.so` there, and
//! loading it takes about 0.2 ms, as much as the rest of a Rust program's
//! start. Its static archive, `libgcc_eh.a` (what `-static-libgcc` gives C
//! programs, and `+crt-static` Rust ones), leaves only libc to load.
//!
//! Only where the C compiler that links (Cargo's linker for the target, or
//! `cc`) names the archive, and not when cross-compiling: anywhere else the
//! programs link as before.

use std::env;
use std::ffi::OsString;
use std::path::PathBuf;
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-env-changed=RUSTC_LINKER");
    let var = |name: &str| env::var(name).unwrap_or_default();
    if var("CARGO_CFG_TARGET_OS") != "linux"
        || var("CARGO_CFG_TARGET_ENV") != "gnu"
        || var("HOST") != var("TARGET")
    {
        return;
    }
    let Some(archive) = static_unwinder() else {
        return;
    };
    let Some(dir) = archive.parent() else {
        return;
    };
    println!("cargo:rustc-link-search=native={}", dir.display());
    // Not bundled into this crate's rlib: linked once, into each program,
    // whole, so that every unwinding symbol the standard library asks for
    // is found before `libgcc_s`, which `--as-needed` then leaves out.
    println!("cargo:rustc-link-lib=static:-bundle,+whole-archive=gcc_eh");
}

/// Where the linker finds `libgcc_eh.a`, if it has one.
fn static_unwinder() -> Option<PathBuf> {
    let linker = env::var_os("RUSTC_LINKER").unwrap_or_else(|| OsString::from("cc"));
    let out = Command::new(linker)
        .arg("-print-file-name=libgcc_eh.a")
        .output()
        .ok()?;
    // A compiler without the archive prints the bare name back.
    let path = PathBuf::from(String::from_utf8(out.stdout).ok()?.trim());
    (out.status.success() && path.is_absolute() && path.is_file()).then_some(path)
}
