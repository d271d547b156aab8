#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# Checks that the guest runs the kernel the harness built and with the boot
# configuration it asked for.  Expectations come from the kernel command
# line (ddtest.*=), set by dma_dirty.py.

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
[ -n "$(arg backend)" ] && plan=$((plan + 1))
[ -n "$(arg dmesg)" ] && plan=$((plan + 1))
echo "1..$plan"

check kernel_release "$(arg release)" "$(uname -r)"
check config_dma_mark_dirty "CONFIG_DMA_MARK_DIRTY=y" \
	"$(zcat /proc/config.gz | grep '^CONFIG_DMA_MARK_DIRTY=')"
check debugfs_dir present \
	"$([ -d /sys/kernel/debug/dma_mark_dirty ] && echo present || echo missing)"
if [ -n "$(arg backend)" ]; then
	check backend "$(arg backend)" \
		"$(cat /sys/kernel/debug/dma_mark_dirty/backend 2>&1)"
fi
if [ -n "$(arg dmesg)" ]; then
	want=$(arg dmesg | tr '+' ' ')
	check "dmesg_says:$(arg dmesg)" found \
		"$(dmesg | grep -qF "$want" && echo found || echo absent)"
fi
[ $fails -eq 0 ]
