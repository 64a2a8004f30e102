#!/usr/bin/env bash
# The live failover demo: the README's first command.
#
# On a fresh machine it first installs Debian's `zookeeper` package (the real server the demo
# runs three of) when /usr/share/java/zookeeper.jar is missing, then runs
#   cargo run --release --example failover_demo -- "$@"
# which starts a local 3-node ensemble, runs a workload on one session, kills, freezes, thaws
# and restarts servers, and ends with a summary and an SVG latency chart.
#
# Options are the demo's own (`bash scripts/demo.sh --help`): --duration SECS, --tls,
# --connect CONNSTR, --no-faults, --quiet, --plain, --svg FILE, --metrics.
set -euo pipefail
cd "$(dirname "$0")/.."

jar="${ZK_TESTKIT_JAR:-/usr/share/java/zookeeper.jar}"
if [ ! -f "$jar" ] || [ ! -f /usr/share/java/netty-codec.jar ]; then
    echo "ZooKeeper not found at $jar: installing Debian's zookeeper package"
    sudo=""
    if [ "$(id -u)" != 0 ]; then
        command -v sudo >/dev/null || { echo "run as root or install sudo" >&2; exit 1; }
        sudo="sudo"
    fi
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq zookeeper >/dev/null
fi
command -v java >/dev/null || { echo "java is required on PATH (apt-get install default-jre-headless)" >&2; exit 1; }
command -v cargo >/dev/null || { echo "cargo is required (https://rustup.rs)" >&2; exit 1; }

export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
# --metrics needs the client built with its `metrics` feature (and a Prometheus recorder).
features=()
for arg in "$@"; do
    if [ "$arg" = "--metrics" ]; then
        features=(--features metrics)
    fi
done
exec cargo run --quiet --release "${features[@]}" --example failover_demo -- "$@"
