#!/bin/sh
# SPDX-License-Identifier: GPL-2.0
#
# The dma_mark_dirty debugfs counters on one line, for the host's runners:
#   backend=NAME calls_direct=N ... pages_swiotlb=N
# ("backend=none" without the series).

dbg=/sys/kernel/debug/dma_mark_dirty
line="backend=$(cat $dbg/backend 2>/dev/null || echo none)"
for f in "$dbg"/calls_* "$dbg"/pages_*; do
	[ -r "$f" ] && line="$line ${f##*/}=$(cat "$f")"
done
echo "$line"
