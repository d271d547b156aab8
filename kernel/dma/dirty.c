// SPDX-License-Identifier: GPL-2.0
/*
 * Marking guest pages written by DMA dirty for live migration.
 *
 * A hypervisor doing pre-copy migration re-sends the pages it saw change,
 * but it does not see a pass-through device writing guest memory.  The DMA
 * API knows when a device has written a buffer: when the buffer is unmapped
 * or synced for the CPU.  At that point every page of the buffer is reported
 * to the hypervisor by the active backend:
 *
 *   touch: a locked add of zero to one word of each page.  The value never
 *          changes and a racing CPU write is never lost, but the write
 *          faults or is logged like any other guest write.
 *   off:   nothing.
 *
 * A paravirtual backend registers itself through dma_mark_dirty_register()
 * before the backend is chosen at core_initcall time.
 */

#define pr_fmt(fmt) "dma_mark_dirty: " fmt

#include <linux/debugfs.h>
#include <linux/dma-dirty.h>
#include <linux/highmem.h>
#include <linux/init.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/string.h>
#include <asm/dma-dirty.h>
#include <kunit/visibility.h>

#define CREATE_TRACE_POINTS
#include <trace/events/dma_dirty.h>

#include "dirty.h"

EXPORT_TRACEPOINT_SYMBOL_GPL(dma_mark_dirty);

DEFINE_STATIC_KEY_FALSE(dma_mark_dirty_active);
EXPORT_SYMBOL_GPL(dma_mark_dirty_active);

struct dma_dirty_stats {
	u64 calls[DMA_DIRTY_NR_PATHS];
	u64 pages[DMA_DIRTY_NR_PATHS];
};

static DEFINE_PER_CPU(struct dma_dirty_stats, dma_dirty_stats);

static void dma_dirty_touch(unsigned long pfn, unsigned long nr_pages)
{
	for (; nr_pages; nr_pages--, pfn++) {
		atomic_long_t *word = kmap_local_pfn(pfn);

		/* A locked RMW: no concurrent CPU store can be lost. */
		atomic_long_add(0, word);
		kunmap_local(word);
	}
}

static void dma_dirty_off(unsigned long pfn, unsigned long nr_pages)
{
}

static const struct dma_dirty_backend dma_dirty_backend_touch = {
	.name = "touch",
	.mark = dma_dirty_touch,
};

static const struct dma_dirty_backend dma_dirty_backend_off = {
	.name = "off",
	.mark = dma_dirty_off,
};

#define DMA_DIRTY_MAX_BACKENDS	4
#define DMA_DIRTY_NR_BUILTIN	2	/* off, touch; then registered ones */

static const struct dma_dirty_backend *dma_dirty_backends[DMA_DIRTY_MAX_BACKENDS] = {
	&dma_dirty_backend_off,
	&dma_dirty_backend_touch,
};

static const struct dma_dirty_backend *dma_dirty_backend = &dma_dirty_backend_off;
static char dma_dirty_param[16] __initdata = "auto";
static bool dma_dirty_chosen __ro_after_init;

/*
 * Compute the pages that [@phys, @phys + @size) touches.  Returns false when
 * there is none: an empty buffer, or one that wraps around the physical
 * address space (a caller bug, reported once).
 */
VISIBLE_IF_KUNIT bool dma_dirty_span(phys_addr_t phys, size_t size,
				     unsigned long *pfn, unsigned long *nr_pages)
{
	phys_addr_t last;

	if (!size)
		return false;
	if (check_add_overflow(phys, (phys_addr_t)(size - 1), &last)) {
		pr_err_once("buffer %pa + %zu wraps around, not marked\n",
			    &phys, size);
		return false;
	}
	*pfn = PHYS_PFN(phys);
	*nr_pages = PHYS_PFN(last) - *pfn + 1;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_span);

void __dma_mark_dirty(phys_addr_t phys, size_t size, enum dma_dirty_path path)
{
	unsigned long pfn, nr_pages;

	if (!dma_dirty_span(phys, size, &pfn, &nr_pages))
		return;

	this_cpu_inc(dma_dirty_stats.calls[path]);
	this_cpu_add(dma_dirty_stats.pages[path], nr_pages);
	/*
	 * The device wrote a swiotlb slot, and swiotlb copied it to the
	 * original buffer with the CPU, which the hypervisor tracks by itself.
	 * The slot is dead once unmapped, so there is nothing to report.
	 */
	if (path == DMA_DIRTY_SWIOTLB)
		return;

	trace_dma_mark_dirty(pfn, nr_pages, path);
	READ_ONCE(dma_dirty_backend)->mark(pfn, nr_pages);
}
EXPORT_SYMBOL_GPL(__dma_mark_dirty);

/*
 * Make @backend the active one and return the previous one.  Switching to
 * "off" disables the hooks; switching away from it enables them.  The boot
 * code and the KUnit tests are the only callers.
 */
VISIBLE_IF_KUNIT const struct dma_dirty_backend *
dma_dirty_switch(const struct dma_dirty_backend *backend)
{
	const struct dma_dirty_backend *old = dma_dirty_backend;

	if (backend == &dma_dirty_backend_off) {
		static_branch_disable(&dma_mark_dirty_active);
		WRITE_ONCE(dma_dirty_backend, backend);
	} else {
		WRITE_ONCE(dma_dirty_backend, backend);
		static_branch_enable(&dma_mark_dirty_active);
	}
	return old;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_switch);

VISIBLE_IF_KUNIT const struct dma_dirty_backend *dma_dirty_current(void)
{
	return READ_ONCE(dma_dirty_backend);
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_current);

VISIBLE_IF_KUNIT void dma_dirty_read_stats(u64 *calls, u64 *pages)
{
	int cpu, i;

	memset(calls, 0, sizeof(u64) * DMA_DIRTY_NR_PATHS);
	memset(pages, 0, sizeof(u64) * DMA_DIRTY_NR_PATHS);
	for_each_possible_cpu(cpu) {
		struct dma_dirty_stats *st = per_cpu_ptr(&dma_dirty_stats, cpu);

		for (i = 0; i < DMA_DIRTY_NR_PATHS; i++) {
			calls[i] += READ_ONCE(st->calls[i]);
			pages[i] += READ_ONCE(st->pages[i]);
		}
	}
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_read_stats);

VISIBLE_IF_KUNIT const struct dma_dirty_backend *dma_dirty_find(const char *name)
{
	int i;

	for (i = 0; i < DMA_DIRTY_MAX_BACKENDS && dma_dirty_backends[i]; i++)
		if (!strcmp(dma_dirty_backends[i]->name, name))
			return dma_dirty_backends[i];
	return NULL;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_find);

/**
 * dma_mark_dirty_register - offer a backend for dma_mark_dirty()
 * @backend: the backend, which must stay valid forever
 *
 * Called by hypervisor-specific code during early boot, before the backend
 * is chosen.  "dma_mark_dirty=auto" prefers a registered backend to "touch";
 * "dma_mark_dirty=<name>" selects it by name.
 *
 * Return: 0, -EBUSY once the backend has been chosen, -EEXIST for a name
 * that is already registered, -ENOSPC when the table is full.
 */
int __init dma_mark_dirty_register(const struct dma_dirty_backend *backend)
{
	int i;

	if (WARN_ON(dma_dirty_chosen))
		return -EBUSY;
	if (dma_dirty_find(backend->name))
		return -EEXIST;
	for (i = 0; i < DMA_DIRTY_MAX_BACKENDS; i++) {
		if (!dma_dirty_backends[i]) {
			dma_dirty_backends[i] = backend;
			return 0;
		}
	}
	return -ENOSPC;
}

static int __init dma_dirty_setup(char *str)
{
	if (!str)
		return -EINVAL;
	strscpy(dma_dirty_param, str);
	return 0;
}
early_param("dma_mark_dirty", dma_dirty_setup);

/* The best backend available: a registered one, then touch under a hypervisor. */
static const struct dma_dirty_backend * __init dma_dirty_auto(void)
{
	if (dma_dirty_backends[DMA_DIRTY_NR_BUILTIN])
		return dma_dirty_backends[DMA_DIRTY_NR_BUILTIN];
	if (arch_dma_mark_dirty_guest())
		return &dma_dirty_backend_touch;
	return &dma_dirty_backend_off;
}

/*
 * Runs before any driver sets a DMA mask, so dma_setup_need_sync() sees the
 * final state of the static key.
 */
static int __init dma_mark_dirty_init(void)
{
	const struct dma_dirty_backend *backend;

	if (!strcmp(dma_dirty_param, "auto")) {
		backend = dma_dirty_auto();
	} else {
		backend = dma_dirty_find(dma_dirty_param);
		if (!backend) {
			backend = dma_dirty_auto();
			pr_err("dma_mark_dirty=%s: no such backend here (expected off, touch, kvm or auto), using %s\n",
			       dma_dirty_param, backend->name);
		}
	}
	dma_dirty_chosen = true;
	dma_dirty_switch(backend);
	pr_info("backend %s (dma_mark_dirty=%s)\n", backend->name,
		dma_dirty_param);
	return 0;
}
core_initcall(dma_mark_dirty_init);

#ifdef CONFIG_DEBUG_FS
static const char *const dma_dirty_path_names[DMA_DIRTY_NR_PATHS] = {
	[DMA_DIRTY_DIRECT] = "direct",
	[DMA_DIRTY_IOMMU] = "iommu",
	[DMA_DIRTY_CALLER] = "caller",
	[DMA_DIRTY_SWIOTLB] = "swiotlb",
};

static int dma_dirty_backend_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", dma_dirty_current()->name);
	return 0;
}
DEFINE_SHOW_ATTRIBUTE(dma_dirty_backend);

/* debugfs file data: which counter of which path */
struct dma_dirty_counter {
	enum dma_dirty_path path;
	bool pages;
};

static int dma_dirty_counter_get(void *data, u64 *val)
{
	const struct dma_dirty_counter *c = data;
	u64 calls[DMA_DIRTY_NR_PATHS], pages[DMA_DIRTY_NR_PATHS];

	dma_dirty_read_stats(calls, pages);
	*val = c->pages ? pages[c->path] : calls[c->path];
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dma_dirty_counter_fops, dma_dirty_counter_get, NULL,
			 "%llu\n");

static struct dma_dirty_counter dma_dirty_counters[DMA_DIRTY_NR_PATHS][2];

static int __init dma_mark_dirty_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("dma_mark_dirty", NULL);
	int i, pages;

	debugfs_create_file("backend", 0400, dir, NULL, &dma_dirty_backend_fops);
	for (i = 0; i < DMA_DIRTY_NR_PATHS; i++) {
		for (pages = 0; pages < 2; pages++) {
			struct dma_dirty_counter *c = &dma_dirty_counters[i][pages];
			char name[24];

			c->path = i;
			c->pages = pages;
			snprintf(name, sizeof(name), "%s_%s",
				 pages ? "pages" : "calls", dma_dirty_path_names[i]);
			debugfs_create_file_unsafe(name, 0400, dir, c,
						   &dma_dirty_counter_fops);
		}
	}
	return 0;
}
late_initcall(dma_mark_dirty_debugfs_init);
#endif /* CONFIG_DEBUG_FS */
