// SPDX-License-Identifier: GPL-2.0-only
/*
 * KVM_FEATURE_DMA_DIRTY: the flag KVM keeps in the structure registered with
 * MSR_KVM_DMA_DIRTY follows dirty logging, the pages reported with
 * KVM_HC_DMA_DIRTY appear in the dirty bitmap and the dirty ring exactly,
 * and hostile MSR values and hypercall arguments are refused with their
 * documented error while the VM keeps running.
 */
#include <asm/kvm_para.h>
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/kvm_para.h>
#include <asm/barrier.h>
#include <pthread.h>
#include <sched.h>

#include "test_util.h"
#include "kvm_util.h"
#include "processor.h"
#include "ucall_common.h"

/* A logged memslot that the guest never touches, followed by a hole. */
#define TEST_SLOT		1
#define TEST_GPA		0xc0000000ull
#define TEST_GFN		(TEST_GPA >> PAGE_SHIFT)
#define TEST_PAGES		2048
#define HOLE_GFN		(TEST_GFN + TEST_PAGES)

/* KVM's bound on the pages marked by one call (hypercalls.rst). */
#define MAX_PAGES_PER_CALL	1024

/* Entries of the dirty ring in ring mode: room for part of TEST_PAGES. */
#define TEST_RING_ENTRIES	1024

enum {
	STAGE_REGISTERED = 1,
	STAGE_REPORTED,
	STAGE_BOUNDED,
	STAGE_HOSTILE,
	STAGE_UNREGISTERED,
	STAGE_RESTORED,
	STAGE_LOGGING_OFF,
};

static struct kvm_dma_dirty dd __aligned(64);
static uint64_t dd_gpa;
/* Loops the guest made while it saw logging off, in the kick test. */
static uint64_t spins;
/* The largest GFN the guest's MAXPHYADDR allows. */
static uint64_t max_gfn;

static uint64_t dma_dirty(uint64_t gfn, uint64_t npages, uint64_t flags)
{
	return kvm_hypercall(KVM_HC_DMA_DIRTY, gfn, npages, flags, 0);
}

static void guest_msr_hostile(void)
{
	/* Reserved bit, misaligned, outside every memslot: #GP, unchanged. */
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY, dd_gpa | BIT(1)),
			GP_VECTOR);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY,
				   (dd_gpa + 32) | KVM_MSR_ENABLED), GP_VECTOR);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY,
				   (HOLE_GFN << PAGE_SHIFT) | KVM_MSR_ENABLED),
			GP_VECTOR);
	GUEST_ASSERT_EQ(rdmsr(MSR_KVM_DMA_DIRTY), 0);
}

static void guest_hc_hostile(void)
{
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 1, 1), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 1, BIT_ULL(63)), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 0, 0), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(~0ull, 2, 0), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, ~0ull, 0), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(max_gfn + 1, 1, 0), -KVM_EINVAL);
	GUEST_ASSERT_EQ(dma_dirty(max_gfn, 2, 0), -KVM_EINVAL);

	/* Outside memslots, or in one that does not log: consumed, no mark. */
	GUEST_ASSERT_EQ(dma_dirty(HOLE_GFN, 16, 0), 16);
	GUEST_ASSERT_EQ(dma_dirty(max_gfn, 1, 0), 1);
	GUEST_ASSERT_EQ(dma_dirty(dd_gpa >> PAGE_SHIFT, 1, 0), 1);
}

static void guest_code(void)
{
	uint64_t msr = dd_gpa | KVM_MSR_ENABLED;
	uint64_t r;

	guest_msr_hostile();
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 1, 0), -KVM_ENOENT);

	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY, msr), 0);
	GUEST_ASSERT_EQ(rdmsr(MSR_KVM_DMA_DIRTY), msr);
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), 0);
	GUEST_SYNC(STAGE_REGISTERED);

	/* The host turned logging on: the first load already sees it. */
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), KVM_DMA_DIRTY_LOGGING);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN + 3, 5, 0), 5);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN + 100, 1, 0), 1);
	GUEST_SYNC(STAGE_REPORTED);

	/* Bounded per call; the rest runs into the hole after the slot. */
	r = dma_dirty(HOLE_GFN - 1100, 1200, 0);
	GUEST_ASSERT_EQ(r, MAX_PAGES_PER_CALL);
	GUEST_ASSERT_EQ(dma_dirty(HOLE_GFN - 1100 + r, 1200 - r, 0), 1200 - r);
	GUEST_SYNC(STAGE_BOUNDED);

	guest_hc_hostile();
	GUEST_SYNC(STAGE_HOSTILE);

	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY, 0), 0);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 1, 0), -KVM_ENOENT);
	GUEST_SYNC(STAGE_UNREGISTERED);

	/*
	 * The host dropped the registration, as a VMM that does not know the
	 * MSR does on migration, and stopped logging, but the copy of the
	 * structure still says "logging": the guest reports, is told that it
	 * has no registration, registers again and sees the real flag.
	 */
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), KVM_DMA_DIRTY_LOGGING);
	GUEST_ASSERT_EQ(dma_dirty(TEST_GFN, 1, 0), -KVM_ENOENT);
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY, msr), 0);
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), 0);
	GUEST_SYNC(STAGE_RESTORED);

	/* Logging on, then off again: the flag follows at once. */
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), KVM_DMA_DIRTY_LOGGING);
	GUEST_SYNC(STAGE_LOGGING_OFF);
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), 0);
	GUEST_DONE();
}

/* Ring mode: report every page of the slot, whatever the ring can hold. */
static void guest_code_ring(void)
{
	uint64_t gfn = TEST_GFN, npages = TEST_PAGES, r;

	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY,
				   dd_gpa | KVM_MSR_ENABLED), 0);
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), 0);
	GUEST_SYNC(STAGE_REGISTERED);

	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), KVM_DMA_DIRTY_LOGGING);
	while (npages) {
		r = dma_dirty(gfn, npages, 0);
		GUEST_ASSERT(r <= npages);
		gfn += r;
		npages -= r;
	}
	GUEST_SYNC(STAGE_REPORTED);
	GUEST_SYNC(STAGE_LOGGING_OFF);
	GUEST_ASSERT_EQ(READ_ONCE(dd.flags), 0);
	GUEST_DONE();
}

/*
 * Miniature migration: the host's "device" wrote [mig_gfn, mig_gfn +
 * mig_npages) behind KVM's back; the guest reports it, if told to and if
 * the flag says that KVM logs, as the kvm backend does on DMA unmap.
 */
static uint64_t mig_gfn, mig_npages;
static bool mig_report;

static void guest_code_migrate(void)
{
	uint64_t gfn, npages, r;

	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY,
				   dd_gpa | KVM_MSR_ENABLED), 0);
	for (;;) {
		GUEST_SYNC(STAGE_REPORTED);
		gfn = READ_ONCE(mig_gfn);
		npages = READ_ONCE(mig_npages);
		if (!READ_ONCE(mig_report) || !READ_ONCE(dd.flags))
			continue;
		while (npages) {
			r = dma_dirty(gfn, npages, 0);
			GUEST_ASSERT(r && r <= npages);
			gfn += r;
			npages -= r;
		}
	}
}

/* Spin until the flag says logging, counting the loads that said not. */
static void guest_code_kick(void)
{
	GUEST_ASSERT_EQ(wrmsr_safe(MSR_KVM_DMA_DIRTY,
				   dd_gpa | KVM_MSR_ENABLED), 0);
	while (!READ_ONCE(dd.flags))
		WRITE_ONCE(spins, spins + 1);
	GUEST_SYNC(STAGE_REPORTED);
	GUEST_DONE();
}

static struct kvm_vm *create_vm(struct kvm_vcpu **vcpu, void *guest_code,
				uint32_t ring_entries)
{
	struct kvm_vm *vm;

	vm = __vm_create(VM_SHAPE_DEFAULT, 1, 0);
	if (ring_entries)
		vm_enable_dirty_ring(vm, ring_entries *
				     sizeof(struct kvm_dirty_gfn));
	*vcpu = vm_vcpu_add(vm, 0, guest_code);

	TEST_ASSERT(vcpu_cpuid_has(*vcpu, X86_FEATURE_KVM_DMA_DIRTY),
		    "KVM_FEATURE_DMA_DIRTY missing from the vCPU's CPUID");
	vcpu_enable_cap(*vcpu, KVM_CAP_ENFORCE_PV_FEATURE_CPUID, 1);

	vm_userspace_mem_region_add(vm, VM_MEM_SRC_ANONYMOUS, TEST_GPA,
				    TEST_SLOT, TEST_PAGES, 0);

	dd_gpa = addr_gva2gpa(vm, (vm_vaddr_t)&dd);
	TEST_ASSERT(!(dd_gpa & 63), "dd at GPA 0x%lx is not 64-byte aligned",
		    dd_gpa);
	sync_global_to_guest(vm, dd_gpa);
	max_gfn = (1ull << vm->pa_bits) / PAGE_SIZE - 1;
	sync_global_to_guest(vm, max_gfn);
	return vm;
}

static uint32_t host_flags(struct kvm_vm *vm)
{
	struct kvm_dma_dirty *hva = addr_gva2hva(vm, (vm_vaddr_t)&dd);

	return READ_ONCE(hva->flags);
}

static void set_host_flags(struct kvm_vm *vm, uint32_t flags)
{
	struct kvm_dma_dirty *hva = addr_gva2hva(vm, (vm_vaddr_t)&dd);

	WRITE_ONCE(hva->flags, flags);
}

static void set_logging(struct kvm_vm *vm, bool on)
{
	vm_mem_region_set_flags(vm, TEST_SLOT, on ? KVM_MEM_LOG_DIRTY_PAGES : 0);
}

/* Run until a ucall, return its stage (0 when the guest is done). */
static uint64_t run_stage(struct kvm_vcpu *vcpu)
{
	struct ucall uc;

	vcpu_run(vcpu);
	TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);

	switch (get_ucall(vcpu, &uc)) {
	case UCALL_SYNC:
		return uc.args[1];
	case UCALL_DONE:
		return 0;
	case UCALL_ABORT:
		REPORT_GUEST_ASSERT(uc);
	default:
		TEST_FAIL("Unexpected ucall %lu", uc.cmd);
	}
	return 0;
}

static void expect_stage(struct kvm_vcpu *vcpu, uint64_t stage)
{
	uint64_t got = run_stage(vcpu);

	TEST_ASSERT(got == stage, "Expected stage %lu, got %lu", stage, got);
}

/* The slot's dirty bitmap is exactly [first, last] pages, or empty. */
static void check_dirty_log(struct kvm_vm *vm, unsigned long *bmap,
			    uint64_t first, uint64_t last, uint64_t extra)
{
	uint64_t page;
	bool want;

	kvm_vm_get_dirty_log(vm, TEST_SLOT, bmap);
	for (page = 0; page < TEST_PAGES; page++) {
		want = (page >= first && page <= last) || page == extra;
		TEST_ASSERT(test_bit(page, bmap) == want,
			    "Page %lu of the slot is %sdirty, expected [%lu, %lu] and %lu",
			    page, want ? "not " : "", first, last, extra);
	}
}

#define NOTHING		(~0ull)

static void test_bitmap(void)
{
	unsigned long *bmap = bitmap_zalloc(TEST_PAGES);
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;

	pr_info("Testing the dirty bitmap\n");
	vm = create_vm(&vcpu, guest_code, 0);

	/*
	 * Host-initiated writes are checked as the guest's are, except
	 * against the memslots: a VMM may restore MSRs before it creates them.
	 */
	TEST_ASSERT(!_vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY, dd_gpa | BIT(1)),
		    "KVM_SET_MSRS took a reserved bit");
	TEST_ASSERT(!_vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY,
				   (max_gfn + 1) << PAGE_SHIFT),
		    "KVM_SET_MSRS took a GPA beyond MAXPHYADDR");
	vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY,
		     (HOLE_GFN << PAGE_SHIFT) | KVM_MSR_ENABLED);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_DMA_DIRTY),
		       (HOLE_GFN << PAGE_SHIFT) | KVM_MSR_ENABLED);
	vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY, 0);

	expect_stage(vcpu, STAGE_REGISTERED);
	TEST_ASSERT_EQ(vcpu_get_msr(vcpu, MSR_KVM_DMA_DIRTY),
		       dd_gpa | KVM_MSR_ENABLED);
	TEST_ASSERT_EQ(host_flags(vm), 0);
	set_logging(vm, true);
	/* In guest memory already, before the vCPU runs again. */
	TEST_ASSERT_EQ(host_flags(vm), KVM_DMA_DIRTY_LOGGING);

	expect_stage(vcpu, STAGE_REPORTED);
	check_dirty_log(vm, bmap, 3, 7, 100);

	expect_stage(vcpu, STAGE_BOUNDED);
	check_dirty_log(vm, bmap, TEST_PAGES - 1100, TEST_PAGES - 1, NOTHING);

	expect_stage(vcpu, STAGE_HOSTILE);
	check_dirty_log(vm, bmap, NOTHING, 0, NOTHING);

	expect_stage(vcpu, STAGE_UNREGISTERED);
	check_dirty_log(vm, bmap, NOTHING, 0, NOTHING);

	/* What a VMM that does not migrate the MSR leaves behind. */
	vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY, 0);
	set_logging(vm, false);
	TEST_ASSERT_EQ(host_flags(vm), KVM_DMA_DIRTY_LOGGING);

	expect_stage(vcpu, STAGE_RESTORED);
	TEST_ASSERT_EQ(host_flags(vm), 0);
	set_logging(vm, true);
	/*
	 * A VMM restoring the registration over a stale copy of the area:
	 * KVM writes the flag before the vCPU runs again (the guest checks).
	 */
	set_host_flags(vm, 0);
	vcpu_set_msr(vcpu, MSR_KVM_DMA_DIRTY, dd_gpa | KVM_MSR_ENABLED);

	expect_stage(vcpu, STAGE_LOGGING_OFF);
	set_logging(vm, false);
	TEST_ASSERT_EQ(host_flags(vm), 0);

	expect_stage(vcpu, 0);
	kvm_vm_free(vm);
	free(bmap);
}

/* Harvest the ring into @bmap, return the number of entries. */
static uint32_t harvest_ring(struct kvm_vm *vm, struct kvm_dirty_gfn *ring,
			     uint32_t *fetch, unsigned long *bmap)
{
	struct kvm_dirty_gfn *cur;
	uint32_t count = 0;

	for (;;) {
		cur = &ring[*fetch % TEST_RING_ENTRIES];
		/* The entry's contents are valid once KVM set its flag. */
		if (smp_load_acquire(&cur->flags) != KVM_DIRTY_GFN_F_DIRTY)
			break;
		TEST_ASSERT(cur->slot == TEST_SLOT && cur->offset < TEST_PAGES,
			    "Ring entry for slot %u offset 0x%llx",
			    cur->slot, cur->offset);
		TEST_ASSERT(!test_bit(cur->offset, bmap),
			    "Page %llu harvested twice", cur->offset);
		set_bit(cur->offset, bmap);
		/* Hand the entry back only after it was read. */
		smp_store_release(&cur->flags, KVM_DIRTY_GFN_F_RESET);
		(*fetch)++;
		count++;
	}
	TEST_ASSERT(count <= TEST_RING_ENTRIES, "%u entries in a ring of %u",
		    count, TEST_RING_ENTRIES);
	kvm_vm_reset_dirty_ring(vm);
	return count;
}

static void test_ring(void)
{
	unsigned long *bmap = bitmap_zalloc(TEST_PAGES);
	uint32_t fetch = 0, full_exits = 0, total = 0, n;
	struct kvm_dirty_gfn *ring;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	struct ucall uc;

	pr_info("Testing the dirty ring (%u entries)\n", TEST_RING_ENTRIES);
	vm = create_vm(&vcpu, guest_code_ring, TEST_RING_ENTRIES);
	ring = vcpu_map_dirty_ring(vcpu);

	expect_stage(vcpu, STAGE_REGISTERED);
	set_logging(vm, true);

	for (;;) {
		vcpu_run(vcpu);
		if (vcpu->run->exit_reason == KVM_EXIT_DIRTY_RING_FULL) {
			n = harvest_ring(vm, ring, &fetch, bmap);
			TEST_ASSERT(n, "Dirty ring full with no entry");
			total += n;
			full_exits++;
			continue;
		}
		TEST_ASSERT_KVM_EXIT_REASON(vcpu, KVM_EXIT_IO);
		if (get_ucall(vcpu, &uc) == UCALL_ABORT)
			REPORT_GUEST_ASSERT(uc);
		TEST_ASSERT(uc.cmd == UCALL_SYNC && uc.args[1] == STAGE_REPORTED,
			    "Unexpected ucall %lu", uc.cmd);
		break;
	}
	total += harvest_ring(vm, ring, &fetch, bmap);

	TEST_ASSERT(full_exits, "The ring of %u never filled up",
		    TEST_RING_ENTRIES);
	/* No page twice (harvest_ring()) and as many as pages: each once. */
	TEST_ASSERT(total == TEST_PAGES, "Harvested %u pages, expected %u",
		    total, TEST_PAGES);
	pr_info("%u pages reported through %u ring-full exits\n", total,
		full_exits);

	set_logging(vm, false);
	expect_stage(vcpu, STAGE_LOGGING_OFF);
	expect_stage(vcpu, 0);
	kvm_vm_free(vm);
	free(bmap);
}

static void *vcpu_thread(void *arg)
{
	expect_stage(arg, STAGE_REPORTED);
	return NULL;
}

/*
 * The flag is in memory, visible to a vCPU running in guest mode, once the
 * ioctl that turned logging on returns: the vCPU, spinning on it, finishes
 * at most the loop iteration it was in.  KVM_DIRTY_LOG_INITIALLY_SET, as
 * QEMU uses it, so that turning logging on does not write-protect (and, on
 * AMD, does not kick) the vCPU.
 */
static void test_running_vcpu(void)
{
	uint64_t *hva_spins;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint64_t before, after;
	pthread_t thread;

	pr_info("Testing that the flag reaches a running vCPU\n");
	vm = create_vm(&vcpu, guest_code_kick, 0);
	if (kvm_check_cap(KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2) &
	    KVM_DIRTY_LOG_INITIALLY_SET)
		vm_enable_cap(vm, KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2,
			      KVM_DIRTY_LOG_MANUAL_PROTECT_ENABLE |
			      KVM_DIRTY_LOG_INITIALLY_SET);
	hva_spins = addr_gva2hva(vm, (vm_vaddr_t)&spins);

	TEST_ASSERT(!pthread_create(&thread, NULL, vcpu_thread, vcpu),
		    "pthread_create");
	while (READ_ONCE(*hva_spins) < 1000)
		sched_yield();

	set_logging(vm, true);
	before = READ_ONCE(*hva_spins);
	pthread_join(thread, NULL);
	after = READ_ONCE(*hva_spins);
	TEST_ASSERT(after - before <= 1,
		    "The guest spun %lu more times after logging was on (%lu before)",
		    after - before, before);
	pr_info("%lu loops before logging, %lu after the ioctl returned\n",
		before, after - before);

	expect_stage(vcpu, 0);
	kvm_vm_free(vm);
}

#define MIG_ROUNDS	32

/*
 * A migration as dirty_log_test.c does it: a first pass copies the whole
 * slot, then each round the "device" (this thread, through the host
 * mapping, which KVM does not track) writes a few pages, the guest runs and
 * reports them, and the pages the dirty log names are copied again.  With
 * the reports the copy matches guest memory at the end; without them it
 * keeps what the first pass saw.  Returns the pages that differ.
 */
static uint64_t mini_migration(bool report)
{
	unsigned long *bmap = bitmap_zalloc(TEST_PAGES);
	uint64_t round, page, npages, differ = 0;
	struct kvm_vcpu *vcpu;
	struct kvm_vm *vm;
	uint8_t *mem, *copy;

	vm = create_vm(&vcpu, guest_code_migrate, 0);
	mem = addr_gpa2hva(vm, TEST_GPA);
	copy = malloc(TEST_PAGES * PAGE_SIZE);
	TEST_ASSERT(copy, "malloc");
	mig_report = report;
	sync_global_to_guest(vm, mig_report);
	expect_stage(vcpu, STAGE_REPORTED);

	set_logging(vm, true);
	kvm_vm_get_dirty_log(vm, TEST_SLOT, bmap);
	memcpy(copy, mem, TEST_PAGES * PAGE_SIZE);

	srandom(1);
	for (round = 1; round <= MIG_ROUNDS; round++) {
		/* The device writes 1 to 40 pages, contiguous. */
		npages = 1 + random() % 40;
		page = random() % (TEST_PAGES - npages);
		memset(mem + page * PAGE_SIZE, round, npages * PAGE_SIZE);
		mig_gfn = TEST_GFN + page;
		mig_npages = npages;
		sync_global_to_guest(vm, mig_gfn);
		sync_global_to_guest(vm, mig_npages);
		expect_stage(vcpu, STAGE_REPORTED);

		kvm_vm_get_dirty_log(vm, TEST_SLOT, bmap);
		for (page = 0; page < TEST_PAGES; page++)
			if (test_bit(page, bmap))
				memcpy(copy + page * PAGE_SIZE,
				       mem + page * PAGE_SIZE, PAGE_SIZE);
	}
	for (page = 0; page < TEST_PAGES; page++)
		if (memcmp(copy + page * PAGE_SIZE, mem + page * PAGE_SIZE,
			   PAGE_SIZE))
			differ++;
	pr_info("%s the guest's reports, %lu of %u pages differ after %u rounds\n",
		report ? "With" : "Without", differ, TEST_PAGES, MIG_ROUNDS);
	kvm_vm_free(vm);
	free(copy);
	free(bmap);
	return differ;
}

static int run_migrate(void)
{
	TEST_ASSERT(mini_migration(false) > 0,
		    "Without reports, the copy matched: the device's writes were seen some other way");
	TEST_ASSERT(mini_migration(true) == 0,
		    "With reports, the copy differs from guest memory");
	return KSFT_PASS;
}

static int run_bitmap(void)
{
	test_bitmap();
	return KSFT_PASS;
}

static int run_running_vcpu(void)
{
	test_running_vcpu();
	return KSFT_PASS;
}

static int run_ring(void)
{
	if (!kvm_has_cap(KVM_CAP_DIRTY_LOG_RING))
		return KSFT_SKIP;
	test_ring();
	return KSFT_PASS;
}

static const struct {
	const char *name;
	int (*fn)(void);
} tests[] = {
	{ "bitmap", run_bitmap },
	{ "running_vcpu", run_running_vcpu },
	{ "ring", run_ring },
	{ "migrate", run_migrate },
};

int main(int argc, char *argv[])
{
	int i;

	/* "-l": the tests, one per line, for a harness to count */
	if (argc > 1 && !strcmp(argv[1], "-l")) {
		for (i = 0; i < ARRAY_SIZE(tests); i++)
			printf("%s\n", tests[i].name);
		return 0;
	}
	TEST_REQUIRE(kvm_cpu_has(X86_FEATURE_KVM_DMA_DIRTY));
	TEST_REQUIRE(kvm_has_cap(KVM_CAP_ENFORCE_PV_FEATURE_CPUID));

	ksft_print_header();
	ksft_set_plan(ARRAY_SIZE(tests));
	for (i = 0; i < ARRAY_SIZE(tests); i++) {
		/* A failed assertion ends the program: fewer results. */
		if (tests[i].fn() == KSFT_SKIP)
			ksft_test_result_skip("%s: KVM_CAP_DIRTY_LOG_RING not supported\n",
					      tests[i].name);
		else
			ksft_test_result_pass("%s\n", tests[i].name);
	}
	ksft_finished();
}
