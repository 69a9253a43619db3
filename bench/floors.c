// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The floors: what a round trip costs with nothing of openvmc in it. A
 * SEQPACKET socketpair between two processes (the cost of one
 * cross-process round trip), a bare libfuse3 low-level echo file with the
 * options of openvmc's device (direct_io, nonseekable, stream: what any
 * FUSE device costs), and memcpy (what the data itself costs).
 */
#define FUSE_USE_VERSION 35
#include "bench.h"

#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define FUSE_MAGIC 0x65735546
/* memcpy round trips timed together: one alone is below the clock's resolution. */
#define MEMCPY_BATCH 64
/* What the echo file holds before it refuses a write (the benchmark keeps
 * at most a few messages in flight). */
#define ECHO_QUEUE_MAX 256

void bench_memcpy_rtt(size_t size, unsigned n, double *median, double *p99)
{
	static char a[BENCH_MAX_SIZE], b[BENCH_MAX_SIZE], c[BENCH_MAX_SIZE];
	unsigned batches = n / MEMCPY_BATCH + 1;
	double *v = calloc(batches, sizeof(*v));

	if (!v)
		bench_die("out of memory");
	memset(a, 1, sizeof(a));
	for (unsigned i = 0; i < batches; i++) {
		uint64_t t0 = bench_now_ns();

		for (unsigned k = 0; k < MEMCPY_BATCH; k++) {
			/* In and out, as a message crosses a channel and back. */
			memcpy(b, a, size);
			__asm__ __volatile__("" ::"r"(b) : "memory");
			memcpy(c, b, size);
			__asm__ __volatile__("" ::"r"(c) : "memory");
		}
		v[i] = (double)(bench_now_ns() - t0) / 1000.0 / MEMCPY_BATCH;
	}
	bench_stats(v, batches, median, p99);
	free(v);
}

/* ---- socketpair ---- */

static void echo_peer(int fd)
{
	static char buf[BENCH_MAX_SIZE];

	for (;;) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || send(fd, buf, (size_t)n, 0) != n)
			_exit(0);
	}
}

int bench_socketpair_start(pid_t *pid)
{
	pid_t parent = getpid();
	int sv[2];

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv))
		bench_die("socketpair: %s", strerror(errno));
	*pid = fork();
	if (*pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (*pid == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		close(sv[0]);
		echo_peer(sv[1]);
	}
	bench_track_pid(*pid);
	close(sv[1]);
	return sv[0];
}

/* ---- the bare FUSE echo file ---- */

/*
 * Open flags as the kernel reads them (uapi linux/fuse.h): libfuse 3.14
 * has no bit for FOPEN_STREAM, so open is answered with the raw reply, as
 * openvmc's device does.
 */
#define K_FOPEN_DIRECT_IO (1u << 0)
#define K_FOPEN_NONSEEKABLE (1u << 2)
#define K_FOPEN_STREAM (1u << 4)

struct k_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id;
};

struct echo_msg {
	struct echo_msg *next;
	size_t len;
	char data[];
};

/* Single-threaded (fuse_session_loop): messages written and not read yet,
 * and reads waiting for a message, both in order. */
struct echo {
	struct echo_msg *head, *tail;
	unsigned queued;
	fuse_req_t parked[ECHO_QUEUE_MAX];
	size_t parked_size[ECHO_QUEUE_MAX];
	unsigned parked_first, parked_n;
};

static void echo_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st = {.st_ino = ino, .st_mode = S_IFREG | 0600, .st_nlink = 1};

	(void)fi;
	st.st_uid = getuid();
	st.st_gid = getgid();
	fuse_reply_attr(req, &st, 1.0);
}

static void echo_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct k_open_out out = {
		.open_flags = K_FOPEN_DIRECT_IO | K_FOPEN_NONSEEKABLE | K_FOPEN_STREAM};
	struct iovec iov = {.iov_base = &out, .iov_len = sizeof(out)};

	(void)ino;
	(void)fi;
	fuse_reply_iov(req, &iov, 1);
}

static void echo_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	struct echo *e = fuse_req_userdata(req);
	struct echo_msg *m = e->head;

	(void)ino;
	(void)off;
	(void)fi;
	if (!m) {
		if (e->parked_n == ECHO_QUEUE_MAX) {
			fuse_reply_err(req, EAGAIN);
			return;
		}
		e->parked[(e->parked_first + e->parked_n) % ECHO_QUEUE_MAX] = req;
		e->parked_size[(e->parked_first + e->parked_n) % ECHO_QUEUE_MAX] = size;
		e->parked_n++;
		return;
	}
	e->head = m->next;
	if (!e->head)
		e->tail = NULL;
	e->queued--;
	fuse_reply_buf(req, m->data, m->len < size ? m->len : size);
	free(m);
}

static void echo_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	struct echo *e = fuse_req_userdata(req);
	struct echo_msg *m;

	(void)ino;
	(void)off;
	(void)fi;
	if (e->parked_n) {
		unsigned i = e->parked_first;
		size_t want = e->parked_size[i];

		e->parked_first = (i + 1) % ECHO_QUEUE_MAX;
		e->parked_n--;
		fuse_reply_buf(e->parked[i], buf, size < want ? size : want);
		fuse_reply_write(req, size);
		return;
	}
	if (e->queued == ECHO_QUEUE_MAX) {
		fuse_reply_err(req, EBUSY);
		return;
	}
	m = malloc(sizeof(*m) + size);
	if (!m) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	m->next = NULL;
	m->len = size;
	memcpy(m->data, buf, size);
	if (e->tail)
		e->tail->next = m;
	else
		e->head = m;
	e->tail = m;
	e->queued++;
	fuse_reply_write(req, size);
}

static void echo_ok(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops echo_ops = {
	.getattr = echo_getattr,
	.open = echo_open,
	.read = echo_read,
	.write = echo_write,
	.flush = echo_ok,
	.release = echo_ok,
};

static void echo_serve(const char *path)
{
	char prog[] = "ovmc-bench", dash_o[] = "-o", opts[] = "fsname=ovmc-bench,auto_unmount";
	char *argv[] = {prog, dash_o, opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	static struct echo e;
	struct fuse_session *se = fuse_session_new(&args, &echo_ops, sizeof(echo_ops), &e);

	if (!se || fuse_session_mount(se, path))
		_exit(1);
	fuse_session_loop(se);
	fuse_session_unmount(se);
	fuse_session_destroy(se);
	_exit(0);
}

pid_t bench_fuse_echo_start(const char *path)
{
	uint64_t end = bench_now_ns() + 10000000000ull;
	pid_t parent = getpid();
	int fd = open(path, O_WRONLY | O_CREAT | O_CLOEXEC, 0600);
	pid_t pid;

	if (fd < 0)
		bench_die("%s: %s", path, strerror(errno));
	close(fd);
	bench_track_mount(path);
	pid = fork();
	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(0);
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		echo_serve(path);
	}
	bench_track_pid(pid);
	for (;;) {
		struct statfs sfs;
		int status;

		if (statfs(path, &sfs) == 0 && sfs.f_type == FUSE_MAGIC)
			return pid;
		if (waitpid(pid, &status, WNOHANG) == pid)
			bench_die("the bare FUSE echo file could not be mounted on %s", path);
		if (bench_now_ns() > end)
			bench_die("the bare FUSE echo file is not mounted after 10 s");
		bench_sleep_ms(2);
	}
}
