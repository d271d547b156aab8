# SPDX-License-Identifier: GPL-2.0
"""The nested L1: the test kernel booted under TCG as a KVM host, running
one job of this test bed with its guests under KVM.

make test, make demo and make bench all come through run_l1().  It builds
the L1's initramfs (busybox and guest/l1-init, nothing else), shares this
machine's / read-only and the build's log directory read-write over 9p,
and writes the job: "python3 MODULE ARGS --result FILE", run by l1-init
in a chroot of the shared / (this machine's python3, QEMU and dd_sim,
unchanged).  MODULE is the command line that owns the job (dd_migrate.py
run, dd_bench.py l1-job, dma_dirty.py l1-job); inside the L1 it hands its
result back with write_result(), whole or not at all.

What comes back is judged here: a result, the job's own TestFailure or
EnvironmentFailure, or, when no result comes, an EnvironmentFailure (the
L1 did not start the job, stalled, or ended without a result) unless the
job crashed with a traceback, which is a TestFailure.  The L1's console
is scanned for splats (dma_dirty_kernel.SPLATS, stalls included) in every
case: one is a TestFailure, whatever the job reported.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from typing import Any, Callable, List, Optional

import dma_dirty_kernel
from dd_errors import EnvironmentFailure, TestFailure
from dd_vm import tail

HERE = os.path.dirname(os.path.abspath(__file__))
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
L1_TIMEOUT = 1500	# seconds for a whole nested run, unless told
L1_QUIET = 300		# seconds without a line from the runner: stalled

Log = Callable[[str], None]


def write_json(path: str, out: dict) -> None:
	"""Write @out to @path whole or not at all: run_l1() on the host
	reads it once the L1 powers off."""
	with open(path + '.tmp', 'w') as f:
		json.dump(out, f, indent=1)
	os.replace(path + '.tmp', path)


def write_result(path: str, key: str, value: Any = None,
		 error: Optional[BaseException] = None) -> None:
	"""Inside the L1: what the job hands back, {@key: @value} or the
	error and whether it was the environment's."""
	if error is None:
		write_json(path, {key: value})
	else:
		write_json(path, {
			'error': str(error) if isinstance(error, TestFailure)
			else '%s: %s' % (type(error).__name__, error),
			'environment': isinstance(error, EnvironmentFailure)})


def l1_job(result: str, key: str, run: Callable[[], Any]) -> int:
	"""Inside the L1: {@key: @run()}, or the error it raised, into
	@result for run_l1() on the host; the exit status of the job."""
	try:
		value = run()
	except Exception as e:  # noqa: BLE001 - handed to the host
		write_result(result, key, error=e)
		print('%s: %s' % (key, e))
		return 1
	write_result(result, key, value)
	return 0


def job_line(module: str, args: str, paths: dma_dirty_kernel.Paths,
	     result: str) -> str:
	"""The shell line l1-init runs in the chroot."""
	return ('cd %s && exec python3 -u %s %s --build %s --variant "%s" --result %s\n'
		% (HERE, os.path.join(HERE, module), args,
		   os.path.abspath(paths.build), paths.variant, result))


def l1_cmd(paths: dma_dirty_kernel.Paths, initrd: str, job: str,
	   logs: str, console: str, runner: str) -> List[str]:
	return ['qemu-system-x86_64', *L1_QEMU,
		'-kernel', paths.kernel, '-initrd', initrd,
		'-append', ' '.join(L1_APPEND + ['ddl1.job=' + job,
						'ddl1.logs=' + logs]),
		'-virtfs', 'local,path=/,mount_tag=hostroot,security_model=none,readonly=on',
		'-virtfs', 'local,path=%s,mount_tag=ddlogs,security_model=none' % logs,
		'-display', 'none', '-monitor', 'none', '-no-reboot',
		'-serial', 'file:' + console, '-serial', 'file:' + runner]


def follow(proc: subprocess.Popen, runner: str, console: str,
	   log: Log, timeout: int) -> List[str]:
	"""Copy the runner's lines to @log while the L1 runs; an L1 quiet
	for L1_QUIET s, or running past @timeout s, is stalled."""
	t0 = time.monotonic()
	seen, quiet_since = 0, t0
	lines: List[str] = []
	while proc.poll() is None:
		time.sleep(1)
		with contextlib.suppress(OSError), \
				open(runner, errors='replace') as f:
			lines = f.read().splitlines()
		if len(lines) > seen:
			for line in lines[seen:]:
				log(line if line.startswith('#') else
				    '#   L1| ' + line)
			seen, quiet_since = len(lines), time.monotonic()
		now = time.monotonic()
		if now - quiet_since > L1_QUIET or now - t0 > timeout:
			raise EnvironmentFailure('stall: the L1 printed nothing for %d s (%d s in); L1 console:\n%s'
						 % (now - quiet_since, now - t0,
						    tail(console)))
	return lines


def run_l1(paths: dma_dirty_kernel.Paths, name: str, module: str,
	   args: str, what: str, log: Log = print,
	   timeout: int = L1_TIMEOUT) -> dict:
	"""Boot the test kernel under TCG as an L1 KVM host, with the host's /
	over 9p, and run "@module @args --result FILE" in it.  Returns the
	result it wrote; raises what it reported.  Logs: @name.l1.console.log
	(the L1 kernel), @name.l1.runner.log (the job's output), and what the
	job writes, in the build's log directory, which the L1 mounts
	read-write."""
	logs = os.path.abspath(paths.logs)
	os.makedirs(logs, exist_ok=True)
	initrd = os.path.join(os.path.abspath(paths.build),
			      'initramfs-l1%s.cpio.gz' % (
				      '-' + paths.variant if paths.variant else ''))
	dma_dirty_kernel.build_initramfs(
		paths, initrd, [os.path.join(HERE, 'guest', 'l1-init')])
	base = os.path.join(logs, name)
	result = base + '.result.json'
	job = base + '.l1.job'
	console = base + '.l1.console.log'
	runner = base + '.l1.runner.log'
	for f in (result, console, runner):
		with contextlib.suppress(FileNotFoundError):
			os.unlink(f)
	with open(job, 'w') as job_file:
		job_file.write(job_line(module, args, paths, result))
	log('# %s; logs %s.l1.*.log' % (what, base))
	t0 = time.monotonic()
	with open(console + '.qemu', 'w') as err:
		proc = subprocess.Popen(l1_cmd(paths, initrd, job, logs,
					       console, runner),
					stdin=subprocess.DEVNULL,
					stdout=subprocess.DEVNULL, stderr=err)
	try:
		lines = follow(proc, runner, console, log, timeout)
	except EnvironmentFailure as e:
		raise l1_failure(console, str(e)) from e
	finally:
		if proc.poll() is None:
			proc.kill()
			proc.wait()
	log('# %s: L1 powered off after %.0f s' % (name,
						     time.monotonic() - t0))
	try:
		out = judge_l1(result, lines, proc.returncode, console, runner)
	except EnvironmentFailure as e:
		raise l1_failure(console, str(e)) from e
	# The KVM host side of the series runs in the L1: whatever the job
	# found, a splat there fails the run.
	failure = l1_failure(console, '')
	if not isinstance(failure, EnvironmentFailure):
		raise failure
	return out


def l1_failure(console: str, why: str) -> TestFailure:
	"""An L1 that stalled or gave no result is an EnvironmentFailure
	(@why), unless its kernel reported a splat (a stall included): the
	test kernel is the L1's, so that is a TestFailure."""
	try:
		with open(console, errors='replace') as f:
			splat = dma_dirty_kernel.console_splat(f.read().splitlines())
	except OSError:
		splat = ''
	if splat:
		return TestFailure('L1 kernel reported: %s (console: %s)%s'
				   % (splat, console,
				      '; ' + why.split('\n')[0] if why else ''))
	return EnvironmentFailure(why)


def judge_l1(result: str, lines: List[str], status: int, console: str,
	     runner: str) -> dict:
	"""The job's result, or what its absence means."""
	try:
		with open(result) as f:
			out: dict = json.load(f)
	except (OSError, ValueError):
		if any(line.startswith('Traceback') for line in lines):
			raise TestFailure('the runner in the L1 crashed; runner log:\n%s'
					  % tail(runner, 25))
		if not lines:
			raise EnvironmentFailure('the L1 did not start the runner (QEMU status %d; stderr %s); L1 console:\n%s'
						 % (status,
						    tail(console + '.qemu', 5),
						    tail(console)))
		raise EnvironmentFailure('the L1 ended without a result; runner log:\n%s\nL1 console:\n%s'
					 % (tail(runner), tail(console)))
	if 'error' in out:
		raise (EnvironmentFailure if out.get('environment') else
		       TestFailure)(out['error'])
	return out
