// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The session and stream handling shared by the exec and socket backends
 * (peer.h). Layout: bookkeeping of sessions, the transport (epoll set,
 * attach/detach, writing), frames from the program, then the backend
 * callbacks the cores call.
 */
#include "peer.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

/* epoll tags: what became ready. */
enum {
	TAG_READ = 1u,
	TAG_WRITE = 2u,
	TAG_BOTH = TAG_READ | TAG_WRITE, /* one fd for both (a socket) */
	TAG_EXTRA = 4u,			 /* the backend's own fd */
};

/* Reads of one dispatch before giving the owner's loop back. */
#define READS_PER_DISPATCH 16
#define RBUF_SIZE (OVMC_FRAME_HDR_LEN + OVMC_FRAME_MAX_PAYLOAD)

/* A message from the program kept after -ENOBUFS. */
struct held_msg {
	struct held_msg *next;
	size_t len;
	uint8_t data[];
};

/* A session of one core as the program knows it. */
struct peer_session {
	struct ovmc_hv_session *s;
	uint16_t partition;
	uint8_t index;
	uint8_t number;
	struct held_msg *held_head, *held_tail;
};

#define plog(p, level, ...) ovmc_backend_log(&(p)->env, level, __VA_ARGS__)

/* ---- sessions ---- */

static struct peer_session *find_session(const struct ovmc_peer *p, unsigned partition,
					 unsigned index)
{
	for (size_t i = 0; i < p->n_sess; i++) {
		if (p->sess[i]->partition == partition && p->sess[i]->index == index)
			return p->sess[i];
	}
	return NULL;
}

static int add_session(struct ovmc_peer *p, struct peer_session *ps)
{
	if (p->n_sess == p->cap_sess) {
		size_t cap = p->cap_sess ? p->cap_sess * 2 : 8;
		struct peer_session **v = realloc(p->sess, cap * sizeof(*v));

		if (!v)
			return -ENOMEM;
		p->sess = v;
		p->cap_sess = cap;
	}
	p->sess[p->n_sess++] = ps;
	return 0;
}

static void remove_session(struct ovmc_peer *p, struct peer_session *ps)
{
	for (size_t i = 0; i < p->n_sess; i++) {
		if (p->sess[i] == ps) {
			memmove(&p->sess[i], &p->sess[i + 1],
				(p->n_sess - i - 1) * sizeof(*p->sess));
			p->n_sess--;
			return;
		}
	}
}

/* Free what is held for a session; returns how many messages. */
static size_t free_held(struct ovmc_peer *p, struct peer_session *ps)
{
	size_t n = 0;

	while (ps->held_head) {
		struct held_msg *m = ps->held_head;

		ps->held_head = m->next;
		p->held_bytes -= m->len;
		free(m);
		n++;
	}
	ps->held_tail = NULL;
	return n;
}

/* ---- transport ---- */

static void set_watch(struct ovmc_peer *p, int fd, uint32_t *cur, uint32_t want, uint32_t tag)
{
	struct epoll_event ev = {.events = want, .data.u32 = tag};
	int op;

	if (want == *cur)
		return;
	op = !*cur ? EPOLL_CTL_ADD : want ? EPOLL_CTL_MOD : EPOLL_CTL_DEL;
	if (epoll_ctl(p->epfd, op, fd, &ev) < 0) {
		plog(p, OVMC_LOG_ERROR, "%s: epoll_ctl on fd %d: %s", p->tag, fd,
		     ovmc_strerror(-errno));
		return;
	}
	*cur = want;
}

/* Read while not paused and connected; write only while there is output. */
static void update_watch(struct ovmc_peer *p)
{
	uint32_t rd = 0, wr = 0;

	if (!p->up)
		return;
	if (!p->paused && !p->connecting)
		rd = EPOLLIN;
	if (p->connecting || ovmc_outbuf_pending(&p->out))
		wr = EPOLLOUT;
	if (p->rfd == p->wfd) {
		set_watch(p, p->rfd, &p->rfd_watch, rd | wr, TAG_BOTH);
	} else {
		set_watch(p, p->rfd, &p->rfd_watch, rd, TAG_READ);
		set_watch(p, p->wfd, &p->wfd_watch, wr, TAG_WRITE);
	}
}

static void close_transport(struct ovmc_peer *p)
{
	set_watch(p, p->rfd, &p->rfd_watch, 0, 0);
	if (p->wfd != p->rfd)
		set_watch(p, p->wfd, &p->wfd_watch, 0, 0);
	close(p->rfd);
	if (p->wfd != p->rfd)
		close(p->wfd);
	p->rfd = p->wfd = -1;
	p->rfd_watch = p->wfd_watch = 0;
	p->up = false;
	p->connecting = false;
}

void ovmc_peer_detach(struct ovmc_peer *p, enum ovmc_log_level level, const char *why, int err)
{
	size_t lost;

	if (!p->up)
		return;
	close_transport(p);
	lost = ovmc_outbuf_discard(&p->out);
	p->st.dropped += lost;
	p->st.disconnects++;
	ovmc_frame_decoder_reset(&p->dec);
	plog(p, level, "%s: %s: %s%s%s; %zu frame(s) to it lost", p->tag, p->what, why,
	     err ? ": " : "", err ? ovmc_frame_strerror(err) : "", lost);
	if (p->ops->down)
		p->ops->down(p);
}

/* Write what the transport takes now. */
static void flush(struct ovmc_peer *p)
{
	int rc;

	if (!p->up || p->connecting)
		return;
	rc = ovmc_outbuf_flush(&p->out, p->wfd);
	if (rc)
		ovmc_peer_detach(p, OVMC_LOG_ERROR, "cannot write", rc);
}

/* Count (and log, once per outage) a frame that cannot reach the program. */
static void drop(struct ovmc_peer *p, const struct ovmc_frame *f, int err)
{
	p->st.dropped++;
	p->dropped_while_down++;
	if (!p->drop_logged) {
		p->drop_logged = true;
		plog(p, OVMC_LOG_WARN,
		     "%s: %s unreachable (%s): dropping frames to it, the first a %s for "
		     "partition %u index %u session %u",
		     p->tag, p->what, p->ops->connect ? ovmc_strerror(err) : "it is gone",
		     ovmc_frame_type_name(f->type), f->partition, f->index, f->session);
	} else {
		plog(p, OVMC_LOG_DEBUG, "%s: dropped a %s for partition %u index %u session %u",
		     p->tag, ovmc_frame_type_name(f->type), f->partition, f->index, f->session);
	}
}

/* Bring the transport back if an event needs it. Returns 0 or -errno. */
static int ensure_up(struct ovmc_peer *p)
{
	if (p->up)
		return 0;
	if (!p->ops->connect)
		return -ENOTCONN;
	return p->ops->connect(p);
}

/* Queue a frame for the program and write what the fd takes. */
static int emit(struct ovmc_peer *p, const struct ovmc_frame *f)
{
	int rc = ensure_up(p);

	if (rc) {
		drop(p, f, rc);
		return rc;
	}
	rc = ovmc_outbuf_put(&p->out, f);
	if (rc) {
		p->st.dropped++;
		if (rc == -ENOBUFS) {
			p->st.overflows++;
			plog(p, OVMC_LOG_WARN,
			     "%s: output to %s over its limit (%zu bytes, %zu frames "
			     "unread): %s for partition %u index %u dropped",
			     p->tag, p->what, p->out.bytes, ovmc_outbuf_pending(&p->out),
			     ovmc_frame_type_name(f->type), f->partition, f->index);
		} else {
			plog(p, OVMC_LOG_ERROR, "%s: cannot queue a %s: %s", p->tag,
			     ovmc_frame_type_name(f->type), ovmc_frame_strerror(rc));
		}
		return rc;
	}
	p->st.frames_out++;
	flush(p);
	update_watch(p);
	return p->up ? 0 : -EPIPE;
}

static void open_frame(const struct peer_session *ps, struct ovmc_frame *f)
{
	*f = (struct ovmc_frame){
		.type = OVMC_FRAME_OPEN,
		.partition = ps->partition,
		.index = ps->index,
		.session = ps->number,
		.payload = ovmc_hv_session_hmc_id(ps->s),
		.len = OVMC_HMC_ID_LEN,
	};
}

void ovmc_peer_attach(struct ovmc_peer *p, int rfd, int wfd, bool connecting)
{
	p->rfd = rfd;
	p->wfd = wfd;
	p->up = true;
	p->connecting = connecting;
	p->drop_logged = false;
	ovmc_frame_decoder_reset(&p->dec);
	if (p->ever_up) {
		p->st.reconnects++;
		plog(p, OVMC_LOG_INFO,
		     "%s: %s reached again; %llu frame(s) dropped meanwhile, %zu open "
		     "session(s) announced again",
		     p->tag, p->what, (unsigned long long)p->dropped_while_down, p->n_sess);
		/* A new program instance: tell it which sessions exist. */
		for (size_t i = 0; i < p->n_sess && p->up; i++) {
			struct ovmc_frame f;

			open_frame(p->sess[i], &f);
			if (emit(p, &f) == 0)
				p->st.reannounced++;
		}
	}
	p->ever_up = true;
	p->dropped_while_down = 0;
	update_watch(p);
}

int ovmc_peer_watch(struct ovmc_peer *p, int fd, uint32_t events)
{
	struct epoll_event ev = {.events = events, .data.u32 = TAG_EXTRA};

	if (epoll_ctl(p->epfd, events ? EPOLL_CTL_ADD : EPOLL_CTL_DEL, fd, &ev) < 0)
		return -errno;
	return 0;
}

/* ---- frames from the program ---- */

static void hold(struct ovmc_peer *p, struct peer_session *ps, const uint8_t *data, size_t len)
{
	struct held_msg *m = malloc(sizeof(*m) + len);

	if (!m) {
		p->st.undeliverable++;
		plog(p, OVMC_LOG_ERROR, "%s: out of memory: message of %zu bytes for index %u lost",
		     p->tag, len, ps->index);
		return;
	}
	m->next = NULL;
	m->len = len;
	memcpy(m->data, data, len);
	if (ps->held_tail)
		ps->held_tail->next = m;
	else
		ps->held_head = m;
	ps->held_tail = m;
	p->held_bytes += len;
	p->st.held++;
	if (!p->paused && p->held_bytes >= p->hold_limit) {
		p->paused = true;
		p->st.read_pauses++;
		plog(p, OVMC_LOG_INFO,
		     "%s: %zu bytes from %s wait for the partition; reading paused", p->tag,
		     p->held_bytes, p->what);
		update_watch(p);
	}
}

/* Hand one message to the core; 0, or -ENOBUFS if it must wait. */
static int send_one(struct ovmc_peer *p, struct peer_session *ps, const uint8_t *data, size_t len)
{
	int rc = ovmc_hv_send(ps->s, data, len);

	switch (rc) {
	case 0:
		p->st.delivered++;
		break;
	case -ENOBUFS:
		return rc;
	case -EMSGSIZE:
		p->st.invalid++;
		plog(p, OVMC_LOG_WARN,
		     "%s: MESSAGE of %zu bytes for partition %u index %u does not fit the "
		     "session's MTU; dropped",
		     p->tag, len, ps->partition, ps->index);
		break;
	default:
		p->st.undeliverable++;
		plog(p, OVMC_LOG_ERROR,
		     "%s: MESSAGE of %zu bytes for partition %u index %u not sent: %s", p->tag, len,
		     ps->partition, ps->index, ovmc_strerror(rc));
		break;
	}
	return 0;
}

static void on_frame(struct ovmc_peer *p, const struct ovmc_frame *f)
{
	struct peer_session *ps;

	p->st.frames_in++;
	if (f->type != OVMC_FRAME_MESSAGE) {
		p->st.invalid++;
		plog(p, OVMC_LOG_WARN,
		     "%s: %s frame from %s ignored: only the hypervisor side opens and closes "
		     "sessions",
		     p->tag, ovmc_frame_type_name(f->type), p->what);
		return;
	}
	ps = find_session(p, f->partition, f->index);
	if (!ps || ps->number != f->session) {
		p->st.stale++;
		if (ps)
			plog(p, OVMC_LOG_WARN,
			     "%s: stale MESSAGE for partition %u index %u session %u (session %u "
			     "is open there); dropped",
			     p->tag, f->partition, f->index, f->session, ps->number);
		else
			plog(p, OVMC_LOG_WARN,
			     "%s: stale MESSAGE for partition %u index %u session %u (no session "
			     "open there); dropped",
			     p->tag, f->partition, f->index, f->session);
		return;
	}
	/* Behind held messages, or refused for now: keep it, in order. */
	if (ps->held_head || send_one(p, ps, f->payload, f->len) == -ENOBUFS)
		hold(p, ps, f->payload, f->len);
}

static void feed(struct ovmc_peer *p, const uint8_t *data, size_t len)
{
	size_t pos = 0;

	while (pos < len && p->up) {
		struct ovmc_frame f;
		size_t used;
		int rc = ovmc_frame_decode(&p->dec, data + pos, len - pos, &used, &f);

		pos += used;
		if (rc == 1) {
			on_frame(p, &f);
		} else if (rc < 0) {
			if (rc != -ENOMEM)
				p->st.decode_errors++;
			ovmc_peer_detach(p, OVMC_LOG_ERROR, "bad frame stream", rc);
			return;
		}
	}
}

static void read_some(struct ovmc_peer *p, bool ignore_pause)
{
	for (int i = 0; i < READS_PER_DISPATCH && p->up; i++) {
		ssize_t n;

		if (p->paused && !ignore_pause)
			return;
		n = read(p->rfd, p->rbuf, RBUF_SIZE);
		if (n > 0) {
			feed(p, p->rbuf, (size_t)n);
		} else if (n == 0) {
			ovmc_peer_detach(p, p->ops->connect ? OVMC_LOG_WARN : OVMC_LOG_ERROR,
					 "the other end closed the stream", 0);
		} else if (errno == EAGAIN || errno == EWOULDBLOCK) {
			return;
		} else if (errno != EINTR) {
			ovmc_peer_detach(p, OVMC_LOG_ERROR, "cannot read", -errno);
		}
	}
}

void ovmc_peer_drain(struct ovmc_peer *p)
{
	/* Bounded: what a program that just exited left in the pipe. */
	for (int i = 0; i < 64 && p->up; i++) {
		uint64_t before = p->st.frames_in + p->st.decode_errors;

		read_some(p, true);
		if (p->st.frames_in + p->st.decode_errors == before)
			break;
	}
}

static void on_writable(struct ovmc_peer *p, uint32_t events)
{
	if (p->connecting) {
		int err = 0;
		socklen_t l = sizeof(err);

		if (getsockopt(p->wfd, SOL_SOCKET, SO_ERROR, &err, &l) < 0)
			err = errno;
		if (err) {
			ovmc_peer_detach(p, OVMC_LOG_WARN, "cannot connect", -err);
			return;
		}
		if (!(events & EPOLLOUT))
			return;
		p->connecting = false;
		plog(p, OVMC_LOG_DEBUG, "%s: connected to %s", p->tag, p->what);
	}
	flush(p);
}

/* ---- struct ovmc_backend glue ---- */

int ovmc_peer_fd(void *arg)
{
	struct ovmc_peer *p = arg;

	return p->epfd;
}

void ovmc_peer_dispatch(void *arg, uint64_t now)
{
	struct ovmc_peer *p = arg;
	struct epoll_event ev[8];
	int n = epoll_wait(p->epfd, ev, 8, 0);

	(void)now;
	for (int i = 0; i < n; i++) {
		uint32_t tag = ev[i].data.u32, events = ev[i].events;

		if (tag == TAG_EXTRA) {
			if (p->ops->event)
				p->ops->event(p, events);
			continue;
		}
		if ((tag & TAG_WRITE) && p->up && (events & (EPOLLOUT | EPOLLERR | EPOLLHUP)))
			on_writable(p, events);
		/* A hang-up stays reported while paused: take the rest and the
		 * end of stream now (bounded by the kernel's buffer) rather
		 * than have the owner's loop spin. */
		if ((tag & TAG_READ) && p->up && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)))
			read_some(p, (events & (EPOLLERR | EPOLLHUP)) != 0);
	}
	update_watch(p);
}

int ovmc_peer_open(void *b, struct ovmc_hv_session *s, const uint8_t hmc_id[OVMC_HMC_ID_LEN])
{
	struct ovmc_peer *p = b;
	unsigned partition = ovmc_hv_id(ovmc_hv_session_hv(s));
	unsigned index = ovmc_hv_session_index(s);
	struct peer_session *ps;
	struct ovmc_frame f;
	int rc;

	if (partition > UINT16_MAX) {
		plog(p, OVMC_LOG_ERROR, "%s: partition id %u does not fit a frame; session refused",
		     p->tag, partition);
		p->st.refused_opens++;
		return -ERANGE;
	}
	if (find_session(p, partition, index)) {
		plog(p, OVMC_LOG_ERROR,
		     "%s: two cores with partition id %u open index %u; session refused", p->tag,
		     partition, index);
		p->st.refused_opens++;
		return -EEXIST;
	}
	ps = calloc(1, sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	*ps = (struct peer_session){.s = s,
				    .partition = (uint16_t)partition,
				    .index = (uint8_t)index,
				    .number = ovmc_hv_session_number(s)};
	open_frame(ps, &f);
	f.payload = hmc_id;
	/* Reconnect first: what it announces again must not include this one. */
	rc = ensure_up(p);
	if (rc) {
		drop(p, &f, rc);
	} else if ((rc = add_session(p, ps)) == 0) {
		rc = emit(p, &f);
		if (rc)
			remove_session(p, ps);
	}
	if (rc) {
		p->st.refused_opens++;
		plog(p, OVMC_LOG_INFO, "%s: session %u on partition %u index %u refused: %s",
		     p->tag, ps->number, partition, index, ovmc_strerror(rc));
		free(ps);
		return rc;
	}
	ovmc_hv_session_set_user(s, ps);
	return 0;
}

void ovmc_peer_message(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len)
{
	struct ovmc_peer *p = b;
	struct peer_session *ps = ovmc_hv_session_user(s);
	struct ovmc_frame f;

	if (!ps)
		return;
	f = (struct ovmc_frame){.type = OVMC_FRAME_MESSAGE,
				.partition = ps->partition,
				.index = ps->index,
				.session = ps->number,
				.payload = data,
				.len = len};
	emit(p, &f);
}

void ovmc_peer_close(void *b, struct ovmc_hv_session *s)
{
	struct ovmc_peer *p = b;
	struct peer_session *ps = ovmc_hv_session_user(s);
	struct ovmc_frame f;
	size_t lost;

	if (!ps)
		return;
	f = (struct ovmc_frame){.type = OVMC_FRAME_CLOSE,
				.partition = ps->partition,
				.index = ps->index,
				.session = ps->number};
	/* Emit first: a reconnection on the way announces this one too, so the
	 * program sees an OPEN before the CLOSE. */
	emit(p, &f);
	remove_session(p, ps);
	lost = free_held(p, ps);
	if (lost) {
		p->st.undeliverable += lost;
		plog(p, OVMC_LOG_WARN,
		     "%s: session %u on partition %u index %u closed with %zu message(s) from "
		     "%s not yet delivered; dropped",
		     p->tag, ps->number, ps->partition, ps->index, lost, p->what);
	}
	ovmc_hv_session_set_user(s, NULL);
	free(ps);
	if (p->paused && p->held_bytes < p->hold_limit / 2) {
		p->paused = false;
		update_watch(p);
	}
}

void ovmc_peer_writable(void *b, struct ovmc_hv_session *s)
{
	struct ovmc_peer *p = b;
	struct peer_session *ps = ovmc_hv_session_user(s);

	if (!ps)
		return;
	while (ps->held_head) {
		struct held_msg *m = ps->held_head;

		if (send_one(p, ps, m->data, m->len) == -ENOBUFS)
			break; /* the core calls writable again */
		ps->held_head = m->next;
		if (!ps->held_head)
			ps->held_tail = NULL;
		p->held_bytes -= m->len;
		free(m);
	}
	if (p->paused && p->held_bytes < p->hold_limit / 2) {
		p->paused = false;
		plog(p, OVMC_LOG_INFO, "%s: reading from %s again", p->tag, p->what);
		update_watch(p);
	}
}

/* ---- life cycle ---- */

int ovmc_peer_init(struct ovmc_peer *p, const char *tag, const char *what,
		   const struct ovmc_backend_env *env, const struct ovmc_peer_ops *ops, bool socket)
{
	memset(p, 0, sizeof(*p));
	p->tag = tag;
	p->what = what;
	p->env = *env;
	p->ops = ops;
	p->rfd = p->wfd = -1;
	p->st.exit_status = -1;
	p->hold_limit = OVMC_PEER_HOLD_LIMIT;
	ovmc_frame_decoder_init(&p->dec);
	ovmc_outbuf_init(&p->out, OVMC_PEER_OUT_LIMIT, socket);
	p->rbuf = malloc(RBUF_SIZE);
	if (!p->rbuf)
		return -ENOMEM;
	p->epfd = epoll_create1(EPOLL_CLOEXEC);
	if (p->epfd < 0) {
		int rc = -errno;

		free(p->rbuf);
		p->rbuf = NULL;
		return rc;
	}
	return 0;
}

void ovmc_peer_fini(struct ovmc_peer *p)
{
	if (p->up)
		close_transport(p);
	for (size_t i = 0; i < p->n_sess; i++) {
		free_held(p, p->sess[i]);
		free(p->sess[i]);
	}
	free(p->sess);
	p->sess = NULL;
	p->n_sess = p->cap_sess = 0;
	ovmc_outbuf_free(&p->out);
	ovmc_frame_decoder_free(&p->dec);
	free(p->rbuf);
	p->rbuf = NULL;
	if (p->epfd >= 0)
		close(p->epfd);
	p->epfd = -1;
}

int ovmc_peer_backend_stats(const struct ovmc_backend *b, struct ovmc_peer_stats *out)
{
	if (!b || b->fd != ovmc_peer_fd || !b->arg)
		return -EINVAL;
	*out = ((const struct ovmc_peer *)b->arg)->st;
	return 0;
}
