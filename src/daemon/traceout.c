// SPDX-License-Identifier: GPL-2.0-or-later
#include "traceout.h"

#include "log.h"

int traceout_open(struct traceout *t, const char *component, bool log,
		  const char *capture_path, enum ovmc_capture_side side)
{
	int rc;

	*t = (struct traceout){.component = component, .log = log, .capture_path = capture_path};
	if (!capture_path)
		return 0;
	rc = ovmc_capture_open(capture_path, side, &t->capture);
	if (rc)
		ovmc_log(OVMC_LOG_ERROR, component, "capture %s: %s", capture_path,
			 ovmc_strerror(rc));
	return rc;
}

bool traceout_active(const struct traceout *t)
{
	return t->log || t->capture || t->listener;
}

void traceout_event(struct traceout *t, const struct ovmc_trace_event *ev)
{
	if (t->log)
		ovmc_log_trace_event(ev);
	if (t->capture && ovmc_capture_event(t->capture, ev) && !t->capture_failed) {
		t->capture_failed = true;
		ovmc_log(OVMC_LOG_ERROR, t->component, "capture %s: write failed; records are lost",
			 t->capture_path);
	}
	if (t->listener)
		t->listener(t->listener_arg, ev);
}

void traceout_close(struct traceout *t)
{
	if (t->capture && ovmc_capture_close(t->capture))
		ovmc_log(OVMC_LOG_ERROR, t->component, "capture %s: incomplete", t->capture_path);
	t->capture = NULL;
}
