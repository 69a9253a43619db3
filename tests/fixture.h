/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Fixture of the tests that run the real programs (see fixture.c). Every
 * function FAILs the current test on an error it cannot recover from.
 */
#ifndef OVMC_TEST_FIXTURE_H
#define OVMC_TEST_FIXTURE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define READY_TIMEOUT_MS 10000
#define CLIENT_TIMEOUT_MS 60000
#define STOP_TIMEOUT_MS 5000
#define OUT_MAX 65536

struct daemon {
	char dir[64];
	char path[128]; /* the device file */
	char ctl[96];
	char log[96];
	pid_t pid;
	bool in_dir;     /* the device lives in dir (not --device elsewhere) */
	bool dev_absent; /* --device path did not exist before the test */
	bool sock_only;  /* started with --no-device: only the session socket */
	char sock[136];  /* the session socket: path + ".sock" */
};

/* The hypervisor daemon: its log and control socket in d, its socket in sockdir. */
struct hvd {
	struct daemon *d;
	char sockdir[96];
	char sock[128];
};

struct client {
	pid_t pid;
	int out; /* its stdout */
	int in;  /* its stdin */
};

uint64_t now_ms(void);
void sleep_ms(int ms);
bool mounted(const char *path);
bool exists(const char *path);
int wait_child(pid_t pid, int ms);
void print_log(const struct daemon *d);
void stop_daemon(struct daemon *d, int sig);
/* Open descriptors of a process (FAIL if it is gone). */
int fd_count(pid_t pid);
size_t log_size(const struct daemon *d);
bool log_has(const struct daemon *d, size_t from, const char *what);
/* A daemon in a fresh /tmp directory, cleaned up when the test ends;
 * `device` (or NULL: dir/ibmvmc) is the device file it serves. */
struct daemon *new_daemon(const char *device);
/* Start argv[0] logging into d->log; wait for `ready` in the log. */
void spawn_argv(struct daemon *d, const char *const *argv, const char *ready);
/* A hypervisor daemon, not started yet; its socket dir/hv/sock is made by it. */
struct hvd *new_hvd(void);
/* (Re)start `bin` (openvmc-hvd) in the foreground on h->sock with h->d->ctl
 * as control socket and `extra` arguments; returns once it listens. */
void spawn_hvd(struct hvd *h, const char *bin, const char *const *extra);
/* Start a device-serving program (openvmc, openvmcd) on d->path with
 * d->ctl as control socket and `extra` arguments; wait until it is ready.
 * With d->sock_only it serves no device file, only d->sock. */
void spawn_prog(struct daemon *d, const char *prog, const char *const *extra);

/*
 * How clients (client_spawn, client_spawn_prog) start from now on: with
 * `prefix` (e.g. vmc-run and its options) before their argv, NULL for none;
 * and as uid/gid with no supplementary groups when `drop` (the test must
 * be root).
 */
void clients_via(const char *const *prefix);
void clients_as(bool drop, uid_t uid, gid_t gid);
/* ... with this one supplementary group (0: none). */
void clients_group(gid_t group);
/* Wait until process `pid` is blocked in syscall `nr` (FAIL after ms). */
void wait_in_syscall(pid_t pid, long nr, int ms);

/*
 * Fork and exec argv[0] (it dies with the test) with its stdout, and its
 * stderr too if `with_stderr`, on a pipe read from *out, and with its stdin
 * on a pipe written to *in unless `in` is NULL. Returns the pid.
 */
pid_t spawn_piped(const char *const *argv, bool with_stderr, int *out, int *in);
/* devclient (the device-ABI-only application) in the background. */
struct client *client_spawn(const char *const *args);
/* Another client program that touches the device only through its ABI. */
struct client *client_spawn_prog(const char *prog, const char *const *args);
size_t client_read(struct client *c, char *buf, size_t size, int ms);
void client_expect(struct client *c, const char *what, int ms);
int client_wait(struct client *c, int ms);
void run_client(const char *const *args, char *out, size_t size);

/* One control-socket request and its whole reply. */
void ctl(const struct daemon *d, const char *request, char *out, size_t size);
void ctl_wait(const struct daemon *d, const char *request, const char *what, int ms);

#define CLIENT(...) run_client((const char *const[]){__VA_ARGS__, NULL}, NULL, 0)
#define CLIENT_OUT(buf, ...)                                                                \
	run_client((const char *const[]){__VA_ARGS__, NULL}, (buf), sizeof(buf))
#define SPAWN(...) client_spawn((const char *const[]){__VA_ARGS__, NULL})
#define ARGS(...) ((const char *const[]){__VA_ARGS__, NULL})

#endif
