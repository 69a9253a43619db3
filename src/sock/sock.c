// SPDX-License-Identifier: GPL-2.0-or-later
/* Session-socket front-end (sock.h); the protocol is docs/session.md. */
#include "sock.h"

#include "json.h"
#include "log.h"
#include "sess_proto.h"

#include <openvmc/ibmvmc.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define COMPONENT "session"
#define DEFAULT_MAX_CONNS 256u
#define DEFAULT_HELLO_MS 5000u
#define NS_PER_MS 1000000ull
/* Requests handled per wake-up of one connection before the others get a turn. */
#define BATCH 16
/* One log line per kind of trouble and second; the rest are counted. */
#define LOG_INTERVAL_NS 1000000000ull
/* Room for a pushed record and its overhead twice over: a send never waits. */
#define DATA_SNDBUF (4 * (int)OVMC_SESS_MAX_MSG)
/* Descriptors a request may carry; more are closed and the request refused. */
#define MAX_FDS 4

enum conn_kind { CONN_NEW, CONN_DATA, CONN_CTL };

struct conn {
	struct ovmc_sock *s;
	int fd;
	enum conn_kind kind;
	uint64_t deadline;          /* CONN_NEW: the HELLO is due */
	struct ovmc_drv_file *file; /* CONN_DATA */
	uint64_t cookie;            /* CONN_DATA: SO_COOKIE of the client's end */
	bool inflight;              /* a record is pushed and not acknowledged */
	bool queued;                /* on the list of connections to push to */
	pid_t pid;
	uid_t uid;
	struct conn *prev, *next, *queue_next;
};

/* Rate-limited logging of one kind of trouble. */
struct limiter {
	uint64_t last;
	uint64_t suppressed;
};

struct sock_stats {
	uint64_t accepted, refused_cred, refused_full, timed_out;
	uint64_t files, ctls, requests, records, acks;
	uint64_t truncated_reads, truncated_bytes, protocol_errors, lost;
};

struct ovmc_sock {
	struct ovmc_sock_config cfg;
	char *path;
	struct ovmc_loop *loop;
	struct ovmc_drv *drv;
	int lfd;
	dev_t sock_dev;
	ino_t sock_ino;
	uid_t uid;
	gid_t gid;
	struct timespec birth;
	struct conn *conns;
	unsigned n_conns, n_files;
	struct conn *ready_head, *ready_tail;
	uint8_t *rbuf; /* one message, or one request */
	struct limiter lim_refused, lim_full, lim_proto, lim_trunc;
	struct sock_stats st;
};

static uint64_t mono_ns(void)
{
	return ovmc_now_ns();
}

static void __attribute__((format(printf, 4, 5)))
limited(struct ovmc_sock *s, struct limiter *l, enum ovmc_log_level level, const char *fmt, ...)
{
	uint64_t now = mono_ns();
	char line[384];
	va_list ap;

	if (l->last && now - l->last < LOG_INTERVAL_NS) {
		l->suppressed++;
		return;
	}
	va_start(ap, fmt);
	vsnprintf(line, sizeof(line), fmt, ap);
	va_end(ap);
	if (l->suppressed)
		ovmc_log(level, COMPONENT, "%s (and %llu more like it since the last report)", line,
			 (unsigned long long)l->suppressed);
	else
		ovmc_log(level, COMPONENT, "%s", line);
	l->last = now;
	l->suppressed = 0;
	(void)s;
}

static void protocol_error(struct conn *c, const char *what)
{
	c->s->st.protocol_errors++;
	limited(c->s, &c->s->lim_proto, OVMC_LOG_WARN,
		"protocol error from pid %d (uid %u): %s; connection dropped", (int)c->pid,
		(unsigned)c->uid, what);
}

static uint32_t read_mtu(const struct ovmc_sock *s)
{
	struct ovmc_drv_negotiated neg;

	/* The same limit the driver's read() applies. */
	if (ovmc_drv_state(s->drv) != OVMC_DRV_READY)
		return s->cfg.max_mtu;
	ovmc_drv_negotiated(s->drv, &neg);
	return neg.mtu;
}

/* ---- connections ---- */

static void queue_remove(struct ovmc_sock *s, struct conn *c)
{
	struct conn **pp = &s->ready_head;

	if (!c->queued)
		return;
	while (*pp != c)
		pp = &(*pp)->queue_next;
	*pp = c->queue_next;
	if (s->ready_tail == c) {
		s->ready_tail = NULL;
		for (struct conn *x = s->ready_head; x; x = x->queue_next)
			s->ready_tail = x;
	}
	c->queue_next = NULL;
	c->queued = false;
}

static void conn_destroy(struct conn *c)
{
	struct ovmc_sock *s = c->s;

	queue_remove(s, c);
	ovmc_loop_del(s->loop, c->fd);
	close(c->fd);
	if (c->file) {
		ovmc_drv_close(s->drv, c->file, mono_ns());
		s->n_files--;
	}
	if (c->prev)
		c->prev->next = c->next;
	else
		s->conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	s->n_conns--;
	free(c);
}

static struct conn *conn_by_file(struct ovmc_sock *s, const struct ovmc_drv_file *f)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->kind == CONN_DATA && c->file == f)
			return c;
	return NULL;
}

static struct conn *conn_by_cookie(struct ovmc_sock *s, uint64_t cookie)
{
	for (struct conn *c = s->conns; c; c = c->next)
		if (c->kind == CONN_DATA && c->cookie == cookie)
			return c;
	return NULL;
}

/*
 * Give the reader the next message, if the previous one was taken. After a
 * reset, once every message delivered before it is gone, the connection is
 * shut down and closed: the reader sees end of file and POLLHUP, and its
 * library learns from the control connection that the file was reset.
 * Returns false if the connection is gone.
 */
static bool push(struct conn *c)
{
	struct ovmc_sock *s = c->s;
	ssize_t n;

	if (c->inflight)
		return true;
	n = ovmc_drv_read(s->drv, c->file, s->rbuf, read_mtu(s), mono_ns());
	if (n == -EBADFD) {
		shutdown(c->fd, SHUT_RDWR);
		conn_destroy(c);
		return false;
	}
	if (n <= 0)
		return true;
	if (send(c->fd, s->rbuf, (size_t)n, MSG_DONTWAIT | MSG_NOSIGNAL) != n) {
		int err = errno;

		/* The buffer holds two whole records: a full one means the
		 * reader's end is broken. The message cannot be handed over. */
		if (err != EPIPE && err != ECONNRESET) {
			s->st.lost++;
			ovmc_log(OVMC_LOG_ERROR, COMPONENT,
				 "a %zd-byte message for pid %d is lost: %s; closing its file", n,
				 (int)c->pid, strerror(err));
		}
		conn_destroy(c);
		return false;
	}
	s->st.records++;
	c->inflight = true;
	return true;
}

bool ovmc_sock_file_event(struct ovmc_sock *s, struct ovmc_drv_file *f, unsigned events)
{
	struct conn *c = conn_by_file(s, f);

	if (!c)
		return false;
	if ((events & (POLLIN | POLLHUP)) && !c->inflight && !c->queued) {
		c->queued = true;
		if (s->ready_tail)
			s->ready_tail->queue_next = c;
		else
			s->ready_head = c;
		s->ready_tail = c;
	}
	return true;
}

void ovmc_sock_flush(struct ovmc_sock *s)
{
	while (s->ready_head) {
		struct conn *c = s->ready_head;

		s->ready_head = c->queue_next;
		if (!s->ready_head)
			s->ready_tail = NULL;
		c->queue_next = NULL;
		c->queued = false;
		push(c);
	}
}

/* ---- receiving ---- */

static void close_fds(const struct msghdr *m)
{
	for (const struct cmsghdr *cm = CMSG_FIRSTHDR(m); cm;
	     cm = CMSG_NXTHDR((struct msghdr *)m, (struct cmsghdr *)cm)) {
		if (cm->cmsg_level == SOL_SOCKET && cm->cmsg_type == SCM_RIGHTS) {
			size_t n = (cm->cmsg_len - CMSG_LEN(0)) / sizeof(int);
			const int *fds = (const int *)(const void *)CMSG_DATA(cm);

			for (size_t i = 0; i < n; i++)
				close(fds[i]);
		}
	}
}

/* The single descriptor a record carried, or -1 (any others are closed). */
static int one_fd(const struct msghdr *m)
{
	const struct cmsghdr *cm = CMSG_FIRSTHDR(m);
	int fd;

	if (!cm || cm->cmsg_level != SOL_SOCKET || cm->cmsg_type != SCM_RIGHTS ||
	    cm->cmsg_len != CMSG_LEN(sizeof(int)) || CMSG_NXTHDR((struct msghdr *)m,
								 (struct cmsghdr *)cm)) {
		close_fds(m);
		return -1;
	}
	memcpy(&fd, CMSG_DATA(cm), sizeof(fd));
	return fd;
}

/*
 * One record into s->rbuf. Returns its length, 0 at end of stream, -EAGAIN,
 * -EMSGSIZE for a record too long or descriptors cut off (they were closed),
 * or another -errno. *fd is the one descriptor it carried, or -1.
 */
static ssize_t recv_record(struct conn *c, size_t max, int *fd)
{
	union {
		char buf[CMSG_SPACE(MAX_FDS * sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct iovec iov = {.iov_base = c->s->rbuf, .iov_len = max};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1,
			   .msg_control = ctl.buf, .msg_controllen = sizeof(ctl.buf)};
	ssize_t n = recvmsg(c->fd, &m, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);

	*fd = -1;
	if (n < 0)
		return -errno;
	if (m.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) {
		close_fds(&m);
		return -EMSGSIZE;
	}
	if (m.msg_controllen)
		*fd = one_fd(&m);
	return n;
}

static int send_reply(struct conn *c, const struct ovmc_sess_reply *r)
{
	/* Replies are small and each waits for its request: a client that
	 * lets them pile up past the socket buffer is dropped. */
	if (send(c->fd, r, sizeof(*r), MSG_DONTWAIT | MSG_NOSIGNAL) != (ssize_t)sizeof(*r))
		return -errno;
	return 0;
}

static void fill_reply(const struct ovmc_sock *s, struct ovmc_sess_reply *r, int64_t rc)
{
	*r = (struct ovmc_sess_reply){
		.hdr = OVMC_SESS_HDR(OVMC_SESS_REPLY),
		.rc = rc,
		.mtu = read_mtu(s),
		.mode = (uint32_t)(s->cfg.mode & 07777),
		.uid = (uint32_t)s->uid,
		.gid = (uint32_t)s->gid,
		.birth_sec = (int64_t)s->birth.tv_sec,
		.birth_nsec = (int64_t)s->birth.tv_nsec,
	};
}

static int cookie_of(int fd, uint64_t *cookie)
{
	socklen_t len = sizeof(*cookie);

	if (getsockopt(fd, SOL_SOCKET, SO_COOKIE, cookie, &len) != 0 || len != sizeof(*cookie))
		return -errno ? -errno : -EINVAL;
	return 0;
}

/* HELLO: the connection says what it is. Returns false if it was dropped. */
static bool on_hello(struct conn *c, ssize_t n, int fd)
{
	struct ovmc_sock *s = c->s;
	const struct ovmc_sess_req *req = (const void *)s->rbuf;
	struct ovmc_sess_reply r;
	uint64_t cookie = 0;
	int rc;

	if (n != (ssize_t)sizeof(*req) || req->hdr.magic != OVMC_SESS_MAGIC ||
	    req->hdr.version != OVMC_SESS_VERSION ||
	    (req->hdr.type != OVMC_SESS_HELLO_DATA && req->hdr.type != OVMC_SESS_HELLO_CTL)) {
		if (fd >= 0)
			close(fd);
		protocol_error(c, "no valid HELLO");
		conn_destroy(c);
		return false;
	}
	if (req->hdr.type == OVMC_SESS_HELLO_CTL) {
		if (fd >= 0)
			close(fd);
		c->kind = CONN_CTL;
		s->st.ctls++;
		fill_reply(s, &r, 0);
		goto reply;
	}
	/* The client's own end names the file in later requests. */
	rc = fd < 0 ? -EINVAL : cookie_of(fd, &cookie);
	if (fd >= 0)
		close(fd);
	if (rc) {
		protocol_error(c, "HELLO_DATA without its socket");
		conn_destroy(c);
		return false;
	}
	if (conn_by_cookie(s, cookie)) {
		protocol_error(c, "HELLO_DATA claims a file that is taken");
		conn_destroy(c);
		return false;
	}
	rc = ovmc_drv_open(s->drv, &c->file);
	fill_reply(s, &r, rc);
	if (rc == 0) {
		int size = DATA_SNDBUF;

		setsockopt(c->fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
		c->kind = CONN_DATA;
		c->cookie = cookie;
		s->n_files++;
		s->st.files++;
	}
reply:
	c->deadline = OVMC_TIME_NEVER;
	if (send_reply(c, &r) != 0 || r.rc != 0) {
		conn_destroy(c);
		return false;
	}
	return true;
}

/* ---- requests ---- */

static int64_t do_request(struct conn *c, const struct ovmc_sess_req *req, size_t n,
			  struct conn *fc, struct ovmc_sess_reply *r)
{
	struct ovmc_sock *s = c->s;
	uint64_t now = mono_ns();
	const uint8_t *payload = (const uint8_t *)(req + 1);
	size_t plen = n - sizeof(*req);
	/* s->rbuf holds the request: a push below reuses it. */
	uint32_t arg = req->arg;
	struct ovmc_query q;
	uint32_t drc = 0;
	int rc;

	switch (req->hdr.type) {
	case OVMC_SESS_QUERY:
		ovmc_drv_query(s->drv, &q);
		r->have_vmc = q.have_vmc;
		r->state = q.state;
		r->drc_index = q.vmc_drc_index;
		return 0;
	case OVMC_SESS_REQUESTVMC:
		rc = ovmc_drv_request_vmc(s->drv, &drc, now);
		r->drc_index = (int32_t)drc;
		return rc;
	case OVMC_SESS_STAT:
		return 0;
	default:
		break;
	}
	/* A file the driver no longer has was reset (or belongs to a daemon
	 * that was restarted): what Linux answers on a reset file. */
	switch (req->hdr.type) {
	case OVMC_SESS_SETHMCID:
		if (plen != HMC_ID_LEN)
			return -EMSGSIZE;
		return fc ? ovmc_drv_sethmcid(s->drv, fc->file, payload, now) : -EIO;
	case OVMC_SESS_WRITE:
		if (plen != arg)
			return -EMSGSIZE;
		if (!fc)
			return -EIO;
		rc = (int)ovmc_drv_write(s->drv, fc->file, payload, plen, now);
		if (rc > 0 && s->cfg.kick)
			s->cfg.kick(s->cfg.kick_arg);
		return rc;
	case OVMC_SESS_READ_CHECK:
		if (plen)
			return -EMSGSIZE;
		if (!fc)
			return -EBADFD;
		/* With nothing pushed the driver holds no message, so its read
		 * answers the checks without taking one. */
		if (!push(fc))
			return -EBADFD;
		if (fc->inflight)
			return arg > r->mtu ? -EINVAL : 0;
		rc = (int)ovmc_drv_read(s->drv, fc->file, s->rbuf, arg, now);
		return rc == -EAGAIN ? 0 : rc;
	case OVMC_SESS_IOCTL:
		/* The Linux driver answers every number it does not know so. */
		return plen ? -EMSGSIZE : -EINVAL;
	default:
		return -EMSGSIZE;
	}
}

/* One request; false if the connection was dropped. */
static bool on_request(struct conn *c, ssize_t n, int fd)
{
	struct ovmc_sock *s = c->s;
	struct ovmc_sess_req req;
	struct ovmc_sess_reply r;
	struct conn *fc = NULL;
	bool wants_file;
	int64_t rc;

	if (n < (ssize_t)sizeof(req)) {
		if (fd >= 0)
			close(fd);
		protocol_error(c, "short request");
		conn_destroy(c);
		return false;
	}
	memcpy(&req, s->rbuf, sizeof(req));
	wants_file = req.hdr.type != OVMC_SESS_QUERY && req.hdr.type != OVMC_SESS_REQUESTVMC &&
		     req.hdr.type != OVMC_SESS_STAT;
	if (req.hdr.magic != OVMC_SESS_MAGIC || req.hdr.version != OVMC_SESS_VERSION ||
	    (wants_file && fd < 0)) {
		if (fd >= 0)
			close(fd);
		protocol_error(c, "bad request header or no file");
		conn_destroy(c);
		return false;
	}
	if (fd >= 0) {
		uint64_t cookie;

		if (cookie_of(fd, &cookie) == 0)
			fc = conn_by_cookie(s, cookie);
		close(fd);
	}
	s->st.requests++;
	fill_reply(s, &r, 0);
	rc = do_request(c, (const struct ovmc_sess_req *)(const void *)s->rbuf, (size_t)n, fc, &r);
	if (rc == -EMSGSIZE) {
		protocol_error(c, "request of an unknown type or length");
		conn_destroy(c);
		return false;
	}
	r.rc = rc;
	r.mtu = read_mtu(s);
	/* The request may have made messages readable (an echo, a session). */
	ovmc_sock_flush(s);
	if (send_reply(c, &r) != 0) {
		limited(s, &s->lim_proto, OVMC_LOG_WARN,
			"pid %d does not read its replies; connection dropped", (int)c->pid);
		conn_destroy(c);
		return false;
	}
	return true;
}

/* An acknowledgement on a data connection; false if it was dropped. */
static bool on_ack(struct conn *c, ssize_t n)
{
	struct ovmc_sock *s = c->s;
	struct ovmc_sess_ack a;

	if (n != (ssize_t)sizeof(a)) {
		protocol_error(c, "bad record on a data connection");
		conn_destroy(c);
		return false;
	}
	memcpy(&a, s->rbuf, sizeof(a));
	if (!ovmc_sess_hdr_ok(&a.hdr, OVMC_SESS_ACK) || !c->inflight || a.taken > a.len) {
		protocol_error(c, "acknowledgement of nothing, or a bad one");
		conn_destroy(c);
		return false;
	}
	s->st.acks++;
	c->inflight = false;
	if (a.taken < a.len) {
		s->st.truncated_reads++;
		s->st.truncated_bytes += a.len - a.taken;
		limited(s, &s->lim_trunc, OVMC_LOG_WARN,
			"read of %u bytes truncated a %u-byte message (pid %d)", a.taken, a.len,
			(int)c->pid);
	}
	return push(c);
}

static void on_conn(void *arg, int fd, uint32_t events)
{
	struct conn *c = arg;
	struct ovmc_sock *s = c->s;

	(void)fd;
	(void)events;
	for (int i = 0; i < BATCH; i++) {
		size_t max = c->kind == CONN_CTL ? OVMC_SESS_MAX_REQ : sizeof(struct ovmc_sess_req);
		int rfd;
		ssize_t n = recv_record(c, max, &rfd);

		if (n == -EAGAIN)
			return;
		if (n == -EMSGSIZE) {
			protocol_error(c, "record too long");
			conn_destroy(c);
			return;
		}
		if (n <= 0) {
			/* The client closed (for a data connection: its file). */
			if (rfd >= 0)
				close(rfd);
			conn_destroy(c);
			return;
		}
		if (c->kind == CONN_NEW) {
			if (!on_hello(c, n, rfd))
				return;
		} else if (c->kind == CONN_CTL) {
			if (!on_request(c, n, rfd))
				return;
		} else {
			if (rfd >= 0)
				close(rfd);
			if (!on_ack(c, n))
				return;
		}
	}
	(void)s;
}

/* ---- accepting ---- */

static bool in_group(int fd, gid_t want)
{
	gid_t small[64], *groups = small;
	socklen_t len = sizeof(small);
	bool found = false;

	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0) {
		if (errno != ERANGE || !(groups = malloc(len)))
			return false;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
			len = 0;
	}
	for (size_t i = 0; i < len / sizeof(gid_t); i++)
		found |= groups[i] == want;
	if (groups != small)
		free(groups);
	return found;
}

static bool allowed(const struct ovmc_sock *s, int fd, const struct ucred *cr)
{
	if (cr->uid == 0 || cr->uid == s->uid)
		return true;
	if (!s->cfg.set_gid)
		return false;
	return cr->gid == s->cfg.gid || in_group(fd, s->cfg.gid);
}

static void on_listen(void *arg, int lfd, uint32_t events)
{
	struct ovmc_sock *s = arg;

	(void)events;
	for (int i = 0; i < BATCH; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		socklen_t len = sizeof(struct ucred);
		struct ucred cr;
		struct conn *c;

		if (fd < 0) {
			if (errno != EAGAIN && errno != EINTR && errno != ECONNABORTED)
				limited(s, &s->lim_full, OVMC_LOG_WARN, "accept: %s",
					strerror(errno));
			return;
		}
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cr, &len) != 0 ||
		    len != sizeof(cr) || !allowed(s, fd, &cr)) {
			s->st.refused_cred++;
			limited(s, &s->lim_refused, OVMC_LOG_WARN,
				"refused a connection from pid %d (uid %u gid %u): only root, uid %u%s",
				len == sizeof(cr) ? (int)cr.pid : -1,
				len == sizeof(cr) ? (unsigned)cr.uid : ~0u,
				len == sizeof(cr) ? (unsigned)cr.gid : ~0u, (unsigned)s->uid,
				s->cfg.set_gid ? " and members of the device's group" : "");
			close(fd);
			continue;
		}
		if (s->n_conns >= s->cfg.max_conns || !(c = calloc(1, sizeof(*c)))) {
			s->st.refused_full++;
			limited(s, &s->lim_full, OVMC_LOG_WARN,
				"refused a connection from pid %d: %u connections open (the limit)",
				(int)cr.pid, s->n_conns);
			close(fd);
			continue;
		}
		c->s = s;
		c->fd = fd;
		c->kind = CONN_NEW;
		c->pid = cr.pid;
		c->uid = cr.uid;
		c->deadline = mono_ns() + (uint64_t)s->cfg.hello_ms * NS_PER_MS;
		if (ovmc_loop_add(s->loop, fd, on_conn, c) != 0) {
			close(fd);
			free(c);
			continue;
		}
		c->next = s->conns;
		if (s->conns)
			s->conns->prev = c;
		s->conns = c;
		s->n_conns++;
		s->st.accepted++;
	}
}

uint64_t ovmc_sock_timer(struct ovmc_sock *s, uint64_t now)
{
	uint64_t next = OVMC_TIME_NEVER;

	for (struct conn *c = s->conns, *nx; c; c = nx) {
		nx = c->next;
		if (c->kind != CONN_NEW)
			continue;
		if (c->deadline <= now) {
			s->st.timed_out++;
			limited(s, &s->lim_proto, OVMC_LOG_WARN,
				"pid %d said nothing for %u ms; connection dropped", (int)c->pid,
				s->cfg.hello_ms);
			conn_destroy(c);
		} else if (c->deadline < next) {
			next = c->deadline;
		}
	}
	return next;
}

/* ---- the socket ---- */

/* A socket left at the path by a killed daemon is removed; a live one is not. */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s exists and is not a socket: refusing",
			 path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == 0 ? -EADDRINUSE : 0;
	close(fd);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s is served by another daemon", path);
		return rc;
	}
	if (unlink(path) != 0 && errno != ENOENT)
		return -errno;
	ovmc_log(OVMC_LOG_WARN, COMPONENT, "replaced the stale socket %s (its daemon was killed)",
		 path);
	return 0;
}

static int listen_on(struct ovmc_sock *s)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	mode_t old;
	int rc;

	if (strlen(s->path) >= sizeof(sa.sun_path)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: path too long for a socket", s->path);
		return -ENAMETOOLONG;
	}
	strcpy(sa.sun_path, s->path);
	rc = clear_path(s->path, &sa);
	if (rc)
		return rc;
	s->lfd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (s->lfd < 0)
		return -errno;
	/* Nobody but us until the mode is set (peers are checked anyway). */
	old = umask(0077);
	rc = bind(s->lfd, (struct sockaddr *)&sa, sizeof(sa));
	umask(old);
	if (rc != 0)
		return -errno;
	if (lstat(s->path, &st) != 0)
		return -errno;
	s->sock_dev = st.st_dev;
	s->sock_ino = st.st_ino;
	if (s->cfg.set_gid && chown(s->path, (uid_t)-1, s->cfg.gid) != 0)
		return -errno;
	if (chmod(s->path, s->cfg.mode & 0777) != 0)
		return -errno;
	if (listen(s->lfd, 64) != 0)
		return -errno;
	return 0;
}

int ovmc_sock_new(struct ovmc_loop *loop, const struct ovmc_sock_config *cfg,
		  struct ovmc_drv *drv, struct ovmc_sock **out)
{
	struct ovmc_sock *s;
	int rc;

	if (!cfg->path || !*cfg->path || !drv || cfg->max_mtu == 0 ||
	    cfg->max_mtu > OVMC_SESS_MAX_MSG) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "invalid session socket configuration");
		return -EINVAL;
	}
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->cfg = *cfg;
	if (!s->cfg.max_conns)
		s->cfg.max_conns = DEFAULT_MAX_CONNS;
	if (!s->cfg.hello_ms)
		s->cfg.hello_ms = DEFAULT_HELLO_MS;
	s->loop = loop;
	s->drv = drv;
	s->lfd = -1;
	s->uid = geteuid();
	s->gid = cfg->set_gid ? cfg->gid : getegid();
	clock_gettime(CLOCK_REALTIME, &s->birth);
	s->path = strdup(cfg->path);
	s->rbuf = malloc(OVMC_SESS_MAX_REQ);
	if (!s->path || !s->rbuf) {
		rc = -ENOMEM;
		goto fail;
	}
	rc = listen_on(s);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot serve %s: %s", s->path, strerror(-rc));
		goto fail;
	}
	rc = ovmc_loop_add(loop, s->lfd, on_listen, s);
	if (rc)
		goto fail;
	ovmc_log(OVMC_LOG_INFO, COMPONENT, "session socket ready at %s", s->path);
	*out = s;
	return 0;
fail:
	ovmc_sock_free(s);
	return rc;
}

const char *ovmc_sock_path(const struct ovmc_sock *s)
{
	return s->path;
}

void ovmc_sock_status(const struct ovmc_sock *s, FILE *out)
{
	fprintf(out, "session socket %s, %u connection%s, %u open file%s\n", s->path, s->n_conns,
		s->n_conns == 1 ? "" : "s", s->n_files, s->n_files == 1 ? "" : "s");
	fprintf(out,
		"  accepted %llu refused-credentials %llu refused-full %llu timed-out %llu "
		"files %llu control %llu requests %llu records %llu acks %llu truncated-reads %llu "
		"truncated-bytes %llu protocol-errors %llu lost %llu\n",
		(unsigned long long)s->st.accepted, (unsigned long long)s->st.refused_cred,
		(unsigned long long)s->st.refused_full, (unsigned long long)s->st.timed_out,
		(unsigned long long)s->st.files, (unsigned long long)s->st.ctls,
		(unsigned long long)s->st.requests, (unsigned long long)s->st.records,
		(unsigned long long)s->st.acks, (unsigned long long)s->st.truncated_reads,
		(unsigned long long)s->st.truncated_bytes, (unsigned long long)s->st.protocol_errors,
		(unsigned long long)s->st.lost);
}

void ovmc_sock_status_json(const struct ovmc_sock *s, struct json *j)
{
	json_object(j, "session_socket");
	json_string(j, "path", s->path);
	json_uint(j, "connections", s->n_conns);
	json_uint(j, "open_files", s->n_files);
	json_object(j, "stats");
	json_uint(j, "accepted", s->st.accepted);
	json_uint(j, "refused_credentials", s->st.refused_cred);
	json_uint(j, "refused_full", s->st.refused_full);
	json_uint(j, "timed_out", s->st.timed_out);
	json_uint(j, "files", s->st.files);
	json_uint(j, "control", s->st.ctls);
	json_uint(j, "requests", s->st.requests);
	json_uint(j, "records", s->st.records);
	json_uint(j, "acks", s->st.acks);
	json_uint(j, "truncated_reads", s->st.truncated_reads);
	json_uint(j, "truncated_bytes", s->st.truncated_bytes);
	json_uint(j, "protocol_errors", s->st.protocol_errors);
	json_uint(j, "lost", s->st.lost);
	json_end(j);
	json_end(j);
}

void ovmc_sock_free(struct ovmc_sock *s)
{
	struct stat st;

	if (!s)
		return;
	while (s->conns)
		conn_destroy(s->conns);
	if (s->lfd >= 0) {
		ovmc_loop_del(s->loop, s->lfd);
		close(s->lfd);
		/* Only our own socket: another daemon may have replaced it. */
		if (s->sock_ino && lstat(s->path, &st) == 0 && st.st_ino == s->sock_ino &&
		    st.st_dev == s->sock_dev)
			unlink(s->path);
	}
	free(s->rbuf);
	free(s->path);
	free(s);
}
