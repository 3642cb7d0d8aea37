# The C unit tests (tests/unit/*.c, built by make as bin/unit_tests and, with ASan, UBSan
# and LeakSanitizer, as bin/unit_tests-asan), and the checkers' own tests: a leak and an
# uninitialised read made on purpose must be reported. Sourced by tests/run_tests.sh; the
# binary prints its failures and a tally, and exits non-zero when a check failed. It
# starts MPI (as a singleton), so it runs under a timeout like every MPI command.
suite_unit() {
    local tag=$2 t="timeout -k 5 $LIMIT"
    case $tag in
    plain) check "unit tests (plain)" $t "$ROOT/bin/unit_tests" ;;
    asan)
        check "unit tests (asan)" $t "$ROOT/bin/unit_tests-asan"
        # LeakSanitizer works here (it does not under ptrace) and the suppressions of
        # tests/lsan.supp leave a leak of h5batch's own code reported, with MPI started
        check "LeakSanitizer reports a block of hb_malloc lost on purpose, and only that" bash -c \
            "$t '$ROOT/bin/unit_tests-asan' --leak-on-purpose >leak.out 2>&1; rc=\$?; [ \$rc != 0 ] &&
             grep -q 'LeakSanitizer: detected memory leaks' leak.out && grep -q 'in hb_malloc' leak.out &&
             [ \"\$(grep -c '^Direct leak\\|^Indirect leak' leak.out)\" = 1 ] && grep -q 'Direct leak of 4242 byte' leak.out"
        ;;
    valgrind)
        check "unit tests (valgrind)" $t "$VALGRIND" "$ROOT/bin/unit_tests"
        check "valgrind reports a branch on uninitialised memory made on purpose (exit 9)" bash -c \
            "$t '$VALGRIND' '$ROOT/bin/unit_tests' --uninit-on-purpose; [ \$? = 9 ]"
        ;;
    esac
}
