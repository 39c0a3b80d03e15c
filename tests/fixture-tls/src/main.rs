//! Uses both C libraries: the build scripts' output links and runs.

fn main() {
    let digest = ring::digest::digest(&ring::digest::SHA256, b"pcache");
    // SAFETY: takes nothing, returns a constant.
    let version = unsafe { aws_lc_sys::OpenSSL_version_num() };
    println!("sha256 {:02x?} aws-lc {version:x}", &digest.as_ref()[..4]);
}
