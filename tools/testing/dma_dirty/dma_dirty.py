#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""dma-dirty test harness: boot the test kernel under QEMU and report.

  dma_dirty.py run --build build/     boot every configuration, run the
                                      tests, print one line per test
  dma_dirty.py parse LOG...           parse results logs already written
  dma_dirty.py configs                list the boot configurations
  dma_dirty.py l1-job kvm-guest ...   inside the nested L1 (dd_nested.py):
                                      the kvm-guest run's L2

Logs go to BUILD/logs/: NAME.console.log (kernel log) and NAME.results.log
(what the guest's test runners printed).

This file is the command line only: what runs is dd_harness.py, how a
boot is judged dd_judge.py.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_harness  # noqa: E402
import dd_kvm_guest  # noqa: E402
import dd_nested  # noqa: E402
import dma_dirty_kernel as kernel  # noqa: E402
import dma_dirty_parser as parser  # noqa: E402
from dd_judge import results_of  # noqa: E402


def cmd_run(args: argparse.Namespace) -> int:
	return dd_harness.run(os.path.abspath(args.build), args.variant,
			      args.accel, args.tests, args.timeout)


def cmd_parse(args: argparse.Namespace) -> int:
	counts = parser.Counts()
	kselftests: Optional[Dict[str, int]] = None
	suites: Dict[str, int] = {}
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


def cmd_configs(args: argparse.Namespace) -> int:
	for c in kernel.BOOT_CONFIGS:
		print('%-10s %s' % (c.name, c.description))
		print('%-10s append: %s' % ('', ' '.join(c.append) or '-'))
		print('%-10s qemu:   %s' % ('', ' '.join(c.qemu) or '-'))
	return 0


def cmd_l1_job(args: argparse.Namespace) -> int:
	"""Inside the L1: the L2 of the kvm-guest run (dd_kvm_guest.py)."""
	paths = kernel.Paths(os.path.abspath(args.build), args.variant)
	return dd_nested.l1_job(args.result, 'run', lambda: dd_kvm_guest.l2_kselftest(
		paths, args.release, log=lambda m: print(m, flush=True)))


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
	j = sub.add_parser('l1-job',
			   help='inside the nested L1 (dd_nested.py): a job of make test')
	j.add_argument('job', choices=('kvm-guest',))
	j.add_argument('--build', default='build')
	j.add_argument('--variant', default='')
	j.add_argument('--release', required=True,
		       help='the kernel release the L2 must run')
	j.add_argument('--result', required=True)
	j.set_defaults(func=cmd_l1_job)
	args = ap.parse_args(argv)
	ret: int = args.func(args)
	return ret


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
