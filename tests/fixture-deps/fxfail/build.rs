//! Fails when `FXFAIL` is set, after writing into OUT_DIR: a failed run
//! must not be stored.

fn main() {
    let out = std::path::PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    println!("cargo:rerun-if-env-changed=FXFAIL");
    let failing = std::env::var_os("FXFAIL").is_some();
    std::fs::write(out.join("state.txt"), if failing { "failed" } else { "ok" }).unwrap();
    if failing {
        eprintln!("fxfail: failing as asked");
        std::process::exit(3);
    }
}
