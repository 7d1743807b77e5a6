//! The userspace datapath (see DESIGN.md "The fast path").
//!
//! `DpifNetdev` owns the ports and one poll thread per core of `pmd_cores` (plus a
//! non-PMD thread for devices that cannot be busy-polled and for `execute`). Each thread
//! owns a `PmdDatapath`: its own EMC, per-in_port dpcls and megaflow table. The control
//! plane talks to the threads only through messages; `flow_put`/`flow_del` apply to every
//! thread (as OVS does for a put without a PMD id), dumps gather from all of them.
//!
//! Control calls wait for the threads' answers (bounded by `ctl_timeout`). A translator
//! must therefore not hold a lock across a `Dpif` call that its `upcall` also takes: the
//! PMD answering the call could be waiting on that lock inside an upcall. Calls that
//! wait, made from inside an upcall (on a poll thread of this datapath), fail at once
//! with `InvalidArgument` instead of waiting for themselves.

mod config;
pub mod dpcls;
/// The datapath flow formatter now serves every datapath; kept here under its old path.
pub use crate::dpif::dump_text;
pub mod emc;
pub mod emc_bypass;
mod execute;
pub mod flow_table;
mod lookup;
pub mod pmd_datapath;
mod rxq_placement;
mod show;
pub mod subtable;
mod tunnel_exec;
pub mod upcall_limit;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use crossbeam_channel::Sender;

use config::pmd_idle_policy;
pub use config::DpNetdevConfig;
pub use flow_table::{FlowRef, FlowTable, Megaflow, DEFAULT_MAX_FLOWS};
pub use pmd_datapath::{DpCtl, PmdDatapath, PmdDatapathConfig};

use crate::dpif::{
    DpAction, DpFlow, DpFlowStats, DpPort, DpStats, Dpif, DpifError, DpifResult, FlowPut, PortSpec,
    UpcallHandler,
};
use crate::netdev::dummy::DummyNetdev;
use crate::netdev::Netdev;
use crate::packet::buffer::MAX_FRAME;
use crate::packet::{FlowKey, FlowMask, OdpPort, PacketMeta};
use crate::pmd::{IdlePolicy, PmdCounters, PmdMsg, PmdStats, PollThread, PolledRxq, RxqCounters};
use pmd_datapath::TxPortInfo;

struct RxqPlacement {
    qid: usize,
    /// Index into `DpifNetdev::threads`.
    thread: usize,
    counters: Arc<RxqCounters>,
    /// Rxq cycles and the thread's total cycles when the queue was (re)assigned, so
    /// usage is measured since then.
    cycles_base: u64,
    thread_cycles_base: u64,
}

struct PortEntry {
    spec: PortSpec,
    netdev: Arc<dyn Netdev>,
    rxqs: Vec<RxqPlacement>,
}

#[derive(Default)]
struct DpState {
    ports: BTreeMap<OdpPort, PortEntry>,
    stats_baseline: Vec<PmdStats>,
}

/// Per-thread statistics, as `pmd_stats()` returns them (since the last clear).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PmdStatsEntry {
    /// Core of a PMD thread; `None` for the non-PMD ("main") thread.
    pub core: Option<usize>,
    /// NUMA node of that core.
    pub numa: usize,
    /// Counters since the last `pmd_stats_clear`.
    pub stats: PmdStats,
}

/// The userspace datapath. See the module docs.
pub struct DpifNetdev {
    name: String,
    config: DpNetdevConfig,
    /// `threads[0]` is the non-PMD thread, then one per PMD core.
    threads: Vec<PollThread<DpCtl>>,
    state: Mutex<DpState>,
    destroyed: AtomicBool,
}

/// Index of the non-PMD thread in `threads`.
const MAIN_THREAD: usize = 0;
/// How long the non-PMD thread sleeps on its control channel when idle.
const MAIN_IDLE_WAIT: Duration = Duration::from_micros(200);

fn timeout_err(what: &str) -> DpifError {
    DpifError::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        format!("datapath thread did not answer {what} in time"),
    ))
}

impl DpifNetdev {
    /// Creates the datapath and starts its threads.
    pub fn new(name: &str, config: DpNetdevConfig) -> Result<Arc<DpifNetdev>, DpifError> {
        if name.is_empty() {
            return Err(DpifError::InvalidArgument("datapath name is empty".into()));
        }
        if config.max_flows == 0 {
            return Err(DpifError::InvalidArgument(
                "max_flows must be at least 1".into(),
            ));
        }
        if config.pool_size < 256 {
            return Err(DpifError::InvalidArgument(format!(
                "pool_size {} is too small (at least 256 buffers per thread)",
                config.pool_size
            )));
        }
        let cores = crate::pmd::affinity::usable_cores();
        for (i, c) in config.pmd_cores.iter().enumerate() {
            if !cores.contains(c) {
                return Err(DpifError::InvalidArgument(format!(
                    "pmd core {c} is not available (usable cores: {cores:?})"
                )));
            }
            if config.pmd_cores[..i].contains(c) {
                return Err(DpifError::InvalidArgument(format!(
                    "pmd core {c} is listed twice"
                )));
            }
        }
        let pcfg = PmdDatapathConfig {
            emc_insert_inv_prob: config.emc_insert_inv_prob,
            emc_auto_bypass: config.emc_auto_bypass,
            max_flows: config.max_flows,
            upcall_rate: config.upcall_rate,
            upcall_burst: config.upcall_burst,
            pool_size: config.pool_size,
            max_recirc_depth: config.max_recirc_depth,
            tx_flush_interval_us: config.tx_flush_interval_us,
        };
        let mut threads = Vec::new();
        let mut spawn = |core: Option<usize>, idle: IdlePolicy| -> DpifResult<()> {
            let counters = Arc::new(PmdCounters::default());
            let work = PmdDatapath::new(core, &pcfg, counters.clone());
            let tname = work.thread_name();
            threads.push(PollThread::spawn(tname, core, work, counters, idle)?);
            Ok(())
        };
        spawn(None, IdlePolicy::Wait(MAIN_IDLE_WAIT))?;
        for &c in &config.pmd_cores {
            spawn(
                Some(c),
                pmd_idle_policy(config.pmd_max_sleep_us, config.pmd_batch_wait_us),
            )?;
        }
        let n = threads.len();
        Ok(Arc::new(DpifNetdev {
            name: name.to_string(),
            config,
            threads,
            state: Mutex::new(DpState {
                stats_baseline: vec![PmdStats::default(); n],
                ..Default::default()
            }),
            destroyed: AtomicBool::new(false),
        }))
    }

    /// The configuration the datapath runs with.
    pub fn config(&self) -> &DpNetdevConfig {
        &self.config
    }

    fn state(&self) -> DpifResult<MutexGuard<'_, DpState>> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(DpifError::NoSuchDatapath(self.name.clone()));
        }
        // A panic while holding the lock leaves consistent data (every mutation is a
        // single insert/remove), so poisoning is not fatal.
        Ok(self.state.lock().unwrap_or_else(|e| e.into_inner()))
    }

    /// Fails with a clear error instead of waiting for an answer that can never come:
    /// when the caller is one of this datapath's poll threads (a translator calling back
    /// into the datapath from inside an upcall), that thread cannot serve the request.
    fn check_callable(&self, what: &str) -> DpifResult<()> {
        if self.destroyed.load(Ordering::Acquire) {
            return Err(DpifError::NoSuchDatapath(self.name.clone()));
        }
        if self.threads.iter().any(|t| t.is_current()) {
            return Err(DpifError::InvalidArgument(format!(
                "{what} called from one of datapath {}'s own poll threads (inside an upcall); \
                 it would wait for that thread: return actions from the upcall instead",
                self.name
            )));
        }
        Ok(())
    }

    /// Sends a request built by `make` to every thread, then collects the answers.
    fn ask_all<T>(&self, what: &str, make: impl Fn(Sender<T>) -> DpCtl) -> DpifResult<Vec<T>> {
        let mut rxs = Vec::with_capacity(self.threads.len());
        for t in &self.threads {
            let (tx, rx) = crossbeam_channel::bounded(1);
            if !t.send(PmdMsg::Work(make(tx))) {
                return Err(DpifError::NoSuchDatapath(self.name.clone()));
            }
            rxs.push(rx);
        }
        rxs.into_iter()
            .map(|rx| {
                rx.recv_timeout(self.config.ctl_timeout)
                    .map_err(|_| timeout_err(what))
            })
            .collect()
    }

    /// Asks every thread about one megaflow and merges the answers of those that hold it
    /// (each PMD keeps its own copy with its own counters); `NoSuchFlow` if none does.
    fn ask_flow<T>(
        &self,
        what: &str,
        make: impl Fn(Sender<Option<T>>) -> DpCtl,
        stats: impl Fn(&mut T) -> &mut DpFlowStats,
    ) -> DpifResult<T> {
        self.ask_all(what, make)?
            .into_iter()
            .flatten()
            .reduce(|mut acc, mut x| {
                stats(&mut acc).merge(stats(&mut x));
                acc
            })
            .ok_or(DpifError::NoSuchFlow)
    }

    fn sync_thread(&self, idx: usize) -> DpifResult<()> {
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.threads[idx].send(PmdMsg::Sync(tx)) {
            return Err(DpifError::NoSuchDatapath(self.name.clone()));
        }
        rx.recv_timeout(self.config.ctl_timeout)
            .map_err(|_| timeout_err("a sync"))
    }

    fn thread_total_cycles(&self, idx: usize) -> u64 {
        let c = &self.threads[idx].counters;
        c.cycles_busy.get() + c.cycles_idle.get()
    }

    /// The in-memory device behind dummy port `name`, for tests and benches to inject
    /// frames into and capture frames from.
    pub fn dummy_port(&self, name: &str) -> Option<Arc<DummyNetdev>> {
        let st = self.state().ok()?;
        let e = st.ports.values().find(|e| e.spec.name == name)?;
        let d = e.netdev.as_any()?.downcast_ref::<DummyNetdev>()?;
        Some(Arc::new(d.clone()))
    }

    /// Changes the EMC insertion probability on every thread at run time.
    pub fn set_emc_insert_inv_prob(&self, inv_prob: u32) {
        for t in &self.threads {
            t.send(PmdMsg::Work(DpCtl::SetEmcInsertInvProb(inv_prob)));
        }
    }

    /// Turns the EMC bypass trials on or off on every thread at run time.
    pub fn set_emc_auto_bypass(&self, on: bool) {
        for t in &self.threads {
            t.send(PmdMsg::Work(DpCtl::SetEmcAutoBypass(on)));
        }
    }

    /// Changes the output batching interval (`tx_flush_interval_us`) of every PMD thread
    /// at run time (the non-PMD thread always flushes at once).
    pub fn set_tx_flush_interval_us(&self, us: u32) {
        for t in &self.threads {
            t.send(PmdMsg::Work(DpCtl::SetTxFlushIntervalUs(us)));
        }
    }

    /// Changes how PMD threads wait at light load at run time: how long they may sleep
    /// (`pmd_max_sleep_us`; 0 makes them busy-poll) and, busy-polling, how long they may
    /// spin for a fuller batch (`pmd_batch_wait_us`). The non-PMD thread keeps waiting
    /// as it does.
    pub fn set_pmd_idle(&self, max_sleep_us: u32, batch_wait_us: u32) {
        for t in self.threads.iter().filter(|t| t.core.is_some()) {
            t.send(PmdMsg::SetIdle(pmd_idle_policy(
                max_sleep_us,
                batch_wait_us,
            )));
        }
    }

    /// Per-thread statistics since the last clear, non-PMD thread first.
    pub fn pmd_stats(&self) -> Vec<PmdStatsEntry> {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.threads
            .iter()
            .enumerate()
            .map(|(i, t)| PmdStatsEntry {
                core: t.core,
                numa: t.core.map_or(0, show::numa_of_core),
                stats: t
                    .counters
                    .snapshot()
                    .since(&st.stats_baseline.get(i).copied().unwrap_or_default()),
            })
            .collect()
    }

    /// Zeroes what `pmd_stats`/`pmd_stats_show` report (OVS's `pmd-stats-clear`).
    pub fn pmd_stats_clear(&self) {
        let mut st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        st.stats_baseline = self.threads.iter().map(|t| t.counters.snapshot()).collect();
    }

    fn fetch_flows(&self) -> DpifResult<Vec<DpFlow>> {
        self.check_callable("flow_dump")?;
        Ok(self
            .ask_all("a flow dump", DpCtl::FlowDump)?
            .into_iter()
            .flatten()
            .collect())
    }
}

impl Drop for DpifNetdev {
    fn drop(&mut self) {
        for t in &self.threads {
            t.stop();
        }
    }
}

impl Dpif for DpifNetdev {
    fn name(&self) -> &str {
        &self.name
    }

    fn dp_type(&self) -> &'static str {
        "netdev"
    }

    fn destroy(&self) -> DpifResult<()> {
        let ports: Vec<OdpPort> = self.state()?.ports.keys().copied().collect();
        for p in ports {
            self.port_del(p)?;
        }
        self.flow_flush()?;
        self.destroyed.store(true, Ordering::Release);
        for t in &self.threads {
            t.stop();
        }
        Ok(())
    }

    fn port_add(&self, spec: &PortSpec, requested: Option<OdpPort>) -> DpifResult<OdpPort> {
        self.check_callable("port_add")?;
        let mut st = self.state()?;
        if spec.name.is_empty() {
            return Err(DpifError::InvalidArgument("port name is empty".into()));
        }
        if st.ports.values().any(|e| e.spec.name == spec.name) {
            return Err(DpifError::PortExists(spec.name.clone()));
        }
        let port_no = match requested {
            Some(p) if st.ports.contains_key(&p) => {
                return Err(DpifError::PortExists(format!("port number {p}")))
            }
            Some(p) => p,
            None => (1..)
                .find(|p| !st.ports.contains_key(p))
                .expect("fewer than 2^32 ports"),
        };
        let nerr = |source| DpifError::Netdev {
            port: spec.name.clone(),
            source,
        };
        let netdev = crate::netdev::open(spec).map_err(nerr)?;
        // Open everything before touching any thread, so a failure leaves no trace.
        let txqs = (0..self.threads.len())
            .map(|i| netdev.open_txq(i))
            .collect::<Result<Vec<_>, _>>()
            .map_err(nerr)?;
        let rxqs = (0..netdev.n_rxq())
            .map(|q| netdev.open_rxq(q))
            .collect::<Result<Vec<_>, _>>()
            .map_err(nerr)?;
        let placement = self.place_rxqs(&st, netdev.as_ref(), port_no);
        let info = TxPortInfo::of(netdev.as_ref());
        for (i, txq) in txqs.into_iter().enumerate() {
            self.threads[i].send(PmdMsg::Work(DpCtl::AddTxPort {
                port: port_no,
                txq,
                info,
            }));
        }
        let mut placed = Vec::new();
        for ((qid, rxq), thread) in rxqs.into_iter().enumerate().zip(placement) {
            let counters = Arc::new(RxqCounters::default());
            placed.push(RxqPlacement {
                qid,
                thread,
                counters: counters.clone(),
                cycles_base: 0,
                thread_cycles_base: self.thread_total_cycles(thread),
            });
            self.threads[thread].send(PmdMsg::AddRxq(PolledRxq {
                port: port_no,
                port_name: spec.name.clone(),
                rxq,
                counters,
            }));
        }
        for i in 0..self.threads.len() {
            self.sync_thread(i)?;
        }
        st.ports.insert(
            port_no,
            PortEntry {
                spec: spec.clone(),
                netdev,
                rxqs: placed,
            },
        );
        tracing::info!(dp = %self.name, port = %spec.name, port_no, "port added");
        Ok(port_no)
    }

    fn port_del(&self, port: OdpPort) -> DpifResult<()> {
        self.check_callable("port_del")?;
        let mut st = self.state()?;
        let Some(entry) = st.ports.remove(&port) else {
            return Err(DpifError::NoSuchPort(port.to_string()));
        };
        let mut acks = Vec::new();
        for t in &self.threads {
            let (tx, rx) = crossbeam_channel::bounded(1);
            t.send(PmdMsg::DelPort { port, reply: tx });
            acks.push(rx);
        }
        for rx in acks {
            rx.recv_timeout(self.config.ctl_timeout)
                .map_err(|_| timeout_err("a port deletion"))?;
        }
        tracing::info!(dp = %self.name, port = %entry.spec.name, port_no = port, "port deleted");
        Ok(())
    }

    fn port_query_by_name(&self, name: &str) -> DpifResult<DpPort> {
        let st = self.state()?;
        st.ports
            .iter()
            .find(|(_, e)| e.spec.name == name)
            .map(|(&p, e)| dp_port(p, e))
            .ok_or_else(|| DpifError::NoSuchPort(name.to_string()))
    }

    fn port_query_by_number(&self, port: OdpPort) -> DpifResult<DpPort> {
        let st = self.state()?;
        st.ports
            .get(&port)
            .map(|e| dp_port(port, e))
            .ok_or_else(|| DpifError::NoSuchPort(port.to_string()))
    }

    fn port_dump(&self) -> DpifResult<Vec<DpPort>> {
        let st = self.state()?;
        Ok(st.ports.iter().map(|(&p, e)| dp_port(p, e)).collect())
    }

    fn flow_put(&self, put: &FlowPut) -> DpifResult<()> {
        self.check_callable("flow_put")?;
        let results = self.ask_all("a flow put", |reply| DpCtl::FlowPut {
            put: put.clone(),
            reply,
        })?;
        // Success if any thread took it; otherwise report the first refusal. A thread
        // may already hold the flow (installed by its own upcall) while others do not.
        let mut first_err = None;
        let mut ok = false;
        for r in results {
            match r {
                Ok(()) => ok = true,
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (ok, first_err) {
            (true, _) | (false, None) => Ok(()),
            (false, Some(e)) => Err(e),
        }
    }

    fn flow_get(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlow> {
        self.check_callable("flow_get")?;
        let (k, m) = (*key, *mask);
        self.ask_flow(
            "a flow get",
            |reply| DpCtl::FlowGet {
                key: k,
                mask: m,
                reply,
            },
            |f| &mut f.stats,
        )
    }

    fn flow_del(&self, key: &FlowKey, mask: &FlowMask) -> DpifResult<DpFlowStats> {
        self.check_callable("flow_del")?;
        let (k, m) = (*key, *mask);
        self.ask_flow(
            "a flow delete",
            |reply| DpCtl::FlowDel {
                key: k,
                mask: m,
                reply,
            },
            |s| s,
        )
    }

    fn flow_dump(&self) -> DpifResult<Vec<DpFlow>> {
        self.fetch_flows()
    }

    fn flow_flush(&self) -> DpifResult<()> {
        self.check_callable("flow_flush")?;
        self.ask_all("a flow flush", DpCtl::FlowFlush)?;
        Ok(())
    }

    fn execute(&self, packet: &[u8], meta: &PacketMeta, actions: &[DpAction]) -> DpifResult<()> {
        self.check_callable("execute")?;
        if packet.is_empty() || packet.len() > MAX_FRAME {
            return Err(DpifError::InvalidArgument(format!(
                "packet of {} bytes (expected 1 to {MAX_FRAME})",
                packet.len()
            )));
        }
        let (tx, rx) = crossbeam_channel::bounded(1);
        self.threads[MAIN_THREAD].send(PmdMsg::Work(DpCtl::Execute {
            packet: packet.to_vec(),
            meta: *meta,
            actions: actions.to_vec(),
            reply: tx,
        }));
        rx.recv_timeout(self.config.ctl_timeout)
            .map_err(|_| timeout_err("an execute"))
    }

    fn set_upcall_handler(&self, handler: Arc<dyn UpcallHandler>) {
        for t in &self.threads {
            t.send(PmdMsg::Work(DpCtl::SetUpcallHandler(handler.clone())));
        }
        // Wait until every thread has it, unless called from one of them.
        if self.check_callable("set_upcall_handler").is_ok() {
            for i in 0..self.threads.len() {
                let _ = self.sync_thread(i);
            }
        }
    }

    fn stats(&self) -> DpifResult<DpStats> {
        let _st = self.state()?;
        let mut s = DpStats::default();
        for t in &self.threads {
            let c = t.counters.snapshot();
            s.n_hit += c.emc_hits + c.megaflow_hits;
            s.n_missed += c.upcall_ok + c.upcall_failed;
            s.n_lost += c.upcall_failed;
            s.n_flows += c.n_flows;
            s.n_mask_hit += c.subtable_lookups;
            s.n_masks += c.n_subtables;
        }
        Ok(s)
    }
}

fn dp_port(port_no: OdpPort, e: &PortEntry) -> DpPort {
    DpPort {
        port_no,
        name: e.spec.name.clone(),
        port_type: e.spec.port_type.clone(),
        stats: e.netdev.stats(),
    }
}
