//! The shipped configs parse and say what the README says they do.

use std::path::Path;

use rvswitch::config::{Config, DatapathType, FailMode, PortType};

#[test]
fn demo_config_is_valid() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/switch.toml");
    let c = Config::load(&path).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(c.global.pmd_cores, vec![1]);
    assert_eq!(c.global.run_dir, Path::new("/var/run/rvswitch"));
    assert_eq!(c.bridges.len(), 1);
    let br0 = &c.bridges[0];
    assert_eq!(br0.name, "br0");
    assert_eq!(br0.datapath, DatapathType::Netdev);
    assert_eq!(br0.fail_mode, FailMode::Standalone);
    let ports: Vec<(&str, PortType)> = br0
        .ports
        .iter()
        .map(|p| (p.name.as_str(), p.port_type))
        .collect();
    assert_eq!(
        ports,
        vec![("rvs-a0", PortType::Afxdp), ("rvs-b0", PortType::Afxdp)]
    );
}

#[test]
fn load_error_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("x.toml");
    std::fs::write(&p, "[[bridge]]\nname = \"br0\"\nfail_mode = \"open\"\n").unwrap();
    let e = Config::load(&p).unwrap_err();
    assert_eq!(e.line(), Some(3));
    let text = e.to_string();
    assert!(text.starts_with(&format!("{}:3:", p.display())), "{text}");
    assert!(text.contains("unknown variant `open`"), "{text}");
}
