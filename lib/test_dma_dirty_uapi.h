/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * Interface between lib/test_dma_dirty.c and its kselftest,
 * tools/testing/selftests/dma_dirty/dma_dirty_test.c.
 *
 * Each TEST_DMA_DIRTY_RUN maps a fresh buffer of TDD_BUF_PAGES pages with
 * the real DMA API on the bound device, plays the device's part (writes
 * through the DMA address, wherever it leads), gives the buffer back to the
 * CPU the way the operation says, and returns how many times each page of
 * the buffer was reported by dma_mark_dirty().  Page 0 and the last page
 * are guards that no operation may reach.
 */
#ifndef _LIB_TEST_DMA_DIRTY_UAPI_H
#define _LIB_TEST_DMA_DIRTY_UAPI_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define TDD_BUF_PAGES		8
#define TDD_DATA_PAGE		1	/* offsets count from this page */
#define TDD_MAX_SEGS		4
#define TDD_MAX_REPS		64

enum tdd_op {
	TDD_MAP_SINGLE,		/* dma_map_single(), dma_unmap_single_attrs() */
	TDD_MAP_PAGE,		/* dma_map_page_attrs(), dma_unmap_page_attrs() */
	TDD_MAP_SG,		/* dma_map_sg_attrs(), dma_unmap_sg_attrs() */
	/* map, @reps x (device write, sync range for CPU and device), unmap */
	TDD_SYNC_SINGLE,
	/* map sg, @reps x (device write, sync sg for CPU and device), unmap */
	TDD_SYNC_SG,
	TDD_MAP_RESOURCE,	/* dma_map_resource(), dma_unmap_resource() */
	/*
	 * map, @reps x (device write, then sync range for CPU and device if
	 * dma_need_sync() says so, which it reports in @need_sync), unmap
	 */
	TDD_NEED_SYNC,
	TDD_NR_OPS,
};

/* Direction values are those of enum dma_data_direction. */
#define TDD_DIR_BIDIRECTIONAL	0
#define TDD_DIR_TO_DEVICE	1
#define TDD_DIR_FROM_DEVICE	2

#define TDD_UNMAP_SKIP_CPU_SYNC	0x1	/* DMA_ATTR_SKIP_CPU_SYNC */

/* How the device reached memory: reported back in tdd_cmd.path */
#define TDD_PATH_DIRECT		0
#define TDD_PATH_IOMMU		1

struct tdd_seg {
	__u32 offset;		/* from the start of page TDD_DATA_PAGE */
	__u32 len;
};

struct tdd_cmd {
	/* in */
	__u32 op;		/* enum tdd_op */
	__u32 dir;
	__u32 flags;		/* TDD_UNMAP_* */
	__u32 nsegs;		/* 1 unless TDD_MAP_SG / TDD_SYNC_SG */
	struct tdd_seg seg[TDD_MAX_SEGS];
	struct tdd_seg sync;	/* TDD_SYNC_SINGLE: range within seg[0] */
	__u32 reps;		/* TDD_SYNC_*: number of syncs */
	/* out */
	__u32 reported[TDD_BUF_PAGES];	/* reports per page */
	__u32 path;		/* TDD_PATH_* */
	__u32 bounced;		/* mappings that went through swiotlb */
	__u32 bounced_segs;	/* sg: bit n set when seg[n] was bounced */
	__u32 mappings;		/* mappings made (sg: mapped segments) */
	__u32 data_ok;		/* the CPU saw every byte the device wrote */
	__u32 need_sync;	/* TDD_NEED_SYNC: what dma_need_sync() said */
	__u32 api_debug;	/* CONFIG_DMA_API_DEBUG: every sync is made */
};

#define TEST_DMA_DIRTY_RUN	_IOWR('D', 0x60, struct tdd_cmd)

#endif /* _LIB_TEST_DMA_DIRTY_UAPI_H */
