//! A consumer: compiles C against the producer's header, found through
//! `DEP_FXP_INCLUDE`.

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let include = std::env::var("DEP_FXP_INCLUDE").expect("DEP_FXP_INCLUDE");
    if let Some(dir) = std::env::var_os("FIXTURE_COUNTER_DIR") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(dir).join("fxc"))
            .unwrap();
        writeln!(file, "{include}").unwrap();
    }
    cc::Build::new()
        .file("csrc/fxc.c")
        .include(&include)
        .compile("fxc");
    println!("cargo:rerun-if-changed=csrc/fxc.c");
    println!("cargo:rerun-if-changed=build.rs");
}
