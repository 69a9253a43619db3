// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The control socket (ctl.h). Connections live in a private epoll set, so
 * they can wait for EPOLLOUT as well as EPOLLIN; the loop watches that set
 * as one readable fd.
 *
 * Trace clients: lines are queued from inside the machine's and the
 * driver's calls, where nothing may be closed or sent on; queuing only
 * appends to the client's bounded buffer and asks for EPOLLOUT, and the
 * loop does the writing.
 */
#include "ctl.h"

#include "json.h"
#include "log.h"

#include <openvmc/trace.h>
#include <openvmc/wire.h>

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define COMPONENT "control"
#define MAX_CONNS 16
/* Fewer than MAX_CONNS: other commands must still get through. */
#define MAX_TRACE_CONNS 8
/* Per trace client: a few hundred lines; beyond that lines are dropped. */
#define TRACE_BUF_SIZE (64u * 1024u)
/* What a command returns to keep the connection for trace lines. */
#define STREAM 1
/* "send" carries up to a 64 KiB message in hex. */
#define MAX_REQUEST (2u * 65536u + 64u)
/* To send the request, and to take the whole reply. */
#define REQUEST_TIMEOUT_NS (2ull * 1000000000ull)
#define REPLY_TIMEOUT_NS (10ull * 1000000000ull)
/* Supplementary groups looked at for the configured group. */
#define MAX_PEER_GROUPS 256
#define MAX_EVENTS 16
#define LISTEN_TAG ((void *)1)

struct conn {
	int fd;
	char *in;
	size_t in_len, in_cap;
	/* The whole reply once the request is complete; for a trace client,
	 * a buffer of TRACE_BUF_SIZE bytes of which out_off..out_len wait. */
	char *out;
	size_t out_len, out_off;
	uint64_t deadline;
	bool admin;	  /* may use every command (not only the read-only ones) */
	pid_t pid;
	uid_t uid;
	bool trace;
	bool read_eof;	  /* trace client: shut its sending side, still reads */
	uint32_t armed;	  /* trace client: the epoll events asked for */
	uint64_t dropped; /* trace client: lines lost since the last note */
	struct conn *prev, *next;
};

struct ctl {
	struct ovmc_loop *loop;
	struct ctl_targets t;
	char *path;
	int listen_fd;
	int epfd;
	bool bound;   /* the socket file at path is ours */
	bool watched; /* epfd is in the loop */
	struct conn *conns;
	unsigned n_conns;
	unsigned n_trace;
	uint64_t trace_lines, trace_dropped; /* queued and lost, all clients */
};

static void trace_hook(struct ctl *c, bool on);

static void conn_close(struct ctl *c, struct conn *k)
{
	if (k->trace && --c->n_trace == 0)
		trace_hook(c, false);
	epoll_ctl(c->epfd, EPOLL_CTL_DEL, k->fd, NULL);
	close(k->fd);
	if (k->prev)
		k->prev->next = k->next;
	else
		c->conns = k->next;
	if (k->next)
		k->next->prev = k->prev;
	c->n_conns--;
	free(k->in);
	free(k->out);
	free(k);
}

/* ---- commands ---- */

/* A failed command: its errno (negative) and a sentence for the reply. */
struct cmd_error {
	int err;
	char text[160];
};

static int fail(struct cmd_error *e, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static int fail(struct cmd_error *e, int err, const char *fmt, ...)
{
	va_list ap;

	e->err = err;
	va_start(ap, fmt);
	vsnprintf(e->text, sizeof(e->text), fmt, ap);
	va_end(ap);
	return err;
}

static int need_hv(struct ctl *c, struct cmd_error *e)
{
	if (!c->t.hv)
		return fail(e, -EOPNOTSUPP, "no hypervisor in this process");
	return 0;
}

static int hex_value(int ch)
{
	if (ch >= '0' && ch <= '9')
		return ch - '0';
	ch = tolower(ch);
	if (ch >= 'a' && ch <= 'f')
		return ch - 'a' + 10;
	return -1;
}

static int cmd_send(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	char *save = NULL, *idx_s = strtok_r(args, " \t", &save), *hex;
	unsigned long idx, part = 0;
	uint8_t *msg;
	size_t len;
	char *end;
	int rc;

	if (need_hv(c, e))
		return e->err;
	if (idx_s && strcmp(idx_s, "partition") == 0) {
		char *p_s = strtok_r(NULL, " \t", &save);

		errno = 0;
		part = p_s ? strtoul(p_s, &end, 0) : 0;
		if (!p_s || errno || *end || part == 0 || part > UINT32_MAX)
			return fail(e, -EINVAL, "bad partition \"%s\"", p_s ? p_s : "");
		idx_s = strtok_r(NULL, " \t", &save);
	}
	hex = strtok_r(NULL, " \t", &save);
	if (!idx_s || !hex || strtok_r(NULL, " \t", &save))
		return fail(e, -EINVAL, "usage: send [partition <id>] <hmc-index> <hex>");
	errno = 0;
	idx = strtoul(idx_s, &end, 0);
	if (errno || *end || idx > 255)
		return fail(e, -EINVAL, "bad HMC index \"%s\"", idx_s);
	len = strlen(hex);
	if (len % 2)
		return fail(e, -EINVAL, "odd number of hex digits");
	len /= 2;
	msg = malloc(len ? len : 1);
	if (!msg)
		return fail(e, -ENOMEM, "out of memory");
	for (size_t i = 0; i < len; i++) {
		int hi = hex_value((unsigned char)hex[2 * i]);
		int lo = hex_value((unsigned char)hex[2 * i + 1]);

		if (hi < 0 || lo < 0) {
			free(msg);
			return fail(e, -EINVAL, "not a hex digit at offset %zu", 2 * i);
		}
		msg[i] = (uint8_t)(hi << 4 | lo);
	}
	rc = hvhost_send(c->t.hv, (unsigned)part, (unsigned)idx, msg, len);
	free(msg);
	switch (rc) {
	case 0:
		fprintf(body, "queued %zu bytes on index %lu\n", len, idx);
		return 0;
	case -ENODEV:
		return fail(e, rc, "no VMC yet");
	case -ENOENT:
		return fail(e, rc, "no VMC of partition %lu; 'sessions' lists them", part);
	case -ENOTUNIQ:
		return fail(e, rc,
			    "sessions at index %lu on several partitions: name one "
			    "(send partition <id> ...); 'sessions' lists them",
			    idx);
	case -ENOTCONN:
		return fail(e, rc,
			    "no open session at index %lu: an application opens one (SETHMCID, "
			    "e.g. vmcctl open); 'sessions' lists them",
			    idx);
	case -EMSGSIZE:
		return fail(e, rc, "a message of %zu bytes is empty or above the MTU", len);
	case -ENOBUFS:
		return fail(e, rc, "the session's backlog is full");
	default:
		return fail(e, rc, "%s", ovmc_strerror(rc));
	}
}

static int cmd_restart(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	char *save = NULL, *kind = strtok_r(args, " \t", &save);
	uint8_t event = OVMC_EVENT_PARTNER_FAILED;

	if (need_hv(c, e))
		return e->err;
	if (kind && strcmp(kind, "deregistered") == 0)
		event = OVMC_EVENT_PARTNER_DEREGISTERED;
	else if (kind && strcmp(kind, "failed") != 0)
		return fail(e, -EINVAL, "usage: restart [failed|deregistered]");
	if (strtok_r(NULL, " \t", &save))
		return fail(e, -EINVAL, "usage: restart [failed|deregistered]");
	hvhost_restart(c->t.hv, event);
	fprintf(body, "restarted (partition sees %s)\n", ovmc_event_name(event));
	return 0;
}

static int cmd_sessions(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	if (need_hv(c, e))
		return e->err;
	if (*args)
		return fail(e, -EINVAL, "usage: sessions");
	hvhost_sessions(c->t.hv, body);
	return 0;
}

/* The status as one line of JSON (docs/vmcctl-json.md). */
static void status_json(struct ctl *c, FILE *body)
{
	struct json j;

	json_start(&j, body);
	json_object(&j, NULL);
	json_string(&j, "program", program_invocation_short_name);
	json_string(&j, "version", OVMC_VERSION_STRING);
	if (c->t.drv)
		drvhost_status_json(c->t.drv, &j);
	if (c->t.hv)
		hvhost_status_json(c->t.hv, &j);
	json_object(&j, "control");
	json_uint(&j, "trace_clients", c->n_trace);
	json_uint(&j, "trace_lines", c->trace_lines);
	json_uint(&j, "trace_dropped", c->trace_dropped);
	json_end(&j);
	json_object(&j, "log");
	json_uint(&j, "suppressed", ovmc_log_suppressed());
	json_uint(&j, "dropped", ovmc_log_dropped());
	json_end(&j);
	json_end(&j);
	putc('\n', body);
}

static int cmd_status(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	if (strcmp(args, "json") == 0) {
		status_json(c, body);
		return 0;
	}
	if (*args)
		return fail(e, -EINVAL, "usage: status [json]");
	if (c->t.drv)
		drvhost_status(c->t.drv, body);
	if (c->t.hv)
		hvhost_status(c->t.hv, body);
	fprintf(body, "control: trace-clients %u trace-lines %llu trace-dropped %llu\n", c->n_trace,
		(unsigned long long)c->trace_lines, (unsigned long long)c->trace_dropped);
	fprintf(body, "log: suppressed %llu dropped %llu\n",
		(unsigned long long)ovmc_log_suppressed(), (unsigned long long)ovmc_log_dropped());
	return 0;
}

static int cmd_trace(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	(void)body;
	if (*args)
		return fail(e, -EINVAL, "usage: trace");
	if (c->n_trace == MAX_TRACE_CONNS)
		return fail(e, -EBUSY, "already %u trace clients", MAX_TRACE_CONNS);
	return STREAM;
}

static int cmd_help(struct ctl *c, char *args, FILE *body, struct cmd_error *e)
{
	(void)c;
	(void)args;
	(void)e;
	fputs("status [json]\n"
	      "sessions\n"
	      "send <hmc-index> <hex>\n"
	      "restart [failed|deregistered]\n"
	      "trace\n"
	      "help\n",
	      body);
	return 0;
}

static const struct {
	const char *name;
	int (*fn)(struct ctl *c, char *args, FILE *body, struct cmd_error *e);
	bool admin; /* changes something: root, our uid or the group only */
} commands[] = {
	{"status", cmd_status, false},
	{"sessions", cmd_sessions, false},
	{"send", cmd_send, true},
	{"restart", cmd_restart, true},
	{"trace", cmd_trace, false},
	{"help", cmd_help, false},
};

/* ---- trace clients ---- */

/* Watch for the client's going (EPOLLHUP comes unasked), its bytes until
 * it shuts its side, and room to send while lines wait. */
static void trace_arm(struct ctl *c, struct conn *k)
{
	uint32_t want = (k->read_eof ? 0u : (uint32_t)EPOLLIN) |
			(k->out_off < k->out_len ? (uint32_t)EPOLLOUT : 0u);
	struct epoll_event ev = {.events = want, .data.ptr = k};

	if (want == k->armed)
		return;
	if (epoll_ctl(c->epfd, EPOLL_CTL_MOD, k->fd, &ev) == 0)
		k->armed = want;
}

/* Append if it fits whole; lines are never split. */
static bool trace_put(struct conn *k, const char *p, size_t n)
{
	if (TRACE_BUF_SIZE - k->out_len < n && k->out_off) {
		memmove(k->out, k->out + k->out_off, k->out_len - k->out_off);
		k->out_len -= k->out_off;
		k->out_off = 0;
	}
	if (TRACE_BUF_SIZE - k->out_len < n)
		return false;
	memcpy(k->out + k->out_len, p, n);
	k->out_len += n;
	return true;
}

/* The count of lost lines goes where they were, before any later line. */
static bool trace_note_drops(struct conn *k)
{
	char note[64];
	int n;

	if (!k->dropped)
		return true;
	n = snprintf(note, sizeof(note), "... %llu trace lines dropped\n",
		     (unsigned long long)k->dropped);
	if (!trace_put(k, note, (size_t)n))
		return false;
	k->dropped = 0;
	return true;
}

/* From inside the machine or the driver: queue, never send or close. */
static void trace_queue(struct ctl *c, const char *side, const struct ovmc_trace_event *ev)
{
	char line[OVMC_LOG_STAMP_MAX + 16 + OVMC_TRACE_LINE_MAX];
	size_t len;
	int n;

	/* Hcalls are the machine's bookkeeping, not the channel's traffic. */
	if (ev->kind == OVMC_TRACE_HCALL)
		return;
	ovmc_log_stamp(line, sizeof(line));
	len = strlen(line);
	n = snprintf(line + len, sizeof(line) - len, " %s: ", side);
	len += (size_t)n;
	n = ovmc_trace_format(ev, line + len, sizeof(line) - len);
	len = n < 0 ? len : len + (size_t)n;
	if (len > sizeof(line) - 1)
		len = sizeof(line) - 1;
	line[len++] = '\n';
	for (struct conn *k = c->conns; k; k = k->next) {
		if (!k->trace)
			continue;
		if (trace_note_drops(k) && trace_put(k, line, len)) {
			c->trace_lines++;
		} else {
			k->dropped++;
			c->trace_dropped++;
		}
		trace_arm(c, k);
	}
}

static void trace_from_hv(void *arg, const struct ovmc_trace_event *ev)
{
	trace_queue(arg, "hv", ev);
}

static void trace_from_driver(void *arg, const struct ovmc_trace_event *ev)
{
	trace_queue(arg, "driver", ev);
}

/* Listen to the hosts only while someone reads: no cost otherwise. */
static void trace_hook(struct ctl *c, bool on)
{
	if (c->t.hv)
		hvhost_set_tracer(c->t.hv, on ? trace_from_hv : NULL, c);
	if (c->t.drv)
		drvhost_set_tracer(c->t.drv, on ? trace_from_driver : NULL, c);
}

/* The connection of a "trace" request becomes a trace client. */
static bool trace_start(struct ctl *c, struct conn *k)
{
	static const char ok[] = "ok\n";

	k->out = malloc(TRACE_BUF_SIZE);
	if (!k->out)
		return false;
	memcpy(k->out, ok, sizeof(ok) - 1);
	k->out_len = sizeof(ok) - 1;
	k->trace = true;
	k->armed = EPOLLIN;
	k->deadline = OVMC_TIME_NEVER;
	if (c->n_trace++ == 0)
		trace_hook(c, true);
	return true;
}

/* Send what waits; once all is out, the note of lines dropped meanwhile. */
static void trace_flush(struct ctl *c, struct conn *k)
{
	do {
		while (k->out_off < k->out_len) {
			ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
					 MSG_NOSIGNAL);

			if (n < 0 && errno == EINTR)
				continue;
			if (n < 0 && errno == EAGAIN) {
				trace_arm(c, k);
				return;
			}
			if (n < 0) {
				conn_close(c, k);
				return;
			}
			k->out_off += (size_t)n;
		}
		k->out_off = k->out_len = 0;
	} while (k->dropped && trace_note_drops(k));
	trace_arm(c, k);
}

/* Whatever the client sends is ignored; its end of the stream is not. */
static void trace_read(struct ctl *c, struct conn *k)
{
	char scratch[512];

	for (;;) {
		ssize_t n = read(k->fd, scratch, sizeof(scratch));

		if (n > 0)
			continue;
		if (n == 0) {
			k->read_eof = true;
			trace_arm(c, k);
			return;
		}
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN)
			conn_close(c, k);
		return;
	}
}

/* ---- requests ---- */

/* Run one request line; the reply goes to k->out. */
static void execute(struct ctl *c, struct conn *k, char *line)
{
	struct cmd_error e = {0};
	char *body = NULL, *name, *args;
	size_t body_len = 0;
	FILE *bf = open_memstream(&body, &body_len);
	FILE *of;
	int rc = -EINVAL;

	if (!bf)
		return;
	line[strcspn(line, "\r\n")] = '\0';
	name = line + strspn(line, " \t");
	args = name + strcspn(name, " \t");
	if (*args)
		*args++ = '\0';
	args += strspn(args, " \t");
	fail(&e, -EINVAL, "unknown command \"%s\" (try help)", name);
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(name, commands[i].name) != 0)
			continue;
		if (commands[i].admin && !k->admin) {
			rc = fail(&e, -EACCES, "%s needs root, uid %u%s", name, (unsigned)geteuid(),
				  c->t.use_group ? " or the control group" : "");
			ovmc_log(OVMC_LOG_WARN, COMPONENT, "pid %d of uid %u may not %s",
				 (int)k->pid, (unsigned)k->uid, name);
			break;
		}
		e.err = 0;
		rc = commands[i].fn(c, args, bf, &e);
		break;
	}
	fclose(bf);
	if (rc == STREAM && k->fd < 0)
		rc = fail(&e, -EOPNOTSUPP, "trace needs a connection");
	if (rc == STREAM && trace_start(c, k)) {
		free(body);
		ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "%s: streaming", name);
		return;
	}
	if (rc == STREAM)
		rc = fail(&e, -ENOMEM, "no memory for a trace buffer");
	of = open_memstream(&k->out, &k->out_len);
	if (of) {
		if (rc) {
			const char *ename = strerrorname_np(-rc);

			fprintf(of, "error %s: %s\n", ename ? ename : "EIO", e.text);
		} else {
			fprintf(of, "ok\n");
			fwrite(body, 1, body_len, of);
		}
		fclose(of);
	}
	free(body);
	ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "%s: %s", name, rc ? e.text : "ok");
}

static void conn_reply(struct ctl *c, struct conn *k)
{
	struct epoll_event ev = {.events = EPOLLOUT, .data.ptr = k};

	if (!k->out) {
		conn_close(c, k);
		return;
	}
	k->deadline = ovmc_now_ns() + REPLY_TIMEOUT_NS;
	epoll_ctl(c->epfd, EPOLL_CTL_MOD, k->fd, &ev);
}

static void conn_read(struct ctl *c, struct conn *k)
{
	for (;;) {
		ssize_t n;
		char *nl;

		if (k->in_len + 1 >= k->in_cap) {
			size_t cap = k->in_cap ? k->in_cap * 2 : 256;
			char *p;

			if (cap > MAX_REQUEST + 1)
				cap = MAX_REQUEST + 1;
			if (k->in_len + 1 >= cap) {
				static const char too_long[] = "error E2BIG: request too long\n";

				k->out = strdup(too_long);
				k->out_len = k->out ? strlen(too_long) : 0;
				conn_reply(c, k);
				return;
			}
			p = realloc(k->in, cap);
			if (!p) {
				conn_close(c, k);
				return;
			}
			k->in = p;
			k->in_cap = cap;
		}
		n = read(k->fd, k->in + k->in_len, k->in_cap - 1 - k->in_len);
		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			conn_close(c, k);
			return;
		}
		if (n == 0 && k->in_len == 0) {
			conn_close(c, k);
			return;
		}
		k->in[k->in_len + (size_t)n] = '\0';
		nl = memchr(k->in + k->in_len, '\n', (size_t)n);
		k->in_len += (size_t)n;
		/* A line, or everything the client sent before shutting down. */
		if (nl || n == 0) {
			if (nl)
				*nl = '\0';
			execute(c, k, k->in);
			if (k->trace)
				trace_flush(c, k);
			else
				conn_reply(c, k);
			return;
		}
	}
}

static void conn_write(struct ctl *c, struct conn *k)
{
	while (k->out_off < k->out_len) {
		ssize_t n = send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
				 MSG_NOSIGNAL);

		if (n < 0) {
			if (errno == EAGAIN || errno == EINTR)
				return;
			break;
		}
		k->out_off += (size_t)n;
	}
	conn_close(c, k);
}

/* Root, our uid, or a member of the configured group. */
static bool may_change(const struct ctl *c, int fd, const struct ucred *cred)
{
	gid_t groups[MAX_PEER_GROUPS];
	socklen_t len = sizeof(groups);

	if (cred->uid == 0 || cred->uid == geteuid())
		return true;
	if (!c->t.use_group)
		return false;
	if (cred->gid == c->t.group)
		return true;
	if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups, &len) != 0)
		return false;
	for (size_t i = 0; i < len / sizeof(groups[0]); i++)
		if (groups[i] == c->t.group)
			return true;
	return false;
}

/* At the bound, the oldest connection still silent goes for the newcomer. */
static bool make_room(struct ctl *c)
{
	struct conn *oldest = NULL;

	if (c->n_conns < MAX_CONNS)
		return true;
	for (struct conn *k = c->conns; k; k = k->next)
		if (!k->trace && !k->out)
			oldest = k; /* newest first: the last one is the oldest */
	if (!oldest)
		return false;
	ovmc_log(OVMC_LOG_WARN, COMPONENT,
		 "%u connections: closed the oldest without a request (pid %d)", c->n_conns,
		 (int)oldest->pid);
	conn_close(c, oldest);
	return true;
}

static void accept_all(struct ctl *c)
{
	for (;;) {
		int fd = accept4(c->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct epoll_event ev = {.events = EPOLLIN};
		struct ucred cred;
		socklen_t cl = sizeof(cred);
		struct conn *k;

		if (fd < 0)
			return;
		if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &cl) != 0 || cl != sizeof(cred)) {
			ovmc_log(OVMC_LOG_WARN, COMPONENT, "no peer credentials: refused");
			close(fd);
			continue;
		}
		if (!make_room(c)) {
			ovmc_log(OVMC_LOG_WARN, COMPONENT, "too many connections: one refused");
			close(fd);
			continue;
		}
		k = calloc(1, sizeof(*k));
		if (!k) {
			close(fd);
			continue;
		}
		k->fd = fd;
		k->pid = cred.pid;
		k->uid = cred.uid;
		k->admin = may_change(c, fd, &cred);
		k->deadline = ovmc_now_ns() + REQUEST_TIMEOUT_NS;
		ev.data.ptr = k;
		if (epoll_ctl(c->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
			close(fd);
			free(k);
			continue;
		}
		k->next = c->conns;
		if (c->conns)
			c->conns->prev = k;
		c->conns = k;
		c->n_conns++;
	}
}

static bool conn_known(const struct ctl *c, const struct conn *k)
{
	for (const struct conn *x = c->conns; x; x = x->next)
		if (x == k)
			return true;
	return false;
}

static void on_ready(void *arg, int fd, uint32_t events)
{
	struct ctl *c = arg;
	struct epoll_event evs[MAX_EVENTS];
	int n = epoll_wait(fd, evs, MAX_EVENTS, 0);

	(void)events;
	for (int i = 0; i < n; i++) {
		struct conn *k = evs[i].data.ptr;

		if (evs[i].data.ptr == LISTEN_TAG) {
			accept_all(c);
			continue;
		}
		/* An earlier event of this batch may have closed it. */
		if (!conn_known(c, k))
			continue;
		if (k->trace) {
			if (evs[i].events & (EPOLLHUP | EPOLLERR)) {
				conn_close(c, k);
				continue;
			}
			if (evs[i].events & EPOLLIN)
				trace_read(c, k);
			if ((evs[i].events & EPOLLOUT) && conn_known(c, k))
				trace_flush(c, k);
		} else if (k->out) {
			conn_write(c, k);
		} else {
			conn_read(c, k);
		}
	}
}

static uint64_t on_idle(void *arg, uint64_t now)
{
	struct ctl *c = arg;
	uint64_t next = OVMC_TIME_NEVER;

	for (struct conn *k = c->conns, *nx; k; k = nx) {
		nx = k->next;
		if (k->deadline <= now) {
			ovmc_log(OVMC_LOG_WARN, COMPONENT, "a client took too long to %s; dropped",
				 k->out ? "take its reply" : "send its request");
			conn_close(c, k);
		} else if (k->deadline < next) {
			next = k->deadline;
		}
	}
	return next;
}

int ctl_request(struct ctl *c, const char *line, size_t len, bool admin, char **reply,
		size_t *reply_len)
{
	struct conn k = {.fd = -1, .admin = admin, .pid = getpid(), .uid = geteuid()};
	char *buf;

	*reply = NULL;
	*reply_len = 0;
	if (len > MAX_REQUEST) {
		*reply = strdup("error E2BIG: request too long\n");
		*reply_len = *reply ? strlen(*reply) : 0;
		return *reply ? 0 : -ENOMEM;
	}
	buf = malloc(len + 1);
	if (!buf)
		return -ENOMEM;
	memcpy(buf, line, len);
	buf[len] = '\0';
	/* As a connection: the request is the text before the first newline. */
	buf[strcspn(buf, "\n")] = '\0';
	execute(c, &k, buf);
	free(buf);
	*reply = k.out;
	*reply_len = k.out_len;
	return k.out ? 0 : -ENOMEM;
}

/* ---- life cycle ---- */

/* Remove a socket file nobody accepts on; refuse anything else. */
static int clear_path(const char *path, const struct sockaddr_un *sa)
{
	struct stat st;
	int fd, rc;

	if (lstat(path, &st) != 0)
		return errno == ENOENT ? 0 : -errno;
	if (!S_ISSOCK(st.st_mode)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s exists and is not a socket", path);
		return -EEXIST;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	rc = connect(fd, (const struct sockaddr *)sa, sizeof(*sa));
	close(fd);
	if (rc == 0) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: another daemon is listening there", path);
		return -EADDRINUSE;
	}
	ovmc_log(OVMC_LOG_INFO, COMPONENT, "replacing the stale socket %s", path);
	if (unlink(path) != 0)
		return -errno;
	return 0;
}

int ctl_new(struct ovmc_loop *loop, const char *path, const struct ctl_targets *targets,
	    struct ctl **out)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct epoll_event ev = {.events = EPOLLIN, .data.ptr = LISTEN_TAG};
	struct ctl *c;
	mode_t old_mask;
	int rc;

	if (strlen(path) >= sizeof(sa.sun_path)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "socket path too long: %s", path);
		return -ENAMETOOLONG;
	}
	memcpy(sa.sun_path, path, strlen(path) + 1);
	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->loop = loop;
	c->t = *targets;
	c->listen_fd = c->epfd = -1;
	c->path = strdup(path);
	if (!c->path) {
		free(c);
		return -ENOMEM;
	}
	rc = clear_path(path, &sa);
	if (rc)
		goto fail_early;
	c->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (c->listen_fd < 0)
		goto fail_errno;
	/* Created 0600 from the start: no window where others may connect. */
	old_mask = umask(0177);
	rc = bind(c->listen_fd, (const struct sockaddr *)&sa, sizeof(sa));
	umask(old_mask);
	if (rc != 0) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot bind %s: %s", path, strerror(-rc));
		goto fail_early;
	}
	c->bound = true;
	/* Root or the owner sets the group; members then reach the socket. */
	if (targets->use_group &&
	    (chown(path, (uid_t)-1, targets->group) != 0 || chmod(path, 0660) != 0)) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot give %s to group %u: %s", path,
			 (unsigned)targets->group, strerror(-rc));
		goto fail_early;
	}
	if (listen(c->listen_fd, MAX_CONNS) != 0)
		goto fail_errno;
	c->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (c->epfd < 0 || epoll_ctl(c->epfd, EPOLL_CTL_ADD, c->listen_fd, &ev) != 0)
		goto fail_errno;
	rc = ovmc_loop_add(loop, c->epfd, on_ready, c);
	if (rc)
		goto fail;
	c->watched = true;
	/* Last: an idle hook cannot be taken back on failure. */
	rc = ovmc_loop_add_idle(loop, on_idle, c);
	if (rc)
		goto fail;
	*out = c;
	return 0;
fail_errno:
	rc = -errno;
fail:
	ovmc_log(OVMC_LOG_ERROR, COMPONENT, "control socket %s: %s", path, strerror(-rc));
fail_early:
	ctl_free(c);
	return rc;
}

void ctl_free(struct ctl *c)
{
	if (!c)
		return;
	while (c->conns) {
		struct conn *k = c->conns;

		/* Best effort: what a trace client has not got yet, if it fits. */
		if (k->trace && k->out_off < k->out_len &&
		    send(k->fd, k->out + k->out_off, k->out_len - k->out_off,
			 MSG_NOSIGNAL | MSG_DONTWAIT) < 0)
			ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "a trace client missed its last lines");
		conn_close(c, k);
	}
	if (c->watched)
		ovmc_loop_del(c->loop, c->epfd);
	if (c->epfd >= 0)
		close(c->epfd);
	if (c->listen_fd >= 0)
		close(c->listen_fd);
	if (c->bound && unlink(c->path) != 0)
		ovmc_log(OVMC_LOG_WARN, COMPONENT, "cannot remove %s: %s", c->path,
			 strerror(errno));
	free(c->path);
	free(c);
}
