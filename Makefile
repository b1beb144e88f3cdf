# SPDX-License-Identifier: MIT
# The two commands of the README: `make run` (the tour) and `make test`.
# Everything else is a convenience over CMake: sanitizer builds, benchmarks.
BUILD ?= build
JOBS ?= $(shell nproc 2>/dev/null || echo 2)
CMAKE_FLAGS ?=
ARGS ?=
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all run test asan tsan helgrind posix stress soak fuzz bench docs lint format format-check \
  spdx-check deps clean

all: $(BUILD)/.configured
	cmake --build $(BUILD) -j$(JOBS)

# A fresh Debian machine may lack the compiler or CMake: install them.
deps:
	@command -v cmake >/dev/null 2>&1 && command -v cc >/dev/null 2>&1 && command -v make >/dev/null 2>&1 || \
	  { echo "installing build tools (cmake, gcc) with apt-get"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq cmake gcc make pkg-config; }

$(BUILD)/.configured: | deps
	cmake -S . -B $(BUILD) $(CMAKE_FLAGS)
	@touch $@

# The build's own output goes to a log (shown if it fails): the screen is
# the tour's.
run: $(BUILD)/.configured
	@echo "building the tour (log: $(BUILD)/run-build.log)"
	@MAKEFLAGS=--no-print-directory cmake --build $(BUILD) -j$(JOBS) --target tour \
	  >$(BUILD)/run-build.log 2>&1 || { cat $(BUILD)/run-build.log; exit 1; }
	@$(BUILD)/examples/tour $(ARGS)

test: $(BUILD)/.configured
	cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -j$(JOBS)

# ASan+UBSan and TSan runs of the whole suite, stress tests scaled down.
asan: | deps
	cmake -S . -B build-asan -DCTH_SANITIZE=address -DCTH_STRESS_ITERS=$(or $(STRESS),0.2) -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-asan -j$(JOBS)
	cd build-asan && ctest --output-on-failure -j$(JOBS)

tsan: | deps
	cmake -S . -B build-tsan -DCTH_SANITIZE=thread -DCTH_STRESS_ITERS=$(or $(STRESS),0.2) -DCMAKE_BUILD_TYPE=Debug
	cmake --build build-tsan -j$(JOBS)
	cd build-tsan && TSAN_OPTIONS="halt_on_error=1 second_deadlock_stack=1 die_after_fork=0" ctest --output-on-failure -j$(JOBS)

# The whole suite under valgrind's helgrind, the stress tests scaled well
# down (valgrind runs one thread at a time). CTH_VALGRIND builds make every
# C11 atomic tell helgrind what it orders (src/valgrind_atomics.h), which
# covers the futex code, and make futex wakes out of valgrind's sight (it
# takes a wake for a read of the word, and one that comes after its waiter
# has left for a racy read of that thread's stack); tests/helgrind.supp
# justifies each of its entries.
HELGRIND = valgrind;--tool=helgrind;--error-exitcode=99;--quiet;--suppressions=$(CURDIR)/tests/helgrind.supp
helgrind: | deps
	cmake -S . -B build-helgrind -DCTH_VALGRIND=ON -DCTH_STRESS_ITERS=$(or $(STRESS),0.02) -DCMAKE_BUILD_TYPE=Debug \
	  "-DCTH_TEST_WRAPPER=$(HELGRIND)" -DCTH_TEST_TIMEOUT=600
	cmake --build build-helgrind -j$(JOBS)
	cd build-helgrind && ctest --output-on-failure -j$(JOBS)

# The suite over the POSIX futex emulation (mutex+cond buckets) that systems
# without a Linux futex use.
posix: | deps
	cmake -S . -B build-posix -DCTH_POSIX_FUTEX=ON -DCTH_STRESS_ITERS=$(or $(STRESS),0.2)
	cmake --build build-posix -j$(JOBS)
	cd build-posix && ctest --output-on-failure -j$(JOBS)

stress: $(BUILD)/.configured
	cmake --build $(BUILD) -j$(JOBS)
	cd $(BUILD) && ctest --output-on-failure -L stress

# The stress tests round after round for SOAK_SECONDS (default 10 minutes):
# operations done, and non-zero exit at the first violation.
SOAK_SECONDS ?= 600
soak: $(BUILD)/.configured
	cmake --build $(BUILD) -j$(JOBS)
	tests/soak.sh $(BUILD) $(SOAK_SECONDS)

# The libFuzzer target over the model's op interpreter (needs clang and
# libclang-rt-dev), library instrumented, ASan+UBSan; runs FUZZ_SECONDS from
# the seed corpus (new inputs go to build-fuzz/corpus).
FUZZ_SECONDS ?= 60
fuzz: | deps
	cmake -S . -B build-fuzz -DCMAKE_C_COMPILER=clang -DCTH_FUZZ=ON -DCTH_SANITIZE=address \
	  -DCMAKE_C_FLAGS=-fsanitize=fuzzer-no-link -DCMAKE_BUILD_TYPE=RelWithDebInfo \
	  -DCTH_BUILD_TESTS=OFF -DCTH_BUILD_EXAMPLES=OFF
	cmake --build build-fuzz -j$(JOBS) --target fuzz_ops
	mkdir -p build-fuzz/corpus
	build-fuzz/tests/fuzz/fuzz_ops -max_total_time=$(FUZZ_SECONDS) -max_len=4096 -timeout=60 \
	  -print_final_stats=1 -artifact_prefix=build-fuzz/ build-fuzz/corpus tests/fuzz/corpus

# The benchmarks (docs/benchmarking.md), then the summary and the plots:
# gnuplot is installed when missing, so that the plots always exist.
bench: | deps
	@command -v gnuplot >/dev/null 2>&1 || \
	  { echo "installing gnuplot (for the plots) with apt-get"; \
	    $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq gnuplot-nox; }
	cmake -S . -B $(BUILD) -DCTH_BUILD_BENCH=ON -DCMAKE_BUILD_TYPE=Release $(CMAKE_FLAGS)
	cmake --build $(BUILD) -j$(JOBS)
	$(BUILD)/bench/run-all

# The API reference from the header comments: HTML by doxygen (any warning,
# such as an undocumented public symbol, fails it) and the man pages by
# tools/man.sh, checked: one per public function and type, each complete.
docs: | deps
	@command -v doxygen >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq doxygen; }
	mkdir -p $(BUILD)/docs
	CTH_DOCS_OUT=$(BUILD)/docs doxygen docs/Doxyfile || { cat $(BUILD)/docs/warnings.log; exit 1; }
	tools/man.sh $(BUILD)/docs/man/man3
	tools/man.sh --check $(BUILD)/docs/man/man3
	@echo "API reference: $(BUILD)/docs/html/index.html, man pages: $(BUILD)/docs/man/man3"

# Static analysis: clang-tidy (.clang-tidy) and cppcheck over src/, from
# CMake's compile_commands.json (build-lint); any finding fails.
lint: | deps
	@command -v clang-tidy >/dev/null 2>&1 && command -v cppcheck >/dev/null 2>&1 || \
	  { $(SUDO) apt-get update -qq && $(SUDO) apt-get install -y -qq clang-tidy cppcheck; }
	JOBS=$(JOBS) tools/lint.sh

# The C style (.clang-format): format rewrites the files, format-check fails
# on a difference. spdx-check: every source file carries its license tag.
format:
	tools/format.sh
format-check:
	tools/format.sh --check
spdx-check:
	tools/spdx.sh --check

clean:
	rm -rf $(BUILD) build-asan build-tsan build-helgrind build-fuzz build-lint build-lint-posix
