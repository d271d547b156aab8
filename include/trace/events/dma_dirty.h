/* SPDX-License-Identifier: GPL-2.0 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM dma_dirty

#if !defined(_TRACE_DMA_DIRTY_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_DMA_DIRTY_H

#include <linux/dma-dirty.h>
#include <linux/tracepoint.h>

TRACE_DEFINE_ENUM(DMA_DIRTY_DIRECT);
TRACE_DEFINE_ENUM(DMA_DIRTY_IOMMU);
TRACE_DEFINE_ENUM(DMA_DIRTY_CALLER);

TRACE_EVENT(dma_mark_dirty,

	TP_PROTO(unsigned long pfn, unsigned long nr_pages,
		 enum dma_dirty_path path),

	TP_ARGS(pfn, nr_pages, path),

	TP_STRUCT__entry(__field(unsigned long, pfn)
			 __field(unsigned long, nr_pages)
			 __field(int, path)),

	TP_fast_assign(__entry->pfn = pfn;
		       __entry->nr_pages = nr_pages;
		       __entry->path = path;),

	TP_printk("pfn=0x%lx nr_pages=%lu path=%s",
		  __entry->pfn, __entry->nr_pages,
		  __print_symbolic(__entry->path,
				   { DMA_DIRTY_DIRECT, "direct" },
				   { DMA_DIRTY_IOMMU, "iommu" },
				   { DMA_DIRTY_CALLER, "caller" }))
);

#endif /* _TRACE_DMA_DIRTY_H */

#include <trace/define_trace.h>
