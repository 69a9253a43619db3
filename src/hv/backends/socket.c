// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The socket backend: the hypervisor's layer 2 is a server reached over a
 * stream socket, speaking frames (docs/framing.md).
 *
 *   socket:PATH               Unix stream socket
 *   socket:tcp:HOST:PORT      TCP; HOST must be a loopback address
 *                             (127.0.0.0/8, ::1 or [::1], localhost)
 *
 * It connects at creation (and fails if it cannot). When the connection
 * breaks it is logged and counted; the next event that needs the server
 * connects again (without blocking) and announces the open sessions again.
 * Frames that cannot be sent meanwhile are counted as dropped and logged.
 */
#include "peer.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

struct socket_be {
	struct ovmc_peer peer; /* first: the backend's arg */
	char *desc;	       /* the address as given, for logs */
	struct sockaddr_storage addr;
	socklen_t addrlen;
};

static const struct ovmc_backend_ops socket_ops = {
	.name = "socket",
	.open = ovmc_peer_open,
	.message = ovmc_peer_message,
	.close = ovmc_peer_close,
	.writable = ovmc_peer_writable,
};

/*
 * A connected (0) or connecting (1, non-blocking only) socket in *out, or
 * -errno.
 */
static int open_socket(const struct socket_be *sb, bool nonblock, int *out)
{
	int family = sb->addr.ss_family;
	int fd = socket(family, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
	int rc, one = 1;

	if (fd < 0)
		return -errno;
	if (family != AF_UNIX)
		setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	if (connect(fd, (const struct sockaddr *)&sb->addr, sb->addrlen) == 0) {
		*out = fd;
		return 0;
	}
	if (nonblock && errno == EINPROGRESS) {
		*out = fd;
		return 1;
	}
	rc = -errno;
	close(fd);
	return rc;
}

/* Reconnect (from a core callback): must not block. */
static int socket_connect(struct ovmc_peer *p)
{
	struct socket_be *sb = (struct socket_be *)p;
	int fd = -1, rc = open_socket(sb, true, &fd);

	if (rc < 0)
		return rc;
	ovmc_peer_attach(p, fd, fd, rc == 1);
	return 0;
}

static const struct ovmc_peer_ops socket_peer_ops = {
	.connect = socket_connect,
};

static int parse_unix(struct socket_be *sb, const char *path)
{
	struct sockaddr_un *sun = (struct sockaddr_un *)&sb->addr;
	size_t n = strlen(path);

	if (n >= sizeof(sun->sun_path))
		return -ENAMETOOLONG;
	sun->sun_family = AF_UNIX;
	memcpy(sun->sun_path, path, n + 1);
	sb->addrlen = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + n + 1);
	return 0;
}

static int parse_port(const char *s, uint16_t *out)
{
	unsigned long v = 0;

	if (!*s || strlen(s) > 5)
		return -EINVAL;
	for (const char *c = s; *c; c++) {
		if (*c < '0' || *c > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(*c - '0');
	}
	if (v == 0 || v > 65535)
		return -EINVAL;
	*out = (uint16_t)v;
	return 0;
}

/*
 * "HOST:PORT" with HOST a loopback address. -EINVAL for a malformed
 * specification, -EPERM for a host that is not loopback (names other
 * than localhost are not resolved: a name could lead anywhere).
 */
static int parse_tcp(struct socket_be *sb, const char *hp, const struct ovmc_backend_env *env)
{
	const char *colon = strrchr(hp, ':');
	char host[64];
	size_t hl;
	uint16_t port;
	struct sockaddr_in *sin = (struct sockaddr_in *)&sb->addr;
	struct sockaddr_in6 *sin6 = (struct sockaddr_in6 *)&sb->addr;

	if (!colon || parse_port(colon + 1, &port)) {
		ovmc_backend_log(env, OVMC_LOG_ERROR,
				 "socket: `tcp:%s` is not HOST:PORT with a port 1..65535", hp);
		return -EINVAL;
	}
	hl = (size_t)(colon - hp);
	if (hl >= 2 && hp[0] == '[' && hp[hl - 1] == ']') {
		hp++;
		hl -= 2;
	}
	if (hl == 0 || hl >= sizeof(host)) {
		ovmc_backend_log(env, OVMC_LOG_ERROR, "socket: bad host in `tcp:%s`", hp);
		return -EINVAL;
	}
	memcpy(host, hp, hl);
	host[hl] = 0;
	if (strcmp(host, "localhost") == 0) {
		sin->sin_family = AF_INET;
		sin->sin_port = htons(port);
		sin->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		sb->addrlen = sizeof(*sin);
		return 0;
	}
	if (inet_pton(AF_INET, host, &sin->sin_addr) == 1) {
		if ((ntohl(sin->sin_addr.s_addr) >> 24) == 127) {
			sin->sin_family = AF_INET;
			sin->sin_port = htons(port);
			sb->addrlen = sizeof(*sin);
			return 0;
		}
	} else if (inet_pton(AF_INET6, host, &sin6->sin6_addr) == 1) {
		const uint8_t *a = sin6->sin6_addr.s6_addr;

		if (IN6_IS_ADDR_LOOPBACK(&sin6->sin6_addr) ||
		    (IN6_IS_ADDR_V4MAPPED(&sin6->sin6_addr) && a[12] == 127)) {
			sin6->sin6_family = AF_INET6;
			sin6->sin6_port = htons(port);
			sb->addrlen = sizeof(*sin6);
			return 0;
		}
	}
	memset(&sb->addr, 0, sizeof(sb->addr));
	ovmc_backend_log(env, OVMC_LOG_ERROR,
			 "socket: refusing %s: not a loopback address (allowed: 127.0.0.0/8, ::1, "
			 "localhost; host names are not resolved)",
			 host);
	return -EPERM;
}

static void socket_free(struct socket_be *sb)
{
	ovmc_peer_fini(&sb->peer);
	free(sb->desc);
	free(sb);
}

static void socket_destroy(void *arg)
{
	socket_free(arg);
}

int ovmc_backend_socket_new(const char *args, const struct ovmc_backend_env *env,
			    struct ovmc_backend *out)
{
	struct socket_be *sb;
	int rc, fd = -1;

	if (!args || !*args) {
		ovmc_backend_log(env, OVMC_LOG_ERROR,
				 "socket: no address (use socket:PATH or socket:tcp:HOST:PORT)");
		return -EINVAL;
	}
	sb = calloc(1, sizeof(*sb));
	if (!sb)
		return -ENOMEM;
	sb->desc = strdup(args);
	if (!sb->desc) {
		free(sb);
		return -ENOMEM;
	}
	if (strncmp(args, "tcp:", 4) == 0) {
		rc = parse_tcp(sb, args + 4, env);
	} else {
		rc = parse_unix(sb, args);
		if (rc)
			ovmc_backend_log(env, OVMC_LOG_ERROR, "socket: path too long: %s", args);
	}
	if (rc) {
		free(sb->desc);
		free(sb);
		return rc;
	}
	rc = ovmc_peer_init(&sb->peer, "socket", sb->desc, env, &socket_peer_ops, true);
	if (rc) {
		free(sb->desc);
		free(sb);
		return rc;
	}
	/* The first connection may block briefly: a local or loopback peer
	 * answers at once, and set-up is not the owner's loop. */
	rc = open_socket(sb, false, &fd);
	if (rc == 0) {
		int fl = fcntl(fd, F_GETFL);

		if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0) {
			rc = -errno;
			close(fd);
		}
	}
	if (rc) {
		ovmc_backend_log(env, OVMC_LOG_ERROR, "socket: cannot connect to %s: %s", args,
				 ovmc_strerror(rc));
		socket_free(sb);
		return rc;
	}
	ovmc_peer_attach(&sb->peer, fd, fd, false);
	ovmc_backend_log(env, OVMC_LOG_INFO, "socket: connected to %s", args);
	*out = (struct ovmc_backend){.ops = &socket_ops,
				     .arg = &sb->peer,
				     .fd = ovmc_peer_fd,
				     .dispatch = ovmc_peer_dispatch,
				     .destroy = socket_destroy};
	return 0;
}
