/* SPDX-License-Identifier: GPL-2.0 */
#ifndef _ASM_X86_DMA_DIRTY_H
#define _ASM_X86_DMA_DIRTY_H

#include <linux/types.h>
#include <asm/asm.h>

/*
 * Make the hypervisor see a write to the byte at @p without changing it: a
 * locked OR of zero.  The locked read-modify-write cannot lose a store
 * another CPU makes to the same byte, and it is a write for EPT/NPT dirty
 * bits, write protection and PML alike.  Works at any alignment.  Returns
 * false, without oopsing, if the page is read-only.
 */
static __always_inline bool arch_dma_dirty_touch(u8 *p)
{
	asm goto("1: lock orb $0, %0\n"
		 _ASM_EXTABLE(1b, %l[fault])
		 : : "m" (*p) : "memory" : fault);
	return true;
fault:
	return false;
}

#endif /* _ASM_X86_DMA_DIRTY_H */
