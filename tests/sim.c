// SPDX-License-Identifier: GPL-2.0-or-later
/* The deterministic channel simulation used by the scenario tests (sim.h). */
#include "sim.h"

#include "harness.h"

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdlib.h>

/* Iterations of one pump before the simulation declares a livelock. */
#define SIM_MAX_ROUNDS 1000000u

/* ---- recording helpers ---- */

static void *xrealloc(void *p, size_t n)
{
	void *q = realloc(p, n);

	if (!q)
		FAIL("out of memory");
	return q;
}

static void msgs_push(struct sim_msgs *v, unsigned index, uint8_t session, const void *data,
		      size_t len)
{
	struct sim_msg *m;

	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 64;
		v->v = xrealloc(v->v, v->cap * sizeof(*v->v));
	}
	m = &v->v[v->n++];
	m->index = index;
	m->session = session;
	m->len = len;
	m->data = NULL;
	if (data) {
		m->data = xrealloc(NULL, len ? len : 1);
		memcpy(m->data, data, len);
	}
}

static void msgs_clear(struct sim_msgs *v)
{
	for (size_t i = 0; i < v->n; i++)
		free(v->v[i].data);
	v->n = 0;
}

static void msgs_free(struct sim_msgs *v)
{
	msgs_clear(v);
	free(v->v);
	v->v = NULL;
	v->cap = 0;
}

static void entries_push(struct sim_entries *v, const uint8_t *e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->e = realloc(v->e, v->cap * sizeof(*v->e));
		if (!v->e)
			abort(); /* inside a machine call: cannot leave the test here */
	}
	memcpy(v->e[v->n++], e, OVMC_CRQ_ENTRY_SIZE);
}

static void log_push(struct sim_log *v, enum sim_dir dir, const uint8_t *e)
{
	if (v->n == v->cap) {
		v->cap = v->cap ? v->cap * 2 : 256;
		v->v = realloc(v->v, v->cap * sizeof(*v->v));
		if (!v->v)
			abort();
	}
	v->v[v->n].dir = (uint8_t)dir;
	memcpy(v->v[v->n].e, e, OVMC_CRQ_ENTRY_SIZE);
	v->n++;
}

size_t sim_count(const struct sim_entries *v, uint8_t header, uint8_t type)
{
	size_t n = 0;

	for (size_t i = 0; i < v->n; i++)
		n += v->e[i][0] == header && v->e[i][1] == type;
	return n;
}

const uint8_t *sim_last(const struct sim_entries *v, uint8_t header, uint8_t type)
{
	for (size_t i = v->n; i-- > 0;) {
		if (v->e[i][0] == header && v->e[i][1] == type)
			return v->e[i];
	}
	return NULL;
}

/* ---- logging ---- */

static void __attribute__((format(printf, 4, 0)))
sim_vlog(struct sim *s, const char *who, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	const char *name;

	if (s->log_level < 0 || (int)level > s->log_level)
		return;
	name = ovmc_log_level_name(level);
	fprintf(stderr, "[%llu.%06llu %s %s] ", (unsigned long long)(s->now / SIM_S),
		(unsigned long long)(s->now % SIM_S / 1000), who, name ? name : "?");
	vfprintf(stderr, fmt, ap);
	fputc('\n', stderr);
}

static void __attribute__((format(printf, 3, 0)))
drv_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	struct sim *s = user;
	va_list copy;

	va_copy(copy, ap);
	if (level <= OVMC_LOG_INFO)
		vsnprintf(s->drv_said, sizeof(s->drv_said), fmt, copy);
	va_end(copy);
	if (level <= OVMC_LOG_WARN) {
		va_copy(copy, ap);
		vsnprintf(s->drv_warned, sizeof(s->drv_warned), fmt, copy);
		va_end(copy);
		s->drv_warnings++;
		s->drv_proto_lines += strncmp(s->drv_warned, "protocol error: ", 16) == 0;
	}
	sim_vlog(user, "drv", level, fmt, ap);
}

static void __attribute__((format(printf, 3, 0)))
hv_log(void *user, enum ovmc_log_level level, const char *fmt, va_list ap)
{
	struct sim *s = user;

	if (level <= OVMC_LOG_WARN) {
		va_list copy;

		va_copy(copy, ap);
		vsnprintf(s->hv_warned, sizeof(s->hv_warned), fmt, copy);
		va_end(copy);
		s->hv_warnings++;
		s->hv_proto_lines += strncmp(s->hv_warned, "protocol error: ", 16) == 0;
	}
	sim_vlog(user, "hv ", level, fmt, ap);
}

/* ---- machine hooks and trace ---- */

static void hook_created(void *arg, struct ovmc_vmc *vmc)
{
	struct sim *s = arg;

	s->vmcs_created++;
	(void)vmc;
}

static void drv_trace(void *user, const struct ovmc_trace_event *ev)
{
	struct sim *s = user;

	if (s->o.drv_trace)
		s->o.drv_trace(s->o.drv_trace_arg, ev);
}

static void trace(void *arg, const struct ovmc_trace_event *ev)
{
	struct sim *s = arg;

	if (s->o.hv_trace)
		s->o.hv_trace(s->o.hv_trace_arg, ev);

	switch (ev->kind) {
	case OVMC_TRACE_TO_HV:
		entries_push(&s->to_hv, ev->entry);
		log_push(&s->log, SIM_TO_HV, ev->entry);
		break;
	case OVMC_TRACE_TO_PARTITION:
		entries_push(&s->to_part, ev->entry);
		log_push(&s->log, SIM_TO_PART, ev->entry);
		if (s->vmc && ev->entry[0] != OVMC_CRQ_TRANSPORT) {
			unsigned o = ovmc_vmc_hv_outstanding(s->vmc);

			if (o > s->max_outstanding)
				s->max_outstanding = o;
		}
		break;
	case OVMC_TRACE_RDMA:
		s->rdma_ops++;
		break;
	case OVMC_TRACE_HCALL:
		break;
	}
}

/* ---- recording backend ---- */

static int be_open(void *b, struct ovmc_hv_session *hs, const uint8_t id[OVMC_HMC_ID_LEN])
{
	struct sim *s = b;
	unsigned idx = ovmc_hv_session_index(hs);

	s->be.opens++;
	msgs_push(&s->be.open_log, idx, ovmc_hv_session_number(hs), id, OVMC_HMC_ID_LEN);
	if (s->be.open_rc)
		return s->be.open_rc;
	if (idx < 256)
		s->be.sess[idx] = hs;
	return 0;
}

static void be_message(void *b, struct ovmc_hv_session *hs, const uint8_t *data, size_t len)
{
	struct sim *s = b;

	msgs_push(&s->be.msgs, ovmc_hv_session_index(hs), ovmc_hv_session_number(hs), data, len);
	if (s->be.echo) {
		int rc = ovmc_hv_send(hs, data, len);

		if (rc) {
			s->be.echo_errors++;
			s->be.last_echo_rc = rc;
		} else {
			msgs_push(&s->be.sent, ovmc_hv_session_index(hs),
				  ovmc_hv_session_number(hs), data, len);
		}
	}
}

static void be_close(void *b, struct ovmc_hv_session *hs)
{
	struct sim *s = b;
	unsigned idx = ovmc_hv_session_index(hs);

	s->be.closes++;
	msgs_push(&s->be.close_log, idx, ovmc_hv_session_number(hs), NULL, 0);
	if (idx < 256 && s->be.sess[idx] == hs)
		s->be.sess[idx] = NULL;
}

static void be_writable(void *b, struct ovmc_hv_session *hs)
{
	struct sim *s = b;

	(void)hs;
	s->be.writable++;
}

static const struct ovmc_backend_ops sim_backend_ops = {
	.name = "sim-recorder",
	.open = be_open,
	.message = be_message,
	.close = be_close,
	.writable = be_writable,
};

/* ---- driver callbacks ---- */

static void cb_file_event(void *user, struct ovmc_drv_file *f, unsigned events)
{
	struct sim_file *sf = ovmc_drv_file_user(f);

	(void)user;
	if (sf) {
		sf->events++;
		sf->last_events = events;
	}
}

static void cb_state_changed(void *user, enum ovmc_drv_state state)
{
	struct sim *s = user;

	if (s->state_changes < sizeof(s->states) / sizeof(s->states[0]))
		s->states[s->state_changes] = state;
	s->state_changes++;
}

/* ---- life cycle ---- */

void sim_opts_default(struct sim_opts *o)
{
	memset(o, 0, sizeof(*o));
	ovmc_drv_config_default(&o->drv);
	ovmc_hv_config_default(&o->hv);
	o->request_vmc_rc = OVMC_H_SUCCESS;
	o->echo = true;
	o->mem_slack = 64 * 1024;
}

void sim_attach_hv(struct sim *s)
{
	int rc;

	if (s->hv)
		return;
	s->vmc = ovmc_part_vmc(ovmc_inproc_part(s->plat));
	if (!s->vmc)
		FAIL("sim_attach_hv: the partition has no VMC");
	rc = ovmc_hv_attach(s->vmc, &s->o.hv, hv_log, s, s->now, &s->hv);
	if (rc)
		FAIL("ovmc_hv_attach: %d (%s)", rc, ovmc_strerror(rc));
	if (s->o.backend)
		ovmc_hv_set_backend(s->hv, s->o.backend, s->o.backend_arg);
	else
		ovmc_hv_set_backend(s->hv, &sim_backend_ops, s);
	if (s->log_level >= 0)
		ovmc_hv_set_log(s->hv, hv_log, s, (enum ovmc_log_level)s->log_level);
}

static void start_driver(struct sim *s)
{
	int rc = ovmc_drv_start(s->drv, s->now);

	if (rc)
		FAIL("ovmc_drv_start: %d (%s)", rc, ovmc_strerror(rc));
}

void sim_start(struct sim *s)
{
	s->started = true;
	if (s->o.hv_first && !s->o.no_hv && !s->o.vmc_absent)
		sim_attach_hv(s);
	start_driver(s);
	if (!s->o.no_hv && !s->o.vmc_absent)
		sim_attach_hv(s);
}

struct sim *sim_new(const struct sim_opts *o)
{
	struct sim *s = calloc(1, sizeof(*s));
	struct ovmc_machine_hooks hooks = {.vmc_created = hook_created};
	struct ovmc_inproc_config pc = {0};
	struct ovmc_drv_callbacks cbs = {
		.file_event = cb_file_event, .state_changed = cb_state_changed, .log = drv_log};
	const char *env = getenv("OVMC_TEST_LOG");
	enum ovmc_log_level lvl;
	int rc;

	if (!s)
		FAIL("out of memory");
	ovmc_test_defer(sim_free, s);
	if (o)
		s->o = *o;
	else
		sim_opts_default(&s->o);
	s->now = 1 * SIM_S;
	s->log_level = -1;
	if (env && *env && ovmc_log_level_parse(env, &lvl) == 0)
		s->log_level = (int)lvl;
	else if (env && *env)
		s->log_level = OVMC_LOG_DEBUG;
	s->be.echo = s->o.echo;

	hooks.arg = s;
	if (s->o.drv_trace)
		cbs.trace = drv_trace;
	rc = ovmc_machine_new(&hooks, &s->m);
	if (rc)
		FAIL("ovmc_machine_new: %d", rc);
	ovmc_machine_set_trace(s->m, trace, s);

	pc.mem_size = ovmc_drv_memory_required(&s->o.drv) + s->o.mem_slack;
	pc.vmc_present = !s->o.vmc_absent;
	pc.request_vmc_rc = s->o.request_vmc_rc;
	pc.hv_window_size = ovmc_hv_memory_required(&s->o.hv);
	pc.hv_queue_entries = s->o.hv.crq_size;
	rc = ovmc_inproc_new(s->m, &pc, &s->plat);
	if (rc)
		FAIL("ovmc_inproc_new: %d", rc);
	s->vmc = ovmc_part_vmc(ovmc_inproc_part(s->plat));

	rc = ovmc_drv_new(&s->o.drv, s->plat, &cbs, s, &s->drv);
	if (rc)
		FAIL("ovmc_drv_new: %d (%s)", rc, ovmc_strerror(rc));
	if (s->log_level >= 0)
		ovmc_drv_set_log_level(s->drv, (enum ovmc_log_level)s->log_level);
	if (!s->o.no_start)
		sim_start(s);
	return s;
}

void sim_free(void *arg)
{
	struct sim *s = arg;
	struct sim_file *f, *next;

	if (!s)
		return;
	for (f = s->files; f; f = f->next) {
		if (!f->closed && s->drv) {
			ovmc_drv_close(s->drv, f->f, s->now);
			f->closed = true;
		}
	}
	if (s->hv)
		ovmc_hv_free(s->hv);
	if (s->drv)
		ovmc_drv_free(s->drv);
	if (s->plat)
		ovmc_platform_destroy(s->plat);
	if (s->m)
		ovmc_machine_free(s->m);
	for (f = s->files; f; f = next) {
		next = f->next;
		free(f);
	}
	msgs_free(&s->be.msgs);
	msgs_free(&s->be.sent);
	msgs_free(&s->be.open_log);
	msgs_free(&s->be.close_log);
	free(s->to_hv.e);
	free(s->to_part.e);
	free(s->log.v);
	free(s);
}

/* ---- pumping ---- */

static uint64_t next_deadline(const struct sim *s)
{
	uint64_t d = s->hold_drv ? OVMC_TIME_NEVER : ovmc_drv_next_deadline(s->drv);

	if (s->hv && !s->hold_hv && ovmc_hv_next_deadline(s->hv) < d)
		d = ovmc_hv_next_deadline(s->hv);
	return d;
}

void sim_run(struct sim *s)
{
	for (unsigned round = 0;; round++) {
		unsigned n = 0;

		if (round == SIM_MAX_ROUNDS)
			FAIL("sim_run: no quiescence after %u rounds (drv %s, hv %s)", round,
			     ovmc_drv_state_name(ovmc_drv_state(s->drv)),
			     s->hv ? ovmc_hv_state_name(ovmc_hv_state(s->hv)) : "-");
		/* A VMC that appeared (H_REQUEST_VMC) gets its hypervisor core. */
		if (!s->hv && s->started && !s->o.no_hv &&
		    ovmc_part_vmc(ovmc_inproc_part(s->plat))) {
			sim_attach_hv(s);
			n++;
		}
		if (s->hv && !s->hold_hv) {
			n += ovmc_hv_poll(s->hv, s->now);
			if (ovmc_hv_next_deadline(s->hv) <= s->now) {
				ovmc_hv_handle_timer(s->hv, s->now);
				n++;
			}
		}
		if (!s->hold_drv && ovmc_platform_irq_ack(s->plat)) {
			n += ovmc_drv_handle_interrupt(s->drv, s->now);
		}
		if (!s->hold_drv && ovmc_drv_next_deadline(s->drv) <= s->now) {
			ovmc_drv_handle_timer(s->drv, s->now);
			n++;
		}
		if (n == 0 && !s->hold_drv && s->vmc && ovmc_vmc_partition_registered(s->vmc) &&
		    ovmc_vmc_hv_outstanding(s->vmc) > 0) {
			/* Entries wait but no interrupt is pending: the driver would
			 * never see them in a real event loop. Count, then go on. */
			unsigned k = ovmc_drv_handle_interrupt(s->drv, s->now);

			if (k) {
				s->lost_wakeups++;
				n += k;
			}
		}
		if (n == 0)
			return;
	}
}

void sim_advance(struct sim *s, uint64_t ns)
{
	uint64_t target = s->now + ns;

	sim_run(s);
	for (unsigned round = 0;; round++) {
		uint64_t d = next_deadline(s);

		if (d > target)
			break;
		if (round == SIM_MAX_ROUNDS)
			FAIL("sim_advance: timers keep firing at %llu ns",
			     (unsigned long long)s->now);
		if (d > s->now)
			s->now = d;
		sim_run(s);
	}
	s->now = target;
	sim_run(s);
}

bool sim_wait(struct sim *s, struct sim_file *f, unsigned events, uint64_t max_ns)
{
	uint64_t end = s->now + max_ns;

	sim_run(s);
	for (;;) {
		uint64_t d;

		if (sim_poll(s, f) & events)
			return true;
		d = next_deadline(s);
		if (d == OVMC_TIME_NEVER || d > end)
			return false;
		sim_advance(s, d > s->now ? d - s->now : 0);
	}
}

void sim_ready(struct sim *s)
{
	sim_run(s);
	if (ovmc_drv_state(s->drv) != OVMC_DRV_READY)
		FAIL("driver state %s, expected ready",
		     ovmc_drv_state_name(ovmc_drv_state(s->drv)));
	if (!s->hv || ovmc_hv_state(s->hv) != OVMC_HV_READY)
		FAIL("hypervisor state %s, expected ready",
		     s->hv ? ovmc_hv_state_name(ovmc_hv_state(s->hv)) : "(none)");
}

/* ---- files ---- */

struct sim_file *sim_open(struct sim *s)
{
	struct sim_file *f = calloc(1, sizeof(*f));
	int rc;

	if (!f)
		FAIL("out of memory");
	f->next = s->files;
	s->files = f;
	f->closed = true; /* until the open succeeded */
	rc = ovmc_drv_open(s->drv, &f->f);
	if (rc)
		FAIL("ovmc_drv_open: %d", rc);
	f->closed = false;
	ovmc_drv_file_set_user(f->f, f);
	return f;
}

int sim_sethmcid(struct sim *s, struct sim_file *f, const uint8_t id[OVMC_HMC_ID_LEN])
{
	return ovmc_drv_sethmcid(s->drv, f->f, id, s->now);
}

struct sim_file *sim_open_session(struct sim *s, const uint8_t id[OVMC_HMC_ID_LEN])
{
	struct sim_file *f = sim_open(s);
	struct ovmc_hv_stats before, after;
	int rc;
	unsigned ev;

	ovmc_hv_stats(s->hv, &before);
	rc = sim_sethmcid(s, f, id);
	if (rc)
		FAIL("ovmc_drv_sethmcid: %d (%s)", rc, ovmc_strerror(rc));
	sim_run(s);
	ovmc_hv_stats(s->hv, &after);
	if (after.sessions_opened != before.sessions_opened + 1)
		FAIL("the hypervisor opened %llu sessions, expected 1",
		     (unsigned long long)(after.sessions_opened - before.sessions_opened));
	ev = sim_poll(s, f);
	if (!(ev & POLLOUT))
		FAIL("session open but not writable (poll 0x%x)", ev);
	return f;
}

void sim_close(struct sim *s, struct sim_file *f)
{
	if (f->closed)
		FAIL("sim_close: file closed twice");
	f->closed = true;
	ovmc_drv_close(s->drv, f->f, s->now);
	f->f = NULL;
}

ssize_t sim_write(struct sim *s, struct sim_file *f, const void *buf, size_t len)
{
	return ovmc_drv_write(s->drv, f->f, buf, len, s->now);
}

ssize_t sim_read(struct sim *s, struct sim_file *f, void *buf, size_t len)
{
	return ovmc_drv_read(s->drv, f->f, buf, len, s->now);
}

unsigned sim_poll(struct sim *s, struct sim_file *f)
{
	return ovmc_drv_poll(s->drv, f->f);
}

/* ---- helpers ---- */

void sim_make_id(uint8_t id[OVMC_HMC_ID_LEN], unsigned seed)
{
	static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789";
	uint64_t st = 0x1234567ull + seed;

	for (unsigned i = 0; i < OVMC_HMC_ID_LEN; i++)
		id[i] = (uint8_t)alphabet[ovmc_test_rand(&st) % (sizeof(alphabet) - 1)];
}

struct ovmc_hv_session *sim_session(struct sim *s, unsigned index)
{
	struct ovmc_hv_session *hs = s->hv ? ovmc_hv_session_at(s->hv, index) : NULL;

	if (!hs)
		FAIL("no hypervisor session on index %u", index);
	return hs;
}

int sim_backend_send(struct sim *s, unsigned index, const void *data, size_t len)
{
	struct ovmc_hv_session *hs = sim_session(s, index);
	int rc = ovmc_hv_send(hs, data, len);

	if (rc == 0)
		msgs_push(&s->be.sent, index, ovmc_hv_session_number(hs), data, len);
	return rc;
}

void sim_clear_msgs(struct sim *s)
{
	msgs_clear(&s->be.msgs);
}

uint32_t sim_mtu(const struct sim *s)
{
	struct ovmc_drv_negotiated n;

	ovmc_drv_negotiated(s->drv, &n);
	return n.mtu;
}
