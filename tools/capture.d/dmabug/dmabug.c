// SPDX-License-Identifier: GPL-2.0
/*
 * dmabug — a guest kernel module for tools/capture's `dma-api-violation` configuration. It binds QEMU's
 * edu device (1234:11e8), has the device really read and write DMA buffers through the DMA API (so the
 * host sees the translations), and breaks three DMA-API rules on purpose, each a check of the kernel's
 * CONFIG_DMA_API_DEBUG (kernel/dma/debug.c, check_unmap):
 *   1. a TO_DEVICE buffer of 4096 bytes unmapped with size 2048 ("frees DMA memory with different size");
 *   2. a FROM_DEVICE buffer unmapped as DMA_TO_DEVICE ("frees DMA memory with different direction");
 *   3. a TO_DEVICE buffer never unmapped (still mapped when the recording stops; the driver stays bound).
 * The edu device (QEMU hw/misc/edu.c): BAR0 0x80 source, 0x88 destination, 0x90 count, 0x98 command
 * (bit 0 start, bit 1 direction: 0 RAM->device, 1 device->RAM); the device buffer is at 0x40000; the DMA
 * mask is 28 bits (edu clamps addresses to it).
 */
#include <linux/module.h>
#include <linux/pci.h>
#include <linux/dma-mapping.h>
#include <linux/slab.h>
#include <linux/delay.h>

#define EDU_DMA_SRC 0x80
#define EDU_DMA_DST 0x88
#define EDU_DMA_CNT 0x90
#define EDU_DMA_CMD 0x98
#define EDU_BUF 0x40000
#define LEN 4096

static void __iomem *bar;
static void *bufs[3];

static int edu_dma(struct pci_dev *pdev, dma_addr_t addr, bool to_ram)
{
	int i;

	writeq(to_ram ? EDU_BUF : addr, bar + EDU_DMA_SRC);
	writeq(to_ram ? addr : EDU_BUF, bar + EDU_DMA_DST);
	writeq(256, bar + EDU_DMA_CNT);
	writeq(1 | (to_ram ? 2 : 0), bar + EDU_DMA_CMD);
	for (i = 0; i < 1000; i++) {
		if (!(readq(bar + EDU_DMA_CMD) & 1))
			return 0;
		udelay(100);
	}
	dev_err(&pdev->dev, "dmabug: edu DMA did not complete\n");
	return -ETIMEDOUT;
}

static int dmabug_probe(struct pci_dev *pdev, const struct pci_device_id *id)
{
	dma_addr_t a;
	int i, err;

	err = pcim_enable_device(pdev);
	if (err)
		return err;
	bar = pcim_iomap(pdev, 0, 0);
	if (!bar)
		return -ENOMEM;
	pci_set_master(pdev);
	err = dma_set_mask_and_coherent(&pdev->dev, DMA_BIT_MASK(28));
	if (err)
		return err;
	for (i = 0; i < 3; i++) {
		bufs[i] = kzalloc(LEN, GFP_KERNEL);
		if (!bufs[i])
			return -ENOMEM;
	}

	/* 1: map 4096 TO_DEVICE, the device reads it, unmap with the wrong size */
	a = dma_map_single(&pdev->dev, bufs[0], LEN, DMA_TO_DEVICE);
	if (dma_mapping_error(&pdev->dev, a))
		return -ENOMEM;
	dev_info(&pdev->dev, "dmabug: 1 mapped %d bytes TO_DEVICE at %pad\n", LEN, &a);
	edu_dma(pdev, a, false);
	dma_unmap_single(&pdev->dev, a, LEN / 2, DMA_TO_DEVICE);
	dev_info(&pdev->dev, "dmabug: 1 unmapped %pad with size %d (wrong size)\n", &a, LEN / 2);

	/* 2: map FROM_DEVICE, the device writes it, unmap with the wrong direction */
	a = dma_map_single(&pdev->dev, bufs[1], LEN, DMA_FROM_DEVICE);
	if (dma_mapping_error(&pdev->dev, a))
		return -ENOMEM;
	dev_info(&pdev->dev, "dmabug: 2 mapped %d bytes FROM_DEVICE at %pad\n", LEN, &a);
	edu_dma(pdev, a, true);
	dma_unmap_single(&pdev->dev, a, LEN, DMA_TO_DEVICE);
	dev_info(&pdev->dev, "dmabug: 2 unmapped %pad as TO_DEVICE (wrong direction)\n", &a);

	/* 3: map TO_DEVICE, the device reads it, never unmap */
	a = dma_map_single(&pdev->dev, bufs[2], LEN, DMA_TO_DEVICE);
	if (dma_mapping_error(&pdev->dev, a))
		return -ENOMEM;
	dev_info(&pdev->dev, "dmabug: 3 mapped %d bytes TO_DEVICE at %pad, never unmapped\n", LEN, &a);
	edu_dma(pdev, a, false);
	return 0;
}

static const struct pci_device_id dmabug_ids[] = {
	{ PCI_DEVICE(0x1234, 0x11e8) },
	{ }
};
MODULE_DEVICE_TABLE(pci, dmabug_ids);

static struct pci_driver dmabug_driver = {
	.name = "dmabug",
	.id_table = dmabug_ids,
	.probe = dmabug_probe,
};
module_pci_driver(dmabug_driver);

MODULE_DESCRIPTION("dmatrace capture: DMA-API rules broken on purpose on QEMU's edu device");
MODULE_LICENSE("GPL");
