#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Unit tests for the dma-dirty harness's own parsing."""

import os
import sys
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dma_dirty  # noqa: E402
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

	def test_empty_document_counts_nothing(self):
		self.assertEqual(leaves('KTAP version 1\n1..0\n'), {})

	def test_xfail_counts_as_pass(self):
		got = leaves('TAP version 13\n1..1\nnot ok 1 a # XFAIL known\n')
		self.assertEqual(got, {'x.a': Status.PASS})


class SplatTest(unittest.TestCase):

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
		sections, done = dma_dirty.split_sections(lines)
		self.assertTrue(done)
		self.assertEqual(sections['boot'], ['ok 1 a'])
		self.assertEqual(sections['kunit'], ['KTAP version 1'])

	def test_guest_that_died_is_not_done(self):
		_, done = dma_dirty.split_sections(
			['# dma-dirty: section boot', 'ok 1 a'])
		self.assertFalse(done)


if __name__ == '__main__':
	unittest.main()
