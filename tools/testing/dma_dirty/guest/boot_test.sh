#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Checks that the guest runs the kernel the harness built and with the boot
# configuration it asked for, and that the backend can be switched at
# runtime through debugfs.  Expectations come from the kernel command line
# (ddtest.*=), set by dma_dirty.py, which also knows which checks must
# report (boot_checks() in dma_dirty_kernel.py).

arg() { tr ' ' '\n' < /proc/cmdline | sed -n "s/^ddtest\.$1=//p"; }

n=0
fails=0
check() {	# check NAME EXPECTED GOT
	n=$((n + 1))
	if [ "$2" = "$3" ]; then
		echo "ok $n $1"
	else
		echo "# $1: expected '$2', got '$3'"
		echo "not ok $n $1"
		fails=$((fails + 1))
	fi
}

echo "TAP version 13"
plan=3
[ -n "$(arg backend)" ] && plan=$((plan + 3))
[ -n "$(arg dmesg)" ] && plan=$((plan + 1))
echo "1..$plan"

check kernel_release "$(arg release)" "$(uname -r)"
check config_dma_mark_dirty "CONFIG_DMA_MARK_DIRTY=y" \
	"$(zcat /proc/config.gz | grep '^CONFIG_DMA_MARK_DIRTY=')"
check debugfs_dir present \
	"$([ -d /sys/kernel/debug/dma_mark_dirty ] && echo present || echo missing)"
if [ -n "$(arg backend)" ]; then
	f=/sys/kernel/debug/dma_mark_dirty/backend
	was=$(cat $f 2>&1)
	check backend "$(arg backend)" "$was"
	# Switch at runtime to the other backend, read it back, restore.
	to=touch
	[ "$was" = touch ] && to=off
	if (echo $to > $f) 2> /dev/null; then
		got=$(cat $f 2>&1)
	else
		got="write refused"
	fi
	check backend_write "$to" "$got"
	(echo "$was" > $f) 2> /dev/null
	check backend_restore "$was" "$(cat $f 2>&1)"
fi
if [ -n "$(arg dmesg)" ]; then
	want=$(arg dmesg | tr '+' ' ')
	check "dmesg_says:$(arg dmesg)" found \
		"$(dmesg | grep -qF "$want" && echo found || echo absent)"
fi
[ $fails -eq 0 ]
