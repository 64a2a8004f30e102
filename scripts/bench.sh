#!/bin/sh
# Reproduces docs/benchmarks.md: runs the failover, steady-state and fleet benchmarks (this
# project, zookeeper-client 0.11 and the Java client 3.8, same ensemble kind, same run) and
# regenerates the report and its SVGs from target/bench-results/*.tsv.
#
#   scripts/bench.sh            # full measurement (about 20-25 minutes on 2 cores)
#   scripts/bench.sh --smoke    # one sample per scenario, no report (what CI runs)
#   ZK_BENCH_SAMPLES=20 scripts/bench.sh   # more samples per failover scenario
#
# Needs: java + javac and Debian's libzookeeper-java (/usr/share/java/zookeeper.jar) for the
# servers and the Java client. Run it on an otherwise idle machine if you can: the three
# server JVMs and the clients share its cores.
set -eu
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--smoke" ]; then
    cargo bench -j2 -p zk-bench --bench failover -- --test
    cargo bench -j2 -p zk-bench --bench steady -- --test
    cargo bench -j2 -p zk-bench --bench fleet -- --test
    exit 0
fi
export ZK_BENCH_DOCS=1
cargo bench -j2 -p zk-bench --bench failover -- "$@"
cargo bench -j2 -p zk-bench --bench steady -- "$@"
# P = 100 and 200 client processes (ZK_FLEET_P=…), leader killed; its own section of the report.
cargo bench -j2 -p zk-bench --bench fleet -- "$@"
echo "wrote docs/benchmarks.md, docs/failover-pauses.svg and docs/fleet.svg"
