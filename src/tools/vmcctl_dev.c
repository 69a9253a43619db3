// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl: the device commands (query, request-vmc, open, pipe).
 *
 * Only the ibmvmc ABI is used: open, ioctl, read, write, poll, close; or,
 * with --socket (or when the device path is missing and a session socket is
 * next to it), the same operations through the client library.
 * Points of that ABI the code is built around:
 *  - SETHMCID fails with EAGAIN (driver not ready), ENOBUFS (no buffer yet
 *    for some HMC index) or EBUSY (no free slot) before it reserves anything,
 *    so those are retried until the timeout;
 *  - the open completes asynchronously: write() answers EBUSY until the
 *    hypervisor's open response arrives, and again whenever no send buffer is
 *    free; reading our own replies gives buffers back, so EBUSY waits also
 *    drain incoming messages;
 *  - read() longer than the negotiated MTU is EINVAL, so reads ask for
 *    exactly the MTU; EBADFD means the session was reset;
 *  - a zero-length write leaks a driver buffer, so empty messages are
 *    refused before they reach the device.
 */
#include "vmcctl.h"

#include "json.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openvmc/client.h>
#include <openvmc/ibmvmc.h>

/* Largest pause between two retries of an EBUSY/EAGAIN answer. */
#define MAX_BACKOFF_MS 50
/* Interval of QUERY while waiting for the ready state. */
#define READY_POLL_MS 20
/* Stdin lines waiting to be written before pipe stops reading stdin. */
#define PIPE_MAX_QUEUED 1024

/* Long options without a short form. */
enum {
	OPT_HEX_ID = 0x100,
	OPT_HEX_IN,
	OPT_STDIN,
	OPT_COUNT,
	OPT_STATS,
	OPT_LINGER,
	OPT_FORMAT,
	OPT_TEXT,
	OPT_RAW,
	OPT_JSON,
};

static const char *state_name(int state)
{
	switch (state) {
	case -1:
		return "sched-reset";
	case 0:
		return "initial";
	case 1:
		return "crqinit";
	case 2:
		return "capabilities";
	case 3:
		return "ready";
	case 4:
		return "failed";
	default:
		return "unknown";
	}
}

/* The session socket (--socket), NULL to use the device file. */
static const char *socket_path;
static struct ovmc_client *session;

void dev_use_socket(const char *path)
{
	socket_path = path;
}

/* No device file, but a daemon's session socket next to where it would be? */
static bool socket_instead(const char *path, char *sock, size_t size)
{
	struct stat st;

	if (stat(path, &st) == 0 || errno != ENOENT)
		return false;
	snprintf(sock, size, "%s.sock", path);
	return stat(sock, &st) == 0 && S_ISSOCK(st.st_mode);
}

static int open_device(const char *path, int *fd)
{
	char sock[4096 + 8], what[64 + 4096];
	const char *sp = socket_path;
	int rc;

	if (!sp && socket_instead(path, sock, sizeof(sock)))
		sp = sock;
	if (!sp) {
		*fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
		if (*fd >= 0)
			return VMCCTL_OK;
		snprintf(what, sizeof(what), "open %s", path);
		err_errno(what, errno);
		return VMCCTL_FAIL;
	}
	rc = session ? 0 : ovmc_client_new(sp, &session);
	*fd = rc ? rc : ovmc_client_open(session, O_NONBLOCK | O_CLOEXEC);
	if (*fd < 0) {
		snprintf(what, sizeof(what), "open session socket %s", sp);
		err_errno(what, -*fd);
		return VMCCTL_FAIL;
	}
	return VMCCTL_OK;
}

/* The device calls, on the file or through the session socket. */
static int dev_ioctl(int fd, unsigned long cmd, void *arg)
{
	int rc;

	if (!session)
		return ioctl(fd, cmd, arg);
	rc = ovmc_client_ioctl(session, fd, cmd, arg);
	if (rc < 0) {
		errno = -rc;
		return -1;
	}
	return rc;
}

static ssize_t dev_read(int fd, void *buf, size_t len)
{
	ssize_t n;

	if (!session)
		return read(fd, buf, len);
	n = ovmc_client_read(session, fd, buf, len);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static ssize_t dev_write(int fd, const void *buf, size_t len)
{
	ssize_t n;

	if (!session)
		return write(fd, buf, len);
	n = ovmc_client_write(session, fd, buf, len);
	if (n < 0) {
		errno = (int)-n;
		return -1;
	}
	return n;
}

static int close_device(int fd, int rc)
{
	if (close(fd) < 0) {
		err_errno("close device", errno);
		if (rc == VMCCTL_OK)
			rc = VMCCTL_FAIL;
	}
	return rc;
}

/* A generic explanation for an ioctl errno that is not call-specific. */
static const char *ioctl_hint(int err)
{
	switch (err) {
	case ENOTTY:
		return "not an ibmvmc device";
	case EFAULT:
		return "bad address";
	default:
		return NULL;
	}
}

static void ioctl_error(const char *call, const char *hint, int err)
{
	char what[256];

	if (!hint)
		hint = ioctl_hint(err);
	if (hint)
		snprintf(what, sizeof(what), "%s: %s", call, hint);
	else
		snprintf(what, sizeof(what), "%s", call);
	err_errno(what, err);
}

/* ---- query ---------------------------------------------------------------- */

static void query_help(void)
{
	fputs("Usage: vmcctl [-d PATH] query [--wait-ready[=MS]] [--json]\n"
	      "Show the driver state (VMC_IOCTL_QUERY).\n"
	      "\n"
	      "  -d, --device PATH    device file\n"
	      "  -W, --wait-ready[=MS] query until the state is ready (3), at most MS\n"
	      "                       milliseconds (default 5000, 0 = forever)\n"
	      "      --json           print one JSON object (docs/vmcctl-json.md)\n"
	      "  -h, --help           show this help\n"
	      "  -V, --version        show the version\n",
	      stdout);
}

static int do_query(int fd, struct ibmvmc_query_struct *q)
{
	for (;;) {
		memset(q, 0, sizeof(*q));
		if (dev_ioctl(fd, VMC_IOCTL_QUERY, q) == 0)
			return VMCCTL_OK;
		if (errno != EINTR)
			break;
	}
	ioctl_error("query (VMC_IOCTL_QUERY)", NULL, errno);
	return VMCCTL_FAIL;
}

int cmd_query(int argc, char **argv, const char *device)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},
		{"wait-ready", optional_argument, NULL, 'W'},
		{"json", no_argument, NULL, OPT_JSON},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	bool wait = false, json = false;
	int wait_ms = VMCCTL_DEFAULT_TIMEOUT_MS;
	int c, fd, rc;

	while ((c = getopt_long(argc, argv, ":d:WhV", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case 'W':
			wait = true;
			if (optarg && parse_timeout(optarg, &wait_ms) < 0)
				return usage_error("query", "invalid --wait-ready value '%s'",
						   optarg);
			break;
		case OPT_JSON:
			json = true;
			break;
		case 'h':
			query_help();
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("query", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("query", "unexpected argument '%s'", argv[optind]);

	rc = open_device(device, &fd);
	if (rc)
		return rc;

	struct ibmvmc_query_struct q;
	int64_t deadline = deadline_after(wait_ms);

	for (;;) {
		rc = do_query(fd, &q);
		if (rc || !wait || q.state == 3)
			break;
		if (deadline_passed(deadline)) {
			rc = VMCCTL_TIMEOUT;
			break;
		}
		int left = deadline_left(deadline);

		sleep_ms(left >= 0 && left < READY_POLL_MS ? left : READY_POLL_MS);
	}
	if (rc != VMCCTL_FAIL && json) {
		struct json j;

		json_start(&j, stdout);
		json_object(&j, NULL);
		json_bool(&j, "have_vmc", q.have_vmc);
		json_string(&j, "state", state_name(q.state));
		json_int(&j, "state_code", q.state);
		json_uint(&j, "drc_index", (uint32_t)q.vmc_drc_index);
		json_end(&j);
		putchar('\n');
	} else if (rc != VMCCTL_FAIL) {
		printf("have_vmc: %s\n", q.have_vmc ? "yes" : "no");
		printf("state: %s (%d)\n", state_name(q.state), q.state);
		printf("drc_index: 0x%08x\n", (unsigned int)q.vmc_drc_index);
	}
	if (rc == VMCCTL_TIMEOUT) {
		char what[128];

		snprintf(what, sizeof(what), "query: state still %s after %d ms",
			 state_name(q.state), wait_ms);
		err_errno(what, ETIMEDOUT);
	}
	return close_device(fd, rc);
}

/* ---- request-vmc ---------------------------------------------------------- */

static void request_vmc_help(void)
{
	fputs("Usage: vmcctl [-d PATH] request-vmc\n"
	      "Ask the hypervisor to create a VMC device (VMC_IOCTL_REQUESTVMC) and print\n"
	      "its DRC index.\n"
	      "\n"
	      "  -d, --device PATH    device file\n"
	      "  -h, --help           show this help\n"
	      "  -V, --version        show the version\n",
	      stdout);
}

static const char *request_vmc_hint(int err)
{
	switch (err) {
	case EPERM:
		return "denied by the hypervisor, or not supported on this system";
	case ENODEV:
		return "VMC resource unavailable";
	case EIO:
		return "hardware error reported by the hypervisor";
	case EINVAL:
		return "invalid parameter (or the device does not know this request)";
	default:
		return NULL;
	}
}

int cmd_request_vmc(int argc, char **argv, const char *device)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	int c, fd, rc, ret;
	uint32_t index = 0;

	while ((c = getopt_long(argc, argv, ":d:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case 'h':
			request_vmc_help();
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("request-vmc", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("request-vmc", "unexpected argument '%s'", argv[optind]);

	rc = open_device(device, &fd);
	if (rc)
		return rc;
	do
		ret = dev_ioctl(fd, VMC_IOCTL_REQUESTVMC, &index);
	while (ret < 0 && errno == EINTR);
	if (ret < 0) {
		int err = errno;

		ioctl_error("request-vmc", request_vmc_hint(err), err);
		rc = VMCCTL_FAIL;
	} else if (ret > 0) {
		/* The driver passes unknown hypervisor codes through as a
		 * positive result; the index it copied out is not trustworthy. */
		err_msg("request-vmc: unexpected hypervisor return code %d (index 0x%08x "
			"not trusted)",
			ret, (unsigned int)index);
		rc = VMCCTL_FAIL;
	} else {
		printf("drc_index: 0x%08" PRIx32 "\n", index);
	}
	return close_device(fd, rc);
}

/* ---- session helpers shared by open and pipe ----------------------------- */

struct session_opts {
	const char *device;
	int timeout_ms;
	unsigned int mtu;
	unsigned char hmc_id[HMC_ID_LEN];
	bool have_id;
	bool hex; /* pipe: input lines are hex */
	enum out_format fmt;
};

static int parse_hmc_id(const char *cmd, struct session_opts *so, const char *arg, bool hex)
{
	if (so->have_id)
		return usage_error(cmd, "the HMC id is given twice");
	memset(so->hmc_id, 0, sizeof(so->hmc_id));
	if (hex) {
		struct buf b = {0};
		char err[128];
		int r = hex_decode(arg, strlen(arg), &b, err, sizeof(err));

		if (r < 0)
			buf_free(&b);
		if (r == -ENOMEM) {
			err_errno("--hmc-id-hex", ENOMEM);
			return VMCCTL_FAIL;
		}
		if (r < 0)
			return usage_error(cmd, "--hmc-id-hex: %s", err);
		if (b.len != HMC_ID_LEN) {
			size_t got = b.len;

			buf_free(&b);
			return usage_error(cmd,
					   "--hmc-id-hex needs exactly %d bytes (%d hex digits), "
					   "got %zu bytes",
					   HMC_ID_LEN, 2 * HMC_ID_LEN, got);
		}
		memcpy(so->hmc_id, b.data, HMC_ID_LEN);
		buf_free(&b);
	} else {
		size_t len = strlen(arg);

		if (len == 0)
			return usage_error(cmd, "the HMC id is empty");
		if (len > HMC_ID_LEN)
			return usage_error(cmd, "HMC id '%s' is %zu bytes, longer than %d", arg,
					   len, HMC_ID_LEN);
		memcpy(so->hmc_id, arg, len);
	}
	so->have_id = true;
	return VMCCTL_OK;
}

static const char *sethmcid_hint(int err)
{
	switch (err) {
	case EAGAIN:
		return "the driver is not ready";
	case ENOBUFS:
		return "the hypervisor has not provided buffers for every HMC index";
	case EBUSY:
		return "no free HMC slot (another session is open)";
	case EIO:
		return "driver failed, or no usable buffer for this HMC index";
	default:
		return NULL;
	}
}

/*
 * VMC_IOCTL_SETHMCID, retrying the answers that come before the driver
 * reserves anything (EAGAIN, ENOBUFS, EBUSY) until the timeout.
 */
static int set_hmc_id(int fd, const struct session_opts *so)
{
	int64_t deadline = deadline_after(so->timeout_ms);
	int backoff = 1;

	for (;;) {
		if (dev_ioctl(fd, VMC_IOCTL_SETHMCID, (void *)so->hmc_id) == 0)
			return VMCCTL_OK;

		int err = errno;

		if (err == EINTR)
			continue;
		if (err != EAGAIN && err != ENOBUFS && err != EBUSY) {
			ioctl_error("set HMC id (VMC_IOCTL_SETHMCID)", sethmcid_hint(err), err);
			return VMCCTL_FAIL;
		}
		if (deadline_passed(deadline)) {
			char what[256];

			snprintf(what, sizeof(what), "set HMC id: timed out after %d ms: %s",
				 so->timeout_ms, sethmcid_hint(err));
			err_errno(what, err);
			return VMCCTL_TIMEOUT;
		}
		int left = deadline_left(deadline);

		sleep_ms(left >= 0 && left < backoff ? left : backoff);
		backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
	}
}

static int open_session(const struct session_opts *so, int *fd)
{
	int rc = open_device(so->device, fd);

	if (rc)
		return rc;
	rc = set_hmc_id(*fd, so);
	if (rc) {
		close_device(*fd, rc);
		*fd = -1;
	}
	return rc;
}

static void session_reset(void)
{
	err_msg("session reset by the hypervisor");
}

/*
 * Read one message if one is queued. Returns 1 with *len set, 0 when none
 * is queued (EAGAIN), or a negative exit code after reporting.
 */
static int read_message(int fd, unsigned char *msg, unsigned int mtu, size_t *len)
{
	for (;;) {
		ssize_t n = dev_read(fd, msg, mtu);

		if (n >= 0) {
			*len = (size_t)n;
			return 1;
		}
		switch (errno) {
		case EINTR:
			continue;
		case EAGAIN:
			return 0;
		case EBADFD:
			session_reset();
			return -VMCCTL_FAIL;
		case EINVAL: {
			char what[160];

			snprintf(what, sizeof(what),
				 "read: the device refused a %u-byte read (larger than the "
				 "negotiated MTU? see --mtu)",
				 mtu);
			err_errno(what, EINVAL);
			return -VMCCTL_FAIL;
		}
		case EIO:
			err_errno("read: session not open", EIO);
			return -VMCCTL_FAIL;
		default:
			err_errno("read", errno);
			return -VMCCTL_FAIL;
		}
	}
}

/*
 * Wait up to wait_ms (-1 forever) for the device to become readable.
 * Returns 1 readable, 0 timeout, or a negative exit code after reporting.
 */
static int wait_readable(int fd, int wait_ms)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};
	int64_t deadline = wait_ms < 0 ? -1 : now_ms() + wait_ms;

	for (;;) {
		int n = poll(&p, 1, deadline_left(deadline));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno("poll", errno);
			return -VMCCTL_FAIL;
		}
		if (n == 0)
			return 0;
		if (p.revents & POLLIN)
			return 1;
		if (p.revents & POLLNVAL) {
			err_errno("poll", EBADF);
			return -VMCCTL_FAIL;
		}
		/* POLLHUP or POLLERR without data: the session is gone. */
		session_reset();
		return -VMCCTL_FAIL;
	}
}

/* The message could not be sent; report why. */
static void write_error(int err)
{
	switch (err) {
	case EIO:
		err_errno("write: session not open (closed, failed or reset), or message longer "
			  "than the negotiated MTU",
			  err);
		break;
	case EBADFD:
		session_reset();
		break;
	default:
		err_errno("write", err);
		break;
	}
}

/*
 * Print one received message as fmt says (resolved: not OUT_AUTO). Raw
 * bytes get a newline after them if line is set (pipe's lines).
 */
static int output_message(const unsigned char *msg, size_t len, enum out_format fmt, bool line)
{
	size_t text_len = len;
	int r;

	if (fmt == OUT_READABLE && is_text(msg, len)) {
		/* Its own final line break is the line's. */
		if (text_len && msg[text_len - 1] == '\n')
			text_len -= text_len >= 2 && msg[text_len - 2] == '\r' ? 2 : 1;
		fmt = OUT_TEXT;
	} else if (fmt == OUT_READABLE) {
		fmt = OUT_DUMP;
	}
	switch (fmt) {
	case OUT_JSON: {
		struct json j;

		json_start(&j, stdout);
		json_object(&j, NULL);
		json_object(&j, "message");
		json_uint(&j, "length", len);
		json_hex(&j, "hex", msg, len);
		if (is_text(msg, len))
			json_stringn(&j, "text", (const char *)msg, len);
		else
			json_null(&j, "text");
		json_end(&j);
		json_end(&j);
		r = putchar('\n') == EOF || ferror(stdout) ? -1 : 0;
		break;
	}
	case OUT_HEX:
		r = hex_print(stdout, msg, len);
		break;
	case OUT_TEXT:
		r = text_print(stdout, msg, text_len);
		break;
	case OUT_DUMP:
		r = dump_print(stdout, msg, len);
		break;
	default:
		r = (fwrite(msg, 1, len, stdout) == len && (!line || putchar('\n') != EOF)) ? 0
											    : -1;
		break;
	}
	if (r < 0 || fflush(stdout) != 0) {
		err_errno("write to standard output", errno ? errno : EIO);
		return VMCCTL_FAIL;
	}
	return VMCCTL_OK;
}

/* Read a whole message source (file or stdin) into b. */
static int load_file(const char *path, struct buf *b)
{
	int fd = path ? open(path, O_RDONLY | O_CLOEXEC) : STDIN_FILENO;
	int r;
	char what[64 + 4096];

	snprintf(what, sizeof(what), "read %s", path ? path : "standard input");
	if (fd < 0) {
		err_errno(what, errno);
		return VMCCTL_FAIL;
	}
	r = read_all_fd(fd, b);
	if (path && close(fd) < 0 && r == 0)
		r = -errno;
	if (r < 0) {
		err_errno(what, -r);
		return VMCCTL_FAIL;
	}
	return VMCCTL_OK;
}

/* ---- open ----------------------------------------------------------------- */

static void open_help(void)
{
	fputs("Usage: vmcctl [-d PATH] open (--hmc-id ID | --hmc-id-hex HEX) [OPTIONS]\n"
	      "Open an HMC session, send messages, then print the messages received.\n"
	      "\n"
	      "  -d, --device PATH    device file\n"
	      "  -i, --hmc-id ID      HMC id: text of 1 to 32 bytes, padded with NULs\n"
	      "      --hmc-id-hex HEX HMC id: exactly 32 bytes in hex\n"
	      "  -M, --message TEXT   send TEXT as one message (repeatable)\n"
	      "  -F, --file PATH      send the whole file as one message (repeatable)\n"
	      "      --stdin          send all of standard input as one message\n"
	      "      --hex-in         the messages above are hex strings\n"
	      "  -e, --expect N       messages to receive (default: as many as sent)\n"
	      "  -x, --hex            print each received message as a line of hex\n"
	      "      --text           ... as a line of text, other bytes escaped (\\n, \\xNN)\n"
	      "      --raw            ... as its bytes, back to back\n"
	      "      --format FMT     auto, text, hex, dump (offsets, hex, characters), json\n"
	      "                       or raw; auto (default): on a terminal text for a\n"
	      "                       printable message and dump for others, else raw\n"
	      "      --json           each received message, and --stats, as a JSON line\n"
	      "  -T, --timeout MS     bound of every wait (default 5000, 0 = forever)\n"
	      "  -u, --mtu N          read length, the negotiated MTU (default 4096)\n"
	      "      --count N        send the list of messages N times (default 1)\n"
	      "      --stats          print a summary line to standard error (--json:\n"
	      "                       a last JSON line on standard output)\n"
	      "  -h, --help           show this help\n"
	      "  -V, --version        show the version\n",
	      stdout);
}

enum source_kind { SRC_TEXT, SRC_FILE, SRC_STDIN };

struct source {
	enum source_kind kind;
	const char *arg;
};

struct open_stats {
	uint64_t sent, sent_bytes, received, received_bytes;
	int64_t start;
};

/* A line on standard error, or with --json the last JSON line of standard output. */
static int print_stats(const struct open_stats *st, bool json)
{
	double secs = (double)(now_ms() - st->start) / 1000.0;
	double div = secs > 0 ? secs : 0.001;

	if (json) {
		struct json j;

		json_start(&j, stdout);
		json_object(&j, NULL);
		json_object(&j, "stats");
		json_uint(&j, "sent", st->sent);
		json_uint(&j, "sent_bytes", st->sent_bytes);
		json_uint(&j, "received", st->received);
		json_uint(&j, "received_bytes", st->received_bytes);
		json_double(&j, "elapsed_s", secs, 3);
		json_double(&j, "sent_per_s", (double)st->sent / div, 1);
		json_double(&j, "received_per_s", (double)st->received / div, 1);
		json_end(&j);
		json_end(&j);
		return putchar('\n') == EOF ? VMCCTL_FAIL : VMCCTL_OK;
	}
	fprintf(stderr,
		"vmcctl: stats: sent %" PRIu64 " messages (%" PRIu64 " bytes), received %" PRIu64
		" messages (%" PRIu64 " bytes), elapsed %.3f s, %.1f msgs/s sent, %.1f msgs/s "
		"received\n",
		st->sent, st->sent_bytes, st->received, st->received_bytes, secs,
		(double)st->sent / div, (double)st->received / div);
	return VMCCTL_OK;
}

/* Receive and print every message already queued, up to the expected count. */
static int drain_queued(int fd, const struct session_opts *so, unsigned char *msg, uint64_t expect,
			struct open_stats *st)
{
	while (st->received < expect) {
		size_t len;
		int r = read_message(fd, msg, so->mtu, &len);

		if (r < 0)
			return -r;
		if (r == 0)
			return VMCCTL_OK;
		st->received++;
		st->received_bytes += len;
		r = output_message(msg, len, so->fmt, false);
		if (r)
			return r;
	}
	return VMCCTL_OK;
}

/*
 * Send one message. EBUSY (open not complete, or no free buffer) is retried
 * with a growing pause until the timeout, receiving queued messages meanwhile
 * so that our own replies give their buffers back.
 */
static int send_message(int fd, const struct session_opts *so, const struct buf *m,
			unsigned char *msg, uint64_t expect, struct open_stats *st)
{
	int64_t deadline = -2;
	int backoff = 1;

	for (;;) {
		ssize_t n = dev_write(fd, m->data, m->len);

		if (n >= 0 && (size_t)n == m->len) {
			st->sent++;
			st->sent_bytes += m->len;
			return VMCCTL_OK;
		}
		if (n >= 0) {
			err_msg("write: short write (%zd of %zu bytes)", n, m->len);
			return VMCCTL_FAIL;
		}
		if (errno == EINTR)
			continue;
		if (errno != EBUSY) {
			write_error(errno);
			return VMCCTL_FAIL;
		}
		if (deadline == -2)
			deadline = deadline_after(so->timeout_ms);
		if (deadline_passed(deadline)) {
			char what[128];

			snprintf(what, sizeof(what),
				 "write: device still busy after %d ms (session not open?)",
				 so->timeout_ms);
			err_errno(what, EBUSY);
			return VMCCTL_TIMEOUT;
		}
		int left = deadline_left(deadline);
		int pause = left >= 0 && left < backoff ? left : backoff;

		backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
		if (st->received < expect) {
			int r = wait_readable(fd, pause);

			if (r < 0)
				return -r;
			if (r > 0) {
				r = drain_queued(fd, so, msg, expect, st);
				if (r)
					return r;
			}
		} else {
			sleep_ms(pause);
		}
	}
}

static int receive_messages(int fd, const struct session_opts *so, unsigned char *msg,
			    uint64_t expect, struct open_stats *st)
{
	while (st->received < expect) {
		int r = drain_queued(fd, so, msg, expect, st);

		if (r)
			return r;
		if (st->received >= expect)
			break;
		r = wait_readable(fd, so->timeout_ms ? so->timeout_ms : -1);
		if (r < 0)
			return -r;
		if (r == 0) {
			char what[128];

			snprintf(what, sizeof(what),
				 "read: no message within %d ms (received %" PRIu64 " of %" PRIu64
				 ")",
				 so->timeout_ms, st->received, expect);
			err_errno(what, ETIMEDOUT);
			return VMCCTL_TIMEOUT;
		}
	}
	return VMCCTL_OK;
}

/* Load, decode and check every message source. */
static int load_messages(const struct source *src, size_t nsrc, bool hex_in, unsigned int mtu,
			 struct buf *msgs)
{
	for (size_t i = 0; i < nsrc; i++) {
		struct buf raw = {0};

		if (src[i].kind == SRC_TEXT) {
			if (buf_append(&raw, src[i].arg, strlen(src[i].arg)) < 0) {
				err_errno("open", ENOMEM);
				return VMCCTL_FAIL;
			}
		} else {
			int rc = load_file(src[i].kind == SRC_FILE ? src[i].arg : NULL, &raw);

			if (rc) {
				buf_free(&raw);
				return rc;
			}
		}
		if (hex_in) {
			char err[128];
			int r = hex_decode((const char *)raw.data, raw.len, &msgs[i], err,
					   sizeof(err));

			buf_free(&raw);
			if (r == -ENOMEM) {
				err_errno("open", ENOMEM);
				return VMCCTL_FAIL;
			}
			if (r < 0)
				return usage_error("open", "message %zu: %s", i + 1, err);
		} else {
			msgs[i] = raw;
		}
		if (msgs[i].len == 0)
			return usage_error("open", "message %zu is empty", i + 1);
		if (msgs[i].len > mtu)
			return usage_error("open",
					   "message %zu is %zu bytes, longer than the MTU (%u)",
					   i + 1, msgs[i].len, mtu);
	}
	return VMCCTL_OK;
}

static int parse_session_common(const char *cmd, int c, struct session_opts *so)
{
	unsigned long v;

	switch (c) {
	case 'd':
		so->device = optarg;
		return VMCCTL_OK;
	case 'i':
		return parse_hmc_id(cmd, so, optarg, false);
	case OPT_HEX_ID:
		return parse_hmc_id(cmd, so, optarg, true);
	case 'x':
		so->hex = true;
		so->fmt = OUT_HEX;
		return VMCCTL_OK;
	case OPT_TEXT:
		so->fmt = OUT_TEXT;
		return VMCCTL_OK;
	case OPT_RAW:
		so->fmt = OUT_RAW;
		return VMCCTL_OK;
	case OPT_JSON:
		so->fmt = OUT_JSON;
		return VMCCTL_OK;
	case OPT_FORMAT:
		if (parse_format(optarg, &so->fmt) < 0)
			return usage_error(cmd,
					   "unknown format '%s' (auto, text, hex, dump, raw, json)",
					   optarg);
		return VMCCTL_OK;
	case 'T':
		if (parse_timeout(optarg, &so->timeout_ms) < 0)
			return usage_error(cmd, "invalid timeout '%s'", optarg);
		return VMCCTL_OK;
	case 'u':
		if (parse_ulong(optarg, 1, VMCCTL_MAX_MTU, &v) < 0)
			return usage_error(cmd, "invalid MTU '%s' (1..%u)", optarg, VMCCTL_MAX_MTU);
		so->mtu = (unsigned int)v;
		return VMCCTL_OK;
	default:
		return -1;
	}
}

int cmd_open(int argc, char **argv, const char *device)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},
		{"hmc-id", required_argument, NULL, 'i'},
		{"hmc-id-hex", required_argument, NULL, OPT_HEX_ID},
		{"message", required_argument, NULL, 'M'},
		{"file", required_argument, NULL, 'F'},
		{"stdin", no_argument, NULL, OPT_STDIN},
		{"hex-in", no_argument, NULL, OPT_HEX_IN},
		{"expect", required_argument, NULL, 'e'},
		{"hex", no_argument, NULL, 'x'},
		{"text", no_argument, NULL, OPT_TEXT},
		{"raw", no_argument, NULL, OPT_RAW},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"json", no_argument, NULL, OPT_JSON},
		{"timeout", required_argument, NULL, 'T'},
		{"mtu", required_argument, NULL, 'u'},
		{"count", required_argument, NULL, OPT_COUNT},
		{"stats", no_argument, NULL, OPT_STATS},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct session_opts so = {.device = device,
				  .timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS,
				  .mtu = VMCCTL_DEFAULT_MTU};
	struct source *src = NULL;
	size_t nsrc = 0;
	bool hex_in = false, stats = false, have_stdin = false, have_expect = false;
	unsigned long count = 1, expect_arg = 0;
	struct buf *msgs = NULL;
	unsigned char *msg = NULL;
	uint64_t total, expect;
	struct open_stats st = {0};
	int c, fd = -1, rc = VMCCTL_OK;

	while ((c = getopt_long(argc, argv, ":d:i:M:F:e:xT:u:hV", opts, NULL)) != -1) {
		int r = parse_session_common("open", c, &so);

		if (r >= 0) {
			if (r) {
				rc = r;
				goto out;
			}
			continue;
		}
		switch (c) {
		case 'M':
		case 'F':
		case OPT_STDIN: {
			if (c == OPT_STDIN) {
				if (have_stdin) {
					rc = usage_error("open", "--stdin given twice");
					goto out;
				}
				have_stdin = true;
			}
			struct source *n = realloc(src, (nsrc + 1) * sizeof(*src));

			if (!n) {
				err_errno("open", ENOMEM);
				rc = VMCCTL_FAIL;
				goto out;
			}
			src = n;
			src[nsrc].kind = c == 'M' ? SRC_TEXT : c == 'F' ? SRC_FILE : SRC_STDIN;
			src[nsrc].arg = c == OPT_STDIN ? NULL : optarg;
			nsrc++;
			break;
		}
		case OPT_HEX_IN:
			hex_in = true;
			break;
		case 'e':
			if (parse_ulong(optarg, 0, UINT32_MAX, &expect_arg) < 0) {
				rc = usage_error("open", "invalid --expect value '%s'", optarg);
				goto out;
			}
			have_expect = true;
			break;
		case OPT_COUNT:
			if (parse_ulong(optarg, 1, UINT32_MAX, &count) < 0) {
				rc = usage_error("open", "invalid --count value '%s'", optarg);
				goto out;
			}
			break;
		case OPT_STATS:
			stats = true;
			break;
		case 'h':
			open_help();
			goto out;
		case 'V':
			rc = print_version();
			goto out;
		default:
			rc = option_error("open", c, argv);
			goto out;
		}
	}
	if (optind < argc) {
		rc = usage_error("open", "unexpected argument '%s'", argv[optind]);
		goto out;
	}
	if (!so.have_id) {
		rc = usage_error("open", "an HMC id is required (--hmc-id or --hmc-id-hex)");
		goto out;
	}
	so.fmt = resolve_format(so.fmt);
	msgs = calloc(nsrc ? nsrc : 1, sizeof(*msgs));
	msg = malloc(so.mtu);
	if (!msgs || !msg) {
		err_errno("open", ENOMEM);
		rc = VMCCTL_FAIL;
		goto out;
	}
	rc = load_messages(src, nsrc, hex_in, so.mtu, msgs);
	if (rc)
		goto out;

	total = (uint64_t)nsrc * count;
	expect = have_expect ? expect_arg : total;

	rc = open_session(&so, &fd);
	if (rc)
		goto out;
	st.start = now_ms();
	for (uint64_t i = 0; i < total && !rc; i++)
		rc = send_message(fd, &so, &msgs[i % nsrc], msg, expect, &st);
	if (!rc)
		rc = receive_messages(fd, &so, msg, expect, &st);
	if (stats && print_stats(&st, so.fmt == OUT_JSON) && !rc)
		rc = VMCCTL_FAIL;
	rc = close_device(fd, rc);
out:
	for (size_t i = 0; msgs && i < nsrc; i++)
		buf_free(&msgs[i]);
	free(msgs);
	free(msg);
	free(src);
	return rc;
}

/* ---- pipe ----------------------------------------------------------------- */

static void pipe_help(void)
{
	fputs("Usage: vmcctl [-d PATH] pipe (--hmc-id ID | --hmc-id-hex HEX) [OPTIONS]\n"
	      "Open an HMC session; send each line of standard input (without its newline)\n"
	      "as one message and print each received message as one line. Empty lines are\n"
	      "skipped. At the end of input, wait for replies until none came for --linger.\n"
	      "\n"
	      "  -d, --device PATH    device file\n"
	      "  -i, --hmc-id ID      HMC id: text of 1 to 32 bytes, padded with NULs\n"
	      "      --hmc-id-hex HEX HMC id: exactly 32 bytes in hex\n"
	      "  -x, --hex            lines in and out are hex\n"
	      "      --text           a received message as text, other bytes escaped\n"
	      "      --raw            a received message as its bytes and a newline\n"
	      "      --format FMT     auto, text, hex, dump, json or raw (output only);\n"
	      "                       auto (default): on a terminal text for a printable\n"
	      "                       message and dump for others, else raw\n"
	      "      --json           each received message as a JSON line\n"
	      "      --linger MS      wait for replies after end of input (default 500)\n"
	      "  -T, --timeout MS     bound of the open and of a busy device (default 5000)\n"
	      "  -u, --mtu N          read length, the negotiated MTU (default 4096)\n"
	      "  -h, --help           show this help\n"
	      "  -V, --version        show the version\n",
	      stdout);
}

/* FIFO of messages waiting to be written, in input order. */
struct msg_queue {
	struct buf *items;
	size_t head, count, cap;
};

static int queue_push(struct msg_queue *q, struct buf *m)
{
	if (q->count == q->cap) {
		size_t cap = q->cap ? q->cap * 2 : 16;
		struct buf *n = malloc(cap * sizeof(*n));

		if (!n)
			return -ENOMEM;
		for (size_t i = 0; i < q->count; i++)
			n[i] = q->items[(q->head + i) % q->cap];
		free(q->items);
		q->items = n;
		q->head = 0;
		q->cap = cap;
	}
	q->items[(q->head + q->count) % q->cap] = *m;
	q->count++;
	*m = (struct buf){0};
	return 0;
}

static void queue_pop(struct msg_queue *q)
{
	buf_free(&q->items[q->head]);
	q->head = (q->head + 1) % q->cap;
	q->count--;
}

static void queue_free(struct msg_queue *q)
{
	while (q->count)
		queue_pop(q);
	free(q->items);
	*q = (struct msg_queue){0};
}

struct pipe_state {
	const struct session_opts *so;
	struct msg_queue queue;
	struct buf line; /* the stdin line being assembled */
	bool discarding; /* the current line is too long: skip to newline */
	uint64_t line_no;
	bool input_error; /* some line was refused */
};

/* Turn one complete input line into a queued message (or report it). */
static int pipe_line(struct pipe_state *ps, const unsigned char *p, size_t len)
{
	struct buf m = {0};

	ps->line_no++;
	if (len == 0)
		return VMCCTL_OK;
	if (ps->so->hex) {
		char err[128];
		int r = hex_decode((const char *)p, len, &m, err, sizeof(err));

		if (r < 0)
			buf_free(&m);
		if (r == -ENOMEM)
			goto nomem;
		if (r < 0) {
			err_msg("line %" PRIu64 ": %s", ps->line_no, err);
			ps->input_error = true;
			return VMCCTL_OK;
		}
		if (m.len == 0) {
			buf_free(&m);
			return VMCCTL_OK;
		}
	} else if (buf_append(&m, p, len) < 0) {
		goto nomem;
	}
	if (m.len > ps->so->mtu) {
		err_msg("line %" PRIu64 ": message of %zu bytes is longer than the MTU (%u)",
			ps->line_no, m.len, ps->so->mtu);
		ps->input_error = true;
		buf_free(&m);
		return VMCCTL_OK;
	}
	if (queue_push(&ps->queue, &m) < 0) {
		buf_free(&m);
		goto nomem;
	}
	return VMCCTL_OK;
nomem:
	err_errno("pipe", ENOMEM);
	return VMCCTL_FAIL;
}

/* Split freshly read stdin bytes into lines. */
static int pipe_input(struct pipe_state *ps, const unsigned char *p, size_t n)
{
	/* Longest line kept: hex input may hold whitespace between pairs. */
	size_t limit = (size_t)ps->so->mtu * 4 + 1024;

	while (n > 0) {
		const unsigned char *nl = memchr(p, '\n', n);
		size_t take = nl ? (size_t)(nl - p) : n;

		if (!ps->discarding) {
			if (ps->line.len + take > limit) {
				ps->discarding = true;
				ps->line.len = 0;
			} else if (buf_append(&ps->line, p, take) < 0) {
				err_errno("pipe", ENOMEM);
				return VMCCTL_FAIL;
			}
		}
		if (!nl)
			return VMCCTL_OK;
		if (ps->discarding) {
			ps->line_no++;
			err_msg("line %" PRIu64 ": longer than the MTU (%u), skipped", ps->line_no,
				ps->so->mtu);
			ps->input_error = true;
			ps->discarding = false;
		} else {
			int rc = pipe_line(ps, ps->line.data, ps->line.len);

			if (rc)
				return rc;
		}
		ps->line.len = 0;
		p += take + 1;
		n -= take + 1;
	}
	return VMCCTL_OK;
}

/* A last line without newline at end of input. */
static int pipe_input_end(struct pipe_state *ps)
{
	if (ps->discarding || ps->line.len)
		return pipe_input(ps, (const unsigned char *)"\n", 1);
	return VMCCTL_OK;
}

static int min_wait(int a, int b)
{
	if (a < 0)
		return b;
	if (b < 0)
		return a;
	return a < b ? a : b;
}

static int pipe_loop(int fd, struct pipe_state *ps, int linger_ms)
{
	const struct session_opts *so = ps->so;
	unsigned char *msg = malloc(so->mtu);
	bool eof = false;
	int64_t busy_deadline = -2, retry_at = 0, linger_at = -2;
	int backoff = 1, rc = VMCCTL_OK;

	if (!msg) {
		err_errno("pipe", ENOMEM);
		return VMCCTL_FAIL;
	}
	for (;;) {
		/* Write queued messages in order while the device takes them. */
		while (ps->queue.count && now_ms() >= retry_at) {
			const struct buf *m = &ps->queue.items[ps->queue.head];
			ssize_t n = dev_write(fd, m->data, m->len);

			if (n >= 0 && (size_t)n == m->len) {
				queue_pop(&ps->queue);
				busy_deadline = -2;
				backoff = 1;
				continue;
			}
			if (n >= 0) {
				err_msg("write: short write (%zd of %zu bytes)", n, m->len);
				rc = VMCCTL_FAIL;
				goto out;
			}
			if (errno == EINTR)
				continue;
			if (errno != EBUSY) {
				write_error(errno);
				rc = VMCCTL_FAIL;
				goto out;
			}
			if (busy_deadline == -2)
				busy_deadline = deadline_after(so->timeout_ms);
			if (deadline_passed(busy_deadline)) {
				char what[128];

				snprintf(what, sizeof(what),
					 "write: device still busy after %d ms (session not open?)",
					 so->timeout_ms);
				err_errno(what, EBUSY);
				rc = VMCCTL_TIMEOUT;
				goto out;
			}
			retry_at = now_ms() + backoff;
			backoff = backoff * 2 > MAX_BACKOFF_MS ? MAX_BACKOFF_MS : backoff * 2;
		}
		if (eof && ps->queue.count == 0) {
			if (linger_at == -2)
				linger_at = now_ms() + linger_ms;
			if (now_ms() >= linger_at)
				break;
		}

		struct pollfd pfd[2] = {
			{.fd = fd, .events = POLLIN},
			{.fd = (eof || ps->queue.count >= PIPE_MAX_QUEUED) ? -1 : STDIN_FILENO,
			 .events = POLLIN},
		};
		int wait = -1;

		if (ps->queue.count)
			wait = min_wait(wait, deadline_left(retry_at));
		if (linger_at >= 0)
			wait = min_wait(wait, deadline_left(linger_at));

		int n = poll(pfd, 2, wait);

		if (n < 0) {
			if (errno == EINTR)
				continue;
			err_errno("poll", errno);
			rc = VMCCTL_FAIL;
			goto out;
		}
		if (pfd[0].revents & POLLIN) {
			for (;;) {
				size_t len;
				int r = read_message(fd, msg, so->mtu, &len);

				if (r < 0) {
					rc = -r;
					goto out;
				}
				if (r == 0)
					break;
				rc = output_message(msg, len, so->fmt, true);
				if (rc)
					goto out;
				if (linger_at >= 0)
					linger_at = now_ms() + linger_ms;
			}
		} else if (pfd[0].revents & (POLLHUP | POLLERR)) {
			session_reset();
			rc = VMCCTL_FAIL;
			goto out;
		} else if (pfd[0].revents & POLLNVAL) {
			err_errno("poll", EBADF);
			rc = VMCCTL_FAIL;
			goto out;
		}
		if (pfd[1].revents & (POLLIN | POLLHUP | POLLERR)) {
			unsigned char chunk[4096];
			ssize_t r = read(STDIN_FILENO, chunk, sizeof(chunk));

			if (r < 0 && errno != EINTR && errno != EAGAIN) {
				err_errno("read standard input", errno);
				rc = VMCCTL_FAIL;
				goto out;
			}
			if (r == 0) {
				eof = true;
				rc = pipe_input_end(ps);
			} else if (r > 0) {
				rc = pipe_input(ps, chunk, (size_t)r);
			}
			if (rc)
				goto out;
		} else if (pfd[1].revents & POLLNVAL) {
			err_errno("poll standard input", EBADF);
			rc = VMCCTL_FAIL;
			goto out;
		}
	}
out:
	free(msg);
	return rc;
}

int cmd_pipe(int argc, char **argv, const char *device)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},
		{"hmc-id", required_argument, NULL, 'i'},
		{"hmc-id-hex", required_argument, NULL, OPT_HEX_ID},
		{"hex", no_argument, NULL, 'x'},
		{"text", no_argument, NULL, OPT_TEXT},
		{"raw", no_argument, NULL, OPT_RAW},
		{"format", required_argument, NULL, OPT_FORMAT},
		{"json", no_argument, NULL, OPT_JSON},
		{"linger", required_argument, NULL, OPT_LINGER},
		{"timeout", required_argument, NULL, 'T'},
		{"mtu", required_argument, NULL, 'u'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	struct session_opts so = {.device = device,
				  .timeout_ms = VMCCTL_DEFAULT_TIMEOUT_MS,
				  .mtu = VMCCTL_DEFAULT_MTU};
	int linger_ms = 500;
	int c, fd, rc;

	while ((c = getopt_long(argc, argv, ":d:i:xT:u:hV", opts, NULL)) != -1) {
		int r = parse_session_common("pipe", c, &so);

		if (r > 0)
			return r;
		if (r == 0)
			continue;
		switch (c) {
		case OPT_LINGER: {
			unsigned long v;

			if (parse_ulong(optarg, 0, INT32_MAX, &v) < 0)
				return usage_error("pipe", "invalid --linger value '%s'", optarg);
			linger_ms = (int)v;
			break;
		}
		case 'h':
			pipe_help();
			return VMCCTL_OK;
		case 'V':
			return print_version();
		default:
			return option_error("pipe", c, argv);
		}
	}
	if (optind < argc)
		return usage_error("pipe", "unexpected argument '%s'", argv[optind]);
	if (!so.have_id)
		return usage_error("pipe", "an HMC id is required (--hmc-id or --hmc-id-hex)");
	so.fmt = resolve_format(so.fmt);

	rc = open_session(&so, &fd);
	if (rc)
		return rc;

	struct pipe_state ps = {.so = &so};

	rc = pipe_loop(fd, &ps, linger_ms);
	if (rc == VMCCTL_OK && ps.input_error)
		rc = VMCCTL_FAIL;
	queue_free(&ps.queue);
	buf_free(&ps.line);
	return close_device(fd, rc);
}
