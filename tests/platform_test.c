// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tests of the emulated PAPR machine (machine.h) as a client partition sees
 * it through the in-process platform (platform.h), and of the hypervisor
 * end of a VMC connection (ovmc_vmc_hv_*). Expected values come from the
 * header contracts and docs/protocol.md sections 1 and 2.
 */
#include "harness.h"

#include <openvmc/machine.h>
#include <openvmc/platform.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <sys/stat.h>

#define MEM_SIZE (256u * 1024u)
#define HV_WINDOW (256u * 1024u)
/* Where the tests put the partition's CRQ (one page, 256 entries). */
#define CRQ_IOBA 0x4000u
#define CRQ_ENTRIES (OVMC_PAGE_SIZE / OVMC_CRQ_ENTRY_SIZE)

struct fx {
	struct ovmc_machine *m;
	struct ovmc_platform *p;
	struct ovmc_vmc *vmc;
	struct ovmc_vmc_node node;
	uint8_t *mem;
	size_t mem_size;
	/* hook observations */
	unsigned created, pending, destroyed;
	struct ovmc_vmc *created_vmc;
	/* entries drained from the hv queue inside vmc_pending (remove test) */
	bool drain_in_pending;
	uint8_t drained[8][OVMC_CRQ_ENTRY_SIZE];
	unsigned n_drained;
};

static void hook_created(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;

	f->created++;
	f->created_vmc = vmc;
}

static void hook_pending(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;

	f->pending++;
	if (f->drain_in_pending) {
		uint8_t e[OVMC_CRQ_ENTRY_SIZE];

		while (ovmc_vmc_hv_receive(vmc, e) == 1) {
			if (f->n_drained < 8)
				memcpy(f->drained[f->n_drained], e, sizeof(e));
			f->n_drained++;
		}
	}
}

static void hook_destroyed(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;

	(void)vmc;
	f->destroyed++;
}

static void fx_free(void *arg)
{
	struct fx *f = arg;

	if (f->p)
		ovmc_platform_destroy(f->p);
	if (f->m)
		ovmc_machine_free(f->m);
	free(f);
}

/* A machine with one in-process partition; `cfg` NULL for the defaults. */
static struct fx *fx_new(const struct ovmc_inproc_config *cfg)
{
	struct ovmc_inproc_config def = {
		.mem_size = MEM_SIZE,
		.vmc_present = true,
		.request_vmc_rc = OVMC_H_SUCCESS,
		.hv_window_size = HV_WINDOW,
	};
	struct ovmc_machine_hooks hooks = {
		.vmc_created = hook_created,
		.vmc_pending = hook_pending,
		.vmc_destroyed = hook_destroyed,
	};
	struct fx *f = calloc(1, sizeof(*f));

	CHECK(f != NULL);
	ovmc_test_defer(fx_free, f);
	hooks.arg = f;
	CHECK_EQ(ovmc_machine_new(&hooks, &f->m), 0);
	CHECK_EQ(ovmc_inproc_new(f->m, cfg ? cfg : &def, &f->p), 0);
	f->mem = ovmc_platform_memory(f->p, &f->mem_size);
	CHECK(f->mem != NULL);
	f->vmc = ovmc_part_vmc(ovmc_inproc_part(f->p));
	if (f->vmc)
		CHECK_EQ(ovmc_platform_vmc_node(f->p, &f->node), 0);
	return f;
}

static void fx_reg_partition(struct fx *f)
{
	long rc = ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE);

	CHECK(rc == OVMC_H_SUCCESS || rc == OVMC_H_CLOSED);
}

/* Both ends registered, partition CRQ at CRQ_IOBA. */
static struct fx *fx_linked(const struct ovmc_inproc_config *cfg)
{
	struct fx *f = fx_new(cfg);

	CHECK(f->vmc != NULL);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	return f;
}

static uint8_t *crq_slot(struct fx *f, unsigned i)
{
	return f->mem + CRQ_IOBA + (size_t)i * OVMC_CRQ_ENTRY_SIZE;
}

/* A valid 0x80 entry whose payload bytes are derived from `seed`. */
static void make_entry(uint8_t e[OVMC_CRQ_ENTRY_SIZE], unsigned seed)
{
	e[0] = OVMC_CRQ_CMD;
	for (unsigned i = 1; i < OVMC_CRQ_ENTRY_SIZE; i++)
		e[i] = (uint8_t)(seed * 31u + i * 7u + (seed >> 8));
}

static bool irq_pending(struct fx *f)
{
	struct pollfd pfd = {.fd = ovmc_platform_irq_fd(f->p), .events = POLLIN};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

static long send_words(struct fx *f, const uint8_t e[OVMC_CRQ_ENTRY_SIZE])
{
	uint64_t hi = ovmc_get_be64(e), lo = ovmc_get_be64(e + 8);

	return ovmc_h_send_crq(f->p, f->node.unit_address, hi, lo);
}

/* ---- the VMC node and partition memory ---- */

TEST(vmc_node_describes_both_windows)
{
	struct fx *f = fx_new(NULL);
	size_t hv_size = 0;

	CHECK(f->vmc != NULL);
	CHECK(f->node.liobn_local != f->node.liobn_remote);
	CHECK_EQ(f->node.liobn_remote, ovmc_vmc_hv_liobn(f->vmc));
	CHECK_EQ(f->node.window_local, f->mem_size);
	CHECK(ovmc_vmc_hv_memory(f->vmc, &hv_size) != NULL);
	CHECK_EQ(f->node.window_remote, hv_size);
	CHECK(hv_size >= HV_WINDOW);
	CHECK_EQ(f->created, 1);
	CHECK(f->created_vmc == f->vmc);
}

TEST(inproc_memory_rounded_up_to_page)
{
	struct ovmc_inproc_config cfg = {.mem_size = 5000, .vmc_present = true};
	struct fx *f = fx_new(&cfg);

	CHECK_EQ(f->mem_size, 2 * OVMC_PAGE_SIZE);
	/* The whole rounded size is usable for a queue. */
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, OVMC_PAGE_SIZE, OVMC_PAGE_SIZE),
		 OVMC_H_CLOSED);
}

/* ---- H_REG_CRQ ---- */

TEST(reg_crq_unknown_unit_address_returns_parameter)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address + 1, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, 0, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
}

TEST(reg_crq_unaligned_ioba_returns_parameter)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, 16, OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA + 2048, OVMC_PAGE_SIZE),
		 OVMC_H_PARAMETER);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
}

TEST(reg_crq_zero_length_returns_parameter)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, 0), OVMC_H_PARAMETER);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
}

TEST(reg_crq_length_not_page_multiple_returns_parameter)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, 16), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE + 16),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE - 1),
		 OVMC_H_PARAMETER);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
}

TEST(reg_crq_beyond_partition_memory_returns_parameter)
{
	struct fx *f = fx_new(NULL);
	uint64_t unit = f->node.unit_address;

	CHECK_EQ(ovmc_h_reg_crq(f->p, unit, f->mem_size, OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, unit, f->mem_size - OVMC_PAGE_SIZE, 2 * OVMC_PAGE_SIZE),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, unit, 0, f->mem_size + OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	/* ioba + len wraps around 2^64 */
	CHECK_EQ(ovmc_h_reg_crq(f->p, unit, UINT64_MAX - OVMC_PAGE_SIZE + 1, 2 * OVMC_PAGE_SIZE),
		 OVMC_H_PARAMETER);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
	/* The last page itself is fine. */
	CHECK_EQ(ovmc_h_reg_crq(f->p, unit, f->mem_size - OVMC_PAGE_SIZE, OVMC_PAGE_SIZE),
		 OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), CRQ_ENTRIES);
}

TEST(reg_crq_twice_returns_resource)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_CLOSED);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_RESOURCE);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, 0, 2 * OVMC_PAGE_SIZE),
		 OVMC_H_RESOURCE);
	/* The first registration stands. */
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), CRQ_ENTRIES);
}

TEST(reg_crq_after_free_crq_succeeds_again)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_CLOSED);
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), 0);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, 0, 2 * OVMC_PAGE_SIZE), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), 2 * CRQ_ENTRIES);
}

TEST(reg_crq_without_hv_end_returns_closed)
{
	struct fx *f = fx_new(NULL);

	CHECK(!ovmc_vmc_hv_registered(f->vmc));
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_CLOSED);
	CHECK(ovmc_vmc_partition_registered(f->vmc));
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), CRQ_ENTRIES);
	/* The hypervisor end opening later sees the partition already there. */
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
}

TEST(reg_crq_with_hv_end_registered_returns_success)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK(ovmc_vmc_hv_registered(f->vmc));
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	CHECK(ovmc_vmc_partition_registered(f->vmc));
}

TEST(hv_register_twice_returns_resource)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_RESOURCE);
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK(!ovmc_vmc_hv_registered(f->vmc));
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
}

TEST(reg_crq_without_vmc_returns_parameter)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE, .vmc_present = false, .request_vmc_rc = OVMC_H_SUCCESS};
	struct fx *f = fx_new(&cfg);
	struct ovmc_vmc_node node;

	CHECK(f->vmc == NULL);
	CHECK_EQ(ovmc_platform_vmc_node(f->p, &node), -ENODEV);
	CHECK_EQ(ovmc_h_reg_crq(f->p, 0x71000001u, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_reg_crq(f->p, 0, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_send_crq(f->p, 0, 0x8000000000000000ull, 0), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_free_crq(f->p, 0), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_vio_signal(f->p, 0, OVMC_VIO_IRQ_ENABLE), OVMC_H_PARAMETER);
	CHECK_EQ(f->created, 0);
}

/* ---- H_SEND_CRQ: partition to hypervisor ---- */

TEST(send_crq_header_without_bit7_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	static const uint8_t headers[] = {0x00, 0x01, 0x40, 0x7F};

	for (unsigned i = 0; i < sizeof(headers); i++) {
		uint64_t hi = (uint64_t)headers[i] << 56 | 0x0001020304050607ull;

		CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, hi, 0), OVMC_H_PARAMETER);
	}
	uint8_t e[16];

	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	CHECK_EQ(f->pending, 0);
}

TEST(send_crq_transport_header_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xFF02000000000000ull, 0),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xFF01000000000000ull, 0),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	/* The other valid headers pass. */
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xFE00000000000000ull, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_EQ(e[0], 0xC0);
	CHECK_EQ(e[1], 0x01);
}

TEST(send_crq_unknown_unit_address_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address ^ 0x10, 0x8001000000000000ull, 0),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
}

TEST(send_crq_partition_not_registered_returns_closed)
{
	struct fx *f = fx_new(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
}

TEST(send_crq_hv_end_not_registered_returns_closed)
{
	struct fx *f = fx_new(NULL);

	fx_reg_partition(f);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_CLOSED);
	/* and again after the hv end came and went */
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_CLOSED);
}

TEST(send_crq_entries_arrive_in_order_with_exact_bytes)
{
	struct fx *f = fx_linked(NULL);
	static const uint8_t want0[16] = {0x80, 0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
					  0x08, 0x09, 0x0A, 0x0B, 0x0C, 0x0D, 0x0E, 0x0F};
	uint8_t e[16], want[16];

	/* byte 0 of the entry is bits 63..56 of msg_hi, byte 8 bits 63..56 of msg_lo */
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0x8001020304050607ull,
				 0x08090A0B0C0D0E0Full),
		 OVMC_H_SUCCESS);
	for (unsigned i = 1; i <= 20; i++) {
		make_entry(want, i);
		CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
	}
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_MEM(e, want0, 16);
	for (unsigned i = 1; i <= 20; i++) {
		make_entry(want, i);
		CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
		CHECK_MEM(e, want, 16);
	}
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	CHECK(f->pending >= 1);
}

TEST(send_crq_into_full_hv_queue_returns_dropped)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE, .vmc_present = true, .hv_queue_entries = 4};
	struct fx *f = fx_linked(&cfg);
	struct ovmc_machine_stats st;
	uint8_t e[16], want[16];

	for (unsigned i = 0; i < 4; i++) {
		make_entry(want, i);
		CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
	}
	make_entry(want, 99);
	CHECK_EQ(send_words(f, want), OVMC_H_DROPPED);
	CHECK_EQ(send_words(f, want), OVMC_H_DROPPED);
	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.dropped_full, 2);
	/* Nothing overwritten: the first four are intact, in order. */
	for (unsigned i = 0; i < 4; i++) {
		make_entry(want, i);
		CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
		CHECK_MEM(e, want, 16);
	}
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	/* Room again after the hypervisor end consumed. */
	make_entry(want, 5);
	CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_MEM(e, want, 16);
}

TEST(send_crq_hv_queue_wraps_around)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE, .vmc_present = true, .hv_queue_entries = 3};
	struct fx *f = fx_linked(&cfg);
	uint8_t e[16], want[16];

	for (unsigned i = 0; i < 10; i++) {
		make_entry(want, i);
		CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
		make_entry(want, 100 + i);
		CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
		make_entry(want, i);
		CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
		CHECK_MEM(e, want, 16);
		make_entry(want, 100 + i);
		CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
		CHECK_MEM(e, want, 16);
	}
}

/* ---- delivery into the partition's CRQ ---- */

TEST(hv_send_writes_exact_bytes_at_producer_slot)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e0[16], e1[16];
	uint8_t before[OVMC_PAGE_SIZE];

	/* Memory around the queue stays untouched. */
	memset(f->mem + CRQ_IOBA - 16, 0x5A, 16);
	memset(f->mem + CRQ_IOBA + OVMC_PAGE_SIZE, 0xA5, 16);
	make_entry(e0, 1);
	make_entry(e1, 2);
	e1[0] = OVMC_CRQ_INIT;
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e0), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 0), e0, 16);
	CHECK_EQ(crq_slot(f, 1)[0], 0);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e1), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 0), e0, 16);
	CHECK_MEM(crq_slot(f, 1), e1, 16);
	memcpy(before, crq_slot(f, 2), OVMC_PAGE_SIZE - 32);
	for (unsigned i = 0; i < OVMC_PAGE_SIZE - 32; i++)
		CHECK_EQ(before[i], 0);
	for (unsigned i = 0; i < 16; i++) {
		CHECK_EQ(f->mem[CRQ_IOBA - 16 + i], 0x5A);
		CHECK_EQ(f->mem[CRQ_IOBA + OVMC_PAGE_SIZE + i], 0xA5);
	}
}

TEST(hv_send_bad_header_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16] = {0};

	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_PARAMETER);
	e[0] = 0x7F;
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_PARAMETER);
	e[0] = 0xFF;
	e[1] = 0x02;
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_PARAMETER);
	CHECK_EQ(crq_slot(f, 0)[0], 0);
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 0);
}

TEST(hv_send_with_either_end_unregistered_returns_closed)
{
	struct fx *f = fx_new(NULL);
	uint8_t e[16];

	make_entry(e, 3);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_CLOSED);
	fx_reg_partition(f);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 0), e, 16);
	crq_slot(f, 0)[0] = 0;
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_CLOSED);
	CHECK_EQ(crq_slot(f, 1)[0], 0);
}

TEST(hv_send_wraps_after_last_slot)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	for (unsigned i = 0; i < CRQ_ENTRIES; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
		CHECK_MEM(crq_slot(f, i), e, 16);
		crq_slot(f, i)[0] = 0; /* consumed */
	}
	make_entry(e, 1000);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 0), e, 16);
	make_entry(e, 1001);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 1), e, 16);
	/* The slot before the queue is not the wrap target. */
	for (unsigned i = 0; i < 16; i++)
		CHECK_EQ(f->mem[CRQ_IOBA - 16 + i], 0);
}

TEST(hv_send_into_valid_slot_returns_dropped_and_leaves_queue_unchanged)
{
	struct fx *f = fx_linked(NULL);
	uint8_t *snap = malloc(OVMC_PAGE_SIZE);
	uint8_t e[16];
	struct ovmc_machine_stats st;

	CHECK(snap != NULL);
	ovmc_test_defer(free, snap);
	for (unsigned i = 0; i < CRQ_ENTRIES; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	}
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), CRQ_ENTRIES);
	memcpy(snap, crq_slot(f, 0), OVMC_PAGE_SIZE);
	make_entry(e, 4242);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_DROPPED);
	CHECK_MEM(crq_slot(f, 0), snap, OVMC_PAGE_SIZE);
	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.dropped_full, 1);
}

TEST(hv_send_into_stale_first_slot_returns_dropped)
{
	struct fx *f = fx_new(NULL);
	uint8_t e[16];

	/* The partition did not zero its queue before registering. */
	crq_slot(f, 0)[0] = 0x80;
	crq_slot(f, 0)[1] = 0x33;
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	fx_reg_partition(f);
	make_entry(e, 7);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_DROPPED);
	CHECK_EQ(crq_slot(f, 0)[1], 0x33);
	CHECK_EQ(crq_slot(f, 1)[0], 0);
}

TEST(hv_send_reuses_slot_after_consumer_clears_header)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	for (unsigned i = 0; i < CRQ_ENTRIES; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	}
	make_entry(e, 500);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_DROPPED);
	/* The consumer frees slot 0 only: exactly one more entry fits, there. */
	crq_slot(f, 0)[0] = 0;
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 0), e, 16);
	make_entry(e, 501);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_DROPPED);
	make_entry(e, 1);
	CHECK_MEM(crq_slot(f, 1), e, 16);
	crq_slot(f, 1)[0] = 0;
	make_entry(e, 501);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(crq_slot(f, 1), e, 16);
}

TEST(hv_outstanding_counts_unconsumed_entries)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 0);
	for (unsigned i = 0; i < 5; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
		CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), i + 1);
	}
	crq_slot(f, 0)[0] = 0;
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 4);
	crq_slot(f, 1)[0] = 0;
	crq_slot(f, 2)[0] = 0;
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 2);
	crq_slot(f, 3)[0] = 0;
	crq_slot(f, 4)[0] = 0;
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 0);
	/* across the wrap point */
	for (unsigned i = 5; i < CRQ_ENTRIES + 3; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
		crq_slot(f, i % CRQ_ENTRIES)[0] = 0;
	}
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 0);
	for (unsigned i = 0; i < 6; i++) {
		make_entry(e, 900 + i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	}
	CHECK_EQ(ovmc_vmc_hv_outstanding(f->vmc), 6);
	CHECK_EQ(ovmc_vmc_partition_queue_size(f->vmc), CRQ_ENTRIES);
}

/* ---- the interrupt ---- */

TEST(irq_fd_readable_only_when_interrupt_enabled)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	/* H_REG_CRQ leaves the interrupt disabled. */
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
	crq_slot(f, 0)[0] = 0;
	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
	make_entry(e, 2);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(irq_pending(f));
	ovmc_platform_irq_ack(f->p);
	CHECK(!irq_pending(f));
	crq_slot(f, 1)[0] = 0;
	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_DISABLE),
		 OVMC_H_SUCCESS);
	make_entry(e, 3);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
}

TEST(irq_polled_partition_gets_entries_and_never_an_interrupt)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE,
		.vmc_present = true,
		.request_vmc_rc = OVMC_H_SUCCESS,
		.hv_window_size = HV_WINDOW,
		.irq_polled = true,
	};
	struct fx *f = fx_linked(&cfg);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_SUCCESS);
	make_entry(e, 4);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_EQ(memcmp(crq_slot(f, 0), e, sizeof(e)), 0);
	CHECK(!irq_pending(f));
	/* Acknowledging what never fired is harmless. */
	ovmc_platform_irq_ack(f->p);
	CHECK(!irq_pending(f));
}

TEST(irq_enable_with_entry_waiting_fires)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
	/* An entry that arrived while disabled is not lost on enable. */
	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_SUCCESS);
	CHECK(irq_pending(f));
}

TEST(reg_crq_disables_interrupt_again)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_reg_crq(f->p, f->node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
}

TEST(vio_signal_undefined_mode_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, 2), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, 3), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address + 1, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_PARAMETER);
	/* a refused mode changed nothing: still disabled */
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK(!irq_pending(f));
}

TEST(enable_crq_checks_unit_address)
{
	struct fx *f = fx_linked(NULL);

	CHECK_EQ(ovmc_h_enable_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_enable_crq(f->p, f->node.unit_address + 7), OVMC_H_PARAMETER);
}

/* ---- freeing either end ---- */

TEST(free_crq_posts_deregistered_event_to_hv_end)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16], want[16] = {0xFF, 0x02};
	unsigned pending0 = f->pending;

	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK(!ovmc_vmc_partition_registered(f->vmc));
	CHECK(f->pending > pending0);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_MEM(e, want, 16);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	/* a second free is harmless and posts nothing */
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
}

TEST(free_crq_into_full_hv_queue_overwrites_last_entry)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE, .vmc_present = true, .hv_queue_entries = 2};
	struct fx *f = fx_linked(&cfg);
	uint8_t e[16], want[16];
	const uint8_t ev[16] = {0xFF, 0x02};

	make_entry(want, 0);
	CHECK_EQ(send_words(f, want), OVMC_H_SUCCESS);
	make_entry(e, 1);
	CHECK_EQ(send_words(f, e), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_MEM(e, want, 16);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_MEM(e, ev, 16);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
}

TEST(free_crq_without_hv_end_posts_nothing)
{
	struct fx *f = fx_new(NULL);
	uint8_t e[16];

	fx_reg_partition(f);
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	CHECK_EQ(f->pending, 0);
}

TEST(hv_free_posts_event_into_partition_queue)
{
	struct fx *f = fx_linked(NULL);
	const uint8_t want[16] = {0xFF, 0x01};
	uint8_t e[16];

	CHECK_EQ(ovmc_h_vio_signal(f->p, f->node.unit_address, OVMC_VIO_IRQ_ENABLE),
		 OVMC_H_SUCCESS);
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	ovmc_platform_irq_ack(f->p);
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_FAILED), OVMC_H_SUCCESS);
	CHECK(!ovmc_vmc_hv_registered(f->vmc));
	CHECK_MEM(crq_slot(f, 0), e, 16);
	CHECK_MEM(crq_slot(f, 1), want, 16);
	CHECK(irq_pending(f));
	/* The partition's sends now fail: the partner is gone. */
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_CLOSED);
}

TEST(hv_free_into_full_partition_queue_overwrites_last_entry)
{
	struct fx *f = fx_linked(NULL);
	const uint8_t want[16] = {0xFF, 0x02};
	uint8_t e[16];

	for (unsigned i = 0; i < CRQ_ENTRIES; i++) {
		make_entry(e, i);
		CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	}
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	/* The newest entry (slot 255) gave way; everything before it is intact. */
	CHECK_MEM(crq_slot(f, CRQ_ENTRIES - 1), want, 16);
	for (unsigned i = 0; i < CRQ_ENTRIES - 1; i++) {
		make_entry(e, i);
		CHECK_MEM(crq_slot(f, i), e, 16);
	}
}

TEST(hv_free_discards_queued_entries)
{
	struct fx *f = fx_linked(NULL);
	uint8_t e[16];

	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
}

static void free_ptr(void *p)
{
	free(p);
}

static void machine_free_cb(void *m)
{
	ovmc_machine_free(m);
}

/*
 * Removing a partition: the hypervisor end gets partner-failed (0x01) or
 * deregistered (0x02). The queue dies with the VMC, so the test drains it
 * from the vmc_pending hook, which comes before vmc_destroyed.
 */
static void remove_partition_case(bool failed, uint8_t code)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ovmc_machine_hooks hooks = {
		.vmc_created = hook_created,
		.vmc_pending = hook_pending,
		.vmc_destroyed = hook_destroyed,
	};
	struct ovmc_part_config pc = {
		.mem_size = MEM_SIZE, .vmc_present = true, .hv_window_size = HV_WINDOW};
	struct ovmc_part *part;
	struct ovmc_machine *m;
	const uint8_t want[16] = {0xFF, code};
	uint8_t *mem = calloc(1, MEM_SIZE);
	uint64_t reg_args[3] = {0, 0, OVMC_PAGE_SIZE};

	CHECK(f != NULL && mem != NULL);
	ovmc_test_defer(free_ptr, f);
	ovmc_test_defer(free_ptr, mem);
	hooks.arg = f;
	CHECK_EQ(ovmc_machine_new(&hooks, &m), 0);
	ovmc_test_defer(machine_free_cb, m);
	pc.mem = mem;
	CHECK_EQ(ovmc_machine_add_partition(m, &pc, &part), 0);
	f->vmc = ovmc_part_vmc(part);
	CHECK(f->vmc != NULL);
	CHECK_EQ(ovmc_part_vmc_node(part, &f->node), 0);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	reg_args[0] = f->node.unit_address;
	CHECK_EQ(ovmc_part_hcall(part, OVMC_H_REG_CRQ, reg_args, 3, NULL), OVMC_H_SUCCESS);
	f->drain_in_pending = true;
	ovmc_machine_remove_partition(m, part, failed);
	CHECK_EQ(f->destroyed, 1);
	CHECK_EQ(f->n_drained, 1);
	CHECK_MEM(f->drained[0], want, 16);
}

TEST(remove_partition_failed_posts_partner_failed_to_hv_end)
{
	remove_partition_case(true, OVMC_EVENT_PARTNER_FAILED);
}

TEST(remove_partition_not_failed_posts_deregistered_to_hv_end)
{
	remove_partition_case(false, OVMC_EVENT_PARTNER_DEREGISTERED);
}

TEST(platform_destroy_destroys_vmc)
{
	struct fx *f = fx_new(NULL);

	CHECK_EQ(f->destroyed, 0);
	ovmc_platform_destroy(f->p);
	f->p = NULL;
	CHECK_EQ(f->destroyed, 1);
}

/* ---- H_COPY_RDMA ---- */

static void fill_pattern(uint8_t *p, size_t n, uint64_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(ovmc_test_rand(&seed) >> 56);
}

TEST(copy_rdma_partition_to_hv_window_and_back)
{
	struct fx *f = fx_linked(NULL);
	size_t hv_size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &hv_size);
	struct ovmc_machine_stats st;

	fill_pattern(f->mem + 0x10000, 5000, 1);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 5000, f->node.liobn_local, 0x10000, f->node.liobn_remote,
				  0x3000),
		 OVMC_H_SUCCESS);
	CHECK_MEM(hv + 0x3000, f->mem + 0x10000, 5000);
	CHECK_EQ(hv[0x3000 - 1], 0);
	CHECK_EQ(hv[0x3000 + 5000], 0);

	fill_pattern(hv + 0x8000, 777, 2);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 777, f->node.liobn_remote, 0x8000, f->node.liobn_local,
				  0x20001),
		 OVMC_H_SUCCESS);
	CHECK_MEM(f->mem + 0x20001, hv + 0x8000, 777);
	CHECK_EQ(f->mem[0x20000], 0);
	CHECK_EQ(f->mem[0x20001 + 777], 0);

	/* within one window too, and the very last byte */
	hv[hv_size - 1] = 0x77;
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 1, f->node.liobn_remote, hv_size - 1, f->node.liobn_local,
				  f->mem_size - 1),
		 OVMC_H_SUCCESS);
	CHECK_EQ(f->mem[f->mem_size - 1], 0x77);

	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.rdma_ops, 3);
	CHECK_EQ(st.rdma_bytes, 5000 + 777 + 1);
	CHECK_EQ(st.rdma_rejected, 0);
}

TEST(copy_rdma_unknown_source_liobn_returns_source_parm)
{
	struct fx *f = fx_linked(NULL);
	size_t hv_size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &hv_size);

	f->mem[0] = 0x11;
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, 0xDEAD, 0, f->node.liobn_remote, 0),
		 OVMC_H_SOURCE_PARM);
	/* an unknown liobn on both sides: the source is checked first */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, 0xDEAD, 0, 0xBEEF, 0), OVMC_H_SOURCE_PARM);
	CHECK_EQ(hv[0], 0);
}

TEST(copy_rdma_unknown_dest_liobn_returns_dest_parm)
{
	struct fx *f = fx_linked(NULL);

	f->mem[0] = 0x11;
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, f->node.liobn_local, 0, 0xBEEF, 0), OVMC_H_DEST_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, f->node.liobn_local, 0, 0, 0), OVMC_H_DEST_PARM);
}

TEST(copy_rdma_past_window_end_rejected)
{
	struct fx *f = fx_linked(NULL);
	size_t hv_size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &hv_size);
	uint64_t loc = f->node.liobn_local, rem = f->node.liobn_remote;
	struct ovmc_machine_stats st;

	fill_pattern(f->mem, f->mem_size, 3);
	/* source range past the end of either window */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, f->mem_size - 15, rem, 0), OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 1, loc, f->mem_size, rem, 0), OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, rem, hv_size - 8, loc, 0), OVMC_H_SOURCE_PARM);
	/* destination range past the end */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, rem, hv_size - 15), OVMC_H_DEST_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, rem, 0, loc, f->mem_size - 1), OVMC_H_DEST_PARM);
	for (size_t i = 0; i < 32; i++)
		CHECK_EQ(hv[hv_size - 32 + i], 0);
	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.rdma_rejected, 5);
	CHECK_EQ(st.rdma_ops, 0);
}

TEST(copy_rdma_ioba_overflow_rejected)
{
	struct fx *f = fx_linked(NULL);
	uint64_t loc = f->node.liobn_local, rem = f->node.liobn_remote;

	CHECK_EQ(ovmc_h_copy_rdma(f->p, 100, loc, UINT64_MAX - 10, rem, 0), OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 100, rem, UINT64_MAX - 10, loc, 0), OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 100, loc, 0, rem, UINT64_MAX - 10), OVMC_H_DEST_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 100, rem, 0, loc, UINT64_MAX - 10), OVMC_H_DEST_PARM);
}

TEST(copy_rdma_longer_than_max_returns_parameter)
{
	struct fx *f = fx_linked(NULL);
	uint64_t loc = f->node.liobn_local, rem = f->node.liobn_remote;
	size_t hv_size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &hv_size);

	fill_pattern(f->mem, OVMC_MAX_RDMA_LEN + 1, 4);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, OVMC_MAX_RDMA_LEN + 1, loc, 0, rem, 0), OVMC_H_PARAMETER);
	CHECK_EQ(hv[0], 0);
	/* even before the liobns are looked at */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, UINT64_MAX, 0xDEAD, 0, 0xBEEF, 0), OVMC_H_PARAMETER);
	/* exactly the maximum is allowed */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, OVMC_MAX_RDMA_LEN, loc, 0, rem, 0), OVMC_H_SUCCESS);
	CHECK_MEM(hv, f->mem, OVMC_MAX_RDMA_LEN);
}

TEST(copy_rdma_remote_window_refused_while_an_end_is_unregistered)
{
	struct fx *f = fx_new(NULL);
	uint64_t loc = f->node.liobn_local, rem = f->node.liobn_remote;

	/* neither end registered */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, rem, 0), OVMC_H_DEST_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, rem, 0, loc, 0), OVMC_H_SOURCE_PARM);
	/* the local window needs no registration */
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, loc, 64), OVMC_H_SUCCESS);
	/* only the partition registered */
	fx_reg_partition(f);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, rem, 0), OVMC_H_DEST_PARM);
	/* both registered */
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, rem, 0), OVMC_H_SUCCESS);
	/* hypervisor end gone */
	CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, loc, 0, rem, 0), OVMC_H_DEST_PARM);
	/* both again, then the partition frees its queue */
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, rem, 0, loc, 0), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_free_crq(f->p, f->node.unit_address), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, rem, 0, loc, 0), OVMC_H_SOURCE_PARM);
}

TEST(copy_rdma_without_vmc_rejected)
{
	struct ovmc_inproc_config cfg = {.mem_size = MEM_SIZE, .vmc_present = false};
	struct fx *f = fx_new(&cfg);

	CHECK_EQ(ovmc_h_copy_rdma(f->p, 16, 0x10000001u, 0, 0x10000001u, 64), OVMC_H_SOURCE_PARM);
}

/* ---- H_REQUEST_VMC ---- */

TEST(request_vmc_creates_missing_vmc)
{
	struct ovmc_inproc_config cfg = {
		.mem_size = MEM_SIZE, .vmc_present = false, .request_vmc_rc = OVMC_H_SUCCESS};
	struct fx *f = fx_new(&cfg);
	struct ovmc_vmc_node node;
	uint64_t rets[OVMC_HCALL_RETS] = {0};
	uint32_t drc = 0;

	CHECK(f->vmc == NULL);
	CHECK_EQ(ovmc_platform_vmc_node(f->p, &node), -ENODEV);
	CHECK_EQ(f->created, 0);
	CHECK_EQ(ovmc_hcall(f->p, OVMC_H_REQUEST_VMC, NULL, 0, rets), OVMC_H_SUCCESS);
	CHECK_EQ(f->created, 1);
	CHECK(f->created_vmc != NULL);
	CHECK(ovmc_part_vmc(ovmc_inproc_part(f->p)) == f->created_vmc);
	CHECK_EQ(ovmc_platform_vmc_node(f->p, &node), 0);
	CHECK_EQ(rets[0], node.drc_index);
	CHECK(node.drc_index != 0);
	/* the wrapper gives the same index; asking again creates nothing new */
	CHECK_EQ(ovmc_h_request_vmc(f->p, &drc), OVMC_H_SUCCESS);
	CHECK_EQ(drc, node.drc_index);
	CHECK_EQ(f->created, 1);
	/* and the new VMC works */
	CHECK_EQ(ovmc_h_reg_crq(f->p, node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_CLOSED);
}

TEST(request_vmc_reports_configured_drc_index)
{
	struct ovmc_inproc_config cfg = {.mem_size = MEM_SIZE,
					 .vmc_present = false,
					 .request_vmc_rc = OVMC_H_SUCCESS,
					 .drc_index = 0x12345678u};
	struct fx *f = fx_new(&cfg);
	uint32_t drc = 0;

	CHECK_EQ(ovmc_h_request_vmc(f->p, &drc), OVMC_H_SUCCESS);
	CHECK_EQ(drc, 0x12345678u);
}

TEST(request_vmc_refused_returns_code_and_creates_nothing)
{
	static const long codes[] = {OVMC_H_AUTHORITY, OVMC_H_FUNCTION, OVMC_H_HARDWARE,
				     OVMC_H_RESOURCE, OVMC_H_NOT_AVAILABLE};

	for (unsigned i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		struct ovmc_inproc_config cfg = {
			.mem_size = MEM_SIZE, .vmc_present = false, .request_vmc_rc = codes[i]};
		struct fx *f = fx_new(&cfg);
		struct ovmc_vmc_node node;
		uint32_t drc = 0;

		CHECK_EQ(ovmc_h_request_vmc(f->p, &drc), codes[i]);
		CHECK_EQ(f->created, 0);
		CHECK(ovmc_part_vmc(ovmc_inproc_part(f->p)) == NULL);
		CHECK_EQ(ovmc_platform_vmc_node(f->p, &node), -ENODEV);
	}
}

/* ---- hcall dispatch and accounting ---- */

TEST(unknown_hcall_returns_function)
{
	struct fx *f = fx_linked(NULL);
	uint64_t args[3] = {f->node.unit_address, 0, 0};

	CHECK_EQ(ovmc_hcall(f->p, 0x10C /* H_PUT_RTCE */, args, 3, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(ovmc_hcall(f->p, 0x2DC /* H_REG_SUB_CRQ */, args, 3, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(ovmc_hcall(f->p, 0, args, 3, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(ovmc_hcall(f->p, ~0ul, args, 0, NULL), OVMC_H_FUNCTION);
}

/* H_REQUEST_VMC has no inputs; its wrapper passes args NULL, nargs 0. */
TEST(hcall_without_arguments_accepts_null_args)
{
	struct fx *f = fx_linked(NULL);
	uint64_t rets[OVMC_HCALL_RETS] = {0};

	CHECK_EQ(ovmc_hcall(f->p, 0x999, NULL, 0, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(ovmc_hcall(f->p, OVMC_H_REQUEST_VMC, NULL, 0, rets), OVMC_H_SUCCESS);
	CHECK_EQ(rets[0], f->node.drc_index);
}

TEST(hcall_with_short_argument_list_reads_zeros)
{
	struct fx *f = fx_linked(NULL);
	const uint64_t args[1] = {f->node.unit_address};

	/* msg_hi and msg_lo missing: header 0x00 is refused */
	CHECK_EQ(ovmc_hcall(f->p, OVMC_H_SEND_CRQ, args, 1, NULL), OVMC_H_PARAMETER);
}

TEST(stats_count_hcalls_entries_drops_and_rdma)
{
	struct ovmc_inproc_config cfg = {.mem_size = MEM_SIZE,
					 .vmc_present = true,
					 .hv_window_size = HV_WINDOW,
					 .hv_queue_entries = 1};
	struct fx *f = fx_linked(&cfg); /* 1 hcall: reg_crq */
	struct ovmc_machine_stats st;
	uint64_t rets_dummy[1] = {0};
	uint8_t e[16];

	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.hcalls, 1);
	CHECK_EQ(st.hcall_errors, 0);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0xC001000000000000ull, 0),
		 OVMC_H_DROPPED);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0x0001000000000000ull, 0),
		 OVMC_H_PARAMETER);
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 64, f->node.liobn_local, 0, f->node.liobn_remote, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 64, 0xDEAD, 0, f->node.liobn_remote, 0),
		 OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_hcall(f->p, 0x999, rets_dummy, 0, NULL), OVMC_H_FUNCTION);
	ovmc_machine_stats(f->m, &st);
	CHECK_EQ(st.hcalls, 7);
	CHECK_EQ(st.hcall_errors, 4);
	CHECK_EQ(st.entries_to_hv, 1);
	CHECK_EQ(st.entries_to_partition, 2);
	CHECK_EQ(st.dropped_full, 1);
	CHECK_EQ(st.rdma_ops, 1);
	CHECK_EQ(st.rdma_bytes, 64);
	CHECK_EQ(st.rdma_rejected, 1);
}

struct trace_rec {
	unsigned to_hv, to_part, rdma, hcall;
	unsigned long last_opcode;
	long last_rc;
	uint8_t last_to_hv[16];
	uint8_t rdma_first;
	size_t rdma_len;
};

static void trace_cb(void *arg, const struct ovmc_trace_event *ev)
{
	struct trace_rec *t = arg;

	switch (ev->kind) {
	case OVMC_TRACE_TO_HV:
		t->to_hv++;
		memcpy(t->last_to_hv, ev->entry, 16);
		break;
	case OVMC_TRACE_TO_PARTITION:
		t->to_part++;
		break;
	case OVMC_TRACE_RDMA:
		t->rdma++;
		t->rdma_len = ev->data_len;
		t->rdma_first = ev->data_len ? ev->data[0] : 0;
		break;
	case OVMC_TRACE_HCALL:
		t->hcall++;
		t->last_opcode = ev->opcode;
		t->last_rc = ev->rc;
		break;
	}
}

TEST(trace_reports_entries_rdma_and_hcalls)
{
	struct fx *f = fx_linked(NULL);
	struct trace_rec *t = calloc(1, sizeof(*t));
	uint64_t rets_dummy[1] = {0};
	uint8_t e[16];

	CHECK(t != NULL);
	ovmc_test_defer(free_ptr, t);
	ovmc_machine_set_trace(f->m, trace_cb, t);
	CHECK_EQ(ovmc_h_send_crq(f->p, f->node.unit_address, 0x80060000000000AAull, 0x55),
		 OVMC_H_SUCCESS);
	CHECK_EQ(t->to_hv, 1);
	CHECK_EQ(t->last_to_hv[0], 0x80);
	CHECK_EQ(t->last_to_hv[7], 0xAA);
	CHECK_EQ(t->last_to_hv[15], 0x55);
	CHECK_EQ(t->hcall, 1);
	CHECK_EQ(t->last_opcode, OVMC_H_SEND_CRQ);
	make_entry(e, 1);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_EQ(t->to_part, 1);
	f->mem[0x9000] = 0xC3;
	CHECK_EQ(ovmc_h_copy_rdma(f->p, 10, f->node.liobn_local, 0x9000, f->node.liobn_remote, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(t->rdma, 1);
	CHECK_EQ(t->rdma_len, 10);
	CHECK_EQ(t->rdma_first, 0xC3);
	CHECK_EQ(ovmc_hcall(f->p, 0x999, rets_dummy, 0, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(t->last_opcode, 0x999);
	CHECK_EQ(t->last_rc, OVMC_H_FUNCTION);
	ovmc_machine_set_trace(f->m, NULL, NULL);
}

TEST(hcall_and_rc_names)
{
	CHECK(strcmp(ovmc_hcall_name(OVMC_H_SEND_CRQ), "H_SEND_CRQ") == 0);
	CHECK(strcmp(ovmc_hcall_name(OVMC_H_COPY_RDMA), "H_COPY_RDMA") == 0);
	CHECK(strcmp(ovmc_hcall_name(0x999), "H_?") == 0);
	CHECK(strcmp(ovmc_hcall_rc_name(OVMC_H_DROPPED), "H_DROPPED") == 0);
	CHECK(strcmp(ovmc_hcall_rc_name(OVMC_H_CLOSED), "H_CLOSED") == 0);
	CHECK(strcmp(ovmc_hcall_rc_name(-12345), "H_?") == 0);
}

/* ---- remote partitions (a QEMU guest's: docs/guest-link.md) ---- */

struct remote_fx {
	struct ovmc_machine *m;
	struct ovmc_part *part;
	struct ovmc_vmc *vmc;
	long answer; /* what deliver returns */
	unsigned delivered, opened, closed, registered, traced_rdma;
	uint8_t last[OVMC_CRQ_ENTRY_SIZE];
	uint32_t epoch;
	unsigned credit;
	const uint8_t *rdma_data;
	size_t rdma_len;
};

static long remote_deliver(void *arg, const uint8_t entry[16])
{
	struct remote_fx *f = arg;

	f->delivered++;
	memcpy(f->last, entry, sizeof(f->last));
	return f->answer;
}

static void remote_state(void *arg, bool open, uint32_t epoch, unsigned credit)
{
	struct remote_fx *f = arg;

	if (open)
		f->opened++;
	else
		f->closed++;
	f->epoch = epoch;
	f->credit = credit;
}

static void remote_registered(void *arg, struct ovmc_vmc *vmc)
{
	struct remote_fx *f = arg;

	CHECK(vmc == f->vmc);
	f->registered++;
}

static void remote_trace(void *arg, const struct ovmc_trace_event *ev)
{
	struct remote_fx *f = arg;

	if (ev->kind != OVMC_TRACE_RDMA)
		return;
	f->traced_rdma++;
	f->rdma_data = ev->data;
	f->rdma_len = ev->data_len;
}

static void remote_free(void *arg)
{
	struct remote_fx *f = arg;

	ovmc_machine_free(f->m);
	free(f);
}

static struct remote_fx *remote_new(void)
{
	struct remote_fx *f = calloc(1, sizeof(*f));
	struct ovmc_machine_hooks hooks = {.vmc_partner_registered = remote_registered};
	struct ovmc_part_remote r = {.deliver = remote_deliver,
				     .hv_state = remote_state,
				     .unit_address = 0x30000002,
				     .liobn_local = 0x80000002,
				     .liobn_remote = 0x81000002};
	struct ovmc_part_config pc = {.mem_size = MEM_SIZE,
				      .hv_window_size = HV_WINDOW,
				      .hv_queue_entries = 4,
				      .remote = &r};

	if (!f)
		FAIL("out of memory");
	hooks.arg = f;
	r.arg = f;
	CHECK_EQ(ovmc_machine_new(&hooks, &f->m), 0);
	ovmc_test_defer(remote_free, f);
	CHECK_EQ(ovmc_machine_add_partition(f->m, &pc, &f->part), 0);
	f->vmc = ovmc_part_vmc(f->part);
	CHECK(f->vmc);
	f->answer = OVMC_H_SUCCESS;
	return f;
}

static long remote_send(struct remote_fx *f, uint8_t type)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {0x80, type};
	uint64_t a[3] = {0x30000002};

	ovmc_entry_to_words(e, &a[1], &a[2]);
	return ovmc_part_hcall(f->part, OVMC_H_SEND_CRQ, a, 3, NULL);
}

TEST(remote_partition_names_window_and_hcalls)
{
	struct remote_fx *f = remote_new();
	struct ovmc_vmc_node n;
	struct stat st;
	int fd = ovmc_vmc_hv_memfd(f->vmc);
	uint64_t a[5] = {0x30000002, 0, OVMC_PAGE_SIZE};

	CHECK_EQ(ovmc_part_vmc_node(f->part, &n), 0);
	CHECK_EQ(n.unit_address, 0x30000002);
	CHECK_EQ(n.liobn_local, 0x80000002);
	CHECK_EQ(n.liobn_remote, 0x81000002);
	CHECK_EQ(n.window_local, MEM_SIZE);
	/* The window is a memfd that can never shrink under either mapping. */
	CHECK(fd >= 0);
	CHECK(fstat(fd, &st) == 0 && (size_t)st.st_size == HV_WINDOW + OVMC_PAGE_SIZE);
	CHECK((fcntl(fd, F_GET_SEALS) & (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)) ==
	      (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL));
	/* What the device does itself is not done here. */
	CHECK_EQ(ovmc_part_hcall(f->part, OVMC_H_REG_CRQ, a, 3, NULL), OVMC_H_FUNCTION);
	CHECK_EQ(ovmc_part_hcall(f->part, OVMC_H_COPY_RDMA, a, 5, NULL), OVMC_H_FUNCTION);
	/* A CRQ is whole pages; freeing none is no error. */
	CHECK_EQ(ovmc_part_remote_crq(f->part, 100), OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_part_remote_crq(f->part, 0), OVMC_H_SUCCESS);
	/* The page after the window says while both ends are registered. */
	{
		const volatile uint32_t *link;
		void *m = mmap(NULL, OVMC_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, HV_WINDOW);

		CHECK(m != MAP_FAILED);
		link = m;
		CHECK_EQ(*link, 0);
		CHECK_EQ(ovmc_part_remote_crq(f->part, 256), OVMC_H_CLOSED);
		CHECK_EQ(*link, 0);
		CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
		CHECK_EQ(*link, OVMC_VMC_LINKED);
		CHECK_EQ(ovmc_part_remote_crq(f->part, 0), OVMC_H_SUCCESS);
		CHECK_EQ(*link, 0);
		CHECK_EQ(ovmc_part_remote_crq(f->part, 256), OVMC_H_SUCCESS);
		CHECK_EQ(*link, OVMC_VMC_LINKED);
		CHECK_EQ(ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
		CHECK_EQ(*link, 0);
		munmap(m, OVMC_PAGE_SIZE);
	}
}

TEST(remote_partition_delivers_through_its_callback_with_epochs_and_credit)
{
	struct remote_fx *f = remote_new();
	uint8_t e[OVMC_CRQ_ENTRY_SIZE] = {0x80, 0x01};
	struct ovmc_machine_stats ms;

	/* Nothing reaches a guest without a CRQ. */
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_CLOSED);
	CHECK_EQ(f->opened, 1);
	CHECK_EQ(f->epoch, 1);
	CHECK_EQ(f->credit, 4);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_CLOSED);
	CHECK_EQ(f->delivered, 0);
	CHECK_EQ(ovmc_part_remote_crq(f->part, CRQ_ENTRIES), OVMC_H_SUCCESS);
	CHECK_EQ(f->registered, 1);
	CHECK_EQ(ovmc_part_remote_crq(f->part, CRQ_ENTRIES), OVMC_H_RESOURCE);
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_SUCCESS);
	CHECK_EQ(f->delivered, 1);
	CHECK_MEM(f->last, e, sizeof(e));
	f->answer = OVMC_H_DROPPED;
	CHECK_EQ(ovmc_vmc_hv_send(f->vmc, e), OVMC_H_DROPPED);
	ovmc_machine_stats(f->m, &ms);
	CHECK_EQ(ms.entries_to_partition, 1);
	CHECK_EQ(ms.dropped_full, 1);
	/* Queue of 4: four SENDs fit, the fifth is dropped and its credit comes back. */
	for (unsigned i = 0; i < 4; i++)
		CHECK_EQ(remote_send(f, 0x10), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 0);
	CHECK_EQ(remote_send(f, 0x10), OVMC_H_DROPPED);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 1);
	/* Consumed entries come back as credit, once. */
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 2);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 0);
	/* A restart: the transport event first, closed, then a new epoch with full credit. */
	f->answer = OVMC_H_SUCCESS;
	ovmc_vmc_hv_free(f->vmc, OVMC_EVENT_PARTNER_FAILED);
	CHECK_EQ(f->last[0], OVMC_CRQ_TRANSPORT);
	CHECK_EQ(f->last[1], OVMC_EVENT_PARTNER_FAILED);
	CHECK_EQ(f->closed, 1);
	CHECK_EQ(ovmc_vmc_hv_register(f->vmc), OVMC_H_SUCCESS);
	CHECK_EQ(f->epoch, 2);
	CHECK_EQ(ovmc_vmc_hv_epoch(f->vmc), 2);
	CHECK_EQ(f->credit, 4);
	/* The old epoch's queued entries went with it, and so did their credit. */
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 0);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 0);
	/* The guest freeing its CRQ: the hypervisor end hears it deregistered. */
	CHECK_EQ(ovmc_part_remote_crq(f->part, 0), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_receive(f->vmc, e), 1);
	CHECK_EQ(e[0], OVMC_CRQ_TRANSPORT);
	CHECK_EQ(e[1], OVMC_EVENT_PARTNER_DEREGISTERED);
	CHECK_EQ(ovmc_vmc_hv_take_credit(f->vmc), 0);
}

TEST(remote_partition_rdma_reports_are_checked_counted_and_traced)
{
	struct remote_fx *f = remote_new();
	uint64_t to_hv[5] = {100, 0x80000002, 0x1000, 0x81000002, 0x2000};
	uint64_t from_hv[5] = {64, 0x81000002, 0x2000, 0x80000002, 0x3000};
	uint64_t bad[5] = {100, 0x80000002, 0x1000, 0x81000002, HV_WINDOW - 50};
	uint64_t same[5] = {100, 0x80000002, 0x1000, 0x80000002, 0x2000};
	struct ovmc_machine_stats ms;
	size_t size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &size);

	ovmc_machine_set_trace(f->m, remote_trace, f);
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, to_hv), 0);
	CHECK_EQ(f->traced_rdma, 1);
	/* The payload is the hypervisor window's, where the copy put it. */
	CHECK(f->rdma_data == hv + 0x2000);
	CHECK_EQ(f->rdma_len, 100);
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, from_hv), 0);
	CHECK(f->rdma_data == hv + 0x2000);
	/* A refused copy is counted, not traced as data. */
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_DEST_PARM, bad), 0);
	CHECK_EQ(f->traced_rdma, 2);
	/* Successes that cannot be: out of the window, not across the two windows. */
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, bad), -EINVAL);
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, same), -EINVAL);
	ovmc_machine_stats(f->m, &ms);
	CHECK_EQ(ms.rdma_ops, 2);
	CHECK_EQ(ms.rdma_bytes, 164);
	CHECK_EQ(ms.rdma_rejected, 1);
}

TEST(remote_partition_copy_out_is_traced_as_the_hypervisor_wrote_it)
{
	struct remote_fx *f = remote_new();
	uint64_t from_hv[5] = {64, 0x81000002, 0x2010, 0x80000002, 0x3000};
	size_t size;
	uint8_t *hv = ovmc_vmc_hv_memory(f->vmc, &size);
	uint8_t want[64];

	ovmc_machine_set_trace(f->m, remote_trace, f);
	memset(hv + 0x2000, 'a', 128);
	ovmc_vmc_hv_wrote(f->vmc, 0x2000, 128);
	/* The partition reused the buffer before the copy's report arrived. */
	memset(hv + 0x2000, 'b', 128);
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, from_hv), 0);
	memset(want, 'a', sizeof(want));
	CHECK_EQ(f->rdma_len, 64);
	CHECK(memcmp(f->rdma_data, want, sizeof(want)) == 0);
	/* A copy beyond what was written is traced from the window. */
	from_hv[0] = 200;
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, from_hv), 0);
	CHECK(f->rdma_data == hv + 0x2010);
	/* More writes than snapshots: the oldest goes, memory stays bounded. */
	for (unsigned i = 0; i < OVMC_VMC_SNAPSHOTS; i++)
		ovmc_vmc_hv_wrote(f->vmc, 0x8000 + i * 0x100, 16);
	from_hv[0] = 64;
	CHECK_EQ(ovmc_part_remote_rdma(f->part, OVMC_H_SUCCESS, from_hv), 0);
	CHECK(f->rdma_data == hv + 0x2010);
}
