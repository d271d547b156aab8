# SPDX-License-Identifier: GPL-2.0
"""The kvm-guest run of make test: the test kernel as an L2 guest under
KVM, backend kvm, running its kselftests twice, first while KVM does not
log dirty pages (nothing may be reported: the bypass), then while it logs
(every report is a hypercall KVM counts).

l2_kselftest() runs inside the L1 ("dma_dirty.py l1-job kvm-guest");
nested_kselftest() starts it from the host; kvm_guest_checks() judges
what the guest and KVM counted.
"""

from __future__ import annotations

import os
import subprocess
import time
from typing import Callable, Dict, List, Tuple

import dd_nested
import dma_dirty_kernel
from dd_scenario import REPORTED
from dd_errors import TestFailure
from dd_vm import Guest, keep_logging, kvm_stat, start_l2, tail

# The L2 guest: the test kernel and initramfs, its kselftests; no
# dma_mark_dirty=, so auto must pick kvm (ddtest.backend=kvm: the boot
# check "backend" holds it to that).
L2_APPEND = ['console=ttyS0', 'panic=-1', 'oops=panic', 'kunit.enable=0',
	     'ddtest.backend=kvm', 'ddtest.path=direct',
	     'ddtest.ksft=dma_dirty', 'ddtest.kvmgate=1']
L2_WAIT = 900		# seconds for each half of the kselftests

Log = Callable[[str], None]


def read_counters(lines: List[str]) -> List[Dict[str, int]]:
	"""The '# dma-dirty: counters' lines of an L2 results log, in order."""
	out = []
	for line in lines:
		if line.startswith('# dma-dirty: counters'):
			out.append({k: int(v) for k, v in
				    (kv.split('=', 1) for kv in line.split()[3:])
				    if v.isdigit()})
	return out


def results_lines(g: Guest) -> List[str]:
	"""The whole lines of @g's results log so far."""
	try:
		with open(g.results, errors='replace') as f:
			return f.read().split('\n')[:-1]
	except OSError:
		return []


def wait_line(g: Guest, marker: str, what: str, log: Log) -> None:
	"""Until @marker is a line of @g's results, saying how far it is."""
	t0, seen = time.monotonic(), 0
	while marker not in results_lines(g):
		g.check_alive()
		n = len(results_lines(g))
		if n != seen:
			seen = n
			log('#   L2: %d result lines (%s)' % (n, what))
		if time.monotonic() - t0 > L2_WAIT:
			raise TestFailure('L2: no "%s" within %d s; console:\n%s'
					  % (marker, L2_WAIT, tail(g.console)))
		time.sleep(2)


def l2_kselftest(paths: dma_dirty_kernel.Paths, release: str,
		 log: Log = print) -> dict:
	"""Inside the L1: boot the test kernel as an L2 guest under KVM with
	the kvm backend (guest/init, ddtest.kvmgate=1), let it run its
	kselftests while KVM does not log, then turn logging on (a migration
	to a sink, slow enough to outlast the second run) and let it run them
	again; read KVM's statistics of the VM at each step."""
	if not os.path.exists('/dev/kvm'):
		raise TestFailure('no /dev/kvm: the L1 cannot run KVM guests (see its console)')
	logs = os.path.abspath(paths.logs)
	g = start_l2(os.path.join(logs, 'kvm-guest'), paths.kernel,
		     paths.initramfs, L2_APPEND + ['ddtest.release=' + release])
	out: dict = {'results_log': g.results, 'console_log': g.console}
	try:
		wait_line(g, '# dma-dirty: waiting for reporting',
			  'kselftests, KVM not logging', log)
		out['host_pages_gated'] = kvm_stat(g, 'dma_dirty_pages')
		out['host_hypercalls_gated'] = kvm_stat(g, 'hypercalls')
		log('#   L2: kselftests done while KVM did not log; KVM counted %d pages, %d hypercalls; turning logging on'
		    % (out['host_pages_gated'], out['host_hypercalls_gated']))
		keep_logging(g)
		wait_line(g, '# dma-dirty: done', 'kselftests, KVM logging', log)
		status = g.q.cmd('query-migrate').get('status')
		if status != 'active':
			raise TestFailure('the migration that keeps KVM logging is %s before the kselftests ended: lower dd_vm.LOGGING_BANDWIDTH'
					  % status)
		out['host_pages_logging'] = kvm_stat(g, 'dma_dirty_pages')
		g.q.cmd('migrate_cancel')
		# The guest powers off once it sees that KVM stopped logging;
		# the host judges it (powered_off), after the other checks.
		out['powered_off'] = True
		try:
			g.proc.wait(120)
		except subprocess.TimeoutExpired:
			out['powered_off'] = False
	finally:
		g.stop()
	splat = g.splat()
	if splat:
		raise TestFailure('L2 kernel reported: %s (console: %s)'
				  % (splat, g.console))
	return out


def nested_kselftest(paths: dma_dirty_kernel.Paths, release: str,
		     log: Log = print) -> dict:
	"""The kvm-guest run, from the host: l2_kselftest() in an L1."""
	for p, what in ((paths.kernel, 'make kernel'),
			(paths.initramfs, 'make test')):
		if not os.path.exists(p):
			raise TestFailure('%s is missing (%s builds it)'
					  % (p, what))
	out = dd_nested.run_l1(
		paths, 'kvm-guest', 'dma_dirty.py',
		'l1-job kvm-guest --release %s' % release,
		'kvm-guest: L1 (test kernel, TCG) runs an L2 guest under KVM, backend kvm, with its kselftests',
		log)
	result: dict = out['run']
	return result


def kvm_guest_checks(out: dict,
		     counters: List[Dict[str, int]]) -> List[Tuple[str, bool, str]]:
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
