//! # zk-failover
//!
//! An async ZooKeeper client whose defining strength is surviving server failure: when the
//! server a session is on crashes, freezes or becomes unreachable, the client moves to the
//! next server and re-establishes the same session (id and password) before the session
//! timeout, so ephemeral nodes, watches and ordering survive and the application sees a
//! pause of milliseconds.
//!
//! This umbrella crate re-exports the workspace's crates; each can also be used alone:
//!
//! | crate | what it is |
//! |---|---|
//! | [`connstr`] (`zk-connstr`) | connection-string parsing, chroot and path validation |
//! | [`proto`] (`zk-proto`) | the Jute wire protocol: records and framing, sans-I/O |
//! | [`transport`] (`zk-transport`) | the `Connector` trait; TCP, TLS (rustls) and in-memory transports |
//! | [`session`] (`zk-session`) | the session engine: failover and re-establishment, sans-I/O core + tokio driver |
//! | [`client`] (`zk-client`) | the complete ZooKeeper API with watches that survive failover |
//! | [`recipes`] (`zk-recipes`) | a lock and a leader latch (Curator's layouts) whose state follows the session, with fencing |
//!
//! Feature `metrics`: failover metrics through the `metrics` facade, and `prometheus`, an
//! exporter for them.
//!
//! ```no_run
//! # async fn demo() -> Result<(), zk_failover::Error> {
//! use zk_failover::{Client, CreateMode, client::acl};
//!
//! let zk = Client::connect("127.0.0.1:2181,127.0.0.1:2182,127.0.0.1:2183/app").await?;
//! zk.create("/leader", &b"me"[..], &acl::open_unsafe(), CreateMode::Ephemeral).await?;
//! # Ok(()) }
//! ```

pub use zk_client as client;
pub use zk_client::{Client, CreateMode, Error};
pub use zk_connstr as connstr;
pub use zk_proto as proto;
pub use zk_recipes as recipes;
pub use zk_session as session;
pub use zk_transport as transport;

/// The Prometheus exporter (`metrics-exporter-prometheus`) for the client's failover metrics
/// (feature `metrics`; the metrics are listed in `docs/metrics.md`).
#[cfg(feature = "metrics")]
pub use metrics_exporter_prometheus as prometheus;
