// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Tests of the cross-process platform (xproc.h): hcalls through the socket
 * against the in-process platform, listening rules, departures on both
 * sides, hostile peers, and the driver and hypervisor cores end to end.
 *
 * A client blocks in every hcall, so a server in this process is served
 * by the test thread while the client runs in a helper thread; servers
 * that must die run in a forked child. Set OVMC_TEST_LOG=1 to see the
 * server's log.
 */
#include "harness.h"

#include "platform/xproc_proto.h"

#include <openvmc/backend.h>
#include <openvmc/driver.h>
#include <openvmc/hv.h>
#include <openvmc/machine.h>
#include <openvmc/platform.h>
#include <openvmc/wire.h>
#include <openvmc/xproc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MEM_SIZE (256u * 1024u)
#define HV_WINDOW (64u * 1024u)
#define HV_QUEUE 16u
#define CRQ_IOBA 0x4000u
#define SRC_IOBA 0x8000u
#define DST_IOBA 0x9000u
#define BOGUS_LIOBN 0x7777u
#define WAIT_MS 10000

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t elapsed_ms(uint64_t since)
{
	return (now_ns() - since) / 1000000u;
}

static void make_entry(uint8_t e[OVMC_CRQ_ENTRY_SIZE], uint8_t header, uint8_t seed)
{
	for (unsigned i = 0; i < OVMC_CRQ_ENTRY_SIZE; i++)
		e[i] = (uint8_t)(seed + i);
	e[0] = header;
}

/* ---- a private directory for the socket ---- */

struct tmp {
	char dir[64];
	char sock[128];
};

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void)sb;
	(void)flag;
	(void)ftw;
	remove(path);
	return 0;
}

static void tmp_free(void *arg)
{
	struct tmp *t = arg;

	nftw(t->dir, rm_one, 8, FTW_DEPTH | FTW_PHYS);
	free(t);
}

static struct tmp *tmp_new(void)
{
	struct tmp *t = calloc(1, sizeof(*t));

	if (!t)
		FAIL("out of memory");
	strcpy(t->dir, "/tmp/ovmc-xproc-XXXXXX");
	if (!mkdtemp(t->dir)) {
		free(t);
		FAIL("mkdtemp: %s", strerror(errno));
	}
	ovmc_test_defer(tmp_free, t);
	snprintf(t->sock, sizeof(t->sock), "%s/sock", t->dir);
	return t;
}

/* ---- a server in this process, and what its machine saw ---- */

#define MAX_PLATS 4

struct fx {
	struct ovmc_machine *m;
	struct ovmc_xproc_server *srv; /* NULL: in-process reference machine */
	struct ovmc_platform *plat[MAX_PLATS];
	bool hv_register;     /* open the hypervisor end of every VMC */
	bool hold;            /* the hypervisor end leaves entries in its queue */
	struct ovmc_vmc *vmc; /* the last one created */
	unsigned created, destroyed;
	uint8_t drained[64][OVMC_CRQ_ENTRY_SIZE];
	unsigned n_drained;
	unsigned warnings;
};

static void hook_created(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;

	f->created++;
	f->vmc = vmc;
	if (f->hv_register)
		ovmc_vmc_hv_register(vmc);
}

static void hook_pending(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	while (!f->hold && ovmc_vmc_hv_receive(vmc, e) == 1) {
		if (f->n_drained < 64)
			memcpy(f->drained[f->n_drained], e, sizeof(e));
		f->n_drained++;
	}
}

static void hook_destroyed(void *arg, struct ovmc_vmc *vmc)
{
	struct fx *f = arg;

	f->destroyed++;
	if (f->vmc == vmc)
		f->vmc = NULL;
}

static void __attribute__((format(printf, 3, 0)))
fx_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	struct fx *f = user;
	const char *env = getenv("OVMC_TEST_LOG");

	if (level <= OVMC_LOG_WARN)
		f->warnings++;
	if (env && *env) {
		fprintf(stderr, "[server %s] ", ovmc_log_level_name(level));
		vfprintf(stderr, fmt, ap);
		fputc('\n', stderr);
	}
}

static void fx_free(void *arg)
{
	struct fx *f = arg;

	for (unsigned i = 0; i < MAX_PLATS; i++)
		ovmc_platform_destroy(f->plat[i]);
	ovmc_xproc_server_free(f->srv);
	if (f->m)
		ovmc_machine_free(f->m);
	free(f);
}

static void server_config(struct ovmc_xproc_server_config *c, const char *path,
			  struct ovmc_machine *m)
{
	memset(c, 0, sizeof(*c));
	c->socket_path = path;
	c->machine = m;
	c->vmc_present = true;
	c->request_vmc_rc = OVMC_H_SUCCESS;
	c->hv_window_size = HV_WINDOW;
	c->hv_queue_entries = HV_QUEUE;
}

static struct fx *fx_new_config(const char *path, bool hv_register, bool defer_replies);
static struct fx *fx_new_full(const char *path, bool hv_register, bool defer_replies,
			      bool posting);

/* A machine, and a server on it when `path` is given. */
static struct fx *fx_new(const char *path, bool hv_register)
{
	return fx_new_config(path, hv_register, false);
}

static struct fx *fx_new_config(const char *path, bool hv_register, bool defer_replies)
{
	return fx_new_full(path, hv_register, defer_replies, false);
}

static struct fx *fx_new_full(const char *path, bool hv_register, bool defer_replies,
			      bool posting)
{
	struct fx *f = calloc(1, sizeof(*f));
	struct ovmc_machine_hooks hooks = {.vmc_created = hook_created,
					   .vmc_pending = hook_pending,
					   .vmc_destroyed = hook_destroyed};
	struct ovmc_xproc_server_config c;
	int rc;

	if (!f)
		FAIL("out of memory");
	ovmc_test_defer(fx_free, f);
	f->hv_register = hv_register;
	hooks.arg = f;
	rc = ovmc_machine_new(&hooks, &f->m);
	if (rc)
		FAIL("ovmc_machine_new: %d", rc);
	if (!path)
		return f;
	server_config(&c, path, f->m);
	c.defer_replies = defer_replies;
	c.posting = posting;
	c.log = fx_log;
	c.log_user = f;
	rc = ovmc_xproc_server_new(&c, &f->srv);
	if (rc)
		FAIL("ovmc_xproc_server_new: %s", ovmc_strerror(rc));
	return f;
}

static void serve_once(struct fx *f, int ms)
{
	struct pollfd pfd = {.fd = ovmc_xproc_server_fd(f->srv), .events = POLLIN};

	poll(&pfd, 1, ms);
	ovmc_xproc_server_dispatch(f->srv);
	ovmc_xproc_server_flush(f->srv);
}

/* ---- a client in a helper thread while this thread serves ---- */

struct job {
	void (*fn)(void *);
	void *arg;
	atomic_bool done;
};

static void *job_main(void *arg)
{
	struct job *j = arg;

	j->fn(j->arg);
	atomic_store(&j->done, true);
	return NULL;
}

static void serve_while(struct fx *f, void (*fn)(void *), void *arg)
{
	struct job j = {.fn = fn, .arg = arg};
	pthread_t th;
	uint64_t t0 = now_ns();

	atomic_init(&j.done, false);
	if (pthread_create(&th, NULL, job_main, &j))
		FAIL("pthread_create");
	while (!atomic_load(&j.done)) {
		serve_once(f, 5);
		if (elapsed_ms(t0) > WAIT_MS) {
			/* The thread uses this frame: there is no clean way out. */
			fprintf(stderr, "client thread stuck\n");
			abort();
		}
	}
	pthread_join(th, NULL);
}

struct connect_job {
	const char *path;
	size_t size;
	bool socket_only;
	struct ovmc_platform *p;
	int rc;
};

static void connect_main(void *arg)
{
	struct connect_job *c = arg;

	if (!c->socket_only) {
		c->rc = ovmc_xproc_connect(c->path, c->size, &c->p);
		return;
	}
	c->rc = ovmc_xproc_new(c->path, c->size, &c->p);
	if (c->rc)
		return;
	ovmc_xproc_set_mailbox(c->p, false);
	c->rc = ovmc_xproc_reconnect(c->p);
	if (c->rc)
		ovmc_platform_destroy(c->p);
}

/* Connect, served by `f`; the platform is kept in f->plat[slot]. */
static int xconnect_how(struct fx *f, const char *path, size_t size, unsigned slot,
			bool socket_only)
{
	struct connect_job c = {.path = path, .size = size, .socket_only = socket_only};

	serve_while(f, connect_main, &c);
	if (c.rc == 0)
		f->plat[slot] = c.p;
	return c.rc;
}

static int xconnect(struct fx *f, const char *path, size_t size, unsigned slot)
{
	return xconnect_how(f, path, size, slot, false);
}

struct hcall_job {
	struct ovmc_platform *p;
	unsigned long op;
	const uint64_t *a;
	unsigned n;
	uint64_t r[OVMC_HCALL_RETS];
	long rc;
};

static void hcall_main(void *arg)
{
	struct hcall_job *h = arg;

	h->rc = ovmc_hcall(h->p, h->op, h->a, h->n, h->r);
}

/* An hcall as `p`: served by f's server, or direct when there is none. */
static long hc(struct fx *f, struct ovmc_platform *p, uint64_t *rets, unsigned long op,
	       const uint64_t *a, unsigned n)
{
	struct hcall_job h = {.p = p, .op = op, .a = a, .n = n};

	if (f && f->srv)
		serve_while(f, hcall_main, &h);
	else
		hcall_main(&h);
	if (rets)
		memcpy(rets, h.r, sizeof(h.r));
	return h.rc;
}

#define HC(f, p, op, ...)                                                                          \
	hc(f, p, NULL, op, (const uint64_t[]){__VA_ARGS__},                                        \
	   sizeof((const uint64_t[]){__VA_ARGS__}) / sizeof(uint64_t))

struct node_job {
	struct ovmc_platform *p;
	struct ovmc_vmc_node node;
	int rc;
};

static void node_main(void *arg)
{
	struct node_job *j = arg;

	j->rc = ovmc_platform_vmc_node(j->p, &j->node);
}

static int xnode(struct fx *f, struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	struct node_job j = {.p = p};

	if (f && f->srv)
		serve_while(f, node_main, &j);
	else
		node_main(&j);
	*out = j.node;
	return j.rc;
}

static bool irq_readable(struct ovmc_platform *p)
{
	struct pollfd pfd = {.fd = ovmc_platform_irq_fd(p), .events = POLLIN};

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLIN);
}

/* ---- a server in a child process ---- */

enum child_mode {
	CHILD_ECHO_CRQ, /* hypervisor end open; entries sent back as they come */
	CHILD_HV,	/* a hypervisor core with the echo backend on every VMC */
};

struct child_state {
	enum child_mode mode;
	struct ovmc_hv_config hv_cfg;
	struct ovmc_backend backend;
	struct ovmc_hv *hv;
};

static void child_created(void *arg, struct ovmc_vmc *vmc)
{
	struct child_state *cs = arg;

	if (cs->mode == CHILD_ECHO_CRQ) {
		ovmc_vmc_hv_register(vmc);
		return;
	}
	if (ovmc_hv_attach(vmc, &cs->hv_cfg, NULL, NULL, now_ns(), &cs->hv) == 0)
		ovmc_hv_set_backend(cs->hv, cs->backend.ops, cs->backend.arg);
}

static void child_pending(void *arg, struct ovmc_vmc *vmc)
{
	struct child_state *cs = arg;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	if (cs->mode == CHILD_HV) {
		if (ovmc_vmc_user(vmc))
			ovmc_hv_poll(ovmc_vmc_user(vmc), now_ns());
		return;
	}
	while (ovmc_vmc_hv_receive(vmc, e) == 1) {
		if (e[0] != OVMC_CRQ_TRANSPORT)
			ovmc_vmc_hv_send(vmc, e);
	}
}

static void child_destroyed(void *arg, struct ovmc_vmc *vmc)
{
	struct child_state *cs = arg;
	struct ovmc_hv *hv = ovmc_vmc_user(vmc);

	if (cs->mode == CHILD_HV && hv) {
		ovmc_hv_free(hv);
		if (cs->hv == hv)
			cs->hv = NULL;
	}
}

/* The child's whole life: report the set-up result on `wfd`, then serve. */
static _Noreturn void child_server(const char *path, enum child_mode mode, int wfd)
{
	struct child_state cs = {.mode = mode};
	struct ovmc_machine_hooks hooks = {.vmc_created = child_created,
					   .vmc_pending = child_pending,
					   .vmc_destroyed = child_destroyed,
					   .arg = &cs};
	struct ovmc_xproc_server_config c;
	struct ovmc_machine *m;
	struct ovmc_xproc_server *srv;
	int rc;

	ovmc_hv_config_default(&cs.hv_cfg);
	rc = ovmc_machine_new(&hooks, &m);
	if (rc == 0 && mode == CHILD_HV)
		rc = ovmc_backend_new("echo", NULL, &cs.backend);
	if (rc == 0) {
		server_config(&c, path, m);
		if (mode == CHILD_HV) {
			c.hv_window_size = ovmc_hv_memory_required(&cs.hv_cfg);
			c.hv_queue_entries = cs.hv_cfg.crq_size;
		}
		rc = ovmc_xproc_server_new(&c, &srv);
	}
	if (write(wfd, &rc, sizeof(rc)) != (ssize_t)sizeof(rc) || rc)
		_exit(1);
	close(wfd);
	for (;;) {
		struct pollfd pfd = {.fd = ovmc_xproc_server_fd(srv), .events = POLLIN};
		int timeout = 100;

		if (cs.hv) {
			uint64_t d = ovmc_hv_next_deadline(cs.hv), t = now_ns();

			if (d <= t) {
				ovmc_hv_handle_timer(cs.hv, t);
				continue;
			}
			if (d != OVMC_TIME_NEVER && (d - t) / 1000000u < (uint64_t)timeout)
				timeout = (int)((d - t) / 1000000u) + 1;
		}
		poll(&pfd, 1, timeout);
		ovmc_xproc_server_dispatch(srv);
	}
}

struct child {
	pid_t pid;
};

static void child_kill(void *arg)
{
	struct child *c = arg;

	if (c->pid > 0) {
		kill(c->pid, SIGKILL);
		waitpid(c->pid, NULL, 0);
	}
	free(c);
}

static void child_reap(struct child *c)
{
	kill(c->pid, SIGKILL);
	waitpid(c->pid, NULL, 0);
	c->pid = 0;
}

static void child_signal(struct child *c, int sig)
{
	CHECK_EQ(kill(c->pid, sig), 0);
}

static struct child *spawn_server(const char *path, enum child_mode mode)
{
	struct child *c = calloc(1, sizeof(*c));
	struct pollfd pfd = {.events = POLLIN};
	int p[2], rc = -1;
	pid_t parent = getpid();

	if (!c || pipe2(p, O_CLOEXEC) < 0)
		FAIL("spawn_server: %s", strerror(errno));
	ovmc_test_defer(child_kill, c);
	c->pid = fork();
	if (c->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c->pid == 0) {
		ovmc_test_die_with_parent(parent);
		close(p[0]);
		child_server(path, mode, p[1]);
	}
	close(p[1]);
	pfd.fd = p[0];
	if (poll(&pfd, 1, WAIT_MS) != 1 || read(p[0], &rc, sizeof(rc)) != (ssize_t)sizeof(rc)) {
		close(p[0]);
		FAIL("server child did not start");
	}
	close(p[0]);
	if (rc)
		FAIL("server child: %s", ovmc_strerror(rc));
	return c;
}

/* ================================================================== */

struct script_out {
	long rc[24];
	unsigned n;
	uint64_t drc;
};

/* The same hcalls on any platform, with their answers recorded. */
static void run_script(struct fx *f, struct ovmc_platform *p, const struct ovmc_vmc_node *nd,
		       struct script_out *o)
{
	uint64_t u = nd->unit_address, l = nd->liobn_local, r = nd->liobn_remote;
	uint64_t hi, lo, bad_hi, bad_lo, rets[OVMC_HCALL_RETS];
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	long *rc = o->rc;

	make_entry(e, OVMC_CRQ_CMD, 0x30);
	ovmc_entry_to_words(e, &hi, &lo);
	make_entry(e, 0x00, 0x30);
	ovmc_entry_to_words(e, &bad_hi, &bad_lo);

	rc[o->n++] = HC(f, p, OVMC_H_REG_CRQ, u, CRQ_IOBA, OVMC_PAGE_SIZE);
	rc[o->n++] = HC(f, p, OVMC_H_REG_CRQ, u, CRQ_IOBA, OVMC_PAGE_SIZE);
	rc[o->n++] = HC(f, p, OVMC_H_REG_CRQ, u + 1, CRQ_IOBA, OVMC_PAGE_SIZE);
	rc[o->n++] = HC(f, p, OVMC_H_SEND_CRQ, u, bad_hi, bad_lo);
	rc[o->n++] = HC(f, p, OVMC_H_SEND_CRQ, u, hi | 0xFF00000000000000ull, lo);
	rc[o->n++] = HC(f, p, OVMC_H_SEND_CRQ, u, hi, lo);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, 64, l, SRC_IOBA, r, 0x100);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, 64, BOGUS_LIOBN, SRC_IOBA, r, 0x100);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, 64, l, SRC_IOBA, BOGUS_LIOBN, 0x100);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, OVMC_MAX_RDMA_LEN + 1, l, 0, r, 0);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, 64, l, MEM_SIZE - 32, r, 0);
	rc[o->n++] = HC(f, p, OVMC_H_COPY_RDMA, 64, l, SRC_IOBA, r, HV_WINDOW - 32);
	rc[o->n++] = HC(f, p, OVMC_H_VIO_SIGNAL, u, 7);
	rc[o->n++] = HC(f, p, OVMC_H_ENABLE_CRQ, u);
	rc[o->n++] = HC(f, p, 0x1234, u);
	rc[o->n++] = hc(f, p, rets, OVMC_H_REQUEST_VMC, NULL, 0);
	o->drc = rets[0];
	rc[o->n++] = HC(f, p, OVMC_H_VIO_SIGNAL, u, OVMC_VIO_IRQ_ENABLE);
}

static const long script_expected[] = {
	OVMC_H_SUCCESS,	  OVMC_H_RESOURCE,  OVMC_H_PARAMETER,	OVMC_H_PARAMETER,
	OVMC_H_PARAMETER, OVMC_H_SUCCESS,   OVMC_H_SUCCESS,	OVMC_H_SOURCE_PARM,
	OVMC_H_DEST_PARM, OVMC_H_PARAMETER, OVMC_H_SOURCE_PARM, OVMC_H_DEST_PARM,
	OVMC_H_PARAMETER, OVMC_H_SUCCESS,   OVMC_H_FUNCTION,	OVMC_H_SUCCESS,
	OVMC_H_SUCCESS,
};

static void fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + i * 7);
}

/* Every hcall answered as in process, through the mailbox or the socket. */
static void hcalls_answer_as_in_process(bool socket_only)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, true), *ref = fx_new(NULL, true);
	struct ovmc_inproc_config ic = {.mem_size = MEM_SIZE,
					.vmc_present = true,
					.request_vmc_rc = OVMC_H_SUCCESS,
					.hv_window_size = HV_WINDOW,
					.hv_queue_entries = HV_QUEUE};
	struct ovmc_vmc_node nx, nr, ns;
	struct script_out ox = {0}, or = {0};
	struct ovmc_platform *p;
	uint8_t *mem, *hvmem, e[OVMC_CRQ_ENTRY_SIZE], pattern[64];
	size_t size, hvsize;
	uint64_t u;
	int rc;

	rc = xconnect_how(x, t->sock, MEM_SIZE - 100, 0, socket_only);
	CHECK_EQ(rc, 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_has_mailbox(p), !socket_only);
	CHECK(ovmc_platform_alive(p));
	CHECK(ovmc_xproc_fd(p) >= 0);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
	CHECK_EQ(x->created, 1);
	mem = ovmc_platform_memory(p, &size);
	CHECK_EQ(size, MEM_SIZE); /* rounded up to a page */
	CHECK_EQ(ovmc_inproc_new(ref->m, &ic, &ref->plat[0]), 0);

	/* Same machine, same answers: node, every hcall, every error code. */
	CHECK_EQ(xnode(x, p, &nx), 0);
	CHECK_EQ(xnode(ref, ref->plat[0], &nr), 0);
	CHECK_MEM(&nx, &nr, sizeof(nx));
	CHECK(x->vmc);
	CHECK_EQ(ovmc_part_vmc_node(ovmc_vmc_part(x->vmc), &ns), 0);
	CHECK_MEM(&nx, &ns, sizeof(nx));
	CHECK_EQ(nx.window_local, MEM_SIZE);

	fill(mem + SRC_IOBA, 64, 0x11);
	fill((uint8_t *)ovmc_platform_memory(ref->plat[0], NULL) + SRC_IOBA, 64, 0x11);
	run_script(x, p, &nx, &ox);
	run_script(ref, ref->plat[0], &nr, & or);
	CHECK_EQ(ox.n, sizeof(script_expected) / sizeof(script_expected[0]));
	for (unsigned i = 0; i < ox.n; i++) {
		if (ox.rc[i] != or.rc[i] || ox.rc[i] != script_expected[i])
			FAIL("hcall %u: xproc %s, in-process %s, expected %s", i,
			     ovmc_hcall_rc_name(ox.rc[i]), ovmc_hcall_rc_name(or.rc[i]),
			     ovmc_hcall_rc_name(script_expected[i]));
	}
	CHECK_EQ(ox.drc, nx.drc_index);
	CHECK_EQ(ox.drc, or.drc);

	/* The entry the partition sent reached the hypervisor end intact. */
	CHECK_EQ(x->n_drained, 1);
	CHECK_EQ(ref->n_drained, 1);
	make_entry(e, OVMC_CRQ_CMD, 0x30);
	CHECK_MEM(x->drained[0], e, sizeof(e));

	/* RDMA partition -> hypervisor window, seen on the server side. */
	hvmem = ovmc_vmc_hv_memory(x->vmc, &hvsize);
	CHECK_EQ(hvsize, HV_WINDOW);
	fill(pattern, sizeof(pattern), 0x11);
	CHECK_MEM(hvmem + 0x100, pattern, sizeof(pattern));
	/* and back, seen in the client's mapping. */
	fill(hvmem + 0x200, 64, 0x5a);
	CHECK_EQ(HC(x, p, OVMC_H_COPY_RDMA, 64, nx.liobn_remote, 0x200, nx.liobn_local, DST_IOBA),
		 OVMC_H_SUCCESS);
	CHECK_MEM(mem + DST_IOBA, hvmem + 0x200, 64);

	/* The hypervisor delivers into the client's memory and interrupts. */
	u = nx.unit_address;
	CHECK(!irq_readable(p));
	make_entry(e, OVMC_CRQ_CMD, 0x40);
	CHECK_EQ(ovmc_vmc_hv_send(x->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(mem + CRQ_IOBA, e, sizeof(e));
	CHECK(irq_readable(p));
	ovmc_platform_irq_ack(p);
	CHECK(!irq_readable(p));
	/* Disabled: no interrupt; enabling with an entry waiting fires. */
	CHECK_EQ(HC(x, p, OVMC_H_VIO_SIGNAL, u, OVMC_VIO_IRQ_DISABLE), OVMC_H_SUCCESS);
	make_entry(e, OVMC_CRQ_CMD, 0x50);
	CHECK_EQ(ovmc_vmc_hv_send(x->vmc, e), OVMC_H_SUCCESS);
	CHECK_MEM(mem + CRQ_IOBA + OVMC_CRQ_ENTRY_SIZE, e, sizeof(e));
	CHECK(!irq_readable(p));
	CHECK_EQ(HC(x, p, OVMC_H_VIO_SIGNAL, u, OVMC_VIO_IRQ_ENABLE), OVMC_H_SUCCESS);
	CHECK(irq_readable(p));

	/* An orderly destroy looks like H_FREE_CRQ to the hypervisor end. */
	ovmc_platform_destroy(p);
	x->plat[0] = NULL;
	for (uint64_t t0 = now_ns(); ovmc_xproc_server_clients(x->srv) && elapsed_ms(t0) < WAIT_MS;)
		serve_once(x, 10);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 0);
	CHECK_EQ(x->destroyed, 1);
	CHECK_EQ(x->n_drained, 2);
	CHECK_EQ(x->drained[1][0], OVMC_CRQ_TRANSPORT);
	CHECK_EQ(x->drained[1][1], OVMC_EVENT_PARTNER_DEREGISTERED);
	CHECK_EQ(x->warnings, 0);
}

TEST(hcalls_through_the_mailbox_answer_as_in_process)
{
	hcalls_answer_as_in_process(false);
}

TEST(hcalls_through_the_socket_answer_as_in_process)
{
	hcalls_answer_as_in_process(true);
}

struct pair_job {
	struct ovmc_platform *p;
	struct ovmc_hcall_req req[2];
	long rcs[2];
};

static void pair_main(void *arg)
{
	struct pair_job *j = arg;

	ovmc_hcall_pair(j->p, j->req, j->rcs);
}

/* Two H_COPY_RDMA as a pair: the first from `src_liobn`. */
static void rdma_pair(struct fx *f, struct ovmc_platform *p, const struct ovmc_vmc_node *n,
		      uint64_t src_liobn, long rcs[2])
{
	struct pair_job j = {
		.p = p,
		.req = {{.opcode = OVMC_H_COPY_RDMA,
			 .args = {64, src_liobn, SRC_IOBA, n->liobn_remote, 0x100},
			 .nargs = 5},
			{.opcode = OVMC_H_COPY_RDMA,
			 .args = {64, n->liobn_local, SRC_IOBA, n->liobn_remote, 0x300},
			 .nargs = 5}},
	};

	if (f->srv)
		serve_while(f, pair_main, &j);
	else
		pair_main(&j);
	rcs[0] = j.rcs[0];
	rcs[1] = j.rcs[1];
}

TEST(hcall_pair_makes_the_second_only_after_a_successful_first)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, true), *ref = fx_new(NULL, true);
	struct ovmc_inproc_config ic = {.mem_size = MEM_SIZE,
					.vmc_present = true,
					.request_vmc_rc = OVMC_H_SUCCESS,
					.hv_window_size = HV_WINDOW,
					.hv_queue_entries = HV_QUEUE};
	struct fx *fs[2] = {x, ref};

	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(ovmc_inproc_new(ref->m, &ic, &ref->plat[0]), 0);
	/* The same answers and effects through the socket and in process. */
	for (int i = 0; i < 2; i++) {
		struct fx *f = fs[i];
		struct ovmc_platform *p = f->plat[0];
		struct ovmc_vmc_node n;
		uint8_t *hvmem, pattern[64], zero[64] = {0};
		long rcs[2];

		CHECK_EQ(xnode(f, p, &n), 0);
		rcs[0] = HC(f, p, OVMC_H_REG_CRQ, n.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE);
		CHECK(rcs[0] == OVMC_H_SUCCESS || rcs[0] == OVMC_H_CLOSED);
		hvmem = ovmc_vmc_hv_memory(ovmc_part_vmc(i ? ovmc_inproc_part(p) :
							     ovmc_vmc_part(f->vmc)), NULL);
		fill((uint8_t *)ovmc_platform_memory(p, NULL) + SRC_IOBA, 64, 0x21);
		fill(pattern, sizeof(pattern), 0x21);
		/* A first that fails: the second is not made. */
		rdma_pair(f, p, &n, n.liobn_local + 77, rcs);
		CHECK(rcs[0] != OVMC_H_SUCCESS);
		CHECK_EQ(rcs[1], rcs[0]);
		CHECK_MEM(hvmem + 0x100, zero, sizeof(zero));
		CHECK_MEM(hvmem + 0x300, zero, sizeof(zero));
		/* Both made. */
		rdma_pair(f, p, &n, n.liobn_local, rcs);
		CHECK_EQ(rcs[0], OVMC_H_SUCCESS);
		CHECK_EQ(rcs[1], OVMC_H_SUCCESS);
		CHECK_MEM(hvmem + 0x100, pattern, sizeof(pattern));
		CHECK_MEM(hvmem + 0x300, pattern, sizeof(pattern));
	}
	CHECK_EQ(x->warnings, 0);
}

/*
 * A copy out of the hypervisor window is made by the client itself once
 * NODE lent it: the machine's checks in the machine's order, no server
 * turn, counted by the server when the reports arrive with the next
 * request, a flush, or a full batch.
 */
TEST(copies_out_of_the_window_are_made_here_checked_as_the_machine_does_then_reported)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, true);
	struct ovmc_machine_stats ms;
	struct ovmc_vmc_node n;
	struct ovmc_platform *p;
	uint8_t *mem, *hvmem;

	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	p = x->plat[0];
	mem = ovmc_platform_memory(p, NULL);
	CHECK_EQ(xnode(x, p, &n), 0);
	hvmem = ovmc_vmc_hv_memory(x->vmc, NULL);
	fill(hvmem + 0x200, 64, 0x5a);
	/* No CRQ yet: the window is not linked. Nobody serves this thread's
	 * hcall, so only the client can have answered it. */
	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, 0x200, n.liobn_local, DST_IOBA),
		 OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_xproc_held(p), 1);
	/* The report goes with the next request, ahead of it. */
	CHECK_EQ(HC(x, p, OVMC_H_REG_CRQ, n.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_xproc_held(p), 0);
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_rejected, 1);
	CHECK_EQ(ms.rdma_ops, 0);

	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, 0x200, n.liobn_local, DST_IOBA),
		 OVMC_H_SUCCESS);
	CHECK_MEM(mem + DST_IOBA, hvmem + 0x200, 64);
	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, HV_WINDOW - 32, n.liobn_local, 0),
		 OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, 0, n.liobn_local, MEM_SIZE - 32),
		 OVMC_H_DEST_PARM);
	CHECK_EQ(ovmc_h_copy_rdma(p, OVMC_MAX_RDMA_LEN + 1, n.liobn_remote, 0, n.liobn_local, 0),
		 OVMC_H_PARAMETER);
	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, UINT64_MAX - 8, n.liobn_local, 0),
		 OVMC_H_SOURCE_PARM);
	CHECK_EQ(ovmc_xproc_held(p), 5);
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 0);
	CHECK_EQ(ovmc_xproc_flush(p), 0);
	CHECK_EQ(ovmc_xproc_held(p), 0);
	CHECK_EQ(ovmc_xproc_flush(p), 0); /* nothing held: nothing sent */
	serve_once(x, WAIT_MS);
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 1);
	CHECK_EQ(ms.rdma_bytes, 64);
	CHECK_EQ(ms.rdma_rejected, 5);

	/* At most a batch is held: the 17th copy sends the 16 before it. */
	for (unsigned i = 0; i < XPROC_MAX_REPORTS + 1; i++)
		CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, 0x200, n.liobn_local, DST_IOBA),
			 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_xproc_held(p), 1);
	serve_once(x, WAIT_MS);
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 1 + XPROC_MAX_REPORTS);

	/* The hypervisor end closes: from then on the window is out of reach. */
	CHECK_EQ(ovmc_vmc_hv_free(x->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(p, 64, n.liobn_remote, 0x200, n.liobn_local, DST_IOBA),
		 OVMC_H_SOURCE_PARM);
	/* Copies into the window are the server's to make, as before. */
	CHECK_EQ(ovmc_vmc_hv_register(x->vmc), OVMC_H_SUCCESS);
	fill(mem + SRC_IOBA, 64, 0x33);
	CHECK_EQ(HC(x, p, OVMC_H_COPY_RDMA, 64, n.liobn_local, SRC_IOBA, n.liobn_remote, 0x400),
		 OVMC_H_SUCCESS);
	CHECK_MEM(hvmem + 0x400, mem + SRC_IOBA, 64);
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 2 + XPROC_MAX_REPORTS + 1);
	CHECK_EQ(x->warnings, 0);
}

/*
 * A server that defers its replies sends an interrupt raised during an
 * hcall with the reply: the client makes its eventfd readable itself,
 * unless its owner scans the CRQ after hcalls (then nothing is written).
 */
TEST(interrupt_raised_during_an_hcall_comes_with_the_deferred_reply)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new_config(t->sock, true, true);
	uint8_t *mem, e[OVMC_CRQ_ENTRY_SIZE];
	struct ovmc_vmc_node n;
	struct ovmc_platform *p;

	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	p = x->plat[0];
	mem = ovmc_platform_memory(p, NULL);
	CHECK_EQ(xnode(x, p, &n), 0);
	CHECK_EQ(HC(x, p, OVMC_H_REG_CRQ, n.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	for (int scan = 0; scan < 2; scan++) {
		CHECK_EQ(ovmc_xproc_set_irq_scan(p, scan), 0);
		/* Queued while disabled; enabling raises, inside the hcall. */
		CHECK_EQ(HC(x, p, OVMC_H_VIO_SIGNAL, n.unit_address, OVMC_VIO_IRQ_DISABLE),
			 OVMC_H_SUCCESS);
		make_entry(e, OVMC_CRQ_CMD, (uint8_t)(0x60 + scan));
		CHECK_EQ(ovmc_vmc_hv_send(x->vmc, e), OVMC_H_SUCCESS);
		CHECK(!irq_readable(p));
		CHECK_EQ(HC(x, p, OVMC_H_VIO_SIGNAL, n.unit_address, OVMC_VIO_IRQ_ENABLE),
			 OVMC_H_SUCCESS);
		CHECK_MEM(mem + CRQ_IOBA, e, sizeof(e));
		CHECK_EQ(irq_readable(p), !scan);
		ovmc_platform_irq_fired(p);
		CHECK_EQ(ovmc_platform_irq_ack(p), !scan);
		CHECK(!irq_readable(p));
		/* Outside an hcall the eventfd is written as always. */
		make_entry(e, OVMC_CRQ_CMD, 0x70);
		CHECK_EQ(ovmc_vmc_hv_send(x->vmc, e), OVMC_H_SUCCESS);
		CHECK(irq_readable(p));
		/* Scanning: the ack reads only after the owner saw it fire. */
		if (scan) {
			CHECK_EQ(ovmc_platform_irq_ack(p), 0);
			CHECK(irq_readable(p));
			ovmc_platform_irq_fired(p);
		}
		CHECK_EQ(ovmc_platform_irq_ack(p), 1);
		CHECK(!irq_readable(p));
		/* A fresh queue for the next round. */
		CHECK_EQ(HC(x, p, OVMC_H_FREE_CRQ, n.unit_address), OVMC_H_SUCCESS);
		memset(mem + CRQ_IOBA, 0, OVMC_PAGE_SIZE);
		CHECK_EQ(HC(x, p, OVMC_H_REG_CRQ, n.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
			 OVMC_H_SUCCESS);
	}
	CHECK_EQ(ovmc_xproc_set_irq_scan(NULL, true), -EINVAL);
	CHECK_EQ(x->warnings, 0);
}

TEST(vmc_node_without_vmc_is_enodev)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(NULL, false);
	struct ovmc_xproc_server_config c;
	struct ovmc_vmc_node nd;
	uint64_t rets[OVMC_HCALL_RETS];

	server_config(&c, t->sock, x->m);
	c.vmc_present = false;
	CHECK_EQ(ovmc_xproc_server_new(&c, &x->srv), 0);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(xnode(x, x->plat[0], &nd), -ENODEV);
	CHECK_EQ(hc(x, x->plat[0], rets, OVMC_H_REQUEST_VMC, NULL, 0), OVMC_H_SUCCESS);
	CHECK_EQ(x->created, 1);
	CHECK_EQ(xnode(x, x->plat[0], &nd), 0);
	CHECK_EQ(rets[0], nd.drc_index);
}

/* ---- listening ---- */

/* A socket file with nobody behind it, as a killed server leaves. */
static void make_stale_socket(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	CHECK(fd >= 0);
	strcpy(sa.sun_path, path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		FAIL("bind %s: %s", path, strerror(errno));
	}
	close(fd);
}

TEST(connect_without_server_fails)
{
	struct tmp *t = tmp_new();
	struct ovmc_platform *p = NULL;

	CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &p), -ENOENT);
	make_stale_socket(t->sock);
	CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &p), -ECONNREFUSED);
	CHECK(p == NULL);
}

TEST(second_server_on_same_path_is_refused)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	struct ovmc_xproc_server_config c;
	struct ovmc_xproc_server *srv2 = NULL;
	char path2[160];
	int fd;

	server_config(&c, t->sock, x->m);
	CHECK_EQ(ovmc_xproc_server_new(&c, &srv2), -EEXIST);
	CHECK(srv2 == NULL);
	/* The first one is unharmed. */
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);

	/* Whatever is not a socket is not ours to remove. */
	snprintf(path2, sizeof(path2), "%s/file", t->dir);
	fd = open(path2, O_CREAT | O_WRONLY | O_CLOEXEC, 0600);
	CHECK(fd >= 0);
	close(fd);
	c.socket_path = path2;
	CHECK_EQ(ovmc_xproc_server_new(&c, &srv2), -EEXIST);
	CHECK_EQ(access(path2, F_OK), 0);
}

TEST(stale_socket_file_is_replaced)
{
	struct tmp *t = tmp_new();
	struct fx *x;
	struct stat st;

	make_stale_socket(t->sock);
	x = fx_new(t->sock, false);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK(ovmc_platform_alive(x->plat[0]));

	/* Freeing the server removes its socket file. */
	ovmc_xproc_server_free(x->srv);
	x->srv = NULL;
	CHECK_EQ(stat(t->sock, &st), -1);
	CHECK_EQ(errno, ENOENT);
	CHECK_EQ(ovmc_xproc_check(x->plat[0]), 0);
}

TEST(socket_dir_open_to_others_is_refused)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(NULL, false);
	struct ovmc_xproc_server_config c;
	struct ovmc_xproc_server *srv = NULL;
	char dir[128], path[160];
	struct stat st;

	snprintf(dir, sizeof(dir), "%s/open", t->dir);
	snprintf(path, sizeof(path), "%s/sock", dir);
	CHECK_EQ(mkdir(dir, 0700), 0);
	CHECK_EQ(chmod(dir, 0755), 0);
	server_config(&c, path, x->m);
	CHECK_EQ(ovmc_xproc_server_new(&c, &srv), -EPERM);
	CHECK_EQ(chmod(dir, 0710), 0);
	CHECK_EQ(ovmc_xproc_server_new(&c, &srv), -EPERM);
	CHECK(srv == NULL);
	CHECK_EQ(stat(path, &st), -1);

	/* A missing directory is created private. */
	snprintf(dir, sizeof(dir), "%s/new", t->dir);
	snprintf(path, sizeof(path), "%s/sock", dir);
	c.socket_path = path;
	CHECK_EQ(ovmc_xproc_server_new(&c, &x->srv), 0);
	CHECK_EQ(stat(dir, &st), 0);
	CHECK_EQ(st.st_mode & 0777, 0700);
	CHECK_EQ(stat(path, &st), 0);
	CHECK(S_ISSOCK(st.st_mode));
}

/* ---- departures ---- */

/* A client process: attach, register the CRQ, report, wait to be killed. */
static _Noreturn void client_child(const char *path, int wfd)
{
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd;
	char ok = 0;

	if (ovmc_xproc_connect(path, MEM_SIZE, &p) == 0 && ovmc_platform_vmc_node(p, &nd) == 0 &&
	    ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE) == OVMC_H_SUCCESS)
		ok = 1;
	if (write(wfd, &ok, 1) != 1)
		_exit(1);
	for (;;)
		pause();
}

TEST(server_removes_partition_of_dead_client)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, true);
	struct child *c = calloc(1, sizeof(*c));
	int p[2];
	char ok = 0;
	uint64_t t0;
	bool failed_seen = false;
	pid_t parent = getpid();

	if (!c || pipe2(p, O_CLOEXEC) < 0)
		FAIL("set-up: %s", strerror(errno));
	ovmc_test_defer(child_kill, c);
	c->pid = fork();
	if (c->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c->pid == 0) {
		ovmc_test_die_with_parent(parent);
		close(p[0]);
		client_child(t->sock, p[1]);
	}
	close(p[1]);
	for (t0 = now_ns(); elapsed_ms(t0) < WAIT_MS;) {
		struct pollfd pf[2] = {{.fd = ovmc_xproc_server_fd(x->srv), .events = POLLIN},
				       {.fd = p[0], .events = POLLIN}};

		poll(pf, 2, 10);
		ovmc_xproc_server_dispatch(x->srv);
		if (pf[1].revents) {
			if (read(p[0], &ok, 1) != 1)
				ok = 0;
			break;
		}
	}
	close(p[0]);
	CHECK_EQ(ok, 1);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
	CHECK(x->vmc && ovmc_vmc_partition_registered(x->vmc));

	child_reap(c);
	for (t0 = now_ns(); ovmc_xproc_server_clients(x->srv) && elapsed_ms(t0) < WAIT_MS;)
		serve_once(x, 10);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 0);
	CHECK_EQ(x->destroyed, 1);
	for (unsigned i = 0; i < x->n_drained && i < 64; i++)
		failed_seen |= x->drained[i][0] == OVMC_CRQ_TRANSPORT &&
			       x->drained[i][1] == OVMC_EVENT_PARTNER_FAILED;
	CHECK(failed_seen);
}

TEST(client_sees_server_death_and_reconnects)
{
	struct tmp *t = tmp_new();
	struct child *srv = spawn_server(t->sock, CHILD_ECHO_CRQ);
	struct fx *x = fx_new(NULL, false); /* holds the platform for cleanup */
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd, nd2;
	struct pollfd pfd = {.events = POLLIN};
	uint8_t *mem, e[OVMC_CRQ_ENTRY_SIZE];
	size_t size;

	CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &x->plat[0]), 0);
	p = x->plat[0];
	mem = ovmc_platform_memory(p, &size);
	CHECK_EQ(size, MEM_SIZE);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_vio_signal(p, nd.unit_address, OVMC_VIO_IRQ_ENABLE), OVMC_H_SUCCESS);
	make_entry(e, OVMC_CRQ_CMD, 0x60);
	CHECK_EQ(ovmc_hcall(p, OVMC_H_SEND_CRQ, (const uint64_t[]){nd.unit_address, 0, 0}, 1, NULL),
		 OVMC_H_PARAMETER); /* hi = 0: header not valid */
	{
		uint64_t hi, lo;

		ovmc_entry_to_words(e, &hi, &lo);
		CHECK_EQ(ovmc_h_send_crq(p, nd.unit_address, hi, lo), OVMC_H_SUCCESS);
	}
	CHECK_MEM(mem + CRQ_IOBA, e, sizeof(e)); /* echoed by the server */
	CHECK(irq_readable(p));
	ovmc_platform_irq_ack(p);
	pfd.fd = ovmc_xproc_fd(p);
	CHECK_EQ(poll(&pfd, 1, 0), 0);
	CHECK_EQ(ovmc_xproc_check(p), 1);

	child_reap(srv);
	CHECK_EQ(poll(&pfd, 1, WAIT_MS), 1);
	CHECK_EQ(ovmc_xproc_check(p), 0);
	CHECK_EQ(ovmc_platform_alive(p), 0);
	CHECK_EQ(ovmc_h_send_crq(p, nd.unit_address, 0, 0), OVMC_H_HARDWARE);
	CHECK_EQ(ovmc_h_free_crq(p, nd.unit_address), OVMC_H_HARDWARE);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd2), -ENOTCONN);
	/* No server yet: the reconnect fails and may be retried. */
	CHECK_EQ(ovmc_xproc_reconnect(p), -ECONNREFUSED);
	CHECK_EQ(ovmc_platform_alive(p), 0);

	/* A new hypervisor over the stale socket file; same memory, new partition. */
	srv = spawn_server(t->sock, CHILD_ECHO_CRQ);
	CHECK_EQ(ovmc_xproc_reconnect(p), 0);
	CHECK(ovmc_platform_alive(p));
	CHECK(ovmc_xproc_fd(p) >= 0);
	CHECK(ovmc_platform_memory(p, NULL) == mem);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd2), 0);
	memset(mem + CRQ_IOBA, 0, OVMC_PAGE_SIZE);
	CHECK_EQ(ovmc_h_reg_crq(p, nd2.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_vio_signal(p, nd2.unit_address, OVMC_VIO_IRQ_ENABLE), OVMC_H_SUCCESS);
	make_entry(e, OVMC_CRQ_CMD, 0x70);
	{
		uint64_t hi, lo;

		ovmc_entry_to_words(e, &hi, &lo);
		CHECK_EQ(ovmc_h_send_crq(p, nd2.unit_address, hi, lo), OVMC_H_SUCCESS);
	}
	CHECK_MEM(mem + CRQ_IOBA, e, sizeof(e));
	CHECK(irq_readable(p));
	/* RDMA round trip through the new server's mappings. */
	fill(mem + SRC_IOBA, 128, 0x21);
	memset(mem + DST_IOBA, 0, 128);
	CHECK_EQ(ovmc_h_copy_rdma(p, 128, nd2.liobn_local, SRC_IOBA, nd2.liobn_remote, 0),
		 OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_copy_rdma(p, 128, nd2.liobn_remote, 0, nd2.liobn_local, DST_IOBA),
		 OVMC_H_SUCCESS);
	CHECK_MEM(mem + DST_IOBA, mem + SRC_IOBA, 128);
}

TEST(detached_platform_attaches_when_the_server_comes)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(NULL, false); /* holds the platform for cleanup */
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd;
	size_t size;

	CHECK_EQ(ovmc_xproc_new(t->sock, 0, &x->plat[0]), -EINVAL);
	CHECK_EQ(ovmc_xproc_new(t->sock, MEM_SIZE - 1, &x->plat[0]), 0);
	p = x->plat[0];
	/* Memory and interrupt exist before any hypervisor does. */
	CHECK(ovmc_platform_memory(p, &size) != NULL);
	CHECK_EQ(size, MEM_SIZE);
	CHECK(ovmc_platform_irq_fd(p) >= 0);
	CHECK_EQ(ovmc_platform_alive(p), 0);
	CHECK_EQ(ovmc_xproc_fd(p), -1);
	CHECK_EQ(ovmc_xproc_check(p), 0);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), -ENOTCONN);
	CHECK_EQ(ovmc_h_vio_signal(p, 0, OVMC_VIO_IRQ_ENABLE), OVMC_H_HARDWARE);
	CHECK_EQ(ovmc_xproc_reconnect(p), -ENOENT);

	spawn_server(t->sock, CHILD_ECHO_CRQ);
	CHECK_EQ(ovmc_xproc_reconnect(p), 0);
	CHECK(ovmc_platform_alive(p));
	CHECK(ovmc_xproc_fd(p) >= 0);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
}

/* ---- hostile peers against a server in this process ---- */

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

	if (fd < 0)
		FAIL("socket: %s", strerror(errno));
	strcpy(sa.sun_path, path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		FAIL("connect: %s", strerror(errno));
	}
	return fd;
}

static void raw_send(int fd, const void *msg, size_t len, const int *fds, unsigned nfds)
{
	char ctl[CMSG_SPACE(sizeof(int) * 32)] __attribute__((aligned(8)));
	struct iovec iov = {.iov_base = (void *)msg, .iov_len = len};
	struct msghdr mh = {.msg_iov = &iov, .msg_iovlen = 1};

	if (nfds > 32)
		FAIL("raw_send: too many fds");
	if (nfds) {
		struct cmsghdr *c;

		memset(ctl, 0, sizeof(ctl));
		mh.msg_control = ctl;
		mh.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&mh);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	if (sendmsg(fd, &mh, MSG_NOSIGNAL) != (ssize_t)len)
		FAIL("sendmsg: %s", strerror(errno));
}

static int new_memfd(size_t size, unsigned seals)
{
	int fd = memfd_create("hostile", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    (seals && fcntl(fd, F_ADD_SEALS, seals) < 0))
		FAIL("memfd: %s", strerror(errno));
	return fd;
}

static void hdr(struct xproc_hdr *h, uint16_t type, uint32_t seq)
{
	memset(h, 0, sizeof(*h));
	h->magic = XPROC_MAGIC;
	h->version = XPROC_VERSION;
	h->type = type;
	h->seq = seq;
}

/* ATTACH from a raw socket with the given descriptors. */
static void raw_attach(int fd, uint64_t mem_size, const int *fds, unsigned nfds)
{
	struct xproc_attach a;

	memset(&a, 0, sizeof(a));
	hdr(&a.h, XPROC_ATTACH, 1);
	a.mem_size = mem_size;
	raw_send(fd, &a, sizeof(a), fds, nfds);
}

/*
 * Serve until the raw peer gets an answer or the end of the connection.
 * Returns the answer's length (copied to *m), 0 at the end, -1 if neither
 * came.
 */
static ssize_t raw_wait(struct fx *f, int fd, union xproc_msg *m)
{
	for (uint64_t t0 = now_ns(); elapsed_ms(t0) < 2000;) {
		ssize_t n;

		serve_once(f, 5);
		n = recv(fd, m, sizeof(*m), MSG_DONTWAIT);
		if (n >= 0)
			return n;
		if (errno == ECONNRESET || errno == EPIPE)
			return 0;
	}
	return -1;
}

/* The server answered ATTACH with `status` (if not 0) and then hung up. */
static void expect_dropped(struct fx *f, int fd, int status)
{
	union xproc_msg m;
	ssize_t n = raw_wait(f, fd, &m);

	if (status) {
		CHECK_EQ(n, sizeof(struct xproc_attach_reply));
		CHECK_EQ(m.h.type, XPROC_ATTACH_REPLY);
		CHECK_EQ(m.attach_reply.status, status);
		n = raw_wait(f, fd, &m);
	}
	CHECK_EQ(n, 0);
	close(fd);
}

/* A well-behaved raw client; returns its socket. */
static int attach_ok(struct fx *f, const char *path)
{
	int fd = raw_connect(path);
	int fds[2] = {new_memfd(MEM_SIZE, F_SEAL_SHRINK), eventfd(0, EFD_CLOEXEC)};
	union xproc_msg m;

	raw_attach(fd, MEM_SIZE, fds, 2);
	close(fds[0]);
	close(fds[1]);
	CHECK_EQ(raw_wait(f, fd, &m), sizeof(struct xproc_attach_reply));
	CHECK_EQ(m.attach_reply.status, 0);
	return fd;
}

static void close_fd(void *arg)
{
	int *fd = arg;

	if (*fd >= 0)
		close(*fd);
	*fd = -1;
}

/* The good client still gets answers. */
static void expect_served(struct fx *f, int fd)
{
	struct xproc_hdr q;
	union xproc_msg m;

	hdr(&q, XPROC_NODE, 99);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	CHECK_EQ(raw_wait(f, fd, &m), sizeof(struct xproc_node_reply));
	CHECK_EQ(m.h.type, XPROC_NODE_REPLY);
	CHECK_EQ(m.h.seq, 99);
	CHECK_EQ(m.node_reply.status, 0);
}

TEST(hostile_memory_is_refused)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	static int good = -1;
	int fd, fds[2], pipefd[2];

	good = attach_ok(x, t->sock);
	ovmc_test_defer(close_fd, &good);

	/* Not sealed against shrinking: a truncate would SIGBUS the server. */
	fd = raw_connect(t->sock);
	fds[0] = new_memfd(MEM_SIZE, F_SEAL_GROW);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	raw_attach(fd, MEM_SIZE, fds, 2);
	expect_dropped(x, fd, -EPERM);
	close(fds[0]);

	/* Smaller than claimed. */
	fd = raw_connect(t->sock);
	fds[0] = new_memfd(OVMC_PAGE_SIZE, F_SEAL_SHRINK);
	raw_attach(fd, 2 * OVMC_PAGE_SIZE, fds, 2);
	expect_dropped(x, fd, -EINVAL);
	close(fds[0]);

	/* Sizes out of range. */
	fds[0] = new_memfd(MEM_SIZE, F_SEAL_SHRINK);
	fd = raw_connect(t->sock);
	raw_attach(fd, 0, fds, 2);
	expect_dropped(x, fd, -EINVAL);
	fd = raw_connect(t->sock);
	raw_attach(fd, OVMC_PAGE_SIZE + 1, fds, 2);
	expect_dropped(x, fd, -EINVAL);
	fd = raw_connect(t->sock);
	raw_attach(fd, (uint64_t)1 << 40, fds, 2);
	expect_dropped(x, fd, -EINVAL);

	/* Not a file, not an eventfd, missing descriptor. */
	CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, (const int[]){pipefd[0], fds[1]}, 2);
	expect_dropped(x, fd, -EINVAL);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, (const int[]){fds[0], pipefd[1]}, 2);
	expect_dropped(x, fd, -EBADF);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, fds, 1);
	expect_dropped(x, fd, -EBADF);
	close(pipefd[0]);
	close(pipefd[1]);
	close(fds[0]);
	close(fds[1]);

	CHECK_EQ(x->created, 1);
	CHECK_EQ(x->destroyed, 0);
	expect_served(x, good);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
}

TEST(malformed_messages_drop_only_their_connection)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	static int good = -1;
	unsigned char raw[300];
	struct xproc_hcall hcall;
	struct xproc_hdr q;
	struct xproc_attach a;
	uint64_t seed = 7;
	int fd, fds[2];

	good = attach_ok(x, t->sock);
	ovmc_test_defer(close_fd, &good);

	/* Garbage. */
	for (unsigned i = 0; i < sizeof(raw); i++)
		raw[i] = (unsigned char)ovmc_test_rand(&seed);
	fd = raw_connect(t->sock);
	raw_send(fd, raw, 13, NULL, 0);
	expect_dropped(x, fd, 0);
	/* Shorter than a header, empty, longer than any message. */
	hdr(&q, XPROC_NODE, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, 8, NULL, 0);
	expect_dropped(x, fd, 0);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, 0, NULL, 0);
	expect_dropped(x, fd, 0);
	memcpy(raw, &q, sizeof(q));
	fd = raw_connect(t->sock);
	raw_send(fd, raw, sizeof(raw), NULL, 0);
	expect_dropped(x, fd, 0);
	/* A known type with the wrong length. */
	memset(raw, 0, sizeof(raw));
	hdr(&a.h, XPROC_ATTACH, 1);
	a.mem_size = MEM_SIZE;
	memcpy(raw, &a, sizeof(a));
	fd = raw_connect(t->sock);
	raw_send(fd, raw, sizeof(a) + 8, NULL, 0);
	expect_dropped(x, fd, 0);
	/* Bad magic, reserved bits, unknown type, a reply type. */
	hdr(&q, XPROC_NODE, 1);
	q.magic ^= 1;
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	hdr(&q, XPROC_NODE, 1);
	q.reserved = 1;
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	hdr(&q, 42, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	hdr(&q, XPROC_ATTACH_REPLY, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	/* Another version: told why, then dropped. */
	a.h.version = XPROC_VERSION + 1;
	fd = raw_connect(t->sock);
	raw_send(fd, &a, sizeof(a), NULL, 0);
	expect_dropped(x, fd, -EPROTO);
	/* Requests before ATTACH. */
	memset(&hcall, 0, sizeof(hcall));
	hdr(&hcall.h, XPROC_HCALL, 1);
	hcall.opcode = OVMC_H_REQUEST_VMC;
	fd = raw_connect(t->sock);
	raw_send(fd, &hcall, sizeof(hcall), NULL, 0);
	expect_dropped(x, fd, 0);
	hdr(&q, XPROC_NODE, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	hdr(&q, XPROC_DETACH, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &q, sizeof(q), NULL, 0);
	expect_dropped(x, fd, 0);
	CHECK_EQ(x->created, 1);

	/* After ATTACH: a second ATTACH, too many hcall arguments. */
	fd = attach_ok(x, t->sock);
	CHECK_EQ(x->created, 2);
	fds[0] = new_memfd(MEM_SIZE, F_SEAL_SHRINK);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	raw_attach(fd, MEM_SIZE, fds, 2);
	expect_dropped(x, fd, 0);
	CHECK_EQ(x->destroyed, 1);
	fd = attach_ok(x, t->sock);
	hcall.nargs = XPROC_MAX_ARGS + 1;
	raw_send(fd, &hcall, sizeof(hcall), NULL, 0);
	expect_dropped(x, fd, 0);
	CHECK_EQ(x->destroyed, 2);
	close(fds[0]);
	close(fds[1]);

	CHECK(x->warnings >= 14);
	expect_served(x, good);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
}

static int count_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	int n = 0;

	if (!d)
		FAIL("opendir /proc/self/fd: %s", strerror(errno));
	while ((de = readdir(d)))
		n += de->d_name[0] != '.';
	closedir(d);
	return n;
}

/* Reports of copies the client cannot have made drop its connection. */
TEST(impossible_rdma_reports_drop_only_their_connection)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, true);
	struct ovmc_machine_stats ms;
	struct ovmc_vmc_node n, gn;
	struct {
		struct xproc_hdr h;
		struct xproc_reports r;
	} q;
	static int good = -1;
	const struct {
		const char *what;
		uint32_t count;
		size_t len; /* 0: as count says */
		struct xproc_rdma_report k;
	} bad[] = {
		{"none", 0, sizeof(q.h) + 8, {0}},
		{"beyond a batch", XPROC_MAX_REPORTS + 1, sizeof(q.h) + 8, {0}},
		{"shorter than count says", 2, sizeof(q.h) + XPROC_REPORTS_LEN(1), {0}},
		{"into the window", 1, 0, {OVMC_H_SUCCESS, {64, 0, 0, 1, 0}}},
		{"outside the window", 1, 0, {OVMC_H_SUCCESS, {64, 1, HV_WINDOW - 32, 0, 0}}},
		{"longer than RDMA allows", 1, 0, {OVMC_H_SUCCESS, {OVMC_MAX_RDMA_LEN + 1, 1, 0, 0, 0}}},
		{"an rc no check gives", 1, 0, {OVMC_H_BUSY, {64, 1, 0, 0, 0}}},
	};
	union xproc_msg m;
	int fd;

	good = attach_ok(x, t->sock);
	ovmc_test_defer(close_fd, &good);
	CHECK(x->vmc);
	CHECK_EQ(ovmc_part_vmc_node(ovmc_vmc_part(x->vmc), &gn), 0);
	for (unsigned i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct xproc_rdma_report k = bad[i].k;

		fd = attach_ok(x, t->sock);
		CHECK(x->vmc);
		CHECK_EQ(ovmc_part_vmc_node(ovmc_vmc_part(x->vmc), &n), 0);

		/* LIOBNs 0 and 1 stand for the partition's and the window's. */
		k.args[1] = k.args[1] ? n.liobn_remote : n.liobn_local;
		k.args[3] = k.args[3] ? n.liobn_remote : n.liobn_local;
		memset(&q, 0, sizeof(q));
		hdr(&q.h, XPROC_RDMA, 2);
		q.r.count = bad[i].count;
		q.r.r[0] = k;
		raw_send(fd, &q, bad[i].len ? bad[i].len : sizeof(q.h) + XPROC_REPORTS_LEN(1), NULL,
			 0);
		expect_dropped(x, fd, 0);
	}
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 0);
	/* A possible one, after a NODE (its trailer): counted, answered. */
	{
		struct {
			struct xproc_hdr h;
			struct xproc_reports r;
		} nq;

		memset(&nq, 0, sizeof(nq));
		hdr(&nq.h, XPROC_NODE, 3);
		nq.r.count = 1;
		nq.r.r[0] = (struct xproc_rdma_report){
			OVMC_H_SUCCESS, {64, gn.liobn_remote, 0, gn.liobn_local, 0}};
		raw_send(good, &nq, sizeof(nq.h) + XPROC_REPORTS_LEN(1), NULL, 0);
		CHECK_EQ(raw_wait(x, good, &m), sizeof(struct xproc_node_reply));
		CHECK_EQ(m.node_reply.status, 0);
	}
	ovmc_machine_stats(x->m, &ms);
	CHECK_EQ(ms.rdma_ops, 1);
	/* ATTACH takes no trailer. */
	fd = raw_connect(t->sock);
	{
		unsigned char raw[sizeof(struct xproc_attach) + XPROC_REPORTS_LEN(1)] = {0};
		struct xproc_attach a;

		memset(&a, 0, sizeof(a));
		hdr(&a.h, XPROC_ATTACH, 1);
		a.mem_size = MEM_SIZE;
		memcpy(raw, &a, sizeof(a));
		raw[sizeof(a)] = 1;
		raw_send(fd, raw, sizeof(raw), NULL, 0);
	}
	expect_dropped(x, fd, 0);
}

TEST(stray_descriptors_are_closed)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	int before = count_fds(), fd, good, many[20], pipefd[2];
	struct xproc_hdr q;
	struct xproc_hcall hcall;
	unsigned char junk[24] = {1, 2, 3};

	good = attach_ok(x, t->sock);
	CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	for (unsigned i = 0; i < 20; i++)
		many[i] = pipefd[i % 2];

	/* ATTACH with four descriptors of which two are no mailbox, with
	 * three, with twenty (more than the server takes in one message),
	 * with one. */
	many[0] = new_memfd(MEM_SIZE, F_SEAL_SHRINK);
	many[1] = eventfd(0, EFD_CLOEXEC);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, (const int[]){many[0], many[1], pipefd[0], pipefd[1]}, 4);
	expect_dropped(x, fd, -EINVAL);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, (const int[]){many[0], many[1], pipefd[0]}, 3);
	expect_dropped(x, fd, -EBADF);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, many, 20);
	expect_dropped(x, fd, 0);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, many, 1);
	expect_dropped(x, fd, -EBADF);
	/* Descriptors on messages that carry none. */
	fd = attach_ok(x, t->sock);
	hdr(&q, XPROC_NODE, 2);
	raw_send(fd, &q, sizeof(q), many, 2);
	expect_dropped(x, fd, 0);
	fd = raw_connect(t->sock);
	raw_send(fd, junk, sizeof(junk), many, 3);
	expect_dropped(x, fd, 0);
	memset(&hcall, 0, sizeof(hcall));
	hdr(&hcall.h, XPROC_HCALL, 1);
	fd = raw_connect(t->sock);
	raw_send(fd, &hcall, sizeof(hcall), many, 1);
	expect_dropped(x, fd, 0);
	fd = raw_connect(t->sock);
	raw_send(fd, junk, 0, many, 2);
	expect_dropped(x, fd, 0);

	expect_served(x, good);
	close(many[0]);
	close(many[1]);
	close(pipefd[0]);
	close(pipefd[1]);
	close(good);
	for (uint64_t t0 = now_ns(); ovmc_xproc_server_clients(x->srv) && elapsed_ms(t0) < WAIT_MS;)
		serve_once(x, 10);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 0);
	CHECK_EQ(count_fds(), before);
}

/* A raw client with a mailbox: its socket; the mailbox mapped in *mb. */
static int attach_mb(struct fx *f, const char *path, struct xproc_mailbox **mb, int *bell)
{
	int fd = raw_connect(path);
	int fds[4] = {new_memfd(MEM_SIZE, F_SEAL_SHRINK), eventfd(0, EFD_CLOEXEC),
		      new_memfd(XPROC_MB_SIZE, F_SEAL_SHRINK | F_SEAL_GROW),
		      eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)};
	union xproc_msg m;

	*mb = mmap(NULL, XPROC_MB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
	if (*mb == MAP_FAILED)
		FAIL("mmap: %s", strerror(errno));
	*bell = fds[3];
	raw_attach(fd, MEM_SIZE, fds, 4);
	close(fds[0]);
	close(fds[1]);
	close(fds[2]);
	CHECK_EQ(raw_wait(f, fd, &m), sizeof(struct xproc_attach_reply));
	CHECK_EQ(m.attach_reply.status, 0);
	return fd;
}

/* Serve until the mailbox holds the answer to `seq`: its length, or -1. */
static ssize_t mb_answer_wait(struct fx *f, struct xproc_mailbox *mb, uint32_t seq,
			      union xproc_msg *m)
{
	for (uint64_t t0 = now_ns(); elapsed_ms(t0) < 2000;) {
		ssize_t n;

		serve_once(f, 5);
		n = ovmc_xp_mb_wait(mb, seq, 0, m);
		if (n >= 0)
			return n;
	}
	return -1;
}

static void unknown_hcall(struct xproc_hcall *q, uint32_t seq)
{
	memset(q, 0, sizeof(*q));
	hdr(&q->h, XPROC_HCALL, seq);
	q->opcode = 0xf000;
}

TEST(hostile_mailboxes_drop_only_their_connection)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	static int good = -1;
	struct xproc_mailbox *mb;
	struct xproc_hcall q;
	struct xproc_hdr node;
	union xproc_msg m;
	uint64_t big = 0xfffffffffffffffeull;
	int fd, bell, fds[4], pipefd[2];
	char c;

	good = attach_ok(x, t->sock);
	ovmc_test_defer(close_fd, &good);

	/* The mailbox must be a sealed file of a page, the doorbell an eventfd. */
	CHECK_EQ(pipe2(pipefd, O_CLOEXEC), 0);
	fds[0] = new_memfd(MEM_SIZE, F_SEAL_SHRINK);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	fds[2] = new_memfd(XPROC_MB_SIZE, F_SEAL_GROW);
	fds[3] = eventfd(0, EFD_CLOEXEC);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, fds, 4);
	expect_dropped(x, fd, -EPERM);
	close(fds[2]);
	fds[2] = new_memfd(XPROC_MB_SIZE / 2, F_SEAL_SHRINK);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, fds, 4);
	expect_dropped(x, fd, -EINVAL);
	close(fds[2]);
	fds[2] = new_memfd(XPROC_MB_SIZE, F_SEAL_SHRINK);
	fd = raw_connect(t->sock);
	raw_attach(fd, MEM_SIZE, (const int[]){fds[0], fds[1], fds[2], pipefd[1]}, 4);
	expect_dropped(x, fd, -EBADF);
	for (unsigned i = 0; i < 4; i++)
		close(fds[i]);
	close(pipefd[0]);
	close(pipefd[1]);

	/* A well-formed hcall is answered in the mailbox, not on the socket. */
	fd = attach_mb(x, t->sock, &mb, &bell);
	unknown_hcall(&q, 7);
	CHECK_EQ(ovmc_xp_mb_post(mb, bell, &q, sizeof(q), 7, false), 0);
	CHECK_EQ(mb_answer_wait(x, mb, 7, &m), sizeof(struct xproc_hcall_reply));
	CHECK_EQ(m.h.type, XPROC_HCALL_REPLY);
	CHECK_EQ(m.h.seq, 7);
	CHECK_EQ(m.hcall_reply.rc, OVMC_H_FUNCTION);
	CHECK_EQ(recv(fd, &c, 1, MSG_DONTWAIT), -1);
	CHECK_EQ(errno, EAGAIN);
	/* The doorbell rung for nothing, saturated, made blocking: nothing
	 * happens, and the server never waits on it. */
	for (int i = 0; i < 3; i++)
		CHECK_EQ(write(bell, &(uint64_t){1}, 8), 8);
	CHECK_EQ(write(bell, &big, 8) < 0 && errno == EAGAIN, true);
	CHECK_EQ(fcntl(bell, F_SETFL, 0), 0);
	for (int i = 0; i < 10; i++)
		serve_once(x, 1);
	expect_served(x, fd);
	/* Reports on the socket ahead of a request: read first. */
	hdr(&node, XPROC_RDMA, 8);
	raw_send(fd, &node, sizeof(node), NULL, 0); /* no reports: wrong length */
	unknown_hcall(&q, 9);
	mb->after_socket = 1;
	memcpy(mb->req, &q, sizeof(q));
	mb->req_len = sizeof(q);
	__atomic_store_n(&mb->req_seq, 9u, __ATOMIC_RELEASE);
	serve_once(x, 100);
	expect_dropped(x, fd, 0);
	CHECK_EQ(mb->rep_seq, 7u); /* the request was not executed */
	munmap(mb, XPROC_MB_SIZE);
	close(bell);

	/* A request too long, one whose header has another sequence number,
	 * one that does not belong there, a malformed one, and a second
	 * request on the socket while one waits in the mailbox. */
	for (int k = 0; k < 5; k++) {
		fd = attach_mb(x, t->sock, &mb, &bell);
		unknown_hcall(&q, 3);
		if (k == 2)
			hdr(&q.h, XPROC_NODE, 3);
		if (k == 3)
			q.nargs = XPROC_MAX_ARGS + 1;
		if (k == 4) {
			hdr(&node, XPROC_NODE, 2);
			raw_send(fd, &node, sizeof(node), NULL, 0);
		}
		memcpy(mb->req, &q, k == 2 ? sizeof(q.h) : sizeof(q));
		mb->req_len = k == 0 ? XPROC_MB_SIZE : k == 2 ? sizeof(q.h) : sizeof(q);
		mb->after_socket = k == 4;
		__atomic_store_n(&mb->req_seq, k == 1 ? 4u : 3u, __ATOMIC_RELEASE);
		CHECK_EQ(write(bell, &(uint64_t){1}, 8), 8);
		expect_dropped(x, fd, 0);
		CHECK_EQ(mb->rep_seq, 0u);
		munmap(mb, XPROC_MB_SIZE);
		close(bell);
	}

	CHECK_EQ(x->created, 1 + 1 + 5);
	expect_served(x, good);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
}

/* Reports sent alone ahead of a mailbox request: all applied first, however many. */
TEST(reports_ahead_of_a_mailbox_request_are_applied_first_however_many)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	const unsigned counts[] = {1, 31, 32, 33, 70};

	for (unsigned k = 0; k < sizeof(counts) / sizeof(counts[0]); k++) {
		struct xproc_mailbox *mb;
		struct ovmc_machine_stats before, after;
		struct xproc_hdr q;
		struct xproc_hcall h;
		union xproc_msg m;
		struct {
			struct xproc_hdr h;
			uint32_t count, reserved;
			struct xproc_rdma_report r;
		} rdma;
		int bell, fd = attach_mb(x, t->sock, &mb, &bell);
		uint32_t seq = 2;

		hdr(&q, XPROC_NODE, seq++);
		raw_send(fd, &q, sizeof(q), NULL, 0);
		CHECK_EQ(raw_wait(x, fd, &m), sizeof(struct xproc_node_reply));
		CHECK_EQ(m.node_reply.status, 0);
		memset(&rdma, 0, sizeof(rdma));
		rdma.count = 1;
		rdma.r.rc = OVMC_H_SOURCE_PARM;
		rdma.r.args[0] = 64;
		rdma.r.args[1] = m.node_reply.liobn_remote;
		rdma.r.args[3] = m.node_reply.liobn_local;
		ovmc_machine_stats(x->m, &before);
		for (unsigned i = 0; i < counts[k]; i++) {
			hdr(&rdma.h, XPROC_RDMA, seq++);
			raw_send(fd, &rdma, sizeof(rdma), NULL, 0);
		}
		unknown_hcall(&h, seq);
		CHECK_EQ(ovmc_xp_mb_post(mb, bell, &h, sizeof(h), seq, true), 0);
		CHECK_EQ(mb_answer_wait(x, mb, seq, &m), sizeof(struct xproc_hcall_reply));
		CHECK_EQ(m.hcall_reply.rc, OVMC_H_FUNCTION);
		ovmc_machine_stats(x->m, &after);
		CHECK_EQ(after.rdma_rejected - before.rdma_rejected, counts[k]);
		close(fd);
		munmap(mb, XPROC_MB_SIZE);
		close(bell);
	}
	CHECK_EQ(x->warnings, 0);
}

static void kick_main(void *arg)
{
	CHECK_EQ(ovmc_xproc_kick(arg), 1);
}

/* The pair that sends entry `e` after copying 64 bytes: called here, unserved. */
static void send_pair(struct ovmc_platform *p, const struct ovmc_vmc_node *n, uint64_t src,
		      uint64_t dst, const uint8_t e[OVMC_CRQ_ENTRY_SIZE], long rcs[2])
{
	struct ovmc_hcall_req req[2] = {
		{.opcode = OVMC_H_COPY_RDMA,
		 .args = {64, n->liobn_local, src, n->liobn_remote, dst},
		 .nargs = 5},
		{.opcode = OVMC_H_SEND_CRQ, .args = {n->unit_address}, .nargs = 3},
	};

	ovmc_entry_to_words(e, &req[1].args[1], &req[1].args[2]);
	ovmc_hcall_pair(p, req, rcs);
}

static void send_pair_main(void *arg)
{
	struct pair_job *j = arg;

	ovmc_hcall_pair(j->p, j->req, j->rcs);
}

/*
 * Posted pairs: answered at once, run at the next kick or request, never
 * beyond the room the server granted (past it the pair goes as before and
 * gets the machine's own answer), and dropped if the hypervisor end closed
 * in between.
 */
TEST(posted_pairs_run_at_the_kick_within_their_grant_or_die_with_the_partner)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new_full(t->sock, true, true, true);
	struct ovmc_machine_stats ms;
	struct ovmc_vmc_node n;
	struct ovmc_platform *p;
	uint8_t *mem, *hvmem, e[OVMC_CRQ_ENTRY_SIZE], zero[64] = {0};
	struct pair_job j;
	unsigned drained;
	long rcs[2];

	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_set_posting(p, true), 0);
	CHECK_EQ(ovmc_xproc_set_timeout(p, 300), 0);
	CHECK_EQ(xnode(x, p, &n), 0);
	CHECK_EQ(HC(x, p, OVMC_H_REG_CRQ, n.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE),
		 OVMC_H_SUCCESS);
	mem = ovmc_platform_memory(p, NULL);
	hvmem = ovmc_vmc_hv_memory(x->vmc, NULL);
	fill(mem + SRC_IOBA, 64, 0x21);
	drained = x->n_drained;

	/* Nobody serves: only a post can have answered. */
	make_entry(e, OVMC_CRQ_CMD, 0x70);
	send_pair(p, &n, SRC_IOBA, 0x300, e, rcs);
	CHECK_EQ(rcs[0], OVMC_H_SUCCESS);
	CHECK_EQ(rcs[1], OVMC_H_SUCCESS);
	CHECK_MEM(hvmem + 0x300, zero, 64);
	CHECK_EQ(x->n_drained, drained);
	serve_while(x, kick_main, p);
	CHECK_MEM(hvmem + 0x300, mem + SRC_IOBA, 64);
	CHECK_EQ(x->n_drained, drained + 1);
	CHECK_MEM(x->drained[drained], e, sizeof(e));
	CHECK_EQ(ovmc_xproc_kick(p), 0); /* nothing posted since */

	/* The hypervisor end keeps what it gets: 16 entries of room, posted
	 * 8 at a time (the slots), then the machine's own H_DROPPED. */
	x->hold = true;
	for (int round = 0; round < 2; round++) {
		for (int i = 0; i < (int)XPROC_POST_SLOTS; i++) {
			send_pair(p, &n, SRC_IOBA, 0x400, e, rcs);
			CHECK_EQ(rcs[1], OVMC_H_SUCCESS);
		}
		serve_while(x, kick_main, p);
	}
	CHECK_EQ(ovmc_vmc_hv_room(x->vmc), 0);
	memset(&j, 0, sizeof(j));
	j.p = p;
	j.req[0] = (struct ovmc_hcall_req){
		.opcode = OVMC_H_COPY_RDMA,
		.args = {64, n.liobn_local, SRC_IOBA, n.liobn_remote, 0x400},
		.nargs = 5};
	j.req[1] = (struct ovmc_hcall_req){
		.opcode = OVMC_H_SEND_CRQ, .args = {n.unit_address}, .nargs = 3};
	ovmc_entry_to_words(e, &j.req[1].args[1], &j.req[1].args[2]);
	serve_while(x, send_pair_main, &j);
	CHECK_EQ(j.rcs[0], OVMC_H_SUCCESS);
	CHECK_EQ(j.rcs[1], OVMC_H_DROPPED);

	/* Room again; a pair posted, then the hypervisor end closes and opens
	 * before it runs: it died with that partner. */
	x->hold = false;
	hook_pending(x, x->vmc);
	serve_once(x, 0);
	drained = x->n_drained;
	ovmc_machine_stats(x->m, &ms);
	send_pair(p, &n, SRC_IOBA, 0x600, e, rcs);
	CHECK_EQ(rcs[1], OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_free(x->vmc, OVMC_EVENT_PARTNER_DEREGISTERED), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_vmc_hv_register(x->vmc), OVMC_H_SUCCESS);
	serve_while(x, kick_main, p);
	CHECK_MEM(hvmem + 0x600, zero, 64);
	CHECK_EQ(x->n_drained, drained);
	{
		struct ovmc_machine_stats now;

		ovmc_machine_stats(x->m, &now);
		CHECK_EQ(now.rdma_ops, ms.rdma_ops);
	}
	/* The new epoch's grant came with that answer: posting goes on. */
	send_pair(p, &n, SRC_IOBA, 0x700, e, rcs);
	CHECK_EQ(rcs[1], OVMC_H_SUCCESS);
	serve_while(x, kick_main, p);
	CHECK_MEM(hvmem + 0x700, mem + SRC_IOBA, 64);
	CHECK_EQ(x->n_drained, drained + 1);

	/* What the machine would refuse is never posted: it gets its answer. */
	j.req[0].args[0] = OVMC_MAX_RDMA_LEN + 1;
	serve_while(x, send_pair_main, &j);
	CHECK_EQ(j.rcs[0], OVMC_H_PARAMETER);
	j.req[0].args[0] = 64;
	j.req[0].args[4] = HV_WINDOW - 32;
	serve_while(x, send_pair_main, &j);
	CHECK_EQ(j.rcs[0], OVMC_H_DEST_PARM);
	j.req[0].args[4] = 0x400;
	j.req[1].args[1] = 0;
	serve_while(x, send_pair_main, &j);
	CHECK_EQ(j.rcs[1], OVMC_H_PARAMETER);
	CHECK_EQ(x->warnings, 0);
}

/* A raw partition that posts what it may not: only its connection goes. */
TEST(hostile_posted_pairs_drop_only_their_connection)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new_full(t->sock, true, false, true);
	static int good = -1;

	good = attach_ok(x, t->sock);
	ovmc_test_defer(close_fd, &good);
	for (int k = 0; k < 4; k++) {
		struct xproc_mailbox *mb;
		struct xproc_hdr q;
		struct xproc_hcall h;
		union xproc_msg m, r;
		struct xproc_posted *e;
		int bell, fd = attach_mb(x, t->sock, &mb, &bell);
		uint64_t one = 1;

		hdr(&q, XPROC_NODE, 2);
		raw_send(fd, &q, sizeof(q), NULL, 0);
		CHECK_EQ(raw_wait(x, fd, &m), sizeof(struct xproc_node_reply));
		memset(&h, 0, sizeof(h));
		hdr(&h.h, XPROC_HCALL, 3);
		h.opcode = OVMC_H_REG_CRQ;
		h.nargs = 3;
		h.args[0] = m.node_reply.unit_address;
		h.args[1] = CRQ_IOBA;
		h.args[2] = OVMC_PAGE_SIZE;
		CHECK_EQ(ovmc_xp_mb_post(mb, bell, &h, sizeof(h), 3, false), 0);
		CHECK_EQ(mb_answer_wait(x, mb, 3, &r), sizeof(struct xproc_hcall_reply));
		CHECK_EQ(r.hcall_reply.rc, OVMC_H_SUCCESS);
		e = &mb->post[0];
		memset(e, 0, sizeof(*e));
		e->epoch = (uint32_t)(mb->grant >> 32);
		e->call[0].opcode = OVMC_H_COPY_RDMA;
		e->call[0].nargs = 5;
		e->call[0].args[0] = 64;
		e->call[0].args[1] = m.node_reply.liobn_local;
		e->call[0].args[2] = SRC_IOBA;
		e->call[0].args[3] = m.node_reply.liobn_remote;
		e->call[1].opcode = OVMC_H_SEND_CRQ;
		e->call[1].nargs = 3;
		e->call[1].args[0] = m.node_reply.unit_address;
		e->call[1].args[1] = 0x8001000000000000ull;
		if (k == 0) /* more than the slots */
			mb->post_prod = mb->post_cons + XPROC_POST_SLOTS + 1;
		else {
			if (k == 1) /* not the pair that sends */
				e->call[1].opcode = OVMC_H_VIO_SIGNAL;
			if (k == 2) /* one the machine refuses: another unit */
				e->call[1].args[0]++;
			if (k == 3) /* and SYNC is for the mailbox only */
				e->call[1].args[0] = m.node_reply.unit_address;
			mb->post_prod = mb->post_cons + (k == 3 ? 0 : 1);
		}
		if (k == 3) {
			hdr(&q, XPROC_SYNC, 4);
			raw_send(fd, &q, sizeof(q), NULL, 0);
		} else {
			CHECK_EQ(write(bell, &one, sizeof(one)), (ssize_t)sizeof(one));
		}
		expect_dropped(x, fd, 0);
		munmap(mb, XPROC_MB_SIZE);
		close(bell);
	}
	expect_served(x, good);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
}

struct kill_job {
	struct child *srv;
	int ms;
	uint64_t kill_ns;
};

static void *kill_later(void *arg)
{
	struct kill_job *k = arg;

	usleep((useconds_t)k->ms * 1000u);
	/* Before the kill: the hcall can only return after it. */
	k->kill_ns = now_ns();
	kill(k->srv->pid, SIGKILL);
	return NULL;
}

/* No futex wakes a client whose server died: it sees the socket close. */
TEST(client_waiting_in_the_mailbox_sees_its_server_die)
{
	struct tmp *t = tmp_new();
	struct child *srv = spawn_server(t->sock, CHILD_ECHO_CRQ);
	struct fx *x = fx_new(NULL, false);
	struct kill_job k = {.srv = srv, .ms = 100};
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd;
	pthread_t th;
	uint64_t t0, t1;

	CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &x->plat[0]), 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_has_mailbox(p), 1);
	CHECK_EQ(ovmc_xproc_set_timeout(p, 5000), 0);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
	child_signal(srv, SIGSTOP);
	CHECK_EQ(pthread_create(&th, NULL, kill_later, &k), 0);
	t0 = now_ns();
	CHECK_EQ(ovmc_h_vio_signal(p, nd.unit_address, OVMC_VIO_IRQ_ENABLE), OVMC_H_HARDWARE);
	t1 = now_ns();
	pthread_join(th, NULL);
	/* It waited for the death (a stopped server cannot answer), and saw it
	 * long before its deadline. */
	CHECK(t1 >= k.kill_ns);
	CHECK(elapsed_ms(t0) < 2000);
	CHECK_EQ(ovmc_xproc_dead_reason(p), -ECONNRESET);
	CHECK_EQ(ovmc_xproc_has_mailbox(p), 0);
	waitpid(srv->pid, NULL, 0);
	srv->pid = 0;
}

/* Runs as euid 65534 with root's file access, so only the peer
 * credentials can stop it. Exit 0: refused as expected. */
static _Noreturn void foreign_child(const char *path, pid_t parent)
{
	struct ovmc_platform *p;
	union xproc_msg m;
	int fds[2], fd, rc;
	ssize_t n;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};

	if (seteuid(65534) < 0)
		_exit(2);
	setfsuid(0);
	/* Only now: changing credentials clears the parent-death signal. */
	ovmc_test_die_with_parent(parent);
	if (geteuid() != 65534)
		_exit(3);
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		_exit(4); /* the socket itself out of reach: the test proves nothing */
	fds[0] = memfd_create("foreign", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	if (fds[0] < 0 || fds[1] < 0 || ftruncate(fds[0], MEM_SIZE) < 0 ||
	    fcntl(fds[0], F_ADD_SEALS, F_SEAL_SHRINK) < 0)
		_exit(5);
	{
		struct xproc_attach a;
		char ctl[CMSG_SPACE(sizeof(fds))] __attribute__((aligned(8)));
		struct iovec iov = {.iov_base = &a, .iov_len = sizeof(a)};
		struct msghdr mh = {.msg_iov = &iov,
				    .msg_iovlen = 1,
				    .msg_control = ctl,
				    .msg_controllen = sizeof(ctl)};
		struct cmsghdr *c = CMSG_FIRSTHDR(&mh);

		memset(&a, 0, sizeof(a));
		hdr(&a.h, XPROC_ATTACH, 1);
		a.mem_size = MEM_SIZE;
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(fds));
		memcpy(CMSG_DATA(c), fds, sizeof(fds));
		sendmsg(fd, &mh, MSG_NOSIGNAL); /* may fail: the server hung up */
	}
	/* Only the refusal may come, unasked (sequence 0), never an answer. */
	n = recv(fd, &m, sizeof(m), 0);
	if (n < 0 && errno == ECONNRESET)
		n = recv(fd, &m, sizeof(m), MSG_DONTWAIT);
	if (n > 0 && (n != (ssize_t)sizeof(m.attach_reply) || m.h.type != XPROC_ATTACH_REPLY ||
		      m.h.seq != 0 || m.attach_reply.status != -EACCES))
		_exit(6); /* answered: attached */
	close(fd);
	rc = ovmc_xproc_connect(path, MEM_SIZE, &p);
	_exit(rc == -EACCES ? 0 : 7);
}

TEST(client_of_other_uid_is_refused)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(t->sock, false);
	struct child *c = calloc(1, sizeof(*c));
	int status = -1;
	uint64_t t0;
	pid_t parent = getpid();

	if (!c)
		FAIL("out of memory");
	ovmc_test_defer(child_kill, c);
	/* A peer of another uid needs CAP_SETUID; a user namespace would not
	 * change the uid the server sees. The project's CI runs as root. */
	if (geteuid() != 0)
		ovmc_test_skip("needs root to connect as another uid");
	c->pid = fork();
	if (c->pid < 0)
		FAIL("fork: %s", strerror(errno));
	if (c->pid == 0)
		foreign_child(t->sock, parent);
	for (t0 = now_ns(); elapsed_ms(t0) < WAIT_MS;) {
		serve_once(x, 5);
		if (waitpid(c->pid, &status, WNOHANG) == c->pid) {
			c->pid = 0;
			break;
		}
	}
	CHECK(c->pid == 0);
	CHECK(WIFEXITED(status));
	CHECK_EQ(WEXITSTATUS(status), 0);
	serve_once(x, 0);
	CHECK_EQ(x->created, 0);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 0);
	CHECK(x->warnings >= 2);
}

/* ---- both cores, each in its own process ---- */

struct e2e {
	struct ovmc_platform *p;
	struct ovmc_drv *d;
	struct ovmc_drv_file *f;
};

static void e2e_free(void *arg)
{
	struct e2e *e = arg;

	if (e->f)
		ovmc_drv_close(e->d, e->f, now_ns());
	if (e->d)
		ovmc_drv_free(e->d);
	ovmc_platform_destroy(e->p);
	free(e);
}

/* What the owner's loop does: wait for the interrupt or the next timer. */
static void drv_pump(struct e2e *e, int max_ms)
{
	struct pollfd pfd = {.fd = ovmc_platform_irq_fd(e->p), .events = POLLIN};
	uint64_t t = now_ns(), d = ovmc_drv_next_deadline(e->d);
	int timeout = max_ms;

	if (d <= t)
		timeout = 0;
	else if (d != OVMC_TIME_NEVER && (d - t) / 1000000u < (uint64_t)max_ms)
		timeout = (int)((d - t) / 1000000u) + 1;
	if (poll(&pfd, 1, timeout) == 1 && (pfd.revents & POLLIN))
		ovmc_drv_handle_interrupt(e->d, now_ns());
	if (ovmc_drv_next_deadline(e->d) <= now_ns())
		ovmc_drv_handle_timer(e->d, now_ns());
}

TEST(driver_and_hv_cores_echo_across_processes)
{
	struct tmp *t = tmp_new();
	struct e2e *e = calloc(1, sizeof(*e));
	struct ovmc_drv_config dc;
	struct ovmc_drv_callbacks cbs = {0};
	uint8_t id[OVMC_HMC_ID_LEN] = "xproc-e2e";
	static const char msg[] = "hello across processes";
	char buf[128];
	ssize_t n = -EAGAIN;
	uint64_t t0;

	spawn_server(t->sock, CHILD_HV);
	if (!e)
		FAIL("out of memory");
	ovmc_test_defer(e2e_free, e);
	ovmc_drv_config_default(&dc);
	CHECK_EQ(ovmc_xproc_connect(t->sock, ovmc_drv_memory_required(&dc) + 65536, &e->p), 0);
	CHECK_EQ(ovmc_drv_new(&dc, e->p, &cbs, NULL, &e->d), 0);
	CHECK_EQ(ovmc_drv_start(e->d, now_ns()), 0);
	for (t0 = now_ns(); ovmc_drv_state(e->d) != OVMC_DRV_READY && elapsed_ms(t0) < WAIT_MS;)
		drv_pump(e, 50);
	CHECK_EQ(ovmc_drv_state(e->d), OVMC_DRV_READY);

	CHECK_EQ(ovmc_drv_open(e->d, &e->f), 0);
	CHECK_EQ(ovmc_drv_sethmcid(e->d, e->f, id, now_ns()), 0);
	for (t0 = now_ns(); !(ovmc_drv_poll(e->d, e->f) & POLLOUT) && elapsed_ms(t0) < WAIT_MS;)
		drv_pump(e, 50);
	CHECK(ovmc_drv_poll(e->d, e->f) & POLLOUT);
	CHECK_EQ(ovmc_drv_write(e->d, e->f, msg, sizeof(msg), now_ns()), sizeof(msg));
	for (t0 = now_ns(); n == -EAGAIN && elapsed_ms(t0) < WAIT_MS;) {
		drv_pump(e, 50);
		n = ovmc_drv_read(e->d, e->f, buf, sizeof(buf), now_ns());
	}
	CHECK_EQ(n, sizeof(msg));
	CHECK_MEM(buf, msg, sizeof(msg));
}

/* ---- a hostile hypervisor ---- */

/* Accept one client, attach it, answer one request as told, then wait. */
static _Noreturn void fake_server(int lfd, int how)
{
	union xproc_msg m;
	struct xproc_attach_reply ar;
	struct xproc_hcall_reply hr;
	int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	int fds[4];
	char ctl[CMSG_SPACE(sizeof(fds))] __attribute__((aligned(8)));
	struct iovec iov = {.iov_base = &m, .iov_len = sizeof(m)};
	struct msghdr mh = {.msg_iov = &iov,
			    .msg_iovlen = 1,
			    .msg_control = ctl,
			    .msg_controllen = sizeof(ctl)};

	if (fd < 0 || recvmsg(fd, &mh, 0) != (ssize_t)sizeof(struct xproc_attach))
		_exit(1);
	memset(&ar, 0, sizeof(ar));
	hdr(&ar.h, XPROC_ATTACH_REPLY, m.h.seq);
	if (send(fd, &ar, sizeof(ar), MSG_NOSIGNAL) != (ssize_t)sizeof(ar))
		_exit(1);
	if (how == 0) {
		/* Speak out of turn. */
		hdr(&ar.h, XPROC_ATTACH_REPLY, 77);
		send(fd, &ar, sizeof(ar), MSG_NOSIGNAL);
	} else if (recv(fd, &m, sizeof(m), 0) == (ssize_t)sizeof(struct xproc_hcall)) {
		/* Answer with the wrong sequence number. */
		memset(&hr, 0, sizeof(hr));
		hdr(&hr.h, XPROC_HCALL_REPLY, m.h.seq + 1);
		send(fd, &hr, sizeof(hr), MSG_NOSIGNAL);
	}
	for (;;)
		pause();
}

TEST(client_treats_protocol_errors_as_server_death)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(NULL, false);
	pid_t parent = getpid();

	for (int how = 0; how < 2; how++) {
		struct sockaddr_un sa = {.sun_family = AF_UNIX};
		struct child *c = calloc(1, sizeof(*c));
		struct ovmc_platform *p;
		struct pollfd pfd = {.events = POLLIN};
		int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);

		if (!c || lfd < 0)
			FAIL("set-up: %s", strerror(errno));
		ovmc_test_defer(child_kill, c);
		unlink(t->sock);
		strcpy(sa.sun_path, t->sock);
		if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 || listen(lfd, 1) < 0) {
			close(lfd);
			FAIL("listen: %s", strerror(errno));
		}
		c->pid = fork();
		if (c->pid == 0) {
			ovmc_test_die_with_parent(parent);
			fake_server(lfd, how);
		}
		close(lfd);
		CHECK(c->pid > 0);
		CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &x->plat[how]), 0);
		p = x->plat[how];
		if (how == 0) {
			pfd.fd = ovmc_xproc_fd(p);
			CHECK_EQ(poll(&pfd, 1, WAIT_MS), 1);
			CHECK_EQ(ovmc_xproc_check(p), 0);
		} else {
			CHECK_EQ(ovmc_h_enable_crq(p, 1), OVMC_H_HARDWARE);
		}
		CHECK_EQ(ovmc_platform_alive(p), 0);
		CHECK_EQ(ovmc_h_vio_signal(p, 1, 1), OVMC_H_HARDWARE);
	}
}

/* ---- deadlines and bounds ---- */

/* A stopped hypervisor costs one timeout, once: then the platform is dead. */
TEST(hcall_to_a_stopped_server_times_out_and_the_platform_dies)
{
	struct tmp *t = tmp_new();
	struct child *srv = spawn_server(t->sock, CHILD_ECHO_CRQ);
	struct fx *x = fx_new(NULL, false);
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd;
	struct pollfd pfd = {.events = POLLIN};
	uint64_t t0;

	CHECK_EQ(ovmc_xproc_connect(t->sock, MEM_SIZE, &x->plat[0]), 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_set_timeout(p, 0), -EINVAL);
	CHECK_EQ(ovmc_xproc_set_timeout(p, OVMC_XPROC_MAX_TIMEOUT_MS + 1), -EINVAL);
	CHECK_EQ(ovmc_xproc_set_timeout(p, 200), 0);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_xproc_dead_reason(p), 0);
	child_signal(srv, SIGSTOP);
	t0 = now_ns();
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_HARDWARE);
	CHECK(elapsed_ms(t0) >= 190);
	CHECK(elapsed_ms(t0) < 5000);
	CHECK_EQ(ovmc_platform_alive(p), 0);
	CHECK_EQ(ovmc_xproc_dead_reason(p), -ETIMEDOUT);
	/* Dead now: the next calls answer at once, and the loop hears it. */
	t0 = now_ns();
	CHECK_EQ(ovmc_h_vio_signal(p, nd.unit_address, OVMC_VIO_IRQ_ENABLE), OVMC_H_HARDWARE);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), -ENOTCONN);
	CHECK(elapsed_ms(t0) < 100);
	pfd.fd = ovmc_xproc_fd(p);
	CHECK_EQ(poll(&pfd, 1, 0), 1);
	CHECK_EQ(ovmc_xproc_check(p), 0);
	child_signal(srv, SIGCONT);
	/* The old connection is shut: no late answer, a new partition. */
	CHECK_EQ(ovmc_xproc_reconnect(p), 0);
	CHECK_EQ(ovmc_xproc_dead_reason(p), 0);
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
	CHECK_EQ(ovmc_h_vio_signal(p, nd.unit_address, OVMC_VIO_IRQ_ENABLE), OVMC_H_SUCCESS);
}

TEST(reconnect_start_to_a_stopped_server_returns_at_once_and_attaches_when_it_runs)
{
	struct tmp *t = tmp_new();
	struct child *srv = spawn_server(t->sock, CHILD_ECHO_CRQ);
	struct fx *x = fx_new(NULL, false);
	struct ovmc_platform *p;
	struct ovmc_vmc_node nd;
	struct pollfd pfd = {.events = POLLIN};
	uint64_t t0;

	CHECK_EQ(ovmc_xproc_new(t->sock, MEM_SIZE, &x->plat[0]), 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_reconnect_finish(p), -ENOTCONN);
	child_signal(srv, SIGSTOP);
	t0 = now_ns();
	CHECK_EQ(ovmc_xproc_reconnect_start(p), -EINPROGRESS);
	CHECK_EQ(ovmc_xproc_reconnect_finish(p), -EINPROGRESS);
	CHECK(elapsed_ms(t0) < 100);
	CHECK_EQ(ovmc_platform_alive(p), 0);
	CHECK_EQ(ovmc_h_enable_crq(p, 1), OVMC_H_HARDWARE);
	pfd.fd = ovmc_xproc_fd(p);
	CHECK(pfd.fd >= 0);
	CHECK_EQ(poll(&pfd, 1, 100), 0);
	/* A blocking reconnect would wait its timeout, then give up. */
	CHECK_EQ(ovmc_xproc_set_timeout(p, 100), 0);
	t0 = now_ns();
	CHECK_EQ(ovmc_xproc_reconnect(p), -ETIMEDOUT);
	CHECK(elapsed_ms(t0) >= 90);
	CHECK_EQ(ovmc_xproc_set_timeout(p, WAIT_MS), 0);
	CHECK_EQ(ovmc_xproc_reconnect_start(p), -EINPROGRESS);
	pfd.fd = ovmc_xproc_fd(p);
	child_signal(srv, SIGCONT);
	CHECK_EQ(poll(&pfd, 1, WAIT_MS), 1);
	CHECK_EQ(ovmc_xproc_reconnect_finish(p), 0);
	CHECK(ovmc_platform_alive(p));
	CHECK_EQ(ovmc_platform_vmc_node(p, &nd), 0);
	CHECK_EQ(ovmc_h_reg_crq(p, nd.unit_address, CRQ_IOBA, OVMC_PAGE_SIZE), OVMC_H_SUCCESS);
}

/* A server going down resets the connections in its backlog: not a refusal. */
TEST(server_closing_an_unanswered_attach_is_econnreset_not_eacces)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_new(NULL, false);
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	struct ovmc_platform *p;
	struct pollfd pfd = {.events = POLLIN};

	CHECK(lfd >= 0);
	strcpy(sa.sun_path, t->sock);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(listen(lfd, 4), 0);
	CHECK_EQ(ovmc_xproc_new(t->sock, MEM_SIZE, &x->plat[0]), 0);
	p = x->plat[0];
	CHECK_EQ(ovmc_xproc_reconnect_start(p), -EINPROGRESS);
	close(lfd);
	pfd.fd = ovmc_xproc_fd(p);
	CHECK_EQ(poll(&pfd, 1, WAIT_MS), 1);
	CHECK_EQ(ovmc_xproc_reconnect_finish(p), -ECONNRESET);
	CHECK_EQ(ovmc_xproc_fd(p), -1);
	/* Accepted, then closed unread and unanswered: the same. */
	lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	CHECK(lfd >= 0);
	unlink(t->sock);
	CHECK_EQ(bind(lfd, (struct sockaddr *)&sa, sizeof(sa)), 0);
	CHECK_EQ(listen(lfd, 4), 0);
	CHECK_EQ(ovmc_xproc_reconnect_start(p), -EINPROGRESS);
	close(accept(lfd, NULL, NULL));
	close(lfd);
	pfd.fd = ovmc_xproc_fd(p);
	CHECK_EQ(poll(&pfd, 1, WAIT_MS), 1);
	CHECK_EQ(ovmc_xproc_reconnect_finish(p), -ECONNRESET);
}

static int open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	int n = 0;

	if (!d)
		FAIL("opendir: %s", strerror(errno));
	while (readdir(d))
		n++;
	closedir(d);
	return n;
}

static struct fx *fx_bounded(const char *path, unsigned max_clients, unsigned max_pending,
			     unsigned attach_ms)
{
	struct fx *f = fx_new(NULL, false);
	struct ovmc_xproc_server_config c;
	int rc;

	server_config(&c, path, f->m);
	c.log = fx_log;
	c.log_user = f;
	c.max_clients = max_clients;
	c.max_pending = max_pending;
	c.attach_timeout_ms = attach_ms;
	rc = ovmc_xproc_server_new(&c, &f->srv);
	if (rc)
		FAIL("ovmc_xproc_server_new: %s", ovmc_strerror(rc));
	return f;
}

TEST(silent_connections_are_closed_at_the_attach_deadline)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_bounded(t->sock, 0, 0, 150);
	int fds0 = open_fds(), silent[8];
	uint64_t t0;

	for (int i = 0; i < 8; i++)
		silent[i] = raw_connect(t->sock);
	serve_once(x, 0);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 8);
	/* The server's own timer wakes its fd at the deadline. */
	for (t0 = now_ns(); ovmc_xproc_server_clients(x->srv) && elapsed_ms(t0) < WAIT_MS;)
		serve_once(x, 1000);
	CHECK(elapsed_ms(t0) >= 100);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 0);
	for (int i = 0; i < 8; i++) {
		char c;

		CHECK_EQ(recv(silent[i], &c, 1, 0), 0);
		close(silent[i]);
	}
	CHECK_EQ(open_fds(), fds0);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(x->created, 1);
}

TEST(silent_connections_beyond_the_bound_make_room_for_one_that_attaches)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_bounded(t->sock, 0, 4, 60000);
	int silent[40];

	for (int i = 0; i < 40; i++) {
		silent[i] = raw_connect(t->sock);
		serve_once(x, 0);
		CHECK(ovmc_xproc_server_clients(x->srv) <= 4);
	}
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 4);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(x->created, 1);
	CHECK(ovmc_xproc_server_clients(x->srv) <= 5);
	for (int i = 0; i < 40; i++)
		close(silent[i]);
	serve_once(x, 0);
	CHECK_EQ(ovmc_xproc_server_clients(x->srv), 1);
}

TEST(partitions_beyond_max_clients_are_refused_ebusy)
{
	struct tmp *t = tmp_new();
	struct fx *x = fx_bounded(t->sock, 2, 0, 0);

	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 0), 0);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 1), 0);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 2), -EBUSY);
	CHECK_EQ(x->created, 2);
	ovmc_platform_destroy(x->plat[1]);
	x->plat[1] = NULL;
	serve_once(x, 0);
	CHECK_EQ(xconnect(x, t->sock, MEM_SIZE, 1), 0);
}
