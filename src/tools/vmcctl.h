// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl: shared declarations of the command-line client.
 *
 * Conventions: every command returns an exit code (VMCCTL_*). Errors are
 * printed where they are detected, as "vmcctl: <what>: <reason>", so a
 * function that returns a failure exit code has already reported it.
 */
#ifndef OVMC_VMCCTL_H
#define OVMC_VMCCTL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

enum vmcctl_exit {
	VMCCTL_OK = 0,
	VMCCTL_FAIL = 1,
	VMCCTL_USAGE = 2,
	VMCCTL_TIMEOUT = 3,
};

#define VMCCTL_DEFAULT_DEVICE "/dev/ibmvmc"
#define VMCCTL_DEFAULT_TIMEOUT_MS 5000
#define VMCCTL_DEFAULT_MTU 4096
/* Upper bound accepted for --mtu; far above what any driver negotiates. */
#define VMCCTL_MAX_MTU (1u << 20)
/* Upper bound of a reply read from a control socket. */
#define VMCCTL_MAX_REPLY (16u << 20)

/* A growable byte buffer; zero-initialise before use, release with buf_free. */
struct buf {
	unsigned char *data;
	size_t len, cap;
};

/* Append n bytes; returns 0 or -ENOMEM (nothing appended). */
int buf_append(struct buf *b, const void *p, size_t n);
void buf_free(struct buf *b);

/* "vmcctl: <what>: strerror(err)" on stderr. */
void err_errno(const char *what, int err);
/* "vmcctl: <formatted message>" on stderr. */
void err_msg(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Report a usage error of command cmd (NULL: the program) and return
 * VMCCTL_USAGE. */
int usage_error(const char *cmd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * Decode hex text (pairs of hex digits; ASCII whitespace is allowed between
 * pairs, not inside one) and append the bytes to out. Returns 0, or -EINVAL
 * with a description in err (odd digit count, bad character and its
 * offset), or -ENOMEM.
 */
int hex_decode(const char *s, size_t len, struct buf *out, char *err, size_t errlen);
/* Print len bytes as lowercase hex followed by a newline. Returns 0 or -1. */
int hex_print(FILE *f, const unsigned char *p, size_t len);
/* Hex-encode into a new NUL-terminated string (malloc); NULL on ENOMEM. */
char *hex_encode(const unsigned char *p, size_t len);

/* How received messages are printed (--format). */
enum out_format {
	OUT_AUTO,     /* OUT_READABLE on a terminal, else OUT_RAW */
	OUT_READABLE, /* OUT_TEXT for a printable message, else OUT_DUMP */
	OUT_TEXT,     /* one line each, bytes that are not printable escaped */
	OUT_HEX,      /* one line of hex digits each */
	OUT_DUMP,     /* hex dump: offset, 16 bytes, their characters */
	OUT_RAW,      /* the bytes as they are */
	OUT_JSON,     /* one JSON object each, a line (docs/vmcctl-json.md) */
};
/* "auto", "text", "hex", "dump", "raw" or "json"; returns 0 or -1. */
int parse_format(const char *s, enum out_format *out);
/* OUT_AUTO made concrete for standard output; others unchanged. */
enum out_format resolve_format(enum out_format f);
/*
 * Printable text: printable ASCII, tabs and valid UTF-8 of printable
 * characters, with at most one line break (LF or CRLF), at the end.
 */
bool is_text(const unsigned char *p, size_t len);
/* p as one line: backslash, control bytes and invalid UTF-8 escaped (C style). */
int text_print(FILE *f, const unsigned char *p, size_t len);
/* p as hex dump lines. Both return 0 or -1 (a write failed). */
int dump_print(FILE *f, const unsigned char *p, size_t len);

/* Report a getopt error ('?' or ':' as returned in c) and return
 * VMCCTL_USAGE. */
int option_error(const char *cmd, int c, char **argv);

/* Parse an unsigned decimal number in [min, max]; returns 0 or -1. */
int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out);
/* Parse a --timeout style value: milliseconds, 0 = wait forever. */
int parse_timeout(const char *s, int *out);

/* Monotonic clock in milliseconds. */
int64_t now_ms(void);
/*
 * Deadline helpers. A deadline of -1 means "never". timeout_ms 0 means
 * "wait forever" (see parse_timeout).
 */
int64_t deadline_after(int timeout_ms);
/* Milliseconds left until the deadline for poll(): -1 forever, 0 expired. */
int deadline_left(int64_t deadline);
bool deadline_passed(int64_t deadline);
/* Sleep ms milliseconds (restarted on EINTR). */
void sleep_ms(int ms);

/* Read a whole fd (until EOF) and append to out. Returns 0 or -errno. */
int read_all_fd(int fd, struct buf *out);
/* Flush stdout; on failure report and return VMCCTL_FAIL. */
int finish_stdout(int rc);

/* Device commands reach the driver through this session socket (--socket). */
void dev_use_socket(const char *path);

/* Commands: argv[0] is the command name. */
int cmd_query(int argc, char **argv, const char *device);
int cmd_request_vmc(int argc, char **argv, const char *device);
int cmd_open(int argc, char **argv, const char *device);
int cmd_pipe(int argc, char **argv, const char *device);
int cmd_status(int argc, char **argv);
int cmd_hv(int argc, char **argv);
int cmd_ctl(int argc, char **argv);
int cmd_trace(int argc, char **argv);

/* Print the version line of the program to stdout; returns VMCCTL_OK. */
int print_version(void);

#endif
