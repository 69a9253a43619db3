/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Messages of the cross-process platform (docs/xproc.md). Both ends run on
 * the same host, so messages are fixed-size structs in host byte order;
 * every struct's size is pinned below and every received length is
 * compared with it exactly before a field is read.
 */
#ifndef OVMC_XPROC_PROTO_H
#define OVMC_XPROC_PROTO_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <openvmc/common.h>
#include <openvmc/platform.h>

/* "OVMC" when the first four bytes are read in order on a little-endian host. */
#define XPROC_MAGIC 0x434d564fu
#define XPROC_VERSION 4u
#define XPROC_MAX_ARGS 5u
/* The descriptors an ATTACH carries, in this order: memory and interrupt,
 * then optionally the mailbox and its doorbell. */
#define XPROC_ATTACH_FDS 2u
#define XPROC_ATTACH_MAX_FDS 4u
#define XPROC_FD_MEM 0
#define XPROC_FD_IRQ 1
#define XPROC_FD_MAILBOX 2
#define XPROC_FD_BELL 3

enum xproc_type {
	XPROC_ATTACH = 1, /* client -> server, fds: memory, interrupt */
	XPROC_ATTACH_REPLY = 2,
	XPROC_HCALL = 3,
	XPROC_HCALL_REPLY = 4,
	XPROC_NODE = 5,
	XPROC_NODE_REPLY = 6,
	XPROC_DETACH = 7, /* orderly goodbye, no reply */
	XPROC_HCALL_PAIR = 8, /* the second only if the first returned H_SUCCESS */
	XPROC_HCALL_PAIR_REPLY = 9,
	XPROC_RDMA = 10, /* client -> server, no reply: reports alone */
	XPROC_SYNC = 11, /* mailbox only: run the posted pairs; answered by its header */
	XPROC_TYPE_COUNT,
};

struct xproc_hdr {
	uint32_t magic;
	uint16_t version;
	uint16_t type;
	uint32_t seq;	   /* a reply echoes its request's */
	uint32_t reserved; /* zero; HCALL_REPLY, HCALL_PAIR_REPLY: XPROC_REPLY_IRQ */
};

/* The partition's interrupt was raised while its hcall was served, and its
 * eventfd was not written: the reply brings it. */
#define XPROC_REPLY_IRQ 1u

struct xproc_attach {
	struct xproc_hdr h;
	uint64_t mem_size;
};

struct xproc_attach_reply {
	struct xproc_hdr h;
	int32_t status; /* 0 or a negative errno */
	uint32_t partition;
};

struct xproc_hcall {
	struct xproc_hdr h;
	uint64_t opcode;
	uint32_t nargs;
	uint32_t reserved;
	uint64_t args[XPROC_MAX_ARGS];
};

struct xproc_call {
	uint64_t opcode;
	uint32_t nargs;
	uint32_t reserved;
	uint64_t args[XPROC_MAX_ARGS];
};

struct xproc_hcall_pair {
	struct xproc_hdr h;
	struct xproc_call call[2];
};

struct xproc_hcall_pair_reply {
	struct xproc_hdr h;
	int64_t rc[2]; /* rc[1] repeats rc[0] when the second was not made */
};

struct xproc_hcall_reply {
	struct xproc_hdr h;
	int64_t rc;
	uint64_t rets[9];
};

/* One H_COPY_RDMA out of the hypervisor window that the client executed. */
struct xproc_rdma_report {
	int64_t rc;
	uint64_t args[5]; /* len, source LIOBN and address, destination LIOBN and address */
};

#define XPROC_MAX_REPORTS 16u

/*
 * Reports of such copies: the body of RDMA, or a trailer after the body of
 * HCALL, HCALL_PAIR or DETACH (applied before the request). 8 + 48 * count
 * bytes, count 1 to XPROC_MAX_REPORTS.
 */
struct xproc_reports {
	uint32_t count;
	uint32_t reserved;
	struct xproc_rdma_report r[XPROC_MAX_REPORTS];
};

#define XPROC_REPORTS_LEN(count) \
	(offsetof(struct xproc_reports, r) + (count) * sizeof(struct xproc_rdma_report))

/* With status 0 and a shared hypervisor window, one descriptor: the window. */
struct xproc_node_reply {
	struct xproc_hdr h;
	int32_t status; /* 0 or -ENODEV */
	uint32_t unit_address;
	uint32_t drc_index;
	uint32_t liobn_local;
	uint32_t liobn_remote;
	uint32_t reserved;
	uint64_t window_local;
	uint64_t window_remote;
};

/* Any padding would make the layout depend on the compiler: pin it. */
_Static_assert(sizeof(struct xproc_hdr) == 16, "xproc header layout");
_Static_assert(sizeof(struct xproc_attach) == 24, "ATTACH layout");
_Static_assert(sizeof(struct xproc_attach_reply) == 24, "ATTACH_REPLY layout");
_Static_assert(sizeof(struct xproc_hcall) == 72, "HCALL layout");
_Static_assert(sizeof(struct xproc_hcall_reply) == 96, "HCALL_REPLY layout");
_Static_assert(sizeof(struct xproc_node_reply) == 56, "NODE_REPLY layout");
_Static_assert(sizeof(struct xproc_hcall_pair) == 128, "HCALL_PAIR layout");
_Static_assert(sizeof(struct xproc_hcall_pair_reply) == 32, "HCALL_PAIR_REPLY layout");
_Static_assert(sizeof(struct xproc_rdma_report) == 48, "RDMA report layout");
_Static_assert(XPROC_REPORTS_LEN(1) == 56 &&
		       sizeof(struct xproc_reports) == XPROC_REPORTS_LEN(XPROC_MAX_REPORTS),
	       "reports layout");

/* Receive buffer: larger than every message so that a longer one is seen. */
union xproc_msg {
	struct xproc_hdr h;
	struct xproc_attach attach;
	struct xproc_attach_reply attach_reply;
	struct xproc_hcall hcall;
	struct xproc_hcall_reply hcall_reply;
	struct xproc_node_reply node_reply;
	struct xproc_hcall_pair hcall_pair;
	struct xproc_hcall_pair_reply hcall_pair_reply;
	/* The largest: HCALL_PAIR with every report, 128 + 776 bytes. */
	unsigned char raw[1024];
};

_Static_assert(sizeof(struct xproc_hcall_pair) + sizeof(struct xproc_reports) <
		       sizeof(union xproc_msg),
	       "a request with every report fits, and a longer one is seen");

void ovmc_xp_hdr(struct xproc_hdr *h, enum xproc_type type, uint32_t seq);

/*
 * The mailbox (docs/xproc.md): one page of a memfd the client made and
 * sealed, mapped by both ends, carrying HCALL and HCALL_PAIR and their
 * answers instead of the socket. Each side writes only its own half
 * and publishes it by its sequence word last; the reader copies the
 * record out before it looks at it, as the writer may change it at any
 * time. The client rings the doorbell (an eventfd the server watches
 * edge-triggered and never reads) and sleeps on rep_seq (a futex).
 */
#define XPROC_MB_REQ_MAX sizeof(union xproc_msg)
#define XPROC_MB_REP_MAX 128u

/*
 * A posted hcall pair (docs/xproc.md, "Posted pairs"): an H_COPY_RDMA
 * from partition memory into the hypervisor window and the H_SEND_CRQ
 * that signals it, which the client has already answered H_SUCCESS,
 * under the grant of `epoch`.
 */
struct xproc_posted {
	uint32_t epoch;
	uint32_t reserved;
	struct xproc_call call[2];
};

#define XPROC_POST_SLOTS 8u
/* The grant word: epoch << 32 | sends allowed in that epoch (0: closed). */
#define XPROC_GRANT(epoch, n) ((uint64_t)(epoch) << 32 | (uint32_t)(n))

struct xproc_mailbox {
	uint32_t req_seq; /* client: req[] holds the request of this sequence */
	uint32_t req_len;
	uint32_t rep_seq; /* server: rep[] holds the answer to it; the futex */
	uint32_t rep_len;
	uint32_t waiting; /* client: asleep on rep_seq, wake it */
	/* client: RDMA messages went on the socket before this request; the
	 * server reads them first, so that every report comes in order. */
	uint32_t after_socket;
	uint32_t post_prod; /* client: pairs posted, in all */
	uint32_t post_cons; /* server: pairs taken, in all */
	/* server: XPROC_GRANT(epoch, n): while the link is up in `epoch`, the
	 * client may have posted n H_SEND_CRQ of that epoch in all. */
	uint64_t grant;
	uint32_t reserved[6];
	unsigned char req[XPROC_MB_REQ_MAX];
	unsigned char rep[XPROC_MB_REP_MAX];
	struct xproc_posted post[XPROC_POST_SLOTS];
};

#define XPROC_MB_SIZE OVMC_PAGE_SIZE
_Static_assert(sizeof(struct xproc_posted) == 120, "posted pair layout");
_Static_assert(offsetof(struct xproc_mailbox, req) == 64, "mailbox layout");
_Static_assert(sizeof(struct xproc_mailbox) <= XPROC_MB_SIZE, "the mailbox is one page");
_Static_assert(sizeof(struct xproc_hcall_reply) <= XPROC_MB_REP_MAX, "every answer fits");

/* Client: publish request `seq` (`len` <= XPROC_MB_REQ_MAX) and ring `bell`. */
int ovmc_xp_mb_post(struct xproc_mailbox *mb, int bell, const void *msg, size_t len,
		    uint32_t seq, bool after_socket);
/*
 * Client: wait up to `ms` for the answer to `seq`, then copy it to `out`.
 * Returns its length, -ETIMEDOUT, -EINTR, or -EMSGSIZE for a length no
 * answer has.
 */
ssize_t ovmc_xp_mb_wait(struct xproc_mailbox *mb, uint32_t seq, int ms, union xproc_msg *out);
/*
 * Server: a request newer than *last, copied to `out`: its length (and
 * *last is its sequence, *after_socket its flag), 0 if there is none,
 * -EMSGSIZE if its length is impossible, -EPROTO if its header does not
 * carry its sequence.
 */
ssize_t ovmc_xp_mb_take(struct xproc_mailbox *mb, uint32_t *last, union xproc_msg *out,
			bool *after_socket);
/* Server: publish the answer (`len` <= XPROC_MB_REP_MAX) and wake the client. */
void ovmc_xp_mb_answer(struct xproc_mailbox *mb, const void *msg, size_t len);

/*
 * Send one message, with `nfds` descriptors attached (SCM_RIGHTS).
 * MSG_NOSIGNAL is always added. Returns 0 or a negative errno; a short send
 * (which SOCK_SEQPACKET never does) is -EMSGSIZE.
 */
int ovmc_xp_send(int sock, const void *buf, size_t len, int flags, const int *fds, unsigned nfds);

/*
 * Receive one message into `buf`. Descriptors that came with it are
 * returned in fds[] up to `max_fds` (close-on-exec); any beyond are closed
 * here, so none ever leaks. *nfds receives the number that arrived (it may
 * exceed max_fds), *truncated whether the message or its descriptors did
 * not fit. Returns the length, 0 at end of stream (or for an empty
 * message), or a negative errno.
 */
ssize_t ovmc_xp_recv(int sock, void *buf, size_t size, int flags, int *fds, unsigned max_fds,
		     unsigned *nfds, bool *truncated);

void ovmc_xp_close_fds(const int *fds, unsigned n);

/*
 * A server's listening socket (the partitions' and the guests'): the file,
 * the directory made for it, and an epoll set holding the socket (data.ptr
 * NULL) and a timer (data.ptr `timer_tag`) for the server's deadlines.
 */
struct ovmc_xp_listener {
	char *path;
	char *made_dir; /* the socket's directory, if we created it */
	int fd;		/* listening, non-blocking, close-on-exec */
	int ep;
	int tfd;	/* timerfd, not armed */
	/* The socket file we bound, so that closing removes only ours. */
	dev_t dev;
	ino_t ino;
};

/*
 * The checks of docs/xproc.md, "Checks", then bind and listen: the
 * directory holding `path` must be ours alone (mode & 077 == 0; made 0700
 * if missing); a socket file left by a server that died (it refuses a
 * connection of `type`) is removed (*removed); a live server's, or a path
 * that is not a socket, is -EEXIST (also when another server binds it
 * first). The removal and the listening are logged through `log` (may be
 * NULL), each line starting with "`who`: ". Returns 0, -EINVAL (empty
 * path), -ENAMETOOLONG, -EPERM, -ENOTDIR, -EEXIST, -ENOMEM or another
 * -errno; on failure nothing is left behind.
 */
int ovmc_xp_listener_open(struct ovmc_xp_listener *l, const char *path, int type,
			  void *timer_tag, const char *who, ovmc_log_fn log, void *log_user);
/* Close it; the socket file goes if it is still ours, the directory if empty. */
void ovmc_xp_listener_close(struct ovmc_xp_listener *l);

#endif
