#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Configure the test kernel: "allnoconfig" plus the fragment, then check
# that every symbol of the fragment got the value it asks for, so a
# dependency that is not met stops here instead of building a kernel that
# silently lacks a feature.
#
# "# CONFIG_FOO is not set" lines are checked too: FOO must not be set.
# ARCH in the environment (ARCH=i386) configures another architecture.
#
# usage: configure.sh TREE OBJDIR FRAGMENT...

set -euo pipefail

TREE=$(realpath "$1")
mkdir -p "$2"
OBJ=$(realpath "$2")
shift 2


merged=$OBJ/.dma-dirty.fragment
cat "$@" > "$merged.new"
make -s -C "$TREE" O="$OBJ" KCONFIG_ALLCONFIG="$merged.new" allnoconfig \
	> "$OBJ/.configure.log" 2>&1 || {
	cat "$OBJ/.configure.log" >&2
	echo "configure: error: allnoconfig failed" >&2
	exit 1
}
mv "$merged.new" "$merged"

bad=0
while IFS= read -r line; do
	case "$line" in
	CONFIG_*=*)
		sym=${line%%=*}
		if ! grep -qxF "$line" "$OBJ/.config"; then
			got=$(grep -E "^$sym=|^# $sym is not set" "$OBJ/.config" || echo "absent")
			echo "configure: error: $line requested, .config has: $got" >&2
			bad=1
		fi ;;
	"# CONFIG_"*" is not set")
		# Off, or absent because its dependencies are not met.
		sym=${line#\# }
		sym=${sym%% *}
		if grep -qE "^$sym=" "$OBJ/.config"; then
			echo "configure: error: $sym off requested, .config has: $(grep -E "^$sym=" "$OBJ/.config")" >&2
			bad=1
		fi ;;
	esac
done < "$merged"
[ $bad -eq 0 ] || {
	echo "configure: a requested symbol is missing or its dependencies are not met" >&2
	exit 1
}
echo "configure: $(grep -cE '^CONFIG_|^# CONFIG_.* is not set' "$merged") fragment symbols checked in $OBJ/.config"
