/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A JSON writer onto a stdio stream, for the status documents of the
 * daemons and vmcctl (docs/vmcctl-json.md). It writes as it is called, with
 * no tree in memory: the caller opens, fills and closes objects and arrays
 * in order. A `key` names an object's member; it is NULL for the top value
 * and for an array's elements. Keys are the caller's literals, written as
 * they are. Write errors stay in the stream (ferror).
 */
#ifndef OVMC_JSON_H
#define OVMC_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define JSON_MAX_DEPTH 8

struct json {
	FILE *out;
	unsigned depth;
	bool more[JSON_MAX_DEPTH + 1]; /* a member was written at this depth */
	char closer[JSON_MAX_DEPTH + 1];
};

/* Start a document on out; nothing is written yet. */
void json_start(struct json *j, FILE *out);
/* Open an object; deeper than JSON_MAX_DEPTH is a bug of the caller (ignored). */
void json_object(struct json *j, const char *key);
void json_array(struct json *j, const char *key);
/* Close the innermost object or array. */
void json_end(struct json *j);
void json_uint(struct json *j, const char *key, unsigned long long v);
void json_int(struct json *j, const char *key, long long v);
void json_bool(struct json *j, const char *key, bool v);
void json_null(struct json *j, const char *key);
/* A finite number, with up to `decimals` digits after the point. */
void json_double(struct json *j, const char *key, double v, int decimals);
/* A string (NULL: null); control characters, '"' and '\' escaped, other bytes as they are. */
void json_string(struct json *j, const char *key, const char *s);
void json_stringn(struct json *j, const char *key, const char *s, size_t n);
/* Bytes as a string of lowercase hex digits. */
void json_hex(struct json *j, const char *key, const uint8_t *p, size_t n);

#endif
