//! Compiles Lua 5.4 from the sources shipped by `lua-src`: about 35 C files,
//! several seconds of `cc` on a laptop, every time Cargo re-runs this
//! script. Inside `cached_files` it runs once: the library and headers are
//! stored, and every later run restores them and replays the directives
//! `lua-src` printed (the link search path, the library, the `include` and
//! `lib` metadata for dependents), with paths rewritten to this run's
//! `OUT_DIR`. Nothing in `lua-src`'s own printing changes.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("run by Cargo"));
    // What the compiled library depends on besides lua-src's version (part
    // of the build script's code identity) and the target (part of every
    // key): the C toolchain's settings.
    let inputs = (
        "lua 5.4, -O2",
        pcache_build::env("CC"),
        pcache_build::env("CFLAGS"),
        pcache_build::env("AR"),
    );
    pcache_build::cached_files("lua54", inputs, out.join("lua"), |dir| {
        lua_src::Build::new()
            .out_dir(dir)
            // One optimization level for every profile, so the debug
            // build's library serves the release build (and Lua is fast in
            // both).
            .opt_level("2")
            .debug(false)
            .try_build(lua_src::Lua54)
            .map_err(|e| std::io::Error::other(e.to_string()))?
            .print_cargo_metadata();
        Ok(())
    })
    .expect("failed to build Lua 5.4");
}
