#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of "make bench" (dd_bench.py): load dd_bench.ko, which
# times the DMA API at probe, and copy its lines to ttyS1, between the
# dma_mark_dirty debugfs counters before and after.  ddbench.reps=N and
# ddbench.ms=N are passed on; with ddbench.logging=1 (an L2 guest whose
# host starts logging dirty pages) it first waits until the backend
# reports.  ddbench.pause=N: seconds to wait after each counters line, so
# that an L1 host can read KVM's statistics of this VM there.  Then it
# powers off.

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^ddbench\.$1=//p"; }
dbg=/sys/kernel/debug/dma_mark_dirty
out=/dev/ttyS1
counters() { /dma-dirty/counters.sh; }

# A kernel without the series has no reporting file: nothing to wait for.
if [ "$(arg logging)" = 1 ] && [ -r $dbg/reporting ]; then
	echo "# dd_bench: waiting for reporting" > $out
	i=0
	while [ "$(cat $dbg/reporting)" != 1 ]; do
		i=$((i + 1))
		if [ $i -gt 3000 ]; then
			echo "# dd_bench: error: the backend did not start reporting in 300 s" > $out
			poweroff -f
		fi
		usleep 100000
	done
fi
pause=$(arg pause)
echo "# dd_bench: counters $(counters)" > $out
[ "${pause:-0}" -gt 0 ] && sleep "$pause"
dmesg -c > /dev/null
insmod /dma-dirty/dd_bench.ko reps="$(arg reps)" bench_ms="$(arg ms)" 2> /dev/null
dmesg | grep -o 'dd_bench: .*' > $out
echo "# dd_bench: counters $(counters)" > $out
echo "# dd_bench: end" > $out
[ "${pause:-0}" -gt 0 ] && sleep "$pause"
sync
poweroff -f
