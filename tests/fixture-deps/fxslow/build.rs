//! A slow script (1.5 s) that counts its runs: two workspaces building it at
//! once must run it once.

use std::io::Write;
use std::path::PathBuf;

fn main() {
    if let Some(dir) = std::env::var_os("FIXTURE_COUNTER_DIR") {
        let mut file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(PathBuf::from(dir).join("fxslow"))
            .unwrap();
        writeln!(file, "ran").unwrap();
    }
    std::thread::sleep(std::time::Duration::from_millis(1500));
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap());
    std::fs::write(out.join("slow.txt"), "slow").unwrap();
    println!("cargo:rerun-if-changed=build.rs");
}
