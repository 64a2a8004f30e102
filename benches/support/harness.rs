//! A criterion-compatible command line (`--bench`, `--test`, `--list`, name filters), statistics
//! and the result files under `target/bench-results/`.

use std::fmt::Write as _;
use std::path::PathBuf;

/// How the bench binary was invoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// `cargo test --all-targets` or `cargo bench -- --test`: one quick sample per scenario.
    Test,
    /// `cargo bench`: full measurement.
    Bench,
    /// `--list`.
    List,
}

/// Parsed arguments; unknown criterion/libtest flags are accepted and ignored.
#[derive(Debug, Clone)]
pub(crate) struct Args {
    pub(crate) mode: Mode,
    pub(crate) filters: Vec<String>,
    /// `--samples N` or `ZK_BENCH_SAMPLES`: override the per-scenario sample count.
    pub(crate) samples: Option<usize>,
}

const VALUE_FLAGS: &[&str] = &[
    "--color",
    "--format",
    "--logfile",
    "--test-threads",
    "--skip",
    "--baseline",
    "--save-baseline",
    "--load-baseline",
    "--sample-size",
    "--warm-up-time",
    "--measurement-time",
    "--nresamples",
    "--noise-threshold",
    "--confidence-level",
    "--significance-level",
    "--output-format",
    "--plotting-backend",
    "--profile-time",
];

impl Args {
    pub(crate) fn parse() -> Self {
        let (mut bench, mut test, mut list) = (false, false, false);
        let mut samples = std::env::var("ZK_BENCH_SAMPLES")
            .ok()
            .and_then(|s| s.parse().ok());
        let mut filters = Vec::new();
        let mut it = std::env::args().skip(1);
        while let Some(a) = it.next() {
            match a.as_str() {
                "--bench" => bench = true,
                "--test" => test = true,
                "--list" => list = true,
                "--samples" => samples = it.next().and_then(|s| s.parse().ok()),
                s if VALUE_FLAGS.contains(&s) => {
                    it.next();
                }
                s if s.starts_with('-') => {}
                s => filters.push(s.to_owned()),
            }
        }
        let mode = if list {
            Mode::List
        } else if bench && !test {
            Mode::Bench
        } else {
            Mode::Test
        };
        Self {
            mode,
            filters,
            samples,
        }
    }

    pub(crate) fn selected(&self, name: &str) -> bool {
        self.filters.is_empty() || self.filters.iter().any(|f| name.contains(f.as_str()))
    }

    /// Samples for a scenario: 1 in test mode, else the override or the default.
    pub(crate) fn samples(&self, default: usize) -> usize {
        match self.mode {
            Mode::Test | Mode::List => 1,
            Mode::Bench => self.samples.unwrap_or(default).max(1),
        }
    }
}

/// Sorted copy.
pub(crate) fn sorted(v: &[f64]) -> Vec<f64> {
    let mut s = v.to_vec();
    s.sort_by(f64::total_cmp);
    s
}

/// Median (mean of the two middle values for an even count); NaN when empty.
pub(crate) fn median(v: &[f64]) -> f64 {
    let s = sorted(v);
    match s.len() {
        0 => f64::NAN,
        n if n % 2 == 1 => s[n / 2],
        n => (s[n / 2 - 1] + s[n / 2]) / 2.0,
    }
}

/// Largest value; NaN when empty.
pub(crate) fn max(v: &[f64]) -> f64 {
    v.iter().copied().fold(f64::NAN, f64::max)
}

/// The directory results are written to: `target/bench-results`.
pub(crate) fn results_dir() -> PathBuf {
    target_dir().join("bench-results")
}

/// Cargo's target directory.
pub(crate) fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR").map_or_else(|| repo_dir().join("target"), PathBuf::from)
}

/// The workspace root (this bench package lives in its `benches/` folder).
pub(crate) fn repo_dir() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent()
        .map_or_else(|| here.clone(), std::path::Path::to_path_buf)
}

/// One measured series.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    pub(crate) group: String,
    pub(crate) client: String,
    pub(crate) metric: String,
    pub(crate) values: Vec<f64>,
}

/// Rows of one bench target, written as TSV (`group client metric v1,v2,…`) and JSON.
#[derive(Debug, Default)]
pub(crate) struct Results {
    pub(crate) rows: Vec<Row>,
}

impl Results {
    pub(crate) fn add(&mut self, group: &str, client: &str, metric: &str, values: Vec<f64>) {
        if let Some(r) = self
            .rows
            .iter_mut()
            .find(|r| r.group == group && r.client == client && r.metric == metric)
        {
            r.values.extend(values);
        } else {
            self.rows.push(Row {
                group: group.to_owned(),
                client: client.to_owned(),
                metric: metric.to_owned(),
                values,
            });
        }
    }

    pub(crate) fn get(&self, group: &str, client: &str, metric: &str) -> Option<&[f64]> {
        self.rows
            .iter()
            .find(|r| r.group == group && r.client == client && r.metric == metric)
            .map(|r| r.values.as_slice())
    }

    /// Writes `<dir>/<name>.tsv` and `<dir>/<name>.json`.
    pub(crate) fn write(&self, name: &str) -> std::io::Result<PathBuf> {
        let dir = results_dir();
        std::fs::create_dir_all(&dir)?;
        let mut tsv = String::new();
        let mut json = String::from("[\n");
        for (i, r) in self.rows.iter().enumerate() {
            let vals: Vec<String> = r.values.iter().map(|v| format!("{v:.6}")).collect();
            let _ = writeln!(
                tsv,
                "{}\t{}\t{}\t{}",
                r.group,
                r.client,
                r.metric,
                vals.join(",")
            );
            let _ = writeln!(
                json,
                "  {{\"group\": \"{}\", \"client\": \"{}\", \"metric\": \"{}\", \"values\": [{}]}}{}",
                r.group,
                r.client,
                r.metric,
                vals.join(", "),
                if i + 1 == self.rows.len() { "" } else { "," }
            );
        }
        json.push_str("]\n");
        let path = dir.join(format!("{name}.tsv"));
        std::fs::write(&path, tsv)?;
        std::fs::write(dir.join(format!("{name}.json")), json)?;
        Ok(path)
    }

    /// `self` with every series of `fresh` replacing the one with the same key (a filtered
    /// run updates only what it measured).
    pub(crate) fn merged_with(mut self, fresh: Self) -> Self {
        for r in fresh.rows {
            self.rows
                .retain(|o| !(o.group == r.group && o.client == r.client && o.metric == r.metric));
            self.rows.push(r);
        }
        self
    }

    /// Reads a TSV written by [`Results::write`]; missing file = empty.
    pub(crate) fn read(name: &str) -> Self {
        let mut out = Self::default();
        let Ok(text) = std::fs::read_to_string(results_dir().join(format!("{name}.tsv"))) else {
            return out;
        };
        for line in text.lines() {
            let f: Vec<&str> = line.split('\t').collect();
            if f.len() != 4 {
                continue;
            }
            let values = f[3]
                .split(',')
                .filter_map(|v| v.parse::<f64>().ok())
                .collect();
            out.add(f[0], f[1], f[2], values);
        }
        out
    }
}

/// Runs a custom-harness benchmark's `run` future on a 2-worker tokio runtime, prints how long
/// it took, and exits with status 1 after listing the failures it returned.
pub(crate) fn run_to_completion<F>(name: &str, run: F)
where
    F: Future<Output = Vec<String>>,
{
    let started = std::time::Instant::now();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("tokio runtime");
    let failures = rt.block_on(run);
    drop(rt);
    println!(
        "{name}: finished in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    if !failures.is_empty() {
        for f in &failures {
            eprintln!("FAILED: {f}");
        }
        std::process::exit(1);
    }
}
