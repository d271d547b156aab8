# SPDX-License-Identifier: GPL-2.0
"""The simulated pass-through device: the dd_sim process and its registers.

dd_sim (sim/dd_sim.c) maps a guest's RAM file and its BAR file (the
ivshmem-plain BAR 2), reads the descriptors the guest driver posts there
and writes each buffer's payload straight into guest RAM, where QEMU's
dirty tracking does not see it.  The register layout is dd_sim's own
(sim/dd_sim.h), read from "dd_sim --layout", never restated here.
"""

from __future__ import annotations

import mmap
import os
import struct
import subprocess
from typing import IO, Dict, Optional, Tuple

from dd_errors import TestFailure

BAR_BYTES = 1 << 20
# The buffer classes of dd_sim.h: register prefix, name in the reports.
CLASSES = (('tracked', 'tracked'), ('long', 'long-lived'),
	   ('control', 'control'))

Layout = Dict[str, Tuple[int, int]]


def read_layout(sim: str) -> Layout:
	"""Register name -> (offset, size); constant name -> (value, 0)."""
	out = subprocess.run([sim, '--layout'], capture_output=True, text=True,
			     check=True).stdout
	layout = {}
	for line in out.splitlines():
		name, a, b = line.split()
		layout[name] = (int(a), int(b))
	return layout


class Regs:
	"""The device registers in a BAR file, at offsets dd_sim reports."""

	def __init__(self, path: str, layout: Layout):
		self.layout = layout
		fd = os.open(path, os.O_RDWR)
		try:
			self.map = mmap.mmap(fd, BAR_BYTES)
		finally:
			os.close(fd)

	def get(self, name: str) -> int:
		off, size = self.layout[name]
		value: int = struct.unpack_from('<I' if size == 4 else '<Q',
						self.map, off)[0]
		return value

	def set(self, name: str, value: int) -> None:
		off, size = self.layout[name]
		struct.pack_into('<I' if size == 4 else '<Q', self.map, off,
				 value)

	def close(self) -> None:
		self.map.close()


class Sim:
	"""One dd_sim process at a time, serving one guest; its output is
	appended to @log_path."""

	def __init__(self, binary: str, log_path: str, poll_us: int,
		     rate: int):
		self.binary = binary
		self.log_path = log_path
		self.poll_us = poll_us
		self.rate = rate
		self.proc: Optional[subprocess.Popen] = None
		self.log: Optional[IO[str]] = None

	def start(self, ram: str, bar: str) -> None:
		"""Serve the guest whose RAM and BAR files these are."""
		self.stop()
		self.log = open(self.log_path, 'a')
		self.proc = subprocess.Popen([self.binary, '--ram', ram,
					      '--bar', bar, '--poll-us',
					      str(self.poll_us),
					      '--rate', str(self.rate)],
					     stdin=subprocess.DEVNULL,
					     stdout=self.log, stderr=self.log)

	def stop(self) -> None:
		if self.proc and self.proc.poll() is None:
			self.proc.terminate()
			try:
				self.proc.wait(5)
			except subprocess.TimeoutExpired:
				self.proc.kill()
				self.proc.wait()
		self.proc = None
		if self.log:
			self.log.close()
			self.log = None

	def check(self) -> None:
		"""A device that died is a test failure, with its log."""
		if self.proc and self.proc.poll() is not None:
			raise TestFailure('dd_sim exited with status %d (log: %s)'
					  % (self.proc.returncode,
					     self.log_path))
