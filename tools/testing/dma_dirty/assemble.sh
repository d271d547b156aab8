#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Assemble the patched kernel tree: a git repository with one commit for the
# base kernel and one per step of patches/series.
#
# usage: assemble.sh REPO TREE [KERNEL_SRC]
#
#   REPO        this repository (new files at their in-tree paths, patches/)
#   TREE        the tree to create or update (build/linux)
#   KERNEL_SRC  a 6.12 kernel tree to use as base instead of Debian's
#               /usr/src/linux-source-6.12.tar.xz
#
# The series commits are built in a private index, so the work tree is
# only touched by the final "git reset --hard": files whose content did not
# change keep their timestamps and kbuild rebuilds only what a step changed.

set -euo pipefail

REPO=$(realpath "$1")
TREE=$2
KERNEL_SRC=${3:-}
TARBALL=/usr/src/linux-source-6.12.tar.xz
SERIES=$REPO/patches/series
BASE_TAG=dma-dirty-base
BRANCH=dma-dirty

die() { echo "assemble: error: $*" >&2; exit 1; }
say() { echo "assemble: $*"; }

git_tree() { git -C "$TREE" "$@"; }

base_source() {
	if [ -n "$KERNEL_SRC" ]; then
		realpath "$KERNEL_SRC"
	else
		echo "$TARBALL"
	fi
}

create_base() {
	local src tmp ver

	src=$(base_source)
	tmp=$TREE.tmp
	rm -rf "$tmp"
	mkdir -p "$tmp"
	if [ -n "$KERNEL_SRC" ]; then
		[ -f "$src/Makefile" ] && [ -d "$src/kernel/dma" ] ||
			die "KERNEL_SRC=$KERNEL_SRC is not a kernel source tree"
		say "copying base tree from $src"
		rsync -a --exclude=.git --exclude='*.o' --exclude='*.cmd' \
			"$src/" "$tmp/"
	else
		[ -f "$src" ] || die "$src is missing (run 'make deps')"
		say "extracting $src"
		tar -C "$tmp" -xf "$src" --strip-components=1
	fi
	ver=$(make -s -C "$tmp" kernelversion 2>/dev/null) ||
		die "cannot read the kernel version of $src"
	case "$ver" in
	6.12|6.12.*) ;;
	*) rm -rf "$tmp"; die "base $src is Linux $ver; the series is for 6.12.y" ;;
	esac
	say "base is Linux $ver ($src)"
	git -C "$tmp" init -q -b base
	git -C "$tmp" config user.name "dma-dirty assemble"
	git -C "$tmp" config user.email "assemble@dma-dirty.invalid"
	git -C "$tmp" config core.autocrlf false
	git -C "$tmp" config gc.auto 0
	say "committing the base tree (about a minute)"
	git -C "$tmp" add -A -f .
	GIT_AUTHOR_DATE="2024-11-17 00:00:00 +0000" \
	GIT_COMMITTER_DATE="2024-11-17 00:00:00 +0000" \
		git -C "$tmp" commit -q -m "Linux $ver" \
		-m "Base tree for the dma-dirty series, from $src."
	git -C "$tmp" tag "$BASE_TAG"
	echo "$src" > "$tmp/.git/dma-dirty-source"
	mv "$tmp" "$TREE"
}

# Parse patches/series: "NAME.patch" lines, each followed by indented lines
# naming the new files that step adds. Prints "patch NAME" / "file PATH".
parse_series() {
	[ -f "$SERIES" ] || die "$SERIES is missing"
	sed -e 's/#.*//' "$SERIES" | while IFS= read -r line; do
		case "$line" in
		"") ;;
		[[:space:]]*)
			set -- $line
			for f in "$@"; do echo "file $f"; done ;;
		*)
			set -- $line
			echo "patch $1" ;;
		esac
	done
}

commit_step() {
	local patch=$1 parent=$2 info msg tree ret
	shift 2
	local mail=$REPO/patches/$patch

	[ -f "$mail" ] || die "patches/series names $patch, which does not exist"
	info=$(mktemp) msg=$(mktemp)
	# shellcheck disable=SC2064
	trap "rm -f '$info' '$msg' '$msg.diff'" RETURN
	git mailinfo -u "$msg" "$msg.diff" < "$mail" > "$info" ||
		die "patches/$patch: not a mail-formatted patch"
	local author email subject date
	author=$(sed -n 's/^Author: //p' "$info")
	email=$(sed -n 's/^Email: //p' "$info")
	subject=$(sed -n 's/^Subject: //p' "$info")
	date=$(sed -n 's/^Date: //p' "$info")
	[ -n "$author" ] && [ -n "$subject" ] && [ -n "$date" ] ||
		die "patches/$patch: needs From:, Date: and Subject: headers"

	if [ -s "$msg.diff" ]; then
		if ! ret=$(git_tree apply --cached --whitespace=error-all \
				"$msg.diff" 2>&1); then
			echo "$ret" >&2
			die "patches/$patch does not apply on top of the base and the steps before it (see the file and hunk above)"
		fi
	fi
	local f blob mode
	for f in "$@"; do
		[ -f "$REPO/$f" ] || die "patches/series: $patch adds $f, which is missing"
		if git_tree cat-file -e "$parent:$f" 2>/dev/null; then
			die "patches/series: $patch adds $f, which already exists (change it with a patch)"
		fi
		blob=$(git_tree hash-object -w "$REPO/$f")
		mode=100644
		[ -x "$REPO/$f" ] && mode=100755
		git_tree update-index --add --cacheinfo "$mode,$blob,$f"
	done
	tree=$(git_tree write-tree)
	{ echo "$subject"; echo; cat "$msg"; } |
		GIT_AUTHOR_NAME=$author GIT_AUTHOR_EMAIL=$email \
		GIT_AUTHOR_DATE=$date GIT_COMMITTER_NAME=$author \
		GIT_COMMITTER_EMAIL=$email GIT_COMMITTER_DATE=$date \
		git_tree commit-tree "$tree" -p "$parent" -F -
}

build_series() {
	local head patch files=() line kind arg steps=0

	head=$(git_tree rev-parse "$BASE_TAG^{commit}")
	GIT_INDEX_FILE=$(git_tree rev-parse --absolute-git-dir)/dma-dirty-index
	export GIT_INDEX_FILE
	git_tree read-tree "$head"
	patch=
	while read -r kind arg; do
		if [ "$kind" = patch ]; then
			if [ -n "$patch" ]; then
				head=$(commit_step "$patch" "$head" "${files[@]}")
				steps=$((steps + 1))
			fi
			patch=$arg
			files=()
		else
			[ -n "$patch" ] || die "patches/series: file $arg before any patch"
			files+=("$arg")
		fi
	done < <(parse_series)
	if [ -n "$patch" ]; then
		head=$(commit_step "$patch" "$head" "${files[@]}")
		steps=$((steps + 1))
	fi
	rm -f "$GIT_INDEX_FILE"
	unset GIT_INDEX_FILE
	echo "$head $steps"
}

if [ -d "$TREE/.git" ]; then
	want=$(base_source)
	have=$(cat "$TREE/.git/dma-dirty-source" 2>/dev/null || echo unknown)
	[ "$want" = "$have" ] ||
		die "$TREE was assembled from $have, not $want; run 'make distclean' first"
else
	create_base
fi

read -r new steps < <(build_series)
old=$(git_tree rev-parse -q --verify HEAD || true)
if [ "$new" = "$old" ]; then
	say "series unchanged: Linux $(make -s -C "$TREE" kernelversion) from $(cat "$TREE/.git/dma-dirty-source") + $steps steps"
	exit 0
fi
if [ -n "$(git_tree status --porcelain --untracked-files=no)" ]; then
	git_tree status --short --untracked-files=no | head -20 >&2
	die "$TREE has local edits (above); carry them into patches/ or the new files, or discard them with 'git -C $TREE reset --hard'"
fi
git_tree update-ref "refs/heads/$BRANCH" "$new"
git_tree symbolic-ref HEAD "refs/heads/$BRANCH"
git_tree reset -q --hard "$new"
say "tree at $(git_tree rev-parse --short HEAD): Linux $(make -s -C "$TREE" kernelversion) from $(cat "$TREE/.git/dma-dirty-source") + $steps steps"
