/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Where a host's trace events go: readable log lines (--trace), a pcapng
 * capture (--capture) and one listener (the control socket's "trace").
 * The hypervisor host and the driver host each own one.
 */
#ifndef OVMC_TRACEOUT_H
#define OVMC_TRACEOUT_H

#include <stdbool.h>

#include <openvmc/capture.h>
#include <openvmc/trace.h>

struct traceout {
	const char *component; /* names the host in error lines */
	bool log;
	const char *capture_path;
	struct ovmc_capture *capture;
	bool capture_failed; /* said once */
	ovmc_trace_fn listener;
	void *listener_arg;
};

/* Open the capture when `capture_path` is set. Returns 0 or -errno (logged). */
int traceout_open(struct traceout *t, const char *component, bool log,
		  const char *capture_path, enum ovmc_capture_side side);
/* Does any output want events? */
bool traceout_active(const struct traceout *t);
void traceout_event(struct traceout *t, const struct ovmc_trace_event *ev);
/* Close the capture (an incomplete one is logged). */
void traceout_close(struct traceout *t);

#endif
