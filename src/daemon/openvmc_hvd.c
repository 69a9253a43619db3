// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * openvmc-hvd: the emulated POWER hypervisor as a daemon. Partitions
 * (openvmcd) attach over a Unix socket with their memory and interrupt
 * (the cross-process platform, xproc.h), and QEMU pseries guests connect
 * their spapr-vmc device to another socket (the guest link, guest.h); each
 * partition gets a VMC served by a hypervisor core and the layer-2 backend.
 *
 *   openvmc-hvd --foreground --socket /run/openvmc/hv.sock --control /run/openvmc/hv.ctl
 *
 * See openvmc-hvd(8).
 */
#include "ctl.h"
#include "hvhost.h"
#include "json.h"
#include "log.h"
#include "loop.h"
#include "notify.h"
#include "opts.h"

#include <openvmc/common.h>
#include <openvmc/guest.h>
#include <openvmc/xproc.h>

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static void usage(FILE *out)
{
	fputs("Usage: openvmc-hvd [options]\n"
	      "\n"
	      "The emulated POWER hypervisor: serves the Virtual Management Channel to\n"
	      "partitions (openvmcd) attaching over a Unix socket.\n"
	      "\n"
	      "  -s, --socket PATH        where partitions attach (" OPTS_DEFAULT_SOCKET ");\n"
	      "                           its directory is made private (0700)\n"
	      "      --guest-socket PATH  where QEMU guests' spapr-vmc devices connect\n"
	      "                           (none by default); its directory is made private\n"
	      "      --guest-timeout-ms N how long a guest's device may take to take an\n"
	      "                           entry (1000)\n"
	      "  -n, --hmcs N             HMC connections offered (1; max 255)\n"
	      "  -p, --pool N             buffers per HMC connection (32)\n"
	      "  -u, --mtu N              largest message in bytes (4096)\n"
	      "  -q, --hv-crq N           entries of the hypervisor's queue (256)\n"
	      "  -N, --no-vmc             a partition has no VMC until it asks (REQUESTVMC)\n"
	      "  -R, --request-vmc-rc RC  test knob: H_REQUEST_VMC answers RC (e.g. H_AUTHORITY)\n"
	      "  -b, --backend SPEC       layer-2 backend: echo (default), router, exec:CMD,\n"
	      "                           socket:PATH, socket:tcp:HOST:PORT, replay:FILE\n"
	      "  -c, --control PATH|none  control socket (status, sessions, send, restart,\n"
	      "                           trace); default " OVMC_DEFAULT_CTL_HVD "\n"
	      "      --control-group GRP  members of group GRP may use every control command\n"
	      "  -t, --trace              log every CRQ entry and RDMA in readable form\n"
	      "  -w, --capture FILE       write every CRQ entry and RDMA to a pcapng file\n"
	      "  -l, --log-level LEVEL    error, warn, info (default), debug or trace\n"
	      "  -f, --foreground         stay in the foreground, log to stderr\n"
	      "  -P, --pidfile FILE       write the daemon's pid here\n"
	      "  -h, --help               this text\n"
	      "  -V, --version            the version\n",
	      out);
}

static const struct opts_program program = {
	.name = "openvmc-hvd",
	.shortopts = "s:n:p:u:q:NR:b:c:tw:l:fP:hV",
	.longs = OPTS_CONTROL_GROUP | OPTS_GUEST_SOCKET | OPTS_GUEST_TIMEOUT,
	.usage = usage,
	.default_control = OVMC_DEFAULT_CTL_HVD,
};

static void on_server(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	ovmc_xproc_server_dispatch(arg);
}

static void on_conn(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	ovmc_xproc_server_serve(arg);
}

/* Each partition's connection is in the loop itself: one epoll_wait per wake-up. */
static int watch_conn(void *user, int fd, uint32_t events, struct ovmc_xproc_conn *conn,
		      bool add)
{
	if (add)
		return ovmc_loop_add_events(user, fd, events, on_conn, conn);
	return ovmc_loop_del(user, fd);
}

/* Last of the pass: the replies go with what the pass raised. */
static uint64_t flush_replies(void *arg, uint64_t now)
{
	(void)now;
	ovmc_xproc_server_flush(arg);
	return OVMC_TIME_NEVER;
}

static void __attribute__((format(printf, 3, 0)))
xproc_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	ovmc_log_sink(user, level, fmt, ap);
}

/*
 * The socket's directory is refused (-EPERM) when others may enter it or it
 * is not ours: partitions hand their memory to whoever listens there.
 */
static void not_private(const char *socket)
{
	const char *slash = strrchr(socket, '/');
	int len = slash ? (slash == socket ? 1 : (int)(slash - socket)) : 1;
	const char *dir = slash ? socket : ".";
	char path[PATH_MAX];
	struct stat st;

	snprintf(path, sizeof(path), "%.*s", len, dir);
	if (lstat(path, &st) != 0) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot listen at %s: %s: %s", socket, path,
			 strerror(errno));
		return;
	}
	ovmc_log(OVMC_LOG_ERROR, "main",
		 "cannot listen at %s: directory %s is mode %04o, owner uid %u, not private to "
		 "uid %u: run 'chmod 0700 %s'%s, or give --socket a directory that does not "
		 "exist yet (it is made 0700)",
		 socket, path, (unsigned)(st.st_mode & 07777), (unsigned)st.st_uid,
		 (unsigned)geteuid(), path, st.st_uid != geteuid() ? " and chown it" : "");
}

static void on_guests(void *arg, int fd, uint32_t events)
{
	(void)fd;
	(void)events;
	ovmc_guest_server_dispatch(arg);
}

/* After the cores ran: the credits they freed go to the devices. */
static uint64_t guests_idle(void *arg, uint64_t now)
{
	(void)now;
	ovmc_guest_server_flush(arg);
	return OVMC_TIME_NEVER;
}

static void guests_status(void *arg, FILE *out)
{
	ovmc_guest_server_status(arg, out);
}

static void guests_status_json(void *arg, struct json *j)
{
	struct ovmc_guest_server_stats t;
	struct ovmc_guest_info g;

	ovmc_guest_server_stats(arg, &t);
	json_object(j, "guest_link");
	json_uint(j, "connections", ovmc_guest_server_clients(arg));
	json_object(j, "stats");
	json_uint(j, "accepted", t.accepted);
	json_uint(j, "refused", t.refused);
	json_uint(j, "hello_timeouts", t.hello_timeouts);
	json_uint(j, "hello_refused", t.hello_refused);
	json_uint(j, "protocol_errors", t.protocol_errors);
	json_uint(j, "delivers", t.delivers);
	json_uint(j, "deliver_timeouts", t.deliver_timeouts);
	json_uint(j, "deliver_dropped", t.deliver_dropped);
	json_uint(j, "deliver_closed", t.deliver_closed);
	json_uint(j, "sends", t.sends);
	json_uint(j, "sends_stale", t.sends_stale);
	json_uint(j, "credits", t.credits);
	json_uint(j, "rdma_reports", t.rdma_reports);
	json_uint(j, "disconnects", t.disconnects);
	json_end(j);
	json_array(j, "guests");
	for (unsigned i = 0; ovmc_guest_server_guest(arg, i, &g) == 0; i++) {
		json_object(j, NULL);
		json_uint(j, "partition", g.partition);
		json_int(j, "pid", g.pid);
		json_uint(j, "unit_address", g.unit_address);
		json_uint(j, "liobn", g.liobn_local);
		json_uint(j, "hv_liobn", g.hv_liobn);
		json_uint(j, "epoch", g.epoch);
		json_bool(j, "hv_open", g.hv_open);
		json_uint(j, "credit", g.credit);
		json_uint(j, "crq", g.crq_entries);
		json_uint(j, "sends", g.sends);
		json_uint(j, "sends_stale", g.sends_stale);
		json_uint(j, "delivers", g.delivers);
		json_uint(j, "deliver_dropped", g.deliver_dropped);
		json_uint(j, "deliver_closed", g.deliver_closed);
		json_uint(j, "rdma_reports", g.rdma_reports);
		json_uint(j, "credits", g.credits);
		json_end(j);
	}
	json_end(j);
	json_end(j);
}

/* The guest link, when --guest-socket asks for it. Errors are logged. */
static int start_guests(struct ovmc_loop *loop, struct hvhost *hv, const struct opts *o,
			const struct hvhost_config *hc, struct ovmc_guest_server **out)
{
	struct ovmc_guest_server_config gc = {0};
	int rc;

	gc.socket_path = o->guest_socket;
	gc.machine = hvhost_machine(hv);
	gc.min_hv_window = ovmc_hv_memory_required(&hc->hv);
	gc.hv_queue_entries = hc->hv.crq_size;
	gc.deliver_timeout_ms = (unsigned)o->guest_timeout_ms;
	gc.log = xproc_log;
	gc.log_user = (void *)"guest";
	rc = ovmc_guest_server_new(&gc, out);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot listen for guests at %s: %s%s",
			 o->guest_socket, ovmc_strerror(rc),
			 rc == -EEXIST ? " (another hypervisor is running there)" : "");
		return rc;
	}
	rc = ovmc_loop_add(loop, ovmc_guest_server_fd(*out), on_guests, *out);
	if (!rc)
		rc = ovmc_loop_add_idle(loop, guests_idle, *out);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		return rc;
	}
	hvhost_set_status_hook(hv, &(struct hvhost_status_hook){.text = guests_status,
								.json = guests_status_json,
								.arg = *out});
	return 0;
}


int main(int argc, char **argv)
{
	struct opts o;
	struct hvhost_config hc;
	struct ovmc_xproc_server_config sc = {0};
	struct ovmc_xproc_server *srv = NULL;
	struct ovmc_guest_server *guests = NULL;
	struct ovmc_loop *loop = NULL;
	struct hvhost *hv = NULL;
	struct ctl *ctl = NULL;
	struct opts_dirs dirs = {0};
	int status = 1, rc;

	ovmc_notify_init();
	opts_program(argv[0]);
	rc = opts_parse(argc, argv, &program, &o);
	if (rc >= 0)
		return rc;
	ovmc_log_setup(argv[0], o.log_level);
	opts_hv_config(&o, &hc);
	if (!o.foreground && (rc = opts_daemonize())) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot go to the background: %s",
			 ovmc_strerror(rc));
		return 1;
	}

	rc = ovmc_loop_new(&loop);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	if (hvhost_new(loop, &hc, &hv))
		goto out;
	sc.socket_path = o.socket;
	sc.machine = hvhost_machine(hv);
	sc.vmc_present = !o.no_vmc;
	sc.request_vmc_rc = o.request_vmc_rc;
	sc.hv_window_size = ovmc_hv_memory_required(&hc.hv);
	sc.hv_queue_entries = hc.hv.crq_size;
	sc.defer_replies = true;
	sc.posting = true;
	sc.watch = watch_conn;
	sc.watch_user = loop;
	sc.log = xproc_log;
	sc.log_user = (void *)"platform";
	rc = ovmc_xproc_server_new(&sc, &srv);
	if (rc == -EPERM) {
		not_private(o.socket);
		goto out;
	}
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot listen at %s: %s%s", o.socket,
			 ovmc_strerror(rc),
			 rc == -EEXIST ? " (another hypervisor is running there)" : "");
		goto out;
	}
	rc = ovmc_loop_add(loop, ovmc_xproc_server_fd(srv), on_server, srv);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	if (o.guest_socket && start_guests(loop, hv, &o, &hc, &guests))
		goto out;
	{
		struct ctl_targets t = {.hv = hv};

		t.use_group = o.set_control_gid;
		t.group = o.control_gid;

		if (opts_control(loop, &o, &program, &t, &dirs, &ctl))
			goto out;
	}
	/* After every other hook, whose work may raise interrupts. */
	rc = ovmc_loop_add_idle(loop, flush_replies, srv);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	ovmc_log(OVMC_LOG_INFO, "main", "hypervisor ready at %s (backend %s)", o.socket,
		 o.backend ? o.backend : "echo");
	opts_daemon_ready(o.pidfile);
	ovmc_notify_ready("hypervisor ready at %s (backend %s)", o.socket,
			  o.backend ? o.backend : "echo");
	rc = ovmc_loop_run(loop);
	if (rc)
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
	else if (ovmc_loop_signal(loop))
		status = 0;
	ovmc_log(OVMC_LOG_INFO, "main", "shutting down%s", status ? " after an error" : "");
	ovmc_notify_stopping();
out:
	ctl_free(ctl);
	if (guests) {
		/* The idle hook stays, but the loop no longer runs. */
		hvhost_set_status_hook(hv, NULL);
		ovmc_loop_del(loop, ovmc_guest_server_fd(guests));
		ovmc_guest_server_free(guests);
	}
	if (srv) {
		ovmc_loop_del(loop, ovmc_xproc_server_fd(srv));
		/* Partitions see their VMC deregistered, then the socket closes. */
		ovmc_xproc_server_free(srv);
	}
	hvhost_free(hv);
	ovmc_loop_free(loop);
	opts_remove_dirs(&dirs);
	if (o.pidfile && status == 0)
		unlink(o.pidfile);
	return status;
}
