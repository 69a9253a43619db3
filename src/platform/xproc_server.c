// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Cross-process platform, hypervisor side: one listening socket and its
 * connections in one epoll set, served without blocking. Every connection
 * carries one partition of the machine; the connection's end is the
 * partition's end.
 *
 * The peer is another process of the same user, but a buggy or hostile
 * one must not be able to crash or leak this process: every message is
 * checked for length, type, version and state before use, any descriptor
 * we did not ask for is closed, and the partition memory and the mailbox
 * are accepted only when their size is sealed against shrinking (a
 * truncated mapping would fault with SIGBUS in here). What arrives in the
 * mailbox is copied out before it is checked, then checked as a message
 * from the socket is; its doorbell is watched edge-triggered and never
 * read, so a peer that empties it or makes it blocking cannot stall us.
 */
#include "xproc_proto.h"

#include <openvmc/xproc.h>

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_MEM ((size_t)1 << 30)
#define DEFAULT_MAX_CLIENTS 64u
#define DEFAULT_MAX_PENDING 16u
#define DEFAULT_ATTACH_TIMEOUT_MS 3000u
/* Connections accepted per dispatch, so a flood of them cannot starve the
 * attached peers (epoll is level-triggered: the rest comes next time). */
#define BATCH 16
#define EPOLL_EVENTS 32
/* Messages read per connection and dispatch when they need no answer. */
#define REPORTS_PER_DISPATCH 32

struct ovmc_xproc_conn {
	struct ovmc_xproc_conn *next;
	struct ovmc_xproc_server *srv;
	int fd;
	int irq_fd; /* -1 until attached */
	void *mem;
	size_t mem_size;
	/* The mailbox and its doorbell, if the client lent them at ATTACH;
	 * mb_seq: the last request taken from it. */
	struct xproc_mailbox *mb;
	int bell;
	uint32_t mb_seq;
	bool via_mb; /* the request being handled came through the mailbox */
	/* Posted pairs: taken so far; executed in `done_epoch`; the grant
	 * last published. */
	uint32_t post_cons;
	uint32_t done_epoch, post_done;
	uint64_t grant;
	struct ovmc_part *part; /* NULL until attached */
	pid_t pid;
	uid_t uid;
	uint64_t deadline_ms; /* until attached: ATTACH must come by then */
	/* With defer_replies: an hcall being executed (busy) or a reply waiting
	 * for ovmc_xproc_server_flush() (out_len 0: none), and whether an
	 * interrupt was raised since the hcall began. */
	bool busy;
	union {
		struct xproc_hdr h;
		struct xproc_hcall_reply hcall;
		struct xproc_hcall_pair_reply pair;
	} out;
	size_t out_len;
	bool out_irq;
	bool out_mb; /* the reply goes into the mailbox */
};

struct ovmc_xproc_server {
	struct ovmc_xproc_server_config cfg;
	struct ovmc_xp_listener l; /* its timer: the earliest ATTACH deadline */
	/* Newest first, so the last one not attached is the oldest. */
	struct ovmc_xproc_conn *clients;
	unsigned n_clients;
	unsigned n_pending; /* connected, not attached */
	unsigned n_deferred; /* clients with out_len set */
	uint64_t armed_ms;
};

/* epoll tag of the timer; the listening socket's is NULL, a client's its own. */
static char timer_tag;

/* What a message handler asks of the caller. */
enum verdict {
	KEEP,
	DROP_FAILED, /* protocol violation: remove the partition as failed */
	CLOSED,	     /* the handler has already let the partition go */
};

static void __attribute__((format(printf, 3, 4)))
slog(const struct ovmc_xproc_server *s, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	s->cfg.log(s->cfg.log_user, level, fmt, ap);
	va_end(ap);
}

/* ---- connections ---- */

/* A receive stores at most XPROC_ATTACH_MAX_FDS of the descriptors it counts. */
static unsigned fds_kept(unsigned nfds)
{
	return nfds < XPROC_ATTACH_MAX_FDS ? nfds : XPROC_ATTACH_MAX_FDS;
}

static void close_received(const int *fds, unsigned nfds)
{
	ovmc_xp_close_fds(fds, fds_kept(nfds));
}

/* A connection's socket (level-triggered) or doorbell (edge-triggered). */
static int watch(struct ovmc_xproc_conn *c, int fd, uint32_t events)
{
	struct ovmc_xproc_server *s = c->srv;
	struct epoll_event ev = {.events = events, .data.ptr = c};

	if (s->cfg.watch)
		return s->cfg.watch(s->cfg.watch_user, fd, events, c, true);
	return epoll_ctl(s->l.ep, EPOLL_CTL_ADD, fd, &ev) < 0 ? -errno : 0;
}

static void unwatch(struct ovmc_xproc_conn *c, int fd)
{
	struct ovmc_xproc_server *s = c->srv;

	if (s->cfg.watch)
		s->cfg.watch(s->cfg.watch_user, fd, 0, c, false);
	else
		epoll_ctl(s->l.ep, EPOLL_CTL_DEL, fd, NULL);
}

/* The doorbell's descriptor stays open. */
static void unlend_mailbox(struct ovmc_xproc_conn *c)
{
	if (!c->mb)
		return;
	unwatch(c, c->bell);
	munmap(c->mb, XPROC_MB_SIZE);
	c->mb = NULL;
	c->bell = -1;
}

static void client_drop(struct ovmc_xproc_conn *c, bool failed)
{
	struct ovmc_xproc_server *s = c->srv;
	struct ovmc_xproc_conn **pp;

	for (pp = &s->clients; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	s->n_clients--;
	if (!c->part)
		s->n_pending--;
	if (c->out_len)
		s->n_deferred--;
	if (c->part)
		ovmc_machine_remove_partition(s->cfg.machine, c->part, failed);
	if (c->mem)
		munmap(c->mem, c->mem_size);
	if (c->irq_fd >= 0)
		close(c->irq_fd);
	if (c->bell >= 0) {
		int bell = c->bell;

		unlend_mailbox(c);
		close(bell);
	}
	unwatch(c, c->fd);
	close(c->fd);
	free(c);
}

static int reply(struct ovmc_xproc_conn *c, const void *msg, size_t len)
{
	/* The peer has exactly one request outstanding, so its receive queue
	 * has room unless it floods us without reading: then it goes. */
	int rc = ovmc_xp_send(c->fd, msg, len, MSG_DONTWAIT, NULL, 0);

	/* A peer that died between its request and our answer is gone like
	 * one seen at end of stream, not a failure of ours. */
	if ((rc == -EPIPE || rc == -ECONNRESET) && c->part)
		slog(c->srv, OVMC_LOG_INFO, "xproc: partition %u: peer gone",
		     ovmc_part_id(c->part));
	else if (rc)
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: reply failed: %s", (int)c->pid,
		     strerror(-rc));
	return rc;
}

static void raise_irq(void *arg)
{
	struct ovmc_xproc_conn *c = arg;
	uint64_t one = 1;
	ssize_t n;

	/* The peer waits for that reply: it learns of the interrupt there. */
	if (c->busy || c->out_len) {
		c->out_irq = true;
		return;
	}
	n = write(c->irq_fd, &one, sizeof(one));

	(void)n; /* EAGAIN: the counter is saturated, the fd readable all the same */
}

/* Posted sends are counted per epoch of the hypervisor end. */
static void count_epoch(struct ovmc_xproc_conn *c, uint32_t epoch)
{
	if (epoch != c->done_epoch) {
		c->done_epoch = epoch;
		c->post_done = 0;
	}
}

/*
 * Tell the client how many H_SEND_CRQ it may have posted in this epoch:
 * those executed, plus the room left in the hypervisor end's queue. Posts
 * not taken yet are not in that room, so together they never exceed it.
 */
static void publish_grant(struct ovmc_xproc_conn *c)
{
	struct ovmc_vmc *v = ovmc_part_vmc(c->part);
	uint32_t epoch = v ? ovmc_vmc_hv_epoch(v) : 0;
	uint64_t g;

	count_epoch(c, epoch);
	g = XPROC_GRANT(epoch, v && c->srv->cfg.posting && ovmc_vmc_hv_registered(v) &&
					       ovmc_vmc_partition_registered(v)
				       ? c->post_done + ovmc_vmc_hv_room(v)
				       : 0);
	if (g != c->grant) {
		c->grant = g;
		__atomic_store_n(&c->mb->grant, g, __ATOMIC_RELEASE);
	}
}

/* The answer to an hcall or RDMA, where its request came from. */
static int answer(struct ovmc_xproc_conn *c, bool mailbox, const void *msg, size_t len)
{
	if (!mailbox)
		return reply(c, msg, len);
	/* Before the answer: the client reads the grant after its hcall. */
	publish_grant(c);
	ovmc_xp_mb_answer(c->mb, msg, len);
	return 0;
}

static int send_deferred(struct ovmc_xproc_conn *c)
{
	int rc;

	if (c->out_irq)
		c->out.h.reserved = XPROC_REPLY_IRQ;
	rc = answer(c, c->out_mb, &c->out, c->out_len);
	c->out_len = 0;
	c->out_irq = false;
	c->srv->n_deferred--;
	return rc;
}

/* Before an hcall is executed: 0, or the peer cannot be answered. */
static int hcall_begin(struct ovmc_xproc_conn *c)
{
	if (!c->srv->cfg.defer_replies)
		return 0;
	/* A peer that asks again before its answer was sent gets it first. */
	if (c->out_len && send_deferred(c))
		return -EPIPE;
	c->busy = true;
	return 0;
}

/* An hcall's reply: now, or at ovmc_xproc_server_flush(). */
static int hcall_reply(struct ovmc_xproc_conn *c, const void *msg, size_t len)
{
	if (!c->srv->cfg.defer_replies)
		return answer(c, c->via_mb, msg, len);
	c->busy = false;
	memcpy(&c->out, msg, len);
	c->out_len = len;
	c->out_mb = c->via_mb;
	c->srv->n_deferred++;
	return 0;
}

void ovmc_xproc_server_flush(struct ovmc_xproc_server *s)
{
	/* The hypervisor core made room in this pass: grant it. */
	if (s->cfg.posting)
		for (struct ovmc_xproc_conn *c = s->clients; c; c = c->next)
			if (c->mb && c->part)
				publish_grant(c);
	if (!s->n_deferred)
		return;
	for (struct ovmc_xproc_conn *c = s->clients, *next; c && s->n_deferred; c = next) {
		next = c->next;
		if (c->out_len && send_deferred(c))
			client_drop(c, true);
	}
}

static bool is_eventfd(int fd)
{
	char link[64], target[64];
	ssize_t n;

	snprintf(link, sizeof(link), "/proc/self/fd/%d", fd);
	n = readlink(link, target, sizeof(target) - 1);
	if (n < 0)
		return errno == ENOENT; /* no /proc: take the peer's word */
	target[n] = '\0';
	return strcmp(target, "anon_inode:[eventfd]") == 0;
}

/* A file of at least `size` bytes that cannot shrink: 0, -EINVAL or -EPERM. */
static int sealed_file(int fd, uint64_t size)
{
	struct stat st;
	int seals;

	if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size < size)
		return -EINVAL;
	seals = fcntl(fd, F_GET_SEALS);
	return seals < 0 || !(seals & F_SEAL_SHRINK) ? -EPERM : 0;
}

/* Map the mailbox and watch its doorbell; the descriptors stay the caller's. */
static int lend_mailbox(struct ovmc_xproc_conn *c, const int *fds)
{
	void *mb;
	int rc = sealed_file(fds[XPROC_FD_MAILBOX], XPROC_MB_SIZE);

	if (rc)
		return rc;
	if (!is_eventfd(fds[XPROC_FD_BELL]))
		return -EBADF;
	mb = mmap(NULL, XPROC_MB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[XPROC_FD_MAILBOX],
		  0);
	if (mb == MAP_FAILED)
		return -errno;
	rc = watch(c, fds[XPROC_FD_BELL], EPOLLIN | EPOLLET);
	if (rc) {
		munmap(mb, XPROC_MB_SIZE);
		return rc;
	}
	c->mb = mb;
	c->bell = fds[XPROC_FD_BELL];
	c->mb_seq = __atomic_load_n(&c->mb->req_seq, __ATOMIC_ACQUIRE);
	c->post_cons = __atomic_load_n(&c->mb->post_prod, __ATOMIC_ACQUIRE);
	__atomic_store_n(&c->mb->post_cons, c->post_cons, __ATOMIC_RELEASE);
	c->grant = XPROC_GRANT(0, 0);
	__atomic_store_n(&c->mb->grant, c->grant, __ATOMIC_RELEASE);
	return 0;
}

/*
 * Validate the partition memory, interrupt and mailbox (if `nfds` is
 * XPROC_ATTACH_MAX_FDS), map, create the partition.
 */
static int attach_partition(struct ovmc_xproc_conn *c, uint64_t mem_size, const int *fds,
			    unsigned nfds)
{
	struct ovmc_xproc_server *s = c->srv;
	struct ovmc_part_config pc = {0};
	void *mem;
	int fl, rc;

	if (mem_size < OVMC_PAGE_SIZE || mem_size > s->cfg.max_mem_size ||
	    mem_size % OVMC_PAGE_SIZE)
		return -EINVAL;
	rc = sealed_file(fds[XPROC_FD_MEM], mem_size);
	if (rc)
		return rc;
	if (!is_eventfd(fds[XPROC_FD_IRQ]))
		return -EBADF;
	fl = fcntl(fds[XPROC_FD_IRQ], F_GETFL);
	if (fl < 0 || fcntl(fds[XPROC_FD_IRQ], F_SETFL, fl | O_NONBLOCK) < 0)
		return -EBADF;
	if (nfds == XPROC_ATTACH_MAX_FDS && (rc = lend_mailbox(c, fds)))
		return rc;
	mem = mmap(NULL, (size_t)mem_size, PROT_READ | PROT_WRITE, MAP_SHARED, fds[XPROC_FD_MEM],
		   0);
	if (mem == MAP_FAILED) {
		rc = -errno;
		unlend_mailbox(c);
		return rc;
	}
	c->mem = mem;
	c->mem_size = (size_t)mem_size;
	c->irq_fd = fds[XPROC_FD_IRQ];
	pc.mem = mem;
	pc.mem_size = c->mem_size;
	pc.raise_irq = raise_irq;
	pc.irq_arg = c;
	pc.vmc_present = s->cfg.vmc_present;
	pc.request_vmc_rc = s->cfg.request_vmc_rc;
	pc.drc_index = s->cfg.drc_index;
	pc.hv_window_size = s->cfg.hv_window_size;
	pc.hv_queue_entries = s->cfg.hv_queue_entries;
	/* Lent at NODE: the client copies out of the window itself. */
	pc.share_hv_window = true;
	rc = ovmc_machine_add_partition(s->cfg.machine, &pc, &c->part);
	if (rc) {
		munmap(mem, c->mem_size);
		unlend_mailbox(c);
		c->mem = NULL;
		c->irq_fd = -1;
		c->part = NULL;
		return rc;
	}
	/* The mappings keep the memory and the mailbox; their descriptors
	 * are no longer needed. */
	close(fds[XPROC_FD_MEM]);
	if (nfds == XPROC_ATTACH_MAX_FDS)
		close(fds[XPROC_FD_MAILBOX]);
	return 0;
}

static enum verdict on_attach(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			      const int *fds, unsigned nfds)
{
	struct xproc_attach_reply r;
	int status;

	if (nfds != XPROC_ATTACH_FDS && nfds != XPROC_ATTACH_MAX_FDS) {
		close_received(fds, nfds);
		status = -EBADF;
	} else {
		status = attach_partition(c, m->attach.mem_size, fds, nfds);
		if (status)
			ovmc_xp_close_fds(fds, nfds);
	}
	memset(&r, 0, sizeof(r));
	ovmc_xp_hdr(&r.h, XPROC_ATTACH_REPLY, m->h.seq);
	r.status = status;
	r.partition = c->part ? ovmc_part_id(c->part) : 0;
	if (status) {
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: attach refused: %s", (int)c->pid,
		     strerror(-status));
		reply(c, &r, sizeof(r));
		return DROP_FAILED;
	}
	c->srv->n_pending--;
	c->deadline_ms = 0;
	slog(c->srv, OVMC_LOG_INFO, "xproc: pid %d attached as partition %u (%zu bytes%s)",
	     (int)c->pid, r.partition, c->mem_size, c->mb ? ", mailbox" : "");
	return reply(c, &r, sizeof(r)) ? DROP_FAILED : KEEP;
}

static enum verdict on_hcall(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			     const int *fds, unsigned nfds)
{
	const struct xproc_hcall *q = &m->hcall;
	struct xproc_hcall_reply r;
	uint64_t rets[OVMC_HCALL_RETS] = {0};

	if (q->nargs > XPROC_MAX_ARGS || q->reserved ||
	    (uint64_t)(unsigned long)q->opcode != q->opcode) {
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: malformed HCALL", (int)c->pid);
		return DROP_FAILED;
	}
	if (hcall_begin(c))
		return DROP_FAILED;
	memset(&r, 0, sizeof(r));
	ovmc_xp_hdr(&r.h, XPROC_HCALL_REPLY, q->h.seq);
	r.rc = ovmc_part_hcall(c->part, (unsigned long)q->opcode, q->args, q->nargs, rets);
	memcpy(r.rets, rets, sizeof(rets));
	return hcall_reply(c, &r, sizeof(r)) ? DROP_FAILED : KEEP;
}

static enum verdict on_hcall_pair(struct ovmc_xproc_conn *c, const union xproc_msg *m,
				  const int *fds, unsigned nfds)
{
	const struct xproc_hcall_pair *q = &m->hcall_pair;
	struct xproc_hcall_pair_reply r;

	for (int i = 0; i < 2; i++) {
		const struct xproc_call *k = &q->call[i];

		if (k->nargs > XPROC_MAX_ARGS || k->reserved ||
		    (uint64_t)(unsigned long)k->opcode != k->opcode) {
			slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: malformed HCALL_PAIR",
			     (int)c->pid);
			return DROP_FAILED;
		}
	}
	if (hcall_begin(c))
		return DROP_FAILED;
	memset(&r, 0, sizeof(r));
	ovmc_xp_hdr(&r.h, XPROC_HCALL_PAIR_REPLY, q->h.seq);
	r.rc[0] = ovmc_part_hcall(c->part, (unsigned long)q->call[0].opcode, q->call[0].args,
				  q->call[0].nargs, NULL);
	r.rc[1] = r.rc[0] == OVMC_H_SUCCESS
			  ? ovmc_part_hcall(c->part, (unsigned long)q->call[1].opcode,
					    q->call[1].args, q->call[1].nargs, NULL)
			  : r.rc[0];
	return hcall_reply(c, &r, sizeof(r)) ? DROP_FAILED : KEEP;
}

static enum verdict on_node(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			    const int *fds, unsigned nfds)
{
	struct xproc_node_reply r;
	struct ovmc_vmc_node node;
	struct ovmc_vmc *v = ovmc_part_vmc(c->part);
	int fd = v ? ovmc_vmc_hv_memfd(v) : -1;
	int rc;

	memset(&r, 0, sizeof(r));
	ovmc_xp_hdr(&r.h, XPROC_NODE_REPLY, m->h.seq);
	r.status = ovmc_part_vmc_node(c->part, &node);
	if (r.status == 0) {
		r.unit_address = node.unit_address;
		r.drc_index = node.drc_index;
		r.liobn_local = node.liobn_local;
		r.liobn_remote = node.liobn_remote;
		r.window_local = node.window_local;
		r.window_remote = node.window_remote;
	}
	if (r.status || fd < 0)
		return reply(c, &r, sizeof(r)) ? DROP_FAILED : KEEP;
	rc = ovmc_xp_send(c->fd, &r, sizeof(r), MSG_DONTWAIT, &fd, 1);
	if (rc)
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: reply failed: %s", (int)c->pid,
		     strerror(-rc));
	return rc ? DROP_FAILED : KEEP;
}

/*
 * The reports that came with a message: copies out of the hypervisor
 * window the client made, counted and traced now. NULL if they hold.
 */
static const char *apply_reports(struct ovmc_xproc_conn *c, const struct xproc_reports *q,
				 size_t len)
{
	struct ovmc_vmc_node node;

	if (len < XPROC_REPORTS_LEN(1) || q->count == 0 || q->count > XPROC_MAX_REPORTS ||
	    q->reserved)
		return "malformed reports";
	if (len != XPROC_REPORTS_LEN(q->count))
		return "wrong length";
	if (ovmc_part_vmc_node(c->part, &node))
		return "reports without a VMC";
	for (uint32_t i = 0; i < q->count; i++) {
		const struct xproc_rdma_report *k = &q->r[i];

		/* Only copies out of the window are the client's to make. */
		if (k->args[1] != node.liobn_remote || k->args[3] != node.liobn_local ||
		    (k->rc != OVMC_H_SUCCESS && k->rc != OVMC_H_PARAMETER &&
		     k->rc != OVMC_H_SOURCE_PARM && k->rc != OVMC_H_DEST_PARM) ||
		    ovmc_part_remote_rdma(c->part, (long)k->rc, k->args))
			return "impossible RDMA report";
	}
	return NULL;
}

/*
 * The posted pairs ran before this (serve()); the answer, deferred like an
 * hcall's, brings any interrupt they raised. Only through the mailbox.
 */
static enum verdict on_sync(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			    const int *fds, unsigned nfds)
{
	struct xproc_hdr r;

	if (!c->via_mb) {
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: SYNC on the socket", (int)c->pid);
		return DROP_FAILED;
	}
	if (hcall_begin(c))
		return DROP_FAILED;
	ovmc_xp_hdr(&r, XPROC_SYNC, m->h.seq);
	return hcall_reply(c, &r, sizeof(r)) ? DROP_FAILED : KEEP;
}

/* The reports were the whole message. */
static enum verdict on_rdma(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			    const int *fds, unsigned nfds)
{
	return KEEP;
}

static enum verdict on_detach(struct ovmc_xproc_conn *c, const union xproc_msg *m,
			      const int *fds, unsigned nfds)
{
	slog(c->srv, OVMC_LOG_INFO, "xproc: partition %u detached", ovmc_part_id(c->part));
	client_drop(c, false);
	return CLOSED;
}

/*
 * What each message needs: exact length before any reports, whether it
 * comes after ATTACH, whether reports may follow (RDMA: must).
 */
static const struct {
	const char *name;
	size_t len;
	bool attached;
	bool reports;
	enum verdict (*fn)(struct ovmc_xproc_conn *c, const union xproc_msg *m, const int *fds,
			   unsigned nfds);
} handlers[XPROC_TYPE_COUNT] = {
	[XPROC_ATTACH] = {"ATTACH", sizeof(struct xproc_attach), false, false, on_attach},
	[XPROC_HCALL] = {"HCALL", sizeof(struct xproc_hcall), true, true, on_hcall},
	[XPROC_HCALL_PAIR] = {"HCALL_PAIR", sizeof(struct xproc_hcall_pair), true, true,
			      on_hcall_pair},
	[XPROC_NODE] = {"NODE", sizeof(struct xproc_hdr), true, true, on_node},
	[XPROC_DETACH] = {"DETACH", sizeof(struct xproc_hdr), true, true, on_detach},
	[XPROC_RDMA] = {"RDMA", sizeof(struct xproc_hdr), true, true, on_rdma},
	[XPROC_SYNC] = {"SYNC", sizeof(struct xproc_hdr), true, true, on_sync},
};


static const char *type_name(const union xproc_msg *m, size_t len)
{
	if (len < sizeof(struct xproc_hdr) || m->h.type >= XPROC_TYPE_COUNT ||
	    !handlers[m->h.type].name)
		return "?";
	return handlers[m->h.type].name;
}

/* Takes ownership of fds[0..min(nfds, XPROC_ATTACH_MAX_FDS)). */
static enum verdict handle(struct ovmc_xproc_conn *c, const union xproc_msg *m, size_t len,
			   bool trunc, const int *fds, unsigned nfds)
{
	unsigned kept = fds_kept(nfds);
	const char *why;
	size_t fixed;

	if (trunc || len < sizeof(struct xproc_hdr)) {
		why = trunc ? "truncated message or descriptors" : "short message";
		goto bad;
	}
	if (m->h.magic != XPROC_MAGIC || m->h.reserved) {
		why = "bad header";
		goto bad;
	}
	if (m->h.version != XPROC_VERSION) {
		/* Tell a client of another version why, where it can understand. */
		if (m->h.type == XPROC_ATTACH && !c->part) {
			struct xproc_attach_reply r;

			memset(&r, 0, sizeof(r));
			ovmc_xp_hdr(&r.h, XPROC_ATTACH_REPLY, m->h.seq);
			r.status = -EPROTO;
			reply(c, &r, sizeof(r));
		}
		why = "unsupported version";
		goto bad;
	}
	if (m->h.type >= XPROC_TYPE_COUNT || !handlers[m->h.type].fn) {
		why = "unknown type";
		goto bad;
	}
	fixed = handlers[m->h.type].len;
	if (len < fixed || (len > fixed && !handlers[m->h.type].reports) ||
	    (len == fixed && m->h.type == XPROC_RDMA)) {
		why = "wrong length";
		goto bad;
	}
	if (handlers[m->h.type].attached != (c->part != NULL)) {
		why = c->part ? "already attached" : "not attached";
		goto bad;
	}
	/* Only ATTACH carries descriptors. */
	if (nfds && m->h.type != XPROC_ATTACH) {
		why = "unexpected descriptors";
		goto bad;
	}
	/* Every request's fixed part is a multiple of 8 bytes: aligned. */
	if (len > fixed &&
	    (why = apply_reports(c, (const struct xproc_reports *)(m->raw + fixed), len - fixed)))
		goto bad;
	return handlers[m->h.type].fn(c, m, fds, nfds);
bad:
	ovmc_xp_close_fds(fds, kept);
	slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: %s (%s, %zu bytes, %u fds): dropped",
	     (int)c->pid, why, type_name(m, len), len, nfds);
	return DROP_FAILED;
}

/*
 * The pairs the client posted since the last turn, in order, before
 * anything else it asked: each was answered H_SUCCESS already, so each
 * must succeed. One of an older epoch, or of this one while the link is
 * down, went to a hypervisor end that has closed since: it is dropped, as
 * entries in flight die with their partner. Anything else that would
 * fail is a client that did not keep to its grant: false, and it is gone.
 */
static bool drain_posted(struct ovmc_xproc_conn *c)
{
	uint32_t prod = __atomic_load_n(&c->mb->post_prod, __ATOMIC_ACQUIRE);
	struct ovmc_vmc *v = ovmc_part_vmc(c->part);
	struct ovmc_vmc_node node;
	const char *why = NULL;
	unsigned stale = 0;

	if (prod == c->post_cons)
		return true;
	if (prod - c->post_cons > XPROC_POST_SLOTS)
		why = "more posted pairs than slots";
	else if (!v || ovmc_part_vmc_node(c->part, &node))
		why = "posted pairs without a VMC";
	while (!why && c->post_cons != prod) {
		struct xproc_posted e;
		const struct xproc_call *k = e.call;

		memcpy(&e, &c->mb->post[c->post_cons % XPROC_POST_SLOTS], sizeof(e));
		if (e.reserved || k[0].opcode != OVMC_H_COPY_RDMA || k[0].nargs != 5 ||
		    k[0].reserved || k[0].args[1] != node.liobn_local ||
		    k[0].args[3] != node.liobn_remote || k[1].opcode != OVMC_H_SEND_CRQ ||
		    k[1].nargs != 3 || k[1].reserved) {
			why = "not a posted pair";
			break;
		}
		c->post_cons++;
		if (e.epoch != ovmc_vmc_hv_epoch(v) || !ovmc_vmc_hv_registered(v) ||
		    !ovmc_vmc_partition_registered(v)) {
			stale++;
			continue;
		}
		count_epoch(c, e.epoch);
		if (ovmc_part_hcall(c->part, OVMC_H_COPY_RDMA, k[0].args, 5, NULL) != OVMC_H_SUCCESS ||
		    ovmc_part_hcall(c->part, OVMC_H_SEND_CRQ, k[1].args, 3, NULL) != OVMC_H_SUCCESS) {
			why = "a posted pair failed";
			break;
		}
		c->post_done++;
	}
	if (stale)
		slog(c->srv, OVMC_LOG_DEBUG,
		     "xproc: partition %u: %u posted pairs for a closed hypervisor end dropped",
		     ovmc_part_id(c->part), stale);
	if (why) {
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: %s: dropped", (int)c->pid, why);
		client_drop(c, true);
		return false;
	}
	__atomic_store_n(&c->mb->post_cons, c->post_cons, __ATOMIC_RELEASE);
	return true;
}

enum drained { DRAINED, MORE, GONE };

/* Whether the socket holds another message (the peek takes nothing). */
static bool more_queued(const struct ovmc_xproc_conn *c)
{
	char b;

	return recv(c->fd, &b, 1, MSG_PEEK | MSG_DONTWAIT) >= 0;
}

/*
 * The RDMA messages the client sent on the socket ahead of its request in
 * the mailbox, up to REPORTS_PER_DISPATCH (MORE: the rest next time, the
 * socket is level-triggered). Anything else there now is a second request
 * while one waits: the connection goes (GONE, as at end of stream).
 */
static enum drained drain_reports(struct ovmc_xproc_conn *c)
{
	for (unsigned i = 0;; i++) {
		union xproc_msg m;
		int fds[XPROC_ATTACH_MAX_FDS];
		unsigned nfds;
		bool trunc;
		ssize_t n;

		/* A bound that falls on the last one must not strand the request:
		 * no readiness would come again for it. */
		if (i == REPORTS_PER_DISPATCH)
			return more_queued(c) ? MORE : DRAINED;
		n = ovmc_xp_recv(c->fd, &m, sizeof(m), MSG_DONTWAIT, fds, XPROC_ATTACH_MAX_FDS, &nfds,
				 &trunc);
		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return DRAINED;
		if (n == -EINTR)
			continue;
		if (n > 0 && !trunc && !nfds && (size_t)n >= sizeof(m.h) &&
		    m.h.type == XPROC_RDMA && handle(c, &m, (size_t)n, false, NULL, 0) == KEEP)
			continue;
		close_received(fds, nfds);
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: %s ahead of a mailbox request: dropped",
		     (int)c->pid, n <= 0 ? "end of stream" : "not reports");
		client_drop(c, true);
		return GONE;
	}
}

/*
 * A request in the mailbox, if there is a new one: handled as the same
 * message from the socket would be (true), or there was none (false).
 * Only HCALL and HCALL_PAIR come this way.
 */
static bool serve_mailbox(struct ovmc_xproc_conn *c)
{
	union xproc_msg m;
	uint32_t seq = c->mb_seq;
	bool after_socket = false;
	ssize_t n = ovmc_xp_mb_take(c->mb, &seq, &m, &after_socket);

	if (n == 0)
		return false;
	if (n < 0 || (m.h.type != XPROC_HCALL && m.h.type != XPROC_HCALL_PAIR &&
		      m.h.type != XPROC_SYNC)) {
		slog(c->srv, OVMC_LOG_WARN, "xproc: pid %d: mailbox: %s: dropped", (int)c->pid,
		     n == -EMSGSIZE ? "impossible length"
		     : n < 0	    ? "sequence number not in the header"
				    : "not a mailbox request");
		client_drop(c, true);
		return true;
	}
	if (after_socket) {
		enum drained d = drain_reports(c);

		/* MORE: taken again once the socket is read to its end. */
		if (d != DRAINED)
			return true;
	}
	c->mb_seq = seq;
	c->via_mb = true;
	if (handle(c, &m, (size_t)n, false, NULL, 0) == DROP_FAILED) {
		client_drop(c, true);
		return true;
	}
	c->via_mb = false;
	return true;
}

/*
 * Up to one request per dispatch and connection: its peer waits for the
 * answer before it asks again (one request outstanding), so reading on
 * would only find nothing, at the cost of a system call per hcall. The
 * reports a client sends ahead of its request need no answer: those are
 * read on, up to REPORTS_PER_DISPATCH. A peer that sends more anyway is read again
 * next time (level-triggered), and dropped once its answers fill its
 * queue.
 */
static void serve(struct ovmc_xproc_conn *c)
{
	if (c->mb && c->part && !drain_posted(c))
		return;
	if (c->mb && serve_mailbox(c))
		return;
	for (unsigned i = 0; i < REPORTS_PER_DISPATCH;) {
		union xproc_msg m;
		int fds[XPROC_ATTACH_MAX_FDS];
		unsigned nfds;
		bool trunc;
		ssize_t n = ovmc_xp_recv(c->fd, &m, sizeof(m), MSG_DONTWAIT, fds,
					 XPROC_ATTACH_MAX_FDS, &nfds, &trunc);

		if (n == -EAGAIN || n == -EWOULDBLOCK)
			return;
		if (n == -EINTR)
			continue;
		if (n <= 0) {
			/* SOCK_SEQPACKET: 0 is the end, or an empty message, which
			 * is no request either. */
			close_received(fds, nfds);
			if (c->part)
				slog(c->srv, OVMC_LOG_INFO, "xproc: partition %u: peer gone",
				     ovmc_part_id(c->part));
			client_drop(c, true);
			return;
		}
		switch (handle(c, &m, (size_t)n, trunc, fds, nfds)) {
		case DROP_FAILED:
			client_drop(c, true);
			return;
		case CLOSED:
			return;
		case KEEP:
			break;
		}
		if (m.h.type != XPROC_RDMA)
			return;
		i++;
	}
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Arm the timer for the earliest ATTACH deadline (none: disarmed). */
static void arm_timer(struct ovmc_xproc_server *s)
{
	struct itimerspec its = {0};
	uint64_t next = UINT64_MAX;

	for (struct ovmc_xproc_conn *c = s->clients; c; c = c->next)
		if (!c->part && c->deadline_ms < next)
			next = c->deadline_ms;
	if (next == s->armed_ms)
		return;
	s->armed_ms = next;
	if (next != UINT64_MAX) {
		its.it_value.tv_sec = (time_t)(next / 1000u);
		its.it_value.tv_nsec = (long)(next % 1000u) * 1000000l;
		if (!its.it_value.tv_sec && !its.it_value.tv_nsec)
			its.it_value.tv_nsec = 1;
	}
	timerfd_settime(s->l.tfd, TFD_TIMER_ABSTIME, &its, NULL);
}

/* Connections that said nothing in time go; an attached one never expires. */
static void expire(struct ovmc_xproc_server *s)
{
	uint64_t now = mono_ms(), n;

	if (read(s->l.tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		slog(s, OVMC_LOG_WARN, "xproc: timer: %s", strerror(errno));
	s->armed_ms = UINT64_MAX;
	for (struct ovmc_xproc_conn *c = s->clients, *next; c; c = next) {
		next = c->next;
		if (!c->part && c->deadline_ms <= now) {
			slog(s, OVMC_LOG_WARN,
			     "xproc: pid %d did not attach within %u ms: connection closed",
			     (int)c->pid, s->cfg.attach_timeout_ms);
			client_drop(c, true);
		}
	}
}

/* Tell a peer why it is closed unread: an ATTACH_REPLY with sequence 0. */
static void refuse(struct ovmc_xproc_server *s, int fd, int status)
{
	struct xproc_attach_reply r;

	memset(&r, 0, sizeof(r));
	ovmc_xp_hdr(&r.h, XPROC_ATTACH_REPLY, 0);
	r.status = status;
	if (ovmc_xp_send(fd, &r, sizeof(r), MSG_DONTWAIT, NULL, 0))
		slog(s, OVMC_LOG_DEBUG, "xproc: refusal not delivered");
	close(fd);
}

/* Make room for one more connection; false if every one is attached. */
static bool make_room(struct ovmc_xproc_server *s, pid_t newcomer)
{
	struct ovmc_xproc_conn *oldest = NULL;

	if (s->n_pending < s->cfg.max_pending && s->n_clients < s->cfg.max_clients)
		return true;
	for (struct ovmc_xproc_conn *c = s->clients; c; c = c->next)
		if (!c->part)
			oldest = c;
	if (!oldest)
		return false;
	/* The silent ones must not lock out one that would attach at once. */
	slog(s, OVMC_LOG_WARN,
	     "xproc: %u connections not attached: closed the oldest (pid %d) for pid %d",
	     s->n_pending, (int)oldest->pid, (int)newcomer);
	client_drop(oldest, true);
	return true;
}

static void accept_clients(struct ovmc_xproc_server *s)
{
	for (unsigned i = 0; i < BATCH; i++) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct ovmc_xproc_conn *c;
		int fd = accept4(s->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC), rc;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				slog(s, OVMC_LOG_WARN, "xproc: accept: %s", strerror(errno));
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cl != sizeof(cred)) {
			slog(s, OVMC_LOG_WARN, "xproc: no peer credentials: refused");
			refuse(s, fd, -EACCES);
			continue;
		}
		if (cred.uid != geteuid() && cred.uid != 0) {
			slog(s, OVMC_LOG_WARN, "xproc: pid %d of uid %u refused", (int)cred.pid,
			     (unsigned)cred.uid);
			refuse(s, fd, -EACCES);
			continue;
		}
		if (!make_room(s, cred.pid)) {
			slog(s, OVMC_LOG_WARN, "xproc: %u partitions attached: pid %d refused",
			     s->n_clients, (int)cred.pid);
			refuse(s, fd, -EBUSY);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			slog(s, OVMC_LOG_ERROR, "xproc: out of memory: connection refused");
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->irq_fd = -1;
		c->bell = -1;
		c->pid = cred.pid;
		c->uid = cred.uid;
		c->deadline_ms = mono_ms() + s->cfg.attach_timeout_ms;
		rc = watch(c, fd, EPOLLIN);
		if (rc) {
			slog(s, OVMC_LOG_ERROR, "xproc: watching a connection: %s", strerror(-rc));
			close(fd);
			free(c);
			continue;
		}
		c->next = s->clients;
		s->clients = c;
		s->n_clients++;
		s->n_pending++;
		slog(s, OVMC_LOG_DEBUG, "xproc: pid %d connected", (int)c->pid);
	}
}

void ovmc_xproc_server_serve(struct ovmc_xproc_conn *c)
{
	struct ovmc_xproc_server *s = c->srv;
	unsigned pending = s->n_pending;

	serve(c);
	/* Only an attachment or a departure moves the earliest deadline. */
	if (s->n_pending != pending)
		arm_timer(s);
}

/*
 * A connection's socket and doorbell can both be in one batch, and the
 * first serve() may drop it: the second is left out. Nothing is lost: a
 * doorbell's edge comes after its request was published, and serve()
 * looks at the mailbox first; the socket is level-triggered.
 */
static bool first_event(const struct epoll_event *ev, int i)
{
	for (int j = 0; j < i; j++)
		if (ev[j].data.ptr == ev[i].data.ptr)
			return false;
	return true;
}

void ovmc_xproc_server_dispatch(struct ovmc_xproc_server *s)
{
	struct epoll_event ev[EPOLL_EVENTS];
	int n = epoll_wait(s->l.ep, ev, EPOLL_EVENTS, 0);

	/* Each event touches only its own connection, so dropping one cannot
	 * invalidate another event of this batch; accepting may drop the
	 * oldest silent connection, and expiring any: those come last. */
	for (int i = 0; i < n; i++)
		if (ev[i].data.ptr && ev[i].data.ptr != &timer_tag && first_event(ev, i))
			serve(ev[i].data.ptr);
	for (int i = 0; i < n; i++) {
		if (!ev[i].data.ptr)
			accept_clients(s);
		else if (ev[i].data.ptr == &timer_tag)
			expire(s);
	}
	arm_timer(s);
}

/* ---- listening ---- */

/* A socket file left by a server that died is removed; a live one wins. */
int ovmc_xproc_server_new(const struct ovmc_xproc_server_config *cfg,
			  struct ovmc_xproc_server **out)
{
	struct ovmc_xproc_server *s;
	int rc;

	if (!cfg || !cfg->socket_path || !cfg->machine)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_mem_size)
		s->cfg.max_mem_size = DEFAULT_MAX_MEM;
	if (!s->cfg.max_clients)
		s->cfg.max_clients = DEFAULT_MAX_CLIENTS;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = DEFAULT_MAX_PENDING;
	if (!s->cfg.attach_timeout_ms)
		s->cfg.attach_timeout_ms = DEFAULT_ATTACH_TIMEOUT_MS;
	s->armed_ms = UINT64_MAX;
	rc = ovmc_xp_listener_open(&s->l, cfg->socket_path, SOCK_SEQPACKET, &timer_tag, "xproc", cfg->log,
				   cfg->log_user);
	if (rc) {
		free(s);
		return rc;
	}
	s->cfg.socket_path = s->l.path;
	*out = s;
	return 0;
}

int ovmc_xproc_server_fd(struct ovmc_xproc_server *s)
{
	return s->l.ep;
}

unsigned ovmc_xproc_server_clients(const struct ovmc_xproc_server *s)
{
	return s->n_clients;
}

void ovmc_xproc_server_free(struct ovmc_xproc_server *s)
{
	if (!s)
		return;
	while (s->clients)
		client_drop(s->clients, false);
	ovmc_xp_listener_close(&s->l);
	free(s);
}
