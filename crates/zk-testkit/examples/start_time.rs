//! Measure how long a 3-node ensemble takes to serve: `cargo run -p zk-testkit --example
//! start_time -- [runs] [nodes]`. Prints every run and the median.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "example")]

use std::time::Instant;

use zk_testkit::Ensemble;

#[tokio::main]
async fn main() -> Result<(), zk_testkit::TestkitError> {
    let mut args = std::env::args().skip(1);
    let runs: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(5);
    let nodes: usize = args.next().and_then(|a| a.parse().ok()).unwrap_or(3);
    let extra: Vec<String> = args.collect();
    let mut times = Vec::new();
    for run in 1..=runs {
        let t0 = Instant::now();
        let mut b = Ensemble::builder().nodes(nodes);
        for f in &extra {
            b = b.jvm_flag(f.clone());
        }
        let ens = b.start().await?;
        let ms = t0.elapsed().as_millis();
        let leader = ens.leader().await;
        println!("run {run}: {nodes} nodes serving after {ms} ms (leader {leader:?})");
        times.push(ms);
        drop(ens);
    }
    times.sort_unstable();
    let median = times[times.len() / 2];
    println!(
        "median {median} ms over {runs} runs (min {} ms, max {} ms)",
        times[0],
        times[times.len() - 1]
    );
    Ok(())
}
