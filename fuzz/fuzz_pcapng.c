// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The pcapng reader (capture.h), as vmcctl and the replay backend use it:
 * the input is a file. Every record it returns has the lengths it claims;
 * a damaged file is -EPROTO, never a crash. The same file is then given to
 * the replay backend, which, when it takes it, serves a session that
 * opens, carries a message and closes.
 */
#include "fuzz.h"

#include "harness.h"
#include "sim.h"

#include <openvmc/backend.h>
#include <openvmc/capture.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <unistd.h>

#define MAX_RECORDS 100000

static void backend_free_cb(void *arg)
{
	ovmc_backend_free(arg);
	free(arg);
}

static void read_all(const char *path)
{
	struct ovmc_capture_reader *r;
	struct ovmc_capture_record rec;
	unsigned n = 0;
	int rc;

	if (ovmc_capture_reader_open(path, &r))
		return;
	while ((rc = ovmc_capture_read(r, &rec)) == 1 && n++ < MAX_RECORDS) {
		volatile uint8_t sum = 0;

		/* Touch every byte it says is there (ASan checks the bounds). */
		if (rec.entry)
			for (unsigned i = 0; i < 16; i++)
				sum ^= rec.entry[i];
		for (size_t i = 0; rec.data && i < rec.data_len; i++)
			sum ^= rec.data[i];
		(void)sum;
	}
	FUZZ_CHECK(rc == 0 || rc == 1 || rc == -EPROTO || rc < 0);
	ovmc_capture_reader_close(r);
}

static void replay(const char *path)
{
	struct ovmc_backend *b = calloc(1, sizeof(*b));
	char spec[64];
	struct sim_opts o;
	struct sim_file *f;
	struct sim *s;
	uint8_t id[OVMC_HMC_ID_LEN];

	snprintf(spec, sizeof(spec), "replay:%s", path);
	if (!b || ovmc_backend_new(spec, NULL, b)) {
		free(b);
		return;
	}
	ovmc_test_defer(backend_free_cb, b);
	sim_opts_default(&o);
	o.drv.pool_size = o.hv.pool_size = 8;
	o.backend = b->ops;
	o.backend_arg = b->arg;
	s = sim_new(&o);
	sim_ready(s);
	sim_make_id(id, 5);
	f = sim_open(s);
	if (sim_sethmcid(s, f, id) == 0) {
		sim_advance(s, SIM_S);
		sim_write(s, f, "replayed?", 9);
		sim_advance(s, SIM_S);
	}
	sim_close(s, f);
	sim_advance(s, SIM_S);
	FUZZ_CHECK(ovmc_drv_state(s->drv) == OVMC_DRV_READY);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int fd = -1;
	char path[64];

	if (fd < 0) {
		fd = memfd_create("fuzz-pcapng", MFD_CLOEXEC);
		if (fd < 0)
			fuzz_fail("memfd_create");
	}
	if (ftruncate(fd, 0) < 0 || pwrite(fd, data, size, 0) != (ssize_t)size)
		fuzz_fail("memfd write");
	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	read_all(path);
	replay(path);
	fuzz_cleanup();
	return 0;
}
