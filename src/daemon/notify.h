/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Readiness for a service manager, by systemd's notification protocol
 * (sd_notify(3)): one datagram of "VAR=value" lines to the AF_UNIX socket
 * that $NOTIFY_SOCKET names (a path, or "@name" in the abstract
 * namespace). With `Type=notify`, `After=` on the unit then means "ready".
 * Without $NOTIFY_SOCKET every call does nothing. Main thread only.
 */
#ifndef OVMC_DAEMON_NOTIFY_H
#define OVMC_DAEMON_NOTIFY_H

/*
 * First thing in main(): take $NOTIFY_SOCKET out of the environment, so
 * that no program the daemon starts (exec: backends, fusermount3) can
 * speak for it.
 */
void ovmc_notify_init(void);

/*
 * Send `state` ("READY=1\nSTATUS=..."). Never blocks. Returns 0, also
 * without $NOTIFY_SOCKET, -EAFNOSUPPORT for an address that is neither a
 * path nor abstract, or the -errno of socket()/sendto().
 */
int ovmc_notify(const char *state);

/*
 * The program is ready: its sockets listen and its device is served.
 * `fmt` and the arguments make a line for `systemctl status`. Logs a warning when the
 * message cannot be sent.
 */
void ovmc_notify_ready(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* The program is stopping (after a signal). */
void ovmc_notify_stopping(void);

#endif
