// SPDX-License-Identifier: GPL-2.0-or-later
#include "tshark.h"

#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/file.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* scripts/packages.sh holds it (exclusive) from install to removal. */
#define PACKAGES_LOCK "/run/lock/openvmc-packages.lock"
#define LOCK_WAIT_S 600

static int lock_packages(void)
{
	int fd = open(PACKAGES_LOCK, O_RDONLY | O_CLOEXEC);
	time_t end = time(NULL) + LOCK_WAIT_S;

	if (fd < 0)
		return -1; /* never created: no packages step ran here */
	while (flock(fd, LOCK_SH | LOCK_NB) != 0) {
		if (errno != EWOULDBLOCK || time(NULL) > end) {
			close(fd);
			FAIL("%s still held after %d s", PACKAGES_LOCK, LOCK_WAIT_S);
		}
		usleep(100000);
	}
	return fd;
}

static char *slurp(int fd)
{
	size_t len = 0, cap = 1 << 16;
	char *out = malloc(cap);

	CHECK(out);
	for (ssize_t n; (n = read(fd, out + len, cap - len - 1)) > 0;) {
		len += (size_t)n;
		if (len + 1 == cap) {
			cap *= 2;
			out = realloc(out, cap);
			CHECK(out);
		}
	}
	out[len] = '\0';
	return out;
}

char *ovmc_tshark(const char *source_dir, const char *file, const char *const *args)
{
	const char *argv[64] = {"tshark", "-X", NULL, "-r", file};
	char lua[512], errpath[] = "/tmp/ovmc-tshark-XXXXXX", *out, *err;
	size_t argc = 5;
	int pipefd[2], errfd, lock, status;
	pid_t pid, parent = getpid();

	snprintf(lua, sizeof(lua), "lua_script:%s/dissector/openvmc.lua", source_dir);
	argv[2] = lua;
	for (; *args && argc < 63; args++)
		argv[argc++] = *args;
	argv[argc] = NULL;
	errfd = mkstemp(errpath);
	CHECK(errfd >= 0);
	unlink(errpath);
	CHECK_EQ(pipe(pipefd), 0);
	lock = lock_packages();
	pid = fork();
	CHECK(pid >= 0);
	if (pid == 0) {
		ovmc_test_die_with_parent(parent);
		dup2(pipefd[1], STDOUT_FILENO);
		dup2(errfd, STDERR_FILENO);
		close(pipefd[0]);
		execvp("tshark", (char *const *)argv);
		_exit(127);
	}
	close(pipefd[1]);
	out = slurp(pipefd[0]);
	close(pipefd[0]);
	CHECK_EQ(waitpid(pid, &status, 0), pid);
	if (lock >= 0)
		close(lock);
	lseek(errfd, 0, SEEK_SET);
	err = slurp(errfd);
	close(errfd);
	if (strstr(err, "openvmc.lua: an openvmc dissector is loaded already")) {
		free(out);
		fprintf(stderr, "%s", err);
		free(err);
		FAIL("an installed openvmc dissector shadows dissector/openvmc.lua: remove the "
		     "openvmc package to test the source's");
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
		fprintf(stderr, "%s", err);
		free(out);
		free(err);
		FAIL("tshark failed (status 0x%x): is the tshark package installed?", status);
	}
	free(err);
	return out;
}
