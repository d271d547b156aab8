#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Install the host packages the test bed needs, naming each one, and make
# sure QEMU is new enough: QEMU before 9.0 loses guest CPU writes during TCG
# live migration ("physmem: Fix migration dirty bitmap coherency with TCG
# memory access"), so it comes from Debian's bookworm-backports (10.0).

set -euo pipefail

QEMU_MIN=9.0
PKGS=(build-essential bc bison flex libelf-dev libssl-dev ccache sparse
      busybox-static cpio xz-utils rsync kmod python3 linux-source-6.12
      python3-sphinx python3-sphinx-rtd-theme python3-yaml file mypy)
# "deps.sh bench": also what make bench plots with
[ "${1:-}" = bench ] && PKGS+=(gnuplot-nox)

die() { echo "deps: error: $*" >&2; exit 1; }

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "ok installed" ||
		missing+=("$p")
done

qemu_version() {
	qemu-system-x86_64 --version 2>/dev/null |
		sed -n 's/^QEMU emulator version \([0-9]*\.[0-9]*\).*/\1/p'
}

qemu_ok() {
	local v
	v=$(qemu_version)
	[ -n "$v" ] && [ "$(printf '%s\n%s\n' "$QEMU_MIN" "$v" | sort -V | head -1)" = "$QEMU_MIN" ]
}

need_qemu=0
qemu_ok || need_qemu=1

[ ${#missing[@]} -eq 0 ] && [ $need_qemu -eq 0 ] && exit 0

[ "$(id -u)" = 0 ] || die "missing: ${missing[*]} ${need_qemu:+qemu-system-x86>=$QEMU_MIN}; run 'make deps' as root"

export DEBIAN_FRONTEND=noninteractive
if [ $need_qemu -eq 1 ] &&
   ! grep -rqs "bookworm-backports" /etc/apt/sources.list /etc/apt/sources.list.d/; then
	echo "deps: adding Debian's bookworm-backports suite to apt's sources (QEMU >= $QEMU_MIN)"
	cat > /etc/apt/sources.list.d/dma-dirty-backports.sources <<EOS
Types: deb
URIs: http://deb.debian.org/debian
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
EOS
fi
echo "deps: apt-get update"
apt-get update -qq
if [ ${#missing[@]} -gt 0 ]; then
	echo "deps: installing ${missing[*]}"
	apt-get install -y -qq "${missing[@]}" > /dev/null
fi
if [ $need_qemu -eq 1 ]; then
	echo "deps: installing qemu-system-x86 from bookworm-backports (have: $(qemu_version || true))"
	apt-get install -y -qq -t bookworm-backports qemu-system-x86 > /dev/null
	qemu_ok || die "qemu-system-x86_64 is $(qemu_version), need >= $QEMU_MIN"
fi
echo "deps: all installed (QEMU $(qemu_version))"
