#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""dma-dirty test harness: boot the test kernel under QEMU and report.

  dma_dirty.py run --build build/     boot every configuration, run the
                                      tests, print one line per test
  dma_dirty.py parse LOG...           parse results logs already written
  dma_dirty.py configs                list the boot configurations

Logs go to BUILD/logs/: NAME.console.log (kernel log) and NAME.results.log
(what the guest's test runners printed).
"""

from __future__ import annotations

import argparse
import fnmatch
import os
import subprocess
import sys
from typing import List, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dma_dirty_kernel as kernel  # noqa: E402
import dma_dirty_parser as parser  # noqa: E402

SECTIONS = ('boot', 'kunit', 'kselftest')


def split_sections(lines: List[str]) -> Tuple[dict, bool]:
	"""Splits a results log into its sections; says if it reached "done"."""
	sections: dict = {}
	cur = None
	done = False
	for line in lines:
		s = line.rstrip('\r\n')
		if s.startswith('# dma-dirty: section '):
			cur = s.split()[-1]
			sections[cur] = []
		elif s == '# dma-dirty: done':
			done = True
			cur = None
		elif cur is not None:
			sections[cur].append(s)
	return sections, done


def results_of(prefix: str, path: str, counts: parser.Counts,
	       verbose_fail: bool = True) -> bool:
	"""Parses one results log and prints a line per test.

	Returns whether the guest reached the end of its runs, and how many
	tests each section reported.
	"""
	lines = []
	if os.path.exists(path):
		with open(path, errors='replace') as f:
			lines = f.read().splitlines()
	sections, done = split_sections(lines)
	ran = {}
	for name in SECTIONS:
		if name not in sections:
			continue
		root = parser.parse(sections[name])
		for full, res in root.leaves(prefix + name):
			ran[name] = ran.get(name, 0) + 1
			counts.add(res.status)
			if res.status == parser.Status.PASS:
				print('ok      %s' % full)
			elif res.status == parser.Status.SKIP:
				print('skip    %s # %s' % (full, res.reason))
			else:
				print('not ok  %s%s' % (full, ' # ' + res.reason
							if res.reason else ''))
				if verbose_fail:
					for l in res.log[-15:]:
						print('        | ' + l)
	return done, ran


def cmd_run(args) -> int:
	paths = kernel.Paths(os.path.abspath(args.build), args.variant)
	if not os.path.exists(paths.kernel):
		print('error: %s is missing: run "make kernel"' % paths.kernel)
		return 2
	version = kernel.qemu_version()
	if version is None:
		print('error: qemu-system-x86_64 not found: run "make deps"')
		return 2
	release = subprocess.run(
		['make', '-s', '-C', paths.tree, 'O=' + paths.obj,
		 'kernelrelease'], capture_output=True, text=True).stdout.strip()
	try:
		kernel.build_initramfs(paths, paths.initramfs)
	except kernel.SetupError as e:
		print('error: %s' % e)
		return 2
	configs = [c for c in kernel.BOOT_CONFIGS
		   if fnmatch.fnmatch(c.name, args.tests)]
	migrations = [m[0] for m in MIGRATIONS
		      if fnmatch.fnmatch(m[0], args.tests)]
	if not configs and not migrations:
		print('error: nothing matches %r (have: %s)' % (
			args.tests, ', '.join([c.name for c in kernel.BOOT_CONFIGS] +
					      [m[0] for m in MIGRATIONS])))
		return 2
	print('dma-dirty: kernel %s, QEMU %d.%d, accel %s, %d boot configurations, %d migration scenarios'
	      % (release, *version, args.accel, len(configs), len(migrations)))
	counts = parser.Counts()
	for cfg in configs:
		print('# boot %s: %s' % (cfg.name, cfg.description), flush=True)
		out = kernel.boot(cfg, paths.kernel, paths.initramfs, release,
				  paths.logs, args.accel, args.timeout)
		done, ran = results_of(cfg.name + ': ', out.results_log, counts)
		if cfg.kunit and done and not ran.get('kunit'):
			counts.add(parser.Status.FAIL)
			print('not ok  %s: kunit # no KUnit suite ran' % cfg.name)
		if out.problem or not done:
			counts.add(parser.Status.FAIL)
			why = out.problem or 'guest stopped before its tests finished'
			print('not ok  %s: boot # %s (%.0f s); last console lines (%s):'
			      % (cfg.name, why, out.seconds, out.console_log))
			for l in out.console_tail:
				print('        | ' + l)
		else:
			print('# boot %s: powered off after %.1f s; logs: %s' % (
				cfg.name, out.seconds, out.console_log), flush=True)
	run_migrations(paths, migrations, counts, version)
	print(counts.line())
	return 1 if counts.failed or not counts.passed else 0


MIGRATIONS = [
	('migrate-off', 'dma_mark_dirty=off: the hazard is real', 'off', 1),
	('migrate-auto', 'dma_mark_dirty=auto: nothing is lost', 'auto', 1),
	('migrate-soak', 'ten ping-pong migrations with traffic', 'auto', 10),
]


def check(counts: parser.Counts, name: str, ok: bool, detail: str) -> None:
	counts.add(parser.Status.PASS if ok else parser.Status.FAIL)
	print('%s%s # %s' % ('ok      ' if ok else 'not ok  ', name, detail))


def run_migrations(paths, names: List[str], counts: parser.Counts,
		   version: tuple) -> None:
	import dd_migrate
	import dd_qmp

	for name, desc, backend, nlegs in MIGRATIONS:
		if name not in names:
			continue
		print('# %s: %s' % (name, desc), flush=True)
		if version < (9, 0):
			check(counts, name, False,
			      'QEMU %d.%d loses guest CPU writes in TCG migration; need 9.0 or newer (make deps)'
			      % version)
			continue
		try:
			legs = dd_migrate.scenario(
				paths, backend, nlegs,
				log=lambda m: print(m, flush=True))
		except (dd_migrate.MigrationError, dd_qmp.QMPError) as e:
			check(counts, name, False, str(e))
			continue
		for i, leg in enumerate(legs):
			pre = name + ('.leg%d' % (i + 1) if nlegs > 1 else '')
			check(counts, pre + '.traffic_during_migration',
			      leg.received_during > 0,
			      '%d buffers received' % leg.received_during)
			check(counts, pre + '.buffers_verified', leg.verified > 0,
			      '%d kept buffers checked on the destination'
			      % leg.verified)
			if backend == 'off':
				check(counts, pre + '.corruption_without_tracking',
				      leg.corrupted > 0,
				      '%d of %d corrupted' % (leg.corrupted,
							      leg.verified))
			else:
				check(counts, pre + '.no_corruption',
				      leg.corrupted == 0,
				      '%d of %d corrupted' % (leg.corrupted,
							      leg.verified))


def cmd_parse(args) -> int:
	counts = parser.Counts()
	for path in args.logs:
		results_of(os.path.basename(path).split('.')[0] + ': ', path,
			   counts)
	print(counts.line())
	return 1 if counts.failed else 0


def cmd_configs(args) -> int:
	for c in kernel.BOOT_CONFIGS:
		print('%-10s %s' % (c.name, c.description))
		print('%-10s append: %s' % ('', ' '.join(c.append) or '-'))
		print('%-10s qemu:   %s' % ('', ' '.join(c.qemu) or '-'))
	return 0


def main(argv: List[str]) -> int:
	ap = argparse.ArgumentParser(description=__doc__,
				     formatter_class=argparse.RawDescriptionHelpFormatter)
	sub = ap.add_subparsers(dest='cmd', required=True)
	r = sub.add_parser('run', help='boot and run every test')
	r.add_argument('--build', default='build')
	r.add_argument('--accel', choices=('tcg', 'kvm'), default='tcg')
	r.add_argument('--tests', default='*',
		       help='glob of boot configurations to run')
	r.add_argument('--variant', default='',
		       help="build variant: '' or 'debug' (DEBUG=1)")
	r.add_argument('--timeout', type=int, default=600,
		       help='seconds before a guest counts as hung')
	r.set_defaults(func=cmd_run)
	p = sub.add_parser('parse', help='parse results logs')
	p.add_argument('logs', nargs='+')
	p.set_defaults(func=cmd_parse)
	c = sub.add_parser('configs', help='list boot configurations')
	c.set_defaults(func=cmd_configs)
	args = ap.parse_args(argv)
	return args.func(args)


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
