// SPDX-License-Identifier: GPL-2.0
/*
 * dd_sim: a pass-through device, simulated by a host process.
 *
 * It maps the guest's RAM file and the device's register file (BAR 2 of an
 * ivshmem-plain device), takes the descriptors the guest driver posts, and
 * writes each buffer's payload straight into guest RAM, where QEMU's dirty
 * tracking cannot see it, as a device doing DMA through an IOMMU would.
 * It plays an IOMMU-translated device without an IOMMU model: it writes the
 * guest physical page each descriptor names (dd_desc.phys, which the driver
 * looked up in its IOMMU domain), not the IOVA (dd_desc.addr).  A segment
 * must not cross a page boundary, since pages contiguous in IOVA space are
 * not contiguous in physical memory.  Layout: dd_sim.h.
 *
 * usage: dd_sim --ram FILE --bar FILE [--poll-us N] [--rate PAGES]
 *        dd_sim --layout
 * --poll-us: how long to sleep when the ring is empty (default 20 µs; a
 * nested KVM guest needs 200, or the polling starves its vCPU).
 * --rate: write at most PAGES pages (4 KiB) per second, as a slower device
 * or a link shared with other traffic would (default 0: as fast as the
 * guest posts); make bench's scaling runs set it.
 * Runs until SIGTERM or SIGINT; prints what it did on exit.  --layout
 * prints the register offsets, so the runner takes them from dd_sim.h too.
 */

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stddef.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "dd_sim.h"

static volatile sig_atomic_t stop;

static void on_signal(int sig)
{
	(void)sig;
	stop = 1;
}

static void *map_file(const char *path, size_t *size)
{
	struct stat st;
	void *p;
	int fd;

	fd = open(path, O_RDWR);
	if (fd < 0) {
		fprintf(stderr, "dd_sim: cannot open %s: %s\n", path,
			strerror(errno));
		exit(2);
	}
	if (fstat(fd, &st) || st.st_size == 0) {
		fprintf(stderr, "dd_sim: %s is empty: is QEMU running with it?\n",
			path);
		exit(2);
	}
	p = mmap(NULL, st.st_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	if (p == MAP_FAILED) {
		fprintf(stderr, "dd_sim: cannot map %s: %s\n", path,
			strerror(errno));
		exit(2);
	}
	*size = st.st_size;
	return p;
}

static double now(void)
{
	struct timespec t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

/*
 * --rate: hold a write of @len bytes back until the budget allows it.
 * @next is when the next write may start; a device idle for a while gets
 * no credit beyond 10 ms for it, so it never bursts.
 */
static void pace(double *next, __u32 len, unsigned long rate)
{
	double t = now();

	if (*next < t - 0.01)
		*next = t - 0.01;
	if (*next > t) {
		double d = *next - t;
		struct timespec ts = { (time_t)d, (long)((d - (time_t)d) * 1e9) };

		nanosleep(&ts, NULL);
	}
	*next += (double)len / 4096 / rate;
}

static __u32 load(__u32 *p)
{
	return __atomic_load_n(p, __ATOMIC_ACQUIRE);
}

static void store(__u32 *p, __u32 v)
{
	__atomic_store_n(p, v, __ATOMIC_RELEASE);
}

#define FIELD(f) printf("%s %zu %zu\n", #f, offsetof(struct dd_regs, f), \
			sizeof(((struct dd_regs *)0)->f))

static const char *const class_names[DD_NR_CLASSES] = {
	[DD_CLASS_TRACKED] = "tracked",
	[DD_CLASS_LONG] = "long",
	[DD_CLASS_CONTROL] = "control",
};

/* The statistics of class @c: "tracked_verified 1234 8" and so on. */
static void print_class_layout(int c)
{
	static const struct {
		const char *name;
		size_t off;
	} f[] = {
		{ "received", offsetof(struct dd_class_stats, received) },
		{ "kept", offsetof(struct dd_class_stats, kept) },
		{ "verified", offsetof(struct dd_class_stats, verified) },
		{ "corrupted", offsetof(struct dd_class_stats, corrupted) },
		{ }
	};
	size_t i;

	for (i = 0; f[i].name; i++)
		printf("%s_%s %zu 8\n", class_names[c], f[i].name,
		       offsetof(struct dd_regs, cls) +
		       c * sizeof(struct dd_class_stats) + f[i].off);
}

static void print_layout(void)
{
	int c;

	FIELD(magic);
	FIELD(version);
	FIELD(ctrl);
	FIELD(state);
	FIELD(prod);
	FIELD(cons);
	FIELD(heartbeat);
	FIELD(received);
	FIELD(kept);
	FIELD(verified);
	FIELD(corrupted);
	FIELD(bytes);
	FIELD(rx_bad);
	FIELD(remapped);
	for (c = 0; c < DD_NR_CLASSES; c++)
		print_class_layout(c);
	printf("DD_SIM_MAGIC %u 4\n", DD_SIM_MAGIC);
	printf("DD_SIM_VERSION %u 4\n", DD_SIM_VERSION);
	printf("DD_POOL_TRACKED %u 4\nDD_POOL_LONG %u 4\nDD_POOL_CONTROL %u 4\n",
	       DD_POOL_TRACKED, DD_POOL_LONG, DD_POOL_CONTROL);
	printf("DD_CTRL_RUN %u 4\nDD_CTRL_QUIESCE %u 4\nDD_CTRL_VERIFY %u 4\n",
	       DD_CTRL_RUN, DD_CTRL_QUIESCE, DD_CTRL_VERIFY);
	printf("DD_STATE_READY %u 4\nDD_STATE_RUNNING %u 4\n",
	       DD_STATE_READY, DD_STATE_RUNNING);
	printf("DD_STATE_QUIESCED %u 4\nDD_STATE_VERIFIED %u 4\n",
	       DD_STATE_QUIESCED, DD_STATE_VERIFIED);
	printf("DD_STATE_ERROR %u 4\n", DD_STATE_ERROR);
	printf("DD_CTRL_UNPLUG %u 4\nDD_STATE_UNPLUG %u 4\nDD_STATE_REMOVED %u 4\n",
	       DD_CTRL_UNPLUG, DD_STATE_UNPLUG, DD_STATE_REMOVED);
	printf("size %zu 0\n", sizeof(struct dd_regs));
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "ram", required_argument, NULL, 'r' },
		{ "bar", required_argument, NULL, 'b' },
		{ "layout", no_argument, NULL, 'l' },
		{ "poll-us", required_argument, NULL, 'p' },
		{ "rate", required_argument, NULL, 'R' },
		{ }
	};
	const char *ram_path = NULL, *bar_path = NULL;
	unsigned long long done = 0, bytes = 0, bad = 0;
	struct timespec nap = { 0, 20000 };
	unsigned long rate = 0;
	double next = 0;
	char *end;
	size_t ram_size, bar_size;
	struct dd_regs *regs;
	unsigned char *ram;
	int c;

	while ((c = getopt_long(argc, argv, "", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			ram_path = optarg;
			break;
		case 'b':
			bar_path = optarg;
			break;
		case 'l':
			print_layout();
			return 0;
		case 'p':
			nap.tv_nsec = strtol(optarg, NULL, 0) * 1000;
			if (nap.tv_nsec <= 0 || nap.tv_nsec >= 1000000000) {
				fprintf(stderr, "dd_sim: bad --poll-us %s\n",
					optarg);
				return 2;
			}
			break;
		case 'R':
			rate = strtoul(optarg, &end, 0);
			if (*end || end == optarg || rate > 1000000) {
				fprintf(stderr, "dd_sim: bad --rate %s (pages per second, 0 to 1000000)\n",
					optarg);
				return 2;
			}
			break;
		default:
			return 2;
		}
	}
	if (!ram_path || !bar_path) {
		fprintf(stderr, "usage: dd_sim --ram FILE --bar FILE [--poll-us N] [--rate PAGES]\n");
		return 2;
	}
	ram = map_file(ram_path, &ram_size);
	regs = map_file(bar_path, &bar_size);
	if (bar_size < sizeof(*regs)) {
		fprintf(stderr, "dd_sim: %s is %zu bytes, registers need %zu\n",
			bar_path, bar_size, sizeof(*regs));
		return 2;
	}

	signal(SIGTERM, on_signal);
	signal(SIGINT, on_signal);
	regs->version = DD_SIM_VERSION;
	store(&regs->magic, DD_SIM_MAGIC);
	fprintf(stderr, "dd_sim: attached to %s (%zu MiB) and %s%s\n",
		ram_path, ram_size >> 20, bar_path,
		rate ? ", rate-limited" : "");

	while (!stop) {
		__u32 cons = load(&regs->cons);
		__u32 prod = load(&regs->prod);

		store(&regs->heartbeat, regs->heartbeat + 1);
		if (cons == prod) {
			nanosleep(&nap, NULL);
			continue;
		}
		for (; cons != prod && !stop; cons++) {
			struct dd_desc *d = &regs->ring[cons % DD_SIM_RING];
			__u64 phys = d->phys;
			__u32 len = d->len, i;
			__u32 *dst;

			/* Where the IOVA leads: the driver looked it up. */
			if (phys > ram_size || len > ram_size - phys ||
			    (phys & 4095) + len > 4096 ||
			    (phys | len | d->buf_off) & 3) {
				store(&d->status, DD_DESC_BAD);
				bad++;
				continue;
			}
			if (rate)
				pace(&next, len, rate);
			dst = (__u32 *)(ram + phys);
			for (i = 0; i < len / 4; i++)
				dst[i] = dd_payload(d->seq, d->buf_off / 4 + i);
			store(&d->status, DD_DESC_DONE);
			done++;
			bytes += len;
		}
		store(&regs->cons, cons);
	}
	fprintf(stderr, "dd_sim: %llu descriptors, %llu MiB written, %llu bad\n",
		done, bytes >> 20, bad);
	return 0;
}
