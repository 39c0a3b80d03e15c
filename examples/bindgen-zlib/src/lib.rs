//! Safe compression helpers over zlib bindings that `build.rs` generates
//! with bindgen, cached by `pcache_build::cached_files`.
//!
//! ```
//! let data = b"hello hello hello hello hello".repeat(100);
//! let packed = pcache_example_bindgen_zlib::compress(&data).unwrap();
//! assert!(packed.len() < data.len());
//! assert_eq!(pcache_example_bindgen_zlib::decompress(&packed, data.len()).unwrap(), data);
//! ```

/// The raw bindings.
#[allow(
    non_upper_case_globals,
    non_camel_case_types,
    non_snake_case,
    dead_code,
    missing_docs
)]
pub mod sys {
    include!(concat!(env!("OUT_DIR"), "/zlib.rs"));
}

/// zlib's version string.
pub fn version() -> String {
    // SAFETY: zlibVersion returns a static NUL-terminated string.
    unsafe { std::ffi::CStr::from_ptr(sys::zlibVersion()) }
        .to_string_lossy()
        .into_owned()
}

/// Compresses `data` with zlib's default level; `Err` carries zlib's code.
pub fn compress(data: &[u8]) -> Result<Vec<u8>, i32> {
    let source_len = sys::uLong::try_from(data.len()).map_err(|_| sys::Z_BUF_ERROR)?;
    // SAFETY: compressBound only computes a number.
    let mut len = unsafe { sys::compressBound(source_len) };
    let mut out = vec![0u8; usize::try_from(len).map_err(|_| sys::Z_BUF_ERROR)?];
    // SAFETY: `out` has room for `len` bytes and `data` for `source_len`.
    let code = unsafe { sys::compress(out.as_mut_ptr(), &mut len, data.as_ptr(), source_len) };
    if code != sys::Z_OK as i32 {
        return Err(code);
    }
    out.truncate(len as usize);
    Ok(out)
}

/// Decompresses `data`, which must inflate to at most `max_len` bytes.
pub fn decompress(data: &[u8], max_len: usize) -> Result<Vec<u8>, i32> {
    let mut out = vec![0u8; max_len];
    let mut len = sys::uLong::try_from(max_len).map_err(|_| sys::Z_BUF_ERROR)?;
    let source_len = sys::uLong::try_from(data.len()).map_err(|_| sys::Z_BUF_ERROR)?;
    // SAFETY: `out` has room for `len` bytes and `data` holds `source_len`.
    let code = unsafe { sys::uncompress(out.as_mut_ptr(), &mut len, data.as_ptr(), source_len) };
    if code != sys::Z_OK as i32 {
        return Err(code);
    }
    out.truncate(len as usize);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_through_the_c_library() {
        assert!(version().starts_with('1'), "{}", version());
        let data: Vec<u8> = (0..100_000u32)
            .flat_map(|i| (i % 97).to_le_bytes())
            .collect();
        let packed = compress(&data).unwrap();
        assert!(packed.len() < data.len() / 10);
        assert_eq!(decompress(&packed, data.len()).unwrap(), data);
    }

    #[test]
    fn corrupt_input_is_an_error_code() {
        assert_eq!(decompress(b"not zlib data", 100), Err(sys::Z_DATA_ERROR));
    }
}
