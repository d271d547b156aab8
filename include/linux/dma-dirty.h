/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Marking guest pages written by DMA dirty, so that a hypervisor migrating
 * the guest re-sends them although it never saw the device write them.
 */
#ifndef _LINUX_DMA_DIRTY_H
#define _LINUX_DMA_DIRTY_H

#include <linux/dma-direction.h>
#include <linux/errno.h>
#include <linux/jump_label.h>
#include <linux/swiotlb.h>
#include <linux/types.h>

/**
 * struct dma_dirty_backend - a way of telling the hypervisor about DMA writes
 * @name: name used by the dma_mark_dirty= boot parameter and in debugfs
 * @mark: report @nr_pages pages starting at @pfn as written.  Called before
 *	the unmap or sync that wrote them returns, in any context the DMA API
 *	may be called in, so it must not sleep.
 */
struct dma_dirty_backend {
	const char *name;
	void (*mark)(unsigned long pfn, unsigned long nr_pages);
};

/* Which DMA-mapping layer a report came from, for the debugfs counters. */
enum dma_dirty_path {
	DMA_DIRTY_DIRECT,	/* dma-direct */
	DMA_DIRTY_IOMMU,	/* dma-iommu */
	DMA_DIRTY_CALLER,	/* dma_mark_dirty() called by a driver */
	DMA_DIRTY_SWIOTLB,	/* a bounce slot: counted, never reported */
	DMA_DIRTY_NR_PATHS,
};

#ifdef CONFIG_DMA_MARK_DIRTY
DECLARE_STATIC_KEY_FALSE(dma_mark_dirty_active);

/*
 * True while a backend is active.  While it is false, the hooks in the DMA
 * API cost one patched-out branch.
 */
static inline bool dma_mark_dirty_enabled(void)
{
	return static_branch_unlikely(&dma_mark_dirty_active);
}

void __dma_mark_dirty(phys_addr_t phys, size_t size, enum dma_dirty_path path);
int dma_mark_dirty_register(const struct dma_dirty_backend *backend);
#else
static inline bool dma_mark_dirty_enabled(void)
{
	return false;
}

static inline void __dma_mark_dirty(phys_addr_t phys, size_t size,
				    enum dma_dirty_path path)
{
}

static inline int dma_mark_dirty_register(const struct dma_dirty_backend *backend)
{
	return -EOPNOTSUPP;
}
#endif /* CONFIG_DMA_MARK_DIRTY */

/* Only a device write can make a page dirty: never for DMA_TO_DEVICE. */
static inline bool dma_dirty_dir(enum dma_data_direction dir)
{
	return dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL;
}

/**
 * dma_mark_dirty - mark the pages of a DMA buffer dirty
 * @phys: CPU physical address of the buffer
 * @size: length of the buffer in bytes
 * @dir: DMA direction the buffer was mapped with
 *
 * Marks every page that [@phys, @phys + @size) touches dirty for the
 * hypervisor, partial first and last pages included, if @dir lets the device
 * write (%DMA_FROM_DEVICE or %DMA_BIDIRECTIONAL).  The report is made before
 * this function returns.  The DMA-mapping layers call it on unmap and on
 * sync for the CPU; a driver only needs it for memory the device writes
 * outside the streaming DMA API.  @phys must be RAM, not MMIO.
 */
static inline void dma_mark_dirty(phys_addr_t phys, size_t size,
				  enum dma_data_direction dir)
{
	if (dma_mark_dirty_enabled() && dma_dirty_dir(dir))
		__dma_mark_dirty(phys, size, DMA_DIRTY_CALLER);
}

/*
 * For the DMA-mapping layers: a device may have written the buffer that the
 * CPU sees at @phys.  A swiotlb bounce slot is only counted: swiotlb copies
 * it to the original buffer with the CPU, a write the hypervisor already
 * tracks, and the slot is dead once unmapped.
 */
static inline void dma_mark_dirty_mapped(struct device *dev, phys_addr_t phys,
					 size_t size,
					 enum dma_data_direction dir,
					 enum dma_dirty_path path)
{
	if (dma_mark_dirty_enabled() && dma_dirty_dir(dir))
		__dma_mark_dirty(phys, size, swiotlb_find_pool(dev, phys) ?
				 DMA_DIRTY_SWIOTLB : path);
}

#endif /* _LINUX_DMA_DIRTY_H */
