//! Finds a library with pkg-config, as -sys crates do when a system copy
//! exists: its directives name paths of this machine.

use std::io::Write;

fn main() {
    if let Some(dir) = std::env::var_os("FIXTURE_COUNTER_DIR") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(std::path::PathBuf::from(dir).join("fxprobe"))
            .unwrap();
        writeln!(file, "ran").unwrap();
    }
    let lib = pkg_config::Config::new()
        .cargo_metadata(true)
        .probe("fxprobe")
        .expect("pkg-config finds fxprobe");
    std::fs::write(
        std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("found.txt"),
        format!("{:?}", lib.link_paths),
    )
    .unwrap();
}
