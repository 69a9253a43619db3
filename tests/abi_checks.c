// SPDX-License-Identifier: GPL-2.0-or-later
#include "abi_checks.h"

#include "harness.h"

#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

struct client *blocked_reader(const struct daemon *d, const struct daemon *hv, const char *id)
{
	struct client *c = SPAWN("recv", d->path, id);

	client_expect(c, "open", READY_TIMEOUT_MS);
	ctl_wait(hv, "sessions", "index 0: open", 5000);
	/* Through the session socket the read blocks in the client itself. */
	if (d->sock_only)
		wait_in_syscall(c->pid, SYS_recvmsg, 5000);
	else
		ctl_wait(d, "status", " parked 1 ", 5000);
	return c;
}

void abi_echo_sizes(const struct daemon *d)
{
	char out[512];

	CLIENT_OUT(out, "echo", d->path, "HMC-ECHO", "1", "4096");
	CHECK(strstr(out, "echoed 1..4096"));
}

void abi_open_then_write(const struct daemon *d)
{
	char out[512];
	unsigned busy;
	const char *line;

	CLIENT_OUT(out, "echo", d->path, "HMC-OPEN", "1", "1");
	line = strstr(out, "open complete after ");
	CHECK(line && sscanf(line, "open complete after %u EBUSY", &busy) == 1);
	CHECK(strstr(out, "echoed 1..1"));
}

void abi_nonblock_eagain(const struct daemon *d)
{
	char out[512];

	CLIENT_OUT(out, "nonblock", d->path, "HMC-NONBLOCK");
	CHECK(strstr(out, "O_NONBLOCK read, nothing queued: EAGAIN"));
}

void abi_poll_pollin(const struct daemon *d)
{
	char out[1024];

	CLIENT_OUT(out, "poll", d->path, "HMC-POLL");
	CHECK(strstr(out, "poll with nothing queued: timeout"));
	CHECK(strstr(out, "poll with a message queued: POLLIN"));
	CHECK(strstr(out, "poll after reading: timeout"));
}

void abi_blocking_read_gets_hv_message(const struct daemon *d, const struct daemon *hv)
{
	struct client *c = blocked_reader(d, hv, "HMC-RECV");
	char out[512];

	ctl(hv, "send 0 68656c6c6f2066726f6d20687621", out, sizeof(out));
	CHECK(strncmp(out, "ok\n", 3) == 0);
	client_expect(c, "got 68656c6c6f2066726f6d20687621", 5000);
	CHECK_EQ(client_wait(c, 5000), 0);
}

void abi_two_sessions(const struct daemon *d, const struct daemon *hv)
{
	struct client *a = SPAWN("session", d->path, "APPLICATION-A");
	struct client *b = SPAWN("session", d->path, "APPLICATION-B");
	struct client *ea, *eb;
	char out[4096];

	client_expect(a, "open", READY_TIMEOUT_MS);
	client_expect(b, "open", READY_TIMEOUT_MS);
	ctl(hv, "sessions", out, sizeof(out));
	CHECK(strstr(out, "partition 1 index 0: open") && strstr(out, "partition 1 index 1: open"));
	CHECK(strstr(out, "\"APPLICATION-A\"") && strstr(out, "\"APPLICATION-B\""));
	ctl(d, "status", out, sizeof(out));
	CHECK(strstr(out, "negotiated: hmcs 2 "));
	close(a->in);
	a->in = -1;
	close(b->in);
	b->in = -1;
	CHECK_EQ(client_wait(a, 5000), 0);
	CHECK_EQ(client_wait(b, 5000), 0);

	/* Both at once, each checking that it gets only its own echoes. */
	ctl_wait(hv, "sessions", "index 0: closed\npartition 1 index 1: closed", 5000);
	ea = SPAWN("echo", d->path, "ECHO-A", "1", "1500");
	eb = SPAWN("echo", d->path, "ECHO-B", "1", "1500");
	client_read(ea, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK(strstr(out, "echoed 1..1500"));
	CHECK_EQ(client_wait(ea, 5000), 0);
	client_read(eb, out, sizeof(out), CLIENT_TIMEOUT_MS);
	CHECK(strstr(out, "echoed 1..1500"));
	CHECK_EQ(client_wait(eb, 5000), 0);
}

void abi_threads(const struct daemon *d)
{
	char out[512];

	CLIENT_OUT(out, "threads", d->path, "HMC-THREADS");
	CHECK(strstr(out, "write completed while the reader was blocked"));
	CHECK(strstr(out, "reader got the echo"));
}

void abi_efault(const struct daemon *d)
{
	size_t from = log_size(d);
	char out[4096];

	CLIENT_OUT(out, "efault", d->path, "HMC-EFAULT");
	CHECK(strstr(out, "QUERY into NULL: EFAULT"));
	CHECK(strstr(out, "QUERY into (void *)1: EFAULT"));
	CHECK(strstr(out, "REQUESTVMC into NULL: EFAULT"));
	CHECK(strstr(out, "write from NULL before SETHMCID: EFAULT"));
	CHECK(strstr(out, "read into NULL before SETHMCID: EFAULT"));
	CHECK(strstr(out, "SETHMCID from NULL: EFAULT"));
	CHECK(strstr(out, "SETHMCID with the id running into an unmapped page: EFAULT"));
	CHECK(strstr(out, "SETHMCID after the faulting ones: 0"));
	CHECK(strstr(out, "write from NULL: EFAULT"));
	CHECK(strstr(out, "write from an unmapped page: EFAULT"));
	CHECK(strstr(out, "read into NULL, a message queued: EFAULT\n"
			  "after the read into NULL: still POLLIN\n"
			  "the message read after the fault is whole"));
	CHECK(strstr(out, "read into an unmapped page, a message queued: EFAULT\n"
			  "after the read into an unmapped page: still POLLIN\n"
			  "the message read after the fault is whole"));
	CHECK(strstr(out, "echo after the faults: ok"));
	/* Through FUSE only the id cut short reaches the daemon; it says why
	 * it failed. Through the session socket the client finds every fault. */
	if (!d->sock_only) {
		CHECK(log_has(d, from, "32 bytes of the HMC id at 0x"));
		CHECK(log_has(d, from, "answering EFAULT"));
	}
}

void abi_eintr(const struct daemon *d)
{
	char out[512];

	CLIENT_OUT(out, "eintr", d->path, "HMC-EINTR");
	CHECK(strstr(out, "blocking read, SIGALRM with SA_RESTART: EINTR"));
	CHECK(strstr(out, "a later message is read on the same fd"));
}

void abi_exhaust_ebusy(const struct daemon *d)
{
	char out[1024];

	CLIENT_OUT(out, "exhaust", d->path, "HMC-EXHAUST");
	CHECK(strstr(out, "write with every buffer in flight: EBUSY after "));
	CHECK(strstr(out, "poll with every buffer in flight: no POLLOUT"));
	CHECK(strstr(out, "poll after reading one echo: POLLOUT"));
	CHECK(strstr(out, "echoes arrived in order"));
}

void abi_mode_0600(const struct daemon *d)
{
	struct stat st;

	CHECK(stat(d->path, &st) == 0);
	CHECK_EQ(st.st_mode & 07777, 0600);
	CHECK_EQ(st.st_uid, geteuid());
}
