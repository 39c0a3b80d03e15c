//! `pcache-wrapper`, under a name the end-to-end tests can find
//! (`CARGO_BIN_EXE_pcache-wrapper-e2e`): the rustc wrapper and build-script
//! launcher the tests of dependencies' build scripts set as `RUSTC_WRAPPER`.

// Compilations that are not build scripts are handed to rustc before Rust's
// runtime starts (see `pass_through_early`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static PASS_THROUGH: pcache_wrapper::InitArrayFn = pcache_wrapper::pass_through_early;

fn main() -> std::process::ExitCode {
    pcache_wrapper::main()
}
