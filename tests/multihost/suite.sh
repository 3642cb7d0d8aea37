# Multi-host runs on one machine (issue 16; README "Running across hosts"): three hosts
# as network namespaces with their own addresses and host names (tests/multihost/hosts.sh),
# mpirun in a fourth with the launcher's settings (scripts/h5batch-mpirun), one rank per
# host. Each kernel across the 3 hosts gives the bits of one rank, /provenance names the
# hosts; a host's link cut in the middle of a run, and once while a checkpoint is being
# written, is detected by the stall deadline (stall_timeout): exit 74, every process on
# every host gone within 30 s, status.json `failed` naming the lost host, and a rerun on
# the 2 hosts that remain resumes from the last checkpoint with the same bits.
# Plain pass only, run alone after the parallel suites (tests/run_tests.sh SERIAL); skipped
# with a message where network namespaces cannot be made (not root, no iproute2).

MH_SETTINGS="--mca oob_tcp_keepalive_time 5 --mca oob_tcp_keepalive_intvl 2 --mca oob_tcp_keepalive_probes 3
    --mca routed direct --mca plm_rsh_no_tree_spawn 1 --mca mpi_yield_when_idle 1"

# mh_run HOSTFILE LOG ARGS...: h5batch run ARGS across the hosts of HOSTFILE, one rank
# each, mpirun in the hub namespace; mpirun's exit status.
mh_run() {
    local hf=$1 log=$2 v x=(-x OMP_NUM_THREADS=1)
    shift 2
    for v in H5BATCH_FAULT_SLOW_CHUNK_MS H5BATCH_FAULT_HOLD_CHECKPOINT H5BATCH_FAULT_RANK MH_OUT; do
        [ -n "${!v:-}" ] && x+=(-x "$v")
    done
    # shellcheck disable=SC2086
    timeout -k 5 90 ip netns exec "$HB_HUB" mpirun --hostfile "$hf" -n "$(wc -l <"$hf")" \
        --mca plm_rsh_agent "$MH/agent" --mca oob_tcp_if_include 10.99.0.0/24 \
        --mca btl_tcp_if_include 10.99.0.0/24 --mca btl self,tcp $MH_SETTINGS \
        "${x[@]}" "$MH_BIN" run "$@" >"$log" 2>&1
}

# mh_wait_for SECONDS CMD...: 0 as soon as CMD succeeds, 1 when the time runs out.
mh_wait_for() {
    local end=$((SECONDS + $1))
    shift
    until "$@"; do
        [ $SECONDS -ge "$end" ] && return 1
        sleep 0.1
    done
}

mh_empty() { [ -z "$(bash "$ROOT/tests/multihost/hosts.sh" pids "$MH")" ]; }

# mh_cut NAME: the run of tr.ini (job mhc-NAME) started in the background with slow chunks
# is cut at host 3 once WHEN (a command) holds; checks detection, cleanup, status, resume.
mh_cut() {
    local name=$1 when=$2 t0 rc
    H5BATCH_FAULT_SLOW_CHUNK_MS=300 mh_run "$MH/hostfile" "$name.log" tr.ini --set "job.run_dir=$name.run" \
        --set "aggregate.output=$name.h5" -q &
    local pid=$!
    if ! mh_wait_for 30 bash -c "$when"; then
        kill "$pid" 2>/dev/null
        wait "$pid"
        cat "$name.log" >"$W/log"
        not_ok "multihost: $name: the run did not reach the point of the cut"
        return
    fi
    bash "$ROOT/tests/multihost/hosts.sh" cut "$MH" 3
    t0=$SECONDS
    wait "$pid"
    rc=$?
    local gone=$((SECONDS - t0))
    mh_wait_for $((30 - gone)) mh_empty
    local empty=$((SECONDS - t0))
    MH_TIMES+=" $name:${gone}s/${empty}s"
    {
        cat "$name.log"
        echo "mpirun exit $rc after ${gone}s, every host empty after ${empty}s"
        bash "$ROOT/tests/multihost/hosts.sh" pids "$MH" | xargs -r ps -o pid,args -p
    } >"$W/log"
    check "multihost: $name: exit 74, one error line naming host 3, every process on every host gone within 30 s" \
        bash -c "[ $rc = 74 ] && [ $empty -le 30 ] && [ \$(grep -c '^h5batch: error:' '$name.log') = 1 ] &&
                 grep -q '^h5batch: error: step aggregate.*rank 2 (host hbhost3) did not arrive within 2s (stall_timeout)' '$name.log' &&
                 [ ! -e '$name.h5' ] && [ ! -e '$name.h5.lock' ] && ! compgen -G '$name.h5.*.tmp' >/dev/null"
    check "multihost: $name: status.json says failed, with the reason" "$PY" -c "
import json; s = json.load(open('$name.run/status.json'))
assert s['state'] == 'failed' and 'hbhost3' in s['error'] and 'stall_timeout' in s['error'], s
assert s['last_checkpoint'], s"
    check "multihost: $name: a rerun on the 2 remaining hosts resumes from the last checkpoint, same bits" bash -c "
        mh_run '$MH/hostfile2' '$name-2.log' tr.ini --set job.run_dir=$name.run --set aggregate.output=$name.h5 &&
        grep -q 'resuming from checkpoint' '$name-2.log' &&
        h5diff --exclude-path /provenance '$name.h5' ref/traffic.h5 &&
        h5dump -a /provenance/hosts '$name.h5' | grep -q '\"hbhost1,hbhost2\"' &&
        h5dump -a /provenance/restarts '$name.h5' | grep -q '(0): 1'"
}

# The deadline on one machine, for where namespaces cannot be made (the cut tests cover
# it otherwise): rank 2 held in a checkpoint does not arrive.
mh_local() {
    local bin=$1
    if "$bin" gen traffic -o mh-traffic.h5 --rows 20k --segments 20 --days 7 --events 2 -q >"$W/log" 2>&1; then
        write_job st aggregate traffic mh-traffic.h5 st.h5 "job.chunk_rows = 2k" "job.checkpoint_interval = 0.001s" \
            "job.stall_timeout = 2s" "timezone = Europe/Berlin"
        local t0=$SECONDS
        H5BATCH_FAULT_RANK=2 H5BATCH_FAULT_HOLD_CHECKPOINT=2:20000 \
            expect_fail "multihost: a rank that does not arrive within stall_timeout fails the job with 74, naming it" \
            74 "^h5batch: error: step aggregate.*: rank 2 (host $(hostname)) did not arrive within 2s (stall_timeout)" \
            st.h5 mpi 3 1 "$bin" run st.ini -q
        local took=$((SECONDS - t0))
        check "multihost: ... within 10 s (${took} s), and status.json says failed with the reason" "$PY" -c "
import json; s = json.load(open('st.run/status.json'))
assert $took <= 10, 'took $took s'
assert s['state'] == 'failed' and 'rank 2' in s['error'] and 'stall_timeout' in s['error'], s"
    else
        not_ok "multihost: making the traffic input"
    fi
}

suite_multihost() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    MH=$W/hosts
    if ! bash "$ROOT/tests/multihost/hosts.sh" start "$MH" 3 >"$W/log" 2>&1; then
        echo "skip - multihost: $(tail -1 "$W/log"); the stall deadline is tested on this machine alone"
        bash "$ROOT/tests/multihost/hosts.sh" stop "$MH" >/dev/null 2>&1
        mh_local "$bin"
        return 0
    fi
    # every namespace, link and process goes, also when the suite is interrupted
    trap 'bash "$ROOT/tests/multihost/hosts.sh" stop "$MH" >/dev/null 2>&1' EXIT
    trap 'bash "$ROOT/tests/multihost/hosts.sh" stop "$MH" >/dev/null 2>&1; exit 130' INT TERM
    . "$MH/env"
    head -2 "$MH/hostfile" >"$MH/hostfile2"
    # mpirun's abort waits for every daemon; a connection to a cut host with unacknowledged
    # data in flight ends after tcp_retries2 retransmissions (default 15: about 15 minutes;
    # keepalive covers idle connections only); 2 is about 1.4 s. Set in the test's own
    # namespaces only; README "Running across hosts".
    local ns
    for ns in "$HB_HUB" "$HB_NS"-h1 "$HB_NS"-h2 "$HB_NS"-h3; do ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_retries2=2; done
    export MH MH_BIN=$bin HB_HUB MH_SETTINGS
    export -f mh_run
    ok "multihost: 3 hosts as network namespaces, own host names, linked by a bridge"

    # tiny inputs, one step per kernel
    mkdir -p ref mh
    if ! {
        "$bin" gen traffic -o mh-traffic.h5 --rows 20k --segments 20 --days 7 --events 2 -q &&
            "$bin" gen market -o mh-market.h5 --assets 6 --days 400 --portfolios 4 -q &&
            "$bin" gen corpus -o mh-corpus.h5 --docs 400 -q &&
            "$bin" gen vitals -o mh-vitals.h5 --rows 6k --devices 12 --days 7 -q &&
            "$bin" gen fleet -o mh-fleet.h5 --vehicles 4 --days 1 --trips 2 --minutes 10 -q
    } >"$W/log" 2>&1; then
        not_ok "multihost: making the inputs"
        return
    fi
    cat >mh.ini <<'EOF'
[job]
run_dir = mh.run
threads = 1
chunk_rows = 300
[step traffic]
kernel = traffic
input = mh-traffic.h5
output = ${MH_OUT}/traffic.h5
timezone = Europe/Berlin
[step risk]
kernel = risk
input = mh-market.h5
output = ${MH_OUT}/risk.h5
window = 100
backtest_days = 50
mc_scenarios = 3000
[step index]
kernel = index
input = mh-corpus.h5
output = ${MH_OUT}/index.h5
stemmer = english
positions = true
[step aggregate]
kernel = aggregate
input = mh-vitals.h5
output = ${MH_OUT}/aggregate.h5
by = patient, date
time = time
timezone = Europe/Zurich
values = systolic, heart_rate
stats = count, mean, p95, above:140
[step episodes]
kernel = episodes
input = mh-fleet.h5
output = ${MH_OUT}/episodes.h5
columns = device:vehicle, value:speed
derive = rate
rule = below:-3
max_gap = 5s
period = day
EOF
    check "multihost: the five kernels at 1 rank (the reference)" bash -c \
        "MH_OUT=ref mpi 1 1 '$bin' run mh.ini --set job.run_dir=ref.run -q"
    check "multihost: the five kernels across 3 hosts" bash -c \
        "MH_OUT=mh mh_run '$MH/hostfile' mh.log mh.ini --set job.run_dir=mh.run -v; s=\$?; cat mh.log; exit \$s"
    local k
    for k in traffic risk index aggregate episodes; do
        check "multihost: $k across 3 hosts is bit-identical to 1 rank; /provenance names the 3 hosts" bash -c \
            "h5diff --exclude-path /provenance mh/$k.h5 ref/$k.h5 &&
             h5dump -a /provenance/hosts mh/$k.h5 | grep -q '\"hbhost1,hbhost2,hbhost3\"' &&
             h5dump -a /provenance/ranks mh/$k.h5 | grep -q '(0): 3'"
    done

    # the traffic step alone, with checkpoints every second and a short deadline
    write_job tr aggregate traffic mh-traffic.h5 tr.h5 "job.chunk_rows = 500" "job.checkpoint_interval = 1s" \
        "job.stall_timeout = 2s" "timezone = Europe/Berlin"
    MH_TIMES=""
    mh_cut cut-run "grep -q '\"last_checkpoint\": \"' cut-run.run/status.json 2>/dev/null"
    bash "$ROOT/tests/multihost/hosts.sh" mend "$MH" 3
    H5BATCH_FAULT_RANK=2 H5BATCH_FAULT_HOLD_CHECKPOINT=2:20000 \
        mh_cut cut-ckpt "grep -qs 'rank 2 holds at H5BATCH_FAULT_HOLD_CHECKPOINT=2' cut-ckpt.log"
    echo "# multihost: mpirun gone / every host empty after the cut:$MH_TIMES"

    bash "$ROOT/tests/multihost/hosts.sh" stop "$MH" >"$W/log" 2>&1
    trap - EXIT INT TERM
    check "multihost: every namespace, link and process the suite made is gone" bash -c \
        "! ip netns list | grep -q '^$HB_NS-'"
}
