//! Fuzzes the helper protocol's parsers: any command line either parses to
//! a request that writes back the same command line, or is refused; any
//! exit status and stderr either read as a reply that writes back the same,
//! or are not a reply; any marker file either parses to a marker that
//! writes back the same, or is not a marker. None of them may panic.
#![no_main]

use std::ffi::OsString;

use libfuzzer_sys::fuzz_target;
use pcache_core::remote::{HelperReply, HelperRequest, Marker};

fuzz_target!(|input: (Vec<String>, i32, Vec<u8>, String)| {
    let (args, code, stderr, marker) = input;
    let args: Vec<OsString> = args.into_iter().map(OsString::from).collect();
    if let Ok(request) = HelperRequest::parse(&args) {
        let written = request.to_args();
        assert_eq!(HelperRequest::parse(&written[2..]).as_ref(), Ok(&request));
    }
    if let Ok(reply) = HelperReply::read(Some(code), &stderr) {
        let again = HelperReply::read(Some(i32::from(reply.exit_code())), reply.line().as_bytes());
        assert_eq!(again.as_ref(), Ok(&reply));
    }
    if let Some(parsed) = Marker::parse(&marker) {
        assert_eq!(Marker::parse(&parsed.encode()).as_ref(), Some(&parsed));
    }
});
