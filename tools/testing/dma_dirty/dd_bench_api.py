# SPDX-License-Identifier: GPL-2.0
"""make bench, the DMA API's cost: the boots that measure it and what they
measured.

Kernels is the two kernels (the baseline, built without
CONFIG_DMA_MARK_DIRTY, and the test kernel) with their dd_bench.ko and
initramfs.  tcg_rounds() boots every TCG_CONFIGS configuration under TCG,
through dma-direct and dma-iommu, ROUNDS times; kvm_rounds() has
dd_nested.py boot an L1 that runs every KVM_CONFIGS configuration as an L2
guest under KVM (l2_runs(), "dd_bench.py l1-job bench-l2"), ROUNDS times.
summarize() turns the samples into ratios to the baseline of the same
round; table(), plot(), exits_rows() and disassembly() are what the page
(dd_bench_page.py) shows of them.

BenchError ends the benchmark; retried_once() is how every migration and
L1 of make bench runs: once more after an environment failure, anything
else a BenchError.
"""

from __future__ import annotations

import contextlib
import os
import re
import statistics
import subprocess
import time
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

import dd_errors
import dd_nested
import dd_qmp
import dma_dirty_kernel
from dd_errors import TestFailure
from dd_vm import (IOMMU_APPEND, IOMMU_QEMU, Guest, keep_logging, kvm_stat,
		   start_l2)

HERE = os.path.dirname(os.path.abspath(__file__))
ROUNDS = 3		# boots of every configuration
REPS = 5		# repetitions of every case in one boot
CASE_MS = 20		# milliseconds per case and repetition
LINE = re.compile(r'dd_bench: rep=(\d+) op=(\w+) dir=(\w+) size=(\d+) '
		  r'iters=(\d+) ns=(\d+)')

# (name, kernel, dma_mark_dirty=, what it is)
TCG_CONFIGS: List[Tuple[str, str, Optional[str], str]] = [
	('base', 'base', None, 'built without CONFIG_DMA_MARK_DIRTY'),
	('off', 'series', 'off', 'dma_mark_dirty=off'),
	('touch', 'series', 'touch', 'dma_mark_dirty=touch'),
]
# (name, kernel, dma_mark_dirty=, KVM logging, what it is); L2 guests
KVM_CONFIGS: List[Tuple[str, str, Optional[str], bool, str]] = [
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
L2_WAIT = 900		# seconds for an L2's two counters lines
KVM_STATS = ('exits', 'hypercalls', 'dma_dirty_pages')

Log = Callable[[str], None]
# (op, dir, size) of a sample
Case = Tuple[str, str, int]
# one round: configuration name -> what parse() gives for its boot
Round = Dict[str, dict]
T = TypeVar('T')


class BenchError(Exception):
	"""Ends the benchmark; the message says what failed."""


def flushed(m: str) -> None:
	"""A log that make shows as it comes."""
	print(m, flush=True)


def retried_once(label: str, run: Callable[[], T]) -> T:
	"""@run(), retried once after an environment failure (a guest or an L1
	that crashed or stalled before the test ran); anything else ends the
	benchmark with @label and what failed."""
	try:
		return dd_errors.retried_once(label, run, log=flushed)
	except (TestFailure, dd_qmp.QMPError) as e:
		raise BenchError('%s: %s' % (label, e)) from e


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
	for line in lines:
		m = LINE.search(line)
		if m:
			rep, op, d, size, iters, ns = m.groups()
			out['samples'].append({'rep': int(rep), 'op': op, 'dir': d,
					       'size': int(size),
					       'iters': int(iters), 'ns': int(ns)})
		elif line.startswith('# dd_bench: counters'):
			out['counters'].append(dict(kv.split('=', 1) for kv in
						    line.split()[3:] if '=' in kv))
		elif line.startswith('# dd_bench: end'):
			out['end'] = True
		elif 'dd_bench: failed' in line or '# dd_bench: error' in line:
			out['error'] = line.strip()
	return out


def finished(results: str, who: str, unfinished: str, console: str) -> dict:
	"""What parse() gives of the results log @results of a guest that
	powered off; @who did not finish (@unfinished, unless it said why)
	is a BenchError."""
	with open(results, errors='replace') as f:
		out = parse(f.read().splitlines())
	if not out['end'] or 'error' in out or not out['samples']:
		raise BenchError('%s: %s (console %s)' % (
			who, out.get('error', unfinished), console))
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
	return finished(results, name, 'the guest did not finish', console)


def tcg_rounds(k: Kernels) -> Dict[str, List[Round]]:
	"""Every TCG_CONFIGS configuration booted once per round, through
	dma-direct and dma-iommu, ROUNDS rounds."""
	tcg: Dict[str, List[Round]] = {'direct': [], 'iommu': []}
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
	return tcg


def kvm_rounds(k: Kernels) -> List[Round]:
	"""ROUNDS L1s, each running every KVM_CONFIGS guest once (l2_runs(),
	"dd_bench.py l1-job bench-l2")."""
	kvm: List[Round] = []
	for rnd in range(ROUNDS):
		print('# nested KVM round %d of %d: an L1 boots and runs %d L2 guests'
		      % (rnd + 1, ROUNDS, len(KVM_CONFIGS)), flush=True)
		name = 'bench-l2-%d' % rnd
		res = retried_once(name, lambda: dd_nested.run_l1(
			k.paths, name, 'dd_bench.py', 'l1-job bench-l2',
			'bench: L1 (test kernel, TCG) runs the L2 benchmarks under KVM',
			flushed))
		runs: Round = res['runs']
		kvm.append(runs)
	return kvm


# Inside the L1 -----------------------------------------------------------

def l2_runs(build: str, log: Log = print) -> Dict[str, dict]:
	"""Inside the L1: every KVM_CONFIGS guest once, with KVM's exit and
	hypercall counts of the VM while dd_bench ran."""
	if not os.path.exists('/dev/kvm'):
		raise BenchError('no /dev/kvm in the L1')
	k = Kernels(build)
	runs = {}
	for name, kernel, backend, logging, _ in KVM_CONFIGS:
		out = l2_run(k, name, kernel, backend, logging)
		log('#   L2 %s: %d samples, KVM: %s' % (name, len(out['samples']),
						       out['kvm']))
		runs[name] = out
	return runs


def l2_run(k: Kernels, name: str, kernel: str, backend: Optional[str],
	   logging: bool) -> dict:
	"""Inside the L1: one KVM_CONFIGS guest, what parse() gives of it
	and, under 'kvm', KVM's counts while dd_bench ran."""
	# The only folder of the build the L1 mounts read-write
	g = start_l2(os.path.join(k.paths.logs, 'bench-kvm-' + name),
		     k.kernel[kernel], k.initrd[kernel],
		     append_for(backend, L2_PAUSE, logging))
	try:
		if logging:
			keep_logging(g)
		stats = l2_stats(g, name)
		if logging:
			status = g.q.cmd('query-migrate').get('status')
			if status != 'active':
				raise BenchError('L2 %s: KVM stopped logging before the end (migration %s)'
						 % (name, status))
			g.q.cmd('migrate_cancel')
		g.proc.wait(120)
	finally:
		g.stop()
	out = finished(g.results, 'L2 ' + name, 'did not finish', g.console)
	out['kvm'] = {s: stats['%s_1' % s] - stats['%s_0' % s]
		      for s in KVM_STATS}
	return out


def l2_stats(g: Guest, name: str) -> Dict[str, int]:
	"""KVM_STATS of @g's VM as the guest prints each of its two counters
	lines, before and after dd_bench ran: STAT_0 and STAT_1."""
	stats: Dict[str, int] = {}
	deadline = time.monotonic() + L2_WAIT
	phase = 0
	while phase < 2:
		if g.proc.poll() is not None:
			raise BenchError('L2 %s exited early (console %s)'
					 % (name, g.console))
		if time.monotonic() > deadline:
			raise BenchError('L2 %s: no result in %d s' % (name, L2_WAIT))
		with contextlib.suppress(OSError), \
				open(g.results, errors='replace') as f:
			text = f.read()
		n = text.count('# dd_bench: counters')
		if n > phase:
			# The guest pauses L2_PAUSE s after each.
			for s in KVM_STATS:
				stats['%s_%d' % (s, phase)] = kvm_stat(g, s)
			phase += 1
		time.sleep(0.2)
	return stats


# Summaries ---------------------------------------------------------------

def per_op(sample: dict) -> float:
	ns: float = sample['ns'] / sample['iters']
	return ns


def cases(samples: List[dict]) -> List[Case]:
	return sorted({(s['op'], s['dir'], s['size']) for s in samples},
		      key=lambda c: (c[0], c[1], c[2]))


def median_of(run: dict, case: Case) -> float:
	v = [per_op(s) for s in run['samples']
	     if (s['op'], s['dir'], s['size']) == case]
	return statistics.median(v)


def ratios(rounds: List[Round], name: str, base: str,
	   case: Case) -> List[float]:
	"""Per round: median ns/op of @name over the median of @base."""
	return [median_of(r[name], case) / median_of(r[base], case)
		for r in rounds]


def summarize(rounds: List[Round], names: List[str],
	      base: str) -> List[dict]:
	rows = []
	for case in cases(rounds[0][base]['samples']):
		row: dict = {'op': case[0], 'dir': case[1], 'size': case[2],
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
	body = [line.rstrip() for line in out.splitlines()
		if re.match(r'^\s*[0-9a-f]+:', line)]
	start = next((i for i, line in enumerate(body)
		      if '<dma_mark_dirty_key>' in line), None)
	if start is None:
		return []
	end = next((i for i, line in enumerate(body[start:], start)
		    if '__dma_dirty_mapped' in line), start + 12)
	return body[start:end + 1]


def exits_rows(kvm: List[Round]) -> List[str]:
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
