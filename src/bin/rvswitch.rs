//! The rvswitch daemon.
fn main() {
    println!("rvswitch {}", rvswitch::VERSION);
}
