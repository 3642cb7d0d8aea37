# The C unit tests (tests/unit/*.c, built by make as bin/unit_tests and, with ASan and
# UBSan, as bin/unit_tests-asan); sourced by tests/run_tests.sh. The binary prints its
# failures and a tally, and exits non-zero when a check failed.
suite_unit() {
    local tag=$2
    case $tag in
    plain) check "unit tests (plain)" "$ROOT/bin/unit_tests" ;;
    asan) check "unit tests (asan)" "$ROOT/bin/unit_tests-asan" ;;
    esac
}
