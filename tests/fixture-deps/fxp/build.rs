//! A producer: generates a header into OUT_DIR, compiles a C library with
//! cc, and tells consumers where the header is (`DEP_FXP_INCLUDE`).

use std::io::Write;
use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    count("fxp");
    let include = out.join("include");
    std::fs::create_dir_all(&include).unwrap();
    // FXP_SALT is read but not declared: `PCACHE=verify` notices it.
    let salt = std::env::var("FXP_SALT").unwrap_or_default();
    std::fs::write(
        include.join("fxp.h"),
        format!("#define FXP_ANSWER 42\n/* {salt} */\nint fxp_base(void);\n"),
    )
    .unwrap();
    cc::Build::new()
        .file("csrc/fxp.c")
        .include(&include)
        .compile("fxp");
    println!("cargo:include={}", include.display());
    println!("cargo:rerun-if-changed=csrc/fxp.c");
    println!("cargo:rerun-if-changed=build.rs");
    println!(
        "cargo:warning=fxp saw RUSTC_WRAPPER={}",
        std::env::var("RUSTC_WRAPPER").unwrap_or_default()
    );
}

/// Appends a line to `$FIXTURE_COUNTER_DIR/<name>`: one per real run.
fn count(name: &str) {
    if let Some(dir) = std::env::var_os("FIXTURE_COUNTER_DIR") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(dir).join(name))
            .unwrap();
        writeln!(file, "ran").unwrap();
    }
}
