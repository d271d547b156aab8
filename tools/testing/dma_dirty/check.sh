#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Quality gates for the series, run by "make check" after "make series":
#   1. kernel-doc -none -Wall on every new or changed C file and header
#   2. every step of the series builds with the test config (bisectable)
#   3. W=1 and sparse (C=1) report nothing new in the files the series
#      compiles differently, compared with the same files in the base
#   4. the touched documentation builds with Sphinx with no warning that
#      names a file of the series
#   5. get_maintainer.pl names the DMA-mapping and IOMMU maintainers and lists
#
# usage: check.sh TOP BUILD

set -uo pipefail

TOP=$1 BUILD=$2
TREE=$BUILD/linux
OBJ=$BUILD/obj
LOG=$BUILD/logs/check
KMAKE=(make -C "$TREE" CC="ccache gcc" HOSTCC="ccache gcc"
       KBUILD_BUILD_TIMESTAMP=2024-11-17 KBUILD_BUILD_USER=dma-dirty
       KBUILD_BUILD_HOST=build -j"$(nproc)")
export CCACHE_BASEDIR=$BUILD

mkdir -p "$LOG"
fails=0
pass() { echo "check: ok   $*"; }
fail() { echo "check: FAIL $*"; fails=$((fails + 1)); }

files=$(git -C "$TREE" diff --name-only --diff-filter=AM dma-dirty-base..HEAD)
csrc=$(echo "$files" | grep -E '\.[ch]$' | grep -v '^tools/')

BASE=$BUILD/base
if [ ! -d "$BASE" ]; then
	git -C "$TREE" worktree add -q --detach "$BASE" dma-dirty-base
fi

# 1. kernel-doc: nothing in new files, nothing new in changed ones
kdoc() {	# DIR FILE...: normalised reports
	local dir=$1
	shift
	[ $# -gt 0 ] || return 0
	(cd "$dir" && scripts/kernel-doc -none -Wall "$@" 2>&1) |
		sed -E 's/:[0-9]+:/:/' | sort -u
}
changed=$(cd "$BASE" && for f in $csrc; do [ -f "$f" ] && echo "$f"; done)
new=$(comm -13 <(kdoc "$BASE" $changed) <(kdoc "$TREE" $csrc))
if [ -z "$new" ]; then
	pass "kernel-doc -none -Wall: nothing new in $(echo "$csrc" | wc -l) files"
else
	echo "$new"
	fail "kernel-doc: new reports (above)"
fi

# 2. every step builds
head=$(git -C "$TREE" symbolic-ref -q HEAD)
cp "$OBJ/.config" "$LOG/config.final"
for c in $(git -C "$TREE" rev-list --reverse dma-dirty-base..HEAD); do
	subject=$(git -C "$TREE" log -1 --format=%s "$c")
	git -C "$TREE" checkout -q "$c"
	# The test config, less what this step does not have yet.  The last
	# step is the tree as it was, so the build is left as it was found.
	cp "$LOG/config.final" "$OBJ/.config"
	"${KMAKE[@]}" -s O="$OBJ" olddefconfig > /dev/null 2>&1
	if "${KMAKE[@]}" O="$OBJ" bzImage modules > "$LOG/step-$c.log" 2>&1; then
		pass "builds: $subject"
	else
		grep -m5 -E 'error|Error' "$LOG/step-$c.log"
		fail "builds: $subject (log: $LOG/step-$c.log)"
	fi
done
git -C "$TREE" checkout -q "${head#refs/heads/}"
if ! cmp -s "$LOG/config.final" "$OBJ/.config"; then
	fail "the last step's build did not use the test config"
fi

# 3. W=1 and sparse, series against base, on the objects the series touches
objs=$(echo "$csrc" | grep '\.c$' | sed 's/\.c$/.o/')
objs="$objs kernel/dma/mapping.o kernel/dma/direct.o"
objs=$(echo $objs | tr ' ' '\n' | sort -u)
warnings() {	# TREE OBJDIR OUT
	"${KMAKE[@]}" -C "$1" O="$2" W=1 C=2 $objs > "$3.raw" 2>&1
	grep -E 'warning:|error:' "$3.raw" |
		sed -E "s|$1/||; s|:[0-9]+:[0-9]+:|:|; s|:[0-9]+:|:|" | sort -u > "$3"
}
mkdir -p "$BUILD/obj-base"
cp "$LOG/config.final" "$BUILD/obj-base/.config"
"${KMAKE[@]}" -C "$BASE" O="$BUILD/obj-base" olddefconfig prepare > "$LOG/base-prepare.log" 2>&1
existing=$(cd "$BASE" && for o in $objs; do [ -f "${o%.o}.c" ] && echo "$o"; done)
objs=$existing warnings "$BASE" "$BUILD/obj-base" "$LOG/warnings.base"
warnings "$TREE" "$OBJ" "$LOG/warnings.series"
new=$(comm -13 "$LOG/warnings.base" "$LOG/warnings.series")
if [ -z "$new" ]; then
	pass "W=1 and sparse: nothing new in $(echo $objs | wc -w) objects ($(wc -l < "$LOG/warnings.base") in the base)"
else
	echo "$new"
	fail "W=1 and sparse: new reports (above)"
fi

# 4. Sphinx
docdirs=$(echo "$files" | sed -n 's|^Documentation/\([^/]*\)/.*|\1|p' | sort -u |
	  grep -v admin-guide | tr '\n' ' ')
if "${KMAKE[@]}" O="$BUILD/obj-doc" SPHINXDIRS="$docdirs" htmldocs > "$LOG/sphinx.log" 2>&1; then
	mine=$(grep -E 'WARNING|ERROR' "$LOG/sphinx.log" |
	       grep -E 'dma-mark-dirty|dma-dirty|dma_dirty|kernel/dma/dirty' || true)
	if [ -z "$mine" ]; then
		pass "Sphinx ($docdirs): no warning about the series' files"
	else
		echo "$mine"
		fail "Sphinx: warnings (above)"
	fi
else
	tail -20 "$LOG/sphinx.log"
	fail "Sphinx build (log: $LOG/sphinx.log)"
fi

# 5. get_maintainer.pl
gm=$(cd "$TREE" && scripts/get_maintainer.pl --no-rolestats \
	"$BUILD"/series/*-000[1-9]-*.patch 2>/dev/null)
missing=
for want in hch@lst.de m.szyprowski@samsung.com iommu@lists.linux.dev \
	    joro@8bytes.org; do
	echo "$gm" | grep -q "$want" || missing="$missing $want"
done
if [ -z "$missing" ]; then
	pass "get_maintainer.pl: $(echo "$gm" | wc -l) recipients, DMA mapping and IOMMU included"
else
	echo "$gm"
	fail "get_maintainer.pl lacks:$missing"
fi

echo "check: $fails failed"
[ $fails -eq 0 ]
