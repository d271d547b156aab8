# SPDX-License-Identifier: GPL-2.0
"""Parse KTAP / TAP 13 results, as KUnit and kselftest print them.

Nesting is by indentation (four spaces per level, as KUnit prints it) or by
the "# " prefix that the kselftest runner puts in front of a program's own
TAP output.  Only the structure is kept: a tree of TestResult objects.
"""

from __future__ import annotations

import enum
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple


class Status(enum.Enum):
	PASS = 'ok'
	FAIL = 'not ok'
	SKIP = 'skip'


@dataclass
class TestResult:
	name: str
	status: Status
	reason: str = ''
	children: List['TestResult'] = field(default_factory=list)
	planned: Optional[int] = None
	log: List[str] = field(default_factory=list)
	num: int = 0		# its test number; 0 for the root

	def numbering(self) -> str:
		"""What is wrong with the numbers and names of the results
		below this one, or '': they must be 1, 2, 3... with no name
		twice, so that a result printed twice cannot stand in for one
		that is missing."""
		nums = [c.num for c in self.children]
		if nums != list(range(1, len(nums) + 1)):
			return 'results numbered %s, not 1 to %d in order' % (
				','.join(str(n) for n in nums), len(nums))
		seen = set()
		for c in self.children:
			if c.name in seen:
				return 'two results named %r' % c.name
			seen.add(c.name)
		return ''

	def leaves(self, prefix: str = ''
		   ) -> Iterable[Tuple[str, 'TestResult']]:
		"""Yields (full name, result) for every test without subtests.

		The root (no name) yields only its subtests: an empty document
		has no test to count.

		A parent whose subtests all passed but which itself failed (a
		program that crashed after its last subtest, a plan that was
		not completed) is yielded as well, so that its failure counts.
		"""
		full = prefix + self.name
		if not self.children and self.name:
			yield full, self
			return
		below = [(n, r) for c in self.children
			 for n, r in c.leaves(full + '.')]
		yield from below
		odd = self.numbering()
		if odd:
			yield full + '.<numbering>', TestResult(full, Status.FAIL,
								 odd)
		missing = (self.planned or 0) - len(self.children)
		if missing > 0:
			yield full + '.<plan>', TestResult(
				full, Status.FAIL,
				'%d of %d planned subtests did not report' %
				(missing, self.planned or 0))
		elif self.status == Status.FAIL and \
				not any(r.status == Status.FAIL for _, r in below):
			yield full + '.<exit>', TestResult(
				full, Status.FAIL,
				self.reason or 'failed after its subtests passed')


_RESULT = re.compile(
	r'^(?P<ok>ok|not ok)\s+(?P<num>\d+)(?:\s+-)?\s*(?P<name>[^#]*?)\s*'
	r'(?:#\s*(?P<directive>\w+)\s*(?P<reason>.*))?$')
_PLAN = re.compile(r'^1\.\.(?P<n>\d+)')
_VERSION = re.compile(r'^(K?TAP version \d+)')
_KSELFTEST_NAME = re.compile(r'^selftests: (\S+): (\S+)$')


def _indent(line: str) -> int:
	return len(line) - len(line.lstrip(' '))


def _result(line: str) -> Optional[TestResult]:
	m = _RESULT.match(line)
	if not m:
		return None
	status = Status.PASS if m.group('ok') == 'ok' else Status.FAIL
	directive = (m.group('directive') or '').upper()
	reason = m.group('reason') or ''
	if directive == 'SKIP':
		status = Status.SKIP
	elif directive in ('XFAIL', 'TODO'):
		# A known failure, or a test not done yet, is not a pass, and
		# no run of this suite may have one.
		status = Status.FAIL
		reason = '%s %s: not a pass' % (directive, reason.strip())
	else:
		# Not a directive: a comment, such as the runner's "exit=1".
		reason = ((m.group('directive') or '') + reason).strip()
	name = m.group('name') or '<unnamed>'
	# The kselftest runner names a program "selftests: DIR: PROG".
	ks = _KSELFTEST_NAME.match(name)
	if ks:
		name = '%s:%s' % (ks.group(1), ks.group(2))
	return TestResult(name, status, reason, num=int(m.group('num')))


def _unprefix(lines: List[str]) -> Optional[List[str]]:
	"""The TAP a kselftest program printed, if these "# " lines hold one."""
	if not all(line.startswith('#') for line in lines):
		return None
	body = [line[2:] if line.startswith('# ') else line[1:]
		for line in lines]
	if not any(_VERSION.match(b) for b in body):
		return None
	return body


def _is_result_line(line: str) -> bool:
	text = line.strip()
	while text.startswith('#'):
		text = text[1:].lstrip(' ')
	return _RESULT.match(text) is not None


def _post_order(node: TestResult) -> Iterable[TestResult]:
	for child in node.children:
		yield from _post_order(child)
	yield node


def parse(lines: List[str]) -> TestResult:
	"""Parses one document (possibly with nested subtests) into a root.

	Each result's log is every line printed since the result before it,
	at any depth: KUnit prints a parameterised case's failure one level
	above the case, and that is where the explanation is.
	"""
	root = TestResult('', Status.PASS)
	_parse_level(lines, 0, root)
	chunks: List[List[str]] = []
	cur: List[str] = []
	for line in lines:
		line = line.rstrip('\r\n')
		if _is_result_line(line):
			chunks.append(cur)
			cur = []
		elif line.strip():
			cur.append(line.strip())
	results = [r for r in _post_order(root) if r is not root]
	if len(results) == len(chunks):
		for res, chunk in zip(results, chunks):
			res.log = chunk
	return root


def _parse_level(lines: List[str], level: int, parent: TestResult) -> None:
	pending: List[str] = []	# lines belonging to the next result
	for line in lines:
		line = line.rstrip('\n').rstrip('\r')
		if not line.strip():
			continue
		ind = _indent(line)
		text = line[level:] if ind >= level else line.lstrip(' ')
		if ind > level:
			pending.append(line)
			continue
		res = _result(text)
		if res is None:
			m = _PLAN.match(text)
			if m and parent.planned is None:
				parent.planned = int(m.group('n'))
			elif text.startswith('#'):
				pending.append(text)
			continue
		sub = [l for l in pending if _indent(l) > level]
		if sub:
			_parse_level(sub, level + 4, res)
		else:
			body = _unprefix(pending)
			if body is not None:
				_parse_level(body, 0, res)
		pending = []
		parent.children.append(res)


@dataclass
class Counts:
	passed: int = 0
	failed: int = 0
	skipped: int = 0

	def add(self, status: Status) -> None:
		if status == Status.PASS:
			self.passed += 1
		elif status == Status.FAIL:
			self.failed += 1
		else:
			self.skipped += 1

	def line(self) -> str:
		return '%d passed, %d failed, %d skipped' % (
			self.passed, self.failed, self.skipped)
