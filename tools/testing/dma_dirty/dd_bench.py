#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0
"""make bench: what dma_mark_dirty() costs the DMA API.

  dd_bench.py run --build build --out docs/bench

Boots kernels under QEMU with dd_bench.ko (bench/dd_bench.c), which times
map+unmap (single and scatterlist) and sync_for_cpu for 4 KiB, 64 KiB and
1 MiB buffers, DMA_FROM_DEVICE and DMA_TO_DEVICE:

  - under TCG, through dma-direct and dma-iommu (QEMU intel-iommu): a
    kernel built without CONFIG_DMA_MARK_DIRTY (the baseline), and the
    test kernel with dma_mark_dirty=off and =touch;
  - under KVM nested in TCG (the test kernel booted as an L1 KVM host runs
    the guests): the baseline, the kvm backend while KVM does not log (its
    bypass) and while it logs (a migration to a sink keeps it logging),
    touch while KVM logs, and the baseline while KVM logs.

Every figure is a ratio to the baseline measured in the same round, each
round booting every configuration once; the spread is over rounds.  It
writes OUT/results.json (every sample), OUT/summary.csv, OUT/*.png
(gnuplot) and the page OUT/../bench.md.  Neither accelerator is hardware
timing: TCG runs the guest's code through a translator, and nested KVM
under TCG makes every exit cost what TCG spends emulating SVM.

  dd_bench.py page --build build --out docs/bench
  dd_bench.py scale --build build [--tcg-only]
  dd_bench.py l1-job bench-l2|bench-scale ...   inside the nested L1

This file is the command line only: the DMA API boots and their summaries
are dd_bench_api.py, the migrations and scaling runs dd_bench_migration.py,
the outputs and the page dd_bench_page.py.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import time
from typing import List

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_nested  # noqa: E402
import dma_dirty_kernel  # noqa: E402
from dd_bench_api import (BenchError, Kernels, flushed, kvm_rounds,  # noqa: E402
			  l2_runs, tcg_rounds)
from dd_bench_migration import (migration_runs, scale_points,  # noqa: E402
				scale_rows, scale_runs)
from dd_bench_page import write_results  # noqa: E402


def cmd_run(args: argparse.Namespace) -> int:
	"""Measure everything, then write the outputs."""
	k = Kernels(args.build)
	out_dir = os.path.abspath(args.out)
	os.makedirs(out_dir, exist_ok=True)
	t_start = time.monotonic()
	try:
		k.check()
		if not shutil.which('gnuplot'):
			raise BenchError('gnuplot is missing: run "make deps" (gnuplot-nox)')
		k.initramfs()
		tcg = tcg_rounds(k)
		mig = migration_runs(k, args.tcg_only)
		scale = scale_runs(k, args.tcg_only)
		kvm = [] if args.tcg_only else kvm_rounds(k)
	except (BenchError, dma_dirty_kernel.SetupError) as e:
		print('error: %s' % e)
		return 1
	minutes = (time.monotonic() - t_start) / 60
	write_results(k, out_dir, tcg, kvm, mig, scale, minutes)
	print('# bench: %.0f minutes; results in %s' % (minutes, out_dir))
	return 0


def cmd_page(args: argparse.Namespace) -> int:
	"""Write the summary, the plots and the page again from results.json
	(after a change to the page's text; nothing is measured)."""
	k = Kernels(args.build)
	out_dir = os.path.abspath(args.out)
	with open(os.path.join(out_dir, 'results.json')) as f:
		r = json.load(f)
	write_results(k, out_dir, r['tcg'], r['kvm'], r['migration'],
		      r.get('scale', {}), r['minutes'])
	return 0


def cmd_scale(args: argparse.Namespace) -> int:
	"""Only the scaling migrations, printed (make bench runs them too)."""
	k = Kernels(args.build)
	try:
		scale = scale_runs(k, args.tcg_only)
	except BenchError as e:
		print('error: %s' % e)
		return 1
	for accel, points in scale.items():
		for r in scale_rows(points):
			print('# %s %s' % (accel, r))
	return 0


def cmd_l1_job(args: argparse.Namespace) -> int:
	"""Inside the L1 (dd_nested.run_l1()): the L2 guests of the DMA API
	rounds, or the KVM scaling points."""
	if args.job == 'bench-l2':
		return dd_nested.l1_job(args.result, 'runs',
					lambda: l2_runs(args.build))
	paths = dma_dirty_kernel.Paths(os.path.abspath(args.build), args.variant)
	return dd_nested.l1_job(args.result, 'points', lambda: scale_points(
		paths, 'kvm', log=flushed))


def main(argv: List[str]) -> int:
	ap = argparse.ArgumentParser(description=__doc__,
				     formatter_class=argparse.RawDescriptionHelpFormatter)
	sub = ap.add_subparsers(dest='cmd', required=True)
	r = sub.add_parser('run')
	r.add_argument('--build', default='build')
	r.add_argument('--out', default='docs/bench')
	r.add_argument('--tcg-only', action='store_true')
	r.set_defaults(func=cmd_run)
	p = sub.add_parser('page', help='the page again from OUT/results.json')
	p.add_argument('--build', default='build')
	p.add_argument('--out', default='docs/bench')
	p.set_defaults(func=cmd_page)
	c = sub.add_parser('scale', help='only the scaling migrations, printed')
	c.add_argument('--build', default='build')
	c.add_argument('--tcg-only', action='store_true')
	c.set_defaults(func=cmd_scale)
	j = sub.add_parser('l1-job',
			   help='inside the nested L1 (dd_nested.py): a job of make bench')
	j.add_argument('job', choices=('bench-l2', 'bench-scale'),
		       help='bench-l2: the L2 guests of a DMA API round; bench-scale: the KVM scaling migrations')
	j.add_argument('--build', default='build')
	j.add_argument('--variant', default='')
	j.add_argument('--result', required=True)
	j.set_defaults(func=cmd_l1_job)
	args = ap.parse_args(argv)
	ret: int = args.func(args)
	return ret


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
