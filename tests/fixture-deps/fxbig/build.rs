//! Writes 20 MiB into OUT_DIR (64 files of 320 KiB, incompressible): the
//! size of a large -sys crate's output, for the restore benchmark.

use std::path::PathBuf;

fn main() {
    let out = PathBuf::from(std::env::var_os("OUT_DIR").unwrap()).join("blobs");
    std::fs::create_dir_all(&out).unwrap();
    let mut state: u64 = 0x9e37_79b9_7f4a_7c15;
    for file in 0..64 {
        let mut bytes = Vec::with_capacity(320 << 10);
        while bytes.len() < 320 << 10 {
            // xorshift64*: the same bytes on every run.
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            bytes.extend_from_slice(&state.wrapping_mul(0x2545_f491_4f6c_dd1d).to_le_bytes());
        }
        std::fs::write(out.join(format!("blob-{file:02}.bin")), bytes).unwrap();
    }
    // Slower than the default threshold, as such scripts are.
    std::thread::sleep(std::time::Duration::from_millis(150));
    println!("cargo:rerun-if-changed=build.rs");
}
