// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Measuring and cleaning up. Everything the benchmark starts or creates
 * (processes, mounts, directories) is registered here and undone at exit,
 * on an error and on SIGINT/SIGTERM: a dedicated thread takes those
 * signals, so the cleanup runs in a normal context, not in a handler.
 */
#include "bench.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <poll.h>
#include <pthread.h>
#include <semaphore.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define MAX_TRACKED 32
#define STOP_WAIT_MS 3000
#define READY_WAIT_MS 10000
/* Throughput: messages in flight at most, so no path's queue overflows. */
#define TPUT_WINDOW 16

uint64_t bench_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

void bench_sleep_ms(unsigned ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

void bench_log(const char *fmt, ...)
{
	va_list ap;

	fputs("ovmc-bench: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
}

static atomic_bool cleaning;

void bench_die(const char *fmt, ...)
{
	va_list ap;

	/* The daemons die under us during a cleanup after a signal: what
	 * fails then is no error, and the cleanup thread ends the process. */
	while (atomic_load(&cleaning))
		pause();
	fputs("ovmc-bench: error: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fputc('\n', stderr);
	exit(1);
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

void bench_stats(double *v, size_t n, double *median, double *p99)
{
	if (n == 0) {
		*median = *p99 = -1;
		return;
	}
	qsort(v, n, sizeof(*v), cmp_double);
	*median = n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
	*p99 = v[(size_t)((double)(n - 1) * 0.99)];
}

/* A write the device refuses with EBUSY (no free buffer yet) is retried
 * when poll says it would pass. */
static void write_msg(int fd, const void *buf, size_t len)
{
	for (;;) {
		ssize_t n = write(fd, buf, len);

		if (n == (ssize_t)len)
			return;
		if (n < 0 && (errno == EBUSY || errno == EAGAIN)) {
			struct pollfd pfd = {.fd = fd, .events = POLLOUT};

			poll(&pfd, 1, 10);
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		bench_die("write of %zu bytes: %s", len, n < 0 ? strerror(errno) : "short");
	}
}

/* Exactly the size expected: a device refuses reads above its MTU. */
static void read_msg(int fd, void *buf, size_t len)
{
	for (;;) {
		ssize_t n = read(fd, buf, len);

		if (n == (ssize_t)len)
			return;
		if (n < 0 && errno == EINTR)
			continue;
		bench_die("read: %s (expected %zu bytes, got %zd)", n < 0 ? strerror(errno) : "wrong size",
			  len, n);
	}
}

void bench_fd_rtt_samples(int fd, size_t size, unsigned n, double *v)
{
	static char out[BENCH_MAX_SIZE], in[BENCH_MAX_SIZE];

	memset(out, 0x5a, size);
	for (unsigned i = 0; i < n; i++) {
		uint64_t t0 = bench_now_ns();

		write_msg(fd, out, size);
		read_msg(fd, in, size);
		if (v)
			v[i] = (double)(bench_now_ns() - t0) / 1000.0;
	}
}

struct tput {
	int fd;
	size_t size;
	unsigned n;
	sem_t slots;
};

static void *tput_writer(void *arg)
{
	struct tput *t = arg;
	static char out[BENCH_MAX_SIZE];

	memset(out, 0xa5, t->size);
	for (unsigned i = 0; i < t->n; i++) {
		while (sem_wait(&t->slots) && errno == EINTR)
			;
		write_msg(t->fd, out, t->size);
	}
	return NULL;
}

double bench_fd_tput_s(int fd, size_t size, unsigned n)
{
	static char in[BENCH_MAX_SIZE];
	struct tput t = {.fd = fd, .size = size, .n = n};
	pthread_t th;
	uint64_t t0;
	double s;

	sem_init(&t.slots, 0, TPUT_WINDOW);
	t0 = bench_now_ns();
	if (pthread_create(&th, NULL, tput_writer, &t))
		bench_die("pthread_create failed");
	for (unsigned i = 0; i < n; i++) {
		read_msg(fd, in, size);
		sem_post(&t.slots);
	}
	s = (double)(bench_now_ns() - t0) / 1e9;
	pthread_join(th, NULL);
	sem_destroy(&t.slots);
	return s;
}

/* ---- cleanup ---- */

static pthread_mutex_t reg_lock = PTHREAD_MUTEX_INITIALIZER;
static pid_t pids[MAX_TRACKED];
static char mounts[MAX_TRACKED][128];
static char dirs[MAX_TRACKED][128];
static bool cleaned;

static void add_path(char (*list)[128], const char *path)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (!list[i][0]) {
			snprintf(list[i], sizeof(list[i]), "%s", path);
			pthread_mutex_unlock(&reg_lock);
			return;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	bench_die("too many tracked paths");
}

void bench_track_pid(pid_t pid)
{
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_TRACKED; i++) {
		if (!pids[i]) {
			pids[i] = pid;
			pthread_mutex_unlock(&reg_lock);
			return;
		}
	}
	pthread_mutex_unlock(&reg_lock);
	kill(pid, SIGKILL);
	bench_die("too many processes");
}

void bench_track_mount(const char *path)
{
	add_path(mounts, path);
}

void bench_track_dir(const char *path)
{
	add_path(dirs, path);
}

static void stop(pid_t pid)
{
	uint64_t end = bench_now_ns() + STOP_WAIT_MS * 1000000ull;

	kill(pid, SIGTERM);
	while (waitpid(pid, NULL, WNOHANG) == 0) {
		if (bench_now_ns() > end) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return;
		}
		bench_sleep_ms(5);
	}
}

void bench_stop_pid(pid_t pid)
{
	if (pid <= 0)
		return;
	pthread_mutex_lock(&reg_lock);
	for (int i = 0; i < MAX_TRACKED; i++)
		if (pids[i] == pid)
			pids[i] = 0;
	pthread_mutex_unlock(&reg_lock);
	stop(pid);
}

static int rm_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (flag == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

static void cleanup(void)
{
	pthread_mutex_lock(&reg_lock);
	if (cleaned) {
		pthread_mutex_unlock(&reg_lock);
		return;
	}
	cleaned = true;
	for (int i = 0; i < MAX_TRACKED; i++)
		if (pids[i] > 0)
			stop(pids[i]);
	for (int i = 0; i < MAX_TRACKED; i++)
		if (mounts[i][0])
			umount2(mounts[i], MNT_DETACH);
	/* FTW_MOUNT: never into a mount that outlived its daemon. */
	for (int i = MAX_TRACKED - 1; i >= 0; i--)
		if (dirs[i][0])
			nftw(dirs[i], rm_entry, 16, FTW_DEPTH | FTW_PHYS | FTW_MOUNT);
	pthread_mutex_unlock(&reg_lock);
}

static void *signal_thread(void *arg)
{
	sigset_t *set = arg;
	int sig = 0;

	sigwait(set, &sig);
	atomic_store(&cleaning, true);
	fprintf(stderr, "ovmc-bench: %s: cleaning up\n", strsignal(sig));
	cleanup();
	_exit(128 + sig);
}

void bench_cleanup_init(void)
{
	static sigset_t set;
	pthread_t th;

	sigemptyset(&set);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);
	if (pthread_create(&th, NULL, signal_thread, &set))
		bench_die("pthread_create failed");
	pthread_detach(th);
	atexit(cleanup);
}

void bench_tmpdir(char *out, size_t size)
{
	snprintf(out, size, "/tmp/ovmc-bench-XXXXXX");
	if (!mkdtemp(out))
		bench_die("mkdtemp: %s", strerror(errno));
	bench_track_dir(out);
}

pid_t bench_spawn(const char *const *argv, const char *log)
{
	pid_t parent = getpid();
	pid_t pid = fork();

	if (pid < 0)
		bench_die("fork: %s", strerror(errno));
	if (pid == 0) {
		sigset_t none;
		int fd;

		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (getppid() != parent)
			_exit(127);
		sigemptyset(&none);
		pthread_sigmask(SIG_SETMASK, &none, NULL);
		fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
		if (fd < 0 || dup2(fd, STDOUT_FILENO) < 0 || dup2(fd, STDERR_FILENO) < 0)
			_exit(127);
		execv(argv[0], (char *const *)argv);
		_exit(127);
	}
	bench_track_pid(pid);
	return pid;
}

bool bench_log_has(const char *log, const char *what)
{
	static char buf[1 << 20];
	int fd = open(log, O_RDONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return false;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = '\0';
	return strstr(buf, what) != NULL;
}

void bench_print_log(const char *log)
{
	char buf[4096];
	FILE *f = fopen(log, "r");
	size_t n;

	if (!f)
		return;
	fprintf(stderr, "---- %s ----\n", log);
	while ((n = fread(buf, 1, sizeof(buf), f)) > 0)
		fwrite(buf, 1, n, stderr);
	fclose(f);
}

void bench_wait_log(pid_t pid, const char *log, const char *what)
{
	uint64_t end = bench_now_ns() + READY_WAIT_MS * 1000000ull;

	while (!bench_log_has(log, what)) {
		int status;

		if (waitpid(pid, &status, WNOHANG) == pid) {
			bench_print_log(log);
			bench_die("process %d exited (status 0x%x) before \"%s\"", (int)pid, status,
				  what);
		}
		if (bench_now_ns() > end) {
			bench_print_log(log);
			bench_die("no \"%s\" within %d ms", what, READY_WAIT_MS);
		}
		bench_sleep_ms(5);
	}
}

/* utime + stime: in clock ticks (10 ms here), where one short wake-up
 * costs a whole tick or nothing. */
static double stat_cpu_ms(pid_t pid)
{
	char path[64], buf[1024], *p;
	unsigned long utime = 0, stime = 0;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/stat", (int)pid);
	f = fopen(path, "r");
	if (!f)
		bench_die("%s: %s", path, strerror(errno));
	if (!fgets(buf, sizeof(buf), f))
		buf[0] = '\0';
	fclose(f);
	/* The command name may hold blanks: fields count from its ')'. */
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu", &utime,
			 &stime) != 2)
		bench_die("%s: cannot parse", path);
	return (double)(utime + stime) * 1000.0 / (double)sysconf(_SC_CLK_TCK);
}

double bench_cpu_ms(pid_t pid)
{
	char path[64];
	unsigned long long ns, sum = 0;
	unsigned tasks = 0;
	glob_t g;

	/* The scheduler's own count, in ns, summed over the threads. */
	snprintf(path, sizeof(path), "/proc/%d/task/*/schedstat", (int)pid);
	if (glob(path, 0, NULL, &g) != 0)
		return stat_cpu_ms(pid);
	for (size_t i = 0; i < g.gl_pathc; i++) {
		FILE *f = fopen(g.gl_pathv[i], "r");

		if (f && fscanf(f, "%llu", &ns) == 1) {
			sum += ns;
			tasks++;
		}
		if (f)
			fclose(f);
	}
	globfree(&g);
	return tasks ? (double)sum / 1e6 : stat_cpu_ms(pid);
}

long bench_rss_kib(pid_t pid)
{
	char path[64], line[256];
	long kib = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		bench_die("%s: %s", path, strerror(errno));
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
			break;
	fclose(f);
	return kib;
}
