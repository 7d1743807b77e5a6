//! The datapath state one poll thread owns outright: EMC, per-in_port dpcls, megaflow
//! table, tx queues, buffer pool, upcall limiter, and the batch pipeline that ties them
//! together (parse -> EMC -> dpcls -> upcall -> grouped execution; see `execute.rs`).
//!
//! Nothing here is shared with another thread except the counters (single-writer relaxed
//! atomics) and the `Arc`ed actions of megaflows (read-only once installed). The control
//! plane reaches this state only through `DpCtl` messages the poll loop hands to
//! `handle_ctl` between batches.

use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Sender;

use super::dpcls::Dpcls;
use super::emc::{Emc, XorShift32};
use super::emc_bypass::EmcBypass;
use super::flow_table::{normalize_mask, FlowRef, FlowTable, InsertError};
pub use super::tunnel_exec::TxPortInfo;
use super::upcall_limit::TokenBucket;
use crate::dpif::{
    DpAction, DpActions, DpFlow, DpFlowStats, DpifError, FlowPut, FlowPutMode, UpcallHandler,
};
use crate::netdev::Txq;
use crate::packet::{FlowKey, FlowMask, OdpPort, PacketBatch, PacketMeta, PacketPool, MAX_BURST};
use crate::pmd::{PmdCounters, PollWork};

/// How often subtables are re-ranked by hits (OVS: every second).
pub const SUBTABLE_SORT_INTERVAL: Duration = Duration::from_secs(1);

/// Settings a `PmdDatapath` is built with.
#[derive(Clone, Debug)]
pub struct PmdDatapathConfig {
    /// Inverse EMC insertion probability (1 = always, 0 = EMC off).
    pub emc_insert_inv_prob: u32,
    /// Time EMC lookups against the dpcls alone and bypass the EMC while that is
    /// cheaper (`EmcBypass`).
    pub emc_auto_bypass: bool,
    /// Bound on megaflows.
    pub max_flows: usize,
    /// Sustained upcalls per second (0 = unlimited).
    pub upcall_rate: u32,
    /// Upcall burst.
    pub upcall_burst: u32,
    /// Packet buffers preallocated for this thread.
    pub pool_size: usize,
    /// Maximum recirculation depth before packets are dropped (OVS: 6).
    pub max_recirc_depth: u32,
    /// How long output packets may wait for more to join their batch, in microseconds
    /// (PMD threads only; the non-PMD thread sleeps when idle, so it always flushes).
    pub tx_flush_interval_us: u32,
}

impl Default for PmdDatapathConfig {
    /// The daemon's defaults (`DpNetdevConfig::default`), so that a test or bench states
    /// only what it depends on.
    fn default() -> Self {
        PmdDatapathConfig {
            emc_insert_inv_prob: super::emc::DEFAULT_EMC_INSERT_INV_PROB,
            emc_auto_bypass: true,
            max_flows: super::DEFAULT_MAX_FLOWS,
            upcall_rate: super::upcall_limit::DEFAULT_UPCALL_RATE,
            upcall_burst: super::upcall_limit::DEFAULT_UPCALL_BURST,
            pool_size: 2048,
            max_recirc_depth: 6,
            tx_flush_interval_us: 0,
        }
    }
}

/// Control messages for one thread's datapath state.
pub enum DpCtl {
    /// Install or modify a megaflow.
    FlowPut {
        /// The request.
        put: FlowPut,
        /// Result.
        reply: Sender<Result<(), DpifError>>,
    },
    /// Fetch a megaflow.
    FlowGet {
        /// Key.
        key: FlowKey,
        /// Mask.
        mask: FlowMask,
        /// The flow if present.
        reply: Sender<Option<DpFlow>>,
    },
    /// Delete a megaflow.
    FlowDel {
        /// Key.
        key: FlowKey,
        /// Mask.
        mask: FlowMask,
        /// Final counters if it existed.
        reply: Sender<Option<DpFlowStats>>,
    },
    /// Every megaflow.
    FlowDump(Sender<Vec<DpFlow>>),
    /// Delete every megaflow.
    FlowFlush(Sender<()>),
    /// Start sending to `port` through `txq`.
    AddTxPort {
        /// Port.
        port: OdpPort,
        /// This thread's tx handle on the device.
        txq: Box<dyn Txq>,
        /// The port's MTU and tunnel type, for `tnl_push` / `tnl_pop`.
        info: TxPortInfo,
    },
    /// Register the translator.
    SetUpcallHandler(Arc<dyn UpcallHandler>),
    /// Change the EMC insertion probability.
    SetEmcInsertInvProb(u32),
    /// Turn the EMC bypass trials on or off.
    SetEmcAutoBypass(bool),
    /// Change the output batching interval, in microseconds.
    SetTxFlushIntervalUs(u32),
    /// Execute actions on one packet (the control plane's `Dpif::execute`).
    Execute {
        /// Frame bytes.
        packet: Vec<u8>,
        /// Metadata (in_port etc.).
        meta: PacketMeta,
        /// Actions.
        actions: Vec<DpAction>,
        /// Done.
        reply: Sender<()>,
    },
}

pub(super) struct TxPort {
    pub(super) port: OdpPort,
    pub(super) txq: Box<dyn Txq>,
    pub(super) pending: PacketBatch,
    pub(super) dirty: bool,
    /// TSC value by which `pending` must be sent (set when its first packet arrives).
    pub(super) deadline: u64,
    pub(super) info: TxPortInfo,
}

/// What a packet of the current batch goes through.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub(super) enum Disposition {
    /// A megaflow's actions.
    Flow(FlowRef),
    /// One-off actions from an upcall that installed nothing (index into `adhoc`).
    Adhoc(u8),
    /// Dropped (failed or rate-limited upcall); already counted.
    Drop,
}

/// The packets of one batch that share a disposition, with their summed counters, so a
/// flow's stats and actions are touched once per batch rather than once per packet.
pub(super) struct PacketGroup {
    pub(super) disp: Disposition,
    pub(super) batch: PacketBatch,
    pub(super) bytes: u64,
    pub(super) tcp_flags: u16,
}

/// One thread's datapath: see the module docs.
pub struct PmdDatapath {
    pub(super) core: Option<usize>,
    pub(super) flows: FlowTable,
    pub(super) emc: Emc,
    pub(super) emc_bypass: EmcBypass,
    pub(super) classifiers: Vec<(OdpPort, Dpcls)>,
    pub(super) tx_ports: Vec<TxPort>,
    pub(super) pool: PacketPool,
    pub(super) counters: Arc<PmdCounters>,
    pub(super) handler: Option<Arc<dyn UpcallHandler>>,
    pub(super) limiter: TokenBucket,
    pub(super) now: Instant,
    last_sort: Instant,
    /// TSC value after which `housekeeping` reads the clock again: reading it on every
    /// poll iteration cost ~10% of an idle-ish PMD's time; `now` at 1 ms granularity is
    /// enough for flow `used` times, the upcall limiter and the subtable re-ranking.
    next_clock_read: u64,
    /// The cycle counter as the poll loop read it at the start of this iteration
    /// (`begin_iteration`): the clock for output deadlines and housekeeping, at no cost
    /// of its own. Callers outside a poll loop (tests, the control plane's `Execute`)
    /// see the time of the last iteration, which only makes held output leave sooner.
    pub(super) tsc: u64,
    pub(super) rng: XorShift32,
    pub(super) max_recirc_depth: u32,
    /// `tx_flush_interval_us` in TSC cycles; 0: flush every iteration.
    pub(super) tx_flush_cycles: u64,
    // Scratch reused by every batch, so the pipeline allocates nothing.
    pub(super) keys: Box<[FlowKey; MAX_BURST]>,
    pub(super) hashes: [u32; MAX_BURST],
    pub(super) disp: [Disposition; MAX_BURST],
    pub(super) adhoc: Vec<DpActions>,
    pub(super) spare_batches: Vec<PacketBatch>,
    pub(super) spare_groups: Vec<Vec<PacketGroup>>,
    /// Whether the last install found the flow table full (logged once per episode:
    /// past `max_flows` every miss goes to the translator, which an operator must know).
    table_full: bool,
}

/// `us` in TSC cycles for a PMD thread; 0 (flush every iteration) for the non-PMD thread,
/// which sleeps when idle and so could not honour a deadline.
fn tx_flush_cycles(core: Option<usize>, us: u32) -> u64 {
    match core {
        Some(_) => crate::pmd::cycles::cycles_per_sec() * u64::from(us) / 1_000_000,
        None => 0,
    }
}

impl PmdDatapath {
    /// Fresh state for the thread on `core` (`None`: the non-PMD thread).
    pub fn new(core: Option<usize>, cfg: &PmdDatapathConfig, counters: Arc<PmdCounters>) -> Self {
        let seed = 0x5eed_0000 ^ core.map_or(0xffff, |c| c as u32);
        PmdDatapath {
            core,
            flows: FlowTable::new(cfg.max_flows),
            emc: Emc::new(cfg.emc_insert_inv_prob, seed),
            emc_bypass: EmcBypass::new(cfg.emc_auto_bypass),
            classifiers: Vec::new(),
            tx_ports: Vec::new(),
            pool: PacketPool::new(cfg.pool_size),
            counters,
            handler: None,
            limiter: TokenBucket::new(cfg.upcall_rate, cfg.upcall_burst),
            now: Instant::now(),
            last_sort: Instant::now(),
            next_clock_read: 0,
            tsc: 0,
            rng: XorShift32::new(seed.rotate_left(7)),
            max_recirc_depth: cfg.max_recirc_depth,
            tx_flush_cycles: tx_flush_cycles(core, cfg.tx_flush_interval_us),
            keys: Box::new([FlowKey::default(); MAX_BURST]),
            hashes: [0; MAX_BURST],
            disp: [Disposition::Drop; MAX_BURST],
            adhoc: Vec::new(),
            spare_batches: (0..8).map(|_| PacketBatch::new()).collect(),
            spare_groups: (0..4).map(|_| Vec::with_capacity(MAX_BURST)).collect(),
            table_full: false,
        }
    }

    /// The counters this state updates.
    pub fn counters(&self) -> &Arc<PmdCounters> {
        &self.counters
    }

    /// The core this state belongs to.
    pub fn core(&self) -> Option<usize> {
        self.core
    }

    /// Registers the translator (tests and benches that drive the state directly).
    pub fn set_upcall_handler(&mut self, h: Arc<dyn UpcallHandler>) {
        self.handler = Some(h);
    }

    /// Adds a tx queue for `port` (replacing any previous one).
    pub fn add_tx_port(&mut self, port: OdpPort, txq: Box<dyn Txq>) {
        self.add_tx_port_with(port, txq, TxPortInfo::default());
    }

    /// Adds a tx queue for `port` with its MTU and tunnel type (replacing any previous
    /// one).
    pub fn add_tx_port_with(&mut self, port: OdpPort, txq: Box<dyn Txq>, info: TxPortInfo) {
        self.remove_tx_port(port);
        self.tx_ports.push(TxPort {
            port,
            txq,
            pending: PacketBatch::new(),
            dirty: false,
            deadline: 0,
            info,
        });
    }

    fn remove_tx_port(&mut self, port: OdpPort) {
        if let Some(i) = self.tx_ports.iter().position(|t| t.port == port) {
            let mut t = self.tx_ports.swap_remove(i);
            for p in t.pending.pkts.drain(..) {
                self.pool.put(p);
            }
        }
    }

    /// Number of megaflows.
    pub fn n_flows(&self) -> usize {
        self.flows.len()
    }

    /// Number of EMC entries pointing at live flows (walks the cache).
    pub fn emc_live_entries(&self) -> usize {
        self.emc.live_entries(&self.flows)
    }

    pub(super) fn classifier_mut(&mut self, port: OdpPort) -> &mut Dpcls {
        let i = match self.classifiers.iter().position(|(p, _)| *p == port) {
            Some(i) => i,
            None => {
                self.classifiers.push((port, Dpcls::new()));
                self.classifiers.len() - 1
            }
        };
        &mut self.classifiers[i].1
    }

    pub(super) fn update_gauges(&self) {
        self.counters.n_flows.set(self.flows.len() as u64);
        let subtables: usize = self.classifiers.iter().map(|(_, c)| c.n_subtables()).sum();
        self.counters.n_subtables.set(subtables as u64);
    }

    /// The name of the thread that runs this datapath, as `top -H` shows it and log
    /// lines name it: `pmd-c<core>`, or `dp-main` for the ports no PMD polls.
    pub(super) fn thread_name(&self) -> String {
        self.core
            .map_or_else(|| "dp-main".to_string(), |c| format!("pmd-c{c}"))
    }

    /// Installs a megaflow (mask normalized here). Used by upcalls and `flow_put`.
    pub(super) fn install(
        &mut self,
        key: &FlowKey,
        mask: &FlowMask,
        actions: DpActions,
    ) -> Result<FlowRef, InsertError> {
        let mask = normalize_mask(mask);
        let r = match self.flows.insert(key, &mask, actions) {
            Ok(r) => r,
            Err(e) => {
                if let (InsertError::Full(max), false) = (&e, self.table_full) {
                    self.table_full = true;
                    tracing::warn!(
                        thread = %self.thread_name(),
                        max_flows = max,
                        "megaflow table full: misses are forwarded without installing \
                         megaflows until flows expire (raise max_flows if this persists)"
                    );
                }
                return Err(e);
            }
        };
        if self.table_full {
            self.table_full = false;
            tracing::info!(thread = %self.thread_name(), "megaflow table has room again");
        }
        let masked = key.masked(&mask);
        self.classifier_mut(key.in_port).insert(&masked, &mask, r);
        self.update_gauges();
        Ok(r)
    }

    fn remove(&mut self, r: FlowRef) -> Option<DpFlowStats> {
        let f = self.flows.remove(r)?;
        if let Some(i) = self
            .classifiers
            .iter()
            .position(|(p, _)| *p == f.key.in_port)
        {
            self.classifiers[i].1.remove(&f.key, &f.mask);
            if self.classifiers[i].1.is_empty() {
                self.classifiers.swap_remove(i);
            }
        }
        self.update_gauges();
        Some(f.stats.to_dp())
    }

    fn to_dp_flow(&self, r: FlowRef) -> Option<DpFlow> {
        let f = self.flows.get(r)?;
        Some(DpFlow {
            key: f.key,
            mask: f.mask,
            actions: f.actions.clone(),
            stats: f.stats.to_dp(),
            pmd_core: self.core,
        })
    }

    /// Applies a `FlowPut` to this thread's table.
    pub fn flow_put(&mut self, put: &FlowPut) -> Result<(), DpifError> {
        let mask = normalize_mask(&put.mask);
        match (self.flows.find(&put.key, &mask), put.mode) {
            (Some(_), FlowPutMode::Create) => Err(DpifError::FlowExists),
            (None, FlowPutMode::Modify) => Err(DpifError::NoSuchFlow),
            (Some(r), _) => {
                let f = self.flows.get_mut(r).expect("found above");
                f.actions = put.actions.clone();
                if put.clear_stats {
                    f.stats = Default::default();
                }
                Ok(())
            }
            (None, _) => match self.install(&put.key, &mask, put.actions.clone()) {
                Ok(_) => Ok(()),
                Err(InsertError::Exists(_)) => Err(DpifError::FlowExists),
                Err(InsertError::Full(n)) => Err(DpifError::TableFull(n)),
            },
        }
    }

    /// Fetches a megaflow.
    pub fn flow_get(&self, key: &FlowKey, mask: &FlowMask) -> Option<DpFlow> {
        let mask = normalize_mask(mask);
        self.flows.find(key, &mask).and_then(|r| self.to_dp_flow(r))
    }

    /// Deletes a megaflow; its EMC entries die with it.
    pub fn flow_del(&mut self, key: &FlowKey, mask: &FlowMask) -> Option<DpFlowStats> {
        let mask = normalize_mask(mask);
        let r = self.flows.find(key, &mask)?;
        self.remove(r)
    }

    /// Every megaflow of this thread.
    pub fn flow_dump(&self) -> Vec<DpFlow> {
        self.flows
            .iter()
            .filter_map(|(r, _)| self.to_dp_flow(r))
            .collect()
    }

    /// Deletes every megaflow.
    pub fn flow_flush(&mut self) {
        self.flows.clear();
        self.classifiers.clear();
        self.emc.clear();
        self.update_gauges();
    }

    /// Sends every pending tx batch now, flush interval or not, and kicks the devices
    /// (the end of each iteration sends only what is due: `flush_tx_due`).
    pub fn flush_tx(&mut self) {
        self.flush_tx_due(true);
    }

    /// Output packets waiting for their flush deadline (for tests and introspection).
    pub fn tx_pending(&self) -> usize {
        self.tx_ports.iter().map(|t| t.pending.len()).sum()
    }

    /// Sends the pending batches whose deadline has passed (all of them when `force` or
    /// when no flush interval is set), then kicks the ports that were sent to. Returns
    /// whether anything was sent.
    fn flush_tx_due(&mut self, force: bool) -> bool {
        let mut sent = false;
        let (pool, counters) = (&mut self.pool, &self.counters);
        let hold = self.tx_flush_cycles != 0 && !force;
        let now = self.tsc;
        for t in self.tx_ports.iter_mut() {
            if !t.pending.is_empty() {
                if hold && now < t.deadline {
                    continue;
                }
                let n = t.pending.len() as u64;
                t.txq.send(&mut t.pending, pool);
                counters.tx_packets.add(n);
                counters.tx_batches.add(1);
                t.dirty = true;
                sent = true;
            }
            if t.dirty {
                t.txq.flush();
                t.dirty = false;
            }
        }
        sent
    }

    /// Periodic work: re-rank subtables once per `SUBTABLE_SORT_INTERVAL`.
    fn housekeeping(&mut self) {
        let tsc = self.tsc;
        if tsc < self.next_clock_read {
            return;
        }
        self.next_clock_read = tsc.saturating_add(crate::pmd::cycles::cycles_per_sec() / 1000);
        self.now = Instant::now();
        if self.now.duration_since(self.last_sort) >= SUBTABLE_SORT_INTERVAL {
            self.last_sort = self.now;
            for (_, c) in self.classifiers.iter_mut() {
                c.sort_subtables();
            }
        }
    }

    fn execute_ctl(&mut self, packet: &[u8], meta: &PacketMeta, actions: &[DpAction]) {
        let mut b = self.take_batch();
        let mut p = self.pool.get();
        p.set_data(packet);
        p.meta = *meta;
        let mut key = FlowKey::default();
        crate::packet::parse::flow_extract(&mut p, &mut key);
        b.pkts.push(p);
        self.execute_actions(&mut b, actions, 0);
        self.recycle_batch(b);
    }

    pub(super) fn take_batch(&mut self) -> PacketBatch {
        self.spare_batches.pop().unwrap_or_default()
    }

    pub(super) fn recycle_batch(&mut self, mut b: PacketBatch) {
        for p in b.pkts.drain(..) {
            self.pool.put(p);
        }
        self.spare_batches.push(b);
    }
}

impl PollWork for PmdDatapath {
    type Ctl = DpCtl;

    #[inline]
    fn process_rx(&mut self, port: OdpPort, batch: &mut PacketBatch) {
        for p in batch.pkts.iter_mut() {
            p.meta.in_port = port;
            p.meta.recirc_id = 0;
        }
        self.process_packets(batch, 0);
    }

    fn handle_ctl(&mut self, msg: DpCtl) {
        match msg {
            DpCtl::FlowPut { put, reply } => {
                let _ = reply.send(self.flow_put(&put));
            }
            DpCtl::FlowGet { key, mask, reply } => {
                let _ = reply.send(self.flow_get(&key, &mask));
            }
            DpCtl::FlowDel { key, mask, reply } => {
                let _ = reply.send(self.flow_del(&key, &mask));
            }
            DpCtl::FlowDump(reply) => {
                let _ = reply.send(self.flow_dump());
            }
            DpCtl::FlowFlush(reply) => {
                self.flow_flush();
                let _ = reply.send(());
            }
            DpCtl::AddTxPort { port, txq, info } => self.add_tx_port_with(port, txq, info),
            DpCtl::SetUpcallHandler(h) => self.handler = Some(h),
            DpCtl::SetEmcInsertInvProb(n) => self.emc.set_insert_inv_prob(n),
            DpCtl::SetEmcAutoBypass(on) => self.emc_bypass.set_auto(on),
            DpCtl::SetTxFlushIntervalUs(us) => {
                self.tx_flush_cycles = tx_flush_cycles(self.core, us);
                // Held batches keep their deadlines under a new nonzero interval; with
                // 0 nothing is held, so they leave at the end of this iteration.
            }
            DpCtl::Execute {
                packet,
                meta,
                actions,
                reply,
            } => {
                // The packet has left when the control plane hears back.
                self.execute_ctl(&packet, &meta, &actions);
                self.flush_tx();
                let _ = reply.send(());
            }
        }
    }

    #[inline]
    fn begin_iteration(&mut self, tsc: u64) {
        self.tsc = tsc;
        self.housekeeping();
    }

    #[inline]
    fn end_iteration(&mut self) -> bool {
        self.flush_tx_due(false)
    }

    fn port_removed(&mut self, port: OdpPort) {
        // Packets held by the flush interval leave now, not when their deadline comes.
        self.flush_tx();
        self.remove_tx_port(port);
    }

    #[inline]
    fn pool(&mut self) -> &mut PacketPool {
        &mut self.pool
    }
}
