#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Bind lib/test_dma_dirty.ko to a PCI device that has no driver and run
# dma_dirty_test on it.  The device is $DMA_DIRTY_PCI_DEV (a PCI address,
# 0000:00:04.0) or else the first QEMU pci-testdev (1b36:0005) found.

ksft_skip=4
sysfs=/sys/bus/pci

skip() {
	echo "# SKIP: $*"
	exit $ksft_skip
}

if ! modprobe -q test_dma_dirty; then
	skip "cannot load test_dma_dirty (CONFIG_TEST_DMA_DIRTY=m)"
fi

dev=$DMA_DIRTY_PCI_DEV
if [ -z "$dev" ]; then
	for d in $sysfs/devices/*; do
		if [ "$(cat "$d/vendor")" = 0x1b36 ] &&
		   [ "$(cat "$d/device")" = 0x0005 ] && [ ! -e "$d/driver" ]; then
			dev=${d##*/}
			break
		fi
	done
fi
if [ -z "$dev" ]; then
	rmmod test_dma_dirty
	skip "no device to bind: set DMA_DIRTY_PCI_DEV to a PCI device without a driver"
fi
if [ -e "$sysfs/devices/$dev/driver" ]; then
	rmmod test_dma_dirty
	echo "# $dev already has a driver: $(readlink "$sysfs/devices/$dev/driver")"
	exit 1
fi

echo test_dma_dirty > "$sysfs/devices/$dev/driver_override"
echo "$dev" > "$sysfs/drivers_probe"
if [ ! -c /dev/test_dma_dirty ]; then
	echo "# binding test_dma_dirty to $dev failed"
	echo > "$sysfs/devices/$dev/driver_override"
	rmmod test_dma_dirty
	exit 1
fi

./dma_dirty_test
ret=$?

# The driver must let go of the device and unload: a failure here (a
# mapping or a reference left behind) fails the run.
if ! echo "$dev" > "$sysfs/drivers/test_dma_dirty/unbind"; then
	echo "# unbinding test_dma_dirty from $dev failed"
	ret=1
fi
echo > "$sysfs/devices/$dev/driver_override"
if ! rmmod test_dma_dirty; then
	echo "# rmmod test_dma_dirty failed"
	ret=1
fi
exit $ret
