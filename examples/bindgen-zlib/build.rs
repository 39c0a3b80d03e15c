//! Generates Rust bindings for the system zlib with bindgen, the canonical
//! slow build script: bindgen starts libclang and parses the headers on
//! every run. Through `pcache_build::cached_files`, it runs once; later runs
//! restore the generated file into `OUT_DIR`.

use std::path::PathBuf;

fn main() {
    println!("cargo:rustc-link-lib=z");
    let include = std::env::var("ZLIB_INCLUDE_DIR").unwrap_or_else(|_| "/usr/include".to_owned());
    let include = PathBuf::from(include);
    // Everything the generated bindings depend on: our wrapper, the headers
    // it pulls in, and the clang arguments. (bindgen's own version is part
    // of the build script's code identity.)
    let inputs = (
        pcache_build::file("wrapper.h"),
        pcache_build::file(include.join("zlib.h")),
        pcache_build::file(include.join("zconf.h")),
        pcache_build::env("BINDGEN_EXTRA_CLANG_ARGS"),
        pcache_build::env("ZLIB_INCLUDE_DIR"),
    );
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("run by Cargo"));
    pcache_build::cached_files("zlib-bindings", inputs, &out, |dir| {
        bindgen::Builder::default()
            .header("wrapper.h")
            .clang_arg(format!("-I{}", include.display()))
            .allowlist_function("zlibVersion|compress2?|compressBound|uncompress")
            .allowlist_var("Z_.*")
            .generate()
            .map_err(std::io::Error::other)?
            .write_to_file(dir.join("zlib.rs"))
    })
    .expect("failed to generate zlib bindings");
}
