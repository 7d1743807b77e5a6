//! The MAC table's control commands (`fdb/*`): what NORMAL learned, what it has done
//! since the counters were cleared, and the addresses an operator pins to a port.

use super::flow_syntax::{parse_mac, parse_uint};
use super::{read, show, Ofproto, OfprotoError};

impl Ofproto {
    /// `fdb/show` output.
    pub fn fdb_show(&self) -> String {
        show::fdb_show(&self.fdb(), self.now())
    }

    /// `fdb/flush`: forgets every learned MAC, keeping pinned ones (megaflows follow at
    /// the next revalidation).
    pub fn fdb_flush(&self) {
        self.fdb().flush();
    }

    /// `fdb/stats-show` output: the table's size and what learning has done to it.
    pub fn fdb_stats_show(&self) -> String {
        show::fdb_stats_show(self.name(), &self.fdb())
    }

    /// `fdb/stats-clear`: zeroes the fdb's counters, keeping its entries.
    pub fn fdb_stats_clear(&self) {
        self.fdb().clear_stats();
    }

    /// `fdb/add PORT VLAN MAC`: pins `MAC` in `VLAN` to `PORT`, so that NORMAL forwards
    /// to it without having learned it and never moves or ages it. Arguments arrive as
    /// typed and are checked here, so each mistake is named.
    pub fn fdb_add(&self, port: &str, vlan: &str, mac: &str) -> Result<(), OfprotoError> {
        let vlan = parse_uint("VLAN", vlan, 4095, "a VLAN id from 0 to 4095")? as u16;
        let mac = parse_mac("MAC", mac)?;
        let of = self.ofport_named(&read(&self.ports), port)?;
        let now = self.now();
        self.fdb()
            .add_static(mac, vlan, of, now)
            .map_err(|source| self.static_entry_error(source))
    }

    /// `fdb/del VLAN MAC`: unpins what `fdb/add` pinned.
    pub fn fdb_del(&self, vlan: &str, mac: &str) -> Result<(), OfprotoError> {
        let vlan = parse_uint("VLAN", vlan, 4095, "a VLAN id from 0 to 4095")? as u16;
        let mac = parse_mac("MAC", mac)?;
        self.fdb()
            .del_static(mac, vlan)
            .map_err(|source| self.static_entry_error(source))
    }

    fn static_entry_error(&self, source: super::mac_learning::StaticEntryError) -> OfprotoError {
        OfprotoError::StaticEntry {
            bridge: self.name().to_string(),
            source,
        }
    }
}
