// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Device front-end, CUSE mode: a real character device /dev/<name>
 * (S_ISCHR, like the kernel driver's misc device) served by the same
 * request handlers as the FUSE file (dev.c). CUSE ioctls are unrestricted,
 * so the kernel itself copies the whole 32-byte HMC id through the retry
 * protocol; no process_vm_readv() is needed.
 *
 * Untested on the project's machines: their kernels have FUSE but no CUSE
 * (/dev/cuse). It builds, and fails cleanly there.
 */
#include "dev_impl.h"

#include "log.h"

#include <cuse_lowlevel.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define COMPONENT "device"

static void cuse_open(fuse_req_t req, struct fuse_file_info *fi)
{
	ovmc_dev_op_open(req, fi);
}

static void cuse_read(fuse_req_t req, size_t size, off_t off, struct fuse_file_info *fi)
{
	(void)off;
	ovmc_dev_op_read(req, size, fi);
}

static void cuse_write(fuse_req_t req, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)off;
	ovmc_dev_op_write(req, buf, size, fi);
}

static void cuse_flush(fuse_req_t req, struct fuse_file_info *fi)
{
	ovmc_dev_op_flush(req, fi);
}

static void cuse_release(fuse_req_t req, struct fuse_file_info *fi)
{
	ovmc_dev_op_release(req, fi);
}

static void cuse_ioctl(fuse_req_t req, int cmd, void *arg, struct fuse_file_info *fi,
		       unsigned int flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	ovmc_dev_op_ioctl(req, (unsigned int)cmd, arg, fi, flags, in_buf, in_bufsz, out_bufsz);
}

static void cuse_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	ovmc_dev_op_poll(req, fi, ph);
}

/*
 * The kernel created the device; the node gets root:root 0600 from
 * devtmpfs, so apply the configured mode and group (udev rules may change
 * them again later).
 */
static void cuse_init_done(void *userdata)
{
	struct ovmc_dev *dev = userdata;

	if (chmod(dev->path, dev->cfg.mode & 07777) != 0)
		ovmc_log(OVMC_LOG_WARN, COMPONENT, "chmod %s: %s", dev->path, strerror(errno));
	if (dev->cfg.set_gid && chown(dev->path, (uid_t)-1, dev->cfg.gid) != 0)
		ovmc_log(OVMC_LOG_WARN, COMPONENT, "chown %s: %s", dev->path, strerror(errno));
	ovmc_log(OVMC_LOG_INFO, COMPONENT, "device ready at %s", dev->path);
}

static const struct cuse_lowlevel_ops cuse_ops = {
	.init = ovmc_dev_op_init,
	.init_done = cuse_init_done,
	.open = cuse_open,
	.read = cuse_read,
	.write = cuse_write,
	.flush = cuse_flush,
	.release = cuse_release,
	.ioctl = cuse_ioctl,
	.poll = cuse_poll,
};

int ovmc_dev_cuse_start(struct ovmc_dev *dev)
{
	char prog[] = "openvmc";
	char *argv[] = {prog, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	char devname[300], fdpath[32];
	const char *info[] = {devname};
	struct cuse_info ci = {
		.dev_info_argc = 1,
		.dev_info_argv = info,
		.flags = CUSE_UNRESTRICTED_IOCTL,
	};
	int fd, rc;

	if (snprintf(devname, sizeof(devname), "DEVNAME=%s", dev->cuse_name) >=
	    (int)sizeof(devname)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "CUSE device name too long");
		return -EINVAL;
	}
	fd = open("/dev/cuse", O_RDWR | O_CLOEXEC);
	if (fd < 0) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT,
			 "CUSE is not available (/dev/cuse: %s): load the cuse module, or serve "
			 "a FUSE file instead of --cuse",
			 strerror(-rc));
		return rc == -ENOENT || rc == -ENXIO ? -ENODEV : rc;
	}
	dev->se = cuse_lowlevel_new(&args, &ci, &cuse_ops, dev);
	fuse_opt_free_args(&args);
	if (!dev->se) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "libfuse refused the CUSE session");
		close(fd);
		return -EIO;
	}
	/* "/dev/fd/N" hands libfuse an already open channel (no mount). */
	snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", fd);
	if (fuse_session_mount(dev->se, fdpath) != 0) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "libfuse refused the CUSE channel");
		close(fd);
		return -EIO;
	}
	dev->fd = fd;
	return 0;
}
