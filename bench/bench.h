/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ovmc-bench: what each path of the channel costs next to its floor
 * (docs/performance.md). Shared declarations of its parts: measuring
 * (util.c), the floors (floors.c), openvmc's paths (paths.c), the report
 * (main.c).
 */
#ifndef OVMC_BENCH_H
#define OVMC_BENCH_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define BENCH_MAX_SIZE 16384
#define BENCH_NSIZES 4
extern const size_t bench_sizes[BENCH_NSIZES];

/* How much to measure (main.c fills it from the options). */
struct bench_cfg {
	unsigned iters;      /* round trips per size */
	unsigned tput_msgs;  /* messages of the throughput runs */
	unsigned sess_iters; /* round trips per phase of the 64-session runs */
	unsigned idle_ms;    /* window of the idle CPU measurement */
	const char *bin_dir; /* where openvmc, openvmcd and openvmc-hvd are */
	bool verbose;
};

/* One figure of the report. */
struct bench_row {
	char mode[12];    /* pinned, unpinned */
	char path[24];    /* socketpair, bare-fuse, memcpy, core, openvmc, daemons ... */
	char metric[24];  /* rtt, tput, rtt64-idle, idle-cpu, rss ... */
	size_t size;      /* message size, 0 when none */
	double median;    /* the figure: us, MiB/s, ms of CPU, MiB */
	double p99;       /* < 0 when none */
	char unit[8];
	char floor[24];   /* path of the floor, "" when none */
	double ratio;     /* median / floor's median, or the path's own paired
			   * ratio (bench_sessions()); < 0 when none */
	char target[16];  /* "<=1.10" / ">=0.95" / "=0" / "<4", "" when none */
	int met;          /* 1 met, 0 not met, -1 no target */
};

/* ---- util.c ---- */
uint64_t bench_now_ns(void);
void bench_sleep_ms(unsigned ms);
void bench_log(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Print the reason and exit: cleanup runs (atexit). */
void bench_die(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));

/* Median and 99th percentile of n samples (sorted in place). */
void bench_stats(double *v, size_t n, double *median, double *p99);
/* n round trips of `size` bytes on fd (write, then read the echo): the
 * time of each in microseconds into v (NULL: warm-up). */
void bench_fd_rtt_samples(int fd, size_t size, unsigned n, double *v);
/* Writer and reader threads on fd, n messages of `size`: seconds taken. */
double bench_fd_tput_s(int fd, size_t size, unsigned n);

/* Cleanup registry: everything here is undone at exit, also on a signal. */
void bench_cleanup_init(void);
void bench_track_pid(pid_t pid);
void bench_track_mount(const char *path);
void bench_track_dir(const char *path);
/* Stop a tracked process (SIGTERM, then SIGKILL) and forget it. */
void bench_stop_pid(pid_t pid);

/* A fresh private directory under /tmp, tracked. */
void bench_tmpdir(char *out, size_t size);
/* fork + exec argv with stdout/stderr into `log`; it dies with us. */
pid_t bench_spawn(const char *const *argv, const char *log);
bool bench_log_has(const char *log, const char *what);
void bench_print_log(const char *log);
/* Wait until `what` appears in `log` (dies if pid exits or after 10 s). */
void bench_wait_log(pid_t pid, const char *log, const char *what);
/* CPU time of a process in ms (all its threads; ns resolution where the
 * kernel has schedstat), and its resident set in KiB. */
double bench_cpu_ms(pid_t pid);
long bench_rss_kib(pid_t pid);

/* ---- floors.c ---- */
void bench_memcpy_rtt(size_t size, unsigned n, double *median, double *p99);
/* An echoing peer process on a SEQPACKET socketpair: our end. */
int bench_socketpair_start(pid_t *pid);
/* A bare libfuse3 low-level echo file at `path` served by a child process:
 * returns its pid once mounted. */
pid_t bench_fuse_echo_start(const char *path);

/* ---- paths.c ---- */
struct bench_core;
struct bench_core *bench_core_new(void);
void bench_core_rtt_samples(struct bench_core *c, size_t size, unsigned n, double *v);
void bench_core_free(struct bench_core *c);

/* A running openvmc, or openvmcd + openvmc-hvd, serving a device file. */
struct bench_daemons {
	bool pair;
	char dir[64];
	char dev[96];
	pid_t pid;    /* openvmc, or openvmcd */
	pid_t hv_pid; /* openvmc-hvd, or 0 */
};
void bench_daemons_start(const struct bench_cfg *cfg, bool pair, unsigned hmcs, unsigned mtu,
			 struct bench_daemons *d);
void bench_daemons_stop(struct bench_daemons *d);
/* Open the device and an HMC session on it, ready to write. */
int bench_session_open(const struct bench_daemons *d, unsigned seed);

/* The 64-session runs on d (started with 64 HMCs): adds the rows. */
struct bench_rows;
void bench_sessions(const struct bench_cfg *cfg, const struct bench_daemons *d,
		    const char *mode, const char *path, struct bench_rows *rows);

/* ---- main.c ---- */
struct bench_row *bench_add(struct bench_rows *rows, const char *mode, const char *path,
			    const char *metric, size_t size, double median, double p99,
			    const char *unit);

#endif
