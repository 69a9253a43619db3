// SPDX-License-Identifier: GPL-2.0-or-later
#include "opts.h"

#include "log.h"

#include <openvmc/guest.h>
#include <openvmc/platform.h>
#include <openvmc/xproc.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *prog = "openvmc";
static int ready_fd = -1;

void opts_program(const char *argv0)
{
	const char *slash = strrchr(argv0, '/');

	prog = slash ? slash + 1 : argv0;
}

int opts_usage_error(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "%s: ", prog);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry '%s --help'.\n", prog);
	return 2;
}

static bool opts_uint(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 0);
	if (errno || end == s || *end || *s == '-' || v < min || v > max)
		return false;
	*out = v;
	return true;
}

static bool opts_mode(const char *s, mode_t *out)
{
	unsigned long v;

	errno = 0;
	v = strtoul(s, NULL, 8);
	if (errno || !*s || s[strspn(s, "01234567")] || v > 07777)
		return false;
	*out = (mode_t)v;
	return true;
}

static bool opts_group(const char *s, gid_t *out)
{
	unsigned long v;
	struct group *g;

	if (opts_uint(s, 0, UINT_MAX - 1, &v)) {
		*out = (gid_t)v;
		return true;
	}
	g = getgrnam(s);
	if (!g)
		return false;
	*out = g->gr_gid;
	return true;
}

static bool rc_is(long rc, const char *want)
{
	const char *name = ovmc_hcall_rc_name(rc);

	return strcmp(name, "H_?") != 0 && strcasecmp(name + 2, want) == 0;
}

static bool opts_hcall_rc(const char *s, long *out)
{
	const char *want = strncasecmp(s, "H_", 2) == 0 ? s + 2 : s;
	char *end;
	long v;

	for (long rc = -64; rc <= 64; rc++) {
		if (rc_is(rc, want)) {
			*out = rc;
			return true;
		}
	}
	for (long rc = OVMC_H_LONG_BUSY_ORDER_1_MSEC; rc <= OVMC_H_LONG_BUSY_ORDER_100_SEC; rc++) {
		if (rc_is(rc, want)) {
			*out = rc;
			return true;
		}
	}
	errno = 0;
	v = strtol(s, &end, 0);
	if (errno || end == s || *end)
		return false;
	*out = v;
	return true;
}

/*
 * The backend specification's syntax, checked before anything starts so a
 * typo is a usage error (2), like any bad value; what the backend finds
 * when it starts (a missing file, a server not there) stays a failure (1).
 */
static bool opts_backend(const char *s)
{
	static const struct {
		const char *name;
		bool args; /* takes ":ARGS" (required), else none */
	} kinds[] = {{"echo", false}, {"router", false}, {"exec", true},
		     {"socket", true}, {"replay", true}};
	const char *colon = strchr(s, ':');
	size_t n = colon ? (size_t)(colon - s) : strlen(s);

	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++)
		if (strlen(kinds[i].name) == n && strncmp(s, kinds[i].name, n) == 0)
			return kinds[i].args ? colon && colon[1] : !colon;
	return false;
}

#define DEVICE_NAME "ibmvmc"
/* getopt values of the options without a letter: 256 + their OPTS_* bit. */
#define LONG_ONLY 256
#define VAL_HCALL_TIMEOUT (LONG_ONLY + 0)
#define VAL_CONTROL_GROUP (LONG_ONLY + 1)
#define VAL_GUEST_SOCKET (LONG_ONLY + 2)
#define VAL_GUEST_TIMEOUT (LONG_ONLY + 3)

/* Every long option; a program's shortopts select the ones it takes. */
static const struct option all_longs[] = {
	{"device", required_argument, NULL, 'd'},
	{"mode", required_argument, NULL, 'm'},
	{"group", required_argument, NULL, 'g'},
	{"cuse", no_argument, NULL, 'C'},
	{"no-device", no_argument, NULL, 'D'},
	{"session-socket", required_argument, NULL, 'S'},
	{"hmcs", required_argument, NULL, 'n'},
	{"pool", required_argument, NULL, 'p'},
	{"mtu", required_argument, NULL, 'u'},
	{"hv-crq", required_argument, NULL, 'q'},
	{"no-vmc", no_argument, NULL, 'N'},
	{"request-vmc-rc", required_argument, NULL, 'R'},
	{"backend", required_argument, NULL, 'b'},
	{"socket", required_argument, NULL, 's'},
	{"retry-ms", required_argument, NULL, 'r'},
	{"control", required_argument, NULL, 'c'},
	{"trace", no_argument, NULL, 't'},
	{"capture", required_argument, NULL, 'w'},
	{"log-level", required_argument, NULL, 'l'},
	{"foreground", no_argument, NULL, 'f'},
	{"pidfile", required_argument, NULL, 'P'},
	{"hcall-timeout-ms", required_argument, NULL, VAL_HCALL_TIMEOUT},
	{"control-group", required_argument, NULL, VAL_CONTROL_GROUP},
	{"guest-socket", required_argument, NULL, VAL_GUEST_SOCKET},
	{"guest-timeout-ms", required_argument, NULL, VAL_GUEST_TIMEOUT},
	{"help", no_argument, NULL, 'h'},
	{"version", no_argument, NULL, 'V'},
};
#define N_LONGS (sizeof(all_longs) / sizeof(all_longs[0]))

/* A number option in [min, max]; 2 (usage error) or 0. */
static int number(const char *name, const char *arg, unsigned long min, unsigned long max,
		  unsigned long *out)
{
	if (opts_uint(arg, min, max, out))
		return 0;
	return opts_usage_error("--%s takes %lu..%lu, not \"%s\"", name, min, max, arg);
}

/* One option: 0, or the exit status. */
static int one(int c, const char *arg, const struct opts_program *p, struct opts *o)
{
	switch (c) {
	case 'd':
		o->device = arg;
		return 0;
	case 'm':
		return opts_mode(arg, &o->mode)
			       ? 0
			       : opts_usage_error("bad mode \"%s\" (octal, e.g. 0660)", arg);
	case 'g':
		o->set_gid = true;
		return opts_group(arg, &o->gid) ? 0 : opts_usage_error("unknown group \"%s\"", arg);
	case 'C':
		o->cuse = true;
		return 0;
	case 'D':
		o->no_device = true;
		return 0;
	case 'S':
		if (!*arg)
			return opts_usage_error("%s", "--session-socket takes a path or \"none\"");
		o->session_socket = arg;
		return 0;
	case 'n':
		return number("hmcs", arg, 1, 255, &o->hmcs);
	case 'p':
		return number("pool", arg, 1, 1024, &o->pool);
	case 'u':
		return number("mtu", arg, 32, 65536, &o->mtu);
	case 'q':
		return number("hv-crq", arg, 2, 65535, &o->hv_crq);
	case 'N':
		o->no_vmc = true;
		return 0;
	case 'R':
		return opts_hcall_rc(arg, &o->request_vmc_rc)
			       ? 0
			       : opts_usage_error("unknown hcall return code \"%s\"", arg);
	case 'b':
		o->backend = arg;
		return opts_backend(arg) ? 0
					 : opts_usage_error("bad backend \"%s\" (echo, router, "
							    "exec:CMD, socket:PATH, "
							    "socket:tcp:HOST:PORT, replay:FILE)",
							    arg);
	case 's':
		o->socket = arg;
		return 0;
	case 'r':
		return number("retry-ms", arg, 1, 3600000, &o->retry_ms);
	case 'c':
		o->control = arg;
		return 0;
	case 't':
		o->trace = true;
		return 0;
	case 'w':
		o->capture = arg;
		return 0;
	case 'l':
		return ovmc_log_level_parse(arg, &o->log_level)
			       ? opts_usage_error("unknown log level \"%s\"", arg)
			       : 0;
	case 'f':
		o->foreground = true;
		return 0;
	case 'P':
		o->pidfile = arg;
		return 0;
	case VAL_HCALL_TIMEOUT:
		return number("hcall-timeout-ms", arg, 1, OVMC_XPROC_MAX_TIMEOUT_MS,
			      &o->hcall_timeout_ms);
	case VAL_CONTROL_GROUP:
		o->set_control_gid = true;
		return opts_group(arg, &o->control_gid)
			       ? 0
			       : opts_usage_error("unknown group \"%s\"", arg);
	case VAL_GUEST_SOCKET:
		if (!*arg)
			return opts_usage_error("%s", "--guest-socket takes a path");
		o->guest_socket = arg;
		return 0;
	case VAL_GUEST_TIMEOUT:
		return number("guest-timeout-ms", arg, 1, OVMC_XPROC_MAX_TIMEOUT_MS,
			      &o->guest_timeout_ms);
	default:
		fprintf(stderr, "Try '%s --help'.\n", p->name);
		return 2;
	}
}

int opts_parse(int argc, char **argv, const struct opts_program *p, struct opts *o)
{
	struct option longs[N_LONGS + 1];
	size_t n = 0;
	int c;

	*o = (struct opts){.mode = 0600, .request_vmc_rc = OVMC_H_SUCCESS,
			   .socket = OPTS_DEFAULT_SOCKET, .retry_ms = 500,
			   .hcall_timeout_ms = OVMC_XPROC_DEFAULT_TIMEOUT_MS,
			   .guest_timeout_ms = OVMC_GUEST_DEFAULT_TIMEOUT_MS,
			   .log_level = OVMC_LOG_INFO};
	for (size_t i = 0; i < N_LONGS; i++) {
		int v = all_longs[i].val;

		if (v < LONG_ONLY ? strchr(p->shortopts, v) != NULL
				  : (p->longs & (1u << (v - LONG_ONLY))) != 0)
			longs[n++] = all_longs[i];
	}
	longs[n] = (struct option){0};
	while ((c = getopt_long(argc, argv, p->shortopts, longs, NULL)) != -1) {
		int rc;

		if (c == 'h') {
			p->usage(stdout);
			return 0;
		}
		if (c == 'V') {
			printf("%s (openvmc) %s\n", p->name, OVMC_VERSION_STRING);
			return 0;
		}
		rc = one(c, optarg, p, o);
		if (rc)
			return rc;
	}
	if (p->device && optind < argc)
		o->dir = argv[optind++];
	if (optind < argc)
		return opts_usage_error("unexpected argument \"%s\"", argv[optind]);
	if (!p->device)
		return -1;
	if (o->dir && (o->device || o->cuse))
		return opts_usage_error("give DIR or --device/--cuse, not both (%s)", o->dir);
	if (o->no_device && o->cuse)
		return opts_usage_error("%s", "--no-device and --cuse exclude each other");
	if (o->no_device && o->session_socket && strcmp(o->session_socket, "none") == 0)
		return opts_usage_error("%s", "--no-device needs a session socket, not \"none\"");
	if (!o->dir && !o->device && !o->cuse && !(o->no_device && o->session_socket))
		return opts_usage_error("%s", "no device: give DIR or --device PATH");
	if (o->cuse && o->device &&
	    (strncmp(o->device, "/dev/", 5) != 0 || !o->device[5] || strchr(o->device + 5, '/')))
		return opts_usage_error("a --cuse device is /dev/NAME, not \"%s\"", o->device);
	return -1;
}

/* A daemon accepts at `path`: the default is taken by another instance. */
static bool someone_listens(const char *path)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct stat st;
	int fd;
	bool live;

	if (lstat(path, &st) != 0 || !S_ISSOCK(st.st_mode) || strlen(path) >= sizeof(sa.sun_path))
		return false;
	memcpy(sa.sun_path, path, strlen(path) + 1);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return false;
	live = connect(fd, (const struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

/*
 * --control-group gives the socket to a group, but its members also need
 * to enter every directory above it, and the defaults' /run/openvmc stays
 * 0700 (openvmc-hvd refuses a partitions' socket anywhere less private).
 * Said at start, not found out by a member's EACCES.
 */
static void check_group_reach(const char *socket, gid_t group)
{
	char *copy = strdup(socket), *slash, *dir;
	size_t len;

	if (!copy)
		return;
	slash = strrchr(copy, '/');
	if (slash)
		*(slash == copy ? slash + 1 : slash) = '\0';
	dir = realpath(slash ? copy : ".", NULL);
	free(copy);
	if (!dir)
		return;
	len = strlen(dir);
	/* Every prefix that names a directory: "/run", then "/run/openvmc". */
	for (size_t i = 1; i <= len; i++) {
		struct stat st;
		char c = dir[i];

		if (c != '/' && c != '\0')
			continue;
		dir[i] = '\0';
		if (stat(dir, &st) == 0 && !(st.st_mode & S_IXOTH) &&
		    !(st.st_gid == group && (st.st_mode & S_IXGRP))) {
			ovmc_log(OVMC_LOG_WARN, "main",
				 "control socket %s: members of group %u cannot reach it: "
				 "directory %s is mode %04o, group %u (give --control a path "
				 "in a directory they may enter)",
				 socket, (unsigned)group, dir, (unsigned)(st.st_mode & 07777),
				 (unsigned)st.st_gid);
			break;
		}
		dir[i] = c;
	}
	free(dir);
}

static int control_at(struct ovmc_loop *loop, const char *path, const struct ctl_targets *t,
		      struct ctl **out)
{
	int rc = ctl_new(loop, path, t, out);

	if (rc == 0 && t->use_group)
		check_group_reach(path, t->group);
	return rc;
}

int opts_control(struct ovmc_loop *loop, const struct opts *o, const struct opts_program *p,
		 const struct ctl_targets *t, struct opts_dirs *dirs, struct ctl **out)
{
	const char *path = o->control ? o->control : p->default_control;
	char *dir;
	int rc;

	*out = NULL;
	if (!path || strcmp(path, "none") == 0)
		return 0;
	if (o->control)
		return control_at(loop, path, t, out);
	/* The default: a second instance, or a user without /run, runs without. */
	dir = strdup(path);
	if (!dir)
		return -ENOMEM;
	*strrchr(dir, '/') = '\0';
	/* Only the last level: the defaults are right under /run. */
	rc = 0;
	if (mkdir(dir, 0700) == 0) {
		if (dirs->n < OPTS_MAX_CREATED_DIRS) {
			dirs->created[dirs->n++] = dir;
			dir = NULL;
		}
	} else if (errno != EEXIST) {
		rc = -errno;
	}
	free(dir);
	if (!rc && someone_listens(path))
		rc = -EADDRINUSE;
	if (!rc)
		rc = control_at(loop, path, t, out);
	if (rc)
		ovmc_log(OVMC_LOG_WARN, "main",
			 "no control socket: the default %s: %s (--control PATH picks another, "
			 "--control none turns this off)",
			 path, rc == -EADDRINUSE ? "another daemon listens there" : strerror(-rc));
	return rc == -ENOMEM ? rc : 0;
}

void opts_drv_config(const struct opts *o, struct ovmc_drv_config *out)
{
	ovmc_drv_config_default(out);
	if (o->hmcs)
		out->max_hmcs = (uint8_t)o->hmcs;
	if (o->pool)
		out->pool_size = (uint16_t)o->pool;
	if (o->mtu)
		out->max_mtu = (uint32_t)o->mtu;
}

void opts_hv_config(const struct opts *o, struct hvhost_config *out)
{
	*out = (struct hvhost_config){
		.backend = o->backend, .trace = o->trace, .capture = o->capture};
	ovmc_hv_config_default(&out->hv);
	if (o->hmcs)
		out->hv.max_hmcs = (uint8_t)o->hmcs;
	if (o->pool)
		out->hv.pool_size = (uint16_t)o->pool;
	if (o->mtu)
		out->hv.mtu = (uint32_t)o->mtu;
	if (o->hv_crq)
		out->hv.crq_size = (uint16_t)o->hv_crq;
}

int opts_dev_config(const struct opts *o, struct opts_dirs *dirs, char **path,
		    struct ovmc_dev_config *out)
{
	int rc;

	*path = NULL;
	if (o->dir) {
		rc = opts_make_dirs(o->dir, 0755, dirs);
		if (rc)
			return rc;
		if (asprintf(path, "%s/%s", o->dir, DEVICE_NAME) < 0) {
			*path = NULL;
			return -ENOMEM;
		}
	}
	*out = (struct ovmc_dev_config){
		.path = o->dir ? *path : o->device,
		.mode = o->mode,
		.gid = o->gid,
		.set_gid = o->set_gid,
		.cuse = o->cuse,
		/* opts_parse() made sure a CUSE --device is /dev/NAME. */
		.cuse_name = o->cuse && o->device ? strrchr(o->device, '/') + 1 : DEVICE_NAME,
	};
	return 0;
}

int opts_sock_config(const struct opts *o, const struct ovmc_dev_config *dev,
		     const struct ovmc_drv_config *drv, char **path, struct ovmc_sock_config *out)
{
	*path = NULL;
	*out = (struct ovmc_sock_config){
		.mode = o->mode, .gid = o->gid, .set_gid = o->set_gid, .max_mtu = drv->max_mtu};
	if (o->session_socket && strcmp(o->session_socket, "none") == 0)
		return 0;
	if (o->session_socket)
		*path = strdup(o->session_socket);
	else if (dev->cuse ? asprintf(path, "/dev/%s.sock", dev->cuse_name) < 0
			   : asprintf(path, "%s.sock", dev->path) < 0)
		*path = NULL;
	if (!*path)
		return -ENOMEM;
	out->path = *path;
	return 0;
}

int opts_make_dirs(const char *dir, mode_t mode, struct opts_dirs *d)
{
	char *path = strdup(dir);
	int rc = 0;

	if (!path)
		return -ENOMEM;
	for (char *p = path + 1;; p++) {
		bool last = *p == '\0';

		if (*p != '/' && !last)
			continue;
		*p = '\0';
		if (mkdir(path, mode) == 0) {
			if (d->n < OPTS_MAX_CREATED_DIRS)
				d->created[d->n++] = strdup(path);
		} else if (errno != EEXIST) {
			rc = -errno;
			fprintf(stderr, "%s: cannot create %s: %s\n", prog, path, strerror(errno));
			break;
		}
		if (last)
			break;
		*p = '/';
	}
	free(path);
	return rc;
}

void opts_remove_dirs(struct opts_dirs *d)
{
	while (d->n > 0) {
		char *dir = d->created[--d->n];

		/* Only if empty: the user may have put things there meanwhile. */
		rmdir(dir);
		free(dir);
	}
}

int opts_daemonize(void)
{
	int p[2], null_fd, status;
	pid_t pid;
	char c;

	if (pipe2(p, O_CLOEXEC))
		return -errno;
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid > 0) {
		close(p[1]);
		/* Readiness byte, or EOF when the child died first. */
		if (read(p[0], &c, 1) == 1)
			_exit(0);
		if (waitpid(pid, &status, 0) == pid && WIFEXITED(status))
			_exit(WEXITSTATUS(status) ? WEXITSTATUS(status) : 1);
		_exit(1);
	}
	close(p[0]);
	ready_fd = p[1];
	setsid();
	null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null_fd >= 0) {
		dup2(null_fd, STDIN_FILENO);
		dup2(null_fd, STDOUT_FILENO);
		dup2(null_fd, STDERR_FILENO);
		if (null_fd > STDERR_FILENO)
			close(null_fd);
	}
	ovmc_log_use_syslog();
	return 0;
}

void opts_daemon_ready(const char *pidfile)
{
	if (pidfile) {
		FILE *f = fopen(pidfile, "w");
		bool bad = !f;

		/* Closed even when the write failed: no stream is left behind. */
		if (f) {
			bad = fprintf(f, "%d\n", (int)getpid()) < 0;
			if (fclose(f) != 0)
				bad = true;
		}
		if (bad)
			ovmc_log(OVMC_LOG_WARN, "main", "cannot write %s: %s", pidfile,
				 strerror(errno));
	}
	if (ready_fd >= 0) {
		if (write(ready_fd, "", 1) != 1)
			ovmc_log(OVMC_LOG_WARN, "main", "cannot tell the parent: %s",
				 strerror(errno));
		close(ready_fd);
		ready_fd = -1;
	}
}
