// SPDX-License-Identifier: LGPL-2.1-or-later
/* Message transport shared by both ends of the cross-process platform. */
#include "xproc_proto.h"

#include <errno.h>
#include <linux/futex.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* Descriptors one receive can hold; more are discarded by the kernel (MSG_CTRUNC). */
#define XP_CMSG_FDS 16u

void ovmc_xp_hdr(struct xproc_hdr *h, enum xproc_type type, uint32_t seq)
{
	memset(h, 0, sizeof(*h));
	h->magic = XPROC_MAGIC;
	h->version = XPROC_VERSION;
	h->type = (uint16_t)type;
	h->seq = seq;
}

/* ---- the mailbox ---- */

int ovmc_xp_mb_post(struct xproc_mailbox *mb, int bell, const void *msg, size_t len,
		    uint32_t seq, bool after_socket)
{
	uint64_t one = 1;

	if (len > XPROC_MB_REQ_MAX)
		return -EMSGSIZE;
	memcpy(mb->req, msg, len);
	__atomic_store_n(&mb->req_len, (uint32_t)len, __ATOMIC_RELAXED);
	__atomic_store_n(&mb->after_socket, after_socket, __ATOMIC_RELAXED);
	__atomic_store_n(&mb->req_seq, seq, __ATOMIC_RELEASE);
	for (;;) {
		if (write(bell, &one, sizeof(one)) == (ssize_t)sizeof(one))
			return 0;
		if (errno != EINTR)
			return -errno;
	}
}

ssize_t ovmc_xp_mb_wait(struct xproc_mailbox *mb, uint32_t seq, int ms, union xproc_msg *out)
{
	uint32_t v = __atomic_load_n(&mb->rep_seq, __ATOMIC_ACQUIRE), len;

	if (v != seq) {
		struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000l};
		long rc;

		/* Said before looking again, so that the server, which looks
		 * at it after publishing, either wakes us or is seen. */
		__atomic_store_n(&mb->waiting, 1u, __ATOMIC_SEQ_CST);
		v = __atomic_load_n(&mb->rep_seq, __ATOMIC_SEQ_CST);
		rc = v == seq ? 0 : syscall(SYS_futex, &mb->rep_seq, FUTEX_WAIT, v, &ts, NULL, 0);
		__atomic_store_n(&mb->waiting, 0u, __ATOMIC_RELAXED);
		if (rc < 0 && errno == ETIMEDOUT)
			return -ETIMEDOUT;
		if (rc < 0 && errno == EINTR)
			return -EINTR;
		v = __atomic_load_n(&mb->rep_seq, __ATOMIC_ACQUIRE);
		/* Woken for nothing, or an answer to something else: the caller asks again. */
		if (v != seq)
			return -EINTR;
	}
	len = __atomic_load_n(&mb->rep_len, __ATOMIC_RELAXED);
	if (len > XPROC_MB_REP_MAX)
		return -EMSGSIZE;
	memcpy(out, mb->rep, len);
	return (ssize_t)len;
}

ssize_t ovmc_xp_mb_take(struct xproc_mailbox *mb, uint32_t *last, union xproc_msg *out,
			bool *after_socket)
{
	uint32_t seq = __atomic_load_n(&mb->req_seq, __ATOMIC_ACQUIRE), len;

	if (seq == *last)
		return 0;
	*last = seq;
	*after_socket = __atomic_load_n(&mb->after_socket, __ATOMIC_RELAXED) != 0;
	len = __atomic_load_n(&mb->req_len, __ATOMIC_RELAXED);
	if (len < sizeof(struct xproc_hdr) || len > XPROC_MB_REQ_MAX)
		return -EMSGSIZE;
	memcpy(out, mb->req, len);
	return out->h.seq == seq ? (ssize_t)len : -EPROTO;
}

void ovmc_xp_mb_answer(struct xproc_mailbox *mb, const void *msg, size_t len)
{
	const struct xproc_hdr *h = msg;

	memcpy(mb->rep, msg, len);
	__atomic_store_n(&mb->rep_len, (uint32_t)len, __ATOMIC_RELAXED);
	__atomic_store_n(&mb->rep_seq, h->seq, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&mb->waiting, __ATOMIC_SEQ_CST))
		syscall(SYS_futex, &mb->rep_seq, FUTEX_WAKE, 1, NULL, NULL, 0);
}

void ovmc_xp_close_fds(const int *fds, unsigned n)
{
	for (unsigned i = 0; i < n; i++)
		close(fds[i]);
}

int ovmc_xp_send(int sock, const void *buf, size_t len, int flags, const int *fds, unsigned nfds)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * XP_CMSG_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = (void *)buf, .iov_len = len};
	struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n;

	if (nfds > XP_CMSG_FDS)
		return -EINVAL;
	if (nfds) {
		struct cmsghdr *c;

		memset(&ctl, 0, sizeof(ctl));
		msg.msg_control = ctl.buf;
		msg.msg_controllen = CMSG_SPACE(sizeof(int) * nfds);
		c = CMSG_FIRSTHDR(&msg);
		c->cmsg_level = SOL_SOCKET;
		c->cmsg_type = SCM_RIGHTS;
		c->cmsg_len = CMSG_LEN(sizeof(int) * nfds);
		memcpy(CMSG_DATA(c), fds, sizeof(int) * nfds);
	}
	do {
		n = sendmsg(sock, &msg, flags | MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	return (size_t)n == len ? 0 : -EMSGSIZE;
}

ssize_t ovmc_xp_recv(int sock, void *buf, size_t size, int flags, int *fds, unsigned max_fds,
		     unsigned *nfds, bool *truncated)
{
	union {
		struct cmsghdr align;
		char buf[CMSG_SPACE(sizeof(int) * XP_CMSG_FDS)];
	} ctl;
	struct iovec iov = {.iov_base = buf, .iov_len = size};
	struct msghdr msg = {.msg_iov = &iov,
			     .msg_iovlen = 1,
			     .msg_control = ctl.buf,
			     .msg_controllen = sizeof(ctl.buf)};
	unsigned got = 0;
	ssize_t n;

	*nfds = 0;
	*truncated = false;
	n = recvmsg(sock, &msg, flags | MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
		size_t k;

		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS ||
		    c->cmsg_len < CMSG_LEN(0))
			continue;
		k = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (size_t i = 0; i < k; i++) {
			int fd;

			/* CMSG_DATA need not be aligned for int: copy out. */
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(fd));
			if (got < max_fds)
				fds[got] = fd;
			else
				close(fd);
			got++;
		}
	}
	*nfds = got;
	*truncated = (msg.msg_flags & (MSG_TRUNC | MSG_CTRUNC)) != 0;
	return n;
}

/*
 * The directory holding the socket: ours alone, created if missing (then
 * *made is that directory, to free()).
 */
static int prepare_dir(const char *path, char **made)
{
	char *dir = strdup(path);
	char *slash;
	struct stat st;
	int rc = 0;

	if (!dir)
		return -ENOMEM;
	slash = strrchr(dir, '/');
	if (!slash)
		strcpy(dir, ".");
	else if (slash == dir)
		dir[1] = '\0';
	else
		*slash = '\0';
	if (mkdir(dir, 0700) == 0) {
		*made = dir;
		dir = NULL;
	} else if (errno != EEXIST) {
		rc = -errno;
		goto out;
	}
	/* lstat: a symlink could be swapped by its owner after the check. */
	if (lstat(dir ? dir : *made, &st) < 0) {
		rc = -errno;
		goto out;
	}
	if (!S_ISDIR(st.st_mode)) {
		rc = -ENOTDIR;
		goto out;
	}
	if (st.st_uid != geteuid() || (st.st_mode & 077))
		rc = -EPERM;
out:
	free(dir);
	return rc;
}

static int clear_stale(const struct sockaddr_un *sa, int type, bool *removed)
{
	struct stat st;
	int fd, rc;

	*removed = false;
	if (lstat(sa->sun_path, &st) < 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode))
		return -EEXIST;
	fd = socket(AF_UNIX, type | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	rc = rc < 0 ? errno : 0;
	close(fd);
	switch (rc) {
	case ECONNREFUSED:
		*removed = true;
		if (unlink(sa->sun_path) < 0 && errno != ENOENT)
			return -errno;
		return 0;
	case ENOENT:
		return 0;
	case 0:
	case EAGAIN:	 /* a live server with a full backlog */
	case EPROTOTYPE: /* someone else's socket of the other type */
		return -EEXIST;
	default:
		return -rc;
	}
}

static int bind_listen(const struct sockaddr_un *sa, int type, int backlog, int *fd, dev_t *dev,
		       ino_t *ino)
{
	struct stat st;
	int s = socket(AF_UNIX, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0), rc;

	if (s < 0)
		return -errno;
	if (bind(s, (const struct sockaddr *)sa, sizeof(*sa)) < 0) {
		/* Lost a race with another server starting on the same path. */
		rc = errno == EADDRINUSE ? -EEXIST : -errno;
		close(s);
		return rc;
	}
	if (lstat(sa->sun_path, &st) < 0 || listen(s, backlog) < 0) {
		rc = -errno;
		unlink(sa->sun_path);
		close(s);
		return rc;
	}
	*fd = s;
	*dev = st.st_dev;
	*ino = st.st_ino;
	return 0;
}

#define LISTEN_BACKLOG 64

static void __attribute__((format(printf, 3, 4)))
say(ovmc_log_fn log, void *user, const char *fmt, ...)
{
	va_list ap;

	if (!log)
		return;
	va_start(ap, fmt);
	log(user, OVMC_LOG_INFO, fmt, ap);
	va_end(ap);
}

int ovmc_xp_listener_open(struct ovmc_xp_listener *l, const char *path, int type,
			  void *timer_tag, const char *who, ovmc_log_fn log, void *log_user)
{
	bool removed = false;
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = NULL};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(path);
	int rc;

	*l = (struct ovmc_xp_listener){.fd = -1, .ep = -1, .tfd = -1};
	if (len == 0)
		return -EINVAL;
	if (len >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	memcpy(sa.sun_path, path, len);
	l->path = strdup(path);
	if (!l->path)
		return -ENOMEM;
	rc = prepare_dir(l->path, &l->made_dir);
	if (!rc)
		rc = clear_stale(&sa, type, &removed);
	if (removed)
		say(log, log_user, "%s: removing stale socket %s", who, path);
	if (!rc)
		rc = bind_listen(&sa, type, LISTEN_BACKLOG, &l->fd, &l->dev, &l->ino);
	if (rc) {
		ovmc_xp_listener_close(l);
		return rc;
	}
	l->tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
	l->ep = epoll_create1(EPOLL_CLOEXEC);
	rc = l->tfd < 0 || l->ep < 0 || epoll_ctl(l->ep, EPOLL_CTL_ADD, l->fd, &ev) < 0 ? -errno : 0;
	ev.data.ptr = timer_tag;
	if (!rc && epoll_ctl(l->ep, EPOLL_CTL_ADD, l->tfd, &ev) < 0)
		rc = -errno;
	if (rc)
		ovmc_xp_listener_close(l);
	else
		say(log, log_user, "%s: listening on %s", who, path);
	return rc;
}

void ovmc_xp_listener_close(struct ovmc_xp_listener *l)
{
	struct stat st;

	if (l->ep >= 0)
		close(l->ep);
	if (l->tfd >= 0)
		close(l->tfd);
	if (l->fd >= 0) {
		close(l->fd);
		/* A successor may own the path by now: remove only our own file. */
		if (lstat(l->path, &st) == 0 && st.st_dev == l->dev && st.st_ino == l->ino)
			unlink(l->path);
	}
	/* Only if empty: a successor's socket, or the user's files, stay. */
	if (l->made_dir)
		rmdir(l->made_dir);
	free(l->made_dir);
	free(l->path);
	*l = (struct ovmc_xp_listener){.fd = -1, .ep = -1, .tfd = -1};
}
