//! A live failover demo: a local 3-node ZooKeeper ensemble, one client session with a steady
//! workload (writes, reads, an ephemeral node, a persistent watch), and servers killed,
//! frozen, thawed and restarted on a schedule — with every failover pause measured.
//!
//! ```text
//! bash scripts/demo.sh                 # installs ZooKeeper if missing, then runs this
//! cargo run --release --example failover_demo -- --duration 30 --tls
//! cargo run --release --example failover_demo -- --connect "$(zk-ensemble up)"
//! ```
//!
//! The logic lives in `examples/demo/` so that `tests/demo.rs` can run it too. Exit status:
//! 0 when the summary's checks pass, 1 when they fail, 2 on a usage or set-up error.

mod demo;

use std::process::ExitCode;

#[tokio::main]
async fn main() -> ExitCode {
    init_tracing();
    let cfg = match demo::Config::from_args(std::env::args().skip(1)) {
        Ok(cfg) => cfg,
        Err(demo::UsageError::Help) => {
            println!("{}", demo::USAGE);
            return ExitCode::SUCCESS;
        }
        Err(e) => {
            eprintln!("error: {e}\n\n{}", demo::USAGE);
            return ExitCode::from(2);
        }
    };
    match demo::run(cfg).await {
        Ok(report) if report.problems().is_empty() => ExitCode::SUCCESS,
        Ok(_) => ExitCode::FAILURE,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

/// Logs go to stderr, quiet unless `RUST_LOG` asks for more.
fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("error"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}
