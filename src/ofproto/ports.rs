//! A bridge's ports: OpenFlow numbers, datapath numbers, names and VLAN configuration.
//!
//! VLAN modes follow OVS's `vlan_mode` column: a packet arriving on an access port is in
//! the port's `tag` VLAN (tagged packets other than priority tags are dropped); on a trunk
//! it is in the VLAN of its 802.1Q header, or VLAN 0 when untagged; on native-tagged /
//! native-untagged ports untagged packets belong to `tag` and tagged ones to their VID.
//! An empty `trunks` list means every VLAN.

use std::collections::{BTreeMap, HashMap};

use super::rule::{ofp_port, OfPort};
use crate::packet::OdpPort;

/// How a port treats 802.1Q tags (OVS's `vlan_mode`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum VlanMode {
    /// Untagged member of one VLAN (`tag`).
    Access,
    /// Carries the VLANs in `trunks` tagged; untagged packets are VLAN 0.
    #[default]
    Trunk,
    /// Like trunk, plus untagged packets belong to `tag`, which is sent tagged.
    NativeTagged,
    /// Like trunk, plus untagged packets belong to `tag`, which is sent untagged.
    NativeUntagged,
}

/// A port's configuration as NORMAL sees it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PortConfig {
    /// VLAN mode.
    pub vlan_mode: VlanMode,
    /// Access / native VLAN.
    pub tag: Option<u16>,
    /// VLANs carried tagged (empty: all).
    pub trunks: Vec<u16>,
    /// Send all multicast to this port even when snooping says otherwise
    /// (OVS's `mcast-snooping-flood`).
    pub mcast_flood: bool,
    /// Send IGMP/MLD reports to this port (OVS's `mcast-snooping-flood-reports`).
    pub mcast_flood_reports: bool,
}

/// Where a packet sits after input VLAN processing.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct InputVlan {
    /// The VLAN the packet belongs to.
    pub vlan: u16,
    /// Whether the outer tag was consumed (it named the VLAN, or was a priority tag).
    pub consumed_tag: bool,
}

impl PortConfig {
    fn trunks_carry(&self, vlan: u16) -> bool {
        self.trunks.is_empty() || self.trunks.contains(&vlan)
    }

    /// The VLAN of a packet arriving with outer tag `vid` (`None`: untagged), or `None`
    /// if the port does not admit it.
    pub fn input_vlan(&self, vid: Option<u16>) -> Option<InputVlan> {
        let tag = self.tag.unwrap_or(0);
        match (self.vlan_mode, vid) {
            (VlanMode::Access, None) => Some(InputVlan {
                vlan: tag,
                consumed_tag: false,
            }),
            (VlanMode::Access, Some(0)) => Some(InputVlan {
                vlan: tag,
                consumed_tag: true,
            }),
            (VlanMode::Access, Some(_)) => None,
            (VlanMode::Trunk, None) => self.trunks_carry(0).then_some(InputVlan {
                vlan: 0,
                consumed_tag: false,
            }),
            (VlanMode::Trunk, Some(v)) => self.trunks_carry(v).then_some(InputVlan {
                vlan: v,
                consumed_tag: true,
            }),
            (_, None) => Some(InputVlan {
                vlan: tag,
                consumed_tag: false,
            }),
            (_, Some(0)) => Some(InputVlan {
                vlan: tag,
                consumed_tag: true,
            }),
            (_, Some(v)) => (v == tag || self.trunks_carry(v)).then_some(InputVlan {
                vlan: v,
                consumed_tag: true,
            }),
        }
    }

    /// How `vlan` leaves this port: `None` if the port is not in it, `Some(None)`
    /// untagged, `Some(Some(vid))` tagged.
    pub fn output_tag(&self, vlan: u16) -> Option<Option<u16>> {
        let tag = self.tag.unwrap_or(0);
        let tagged = |v: u16| if v == 0 { None } else { Some(v) };
        match self.vlan_mode {
            VlanMode::Access => (vlan == tag).then_some(None),
            VlanMode::Trunk => self.trunks_carry(vlan).then_some(tagged(vlan)),
            VlanMode::NativeTagged if vlan == tag => Some(tagged(vlan)),
            VlanMode::NativeUntagged if vlan == tag => Some(None),
            _ => self.trunks_carry(vlan).then_some(tagged(vlan)),
        }
    }
}

/// One port of a bridge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct BridgePort {
    /// OpenFlow port number.
    pub ofport: OfPort,
    /// Interface name.
    pub name: String,
    /// Datapath port number.
    pub dp_port: OdpPort,
    /// VLAN and multicast settings.
    pub config: PortConfig,
}

/// The port map of a bridge, both directions.
#[derive(Clone, Debug, Default)]
pub struct PortMap {
    by_of: BTreeMap<OfPort, BridgePort>,
    by_dp: HashMap<OdpPort, OfPort>,
}

impl PortMap {
    /// Port by OpenFlow number.
    pub fn get(&self, ofport: OfPort) -> Option<&BridgePort> {
        self.by_of.get(&ofport)
    }

    /// OpenFlow number of a datapath port.
    pub fn ofport_of(&self, dp: OdpPort) -> Option<OfPort> {
        self.by_dp.get(&dp).copied()
    }

    /// Port by name.
    pub fn by_name(&self, name: &str) -> Option<&BridgePort> {
        self.by_of.values().find(|p| p.name == name)
    }

    /// All ports in OpenFlow number order.
    pub fn iter(&self) -> impl Iterator<Item = &BridgePort> {
        self.by_of.values()
    }

    /// The lowest free OpenFlow number from 1 up.
    pub fn free_ofport(&self) -> Option<OfPort> {
        (1..ofp_port::MAX).find(|p| !self.by_of.contains_key(p))
    }

    /// Inserts a port (caller checked for clashes).
    pub fn insert(&mut self, port: BridgePort) {
        self.by_dp.insert(port.dp_port, port.ofport);
        self.by_of.insert(port.ofport, port);
    }

    /// Removes a port by OpenFlow number.
    pub fn remove(&mut self, ofport: OfPort) -> Option<BridgePort> {
        let p = self.by_of.remove(&ofport)?;
        self.by_dp.remove(&p.dp_port);
        Some(p)
    }

    /// Mutable access by OpenFlow number.
    pub fn get_mut(&mut self, ofport: OfPort) -> Option<&mut BridgePort> {
        self.by_of.get_mut(&ofport)
    }

    /// Number of ports.
    pub fn len(&self) -> usize {
        self.by_of.len()
    }

    /// Whether there are no ports.
    pub fn is_empty(&self) -> bool {
        self.by_of.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vlan_modes() {
        let access = PortConfig {
            vlan_mode: VlanMode::Access,
            tag: Some(10),
            ..Default::default()
        };
        assert_eq!(access.input_vlan(None).unwrap().vlan, 10);
        assert!(access.input_vlan(Some(20)).is_none());
        assert!(access.input_vlan(Some(0)).unwrap().consumed_tag);
        assert_eq!(access.output_tag(10), Some(None));
        assert_eq!(access.output_tag(20), None);

        let trunk = PortConfig {
            trunks: vec![10, 20],
            ..Default::default()
        };
        assert_eq!(trunk.input_vlan(Some(20)).unwrap().vlan, 20);
        assert!(trunk.input_vlan(Some(30)).is_none());
        assert!(trunk.input_vlan(None).is_none(), "VLAN 0 not in trunks");
        assert_eq!(trunk.output_tag(10), Some(Some(10)));

        let all = PortConfig::default();
        assert_eq!(all.input_vlan(None).unwrap().vlan, 0);
        assert_eq!(all.output_tag(0), Some(None));
        assert_eq!(all.output_tag(4000), Some(Some(4000)));

        let nt = PortConfig {
            vlan_mode: VlanMode::NativeTagged,
            tag: Some(5),
            trunks: vec![7],
            ..Default::default()
        };
        assert_eq!(nt.input_vlan(None).unwrap().vlan, 5);
        assert_eq!(nt.input_vlan(Some(7)).unwrap().vlan, 7);
        assert_eq!(nt.output_tag(5), Some(Some(5)));
        let nu = PortConfig {
            vlan_mode: VlanMode::NativeUntagged,
            ..nt.clone()
        };
        assert_eq!(nu.output_tag(5), Some(None));
        assert_eq!(nu.output_tag(7), Some(Some(7)));
        assert_eq!(nu.output_tag(8), None);
    }
}
