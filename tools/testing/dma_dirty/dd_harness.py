# SPDX-License-Identifier: GPL-2.0
"""What make test runs, and how each run's results are counted.

Three kinds of runs, each selected by name with --tests: boots of the test
kernel under QEMU (dma_dirty_kernel.BOOT_CONFIGS), judged by dd_judge.py;
nested guest runs (NESTED_BOOTS: the kvm-guest run of dd_kvm_guest.py);
migration scenarios (MIGRATIONS: dd_scenario.py, judged by dd_checks.py).
Every result is one line, "ok", "not ok" or "skip", and one count; the
last line is the totals.  An environment failure is retried once
(dd_errors.retried_once), a test failure never.
"""

from __future__ import annotations

import fnmatch
import os
import subprocess
from typing import Callable, Dict, List, NamedTuple, Optional, Tuple, TypeVar

import dd_kvm_guest
import dd_qmp
import dma_dirty_kernel as kernel
import dma_dirty_parser as parser
from dd_checks import leg_checks
from dd_errors import EnvironmentFailure, TestFailure, retried_once
from dd_judge import expected_results, judge, results_of, split_sections
from dd_scenario import (DIRTY_RING, Leg, Setup, expected_backend, nested,
			 scenario)

T = TypeVar('T')


class MigrationRun(NamedTuple):
	name: str
	description: str
	backend: str		# dma_mark_dirty=, or 'auto': none given
	legs: int
	iommu: bool		# behind intel-iommu
	where: str		# 'tcg', 'kvm' or 'kvm-ring'
	quiesce: str

	@property
	def expect(self) -> str:
		"""The backend the guests must run."""
		return expected_backend(self.backend, 'tcg' if self.where == 'tcg'
					else 'kvm')


# (name, description, dma_mark_dirty=, legs, behind intel-iommu, where,
# quiesce).  where: 'tcg', the guests under TCG on this machine; 'kvm', the
# test kernel booted under TCG as an L1 KVM host runs the same scenario
# with its guests under KVM, whose dirty bitmap is then what must see the
# pages; 'kvm-ring', the same with KVM's dirty ring.  quiesce: 'stop', a
# bit in the device's registers; 'unplug', the guest powers the device's
# slot off during pre-copy, and a new device is plugged on the destination
# (dd_scenario.QUIESCE_MODES).  Every leg also checks its control group
# (buffers the device writes and nothing reports): corrupted in every run,
# beside tracked buffers intact.
MIGRATIONS: List[MigrationRun] = [MigrationRun(*m) for m in [
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
	('migrate-kvm-auto', 'nested KVM, dirty bitmap, no dma_mark_dirty= (auto picks kvm: the default a user gets), hot-unplug',
	 'auto', 1, False, 'kvm', 'unplug'),
	('migrate-kvm-kvm-stop', 'nested KVM, dirty bitmap, dma_mark_dirty=kvm, stop-bit quiesce: the long-lived buffers are only synced for the CPU, never unmapped, during pre-copy',
	 'kvm', 1, False, 'kvm', 'stop'),
]]


# Guests booted inside an L1 (the test kernel as a KVM host under TCG) by
# dd_kvm_guest.py, with their results judged as a boot's.  kvm-guest: the
# L2, booted with no dma_mark_dirty= (auto, which must pick kvm), runs the
# kselftests twice, first while KVM does not log (nothing may be
# reported: the bypass), then while it logs (every report is a hypercall
# KVM counts).
NESTED_BOOTS = [
	kernel.BootConfig('kvm-guest', 'an L2 guest under nested KVM, -cpu host,migratable=off, no dma_mark_dirty=: auto picks kvm; its bypass and its reports',
			  expect={'backend': 'kvm', 'path': 'direct'}),
]


def log(line: str) -> None:
	print(line, flush=True)


class Report:
	"""Every result of make test: one line and one count each; the
	environment retries; the number of results the runs must give."""

	def __init__(self) -> None:
		self.counts = parser.Counts()
		self.expected = 0	# results the selected runs must give
		self.retries: List[str] = []
		self.note = ''		# the run being counted passed on a retry

	def check(self, name: str, ok: bool, detail: str) -> None:
		self.counts.add(parser.Status.PASS if ok else parser.Status.FAIL)
		print('%s%s # %s%s' % ('ok      ' if ok else 'not ok  ', name,
				       detail, self.note))

	def retried(self, name: str,
		    run: Callable[[], T]) -> Tuple[Optional[T], str]:
		"""@run(), retried once after an environment failure (not a
		result), saying so; never after a test failure.  Returns
		(result, '') or (None, why it failed); the checks of a result
		that came on the retry say so (self.note)."""
		attempts = []

		def counted() -> T:
			attempts.append(1)
			return run()

		self.note = ''
		try:
			result = retried_once(name, counted, log)
		except TestFailure as e:
			result, why = None, ('environment failure, not a test result: %s'
					     if isinstance(e, EnvironmentFailure)
					     else 'test failure: %s') % e
		except dd_qmp.QMPError as e:
			result, why = None, 'test failure: %s' % e
		else:
			why = ''
		if len(attempts) > 1:
			self.retries.append(name + (' (passed on the retry)'
						    if result is not None else
						    ' (failed on the retry too)'))
			if result is not None:
				self.note = ' (on the retry after an environment failure)'
		return result, why

	def finish(self) -> int:
		"""The last lines: the retries, the total if it is not what
		the runs must give, the counts; the exit status."""
		c = self.counts
		got = c.passed + c.failed + c.skipped
		if got != self.expected:
			self.note = ''
			self.check('results', False,
				   '%d results, the runs selected must give %d'
				   % (got, self.expected))
		else:
			print('# %d results, as many as the runs selected must give'
			      % got)
		print('# environment retries: %d%s' % (
			len(self.retries), ''.join(
				'\n#   ' + r for r in self.retries)))
		print(c.line())
		return 1 if c.failed or not c.passed else 0


def kvm_guest_results(expect: kernel.Expect) -> int:
	"""The results a complete kvm-guest run gives: its boot checks, its
	kselftests twice, done, powered_off and kvm_guest_checks()."""
	return len(expect.boot) + 2 * expected_results(
		kernel.Expect([], expect.kselftest)) + 2 + 2


def run_kvm_guest(paths: kernel.Paths, cfg: kernel.BootConfig, release: str,
		  report: Report, expect: kernel.Expect) -> None:
	print('# %s: %s' % (cfg.name, cfg.description), flush=True)
	out, why = report.retried(cfg.name, lambda: dd_kvm_guest.nested_kselftest(
		paths, release, log=log))
	if out is None:
		report.check(cfg.name, False, why)
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
			report.check(pre + part + full,
				     res.status == parser.Status.PASS,
				     res.reason or res.status.name.lower())
	report.check(pre + 'done', done,
		     'the L2 reached the end of its runs (%s)' % out['console_log'])
	report.check(pre + 'powered_off', out.get('powered_off', False),
		     'the L2 powered off within 120 s of KVM no longer logging (it waits for debugfs reporting to read 0)')
	for name, ok, detail in dd_kvm_guest.kvm_guest_checks(
			out, dd_kvm_guest.read_counters(lines)):
		report.check(pre + name, ok, detail)


def migration_results(m: MigrationRun) -> int:
	"""The results a complete run of @m gives: leg_checks() per leg."""
	probe = Leg(quiesce=m.quiesce,
		    ring_asked=DIRTY_RING if m.where == 'kvm-ring' else 0)
	return m.legs * len(leg_checks(probe, m.expect, m.iommu))


def run_migration(paths: kernel.Paths, m: MigrationRun) -> List[Leg]:
	label = m.name[len('migrate-'):]
	if m.where == 'tcg':
		return scenario(paths, Setup(m.backend, iommu=m.iommu,
					     label=label, quiesce=m.quiesce),
				m.legs, log=log)
	return nested(paths, m.backend, m.legs, log=log, label=label,
		      ring=DIRTY_RING if m.where == 'kvm-ring' else 0,
		      quiesce=m.quiesce)


def run_migrations(paths: kernel.Paths, runs: List[MigrationRun],
		   report: Report, version: Tuple[int, ...]) -> None:
	for m in runs:
		print('# %s: %s' % (m.name, m.description), flush=True)
		report.note = ''
		if version < (9, 0):
			report.check(m.name, False,
				     'QEMU %d.%d loses guest CPU writes in TCG migration; need 9.0 or newer (make deps)'
				     % version[:2])
			continue
		legs, why = report.retried(m.name,
					   lambda: run_migration(paths, m))
		if legs is None:
			report.check(m.name, False, why)
			continue
		if len(legs) != m.legs:
			report.check(m.name, False, '%d of %d legs ran'
				     % (len(legs), m.legs))
		for i, leg in enumerate(legs):
			pre = m.name + ('.leg%d' % (i + 1) if m.legs > 1 else '')
			for test, ok, detail in leg_checks(leg, m.expect,
							   m.iommu):
				report.check(pre + '.' + test, ok, detail)


def run_boots(paths: kernel.Paths, configs: List[kernel.BootConfig],
	      release: str, accel: str, timeout: int, report: Report,
	      kselftests: Dict[str, int], suites: Dict[str, int]) -> None:
	for cfg in configs:
		print('# boot %s: %s' % (cfg.name, cfg.description), flush=True)
		out = kernel.boot(cfg, paths.kernel, paths.initramfs, release,
				  paths.logs, accel, timeout)
		done, _ = results_of(cfg.name + ': ', out.results_log,
				     report.counts,
				     kernel.expectations(cfg, kselftests, suites))
		if out.problem or not done:
			report.counts.add(parser.Status.FAIL)
			why = out.problem or 'guest stopped before its tests finished'
			print('not ok  %s: boot # %s (%.0f s); last console lines (%s):'
			      % (cfg.name, why, out.seconds, out.console_log))
			for line in out.console_tail:
				print('        | ' + line)
		else:
			print('# boot %s: powered off after %.1f s; logs: %s' % (
				cfg.name, out.seconds, out.console_log), flush=True)


def selected(tests: str) -> Tuple[List[kernel.BootConfig],
				  List[kernel.BootConfig], List[MigrationRun]]:
	"""The boots, nested guest runs and migrations @tests names."""
	return ([c for c in kernel.BOOT_CONFIGS
		 if fnmatch.fnmatch(c.name, tests)],
		[c for c in NESTED_BOOTS if fnmatch.fnmatch(c.name, tests)],
		[m for m in MIGRATIONS if fnmatch.fnmatch(m.name, tests)])


def expected_total(configs: List[kernel.BootConfig],
		   guest_runs: List[kernel.BootConfig],
		   migrations: List[MigrationRun], kselftests: Dict[str, int],
		   suites: Dict[str, int]) -> int:
	"""How many results the selected runs must give, all complete."""
	return (sum(expected_results(kernel.expectations(c, kselftests,
							  suites))
		    for c in configs) +
		sum(kvm_guest_results(kernel.expectations(c, kselftests,
							  suites))
		    for c in guest_runs) +
		sum(migration_results(m) for m in migrations))


def run(build: str, variant: str, accel: str, tests: str,
	timeout: int) -> int:
	"""make test: every run @tests names; the exit status."""
	paths = kernel.Paths(build, variant)
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
	configs, guest_runs, migrations = selected(tests)
	if not configs and not migrations and not guest_runs:
		print('error: nothing matches %r (have: %s)' % (
			tests, ', '.join([c.name for c in kernel.BOOT_CONFIGS] +
					 [c.name for c in NESTED_BOOTS] +
					 [m.name for m in MIGRATIONS])))
		return 2
	kselftests: Dict[str, int] = {}
	suites: Dict[str, int] = {}
	try:
		if configs or guest_runs:
			# What every boot must report, from the built tests.
			kselftests = kernel.kselftest_counts(paths)
			suites = kernel.kunit_counts(paths)
			kernel.build_initramfs(paths, paths.initramfs, tests=True)
	except (kernel.SetupError, OSError, subprocess.SubprocessError) as e:
		print('error: %s' % e)
		return 2
	report = Report()
	report.expected = expected_total(configs, guest_runs, migrations,
					 kselftests, suites)
	print('dma-dirty: kernel %s, QEMU %d.%d, accel %s, %d boot configurations, %d nested guest runs, %d migration scenarios, %d results expected'
	      % (release, *version, accel, len(configs), len(guest_runs),
		 len(migrations), report.expected))
	if configs:
		print('# each boot must report: its boot checks; kselftests %s; KUnit %s where it runs'
		      % (', '.join('%s (%d tests)' % kv for kv in sorted(kselftests.items())),
			 ', '.join('%s (%d cases or more)' % kv for kv in sorted(suites.items()))))
	run_boots(paths, configs, release, accel, timeout, report, kselftests,
		  suites)
	for cfg in guest_runs:
		run_kvm_guest(paths, cfg, release, report,
			      kernel.expectations(cfg, kselftests, suites))
	run_migrations(paths, migrations, report, version)
	return report.finish()
