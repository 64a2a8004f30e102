//! A hand-written SVG chart: every operation's latency over time (log scale), the moments of
//! each fault and heal, and the periods the session had no connection.

use std::fmt::Write as _;

use super::faults::{FaultKind, StepKind};
use super::report::{Report, median_max};
use super::workload::OpKind;

const W: f64 = 1000.0;
const H: f64 = 480.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 64.0;
const BOTTOM: f64 = 70.0;
/// The y axis spans 10^MIN_LOG .. 10^MAX_LOG milliseconds.
const MIN_LOG: f64 = -1.0;
const MAX_LOG: f64 = 4.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

struct Scale {
    seconds: f64,
}

impl Scale {
    fn x(&self, t: f64) -> f64 {
        LEFT + (t.clamp(0.0, self.seconds) / self.seconds) * (W - LEFT - RIGHT)
    }

    fn y(ms: f64) -> f64 {
        let l = ms.max(1e-3).log10().clamp(MIN_LOG, MAX_LOG);
        TOP + (MAX_LOG - l) / (MAX_LOG - MIN_LOG) * (H - TOP - BOTTOM)
    }
}

/// Renders the report's latency chart as a standalone SVG document.
pub(crate) fn render(r: &Report) -> String {
    let seconds = r.seconds.max(1.0).ceil();
    let sc = Scale { seconds };
    let (y0, y1) = (TOP, H - BOTTOM);
    let mut s = String::with_capacity(64 * 1024 + r.samples.len() * 48);
    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="Helvetica, Arial, sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);

    // Title.
    let pauses = match median_max(&r.pauses_ms()) {
        Some((m, x)) => format!("failover pause median {m:.0} ms, max {x:.0} ms"),
        None => "no failover".to_owned(),
    };
    let kept = if r.session_kept() {
        "session kept"
    } else {
        "session LOST"
    };
    let _ = writeln!(
        s,
        r#"<text x="{LEFT}" y="22" font-size="16" font-weight="bold">zk-failover demo: operation latency over time</text>"#
    );
    let _ = writeln!(
        s,
        r##"<text x="{LEFT}" y="40" fill="#444" font-size="11">{} · {} faults · {} · {kept}</text>"##,
        esc(&r.description),
        r.faults(),
        esc(&pauses),
    );

    // Disconnected periods.
    for e in &r.episodes {
        let a = sc.x(e.lost);
        let b = sc.x(e.back.unwrap_or(seconds));
        let _ = writeln!(
            s,
            r##"<rect x="{a:.1}" y="{y0}" width="{:.1}" height="{:.1}" fill="#f9d3d3"><title>no connection for {:.0} ms: {} to {}</title></rect>"##,
            (b - a).max(1.5),
            y1 - y0,
            (e.back.unwrap_or(seconds) - e.lost) * 1000.0,
            esc(&e.from),
            if e.to.is_empty() { "nowhere" } else { &e.to }
        );
    }

    // Grid and axes.
    let mut decade = MIN_LOG;
    while decade <= MAX_LOG {
        let ms = 10f64.powf(decade);
        let y = Scale::y(ms);
        let label = if ms < 1.0 {
            format!("{ms:.1} ms")
        } else if ms < 1000.0 {
            format!("{ms:.0} ms")
        } else {
            format!("{:.0} s", ms / 1000.0)
        };
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#e3e3e3"/><text x="{:.1}" y="{:.1}" text-anchor="end" fill="#555">{label}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        decade += 1.0;
    }
    let step = if seconds > 120.0 {
        30.0
    } else if seconds > 60.0 {
        10.0
    } else {
        5.0
    };
    let mut t = 0.0;
    while t <= seconds + 1e-9 {
        let x = sc.x(t);
        let _ = writeln!(
            s,
            r##"<line x1="{x:.1}" y1="{y1}" x2="{x:.1}" y2="{:.1}" stroke="#999"/><text x="{x:.1}" y="{:.1}" text-anchor="middle" fill="#555">{t:.0} s</text>"##,
            y1 + 5.0,
            y1 + 18.0
        );
        t += step;
    }
    let _ = writeln!(
        s,
        r##"<rect x="{LEFT}" y="{y0}" width="{:.1}" height="{:.1}" fill="none" stroke="#888"/>"##,
        W - LEFT - RIGHT,
        y1 - y0
    );
    let _ = writeln!(
        s,
        r##"<text x="{:.1}" y="{:.1}" text-anchor="middle" fill="#333">time since the workload started</text>"##,
        f64::midpoint(LEFT, W - RIGHT),
        y1 + 34.0
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(16,{:.1}) rotate(-90)" text-anchor="middle" fill="#333">latency (log scale)</text>"##,
        f64::midpoint(y0, y1)
    );

    // Fault and heal moments.
    for (n, st) in r.steps.iter().enumerate() {
        let x = sc.x(st.at);
        let (color, dash) = match st.kind {
            StepKind::Fault(FaultKind::Kill) => ("#c62828", ""),
            StepKind::Fault(FaultKind::Freeze) => ("#6a1b9a", ""),
            StepKind::Heal(_) => ("#2e7d32", r#" stroke-dasharray="4 3""#),
        };
        let _ = writeln!(
            s,
            r#"<line x1="{x:.1}" y1="{y0}" x2="{x:.1}" y2="{y1}" stroke="{color}" stroke-width="1.5"{dash}><title>{}</title></line>"#,
            esc(&st.label)
        );
        let short = st.label.split(" (").next().unwrap_or(&st.label);
        let ty = y0 + 12.0 + 12.0 * (n % 3) as f64;
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{ty:.1}" fill="{color}" font-size="10">{}</text>"#,
            x + 3.0,
            esc(short)
        );
    }

    // Operations.
    for (op, color) in [(OpKind::Read, "#1f77b4"), (OpKind::Write, "#2ca02c")] {
        let _ = writeln!(s, r#"<g fill="{color}" fill-opacity="0.6">"#);
        for p in r.samples_of(op).filter(|p| p.ok) {
            let _ = writeln!(
                s,
                r#"<circle cx="{:.1}" cy="{:.1}" r="1.6"/>"#,
                sc.x(p.at),
                Scale::y(p.ms)
            );
        }
        let _ = writeln!(s, "</g>");
    }
    let _ = writeln!(s, r##"<g stroke="#d50000" stroke-width="1.6">"##);
    for p in r.samples.iter().filter(|p| !p.ok) {
        let (x, y) = (sc.x(p.at), Scale::y(p.ms));
        let _ = writeln!(
            s,
            r#"<path d="M{:.1} {:.1}l7 7m0 -7l-7 7"><title>failed {:?} after {:.0} ms</title></path>"#,
            x - 3.5,
            y - 3.5,
            p.op,
            p.ms
        );
    }
    let _ = writeln!(s, "</g>");

    // Legend.
    let ly = H - 22.0;
    let line = |extra: &str| {
        format!(
            r#"<line x1="0" y1="-11" x2="0" y2="1" stroke="currentColor" stroke-width="2"{extra}/>"#
        )
    };
    let items: [(&str, String); 7] = [
        ("#1f77b4", r#"<circle cx="0" cy="-4" r="4"/>"#.to_owned()),
        ("#2ca02c", r#"<circle cx="0" cy="-4" r="4"/>"#.to_owned()),
        (
            "#d50000",
            r#"<path d="M-4 -8l8 8m0 -8l-8 8" stroke="currentColor" stroke-width="1.6"/>"#
                .to_owned(),
        ),
        (
            "#f9d3d3",
            r#"<rect x="-5" y="-10" width="10" height="10"/>"#.to_owned(),
        ),
        ("#c62828", line("")),
        ("#6a1b9a", line("")),
        ("#2e7d32", line(r#" stroke-dasharray="3 2""#)),
    ];
    let names = [
        "read",
        "write",
        "failed (outcome unknown)",
        "no connection",
        "SIGKILL",
        "SIGSTOP",
        "restart / SIGCONT",
    ];
    let mut x = LEFT;
    for ((color, mark), name) in items.iter().zip(names) {
        let _ = writeln!(
            s,
            r##"<g transform="translate({x:.1},{ly:.1})" fill="{color}" color="{color}">{mark}<text x="9" y="0" fill="#333">{name}</text></g>"##
        );
        x += 30.0 + 6.5 * name.len() as f64;
    }
    let _ = writeln!(s, "</svg>");
    s
}
