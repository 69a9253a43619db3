// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * libopenvmc-preload.so: an unmodified, dynamically linked program that
 * opens /dev/ibmvmc (or $OPENVMC_DEVICE) gets a file of openvmc's session
 * socket instead ($OPENVMC_SOCKET, default the device path + ".sock"), with
 * the Linux device's semantics (docs/preload.md). Loaded by vmc-run through
 * LD_PRELOAD.
 *
 * The descriptor is a real kernel object (a SOCK_SEQPACKET connection), so
 * poll, select, epoll, fork, exec, O_NONBLOCK and signals need nothing
 * from here; what does is mapped onto the client library: open, read,
 * write, ioctl, stat, and the calls that copy or close descriptors, which
 * keep the table of which descriptors are ours. After exec the table is
 * rebuilt from the inherited descriptors connected to the socket.
 */
#include <openvmc/client.h>

#include <dirent.h>
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <unistd.h>

#define DEFAULT_DEVICE "/dev/ibmvmc"
#define EXPORT __attribute__((visibility("default")))
/* Descriptors below this are looked up in the table, above it asked of the kernel. */
#define TABLE_SIZE 65536

static struct ovmc_client *client;
static char dev_path[PATH_MAX];
static const char *dev_base;
static atomic_uchar ours_table[TABLE_SIZE];

/* The next definition of a libc function (resolved once, thread-safely). */
#define REAL(name, type)                                                                     \
	static _Atomic(type) real_##name;                                                    \
	static type get_##name(void)                                                         \
	{                                                                                    \
		type f = atomic_load(&real_##name);                                          \
		if (!f) {                                                                    \
			f = (type)dlsym(RTLD_NEXT, #name);                                   \
			atomic_store(&real_##name, f);                                       \
		}                                                                            \
		return f;                                                                    \
	}

static bool ours(int fd)
{
	if (!client || fd < 0)
		return false;
	if (fd < TABLE_SIZE)
		return atomic_load(&ours_table[fd]);
	return ovmc_client_owns(client, fd);
}

static void mark(int fd, bool on)
{
	if (fd >= 0 && fd < TABLE_SIZE)
		atomic_store(&ours_table[fd], on);
}

static int fail(long rc)
{
	errno = (int)-rc;
	return -1;
}

/* ---- which path is the device ---- */

/* Lexically: "." and empty components dropped, ".." taken back. */
static void normalise(char *p)
{
	char *out = p, *in = p;

	while (*in) {
		char *end;
		size_t len;

		while (*in == '/')
			in++;
		end = strchrnul(in, '/');
		len = (size_t)(end - in);
		if (len == 1 && in[0] == '.') {
			/* nothing */
		} else if (len == 2 && in[0] == '.' && in[1] == '.') {
			while (out > p && *--out != '/')
				;
		} else if (len) {
			*out++ = '/';
			memmove(out, in, len);
			out += len;
		}
		in = end;
	}
	if (out == p)
		*out++ = '/';
	*out = '\0';
}

static bool is_device(int dirfd, const char *path)
{
	char full[PATH_MAX * 2];
	const char *base;
	size_t n;

	if (!client || !path || !*path)
		return false;
	base = strrchr(path, '/');
	base = base ? base + 1 : path;
	if (strcmp(base, dev_base) != 0)
		return false;
	if (path[0] == '/') {
		snprintf(full, sizeof(full), "%s", path);
	} else {
		if (dirfd == AT_FDCWD) {
			if (!getcwd(full, PATH_MAX))
				return false;
		} else {
			char link[64];
			ssize_t r;

			snprintf(link, sizeof(link), "/proc/self/fd/%d", dirfd);
			r = readlink(link, full, PATH_MAX - 1);
			if (r < 0)
				return false;
			full[r] = '\0';
		}
		n = strlen(full);
		snprintf(full + n, sizeof(full) - n, "/%s", path);
	}
	normalise(full);
	return strcmp(full, dev_path) == 0;
}

/* ---- start-up ---- */

static void fork_prepare(void)
{
	ovmc_client_atfork_prepare(client);
}

static void fork_parent(void)
{
	ovmc_client_atfork_parent(client);
}

static void fork_child(void)
{
	ovmc_client_atfork_child(client);
}

/* Descriptors inherited across exec that are files of the daemon. */
static void adopt_inherited(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;

	if (!d)
		return;
	while ((e = readdir(d))) {
		int fd = atoi(e->d_name);

		if (e->d_name[0] != '.' && fd != dirfd(d) && ovmc_client_owns(client, fd))
			mark(fd, true);
	}
	closedir(d);
}

__attribute__((constructor)) static void preload_init(void)
{
	const char *dev = getenv("OPENVMC_DEVICE");
	const char *sock = getenv("OPENVMC_SOCKET");
	char sock_path[PATH_MAX + 8];

	if (!dev || !*dev)
		dev = DEFAULT_DEVICE;
	if (dev[0] != '/' || strlen(dev) >= sizeof(dev_path)) {
		fprintf(stderr, "libopenvmc-preload: OPENVMC_DEVICE must be an absolute path\n");
		return;
	}
	strcpy(dev_path, dev);
	normalise(dev_path);
	dev_base = strrchr(dev_path, '/') + 1;
	if (!sock || !*sock) {
		snprintf(sock_path, sizeof(sock_path), "%s.sock", dev_path);
		sock = sock_path;
	}
	if (ovmc_client_new(sock, &client) != 0) {
		fprintf(stderr, "libopenvmc-preload: unusable socket path %s\n", sock);
		client = NULL;
		return;
	}
	pthread_atfork(fork_prepare, fork_parent, fork_child);
	adopt_inherited();
}

/* ---- opening ---- */

static int open_device(int flags)
{
	int fd;

	if ((flags & (O_CREAT | O_EXCL)) == (O_CREAT | O_EXCL))
		return fail(-EEXIST);
	if (flags & O_DIRECTORY)
		return fail(-ENOTDIR);
	fd = ovmc_client_open(client, flags);
	if (fd < 0)
		return fail(fd);
	mark(fd, true);
	return fd;
}

/* A descriptor the kernel gave out for something else is not ours. */
static int fresh(int fd)
{
	mark(fd, false);
	return fd;
}

static mode_t mode_arg(int flags, va_list ap)
{
	return (flags & (O_CREAT | O_TMPFILE)) ? (mode_t)va_arg(ap, int) : 0;
}

typedef int (*open_fn)(const char *, int, ...);
typedef int (*openat_fn)(int, const char *, int, ...);
REAL(open, open_fn)
REAL(open64, open_fn)
REAL(openat, openat_fn)
REAL(openat64, openat_fn)

EXPORT int open(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(AT_FDCWD, path))
		return open_device(flags);
	return fresh(get_open()(path, flags, mode));
}

EXPORT int open64(const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(AT_FDCWD, path))
		return open_device(flags);
	return fresh(get_open64()(path, flags, mode));
}

EXPORT int openat(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(dirfd, path))
		return open_device(flags);
	return fresh(get_openat()(dirfd, path, flags, mode));
}

EXPORT int openat64(int dirfd, const char *path, int flags, ...)
{
	va_list ap;
	mode_t mode;

	va_start(ap, flags);
	mode = mode_arg(flags, ap);
	va_end(ap);
	if (is_device(dirfd, path))
		return open_device(flags);
	return fresh(get_openat64()(dirfd, path, flags, mode));
}

/* _FORTIFY_SOURCE's entry points (open without O_CREAT's mode). */
int __open_2(const char *path, int flags);
int __open64_2(const char *path, int flags);
int __openat_2(int dirfd, const char *path, int flags);
int __openat64_2(int dirfd, const char *path, int flags);

EXPORT int __open_2(const char *path, int flags)
{
	return open(path, flags);
}

EXPORT int __open64_2(const char *path, int flags)
{
	return open64(path, flags);
}

EXPORT int __openat_2(int dirfd, const char *path, int flags)
{
	return openat(dirfd, path, flags);
}

EXPORT int __openat64_2(int dirfd, const char *path, int flags)
{
	return openat64(dirfd, path, flags);
}

EXPORT int creat(const char *path, mode_t mode)
{
	return open(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

EXPORT int creat64(const char *path, mode_t mode)
{
	return open64(path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

/* ---- stdio: a stream whose every read and write is one message ---- */

/* The buffer glibc gives a stream on a character device is its st_blksize. */
#define STREAM_BUF 4096

struct stream {
	int fd;
	char buf[STREAM_BUF];
};

static ssize_t ck_read(void *cookie, char *buf, size_t size)
{
	ssize_t n = ovmc_client_read(client, ((struct stream *)cookie)->fd, buf, size);

	return n < 0 ? fail(n) : n;
}

static ssize_t ck_write(void *cookie, const char *buf, size_t size)
{
	ssize_t n = ovmc_client_write(client, ((struct stream *)cookie)->fd, buf, size);

	return n < 0 ? fail(n) : n;
}

static int ck_close(void *cookie)
{
	struct stream *st = cookie;
	int rc = close(st->fd);

	free(st);
	return rc;
}

static int stdio_flags(const char *mode)
{
	int flags = strchr(mode, '+') ? O_RDWR : mode[0] == 'r' ? O_RDONLY : O_WRONLY;

	if (strchr(mode, 'e'))
		flags |= O_CLOEXEC;
	if (mode[0] == 'w' || mode[0] == 'a')
		flags |= O_CREAT | (strchr(mode, 'x') ? O_EXCL : 0);
	return flags;
}

typedef FILE *(*fopen_fn)(const char *, const char *);
REAL(fopen, fopen_fn)
REAL(fopen64, fopen_fn)

static FILE *fopen_device(const char *mode)
{
	cookie_io_functions_t io = {.read = ck_read, .write = ck_write, .close = ck_close};
	struct stream *st = malloc(sizeof(*st));
	int fd = st ? open_device(stdio_flags(mode)) : -1;
	FILE *f;

	if (fd < 0) {
		free(st);
		return NULL;
	}
	st->fd = fd;
	f = fopencookie(st, mode, io);
	if (!f) {
		int err = errno;

		close(fd);
		free(st);
		errno = err;
		return NULL;
	}
	/* A page, as on the device (the default MTU); a cookie stream would
	 * get BUFSIZ, a read above the MTU. */
	setvbuf(f, st->buf, _IOFBF, sizeof(st->buf));
	/* fileno() must give the descriptor, for the ioctls: glibc keeps it
	 * in the stream (cookie streams hold a negative placeholder there)
	 * and does its I/O through the cookie functions either way. */
	f->_fileno = fd;
	return f;
}

EXPORT FILE *fopen(const char *path, const char *mode)
{
	if (mode && is_device(AT_FDCWD, path))
		return fopen_device(mode);
	return get_fopen()(path, mode);
}

EXPORT FILE *fopen64(const char *path, const char *mode)
{
	if (mode && is_device(AT_FDCWD, path))
		return fopen_device(mode);
	return get_fopen64()(path, mode);
}

/* ---- descriptors ---- */

typedef int (*close_fn)(int);
typedef int (*dup_fn)(int);
typedef int (*dup2_fn)(int, int);
typedef int (*dup3_fn)(int, int, int);
typedef int (*fcntl_fn)(int, int, ...);
typedef int (*close_range_fn)(unsigned, unsigned, int);
typedef void (*closefrom_fn)(int);
REAL(close, close_fn)
REAL(dup, dup_fn)
REAL(dup2, dup2_fn)
REAL(dup3, dup3_fn)
REAL(fcntl, fcntl_fn)
REAL(fcntl64, fcntl_fn)
REAL(close_range, close_range_fn)
REAL(closefrom, closefrom_fn)

EXPORT int close(int fd)
{
	mark(fd, false);
	return get_close()(fd);
}

EXPORT int close_range(unsigned first, unsigned last, int flags)
{
	int rc = get_close_range()(first, last, flags);

	/* CLOSE_RANGE_CLOEXEC (4) only marks them. */
	if (rc == 0 && !(flags & 4))
		for (unsigned fd = first; fd <= last && fd < TABLE_SIZE; fd++)
			mark((int)fd, false);
	return rc;
}

EXPORT void closefrom(int first)
{
	get_closefrom()(first);
	for (int fd = first < 0 ? 0 : first; fd < TABLE_SIZE; fd++)
		mark(fd, false);
}

EXPORT int dup(int fd)
{
	int r = get_dup()(fd);

	mark(r, r >= 0 && ours(fd));
	return r;
}

EXPORT int dup2(int fd, int to)
{
	bool was = ours(fd);
	int r = get_dup2()(fd, to);

	if (r >= 0)
		mark(r, was);
	return r;
}

EXPORT int dup3(int fd, int to, int flags)
{
	bool was = ours(fd);
	int r = get_dup3()(fd, to, flags);

	if (r >= 0)
		mark(r, was);
	return r;
}

static int do_fcntl(fcntl_fn real, int fd, int cmd, void *arg)
{
	bool was = ours(fd);
	int r = real(fd, cmd, arg);

	if ((cmd == F_DUPFD || cmd == F_DUPFD_CLOEXEC) && r >= 0)
		mark(r, was);
	return r;
}

/* Every fcntl argument is an int or a pointer: passed on as a pointer. */
EXPORT int fcntl(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(get_fcntl(), fd, cmd, arg);
}

EXPORT int fcntl64(int fd, int cmd, ...)
{
	va_list ap;
	void *arg;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	return do_fcntl(get_fcntl64(), fd, cmd, arg);
}

/* ---- reading, writing, ioctl ---- */

typedef ssize_t (*read_fn)(int, void *, size_t);
typedef ssize_t (*write_fn)(int, const void *, size_t);
typedef ssize_t (*pread_fn)(int, void *, size_t, off_t);
typedef ssize_t (*pwrite_fn)(int, const void *, size_t, off_t);
typedef ssize_t (*readv_fn)(int, const struct iovec *, int);
typedef int (*ioctl_fn)(int, unsigned long, ...);
REAL(read, read_fn)
REAL(write, write_fn)
REAL(pread, pread_fn)
REAL(pread64, pread_fn)
REAL(pwrite, pwrite_fn)
REAL(pwrite64, pwrite_fn)
REAL(readv, readv_fn)
REAL(writev, readv_fn)
REAL(ioctl, ioctl_fn)

static ssize_t dev_read(int fd, void *buf, size_t len)
{
	ssize_t n = ovmc_client_read(client, fd, buf, len);

	return n < 0 ? fail(n) : n;
}

static ssize_t dev_write(int fd, const void *buf, size_t len)
{
	ssize_t n = ovmc_client_write(client, fd, buf, len);

	return n < 0 ? fail(n) : n;
}

EXPORT ssize_t read(int fd, void *buf, size_t len)
{
	return ours(fd) ? dev_read(fd, buf, len) : get_read()(fd, buf, len);
}

EXPORT ssize_t write(int fd, const void *buf, size_t len)
{
	return ours(fd) ? dev_write(fd, buf, len) : get_write()(fd, buf, len);
}

/* The driver has no llseek of its own: pread and pwrite ignore the offset. */
EXPORT ssize_t pread(int fd, void *buf, size_t len, off_t off)
{
	return ours(fd) ? dev_read(fd, buf, len) : get_pread()(fd, buf, len, off);
}

EXPORT ssize_t pread64(int fd, void *buf, size_t len, off_t off)
{
	return ours(fd) ? dev_read(fd, buf, len) : get_pread64()(fd, buf, len, off);
}

EXPORT ssize_t pwrite(int fd, const void *buf, size_t len, off_t off)
{
	return ours(fd) ? dev_write(fd, buf, len) : get_pwrite()(fd, buf, len, off);
}

EXPORT ssize_t pwrite64(int fd, const void *buf, size_t len, off_t off)
{
	return ours(fd) ? dev_write(fd, buf, len) : get_pwrite64()(fd, buf, len, off);
}

/*
 * A driver with only read and write: Linux calls it once per segment and
 * stops at the first short one (do_loop_readv_writev).
 */
static ssize_t loop_iov(int fd, const struct iovec *iov, int n, bool wr)
{
	ssize_t total = 0;

	if (n < 0 || n > IOV_MAX)
		return fail(-EINVAL);
	for (int i = 0; i < n; i++) {
		ssize_t r = wr ? ovmc_client_write(client, fd, iov[i].iov_base, iov[i].iov_len)
			       : ovmc_client_read(client, fd, iov[i].iov_base, iov[i].iov_len);

		if (r < 0)
			return total ? total : fail(r);
		total += r;
		if ((size_t)r < iov[i].iov_len)
			break;
	}
	return total;
}

EXPORT ssize_t readv(int fd, const struct iovec *iov, int n)
{
	return ours(fd) ? loop_iov(fd, iov, n, false) : get_readv()(fd, iov, n);
}

EXPORT ssize_t writev(int fd, const struct iovec *iov, int n)
{
	return ours(fd) ? loop_iov(fd, iov, n, true) : get_writev()(fd, iov, n);
}

EXPORT int ioctl(int fd, unsigned long cmd, ...)
{
	va_list ap;
	void *arg;
	int rc;

	va_start(ap, cmd);
	arg = va_arg(ap, void *);
	va_end(ap);
	if (!ours(fd))
		return get_ioctl()(fd, cmd, arg);
	rc = ovmc_client_ioctl(client, fd, cmd, arg);
	return rc < 0 ? fail(rc) : rc;
}

/* ---- stat ---- */

static int dev_stat(struct stat *st)
{
	int rc = ovmc_client_stat(client, st);

	return rc ? fail(rc) : 0;
}

_Static_assert(sizeof(struct stat) == sizeof(struct stat64), "a 64-bit libc");

typedef int (*stat_fn)(const char *, struct stat *);
typedef int (*stat64_fn)(const char *, struct stat64 *);
typedef int (*fstat_fn)(int, struct stat *);
typedef int (*fstat64_fn)(int, struct stat64 *);
typedef int (*fstatat_fn)(int, const char *, struct stat *, int);
typedef int (*fstatat64_fn)(int, const char *, struct stat64 *, int);
typedef int (*statx_fn)(int, const char *, int, unsigned, struct statx *);
typedef int (*xstat_fn)(int, const char *, struct stat *);
typedef int (*fxstat_fn)(int, int, struct stat *);
typedef int (*fxstatat_fn)(int, int, const char *, struct stat *, int);
REAL(stat, stat_fn)
REAL(stat64, stat64_fn)
REAL(lstat, stat_fn)
REAL(lstat64, stat64_fn)
REAL(fstat, fstat_fn)
REAL(fstat64, fstat64_fn)
REAL(fstatat, fstatat_fn)
REAL(fstatat64, fstatat64_fn)
REAL(statx, statx_fn)
REAL(__xstat, xstat_fn)
REAL(__lxstat, xstat_fn)
REAL(__fxstat, fxstat_fn)
REAL(__fxstatat, fxstatat_fn)

EXPORT int stat(const char *path, struct stat *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat(st) : get_stat()(path, st);
}

EXPORT int stat64(const char *path, struct stat64 *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat((struct stat *)st) : get_stat64()(path, st);
}

EXPORT int lstat(const char *path, struct stat *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat(st) : get_lstat()(path, st);
}

EXPORT int lstat64(const char *path, struct stat64 *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat((struct stat *)st) : get_lstat64()(path, st);
}

EXPORT int fstat(int fd, struct stat *st)
{
	return ours(fd) ? dev_stat(st) : get_fstat()(fd, st);
}

EXPORT int fstat64(int fd, struct stat64 *st)
{
	return ours(fd) ? dev_stat((struct stat *)st) : get_fstat64()(fd, st);
}

static bool at_is_ours(int dirfd, const char *path, int flags)
{
	if ((flags & AT_EMPTY_PATH) && path && !*path)
		return ours(dirfd);
	return is_device(dirfd, path);
}

EXPORT int fstatat(int dirfd, const char *path, struct stat *st, int flags)
{
	return at_is_ours(dirfd, path, flags) ? dev_stat(st) : get_fstatat()(dirfd, path, st, flags);
}

EXPORT int fstatat64(int dirfd, const char *path, struct stat64 *st, int flags)
{
	return at_is_ours(dirfd, path, flags) ? dev_stat((struct stat *)st)
					      : get_fstatat64()(dirfd, path, st, flags);
}

static struct statx_timestamp stx_time(struct timespec t)
{
	return (struct statx_timestamp){.tv_sec = t.tv_sec, .tv_nsec = (uint32_t)t.tv_nsec};
}

EXPORT int statx(int dirfd, const char *path, int flags, unsigned mask, struct statx *stx)
{
	struct stat st;

	if (!at_is_ours(dirfd, path, flags))
		return get_statx()(dirfd, path, flags, mask, stx);
	if (dev_stat(&st))
		return -1;
	memset(stx, 0, sizeof(*stx));
	stx->stx_mask = STATX_BASIC_STATS;
	stx->stx_blksize = (uint32_t)st.st_blksize;
	stx->stx_nlink = (uint32_t)st.st_nlink;
	stx->stx_uid = st.st_uid;
	stx->stx_gid = st.st_gid;
	stx->stx_mode = (uint16_t)st.st_mode;
	stx->stx_ino = st.st_ino;
	stx->stx_atime = stx_time(st.st_atim);
	stx->stx_ctime = stx_time(st.st_ctim);
	stx->stx_mtime = stx_time(st.st_mtim);
	stx->stx_rdev_major = major(st.st_rdev);
	stx->stx_rdev_minor = minor(st.st_rdev);
	stx->stx_dev_major = major(st.st_dev);
	stx->stx_dev_minor = minor(st.st_dev);
	return 0;
}

/* What programs built against a libc before 2.33 call. */
int __xstat(int ver, const char *path, struct stat *st);
int __xstat64(int ver, const char *path, struct stat *st);
int __lxstat(int ver, const char *path, struct stat *st);
int __lxstat64(int ver, const char *path, struct stat *st);
int __fxstat(int ver, int fd, struct stat *st);
int __fxstat64(int ver, int fd, struct stat *st);
int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags);
int __fxstatat64(int ver, int dirfd, const char *path, struct stat *st, int flags);

EXPORT int __xstat(int ver, const char *path, struct stat *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat(st) : get___xstat()(ver, path, st);
}

EXPORT int __xstat64(int ver, const char *path, struct stat *st)
{
	return __xstat(ver, path, st);
}

EXPORT int __lxstat(int ver, const char *path, struct stat *st)
{
	return is_device(AT_FDCWD, path) ? dev_stat(st) : get___lxstat()(ver, path, st);
}

EXPORT int __lxstat64(int ver, const char *path, struct stat *st)
{
	return __lxstat(ver, path, st);
}

EXPORT int __fxstat(int ver, int fd, struct stat *st)
{
	return ours(fd) ? dev_stat(st) : get___fxstat()(ver, fd, st);
}

EXPORT int __fxstat64(int ver, int fd, struct stat *st)
{
	return __fxstat(ver, fd, st);
}

EXPORT int __fxstatat(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	return at_is_ours(dirfd, path, flags) ? dev_stat(st)
					      : get___fxstatat()(ver, dirfd, path, st, flags);
}

EXPORT int __fxstatat64(int ver, int dirfd, const char *path, struct stat *st, int flags)
{
	return __fxstatat(ver, dirfd, path, st, flags);
}

/* ---- access: the socket has the device's mode and owner ---- */

typedef int (*access_fn)(const char *, int);
typedef int (*faccessat_fn)(int, const char *, int, int);
REAL(access, access_fn)
REAL(faccessat, faccessat_fn)

EXPORT int access(const char *path, int mode)
{
	if (is_device(AT_FDCWD, path))
		return get_access()(ovmc_client_path(client), mode);
	return get_access()(path, mode);
}

EXPORT int faccessat(int dirfd, const char *path, int mode, int flags)
{
	if (is_device(dirfd, path))
		return get_faccessat()(AT_FDCWD, ovmc_client_path(client), mode, flags);
	return get_faccessat()(dirfd, path, mode, flags);
}
