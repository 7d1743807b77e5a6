//! Client of the rvswitch control socket.
fn main() {
    println!("rvswitch-appctl {}", rvswitch::VERSION);
}
