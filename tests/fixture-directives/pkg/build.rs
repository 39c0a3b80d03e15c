// Every step kind prints Cargo directives of every kind while it computes:
// the closure itself, a C compile through `cc`, and a child process. The
// tests compare what Cargo recorded after a miss and after hits.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

fn count(step: &str) {
    let dir = std::env::var_os("FIXTURE_COUNTER_DIR").expect("FIXTURE_COUNTER_DIR");
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(Path::new(&dir).join(step))
        .unwrap();
    writeln!(file, "computed").unwrap();
}

fn cfg(name: &str) {
    println!("cargo:rustc-cfg={name}");
    println!("cargo::rustc-check-cfg=cfg({name})");
}

fn main() {
    println!("cargo:rerun-if-env-changed=FIXTURE_RERUN");
    println!("cargo:rerun-if-env-changed=FIXTURE_COUNTER_DIR");
    println!("cargo:rerun-if-env-changed=FIXTURE_MODE");
    count("runs");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    // The script's own directive, outside any step.
    cfg("fx_outside");

    let value: u32 = pcache_build::cached("value", (), || {
        count("value");
        cfg("fx_value");
        println!("cargo:rustc-env=FX_VALUE_FILE={}", out.join("value.txt").display());
        println!("cargo:rerun-if-changed=watched.txt");
        println!("cargo:warning=fx: the value step computed");
        println!("cargo:answer=42");
        println!("cargo::metadata=origin={}", out.display());
        42
    });
    std::fs::write(out.join("value.txt"), value.to_string()).unwrap();

    let fallible: Result<u8, String> = pcache_build::try_cached("fallible", (), || {
        count("fallible");
        cfg("fx_fallible");
        println!("cargo:rerun-if-env-changed=FX_WATCHED_ENV");
        Ok(1)
    });
    assert_eq!(fallible, Ok(1));

    let items: Vec<u32> = pcache_build::cached_iter("items", (), || {
        count("items");
        cfg("fx_iter_produce");
        (0..200u32).inspect(|i| {
            if *i == 150 {
                cfg("fx_iter_item");
            }
        })
    })
    .collect();
    assert_eq!(items.len(), 200);

    // Into OUT_DIR itself, as cc does by default: the scratch directory is
    // then beside OUT_DIR, and only pcache's rewriting makes cc's link line
    // name a directory that exists.
    pcache_build::cached_files("clib", (), &out, |dir| {
        count("clib");
        // cc prints `rustc-link-search=native=<dir>` (the scratch directory)
        // and `rustc-link-lib=static=fxanswer`; nothing is printed by hand.
        cc::Build::new()
            .file("csrc/answer.c")
            .out_dir(dir)
            .compile("fxanswer");
        // A child process inheriting stdout.
        let status = Command::new("sh")
            .args(["-c", "echo cargo:rustc-cfg=fx_child; echo 'cargo::rustc-check-cfg=cfg(fx_child)'"])
            .status()?;
        assert!(status.success());
        Ok(())
    })
    .unwrap();

    let linked: u8 = pcache_build::Cache::new("builder").cached((), || {
        count("builder");
        println!("cargo:rustc-link-arg=-Wl,--as-needed");
        println!("cargo:rustc-flags=-l dylib=c");
        1
    });
    assert_eq!(linked, 1);

    if std::env::var("FIXTURE_MODE").as_deref() == Ok("lingering") {
        // A background process keeps the step's stdout open after the
        // closure returns: whatever it prints later would be missed.
        let v: u8 = pcache_build::cached("lingering", (), || {
            count("lingering");
            Command::new("sh")
                .args(["-c", "(sleep 4; echo cargo:warning=late) &"])
                .status()
                .unwrap();
            5
        });
        assert_eq!(v, 5);
    }

    if std::env::var("FIXTURE_MODE").as_deref() == Ok("error") {
        let _: u8 = pcache_build::cached("erroring", (), || {
            count("erroring");
            println!("cargo::error=fx: this step reports an error");
            3
        });
    }
}
