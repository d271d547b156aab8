#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Quality gates for the series, run by "make check" after "make series":
#   1. kernel-doc -none -Wall on every new or changed C file and header
#   2. every step of the series builds with the test config (bisectable)
#   3. W=1 and sparse (C=2) report nothing new in the files the series
#      compiles differently, compared with the same files in the base,
#      counting each report (a new copy of a base warning is new), and
#      sparse checked every one of those files
#   4. the last step builds without a warning in the series' files (W=1 on
#      its objects) in other configurations: DMA_MARK_DIRTY=y without KUnit
#      and debugfs, DMA_MARK_DIRTY=n, and i386 (configs/*.config)
#   5. the touched documentation and the admin-guide (kernel-parameters)
#      build with Sphinx with no warning that names the series
#   6. get_maintainer.pl names the DMA-mapping and IOMMU maintainers and
#      their list
#   7. mypy (mypy.ini) reports nothing in the test bed's Python
#
# CHECKS="kdoc steps warnings options sphinx maintainers types" (the default)
# runs only the gates named.
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

CHECKS=${CHECKS:-kdoc steps warnings options sphinx maintainers types}
TOOLS=$TOP/tools/testing/dma_dirty

mkdir -p "$LOG"
fails=0
pass() { echo "check: ok   $*"; }
fail() { echo "check: FAIL $*"; fails=$((fails + 1)); }
want() { [[ " $CHECKS " == *" $1 "* ]]; }

files=$(git -C "$TREE" diff --name-only --diff-filter=AM dma-dirty-base..HEAD)
csrc=$(echo "$files" | grep -E '\.[ch]$' | grep -v '^tools/')
if [ -z "$csrc" ]; then
	echo "check: FAIL no C file changed between dma-dirty-base and HEAD in $TREE"
	exit 1
fi
# A compiler report about one of the series' files, at any path prefix
mine_re="(^|/)($(echo "$csrc" | sed 's/[.]/\\./g' | paste -sd'|')):[0-9]+"

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
if want kdoc; then
	changed=$(cd "$BASE" && for f in $csrc; do [ -f "$f" ] && echo "$f"; done)
	new=$(comm -13 <(kdoc "$BASE" $changed) <(kdoc "$TREE" $csrc))
	if [ -z "$new" ]; then
		pass "kernel-doc -none -Wall: nothing new in $(echo "$csrc" | wc -l) files"
	else
		echo "$new"
		fail "kernel-doc: new reports (above)"
	fi
fi

# 2. every step builds
if want steps; then
	head=$(git -C "$TREE" symbolic-ref -q HEAD || git -C "$TREE" rev-parse HEAD)
	cp "$OBJ/.config" "$LOG/config.final"
	for c in $(git -C "$TREE" rev-list --reverse dma-dirty-base..HEAD); do
		subject=$(git -C "$TREE" log -1 --format=%s "$c")
		# Building whatever the tree holds would pass for this step.
		if ! git -C "$TREE" checkout -q "$c" > "$LOG/checkout.log" 2>&1; then
			cat "$LOG/checkout.log"
			fail "builds: git checkout of $subject failed; later steps not built"
			break
		fi
		# The test config, less what this step does not have yet.  The
		# last step is the tree as it was, so the build is left as it
		# was found.
		cp "$LOG/config.final" "$OBJ/.config"
		"${KMAKE[@]}" -s O="$OBJ" olddefconfig > /dev/null 2>&1
		if "${KMAKE[@]}" O="$OBJ" bzImage modules > "$LOG/step-$c.log" 2>&1; then
			pass "builds: $subject"
		else
			grep -m5 -E ': error:|\*\*\*' "$LOG/step-$c.log"
			fail "builds: $subject (log: $LOG/step-$c.log)"
		fi
	done
	if ! git -C "$TREE" checkout -q "${head#refs/heads/}" > "$LOG/checkout.log" 2>&1; then
		cat "$LOG/checkout.log"
		fail "git checkout ${head#refs/heads/} failed: $TREE may be left at another step"
	fi
	if ! cmp -s "$LOG/config.final" "$OBJ/.config"; then
		fail "the last step's build did not use the test config"
	fi
fi

# 3. W=1 and sparse, series against base, on the objects the series touches
objs=$(echo "$csrc" | grep '\.c$' | sed 's/\.c$/.o/')
objs="$objs kernel/dma/mapping.o kernel/dma/direct.o"
objs=$(echo $objs | tr ' ' '\n' | sort -u)
# warnings TREE OBJDIR OUT [MAKE ARG...]: each report of W=1 and sparse on
# $objs with its count ("report<TAB>count"); fails when make fails or
# sparse did not check one of $objs.
warnings() {
	local tree=$1 obj=$2 out=$3 o rel unchecked=
	shift 3
	if ! "${KMAKE[@]}" -C "$tree" O="$obj" W=1 C=2 "$@" $objs > "$out.raw" 2>&1; then
		grep -m5 -E ': error:|\*\*\*' "$out.raw"
		fail "W=1 and sparse: make failed in $tree (log: $out.raw)"
	fi
	for o in $objs; do
		grep -qE "^ +CHECK +(.*/)?${o%.o}\.c$" "$out.raw" ||
			unchecked="$unchecked ${o%.o}.c"
	done
	[ -z "$unchecked" ] ||
		fail "sparse did not check:$unchecked (no CHECK line in $out.raw)"
	# ccache (CCACHE_BASEDIR) makes the paths relative to the object dir.
	rel=$(realpath -m --relative-to="$obj" "$tree")
	grep -E 'warning:|error:' "$out.raw" |
		sed -E "s|^$tree/||; s|^$rel/||; s|:[0-9]+:[0-9]+:|:|; s|:[0-9]+:|:|" |
		sort | uniq -c | sed -E 's/^ *([0-9]+) (.*)/\2\t\1/' > "$out"
}
if want warnings; then
	[ -f "$LOG/config.final" ] || cp "$OBJ/.config" "$LOG/config.final"
	mkdir -p "$BUILD/obj-base"
	cp "$LOG/config.final" "$BUILD/obj-base/.config"
	"${KMAKE[@]}" -C "$BASE" O="$BUILD/obj-base" olddefconfig prepare > "$LOG/base-prepare.log" 2>&1 ||
		fail "base: make prepare (log: $LOG/base-prepare.log)"
	all_objs=$objs
	objs=$(cd "$BASE" && for o in $all_objs; do [ -f "${o%.o}.c" ] && echo "$o"; done)
	warnings "$BASE" "$BUILD/obj-base" "$LOG/warnings.base"
	objs=$all_objs
	warnings "$TREE" "$OBJ" "$LOG/warnings.series"
	# More copies of a report than in the base is a new report.
	new=$(awk -F'\t' 'NR == FNR { base[$1] = $2; next }
		$2 > base[$1] + 0 { printf "%s (%d times, base %d)\n", $1, $2, base[$1] }' \
		"$LOG/warnings.base" "$LOG/warnings.series")
	if [ -z "$new" ]; then
		pass "W=1 and sparse: nothing new in $(echo $objs | wc -w) objects ($(awk -F'\t' '{ n += $2 } END { print n + 0 }' "$LOG/warnings.base") reports in the base)"
	else
		echo "$new"
		fail "W=1 and sparse: new reports (above)"
	fi
fi

# 4. the last step in other configurations: no build error, no warning in
# the series' files, with W=1 on the series' objects that are built
option_build() {	# NAME ARCH FRAGMENT
	local name=$1 arch=$2 frag=$3 obj=$BUILD/obj-check-$1 log=$LOG/option-$1
	local built= o d ok=1 mine
	if ! ARCH=$arch "$TOOLS/configure.sh" "$TREE" "$obj" "$frag" > "$log.config.log" 2>&1; then
		cat "$log.config.log"
		fail "$name: configuration ($(basename "$frag"))"
		return
	fi
	# -k: an error in one object does not hide the reports of the others
	if ! "${KMAKE[@]}" -k ARCH="$arch" O="$obj" > "$log.build.log" 2>&1; then
		grep -m10 -E ': error:|\*\*\*' "$log.build.log"
		fail "$name: build failed (log: $log.build.log)"
		ok=0
	fi
	# The series' objects this configuration builds: those its archives
	# and module lists name, and after a failed build those compiled
	# since it was configured.  A .cmd file alone may be left over from
	# another configuration.
	for o in $objs; do
		d=$obj/$(dirname "$o")
		# ar names a thin archive's members relative to where it runs
		if { [ -f "$d/built-in.a" ] &&
		     (cd "$obj" && ar t "$(dirname "$o")/built-in.a") | grep -qxF "$o"; } ||
		   grep -qxF "$o" "$d/modules.order" 2> /dev/null ||
		   { [ $ok -eq 0 ] && [ "$d/.$(basename "$o").cmd" -nt "$obj/.config" ]; }; then
			built="$built $o"
		fi
	done
	: > "$log.w1.log"
	if [ -z "$built" ]; then
		fail "$name: none of the series' objects was built"
		ok=0
	fi
	if [ -n "$built" ] &&
	   ! "${KMAKE[@]}" -k ARCH="$arch" O="$obj" W=1 $built > "$log.w1.log" 2>&1; then
		grep -m10 -E ': error:|\*\*\*' "$log.w1.log"
		fail "$name: W=1 build of$built failed (log: $log.w1.log)"
		ok=0
	fi
	mine=$(cat "$log.build.log" "$log.w1.log" | grep -E 'warning:|error:' |
	       grep -E "$mine_re" | sed -E "s|^$TREE/||; s|^(\.\./)+linux/||" |
	       sort | uniq -c)
	if [ -n "$mine" ]; then
		echo "$mine"
		fail "$name: warnings in the series' files (above; logs: $log.*.log)"
	elif [ $ok -eq 1 ]; then
		pass "$name: builds, no warning in the series' files (W=1 on$built)"
	fi
}
if want options; then
	option_build nodebugfs x86_64 "$TOOLS/configs/nodebugfs.config"
	option_build off x86_64 "$TOOLS/configs/off.config"
	option_build i386 i386 "$TOOLS/configs/i386.config"
fi

# 5. Sphinx, with the admin-guide for kernel-parameters.txt
if want sphinx; then
	docdirs=$( (echo "$files" | sed -n 's|^Documentation/\([^/]*\)/.*|\1|p'
		    echo admin-guide) | sort -u | tr '\n' ' ')
	docdirs=${docdirs% }
	if "${KMAKE[@]}" O="$BUILD/obj-doc" SPHINXDIRS="$docdirs" htmldocs > "$LOG/sphinx.log" 2>&1; then
		mine=$(grep -E 'WARNING|ERROR' "$LOG/sphinx.log" |
		       grep -E 'dma-mark-dirty|dma-dirty|dma_dirty|dma_mark_dirty|kernel/dma/dirty' || true)
		params=$(find "$BUILD/obj-doc/Documentation/output" -path '*admin-guide/kernel-parameters.html' 2>/dev/null | head -1)
		if [ -n "$mine" ]; then
			echo "$mine"
			fail "Sphinx: warnings (above)"
		elif [ -z "$params" ] || ! grep -q 'dma_mark_dirty=' "$params"; then
			fail "Sphinx: no kernel-parameters.html with dma_mark_dirty= in $BUILD/obj-doc"
		else
			pass "Sphinx ($docdirs): no warning about the series' files, dma_mark_dirty= in kernel-parameters.html"
		fi
	else
		tail -20 "$LOG/sphinx.log"
		fail "Sphinx build (log: $LOG/sphinx.log)"
	fi
fi

# 6. get_maintainer.pl
if want maintainers; then
	gm=$(cd "$TREE" && scripts/get_maintainer.pl --no-rolestats \
		"$BUILD"/series/*-000[1-9]-*.patch 2>/dev/null)
	missing=
	for addr in hch@lst.de m.szyprowski@samsung.com iommu@lists.linux.dev \
		    joro@8bytes.org; do
		echo "$gm" | grep -q "$addr" || missing="$missing $addr"
	done
	if [ -z "$missing" ]; then
		pass "get_maintainer.pl: $(echo "$gm" | wc -l) recipients, DMA mapping and IOMMU included"
	else
		echo "$gm"
		fail "get_maintainer.pl lacks:$missing"
	fi
fi

# 7. mypy over the test bed, as kunit.py's run_checks.py does over kunit.py
if want types; then
	if ! command -v mypy > /dev/null; then
		fail "mypy: not installed (make deps installs Debian's mypy)"
	elif out=$(cd "$TOOLS" && mypy --config-file mypy.ini ./*.py 2>&1); then
		pass "mypy: $(echo "$out" | tail -1)"
	else
		echo "$out"
		fail "mypy: reports (above)"
	fi
fi

echo "check: $fails failed"
[ $fails -eq 0 ]
