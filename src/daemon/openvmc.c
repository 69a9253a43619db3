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
#include "notify.h"
#include "opts.h"

#include <openvmc/common.h>
#include <openvmc/machine.h>

#include <stdio.h>
#include <stdlib.h>

static void usage(FILE *out)
{
	fputs("Usage: openvmc [options] DIR          serve DIR/ibmvmc\n"
	      "       openvmc [options] --device PATH  serve PATH (e.g. /dev/ibmvmc)\n"
	      "       openvmc [options] --no-device DIR  only the session socket DIR/ibmvmc.sock\n"
	      "       openvmc [options] --cuse         a CUSE character device /dev/ibmvmc\n"
	      "\n"
	      "Runs the emulated POWER hypervisor and the VMC driver in one process and\n"
	      "serves the driver's device file with the Linux ibmvmc ABI.\n"
	      "\n"
	      "  -d, --device PATH        device file to serve (CUSE: /dev/NAME)\n"
	      "  -m, --mode OCTAL         permissions of the device file (0600)\n"
	      "  -g, --group NAME|GID     group of the device file and the session socket;\n"
	      "                           its members may use the channel\n"
	      "  -S, --session-socket PATH|none\n"
	      "                           the session socket for vmc-run and the client\n"
	      "                           library (default: the device path + \".sock\")\n"
	      "  -D, --no-device          serve no device file (no FUSE), only the socket\n"
	      "  -n, --hmcs N             HMC connections, both sides (1; Linux allows 2; max 255)\n"
	      "  -p, --pool N             buffers per HMC connection (32)\n"
	      "  -u, --mtu N              largest message in bytes (4096)\n"
	      "  -q, --hv-crq N           entries of the hypervisor's queue (256)\n"
	      "  -N, --no-vmc             no VMC until an application asks (REQUESTVMC)\n"
	      "  -R, --request-vmc-rc RC  test knob: H_REQUEST_VMC answers RC (e.g. H_AUTHORITY)\n"
	      "  -b, --backend SPEC       layer-2 backend (echo)\n"
	      "  -c, --control PATH|none  control socket (status, sessions, send, restart,\n"
	      "                           trace); default " OVMC_DEFAULT_CTL_OPENVMC "\n"
	      "      --control-group GRP  members of group GRP may use every control command\n"
	      "  -t, --trace              log every CRQ entry and RDMA in readable form\n"
	      "  -w, --capture FILE       write every CRQ entry and RDMA to a pcapng file\n"
	      "  -l, --log-level LEVEL    error, warn, info (default), debug or trace\n"
	      "  -C, --cuse               serve a CUSE character device instead of a FUSE file\n"
	      "  -h, --help               this text\n"
	      "  -V, --version            the version\n",
	      out);
}

static const struct opts_program program = {
	.name = "openvmc",
	.shortopts = "d:m:g:n:p:u:q:NR:b:c:tw:l:CDS:hV",
	.longs = OPTS_CONTROL_GROUP,
	.usage = usage,
	.default_control = OVMC_DEFAULT_CTL_OPENVMC,
	.device = true,
};

int main(int argc, char **argv)
{
	struct opts o;
	struct drvhost_config dc = {0};
	struct hvhost_config hc = {0};
	struct ovmc_inproc_config pc = {0};
	struct opts_dirs dirs = {0};
	struct ovmc_loop *loop = NULL;
	struct hvhost *hv = NULL;
	struct ovmc_platform *plat = NULL;
	struct drvhost *drv = NULL;
	struct ctl *ctl = NULL;
	char *dev_path = NULL, *sock_path = NULL;
	int status = 1, rc;

	ovmc_notify_init();
	opts_program(argv[0]);
	rc = opts_parse(argc, argv, &program, &o);
	if (rc >= 0)
		return rc;
	ovmc_log_setup(argv[0], o.log_level);
	/* Both sides offer the same capabilities. */
	opts_drv_config(&o, &dc.drv);
	opts_hv_config(&o, &hc);
	if (opts_dev_config(&o, &dirs, &dev_path, &dc.dev))
		goto out;
	dc.no_device = o.no_device;
	if (opts_sock_config(&o, &dc.dev, &dc.drv, &sock_path, &dc.sock))
		goto out;

	/* First: SIGINT/SIGTERM are blocked from here on, so none is lost
	 * while the device is being set up. */
	rc = ovmc_loop_new(&loop);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
		goto out;
	}
	if (hvhost_new(loop, &hc, &hv))
		goto out;
	pc.mem_size = ovmc_drv_memory_required(&dc.drv);
	pc.vmc_present = !o.no_vmc;
	pc.request_vmc_rc = o.request_vmc_rc;
	pc.hv_window_size = ovmc_hv_memory_required(&hc.hv);
	pc.hv_queue_entries = hc.hv.crq_size;
	/* The driver host drains the CRQ in every pass of the loop. */
	pc.irq_polled = true;
	rc = ovmc_inproc_new(hvhost_machine(hv), &pc, &plat);
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, "main", "cannot create the partition (%zu bytes): %s",
			 pc.mem_size, ovmc_strerror(rc));
		goto out;
	}
	if (drvhost_new(loop, plat, &dc, &drv))
		goto out;
	{
		struct ctl_targets t = {.hv = hv, .drv = drv};

		t.use_group = o.set_control_gid;
		t.group = o.control_gid;

		if (opts_control(loop, &o, &program, &t, &dirs, &ctl))
			goto out;
	}
	ovmc_notify_ready("serving %s", dc.dev.path ? dc.dev.path : "the CUSE device");
	rc = ovmc_loop_run(loop);
	if (rc)
		ovmc_log(OVMC_LOG_ERROR, "main", "event loop: %s", ovmc_strerror(rc));
	else if (ovmc_loop_signal(loop))
		status = 0;
	ovmc_log(OVMC_LOG_INFO, "main", "shutting down%s", status ? " after an error" : "");
	ovmc_notify_stopping();
out:
	ctl_free(ctl);
	drvhost_free(drv);
	if (plat)
		ovmc_platform_destroy(plat);
	hvhost_free(hv);
	ovmc_loop_free(loop);
	free(dev_path);
	free(sock_path);
	opts_remove_dirs(&dirs);
	return status;
}
