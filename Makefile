# h5batch build. `make` builds bin/h5batch; `make demo` and `make check` check what is
# installed first (make deps, which installs what is missing only when run as root), then
# build, then run. Users' CFLAGS, CPPFLAGS and LDFLAGS are kept: the project adds to them.

CC       = mpicc
# Libraries found through pkg-config; those without a .pc file are named in LIBS_PLAIN.
PKGS       = hdf5-openmpi inih libxxhash libutf8proc gsl openblas
LIBS_PLAIN = -lhdf5_hl -lstemmer -lm -ldl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
ifneq ($(.SHELLSTATUS),0)
$(warning pkg-config could not find every one of: $(PKGS); run 'make deps' (scripts/deps.sh))
endif

CFLAGS   ?= -O3 -g
CFLAGS   += -std=c17 -Wall -Wextra -fopenmp -ffp-contract=off
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc -I. $(PKG_CFLAGS)
# GSL takes OpenBLAS as its CBLAS instead of its own reference gslcblas.
LDLIBS   += $(filter-out -lgslcblas,$(PKG_LIBS)) $(LIBS_PLAIN)
SAN       = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Every .c file of src/, io/ and kernels/ is part of the tool: a new kernel is a new folder.
SRC  = $(sort $(wildcard src/*.c src/core/*.c io/*.c kernels/*.c kernels/*/*.c))
OBJ  = $(SRC:%.c=build/%.o)
AOBJ = $(SRC:%.c=build-asan/%.o)
LIBOBJ  = $(filter-out build/src/main.o,$(OBJ))
ALIBOBJ = $(filter-out build-asan/src/main.o,$(AOBJ))
# The unit tests: one file per area in tests/unit/, linked with the tool's objects.
UNIT_SRC  = $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ  = $(UNIT_SRC:%.c=build/%.o)
UNIT_AOBJ = $(UNIT_SRC:%.c=build-asan/%.o)

NP      ?= 2
MPIRUN  ?= mpirun --oversubscribe --allow-run-as-root
DEMO    ?= demo

.PHONY: all deps demo check asan bench clean
all: bin/h5batch

bin/h5batch: $(OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -MMD -MP -c -o $@ $<

build-asan/%.o: %.c
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -O1 $(SAN) -MMD -MP -c -o $@ $<

# ASan + UBSan build of the tool and the unit tests.
asan: bin/h5batch-asan bin/unit_tests-asan
bin/h5batch-asan: $(AOBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -O1 $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/unit_tests: $(UNIT_OBJ) $(LIBOBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/unit_tests-asan: $(UNIT_AOBJ) $(ALIBOBJ)
	$(CC) $(CFLAGS) -O1 $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS)

deps:
	@bash scripts/deps.sh

# The test suite (tests/run_tests.sh): unit tests, each kernel's suite at 1-4 ranks
# against its Python reference, bad input, faults, Slurm; again under ASan + UBSan +
# LeakSanitizer, and under valgrind. SUITES="unit traffic" runs those suites only; pass
# names (plain asan valgrind) choose passes: SUITES="risk plain".
SUITES ?=
check: deps
	@$(MAKE) --no-print-directory all bin/unit_tests asan
	@bash tests/run_tests.sh $(SUITES)

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh "$(DEMO)" "$(NP)"

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

clean:
	rm -rf build build-asan bin

-include $(OBJ:.o=.d) $(AOBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(UNIT_AOBJ:.o=.d)
