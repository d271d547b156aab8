#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""Live-migrate a guest while a simulated pass-through device does DMA.

The guest's RAM is a file under /dev/shm that dd_sim also maps: dd_sim
writes the payload of each buffer the guest driver posts straight into it,
which QEMU's dirty tracking never sees.  The runner starts the source and
destination QEMU (TCG), starts traffic, migrates over a unix socket while
the traffic runs, asks the driver to quiesce through the device's registers
(not the serial console, which can stall under TCG while pre-copy
iterates), lets the migration complete, and asks the driver on the
destination to verify every buffer it kept against the payload the device
wrote for its sequence number.

The driver keeps three classes of buffers (dd_sim.h): tracked (mapped and
unmapped around each receive), long-lived (mapped once, synced for the CPU
after each receive: the page_pool RX pattern), and a control group the
device writes but nothing reports (mapped DMA_TO_DEVICE, or never synced
for the CPU).  Every leg checks them side by side: the control group must
arrive corrupted whatever the backend, the other two intact with tracking
on and corrupted with it off.  --iommu puts the device behind QEMU's
intel-iommu, so the driver's DMA goes through dma-iommu.

  dd_migrate.py demo --build build      off and touch, then a table
  dd_migrate.py run --build build --backend off [--legs N] [--iommu]

  dd_migrate.py run ... --quiesce unplug   the device hot-unplugged
  dd_migrate.py run ... --nested           under KVM, in an L1 KVM host

--quiesce: the stop bit in the device's registers, or a hot-unplug
during pre-copy with a new device plugged on the destination
(dd_scenario.py says how).

--nested boots the test kernel under TCG as an L1 KVM host, with this
machine's / over 9p, and runs this same command in it (--accel kvm, the
lighter settings of KVM_PROFILE), which hands the legs back as JSON
(--result).  An environment failure is what is not a result (a QEMU that
does not start, a guest that dies or hangs before the test started, a
stall).

This file is the command line only: the scenario is dd_scenario.py, its
checks dd_checks.py, the table dd_demo.py, the L1 dd_nested.py.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import sys
from typing import List, NoReturn

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_nested  # noqa: E402
import dd_qmp  # noqa: E402
import dma_dirty_kernel  # noqa: E402
from dd_checks import leg_checks  # noqa: E402
from dd_demo import demo  # noqa: E402
from dd_errors import EnvironmentFailure, TestFailure  # noqa: E402
from dd_scenario import (BENCH_MODES, KVM_PROFILE, QUIESCE_MODES,  # noqa: E402
			 Leg, Profile, Setup, expected_backend, nested,
			 scenario)
from dd_vm import leftovers  # noqa: E402


def parse_args(argv: List[str]) -> argparse.Namespace:
	ap = argparse.ArgumentParser(description=__doc__,
				     formatter_class=argparse.RawDescriptionHelpFormatter)
	sub = ap.add_subparsers(dest='cmd', required=True)
	d = sub.add_parser('demo', help='off and touch, then a table')
	d.add_argument('--build', default='build')
	d.add_argument('--variant', default='')
	d.add_argument('--tcg-only', action='store_true',
		       help='leave out the nested KVM rows')
	r = sub.add_parser('run', help='one scenario')
	r.add_argument('--build', default='build')
	r.add_argument('--backend', default='touch',
		       help='dma_mark_dirty=, or auto: none given')
	r.add_argument('--legs', type=int, default=1)
	r.add_argument('--iommu', action='store_true',
		       help='behind intel-iommu: DMA through dma-iommu')
	r.add_argument('--variant', default='')
	r.add_argument('--accel', choices=('tcg', 'kvm'), default='tcg',
		       help='kvm: guests under KVM with the nested settings (inside the L1 of --nested)')
	r.add_argument('--ring', type=int, default=0,
		       help='with KVM: dirty ring of N entries instead of the bitmap')
	r.add_argument('--nested', action='store_true',
		       help='boot an L1 KVM host under TCG and run --accel kvm in it')
	r.add_argument('--label', default='', help='names the logs')
	r.add_argument('--quiesce', choices=QUIESCE_MODES, default='stop',
		       help='unplug: the guest removes the device during pre-copy, a new one is plugged on the destination')
	r.add_argument('--result', default='',
		       help='also write the legs, or the error, to this JSON file (the L1 job of --nested)')
	# 'scale' legs are not verified: make bench runs them, not 'run'
	r.add_argument('--bench-mode', choices=BENCH_MODES[:3], default='',
		       help='make bench: kept, failover or idle (hot-unplug quiesce)')
	return ap.parse_args(argv)


def run_legs(paths: dma_dirty_kernel.Paths,
	     args: argparse.Namespace) -> List[Leg]:
	"""The scenario here, or in an L1 (--nested); with --result, what
	it gave is also written for the host that runs this in an L1."""
	label = args.label or (('kvm-' if args.nested else '') +
			       args.backend +
			       ('-viommu' if args.iommu else '') +
			       ('-ring' if args.ring else ''))
	if args.nested:
		return nested(paths, args.backend, args.legs, label=label,
			      ring=args.ring, quiesce=args.quiesce,
			      bench_mode=args.bench_mode)
	profile = Profile()
	if args.accel == 'kvm':
		profile = dataclasses.replace(KVM_PROFILE, ring=args.ring)
	setup = Setup(args.backend, iommu=args.iommu, label=label,
		      profile=profile, quiesce=args.quiesce,
		      bench_mode=args.bench_mode)
	try:
		legs = scenario(paths, setup, args.legs)
	except (TestFailure, dd_qmp.QMPError) as e:
		if args.result:
			dd_nested.write_result(args.result, 'legs', error=e)
		raise
	if args.result:
		dd_nested.write_result(args.result, 'legs',
				       [dataclasses.asdict(leg) for leg in legs])
	return legs


def print_checks(legs: List[Leg], args: argparse.Namespace) -> int:
	"""One TAP-like line per check of each leg, then the totals; the
	number failed."""
	failed = passed = 0
	backend = expected_backend(args.backend, 'kvm' if args.nested
				   else args.accel)
	for i, leg in enumerate(legs):
		for name, ok, detail in leg_checks(leg, backend, args.iommu):
			failed += not ok
			passed += ok
			print('%sleg%d.%s # %s' % ('ok      ' if ok else
						   'not ok  ', i + 1, name,
						   detail))
	print('%d legs: %d passed, %d failed' % (len(legs), passed, failed))
	return failed


def on_sigterm(*_: object) -> NoReturn:
	sys.exit(130)


def main(argv: List[str]) -> int:
	args = parse_args(argv)
	paths = dma_dirty_kernel.Paths(os.path.abspath(args.build), args.variant)
	# Ctrl-C and SIGTERM unwind through the Testbed, which cleans up.
	signal.signal(signal.SIGTERM, on_sigterm)
	try:
		if args.cmd == 'demo':
			lines = demo(paths, args.tcg_only)
			print('\n' + '\n'.join(lines) + '\n')
			return 0
		return 1 if print_checks(run_legs(paths, args), args) else 0
	except (TestFailure, dd_qmp.QMPError) as e:
		print('error: %s%s' % ('environment failure (not a test result): '
				      if isinstance(e, EnvironmentFailure)
				      else '', e))
		return 1
	except KeyboardInterrupt:
		print('interrupted; everything started was stopped and removed')
		return 130
	finally:
		left = leftovers()
		if left:
			print('warning: left behind: %s' % ' '.join(left))


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
