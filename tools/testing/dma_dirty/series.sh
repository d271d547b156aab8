#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Export the series from the assembled tree as mail-ready patches, with the
# cover letter kept in patches/cover-letter.txt (first line: subject).
#
# usage: series.sh TREE OUTDIR COVER VERSION

set -euo pipefail

TREE=$1 OUT=$2 COVER=$3 VERSION=$4

rm -rf "$OUT"
git -C "$TREE" format-patch -q -o "$OUT" --cover-letter \
	--subject-prefix="RFC PATCH" -v"$VERSION" --base=dma-dirty-base \
	dma-dirty-base..HEAD
cover=$(ls "$OUT"/*0000-cover-letter.patch)
author=$(git -C "$TREE" log -1 --format='%an <%ae>' dma-dirty-base..HEAD)
python3 - "$cover" "$COVER" "$author" <<'PY'
import sys
cover, text, author = sys.argv[1:]
lines = open(text).read().rstrip('\n').split('\n')
subject, blurb = lines[0], '\n'.join(lines[1:]).strip('\n')
s = open(cover).read()
for old, new in (('*** SUBJECT HERE ***', subject),
                 ('*** BLURB HERE ***', blurb)):
    if old not in s:
        sys.exit('series: %s not in the cover letter template' % old)
    s = s.replace(old, new)
head, rest = s.split('\n', 1)
rest = '\n'.join('From: ' + author if l.startswith('From: ') else l
                 for l in rest.split('\n'))
open(cover, 'w').write(head + '\n' + rest)
PY
echo "series: $(ls "$OUT" | wc -l) files in $OUT (cover letter and $(($(ls "$OUT" | wc -l) - 1)) patches, v$VERSION)"
