//! The kernel datapath, for real: boots Debian's kernel (which carries openvswitch.ko; this
//! host's kernel does not) under qemu and runs examples/kernel_guest.rs inside it, with
//! ping, iperf3 and Debian's ovs-dpctl against a datapath `DpifNetlink` creates. See
//! scripts/kernel-test/. Fails if any guest step fails or the guest does not finish; the
//! whole guest console is printed so the test log keeps it.

use std::process::Command;

#[test]
fn kernel_datapath_in_qemu_guest() {
    let root = env!("CARGO_MANIFEST_DIR");
    let out = Command::new("bash")
        .arg(format!("{root}/scripts/kernel-test/run.sh"))
        .current_dir(root)
        .output()
        .expect("running scripts/kernel-test/run.sh");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stdout}");
    eprintln!("{stderr}");
    let passed = stdout
        .lines()
        .filter(|l| l.starts_with("KTEST PASS"))
        .count();
    let failed: Vec<&str> = stdout
        .lines()
        .filter(|l| l.starts_with("KTEST FAIL"))
        .collect();
    assert!(
        out.status.success(),
        "kernel datapath guest test failed: {failed:#?}"
    );
    assert!(failed.is_empty(), "failed steps: {failed:#?}");
    // every step the guest runs must have reported (a silently skipped step is a failure)
    for step in [
        "modules",
        "setup_net",
        "create_datapath",
        "add_ports",
        "ping",
        "udp_stream",
        "dump_flows",
        "dpctl_show",
        "dpctl_dump_flows",
        "ping_after_dpctl",
        "flow_ops",
        "execute",
        "vxlan",
        "expire_idle",
        "destroy",
        "no_leftovers",
        "daemon_start",
        "daemon_ping",
        "daemon_flows",
        "daemon_dpctl_show",
        "daemon_vxlan_add",
        "daemon_del_flows",
        "daemon_upcall_show",
        "daemon_vxlan_ping",
        "daemon_dpctl_dump_flows",
        "daemon_geneve_compat",
        "daemon_stop",
    ] {
        let prefix = format!("KTEST PASS {step}");
        assert!(
            stdout
                .lines()
                .any(|l| l == prefix || l.starts_with(&format!("{prefix} "))),
            "step {step} did not pass ({passed} steps passed)"
        );
    }
}
