//! `tnl/ports/show`, `tnl/neigh/show` and `tnl/neigh/flush`: the native tunnel state of
//! each datapath's backer (only the userspace datapath builds tunnel headers itself, but
//! every backer keeps the tunnel ports it was given).

use std::sync::Arc;

use crate::appctl::CommandRegistry;
use crate::ofproto::tunnel::TunnelState;

use super::switch::Switch;

fn states(switch: &Switch) -> Vec<Arc<TunnelState>> {
    switch
        .lock()
        .datapaths
        .values()
        .map(|d| d.backer.tunnels().clone())
        .collect()
}

/// Registers the tunnel commands.
pub(super) fn register(registry: &mut CommandRegistry, switch: &Arc<Switch>) {
    let s = switch.clone();
    registry.register("tnl/ports/show", "", 0, 0, move |_| {
        let mut out = String::new();
        for t in states(&s) {
            out.push_str(&t.ports_show());
        }
        Ok(out)
    });
    let s = switch.clone();
    registry.register("tnl/neigh/show", "", 0, 0, move |_| {
        let mut out = String::new();
        for (i, t) in states(&s).iter().enumerate() {
            let text = t.neigh.show();
            // One header for all datapaths.
            let body = if i == 0 {
                text.as_str()
            } else {
                text.split_once("\n")
                    .map_or("", |x| x.1)
                    .split_once('\n')
                    .map_or("", |x| x.1)
            };
            out.push_str(body);
        }
        Ok(out)
    });
    let s = switch.clone();
    // Also forgets cached underlay routes (after readdressing the underlay), then
    // revalidates so installed tunnel flows are rebuilt at once.
    registry.register("tnl/neigh/flush", "", 0, 0, move |_| {
        for b in s.backers() {
            b.tunnels().flush();
            b.revalidate_all();
        }
        Ok("OK\n".to_string())
    });
}
