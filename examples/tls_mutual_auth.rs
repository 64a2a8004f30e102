//! TLS with mutual authentication: the same client, with the transport swapped from TCP to
//! TLS (rustls). ZooKeeper 3.8 serves TLS on `secureClientPort` (Netty), speaks TLS 1.2 only
//! and requires a client certificate by default.
//!
//! ```text
//! cargo run --example tls_mutual_auth        # starts a local TLS ensemble with test certificates
//! ZK_CONNECT=zk1:2281 ZK_TLS_CA=ca.pem ZK_TLS_CERT=client.pem ZK_TLS_KEY=client-key.pem \
//!     cargo run --example tls_mutual_auth
//! ```

use std::error::Error as StdError;
use std::sync::Arc;

use zk_failover::client::acl;
use zk_failover::transport::{Connector, TlsConfig, TlsConnector};
use zk_failover::{Client, CreateMode};
use zk_testkit::{Ensemble, TlsOptions};

#[tokio::main]
async fn main() -> Result<(), Box<dyn StdError>> {
    // The connection string and a TLS configuration: from the environment, or from a fresh
    // local ensemble whose test certificates zk-testkit generated.
    let (cs, config, ensemble) = match std::env::var("ZK_CONNECT") {
        Ok(cs) => {
            let mut b = TlsConfig::builder().ca_pem_file(std::env::var("ZK_TLS_CA")?)?;
            if let (Ok(cert), Ok(key)) = (std::env::var("ZK_TLS_CERT"), std::env::var("ZK_TLS_KEY"))
            {
                b = b.client_cert_pem_file(cert, key)?;
            }
            (cs, b.build()?, None)
        }
        Err(_) => {
            println!("ZK_CONNECT not set: starting a local 3-node ensemble with TLS (zk-testkit)");
            let ens = Ensemble::builder()
                .nodes(3)
                .tls(TlsOptions::default()) // ssl.clientAuth = need
                .start()
                .await?;
            let m = ens.tls().ok_or("the ensemble has no TLS material")?;
            let config = TlsConfig::builder()
                .ca_pem(&m.ca_pem)? // trust the test CA ...
                .client_cert_pem(&m.client_cert_pem, &m.client_key_pem)? // ... and prove who we are
                .build()?;
            let cs = ens.tls_connect_string().ok_or("no TLS ports")?;
            (cs, config, Some(ens))
        }
    };

    // Swapping the transport is one builder call: `.tls(config)` is shorthand for
    // `.connector(Arc::new(TlsConnector::new(config)))`; any `Connector` fits there.
    let connector: Arc<dyn Connector> = Arc::new(TlsConnector::new(config));
    let zk = Client::builder(&cs).connector(connector).connect().await?;
    println!(
        "connected over TLS to {:?}: session {:#x}",
        zk.server(),
        zk.session_id()
    );

    let path = format!("/tls-example-{:x}", zk.session_id());
    zk.create(&path, "secret", &acl::open_unsafe(), CreateMode::Ephemeral)
        .await?;
    let (data, _) = zk.get_data(&path).await?;
    println!("{path} = {:?}", String::from_utf8_lossy(&data));
    for who in zk.who_am_i().await? {
        // With mutual TLS the server authenticates the session by the certificate (scheme `x509`).
        println!("the server knows us as {}:{}", who.auth_scheme, who.user);
    }

    // Without a client certificate the server refuses the handshake (clientAuth=need).
    if let Some(ens) = &ensemble {
        let m = ens.tls().ok_or("the ensemble has no TLS material")?;
        let anonymous = TlsConfig::builder().ca_pem(&m.ca_pem)?.build()?;
        let refused = Client::builder(&cs)
            .tls(anonymous)
            .connect_timeout(std::time::Duration::from_secs(3))
            .connect()
            .await;
        println!(
            "without a client certificate: {}",
            match refused {
                Ok(_) => "connected (server does not require one)".to_owned(),
                Err(e) => format!("refused ({e})"),
            }
        );
    }
    zk.close().await;
    Ok(())
}
