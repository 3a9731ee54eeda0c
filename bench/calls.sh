#!/usr/bin/env bash
# bench/calls.sh - calls per second through the B2BUA, Kamailio anchor vs homeline, in one run.
#
# Scenario: ../shared/bench's calls test (SIPp UAC INVITE/100/180/200/ACK ... BYE/200 towards
# 1,000 registered users whose Contact is a SIPp UAS; no media). Both servers run the SAME
# copy of the harness, with one change to its UAC scenario: the caller is station 199999
# instead of "caller", because homeline only places calls for stations (Kamailio does not look
# at From, so the anchor is unaffected). Station 199999 has authentication off and calls from
# the internal zone, so like the anchor's proxy homeline sends no 407 (a station with a
# password would be challenged; the anchor config challenges no INVITE).
#
#   (a) Kamailio 5.6 stateful record-routing proxy (the harness starts it),
#   (b) homeline (target/release/homeline) with the 1,000 bench users imported and 199999,
#   (c) ../shared/bench/lib/compare.py on the two results.json.
# Results: bench/results/calls-<timestamp>/.
#
# Usage: bench/calls.sh [--rates LIST] [--duration S] [--homeline-only] [-- extra harness opts]
# Bounded: each harness run is under `timeout 1800`; the server is stopped on exit.
set -euo pipefail
REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH_SRC="${BENCH_DIR:-$REPO/../shared/bench}"
HL="${HOMELINE:-$REPO/target/release/homeline}"
RATES="" DURATION=20 HL_ONLY=0 EXTRA=()
while [ $# -gt 0 ]; do
    case "$1" in
        --rates) RATES="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --homeline-only) HL_ONLY=1; shift ;;
        --) shift; EXTRA=("$@"); break ;;
        -h|--help) sed -n '2,20p' "$0"; exit 0 ;;
        *) echo "unknown option $1" >&2; exit 2 ;;
    esac
done
command -v sipp >/dev/null || { echo "sipp missing: apt-get install sip-tester" >&2; exit 2; }
[ -x "$HL" ] || (cd "$REPO" && timeout 3600 cargo build --release -p homeline)

OUT="$REPO/bench/results/calls-$(date +%Y%m%d-%H%M%S)"
TMPD="$(mktemp -d /tmp/homeline-calls.XXXXXX)"
SERVER_PID=""
cleanup() {
    [ -n "$SERVER_PID" ] && kill "$SERVER_PID" 2>/dev/null && wait "$SERVER_PID" 2>/dev/null || true
    rm -rf "$TMPD"
}
trap cleanup EXIT INT TERM
mkdir -p "$OUT"

# A private copy of the harness with the caller renamed to a station number.
cp -r "$BENCH_SRC" "$TMPD/bench"
sed -i 's/sip:caller@bench.local/sip:199999@bench.local/; s/<sip:caller@\[local_ip\]/<sip:199999@[local_ip]/' "$TMPD/bench/sipp/call_uac.xml"
grep -q "199999" "$TMPD/bench/sipp/call_uac.xml" || { echo "could not patch the UAC scenario" >&2; exit 1; }
ARGS=(--duration "$DURATION")
[ -n "$RATES" ] && ARGS+=(--rates "$RATES")
{ echo "date: $(date -Is)"; echo "host: $(uname -srm), $(nproc) cpus, load: $(cut -d' ' -f1-3 /proc/loadavg)";
  echo "repo: $(cd "$REPO" && git rev-parse --short HEAD)"; } > "$OUT/meta.txt"

if [ "$HL_ONLY" = 0 ]; then
    echo "(a) Kamailio anchor"
    timeout 1800 "$TMPD/bench/run-calls.sh" "${ARGS[@]}" --workdir "$OUT/kamailio" "${EXTRA[@]}" > "$OUT/kamailio.out" 2>&1 || true
    grep RESULT "$OUT/kamailio.out" || true
fi

echo "(b) homeline"
PORT=25560
cat > "$TMPD/homeline.toml" <<EOT
[sip]
realm = "bench.local"
internal = ["127.0.0.1:$PORT"]
external = ["127.0.0.1:$((PORT + 2))"]
[log]
level = "warn"
EOT
{ echo "number,password,sbc"; tail -n +2 "$TMPD/bench/sipp/users.csv" | awk -F';' 'NF>=2 {print $1 "," $2 ",no"}'; } > "$TMPD/stations.csv"
timeout 300 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" station import "$TMPD/stations.csv" > "$OUT/import.log"
timeout 60 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" station add 199999 --auth off --password "bench-caller-unused" >> "$OUT/import.log"
nice -n -20 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" serve > "$OUT/homeline.log" 2>&1 &
SERVER_PID=$!
for _ in $(seq 100); do grep -q "homeline ready" "$OUT/homeline.log" && break; sleep 0.1; done
timeout 1800 "$TMPD/bench/run-calls.sh" --server none --target "127.0.0.1:$PORT" --server-pid "$SERVER_PID" \
    --label homeline "${ARGS[@]}" --workdir "$OUT/homeline" "${EXTRA[@]}" > "$OUT/homeline.out" 2>&1 || true
grep RESULT "$OUT/homeline.out" || true
grep VmHWM /proc/$SERVER_PID/status > "$OUT/homeline-memory.txt" 2>/dev/null || true

if [ "$HL_ONLY" = 0 ] && [ -f "$OUT/kamailio/results.json" ] && [ -f "$OUT/homeline/results.json" ]; then
    python3 "$TMPD/bench/lib/compare.py" "$OUT/kamailio/results.json" "$OUT/homeline/results.json" | tee "$OUT/compare.md"
fi
echo "results: $OUT"
