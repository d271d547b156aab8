#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests for the dma-dirty harness's own parsing."""

import ast
import contextlib
import io
import re
import os
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_judge  # noqa: E402
import dma_dirty_kernel as kernel  # noqa: E402
import dma_dirty_parser as parser  # noqa: E402
from dma_dirty_parser import Status  # noqa: E402

KUNIT = '''KTAP version 1
1..1
    KTAP version 1
    # Subtest: suite
    1..3
        KTAP version 1
        # Subtest: param_case
        ok 1 first
    # param_case: EXPECTATION FAILED at x.c:1
        not ok 2 second
    not ok 1 param_case
    ok 2 plain_case
    ok 3 skipped_case # SKIP needs two CPUs
not ok 1 suite
'''

KSELFTEST = '''TAP version 13
1..2
# timeout set to 300
# selftests: dir: prog
# TAP version 13
# 1..3
# # Starting 3 tests from 1 test cases.
# #  RUN           f.a ...
# ok 1 f.a
# not ok 2 f.b
# ok 3 f.c # SKIP no device
not ok 1 selftests: dir: prog # exit=1
# selftests: dir: script.sh
# # SKIP: module missing
ok 2 selftests: dir: script.sh # SKIP
'''


def leaves(text, prefix='x'):
	return {n: r.status for n, r in
		parser.parse(text.splitlines()).leaves(prefix)}


class ParserTest(unittest.TestCase):

	def test_kunit_nesting(self):
		got = leaves(KUNIT)
		self.assertEqual(got, {
			'x.suite.param_case.first': Status.PASS,
			'x.suite.param_case.second': Status.FAIL,
			'x.suite.plain_case': Status.PASS,
			'x.suite.skipped_case': Status.SKIP,
		})

	def test_failure_explanation_is_kept(self):
		root = parser.parse(KUNIT.splitlines())
		second = root.children[0].children[0].children[1]
		self.assertEqual(second.log,
				 ['# param_case: EXPECTATION FAILED at x.c:1'])

	def test_skip_reason(self):
		root = parser.parse(KUNIT.splitlines())
		case = root.children[0].children[2]
		self.assertEqual(case.reason, 'needs two CPUs')

	def test_kselftest_runner_prefix(self):
		got = leaves(KSELFTEST)
		self.assertEqual(got, {
			'x.dir:prog.f.a': Status.PASS,
			'x.dir:prog.f.b': Status.FAIL,
			'x.dir:prog.f.c': Status.SKIP,
			'x.dir:script.sh': Status.SKIP,
		})

	def test_incomplete_plan_fails(self):
		got = leaves('TAP version 13\n1..3\nok 1 a\nok 2 b\n')
		self.assertEqual(got['x.<plan>'], Status.FAIL)
		self.assertEqual(got['x.a'], Status.PASS)

	def test_failed_parent_with_passing_children_fails(self):
		text = ('TAP version 13\n1..1\n# TAP version 13\n# 1..1\n'
			'# ok 1 only\nnot ok 1 selftests: d: p # exit=139\n')
		got = leaves(text)
		self.assertEqual(got['x.d:p.only'],
				 Status.PASS)
		self.assertEqual(got['x.d:p.<exit>'], Status.FAIL)

	def test_comment_is_the_reason(self):
		root = parser.parse(['TAP version 13', '1..1',
				     'not ok 1 selftests: d: p # exit=1'])
		self.assertEqual(root.children[0].reason, 'exit=1')

	def test_empty_document_counts_nothing(self):
		self.assertEqual(leaves('KTAP version 1\n1..0\n'), {})

	def test_xfail_and_todo_are_not_passes(self):
		for line in ('not ok 1 a # XFAIL known', 'not ok 1 a # TODO later',
			     'ok 1 a # TODO later'):
			got = leaves('TAP version 13\n1..1\n%s\n' % line)
			self.assertEqual(got, {'x.a': Status.FAIL}, line)

	def test_duplicate_cannot_stand_in_for_a_missing_result(self):
		got = leaves('TAP version 13\n1..2\nok 1 a\nok 1 a\n')
		self.assertEqual(got['x.<numbering>'], Status.FAIL)
		got = leaves('TAP version 13\n1..2\nok 1 a\nok 2 a\n')
		self.assertEqual(got['x.<numbering>'], Status.FAIL)
		got = leaves('TAP version 13\n1..2\nok 1 a\nok 3 c\n')
		self.assertEqual(got['x.<numbering>'], Status.FAIL)
		got = leaves('TAP version 13\n1..2\nok 1 a\nok 2 b\n')
		self.assertNotIn('x.<numbering>', got)


class SplatTest(unittest.TestCase):

	def test_stalls_and_hangs_are_splats(self):
		for line in ('rcu: INFO: rcu_preempt self-detected stall on CPU',
			     'rcu: INFO: rcu_sched detected stalls on CPUs/tasks:',
			     'watchdog: BUG: soft lockup - CPU#0 stuck for 26s!',
			     'INFO: task kworker/0:1:12 blocked for more than 122 seconds.',
			     'Kernel panic - not syncing: Attempted to kill init!',
			     'KFENCE: out-of-bounds read in f+0x1/0x2'):
			self.assertTrue(kernel.console_splat(['x', line]), line)

	def test_a_splat_is_never_an_environment_failure(self):
		import dd_nested
		import dd_vm
		from dd_errors import EnvironmentFailure, TestFailure
		with tempfile.TemporaryDirectory() as d:
			console = os.path.join(d, 'console.log')
			with open(console, 'w') as f:
				f.write('booting\nrcu: INFO: rcu_sched self-detected stall on CPU\n')
			e = dd_nested.l1_failure(console, 'the L1 ended without a result')
			self.assertIs(type(e), TestFailure)
			self.assertIn('self-detected stall', str(e))
			g = dd_vm.Guest('src0', None, None, '', '', console)  # type: ignore[arg-type]
			self.assertIs(type(g.not_a_result('hang')), TestFailure)
			with self.assertRaises(TestFailure):
				g.check_console()
			with open(console, 'w') as f:
				f.write('booting\n')
			self.assertIs(type(dd_nested.l1_failure(console, 'gone')),
				      EnvironmentFailure)
			self.assertIs(type(g.not_a_result('hang')),
				      EnvironmentFailure)
			g.check_console()

	def test_warning_is_a_splat(self):
		lines = ['[ 1.0] ok', '[ 2.0] WARNING: CPU: 0 PID: 1 at x.c:1 f+0x1/0x2']
		self.assertIn('WARNING:', kernel.console_splat(lines))

	def test_lockdep_is_a_splat(self):
		self.assertTrue(kernel.console_splat(
			['WARNING: possible circular locking dependency detected']))

	def test_dma_api_debug_banner_is_not(self):
		self.assertEqual(kernel.console_splat(
			['[ 1.7] DMA-API: preallocated 65536 debug entries',
			 '[ 1.7] DMA-API: debugging enabled by kernel config']), '')


class SectionsTest(unittest.TestCase):

	def test_sections_and_done(self):
		lines = ['junk', '# dma-dirty: section boot', 'ok 1 a',
			 '# dma-dirty: section kunit', 'KTAP version 1',
			 '# dma-dirty: done']
		sections, done = dd_judge.split_sections(lines)
		self.assertTrue(done)
		self.assertEqual(sections['boot'], ['ok 1 a'])
		self.assertEqual(sections['kunit'], ['KTAP version 1'])

	def test_guest_that_died_is_not_done(self):
		_, done = dd_judge.split_sections(
			['# dma-dirty: section boot', 'ok 1 a'])
		self.assertFalse(done)


def harness_listing(fixtures):
	"""A "-l" listing as kselftest_harness.h prints it."""
	out = ['%-20s %-25s %s' % ('# FIXTURE', 'VARIANT', 'TEST')]
	for i, (fixture, variants, tests) in enumerate(fixtures):
		if i:
			out.append('-' * 80)
		for row in range(max(len(variants), len(tests))):
			out.append('%-20s %-25s %s' % (
				fixture if row == 0 else '',
				variants[row] if row < len(variants) else '',
				tests[row] if row < len(tests) else ''))
	return '\n'.join(out) + '\n'


class ExpectationsTest(unittest.TestCase):

	def test_harness_count_variants_times_tests(self):
		listing = harness_listing([
			('tdd', ['from_device', 'bidirectional', 'to_device'],
			 ['t%d' % i for i in range(15)]),
			('plain', [], ['a', 'b']),
			('one', ['v1', 'v2', 'v3', 'v4'], ['x'])])
		self.assertEqual(kernel.harness_test_count(listing),
				 3 * 15 + 2 + 4)

	def test_harness_count_refuses_what_it_cannot_read(self):
		with self.assertRaises(kernel.SetupError):
			kernel.harness_test_count('Usage: x [-h|-l]\n')
		with self.assertRaises(kernel.SetupError):
			kernel.harness_test_count(harness_listing(
				[('a_fixture_name_too_long', ['v'], ['t'])]))

	def test_kunit_cases_counted_per_suite(self):
		src = '''
static struct kunit_case one_cases[] = {
	KUNIT_CASE_PARAM(a, a_gen_params),
	KUNIT_CASE(b),
	KUNIT_CASE_SLOW(c),
	{}
};
static struct kunit_case two_cases[] = {
	KUNIT_CASE(d),
	{}
};
static struct kunit_suite one = {
	.name = "dma_mark_dirty",
	.test_cases = one_cases,
};
static struct kunit_suite two = {
	.name = "dma_mark_dirty_hooks",
	.init = x,
	.test_cases = two_cases,
};
kunit_test_suites(&one, &two);
'''
		self.assertEqual(kernel.kunit_suites(src),
				 {'dma_mark_dirty': 3, 'dma_mark_dirty_hooks': 1})

	def test_kunit_count_of_the_tree(self):
		# The repository's source, as the assembled tree has it.
		top = os.path.join(os.path.dirname(os.path.abspath(__file__)),
				   '..', '..', '..')
		with open(os.path.join(top, 'kernel', 'dma',
				       'dirty_kunit.c')) as f:
			suites = kernel.kunit_suites(f.read())
		self.assertGreater(suites.get(kernel.KUNIT_SUITE, 0), 0)

	def test_initramfs_without_tests_is_an_error(self):
		with tempfile.TemporaryDirectory() as d:
			paths = kernel.Paths(d)
			# Modules installed, but not the test driver.
			rel = os.path.join(paths.modules, 'lib', 'modules', 'r')
			os.makedirs(rel)
			open(os.path.join(rel, 'modules.dep'), 'w').close()
			with self.assertRaises(kernel.SetupError) as e:
				kernel.build_initramfs(paths, os.path.join(d, 'i.gz'),
						       tests=True)
			self.assertIn('make kselftests', str(e.exception))
			self.assertIn('test_dma_dirty.ko', str(e.exception))

	def test_boot_configs_follow_auto_off(self):
		names = {c.name: c for c in kernel.BOOT_CONFIGS}
		for c in kernel.BOOT_CONFIGS:
			params = [a for a in c.append
				  if a.startswith('dma_mark_dirty=')]
			self.assertNotIn('dma_mark_dirty=kvm', params)
			if c.expect.get('backend') == 'touch':
				self.assertEqual(params, ['dma_mark_dirty=touch'],
						 c.name)
		self.assertEqual(names['default'].expect,
				 {'backend': 'off', 'path': 'off'})
		self.assertFalse([a for a in names['default'].append
				  if a.startswith('dma_mark_dirty=')])
		self.assertEqual(names['default'].cpu_flags, '')
		self.assertEqual(names['baremetal'].expect['backend'], 'off')
		self.assertTrue(names['baremetal'].expect['dmesg'].startswith(
			'dma_mark_dirty=bogus:+no+such+backend'))


KSFT_PROG = 'dma_dirty:test_dma_dirty.sh'


def boot_log(boot=None, kunit=None, kselftest=None, done=True):
	"""A results log as guest/init writes it; None leaves a section out."""
	out = []
	for name, body in (('boot', boot), ('kunit', kunit),
			   ('kselftest', kselftest)):
		if body is not None:
			out.append('# dma-dirty: section ' + name)
			out += body.splitlines()
	if done:
		out.append('# dma-dirty: done')
	return out


def boot_section(names):
	return '\n'.join(['TAP version 13', '1..%d' % len(names)] +
			 ['ok %d %s' % (i + 1, n) for i, n in enumerate(names)])


def kunit_section(cases, plan=None, suite='dma_mark_dirty'):
	"""@cases: names, or (name, number of parameters)."""
	plan = len(cases) if plan is None else plan
	out = ['KTAP version 1', '1..1', '    KTAP version 1',
	       '    # Subtest: ' + suite, '    1..%d' % plan]
	for i, c in enumerate(cases):
		if isinstance(c, tuple):
			c, params = c
			out += ['        KTAP version 1', '        # Subtest: ' + c]
			out += ['        ok %d param-%d' % (j + 1, j)
				for j in range(params)]
		out.append('    ok %d %s' % (i + 1, c))
	return '\n'.join(out + ['ok 1 ' + suite])


def kselftest_section(tests, plan=None):
	plan = len(tests) if plan is None else plan
	out = ['TAP version 13', '1..1',
	       '# selftests: dma_dirty: test_dma_dirty.sh',
	       '# TAP version 13', '# 1..%d' % plan]
	for i, t in enumerate(tests):
		out.append('# ok %d %s' % (i + 1, t))
	out.append('ok 1 selftests: dma_dirty: test_dma_dirty.sh')
	return '\n'.join(out)


SKIPPED_SCRIPT = '''TAP version 13
1..1
# selftests: dma_dirty: test_dma_dirty.sh
# # SKIP: cannot load test_dma_dirty (CONFIG_TEST_DMA_DIRTY=m)
ok 1 selftests: dma_dirty: test_dma_dirty.sh # SKIP
'''

TESTS = ['tdd.from_device.a', 'tdd.to_device.a',
	 'tdd.to_device.path_matches_boot # SKIP nothing is marked for DMA_TO_DEVICE']


class JudgeTest(unittest.TestCase):
	"""A boot that tested less than it must is a failure."""

	cfg = [c for c in kernel.BOOT_CONFIGS if c.kunit][0]

	def setUp(self):
		# One allowed skip, as an entry of ALLOWED_SKIPS would be.
		self.saved = dd_judge.ALLOWED_SKIPS[:]
		dd_judge.ALLOWED_SKIPS[:] = [(
			'kselftest.dma_dirty:test_dma_dirty.sh.tdd.to_device.path_matches_boot',
			'nothing is marked for DMA_TO_DEVICE',
			'a reason why this skip leaves no hole in the run')]

	def tearDown(self):
		dd_judge.ALLOWED_SKIPS[:] = self.saved

	def expect(self, ksft=3, kunit=2):
		e = kernel.expectations(self.cfg, {KSFT_PROG: ksft},
					{'dma_mark_dirty': kunit})
		e.kunit_params = {'dma_mark_dirty.b': 3}
		return e

	def judge(self, lines, expect):
		sections, _ = dd_judge.split_sections(lines)
		return {n: r for n, r in dd_judge.judge(sections, expect)}

	def failures(self, lines, expect=None):
		expect = self.expect() if expect is None else expect
		return sorted(n for n, r in self.judge(lines, expect).items()
			      if r.status == Status.FAIL)

	def good(self, **kw):
		parts = dict(boot=boot_section(kernel.boot_checks(self.cfg)),
			     kunit=kunit_section(['a', ('b', 3)]),
			     kselftest=kselftest_section(TESTS))
		parts.update(kw)
		return boot_log(**parts)

	def test_complete_boot_passes(self):
		got = self.judge(self.good(), self.expect())
		self.assertFalse([n for n, r in got.items()
				  if r.status == Status.FAIL])
		skipped = [n for n, r in got.items() if r.status == Status.SKIP]
		self.assertEqual(skipped, ['kselftest.%s.tdd.to_device.path_matches_boot'
					   % KSFT_PROG])

	def test_kunit_parameters_are_counted(self):
		self.assertEqual(self.failures(self.good(
			kunit=kunit_section(['a', ('b', 2)]))),
			['kunit.dma_mark_dirty.b.<count>'])
		self.assertEqual(self.failures(self.good(
			kunit=kunit_section([('a', 1), ('b', 3)]))),
			['kunit.dma_mark_dirty.a.<count>'])
		self.assertEqual(self.failures(self.good(
			kunit=kunit_section(['a', ('c', 2)]))),
			['kunit.dma_mark_dirty.b', 'kunit.dma_mark_dirty.c.<count>'])

	def test_every_parameterised_case_has_a_count(self):
		with open(os.path.join(HERE, '..', '..', '..', 'kernel', 'dma',
				       'dirty_kunit.c')) as f:
			src = f.read()
		cases = re.findall(r'KUNIT_CASE_PARAM\s*\(\s*(\w+)', src)
		self.assertTrue(cases)
		self.assertEqual(sorted('%s.%s' % (kernel.KUNIT_SUITE, c)
					for c in cases),
				 sorted(kernel.KUNIT_PARAMS))

	def test_whole_script_skip_fails(self):
		self.assertEqual(self.failures(self.good(kselftest=SKIPPED_SCRIPT)),
				 ['kselftest.' + KSFT_PROG,
				  'kselftest.%s.<count>' % KSFT_PROG])

	def test_empty_kselftest_plan_fails(self):
		got = self.failures(self.good(
			kselftest='TAP version 13\n1..0 # SKIP no kselftests installed\n'))
		self.assertIn('kselftest.<plan>', got)
		self.assertIn('kselftest.' + KSFT_PROG, got)

	def test_missing_sections_fail(self):
		self.assertEqual(self.failures(self.good(kselftest=None)),
				 ['kselftest'])
		self.assertEqual(self.failures(self.good(boot=None)), ['boot'])
		self.assertEqual(self.failures(self.good(kunit=None)), ['kunit'])
		# Without expectations (parse), boot and kselftest still must be.
		sections, _ = dd_judge.split_sections(boot_log())
		self.assertEqual(sorted(n for n, _ in dd_judge.judge(sections)),
				 ['boot', 'kselftest'])

	def test_kunit_not_required_where_it_does_not_run(self):
		cfg = [c for c in kernel.BOOT_CONFIGS if not c.kunit][0]
		expect = kernel.expectations(cfg, {KSFT_PROG: 3},
					     {'dma_mark_dirty': 2})
		lines = boot_log(boot=boot_section(kernel.boot_checks(cfg)),
				 kselftest=kselftest_section(TESTS))
		self.assertEqual(self.failures(lines, expect), [])

	def test_fewer_kselftests_than_built_fail(self):
		# The binary planned and ran 3, but the one built has 4.
		self.assertEqual(self.failures(self.good(), self.expect(ksft=4)),
				 ['kselftest.%s.<count>' % KSFT_PROG])
		# Stopped after 2 of 3.
		got = self.failures(self.good(
			kselftest=kselftest_section(TESTS[:2], plan=3)))
		self.assertIn('kselftest.%s.<count>' % KSFT_PROG, got)

	def test_kunit_suite_must_run_with_its_cases(self):
		self.assertEqual(self.failures(self.good(
			kunit='KTAP version 1\n1..0\n')),
			['kunit.<plan>', 'kunit.dma_mark_dirty'])
		self.assertEqual(self.failures(self.good(
			kunit=kunit_section(['a', 'b'], suite='other'))),
			['kunit.dma_mark_dirty'])
		# A suite with fewer cases than its source.
		self.assertEqual(self.failures(self.good(), self.expect(kunit=3)),
				 ['kunit.dma_mark_dirty.<count>'])
		self.assertEqual(self.failures(self.good(
			kunit=kunit_section([], plan=0))),
			['kunit.dma_mark_dirty.<count>',
			 'kunit.dma_mark_dirty.<plan>'])

	def test_missing_boot_check_fails(self):
		names = kernel.boot_checks(self.cfg)
		self.assertIn('backend_write', names)
		got = self.failures(self.good(boot=boot_section(
			[n for n in names if n != 'backend_write'])))
		self.assertEqual(got, ['boot.backend_write'])

	def test_skip_not_on_the_list_fails(self):
		tests = TESTS[:2] + ['tdd.to_device.path_matches_boot # SKIP DMA_DIRTY_EXPECT_PATH is not set']
		got = self.judge(self.good(kselftest=kselftest_section(tests)),
				 self.expect())
		res = got['kselftest.%s.tdd.to_device.path_matches_boot'
			  % KSFT_PROG]
		self.assertEqual(res.status, Status.FAIL)
		self.assertIn('DMA_DIRTY_EXPECT_PATH is not set', res.reason)
		tests = TESTS[:2] + ['tdd.from_device.path_matches_boot # SKIP nothing is marked for DMA_TO_DEVICE']
		self.assertIn('kselftest.%s.tdd.from_device.path_matches_boot'
			      % KSFT_PROG, self.failures(
				      self.good(kselftest=kselftest_section(tests))))

	def test_allowed_skips_say_why(self):
		for name, reason, why in self.saved:
			self.assertTrue(name and reason and len(why) > 20)
		self.assertLessEqual(len(self.saved), 5)

	def test_no_skip_allowed_today(self):
		dd_judge.ALLOWED_SKIPS[:] = self.saved
		self.assertIn('kselftest.%s.tdd.to_device.path_matches_boot'
			      % KSFT_PROG, self.failures(self.good()))

	def test_expected_results_are_what_a_complete_boot_gives(self):
		got = self.judge(self.good(), self.expect())
		self.assertEqual(len(got), dd_judge.expected_results(self.expect()))
		# one parameter missing: one result fewer, and a <count> failure
		got = self.judge(self.good(kunit=kunit_section(['a', ('b', 2)])),
				 self.expect())
		self.assertEqual(len(got), dd_judge.expected_results(self.expect()))

	def test_results_log_counts(self):
		with tempfile.TemporaryDirectory() as d:
			path = os.path.join(d, 'plain.results.log')
			with open(path, 'w') as f:
				f.write('\n'.join(self.good(
					kselftest=SKIPPED_SCRIPT)) + '\n')
			counts = parser.Counts()
			with contextlib.redirect_stdout(io.StringIO()) as out:
				done, _ = dd_judge.results_of('plain: ', path,
							       counts,
							       self.expect())
			self.assertTrue(done)
			self.assertEqual((counts.failed, counts.skipped), (2, 0))
			self.assertIn('not ok  plain: kselftest.%s # skipped'
				      % KSFT_PROG, out.getvalue())


HERE = os.path.dirname(os.path.abspath(__file__))

# A checkpatch.pl stand-in: reports the canary's trailing whitespace as
# the real one does, and does to the patch under test what MODE says.
FAKE_CHECKPATCH = '''#!/bin/sh
for a; do :; done
if grep -q '^+int b; $' "$a"; then
	printf 'ERROR:TRAILING_WHITESPACE: trailing whitespace\\n#1: FILE: lib/canary.c:2:\\n\\n'
	exit 1
fi
case "$MODE" in
clean) exit 0 ;;
report) printf 'WARNING:LONG_LINE: line too long\\n#5: FILE: a.c:1:\\n\\n'; exit 1 ;;
crash) echo 'Undefined subroutine &main::x called' >&2; exit 255 ;;
stderr) echo 'ERROR:SPACING: on stderr only' >&2; exit 1 ;;
silent) exit 1 ;;
big) exit 2 ;;
esac
'''


def run(cmd, env=None, **kw):
	return subprocess.run(cmd, capture_output=True, text=True,
			      env=dict(os.environ, **(env or {})), **kw)


class GateTest(unittest.TestCase):
	"""checkpatch.sh and series.sh, with stand-ins for what they call."""

	def setUp(self):
		self.tmp = tempfile.mkdtemp()
		self.addCleanup(shutil.rmtree, self.tmp)

	def checkpatch(self, mode, patches=1, exceptions=()):
		fake = os.path.join(self.tmp, 'checkpatch.pl')
		with open(fake, 'w') as f:
			f.write(FAKE_CHECKPATCH)
		os.chmod(fake, 0o755)
		exc = os.path.join(self.tmp, 'exceptions')
		with open(exc, 'w') as f:
			f.write('# a comment\n')
			f.writelines('\t'.join(e) + '\n' for e in exceptions)
		files = []
		for i in range(patches):
			files.append(os.path.join(self.tmp, '%04d-x.patch' % (i + 1)))
			with open(files[-1], 'w') as f:
				f.write('Subject: [PATCH] x\n')
		return run(['bash', os.path.join(HERE, 'checkpatch.sh'), self.tmp,
			    exc, *files], env={'CHECKPATCH': fake, 'MODE': mode})

	def test_checkpatch_clean_passes(self):
		self.assertEqual(self.checkpatch('clean').returncode, 0)

	def test_checkpatch_report_fails(self):
		r = self.checkpatch('report')
		self.assertEqual(r.returncode, 1)
		self.assertIn('WARNING:LONG_LINE', r.stdout)

	def test_exception_matches_the_whole_report(self):
		ok = ('LONG_LINE', 'a.c', 'line too long', '-', 'why')
		self.assertEqual(self.checkpatch('report', exceptions=[ok])
				 .returncode, 0)
		for bad in (('LONG_LINE', 'a.c', 'line too long!', '-', 'why'),
			    ('LONG_LINE', 'b.c', 'line too long', '-', 'why'),
			    ('LONG_LINE', 'a.c', 'line too long', '+x', 'why'),
			    ('SPACING', 'a.c', 'line too long', '-', 'why')):
			r = self.checkpatch('report', exceptions=[bad])
			self.assertEqual(r.returncode, 1, bad)
			self.assertIn('WARNING:LONG_LINE', r.stdout, bad)
			self.assertIn('excused no report', r.stdout, bad)

	def test_stale_exception_fails(self):
		r = self.checkpatch('clean', exceptions=[
			('LONG_LINE', 'a.c', 'line too long', '-', 'why')])
		self.assertEqual(r.returncode, 1)
		self.assertIn('exceptions:2 (LONG_LINE in a.c: line too long) excused no report',
			      r.stdout)

	def test_checkpatch_that_did_not_work_fails(self):
		for mode, says in (('crash', 'exited with 255'),
				   ('stderr', 'on stderr only'),
				   ('silent', 'printed no report'),
				   ('big', 'exited with 2')):
			r = self.checkpatch(mode)
			self.assertEqual(r.returncode, 1, mode)
			self.assertIn(says, r.stdout, mode)

	def test_checkpatch_that_reports_nothing_fails(self):
		with open(os.path.join(self.tmp, 'checkpatch.pl'), 'w') as f:
			f.write('#!/bin/sh\nexit 0\n')
		os.chmod(os.path.join(self.tmp, 'checkpatch.pl'), 0o755)
		r = run(['bash', os.path.join(HERE, 'checkpatch.sh'), self.tmp,
			 '/dev/null', '/dev/null'],
			env={'CHECKPATCH': os.path.join(self.tmp, 'checkpatch.pl')})
		self.assertEqual(r.returncode, 1)
		self.assertIn('did not report the trailing whitespace', r.stdout)

	def test_checkpatch_without_patches_fails(self):
		r = self.checkpatch('clean', patches=0)
		self.assertEqual(r.returncode, 1)
		self.assertIn('no patch to check', r.stdout)

	def git(self, repo, *args, env=None):
		r = run(['git', '-C', repo, *args], env=env)
		self.assertEqual(r.returncode, 0, r.stderr)
		return r.stdout

	def series(self, name, email):
		env = {'HOME': self.tmp, 'GIT_CONFIG_NOSYSTEM': '1',
		       'XDG_CONFIG_HOME': self.tmp}
		tree, top = os.path.join(self.tmp, 'tree'), os.path.join(self.tmp, 'top')
		for d in (tree, top):
			self.git(self.tmp, 'init', '-q', d, env=env)
		self.git(tree, 'config', 'user.name', 'Tree Assembler', env=env)
		self.git(tree, 'config', 'user.email', 'tree@example.org', env=env)
		with open(os.path.join(tree, 'a'), 'w') as f:
			f.write('a\n')
		self.git(tree, 'add', 'a', env=env)
		self.git(tree, 'commit', '-q', '-m', 'base', env=env)
		self.git(tree, 'tag', 'dma-dirty-base', env=env)
		with open(os.path.join(tree, 'a'), 'w') as f:
			f.write('b\n')
		self.git(tree, 'commit', '-q', '-a', '-m',
			 'a: change\n\nWhy.\n\nCo-developed-by: C <c@example.org>\n'
			 'Signed-off-by: C <c@example.org>\n'
			 'Signed-off-by: Patch Author <author@example.org>',
			 '--author', 'Patch Author <author@example.org>', env=env)
		if name:
			self.git(top, 'config', 'user.name', name, env=env)
			self.git(top, 'config', 'user.email', email, env=env)
		cover = os.path.join(self.tmp, 'cover.txt')
		with open(cover, 'w') as f:
			f.write('the subject\n\nthe blurb\n')
		out = os.path.join(self.tmp, 'out')
		return out, run(['bash', os.path.join(HERE, 'series.sh'), tree,
				 out, cover, '2', top], env=env)

	def test_series_is_from_and_signed_by_the_sender(self):
		out, r = self.series('Sender Name', 'sender@example.org')
		self.assertEqual(r.returncode, 0, r.stderr)
		files = sorted(os.listdir(out))
		self.assertEqual(files, ['v2-0000-cover-letter.patch',
					 'v2-0001-a-change.patch'])
		with open(os.path.join(out, files[1])) as f:
			patch = f.read()
		self.assertIn('\nFrom: Sender Name <sender@example.org>\n', patch)
		self.assertIn('Subject: [RFC PATCH v2 1/1] a: change', patch)
		self.assertNotIn('author@example.org', patch)
		self.assertIn('Signed-off-by: C <c@example.org>\n'
			      'Signed-off-by: Sender Name <sender@example.org>\n---\n',
			      patch)
		with open(os.path.join(out, files[0])) as f:
			cover = f.read()
		self.assertIn('\nFrom: Sender Name <sender@example.org>\n', cover)
		self.assertIn('the blurb', cover)

	def test_series_without_identity_fails(self):
		_, r = self.series('', '')
		self.assertEqual(r.returncode, 1)
		self.assertIn('user.name and user.email must be set', r.stderr)


class ScaleTest(unittest.TestCase):
	"""make bench's scaling runs: what the page computes."""

	@staticmethod
	def point(name, sent, written=0, seconds=5.0, converged=True,
		  pages=16):
		return {'name': name, 'buf_pages': pages, 'sim_rate': 512,
			'converged': converged, 'pages_sent': sent,
			'device_pages': written, 'migration_s': seconds,
			'passes': 3, 'downtime_ms': 10, 'hypercalls': -1}

	def test_extra_pages_against_the_idle_migration(self):
		import dd_bench_migration
		rows = dd_bench_migration.scale_rows([
			self.point('idle', 1000, seconds=5.0),
			self.point('idle', 500, seconds=4.0, pages=1),
			self.point('touch', 3000, 4000, seconds=10.0),
			self.point('kvm', 9000, 6000, seconds=30.0,
				   converged=False),
			self.point('touch', 800, 100, pages=1)])
		# against the idle migration with the same buffer size
		self.assertEqual([r['extra'] for r in rows], [2000, 8000, 300])
		self.assertEqual(rows[0]['extra_per_written'], 0.5)
		self.assertEqual(rows[0]['time_ratio'], 2.0)
		self.assertEqual(rows[0]['rate'], 400.0)
		self.assertEqual([r['converged'] for r in rows],
				 [True, False, True])

	def test_where_convergence_stops(self):
		import dd_bench_migration
		rows = [{'backend': 'touch', 'pages': 16, 'converged': c,
			 'rate': r} for c, r in ((True, 120.0), (True, 500.0),
						 (False, 1000.0), (False, 4000.0))]
		rows.append({'backend': 'kvm', 'pages': 1, 'converged': False,
			     'rate': 60.0})
		self.assertEqual(dd_bench_migration.convergence_lines(rows), [
			'- kvm, 1-page buffers: never converged; did not '
			'converge from 60 pages/s.',
			'- touch, 16-page buffers: converged with the device '
			'writing up to 500 pages/s; did not converge from 1000 '
			'pages/s.'])

	def test_no_idle_migration_is_an_error(self):
		import dd_bench_migration
		with self.assertRaisesRegex(dd_bench_migration.BenchError, 'device idle'):
			dd_bench_migration.scale_rows([self.point('touch', 3000, 4000)])
		with self.assertRaisesRegex(dd_bench_migration.BenchError, '1-page'):
			dd_bench_migration.scale_rows([self.point('idle', 1000),
					     self.point('touch', 800, 100,
							pages=1)])
		with self.assertRaisesRegex(dd_bench_migration.BenchError, 'device idle'):
			dd_bench_migration.scale_rows([self.point('idle', 1000,
							converged=False),
					     self.point('touch', 3000, 4000)])



class LegChecksTest(unittest.TestCase):
	"""dd_checks.leg_checks(): what a leg must show."""

	@staticmethod
	def leg(backend='touch', quiesce='unplug', before=100, after=150,
		**kw):
		import dd_scenario
		pages = {'tracked': 192, 'long': 64, 'control': 64}
		counters = {'backend': backend, 'calls_direct': '400',
			    'calls_iommu': '0'}
		leg = dd_scenario.Leg(
			received_during=500, pool=dict(pages),
			cls_received={'tracked': 300, 'long': 100, 'control': 100},
			cls_verified=dict(pages),
			cls_corrupted={'tracked': 0 if backend != 'off' else 9,
				       'long': 0 if backend != 'off' else 3,
				       'control': 20},
			counters=dict(counters, pages_direct=str(before)),
			counters_after=dict(counters, pages_direct=str(after)),
			quiesce=quiesce, replug_received=60)
		if backend == 'off':
			leg.counters = dict(leg.counters or {}, calls_direct='0')
		for k, v in kw.items():
			setattr(leg, k, v)
		return leg

	@staticmethod
	def failed(leg, backend):
		import dd_checks
		return [n for n, ok, _ in dd_checks.leg_checks(leg, backend)
			if not ok]

	def test_a_good_leg_passes(self):
		self.assertEqual(self.failed(self.leg(), 'touch'), [])
		self.assertEqual(self.failed(self.leg(quiesce='stop'), 'touch'), [])

	def test_destination_must_report_after_the_replug(self):
		self.assertEqual(self.failed(self.leg(after=100), 'touch'),
				 ['destination_reported'])
		self.assertEqual(self.failed(self.leg(counters_after=None),
					     'touch'),
				 ['destination_reported'])
		self.assertEqual(self.failed(self.leg('off', before=0, after=0),
					     'off'), [])
		self.assertEqual(self.failed(self.leg('off', before=0, after=5),
					     'off'), ['destination_reported'])

	def kvm_leg(self, **kw):
		# 100 pages reported on the source during migration, 50 on the
		# destination after the replug: KVM counted both.
		args = dict(host_pages_start=0, host_pages_src=100,
			    host_pages_dst=50, reregistered=True)
		args.update(kw)
		return self.leg('kvm', before=100, after=150, **args)

	def test_kvm_counts_both_ends(self):
		self.assertEqual(self.failed(self.kvm_leg(), 'kvm'), [])
		self.assertEqual(self.failed(self.kvm_leg(host_pages_dst=0),
					     'kvm'),
				 ['kvm_reports_counted', 'kvm_destination_reports'])
		self.assertEqual(self.failed(self.kvm_leg(reregistered=False),
					     'kvm'), ['kvm_destination_reports'])
		self.assertEqual(self.failed(self.kvm_leg(host_pages_start=3,
							  host_pages_src=103),
					     'kvm'),
				 ['kvm_no_report_before_migration'])
		self.assertEqual(self.failed(self.kvm_leg(touched_instead=1),
					     'kvm'), ['kvm_no_touch_fallback'])

	def test_a_later_leg_is_judged_on_its_own(self):
		# Leg 2 of a ping-pong (make soak): the guest had reported 150
		# pages, KVM had counted 50 on this source VM, before it.
		leg = self.leg('kvm', quiesce='stop', before=250, after=250,
			       host_pages_start=50, host_pages_src=150,
			       host_pages_dst=0, reported_before=150,
			       host_pages_before=50)
		self.assertEqual(self.failed(leg, 'kvm'), [])
		leg.host_pages_start = 53
		self.assertEqual(self.failed(leg, 'kvm'),
				 ['kvm_no_report_before_migration',
				  'kvm_reports_counted'])


class ReportTest(unittest.TestCase):
	"""dd_harness.Report: retries, their note, the expected total."""

	def run_report(self, outcomes, expected=1):
		"""A run whose attempts end as @outcomes say ('env', 'fail' or
		'ok'), its results checked; (report, exit status, output)."""
		import dd_harness
		from dd_errors import EnvironmentFailure, TestFailure
		report = dd_harness.Report()
		report.expected = expected
		left = list(outcomes)

		def run():
			o = left.pop(0)
			if o == 'env':
				raise EnvironmentFailure('QEMU did not start')
			if o == 'fail':
				raise TestFailure('a buffer arrived corrupted')
			return 'legs'

		with contextlib.redirect_stdout(io.StringIO()) as out:
			result, why = report.retried('migrate-x', run)
			if result is None:
				report.check('migrate-x', False, why)
			else:
				report.check('migrate-x.intact', True, 'intact')
			rc = report.finish()
		return report, rc, out.getvalue(), left

	def test_pass_on_retry_says_so(self):
		report, rc, out, left = self.run_report(['env', 'ok'])
		self.assertEqual((rc, left), (0, []))
		self.assertIn('ok      migrate-x.intact # intact (on the retry after an environment failure)', out)
		self.assertIn('# environment retries: 1\n#   migrate-x (passed on the retry)', out)
		self.assertTrue(out.endswith('1 passed, 0 failed, 0 skipped\n'))

	def test_one_retry_at_most(self):
		report, rc, out, left = self.run_report(['env', 'env', 'ok'])
		self.assertEqual((rc, left), (1, ['ok']))
		self.assertIn('not ok  migrate-x # environment failure', out)
		self.assertIn('migrate-x (failed on the retry too)', out)

	def test_test_failure_is_not_retried(self):
		report, rc, out, left = self.run_report(['fail', 'ok'])
		self.assertEqual((rc, left), (1, ['ok']))
		self.assertIn('# environment retries: 0', out)
		self.assertNotIn('on the retry', out)

	def test_fewer_results_than_expected_fail(self):
		report, rc, out, _ = self.run_report(['ok'], expected=2)
		self.assertEqual(rc, 1)
		self.assertIn('not ok  results # 1 results, the runs selected must give 2', out)
		report, rc, out, _ = self.run_report(['ok'], expected=1)
		self.assertEqual(rc, 0)

	def test_migration_results_do_not_depend_on_the_values(self):
		import dd_checks
		import dd_harness
		for m in dd_harness.MIGRATIONS:
			leg = dd_harness.Leg(
				quiesce=m.quiesce, counters={'backend': m.backend},
				ring_asked=4096 if m.where == 'kvm-ring' else 0,
				ring_used=4096, replug_received=60,
				cls_corrupted={'tracked': 0}, host_pages_src=5)
			n = len(dd_checks.leg_checks(leg, m.expect, m.iommu))
			self.assertEqual(dd_harness.migration_results(m),
					 n * m.legs, m.name)


class SimRateTest(unittest.TestCase):
	"""dd_sim --rate, on a register file and a RAM file with no guest."""

	build: str
	sim: str

	@classmethod
	def setUpClass(cls):
		cls.build = tempfile.mkdtemp()
		cls.sim = os.path.join(cls.build, 'dd_sim')
		src = os.path.join(HERE, 'sim', 'dd_sim.c')
		r = subprocess.run(['gcc', '-O2', '-o', cls.sim, src],
				   capture_output=True, text=True)
		if r.returncode:
			raise AssertionError('dd_sim does not build: %s' % r.stderr)

	@classmethod
	def tearDownClass(cls):
		shutil.rmtree(cls.build)

	def setUp(self):
		self.tmp = tempfile.mkdtemp()

	def tearDown(self):
		shutil.rmtree(self.tmp)

	def test_bad_rate_is_refused(self):
		for bad in ('x', '-1', '12pages', '2000000'):
			r = subprocess.run([self.sim, '--rate', bad, '--ram', '/x',
					    '--bar', '/y'], capture_output=True,
					   text=True)
			self.assertEqual(r.returncode, 2, bad)
			self.assertIn('bad --rate %s' % bad, r.stderr)

	def posted(self, rate, pages):
		"""@pages descriptors of one page each through dd_sim --rate
		@rate; returns the seconds until all were done."""
		import dd_device
		import struct
		import time
		layout = dd_device.read_layout(self.sim)
		ram = os.path.join(self.tmp, 'ram')
		bar = os.path.join(self.tmp, 'bar')
		for f, size in ((ram, pages * 4096), (bar, 1 << 20)):
			with open(f, 'wb') as fh:
				fh.truncate(size)
		regs = dd_device.Regs(bar, layout)
		ring = layout['size'][0] - 64 * 32	# DD_SIM_RING dd_desc
		proc = subprocess.Popen([self.sim, '--ram', ram, '--bar', bar,
					 '--poll-us', '100', '--rate', str(rate)],
					stderr=subprocess.DEVNULL)
		try:
			deadline = time.monotonic() + 10
			while regs.get('magic') != layout['DD_SIM_MAGIC'][0]:
				self.assertLess(time.monotonic(), deadline)
				time.sleep(0.01)
			with open(bar, 'r+b') as fh:
				for i in range(pages):
					fh.seek(ring + 32 * i)
					fh.write(struct.pack('<QQIIII', i * 4096,
							     i * 4096, 4096, i + 1,
							     0, 1))
			t0 = time.monotonic()
			regs.set('prod', pages)
			while regs.get('cons') != pages:
				self.assertLess(time.monotonic(), t0 + 10)
				time.sleep(0.001)
			seconds = time.monotonic() - t0
		finally:
			proc.terminate()
			proc.wait()
			regs.close()
		with open(ram, 'rb') as fh:
			first = struct.unpack('<I', fh.read(4))[0]
		self.assertNotEqual(first, 0, 'dd_sim wrote nothing')
		return seconds

	def test_rate_paces_the_device(self):
		# 48 pages at 256 pages/s: 0.19 s, of which 10 ms may be
		# credit; unpaced, the same in a few milliseconds.
		self.assertGreater(self.posted(256, 48), 0.15)
		self.assertLess(self.posted(0, 48), 0.15)


class LayoutTest(unittest.TestCase):
	"""The test bed's Python stays navigable: no import cycle among its
	modules, no class over 250 lines, no function over 80 lines unless
	LONG_FUNCTIONS says why."""

	MAX_CLASS = 250
	MAX_FUNCTION = 80
	# (module, function): why it may be longer than MAX_FUNCTION.
	LONG_FUNCTIONS: dict = {}

	@staticmethod
	def modules():
		out = {}
		for name in sorted(os.listdir(HERE)):
			if name.endswith('.py'):
				with open(os.path.join(HERE, name)) as f:
					out[name[:-3]] = ast.parse(f.read(), name)
		return out

	@staticmethod
	def imports(tree, local):
		deps = set()
		for node in ast.walk(tree):
			if isinstance(node, ast.Import):
				deps |= {a.name for a in node.names
					 if a.name in local}
			elif isinstance(node, ast.ImportFrom) and \
					node.module and node.module in local:
				deps.add(node.module)
		return deps

	@staticmethod
	def cycle(graph):
		"""A list of modules that import each other in a ring, or []."""
		state = {}

		def visit(m, path):
			state[m] = 'open'
			for d in sorted(graph[m]):
				if state.get(d) == 'open':
					return path[path.index(d):] + [d]
				if d not in state:
					found = visit(d, path + [d])
					if found:
						return found
			state[m] = 'done'
			return []

		for m in sorted(graph):
			if m not in state:
				found = visit(m, [m])
				if found:
					return found
		return []

	def test_cycle_finder_finds_a_ring(self):
		self.assertEqual(self.cycle({'a': {'b'}, 'b': {'c'}, 'c': {'a'}}),
				 ['a', 'b', 'c', 'a'])
		self.assertEqual(self.cycle({'a': {'b'}, 'b': set()}), [])

	def test_no_import_cycle(self):
		mods = self.modules()
		graph = {m: self.imports(t, mods) for m, t in mods.items()}
		self.assertEqual(self.cycle(graph), [])

	def test_sizes(self):
		long = []
		for m, tree in self.modules().items():
			for node in ast.walk(tree):
				end = getattr(node, 'end_lineno', None)
				n = end - node.lineno + 1 if end else 0
				if isinstance(node, ast.ClassDef) and \
						n > self.MAX_CLASS:
					long.append('class %s.%s: %d lines'
						    % (m, node.name, n))
				elif isinstance(node, ast.FunctionDef) and \
						n > self.MAX_FUNCTION and \
						(m, node.name) not in self.LONG_FUNCTIONS:
					long.append('%s.%s(): %d lines'
						    % (m, node.name, n))
		self.assertEqual(long, [])


if __name__ == '__main__':
	unittest.main()
