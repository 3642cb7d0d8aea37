# Shared by the benchmark scripts (sourced, not run). Each script records its measurements
# as JSON lines in $BENCH_RESULTS/results.jsonl; bench/report.py turns them into the
# Markdown report, the goals and the chart.
#
# Environment (bench/run.sh sets them from SCALE):
#   BENCH_DATA     generated inputs and their peer formats, kept between runs (bench/data)
#   BENCH_RESULTS  where results.jsonl and the report go (bench/results)
#   BENCH_PYTHON   the interpreter that runs the peers (bench/venv/bin/python when it
#                  exists, else /usr/bin/python3 with whatever it has)
#   PEERS          peers to run (default: every one that is installed)
#   PEER_TIMEOUT   seconds a peer may take before it is stopped and recorded as "over"
#   REPEAT         runs of each h5batch measurement; the median is kept (default 3: a
#                  shared VM's timings wander by 10-30% from run to run). Peers run once.
cd "$(dirname "${BASH_SOURCE[0]}")/.."
ROOT=$(pwd)
HB=$ROOT/bin/h5batch
BENCH_DATA=${BENCH_DATA:-bench/data}
BENCH_RESULTS=${BENCH_RESULTS:-bench/results}
if [ -z "${BENCH_PYTHON:-}" ]; then
    if [ -x bench/venv/bin/python ]; then BENCH_PYTHON=bench/venv/bin/python; else BENCH_PYTHON=/usr/bin/python3; fi
fi
PEER_TIMEOUT=${PEER_TIMEOUT:-3600}
REPEAT=${REPEAT:-3}
RESULTS=$BENCH_RESULTS/results.jsonl
mkdir -p "$BENCH_DATA" "$BENCH_RESULTS"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 OMPI_MCA_rmaps_base_oversubscribe=1
[ -x "$HB" ] || make -s all

# emit KEY=VALUE...: appends one JSON object to results.jsonl. Values that look like
# numbers, true, false or null stay bare; everything else becomes a JSON string.
emit() {
    /usr/bin/python3 - "$@" >>"$RESULTS" <<'PY'
import json, re, sys
rec = {}
for kv in sys.argv[1:]:
    k, v = kv.split("=", 1)
    if re.fullmatch(r"-?[0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|true|false|null", v):
        v = json.loads(v)
    rec[k] = v
print(json.dumps(rec))
PY
}

# has_peer NAME [MODULE]: whether NAME is wanted (PEERS) and MODULE (by default NAME,
# pyspark for spark) imports in BENCH_PYTHON
has_peer() {
    local mod=${2:-$1}
    [ "$1" = spark ] && mod=${2:-pyspark}
    if [ -n "${PEERS:-}" ] && [[ " $PEERS " != *" $1 "* ]]; then return 1; fi
    if ! "$BENCH_PYTHON" -c "import $mod" 2>/dev/null; then
        echo "   $1: not installed in $BENCH_PYTHON (bash bench/setup.sh installs the peers); skipped" >&2
        emit kernel="$KERNEL" tool="$1" skipped="not installed"
        return 1
    fi
    return 0
}

# hb_run_once LOG N INI [ARGS...]: runs h5batch on N ranks (1 thread each, not pinned) under
# GNU time; prints "WALL RSS_MB INNER PHASES": the whole command's wall seconds (MPI
# start included), the largest peak resident memory of any rank, h5batch's own time for
# the step (from its log: reading, computing and writing, without the MPI start) and
# its phases (setup/map/exchange/finalize seconds, joined by /).
hb_run_once() {
    local log=$1 n=$2 ini=$3 t0 t1 inner phases
    shift 3
    rm -f "$log.rss" # each rank appends its own line (O_APPEND: the lines do not interleave)
    t0=$(date +%s.%N)
    mpirun -n "$n" --bind-to none -x OMP_NUM_THREADS=1 /usr/bin/time -a -o "$log.rss" -f "rss_kb %M" "$HB" run "$ini" --force "$@" \
        >"$log" 2>&1 || { echo "h5batch failed, see $log:" >&2; tail -5 "$log" >&2; return 1; }
    t1=$(date +%s.%N)
    inner=$(grep -o ' in [0-9.]*s (setup' "$log" | grep -o '[0-9.]*' | tail -1 || true)
    phases=$(grep -o '(setup [0-9.]*, map [0-9.]*, exchange [0-9.]*, finalize [0-9.]*' "$log" | tail -1 |
        grep -o '[0-9.]*' | paste -sd/ || true)
    grep -o 'rss_kb [0-9]*' "$log.rss" | awk -v a="$t0" -v b="$t1" -v i="${inner:-null}" -v p="${phases:-null}" \
        '{ if ($2 > m) m = $2 } END { printf "%.2f %.0f %s %s\n", b - a, m / 1024, i, p }'
}

# hb_run LOG N INI [ARGS...]: hb_run_once REPEAT times; prints the run of median wall
# time followed by the fastest and slowest wall times ("WALL RSS_MB INNER PHASES MIN MAX").
hb_run() {
    local runs=() i
    for ((i = 0; i < REPEAT; i++)); do runs+=("$(hb_run_once "$@")") || return 1; done
    printf '%s\n' "${runs[@]}" | sort -n | awk '{ w[NR] = $1; l[NR] = $0 }
        END { m = int((NR + 1) / 2); print l[m], w[1], w[NR] }'
}

# record_hb KERNEL N WORK UNIT RUN [KEY=VALUE...]: one result line for h5batch on N ranks
# from hb_run's output RUN, and a progress line on stderr.
record_hb() {
    local kernel=$1 n=$2 work=$3 unit=$4 wall rss inner phases wmin wmax
    read -r wall rss inner phases wmin wmax <<<"$5"
    shift 5
    emit kernel="$kernel" tool=h5batch config="$n rank$([ "$n" = 1 ] || echo s)" cores="$n" wall_s="$wall" \
        inner_s="$inner" phases="$phases" wall_min="$wmin" wall_max="$wmax" repeat="$REPEAT" work="$work" \
        unit="$unit" rss_mb="$rss" rss_per=rank "$@"
    echo "   h5batch $n rank(s): ${wall}s (step ${inner}s)" >&2
}

# peer_run LOG CMD...: runs a peer under GNU time and PEER_TIMEOUT; its last stdout line
# must be a JSON object with wall_s and agrees. Prints "STATUS RSS_MB JSON" (JSON last:
# it holds spaces), STATUS being ok, differs (the peer ran and its answer disagrees),
# over (timed out) or failed.
peer_run() {
    local log=$1 rc=0 json rss
    shift
    timeout -k 10 "$PEER_TIMEOUT" /usr/bin/time -f "rss_kb %M" "$@" >"$log.out" 2>"$log" || rc=$?
    json=$(tail -1 "$log.out" || true)
    rss=$(grep -o 'rss_kb [0-9]*' "$log" | awk '{ printf "%.0f", $2 / 1024 }' || true)
    if [ "$rc" = 124 ]; then echo "over ${rss:-0} {}"
    elif [[ "$json" == "{"*'"agrees": true'* ]]; then echo "ok ${rss:-0} $json"
    elif [[ "$json" == "{"*'"agrees": false'* ]]; then echo "differs ${rss:-0} $json"
    else echo "failed ${rss:-0} {}"
    fi
}

# record_peer KERNEL TOOL CONFIG WORK UNIT STATUS RSS JSON [KEY=VALUE...]: one result
# line for a peer from peer_run's output; complains on stderr when it disagrees or fails.
record_peer() {
    local kernel=$1 tool=$2 config=$3 work=$4 unit=$5 st=$6 rss=$7 json=$8 wall
    shift 8
    wall=$(echo "$json" | sed -nE 's/.*"wall_s": ([0-9.]+).*/\1/p')
    case $st in
    ok) emit kernel="$kernel" tool="$tool" config="$config" wall_s="$wall" work="$work" unit="$unit" rss_mb="$rss" agrees=true "$@"
        echo "   $tool ($config): ${wall}s, same answer" >&2 ;;
    differs) emit kernel="$kernel" tool="$tool" config="$config" wall_s="$wall" work="$work" unit="$unit" rss_mb="$rss" agrees=false "$@"
        echo "   $tool ($config): ${wall}s, ANSWER DIFFERS from h5batch's" >&2 ;;
    over) emit kernel="$kernel" tool="$tool" config="$config" wall_s="$PEER_TIMEOUT" over=true work="$work" unit="$unit" "$@"
        echo "   $tool ($config): stopped after PEER_TIMEOUT=${PEER_TIMEOUT}s" >&2 ;;
    *) emit kernel="$kernel" tool="$tool" config="$config" failed=true "$@"
        echo "   $tool ($config): FAILED" >&2 ;;
    esac
}

# size_of 1.5M -> 1500000
# traffic_input ROWS SEGMENTS: prints the path of the generated traffic input in
# BENCH_DATA (traffic, spill and the aggregate's dense case share it), generating it once.
traffic_input() {
    local in=$BENCH_DATA/traffic-$1-$2.h5
    if [ ! -f "$in" ]; then
        echo "== generating $in" >&2
        mpirun -n 2 "$HB" gen traffic -o "$in.tmp" --rows "$1" --segments "$2" -q --force >&2
        mv "$in.tmp" "$in"
    fi
    echo "$in"
}

size_of() { /usr/bin/python3 -c "
s = '$1'; f = {'k': 1e3, 'K': 1e3, 'M': 1e6, 'G': 1e9}
print(int(float(s[:-1]) * f[s[-1]]) if s[-1] in f else int(s))"; }
