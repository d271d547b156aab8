# SPDX-License-Identifier: GPL-2.0
"""What a failed step is, and the one rule for retrying it.

A TestFailure is a result: a check that did not hold, a guest driver that
reported an error, a migration that failed.  An EnvironmentFailure is not
a result: a QEMU that did not start, a guest that crashed or hung before
any test code ran, a stall with no progress, an L1 that ended without a
result.  retried_once() is the only place that retries, and only the
latter, once.
"""

from __future__ import annotations

from typing import Callable, TypeVar

T = TypeVar('T')


class TestFailure(Exception):
	"""A step failed; the message says which and why."""



class EnvironmentFailure(TestFailure):
	"""Not a result: a guest or QEMU failed before the test code ran, or
	stalled.  The harness may retry these, never a plain TestFailure."""


def retried_once(label: str, run: Callable[[], T],
		 log: Callable[[str], None] = print) -> T:
	"""@run(), and once more after an EnvironmentFailure, saying so with
	@label.  Whatever the second attempt raises, and any TestFailure of
	the first, goes to the caller."""
	try:
		return run()
	except EnvironmentFailure as e:
		log('# %s: environment failure, not a test result: %s'
		    % (label, e))
		log('# %s: retrying once after an environment failure' % label)
	return run()
