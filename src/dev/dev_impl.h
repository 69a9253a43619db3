/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside the device front-end: the state shared by the FUSE mode (dev.c)
 * and the CUSE mode (cuse.c), and the request handlers both use.
 */
#ifndef OVMC_DEV_IMPL_H
#define OVMC_DEV_IMPL_H

#include "dev.h"

#include <fuse_lowlevel.h>
#include <stdint.h>
#include <time.h>

/* A read() waiting for a message, answered in arrival order. */
struct parked_read {
	fuse_req_t req;
	size_t size;
	struct dev_file *file;
	struct parked_read *prev, *next;
};

/* One open file description. */
struct dev_file {
	struct ovmc_dev *dev;
	struct ovmc_drv_file *drv_file;
	struct fuse_pollhandle *ph; /* the latest poll waiter, if any */
	struct parked_read *parked_head, *parked_tail;
	bool queued; /* on the dev's list of files whose reads may complete */
	struct dev_file *queue_next;
	struct dev_file *prev, *next; /* every open file */
};

struct ovmc_dev_stats {
	uint64_t opens, releases;
	uint64_t reads, writes, ioctls, polls;
	uint64_t parked, interrupted, poll_notifies;
};

struct ovmc_dev {
	struct ovmc_dev_config cfg;
	char *path; /* owned copies of the configured strings */
	char *cuse_name;
	struct ovmc_drv *drv;
	struct fuse_session *se;
	uint8_t *reqbuf; /* one request, read by the owner (ovmc_dev_buffer()) */
	int fd;
	int fd_last; /* FUSE: a copy of fd numbered above the watchdog's socket */
	bool created; /* ovmc_dev_new() created the file at path */
	bool mounted;
	bool own_mount; /* by mount(2), with our watchdog (else fusermount3's) */
	pid_t watchdog; /* the watchdog of an own mount, 0 if none */
	int watchdog_fd; /* its pipe: closing it wakes the watchdog */
	bool gone;
	/* The FUSE file's attributes: from the configuration, then as chmod,
	 * chown, utimes and writes change them. */
	mode_t mode;
	uid_t uid;
	gid_t gid;
	struct timespec atime, mtime, ctime;
	struct dev_file *files;
	unsigned n_files;
	struct dev_file *ready_head, *ready_tail;
	struct ovmc_dev_stats stats;
};

/* The command name of the watchdog process (ps, tests). */
#define OVMC_DEV_WATCHDOG_NAME "openvmc-umount"

/* Largest read() the driver can satisfy (its MTU limit). */
#define OVMC_DEV_MAX_READ 65536u
/* The kernel's largest write request (max_write): any write the driver
 * could take arrives whole. */
#define OVMC_DEV_MAX_WRITE 131072u
/* Room for any request: libfuse's header allowance plus max_write. */
#define OVMC_DEV_REQ_BUF (OVMC_DEV_MAX_WRITE + 4096u)

/* Shared request handlers (FUSE and CUSE). */
void ovmc_dev_op_init(void *userdata, struct fuse_conn_info *conn);
void ovmc_dev_op_open(fuse_req_t req, struct fuse_file_info *fi);
void ovmc_dev_op_read(fuse_req_t req, size_t size, struct fuse_file_info *fi);
void ovmc_dev_op_write(fuse_req_t req, const char *buf, size_t size, struct fuse_file_info *fi);
void ovmc_dev_op_flush(fuse_req_t req, struct fuse_file_info *fi);
void ovmc_dev_op_release(fuse_req_t req, struct fuse_file_info *fi);
void ovmc_dev_op_ioctl(fuse_req_t req, unsigned int cmd, void *arg, struct fuse_file_info *fi,
		       unsigned flags, const void *in_buf, size_t in_bufsz, size_t out_bufsz);
void ovmc_dev_op_poll(fuse_req_t req, struct fuse_file_info *fi, struct fuse_pollhandle *ph);

/* CUSE mode set-up (cuse.c): creates dev->se and dev->fd. */
int ovmc_dev_cuse_start(struct ovmc_dev *dev);

#endif
