// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Device front-end: FUSE mode, and the request handlers shared with the
 * CUSE mode (cuse.c).
 *
 * FUSE mode mounts a filesystem whose root inode is the device file itself,
 * directly on the file, so `open(path)` reaches us with no directory
 * around it. What FUSE needs for a character-device ABI (measured, see
 * docs DEVICE-FUSE.md): direct_io + nonseekable for one message per
 * read()/write(), FOPEN_STREAM so a write is not serialised behind a
 * blocked read on the same fd, replies to interrupts so killed readers do
 * not hang, and process_vm_readv() for the 32-byte SETHMCID id because a
 * restricted FUSE ioctl passes only sizeof(pointer) bytes.
 */
#include "dev_impl.h"

#include "json.h"
#include "log.h"
#include "loop.h"

#include <openvmc/ibmvmc.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <sys/uio.h>
#include <sys/vfs.h>
#include <sys/wait.h>
#include <unistd.h>

#define COMPONENT "device"
/* The attributes only change on write (mtime); a short cache is enough. */
#define ATTR_TIMEOUT_S 1.0
#define FUSE_SUPER_MAGIC_VALUE 0x65735546
/* sizeof(struct fuse_in_header) of the kernel ABI: a shorter read is broken. */
#define FUSE_IN_HEADER_LEN 40u
/* Stale mounts stacked on the path that ovmc_dev_new() will detach. */
#define MAX_STALE_MOUNTS 8

/*
 * Open flags as the kernel reads them (uapi linux/fuse.h). libfuse 3.14's
 * fuse_file_info has no FOPEN_STREAM bit, so open is answered with the raw
 * reply structure.
 */
#define KERNEL_FOPEN_DIRECT_IO (1u << 0)
#define KERNEL_FOPEN_NONSEEKABLE (1u << 2)
#define KERNEL_FOPEN_STREAM (1u << 4)

struct kernel_open_out {
	uint64_t fh;
	uint32_t open_flags;
	int32_t backing_id; /* padding before kernel 6.9 */
};
_Static_assert(sizeof(struct kernel_open_out) == 16, "struct fuse_open_out is 16 bytes");

/*
 * The ioctl numbers in both encodings a 64-bit application may carry: the
 * generic one (x86_64, arm64, s390x ...) and powerpc's, whose direction
 * bits differ (PROTOCOL.md 5.3). Applications built from copied ppc64
 * constants therefore work on any host, and the reverse.
 */
#define IOC_SETHMCID_GENERIC 0x4008CC00u
#define IOC_SETHMCID_PPC64 0x8008CC00u
#define IOC_QUERY_GENERIC 0x800CCC01u
#define IOC_QUERY_PPC64 0x400CCC01u
#define IOC_REQUESTVMC_GENERIC 0x8004CC02u
#define IOC_REQUESTVMC_PPC64 0x4004CC02u
_Static_assert(VMC_IOCTL_SETHMCID == IOC_SETHMCID_GENERIC ||
		       VMC_IOCTL_SETHMCID == IOC_SETHMCID_PPC64,
	       "a 64-bit host is assumed: SETHMCID encodes sizeof(pointer) == 8");
_Static_assert(sizeof(struct ibmvmc_query_struct) == 12, "QUERY returns 12 bytes");

/* ---- files and parked reads ---- */

static struct dev_file *file_of(const struct fuse_file_info *fi)
{
	return (struct dev_file *)(uintptr_t)fi->fh;
}

static void parked_unlink(struct parked_read *p)
{
	struct dev_file *f = p->file;

	if (p->prev)
		p->prev->next = p->next;
	else
		f->parked_head = p->next;
	if (p->next)
		p->next->prev = p->prev;
	else
		f->parked_tail = p->prev;
	p->prev = p->next = NULL;
}

/* Answer a parked read with the (positive) errno `err` and forget it. */
static void parked_fail(struct parked_read *p, int err)
{
	fuse_req_t req = p->req;

	parked_unlink(p);
	free(p);
	fuse_reply_err(req, err);
}

/*
 * FUSE_INTERRUPT for a parked read (the reader got a signal or was killed).
 * Linux would restart the call (ERESTARTSYS), but FUSE rejects that code
 * and the kernel does not restart reads here: EINTR it is. libfuse holds a
 * reference on the request while this runs, so replying here is safe.
 */
static void parked_interrupted(fuse_req_t req, void *data)
{
	struct parked_read *p = data;

	(void)req;
	p->file->dev->stats.interrupted++;
	parked_fail(p, EINTR);
}

static void park(struct dev_file *f, fuse_req_t req, size_t size)
{
	struct parked_read *p;

	/* An interrupt that already arrived would make libfuse call the
	 * callback from inside fuse_req_interrupt_func(), where replying frees
	 * the request under its own lock: answer it here instead. */
	if (fuse_req_interrupted(req)) {
		f->dev->stats.interrupted++;
		fuse_reply_err(req, EINTR);
		return;
	}
	p = calloc(1, sizeof(*p));
	if (!p) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	p->req = req;
	p->size = size;
	p->file = f;
	p->prev = f->parked_tail;
	if (f->parked_tail)
		f->parked_tail->next = p;
	else
		f->parked_head = p;
	f->parked_tail = p;
	f->dev->stats.parked++;
	fuse_req_interrupt_func(req, parked_interrupted, p);
}

static void ready_remove(struct ovmc_dev *dev, struct dev_file *f)
{
	struct dev_file **pp = &dev->ready_head;

	if (!f->queued)
		return;
	while (*pp != f)
		pp = &(*pp)->queue_next;
	*pp = f->queue_next;
	if (dev->ready_tail == f) {
		dev->ready_tail = NULL;
		for (struct dev_file *x = dev->ready_head; x; x = x->queue_next)
			dev->ready_tail = x;
	}
	f->queue_next = NULL;
	f->queued = false;
}

/* The message goes to the kernel straight from the driver's buffer. */
static void answer_with(void *req, const void *data, size_t len)
{
	fuse_reply_buf(req, data, len);
}

/* One read for req: answered (n >= 0) or the driver's error, untouched. */
static ssize_t read_into_reply(struct ovmc_dev *dev, struct dev_file *f, fuse_req_t req,
			       size_t size)
{
	/* The driver hands nothing over for a read of 0 bytes. */
	if (size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return 0;
	}
	return ovmc_drv_read_to(dev->drv, f->drv_file, size, answer_with, req, ovmc_now_ns());
}

/* Answer the file's parked reads in order while the driver has data (or an error). */
static void serve_parked(struct ovmc_dev *dev, struct dev_file *f)
{
	while (f->parked_head) {
		struct parked_read *p = f->parked_head;
		ssize_t n = read_into_reply(dev, f, p->req, p->size);

		if (n == -EAGAIN)
			return;
		if (n < 0) {
			parked_fail(p, (int)-n);
			continue;
		}
		parked_unlink(p);
		free(p);
	}
}

void ovmc_dev_flush(struct ovmc_dev *dev)
{
	while (dev->ready_head) {
		struct dev_file *f = dev->ready_head;

		dev->ready_head = f->queue_next;
		if (!dev->ready_head)
			dev->ready_tail = NULL;
		f->queue_next = NULL;
		f->queued = false;
		serve_parked(dev, f);
	}
}

void ovmc_dev_file_event(struct ovmc_dev *dev, struct ovmc_drv_file *df, unsigned events)
{
	struct dev_file *f = ovmc_drv_file_user(df);

	if (!f)
		return;
	if (f->ph) {
		/* The kernel polls again after the wake-up, with a new handle. */
		fuse_lowlevel_notify_poll(f->ph);
		fuse_pollhandle_destroy(f->ph);
		f->ph = NULL;
		dev->stats.poll_notifies++;
	}
	/* Reads are answered later (ovmc_dev_flush): this runs inside a
	 * driver call, which must not be re-entered. */
	if ((events & (POLLIN | POLLHUP)) && f->parked_head && !f->queued) {
		f->queued = true;
		if (dev->ready_tail)
			dev->ready_tail->queue_next = f;
		else
			dev->ready_head = f;
		dev->ready_tail = f;
	}
}

/* Close a file on the driver; its parked reads get errno `err` first. */
static void file_destroy(struct ovmc_dev *dev, struct dev_file *f, int err)
{
	while (f->parked_head)
		parked_fail(f->parked_head, err);
	if (f->ph)
		fuse_pollhandle_destroy(f->ph);
	ready_remove(dev, f);
	if (f->prev)
		f->prev->next = f->next;
	else
		dev->files = f->next;
	if (f->next)
		f->next->prev = f->prev;
	dev->n_files--;
	ovmc_drv_file_set_user(f->drv_file, NULL);
	ovmc_drv_close(dev->drv, f->drv_file, ovmc_now_ns());
	free(f);
}

/* ---- request handlers shared with CUSE ---- */

void ovmc_dev_op_open(fuse_req_t req, struct fuse_file_info *fi)
{
	struct ovmc_dev *dev = fuse_req_userdata(req);
	struct dev_file *f = calloc(1, sizeof(*f));
	struct kernel_open_out out = {0};
	struct iovec iov = {.iov_base = &out, .iov_len = sizeof(out)};
	int rc;

	(void)fi;
	if (!f) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	rc = ovmc_drv_open(dev->drv, &f->drv_file);
	if (rc) {
		free(f);
		fuse_reply_err(req, -rc);
		return;
	}
	f->dev = dev;
	ovmc_drv_file_set_user(f->drv_file, f);
	f->next = dev->files;
	if (dev->files)
		dev->files->prev = f;
	dev->files = f;
	dev->n_files++;
	dev->stats.opens++;
	out.fh = (uintptr_t)f;
	out.open_flags = KERNEL_FOPEN_DIRECT_IO | KERNEL_FOPEN_NONSEEKABLE | KERNEL_FOPEN_STREAM;
	if (fuse_reply_iov(req, &iov, 1)) {
		/* The kernel dropped the open (connection aborted): no release
		 * will ever name this file. */
		file_destroy(dev, f, EIO);
	}
}

void ovmc_dev_op_read(fuse_req_t req, size_t size, struct fuse_file_info *fi)
{
	struct dev_file *f = file_of(fi);
	struct ovmc_dev *dev = f->dev;
	ssize_t n;

	dev->stats.reads++;
	/* Anything readable must go to the reads parked before this one. */
	ovmc_dev_flush(dev);
	/* Above every MTU the driver accepts, hence its EINVAL too. */
	if (size > OVMC_DEV_MAX_READ) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	/* With parked reads left after the flush, this finds nothing queued
	 * and only checks the arguments (EINVAL, EIO) before parking too. */
	n = read_into_reply(dev, f, req, size);
	/* Nothing queued: the owner may bring what is in flight, once. Not
	 * with older reads parked on this file: they come first. */
	if (n == -EAGAIN && !f->parked_head && dev->cfg.read_would_wait &&
	    dev->cfg.read_would_wait(dev->cfg.read_would_wait_arg))
		n = read_into_reply(dev, f, req, size);
	if (n >= 0)
		return;
	if (n != -EAGAIN) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	/* fi->flags follows fcntl(F_SETFL) changes made after open. */
	if (fi->flags & O_NONBLOCK) {
		fuse_reply_err(req, EAGAIN);
		return;
	}
	park(f, req, size);
}

void ovmc_dev_op_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi)
{
	struct dev_file *f = file_of(fi);
	struct ovmc_dev *dev = f->dev;
	ssize_t n = ovmc_drv_write(dev->drv, f->drv_file, buf, size, ovmc_now_ns());

	dev->stats.writes++;
	if (n < 0) {
		fuse_reply_err(req, (int)-n);
		return;
	}
	/* Linux updates mtime and ctime on every write. */
	clock_gettime(CLOCK_REALTIME, &dev->mtime);
	dev->ctime = dev->mtime;
	fuse_reply_write(req, (size_t)n);
}

void ovmc_dev_op_flush(fuse_req_t req, struct fuse_file_info *fi)
{
	(void)fi;
	fuse_reply_err(req, 0);
}

void ovmc_dev_op_release(fuse_req_t req, struct fuse_file_info *fi)
{
	struct dev_file *f = file_of(fi);
	struct ovmc_dev *dev = f->dev;

	dev->stats.releases++;
	/* A read in progress holds the file, so none should be parked. */
	file_destroy(dev, f, EBADF);
	fuse_reply_err(req, 0);
}

/*
 * Give `len` bytes back to the caller of an ioctl. The kernel copies them
 * out itself when the encoding told it to (out_bufsz); for the other
 * architecture's number its direction bits say "in", so the bytes are
 * written into the caller with process_vm_writev().
 */
static void reply_out(fuse_req_t req, void *arg, const void *data, size_t len, size_t out_bufsz)
{
	struct iovec local = {.iov_base = (void *)data, .iov_len = len};
	struct iovec remote = {.iov_base = arg, .iov_len = len};
	ssize_t n;

	if (out_bufsz >= len) {
		fuse_reply_ioctl(req, 0, data, len);
		return;
	}
	n = process_vm_writev(fuse_req_ctx(req)->pid, &local, 1, &remote, 1, 0);
	if (n != (ssize_t)len) {
		fuse_reply_err(req, EFAULT);
		return;
	}
	fuse_reply_ioctl(req, 0, NULL, 0);
}

/*
 * CUSE (unrestricted ioctls): ask the kernel to fetch `in_len` bytes at
 * arg and to prepare `out_len` bytes there. Returns true if the request
 * was answered with a retry.
 */
static bool want_retry(fuse_req_t req, unsigned flags, void *arg, size_t in_len, size_t in_bufsz,
		       size_t out_len, size_t out_bufsz)
{
	struct iovec in = {.iov_base = arg, .iov_len = in_len};
	struct iovec out = {.iov_base = arg, .iov_len = out_len};

	if (!(flags & FUSE_IOCTL_UNRESTRICTED))
		return false;
	if (in_bufsz >= in_len && out_bufsz >= out_len)
		return false;
	fuse_reply_ioctl_retry(req, in_len ? &in : NULL, in_len ? 1 : 0, out_len ? &out : NULL,
			       out_len ? 1 : 0);
	return true;
}

static void ioctl_sethmcid(fuse_req_t req, struct dev_file *f, unsigned flags, void *arg,
			   const void *in_buf, size_t in_bufsz)
{
	struct ovmc_dev *dev = f->dev;
	uint8_t id[HMC_ID_LEN];
	int rc;

	if (want_retry(req, flags, arg, HMC_ID_LEN, in_bufsz, 0, 0))
		return;
	if (flags & FUSE_IOCTL_UNRESTRICTED) {
		memcpy(id, in_buf, HMC_ID_LEN);
	} else {
		/* The kernel passed only sizeof(pointer) bytes; the id is 32. */
		const struct fuse_ctx *ctx = fuse_req_ctx(req);
		struct iovec local = {.iov_base = id, .iov_len = HMC_ID_LEN};
		struct iovec remote = {.iov_base = arg, .iov_len = HMC_ID_LEN};
		ssize_t n = process_vm_readv(ctx->pid, &local, 1, &remote, 1, 0);

		if (n != HMC_ID_LEN) {
			int err = n < 0 ? errno : EFAULT;

			if (err == ESRCH || ctx->pid == 0)
				ovmc_log(OVMC_LOG_ERROR, COMPONENT,
					 "SETHMCID: cannot read the 32-byte HMC id of pid %d: the "
					 "caller is in another pid namespace (or gone); run it in "
					 "the daemon's pid namespace. Answering EFAULT",
					 (int)ctx->pid);
			else if (n >= 0)
				ovmc_log(OVMC_LOG_ERROR, COMPONENT,
					 "SETHMCID: only %zd of the 32 bytes of the HMC id at %p in "
					 "pid %d are readable; answering EFAULT",
					 n, arg, (int)ctx->pid);
			else
				ovmc_log(OVMC_LOG_ERROR, COMPONENT,
					 "SETHMCID: the 32-byte HMC id at %p in pid %d cannot be "
					 "read (%s); answering EFAULT",
					 arg, (int)ctx->pid, strerror(err));
			fuse_reply_err(req, EFAULT);
			return;
		}
	}
	rc = ovmc_drv_sethmcid(dev->drv, f->drv_file, id, ovmc_now_ns());
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	fuse_reply_ioctl(req, 0, NULL, 0);
}

static void ioctl_query(fuse_req_t req, struct dev_file *f, unsigned flags, void *arg,
			size_t out_bufsz)
{
	struct ibmvmc_query_struct q;
	struct ovmc_query oq;

	if (want_retry(req, flags, arg, 0, 0, sizeof(q), out_bufsz))
		return;
	ovmc_drv_query(f->dev->drv, &oq);
	q.have_vmc = oq.have_vmc;
	q.state = oq.state;
	q.vmc_drc_index = oq.vmc_drc_index;
	reply_out(req, arg, &q, sizeof(q), out_bufsz);
}

static void ioctl_requestvmc(fuse_req_t req, struct dev_file *f, unsigned flags, void *arg,
			     size_t out_bufsz)
{
	uint32_t drc = 0;
	int rc;

	if (want_retry(req, flags, arg, 0, 0, sizeof(drc), out_bufsz))
		return;
	rc = ovmc_drv_request_vmc(f->dev->drv, &drc, ovmc_now_ns());
	if (rc) {
		fuse_reply_err(req, -rc);
		return;
	}
	reply_out(req, arg, &drc, sizeof(drc), out_bufsz);
}

void ovmc_dev_op_ioctl(fuse_req_t req, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		       unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz)
{
	struct dev_file *f = file_of(fi);

	f->dev->stats.ioctls++;
	/* Linux's ibmvmc has no compat_ioctl: 32-bit callers get ENOTTY. */
	if (flags & FUSE_IOCTL_COMPAT) {
		fuse_reply_err(req, ENOTTY);
		return;
	}
	switch (cmd) {
	case IOC_SETHMCID_GENERIC:
	case IOC_SETHMCID_PPC64:
		ioctl_sethmcid(req, f, flags, arg, in_buf, in_bufsz);
		return;
	case IOC_QUERY_GENERIC:
	case IOC_QUERY_PPC64:
		ioctl_query(req, f, flags, arg, out_bufsz);
		return;
	case IOC_REQUESTVMC_GENERIC:
	case IOC_REQUESTVMC_PPC64:
		ioctl_requestvmc(req, f, flags, arg, out_bufsz);
		return;
	default:
		/* Linux answers unknown commands with EINVAL, not ENOTTY. */
		fuse_reply_err(req, EINVAL);
		return;
	}
}

void ovmc_dev_op_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph)
{
	struct dev_file *f = file_of(fi);

	f->dev->stats.polls++;
	if (ph) {
		if (f->ph)
			fuse_pollhandle_destroy(f->ph);
		f->ph = ph;
	}
	fuse_reply_poll(req, ovmc_drv_poll(f->dev->drv, f->drv_file));
}

/* ---- FUSE-only operations: the root inode is the device file ---- */

static void fill_attr(const struct ovmc_dev *dev, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFREG | dev->mode;
	st->st_nlink = 1;
	st->st_uid = dev->uid;
	st->st_gid = dev->gid;
	st->st_blksize = OVMC_PAGE_SIZE;
	st->st_atim = dev->atime;
	st->st_mtim = dev->mtime;
	st->st_ctim = dev->ctime;
}

static void fuse_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fill_attr(fuse_req_userdata(req), &st);
	fuse_reply_attr(req, &st, ATTR_TIMEOUT_S);
}

/*
 * As on a device node: chmod, chown and utimes change the file's mode,
 * owner and times for real (until the daemon stops: the next one starts
 * from --mode/--group again, as a devtmpfs node from its driver). The
 * kernel checked the caller's right to each (default_permissions). A size
 * is refused with EINVAL, what truncate() and ftruncate() give on a
 * character device; an open with O_TRUNC never asks (atomic_o_trunc: it
 * is a flag of the open, ignored as a device ignores it).
 */
static void fuse_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
			 struct fuse_file_info *fi)
{
	struct ovmc_dev *dev = fuse_req_userdata(req);
	struct timespec now;

	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (to_set & FUSE_SET_ATTR_SIZE) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	clock_gettime(CLOCK_REALTIME, &now);
	if (to_set & FUSE_SET_ATTR_MODE)
		dev->mode = attr->st_mode & 07777;
	if (to_set & FUSE_SET_ATTR_UID)
		dev->uid = attr->st_uid;
	if (to_set & FUSE_SET_ATTR_GID)
		dev->gid = attr->st_gid;
	if (to_set & FUSE_SET_ATTR_ATIME_NOW)
		dev->atime = now;
	else if (to_set & FUSE_SET_ATTR_ATIME)
		dev->atime = attr->st_atim;
	if (to_set & FUSE_SET_ATTR_MTIME_NOW)
		dev->mtime = now;
	else if (to_set & FUSE_SET_ATTR_MTIME)
		dev->mtime = attr->st_mtim;
	dev->ctime = (to_set & FUSE_SET_ATTR_CTIME) ? attr->st_ctim : now;
	fuse_getattr(req, ino, fi);
}

static void fuse_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	ovmc_dev_op_open(req, fi);
}

static void fuse_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		      struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	ovmc_dev_op_read(req, size, fi);
}

static void fuse_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	(void)ino;
	(void)off;
	ovmc_dev_op_write(req, buf, size, fi);
}

static void fuse_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ovmc_dev_op_flush(req, fi);
}

static void fuse_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	ovmc_dev_op_release(req, fi);
}

static void fuse_ioctl(fuse_req_t req, fuse_ino_t ino, unsigned int cmd, void *arg,
		       struct fuse_file_info *fi, unsigned flags, const void *in_buf,
		       size_t in_bufsz, size_t out_bufsz)
{
	(void)ino;
	ovmc_dev_op_ioctl(req, cmd, arg, fi, flags, in_buf, in_bufsz, out_bufsz);
}

static void fuse_poll(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi,
		      struct fuse_pollhandle *ph)
{
	(void)ino;
	ovmc_dev_op_poll(req, fi, ph);
}

void ovmc_dev_op_init(void *userdata, struct fuse_conn_info *conn)
{
	(void)userdata;
	/* A request must fit the owner's buffer (ovmc_dev_buffer()). */
	if (conn->max_write > OVMC_DEV_MAX_WRITE)
		conn->max_write = OVMC_DEV_MAX_WRITE;
}

static const struct fuse_lowlevel_ops fuse_ops = {
	.init = ovmc_dev_op_init,
	.getattr = fuse_getattr,
	.setattr = fuse_setattr,
	.open = fuse_open,
	.read = fuse_read,
	.write = fuse_write,
	.flush = fuse_flush,
	.release = fuse_release,
	.ioctl = fuse_ioctl,
	.poll = fuse_poll,
};

/* ---- libfuse's own messages go to our log ---- */

static void __attribute__((format(printf, 2, 0)))
fuse_log_to_ours(enum fuse_log_level level, const char *fmt, va_list ap)
{
	enum ovmc_log_level ours = OVMC_LOG_DEBUG;
	char line[512];
	size_t n;

	if (level <= FUSE_LOG_ERR)
		ours = OVMC_LOG_ERROR;
	else if (level == FUSE_LOG_WARNING)
		ours = OVMC_LOG_WARN;
	else if (level <= FUSE_LOG_INFO)
		ours = OVMC_LOG_INFO;
	vsnprintf(line, sizeof(line), fmt, ap);
	n = strlen(line);
	while (n && line[n - 1] == '\n')
		line[--n] = '\0';
	ovmc_log(ours, "fuse", "%s", line);
}

/* ---- mounting ---- */

static bool is_mount_point(const char *path, const struct stat *st)
{
	char *copy = strdup(path);
	struct stat parent;
	bool mounted = false;

	if (!copy)
		return false;
	if (stat(dirname(copy), &parent) == 0)
		mounted = parent.st_dev != st->st_dev;
	free(copy);
	return mounted;
}

/* Detach a mount whose daemon died (its connection is gone). */
static int detach_stale(const char *path)
{
	if (umount2(path, MNT_DETACH) != 0) {
		int rc = -errno;

		ovmc_log(OVMC_LOG_ERROR, COMPONENT,
			 "%s is a stale FUSE mount and cannot be detached: %s", path, strerror(-rc));
		return rc;
	}
	ovmc_log(OVMC_LOG_WARN, COMPONENT, "detached a stale mount from %s (its daemon was killed)",
		 path);
	return 0;
}

/*
 * What the mount covers when openvmc creates the path. Between its
 * creation and the mount, and again between the unmount and its removal at
 * exit (or after the daemon was killed), a client may open the path: it
 * must never get a plain file to read and write. So the placeholder is a
 * character device node numbered 0:1 with mode 0: major 0 is never given
 * to a driver, so open() fails as on a device node whose driver is not
 * loaded, ENXIO (EACCES for users other than root, or on a filesystem
 * mounted nodev). Mounting on a private name and moving the mount into
 * place (MS_MOVE) was not chosen: the target must exist all the same, the
 * move is refused under a shared mount (the usual propagation of /), and
 * the auto_unmount watchdog unmounts by the path it mounted.
 * Without CAP_MKNOD (a user namespace), or where fusermount3 must mount
 * (it wants a regular file under the mount), the placeholder is an empty
 * regular file of mode 0, which root can still open: the window is back
 * for root, and a warning says so.
 */
#define PLACEHOLDER_MAJOR 0
#define PLACEHOLDER_MINOR 1

static bool is_placeholder(const struct stat *st)
{
	return S_ISCHR(st->st_mode) && major(st->st_rdev) == PLACEHOLDER_MAJOR &&
	       minor(st->st_rdev) == PLACEHOLDER_MINOR;
}

/* The second best placeholder: root can open it. */
static int create_regular_placeholder(const char *path)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0), rc;

	if (fd < 0) {
		rc = -errno;
		if (rc != -EEXIST)
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot create %s: %s", path,
				 strerror(-rc));
		return rc;
	}
	close(fd);
	ovmc_log(OVMC_LOG_WARN, COMPONENT,
		 "%s: the placeholder is an empty regular file of mode 0: until the mount is "
		 "in place, root can open it",
		 path);
	return 0;
}

static int create_placeholder(const char *path)
{
	int rc;

	if (mknod(path, S_IFCHR, makedev(PLACEHOLDER_MAJOR, PLACEHOLDER_MINOR)) == 0)
		return 0;
	rc = -errno;
	if (rc != -EPERM) {
		if (rc != -EEXIST)
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot create %s: %s", path,
				 strerror(-rc));
		return rc;
	}
	return create_regular_placeholder(path);
}

/*
 * Make `path` something we may mount on: detach the mounts a killed
 * daemon left there, refuse a live one, create the placeholder if the
 * path is missing. An existing regular file is mounted on as it is.
 */
static int prepare_path(struct ovmc_dev *dev)
{
	const char *path = dev->path;
	struct statfs sfs;
	struct stat st;
	int rc;

	for (int i = 0;; i++) {
		if (i > MAX_STALE_MOUNTS) {
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: too many stale mounts", path);
			return -ELOOP;
		}
		if (lstat(path, &st) != 0) {
			rc = -errno;
			if (rc == -ENOTCONN || rc == -ECONNABORTED) {
				rc = detach_stale(path);
				if (rc)
					return rc;
				continue;
			}
			if (rc != -ENOENT) {
				ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot use %s: %s", path,
					 strerror(-rc));
				return rc;
			}
			rc = create_placeholder(path);
			if (rc == -EEXIST)
				continue; /* someone else created it meanwhile: look again */
			if (rc)
				return rc;
			dev->created = true;
			return 0;
		}
		if (!is_mount_point(path, &st))
			break;
		/* lstat() may answer from the attribute cache even for a dead
		 * connection; statfs always asks the filesystem. */
		rc = statfs(path, &sfs) == 0 ? 0 : -errno;
		if (rc == -ENOTCONN || rc == -ECONNABORTED) {
			rc = detach_stale(path);
			if (rc)
				return rc;
			continue;
		}
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s is already a mount point%s", path,
			 rc == 0 && sfs.f_type == FUSE_SUPER_MAGIC_VALUE
				 ? " (another openvmc serving it?)"
				 : "");
		return -EBUSY;
	}
	if (S_ISDIR(st.st_mode)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s is a directory, not a device path", path);
		return -EISDIR;
	}
	if (is_placeholder(&st)) {
		/* Left by a daemon that was killed: ours to remove at exit. */
		dev->created = true;
		return 0;
	}
	if (!S_ISREG(st.st_mode)) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT,
			 "%s exists and is not a regular file (a real ibmvmc device?): refusing",
			 path);
		return -EEXIST;
	}
	return 0;
}

/*
 * One more than the highest descriptor open now. Descriptors at or above
 * the soft limit are not ours to number above (valgrind keeps its own
 * there): they are left out.
 */
static int above_every_fd(void)
{
	DIR *dir = opendir("/proc/self/fd");
	struct rlimit lim = {.rlim_cur = RLIM_INFINITY};
	struct dirent *e;
	int top = 0;

	if (!dir)
		return -errno;
	getrlimit(RLIMIT_NOFILE, &lim);
	while ((e = readdir(dir))) {
		int fd = atoi(e->d_name);

		if (fd >= top && (lim.rlim_cur == RLIM_INFINITY || (rlim_t)fd < lim.rlim_cur))
			top = fd + 1;
	}
	closedir(dir);
	return top;
}

/*
 * auto_unmount's watchdog (fusermount3, holding a socket to us) unmounts
 * only if opening the mount fails with ENOTCONN once that socket closes.
 * When this process is killed, the kernel closes its descriptors in
 * ascending order but releases the files in the reverse order, highest
 * first. The socket is numbered above /dev/fuse, so it would be released
 * first: the watchdog's open then races the teardown of a connection
 * still alive, fails with ECONNABORTED instead, and the dead mount stays
 * (seen in about one kill in ten under load). A copy of the /dev/fuse
 * descriptor above every other one makes /dev/fuse go first.
 */
static int keep_fuse_last(struct ovmc_dev *dev)
{
	int top = above_every_fd();

	if (top >= 0)
		dev->fd_last = fcntl(dev->fd, F_DUPFD_CLOEXEC, top);
	if (top < 0 || dev->fd_last < 0) {
		int rc = top < 0 ? top : -errno;

		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: %s", dev->path, strerror(-rc));
		return rc;
	}
	return 0;
}

/*
 * The unmounting watchdog of a mount made by mount_direct(): a child that
 * waits for the end of a pipe whose other end only this process holds, so
 * it wakes however this process ends. If the mount it was told about is
 * still on the path then (this process was killed: a clean stop unmounts
 * first), it detaches it, and the path is the placeholder again. Only
 * system calls between fork() and _exit(): the caller may have threads.
 */
static void watchdog_run(const char *path, int pipe_fd, uint64_t mnt_id)
{
	struct statx stx;
	char c;

	prctl(PR_SET_NAME, OVMC_DEV_WATCHDOG_NAME);
	/* A signal to the whole process group (Ctrl-C, a service stop) must
	 * not end it before the daemon, whose clean stop unmounts anyway. */
	signal(SIGINT, SIG_IGN);
	signal(SIGTERM, SIG_IGN);
	signal(SIGHUP, SIG_IGN);
	/* Above all, not a copy of /dev/fuse: the connection ends with us. */
	if (dup2(pipe_fd, STDIN_FILENO) < 0)
		_exit(1);
	close_range(STDERR_FILENO + 1, ~0u, 0);
	if (chdir("/") != 0)
		_exit(1);
	while (read(STDIN_FILENO, &c, 1) < 0 && errno == EINTR)
		;
	/* AT_STATX_DONT_SYNC: nothing is asked of the dead connection. */
	if (statx(AT_FDCWD, path, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_MNT_ID, &stx) ==
		    0 &&
	    (stx.stx_mask & STATX_MNT_ID) && stx.stx_mnt_id == mnt_id)
		umount2(path, MNT_DETACH | UMOUNT_NOFOLLOW);
	_exit(0);
}

static int watchdog_start(struct ovmc_dev *dev)
{
	struct statx stx;
	int p[2], rc;

	rc = statx(AT_FDCWD, dev->path, AT_SYMLINK_NOFOLLOW | AT_STATX_DONT_SYNC, STATX_MNT_ID,
		   &stx) != 0
		     ? -errno
		     : 0;
	if (!rc && !(stx.stx_mask & STATX_MNT_ID))
		rc = -ENOSYS; /* before Linux 5.8 */
	if (rc) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: no mount id: %s", dev->path,
			 strerror(-rc));
		return rc;
	}
	if (pipe2(p, O_CLOEXEC) != 0) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: %s", dev->path, strerror(-rc));
		return rc;
	}
	dev->watchdog = fork();
	if (dev->watchdog == 0)
		watchdog_run(dev->path, p[0], stx.stx_mnt_id);
	rc = dev->watchdog < 0 ? -errno : 0;
	close(p[0]);
	if (rc) {
		close(p[1]);
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: cannot start the watchdog: %s",
			 dev->path, strerror(-rc));
		return rc;
	}
	dev->watchdog_fd = p[1];
	return 0;
}

/*
 * Mount with mount(2) (root, or CAP_SYS_ADMIN in a user namespace), with
 * a regular file as the root's type: fusermount3 would copy the type of
 * the placeholder under it, and a FUSE root whose type then changes is a
 * bad inode (EIO). libfuse takes the descriptor as "/dev/fd/N". Returns
 * -EPERM if this process may not mount.
 */
static int mount_direct(struct ovmc_dev *dev)
{
	char opts[160], fdpath[32];
	int fd = open("/dev/fuse", O_RDWR | O_CLOEXEC), rc;

	if (fd < 0) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot open /dev/fuse: %s", strerror(-rc));
		return rc;
	}
	/* allow_other + default_permissions: the kernel enforces mode and
	 * group for every user. */
	snprintf(opts, sizeof(opts),
		 "fd=%d,rootmode=%o,user_id=%u,group_id=%u,allow_other,default_permissions", fd,
		 (unsigned)S_IFREG, (unsigned)getuid(), (unsigned)getgid());
	if (mount("openvmc", dev->path, "fuse.ibmvmc", MS_NOSUID | MS_NODEV, opts) != 0) {
		rc = -errno;
		close(fd);
		if (rc != -EPERM)
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "mounting the device on %s failed: %s",
				 dev->path, strerror(-rc));
		return rc;
	}
	dev->mounted = dev->own_mount = true;
	snprintf(fdpath, sizeof(fdpath), "/dev/fd/%d", fd);
	if (fuse_session_mount(dev->se, fdpath) != 0) {
		close(fd);
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "libfuse refused the mounted descriptor");
		return -EIO;
	}
	return watchdog_start(dev);
}

/*
 * Without the right to mount: fusermount3 mounts (set-user-ID root), and
 * its auto_unmount removes the mount if this process dies. It needs a
 * regular file or a directory under the mount.
 */
static int mount_fusermount(struct ovmc_dev *dev)
{
	struct stat st;
	int rc;

	if (dev->created && lstat(dev->path, &st) == 0 && is_placeholder(&st)) {
		if (unlink(dev->path) != 0) {
			rc = -errno;
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "cannot remove %s: %s", dev->path,
				 strerror(-rc));
			return rc;
		}
		rc = create_regular_placeholder(dev->path);
		if (rc)
			return rc;
	}
	if (fuse_session_mount(dev->se, dev->path) != 0) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "mounting the device on %s failed", dev->path);
		return -EIO;
	}
	dev->mounted = true;
	dev->fd = fuse_session_fd(dev->se);
	return keep_fuse_last(dev);
}

static int fuse_start(struct ovmc_dev *dev)
{
	char prog[] = "openvmc", dash_o[] = "-o";
	/* Used by fusermount3 only (mount_fusermount). */
	char opts[] = "fsname=openvmc,subtype=ibmvmc,allow_other,default_permissions,"
		      "auto_unmount";
	char *argv[] = {prog, dash_o, opts, NULL};
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	int rc = prepare_path(dev);

	if (rc)
		return rc;
	dev->se = fuse_session_new(&args, &fuse_ops, sizeof(fuse_ops), dev);
	fuse_opt_free_args(&args);
	if (!dev->se) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "libfuse refused the session");
		return -EIO;
	}
	rc = mount_direct(dev);
	if (rc == -EPERM)
		rc = mount_fusermount(dev);
	if (rc)
		return rc;
	dev->fd = fuse_session_fd(dev->se);
	ovmc_log(OVMC_LOG_INFO, COMPONENT, "device ready at %s", dev->path);
	return 0;
}

/* ---- life cycle ---- */

int ovmc_dev_new(const struct ovmc_dev_config *cfg, struct ovmc_drv *drv, struct ovmc_dev **out)
{
	struct ovmc_dev *dev;
	int rc;

	if (!drv || (!cfg->cuse && (!cfg->path || !*cfg->path)) ||
	    (cfg->cuse && (!cfg->cuse_name || !*cfg->cuse_name || strchr(cfg->cuse_name, '/')))) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "invalid device configuration");
		return -EINVAL;
	}
	dev = calloc(1, sizeof(*dev));
	if (!dev) {
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "out of memory");
		return -ENOMEM;
	}
	dev->cfg = *cfg;
	dev->drv = drv;
	dev->fd = dev->fd_last = dev->watchdog_fd = -1;
	dev->path = strdup(cfg->cuse ? "/dev/" : cfg->path);
	dev->cuse_name = cfg->cuse ? strdup(cfg->cuse_name) : NULL;
	dev->reqbuf = malloc(OVMC_DEV_REQ_BUF);
	if (!dev->path || !dev->reqbuf || (cfg->cuse && !dev->cuse_name))
		goto nomem;
	if (cfg->cuse) {
		char *full = malloc(strlen(dev->path) + strlen(dev->cuse_name) + 1);

		if (!full)
			goto nomem;
		strcpy(full, dev->path);
		strcat(full, dev->cuse_name);
		free(dev->path);
		dev->path = full;
	}
	dev->uid = geteuid();
	dev->gid = cfg->set_gid ? cfg->gid : getegid();
	dev->mode = cfg->mode & 07777;
	clock_gettime(CLOCK_REALTIME, &dev->atime);
	dev->mtime = dev->ctime = dev->atime;
	fuse_set_log_func(fuse_log_to_ours);
	rc = cfg->cuse ? ovmc_dev_cuse_start(dev) : fuse_start(dev);
	if (rc)
		goto fail;
	/* The loop must never block on the device. */
	if (fcntl(dev->fd, F_SETFL, fcntl(dev->fd, F_GETFL) | O_NONBLOCK) != 0) {
		rc = -errno;
		ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: %s", dev->path, strerror(-rc));
		goto fail;
	}
	*out = dev;
	return 0;
nomem:
	ovmc_log(OVMC_LOG_ERROR, COMPONENT, "out of memory");
	rc = -ENOMEM;
fail:
	ovmc_dev_free(dev);
	return rc;
}

int ovmc_dev_fd(struct ovmc_dev *dev)
{
	return dev->fd;
}

bool ovmc_dev_gone(const struct ovmc_dev *dev)
{
	return dev->gone;
}

const char *ovmc_dev_path(const struct ovmc_dev *dev)
{
	return dev->path;
}

void *ovmc_dev_buffer(struct ovmc_dev *dev, size_t *size)
{
	*size = OVMC_DEV_REQ_BUF;
	return dev->reqbuf;
}

void ovmc_dev_received(struct ovmc_dev *dev, ssize_t n)
{
	struct fuse_buf buf = {.mem = dev->reqbuf, .fd = -1};

	if (dev->gone)
		return;
	/* ENOENT: the request was interrupted before we read it. */
	if (n == -ENOENT)
		return;
	if (n <= 0 || (size_t)n < FUSE_IN_HEADER_LEN) {
		/* 0 or ENODEV: unmounted, or the connection was aborted. */
		dev->gone = true;
		if (n == 0 || n == -ENODEV)
			ovmc_log(OVMC_LOG_WARN, COMPONENT, "%s: the kernel ended the session (unmounted)",
				 dev->path);
		else
			ovmc_log(OVMC_LOG_ERROR, COMPONENT, "%s: the kernel ended the session: %s",
				 dev->path, n < 0 ? strerror((int)-n) : "a short request");
		return;
	}
	buf.size = (size_t)n;
	fuse_session_process_buf(dev->se, &buf);
	ovmc_dev_flush(dev);
}

void ovmc_dev_status(const struct ovmc_dev *dev, FILE *out)
{
	unsigned i = 0;

	fprintf(out, "device %s (%s), %u open file%s\n", dev->path,
		dev->cfg.cuse ? "cuse" : "fuse", dev->n_files, dev->n_files == 1 ? "" : "s");
	for (const struct dev_file *f = dev->files; f; f = f->next, i++) {
		unsigned parked = 0;

		for (const struct parked_read *p = f->parked_head; p; p = p->next)
			parked++;
		fprintf(out, "  file %u: parked reads %u, poll waiter %s\n", i, parked,
			f->ph ? "yes" : "no");
	}
	fprintf(out,
		"  opens %llu releases %llu reads %llu writes %llu ioctls %llu polls %llu "
		"parked %llu interrupted %llu poll-notifies %llu\n",
		(unsigned long long)dev->stats.opens, (unsigned long long)dev->stats.releases,
		(unsigned long long)dev->stats.reads, (unsigned long long)dev->stats.writes,
		(unsigned long long)dev->stats.ioctls, (unsigned long long)dev->stats.polls,
		(unsigned long long)dev->stats.parked, (unsigned long long)dev->stats.interrupted,
		(unsigned long long)dev->stats.poll_notifies);
}

void ovmc_dev_status_json(const struct ovmc_dev *dev, struct json *j)
{
	json_object(j, "device");
	json_string(j, "path", dev->path);
	json_string(j, "kind", dev->cfg.cuse ? "cuse" : "fuse");
	json_uint(j, "open_files", dev->n_files);
	json_array(j, "files");
	for (const struct dev_file *f = dev->files; f; f = f->next) {
		unsigned parked = 0;

		for (const struct parked_read *p = f->parked_head; p; p = p->next)
			parked++;
		json_object(j, NULL);
		json_uint(j, "parked_reads", parked);
		json_bool(j, "poll_waiter", f->ph != NULL);
		json_end(j);
	}
	json_end(j);
	json_object(j, "stats");
	json_uint(j, "opens", dev->stats.opens);
	json_uint(j, "releases", dev->stats.releases);
	json_uint(j, "reads", dev->stats.reads);
	json_uint(j, "writes", dev->stats.writes);
	json_uint(j, "ioctls", dev->stats.ioctls);
	json_uint(j, "polls", dev->stats.polls);
	json_uint(j, "parked", dev->stats.parked);
	json_uint(j, "interrupted", dev->stats.interrupted);
	json_uint(j, "poll_notifies", dev->stats.poll_notifies);
	json_end(j);
	json_end(j);
}

void ovmc_dev_free(struct ovmc_dev *dev)
{
	if (!dev)
		return;
	/* Blocked readers hear EIO rather than a dead connection. */
	while (dev->files)
		file_destroy(dev, dev->files, EIO);
	if (dev->fd_last >= 0)
		close(dev->fd_last);
	if (dev->se) {
		if (dev->own_mount) {
			if (umount2(dev->path, MNT_DETACH | UMOUNT_NOFOLLOW) != 0)
				ovmc_log(OVMC_LOG_WARN, COMPONENT, "cannot unmount %s: %s",
					 dev->path, strerror(errno));
		} else if (dev->mounted) {
			fuse_session_unmount(dev->se);
		}
		fuse_session_destroy(dev->se);
	}
	/* Unmounted already: the watchdog finds nothing to do. */
	if (dev->watchdog_fd >= 0)
		close(dev->watchdog_fd);
	if (dev->watchdog > 0)
		waitpid(dev->watchdog, NULL, 0);
	if (dev->created && unlink(dev->path) != 0)
		ovmc_log(OVMC_LOG_WARN, COMPONENT, "cannot remove %s: %s", dev->path,
			 strerror(errno));
	free(dev->reqbuf);
	free(dev->path);
	free(dev->cuse_name);
	free(dev);
}
