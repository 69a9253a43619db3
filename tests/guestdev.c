// SPDX-License-Identifier: GPL-2.0-or-later
/* The fake spapr-vmc device of the guest link tests (guestdev.h). */
#include "guestdev.h"

#include "harness.h"
#include "platform/platform_impl.h"
#include "platform/xproc_proto.h"

#include <openvmc/wire.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

struct gplat {
	struct ovmc_platform base;
	struct gdev *g;
};

static struct gdev *dev_of(struct ovmc_platform *p)
{
	return ((struct gplat *)p)->g;
}

static void link_down(struct gdev *g);

static void send_msg(struct gdev *g, enum gl_type type, uint32_t seq, const void *body)
{
	unsigned char buf[GL_MAX_MSG];
	size_t len = gl_encode(buf, type, seq, body);

	gdev_raw(g, buf, len);
}

void gdev_raw(struct gdev *g, const void *buf, size_t len)
{
	if (g->fd < 0)
		return;
	/* Blocking: the daemon reads its socket promptly or the test is wrong. */
	if (send(g->fd, buf, len, MSG_NOSIGNAL) == (ssize_t)len)
		return;
	if (errno == EPIPE || errno == ECONNRESET)
		link_down(g);
	else
		ovmc_test_fail_later(__FILE__, __LINE__, "device: send: %s", strerror(errno));
}

/* ---- the guest's CRQ ---- */

static uint8_t *slot(struct gdev *g, uint32_t i)
{
	return (uint8_t *)g->plat->mem + g->crq_ioba + (uint64_t)i * OVMC_CRQ_ENTRY_SIZE;
}

static void raise_irq(struct gdev *g)
{
	uint64_t one = 1;

	if (g->irq_on && write(g->plat->irq_fd, &one, sizeof(one)) < 0)
		ovmc_test_fail_later(__FILE__, __LINE__, "device: irq: %s", strerror(errno));
}

/* PAPR order, as the machine does it: second half, barrier, header last. */
static long crq_write(struct gdev *g, const uint8_t e[16])
{
	uint8_t *s;

	if (!g->crq)
		return OVMC_H_CLOSED;
	s = slot(g, g->crq_next);
	if (__atomic_load_n(s, __ATOMIC_ACQUIRE) != OVMC_CRQ_FREE)
		return OVMC_H_DROPPED;
	memcpy(s + 8, e + 8, 8);
	__atomic_thread_fence(__ATOMIC_RELEASE);
	memcpy(s + 1, e + 1, 7);
	__atomic_store_n(s, e[0], __ATOMIC_RELEASE);
	g->crq_next = (g->crq_next + 1) % g->crq_entries;
	raise_irq(g);
	return OVMC_H_SUCCESS;
}

static void link_down(struct gdev *g)
{
	uint8_t e[16] = {OVMC_CRQ_TRANSPORT, OVMC_EVENT_PARTNER_FAILED};

	if (g->fd >= 0)
		close(g->fd);
	g->fd = -1;
	g->hv_open = false;
	g->credit = 0;
	g->link_drops++;
	if (g->hv)
		munmap(g->hv, g->hv_size);
	g->hv = NULL;
	crq_write(g, e);
}

/* ---- messages from the daemon ---- */

static void handle(struct gdev *g, const struct gl_msg *m)
{
	struct gl_deliver_rc rc = {0};

	switch (m->h.type) {
	case GL_HV_STATE:
		g->hv_states++;
		g->hv_open = m->b.hv_state.hv_open != 0;
		g->epoch = m->b.hv_state.epoch;
		g->credit = m->b.hv_state.credit;
		break;
	case GL_CREDIT:
		if (m->b.credit.epoch == g->epoch) {
			g->credit += m->b.credit.n;
			g->credits += m->b.credit.n;
		}
		break;
	case GL_DELIVER:
		g->delivers++;
		if (m->b.deliver.entry[0] == OVMC_CRQ_INIT && m->b.deliver.entry[1] == 0x01)
			g->inits++;
		if (g->answer == GDEV_SILENT)
			break;
		if (g->drop_next) {
			g->drop_next--;
			g->dropped++;
			rc.rc = OVMC_H_DROPPED;
		} else {
			rc.rc = crq_write(g, m->b.deliver.entry);
		}
		send_msg(g, GL_DELIVER_RC, m->h.seq, &rc);
		break;
	default:
		ovmc_test_fail_later(__FILE__, __LINE__, "device: unexpected %s",
				     gl_type_name(m->h.type));
		break;
	}
}

int gdev_pump(struct gdev *g, int ms)
{
	struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
	size_t off = 0, used;
	struct gl_msg m;
	ssize_t n;

	if (g->fd < 0)
		return -ECONNRESET;
	if (poll(&pfd, 1, ms) <= 0)
		return 0;
	n = recv(g->fd, g->in + g->in_len, sizeof(g->in) - g->in_len, MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EINTR))
		return 0;
	if (n <= 0) {
		link_down(g);
		return -ECONNRESET;
	}
	g->in_len += (size_t)n;
	for (;;) {
		enum gl_error e = gl_decode(g->in + off, g->in_len - off, GL_AT_DEVICE, GL_ATTACHED,
					    &m, &used);

		if (e != GL_OK) {
			ovmc_test_fail_later(__FILE__, __LINE__, "device: daemon sent garbage: %s",
					     gl_error_name(e));
			link_down(g);
			return -ECONNRESET;
		}
		if (!used)
			break;
		off += used;
		handle(g, &m);
	}
	memmove(g->in, g->in + off, g->in_len - off);
	g->in_len -= off;
	return 0;
}

bool gdev_wait_closed(struct gdev *g, int ms)
{
	struct timespec t0, t;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	for (;;) {
		long el;

		if (g->fd < 0)
			return true;
		/* Whatever it still sends is read and dropped. */
		g->in_len = 0;
		if (gdev_pump(g, 50) == -ECONNRESET)
			return true;
		clock_gettime(CLOCK_MONOTONIC, &t);
		el = (t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
		if (el > ms)
			return false;
	}
}

int gdev_connect(struct gdev *g)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	unsigned char buf[GL_MAX_MSG];
	struct gl_msg m;
	size_t got = 0, used = 0;
	int fd = -1;

	if (g->fd >= 0)
		link_down(g);
	g->in_len = 0;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", g->path);
	g->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (g->fd < 0)
		return -errno;
	if (connect(g->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int rc = -errno;

		close(g->fd);
		g->fd = -1;
		return rc;
	}
	send_msg(g, GL_HELLO, 0, &g->hello);
	while (!used) {
		struct pollfd pfd = {.fd = g->fd, .events = POLLIN};
		int fds[2];
		unsigned nfds;
		bool trunc;
		ssize_t n;

		if (poll(&pfd, 1, 5000) <= 0)
			FAIL("device: no WELCOME within 5 s");
		n = ovmc_xp_recv(g->fd, buf + got, sizeof(struct gl_hdr) + sizeof(struct gl_welcome) - got,
				 0, fds, 2, &nfds, &trunc);
		if (n <= 0) {
			close(g->fd);
			g->fd = -1;
			return -ECONNRESET;
		}
		if (nfds) {
			CHECK_EQ(nfds, 1);
			CHECK_EQ(fd, -1);
			fd = fds[0];
		}
		got += (size_t)n;
		CHECK_EQ(gl_decode(buf, got, GL_AT_DEVICE, GL_AWAIT_HELLO, &m, &used), GL_OK);
	}
	CHECK_EQ(m.h.type, GL_WELCOME);
	g->welcome_status = m.b.welcome.status;
	if (m.b.welcome.status) {
		CHECK_EQ(fd, -1);
		/* The daemon closes after a refusal. */
		CHECK(gdev_wait_closed(g, 2000));
		return m.b.welcome.status;
	}
	CHECK(fd >= 0);
	{
		struct stat st;
		int seals = fcntl(fd, F_GET_SEALS);

		CHECK(fstat(fd, &st) == 0);
		CHECK((uint64_t)st.st_size >= g->hello.hv_window_size);
		CHECK(seals >= 0 && (seals & F_SEAL_SHRINK));
		g->hv_size = (size_t)st.st_size;
	}
	g->hv = mmap(NULL, g->hv_size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	close(fd);
	CHECK(g->hv != MAP_FAILED);
	g->partition = m.b.welcome.partition_id;
	g->queue_entries = m.b.welcome.hv_queue_entries;
	g->hv_open = m.b.welcome.hv_open != 0;
	g->epoch = m.b.welcome.epoch;
	g->credit = g->hv_open ? g->queue_entries : 0;
	if (g->crq) {
		struct gl_crq_reg r = {.queue_entries = g->crq_entries};

		send_msg(g, GL_CRQ_REG, 0, &r);
	}
	return 0;
}

/* ---- the platform the driver core runs on ---- */

static void *window(struct gdev *g, uint64_t liobn, uint64_t ioba, uint64_t len)
{
	uint8_t *base;
	uint64_t size;

	if (liobn == g->hello.liobn_local) {
		base = g->plat->mem;
		size = g->plat->mem_size;
	} else if (liobn == g->hello.hv_liobn && g->hv && g->hv_open && g->crq) {
		base = g->hv;
		size = g->hv_size;
	} else {
		return NULL;
	}
	if (ioba > size || len > size - ioba)
		return NULL;
	return base + ioba;
}

static long copy_rdma(struct gdev *g, const uint64_t *a)
{
	struct gl_rdma r = {.len = a[0], .src_liobn = a[1], .src_ioba = a[2],
			    .dst_liobn = a[3], .dst_ioba = a[4]};
	void *src, *dst;

	if (a[0] > OVMC_MAX_RDMA_LEN)
		r.rc = OVMC_H_PARAMETER;
	else if (g->fd < 0)
		r.rc = OVMC_H_CLOSED;
	else if (!(src = window(g, a[1], a[2], a[0])))
		r.rc = OVMC_H_SOURCE_PARM;
	else if (!(dst = window(g, a[3], a[4], a[0])) || (a[1] == a[3]))
		r.rc = OVMC_H_DEST_PARM;
	else
		memmove(dst, src, a[0]);
	if (g->fd >= 0)
		send_msg(g, GL_RDMA, 0, &r);
	return (long)r.rc;
}

static long send_crq(struct gdev *g, const uint64_t *a)
{
	struct gl_send s = {0};

	ovmc_entry_from_words(a[1], a[2], s.entry);
	if (!(s.entry[0] & 0x80) || s.entry[0] == OVMC_CRQ_TRANSPORT)
		return OVMC_H_PARAMETER;
	if (g->fd < 0 || !g->crq || !g->hv_open)
		return OVMC_H_CLOSED;
	if (!g->credit)
		return OVMC_H_DROPPED;
	g->credit--;
	s.epoch = g->epoch;
	send_msg(g, GL_SEND, 0, &s);
	return OVMC_H_SUCCESS;
}

static long hcall(struct ovmc_platform *p, unsigned long op, const uint64_t *args, unsigned n,
		  uint64_t *rets)
{
	struct gdev *g = dev_of(p);
	uint64_t a[5] = {0};

	memcpy(a, args, (n < 5 ? n : 5) * sizeof(uint64_t));
	if (op != OVMC_H_COPY_RDMA && a[0] != g->hello.unit_address)
		return OVMC_H_PARAMETER;
	switch (op) {
	case OVMC_H_REG_CRQ:
		if (a[1] % OVMC_PAGE_SIZE || !a[2] || a[2] % OVMC_PAGE_SIZE ||
		    a[1] + a[2] > p->mem_size)
			return OVMC_H_PARAMETER;
		if (g->crq)
			return OVMC_H_RESOURCE;
		g->crq = true;
		g->irq_on = false;
		g->crq_ioba = a[1];
		g->crq_entries = (uint32_t)(a[2] / OVMC_CRQ_ENTRY_SIZE);
		g->crq_next = 0;
		memset(slot(g, 0), 0, a[2]);
		if (g->fd >= 0) {
			struct gl_crq_reg r = {.queue_entries = g->crq_entries};

			send_msg(g, GL_CRQ_REG, 0, &r);
		}
		return g->fd >= 0 && g->hv_open ? OVMC_H_SUCCESS : OVMC_H_CLOSED;
	case OVMC_H_FREE_CRQ:
		if (g->crq && g->fd >= 0)
			send_msg(g, GL_CRQ_FREE, 0, NULL);
		g->crq = false;
		return OVMC_H_SUCCESS;
	case OVMC_H_VIO_SIGNAL:
		g->irq_on = a[1] == OVMC_VIO_IRQ_ENABLE;
		if (g->irq_on && g->crq)
			raise_irq(g);
		return OVMC_H_SUCCESS;
	case OVMC_H_ENABLE_CRQ:
		return OVMC_H_SUCCESS;
	case OVMC_H_SEND_CRQ:
		return send_crq(g, a);
	case OVMC_H_COPY_RDMA:
		return copy_rdma(g, a);
	case OVMC_H_REQUEST_VMC:
		if (rets)
			rets[0] = g->hello.drc_index;
		return OVMC_H_SUCCESS;
	default:
		return OVMC_H_FUNCTION;
	}
}

static int vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	struct gdev *g = dev_of(p);

	*out = (struct ovmc_vmc_node){
		.unit_address = g->hello.unit_address,
		.drc_index = g->hello.drc_index,
		.liobn_local = g->hello.liobn_local,
		.window_local = g->hello.local_window_size,
		.liobn_remote = g->hello.hv_liobn,
		.window_remote = g->hello.hv_window_size,
	};
	return 0;
}

/* The guest's device never goes away; the link behind it may. */
static void destroy(struct ovmc_platform *p)
{
	(void)p;
}

static const struct ovmc_platform_ops ops = {
	.hcall = hcall,
	.vmc_node = vmc_node,
	.destroy = destroy,
};

struct gdev *gdev_new(const char *path, size_t mem_size)
{
	struct gdev *g = calloc(1, sizeof(*g));
	struct gplat *gp = calloc(1, sizeof(*gp));

	if (!g || !gp)
		FAIL("out of memory");
	gp->g = g;
	gp->base.ops = &ops;
	gp->base.mem_size = mem_size;
	gp->base.mem = mmap(NULL, mem_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS,
			    -1, 0);
	gp->base.irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (gp->base.mem == MAP_FAILED || gp->base.irq_fd < 0)
		FAIL("device memory: %s", strerror(errno));
	g->plat = &gp->base;
	g->path = path;
	g->fd = -1;
	g->hello = (struct gl_hello){
		.unit_address = 0x30000002,
		.liobn_local = 0x80000002,
		.drc_index = 0x40000002,
		.hv_liobn = 0x81000002,
		.local_window_size = mem_size,
		.hv_window_size = 16u << 20,
	};
	return g;
}

void gdev_free(struct gdev *g)
{
	if (!g)
		return;
	if (g->fd >= 0)
		close(g->fd);
	if (g->hv)
		munmap(g->hv, g->hv_size);
	munmap(g->plat->mem, g->plat->mem_size);
	close(g->plat->irq_fd);
	free(g->plat);
	free(g);
}
