// SPDX-License-Identifier: GPL-2.0-or-later
/* The hypervisor host: machine, cores and backend in the event loop (hvhost.h). */
#include "hvhost.h"

#include "json.h"

#include "log.h"
#include "traceout.h"

#include <openvmc/backend.h>
#include <openvmc/platform.h>
#include <openvmc/wire.h>

#include <errno.h>
#include <stdlib.h>

#define COMPONENT "hv"

/* The core serving one VMC. */
struct core {
	struct ovmc_vmc *vmc;
	struct ovmc_hv *hv;
	unsigned partition;
	/* A guest's device registered its CRQ: INIT, unless the channel is
	 * past it by the next idle pass. */
	bool want_init;
	struct core *next;
};

struct hvhost {
	struct ovmc_loop *loop;
	struct hvhost_config cfg;
	struct ovmc_machine *m;
	struct ovmc_backend be;
	bool have_backend;
	int backend_fd;
	struct core *cores; /* in creation order: the first is "the" VMC */
	/* Entries wait in a hypervisor end's queue: the idle hook takes them
	 * in the same pass of the loop (ovmc_loop_kick), even when they were
	 * sent from another idle hook. */
	bool pending;
	struct traceout out;
	struct hvhost_status_hook status_hook;
};

static void __attribute__((format(printf, 3, 0)))
hv_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	ovmc_log_sink(user, level, fmt, ap);
}

/* ---- machine hooks ---- */

static void vmc_created(void *arg, struct ovmc_vmc *vmc)
{
	struct hvhost *h = arg;
	struct core *c = calloc(1, sizeof(*c)), **tail;
	int rc;

	if (!c) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "out of memory: a VMC stays unserved");
		return;
	}
	rc = ovmc_hv_attach(vmc, &h->cfg.hv, hv_log, (void *)COMPONENT, ovmc_now_ns(), &c->hv);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot serve the VMC of partition %u: %s",
			 ovmc_part_id(ovmc_vmc_part(vmc)), ovmc_strerror(rc));
		free(c);
		return;
	}
	ovmc_hv_set_log(c->hv, hv_log, (void *)COMPONENT, ovmc_log_get_level());
	if (h->have_backend)
		ovmc_hv_set_backend(c->hv, h->be.ops, h->be.arg);
	c->vmc = vmc;
	c->partition = ovmc_part_id(ovmc_vmc_part(vmc));
	for (tail = &h->cores; *tail; tail = &(*tail)->next)
		;
	*tail = c;
	ovmc_log(OVMC_LOG_INFO, COMPONENT, "serving the VMC of partition %u", c->partition);
}

static void vmc_pending(void *arg, struct ovmc_vmc *vmc)
{
	struct hvhost *h = arg;

	(void)vmc;
	h->pending = true;
	ovmc_loop_kick(h->loop);
}

/*
 * A guest's kernel driver keeps its CRQ through a link failure and waits
 * for the partner's INIT; the INIT the core sent when it started met no
 * CRQ. Sent from the idle hook: the guest link is inside a message here.
 */
static void vmc_partner_registered(void *arg, struct ovmc_vmc *vmc)
{
	struct hvhost *h = arg;

	for (struct core *c = h->cores; c; c = c->next)
		if (c->vmc == vmc)
			c->want_init = true;
	vmc_pending(arg, vmc);
}

static void vmc_destroyed(void *arg, struct ovmc_vmc *vmc)
{
	struct hvhost *h = arg;

	for (struct core **pc = &h->cores; *pc; pc = &(*pc)->next) {
		struct core *c = *pc;

		if (c->vmc != vmc)
			continue;
		*pc = c->next;
		ovmc_log(OVMC_LOG_INFO, COMPONENT, "the VMC of partition %u is gone", c->partition);
		ovmc_hv_free(c->hv);
		free(c);
		return;
	}
}

/* ---- trace: readable lines and a capture file ---- */

static void trace(void *arg, const struct ovmc_trace_event *ev)
{
	struct hvhost *h = arg;

	traceout_event(&h->out, ev);
}

void hvhost_set_tracer(struct hvhost *h, ovmc_trace_fn fn, void *arg)
{
	h->out.listener = fn;
	h->out.listener_arg = arg;
	/* Without any output the machine need not report at all. */
	ovmc_machine_set_trace(h->m, traceout_active(&h->out) ? trace : NULL, h);
}

/* ---- loop ---- */

static void on_backend(void *arg, int fd, uint32_t events)
{
	struct hvhost *h = arg;

	(void)fd;
	(void)events;
	h->be.dispatch(h->be.arg, ovmc_now_ns());
}

static uint64_t on_idle(void *arg, uint64_t now)
{
	struct hvhost *h = arg;
	uint64_t next = OVMC_TIME_NEVER;

	while (h->pending) {
		h->pending = false;
		for (struct core *c = h->cores; c; c = c->next)
			ovmc_hv_poll(c->hv, now);
	}
	/* After the polls: an INIT the guest sent meanwhile makes ours moot. */
	for (struct core *c = h->cores; c; c = c->next) {
		if (!c->want_init)
			continue;
		c->want_init = false;
		if (ovmc_hv_state(c->hv) == OVMC_HV_WAIT_INIT) {
			ovmc_log(OVMC_LOG_INFO, COMPONENT,
				 "partition %u registered its CRQ: sending INIT", c->partition);
			ovmc_hv_start(c->hv, now);
		}
	}
	for (struct core *c = h->cores; c; c = c->next) {
		uint64_t d = ovmc_hv_next_deadline(c->hv);

		if (d <= now) {
			ovmc_hv_handle_timer(c->hv, now);
			d = ovmc_hv_next_deadline(c->hv);
		}
		if (d < next)
			next = d;
	}
	return next;
}

/* ---- life cycle ---- */

int hvhost_new(struct ovmc_loop *loop, const struct hvhost_config *cfg, struct hvhost **out)
{
	struct ovmc_machine_hooks hooks = {
		.vmc_created = vmc_created,
		.vmc_pending = vmc_pending,
		.vmc_destroyed = vmc_destroyed,
		.vmc_partner_registered = vmc_partner_registered,
	};
	struct ovmc_backend_env env = {.log = hv_log, .log_user = (void *)"backend"};
	struct hvhost *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->cfg = *cfg;
	h->cfg.backend = cfg->backend ? cfg->backend : "echo";
	h->backend_fd = -1;
	rc = ovmc_backend_new(h->cfg.backend, &env, &h->be);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "backend \"%s\": %s", h->cfg.backend,
			 rc == -EINVAL ? "unknown or malformed specification" : ovmc_strerror(rc));
		goto fail_logged;
	}
	h->have_backend = true;
	hooks.arg = h;
	rc = ovmc_machine_new(&hooks, &h->m);
	if (rc)
		goto fail;
	rc = traceout_open(&h->out, COMPONENT, cfg->trace, cfg->capture, OVMC_CAPTURE_HYPERVISOR);
	if (rc)
		goto fail_logged;
	if (traceout_active(&h->out))
		ovmc_machine_set_trace(h->m, trace, h);
	if (h->be.fd && h->be.dispatch && h->be.fd(h->be.arg) >= 0) {
		rc = ovmc_loop_add(loop, h->be.fd(h->be.arg), on_backend, h);
		if (rc)
			goto fail;
		h->backend_fd = h->be.fd(h->be.arg);
	}
	/* Last: an idle hook cannot be taken back on failure. */
	rc = ovmc_loop_add_idle(loop, on_idle, h);
	if (rc)
		goto fail;
	*out = h;
	return 0;
fail:
	ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot start the hypervisor: %s", ovmc_strerror(rc));
fail_logged:
	hvhost_free(h);
	return rc;
}

void hvhost_free(struct hvhost *h)
{
	if (!h)
		return;
	if (h->backend_fd >= 0)
		ovmc_loop_del(h->loop, h->backend_fd);
	/* Partitions still attached take their cores with them (vmc_destroyed). */
	ovmc_machine_free(h->m);
	if (h->have_backend)
		ovmc_backend_free(&h->be);
	traceout_close(&h->out);
	free(h);
}

struct ovmc_machine *hvhost_machine(struct hvhost *h)
{
	return h->m;
}

int hvhost_send(struct hvhost *h, unsigned partition, unsigned index, const void *data,
		size_t len)
{
	struct ovmc_hv_session *s = NULL;
	bool found = false;

	if (!h->cores)
		return -ENODEV;
	for (struct core *c = h->cores; c; c = c->next) {
		struct ovmc_hv_session *cs;

		if (partition && c->partition != partition)
			continue;
		found = true;
		cs = ovmc_hv_session_at(c->hv, index);
		if (cs && s)
			return -ENOTUNIQ;
		if (cs)
			s = cs;
	}
	if (!found)
		return -ENOENT;
	if (!s)
		return -ENOTCONN;
	return ovmc_hv_send(s, data, len);
}

void hvhost_restart(struct hvhost *h, uint8_t event)
{
	for (struct core *c = h->cores; c; c = c->next) {
		ovmc_log(OVMC_LOG_INFO, COMPONENT, "restarting the VMC of partition %u (%s)",
			 c->partition, ovmc_event_name(event));
		ovmc_hv_restart(c->hv, event, ovmc_now_ns());
	}
}

static void put_hex(FILE *out, const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", p[i]);
}

/* The id as text too when it is printable up to its NUL padding. */
static void put_id(FILE *out, const uint8_t *id)
{
	size_t n = OVMC_HMC_ID_LEN;

	put_hex(out, id, OVMC_HMC_ID_LEN);
	while (n && id[n - 1] == 0)
		n--;
	for (size_t i = 0; i < n; i++)
		if (id[i] < 0x20 || id[i] > 0x7e)
			return;
	fprintf(out, " \"%.*s\"", (int)n, (const char *)id);
}

void hvhost_sessions(struct hvhost *h, FILE *out)
{
	if (!h->cores)
		fputs("no VMC\n", out);
	for (struct core *c = h->cores; c; c = c->next) {
		struct ovmc_hv_pool_info pi;

		for (unsigned i = 0; ovmc_hv_pool_info(c->hv, i, &pi) == 0; i++) {
			struct ovmc_hv_session *s = ovmc_hv_session_at(c->hv, i);

			fprintf(out, "partition %u index %u: ", c->partition, i);
			if (!s) {
				fputs("closed\n", out);
				continue;
			}
			fprintf(out, "open session %u id ", ovmc_hv_session_number(s));
			put_id(out, ovmc_hv_session_hmc_id(s));
			fputc('\n', out);
		}
	}
}

void hvhost_set_status_hook(struct hvhost *h, const struct hvhost_status_hook *hook)
{
	h->status_hook = hook ? *hook : (struct hvhost_status_hook){0};
}

void hvhost_status(struct hvhost *h, FILE *out)
{
	struct ovmc_machine_stats ms;

	ovmc_machine_stats(h->m, &ms);
	fprintf(out,
		"machine: hcalls %llu hcall-errors %llu entries-to-hv %llu entries-to-partition "
		"%llu dropped-full %llu rdma %llu rdma-bytes %llu rdma-rejected %llu\n",
		(unsigned long long)ms.hcalls, (unsigned long long)ms.hcall_errors,
		(unsigned long long)ms.entries_to_hv, (unsigned long long)ms.entries_to_partition,
		(unsigned long long)ms.dropped_full, (unsigned long long)ms.rdma_ops,
		(unsigned long long)ms.rdma_bytes, (unsigned long long)ms.rdma_rejected);
	fprintf(out, "backend: %s\n", h->cfg.backend);
	for (struct core *c = h->cores; c; c = c->next) {
		enum ovmc_hv_state st = ovmc_hv_state(c->hv);
		struct ovmc_hv_negotiated neg;
		struct ovmc_hv_pool_info pi;
		struct ovmc_hv_stats hs;

		fprintf(out, "hv: partition %u state %s\n", c->partition, ovmc_hv_state_name(st));
		ovmc_hv_negotiated(c->hv, &neg);
		if (st == OVMC_HV_READY)
			fprintf(out,
				"  negotiated: hmcs %u pool %u mtu %u partner-crq %u "
				"partner-version 0x%04x\n",
				neg.max_hmcs, neg.pool_size, neg.mtu, neg.partner_crq_size,
				neg.partner_version);
		for (unsigned i = 0; ovmc_hv_pool_info(c->hv, i, &pi) == 0; i++) {
			struct ovmc_hv_session *s = ovmc_hv_session_at(c->hv, i);

			fprintf(out, "  index %u: ", i);
			if (s) {
				fprintf(out, "session %u id ", ovmc_hv_session_number(s));
				put_id(out, ovmc_hv_session_hmc_id(s));
			} else {
				fputs("closed", out);
			}
			fprintf(out,
				"; buffers partition %u hv-free %u pending %u absent %u "
				"backlog %u\n",
				pi.partition_owned, pi.hv_free, pi.pending, pi.absent, pi.backlog);
		}
		ovmc_hv_stats(c->hv, &hs);
		fprintf(out,
			"  stats: entries-in %llu entries-out %llu messages-in %llu "
			"messages-out %llu bytes-in %llu bytes-out %llu sessions-opened %llu "
			"sessions-closed %llu resets %llu buffers-reclaimed %llu\n",
			(unsigned long long)hs.entries_in, (unsigned long long)hs.entries_out,
			(unsigned long long)hs.messages_in, (unsigned long long)hs.messages_out,
			(unsigned long long)hs.bytes_in, (unsigned long long)hs.bytes_out,
			(unsigned long long)hs.sessions_opened,
			(unsigned long long)hs.sessions_closed, (unsigned long long)hs.resets,
			(unsigned long long)hs.buffers_reclaimed);
		fprintf(out,
			"  errors: protocol %llu (decode %llu state %llu direction %llu session "
			"%llu buffer %llu length %llu flood %llu) reserved-pad %llu "
			"send-deferred %llu send-queue-peak %llu send-lost %llu\n",
			(unsigned long long)hs.protocol_errors, (unsigned long long)hs.err_decode,
			(unsigned long long)hs.err_state, (unsigned long long)hs.err_direction,
			(unsigned long long)hs.err_session, (unsigned long long)hs.err_buffer,
			(unsigned long long)hs.err_length, (unsigned long long)hs.err_flood,
			(unsigned long long)hs.reserved_pad, (unsigned long long)hs.send_deferred,
			(unsigned long long)hs.send_queue_peak, (unsigned long long)hs.send_lost);
	}
	if (h->status_hook.text)
		h->status_hook.text(h->status_hook.arg, out);
}

void hvhost_status_json(struct hvhost *h, struct json *j)
{
	struct ovmc_machine_stats ms;

	ovmc_machine_stats(h->m, &ms);
	json_object(j, "hypervisor");
	json_object(j, "machine");
	json_uint(j, "hcalls", ms.hcalls);
	json_uint(j, "hcall_errors", ms.hcall_errors);
	json_uint(j, "entries_to_hv", ms.entries_to_hv);
	json_uint(j, "entries_to_partition", ms.entries_to_partition);
	json_uint(j, "dropped_full", ms.dropped_full);
	json_uint(j, "rdma", ms.rdma_ops);
	json_uint(j, "rdma_bytes", ms.rdma_bytes);
	json_uint(j, "rdma_rejected", ms.rdma_rejected);
	json_end(j);
	json_string(j, "backend", h->cfg.backend);
	json_array(j, "partitions");
	for (struct core *c = h->cores; c; c = c->next) {
		enum ovmc_hv_state st = ovmc_hv_state(c->hv);
		struct ovmc_hv_negotiated neg;
		struct ovmc_hv_pool_info pi;
		struct ovmc_hv_stats hs;

		json_object(j, NULL);
		json_uint(j, "partition", c->partition);
		json_string(j, "state", ovmc_hv_state_name(st));
		ovmc_hv_negotiated(c->hv, &neg);
		if (st == OVMC_HV_READY) {
			json_object(j, "negotiated");
			json_uint(j, "hmcs", neg.max_hmcs);
			json_uint(j, "pool", neg.pool_size);
			json_uint(j, "mtu", neg.mtu);
			json_uint(j, "partner_crq", neg.partner_crq_size);
			json_uint(j, "partner_version", neg.partner_version);
			json_end(j);
		}
		json_array(j, "indexes");
		for (unsigned i = 0; ovmc_hv_pool_info(c->hv, i, &pi) == 0; i++) {
			struct ovmc_hv_session *s = ovmc_hv_session_at(c->hv, i);

			json_object(j, NULL);
			json_uint(j, "index", i);
			if (s) {
				json_uint(j, "session", ovmc_hv_session_number(s));
				json_hex(j, "hmc_id", ovmc_hv_session_hmc_id(s), OVMC_HMC_ID_LEN);
			} else {
				json_null(j, "session");
				json_null(j, "hmc_id");
			}
			json_object(j, "buffers");
			json_uint(j, "partition", pi.partition_owned);
			json_uint(j, "hv_free", pi.hv_free);
			json_uint(j, "pending", pi.pending);
			json_uint(j, "absent", pi.absent);
			json_uint(j, "backlog", pi.backlog);
			json_end(j);
			json_end(j);
		}
		json_end(j);
		ovmc_hv_stats(c->hv, &hs);
		json_object(j, "stats");
		json_uint(j, "entries_in", hs.entries_in);
		json_uint(j, "entries_out", hs.entries_out);
		json_uint(j, "messages_in", hs.messages_in);
		json_uint(j, "messages_out", hs.messages_out);
		json_uint(j, "bytes_in", hs.bytes_in);
		json_uint(j, "bytes_out", hs.bytes_out);
		json_uint(j, "sessions_opened", hs.sessions_opened);
		json_uint(j, "sessions_closed", hs.sessions_closed);
		json_uint(j, "resets", hs.resets);
		json_uint(j, "buffers_reclaimed", hs.buffers_reclaimed);
		json_end(j);
		json_object(j, "errors");
		json_uint(j, "protocol", hs.protocol_errors);
		json_uint(j, "decode", hs.err_decode);
		json_uint(j, "state", hs.err_state);
		json_uint(j, "direction", hs.err_direction);
		json_uint(j, "session", hs.err_session);
		json_uint(j, "buffer", hs.err_buffer);
		json_uint(j, "length", hs.err_length);
		json_uint(j, "flood", hs.err_flood);
		json_uint(j, "reserved_pad", hs.reserved_pad);
		json_uint(j, "send_deferred", hs.send_deferred);
		json_uint(j, "send_queue_peak", hs.send_queue_peak);
		json_uint(j, "send_lost", hs.send_lost);
		json_end(j);
		json_end(j);
	}
	json_end(j);
	if (h->status_hook.json)
		h->status_hook.json(h->status_hook.arg, j);
	json_end(j);
}
