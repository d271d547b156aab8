// SPDX-License-Identifier: GPL-2.0
/*
 * Marking guest pages written by DMA dirty for live migration.
 *
 * A hypervisor doing pre-copy migration re-sends the pages it saw change,
 * but it does not see a pass-through device writing guest memory.  The DMA
 * API knows when a device may have written a buffer: when the buffer is
 * unmapped or synced for the CPU.  At that point the pages of the buffer
 * are reported to the hypervisor by the active backend:
 *
 *   touch: a locked read-modify-write that does not change the value of
 *          one byte inside the buffer on each page.  A racing CPU store is
 *          never lost, and the write faults or is logged like any other
 *          guest write.
 *   off:   nothing; each hook is one patched-out branch.
 *
 * Paravirtual backends register with dma_mark_dirty_register().  The
 * backend is chosen with dma_mark_dirty= at boot ("auto" takes a registered
 * paravirtual backend, else "off") and can be switched at runtime through
 * debugfs.
 */

#define pr_fmt(fmt) "dma_mark_dirty: " fmt

#include <linux/debugfs.h>
#include <linux/device.h>
#include <linux/dma-dirty.h>
#include <linux/dma-map-ops.h>
#include <linux/highmem.h>
#include <linux/init.h>
#include <linux/instrumented.h>
#include <linux/list.h>
#include <linux/mm.h>
#include <linux/mutex.h>
#include <linux/overflow.h>
#include <linux/percpu.h>
#include <linux/rcupdate.h>
#include <linux/scatterlist.h>
#include <linux/static_call.h>
#include <linux/string.h>
#include <linux/swiotlb.h>
#include <linux/uaccess.h>
#include <asm/dma-dirty.h>
#include <kunit/visibility.h>

#include "dirty.h"

#define CREATE_TRACE_POINTS
#include <trace/events/dma_dirty.h>

EXPORT_TRACEPOINT_SYMBOL_GPL(dma_mark_dirty);

/*
 * Read by the inline DMA API wrappers (dma_sync_single_for_cpu() and
 * others, through dma_dirty_needed()) that every module calls, whatever its
 * licence: exported as the DMA API is.
 */
DEFINE_STATIC_KEY_FALSE(dma_mark_dirty_key);
EXPORT_SYMBOL(dma_mark_dirty_key);

/* Gate of a backend that has none: reports are always needed. */
static const u32 dma_dirty_always = 1;
const u32 *dma_dirty_gate __read_mostly = &dma_dirty_always;
EXPORT_SYMBOL(dma_dirty_gate);

/* Ranges handed to the backend in one call. */
#define DMA_DIRTY_BATCH		16

DEFINE_STATIC_CALL(dma_dirty_mark, dma_dirty_touch);

#ifdef CONFIG_DEBUG_FS
struct dma_dirty_stats {
	u64 calls[DMA_DIRTY_NR_PATHS];
	u64 pages[DMA_DIRTY_NR_PATHS];
	u64 skipped;		/* pages that are not ordinary RAM */
	u64 touch_faults;	/* touches that faulted (read-only page) */
};

static DEFINE_PER_CPU(struct dma_dirty_stats, dma_dirty_stats);

static void dma_dirty_count(enum dma_dirty_path path, unsigned long pages)
{
	this_cpu_inc(dma_dirty_stats.calls[path]);
	this_cpu_add(dma_dirty_stats.pages[path], pages);
}

static void dma_dirty_count_skipped(unsigned long pages)
{
	this_cpu_add(dma_dirty_stats.skipped, pages);
}

static void dma_dirty_count_fault(void)
{
	this_cpu_inc(dma_dirty_stats.touch_faults);
}

VISIBLE_IF_KUNIT void dma_dirty_read_stats(struct dma_dirty_totals *t)
{
	int cpu, i;

	memset(t, 0, sizeof(*t));
	for_each_possible_cpu(cpu) {
		struct dma_dirty_stats *st = per_cpu_ptr(&dma_dirty_stats, cpu);

		for (i = 0; i < DMA_DIRTY_NR_PATHS; i++) {
			t->calls[i] += READ_ONCE(st->calls[i]);
			t->pages[i] += READ_ONCE(st->pages[i]);
		}
		t->skipped += READ_ONCE(st->skipped);
		t->touch_faults += READ_ONCE(st->touch_faults);
	}
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_read_stats);
#else
static inline void dma_dirty_count(enum dma_dirty_path path,
				   unsigned long pages)
{
}

static inline void dma_dirty_count_skipped(unsigned long pages)
{
}

static inline void dma_dirty_count_fault(void)
{
}
#endif /* CONFIG_DEBUG_FS */

/**
 * dma_dirty_touch - mark byte ranges dirty by writing to them
 * @dev: the device that wrote them, for messages
 * @ranges: ranges of RAM, as handed to a backend's mark()
 * @nr: number of ranges
 *
 * The touch backend; also for a paravirtual backend to mark what its
 * hypervisor refused, so that it is not lost.  One byte per page, inside the
 * range (at its start on the first page, at the page start on the others),
 * so nothing outside [phys, phys + size) is accessed.  The access is an
 * atomic read-modify-write of that byte, which is what the instrumentation
 * is told.  A read-only page is counted in touch_faults and warned about
 * once.  Any context.
 */
void dma_dirty_touch(struct device *dev, const struct dma_dirty_range *ranges,
		     unsigned int nr)
{
	unsigned int i;

	for (i = 0; i < nr; i++) {
		phys_addr_t phys = ranges[i].phys;
		unsigned long pfn = PHYS_PFN(phys);
		unsigned long last = PHYS_PFN(phys + ranges[i].size - 1);
		unsigned int offset = offset_in_page(phys);

		for (; pfn <= last; pfn++, offset = 0) {
			u8 *p = (u8 *)kmap_local_pfn(pfn) + offset;

			instrument_atomic_read_write(p, 1);
			if (!arch_dma_dirty_touch(p)) {
				dma_dirty_count_fault();
				pr_warn_once("%s: page 0x%lx is read-only, not marked dirty\n",
					     dev ? dev_name(dev) : "?", pfn);
			}
			kunmap_local(p);
		}
	}
}
EXPORT_SYMBOL_GPL(dma_dirty_touch);

static void dma_dirty_none(struct device *dev,
			   const struct dma_dirty_range *ranges,
			   unsigned int nr)
{
}

static struct dma_dirty_backend dma_dirty_backend_off = {
	.name = "off",
	.mark = dma_dirty_none,
};

static struct dma_dirty_backend dma_dirty_backend_touch = {
	.name = "touch",
	.mark = dma_dirty_touch,
};

/* Registered paravirtual backends, in registration order. */
static LIST_HEAD(dma_dirty_backends);
/* Serialises switching and registration. */
static DEFINE_MUTEX(dma_dirty_lock);
static struct dma_dirty_backend *dma_dirty_backend = &dma_dirty_backend_off;
static char dma_dirty_param[16] = "auto";

/*
 * Compute the pages that [@phys, @phys + @size) touches.  Returns false when
 * there is none: an empty buffer, or one that wraps around the physical
 * address space.
 */
VISIBLE_IF_KUNIT bool dma_dirty_span(phys_addr_t phys, size_t size,
				     unsigned long *pfn, unsigned long *nr_pages)
{
	phys_addr_t last;

	if (!size)
		return false;
	if (check_add_overflow(phys, (phys_addr_t)(size - 1), &last))
		return false;
	*pfn = PHYS_PFN(phys);
	*nr_pages = PHYS_PFN(last) - *pfn + 1;
	return true;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_span);

/*
 * Only ordinary RAM is reported: never a page frame without a memory map
 * (MMIO, holes) nor ZONE_DEVICE memory (P2PDMA BARs, device-private pages).
 */
static bool dma_dirty_pfn_is_ram(unsigned long pfn)
{
	return pfn_valid(pfn) && !is_zone_device_page(pfn_to_page(pfn));
}

struct dma_dirty_batch {
	struct device *dev;
	enum dma_dirty_path path;
	unsigned int nr;
	struct dma_dirty_range ranges[DMA_DIRTY_BATCH];
};

static void dma_dirty_flush(struct dma_dirty_batch *b)
{
	unsigned int i;

	if (!b->nr)
		return;
	if (trace_dma_mark_dirty_enabled())
		for (i = 0; i < b->nr; i++)
			trace_dma_mark_dirty(b->dev, b->ranges[i].phys,
					     b->ranges[i].size, b->path);
	static_call(dma_dirty_mark)(b->dev, b->ranges, b->nr);
	b->nr = 0;
}

static void dma_dirty_add_range(struct dma_dirty_batch *b, phys_addr_t phys,
				size_t size)
{
	struct dma_dirty_range *prev = b->nr ? &b->ranges[b->nr - 1] : NULL;

	if (prev && prev->phys + prev->size == phys) {
		prev->size += size;
		return;
	}
	if (b->nr == DMA_DIRTY_BATCH)
		dma_dirty_flush(b);
	b->ranges[b->nr].phys = phys;
	b->ranges[b->nr].size = size;
	b->nr++;
}

/*
 * Add the RAM parts of [@phys, @phys + @size) to @b, page by page, so that a
 * buffer that runs into non-RAM is cut there and still reported byte-exact.
 * Returns the number of pages added.
 */
static unsigned long dma_dirty_add(struct dma_dirty_batch *b, phys_addr_t phys,
				   size_t size)
{
	unsigned long pfn, nr_pages, added = 0;
	phys_addr_t start = phys;
	size_t len = 0;

	if (!dma_dirty_span(phys, size, &pfn, &nr_pages)) {
		if (size)
			pr_err_once("buffer %pa + %zu wraps around, not marked\n",
				    &phys, size);
		return 0;
	}

	for (; nr_pages; nr_pages--, pfn++) {
		size_t chunk = min_t(u64, size, PAGE_SIZE - offset_in_page(phys));

		if (dma_dirty_pfn_is_ram(pfn)) {
			len += chunk;
			added++;
		} else {
			if (len)
				dma_dirty_add_range(b, start, len);
			start = phys + chunk;
			len = 0;
			dma_dirty_count_skipped(1);
		}
		phys += chunk;
		size -= chunk;
	}
	if (len)
		dma_dirty_add_range(b, start, len);
	return added;
}

static void dma_dirty_batch_init(struct dma_dirty_batch *b,
				 struct device *dev, enum dma_dirty_path path)
{
	b->dev = dev;
	b->path = path;
	b->nr = 0;
}

static void dma_dirty_report(struct device *dev, phys_addr_t phys,
			     size_t size, enum dma_dirty_path path)
{
	struct dma_dirty_batch b;

	dma_dirty_batch_init(&b, dev, path);
	/* A switch of backend waits for reports in flight (__dma_dirty_switch) */
	rcu_read_lock();
	dma_dirty_count(path, dma_dirty_add(&b, phys, size));
	dma_dirty_flush(&b);
	rcu_read_unlock();
}

/**
 * __dma_dirty_mapped - report a buffer a device may have written
 * @dev: the device
 * @phys: CPU physical address the device wrote, through the mapping
 * @size: length in bytes
 * @path: the DMA-mapping layer reporting
 *
 * For the DMA-mapping layers, through dma_dirty_mapped().  A swiotlb bounce
 * slot is only counted: swiotlb copies it to the original buffer with the
 * CPU, a write the hypervisor already tracks, and the slot is dead once
 * unmapped.
 */
void __dma_dirty_mapped(struct device *dev, phys_addr_t phys, size_t size,
			enum dma_dirty_path path)
{
	unsigned long pfn, nr_pages;

	if (swiotlb_find_pool(dev, phys)) {
		if (dma_dirty_span(phys, size, &pfn, &nr_pages))
			dma_dirty_count(DMA_DIRTY_SWIOTLB, nr_pages);
		return;
	}
	dma_dirty_report(dev, phys, size, path);
}

/**
 * __dma_dirty_mapped_sg - report the entries of a scatterlist
 * @dev: the device
 * @sgl: the scatterlist, its CPU side (sg_phys(), ->length) describing the
 *	buffers: it was not bounced
 * @nents: number of entries
 * @path: the DMA-mapping layer reporting
 *
 * One batch of ranges for the whole list; entries that are not RAM (P2PDMA
 * pages) are left out.
 */
void __dma_dirty_mapped_sg(struct device *dev, struct scatterlist *sgl,
			   int nents, enum dma_dirty_path path)
{
	struct dma_dirty_batch b;
	struct scatterlist *sg;
	unsigned long pages = 0;
	int i;

	dma_dirty_batch_init(&b, dev, path);
	rcu_read_lock();
	for_each_sg(sgl, sg, nents, i)
		pages += dma_dirty_add(&b, sg_phys(sg), sg->length);
	dma_dirty_count(path, pages);
	dma_dirty_flush(&b);
	rcu_read_unlock();
}

/**
 * __dma_mark_dirty - report a buffer for dma_mark_dirty()
 * @dev: the device that wrote it
 * @phys: CPU physical address
 * @size: length in bytes
 *
 * Called by dma_mark_dirty() once dma_dirty_needed() said so.
 */
void __dma_mark_dirty(struct device *dev, phys_addr_t phys, size_t size)
{
	dma_dirty_report(dev, phys, size, DMA_DIRTY_CALLER);
}
EXPORT_SYMBOL_GPL(__dma_mark_dirty);

/* Must hold dma_dirty_lock. */
static void __dma_dirty_switch(struct dma_dirty_backend *backend)
{
	struct dma_dirty_backend *old = dma_dirty_backend;

	if (backend == old)
		return;
	if (backend == &dma_dirty_backend_off) {
		static_branch_disable(&dma_mark_dirty_key);
		/* for callers that passed the key and have not reported yet */
		static_call_update(dma_dirty_mark, dma_dirty_none);
	} else {
		static_call_update(dma_dirty_mark, backend->mark);
		WRITE_ONCE(dma_dirty_gate, backend->gate ?: &dma_dirty_always);
		static_branch_enable(&dma_mark_dirty_key);
	}
	WRITE_ONCE(dma_dirty_backend, backend);
	/*
	 * The static key and the static call are patched on every CPU by now;
	 * wait for the reports that started with the old backend, so that
	 * the switch is complete everywhere when this returns.
	 */
	synchronize_rcu();
}

/* Must hold dma_dirty_lock. */
static struct dma_dirty_backend *__dma_dirty_find(const char *name)
{
	struct dma_dirty_backend *b;

	if (!strcmp(name, dma_dirty_backend_off.name))
		return &dma_dirty_backend_off;
	if (!strcmp(name, dma_dirty_backend_touch.name))
		return &dma_dirty_backend_touch;
	list_for_each_entry(b, &dma_dirty_backends, list)
		if (!strcmp(b->name, name))
			return b;
	return NULL;
}

#if IS_ENABLED(CONFIG_KUNIT)
/*
 * Make @backend the active one and return the previous one.  When this
 * returns, no CPU reports through the previous backend any longer.
 */
struct dma_dirty_backend *dma_dirty_switch(struct dma_dirty_backend *backend)
{
	struct dma_dirty_backend *old;

	mutex_lock(&dma_dirty_lock);
	old = dma_dirty_backend;
	__dma_dirty_switch(backend);
	mutex_unlock(&dma_dirty_lock);
	return old;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_switch);

struct dma_dirty_backend *dma_dirty_current(void)
{
	return READ_ONCE(dma_dirty_backend);
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_current);

struct dma_dirty_backend *dma_dirty_find(const char *name)
{
	struct dma_dirty_backend *b;

	mutex_lock(&dma_dirty_lock);
	b = __dma_dirty_find(name);
	mutex_unlock(&dma_dirty_lock);
	return b;
}
EXPORT_SYMBOL_IF_KUNIT(dma_dirty_find);
#endif /* CONFIG_KUNIT */

/* What "auto" means: the first paravirtual backend registered, else off. */
static struct dma_dirty_backend *__dma_dirty_auto(void)
{
	return list_first_entry_or_null(&dma_dirty_backends,
					struct dma_dirty_backend, list) ?:
	       &dma_dirty_backend_off;
}

/**
 * dma_mark_dirty_register - offer a paravirtual backend for dma_mark_dirty()
 * @backend: the backend, which must stay valid forever
 *
 * Called by hypervisor-specific code once it knows that the hypervisor
 * offers the interface.  The backend becomes active at once if the boot
 * parameter names it, or is "auto" and no other paravirtual backend is
 * registered; otherwise it can be selected through debugfs.
 *
 * Context: process context, may sleep.
 * Return: 0, or -EEXIST for a name that is already taken.
 */
int dma_mark_dirty_register(struct dma_dirty_backend *backend)
{
	int ret = 0;

	mutex_lock(&dma_dirty_lock);
	if (__dma_dirty_find(backend->name)) {
		ret = -EEXIST;
		goto out;
	}
	list_add_tail(&backend->list, &dma_dirty_backends);
	if (!strcmp(dma_dirty_param, backend->name) ||
	    (!strcmp(dma_dirty_param, "auto") &&
	     __dma_dirty_auto() == backend)) {
		pr_info("backend %s registered and selected (dma_mark_dirty=%s)\n",
			backend->name, dma_dirty_param);
		__dma_dirty_switch(backend);
	}
out:
	mutex_unlock(&dma_dirty_lock);
	return ret;
}

static int __init dma_dirty_setup(char *str)
{
	if (!str)
		return -EINVAL;
	strscpy(dma_dirty_param, str);
	return 0;
}
early_param("dma_mark_dirty", dma_dirty_setup);

/*
 * Before any driver maps a buffer, so that every mapping made while a
 * backend is wanted is reported.
 */
static int __init dma_mark_dirty_init(void)
{
	struct dma_dirty_backend *backend;

	mutex_lock(&dma_dirty_lock);
	/* A name no backend has (yet: they register later) means auto. */
	backend = __dma_dirty_find(dma_dirty_param) ?: __dma_dirty_auto();
	__dma_dirty_switch(backend);
	mutex_unlock(&dma_dirty_lock);
	pr_info("backend %s (dma_mark_dirty=%s)\n", backend->name,
		dma_dirty_param);
	return 0;
}
core_initcall(dma_mark_dirty_init);

/* Once every built-in backend had its chance to register. */
static int __init dma_mark_dirty_check_param(void)
{
	struct dma_dirty_backend *backend;

	mutex_lock(&dma_dirty_lock);
	if (strcmp(dma_dirty_param, "auto") &&
	    !__dma_dirty_find(dma_dirty_param)) {
		backend = __dma_dirty_auto();
		pr_err("dma_mark_dirty=%s: no such backend (expected off, touch, auto or a registered one), using %s\n",
		       dma_dirty_param, backend->name);
		__dma_dirty_switch(backend);
	}
	mutex_unlock(&dma_dirty_lock);
	return 0;
}
late_initcall_sync(dma_mark_dirty_check_param);

#ifdef CONFIG_DEBUG_FS
static const char *const dma_dirty_path_names[DMA_DIRTY_NR_PATHS] = {
	[DMA_DIRTY_DIRECT] = "direct",
	[DMA_DIRTY_IOMMU] = "iommu",
	[DMA_DIRTY_CALLER] = "caller",
	[DMA_DIRTY_SWIOTLB] = "swiotlb",
};

static int dma_dirty_backend_show(struct seq_file *m, void *v)
{
	seq_printf(m, "%s\n", READ_ONCE(dma_dirty_backend)->name);
	return 0;
}

static int dma_dirty_backend_open(struct inode *inode, struct file *file)
{
	return single_open(file, dma_dirty_backend_show, NULL);
}

/* Switch backends at runtime: write a backend's name. */
static ssize_t dma_dirty_backend_write(struct file *file,
				       const char __user *ubuf, size_t count,
				       loff_t *ppos)
{
	struct dma_dirty_backend *backend;
	char name[sizeof(dma_dirty_param)];

	if (!count || count >= sizeof(name))
		return -EINVAL;
	if (copy_from_user(name, ubuf, count))
		return -EFAULT;
	name[count] = '\0';
	strim(name);

	mutex_lock(&dma_dirty_lock);
	backend = __dma_dirty_find(name);
	if (backend) {
		pr_info("backend %s (was %s), switched in debugfs\n",
			backend->name, dma_dirty_backend->name);
		__dma_dirty_switch(backend);
	}
	mutex_unlock(&dma_dirty_lock);
	return backend ? count : -EINVAL;
}

static const struct file_operations dma_dirty_backend_fops = {
	.owner = THIS_MODULE,
	.open = dma_dirty_backend_open,
	.read = seq_read,
	.llseek = seq_lseek,
	.release = single_release,
	.write = dma_dirty_backend_write,
};

/*
 * Whether unmaps and syncs for the CPU report now: a backend is active and
 * its gate is open.  A paravirtual backend's gate can change at any time.
 */
static int dma_dirty_reporting_get(void *data, u64 *val)
{
	*val = dma_dirty_needed(DMA_FROM_DEVICE);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dma_dirty_reporting_fops, dma_dirty_reporting_get,
			 NULL, "%llu\n");

/* debugfs file data: where the counter is in struct dma_dirty_totals */
static int dma_dirty_counter_get(void *data, u64 *val)
{
	struct dma_dirty_totals t;

	dma_dirty_read_stats(&t);
	*val = *(u64 *)((char *)&t + (uintptr_t)data);
	return 0;
}
DEFINE_DEBUGFS_ATTRIBUTE(dma_dirty_counter_fops, dma_dirty_counter_get, NULL,
			 "%llu\n");

static void __init dma_dirty_counter_file(struct dentry *dir, const char *name,
					  size_t offset)
{
	debugfs_create_file_unsafe(name, 0400, dir, (void *)offset,
				   &dma_dirty_counter_fops);
}

static int __init dma_mark_dirty_debugfs_init(void)
{
	struct dentry *dir = debugfs_create_dir("dma_mark_dirty", NULL);
	char name[24];
	int i;

	debugfs_create_file("backend", 0600, dir, NULL, &dma_dirty_backend_fops);
	debugfs_create_file_unsafe("reporting", 0400, dir, NULL,
				   &dma_dirty_reporting_fops);
	for (i = 0; i < DMA_DIRTY_NR_PATHS; i++) {
		snprintf(name, sizeof(name), "calls_%s", dma_dirty_path_names[i]);
		dma_dirty_counter_file(dir, name,
				       offsetof(struct dma_dirty_totals, calls[i]));
		snprintf(name, sizeof(name), "pages_%s", dma_dirty_path_names[i]);
		dma_dirty_counter_file(dir, name,
				       offsetof(struct dma_dirty_totals, pages[i]));
	}
	dma_dirty_counter_file(dir, "pages_skipped",
			       offsetof(struct dma_dirty_totals, skipped));
	dma_dirty_counter_file(dir, "touch_faults",
			       offsetof(struct dma_dirty_totals, touch_faults));
	return 0;
}
late_initcall(dma_mark_dirty_debugfs_init);
#endif /* CONFIG_DEBUG_FS */
