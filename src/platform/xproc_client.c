// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Cross-process platform, partition side: the partition memory is a sealed
 * memfd and the interrupt an eventfd, both lent to the hypervisor process
 * at ATTACH, with a mailbox (a sealed memfd page) and its doorbell (an
 * eventfd) that carry the hcalls: a request published there and the bell
 * rung, the answer waited for on a futex in the page, which costs less
 * than a message each way on the socket. The socket carries the rest, and
 * says when the server is gone. The copies out of the hypervisor window
 * cost no round trip at all: the server lends that window (read-only
 * here) at NODE, and those copies are made here, checked as the machine
 * checks them, and reported afterwards.
 */
#include "platform_impl.h"
#include "xproc_proto.h"

#include <openvmc/xproc.h>

#include <openvmc/machine.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <sys/stat.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MS_PER_S 1000
#define NS_PER_MS 1000000ll
/* A reply awaited in the mailbox: how often the socket is looked at
 * meanwhile for a server that is gone (no futex wakes us then). */
#define MB_SLICE_MS 20

struct xproc {
	struct ovmc_platform base;
	char *path;
	int sock;   /* -1 while detached or after a failed attachment */
	int mem_fd; /* kept to attach again with the same memory */
	bool dead;
	bool attaching; /* sock carries an ATTACH whose answer is awaited */
	int why_dead;	/* 0, -ETIMEDOUT, -ECONNRESET or -EPROTO */
	unsigned timeout_ms;
	/* The socket blocks in receives for at most this (SO_RCVTIMEO), or 0:
	 * still non-blocking, replies are waited for with poll(). */
	unsigned rcv_timeout_ms;
	uint32_t seq;
	uint32_t attach_seq;
	unsigned partition;
	/* The hypervisor window lent at NODE (NULL: not lent), its link word
	 * (OVMC_VMC_LINKED while a copy may touch it), and the copies made
	 * out of it that the server has not been told about yet. */
	const uint8_t *hv_win;
	size_t hv_win_size;
	size_t hv_map_size;
	const uint32_t *hv_link;
	uint64_t liobn_local, liobn_remote;
	struct xproc_reports reports;
	bool irq_scan; /* ovmc_xproc_set_irq_scan() */
	/* This connection's mailbox and doorbell (NULL, -1: none), and
	 * whether the next attachment offers one (ovmc_xproc_set_mailbox()). */
	struct xproc_mailbox *mb;
	int bell;
	bool no_mailbox;
	bool rdma_on_socket; /* since the last request in the mailbox */
	/* Posted pairs (ovmc_xproc_set_posting()): how many were posted, in
	 * all, and how many H_SEND_CRQ in `post_epoch`. */
	bool posting;
	uint32_t post_prod;
	uint32_t post_epoch, posted_in_epoch;
	uint64_t unit_address;
};

static const struct ovmc_platform_ops xproc_ops;

static struct xproc *to_xproc(struct ovmc_platform *p)
{
	return p && p->ops == &xproc_ops ? (struct xproc *)p : NULL;
}

static int64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * MS_PER_S + ts.tv_nsec / NS_PER_MS;
}

/*
 * Wait until `fd` is readable or `deadline` (mono_ms()) has passed.
 * Returns 1 readable, 0 timed out.
 */
static int wait_readable(int fd, int64_t deadline)
{
	for (;;) {
		struct pollfd pfd = {.fd = fd, .events = POLLIN};
		int64_t left = deadline - mono_ms();
		int rc;

		if (left <= 0)
			return 0;
		rc = poll(&pfd, 1, left > INT32_MAX ? INT32_MAX : (int)left);
		if (rc > 0)
			return 1;
		if (rc < 0 && errno != EINTR)
			return 1; /* let the receive report what is wrong */
	}
}

/*
 * The hypervisor is gone, too slow or broke the protocol. Shutting the
 * socket down makes sure a server that is still there drops our partition
 * (and can never answer late on this connection), while the descriptor
 * stays valid (and readable) for the owner's event loop.
 */
static void mark_dead(struct xproc *x, int why)
{
	if (!x->dead && x->sock >= 0)
		shutdown(x->sock, SHUT_RDWR);
	if (!x->dead)
		x->why_dead = why;
	x->dead = true;
}

/*
 * Wait for replies in the receive itself, bounded by SO_RCVTIMEO: one
 * system call per reply instead of poll() and a receive. Only the replies
 * are received that way; everything else passes MSG_DONTWAIT. False if
 * the socket could not be made so (it then stays non-blocking).
 */
static bool blocking_replies(struct xproc *x)
{
	struct timeval tv = {.tv_sec = x->timeout_ms / MS_PER_S,
			     .tv_usec = (suseconds_t)(x->timeout_ms % MS_PER_S) * 1000};
	int fl;

	if (x->rcv_timeout_ms == x->timeout_ms)
		return true;
	fl = fcntl(x->sock, F_GETFL);
	if (fl < 0 || setsockopt(x->sock, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv)) ||
	    fcntl(x->sock, F_SETFL, fl & ~O_NONBLOCK))
		return false;
	x->rcv_timeout_ms = x->timeout_ms;
	return true;
}

static void unlend_window(struct xproc *x)
{
	if (x->hv_win)
		munmap((void *)x->hv_win, x->hv_map_size);
	x->hv_win = NULL;
	x->hv_link = NULL;
	x->reports.count = 0;
}

/*
 * `req` with the reports not sent yet as its trailer, in `out`: one
 * record, so the server counts those copies before it executes anything
 * the partition did after them, and wakes once. Returns its length.
 */
static size_t with_reports(struct xproc *x, const struct xproc_hdr *req, size_t req_len,
			   union xproc_msg *out)
{
	struct xproc_reports *r = &x->reports;
	size_t rlen = XPROC_REPORTS_LEN(r->count);

	memcpy(out->raw, req, req_len);
	if (!r->count)
		return req_len;
	r->reserved = 0;
	memcpy(out->raw + req_len, r, rlen);
	r->count = 0;
	return req_len + rlen;
}

/* `req` and the reports on the socket. */
static int send_with_reports(struct xproc *x, const struct xproc_hdr *req, size_t req_len)
{
	union xproc_msg out;

	if (!x->reports.count)
		return ovmc_xp_send(x->sock, req, req_len, MSG_DONTWAIT, NULL, 0);
	return ovmc_xp_send(x->sock, out.raw, with_reports(x, req, req_len, &out), MSG_DONTWAIT,
			    NULL, 0);
}

/*
 * The server raised our interrupt while it served the hcall, and left the
 * eventfd alone. An owner that looks at its CRQ after each hcall needs no
 * more; for any other, the eventfd is made readable here.
 */
static void irq_in_reply(struct xproc *x)
{
	uint64_t one = 1;
	ssize_t n;

	if (x->irq_scan)
		return;
	n = write(x->base.irq_fd, &one, sizeof(one));
	(void)n; /* EAGAIN: saturated, readable all the same */
}

/* A send that failed (rc, not 0) kills the platform: true. */
static bool send_failed(struct xproc *x, int rc)
{
	/* A full queue means a server that stopped reading. */
	if (rc)
		mark_dead(x, rc == -EAGAIN ? -ETIMEDOUT : -ECONNRESET);
	return rc != 0;
}

static int check(struct xproc *x);
static void drop_socket(struct xproc *x);

/* Exactly the answer asked for (false: the platform is dead now). */
static bool good_reply(struct xproc *x, const union xproc_msg *reply, size_t n, size_t reply_len,
		       enum xproc_type reply_type, uint32_t seq)
{
	if (n != reply_len || reply->h.magic != XPROC_MAGIC ||
	    reply->h.version != XPROC_VERSION || reply->h.type != reply_type ||
	    reply->h.seq != seq ||
	    (reply->h.reserved & ~(reply_type == XPROC_NODE_REPLY ? 0u : XPROC_REPLY_IRQ))) {
		mark_dead(x, -EPROTO);
		return false;
	}
	if (reply->h.reserved & XPROC_REPLY_IRQ)
		irq_in_reply(x);
	return true;
}

/*
 * transact() through the mailbox: the bell rung, the answer waited for on
 * its futex in slices, looking at the socket in between for a server that
 * is gone, until the deadline.
 */
static int mb_transact(struct xproc *x, struct xproc_hdr *req, size_t req_len,
		       union xproc_msg *reply, size_t reply_len, enum xproc_type reply_type)
{
	int64_t deadline = mono_ms() + x->timeout_ms;
	union xproc_msg out;
	uint32_t seq = req->seq = ++x->seq;
	ssize_t n;

	if (ovmc_xp_mb_post(x->mb, x->bell, &out, with_reports(x, req, req_len, &out), seq,
			    x->rdma_on_socket)) {
		mark_dead(x, -ECONNRESET);
		return -ENOTCONN;
	}
	x->rdma_on_socket = false;
	for (;;) {
		int64_t left = deadline - mono_ms();

		if (left <= 0) {
			mark_dead(x, -ETIMEDOUT);
			return -ENOTCONN;
		}
		n = ovmc_xp_mb_wait(x->mb, seq, left < MB_SLICE_MS ? (int)left : MB_SLICE_MS, reply);
		if (n >= 0)
			break;
		if (n == -EMSGSIZE) {
			mark_dead(x, -EPROTO);
			return -ENOTCONN;
		}
		if (n == -ETIMEDOUT && !check(x))
			return -ENOTCONN;
	}
	return good_reply(x, reply, (size_t)n, reply_len, reply_type, seq) ? 0 : -ENOTCONN;
}

/*
 * One request, one reply of exactly `reply_len` bytes and type
 * `reply_type`, within the deadline. Nothing else may arrive meanwhile:
 * the server answers in order and never speaks first. A reply may carry
 * one descriptor where `fd_out` is given (else -1 is stored there). With
 * a mailbox, HCALL and HCALL_PAIR go there.
 */
static int transact(struct xproc *x, struct xproc_hdr *req, size_t req_len, union xproc_msg *reply,
		    size_t reply_len, enum xproc_type reply_type, int *fd_out)
{
	int64_t deadline;
	int fds[1];
	unsigned nfds = 0;
	bool trunc, blocking;
	ssize_t n;

	if (fd_out)
		*fd_out = -1;
	if (x->dead)
		return -ENOTCONN;
	if (x->mb && !fd_out)
		return mb_transact(x, req, req_len, reply, reply_len, reply_type);
	deadline = mono_ms() + x->timeout_ms;
	blocking = blocking_replies(x);
	req->seq = ++x->seq;
	if (send_failed(x, send_with_reports(x, req, req_len)))
		return -ENOTCONN;
	for (;;) {
		if (!blocking && !wait_readable(x->sock, deadline)) {
			mark_dead(x, -ETIMEDOUT);
			return -ENOTCONN;
		}
		n = ovmc_xp_recv(x->sock, reply, sizeof(*reply), blocking ? 0 : MSG_DONTWAIT, fds, 1,
				 &nfds, &trunc);
		/* A blocking receive gives up after the whole timeout. */
		if (n == -EAGAIN && blocking) {
			mark_dead(x, -ETIMEDOUT);
			return -ENOTCONN;
		}
		/* A signal: the rest of the deadline is waited for with poll(). */
		if (n == -EINTR)
			blocking = false;
		if (n != -EAGAIN && n != -EINTR)
			break;
	}
	if (nfds && (!fd_out || n <= 0 || nfds > 1 || trunc)) {
		ovmc_xp_close_fds(fds, 1);
	} else if (nfds) {
		*fd_out = fds[0];
		nfds = 0;
	}
	if (n <= 0) {
		mark_dead(x, -ECONNRESET);
		return -ENOTCONN;
	}
	if (trunc || nfds || !good_reply(x, reply, (size_t)n, reply_len, reply_type, req->seq)) {
		if (fd_out && *fd_out >= 0)
			close(*fd_out);
		if (fd_out)
			*fd_out = -1;
		mark_dead(x, -EPROTO);
		return -ENOTCONN;
	}
	return 0;
}

/* The reports held, alone: an RDMA message on the socket (no reply). */
static int send_reports(struct xproc *x)
{
	struct xproc_hdr h;

	if (!x->reports.count)
		return 0;
	ovmc_xp_hdr(&h, XPROC_RDMA, ++x->seq);
	x->rdma_on_socket = x->mb != NULL;
	return send_failed(x, send_with_reports(x, &h, sizeof(h))) ? -ENOTCONN : 0;
}

static bool in_window(uint64_t ioba, uint64_t len, uint64_t size)
{
	return ioba <= size && len <= size - ioba;
}

/*
 * H_COPY_RDMA from the hypervisor window into partition memory, with the
 * machine's checks in the machine's order (src/platform/machine.c,
 * h_copy_rdma() and window()), reported to the server later.
 */
static long copy_out(struct xproc *x, const uint64_t a[5])
{
	struct xproc_reports *r = &x->reports;
	uint64_t len = a[0];
	long rc = OVMC_H_SUCCESS;

	if (len > OVMC_MAX_RDMA_LEN)
		rc = OVMC_H_PARAMETER;
	else if (__atomic_load_n(x->hv_link, __ATOMIC_ACQUIRE) != OVMC_VMC_LINKED ||
		 !in_window(a[2], len, x->hv_win_size))
		rc = OVMC_H_SOURCE_PARM;
	else if (!in_window(a[4], len, x->base.mem_size))
		rc = OVMC_H_DEST_PARM;
	else
		memcpy((uint8_t *)x->base.mem + a[4], x->hv_win + a[2], len);
	/* A full batch goes now. */
	if (r->count == XPROC_MAX_REPORTS && send_reports(x))
		return OVMC_H_HARDWARE;
	r->r[r->count].rc = rc;
	memcpy(r->r[r->count].args, a, sizeof(r->r[0].args));
	r->count++;
	return rc;
}

static long xproc_hcall(struct ovmc_platform *p, unsigned long opcode, const uint64_t *args,
			unsigned nargs, uint64_t *rets)
{
	struct xproc *x = (struct xproc *)p;
	struct xproc_hcall req;
	union xproc_msg rep;

	if (rets)
		memset(rets, 0, OVMC_HCALL_RETS * sizeof(*rets));
	/* As in process: arguments beyond R8 are not looked at. */
	if (nargs > XPROC_MAX_ARGS)
		nargs = XPROC_MAX_ARGS;
	if (opcode == OVMC_H_COPY_RDMA && x->hv_win && !x->dead && args &&
	    nargs == XPROC_MAX_ARGS && args[1] == x->liobn_remote && args[3] == x->liobn_local)
		return copy_out(x, args);
	memset(&req, 0, sizeof(req));
	ovmc_xp_hdr(&req.h, XPROC_HCALL, 0);
	req.opcode = opcode;
	req.nargs = args ? nargs : 0;
	if (args && nargs)
		memcpy(req.args, args, nargs * sizeof(*args));
	if (transact(x, &req.h, sizeof(req), &rep, sizeof(rep.hcall_reply), XPROC_HCALL_REPLY,
		     NULL))
		return OVMC_H_HARDWARE;
	if (rets)
		memcpy(rets, rep.hcall_reply.rets, OVMC_HCALL_RETS * sizeof(*rets));
	return (long)rep.hcall_reply.rc;
}

/*
 * Post the pair that sends a message, answered H_SUCCESS at once, if the
 * machine would answer it so (its checks, src/platform/machine.c) and the
 * server's grant has room for its H_SEND_CRQ: true. The server executes
 * it before anything this partition asks next; it may only find the
 * hypervisor end closed meanwhile, and then the entry dies with it.
 */
static bool post_pair(struct xproc *x, const struct ovmc_hcall_req req[2])
{
	const uint64_t *a = req[0].args, *s = req[1].args;
	struct xproc_mailbox *mb = x->mb;
	uint64_t grant;
	uint32_t epoch;
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
	struct xproc_posted *slot;

	if (!x->posting || !mb || !x->hv_win || x->dead || req[0].opcode != OVMC_H_COPY_RDMA ||
	    req[0].nargs != 5 || req[1].opcode != OVMC_H_SEND_CRQ || req[1].nargs != 3 ||
	    a[1] != x->liobn_local || a[3] != x->liobn_remote || a[0] > OVMC_MAX_RDMA_LEN ||
	    !in_window(a[2], a[0], x->base.mem_size) || !in_window(a[4], a[0], x->hv_win_size) ||
	    s[0] != x->unit_address)
		return false;
	ovmc_entry_from_words(s[1], s[2], e);
	if (!(e[0] & 0x80) || e[0] == OVMC_CRQ_TRANSPORT)
		return false;
	if (x->post_prod - __atomic_load_n(&mb->post_cons, __ATOMIC_ACQUIRE) >= XPROC_POST_SLOTS)
		return false;
	/* A grant is only ever given while the link is up. */
	grant = __atomic_load_n(&mb->grant, __ATOMIC_ACQUIRE);
	epoch = (uint32_t)(grant >> 32);
	if (epoch != x->post_epoch) {
		x->post_epoch = epoch;
		x->posted_in_epoch = 0;
	}
	if (x->posted_in_epoch >= (uint32_t)grant)
		return false;
	slot = &mb->post[x->post_prod % XPROC_POST_SLOTS];
	memset(slot, 0, sizeof(*slot));
	slot->epoch = epoch;
	for (int i = 0; i < 2; i++) {
		slot->call[i].opcode = req[i].opcode;
		slot->call[i].nargs = req[i].nargs;
		memcpy(slot->call[i].args, req[i].args, req[i].nargs * sizeof(uint64_t));
	}
	__atomic_store_n(&mb->post_prod, ++x->post_prod, __ATOMIC_RELEASE);
	x->posted_in_epoch++;
	return true;
}

static void xproc_hcall_pair(struct ovmc_platform *p, const struct ovmc_hcall_req req[2],
			     long rcs[2])
{
	struct xproc *x = (struct xproc *)p;
	struct xproc_hcall_pair q;
	union xproc_msg rep;

	if (post_pair(x, req)) {
		rcs[0] = rcs[1] = OVMC_H_SUCCESS;
		return;
	}

	memset(&q, 0, sizeof(q));
	ovmc_xp_hdr(&q.h, XPROC_HCALL_PAIR, 0);
	for (int i = 0; i < 2; i++) {
		unsigned n = req[i].nargs > XPROC_MAX_ARGS ? XPROC_MAX_ARGS : req[i].nargs;

		q.call[i].opcode = req[i].opcode;
		q.call[i].nargs = n;
		memcpy(q.call[i].args, req[i].args, n * sizeof(uint64_t));
	}
	if (transact(x, &q.h, sizeof(q), &rep, sizeof(rep.hcall_pair_reply),
		     XPROC_HCALL_PAIR_REPLY, NULL)) {
		rcs[0] = rcs[1] = OVMC_H_HARDWARE;
		return;
	}
	rcs[0] = (long)rep.hcall_pair_reply.rc[0];
	rcs[1] = (long)rep.hcall_pair_reply.rc[1];
}

/*
 * Map the hypervisor window the server lent with NODE, read-only: a
 * descriptor that is not a sealed file holding the window and its link
 * page is not used (every copy then goes to the server).
 */
static void lend_window(struct xproc *x, int fd, const struct xproc_node_reply *r)
{
	struct stat st;
	size_t size = (size_t)r->window_remote;
	int seals = fcntl(fd, F_GET_SEALS);
	void *m;

	unlend_window(x);
	if (r->window_remote > SIZE_MAX - OVMC_PAGE_SIZE || size % OVMC_PAGE_SIZE ||
	    fstat(fd, &st) || !S_ISREG(st.st_mode) ||
	    (uint64_t)st.st_size < size + OVMC_PAGE_SIZE || seals < 0 || !(seals & F_SEAL_SHRINK))
		return;
	m = mmap(NULL, size + OVMC_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
	if (m == MAP_FAILED)
		return;
	x->hv_win = m;
	x->hv_win_size = size;
	x->hv_map_size = size + OVMC_PAGE_SIZE;
	x->hv_link = (const uint32_t *)(x->hv_win + size);
	x->liobn_local = r->liobn_local;
	x->unit_address = r->unit_address;
	x->liobn_remote = r->liobn_remote;
}

static int xproc_vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	struct xproc *x = (struct xproc *)p;
	struct xproc_hdr req;
	union xproc_msg rep;
	const struct xproc_node_reply *r = &rep.node_reply;
	int fd;

	ovmc_xp_hdr(&req, XPROC_NODE, 0);
	if (transact(x, &req, sizeof(req), &rep, sizeof(*r), XPROC_NODE_REPLY, &fd))
		return -ENOTCONN;
	if (r->status == 0 && fd >= 0)
		lend_window(x, fd, r);
	if (fd >= 0)
		close(fd);
	if (r->status == -ENODEV)
		return -ENODEV;
	if (r->status != 0) {
		mark_dead(x, -EPROTO);
		return -ENOTCONN;
	}
	out->unit_address = r->unit_address;
	out->drc_index = r->drc_index;
	out->liobn_local = r->liobn_local;
	out->window_local = r->window_local;
	out->liobn_remote = r->liobn_remote;
	out->window_remote = r->window_remote;
	return 0;
}

static int check(struct xproc *x)
{
	struct pollfd pfd = {.fd = x->sock, .events = POLLIN};
	char c;
	ssize_t n;

	if (x->dead)
		return 0;
	if (poll(&pfd, 1, 0) < 0)
		return 1; /* EINTR or ENOMEM say nothing about the peer */
	if (pfd.revents & (POLLHUP | POLLERR | POLLNVAL)) {
		mark_dead(x, -ECONNRESET);
		return 0;
	}
	if (!(pfd.revents & POLLIN))
		return 1;
	/* Outside an hcall the server never speaks: data means a broken peer. */
	n = recv(x->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 1;
	mark_dead(x, n == 0 || n < 0 ? -ECONNRESET : -EPROTO);
	return 0;
}

static int xproc_alive(struct ovmc_platform *p)
{
	return check((struct xproc *)p);
}

static void xproc_destroy(struct ovmc_platform *p)
{
	struct xproc *x = (struct xproc *)p;

	if (!x->dead && !x->attaching && x->sock >= 0) {
		struct xproc_hdr bye;

		/* Tells the server to remove us as deregistered, not failed. */
		ovmc_xp_hdr(&bye, XPROC_DETACH, ++x->seq);
		send_with_reports(x, &bye, sizeof(bye));
	}
	unlend_window(x);
	drop_socket(x);
	munmap(p->mem, p->mem_size);
	close(x->mem_fd);
	close(p->irq_fd);
	free(x->path);
	free(x);
}

static const struct ovmc_platform_ops xproc_ops = {
	.hcall = xproc_hcall,
	.vmc_node = xproc_vmc_node,
	.alive = xproc_alive,
	.hcall_pair = xproc_hcall_pair,
	.destroy = xproc_destroy,
};

static int fill_addr(const char *path, struct sockaddr_un *sa)
{
	size_t len = strlen(path);

	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa->sun_path))
		return -ENAMETOOLONG;
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	memcpy(sa->sun_path, path, len);
	return 0;
}

/*
 * A memfd of `size` bytes sealed against any change of size (what the
 * server maps must never shrink under it), mapped shared at *map.
 * Returns the descriptor or -errno (then nothing is left open).
 */
static int sealed_memfd(const char *name, size_t size, void **map)
{
	int fd = memfd_create(name, MFD_CLOEXEC | MFD_ALLOW_SEALING), rc;

	if (fd < 0)
		return -errno;
	if (ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
		goto fail;
	*map = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
	if (*map != MAP_FAILED)
		return fd;
fail:
	rc = -errno;
	close(fd);
	return rc;
}

/*
 * A new mailbox for each connection, so that nothing a server wrote into
 * an old one can pass for an answer on the new. Its descriptor is
 * returned for ATTACH (-1: none, the hcalls go on the socket).
 */
static int mailbox_new(struct xproc *x)
{
	void *m;
	int fd = sealed_memfd("openvmc-mailbox", XPROC_MB_SIZE, &m);

	if (fd < 0)
		return -1;
	x->bell = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (x->bell < 0) {
		munmap(m, XPROC_MB_SIZE);
		close(fd);
		return -1;
	}
	x->mb = m;
	return fd;
}

static void mailbox_free(struct xproc *x)
{
	if (!x->mb)
		return;
	munmap(x->mb, XPROC_MB_SIZE);
	close(x->bell);
	x->mb = NULL;
	x->bell = -1;
	x->rdma_on_socket = false;
	x->post_prod = 0;
	x->post_epoch = x->posted_in_epoch = 0;
}

static void drop_socket(struct xproc *x)
{
	if (x->sock >= 0)
		close(x->sock);
	x->sock = -1;
	x->attaching = false;
	mailbox_free(x);
}

/* The ATTACH_REPLY a server sends, unasked, to a peer it will not read. */
static bool is_refusal(const union xproc_msg *rep, ssize_t n)
{
	return (size_t)n == sizeof(rep->attach_reply) && rep->h.magic == XPROC_MAGIC &&
	       rep->h.type == XPROC_ATTACH_REPLY && rep->h.seq == 0 && !rep->h.reserved &&
	       (rep->attach_reply.status == -EACCES || rep->attach_reply.status == -EBUSY);
}

/*
 * The server closed the connection before answering: its refusal if it
 * left one (the reset is reported before what was queued ahead of it),
 * else -ECONNRESET (a server going down resets its backlog).
 */
static int closed_unanswered(int sock)
{
	for (int i = 0; i < 2; i++) {
		union xproc_msg rep;
		int rfds[1];
		unsigned nfds = 0;
		bool trunc;
		ssize_t n = ovmc_xp_recv(sock, &rep, sizeof(rep), MSG_DONTWAIT, rfds, 1, &nfds,
					 &trunc);

		if (nfds)
			ovmc_xp_close_fds(rfds, 1);
		if (n > 0)
			return !trunc && is_refusal(&rep, n) ? rep.attach_reply.status : -ECONNRESET;
		if (n != -ECONNRESET && n != -EINTR)
			break;
	}
	return -ECONNRESET;
}

/*
 * Connect and send ATTACH without waiting: -EINPROGRESS with x->sock the
 * new connection, or the error (nothing left open). Never blocks, even on
 * a server that is stopped: a full backlog is -EAGAIN.
 */
static int attach_start(struct xproc *x)
{
	struct sockaddr_un sa;
	struct xproc_attach req;
	int fds[XPROC_ATTACH_MAX_FDS] = {
		[XPROC_FD_MEM] = x->mem_fd, [XPROC_FD_IRQ] = x->base.irq_fd};
	int sock, rc, mb_fd = -1;

	rc = fill_addr(x->path, &sa);
	if (rc)
		return rc;
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (sock < 0)
		return -errno;
	do {
		rc = connect(sock, (const struct sockaddr *)&sa, sizeof(sa));
	} while (rc < 0 && errno == EINTR);
	if (rc < 0) {
		rc = -errno;
		goto fail;
	}
	memset(&req, 0, sizeof(req));
	ovmc_xp_hdr(&req.h, XPROC_ATTACH, ++x->seq);
	req.mem_size = x->base.mem_size;
	/* Without one the hcalls go on the socket: slower, not wrong. */
	if (!x->no_mailbox && (mb_fd = mailbox_new(x)) >= 0) {
		fds[XPROC_FD_MAILBOX] = mb_fd;
		fds[XPROC_FD_BELL] = x->bell;
	}
	rc = ovmc_xp_send(sock, &req, sizeof(req), MSG_DONTWAIT, fds,
			  x->mb ? XPROC_ATTACH_MAX_FDS : XPROC_ATTACH_FDS);
	if (mb_fd >= 0)
		close(mb_fd); /* the mapping keeps it, and the server has its own */
	if (rc == -EPIPE || rc == -ECONNRESET)
		rc = closed_unanswered(sock);
	if (rc)
		goto fail;
	x->sock = sock;
	x->rcv_timeout_ms = 0;
	x->attaching = true;
	x->attach_seq = req.h.seq;
	return -EINPROGRESS;
fail:
	close(sock);
	mailbox_free(x);
	return rc;
}

/* The answer to attach_start(): 0, -EINPROGRESS (not yet) or the error. */
static int attach_finish(struct xproc *x)
{
	union xproc_msg rep;
	int rfds[1];
	unsigned nfds = 0;
	bool trunc = false;
	ssize_t n;
	int rc;

	if (!x->attaching)
		return x->dead ? -ENOTCONN : 0;
	do {
		n = ovmc_xp_recv(x->sock, &rep, sizeof(rep), MSG_DONTWAIT, rfds, 1, &nfds, &trunc);
	} while (n == -EINTR);
	if (n == -EAGAIN)
		return -EINPROGRESS;
	if (nfds)
		ovmc_xp_close_fds(rfds, 1);
	if (n == 0 || n == -ECONNRESET || n == -EPIPE) {
		rc = n == 0 ? -ECONNRESET : closed_unanswered(x->sock);
		goto fail;
	}
	if (n < 0) {
		rc = (int)n;
		goto fail;
	}
	if (is_refusal(&rep, n)) {
		rc = rep.attach_reply.status;
		goto fail;
	}
	if (trunc || nfds || (size_t)n != sizeof(rep.attach_reply) || rep.h.magic != XPROC_MAGIC ||
	    rep.h.type != XPROC_ATTACH_REPLY || rep.h.seq != x->attach_seq || rep.h.reserved) {
		rc = -EPROTO;
		goto fail;
	}
	/* A server of another version still answers ATTACH, with -EPROTO. */
	if (rep.attach_reply.status) {
		rc = rep.attach_reply.status < 0 ? rep.attach_reply.status : -EPROTO;
		goto fail;
	}
	if (rep.h.version != XPROC_VERSION) {
		rc = -EPROTO;
		goto fail;
	}
	x->partition = rep.attach_reply.partition;
	x->attaching = false;
	x->dead = false;
	x->why_dead = 0;
	return 0;
fail:
	drop_socket(x);
	return rc;
}

/* attach_start() and its answer within the deadline. */
static int attach(struct xproc *x)
{
	int rc = attach_start(x);

	if (rc != -EINPROGRESS)
		return rc;
	for (int64_t deadline = mono_ms() + x->timeout_ms;;) {
		if (!wait_readable(x->sock, deadline)) {
			drop_socket(x);
			return -ETIMEDOUT;
		}
		rc = attach_finish(x);
		if (rc != -EINPROGRESS)
			return rc;
	}
}

int ovmc_xproc_new(const char *socket_path, size_t mem_size, struct ovmc_platform **out)
{
	struct xproc *x;
	size_t size;
	int rc;

	if (!socket_path || mem_size == 0 || mem_size > SIZE_MAX - OVMC_PAGE_SIZE)
		return -EINVAL;
	size = (mem_size + OVMC_PAGE_SIZE - 1) & ~(size_t)(OVMC_PAGE_SIZE - 1);
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xproc_ops;
	x->sock = -1;
	x->bell = -1;
	x->mem_fd = -1;
	x->base.irq_fd = -1;
	x->base.mem = MAP_FAILED;
	x->dead = true;
	x->timeout_ms = OVMC_XPROC_DEFAULT_TIMEOUT_MS;
	x->path = strdup(socket_path);
	if (!x->path) {
		rc = -ENOMEM;
		goto fail;
	}
	x->mem_fd = sealed_memfd("openvmc-partition", size, &x->base.mem);
	if (x->mem_fd < 0) {
		rc = x->mem_fd;
		x->mem_fd = -1;
		goto fail;
	}
	x->base.mem_size = size;
	x->base.irq_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (x->base.irq_fd < 0) {
		rc = -errno;
		goto fail;
	}
	*out = &x->base;
	return 0;
fail:
	if (x->base.mem != MAP_FAILED)
		munmap(x->base.mem, size);
	if (x->base.irq_fd >= 0)
		close(x->base.irq_fd);
	if (x->mem_fd >= 0)
		close(x->mem_fd);
	free(x->path);
	free(x);
	return rc;
}

int ovmc_xproc_connect(const char *socket_path, size_t mem_size, struct ovmc_platform **out)
{
	struct ovmc_platform *p;
	int rc = ovmc_xproc_new(socket_path, mem_size, &p);

	if (rc)
		return rc;
	rc = attach(to_xproc(p));
	if (rc) {
		ovmc_platform_destroy(p);
		return rc;
	}
	*out = p;
	return 0;
}

int ovmc_xproc_fd(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x ? x->sock : -EINVAL;
}

int ovmc_xproc_set_irq_scan(struct ovmc_platform *p, bool scan)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	x->irq_scan = scan;
	/* The eventfd is then read only after the owner saw it readable
	 * (ovmc_platform_irq_fired()), so an ack after a scan costs nothing. */
	p->irq_latch_used = scan;
	p->irq_latched = scan;
	return 0;
}

unsigned ovmc_xproc_held(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x ? x->reports.count : 0;
}

int ovmc_xproc_flush(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	if (x->dead) {
		x->reports.count = 0;
		return -ENOTCONN;
	}
	return send_reports(x);
}

int ovmc_xproc_set_mailbox(struct ovmc_platform *p, bool use)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	x->no_mailbox = !use;
	return 0;
}

int ovmc_xproc_set_posting(struct ovmc_platform *p, bool post)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	x->posting = post;
	return 0;
}

int ovmc_xproc_kick(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);
	struct xproc_hdr h;
	union xproc_msg rep;

	/* The server may have run them already, before another request. */
	if (!x || !x->mb || x->dead ||
	    __atomic_load_n(&x->mb->post_cons, __ATOMIC_ACQUIRE) == x->post_prod)
		return 0;
	/* A round trip, not a ring alone: the deadline is the hcalls', and an
	 * interrupt the pairs raised comes with the answer. */
	ovmc_xp_hdr(&h, XPROC_SYNC, 0);
	transact(x, &h, sizeof(h), &rep, sizeof(h), XPROC_SYNC, NULL);
	return 1;
}

int ovmc_xproc_has_mailbox(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x && x->mb && !x->dead && !x->attaching;
}

int ovmc_xproc_check(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x ? check(x) : 0;
}

/* Forget the old connection: a live server drops the old partition as failed. */
static void detach_old(struct xproc *x)
{
	mark_dead(x, x->why_dead);
	drop_socket(x);
	/* The window was the old partition's, and so were its copies. */
	unlend_window(x);
	/* Interrupts raised for the old partition mean nothing to the new one. */
	ovmc_platform_irq_ack(&x->base);
}

int ovmc_xproc_reconnect(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	detach_old(x);
	return attach(x);
}

int ovmc_xproc_reconnect_start(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	detach_old(x);
	return attach_start(x);
}

int ovmc_xproc_reconnect_finish(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x ? attach_finish(x) : -EINVAL;
}

int ovmc_xproc_set_timeout(struct ovmc_platform *p, unsigned ms)
{
	struct xproc *x = to_xproc(p);

	if (!x || ms == 0 || ms > OVMC_XPROC_MAX_TIMEOUT_MS)
		return -EINVAL;
	x->timeout_ms = ms;
	return 0;
}

int ovmc_xproc_dead_reason(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x && x->dead ? x->why_dead : 0;
}
