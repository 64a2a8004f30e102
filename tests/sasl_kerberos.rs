//! Runs the `sasl_kerberos` example as a new user would (its own KDC and Kerberos-only
//! ensemble, a GSSAPI session, a failover with the KDC down) and checks what it reports.
#![allow(clippy::unwrap_used, clippy::expect_used, reason = "test code")]

#[path = "../examples/sasl_kerberos.rs"]
mod example;

#[test]
#[ignore = "needs Java, ZooKeeper and krb5-kdc: run with -- --include-ignored (scripts/test-all.sh does)"]
fn sasl_kerberos_example_runs() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let report = rt.block_on(example::run()).unwrap();
    assert_eq!(report.identity.0, "sasl:client@EXAMPLE.COM");
    assert_eq!(report.identity.0, report.identity.1, "identity kept");
    assert_eq!(report.session.0, report.session.1, "session kept");
    assert!(report.pause.is_some());
}
