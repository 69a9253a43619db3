// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Client of the session socket (include/openvmc/client.h; protocol in
 * docs/session.md).
 *
 * A read is native: the daemon pushes each message as one record on the
 * file's own connection, so blocking, O_NONBLOCK, signals (EINTR and
 * SA_RESTART) and poll come from the kernel. It peeks into the caller's
 * buffer first, so a bad buffer fails with EFAULT before the record is
 * taken, then takes it and acknowledges it with the byte count. Everything
 * that needs an answer goes over the control connection, never over the
 * file's own (a thread blocked in a read there would take the answer).
 */
#include <openvmc/client.h>

#include <openvmc/ibmvmc.h>

#include "sess_proto.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

/* A daemon that does not answer within this is treated as gone. */
#define REPLY_TIMEOUT_S 30
/* A read's error path probes at most this much of the caller's buffer. */
#define PROBE_MAX (1u << 20)
#define PAGE 4096u

/* The VMC ioctl numbers in both encodings (docs/device-abi.md). */
#define IOC_SETHMCID_GENERIC 0x4008CC00u
#define IOC_SETHMCID_PPC64 0x8008CC00u
#define IOC_QUERY_GENERIC 0x800CCC01u
#define IOC_QUERY_PPC64 0x400CCC01u
#define IOC_REQUESTVMC_GENERIC 0x8004CC02u
#define IOC_REQUESTVMC_PPC64 0x4004CC02u

struct ovmc_client {
	pthread_mutex_t lock; /* the control connection */
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	int ctl;   /* -1 until the first request */
	pid_t pid; /* the process that made ctl */
	atomic_uint mtu; /* the driver's read limit, as last reported; 0: unknown */
};

int ovmc_client_new(const char *socket_path, struct ovmc_client **out)
{
	struct ovmc_client *c;

	if (!socket_path || !*socket_path)
		return -EINVAL;
	if (strlen(socket_path) >= sizeof(c->path))
		return -ENAMETOOLONG;
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->lock, NULL);
	strcpy(c->path, socket_path);
	c->ctl = -1;
	*out = c;
	return 0;
}

void ovmc_client_free(struct ovmc_client *c)
{
	if (!c)
		return;
	if (c->ctl >= 0)
		close(c->ctl);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

const char *ovmc_client_path(const struct ovmc_client *c)
{
	return c->path;
}

void ovmc_client_atfork_prepare(struct ovmc_client *c)
{
	pthread_mutex_lock(&c->lock);
}

void ovmc_client_atfork_parent(struct ovmc_client *c)
{
	pthread_mutex_unlock(&c->lock);
}

void ovmc_client_atfork_child(struct ovmc_client *c)
{
	/* Our copy of the parent's connection is the parent's to use. */
	if (c->ctl >= 0)
		close(c->ctl);
	c->ctl = -1;
	pthread_mutex_unlock(&c->lock);
}

/* ---- talking to the daemon ---- */

static int connect_to(const struct ovmc_client *c, int type_flags)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	int fd = socket(AF_UNIX, SOCK_SEQPACKET | type_flags, 0);
	int err;

	if (fd < 0)
		return -errno;
	strcpy(sa.sun_path, c->path);
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
		return fd;
	err = errno;
	close(fd);
	/* As opening a device node whose driver is not loaded. */
	if (err == ECONNREFUSED)
		return -ENXIO;
	return -err;
}

static ssize_t send_all(int fd, struct iovec *iov, int n, int pass_fd)
{
	union {
		char buf[CMSG_SPACE(sizeof(int))];
		struct cmsghdr align;
	} ctl;
	struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)n};
	ssize_t r;

	if (pass_fd >= 0) {
		struct cmsghdr *cm;

		memset(&ctl, 0, sizeof(ctl));
		m.msg_control = ctl.buf;
		m.msg_controllen = sizeof(ctl.buf);
		cm = CMSG_FIRSTHDR(&m);
		cm->cmsg_level = SOL_SOCKET;
		cm->cmsg_type = SCM_RIGHTS;
		cm->cmsg_len = CMSG_LEN(sizeof(int));
		memcpy(CMSG_DATA(cm), &pass_fd, sizeof(int));
	}
	do
		r = sendmsg(fd, &m, MSG_NOSIGNAL);
	while (r < 0 && errno == EINTR);
	return r < 0 ? -errno : r;
}

/* The daemon's answer; any failure to get it is -EIO (the daemon is gone). */
static int recv_reply(int fd, struct ovmc_sess_reply *r)
{
	ssize_t n;

	do
		n = recv(fd, r, sizeof(*r), 0);
	while (n < 0 && errno == EINTR);
	if (n != (ssize_t)sizeof(*r) || !ovmc_sess_hdr_ok(&r->hdr, OVMC_SESS_REPLY))
		return -EIO;
	return 0;
}

static int ctl_connect(struct ovmc_client *c)
{
	struct ovmc_sess_req hello = {.hdr = OVMC_SESS_HDR(OVMC_SESS_HELLO_CTL)};
	struct iovec iov = {.iov_base = &hello, .iov_len = sizeof(hello)};
	struct timeval tv = {.tv_sec = REPLY_TIMEOUT_S};
	struct ovmc_sess_reply r;
	int fd = connect_to(c, SOCK_CLOEXEC);
	int rc;

	if (fd < 0)
		return fd;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	rc = (int)send_all(fd, &iov, 1, -1);
	if (rc >= 0)
		rc = recv_reply(fd, &r);
	if (rc >= 0 && r.rc)
		rc = (int)r.rc;
	if (rc < 0) {
		close(fd);
		/* A daemon that closes at once refused our credentials. */
		return rc == -EIO || rc == -ECONNRESET || rc == -EPIPE ? -EACCES : rc;
	}
	atomic_store(&c->mtu, r.mtu);
	c->ctl = fd;
	c->pid = getpid();
	return 0;
}

/*
 * One request on the control connection: the header with `arg`, then
 * `payload` (the caller's memory: -EFAULT if unreadable, nothing sent), and
 * `fd` (the file it is about, or -1). Returns the daemon's rc, -EIO if the
 * daemon is gone, or what connecting gave.
 */
static int64_t request(struct ovmc_client *c, enum ovmc_sess_type type, uint32_t arg, int fd,
		       const void *payload, size_t plen, struct ovmc_sess_reply *r)
{
	struct ovmc_sess_req req = {.hdr = OVMC_SESS_HDR(type), .arg = arg};
	struct iovec iov[2] = {{.iov_base = &req, .iov_len = sizeof(req)},
			       {.iov_base = (void *)payload, .iov_len = plen}};
	struct ovmc_sess_reply scratch;
	int64_t rc;

	if (!r)
		r = &scratch;
	pthread_mutex_lock(&c->lock);
	if (c->ctl >= 0 && c->pid != getpid()) {
		/* A forked child without the atfork handlers. */
		close(c->ctl);
		c->ctl = -1;
	}
	for (int attempt = 0;; attempt++) {
		bool fresh = c->ctl < 0;

		if (fresh) {
			rc = ctl_connect(c);
			/* For anything but stat the device is open: its daemon is gone. */
			if (rc && type != OVMC_SESS_STAT)
				rc = -EIO;
			if (rc)
				break;
		}
		rc = send_all(c->ctl, iov, plen ? 2 : 1, fd);
		if (rc == -EFAULT)
			break;
		if (rc >= 0)
			rc = recv_reply(c->ctl, r);
		if (rc >= 0) {
			rc = r->rc;
			atomic_store(&c->mtu, r->mtu);
			break;
		}
		/* The connection broke; a new daemon may be there. Once. */
		close(c->ctl);
		c->ctl = -1;
		if (fresh || attempt) {
			rc = -EIO;
			break;
		}
	}
	pthread_mutex_unlock(&c->lock);
	return rc;
}

/* ---- files ---- */

int ovmc_client_open(struct ovmc_client *c, int flags)
{
	struct ovmc_sess_req hello = {.hdr = OVMC_SESS_HDR(OVMC_SESS_HELLO_DATA)};
	struct iovec iov = {.iov_base = &hello, .iov_len = sizeof(hello)};
	struct ovmc_sess_reply r;
	int fd = connect_to(c, (flags & O_CLOEXEC) ? SOCK_CLOEXEC : 0);
	int rc;

	if (fd < 0)
		return fd;
	/* Our own end names the file in later requests. */
	rc = (int)send_all(fd, &iov, 1, fd);
	if (rc >= 0)
		rc = recv_reply(fd, &r);
	if (rc >= 0)
		rc = (int)r.rc;
	else if (rc == -EIO || rc == -ECONNRESET || rc == -EPIPE)
		rc = -EACCES;
	if (rc >= 0 && (flags & O_NONBLOCK) && fcntl(fd, F_SETFL, O_NONBLOCK) != 0)
		rc = -errno;
	if (rc < 0) {
		close(fd);
		return rc;
	}
	atomic_store(&c->mtu, r.mtu);
	return fd;
}

int ovmc_client_set_hmc_id(struct ovmc_client *c, int fd, const void *id)
{
	return (int)request(c, OVMC_SESS_SETHMCID, 0, fd, id, OVMC_CLIENT_HMC_ID_LEN, NULL);
}

ssize_t ovmc_client_write(struct ovmc_client *c, int fd, const void *buf, size_t len)
{
	/* Above every MTU: what the driver answers such a write. */
	if (len > OVMC_SESS_MAX_MSG)
		return -EIO;
	return (ssize_t)request(c, OVMC_SESS_WRITE, (uint32_t)len, fd, buf, len, NULL);
}

static bool writable(void *buf, size_t len)
{
	uintptr_t p = (uintptr_t)buf, end;
	pid_t self = getpid();

	if (len > PROBE_MAX)
		len = PROBE_MAX;
	end = p + len;
	while (p < end) {
		char b;
		struct iovec local = {.iov_base = &b, .iov_len = 1};
		struct iovec remote = {.iov_base = (void *)p, .iov_len = 1};

		/* Put back what was there: only the fault matters. */
		if (process_vm_readv(self, &local, 1, &remote, 1, 0) != 1 ||
		    process_vm_writev(self, &local, 1, &remote, 1, 0) != 1)
			return false;
		p = (p | (PAGE - 1)) + 1;
	}
	return true;
}

/* End of stream: the daemon closed the file after a reset, or died. */
static ssize_t at_eof(struct ovmc_client *c, int fd)
{
	int64_t rc = request(c, OVMC_SESS_READ_CHECK, 1, fd, NULL, 0, NULL);

	return rc == -EBADFD || rc == 0 ? -EBADFD : -EIO;
}

static ssize_t read_check(struct ovmc_client *c, int fd, void *buf, size_t len)
{
	int64_t rc = request(c, OVMC_SESS_READ_CHECK, len > UINT32_MAX ? UINT32_MAX : (uint32_t)len,
			     fd, NULL, 0, NULL);

	/* As through the device, a bad buffer is found before the rest. */
	if (rc < 0 && !writable(buf, len))
		return -EFAULT;
	return (ssize_t)rc;
}

/* Peek at the next record into buf: its full length, 0 at end, or -errno. */
static ssize_t peek(int fd, void *buf, size_t len, int flags)
{
	struct iovec iov = {.iov_base = buf, .iov_len = len};
	struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
	ssize_t n = recvmsg(fd, &m, MSG_PEEK | MSG_TRUNC | flags);

	return n < 0 ? -errno : n;
}

ssize_t ovmc_client_read(struct ovmc_client *c, int fd, void *buf, size_t len)
{
	if (len == 0)
		return 0;
	for (;;) {
		struct ovmc_sess_ack ack = {.hdr = OVMC_SESS_HDR(OVMC_SESS_ACK)};
		struct iovec iov = {.iov_base = buf, .iov_len = len};
		struct msghdr m = {.msg_iov = &iov, .msg_iovlen = 1};
		unsigned mtu = atomic_load(&c->mtu);
		ssize_t n;

		if (!mtu || len > mtu) {
			n = read_check(c, fd, buf, len);
			if (n < 0)
				return n;
		}
		n = peek(fd, buf, len, MSG_DONTWAIT);
		if (n == -EAGAIN) {
			/* Nothing there: the checks the driver makes first. */
			n = read_check(c, fd, buf, len);
			if (n < 0)
				return n;
			n = peek(fd, buf, len, 0);
		}
		/* ECONNRESET: the daemon died with bytes of ours unread, which
		 * is the end of the file as much as an orderly close is. */
		if (n == 0 || n == -ECONNRESET)
			return at_eof(c, fd);
		if (n < 0)
			return n;
		n = recvmsg(fd, &m, MSG_DONTWAIT | MSG_TRUNC);
		if (n < 0 && errno == EAGAIN)
			continue; /* another reader of the same file took it */
		if (n == 0 || (n < 0 && errno == ECONNRESET))
			return at_eof(c, fd);
		if (n < 0)
			return -errno;
		ack.len = (uint32_t)n;
		ack.taken = (uint32_t)((size_t)n < len ? (size_t)n : len);
		/* A lost ack only stalls this file; the daemon sees the close. */
		send(fd, &ack, sizeof(ack), MSG_DONTWAIT | MSG_NOSIGNAL);
		return (ssize_t)ack.taken;
	}
}

/* ---- ioctls and stat ---- */

static int copy_in(void *dst, const void *src, size_t len)
{
	struct iovec local = {.iov_base = dst, .iov_len = len};
	struct iovec remote = {.iov_base = (void *)src, .iov_len = len};

	return process_vm_readv(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

static int copy_out(void *dst, const void *src, size_t len)
{
	struct iovec local = {.iov_base = (void *)src, .iov_len = len};
	struct iovec remote = {.iov_base = dst, .iov_len = len};

	return process_vm_writev(getpid(), &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
}

int ovmc_client_query(struct ovmc_client *c, struct ovmc_client_query *out)
{
	struct ovmc_sess_reply r;
	int rc = (int)request(c, OVMC_SESS_QUERY, 0, -1, NULL, 0, &r);

	if (rc)
		return rc;
	out->have_vmc = r.have_vmc;
	out->state = r.state;
	out->vmc_drc_index = r.drc_index;
	return 0;
}

int ovmc_client_request_vmc(struct ovmc_client *c, uint32_t *drc_index)
{
	struct ovmc_sess_reply r;
	int rc = (int)request(c, OVMC_SESS_REQUESTVMC, 0, -1, NULL, 0, &r);

	if (rc == 0)
		*drc_index = (uint32_t)r.drc_index;
	return rc;
}

/*
 * The numbers Linux's do_vfs_ioctl() answers for a character device before
 * its driver sees them. They are asked of /dev/null, a character device on
 * devtmpfs as /dev/ibmvmc is, so the answer is the running kernel's; only
 * the file-attribute getters fall through to the driver when the
 * filesystem has none (null's driver says ENOTTY, ibmvmc's EINVAL).
 */
static bool vfs_number(unsigned long cmd, bool *attr)
{
	*attr = cmd == FS_IOC_GETFLAGS || cmd == FS_IOC_FSGETXATTR || cmd == FS_IOC_SETFLAGS ||
		cmd == FS_IOC_FSSETXATTR;
	return *attr || cmd == FIGETBSZ || cmd == FIOQSIZE || cmd == FIFREEZE || cmd == FITHAW ||
	       cmd == FS_IOC_FIEMAP || cmd == FICLONE || cmd == FICLONERANGE ||
	       cmd == FIDEDUPERANGE;
}

static int ask_dev_null(unsigned long cmd, void *arg)
{
	int nfd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	int r, err;

	if (nfd < 0)
		return -errno;
	r = ioctl(nfd, cmd, arg);
	err = errno;
	close(nfd);
	return r < 0 ? -err : r;
}

static int vfs_ioctl(struct ovmc_client *c, int fd, unsigned long cmd, void *arg, bool attr)
{
	int rc;

	if (cmd == FIFREEZE || cmd == FITHAW) {
		/* Without the capability the answer is EPERM; with it, /dev/null
		 * would really freeze /dev. devtmpfs cannot be frozen and is
		 * never frozen. */
		if (geteuid() != 0)
			return ask_dev_null(cmd, arg);
		return cmd == FIFREEZE ? -EOPNOTSUPP : -EINVAL;
	}
	if (cmd == FS_IOC_SETFLAGS || cmd == FS_IOC_FSSETXATTR) {
		/* Never change /dev/null: the getter tells whether the
		 * filesystem would have taken the call. */
		struct fsxattr scratch;

		rc = ask_dev_null(cmd == FS_IOC_SETFLAGS ? FS_IOC_GETFLAGS : FS_IOC_FSGETXATTR,
				  &scratch);
		if (rc == -ENOTTY)
			return (int)request(c, OVMC_SESS_IOCTL, (uint32_t)cmd, fd, NULL, 0, NULL);
		return -EPERM;
	}
	rc = ask_dev_null(cmd, arg);
	if (attr && rc == -ENOTTY)
		return (int)request(c, OVMC_SESS_IOCTL, (uint32_t)cmd, fd, NULL, 0, NULL);
	return rc;
}

/*
 * What the kernel does for these on every file, done with fcntl(): an
 * ioctl() here would be the preload library's own again.
 */
static int generic_ioctl(int fd, unsigned long cmd, void *arg)
{
	int on = 0, fl, rc;

	if (cmd == FIOCLEX || cmd == FIONCLEX)
		return fcntl(fd, F_SETFD, cmd == FIOCLEX ? FD_CLOEXEC : 0) < 0 ? -errno : 0;
	rc = copy_in(&on, arg, sizeof(on));
	if (rc)
		return rc;
	fl = fcntl(fd, F_GETFL);
	if (fl < 0)
		return -errno;
	if (cmd == FIONBIO)
		fl = on ? fl | O_NONBLOCK : fl & ~O_NONBLOCK;
	else
		fl = on ? fl | O_ASYNC : fl & ~O_ASYNC;
	return fcntl(fd, F_SETFL, fl) < 0 ? -errno : 0;
}

int ovmc_client_ioctl(struct ovmc_client *c, int fd, unsigned long cmd, void *arg)
{
	struct ovmc_client_query q;
	uint32_t drc = 0;
	bool attr;
	int rc;

	if (cmd == FIONBIO || cmd == FIOASYNC || cmd == FIOCLEX || cmd == FIONCLEX)
		return generic_ioctl(fd, cmd, arg);
	if (vfs_number(cmd, &attr))
		return vfs_ioctl(c, fd, cmd, arg, attr);
	/* The ioctl syscall's command is 32 bits: the rest is not looked at. */
	switch ((unsigned)cmd) {
	case IOC_SETHMCID_GENERIC:
	case IOC_SETHMCID_PPC64:
		return ovmc_client_set_hmc_id(c, fd, arg);
	case IOC_QUERY_GENERIC:
	case IOC_QUERY_PPC64:
		rc = ovmc_client_query(c, &q);
		if (rc == 0) {
			struct ibmvmc_query_struct out = {
				.have_vmc = q.have_vmc, .state = q.state, .vmc_drc_index = q.vmc_drc_index};

			rc = copy_out(arg, &out, sizeof(out));
		}
		return rc;
	case IOC_REQUESTVMC_GENERIC:
	case IOC_REQUESTVMC_PPC64:
		rc = ovmc_client_request_vmc(c, &drc);
		return rc ? rc : copy_out(arg, &drc, sizeof(drc));
	default:
		return (int)request(c, OVMC_SESS_IOCTL, (uint32_t)cmd, fd, NULL, 0, NULL);
	}
}

int ovmc_client_stat(struct ovmc_client *c, struct stat *st)
{
	struct ovmc_sess_reply r;
	struct stat sock, dev;
	int rc;

	if (stat(c->path, &sock) != 0)
		return -errno;
	rc = (int)request(c, OVMC_SESS_STAT, 0, -1, NULL, 0, &r);
	if (rc)
		return rc;
	memset(st, 0, sizeof(*st));
	/* A node on /dev's filesystem, numbered as the socket. */
	st->st_dev = stat("/dev", &dev) == 0 ? dev.st_dev : sock.st_dev;
	st->st_ino = sock.st_ino;
	st->st_mode = S_IFCHR | (r.mode & 07777);
	st->st_nlink = 1;
	st->st_uid = r.uid;
	st->st_gid = r.gid;
	st->st_rdev = makedev(OVMC_SESS_MISC_MAJOR, OVMC_SESS_MISC_MINOR);
	st->st_blksize = PAGE;
	st->st_atim.tv_sec = st->st_mtim.tv_sec = st->st_ctim.tv_sec = (time_t)r.birth_sec;
	st->st_atim.tv_nsec = st->st_mtim.tv_nsec = st->st_ctim.tv_nsec = (long)r.birth_nsec;
	return 0;
}

bool ovmc_client_owns(const struct ovmc_client *c, int fd)
{
	struct sockaddr_un sa;
	socklen_t len = sizeof(sa);
	int type;
	socklen_t tlen = sizeof(type);

	if (getsockopt(fd, SOL_SOCKET, SO_TYPE, &type, &tlen) != 0 || type != SOCK_SEQPACKET)
		return false;
	memset(&sa, 0, sizeof(sa));
	if (getpeername(fd, (struct sockaddr *)&sa, &len) != 0 || sa.sun_family != AF_UNIX ||
	    len <= offsetof(struct sockaddr_un, sun_path))
		return false;
	return strncmp(sa.sun_path, c->path, sizeof(sa.sun_path)) == 0;
}
