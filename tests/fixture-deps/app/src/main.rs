fn main() {
    println!("answer {} sum {}", fxc::answer(), fxc::sum());
}
