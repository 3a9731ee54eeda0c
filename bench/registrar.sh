#!/usr/bin/env bash
# bench/registrar.sh - registrar throughput, Kamailio anchor vs homeline, in one run.
#
#   (a) the Kamailio 5.6 anchor: ../shared/bench/run-registrar.sh (it starts and stops
#       its own Kamailio on 127.0.0.1:KAM_PORT and searches the max sustained reg/s);
#   (b) homeline (target/release/homeline; built with `cargo build --release -p homeline`
#       only if missing) with a fresh temporary data dir, the same 1000 bench users
#       (100000-100999, password pw<user>, imported with `station import`), measured by
#       the same harness: run-registrar.sh --server none --target ... --server-pid ...;
#   (c) ../shared/bench/lib/compare.py on the two results.json.
# Everything goes to bench/results/<timestamp>/ (kamailio/, homeline/, compare.md,
# summary.md, meta.txt, homeline.log); the summary is also printed.
#
# Usage: bench/registrar.sh [options] [-- extra run-registrar.sh options for BOTH runs]
#   --rates LIST       fixed rates, e.g. 2000,4000,6000 (default: the harness's search,
#                      500 x1.5 ... bisect ... confirm; ~5-8 min per server)
#   --duration S       seconds of load per step (default 20)
#   --nice N           nice level of servers and SIPp, same for both (default -20)
#   --anchor-only      run (a) only
#   --homeline-only    run (b) only (no comparison)
#   --kam-port P       Kamailio anchor port on 127.0.0.1 (default 25160)
#   --port P           homeline internal SIP port on 127.0.0.1 (default 25260;
#                      its external listener is P+2)
#   --out DIR          results directory (default bench/results/<timestamp>)
#   --run-timeout S    hard bound per harness run (default 1800 s)
#   --build            rebuild target/release/homeline even if it exists
#   -h | --help
# Environment: BENCH_DIR (default <repo>/../shared/bench), HOMELINE (binary, default
# <repo>/target/release/homeline).
#
# Bounded: each harness run is under `timeout --run-timeout`, the build under 3600 s,
# the import under 300 s, server start-up under 60 s. On exit (normal, error, Ctrl-C,
# TERM) the homeline server and every child started here are stopped (by PID) and the
# temporary data dir is removed. Re-running is safe: every run gets a new directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BENCH_DIR:-$REPO/../shared/bench}"
HL="${HOMELINE:-$REPO/target/release/homeline}"

RATES="" DURATION=20 NICE=-20 DO_ANCHOR=1 DO_HL=1 KAM_PORT=25160 PORT=25260
OUT="" RUN_TIMEOUT=1800 BUILD=0 EXTRA=()
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --rates) RATES="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --nice) NICE="$2"; shift 2 ;;
        --anchor-only) DO_HL=0; shift ;;
        --homeline-only) DO_ANCHOR=0; shift ;;
        --kam-port) KAM_PORT="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --run-timeout) RUN_TIMEOUT="$2"; shift 2 ;;
        --build) BUILD=1; shift ;;
        -h|--help) usage 0 ;;
        --) shift; EXTRA=("$@"); break ;;
        *) echo "unknown option $1" >&2; usage 2 >&2 ;;
    esac
done

log() { echo "$(date +%H:%M:%S) $*"; }
die() { echo "registrar.sh: $*" >&2; exit 1; }

[ -x "$BENCH/run-registrar.sh" ] || die "bench suite not found at $BENCH (set BENCH_DIR)"
command -v sipp >/dev/null || die "sipp missing: apt-get install sip-tester"
command -v python3 >/dev/null || die "python3 missing"
[ "$DO_ANCHOR" = 0 ] || command -v kamailio >/dev/null \
    || die "kamailio missing: apt-get install kamailio kamailio-sqlite-modules"

TS="$(date +%Y%m%d-%H%M%S)"
OUT="${OUT:-$REPO/bench/results/$TS}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

# ---- cleanup: everything started here, by PID --------------------------------------
SERVER_PID="" CHILDREN=() TMPD=""
cleanup() {
    local rc=$?
    trap - EXIT INT TERM
    local p
    for p in "${CHILDREN[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    for p in "${CHILDREN[@]}"; do wait "$p" 2>/dev/null || true; done
    [ -z "$SERVER_PID" ] || wait "$SERVER_PID" 2>/dev/null || true
    [ -z "$TMPD" ] || rm -rf "$TMPD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# run a command bounded in time, in the background so that a signal to this script
# interrupts the wait and the trap can stop it; returns the command's exit code.
bounded() {
    local secs="$1"; shift
    timeout -k 30 "$secs" "$@" &
    local p=$!
    CHILDREN+=("$p")
    local rc=0
    wait "$p" || rc=$?
    return "$rc"
}

port_free() {  # udp and tcp on 127.0.0.1:$1
    ! ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . && ! ss -Hlnt "sport = :$1" 2>/dev/null | grep -q .
}

COMMON=(--duration "$DURATION" --nice "$NICE")
[ -z "$RATES" ] || COMMON+=(--rates "$RATES")
COMMON+=("${EXTRA[@]}")

{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$REPO" status --porcelain 2>/dev/null | grep -q . && echo '(dirty)')"
    echo "sipp: $(sipp -v 2>&1 | grep -m1 -io 'SIPp v[^ ]*' || true)"
    echo "kamailio: $(kamailio -v 2>/dev/null | head -1 || true)"
    echo "options: ${COMMON[*]}"
} > "$OUT/meta.txt"
log "results -> $OUT"

# ---- (a) anchor ---------------------------------------------------------------------
KAM_JSON="$OUT/kamailio/results.json"
if [ "$DO_ANCHOR" = 1 ]; then
    port_free "$KAM_PORT" || die "127.0.0.1:$KAM_PORT is in use (--kam-port)"
    log "(a) Kamailio anchor on 127.0.0.1:$KAM_PORT"
    rc=0
    bounded "$RUN_TIMEOUT" "$BENCH/run-registrar.sh" --target "127.0.0.1:$KAM_PORT" \
        --workdir "$OUT/kamailio" --json "$KAM_JSON" "${COMMON[@]}" \
        > "$OUT/kamailio.out" 2>&1 || rc=$?
    tail -n 25 "$OUT/kamailio.out"
    [ "$rc" = 0 ] || die "anchor run failed (rc $rc), see $OUT/kamailio.out"
fi

# ---- (b) homeline ---------------------------------------------------------------------
HL_JSON="$OUT/homeline/results.json"
if [ "$DO_HL" = 1 ]; then
    if [ "$BUILD" = 1 ] || [ ! -x "$HL" ]; then
        log "building homeline (cargo build --release -p homeline)"
        bounded 3600 cargo build --release -p homeline --manifest-path "$REPO/Cargo.toml" \
            || die "build failed"
    fi
    [ -x "$HL" ] || die "no binary at $HL"
    port_free "$PORT" || die "127.0.0.1:$PORT is in use (--port)"
    port_free "$((PORT + 2))" || die "127.0.0.1:$((PORT + 2)) is in use (--port)"
    TMPD="$(mktemp -d /tmp/homeline-bench.XXXXXX)"
    mkdir -p "$TMPD/data"
    cat > "$TMPD/homeline.toml" <<EOF
[sip]
realm = "bench.local"
internal = ["127.0.0.1:$PORT"]
external = ["127.0.0.1:$((PORT + 2))"]
external_udp_expires = 120
EOF
    cp "$TMPD/homeline.toml" "$OUT/homeline.toml"
    # the bench users, straight from the harness's SIPp injection file
    { echo "number,password,sbc"
      tail -n +2 "$BENCH/sipp/users.csv" | awk -F';' 'NF>=2 {print $1 "," $2 ",no"}'
    } > "$TMPD/stations.csv"
    log "(b) importing $(($(wc -l < "$TMPD/stations.csv") - 1)) stations"
    bounded 300 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" station import "$TMPD/stations.csv" \
        > "$OUT/import.log" 2>&1 || die "station import failed, see $OUT/import.log"

    log "(b) starting homeline on 127.0.0.1:$PORT (nice $NICE)"
    # `nice` execs the server, so $! is the server's own PID
    nice -n "$NICE" "$HL" --data "$TMPD/data" serve --config "$TMPD/homeline.toml" \
        > "$OUT/homeline.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        grep -q "homeline ready" "$OUT/homeline.log" && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "homeline exited during start-up, see $OUT/homeline.log"
        sleep 0.1
    done
    grep -q "homeline ready" "$OUT/homeline.log" || die "homeline not ready after 60 s, see $OUT/homeline.log"
    log "homeline up, pid $SERVER_PID"

    rc=0
    bounded "$RUN_TIMEOUT" "$BENCH/run-registrar.sh" --server none --target "127.0.0.1:$PORT" \
        --server-pid "$SERVER_PID" --label homeline --workdir "$OUT/homeline" --json "$HL_JSON" \
        "${COMMON[@]}" > "$OUT/homeline.out" 2>&1 || rc=$?
    tail -n 25 "$OUT/homeline.out"
    grep -E "^VmHWM|^VmRSS" "/proc/$SERVER_PID/status" > "$OUT/homeline-memory.txt" 2>/dev/null || true
    [ "$rc" = 0 ] || die "homeline run failed (rc $rc), see $OUT/homeline.out"
fi

# ---- (c) summary --------------------------------------------------------------------------
{
    echo "# registrar benchmark $TS"
    echo
    sed 's/^/    /' "$OUT/meta.txt"
    echo
    [ ! -f "$KAM_JSON" ] || grep -h '^RESULT' "$OUT/kamailio.out" || true
    [ ! -f "$HL_JSON" ] || grep -h '^RESULT' "$OUT/homeline.out" || true
    if [ -f "$KAM_JSON" ] && [ -f "$HL_JSON" ]; then
        echo
        python3 "$BENCH/lib/compare.py" "$KAM_JSON" "$HL_JSON" | tee "$OUT/compare.md"
    fi
} > "$OUT/summary.md"
echo
cat "$OUT/summary.md"
