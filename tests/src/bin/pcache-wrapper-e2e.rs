//! `pcache-wrapper`, under a name the end-to-end tests can find
//! (`CARGO_BIN_EXE_pcache-wrapper-e2e`): the rustc wrapper and build-script
//! launcher the tests of dependencies' build scripts set as `RUSTC_WRAPPER`.

fn main() -> std::process::ExitCode {
    pcache_wrapper::main()
}
