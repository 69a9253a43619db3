// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * openvmc's paths: both protocol cores in this process through the public
 * API (no device, no loop: what the protocol itself costs), `openvmc`
 * through its FUSE device, `openvmcd` + `openvmc-hvd` through theirs, and
 * the 64-session runs on the two daemons.
 */
#include "bench.h"

#include <openvmc/backend.h>
#include <openvmc/driver.h>
#include <openvmc/hv.h>
#include <openvmc/ibmvmc.h>
#include <openvmc/machine.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#define READY_STATE 3
#define WAIT_MS 10000
#define SESSIONS 64
/* Paced load: each other session sends one message every PACE_MS. */
#define PACE_MS 50
/* Rounds of the 64-session figures (bench_sessions()). */
#define SESSION_ROUNDS 8

/* ---- both cores in one process ---- */

struct bench_core {
	struct ovmc_machine *m;
	struct ovmc_platform *plat;
	struct ovmc_vmc *vmc;
	struct ovmc_drv *drv;
	struct ovmc_hv *hv;
	struct ovmc_backend be;
	struct ovmc_drv_file *f;
};

static void core_pump(struct bench_core *c, uint64_t now)
{
	ovmc_hv_poll(c->hv, now);
	if (ovmc_vmc_hv_outstanding(c->vmc)) {
		ovmc_platform_irq_ack(c->plat);
		ovmc_drv_handle_interrupt(c->drv, now);
	}
}

/* Pump both cores until `done`, with their timers (INIT retries). */
static void core_until(struct bench_core *c, bool (*done)(struct bench_core *), const char *what)
{
	uint64_t end = bench_now_ns() + WAIT_MS * 1000000ull;

	while (!done(c)) {
		uint64_t now = bench_now_ns();

		if (now > end)
			bench_die("core to core: no %s within %d ms", what, WAIT_MS);
		core_pump(c, now);
		if (ovmc_drv_next_deadline(c->drv) <= now)
			ovmc_drv_handle_timer(c->drv, now);
		if (ovmc_hv_next_deadline(c->hv) <= now)
			ovmc_hv_handle_timer(c->hv, now);
	}
}

static bool core_ready(struct bench_core *c)
{
	return ovmc_drv_state(c->drv) == OVMC_DRV_READY;
}

static bool core_open(struct bench_core *c)
{
	return ovmc_drv_poll(c->drv, c->f) & POLLOUT;
}

struct bench_core *bench_core_new(void)
{
	struct bench_core *c = calloc(1, sizeof(*c));
	struct ovmc_machine_hooks hooks = {0};
	struct ovmc_drv_callbacks cbs = {0};
	struct ovmc_inproc_config pc = {0};
	struct ovmc_drv_config dc;
	struct ovmc_hv_config hc;
	uint8_t id[OVMC_HMC_ID_LEN] = "bench-core";
	uint64_t now = bench_now_ns();
	int rc;

	if (!c)
		bench_die("out of memory");
	ovmc_drv_config_default(&dc);
	ovmc_hv_config_default(&hc);
	dc.max_mtu = hc.mtu = BENCH_MAX_SIZE;
	rc = ovmc_machine_new(&hooks, &c->m);
	if (rc)
		bench_die("ovmc_machine_new: %s", ovmc_strerror(rc));
	pc.mem_size = ovmc_drv_memory_required(&dc);
	pc.vmc_present = true;
	pc.hv_window_size = ovmc_hv_memory_required(&hc);
	pc.hv_queue_entries = hc.crq_size;
	rc = ovmc_inproc_new(c->m, &pc, &c->plat);
	if (rc)
		bench_die("ovmc_inproc_new: %s", ovmc_strerror(rc));
	c->vmc = ovmc_part_vmc(ovmc_inproc_part(c->plat));
	rc = ovmc_drv_new(&dc, c->plat, &cbs, c, &c->drv);
	if (!rc)
		rc = ovmc_drv_start(c->drv, now);
	if (!rc)
		rc = ovmc_hv_attach(c->vmc, &hc, NULL, NULL, now, &c->hv);
	if (!rc)
		rc = ovmc_backend_new("echo", NULL, &c->be);
	if (rc)
		bench_die("core to core set-up: %s", ovmc_strerror(rc));
	ovmc_hv_set_backend(c->hv, c->be.ops, c->be.arg);
	core_until(c, core_ready, "READY");
	rc = ovmc_drv_open(c->drv, &c->f);
	if (!rc)
		rc = ovmc_drv_sethmcid(c->drv, c->f, id, bench_now_ns());
	if (rc)
		bench_die("core to core open: %s", ovmc_strerror(rc));
	core_until(c, core_open, "open session");
	return c;
}

void bench_core_rtt_samples(struct bench_core *c, size_t size, unsigned n, double *v)
{
	static uint8_t out[BENCH_MAX_SIZE], in[BENCH_MAX_SIZE];

	memset(out, 0x3c, size);
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();
		ssize_t r = ovmc_drv_write(c->drv, c->f, out, size, t0);

		if (r != (ssize_t)size)
			bench_die("core to core write: %s", ovmc_strerror((int)r));
		for (;;) {
			uint64_t now = bench_now_ns();

			core_pump(c, now);
			r = ovmc_drv_read(c->drv, c->f, in, sizeof(in), now);
			if (r != -EAGAIN)
				break;
		}
		if (r != (ssize_t)size)
			bench_die("core to core read: %zd", r);
		if (v)
			v[i] = (double)(bench_now_ns() - t0) / 1000.0;
	}
}

void bench_core_free(struct bench_core *c)
{
	if (c->f)
		ovmc_drv_close(c->drv, c->f, bench_now_ns());
	ovmc_hv_free(c->hv);
	ovmc_backend_free(&c->be);
	ovmc_drv_free(c->drv);
	ovmc_platform_destroy(c->plat);
	ovmc_machine_free(c->m);
	free(c);
}

/* ---- the daemons ---- */

static void wait_device(const struct bench_daemons *d)
{
	uint64_t end = bench_now_ns() + WAIT_MS * 1000000ull;

	for (;;) {
		struct ibmvmc_query_struct q = {0};
		int fd = open(d->dev, O_RDWR | O_CLOEXEC);

		if (fd >= 0) {
			int rc = ioctl(fd, VMC_IOCTL_QUERY, &q);

			close(fd);
			if (rc == 0 && q.state == READY_STATE)
				return;
		}
		if (bench_now_ns() > end)
			bench_die("%s: the channel is not ready after %d ms", d->dev, WAIT_MS);
		bench_sleep_ms(5);
	}
}

void bench_daemons_start(const struct bench_cfg *cfg, bool pair, unsigned hmcs, unsigned mtu,
			 struct bench_daemons *d)
{
	char hmcs_s[16], mtu_s[16], log[96], hvlog[96], sock[96], ready[160];

	memset(d, 0, sizeof(*d));
	d->pair = pair;
	bench_tmpdir(d->dir, sizeof(d->dir));
	snprintf(d->dev, sizeof(d->dev), "%s/ibmvmc", d->dir);
	/* A daemon killed in a cleanup may leave its mount for a moment. */
	bench_track_mount(d->dev);
	snprintf(hmcs_s, sizeof(hmcs_s), "%u", hmcs);
	snprintf(mtu_s, sizeof(mtu_s), "%u", mtu);
	snprintf(log, sizeof(log), "%s/log", d->dir);
	snprintf(hvlog, sizeof(hvlog), "%s/hv.log", d->dir);
	snprintf(sock, sizeof(sock), "%s/hv/sock", d->dir);
	/* Every daemon with --control none: the default sockets under /run
	 * belong to the machine's own daemons, and nothing here needs one. */
	if (pair) {
		char hvd[512], drvd[512];

		snprintf(hvd, sizeof(hvd), "%s/openvmc-hvd", cfg->bin_dir);
		snprintf(drvd, sizeof(drvd), "%s/openvmcd", cfg->bin_dir);
		d->hv_pid = bench_spawn(
			(const char *const[]){hvd, "--foreground", "--socket", sock, "--backend",
					      "echo", "--hmcs", hmcs_s, "--mtu", mtu_s, "--control",
					      "none", NULL},
			hvlog);
		snprintf(ready, sizeof(ready), "hypervisor ready at %s", sock);
		bench_wait_log(d->hv_pid, hvlog, ready);
		d->pid = bench_spawn((const char *const[]){drvd, "--foreground", "--socket", sock,
							   "--device", d->dev, "--session-socket",
							   "none", "--hmcs", hmcs_s, "--mtu", mtu_s,
							   "--control", "none", NULL},
				     log);
	} else {
		char prog[512];

		snprintf(prog, sizeof(prog), "%s/openvmc", cfg->bin_dir);
		d->pid = bench_spawn((const char *const[]){prog, "--device", d->dev,
							   "--session-socket", "none", "--backend",
							   "echo", "--hmcs", hmcs_s, "--mtu", mtu_s,
							   "--control", "none", NULL},
				     log);
	}
	snprintf(ready, sizeof(ready), "device ready at %s", d->dev);
	bench_wait_log(d->pid, log, ready);
	wait_device(d);
}

void bench_daemons_stop(struct bench_daemons *d)
{
	static const char *const reports[] = {"AddressSanitizer", "LeakSanitizer",
					      "runtime error:"};
	char log[96];

	/* The partition first, as an administrator would. */
	bench_stop_pid(d->pid);
	bench_stop_pid(d->hv_pid);
	d->pid = d->hv_pid = 0;
	/* A sanitized build's daemons report at the latest when they exit. */
	for (int i = 0; i < 2; i++) {
		snprintf(log, sizeof(log), "%s/%s", d->dir, i ? "hv.log" : "log");
		for (size_t k = 0; k < sizeof(reports) / sizeof(reports[0]); k++) {
			if (bench_log_has(log, reports[k])) {
				bench_print_log(log);
				bench_die("%s: a sanitizer report", log);
			}
		}
	}
}

int bench_session_open(const struct bench_daemons *d, unsigned seed)
{
	unsigned char id[HMC_ID_LEN] = {0};
	struct pollfd pfd = {.events = POLLOUT};
	int fd = open(d->dev, O_RDWR | O_CLOEXEC);

	if (fd < 0)
		bench_die("%s: %s", d->dev, strerror(errno));
	snprintf((char *)id, sizeof(id), "bench-%u", seed);
	if (ioctl(fd, VMC_IOCTL_SETHMCID, id))
		bench_die("SETHMCID on %s: %s", d->dev, strerror(errno));
	/* POLLOUT (an openvmc extension) once the open is complete. */
	pfd.fd = fd;
	if (poll(&pfd, 1, WAIT_MS) != 1 || !(pfd.revents & POLLOUT))
		bench_die("%s: HMC session %u not open after %d ms", d->dev, seed, WAIT_MS);
	return fd;
}

/* ---- 64 sessions ---- */

enum load { LOAD_PACED, LOAD_SATURATED };

struct loader {
	int fds[SESSIONS - 1];
	enum load load;
	atomic_bool stop;
};

/* The 63 other sessions: paced (one message each per PACE_MS, spread
 * evenly) or saturated (one message always in flight on each). Runs until
 * told to stop, then waits for every answer so the next phase starts
 * clean. */
static void *loader_run(void *arg)
{
	struct loader *l = arg;
	struct pollfd pfd[SESSIONS - 1];
	bool busy[SESSIONS - 1] = {0};
	uint64_t step = PACE_MS * 1000000ull / (SESSIONS - 1), next = bench_now_ns();
	unsigned turn = 0, inflight = 0;
	static char buf[32];
	uint64_t drain_end = 0;

	memset(buf, 0x11, 32);
	for (;;) {
		uint64_t now = bench_now_ns();
		int timeout = -1;

		if (atomic_load(&l->stop)) {
			if (!drain_end)
				drain_end = now + WAIT_MS * 1000000ull;
			if (!inflight)
				return NULL;
			if (now > drain_end)
				bench_die("64 sessions: %u answers missing", inflight);
			timeout = 10;
		} else if (l->load == LOAD_SATURATED) {
			for (unsigned i = 0; i < SESSIONS - 1; i++) {
				if (!busy[i] && write(l->fds[i], buf, 32) == 32) {
					busy[i] = true;
					inflight++;
				}
			}
			timeout = 10;
		} else {
			while (now >= next) {
				if (!busy[turn] && write(l->fds[turn], buf, 32) == 32) {
					busy[turn] = true;
					inflight++;
				}
				turn = (turn + 1) % (SESSIONS - 1);
				next += step;
			}
			timeout = (int)((next - now) / 1000000ull) + 1;
		}
		for (unsigned i = 0; i < SESSIONS - 1; i++) {
			pfd[i].fd = busy[i] ? l->fds[i] : -1;
			pfd[i].events = POLLIN;
			pfd[i].revents = 0;
		}
		if (poll(pfd, SESSIONS - 1, timeout) < 0 && errno != EINTR)
			bench_die("poll: %s", strerror(errno));
		for (unsigned i = 0; i < SESSIONS - 1; i++) {
			if (!(pfd[i].revents & POLLIN))
				continue;
			if (read(l->fds[i], buf, 32) != 32)
				bench_die("64 sessions: a bad answer on session %u", i + 2);
			busy[i] = false;
			inflight--;
		}
	}
}

/* n round trips on fd into v while the other sessions carry `load`. */
static void loaded_samples(struct loader *l, enum load load, int fd, unsigned n, double *v)
{
	pthread_t th;

	l->load = load;
	atomic_store(&l->stop, false);
	if (pthread_create(&th, NULL, loader_run, l))
		bench_die("pthread_create failed");
	/* Let the load reach its steady state (every session sent once), with
	 * this session busy: a machine left idle is often slower for a while
	 * after, which the lone slice just before would not share. */
	for (uint64_t end = bench_now_ns() + PACE_MS * 1000000ull; bench_now_ns() < end;)
		bench_fd_rtt_samples(fd, 32, 16, NULL);
	bench_fd_rtt_samples(fd, 32, n, v);
	atomic_store(&l->stop, true);
	pthread_join(th, NULL);
}

static double slice_median(const double *v, unsigned n)
{
	double *c = malloc(n * sizeof(*c)), m, p;

	if (!c)
		bench_die("out of memory");
	memcpy(c, v, n * sizeof(*c));
	bench_stats(c, n, &m, &p);
	free(c);
	return m;
}

enum { S_LONE, S_IDLE, S_PACED, S_SATURATED, S_ROWS };

/*
 * SESSION_ROUNDS rounds of one slice each: the lone session, then with
 * the 63 others opened, idle, paced and saturated, then closed again.
 * This machine has slow spells of up to seconds (bare FUSE 14.8 -> 19 us)
 * that a single slice per figure met or missed by chance; within a round
 * of 0.2 s the slices mostly share one. The figures are the medians of
 * all their slices; the ratio to the lone session is the median of the
 * rounds' own ratios, so a round that a spell split counts once.
 */
void bench_sessions(const struct bench_cfg *cfg, const struct bench_daemons *d,
		    const char *mode, const char *path, struct bench_rows *rows)
{
	static const char *const metric[S_ROWS] = {"rtt-lone", "rtt64-idle", "rtt64-paced",
						   "rtt64-saturated"};
	unsigned per = cfg->sess_iters / SESSION_ROUNDS + 1, n = per * SESSION_ROUNDS;
	double *v[S_ROWS], ratios[S_ROWS][SESSION_ROUNDS];
	struct loader l = {0};
	int fd = bench_session_open(d, 0);

	for (int k = 0; k < S_ROWS; k++)
		if (!(v[k] = calloc(n, sizeof(double))))
			bench_die("out of memory");
	for (unsigned r = 0; r < SESSION_ROUNDS; r++) {
		bench_fd_rtt_samples(fd, 32, per / 10 + 1, NULL);
		bench_fd_rtt_samples(fd, 32, per, v[S_LONE] + r * per);
		for (unsigned i = 0; i < SESSIONS - 1; i++)
			l.fds[i] = bench_session_open(d, i + 1);
		bench_fd_rtt_samples(fd, 32, per / 10 + 1, NULL);
		bench_fd_rtt_samples(fd, 32, per, v[S_IDLE] + r * per);
		loaded_samples(&l, LOAD_PACED, fd, per, v[S_PACED] + r * per);
		loaded_samples(&l, LOAD_SATURATED, fd, per, v[S_SATURATED] + r * per);
		for (unsigned i = 0; i < SESSIONS - 1; i++)
			close(l.fds[i]);
		for (int k = 0; k < S_ROWS; k++)
			ratios[k][r] = slice_median(v[k] + r * per, per) /
				       slice_median(v[S_LONE] + r * per, per);
	}
	for (int k = 0; k < S_ROWS; k++) {
		struct bench_row *row;
		double m, p, ratio;

		bench_stats(v[k], n, &m, &p);
		row = bench_add(rows, mode, path, metric[k], 32, m, p, "us");
		if (k != S_LONE) {
			bench_stats(ratios[k], SESSION_ROUNDS, &ratio, &p);
			row->ratio = ratio;
		}
		free(v[k]);
	}
	close(fd);
}
