# SPDX-License-Identifier: GPL-2.0
"""A minimal QMP client (standard library only)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Dict, List


class QMPError(Exception):
	pass


def address(path: str) -> tuple:
	"""(family, address) of a socket path, or of "tcp:HOST:PORT"."""
	if path.startswith('tcp:'):
		host, port = path[len('tcp:'):].rsplit(':', 1)
		return socket.AF_INET, (host, int(port))
	return socket.AF_UNIX, path


class QMP:
	"""One QMP connection over a unix socket, or loopback TCP where the
	kernel has no CONFIG_UNIX (@path "tcp:HOST:PORT"); events are kept,
	not lost."""

	def __init__(self, path: str, timeout: float = 30.0):
		deadline = time.monotonic() + timeout
		family, addr = address(path)
		while True:
			try:
				self.sock = socket.socket(family,
							  socket.SOCK_STREAM)
				self.sock.connect(addr)
				break
			except (FileNotFoundError, ConnectionRefusedError):
				self.sock.close()
				if time.monotonic() > deadline:
					raise QMPError('no QMP socket at %s after %d s'
						       % (path, timeout))
				time.sleep(0.1)
		self.sock.settimeout(timeout)
		self.buf = b''
		self.events: List[Dict[str, Any]] = []
		greeting = self._read()
		if 'QMP' not in greeting:
			raise QMPError('not a QMP greeting: %r' % greeting)
		self.cmd('qmp_capabilities')

	def _read(self) -> Dict[str, Any]:
		while b'\n' not in self.buf:
			try:
				data = self.sock.recv(65536)
			except socket.timeout:
				raise
			except OSError as e:
				# QEMU went away (seen: it exits right after
				# accepting when it cannot start the guest).
				raise QMPError('QMP connection lost: %s' % e) from e
			if not data:
				raise QMPError('QEMU closed the QMP connection')
			self.buf += data
		line, self.buf = self.buf.split(b'\n', 1)
		msg: Dict[str, Any] = json.loads(line)
		return msg

	def cmd(self, name: str, **args: Any) -> Any:
		msg: Dict[str, Any] = {'execute': name}
		if args:
			msg['arguments'] = args
		try:
			self.sock.sendall(json.dumps(msg).encode() + b'\n')
		except OSError as e:
			raise QMPError('QMP connection lost: %s' % e) from e
		while True:
			reply = self._read()
			if 'event' in reply:
				self.events.append(reply)
				continue
			if 'error' in reply:
				raise QMPError('%s: %s' % (name,
							   reply['error'].get('desc')))
			return reply.get('return')

	def event(self, name: str, timeout: float,
		  **match: Any) -> Dict[str, Any]:
		"""Wait for event @name whose data has @match; it is consumed."""
		deadline = time.monotonic() + timeout
		while True:
			for e in self.events:
				if e['event'] == name and all(
						e.get('data', {}).get(k) == v
						for k, v in match.items()):
					self.events.remove(e)
					return e
			left = deadline - time.monotonic()
			if left <= 0:
				raise QMPError('no %s event within %d s'
					       % (name, timeout))
			old = self.sock.gettimeout()
			self.sock.settimeout(min(left, 1.0))
			try:
				self.events.append(self._read())
			except socket.timeout:
				pass
			finally:
				self.sock.settimeout(old)

	def close(self) -> None:
		try:
			self.sock.close()
		except OSError:
			pass
