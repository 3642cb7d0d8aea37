#!/usr/bin/env bash
# A Slurm cluster of N nodes on one machine, as root (README "Running across hosts"): the
# hosts of tests/multihost/hosts.sh, one slurmd in each (slurmd -N hbhostI, its own host
# name and address), slurmctld in the hub namespace, munged with a key and socket of its
# own. Not part of make check (a node-loss trial takes about a minute); by hand:
#
#   tests/multihost/slurm_nodes.sh start DIR [N]    # prints how to submit
#   . DIR/env; S="nsenter --net=/run/netns/$HB_HUB"; export SLURM_CONF=DIR/slurm.conf
#   $S sbatch -N 3 --ntasks=3 slurm/h5batch.sbatch JOB.ini
#   tests/multihost/hosts.sh cut DIR 3              # node 3 lost: exit 74, requeued, node down
#   tests/multihost/slurm_nodes.sh stop DIR
#
# The daemons run under nsenter --net, not ip netns exec, which remounts /sys and so
# hides the cgroup file system slurmd needs.
set -u
cmd=${1:?usage: slurm_nodes.sh start|stop DIR [N]}
dir=$(mkdir -p "${2:?DIR}" && cd "$2" && pwd)
here=$(cd "$(dirname "$0")" && pwd)
export PATH=$PATH:/usr/sbin

stop() {
    local f pid
    for f in "$dir"/slurmd-*.pid "$dir/slurmctld.pid" "$dir/munged.pid"; do
        [ -f "$f" ] || continue
        pid=$(cat "$f")
        kill "$pid" 2>/dev/null
        for _ in $(seq 30); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
        kill -9 "$pid" 2>/dev/null
        rm -f "$f"
    done
    bash "$here/hosts.sh" stop "$dir"
}

if [ "$cmd" = stop ]; then
    stop
    exit 0
fi
n=${3:-3}
for b in munged slurmctld slurmd sbatch nsenter; do
    command -v "$b" >/dev/null || { echo "$b is not installed (apt-get install slurm-wlm munge)"; exit 2; }
done
bash "$here/hosts.sh" start "$dir" "$n" || exit 2
. "$dir/env"
mkdir -p "$dir/state" "$dir/spool" "$dir/munge" "$dir/log"
chmod 700 "$dir/munge"
[ -f "$dir/munge/munge.key" ] || dd if=/dev/urandom of="$dir/munge/munge.key" bs=1024 count=1 status=none
chmod 400 "$dir/munge/munge.key"
munged --force --key-file="$dir/munge/munge.key" --socket="$dir/munge/munge.socket" --pid-file="$dir/munged.pid" \
    --log-file="$dir/log/munged.log" --seed-file="$dir/munge/munge.seed" || { stop; exit 2; }
cat >"$dir/slurm.conf" <<EOF
ClusterName=h5batch-mh
SlurmctldHost=hbhub(10.99.0.254)
SlurmUser=root
SlurmdUser=root
SlurmctldPort=16817
SlurmdPort=16818
AuthType=auth/munge
AuthInfo=socket=$dir/munge/munge.socket
CryptoType=crypto/munge
StateSaveLocation=$dir/state
SlurmdSpoolDir=$dir/spool/%n
SlurmctldPidFile=$dir/slurmctld.pid
SlurmdPidFile=$dir/slurmd-%n.pid
SlurmctldLogFile=$dir/log/slurmctld.log
SlurmdLogFile=$dir/log/slurmd-%n.log
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
KillWait=5
SlurmdTimeout=10
InactiveLimit=0
NodeName=hbhost[1-$n] NodeAddr=10.99.0.[1-$n] CPUs=1 RealMemory=1000 State=UNKNOWN
PartitionName=test Nodes=hbhost[1-$n] Default=YES MaxTime=INFINITE State=UP OverSubscribe=NO
EOF
conf=$dir/slurm.conf
nsenter --net="/run/netns/$HB_HUB" unshare --uts sh -c "hostname hbhub && slurmctld -f '$conf' -c" || { stop; exit 2; }
for i in $(seq 1 "$n"); do
    mkdir -p "$dir/spool/hbhost$i"
    nsenter --net="/run/netns/$HB_NS-h$i" unshare --uts sh -c "hostname hbhost$i && slurmd -N hbhost$i -f '$conf' -c" ||
        { stop; exit 2; }
done
# a cut link should end a job in seconds, not after 15 retransmissions (README)
for ns in "$HB_HUB" $(seq -f "$HB_NS-h%g" 1 "$n"); do ip netns exec "$ns" sysctl -q -w net.ipv4.tcp_retries2=2; done
for _ in $(seq 60); do
    if [ "$(SLURM_CONF=$conf nsenter --net="/run/netns/$HB_HUB" sinfo -h -N -o '%T' | grep -c idle)" = "$n" ]; then
        echo "slurm_nodes: $n nodes idle; submit with: . $dir/env; SLURM_CONF=$conf nsenter --net=/run/netns/$HB_HUB sbatch -N $n --ntasks=$n ..."
        exit 0
    fi
    sleep 0.5
done
echo "slurm_nodes: the nodes did not become idle within 30 s (see $dir/log)"
stop
exit 2
