//! On a host kernel without openvswitch.ko (like the CI hosts), opening a kernel datapath
//! must fail with one line saying so; with the module loaded it must work. Either way the
//! assertion checks the behaviour that matches the host's actual state.

use rvswitch::dpif::{Dpif, DpifError};
use rvswitch::dpif_netlink::DpifNetlink;

#[test]
fn missing_module_is_reported_in_one_line() {
    let loaded = std::fs::read_to_string("/proc/modules")
        .map(|m| m.lines().any(|l| l.starts_with("openvswitch ")))
        .unwrap_or(false)
        || std::path::Path::new("/sys/module/openvswitch").exists();
    match DpifNetlink::create("rvsknomod0", 1) {
        Err(DpifError::Kernel(msg)) if !loaded => assert_eq!(
            msg,
            "the openvswitch kernel module is not loaded: Generic Netlink family ovs_datapath not found"
        ),
        Ok(dp) if loaded => dp.destroy().expect("destroying the probe datapath"),
        other => panic!("module loaded: {loaded}, create gave {:?}", other.map(|d| d.name().to_owned())),
    }
}
