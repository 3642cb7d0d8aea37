# The libFuzzer harnesses (tests/fuzz/: the job file and --set, the query parser, the
# checkpoint reader), each run for a few seconds from its committed seed corpus; make
# fuzz runs them longer (FUZZ_SECONDS). Plain pass only: the harnesses carry ASan and
# UBSan themselves. Sourced by tests/run_tests.sh; skipped, saying why, when clang or
# the harnesses are missing (make check builds them when clang is there).
suite_fuzz() {
    local bin=$1 tag=$2 n secs=${FUZZ_CHECK_SECONDS:-2}
    [ "$tag" = plain ] || return 0
    if ! command -v "${FUZZ_CC:-clang}" >/dev/null; then
        skip "fuzz: the harnesses" "clang (libFuzzer) is not installed: scripts/deps.sh installs it"
        return
    fi
    for n in job query ckpt; do
        if [ ! -x "$ROOT/bin/fuzz/fuzz_$n" ]; then
            skip "fuzz: fuzz_$n" "not built: make fuzz-build"
            continue
        fi
        check "fuzz: fuzz_$n runs ${secs}s from its seed corpus without a crash, leak or UB" \
            env FUZZ_OUT="$W/fuzz" bash "$ROOT/tests/fuzz/run.sh" "$secs" "$n"
        sed -n 's/^/    # /p' "$W/log"
    done
}
