// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl: helpers shared by the commands (errors, hex, numbers, clock, I/O).
 */
#include "vmcctl.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openvmc/common.h>

int buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return 0;
	if (n > SIZE_MAX - b->len)
		return -ENOMEM;
	if (b->len + n > b->cap) {
		size_t cap = b->cap ? b->cap : 256;

		while (cap < b->len + n) {
			if (cap > SIZE_MAX / 2) {
				cap = b->len + n;
				break;
			}
			cap *= 2;
		}
		unsigned char *d = realloc(b->data, cap);

		if (!d)
			return -ENOMEM;
		b->data = d;
		b->cap = cap;
	}
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return 0;
}

void buf_free(struct buf *b)
{
	free(b->data);
	b->data = NULL;
	b->len = b->cap = 0;
}

void err_errno(const char *what, int err)
{
	fprintf(stderr, "vmcctl: %s: %s\n", what, strerror(err));
}

void err_msg(const char *fmt, ...)
{
	va_list ap;

	fputs("vmcctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

int usage_error(const char *cmd, const char *fmt, ...)
{
	va_list ap;

	fputs("vmcctl: ", stderr);
	if (cmd)
		fprintf(stderr, "%s: ", cmd);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\nTry 'vmcctl%s%s --help'.\n", cmd ? " " : "", cmd ? cmd : "");
	return VMCCTL_USAGE;
}

int option_error(const char *cmd, int c, char **argv)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "?";

	if (c == ':')
		return usage_error(cmd, "option '%s' needs an argument", arg);
	if (optopt && strncmp(arg, "--", 2) != 0)
		return usage_error(cmd, "invalid option '-%c'", optopt);
	return usage_error(cmd, "invalid option '%s'", arg);
}

static int hex_digit(unsigned char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static bool is_space(unsigned char c)
{
	return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f';
}

int hex_decode(const char *s, size_t len, struct buf *out, char *err, size_t errlen)
{
	size_t i = 0, start = out->len;

	while (i < len) {
		unsigned char c = (unsigned char)s[i];

		if (is_space(c)) {
			i++;
			continue;
		}
		int hi = hex_digit(c);

		if (hi < 0)
			goto bad_char;
		if (i + 1 >= len || is_space((unsigned char)s[i + 1])) {
			snprintf(err, errlen,
				 "invalid hex: odd number of digits (lone digit at offset %zu)", i);
			goto fail;
		}
		i++;
		int lo = hex_digit((unsigned char)s[i]);

		if (lo < 0)
			goto bad_char;
		unsigned char byte = (unsigned char)(hi << 4 | lo);

		if (buf_append(out, &byte, 1) < 0) {
			out->len = start;
			return -ENOMEM;
		}
		i++;
	}
	return 0;

bad_char:
	if (s[i] >= 0x21 && s[i] < 0x7f)
		snprintf(err, errlen, "invalid hex: '%c' at offset %zu is not a hex digit", s[i],
			 i);
	else
		snprintf(err, errlen, "invalid hex: byte 0x%02x at offset %zu is not a hex digit",
			 (unsigned char)s[i], i);
fail:
	out->len = start;
	return -EINVAL;
}

static const char hex_chars[] = "0123456789abcdef";

int hex_print(FILE *f, const unsigned char *p, size_t len)
{
	char chunk[512];
	size_t n = 0;

	for (size_t i = 0; i < len; i++) {
		chunk[n++] = hex_chars[p[i] >> 4];
		chunk[n++] = hex_chars[p[i] & 15];
		if (n == sizeof(chunk)) {
			if (fwrite(chunk, 1, n, f) != n)
				return -1;
			n = 0;
		}
	}
	chunk[n++] = '\n';
	return fwrite(chunk, 1, n, f) == n ? 0 : -1;
}

char *hex_encode(const unsigned char *p, size_t len)
{
	if (len > (SIZE_MAX - 1) / 2)
		return NULL;
	char *s = malloc(2 * len + 1);

	if (!s)
		return NULL;
	for (size_t i = 0; i < len; i++) {
		s[2 * i] = hex_chars[p[i] >> 4];
		s[2 * i + 1] = hex_chars[p[i] & 15];
	}
	s[2 * len] = '\0';
	return s;
}

int parse_format(const char *s, enum out_format *out)
{
	static const char *const names[] = {
		[OUT_AUTO] = "auto", [OUT_TEXT] = "text", [OUT_HEX] = "hex",
		[OUT_DUMP] = "dump", [OUT_RAW] = "raw",	  [OUT_JSON] = "json",
	};

	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
		if (names[i] && strcmp(s, names[i]) == 0) {
			*out = (enum out_format)i;
			return 0;
		}
	}
	return -1;
}

enum out_format resolve_format(enum out_format f)
{
	if (f != OUT_AUTO)
		return f;
	return isatty(STDOUT_FILENO) ? OUT_READABLE : OUT_RAW;
}

/*
 * Length of the printable UTF-8 character of 2 to 4 bytes at p (at most n
 * bytes there), or 0: invalid, overlong, a surrogate, beyond U+10FFFF, or
 * a C1 control (U+0080..U+009F), which terminals act upon.
 */
static size_t utf8_char(const unsigned char *p, size_t n)
{
	unsigned char c = p[0];
	size_t len = c >= 0xc2 && c <= 0xdf   ? 2
		     : c >= 0xe0 && c <= 0xef ? 3
		     : c >= 0xf0 && c <= 0xf4 ? 4
					      : 0;
	unsigned char lo = 0x80, hi = 0xbf;

	if (!len || len > n)
		return 0;
	if (c == 0xc2)
		lo = 0xa0;
	else if (c == 0xe0)
		lo = 0xa0;
	else if (c == 0xed)
		hi = 0x9f;
	else if (c == 0xf0)
		lo = 0x90;
	else if (c == 0xf4)
		hi = 0x8f;
	if (p[1] < lo || p[1] > hi)
		return 0;
	for (size_t i = 2; i < len; i++)
		if (p[i] < 0x80 || p[i] > 0xbf)
			return 0;
	return len;
}

static bool printable_ascii(unsigned char c)
{
	return c >= 0x20 && c < 0x7f;
}

bool is_text(const unsigned char *p, size_t len)
{
	if (len && p[len - 1] == '\n')
		len -= len >= 2 && p[len - 2] == '\r' ? 2 : 1;
	for (size_t i = 0; i < len;) {
		size_t n = printable_ascii(p[i]) || p[i] == '\t' ? 1 : utf8_char(p + i, len - i);

		if (!n)
			return false;
		i += n;
	}
	return true;
}

int text_print(FILE *f, const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len;) {
		size_t n = utf8_char(p + i, len - i);
		int r;

		if (n) {
			r = fwrite(p + i, 1, n, f) == n ? 0 : -1;
			i += n;
		} else {
			unsigned char c = p[i++];

			if (c == '\\')
				r = fputs("\\\\", f);
			else if (printable_ascii(c) || c == '\t')
				r = putc(c, f);
			else if (c == '\n')
				r = fputs("\\n", f);
			else if (c == '\r')
				r = fputs("\\r", f);
			else
				r = fprintf(f, "\\x%02x", c);
		}
		if (r < 0)
			return -1;
	}
	return putc('\n', f) == EOF ? -1 : 0;
}

int dump_print(FILE *f, const unsigned char *p, size_t len)
{
	for (size_t off = 0; off < len || off == 0; off += 16) {
		char line[96];
		int n = snprintf(line, sizeof(line), "%08zx ", off);

		for (size_t i = 0; i < 16; i++) {
			if (i == 8)
				line[n++] = ' ';
			if (off + i < len)
				n += snprintf(line + n, sizeof(line) - (size_t)n, " %02x",
					      p[off + i]);
			else
				n += snprintf(line + n, sizeof(line) - (size_t)n, "   ");
		}
		n += snprintf(line + n, sizeof(line) - (size_t)n, "  |");
		for (size_t i = 0; i < 16 && off + i < len; i++)
			line[n++] = printable_ascii(p[off + i]) ? (char)p[off + i] : '.';
		line[n++] = '|';
		line[n++] = '\n';
		if (fwrite(line, 1, (size_t)n, f) != (size_t)n)
			return -1;
		if (len == 0)
			break;
	}
	return 0;
}

int parse_ulong(const char *s, unsigned long min, unsigned long max, unsigned long *out)
{
	char *end;
	unsigned long v;

	if (!s || *s < '0' || *s > '9')
		return -1;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || *end || v < min || v > max)
		return -1;
	*out = v;
	return 0;
}

int parse_timeout(const char *s, int *out)
{
	unsigned long v;

	if (parse_ulong(s, 0, INT_MAX, &v) < 0)
		return -1;
	*out = (int)v;
	return 0;
}

int64_t now_ms(void)
{
	struct timespec ts;

	/* CLOCK_MONOTONIC cannot fail on Linux with a valid pointer. */
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t deadline_after(int timeout_ms)
{
	return timeout_ms == 0 ? -1 : now_ms() + timeout_ms;
}

int deadline_left(int64_t deadline)
{
	if (deadline < 0)
		return -1;
	int64_t left = deadline - now_ms();

	if (left <= 0)
		return 0;
	return left > INT_MAX ? INT_MAX : (int)left;
}

bool deadline_passed(int64_t deadline)
{
	return deadline >= 0 && now_ms() >= deadline;
}

void sleep_ms(int ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000};

	while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
		;
}

int read_all_fd(int fd, struct buf *out)
{
	unsigned char chunk[8192];

	for (;;) {
		ssize_t n = read(fd, chunk, sizeof(chunk));

		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		if (n == 0)
			return 0;
		if (buf_append(out, chunk, (size_t)n) < 0)
			return -ENOMEM;
	}
}

int finish_stdout(int rc)
{
	if (fflush(stdout) != 0 || ferror(stdout)) {
		err_errno("write to standard output", errno ? errno : EIO);
		return rc == VMCCTL_OK ? VMCCTL_FAIL : rc;
	}
	return rc;
}

int print_version(void)
{
	printf("vmcctl (openvmc) %s\n", OVMC_VERSION_STRING);
	return VMCCTL_OK;
}
