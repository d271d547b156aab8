/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_X86_DMA_DIRTY_H
#define _ASM_X86_DMA_DIRTY_H

#include <asm/cpufeature.h>

/*
 * dma_mark_dirty=auto picks "touch" under any hypervisor: every x86
 * hypervisor that migrates guests tracks guest writes to memory.
 */
static inline bool arch_dma_mark_dirty_guest(void)
{
	return boot_cpu_has(X86_FEATURE_HYPERVISOR);
}

#endif /* _ASM_X86_DMA_DIRTY_H */
