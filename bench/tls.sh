#!/usr/bin/env bash
# bench/tls.sh - SIP over TLS: registrations per second and memory per idle TLS connection.
#
# Starts homeline (target/release/homeline; built only if missing) on a fresh temporary data
# dir with its default TLS identity (the self-signed ECDSA P-256 certificate made on first
# start), imports U stations (300000..), then with bench/tls_client.py (Python standard
# library, asyncio + ssl = OpenSSL) over 127.0.0.1 only:
#   1. memory: RSS of the server, then N idle TLS connections opened (handshake done, nothing
#      sent), RSS again after a settle time: (after - before) / N = bytes per idle TLS
#      connection (a warm-up of 200 connections opened and closed comes first);
#   2. registrations/s over C persistent TLS connections (REGISTER, 401, REGISTER + MD5
#      digest, 200), D seconds;
#   3. new TLS connection + registration per second (handshake, the same two REGISTERs,
#      close), K of them, with the server CPU time they cost.
# Results: bench/results/tls-<timestamp>/ (summary.txt, client outputs, server log).
#
# Usage: bench/tls.sh [--conns-idle N] [--users U] [--conns C] [--duration D] [--connects K]
#                     [--port P] [--settle S] [--build]
#   defaults: N=10000 U=200 C=50 D=20 K=3000 P=25460 (TLS internal P+1, external P+2/P+3) S=5
# RLIMIT_NOFILE is raised to 65536 for the server and the client (root can raise the hard
# limit; otherwise the soft limit goes as high as the hard one allows).
# Bounded: every client run has a timeout; on exit the server and clients are stopped by PID
# and the temporary data dir is removed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HL="${HOMELINE:-$REPO/target/release/homeline}"
CLIENT="$REPO/bench/tls_client.py"
IDLE=10000 USERS=200 CONNS=50 DURATION=20 CONNECTS=3000 PORT=25460 SETTLE=5 BUILD=0
while [ $# -gt 0 ]; do
    case "$1" in
        --conns-idle) IDLE="$2"; shift 2 ;;
        --users) USERS="$2"; shift 2 ;;
        --conns) CONNS="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --connects) CONNECTS="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --settle) SETTLE="$2"; shift 2 ;;
        --build) BUILD=1; shift ;;
        -h|--help) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//'; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
[ "$CONNS" -le "$USERS" ] || { echo "--conns must not exceed --users" >&2; exit 2; }

log() { echo "$(date +%H:%M:%S) $*"; }
die() { echo "tls.sh: $*" >&2; exit 1; }
ulimit -Hn 65536 2>/dev/null || true
ulimit -Sn "$(ulimit -Hn)" || true
[ "$(ulimit -Sn)" -ge $((IDLE + 1000)) ] || die "RLIMIT_NOFILE $(ulimit -Sn) too small for $IDLE connections"

if [ "$BUILD" = 1 ] || [ ! -x "$HL" ]; then
    (cd "$REPO" && timeout 3600 cargo build --release -p homeline)
fi

TS="$(date +%Y%m%d-%H%M%S)"
LOAD0="$(cut -d' ' -f1-3 /proc/loadavg)"
OUT="$REPO/bench/results/tls-$TS"
mkdir -p "$OUT"
TMPD="$(mktemp -d /tmp/homeline-tls-bench.XXXXXX)"
SERVER_PID=""
cleanup() {
    trap - EXIT INT TERM
    jobs -p | xargs -r kill -TERM 2>/dev/null || true
    if [ -n "$SERVER_PID" ]; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    rm -rf "$TMPD"
}
trap cleanup EXIT INT TERM

cat > "$TMPD/homeline.toml" <<EOF
[sip]
internal = ["127.0.0.1:$PORT"]
external = ["127.0.0.1:$((PORT + 2))"]
digest_algorithms = ["MD5"]
[tls]
internal_port = $((PORT + 1))
external_port = $((PORT + 3))
[log]
level = "info"
EOF
{ echo "number,password,sbc"
  for i in $(seq 0 $((USERS - 1))); do n=$((300000 + i)); echo "$n,Hl7kQ9v$n,no"; done
} > "$TMPD/stations.csv"
log "importing $USERS stations"
timeout 300 "$HL" --data "$TMPD/data" station import "$TMPD/stations.csv" > "$OUT/import.log" 2>&1 \
    || die "import failed, see $OUT/import.log"
"$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" serve > "$OUT/homeline.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 300); do grep -q "homeline ready" "$OUT/homeline.log" && break; sleep 0.2; done
grep -q "homeline ready" "$OUT/homeline.log" || die "homeline not ready, see $OUT/homeline.log"
TLS_PORT=$((PORT + 1))

rss_kb() { awk '/^VmRSS/ {print $2}' "/proc/$SERVER_PID/status"; }
anon_kb() { awk '/^RssAnon/ {print $2}' "/proc/$SERVER_PID/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$SERVER_PID/stat"; }
client() { timeout -k 5 "$1" python3 "$CLIENT" "${@:2}" --port "$TLS_PORT"; }

log "warm-up: 200 connections opened and closed, one registration round"
client 60 idle --count 200 --hold 1 < /dev/null > "$OUT/warmup.out" 2>&1 || true
client 60 register --conns "$CONNS" --users "$USERS" --duration 2 > "$OUT/warmup-register.out" 2>&1 || true
sleep "$SETTLE"
RSS0=$(rss_kb) ANON0=$(anon_kb)

log "memory: $IDLE idle TLS connections"
mkfifo "$TMPD/hold"
client 600 idle --count "$IDLE" --concurrency 100 --hold 500 < "$TMPD/hold" > "$OUT/idle.out" 2>&1 &
IDLE_PID=$!
exec 7>"$TMPD/hold"   # holds the client's stdin open until the reading is taken
for _ in $(seq 3000); do grep -q '^OPEN' "$OUT/idle.out" 2>/dev/null && break; kill -0 $IDLE_PID 2>/dev/null || break; sleep 0.2; done
grep -q '^OPEN' "$OUT/idle.out" || die "idle client failed, see $OUT/idle.out"
sleep "$SETTLE"
OPEN=$(awk '/^OPEN/ {print $2}' "$OUT/idle.out")
RSS1=$(rss_kb) ANON1=$(anon_kb)
STATUS_TLS=$("$HL" --data "$TMPD/data" status --json | python3 -c 'import json,sys; print(json.load(sys.stdin)["tls"]["connections"])')
exec 7>&-
wait $IDLE_PID || true
PER_CONN=$(( (RSS1 - RSS0) * 1024 / OPEN ))
PER_CONN_ANON=$(( (ANON1 - ANON0) * 1024 / OPEN ))
log "memory: $OPEN open (server status: $STATUS_TLS TLS connections), RSS $RSS0 -> $RSS1 kB = $PER_CONN B per connection (anon $PER_CONN_ANON B)"
sleep "$SETTLE"

log "registrations over $CONNS persistent TLS connections, $DURATION s"
R0=$(cpu_ticks)
client $((DURATION + 120)) register --conns "$CONNS" --users "$USERS" --duration "$DURATION" > "$OUT/register.out" 2>&1 \
    || die "register client failed, see $OUT/register.out"
R1=$(cpu_ticks)
REGS=$(awk '/^REGISTERED/ {print $2}' "$OUT/register.out")
HZ=$(getconf CLK_TCK)
REG_US=$(( (R1 - R0) * 1000000 / HZ / (REGS > 0 ? REGS : 1) ))
cat "$OUT/register.out"

log "$CONNECTS new TLS connections, each registering once"
C0=$(cpu_ticks)
client 600 connect --count "$CONNECTS" --concurrency 50 --users "$USERS" --duration 500 > "$OUT/connect.out" 2>&1 \
    || die "connect client failed, see $OUT/connect.out"
C1=$(cpu_ticks)
CPU_US=$(( (C1 - C0) * 1000000 / HZ / CONNECTS ))
cat "$OUT/connect.out"

{
    echo "bench/tls.sh $TS on $(uname -n): $(nproc) CPUs, $(awk '/MemTotal/ {print $2}' /proc/meminfo) kB RAM, $(uname -r)"
    echo "load average before: $LOAD0"
    echo "homeline $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?'), certificate: $(grep -o 'key=[A-Z]* [0-9]*' "$OUT/homeline.log" | head -1 || true)"
    echo "memory: $OPEN idle TLS connections: RSS $RSS0 -> $RSS1 kB = $PER_CONN bytes per connection (RssAnon $ANON0 -> $ANON1 kB = $PER_CONN_ANON bytes)"
    echo "registrations over $CONNS persistent TLS connections: $(cat "$OUT/register.out"); server CPU $REG_US us each"
    echo "new connection + registration: $(cat "$OUT/connect.out"); server CPU $CPU_US us each"
} | tee "$OUT/summary.txt"
