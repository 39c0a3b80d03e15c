//! `pcache-wrapper`, installed with cargo-pcache: see the `pcache_wrapper`
//! crate.

fn main() -> std::process::ExitCode {
    pcache_wrapper::main()
}
