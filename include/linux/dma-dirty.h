/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Marking guest pages written by DMA dirty, so that a hypervisor migrating
 * the guest re-sends them although it never saw the device write them.
 *
 * This is the driver-facing part.  The DMA-mapping layers use the helpers
 * in <linux/dma-map-ops.h>; backends register through
 * dma_mark_dirty_register() (kernel/dma/dirty.c).
 */
#ifndef _LINUX_DMA_DIRTY_H
#define _LINUX_DMA_DIRTY_H

#include <linux/compiler.h>
#include <linux/dma-direction.h>
#include <linux/jump_label.h>
#include <linux/types.h>

struct device;

/* Only a device write can make a page dirty: never for DMA_TO_DEVICE. */
static inline bool dma_dirty_dir(enum dma_data_direction dir)
{
	return dir == DMA_FROM_DEVICE || dir == DMA_BIDIRECTIONAL;
}

#ifdef CONFIG_DMA_MARK_DIRTY
/* The DMA API's own: not for drivers, which call dma_mark_dirty(). */
DECLARE_STATIC_KEY_FALSE(dma_mark_dirty_key);
extern const u32 *dma_dirty_gate;

/*
 * True while a backend other than "off" is active.  While it is false, each
 * hook in the DMA API costs one patched-out branch.
 */
static inline bool dma_mark_dirty_enabled(void)
{
	return static_branch_unlikely(&dma_mark_dirty_key);
}

/*
 * Whether a buffer a device had mapped with @dir must be reported now: a
 * patched-out branch while the backend is off; otherwise the backend's gate,
 * two dependent loads (the pointer, then the word it points to), which a
 * paravirtual backend keeps at 0 while the host does not log dirty pages.
 * Checked before any other work, such as a page-table walk to find the
 * buffer.
 */
static inline bool dma_dirty_needed(enum dma_data_direction dir)
{
	return dma_mark_dirty_enabled() && dma_dirty_dir(dir) &&
	       READ_ONCE(*READ_ONCE(dma_dirty_gate));
}

void __dma_mark_dirty(struct device *dev, phys_addr_t phys, size_t size);
#else
static inline bool dma_mark_dirty_enabled(void)
{
	return false;
}

static inline bool dma_dirty_needed(enum dma_data_direction dir)
{
	return false;
}

static inline void __dma_mark_dirty(struct device *dev, phys_addr_t phys,
				    size_t size)
{
}
#endif /* CONFIG_DMA_MARK_DIRTY */

/**
 * dma_mark_dirty - mark the pages of a DMA buffer dirty
 * @dev: the device that wrote the buffer
 * @phys: CPU physical address of the buffer
 * @size: length of the buffer in bytes
 * @dir: DMA direction the buffer was mapped with
 *
 * Marks every page that [@phys, @phys + @size) touches dirty for the
 * hypervisor, partial first and last pages included, if @dir lets the device
 * write (%DMA_FROM_DEVICE or %DMA_BIDIRECTIONAL).  The report is made before
 * this function returns.  Pages that are not ordinary RAM (no memory map,
 * ZONE_DEVICE) are never reported.
 *
 * The DMA-mapping layers already do this on unmap and on sync for the CPU of
 * every streaming mapping; a driver only needs it for memory the device
 * writes outside the streaming DMA API.
 *
 * Context: any context but NMI; does not sleep.
 */
static inline void dma_mark_dirty(struct device *dev, phys_addr_t phys,
				  size_t size, enum dma_data_direction dir)
{
	if (dma_dirty_needed(dir))
		__dma_mark_dirty(dev, phys, size);
}

#endif /* _LINUX_DMA_DIRTY_H */
