/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals of kernel/dma/dirty.c shared with its KUnit test.
 */
#ifndef _KERNEL_DMA_DIRTY_H
#define _KERNEL_DMA_DIRTY_H

#include <linux/dma-map-ops.h>

/* The debugfs counters, summed over CPUs. */
struct dma_dirty_totals {
	u64 calls[DMA_DIRTY_NR_PATHS];
	u64 pages[DMA_DIRTY_NR_PATHS];
	u64 skipped;
	u64 touch_faults;
};

#if IS_ENABLED(CONFIG_KUNIT)
bool dma_dirty_span(phys_addr_t phys, size_t size, unsigned long *pfn,
		    unsigned long *nr_pages);
struct dma_dirty_backend *dma_dirty_switch(struct dma_dirty_backend *backend);
struct dma_dirty_backend *dma_dirty_current(void);
struct dma_dirty_backend *dma_dirty_find(const char *name);
#ifdef CONFIG_DEBUG_FS
void dma_dirty_read_stats(struct dma_dirty_totals *t);
#endif
#endif

#endif /* _KERNEL_DMA_DIRTY_H */
