#!/usr/bin/env bash
# N hosts on one machine, for the multi-host tests (tests/multihost/suite.sh), as root:
# each host a network namespace with its own address and, for the processes launched in
# it, its own host name (unshare --uts); a hub namespace holds the bridge they are linked
# to and runs mpirun. Nothing outside these namespaces changes: no interface, route or
# address of the machine's own.
#
#   hosts.sh start DIR N     makes the namespaces, DIR/hostfile, DIR/agent (mpirun's
#                            plm_rsh_agent) and DIR/env (the names, sourced by the suite)
#   hosts.sh cut DIR I       cuts host I's link (its end of the veth pair goes down)
#   hosts.sh blackhole DIR I drops every packet host I receives (nft), the link stays up
#   hosts.sh mend DIR I      undoes cut and blackhole
#   hosts.sh pids DIR        the processes left in the namespaces, one a line
#   hosts.sh stop DIR        kills every process in the namespaces and deletes them
set -u
cmd=${1:?usage: hosts.sh start|cut|blackhole|pids|stop DIR [N|I]}
dir=${2:?DIR}

# a prefix of our own, so that two runs (or another suite's namespaces) never meet
prefix_of() { [ -f "$dir/env" ] && . "$dir/env" && echo "$HB_NS"; }

case $cmd in
start)
    n=${3:-3}
    mkdir -p "$dir"
    if [ "$(id -u)" != 0 ]; then
        echo "not root: network namespaces need root"
        exit 1
    fi
    command -v ip >/dev/null && command -v unshare >/dev/null || {
        echo "ip (iproute2) or unshare (util-linux) is not installed"
        exit 1
    }
    ns=hbmh$$
    hub=$ns-hub
    printf 'HB_NS=%s\nHB_HUB=%s\nHB_N=%s\n' "$ns" "$hub" "$n" >"$dir/env"
    ip netns add "$hub" || {
        echo "cannot make a network namespace (ip netns add): not allowed in this container"
        exit 1
    }
    ip -n "$hub" link set lo up
    ip -n "$hub" link add br0 type bridge || {
        echo "cannot make a bridge in a network namespace"
        exit 1
    }
    ip -n "$hub" addr add 10.99.0.254/24 dev br0
    ip -n "$hub" link set br0 up
    : >"$dir/hostfile"
    for i in $(seq 1 "$n"); do
        h=$ns-h$i
        ip netns add "$h" || exit 1
        ip -n "$h" link set lo up
        ip -n "$hub" link add "v$i" type veth peer name eth0 netns "$h" || {
            echo "cannot make a veth pair between namespaces"
            exit 1
        }
        ip -n "$hub" link set "v$i" master br0
        ip -n "$hub" link set "v$i" up
        ip -n "$h" addr add "10.99.0.$i/24" dev eth0
        ip -n "$h" link set eth0 up
        echo "10.99.0.$i slots=1" >>"$dir/hostfile"
    done
    # mpirun's rsh agent: runs the command in the host's namespace under its own host name
    # (Open MPI tells nodes apart by name), as ssh would run it: one shell command line
    cat >"$dir/agent" <<EOF
#!/bin/sh
# plm_rsh_agent for the test hosts: agent ADDRESS COMMAND...
i=\${1##*.}
shift
exec ip netns exec "$ns-h\$i" unshare --uts sh -c 'hostname "\$0" && exec sh -c "\$1"' "hbhost\$i" "\$*"
EOF
    chmod +x "$dir/agent"
    for i in $(seq 1 "$n"); do
        # no ping here: a refused connection is an answer
        timeout 3 ip netns exec "$hub" bash -c "exec 3<>/dev/tcp/10.99.0.$i/9" 2>&1 | grep -q refused || {
            echo "host $i does not answer on its link"
            exit 1
        }
    done
    ;;
cut)
    hub=$(. "$dir/env" && echo "$HB_HUB")
    ip -n "$hub" link set "v$3" down
    ;;
blackhole)
    h=$(prefix_of)-h$3
    ip netns exec "$h" nft -f - <<'EOF'
table inet blackhole {
    chain in { type filter hook input priority 0; policy drop; }
    chain out { type filter hook output priority 0; policy drop; }
}
EOF
    ;;
mend)
    hub=$(. "$dir/env" && echo "$HB_HUB")
    ip -n "$hub" link set "v$3" up
    ip netns exec "$(prefix_of)-h$3" nft delete table inet blackhole 2>/dev/null
    exit 0
    ;;
pids)
    p=$(prefix_of)
    [ -n "$p" ] || exit 0
    for n in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns pids "$n"; done
    ;;
stop)
    p=$(prefix_of)
    [ -n "$p" ] || exit 0
    for round in 1 2 3; do
        for n in $(ip netns list | awk '{print $1}' | grep "^$p-"); do
            for pid in $(ip netns pids "$n"); do kill -9 "$pid" 2>/dev/null; done
        done
        sleep 0.2
    done
    for n in $(ip netns list | awk '{print $1}' | grep "^$p-"); do ip netns del "$n"; done
    rm -f "$dir/env"
    ;;
*)
    echo "hosts.sh: unknown command $cmd" >&2
    exit 2
    ;;
esac
