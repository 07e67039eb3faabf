# memsnap: the developer entry points. Meson + Ninja do the building; this file installs what
# is missing, and names the jobs: make deps | make | make demo | make check | make bench.

BUILD      ?= build
SAN_BUILD  ?= build-san
MESON_OPTS ?=
MEMSNAP    := $(BUILD)/src/cli/memsnap

# Debian packages the build, the tests and the benchmarks need.
DEB_PACKAGES := gcc g++ make meson ninja-build pkg-config libjansson-dev libcmocka-dev \
                libzstd-dev libunwind-dev libdw-dev python3 python3-dev python3-psutil clang-format sqlite3 heaptrack \
                tcl-dev tcllib chromium

SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

.PHONY: all deps build demo check test test-san format format-check bench clean

all: build

# Installs only what is missing, so a second run does nothing.
deps:
	@missing=""; for p in $(DEB_PACKAGES); do \
	    dpkg-query -W -f='$${Status}' $$p 2>/dev/null | grep -q "ok installed" || missing="$$missing $$p"; \
	done; \
	if [ -n "$$missing" ]; then \
	    echo "make deps: installing$$missing"; \
	    $(SUDO) apt-get update -q && \
	    DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -q $$missing; \
	else echo "make deps: all packages present"; fi

$(BUILD)/build.ninja:
	meson setup $(BUILD) $(MESON_OPTS)

build: $(BUILD)/build.ninja
	ninja -C $(BUILD)

$(SAN_BUILD)/build.ninja:
	meson setup $(SAN_BUILD) -Dsanitize=address,undefined -Dbuildtype=debug

# Runs the main job on the bundled example: a program that allocates 64 MiB in steps.
demo: deps build
	@sh examples/demo.sh $(MEMSNAP) $(BUILD)/examples/alloc_steps $(BUILD)

test: build
	meson test -C $(BUILD) --print-errorlogs

# The whole suite again under AddressSanitizer and UndefinedBehaviorSanitizer.
test-san: $(SAN_BUILD)/build.ninja
	ninja -C $(SAN_BUILD)
	meson test -C $(SAN_BUILD) --print-errorlogs

format:
	clang-format -i $$(git ls-files '*.c' '*.h')

format-check:
	@clang-format --dry-run --Werror $$(git ls-files '*.c' '*.h') && echo "format-check: clean"

# Closes with "N passed, M failed, K skipped" over both builds' test logs.
check: deps
	$(MAKE) build
	$(MAKE) format-check
	$(MAKE) test
	$(MAKE) test-san
	@python3 tests/summary.py $(BUILD) $(SAN_BUILD)

bench: deps build
	sh bench/run.sh $(MEMSNAP)
	/usr/bin/python3 bench/record_bench.py $(MEMSNAP) $(BUILD)
	/usr/bin/python3 bench/engine_bench.py $(MEMSNAP) $(BUILD)
	/usr/bin/python3 bench/monitor_bench.py $(MEMSNAP)
	/usr/bin/python3 bench/analyze_bench.py $(MEMSNAP)
	/usr/bin/python3 bench/python_bench.py $(BUILD)

clean:
	rm -rf $(BUILD) $(SAN_BUILD)
