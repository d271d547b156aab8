// SPDX-License-Identifier: GPL-2.0
/*
 * dma_mark_dirty() through the real DMA API: every test maps a buffer with
 * lib/test_dma_dirty.ko, lets the "device" write it, gives it back to the
 * CPU, and checks that the pages reported dirty are exactly the expected
 * ones, no more (guard pages, TO_DEVICE, MMIO) and no fewer.
 *
 * Each test runs for the three DMA directions.  The expectation follows
 * the backend (none reported when it is "off") and which mappings, or
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

static long long counter(const char *name)
{
	char path[128], buf[32];

	snprintf(path, sizeof(path), DEBUGFS "%s", name);
	if (read_file(path, buf, sizeof(buf)))
		return -1;
	return atoll(buf);
}

FIXTURE(tdd) {
	int fd;
	int tracking;		/* the backend is not "off" */
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

	self->fd = open(DEVNODE, O_RDWR);
	if (self->fd < 0)
		SKIP(return, DEVNODE " missing: test_dma_dirty is not bound");
	ASSERT_EQ(0, read_file(DEBUGFS "backend", backend, sizeof(backend)))
		TH_LOG("cannot read " DEBUGFS "backend: is debugfs mounted?");
	self->tracking = strcmp(backend, "off") != 0;
	TH_LOG("backend %s", backend);
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
static void expected(const struct tdd_cmd *c, int tracking, __u32 *exp)
{
	__u32 i;

	memset(exp, 0, sizeof(__u32) * TDD_BUF_PAGES);
	if (!tracking || c->dir == TDD_DIR_TO_DEVICE ||
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
	if (c->op == TDD_SYNC_SINGLE)
		span(exp, c->seg[0].offset + c->sync.offset, c->sync.len,
		     c->reps);
}

static int run_and_check(struct __test_metadata *_metadata, int fd,
			 int tracking, struct tdd_cmd *c)
{
	__u32 exp[TDD_BUF_PAGES];
	char got_s[128] = "", exp_s[128] = "";
	int i, bad = 0;

	if (ioctl(fd, TEST_DMA_DIRTY_RUN, c)) {
		TH_LOG("TEST_DMA_DIRTY_RUN: %s", strerror(errno));
		return -1;
	}
	expected(c, tracking, exp);
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
	return bad;
}

#define RUN(...) do {							\
	struct tdd_cmd c = { .dir = variant->dir, __VA_ARGS__ };	\
	if (!c.nsegs)							\
		c.nsegs = 1;						\
	ASSERT_LE(0, run_and_check(_metadata, self->fd,			\
				   self->tracking, &c));		\
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

/* The boot configuration took the DMA path the test bed asked for. */
TEST_F(tdd, path_matches_boot)
{
	const char *want = getenv("DMA_DIRTY_EXPECT_PATH");
	struct tdd_cmd c = { .op = TDD_MAP_SINGLE, .dir = variant->dir,
			     .nsegs = 1, .seg = { SEG(0, PS) } };
	long long direct, iommu, swiotlb;

	if (!want)
		SKIP(return, "DMA_DIRTY_EXPECT_PATH is not set");
	if (variant->dir == TDD_DIR_TO_DEVICE)
		SKIP(return, "nothing is marked for DMA_TO_DEVICE");

	direct = counter("calls_direct");
	iommu = counter("calls_iommu");
	swiotlb = counter("calls_swiotlb");
	ASSERT_LE(0, direct);
	ASSERT_EQ(0, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &c));
	direct = counter("calls_direct") - direct;
	iommu = counter("calls_iommu") - iommu;
	swiotlb = counter("calls_swiotlb") - swiotlb;
	TH_LOG("want %s: path %s, bounced %u, counter deltas direct %lld iommu %lld swiotlb %lld",
	       want, c.path == TDD_PATH_IOMMU ? "iommu" : "direct", c.bounced,
	       direct, iommu, swiotlb);

	if (!strcmp(want, "direct")) {
		EXPECT_EQ(TDD_PATH_DIRECT, c.path);
		EXPECT_EQ(0, c.bounced);
		EXPECT_LE(1, direct);
	} else if (!strcmp(want, "iommu")) {
		EXPECT_EQ(TDD_PATH_IOMMU, c.path);
		EXPECT_EQ(0, c.bounced);
		EXPECT_LE(1, iommu);
	} else if (!strcmp(want, "swiotlb")) {
		EXPECT_EQ(TDD_PATH_DIRECT, c.path);
		EXPECT_EQ(1, c.bounced);
		EXPECT_LE(1, swiotlb);
	} else if (!strcmp(want, "iommu-swiotlb")) {
		/* Page-aligned buffers are mapped in place; others bounce. */
		EXPECT_EQ(TDD_PATH_IOMMU, c.path);
		EXPECT_EQ(0, c.bounced);
		EXPECT_LE(1, iommu);
		c.seg[0] = (struct tdd_seg)SEG(100, 200);
		swiotlb = counter("calls_swiotlb");
		ASSERT_EQ(0, ioctl(self->fd, TEST_DMA_DIRTY_RUN, &c));
		swiotlb = counter("calls_swiotlb") - swiotlb;
		TH_LOG("unaligned: bounced %u, swiotlb counter delta %lld",
		       c.bounced, swiotlb);
		EXPECT_EQ(TDD_PATH_IOMMU, c.path);
		EXPECT_EQ(1, c.bounced);
		EXPECT_LE(1, swiotlb);
	} else if (!strcmp(want, "off")) {
		EXPECT_EQ(0, self->tracking);
		EXPECT_EQ(0, direct + iommu + swiotlb);
	} else {
		ASSERT_TRUE(0) TH_LOG("unknown DMA_DIRTY_EXPECT_PATH=%s", want);
	}
}

TEST_HARNESS_MAIN
