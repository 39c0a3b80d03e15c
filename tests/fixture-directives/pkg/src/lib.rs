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

#[cfg(test)]
mod tests {
    #[test]
    fn the_c_library_links_and_the_value_file_is_there() {
        assert_eq!(super::answer(), 42);
        assert_eq!(std::fs::read_to_string(super::VALUE_FILE).unwrap(), "42");
    }
}
