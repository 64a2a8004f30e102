//! Renders the measured part of `docs/benchmarks.md` (between the `GENERATED` markers; the
//! hand-written text around them is kept) and `docs/failover-pauses.svg` from
//! `target/bench-results/{failover,steady}.tsv`.

use std::fmt::Write as _;

use super::harness::{Results, max, median, repo_dir, sorted};
use super::sys;

const BEGIN: &str = "<!-- BEGIN GENERATED (scripts/bench.sh) -->";
const END: &str = "<!-- END GENERATED -->";
const CLIENTS: [(&str, &str); 3] = [
    ("zk-failover", "zk-failover (this project)"),
    ("zookeeper-client", "zookeeper-client 0.11 (Rust)"),
    ("java", "Java client 3.8"),
];
const COLORS: [&str; 3] = ["#d62728", "#1f77b4", "#7f7f7f"];

fn fmt_ms(v: f64) -> String {
    if v.is_nan() {
        "–".into()
    } else if v.abs() >= 1000.0 {
        format!("{:.2} s", v / 1000.0)
    } else if v.abs() >= 10.0 {
        format!("{v:.0} ms")
    } else {
        format!("{v:.1} ms")
    }
}

fn ratio(peer: f64, ours: f64) -> String {
    if peer.is_nan() || ours.is_nan() || ours <= 0.0 {
        "–".into()
    } else {
        format!("{:.1}×", peer / ours)
    }
}

fn verdict(ok: bool) -> &'static str {
    if ok { "**met**" } else { "**missed**" }
}

struct View<'a>(&'a Results);

impl View<'_> {
    fn v(&self, g: &str, c: &str, m: &str) -> Vec<f64> {
        self.0.get(g, c, m).map(<[f64]>::to_vec).unwrap_or_default()
    }
    fn med(&self, g: &str, c: &str, m: &str) -> f64 {
        median(&self.v(g, c, m))
    }
    fn max(&self, g: &str, c: &str, m: &str) -> f64 {
        max(&self.v(g, c, m))
    }
}

/// Regenerates the report; errors are printed, never fatal.
pub(crate) fn render() {
    let f = Results::read("failover");
    let s = Results::read("steady");
    let body = generated(&View(&f), &View(&s));
    let docs = repo_dir().join("docs");
    let _ = std::fs::create_dir_all(&docs);
    if let Err(e) = std::fs::write(docs.join("failover-pauses.svg"), svg(&View(&f))) {
        eprintln!("report: cannot write the SVG: {e}");
    }
    let path = docs.join("benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let new = match (old.find(BEGIN), old.find(END)) {
        (Some(a), Some(b)) if a < b => {
            format!("{}{BEGIN}\n{body}{}", &old[..a], &old[b..])
        }
        _ => format!("# Benchmarks\n\n{BEGIN}\n{body}{END}\n"),
    };
    match std::fs::write(&path, new) {
        Ok(()) => println!("report: wrote {}", path.display()),
        Err(e) => eprintln!("report: cannot write {}: {e}", path.display()),
    }
}

const BEGIN_TLS: &str =
    "<!-- BEGIN GENERATED TLS (cargo bench -p zk-bench --bench failover -- tls) -->";
const END_TLS: &str = "<!-- END GENERATED TLS -->";

/// Regenerates the TLS block of `docs/benchmarks.md` from `failover-tls`; errors are printed.
pub(crate) fn render_tls() {
    let f = Results::read("failover-tls");
    let body = tls_section(&View(&f));
    replace_block(BEGIN_TLS, END_TLS, &body, "the TLS section");
}

fn tls_section(f: &View<'_>) -> String {
    let mut o = String::new();
    let (n, model, _) = sys::machine();
    let full = f.med("tls_floor", "raw-full", "handshake_ms");
    let resumed = f.med("tls_floor", "raw-resumed", "handshake_ms");
    let _ = writeln!(
        o,
        "### Failover over mutual TLS (same ensemble settings, every node with a \
         `secureClientPort`, Netty, JDK 17 TLS 1.2, client certificates required)\n\n\
         Machine: {n} cores ({model}). Run load (1-min average) at start/end: {} / {}.\n\n\
         TLS floor (bare TCP connect + TLS handshake + ConnectRequest/ConnectResponse for an \
         existing session, moved to another server each time, same run): **full** handshake \
         p50 **{}** (TLS alone {}), max {}; **resumed** p50 **{}** (TLS alone {}), max {} \
         (n = {}, resumed {}/{}).\n",
        fmt_load(f, "load_start"),
        fmt_load(f, "load_end"),
        fmt_ms(full),
        fmt_ms(f.med("tls_floor", "raw-full", "tls_ms")),
        fmt_ms(f.max("tls_floor", "raw-full", "handshake_ms")),
        fmt_ms(resumed),
        fmt_ms(f.med("tls_floor", "raw-resumed", "tls_ms")),
        fmt_ms(f.max("tls_floor", "raw-resumed", "handshake_ms")),
        f.v("tls_floor", "raw-full", "handshake_ms").len(),
        f.med("tls_floor", "raw-resumed", "resumed"),
        f.v("tls_floor", "raw-resumed", "handshake_ms").len(),
    );
    o.push_str(
        "| scenario | client | n | pause p50 / max | detect p50 | client share p50 / max | \
         kept | pause ratio to zk-failover (p50) |\n|---|---|---|---|---|---|---|---|\n",
    );
    let scen = [
        (
            "tls_crash_follower",
            "mTLS: kill −9 of the connected follower",
        ),
        ("tls_crash_leader", "mTLS: kill −9 of the connected leader"),
        ("tls_freeze", "mTLS: SIGSTOP of the connected server"),
        (
            "tls_cold_crash_follower",
            "mTLS: kill −9 of the follower, no priming",
        ),
    ];
    scenario_rows(f, &scen, &mut o);
    o.push_str(
        "\n| kill −9 of the leader, mTLS | election p50 | beyond it p50 / max |\n|---|---|---|\n",
    );
    for (c, cname) in CLIENTS {
        let b = f.v("tls_crash_leader", c, "beyond_election_ms");
        if !b.is_empty() {
            let _ = writeln!(
                o,
                "| {cname} | {} | {} / {} |",
                fmt_ms(f.med("tls_crash_leader", c, "election_ms")),
                fmt_ms(median(&b)),
                fmt_ms(max(&b)),
            );
        }
    }
    let sum = |g: &str, m: &str| f.v(g, "zk-failover", m).iter().sum::<f64>();
    let _ = writeln!(
        o,
        "\nzk-failover's TLS handshakes during the faults (full / resumed): primed, kill −9 of \
         the follower {:.0} / {:.0}, of the leader {:.0} / {:.0}, SIGSTOP {:.0} / {:.0}; not \
         primed, kill −9 of the follower {:.0} / {:.0}.",
        sum("tls_crash_follower", "tls_full"),
        sum("tls_crash_follower", "tls_resumed"),
        sum("tls_crash_leader", "tls_full"),
        sum("tls_crash_leader", "tls_resumed"),
        sum("tls_freeze", "tls_full"),
        sum("tls_freeze", "tls_resumed"),
        sum("tls_cold_crash_follower", "tls_full"),
        sum("tls_cold_crash_follower", "tls_resumed"),
    );
    let share = f.med("tls_crash_follower", "zk-failover", "share_ms");
    let java = f.med("tls_crash_follower", "java", "share_ms");
    let _ = writeln!(
        o,
        "\nTarget (issue 16): client share over TLS (kill −9 of the follower) p50 ≤ 2 × the \
         resumed TLS floor: {} vs {} — {}; ahead of the Java client over TLS ({}): {}. \
         zookeeper-client is not measured over TLS: its `tls` feature brings aws-lc-rs, \
         which `deny.toml` refuses (see docs/tls.md).\n",
        fmt_ms(share),
        fmt_ms(2.0 * resumed),
        verdict(share <= 2.0 * resumed),
        fmt_ms(java),
        verdict(share < java),
    );
    o
}

fn scenario_rows(f: &View<'_>, scen: &[(&str, &str)], o: &mut String) {
    for (g, label) in scen.iter().copied() {
        for (c, cname) in CLIENTS {
            let p = f.v(g, c, "pause_ms");
            if p.is_empty() && f.v(g, c, "errors").is_empty() {
                continue;
            }
            let kept = f.v(g, c, "kept");
            let errors = f.v(g, c, "errors").len();
            let ours = f.med(g, "zk-failover", "pause_ms");
            let _ = writeln!(
                o,
                "| {label} | {cname} | {} | {} / {} | {} | {} / {} | {}/{}{} | {} |",
                p.len(),
                fmt_ms(median(&p)),
                fmt_ms(max(&p)),
                fmt_ms(f.med(g, c, "detect_ms")),
                fmt_ms(f.med(g, c, "share_ms")),
                fmt_ms(f.max(g, c, "share_ms")),
                kept.iter().filter(|k| **k > 0.5).count(),
                kept.len() + errors,
                if errors > 0 {
                    format!(" ({errors} failed)")
                } else {
                    String::new()
                },
                if c == "zk-failover" {
                    "1×".into()
                } else {
                    ratio(median(&p), ours)
                }
            );
        }
    }
}

fn generated(f: &View<'_>, s: &View<'_>) -> String {
    let mut o = String::new();
    let (n, model, load) = sys::machine();
    let _ = writeln!(
        o,
        "Machine: {n} cores ({model}), shared with other work; load average when the report \
         was written: {load}. Failover run load (1-min average) at start/end: {} / {}.\n",
        fmt_load(f, "load_start"),
        fmt_load(f, "load_end")
    );

    // --- Failover table.
    let floor = f.med("floor", "raw", "handshake_ms");
    let _ = writeln!(
        o,
        "### Failover (3-node ensemble on loopback, tick 200 ms, T = 6 s unless noted, \
         continuous sequential reads)\n\n\
         Floor (bare TCP connect + ConnectRequest/ConnectResponse for an existing session, \
         same run): p50 **{}**, max {} (n = {}).\n",
        fmt_ms(floor),
        fmt_ms(f.max("floor", "raw", "handshake_ms")),
        f.v("floor", "raw", "handshake_ms").len()
    );
    let after = f.v("floor_after_crash", "raw", "share_ms");
    if !after.is_empty() {
        let _ = writeln!(
            o,
            "Floor right after a crash (the bare protocol failing over once: kill −9 of the \
             follower its raw session is on, then from the EOF a handshake on a survivor and one \
             `getData`, same run; comparable to *client share* of the first row): p50 **{}**, \
             max {} (n = {}); handshake alone p50 {}; p50 by survivor: leader {}, other \
             follower {} (which asks the leader to revalidate the session).\n",
            fmt_ms(median(&after)),
            fmt_ms(max(&after)),
            after.len(),
            fmt_ms(f.med("floor_after_crash", "raw", "handshake_ms")),
            fmt_ms(f.med("floor_after_crash", "raw", "share_leader_ms")),
            fmt_ms(f.med("floor_after_crash", "raw", "share_follower_ms")),
        );
    }
    o.push_str(
        "| scenario | client | n | pause p50 / max | detect p50 | client share p50 / max | \
         kept | pause ratio to zk-failover (p50) |\n|---|---|---|---|---|---|---|---|\n",
    );
    let scen = [
        ("crash_follower", "kill −9 of the connected follower"),
        ("crash_leader", "kill −9 of the connected leader"),
        ("freeze", "SIGSTOP of the connected server"),
        ("freeze_adaptive_6s", "SIGSTOP, adaptive detector, T = 6 s"),
        (
            "freeze_adaptive_30s",
            "SIGSTOP, adaptive detector, T = 30 s",
        ),
        ("freeze_30s", "SIGSTOP, default detectors, T = 30 s"),
        (
            "freeze_two_of_three",
            "connected host + one more blackholed",
        ),
    ];
    scenario_rows(f, &scen, &mut o);
    o.push_str(
        "\n*pause* = signal → first successful read after the client noticed; *detect* = signal → \
         the client noticed (first failed read; for zk-failover, whose reads are re-sent instead \
         of failing, the engine's disconnect instant); *client share* = pause − detect. Ratios > 1× \
         mean zk-failover is faster.\n\n",
    );

    // Leader crash: election.
    o.push_str(
        "| kill −9 of the leader | election (ensemble serves again) p50 | beyond it p50 / max | \
         ratio to zk-failover (p50 beyond) |\n|---|---|---|---|\n",
    );
    for (c, cname) in CLIENTS {
        let b = f.v("crash_leader", c, "beyond_election_ms");
        if b.is_empty() {
            continue;
        }
        let _ = writeln!(
            o,
            "| {cname} | {} | {} / {} | {} |",
            fmt_ms(f.med("crash_leader", c, "election_ms")),
            fmt_ms(median(&b)),
            fmt_ms(max(&b)),
            if c == "zk-failover" {
                "1×".into()
            } else {
                ratio(
                    median(&b),
                    f.med("crash_leader", "zk-failover", "beyond_election_ms"),
                )
            }
        );
    }
    o.push_str(
        "\n*election* = signal → the first survivor that accepts a raw handshake of an existing \
         session (polled every ~1 ms on both survivors during the sample).\n\n",
    );

    // Storm.
    o.push_str(
        "| storm: sessions on the killed follower | all reading again p50 / max | client CPU p50 \
         (share of a core) | machine busy | sessions lost |\n|---|---|---|---|---|\n",
    );
    for (c, cname) in CLIENTS {
        let b = f.v("storm", c, "all_back_ms");
        if b.is_empty() {
            continue;
        }
        let cpu = f.med("storm", c, "cpu_ms");
        let _ = writeln!(
            o,
            "| {cname} ({:.0}) | {} / {} | {} ({:.0} %) | {:.0} % | {:.0} |",
            f.med("storm", c, "sessions"),
            fmt_ms(median(&b)),
            fmt_ms(max(&b)),
            fmt_ms(cpu),
            100.0 * cpu / median(&b),
            f.med("storm", c, "machine_busy_pct"),
            f.v("storm", c, "lost").iter().sum::<f64>()
        );
    }
    // Rolling replacement.
    let steps = ["add 4–6", "remove 1", "remove 2", "remove 3"];
    let mut rows = String::new();
    for (c, cname) in CLIENTS {
        let kept = f.v("rolling_replacement", c, "kept");
        if kept.is_empty() {
            continue;
        }
        let cells: Vec<String> = (0..steps.len())
            .map(|n| {
                let v = f.v("rolling_replacement", c, &format!("step{n}_pause_ms"));
                match v.first() {
                    Some(x) if x.is_finite() => fmt_ms(*x),
                    Some(_) => "**not reading**".to_owned(),
                    None => "–".to_owned(),
                }
            })
            .collect();
        let _ = writeln!(
            rows,
            "| {cname} | {} | {} |",
            cells.join(" | "),
            if kept.iter().all(|k| *k > 0.0) {
                "yes"
            } else {
                "**no**"
            }
        );
    }
    if !rows.is_empty() {
        o.push_str(
            "\n**Rolling replacement** (`rolling_replacement`): servers 1–3 of a dynamic \
             ensemble replaced by 4–6 at run time (`reconfig`), the removed servers stopped \
             1.5 s after their removal; one session per client on the string of 1–3, reading in \
             a loop; per step the longest time without a successful read (the Java probe counts \
             only from a failed read to the next success: a read that waits is not counted, so \
             its figures are lower bounds). zk-failover follows `/zookeeper/config`; the peers \
             keep their static lists. The last step removes the leader: an election.\n\n\
             | client | add 4–6 | remove 1 | remove 2 | remove 3 | session kept |\n\
             |---|---|---|---|---|---|\n",
        );
        o.push_str(&rows);
    }
    o.push_str("\n![pause distributions](failover-pauses.svg)\n\n");

    // --- Steady state.
    o.push_str(
        "### Steady state (same follower for every client; servers with C2)\n\n\
         | operation, in flight | zk-failover ops/s | zookeeper-client ops/s | Java ops/s | \
         ratio to zookeeper-client / Java | client CPU µs/op (zk-failover / zookeeper-client / Java) \
         | CPU ratio to zookeeper-client |\n|---|---|---|---|---|---|---|\n",
    );
    for op in ["read", "write"] {
        for k in [1, 16, 256] {
            let g = format!("{op}_{k}");
            let ops: Vec<f64> = CLIENTS
                .iter()
                .map(|(c, _)| s.med(&g, c, "ops_per_s"))
                .collect();
            let cpu: Vec<f64> = CLIENTS
                .iter()
                .map(|(c, _)| s.med(&g, c, "cpu_us_per_op"))
                .collect();
            if ops.iter().all(|v| v.is_nan()) {
                continue;
            }
            let _ = writeln!(
                o,
                "| {op}, {k} | {:.0} | {:.0} | {:.0} | {} / {} | {:.1} / {:.1} / {:.1} | {} |",
                ops[0],
                ops[1],
                ops[2],
                ratio(ops[0], ops[1]),
                ratio(ops[0], ops[2]),
                cpu[0],
                cpu[1],
                cpu[2],
                if cpu[1] > 0.0 {
                    format!("{:.2}×", cpu[0] / cpu[1])
                } else {
                    "–".into()
                }
            );
        }
    }
    let paired = s.v("paired_read_256", "zk-failover", "ops_ratio");
    let paired_cpu = s.v("paired_read_256", "zk-failover", "cpu_ratio");
    if !paired.is_empty() && !paired_cpu.is_empty() {
        let lo = paired.iter().copied().fold(f64::INFINITY, f64::min);
        let hi = paired.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        let _ = writeln!(
            o,
            "\n**Paired rounds**, 256 reads in flight: zk-failover and zookeeper-client alternate \
             (ABBA), 60,000 reads each per round, so the servers' drift weighs on both alike. \
             zk-failover ÷ zookeeper-client over {} rounds: ops/s **{:.2}×** median (range \
             {lo:.2}–{hi:.2}×), CPU per read **{:.2}×** median.",
            paired.len(),
            median(&paired),
            median(&paired_cpu)
        );
    }
    let mut rows = String::new();
    for (t, tname) in [
        ("plain", "plain TCP (NIO)"),
        ("tls", "TLS 1.2, mutual (Netty)"),
    ] {
        let g = format!("batching_{t}");
        let ops = s.v(&g, "zk-failover", "ops_ratio");
        let cpu = s.v(&g, "zk-failover", "cpu_ratio");
        if ops.is_empty() || cpu.is_empty() {
            continue;
        }
        let _ = writeln!(
            rows,
            "| {tname} | {} | {:.2}× | {:.1} / {:.1} µs | {:.2}× |",
            ops.len(),
            median(&ops),
            s.med(&g, "zk-failover", "cpu_us_on"),
            s.med(&g, "zk-failover", "cpu_us_off"),
            median(&cpu)
        );
    }
    if !rows.is_empty() {
        o.push_str(
            "\n**Reply batching on ÷ off** (`SessionConfig::reply_batching`), 256 reads in \
             flight on a follower, the two settings alternating (ABBA), 40,000 reads each per \
             round; TLS on an ensemble of its own (TLS needs Netty's connection factory, which \
             here served about three times as many reads per second as the plain ensemble's \
             NIO factory; with batching off the client's CPU per read over it is already less \
             than half the plain figure, so there is less left to save):\n\n\
             | transport | rounds | ops/s on ÷ off (median) | client CPU per read, on / off \
             | CPU on ÷ off |\n|---|---|---|---|---|\n",
        );
        o.push_str(&rows);
    }
    let ops = s.v("metrics", "zk-failover", "ops_ratio");
    let cpu = s.v("metrics", "zk-failover", "cpu_ratio");
    if !ops.is_empty() && !cpu.is_empty() {
        let (lo, hi) = (
            cpu.iter().copied().fold(f64::INFINITY, f64::min),
            cpu.iter().copied().fold(f64::NEG_INFINITY, f64::max),
        );
        let _ = write!(
            o,
            "\n**Metrics on ÷ off** (feature `metrics`; on: a `metrics-exporter-prometheus` \
             recorder, its text rendered once per round like a scrape; off: no recorder), 256 \
             reads in flight on a follower, ABBA over {} rounds of 40,000 reads: ops/s **{:.2}×**, \
             client CPU per read **{:.3}×** median (range {lo:.3}–{hi:.3}×; {:.1} / {:.1} µs). \
             The engine records per connection event, never per request, so the steady state \
             pays nothing measurable.\n",
            ops.len(),
            median(&ops),
            median(&cpu),
            s.med("metrics", "zk-failover", "cpu_us_on"),
            s.med("metrics", "zk-failover", "cpu_us_off"),
        );
    }
    o.push_str(
        "\nops/s ratios > 1× mean zk-failover is faster; the CPU ratio is zk-failover's CPU per \
         operation divided by zookeeper-client's (< 1× = cheaper). CPU = run time of every thread \
         of the client's process (the Rust clients share the bench process with the idle other \
         client; the Java client runs in its own JVM).\n\n",
    );
    o.push_str("| client | sequential read p50 / p99 | RSS per idle session (1,000 sessions) |\n|---|---|---|\n");
    for (c, cname) in CLIENTS {
        let _ = writeln!(
            o,
            "| {cname} | {:.0} / {:.0} µs | {:.1} KiB |",
            s.med("latency", c, "p50_us"),
            s.med("latency", c, "p99_us"),
            s.med("idle", c, "rss_kib_per_session")
        );
    }

    // --- Targets.
    o.push_str("\n### Targets (issue 6)\n\n| target | measured | |\n|---|---|---|\n");
    let share = f.v("crash_follower", "zk-failover", "share_ms");
    let _ = writeln!(
        o,
        "| crash of the follower: client share ≤ 2× floor at p50, ≤ 10 ms max | p50 {} (2× floor = {}), max {} | {} |",
        fmt_ms(median(&share)),
        fmt_ms(2.0 * floor),
        fmt_ms(max(&share)),
        verdict(median(&share) <= 2.0 * floor && max(&share) <= 10.0)
    );
    if !after.is_empty() {
        let _ = writeln!(
            o,
            "| (same, against the floor right after a crash: ≤ 2× at p50) | p50 {} (2× = {}) | {} |",
            fmt_ms(median(&share)),
            fmt_ms(2.0 * median(&after)),
            verdict(median(&share) <= 2.0 * median(&after))
        );
    }
    let be = f.v("crash_leader", "zk-failover", "beyond_election_ms");
    let _ = writeln!(
        o,
        "| crash of the leader: ≤ 10 ms p50 beyond the election (issue 12; the first election a process sees is probed fleet-safely, ≤ 250 ms late: the max) | p50 {}, max {} | {} |",
        fmt_ms(median(&be)),
        fmt_ms(max(&be)),
        verdict(median(&be) <= 10.0 && max(&be) <= 250.0)
    );
    let fr = f.max("freeze", "zk-failover", "pause_ms");
    let _ = writeln!(
        o,
        "| freeze, default detector: ≤ T/3 + 100 ms max (2.1 s) | max {} ({:.3} T) | {} |",
        fmt_ms(fr),
        fr / 6000.0,
        verdict(fr <= 2100.0)
    );
    for (g, t) in [
        ("freeze_adaptive_6s", "6 s"),
        ("freeze_adaptive_30s", "30 s"),
    ] {
        let m = f.max(g, "zk-failover", "pause_ms");
        let _ = writeln!(
            o,
            "| freeze, adaptive detector, T = {t}: ≤ 1 s | max {} | {} |",
            fmt_ms(m),
            verdict(m <= 1000.0)
        );
    }
    let two = f.v("freeze_two_of_three", "zk-failover", "pause_ms");
    let kept = f.v("freeze_two_of_three", "zk-failover", "kept");
    let all_kept = !kept.is_empty()
        && kept.iter().all(|k| *k > 0.5)
        && f.v("freeze_two_of_three", "zk-failover", "errors")
            .is_empty();
    let _ = writeln!(
        o,
        "| two hosts unresponsive: session kept every time, pause ≤ T/3 + one attempt cap (2 s + 1 s) | kept {}/{}, max {} | {} |",
        kept.iter().filter(|k| **k > 0.5).count(),
        kept.len(),
        fmt_ms(max(&two)),
        verdict(all_kept && max(&two) <= 3000.0)
    );
    let sb = f.max("storm", "zk-failover", "all_back_ms");
    let (cpu_o, cpu_z) = (
        f.med("storm", "zk-failover", "cpu_ms"),
        f.med("storm", "zookeeper-client", "cpu_ms"),
    );
    let lost: f64 = f.v("storm", "zk-failover", "lost").iter().sum();
    let _ = writeln!(
        o,
        "| storm: 1,000 sessions back within 1 s, none expired, CPU ≤ zookeeper-client | max {}, lost {lost:.0}, CPU {} vs {} | {} |",
        fmt_ms(sb),
        fmt_ms(cpu_o),
        fmt_ms(cpu_z),
        verdict(sb <= 1000.0 && lost == 0.0 && cpu_o <= cpu_z)
    );
    let (r_o, r_z) = (
        s.med("read_256", "zk-failover", "ops_per_s"),
        s.med("read_256", "zookeeper-client", "ops_per_s"),
    );
    let (c_o, c_z) = (
        s.med("read_256", "zk-failover", "cpu_us_per_op"),
        s.med("read_256", "zookeeper-client", "cpu_us_per_op"),
    );
    // The paired rounds (alternating clients) decide when present; criterion's rows otherwise.
    let (p_ops, p_cpu) = (
        s.v("paired_read_256", "zk-failover", "ops_ratio"),
        s.v("paired_read_256", "zk-failover", "cpu_ratio"),
    );
    if p_ops.is_empty() || p_cpu.is_empty() {
        let _ = writeln!(
            o,
            "| pipelined reads (256 in flight): ≥ 1.1× zookeeper-client ops/s, CPU/op ≤ 0.5× | {:.2}× ops/s, {:.2}× CPU/op | {} |",
            r_o / r_z,
            c_o / c_z,
            verdict(r_o >= 1.1 * r_z && c_o <= 0.5 * c_z)
        );
    } else {
        let (po, pc) = (median(&p_ops), median(&p_cpu));
        let _ = writeln!(
            o,
            "| pipelined reads (256 in flight): ≥ 1.1× zookeeper-client ops/s, CPU/op ≤ 0.5× | paired rounds: {po:.2}× ops/s, {pc:.2}× CPU/op (medians of {} rounds; criterion rows: {:.2}×, {:.2}×) | {} |",
            p_ops.len(),
            r_o / r_z,
            c_o / c_z,
            verdict(po >= 1.1 && pc <= 0.5)
        );
    }
    o.push('\n');
    o
}

fn fmt_load(f: &View<'_>, m: &str) -> String {
    let v = f.v("machine", "-", m);
    if v.is_empty() {
        "–".into()
    } else {
        format!("{:.2}", median(&v))
    }
}

/// A strip plot of every pause sample on a log time axis (1 ms … 60 s), one row per scenario
/// and client, median marked.
fn svg(f: &View<'_>) -> String {
    let scen = [
        ("floor", "floor (handshake)"),
        ("crash_follower", "crash follower"),
        ("crash_leader", "crash leader"),
        ("freeze", "freeze, T = 6 s"),
        ("freeze_adaptive_6s", "freeze, adaptive, 6 s"),
        ("freeze_adaptive_30s", "freeze, adaptive, 30 s"),
        ("freeze_30s", "freeze, T = 30 s"),
        ("freeze_two_of_three", "two hosts blackholed"),
        ("storm", "storm (all back)"),
    ];
    let mut rows: Vec<(String, usize, Vec<f64>)> = Vec::new();
    for (g, label) in scen {
        if g == "floor" {
            let v = f.v("floor", "raw", "handshake_ms");
            if !v.is_empty() {
                rows.push((label.into(), 3, v));
            }
            continue;
        }
        for (i, (c, _)) in CLIENTS.iter().enumerate() {
            let m = if g == "storm" {
                "all_back_ms"
            } else {
                "pause_ms"
            };
            let v = f.v(g, c, m);
            if !v.is_empty() {
                rows.push((label.into(), i, v));
            }
        }
    }
    let (left, top, width, row_h) = (190.0, 40.0, 620.0, 18.0);
    let height = top + row_h * rows.len() as f64 + 50.0;
    let (lo, hi) = (0.0_f64, 60_000.0_f64.log10() - 1.0_f64.log10());
    let x = |ms: f64| left + width * ((ms.max(1.0).log10() - lo) / hi).clamp(0.0, 1.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        left + width + 30.0
    );
    let _ = writeln!(
        o,
        r#"<text x="{left}" y="16" font-size="13">Failover pause per sample (log scale; bar = median)</text>"#
    );
    for (i, (c, _)) in CLIENTS.iter().enumerate() {
        let lx = left + 10.0 + 190.0 * i as f64;
        let _ = writeln!(
            o,
            r#"<circle cx="{lx}" cy="28" r="4" fill="{}"/><text x="{}" y="32">{c}</text>"#,
            COLORS[i],
            lx + 8.0
        );
    }
    for t in [1.0, 10.0, 100.0, 1000.0, 10_000.0, 60_000.0] {
        let tx = x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{tx}" y1="{top}" x2="{tx}" y2="{}" stroke="#ddd"/><text x="{tx}" y="{}" text-anchor="middle">{}</text>"##,
            height - 40.0,
            height - 26.0,
            fmt_ms(t)
        );
    }
    let mut last_label = String::new();
    for (r, (label, ci, v)) in rows.iter().enumerate() {
        let y = top + row_h * (r as f64 + 0.5);
        if *label != last_label {
            let _ = writeln!(
                o,
                r##"<line x1="0" y1="{}" x2="{}" y2="{}" stroke="#eee"/><text x="{}" y="{}" text-anchor="end">{label}</text>"##,
                y - row_h / 2.0,
                left + width,
                y - row_h / 2.0,
                left - 8.0,
                y + 4.0
            );
            last_label.clone_from(label);
        }
        let color = COLORS.get(*ci).copied().unwrap_or("#2ca02c");
        for s in sorted(v) {
            let _ = writeln!(
                o,
                r#"<circle cx="{:.1}" cy="{y:.1}" r="3" fill="{color}" fill-opacity="0.6"/>"#,
                x(s)
            );
        }
        let mx = x(median(v));
        let _ = writeln!(
            o,
            r#"<line x1="{mx:.1}" y1="{:.1}" x2="{mx:.1}" y2="{:.1}" stroke="{color}" stroke-width="2"/>"#,
            y - 7.0,
            y + 7.0
        );
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">time from the fault to the first successful read (floor: one handshake)</text></svg>"#,
        left + width / 2.0,
        height - 8.0
    );
    o
}

const FLEET_BEGIN: &str = "<!-- BEGIN GENERATED FLEET (cargo bench -p zk-bench --bench fleet) -->";
const FLEET_END: &str = "<!-- END GENERATED FLEET -->";
const FLEET_ROWS: [(&str, &str); 5] = [
    ("baseline", "no clients (baseline)"),
    ("zk-failover", "zk-failover (this project)"),
    (
        "zk-failover-learned",
        "zk-failover, second kill (each process learned from the first)",
    ),
    ("zookeeper-client", "zookeeper-client 0.11 (Rust)"),
    ("java", "Java client 3.8"),
];

/// Regenerates the fleet section of `docs/benchmarks.md` (between its own markers, so the
/// failover/steady report and this one can be rendered independently) and `docs/fleet.svg`
/// from `target/bench-results/fleet.tsv`; errors are printed, never fatal.
pub(crate) fn render_fleet() {
    let r = Results::read("fleet");
    let v = View(&r);
    let docs = repo_dir().join("docs");
    let _ = std::fs::create_dir_all(&docs);
    let chart = fleet_groups(&v)
        .into_iter()
        .rev()
        .find(|p| *p == 200)
        .or_else(|| fleet_groups(&v).into_iter().max());
    if let Some(p) = chart
        && let Err(e) = std::fs::write(docs.join("fleet.svg"), fleet_svg(&v, p))
    {
        eprintln!("report: cannot write docs/fleet.svg: {e}");
    }
    let body = fleet_section(&v, chart);
    replace_block(FLEET_BEGIN, FLEET_END, &body, "the fleet section");
}

/// The fleet sizes with results (`p100` → 100), ascending.
fn fleet_groups(v: &View<'_>) -> Vec<usize> {
    let mut ps: Vec<usize> =
        v.0.rows
            .iter()
            .filter_map(|r| r.group.strip_prefix('p').and_then(|p| p.parse().ok()))
            .collect();
    ps.sort_unstable();
    ps.dedup();
    ps
}

/// Per trial: (`counter` − the poller's connections − the quorum's own) / P, where the
/// quorum's own is the median of (`counter` − poller) over the baseline trials of the group.
/// `counter` is `passive_opens` (connections the servers accepted) or `active_opens` (every
/// `connect()` on the machine, including those the killed server's closed port refused).
/// Per trial of client `c`: `counter` minus the election poller's own connections.
fn minus_poller(v: &View<'_>, g: &str, c: &str, counter: &str) -> Vec<f64> {
    v.v(g, c, counter)
        .iter()
        .zip(v.v(g, c, "poller_conns"))
        .map(|(p, q)| p - q)
        .collect()
}

fn conns_per_process(v: &View<'_>, g: &str, c: &str, counter: &str) -> Vec<f64> {
    let own = minus_poller(v, g, "baseline", counter);
    let own = if own.is_empty() { 0.0 } else { median(&own) };
    minus_poller(v, g, c, counter)
        .iter()
        .zip(v.v(g, c, "members"))
        .map(|(p, n)| ((p - own) / n.max(1.0)).max(0.0))
        .collect()
}

fn fleet_section(v: &View<'_>, chart: Option<usize>) -> String {
    let mut o = String::new();
    let (n, model, load) = sys::machine();
    let _ = writeln!(
        o,
        "### Fleet: P client processes failing over together when the leader is killed\n\n\
         `benches/fleet.rs` (`cargo bench -p zk-bench --bench fleet`): the failover benchmark's 3-node \
         ensemble (tick 200 ms, T = 6 s, `clientPortListenBacklog` 1024), P separate OS \
         processes each with one session reading `/probe` every 100 ms (default client \
         settings; Rust members are this executable re-executed, Java members one JVM each with \
         `-Xmx32m -Xss256k -XX:+UseSerialGC -XX:TieredStopAtLevel=1 -Xshare:auto`, kept across \
         trials with a fresh session per trial), then `kill -9` of the leader. Clients rotate \
         within each trial, the same kill with no clients (*baseline*) included; medians over \
         the trials. *election* = kill → the first survivor answering `srvr` as leader or \
         follower (polled every 20 ms); *back* = kill → a process's first successful read after \
         its last failure (a client whose reads fail while disconnected notices recovery at its \
         next 100 ms read; zk-failover's reads wait and are re-sent); *connections per process* \
         = the kernel's `Tcp: PassiveOpens` delta over the window (kill → every process back), \
         minus the poller's own connections and the quorum's own (the baseline's median), ÷ P; \
         *listen drops* = `TcpExt: ListenOverflows` / `ListenDrops` deltas; CPU over the window: \
         the two surviving JVMs' utime+stime (`/proc/<pid>/stat`, 10 ms ticks) and the run \
         time of every fleet process's threads (`/proc/<pid>/task/*/schedstat`). Java runs at \
         P ≤ 100 only (a JVM per member). The kernel counters cover the whole machine: other \
         loopback traffic during a window (e.g. a build's tests) is counted too.\n\n\
         Machine: {n} cores ({model}); load average when written: {load}; fleet run load \
         (1-min) at start/end: {} / {}.",
        fmt_load(v, "load_start"),
        fmt_load(v, "load_end"),
    );
    for p in fleet_groups(v) {
        let g = format!("p{p}");
        let base = v.med(&g, "baseline", "election_ms");
        let _ = writeln!(
            o,
            "\n**P = {p}**\n\n| client | trials | election (× no-client) | last process back | \
             back p50 / p90 | connections per process: accepted / `connect()` calls | listen overflows / drops | survivors' \
             CPU | fleet CPU | sessions lost |\n|---|---|---|---|---|---|---|---|---|---|"
        );
        for (c, name) in FLEET_ROWS {
            let el = v.v(&g, c, "election_ms");
            let errors = v.v(&g, c, "errors").len();
            if el.is_empty() && errors == 0 {
                continue;
            }
            let trials = v.v(&g, c, "window_ms").len();
            let failed = if errors > 0 {
                format!(" ({errors} failed)")
            } else {
                String::new()
            };
            let el_cell = if c == "baseline" {
                fmt_ms(median(&el))
            } else if base > 0.0 {
                format!("{} ({:.2}×)", fmt_ms(median(&el)), median(&el) / base)
            } else {
                fmt_ms(median(&el))
            };
            let drops = format!(
                "{:.0} / {:.0}",
                v.med(&g, c, "listen_overflows"),
                v.med(&g, c, "listen_drops")
            );
            if c == "baseline" {
                let own = minus_poller(v, &g, c, "passive_opens");
                let own_active = minus_poller(v, &g, c, "active_opens");
                let _ = writeln!(
                    o,
                    "| {name} | {trials}{failed} | {el_cell} | – | – | – (quorum's own: {:.0} / {:.0} per election) | {drops} | {} | – | – |",
                    median(&own),
                    median(&own_active),
                    fmt_ms(v.med(&g, c, "survivors_cpu_ms")),
                );
                continue;
            }
            let members = v.med(&g, c, "members");
            let not_back: f64 = v.v(&g, c, "not_back").iter().sum();
            let last = if not_back > 0.0 {
                format!(
                    "{} ({not_back:.0} not back in 15 s)",
                    fmt_ms(v.med(&g, c, "last_back_ms"))
                )
            } else {
                fmt_ms(v.med(&g, c, "last_back_ms"))
            };
            let members_note = if members.is_nan() || members as usize == p {
                String::new()
            } else {
                format!(" (P = {members:.0})")
            };
            let _ = writeln!(
                o,
                "| {name}{members_note} | {trials}{failed} | {el_cell} | {last} | {} / {} | {:.1} / {:.1} | {drops} | {} | {} | {:.0} |",
                fmt_ms(v.med(&g, c, "p50_back_ms")),
                fmt_ms(v.med(&g, c, "p90_back_ms")),
                median(&conns_per_process(v, &g, c, "passive_opens")),
                median(&conns_per_process(v, &g, c, "active_opens")),
                fmt_ms(v.med(&g, c, "survivors_cpu_ms")),
                fmt_ms(v.med(&g, c, "fleet_cpu_ms")),
                v.v(&g, c, "lost").iter().sum::<f64>(),
            );
        }
        let att = v.v(&g, "zk-failover", "engine_attempts_per_process");
        if !att.is_empty() {
            let _ = writeln!(
                o,
                "\nzk-failover's own count of connection attempts per process (its engine's \
                 counters, the whole trial): {:.1} (median of the trials).",
                median(&att)
            );
        }
    }
    if fleet_groups(v).contains(&200) || chart.is_some() {
        fleet_targets(v, &mut o);
    }
    if let Some(p) = chart {
        let _ = writeln!(
            o,
            "\n![election and last process back at P = {p}](fleet.svg)"
        );
    }
    o
}

/// The issue-12 targets for zk-failover at P = 200 (or the largest P measured).
fn fleet_targets(v: &View<'_>, o: &mut String) {
    let groups = fleet_groups(v);
    let Some(p) = groups
        .iter()
        .copied()
        .find(|p| *p == 200)
        .or_else(|| groups.iter().copied().max())
    else {
        return;
    };
    let g = format!("p{p}");
    let ours = "zk-failover";
    if v.v(&g, ours, "election_ms").is_empty() {
        return;
    }
    let _ = writeln!(
        o,
        "\n**Targets (issue 12), zk-failover at P = {p}** (medians of the trials; listen drops: \
         every trial)\n\n| target | measured | |\n|---|---|---|"
    );
    let (el, base) = (
        v.med(&g, ours, "election_ms"),
        v.med(&g, "baseline", "election_ms"),
    );
    let _ = writeln!(
        o,
        "| election ≤ 1.15 × the no-client election | {} vs {} × 1.15 = {} ({:.2}×) | {} |",
        fmt_ms(el),
        fmt_ms(base),
        fmt_ms(1.15 * base),
        el / base,
        verdict(el <= 1.15 * base)
    );
    let conns = median(&conns_per_process(v, &g, ours, "passive_opens"));
    let calls = median(&conns_per_process(v, &g, ours, "active_opens"));
    let _ = writeln!(
        o,
        "| ≤ 5 connection attempts per process (accepted by a server: `PassiveOpens`) | {conns:.1} \
         (`connect()` calls, including those the killed server's port refused: {calls:.1}{}) | {} |",
        if calls > 5.0 { ", over 5" } else { "" },
        verdict(conns <= 5.0)
    );
    let drops = max(&v.v(&g, ours, "listen_drops")).max(max(&v.v(&g, ours, "listen_overflows")));
    let _ = writeln!(
        o,
        "| 0 listen drops | {drops:.0} (most in one trial) | {} |",
        verdict(drops == 0.0)
    );
    let beyond = v.med(&g, ours, "last_back_minus_election_ms");
    let last = v.med(&g, ours, "last_back_ms");
    let _ = writeln!(
        o,
        "| last process back ≤ election + 250 ms | {} = election + {} | {} |",
        fmt_ms(last),
        fmt_ms(beyond),
        verdict(beyond <= 250.0)
    );
    let peers: Vec<(f64, &str)> = [("zookeeper-client", "zookeeper-client"), ("java", "Java")]
        .iter()
        .map(|(c, n)| (v.med(&g, c, "last_back_ms"), *n))
        .filter(|(x, _)| !x.is_nan())
        .collect();
    if let Some((best, name)) = peers.iter().copied().min_by(|a, b| a.0.total_cmp(&b.0)) {
        let _ = writeln!(
            o,
            "| last process back ≤ 0.5 × the best peer's | {} vs {name} {} ({:.2}×) | {} |",
            fmt_ms(last),
            fmt_ms(best),
            last / best,
            verdict(last <= 0.5 * best)
        );
    }
}

/// Bars of the election and the last process back per client at P = `p`.
fn fleet_svg(v: &View<'_>, p: usize) -> String {
    let g = format!("p{p}");
    let rows: Vec<(&str, f64, f64)> = FLEET_ROWS
        .iter()
        .map(|(c, name)| {
            (
                *name,
                v.med(&g, c, "election_ms"),
                v.med(&g, c, "last_back_ms"),
            )
        })
        .filter(|(_, e, _)| !e.is_nan())
        .collect();
    let top = rows
        .iter()
        .flat_map(|(_, e, l)| [*e, *l])
        .filter(|x| !x.is_nan())
        .fold(100.0_f64, f64::max);
    // A round axis end: 1, 2 or 5 × 10^k ms.
    let mag = 10f64.powf(top.log10().floor());
    let end = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|e| *e >= top)
        .unwrap_or(10.0 * mag);
    let (left, width, top_y, row_h) = (210.0, 560.0, 50.0, 44.0);
    let height = top_y + row_h * rows.len() as f64 + 50.0;
    let x = |ms: f64| left + width * (ms / end).clamp(0.0, 1.0);
    let mut o = String::new();
    let _ = writeln!(
        o,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{}" height="{height}" font-family="sans-serif" font-size="11">"#,
        left + width + 40.0
    );
    let _ = writeln!(
        o,
        r#"<text x="10" y="18" font-size="13">Leader killed under a fleet of {p} client processes: election and last process back (medians)</text>"#
    );
    let _ = writeln!(
        o,
        r##"<rect x="{left}" y="28" width="10" height="10" fill="#7f7f7f"/><text x="{}" y="37">election (first survivor serving)</text><rect x="{}" y="28" width="10" height="10" fill="#d62728"/><text x="{}" y="37">last process back</text>"##,
        left + 14.0,
        left + 230.0,
        left + 244.0
    );
    for i in 0..=5 {
        let t = end * f64::from(i) / 5.0;
        let tx = x(t);
        let _ = writeln!(
            o,
            r##"<line x1="{tx:.1}" y1="{top_y}" x2="{tx:.1}" y2="{}" stroke="#ddd"/><text x="{tx:.1}" y="{}" text-anchor="middle">{}</text>"##,
            height - 40.0,
            height - 26.0,
            fmt_ms(t)
        );
    }
    for (i, (name, e, l)) in rows.iter().enumerate() {
        let y = top_y + row_h * i as f64 + 6.0;
        let _ = writeln!(
            o,
            r#"<text x="{}" y="{}" text-anchor="end">{name}</text>"#,
            left - 8.0,
            y + 18.0
        );
        let _ = writeln!(
            o,
            r##"<rect x="{left}" y="{y:.1}" width="{:.1}" height="14" fill="#7f7f7f"/><text x="{:.1}" y="{:.1}">{}</text>"##,
            x(*e) - left,
            x(*e) + 4.0,
            y + 11.0,
            fmt_ms(*e)
        );
        if !l.is_nan() {
            let _ = writeln!(
                o,
                r##"<rect x="{left}" y="{:.1}" width="{:.1}" height="14" fill="#d62728"/><text x="{:.1}" y="{:.1}">{}</text>"##,
                y + 16.0,
                x(*l) - left,
                x(*l) + 4.0,
                y + 27.0,
                fmt_ms(*l)
            );
        }
    }
    let _ = writeln!(
        o,
        r#"<text x="{}" y="{}" text-anchor="middle">time from kill -9 of the leader</text></svg>"#,
        left + width / 2.0,
        height - 8.0
    );
    o
}

const SASL_BEGIN: &str = "<!-- BEGIN GENERATED SASL (cargo bench -p zk-bench --bench failover --features gssapi -- sasl) -->";
const SASL_END: &str = "<!-- END GENERATED SASL -->";

/// Writes the SASL section of `docs/benchmarks.md` (its own markers, before "Reading the
/// results") from the `sasl_*` rows of `failover.tsv`.
pub(crate) fn render_sasl() {
    let r = Results::read("failover");
    let v = View(&r);
    let mut o = String::new();
    let rtt = v.med("sasl_rtt", "zk-failover", "rtt_ms");
    let _ = writeln!(
        o,
        "Kill −9 of the follower the session is on, on 3-node ensembles whose servers take \
         DIGEST-MD5 (plain and DIGEST-MD5 sessions side by side) or Kerberos (a throwaway MIT \
         KDC of the test kit); the Java client 3.8 runs with the same JAAS set-up. Pause: from \
         the kill to the first successful read; client share: pause − the moment the client \
         noticed. Medians (max) of {} samples per row. One loopback round trip (a `getData` \
         on the same ensemble, median of 200): {}.\n",
        v.v("sasl_plain", "zk-failover", "pause_ms").len(),
        fmt_ms(rtt)
    );
    let _ = writeln!(
        o,
        "| mechanism | zk-failover pause | zk-failover client share | Java pause | Java client share |"
    );
    let _ = writeln!(o, "|---|---|---|---|---|");
    let rows = [
        ("sasl_plain", "none (same DIGEST-MD5 ensemble)"),
        ("sasl_digest", "DIGEST-MD5"),
        ("sasl_kerberos", "Kerberos (GSSAPI)"),
    ];
    for (g, label) in rows {
        let cell =
            |c: &str, m: &str| format!("{} ({})", fmt_ms(v.med(g, c, m)), fmt_ms(v.max(g, c, m)));
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} | {} |",
            cell("zk-failover", "pause_ms"),
            cell("zk-failover", "share_ms"),
            cell("java", "pause_ms"),
            cell("java", "share_ms"),
        );
    }
    let plain = v.med("sasl_plain", "zk-failover", "share_ms");
    let _ = writeln!(
        o,
        "\nTarget: the SASL client share ≤ the plain one + two loopback round trips at p50 \
         ({} + 2 × {} = {}).\n",
        fmt_ms(plain),
        fmt_ms(rtt),
        fmt_ms(plain + 2.0 * rtt)
    );
    let _ = writeln!(
        o,
        "| mechanism | client share p50 | target | |\n|---|---|---|---|"
    );
    for (g, label) in &rows[1..] {
        let share = v.med(g, "zk-failover", "share_ms");
        let _ = writeln!(
            o,
            "| {label} | {} | {} | {} |",
            fmt_ms(share),
            fmt_ms(plain + 2.0 * rtt),
            verdict(share <= plain + 2.0 * rtt)
        );
    }
    replace_block(SASL_BEGIN, SASL_END, &o, "the SASL section");
}

/// Puts `body` between `begin` and `end` in `docs/benchmarks.md`, in place, or before
/// "Reading the results" the first time.
fn replace_block(begin: &str, end: &str, body: &str, what: &str) {
    let path = repo_dir().join("docs").join("benchmarks.md");
    let old = std::fs::read_to_string(&path).unwrap_or_default();
    let block = format!("{begin}\n{body}{end}\n");
    let new = match (old.find(begin), old.find(end)) {
        (Some(a), Some(b)) if a < b => format!(
            "{}{block}\n{}",
            &old[..a],
            old[b + end.len()..].trim_start_matches('\n')
        ),
        _ => match old.find("\n## Reading the results") {
            Some(i) => format!("{}{block}\n{}", &old[..=i], &old[i + 1..]),
            None => format!("{old}\n{block}"),
        },
    };
    match std::fs::write(&path, new) {
        Ok(()) => println!("report: wrote {what} of {}", path.display()),
        Err(e) => eprintln!("report: cannot write {}: {e}", path.display()),
    }
}
