#!/usr/bin/env bash
# A real single-node Slurm cluster on localhost for the end-to-end tests:
#   tests/slurm_cluster.sh start DIR   # writes DIR/slurm.conf, starts munged, slurmctld, slurmd
#   tests/slurm_cluster.sh stop DIR    # stops every daemon it started, by pid
# Needs root and Debian's slurm-wlm and munge. No systemd or cgroups: proctrack/linuxproc,
# task/none. Clients find the cluster through SLURM_CONF=DIR/slurm.conf. Exit status 0 when
# the node is idle and takes jobs; 2 when this machine cannot run Slurm (a reason on stderr).
set -euo pipefail
cmd=${1:?usage: slurm_cluster.sh start|stop DIR}
dir=$(mkdir -p "${2:?usage: slurm_cluster.sh start|stop DIR}" && cd "$2" && pwd)

stop() {
    for d in slurmd slurmctld munged; do
        local f="$dir/$d.pid"
        [ -f "$f" ] || continue
        local pid
        pid=$(cat "$f")
        if kill -0 "$pid" 2>/dev/null; then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
            kill -9 "$pid" 2>/dev/null || true
        fi
        rm -f "$f"
    done
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi

cannot() {
    echo "slurm_cluster: cannot run Slurm here: $*" >&2
    exit 2
}
[ "$(id -u)" = 0 ] || cannot "needs root"
for b in munged slurmctld slurmd sbatch scontrol sinfo; do
    command -v "$b" >/dev/null || [ -x "/usr/sbin/$b" ] || cannot "$b is not installed (apt-get install slurm-wlm munge)"
done
export PATH=$PATH:/usr/sbin
mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
chmod 700 "$dir/munge"

# munge: our own key and socket, so that nothing of the machine's is touched
key=$dir/munge/munge.key
[ -f "$key" ] || dd if=/dev/urandom of="$key" bs=1024 count=1 status=none
chmod 400 "$key"
munged --force --key-file="$key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" || cannot "munged did not start"

host=$(hostname -s)
node=$(slurmd -C | head -1)
# slurmd -C reports all of the memory; leave some to the machine
mem=$(echo "$node" | sed -E 's/.*RealMemory=([0-9]+).*/\1/')
node=$(echo "$node" | sed -E "s/RealMemory=[0-9]+/RealMemory=$((mem * 9 / 10))/")
port=${SLURM_TEST_PORT:-16817}
cat >"$dir/slurm.conf" <<EOF
ClusterName=h5batch-test
SlurmctldHost=$host
SlurmUser=root
SlurmdUser=root
SlurmctldPort=$port
SlurmdPort=$((port + 1))
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CryptoType=crypto/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
SchedulerType=sched/backfill
MpiDefault=none
ReturnToService=2
JobRequeue=1
MinJobAge=600
KillWait=10
SlurmdTimeout=60
InactiveLimit=0
$node State=UNKNOWN
PartitionName=test Nodes=$host Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
export SLURM_CONF=$dir/slurm.conf
slurmctld -f "$SLURM_CONF" -c || { stop; cannot "slurmctld did not start (see $dir/log/slurmctld.log)"; }
slurmd -f "$SLURM_CONF" -c || { stop; cannot "slurmd did not start (see $dir/log/slurmd.log)"; }
for _ in $(seq 60); do
    if sinfo -h -N -o '%T' 2>/dev/null | grep -qx idle; then
        exit 0
    fi
    sleep 0.5
done
stop
cannot "the node did not become idle within 30 s (see $dir/log)"
