# Issue 17's speed work on the traffic kernel, checked for bits: the columns read in their
# stored types and converted in map's loop (io/table.c hb_table_read_raw), the reduction
# by cell on 4-byte keys with its exact-sum shortcut, and the MPI transport chosen before
# MPI_Init (src/mpienv.c). Sourced by tests/run_tests.sh (helpers in tests/lib.sh).
# Expected values: tests/traffic/traffic_ref.py (numpy, from the contract) on one input,
# and bit identity between the same values stored as other types, read through other
# paths (converted reads, a compound dataset) and reduced by the float64 path, which
# shares no code with the float32 one. The valgrind pass runs nothing here.

tspeed_inputs() {
    [ -f tspeed-inputs.done ] && return 0
    $PY "$ROOT/tests/tspeed/make_types.py" . && touch tspeed-inputs.done
}

# tspeed_job NAME INPUT [LINE]...: the traffic job of the suite, writing NAME.h5, with
# percentiles that reach both ends.
tspeed_job() {
    local name=$1 in=$2
    shift 2
    job "$name" "$in" "$name.h5" Europe/Berlin "percentiles = 0, 5, 50, 85, 95, 99.9, 100" "$@"
}

# The base (uint32 segments, float32 speeds: both read as stored) against numpy.
tspeed_reference() {
    local bin=$1 tag=$2
    tspeed_job "ts-$tag-u32f32" u32f32.h5
    check "tspeed ($tag): native-type reads and the reduction by cell equal numpy" bash -c \
        "mpi 1 1 '$bin' run ts-$tag-u32f32.ini -q --force &&
         $PY '$ROOT/tests/traffic/traffic_ref.py' u32f32.h5 ts-$tag-u32f32.h5 --timezone Europe/Berlin \
             --percentiles 0,5,50,85,95,99.9,100"
}

# The same values in other stored types and layouts give the base's bits: int32 segments
# with float64 speeds (the float64 reduction), int64 with float32, float64 segments (read
# converted), and a compound dataset (fields gathered from whole records); or the
# variants named in $4.
tspeed_types() {
    local bin=$1 tag=$2 n=$3 v
    for v in ${4:-i32f64 i64f32 f64f32 compound}; do
        tspeed_job "ts-$tag-$v" "$v.h5"
        check "tspeed ($tag): $v at $n rank(s) has the bits of u32f32" bash -c \
            "mpi $n 1 '$bin' run ts-$tag-$v.ini -q --force &&
             h5diff --exclude-path /provenance ts-$tag-u32f32.h5 ts-$tag-$v.h5"
    done
}

# Ranks, threads and chunk rounds change nothing; nor do the MPI settings: the transport
# h5batch picks (ob1 here: no fabric device), the one a user picks, and none picked.
tspeed_ranks() {
    local bin=$1
    tspeed_job ts-rk u32f32.h5 "job.chunk_rows = 7k"
    check "tspeed: 3 ranks x 2 threads, 7k-row chunks, bit-identical" bash -c \
        "mpi 3 2 '$bin' run ts-rk.ini -q --force && h5diff --exclude-path /provenance ts-plain-u32f32.h5 ts-rk.h5"
    check "tspeed: H5BATCH_MPI_DEFAULTS=0 (Open MPI chooses) at 2 ranks, bit-identical" bash -c \
        "H5BATCH_MPI_DEFAULTS=0 mpi 2 1 '$bin' run ts-rk.ini -q --force --set aggregate.output=ts-rk0.h5 &&
         h5diff --exclude-path /provenance ts-plain-u32f32.h5 ts-rk0.h5"
    check "tspeed: a user's OMPI_MCA_pml=ob1 and btl=self,tcp at 2 ranks, bit-identical" bash -c \
        "OMPI_MCA_pml=ob1 OMPI_MCA_btl=self,tcp mpi 2 1 '$bin' run ts-rk.ini -q --force \
             --set aggregate.output=ts-rk1.h5 && h5diff --exclude-path /provenance ts-plain-u32f32.h5 ts-rk1.h5"
}

# tspeed_rank_pci BIN TRACE WANT [DEFAULTS]: a 2-rank run under strace (bits as the base's,
# H5BATCH_MPI_DEFAULTS=DEFAULTS when given); succeeds when the ranks opened a PCI device's
# config space or a hwloc plugin (WANT 1) or not (0).
tspeed_rank_pci() {
    local bin=$1 tr=$2 want=$3 ranks found=0
    env -u HWLOC_COMPONENTS -u HWLOC_PLUGINS_BLACKLIST H5BATCH_MPI_DEFAULTS="${4:-1}" timeout -k 5 "$LIMIT" strace -f -e trace=openat,execve \
        -o "$tr" mpirun -n 2 --bind-to none "$bin" run ts-rk.ini -q --force --set aggregate.output=ts-hw.h5 &&
        h5diff --exclude-path /provenance ts-plain-u32f32.h5 ts-hw.h5 || return 1
    ranks=$(grep -F "execve(\"$bin\"" "$tr" | cut -d' ' -f1 | sort -u | paste -sd'|')
    [ -n "$ranks" ] || return 1
    grep -E "^($ranks) " "$tr" | grep -qE 'pci/devices/.*/config|hwloc_pci' && found=1
    [ "$found" = "$want" ]
}

# The transport choice takes effect: with no fabric device here, MPI_Init opens no MTL
# (psm2, psm and ofi probe for hardware); with H5BATCH_MPI_DEFAULTS=0 Open MPI's own
# default opens them, which shows the test can fail. Needs strace and Open MPI's psm2
# component; 1 rank (a plain process: MPI_Init as a singleton).
tspeed_transport() {
    local bin=$1 mtl
    mtl=$(ls /usr/lib/*/openmpi/lib/openmpi3/mca_mtl_psm2.so 2>/dev/null | head -1)
    if ! command -v strace >/dev/null || [ -z "$mtl" ]; then
        skip "tspeed: MPI_Init opens no MTL without a fabric" "needs strace and Open MPI's mca_mtl_psm2"
        return
    fi
    if [ -n "$(ls -d /dev/hfi1* /dev/ipath* /dev/infiniband /sys/class/infiniband/* /sys/class/cxi/* 2>/dev/null)" ]; then
        skip "tspeed: MPI_Init opens no MTL without a fabric" "this host has a fabric device"
        return
    fi
    check "tspeed: MPI_Init opens no MTL on a host without a fabric (h5batch chose ob1)" bash -c \
        "env -u OMPI_MCA_pml -u OMPI_MCA_mtl timeout -k 5 '$LIMIT' strace -f -e trace=openat -o strace-ob1.txt \
             '$bin' run ts-rk.ini -q --force --set aggregate.output=ts-st.h5 &&
         ! grep -q 'mca_mtl_' strace-ob1.txt && grep -q 'mca_pml_ob1' strace-ob1.txt"
    check "tspeed: with H5BATCH_MPI_DEFAULTS=0, Open MPI's default probes the MTLs" bash -c \
        "env -u OMPI_MCA_pml -u OMPI_MCA_mtl H5BATCH_MPI_DEFAULTS=0 timeout -k 5 '$LIMIT' strace -f -e trace=openat \
             -o strace-def.txt '$bin' run ts-rk.ini -q --force --set aggregate.output=ts-st.h5 &&
         grep -q 'mca_mtl_psm2' strace-def.txt"
    # each rank's own topology (mpirun binds nothing) skips the I/O devices and hwloc's plugins
    check "tspeed: ranks read no PCI config space and load no hwloc plugin (mpirun --bind-to none)" \
        tspeed_rank_pci "$bin" strace-hw.txt 0
    check "tspeed: with H5BATCH_MPI_DEFAULTS=0, the ranks' hwloc reads PCI config space" \
        tspeed_rank_pci "$bin" strace-hw0.txt 1 0
}

# Times read as stored are still checked: milliseconds read as seconds are refused (65),
# naming the column and the unit that fits, leaving no output.
tspeed_bad_input() {
    local bin=$1 tag=$2
    [ -f ms.h5 ] || $PY - <<'PYEOF'
import h5py
with h5py.File("u32f32.h5", "r") as s, h5py.File("ms.h5", "w") as d:
    for k in ("segment", "speed"):
        d[f"observations/{k}"] = s[f"observations/{k}"][:]
    d["observations/time"] = s["observations/time"][:] * 1000
    d["observations"].attrs["n_segments"] = s["observations"].attrs["n_segments"]
PYEOF
    tspeed_job "ts-$tag-ms" ms.h5
    rm -f "ts-$tag-ms.h5"
    expect_fail "tspeed ($tag): int64 milliseconds read as seconds are refused, naming time_unit = ms" 65 \
        "time column 'time', row 0: .*time_unit = ms fits" "ts-$tag-ms.h5" mpi 2 1 "$bin" run "ts-$tag-ms.ini" -q
}

suite_tspeed() {
    local bin=$1 tag=$2
    [ "$tag" = valgrind ] && return 0
    if ! tspeed_inputs >"$W/log" 2>&1; then
        not_ok "tspeed ($tag): making the inputs"
        return
    fi
    tspeed_reference "$bin" "$tag"
    case $tag in
    plain)
        tspeed_types "$bin" plain 2
        tspeed_ranks "$bin"
        tspeed_transport "$bin"
        tspeed_bad_input "$bin" plain
        ;;
    asan) # the float64 reduction and the records of a compound dataset: the paths apart
        tspeed_types "$bin" asan 1 "i32f64 compound"
        ;;
    esac
}
