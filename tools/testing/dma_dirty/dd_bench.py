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
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import platform
import re
import shutil
import statistics
import subprocess
import sys
import time
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dma_dirty_kernel  # noqa: E402

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 3		# boots of every configuration
REPS = 5		# repetitions of every case in one boot
CASE_MS = 20		# milliseconds per case and repetition
LINE = re.compile(r'dd_bench: rep=(\d+) op=(\w+) dir=(\w+) size=(\d+) '
		  r'iters=(\d+) ns=(\d+)')
IOMMU_APPEND = ['intel_iommu=on', 'iommu.passthrough=0']
IOMMU_QEMU = ['-device', 'intel-iommu,intremap=off']

# (name, kernel, dma_mark_dirty=, what it is)
TCG_CONFIGS = [
	('base', 'base', None, 'built without CONFIG_DMA_MARK_DIRTY'),
	('off', 'series', 'off', 'dma_mark_dirty=off'),
	('touch', 'series', 'touch', 'dma_mark_dirty=touch'),
]
# (name, kernel, dma_mark_dirty=, KVM logging, what it is); L2 guests
KVM_CONFIGS = [
	('base', 'base', None, False, 'built without CONFIG_DMA_MARK_DIRTY'),
	('kvm-idle', 'series', 'kvm', False,
	 'backend kvm, KVM not logging (the bypass)'),
	('base-logging', 'base', None, True,
	 'built without CONFIG_DMA_MARK_DIRTY, KVM logging'),
	('kvm-logging', 'series', 'kvm', True,
	 'backend kvm, KVM logging: one hypercall per range'),
	('touch-logging', 'series', 'touch', True,
	 'backend touch, KVM logging: write faults'),
]
L2_PAUSE = 5		# seconds the L2 waits, for its host to read KVM's stats
MIG_RUNS = 3		# migrations of each mode on each accelerator
# The driver's buffer shapes (dd_sim_drv.c dd_shapes): 1, 2, 4, 4, 16, 16,
# 8 and 1 pages, in turn through the pool of 320 buffers.
PAGES_PER_BUFFER = 52 / 8
POOL_PAGES = 320 * 52 // 8


class BenchError(Exception):
	pass


class Kernels:
	"""The two kernels, their dd_bench.ko and initramfs."""

	def __init__(self, build: str):
		self.build = os.path.abspath(build)
		self.paths = dma_dirty_kernel.Paths(self.build)
		self.dir = os.path.join(self.build, 'bench')
		self.kernel = {
			'series': self.paths.kernel,
			'base': os.path.join(self.build, 'obj-bench-base', 'arch',
					     'x86', 'boot', 'bzImage'),
		}
		self.initrd = {k: os.path.join(self.dir, 'initramfs-%s.cpio.gz' % k)
			       for k in self.kernel}
		self.module = {k: os.path.join(self.dir, k, 'dd_bench.ko')
			       for k in self.kernel}

	def check(self) -> None:
		for k in self.kernel:
			for p in (self.kernel[k], self.module[k]):
				if not os.path.exists(p):
					raise BenchError('%s is missing: run "make bench"' % p)

	def initramfs(self) -> None:
		for k in self.kernel:
			dma_dirty_kernel.build_initramfs(
				self.paths, self.initrd[k],
				[self.module[k], os.path.join(HERE, 'guest', 'bench.sh')])


def parse(lines: List[str]) -> dict:
	"""Samples and the counters lines of one boot's results."""
	out: dict = {'samples': [], 'counters': [], 'end': False}
	for l in lines:
		m = LINE.search(l)
		if m:
			rep, op, d, size, iters, ns = m.groups()
			out['samples'].append({'rep': int(rep), 'op': op, 'dir': d,
					       'size': int(size),
					       'iters': int(iters), 'ns': int(ns)})
		elif l.startswith('# dd_bench: counters'):
			out['counters'].append(dict(kv.split('=', 1) for kv in
						    l.split()[3:] if '=' in kv))
		elif l.startswith('# dd_bench: end'):
			out['end'] = True
		elif 'dd_bench: failed' in l or '# dd_bench: error' in l:
			out['error'] = l.strip()
	return out


def append_for(backend: Optional[str], pause: int = 0,
	       logging: bool = False) -> List[str]:
	a = ['console=ttyS0', 'panic=-1', 'oops=panic', 'kunit.enable=0',
	     'loglevel=4', 'ddtest.mode=bench', 'ddbench.reps=%d' % REPS,
	     'ddbench.ms=%d' % CASE_MS, 'ddbench.pause=%d' % pause,
	     'ddbench.logging=%d' % logging]
	if backend:
		a.append('dma_mark_dirty=' + backend)
	return a


def boot_tcg(k: Kernels, kernel: str, backend: Optional[str], iommu: bool,
	     name: str, timeout: int = 600) -> dict:
	"""One boot under TCG; returns what parse() gives."""
	logs = os.path.join(k.dir, 'logs')
	os.makedirs(logs, exist_ok=True)
	results = os.path.join(logs, name + '.results.log')
	console = os.path.join(logs, name + '.console.log')
	for f in (results, console):
		with contextlib.suppress(FileNotFoundError):
			os.unlink(f)
	append = append_for(backend) + (IOMMU_APPEND if iommu else [])
	cmd = ['qemu-system-x86_64', '-M', 'q35', '-accel', 'tcg',
	       '-cpu', 'max', '-m', '1G', '-smp', '1',
	       *(IOMMU_QEMU if iommu else []),
	       '-kernel', k.kernel[kernel], '-initrd', k.initrd[kernel],
	       '-append', ' '.join(append), '-display', 'none',
	       '-monitor', 'none', '-no-reboot', '-serial', 'file:' + console,
	       '-serial', 'file:' + results, '-device', 'pci-testdev']
	try:
		subprocess.run(cmd, stdin=subprocess.DEVNULL,
			       stdout=subprocess.DEVNULL,
			       stderr=subprocess.DEVNULL, timeout=timeout)
	except subprocess.TimeoutExpired:
		raise BenchError('%s: no power-off within %d s (console %s)'
				 % (name, timeout, console))
	with open(results, errors='replace') as f:
		out = parse(f.read().splitlines())
	if not out['end'] or 'error' in out or not out['samples']:
		raise BenchError('%s: %s (console %s)' % (
			name, out.get('error', 'the guest did not finish'),
			console))
	return out


def l2_runs(build: str, log=print) -> dict:
	"""Inside the L1: every KVM_CONFIGS guest once, with KVM's exit and
	hypercall counts of the VM while dd_bench ran."""
	import dd_migrate

	if not os.path.exists('/dev/kvm'):
		raise BenchError('no /dev/kvm in the L1')
	k = Kernels(build)
	# The only folder of the build the L1 mounts read-write
	logs = k.paths.logs
	runs = {}
	for name, kernel, backend, logging, _ in KVM_CONFIGS:
		g = dd_migrate.start_l2(
			os.path.join(logs, 'bench-kvm-' + name), k.kernel[kernel],
			k.initrd[kernel], append_for(backend, L2_PAUSE, logging))
		proc, results, console = g.proc, g.results, g.console
		stats: Dict[str, int] = {}
		try:
			if logging:
				dd_migrate.keep_logging(g)
			deadline = time.monotonic() + 900
			phase = 0
			while phase < 2:
				if proc.poll() is not None:
					raise BenchError('L2 %s exited early (console %s)'
							 % (name, console))
				if time.monotonic() > deadline:
					raise BenchError('L2 %s: no result in 900 s' % name)
				with contextlib.suppress(OSError), \
						open(results, errors='replace') as f:
					text = f.read()
				n = text.count('# dd_bench: counters')
				if n > phase:
					# The guest pauses L2_PAUSE s after each.
					for s in ('exits', 'hypercalls', 'dma_dirty_pages'):
						stats['%s_%d' % (s, phase)] = \
							dd_migrate.kvm_stat(g, s)
					phase += 1
				time.sleep(0.2)
			if logging:
				status = g.qmp.cmd('query-migrate').get('status')
				if status != 'active':
					raise BenchError('L2 %s: KVM stopped logging before the end (migration %s)'
							 % (name, status))
				g.qmp.cmd('migrate_cancel')
			proc.wait(120)
		finally:
			g.qmp.close()
			if proc.poll() is None:
				proc.kill()
				proc.wait()
		with open(results, errors='replace') as f:
			out = parse(f.read().splitlines())
		if not out['end'] or 'error' in out or not out['samples']:
			raise BenchError('L2 %s: %s (console %s)' % (
				name, out.get('error', 'did not finish'), console))
		out['kvm'] = {s: stats['%s_1' % s] - stats['%s_0' % s]
			      for s in ('exits', 'hypercalls', 'dma_dirty_pages')}
		log('#   L2 %s: %d samples, KVM: %s' % (name, len(out['samples']),
						       out['kvm']))
		runs[name] = out
	return runs


# Summaries ---------------------------------------------------------------

def per_op(sample: dict) -> float:
	return sample['ns'] / sample['iters']


def cases(samples: List[dict]) -> List[tuple]:
	return sorted({(s['op'], s['dir'], s['size']) for s in samples},
		      key=lambda c: (c[0], c[1], c[2]))


def median_of(run: dict, case: tuple) -> float:
	v = [per_op(s) for s in run['samples']
	     if (s['op'], s['dir'], s['size']) == case]
	return statistics.median(v)


def ratios(rounds: List[Dict[str, dict]], name: str, base: str,
	   case: tuple) -> List[float]:
	"""Per round: median ns/op of @name over the median of @base."""
	return [median_of(r[name], case) / median_of(r[base], case)
		for r in rounds]


def summarize(rounds: List[Dict[str, dict]], names: List[str],
	      base: str) -> List[dict]:
	rows = []
	for case in cases(rounds[0][base]['samples']):
		row = {'op': case[0], 'dir': case[1], 'size': case[2],
		       'base_ns': statistics.median(
			       median_of(r[base], case) for r in rounds)}
		for n in names:
			rs = ratios(rounds, n, base, case)
			row[n] = {'ratio': statistics.median(rs), 'min': min(rs),
				  'max': max(rs)}
		rows.append(row)
	return rows


def size_name(n: int) -> str:
	return '%d KiB' % (n >> 10) if n < 1 << 20 else '%d MiB' % (n >> 20)


def table(rows: List[dict], names: List[str]) -> List[str]:
	out = ['| op | dir | size | baseline ns/op | ' +
	       ' | '.join('%s (ratio, min-max)' % n for n in names) + ' |',
	       '|' + '---|' * (4 + len(names))]
	for r in rows:
		out.append('| %s | %s | %s | %.0f | %s |' % (
			r['op'], r['dir'], size_name(r['size']), r['base_ns'],
			' | '.join('%.2f (%.2f-%.2f)' % (r[n]['ratio'], r[n]['min'],
							 r[n]['max'])
				   for n in names)))
	return out


def plot(rows: List[dict], names: List[str], title: str, png: str) -> None:
	"""A bar chart of the ratios, one cluster per case, with gnuplot."""
	dat = png[:-4] + '.dat'
	with open(dat, 'w') as f:
		for r in rows:
			label = '%s %s %s' % (r['op'].replace('_', '-'),
					      'from' if r['dir'] == 'from_device'
					      else 'to', size_name(r['size']))
			f.write('"%s" %s\n' % (label, ' '.join(
				'%.4f %.4f %.4f' % (r[n]['ratio'], r[n]['min'],
						    r[n]['max'])
				for n in names)))
	cols = ', '.join(
		'"%s" using %d:%d:%d:xtic(1) title "%s"' % (
			os.path.basename(dat), 2 + 3 * i, 3 + 3 * i, 4 + 3 * i, n)
		for i, n in enumerate(names))
	script = '\n'.join([
		'set terminal pngcairo size 1400,600 font ",10"',
		'set output "%s"' % os.path.basename(png),
		'set title "%s"' % title,
		'set style data histograms',
		'set style histogram errorbars gap 1 lw 1',
		'set style fill solid 0.6 border -1',
		'set ylabel "time per operation / baseline (log scale)"',
		'set logscale y',
		'set yrange [0.5:*]',
		'set xtics rotate by -45 scale 0',
		'set key top left',
		'set grid ytics',
		'plot %s, 1 notitle lc rgb "black" dt 2' % cols,
	])
	subprocess.run(['gnuplot'], input=script, text=True, check=True,
		       cwd=os.path.dirname(png))
	os.unlink(dat)


def disassembly(vmlinux: str, function: str) -> List[str]:
	"""The hook in @function: from the first test of dma_mark_dirty_key
	to the call of __dma_dirty_mapped that the gate guards."""
	out = subprocess.run(['objdump', '-d', '--no-show-raw-insn',
			      '--disassemble=' + function, vmlinux],
			     capture_output=True, text=True).stdout
	body = [l.rstrip() for l in out.splitlines()
		if re.match(r'^\s*[0-9a-f]+:', l)]
	start = next((i for i, l in enumerate(body)
		      if '<dma_mark_dirty_key>' in l), None)
	if start is None:
		return []
	end = next((i for i, l in enumerate(body[start:], start)
		    if '__dma_dirty_mapped' in l), start + 12)
	return body[start:end + 1]


def cmd_run(args) -> int:
	k = Kernels(args.build)
	out_dir = os.path.abspath(args.out)
	os.makedirs(out_dir, exist_ok=True)
	t_start = time.monotonic()
	try:
		k.check()
		if not shutil.which('gnuplot'):
			raise BenchError('gnuplot is missing: run "make deps" (gnuplot-nox)')
		k.initramfs()
		tcg: Dict[str, List[Dict[str, dict]]] = {'direct': [], 'iommu': []}
		total = ROUNDS * 2 * len(TCG_CONFIGS)
		n = 0
		for rnd in range(ROUNDS):
			for path in ('direct', 'iommu'):
				runs = {}
				for name, kernel, backend, _ in TCG_CONFIGS:
					n += 1
					t0 = time.monotonic()
					runs[name] = boot_tcg(
						k, kernel, backend, path == 'iommu',
						'tcg-%s-%s-%d' % (path, name, rnd))
					print('# [%d/%d] TCG round %d, %s, %s: %d samples, %.0f s'
					      % (n, total, rnd + 1, path, name,
						 len(runs[name]['samples']),
						 time.monotonic() - t0), flush=True)
				tcg[path].append(runs)
		mig = migration_runs(k, args.tcg_only)
		scale = scale_runs(k, args.tcg_only)
		kvm: List[Dict[str, dict]] = []
		if not args.tcg_only:
			import dd_migrate
			for rnd in range(ROUNDS):
				print('# nested KVM round %d of %d: an L1 boots and runs %d L2 guests'
				      % (rnd + 1, ROUNDS, len(KVM_CONFIGS)), flush=True)
				res = retried_once('bench-l2-%d' % rnd, lambda: dd_migrate.run_l1(
					k.paths, 'bench-l2-%d' % rnd, 'bench-l2',
					'bench: L1 (test kernel, TCG) runs the L2 benchmarks under KVM',
					log=lambda m: print(m, flush=True)))
				kvm.append(res['runs'])
	except (BenchError, dma_dirty_kernel.SetupError) as e:
		print('error: %s' % e)
		return 1
	minutes = (time.monotonic() - t_start) / 60
	write_results(k, out_dir, tcg, kvm, mig, scale, minutes)
	print('# bench: %.0f minutes; results in %s' % (minutes, out_dir))
	return 0


def write_results(k: Kernels, out_dir: str, tcg: dict, kvm: list,
		  mig: dict, scale: dict, minutes: float) -> None:
	with open(os.path.join(out_dir, 'results.json'), 'w') as f:
		json.dump({'rounds': ROUNDS, 'reps': REPS, 'case_ms': CASE_MS,
			   'minutes': minutes, 'tcg': tcg, 'kvm': kvm,
			   'migration': mig, 'scale': scale}, f, indent=0)
	tcg_names = [c[0] for c in TCG_CONFIGS[1:]]
	kvm_names = [c[0] for c in KVM_CONFIGS[1:]]
	summary = {p: summarize(tcg[p], tcg_names, 'base') for p in tcg}
	if kvm:
		summary['kvm'] = summarize(kvm, kvm_names, 'base')
	with open(os.path.join(out_dir, 'summary.csv'), 'w') as f:
		f.write('accel,path,config,op,dir,size,baseline_ns,ratio,ratio_min,ratio_max\n')
		for key, rows in summary.items():
			names = kvm_names if key == 'kvm' else tcg_names
			for r in rows:
				for n in names:
					f.write('%s,%s,%s,%s,%s,%d,%.1f,%.4f,%.4f,%.4f\n' % (
						'kvm-nested' if key == 'kvm' else 'tcg',
						'direct' if key == 'kvm' else key, n,
						r['op'], r['dir'], r['size'], r['base_ns'],
						r[n]['ratio'], r[n]['min'], r[n]['max']))
	for key, rows in summary.items():
		names = kvm_names if key == 'kvm' else tcg_names
		plot(rows, names,
		     'DMA API time per operation / baseline (%s)' % (
			     'L2 under KVM nested in TCG, dma-direct' if key == 'kvm'
			     else 'TCG, dma-' + key),
		     os.path.join(out_dir, 'api-%s.png' % key))
	page(k, out_dir, summary, tcg_names, kvm_names, kvm, mig, scale,
	     minutes)


def exits_rows(kvm: list) -> List[str]:
	"""KVM's exits and hypercalls while dd_bench ran, by config."""
	out = ['| config | FROM_DEVICE operations | FROM_DEVICE ranges | hypercalls | '
	       'hypercalls per range | exits | exits beyond its baseline, per FROM_DEVICE operation |',
	       '|---|---|---|---|---|---|---|']
	totals = {}
	for name, _, _, logging, _ in KVM_CONFIGS:
		ops = ranges = hcalls = exits = 0
		for r in kvm:
			run = r[name]
			for s in run['samples']:
				if s['dir'] != 'from_device':
					continue
				ops += s['iters']
				ranges += s['iters'] * (
					s['size'] // 4096 if s['op'] == 'map_unmap_sg'
					else 1)
			hcalls += run['kvm']['hypercalls']
			exits += run['kvm']['exits']
		totals[name] = (ops, ranges, hcalls, exits, logging)
	for name, (ops, ranges, hcalls, exits, logging) in totals.items():
		base = totals['base-logging' if logging else 'base'][3]
		out.append('| %s | %d | %d | %d | %s | %d | %s |' % (
			name, ops, ranges, hcalls,
			'%.4f' % (hcalls / ranges) if hcalls else '-', exits,
			'%.5f' % ((exits - base) / ops) if ops else '-'))
	return out


def page(k: Kernels, out_dir: str, summary: dict, tcg_names: List[str],
	 kvm_names: List[str], kvm: list, mig: dict, scale: dict,
	 minutes: float) -> None:
	rel = os.path.basename(out_dir)
	qemu = subprocess.run(['qemu-system-x86_64', '--version'],
			      capture_output=True, text=True).stdout.splitlines()[0]
	cpu = ''
	with contextlib.suppress(OSError), open('/proc/cpuinfo') as f:
		m = re.search(r'^model name\s*:\s*(.*)$', f.read(), re.M)
		cpu = m.group(1) if m else ''
	lines = [
		'# make bench: what dma_mark_dirty() costs the DMA API',
		'',
		'Generated by `make bench` (%s, %.0f minutes here); every number'
		% ('tools/testing/dma_dirty/dd_bench.py', minutes),
		'below is in `%s/results.json` (every sample) and `%s/summary.csv`.'
		% (rel, rel),
		'',
		'Machine: %s, %d CPUs, %s; %s. Guests: 1 vCPU.' % (
			cpu or platform.machine(), os.cpu_count(), platform.system(),
			qemu),
		'',
		'**Neither accelerator is hardware timing.** Under TCG the guest\'s',
		'code runs through QEMU\'s translator; under KVM nested in TCG the L2',
		'runs on KVM in an L1 that TCG runs, so each exit costs what TCG spends',
		'emulating SVM. The figures are ratios to a baseline measured in the',
		'same round (%d rounds, each booting every configuration once; %d'
		% (ROUNDS, REPS),
		'repetitions of %d ms per case in each boot). The ratio is the median'
		% CASE_MS,
		'over rounds of (median time per operation of the configuration /',
		'median of the baseline); min-max is its spread over rounds. They show',
		'how the costs compare on this machine, not what they are on hardware.',
		'',
		'The baseline is the test kernel built without `CONFIG_DMA_MARK_DIRTY`;',
		'the others are the test kernel with the series. dd_bench.ko',
		'(`tools/testing/dma_dirty/bench/dd_bench.c`) times, on a pci-testdev:',
		'`map_unmap_single` (dma_map_single + dma_unmap_single),',
		'`map_unmap_sg` (one page per entry, pages not contiguous) and',
		'`sync_for_cpu` (dma_sync_single_for_cpu of a mapped buffer). No',
		'device writes: this is the CPU\'s side.',
		'',
	]
	lines += ['## Headlines', '',
		  'Ratio to the baseline, lowest and highest over the 18 cases, '
		  'and for two common ones: a 4 KiB FROM_DEVICE map+unmap and a '
		  '4 KiB FROM_DEVICE sync for the CPU.', '',
		  '| where | configuration | all cases | map+unmap 4 KiB | sync_for_cpu 4 KiB |',
		  '|---|---|---|---|---|']
	for key, names in (('direct', tcg_names), ('iommu', tcg_names),
			   ('kvm', kvm_names)):
		rows = summary.get(key)
		if not rows:
			continue
		for n in names:
			rs = [r[n]['ratio'] for r in rows]
			one = {(r['op'], r['dir'], r['size']): r[n]['ratio']
			       for r in rows}
			lines.append('| %s | %s | %.2f-%.2f | %.2f | %.2f |' % (
				{'direct': 'TCG, dma-direct', 'iommu': 'TCG, dma-iommu',
				 'kvm': 'nested KVM, dma-direct'}[key], n, min(rs),
				max(rs),
				one[('map_unmap_single', 'from_device', 4096)],
				one[('sync_for_cpu', 'from_device', 4096)]))
	lines += ['',
		  'Why `sync_for_cpu` FROM_DEVICE costs what it does: a coherent '
		  'dma-direct device skips the sync entirely in the baseline '
		  '(`dev->dma_skip_sync`: an inline test and a return). Patch 3 '
		  'makes the sync while a report is needed (`touch`, or `kvm` '
		  'while KVM logs): then it is a call into dma-direct and the '
		  'report. While the gate is closed (`kvm-idle`) the sync is '
		  'still skipped, after the static key, the direction and the '
		  'gate\'s two loads; with `off`, after the static key alone. (In v3 '
		  'of the series any active backend made the call: 3.8 times the '
		  'baseline for `kvm-idle`.)', '']
	for key, title in (('direct', 'TCG, dma-direct'),
			   ('iommu', 'TCG, dma-iommu (QEMU intel-iommu)')):
		lines += ['## %s' % title, '',
			  '![%s](%s/api-%s.png)' % (title, rel, key), '']
		lines += table(summary[key], tcg_names) + ['']
	if 'kvm' in summary:
		lines += ['## KVM nested in TCG, dma-direct, L2 guests', '',
			  'Configurations: ' + '; '.join(
				  '`%s`: %s' % (c[0], c[4]) for c in KVM_CONFIGS) + '.',
			  '',
			  '![kvm](%s/api-kvm.png)' % rel, '']
		lines += table(summary['kvm'], kvm_names) + ['']
		lines += ['KVM\'s statistics of each L2 VM while dd_bench ran (all '
			  'rounds). A FROM_DEVICE range is what the kvm backend '
			  'reports with one hypercall: one per single mapping or '
			  'sync, one per page of these scatterlists, whose pages are '
			  'not contiguous. Exits are all of the VM\'s, timer '
			  'interrupts included, so each configuration is compared '
			  'with the baseline that logs as it does. Under `touch`, '
			  'KVM faults on a page\'s first write after it '
			  'write-protected it, not on every touch.', '']
		lines += exits_rows(kvm) + ['']
	vmlinux = os.path.join(k.paths.obj, 'vmlinux')
	dis = disassembly(vmlinux, 'dma_unmap_page_attrs') if \
		os.path.exists(vmlinux) else []
	if dis:
		lines += ['## What the idle hook executes', '',
			  '`dma_unmap_page_attrs` of the test kernel (objdump; '
			  'dma-direct\'s unmap and its hook are inlined), from the '
			  'static key to the call the gate guards. The test kernel '
			  'has no `CONFIG_JUMP_LABEL`, so the static key is a load '
			  'and a test of its count; then the direction, '
			  '`dma_dirty_gate`, the word it points to, and a branch: with '
			  'the kvm backend while KVM does not log, that word is 0 and '
			  'the call is skipped.', '', '```'] + dis + ['```', '']
	lines += migration_page(mig)
	lines += scale_page(scale, rel, out_dir)
	lines += ['## What this does not show', '',
		  '- Hardware timing (above): an exit, a hypercall or a '
		  'write-protection fault, costs here what TCG spends emulating '
		  'SVM, which is why the `kvm-logging` ratios are in the hundreds.',
		  '- kvm-by-shared-log, a log in guest memory that KVM would read '
		  'when it syncs the dirty log instead of a hypercall per range: '
		  'not built, so not measured.', '']
	with open(os.path.join(os.path.dirname(out_dir), 'bench.md'), 'w') as f:
		f.write('\n'.join(lines))


# Migration with DMA running ---------------------------------------------

MODES = [
	# (mode, backend on TCG, backend nested, what it is)
	('kept', 'touch', 'kvm',
	 'the device kept through pre-copy, tracked (touch on TCG, kvm on KVM)'),
	('failover', 'off', 'off',
	 'the device unplugged as migration starts (virtio-net failover practice)'),
	('idle', 'off', 'off', 'the same guest, the device never started'),
]


def retried_once(label: str, run):
	"""@run(), retried once after an environment failure (a guest or an L1
	that crashed or stalled before the test ran); anything else ends the
	benchmark with @label and what failed."""
	import dd_migrate
	import dd_qmp

	for attempt in (1, 2):
		try:
			return run()
		except dd_migrate.EnvironmentFailure as e:
			if attempt == 2:
				raise BenchError('%s: %s' % (label, e))
			print('# %s: environment failure, retrying once: %s'
			      % (label, str(e).splitlines()[0]), flush=True)
		except (dd_migrate.MigrationError, dd_qmp.QMPError) as e:
			raise BenchError('%s: %s' % (label, e))
	raise AssertionError('not reached')


def migration_runs(k: Kernels, tcg_only: bool) -> dict:
	"""dd_migrate's scenario in each of MODES, MIG_RUNS times, on TCG and
	(unless @tcg_only) nested KVM, the hot-unplug quiesce."""
	import dataclasses
	import dd_migrate

	out: dict = {'tcg': {}, 'kvm': {}}
	accels = ['tcg'] + ([] if tcg_only else ['kvm'])
	total = len(accels) * len(MODES) * MIG_RUNS
	n = 0
	for run in range(MIG_RUNS):
		for accel in accels:
			for mode, b_tcg, b_kvm, _ in MODES:
				n += 1
				label = 'bench-%s-%s-%d' % (accel, mode, run)
				if accel == 'tcg':
					leg = retried_once(label, lambda: dd_migrate.scenario(
						k.paths, b_tcg, 1, log=lambda m: None,
						label=label, quiesce='unplug',
						bench_mode=mode)[0])
				else:
					leg = retried_once(label, lambda: dd_migrate.nested(
						k.paths, b_kvm, 1, log=lambda m: None,
						label=label, quiesce='unplug',
						bench_mode=mode)[0])
				out[accel].setdefault(mode, []).append(
					dataclasses.asdict(leg))
				print('# [%d/%d] migration %s %s: %.0f s, %d buffers during, %.0f MB sent, downtime %d ms'
				      % (n, total, accel, mode, leg.migration_s,
					 leg.received_during, leg.mb_sent,
					 leg.downtime_ms), flush=True)
	return out


def med(legs: List[dict], f) -> float:
	return statistics.median(f(l) for l in legs)


def spread(legs: List[dict], f) -> str:
	v = [f(l) for l in legs]
	return '%.3g (%.3g-%.3g)' % (statistics.median(v), min(v), max(v))


def migration_page(mig: dict) -> List[str]:
	lines = ['## Migration with DMA running', '',
		 'dd_migrate.py\'s scenario (the `make demo` guest, the device '
		 'hot-unplugged as the quiesce), %d runs of each mode, medians '
		 'and (min-max): ' % MIG_RUNS + '; '.join(
			 '`%s`: %s' % (m, w) for m, _, _, w in MODES) + '. In '
		 'every mode the bandwidth cap (8 MiB/s) is lifted once the '
		 'first pass is over and the device is gone, so the timelines '
		 'compare. "During migration, / before": buffers the device '
		 'delivered per second of migration over its rate before.', '']
	for accel, title in (('tcg', 'TCG'), ('kvm', 'KVM nested in TCG')):
		modes = mig.get(accel) or {}
		if not modes:
			continue
		idle = modes['idle']
		lines += ['### %s' % title, '',
			  '| mode | DMA buffers/s before | during migration, / before '
			  '| device present for, of the migration | migration s | '
			  'downtime ms | MB sent | passes |',
			  '|---|---|---|---|---|---|---|---|']
		for mode, _, _, _ in MODES:
			legs = modes[mode]
			lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
				mode,
				spread(legs, lambda l: l['rate_before']),
				spread(legs, lambda l: (
					l['received_during'] / l['migration_s'] /
					l['rate_before']) if l['rate_before'] else 0),
				spread(legs, lambda l: l['dma_s'] / l['migration_s']),
				spread(legs, lambda l: l['migration_s']),
				spread(legs, lambda l: l['downtime_ms']),
				spread(legs, lambda l: l['mb_sent']),
				spread(legs, lambda l: l['passes'])))
		kept = modes['kept']
		idle_mb = med(idle, lambda l: l['mb_sent'])
		extra = med(kept, lambda l: (l['mb_sent'] - idle_mb) * 256)
		wrote = med(kept, lambda l: l['received_during'] *
			    PAGES_PER_BUFFER)
		passes = med(kept, lambda l: l['passes'])
		vfio_pages = passes * POOL_PAGES
		lines += ['',
			  'Pages: with the device kept, %.0f more pages were sent '
			  'than with it idle (MB sent, kept less idle). During the '
			  'migration the device wrote about %.0f pages (its buffers '
			  'received, %.1f pages each on average: the driver\'s '
			  'shapes), rewriting the same pool of %d pages, so a page '
			  'written several times in a pass is sent again once. The '
			  'CPU\'s own writes differ between runs too: this is an '
			  'estimate of what tracking costs in pages, not a count.' % (
				  extra, wrote, PAGES_PER_BUFFER, POOL_PAGES),
			  '',
			  'VFIO type1 (computed, not measured): reporting every page '
			  'the device can reach (%d pages: the pool) on each of the '
			  '%.0f passes would add %d pages, %.1f s at the 8 MiB/s cap.'
			  % (POOL_PAGES, passes, vfio_pages,
			     vfio_pages * 4096 / (8 << 20)), '']
	return lines


# How the costs grow (scaling) --------------------------------------------

# (pages per buffer, pages/s the device may write; 0: as fast as the guest
# posts).  One buffer size small enough that every buffer is a separate
# report (the pool is 320 pages), one as large as the driver has (5120
# pages); paces from well below to past what converges under the downtime
# limit (on TCG here, touch with 16-page buffers: 512 pages/s converged,
# 1024 did not).
SCALE_GRID = [(1, 64), (1, 128), (1, 0),
	      (16, 128), (16, 256), (16, 512), (16, 1024), (16, 0)]
SCALE_BACKENDS = {'tcg': ['touch'], 'kvm': ['kvm', 'touch']}


def mem_available() -> str:
	"""MemAvailable of the machine running the guests (the L1's)."""
	with contextlib.suppress(OSError), open('/proc/meminfo') as f:
		for line in f:
			if line.startswith('MemAvailable:'):
				return '%d MiB available' % (int(line.split()[1]) >> 10)
	return 'MemAvailable unknown'


def scale_points(paths: dma_dirty_kernel.Paths, accel: str,
		 log=print) -> List[dict]:
	"""In this process (inside the L1 for 'kvm'): a migration with the
	device idle for each buffer size (the pool the CPU filled is part of
	what the first pass sends), then one for each backend and SCALE_GRID
	point, in dd_migrate's 'scale' mode."""
	import dataclasses
	import dd_migrate

	base = (dd_migrate.Profile() if accel == 'tcg' else
		dd_migrate.KVM_PROFILE)
	# No CPU churn: the pages re-sent are the device's.
	base = dataclasses.replace(base, churn_mb=0)
	points = [('idle', 'off', pages, 0) for pages in
		  sorted({pages for pages, _ in SCALE_GRID})] + [
		(b, b, pages, rate) for b in SCALE_BACKENDS[accel]
		for pages, rate in SCALE_GRID]
	out = []
	for i, (name, backend, pages, rate) in enumerate(points):
		label = 'scale-%s-%s-%dp-%d' % (accel, name, pages, rate)
		pf = dataclasses.replace(base, buf_pages=pages, sim_rate=rate)
		t0 = time.monotonic()
		leg = retried_once(label, lambda: dd_migrate.scenario(
			paths, backend, 1, log=lambda m: None, label=label,
			profile=pf, bench_mode='scale-idle' if name == 'idle'
			else 'scale')[0])
		d = dataclasses.asdict(leg)
		d['name'] = name
		out.append(d)
		log('# [%d/%d] scaling, %s, %s, %s pages/buffer, pace %s: %s in %.0f s, %d pages sent, device wrote %d pages (%.0f s in all; %s)'
		    % (i + 1, len(points), accel, name, pages or '-',
		       '%d pages/s' % rate if rate else 'none', 'converged'
		       if leg.converged else 'NOT converged', leg.migration_s,
		       leg.pages_sent, leg.device_pages,
		       time.monotonic() - t0, mem_available()))
	# Each point needs the idle run of its buffer size: fail here, in
	# the run, rather than when the page is written.
	scale_rows(out)
	return out


def cmd_scale_l2(args) -> int:
	"""Inside the L1 (dd_migrate.py bench-scale): the KVM points."""
	return l1_job(args.result, 'points', lambda: scale_points(
		dma_dirty_kernel.Paths(os.path.abspath(args.build),
				       args.variant), 'kvm',
		log=lambda m: print(m, flush=True)))


def scale_runs(k: Kernels, tcg_only: bool) -> dict:
	import dd_migrate

	out = {'tcg': scale_points(k.paths, 'tcg',
				   log=lambda m: print(m, flush=True))}
	if not tcg_only:
		res = retried_once('bench-scale', lambda: dd_migrate.run_l1(
			k.paths, 'bench-scale', 'bench-scale',
			'bench: L1 (test kernel, TCG) runs the scaling migrations under KVM',
			log=lambda m: print(m, flush=True)))
		out['kvm'] = res['points']
	return out


def scale_rows(points: List[dict]) -> List[dict]:
	"""Per point, what the page shows, against the idle migration with
	the same buffer size."""
	idles = {p['buf_pages']: p for p in points if p['name'] == 'idle'}
	rows = []
	for p in points:
		if p['name'] == 'idle':
			continue
		idle = idles.get(p['buf_pages'])
		if idle is None or not idle['converged']:
			raise BenchError('the scaling runs have no converged migration with the device idle and %d-page buffers to compare with'
					 % p['buf_pages'])
		extra = p['pages_sent'] - idle['pages_sent']
		rows.append({
			'backend': p['name'], 'pages': p['buf_pages'],
			'pace': p['sim_rate'], 'converged': p['converged'],
			'rate': p['device_pages'] / p['migration_s'],
			'written': p['device_pages'], 'extra': extra,
			'extra_per_written': extra / p['device_pages']
			if p['device_pages'] else 0.0,
			'time': p['migration_s'],
			'time_ratio': p['migration_s'] / idle['migration_s'],
			'passes': p['passes'], 'downtime': p['downtime_ms'],
			'hypercalls': p['hypercalls'],
		})
	return rows


def scale_plot(rows: List[dict], title: str, png: str) -> None:
	"""Extra pages sent and migration time against the device's write
	rate, one line per backend and buffer size; a cut migration is an
	open symbol at its cut."""
	dat = png[:-4] + '.dat'
	series = sorted({(r['backend'], r['pages']) for r in rows})
	with open(dat, 'w') as f:
		for b, pages in series:
			f.write('# %s %d\n' % (b, pages))
			for r in sorted((r for r in rows if (r['backend'], r['pages'])
					 == (b, pages)), key=lambda r: r['rate']):
				f.write('%.1f %d %.2f %d\n' % (r['rate'], r['extra'],
							      r['time'],
							      r['converged']))
			f.write('\n\n')
	plots = {}
	for col, what in ((2, 'extra'), (3, 'time')):
		plots[what] = ', '.join(
			'"%s" index %d using 1:%d with linespoints pt 7 lc %d '
			'title "%s, %d-page buffers", "" index %d using 1:'
			'($4 == 0 ? $%d : 1/0) with points pt 6 ps 3 lc %d notitle'
			% (os.path.basename(dat), i, col, i + 1, b, pages, i, col,
			   i + 1)
			for i, (b, pages) in enumerate(series))
	script = '\n'.join([
		'set terminal pngcairo size 1400,560 font ",10"',
		'set output "%s"' % os.path.basename(png),
		'set multiplot layout 1,2 title "%s"' % title,
		'set xlabel "pages/s the device wrote during migration (log scale)"',
		'set logscale x',
		'set grid', 'set key bottom right',
		'set ylabel "pages sent beyond the idle migration"',
		'plot %s' % plots['extra'],
		'set ylabel "migration time, s (circled: cut, not converged)"',
		'plot %s' % plots['time'],
		'unset multiplot',
	])
	subprocess.run(['gnuplot'], input=script, text=True, check=True,
		       cwd=os.path.dirname(png))
	os.unlink(dat)


def scale_page(scale: dict, rel: str, out_dir: str) -> List[str]:
	import dd_migrate

	if not scale:
		return []
	lines = ['## How the costs grow with the DMA rate and the buffer size',
		 '',
		 'dd_migrate.py\'s `scale` mode: the `make demo` guest without its '
		 'CPU churn, so the pages re-sent are the device\'s; the device '
		 'writes at a pace dd_sim holds it to (`--rate`, pages/s; "max": '
		 'as fast as the guest posts buffers) into buffers of one size '
		 '(`dd_sim_drv.buf_pages`: the pool is 320 buffers, 320 or 5120 '
		 'pages), and runs all through the migration. The bandwidth cap '
		 'stays at %d MiB/s (%d pages/s) and the downtime limit at %d ms '
		 '(%d pages), so the migration converges only if the pages the '
		 'device dirties during a pass fit in the downtime; it is cut and '
		 'counted as not converging after %d s. One run per point. Pages '
		 'sent are QEMU\'s full pages (`ram.normal`); the pages the device '
		 'wrote are its bytes received during the migration / 4 KiB, '
		 'rewrites of a page counted each time; "extra" is pages sent '
		 'beyond the same guest\'s migration with the device idle and '
		 'the same buffers, which also counts the guest\'s own pages '
		 'sent again because the migration ran longer, so it can exceed '
		 'the pages the device wrote. For a cut migration, the time and '
		 'the extra pages are those at the cut, a lower bound: hence '
		 '"≥", and no ratio to the pages written. The kvm backend makes one '
		 'hypercall per range of contiguous frames: one per single '
		 'buffer, one per page of a scatterlist (3 shapes in 8 are sg, '
		 'their pages not contiguous), none for the control buffers (1 '
		 'in 5), which nothing reports. Data '
		 'are not verified in this mode (the device writes through '
		 'switchover).' % (dd_migrate.MAX_BANDWIDTH >> 20,
				     dd_migrate.MAX_BANDWIDTH >> 12,
				     dd_migrate.SCALE_DOWNTIME_MS,
				     dd_migrate.MAX_BANDWIDTH * dd_migrate.SCALE_DOWNTIME_MS
				     // 1000 >> 12, dd_migrate.SCALE_LIMIT_S), '']
	for accel, title in (('tcg', 'TCG'), ('kvm', 'KVM nested in TCG')):
		points = scale.get(accel)
		if not points:
			continue
		rows = scale_rows(points)
		idles = [p for p in points if p['name'] == 'idle']
		scale_plot(rows, 'Scaling, %s' % title,
			   os.path.join(out_dir, 'scale-%s.png' % accel))
		lines += ['### %s' % title, '',
			  '![scaling, %s](%s/scale-%s.png)' % (title, rel, accel), '',
			  'Device idle: ' + '; '.join(
				  '%d-page buffers, converged in %.1f s, %d passes, '
				  '%d pages sent, downtime %d ms' % (
					  p['buf_pages'], p['migration_s'],
					  p['passes'], p['pages_sent'],
					  p['downtime_ms']) for p in idles) + '.', '',
			  '| backend | pages/buffer | pace, pages/s | device '
			  'pages/s during | converged | migration s (/ idle) | '
			  'passes | downtime ms | device pages written | extra pages '
			  'sent | extra / written |' + (' hypercalls per written page |'
							if accel == 'kvm' else ''),
			  '|' + '---|' * (11 + (accel == 'kvm'))]
		for r in rows:
			cut = '' if r['converged'] else '≥'
			lines.append('| %s | %d | %s | %.0f | %s | %s%.1f (%s%.1f) | '
				     '%d | %s | %d | %s%d | %s |%s' % (
				r['backend'], r['pages'],
				r['pace'] or 'max', r['rate'],
				'yes' if r['converged'] else '**no** (cut)',
				cut, r['time'], cut, r['time_ratio'], r['passes'],
				r['downtime'] if r['converged'] else '-',
				r['written'], cut, r['extra'],
				'%.2f' % r['extra_per_written'] if r['converged']
				else '-',
				(' %.3f |' % (r['hypercalls'] / r['written'])
				 if r['written'] else ' - |')
				if accel == 'kvm' else ''))
		lines += [''] + convergence_lines(rows) + ['']
	return lines


def convergence_lines(rows: List[dict]) -> List[str]:
	"""Per backend and buffer size: the fastest device that still let
	the migration converge, and the slowest that did not."""
	out = []
	for b, pages in sorted({(r['backend'], r['pages']) for r in rows}):
		rs = [r for r in rows if (r['backend'], r['pages']) == (b, pages)]
		ok = [r['rate'] for r in rs if r['converged']]
		cut = [r['rate'] for r in rs if not r['converged']]
		out.append('- %s, %d-page buffers: %s; %s.' % (
			b, pages,
			'converged with the device writing up to %.0f pages/s' %
			max(ok) if ok else 'never converged',
			'did not converge from %.0f pages/s' % min(cut) if cut
			else 'converged at every pace tried'))
	return out


def cmd_page(args) -> int:
	"""Write the summary, the plots and the page again from results.json
	(after a change to the page's text; nothing is measured)."""
	k = Kernels(args.build)
	out_dir = os.path.abspath(args.out)
	with open(os.path.join(out_dir, 'results.json')) as f:
		r = json.load(f)
	write_results(k, out_dir, r['tcg'], r['kvm'], r['migration'],
		      r.get('scale', {}), r['minutes'])
	return 0


def cmd_scale(args) -> int:
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


def l1_job(result: str, key: str, run) -> int:
	"""Inside the L1: {@key: @run()}, or the error, into @result for
	dd_migrate.run_l1() on the host."""
	import dd_migrate

	try:
		out = {key: run()}
	except Exception as e:  # noqa: BLE001 - handed to the host
		out = {'error': '%s: %s' % (type(e).__name__, e),
		       'environment': False}
	dd_migrate.write_json(result, out)
	return 1 if 'error' in out else 0


def cmd_l2(args) -> int:
	"""Inside the L1 (dd_migrate.py bench-l2)."""
	return l1_job(args.result, 'runs', lambda: l2_runs(args.build))


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
	args = ap.parse_args(argv)
	return args.func(args)


if __name__ == '__main__':
	sys.exit(main(sys.argv[1:]))
