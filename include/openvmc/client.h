/* SPDX-License-Identifier: LGPL-2.1-or-later */
/*
 * Client of a daemon's session socket (openvmc, openvmcd): the channel
 * without the device file, FUSE or root. A program that prefers linking to
 * opening /dev/ibmvmc opens a session here and gets the same answers, errno
 * for errno, as docs/device-abi.md lists for the device; the preload library
 * (vmc-run) maps libc calls on /dev/ibmvmc onto these functions.
 *
 * An open file is a file descriptor: a SOCK_SEQPACKET connection to the
 * daemon, readable when a message is there (poll, select and epoll work on
 * it directly, with POLLIN; POLLHUP once the session was reset or the
 * daemon stopped). Close it with close(). It may be shared like any
 * descriptor: dup(), fork() and exec() keep the open file, as with a
 * device. Requests that need an answer go over one control connection per
 * `struct ovmc_client` and process, made on first use (close-on-exec).
 *
 * Errors are negative errno values, those the device gives in the same
 * situation (docs/device-abi.md), plus for ovmc_client_open() the errno of
 * reaching the daemon: -ENOENT (no socket at the path), -EACCES (the
 * socket's mode, or the daemon refused the peer's credentials), -ENXIO (no
 * daemon serves the socket). -EIO from any call on a file means the daemon
 * is gone.
 *
 * Threads: every function may be called from any thread; calls on one
 * struct ovmc_client are serialised where they use the control connection,
 * and a read blocked on a file does not hold it (another thread may write
 * on the same file meanwhile).
 *
 * fork(): the child may go on using the same struct ovmc_client and every
 * file; its first request makes a control connection of its own. If other
 * threads may be inside a call while the program forks, call
 * ovmc_client_atfork_prepare() before fork() and ovmc_client_atfork_parent()
 * / ovmc_client_atfork_child() after it (as pthread_atfork handlers).
 */
#ifndef OPENVMC_CLIENT_H
#define OPENVMC_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <openvmc/common.h>

#ifdef __cplusplus
extern "C" {
#endif

struct ovmc_client;

/* The HMC id is 32 bytes, not NUL-terminated (HMC_ID_LEN in ibmvmc.h). */
#define OVMC_CLIENT_HMC_ID_LEN 32

/*
 * A client of the session socket at `socket_path` (the daemon prints it at
 * start: "session socket ready at PATH"). Connects nothing yet. Returns 0,
 * -EINVAL (empty path), -ENAMETOOLONG, -ENOMEM. Free with
 * ovmc_client_free(), which closes the control connection but no file.
 */
OVMC_API int ovmc_client_new(const char *socket_path, struct ovmc_client **out);
OVMC_API void ovmc_client_free(struct ovmc_client *c);
OVMC_API const char *ovmc_client_path(const struct ovmc_client *c);

/*
 * open(): a new file (the device's open()). `flags` may hold O_NONBLOCK
 * and O_CLOEXEC; other bits are ignored. Returns the descriptor (owned by
 * the caller) or a negative errno (see above; -EMFILE, -ENFILE).
 */
OVMC_API int ovmc_client_open(struct ovmc_client *c, int flags);

/*
 * VMC_IOCTL_SETHMCID with the 32 bytes at `id`: 0, or -EAGAIN, -EIO,
 * -ENOBUFS, -EBUSY, -EFAULT (`id` not readable) as the device.
 */
OVMC_API int ovmc_client_set_hmc_id(struct ovmc_client *c, int fd, const void *id);

/* write(): one message; len, or -EIO, -EBUSY, -EFAULT as the device. */
OVMC_API ssize_t ovmc_client_write(struct ovmc_client *c, int fd, const void *buf, size_t len);

/*
 * read(): one message, truncated to len (the rest is dropped, as in Linux;
 * the daemon counts and logs it). Blocks unless the descriptor is
 * O_NONBLOCK (then -EAGAIN); a signal interrupts it with -EINTR, unless
 * its handler has SA_RESTART (the kernel restarts the wait). -EINVAL (len
 * above the MTU), -EIO (no SETHMCID yet; or the daemon is gone), -EBADFD
 * (reset, every message delivered before it read), -EFAULT (buf not
 * writable; a queued message stays queued).
 */
OVMC_API ssize_t ovmc_client_read(struct ovmc_client *c, int fd, void *buf, size_t len);

struct ovmc_client_query {
	int32_t have_vmc;
	int32_t state; /* enum ovmc_drv_state */
	int32_t vmc_drc_index;
};

/* VMC_IOCTL_QUERY: 0, or -EIO (daemon unreachable). */
OVMC_API int ovmc_client_query(struct ovmc_client *c, struct ovmc_client_query *out);
/* VMC_IOCTL_REQUESTVMC: 0 and the DRC index, or -EPERM, -ENODEV, -EINVAL, -EIO, -EBUSY. */
OVMC_API int ovmc_client_request_vmc(struct ovmc_client *c, uint32_t *drc_index);

/*
 * ioctl(fd, cmd, arg) with the answer a character device node on devtmpfs
 * driven by Linux's ibmvmc gives (docs/preload.md): the VMC numbers in both
 * encodings; FIONBIO, FIOASYNC, FIOCLEX, FIONCLEX done on the descriptor;
 * the numbers the VFS answers for such a node (FIGETBSZ, FIOQSIZE, the
 * FS_IOC_* family, FICLONE ...) answered as the VFS answers them; every
 * other number EINVAL from the driver. Returns 0 (or the ioctl's
 * non-negative result) or a negative errno; `arg` is the caller's pointer
 * or integer and is never trusted (-EFAULT).
 */
OVMC_API int ovmc_client_ioctl(struct ovmc_client *c, int fd, unsigned long cmd, void *arg);

/*
 * What stat() shows for the device: a character device (misc major 10)
 * with the daemon's mode, owner and group, times of the daemon's start.
 * Returns 0 or a negative errno (-ENOENT, -EACCES, -ENXIO as for open).
 */
OVMC_API int ovmc_client_stat(struct ovmc_client *c, struct stat *st);

/* Is `fd` a file of this client's daemon (connected to its socket path)? */
OVMC_API bool ovmc_client_owns(const struct ovmc_client *c, int fd);

/* pthread_atfork handlers for programs that fork while calls may run. */
OVMC_API void ovmc_client_atfork_prepare(struct ovmc_client *c);
OVMC_API void ovmc_client_atfork_parent(struct ovmc_client *c);
OVMC_API void ovmc_client_atfork_child(struct ovmc_client *c);

#ifdef __cplusplus
}
#endif
#endif
