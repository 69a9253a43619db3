// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl: the control-socket commands (status, hv, ctl, trace).
 *
 * Protocol of an openvmc control socket (Unix, stream): the client sends one
 * request line per connection; the server answers with a first line "ok" or
 * "error <ERRNONAME>: <text>", then body lines, and closes the connection.
 * After "trace" the body lines keep coming until the client goes.
 */
#include "vmcctl.h"

#include "defaults.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* Long options without a short form. */
enum {
	OPT_INDEX = 0x100,
	OPT_HEX,
	OPT_FAILED,
	OPT_DEREGISTERED,
	OPT_COUNT,
	OPT_JSON,
	OPT_WAIT,
	OPT_PARTITION,
};

struct ctl_opts {
	const char *path;
	int timeout_ms;
};

/* Wait for events on fd within the deadline: 1 ready, 0 timeout, -errno. */
static int wait_fd(int fd, short events, int64_t deadline)
{
	struct pollfd p = {.fd = fd, .events = events};

	for (;;) {
		int n = poll(&p, 1, deadline_left(deadline));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		return n > 0;
	}
}

static void ctl_error(const char *what, const char *path, int err)
{
	char buf[128 + sizeof(((struct sockaddr_un *)0)->sun_path)];

	snprintf(buf, sizeof(buf), "%s %s", what, path);
	err_errno(buf, err);
}

/* Connect a non-blocking stream socket to path. Returns the fd or an exit code < 0. */
static int ctl_connect(const struct ctl_opts *co)
{
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	size_t len = strlen(co->path);
	int64_t deadline = deadline_after(co->timeout_ms);
	int backoff = 1;

	if (len == 0 || len >= sizeof(sa.sun_path)) {
		ctl_error("connect", co->path, len ? ENAMETOOLONG : ENOENT);
		return -VMCCTL_FAIL;
	}
	memcpy(sa.sun_path, co->path, len);

	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);

	if (fd < 0) {
		err_errno("socket", errno);
		return -VMCCTL_FAIL;
	}
	for (;;) {
		if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0)
			return fd;
		if (errno == EINTR)
			continue;
		if (errno == EINPROGRESS)
			break;
		if (errno == EPROTOTYPE) {
			err_msg("connect %s: not a control socket but a packet socket: the "
				"partitions' socket of openvmc-hvd (--socket) or a session "
				"socket? A daemon's control socket is its --control PATH "
				"(defaults: %s, %s, %s)",
				co->path, OVMC_DEFAULT_CTL_OPENVMC, OVMC_DEFAULT_CTL_HVD,
				OVMC_DEFAULT_CTL_OPENVMCD);
			close(fd);
			return -VMCCTL_FAIL;
		}
		if (errno != EAGAIN) {
			ctl_error("connect", co->path, errno);
			close(fd);
			return -VMCCTL_FAIL;
		}
		/* The listen backlog is full: try again until the timeout. */
		if (deadline_passed(deadline)) {
			ctl_error("connect: timed out:", co->path, EAGAIN);
			close(fd);
			return -VMCCTL_TIMEOUT;
		}
		int left = deadline_left(deadline);

		sleep_ms(left >= 0 && left < backoff ? left : backoff);
		backoff = backoff * 2 > 50 ? 50 : backoff * 2;
	}

	int r = wait_fd(fd, POLLOUT, deadline);
	int err = 0;
	socklen_t elen = sizeof(err);

	if (r == 0) {
		ctl_error("connect: timed out:", co->path, ETIMEDOUT);
		close(fd);
		return -VMCCTL_TIMEOUT;
	}
	if (r < 0)
		err = -r;
	else if (getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &elen) < 0)
		err = errno;
	if (err) {
		ctl_error("connect", co->path, err);
		close(fd);
		return -VMCCTL_FAIL;
	}
	return fd;
}

/*
 * Send all bytes, handling partial writes; every wait is bounded by the
 * timeout. If the server closed the connection early (EPIPE, ECONNRESET),
 * *closed is set and nothing is reported: it may have answered already.
 */
static int ctl_send_all(int fd, const struct ctl_opts *co, const char *p, size_t n, int *closed)
{
	*closed = 0;
	while (n > 0) {
		ssize_t w = send(fd, p, n, MSG_NOSIGNAL);

		if (w > 0) {
			p += w;
			n -= (size_t)w;
			continue;
		}
		if (w < 0 && errno == EINTR)
			continue;
		if (w < 0 && (errno == EPIPE || errno == ECONNRESET)) {
			*closed = errno;
			return VMCCTL_FAIL;
		}
		if (w < 0 && errno != EAGAIN) {
			ctl_error("send to", co->path, errno);
			return VMCCTL_FAIL;
		}
		int r = wait_fd(fd, POLLOUT, deadline_after(co->timeout_ms));

		if (r < 0) {
			err_errno("poll", -r);
			return VMCCTL_FAIL;
		}
		if (r == 0) {
			ctl_error("send: timed out:", co->path, ETIMEDOUT);
			return VMCCTL_TIMEOUT;
		}
	}
	return VMCCTL_OK;
}

/* Read until the server closes the connection. */
static int ctl_recv_all(int fd, const struct ctl_opts *co, struct buf *reply)
{
	char chunk[4096];

	for (;;) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n == 0)
			return VMCCTL_OK;
		if (n > 0) {
			if (reply->len + (size_t)n > VMCCTL_MAX_REPLY) {
				err_msg("reply from %s: longer than %u bytes", co->path,
					VMCCTL_MAX_REPLY);
				return VMCCTL_FAIL;
			}
			if (buf_append(reply, chunk, (size_t)n) < 0) {
				err_errno("reply", ENOMEM);
				return VMCCTL_FAIL;
			}
			continue;
		}
		if (errno == EINTR)
			continue;
		/* A server that closes without reading all of a request resets
		 * the connection after its reply. */
		if (errno == ECONNRESET && reply->len > 0)
			return VMCCTL_OK;
		if (errno != EAGAIN) {
			ctl_error("receive from", co->path, errno);
			return VMCCTL_FAIL;
		}
		int r = wait_fd(fd, POLLIN, deadline_after(co->timeout_ms));

		if (r < 0) {
			err_errno("poll", -r);
			return VMCCTL_FAIL;
		}
		if (r == 0) {
			ctl_error("no reply within the timeout from", co->path, ETIMEDOUT);
			return VMCCTL_TIMEOUT;
		}
	}
}

/*
 * Print the reply: the body of "ok" to stdout; "error ..." and its body to
 * stderr (exit 1). verb names the request in messages.
 */
static int ctl_print_reply(const char *verb, const struct ctl_opts *co, const struct buf *reply)
{
	const char *p = (const char *)reply->data;
	size_t n = reply->len;
	const char *nl = n ? memchr(p, '\n', n) : NULL;
	size_t first = nl ? (size_t)(nl - p) : n;
	size_t flen = first;
	const char *body = p + (nl ? first + 1 : n);
	size_t blen = n - (size_t)(body - p);

	if (flen && p[flen - 1] == '\r')
		flen--;
	if (n == 0) {
		err_msg("%s: empty reply from %s", verb, co->path);
		return VMCCTL_FAIL;
	}
	if (flen >= 2 && memcmp(p, "ok", 2) == 0 && (flen == 2 || p[2] == ' ')) {
		bool fail = false;

		if (flen > 3)
			fail |= printf("%.*s\n", (int)(flen - 3), p + 3) < 0;
		if (blen) {
			fail |= fwrite(body, 1, blen, stdout) != blen;
			if (body[blen - 1] != '\n')
				fail |= putchar('\n') == EOF;
		}
		if (fail) {
			err_errno("write to standard output", errno ? errno : EIO);
			return VMCCTL_FAIL;
		}
		return VMCCTL_OK;
	}
	if (flen >= 5 && memcmp(p, "error", 5) == 0 && (flen == 5 || p[5] == ' ')) {
		const char *text = flen > 6 ? p + 6 : "error without a description";
		int tlen = flen > 6 ? (int)(flen - 6) : (int)strlen(text);

		fprintf(stderr, "vmcctl: %s: %.*s\n", verb, tlen, text);
		if (blen) {
			fwrite(body, 1, blen, stderr);
			if (body[blen - 1] != '\n')
				fputc('\n', stderr);
		}
		return VMCCTL_FAIL;
	}
	err_msg("%s: malformed reply from %s (first line is neither 'ok' nor 'error')", verb,
		co->path);
	return VMCCTL_FAIL;
}

/* One request: connect, send line + newline, read the reply into *reply. */
static int ctl_exchange(const char *verb, const struct ctl_opts *co, const char *line,
			struct buf *reply)
{
	size_t len = strlen(line);
	struct buf req = {0};
	int fd, rc, closed = 0;

	if (memchr(line, '\n', len) || memchr(line, '\r', len))
		return usage_error(verb, "the control line must not contain a line break");
	if (buf_append(&req, line, len) < 0 || buf_append(&req, "\n", 1) < 0) {
		buf_free(&req);
		err_errno(verb, ENOMEM);
		return VMCCTL_FAIL;
	}
	fd = ctl_connect(co);
	if (fd < 0) {
		buf_free(&req);
		return -fd;
	}
	rc = ctl_send_all(fd, co, (const char *)req.data, req.len, &closed);
	if (!rc || closed)
		rc = ctl_recv_all(fd, co, reply);
	if (closed && (rc || reply->len == 0)) {
		/* Closed before the request was sent, without an answer. */
		if (!rc)
			ctl_error("send to", co->path, closed);
		rc = VMCCTL_FAIL;
	}
	if (close(fd) < 0 && !rc) {
		err_errno("close", errno);
		rc = VMCCTL_FAIL;
	}
	buf_free(&req);
	return rc;
}

/* One request and its reply printed. */
static int ctl_request(const char *verb, const struct ctl_opts *co, const char *line)
{
	struct buf reply = {0};
	int rc = ctl_exchange(verb, co, line, &reply);

	if (!rc)
		rc = ctl_print_reply(verb, co, &reply);
	buf_free(&reply);
	return rc;
}

/* The reply says there is no session (yet) at the index, or no VMC yet. */
static bool reply_no_session(const struct buf *reply)
{
	static const char *const errs[] = {"error ENOTCONN", "error ENODEV"};

	for (size_t i = 0; i < sizeof(errs) / sizeof(errs[0]); i++) {
		size_t n = strlen(errs[i]);

		if (reply->len > n && memcmp(reply->data, errs[i], n) == 0 &&
		    (reply->data[n] == ':' || reply->data[n] == ' ' || reply->data[n] == '\n'))
			return true;
	}
	return false;
}

/*
 * "send" with --wait: asked again every 20 ms while the hypervisor has no
 * session at the index (or no VMC), until the timeout.
 */
static int ctl_send_waiting(const struct ctl_opts *co, const char *line)
{
	int64_t deadline = deadline_after(co->timeout_ms);
	struct buf reply = {0};
	int rc;

	for (;;) {
		reply.len = 0;
		rc = ctl_exchange("send", co, line, &reply);
		if (rc || !reply_no_session(&reply) || deadline_passed(deadline))
			break;
		sleep_ms(20);
	}
	if (!rc)
		rc = ctl_print_reply("send", co, &reply);
	buf_free(&reply);
	return rc;
}

/* Options shared by the control commands; returns -1 when c is not one of them. */
static int ctl_common_opt(const char *cmd, int c, struct ctl_opts *co)
{
	switch (c) {
	case 'c':
		co->path = optarg;
		return VMCCTL_OK;
	case 'T':
		if (parse_timeout(optarg, &co->timeout_ms) < 0)
			return usage_error(cmd, "invalid timeout '%s'", optarg);
		return VMCCTL_OK;
	default:
		return -1;
	}
}

/* The daemons' defaults, in the order tried: the one-process openvmc first. */
static const char *const any_defaults[] = {OVMC_DEFAULT_CTL_OPENVMC, OVMC_DEFAULT_CTL_OPENVMCD,
					   OVMC_DEFAULT_CTL_HVD, NULL};
static const char *const hv_defaults[] = {OVMC_DEFAULT_CTL_OPENVMC, OVMC_DEFAULT_CTL_HVD, NULL};

/* --control, else $env, else the first default that is a socket. */
static int ctl_need_path(const char *cmd, struct ctl_opts *co, const char *env)
{
	const char *const *defaults =
		strcmp(env, "OPENVMC_HV_CONTROL") == 0 ? hv_defaults : any_defaults;
	char tried[256] = "";

	if (!co->path) {
		const char *e = getenv(env);

		if (e && *e)
			co->path = e;
	}
	for (const char *const *d = defaults; !co->path && *d; d++) {
		struct stat st;

		if (stat(*d, &st) == 0 && S_ISSOCK(st.st_mode))
			co->path = *d;
		snprintf(tried + strlen(tried), sizeof(tried) - strlen(tried), "%s%s",
			 d == defaults ? "" : ", ", *d);
	}
	if (!co->path)
		return usage_error(cmd,
				   "no control socket: none at the defaults (%s; is a daemon "
				   "running?): use --control PATH or set %s",
				   tried, env);
	return VMCCTL_OK;
}

#define CTL_OPTIONS_HELP                                                                           \
	"  -c, --control PATH   control socket\n"                                                  \
	"  -T, --timeout MS     bound of every wait (default 5000, 0 = forever)\n"                 \
	"  -h, --help           show this help\n"                                                  \
	"  -V, --version        show the version\n"

#define CTL_DEFAULT_HELP                                                                           \
	"\nThe socket defaults to $OPENVMC_CONTROL, else the first of\n"                            \
	"  " OVMC_DEFAULT_CTL_OPENVMC " (openvmc), " OVMC_DEFAULT_CTL_OPENVMCD " (openvmcd),\n"      \
	"  " OVMC_DEFAULT_CTL_HVD " (openvmc-hvd) that is there.\n"
#define HV_DEFAULT_HELP                                                                            \
	"\nThe socket defaults to $OPENVMC_HV_CONTROL, else the first of\n"                         \
	"  " OVMC_DEFAULT_CTL_OPENVMC " (openvmc), " OVMC_DEFAULT_CTL_HVD " (openvmc-hvd)\n"         \
	"that is there.\n"

/* ---- status --------------------------------------------------------------- */

int cmd_status(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_opts co = {.timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS};
	bool json = false;
	int c, r;

	while ((c = getopt_long(argc, argv, ":c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt("status", c, &co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			fputs("Usage: vmcctl status [-c PATH] [--json]\n"
			      "Print the status of an openvmc daemon (control line 'status', or\n"
			      "with --json 'status json').\n"
			      "\n"
			      "      --json           one JSON object "
			      "(docs/vmcctl-json.md)\n" CTL_OPTIONS_HELP CTL_DEFAULT_HELP,
			      stdout);
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("status", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("status", "unexpected argument '%s'", argv[optind]);
	r = ctl_need_path("status", &co, "OPENVMC_CONTROL");
	if (r)
		return r;
	return ctl_request("status", &co, json ? "status json" : "status");
}

/* ---- ctl ------------------------------------------------------------------ */

int cmd_ctl(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_opts co = {.timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS};
	struct buf line = {0};
	int c, r;

	/* '+': words of the line that start with '-' stay part of the line. */
	while ((c = getopt_long(argc, argv, "+:c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt("ctl", c, &co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case 'h':
			fputs("Usage: vmcctl ctl [-c PATH] LINE...\n"
			      "Send the words of LINE, joined by spaces, as one control line and\n"
			      "print the reply.\n"
			      "\n" CTL_OPTIONS_HELP CTL_DEFAULT_HELP,
			      stdout);
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("ctl", c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("ctl", "no control line given");
	r = ctl_need_path("ctl", &co, "OPENVMC_CONTROL");
	if (r)
		return r;
	for (int i = optind; i < argc; i++) {
		if ((i > optind && buf_append(&line, " ", 1) < 0) ||
		    buf_append(&line, argv[i], strlen(argv[i]) + 1) < 0) {
			buf_free(&line);
			err_errno("ctl", ENOMEM);
			return VMCCTL_FAIL;
		}
		line.len--; /* keep the NUL terminator out of the length */
	}
	const char *verb = argv[optind];

	r = ctl_request(*verb ? verb : "ctl", &co, (const char *)line.data);
	buf_free(&line);
	return r;
}

/* ---- hv ------------------------------------------------------------------- */

static void hv_help(void)
{
	fputs("Usage: vmcctl hv [-c PATH] COMMAND ...\n"
	      "Control the emulated hypervisor through its control socket.\n"
	      "\n"
	      "  send [--partition P] --index N (--hex HEX | TEXT)\n"
	      "                                     inject a hypervisor message on the\n"
	      "                                     session open at HMC index N\n"
	      "  restart [--deregistered]           restart the channel (the partition sees\n"
	      "                                     its partner failed, or deregistered)\n"
	      "  sessions                           list the HMC sessions\n"
	      "\n" CTL_OPTIONS_HELP HV_DEFAULT_HELP,
	      stdout);
}

static int hv_send(int argc, char **argv, struct ctl_opts *co)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"index", required_argument, NULL, OPT_INDEX},
		{"hex", required_argument, NULL, OPT_HEX},
		{"wait", no_argument, NULL, OPT_WAIT},
		{"partition", required_argument, NULL, OPT_PARTITION},
		{NULL, 0, NULL, 0},
	};
	const char *hex = NULL;
	unsigned long index = 0, partition = 0;
	bool have_index = false, wait = false;
	struct buf msg = {0};
	int c, r;

	while ((c = getopt_long(argc, argv, ":c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt("hv send", c, co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case OPT_INDEX:
			if (parse_ulong(optarg, 0, 254, &index) < 0)
				return usage_error("hv send", "invalid HMC index '%s' (0..254)",
						   optarg);
			have_index = true;
			break;
		case OPT_HEX:
			hex = optarg;
			break;
		case OPT_WAIT:
			wait = true;
			break;
		case OPT_PARTITION:
			if (parse_ulong(optarg, 1, UINT32_MAX, &partition) < 0)
				return usage_error("hv send", "invalid partition '%s'", optarg);
			break;
		case 'h':
			fputs("Usage: vmcctl hv send [-c PATH] [--wait] [--partition P] --index N\n"
			      "                      (--hex HEX | TEXT)\n"
			      "Inject an unsolicited hypervisor message on the session open at "
			      "HMC\n"
			      "index N (control line 'send [partition P] N HEX'). Without a session\n"
			      "there (an application opens one with VMC_IOCTL_SETHMCID, e.g. vmcctl\n"
			      "open) the hypervisor answers ENOTCONN. With several partitions, the\n"
			      "one that has a session at N, or the one given (ENOTUNIQ when several\n"
			      "have one and none is given; 'vmcctl hv sessions' lists them).\n"
			      "\n"
			      "      --partition P    the partition (as 'hv sessions' shows it)\n"
			      "      --index N        HMC index (0..254)\n"
			      "      --hex HEX        the message bytes in hex\n"
			      "      --wait           until a session is open at N (within the\n"
			      "                       timeout) instead of failing with ENOTCONN\n"
			      CTL_OPTIONS_HELP HV_DEFAULT_HELP,
			      stdout);
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("hv send", c, argv);
		}
	}
	if (!have_index)
		return usage_error("hv send", "--index is required");
	if (hex && optind < argc)
		return usage_error("hv send", "give either --hex or TEXT, not both");
	if (!hex && optind >= argc)
		return usage_error("hv send", "no message: give --hex HEX or TEXT");
	if (optind + 1 < argc)
		return usage_error("hv send", "one TEXT argument expected (quote it)");
	if (hex) {
		char err[128];

		r = hex_decode(hex, strlen(hex), &msg, err, sizeof(err));
		if (r < 0)
			buf_free(&msg);
		if (r == -ENOMEM) {
			err_errno("hv send", ENOMEM);
			return VMCCTL_FAIL;
		}
		if (r < 0)
			return usage_error("hv send", "--hex: %s", err);
	} else if (buf_append(&msg, argv[optind], strlen(argv[optind])) < 0) {
		err_errno("hv send", ENOMEM);
		return VMCCTL_FAIL;
	}
	if (msg.len == 0) {
		buf_free(&msg);
		return usage_error("hv send", "the message is empty");
	}
	r = ctl_need_path("hv send", co, "OPENVMC_HV_CONTROL");
	if (r) {
		buf_free(&msg);
		return r;
	}

	char *enc = hex_encode(msg.data, msg.len);
	size_t llen = enc ? strlen(enc) + 48 : 0;
	char *line = enc ? malloc(llen) : NULL;

	buf_free(&msg);
	if (!line) {
		free(enc);
		err_errno("hv send", ENOMEM);
		return VMCCTL_FAIL;
	}
	if (partition)
		snprintf(line, llen, "send partition %lu %lu %s", partition, index, enc);
	else
		snprintf(line, llen, "send %lu %s", index, enc);
	free(enc);
	r = wait ? ctl_send_waiting(co, line) : ctl_request("send", co, line);
	free(line);
	return r;
}

static int hv_simple(const char *cmd, int argc, char **argv, struct ctl_opts *co)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{"failed", no_argument, NULL, OPT_FAILED},
		{"deregistered", no_argument, NULL, OPT_DEREGISTERED},
		{NULL, 0, NULL, 0},
	};
	bool restart = strcmp(cmd, "restart") == 0;
	/* The control protocol's default, said explicitly. */
	const char *kind = NULL;
	char name[32];
	int c, r;

	snprintf(name, sizeof(name), "hv %s", cmd);
	while ((c = getopt_long(argc, argv, ":c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt(name, c, co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case OPT_FAILED:
		case OPT_DEREGISTERED:
			if (!restart)
				return option_error(name, '?', argv);
			if (kind)
				return usage_error(name,
						   "give --failed or --deregistered, not both");
			kind = c == OPT_FAILED ? "restart failed" : "restart deregistered";
			break;
		case 'h':
			if (restart)
				fputs("Usage: vmcctl hv restart [-c PATH] [--failed | "
				      "--deregistered]\n"
				      "Restart the channel: the partition driver sees its partner "
				      "failed\n"
				      "(the default, as the control line 'restart') or "
				      "deregistered, "
				      "and resets.\n"
				      "\n"
				      "      --failed         partner failed (the default)\n"
				      "      --deregistered   partner "
				      "deregistered\n" CTL_OPTIONS_HELP,
				      stdout);
			else
				fputs("Usage: vmcctl hv sessions [-c PATH]\n"
				      "List the HMC sessions known to the hypervisor.\n"
				      "\n" CTL_OPTIONS_HELP,
				      stdout);
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error(name, c, argv);
		}
	}
	if (optind < argc)
		return usage_error(name, "unexpected argument '%s'", argv[optind]);
	r = ctl_need_path(name, co, "OPENVMC_HV_CONTROL");
	if (r)
		return r;
	if (restart)
		return ctl_request("restart", co, kind ? kind : "restart failed");
	return ctl_request("sessions", co, "sessions");
}

int cmd_hv(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_opts co = {.timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS};
	int c, r;

	/* hv-level options may come before the subcommand. */
	while ((c = getopt_long(argc, argv, "+:c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt("hv", c, &co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case 'h':
			hv_help();
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("hv", c, argv);
		}
	}
	if (optind >= argc)
		return usage_error("hv", "no hv command given (send, restart, sessions)");

	const char *sub = argv[optind];
	int sub_argc = argc - optind;
	char **sub_argv = argv + optind;

	optind = 0;
	if (strcmp(sub, "send") == 0)
		return hv_send(sub_argc, sub_argv, &co);
	if (strcmp(sub, "restart") == 0 || strcmp(sub, "sessions") == 0)
		return hv_simple(sub, sub_argc, sub_argv, &co);
	return usage_error("hv", "unknown hv command '%s' (send, restart, sessions)", sub);
}

/* ---- trace ---------------------------------------------------------------- */

/* Longest line accepted from the daemon; its own lines are far shorter. */
#define TRACE_LINE_MAX 65536u

struct trace_state {
	const struct ctl_opts *co;
	unsigned long count; /* 0: no limit */
	unsigned long lines;
	bool ok; /* the first line said "ok" */
};

/*
 * One complete line (with its newline). Returns -1 to go on, or the exit
 * code: an error reply, a malformed one, or --count reached.
 */
static int trace_line(struct trace_state *ts, const char *p, size_t n)
{
	size_t len = n - 1;

	if (len && p[len - 1] == '\r')
		len--;
	if (!ts->ok) {
		if (len == 2 && memcmp(p, "ok", 2) == 0) {
			ts->ok = true;
			return -1;
		}
		if (len >= 6 && memcmp(p, "error ", 6) == 0) {
			fprintf(stderr, "vmcctl: trace: %.*s\n", (int)(len - 6), p + 6);
			return VMCCTL_FAIL;
		}
		err_msg("trace: malformed reply from %s (first line is neither 'ok' nor 'error')",
			ts->co->path);
		return VMCCTL_FAIL;
	}
	if (fwrite(p, 1, n, stdout) != n) {
		err_errno("write to standard output", errno ? errno : EIO);
		return VMCCTL_FAIL;
	}
	if (ts->count && ++ts->lines == ts->count)
		return VMCCTL_OK;
	return -1;
}

/* Hand every complete line of pending to trace_line(); keep the rest. */
static int trace_lines(struct trace_state *ts, struct buf *pending)
{
	char *p = (char *)pending->data;
	size_t off = 0;
	int rc = -1;

	while (rc < 0 && off < pending->len) {
		char *nl = memchr(p + off, '\n', pending->len - off);

		if (!nl)
			break;
		rc = trace_line(ts, p + off, (size_t)(nl - (p + off)) + 1);
		off = (size_t)(nl - p) + 1;
	}
	memmove(p, p + off, pending->len - off);
	pending->len -= off;
	/* Lines appear as they come, even through a pipe. */
	if (fflush(stdout) == EOF && rc <= 0) {
		err_errno("write to standard output", errno ? errno : EIO);
		return VMCCTL_FAIL;
	}
	if (rc < 0 && pending->len > TRACE_LINE_MAX) {
		err_msg("trace: a line from %s is longer than %u bytes", ts->co->path,
			TRACE_LINE_MAX);
		return VMCCTL_FAIL;
	}
	return rc;
}

/* After the request: print lines until the daemon closes or --count is reached. */
static int trace_stream(int fd, struct trace_state *ts)
{
	int64_t deadline = deadline_after(ts->co->timeout_ms);
	struct buf pending = {0};
	char chunk[4096];
	int rc = -1;

	while (rc < 0) {
		ssize_t n = recv(fd, chunk, sizeof(chunk), 0);

		if (n > 0) {
			if (buf_append(&pending, chunk, (size_t)n) < 0) {
				err_errno("trace", ENOMEM);
				rc = VMCCTL_FAIL;
			} else {
				rc = trace_lines(ts, &pending);
			}
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n == 0 || (errno == ECONNRESET && ts->ok)) {
			/* The daemon stopped: a last line may lack its newline. */
			if (pending.len && buf_append(&pending, "\n", 1) == 0)
				rc = trace_lines(ts, &pending);
			if (rc >= 0)
				break;
			if (!ts->ok) {
				err_msg("trace: %s closed the connection without a reply",
					ts->co->path);
				rc = VMCCTL_FAIL;
			} else if (ts->count) {
				err_msg("trace: %s ended the trace after %lu of %lu lines",
					ts->co->path, ts->lines, ts->count);
				rc = VMCCTL_FAIL;
			} else {
				rc = VMCCTL_OK;
			}
			break;
		}
		if (n < 0 && errno != EAGAIN) {
			ctl_error("receive from", ts->co->path, errno);
			rc = VMCCTL_FAIL;
			break;
		}

		/* Only the reply and a --count are bounded: a plain trace may
		 * stay quiet for as long as the channel does. */
		int r = wait_fd(fd, POLLIN, !ts->ok || ts->count ? deadline : -1);

		if (r < 0) {
			err_errno("poll", -r);
			rc = VMCCTL_FAIL;
		} else if (r == 0) {
			if (ts->ok)
				err_msg("trace: %lu of %lu lines within the timeout", ts->lines,
					ts->count);
			else
				ctl_error("no reply within the timeout from", ts->co->path,
					  ETIMEDOUT);
			rc = VMCCTL_TIMEOUT;
		}
	}
	buf_free(&pending);
	return rc;
}

int cmd_trace(int argc, char **argv)
{
	static const struct option opts[] = {
		{"control", required_argument, NULL, 'c'},
		{"timeout", required_argument, NULL, 'T'},
		{"count", required_argument, NULL, OPT_COUNT},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct ctl_opts co = {.timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS};
	struct trace_state ts = {.co = &co};
	int c, r, fd, closed;

	while ((c = getopt_long(argc, argv, ":c:T:hV", opts, NULL)) != -1) {
		r = ctl_common_opt("trace", c, &co);
		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case OPT_COUNT:
			if (parse_ulong(optarg, 1, ULONG_MAX, &ts.count) < 0)
				return usage_error("trace", "invalid count '%s'", optarg);
			break;
		case 'h':
			fputs("Usage: vmcctl trace [-c PATH] [--count N] [--timeout MS]\n"
			      "Print one line per CRQ entry and RDMA transfer of an openvmc\n"
			      "daemon's channel as they happen (control line 'trace'), until\n"
			      "the daemon stops or N lines are printed.\n"
			      "\n"
			      "      --count N        stop after N lines\n"
			      "  -c, --control PATH   control socket\n"
			      "  -T, --timeout MS     bound of the connection and the reply and,\n"
			      "                       with --count, of the N lines\n"
			      "                       (default 5000, 0 = forever)\n"
			      "  -h, --help           show this help\n"
			      "  -V, --version        show the version\n"
			      CTL_DEFAULT_HELP,
			      stdout);
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("trace", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("trace", "unexpected argument '%s'", argv[optind]);
	r = ctl_need_path("trace", &co, "OPENVMC_CONTROL");
	if (r)
		return r;
	fd = ctl_connect(&co);
	if (fd < 0)
		return -fd;
	r = ctl_send_all(fd, &co, "trace\n", 6, &closed);
	/* Closed early: the daemon may have refused with a reply. */
	if (!r || closed)
		r = trace_stream(fd, &ts);
	close(fd);
	return r;
}
