//! The consumer's Rust side.

extern "C" {
    fn fxc_answer() -> i32;
}

/// The answer, from C compiled against the producer's header.
pub fn answer() -> i32 {
    // SAFETY: a C function with no arguments and no state.
    unsafe { fxc_answer() }
}

/// The producer's C code and the consumer's, together.
pub fn sum() -> i32 {
    fxp::base() + answer()
}
