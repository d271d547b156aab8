// SPDX-License-Identifier: GPL-2.0
/*
 * Test driver for dma_mark_dirty(): drives the real DMA API on a PCI device
 * and records, through the dma_dirty:dma_mark_dirty trace point, which pages
 * of its buffer were reported.  Bind it to a device that has no driver:
 *
 *   echo test_dma_dirty > /sys/bus/pci/devices/$BDF/driver_override
 *   echo $BDF > /sys/bus/pci/drivers_probe
 *
 * then use /dev/test_dma_dirty (see lib/test_dma_dirty_uapi.h and
 * tools/testing/selftests/dma_dirty/).
 */

#include <linux/dma-direct.h>
#include <linux/dma-mapping.h>
#include <linux/iommu.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/mutex.h>
#include <linux/pci.h>
#include <linux/scatterlist.h>
#include <linux/uaccess.h>
#include <trace/events/dma_dirty.h>

#include "test_dma_dirty_uapi.h"

#define TDD_ORDER	3	/* TDD_BUF_PAGES == 1 << TDD_ORDER */

static bool untrusted;
module_param(untrusted, bool, 0444);
MODULE_PARM_DESC(untrusted,
		 "Mark the device untrusted, so dma-iommu bounces unaligned buffers through swiotlb");
#define TDD_DATA_BYTES	((TDD_BUF_PAGES - 2) * PAGE_SIZE)

static_assert(TDD_BUF_PAGES == 1 << TDD_ORDER);

struct tdd {
	struct pci_dev *pdev;
	struct device *dev;
	struct iommu_domain *domain;	/* non-NULL when dma-iommu maps */
	struct mutex lock;		/* one command at a time */
	struct miscdevice misc;
};

/* The buffer whose reports are being counted, or none. */
static struct {
	unsigned long base_pfn;
	atomic_t count[TDD_BUF_PAGES];
	bool active;
} tdd_window;

static void tdd_probe_mark(void *data, struct device *dev, phys_addr_t phys,
			   size_t size, enum dma_dirty_path path)
{
	unsigned long first, last, base = READ_ONCE(tdd_window.base_pfn);

	if (!READ_ONCE(tdd_window.active) || !size)
		return;
	first = max_t(unsigned long, PHYS_PFN(phys), base);
	last = min_t(unsigned long, PHYS_PFN(phys + size - 1) + 1,
		     base + TDD_BUF_PAGES);
	for (; first < last; first++)
		atomic_inc(&tdd_window.count[first - base]);
}

/* The CPU address the device reaches through @dma: IOMMU or direct. */
static u8 *tdd_device_view(struct tdd *t, dma_addr_t dma)
{
	phys_addr_t phys;

	if (t->domain)
		phys = iommu_iova_to_phys(t->domain, dma);
	else
		phys = dma_to_phys(t->dev, dma);
	return phys_to_virt(phys);
}

/* Play the device: write @val to [@dma, @dma + @len), page by page. */
static void tdd_device_write(struct tdd *t, dma_addr_t dma, size_t len, u8 val)
{
	while (len) {
		size_t chunk = min_t(size_t, len, PAGE_SIZE - offset_in_page(dma));

		memset(tdd_device_view(t, dma), val, chunk);
		dma += chunk;
		len -= chunk;
	}
}

static bool tdd_bounced(struct tdd *t, dma_addr_t dma, phys_addr_t phys)
{
	u8 *view = tdd_device_view(t, dma);

	return view != phys_to_virt(phys);
}

static bool tdd_cpu_sees(const u8 *p, size_t len, u8 val)
{
	return !memchr_inv(p, val, len);
}

static bool tdd_writes(u32 dir)
{
	return dir != DMA_TO_DEVICE;
}

static int tdd_check(const struct tdd_cmd *c)
{
	u32 i;

	if (c->op >= TDD_NR_OPS || c->dir > DMA_FROM_DEVICE)
		return -EINVAL;
	if (!c->nsegs || c->nsegs > TDD_MAX_SEGS)
		return -EINVAL;
	if (c->nsegs > 1 && c->op != TDD_MAP_SG && c->op != TDD_SYNC_SG)
		return -EINVAL;
	for (i = 0; i < c->nsegs; i++)
		if (!c->seg[i].len || c->seg[i].offset >= TDD_DATA_BYTES ||
		    c->seg[i].len > TDD_DATA_BYTES - c->seg[i].offset)
			return -EINVAL;
	if ((c->op == TDD_SYNC_SINGLE || c->op == TDD_NEED_SYNC) &&
	    (!c->sync.len || c->sync.offset >= c->seg[0].len ||
	     c->sync.len > c->seg[0].len - c->sync.offset))
		return -EINVAL;
	if ((c->op == TDD_SYNC_SINGLE || c->op == TDD_SYNC_SG ||
	     c->op == TDD_NEED_SYNC) &&
	    (!c->reps || c->reps > TDD_MAX_REPS))
		return -EINVAL;
	return 0;
}

static int tdd_single(struct tdd *t, struct tdd_cmd *c, u8 *data,
		      struct page *page, unsigned long attrs)
{
	struct tdd_seg *s = &c->seg[0];
	phys_addr_t phys = page_to_phys(page) + PAGE_SIZE + s->offset;
	u8 *cpu = data + s->offset;
	bool ok = true, sync;
	dma_addr_t dma;
	u32 r;

	if (c->op == TDD_MAP_PAGE)
		dma = dma_map_page_attrs(t->dev, page + TDD_DATA_PAGE +
					 s->offset / PAGE_SIZE,
					 s->offset % PAGE_SIZE, s->len, c->dir, 0);
	else if (c->op == TDD_MAP_RESOURCE)
		dma = dma_map_resource(t->dev, phys, s->len, c->dir, 0);
	else
		dma = dma_map_single(t->dev, cpu, s->len, c->dir);
	if (dma_mapping_error(t->dev, dma))
		return -ENOMEM;
	c->mappings = 1;

	if (c->op == TDD_MAP_RESOURCE) {
		/* MMIO: no device write to play, nothing for the CPU to see. */
		dma_unmap_resource(t->dev, dma, s->len, c->dir, 0);
		c->data_ok = 1;
		return 0;
	}
	c->bounced = tdd_bounced(t, dma, phys);

	if (c->op == TDD_NEED_SYNC || c->op == TDD_SYNC_SINGLE) {
		/*
		 * TDD_NEED_SYNC is the page_pool pattern: a long-lived
		 * mapping, synced only when dma_need_sync() says so.
		 */
		c->need_sync = dma_need_sync(t->dev, dma);
		sync = c->op == TDD_SYNC_SINGLE || c->need_sync;
		for (r = 0; r < c->reps; r++) {
			u8 val = 0x40 + r;

			if (tdd_writes(c->dir))
				tdd_device_write(t, dma + c->sync.offset,
						 c->sync.len, val);
			if (!sync)
				continue;
			dma_sync_single_range_for_cpu(t->dev, dma, c->sync.offset,
						      c->sync.len, c->dir);
			if (tdd_writes(c->dir))
				ok &= tdd_cpu_sees(cpu + c->sync.offset,
						   c->sync.len, val);
			dma_sync_single_range_for_device(t->dev, dma,
							 c->sync.offset,
							 c->sync.len, c->dir);
		}
	} else if (tdd_writes(c->dir)) {
		tdd_device_write(t, dma, s->len, 0xa5);
	}

	if (c->op == TDD_MAP_PAGE || c->op == TDD_SYNC_SINGLE ||
	    c->op == TDD_NEED_SYNC)
		dma_unmap_page_attrs(t->dev, dma, s->len, c->dir, attrs);
	else
		dma_unmap_single_attrs(t->dev, dma, s->len, c->dir, attrs);

	if (c->op != TDD_SYNC_SINGLE && c->op != TDD_NEED_SYNC &&
	    tdd_writes(c->dir) &&
	    !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		ok &= tdd_cpu_sees(cpu, s->len, 0xa5);
	c->data_ok = ok;
	return 0;
}

static int tdd_sg(struct tdd *t, struct tdd_cmd *c, u8 *data,
		  struct page *page, unsigned long attrs)
{
	struct scatterlist sgl[TDD_MAX_SEGS], *sg;
	bool ok = true;
	int nents, i;
	u32 r, n;

	sg_init_table(sgl, c->nsegs);
	for (n = 0; n < c->nsegs; n++)
		sg_set_page(&sgl[n], page + TDD_DATA_PAGE +
			    c->seg[n].offset / PAGE_SIZE, c->seg[n].len,
			    c->seg[n].offset % PAGE_SIZE);
	nents = dma_map_sg(t->dev, sgl, c->nsegs, c->dir);
	if (!nents)
		return -ENOMEM;
	c->mappings = nents;
	/*
	 * dma-direct and the swiotlb road of dma-iommu map each entry on its
	 * own; otherwise dma-iommu merges them and never bounces.
	 */
	if (!t->domain || sg_dma_is_swiotlb(sgl)) {
		for_each_sg(sgl, sg, nents, i) {
			if (tdd_bounced(t, sg_dma_address(sg), sg_phys(sg))) {
				c->bounced++;
				c->bounced_segs |= 1U << i;
			}
		}
	}

	for (r = 0; r < (c->op == TDD_SYNC_SG ? c->reps : 1); r++) {
		u8 val = 0x40 + r;

		if (tdd_writes(c->dir))
			for_each_sg(sgl, sg, nents, i)
				tdd_device_write(t, sg_dma_address(sg),
						 sg_dma_len(sg), val);
		if (c->op != TDD_SYNC_SG)
			break;
		dma_sync_sg_for_cpu(t->dev, sgl, c->nsegs, c->dir);
		if (tdd_writes(c->dir))
			for (n = 0; n < c->nsegs; n++)
				ok &= tdd_cpu_sees(data + c->seg[n].offset,
						   c->seg[n].len, val);
		dma_sync_sg_for_device(t->dev, sgl, c->nsegs, c->dir);
	}

	dma_unmap_sg_attrs(t->dev, sgl, c->nsegs, c->dir, attrs);
	if (c->op == TDD_MAP_SG && tdd_writes(c->dir) &&
	    !(attrs & DMA_ATTR_SKIP_CPU_SYNC))
		for (n = 0; n < c->nsegs; n++)
			ok &= tdd_cpu_sees(data + c->seg[n].offset,
					   c->seg[n].len, 0x40);
	c->data_ok = ok;
	return 0;
}

static int tdd_run(struct tdd *t, struct tdd_cmd *c)
{
	unsigned long attrs = 0;
	struct page *page;
	u8 *data;
	int ret, i;

	ret = tdd_check(c);
	if (ret)
		return ret;
	if (c->flags & ~TDD_UNMAP_SKIP_CPU_SYNC)
		return -EINVAL;
	if (c->flags & TDD_UNMAP_SKIP_CPU_SYNC)
		attrs |= DMA_ATTR_SKIP_CPU_SYNC;

	page = alloc_pages(GFP_KERNEL | __GFP_ZERO, TDD_ORDER);
	if (!page)
		return -ENOMEM;
	data = page_address(page) + TDD_DATA_PAGE * PAGE_SIZE;

	for (i = 0; i < TDD_BUF_PAGES; i++)
		atomic_set(&tdd_window.count[i], 0);
	WRITE_ONCE(tdd_window.base_pfn, page_to_pfn(page));
	WRITE_ONCE(tdd_window.active, true);

	c->path = t->domain ? TDD_PATH_IOMMU : TDD_PATH_DIRECT;
	c->bounced = 0;
	c->bounced_segs = 0;
	c->mappings = 0;
	c->data_ok = 0;
	c->need_sync = 0;
	c->api_debug = IS_ENABLED(CONFIG_DMA_API_DEBUG);
	if (c->op == TDD_MAP_SG || c->op == TDD_SYNC_SG)
		ret = tdd_sg(t, c, data, page, attrs);
	else
		ret = tdd_single(t, c, data, page, attrs);

	WRITE_ONCE(tdd_window.active, false);
	/* Reports are synchronous: all of this buffer's are counted by now. */
	for (i = 0; i < TDD_BUF_PAGES; i++)
		c->reported[i] = atomic_read(&tdd_window.count[i]);
	__free_pages(page, TDD_ORDER);
	return ret;
}

static long tdd_ioctl(struct file *file, unsigned int cmd, unsigned long arg)
{
	struct tdd *t = container_of(file->private_data, struct tdd, misc);
	struct tdd_cmd c;
	int ret;

	if (cmd != TEST_DMA_DIRTY_RUN)
		return -ENOTTY;
	if (copy_from_user(&c, (void __user *)arg, sizeof(c)))
		return -EFAULT;
	mutex_lock(&t->lock);
	ret = tdd_run(t, &c);
	mutex_unlock(&t->lock);
	if (ret)
		return ret;
	return copy_to_user((void __user *)arg, &c, sizeof(c)) ? -EFAULT : 0;
}

static const struct file_operations tdd_fops = {
	.owner = THIS_MODULE,
	.unlocked_ioctl = tdd_ioctl,
};

static int tdd_pci_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	struct iommu_domain *domain;
	struct tdd *t;
	int ret;

	t = devm_kzalloc(&pdev->dev, sizeof(*t), GFP_KERNEL);
	if (!t)
		return -ENOMEM;
	ret = pcim_enable_device(pdev);
	if (ret)
		return ret;
	pci_set_master(pdev);
	ret = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(64));
	if (ret)
		return ret;

	/* Before the mask is set: dma-iommu checks it at every mapping. */
	if (untrusted)
		pdev->untrusted = 1;
	t->pdev = pdev;
	t->dev = &pdev->dev;
	domain = iommu_get_domain_for_dev(t->dev);
	if (domain && iommu_is_dma_domain(domain))
		t->domain = domain;
	mutex_init(&t->lock);
	t->misc.minor = MISC_DYNAMIC_MINOR;
	t->misc.name = "test_dma_dirty";
	t->misc.fops = &tdd_fops;
	t->misc.parent = t->dev;
	ret = misc_register(&t->misc);
	if (ret)
		return ret;
	pci_set_drvdata(pdev, t);
	dev_info(t->dev, "bound; DMA through %s%s\n",
		 t->domain ? "dma-iommu" : "dma-direct",
		 untrusted ? ", untrusted" : "");
	return 0;
}

static void tdd_pci_remove(struct pci_dev *pdev)
{
	struct tdd *t = pci_get_drvdata(pdev);

	misc_deregister(&t->misc);
}

/* No ID table: bound only through driver_override. */
static struct pci_driver tdd_pci_driver = {
	.name = "test_dma_dirty",
	.probe = tdd_pci_probe,
	.remove = tdd_pci_remove,
};

static int __init tdd_init(void)
{
	int ret;

	ret = register_trace_dma_mark_dirty(tdd_probe_mark, NULL);
	if (ret)
		return ret;
	ret = pci_register_driver(&tdd_pci_driver);
	if (ret) {
		unregister_trace_dma_mark_dirty(tdd_probe_mark, NULL);
		tracepoint_synchronize_unregister();
	}
	return ret;
}

static void __exit tdd_exit(void)
{
	pci_unregister_driver(&tdd_pci_driver);
	unregister_trace_dma_mark_dirty(tdd_probe_mark, NULL);
	tracepoint_synchronize_unregister();
}

module_init(tdd_init);
module_exit(tdd_exit);
MODULE_DESCRIPTION("Test driver for dma_mark_dirty()");
MODULE_LICENSE("GPL");
