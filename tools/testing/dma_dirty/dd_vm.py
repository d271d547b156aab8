# SPDX-License-Identifier: GPL-2.0
"""A guest VM: its QEMU process and command line, QMP, serial console and
console log, the splat scan, and its cleanup.

Two kinds are started here.  A migration guest (migration_cmd(),
start()): guest RAM and the device's BAR as share=on files the simulated
device maps, on q35 with an ivshmem-plain device behind a pcie-root-port.
An L2 guest inside the nested L1 (start_l2()): the test kernel with a
pci-testdev and a second serial port for its results.  Every guest ends in
Guest.stop(), which also removes its RAM and BAR files.
"""

from __future__ import annotations

import contextlib
import glob
import os
import socket
import subprocess
from dataclasses import dataclass
from typing import List, Optional

import dd_qmp
import dma_dirty_kernel
from dd_device import BAR_BYTES, Regs
from dd_errors import EnvironmentFailure, TestFailure

# The guest behind QEMU's intel-iommu (it migrates in QEMU 10): every DMA
# mapping of the device goes through dma-iommu.
IOMMU_QEMU = ['-device', 'intel-iommu,intremap=off']
IOMMU_APPEND = ['intel_iommu=on', 'iommu.passthrough=0']
# Native PCIe hotplug on the root port (QEMU defaults to ACPI hotplug on
# q35, which the test kernel does not build), and the ports given to the
# kernel (the firmware's _OSC would not hand them over).
UNPLUG_QEMU = ['-global', 'ICH9-LPC.acpi-pci-hotplug-with-bridge-support=off']
UNPLUG_APPEND = ['pcie_ports=native']
# keep_logging(): the pace of the "migration" to a sink that keeps KVM
# logging; it must outlast what runs meanwhile (the kselftests take
# minutes).
LOGGING_BANDWIDTH = 256 << 10


def cpu_model(accel: str, backend: str) -> str:
	"""QEMU 10.0 has no name for KVM_FEATURE_DMA_DIRTY: only -cpu host with
	migratable=off passes it (every KVM feature bit KVM offers) to the
	guest, for the kvm backend and for auto, which must pick it.  The
	other rows keep the CPU a user migrates with."""
	if accel != 'kvm':
		return 'max'
	return 'host,migratable=off' if backend in ('kvm', 'auto') else 'host'


def tail(path: str, n: int = 15) -> str:
	"""The last @n lines of a log, indented for an error message."""
	try:
		with open(path, errors='replace') as f:
			lines = f.read().splitlines()[-n:]
		return '\n'.join('    | ' + line for line in lines) or \
			'    | (console empty: %s)' % path
	except OSError:
		return '    | (no console log)'


def free_port() -> int:
	"""A loopback TCP port nobody listens on (there is only us in an L1)."""
	with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
		s.bind(('127.0.0.1', 0))
		port: int = s.getsockname()[1]
		return port


@dataclass
class Guest:
	"""One QEMU process and what belongs to it."""
	name: str
	proc: subprocess.Popen
	qmp: Optional[dd_qmp.QMP]
	ram: str
	bar: str
	console: str
	regs: Optional[Regs] = None
	results: str = ''	# start_l2(): the guest's ttyS1

	@property
	def q(self) -> dd_qmp.QMP:
		"""The QMP connection, which a started guest has."""
		if self.qmp is None:
			raise TestFailure('%s: no QMP connection' % self.name)
		return self.qmp

	@property
	def r(self) -> Regs:
		"""The device registers, which a migration guest has."""
		if self.regs is None:
			raise TestFailure('%s: no device registers' % self.name)
		return self.regs

	def check_alive(self) -> None:
		if self.proc.poll() is not None:
			raise TestFailure('QEMU %s exited with status %d; last console lines:\n%s'
					  % (self.name, self.proc.returncode,
					     tail(self.console)))

	def console_text(self) -> str:
		with contextlib.suppress(OSError), \
				open(self.console, errors='replace') as f:
			return f.read()
		return ''

	def console_lines(self) -> List[str]:
		"""Whole lines only: under nested KVM each byte of the serial
		port is an exit, and a line was seen half written."""
		return self.console_text().split('\n')[:-1]

	def splat(self) -> str:
		"""The first kernel splat on the console (a stall
		included), or ''."""
		return dma_dirty_kernel.console_splat(
			self.console_text().splitlines())

	def check_console(self) -> None:
		"""A splat on the console is a test failure."""
		splat = self.splat()
		if splat:
			raise TestFailure('%s: guest kernel reported: %s (console: %s)'
					  % (self.name, splat, self.console))

	def not_a_result(self, why: str) -> TestFailure:
		"""What a guest that did not get on is: an EnvironmentFailure
		(@why), unless its kernel reported a splat, a stall included:
		then the kernel under test failed, a TestFailure."""
		splat = self.splat()
		if splat:
			return TestFailure('%s: guest kernel reported: %s (console: %s); %s'
					   % (self.name, splat, self.console,
					      why.split('\n')[0]))
		return EnvironmentFailure(why)

	def stop(self) -> None:
		"""End QEMU (terminate, then kill) and remove its files."""
		if self.qmp:
			self.qmp.close()
			self.qmp = None
		if self.regs:
			self.regs.close()
			self.regs = None
		if self.proc.poll() is None:
			self.proc.terminate()
			try:
				self.proc.wait(5)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait()
		for f in (self.ram, self.bar):
			if f:
				with contextlib.suppress(FileNotFoundError):
					os.unlink(f)


def kvm_stat(g: Guest, name: str) -> int:
	"""A KVM statistic of @g's VM, summed over its vCPUs, from the
	debugfs of the kernel QEMU runs on (the L1's, in a nested run)."""
	dirs = glob.glob('/sys/kernel/debug/kvm/%d-*' % g.proc.pid)
	if len(dirs) != 1:
		raise TestFailure('KVM statistics of %s (QEMU pid %d): %s in /sys/kernel/debug/kvm'
				  % (g.name, g.proc.pid, 'no folder'
				     if not dirs else '%d folders' % len(dirs)))
	try:
		with open(os.path.join(dirs[0], name)) as f:
			return int(f.read())
	except (OSError, ValueError) as e:
		raise TestFailure('cannot read KVM statistic %s of %s: %s'
				  % (name, g.name, e))


@dataclass
class MigrationGuest:
	"""What a migration guest's command line is made of."""
	kernel: str
	initrd: str
	append: List[str]
	accel: str		# 'tcg' or 'kvm'
	cpu: str
	ram_mb: int
	ram: str		# the guest RAM file, share=on
	bar: str		# the device's BAR 2 file, share=on
	console: str
	qmp: str		# a unix socket path, or tcp:HOST:PORT
	ring: int = 0		# KVM dirty ring entries; 0: the bitmap
	iommu: bool = False
	unplug: bool = False	# native PCIe hotplug on the root port
	incoming: bool = False


def migration_cmd(m: MigrationGuest) -> List[str]:
	"""The QEMU command line of a guest of the migration scenario."""
	accel = m.accel + (',dirty-ring-size=%d' % m.ring if m.ring else '')
	cmd = ['qemu-system-x86_64',
	       '-M', 'q35,memory-backend=ram', '-accel', accel,
	       '-cpu', m.cpu, '-smp', '1', '-m', '%dM' % m.ram_mb,
	       # A VGA device logs its framebuffer: KVM would log dirty
	       # pages, and the kvm backend report, all the time.
	       '-vga', 'none']
	# before the PCI devices it translates for
	if m.iommu:
		cmd += IOMMU_QEMU
	if m.unplug:
		cmd += UNPLUG_QEMU
	cmd += ['-object', 'memory-backend-file,id=ram,size=%dM,mem-path=%s,share=on'
			% (m.ram_mb, m.ram),
		'-object', 'memory-backend-file,id=bar,size=%d,mem-path=%s,share=on'
			% (BAR_BYTES, m.bar),
		'-device', 'pcie-root-port,id=rp0,chassis=1,slot=1',
		'-device', 'ivshmem-plain,memdev=bar,master=on,bus=rp0,id=dd0',
		'-kernel', m.kernel, '-initrd', m.initrd,
		'-append', ' '.join(m.append),
		'-display', 'none', '-monitor', 'none', '-no-reboot',
		'-serial', 'file:' + m.console,
		'-qmp', '%s,server=on,wait=off' % (
			m.qmp if m.qmp.startswith('tcp:') else 'unix:' + m.qmp)]
	if m.incoming:
		cmd += ['-incoming', 'defer']
	return cmd


def launch(name: str, cmd: List[str], console: str, qmp: str,
	   ram: str = '', bar: str = '', results: str = '',
	   started: Optional[List[Guest]] = None) -> Guest:
	"""Start QEMU with @cmd (its stderr in @console.qemu) and connect to
	its QMP at @qmp.  The guest is appended to @started before QMP is
	tried, so that whoever owns the list stops it whatever happens.  A
	QEMU that does not answer QMP, or that exits, is an
	EnvironmentFailure: no test code ran."""
	with open(console + '.qemu', 'w') as err:
		proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
					stdout=subprocess.DEVNULL, stderr=err)
	g = Guest(name, proc, None, ram, bar, console, results=results)
	if started is not None:
		started.append(g)
	try:
		g.qmp = dd_qmp.QMP(qmp, timeout=30)
		g.check_alive()
	except (dd_qmp.QMPError, TestFailure) as e:
		if started is None:
			g.stop()
		raise EnvironmentFailure('QEMU start failure: %s: %s; stderr: %s'
					 % (name, e, tail(console + '.qemu', 5)))
	return g


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
	qmp = 'tcp:127.0.0.1:%d' % free_port()
	cmd = ['qemu-system-x86_64', '-M', 'q35', '-accel', 'kvm',
	       '-cpu', cpu_model('kvm', 'kvm'), '-smp', '1', '-m', '512M',
	       '-vga', 'none', '-kernel', kernel, '-initrd', initrd,
	       '-append', ' '.join(append),
	       '-display', 'none', '-monitor', 'none', '-no-reboot',
	       '-serial', 'file:' + console, '-serial', 'file:' + results,
	       '-device', 'pci-testdev',
	       '-qmp', qmp + ',server=on,wait=off']
	return launch(os.path.basename(base), cmd, console, qmp,
		      results=results)


def keep_logging(g: Guest, bandwidth: int = LOGGING_BANDWIDTH) -> None:
	"""Make KVM log @g's dirty pages: a migration to a sink at
	@bandwidth bytes/s, slow enough to last; migrate_cancel ends it."""
	g.q.cmd('migrate-set-parameters', **{'max-bandwidth': bandwidth})
	g.q.cmd('migrate', uri='exec:cat > /dev/null')


def leftovers(tag_prefix: str = 'dd-') -> List[str]:
	"""Files this process left in /dev/shm (Testbed.shm() names them)."""
	return [os.path.join('/dev/shm', f) for f in os.listdir('/dev/shm')
		if f.startswith(tag_prefix + str(os.getpid()))]
