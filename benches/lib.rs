//! The benchmark package of zk-failover (not published): everything lives in its bench targets
//! (`proto`, `failover`, `steady`, `fleet`) and their shared `support/` modules. See
//! `docs/benchmarks.md` and `scripts/bench.sh`.
