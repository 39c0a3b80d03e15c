//! Lua 5.4, compiled from source by a cached build-script step, called
//! through a minimal FFI.
//!
//! ```
//! assert_eq!(pcache_example_lua::eval_integer("return 6 * 7"), Ok(42));
//! assert!(pcache_example_lua::eval_integer("return nil +").is_err());
//! ```

use std::ffi::{CStr, CString, c_char, c_int, c_void};

#[allow(non_camel_case_types)]
type lua_State = c_void;

unsafe extern "C" {
    fn luaL_newstate() -> *mut lua_State;
    fn luaL_openlibs(l: *mut lua_State);
    fn luaL_loadstring(l: *mut lua_State, s: *const c_char) -> c_int;
    fn lua_pcallk(
        l: *mut lua_State,
        nargs: c_int,
        nresults: c_int,
        errfunc: c_int,
        ctx: isize,
        k: *const c_void,
    ) -> c_int;
    fn lua_tointegerx(l: *mut lua_State, idx: c_int, isnum: *mut c_int) -> i64;
    fn lua_tolstring(l: *mut lua_State, idx: c_int, len: *mut usize) -> *const c_char;
    fn lua_close(l: *mut lua_State);
}

/// A Lua state, closed on drop.
struct Lua(*mut lua_State);

impl Drop for Lua {
    fn drop(&mut self) {
        // SAFETY: the state was created by `luaL_newstate` and is closed once.
        unsafe { lua_close(self.0) }
    }
}

/// Runs `code` as a Lua chunk (with the standard libraries) and returns its
/// first result as an integer.
///
/// # Errors
///
/// The Lua error message when the chunk does not compile or fails, or when
/// its result is not an integer.
pub fn eval_integer(code: &str) -> Result<i64, String> {
    let code = CString::new(code).map_err(|e| e.to_string())?;
    // SAFETY: every call gets the state created here, which outlives them;
    // strings passed in are NUL-terminated and strings read out are copied
    // before the state is closed.
    unsafe {
        let state = luaL_newstate();
        if state.is_null() {
            return Err("out of memory".to_owned());
        }
        let lua = Lua(state);
        luaL_openlibs(lua.0);
        if luaL_loadstring(lua.0, code.as_ptr()) != 0
            || lua_pcallk(lua.0, 0, 1, 0, 0, std::ptr::null()) != 0
        {
            let message = lua_tolstring(lua.0, -1, std::ptr::null_mut());
            return Err(if message.is_null() {
                "unknown Lua error".to_owned()
            } else {
                CStr::from_ptr(message).to_string_lossy().into_owned()
            });
        }
        let mut is_number = 0;
        let value = lua_tointegerx(lua.0, -1, &mut is_number);
        if is_number == 0 {
            return Err("the chunk did not return an integer".to_owned());
        }
        Ok(value)
    }
}

#[cfg(test)]
mod tests {
    use super::eval_integer;

    #[test]
    fn arithmetic_and_the_standard_library_work() {
        assert_eq!(eval_integer("return 6 * 7"), Ok(42));
        assert_eq!(eval_integer("return #string.rep('ab', 5)"), Ok(10));
        assert_eq!(eval_integer("return math.max(3, 9, 4)"), Ok(9));
        let t = "local t = {} for i = 1, 100 do t[i] = i * i end return t[12]";
        assert_eq!(eval_integer(t), Ok(144));
    }

    #[test]
    fn lua_errors_come_back_as_messages() {
        let e = eval_integer("error('boom')").unwrap_err();
        assert!(e.contains("boom"), "{e}");
        assert!(eval_integer("return 'text'").is_err());
        assert!(eval_integer("this is not lua").is_err());
    }
}
