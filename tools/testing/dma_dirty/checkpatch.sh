#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run scripts/checkpatch.pl --strict on every exported patch and fail on
# any report that patches/checkpatch-exceptions does not justify.
#
# usage: checkpatch.sh TREE EXCEPTIONS PATCH...

set -uo pipefail

TREE=$1 EXC=$2
shift 2

bad=0
for p in "$@"; do
	name=$(basename "$p")
	out=$("$TREE/scripts/checkpatch.pl" --strict --no-tree --show-types \
		--no-summary -q "$p" 2>&1)
	left=0
	# Reports are blocks separated by blank lines; the first line is
	# "LEVEL:TYPE: message", a "#N: FILE: path:line" line may follow.
	while IFS= read -r -d $'\x1e' block; do
		[ -n "${block//[[:space:]]/}" ] || continue
		head=$(printf '%s\n' "$block" | grep -m1 -E '^(ERROR|WARNING|CHECK):')
		[ -n "$head" ] || continue
		type=$(echo "$head" | cut -d: -f2)
		file=$(printf '%s\n' "$block" | sed -n 's/^#[0-9]*: FILE: \([^:]*\):.*/\1/p' | head -1)
		ok=0
		while IFS=$'\t' read -r etype ewhere _; do
			case "$etype" in ''|'#'*) continue ;; esac
			[ "$etype" = "$type" ] || continue
			# shellcheck disable=SC2053
			if [ -n "$file" ] && [ "$ewhere" = "$file" ]; then ok=1; fi
			if [ -z "$file" ] && [[ $name == $ewhere ]]; then ok=1; fi
		done < "$EXC"
		if [ $ok -eq 0 ]; then
			[ $left -eq 0 ] && echo "checkpatch: $name:"
			printf '%s\n\n' "$block"
			left=$((left + 1))
		fi
	done < <(printf '%s\n' "$out" | awk 'BEGIN{RS=""; ORS="\x1e"} {print}')
	if [ $left -eq 0 ]; then
		echo "checkpatch: ok   $name"
	else
		echo "checkpatch: FAIL $name ($left reports not in $(basename "$EXC"))"
		bad=1
	fi
done
exit $bad
