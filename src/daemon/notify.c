// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * systemd's readiness protocol in a few lines, not libsystemd: it is a
 * documented, stable datagram format, and this keeps the daemons free of
 * a library dependency that the other service managers speaking it do not
 * need either.
 */
#include "notify.h"

#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* The address, taken out of the environment by ovmc_notify_init(). */
static char notify_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 1];
static bool notify_bad; /* $NOTIFY_SOCKET was set, but too long */

void ovmc_notify_init(void)
{
	const char *env = getenv("NOTIFY_SOCKET");

	if (!env)
		return;
	if (strlen(env) < sizeof(notify_path))
		strcpy(notify_path, env);
	else
		notify_bad = true;
	unsetenv("NOTIFY_SOCKET");
}

int ovmc_notify(const char *state)
{
	const char *path = notify_path;
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len, n = strlen(state);
	ssize_t sent;
	int fd;

	if (notify_bad)
		return -EAFNOSUPPORT;
	if (!path[0])
		return 0;
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len < 2 || len > sizeof(sa.sun_path))
		return -EAFNOSUPPORT;
	memcpy(sa.sun_path, path, len);
	if (sa.sun_path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	sent = sendto(fd, state, n, MSG_NOSIGNAL | MSG_DONTWAIT, (const struct sockaddr *)&sa,
		      (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
	if (sent < 0)
		sent = -errno;
	close(fd);
	if (sent < 0)
		return (int)sent;
	return (size_t)sent == n ? 0 : -EMSGSIZE;
}

void ovmc_notify_ready(const char *fmt, ...)
{
	char msg[512];
	va_list ap;
	int rc, n;

	if (!notify_path[0] && !notify_bad)
		return;
	n = snprintf(msg, sizeof(msg), "READY=1\nSTATUS=");
	va_start(ap, fmt);
	vsnprintf(msg + n, sizeof(msg) - (size_t)n, fmt, ap);
	va_end(ap);
	rc = ovmc_notify(msg);
	if (rc)
		ovmc_log(OVMC_LOG_WARN, "main", "cannot tell the service manager at %s: %s",
			 notify_bad ? "$NOTIFY_SOCKET (too long)" : notify_path, strerror(-rc));
}

void ovmc_notify_stopping(void)
{
	ovmc_notify("STOPPING=1");
}
