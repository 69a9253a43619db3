// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * Cross-process platform, partition side: the partition memory is a sealed
 * memfd and the interrupt an eventfd, both lent to the hypervisor process
 * at ATTACH; every hcall is one request and one reply on the socket.
 */
#include "platform_impl.h"
#include "xproc_proto.h"

#include <openvmc/xproc.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct xproc {
	struct ovmc_platform base;
	char *path;
	int sock;   /* -1 after a failed reconnect */
	int mem_fd; /* kept to attach again with the same memory */
	bool dead;
	uint32_t seq;
	unsigned partition;
};

static const struct ovmc_platform_ops xproc_ops;

static struct xproc *to_xproc(struct ovmc_platform *p)
{
	return p && p->ops == &xproc_ops ? (struct xproc *)p : NULL;
}

/*
 * The hypervisor is gone or broke the protocol. Shutting the socket down
 * makes sure a server that is still there drops our partition, while the
 * descriptor stays valid (and readable) for the owner's event loop.
 */
static void mark_dead(struct xproc *x)
{
	if (!x->dead && x->sock >= 0)
		shutdown(x->sock, SHUT_RDWR);
	x->dead = true;
}

/* One request, one reply of exactly `reply_len` bytes and type `reply_type`. */
static int transact(struct xproc *x, struct xproc_hdr *req, size_t req_len, union xproc_msg *reply,
		    size_t reply_len, enum xproc_type reply_type)
{
	int fds[1];
	unsigned nfds = 0;
	bool trunc;
	ssize_t n;

	if (x->dead)
		return -ENOTCONN;
	req->seq = ++x->seq;
	if (ovmc_xp_send(x->sock, req, req_len, 0, NULL, 0) < 0)
		goto dead;
	do {
		n = ovmc_xp_recv(x->sock, reply, sizeof(*reply), 0, fds, 1, &nfds, &trunc);
	} while (n == -EINTR);
	if (nfds)
		ovmc_xp_close_fds(fds, 1);
	if (n <= 0 || trunc || nfds || (size_t)n != reply_len)
		goto dead;
	if (reply->h.magic != XPROC_MAGIC || reply->h.version != XPROC_VERSION ||
	    reply->h.type != reply_type || reply->h.seq != req->seq || reply->h.reserved)
		goto dead;
	return 0;
dead:
	mark_dead(x);
	return -ENOTCONN;
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
	memset(&req, 0, sizeof(req));
	ovmc_xp_hdr(&req.h, XPROC_HCALL, 0);
	req.opcode = opcode;
	req.nargs = args ? nargs : 0;
	if (args && nargs)
		memcpy(req.args, args, nargs * sizeof(*args));
	if (transact(x, &req.h, sizeof(req), &rep, sizeof(rep.hcall_reply), XPROC_HCALL_REPLY))
		return OVMC_H_HARDWARE;
	if (rets)
		memcpy(rets, rep.hcall_reply.rets, OVMC_HCALL_RETS * sizeof(*rets));
	return (long)rep.hcall_reply.rc;
}

static int xproc_vmc_node(struct ovmc_platform *p, struct ovmc_vmc_node *out)
{
	struct xproc *x = (struct xproc *)p;
	struct xproc_hdr req;
	union xproc_msg rep;
	const struct xproc_node_reply *r = &rep.node_reply;

	ovmc_xp_hdr(&req, XPROC_NODE, 0);
	if (transact(x, &req, sizeof(req), &rep, sizeof(*r), XPROC_NODE_REPLY))
		return -ENOTCONN;
	if (r->status == -ENODEV)
		return -ENODEV;
	if (r->status != 0) {
		mark_dead(x);
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
		mark_dead(x);
		return 0;
	}
	if (!(pfd.revents & POLLIN))
		return 1;
	/* Outside an hcall the server never speaks: data means a broken peer. */
	n = recv(x->sock, &c, 1, MSG_PEEK | MSG_DONTWAIT);
	if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
		return 1;
	mark_dead(x);
	return 0;
}

static int xproc_alive(struct ovmc_platform *p)
{
	return check((struct xproc *)p);
}

static void xproc_destroy(struct ovmc_platform *p)
{
	struct xproc *x = (struct xproc *)p;

	if (!x->dead && x->sock >= 0) {
		struct xproc_hdr bye;

		/* Tells the server to remove us as deregistered, not failed. */
		ovmc_xp_hdr(&bye, XPROC_DETACH, ++x->seq);
		ovmc_xp_send(x->sock, &bye, sizeof(bye), MSG_DONTWAIT, NULL, 0);
	}
	if (x->sock >= 0)
		close(x->sock);
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

/* Connect and attach; on success x->sock is the new connection. */
static int attach(struct xproc *x)
{
	struct sockaddr_un sa;
	struct xproc_attach req;
	union xproc_msg rep;
	const int fds[XPROC_ATTACH_FDS] = {
		[XPROC_FD_MEM] = x->mem_fd, [XPROC_FD_IRQ] = x->base.irq_fd};
	int rfds[1];
	unsigned nfds = 0;
	bool trunc = false;
	ssize_t n = -1;
	int sock, rc;

	rc = fill_addr(x->path, &sa);
	if (rc)
		return rc;
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
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
	rc = ovmc_xp_send(sock, &req, sizeof(req), 0, fds, XPROC_ATTACH_FDS);
	if (rc == 0) {
		do {
			n = ovmc_xp_recv(sock, &rep, sizeof(rep), 0, rfds, 1, &nfds, &trunc);
		} while (n == -EINTR);
		if (nfds)
			ovmc_xp_close_fds(rfds, 1);
		rc = n < 0 ? (int)n : 0;
	}
	/*
	 * A server closes without an answer only on a peer it does not
	 * accept (credentials); a crash at this very moment looks the same.
	 */
	if (rc == -EPIPE || rc == -ECONNRESET || (rc == 0 && n == 0)) {
		rc = -EACCES;
		goto fail;
	}
	if (rc)
		goto fail;
	if (trunc || nfds || (size_t)n != sizeof(rep.attach_reply) || rep.h.magic != XPROC_MAGIC ||
	    rep.h.type != XPROC_ATTACH_REPLY || rep.h.seq != req.h.seq || rep.h.reserved) {
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
	x->sock = sock;
	x->dead = false;
	return 0;
fail:
	close(sock);
	return rc;
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
	x->mem_fd = -1;
	x->base.irq_fd = -1;
	x->base.mem = MAP_FAILED;
	x->dead = true;
	x->path = strdup(socket_path);
	if (!x->path) {
		rc = -ENOMEM;
		goto fail;
	}
	x->mem_fd = memfd_create("openvmc-partition", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (x->mem_fd < 0 || ftruncate(x->mem_fd, (off_t)size) < 0 ||
	    fcntl(x->mem_fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
		rc = -errno;
		goto fail;
	}
	x->base.mem = mmap(NULL, size, PROT_READ | PROT_WRITE, MAP_SHARED, x->mem_fd, 0);
	if (x->base.mem == MAP_FAILED) {
		rc = -errno;
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

int ovmc_xproc_check(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	return x ? check(x) : 0;
}

int ovmc_xproc_reconnect(struct ovmc_platform *p)
{
	struct xproc *x = to_xproc(p);

	if (!x)
		return -EINVAL;
	mark_dead(x);
	if (x->sock >= 0)
		close(x->sock);
	x->sock = -1;
	/* Interrupts raised for the old partition mean nothing to the new one. */
	ovmc_platform_irq_ack(p);
	return attach(x);
}
