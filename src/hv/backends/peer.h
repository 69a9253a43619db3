/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * What the "exec" and "socket" backends share: a peer program reached over
 * a byte stream that speaks the frame format (framing.h, docs/framing.md).
 *
 * The peer layer tracks the sessions of every core it serves by
 * (partition id, HMC index), turns the cores' open/message/close into
 * frames, and hands MESSAGE frames from the program to ovmc_hv_send() on
 * the session they name, holding them in order while the core answers
 * -ENOBUFS. The transport (pipes to a child, a socket) is a read fd and a
 * write fd given with ovmc_peer_attach(); an owner-visible epoll fd watches
 * the read fd and, only while output is pending or a connect is in
 * progress, the write fd.
 *
 * Not thread-safe; everything runs in the owner's loop or inside core
 * callbacks.
 */
#ifndef OVMC_BACKENDS_PEER_H
#define OVMC_BACKENDS_PEER_H

#include "backends.h"
#include "framing.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Counters of one exec or socket backend. */
struct ovmc_peer_stats {
	uint64_t frames_out;	/* frames queued for the program */
	uint64_t frames_in;	/* well-formed frames from the program */
	uint64_t delivered;	/* messages from the program accepted by ovmc_hv_send() */
	uint64_t dropped;	/* frames for the program lost: transport down, output
				 * buffer full, or discarded with a broken connection */
	uint64_t overflows;	/* of `dropped`: output buffer limit reached */
	uint64_t stale;		/* MESSAGEs for a session not open with that number */
	uint64_t invalid;	/* OPEN/CLOSE from the program, MESSAGE above the MTU */
	uint64_t undeliverable; /* messages from the program the core refused otherwise
				 * (-ENOMEM), or held when their session closed */
	uint64_t decode_errors; /* broken streams from the program */
	uint64_t held;		/* messages kept after -ENOBUFS, sent on `writable` */
	uint64_t read_pauses;	/* reading stopped because too much was held */
	uint64_t disconnects;	/* transport lost (EOF, error, bad frame) */
	uint64_t reconnects;	/* transport brought back (socket) */
	uint64_t reannounced;	/* OPEN frames repeated after a reconnection */
	uint64_t refused_opens; /* sessions refused: the program was unreachable */
	uint64_t exits;		/* exec: the program exited (and was reaped) */
	int exit_status;	/* exec: wait status of that exit, -1 if none */
};

struct ovmc_peer;

struct ovmc_peer_ops {
	/* An event needs the transport and it is down: bring it back with
	 * ovmc_peer_attach() and return 0, or return -errno. NULL: it never
	 * comes back. */
	int (*connect)(struct ovmc_peer *p);
	/* The transport went down (fds already closed). Optional. */
	void (*down)(struct ovmc_peer *p);
	/* A descriptor the backend added with ovmc_peer_watch() is ready. */
	void (*event)(struct ovmc_peer *p, uint32_t events);
};

struct peer_session;

struct ovmc_peer {
	const char *tag;  /* "exec" or "socket", first word of every log line */
	const char *what; /* what the program is (command or address), for logs */
	struct ovmc_backend_env env;
	const struct ovmc_peer_ops *ops;
	int epfd;
	int rfd, wfd;		       /* -1 while down; equal for a socket */
	uint32_t rfd_watch, wfd_watch; /* events registered (0: not registered) */
	bool up;
	bool ever_up;	  /* attached at least once: the next attach reconnects */
	bool connecting;  /* non-blocking connect in progress */
	bool paused;	  /* not reading: too much held for the cores */
	bool drop_logged; /* a drop was logged since the transport went down */
	uint64_t dropped_while_down;
	struct ovmc_frame_decoder dec;
	struct ovmc_outbuf out;
	struct peer_session **sess;
	size_t n_sess, cap_sess;
	size_t held_bytes;
	size_t hold_limit; /* OVMC_PEER_HOLD_LIMIT (tests lower it, as out.limit) */
	uint8_t *rbuf;
	struct ovmc_peer_stats st;
};

/* Bytes the output buffer may hold before frames are dropped. */
#define OVMC_PEER_OUT_LIMIT (4u << 20)
/* Held bytes above which reading stops until `writable` drains them. */
#define OVMC_PEER_HOLD_LIMIT (4u << 20)

/* Set up an idle peer (transport down). Returns 0 or -errno. */
int ovmc_peer_init(struct ovmc_peer *p, const char *tag, const char *what,
		   const struct ovmc_backend_env *env, const struct ovmc_peer_ops *ops,
		   bool socket);
/* Close the transport and the epoll fd, free the session records. The
 * cores must not call the backend any more. */
void ovmc_peer_fini(struct ovmc_peer *p);

/*
 * The transport is up on these fds (owned from now on; non-blocking).
 * `connecting`: wfd is a socket whose connect is still in progress. Open
 * sessions are announced again with OPEN frames when there are any.
 */
void ovmc_peer_attach(struct ovmc_peer *p, int rfd, int wfd, bool connecting);
/* Close the transport: log `why` (and `err` if non-zero) at `level`, drop
 * and count pending output. */
void ovmc_peer_detach(struct ovmc_peer *p, enum ovmc_log_level level, const char *why, int err);
/* Read and handle what the program sent, ignoring a pause (used when the
 * program exited, to take its last frames). */
void ovmc_peer_drain(struct ovmc_peer *p);

/* Add (events != 0) or remove an extra fd of the backend to the epoll set;
 * ops->event is called when it is ready. Returns 0 or -errno. */
int ovmc_peer_watch(struct ovmc_peer *p, int fd, uint32_t events);

/* struct ovmc_backend glue, arg = the peer. */
int ovmc_peer_fd(void *arg);
void ovmc_peer_dispatch(void *arg, uint64_t now);
int ovmc_peer_open(void *b, struct ovmc_hv_session *s, const uint8_t hmc_id[OVMC_HMC_ID_LEN]);
void ovmc_peer_message(void *b, struct ovmc_hv_session *s, const uint8_t *data, size_t len);
void ovmc_peer_close(void *b, struct ovmc_hv_session *s);
void ovmc_peer_writable(void *b, struct ovmc_hv_session *s);

/* Counters of an exec or socket backend; -EINVAL for another backend. */
int ovmc_peer_backend_stats(const struct ovmc_backend *b, struct ovmc_peer_stats *out);

#endif
