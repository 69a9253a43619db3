// SPDX-License-Identifier: GPL-2.0-or-later
/* The driver host: driver core + device front-end in the event loop (drvhost.h). */
#include "drvhost.h"

#include "json.h"

#include "log.h"
#include "traceout.h"

#include <errno.h>
#include <stdlib.h>

#define COMPONENT "driver"

struct drvhost {
	struct ovmc_loop *loop;
	struct ovmc_platform *plat;
	struct ovmc_drv *drv;
	struct ovmc_dev *dev;   /* NULL without a device file */
	struct ovmc_sock *sock; /* NULL without a session socket */
	int irq_fd; /* watched by the loop, -1 while the platform is lost */
	bool lost;
	bool (*kick)(void *arg); /* drvhost_config's */
	void *kick_arg;
	char lost_why[128];
	struct traceout out;
};

static void __attribute__((format(printf, 3, 0)))
drv_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	(void)user;
	ovmc_log_sink((void *)COMPONENT, level, fmt, ap);
}

static void drv_file_event(void *user, struct ovmc_drv_file *f, unsigned events)
{
	struct drvhost *h = user;

	if (h->sock && ovmc_sock_file_event(h->sock, f, events))
		return;
	if (h->dev)
		ovmc_dev_file_event(h->dev, f, events);
}

/* After a driver call of the host's own: answer what became ready. */
static void flush(struct drvhost *h)
{
	if (h->dev)
		ovmc_dev_flush(h->dev);
	if (h->sock)
		ovmc_sock_flush(h->sock);
}

static void drv_trace(void *user, const struct ovmc_trace_event *ev)
{
	struct drvhost *h = user;

	traceout_event(&h->out, ev);
}

static void on_irq(void *arg, int fd, uint32_t events)
{
	struct drvhost *h = arg;

	(void)fd;
	(void)events;
	ovmc_platform_irq_fired(h->plat);
	ovmc_drv_handle_interrupt(h->drv, ovmc_now_ns());
	flush(h);
}

/*
 * A reader would wait: what the platform holds posted (a writer's
 * messages) may be what it waits for. Run it, and take what it brought.
 */
static bool read_would_wait(void *arg)
{
	struct drvhost *h = arg;

	if (h->lost || !h->kick(h->kick_arg))
		return false;
	if (ovmc_drv_crq_pending(h->drv))
		ovmc_drv_handle_interrupt(h->drv, ovmc_now_ns());
	return true;
}

static void on_dev(void *arg, ssize_t n)
{
	struct drvhost *h = arg;

	ovmc_dev_received(h->dev, n);
	if (h->sock)
		ovmc_sock_flush(h->sock);
	if (ovmc_dev_gone(h->dev)) {
		/* Unmounted from outside: nothing left to serve. */
		ovmc_loop_del_reader(h->loop);
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "device %s is gone; stopping",
			 ovmc_dev_path(h->dev));
		ovmc_loop_stop(h->loop);
	}
}

static uint64_t on_idle(void *arg, uint64_t now)
{
	struct drvhost *h = arg;
	uint64_t next;

	/* What the hypervisor delivered during this pass (the one in this
	 * process, or the other one while it answered our hcalls) is taken now
	 * and parked reads are answered at once: no second pass woken by the
	 * interrupt fd. */
	if (ovmc_drv_crq_pending(h->drv)) {
		ovmc_drv_handle_interrupt(h->drv, now);
		flush(h);
	}
	if (ovmc_drv_next_deadline(h->drv) <= now) {
		ovmc_drv_handle_timer(h->drv, now);
		flush(h);
	}
	/* The hcalls of this hook may have brought entries too (an interrupt
	 * that came with an hcall's reply has no descriptor to wake us). */
	if (ovmc_drv_crq_pending(h->drv))
		ovmc_loop_kick(h->loop);
	next = ovmc_drv_next_deadline(h->drv);
	if (h->sock) {
		uint64_t s = ovmc_sock_timer(h->sock, now);

		if (s < next)
			next = s;
	}
	return next;
}

static int watch_irq(struct drvhost *h)
{
	int fd = ovmc_platform_irq_fd(h->plat);
	int rc = ovmc_loop_add(h->loop, fd, on_irq, h);

	if (rc == 0)
		h->irq_fd = fd;
	return rc;
}

int drvhost_new(struct ovmc_loop *loop, struct ovmc_platform *plat,
		const struct drvhost_config *cfg, struct drvhost **out)
{
	struct ovmc_drv_callbacks cbs = {.file_event = drv_file_event, .log = drv_log};
	struct drvhost *h = calloc(1, sizeof(*h));
	int rc;

	if (!h)
		return -ENOMEM;
	h->loop = loop;
	h->plat = plat;
	h->irq_fd = -1;
	rc = traceout_open(&h->out, COMPONENT, cfg->trace, cfg->capture, OVMC_CAPTURE_PARTITION);
	if (rc)
		goto fail;
	/* Always: a tracer may come later (drvhost_set_tracer), and the
	 * driver takes its callbacks once; it calls this one only while
	 * something listens. */
	cbs.trace = drv_trace;
	rc = ovmc_drv_new(&cfg->drv, plat, &cbs, h, &h->drv);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot create the driver: %s",
			 ovmc_strerror(rc));
		goto fail;
	}
	ovmc_drv_set_log_level(h->drv, ovmc_log_get_level());
	ovmc_drv_set_tracing(h->drv, traceout_active(&h->out));
	/* Both log their own errors, with the path and the cause. */
	h->kick = cfg->kick;
	h->kick_arg = cfg->kick_arg;
	if (!cfg->no_device) {
		struct ovmc_dev_config dc = cfg->dev;

		if (h->kick) {
			dc.read_would_wait = read_would_wait;
			dc.read_would_wait_arg = h;
		}
		rc = ovmc_dev_new(&dc, h->drv, &h->dev);
		if (rc)
			goto fail;
	}
	if (cfg->sock.path) {
		struct ovmc_sock_config sc = cfg->sock;

		sc.kick = h->kick;
		sc.kick_arg = h->kick_arg;
		rc = ovmc_sock_new(loop, &sc, h->drv, &h->sock);
		if (rc)
			goto fail;
	}
	h->lost = cfg->detached;
	rc = h->lost ? 0 : watch_irq(h);
	if (!rc && h->dev) {
		size_t size;
		void *buf = ovmc_dev_buffer(h->dev, &size);

		rc = ovmc_loop_add_reader(loop, ovmc_dev_fd(h->dev), buf, size, on_dev, h);
		if (!rc)
			ovmc_log(OVMC_LOG_DEBUG, COMPONENT, "device requests through %s",
				 ovmc_loop_backend(loop));
	}
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "event loop: %s", ovmc_strerror(rc));
		goto fail;
	}
	rc = h->lost ? 0 : ovmc_drv_start(h->drv, ovmc_now_ns());
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "driver start failed: %s", ovmc_strerror(rc));
		goto fail;
	}
	/* Last: an idle hook cannot be taken back on failure. */
	rc = ovmc_loop_add_idle(loop, on_idle, h);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "event loop: %s", ovmc_strerror(rc));
		goto fail;
	}
	*out = h;
	return 0;
fail:
	drvhost_free(h);
	return rc;
}

void drvhost_free(struct drvhost *h)
{
	if (!h)
		return;
	if (h->dev) {
		ovmc_loop_del_reader(h->loop);
		ovmc_dev_free(h->dev);
	}
	ovmc_sock_free(h->sock);
	if (h->irq_fd >= 0)
		ovmc_loop_del(h->loop, h->irq_fd);
	ovmc_drv_free(h->drv);
	traceout_close(&h->out);
	free(h);
}

void drvhost_platform_lost(struct drvhost *h, const char *why)
{
	if (h->lost)
		return;
	h->lost = true;
	snprintf(h->lost_why, sizeof(h->lost_why), "%s", why ? why : "");
	if (h->irq_fd >= 0) {
		ovmc_loop_del(h->loop, h->irq_fd);
		h->irq_fd = -1;
	}
	ovmc_drv_platform_lost(h->drv, ovmc_now_ns());
	flush(h);
}

int drvhost_platform_back(struct drvhost *h, struct ovmc_platform *plat)
{
	int rc;

	if (!h->lost)
		return -EALREADY;
	if (plat != h->plat)
		return -EINVAL;
	rc = watch_irq(h);
	if (rc)
		return rc;
	h->lost = false;
	h->lost_why[0] = '\0';
	rc = ovmc_drv_start(h->drv, ovmc_now_ns());
	flush(h);
	return rc;
}

void drvhost_set_tracer(struct drvhost *h, ovmc_trace_fn fn, void *arg)
{
	h->out.listener = fn;
	h->out.listener_arg = arg;
	ovmc_drv_set_tracing(h->drv, traceout_active(&h->out));
}

static void put_id(FILE *out, const uint8_t *id, size_t n)
{
	for (size_t i = 0; i < n; i++)
		fprintf(out, "%02x", id[i]);
}

void drvhost_status(struct drvhost *h, FILE *out)
{
	struct ovmc_drv_negotiated neg;
	struct ovmc_drv_slot_info si;
	struct ovmc_drv_stats st;
	struct ovmc_query q;
	int state = ovmc_drv_state(h->drv);

	ovmc_drv_query(h->drv, &q);
	fprintf(out, "driver: state %s (%d)%s%s%s, drc-index 0x%08x\n",
		ovmc_drv_state_name(state), state, h->lost ? ", platform lost" : "",
		h->lost && h->lost_why[0] ? ": hypervisor " : "", h->lost ? h->lost_why : "",
		(unsigned)q.vmc_drc_index);
	ovmc_drv_negotiated(h->drv, &neg);
	if (state == OVMC_DRV_READY)
		fprintf(out, "  negotiated: hmcs %u pool %u mtu %u hv-crq %u hv-version 0x%04x\n",
			neg.max_hmcs, neg.pool_size, neg.mtu, neg.hv_crq_size, neg.hv_version);
	for (unsigned i = 0; ovmc_drv_slot_info(h->drv, i, &si) == 0; i++) {
		fprintf(out,
			"  slot %u: %s session %u file %s buffers %u free %u hv-owned %u queued %u",
			i, ovmc_slot_state_name(si.state), si.session, si.has_file ? "yes" : "no",
			si.buffers, si.free, si.hv_owned, si.queued);
		if (si.state != OVMC_SLOT_FREE) {
			fputs(" id ", out);
			put_id(out, si.hmc_id, sizeof(si.hmc_id));
		}
		fputc('\n', out);
	}
	ovmc_drv_stats(h->drv, &st);
	fprintf(out,
		"  stats: entries-in %llu entries-out %llu messages-in %llu messages-out %llu "
		"bytes-in %llu bytes-out %llu resets %llu\n",
		(unsigned long long)st.entries_in, (unsigned long long)st.entries_out,
		(unsigned long long)st.messages_in, (unsigned long long)st.messages_out,
		(unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out,
		(unsigned long long)st.resets);
	fprintf(out,
		"  errors: protocol %llu (decode %llu state %llu direction %llu session %llu "
		"buffer %llu length %llu flood %llu) truncated-reads %llu truncated-bytes %llu "
		"discarded %llu lost-rdma %llu send-deferred %llu send-queue-peak %llu "
		"send-failed %llu\n",
		(unsigned long long)st.protocol_errors, (unsigned long long)st.err_decode,
		(unsigned long long)st.err_state, (unsigned long long)st.err_direction,
		(unsigned long long)st.err_session, (unsigned long long)st.err_buffer,
		(unsigned long long)st.err_length, (unsigned long long)st.err_flood,
		(unsigned long long)st.truncated_reads, (unsigned long long)st.truncated_bytes,
		(unsigned long long)st.discarded_msgs, (unsigned long long)st.lost_rdma,
		(unsigned long long)st.send_deferred, (unsigned long long)st.send_queue_peak,
		(unsigned long long)st.send_failed);
	if (h->dev)
		ovmc_dev_status(h->dev, out);
	if (h->sock)
		ovmc_sock_status(h->sock, out);
}

void drvhost_status_json(struct drvhost *h, struct json *j)
{
	struct ovmc_drv_negotiated neg;
	struct ovmc_drv_slot_info si;
	struct ovmc_drv_stats st;
	struct ovmc_query q;
	int state = ovmc_drv_state(h->drv);

	ovmc_drv_query(h->drv, &q);
	json_object(j, "driver");
	json_string(j, "state", ovmc_drv_state_name(state));
	json_int(j, "state_code", state);
	json_bool(j, "platform_lost", h->lost);
	json_string(j, "lost_reason", h->lost && h->lost_why[0] ? h->lost_why : NULL);
	json_uint(j, "drc_index", (uint32_t)q.vmc_drc_index);
	ovmc_drv_negotiated(h->drv, &neg);
	if (state == OVMC_DRV_READY) {
		json_object(j, "negotiated");
		json_uint(j, "hmcs", neg.max_hmcs);
		json_uint(j, "pool", neg.pool_size);
		json_uint(j, "mtu", neg.mtu);
		json_uint(j, "hv_crq", neg.hv_crq_size);
		json_uint(j, "hv_version", neg.hv_version);
		json_end(j);
	}
	json_array(j, "slots");
	for (unsigned i = 0; ovmc_drv_slot_info(h->drv, i, &si) == 0; i++) {
		json_object(j, NULL);
		json_uint(j, "index", i);
		json_string(j, "state", ovmc_slot_state_name(si.state));
		json_uint(j, "session", si.session);
		json_bool(j, "file", si.has_file);
		json_uint(j, "buffers", si.buffers);
		json_uint(j, "free", si.free);
		json_uint(j, "hv_owned", si.hv_owned);
		json_uint(j, "queued", si.queued);
		if (si.state != OVMC_SLOT_FREE)
			json_hex(j, "hmc_id", si.hmc_id, sizeof(si.hmc_id));
		else
			json_null(j, "hmc_id");
		json_end(j);
	}
	json_end(j);
	ovmc_drv_stats(h->drv, &st);
	json_object(j, "stats");
	json_uint(j, "entries_in", st.entries_in);
	json_uint(j, "entries_out", st.entries_out);
	json_uint(j, "messages_in", st.messages_in);
	json_uint(j, "messages_out", st.messages_out);
	json_uint(j, "bytes_in", st.bytes_in);
	json_uint(j, "bytes_out", st.bytes_out);
	json_uint(j, "resets", st.resets);
	json_end(j);
	json_object(j, "errors");
	json_uint(j, "protocol", st.protocol_errors);
	json_uint(j, "decode", st.err_decode);
	json_uint(j, "state", st.err_state);
	json_uint(j, "direction", st.err_direction);
	json_uint(j, "session", st.err_session);
	json_uint(j, "buffer", st.err_buffer);
	json_uint(j, "length", st.err_length);
	json_uint(j, "flood", st.err_flood);
	json_uint(j, "truncated_reads", st.truncated_reads);
	json_uint(j, "truncated_bytes", st.truncated_bytes);
	json_uint(j, "discarded", st.discarded_msgs);
	json_uint(j, "lost_rdma", st.lost_rdma);
	json_uint(j, "send_deferred", st.send_deferred);
	json_uint(j, "send_queue_peak", st.send_queue_peak);
	json_uint(j, "send_failed", st.send_failed);
	json_end(j);
	if (h->dev)
		ovmc_dev_status_json(h->dev, j);
	if (h->sock)
		ovmc_sock_status_json(h->sock, j);
	json_end(j);
}
