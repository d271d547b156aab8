// SPDX-License-Identifier: GPL-2.0
/*
 * Guest driver for the simulated pass-through device (dd_sim.h).
 *
 * Binds to a QEMU ivshmem-plain device through driver_override.  At probe
 * it allocates a pool of buffers in three classes (dd_sim.h) and writes
 * them with the CPU, before any migration starts.  Once the runner sets
 * DD_CTRL_RUN, it fills them only by DMA, over and over, as an RX ring or
 * the page cache reuses memory, and hands each one back to the CPU the way
 * its class says:
 *
 *   tracked:   map (single or scatterlist, DMA_FROM_DEVICE or
 *              DMA_BIDIRECTIONAL), post, wait for the device, unmap;
 *   long:      mapped once at probe; sync for the device, post, wait, sync
 *              for the CPU, as a page_pool RX ring does;
 *   control:   the same two roads with a lie that hides the write from the
 *              DMA API: mapped DMA_TO_DEVICE, or never synced for the CPU.
 *
 * Then it checks that the buffer holds the payload the device writes for
 * its sequence number (dd_payload()) and keeps it, as the page cache keeps
 * data read from a disk.  On DD_CTRL_VERIFY it checks every kept buffer
 * against that payload again and reports, per class, how many differ.
 * DD_CTRL_QUIESCE, and removal, stop the device with no DMA in flight.
 *
 * Removal (a hot-unplug) unmaps every buffer, long-lived ones included,
 * and keeps the pool with what it received: the next device bound, a
 * device plugged back after migration, adopts it, maps the long-lived
 * buffers again, and can verify what the old one wrote and receive more.
 *
 * Only the DMA API is used for the buffers.  Behind an IOMMU the DMA
 * addresses are IOVAs that the simulator, which has no IOMMU model, cannot
 * follow; the driver looks up, in the device's IOMMU domain, the physical
 * page each IOVA maps to and passes it in the descriptor beside the IOVA.
 * The simulator writes that page, which is where the IOMMU would have sent
 * the device's write.  The mapping, syncs and unmapping stay the real
 * dma-iommu calls, which is where the hooks under test sit.
 */

#include <linux/delay.h>
#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/iommu.h>
#include <linux/io.h>
#include <linux/kthread.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>

#include "dd_sim.h"

#define DD_MAX_PAGES	16
#define DD_TIMEOUT_MS	2000

struct dd_buf {
	struct page *pages[DD_MAX_PAGES];	/* order 0 each (scattered) */
	struct page *block;			/* or one contiguous block */
	unsigned int order;
	unsigned int len;
	unsigned int nr_pages;
	bool sg;
	u8 cls;					/* DD_CLASS_* */
	bool long_lived;	/* mapped at probe, unmapped at removal */
	bool sync;		/* long-lived: synced around each receive */
	enum dma_data_direction dir;	/* the direction it is mapped with */
	/* the current mapping */
	bool mapped;
	dma_addr_t dma;				/* single */
	struct sg_table sgt;			/* scatterlist */
	/* what was received in it */
	bool kept;
	u32 seq;
};

struct dd_dev {
	struct pci_dev *pdev;
	struct dd_regs *regs;
	struct iommu_domain *domain;	/* NULL: DMA address == physical */
	struct task_struct *thread;
	struct dd_buf pool[DD_POOL];
	u32 seq;
	u64 received, kept, bytes, rx_bad, remapped;
	u64 cls_received[DD_NR_CLASSES], cls_kept[DD_NR_CLASSES];
};

/* The pool a removed device left, for the next one to adopt. */
static struct dd_dev *dd_orphan;
static DEFINE_MUTEX(dd_orphan_lock);

/* Buffer shapes, cycled through the pool: 4 KiB to 64 KiB, single and sg. */
static const struct {
	unsigned int pages;
	bool sg;
} dd_shapes[] = {
	{ 1, false }, { 2, false }, { 4, true }, { 4, false },
	{ 16, false }, { 16, true }, { 8, true }, { 1, false },
};

/* make bench's scaling runs: every buffer this size (still single or sg). */
static unsigned int buf_pages;
module_param(buf_pages, uint, 0444);
MODULE_PARM_DESC(buf_pages,
		 "pages in every buffer, 1 to 16 (default 0: mixed shapes of 1 to 16)");

/*
 * Classes, interleaved through the pool so that each receives all along
 * the migration and gets every shape: 3 tracked, 1 long, 1 control in 5.
 */
static const u8 dd_class_cycle[] = {
	DD_CLASS_TRACKED, DD_CLASS_TRACKED, DD_CLASS_LONG, DD_CLASS_TRACKED,
	DD_CLASS_CONTROL,
};

static_assert(DD_POOL % ARRAY_SIZE(dd_class_cycle) == 0);
static_assert(DD_POOL_TRACKED * ARRAY_SIZE(dd_class_cycle) == 3 * DD_POOL);
static_assert(DD_POOL_LONG * ARRAY_SIZE(dd_class_cycle) == DD_POOL);
static_assert(DD_POOL_CONTROL * ARRAY_SIZE(dd_class_cycle) == DD_POOL);

static const char *const dd_state_names[] = {
	[DD_STATE_ABSENT] = "absent",
	[DD_STATE_READY] = "ready",
	[DD_STATE_RUNNING] = "running",
	[DD_STATE_QUIESCED] = "quiesced",
	[DD_STATE_VERIFIED] = "verified",
	[DD_STATE_ERROR] = "error",
	[DD_STATE_UNPLUG] = "unplug",
	[DD_STATE_REMOVED] = "removed",
};

static void *dd_page_addr(struct dd_buf *b, unsigned int i)
{
	return page_address(b->sg ? b->pages[i] : b->block + i);
}

/* Whether @b holds, word for word, what the device writes for @seq. */
static bool dd_payload_ok(struct dd_buf *b, u32 seq)
{
	unsigned int i, j, words = PAGE_SIZE / 4;

	for (i = 0; i < b->nr_pages; i++) {
		const u32 *p = dd_page_addr(b, i);

		for (j = 0; j < words; j++)
			if (p[j] != dd_payload(seq, i * words + j))
				return false;
	}
	return true;
}

static void dd_set_state(struct dd_dev *dd, u32 state)
{
	/* the statistics before the state the runner waits for */
	smp_wmb();
	WRITE_ONCE(dd->regs->state, state);
}

static void dd_publish(struct dd_dev *dd)
{
	unsigned int c;

	for (c = 0; c < DD_NR_CLASSES; c++) {
		WRITE_ONCE(dd->regs->cls[c].received, dd->cls_received[c]);
		WRITE_ONCE(dd->regs->cls[c].kept, dd->cls_kept[c]);
	}
	WRITE_ONCE(dd->regs->received, dd->received);
	WRITE_ONCE(dd->regs->kept, dd->kept);
	WRITE_ONCE(dd->regs->bytes, dd->bytes);
	WRITE_ONCE(dd->regs->rx_bad, dd->rx_bad);
	WRITE_ONCE(dd->regs->remapped, dd->remapped);
}

static int dd_map(struct dd_dev *dd, struct dd_buf *b)
{
	struct device *dev = &dd->pdev->dev;
	unsigned int i;
	int ret;

	if (!b->sg) {
		b->dma = dma_map_page(dev, b->block, 0, b->len, b->dir);
		if (dma_mapping_error(dev, b->dma))
			return -ENOMEM;
		b->mapped = true;
		return 0;
	}
	ret = sg_alloc_table(&b->sgt, b->nr_pages, GFP_KERNEL);
	if (ret)
		return ret;
	for (i = 0; i < b->nr_pages; i++)
		sg_set_page(&b->sgt.sgl[i], b->pages[i], PAGE_SIZE, 0);
	ret = dma_map_sgtable(dev, &b->sgt, b->dir, 0);
	if (ret) {
		sg_free_table(&b->sgt);
		return ret;
	}
	b->mapped = true;
	return 0;
}

static void dd_unmap(struct dd_dev *dd, struct dd_buf *b)
{
	struct device *dev = &dd->pdev->dev;

	if (!b->mapped)
		return;
	b->mapped = false;
	if (!b->sg) {
		dma_unmap_page(dev, b->dma, b->len, b->dir);
		return;
	}
	dma_unmap_sgtable(dev, &b->sgt, b->dir, 0);
	sg_free_table(&b->sgt);
}

/* A long-lived buffer goes back to the device: the page_pool refill. */
static void dd_sync_for_device(struct dd_dev *dd, struct dd_buf *b)
{
	struct device *dev = &dd->pdev->dev;

	if (!b->sg)
		dma_sync_single_for_device(dev, b->dma, b->len, b->dir);
	else
		dma_sync_sgtable_for_device(dev, &b->sgt, b->dir);
}

/* ... and comes back to the CPU: this is what reports its pages. */
static void dd_sync_for_cpu(struct dd_dev *dd, struct dd_buf *b)
{
	struct device *dev = &dd->pdev->dev;

	if (!b->sg)
		dma_sync_single_for_cpu(dev, b->dma, b->len, b->dir);
	else
		dma_sync_sgtable_for_cpu(dev, &b->sgt, b->dir);
}

/*
 * Where the device's write to DMA address @addr lands.  Behind an IOMMU,
 * @addr is an IOVA: look it up in the device's domain, as the IOMMU does
 * for every access of the device.  The simulator writes that physical
 * page; it plays a device whose writes the IOMMU translates.
 */
static phys_addr_t dd_dma_to_phys(struct dd_dev *dd, dma_addr_t addr)
{
	if (dd->domain)
		return iommu_iova_to_phys(dd->domain, addr);
	return dma_to_phys(&dd->pdev->dev, addr);
}

/*
 * Post DMA segment [@addr, @addr + @len) of a buffer, at offset *@off in
 * it, one descriptor per page: pages contiguous in IOVA space need not be
 * contiguous in physical memory.  Returns the next ring slot, or -EFAULT.
 */
static int dd_post_seg(struct dd_dev *dd, u32 *slot, u32 first,
		       dma_addr_t addr, u32 len, u32 seq, u32 *off)
{
	while (len) {
		u32 chunk = min_t(u32, len, PAGE_SIZE - offset_in_page(addr));
		struct dd_desc *d = &dd->regs->ring[*slot % DD_SIM_RING];
		phys_addr_t phys = dd_dma_to_phys(dd, addr);

		if (!phys || *slot - first >= DD_SIM_RING) {
			dev_err(&dd->pdev->dev, "no physical page for DMA address %pad, or too many segments\n",
				&addr);
			return -EFAULT;
		}
		if (phys != addr)
			dd->remapped++;
		WRITE_ONCE(d->addr, addr);
		WRITE_ONCE(d->phys, phys);
		WRITE_ONCE(d->len, chunk);
		WRITE_ONCE(d->seq, seq);
		WRITE_ONCE(d->buf_off, *off);
		WRITE_ONCE(d->status, DD_DESC_POSTED);
		(*slot)++;
		*off += chunk;
		addr += chunk;
		len -= chunk;
	}
	return 0;
}

/* Have the device write @b with payload @seq and wait for it. */
static int dd_dma(struct dd_dev *dd, struct dd_buf *b, u32 seq)
{
	u32 prod = READ_ONCE(dd->regs->prod), slot = prod, off = 0;
	struct scatterlist *sg;
	unsigned long deadline;
	int i, ret = 0;

	if (!b->sg) {
		ret = dd_post_seg(dd, &slot, prod, b->dma, b->len, seq, &off);
	} else {
		for_each_sgtable_dma_sg(&b->sgt, sg, i) {
			ret = dd_post_seg(dd, &slot, prod, sg_dma_address(sg),
					  sg_dma_len(sg), seq, &off);
			if (ret)
				break;
		}
	}
	if (ret)
		return ret;
	/* the descriptors before the producer index the simulator polls */
	smp_wmb();
	WRITE_ONCE(dd->regs->prod, slot);

	deadline = jiffies + msecs_to_jiffies(DD_TIMEOUT_MS);
	while ((s32)(READ_ONCE(dd->regs->cons) - slot) < 0) {
		if (time_after(jiffies, deadline))
			return -ETIMEDOUT;
		usleep_range(20, 50);
	}
	/* the consumer index before the status it covers */
	smp_rmb();
	for (; prod != slot; prod++)
		if (READ_ONCE(dd->regs->ring[prod % DD_SIM_RING].status) !=
		    DD_DESC_DONE)
			return -EIO;
	return 0;
}

/* One buffer through the device.  Returns 0, or a negative error. */
static int dd_receive(struct dd_dev *dd, struct dd_buf *b)
{
	u32 seq = ++dd->seq;
	int ret;

	if (b->long_lived) {
		if (b->sync)
			dd_sync_for_device(dd, b);
	} else {
		ret = dd_map(dd, b);
		if (ret)
			return ret;
	}

	ret = dd_dma(dd, b, seq);

	/*
	 * The buffer goes back to the CPU: unmapping, or syncing for the
	 * CPU, marks its pages dirty unless the DMA API was told the device
	 * only reads it (the DMA_TO_DEVICE control buffers).  The never
	 * synced control buffers skip this on purpose.
	 */
	if (b->long_lived) {
		if (b->sync)
			dd_sync_for_cpu(dd, b);
	} else {
		dd_unmap(dd, b);
	}
	if (ret) {
		if (b->kept) {
			dd->kept--;
			dd->cls_kept[b->cls]--;
		}
		b->kept = false;
		return ret;
	}

	if (!dd_payload_ok(b, seq)) {
		if (dd->rx_bad++ < 5)
			dev_err(&dd->pdev->dev, "seq %u (class %u, %u bytes): not the payload the device wrote\n",
				seq, b->cls, b->len);
	}
	if (!b->kept) {
		dd->kept++;
		dd->cls_kept[b->cls]++;
	}
	b->kept = true;
	b->seq = seq;
	dd->received++;
	dd->cls_received[b->cls]++;
	dd->bytes += b->len;
	return 0;
}

static void dd_verify(struct dd_dev *dd)
{
	u64 verified[DD_NR_CLASSES] = { }, corrupted[DD_NR_CLASSES] = { };
	u64 all_verified = 0, all_corrupted = 0;
	unsigned int i, c;

	for (i = 0; i < DD_POOL; i++) {
		struct dd_buf *b = &dd->pool[i];

		if (!b->kept)
			continue;
		verified[b->cls]++;
		if (dd_payload_ok(b, b->seq))
			continue;
		if (corrupted[b->cls]++ < 3)
			dev_info(&dd->pdev->dev, "buffer %u (class %u, seq %u, %u bytes): not its payload\n",
				 i, b->cls, b->seq, b->len);
	}
	for (c = 0; c < DD_NR_CLASSES; c++) {
		WRITE_ONCE(dd->regs->cls[c].verified, verified[c]);
		WRITE_ONCE(dd->regs->cls[c].corrupted, corrupted[c]);
		all_verified += verified[c];
		all_corrupted += corrupted[c];
	}
	WRITE_ONCE(dd->regs->verified, all_verified);
	WRITE_ONCE(dd->regs->corrupted, all_corrupted);
	dev_info(&dd->pdev->dev, "verified %llu kept buffers: tracked %llu/%llu, long-lived %llu/%llu, control %llu/%llu corrupted\n",
		 all_verified,
		 corrupted[DD_CLASS_TRACKED], verified[DD_CLASS_TRACKED],
		 corrupted[DD_CLASS_LONG], verified[DD_CLASS_LONG],
		 corrupted[DD_CLASS_CONTROL], verified[DD_CLASS_CONTROL]);
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
		/*
		 * Nothing is in flight between two buffers: the last one
		 * was unmapped or synced for the CPU.  Long-lived mappings
		 * stay, as a page_pool's do.  DD_CTRL_UNPLUG: the same, then
		 * ask user space (demo.sh) to power the slot off; removal
		 * unmaps everything.
		 */
		if (ctrl & (DD_CTRL_QUIESCE | DD_CTRL_UNPLUG)) {
			if (state == DD_STATE_RUNNING) {
				state = ctrl & DD_CTRL_UNPLUG ?
					DD_STATE_UNPLUG : DD_STATE_QUIESCED;
				dd_set_state(dd, state);
				dev_info(&dd->pdev->dev, "quiesced after %llu buffers\n",
					 dd->received);
			}
			msleep(20);
			continue;
		}
		if (!(ctrl & DD_CTRL_RUN) || state == DD_STATE_ERROR ||
		    READ_ONCE(dd->regs->magic) != DD_SIM_MAGIC) {
			msleep(20);
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

		dd_unmap(dd, b);
		if (b->block)
			__free_pages(b->block, b->order);
		for (j = 0; j < DD_MAX_PAGES; j++)
			if (b->pages[j])
				__free_page(b->pages[j]);
	}
}

/* Class, direction and mapping lifetime of buffer @i; see dd_sim.h. */
static void dd_setup_buf(struct dd_buf *b, unsigned int i)
{
	/* index of @b among the buffers of its class */
	unsigned int k = i / ARRAY_SIZE(dd_class_cycle);

	b->cls = dd_class_cycle[i % ARRAY_SIZE(dd_class_cycle)];
	switch (b->cls) {
	case DD_CLASS_TRACKED:
		b->dir = i % 2 ? DMA_BIDIRECTIONAL : DMA_FROM_DEVICE;
		break;
	case DD_CLASS_LONG:
		b->long_lived = true;
		b->sync = true;
		b->dir = k % 2 ? DMA_BIDIRECTIONAL : DMA_FROM_DEVICE;
		break;
	case DD_CLASS_CONTROL:
		if (k % 2) {
			/* mapped for the device, never synced for the CPU */
			b->long_lived = true;
			b->dir = DMA_FROM_DEVICE;
		} else {
			/* the device writes it, the driver says it reads */
			b->dir = DMA_TO_DEVICE;
		}
		break;
	}
}

/* An adopted pool: map the long-lived buffers for the new device. */
static int dd_map_long_lived(struct dd_dev *dd)
{
	unsigned int i;
	int ret;

	for (i = 0; i < DD_POOL; i++) {
		if (!dd->pool[i].long_lived)
			continue;
		ret = dd_map(dd, &dd->pool[i]);
		if (ret)
			return ret;
	}
	return 0;
}

static int dd_alloc_pool(struct dd_dev *dd)
{
	unsigned int i, j;
	int ret;

	for (i = 0; i < DD_POOL; i++) {
		struct dd_buf *b = &dd->pool[i];

		dd_setup_buf(b, i);
		b->nr_pages = buf_pages ?:
			      dd_shapes[i % ARRAY_SIZE(dd_shapes)].pages;
		b->sg = dd_shapes[i % ARRAY_SIZE(dd_shapes)].sg;
		b->len = b->nr_pages * PAGE_SIZE;
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
		if (b->long_lived) {
			ret = dd_map(dd, b);
			if (ret)
				return ret;
		}
	}
	return 0;
}

static ssize_t dd_state_show(struct device *dev, struct device_attribute *attr,
			     char *buf)
{
	struct dd_dev *dd = dev_get_drvdata(dev);
	u32 state = READ_ONCE(dd->regs->state);

	if (state >= ARRAY_SIZE(dd_state_names))
		return sysfs_emit(buf, "%u\n", state);
	return sysfs_emit(buf, "%s\n", dd_state_names[state]);
}
static DEVICE_ATTR_RO(dd_state);

static struct attribute *dd_attrs[] = {
	&dev_attr_dd_state.attr,
	NULL
};
ATTRIBUTE_GROUPS(dd);

static int dd_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct dd_regs *regs;
	struct dd_dev *dd;
	bool adopted;
	int ret;

	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;
	if (pci_resource_len(pdev, 2) < sizeof(struct dd_regs))
		return dev_err_probe(&pdev->dev, -EINVAL, "BAR 2 too small\n");
	regs = devm_memremap(&pdev->dev, pci_resource_start(pdev, 2),
			     sizeof(struct dd_regs), MEMREMAP_WB);
	if (IS_ERR(regs))
		return PTR_ERR(regs);

	mutex_lock(&dd_orphan_lock);
	dd = dd_orphan;
	dd_orphan = NULL;
	mutex_unlock(&dd_orphan_lock);
	adopted = dd;
	if (!dd) {
		dd = kzalloc(sizeof(*dd), GFP_KERNEL);
		if (!dd)
			return -ENOMEM;
	}
	dd->pdev = pdev;
	dd->regs = regs;
	dd->domain = iommu_get_domain_for_dev(&pdev->dev);

	ret = adopted ? dd_map_long_lived(dd) : dd_alloc_pool(dd);
	if (ret)
		goto err;
	WRITE_ONCE(dd->regs->prod, READ_ONCE(dd->regs->cons));
	dd_publish(dd);
	pci_set_drvdata(pdev, dd);
	dd->thread = kthread_run(dd_thread, dd, "dd_sim");
	if (IS_ERR(dd->thread)) {
		ret = PTR_ERR(dd->thread);
		goto err;
	}
	dd_set_state(dd, DD_STATE_READY);
	dev_info(&pdev->dev, "%d buffers ready (%d tracked, %d long-lived, %d control), %s%s\n",
		 DD_POOL, DD_POOL_TRACKED, DD_POOL_LONG, DD_POOL_CONTROL,
		 dd->domain ? "behind an IOMMU domain" : "no IOMMU",
		 adopted ? ", adopted from a removed device" : "");
	return 0;
err:
	dd_free_pool(dd);
	kfree(dd);
	return ret;
}

/*
 * Quiesce: the thread finishes the buffer in flight; then unmap all, which
 * reports the long-lived buffers' pages too.  The pool and what it holds
 * stay, for the next device to adopt.
 */
static void dd_remove(struct pci_dev *pdev)
{
	struct dd_dev *dd = pci_get_drvdata(pdev);
	unsigned int i;

	kthread_stop(dd->thread);
	for (i = 0; i < DD_POOL; i++)
		dd_unmap(dd, &dd->pool[i]);
	dd_publish(dd);
	dd_set_state(dd, DD_STATE_REMOVED);
	dev_info(&pdev->dev, "removed after %llu buffers; everything unmapped, %llu kept\n",
		 dd->received, dd->kept);
	dd->pdev = NULL;
	dd->regs = NULL;
	mutex_lock(&dd_orphan_lock);
	if (dd_orphan) {
		/* only one is kept: the one removed last */
		dd_free_pool(dd_orphan);
		kfree(dd_orphan);
	}
	dd_orphan = dd;
	mutex_unlock(&dd_orphan_lock);
}

static struct pci_driver dd_driver = {
	.name = "dd_sim",
	.probe = dd_probe,
	.remove = dd_remove,
	.dev_groups = dd_groups,
};

static int __init dd_init(void)
{
	if (buf_pages > DD_MAX_PAGES) {
		pr_err("dd_sim: buf_pages=%u: at most %u\n", buf_pages,
		       DD_MAX_PAGES);
		return -EINVAL;
	}
	return pci_register_driver(&dd_driver);
}
module_init(dd_init);

static void __exit dd_exit(void)
{
	pci_unregister_driver(&dd_driver);
	if (dd_orphan) {
		dd_free_pool(dd_orphan);
		kfree(dd_orphan);
	}
}
module_exit(dd_exit);

MODULE_DESCRIPTION("Driver for the dma-dirty test bed's simulated device");
MODULE_LICENSE("GPL");
