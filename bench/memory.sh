#!/usr/bin/env bash
# bench/memory.sh - homeline memory cost of a registration binding.
#
# Starts homeline (target/release/homeline; built with `cargo build --release -p homeline`
# only if missing) with a fresh temporary data dir, imports N stations (numbers
# 200000..200000+N-1, sbc=no) plus W warm-up stations (190000..190000+W-1), registers
# the warm-up stations (so lazily allocated pools, caches and buffers are not charged to
# the bindings), reads the server's RSS from /proc, REGISTERs every one of the N
# stations once with SIPp (tests/sipp/reg_ok.xml: REGISTER/401/REGISTER+digest/200,
# Expires 3600, so every binding stays alive during the measurement), reads RSS again,
# and prints (RSS after - RSS before) / successful registrations = bytes per binding.
# Results: bench/results/memory-<timestamp>/ (summary.txt, sipp stats/errors, server log).
#
# Usage: bench/memory.sh [options]
#   --count N          stations/bindings (default 100000)
#   --rate R           registrations per second offered by SIPp (default 1000; ~100 s
#                      for 100000); moderate on purpose: this measures memory, not speed
#   --expires S        Expires of the bindings (default 3600)
#   --warmup W         warm-up registrations before the first reading (default 1000, max 10000)
#   --port P           homeline internal SIP port on 127.0.0.1 (default 25360; external P+2)
#   --sipp-port P      SIPp's local UDP port (default 25370)
#   --settle S         seconds to wait before each RSS reading (default 3)
#   --out DIR          results directory (default bench/results/memory-<timestamp>)
#   --keep-data        keep the temporary data dir (its path is printed)
#   --build            rebuild target/release/homeline even if it exists
#   -h | --help
# Environment: HOMELINE (binary, default <repo>/target/release/homeline).
#
# RSS is VmRSS from /proc/PID/status (also shown: RssAnon, the heap part, and VmHWM).
# Bounded: build <= 3600 s, import <= 900 s, start-up <= 60 s, SIPp <= N/R + 180 s.
# On exit (normal, error, Ctrl-C, TERM) the server and SIPp are stopped by PID and the
# temporary data dir is removed. Re-running is safe: every run gets a new directory.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
HL="${HOMELINE:-$REPO/target/release/homeline}"
SCEN="$REPO/tests/sipp/reg_ok.xml"

COUNT=100000 WARMUP=1000 RATE=1000 EXPIRES=3600 PORT=25360 SIPP_PORT=25370 SETTLE=3
OUT="" KEEP=0 BUILD=0
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --count) COUNT="$2"; shift 2 ;;
        --rate) RATE="$2"; shift 2 ;;
        --expires) EXPIRES="$2"; shift 2 ;;
        --warmup) WARMUP="$2"; shift 2 ;;
        --port) PORT="$2"; shift 2 ;;
        --sipp-port) SIPP_PORT="$2"; shift 2 ;;
        --settle) SETTLE="$2"; shift 2 ;;
        --out) OUT="$2"; shift 2 ;;
        --keep-data) KEEP=1; shift ;;
        --build) BUILD=1; shift ;;
        -h|--help) usage 0 ;;
        *) echo "unknown option $1" >&2; usage 2 >&2 ;;
    esac
done

log() { echo "$(date +%H:%M:%S) $*"; }
die() { echo "memory.sh: $*" >&2; exit 1; }
command -v sipp >/dev/null || die "sipp missing: apt-get install sip-tester"
[ "$WARMUP" -le 10000 ] || die "--warmup is at most 10000 (numbers 190000..199999)"
[ -f "$SCEN" ] || die "missing $SCEN"

TS="$(date +%Y%m%d-%H%M%S)"
OUT="${OUT:-$REPO/bench/results/memory-$TS}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

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
    if [ -n "$TMPD" ]; then
        if [ "$KEEP" = 1 ]; then echo "data kept in $TMPD/data" >&2; else rm -rf "$TMPD"; fi
    fi
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

bounded() {  # bounded SECS CMD...: run in the background so signals interrupt the wait
    local secs="$1"; shift
    timeout -k 15 "$secs" "$@" &
    local p=$!
    CHILDREN+=("$p")
    local rc=0
    wait "$p" || rc=$?
    return "$rc"
}
port_free() {
    ! ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . && ! ss -Hlnt "sport = :$1" 2>/dev/null | grep -q .
}
status_kb() {  # status_kb FIELD -> kB from /proc/PID/status
    awk -v f="$1:" '$1 == f {print $2}' "/proc/$SERVER_PID/status"
}

if [ "$BUILD" = 1 ] || [ ! -x "$HL" ]; then
    log "building homeline (cargo build --release -p homeline)"
    bounded 3600 cargo build --release -p homeline --manifest-path "$REPO/Cargo.toml" \
        || die "build failed"
fi
[ -x "$HL" ] || die "no binary at $HL"
for p in "$PORT" "$((PORT + 2))" "$SIPP_PORT"; do
    port_free "$p" || die "127.0.0.1:$p is in use"
done

TMPD="$(mktemp -d /tmp/homeline-memory.XXXXXX)"
mkdir -p "$TMPD/data"
cat > "$TMPD/homeline.toml" <<EOF
[sip]
realm = "homeline"
internal = ["127.0.0.1:$PORT"]
external = ["127.0.0.1:$((PORT + 2))"]
external_udp_expires = 120
EOF
# Passwords: 12+ chars, upper/lower/digit/symbol; no '"', '\' or ';' (SIPp injection file).
awk -v n="$COUNT" -v w="$WARMUP" 'BEGIN { print "number,password,sbc"
    for (i = 0; i < w; i++) printf "%d,Mem-%d-xQ7k,no\n", 190000 + i, 190000 + i
    for (i = 0; i < n; i++) printf "%d,Mem-%d-xQ7k,no\n", 200000 + i, 200000 + i }' > "$TMPD/stations.csv"
awk -v n="$WARMUP" 'BEGIN { print "SEQUENTIAL"
    for (i = 0; i < n; i++) printf "%d;Mem-%d-xQ7k\n", 190000 + i, 190000 + i }' > "$TMPD/warmup.csv"
awk -v n="$COUNT" 'BEGIN { print "SEQUENTIAL"
    for (i = 0; i < n; i++) printf "%d;Mem-%d-xQ7k\n", 200000 + i, 200000 + i }' > "$TMPD/users.csv"

log "importing $((COUNT + WARMUP)) stations"
t0=$(date +%s)
bounded 900 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" station import "$TMPD/stations.csv" \
    > "$OUT/import.log" 2>&1 || die "station import failed, see $OUT/import.log"
log "import took $(( $(date +%s) - t0 )) s"

log "starting homeline on 127.0.0.1:$PORT"
"$HL" --data "$TMPD/data" serve --config "$TMPD/homeline.toml" > "$OUT/homeline.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 600); do
    grep -q "homeline ready" "$OUT/homeline.log" && break
    kill -0 "$SERVER_PID" 2>/dev/null || die "homeline exited during start-up, see $OUT/homeline.log"
    sleep 0.1
done
grep -q "homeline ready" "$OUT/homeline.log" || die "homeline not ready after 60 s, see $OUT/homeline.log"

# register_all NAME CSV N: REGISTER the N users of CSV once each; sets OK FAILED RETR RC
register_all() {
    local name="$1" csv="$2" n="$3"
    local dur=$(( (n + RATE - 1) / RATE ))
    local limit=$(( RATE * 5 > 200 ? RATE * 5 : 200 ))   # max registrations in flight
    RC=0
    bounded $(( dur + 180 )) sipp "127.0.0.1:$PORT" -sf "$SCEN" -inf "$csv" \
        -key expires "$EXPIRES" -t u1 -i 127.0.0.1 -p "$SIPP_PORT" \
        -m "$n" -r "$RATE" -rp 1000 -l "$limit" -nostdin -buff_size 4194304 \
        -timeout "$(( dur + 120 ))s" -timeout_error -default_behaviors all,-bye \
        -trace_stat -stf "$OUT/${name}_stat.csv" -fd 5 \
        -trace_err -error_file "$OUT/${name}_err.log" > "$OUT/${name}.out" 2>&1 || RC=$?
    OK=$(stat_col "$OUT/${name}_stat.csv" 'SuccessfulCall(C)')
    FAILED=$(stat_col "$OUT/${name}_stat.csv" 'FailedCall(C)')
    RETR=$(stat_col "$OUT/${name}_stat.csv" 'Retransmissions(C)')
    log "$name: sipp rc $RC, $OK registered, $FAILED failed, $RETR retransmissions"
    [ "$OK" -gt 0 ] || die "no successful registration (see $OUT/${name}_err.log, $OUT/homeline.log)"
    kill -0 "$SERVER_PID" 2>/dev/null || die "homeline died, see $OUT/homeline.log"
}
# final cumulative counter COLUMN of a SIPp statistics file
stat_col() {
    awk -F';' -v c="$2" 'NR == 1 { for (i = 1; i <= NF; i++) if ($i == c) k = i; next }
                         k { v = $k } END { print (v == "" ? 0 : v) }' "$1" 2>/dev/null || echo 0
}

if [ "$WARMUP" -gt 0 ]; then
    log "warm-up: registering $WARMUP other stations"
    register_all warmup "$TMPD/warmup.csv" "$WARMUP"
fi
sleep "$SETTLE"
RSS0=$(status_kb VmRSS) ANON0=$(status_kb RssAnon)
log "before: VmRSS ${RSS0} kB, RssAnon ${ANON0} kB (pid $SERVER_PID)"

log "registering $COUNT bindings at $RATE/s (~$(( (COUNT + RATE - 1) / RATE )) s)"
register_all sipp "$TMPD/users.csv" "$COUNT"

sleep "$SETTLE"
RSS1=$(status_kb VmRSS) ANON1=$(status_kb RssAnon) HWM=$(status_kb VmHWM)
log "after:  VmRSS ${RSS1} kB, RssAnon ${ANON1} kB, VmHWM ${HWM} kB"

{
    echo "homeline memory per registration binding ($TS)"
    echo "host: $(uname -srm), $(nproc) cpus; repo $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?')"
    echo "stations: $COUNT (+ $WARMUP warm-up), registered: $OK (failed $FAILED, retransmissions $RETR, sipp rc $RC), rate $RATE/s, Expires $EXPIRES"
    echo "VmRSS:   before $RSS0 kB, after $RSS1 kB, peak (VmHWM) $HWM kB"
    echo "RssAnon: before $ANON0 kB, after $ANON1 kB"
    awk -v a="$RSS0" -v b="$RSS1" -v c="$ANON0" -v d="$ANON1" -v n="$OK" 'BEGIN {
        printf "bytes per binding: %.0f (VmRSS), %.0f (RssAnon)\n", (b - a) * 1024 / n, (d - c) * 1024 / n }'
} | tee "$OUT/summary.txt"
[ "$OK" = "$COUNT" ] || { echo "WARNING: only $OK of $COUNT registrations succeeded" >&2; exit 1; }
