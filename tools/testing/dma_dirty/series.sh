#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Export the series from the assembled tree as mail-ready patches, with the
# cover letter kept in patches/cover-letter.txt (first line: subject).
#
# The person who runs this sends the series, so every exported patch and
# the cover letter are from them and every patch carries their
# Signed-off-by: the identity is "git config user.name" and "user.email"
# read in TOP (the repository, not the assembled tree, whose commits keep
# the authors of patches/*.patch).  Other Signed-off-by lines stay.
#
# usage: series.sh TREE OUTDIR COVER VERSION TOP

set -euo pipefail

TREE=$1 OUT=$(realpath -m "$2") COVER=$3 VERSION=$4 TOP=$5

name=$(git -C "$TOP" config user.name || true)
email=$(git -C "$TOP" config user.email || true)
if [ -z "$name" ] || [ -z "$email" ]; then
	echo "series: error: git config user.name and user.email must be set: the" >&2
	echo "series: series is exported as from, and signed off by, whoever runs" >&2
	echo "series: \"make series\" (git config --global user.name 'Your Name';" >&2
	echo "series: git config --global user.email you@example.org)" >&2
	exit 1
fi
case "$VERSION" in
[1-9]|[1-9][0-9]) ;;
*) echo "series: error: SERIES_VERSION=$VERSION is not a version number" >&2; exit 1 ;;
esac

rm -rf "$OUT"
git -C "$TREE" format-patch -q -o "$OUT" --cover-letter \
	--subject-prefix="RFC PATCH" -v"$VERSION" --base=dma-dirty-base \
	dma-dirty-base..HEAD
python3 - "$OUT" "$COVER" "$name" "$email" <<'PY'
import email.utils
import glob
import os
import re
import sys

out, text, name, addr = sys.argv[1:]
sender = email.utils.formataddr((name, addr))
signoff = 'Signed-off-by: %s <%s>' % (name, addr)


def rewrite(path, cover):
	with open(path, encoding='utf-8') as f:
		lines = f.read().split('\n')
	# Mail headers end at the first blank line; "From " is the mbox line.
	end = lines.index('')
	author = ''
	for i in range(1, end):
		if lines[i].startswith('From: '):
			value = lines[i][6:]
			# A folded (long or encoded) From: continues indented.
			while i + 1 < end and lines[i + 1][:1] in (' ', '\t'):
				value += lines[i + 1]
				del lines[i + 1]
				end -= 1
			author = email.utils.parseaddr(value)[1]
			lines[i] = 'From: ' + sender
			break
	else:
		sys.exit('series: %s has no From: header' % path)
	if not author:
		sys.exit('series: no address in the From: of %s' % path)
	if not signoff.isascii() and not any(
			l.lower().startswith('content-type:') for l in lines[:end]):
		lines[end:end] = ['MIME-Version: 1.0',
				  'Content-Type: text/plain; charset=UTF-8',
				  'Content-Transfer-Encoding: 8bit']
		end += 3
	if cover:
		return lines
	# The commit message ends at the first "---" line.
	try:
		sep = lines.index('---', end)
	except ValueError:
		sys.exit('series: %s has no "---" line' % path)
	body = [l for l in lines[end:sep]
		if not (l.startswith('Signed-off-by: ') and
			email.utils.parseaddr(l[15:])[1] in (author, addr))]
	while body and not body[-1].strip():
		body.pop()
	if not re.match(r'[A-Za-z-]+: ', body[-1]):
		body.append('')	# the first trailer: a blank line before
	body.append(signoff)
	return lines[:end] + body + lines[sep:]


cover = glob.glob(os.path.join(out, '*0000-cover-letter.patch'))
if len(cover) != 1:
	sys.exit('series: no cover letter in %s' % out)
patches = sorted(p for p in glob.glob(os.path.join(out, '*.patch'))
		 if p not in cover)
if not patches:
	sys.exit('series: no patch exported to %s' % out)
for p in patches:
	s = '\n'.join(rewrite(p, False))
	with open(p, 'w', encoding='utf-8') as f:
		f.write(s)

lines = open(text, encoding='utf-8').read().rstrip('\n').split('\n')
subject, blurb = lines[0], '\n'.join(lines[1:]).strip('\n')
s = '\n'.join(rewrite(cover[0], True))
for old, new in (('*** SUBJECT HERE ***', subject),
		 ('*** BLURB HERE ***', blurb)):
	if old not in s:
		sys.exit('series: %s not in the cover letter template' % old)
	s = s.replace(old, new)
with open(cover[0], 'w', encoding='utf-8') as f:
	f.write(s)
PY
n=$(ls "$OUT" | wc -l)
echo "series: $n files in $OUT (cover letter and $((n - 1)) patches, v$VERSION, from $name <$email>)"
