// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * openvmcd: the management partition's VMC driver as a daemon. It attaches
 * to the hypervisor daemon (openvmc-hvd) over the cross-process platform,
 * runs the driver core and serves the device file with the Linux ibmvmc
 * ABI. When the hypervisor goes away, open files see a channel reset and
 * the daemon attaches again by itself.
 *
 *   openvmcd --foreground --socket /run/openvmc/hv.sock --device /dev/ibmvmc
 *
 * See openvmcd(8).
 */
#include "ctl.h"
#include "drvhost.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "opts.h"

#include <openvmc/common.h>
#include <openvmc/xproc.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <unistd.h>

#define NS_PER_MS 1000000ull

/*
 * The attachment to the hypervisor and its re-attachment, never waiting:
 * an attempt's answer is an event of the loop like any other, so a
 * hypervisor that is stopped or slow holds nothing up.
 */
struct attach {
	struct ovmc_loop *loop;
	struct ovmc_platform *plat;
	struct drvhost *drv;
	const char *socket;
	uint64_t retry_ns;
	unsigned timeout_ms;
	int fd;            /* watched: the connection, or an attempt waiting; else -1 */
	bool waiting;      /* fd is an attempt waiting for its answer */
	uint64_t retry_at; /* next attempt while lost */
	int last_rc;       /* of the last failed attempt: a new reason is logged */
	bool attached;     /* at least once */
	uint64_t flush_at; /* reports of copies are sent by then at the latest */
};

/*
 * Reports of copies out of the hypervisor window go with the next hcall,
 * so they cost the hypervisor no wake-up of its own; one held while the
 * channel goes quiet is sent within FLUSH_NS to 2 * FLUSH_NS. The deadline
 * is on a grid and kept after the reports went, so a busy channel re-arms
 * the loop's timer once per FLUSH_NS, not per message.
 */
#define FLUSH_NS (5 * NS_PER_MS)

static void usage(FILE *out)
{
	fputs("Usage: openvmcd [options] DIR          serve DIR/ibmvmc\n"
	      "       openvmcd [options] --device PATH  serve PATH (e.g. /dev/ibmvmc)\n"
	      "       openvmcd [options] --no-device DIR  only the session socket DIR/ibmvmc.sock\n"
	      "       openvmcd [options] --cuse         a CUSE character device /dev/ibmvmc\n"
	      "\n"
	      "The management partition's VMC driver: attaches to the hypervisor daemon\n"
	      "(openvmc-hvd) and serves the device file with the Linux ibmvmc ABI.\n"
	      "\n"
	      "  -s, --socket PATH        the hypervisor's socket (" OPTS_DEFAULT_SOCKET ")\n"
	      "  -d, --device PATH        device file to serve (CUSE: /dev/NAME)\n"
	      "  -m, --mode OCTAL         permissions of the device file (0600)\n"
	      "  -g, --group NAME|GID     group of the device file and the session socket;\n"
	      "                           its members may use the channel\n"
	      "  -S, --session-socket PATH|none\n"
	      "                           the session socket for vmc-run and the client\n"
	      "                           library (default: the device path + \".sock\")\n"
	      "  -D, --no-device          serve no device file (no FUSE), only the socket\n"
	      "  -n, --hmcs N             HMC connections asked for (1; Linux allows 2; max 255)\n"
	      "  -p, --pool N             buffers per HMC connection (32)\n"
	      "  -u, --mtu N              largest message in bytes (4096)\n"
	      "  -r, --retry-ms MS        interval of attachment attempts (500)\n"
	      "      --hcall-timeout-ms MS\n"
	      "                           a hypervisor that takes longer to answer an\n"
	      "                           hcall is treated as failed (1000)\n"
	      "  -c, --control PATH|none  control socket (status, trace); default\n"
	      "                           " OVMC_DEFAULT_CTL_OPENVMCD "\n"
	      "      --control-group GRP  members of group GRP may use every control command\n"
	      "  -t, --trace              log every CRQ entry and RDMA in readable form\n"
	      "  -w, --capture FILE       write every CRQ entry and RDMA to a pcapng file\n"
	      "  -l, --log-level LEVEL    error, warn, info (default), debug or trace\n"
	      "  -C, --cuse               serve a CUSE character device instead of a FUSE file\n"
	      "  -f, --foreground         stay in the foreground, log to stderr\n"
	      "  -P, --pidfile FILE       write the daemon's pid here\n"
	      "  -h, --help               this text\n"
	      "  -V, --version            the version\n",
	      out);
}

static const struct opts_program program = {
	.name = "openvmcd",
	.shortopts = "s:d:m:g:n:p:u:r:c:tw:l:CfP:DS:hV",
	.longs = OPTS_HCALL_TIMEOUT | OPTS_CONTROL_GROUP,
	.usage = usage,
	.default_control = OVMC_DEFAULT_CTL_OPENVMCD,
	.device = true,
};

/*
 * An attempt waits for its answer (readable); an attached connection is
 * watched for its end only: every hcall's reply would make it readable for
 * a moment, and cost the loop a wake-up each. Data the server sends
 * outside an hcall (a broken server) is found by the next hcall.
 */
static int watch(struct attach *a, ovmc_loop_fd_fn fn, uint32_t events)
{
	int rc;

	a->fd = ovmc_xproc_fd(a->plat);
	rc = ovmc_loop_add_events(a->loop, a->fd, events, fn, a);
	if (rc)
		a->fd = -1;
	return rc;
}

static void unwatch(struct attach *a)
{
	if (a->fd >= 0)
		ovmc_loop_del(a->loop, a->fd);
	a->fd = -1;
	a->waiting = false;
}

/* What an attempt's error says about the hypervisor, for the log. */
static const char *attach_problem(int rc)
{
	switch (rc) {
	case -ENOENT:
	case -ECONNREFUSED:
		return "not there";
	case -ECONNRESET:
		return "closed the connection without answering (going down?)";
	case -EAGAIN:
		return "not accepting connections (its backlog is full)";
	case -EBUSY:
		return "refused us: it serves as many partitions as it takes";
	case -EACCES:
		return "refused us: our credentials, or no access to its socket";
	case -EPROTO:
		return "speaks another protocol version";
	}
	return NULL;
}

static void attach_failed(struct attach *a, int rc, uint64_t now)
{
	const char *what = attach_problem(rc);

	/* No hypervisor yet is normal; anything else is worth a warning. */
	if (rc != a->last_rc) {
		enum ovmc_log_level level =
			rc == -ENOENT || rc == -ECONNREFUSED ? OVMC_LOG_INFO : OVMC_LOG_WARN;

		if (what)
			ovmc_log(level, "main", "hypervisor at %s %s; retrying every %llu ms",
				 a->socket, what, (unsigned long long)(a->retry_ns / NS_PER_MS));
		else
			ovmc_log(level, "main",
				 "attaching to the hypervisor at %s failed: %s; retrying every "
				 "%llu ms",
				 a->socket, ovmc_strerror(rc),
				 (unsigned long long)(a->retry_ns / NS_PER_MS));
	}
	a->last_rc = rc;
	a->retry_at = now + a->retry_ns;
}

static void on_hv_socket(void *arg, int fd, uint32_t events);

static void attached(struct attach *a)
{
	if (watch(a, on_hv_socket, EPOLLRDHUP)) {
		attach_failed(a, -ENOMEM, ovmc_now_ns());
		return;
	}
	ovmc_log(OVMC_LOG_INFO, "main", "%s to the hypervisor at %s",
		 a->attached ? "re-attached" : "attached", a->socket);
	a->attached = true;
	a->last_rc = 0;
	drvhost_platform_back(a->drv, a->plat);
}

/* The socket only becomes readable when the hypervisor goes away or misses a deadline. */
static void on_hv_socket(void *arg, int fd, uint32_t events)
{
	struct attach *a = arg;
	char why[128];

	(void)fd;
	(void)events;
	if (ovmc_xproc_check(a->plat))
		return;
	unwatch(a);
	switch (ovmc_xproc_dead_reason(a->plat)) {
	case -ETIMEDOUT:
		snprintf(why, sizeof(why), "did not answer an hcall within %u ms", a->timeout_ms);
		break;
	case -EPROTO:
		snprintf(why, sizeof(why), "broke the protocol");
		break;
	default:
		snprintf(why, sizeof(why), "gone");
		break;
	}
	ovmc_log(OVMC_LOG_WARN, "main", "hypervisor at %s %s; connections reset, re-attaching",
		 a->socket, why);
	drvhost_platform_lost(a->drv, why);
	a->last_rc = 0;
	a->retry_at = ovmc_now_ns();
}

static void on_attach_answer(void *arg, int fd, uint32_t events)
{
	struct attach *a = arg;
	int rc = ovmc_xproc_reconnect_finish(a->plat);

	(void)fd;
	(void)events;
	if (rc == -EINPROGRESS)
		return;
	unwatch(a);
	if (rc == 0)
		attached(a);
	else
		attach_failed(a, rc, ovmc_now_ns());
}

/*
 * The hypervisor runs the pairs posted meanwhile when the loop would
 * sleep, or sooner when a reader would wait (drvhost): a writer that
 * streams gathers its messages for one round trip.
 */
static bool kick(void *arg)
{
	struct attach *a = arg;

	return a->fd >= 0 && !a->waiting && ovmc_xproc_kick(a->plat);
}

static uint64_t on_idle(void *arg, uint64_t now)
{
	struct attach *a = arg;
	int rc;

	if (a->fd >= 0) {
		if (a->waiting)
			return OVMC_TIME_NEVER;
		/* A failed send makes the socket readable (on_hv_socket()). */
		if (a->flush_at && now >= a->flush_at) {
			ovmc_xproc_flush(a->plat);
			a->flush_at = 0;
		}
		if (!a->flush_at && ovmc_xproc_held(a->plat))
			a->flush_at = (now / FLUSH_NS + 2) * FLUSH_NS;
		return a->flush_at ? a->flush_at : OVMC_TIME_NEVER;
	}
	if (now < a->retry_at)
		return a->retry_at;
	/* A stopped hypervisor answers when it runs again: no deadline here. */
	rc = ovmc_xproc_reconnect_start(a->plat);
	if (rc == -EINPROGRESS) {
		rc = watch(a, on_attach_answer, EPOLLIN);
		if (rc == 0) {
			a->waiting = true;
			return OVMC_TIME_NEVER;
		}
	}
	attach_failed(a, rc, now);
	return a->retry_at;
}

int main(int argc, char **argv)
{
	struct opts o;
	struct drvhost_config dc = {0};
	struct attach a = {.fd = -1};
	struct opts_dirs dirs = {0};
	struct ovmc_loop *loop = NULL;
	struct ctl *ctl = NULL;
	char *dev_path = NULL, *sock_path = NULL;
	int status = 1, rc;

	ovmc_notify_init();
	opts_program(argv[0]);
	rc = opts_parse(argc, argv, &program, &o);
	if (rc >= 0)
		return rc;
	ovmc_log_setup(argv[0], o.log_level);
	if (!o.foreground && (rc = opts_daemonize())) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot go to the background: %s",
			 ovmc_strerror(rc));
		return 1;
	}
	opts_drv_config(&o, &dc.drv);
	if (opts_dev_config(&o, &dirs, &dev_path, &dc.dev))
		goto out;
	dc.no_device = o.no_device;
	if (opts_sock_config(&o, &dc.dev, &dc.drv, &sock_path, &dc.sock))
		goto out;
	dc.trace = o.trace;
	dc.capture = o.capture;

	rc = ovmc_loop_new(&loop);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	/* The device is served from the start; the idle hook attaches. */
	rc = ovmc_xproc_new(o.socket, ovmc_drv_memory_required(&dc.drv), &a.plat);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "partition memory: %s", ovmc_strerror(rc));
		goto out;
	}
	a.timeout_ms = (unsigned)o.hcall_timeout_ms;
	ovmc_xproc_set_timeout(a.plat, a.timeout_ms);
	/* drvhost looks at the CRQ after every pass and calls irq_fired(). */
	ovmc_xproc_set_irq_scan(a.plat, true);
	ovmc_xproc_set_posting(a.plat, true);
	ovmc_loop_set_prewait(loop, kick, &a);
	a.loop = loop;
	a.socket = o.socket;
	a.retry_ns = o.retry_ms * NS_PER_MS;
	a.retry_at = ovmc_now_ns();
	dc.detached = true;
	dc.kick = kick;
	dc.kick_arg = &a;
	if (drvhost_new(loop, a.plat, &dc, &a.drv))
		goto out;
	/* After the driver's hook, so it sees the reports of the driver's work. */
	rc = ovmc_loop_add_idle(loop, on_idle, &a);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	{
		struct ctl_targets t = {.drv = a.drv};

		t.use_group = o.set_control_gid;
		t.group = o.control_gid;

		if (opts_control(loop, &o, &program, &t, &dirs, &ctl))
			goto out;
	}
	opts_daemon_ready(o.pidfile);
	ovmc_notify_ready("serving %s", dc.dev.path ? dc.dev.path : "the CUSE device");
	rc = ovmc_loop_run(loop);
	if (rc)
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
	else if (ovmc_loop_signal(loop))
		status = 0;
	ovmc_log(OVMC_LOG_INFO, "main", "shutting down%s", status ? " after an error" : "");
	ovmc_notify_stopping();
out:
	ctl_free(ctl);
	if (a.fd >= 0)
		ovmc_loop_del(loop, a.fd);
	drvhost_free(a.drv);
	/* Frees the CRQ first: the hypervisor sees the partition deregister. */
	ovmc_platform_destroy(a.plat);
	ovmc_loop_free(loop);
	free(dev_path);
	free(sock_path);
	opts_remove_dirs(&dirs);
	if (o.pidfile && status == 0)
		unlink(o.pidfile);
	return status;
}
