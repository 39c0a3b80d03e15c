//! `pcache-wrapper`, installed with cargo-pcache: see the `pcache_wrapper`
//! crate.

// Compilations that are not build scripts are handed to rustc before Rust's
// runtime starts (see `pass_through_early`).
#[cfg(all(target_os = "linux", target_env = "gnu"))]
#[used]
#[unsafe(link_section = ".init_array")]
static PASS_THROUGH: pcache_wrapper::InitArrayFn = pcache_wrapper::pass_through_early;

fn main() -> std::process::ExitCode {
    pcache_wrapper::main()
}
