// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * floodpart: a hostile partition for openvmc-hvd. It attaches over the
 * cross-process platform, brings the channel up by hand (INIT,
 * capabilities), then sends COUNT Interface Close requests and never reads
 * its own queue, so every answer of the hypervisor must wait somewhere.
 *
 *   floodpart SOCKET COUNT [HOLD_MS]
 *
 * Prints "flooded N" (sent), stays attached HOLD_MS more (so that what the
 * hypervisor holds for it can be measured), and exits 0; or a message and
 * 1. What the hypervisor did about it is for its status and log to say.
 */
#include <openvmc/platform.h>
#include <openvmc/wire.h>
#include <openvmc/xproc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MEM_SIZE (256u * 1024u)
#define CRQ_IOBA 0u
#define RETRY_LIMIT 100000

static void pause_us(long us)
{
	struct timespec ts = {.tv_sec = us / 1000000, .tv_nsec = us % 1000000 * 1000};

	nanosleep(&ts, NULL);
}

/* Send one entry, waiting while the hypervisor's queue is full. */
static long send_entry(struct ovmc_platform *p, uint32_t unit, const struct ovmc_entry *m)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	uint64_t hi, lo;
	long rc;

	if (ovmc_entry_encode(m, e))
		return OVMC_H_PARAMETER;
	ovmc_entry_to_words(e, &hi, &lo);
	for (int i = 0; i < RETRY_LIMIT; i++) {
		rc = ovmc_h_send_crq(p, unit, hi, lo);
		if (rc != OVMC_H_DROPPED)
			return rc;
		pause_us(50);
	}
	return rc;
}

int main(int argc, char **argv)
{
	struct ovmc_platform *p;
	struct ovmc_vmc_node node;
	struct ovmc_entry m;
	struct ovmc_caps caps = {.max_hmcs = 1, .pool_size = 32, .mtu = 4096, .crq_size = 256,
				 .version = OVMC_PROTOCOL_VERSION};
	struct ovmc_hmc_msg close_msg = {.session = 0, .index = 0};
	unsigned long count, sent = 0;
	long rc;

	if (argc != 3 && argc != 4) {
		fprintf(stderr, "Usage: floodpart SOCKET COUNT [HOLD_MS]\n");
		return 2;
	}
	count = strtoul(argv[2], NULL, 0);
	rc = ovmc_xproc_connect(argv[1], MEM_SIZE, &p);
	if (rc) {
		fprintf(stderr, "floodpart: attach: %s\n", strerror((int)-rc));
		return 1;
	}
	if (ovmc_platform_vmc_node(p, &node) ||
	    ovmc_h_reg_crq(p, node.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE) != OVMC_H_SUCCESS) {
		fprintf(stderr, "floodpart: no VMC, or H_REG_CRQ refused\n");
		return 1;
	}
	/* The channel up by hand; nothing the hypervisor sends is ever read. */
	ovmc_entry_init(&m, OVMC_INIT_REQUEST);
	send_entry(p, node.unit_address, &m);
	ovmc_entry_caps(&m, OVMC_MSG_CAP, &caps);
	send_entry(p, node.unit_address, &m);
	ovmc_entry_hmc(&m, OVMC_MSG_CLOSE, &close_msg);
	for (; sent < count; sent++) {
		rc = send_entry(p, node.unit_address, &m);
		if (rc != OVMC_H_SUCCESS) {
			fprintf(stderr, "floodpart: H_SEND_CRQ %s after %lu\n", ovmc_hcall_rc_name(rc),
				sent);
			break;
		}
	}
	printf("flooded %lu\n", sent);
	fflush(stdout);
	if (argc == 4)
		pause_us(atol(argv[3]) * 1000);
	ovmc_platform_destroy(p);
	return 0;
}
