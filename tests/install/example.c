// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * A program built against an installed libopenvmc (the install tests build
 * it with pkg-config and with find_package): encodes a CRQ INIT entry and a
 * command-router echo header, decodes both back and prints them.
 *
 *   cc -std=c11 example.c $(pkg-config --cflags --libs openvmc) && ./a.out
 */
#include <openvmc/common.h>
#include <openvmc/ibmvmc.h>
#include <openvmc/router.h>
#include <openvmc/wire.h>

#include <stdio.h>

int main(void)
{
	uint8_t raw[OVMC_CRQ_ENTRY_SIZE], hdr[OVMC_ROUTER_HDR_LEN];
	struct ovmc_entry e, back;
	struct ovmc_router_hdr h, hback;
	char line[128];
	int rc;

	ovmc_entry_init(&e, OVMC_INIT_REQUEST);
	rc = ovmc_entry_encode(&e, raw);
	if (rc == 0)
		rc = ovmc_entry_decode(raw, sizeof(raw), 0, &back);
	if (rc) {
		fprintf(stderr, "entry: %s\n", ovmc_strerror(rc));
		return 1;
	}
	ovmc_entry_format(raw, line, sizeof(line));
	printf("entry: %s\n", line);

	ovmc_router_hdr_init(&h, OVMC_ROUTER_TARGET_ROUTER, OVMC_ROUTER_OP_ECHO, 0x1234,
			     OVMC_ROUTER_FLAG_RESPONSE_EXPECTED, 0);
	rc = ovmc_router_hdr_encode(&h, hdr);
	if (rc == 0)
		rc = ovmc_router_hdr_decode(hdr, sizeof(hdr), &hback);
	if (rc || hback.token != 0x1234) {
		fprintf(stderr, "router: %s\n", ovmc_router_strerror(rc));
		return 1;
	}
	printf("router: %s token 0x%x, SETHMCID 0x%lx\n", ovmc_router_opcode_name(hback.opcode),
	       (unsigned)hback.token, (unsigned long)VMC_IOCTL_SETHMCID);
	return 0;
}
