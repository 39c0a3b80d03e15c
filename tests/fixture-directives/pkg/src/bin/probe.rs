fn main() {
    assert_eq!(fx::answer(), 42);
    let value = std::fs::read_to_string(fx::VALUE_FILE).expect("the file rustc-env names");
    assert_eq!(value, "42");
    println!("fx-probe: answer {}, value file {}", fx::answer(), fx::VALUE_FILE);
}
