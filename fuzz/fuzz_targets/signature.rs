//! Fuzzes the signed-object parser and the key-list parser: any bytes give
//! an unsigned object, a whole envelope whose body lies inside the input and
//! which seals back to the same bytes, or an error; never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use pcache_core::remote::signature::{Envelope, KeySpec, MAGIC};

fuzz_target!(|data: &[u8]| {
    match Envelope::parse(data) {
        Ok(None) => assert!(!data.starts_with(&MAGIC)),
        Ok(Some(envelope)) => {
            assert!(!envelope.body.is_empty());
            assert!(data.ends_with(envelope.body));
            let sealed = Envelope::seal(envelope.name, &envelope.signature, envelope.body);
            assert_eq!(sealed, data);
        }
        Err(_) => assert!(data.starts_with(&MAGIC)),
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(keys) = KeySpec::parse_list(text) {
            assert!(!keys.is_empty());
            for key in keys {
                assert!(!key.material.is_empty() && text.contains(key.name));
            }
        }
    }
});
