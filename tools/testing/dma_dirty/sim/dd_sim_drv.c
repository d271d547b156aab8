// SPDX-License-Identifier: GPL-2.0
/*
 * Guest driver for the simulated pass-through device (dd_sim.h).
 *
 * Binds to a QEMU ivshmem-plain device through driver_override.  At probe
 * it allocates a pool of buffers and writes them with the CPU, before any
 * migration starts.  Once the runner sets DD_CTRL_RUN, it fills them only by
 * DMA, over and over, as an RX ring or the page cache reuses memory: map
 * (single or scatterlist, DMA_FROM_DEVICE or DMA_BIDIRECTIONAL), post,
 * wait for the device, unmap, then keep the data with a checksum computed
 * at receive time, as the page cache keeps data read from a disk.  On
 * DD_CTRL_VERIFY it checks every kept buffer against its checksum and
 * reports how many differ.  DD_CTRL_QUIESCE, and removal, stop the device
 * with nothing left mapped.  Only the DMA API is used.
 */

#include <linux/crc32.h>
#include <linux/delay.h>
#include <linux/dma-mapping.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>

#include "dd_sim.h"

#define DD_POOL		192
#define DD_MAX_PAGES	16
#define DD_TIMEOUT_MS	2000

struct dd_buf {
	struct page *pages[DD_MAX_PAGES];	/* order 0 each (scattered) */
	struct page *block;			/* or one contiguous block */
	unsigned int order;
	unsigned int len;
	unsigned int nr_pages;
	bool sg;
	enum dma_data_direction dir;
	/* what was received in it */
	bool kept;
	u32 seq;
	u32 csum;
};

struct dd_dev {
	struct pci_dev *pdev;
	struct dd_regs *regs;
	struct task_struct *thread;
	struct dd_buf pool[DD_POOL];
	u32 seq;
	u64 received, kept, bytes;
};

/* Buffer shapes, cycled through the pool: 4 KiB to 64 KiB, single and sg. */
static const struct {
	unsigned int pages;
	bool sg;
} dd_shapes[] = {
	{ 1, false }, { 2, false }, { 4, true }, { 4, false },
	{ 16, false }, { 16, true }, { 8, true }, { 1, false },
};

static void *dd_page_addr(struct dd_buf *b, unsigned int i)
{
	return page_address(b->sg ? b->pages[i] : b->block + i);
}

static u32 dd_csum(struct dd_buf *b)
{
	u32 crc = ~0u;
	unsigned int i;

	for (i = 0; i < b->nr_pages; i++)
		crc = crc32_le(crc, dd_page_addr(b, i), PAGE_SIZE);
	return crc;
}

static void dd_set_state(struct dd_dev *dd, u32 state)
{
	smp_wmb();
	WRITE_ONCE(dd->regs->state, state);
}

static void dd_publish(struct dd_dev *dd)
{
	WRITE_ONCE(dd->regs->received, dd->received);
	WRITE_ONCE(dd->regs->kept, dd->kept);
	WRITE_ONCE(dd->regs->bytes, dd->bytes);
}

static int dd_map(struct dd_dev *dd, struct dd_buf *b, struct sg_table *sgt,
		  dma_addr_t *single)
{
	struct device *dev = &dd->pdev->dev;
	unsigned int i;
	int ret;

	if (!b->sg) {
		*single = dma_map_page(dev, b->block, 0, b->len, b->dir);
		return dma_mapping_error(dev, *single) ? -ENOMEM : 1;
	}
	ret = sg_alloc_table(sgt, b->nr_pages, GFP_KERNEL);
	if (ret)
		return ret;
	for (i = 0; i < b->nr_pages; i++)
		sg_set_page(&sgt->sgl[i], b->pages[i], PAGE_SIZE, 0);
	ret = dma_map_sgtable(dev, sgt, b->dir, 0);
	if (ret) {
		sg_free_table(sgt);
		return ret;
	}
	return sgt->nents;
}

static void dd_unmap(struct dd_dev *dd, struct dd_buf *b, struct sg_table *sgt,
		     dma_addr_t single)
{
	struct device *dev = &dd->pdev->dev;

	if (!b->sg) {
		dma_unmap_page(dev, single, b->len, b->dir);
		return;
	}
	dma_unmap_sgtable(dev, sgt, b->dir, 0);
	sg_free_table(sgt);
}

static void dd_post(struct dd_dev *dd, u32 slot, dma_addr_t addr, u32 len,
		    u32 seq, u32 off)
{
	struct dd_desc *d = &dd->regs->ring[slot % DD_SIM_RING];

	WRITE_ONCE(d->addr, addr);
	WRITE_ONCE(d->len, len);
	WRITE_ONCE(d->seq, seq);
	WRITE_ONCE(d->buf_off, off);
	WRITE_ONCE(d->status, DD_DESC_POSTED);
}

/* One buffer through the device.  Returns 0, or -ETIMEDOUT / -EIO. */
static int dd_receive(struct dd_dev *dd, struct dd_buf *b)
{
	struct sg_table sgt;
	struct scatterlist *sg;
	dma_addr_t single = 0;
	u32 prod, seq = ++dd->seq, off = 0;
	unsigned long deadline;
	int n, i, ret = 0;

	n = dd_map(dd, b, &sgt, &single);
	if (n < 0)
		return n;
	prod = READ_ONCE(dd->regs->prod);
	if (!b->sg) {
		dd_post(dd, prod, single, b->len, seq, 0);
	} else {
		for_each_sgtable_dma_sg(&sgt, sg, i) {
			dd_post(dd, prod + i, sg_dma_address(sg),
				sg_dma_len(sg), seq, off);
			off += sg_dma_len(sg);
		}
	}
	smp_wmb();
	WRITE_ONCE(dd->regs->prod, prod + n);

	deadline = jiffies + msecs_to_jiffies(DD_TIMEOUT_MS);
	while ((s32)(READ_ONCE(dd->regs->cons) - (prod + n)) < 0) {
		if (time_after(jiffies, deadline)) {
			ret = -ETIMEDOUT;
			break;
		}
		usleep_range(20, 50);
	}
	smp_rmb();
	for (i = 0; !ret && i < n; i++)
		if (READ_ONCE(dd->regs->ring[(prod + i) % DD_SIM_RING].status) !=
		    DD_DESC_DONE)
			ret = -EIO;

	/* Unmapping hands the buffer back to the CPU: the pages get marked. */
	dd_unmap(dd, b, &sgt, single);
	if (ret) {
		b->kept = false;
		return ret;
	}

	if (!b->kept)
		dd->kept++;
	b->kept = true;
	b->seq = seq;
	b->csum = dd_csum(b);
	dd->received++;
	dd->bytes += b->len;
	return 0;
}

static void dd_verify(struct dd_dev *dd)
{
	u64 verified = 0, corrupted = 0;
	unsigned int i;

	for (i = 0; i < DD_POOL; i++) {
		struct dd_buf *b = &dd->pool[i];

		if (!b->kept)
			continue;
		verified++;
		if (dd_csum(b) != b->csum) {
			corrupted++;
			if (corrupted <= 5)
				dev_info(&dd->pdev->dev, "buffer %u (seq %u, %u bytes): checksum differs\n",
					 i, b->seq, b->len);
		}
	}
	WRITE_ONCE(dd->regs->verified, verified);
	WRITE_ONCE(dd->regs->corrupted, corrupted);
	dev_info(&dd->pdev->dev, "verified %llu kept buffers: %llu corrupted\n",
		 verified, corrupted);
	dd_set_state(dd, DD_STATE_VERIFIED);
}

static int dd_thread(void *data)
{
	struct dd_dev *dd = data;
	unsigned int next = 0;
	u32 state = DD_STATE_READY;

	while (!kthread_should_stop()) {
		u32 ctrl = READ_ONCE(dd->regs->ctrl);

		if ((ctrl & DD_CTRL_VERIFY) && state != DD_STATE_VERIFIED) {
			dd_verify(dd);
			state = DD_STATE_VERIFIED;
			continue;
		}
		if (ctrl & DD_CTRL_QUIESCE) {
			if (state == DD_STATE_RUNNING) {
				state = DD_STATE_QUIESCED;
				dd_set_state(dd, state);
				dev_info(&dd->pdev->dev, "quiesced after %llu buffers\n",
					 dd->received);
			}
			msleep(10);
			continue;
		}
		if (!(ctrl & DD_CTRL_RUN) || state == DD_STATE_ERROR ||
		    READ_ONCE(dd->regs->magic) != DD_SIM_MAGIC) {
			msleep(10);
			continue;
		}
		if (state != DD_STATE_RUNNING) {
			state = DD_STATE_RUNNING;
			dd_set_state(dd, state);
		}
		if (dd_receive(dd, &dd->pool[next])) {
			dev_err(&dd->pdev->dev, "device did not complete buffer %u\n",
				next);
			state = DD_STATE_ERROR;
			dd_set_state(dd, state);
		}
		dd_publish(dd);
		next = (next + 1) % DD_POOL;
		cond_resched();
	}
	return 0;
}

static void dd_free_pool(struct dd_dev *dd)
{
	unsigned int i, j;

	for (i = 0; i < DD_POOL; i++) {
		struct dd_buf *b = &dd->pool[i];

		if (b->block)
			__free_pages(b->block, b->order);
		for (j = 0; j < DD_MAX_PAGES; j++)
			if (b->pages[j])
				__free_page(b->pages[j]);
	}
}

static int dd_alloc_pool(struct dd_dev *dd)
{
	unsigned int i, j;

	for (i = 0; i < DD_POOL; i++) {
		struct dd_buf *b = &dd->pool[i];

		b->nr_pages = dd_shapes[i % ARRAY_SIZE(dd_shapes)].pages;
		b->sg = dd_shapes[i % ARRAY_SIZE(dd_shapes)].sg;
		b->len = b->nr_pages * PAGE_SIZE;
		b->dir = i % 2 ? DMA_BIDIRECTIONAL : DMA_FROM_DEVICE;
		if (b->sg) {
			for (j = 0; j < b->nr_pages; j++) {
				b->pages[j] = alloc_page(GFP_KERNEL);
				if (!b->pages[j])
					return -ENOMEM;
			}
		} else {
			b->order = get_order(b->len);
			b->block = alloc_pages(GFP_KERNEL, b->order);
			if (!b->block)
				return -ENOMEM;
		}
		/* Written by the CPU once, before migration starts. */
		for (j = 0; j < b->nr_pages; j++)
			memset(dd_page_addr(b, j), 0x5a, PAGE_SIZE);
	}
	return 0;
}

static int dd_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct dd_dev *dd;
	int ret;

	dd = devm_kzalloc(&pdev->dev, sizeof(*dd), GFP_KERNEL);
	if (!dd)
		return -ENOMEM;
	dd->pdev = pdev;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	if (pci_resource_len(pdev, 2) < sizeof(struct dd_regs))
		return dev_err_probe(&pdev->dev, -EINVAL, "BAR 2 too small\n");
	dd->regs = devm_memremap(&pdev->dev, pci_resource_start(pdev, 2),
				 sizeof(struct dd_regs), MEMREMAP_WB);
	if (IS_ERR(dd->regs))
		return PTR_ERR(dd->regs);

	ret = dd_alloc_pool(dd);
	if (ret) {
		dd_free_pool(dd);
		return ret;
	}
	WRITE_ONCE(dd->regs->prod, READ_ONCE(dd->regs->cons));
	dd->thread = kthread_run(dd_thread, dd, "dd_sim");
	if (IS_ERR(dd->thread)) {
		dd_free_pool(dd);
		return PTR_ERR(dd->thread);
	}
	pci_set_drvdata(pdev, dd);
	dd_set_state(dd, DD_STATE_READY);
	dev_info(&pdev->dev, "%d buffers ready\n", DD_POOL);
	return 0;
}

/* Quiesce: the thread finishes the buffer in flight and unmaps it. */
static void dd_remove(struct pci_dev *pdev)
{
	struct dd_dev *dd = pci_get_drvdata(pdev);

	kthread_stop(dd->thread);
	dd_set_state(dd, DD_STATE_QUIESCED);
	dd_free_pool(dd);
}

static struct pci_driver dd_driver = {
	.name = "dd_sim",
	.probe = dd_probe,
	.remove = dd_remove,
};
module_pci_driver(dd_driver);

MODULE_DESCRIPTION("Driver for the dma-dirty test bed's simulated device");
MODULE_LICENSE("GPL");
