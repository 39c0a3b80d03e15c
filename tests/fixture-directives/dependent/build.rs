// Reads the metadata the fixture's cached step printed (`cargo:answer=42`,
// `cargo::metadata=origin=...`), as `DEP_PCACHEFX_*`.
fn main() {
    println!("cargo:rerun-if-env-changed=FIXTURE_RERUN");
    let answer = std::env::var("DEP_PCACHEFX_ANSWER").expect("DEP_PCACHEFX_ANSWER is set");
    let origin = std::env::var("DEP_PCACHEFX_ORIGIN").expect("DEP_PCACHEFX_ORIGIN is set");
    assert_eq!(answer, "42");
    println!("cargo:warning=dependent saw answer={answer} origin={origin}");
}
