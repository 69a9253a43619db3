// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * preloadclient: the device-ABI behaviours that matter for a program run
 * under the preload library (vmc-run) beyond what devclient checks: the
 * ioctls the VFS answers (against /dev/null, a character device on
 * devtmpfs whose driver has no ioctl), poll/select/epoll, O_NONBLOCK and
 * the generic ioctls, signals with and without SA_RESTART, fork, dup, exec,
 * the open and stat variants, stdio, a partner reset and a daemon that
 * dies. It uses only libc on the device path, so it would run unchanged
 * against a character device.
 *
 *   preloadclient SCENARIO PATH [ID]
 *
 * Prints what it saw; exits 0 when everything matched, 1 otherwise.
 */
#include <openvmc/ibmvmc.h>

#include <errno.h>
#include <fcntl.h>
#include <linux/fiemap.h>
#include <linux/fs.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/select.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_STATE 3
#define WAIT_MS 10000

static const char *scenario = "preloadclient";
static const char *self_exe;

static int fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int fail(const char *fmt, ...)
{
	va_list ap;

	fprintf(stderr, "preloadclient %s: ", scenario);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	return 1;
}

static const char *ename(int err)
{
	const char *n = strerrorname_np(err);

	return n ? n : "0";
}

static void sleep_ms(int ms)
{
	poll(NULL, 0, ms);
}

static int open_dev(const char *path, int flags)
{
	int fd = open(path, flags);

	if (fd < 0)
		fail("open %s: %s", path, ename(errno));
	return fd;
}

static int wait_ready(int fd)
{
	struct ibmvmc_query_struct q = {0};

	for (int ms = 0; ms < WAIT_MS; ms += 10) {
		if (ioctl(fd, VMC_IOCTL_QUERY, &q) != 0)
			return fail("QUERY: %s", ename(errno));
		if (q.state == READY_STATE)
			return 0;
		sleep_ms(10);
	}
	return fail("not ready (state %d)", q.state);
}

static int set_id(int fd, const char *text)
{
	unsigned char id[HMC_ID_LEN] = {0};

	memcpy(id, text, strnlen(text, HMC_ID_LEN));
	for (int ms = 0; ioctl(fd, VMC_IOCTL_SETHMCID, id) != 0; ms += 5) {
		if ((errno != EBUSY && errno != ENOBUFS) || ms > WAIT_MS)
			return fail("SETHMCID: %s", ename(errno));
		sleep_ms(5);
	}
	return 0;
}

static int session(const char *path, const char *id, int flags)
{
	int fd = open_dev(path, flags);

	if (fd < 0)
		return -1;
	if (wait_ready(fd) || set_id(fd, id)) {
		close(fd);
		return -1;
	}
	return fd;
}

/* One message; EBUSY (open not complete, no buffer) is retried. */
static int send_msg(int fd, const char *msg)
{
	size_t len = strlen(msg);

	for (int ms = 0;; ms++) {
		ssize_t n = write(fd, msg, len);

		if (n == (ssize_t)len)
			return 0;
		if (n >= 0 || errno != EBUSY || ms > WAIT_MS)
			return fail("write \"%s\": %s", msg, n < 0 ? ename(errno) : "short");
		sleep_ms(1);
	}
}

static int expect_msg(int fd, const char *want)
{
	char buf[4096];
	ssize_t n = read(fd, buf, sizeof(buf));

	if (n < 0)
		return fail("read (want \"%s\"): %s", want, ename(errno));
	if ((size_t)n != strlen(want) || memcmp(buf, want, (size_t)n) != 0)
		return fail("read \"%.*s\", want \"%s\"", (int)n, buf, want);
	return 0;
}

static int echo(int fd, const char *msg)
{
	return send_msg(fd, msg) || expect_msg(fd, msg);
}

/* Expect a call to have failed with `want`; prints the line the test looks for. */
static int expect_errno(const char *what, long rc, int want)
{
	int err = errno;

	if (rc >= 0)
		return fail("%s: succeeded (%ld), expected %s", what, rc, ename(want));
	if (err != want)
		return fail("%s: %s, expected %s", what, ename(err), ename(want));
	printf("%s: %s\n", what, ename(err));
	return 0;
}

/* ---- ioctls ---- */

struct vfs_case {
	const char *name;
	unsigned long cmd;
	bool setter; /* would change /dev/null as root: only run unprivileged */
};

/*
 * Every number the VFS looks at for a character device (fs/ioctl.c,
 * do_vfs_ioctl), and a few that reach the driver. Through /dev/null an
 * ENOTTY means the number reached its driver (it has no ioctl), except for
 * FIOQSIZE, which the VFS itself answers ENOTTY for anything but regular
 * files, directories and links: a number that reaches ibmvmc's driver gets
 * EINVAL, every other answer must be the same.
 */
static const struct vfs_case vfs_cases[] = {
	{"FIGETBSZ", FIGETBSZ, false},
	{"FIOQSIZE", FIOQSIZE, false},
	{"FS_IOC_FIEMAP", FS_IOC_FIEMAP, false},
	{"FICLONE", FICLONE, false},
	{"FICLONERANGE", FICLONERANGE, false},
	{"FIDEDUPERANGE", FIDEDUPERANGE, false},
	{"FS_IOC_GETFLAGS", FS_IOC_GETFLAGS, false},
	{"FS_IOC_FSGETXATTR", FS_IOC_FSGETXATTR, false},
	{"FS_IOC_SETFLAGS", FS_IOC_SETFLAGS, true},
	{"FS_IOC_FSSETXATTR", FS_IOC_FSSETXATTR, true},
	{"FIFREEZE", FIFREEZE, true},
	{"FITHAW", FITHAW, true},
	{"FIONREAD", FIONREAD, false},
	{"FIBMAP", FIBMAP, false},
	{"TCGETS", TCGETS, false},
};

/* An argument every case can take: zeroes, with a valid source fd where one is read. */
static void *vfs_arg(unsigned long cmd, int zero_fd, unsigned char *buf, size_t size)
{
	memset(buf, 0, size);
	if (cmd == FICLONE)
		return (void *)(intptr_t)zero_fd;
	if (cmd == FICLONERANGE) {
		struct file_clone_range r = {.src_fd = zero_fd};

		memcpy(buf, &r, sizeof(r));
	}
	return buf;
}

static int do_ioctls(const char *path, char **args)
{
	unsigned char id[HMC_ID_LEN] = "RAW-ONE";
	int fd = open_dev(path, O_RDWR), nfd = open("/dev/null", O_RDWR);
	int zero_fd = open("/dev/zero", O_RDONLY);
	int rc = 0, n = 0;

	(void)args;
	if (fd < 0 || nfd < 0 || zero_fd < 0)
		return fail("open: %s", ename(errno));
	/* Old programs pass 1 for "set HMC id": Linux's driver says EINVAL. */
	rc |= expect_errno("ioctl(fd, 1, id)", ioctl(fd, 1, id), EINVAL);
	rc |= expect_errno("FIONREAD", ioctl(fd, FIONREAD, &n), EINVAL);
	for (size_t i = 0; i < sizeof(vfs_cases) / sizeof(vfs_cases[0]); i++) {
		const struct vfs_case *vc = &vfs_cases[i];
		unsigned char a[512], b[512];
		int rn, en, ro, eo, want_r, want_e;

		if (vc->setter && geteuid() == 0) {
			printf("%s: skipped as root (it would change /dev/null)\n", vc->name);
			continue;
		}
		rn = ioctl(nfd, vc->cmd, vfs_arg(vc->cmd, zero_fd, a, sizeof(a)));
		en = rn < 0 ? errno : 0;
		ro = ioctl(fd, vc->cmd, vfs_arg(vc->cmd, zero_fd, b, sizeof(b)));
		eo = ro < 0 ? errno : 0;
		want_r = rn;
		want_e = en;
		if (en == ENOTTY && vc->cmd != FIOQSIZE)
			want_e = EINVAL; /* it reached the driver */
		if ((want_e ? -1 : want_r) != ro || want_e != eo || (!eo && memcmp(a, b, 64) != 0)) {
			rc |= fail("%s: %d %s, /dev/null gives %d %s (expected %s)", vc->name, ro,
				   ename(eo), rn, ename(en), ename(want_e));
			continue;
		}
		printf("%s: %s as a character device on devtmpfs (/dev/null: %s)\n", vc->name,
		       eo ? ename(eo) : "0", en ? ename(en) : "0");
	}
	close(zero_fd);
	close(nfd);
	close(fd);
	return rc;
}

/* ---- readiness ---- */

static int do_poll(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	int ep = epoll_create1(EPOLL_CLOEXEC);
	struct epoll_event ev = {.events = EPOLLIN}, got;
	struct pollfd p = {.events = POLLIN};
	struct timeval tv = {.tv_usec = 200000};
	fd_set rd;

	if (fd < 0 || ep < 0 || echo(fd, "first"))
		return 1;
	p.fd = fd;
	ev.data.fd = fd;
	if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) != 0)
		return fail("epoll_ctl: %s", ename(errno));
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	if (poll(&p, 1, 200) != 0 || select(fd + 1, &rd, NULL, NULL, &tv) != 0 ||
	    epoll_wait(ep, &got, 1, 200) != 0)
		return fail("readable with nothing queued");
	printf("nothing queued: poll, select and epoll time out\n");
	if (send_msg(fd, "second"))
		return 1;
	tv.tv_sec = 5;
	FD_ZERO(&rd);
	FD_SET(fd, &rd);
	if (poll(&p, 1, 5000) != 1 || !(p.revents & POLLIN))
		return fail("poll: revents 0x%x", p.revents);
	if (select(fd + 1, &rd, NULL, NULL, &tv) != 1 || !FD_ISSET(fd, &rd))
		return fail("select: not readable");
	if (epoll_wait(ep, &got, 1, 5000) != 1 || !(got.events & EPOLLIN))
		return fail("epoll: not readable");
	printf("a message queued: POLLIN, select readable, EPOLLIN\n");
	if (expect_msg(fd, "second"))
		return 1;
	if (poll(&p, 1, 100) != 0 || epoll_wait(ep, &got, 1, 100) != 0)
		return fail("readable after the read");
	printf("after the read: nothing\n");
	close(ep);
	close(fd);
	return 0;
}

static int do_nonblock(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	char buf[64];
	int on = 1, off = 0, rc = 0;

	if (fd < 0 || echo(fd, "x"))
		return 1;
	if (fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK) != 0)
		return fail("F_SETFL: %s", ename(errno));
	rc |= expect_errno("read after F_SETFL O_NONBLOCK", read(fd, buf, sizeof(buf)), EAGAIN);
	if (ioctl(fd, FIONBIO, &off) != 0 || (fcntl(fd, F_GETFL) & O_NONBLOCK))
		return fail("FIONBIO 0 did not clear O_NONBLOCK");
	if (ioctl(fd, FIONBIO, &on) != 0 || !(fcntl(fd, F_GETFL) & O_NONBLOCK))
		return fail("FIONBIO 1 did not set O_NONBLOCK");
	rc |= expect_errno("read after FIONBIO 1", read(fd, buf, sizeof(buf)), EAGAIN);
	rc |= expect_errno("FIONBIO from NULL", ioctl(fd, FIONBIO, NULL), EFAULT);
	if (ioctl(fd, FIOCLEX) != 0 || !(fcntl(fd, F_GETFD) & FD_CLOEXEC) ||
	    ioctl(fd, FIONCLEX) != 0 || (fcntl(fd, F_GETFD) & FD_CLOEXEC))
		return fail("FIOCLEX/FIONCLEX");
	printf("FIONBIO, FIOCLEX and FIONCLEX act on the descriptor\n");
	if (ioctl(fd, FIOASYNC, &on) != 0 || !(fcntl(fd, F_GETFL) & O_ASYNC))
		return fail("FIOASYNC: %s", ename(errno));
	printf("FIOASYNC sets O_ASYNC\n");
	close(fd);
	return rc;
}

/* ---- signals ---- */

static atomic_int alarms;

static void on_alarm(int sig)
{
	(void)sig;
	atomic_fetch_add(&alarms, 1);
}

struct late_writer {
	int fd;
	int err;
};

/* Once the blocked read has been through three signals, make it a message. */
static void *late_write(void *arg)
{
	struct late_writer *w = arg;
	sigset_t all;

	sigfillset(&all);
	pthread_sigmask(SIG_BLOCK, &all, NULL);
	for (int ms = 0; atomic_load(&alarms) < 3; ms++) {
		if (ms > WAIT_MS) {
			w->err = ETIMEDOUT;
			return NULL;
		}
		sleep_ms(1);
	}
	w->err = send_msg(w->fd, "after the signals") ? EIO : 0;
	return NULL;
}

static int timer(int ms)
{
	struct itimerval t = {.it_interval = {.tv_usec = ms * 1000}, .it_value = {.tv_usec = ms * 1000}};

	return setitimer(ITIMER_REAL, &t, NULL);
}

static int do_eintr(const char *path, char **args)
{
	struct sigaction sa = {.sa_handler = on_alarm};
	struct late_writer w = {0};
	char buf[64];
	pthread_t t;
	ssize_t n;
	int fd = session(path, args[0], O_RDWR);

	if (fd < 0 || echo(fd, "x"))
		return 1;
	sigemptyset(&sa.sa_mask);
	if (sigaction(SIGALRM, &sa, NULL) || timer(100))
		return fail("timer: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	timer(0);
	if (expect_errno("blocking read, SIGALRM without SA_RESTART", n, EINTR))
		return 1;
	/* With SA_RESTART the kernel restarts the wait, as for the device. */
	atomic_store(&alarms, 0);
	sa.sa_flags = SA_RESTART;
	w.fd = fd;
	if (sigaction(SIGALRM, &sa, NULL) || pthread_create(&t, NULL, late_write, &w) || timer(50))
		return fail("set-up: %s", strerror(errno));
	n = read(fd, buf, sizeof(buf));
	timer(0);
	pthread_join(t, NULL);
	if (w.err)
		return fail("writer: %s", ename(w.err));
	if (n != 17 || memcmp(buf, "after the signals", 17) != 0)
		return fail("read with SA_RESTART: %zd (%s)", n, n < 0 ? ename(errno) : "data");
	printf("blocking read, SIGALRM with SA_RESTART: restarted through %d signals, got the "
	       "message\n",
	       atomic_load(&alarms));
	close(fd);
	return 0;
}

/* ---- sharing the open file ---- */

static int do_fork(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	int status;
	pid_t pid;

	if (fd < 0 || echo(fd, "before"))
		return 1;
	pid = fork();
	if (pid == 0)
		_exit(send_msg(fd, "written by the child"));
	if (pid < 0 || waitpid(pid, &status, 0) != pid || status != 0)
		return fail("child write");
	if (expect_msg(fd, "written by the child"))
		return 1;
	printf("the parent read what the child wrote\n");
	pid = fork();
	if (pid == 0)
		_exit(expect_msg(fd, "written by the parent"));
	if (pid < 0 || send_msg(fd, "written by the parent") || waitpid(pid, &status, 0) != pid ||
	    status != 0)
		return fail("child read");
	printf("the child read what the parent wrote\n");
	if (echo(fd, "after"))
		return 1;
	close(fd);
	return 0;
}

static int is_chr(int fd)
{
	struct stat st;

	return fstat(fd, &st) == 0 && S_ISCHR(st.st_mode);
}

static int do_dup(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	int d[5];

	if (fd < 0)
		return 1;
	d[0] = dup(fd);
	d[1] = dup2(fd, 40);
	d[2] = dup3(fd, 41, O_CLOEXEC);
	d[3] = fcntl(fd, F_DUPFD, 50);
	d[4] = fcntl(fd, F_DUPFD_CLOEXEC, 60);
	for (int i = 0; i < 5; i++) {
		if (d[i] < 0 || !is_chr(d[i]))
			return fail("copy %d: %s", i, ename(errno));
		if (send_msg(d[i], "through a copy") || expect_msg(fd, "through a copy"))
			return 1;
	}
	if (!(fcntl(d[2], F_GETFD) & FD_CLOEXEC) || !(fcntl(d[4], F_GETFD) & FD_CLOEXEC) ||
	    (fcntl(d[1], F_GETFD) & FD_CLOEXEC))
		return fail("close-on-exec of the copies");
	printf("dup, dup2, dup3, F_DUPFD, F_DUPFD_CLOEXEC: each copy writes the same file\n");
	close(fd);
	for (int i = 0; i < 4; i++)
		close(d[i]);
	if (echo(d[4], "the last copy"))
		return 1;
	printf("after closing the others the last copy still works\n");
	close(d[4]);
	return 0;
}

static int do_exec(const char *path, char **args)
{
	int keep = session(path, args[0], O_RDWR);
	int gone = open_dev(path, O_RDWR | O_CLOEXEC);
	char a[16], b[16];

	if (keep < 0 || gone < 0 || echo(keep, "before exec"))
		return 1;
	snprintf(a, sizeof(a), "%d", keep);
	snprintf(b, sizeof(b), "%d", gone);
	fflush(stdout);
	execl(self_exe, self_exe, "exec-child", path, a, b, (char *)NULL);
	return fail("exec: %s", strerror(errno));
}

static int do_exec_child(const char *path, char **args)
{
	int keep = atoi(args[0]), gone = atoi(args[1]);

	(void)path;
	if (fcntl(gone, F_GETFD) != -1 || errno != EBADF)
		return fail("the O_CLOEXEC file survived exec");
	printf("after exec: the O_CLOEXEC file is closed\n");
	if (!is_chr(keep) || echo(keep, "after exec"))
		return 1;
	printf("after exec: the inherited file is the same session\n");
	close(keep);
	return 0;
}

/* ---- opening and stat ---- */

static int do_opens(const char *path, char **args)
{
	char dir[256], rel[600];
	const char *base = strrchr(path, '/') + 1;
	int fds[5], dfd, rc = 0;
	FILE *f;
	char buf[64];

	(void)args;
	snprintf(dir, sizeof(dir), "%.*s", (int)(base - path - 1), path);
	snprintf(rel, sizeof(rel), "%s/./%s", dir, base);
	dfd = open(dir, O_RDONLY | O_DIRECTORY);
	fds[0] = open(path, O_RDWR);
	fds[1] = open64(path, O_RDWR);
	fds[2] = openat(dfd, base, O_RDWR);
	fds[3] = open(rel, O_RDWR);
	if (chdir(dir) != 0)
		return fail("chdir: %s", strerror(errno));
	fds[4] = openat(AT_FDCWD, base, O_RDWR | O_NONBLOCK);
	for (int i = 0; i < 5; i++) {
		if (fds[i] < 0 || !is_chr(fds[i]))
			return fail("open variant %d: %s", i, ename(errno));
		if (wait_ready(fds[i]))
			return 1;
		close(fds[i]);
	}
	printf("open, open64, openat (dirfd and cwd), a path with ./: the device\n");
	rc |= expect_errno("open O_CREAT|O_EXCL", open(path, O_RDWR | O_CREAT | O_EXCL, 0600),
			   EEXIST);
	rc |= expect_errno("open O_DIRECTORY", open(path, O_RDONLY | O_DIRECTORY), ENOTDIR);
	f = fopen(path, "r+");
	if (!f || fileno(f) < 0 || wait_ready(fileno(f)) || set_id(fileno(f), "STDIO"))
		return fail("fopen: %s", ename(errno));
	/* The open completes first; a stream would keep an EBUSY'd buffer. */
	if (echo(fileno(f), "open"))
		return 1;
	if (fwrite("by stdio", 1, 8, f) != 8 || fflush(f) != 0)
		return fail("fwrite: %s", ename(errno));
	/* A page at a time, as glibc reads a character device. */
	if (fread(buf, 1, 8, f) != 8 || memcmp(buf, "by stdio", 8) != 0)
		return fail("fread: %s", ename(errno));
	if (fclose(f) != 0)
		return fail("fclose: %s", ename(errno));
	printf("fopen, fileno + ioctl, fwrite + fflush, fread, fclose\n");
	close(dfd);
	return rc;
}

static int do_stat(const char *path, char **args)
{
	struct stat st[5];
	struct statx sx;
	int fd = open_dev(path, O_RDWR);
	int dfd;

	(void)args;
	if (fd < 0)
		return 1;
	dfd = open("/", O_RDONLY | O_DIRECTORY);
	if (stat(path, &st[0]) || lstat(path, &st[1]) || fstat(fd, &st[2]) ||
	    fstatat(dfd, path + 1, &st[3], 0) || fstatat(fd, "", &st[4], AT_EMPTY_PATH) ||
	    statx(AT_FDCWD, path, 0, STATX_BASIC_STATS, &sx))
		return fail("stat: %s", ename(errno));
	for (int i = 0; i < 5; i++) {
		if (!S_ISCHR(st[i].st_mode) || major(st[i].st_rdev) != 10 ||
		    st[i].st_mode != st[0].st_mode || st[i].st_uid != st[0].st_uid)
			return fail("stat variant %d: mode 0%o rdev %u:%u", i, st[i].st_mode,
				    major(st[i].st_rdev), minor(st[i].st_rdev));
	}
	if (!S_ISCHR(sx.stx_mode) || sx.stx_rdev_major != 10 || sx.stx_mode != st[0].st_mode)
		return fail("statx: mode 0%o", sx.stx_mode);
	printf("stat, lstat, fstat, fstatat, statx: character device %u:%u mode %04o uid %u gid "
	       "%u\n",
	       major(st[0].st_rdev), minor(st[0].st_rdev), st[0].st_mode & 07777, st[0].st_uid,
	       st[0].st_gid);
	printf("access R_OK|W_OK: %s\n", access(path, R_OK | W_OK) == 0 ? "0" : ename(errno));
	close(dfd);
	close(fd);
	return 0;
}

/* ---- the end of a session ---- */

/*
 * Print "open", wait for stdin to end (the test has the hypervisor send
 * two messages and restart meanwhile); then the messages delivered before
 * the reset come first, then EBADFD.
 */
static int do_reset(const char *path, char **args)
{
	struct pollfd p = {.events = POLLIN};
	int fd = session(path, args[0], O_RDWR);
	char buf[64], c;
	int rc = 0;

	if (fd < 0 || echo(fd, "x"))
		return 1;
	printf("open\n");
	fflush(stdout);
	while (read(STDIN_FILENO, &c, 1) > 0)
		;
	if (expect_msg(fd, "one") || expect_msg(fd, "two"))
		return 1;
	printf("the messages from before the reset: read\n");
	p.fd = fd;
	if (poll(&p, 1, WAIT_MS) != 1 || !(p.revents & POLLHUP))
		return fail("after the reset: revents 0x%x", p.revents);
	printf("after the reset: POLLHUP%s\n", p.revents & POLLIN ? " POLLIN" : "");
	rc |= expect_errno("read after the reset", read(fd, buf, sizeof(buf)), EBADFD);
	rc |= expect_errno("read again", read(fd, buf, sizeof(buf)), EBADFD);
	rc |= expect_errno("write after the reset", write(fd, "x", 1), EIO);
	close(fd);
	return rc;
}

/* Print "open", then block in read until the test kills the daemon. */
static int do_died(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	char buf[64];
	int rc;

	if (fd < 0 || echo(fd, "x"))
		return 1;
	printf("open\n");
	fflush(stdout);
	rc = expect_errno("blocked read when the daemon dies", read(fd, buf, sizeof(buf)), EIO);
	rc |= expect_errno("write after the daemon died", write(fd, "x", 1), EIO);
	rc |= expect_errno("open after the daemon died", open(path, O_RDWR), ENXIO);
	close(fd);
	return rc;
}

/* EBUSY with every buffer in flight, and every echo after reading one. */
static int do_exhaust(const char *path, char **args)
{
	int fd = session(path, args[0], O_RDWR);
	char msg[32];
	long sent = 0;

	if (fd < 0 || echo(fd, "x"))
		return 1;
	for (;; sent++) {
		snprintf(msg, sizeof(msg), "echo %06ld", sent);
		if (sent == 4096)
			return fail("no EBUSY");
		if (write(fd, msg, strlen(msg)) < 0)
			break;
	}
	if (errno != EBUSY)
		return fail("write: %s", ename(errno));
	printf("write with every buffer in flight: EBUSY after %ld writes\n", sent);
	if (expect_msg(fd, "echo 000000") || send_msg(fd, msg))
		return 1;
	printf("after reading one echo the write goes through\n");
	for (long i = 1; i <= sent; i++) {
		snprintf(msg, sizeof(msg), "echo %06ld", i);
		if (expect_msg(fd, msg))
			return 1;
	}
	printf("all %ld echoes arrived in order\n", sent + 1);
	close(fd);
	return 0;
}

static const struct {
	const char *name;
	int nargs;
	int (*fn)(const char *path, char **args);
} scenarios[] = {
	{"ioctls", 0, do_ioctls},   {"poll", 1, do_poll},     {"nonblock", 1, do_nonblock},
	{"eintr", 1, do_eintr},     {"fork", 1, do_fork},     {"dup", 1, do_dup},
	{"exec", 1, do_exec},       {"exec-child", 2, do_exec_child},
	{"opens", 0, do_opens},     {"stat", 0, do_stat},     {"reset", 1, do_reset},
	{"died", 1, do_died},       {"exhaust", 1, do_exhaust},
};

int main(int argc, char **argv)
{
	setvbuf(stdout, NULL, _IOLBF, 0);
	self_exe = argv[0];
	for (size_t i = 0; argc >= 3 && i < sizeof(scenarios) / sizeof(scenarios[0]); i++) {
		if (strcmp(argv[1], scenarios[i].name) != 0 || argc != 3 + scenarios[i].nargs)
			continue;
		scenario = argv[1];
		return scenarios[i].fn(argv[2], argv + 3);
	}
	fputs("usage: preloadclient SCENARIO PATH [ID]\n", stderr);
	return 2;
}
