//! The text the control socket prints for the userspace datapath, in OVS's formats:
//! `dpif-netdev/pmd-stats-show`, `dpif-netdev/pmd-rxq-show` and `dpctl/dump-flows`.

use std::fmt::Write;
use std::time::Instant;

use super::{dump_text, DpifNetdev, MAIN_THREAD};
use crate::dpif::DpifResult;
use crate::pmd::PmdStats;

/// NUMA node of a core, from sysfs (`/sys/devices/system/cpu/cpuN/nodeM`); 0 if unknown.
pub(super) fn numa_of_core(core: usize) -> usize {
    std::fs::read_dir(format!("/sys/devices/system/cpu/cpu{core}"))
        .ok()
        .and_then(|rd| {
            rd.filter_map(|e| e.ok())
                .filter_map(|e| {
                    e.file_name()
                        .to_str()
                        .and_then(|n| n.strip_prefix("node"))
                        .and_then(|n| n.parse::<usize>().ok())
                })
                .next()
        })
        .unwrap_or(0)
}

fn ratio(a: u64, b: u64) -> f64 {
    if b == 0 {
        0.0
    } else {
        a as f64 / b as f64
    }
}

fn thread_title(core: Option<usize>) -> String {
    match core {
        Some(c) => format!("pmd thread numa_id {} core_id {c}:", numa_of_core(c)),
        None => "main thread:".to_string(),
    }
}

/// Formats one thread's counters the way OVS's `pmd-stats-show` does.
pub fn format_pmd_stats(out: &mut String, title: &str, s: &PmdStats) {
    let passes = s.rx_packets + s.recirculations;
    let total_cycles = s.cycles_idle + s.cycles_busy;
    let _ = writeln!(out, "{title}");
    let _ = writeln!(out, "  packets received: {}", s.rx_packets);
    let _ = writeln!(out, "  packet recirculations: {}", s.recirculations);
    let _ = writeln!(
        out,
        "  avg. datapath passes per packet: {:.2}",
        ratio(passes, s.rx_packets)
    );
    let _ = writeln!(out, "  emc hits: {}", s.emc_hits);
    let _ = writeln!(out, "  megaflow hits: {}", s.megaflow_hits);
    let _ = writeln!(
        out,
        "  avg. subtable lookups per megaflow hit: {:.2}",
        ratio(s.subtable_lookups, s.megaflow_hits)
    );
    if s.emc_trials > 0 {
        // Not in OVS's output: how often the EMC trial chose the dpcls alone.
        let _ = writeln!(
            out,
            "  emc bypassed: {} packets ({:.1}% of passes), {} of {} trials chose the dpcls alone (emc_auto_bypass)",
            s.emc_bypassed,
            100.0 * ratio(s.emc_bypassed, passes),
            s.emc_trials_bypassing,
            s.emc_trials
        );
    }
    let _ = writeln!(out, "  miss with success upcall: {}", s.upcall_ok);
    let _ = writeln!(out, "  miss with failed upcall: {}", s.upcall_failed);
    if s.tnl_mtu_drops + s.tnl_push_errors + s.tnl_pop_errors > 0 {
        let _ = writeln!(
            out,
            "  tunnel drops: mtu {}, push errors {}, bad outer headers {}",
            s.tnl_mtu_drops, s.tnl_push_errors, s.tnl_pop_errors
        );
    }
    let _ = writeln!(
        out,
        "  avg. packets per output batch: {:.2}",
        ratio(s.tx_packets, s.tx_batches)
    );
    let _ = writeln!(
        out,
        "  idle cycles: {} ({:.2}%)",
        s.cycles_idle,
        100.0 * ratio(s.cycles_idle, total_cycles)
    );
    let _ = writeln!(
        out,
        "  processing cycles: {} ({:.2}%)",
        s.cycles_busy,
        100.0 * ratio(s.cycles_busy, total_cycles)
    );
    if s.cycles_busy > 0 {
        // Not in OVS's output: the kernel's share of the processing time, measured
        // around each fast-path system call.
        let _ = writeln!(
            out,
            "  processing cycles in system calls: {} ({:.2}% of processing)",
            s.cycles_syscall,
            100.0 * ratio(s.cycles_syscall, s.cycles_busy)
        );
    }
    if s.sleep_cycles > 0 {
        let sleep_us = crate::pmd::cycles::to_ns(s.sleep_cycles) / 1000;
        // Not in the cycle counts above: a sleeping PMD is not running.
        let _ = writeln!(
            out,
            "  sleep iterations: {} ({:.1}% of iterations)",
            s.sleep_iterations,
            100.0 * ratio(s.sleep_iterations, s.iterations)
        );
        let _ = writeln!(
            out,
            "  sleep time: {} us ({:.1} us per sleep, pmd_max_sleep_us)",
            sleep_us,
            sleep_us as f64 / s.sleep_iterations.max(1) as f64
        );
    }
    if s.batch_waits > 0 {
        let wait_us = (crate::pmd::cycles::to_ns(s.batch_wait_cycles) + 500) / 1000;
        // Not in OVS's output: the busy-poller's spins for fuller batches, part of the
        // idle cycles above.
        let _ = writeln!(
            out,
            "  batch waits: {} ({:.1}% of iterations), {} us ({:.1} us per wait, pmd_batch_wait_us; in idle cycles)",
            s.batch_waits,
            100.0 * ratio(s.batch_waits, s.iterations),
            wait_us,
            wait_us as f64 / s.batch_waits as f64
        );
    }
    if s.rx_packets > 0 {
        let own = s.cycles_busy.saturating_sub(s.cycles_syscall);
        for (label, cycles) in [
            ("avg cycles per packet", total_cycles),
            ("avg processing cycles per packet", s.cycles_busy),
            ("avg processing cycles per packet outside system calls", own),
        ] {
            let _ = writeln!(
                out,
                "  {label}: {:.2} ({cycles}/{})",
                ratio(cycles, s.rx_packets),
                s.rx_packets
            );
        }
    }
}

impl DpifNetdev {
    /// `dpif-netdev/pmd-stats-show`: the main thread, then each PMD thread.
    pub fn pmd_stats_show(&self) -> String {
        let mut out = String::new();
        for e in self.pmd_stats() {
            format_pmd_stats(&mut out, &thread_title(e.core), &e.stats);
        }
        out
    }

    /// `dpif-netdev/pmd-rxq-show`: which thread polls which queue, and the share of the
    /// thread's cycles each queue used since it was assigned there.
    pub fn pmd_rxq_show(&self) -> String {
        let st = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let mut out = String::new();
        let order = (1..self.threads.len()).chain([MAIN_THREAD]);
        for ti in order {
            let queues: Vec<_> = st
                .ports
                .values()
                .flat_map(|e| e.rxqs.iter().map(move |q| (e, q)))
                .filter(|(_, q)| q.thread == ti)
                .collect();
            if ti == MAIN_THREAD && queues.is_empty() {
                continue;
            }
            let _ = writeln!(out, "{}", thread_title(self.threads[ti].core));
            if ti != MAIN_THREAD {
                let _ = writeln!(out, "  isolated : false");
            }
            let total_now = self.thread_total_cycles(ti);
            for (e, q) in queues {
                let used = q.counters.cycles.get().wrapping_sub(q.cycles_base);
                let span = total_now.wrapping_sub(q.thread_cycles_base);
                let usage = (100 * used).checked_div(span).unwrap_or(0).min(100);
                let _ = writeln!(
                    out,
                    "  port: {:<16}  queue-id: {:>2} (enabled)   pmd usage: {:>2} %",
                    e.spec.name, q.qid, usage
                );
            }
            if ti != MAIN_THREAD
                && st
                    .ports
                    .values()
                    .all(|e| e.rxqs.iter().all(|q| q.thread != ti))
            {
                let _ = writeln!(out, "  (no rx queues)");
            }
        }
        out
    }

    /// `dpctl/dump-flows`: every megaflow, per thread, in OVS's datapath flow syntax.
    /// A datapath that cannot be dumped (destroyed, a thread not answering) yields a line
    /// saying why.
    pub fn dump_flows_text(&self) -> String {
        match self.try_dump_flows_text() {
            Ok(s) => s,
            Err(e) => format!("dpctl/dump-flows failed: {e}\n"),
        }
    }

    fn try_dump_flows_text(&self) -> DpifResult<String> {
        let flows = self.fetch_flows()?;
        let now = Instant::now();
        let mut out = String::new();
        let mut cores: Vec<Option<usize>> = flows.iter().map(|f| f.pmd_core).collect();
        cores.sort();
        cores.dedup();
        for core in cores {
            match core {
                Some(c) => {
                    let _ = writeln!(out, "flow-dump from pmd on cpu core: {c}");
                }
                None => {
                    let _ = writeln!(out, "flow-dump from the main thread:");
                }
            }
            for f in flows.iter().filter(|f| f.pmd_core == core) {
                let _ = writeln!(out, "{}", dump_text::format_dp_flow(f, now));
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_system_call_share_and_the_cycles_outside_come_from_the_counters() {
        let s = PmdStats {
            rx_packets: 1000,
            cycles_idle: 500_000,
            cycles_busy: 4_000_000,
            cycles_syscall: 3_600_000,
            ..Default::default()
        };
        let mut out = String::new();
        format_pmd_stats(&mut out, "pmd thread numa_id 0 core_id 1:", &s);
        assert!(
            out.contains("  processing cycles in system calls: 3600000 (90.00% of processing)\n"),
            "{out}"
        );
        assert!(
            out.contains(
                "  avg processing cycles per packet outside system calls: 400.00 (400000/1000)\n"
            ),
            "{out}"
        );
        // OVS's own lines are still there, unchanged, for the parsers that read them.
        assert!(
            out.contains("  avg processing cycles per packet: 4000.00 (4000000/1000)\n"),
            "{out}"
        );
        assert!(
            out.contains("  avg cycles per packet: 4500.00 (4500000/1000)\n"),
            "{out}"
        );

        assert!(!out.contains("batch waits"), "{out}");
        assert!(!out.contains("emc bypassed"), "no trial, no line: {out}");

        // A thread that processed nothing prints no share and no per-packet lines.
        let mut idle = String::new();
        format_pmd_stats(&mut idle, "main thread:", &PmdStats::default());
        assert!(!idle.contains("system calls"), "{idle}");
    }

    #[test]
    fn batch_waits_are_shown_with_their_time_per_wait() {
        let hz = crate::pmd::cycles::cycles_per_sec();
        let s = PmdStats {
            rx_packets: 1000,
            iterations: 400,
            batch_waits: 100,
            batch_wait_cycles: hz / 1000, // 1 ms
            cycles_idle: hz / 1000,
            cycles_busy: 4_000_000,
            ..Default::default()
        };
        let mut out = String::new();
        format_pmd_stats(&mut out, "pmd thread numa_id 0 core_id 1:", &s);
        assert!(
            out.contains("  batch waits: 100 (25.0% of iterations), 1000 us (10.0 us per wait"),
            "{out}"
        );
    }

    #[test]
    fn emc_trials_and_bypassed_packets_are_shown() {
        let s = PmdStats {
            rx_packets: 1000,
            recirculations: 250,
            emc_bypassed: 500,
            emc_trials: 4,
            emc_trials_bypassing: 3,
            cycles_busy: 1,
            ..Default::default()
        };
        let mut out = String::new();
        format_pmd_stats(&mut out, "pmd thread numa_id 0 core_id 1:", &s);
        assert!(
            out.contains(
                "  emc bypassed: 500 packets (40.0% of passes), 3 of 4 trials chose the dpcls alone"
            ),
            "{out}"
        );
    }
}
