// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The cross-process server (src/platform/xproc_server.c) against a hostile
 * partition. Each input is one connection: it attaches (byte 0, bit 0: with
 * a mailbox), then runs operations until the input ends or the server
 * drops it, then goes away. Whatever it sends, the server never crashes,
 * never blocks (every call below returns), answers a well-formed request
 * in the mailbox afterwards or drops the connection, and once the
 * connection is gone holds no client and no descriptor more than before.
 *
 * An operation is a byte `op`, a 16-bit length and up to that many bytes:
 *  - op & 3 == 0: the bytes as one record on the socket;
 *  - op & 3 == 1: the bytes as a request in the mailbox, rung (unless
 *    op & 0x08), with `after_socket` = op & 0x40, the length published as
 *    given (op & 0x20) or as copied, and a sequence number from the input
 *    (op & 0x80) or the header's;
 *  - op & 3 == 2: the doorbell rung for nothing, with the length as value;
 *  - op & 3 == 3: length % 10 posted pairs from the bytes (op & 0x10:
 *    shaped as the pair that sends, with the grant's epoch), rung unless
 *    op & 0x08.
 * With op & 0x10 the record starts with a valid header (magic, version, a
 * type from its first byte, the next sequence number), so the fuzzer gets
 * past the header checks at once. After each operation the server runs its
 * dispatch and flush, and everything it sent is read (and any descriptor
 * closed).
 */
#include "fuzz.h"

#include "platform/xproc_proto.h"

#include <openvmc/machine.h>
#include <openvmc/wire.h>
#include <openvmc/xproc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#define MEM_SIZE (64u * 1024u)
#define MAX_RECORD (sizeof(union xproc_msg) + 64u)

static struct {
	struct ovmc_machine *m;
	struct ovmc_xproc_server *srv;
	char dir[64];
	char path[80];
	int base_fds;
} g;

/* The hypervisor end echoes what the partition sends: replies raise interrupts. */
static void created(void *arg, struct ovmc_vmc *vmc)
{
	(void)arg;
	ovmc_vmc_hv_register(vmc);
}

static void pending(void *arg, struct ovmc_vmc *vmc)
{
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];

	(void)arg;
	while (ovmc_vmc_hv_receive(vmc, e) == 1)
		if (e[0] != OVMC_CRQ_TRANSPORT)
			ovmc_vmc_hv_send(vmc, e);
}

/*
 * Descriptors of the kinds the server and this partition make (sockets,
 * memfds, eventfds and the like); libFuzzer opens pipes of its own as it
 * goes, which are not counted. With `say`, every open one is listed (for
 * a finding).
 */
static int count_fds(bool say)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		fuzz_fail("opendir /proc/self/fd: %s", strerror(errno));
	while ((e = readdir(d))) {
		char path[300], target[256];
		ssize_t len;

		snprintf(path, sizeof(path), "/proc/self/fd/%s", e->d_name);
		len = readlink(path, target, sizeof(target) - 1);
		if (len <= 0)
			continue;
		target[len] = '\0';
		if (say)
			fprintf(stderr, "open: %s -> %s\n", e->d_name, target);
		if (!strncmp(target, "socket:", 7) || !strncmp(target, "/memfd:", 7) ||
		    !strncmp(target, "anon_inode:", 11))
			n++;
	}
	closedir(d);
	return n;
}

static void teardown(void)
{
	ovmc_xproc_server_free(g.srv);
	ovmc_machine_free(g.m);
}

#define DIR_PREFIX "ovmc-fuzz-xproc."

/* A finding aborts before teardown(): what such a run left is removed here. */
static void remove_stale(void)
{
	DIR *d = opendir("/tmp");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		char path[300];
		long pid;
		char *end;

		if (strncmp(e->d_name, DIR_PREFIX, strlen(DIR_PREFIX)))
			continue;
		pid = strtol(e->d_name + strlen(DIR_PREFIX), &end, 10);
		if (*end || pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		snprintf(path, sizeof(path), "/tmp/%s/sock", e->d_name);
		unlink(path);
		snprintf(path, sizeof(path), "/tmp/%s", e->d_name);
		rmdir(path);
	}
	closedir(d);
}

static void setup(void)
{
	struct ovmc_machine_hooks hooks = {.vmc_created = created, .vmc_pending = pending};
	struct ovmc_xproc_server_config c = {0};
	int rc;

	remove_stale();
	/* The server makes the directory, 0700, and removes it when freed. */
	snprintf(g.dir, sizeof(g.dir), "/tmp/" DIR_PREFIX "%d", (int)getpid());
	snprintf(g.path, sizeof(g.path), "%s/sock", g.dir);
	rc = ovmc_machine_new(&hooks, &g.m);
	if (rc)
		fuzz_fail("ovmc_machine_new: %d", rc);
	c.socket_path = g.path;
	c.machine = g.m;
	c.vmc_present = true;
	c.request_vmc_rc = OVMC_H_SUCCESS;
	c.hv_window_size = 64u * 1024u;
	c.hv_queue_entries = 16;
	c.defer_replies = true;
	c.posting = true;
	rc = ovmc_xproc_server_new(&c, &g.srv);
	if (rc)
		fuzz_fail("ovmc_xproc_server_new: %d", rc);
	atexit(teardown);
	g.base_fds = count_fds(false);
}

static int memfd(size_t size)
{
	int fd = memfd_create("fuzz", MFD_CLOEXEC | MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, (off_t)size) < 0 ||
	    fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW) < 0)
		fuzz_fail("memfd: %s", strerror(errno));
	return fd;
}

/* Let the server run, and read what it sent. False once it hung up. */
static bool pump(int sock)
{
	for (int i = 0; i < 4; i++) {
		ovmc_xproc_server_dispatch(g.srv);
		ovmc_xproc_server_flush(g.srv);
	}
	for (;;) {
		union xproc_msg m;
		int fds[4];
		unsigned nfds = 0;
		bool trunc;
		ssize_t n = ovmc_xp_recv(sock, &m, sizeof(m), MSG_DONTWAIT, fds, 4, &nfds, &trunc);

		ovmc_xp_close_fds(fds, nfds < 4 ? nfds : 4);
		if (n == -EAGAIN)
			return true;
		if (n <= 0 && n != -EINTR)
			return false;
	}
}

static size_t record(struct fuzz_in *in, uint8_t op, uint8_t *buf, uint32_t *seq, uint16_t *len)
{
	size_t n;

	*len = fuzz_u16(in);
	n = *len % (MAX_RECORD + 1);
	fuzz_bytes(in, buf, n);
	if ((op & 0x10) && n >= sizeof(struct xproc_hdr)) {
		struct xproc_hdr *h = (struct xproc_hdr *)buf;

		ovmc_xp_hdr(h, (enum xproc_type)(buf[0] % (XPROC_TYPE_COUNT + 1)), ++*seq);
	}
	return n;
}

/*
 * Whatever came before, a well-formed request in the mailbox (the socket
 * read first) is answered, or the connection is dropped: never stranded.
 */
static void must_answer(int sock, struct xproc_mailbox *mb, int bell)
{
	/* No operation publishes this one: r << 16 | r has equal halves, and
	 * the headers count up from 2. */
	const uint32_t seq = 0xfffffffeu;
	struct xproc_hcall q;
	union xproc_msg m;
	int rc;

	memset(&q, 0, sizeof(q));
	ovmc_xp_hdr(&q.h, XPROC_HCALL, seq);
	q.opcode = 0xf000;
	rc = ovmc_xp_mb_post(mb, bell, &q, sizeof(q), seq, true);
	if (rc)
		fuzz_fail("doorbell: %s", strerror(-rc));
	for (int i = 0; i < 64; i++) {
		if (!pump(sock))
			return;
		if (ovmc_xp_mb_wait(mb, seq, 0, &m) >= 0)
			return;
	}
	fuzz_fail("a request in the mailbox was neither answered nor dropped");
}

static void post(struct xproc_mailbox *mb, int bell, uint8_t op, uint16_t raw_len,
		 const uint8_t *buf, size_t n)
{
	unsigned count = raw_len % 10u;
	uint32_t prod = __atomic_load_n(&mb->post_prod, __ATOMIC_RELAXED);
	uint64_t v = 1;

	for (unsigned i = 0; i < count; i++) {
		struct xproc_posted *e = &mb->post[(prod + i) % XPROC_POST_SLOTS];
		size_t off = i * sizeof(*e) % (MAX_RECORD - sizeof(*e));

		memcpy(e, n >= off + sizeof(*e) ? buf + off : buf, n >= sizeof(*e) ? sizeof(*e) : 0);
		if (op & 0x10) {
			e->epoch = (uint32_t)(__atomic_load_n(&mb->grant, __ATOMIC_RELAXED) >> 32);
			e->reserved = 0;
			e->call[0].opcode = OVMC_H_COPY_RDMA;
			e->call[0].nargs = 5;
			e->call[0].reserved = 0;
			e->call[1].opcode = OVMC_H_SEND_CRQ;
			e->call[1].nargs = 3;
			e->call[1].reserved = 0;
		}
	}
	__atomic_store_n(&mb->post_prod, prod + count, __ATOMIC_RELEASE);
	if (!(op & 0x08) && write(bell, &v, sizeof(v)) < 0 && errno != EAGAIN)
		fuzz_fail("doorbell: %s", strerror(errno));
}

static void run(struct fuzz_in *in, int sock, struct xproc_mailbox *mb, int bell)
{
	uint32_t seq = 1;

	while (in->n) {
		uint8_t op = fuzz_u8(in), buf[MAX_RECORD];
		uint16_t raw_len;
		size_t n = record(in, op, buf, &seq, &raw_len);
		uint64_t v;

		switch (op & 3) {
		case 0:
			send(sock, buf, n, MSG_DONTWAIT | MSG_NOSIGNAL);
			break;
		case 1:
			if (!mb)
				break;
			memcpy(mb->req, buf, n < XPROC_MB_REQ_MAX ? n : XPROC_MB_REQ_MAX);
			mb->req_len = op & 0x20 ? raw_len : (uint32_t)n;
			mb->after_socket = !!(op & 0x40);
			__atomic_store_n(&mb->req_seq,
					 op & 0x80 || n < sizeof(struct xproc_hdr)
						 ? (uint32_t)raw_len << 16 | raw_len
						 : ((struct xproc_hdr *)buf)->seq,
					 __ATOMIC_RELEASE);
			v = 1;
			if (!(op & 0x08) && write(bell, &v, sizeof(v)) < 0 && errno != EAGAIN)
				fuzz_fail("doorbell: %s", strerror(errno));
			break;
		case 2:
			v = raw_len ? raw_len : 1;
			if (mb && write(bell, &v, sizeof(v)) < 0 && errno != EAGAIN)
				fuzz_fail("doorbell: %s", strerror(errno));
			break;
		default:
			if (mb)
				post(mb, bell, op, raw_len, buf, n);
			break;
		}
		if (!pump(sock))
			return;
	}
	if (mb)
		must_answer(sock, mb, bell);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct fuzz_in in = {data, size};
	struct sockaddr_un sa = {.sun_family = AF_UNIX};
	struct xproc_attach a;
	struct xproc_mailbox *mb = NULL;
	bool with_mb = fuzz_u8(&in) & 1;
	int fds[4], sock, bell = -1;

	if (!g.srv)
		setup();
	sock = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	memcpy(sa.sun_path, g.path, strlen(g.path));
	if (sock < 0 || connect(sock, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		fuzz_fail("connect: %s", strerror(errno));
	fds[0] = memfd(MEM_SIZE);
	fds[1] = eventfd(0, EFD_CLOEXEC);
	if (with_mb) {
		fds[2] = memfd(XPROC_MB_SIZE);
		fds[3] = bell = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		mb = mmap(NULL, XPROC_MB_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fds[2], 0);
		if (mb == MAP_FAILED)
			fuzz_fail("mmap: %s", strerror(errno));
	}
	memset(&a, 0, sizeof(a));
	ovmc_xp_hdr(&a.h, XPROC_ATTACH, 1);
	a.mem_size = MEM_SIZE;
	if (ovmc_xp_send(sock, &a, sizeof(a), 0, with_mb ? (int[]){fds[0], fds[1], fds[2], bell}
						     : fds,
			 with_mb ? 4 : 2))
		fuzz_fail("ATTACH not sent");
	close(fds[0]);
	close(fds[1]);
	if (with_mb)
		close(fds[2]);
	if (pump(sock))
		run(&in, sock, mb, bell);

	close(sock);
	if (mb)
		munmap(mb, XPROC_MB_SIZE);
	if (bell >= 0)
		close(bell);
	for (int i = 0; i < 100 && ovmc_xproc_server_clients(g.srv); i++)
		ovmc_xproc_server_dispatch(g.srv);
	FUZZ_CHECK(ovmc_xproc_server_clients(g.srv) == 0);
	if (count_fds(false) != g.base_fds)
		count_fds(true);
	FUZZ_CHECK(count_fds(false) == g.base_fds);
	return 0;
}
