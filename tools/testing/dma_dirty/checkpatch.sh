#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Run scripts/checkpatch.pl --strict on every exported patch and fail on
# any report that patches/checkpatch-exceptions does not justify.
#
# checkpatch.pl must do its job for a patch to pass: an exit status above 1
# (a crash), anything on stderr, an exit status of 1 with no report on
# stdout, or one that disagrees with the reports, is a failure, and so is
# an empty list of patches.  A patch with a known report is checked first,
# so a checkpatch.pl that reports nothing at all fails too.
#
# An exception excuses a report only when all of it matches: the type, the
# file (or, for a report about a whole patch, the patch's name), the
# message, and the first line of code the report quotes ("-" when it
# quotes none).  A new report of the same type in the same file is not
# excused, and an exception that excused nothing fails, so none outlives
# the code it was written for.
#
# usage: checkpatch.sh TREE EXCEPTIONS PATCH...

set -uo pipefail

TREE=$1 EXC=$2
shift 2
CHECKPATCH=${CHECKPATCH:-$TREE/scripts/checkpatch.pl}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT

if [ $# -eq 0 ]; then
	echo "checkpatch: FAIL no patch to check (run make series)"
	exit 1
fi

# checkpatch PATCH: runs checkpatch.pl, leaves stdout in $tmp/out; fails
# when checkpatch.pl itself did not work.
checkpatch() {
	local rc
	"$CHECKPATCH" --strict --no-tree --show-types --no-summary -q "$1" \
		> "$tmp/out" 2> "$tmp/err"
	rc=$?
	if [ $rc -gt 1 ] || [ -s "$tmp/err" ]; then
		echo "checkpatch: FAIL $(basename "$1"): $CHECKPATCH exited with $rc$([ -s "$tmp/err" ] && echo ", stderr:")"
		sed 's/^/  | /' "$tmp/err" | head -20
		return 1
	fi
	if [ $rc -eq 1 ] && ! grep -qE '^(ERROR|WARNING|CHECK):' "$tmp/out"; then
		echo "checkpatch: FAIL $(basename "$1"): $CHECKPATCH exited with 1 but printed no report"
		sed 's/^/  | /' "$tmp/out" | head -20
		return 1
	fi
	if [ $rc -eq 0 ] && grep -qE '^(ERROR|WARNING|CHECK):' "$tmp/out"; then
		echo "checkpatch: FAIL $(basename "$1"): $CHECKPATCH printed reports but exited with 0"
		return 1
	fi
	return 0
}

# The canary: trailing whitespace must be reported.
printf '%s\n' 'From: Canary <canary@example.org>' 'Subject: [PATCH] canary' '' \
	'Canary.' '' 'Signed-off-by: Canary <canary@example.org>' '---' \
	'diff --git a/lib/canary.c b/lib/canary.c' '--- a/lib/canary.c' \
	'+++ b/lib/canary.c' '@@ -1,1 +1,2 @@' ' int a;' '+int b; ' \
	> "$tmp/canary.patch"
if ! checkpatch "$tmp/canary.patch" ||
   ! grep -q '^ERROR:TRAILING_WHITESPACE:' "$tmp/out"; then
	echo "checkpatch: FAIL $CHECKPATCH did not report the trailing whitespace of a test patch"
	exit 1
fi

# The exceptions that excused a report, one line number per report
: > "$tmp/used"
bad=0
for p in "$@"; do
	name=$(basename "$p")
	if [ ! -s "$p" ]; then
		echo "checkpatch: FAIL $name: missing or empty"
		bad=1
		continue
	fi
	if ! checkpatch "$p"; then
		bad=1
		continue
	fi
	out=$(cat "$tmp/out")
	left=0
	# Reports are blocks separated by blank lines; the first line is
	# "LEVEL:TYPE: message", a "#N: FILE: path:line" line may follow.
	while IFS= read -r -d $'\x1e' block; do
		[ -n "${block//[[:space:]]/}" ] || continue
		head=$(printf '%s\n' "$block" | grep -m1 -E '^(ERROR|WARNING|CHECK):')
		[ -n "$head" ] || continue
		type=$(echo "$head" | cut -d: -f2)
		msg=$(echo "$head" | cut -d: -f3- | sed 's/^ //')
		file=$(printf '%s\n' "$block" | sed -n 's/^#[0-9]*: FILE: \([^:]*\):.*/\1/p' | head -1)
		# runs of blanks as one space: the file is tab-separated
		code=$(printf '%s\n' "$block" | grep -m1 '^+' | tr -s ' \t' '  ' | sed 's/ $//' || true)
		code=${code:--}
		ok=0
		n=0
		while IFS=$'\t' read -r etype ewhere emsg ecode _ ||
		      [ -n "$etype" ]; do
			n=$((n + 1))
			case "$etype" in ''|'#'*) continue ;; esac
			[ "$etype" = "$type" ] && [ "$emsg" = "$msg" ] &&
				[ "$ecode" = "$code" ] || continue
			# shellcheck disable=SC2053
			if { [ -n "$file" ] && [ "$ewhere" = "$file" ]; } ||
			   { [ -z "$file" ] && [[ $name == $ewhere ]]; }; then
				ok=1
				echo "$n" >> "$tmp/used"
				break
			fi
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
# Exceptions that excused nothing: stale, or mistyped
n=0
while IFS=$'\t' read -r etype ewhere emsg _ || [ -n "$etype" ]; do
	n=$((n + 1))
	case "$etype" in ''|'#'*) continue ;; esac
	if ! grep -qx "$n" "$tmp/used"; then
		echo "checkpatch: FAIL $(basename "$EXC"):$n ($etype in $ewhere: $emsg) excused no report"
		bad=1
	fi
done < "$EXC"
exit $bad
