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

Two quiesces (QUIESCE_MODES): the stop bit in the device's registers, or
a hot-unplug during pre-copy: the driver stops, the guest powers the PCIe
slot off (demo.sh), pciehp removes the device and the driver's remove
path unmaps everything; on the destination a new device is plugged on the
same root port, the driver adopts its kept buffers, verifies them and
receives again.  QEMU 10 refuses a QMP device_del while a migration runs,
hence the guest's own slot power-off; the device_del (of the powered-off
device, DEVICE_DELETED awaited) and the device_add happen on the
destination.

--nested boots the test kernel under TCG as an L1 KVM host, with this
machine's / over 9p, and runs this same runner in it (--accel kvm, the
lighter settings of KVM_PROFILE), which hands the legs back as JSON.
EnvironmentFailure marks what is not a result (a QEMU that does not
start, a guest that dies or hangs before the test started, a stall).
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import glob
import json
import mmap
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import dd_qmp  # noqa: E402
import dma_dirty_kernel  # noqa: E402

RAM_MB = 256
BAR_BYTES = 1 << 20
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
# The buffer classes of dd_sim.h: register prefix, name in the reports.
CLASSES = (('tracked', 'tracked'), ('long', 'long-lived'),
	   ('control', 'control'))
# What the guest (demo.sh) prints after each verification: the backend and
# the dma_mark_dirty debugfs counters.
COUNTERS_TAG = 'demo: verified: '
# The guest behind QEMU's intel-iommu (it migrates in QEMU 10): every DMA
# mapping of the device goes through dma-iommu.
IOMMU_QEMU = ['-device', 'intel-iommu,intremap=off']
IOMMU_APPEND = ['intel_iommu=on', 'iommu.passthrough=0']
WARMUP_BUFFERS = 50		# buffers received before migration starts
# No migration progress (bytes sent, buffers received) for this long: a
# stalled guest or QEMU, not a result.
STALL_SECONDS = 120


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
# The L1, the test kernel as a KVM host under TCG on this machine.
L1_QEMU = ['-accel', 'tcg', '-cpu', 'max', '-M', 'q35', '-m', '4G',
	   '-smp', '2']
# tsc=unstable: TCG has no invariant TSC, so KVM in the L1 keeps the TSC
# rate of the L1's early calibration as each VM's default, and cannot set
# it on a vCPU once the L1 has refined its calibration (no TSC scaling
# under TCG): "user requested TSC rate below hardware speed", and the L2's
# timers stopped (an RCU stall in idle, "timer wakeup didn't happen"), or
# QEMU refused to start with an explicit tsc-frequency.  An unstable TSC
# is never refined.
L1_APPEND = ['console=ttyS0', 'panic=-1', 'kunit.enable=0', 'tsc=unstable',
	     'rdinit=/dma-dirty/l1-init']
L1_TIMEOUT = 1500	# seconds for a whole nested run
L1_QUIET = 300		# seconds without a line from the runner: stalled
DIRTY_RING = 4096	# entries per vCPU in the -ring rows


# How the device is quiesced before switchover.  stop: a bit in its
# registers; the driver finishes the buffer in flight and stops.  unplug:
# the guest takes the device away as a user would, during pre-copy: the
# driver stops, user space (demo.sh) powers its PCIe slot off, pciehp
# removes it and the driver's remove path unmaps everything.  QEMU 10
# refuses QMP device_del while a migration runs ("device_del not allowed
# while migrating": only a failover primary may be unplugged then), so the
# guest powers the slot off itself; after the migration the runner
# device_del's the powered-off device on the destination (DEVICE_DELETED
# awaited), device_add's a new one on the same pcie-root-port, the driver
# binds it, adopts its kept buffers, verifies them and receives again.
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
# Native PCIe hotplug on the root port (QEMU defaults to ACPI hotplug on
# q35, which the test kernel does not build), and the ports given to the
# kernel (the firmware's _OSC would not hand them over).
UNPLUG_QEMU = ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off']
UNPLUG_APPEND = ['pcie_ports=native']
REPLUG_BUFFERS = 50	# received on the destination after the replug


class MigrationError(Exception):
	"""A step failed; the message says which and why."""


class EnvironmentFailure(MigrationError):
	"""Not a result: a guest or QEMU failed before the test code ran, or
	stalled.  The harness may retry these, never a MigrationError."""


class Regs:
	"""The device registers in a BAR file, at offsets dd_sim reports."""

	def __init__(self, path: str, layout: Dict[str, tuple]):
		self.layout = layout
		fd = os.open(path, os.O_RDWR)
		try:
			self.map = mmap.mmap(fd, BAR_BYTES)
		finally:
			os.close(fd)

	def get(self, name: str) -> int:
		off, size = self.layout[name]
		return struct.unpack_from('<I' if size == 4 else '<Q',
					  self.map, off)[0]

	def set(self, name: str, value: int) -> None:
		off, size = self.layout[name]
		struct.pack_into('<I' if size == 4 else '<Q', self.map, off,
				 value)

	def close(self) -> None:
		self.map.close()


def read_layout(sim: str) -> Dict[str, tuple]:
	out = subprocess.run([sim, '--layout'], capture_output=True, text=True,
			     check=True).stdout
	layout = {}
	for line in out.splitlines():
		name, a, b = line.split()
		layout[name] = (int(a), int(b))
	return layout


@dataclass
class Leg:
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
	# the guest's debugfs counters after verification; None: not printed
	counters: Optional[Dict[str, str]] = None
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
	# destination VM after verification (-1: not read); the guest's
	# warnings that it touched pages KVM refused
	host_pages_start: int = -1
	host_pages_src: int = -1
	host_pages_dst: int = -1
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


@dataclass
class Guest:
	name: str
	proc: subprocess.Popen
	qmp: Optional[dd_qmp.QMP]
	ram: str
	bar: str
	console: str
	regs: Optional[Regs] = None
	results: str = ''	# start_l2(): the guest's ttyS1

	def check_alive(self) -> None:
		if self.proc.poll() is not None:
			raise MigrationError('QEMU %s exited with status %d; last console lines:\n%s'
					     % (self.name, self.proc.returncode,
						tail(self.console)))


def cpu_model(accel: str, backend: str) -> str:
	"""QEMU 10.0 has no name for KVM_FEATURE_DMA_DIRTY: only -cpu host with
	migratable=off passes it (every KVM feature bit KVM offers) to the
	guest.  The other rows keep the CPU a user migrates with."""
	if accel != 'kvm':
		return 'max'
	return 'host,migratable=off' if backend == 'kvm' else 'host'


def kvm_stat(g: 'Guest', name: str) -> int:
	"""A KVM statistic of @g's VM, summed over its vCPUs, from the
	debugfs of the kernel QEMU runs on (the L1's, in a nested run)."""
	dirs = glob.glob('/sys/kernel/debug/kvm/%d-*' % g.proc.pid)
	if len(dirs) != 1:
		raise MigrationError('KVM statistics of %s (QEMU pid %d): %s in /sys/kernel/debug/kvm'
				     % (g.name, g.proc.pid, 'no folder'
					if not dirs else '%d folders' % len(dirs)))
	try:
		with open(os.path.join(dirs[0], name)) as f:
			return int(f.read())
	except (OSError, ValueError) as e:
		raise MigrationError('cannot read KVM statistic %s of %s: %s'
				     % (name, g.name, e))


def tail(path: str, n: int = 15) -> str:
	try:
		with open(path, errors='replace') as f:
			lines = f.read().splitlines()[-n:]
		return '\n'.join('    | ' + l for l in lines) or \
			'    | (console empty: %s)' % path
	except OSError:
		return '    | (no console log)'


# What a guest kernel prints when its vCPU did not run for long: seen when
# the nested L2 starved (DESIGN.md).
STALL_SIGNS = ('detected stall', 'self-detected stall', 'soft lockup',
	       'blocked for more than')


def stalled(g: Guest) -> bool:
	try:
		with open(g.console, errors='replace') as f:
			text = f.read()
	except OSError:
		return False
	return any(sign in text for sign in STALL_SIGNS)


def free_port() -> int:
	"""A loopback TCP port nobody listens on (there is only us in an L1)."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(('127.0.0.1', 0))
		return s.getsockname()[1]


class Testbed(contextlib.AbstractContextManager):
	"""Every process and file of one scenario; all removed on exit."""

	def __init__(self, paths: dma_dirty_kernel.Paths, backend: str,
		     log=print, iommu: bool = False, label: str = '',
		     profile: Profile = Profile(), quiesce: str = 'stop',
		     bench_mode: str = ''):
		self.bench_mode = bench_mode
		self.backend = backend
		self.profile = profile
		self.quiesce = quiesce
		self.iommu = iommu
		# names the logs: migrate-LABEL-N.console.log, migrate-LABEL.sim.log
		self.label = label or backend
		self.log = log
		self.kernel = paths.kernel
		self.initrd = paths.initramfs_demo
		self.sim_bin = os.path.join(paths.sim, 'dd_sim')
		for p, what in ((self.kernel, 'make kernel'),
				(self.initrd, 'make demo'),
				(self.sim_bin, 'make demo')):
			if not os.path.exists(p):
				raise MigrationError('%s is missing (%s builds it)'
						     % (p, what))
		self.layout = read_layout(self.sim_bin)
		self.tag = 'dd-%d' % os.getpid()
		self.tmp = tempfile.mkdtemp(prefix=self.tag + '-')
		self.logdir = paths.logs
		os.makedirs(self.logdir, exist_ok=True)
		self.files: List[str] = []
		self.guests: List[Guest] = []
		self.sim: Optional[subprocess.Popen] = None
		self.sim_log = None
		self.count = 0

	def __exit__(self, *exc) -> None:
		# A second Ctrl-C must not stop the cleanup half way.
		old = signal.signal(signal.SIGINT, signal.SIG_IGN)
		try:
			self.stop_sim()
			for g in self.guests:
				self.kill(g)
			for f in self.files:
				with contextlib.suppress(FileNotFoundError):
					os.unlink(f)
			shutil.rmtree(self.tmp, ignore_errors=True)
		finally:
			signal.signal(signal.SIGINT, old)

	def kill(self, g: Guest) -> None:
		if g.qmp:
			g.qmp.close()
			g.qmp = None
		if g.regs:
			g.regs.close()
			g.regs = None
		if g.proc.poll() is None:
			g.proc.terminate()
			try:
				g.proc.wait(5)
			except subprocess.TimeoutExpired:
				g.proc.kill()
				g.proc.wait()
		for f in (g.ram, g.bar):
			with contextlib.suppress(FileNotFoundError):
				os.unlink(f)

	def shm(self, suffix: str, size: int) -> str:
		path = '/dev/shm/%s-%s' % (self.tag, suffix)
		self.files.append(path)
		with open(path, 'wb') as f:
			f.truncate(size)
		return path

	def start_guest(self, incoming: Optional[str] = None) -> Guest:
		n = self.count
		self.count += 1
		name = '%s%d' % ('dst' if incoming else 'src', n)
		pf = self.profile
		ram = self.shm('%d-ram' % n, pf.ram_mb << 20)
		bar = self.shm('%d-bar' % n, BAR_BYTES)
		qmp_sock = ('tcp:127.0.0.1:%d' % free_port() if pf.tcp else
			    os.path.join(self.tmp, '%d.qmp' % n))
		console = os.path.join(self.logdir, 'migrate-%s-%d.console.log'
				       % (self.label, n))
		append = ['console=ttyS0', 'panic=-1', 'oops=panic',
			  'kunit.enable=0', 'ddtest.mode=demo',
			  'dma_mark_dirty=' + self.backend,
			  'dddemo.churn_mb=%d' % pf.churn_mb]
		if pf.buf_pages:
			append.append('dddemo.buf_pages=%d' % pf.buf_pages)
		if self.iommu:
			append += IOMMU_APPEND
		if self.quiesce == 'unplug':
			append += UNPLUG_APPEND
		accel = pf.accel + (',dirty-ring-size=%d' % pf.ring
				    if pf.ring else '')
		cmd = ['qemu-system-x86_64',
		       '-M', 'q35,memory-backend=ram', '-accel', accel,
		       '-cpu', cpu_model(pf.accel, self.backend),
		       '-smp', '1', '-m', '%dM' % pf.ram_mb,
		       # A VGA device logs its framebuffer: KVM would log
		       # dirty pages, and the kvm backend report, all the time.
		       '-vga', 'none']
		# before the PCI devices it translates for
		if self.iommu:
			cmd += IOMMU_QEMU
		if self.quiesce == 'unplug':
			cmd += UNPLUG_QEMU
		cmd += ['-object', 'memory-backend-file,id=ram,size=%dM,mem-path=%s,share=on'
				% (pf.ram_mb, ram),
			'-object', 'memory-backend-file,id=bar,size=%d,mem-path=%s,share=on'
				% (BAR_BYTES, bar),
			'-device', 'pcie-root-port,id=rp0,chassis=1,slot=1',
			'-device', 'ivshmem-plain,memdev=bar,master=on,bus=rp0,id=dd0',
			'-kernel', self.kernel, '-initrd', self.initrd,
			'-append', ' '.join(append),
			'-display', 'none', '-monitor', 'none', '-no-reboot',
			'-serial', 'file:' + console,
			'-qmp', '%s,server=on,wait=off' % (
				qmp_sock if pf.tcp else 'unix:' + qmp_sock)]
		if incoming:
			cmd += ['-incoming', 'defer']
		proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
					stdout=subprocess.DEVNULL,
					stderr=open(console + '.qemu', 'w'))
		g = Guest(name, proc, None, ram, bar, console)
		self.guests.append(g)
		try:
			g.qmp = dd_qmp.QMP(qmp_sock, timeout=30)
			g.check_alive()
		except (dd_qmp.QMPError, MigrationError) as e:
			raise EnvironmentFailure('QEMU start failure: %s: %s; stderr: %s'
						 % (name, e, tail(console + '.qemu', 5)))
		g.regs = Regs(bar, self.layout)
		return g

	def start_sim(self, g: Guest) -> None:
		self.stop_sim()
		self.sim_log = open(os.path.join(self.logdir, 'migrate-%s.sim.log'
						 % self.label), 'a')
		self.sim = subprocess.Popen([self.sim_bin, '--ram', g.ram,
					     '--bar', g.bar, '--poll-us',
					     str(self.profile.poll_us),
					     '--rate', str(self.profile.sim_rate)],
					    stdin=subprocess.DEVNULL,
					    stdout=self.sim_log,
					    stderr=self.sim_log)

	def stop_sim(self) -> None:
		if self.sim and self.sim.poll() is None:
			self.sim.terminate()
			self.sim.wait(5)
		self.sim = None
		if self.sim_log:
			self.sim_log.close()
			self.sim_log = None

	def check_sim(self) -> None:
		if self.sim and self.sim.poll() is not None:
			raise MigrationError('dd_sim exited with status %d (log: %s)'
					     % (self.sim.returncode,
						os.path.join(self.logdir,
							     'migrate-%s.sim.log'
							     % self.label)))

	def wait(self, g: Guest, what: str, cond, timeout: float) -> None:
		deadline = time.monotonic() + timeout
		while not cond():
			g.check_alive()
			self.check_sim()
			if g.regs.get('state') == self.layout['DD_STATE_ERROR'][0]:
				raise MigrationError('%s: the guest driver reports a device error; console:\n%s'
						     % (g.name, tail(g.console)))
			if time.monotonic() > deadline:
				err = EnvironmentFailure if stalled(g) else \
					MigrationError
				raise err('%s: %s did not happen within %d s%s; last console lines:\n%s'
					  % (g.name, what, timeout,
					     ' (guest stall)' if stalled(g)
					     else '', tail(g.console)))
			time.sleep(0.1)

	@staticmethod
	def splat(g: Guest) -> str:
		try:
			with open(g.console, errors='replace') as f:
				return dma_dirty_kernel.console_splat(
					f.read().splitlines())
		except OSError:
			return ''

	def const(self, name: str) -> int:
		return self.layout[name][0]

	def start_traffic(self, g: Guest) -> None:
		"""Attach the device to @g and have its driver post buffers."""
		self.start_sim(g)
		self.wait(g, 'the device attaching',
			  lambda: g.regs.get('magic') == self.const('DD_SIM_MAGIC'),
			  10)
		start = g.regs.get('received')
		g.regs.set('ctrl', self.const('DD_CTRL_RUN'))
		self.wait(g, '%d buffers received' % WARMUP_BUFFERS,
			  lambda: g.regs.get('received') >= start + WARMUP_BUFFERS,
			  120)

	def migrate(self, src: Guest) -> (Guest, Leg):
		"""Migrate @src to a new destination while the device runs."""
		leg = Leg()
		t0 = time.monotonic()
		dst = self.start_guest(incoming='yes')
		uri = ('tcp:127.0.0.1:%d' % free_port() if self.profile.tcp else
		       'unix:' + os.path.join(self.tmp, 'mig%d.sock' % self.count))
		dst.qmp.cmd('migrate-incoming', uri=uri)
		scale = self.bench_mode.startswith('scale')
		src.qmp.cmd('migrate-set-parameters', **{
			'downtime-limit': SCALE_DOWNTIME_MS if scale else 1,
			'max-bandwidth': self.profile.max_bandwidth})
		received0 = src.regs.get('received')
		bytes0 = src.regs.get('bytes')
		kvm_pv = self.backend == 'kvm'
		if kvm_pv:
			leg.host_pages_start = kvm_stat(src, 'dma_dirty_pages')
		hypercalls0 = (kvm_stat(src, 'hypercalls')
			       if scale and self.profile.accel == 'kvm' else 0)
		src.qmp.cmd('migrate', uri=uri)
		quiesce_asked = 0.0
		released = False
		unplug = self.quiesce == 'unplug'
		leg.quiesce = self.quiesce
		leg.bench_mode = self.bench_mode
		t_migrate = time.monotonic()
		quiesce_bit = 'DD_CTRL_UNPLUG' if unplug else 'DD_CTRL_QUIESCE'
		quiesced_state = ('DD_STATE_REMOVED' if unplug else
				  'DD_STATE_QUIESCED')
		last_print = 0.0
		deadline = time.monotonic() + 900
		progress, progress_t = None, time.monotonic()
		while True:
			src.check_alive()
			dst.check_alive()
			self.check_sim()
			info = src.qmp.cmd('query-migrate')
			status = info.get('status')
			ram = info.get('ram', {})
			passes = ram.get('dirty-sync-count', 0)
			if status in ('failed', 'cancelled'):
				raise MigrationError('migration %s: %s' % (
					status, info.get('error-desc', '')))
			now = time.monotonic()
			cut = scale and now - t_migrate > SCALE_LIMIT_S
			if status == 'completed' or cut:
				leg.migration_s = now - t_migrate
				leg.passes = passes
				leg.mb_sent = ram.get('transferred', 0) / (1 << 20)
				leg.downtime_ms = info.get('downtime', 0)
				leg.pages_sent = ram.get('normal', 0)
				leg.converged = status == 'completed'
				break
			seen = (ram.get('transferred', 0), passes,
				src.regs.get('received'))
			if seen != progress:
				progress, progress_t = seen, now
			elif now - progress_t > STALL_SECONDS:
				raise EnvironmentFailure('stall: no migration progress and no buffer received for %d s (status %s, pass %d); %s console:\n%s'
							 % (STALL_SECONDS, status,
							    passes, src.name,
							    tail(src.console)))
			if now - last_print >= 2:
				last_print = now
				# QEMU reports 0 until it has measured a rate
				# (seen throughout the first pass).
				rate = ('%d pages/s' % ram['dirty-pages-rate']
					if ram.get('dirty-pages-rate') else
					'not measured yet')
				self.log('#   %s -> %s: %-9s pass %d, %.0f MB sent, dirty rate %s, %d buffers received'
					 % (src.name, dst.name, status, passes,
					    ram.get('transferred', 0) / (1 << 20),
					    rate, src.regs.get('received') - received0))
			half_sent = passes > 1 or (
				ram.get('total', 0) and
				ram.get('remaining', 0) <= ram['total'] // 2)
			if self.bench_mode == 'idle' and not released and \
					passes > 1:
				src.qmp.cmd('migrate-set-parameters', **{
					'downtime-limit': 20000,
					'max-bandwidth': FINAL_BANDWIDTH})
				released = True
			if not quiesce_asked and not scale and \
					self.bench_mode != 'idle' and \
					(self.bench_mode == 'failover' or
					 (half_sent and src.regs.get('received') -
					  received0 >= QUIESCE_AFTER_BUFFERS)):
				src.regs.set('ctrl', self.const('DD_CTRL_RUN') |
					     self.const(quiesce_bit))
				quiesce_asked = now
			if quiesce_asked and not leg.dma_s and \
					src.regs.get('state') == \
					self.const(quiesced_state):
				leg.dma_s = now - t_migrate
			if quiesce_asked and not released and \
					src.regs.get('state') == \
					self.const(quiesced_state) and \
					(not self.bench_mode or passes > 1):
				leg.received_during = (src.regs.get('received') -
						       received0)
				self.log('#   %s %s after %d buffers during migration; letting it converge'
					 % (src.name,
					    'removed the device (slot powered off, everything unmapped)'
					    if unplug else 'quiesced',
					    leg.received_during))
				src.qmp.cmd('migrate-set-parameters', **{
					'downtime-limit': 20000,
					'max-bandwidth': FINAL_BANDWIDTH})
				released = True
			if quiesce_asked and not released and \
					now - quiesce_asked > 120:
				raise MigrationError('%s: the device was not %s within 120 s of asking; console:\n%s'
						     % (src.name, 'removed' if unplug
							else 'quiesced',
							tail(src.console)))
			if now > deadline:
				raise MigrationError('migration did not complete within 900 s (status %s, pass %d)'
						     % (status, passes))
			time.sleep(0.25)
		if scale:
			return self.scale_end(src, dst, leg, t0, received0,
					      bytes0, hypercalls0)
		if not released:
			raise MigrationError('migration completed before the device quiesced')
		leg.ring_asked = leg.ring_used = self.profile.ring
		for g in (src, dst):
			with contextlib.suppress(OSError), \
					open(g.console + '.qemu', errors='replace') as f:
				if 'dirty ring not available' in f.read():
					leg.ring_used = 0
		self.stop_sim()
		if kvm_pv:
			leg.host_pages_src = kvm_stat(src, 'dma_dirty_pages')
		self.kill(src)
		self.wait(dst, 'the destination running',
			  lambda: dst.qmp.cmd('query-status')['status'] == 'running',
			  30)
		if self.bench_mode == 'idle':
			# No device ran: nothing to plug back or verify.
			leg.seconds = time.monotonic() - t0
			return dst, leg
		if unplug:
			self.replug(dst)
		dst.regs.set('ctrl', self.const('DD_CTRL_QUIESCE') |
			     self.const('DD_CTRL_VERIFY'))
		self.wait(dst, 'verification',
			  lambda: dst.regs.get('state') ==
			  self.const('DD_STATE_VERIFIED'), 120)
		leg.counters = self.counters(dst)
		if kvm_pv:
			leg.host_pages_dst = kvm_stat(dst, 'dma_dirty_pages')
			for g in (src, dst):
				with contextlib.suppress(OSError), \
						open(g.console, errors='replace') as f:
					leg.touched_instead += f.read().count(
						'touched instead')
		for g in (src, dst):
			splat = self.splat(g)
			if splat:
				raise MigrationError('%s: guest kernel reported: %s (console: %s)'
						     % (g.name, splat, g.console))
		leg.verified = dst.regs.get('verified')
		leg.corrupted = dst.regs.get('corrupted')
		for c, _ in CLASSES:
			leg.pool[c] = self.const('DD_POOL_' + c.upper())
			leg.cls_received[c] = dst.regs.get(c + '_received')
			leg.cls_verified[c] = dst.regs.get(c + '_verified')
			leg.cls_corrupted[c] = dst.regs.get(c + '_corrupted')
		leg.rx_bad = dst.regs.get('rx_bad')
		leg.remapped = dst.regs.get('remapped')
		leg.seconds = time.monotonic() - t0
		if unplug:
			# The driver works again on the new device.
			before = dst.regs.get('received')
			dst.regs.set('ctrl', self.const('DD_CTRL_RUN'))
			# A device that does not work is the check's to report
			# (device_works_after_replug), with what it did.
			why = ''
			try:
				self.wait(dst, 'buffers received after the replug',
					  lambda: dst.regs.get('received') >=
					  before + REPLUG_BUFFERS, 60)
				dst.regs.set('ctrl', self.const('DD_CTRL_QUIESCE'))
				self.wait(dst, 'the device quiesced again',
					  lambda: dst.regs.get('state') ==
					  self.const('DD_STATE_QUIESCED'), 30)
			except MigrationError as e:
				why = ' (%s)' % str(e).split(';')[0]
			leg.replug_received = dst.regs.get('received') - before
			self.log('#   %s: %d buffers received after the replug%s'
				 % (dst.name, leg.replug_received, why))
		self.log('#   %s: %d buffers verified; corrupted: %s; %d passes, %.0f MB sent, downtime %d ms, %.0f s'
			 % (dst.name, leg.verified,
			    ', '.join('%s %d/%d' % (what, leg.cls_corrupted[c],
						    leg.cls_verified[c])
				      for c, what in CLASSES),
			    leg.passes, leg.mb_sent, leg.downtime_ms,
			    leg.seconds))
		return dst, leg

	def scale_end(self, src: Guest, dst: Guest, leg: Leg, t0: float,
		      received0: int, bytes0: int, hypercalls0: int) -> (Guest, Leg):
		"""The end of a 'scale' migration: what the device did during
		it; cancel it if it did not converge.  Nothing is verified."""
		leg.received_during = src.regs.get('received') - received0
		leg.device_pages = (src.regs.get('bytes') - bytes0) // 4096
		leg.sim_rate = self.profile.sim_rate
		leg.buf_pages = self.profile.buf_pages
		if self.profile.accel == 'kvm':
			leg.hypercalls = kvm_stat(src, 'hypercalls') - hypercalls0
		if not leg.converged:
			# It may complete between the cut and the cancel: the
			# figures stay those of the cut, not converged in time.
			src.qmp.cmd('migrate_cancel')
			self.wait(src, 'the migration cancelled',
				  lambda: src.qmp.cmd('query-migrate').get(
					  'status') in ('cancelled', 'completed'),
				  60)
		self.log('#   %s: %s after %.0f s, %d passes, %d pages sent, the device wrote %d pages'
			 % (src.name, 'converged' if leg.converged else
			    'not converged, cancelled', leg.migration_s,
			    leg.passes, leg.pages_sent, leg.device_pages))
		self.stop_sim()
		self.kill(src)
		leg.seconds = time.monotonic() - t0
		return dst, leg

	def replug(self, g: Guest) -> None:
		"""On the destination: take the powered-off device away and plug
		a new one on the same root port; the driver adopts its pool."""
		g.qmp.cmd('device_del', id='dd0')
		try:
			g.qmp.event('DEVICE_DELETED', 30, device='dd0')
		except dd_qmp.QMPError as e:
			raise MigrationError('%s: device_del of the powered-off device: %s'
					     % (g.name, e))
		# A new register file: QEMU 10 aborts when a device is added
		# on the memory backend of a deleted ivshmem device
		# (qemu_ram_set_idstr: Assertion `!new_block->idstr[0]').
		bar = self.shm('%s-bar-replug' % g.name, BAR_BYTES)
		g.qmp.cmd('object-add', **{'qom-type': 'memory-backend-file',
					   'id': 'bar-replug', 'size': BAR_BYTES,
					   'mem-path': bar, 'share': True})
		g.qmp.cmd('device_add', driver='ivshmem-plain',
			  memdev='bar-replug', master='on', bus='rp0', id='dd0')
		g.regs.close()
		g.bar = bar
		g.regs = Regs(bar, self.layout)
		self.start_sim(g)
		self.wait(g, 'the driver binding the plugged-back device',
			  lambda: g.regs.get('state') ==
			  self.const('DD_STATE_READY'), 60)
		self.log('#   %s: device deleted (DEVICE_DELETED), a new one added; the driver adopted its buffers'
			 % g.name)

	def counters(self, g: Guest) -> Optional[Dict[str, str]]:
		"""The debugfs counters demo.sh prints once @g has verified."""
		deadline = time.monotonic() + 30
		while time.monotonic() < deadline:
			g.check_alive()
			with contextlib.suppress(OSError), \
					open(g.console, errors='replace') as f:
				# Whole lines only: under nested KVM each byte
				# of the serial port is an exit, and the line
				# was seen half written.
				for line in f.read().split('\n')[:-1]:
					i = line.find(COUNTERS_TAG)
					if i < 0:
						continue
					return dict(kv.split('=', 1) for kv in
						    line[i + len(COUNTERS_TAG):].split()
						    if '=' in kv)
			time.sleep(0.2)
		return None


def path_check(leg: Leg, backend: str, iommu: bool) -> tuple:
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


def kvm_checks(leg: Leg) -> List[tuple]:
	"""With dma_mark_dirty=kvm: the guest made no report before migration
	(KVM was not logging: the bypass), and what it reported is what KVM
	counted, on the source and the destination together (the destination
	gets the reports the guest made before it learnt that its registration
	was not restored), with no page touched instead."""
	c = leg.counters or {}
	guest = sum(int(v) for k, v in c.items()
		    if k in ('pages_direct', 'pages_iommu', 'pages_caller') and
		    v.isdigit())
	host = leg.host_pages_src - leg.host_pages_start + leg.host_pages_dst
	return [
		('kvm_no_report_before_migration', leg.host_pages_start == 0,
		 'KVM counted %d pages reported by the source before migration started (it was not logging)'
		 % leg.host_pages_start),
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


def leg_checks(leg: Leg, backend: str, iommu: bool = False) -> List[tuple]:
	"""(test name, ok, detail) for everything a leg must have shown."""
	tracking = backend != 'off'
	checks = [
		('traffic_during_migration',
		 leg.received_during >= QUIESCE_AFTER_BUFFERS,
		 '%d buffers received during migration (at least %d: every buffer rewritten)'
		 % (leg.received_during, QUIESCE_AFTER_BUFFERS)),
		('buffers_verified',
		 all(leg.cls_verified.get(c) == leg.pool.get(c) and
		     leg.pool.get(c) for c, _ in CLASSES),
		 ', '.join('%s %d of %d' % (what, leg.cls_verified.get(c, 0),
					    leg.pool.get(c, 0))
			   for c, what in CLASSES)),
		('payload_on_receipt', leg.rx_bad == 0,
		 '%d buffers did not hold their payload when received on the source'
		 % leg.rx_bad),
	]
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
	return checks


def scenario(paths: dma_dirty_kernel.Paths, backend: str, legs: int = 1,
	     log=print, iommu: bool = False, label: str = '',
	     profile: Profile = Profile(), quiesce: str = 'stop',
	     bench_mode: str = '') -> List[Leg]:
	"""Boot, start traffic, migrate @legs times (ping-pong), verify each.
	@bench_mode: one of BENCH_MODES, for make bench (one leg)."""
	results = []
	if quiesce == 'unplug' and legs != 1:
		# the destination's device then sits on another backend
		raise MigrationError('--quiesce unplug runs one leg')
	if profile.accel == 'kvm' and not os.path.exists('/dev/kvm'):
		raise MigrationError('no /dev/kvm: this machine cannot run the KVM guests (in a nested run: the L1 has no KVM, see its console)')
	with Testbed(paths, backend, log, iommu, label, profile,
		     quiesce, bench_mode) as tb:
		if tb.const('DD_POOL_TRACKED') + tb.const('DD_POOL_LONG') + \
				tb.const('DD_POOL_CONTROL') > QUIESCE_AFTER_BUFFERS:
			raise MigrationError('QUIESCE_AFTER_BUFFERS (%d) is below the pool: some buffers would not be rewritten during migration'
					     % QUIESCE_AFTER_BUFFERS)
		log('# migration, dma_mark_dirty=%s%s, %s%s, quiesce by %s: booting the source'
		    % (backend, ', behind intel-iommu' if iommu else '',
		       profile.accel, ' dirty ring %d' % profile.ring
		       if profile.ring else '',
		       'hot-unplug' if quiesce == 'unplug' else 'stop bit'))
		src = tb.start_guest()
		try:
			tb.wait(src, 'the guest driver binding',
				lambda: src.regs.get('state') ==
				tb.const('DD_STATE_READY'), 120)
		except MigrationError as e:
			# No test code has run yet: the guest crashed or hung
			# while booting.
			raise EnvironmentFailure('guest crash or hang before the test started: %s'
						 % e) from e
		rate = 0.0
		traffic = bench_mode not in ('idle', 'scale-idle')
		if traffic:
			tb.start_traffic(src)
		if bench_mode and traffic and not bench_mode.startswith('scale'):
			n0, t_0 = src.regs.get('received'), time.monotonic()
			time.sleep(RATE_SECONDS)
			rate = (src.regs.get('received') - n0) / \
				(time.monotonic() - t_0)
		for i in range(legs):
			dst, leg = tb.migrate(src)
			leg.rate_before = rate
			results.append(leg)
			src = dst
			if i + 1 < legs:
				tb.start_traffic(src)
	return results


def write_json(path: str, out: dict) -> None:
	"""Write @out to @path whole or not at all: run_l1() on the host
	reads it once the L1 powers off."""
	with open(path + '.tmp', 'w') as f:
		json.dump(out, f, indent=1)
	os.replace(path + '.tmp', path)


def write_result(path: str, legs: Optional[List[Leg]] = None,
		 error: Optional[MigrationError] = None) -> None:
	"""What a run inside the L1 hands back to the host's harness."""
	out = {'legs': [dataclasses.asdict(l) for l in legs or []]}
	if error is not None:
		out['error'] = str(error)
		out['environment'] = isinstance(error, EnvironmentFailure)
	write_json(path, out)


def nested(paths: dma_dirty_kernel.Paths, backend: str, legs: int = 1,
	   log=print, label: str = '', ring: int = 0,
	   quiesce: str = 'stop', bench_mode: str = '') -> List[Leg]:
	"""The scenario on KVM: boot the test kernel under TCG as an L1 KVM
	host, with the host's / over 9p, and run this same runner in it (the
	host's python3, QEMU and dd_sim, chrooted) with L2 guests under
	-accel kvm.  Logs: migrate-LABEL.l1.console.log (the L1 kernel),
	.l1.runner.log (the runner in it), and the L2 consoles the runner
	writes, all in the build's log directory, which the L1 mounts
	read-write."""
	label = label or 'kvm-' + backend
	here = os.path.dirname(os.path.abspath(__file__))
	for p, what in ((paths.kernel, 'make kernel'),
			(paths.initramfs_demo, 'make sim'),
			(os.path.join(paths.sim, 'dd_sim'), 'make sim')):
		if not os.path.exists(p):
			raise MigrationError('%s is missing (%s builds it)'
					     % (p, what))
	out = run_l1(paths, 'migrate-' + label,
		     'run --backend %s --legs %d --accel kvm --ring %d --quiesce %s --label %s%s'
		     % (backend, legs, ring, quiesce, label,
			' --bench-mode ' + bench_mode if bench_mode else ''),
		     '%s: L1 (test kernel, TCG, 4 GiB, 2 vCPUs) runs the scenario with L2 guests under KVM (%s)'
		     % (label, 'dirty ring %d' % ring if ring else 'dirty bitmap'),
		     log)
	return [Leg(**l) for l in out['legs']]


def run_l1(paths: dma_dirty_kernel.Paths, name: str, job: str, what: str,
	   log=print) -> dict:
	"""Boot the test kernel under TCG as an L1 KVM host, with the host's /
	over 9p, and run "dd_migrate.py @job --result FILE" in it (the host's
	python3 and QEMU, chrooted).  Returns the result it wrote; raises what
	it reported.  Logs: @name.l1.console.log (the L1 kernel),
	@name.l1.runner.log (the runner), and what the runner writes, in the
	build's log directory, which the L1 mounts read-write."""
	here = os.path.dirname(os.path.abspath(__file__))
	build = os.path.abspath(paths.build)
	logs = os.path.abspath(paths.logs)
	os.makedirs(logs, exist_ok=True)
	label = name
	initrd = os.path.join(build, 'initramfs-l1%s.cpio.gz' % (
		'-' + paths.variant if paths.variant else ''))
	dma_dirty_kernel.build_initramfs(
		paths, initrd, [os.path.join(here, 'guest', 'l1-init')])
	base = os.path.join(logs, name)
	result = base + '.result.json'
	job_args = job
	job = base + '.l1.job'
	console = base + '.l1.console.log'
	runner = base + '.l1.runner.log'
	for f in (result, console, runner):
		with contextlib.suppress(FileNotFoundError):
			os.unlink(f)
	with open(job, 'w') as f:
		f.write('cd %s && exec python3 -u %s %s --build %s --variant "%s" --result %s\n'
			% (here, os.path.join(here, 'dd_migrate.py'), job_args,
			   build, paths.variant, result))
	cmd = ['qemu-system-x86_64', *L1_QEMU,
	       '-kernel', paths.kernel, '-initrd', initrd,
	       '-append', ' '.join(L1_APPEND + ['ddl1.job=' + job,
					       'ddl1.logs=' + logs]),
	       '-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on',
	       '-virtfs', 'local,path=%s,mount_tag=ddlogs,security_model=none' % logs,
	       '-display', 'none', '-monitor', 'none', '-no-reboot',
	       '-serial', 'file:' + console, '-serial', 'file:' + runner]
	log('# %s; logs %s.l1.*.log' % (what, base))
	t0 = time.monotonic()
	with open(console + '.qemu', 'w') as err:
		proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
					stdout=subprocess.DEVNULL, stderr=err)
	seen, quiet_since = 0, time.monotonic()
	lines: List[str] = []
	try:
		while proc.poll() is None:
			time.sleep(1)
			with contextlib.suppress(OSError), \
					open(runner, errors='replace') as f:
				lines = f.read().splitlines()
			if len(lines) > seen:
				for l in lines[seen:]:
					log(l if l.startswith('#') else
					    '#   L1| ' + l)
				seen, quiet_since = len(lines), time.monotonic()
			now = time.monotonic()
			if now - quiet_since > L1_QUIET or now - t0 > L1_TIMEOUT:
				raise EnvironmentFailure('stall: the L1 printed nothing for %d s (%d s in); L1 console:\n%s'
							 % (now - quiet_since,
							    now - t0,
							    tail(console)))
	finally:
		if proc.poll() is None:
			proc.kill()
			proc.wait()
	log('# %s: L1 powered off after %.0f s' % (label,
						      time.monotonic() - t0))
	try:
		with open(result) as f:
			out = json.load(f)
	except (OSError, ValueError):
		if any(l.startswith('Traceback') for l in lines):
			raise MigrationError('the runner in the L1 crashed; runner log:\n%s'
					     % tail(runner, 25))
		if seen == 0:
			raise EnvironmentFailure('the L1 did not start the runner (QEMU status %d; stderr %s); L1 console:\n%s'
						 % (proc.returncode,
						    tail(console + '.qemu', 5),
						    tail(console)))
		raise EnvironmentFailure('the L1 ended without a result; runner log:\n%s\nL1 console:\n%s'
					 % (tail(runner), tail(console)))
	if 'error' in out:
		raise (EnvironmentFailure if out.get('environment') else
		       MigrationError)(out['error'])
	return out


# The L2 guest of the kvm-guest run: the test kernel and initramfs, its
# kselftests, backend kvm; the rate at which the "migration" that keeps KVM
# logging sends (it must outlast the kselftests, which take minutes).
L2_APPEND = ['console=ttyS0', 'panic=-1', 'oops=panic', 'kunit.enable=0',
	     'dma_mark_dirty=kvm', 'ddtest.backend=kvm', 'ddtest.path=direct',
	     'ddtest.ksft=dma_dirty', 'ddtest.kvmgate=1']
L2_LOGGING_BANDWIDTH = 256 << 10
L2_WAIT = 900		# seconds for each half of the kselftests


def read_counters(lines: List[str]) -> List[Dict[str, int]]:
	"""The '# dma-dirty: counters' lines of an L2 results log, in order."""
	out = []
	for l in lines:
		if l.startswith('# dma-dirty: counters'):
			out.append({k: int(v) for k, v in
				    (kv.split('=', 1) for kv in l.split()[3:])
				    if v.isdigit()})
	return out


def start_l2(base: str, kernel: str, initrd: str,
	     append: List[str]) -> Guest:
	"""Inside the L1: boot @kernel as an L2 guest under KVM with the kvm
	backend's CPU (cpu_model()) and a pci-testdev, its console in
	@base.console.log and its ttyS1 in @base.results.log (Guest.results),
	QMP connected.  An L2 that does not start is an EnvironmentFailure."""
	console, results = base + '.console.log', base + '.results.log'
	for f in (results, console):
		with contextlib.suppress(FileNotFoundError):
			os.unlink(f)
	port = free_port()
	cmd = ['qemu-system-x86_64', '-M', 'q35', '-accel', 'kvm',
	       '-cpu', cpu_model('kvm', 'kvm'), '-smp', '1', '-m', '512M',
	       '-vga', 'none', '-kernel', kernel, '-initrd', initrd,
	       '-append', ' '.join(append),
	       '-display', 'none', '-monitor', 'none', '-no-reboot',
	       '-serial', 'file:' + console, '-serial', 'file:' + results,
	       '-device', 'pci-testdev',
	       '-qmp', 'tcp:127.0.0.1:%d,server=on,wait=off' % port]
	proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
				stdout=subprocess.DEVNULL,
				stderr=open(console + '.qemu', 'w'))
	g = Guest(os.path.basename(base), proc, None, '', '', console,
		  results=results)
	try:
		g.qmp = dd_qmp.QMP('tcp:127.0.0.1:%d' % port, timeout=30)
	except dd_qmp.QMPError as e:
		proc.kill()
		proc.wait()
		raise EnvironmentFailure('QEMU start failure: %s; stderr: %s'
					 % (e, tail(console + '.qemu', 5)))
	return g


def keep_logging(g: Guest) -> None:
	"""Make KVM log @g's dirty pages: a migration to a sink, slow enough
	to last (L2_LOGGING_BANDWIDTH); migrate_cancel ends it."""
	g.qmp.cmd('migrate-set-parameters',
		  **{'max-bandwidth': L2_LOGGING_BANDWIDTH})
	g.qmp.cmd('migrate', uri='exec:cat > /dev/null')


def l2_kselftest(paths: dma_dirty_kernel.Paths, release: str,
		 log=print) -> dict:
	"""Inside the L1: boot the test kernel as an L2 guest under KVM with
	the kvm backend (guest/init, ddtest.kvmgate=1), let it run its
	kselftests while KVM does not log, then turn logging on (a migration
	to a sink, slow enough to outlast the second run) and let it run them
	again; read KVM's statistics of the VM at each step."""
	if not os.path.exists('/dev/kvm'):
		raise MigrationError('no /dev/kvm: the L1 cannot run KVM guests (see its console)')
	logs = os.path.abspath(paths.logs)
	g = start_l2(os.path.join(logs, 'kvm-guest'), paths.kernel,
		     paths.initramfs, L2_APPEND + ['ddtest.release=' + release])
	proc, console, results = g.proc, g.console, g.results
	out: dict = {'results_log': results, 'console_log': console}
	try:
		def lines() -> List[str]:
			with contextlib.suppress(OSError), \
					open(results, errors='replace') as f:
				return f.read().split('\n')[:-1]
			return []

		def wait_line(marker: str, what: str) -> None:
			t0, seen = time.monotonic(), 0
			while marker not in lines():
				g.check_alive()
				n = len(lines())
				if n != seen:
					seen = n
					log('#   L2: %d result lines (%s)' % (n, what))
				if time.monotonic() - t0 > L2_WAIT:
					raise MigrationError('L2: no "%s" within %d s; console:\n%s'
							     % (marker, L2_WAIT,
								tail(console)))
				time.sleep(2)

		wait_line('# dma-dirty: waiting for reporting',
			  'kselftests, KVM not logging')
		out['host_pages_gated'] = kvm_stat(g, 'dma_dirty_pages')
		out['host_hypercalls_gated'] = kvm_stat(g, 'hypercalls')
		log('#   L2: kselftests done while KVM did not log; KVM counted %d pages, %d hypercalls; turning logging on'
		    % (out['host_pages_gated'], out['host_hypercalls_gated']))
		keep_logging(g)
		wait_line('# dma-dirty: done', 'kselftests, KVM logging')
		status = g.qmp.cmd('query-migrate').get('status')
		if status != 'active':
			raise MigrationError('the migration that keeps KVM logging is %s before the kselftests ended: lower L2_LOGGING_BANDWIDTH'
					     % status)
		out['host_pages_logging'] = kvm_stat(g, 'dma_dirty_pages')
		g.qmp.cmd('migrate_cancel')
		# The guest powers off once it sees that KVM stopped logging;
		# the host judges it (powered_off), after the other checks.
		out['powered_off'] = True
		try:
			proc.wait(120)
		except subprocess.TimeoutExpired:
			out['powered_off'] = False
	finally:
		if g.qmp:
			g.qmp.close()
		if proc.poll() is None:
			proc.kill()
			proc.wait()
	splat = dma_dirty_kernel.console_splat(
		open(console, errors='replace').read().splitlines())
	if splat:
		raise MigrationError('L2 kernel reported: %s (console: %s)'
				     % (splat, console))
	return out


def nested_kselftest(paths: dma_dirty_kernel.Paths, release: str,
		     log=print) -> dict:
	"""The kvm-guest run, from the host: run_l1() with l2_kselftest()."""
	for p, what in ((paths.kernel, 'make kernel'),
			(paths.initramfs, 'make test')):
		if not os.path.exists(p):
			raise MigrationError('%s is missing (%s builds it)'
					     % (p, what))
	return run_l1(paths, 'kvm-guest', 'l2-kselftest --release %s' % release,
		      'kvm-guest: L1 (test kernel, TCG) runs an L2 guest under KVM, backend kvm, with its kselftests',
		      log)


def print_table(rows: Dict[tuple, Leg]) -> None:
	"""@rows: (dma_mark_dirty, accelerator) -> leg."""
	cols = ['dma_mark_dirty', 'accelerator', 'received during migration',
		'verified on destination', 'tracked corrupted',
		'long-lived corrupted', 'control corrupted', 'passes', 'MB sent',
		'downtime ms']
	print('| ' + ' | '.join(cols) + ' |')
	print('|' + '|'.join('-' * (len(c) + 2) for c in cols) + '|')
	for (name, accel), leg in rows.items():
		vals = [name, accel, leg.received_during, leg.verified] + \
			['%d/%d' % (leg.cls_corrupted[c], leg.cls_verified[c])
			 for c, _ in CLASSES] + \
			[leg.passes, '%.0f' % leg.mb_sent, leg.downtime_ms]
		print('| ' + ' | '.join(str(v).rjust(len(c)) if i > 1 else
					str(v).ljust(len(c))
					for i, (v, c) in enumerate(zip(vals, cols))) + ' |')


def leftovers(tag_prefix: str = 'dd-') -> List[str]:
	return [os.path.join('/dev/shm', f) for f in os.listdir('/dev/shm')
		if f.startswith(tag_prefix + str(os.getpid()))]


def main(argv: List[str]) -> int:
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
	r.add_argument('--backend', default='touch')
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
		       help='also write the legs, or the error, to this JSON file')
	# 'scale' legs are not verified: make bench runs them, not 'run'
	r.add_argument('--bench-mode', choices=BENCH_MODES[:3], default='',
		       help='make bench: kept, failover or idle (hot-unplug quiesce)')
	k = sub.add_parser('l2-kselftest',
			   help='in an L1: the kselftests in an L2 guest with the kvm backend')
	k.add_argument('--build', default='build')
	k.add_argument('--variant', default='')
	k.add_argument('--release', required=True,
		       help='the kernel release the L2 must run')
	k.add_argument('--result', required=True)
	b = sub.add_parser('bench-l2',
			   help='in an L1: the L2 guests of make bench (dd_bench.py)')
	b.add_argument('--build', default='build')
	b.add_argument('--variant', default='')
	b.add_argument('--result', required=True)
	c = sub.add_parser('bench-scale',
			   help='in an L1: the scaling migrations of make bench (dd_bench.py)')
	c.add_argument('--build', default='build')
	c.add_argument('--variant', default='')
	c.add_argument('--result', required=True)
	args = ap.parse_args(argv)
	paths = dma_dirty_kernel.Paths(os.path.abspath(args.build), args.variant)
	if args.cmd == 'bench-l2':
		import dd_bench
		return dd_bench.cmd_l2(args)
	if args.cmd == 'bench-scale':
		import dd_bench
		return dd_bench.cmd_scale_l2(args)
	if args.cmd == 'l2-kselftest':
		try:
			out = l2_kselftest(paths, args.release)
		except (MigrationError, dd_qmp.QMPError) as e:
			out = {'error': str(e),
			       'environment': isinstance(e, EnvironmentFailure)}
		write_json(args.result, out)
		print('l2-kselftest: %s' % out.get('error', 'done'))
		return 1 if 'error' in out else 0

	# Ctrl-C and SIGTERM unwind through the Testbed, which cleans up.
	signal.signal(signal.SIGTERM, lambda *a: sys.exit(130))
	try:
		if args.cmd == 'demo':
			rows = {}
			for backend in ('off', 'touch'):
				rows[backend, 'tcg'] = scenario(paths, backend)[0]
			if not args.tcg_only:
				# The same under KVM, nested (--nested), with
				# the hot-unplug quiesce.
				for backend in ('off', 'touch', 'kvm'):
					rows[backend, 'kvm-nested'] = nested(
						paths, backend,
						label='demo-kvm-' + backend,
						quiesce='unplug')[0]
			print()
			print_table(rows)
			print()
			return 0
		label = args.label or (('kvm-' if args.nested else '') +
				       args.backend +
				       ('-viommu' if args.iommu else '') +
				       ('-ring' if args.ring else ''))
		if args.nested:
			legs = nested(paths, args.backend, args.legs,
				      label=label, ring=args.ring,
				      quiesce=args.quiesce,
				      bench_mode=args.bench_mode)
		else:
			profile = Profile()
			if args.accel == 'kvm':
				profile = dataclasses.replace(KVM_PROFILE,
							      ring=args.ring)
			try:
				legs = scenario(paths, args.backend, args.legs,
						iommu=args.iommu, label=label,
						profile=profile,
						quiesce=args.quiesce,
						bench_mode=args.bench_mode)
			except (MigrationError, dd_qmp.QMPError) as e:
				if args.result:
					write_result(args.result, error=e if
						     isinstance(e, MigrationError)
						     else MigrationError(str(e)))
				raise
			if args.result:
				write_result(args.result, legs)
		failed = 0
		for i, leg in enumerate(legs):
			for name, ok, detail in leg_checks(leg, args.backend,
							   args.iommu):
				failed += not ok
				print('%sleg%d.%s # %s' % ('ok      ' if ok else
							   'not ok  ', i + 1,
							   name, detail))
		return 1 if failed else 0
	except (MigrationError, dd_qmp.QMPError) as e:
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
