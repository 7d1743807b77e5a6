//! The end-to-end benchmark scripts (root): `make bench-e2e` and `make bench-latency` must
//! run start to finish from a clean checkout, against rvswitch and Debian's
//! ovs-vswitchd, print their tables, and leave nothing behind, also when interrupted.
//! Short runs: this checks
//! that the scripts work and that traffic really crossed both switches, not how fast
//! (figures belong in BENCHMARKS.md and benches/e2e/HISTORY.md).

use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Runs a script with `env`, failing with its whole output unless it exits 0; returns
/// its stdout.
fn run_script(script: &str, args: &[&str], env: &[(&str, &str)]) -> String {
    let out = Command::new(root().join(script))
        .args(args)
        .envs(env.iter().copied())
        .current_dir(root())
        .output()
        .unwrap_or_else(|e| panic!("running {script}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{script} exited {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// The cells of the Markdown table row that starts with `prefix`.
fn row<'a>(table: &'a str, prefix: &str) -> Vec<&'a str> {
    let line = table
        .lines()
        .find(|l| l.starts_with(prefix))
        .unwrap_or_else(|| panic!("no row starting {prefix:?} in:\n{table}"));
    line.trim_matches('|').split('|').map(str::trim).collect()
}

fn number(cell: &str) -> f64 {
    cell.trim_end_matches(['%', 'x'])
        .parse()
        .unwrap_or_else(|_| panic!("not a number: {cell:?}"))
}

/// The network devices there are now, by name.
fn links() -> std::collections::BTreeSet<String> {
    let out = Command::new("ip")
        .args(["-o", "link", "show"])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(": ").nth(1))
        .map(|n| n.split('@').next().unwrap_or(n).to_string())
        .collect()
}

/// Devices not in `before` (the tests run one at a time, so any new one is the script's:
/// a veth, or a switch's tap such as Open vSwitch's `ovs-netdev`).
fn new_links(before: &std::collections::BTreeSet<String>) -> Vec<String> {
    links()
        .difference(before)
        .map(|n| format!("link {n}"))
        .collect()
}

/// Namespaces and scratch directories named `prefix*` that are still there.
fn leftovers(netns: &[&str], tmp_prefix: &str) -> Vec<String> {
    let ns = String::from_utf8_lossy(
        &Command::new("ip")
            .args(["netns", "list"])
            .output()
            .unwrap()
            .stdout,
    )
    .into_owned();
    let mut left: Vec<String> = netns
        .iter()
        .filter(|n| ns.lines().any(|l| l.split_whitespace().next() == Some(n)))
        .map(|n| format!("netns {n}"))
        .collect();
    for e in std::fs::read_dir("/tmp").unwrap().flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if name.starts_with(tmp_prefix) {
            left.push(format!("/tmp/{name}"));
        }
    }
    left
}

/// The run table's row of `workload` and `switch`, failing unless the switch was offered
/// some load and delivered more than half of it.
fn forwarded_row<'a>(out: &'a str, workload: &str, switch: &str) -> Vec<&'a str> {
    let r = row(out, &format!("| {workload} | {switch} |"));
    let (offered, delivered) = (number(r[2]), number(r[3]));
    assert!(
        offered > 10_000.0 && delivered > offered / 2.0,
        "{switch}, {workload}: offered {offered}, delivered {delivered}:\n{out}"
    );
    r
}

/// Checks `workload`'s row of the targets table of a one-run output against the
/// figures it gives, and returns its counts of runs that met both targets and that met
/// the delivered one. A figure within rounding of its threshold is not judged.
fn target_verdicts(out: &str, workload: &str) -> (u32, u32) {
    let r = row(out, &format!("| {workload} | met in "));
    // "met in N of 1 (figures)" -> (N, figures)
    let verdict = |cell: &str| -> (u32, String) {
        let (head, figures) = cell
            .strip_prefix("met in ")
            .and_then(|c| c.split_once(" of 1 ("))
            .unwrap_or_else(|| panic!("{workload}: verdict cell {cell:?}:\n{out}"));
        (
            number(head) as u32,
            figures.trim_end_matches(')').to_string(),
        )
    };
    let (user_met, user) = verdict(r[1]);
    let ratio = number(&user);
    if (ratio - 0.5).abs() > 0.001 {
        assert_eq!(
            user_met,
            u32::from(ratio <= 0.5),
            "{workload}: {:?}:\n{out}",
            r[1]
        );
    }
    let (delivered_met, delivered) = verdict(r[2]);
    let (x, share) = delivered
        .split_once(" / ")
        .map(|(x, s)| (number(x), number(s)))
        .unwrap_or_else(|| panic!("{workload}: {:?}:\n{out}", r[2]));
    if (x - 1.15).abs() > 0.0005 && (share - 98.0).abs() > 0.005 {
        let met = x >= 1.15 || share >= 98.0;
        assert_eq!(
            delivered_met,
            u32::from(met),
            "{workload}: {:?}:\n{out}",
            r[2]
        );
    }
    let both = number(r[3].trim_end_matches(" of 1")) as u32;
    assert_eq!(
        both,
        user_met.min(delivered_met),
        "{workload}: {r:?}:\n{out}"
    );
    (both, delivered_met)
}

#[test]
fn throughput_script_forwards_a_workload_through_both_switches_and_cleans_up() {
    let before = links();
    let out = run_script(
        "benches/e2e/run.sh",
        &["2", "a", "c"],
        &[
            ("E2E_SWITCHES", "rvswitch ovs"),
            ("E2E_RVS_TX_COPY_MAX", "1514"),
            ("E2E_C_FRAME_LEN", "512"),
        ],
    );
    // Workload c at another length: both switches forward it, and the table names it.
    for sw in ["rvswitch", "ovs"] {
        forwarded_row(&out, "c: 1 flow, 512 B", sw);
    }
    assert!(out.contains("workload c with 512-byte frames"), "{out}");
    for sw in ["rvswitch", "ovs"] {
        let r = forwarded_row(&out, "a: 1 flow, 64 B", sw);
        let cycles = number(r[5]);
        assert!(cycles > 0.0, "{sw}: processing cycles {cycles}:\n{out}");
        // Both busy-poll here, so the user cycles less idle polling are given unless the
        // switch's idle count exceeded its user CPU time (stolen time lands in the idle
        // count): then "n/a", never a number above the user CPU cycles it came from.
        assert_eq!(r.len(), 15, "{sw}: columns:\n{out}");
        let user_cpu = number(r[9]);
        assert!(
            r[11] == "n/a" || (0.0..=user_cpu).contains(&number(r[11])),
            "{sw}: user cycles less idle polling {:?} against user CPU cycles {user_cpu}:\n{out}",
            r[11]
        );
        // The kernel's input drops, as shares of the frames offered in the window.
        let drops: Vec<f64> = r[12].split(" / ").map(number).collect();
        assert!(
            drops.len() == 2 && drops.iter().all(|d| (0.0..=100.0).contains(d)),
            "{sw}: input drops {:?}:\n{out}",
            r[12]
        );
        assert!(r[13].ends_with(" ms"), "{sw}: stolen {:?}:\n{out}", r[13]);
    }
    // Every run (two workloads, two switches) says where the frames offered and not
    // delivered went.
    assert_eq!(out.matches("input drops: ").count(), 4, "{out}");
    // The ratio table: delivered rvswitch/OVS first, e.g. "0.89x".
    let ratio_row = out.lines().find(|l| {
        l.starts_with("| a: 1 flow, 64 B | ")
            && l.split('|').nth(2).is_some_and(|c| c.trim().ends_with('x'))
    });
    assert!(ratio_row.is_some(), "no ratio row:\n{out}");
    // The targets table: each verdict follows from the figures it shows.
    let workloads = ["a: 1 flow, 64 B", "c: 1 flow, 512 B"];
    let verdicts: Vec<(u32, u32)> = workloads
        .iter()
        .map(|wl| target_verdicts(&out, wl))
        .collect();
    let all_met = format!(
        "Runs in which every workload here met both targets: {} of 1",
        verdicts.iter().map(|v| v.0).min().unwrap()
    );
    assert!(out.contains(&all_met), "expected {all_met:?}:\n{out}");
    // And counted again with the rows' user CPU cycles in place of the formula (not
    // judged when a ratio of the rounded figures is within rounding of 0.5).
    let cpu_ratios: Vec<f64> = workloads
        .iter()
        .map(|wl| {
            let cpu = |sw| number(forwarded_row(&out, wl, sw)[9]);
            cpu("rvswitch") / cpu("ovs")
        })
        .collect();
    if cpu_ratios.iter().all(|r| (r - 0.5).abs() > 0.01) {
        let met = cpu_ratios
            .iter()
            .zip(&verdicts)
            .all(|(r, v)| *r <= 0.5 && v.1 == 1);
        let line = if met {
            "in place of the formula: 1 of 1 (#1)"
        } else {
            "in place of the formula: 0 of 1"
        };
        assert!(
            out.contains(line),
            "expected {line:?} ({cpu_ratios:?}):\n{out}"
        );
    }
    assert!(out.contains("packets per output batch"), "{out}");
    assert!(out.contains("own TSC accounting"), "{out}");
    // rvswitch's input port asks for a deep ring by default (E2E_RVS_RXQ_DESC), and
    // the run says so.
    assert!(
        out.contains("rvswitch input port's rx ring 131072 slots, kept full, OVS's 2048"),
        "{out}"
    );
    // A port option passed through (the switch refuses a config it cannot parse).
    assert!(out.contains("rvswitch tx_copy_max 1514"), "{out}");
    let mut left = leftovers(&["e2e-src", "e2e-dst"], "rvs-e2e.");
    left.extend(new_links(&before));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// One side of a made-up run for `report.awk`: offered pps, delivered pps, processing
/// cycles per packet, user share (%).
type Side = (u32, u32, u32, f64);

/// One line of `report.awk`'s input: a run of `workload` through `switch` (the other
/// figures fixed), on the CPU only while processing.
fn result_line(workload: &str, switch: &str, side: Side) -> String {
    result_line_on_cpu(workload, switch, side, side.2)
}

/// As `result_line`, with the thread on the CPU for `on_cpu` cycles a packet (more than
/// its processing cycles when it also pays for sleeps).
fn result_line_on_cpu(workload: &str, switch: &str, side: Side, on_cpu: u32) -> String {
    let (offered, delivered, cycles, user) = side;
    format!(
        "{workload}\t{switch}\t{offered}\t{delivered}\t{cycles}\t{user}\t{cycles}\t{on_cpu}\t300\t0\t0\t0\t10\t{}\n",
        offered * 8
    )
}

/// `report.awk`'s output for `input`, which holds `reps` runs of each workload and switch.
fn report(input: &str, reps: u32) -> String {
    use std::io::Write;
    let mut child = Command::new("awk")
        .args(["-F", "\t", "-v", &format!("reps={reps}")])
        .args(["-v", "clen=1518", "-v", "busy=0", "-f"])
        .arg(root().join("benches/e2e/report.awk"))
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("awk");
    let mut stdin = child.stdin.take().unwrap();
    stdin.write_all(input.as_bytes()).unwrap();
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).unwrap()
}

/// The targets table judges each run on its own, at the thresholds exactly: a formula
/// ratio of 0.5 and a delivered ratio of 1.15 or share of 98% meet them, a hair past
/// does not, and only a run in which every workload met both is named. No switches:
/// the report alone, on figures made up for the edges.
#[test]
fn throughput_report_judges_each_run_against_the_targets_at_their_edges() {
    // c meeting both: formula 60/200 = 0.3, all of the offered load delivered.
    const C_BOTH: (&str, Side, Side) = (
        "c",
        (800_000, 800_000, 1000, 6.0),
        (900_000, 800_000, 1000, 20.0),
    );
    let runs: [[(&str, Side, Side); 2]; 3] = [
        // a: formula 140/280 = 0.5, delivered 0.98x at 98.0% of offered: both met.
        // c: formula 0.3, delivered 1.149x at 97.9%: delivered missed.
        [
            (
                "a",
                (1_000_000, 980_000, 1000, 14.0),
                (1_000_000, 1_000_000, 1400, 20.0),
            ),
            (
                "c",
                (979_000, 958_441, 1000, 6.0),
                (900_000, 834_000, 1000, 20.0),
            ),
        ],
        // a: formula 141/280 = 0.504, missed; delivered 1.15x: met.
        [
            (
                "a",
                (1_500_000, 1_150_000, 1000, 14.1),
                (1_000_000, 1_000_000, 1400, 20.0),
            ),
            C_BOTH,
        ],
        // Both workloads meet both.
        [
            (
                "a",
                (1_000_000, 1_000_000, 1000, 10.0),
                (1_000_000, 900_000, 1400, 20.0),
            ),
            C_BOTH,
        ],
    ];
    let mut input = String::new();
    for run in &runs {
        for &(wl, ours, theirs) in run {
            input += &result_line(wl, "rvswitch", ours);
            input += &result_line(wl, "ovs", theirs);
        }
    }
    let out = report(&input, 3);
    for expected in [
        "| a: 1 flow, 64 B | met in 2 of 3 (0.500, 0.504, 0.357) | \
         met in 3 of 3 (0.980x / 98.00%, 1.150x / 76.67%, 1.111x / 100.00%) | 2 of 3 |",
        "| c: 1 flow, 1518 B | met in 3 of 3 (0.300, 0.300, 0.300) | \
         met in 2 of 3 (1.149x / 97.90%, 1.000x / 100.00%, 1.000x / 100.00%) | 2 of 3 |",
        "Runs in which every workload here met both targets: 1 of 3 (#3)",
        // On the CPU only while processing, user CPU cycles judge as the formula does.
        "in place of the formula: 1 of 3 (#3)",
    ] {
        assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
    }
    // OVS on the CPU for 2,000 cycles a packet, 1,400 of them processing (the rest its
    // sleeps): the formula gives 150/280 = 0.536, missed; user CPU cycles 150/400 =
    // 0.375, met. The last line says so, the targets table does not.
    let ours = (1_000_000, 1_000_000, 1000, 15.0);
    let theirs = (1_000_000, 900_000, 1400, 20.0);
    let input = result_line("a", "rvswitch", ours) + &result_line_on_cpu("a", "ovs", theirs, 2000);
    let out = report(&input, 1);
    for expected in [
        "| a: 1 flow, 64 B | met in 0 of 1 (0.536) |",
        "Runs in which every workload here met both targets: 0 of 1",
        "in place of the formula: 1 of 1 (#1)",
    ] {
        assert!(out.contains(expected), "expected {expected:?} in:\n{out}");
    }
    // Without OVS in the run nothing is judged, and no run is said to meet the targets.
    let alone: String = input
        .lines()
        .filter(|l| !l.contains("\tovs\t"))
        .map(|l| format!("{l}\n"))
        .collect();
    let out = report(&alone, 3);
    assert!(out.contains("judged against OVS in the same run"), "{out}");
    assert!(!out.contains("met both targets"), "{out}");
}

#[test]
fn throughput_script_refuses_bad_settings_naming_them() {
    const LEN: &str = "expected a frame length from 64 to 1518";
    const RING: &str = "expected 0 (the default ring) or a power of two";
    for (var, value, expected) in [
        ("E2E_C_FRAME_LEN", "1519", LEN),
        ("E2E_C_FRAME_LEN", "63", LEN),
        ("E2E_C_FRAME_LEN", "0512", LEN),
        ("E2E_C_FRAME_LEN", "big", LEN),
        ("E2E_PMD_QUOTA", "100", "expected a percentage from 1 to 99"),
        ("E2E_RVS_RXQ_DESC", "1000", RING),
        ("E2E_RPS_CPUS", "core1", "expected a hexadecimal CPU mask"),
    ] {
        let out = Command::new(root().join("benches/e2e/run.sh"))
            .args(["1", "a"])
            .env(var, value)
            .current_dir(root())
            .output()
            .expect("running benches/e2e/run.sh");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{var}={value}: {stderr}");
        assert!(
            stderr.contains(&format!("{var}={value}: {expected}")),
            "{var}={value}: {stderr}"
        );
    }
}

/// The experiment patches kept beside the scripts (`ab_harness.patch`, `io_floor.patch`)
/// back figures in HISTORY.md that anyone may want to measure again; one that no longer
/// applies to the tree is a broken instrument, so it fails here instead of on the day it
/// is needed.
#[test]
fn experiment_patches_apply_to_this_tree() {
    let dir = root().join("benches/e2e");
    let mut patches: Vec<_> = std::fs::read_dir(&dir)
        .expect("reading benches/e2e")
        .map(|e| e.expect("a directory entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "patch"))
        .collect();
    patches.sort();
    assert!(
        patches.len() >= 2,
        "expected the experiment patches in {dir:?}: {patches:?}"
    );
    for patch in patches {
        let out = Command::new("git")
            .args(["apply", "--check"])
            .arg(&patch)
            .current_dir(root())
            .output()
            .expect("running git apply --check (git must be installed)");
        assert!(
            out.status.success(),
            "{} no longer applies to this tree (refresh it: `git apply --3way` it in a \
             clean worktree, fix what conflicts, and save `git diff --cached` over it):\n{}",
            patch.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn latency_script_pings_through_both_switches_and_cleans_up() {
    let before = links();
    let out = run_script(
        "benches/e2e/latency.sh",
        &["100", "idle", "udp"],
        &[("LAT_SWITCHES", "rvswitch ovs"), ("LAT_INTERVAL", "0.01")],
    );
    for sw in ["rvswitch", "ovs"] {
        for cond in ["idle", "udp"] {
            let r = row(&out, &format!("| {sw} | {cond} |"));
            assert_eq!(r[2], "100", "{sw} {cond}: pings:\n{out}");
            let lost = number(r[3]);
            assert!(lost <= 2.0, "{sw} {cond}: {lost} of 100 lost:\n{out}");
            let (min, median, max) = (number(r[4]), number(r[5]), number(r[8]));
            assert!(
                min > 0.0 && min <= median && median <= max,
                "{sw} {cond}: min {min} median {median} max {max}:\n{out}"
            );
        }
        // The 100 Mbit/s UDP stream crossed the switch beside the pings.
        let udp = row(&out, &format!("| {sw} | udp |"));
        let mbps = number(udp[9]);
        assert!(mbps > 50.0, "{sw}: udp stream {mbps} Mbit/s:\n{out}");
    }
    let mut left = leftovers(&["lat-a", "lat-b"], "rvs-lat.");
    left.extend(new_links(&before));
    assert!(left.is_empty(), "left behind: {left:?}");
}

/// The rvswitch control socket of a run.sh invocation in progress, if one is up.
fn e2e_switch_running() -> bool {
    std::fs::read_dir("/tmp").unwrap().flatten().any(|e| {
        e.file_name().to_string_lossy().starts_with("rvs-e2e.")
            && e.path().join("rvs/rvswitch.ctl").exists()
    })
}

#[test]
fn throughput_script_interrupted_mid_run_cleans_up() {
    let before = links();
    // As Ctrl-C does: SIGINT to the script's whole process group, mid-measurement.
    let mut child = Command::new(root().join("benches/e2e/run.sh"))
        .args(["60", "a"])
        .env("E2E_SWITCHES", "rvswitch")
        .current_dir(root())
        .process_group(0)
        .stdout(std::process::Stdio::null())
        .spawn()
        .expect("starting run.sh");
    let start = Instant::now();
    while !e2e_switch_running() {
        assert!(
            child.try_wait().unwrap().is_none(),
            "run.sh ended before its switch started"
        );
        assert!(
            start.elapsed() < Duration::from_secs(300),
            "rvswitch never started"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    std::thread::sleep(Duration::from_secs(3));
    // SAFETY: signals the process group this test created for the script.
    assert_eq!(unsafe { libc::kill(-(child.id() as i32), libc::SIGINT) }, 0);
    let stopped = Instant::now();
    let status = loop {
        if let Some(st) = child.try_wait().unwrap() {
            break st;
        }
        assert!(
            stopped.elapsed() < Duration::from_secs(60),
            "run.sh still running 60 s after SIGINT"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        status.code() == Some(130) || status.signal() == Some(libc::SIGINT),
        "run.sh after SIGINT: {status:?}"
    );
    let mut left = leftovers(&["e2e-src", "e2e-dst"], "rvs-e2e.");
    left.extend(new_links(&before));
    assert!(left.is_empty(), "left behind: {left:?}");
    let procs = Command::new("pgrep")
        .args(["-f", "rvs-e2e"])
        .output()
        .unwrap();
    assert!(
        procs.stdout.is_empty(),
        "processes of the run still alive: {}",
        String::from_utf8_lossy(&procs.stdout)
    );
}
