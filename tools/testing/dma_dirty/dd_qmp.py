# SPDX-License-Identifier: GPL-2.0
"""A minimal QMP client (standard library only)."""

from __future__ import annotations

import json
import socket
import time
from typing import Any, Dict, List


class QMPError(Exception):
	pass


class QMP:
	"""One QMP connection over a unix socket; events are kept, not lost."""

	def __init__(self, path: str, timeout: float = 30.0):
		deadline = time.monotonic() + timeout
		while True:
			try:
				self.sock = socket.socket(socket.AF_UNIX,
							  socket.SOCK_STREAM)
				self.sock.connect(path)
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
			data = self.sock.recv(65536)
			if not data:
				raise QMPError('QEMU closed the QMP connection')
			self.buf += data
		line, self.buf = self.buf.split(b'\n', 1)
		return json.loads(line)

	def cmd(self, name: str, **args) -> Any:
		msg = {'execute': name}
		if args:
			msg['arguments'] = args
		self.sock.sendall(json.dumps(msg).encode() + b'\n')
		while True:
			reply = self._read()
			if 'event' in reply:
				self.events.append(reply)
				continue
			if 'error' in reply:
				raise QMPError('%s: %s' % (name,
							   reply['error'].get('desc')))
			return reply.get('return')

	def close(self) -> None:
		try:
			self.sock.close()
		except OSError:
			pass
