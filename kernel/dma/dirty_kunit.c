// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for dma_mark_dirty(): page-span arithmetic, direction
 * filtering, backend switching, counters and the touch backend.
 *
 * Most cases swap in a recording backend for their duration; it only keeps
 * reports inside a window of page frames that no RAM uses, so a device
 * unmapping a buffer meanwhile does not disturb the test.
 */

#include <kunit/test.h>
#include <linux/delay.h>
#include <linux/dma-dirty.h>
#include <linux/gfp.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/mm.h>
#include <linux/random.h>
#include <linux/sched.h>

#include "dirty.h"

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

/* A physical address far above any RAM of the test machines. */
#define REC_BASE	BIT_ULL(45)
#define REC_MAX		8

static struct {
	unsigned long pfn[REC_MAX];
	unsigned long nr[REC_MAX];
	int count;
} rec;

static void rec_mark(unsigned long pfn, unsigned long nr_pages)
{
	if (pfn < PHYS_PFN(REC_BASE))
		return;
	if (rec.count < REC_MAX) {
		rec.pfn[rec.count] = pfn;
		rec.nr[rec.count] = nr_pages;
	}
	rec.count++;
}

static const struct dma_dirty_backend rec_backend = {
	.name = "kunit-record",
	.mark = rec_mark,
};

static const struct dma_dirty_backend *saved_backend;

static int dma_dirty_rec_init(struct kunit *test)
{
	memset(&rec, 0, sizeof(rec));
	saved_backend = dma_dirty_switch(&rec_backend);
	return 0;
}

static void dma_dirty_rec_exit(struct kunit *test)
{
	dma_dirty_switch(saved_backend);
}

struct span_case {
	const char *desc;
	phys_addr_t phys;
	size_t size;
	bool ok;
	unsigned long pfn;
	unsigned long nr;
};

#define TOP	((phys_addr_t)~0ULL)

static const struct span_case span_cases[] = {
	{ "zero length", 0x1000, 0, false },
	{ "one byte at page start", 0x1000, 1, true, 1, 1 },
	{ "one byte at page end", 0x1fff, 1, true, 1, 1 },
	{ "two bytes across a boundary", 0x1fff, 2, true, 1, 2 },
	{ "exact page", 0x2000, PAGE_SIZE, true, 2, 1 },
	{ "page plus one", 0x2000, PAGE_SIZE + 1, true, 2, 2 },
	{ "page minus one at offset 1", 0x2001, PAGE_SIZE - 1, true, 2, 1 },
	{ "odd offset, three pages long", 0x3123, 3 * PAGE_SIZE, true, 3, 4 },
	{ "1 GiB plus one at 4 GiB", 1ULL << 32, (1UL << 30) + 1, true,
	  PHYS_PFN(1ULL << 32), (1UL << (30 - PAGE_SHIFT)) + 1 },
	{ "4 GiB at an odd offset", (1ULL << 33) + 7, 1UL << 32, true,
	  PHYS_PFN(1ULL << 33), (1UL << (32 - PAGE_SHIFT)) + 1 },
	{ "last page of the address space", TOP - PAGE_SIZE + 1, PAGE_SIZE,
	  true, PHYS_PFN(TOP), 1 },
	{ "wraps around the address space", TOP - PAGE_SIZE + 1,
	  2 * PAGE_SIZE, false },
	{ "SIZE_MAX", 0x1000, SIZE_MAX, false },
};

static void span_case_desc(const struct span_case *c, char *desc)
{
	strscpy(desc, c->desc, KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(span, span_cases, span_case_desc);

static void dma_dirty_test_span(struct kunit *test)
{
	const struct span_case *c = test->param_value;
	unsigned long pfn = 0, nr = 0;
	bool ok;

	ok = dma_dirty_span(c->phys, c->size, &pfn, &nr);
	KUNIT_ASSERT_EQ(test, ok, c->ok);
	if (!ok)
		return;
	KUNIT_EXPECT_EQ(test, pfn, c->pfn);
	KUNIT_EXPECT_EQ(test, nr, c->nr);
}

struct dir_case {
	enum dma_data_direction dir;
	int reports;
};

static const struct dir_case dir_cases[] = {
	{ DMA_BIDIRECTIONAL, 1 },
	{ DMA_TO_DEVICE, 0 },
	{ DMA_FROM_DEVICE, 1 },
	{ DMA_NONE, 0 },
};

static void dir_case_desc(const struct dir_case *c, char *desc)
{
	static const char * const names[] = {
		[DMA_BIDIRECTIONAL] = "DMA_BIDIRECTIONAL",
		[DMA_TO_DEVICE] = "DMA_TO_DEVICE",
		[DMA_FROM_DEVICE] = "DMA_FROM_DEVICE",
		[DMA_NONE] = "DMA_NONE",
	};

	strscpy(desc, names[c->dir], KUNIT_PARAM_DESC_SIZE);
}

KUNIT_ARRAY_PARAM(dir, dir_cases, dir_case_desc);

static void dma_dirty_test_direction(struct kunit *test)
{
	const struct dir_case *c = test->param_value;

	dma_mark_dirty(REC_BASE + 0x10, 2 * PAGE_SIZE, c->dir);
	KUNIT_ASSERT_EQ(test, rec.count, c->reports);
	if (!c->reports)
		return;
	KUNIT_EXPECT_EQ(test, rec.pfn[0], PHYS_PFN(REC_BASE));
	KUNIT_EXPECT_EQ(test, rec.nr[0], 3UL);
}

static void dma_dirty_test_switch_off(struct kunit *test)
{
	KUNIT_EXPECT_TRUE(test, dma_mark_dirty_enabled());
	KUNIT_EXPECT_PTR_EQ(test, dma_dirty_current(), &rec_backend);

	dma_dirty_switch(dma_dirty_find("off"));
	KUNIT_EXPECT_FALSE(test, dma_mark_dirty_enabled());
	dma_mark_dirty(REC_BASE, PAGE_SIZE, DMA_FROM_DEVICE);
	KUNIT_EXPECT_EQ(test, rec.count, 0);

	dma_dirty_switch(&rec_backend);
	KUNIT_EXPECT_TRUE(test, dma_mark_dirty_enabled());
	dma_mark_dirty(REC_BASE, PAGE_SIZE, DMA_FROM_DEVICE);
	KUNIT_EXPECT_EQ(test, rec.count, 1);
}

static void dma_dirty_test_find(struct kunit *test)
{
	KUNIT_EXPECT_NOT_NULL(test, dma_dirty_find("off"));
	KUNIT_EXPECT_NOT_NULL(test, dma_dirty_find("touch"));
	KUNIT_EXPECT_NULL(test, dma_dirty_find("bogus"));
	KUNIT_EXPECT_NULL(test, dma_dirty_find(""));
}

static void dma_dirty_test_counters(struct kunit *test)
{
	u64 calls0[DMA_DIRTY_NR_PATHS], pages0[DMA_DIRTY_NR_PATHS];
	u64 calls1[DMA_DIRTY_NR_PATHS], pages1[DMA_DIRTY_NR_PATHS];

	dma_dirty_read_stats(calls0, pages0);
	dma_mark_dirty(REC_BASE + PAGE_SIZE - 1, PAGE_SIZE + 2, DMA_FROM_DEVICE);
	dma_mark_dirty(REC_BASE, PAGE_SIZE, DMA_TO_DEVICE);
	__dma_mark_dirty(REC_BASE, 5 * PAGE_SIZE, DMA_DIRTY_SWIOTLB);
	dma_dirty_read_stats(calls1, pages1);

	KUNIT_EXPECT_EQ(test, calls1[DMA_DIRTY_CALLER] - calls0[DMA_DIRTY_CALLER], 1);
	KUNIT_EXPECT_EQ(test, pages1[DMA_DIRTY_CALLER] - pages0[DMA_DIRTY_CALLER], 3);
	KUNIT_EXPECT_EQ(test, calls1[DMA_DIRTY_SWIOTLB] - calls0[DMA_DIRTY_SWIOTLB], 1);
	KUNIT_EXPECT_EQ(test, pages1[DMA_DIRTY_SWIOTLB] - pages0[DMA_DIRTY_SWIOTLB], 5);
	/* A bounce slot is counted but never reported. */
	KUNIT_EXPECT_EQ(test, rec.count, 1);
}

#define TOUCH_PAGES	4

/* The touch backend writes, but nothing a reader of the page can see. */
static void dma_dirty_test_touch_invisible(struct kunit *test)
{
	struct page *page;
	u8 *buf, *copy;

	page = alloc_pages(GFP_KERNEL, 2);
	KUNIT_ASSERT_NOT_NULL(test, page);
	buf = page_address(page);
	copy = kunit_kmalloc(test, TOUCH_PAGES * PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, copy);
	get_random_bytes(buf, TOUCH_PAGES * PAGE_SIZE);
	memcpy(copy, buf, TOUCH_PAGES * PAGE_SIZE);

	dma_dirty_switch(dma_dirty_find("touch"));
	dma_mark_dirty(page_to_phys(page) + 123, 3 * PAGE_SIZE,
		       DMA_BIDIRECTIONAL);
	dma_dirty_switch(&rec_backend);

	KUNIT_EXPECT_EQ(test, memcmp(buf, copy, TOUCH_PAGES * PAGE_SIZE), 0);
	__free_pages(page, 2);
}

#define RACE_ROUNDS	20000

struct race {
	unsigned long *words[TOUCH_PAGES];
	atomic_t done;
};

static int race_writer(void *data)
{
	struct race *r = data;
	int i, p;

	/* Plain read-modify-write: a touch that is not atomic loses some. */
	for (i = 0; i < RACE_ROUNDS; i++)
		for (p = 0; p < TOUCH_PAGES; p++)
			WRITE_ONCE(*r->words[p], READ_ONCE(*r->words[p]) + 1);
	atomic_set(&r->done, 1);
	return 0;
}

/* CPU stores racing with the touch backend are never lost. */
static void dma_dirty_test_touch_race(struct kunit *test)
{
	struct task_struct *writer;
	struct race r = {};
	struct page *page;
	unsigned long touches = 0;
	int p, cpu;

	if (num_online_cpus() < 2)
		kunit_skip(test, "needs two CPUs");

	page = alloc_pages(GFP_KERNEL | __GFP_ZERO, 2);
	KUNIT_ASSERT_NOT_NULL(test, page);
	for (p = 0; p < TOUCH_PAGES; p++)
		r.words[p] = page_address(page) + p * PAGE_SIZE;

	cpu = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	writer = kthread_create(race_writer, &r, "dma_dirty_race");
	KUNIT_ASSERT_FALSE(test, IS_ERR(writer));
	kthread_bind(writer, cpu);
	get_task_struct(writer);

	dma_dirty_switch(dma_dirty_find("touch"));
	wake_up_process(writer);
	while (!atomic_read(&r.done)) {
		dma_mark_dirty(page_to_phys(page), TOUCH_PAGES * PAGE_SIZE,
			       DMA_FROM_DEVICE);
		touches++;
	}
	dma_dirty_switch(&rec_backend);
	kthread_stop(writer);
	put_task_struct(writer);

	kunit_info(test, "%lu touches of %d pages raced with the writer\n",
		   touches, TOUCH_PAGES);
	for (p = 0; p < TOUCH_PAGES; p++)
		KUNIT_EXPECT_EQ_MSG(test, *r.words[p], (unsigned long)RACE_ROUNDS,
				    "page %d lost stores", p);
	__free_pages(page, 2);
}

static struct kunit_case dma_dirty_test_cases[] = {
	KUNIT_CASE_PARAM(dma_dirty_test_span, span_gen_params),
	KUNIT_CASE_PARAM(dma_dirty_test_direction, dir_gen_params),
	KUNIT_CASE(dma_dirty_test_switch_off),
	KUNIT_CASE(dma_dirty_test_find),
	KUNIT_CASE(dma_dirty_test_counters),
	KUNIT_CASE(dma_dirty_test_touch_invisible),
	KUNIT_CASE(dma_dirty_test_touch_race),
	{}
};

static struct kunit_suite dma_dirty_test_suite = {
	.name = "dma_mark_dirty",
	.init = dma_dirty_rec_init,
	.exit = dma_dirty_rec_exit,
	.test_cases = dma_dirty_test_cases,
};

kunit_test_suite(dma_dirty_test_suite);

MODULE_DESCRIPTION("KUnit tests for dma_mark_dirty()");
MODULE_LICENSE("GPL");
