// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmcctl: command-line client of openvmc.
 *
 * Talks to an ibmvmc device only through the Linux driver's ABI (open,
 * ioctl, read, write, poll, close), so it works the same against the kernel
 * driver and against the openvmc device file, and to openvmc daemons through
 * their line-based control sockets.
 *
 *   vmcctl query --wait-ready
 *   vmcctl open --hmc-id test --message hello
 *   printf 'a\nb\n' | vmcctl pipe --hmc-id test
 *   vmcctl status                 (the first default control socket there)
 *   vmcctl trace -c /run/openvmc/hv.ctl --count 20
 *
 * See man/vmcctl.1.
 */
#include "vmcctl.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static void usage(FILE *f)
{
	fputs("Usage: vmcctl [-d PATH | --socket PATH] COMMAND [OPTIONS] [ARGS]\n"
	      "Client of an ibmvmc device (Virtual Management Channel) and of openvmc\n"
	      "control sockets.\n"
	      "\n"
	      "Device commands:\n"
	      "  query [--wait-ready[=MS]]     show the driver state and DRC index (--json)\n"
	      "  request-vmc                   ask the hypervisor for a VMC device\n"
	      "  open --hmc-id ID [OPTIONS]    open an HMC session, send and receive messages\n"
	      "  pipe --hmc-id ID [--hex]      one message per stdin line, one line per reply\n"
	      "Control-socket commands:\n"
	      "  status [-c PATH] [--json]     show the status of an openvmc daemon\n"
	      "  hv send|restart|sessions      control the emulated hypervisor\n"
	      "  ctl -c PATH LINE...           send one control line, print the reply\n"
	      "  trace [-c PATH] [--count N]   print the channel's traffic as it happens\n"
	      "\n"
	      "Options:\n"
	      "  -d, --device PATH   device file (default: $OPENVMC_DEVICE, else /dev/ibmvmc);\n"
	      "                      without it, its session socket PATH.sock if there\n"
	      "      --socket PATH   reach the driver through this session socket of\n"
	      "                      openvmc or openvmcd instead (no device file needed)\n"
	      "  -h, --help          show this help and exit\n"
	      "  -V, --version       show the version and exit\n"
	      "\n"
	      "Exit status: 0 success, 1 failure, 2 usage error, 3 timeout.\n"
	      "Run 'vmcctl COMMAND --help' for the options of a command.\n",
	      f);
}

struct command {
	const char *name;
	bool device;
	union {
		int (*dev)(int argc, char **argv, const char *device);
		int (*ctl)(int argc, char **argv);
	} fn;
};

static const struct command commands[] = {
	{.name = "query", .device = true, .fn.dev = cmd_query},
	{.name = "request-vmc", .device = true, .fn.dev = cmd_request_vmc},
	{.name = "open", .device = true, .fn.dev = cmd_open},
	{.name = "pipe", .device = true, .fn.dev = cmd_pipe},
	{.name = "status", .device = false, .fn.ctl = cmd_status},
	{.name = "hv", .device = false, .fn.ctl = cmd_hv},
	{.name = "ctl", .device = false, .fn.ctl = cmd_ctl},
	{.name = "trace", .device = false, .fn.ctl = cmd_trace},
};

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{"device", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, 'S'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *device = getenv("OPENVMC_DEVICE");
	int c;

	if (!device || !*device)
		device = VMCCTL_DEFAULT_DEVICE;
	opterr = 0;
	/* '+': stop at the command name; its options are parsed by the command. */
	while ((c = getopt_long(argc, argv, "+:d:hV", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case 'S':
			dev_use_socket(optarg);
			break;
		case 'h':
			usage(stdout);
			return finish_stdout(VMCCTL_OK);
		case 'V':
			print_version();
			return finish_stdout(VMCCTL_OK);
		default:
			return option_error(NULL, c, argv);
		}
	}
	if (optind >= argc)
		return usage_error(NULL, "no command given (query, request-vmc, open, pipe, status, "
				   "hv, ctl, trace)");

	const char *name = argv[optind];

	if (strcmp(name, "help") == 0) {
		usage(stdout);
		return finish_stdout(VMCCTL_OK);
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		const struct command *cmd = &commands[i];
		int sub_argc = argc - optind;
		char **sub_argv = argv + optind;
		int rc;

		if (strcmp(name, cmd->name) != 0)
			continue;
		/* Restart getopt from the command's own argv[1]. */
		optind = 0;
		if (cmd->device)
			rc = cmd->fn.dev(sub_argc, sub_argv, device);
		else
			rc = cmd->fn.ctl(sub_argc, sub_argv);
		return finish_stdout(rc);
	}
	return usage_error(NULL, "unknown command '%s'", name);
}
