//! Builds a perfect-hash map from every Unicode character name to its
//! character. Generating the hash for ~40,000 keys is the expensive part,
//! and it only depends on the data file: pcache computes it once.

use std::fs;
use std::path::Path;

fn main() {
    let data = Path::new("data/UnicodeNames.txt");
    let code: String = pcache_build::cached("unicode-names-phf", pcache_build::file(data), || {
        let text =
            fs::read_to_string(data).expect("data/UnicodeNames.txt is shipped with the example");
        let mut map = phf_codegen::Map::new();
        for line in text.lines().filter(|l| !l.starts_with('#')) {
            let (hex, name) = line.split_once(';').expect("CODE;NAME lines");
            let cp = u32::from_str_radix(hex, 16).expect("hex code point");
            let ch = char::from_u32(cp).expect("a scalar value");
            map.entry(name.to_owned(), &format!("{ch:?}"));
        }
        format!(
            "/// Every named Unicode character, by name.\npub static BY_NAME: phf::Map<&'static str, char> = {};\n",
            map.build()
        )
    });
    let out = std::env::var_os("OUT_DIR").expect("run by Cargo");
    fs::write(Path::new(&out).join("names.rs"), code).expect("OUT_DIR is writable");
}
