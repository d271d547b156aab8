#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of a migration scenario (dd_migrate.py): load the driver of
# the simulated device, bind it to the ivshmem-plain device, and keep the
# CPU rewriting a few MiB every 100 ms, as a busy guest does, so that
# pre-copy keeps iterating (dddemo.churn_mb=N on the command line, default
# 4; a nested KVM guest gets 1, more starves it).  Everything else goes through the device's
# registers, except one thing the runner cannot read there: each time the
# driver has verified its buffers, this script prints the dma_mark_dirty
# debugfs counters on the console, as one line
#   demo: verified: backend=touch calls_direct=N ... pages_swiotlb=N
# so the runner can tell which DMA path reported the pages, and again
# ("demo: quiesced: ...") each time the device is quiesced, so that it
# can tell what the destination reported after its replug (only once it
# has verified, so never on the console during pre-copy).  This script
# never returns.

say() { echo "demo: $*" > /dev/console; }
dbg=/sys/kernel/debug/dma_mark_dirty

counters() { /dma-dirty/counters.sh; }

churn=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dddemo\.churn_mb=//p')
churn=${churn:-4}
# make bench's scaling runs: every buffer dddemo.buf_pages pages
pages=$(tr ' ' '\n' < /proc/cmdline | sed -n 's/^dddemo\.buf_pages=//p')
insmod /dma-dirty/dd_sim_drv.ko ${pages:+buf_pages=$pages} ||
	say "error: cannot load dd_sim_drv.ko"
# Bind dd_sim to the ivshmem device no driver has; sets $dev and $state.
bind() {
	dev=
	state=
	for d in /sys/bus/pci/devices/*; do
		[ -e "$d/driver" ] && continue
		if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]; then
			dev=${d##*/}
		fi
	done
	[ -n "$dev" ] || return 1
	echo dd_sim > "/sys/bus/pci/devices/$dev/driver_override"
	echo "$dev" > /sys/bus/pci/drivers_probe
	say "dd_sim bound to $dev: $(cat $dbg/backend) backend"
	state=/sys/bus/pci/devices/$dev/dd_state
	[ -r "$state" ] || say "error: the driver did not bind ($state missing)"
}

# The driver asks to be unplugged (DD_CTRL_UNPLUG): power its PCIe slot
# off, as a user does before taking a card out; pciehp removes the device
# and the driver's remove path unmaps everything.
unplug() {
	for s in /sys/bus/pci/slots/*; do
		[ "$(cat "$s/address" 2>/dev/null)" = "${dev%.*}" ] || continue
		say "powering off slot ${s##*/} ($dev)"
		echo 0 > "$s/power" || say "error: cannot power off slot ${s##*/}"
		return
	done
	say "error: no hotplug slot for $dev"
}

bind || say "error: no ivshmem device (1af4:1110)"
last=
verified=
while :; do
	dd if=/dev/zero of=/tmp/churn bs=1M count=$churn 2>/dev/null
	if [ -n "$state" ] && [ -r "$state" ]; then
		now=$(cat "$state" 2>/dev/null)
		[ "$now" = verified ] && [ "$last" != verified ] &&
			say "verified: $(counters)" && verified=1
		# not during pre-copy: only once this guest has verified
		[ "$now" = quiesced ] && [ "$last" != quiesced ] &&
			[ -n "$verified" ] && say "quiesced: $(counters)"
		[ "$now" = unplug ] && [ "$last" != unplug ] && unplug
		last=$now
	else
		# Unplugged: bind the device plugged back, when there is one.
		bind && last=
	fi
	usleep 100000
done
