/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Device front-end: serves one file with the Linux ibmvmc ABI on top of a
 * driver core (driver.h), through FUSE (a filesystem whose root inode is
 * the file, mounted directly on it) or CUSE (a real character device where
 * the kernel has /dev/cuse).
 *
 * Single-threaded and driven by the owner's event loop: the owner reads
 * ovmc_dev_fd() (non-blocking) into ovmc_dev_buffer(), one request per
 * read, and hands each result to ovmc_dev_received(). A blocking read()
 * with nothing queued is parked and answered later; the owner reports
 * readiness changes from the driver's file_event callback with
 * ovmc_dev_file_event() and, after any driver call it makes itself
 * (interrupt, timer, platform change), calls ovmc_dev_flush() so parked
 * reads are answered. The driver core is not owned.
 */
#ifndef OVMC_DEV_H
#define OVMC_DEV_H

#include <stdbool.h>
#include <stdio.h>
#include <sys/types.h>

#include <openvmc/driver.h>

struct ovmc_dev;

struct ovmc_dev_config {
	/* FUSE: the file to serve. An empty file is created if missing (and
	 * removed again by ovmc_dev_free()). CUSE: ignored. */
	const char *path;
	mode_t mode; /* permission bits of the file, e.g. 0600 */
	gid_t gid;   /* group of the file when set_gid, else the owner's */
	bool set_gid;
	bool cuse;             /* a CUSE character device instead of a FUSE file */
	const char *cuse_name; /* CUSE: DEVNAME, e.g. "ibmvmc" for /dev/ibmvmc */
	/* Optional: a read found nothing queued and would wait or fail with
	 * EAGAIN. The owner may bring in what is in flight (true: the read is
	 * tried once more). It may call the driver, not the device. */
	bool (*read_would_wait)(void *arg);
	void *read_would_wait_arg;
};

/*
 * Mount (FUSE) or register (CUSE) the device. A stale FUSE mount left on
 * `path` by a killed daemon is detached first. Errors are logged; returns
 * 0, -EINVAL (bad configuration), -EISDIR / -EEXIST (path is a directory
 * or not a regular file), -EBUSY (a live filesystem is mounted there),
 * -ENODEV (CUSE without /dev/cuse), -EIO (libfuse refused), -ENOMEM, or
 * the -errno of creating the file.
 */
int ovmc_dev_new(const struct ovmc_dev_config *cfg, struct ovmc_drv *drv, struct ovmc_dev **out);
/* Readable when requests wait; non-blocking. */
int ovmc_dev_fd(struct ovmc_dev *dev);
/* Where to read a request into: owned by the device, *size bytes, which
 * any request fits. */
void *ovmc_dev_buffer(struct ovmc_dev *dev, size_t *size);
/*
 * One read of ovmc_dev_fd() into the buffer returned `n` (bytes, 0, or a
 * negative errno): handle that request, then answer parked reads. End of
 * file, -ENODEV or a short request end the session (ovmc_dev_gone()).
 */
void ovmc_dev_received(struct ovmc_dev *dev, ssize_t n);
/* The kernel ended the session (unmounted from outside): stop serving. */
bool ovmc_dev_gone(const struct ovmc_dev *dev);
/* The path the application opens. */
const char *ovmc_dev_path(const struct ovmc_dev *dev);
/*
 * From the driver's file_event callback: notifies pollers and marks parked
 * reads for an answer (POLLIN or POLLHUP). Never calls into the driver.
 */
void ovmc_dev_file_event(struct ovmc_dev *dev, struct ovmc_drv_file *f, unsigned events);
/* Answer parked reads that became ready. Call outside driver callbacks. */
void ovmc_dev_flush(struct ovmc_dev *dev);
/* Open files, parked reads and counters, as text lines. */
void ovmc_dev_status(const struct ovmc_dev *dev, FILE *out);
/* The same as the member "device" of a JSON object (docs/vmcctl-json.md). */
struct json;
void ovmc_dev_status_json(const struct ovmc_dev *dev, struct json *j);
/*
 * Unmount, answer parked reads with EIO, close every file on the driver,
 * remove the file if ovmc_dev_new() created it. NULL is ignored.
 */
void ovmc_dev_free(struct ovmc_dev *dev);

#endif
