// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The guest link, hypervisor side (guest.h, docs/guest-link.md): one
 * listening socket and its connections in one epoll set. Every connection
 * that sent a valid HELLO is a remote partition of the machine; the
 * connection's end is the partition's end.
 *
 * The peer is QEMU, a process of the same user, but a buggy or hostile one
 * must not crash, block or grow this process: every message goes through
 * the decoder (guest_proto.c) before use, input is buffered up to a bound,
 * descriptors are never accepted, and the one wait (for a DELIVER's answer)
 * has a deadline. Machine callbacks (deliver, hv_state) run inside the
 * hypervisor cores, so they never remove a partition: they mark the
 * connection failed, and dispatch/flush drop it from the top level.
 */
#include "guest_proto.h"
#include "xproc_proto.h"

#include <openvmc/guest.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define DEFAULT_MAX_WINDOW ((size_t)1 << 30)
#define DEFAULT_MAX_CLIENTS 64u
#define DEFAULT_MAX_PENDING 16u
#define DEFAULT_HELLO_TIMEOUT_MS 3000u
#define DEFAULT_HV_QUEUE 256u
/* Input held per connection: what a device sends while one DELIVER waits
 * (its SENDs are bounded by the credit, its RDMA reports by the guest's
 * speed); a full buffer then means a device that does not answer. */
#define INBUF (64u << 10)
/* Messages handled per connection and pass, so one busy device cannot
 * starve the others (epoll is level-triggered: the rest comes next time). */
#define BATCH 256u
#define EPOLL_EVENTS 32

struct conn_stats {
	uint64_t sends, sends_stale, delivers, deliver_dropped, deliver_closed, rdma, credits;
};

struct conn {
	struct conn *next;
	struct ovmc_guest_server *srv;
	int fd;
	pid_t pid;
	enum gl_state state;
	struct ovmc_part *part; /* NULL until HELLO is accepted */
	struct ovmc_vmc *vmc;
	struct gl_hello hello;
	uint64_t deadline_ms; /* until HELLO */
	bool welcomed;	      /* WELCOME sent: HV_STATE may follow */
	bool failed;	      /* to be dropped from the top level */
	bool closing;	      /* its partition is being removed */
	/* What the device may do, as it sees it. */
	bool hv_open;
	uint32_t epoch;
	unsigned credit;
	unsigned crq_entries;
	uint32_t seq;
	struct conn_stats st;
	size_t in_len;
	unsigned char in[INBUF];
};

struct ovmc_guest_server {
	struct ovmc_guest_server_config cfg;
	struct ovmc_xp_listener l; /* its timer: the earliest HELLO deadline */
	/* Newest first, so the last one without a partition is the oldest. */
	struct conn *conns;
	unsigned n_conns;
	unsigned n_pending;
	uint64_t armed_ms;
	struct ovmc_guest_server_stats stats;
};

/* epoll tag of the timer; the listening socket's is NULL, a connection's its own. */
static char timer_tag;

static void __attribute__((format(printf, 3, 4)))
slog(const struct ovmc_guest_server *s, enum ovmc_log_level level, const char *fmt, ...)
{
	va_list ap;

	if (!s->cfg.log)
		return;
	va_start(ap, fmt);
	s->cfg.log(s->cfg.log_user, level, fmt, ap);
	va_end(ap);
}

static uint64_t mono_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* "partition N" once it has one, else "pid N". */
static const char *who(const struct conn *c, char *buf, size_t size)
{
	if (c->part)
		snprintf(buf, size, "partition %u (pid %d)", ovmc_part_id(c->part), (int)c->pid);
	else
		snprintf(buf, size, "pid %d", (int)c->pid);
	return buf;
}

/* The connection is beyond use: said once, dropped from the top level. */
static void __attribute__((format(printf, 3, 4)))
conn_fail(struct conn *c, enum ovmc_log_level level, const char *fmt, ...)
{
	char line[160], name[48];
	va_list ap;

	if (c->failed)
		return;
	c->failed = true;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	slog(c->srv, level, "guest: %s: %s: connection closed", who(c, name, sizeof(name)), line);
}

static void protocol_error(struct conn *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void protocol_error(struct conn *c, const char *fmt, ...)
{
	char line[128];
	va_list ap;

	if (c->failed)
		return;
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	c->srv->stats.protocol_errors++;
	conn_fail(c, OVMC_LOG_WARN, "protocol error: %s", line);
}

static void conn_drop(struct conn *c, bool failed)
{
	struct ovmc_guest_server *s = c->srv;
	struct conn **pp;

	for (pp = &s->conns; *pp && *pp != c; pp = &(*pp)->next)
		;
	if (*pp)
		*pp = c->next;
	s->n_conns--;
	c->closing = true;
	if (c->part) {
		s->stats.disconnects++;
		ovmc_machine_remove_partition(s->cfg.machine, c->part, failed);
	} else {
		s->n_pending--;
	}
	epoll_ctl(s->l.ep, EPOLL_CTL_DEL, c->fd, NULL);
	close(c->fd);
	free(c);
}

/* ---- output ---- */

/* Write all of buf (and `fd` with its first byte), waiting at most until
 * `deadline_ms` for room: a device that does not read fails. */
static int send_all(struct conn *c, const void *buf, size_t len, int fd, uint64_t deadline_ms)
{
	size_t off = 0;

	if (fd >= 0) {
		int rc = ovmc_xp_send(c->fd, buf, len, MSG_DONTWAIT, &fd, 1);

		if (rc) {
			conn_fail(c, OVMC_LOG_WARN, "cannot send %s: %s",
				  gl_type_name(((const struct gl_hdr *)buf)->type), strerror(-rc));
			return rc;
		}
		return 0;
	}
	while (off < len) {
		ssize_t n = send(c->fd, (const char *)buf + off, len - off,
				 MSG_DONTWAIT | MSG_NOSIGNAL);
		struct pollfd pfd = {.fd = c->fd, .events = POLLOUT};
		uint64_t now;

		if (n > 0) {
			off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK) {
			conn_fail(c, errno == EPIPE || errno == ECONNRESET ? OVMC_LOG_INFO
									    : OVMC_LOG_WARN,
				  "send: %s", strerror(errno));
			return -errno;
		}
		now = mono_ms();
		if (now >= deadline_ms || poll(&pfd, 1, (int)(deadline_ms - now)) == 0) {
			conn_fail(c, OVMC_LOG_WARN, "does not read what it is sent (%u ms)",
				  c->srv->cfg.deliver_timeout_ms);
			return -ETIMEDOUT;
		}
	}
	return 0;
}

static int send_msg(struct conn *c, enum gl_type type, uint32_t seq, const void *body)
{
	unsigned char buf[GL_MAX_MSG];
	size_t len = gl_encode(buf, type, seq, body);

	if (c->failed || c->closing)
		return -ENOTCONN;
	return send_all(c, buf, len, -1, mono_ms() + c->srv->cfg.deliver_timeout_ms);
}

/* ---- input ---- */

/* Read what fits; 0 at end of stream, -ENOBUFS when the buffer is full. */
static ssize_t conn_read(struct conn *c)
{
	int fds[4];
	unsigned nfds;
	bool trunc;
	ssize_t n;

	if (c->in_len == INBUF)
		return -ENOBUFS;
	n = ovmc_xp_recv(c->fd, c->in + c->in_len, INBUF - c->in_len, MSG_DONTWAIT, fds, 4,
			 &nfds, &trunc);
	ovmc_xp_close_fds(fds, nfds < 4 ? nfds : 4);
	if (n > 0 && nfds) {
		protocol_error(c, "descriptors with a message (%u)", nfds);
		return -EPROTO;
	}
	if (n > 0)
		c->in_len += (size_t)n;
	return n;
}

/* The first whole message at in[off..]: 1 (size in *used), 0 (not yet), -1 (failed). */
static int next_msg(struct conn *c, size_t off, struct gl_msg *m, size_t *used)
{
	enum gl_error e = gl_decode(c->in + off, c->in_len - off, GL_AT_HV, c->state, m, used);
	struct gl_hdr h;

	if (e == GL_OK)
		return *used ? 1 : 0;
	memcpy(&h, c->in + off, sizeof(h));
	protocol_error(c, "%s (type %u %s, length %u)", gl_error_name(e), h.type,
		       gl_type_name(h.type), h.len);
	return -1;
}

static void consume(struct conn *c, size_t off, size_t len)
{
	memmove(c->in + off, c->in + off + len, c->in_len - off - len);
	c->in_len -= len;
}

/* ---- the machine's callbacks ---- */

/* Find the answer to DELIVER `seq` in the input: 1 (*rc), 0 (not there yet), -1 (failed). */
static int take_reply(struct conn *c, uint32_t seq, long *rc)
{
	size_t off = 0, used;
	struct gl_msg m;

	for (;;) {
		int r = next_msg(c, off, &m, &used);

		if (r <= 0)
			return r;
		if (m.h.type != GL_DELIVER_RC) {
			off += used;
			continue;
		}
		consume(c, off, used);
		if (m.h.seq != seq) {
			protocol_error(c, "DELIVER_RC for %u, waiting for %u", m.h.seq, seq);
			return -1;
		}
		*rc = (long)m.b.deliver_rc.rc;
		if (*rc != OVMC_H_SUCCESS && *rc != OVMC_H_DROPPED && *rc != OVMC_H_CLOSED) {
			protocol_error(c, "DELIVER_RC %lld", (long long)m.b.deliver_rc.rc);
			return -1;
		}
		return 1;
	}
}

static long cb_deliver(void *arg, const uint8_t entry[16])
{
	struct conn *c = arg;
	struct ovmc_guest_server *s = c->srv;
	struct gl_deliver d;
	uint64_t deadline;
	long rc;

	if (c->failed || c->closing || !c->welcomed)
		return OVMC_H_CLOSED;
	if (++c->seq == 0)
		c->seq = 1;
	memcpy(d.entry, entry, sizeof(d.entry));
	if (send_msg(c, GL_DELIVER, c->seq, &d))
		return OVMC_H_CLOSED;
	s->stats.delivers++;
	c->st.delivers++;
	deadline = mono_ms() + s->cfg.deliver_timeout_ms;
	for (;;) {
		struct pollfd pfd = {.fd = c->fd, .events = POLLIN};
		int r = take_reply(c, c->seq, &rc);
		uint64_t now;
		ssize_t n;

		if (r < 0)
			return OVMC_H_CLOSED;
		if (r > 0)
			break;
		now = mono_ms();
		if (now >= deadline || poll(&pfd, 1, (int)(deadline - now)) == 0) {
			s->stats.deliver_timeouts++;
			conn_fail(c, OVMC_LOG_WARN, "no answer to DELIVER within %u ms",
				  s->cfg.deliver_timeout_ms);
			return OVMC_H_CLOSED;
		}
		n = conn_read(c);
		if (n == 0) {
			conn_fail(c, OVMC_LOG_INFO, "device gone");
			return OVMC_H_CLOSED;
		}
		if (n == -ENOBUFS) {
			conn_fail(c, OVMC_LOG_WARN, "%u bytes arrived, no answer to DELIVER", INBUF);
			return OVMC_H_CLOSED;
		}
		if (n < 0 && n != -EAGAIN && n != -EINTR) {
			if (!c->failed)
				conn_fail(c, OVMC_LOG_WARN, "receive: %s", strerror((int)-n));
			return OVMC_H_CLOSED;
		}
	}
	if (rc == OVMC_H_DROPPED) {
		s->stats.deliver_dropped++;
		c->st.deliver_dropped++;
	} else if (rc == OVMC_H_CLOSED) {
		s->stats.deliver_closed++;
		c->st.deliver_closed++;
	}
	return rc;
}

static void cb_hv_state(void *arg, bool open, uint32_t epoch, unsigned credit)
{
	struct conn *c = arg;
	struct gl_hv_state m = {.hv_open = open, .epoch = epoch, .credit = open ? credit : 0};

	c->hv_open = open;
	c->epoch = epoch;
	c->credit = m.credit;
	/* Before WELCOME, WELCOME itself says it. */
	if (c->welcomed)
		send_msg(c, GL_HV_STATE, 0, &m);
}

/* ---- messages from the device ---- */

static int hello_status(struct conn *c, const struct gl_hello *h)
{
	struct ovmc_guest_server *s = c->srv;

	if (!h->local_window_size || h->local_window_size > s->cfg.max_window ||
	    h->hv_window_size > s->cfg.max_window || h->hv_window_size > UINT32_MAX ||
	    h->liobn_local == h->hv_liobn)
		return -EINVAL;
	if (h->hv_window_size < s->cfg.min_hv_window) {
		slog(s, OVMC_LOG_WARN,
		     "guest: pid %d: hypervisor window of %llu bytes, the buffers need %zu",
		     (int)c->pid, (unsigned long long)h->hv_window_size, s->cfg.min_hv_window);
		return -ENOSPC;
	}
	return 0;
}

static void on_hello(struct conn *c, const struct gl_hello *h)
{
	struct ovmc_guest_server *s = c->srv;
	struct ovmc_part_remote remote = {
		.deliver = cb_deliver,
		.hv_state = cb_hv_state,
		.arg = c,
		.unit_address = h->unit_address,
		.liobn_local = h->liobn_local,
		.liobn_remote = h->hv_liobn,
	};
	struct ovmc_part_config pc = {
		.mem_size = (size_t)h->local_window_size,
		.vmc_present = true,
		.request_vmc_rc = OVMC_H_SUCCESS,
		.drc_index = h->drc_index,
		.hv_window_size = (size_t)h->hv_window_size,
		.hv_queue_entries = s->cfg.hv_queue_entries,
		.remote = &remote,
	};
	struct gl_welcome w = {0};
	unsigned char buf[GL_MAX_MSG];
	size_t len;
	int rc = hello_status(c, h);

	c->hello = *h;
	if (rc == 0)
		rc = ovmc_machine_add_partition(s->cfg.machine, &pc, &c->part);
	if (rc == 0)
		c->vmc = ovmc_part_vmc(c->part);
	if (rc) {
		s->stats.hello_refused++;
		slog(s, OVMC_LOG_WARN, "guest: pid %d: HELLO refused: %s", (int)c->pid,
		     strerror(-rc));
		w.status = rc;
		len = gl_encode(buf, GL_WELCOME, 0, &w);
		send_all(c, buf, len, -1, mono_ms() + s->cfg.deliver_timeout_ms);
		c->failed = true;
		return;
	}
	s->n_pending--;
	c->deadline_ms = 0;
	c->state = GL_ATTACHED;
	w.partition_id = ovmc_part_id(c->part);
	w.hv_queue_entries = s->cfg.hv_queue_entries;
	w.hv_open = c->hv_open;
	w.epoch = c->epoch;
	len = gl_encode(buf, GL_WELCOME, 0, &w);
	if (send_all(c, buf, len, ovmc_vmc_hv_memfd(c->vmc), 0))
		return;
	c->welcomed = true;
	slog(s, OVMC_LOG_INFO,
	     "guest: pid %d attached as partition %u (unit 0x%x, windows %llu + %llu bytes)",
	     (int)c->pid, w.partition_id, h->unit_address,
	     (unsigned long long)h->local_window_size, (unsigned long long)h->hv_window_size);
}

static void on_crq(struct conn *c, unsigned entries)
{
	long rc = ovmc_part_remote_crq(c->part, entries);

	if (rc != OVMC_H_SUCCESS && rc != OVMC_H_CLOSED) {
		protocol_error(c, "%s of %u entries refused (%s)", entries ? "CRQ_REG" : "CRQ_FREE",
			       entries, ovmc_hcall_rc_name(rc));
		return;
	}
	c->crq_entries = entries;
}

static void on_send(struct conn *c, const struct gl_send *m)
{
	struct ovmc_guest_server *s = c->srv;
	uint64_t args[3] = {c->hello.unit_address};

	if (m->epoch > c->epoch) {
		protocol_error(c, "SEND of epoch %u, the newest is %u", m->epoch, c->epoch);
		return;
	}
	if (m->epoch != c->epoch || !c->hv_open) {
		/* Sent to a hypervisor end that has closed since: it dies in flight. */
		s->stats.sends_stale++;
		c->st.sends_stale++;
		return;
	}
	if (!c->credit) {
		protocol_error(c, "SEND beyond its credit (%u entries)", s->cfg.hv_queue_entries);
		return;
	}
	c->credit--;
	s->stats.sends++;
	c->st.sends++;
	ovmc_entry_to_words(m->entry, &args[1], &args[2]);
	ovmc_part_hcall(c->part, OVMC_H_SEND_CRQ, args, 3, NULL);
}

static void on_rdma(struct conn *c, const struct gl_rdma *m)
{
	uint64_t args[5] = {m->len, m->src_liobn, m->src_ioba, m->dst_liobn, m->dst_ioba};

	if (ovmc_part_remote_rdma(c->part, (long)m->rc, args)) {
		protocol_error(c, "RDMA report of a copy that cannot have succeeded");
		return;
	}
	c->srv->stats.rdma_reports++;
	c->st.rdma++;
}

static void handle(struct conn *c, const struct gl_msg *m)
{
	switch (m->h.type) {
	case GL_HELLO:
		on_hello(c, &m->b.hello);
		break;
	case GL_CRQ_REG:
		if (!m->b.crq_reg.queue_entries)
			protocol_error(c, "CRQ_REG of 0 entries");
		else
			on_crq(c, m->b.crq_reg.queue_entries);
		break;
	case GL_CRQ_FREE:
		on_crq(c, 0);
		break;
	case GL_SEND:
		on_send(c, &m->b.send);
		break;
	case GL_RDMA:
		on_rdma(c, &m->b.rdma);
		break;
	default:
		/* The decoder lets only DELIVER_RC through besides: none is awaited. */
		protocol_error(c, "%s %u without a DELIVER waiting", gl_type_name(m->h.type),
			       m->h.seq);
		break;
	}
}

/* Act on the whole messages buffered, at most BATCH. */
static void process(struct conn *c)
{
	size_t off = 0, used;
	struct gl_msg m;

	for (unsigned i = 0; i < BATCH && !c->failed; i++) {
		if (next_msg(c, off, &m, &used) <= 0)
			break;
		off += used;
		handle(c, &m);
	}
	consume(c, 0, off);
}

static void serve(struct conn *c)
{
	ssize_t n = conn_read(c);

	if (n == 0) {
		if (c->part)
			slog(c->srv, OVMC_LOG_INFO, "guest: partition %u: device gone",
			     ovmc_part_id(c->part));
		conn_drop(c, true);
		return;
	}
	if (n < 0 && n != -EAGAIN && n != -EINTR && n != -ENOBUFS && !c->failed)
		conn_fail(c, OVMC_LOG_WARN, "receive: %s", strerror((int)-n));
	if (!c->failed)
		process(c);
	if (c->failed)
		conn_drop(c, true);
}

/* ---- connections ---- */

static void arm_timer(struct ovmc_guest_server *s)
{
	struct itimerspec its = {0};
	uint64_t next = UINT64_MAX;

	for (struct conn *c = s->conns; c; c = c->next)
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

static void expire(struct ovmc_guest_server *s)
{
	uint64_t now = mono_ms(), n;

	if (read(s->l.tfd, &n, sizeof(n)) < 0 && errno != EAGAIN)
		slog(s, OVMC_LOG_WARN, "guest: timer: %s", strerror(errno));
	s->armed_ms = UINT64_MAX;
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->part && c->deadline_ms <= now) {
			s->stats.hello_timeouts++;
			slog(s, OVMC_LOG_WARN,
			     "guest: pid %d sent no HELLO within %u ms: connection closed",
			     (int)c->pid, s->cfg.hello_timeout_ms);
			conn_drop(c, true);
		}
	}
}

/* Tell a peer why it is closed unread: a WELCOME with an error. */
static void refuse(struct ovmc_guest_server *s, int fd, int status)
{
	unsigned char buf[GL_MAX_MSG];
	struct gl_welcome w = {.status = status};
	size_t len = gl_encode(buf, GL_WELCOME, 0, &w);

	s->stats.refused++;
	if (send(fd, buf, len, MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)len)
		slog(s, OVMC_LOG_DEBUG, "guest: refusal not delivered");
	close(fd);
}

static bool make_room(struct ovmc_guest_server *s, pid_t newcomer)
{
	struct conn *oldest = NULL;

	if (s->n_pending < s->cfg.max_pending && s->n_conns < s->cfg.max_clients)
		return true;
	for (struct conn *c = s->conns; c; c = c->next)
		if (!c->part)
			oldest = c;
	if (!oldest)
		return false;
	s->stats.hello_timeouts++;
	slog(s, OVMC_LOG_WARN,
	     "guest: %u connections without HELLO: closed the oldest (pid %d) for pid %d",
	     s->n_pending, (int)oldest->pid, (int)newcomer);
	conn_drop(oldest, true);
	return true;
}

static void accept_conns(struct ovmc_guest_server *s)
{
	for (unsigned i = 0; i < 16; i++) {
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct epoll_event ev = {.events = EPOLLIN};
		struct conn *c;
		int fd = accept4(s->l.fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR &&
			    errno != ECONNABORTED)
				slog(s, OVMC_LOG_WARN, "guest: accept: %s", strerror(errno));
			break;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) < 0 || cl != sizeof(cred)) {
			slog(s, OVMC_LOG_WARN, "guest: no peer credentials: refused");
			refuse(s, fd, -EACCES);
			continue;
		}
		if (cred.uid != geteuid() && cred.uid != 0) {
			slog(s, OVMC_LOG_WARN, "guest: pid %d of uid %u refused", (int)cred.pid,
			     (unsigned)cred.uid);
			refuse(s, fd, -EACCES);
			continue;
		}
		if (!make_room(s, cred.pid)) {
			slog(s, OVMC_LOG_WARN, "guest: %u guests attached: pid %d refused",
			     s->n_conns, (int)cred.pid);
			refuse(s, fd, -EBUSY);
			continue;
		}
		c = calloc(1, sizeof(*c));
		if (!c) {
			slog(s, OVMC_LOG_ERROR, "guest: out of memory: connection refused");
			s->stats.refused++;
			close(fd);
			continue;
		}
		c->srv = s;
		c->fd = fd;
		c->pid = cred.pid;
		c->state = GL_AWAIT_HELLO;
		c->deadline_ms = mono_ms() + s->cfg.hello_timeout_ms;
		ev.data.ptr = c;
		if (epoll_ctl(s->l.ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
			slog(s, OVMC_LOG_ERROR, "guest: epoll: %s", strerror(errno));
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		s->conns = c;
		s->n_conns++;
		s->n_pending++;
		s->stats.accepted++;
		slog(s, OVMC_LOG_DEBUG, "guest: pid %d connected", (int)c->pid);
	}
}

void ovmc_guest_server_dispatch(struct ovmc_guest_server *s)
{
	struct epoll_event ev[EPOLL_EVENTS];
	int n = epoll_wait(s->l.ep, ev, EPOLL_EVENTS, 0);

	/* Each event touches only its own connection; accepting and expiring
	 * may drop any, so they come last. */
	for (int i = 0; i < n; i++)
		if (ev[i].data.ptr && ev[i].data.ptr != &timer_tag)
			serve(ev[i].data.ptr);
	for (int i = 0; i < n; i++) {
		if (!ev[i].data.ptr)
			accept_conns(s);
		else if (ev[i].data.ptr == &timer_tag)
			expire(s);
	}
	arm_timer(s);
}

void ovmc_guest_server_flush(struct ovmc_guest_server *s)
{
	for (struct conn *c = s->conns, *next; c; c = next) {
		next = c->next;
		if (!c->failed && c->welcomed) {
			unsigned n = ovmc_vmc_hv_take_credit(c->vmc);

			if (n && c->hv_open) {
				struct gl_credit m = {.epoch = c->epoch, .n = n};

				c->credit += n;
				s->stats.credits += n;
				c->st.credits += n;
				send_msg(c, GL_CREDIT, 0, &m);
			}
		}
		/* What arrived while a DELIVER waited. */
		if (!c->failed && c->in_len)
			process(c);
		if (c->failed)
			conn_drop(c, true);
	}
}

/* ---- listening ---- */

int ovmc_guest_server_new(const struct ovmc_guest_server_config *cfg,
			  struct ovmc_guest_server **out)
{
	struct ovmc_guest_server *s;
	int rc;

	if (!cfg || !cfg->socket_path || !cfg->machine)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_window)
		s->cfg.max_window = DEFAULT_MAX_WINDOW;
	if (!s->cfg.hv_queue_entries)
		s->cfg.hv_queue_entries = DEFAULT_HV_QUEUE;
	if (!s->cfg.max_clients)
		s->cfg.max_clients = DEFAULT_MAX_CLIENTS;
	if (!s->cfg.max_pending)
		s->cfg.max_pending = DEFAULT_MAX_PENDING;
	if (!s->cfg.hello_timeout_ms)
		s->cfg.hello_timeout_ms = DEFAULT_HELLO_TIMEOUT_MS;
	if (!s->cfg.deliver_timeout_ms)
		s->cfg.deliver_timeout_ms = OVMC_GUEST_DEFAULT_TIMEOUT_MS;
	s->armed_ms = UINT64_MAX;
	rc = ovmc_xp_listener_open(&s->l, cfg->socket_path, SOCK_STREAM, &timer_tag, "guest", cfg->log,
				   cfg->log_user);
	if (rc) {
		free(s);
		return rc;
	}
	s->cfg.socket_path = s->l.path;
	*out = s;
	return 0;
}

int ovmc_guest_server_fd(struct ovmc_guest_server *s)
{
	return s->l.ep;
}

unsigned ovmc_guest_server_clients(const struct ovmc_guest_server *s)
{
	return s->n_conns;
}

void ovmc_guest_server_stats(const struct ovmc_guest_server *s,
			     struct ovmc_guest_server_stats *out)
{
	*out = s->stats;
}

int ovmc_guest_server_guest(const struct ovmc_guest_server *s, unsigned index,
			    struct ovmc_guest_info *out)
{
	for (const struct conn *c = s->conns; c; c = c->next) {
		if (!c->part || index--)
			continue;
		*out = (struct ovmc_guest_info){
			.partition = ovmc_part_id(c->part),
			.pid = (int)c->pid,
			.unit_address = c->hello.unit_address,
			.liobn_local = c->hello.liobn_local,
			.hv_liobn = c->hello.hv_liobn,
			.epoch = c->epoch,
			.hv_open = c->hv_open,
			.credit = c->credit,
			.crq_entries = c->crq_entries,
			.sends = c->st.sends,
			.sends_stale = c->st.sends_stale,
			.delivers = c->st.delivers,
			.deliver_dropped = c->st.deliver_dropped,
			.deliver_closed = c->st.deliver_closed,
			.rdma_reports = c->st.rdma,
			.credits = c->st.credits,
		};
		return 0;
	}
	return -ENOENT;
}

void ovmc_guest_server_status(const struct ovmc_guest_server *s, FILE *out)
{
	struct ovmc_guest_info g;

	const struct ovmc_guest_server_stats *t = &s->stats;

	fprintf(out,
		"guest-link: connections %u accepted %llu refused %llu hello-timeouts %llu "
		"hello-refused %llu protocol-errors %llu delivers %llu deliver-timeouts %llu "
		"deliver-dropped %llu deliver-closed %llu sends %llu sends-stale %llu "
		"credits %llu rdma-reports %llu disconnects %llu\n",
		s->n_conns, (unsigned long long)t->accepted, (unsigned long long)t->refused,
		(unsigned long long)t->hello_timeouts, (unsigned long long)t->hello_refused,
		(unsigned long long)t->protocol_errors, (unsigned long long)t->delivers,
		(unsigned long long)t->deliver_timeouts, (unsigned long long)t->deliver_dropped,
		(unsigned long long)t->deliver_closed, (unsigned long long)t->sends,
		(unsigned long long)t->sends_stale, (unsigned long long)t->credits,
		(unsigned long long)t->rdma_reports, (unsigned long long)t->disconnects);
	for (unsigned i = 0; ovmc_guest_server_guest(s, i, &g) == 0; i++)
		fprintf(out,
			"guest: partition %u pid %d unit 0x%x liobn 0x%x hv-liobn 0x%x epoch %u "
			"hv-open %u credit %u crq %u sends %llu sends-stale %llu delivers %llu "
			"deliver-dropped %llu deliver-closed %llu rdma-reports %llu credits %llu\n",
			g.partition, g.pid, g.unit_address, g.liobn_local, g.hv_liobn, g.epoch,
			g.hv_open, g.credit, g.crq_entries, (unsigned long long)g.sends,
			(unsigned long long)g.sends_stale, (unsigned long long)g.delivers,
			(unsigned long long)g.deliver_dropped, (unsigned long long)g.deliver_closed,
			(unsigned long long)g.rdma_reports, (unsigned long long)g.credits);
}

void ovmc_guest_server_free(struct ovmc_guest_server *s)
{
	if (!s)
		return;
	while (s->conns)
		conn_drop(s->conns, false);
	ovmc_xp_listener_close(&s->l);
	free(s);
}
