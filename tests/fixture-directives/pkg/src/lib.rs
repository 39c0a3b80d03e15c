//! Compiles only if every cfg printed by a cached step reached rustc.

#[cfg(not(all(fx_outside, fx_value, fx_fallible, fx_iter_produce, fx_iter_item, fx_child)))]
compile_error!("a cfg printed inside a cached step is missing");

/// Set by `rustc-env` inside a cached step.
pub const VALUE_FILE: &str = env!("FX_VALUE_FILE");

unsafe extern "C" {
    fn fx_answer() -> i32;
}

/// From the C library compiled inside a cached step.
pub fn answer() -> i32 {
    // SAFETY: a plain C function without arguments.
    unsafe { fx_answer() }
}
