//! Reloading switch.toml into a running switch (SIGHUP or `rvswitch-appctl reload`).
//!
//! A reload builds what a restart would: the file's bridges and ports with the
//! runtime-change journal (state.json) replayed on top, and applies it as one diff, so a
//! port whose settings did not change is not touched (no XDP re-attach, no lost frames).
//! Of the `[global]` settings, the EMC insertion probability and the tx flush interval
//! change live (as OVS's other_config does); the others (PMD cores, run directory, flow
//! limit, ...) are fixed when the daemon starts: a reload reports the ones that differ and
//! keeps the running values.

use super::diff::{plan, Step};
use super::state::RuntimeChange;
use super::switch::{changed_config, Switch, SwitchError};
use crate::config::{Config, DatapathType, GlobalConfig};
use crate::dpif_netdev::DpifNetdev;

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct ReloadReport {
    /// One line per applied step ("add port p2 to br0"); empty when nothing changed.
    pub steps: Vec<String>,
    /// `[global]` settings changed live, as `key = value`.
    pub global_applied: Vec<String>,
    /// `[global]` keys whose new value needs a restart to take effect.
    pub needs_restart: Vec<&'static str>,
    /// Runtime changes from the journal that no longer apply to the new file (dropped
    /// from the journal), with the reason.
    pub dropped: Vec<String>,
}

impl std::fmt::Display for ReloadReport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.steps.is_empty() {
            writeln!(f, "configuration reloaded: nothing changed")?;
        } else {
            writeln!(f, "configuration reloaded: {} change(s)", self.steps.len())?;
            for s in &self.steps {
                writeln!(f, "  {s}")?;
            }
        }
        for d in &self.dropped {
            writeln!(f, "dropped runtime change: {d}")?;
        }
        for g in &self.global_applied {
            writeln!(f, "applied: [global] {g}")?;
        }
        if !self.needs_restart.is_empty() {
            writeln!(
                f,
                "not applied until restart: [global] {}",
                self.needs_restart.join(", ")
            )?;
        }
        Ok(())
    }
}

/// The `[global]` keys that differ.
fn global_differences(old: &GlobalConfig, new: &GlobalConfig) -> Vec<&'static str> {
    // Destructured so that a new `[global]` key fails to compile here until it is listed.
    let GlobalConfig {
        pmd_cores,
        run_dir,
        log_level,
        emc_insert_inv_prob,
        emc_auto_bypass,
        max_flows,
        rxq_assign,
        tx_flush_interval_us,
        pmd_max_sleep_us,
        pmd_batch_wait_us,
        afxdp_frames,
    } = old;
    [
        ("pmd_cores", *pmd_cores != new.pmd_cores),
        ("run_dir", *run_dir != new.run_dir),
        ("log_level", *log_level != new.log_level),
        (
            "emc_insert_inv_prob",
            *emc_insert_inv_prob != new.emc_insert_inv_prob,
        ),
        ("emc_auto_bypass", *emc_auto_bypass != new.emc_auto_bypass),
        ("max_flows", *max_flows != new.max_flows),
        ("rxq_assign", *rxq_assign != new.rxq_assign),
        (
            "tx_flush_interval_us",
            *tx_flush_interval_us != new.tx_flush_interval_us,
        ),
        (
            "pmd_max_sleep_us",
            *pmd_max_sleep_us != new.pmd_max_sleep_us,
        ),
        (
            "pmd_batch_wait_us",
            *pmd_batch_wait_us != new.pmd_batch_wait_us,
        ),
        ("afxdp_frames", *afxdp_frames != new.afxdp_frames),
    ]
    .into_iter()
    .filter_map(|(key, differs)| differs.then_some(key))
    .collect()
}

/// Applies `[global]` key `key` from `new` to the running settings and the userspace
/// datapath if it can change live; `None` if it needs a restart.
fn apply_live(
    key: &str,
    new: &GlobalConfig,
    running: &mut GlobalConfig,
    dp: Option<&DpifNetdev>,
) -> Option<String> {
    match key {
        "emc_insert_inv_prob" => {
            running.emc_insert_inv_prob = new.emc_insert_inv_prob;
            dp.inspect(|d| d.set_emc_insert_inv_prob(new.emc_insert_inv_prob));
            Some(format!("{key} = {}", new.emc_insert_inv_prob))
        }
        "emc_auto_bypass" => {
            running.emc_auto_bypass = new.emc_auto_bypass;
            dp.inspect(|d| d.set_emc_auto_bypass(new.emc_auto_bypass));
            Some(format!("{key} = {}", new.emc_auto_bypass))
        }
        "tx_flush_interval_us" => {
            running.tx_flush_interval_us = new.tx_flush_interval_us;
            dp.inspect(|d| d.set_tx_flush_interval_us(new.tx_flush_interval_us));
            Some(format!("{key} = {}", new.tx_flush_interval_us))
        }
        "pmd_max_sleep_us" => {
            running.pmd_max_sleep_us = new.pmd_max_sleep_us;
            dp.inspect(|d| d.set_pmd_idle(new.pmd_max_sleep_us, running.pmd_batch_wait_us));
            Some(format!("{key} = {}", new.pmd_max_sleep_us))
        }
        "pmd_batch_wait_us" => {
            running.pmd_batch_wait_us = new.pmd_batch_wait_us;
            dp.inspect(|d| d.set_pmd_idle(running.pmd_max_sleep_us, new.pmd_batch_wait_us));
            Some(format!("{key} = {}", new.pmd_batch_wait_us))
        }
        _ => None,
    }
}

fn describe(step: &Step) -> String {
    match step {
        Step::DelPort { bridge, port } => format!("remove port {port} from {bridge}"),
        Step::DelBridge { bridge } => format!("remove bridge {bridge}"),
        Step::AddBridge { bridge } => format!("add bridge {}", bridge.name),
        Step::UpdateBridge { bridge } => format!("update bridge {} settings", bridge.name),
        Step::AddPort { bridge, port } => format!("add port {} to {bridge}", port.name),
        Step::SetFlows { bridge, flows } => {
            format!(
                "replace the static flows of {bridge} ({} flows)",
                flows.len()
            )
        }
    }
}

fn describe_change(c: &RuntimeChange) -> String {
    serde_json::to_string(c).unwrap_or_else(|_| format!("{c:?}"))
}

impl Switch {
    /// Moves the running switch to what a restart with `file` would build (see the module
    /// docs). Steps that fail are reported together, as in `reconfigure`; what succeeded
    /// stays applied.
    pub fn reload(&self, file: Config) -> Result<ReloadReport, SwitchError> {
        let mut inner = self.lock();
        let mut report = ReloadReport::default();
        let mut global = inner.config.global.clone();
        let netdev = inner
            .datapaths
            .get(&DatapathType::Netdev)
            .and_then(|d| d.netdev.clone());
        for key in global_differences(&global, &file.global) {
            match apply_live(key, &file.global, &mut global, netdev.as_deref()) {
                Some(applied) => report.global_applied.push(applied),
                None => report.needs_restart.push(key),
            }
        }
        // A datapath created by this reload starts with the live values too.
        inner.config.global = global.clone();
        let mut target = Config {
            global,
            bridges: file.bridges,
        };
        let changes = inner
            .state
            .as_ref()
            .map(|s| s.changes().to_vec())
            .unwrap_or_default();
        let mut kept = Vec::new();
        let mut flow_changes = Vec::new();
        for c in changes {
            match changed_config(&target, &c) {
                Ok(Some(next)) => {
                    target = next;
                    kept.push(c);
                }
                Ok(None) => flow_changes.push(c),
                Err(e) => report.dropped.push(format!("{}: {e}", describe_change(&c))),
            }
        }
        report.steps = plan(&inner.config, &target).iter().map(describe).collect();
        let result = inner.reconfigure(target);
        // Runtime flows go back on top (a bridge whose static flows were replaced lost
        // them; re-adding an existing flow is a no-op, as ovs-ofctl add-flow is).
        for c in flow_changes {
            match inner.apply_flow_change(&c) {
                Ok(()) => kept.push(c),
                Err(e) => report.dropped.push(format!("{}: {e}", describe_change(&c))),
            }
        }
        if !report.dropped.is_empty() {
            // Keep the journal's order: bridge/port changes were replayed first, then
            // flows, which is also how a restart replays them.
            if let Some(state) = inner.state.as_mut() {
                state.replace(kept)?;
            }
        }
        for line in report.to_string().lines() {
            tracing::info!("{line}");
        }
        result.map(|()| report)
    }
}
