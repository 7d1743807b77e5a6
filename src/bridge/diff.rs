//! What changes between two configs, in the order it must be applied (OVS's
//! bridge_reconfigure: delete what is gone first, then add what is new, so a port that
//! moves between bridges or changes type is freed before it is re-created).

use crate::config::{BridgeConfig, Config, PortConfig};

/// One step of a reconfiguration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Remove a port from a bridge (and from its datapath).
    DelPort {
        /// Bridge.
        bridge: String,
        /// Port.
        port: String,
    },
    /// Remove a bridge with everything on it.
    DelBridge {
        /// Bridge.
        bridge: String,
    },
    /// Create a bridge (without its ports; they follow as `AddPort`).
    AddBridge {
        /// The bridge's settings.
        bridge: BridgeConfig,
    },
    /// Apply changed bridge-wide settings (fail mode, multicast snooping) in place.
    UpdateBridge {
        /// The bridge's new settings.
        bridge: BridgeConfig,
    },
    /// Add a port to a bridge.
    AddPort {
        /// Bridge.
        bridge: String,
        /// The port.
        port: PortConfig,
    },
    /// Replace the bridge's static flows.
    SetFlows {
        /// Bridge.
        bridge: String,
        /// Flows in ovs-ofctl syntax.
        flows: Vec<String>,
    },
}

/// The steps that turn `old` into `new`. Bridges and ports are matched by name; a port
/// whose settings changed is deleted and re-added; a bridge whose datapath type changed is
/// re-created.
pub fn plan(old: &Config, new: &Config) -> Vec<Step> {
    let mut dels = Vec::new();
    let mut adds = Vec::new();
    for ob in &old.bridges {
        match new.bridge(&ob.name) {
            Some(nb) if nb.datapath == ob.datapath => {
                for op in &ob.ports {
                    if nb.ports.iter().all(|np| np != op) {
                        dels.push(Step::DelPort {
                            bridge: ob.name.clone(),
                            port: op.name.clone(),
                        });
                    }
                }
            }
            _ => dels.push(Step::DelBridge {
                bridge: ob.name.clone(),
            }),
        }
    }
    for nb in &new.bridges {
        let old_bridge = old.bridge(&nb.name).filter(|ob| ob.datapath == nb.datapath);
        match old_bridge {
            None => {
                adds.push(Step::AddBridge {
                    bridge: BridgeConfig {
                        ports: Vec::new(),
                        ..nb.clone()
                    },
                });
                adds.extend(nb.ports.iter().map(|p| Step::AddPort {
                    bridge: nb.name.clone(),
                    port: p.clone(),
                }));
                if !nb.flows.is_empty() {
                    adds.push(Step::SetFlows {
                        bridge: nb.name.clone(),
                        flows: nb.flows.clone(),
                    });
                }
            }
            Some(ob) => {
                if ob.fail_mode != nb.fail_mode || ob.mcast_snooping != nb.mcast_snooping {
                    adds.push(Step::UpdateBridge {
                        bridge: BridgeConfig {
                            ports: Vec::new(),
                            ..nb.clone()
                        },
                    });
                }
                for np in &nb.ports {
                    if ob.ports.iter().all(|op| op != np) {
                        adds.push(Step::AddPort {
                            bridge: nb.name.clone(),
                            port: np.clone(),
                        });
                    }
                }
                if ob.flows != nb.flows {
                    adds.push(Step::SetFlows {
                        bridge: nb.name.clone(),
                        flows: nb.flows.clone(),
                    });
                }
            }
        }
    }
    dels.extend(adds);
    dels
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(text: &str) -> Config {
        Config::parse(text, None).unwrap()
    }

    const BASE: &str = r#"
[[bridge]]
name = "b1"
[[bridge.port]]
name = "p1"
type = "dummy"
[[bridge.port]]
name = "p2"
type = "dummy"
"#;

    #[test]
    fn from_empty_adds_bridge_then_ports() {
        let steps = plan(&cfg(""), &cfg(BASE));
        assert_eq!(steps.len(), 3);
        assert!(
            matches!(&steps[0], Step::AddBridge { bridge } if bridge.name == "b1" && bridge.ports.is_empty())
        );
        assert!(matches!(&steps[1], Step::AddPort { port, .. } if port.name == "p1"));
        assert!(matches!(&steps[2], Step::AddPort { port, .. } if port.name == "p2"));
    }

    #[test]
    fn identical_configs_need_nothing() {
        assert!(plan(&cfg(BASE), &cfg(BASE)).is_empty());
    }

    #[test]
    fn changed_port_is_deleted_before_readded_and_moves_work() {
        let new = r#"
[[bridge]]
name = "b1"
[[bridge.port]]
name = "p1"
type = "dummy"
tag = 5
[[bridge]]
name = "b2"
[[bridge.port]]
name = "p2"
type = "dummy"
"#;
        let steps = plan(&cfg(BASE), &cfg(new));
        assert_eq!(
            steps,
            vec![
                Step::DelPort {
                    bridge: "b1".into(),
                    port: "p1".into()
                },
                Step::DelPort {
                    bridge: "b1".into(),
                    port: "p2".into()
                },
                Step::AddPort {
                    bridge: "b1".into(),
                    port: cfg(new).bridges[0].ports[0].clone()
                },
                Step::AddBridge {
                    bridge: BridgeConfig {
                        ports: vec![],
                        ..cfg(new).bridges[1].clone()
                    }
                },
                Step::AddPort {
                    bridge: "b2".into(),
                    port: cfg(new).bridges[1].ports[0].clone()
                },
            ]
        );
    }

    #[test]
    fn removed_bridge_and_changed_settings() {
        let two = format!("{BASE}\n[[bridge]]\nname = \"b2\"\n");
        let steps = plan(&cfg(&two), &cfg(BASE));
        assert_eq!(
            steps,
            vec![Step::DelBridge {
                bridge: "b2".into()
            }]
        );
        let secure = BASE.replace(
            "name = \"b1\"",
            "name = \"b1\"\nfail_mode = \"secure\"\nflows = [\"actions=drop\"]",
        );
        let steps = plan(&cfg(BASE), &cfg(&secure));
        assert!(
            matches!(&steps[0], Step::UpdateBridge { bridge } if bridge.fail_mode == crate::config::FailMode::Secure)
        );
        assert_eq!(
            steps[1],
            Step::SetFlows {
                bridge: "b1".into(),
                flows: vec!["actions=drop".into()]
            }
        );
    }
}
