//! Time the hypervisor took from this VM: a test that counts packets lost while its
//! threads could not run allows for what the host stole meanwhile, and fails on the rest.

/// Milliseconds the hypervisor has stolen from this VM's vCPUs since boot, all of them
/// together (`steal` of /proc/stat's `cpu` line, in clock ticks). A development VM here
/// stops a vCPU for 100 ms at a time when both are busy: a test that counts frames lost
/// to a stopped receiver allows for what it stole.
pub fn stolen_ms() -> u64 {
    let stat = std::fs::read_to_string("/proc/stat").expect("reading /proc/stat");
    let line = stat.lines().next().expect("/proc/stat's cpu line");
    let ticks: u64 = line
        .split_whitespace()
        .nth(8)
        .and_then(|f| f.parse().ok())
        .unwrap_or_else(|| panic!("no steal field in {line:?}"));
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as u64;
    ticks * 1000 / hz
}
