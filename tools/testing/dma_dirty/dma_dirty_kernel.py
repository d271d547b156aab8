# SPDX-License-Identifier: GPL-2.0
"""Build the test initramfs and boot the test kernel under QEMU."""

from __future__ import annotations

import glob
import os
import re
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

HERE = os.path.dirname(os.path.abspath(__file__))


class SetupError(Exception):
	"""Something the run needs is missing: a clear message, no traceback."""


@dataclass
class Paths:
	"""Where a build variant ('' or 'debug') keeps its outputs."""
	build: str
	variant: str = ''

	def _sub(self, name: str) -> str:
		return os.path.join(self.build, name + ('-' + self.variant
							 if self.variant else ''))

	@property
	def tree(self) -> str:
		return os.path.join(self.build, 'linux')

	@property
	def obj(self) -> str:
		return self._sub('obj')

	@property
	def kernel(self) -> str:
		return os.path.join(self.obj, 'arch', 'x86', 'boot', 'bzImage')

	@property
	def modules(self) -> str:
		return self._sub('modules')

	@property
	def kselftest(self) -> str:
		return self._sub('kselftest')

	@property
	def logs(self) -> str:
		return self._sub('logs')

	@property
	def sim(self) -> str:
		return self._sub('sim')

	@property
	def initramfs(self) -> str:
		return self._sub('initramfs') + '.cpio.gz'

	@property
	def initramfs_demo(self) -> str:
		return self._sub('initramfs-demo') + '.cpio.gz'


@dataclass
class BootConfig:
	"""One way of booting the test kernel, with what the guest must see."""
	name: str
	description: str
	append: List[str] = field(default_factory=list)
	qemu: List[str] = field(default_factory=list)
	cpu_flags: str = ''
	expect: Dict[str, str] = field(default_factory=dict)
	kunit: bool = False
	# the kselftest collections it runs (run_kselftest.sh -c)
	kselftests: Tuple[str, ...] = ('dma_dirty',)


# Every configuration runs the boot checks and the kselftests; KUnit runs
# once, in "plain".  "auto", the default, picks "off" unless a paravirtual
# backend exists (none yet); "touch" is only ever chosen explicitly.
BOOT_CONFIGS = [
	BootConfig('plain', 'dma-direct, dma_mark_dirty=touch',
		   append=['dma_mark_dirty=touch'],
		   expect={'backend': 'touch', 'path': 'direct'}, kunit=True),
	BootConfig('default', 'no dma_mark_dirty=, under a hypervisor: auto picks off',
		   expect={'backend': 'off', 'path': 'off'}),
	BootConfig('viommu', 'dma-iommu behind a QEMU intel-iommu',
		   append=['dma_mark_dirty=touch', 'intel_iommu=on',
			   'iommu.passthrough=0'],
		   qemu=['-device', 'intel-iommu,intremap=off'],
		   expect={'backend': 'touch', 'path': 'iommu'}),
	BootConfig('viommu-bounce',
		   'dma-iommu, untrusted device: unaligned buffers bounce',
		   append=['dma_mark_dirty=touch', 'intel_iommu=on',
			   'iommu.passthrough=0', 'iommu=soft',
			   'test_dma_dirty.untrusted=1'],
		   qemu=['-device', 'intel-iommu,intremap=off'],
		   expect={'backend': 'touch', 'path': 'iommu-swiotlb'}),
	BootConfig('swiotlb', 'dma-direct with every mapping bounced',
		   append=['dma_mark_dirty=touch', 'swiotlb=force'],
		   expect={'backend': 'touch', 'path': 'swiotlb'}),
	BootConfig('baremetal', 'no hypervisor CPUID bit, bad boot parameter',
		   append=['dma_mark_dirty=bogus'], cpu_flags=',-hypervisor',
		   expect={'backend': 'off', 'path': 'off',
			   'dmesg': 'dma_mark_dirty=bogus:+no+such+backend'}),
	# The test kernel as a KVM host: -cpu max under TCG has SVM with
	# nested paging, so kvm_amd loads and the KVM selftests run nested.
	BootConfig('kvm-host', 'the test kernel as a KVM host (kvm_amd, nested under TCG): the KVM selftests',
		   append=['tsc=unstable'], kselftests=('kvm',)),
]


def boot_checks(cfg: BootConfig) -> List[str]:
	"""The names of the checks guest/boot_test.sh must report for @cfg."""
	names = ['kernel_release', 'config_dma_mark_dirty', 'debugfs_dir']
	if 'backend' in cfg.expect:
		names += ['backend', 'backend_write', 'backend_restore']
	if 'dmesg' in cfg.expect:
		names.append('dmesg_says:' + cfg.expect['dmesg'])
	return names


# The kselftest programs a boot may run, as the runner names them, with the
# binary (under the install folder) that tells how many tests each runs and
# how: 'harness', a kselftest_harness binary ("-l" on stderr); 'list', one
# test name per line of "-l" on stdout; 'whole', a program with no subtests.
KSELFTESTS = {
	'dma_dirty:test_dma_dirty.sh': ('dma_dirty/dma_dirty_test', 'harness'),
	'kvm:dma_dirty_test': ('kvm/dma_dirty_test', 'list'),
	'kvm:kvm_pv_test': ('kvm/kvm_pv_test', 'whole'),
}

# The KUnit suites are read from these sources; this one must be among them.
KUNIT_SOURCES = ('kernel/dma/*kunit*.c',)
KUNIT_SUITE = 'dma_mark_dirty'
# KUnit cases that run once per parameter (KUNIT_CASE_PARAM): KTAP prints
# no plan for the parameters, so their number is stated here, from the
# parameter arrays of kernel/dma/dirty_kunit.c, and judged exactly.  A
# parameterised case missing here fails the boot (and a unit test).
KUNIT_PARAMS = {
	# span_cases[]: 13 on a 64-bit phys_addr_t (x86_64)
	'dma_mark_dirty.dma_dirty_test_span': 13,
	# hook_cases[]: 6 operations x 3 directions x SKIP_CPU_SYNC or not
	'dma_mark_dirty.dma_dirty_test_hooks': 36,
}


@dataclass
class Expect:
	"""What one boot must report; fewer results fail it."""
	boot: List[str]
	# program (runner's name) -> its number of tests
	kselftest: Dict[str, int] = field(default_factory=dict)
	# KUnit suite -> least number of cases its plan may announce
	kunit: Dict[str, int] = field(default_factory=dict)
	# "suite.case" -> its number of parameters (KUNIT_PARAMS)
	kunit_params: Dict[str, int] = field(default_factory=dict)


def harness_test_count(listing: str) -> int:
	"""The number of tests a kselftest_harness binary runs, from its "-l".

	Each fixture runs each of its tests once per variant (once if it has
	none).  The listing is a table: "FIXTURE VARIANT TEST" in columns of
	20 and 25 characters, the fixture named on its first row only,
	fixtures separated by a line of dashes.
	"""
	total = 0
	variants = tests = 0
	seen_header = False
	for line in listing.splitlines() + ['-' * 10]:
		if line.startswith('# FIXTURE'):
			seen_header = True
			continue
		if not seen_header or not line.strip():
			continue
		if set(line.strip()) == {'-'}:
			total += max(variants, 1) * tests
			variants = tests = 0
			continue
		if len(line) > 46 and (line[20] != ' ' or line[46] != ' ') or \
				len(line) > 20 and line[20] != ' ':
			raise SetupError('cannot read this "-l" line (a name longer '
					 'than its column?): %r' % line)
		if line[21:46].strip():
			variants += 1
		if line[47:].strip():
			tests += 1
	if not seen_header:
		raise SetupError('no test list in the "-l" output: %r'
				 % listing[:200])
	return total


def kselftest_counts(paths: Paths) -> Dict[str, int]:
	"""How many tests each kselftest program runs, from the built binary."""
	install = os.path.join(paths.kselftest, 'install')
	listed = os.path.join(install, 'kselftest-list.txt')
	if not os.path.exists(listed):
		raise SetupError('%s is missing: run "make kselftests"' % listed)
	with open(listed) as f:
		programs = sorted(l.strip() for l in f if l.strip())
	if programs != sorted(KSELFTESTS):
		raise SetupError('%s lists %s; the harness knows %s' % (
			listed, ', '.join(programs) or 'nothing',
			', '.join(sorted(KSELFTESTS))))
	counts = {}
	for prog, (binary, kind) in KSELFTESTS.items():
		path = os.path.join(install, binary)
		if not os.access(path, os.X_OK):
			raise SetupError('%s is missing: run "make kselftests"'
					 % path)
		if kind == 'whole':
			counts[prog] = 0
			continue
		# The binary is static: it runs on the host.  "-l" lists the
		# tests: a kselftest_harness binary on stderr, exiting with
		# KSFT_SKIP (4); the others on stdout, one name per line
		# (the KVM library prints its random seed first).
		out = subprocess.run([path, '-l'], capture_output=True,
				     text=True, timeout=30)
		if kind == 'harness':
			n = harness_test_count(out.stderr)
		else:
			n = len(re.findall(r'^\w+$', out.stdout, re.M))
		if n <= 0:
			raise SetupError('%s -l lists no test' % path)
		counts[prog] = n
	return counts


def kunit_suites(source: str) -> Dict[str, int]:
	"""Suite name -> number of KUNIT_CASE entries, from a C source."""
	arrays: Dict[str, int] = {}
	for m in re.finditer(r'struct\s+kunit_case\s+(\w+)\s*\[\s*\]\s*=\s*'
			     r'\{(.*?)\};', source, re.S):
		arrays[m.group(1)] = len(re.findall(r'\bKUNIT_CASE\w*\s*\(',
						   m.group(2)))
	suites = {}
	for m in re.finditer(r'struct\s+kunit_suite\s+\w+\s*=\s*\{(.*?)\};',
			     source, re.S):
		name = re.search(r'\.name\s*=\s*"([^"]+)"', m.group(1))
		cases = re.search(r'\.test_cases\s*=\s*(\w+)', m.group(1))
		if name and cases and cases.group(1) in arrays:
			suites[name.group(1)] = arrays[cases.group(1)]
	return suites


def kunit_counts(paths: Paths) -> Dict[str, int]:
	"""The series' KUnit suites and their number of cases, from the tree."""
	suites: Dict[str, int] = {}
	for pattern in KUNIT_SOURCES:
		for path in sorted(glob.glob(os.path.join(paths.tree, pattern))):
			with open(path, errors='replace') as f:
				suites.update(kunit_suites(f.read()))
	if not suites.get(KUNIT_SUITE):
		raise SetupError('no KUnit suite "%s" with cases in %s' % (
			KUNIT_SUITE, ', '.join(os.path.join(paths.tree, p)
					      for p in KUNIT_SOURCES)))
	return suites


def expectations(cfg: BootConfig, kselftests: Dict[str, int],
		 kunit: Dict[str, int]) -> Expect:
	"""What boot @cfg must report, given the built tests."""
	return Expect(boot_checks(cfg),
		      {p: n for p, n in kselftests.items()
		       if p.split(':')[0] in cfg.kselftests},
		      dict(kunit) if cfg.kunit else {},
		      dict(KUNIT_PARAMS) if cfg.kunit else {})


# Kernel reports that fail a run even when every test in it passed, on
# every console the test bed reads: the test boots', the nested L1's, the
# L2 guests'.  DMA_API_DEBUG reports are WARNINGs; a soft lockup is a
# "BUG:"; RCU stalls say "detected stall" (or "self-detected stall"),
# hung tasks "blocked for more than".  None is ever an environment
# failure: a guest that stalls or crashes is the kernel under test's.
SPLATS = ('WARNING:', 'BUG:', 'KASAN:', 'KFENCE:', 'UBSAN:', 'Oops:',
	  'Kernel panic', 'general protection fault',
	  'possible circular locking dependency', 'inconsistent lock state',
	  'possible recursive locking', 'suspicious RCU usage',
	  'sleeping function called from invalid context',
	  'detected stall', 'blocked for more than', 'hard LOCKUP')


def console_splat(lines: List[str]) -> str:
	"""The first line of the console that is a kernel splat, or ''."""
	for line in lines:
		for s in SPLATS:
			if s in line:
				return line.strip()
	return ''


def missing_test_pieces(paths: Paths) -> List[str]:
	"""What the test boots need in the initramfs and the build lacks."""
	missing = []
	mods = glob.glob(os.path.join(paths.modules, 'lib', 'modules', '*'))
	if len(mods) != 1:
		missing.append('%s/lib/modules/RELEASE (make kernel)' % paths.modules)
	else:
		for f in ('modules.dep', 'kernel/lib/test_dma_dirty.ko'):
			if not os.path.exists(os.path.join(mods[0], f)):
				missing.append('%s/%s (make kernel)' % (mods[0], f))
	install = os.path.join(paths.kselftest, 'install')
	for f in ['run_kselftest.sh', 'kselftest-list.txt',
		  *[p.replace(':', '/', 1) for p in KSELFTESTS],
		  *[b for b, _ in KSELFTESTS.values()]]:
		if not os.path.exists(os.path.join(install, f)):
			missing.append('%s/%s (make kselftests)' % (install, f))
	return missing


def build_initramfs(paths: Paths, out: str, extra: Sequence[str] = (),
		    tests: bool = False) -> None:
	"""Busybox, the guest scripts, the modules and the kselftests.

	@extra files go to /dma-dirty/ in the guest.  With @tests, the modules
	and kselftests the test boots run must all be there.
	"""
	if tests:
		missing = missing_test_pieces(paths)
		if missing:
			raise SetupError('the test initramfs would lack: ' +
					 ', '.join(missing))
	busybox = shutil.which('busybox') or '/bin/busybox'
	if not os.path.exists(busybox):
		raise SetupError('busybox is missing: run "make deps" '
				 '(package busybox-static)')
	if 'statically linked' not in subprocess.run(
			['file', '-L', busybox], capture_output=True,
			text=True).stdout and shutil.which('file'):
		raise SetupError('%s is not static: install busybox-static' %
				 busybox)
	root = out + '.d'
	shutil.rmtree(root, ignore_errors=True)
	os.makedirs(os.path.join(root, 'bin'))
	shutil.copy(busybox, os.path.join(root, 'bin', 'busybox'))
	os.symlink('busybox', os.path.join(root, 'bin', 'sh'))
	os.makedirs(os.path.join(root, 'dma-dirty'))
	shutil.copy(os.path.join(HERE, 'guest', 'init'), root)
	for f in [os.path.join(HERE, 'guest', 'boot_test.sh'),
		  os.path.join(HERE, 'guest', 'counters.sh'), *extra]:
		if not os.path.exists(f):
			raise SetupError('%s is missing' % f)
		shutil.copy(f, os.path.join(root, 'dma-dirty'))
	mods = os.path.join(paths.modules, 'lib')
	if os.path.isdir(mods):
		shutil.copytree(mods, os.path.join(root, 'lib'), symlinks=True)
	ksft = os.path.join(paths.kselftest, 'install')
	if os.path.isdir(ksft):
		shutil.copytree(ksft, os.path.join(root, 'kselftest'),
				symlinks=True)
	with open(out, 'wb') as gz_out:
		find = subprocess.Popen(['find', '.'], cwd=root,
					stdout=subprocess.PIPE)
		assert find.stdout is not None
		cpio = subprocess.Popen(['cpio', '--quiet', '-o', '-H', 'newc',
					 '-R', '0:0'], cwd=root,
					stdin=find.stdout, stdout=subprocess.PIPE)
		assert cpio.stdout is not None
		gz = subprocess.Popen(['gzip', '-1'], stdin=cpio.stdout,
				      stdout=gz_out)
		find.stdout.close()
		cpio.stdout.close()
		if gz.wait() or cpio.wait() or find.wait():
			raise SetupError('building %s failed' % out)
	shutil.rmtree(root)


def qemu_version() -> Optional[tuple]:
	try:
		out = subprocess.run(['qemu-system-x86_64', '--version'],
				     capture_output=True, text=True).stdout
	except FileNotFoundError:
		return None
	words = out.split()
	if len(words) < 4:
		return None
	return tuple(int(x) for x in words[3].split('.')[:2])


@dataclass
class BootOutcome:
	config: BootConfig
	results_log: str
	console_log: str
	seconds: float
	problem: str = ''	# '' when the guest powered off by itself
	console_tail: List[str] = field(default_factory=list)


def boot(cfg: BootConfig, kernel: str, initrd: str, release: str,
	 logdir: str, accel: str, timeout: int) -> BootOutcome:
	"""Boots once; returns the logs and whether the guest ended cleanly."""
	os.makedirs(logdir, exist_ok=True)
	results = os.path.join(logdir, cfg.name + '.results.log')
	console = os.path.join(logdir, cfg.name + '.console.log')
	for p in (results, console):
		if os.path.exists(p):
			os.unlink(p)
	append = ['console=ttyS0', 'panic=-1', 'oops=panic',
		  'panic_on_warn=0', 'printk.time=1',
		  'ddtest.release=' + release]
	if not cfg.kunit:
		append.append('kunit.enable=0')
	append += ['ddtest.%s=%s' % kv for kv in sorted(cfg.expect.items())]
	append.append('ddtest.ksft=' + ','.join(cfg.kselftests))
	append += cfg.append
	if accel == 'kvm':
		cpu = ['-accel', 'kvm', '-cpu', 'host' + cfg.cpu_flags]
	else:
		cpu = ['-accel', 'tcg', '-cpu', 'max' + cfg.cpu_flags]
	cmd = ['qemu-system-x86_64', '-M', 'q35', *cpu, '-m', '1G', '-smp', '2',
	       '-kernel', kernel, '-initrd', initrd,
	       '-append', ' '.join(append),
	       '-display', 'none', '-monitor', 'none', '-no-reboot',
	       '-serial', 'file:' + console, '-serial', 'file:' + results,
	       '-device', 'pci-testdev,id=dmatest', *cfg.qemu]
	start = time.monotonic()
	proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL,
				stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
	problem = ''
	try:
		out, _ = proc.communicate(timeout=timeout)
		if proc.returncode:
			problem = 'QEMU exited with status %d: %s' % (
				proc.returncode, out.decode(errors='replace').strip())
	except subprocess.TimeoutExpired:
		proc.kill()
		proc.communicate()
		problem = 'guest hung: no power-off after %d s' % timeout
	elapsed = time.monotonic() - start
	tail: List[str] = []
	if os.path.exists(console):
		with open(console, errors='replace') as f:
			lines = f.read().splitlines()
		tail = lines[-25:]
		text = '\n'.join(lines)
		if 'Kernel panic' in text:
			problem = 'guest kernel panicked'
		elif not problem:
			splat = console_splat(lines)
			if splat:
				problem = 'guest kernel reported: ' + splat
	elif not problem:
		problem = 'no console output'
	return BootOutcome(cfg, results, console, elapsed, problem, tail)
