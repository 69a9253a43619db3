/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A fake spapr-vmc device: the QEMU side of the guest link
 * (docs/guest-link.md) in the test process, over the real socket of a real
 * openvmc-hvd. It is a platform (platform.h) for the driver core, which
 * plays the guest's kernel driver: the guest's CRQ and DMA window are this
 * process's memory (identity TCE), the device checks H_SEND_CRQ against its
 * mirror of the hypervisor end, executes H_COPY_RDMA itself between that
 * memory and the mapped hypervisor window, and answers DELIVER.
 */
#ifndef OVMC_TEST_GUESTDEV_H
#define OVMC_TEST_GUESTDEV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <openvmc/platform.h>

#include "platform/guest_proto.h"

/* How the device answers DELIVER. */
enum gdev_answer {
	GDEV_ANSWER,  /* write the entry, H_SUCCESS (H_DROPPED when full) */
	GDEV_SILENT,  /* never answer */
};

struct gdev {
	struct ovmc_platform *plat; /* the driver's view; owns nothing of this */
	const char *path;
	int fd; /* -1 while the link is down */
	struct gl_hello hello;
	int32_t welcome_status;
	uint32_t partition;
	void *hv;
	size_t hv_size;
	/* The mirror of the hypervisor end. */
	bool hv_open;
	uint32_t epoch, credit, queue_entries;
	/* The guest's CRQ. */
	bool crq;
	uint64_t crq_ioba;
	uint32_t crq_entries, crq_next;
	bool irq_on;
	/* Test knobs and what was seen. */
	enum gdev_answer answer;
	unsigned drop_next; /* answer this many DELIVERs H_DROPPED */
	unsigned delivers, dropped, hv_states, credits, link_drops;
	unsigned inits; /* DELIVERs of INIT (0xC0 0x01) */
	unsigned char in[1024];
	size_t in_len;
};

/* A device with `mem_size` bytes of guest memory (its DMA window), not connected. */
struct gdev *gdev_new(const char *path, size_t mem_size);
void gdev_free(struct gdev *g);
/* Connect, HELLO (g->hello), wait for WELCOME; then CRQ_REG if the guest
 * has a CRQ. 0, -errno of the socket, or WELCOME's status. */
int gdev_connect(struct gdev *g);
/* Handle what the daemon sent, waiting up to `ms` for something.
 * 0, or -ECONNRESET when the link dropped (handled as the device does). */
int gdev_pump(struct gdev *g, int ms);
/* Write raw bytes on the link (hostile tests). */
void gdev_raw(struct gdev *g, const void *buf, size_t len);
/* Wait up to `ms` for the daemon to close the link: true if it did. */
bool gdev_wait_closed(struct gdev *g, int ms);

#endif
