# SPDX-License-Identifier: GPL-2.0
"""How a migration leg is judged: leg_checks() gives, for one Leg of
dd_scenario.py, every (test name, ok, detail) it must show.  The test
harness (dd_harness.py) counts them; "dd_migrate.py run" prints them."""

from __future__ import annotations

from typing import List, Tuple

from dd_device import CLASSES
from dd_scenario import (COUNTERS_TAG, QUIESCE_AFTER_BUFFERS, REPLUG_BUFFERS,
			 Leg, reported)

Check = Tuple[str, bool, str]


def path_check(leg: Leg, backend: str, iommu: bool) -> Tuple[bool, str]:
	"""Whether the guest's counters show the DMA path the run must take."""
	c = leg.counters
	if c is None:
		return False, 'the guest printed no dma_mark_dirty counters (%r line)' \
			% COUNTERS_TAG.strip()
	calls = {k[len('calls_'):]: int(v) for k, v in c.items()
		 if k.startswith('calls_') and v.isdigit()}
	# Every unmap or sync for the CPU of a tracked or long-lived buffer
	# since boot is at least one call on the path (the counters and the
	# driver's own counts both live in the migrated guest).
	handbacks = leg.cls_received.get('tracked', 0) + \
		leg.cls_received.get('long', 0)
	shown = 'backend %s, %s for %d tracked and long-lived hand-backs, %d descriptors carried an IOVA' % (
		c.get('backend'), ', '.join('calls_%s=%d' % kv
					    for kv in sorted(calls.items())),
		handbacks, leg.remapped)
	if c.get('backend') != backend or 'direct' not in calls or \
			'iommu' not in calls:
		return False, shown
	if backend == 'off':
		return not any(calls.values()), shown
	if backend == 'kvm':
		# Counted only while KVM logged (during the migration), not
		# for every hand-back since boot: kvm_checks() holds the
		# count to what KVM saw.
		return (calls['direct'] > 0 and calls['iommu'] == 0 and
			leg.remapped == 0), shown
	if iommu:
		# Behind the IOMMU nothing may take dma-direct, and the driver
		# must have handed the device IOVAs, not physical addresses.
		return (calls['iommu'] >= handbacks > 0 and
			calls['direct'] == 0 and leg.remapped > 0), shown
	return (calls['direct'] >= handbacks > 0 and calls['iommu'] == 0 and
		leg.remapped == 0), shown


def kvm_checks(leg: Leg) -> List[Check]:
	"""With dma_mark_dirty=kvm: the guest made no report before migration
	(KVM was not logging: the bypass), and what it reported is what KVM
	counted, on the source during the migration and on the destination
	(which logs during its traffic after a replug), with no page touched
	instead.  After a replug, the destination's own reports reached KVM,
	after it registered again (v4: the VMM does not carry the
	registration over)."""
	c = leg.counters_after if leg.quiesce == 'unplug' else leg.counters
	guest = reported(c) - leg.reported_before
	host = leg.host_pages_src - leg.host_pages_start + leg.host_pages_dst
	before = leg.host_pages_start - leg.host_pages_before
	checks = [
		('kvm_no_report_before_migration', before == 0,
		 'KVM counted %d pages reported by the source before migration started (it was not logging)'
		 % before),
		('kvm_reports_counted',
		 leg.host_pages_src > leg.host_pages_start >= 0 and
		 leg.host_pages_dst >= 0 and host == guest,
		 'KVM dma_dirty_pages: source %d during migration, destination %d; the guest reported %d pages (pages_direct+pages_iommu+pages_caller)'
		 % (leg.host_pages_src - leg.host_pages_start,
		    leg.host_pages_dst, guest)),
		('kvm_no_touch_fallback', leg.touched_instead == 0,
		 '%d "touched instead" warnings on the consoles'
		 % leg.touched_instead),
	]
	if leg.quiesce == 'unplug':
		checks.append(('kvm_destination_reports',
			       leg.host_pages_dst > 0 and leg.reregistered,
			       'the destination registered again: %s; KVM counted %d pages it reported after the replug'
			       % ('yes' if leg.reregistered else
				  'no ("registering again" not on its console)',
				  leg.host_pages_dst)))
	return checks


def destination_check(leg: Leg, backend: str) -> Check:
	"""After a replug, the destination's unmaps and syncs of its new
	traffic were reported (none with tracking off)."""
	before, after = reported(leg.counters), reported(leg.counters_after)
	ok = before >= 0 and after >= 0 and (
		after == before if backend == 'off' else after > before)
	return ('destination_reported', ok,
		'the guest reported %d pages before the destination\'s traffic after the replug, %d after it (%s)'
		% (before, after, 'no counters' if min(before, after) < 0 else
		   'none expected with tracking off' if backend == 'off' else
		   'more expected'))


def class_checks(leg: Leg, tracking: bool) -> List[Check]:
	"""Each buffer class corrupted or intact as it must be."""
	checks = []
	for c, what in CLASSES:
		n, of = leg.cls_corrupted.get(c, -1), leg.cls_verified.get(c, 0)
		if c == 'control':
			# Nothing reports these pages, whatever the backend.
			checks.append(('control_corrupted', n > 0,
				       'control corrupted = %d of %d (unreported DMA is lost)'
				       % (n, of)))
		elif tracking:
			checks.append(('%s_intact' % c, n == 0,
				       '%s corrupted = %d of %d' % (what, n, of)))
		else:
			checks.append(('%s_corrupted_without_tracking' % c, n > 0,
				       '%s corrupted = %d of %d' % (what, n, of)))
	return checks


def leg_checks(leg: Leg, backend: str, iommu: bool = False) -> List[Check]:
	"""(test name, ok, detail) for everything a leg must have shown."""
	checks: List[Check] = [
		('traffic_during_migration',
		 leg.received_during >= QUIESCE_AFTER_BUFFERS,
		 '%d buffers received during migration (at least %d: every buffer rewritten)'
		 % (leg.received_during, QUIESCE_AFTER_BUFFERS)),
		('buffers_verified',
		 all(leg.cls_verified.get(c) == leg.pool.get(c) and
		     bool(leg.pool.get(c)) for c, _ in CLASSES),
		 ', '.join('%s %d of %d' % (what, leg.cls_verified.get(c, 0),
					    leg.pool.get(c, 0))
			   for c, what in CLASSES)),
		('payload_on_receipt', leg.rx_bad == 0,
		 '%d buffers did not hold their payload when received on the source'
		 % leg.rx_bad),
	]
	checks += class_checks(leg, backend != 'off')
	ok, detail = path_check(leg, backend, iommu)
	checks.append(('dma_path', ok, detail))
	if leg.ring_asked:
		checks.append(('dirty_ring_in_use', leg.ring_used == leg.ring_asked,
			       'KVM dirty ring of %d entries asked, %s' % (
				       leg.ring_asked, 'in use (QEMU did not fall back to the bitmap)'
				       if leg.ring_used else
				       'QEMU fell back to the dirty bitmap ("KVM dirty ring not available")')))
	if backend == 'kvm':
		checks += kvm_checks(leg)
	if leg.quiesce == 'unplug':
		checks.append(('device_works_after_replug',
			       leg.replug_received >= REPLUG_BUFFERS,
			       '%d buffers received on the destination after the device was plugged back (at least %d)'
			       % (leg.replug_received, REPLUG_BUFFERS)))
		checks.append(destination_check(leg, backend))
	return checks
