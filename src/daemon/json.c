// SPDX-License-Identifier: GPL-2.0-or-later
#include "json.h"

#include <string.h>

void json_start(struct json *j, FILE *out)
{
	memset(j, 0, sizeof(*j));
	j->out = out;
}

/* The separator and the key of a new value. */
static void member(struct json *j, const char *key)
{
	if (j->more[j->depth])
		putc(',', j->out);
	j->more[j->depth] = true;
	if (key)
		fprintf(j->out, "\"%s\":", key);
}

static void open_value(struct json *j, const char *key, char open, char close)
{
	if (j->depth == JSON_MAX_DEPTH)
		return;
	member(j, key);
	putc(open, j->out);
	j->depth++;
	j->more[j->depth] = false;
	j->closer[j->depth] = close;
}

void json_object(struct json *j, const char *key)
{
	open_value(j, key, '{', '}');
}

void json_array(struct json *j, const char *key)
{
	open_value(j, key, '[', ']');
}

void json_end(struct json *j)
{
	if (j->depth == 0)
		return;
	putc(j->closer[j->depth], j->out);
	j->depth--;
}

void json_uint(struct json *j, const char *key, unsigned long long v)
{
	member(j, key);
	fprintf(j->out, "%llu", v);
}

void json_int(struct json *j, const char *key, long long v)
{
	member(j, key);
	fprintf(j->out, "%lld", v);
}

void json_bool(struct json *j, const char *key, bool v)
{
	member(j, key);
	fputs(v ? "true" : "false", j->out);
}

void json_double(struct json *j, const char *key, double v, int decimals)
{
	member(j, key);
	fprintf(j->out, "%.*f", decimals, v);
}

void json_null(struct json *j, const char *key)
{
	member(j, key);
	fputs("null", j->out);
}

void json_stringn(struct json *j, const char *key, const char *s, size_t n)
{
	member(j, key);
	putc('"', j->out);
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c == '"' || c == '\\')
			fprintf(j->out, "\\%c", c);
		else if (c == '\n')
			fputs("\\n", j->out);
		else if (c == '\t')
			fputs("\\t", j->out);
		else if (c < 0x20 || c == 0x7f)
			fprintf(j->out, "\\u%04x", c);
		else
			putc(c, j->out);
	}
	putc('"', j->out);
}

void json_string(struct json *j, const char *key, const char *s)
{
	if (s)
		json_stringn(j, key, s, strlen(s));
	else
		json_null(j, key);
}

void json_hex(struct json *j, const char *key, const uint8_t *p, size_t n)
{
	member(j, key);
	putc('"', j->out);
	for (size_t i = 0; i < n; i++)
		fprintf(j->out, "%02x", p[i]);
	putc('"', j->out);
}
