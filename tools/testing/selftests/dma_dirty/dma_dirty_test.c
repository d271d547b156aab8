// SPDX-License-Identifier: GPL-2.0
/*
 * dma_mark_dirty() through the real DMA API: every test maps a buffer with
 * lib/test_dma_dirty.ko, lets the "device" write it, gives it back to the
 * CPU, and checks that the pages reported dirty are exactly the expected
 * ones, no more (guard pages, TO_DEVICE, MMIO) and no fewer.
 *
 * Each test runs for the three DMA directions.  The expectation follows
 * the backend (none reported when it is "off", or while a paravirtual
 * backend's gate is closed: debugfs "reporting" is 0) and which mappings, or
 * scatterlist entries, were bounced through swiotlb (none reported: the copy
 * back is a CPU write).
 *
 * DMA_DIRTY_EXPECT_PATH=direct|iommu|swiotlb|iommu-swiotlb|off, when set,
 * says which DMA
 * path this boot must take; path_matches_boot checks it against the debugfs
 * counters.
 */

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "../kselftest_harness.h"
#include <lib/test_dma_dirty_uapi.h>

#define PS		4096u
#define DEVNODE		"/dev/test_dma_dirty"
#define DEBUGFS		"/sys/kernel/debug/dma_mark_dirty/"

static int read_file(const char *path, char *buf, size_t len)
{
	FILE *f = fopen(path, "r");

	if (!f)
		return -errno;
	if (!fgets(buf, len, f)) {
		fclose(f);
		return -EIO;
	}
	fclose(f);
	buf[strcspn(buf, "\n")] = '\0';
	return 0;
}

static int write_file(const char *path, const char *s)
{
	FILE *f = fopen(path, "w");
	int ret = 0;

	if (!f)
		return -errno;
	if (fputs(s, f) < 0)
		ret = -EIO;
	if (fclose(f))
		ret = -errno;
	return ret;
}

static long long counter(const char *name)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), DEBUGFS "%s", name);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return atoll(buf);
}

/* What unmaps and syncs for the CPU do, from debugfs backend and reporting */
enum mode {
	BACKEND_OFF,		/* nothing, syncs skipped as without the feature */
	BACKEND_GATED,		/* a backend is active, its gate closed */
	BACKEND_REPORTING,	/* a backend is active and reports */
};

FIXTURE(tdd) {
	int fd;
	enum mode mode;
};

FIXTURE_VARIANT(tdd) {
	__u32 dir;
};

FIXTURE_VARIANT_ADD(tdd, from_device) {
	.dir = TDD_DIR_FROM_DEVICE,
};

FIXTURE_VARIANT_ADD(tdd, bidirectional) {
	.dir = TDD_DIR_BIDIRECTIONAL,
};

FIXTURE_VARIANT_ADD(tdd, to_device) {
	.dir = TDD_DIR_TO_DEVICE,
};

FIXTURE_SETUP(tdd)
{
	char backend[32];
	long long reporting;

	self->fd = open(DEVNODE, O_RDWR);
	if (self->fd < 0)
		SKIP(return, DEVNODE " missing: test_dma_dirty is not bound");
	ASSERT_EQ(0, read_file(DEBUGFS "backend", backend, sizeof(backend)))
		TH_LOG("cannot read " DEBUGFS "backend: is debugfs mounted?");
	reporting = counter("reporting");
	ASSERT_LE(0, reporting);
	self->mode = !strcmp(backend, "off") ? BACKEND_OFF :
		     reporting ? BACKEND_REPORTING : BACKEND_GATED;
	/* A backend that is off has nothing to report. */
	if (self->mode == BACKEND_OFF)
		ASSERT_EQ(0, reporting);
	TH_LOG("backend %s, reporting %lld", backend, reporting);
}

FIXTURE_TEARDOWN(tdd)
{
	if (self->fd >= 0)
		close(self->fd);
}

/* Add @times reports to every page that [off, off + len) touches. */
static void span(__u32 *exp, __u32 off, __u32 len, __u32 times)
{
	__u32 p;

	for (p = off / PS; p <= (off + len - 1) / PS; p++)
		exp[TDD_DATA_PAGE + p] += times;
}

/*
 * What the hooks must report for @c after it ran: each unmap marks every
 * segment once, whether it syncs or not, and each sync for the CPU marks
 * what it synced.
 */
static void expected(const struct tdd_cmd *c, enum mode mode, __u32 *exp)
{
	__u32 i;

	memset(exp, 0, sizeof(__u32) * TDD_BUF_PAGES);
	if (mode != BACKEND_REPORTING || c->dir == TDD_DIR_TO_DEVICE ||
	    c->op == TDD_MAP_RESOURCE)
		return;
	if (c->op != TDD_MAP_SG && c->op != TDD_SYNC_SG && c->bounced)
		return;
	for (i = 0; i < c->nsegs; i++) {
		if (c->bounced_segs & (1U << i))
			continue;
		span(exp, c->seg[i].offset, c->seg[i].len, 1);
		if (c->op == TDD_SYNC_SG)
			span(exp, c->seg[i].offset, c->seg[i].len, c->reps);
	}
	if (c->op == TDD_SYNC_SINGLE ||
	    (c->op == TDD_NEED_SYNC && c->need_sync))
		span(exp, c->seg[0].offset + c->sync.offset, c->sync.len,
		     c->reps);
}

static int run_and_check(struct __test_metadata *_metadata, int fd,
			 enum mode mode, struct tdd_cmd *c)
{
	__u32 exp[TDD_BUF_PAGES];
	char got_s[128] = "", exp_s[128] = "";
	int i, bad = 0;

	if (ioctl(fd, TEST_DMA_DIRTY_RUN, c)) {
		TH_LOG("TEST_DMA_DIRTY_RUN: %s", strerror(errno));
		return -1;
	}
	expected(c, mode, exp);
	for (i = 0; i < TDD_BUF_PAGES; i++) {
		snprintf(got_s + strlen(got_s), sizeof(got_s) - strlen(got_s),
			 " %u", c->reported[i]);
		snprintf(exp_s + strlen(exp_s), sizeof(exp_s) - strlen(exp_s),
			 " %u", exp[i]);
		bad |= c->reported[i] != exp[i];
	}
	if (bad) {
		TH_LOG("reports per page (guard, data..., guard): got%s, expected%s",
		       got_s, exp_s);
		TH_LOG("path %s, bounced %u (segments 0x%x)",
		       c->path == TDD_PATH_IOMMU ? "iommu" : "direct", c->bounced,
		       c->bounced_segs);
	}
	EXPECT_EQ(0, bad);
	EXPECT_EQ(1, c->data_ok)
		TH_LOG("the CPU did not see what the device wrote");
	/*
	 * While a backend is active, dma_need_sync() says true whatever its
	 * gate: callers keep the answer for the life of the mapping.
	 */
	if (mode != BACKEND_OFF && c->op == TDD_NEED_SYNC)
		EXPECT_EQ(1, c->need_sync);
	return bad;
}

#define RUN(...) do {							\
	struct tdd_cmd c = { .dir = variant->dir, __VA_ARGS__ };	\
	if (!c.nsegs)							\
		c.nsegs = 1;						\
	ASSERT_LE(0, run_and_check(_metadata, self->fd,			\
				   self->mode, &c));			\
} while (0)

#define SEG(o, l)	{ .offset = (o), .len = (l) }

TEST_F(tdd, single_one_page)
{
	RUN(.op = TDD_MAP_SINGLE, .seg = { SEG(0, PS) });
}

TEST_F(tdd, single_odd_offset)
{
	RUN(.op = TDD_MAP_SINGLE, .seg = { SEG(123, 5000) });
}

TEST_F(tdd, single_multi_page)
{
	RUN(.op = TDD_MAP_SINGLE, .seg = { SEG(4000, 3 * PS) });
}

TEST_F(tdd, single_skip_cpu_sync)
{
	RUN(.op = TDD_MAP_SINGLE, .seg = { SEG(10, 2 * PS) },
	    .flags = TDD_UNMAP_SKIP_CPU_SYNC);
}

TEST_F(tdd, page_two_bytes_across_pages)
{
	RUN(.op = TDD_MAP_PAGE, .seg = { SEG(PS - 1, 2) });
}

TEST_F(tdd, page_skip_cpu_sync)
{
	RUN(.op = TDD_MAP_PAGE, .seg = { SEG(PS + 7, PS) },
	    .flags = TDD_UNMAP_SKIP_CPU_SYNC);
}

TEST_F(tdd, sg_odd_offsets)
{
	RUN(.op = TDD_MAP_SG, .nsegs = 3,
	    .seg = { SEG(100, 3000), SEG(PS + 17, 5000), SEG(4 * PS + 4000, 200) });
}

TEST_F(tdd, sg_multi_page_entries)
{
	RUN(.op = TDD_MAP_SG, .nsegs = 2,
	    .seg = { SEG(0, 2 * PS), SEG(3 * PS, 2 * PS + 1) });
}

TEST_F(tdd, sg_skip_cpu_sync)
{
	RUN(.op = TDD_MAP_SG, .nsegs = 2,
	    .seg = { SEG(50, PS), SEG(2 * PS + 50, PS) },
	    .flags = TDD_UNMAP_SKIP_CPU_SYNC);
}

/* dma_sync_single_range_for_cpu() of part of a mapping marks that part. */
TEST_F(tdd, sync_single_partial)
{
	RUN(.op = TDD_SYNC_SINGLE, .seg = { SEG(0, 4 * PS) },
	    .sync = SEG(PS + 10, 100), .reps = 1,
	    .flags = TDD_UNMAP_SKIP_CPU_SYNC);
}

/* A page_pool-style long-lived mapping synced again and again. */
TEST_F(tdd, sync_single_repeated)
{
	RUN(.op = TDD_SYNC_SINGLE, .seg = { SEG(0, 4 * PS) },
	    .sync = SEG(PS / 2, PS), .reps = 16);
}

TEST_F(tdd, sync_sg_repeated)
{
	RUN(.op = TDD_SYNC_SG, .nsegs = 2,
	    .seg = { SEG(0, PS), SEG(2 * PS + 300, PS) }, .reps = 8,
	    .flags = TDD_UNMAP_SKIP_CPU_SYNC);
}

/* The page_pool pattern: sync for the CPU only if dma_need_sync() says so. */
TEST_F(tdd, need_sync_repeated)
{
	RUN(.op = TDD_NEED_SYNC, .seg = { SEG(0, 4 * PS) },
	    .sync = SEG(PS / 2, PS), .reps = 8);
}

/* dma_map_resource() is for MMIO: its unmap never marks anything. */
TEST_F(tdd, resource_never_marked)
{
	RUN(.op = TDD_MAP_RESOURCE, .seg = { SEG(0, PS) });
}

TEST_F(tdd, bad_commands_rejected)
{
	struct tdd_cmd c = { .dir = variant->dir, .nsegs = 1,
			     .seg = { SEG(0, PS) } };

	c.op = TDD_NR_OPS;
	EXPECT_EQ(-1, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &c));
	EXPECT_EQ(EINVAL, errno);
	c.op = TDD_MAP_SINGLE;
	c.seg[0] = (struct tdd_seg)SEG(5 * PS, 2 * PS);
	EXPECT_EQ(-1, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &c));
	EXPECT_EQ(EINVAL, errno);
	c.seg[0] = (struct tdd_seg)SEG(0, 0);
	EXPECT_EQ(-1, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &c));
	EXPECT_EQ(EINVAL, errno);
}

static const char *const counter_names[] = {
	"calls_direct", "pages_direct", "calls_iommu", "pages_iommu",
	"calls_swiotlb", "pages_swiotlb", "calls_caller", "pages_caller",
	"pages_skipped",
};

#define NR_COUNTERS	ARRAY_SIZE(counter_names)

static int read_counters(long long *v)
{
	size_t i;

	for (i = 0; i < NR_COUNTERS; i++) {
		v[i] = counter(counter_names[i]);
		if (v[i] < 0)
			return -1;
	}
	return 0;
}

/*
 * Run @c and check that the debugfs counters moved by exactly @want
 * ({ name, delta } pairs ending with NULL), and every other one not at all.
 */
static void check_deltas(struct __test_metadata *_metadata, int fd,
			 struct tdd_cmd *c, const char *const *want_names,
			 const long long *want)
{
	long long before[NR_COUNTERS], after[NR_COUNTERS];
	size_t i, j;

	ASSERT_EQ(0, read_counters(before))
		TH_LOG("cannot read the counters in " DEBUGFS);
	ASSERT_EQ(0, ioctl(fd, TEST_DMA_DIRTY_RUN, c));
	ASSERT_EQ(0, read_counters(after));
	for (i = 0; i < NR_COUNTERS; i++) {
		long long exp = 0;

		for (j = 0; want_names[j]; j++)
			if (!strcmp(want_names[j], counter_names[i]))
				exp = want[j];
		EXPECT_EQ(exp, after[i] - before[i])
			TH_LOG("%s moved by %lld, expected %lld (path %s, bounced %u)",
			       counter_names[i], after[i] - before[i], exp,
			       c->path == TDD_PATH_IOMMU ? "iommu" : "direct",
			       c->bounced);
	}
}

/*
 * The boot configuration took the DMA path the test bed asked for: one page
 * mapped and unmapped moves exactly the counters of that path.
 */
TEST_F(tdd, path_matches_boot)
{
	const char *want = getenv("DMA_DIRTY_EXPECT_PATH");
	struct tdd_cmd c = { .op = TDD_MAP_SINGLE, .dir = variant->dir,
			     .nsegs = 1, .seg = { SEG(0, PS) } };
	const char *names[3] = { NULL, NULL, NULL };
	long long one[2] = { 1, 1 };
	const char *path = NULL;

	if (!want)
		SKIP(return, "DMA_DIRTY_EXPECT_PATH is not set");

	if (!strcmp(want, "direct") || !strcmp(want, "iommu") ||
	    !strcmp(want, "iommu-swiotlb"))
		path = !strcmp(want, "direct") ? "direct" : "iommu";
	else if (!strcmp(want, "swiotlb"))
		path = "swiotlb";
	else
		ASSERT_EQ(0, strcmp(want, "off"))
			TH_LOG("unknown DMA_DIRTY_EXPECT_PATH=%s", want);
	if (!strcmp(want, "off"))
		ASSERT_EQ(BACKEND_OFF, self->mode);

	/*
	 * Nothing moves for DMA_TO_DEVICE, with the backend off, or while its
	 * gate is closed.
	 */
	if (path && variant->dir != TDD_DIR_TO_DEVICE &&
	    self->mode == BACKEND_REPORTING) {
		static char calls[32], pages[32];

		snprintf(calls, sizeof(calls), "calls_%s", path);
		snprintf(pages, sizeof(pages), "pages_%s", path);
		names[0] = calls;
		names[1] = pages;
	}
	check_deltas(_metadata, self->fd, &c, names, one);
	EXPECT_EQ(!strcmp(want, "swiotlb"), c.bounced);
	EXPECT_EQ(strncmp(want, "iommu", 5) ? TDD_PATH_DIRECT : TDD_PATH_IOMMU,
		  c.path);

	if (!strcmp(want, "iommu-swiotlb")) {
		/* Page-aligned buffers are mapped in place; others bounce. */
		c.seg[0] = (struct tdd_seg)SEG(100, 200);
		if (variant->dir != TDD_DIR_TO_DEVICE &&
		    self->mode == BACKEND_REPORTING) {
			names[0] = "calls_swiotlb";
			names[1] = "pages_swiotlb";
		}
		check_deltas(_metadata, self->fd, &c, names, one);
		EXPECT_EQ(1, c.bounced);
	}
}

/*
 * Switching the backend at runtime takes effect at once, also for syncs:
 * with "off", dma_need_sync() is what it is without dma_mark_dirty() and
 * nothing is reported; with "touch", it is true and the syncs report.
 */
TEST_F(tdd, runtime_switch)
{
	const char *want = getenv("DMA_DIRTY_EXPECT_PATH");
	struct tdd_cmd c = { .op = TDD_NEED_SYNC, .dir = variant->dir,
			     .nsegs = 1, .seg = { SEG(0, 2 * PS) },
			     .sync = SEG(100, PS), .reps = 3 };
	char backend[32], now[32];
	int base;

	if (!want)
		SKIP(return, "DMA_DIRTY_EXPECT_PATH is not set");
	if (!strcmp(want, "iommu-swiotlb")) {
		/* dma_need_sync() turns true with the first bounce. */
		struct tdd_cmd b = { .op = TDD_MAP_SINGLE, .dir = variant->dir,
				     .nsegs = 1, .seg = { SEG(100, 200) } };

		ASSERT_EQ(0, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &b));
		ASSERT_EQ(1, b.bounced);
	}
	ASSERT_EQ(0, read_file(DEBUGFS "backend", backend, sizeof(backend)));

	ASSERT_EQ(0, write_file(DEBUGFS "backend", "off"));
	ASSERT_EQ(0, read_file(DEBUGFS "backend", now, sizeof(now)));
	EXPECT_STREQ("off", now);
	EXPECT_EQ(0, run_and_check(_metadata, self->fd, BACKEND_OFF, &c));
	/*
	 * What dma_need_sync() says for a coherent device on this path:
	 * true when buffers bounce, and on dma-iommu with DMA_API_DEBUG,
	 * which never skips syncs.
	 */
	base = !strcmp(want, "swiotlb") || !strcmp(want, "iommu-swiotlb") ||
	       (!strcmp(want, "iommu") && c.api_debug);
	EXPECT_EQ(base, c.need_sync);

	ASSERT_EQ(0, write_file(DEBUGFS "backend", "touch"));
	ASSERT_EQ(0, read_file(DEBUGFS "backend", now, sizeof(now)));
	EXPECT_STREQ("touch", now);
	EXPECT_EQ(0, run_and_check(_metadata, self->fd, BACKEND_REPORTING,
				   &c));
	EXPECT_EQ(1, c.need_sync);

	EXPECT_EQ(-EINVAL, write_file(DEBUGFS "backend", "bogus"));
	ASSERT_EQ(0, read_file(DEBUGFS "backend", now, sizeof(now)));
	EXPECT_STREQ("touch", now);

	ASSERT_EQ(0, write_file(DEBUGFS "backend", backend));
}

TEST_HARNESS_MAIN
