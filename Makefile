# h5batch build. `make` builds bin/h5batch; `make demo` and `make check` install what is
# missing first (make deps), then build, then run.

CC       = mpicc
PKGS     = hdf5-openmpi inih libxxhash libutf8proc
CFLAGS  ?= -O3 -g
CFLAGS  += -std=c17 -Wall -Wextra -fopenmp -ffp-contract=off -D_GNU_SOURCE
CPPFLAGS = $(shell pkg-config --cflags $(PKGS) gsl openblas 2>/dev/null)
# GSL takes OpenBLAS as its CBLAS instead of its own reference gslcblas.
LDLIBS   = $(shell pkg-config --libs $(PKGS) 2>/dev/null) -lhdf5_hl \
           $(filter-out -lgslcblas,$(shell pkg-config --libs gsl 2>/dev/null)) \
           $(shell pkg-config --libs openblas 2>/dev/null) -lm -lstemmer
SAN      = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined

# Every .c file of src/, io/ and kernels/ is part of the tool: a new kernel is a new file.
SRC  = $(sort $(wildcard src/*.c io/*.c kernels/*.c))
LIB  = $(filter-out src/main.c,$(SRC))
HDR  = $(wildcard src/*.h io/*.h kernels/*.h)
OBJ  = $(SRC:%.c=build/%.o)
AOBJ = $(SRC:%.c=build-asan/%.o)

NP      ?= 2
MPIRUN  ?= mpirun --oversubscribe --allow-run-as-root
DEMO    ?= demo

.PHONY: all deps demo check asan bench clean
all: bin/h5batch

bin/h5batch: $(OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -o $@ $^ $(LDLIBS)

build/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -c -o $@ $<

build-asan/%.o: %.c $(HDR)
	@mkdir -p $(dir $@)
	$(CC) $(CPPFLAGS) $(CFLAGS) -O1 $(SAN) -c -o $@ $<

# ASan + UBSan build of the tool and the unit tests.
asan: bin/h5batch-asan bin/unit_tests-asan
bin/h5batch-asan: $(AOBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) -O1 $(SAN) -o $@ $^ $(LDLIBS)

bin/unit_tests: tests/unit.c $(filter-out build/src/main.o,$(OBJ)) $(HDR)
	$(CC) $(CPPFLAGS) $(CFLAGS) -o $@ tests/unit.c $(filter-out build/src/main.o,$(OBJ)) $(LDLIBS)

bin/unit_tests-asan: tests/unit.c $(filter-out build-asan/src/main.o,$(AOBJ)) $(HDR)
	$(CC) $(CPPFLAGS) $(CFLAGS) -O1 $(SAN) -o $@ tests/unit.c $(filter-out build-asan/src/main.o,$(AOBJ)) $(LDLIBS)

deps:
	@bash scripts/deps.sh

# The whole test suite: unit tests, MPI integration tests at 1-4 ranks against the numpy
# reference, bad input; then the same suite under ASan + UBSan.
check: deps
	@$(MAKE) --no-print-directory all bin/unit_tests asan
	@bash tests/run_tests.sh

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh "$(DEMO)" "$(NP)"

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

clean:
	rm -rf build build-asan bin
