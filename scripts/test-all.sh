#!/usr/bin/env bash
# The whole test suite, exactly as CI runs it (`.ci/run` calls this script).
#
# On a fresh machine it first installs what it needs: Debian's `zookeeper` package (the real
# server the integration tests run), Debian's krb5 packages (a throwaway KDC for the Kerberos
# tests, and libkrb5-dev/libclang-dev for the `gssapi` feature), cargo-deny and cargo-fuzz. Then: formatting, the session
# core's purity, clippy, packaging of every published crate,
# every test (real 3-node ensembles included), the fuzz corpora replay (part of `cargo test`),
# a short run of every fuzz target on nightly, a smoke run of every benchmark, and the
# offline cargo-deny checks.
#
# Environment:
#   FUZZ_SECONDS   seconds per fuzz target (default 15; 0 skips fuzzing)
#   SKIP_DENY=1    skip cargo-deny
set -euo pipefail
cd "$(dirname "$0")/.."

export CARGO_TERM_COLOR=never
export CARGO_BUILD_JOBS="${CARGO_BUILD_JOBS:-2}"
FUZZ_SECONDS="${FUZZ_SECONDS:-15}"
started=$(date +%s)
declare -a summary=()

step() {
    local name="$1"
    shift
    local t0
    t0=$(date +%s)
    echo "==> ${name}"
    "$@"
    summary+=("$(printf '%-28s %4ss' "$name" "$(($(date +%s) - t0))")")
}

ensure_zookeeper() {
    local jar="${ZK_TESTKIT_JAR:-/usr/share/java/zookeeper.jar}"
    if [ ! -f "$jar" ] || [ ! -f /usr/share/java/netty-codec.jar ]; then
        echo "ZooKeeper not found at $jar: installing Debian's zookeeper package"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zookeeper >/dev/null
    fi
    command -v java >/dev/null || { echo "java is required on PATH" >&2; exit 1; }
}

# Kerberos: a throwaway MIT KDC for the SASL GSSAPI tests (krb5-kdc, krb5-admin-server for
# kadmin.local, krb5-user for kinit), and what the `gssapi` feature builds against (MIT
# krb5's headers; libclang for the binding's generator).
ensure_kerberos() {
    local missing=()
    for tool in /usr/sbin/krb5kdc /usr/sbin/kadmin.local /usr/bin/kinit; do
        [ -x "$tool" ] || missing+=("$tool")
    done
    [ -f /usr/include/gssapi/gssapi.h ] || missing+=(libkrb5-dev)
    ls /usr/lib/llvm-*/lib/libclang*.so* >/dev/null 2>&1 || missing+=(libclang)
    if [ "${#missing[@]}" -gt 0 ]; then
        echo "Kerberos pieces missing (${missing[*]}): installing Debian's krb5 packages"
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq krb5-kdc krb5-admin-server \
            krb5-user libkrb5-dev libclang-dev >/dev/null
    fi
}

# The cargo-deny this project's deny.toml is written for (it also parses with 0.14+).
DENY_VERSION=0.20.2
DENY_ROOT="$PWD/target/ci-tools"
deny_state=pending
deny_pid=

ensure_tools() {
    if ! cargo deny --version >/dev/null 2>&1 && [ "${SKIP_DENY:-0}" != 1 ]; then
        cargo install --locked "cargo-deny@$DENY_VERSION"
    fi
    if [ "$FUZZ_SECONDS" != 0 ] && ! cargo +nightly fuzz --version >/dev/null 2>&1; then
        cargo install --locked cargo-fuzz
    fi
}

fmt() { cargo fmt --all --check; }

# The session core must stay pure: no async runtime, TLS or socket crate among its normal
# dependencies (Cargo proves what the design promises).
core_is_pure() {
    local tree
    tree=$(cargo tree -p zk-session-core -e normal --prefix none)
    if echo "$tree" | grep -Ei '^(tokio|mio|socket2|rustls|ring|tokio-rustls|async-trait|libc) '; then
        echo "zk-session-core depends on the crates above" >&2
        return 1
    fi
    echo "zk-session-core: $(echo "$tree" | sort -u | wc -l) crates, none async, TLS or socket"
}

# With every feature (metrics on), and the library crates alone with their defaults (metrics
# off: in a workspace build the bench package turns them on for everyone).
clippy() {
    cargo clippy --workspace --all-targets --all-features -- -D warnings
    cargo clippy -p zk-session-core -p zk-session -p zk-client -p zk-recipes --all-targets -- -D warnings
}

# Every published crate packages, and each package builds alone from what it ships (cargo
# verifies them against a local registry holding the workspace's other packages).
# cargo keeps the verification registry (target/package/tmp-registry), unpacks its crates
# under $CARGO_HOME/registry/src/-<hash>/ and builds them into target/ — all keyed by name and
# version, and registry crates are never re-checked for changes: a machine that packaged
# before would verify the previous run's crates. All three are removed first (only this
# workspace's crates; a fresh machine has none of them).
package() {
    local src="${CARGO_HOME:-$HOME/.cargo}/registry/src"
    local crates=(zk-connstr zk-proto zk-transport zk-session-core zk-session zk-client
        zk-recipes zk-testkit zk-failover)
    rm -rf target/package
    for krate in "${crates[@]}"; do
        rm -rf "$src"/-*/"$krate"-[0-9]*
    done
    local clean=()
    for krate in "${crates[@]}"; do
        clean+=(-p "$krate")
    done
    cargo clean --quiet "${clean[@]}"
    cargo package --workspace --exclude zk-bench --allow-dirty --quiet
}

tests() {
    # cargo runs one test binary at a time, so at most one ZooKeeper ensemble is up at once.
    # --all-targets includes the criterion benchmarks, each run once in test mode (smoke).
    # --include-ignored adds the real-ensemble tier (tests marked "needs Java and ZooKeeper"):
    # plain `cargo test --workspace` is the fast tier, which starts no JVM.
    # The `metrics` feature is on, so the metric tests, the demo's --metrics and the
    # metrics_prometheus example are part of the run; so is `gssapi` (the Kerberos tests
    # against the test kit's KDC, the sasl_kerberos example, the benchmark's Kerberos rows).
    cargo test --workspace --all-targets \
        --features zk-failover/metrics,zk-failover/gssapi,zk-bench/gssapi \
        --no-fail-fast -- --include-ignored
    cargo test --workspace --doc
}

fuzz() {
    if [ "$FUZZ_SECONDS" = 0 ]; then
        echo "fuzzing skipped (FUZZ_SECONDS=0)"
        return
    fi
    (
        cd fuzz
        cargo +nightly fuzz build -O
        for target in $(cargo +nightly fuzz list); do
            mkdir -p "corpus/$target"
            # Run on a scratch copy so CI never rewrites the committed seed corpus.
            scratch=$(mktemp -d)
            cp -r "corpus/$target/." "$scratch/" 2>/dev/null || true
            out=$(cargo +nightly fuzz run -O "$target" "$scratch" -- \
                -max_total_time="$FUZZ_SECONDS" -rss_limit_mb=2048 2>&1) || {
                echo "$out" | tail -40
                rm -rf "$scratch"
                echo "fuzz target $target failed" >&2
                return 1
            }
            rm -rf "$scratch"
            echo "fuzz $target: $(echo "$out" | grep -Eo 'Done [0-9]+ runs in [0-9]+ second\(s\)' | tail -1)"
        done
    )
}

# cargo-deny runs first, with whatever cargo-deny the machine has. An old one may not read
# this deny.toml or know newer SPDX identifiers: then the pinned version is built in the
# background (one job, while the tests run) and the check is repeated with it at the end.
deny_early() {
    if [ "${SKIP_DENY:-0}" = 1 ]; then
        echo "cargo-deny skipped (SKIP_DENY=1)"
        deny_state=skipped
        return
    fi
    if cargo deny check licenses bans sources; then
        deny_state=passed
        return
    fi
    echo "the installed $(cargo deny --version 2>/dev/null || echo cargo-deny) failed;" \
        "building cargo-deny $DENY_VERSION in the background to check again"
    mkdir -p "$DENY_ROOT"
    cargo install --locked --quiet -j1 "cargo-deny@$DENY_VERSION" --root "$DENY_ROOT" \
        >"$DENY_ROOT/install.log" 2>&1 &
    deny_pid=$!
}

deny() {
    case "$deny_state" in
        passed) echo "cargo-deny passed at the start of the run"; return ;;
        skipped) echo "cargo-deny skipped (SKIP_DENY=1)"; return ;;
    esac
    if ! wait "$deny_pid"; then
        tail -40 "$DENY_ROOT/install.log"
        echo "could not build cargo-deny $DENY_VERSION" >&2
        return 1
    fi
    PATH="$DENY_ROOT/bin:$PATH" cargo deny --version
    PATH="$DENY_ROOT/bin:$PATH" cargo deny check licenses bans sources
}

step "install zookeeper" ensure_zookeeper
step "install kerberos" ensure_kerberos
step "install tools" ensure_tools
step "cargo deny (installed)" deny_early
step "cargo fmt --check" fmt
step "core purity" core_is_pure
step "cargo clippy" clippy
step "cargo package" package
step "cargo test" tests
step "fuzz" fuzz
step "cargo deny" deny

echo
echo "==> summary"
printf '  %s\n' "${summary[@]}"
echo "all checks passed in $(($(date +%s) - started)) s"
