# SPDX-License-Identifier: GPL-2.0
"""How one boot's results log is judged.

A results log (what the guest's test runners printed on its ttyS1) has
sections ("# dma-dirty: section NAME") of KTAP: boot checks, KUnit,
kselftests.  judge() gives every result by name, and fails what a
complete run must have shown and did not: a missing section, no plan or
an empty one, fewer tests than were built, a skip that ALLOWED_SKIPS does
not name.  results_of() prints a line per result and counts it.
"""

from __future__ import annotations

import fnmatch
import os
from typing import Dict, Iterator, List, Optional, Tuple

import dma_dirty_kernel as kernel
import dma_dirty_parser as parser

SECTIONS = ('boot', 'kunit', 'kselftest')

# The only skips a complete run may report: (test name, a glob without the
# boot's prefix; the reason it gives, a prefix; why that is no hole).  Any
# other skip fails.  None is allowed today: every boot sets what
# path_matches_boot needs, DMA_TO_DEVICE is checked (no counter moves)
# instead of skipped, KUnit runs in a boot with two CPUs and the touch
# backend on x86, which has hardware breakpoints.
ALLOWED_SKIPS: List[Tuple[str, str, str]] = [
]


def split_sections(lines: List[str]) -> Tuple[Dict[str, List[str]], bool]:
	"""Splits a results log into its sections; says if it reached "done"."""
	sections: Dict[str, List[str]] = {}
	cur: Optional[str] = None
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


def _nodes(node: parser.TestResult,
	   full: str) -> Iterator[Tuple[str, parser.TestResult]]:
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
			else:
				out += _params(full, node, expect)
	return out


def _params(full: str, suite: parser.TestResult,
	    expect: kernel.Expect) -> List[Tuple[str, parser.TestResult]]:
	"""Every parameterised case of @suite ran exactly its parameters:
	KTAP gives them no plan, expect.kunit_params does."""
	out = []
	for case in suite.children:
		key = '%s.%s' % (suite.name, case.name)
		n = expect.kunit_params.get(key)
		if n is None:
			if case.children:
				out.append(_fail('%s.%s.<count>' % (full, case.name),
						 'a parameterised case with no stated number of parameters (dma_dirty_kernel.KUNIT_PARAMS)'))
		elif len(case.children) != n:
			out.append(_fail('%s.%s.<count>' % (full, case.name),
					 '%d of its %d parameters reported'
					 % (len(case.children), n)))
	for key in expect.kunit_params:
		s, case_name = key.split('.', 1)
		if s == suite.name and case_name not in \
				{c.name for c in suite.children}:
			out.append(_fail('%s.%s' % (full, case_name),
					 'parameterised case did not run'))
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


def expected_results(expect: kernel.Expect) -> int:
	"""How many results judge() gives for a complete boot: each boot
	check, each kselftest (a program without subtests is one), each
	KUnit case, a parameterised one once per parameter."""
	kunit = 0
	for suite, cases in expect.kunit.items():
		params = [n for key, n in expect.kunit_params.items()
			  if key.split('.', 1)[0] == suite]
		kunit += cases - len(params) + sum(params)
	return (len(expect.boot) +
		sum(max(n, 1) for n in expect.kselftest.values()) + kunit)
