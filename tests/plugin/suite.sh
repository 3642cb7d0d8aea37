# Plugin kernels (DESIGN.md 8) and the example plugin, kernel oee with its generator
# bottling (examples/plugins/oee); sourced by tests/run_tests.sh, whose helpers (check,
# expect_fail, mpi, $PY, $W, $ROOT, $LIMIT) they use. The plugin is built the way a user
# builds one: against an installed h5batch (make install PREFIX=...) with pkg-config,
# and then tested like a built-in kernel; expected values come from the numpy reference
# tests/oee_ref.py. Each function takes (BIN TAG).

# The ABI version of this tree's headers, which the host reports in its refusals.
plugin_abi() { sed -n 's/^#define HB_ABI_VERSION \([0-9]*\).*/\1/p' "$ROOT/include/h5batch/kernel.h"; }

# A minimal plugin source whose kernel is named NAME: plugin_source NAME
plugin_source() {
    cat <<EOF
#include <h5batch/kernel.h>
static int setup(hb_step_ctx *c, void **s) { (void)c, (void)s; return 0; }
static int map(void *s, int64_t c) { (void)s, (void)c; return 0; }
static int finalize(void *s, hb_out *o) { (void)s, (void)o; return 0; }
static const hb_option options[] = {{NULL, 0, NULL, 0, 0, NULL, NULL}};
static const hb_kernel k = {.name = "$1", .summary = "a test kernel", .options = options,
                            .default_chunk_rows = 1, .setup = setup, .map = map, .finalize = finalize};
HB_PLUGIN_ABI;
int hb_plugin_init(int host_abi) { (void)host_abi; return hb_kernel_register(&k); }
EOF
}

# Once for both passes: h5batch installed into $W/prefix, the example built there with
# pkg-config into pl/ok, the same source built against headers of another ABI version
# into pl/abi, and plugins that are broken, lack hb_plugin_init or take a built-in name.
plugin_setup() {
    [ -f plugin-setup.done ] && return 0
    make -C "$ROOT" --no-print-directory install PREFIX="$W/prefix" || return 1
    rm -rf pl pl-src && mkdir -p pl/ok pl/abi/include pl/broken pl/noinit pl/clash pl/twice &&
        cp -r "$ROOT/examples/plugins/oee" pl-src || return 1
    PKG_CONFIG_PATH="$W/prefix/lib/pkgconfig" make -C pl-src >pl-build.log 2>&1 || { cat pl-build.log; return 1; }
    cp pl-src/oee.so pl/ok/ &&
        cp -r "$W/prefix/include/h5batch" pl/abi/include/ &&
        sed -i 's/^#define HB_ABI_VERSION [0-9]*/#define HB_ABI_VERSION 999/' pl/abi/include/h5batch/kernel.h &&
        mpicc -std=c17 -shared -fPIC -fopenmp -Ipl/abi/include -o pl/abi/oee.so pl-src/oee.c pl-src/bottling.c -lm &&
        echo "not a shared object" >pl/broken/broken.so &&
        printf '#include <h5batch/kernel.h>\nHB_PLUGIN_ABI;\n' >pl-noinit.c &&
        mpicc -shared -fPIC $(PKG_CONFIG_PATH="$W/prefix/lib/pkgconfig" pkg-config --cflags h5batch-plugin) \
            -o pl/noinit/noinit.so pl-noinit.c &&
        plugin_source traffic >pl-clash.c &&
        mpicc -shared -fPIC -I"$W/prefix/include" -o pl/clash/clash.so pl-clash.c &&
        plugin_source oee >pl-twice.c &&
        mpicc -shared -fPIC -I"$W/prefix/include" -o pl/twice/another-oee.so pl-twice.c || return 1
    H5BATCH_PLUGIN_PATH="$W/pl/ok" mpi 2 1 "$HB" gen bottling -o pl-plant.h5 --lines 6 --days 40 --invalid 0.01 -q &&
        touch plugin-setup.done
}

# pl_job NAME INPUT OUTPUT [lines]: a job file with one oee step named oee.
pl_job() {
    local name=$1 in=$2 out=$3
    shift 3
    {
        printf '[job]\nrun_dir = %s.run\n\n[step oee]\nkernel = oee\n' "$name"
        printf 'input = %s\noutput = %s\n' "$in" "$out"
        for l in "$@"; do printf '%s\n' "$l"; done
    } >"$name.ini"
}

# make install, the installed headers and pkg-config file, the example built with them.
suite_plugin_install() {
    local bin=$1 tag=$2
    [ "$tag" = plain ] || return 0
    check "plugin: make install PREFIX, then the example builds with pkg-config" plugin_setup
    check "plugin: PREFIX holds bin/h5batch, include/h5batch/*.h and lib/pkgconfig/h5batch-plugin.pc" bash -c "
        [ -x '$W/prefix/bin/h5batch' ] && [ -f '$W/prefix/include/h5batch/kernel.h' ] &&
        [ -f '$W/prefix/include/h5batch/io.h' ] && [ -f '$W/prefix/include/h5batch/opts.h' ] &&
        [ -f '$W/prefix/include/h5batch/errors.h' ] &&
        PKG_CONFIG_PATH='$W/prefix/lib/pkgconfig' pkg-config --cflags h5batch-plugin | grep -q -- '-I$W/prefix/include' &&
        '$W/prefix/bin/h5batch' --version | grep -q 'plugin ABI $(plugin_abi)'"
    check "plugin: the example compiles without a warning" bash -c "! grep -q -i warning pl-build.log"
    check "plugin: every installed header compiles on its own" bash -c "
        for h in '$W'/prefix/include/h5batch/*.h; do
            echo \"#include <h5batch/\$(basename \$h)>\" | mpicc -std=c17 -Wall -Wextra -Werror -I'$W/prefix/include' \
                -x c -fsyntax-only - || exit 1
        done"
}

# Listed, documented, generated, validated and computed like a built-in kernel.
suite_plugin_kernel() {
    local bin=$1 tag=$2
    local p="pl-$tag"
    plugin_setup >"$W/log" 2>&1 || { not_ok "plugin ($tag): setup"; return; }
    local -x H5BATCH_PLUGIN_PATH="$W/nowhere:$W/pl/ok"
    check "plugin ($tag): h5batch kernels lists oee as a plugin" bash -c "'$bin' kernels | grep -q '^oee .*(plugin .*/pl/ok/oee.so)'"
    check "plugin ($tag): h5batch kernels oee lists its options, unit and generator" bash -c \
        "'$bin' kernels oee >$p-k.out && grep -q '^  oee_target' $p-k.out && grep -q '^  columns' $p-k.out &&
         grep -q 'records' $p-k.out && grep -q 'h5batch gen bottling' $p-k.out"
    check "plugin ($tag): --help lists the kernel and its generator" bash -c \
        "'$bin' --help >$p-h.out && grep -q '^  oee .*(plugin)' $p-h.out && grep -q '^  bottling ' $p-h.out"
    check "plugin ($tag): gen bottling --help prints its option table" bash -c \
        "'$bin' gen bottling --help | grep -q -- '--lines .*filling lines'"
    check "plugin ($tag): gen bottling, the same file at 1 and 3 ranks" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 1 1 '$bin' gen bottling -o $p-g1.h5 --lines 3 --days 9 --seed 5 -q &&
         mpi 3 2 '$bin' gen bottling -o $p-g3.h5 --lines 3 --days 9 --seed 5 -q && h5diff $p-g1.h5 $p-g3.h5"
    expect_fail "plugin ($tag): gen bottling --linez -> 64 with a suggestion" 64 "did you mean '--lines'" "$p-never.h5" \
        "$bin" gen bottling -o "$p-never.h5" --linez 3
    expect_fail "plugin ($tag): gen bottling --start 20240230 -> 64" 64 "--start 20240230 is not a date" "$p-never.h5" \
        "$bin" gen bottling -o "$p-never.h5" --start 20240230
    expect_fail "plugin ($tag): gen bottling over an existing file -> 73" 73 "use --force" "" \
        "$bin" gen bottling -o "$p-g1.h5" --lines 3 --days 9 --seed 5

    pl_job "$p-gen" pl-plant.h5 "$p-gen.h5"
    sed -i 's/^\[job\]$/[job]\nchunk_rows = 2k/' "$p-gen.ini"
    check "plugin ($tag): the generated plant at 2 ranks x 2 threads equals numpy" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 2 2 '$bin' run $p-gen.ini -q &&
         $PY '$ROOT/tests/plugin/oee_ref.py' pl-plant.h5 $p-gen.h5"

    # every rule on purpose: rounding, empty divisors, each kind of invalid record,
    # float columns under other names, ids far apart
    $PY - "$p-edge.h5" <<'PYEOF'
import sys
import h5py, numpy as np
nan = float("nan")
rows = [  # lot, stamp, plan, stop_s, filled, ok, cycle
    (7, 100, 900, 0, 1000, 990, 0.5), (7, 200, 900.0004, 30.0006, 1200, 1200, 0.5), (7, 300, 0, 0, 0, 0, 0.5),
    (8, 150, 600, 600, 0, 0, 0.05), (9, 50, 900, 10, 0, 0, 0.05), (9.5, 100, 900, 0, 5, 5, 0.05),
    (-3, 100, 900, 0, 5, 5, 0.05), (10, nan, 900, 0, 5, 5, 0.05), (10, 100, nan, 0, 5, 5, 0.05),
    (10, 100, 900, 901, 5, 5, 0.05), (10, 100, 900, -1, 5, 5, 0.05), (10, 100, 900, 0, -5, 0, 0.05),
    (10, 100, 900, 0, 5, 6, 0.05), (10, 100, 900, 0, 5.7, 5, 0.05), (10, 100, 900, 0, 5, 5, nan),
    (10, 100, 900, 0, 5, 5, 1e-7), (10, 100, 900, 0, 4e12, 0, 3000), (11, 100, 900, 100, 8000, 7900, 0.1),
    (12, 100, 900, 0, 20000, 20000, 0.1), (4000000000, 100, 900, 0.0005, 10, 9, 0.05), (7, 400, 900.5, 0.25, 3, 3, 0.5),
]
a = np.array(rows, dtype=float)
with h5py.File(sys.argv[1], "w") as f:
    for i, name in enumerate(["lot", "stamp", "plan", "stop_s", "filled", "ok", "cycle"]):
        f[f"line3/{name}"] = a[:, i] if name != "ok" else a[:, i].astype(np.float32)
    for i, name in enumerate(["batch", "time", "planned_s", "stop_s", "total", "good", "ideal_cycle_s"]):
        f[f"none/{name}"] = a[5:7, i]
PYEOF
    local cols="batch:lot, time:stamp, planned_s:plan, total:filled, good:ok, ideal_cycle_s:cycle"
    pl_job "$p-edge" "$p-edge.h5" "$p-edge-out.h5" "table = /line3" "columns = $cols" "oee_target = 0.6"
    # most of these records are invalid on purpose: max_invalid_fraction = 1 accepts them
    sed -i 's/^\[job\]$/[job]\nchunk_rows = 3\nmax_invalid_fraction = 1/' "$p-edge.ini"
    check "plugin ($tag): edge cases, mapped columns, 3 ranks, chunks of 3 rows equal numpy" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run $p-edge.ini -q &&
         $PY '$ROOT/tests/plugin/oee_ref.py' $p-edge.h5 $p-edge-out.h5 --table /line3 --columns '$cols' --target 0.6"

    pl_job "$p-none" "$p-edge.h5" "$p-none.h5" "table = /none"
    expect_fail "plugin ($tag): no valid record -> 65 with the reasons" 65 "none of its 2 records is valid" "$p-none.h5" \
        mpi 2 1 "$bin" run "$p-none.ini"
    pl_job "$p-col" "$p-edge.h5" "$p-col.h5" "table = /line3"
    expect_fail "plugin ($tag): a missing column -> 65" 65 "missing column 'batch'" "$p-col.h5" \
        mpi 2 1 "$bin" run "$p-col.ini"
    pl_job "$p-target" pl-plant.h5 "$p-t.h5" "oee_target = 1.5"
    expect_fail "plugin ($tag): oee_target = 1.5 refused at validation -> 78 with its line" 78 \
        "$p-target.ini:8: .*oee_target = 1.5 is out of range \[0, 1\]" "$p-t.h5" mpi 2 1 "$bin" run "$p-target.ini"
    pl_job "$p-map" pl-plant.h5 "$p-t.h5" "columns = speed:v"
    expect_fail "plugin ($tag): columns naming no column of the kernel -> 78 with its line" 78 \
        "$p-map.ini:8: .*'speed' is not a column of kernel oee" "$p-t.h5" mpi 2 1 "$bin" run "$p-map.ini"
    pl_job "$p-key" pl-plant.h5 "$p-t.h5" "oee_targt = 0.7"
    expect_fail "plugin ($tag): an unknown key -> 78 with a suggestion" 78 "did you mean 'oee_target'" "$p-t.h5" \
        mpi 2 1 "$bin" run "$p-key.ini"
    expect_fail "plugin ($tag): without H5BATCH_PLUGIN_PATH the kernel is unknown -> 78" 78 "unknown kernel 'oee'" \
        "$p-t.h5" env -u H5BATCH_PLUGIN_PATH "$bin" run "$p-gen.ini" --set oee.output="$p-t.h5"
}

# Bit-identical at 1-4 ranks and 1-2 threads, any chunking, and after a kill.
suite_plugin_ranks() {
    local bin=$1 tag=$2 n th
    [ "$tag" = plain ] || return 0
    plugin_setup >"$W/log" 2>&1 || { not_ok "plugin ranks: setup"; return; }
    local -x H5BATCH_PLUGIN_PATH="$W/pl/ok"
    pl_job pl-rk pl-plant.h5 pl-rk-1-1.h5
    sed -i 's/^\[job\]$/[job]\nchunk_rows = 1000/' pl-rk.ini
    check "plugin ranks: 1 rank, 1 thread" mpi 1 1 "$bin" run pl-rk.ini -q
    for n in 1 2 3 4; do
        for th in 1 2; do
            [ "$n$th" = 11 ] && continue
            check "plugin ranks: $n ranks x $th threads is bit-identical" bash -c \
                "$(declare -f mpi); LIMIT=$LIMIT; mpi $n $th '$bin' run pl-rk.ini -q --set oee.output=pl-rk-$n-$th.h5 \
                 --set job.run_dir=pl-rk-$n-$th.run && h5diff --exclude-path /provenance pl-rk-1-1.h5 pl-rk-$n-$th.h5"
        done
    done
    check "plugin ranks: chunk_rows 7k gives the bits of 1000" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 3 1 '$bin' run pl-rk.ini -q --set job.chunk_rows=7k \
         --set oee.output=pl-rk-7k.h5 --set job.run_dir=pl-rk-7k.run && h5diff --exclude-path /provenance pl-rk-1-1.h5 pl-rk-7k.h5"
    check "plugin ranks: the 1-rank output equals numpy" $PY "$ROOT/tests/plugin/oee_ref.py" pl-plant.h5 pl-rk-1-1.h5
    local every="--set job.checkpoint_interval=0.001s --set job.run_dir=pl-kill.run --set oee.output=pl-kill.h5"
    rm -rf pl-kill.run pl-kill.h5
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=1 H5BATCH_FAULT_KILL_AFTER_CHUNKS=3 \
        mpi 3 1 "$bin" run pl-rk.ini -q $every >"$W/log" 2>&1
    check "plugin ranks: rank 1 of 3 killed after 3 chunks left a checkpoint" bash -c \
        "grep -q ckpt- pl-kill.run/manifest && [ ! -e pl-kill.h5 ]"
    local seq
    seq=$(awk '!/^#/ { s = $2 } END { print s + 2 }' pl-kill.run/manifest)
    H5BATCH_FAULT_SLOW_CHUNK_MS=3 H5BATCH_FAULT_RANK=0 H5BATCH_FAULT_KILL_IN_CHECKPOINT=$seq \
        mpi 2 2 "$bin" run pl-rk.ini -q $every >pl-kill2.log 2>&1
    check "plugin ranks: rank 0 of 2 killed while writing checkpoint $seq: it never counts" \
        bash -c "grep -q 'kills itself' pl-kill2.log && ! grep -q ' $seq ckpt' pl-kill.run/manifest"
    check "plugin ranks: resumed at 4 ranks, bit-identical (checkpointed batch sums)" bash -c \
        "$(declare -f mpi); LIMIT=$LIMIT; mpi 4 1 '$bin' run pl-rk.ini $every >pl-kill.log 2>&1 &&
         grep -q 'resuming from checkpoint' pl-kill.log && h5diff --exclude-path /provenance pl-rk-1-1.h5 pl-kill.h5"
    check "plugin ranks: status.json names the unit of work" bash -c \
        "'$bin' status pl-kill.run --json | grep -q '\"unit\": \"records\"'"
}

# Plugins that must be refused, each with one clear line and exit 78.
suite_plugin_refused() {
    local bin=$1 tag=$2 n
    plugin_setup >"$W/log" 2>&1 || { not_ok "plugin refused ($tag): setup"; return; }
    local abi
    abi=$(plugin_abi)
    pl_job pl-refused pl-plant.h5 pl-refused.h5
    for n in 1 3; do
        expect_fail "plugin refused ($tag, $n ranks): built for ABI 999 -> 78 naming both versions" 78 \
            "pl/abi/oee.so: plugin built for h5batch plugin ABI version 999, but this h5batch has ABI version $abi" \
            pl-refused.h5 env H5BATCH_PLUGIN_PATH="$W/pl/abi" bash -c \
            "$(declare -f mpi); LIMIT=$LIMIT; mpi $n 1 '$bin' run pl-refused.ini"
    done
    expect_fail "plugin refused ($tag): ABI mismatch also for h5batch kernels" 78 "ABI version 999" "" \
        env H5BATCH_PLUGIN_PATH="$W/pl/abi" "$bin" kernels
    expect_fail "plugin refused ($tag): not a shared object -> 78" 78 "pl/broken/broken.so: cannot load this plugin" "" \
        env H5BATCH_PLUGIN_PATH="$W/pl/broken" "$bin" kernels
    expect_fail "plugin refused ($tag): no hb_plugin_init -> 78" 78 "defines no function hb_plugin_init" "" \
        env H5BATCH_PLUGIN_PATH="$W/pl/noinit" "$bin" kernels
    expect_fail "plugin refused ($tag): a kernel named like a built-in one -> 78" 78 \
        "pl/clash/clash.so: kernel 'traffic' is already registered: the built-in kernel traffic" "" \
        env H5BATCH_PLUGIN_PATH="$W/pl/clash" "$bin" kernels
    expect_fail "plugin refused ($tag): two plugins with the same kernel name -> 78" 78 \
        "another-oee.so: kernel 'oee' is already registered: kernel oee of plugin .*pl/ok/oee.so" "" \
        env H5BATCH_PLUGIN_PATH="$W/pl/ok:$W/pl/twice" "$bin" kernels
    check "plugin refused ($tag): the same folder twice loads each plugin once" bash -c \
        "H5BATCH_PLUGIN_PATH='$W/pl/ok:$W/pl/ok/' '$bin' kernels | grep -c '^oee' | grep -qx 1"

    # a plugin that cannot be loaded fails only the commands that need one of its kernels;
    # the others go on after one warning line naming it and why (dlerror), once at 2 ranks
    local -x H5BATCH_PLUGIN_PATH="$W/pl/broken:$W/pl/ok"
    local warn="^h5batch: warning: .*pl/broken/broken.so: cannot load this plugin: .*short\|invalid ELF"
    check "plugin refused ($tag): a broken plugin leaves kernels traffic and --version working, one warning each" \
        bash -c "'$bin' kernels traffic >pl-b1.out 2>pl-b1.err && grep -q '^kernel traffic' pl-b1.out &&
                 [ \$(grep -c '$warn' pl-b1.err) = 1 ] && [ \$(wc -l <pl-b1.err) = 1 ] &&
                 '$bin' --version 2>pl-b2.err | grep -q '^h5batch ' && grep -q '$warn' pl-b2.err"
    pl_job pl-beside pl-plant.h5 pl-beside.h5
    check "plugin refused ($tag): beside a broken plugin, the other plugin's kernel runs at 2 ranks, one warning" \
        bash -c "rm -rf pl-beside.run pl-beside.h5 && $(declare -f mpi); LIMIT=$LIMIT;
                 mpi 2 1 '$bin' run pl-beside.ini -q 2>pl-b3.err && [ \$(grep -c '$warn' pl-b3.err) = 1 ] &&
                 $PY '$ROOT/tests/plugin/oee_ref.py' pl-plant.h5 pl-beside.h5"
    check "plugin refused ($tag): beside a broken plugin, gen traffic at 2 ranks writes its file" bash -c \
        "rm -f pl-btr.h5 && $(declare -f mpi); LIMIT=$LIMIT; mpi 2 1 '$bin' gen traffic -o pl-btr.h5 --rows 2k -q &&
         h5ls pl-btr.h5/observations >/dev/null"
    H5BATCH_PLUGIN_PATH="$W/pl/broken"
    expect_fail "plugin refused ($tag): a job of the kernel it may hold -> 78 naming the plugin and why" 78 \
        "pl-refused.ini:5: unknown kernel 'oee' .*a plugin could not be loaded: .*pl/broken/broken.so: cannot load" \
        pl-refused.h5 mpi 2 1 "$bin" run pl-refused.ini
    expect_fail "plugin refused ($tag): its generator -> 78 naming the plugin" 78 \
        "unknown generator 'bottling' .*a plugin could not be loaded: .*broken.so" pl-bgen.h5 \
        "$bin" gen bottling -o pl-bgen.h5
    expect_fail "plugin refused ($tag): kernels oee -> 78 naming the plugin" 78 \
        "unknown kernel 'oee' .*a plugin could not be loaded: .*broken.so" "" "$bin" kernels oee
    expect_fail "plugin refused ($tag): a command it may define -> 78 naming the plugin" 78 \
        "unknown command 'oee-report' .*a plugin could not be loaded: .*broken.so" "" "$bin" oee-report
    expect_fail "plugin refused ($tag): export of its kernel's output -> 78 naming the plugin" 78 \
        "written by kernel 'oee', which this h5batch does not have, and a plugin could not be loaded" pl-bexp.csv \
        "$bin" export pl-beside.h5 -o pl-bexp.csv
}

# The suite (tests/run_tests.sh calls it once per pass with BIN TAG); the valgrind pass
# has nothing of its own here: the plain and ASan passes cover these cases.
suite_plugin() {
    [ "$2" = valgrind ] && return 0
    local s
    for s in suite_plugin_install suite_plugin_kernel suite_plugin_ranks suite_plugin_refused; do "$s" "$@"; done
}
