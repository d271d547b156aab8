// SPDX-License-Identifier: GPL-2.0
/*
 * dd_bench: what the streaming DMA API costs the CPU, for "make bench".
 *
 * Binds to QEMU's pci-testdev (1b36:0005) and, at probe, times each case
 * for bench_ms milliseconds, reps times, and prints one line per case and
 * repetition:
 *
 *   dd_bench: rep=R op=OP dir=DIR size=BYTES iters=N ns=T
 *
 * op: map_unmap_single (dma_map_single + dma_unmap_single), map_unmap_sg
 * (a scatterlist of one page per entry, pages not contiguous), sync_for_cpu
 * (dma_sync_single_for_cpu on a mapped buffer).  No device writes: this is
 * the CPU's side, dma_mark_dirty()'s hooks included.  The probe then fails
 * with -ENODEV on purpose, so the module can be loaded again.
 */
#include <linux/dma-mapping.h>
#include <linux/ktime.h>
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/sched.h>

static unsigned int bench_ms = 20;
module_param(bench_ms, uint, 0444);
MODULE_PARM_DESC(bench_ms, "time per case and repetition, in milliseconds");

static unsigned int reps = 5;
module_param(reps, uint, 0444);
MODULE_PARM_DESC(reps, "repetitions of the whole set of cases");

#define MAX_SIZE	(1U << 20)
#define MAX_PAGES	(MAX_SIZE / PAGE_SIZE)
#define BATCH		8

enum bench_op { OP_SINGLE, OP_SG, OP_SYNC, NR_OPS };

static const char * const op_names[NR_OPS] = {
	[OP_SINGLE] = "map_unmap_single",
	[OP_SG] = "map_unmap_sg",
	[OP_SYNC] = "sync_for_cpu",
};

static const unsigned int sizes[] = { 4096, 65536, MAX_SIZE };
static const enum dma_data_direction dirs[] = { DMA_FROM_DEVICE,
						DMA_TO_DEVICE };

struct bench {
	struct device *dev;
	struct page *buf;			/* MAX_SIZE, contiguous */
	struct page *pages[MAX_PAGES];		/* one by one, for sg */
	struct sg_table sgt;
};

static int bench_one(struct bench *b, enum bench_op op,
		     enum dma_data_direction dir, unsigned int size,
		     u64 *iters, u64 *ns)
{
	void *va = page_address(b->buf);
	u64 limit = (u64)bench_ms * NSEC_PER_MSEC, n = 0;
	unsigned int i, npages = size / PAGE_SIZE;
	struct scatterlist *sg;
	dma_addr_t addr = 0;
	ktime_t t0, t;
	int ret = 0;

	if (op == OP_SG) {
		ret = sg_alloc_table(&b->sgt, npages, GFP_KERNEL);
		if (ret)
			return ret;
		for_each_sg(b->sgt.sgl, sg, npages, i)
			sg_set_page(sg, b->pages[i], PAGE_SIZE, 0);
	} else if (op == OP_SYNC) {
		addr = dma_map_single(b->dev, va, size, dir);
		if (dma_mapping_error(b->dev, addr))
			return -ENOMEM;
	}

	t0 = ktime_get();
	do {
		for (i = 0; i < BATCH; i++) {
			switch (op) {
			case OP_SINGLE:
				addr = dma_map_single(b->dev, va, size, dir);
				if (dma_mapping_error(b->dev, addr)) {
					ret = -ENOMEM;
					goto out;
				}
				dma_unmap_single(b->dev, addr, size, dir);
				break;
			case OP_SG:
				if (!dma_map_sg(b->dev, b->sgt.sgl, npages, dir)) {
					ret = -ENOMEM;
					goto out;
				}
				dma_unmap_sg(b->dev, b->sgt.sgl, npages, dir);
				break;
			default:
				dma_sync_single_for_cpu(b->dev, addr, size, dir);
				break;
			}
		}
		n += BATCH;
		t = ktime_get();
	} while (ktime_to_ns(ktime_sub(t, t0)) < limit);
	*iters = n;
	*ns = ktime_to_ns(ktime_sub(t, t0));
out:
	if (op == OP_SG)
		sg_free_table(&b->sgt);
	else if (op == OP_SYNC)
		dma_unmap_single(b->dev, addr, size, dir);
	return ret;
}

static int dd_bench_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	unsigned int r, o, d, s, i;
	struct bench *b;
	u64 iters, ns;
	int ret;

	b = kzalloc(sizeof(*b), GFP_KERNEL);
	if (!b)
		return -ENOMEM;
	b->dev = &pdev->dev;
	ret = dma_set_mask_and_coherent(b->dev, DMA_BIT_MASK(64));
	if (ret)
		goto out;
	ret = -ENOMEM;
	b->buf = alloc_pages(GFP_KERNEL, get_order(MAX_SIZE));
	if (!b->buf)
		goto out;
	for (i = 0; i < MAX_PAGES; i++) {
		/* Two at a time, keeping one: no two entries contiguous. */
		b->pages[i] = alloc_pages(GFP_KERNEL, 1);
		if (!b->pages[i])
			goto out;
	}
	for (r = 0; r < reps; r++)
		for (o = 0; o < NR_OPS; o++)
			for (d = 0; d < ARRAY_SIZE(dirs); d++)
				for (s = 0; s < ARRAY_SIZE(sizes); s++) {
					ret = bench_one(b, o, dirs[d], sizes[s],
							&iters, &ns);
					if (ret)
						goto out;
					pr_info("dd_bench: rep=%u op=%s dir=%s size=%u iters=%llu ns=%llu\n",
						r, op_names[o],
						dirs[d] == DMA_FROM_DEVICE ?
						"from_device" : "to_device",
						sizes[s], iters, ns);
					cond_resched();
				}
	pr_info("dd_bench: done\n");
	ret = -ENODEV;
out:
	if (ret != -ENODEV)
		pr_err("dd_bench: failed: %d\n", ret);
	for (i = 0; i < MAX_PAGES; i++)
		if (b->pages[i])
			__free_pages(b->pages[i], 1);
	if (b->buf)
		__free_pages(b->buf, get_order(MAX_SIZE));
	kfree(b);
	return ret;
}

static const struct pci_device_id dd_bench_ids[] = {
	{ PCI_DEVICE(PCI_VENDOR_ID_REDHAT, 0x0005) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dd_bench_ids);

static struct pci_driver dd_bench_driver = {
	.name = "dd_bench",
	.id_table = dd_bench_ids,
	.probe = dd_bench_probe,
};
module_pci_driver(dd_bench_driver);

MODULE_DESCRIPTION("dma-dirty test bed: DMA API cost benchmark");
MODULE_LICENSE("GPL");
