#!/usr/bin/env bash
# bench/media.sh - the RTP relay (issue 3): rtpengine 10.5 userspace anchor vs homeline, in one run.
#
# N concurrent G.711 calls, 172-byte RTP every 20 ms each way, generated and measured by
# ../shared/bench/media/rtpload (the anchor's generator, same command line, same parsing, same
# pass criteria: loss <= 0.1 %, p99 latency <= 10 ms, <= 5 % generator ticks late, relay +
# generator < 95 % of both cores).
#
#   (a) rtpengine 10.5, userspace only (--table=-1, 2 threads), calls set up over ng
#       offer/answer exactly as ../shared/bench/run-media.sh does (mediabench.py's code);
#   (b) homeline (target/release/homeline), calls set up THROUGH SIP on its external listener:
#       2N external-zone stations (--sbc on) REGISTER with digest MD5, A_i INVITEs B_i (407, then
#       INVITE with credentials), B_i answers with its SDP, A_i ACKs; the legs file comes from the
#       SDP each side received, so every packet crosses two relay channels; BYE at the end.
# The two alternate step by step (anchor N, homeline N) so they see the same machine; each has its
# own search for the max calls (grow by --factor, bisect, confirm), after a same-load point at
# --also calls for both. bench/media_sip.py does the driving; see its docstring.
# Results: bench/results/media-<timestamp>/ (results.json, summary.md, per-step rtpload output,
# rtpengine.log, homeline.log, meta.txt); the summary is printed.
#
# Usage: bench/media.sh [options] [-- extra bench/media_sip.py options]
#   --calls LIST       fixed steps for both servers, e.g. 300,600 (default: --also + search)
#   --also LIST        same-load points measured for both before the search (default 300)
#   --start-calls N    where the searches start (default 300); --factor F (default 1.4)
#   --duration S       measured seconds per step (default 20, plus 3 s warm-up)
#   --workers N        homeline [media] workers (default 0 = one per core)
#   --nice N           nice level of both relays and the generator (default -20)
#   --homeline-only | --anchor-only
#   --port P           homeline internal SIP port on 127.0.0.1 (default 25660; external P+2)
#   --out DIR          results directory (default bench/results/media-<timestamp>)
#   --run-timeout S    hard bound for the whole measurement (default 3000 s)
#   --build            rebuild target/release/homeline even if it exists
#   -h | --help
# Useful bench/media_sip.py options (after --): --memory-calls N (default 1000; 0 skips the
# memory-per-call reading, ~3 min: N calls held without media on the fresh servers, RSS read after
# --memory-settle 40 s), --max-steps N per server, --quiet-max-wait S, --bg-retries N,
# --no-direct, --pin (each relay server, all its threads, on CPU 1; the driver and so rtpload on
# CPU 0; for both servers alike), --threads N (rtpengine --num-threads, default 2 as run-media.sh).
# Environment: BENCH_DIR (default <repo>/../shared/bench), HOMELINE (binary).
#
# Bounded: the build under 3600 s, the measurement under --run-timeout, every rtpload run under
# warm-up + duration + 30 s (mediabench). Only 127.0.0.1 is addressed. On exit the homeline
# server and rtpengine (started by the driver) are stopped by PID; the temporary data dir is
# removed.
set -euo pipefail

REPO="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
BENCH="${BENCH_DIR:-$REPO/../shared/bench}"
HL="${HOMELINE:-$REPO/target/release/homeline}"

CALLS="" ALSO=300 START=300 FACTOR=1.4 DURATION=20 WORKERS=0 NICE=-20 SERVERS="rtpengine,homeline"
PORT=25660 OUT="" RUN_TIMEOUT=3000 BUILD=0 EXTRA=() ORIG_ARGS=("$@")
usage() { sed -n '2,/^set -euo/p' "${BASH_SOURCE[0]}" | sed '$d; s/^# \{0,1\}//'; exit "${1:-0}"; }
while [ $# -gt 0 ]; do
    case "$1" in
        --calls) CALLS="$2"; shift 2 ;;
        --also) ALSO="$2"; shift 2 ;;
        --start-calls) START="$2"; shift 2 ;;
        --factor) FACTOR="$2"; shift 2 ;;
        --duration) DURATION="$2"; shift 2 ;;
        --workers) WORKERS="$2"; shift 2 ;;
        --nice) NICE="$2"; shift 2 ;;
        --homeline-only) SERVERS="homeline"; shift ;;
        --anchor-only) SERVERS="rtpengine"; shift ;;
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
die() { echo "media.sh: $*" >&2; exit 1; }

# With CONFIG_SCHED_AUTOGROUP (on here: /proc/sys/kernel/sched_autogroup_enabled = 1), `nice`
# only ranks processes inside their session's autogroup; every other session (a parallel
# `cargo build`, another test run) gets an equal share of the CPU whatever its nice level, so
# `nice -n -20` alone did not keep the relays and rtpload ahead of nice-0 jobs (1 s generator
# stalls at 210 calls). The bench therefore runs in a session of its own whose autogroup gets the
# same nice level (/proc/PID/autogroup); both servers and the generator are in it alike.
if [ -z "${HOMELINE_BENCH_SESSION:-}" ] && [ "$(cat /proc/sys/kernel/sched_autogroup_enabled 2>/dev/null)" = 1 ]; then
    SESSION_PIDFILE="$(mktemp /tmp/homeline-media-session.XXXXXX)"
    HOMELINE_BENCH_SESSION="$SESSION_PIDFILE" setsid --wait "$0" "${ORIG_ARGS[@]}" &
    SESSION_WAIT=$!
    stop_session() {
        local p; p="$(cat "$SESSION_PIDFILE" 2>/dev/null || true)"
        [ -z "$p" ] || kill -TERM "$p" 2>/dev/null || true
        wait "$SESSION_WAIT" 2>/dev/null || true
        rm -f "$SESSION_PIDFILE"
        exit 130
    }
    trap stop_session INT TERM
    rc=0; wait "$SESSION_WAIT" || rc=$?
    rm -f "$SESSION_PIDFILE"
    exit "$rc"
fi
if [ -n "${HOMELINE_BENCH_SESSION:-}" ]; then
    echo $$ > "$HOMELINE_BENCH_SESSION"
    echo "$NICE" > "/proc/$$/autogroup" 2>/dev/null || log "note: could not set the autogroup's nice level (not root?)"
fi

[ -f "$BENCH/media/mediabench.py" ] || die "bench suite not found at $BENCH (set BENCH_DIR)"
command -v python3 >/dev/null || die "python3 missing"
command -v cc >/dev/null || die "cc missing (rtpload is C): apt-get install gcc"
case "$SERVERS" in *rtpengine*) command -v rtpengine >/dev/null \
    || die "rtpengine missing: apt-get install -y rtpengine-daemon" ;; esac
[ "$(nproc)" = 2 ] || log "note: $(nproc) CPUs here; the anchor figures in ../shared/bench are for 2"

TS="$(date +%Y%m%d-%H%M%S)"
OUT="${OUT:-$REPO/bench/results/media-$TS}"
mkdir -p "$OUT"
OUT="$(cd "$OUT" && pwd)"

SERVER_PID="" DRIVER_PID="" TMPD=""
cleanup() {
    local rc=$?
    trap - EXIT
    trap '' INT TERM   # a second signal must not cut the clean-up short (homeline left running)
    if [ -n "$DRIVER_PID" ] && kill -0 "$DRIVER_PID" 2>/dev/null; then
        kill -TERM "$DRIVER_PID" 2>/dev/null || true   # the driver stops its rtpengine
        for _ in $(seq 50); do kill -0 "$DRIVER_PID" 2>/dev/null || break; sleep 0.2; done
    fi
    if [ -n "$SERVER_PID" ] && kill -0 "$SERVER_PID" 2>/dev/null; then
        kill -TERM "$SERVER_PID" 2>/dev/null || true
        for _ in $(seq 50); do kill -0 "$SERVER_PID" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$SERVER_PID" 2>/dev/null || true
    fi
    [ -z "$SERVER_PID" ] || wait "$SERVER_PID" 2>/dev/null || true
    [ -z "$TMPD" ] || rm -rf "$TMPD"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

port_free() {  # udp and tcp on 127.0.0.1:$1
    ! ss -Hlnu "sport = :$1" 2>/dev/null | grep -q . && ! ss -Hlnt "sport = :$1" 2>/dev/null | grep -q .
}

ARGS=(--servers "$SERVERS" --duration "$DURATION" --nice "$NICE" --workdir "$OUT")
if [ -n "$CALLS" ]; then ARGS+=(--calls "$CALLS"); else
    ARGS+=(--also "$ALSO" --start-calls "$START" --factor "$FACTOR"); fi

{
    echo "date: $(date -Is)"
    echo "host: $(uname -srm), $(nproc) cpus, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), load: $(cut -d' ' -f1-3 /proc/loadavg)"
    echo "repo: $(git -C "$REPO" rev-parse --short HEAD 2>/dev/null || echo '?') $(git -C "$REPO" status --porcelain -- crates 2>/dev/null | grep -q . && echo '(crates dirty)')"
    echo "rtpengine: $(dpkg-query -W -f='${Version}' rtpengine-daemon 2>/dev/null || echo '?')"
    echo "homeline [media] workers: $WORKERS"
    echo "scheduling: autogroup $(cat /proc/$$/autogroup 2>/dev/null)"
    echo "options: ${ARGS[*]} ${EXTRA[*]}"
} > "$OUT/meta.txt"
log "results -> $OUT"

HL_ARGS=()
case "$SERVERS" in *homeline*)
    if [ "$BUILD" = 1 ] || [ ! -x "$HL" ]; then
        log "building homeline (cargo build --release -p homeline)"
        timeout 3600 cargo build --release -p homeline --manifest-path "$REPO/Cargo.toml" || die "build failed"
    fi
    [ -x "$HL" ] || die "no binary at $HL"
    port_free "$PORT" || die "127.0.0.1:$PORT is in use (--port)"
    port_free "$((PORT + 2))" || die "127.0.0.1:$((PORT + 2)) is in use (--port)"
    TMPD="$(mktemp -d /tmp/homeline-media.XXXXXX)"
    cat > "$TMPD/homeline.toml" <<EOF
[sip]
realm = "bench.local"
internal = ["127.0.0.1:$PORT"]
external = ["127.0.0.1:$((PORT + 2))"]
digest_algorithms = ["MD5"]

[media]
ports = "40000-59999"
public_ip = "127.0.0.1"
internal_ip = "127.0.0.1"
bind_ip = "127.0.0.1"
workers = $WORKERS

[log]
level = "warn"
EOF
    cp "$TMPD/homeline.toml" "$OUT/homeline.toml"
    # 5,000 external-zone stations (2 per call, up to 2,500 calls); passwords pass the SBC rules
    python3 - > "$TMPD/stations.csv" <<'EOF'
print("number,password,sbc")
for i in range(5000):
    print(f"{300000 + i},Kx9#mQ{''.join('bcdfghjkmn'[int(c)] for c in f'{i:04d}')}vT7z,on")
EOF
    log "importing 5000 stations (sbc on)"
    timeout 300 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" station import "$TMPD/stations.csv" \
        > "$OUT/import.log" 2>&1 || die "station import failed, see $OUT/import.log"
    log "starting homeline (nice $NICE)"
    nice -n "$NICE" "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" serve > "$OUT/homeline.log" 2>&1 &
    SERVER_PID=$!
    for _ in $(seq 600); do
        grep -q "homeline ready" "$OUT/homeline.log" && break
        kill -0 "$SERVER_PID" 2>/dev/null || die "homeline exited during start-up, see $OUT/homeline.log"
        sleep 0.1
    done
    grep -q "homeline ready" "$OUT/homeline.log" || die "homeline not ready after 60 s"
    log "homeline up, pid $SERVER_PID, threads: $(ls /proc/$SERVER_PID/task | wc -l)"
    HL_ARGS=(--hl-pid "$SERVER_PID" --hl-bin "$HL" --hl-data "$TMPD/data" --hl-config "$TMPD/homeline.toml"
             --hl-sip "127.0.0.1:$((PORT + 2))" --stations "$TMPD/stations.csv")
    ;;
esac

rc=0
timeout -k 30 "$RUN_TIMEOUT" python3 "$REPO/bench/media_sip.py" "${ARGS[@]}" "${HL_ARGS[@]}" "${EXTRA[@]}" \
    > "$OUT/run.out" 2>&1 &
DRIVER_PID=$!
wait "$DRIVER_PID" || rc=$?
DRIVER_PID=""
[ -z "$SERVER_PID" ] || grep -E "^(VmHWM|VmRSS|Threads)" "/proc/$SERVER_PID/status" > "$OUT/homeline-memory.txt" 2>/dev/null || true
[ -z "$SERVER_PID" ] || { timeout 10 "$HL" --data "$TMPD/data" --config "$TMPD/homeline.toml" status --json \
    > "$OUT/homeline-status.json" 2>/dev/null || true; }
grep -E "WARN|ERROR" "$OUT/homeline.log" | tail -n 5 || true

echo
echo "# media relay benchmark $TS"
sed 's/^/    /' "$OUT/meta.txt"
echo
if [ -f "$OUT/summary.md" ]; then cat "$OUT/summary.md"; else tail -n 30 "$OUT/run.out"; fi
echo "results: $OUT"
[ "$rc" = 0 ] || die "driver failed (rc $rc), see $OUT/run.out"
