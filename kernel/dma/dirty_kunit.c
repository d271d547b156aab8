// SPDX-License-Identifier: GPL-2.0
/*
 * KUnit tests for dma_mark_dirty(): page-span arithmetic, the hooks in the
 * streaming DMA API (through a KUnit device, on dma-direct), directions,
 * DMA_ATTR_SKIP_CPU_SYNC, what is never reported, and the touch backend.
 *
 * Reports are recorded from the dma_dirty:dma_mark_dirty trace event,
 * keeping only those of the test's own device, so the system's backend goes
 * on reporting every other device's buffers while the tests run.  The cases
 * need a backend that reports all the time; unless the system runs "touch",
 * the suite switches to it for its duration, which adds reports and drops
 * none (a paravirtual backend's gate may be closed).
 */

#include <kunit/device.h>
#include <kunit/test.h>
#include <linux/dma-mapping.h>
#include <linux/gfp.h>
#include <linux/hw_breakpoint.h>
#include <linux/kthread.h>
#include <linux/memblock.h>
#include <linux/mm.h>
#include <linux/perf_event.h>
#include <linux/random.h>
#include <linux/scatterlist.h>
#include <linux/set_memory.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <trace/events/dma_dirty.h>

#include "dirty.h"

MODULE_IMPORT_NS(EXPORTED_FOR_KUNIT_TESTING);

#define REC_MAX		16

struct rec_entry {
	phys_addr_t phys;
	size_t size;
	enum dma_dirty_path path;
};

static struct {
	struct device *dev;		/* reports of this device only */
	struct rec_entry e[REC_MAX];
	int count;
} rec;

static void rec_probe(void *data, struct device *dev, phys_addr_t phys,
		      size_t size, enum dma_dirty_path path)
{
	int i;

	if (dev != READ_ONCE(rec.dev))
		return;
	i = rec.count++;
	if (i < REC_MAX)
		rec.e[i] = (struct rec_entry){ phys, size, path };
}

static void hook_cases_init(void);
static struct dma_dirty_backend *suite_saved;

static int dma_dirty_suite_init(struct kunit_suite *suite)
{
	hook_cases_init();
	suite_saved = NULL;
	if (strcmp(dma_dirty_current()->name, "touch"))
		suite_saved = dma_dirty_switch(dma_dirty_find("touch"));
	return register_trace_dma_mark_dirty(rec_probe, NULL);
}

static void dma_dirty_suite_exit(struct kunit_suite *suite)
{
	unregister_trace_dma_mark_dirty(rec_probe, NULL);
	tracepoint_synchronize_unregister();
	if (suite_saved)
		dma_dirty_switch(suite_saved);
}

/* A device on dma-direct with a 64-bit mask: nothing bounces. */
static struct device *test_dev(struct kunit *test)
{
	struct device *dev = kunit_device_register(test, "dma-dirty-kunit");

	KUNIT_ASSERT_FALSE(test, IS_ERR(dev));
	dev->dma_mask = &dev->coherent_dma_mask;
	KUNIT_ASSERT_EQ(test, dma_set_mask_and_coherent(dev, DMA_BIT_MASK(64)), 0);
	return dev;
}

static int dma_dirty_test_init(struct kunit *test)
{
	memset(&rec, 0, sizeof(rec));
	WRITE_ONCE(rec.dev, test_dev(test));
	return 0;
}

static void dma_dirty_test_exit(struct kunit *test)
{
	WRITE_ONCE(rec.dev, NULL);
}

/* Expect exactly @n reports, equal to @want, in this order. */
static void expect_reports(struct kunit *test, const struct rec_entry *want,
			   int n)
{
	int i;

	KUNIT_ASSERT_EQ_MSG(test, rec.count, n, "number of reports");
	for (i = 0; i < n; i++) {
		KUNIT_EXPECT_EQ_MSG(test, (u64)rec.e[i].phys, (u64)want[i].phys,
				    "report %d: address", i);
		KUNIT_EXPECT_EQ_MSG(test, rec.e[i].size, want[i].size,
				    "report %d: size", i);
		KUNIT_EXPECT_EQ_MSG(test, rec.e[i].path, want[i].path,
				    "report %d: path", i);
	}
}

struct span_case {
	const char *desc;
	phys_addr_t phys;
	size_t size;
	bool ok;
	unsigned long pfn;
	unsigned long nr;
};

#define TOP	((phys_addr_t)~(phys_addr_t)0)

static const struct span_case span_cases[] = {
	{ "zero length", 0x1000, 0, false },
	{ "one byte at page start", 0x1000, 1, true, 1, 1 },
	{ "one byte at page end", 0x1fff, 1, true, 1, 1 },
	{ "two bytes across a boundary", 0x1fff, 2, true, 1, 2 },
	{ "exact page", 0x2000, PAGE_SIZE, true, 2, 1 },
	{ "page plus one", 0x2000, PAGE_SIZE + 1, true, 2, 2 },
	{ "page minus one at offset 1", 0x2001, PAGE_SIZE - 1, true, 2, 1 },
	{ "odd offset, three pages long", 0x3123, 3 * PAGE_SIZE, true, 3, 4 },
	{ "256 MiB plus one at 1 GiB", 1UL << 30, (1UL << 28) + 1, true,
	  PHYS_PFN(1UL << 30), (1UL << (28 - PAGE_SHIFT)) + 1 },
#ifdef CONFIG_PHYS_ADDR_T_64BIT
	{ "1 GiB plus one at 4 GiB", 1ULL << 32, (1UL << 30) + 1, true,
	  PHYS_PFN(1ULL << 32), (1UL << (30 - PAGE_SHIFT)) + 1 },
#endif
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

/* The streaming DMA API, as a driver uses it. */
enum hook_op {
	OP_SINGLE,	/* dma_map_single(), dma_unmap_single_attrs() */
	OP_PAGE,	/* dma_map_page(), dma_unmap_page_attrs() */
	OP_SG,		/* dma_map_sg(), dma_unmap_sg_attrs() */
	OP_SYNC_SINGLE,	/* ... and dma_sync_single_range_for_cpu() between */
	OP_SYNC_SG,	/* ... and dma_sync_sg_for_cpu() between */
	OP_NEED_SYNC,	/* sync for the CPU only if dma_need_sync() says so */
};

struct hook_case {
	enum hook_op op;
	enum dma_data_direction dir;
	unsigned long attrs;
};

static const char *const op_names[] = {
	[OP_SINGLE] = "single", [OP_PAGE] = "page", [OP_SG] = "sg",
	[OP_SYNC_SINGLE] = "sync_single", [OP_SYNC_SG] = "sync_sg",
	[OP_NEED_SYNC] = "need_sync",
};

static const char *const dir_names[] = {
	[DMA_BIDIRECTIONAL] = "BIDIRECTIONAL",
	[DMA_TO_DEVICE] = "TO_DEVICE",
	[DMA_FROM_DEVICE] = "FROM_DEVICE",
};

static const enum dma_data_direction hook_dirs[] = {
	DMA_FROM_DEVICE, DMA_BIDIRECTIONAL, DMA_TO_DEVICE,
};

/* Every operation, in every direction, with and without SKIP_CPU_SYNC. */
static struct hook_case hook_cases[ARRAY_SIZE(op_names) *
				   ARRAY_SIZE(hook_dirs) * 2];

static void hook_cases_init(void)
{
	int i;

	for (i = 0; i < ARRAY_SIZE(hook_cases); i++) {
		hook_cases[i].op = i / (2 * ARRAY_SIZE(hook_dirs));
		hook_cases[i].dir = hook_dirs[i / 2 % ARRAY_SIZE(hook_dirs)];
		hook_cases[i].attrs = i % 2 ? DMA_ATTR_SKIP_CPU_SYNC : 0;
	}
}

static void hook_case_desc(struct hook_case *c, char *desc)
{
	snprintf(desc, KUNIT_PARAM_DESC_SIZE, "%s %s%s", op_names[c->op],
		 dir_names[c->dir],
		 c->attrs ? " SKIP_CPU_SYNC" : "");
}

KUNIT_ARRAY_PARAM(hook, hook_cases, hook_case_desc);

#define BUF_ORDER	2
#define OFF		123			/* a buffer starting mid-page */
#define LEN		(2 * PAGE_SIZE + 7)	/* and spanning four pages */
#define SYNC_OFF	(PAGE_SIZE - 5)
#define SYNC_LEN	10

/*
 * Each case maps a buffer, gives it back to the CPU the way the case says,
 * and compares the reports with what must be reported: each unmap reports
 * every byte of the buffer once (DMA_ATTR_SKIP_CPU_SYNC or not), each sync
 * for the CPU what it synced, nothing for DMA_TO_DEVICE.
 */
static void dma_dirty_test_hooks(struct kunit *test)
{
	const struct hook_case *c = test->param_value;
	struct device *dev = rec.dev;
	struct rec_entry want[4];
	struct scatterlist sgl[2];
	struct page *page;
	phys_addr_t phys;
	dma_addr_t dma;
	int n = 0;
	u8 *buf;

	page = alloc_pages(GFP_KERNEL | __GFP_ZERO, BUF_ORDER);
	KUNIT_ASSERT_NOT_NULL(test, page);
	buf = page_address(page);
	phys = page_to_phys(page);

	switch (c->op) {
	case OP_SINGLE:
	case OP_SYNC_SINGLE:
	case OP_NEED_SYNC:
		dma = dma_map_single(dev, buf + OFF, LEN, c->dir);
		KUNIT_ASSERT_FALSE(test, dma_mapping_error(dev, dma));
		if (c->op == OP_SYNC_SINGLE) {
			dma_sync_single_range_for_cpu(dev, dma, SYNC_OFF,
						      SYNC_LEN, c->dir);
			want[n++] = (struct rec_entry){ phys + OFF + SYNC_OFF,
							SYNC_LEN, DMA_DIRTY_DIRECT };
		}
		if (c->op == OP_NEED_SYNC) {
			/* The page_pool pattern: sync only when needed. */
			KUNIT_EXPECT_TRUE(test, dma_need_sync(dev, dma));
			if (dma_need_sync(dev, dma))
				dma_sync_single_for_cpu(dev, dma, LEN, c->dir);
			want[n++] = (struct rec_entry){ phys + OFF, LEN,
							DMA_DIRTY_DIRECT };
		}
		dma_unmap_single_attrs(dev, dma, LEN, c->dir, c->attrs);
		want[n++] = (struct rec_entry){ phys + OFF, LEN,
						DMA_DIRTY_DIRECT };
		break;
	case OP_PAGE:
		dma = dma_map_page(dev, page + 1, OFF, LEN, c->dir);
		KUNIT_ASSERT_FALSE(test, dma_mapping_error(dev, dma));
		dma_unmap_page_attrs(dev, dma, LEN, c->dir, c->attrs);
		want[n++] = (struct rec_entry){ phys + PAGE_SIZE + OFF, LEN,
						DMA_DIRTY_DIRECT };
		break;
	case OP_SG:
	case OP_SYNC_SG:
		sg_init_table(sgl, 2);
		sg_set_page(&sgl[0], page, 200, OFF);
		sg_set_page(&sgl[1], page + 2, PAGE_SIZE + 5, 0);
		KUNIT_ASSERT_EQ(test, dma_map_sg(dev, sgl, 2, c->dir), 2);
		if (c->op == OP_SYNC_SG) {
			dma_sync_sg_for_cpu(dev, sgl, 2, c->dir);
			want[n++] = (struct rec_entry){ phys + OFF, 200,
							DMA_DIRTY_DIRECT };
			want[n++] = (struct rec_entry){ phys + 2 * PAGE_SIZE,
							PAGE_SIZE + 5,
							DMA_DIRTY_DIRECT };
		}
		dma_unmap_sg_attrs(dev, sgl, 2, c->dir, c->attrs);
		want[n++] = (struct rec_entry){ phys + OFF, 200,
						DMA_DIRTY_DIRECT };
		want[n++] = (struct rec_entry){ phys + 2 * PAGE_SIZE,
						PAGE_SIZE + 5, DMA_DIRTY_DIRECT };
		break;
	}
	__free_pages(page, BUF_ORDER);

	expect_reports(test, want, dma_dirty_dir(c->dir) ? n : 0);
}

/* dma_mark_dirty() for drivers: directions, and the device in the report */
static void dma_dirty_test_caller(struct kunit *test)
{
	struct page *page = alloc_pages(GFP_KERNEL, 1);
	phys_addr_t phys;
	struct rec_entry want;

	KUNIT_ASSERT_NOT_NULL(test, page);
	phys = page_to_phys(page);
	dma_mark_dirty(rec.dev, phys + 10, PAGE_SIZE, DMA_TO_DEVICE);
	dma_mark_dirty(rec.dev, phys + 10, PAGE_SIZE, DMA_NONE);
	dma_mark_dirty(rec.dev, phys + 10, PAGE_SIZE, DMA_FROM_DEVICE);
	dma_mark_dirty(NULL, phys + 10, PAGE_SIZE, DMA_FROM_DEVICE);
	__free_pages(page, 1);

	want = (struct rec_entry){ phys + 10, PAGE_SIZE, DMA_DIRTY_CALLER };
	expect_reports(test, &want, 1);
}

/* Addresses that are not RAM are never reported, and are counted. */
static void dma_dirty_test_not_ram(struct kunit *test)
{
	unsigned long pfn;
	phys_addr_t phys;
#ifdef CONFIG_DEBUG_FS
	struct dma_dirty_totals t0, t1;
#endif

	/* Four page frames above RAM without a memory map. */
	for (pfn = max_pfn; pfn < max_pfn + (1UL << 20); pfn++)
		if (!pfn_valid(pfn) && !pfn_valid(pfn + 1) &&
		    !pfn_valid(pfn + 2) && !pfn_valid(pfn + 3))
			break;
	KUNIT_ASSERT_LT(test, pfn, max_pfn + (1UL << 20));
	phys = PFN_PHYS(pfn);

#ifdef CONFIG_DEBUG_FS
	dma_dirty_read_stats(&t0);
#endif
	dma_mark_dirty(rec.dev, phys + 100, 3 * PAGE_SIZE, DMA_FROM_DEVICE);
	KUNIT_EXPECT_EQ(test, rec.count, 0);
#ifdef CONFIG_DEBUG_FS
	dma_dirty_read_stats(&t1);
	KUNIT_EXPECT_EQ(test, t1.skipped - t0.skipped, 4);
	KUNIT_EXPECT_EQ(test, t1.calls[DMA_DIRTY_CALLER] -
			t0.calls[DMA_DIRTY_CALLER], 1);
	KUNIT_EXPECT_EQ(test, t1.pages[DMA_DIRTY_CALLER] -
			t0.pages[DMA_DIRTY_CALLER], 0);
#endif
}

static void dma_dirty_test_find(struct kunit *test)
{
	KUNIT_EXPECT_NOT_NULL(test, dma_dirty_find("off"));
	KUNIT_EXPECT_NOT_NULL(test, dma_dirty_find("touch"));
	KUNIT_EXPECT_NULL(test, dma_dirty_find("auto"));
	KUNIT_EXPECT_NULL(test, dma_dirty_find("bogus"));
	KUNIT_EXPECT_NULL(test, dma_dirty_find(""));
}

static bool touch_active(struct kunit *test)
{
	if (strcmp(dma_dirty_current()->name, "touch")) {
		kunit_skip(test, "the active backend is %s, not touch",
			   dma_dirty_current()->name);
		return false;
	}
	return true;
}

#ifdef CONFIG_HAVE_HW_BREAKPOINT
#define NR_WATCH	2

static struct {
	unsigned long addr[NR_WATCH];
	atomic_t hits[NR_WATCH];
} watch;

static void watch_hit(struct perf_event *bp, struct perf_sample_data *data,
		      struct pt_regs *regs)
{
	int i;

	for (i = 0; i < NR_WATCH; i++)
		if (bp->attr.bp_addr == watch.addr[i])
			atomic_inc(&watch.hits[i]);
}

/*
 * The touch backend writes, and only inside the buffer: hardware write
 * watchpoints on the first byte of a buffer that starts mid-page, and on
 * the first byte of its page, which belongs to a freed object.  With KASAN,
 * a touch of that object would also be reported as a use-after-free.
 */
static void dma_dirty_test_touch_writes(struct kunit *test)
{
	struct perf_event * __percpu *bp[NR_WATCH];
	void *objs[32], *first = NULL, *victim = NULL;
	struct perf_event_attr attr;
	struct kmem_cache *cache;
	int i, nobj = ARRAY_SIZE(objs);
	dma_addr_t dma;

	if (!touch_active(test))
		return;

	/* Two objects of one slab page: @first at its start, @victim later. */
	cache = kmem_cache_create("dma_dirty_kunit", 512, 512, 0, NULL);
	KUNIT_ASSERT_NOT_NULL(test, cache);
	for (i = 0; i < nobj; i++) {
		objs[i] = kmem_cache_alloc(cache, GFP_KERNEL);
		KUNIT_ASSERT_NOT_NULL(test, objs[i]);
	}
	for (i = 0; i < nobj && !first; i++)
		if (!offset_in_page(objs[i]))
			first = objs[i];
	for (i = 0; i < nobj && first && !victim; i++)
		if (objs[i] != first && PAGE_ALIGN_DOWN((unsigned long)objs[i]) ==
		    (unsigned long)first)
			victim = objs[i];
	for (i = 0; i < nobj; i++)
		if (objs[i] != victim)
			kmem_cache_free(cache, objs[i]);
	if (!victim) {
		kmem_cache_destroy(cache);
		KUNIT_FAIL(test, "no two 512-byte objects on one page");
		return;
	}

	memset(&watch, 0, sizeof(watch));
	watch.addr[0] = (unsigned long)victim;
	watch.addr[1] = PAGE_ALIGN_DOWN((unsigned long)victim);
	for (i = 0; i < 2; i++) {
		hw_breakpoint_init(&attr);
		attr.bp_addr = watch.addr[i];
		attr.bp_len = HW_BREAKPOINT_LEN_1;
		attr.bp_type = HW_BREAKPOINT_W;
		bp[i] = register_wide_hw_breakpoint(&attr, watch_hit, NULL);
		if (IS_ERR((void __force *)bp[i])) {
			while (i--)
				unregister_wide_hw_breakpoint(bp[i]);
			kmem_cache_free(cache, victim);
			kmem_cache_destroy(cache);
			KUNIT_FAIL(test, "register_wide_hw_breakpoint: %ld",
				   PTR_ERR((void __force *)bp[0]));
			return;
		}
	}

	dma = dma_map_single(rec.dev, victim, 64, DMA_FROM_DEVICE);
	KUNIT_ASSERT_FALSE(test, dma_mapping_error(rec.dev, dma));
	dma_unmap_single(rec.dev, dma, 64, DMA_FROM_DEVICE);

	for (i = 0; i < 2; i++)
		unregister_wide_hw_breakpoint(bp[i]);
	kmem_cache_free(cache, victim);
	kmem_cache_destroy(cache);

	KUNIT_EXPECT_EQ_MSG(test, atomic_read(&watch.hits[0]), 1,
			    "writes to the buffer's first byte");
	KUNIT_EXPECT_EQ_MSG(test, atomic_read(&watch.hits[1]), 0,
			    "writes to the freed object before the buffer");
	KUNIT_EXPECT_EQ(test, rec.count, 1);
}
#else
static void dma_dirty_test_touch_writes(struct kunit *test)
{
	kunit_skip(test, "needs CONFIG_HAVE_HW_BREAKPOINT");
}
#endif /* CONFIG_HAVE_HW_BREAKPOINT */

#if IS_BUILTIN(CONFIG_DMA_MARK_DIRTY_KUNIT_TEST) && defined(CONFIG_DEBUG_FS)
/*
 * A read-only page mapped for a device to write is a driver bug; the touch
 * backend counts it and goes on instead of oopsing.  set_memory_ro() is not
 * exported, hence built-in only.
 */
static void dma_dirty_test_touch_read_only(struct kunit *test)
{
	struct dma_dirty_totals t0, t1;
	struct page *page;
	unsigned long addr;

	if (!touch_active(test))
		return;
	page = alloc_page(GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, page);
	addr = (unsigned long)page_address(page);
	KUNIT_ASSERT_EQ(test, set_memory_ro(addr, 1), 0);

	dma_dirty_read_stats(&t0);
	dma_mark_dirty(rec.dev, page_to_phys(page) + 8, 16, DMA_FROM_DEVICE);
	dma_dirty_read_stats(&t1);

	KUNIT_ASSERT_EQ(test, set_memory_rw(addr, 1), 0);
	__free_page(page);
	KUNIT_EXPECT_EQ(test, t1.touch_faults - t0.touch_faults, 1);
	KUNIT_EXPECT_EQ(test, rec.count, 1);
}
#else
static void dma_dirty_test_touch_read_only(struct kunit *test)
{
	kunit_skip(test, "needs the test built in, and CONFIG_DEBUG_FS");
}
#endif

#define TOUCH_PAGES	4

/* The touch backend writes, but nothing a reader of the page can see. */
static void dma_dirty_test_touch_invisible(struct kunit *test)
{
	struct page *page;
	u8 *buf, *copy;

	if (!touch_active(test))
		return;
	page = alloc_pages(GFP_KERNEL, 2);
	KUNIT_ASSERT_NOT_NULL(test, page);
	buf = page_address(page);
	copy = kunit_kmalloc(test, TOUCH_PAGES * PAGE_SIZE, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, copy);
	get_random_bytes(buf, TOUCH_PAGES * PAGE_SIZE);
	memcpy(copy, buf, TOUCH_PAGES * PAGE_SIZE);

	dma_mark_dirty(rec.dev, page_to_phys(page) + 123, 3 * PAGE_SIZE,
		       DMA_BIDIRECTIONAL);

	KUNIT_EXPECT_EQ(test, memcmp(buf, copy, TOUCH_PAGES * PAGE_SIZE), 0);
	KUNIT_EXPECT_EQ(test, rec.count, 1);
	__free_pages(page, 2);
}

/* Touches between which the writer must have made progress. */
#define RACE_INTERLEAVED	2000

struct race {
	unsigned long *words[TOUCH_PAGES];
	unsigned long progress;		/* rounds done by the writer */
	bool stop;
};

static int race_writer(void *data)
{
	struct race *r = data;
	int p;

	/* Plain read-modify-write: a touch that is not atomic loses some. */
	while (!READ_ONCE(r->stop)) {
		for (p = 0; p < TOUCH_PAGES; p++)
			WRITE_ONCE(*r->words[p], READ_ONCE(*r->words[p]) + 1);
		WRITE_ONCE(r->progress, r->progress + 1);
		if (!(r->progress % 1024))
			cond_resched();
	}
	while (!kthread_should_stop())
		schedule_timeout_interruptible(1);
	return 0;
}

/*
 * CPU stores racing with the touch backend are never lost.  The touches go
 * on until the writer, on another CPU, made progress between two touches
 * RACE_INTERLEAVED times, so the two did run at the same time.
 */
static void dma_dirty_test_touch_race(struct kunit *test)
{
	unsigned long touches = 0, interleaved = 0, last = 0, progress;
	unsigned long deadline = jiffies + 5 * HZ;
	struct task_struct *writer;
	struct race r = {};
	struct page *page;
	int p, cpu;

	if (!touch_active(test))
		return;
	if (num_online_cpus() < 2)
		kunit_skip(test, "needs two CPUs");

	page = alloc_pages(GFP_KERNEL | __GFP_ZERO, 2);
	KUNIT_ASSERT_NOT_NULL(test, page);
	for (p = 0; p < TOUCH_PAGES; p++)
		r.words[p] = page_address(page) + p * PAGE_SIZE;

	/* The touches on this CPU, the writer on another one. */
	KUNIT_ASSERT_EQ(test, 0,
			set_cpus_allowed_ptr(current,
					     cpumask_of(raw_smp_processor_id())));
	cpu = cpumask_any_but(cpu_online_mask, raw_smp_processor_id());
	writer = kthread_create(race_writer, &r, "dma_dirty_race");
	KUNIT_ASSERT_FALSE(test, IS_ERR(writer));
	kthread_bind(writer, cpu);
	get_task_struct(writer);

	wake_up_process(writer);
	while (interleaved < RACE_INTERLEAVED && time_before(jiffies, deadline)) {
		/* The buffer starts at the page: the touched bytes are words[] */
		dma_mark_dirty(rec.dev, page_to_phys(page),
			       TOUCH_PAGES * PAGE_SIZE, DMA_FROM_DEVICE);
		touches++;
		progress = READ_ONCE(r.progress);
		if (last && progress != last)
			interleaved++;
		last = progress;
		cond_resched();
	}
	WRITE_ONCE(r.stop, true);
	kthread_stop(writer);
	put_task_struct(writer);

	kunit_info(test, "%lu touches of %d pages; the writer made progress between %lu pairs of them, %lu rounds in all\n",
		   touches, TOUCH_PAGES, interleaved, r.progress);
	KUNIT_EXPECT_EQ_MSG(test, interleaved, (unsigned long)RACE_INTERLEAVED,
			    "the touches and the writer did not run together");
	for (p = 0; p < TOUCH_PAGES; p++)
		KUNIT_EXPECT_EQ_MSG(test, *r.words[p], r.progress,
				    "page %d lost stores", p);
	__free_pages(page, 2);
}

static struct kunit_case dma_dirty_test_cases[] = {
	KUNIT_CASE_PARAM(dma_dirty_test_span, span_gen_params),
	KUNIT_CASE_PARAM(dma_dirty_test_hooks, hook_gen_params),
	KUNIT_CASE(dma_dirty_test_caller),
	KUNIT_CASE(dma_dirty_test_not_ram),
	KUNIT_CASE(dma_dirty_test_find),
	KUNIT_CASE(dma_dirty_test_touch_writes),
	KUNIT_CASE(dma_dirty_test_touch_read_only),
	KUNIT_CASE(dma_dirty_test_touch_invisible),
	KUNIT_CASE(dma_dirty_test_touch_race),
	{}
};

static struct kunit_suite dma_dirty_test_suite = {
	.name = "dma_mark_dirty",
	.suite_init = dma_dirty_suite_init,
	.suite_exit = dma_dirty_suite_exit,
	.init = dma_dirty_test_init,
	.exit = dma_dirty_test_exit,
	.test_cases = dma_dirty_test_cases,
};

kunit_test_suite(dma_dirty_test_suite);

MODULE_DESCRIPTION("KUnit tests for dma_mark_dirty()");
MODULE_LICENSE("GPL");
