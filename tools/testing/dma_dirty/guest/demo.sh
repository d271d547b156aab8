#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The guest side of a migration scenario (dd_migrate.py): load the driver of
# the simulated device, bind it to the ivshmem-plain device, and keep the
# CPU rewriting a few MiB every 100 ms, as a busy guest does, so that
# pre-copy keeps iterating.  Everything else goes through the device's
# registers; this script never returns.

say() { echo "demo: $*" > /dev/console; }

insmod /dma-dirty/dd_sim_drv.ko || say "error: cannot load dd_sim_drv.ko"
dev=
for d in /sys/bus/pci/devices/*; do
	if [ "$(cat "$d/vendor")" = 0x1af4 ] && [ "$(cat "$d/device")" = 0x1110 ]; then
		dev=${d##*/}
	fi
done
if [ -z "$dev" ]; then
	say "error: no ivshmem device (1af4:1110)"
else
	echo dd_sim > "/sys/bus/pci/devices/$dev/driver_override"
	echo "$dev" > /sys/bus/pci/drivers_probe
	say "dd_sim bound to $dev: $(cat /sys/kernel/debug/dma_mark_dirty/backend) backend"
fi
while :; do
	dd if=/dev/zero of=/tmp/churn bs=1M count=4 2>/dev/null
	usleep 100000
done
