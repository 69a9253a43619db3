// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * openvmc: the whole Virtual Management Channel in one process. The
 * emulated hypervisor (with its layer-2 backend) and the partition's
 * driver run on the in-process platform, and the driver's device file is
 * served through FUSE (or CUSE) for applications written for Linux's
 * /dev/ibmvmc.
 *
 *   openvmc /run/vmc               serves /run/vmc/ibmvmc (echo backend)
 *   openvmc --device /dev/ibmvmc   where applications look by default
 *
 * See openvmc(1).
 */
#include "ctl.h"
#include "drvhost.h"
#include "hvhost.h"
#include "log.h"
#include "loop.h"
#include "opts.h"

#include <openvmc/common.h>
#include <openvmc/machine.h>

#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEVICE_NAME "ibmvmc"

struct options {
	const char *device;
	const char *dir;
	mode_t mode;
	gid_t gid;
	bool set_gid;
	struct ovmc_drv_config drv;
	struct hvhost_config hv;
	bool no_vmc;
	long request_vmc_rc;
	const char *control;
	const char *capture;
	enum ovmc_log_level log_level;
	bool cuse;
};

static void usage(FILE *out)
{
	fputs("Usage: openvmc [options] DIR          serve DIR/ibmvmc\n"
	      "       openvmc [options] --device PATH  serve PATH (e.g. /dev/ibmvmc)\n"
	      "       openvmc [options] --cuse         a CUSE character device /dev/ibmvmc\n"
	      "\n"
	      "Runs the emulated POWER hypervisor and the VMC driver in one process and\n"
	      "serves the driver's device file with the Linux ibmvmc ABI.\n"
	      "\n"
	      "  -d, --device PATH        device file to serve (CUSE: /dev/NAME)\n"
	      "  -m, --mode OCTAL         permissions of the device file (0600)\n"
	      "  -g, --group NAME|GID     group of the device file\n"
	      "  -n, --hmcs N             HMC connections, both sides (1; Linux allows 2; max 255)\n"
	      "  -p, --pool N             buffers per HMC connection (32)\n"
	      "  -u, --mtu N              largest message in bytes (4096)\n"
	      "  -q, --hv-crq N           entries of the hypervisor's queue (256)\n"
	      "  -N, --no-vmc             no VMC until an application asks (REQUESTVMC)\n"
	      "  -R, --request-vmc-rc RC  test knob: H_REQUEST_VMC answers RC (e.g. H_AUTHORITY)\n"
	      "  -b, --backend SPEC       layer-2 backend (echo)\n"
	      "  -c, --control PATH       control socket (status, sessions, send, restart,\n"
	      "                           trace)\n"
	      "  -t, --trace              log every CRQ entry and RDMA in readable form\n"
	      "  -w, --capture FILE       write every CRQ entry and RDMA to a pcapng file\n"
	      "  -l, --log-level LEVEL    error, warn, info (default), debug or trace\n"
	      "  -C, --cuse               serve a CUSE character device instead of a FUSE file\n"
	      "  -h, --help               this text\n"
	      "  -V, --version            the version\n",
	      out);
}

/* Returns -1 to go on, or the exit status. */
static int parse_options(int argc, char **argv, struct options *o)
{
	static const struct option longs[] = {
		{"device", required_argument, NULL, 'd'},
		{"mode", required_argument, NULL, 'm'},
		{"group", required_argument, NULL, 'g'},
		{"hmcs", required_argument, NULL, 'n'},
		{"pool", required_argument, NULL, 'p'},
		{"mtu", required_argument, NULL, 'u'},
		{"hv-crq", required_argument, NULL, 'q'},
		{"no-vmc", no_argument, NULL, 'N'},
		{"request-vmc-rc", required_argument, NULL, 'R'},
		{"backend", required_argument, NULL, 'b'},
		{"control", required_argument, NULL, 'c'},
		{"trace", no_argument, NULL, 't'},
		{"capture", required_argument, NULL, 'w'},
		{"log-level", required_argument, NULL, 'l'},
		{"cuse", no_argument, NULL, 'C'},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	unsigned long v;
	int c;

	while ((c = getopt_long(argc, argv, "d:m:g:n:p:u:q:NR:b:c:tw:l:ChV", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			o->device = optarg;
			break;
		case 'm':
			if (!opts_mode(optarg, &o->mode))
				return opts_usage_error("bad mode \"%s\" (octal, e.g. 0660)", optarg);
			break;
		case 'g':
			if (!opts_group(optarg, &o->gid))
				return opts_usage_error("unknown group \"%s\"", optarg);
			o->set_gid = true;
			break;
		case 'n':
			if (!opts_uint(optarg, 1, 255, &v))
				return opts_usage_error("--hmcs takes 1..255, not \"%s\"", optarg);
			o->drv.max_hmcs = o->hv.hv.max_hmcs = (uint8_t)v;
			break;
		case 'p':
			if (!opts_uint(optarg, 1, 1024, &v))
				return opts_usage_error("--pool takes 1..1024, not \"%s\"", optarg);
			o->drv.pool_size = o->hv.hv.pool_size = (uint16_t)v;
			break;
		case 'u':
			if (!opts_uint(optarg, 32, 65536, &v))
				return opts_usage_error("--mtu takes 32..65536, not \"%s\"", optarg);
			o->drv.max_mtu = o->hv.hv.mtu = (uint32_t)v;
			break;
		case 'q':
			if (!opts_uint(optarg, 2, 65535, &v))
				return opts_usage_error("--hv-crq takes 2..65535, not \"%s\"", optarg);
			o->hv.hv.crq_size = (uint16_t)v;
			break;
		case 'N':
			o->no_vmc = true;
			break;
		case 'R':
			if (!opts_hcall_rc(optarg, &o->request_vmc_rc))
				return opts_usage_error("unknown hcall return code \"%s\"", optarg);
			break;
		case 'b':
			o->hv.backend = optarg;
			break;
		case 'c':
			o->control = optarg;
			break;
		case 't':
			o->hv.trace = true;
			break;
		case 'w':
			o->hv.capture = optarg;
			break;
		case 'l':
			if (ovmc_log_level_parse(optarg, &o->log_level))
				return opts_usage_error("unknown log level \"%s\"", optarg);
			break;
		case 'C':
			o->cuse = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("openvmc %s\n", OVMC_VERSION_STRING);
			return 0;
		default:
			fputs("Try 'openvmc --help'.\n", stderr);
			return 2;
		}
	}
	if (optind < argc)
		o->dir = argv[optind++];
	if (optind < argc)
		return opts_usage_error("unexpected argument \"%s\"", argv[optind]);
	if (o->dir && (o->device || o->cuse))
		return opts_usage_error("give DIR or --device/--cuse, not both (%s)", o->dir);
	if (!o->dir && !o->device && !o->cuse)
		return opts_usage_error("%s", "no device: give DIR or --device PATH");
	if (o->cuse && o->device &&
	    (strncmp(o->device, "/dev/", 5) != 0 || !o->device[5] || strchr(o->device + 5, '/')))
		return opts_usage_error("a --cuse device is /dev/NAME, not \"%s\"", o->device);
	return -1;
}

int main(int argc, char **argv)
{
	struct options o = {.mode = 0600, .log_level = OVMC_LOG_INFO,
			    .request_vmc_rc = OVMC_H_SUCCESS};
	struct drvhost_config dc = {0};
	struct ovmc_inproc_config pc = {0};
	struct opts_dirs dirs = {0};
	struct ovmc_loop *loop = NULL;
	struct hvhost *hv = NULL;
	struct ovmc_platform *plat = NULL;
	struct drvhost *drv = NULL;
	struct ctl *ctl = NULL;
	char *dev_path = NULL;
	int status = 1, rc;

	opts_program(argv[0]);
	ovmc_drv_config_default(&o.drv);
	ovmc_hv_config_default(&o.hv.hv);
	rc = parse_options(argc, argv, &o);
	if (rc >= 0)
		return rc;
	ovmc_log_setup(argv[0], o.log_level);

	if (o.dir) {
		if (opts_make_dirs(o.dir, 0755, &dirs))
			goto out;
		if (asprintf(&dev_path, "%s/%s", o.dir, DEVICE_NAME) < 0)
			goto out;
	}
	dc.drv = o.drv;
	dc.dev.path = o.dir ? dev_path : o.device;
	dc.dev.mode = o.mode;
	dc.dev.gid = o.gid;
	dc.dev.set_gid = o.set_gid;
	dc.dev.cuse = o.cuse;
	/* parse_options() made sure a CUSE --device starts with /dev/. */
	dc.dev.cuse_name = o.cuse && o.device ? strrchr(o.device, '/') + 1 : DEVICE_NAME;

	/* First: SIGINT/SIGTERM are blocked from here on, so none is lost
	 * while the device is being set up. */
	rc = ovmc_loop_new(&loop);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	if (hvhost_new(loop, &o.hv, &hv))
		goto out;
	pc.mem_size = ovmc_drv_memory_required(&o.drv);
	pc.vmc_present = !o.no_vmc;
	pc.request_vmc_rc = o.request_vmc_rc;
	pc.hv_window_size = ovmc_hv_memory_required(&o.hv.hv);
	pc.hv_queue_entries = o.hv.hv.crq_size;
	rc = ovmc_inproc_new(hvhost_machine(hv), &pc, &plat);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot create the partition (%zu bytes): %s",
			 pc.mem_size, ovmc_strerror(rc));
		goto out;
	}
	if (drvhost_new(loop, plat, &dc, &drv))
		goto out;
	if (o.control) {
		struct ctl_targets t = {.hv = hv, .drv = drv};

		if (ctl_new(loop, o.control, &t, &ctl))
			goto out;
	}
	rc = ovmc_loop_run(loop);
	if (rc)
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
	else if (ovmc_loop_signal(loop))
		status = 0;
	ovmc_log(OVMC_LOG_INFO, "main", "shutting down%s", status ? " after an error" : "");
out:
	ctl_free(ctl);
	drvhost_free(drv);
	if (plat)
		ovmc_platform_destroy(plat);
	hvhost_free(hv);
	ovmc_loop_free(loop);
	free(dev_path);
	opts_remove_dirs(&dirs);
	return status;
}
