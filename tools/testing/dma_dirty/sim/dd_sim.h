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
 * Who writes what:
 *   runner    -> ctrl
 *   guest     -> state, prod, descriptors, the statistics
 *   simulator -> magic, cons, heartbeat, descriptor status
 */
#ifndef _DD_SIM_H
#define _DD_SIM_H

#include <linux/types.h>

#define DD_SIM_MAGIC		0x4d534444	/* "DDSM" */
#define DD_SIM_VERSION		1
#define DD_SIM_RING		64		/* descriptors, a power of 2 */

/* ctrl bits, set by the runner */
#define DD_CTRL_RUN		(1u << 0)	/* post buffers */
#define DD_CTRL_QUIESCE		(1u << 1)	/* stop posting, unmap, ack */
#define DD_CTRL_VERIFY		(1u << 2)	/* check every kept buffer */

/* state values, set by the guest driver */
#define DD_STATE_ABSENT		0	/* no driver bound yet */
#define DD_STATE_READY		1	/* bound, pool written by the CPU */
#define DD_STATE_RUNNING	2
#define DD_STATE_QUIESCED	3	/* nothing mapped any more */
#define DD_STATE_VERIFIED	4
#define DD_STATE_ERROR		5	/* the device did not complete */

/* descriptor status, set by the simulator */
#define DD_DESC_POSTED		1
#define DD_DESC_DONE		2
#define DD_DESC_BAD		3		/* outside guest RAM */

struct dd_desc {
	__u64 addr;		/* DMA address == guest physical address */
	__u32 len;
	__u32 seq;		/* the buffer's sequence number */
	__u32 buf_off;		/* offset of this segment in the buffer */
	__u32 status;
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
	__u64 received;		/* buffers received and kept */
	__u64 kept;		/* buffers holding kept data now */
	__u64 verified;		/* VERIFY: buffers checked */
	__u64 corrupted;	/* VERIFY: buffers whose checksum differs */
	__u64 bytes;		/* bytes received */
	__u64 reserved[7];
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
