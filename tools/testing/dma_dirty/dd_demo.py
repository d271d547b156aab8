# SPDX-License-Identifier: GPL-2.0
"""make demo: the migration scenario with tracking off and on, under TCG
and (unless --tcg-only) under nested KVM, and the table of what reached
the destination."""

from __future__ import annotations

from typing import Dict, List, Tuple

import dma_dirty_kernel
from dd_device import CLASSES
from dd_scenario import Leg, Setup, nested, scenario

COLUMNS = ['dma_mark_dirty', 'accelerator', 'received during migration',
	   'verified on destination', 'tracked corrupted',
	   'long-lived corrupted', 'control corrupted', 'passes', 'MB sent',
	   'downtime ms']


def table(rows: Dict[Tuple[str, str], Leg]) -> List[str]:
	"""@rows: (dma_mark_dirty, accelerator) -> leg; the Markdown table."""
	out = ['| ' + ' | '.join(COLUMNS) + ' |',
	       '|' + '|'.join('-' * (len(c) + 2) for c in COLUMNS) + '|']
	for (name, accel), leg in rows.items():
		vals = [name, accel, leg.received_during, leg.verified] + \
			['%d/%d' % (leg.cls_corrupted[c], leg.cls_verified[c])
			 for c, _ in CLASSES] + \
			[leg.passes, '%.0f' % leg.mb_sent, leg.downtime_ms]
		out.append('| ' + ' | '.join(
			str(v).rjust(len(c)) if i > 1 else str(v).ljust(len(c))
			for i, (v, c) in enumerate(zip(vals, COLUMNS))) + ' |')
	return out


def demo(paths: dma_dirty_kernel.Paths, tcg_only: bool) -> List[str]:
	"""Every row of the demo, run; the table."""
	rows: Dict[Tuple[str, str], Leg] = {}
	for backend in ('off', 'touch'):
		rows[backend, 'tcg'] = scenario(paths, Setup(backend))[0]
	if not tcg_only:
		# The same under KVM, nested, with the hot-unplug quiesce.
		for backend in ('off', 'touch', 'kvm'):
			rows[backend, 'kvm-nested'] = nested(
				paths, backend, label='demo-kvm-' + backend,
				quiesce='unplug')[0]
	return table(rows)
