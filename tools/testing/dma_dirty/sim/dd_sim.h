/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * The simulated pass-through device: register and descriptor layout.
 *
 * This file is the one definition both sides follow: the guest driver
 * (tools/testing/dma_dirty/sim/dd_sim_drv.c) and the host simulator
 * (tools/testing/dma_dirty/sim/dd_sim.c), plus the migration runner
 * (dd_migrate.py), which reads and writes the same offsets.
 *
 * The registers are the first bytes of BAR 2 of a QEMU ivshmem-plain device,
 * a file under /dev/shm that the simulator and the runner map too.  All
 * fields are little-endian.  The simulator writes payloads straight into the
 * guest's RAM file (QEMU memory-backend-file, share=on; on q35 below 2 GiB,
 * guest physical address == file offset), which QEMU's dirty tracking never
 * sees: that is the DMA of a pass-through device.
 *
 * The simulator has no IOMMU of its own.  Each descriptor carries both the
 * DMA address the driver got from the DMA API (an IOVA when the guest runs
 * dma-iommu) and the guest physical address that DMA address translates to,
 * which the driver looks up in its IOMMU domain; the simulator writes the
 * physical address, as an IOMMU-translated device's write would land.
 *
 * Who writes what:
 *   runner    -> ctrl
 *   guest     -> state, prod, descriptors, the statistics
 *   simulator -> magic, cons, heartbeat, descriptor status
 */
#ifndef _DD_SIM_H
#define _DD_SIM_H

#include <linux/types.h>

#define DD_SIM_MAGIC		0x4d534444	/* "DDSM" */
#define DD_SIM_VERSION		2
#define DD_SIM_RING		64		/* descriptors, a power of 2 */

/* ctrl bits, set by the runner */
#define DD_CTRL_RUN		(1u << 0)	/* post buffers */
#define DD_CTRL_QUIESCE		(1u << 1)	/* stop posting, unmap, ack */
#define DD_CTRL_VERIFY		(1u << 2)	/* check every kept buffer */
#define DD_CTRL_UNPLUG		(1u << 3)	/* stop posting, ask to be unplugged */

/* state values, set by the guest driver */
#define DD_STATE_ABSENT		0	/* no driver bound yet */
#define DD_STATE_READY		1	/* bound, pool written by the CPU */
#define DD_STATE_RUNNING	2
#define DD_STATE_QUIESCED	3	/* no DMA in flight any more */
#define DD_STATE_VERIFIED	4
#define DD_STATE_ERROR		5	/* the device did not complete */
#define DD_STATE_UNPLUG		6	/* stopped; user space, unplug me */
#define DD_STATE_REMOVED	7	/* removed: everything unmapped */

/* descriptor status, set by the simulator */
#define DD_DESC_POSTED		1
#define DD_DESC_DONE		2
#define DD_DESC_BAD		3		/* outside guest RAM */

/*
 * Buffer classes: how the driver hands a buffer the device wrote back to
 * the CPU.  The driver keeps DD_POOL_<class> buffers of each.
 *
 * TRACKED: streaming, mapped DMA_FROM_DEVICE or DMA_BIDIRECTIONAL for each
 *	receive and unmapped afterwards: the unmap reports the pages.
 * LONG: long-lived, mapped once at probe and never unmapped while the
 *	device runs, synced for the device before and for the CPU after each
 *	receive (the page_pool RX pattern): the sync for the CPU reports them.
 * CONTROL: written by the device, reported by nothing, on purpose: half
 *	are streaming buffers mapped DMA_TO_DEVICE (the driver lies about the
 *	direction), half are long-lived DMA_FROM_DEVICE mappings never synced
 *	for the CPU.  They must arrive corrupted whatever the backend does,
 *	which shows that the run exercised the hazard the tracked classes are
 *	cured of.
 */
#define DD_CLASS_TRACKED	0
#define DD_CLASS_LONG		1
#define DD_CLASS_CONTROL	2
#define DD_NR_CLASSES		3

#define DD_POOL_TRACKED		192
#define DD_POOL_LONG		64
#define DD_POOL_CONTROL		64
#define DD_POOL			(DD_POOL_TRACKED + DD_POOL_LONG + DD_POOL_CONTROL)

struct dd_desc {
	__u64 addr;		/* DMA address (an IOVA behind an IOMMU) */
	__u64 phys;		/* guest physical address @addr maps to */
	__u32 len;		/* never crosses a page boundary */
	__u32 seq;		/* the buffer's sequence number */
	__u32 buf_off;		/* offset of this segment in the buffer */
	__u32 status;
};

/* Statistics of one buffer class, written by the guest driver. */
struct dd_class_stats {
	__u64 received;		/* buffers received */
	__u64 kept;		/* buffers holding received data now */
	__u64 verified;		/* VERIFY: buffers checked */
	__u64 corrupted;	/* VERIFY: buffers not holding their payload */
};

struct dd_regs {
	__u32 magic;		/* simulator, once attached */
	__u32 version;
	__u32 ctrl;		/* DD_CTRL_* */
	__u32 state;		/* DD_STATE_* */
	__u32 prod;		/* descriptors posted (free-running) */
	__u32 cons;		/* descriptors completed (free-running) */
	__u32 heartbeat;	/* simulator loop count */
	__u32 pad;
	__u64 received;		/* buffers received, all classes */
	__u64 kept;		/* buffers holding kept data now */
	__u64 verified;		/* VERIFY: buffers checked */
	__u64 corrupted;	/* VERIFY: buffers not holding their payload */
	__u64 bytes;		/* bytes received */
	__u64 rx_bad;		/* buffers not holding their payload on receipt */
	__u64 remapped;		/* descriptors whose addr != phys (an IOMMU) */
	__u64 reserved[5];
	struct dd_class_stats cls[DD_NR_CLASSES];
	struct dd_desc ring[DD_SIM_RING];
};

/*
 * The payload the device writes: word i (4 bytes, at byte offset 4 * i of
 * the buffer) of buffer @seq.  Deterministic, so both sides can check it,
 * and different for every sequence number.
 */
static inline __u32 dd_payload(__u32 seq, __u32 i)
{
	__u32 x = seq * 0x9e3779b1u ^ (i + 1) * 0x85ebca6bu;

	x ^= x >> 15;
	x *= 0x2c1b3c6du;
	x ^= x >> 12;
	return x;
}

#endif /* _DD_SIM_H */
