//! The producer's Rust side: the C library it built.

extern "C" {
    fn fxp_base() -> i32;
}

/// What the producer's C code computes.
pub fn base() -> i32 {
    // SAFETY: a C function with no arguments and no state.
    unsafe { fxp_base() }
}
