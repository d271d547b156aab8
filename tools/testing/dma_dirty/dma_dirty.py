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
from typing import List, Optional, Tuple

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dma_dirty_kernel as kernel  # noqa: E402
import dma_dirty_parser as parser  # noqa: E402

SECTIONS = ('boot', 'kunit', 'kselftest')

# The only skips a complete run may report: (test name, a glob without the
# boot's prefix; the reason it gives, a prefix; why that is no hole).  Any
# other skip fails.  None is allowed today: every boot sets what
# path_matches_boot needs, DMA_TO_DEVICE is checked (no counter moves)
# instead of skipped, KUnit runs in a boot with two CPUs and the touch
# backend on x86, which has hardware breakpoints.
ALLOWED_SKIPS: List[Tuple[str, str, str]] = [
]


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


def allowed_skip(name: str, reason: str) -> bool:
	"""Whether ALLOWED_SKIPS names this skip (@name without the boot)."""
	return any(fnmatch.fnmatchcase(name, n) and reason.startswith(r)
		   for n, r, _ in ALLOWED_SKIPS)


def _fail(name: str, why: str) -> Tuple[str, parser.TestResult]:
	return name, parser.TestResult(name, parser.Status.FAIL, why)


def _nodes(node: parser.TestResult, full: str):
	yield full, node
	for c in node.children:
		yield from _nodes(c, full + '.' + c.name)


def _fewer(section: str, root: parser.TestResult,
	   expect: kernel.Expect) -> List[Tuple[str, parser.TestResult]]:
	"""Failures for what @expect says @section must hold and it lacks."""
	out = []
	have = {c.name: c for c in root.children}
	if section == 'boot':
		for name in expect.boot:
			if name not in have:
				out.append(_fail('boot.' + name,
						 'boot check did not report'))
	elif section == 'kselftest':
		for prog, n in sorted(expect.kselftest.items()):
			node = have.get(prog)
			full = 'kselftest.' + prog
			if node is None:
				out.append(_fail(full, 'program did not run'))
			elif n == 0:
				# No subtests: its own result is the test.
				pass
			elif len(node.children) < n or node.planned != n:
				out.append(_fail(full + '.<count>',
					'%d of its %d tests reported (plan: %s)'
					% (len(node.children), n,
					   node.planned if node.planned is not None
					   else 'none')))
	elif section == 'kunit':
		for suite, least in sorted(expect.kunit.items()):
			node = have.get(suite)
			full = 'kunit.' + suite
			if node is None:
				out.append(_fail(full, 'suite did not run'))
			elif not node.planned or node.planned < least:
				out.append(_fail(full + '.<count>',
					'plan of %s cases, the source has %d'
					% (node.planned, least)))
	return out


def judge(sections: dict, expect: Optional[kernel.Expect] = None
	  ) -> List[Tuple[str, parser.TestResult]]:
	"""Every result of one boot, by name, with the completeness rules.

	A boot that tested less than it must fails: a section missing (boot
	and kselftest always; kunit when @expect names suites), a plan of
	1..0 or none at all, fewer boot checks, kselftests or KUnit cases
	than @expect, and a skip that ALLOWED_SKIPS does not name.
	"""
	out: List[Tuple[str, parser.TestResult]] = []
	required = {'boot', 'kselftest'}
	if expect is not None and expect.kunit:
		required.add('kunit')
	for section in SECTIONS:
		if section not in sections:
			if section in required:
				out.append(_fail(section, 'section missing: the guest did not run it'))
			continue
		root = parser.parse(sections[section])
		if root.planned is None:
			out.append(_fail(section + '.<plan>', 'no plan line'))
		for full, node in _nodes(root, section):
			if node.planned == 0:
				out.append(_fail(full + '.<plan>',
						 'empty plan (1..0): nothing ran'))
		for full, res in root.leaves(section):
			if res.status == parser.Status.SKIP and \
					not allowed_skip(full, res.reason):
				res = parser.TestResult(
					res.name, parser.Status.FAIL,
					'skipped (%s), not an allowed skip' %
					(res.reason or 'no reason given'),
					log=res.log)
			out.append((full, res))
		if expect is not None:
			out += _fewer(section, root, expect)
	return out


def results_of(prefix: str, path: str, counts: parser.Counts,
	       expect: Optional[kernel.Expect] = None,
	       verbose_fail: bool = True) -> Tuple[bool, dict]:
	"""Parses one results log and prints a line per test.

	Returns whether the guest reached the end of its runs, and how many
	tests each section reported.
	"""
	lines = []
	if os.path.exists(path):
		with open(path, errors='replace') as f:
			lines = f.read().splitlines()
	sections, done = split_sections(lines)
	ran: dict = {}
	for full, res in judge(sections, expect):
		section = full.split('.')[0]
		ran[section] = ran.get(section, 0) + 1
		counts.add(res.status)
		full = prefix + full
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
	configs = [c for c in kernel.BOOT_CONFIGS
		   if fnmatch.fnmatch(c.name, args.tests)]
	try:
		if configs:
			# What every boot must report, from the built tests.
			kselftests = kernel.kselftest_counts(paths)
			suites = kernel.kunit_counts(paths)
			kernel.build_initramfs(paths, paths.initramfs, tests=True)
	except (kernel.SetupError, OSError, subprocess.SubprocessError) as e:
		print('error: %s' % e)
		return 2
	migrations = [m[0] for m in MIGRATIONS
		      if fnmatch.fnmatch(m[0], args.tests)]
	guest_runs = [c for c in NESTED_BOOTS
		      if fnmatch.fnmatch(c.name, args.tests)]
	if guest_runs and not configs:
		try:
			kselftests = kernel.kselftest_counts(paths)
			suites = kernel.kunit_counts(paths)
			kernel.build_initramfs(paths, paths.initramfs, tests=True)
		except (kernel.SetupError, OSError,
			subprocess.SubprocessError) as e:
			print('error: %s' % e)
			return 2
	if not configs and not migrations and not guest_runs:
		print('error: nothing matches %r (have: %s)' % (
			args.tests, ', '.join([c.name for c in kernel.BOOT_CONFIGS] +
					      [c.name for c in NESTED_BOOTS] +
					      [m[0] for m in MIGRATIONS])))
		return 2
	print('dma-dirty: kernel %s, QEMU %d.%d, accel %s, %d boot configurations, %d nested guest runs, %d migration scenarios'
	      % (release, *version, args.accel, len(configs), len(guest_runs),
		 len(migrations)))
	if configs:
		print('# each boot must report: its boot checks; kselftests %s; KUnit %s where it runs'
		      % (', '.join('%s (%d tests)' % kv for kv in sorted(kselftests.items())),
			 ', '.join('%s (%d cases or more)' % kv for kv in sorted(suites.items()))))
	counts = parser.Counts()
	for cfg in configs:
		print('# boot %s: %s' % (cfg.name, cfg.description), flush=True)
		out = kernel.boot(cfg, paths.kernel, paths.initramfs, release,
				  paths.logs, args.accel, args.timeout)
		done, _ = results_of(cfg.name + ': ', out.results_log, counts,
				     kernel.expectations(cfg, kselftests, suites))
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
	for cfg in guest_runs:
		run_kvm_guest(paths, cfg, release, counts,
			      kernel.expectations(cfg, kselftests, suites))
	run_migrations(paths, migrations, counts, version)
	print(counts.line())
	return 1 if counts.failed or not counts.passed else 0


# (name, description, dma_mark_dirty=, legs, behind intel-iommu, where,
# quiesce).  where: 'tcg', the guests under TCG on this machine; 'kvm', the
# test kernel booted under TCG as an L1 KVM host runs the same scenario
# with its guests under KVM, whose dirty bitmap is then what must see the
# pages; 'kvm-ring', the same with KVM's dirty ring.  quiesce: 'stop', a
# bit in the device's registers; 'unplug', the guest powers the device's
# slot off during pre-copy, and a new device is plugged on the destination
# (dd_migrate.QUIESCE_MODES).  Every leg also checks its control group
# (buffers the device writes and nothing reports): corrupted in every run,
# beside tracked buffers intact.
MIGRATIONS = [
	('migrate-off', 'dma_mark_dirty=off: the hazard is real', 'off', 1,
	 False, 'tcg', 'stop'),
	('migrate-touch', 'dma_mark_dirty=touch through dma-direct: nothing tracked is lost',
	 'touch', 1, False, 'tcg', 'stop'),
	('migrate-viommu', 'dma_mark_dirty=touch through dma-iommu (intel-iommu): nothing tracked is lost',
	 'touch', 1, True, 'tcg', 'stop'),
	('migrate-soak', 'ten ping-pong migrations with traffic, touch', 'touch',
	 10, False, 'tcg', 'stop'),
	('migrate-unplug', 'touch, the device hot-unplugged during pre-copy, a new one plugged on the destination',
	 'touch', 1, False, 'tcg', 'unplug'),
	('migrate-kvm-off', 'nested KVM, dirty bitmap, dma_mark_dirty=off, hot-unplug: KVM misses the DMA too',
	 'off', 1, False, 'kvm', 'unplug'),
	('migrate-kvm-touch', 'nested KVM, dirty bitmap, dma_mark_dirty=touch, hot-unplug: KVM\'s write protection sees every touch',
	 'touch', 1, False, 'kvm', 'unplug'),
	('migrate-kvm-touch-ring', 'nested KVM, dirty ring, dma_mark_dirty=touch, hot-unplug',
	 'touch', 1, False, 'kvm-ring', 'unplug'),
	('migrate-kvm-off-ring', 'nested KVM, dirty ring, dma_mark_dirty=off, hot-unplug',
	 'off', 1, False, 'kvm-ring', 'unplug'),
	('migrate-kvm-kvm', 'nested KVM, dirty bitmap, dma_mark_dirty=kvm, hot-unplug: the paravirtual reports, counted by KVM, save the data',
	 'kvm', 1, False, 'kvm', 'unplug'),
	('migrate-kvm-kvm-ring', 'nested KVM, dirty ring, dma_mark_dirty=kvm, hot-unplug',
	 'kvm', 1, False, 'kvm-ring', 'unplug'),
	('migrate-kvm-touch-stop', 'nested KVM, dirty bitmap, dma_mark_dirty=touch, stop-bit quiesce',
	 'touch', 1, False, 'kvm', 'stop'),
]


def check(counts: parser.Counts, name: str, ok: bool, detail: str) -> None:
	counts.add(parser.Status.PASS if ok else parser.Status.FAIL)
	print('%s%s # %s' % ('ok      ' if ok else 'not ok  ', name, detail))


# Guests booted inside an L1 (the test kernel as a KVM host under TCG) by
# dd_migrate.py, with their results judged as a boot's.  kvm-guest: the L2
# runs the kselftests with dma_mark_dirty=kvm twice, first while KVM does
# not log (nothing may be reported: the bypass), then while it logs (every
# report is a hypercall KVM counts).
NESTED_BOOTS = [
	kernel.BootConfig('kvm-guest', 'an L2 guest under nested KVM, -cpu host,migratable=off: the kvm backend, its bypass and its reports',
			  expect={'backend': 'kvm', 'path': 'direct'}),
]

# The pages the guest reports (swiotlb slots are only counted).
REPORTED = ('pages_direct', 'pages_iommu', 'pages_caller')


def kvm_guest_checks(out: dict, counters: List[dict]) -> List[tuple]:
	"""(name, ok, detail): what the guest's counters and KVM's say.

	@counters: the guest's, before and after the kselftests while KVM did
	not log, and before and after them while it logged.  KVM's count of
	the pages the guest reported must be 0 and no hypercall made in the
	first run; in the second, what the guest counted less what the same
	kselftests counted in the first (runtime_switch reports through
	"touch" for a while, the same pages each run), and not 0.
	"""
	if len(counters) != 4:
		return [('counters', False, '%d of the 4 counters lines the L2 prints'
			 % len(counters))]
	c0, c1, c2, c3 = counters
	touch = sum(c1.get(k, 0) - c0.get(k, 0) for k in REPORTED)
	logging = sum(c3.get(k, 0) - c2.get(k, 0) for k in REPORTED)
	host_gated = out.get('host_pages_gated', -1)
	calls_gated = out.get('host_hypercalls_gated', -1)
	host = out.get('host_pages_logging', -1)
	return [
		('bypass_no_exit', host_gated == 0 and calls_gated == 0,
		 'while KVM did not log: KVM dma_dirty_pages %d, hypercalls %d (the kselftests\' own reports through touch: %d pages)'
		 % (host_gated, calls_gated, touch)),
		('reports_counted_by_kvm', logging - touch > 0 and
		 host == logging - touch,
		 'while KVM logged: the guest reported %d pages, %d of them through touch; KVM counted %d'
		 % (logging, touch, host)),
	]


def retried(name: str, run) -> Tuple[object, str]:
	"""@run(), retried once after an environment failure (not a result),
	saying so; never after a test failure.  Returns (result, '') or
	(None, why it failed)."""
	import dd_migrate
	import dd_qmp

	why = ''
	for attempt in (1, 2):
		try:
			return run(), ''
		except dd_migrate.EnvironmentFailure as e:
			why = 'environment failure, not a test result: %s' % e
			if attempt == 1:
				print('# %s: %s' % (name, why))
				print('# %s: retrying once after an environment failure'
				      % name, flush=True)
		except (dd_migrate.MigrationError, dd_qmp.QMPError) as e:
			return None, 'test failure: %s' % e
	return None, why


def run_kvm_guest(paths, cfg, release: str, counts: parser.Counts,
		  expect: kernel.Expect) -> None:
	import dd_migrate

	print('# %s: %s' % (cfg.name, cfg.description), flush=True)
	out, why = retried(cfg.name, lambda: dd_migrate.nested_kselftest(
		paths, release, log=lambda m: print(m, flush=True)))
	if out is None:
		check(counts, cfg.name, False, why)
		return
	with open(out['results_log'], errors='replace') as f:
		lines = f.read().splitlines()
	sections, done = split_sections(lines)
	pre = cfg.name + ': '
	for part, section in (('', 'kselftest'),
			      ('logging.', 'kselftest-logging')):
		one = {'boot': sections.get('boot', [])}
		if section in sections:
			one['kselftest'] = sections[section]
		for full, res in judge(one, expect):
			if part and not full.startswith('kselftest'):
				continue	# the boot checks, once
			check(counts, pre + part + full,
			      res.status == parser.Status.PASS,
			      res.reason or res.status.name.lower())
	check(counts, pre + 'done', done,
	      'the L2 reached the end of its runs (%s)' % out['console_log'])
	check(counts, pre + 'powered_off', out.get('powered_off', False),
	      'the L2 powered off within 120 s of KVM no longer logging (it waits for debugfs reporting to read 0)')
	for name, ok, detail in kvm_guest_checks(
			out, dd_migrate.read_counters(lines)):
		check(counts, pre + name, ok, detail)


def run_migrations(paths, names: List[str], counts: parser.Counts,
		   version: tuple) -> None:
	import dd_migrate

	for name, desc, backend, nlegs, iommu, where, quiesce in MIGRATIONS:
		if name not in names:
			continue
		print('# %s: %s' % (name, desc), flush=True)
		if version < (9, 0):
			check(counts, name, False,
			      'QEMU %d.%d loses guest CPU writes in TCG migration; need 9.0 or newer (make deps)'
			      % version)
			continue
		label = name[len('migrate-'):]

		def run(backend=backend, nlegs=nlegs, iommu=iommu, where=where,
			quiesce=quiesce, label=label):
			log = lambda m: print(m, flush=True)  # noqa: E731
			if where == 'tcg':
				return dd_migrate.scenario(
					paths, backend, nlegs, log=log, iommu=iommu,
					label=label, quiesce=quiesce)
			return dd_migrate.nested(
				paths, backend, nlegs, log=log, label=label,
				ring=dd_migrate.DIRTY_RING if where == 'kvm-ring' else 0,
				quiesce=quiesce)

		legs, why = retried(name, run)
		if legs is None:
			check(counts, name, False, why)
			continue
		if len(legs) != nlegs:
			check(counts, name, False, '%d of %d legs ran'
			      % (len(legs), nlegs))
		for i, leg in enumerate(legs):
			pre = name + ('.leg%d' % (i + 1) if nlegs > 1 else '')
			for test, ok, detail in dd_migrate.leg_checks(
					leg, backend, iommu):
				check(counts, pre + '.' + test, ok, detail)


def cmd_parse(args) -> int:
	counts = parser.Counts()
	kselftests = suites = None
	if args.build:
		paths = kernel.Paths(os.path.abspath(args.build), args.variant)
		try:
			kselftests = kernel.kselftest_counts(paths)
			suites = kernel.kunit_counts(paths)
		except (kernel.SetupError, OSError,
			subprocess.SubprocessError) as e:
			print('# no counts to hold the logs to: %s' % e)
	configs = {c.name: c for c in kernel.BOOT_CONFIGS}
	for path in args.logs:
		name = os.path.basename(path).split('.')[0]
		expect = None
		if name in configs and kselftests is not None:
			expect = kernel.expectations(configs[name], kselftests,
						     suites)
		results_of(name + ': ', path, counts, expect)
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
	p.add_argument('--build', default='',
		       help='hold each boot to the tests built there')
	p.add_argument('--variant', default='')
	p.set_defaults(func=cmd_parse)
	c = sub.add_parser('configs', help='list boot configurations')
	c.set_defaults(func=cmd_configs)
	args = ap.parse_args(argv)
	return args.func(args)


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
