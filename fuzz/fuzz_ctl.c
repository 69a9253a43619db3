// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control protocol's request parser (src/daemon/ctl.c), on a
 * hypervisor host with one partition and its VMC, as openvmc-hvd runs it.
 * Each line of the input is one request, from a peer that may or may not
 * change things. Every reply starts "ok\n" or "error E...: "; a peer that
 * may not change things never does (no restart happens).
 */
#include "fuzz.h"

#include "ctl.h"
#include "hvhost.h"
#include "log.h"
#include "loop.h"

#include <openvmc/machine.h>
#include <openvmc/platform.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#define MAX_LINES 16

static struct ctl *ctl;
static struct hvhost *hv;
static char dir[64], path[96];

static void teardown(void)
{
	ctl_free(ctl);
	rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv);

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	struct hvhost_config hc = {0};
	struct ovmc_inproc_config pc = {.mem_size = 1 << 20, .vmc_present = true};
	struct ctl_targets t = {0};
	struct ovmc_platform *plat;
	struct ovmc_loop *loop;

	(void)argc;
	(void)argv;
	ovmc_log_setup("fuzz_ctl", OVMC_LOG_ERROR);
	ovmc_hv_config_default(&hc.hv);
	pc.hv_window_size = ovmc_hv_memory_required(&hc.hv);
	pc.hv_queue_entries = hc.hv.crq_size;
	snprintf(dir, sizeof(dir), "/tmp/ovmc-fuzz-ctl-%d", (int)getpid());
	snprintf(path, sizeof(path), "%s/ctl", dir);
	if (mkdir(dir, 0700) && errno != EEXIST)
		fuzz_fail("mkdir %s", dir);
	if (ovmc_loop_new(&loop) || hvhost_new(loop, &hc, &hv) ||
	    ovmc_inproc_new(hvhost_machine(hv), &pc, &plat))
		fuzz_fail("set-up");
	t.hv = hv;
	if (ctl_new(loop, path, &t, &ctl))
		fuzz_fail("ctl_new");
	atexit(teardown);
	return 0;
}

/* Does the request name a command that changes something? */
static bool changes(const char *p, size_t len)
{
	char name[16];
	size_t i = 0, k = 0;

	while (i < len && (p[i] == ' ' || p[i] == '\t'))
		i++;
	while (i < len && k + 1 < sizeof(name) && p[i] && p[i] != ' ' && p[i] != '\t' &&
	       p[i] != '\r')
		name[k++] = p[i++];
	name[k] = '\0';
	if (i < len && p[i] && p[i] != ' ' && p[i] != '\t' && p[i] != '\r')
		return false; /* longer than any command */
	return strcmp(name, "restart") == 0 || strcmp(name, "send") == 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *p = (const char *)data, *end = p + size;
	bool admin = size && (data[0] & 1);

	for (unsigned i = 0; i < MAX_LINES && p < end; i++) {
		const char *nl = memchr(p, '\n', (size_t)(end - p));
		size_t len = nl ? (size_t)(nl - p) : (size_t)(end - p);
		char *reply;
		size_t rlen;

		if (ctl_request(ctl, p, len, admin, &reply, &rlen) == 0) {
			FUZZ_CHECK(rlen >= 3);
			FUZZ_CHECK(strncmp(reply, "ok\n", 3) == 0 ||
				   (strncmp(reply, "error E", 7) == 0 && memchr(reply, ':', rlen)));
			FUZZ_CHECK(reply[rlen - 1] == '\n');
			if (!admin && changes(p, len))
				FUZZ_CHECK(strncmp(reply, "error EACCES", 12) == 0);
			free(reply);
		}
		p += len + 1;
	}
	return 0;
}
