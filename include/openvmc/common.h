/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * openvmc: shared definitions of the library (error space, logging hook).
 *
 * Error convention: every function returns 0 (or a count) on success and a
 * negative code on failure. Codes above OVMC_ERR_BASE are negative errno
 * values; codes at or below it are library codes listed here. Only the
 * device front-end turns them into positive errno values.
 *
 * These headers need C11 (anonymous unions) or C++; <openvmc/ibmvmc.h>
 * alone also works in C99. The docs/ files they cite are in the source
 * tree and installed in share/doc/openvmc.
 */
#ifndef OPENVMC_COMMON_H
#define OPENVMC_COMMON_H

#if !defined(__cplusplus) && (!defined(__STDC_VERSION__) || __STDC_VERSION__ < 201112L)
#error "the openvmc headers need C11 or later (-std=c11)"
#endif

#include <stdarg.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(OVMC_BUILDING_LIBRARY)
#define OVMC_API __attribute__((visibility("default")))
#else
#define OVMC_API
#endif

#define OVMC_VERSION_STRING "0.1.0"

enum ovmc_error {
	OVMC_ERR_BASE = -1000,
	/* Fewer bytes than the entry needs. */
	OVMC_ERR_TRUNCATED = -1001,
	/* CRQ header byte is not 0x80, 0xC0 or 0xFF. */
	OVMC_ERR_BAD_HEADER = -1002,
	/* Header byte is 0x00: the slot holds no entry. */
	OVMC_ERR_EMPTY = -1003,
	/* Format/type byte unknown for this header. */
	OVMC_ERR_BAD_TYPE = -1004,
	/* A reserved byte is not zero. */
	OVMC_ERR_RESERVED = -1005,
	/* A field holds a value outside its defined range. */
	OVMC_ERR_RANGE = -1006,
	/* A PAPR hypervisor call failed; the H_* code was logged or returned
	 * separately. */
	OVMC_ERR_HCALL = -1007,
	/* The partner violated the VMC protocol. */
	OVMC_ERR_PROTOCOL = -1008,
	/* Capabilities of the two sides cannot be reconciled. */
	OVMC_ERR_VERSION = -1009,
};

/* Human-readable name of a library code or negative errno. Never NULL. */
OVMC_API const char *ovmc_strerror(int err);

enum ovmc_log_level {
	OVMC_LOG_ERROR = 0,
	OVMC_LOG_WARN = 1,
	OVMC_LOG_INFO = 2,
	OVMC_LOG_DEBUG = 3,
	OVMC_LOG_TRACE = 4,
};

/*
 * Log sink used by the cores. The cores never write anywhere themselves;
 * a NULL sink discards. May be called from any core entry point.
 */
typedef void (*ovmc_log_fn)(void *user, enum ovmc_log_level level, const char *fmt, va_list ap);

/* Name of a level ("error", "warn", ...); NULL for an unknown level. */
OVMC_API const char *ovmc_log_level_name(enum ovmc_log_level level);
/* Parse a level name or digit; returns 0 and sets *out, or -EINVAL. */
OVMC_API int ovmc_log_level_parse(const char *s, enum ovmc_log_level *out);

#define OVMC_TIME_NEVER UINT64_MAX

#ifdef __cplusplus
}
#endif
#endif
