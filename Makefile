# SPDX-License-Identifier: GPL-2.0
#
# dma-dirty: guest DMA dirty-page tracking for live migration.
#
#   make demo        live-migrate a guest while a simulated pass-through
#                    device does DMA, with dma_mark_dirty=off and touch
#   make bench       what the series costs the DMA API (docs/bench.md)
#   make soak        SOAK_LEGS (100) nested KVM migrations per backend
#                    of SOAK_BACKENDS (touch kvm), each leg verified
#   make test        build what is missing, boot under QEMU, run every test
#   make kernel      assemble the patched tree and build the test kernel
#   make tree        assemble the patched tree only (build/linux, a git repo)
#   make series      export the series as mail-ready patches (build/series)
#   make checkpatch  checkpatch.pl --strict on every patch of the series
#   make check       checkpatch and the other quality gates (check.sh)
#   make deps        install the host packages that are missing (apt-get)
#   make clean       remove build outputs, keep the assembled tree
#   make distclean   remove build/ entirely
#
# Variables:
#   KERNEL_SRC=DIR   use this 6.12 tree as base instead of Debian's
#                    linux-source-6.12
#   ACCEL=kvm        boot with KVM instead of TCG (needs a /dev/kvm that
#                    boots ordinary kernels)
#   TESTS=GLOB       run only the boot configurations matching GLOB
#   JOBS=N           parallel build jobs (default: number of CPUs)
#   SERIES_VERSION=N version of the exported series (default 4)
#   DEBUG=1          a kernel with KASAN, lockdep, DEBUG_ATOMIC_SLEEP and
#                    DMA_API_DEBUG, built and logged in *-debug folders

TOP        := $(abspath $(dir $(lastword $(MAKEFILE_LIST))))
BUILD      := $(TOP)/build
TREE       := $(BUILD)/linux
TOOLS      := $(TOP)/tools/testing/dma_dirty
FRAGMENTS  := $(TOOLS)/configs/test.config
# DEBUG=1: KASAN, lockdep, DEBUG_ATOMIC_SLEEP, DMA_API_DEBUG, in *-debug dirs
ifeq ($(DEBUG),1)
VARIANT    := debug
FRAGMENTS  += $(TOOLS)/configs/debug.config
endif
SUFFIX     := $(if $(VARIANT),-$(VARIANT))
KOBJ       := $(BUILD)/obj$(SUFFIX)
MODS       := $(BUILD)/modules$(SUFFIX)
KSFT       := $(BUILD)/kselftest$(SUFFIX)
SIM        := $(BUILD)/sim$(SUFFIX)
JOBS       ?= $(shell nproc)
ACCEL      ?= tcg
TESTS      ?= *
KERNEL_SRC ?=

# Paths inside the build are rewritten relative to it, so a clone in another
# folder (CI's) still hits the compiler cache.
export CCACHE_BASEDIR := $(BUILD)

KMAKE := $(MAKE) -C $(TREE) O=$(KOBJ) CC="ccache gcc" HOSTCC="ccache gcc" \
	 KBUILD_BUILD_TIMESTAMP=2024-11-17 KBUILD_BUILD_USER=dma-dirty \
	 KBUILD_BUILD_HOST=build -j$(JOBS)

# Everything the test command needs to rebuild is decided by kbuild, git
# and the scripts below, so these targets always run and stay incremental.
.PHONY: all deps tree config kernel kselftests sim demo soak tooltest test \
	series checkpatch check clean distclean bench

all: kernel

deps:
	@$(TOOLS)/deps.sh

tree: deps
	@$(TOOLS)/assemble.sh $(TOP) $(TREE) $(KERNEL_SRC)

config: tree
	@$(TOOLS)/configure.sh $(TREE) $(KOBJ) $(FRAGMENTS)

kernel: config
	@echo "kernel: building $$($(MAKE) -s -C $(TREE) O=$(KOBJ) kernelrelease) in $(KOBJ)"
	@+$(KMAKE) bzImage modules
	@rm -rf $(MODS)
	@+$(KMAKE) -s INSTALL_MOD_PATH=$(MODS) INSTALL_MOD_STRIP=1 modules_install
	@+$(KMAKE) -s headers

KVM_SELFTESTS := dma_dirty_test kvm_pv_test

kselftests: kernel
	@+$(MAKE) -s -C $(TREE)/tools/testing/selftests TARGETS="dma_dirty" \
		O=$(KSFT) KHDR_INCLUDES="-isystem $(KOBJ)/usr/include" \
		USERLDFLAGS=-static install INSTALL_PATH=$(KSFT)/install
	@# The KVM selftests of the series, static, run by the kvm-host boot
	@# (the test kernel as a KVM host, nested under TCG).  Only these two:
	@# the whole KVM suite takes long to build and tests what we do not.
	@+$(MAKE) -s -C $(TREE)/tools/testing/selftests/kvm OUTPUT=$(KSFT)/kvm \
		KHDR_INCLUDES="-isystem $(KOBJ)/usr/include" \
		EXTRA_CFLAGS=-static LDFLAGS=-static \
		$(addprefix $(KSFT)/kvm/x86_64/,$(KVM_SELFTESTS))
	@mkdir -p $(KSFT)/install/kvm
	@cp $(addprefix $(KSFT)/kvm/x86_64/,$(KVM_SELFTESTS)) $(KSFT)/install/kvm/
	@echo timeout=900 > $(KSFT)/install/kvm/settings
	@for t in $(KVM_SELFTESTS); do \
		grep -qx kvm:$$t $(KSFT)/install/kselftest-list.txt || \
		echo kvm:$$t >> $(KSFT)/install/kselftest-list.txt; done

# The simulated device: host simulator, guest driver (an external module
# built from a copy, so the source folder stays clean), demo initramfs.
sim: kernel
	@mkdir -p $(SIM)/drv
	@cp -u $(TOOLS)/sim/dd_sim_drv.c $(TOOLS)/sim/dd_sim.h $(TOOLS)/sim/Kbuild $(SIM)/drv/
	@+$(KMAKE) -s M=$(SIM)/drv modules
	@gcc -O2 -Wall -Wextra -o $(SIM)/dd_sim $(TOOLS)/sim/dd_sim.c
	@python3 -c 'import sys; sys.path.insert(0, "$(TOOLS)"); \
		import dma_dirty_kernel as k; \
		p = k.Paths("$(BUILD)", "$(VARIANT)"); \
		k.build_initramfs(p, p.initramfs_demo, \
			["$(SIM)/drv/dd_sim_drv.ko", "$(TOOLS)/guest/demo.sh"])'

demo: sim
	@python3 $(TOOLS)/dd_migrate.py demo --build $(BUILD) --variant '$(VARIANT)'

# make soak (not in CI): SOAK_LEGS back-to-back migrations on nested KVM,
# ping-pong inside one L1, the device quiesced by the stop bit, each leg
# verified word by word, for each backend of SOAK_BACKENDS.
SOAK_LEGS     ?= 100
SOAK_BACKENDS ?= touch kvm

soak: sim
	@for b in $(SOAK_BACKENDS); do \
		python3 $(TOOLS)/dd_migrate.py run --nested --backend $$b \
			--legs $(SOAK_LEGS) --quiesce stop --label soak-$$b \
			--build $(BUILD) --variant '$(VARIANT)' || exit 1; \
	done

# The harness's own unit tests (host side, not counted in the kernel's):
# every test the module has must run and pass, none skipped.
tooltest:
	@out=$$(python3 $(TOOLS)/dma_dirty_tool_test.py 2>&1) || \
		{ echo "$$out"; echo "error: harness unit tests failed"; exit 1; }; \
	ran=$$(echo "$$out" | sed -n 's/^Ran \([0-9]*\) tests.*/\1/p'); \
	have=$$(cd $(TOOLS) && python3 -c 'import unittest; print(unittest.defaultTestLoader.loadTestsFromName("dma_dirty_tool_test").countTestCases())'); \
	if [ "$$ran" != "$$have" ] || echo "$$out" | grep -q '^OK (.*skipped'; then \
		echo "$$out"; echo "error: harness unit tests: $$ran of $$have ran, or some were skipped"; exit 1; fi; \
	echo "harness: unit tests $$ran of $$have ok"

test: tooltest kselftests sim
	@python3 $(TOOLS)/dma_dirty.py run --build $(BUILD) --accel $(ACCEL) \
		--tests '$(TESTS)' --variant '$(VARIANT)'

# make bench: the DMA API's cost with and without the series (dd_bench.py,
# docs/bench.md).  The baseline kernel is the test kernel's configuration
# without CONFIG_DMA_MARK_DIRTY (and what depends on it).
BENCH      := $(BUILD)/bench
BENCH_BASE := $(BUILD)/obj-bench-base

bench: kselftests
	@$(TOOLS)/deps.sh bench
	@mkdir -p $(BENCH)/base $(BENCH)/series
	@grep -v -e DMA_MARK_DIRTY -e TEST_DMA_DIRTY $(TOOLS)/configs/test.config \
		> $(BENCH)/base.config
	@echo "# CONFIG_DMA_MARK_DIRTY is not set" >> $(BENCH)/base.config
	@$(TOOLS)/configure.sh $(TREE) $(BENCH_BASE) $(BENCH)/base.config
	@echo "bench: building the baseline kernel in $(BENCH_BASE)"
	@+$(MAKE) -C $(TREE) O=$(BENCH_BASE) CC="ccache gcc" HOSTCC="ccache gcc" \
		KBUILD_BUILD_TIMESTAMP=2024-11-17 KBUILD_BUILD_USER=dma-dirty \
		KBUILD_BUILD_HOST=build -j$(JOBS) -s bzImage modules
	@for k in base series; do \
		cp -u $(TOOLS)/bench/dd_bench.c $(TOOLS)/bench/Kbuild $(BENCH)/$$k/ && \
		$(MAKE) -s -C $(TREE) \
			O=$$([ $$k = base ] && echo $(BENCH_BASE) || echo $(KOBJ)) \
			CC="ccache gcc" M=$(BENCH)/$$k modules || exit 1; \
	done
	@python3 $(TOOLS)/dd_bench.py run --build $(BUILD) --out $(TOP)/docs/bench

SERIES_OUT := $(BUILD)/series

SERIES_VERSION ?= 4

series: tree
	@$(TOOLS)/series.sh $(TREE) $(SERIES_OUT) $(TOP)/patches/cover-letter.txt \
		$(SERIES_VERSION) $(TOP)

checkpatch: series
	@$(TOOLS)/checkpatch.sh $(TREE) $(TOP)/patches/checkpatch-exceptions \
		$(filter-out %-cover-letter.patch,$(wildcard $(SERIES_OUT)/*.patch))

# Quality gates: checkpatch, kernel-doc, every step builds, W=1 and sparse
# against the base, Sphinx, get_maintainer.pl.
check: checkpatch kernel
	@$(TOOLS)/check.sh $(TOP) $(BUILD)

clean:
	rm -rf $(BUILD)/obj* $(BUILD)/modules* $(BUILD)/kselftest* \
		$(BUILD)/initramfs* $(BUILD)/logs* $(BUILD)/sim* \
		$(SERIES_OUT)

distclean:
	rm -rf $(BUILD)
