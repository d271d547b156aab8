# SPDX-License-Identifier: GPL-2.0
"""make bench, migration with DMA running: the runs of dd_scenario.py's
scenario that make bench makes, and the page's sections on them.

migration_runs(): each of MODES (the device kept through pre-copy,
unplugged as migration starts, never started), MIG_RUNS times, on TCG and
nested KVM, with the hot-unplug quiesce; migration_page() compares them.

scale_runs(): how the costs grow with the device's write rate and buffer
size, the SCALE_GRID points in the scenario's 'scale' mode for each of
SCALE_BACKENDS, against a migration with the device idle; on KVM the
points run in an L1 (scale_points(), "dd_bench.py l1-job bench-scale").
scale_rows() is what each point shows against its idle migration,
scale_page() and convergence_lines() the page's section.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import statistics
import subprocess
import time
from operator import itemgetter
from typing import Any, Callable, Dict, List, Tuple

import dd_nested
import dma_dirty_kernel
from dd_bench_api import BenchError, Kernels, Log, flushed, retried_once
from dd_scenario import (KVM_PROFILE, MAX_BANDWIDTH, SCALE_DOWNTIME_MS,
			 SCALE_LIMIT_S, Leg, Profile, Setup, nested, scenario)

# Migration with DMA running ---------------------------------------------

MIG_RUNS = 3		# migrations of each mode on each accelerator
# The driver's buffer shapes (dd_sim_drv.c dd_shapes): 1, 2, 4, 4, 16, 16,
# 8 and 1 pages, in turn through the pool of 320 buffers.
PAGES_PER_BUFFER = 52 / 8
POOL_PAGES = 320 * 52 // 8

MODES = [
	# (mode, backend on TCG, backend nested, what it is)
	('kept', 'touch', 'kvm',
	 'the device kept through pre-copy, tracked (touch on TCG, kvm on KVM)'),
	('failover', 'off', 'off',
	 'the device unplugged as migration starts (virtio-net failover practice)'),
	('idle', 'off', 'off', 'the same guest, the device never started'),
]
# the page's sections, one per accelerator
ACCELS = (('tcg', 'TCG'), ('kvm', 'KVM nested in TCG'))


def quiet(m: str) -> None:
	"""The scenario's own log, which make bench leaves out."""


def bench_leg(k: Kernels, accel: str, backend: str, mode: str,
	      label: str) -> Leg:
	"""One migration of the scenario in @mode, hot-unplug quiesce."""
	if accel == 'tcg':
		return scenario(k.paths, Setup(backend, label=label,
					       quiesce='unplug', bench_mode=mode),
				1, log=quiet)[0]
	return nested(k.paths, backend, 1, log=quiet, label=label,
		      quiesce='unplug', bench_mode=mode)[0]


def migration_runs(k: Kernels, tcg_only: bool) -> dict:
	"""dd_scenario's scenario in each of MODES, MIG_RUNS times, on TCG and
	(unless @tcg_only) nested KVM, the hot-unplug quiesce."""
	out: dict = {'tcg': {}, 'kvm': {}}
	accels = ['tcg'] + ([] if tcg_only else ['kvm'])
	total = len(accels) * len(MODES) * MIG_RUNS
	n = 0
	for run in range(MIG_RUNS):
		for accel in accels:
			for mode, b_tcg, b_kvm, _ in MODES:
				n += 1
				label = 'bench-%s-%s-%d' % (accel, mode, run)
				backend = b_tcg if accel == 'tcg' else b_kvm
				leg = retried_once(label, lambda: bench_leg(
					k, accel, backend, mode, label))
				out[accel].setdefault(mode, []).append(
					dataclasses.asdict(leg))
				print('# [%d/%d] migration %s %s: %.0f s, %d buffers during, %.0f MB sent, downtime %d ms'
				      % (n, total, accel, mode, leg.migration_s,
					 leg.received_during, leg.mb_sent,
					 leg.downtime_ms), flush=True)
	return out


# A figure of a leg, as results.json has it (a number).
Figure = Callable[[dict], Any]


def med(legs: List[dict], f: Figure) -> float:
	m: float = statistics.median(f(leg) for leg in legs)
	return m


def spread(legs: List[dict], f: Figure) -> str:
	v: List[float] = [f(leg) for leg in legs]
	return '%.3g (%.3g-%.3g)' % (statistics.median(v), min(v), max(v))


def migration_page(mig: dict) -> List[str]:
	lines = ['## Migration with DMA running', '',
		 'dd_scenario.py\'s scenario (the `make demo` guest, the device '
		 'hot-unplugged as the quiesce), %d runs of each mode, medians '
		 'and (min-max): ' % MIG_RUNS + '; '.join(
			 '`%s`: %s' % (m, w) for m, _, _, w in MODES) + '. In '
		 'every mode the bandwidth cap (8 MiB/s) is lifted once the '
		 'first pass is over and the device is gone, so the timelines '
		 'compare. "During migration, / before": buffers the device '
		 'delivered per second of migration over its rate before.', '']
	for accel, title in ACCELS:
		modes = mig.get(accel) or {}
		if modes:
			lines += migration_table(title, modes)
			lines += pages_note(modes)
	return lines


def migration_table(title: str, modes: Dict[str, List[dict]]) -> List[str]:
	"""One accelerator's runs, a row per mode."""
	lines = ['### %s' % title, '',
		 '| mode | DMA buffers/s before | during migration, / before '
		 '| device present for, of the migration | migration s | '
		 'downtime ms | MB sent | passes |',
		 '|---|---|---|---|---|---|---|---|']
	for mode, _, _, _ in MODES:
		legs = modes[mode]
		lines.append('| %s | %s | %s | %s | %s | %s | %s | %s |' % (
			mode,
			spread(legs, lambda leg: leg['rate_before']),
			spread(legs, lambda leg: (
				leg['received_during'] / leg['migration_s'] /
				leg['rate_before']) if leg['rate_before'] else 0),
			spread(legs, lambda leg: leg['dma_s'] / leg['migration_s']),
			spread(legs, lambda leg: leg['migration_s']),
			spread(legs, lambda leg: leg['downtime_ms']),
			spread(legs, lambda leg: leg['mb_sent']),
			spread(legs, lambda leg: leg['passes'])))
	return lines


def pages_note(modes: Dict[str, List[dict]]) -> List[str]:
	"""What tracking cost in pages sent, and what VFIO type1 would."""
	idle, kept = modes['idle'], modes['kept']
	idle_mb = med(idle, lambda leg: leg['mb_sent'])
	extra = med(kept, lambda leg: (leg['mb_sent'] - idle_mb) * 256)
	wrote = med(kept, lambda leg: leg['received_during'] *
		    PAGES_PER_BUFFER)
	passes = med(kept, lambda leg: leg['passes'])
	vfio_pages = passes * POOL_PAGES
	return ['',
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


def scale_grid(accel: str) -> List[Tuple[str, str, int, int]]:
	"""(name, backend, pages per buffer, pace) of every point on @accel:
	the device idle for each buffer size (the pool the CPU filled is
	part of what the first pass sends), then each backend and SCALE_GRID
	point."""
	return [('idle', 'off', pages, 0) for pages in
		sorted({pages for pages, _ in SCALE_GRID})] + [
		(b, b, pages, rate) for b in SCALE_BACKENDS[accel]
		for pages, rate in SCALE_GRID]


def scale_points(paths: dma_dirty_kernel.Paths, accel: str,
		 log: Log = print) -> List[dict]:
	"""In this process (inside the L1 for 'kvm'): a migration for each
	scale_grid() point, in dd_scenario's 'scale' mode."""
	base = Profile() if accel == 'tcg' else KVM_PROFILE
	# No CPU churn: the pages re-sent are the device's.
	base = dataclasses.replace(base, churn_mb=0)
	points = scale_grid(accel)
	out = []
	for i, (name, backend, pages, rate) in enumerate(points):
		label = 'scale-%s-%s-%dp-%d' % (accel, name, pages, rate)
		setup = Setup(backend, label=label,
			      profile=dataclasses.replace(base, buf_pages=pages,
							  sim_rate=rate),
			      bench_mode='scale-idle' if name == 'idle'
			      else 'scale')
		t0 = time.monotonic()
		leg = retried_once(label, lambda: scenario(paths, setup, 1,
							   log=quiet)[0])
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


def scale_runs(k: Kernels, tcg_only: bool) -> Dict[str, List[dict]]:
	"""scale_points() on TCG here and, unless @tcg_only, on KVM in an
	L1."""
	out = {'tcg': scale_points(k.paths, 'tcg', log=flushed)}
	if not tcg_only:
		res = retried_once('bench-scale', lambda: dd_nested.run_l1(
			k.paths, 'bench-scale', 'dd_bench.py', 'l1-job bench-scale',
			'bench: L1 (test kernel, TCG) runs the scaling migrations under KVM',
			flushed))
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
					 == (b, pages)), key=itemgetter('rate')):
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
	"""The page's scaling section, and its plots in @out_dir."""
	if not scale:
		return []
	lines = scale_intro()
	for accel, title in ACCELS:
		points = scale.get(accel)
		if points:
			lines += scale_section(accel, title, points, rel, out_dir)
	return lines


def scale_intro() -> List[str]:
	return ['## How the costs grow with the DMA rate and the buffer size',
		'',
		'dd_scenario.py\'s `scale` mode: the `make demo` guest without its '
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
		'switchover).' % (MAX_BANDWIDTH >> 20, MAX_BANDWIDTH >> 12,
				    SCALE_DOWNTIME_MS,
				    MAX_BANDWIDTH * SCALE_DOWNTIME_MS // 1000 >> 12,
				    SCALE_LIMIT_S), '']


def scale_section(accel: str, title: str, points: List[dict], rel: str,
		  out_dir: str) -> List[str]:
	"""One accelerator's points: the plot, the idle migrations, a row
	per point, where convergence stops."""
	rows = scale_rows(points)
	idles = [p for p in points if p['name'] == 'idle']
	scale_plot(rows, 'Scaling, %s' % title,
		   os.path.join(out_dir, 'scale-%s.png' % accel))
	kvm = accel == 'kvm'
	lines = ['### %s' % title, '',
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
						if kvm else ''),
		 '|' + '---|' * (11 + kvm)]
	lines += [scale_row(r, kvm) for r in rows]
	return lines + [''] + convergence_lines(rows) + ['']


def scale_row(r: dict, kvm: bool) -> str:
	"""A point's row; @kvm: with its hypercalls."""
	cut = '' if r['converged'] else '≥'
	return ('| %s | %d | %s | %.0f | %s | %s%.1f (%s%.1f) | '
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
			if kvm else ''))


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
