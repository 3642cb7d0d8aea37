# h5batch build. `make` builds bin/h5batch; `make demo` and `make check` check what is
# installed first (make deps, which installs what is missing only when run as root), then
# build, then run. Users' CFLAGS, CPPFLAGS and LDFLAGS are kept: the project adds to them.

# `make` alone builds the tool: the generated list of kernels below is not the default goal.
.DEFAULT_GOAL := all

CC       = mpicc
# Libraries found through pkg-config; those without a .pc file are named in LIBS_PLAIN.
PKGS       = hdf5-openmpi inih libxxhash libutf8proc gsl openblas libdeflate libisal
LIBS_PLAIN = -lhdf5_hl -lstemmer -lz -lm -ldl
PKG_CFLAGS := $(shell pkg-config --cflags $(PKGS))
PKG_LIBS   := $(shell pkg-config --libs $(PKGS))
ifneq ($(.SHELLSTATUS),0)
$(warning pkg-config could not find every one of: $(PKGS); run 'make deps' (scripts/deps.sh))
endif

CFLAGS   ?= -O3 -g
CFLAGS   += -std=c17 -Wall -Wextra -fopenmp -ffp-contract=off
CPPFLAGS += -D_GNU_SOURCE -Iinclude -Isrc -I. -Ibuild/gen $(PKG_CFLAGS)
# GSL takes OpenBLAS as its CBLAS instead of its own reference gslcblas.
# HDF5, GSL and OpenBLAS come from their static archives when all are installed (the
# Debian -dev packages ship them): the dynamic loader then maps 21 shared libraries
# instead of 58 (HDF5's libcurl alone brings in TLS, Kerberos and LDAP) and resolves 75%
# fewer symbols, 10-12 ms of CPU less per rank at every start (docs/architecture.md, "A
# small job's time"). Their own dependencies are linked only where referenced
# (--as-needed). STATIC_DEPS=0 links the three as shared libraries. The sanitizer builds
# always do (LDLIBS_SHARED): their start-up does not matter, and LeakSanitizer's
# suppressions (tests/lsan.supp) name the libraries.
LDLIBS_SHARED := $(LDLIBS) $(filter-out -lgslcblas,$(PKG_LIBS)) $(LIBS_PLAIN)
LIBDIRS     := $(patsubst -L%,%,$(filter -L%,$(PKG_LIBS))) $(shell pkg-config --variable=libdir gsl)
STATIC_A    := $(foreach l,hdf5 hdf5_hl gsl openblas,$(firstword $(wildcard $(addsuffix /lib$l.a,$(LIBDIRS)))))
STATIC_DEPS ?= $(if $(word 4,$(STATIC_A)),1,0)
ifeq ($(STATIC_DEPS),1)
LDLIBS   += -Wl,-Bstatic -lhdf5_hl -lhdf5 -lgsl -lopenblas -Wl,-Bdynamic \
            $(filter-out -lhdf5 -lgsl -lgslcblas -lopenblas,$(PKG_LIBS)) $(filter-out -lhdf5_hl,$(LIBS_PLAIN)) \
            -Wl,--as-needed -lsz -lcurl -lcrypto -lgfortran -lpthread -Wl,--no-as-needed
else
LDLIBS   += $(filter-out -lgslcblas,$(PKG_LIBS)) $(LIBS_PLAIN)
endif
SAN       = -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
# The executable exports its symbols: plugin kernels (DESIGN.md 8) call the h5batch API in it.
EXPORT    = -rdynamic

.DEFAULT_GOAL := all

# Every .c file of src/, io/ and kernels/ is part of the tool: a new kernel is a new folder.
SRC  = $(sort $(wildcard src/*.c src/core/*.c src/import/*.c io/*.c kernels/*.c kernels/*/*.c))
OBJ  = $(SRC:%.c=build/%.o)
AOBJ = $(SRC:%.c=build-asan/%.o)
LIBOBJ  = $(filter-out build/src/main.o,$(OBJ))
ALIBOBJ = $(filter-out build-asan/src/main.o,$(AOBJ))
# The unit tests: one file per area in tests/unit/, linked with the tool's objects.
UNIT_SRC  = $(sort $(wildcard tests/unit/*.c))
UNIT_OBJ  = $(UNIT_SRC:%.c=build/%.o)
UNIT_AOBJ = $(UNIT_SRC:%.c=build-asan/%.o)

# The built-in kernels: every folder kernels/NAME/ with a NAME.c, which defines the
# table hb_kernel_NAME. kernels/registry.c includes the generated list, so adding a
# kernel in the tree touches nothing outside its folder. The list is rewritten only
# when it changes, so that the registry is not rebuilt every time.
BUILTINS := $(foreach d,$(sort $(notdir $(patsubst %/,%,$(dir $(wildcard kernels/*/*.c))))),$(if $(wildcard kernels/$d/$d.c),$d))
build/gen/builtins.h: FORCE
	@mkdir -p $(dir $@)
	@printf '%s\n' $(foreach k,$(BUILTINS),'HB_BUILTIN($k)') >$@.new
	@cmp -s $@.new $@ && rm -f $@.new || mv $@.new $@
build/kernels/registry.o build-asan/kernels/registry.o: build/gen/builtins.h
FORCE:

NP      ?= 2
MPIRUN  ?= mpirun --oversubscribe --allow-run-as-root
DEMO    ?= demo

.PHONY: all deps demo check asan bench install clean fuzz fuzz-build FORCE
# the first rule above is the generated builtins.h: a plain `make` builds the tool
.DEFAULT_GOAL := all
all: bin/h5batch

bin/h5batch: $(OBJ)
	@mkdir -p bin
	$(CC) $(CFLAGS) $(LDFLAGS) $(EXPORT) -o $@ $^ $(LDLIBS)

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
	$(CC) $(CFLAGS) -O1 $(SAN) $(LDFLAGS) $(EXPORT) -o $@ $^ $(LDLIBS_SHARED)

bin/unit_tests: $(UNIT_OBJ) $(LIBOBJ)
	$(CC) $(CFLAGS) $(LDFLAGS) -o $@ $^ $(LDLIBS)

bin/unit_tests-asan: $(UNIT_AOBJ) $(ALIBOBJ)
	$(CC) $(CFLAGS) -O1 $(SAN) $(LDFLAGS) -o $@ $^ $(LDLIBS_SHARED)

deps:
	@bash scripts/deps.sh

# make install PREFIX=DIR: the binary, the plugin API headers and the pkg-config file
# that plugins build with (`mpicc -shared -fPIC $(pkg-config --cflags h5batch-plugin)`).
PREFIX     ?= /usr/local
HB_VERSION := $(shell sed -n 's/^\#define HB_VERSION "\(.*\)"/\1/p' src/core/hb.h)
HB_ABI     := $(shell sed -n 's/^\#define HB_ABI_VERSION \([0-9]*\).*/\1/p' include/h5batch/kernel.h)
install: bin/h5batch
	install -d $(DESTDIR)$(PREFIX)/bin $(DESTDIR)$(PREFIX)/include/h5batch $(DESTDIR)$(PREFIX)/lib/pkgconfig
	install -m 755 bin/h5batch $(DESTDIR)$(PREFIX)/bin/h5batch
	install -m 644 include/h5batch/*.h $(DESTDIR)$(PREFIX)/include/h5batch/
	printf '%s\n' 'prefix=$(PREFIX)' 'includedir=$${prefix}/include' 'abi_version=$(HB_ABI)' '' \
	    'Name: h5batch-plugin' 'Description: headers for h5batch plugin kernels (build with mpicc -shared -fPIC)' \
	    'Version: $(HB_VERSION)' 'Cflags: -I$${includedir}' \
	    >$(DESTDIR)$(PREFIX)/lib/pkgconfig/h5batch-plugin.pc

# The test suite (tests/run_tests.sh): unit tests, each kernel's suite at 1-4 ranks
# against its Python reference, bad input, faults, Slurm; again under ASan + UBSan +
# LeakSanitizer, and under valgrind. SUITES="unit traffic" runs those suites only; pass
# names (plain asan valgrind) choose passes: SUITES="risk plain".
SUITES ?=
check: deps
	@$(MAKE) --no-print-directory all bin/unit_tests asan $(if $(FUZZ_OK),fuzz-build)
	@bash tests/run_tests.sh $(SUITES)

demo: deps
	@$(MAKE) --no-print-directory all
	@bash scripts/demo.sh "$(DEMO)" "$(NP)"

bench: deps
	@$(MAKE) --no-print-directory all
	@bash bench/run.sh

# libFuzzer harnesses (tests/fuzz/): the job-file and --set reader, the query parser and
# the checkpoint reader, built with clang, ASan and UBSan against the few tool files each
# needs (the job harness sees a one-kernel registry, tests/fuzz/registry_stub.c). `make
# fuzz` runs each for FUZZ_SECONDS from its committed seed corpus (tests/fuzz/corpus/NAME;
# what it finds goes to build-fuzz/corpus/NAME and crashes to build-fuzz/). make check
# runs them for a few seconds (tests/fuzz/suite.sh) when clang is there.
FUZZ_CC      ?= clang
# make check builds the harnesses only where clang links a libFuzzer program with OpenMP
# (clang without libclang-rt-dev or libomp-dev cannot; tests/fuzz then skips, saying so)
FUZZ_OK       = $(shell printf 'int LLVMFuzzerTestOneInput(const char *d, unsigned long n) { return 0; }' | \
                  $(FUZZ_CC) -x c -fsanitize=fuzzer,address,undefined -fopenmp -o /dev/null - >/dev/null 2>&1 && echo 1)
FUZZ_SECONDS ?= 60
FUZZ_CFLAGS   = -std=c17 -g -O1 -fopenmp -ffp-contract=off -Wall -Wextra -Wno-unused-function -Wno-pass-failed \
                -fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=undefined
FUZZ_BASE     = src/core/err.c src/core/stall.c src/core/mem.c src/core/log.c src/core/opts.c src/core/args.c src/core/fault.c \
                src/core/calendar.c src/core/text.c io/in.c io/out.c io/table.c io/filters.c src/core/commit.c
FUZZ_JOB      = $(FUZZ_BASE) src/job.c tests/fuzz/registry_stub.c tests/fuzz/fuzz_job.c
FUZZ_QUERY    = $(FUZZ_BASE) kernels/index/analyzer.c kernels/index/tok.c tests/fuzz/fuzz_query.c
FUZZ_CKPT     = $(FUZZ_BASE) src/ckpt.c tests/fuzz/fuzz_ckpt.c
FUZZERS       = bin/fuzz/fuzz_job bin/fuzz/fuzz_query bin/fuzz/fuzz_ckpt
build-fuzz/%.o: %.c
	@mkdir -p $(dir $@)
	OMPI_CC=$(FUZZ_CC) mpicc $(CPPFLAGS) $(FUZZ_CFLAGS) -fsanitize=fuzzer-no-link -MMD -MP -c -o $@ $<
bin/fuzz/fuzz_job: $(FUZZ_JOB:%.c=build-fuzz/%.o)
bin/fuzz/fuzz_query: $(FUZZ_QUERY:%.c=build-fuzz/%.o)
bin/fuzz/fuzz_ckpt: $(FUZZ_CKPT:%.c=build-fuzz/%.o)
$(FUZZERS):
	@mkdir -p bin/fuzz
	OMPI_CC=$(FUZZ_CC) mpicc $(FUZZ_CFLAGS) -fsanitize=fuzzer $(LDFLAGS) -o $@ $^ $(LDLIBS_SHARED)
fuzz-build: $(FUZZERS)
fuzz: fuzz-build
	@bash tests/fuzz/run.sh $(FUZZ_SECONDS)

clean:
	rm -rf build build-asan build-fuzz bin

-include $(OBJ:.o=.d) $(AOBJ:.o=.d) $(UNIT_OBJ:.o=.d) $(UNIT_AOBJ:.o=.d) $(wildcard build-fuzz/*/*.d build-fuzz/*/*/*.d)
