# SPDX-License-Identifier: GPL-2.0
"""The migration scenario: a guest whose simulated pass-through device
does DMA is live-migrated, the device quiesced during pre-copy, and the
destination verifies every buffer it kept.

The guest's RAM is a file under /dev/shm that dd_sim also maps: dd_sim
writes the payload of each buffer the guest driver posts straight into it,
which QEMU's dirty tracking never sees.  A Testbed owns every process and
file of one scenario; a Migration is one leg: the destination started, the
migration run while the traffic runs, the device quiesced through its
registers (not the serial console, which can stall under TCG while
pre-copy iterates), the migration let to complete, the destination asked
to verify every buffer against the payload the device wrote for its
sequence number.  The judging of a leg is dd_checks.py's.

Two quiesces (QUIESCE_MODES): the stop bit in the device's registers, or
a hot-unplug during pre-copy: the driver stops, the guest powers the PCIe
slot off (demo.sh), pciehp removes the device and the driver's remove
path unmaps everything; on the destination a new device is plugged on the
same root port, the driver adopts its kept buffers, verifies them and
receives again.  QEMU 10 refuses a QMP device_del while a migration runs
("device_del not allowed while migrating": only a failover primary may be
unplugged then), hence the guest's own slot power-off; the device_del (of
the powered-off device, DEVICE_DELETED awaited) and the device_add happen
on the destination.

nested() runs the same scenario on KVM: dd_nested.py boots the test
kernel as an L1 KVM host, which runs "dd_migrate.py run --accel kvm" with
the lighter settings of KVM_PROFILE and hands the legs back as JSON.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import tempfile
import time
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Tuple

import dd_nested
import dd_qmp
import dma_dirty_kernel
from dd_device import BAR_BYTES, CLASSES, Regs, Sim, read_layout
from dd_errors import EnvironmentFailure, TestFailure
from dd_vm import (IOMMU_APPEND, UNPLUG_APPEND, Guest, MigrationGuest,
		   cpu_model, free_port, keep_logging, kvm_stat, launch,
		   migration_cmd, tail)

RAM_MB = 256
# Pre-copy bandwidth, bytes/s.  Below what the guest dirties under TCG here
# (about 5,400 pages/s, 21 MB/s, from the churn and the device traffic), so
# pre-copy keeps iterating until the device is quiesced and the runner lifts
# the cap.
MAX_BANDWIDTH = 8 << 20
FINAL_BANDWIDTH = 1 << 30
# When to quiesce: once this many buffers arrived during the migration and
# the first pass has sent half of guest RAM.  Before the first pass ends
# QEMU cannot switch over, so the device is certain to be quiesced first;
# later, with little dirty, QEMU may find nothing to send and switch over
# between two polls.  At least the whole pool (DD_POOL, 320 buffers): the
# driver fills its buffers in turn, so every buffer verified on the
# destination was written by the device during the migration.
QUIESCE_AFTER_BUFFERS = 400
# What the guest (demo.sh) prints after each verification, and each time
# the device is quiesced: the backend and the dma_mark_dirty debugfs
# counters.
COUNTERS_TAG = 'demo: verified: '
QUIESCED_TAG = 'demo: quiesced: '
WARMUP_BUFFERS = 50		# buffers received before migration starts
# No migration progress (bytes sent, buffers received) for this long: a
# stalled guest or QEMU, not a result.
STALL_SECONDS = 120
DIRTY_RING = 4096	# entries per vCPU in the -ring rows
# How the device is quiesced before switchover (see the top).
QUIESCE_MODES = ('stop', 'unplug')
# make bench (dd_bench.py), hot-unplug quiesce: 'kept', the device runs
# through pre-copy as in the tests; 'failover', it is unplugged as soon as
# migration starts (the virtio-net failover practice); 'idle', it never
# runs.  In all three the bandwidth is raised only once the first pass is
# over, so their timelines compare.  'scale', for the scaling runs: the
# device runs all along, no quiesce and no lifted cap, the downtime limit
# SCALE_DOWNTIME_MS; the migration converges by itself within
# SCALE_LIMIT_S, or it is cancelled and counted as not converging.  Its
# data are not verified: the device keeps writing through switchover.
# 'scale-idle': the same with the device never started.
BENCH_MODES = ('kept', 'failover', 'idle', 'scale', 'scale-idle')
RATE_SECONDS = 5	# how long the rate before migration is measured
SCALE_DOWNTIME_MS = 50
SCALE_LIMIT_S = 30
REPLUG_BUFFERS = 50	# received on the destination after the replug
MIGRATION_LIMIT_S = 900
LEG_L1_S = 300		# an L1's time per leg beyond the first (make soak)
QUIESCE_LIMIT_S = 120	# from asking the device to quiesce to its doing so

Log = Callable[[str], None]


@dataclass
class Profile:
	"""Where and how hard the guests run."""
	accel: str = 'tcg'
	ring: int = 0		# KVM dirty ring entries; 0: the dirty bitmap
	ram_mb: int = RAM_MB
	max_bandwidth: int = MAX_BANDWIDTH
	poll_us: int = 20	# dd_sim's sleep when its ring is empty
	churn_mb: int = 4	# what demo.sh rewrites every 100 ms
	tcp: bool = False	# QMP and migration over loopback TCP
	buf_pages: int = 0	# every buffer this many pages (0: mixed shapes)
	sim_rate: int = 0	# dd_sim --rate: pages/s the device writes (0: max)


# L2 guests under KVM inside the nested L1 (DESIGN.md, "Verified"): these
# converged in 16 to 22 s; 48 MiB/s, 16 MiB per 100 ms, 2 vCPUs or a device
# polling every 20 us starved the L2.  TCP: the test kernel, the L1's, may
# lack CONFIG_UNIX.
KVM_PROFILE = Profile(accel='kvm', ram_mb=512, max_bandwidth=8 << 20,
		      poll_us=200, churn_mb=1, tcp=True)


# The pages the guest reported, by path (swiotlb slots are only counted).
REPORTED = ('pages_direct', 'pages_iommu', 'pages_caller')


def reported(c: Optional[Dict[str, str]]) -> int:
	"""The pages the guest's counters say it reported since boot; -1
	without counters."""
	if c is None:
		return -1
	return sum(int(v) for k, v in c.items() if k in REPORTED and v.isdigit())


@dataclass
class Leg:
	"""What one migration showed; dd_checks.py judges it."""
	received_during: int = 0
	passes: int = 0
	mb_sent: float = 0.0
	downtime_ms: int = 0
	verified: int = 0
	corrupted: int = 0
	seconds: float = 0.0
	# per class (CLASSES): buffers kept in the pool, verified, corrupted
	pool: Dict[str, int] = field(default_factory=dict)
	cls_received: Dict[str, int] = field(default_factory=dict)
	cls_verified: Dict[str, int] = field(default_factory=dict)
	cls_corrupted: Dict[str, int] = field(default_factory=dict)
	rx_bad: int = 0		# buffers wrong on receipt, on the source
	remapped: int = 0	# descriptors whose DMA address was an IOVA
	# the guest's debugfs counters after verification, and (unplug) after
	# the destination's traffic with the plugged-back device; None: not
	# printed
	counters: Optional[Dict[str, str]] = None
	counters_after: Optional[Dict[str, str]] = None
	quiesce: str = 'stop'	# or 'unplug' (QUIESCE_MODES)
	# unplug: buffers received on the destination after the device was
	# plugged back and verification done; -1: not tried
	replug_received: int = -1
	# KVM dirty ring entries asked for (0: the bitmap), and in use: QEMU
	# falls back to the bitmap with only a warning when KVM lacks the ring
	ring_asked: int = 0
	ring_used: int = 0
	# dma_mark_dirty=kvm, nested: KVM's dma_dirty_pages statistic of the
	# source VM when migration started and when it completed, and of the
	# destination VM at the end: after its traffic with the plugged-back
	# device, during which it logs (unplug), else after verification (-1:
	# not read); whether the destination's guest registered again (v4's
	# recovery: the VMM does not restore the registration); the guest's
	# warnings that it touched pages KVM refused, read at the end
	host_pages_start: int = -1
	host_pages_src: int = -1
	host_pages_dst: int = -1
	# legs after the first (ping-pong): what the guest had reported, and
	# what KVM had counted on this leg's source VM, at the end of the
	# leg before, so that each leg is judged on its own
	reported_before: int = 0
	host_pages_before: int = 0
	reregistered: bool = False
	touched_instead: int = 0
	# make bench (BENCH_MODES): buffers per second before migration, the
	# migration's length, and how long the device ran during it
	bench_mode: str = ''
	rate_before: float = 0.0
	migration_s: float = 0.0
	dma_s: float = 0.0
	# 'scale': the device's pace and buffer size, whether the migration
	# converged within SCALE_LIMIT_S (else the figures are at the cut),
	# full pages QEMU sent (query-migrate ram.normal), pages the device
	# wrote during the migration (bytes received / 4 KiB: rewrites count),
	# and with KVM the source VM's hypercalls during it (-1: not read)
	sim_rate: int = 0
	buf_pages: int = 0
	converged: bool = False
	pages_sent: int = 0
	device_pages: int = 0
	hypercalls: int = -1


def expected_backend(backend: str, accel: str) -> str:
	"""The backend a guest booted with dma_mark_dirty=@backend must
	run: 'auto' (no dma_mark_dirty= at all) is kvm under KVM, whose
	guests get a CPU that offers KVM_FEATURE_DMA_DIRTY (cpu_model()),
	and off under TCG, which offers no paravirtual backend."""
	if backend == 'auto':
		return 'kvm' if accel == 'kvm' else 'off'
	return backend


@dataclass
class Setup:
	"""What a scenario runs: the backend, the guests, the quiesce."""
	backend: str		# dma_mark_dirty=, or 'auto': none given
	iommu: bool = False
	label: str = ''		# names the logs; default: the backend
	profile: Profile = field(default_factory=Profile)
	quiesce: str = 'stop'
	bench_mode: str = ''


class Testbed(contextlib.AbstractContextManager):
	"""Every process and file of one scenario; all removed on exit."""

	def __init__(self, paths: dma_dirty_kernel.Paths, setup: Setup,
		     log: Log = print):
		self.setup = setup
		self.profile = setup.profile
		# names the logs: migrate-LABEL-N.console.log, migrate-LABEL.sim.log
		self.label = setup.label or setup.backend
		self.log = log
		self.kernel = paths.kernel
		self.initrd = paths.initramfs_demo
		sim_bin = os.path.join(paths.sim, 'dd_sim')
		for p, what in ((self.kernel, 'make kernel'),
				(self.initrd, 'make demo'),
				(sim_bin, 'make demo')):
			if not os.path.exists(p):
				raise TestFailure('%s is missing (%s builds it)'
						  % (p, what))
		self.layout = read_layout(sim_bin)
		self.tag = 'dd-%d' % os.getpid()
		self.tmp = tempfile.mkdtemp(prefix=self.tag + '-')
		self.logdir = paths.logs
		os.makedirs(self.logdir, exist_ok=True)
		self.files: List[str] = []
		self.guests: List[Guest] = []
		self.sim = Sim(sim_bin, os.path.join(
			self.logdir, 'migrate-%s.sim.log' % self.label),
			self.profile.poll_us, self.profile.sim_rate)
		self.count = 0

	def __exit__(self, *exc: object) -> None:
		# A second Ctrl-C must not stop the cleanup half way.
		old = signal.signal(signal.SIGINT, signal.SIG_IGN)
		try:
			self.sim.stop()
			for g in self.guests:
				g.stop()
			for f in self.files:
				with contextlib.suppress(FileNotFoundError):
					os.unlink(f)
			shutil.rmtree(self.tmp, ignore_errors=True)
		finally:
			signal.signal(signal.SIGINT, old)

	def shm(self, suffix: str, size: int) -> str:
		path = '/dev/shm/%s-%s' % (self.tag, suffix)
		self.files.append(path)
		with open(path, 'wb') as f:
			f.truncate(size)
		return path

	def const(self, name: str) -> int:
		return self.layout[name][0]

	def address(self, what: str) -> str:
		"""Where a QMP or migration endpoint listens."""
		if self.profile.tcp:
			return 'tcp:127.0.0.1:%d' % free_port()
		return os.path.join(self.tmp, what)

	def start_guest(self, incoming: bool = False) -> Guest:
		n = self.count
		self.count += 1
		name = '%s%d' % ('dst' if incoming else 'src', n)
		pf, st = self.profile, self.setup
		append = ['console=ttyS0', 'panic=-1', 'oops=panic',
			  'kunit.enable=0', 'ddtest.mode=demo',
			  'dddemo.churn_mb=%d' % pf.churn_mb]
		if st.backend != 'auto':
			append.append('dma_mark_dirty=' + st.backend)
		if pf.buf_pages:
			append.append('dddemo.buf_pages=%d' % pf.buf_pages)
		if st.iommu:
			append += IOMMU_APPEND
		if st.quiesce == 'unplug':
			append += UNPLUG_APPEND
		m = MigrationGuest(
			kernel=self.kernel, initrd=self.initrd, append=append,
			accel=pf.accel, cpu=cpu_model(pf.accel, st.backend),
			ram_mb=pf.ram_mb,
			ram=self.shm('%d-ram' % n, pf.ram_mb << 20),
			bar=self.shm('%d-bar' % n, BAR_BYTES),
			console=os.path.join(self.logdir, 'migrate-%s-%d.console.log'
					     % (self.label, n)),
			qmp=self.address('%d.qmp' % n), ring=pf.ring,
			iommu=st.iommu, unplug=st.quiesce == 'unplug',
			incoming=incoming)
		g = launch(name, migration_cmd(m), m.console, m.qmp, m.ram,
			   m.bar, started=self.guests)
		g.regs = Regs(m.bar, self.layout)
		return g

	def wait(self, g: Guest, what: str, cond: Callable[[], bool],
		 timeout: float) -> None:
		"""Until cond(); a guest or device that died, a driver error
		or the timeout fail, saying what the kernel reported if
		it did."""
		deadline = time.monotonic() + timeout
		while not cond():
			g.check_alive()
			self.sim.check()
			if g.r.get('state') == self.const('DD_STATE_ERROR'):
				raise TestFailure('%s: the guest driver reports a device error; console:\n%s'
						  % (g.name, tail(g.console)))
			if time.monotonic() > deadline:
				g.check_console()
				raise TestFailure('%s: %s did not happen within %d s; last console lines:\n%s'
						  % (g.name, what, timeout,
						     tail(g.console)))
			time.sleep(0.1)

	def wait_state(self, g: Guest, what: str, state: str,
		       timeout: float) -> None:
		self.wait(g, what, lambda: g.r.get('state') == self.const(state),
			  timeout)

	def start_traffic(self, g: Guest) -> None:
		"""Attach the device to @g and have its driver post buffers."""
		self.sim.start(g.ram, g.bar)
		self.wait(g, 'the device attaching',
			  lambda: g.r.get('magic') == self.const('DD_SIM_MAGIC'),
			  10)
		start = g.r.get('received')
		g.r.set('ctrl', self.const('DD_CTRL_RUN'))
		self.wait(g, '%d buffers received' % WARMUP_BUFFERS,
			  lambda: g.r.get('received') >= start + WARMUP_BUFFERS,
			  120)

	def replug(self, g: Guest) -> None:
		"""On the destination: take the powered-off device away and plug
		a new one on the same root port; the driver adopts its pool."""
		g.q.cmd('device_del', id='dd0')
		try:
			g.q.event('DEVICE_DELETED', 30, device='dd0')
		except dd_qmp.QMPError as e:
			raise TestFailure('%s: device_del of the powered-off device: %s'
					  % (g.name, e))
		# A new register file: QEMU 10 aborts when a device is added
		# on the memory backend of a deleted ivshmem device
		# (qemu_ram_set_idstr: Assertion `!new_block->idstr[0]').
		bar = self.shm('%s-bar-replug' % g.name, BAR_BYTES)
		g.q.cmd('object-add', **{'qom-type': 'memory-backend-file',
					 'id': 'bar-replug', 'size': BAR_BYTES,
					 'mem-path': bar, 'share': True})
		g.q.cmd('device_add', driver='ivshmem-plain',
			memdev='bar-replug', master='on', bus='rp0', id='dd0')
		g.r.close()
		g.bar = bar
		g.regs = Regs(bar, self.layout)
		self.sim.start(g.ram, g.bar)
		self.wait_state(g, 'the driver binding the plugged-back device',
				'DD_STATE_READY', 60)
		self.log('#   %s: device deleted (DEVICE_DELETED), a new one added; the driver adopted its buffers'
			 % g.name)

	def counters(self, g: Guest, tag: str = COUNTERS_TAG,
		     after: str = '') -> Optional[Dict[str, str]]:
		"""The debugfs counters demo.sh prints with @tag on @g's
		console (the last such line, and only one printed after a line
		with @after, when given)."""
		deadline = time.monotonic() + 30
		while time.monotonic() < deadline:
			g.check_alive()
			found = None
			for line in g.console_lines():
				if after and after in line:
					found = None
				i = line.find(tag)
				if i >= 0:
					found = dict(kv.split('=', 1) for kv in
						     line[i + len(tag):].split()
						     if '=' in kv)
			if found is not None:
				return found
			time.sleep(0.2)
		return None


class Migration:
	"""One leg: @src migrated to a new destination while the device
	runs, quiesced as the testbed's setup says, and verified there."""

	def __init__(self, tb: Testbed, src: Guest):
		self.tb = tb
		self.src = src
		st = tb.setup
		self.mode = st.bench_mode
		self.scale = self.mode.startswith('scale')
		self.unplug = st.quiesce == 'unplug'
		self.kvm_pv = expected_backend(st.backend,
					       tb.profile.accel) == 'kvm'
		self.leg = Leg(quiesce=st.quiesce, bench_mode=self.mode)
		self.quiesced_state = ('DD_STATE_REMOVED' if self.unplug else
				       'DD_STATE_QUIESCED')
		self.quiesce_asked = 0.0
		self.released = False
		self.t0 = time.monotonic()
		self.dst = tb.start_guest(incoming=True)
		self.received0 = self.bytes0 = self.hypercalls0 = 0
		self.t_migrate = 0.0

	def run(self) -> Tuple[Guest, Leg]:
		self.start()
		self.follow()
		if self.scale:
			self.scale_end()
			return self.dst, self.leg
		if not self.released:
			raise TestFailure('migration completed before the device quiesced')
		Arrival(self).run()
		return self.dst, self.leg

	def start(self) -> None:
		src, dst, leg = self.src, self.dst, self.leg
		uri = ('tcp:127.0.0.1:%d' % free_port() if self.tb.profile.tcp
		       else 'unix:' + os.path.join(self.tb.tmp, 'mig%d.sock'
						   % self.tb.count))
		dst.q.cmd('migrate-incoming', uri=uri)
		src.q.cmd('migrate-set-parameters', **{
			'downtime-limit': SCALE_DOWNTIME_MS if self.scale else 1,
			'max-bandwidth': self.tb.profile.max_bandwidth})
		self.received0 = src.r.get('received')
		self.bytes0 = src.r.get('bytes')
		if self.kvm_pv:
			leg.host_pages_start = kvm_stat(src, 'dma_dirty_pages')
		if self.scale and self.tb.profile.accel == 'kvm':
			self.hypercalls0 = kvm_stat(src, 'hypercalls')
		src.q.cmd('migrate', uri=uri)
		self.t_migrate = time.monotonic()

	def follow(self) -> None:
		"""Poll the migration until it completes (or, 'scale', is cut),
		quiescing the device and lifting the cap on the way."""
		src, leg = self.src, self.leg
		deadline = time.monotonic() + MIGRATION_LIMIT_S
		progress, progress_t = None, time.monotonic()
		last_print = 0.0
		while True:
			src.check_alive()
			self.dst.check_alive()
			self.tb.sim.check()
			info = src.q.cmd('query-migrate')
			status = info.get('status')
			ram = info.get('ram', {})
			passes = ram.get('dirty-sync-count', 0)
			if status in ('failed', 'cancelled'):
				raise TestFailure('migration %s: %s' % (
					status, info.get('error-desc', '')))
			now = time.monotonic()
			cut = self.scale and now - self.t_migrate > SCALE_LIMIT_S
			if status == 'completed' or cut:
				leg.migration_s = now - self.t_migrate
				leg.passes = passes
				leg.mb_sent = ram.get('transferred', 0) / (1 << 20)
				leg.downtime_ms = info.get('downtime', 0)
				leg.pages_sent = ram.get('normal', 0)
				leg.converged = status == 'completed'
				return
			seen = (ram.get('transferred', 0), passes,
				src.r.get('received'))
			if seen != progress:
				progress, progress_t = seen, now
			elif now - progress_t > STALL_SECONDS:
				for g in (src, self.dst):
					g.check_console()
				raise EnvironmentFailure('stall: no migration progress and no buffer received for %d s (status %s, pass %d); %s console:\n%s'
							 % (STALL_SECONDS, status,
							    passes, src.name,
							    tail(src.console)))
			if now - last_print >= 2:
				last_print = now
				self.report(status, passes, ram)
			self.steer(now, passes, ram)
			if now > deadline:
				raise TestFailure('migration did not complete within %d s (status %s, pass %d)'
						  % (MIGRATION_LIMIT_S, status,
						     passes))
			time.sleep(0.25)

	def report(self, status: str, passes: int, ram: dict) -> None:
		# QEMU reports 0 until it has measured a rate (seen throughout
		# the first pass).
		rate = ('%d pages/s' % ram['dirty-pages-rate']
			if ram.get('dirty-pages-rate') else 'not measured yet')
		self.tb.log('#   %s -> %s: %-9s pass %d, %.0f MB sent, dirty rate %s, %d buffers received'
			    % (self.src.name, self.dst.name, status, passes,
			       ram.get('transferred', 0) / (1 << 20), rate,
			       self.src.r.get('received') - self.received0))

	def release(self) -> None:
		"""Lift the cap and the downtime limit: let it converge."""
		self.src.q.cmd('migrate-set-parameters', **{
			'downtime-limit': 20000, 'max-bandwidth': FINAL_BANDWIDTH})
		self.released = True

	def steer(self, now: float, passes: int, ram: dict) -> None:
		"""Quiesce the device once enough traffic ran during the
		migration (at once for 'failover'), then release the
		migration once it is quiesced."""
		src, tb, mode = self.src, self.tb, self.mode
		half_sent = passes > 1 or (
			ram.get('total', 0) and
			ram.get('remaining', 0) <= ram['total'] // 2)
		if mode == 'idle' and not self.released and passes > 1:
			self.release()
		during = src.r.get('received') - self.received0
		if not self.quiesce_asked and not self.scale and \
				mode != 'idle' and \
				(mode == 'failover' or
				 (half_sent and during >= QUIESCE_AFTER_BUFFERS)):
			bit = 'DD_CTRL_UNPLUG' if self.unplug else \
				'DD_CTRL_QUIESCE'
			src.r.set('ctrl', tb.const('DD_CTRL_RUN') |
				  tb.const(bit))
			self.quiesce_asked = now
		if not self.quiesce_asked or self.released:
			return
		quiesced = src.r.get('state') == tb.const(self.quiesced_state)
		if quiesced and not self.leg.dma_s:
			self.leg.dma_s = now - self.t_migrate
		if quiesced and (not mode or passes > 1):
			self.leg.received_during = (src.r.get('received') -
						    self.received0)
			tb.log('#   %s %s after %d buffers during migration; letting it converge'
			       % (src.name,
				  'removed the device (slot powered off, everything unmapped)'
				  if self.unplug else 'quiesced',
				  self.leg.received_during))
			self.release()
		if not self.released and \
				now - self.quiesce_asked > QUIESCE_LIMIT_S:
			raise TestFailure('%s: the device was not %s within %d s of asking; console:\n%s'
					  % (src.name, 'removed' if self.unplug
					     else 'quiesced', QUIESCE_LIMIT_S,
					     tail(src.console)))

	def scale_end(self) -> None:
		"""The end of a 'scale' migration: what the device did during
		it; cancel it if it did not converge.  Nothing is verified."""
		tb, src, leg = self.tb, self.src, self.leg
		leg.received_during = src.r.get('received') - self.received0
		leg.device_pages = (src.r.get('bytes') - self.bytes0) // 4096
		leg.sim_rate = tb.profile.sim_rate
		leg.buf_pages = tb.profile.buf_pages
		if tb.profile.accel == 'kvm':
			leg.hypercalls = kvm_stat(src, 'hypercalls') - \
				self.hypercalls0
		if not leg.converged:
			# It may complete between the cut and the cancel: the
			# figures stay those of the cut, not converged in time.
			src.q.cmd('migrate_cancel')
			tb.wait(src, 'the migration cancelled',
				lambda: src.q.cmd('query-migrate').get(
					'status') in ('cancelled', 'completed'),
				60)
		tb.log('#   %s: %s after %.0f s, %d passes, %d pages sent, the device wrote %d pages'
		       % (src.name, 'converged' if leg.converged else
			  'not converged, cancelled', leg.migration_s,
			  leg.passes, leg.pages_sent, leg.device_pages))
		tb.sim.stop()
		src.stop()
		leg.seconds = time.monotonic() - self.t0


class Arrival:
	"""A leg after switchover: the source's last figures, the source
	gone; on the destination the device plugged back (unplug), every
	kept buffer verified, and traffic again (unplug)."""

	def __init__(self, m: Migration):
		self.m = m
		self.tb, self.src, self.dst, self.leg = m.tb, m.src, m.dst, m.leg
		self.kvm_pv = m.kvm_pv
		self.unplug = m.unplug

	def run(self) -> None:
		self.switched_over()
		if self.m.mode == 'idle':
			# No device ran: nothing to plug back or verify.
			self.leg.seconds = time.monotonic() - self.m.t0
			return
		self.verify()
		self.leg.seconds = time.monotonic() - self.m.t0
		if self.unplug:
			# make bench measures the migration, not what follows
			self.receive_again(judged=not self.m.mode)
		self.judge_destination()
		self.log_verified()

	def switched_over(self) -> None:
		"""After completion: the source's last figures, the source
		gone, the destination running."""
		src, dst, leg = self.src, self.dst, self.leg
		leg.ring_asked = leg.ring_used = self.tb.profile.ring
		for g in (src, dst):
			with contextlib.suppress(OSError), \
					open(g.console + '.qemu', errors='replace') as f:
				if 'dirty ring not available' in f.read():
					leg.ring_used = 0
		self.tb.sim.stop()
		if self.kvm_pv:
			leg.host_pages_src = kvm_stat(src, 'dma_dirty_pages')
		src.stop()
		self.tb.wait(dst, 'the destination running',
			     lambda: bool(dst.q.cmd('query-status')['status'] ==
					  'running'), 30)

	def verify(self) -> None:
		"""Plug the device back if it was unplugged; have the driver
		verify every kept buffer; read what it found."""
		tb, src, dst, leg = self.tb, self.src, self.dst, self.leg
		if self.unplug:
			tb.replug(dst)
		dst.r.set('ctrl', tb.const('DD_CTRL_QUIESCE') |
			  tb.const('DD_CTRL_VERIFY'))
		tb.wait_state(dst, 'verification', 'DD_STATE_VERIFIED', 120)
		leg.counters = tb.counters(dst)
		for g in (src, dst):
			g.check_console()
		leg.verified = dst.r.get('verified')
		leg.corrupted = dst.r.get('corrupted')
		for c, _ in CLASSES:
			leg.pool[c] = tb.const('DD_POOL_' + c.upper())
			leg.cls_received[c] = dst.r.get(c + '_received')
			leg.cls_verified[c] = dst.r.get(c + '_verified')
			leg.cls_corrupted[c] = dst.r.get(c + '_corrupted')
		leg.rx_bad = dst.r.get('rx_bad')
		leg.remapped = dst.r.get('remapped')

	def judge_destination(self) -> None:
		"""What the destination shows at the end, after its own
		traffic: KVM's count of its reports, whether it registered
		again, the touches instead of reports, its kernel's splats."""
		leg, dst = self.leg, self.dst
		if self.kvm_pv:
			leg.host_pages_dst = kvm_stat(dst, 'dma_dirty_pages')
			leg.reregistered = 'registering again' in \
				dst.console_text()
			for g in (self.src, dst):
				leg.touched_instead += g.console_text().count(
					'touched instead')
		for g in (self.src, dst):
			g.check_console()

	def receive_again(self, judged: bool = True) -> None:
		"""After a replug: the driver works again on the new device,
		and its pages are reported again; with the kvm backend the
		destination logs meanwhile (a migration to a sink), so that
		its reports reach KVM.  A device that does not work is the
		check's to report (device_works_after_replug), with what it
		did."""
		tb, dst = self.tb, self.dst
		logging = self.kvm_pv and judged
		if logging:
			keep_logging(dst)
		before = dst.r.get('received')
		dst.r.set('ctrl', tb.const('DD_CTRL_RUN'))
		why = ''
		try:
			tb.wait(dst, 'buffers received after the replug',
				lambda: dst.r.get('received') >=
				before + REPLUG_BUFFERS, 60)
			dst.r.set('ctrl', tb.const('DD_CTRL_QUIESCE'))
			tb.wait_state(dst, 'the device quiesced again',
				      'DD_STATE_QUIESCED', 30)
		except TestFailure as e:
			why = ' (%s)' % str(e).split(';')[0]
		self.leg.replug_received = dst.r.get('received') - before
		if judged:
			self.leg.counters_after = tb.counters(dst, QUIESCED_TAG,
							      after=COUNTERS_TAG)
		if logging:
			status = dst.q.cmd('query-migrate').get('status')
			dst.q.cmd('migrate_cancel')
			if status != 'active':
				raise TestFailure('%s: the migration that kept KVM logging during the traffic after the replug is %s'
						  % (dst.name, status))
		tb.log('#   %s: %d buffers received after the replug%s'
		       % (dst.name, self.leg.replug_received, why))

	def log_verified(self) -> None:
		leg = self.leg
		self.tb.log('#   %s: %d buffers verified; corrupted: %s; %d passes, %.0f MB sent, downtime %d ms, %.0f s'
			    % (self.dst.name, leg.verified,
			       ', '.join('%s %d/%d' % (what, leg.cls_corrupted[c],
						       leg.cls_verified[c])
					 for c, what in CLASSES),
			       leg.passes, leg.mb_sent, leg.downtime_ms,
			       leg.seconds))


def boot_source(tb: Testbed) -> Guest:
	"""The source guest, its driver bound to the device."""
	st, pf = tb.setup, tb.profile
	tb.log('# migration, dma_mark_dirty=%s%s, %s%s, quiesce by %s: booting the source'
	       % (st.backend, ', behind intel-iommu' if st.iommu else '',
		  pf.accel, ' dirty ring %d' % pf.ring if pf.ring else '',
		  'hot-unplug' if st.quiesce == 'unplug' else 'stop bit'))
	src = tb.start_guest()
	try:
		tb.wait_state(src, 'the guest driver binding', 'DD_STATE_READY',
			      120)
	except TestFailure as e:
		# No test code has run yet: the guest hung while booting, or
		# crashed, which is a failure if its kernel said so.
		raise src.not_a_result('guest crash or hang before the test started: %s'
					% e) from e
	return src


def scenario(paths: dma_dirty_kernel.Paths, setup: Setup, legs: int = 1,
	     log: Log = print) -> List[Leg]:
	"""Boot, start traffic, migrate @legs times (ping-pong), verify each.
	setup.bench_mode: one of BENCH_MODES, for make bench (one leg)."""
	results: List[Leg] = []
	if setup.quiesce == 'unplug' and legs != 1:
		# the destination's device then sits on another backend
		raise TestFailure('--quiesce unplug runs one leg')
	if setup.profile.accel == 'kvm' and not os.path.exists('/dev/kvm'):
		raise TestFailure('no /dev/kvm: this machine cannot run the KVM guests (in a nested run: the L1 has no KVM, see its console)')
	mode = setup.bench_mode
	with Testbed(paths, setup, log) as tb:
		if tb.const('DD_POOL_TRACKED') + tb.const('DD_POOL_LONG') + \
				tb.const('DD_POOL_CONTROL') > QUIESCE_AFTER_BUFFERS:
			raise TestFailure('QUIESCE_AFTER_BUFFERS (%d) is below the pool: some buffers would not be rewritten during migration'
					  % QUIESCE_AFTER_BUFFERS)
		src = boot_source(tb)
		rate = 0.0
		traffic = mode not in ('idle', 'scale-idle')
		if traffic:
			tb.start_traffic(src)
		if mode and traffic and not mode.startswith('scale'):
			n0, t_0 = src.r.get('received'), time.monotonic()
			time.sleep(RATE_SECONDS)
			rate = (src.r.get('received') - n0) / \
				(time.monotonic() - t_0)
		for i in range(legs):
			dst, leg = Migration(tb, src).run()
			leg.rate_before = rate
			if results:
				prev = results[-1]
				leg.reported_before = max(reported(
					prev.counters_after or prev.counters), 0)
				leg.host_pages_before = max(prev.host_pages_dst, 0)
			results.append(leg)
			src = dst
			if i + 1 < legs:
				tb.start_traffic(src)
		# Every guest's console, to its end (the destination's after
		# its last traffic, the sources' since they were stopped).
		for g in tb.guests:
			g.check_console()
	return results


def nested(paths: dma_dirty_kernel.Paths, backend: str, legs: int = 1,
	   log: Log = print, label: str = '', ring: int = 0,
	   quiesce: str = 'stop', bench_mode: str = '') -> List[Leg]:
	"""The scenario on KVM: dd_nested.run_l1() runs "dd_migrate.py run
	--accel kvm" in an L1, with L2 guests under -accel kvm.  Logs:
	migrate-LABEL.l1.console.log (the L1 kernel), .l1.runner.log (the
	runner in it), and the L2 consoles the runner writes."""
	label = label or 'kvm-' + backend
	for p, what in ((paths.kernel, 'make kernel'),
			(paths.initramfs_demo, 'make sim'),
			(os.path.join(paths.sim, 'dd_sim'), 'make sim')):
		if not os.path.exists(p):
			raise TestFailure('%s is missing (%s builds it)'
					  % (p, what))
	out = dd_nested.run_l1(
		paths, 'migrate-' + label, 'dd_migrate.py',
		'run --backend %s --legs %d --accel kvm --ring %d --quiesce %s --label %s%s'
		% (backend, legs, ring, quiesce, label,
		   ' --bench-mode ' + bench_mode if bench_mode else ''),
		'%s: L1 (test kernel, TCG, 4 GiB, 2 vCPUs) runs the scenario with L2 guests under KVM (%s)'
		% (label, 'dirty ring %d' % ring if ring else 'dirty bitmap'),
		log, timeout=dd_nested.L1_TIMEOUT + LEG_L1_S * (legs - 1))
	return [Leg(**leg) for leg in out['legs']]
