/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Internals of kernel/dma/dirty.c shared with its KUnit test.
 */
#ifndef _KERNEL_DMA_DIRTY_H
#define _KERNEL_DMA_DIRTY_H

#include <linux/dma-dirty.h>

#if IS_ENABLED(CONFIG_KUNIT)
bool dma_dirty_span(phys_addr_t phys, size_t size, unsigned long *pfn,
		    unsigned long *nr_pages);
const struct dma_dirty_backend *
dma_dirty_switch(const struct dma_dirty_backend *backend);
const struct dma_dirty_backend *dma_dirty_current(void);
const struct dma_dirty_backend *dma_dirty_find(const char *name);
void dma_dirty_read_stats(u64 *calls, u64 *pages);
#endif

#endif /* _KERNEL_DMA_DIRTY_H */
