//! Kerberos end to end on this machine: a throwaway MIT KDC (Debian's `krb5-kdc`) and a
//! 3-node ZooKeeper ensemble whose servers take Kerberos and enforce SASL, both started by the
//! test kit in temp dirs; a session authenticated with GSSAPI; then its server killed (`kill
//! −9`) with the KDC stopped first — the session, its identity and its ephemeral node survive,
//! because the service tickets were obtained ahead of need.
//!
//! ```text
//! cargo run --example sasl_kerberos --features gssapi
//! ```
//!
//! Needs the `gssapi` feature (Debian's `libkrb5-dev` and `libclang-dev` to build) and, to
//! run, Debian's `zookeeper`, `krb5-kdc`, `krb5-admin-server`. `scripts/test-all.sh` installs
//! them and runs this example's [`run`] as a test (`tests/sasl_kerberos.rs`).

use std::sync::Arc;
use std::time::Duration;

use zk_failover::client::gssapi::Gssapi;
use zk_failover::client::{CreateMode, acl};
use zk_failover::{Client, Error};
use zk_testkit::{Ensemble, Kdc, SaslServer};

/// What one run saw.
#[derive(Debug)]
#[allow(dead_code, reason = "read by the test that runs the example")]
pub(crate) struct Report {
    /// The identity the servers gave the session, before and after the failover.
    pub(crate) identity: (String, String),
    /// The session id, before and after.
    pub(crate) session: (i64, i64),
    /// The pause of the failover.
    pub(crate) pause: Option<Duration>,
}

/// Starts the KDC and the ensemble, authenticates, fails over with the KDC down.
///
/// # Errors
/// Anything that went wrong, as text.
pub(crate) async fn run() -> Result<Report, Box<dyn std::error::Error>> {
    let mut kdc = Kdc::start()?;
    println!("KDC for {} on 127.0.0.1:{}", zk_testkit::REALM, kdc.port());
    let env = kdc.client_env()?;
    // Kerberos reads its settings from the environment, like every Kerberos program.
    #[allow(
        unsafe_code,
        reason = "set before anything in this process calls into krb5"
    )]
    // SAFETY: nothing has called into krb5 yet and no other thread reads the environment
    // outside std's lock.
    unsafe {
        for (k, v) in env {
            std::env::set_var(k, v);
        }
    }
    let ens = Ensemble::builder()
        .nodes(3)
        .sasl(SaslServer::kerberos(&kdc).enforce(true))
        .start()
        .await?;
    // The server principal is zookeeper/<host>: name the servers `localhost`.
    let connect = ens
        .nodes()
        .iter()
        .map(|n| format!("localhost:{}", n.client_addr().port()))
        .collect::<Vec<_>>()
        .join(",");
    println!("ensemble {connect} (Kerberos required)");

    let client = Client::builder(&connect)
        .sasl(Arc::new(Gssapi::new().client_principal(Kdc::CLIENT)))
        .session_timeout(Duration::from_secs(6))
        .connect()
        .await?;
    let who = |c: Client| async move {
        c.who_am_i()
            .await?
            .into_iter()
            .find(|i| i.auth_scheme == "sasl")
            .map(|i| (i.auth_scheme, i.user))
            .ok_or(Error::AuthFailed)
    };
    let before = who(client.clone()).await?;
    let id = client.session_id();
    println!("session {id:#x} on {:?} as {before:?}", client.server());
    client
        .create(
            "/kerberos-example",
            "mine",
            &acl::open_unsafe(),
            CreateMode::Ephemeral,
        )
        .await?;

    kdc.stop();
    let on = client
        .server()
        .and_then(|a| ens.node_for_addr(a))
        .ok_or("no server")?;
    println!("KDC stopped; killing server {on} (kill -9)");
    ens.node(on).kill()?;
    let exists = client.exists("/kerberos-example").await?.is_some();
    let after = who(client.clone()).await?;
    let pause = client.counters().session.last_pause;
    println!(
        "back on {:?} as {after:?} after {pause:?}; ephemeral node kept: {exists}",
        client.server()
    );
    let report = Report {
        identity: (
            format!("{}:{}", before.0, before.1),
            format!("{}:{}", after.0, after.1),
        ),
        session: (id, client.session_id()),
        pause,
    };
    client.close().await;
    ens.shutdown()?;
    Ok(report)
}

#[allow(dead_code, reason = "the test includes this file without calling main")]
#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let report = run().await?;
    println!("{report:?}");
    Ok(())
}
