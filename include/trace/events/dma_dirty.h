/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dma_dirty

#if !defined(_TRACE_DMA_DIRTY_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_DMA_DIRTY_H

#include <linux/device.h>
#include <linux/dma-map-ops.h>
#include <linux/tracepoint.h>

TRACE_DEFINE_ENUM(DMA_DIRTY_DIRECT);
TRACE_DEFINE_ENUM(DMA_DIRTY_IOMMU);
TRACE_DEFINE_ENUM(DMA_DIRTY_CALLER);

/* One range of RAM handed to the backend, after filtering. */
TRACE_EVENT(dma_mark_dirty,

	TP_PROTO(struct device *dev, phys_addr_t phys, size_t size,
		 enum dma_dirty_path path),

	TP_ARGS(dev, phys, size, path),

	TP_STRUCT__entry(__string(device, dev ? dev_name(dev) : "")
			 __field(u64, phys)
			 __field(size_t, size)
			 __field(int, path)),

	TP_fast_assign(__assign_str(device);
		       __entry->phys = phys;
		       __entry->size = size;
		       __entry->path = path;),

	TP_printk("device=%s phys=0x%llx size=%zu path=%s",
		  __get_str(device), __entry->phys, __entry->size,
		  __print_symbolic(__entry->path,
				   { DMA_DIRTY_DIRECT, "direct" },
				   { DMA_DIRTY_IOMMU, "iommu" },
				   { DMA_DIRTY_CALLER, "caller" }))
);

#endif /* _TRACE_DMA_DIRTY_H */

#include <trace/define_trace.h>
