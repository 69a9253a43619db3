/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the programs share around their command lines: the options and
 * their parsing, usage errors, directory creation, running in the
 * background.
 */
#ifndef OVMC_OPTS_H
#define OVMC_OPTS_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <openvmc/common.h>

#include <openvmc/driver.h>

#include "ctl.h"
#include "defaults.h"
#include "dev.h"
#include "hvhost.h"
#include "loop.h"
#include "sock.h"

#define OPTS_DEFAULT_SOCKET OVMC_DEFAULT_HV_SOCKET

/*
 * Every option of the three programs, one meaning each. A program accepts
 * the subset its `shortopts` names (struct opts_program).
 */
struct opts {
	/* the device file: DIR operand, -d, -m, -g, -C, -D */
	const char *dir, *device;
	mode_t mode;
	gid_t gid;
	bool set_gid, cuse, no_device;
	/* the session socket: -S (NULL: next to the device; "none": none) */
	const char *session_socket;
	/* capabilities: -n, -p, -u, -q (0: the core's default) */
	unsigned long hmcs, pool, mtu, hv_crq;
	/* the hypervisor: -N, -R, -b */
	bool no_vmc;
	long request_vmc_rc;
	const char *backend;
	/* the cross-process platform: -s, -r, --hcall-timeout-ms */
	const char *socket;
	unsigned long retry_ms, hcall_timeout_ms;
	/* QEMU guests (openvmc-hvd): --guest-socket, --guest-timeout-ms */
	const char *guest_socket;
	unsigned long guest_timeout_ms;
	/* running: -c (NULL: the program's default; "none": none), -t, -w, -l, -f, -P */
	const char *control, *capture, *pidfile;
	/* --control-group: members may use every control command */
	gid_t control_gid;
	bool set_control_gid;
	enum ovmc_log_level log_level;
	bool trace, foreground;
};

#define OPTS_MAX_CREATED_DIRS 32
/* mkdir -p, remembering what it created (for opts_remove_dirs()). */
struct opts_dirs {
	char *created[OPTS_MAX_CREATED_DIRS];
	unsigned n;
};
int opts_make_dirs(const char *dir, mode_t mode, struct opts_dirs *d);
/* Remove what opts_make_dirs() created, deepest first, only if empty. */
void opts_remove_dirs(struct opts_dirs *d);

/* Options without a letter, by the bit a program sets in `longs` to take them. */
#define OPTS_HCALL_TIMEOUT (1u << 0)
#define OPTS_CONTROL_GROUP (1u << 1)
#define OPTS_GUEST_SOCKET (1u << 2)
#define OPTS_GUEST_TIMEOUT (1u << 3)

struct opts_program {
	const char *name;      /* for --version */
	const char *shortopts; /* getopt letters it accepts, always with "hV" */
	unsigned longs;	       /* OPTS_* bits of the options without a letter it takes */
	void (*usage)(FILE *out);
	bool device; /* takes the DIR operand or --device/--cuse */
	const char *default_control; /* control socket without --control */
};

/*
 * Parse the command line into `o` (defaults first). Returns -1 to go on,
 * or the exit status: 0 after --help/--version, 2 for a usage error
 * (reported on stderr).
 */
int opts_parse(int argc, char **argv, const struct opts_program *p, struct opts *o);
/* The cores' defaults with the capabilities the options gave. */
void opts_drv_config(const struct opts *o, struct ovmc_drv_config *out);
/* Also the backend, --trace and --capture. */
void opts_hv_config(const struct opts *o, struct hvhost_config *out);
/*
 * The device's configuration: DIR is created (remembered in `dirs`) and the
 * file is DIR/ibmvmc in *path (free() it). Returns 0 or -errno (reported).
 */
int opts_dev_config(const struct opts *o, struct opts_dirs *dirs, char **path,
		    struct ovmc_dev_config *out);
/*
 * The session socket's configuration, after opts_dev_config(): *path (free()
 * it) is --session-socket, else the device path with ".sock" appended, or
 * NULL for "none". Returns 0 or -ENOMEM.
 */
int opts_sock_config(const struct opts *o, const struct ovmc_dev_config *dev,
		     const struct ovmc_drv_config *drv, char **path,
		     struct ovmc_sock_config *out);

/*
 * The control socket: --control PATH, whose failure is fatal; none for
 * "none"; else the program's default, its directory created 0700 if
 * missing (remembered in `dirs`). A default that cannot be had (not root,
 * another daemon listening there) is logged and left out: the program runs
 * without one. *out stays NULL without a socket. Returns 0 or -errno.
 */
int opts_control(struct ovmc_loop *loop, const struct opts *o, const struct opts_program *p,
		 const struct ctl_targets *t, struct opts_dirs *dirs, struct ctl **out);

/* Name used in messages ("openvmcd"); set once at start. */
void opts_program(const char *argv0);

/* Print "<prog>: <message>" and the --help hint; returns 2 (the exit status). */
int opts_usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));


/*
 * Go to the background: fork, new session, stdio to /dev/null, logging to
 * syslog. The parent waits until opts_daemon_ready() (exit 0) or the
 * child's exit (its status). Returns 0 in the child, negative errno.
 */
int opts_daemonize(void);
/* Tell the waiting parent set-up succeeded; write `pidfile` if not NULL. */
void opts_daemon_ready(const char *pidfile);

#endif
