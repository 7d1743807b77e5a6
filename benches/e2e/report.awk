# The end-to-end benchmark's tables (benches/e2e/run.sh): a row per run, the paired
# rvswitch/OVS ratios per workload, and the issue's two targets judged run by run.
#
# Input, tab-separated, one line per run as run.sh measured it:
#   1 workload (a-d)   2 switch label   3 offered pps   4 delivered pps
#   5 PMD processing cycles/pkt (pmd-stats-show)   6 user share of the PMD thread's
#   perf samples (%)   7 all PMD cycles/pkt, idle included (pmd-stats-show)   8 the PMD
#   thread's on-CPU time per packet, in cycles of the nominal clock   9 core-to-core RTT
#   10 idle cycles/pkt (the stolen share left out)   11 input drops, no fill frame
#   12 input drops, rx ring full   13 ms of core 1 stolen   14 frames offered in the
#   window
# ("nan" where a figure could not be had.)
# Variables: reps (runs per workload and switch), clen (workload c's frame length),
# busy (1 while both switches busy-poll: the "less idle polling" column is given).
#
# "user cycles/pkt less idle polling": the thread's user CPU cycles per packet less its own
# idle cycles per packet, i.e. the user-space cycles spent on packets. Only while both
# busy-poll (no E2E_PMD_MAXSLEEP): idle polling is then all user time, which the issue's
# formula counts in (so a switch that needs fewer cycles idles more and scores worse);
# with sleeps the formula already leaves the idle time out (a sleeping thread is not
# sampled), and "idle cycles" would include time off the CPU.
BEGIN {
    print ""
    print "| workload | switch | offered pps | delivered pps | delivered/offered | PMD proc cycles/pkt | user / kernel | user cycles/pkt (issue formula) | PMD CPU cycles/pkt | user CPU cycles/pkt | kernel CPU cycles/pkt | user cycles/pkt less idle polling | input drops (no fill frame / rx ring full) | core 1 stolen | core-to-core RTT |"
    print "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    n["a"] = "a: 1 flow, 64 B"; n["b"] = "b: 10k flows, 64 B"; n["c"] = "c: 1 flow, " clen " B"; n["d"] = "d: 100 rules + NORMAL, 10k flows"
}
function num(x) { return x != "nan" && x != "" }
function fmt(x) { return x < 0 ? "n/a" : sprintf("%.0f", x) }
{
    k = ++run[$1, $2]
    u = (num($6) && num($5)) ? $5 * $6 / 100 : -1
    c = num($8) ? $8 : -1
    cu = (c >= 0 && num($6)) ? c * $6 / 100 : -1
    ck = (c >= 0 && num($6)) ? c * (100 - $6) / 100 : -1
    up = (busy && cu >= 0 && num($10) && cu >= $10) ? cu - $10 : -1
    drops = num($11) ? sprintf("%.2f%% / %.2f%%", ($14 > 0 ? 100 * $11 / $14 : 0), ($14 > 0 ? 100 * $12 / $14 : 0)) : "n/a"
    printf "| %s | %s | %d | %d | %.1f%% | %.0f | %.0f%% / %.0f%% | %s | %s | %s | %s | %s | %s | %d ms | %s |\n", n[$1], $2 (reps > 1 ? " #" k : ""),
        $3, $4, ($3 > 0 ? 100 * $4 / $3 : 0), $5, $6, 100 - $6, fmt(u), fmt(c), fmt(cu), fmt(ck), fmt(up), drops, $13, $9
    off[$1, $2, k] = $3; del[$1, $2, k] = $4; cyc[$1, $2, k] = $5; usr[$1, $2, k] = u; cusr[$1, $2, k] = cu; cker[$1, $2, k] = ck
    if (up >= 0) uproc[$1, $2, k] = up
    if (!($1 in seen)) { seen[$1] = 1; order[++nw] = $1 }
}
# Sorts v[1..m] in place and returns its median.
function median(v, m,   i, j, t) {
    for (i = 2; i <= m; i++) { t = v[i]; for (j = i - 1; j >= 1 && v[j] > t; j--) v[j + 1] = v[j]; v[j + 1] = t }
    return (m % 2) ? v[(m + 1) / 2] : (v[m / 2] + v[m / 2 + 1]) / 2
}
# x[w, rvswitch, k] / x[w, ovs, k], or -1 where either figure is missing.
function ratio(x, w, k) {
    return (((w, "rvswitch", k) in x) && ((w, "ovs", k) in x) && x[w, "ovs", k] > 0 && x[w, "rvswitch", k] >= 0) ? x[w, "rvswitch", k] / x[w, "ovs", k] : -1
}
# Median and range of the paired ratios x[w, rvswitch, k] / x[w, ovs, k].
function paired(x, w, suffix,   k, m, v, t) {
    m = 0
    for (k = 1; k <= reps; k++)
        if ((t = ratio(x, w, k)) >= 0) v[++m] = t
    if (m == 0) return "n/a"
    t = median(v, m)
    return m == 1 ? sprintf("%.2f%s", t, suffix) : sprintf("%.2f%s (%.2f-%.2f)", t, suffix, v[1], v[m])
}
# Median delivered/offered of rvswitch over the runs.
function delivered_share(w,   k, m, v) {
    m = 0
    for (k = 1; k <= reps; k++)
        if (((w, "rvswitch", k) in off) && off[w, "rvswitch", k] > 0)
            v[++m] = del[w, "rvswitch", k] / off[w, "rvswitch", k]
    return m == 0 ? "n/a" : sprintf("%.1f%%", 100 * median(v, m))
}
END {
    print ""
    if (reps > 1) print "Ratios: median of the " reps " paired runs (range in brackets)."
    print "| workload | delivered rvswitch/OVS | delivered/offered rvswitch | PMD proc cycles rvswitch/OVS | user cycles/pkt rvswitch/OVS (issue formula) | user CPU cycles/pkt rvswitch/OVS | kernel CPU cycles/pkt rvswitch/OVS | user cycles/pkt less idle polling rvswitch/OVS |"
    print "|---|---:|---:|---:|---:|---:|---:|---:|"
    for (i = 1; i <= nw; i++) {
        w = order[i]
        if (!((w, "rvswitch", 1) in del) || !((w, "ovs", 1) in del)) continue
        fr = delivered_share(w)
        printf "| %s | %s | %s | %s | %s | %s | %s | %s |\n", n[w], paired(del, w, "x"), fr, paired(cyc, w, ""),
            paired(usr, w, ""), paired(cusr, w, ""), paired(cker, w, ""), paired(uproc, w, "")
    }
    targets()
}
# The targets of issue 5, each run (repetition) on its own, since they are to be met
# in one run: user cycles per packet by the issue's formula at most half of OVS's, and
# delivered at least 1.15x OVS's or at least 98% of the offered load (the generator is
# then the limit). Compared unrounded, and shown to three decimals (shares to two) so
# that a figure that misses by a hair does not read as the threshold.
# A last line judges the same runs with the thread's measured user CPU cycles per packet
# (its on-CPU time per packet times the same user share) in place of the formula. With
# sleeps the two part: the formula multiplies processing cycles, which leave out a
# sleep's on-CPU cost, by a share whose denominator holds it, so the switch that sleeps
# more often per packet has its user cycles scaled down further.
function targets(   i, k, w, ru, rc, rd, sh, uok, cok, dok, nu, nd, nb, ucell, dcell, all, allc, judged) {
    judged = 0
    for (i = 1; i <= nw; i++) judged += ((order[i], "rvswitch", 1) in del) && ((order[i], "ovs", 1) in del)
    print ""
    if (!judged) {
        print "The targets of issue 5 are judged against OVS in the same run: run both rvswitch and ovs (E2E_SWITCHES) to see them."
        return
    }
    for (k = 1; k <= reps; k++) all[k] = allc[k] = 1
    print "Against the targets of issue 5, each run on its own: user cycles/pkt by the issue's formula at most 0.5x OVS's; delivered pps at least 1.15x OVS's, or at least 98% of the offered load."
    print "| workload | user cycles/pkt <= 0.5x OVS (rvswitch/OVS per run) | delivered >= 1.15x OVS or >= 98% of offered (rvswitch/OVS, delivered/offered per run) | runs meeting both |"
    print "|---|---|---|---:|"
    for (i = 1; i <= nw; i++) {
        w = order[i]
        nu = nd = nb = 0; ucell = dcell = ""
        for (k = 1; k <= reps; k++) {
            # A run without both switches judges nothing, and fails every workload.
            if (!((w, "rvswitch", k) in del) || !((w, "ovs", k) in del)) {
                all[k] = allc[k] = 0
                ucell = ucell (k > 1 ? ", " : "") "n/a"; dcell = dcell (k > 1 ? ", " : "") "n/a"
                continue
            }
            ru = ratio(usr, w, k); rc = ratio(cusr, w, k); rd = ratio(del, w, k)
            sh = off[w, "rvswitch", k] > 0 ? del[w, "rvswitch", k] / off[w, "rvswitch", k] : 0
            uok = ru >= 0 && ru <= 0.5
            dok = (rd >= 1.15) || (sh >= 0.98)
            cok = rc >= 0 && rc <= 0.5
            nu += uok; nd += dok; nb += uok && dok
            if (!(uok && dok)) all[k] = 0
            if (!(cok && dok)) allc[k] = 0
            ucell = ucell (k > 1 ? ", " : "") (ru < 0 ? "n/a" : sprintf("%.3f", ru))
            dcell = dcell (k > 1 ? ", " : "") (rd < 0 ? "n/a" : sprintf("%.3fx", rd)) " / " sprintf("%.2f%%", 100 * sh)
        }
        printf "| %s | met in %d of %d (%s) | met in %d of %d (%s) | %d of %d |\n", n[w], nu, reps, ucell, nd, reps, dcell, nb, reps
    }
    print "Runs in which every workload here met both targets: " runs_named(all)
    print "With user CPU cycles/pkt (on-CPU time per packet x user share) at most 0.5x OVS's in place of the formula: " runs_named(allc)
}
# "K of N", and the runs k with ok[k] set: "K of N (#1, #3)".
function runs_named(ok,   k, good, runs) {
    good = 0; runs = ""
    for (k = 1; k <= reps; k++) if (ok[k]) { good++; runs = runs (runs == "" ? "" : ", ") "#" k }
    return good " of " reps (good ? " (" runs ")" : "")
}
