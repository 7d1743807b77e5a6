//! Tunnel vports (vxlan, geneve, gre) of the userspace datapath.
//!
//! A tunnel port has no device and no queues: packets reach it only as the result of a
//! `tnl_pop` (they recirculate with `in_port` = the tunnel port) and leave it only through
//! a `tnl_push` that the translator built for the underlay port. The vport exists so that
//! the datapath has a port number, a name and counters for the tunnel, and so that its
//! type tells `tnl_pop` which header to expect on a non-standard UDP port.

use crate::dpif::{PortSpec, PortStats, TunnelType};
use crate::netdev::{Netdev, NetdevError, Rxq, Txq};
use crate::packet::{PacketBatch, PacketPool};

/// The tunnel type a port type names, if it is a tunnel.
pub fn tunnel_type_of(port_type: &str) -> Option<TunnelType> {
    match port_type {
        "vxlan" => Some(TunnelType::Vxlan),
        "geneve" => Some(TunnelType::Geneve),
        "gre" => Some(TunnelType::Gre),
        _ => None,
    }
}

/// A queue-less tunnel port.
pub struct TunnelVport {
    name: String,
    kind: TunnelType,
}

impl TunnelVport {
    /// Creates the vport for a `vxlan`, `geneve` or `gre` spec.
    pub fn open(spec: &PortSpec) -> Result<Self, NetdevError> {
        let kind = tunnel_type_of(&spec.port_type)
            .ok_or_else(|| NetdevError::UnknownType(spec.port_type.clone()))?;
        Ok(TunnelVport {
            name: spec.name.clone(),
            kind,
        })
    }

    /// The encapsulation this vport decapsulates.
    pub fn tunnel_type(&self) -> TunnelType {
        self.kind
    }
}

/// Transmit handle of a tunnel vport: a plain output to a tunnel port (rather than a
/// `tnl_push`) has no underlay to go to, so the packets are dropped and counted by the
/// caller through the return value.
struct DiscardTxq;

impl Txq for DiscardTxq {
    fn send(&mut self, batch: &mut PacketBatch, pool: &mut PacketPool) -> usize {
        for p in batch.pkts.drain(..) {
            pool.put(p);
        }
        0
    }
    fn flush(&mut self) {}
}

impl Netdev for TunnelVport {
    fn name(&self) -> &str {
        &self.name
    }
    fn netdev_type(&self) -> &'static str {
        match self.kind {
            TunnelType::Vxlan => "vxlan",
            TunnelType::Geneve => "geneve",
            TunnelType::Gre => "gre",
        }
    }
    fn n_rxq(&self) -> usize {
        0
    }
    fn open_rxq(&self, qid: usize) -> Result<Box<dyn Rxq>, NetdevError> {
        Err(NetdevError::NoSuchQueue { qid, n: 0 })
    }
    fn open_txq(&self, _thread_idx: usize) -> Result<Box<dyn Txq>, NetdevError> {
        Ok(Box::new(DiscardTxq))
    }
    fn pollable(&self) -> bool {
        false
    }
    fn mac(&self) -> [u8; 6] {
        [0; 6]
    }
    fn mtu(&self) -> u32 {
        // The overlay MTU is bounded by the underlay's, which the datapath checks per
        // packet on tnl_push; the vport itself imposes none.
        u32::MAX
    }
    fn is_up(&self) -> bool {
        true
    }
    fn stats(&self) -> PortStats {
        PortStats::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vport_types_and_no_queues() {
        let spec = PortSpec {
            name: "vx0".into(),
            port_type: "geneve".into(),
            options: Default::default(),
        };
        let v = TunnelVport::open(&spec).unwrap();
        assert_eq!(v.tunnel_type(), TunnelType::Geneve);
        assert_eq!(v.netdev_type(), "geneve");
        assert_eq!(v.n_rxq(), 0);
        assert!(v.open_rxq(0).is_err());
        let bad = PortSpec {
            port_type: "ipip".into(),
            ..spec
        };
        assert!(matches!(
            TunnelVport::open(&bad),
            Err(NetdevError::UnknownType(t)) if t == "ipip"
        ));
    }
}
