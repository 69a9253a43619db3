// SPDX-License-Identifier: LGPL-2.1-or-later
/*
 * The exec backend ("exec:COMMAND"): the hypervisor's layer 2 is a program,
 * run as /bin/sh -c COMMAND. It reads frames (docs/framing.md) on its
 * standard input and writes frames on its standard output; its standard
 * error is the owner's. Our ends of both pipes are non-blocking.
 *
 * The program's exit is noticed through a pidfd (Linux 5.3 and later; on
 * older kernels at the end of its output) and logged with its status; its
 * last frames are still read. Frames for it afterwards are counted as
 * dropped and new sessions refused. destroy() closes the pipes, then sends
 * SIGTERM, and SIGKILL if it has not exited shortly after, and reaps it.
 */
#include "peer.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* How long destroy() waits after SIGTERM before SIGKILL. */
#define TERM_GRACE_MS 500
#define TERM_STEP_MS 10

struct exec_be {
	struct ovmc_peer peer; /* first: the backend's arg */
	char *cmd;
	pid_t pid; /* 0 once reaped */
	int pidfd; /* -1 without one */
};

static struct exec_be *exec_of(struct ovmc_peer *p)
{
	return (struct exec_be *)p;
}

static void log_exit(struct exec_be *e, enum ovmc_log_level level, pid_t pid, int status)
{
	e->peer.st.exits++;
	e->peer.st.exit_status = status;
	if (WIFEXITED(status))
		ovmc_backend_log(&e->peer.env, level,
				 "exec: program `%s` (pid %d) exited with status %d", e->cmd,
				 (int)pid, WEXITSTATUS(status));
	else if (WIFSIGNALED(status))
		ovmc_backend_log(&e->peer.env, level,
				 "exec: program `%s` (pid %d) killed by signal %d", e->cmd,
				 (int)pid, WTERMSIG(status));
}

static void drop_pidfd(struct exec_be *e)
{
	if (e->pidfd < 0)
		return;
	ovmc_peer_watch(&e->peer, e->pidfd, 0);
	close(e->pidfd);
	e->pidfd = -1;
}

/* Reap the program if it has exited. Returns whether it is gone. */
static bool try_reap(struct exec_be *e, enum ovmc_log_level level)
{
	pid_t pid = e->pid, r;
	int status;

	if (!pid)
		return true;
	do
		r = waitpid(pid, &status, WNOHANG);
	while (r < 0 && errno == EINTR);
	if (r == 0)
		return false;
	e->pid = 0;
	drop_pidfd(e);
	if (r == pid)
		log_exit(e, level, pid, status);
	else
		ovmc_backend_log(&e->peer.env, OVMC_LOG_WARN,
				 "exec: program `%s` (pid %d) reaped by someone else", e->cmd,
				 (int)pid);
	return true;
}

/* The pidfd is readable: the program exited. Take its last frames. */
static void exec_event(struct ovmc_peer *p, uint32_t events)
{
	struct exec_be *e = exec_of(p);

	(void)events;
	if (!try_reap(e, OVMC_LOG_ERROR))
		return;
	ovmc_peer_drain(p);
	ovmc_peer_detach(p, OVMC_LOG_INFO, "no more input after its exit", 0);
}

/* The pipes broke (end of output, write error, bad frame). */
static void exec_down(struct ovmc_peer *p)
{
	try_reap(exec_of(p), OVMC_LOG_ERROR);
}

static const struct ovmc_peer_ops exec_peer_ops = {
	.down = exec_down,
	.event = exec_event,
};

static const struct ovmc_backend_ops exec_ops = {
	.name = "exec",
	.open = ovmc_peer_open,
	.message = ovmc_peer_message,
	.close = ovmc_peer_close,
	.writable = ovmc_peer_writable,
};

/* Move a pipe end above the standard descriptors (the child's 0 and 1 are
 * made with dup2 from these). */
static int above_stdio(int fd)
{
	int n;

	if (fd > STDERR_FILENO)
		return fd;
	n = fcntl(fd, F_DUPFD_CLOEXEC, STDERR_FILENO + 1);
	close(fd);
	return n;
}

static void close_pair(int v[2])
{
	for (int i = 0; i < 2; i++) {
		if (v[i] >= 0)
			close(v[i]);
		v[i] = -1;
	}
}

static int set_nonblock(int fd)
{
	int fl = fcntl(fd, F_GETFL);

	if (fl < 0 || fcntl(fd, F_SETFL, fl | O_NONBLOCK) < 0)
		return -errno;
	return 0;
}

/* Start the program; on success *rfd reads its output, *wfd feeds its input. */
static int spawn(struct exec_be *e, int *rfd, int *wfd)
{
	int in[2] = {-1, -1}, out[2] = {-1, -1};
	posix_spawn_file_actions_t fa;
	posix_spawnattr_t attr;
	sigset_t none, dflt;
	char sh[] = "sh", dash_c[] = "-c";
	char *argv[] = {sh, dash_c, e->cmd, NULL};
	int rc;

	if (pipe2(in, O_CLOEXEC) < 0 || pipe2(out, O_CLOEXEC) < 0) {
		rc = -errno;
		goto fail;
	}
	for (int i = 0; i < 2; i++) {
		in[i] = above_stdio(in[i]);
		out[i] = above_stdio(out[i]);
		if (in[i] < 0 || out[i] < 0) {
			rc = -errno;
			goto fail;
		}
	}
	sigemptyset(&none);
	sigemptyset(&dflt);
	sigaddset(&dflt, SIGPIPE);
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
	posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &dflt);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	rc = -posix_spawn(&e->pid, "/bin/sh", &fa, &attr, argv, environ);
	posix_spawn_file_actions_destroy(&fa);
	posix_spawnattr_destroy(&attr);
	if (rc)
		goto fail;
	close(in[0]);
	close(out[1]);
	in[0] = out[1] = -1;
	if ((rc = set_nonblock(in[1])) || (rc = set_nonblock(out[0])))
		goto fail;
	*rfd = out[0];
	*wfd = in[1];
	return 0;
fail:
	close_pair(in);
	close_pair(out);
	return rc;
}

static int open_pidfd(pid_t pid)
{
#ifdef SYS_pidfd_open
	return (int)syscall(SYS_pidfd_open, pid, 0);
#else
	(void)pid;
	errno = ENOSYS;
	return -1;
#endif
}

static void sleep_ms(struct exec_be *e, int ms)
{
	struct timespec ts = {.tv_sec = 0, .tv_nsec = ms * 1000000L};

	if (e->pidfd >= 0) {
		struct pollfd pfd = {.fd = e->pidfd, .events = POLLIN};

		poll(&pfd, 1, ms);
	} else {
		nanosleep(&ts, NULL);
	}
}

/* SIGTERM, a short wait, SIGKILL; always reaped. */
static void terminate(struct exec_be *e)
{
	pid_t pid = e->pid;
	int status;

	if (try_reap(e, OVMC_LOG_INFO))
		return;
	kill(pid, SIGTERM);
	for (int waited = 0; waited < TERM_GRACE_MS; waited += TERM_STEP_MS) {
		if (try_reap(e, OVMC_LOG_INFO))
			return;
		sleep_ms(e, TERM_STEP_MS);
	}
	if (try_reap(e, OVMC_LOG_INFO))
		return;
	ovmc_backend_log(&e->peer.env, OVMC_LOG_WARN,
			 "exec: program `%s` (pid %d) ignored SIGTERM; killing it", e->cmd,
			 (int)pid);
	kill(pid, SIGKILL);
	while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
		;
	e->pid = 0;
	log_exit(e, OVMC_LOG_INFO, pid, status);
}

static void exec_free(struct exec_be *e)
{
	drop_pidfd(e);
	ovmc_peer_fini(&e->peer);
	free(e->cmd);
	free(e);
}

static void exec_destroy(void *arg)
{
	struct exec_be *e = exec_of(arg);

	/* Closing its input first lets a well-behaved program end by itself. */
	ovmc_peer_fini(&e->peer);
	terminate(e);
	exec_free(e);
}

int ovmc_backend_exec_new(const char *args, const struct ovmc_backend_env *env,
			  struct ovmc_backend *out)
{
	struct exec_be *e;
	int rc, rfd, wfd;

	if (!args || !*args) {
		ovmc_backend_log(env, OVMC_LOG_ERROR, "exec: no command (use exec:COMMAND)");
		return -EINVAL;
	}
	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->pidfd = -1;
	e->cmd = strdup(args);
	if (!e->cmd) {
		free(e);
		return -ENOMEM;
	}
	rc = ovmc_peer_init(&e->peer, "exec", e->cmd, env, &exec_peer_ops, false);
	if (rc) {
		free(e->cmd);
		free(e);
		return rc;
	}
	rc = spawn(e, &rfd, &wfd);
	if (rc) {
		ovmc_backend_log(env, OVMC_LOG_ERROR, "exec: cannot run /bin/sh -c `%s`: %s",
				 e->cmd, ovmc_strerror(rc));
		exec_free(e);
		return rc;
	}
	ovmc_peer_attach(&e->peer, rfd, wfd, false);
	e->pidfd = open_pidfd(e->pid);
	if (e->pidfd >= 0 && ovmc_peer_watch(&e->peer, e->pidfd, EPOLLIN) < 0) {
		close(e->pidfd);
		e->pidfd = -1;
	}
	ovmc_backend_log(env, OVMC_LOG_INFO, "exec: started `%s` (pid %d)%s", e->cmd, (int)e->pid,
			 e->pidfd < 0 ? "; no pidfd, exit noticed at end of output" : "");
	*out = (struct ovmc_backend){.ops = &exec_ops,
				     .arg = &e->peer,
				     .fd = ovmc_peer_fd,
				     .dispatch = ovmc_peer_dispatch,
				     .destroy = exec_destroy};
	return 0;
}
