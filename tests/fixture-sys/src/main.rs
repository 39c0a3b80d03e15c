//! Calls into both C libraries: the build scripts' output links and runs.

fn main() {
    // SAFETY: both functions take nothing and return a constant.
    let (zstd, sqlite) = unsafe {
        (
            zstd_sys::ZSTD_versionNumber(),
            libsqlite3_sys::sqlite3_libversion_number(),
        )
    };
    println!("zstd {zstd} sqlite {sqlite}");
}
