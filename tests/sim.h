// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * Deterministic in-process simulation of a whole VMC channel: one emulated
 * machine, one in-process partition running the driver core, and the
 * hypervisor core serving the partition's VMC, all driven from the test
 * with a virtual clock. Nothing here reads a real clock or sleeps.
 *
 * A recording backend stands in for layer 2 (it records opens, messages
 * and closes and can echo), a recorder collects the driver's callbacks,
 * and the machine trace keeps every CRQ entry in both directions.
 *
 * Set OVMC_TEST_LOG=<level> (error, warn, info, debug, trace or a digit)
 * to see both cores' logs on stderr.
 */
#ifndef OVMC_TEST_SIM_H
#define OVMC_TEST_SIM_H

#include <openvmc/driver.h>
#include <openvmc/hv.h>
#include <openvmc/machine.h>
#include <openvmc/platform.h>
#include <openvmc/wire.h>

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define SIM_MS 1000000ull
#define SIM_S 1000000000ull

struct sim_opts {
	struct ovmc_drv_config drv;
	struct ovmc_hv_config hv;
	/* Attach the hypervisor core before the driver starts. */
	bool hv_first;
	/* Create everything but start neither side (see sim_start()). */
	bool no_start;
	/* Do not attach the hypervisor core at all (sim_attach_hv() later). */
	bool no_hv;
	/* Partition without a VMC until H_REQUEST_VMC; request_vmc_rc answers it. */
	bool vmc_absent;
	long request_vmc_rc;
	/* The backend echoes every message back on its session. */
	bool echo;
	/* Partition memory beyond what the driver needs. */
	size_t mem_slack;
	/* Another layer-2 backend instead of the recording one. */
	const struct ovmc_backend_ops *backend;
	void *backend_arg;
	/* Also pass the machine's and the driver's trace events here. */
	ovmc_trace_fn hv_trace, drv_trace;
	void *hv_trace_arg, *drv_trace_arg;
};

/* One recorded layer-2 event (message, open or close). */
struct sim_msg {
	unsigned index;	 /* HMC index */
	uint8_t session; /* session number */
	size_t len;
	uint8_t *data; /* message bytes; the HMC id for an open; NULL for a close */
};

struct sim_msgs {
	struct sim_msg *v;
	size_t n, cap;
};

/* CRQ entries seen by the machine trace, 16 bytes each. */
struct sim_entries {
	uint8_t (*e)[OVMC_CRQ_ENTRY_SIZE];
	size_t n, cap;
};

/* Both directions in delivery order (machine trace). */
enum sim_dir { SIM_TO_HV = 0, SIM_TO_PART = 1 };
struct sim_rec {
	uint8_t dir; /* enum sim_dir */
	uint8_t e[OVMC_CRQ_ENTRY_SIZE];
};
struct sim_log {
	struct sim_rec *v;
	size_t n, cap;
};

struct sim_backend {
	bool echo;
	int open_rc; /* what open() answers */
	unsigned opens, closes, writable;
	unsigned echo_errors;
	int last_echo_rc;
	struct ovmc_hv_session *sess[256]; /* open sessions by HMC index */
	struct sim_msgs msgs;		   /* every message, in arrival order */
	struct sim_msgs sent;		   /* every message accepted by ovmc_hv_send() (echo or
					    * sim_backend_send()), in order */
	struct sim_msgs open_log;
	struct sim_msgs close_log;
};

/* A file of the driver as the test sees it. */
struct sim_file {
	struct ovmc_drv_file *f;
	unsigned events;      /* file_event callbacks */
	unsigned last_events; /* their last `events` */
	bool closed;
	struct sim_file *next;
};

struct sim {
	struct ovmc_machine *m;
	struct ovmc_platform *plat;
	struct ovmc_drv *drv;
	struct ovmc_hv *hv;
	struct ovmc_vmc *vmc;
	uint64_t now; /* virtual clock, ns */
	struct sim_opts o;
	struct sim_backend be;
	struct sim_file *files;
	/* driver state_changed callbacks */
	unsigned state_changes;
	int states[64];
	/* machine trace */
	struct sim_entries to_hv, to_part;
	struct sim_log log;
	uint64_t rdma_ops;
	/* most unconsumed entries in the partition's CRQ after any delivery */
	unsigned max_outstanding;
	/* entries the driver left in its queue with no interrupt pending */
	unsigned lost_wakeups;
	/* VMCs created by the machine (configured or by H_REQUEST_VMC) */
	unsigned vmcs_created;
	char drv_said[256]; /* the driver's last log line at info or above */
	/* log lines at warn or above of each core, and the last of them */
	unsigned drv_warnings, hv_warnings;
	/* of them, lines saying "protocol error: ..." */
	unsigned drv_proto_lines, hv_proto_lines;
	char drv_warned[256], hv_warned[256];
	bool started;  /* sim_start() ran */
	/* A side that does not read its queue: sim_run() leaves it alone (its
	 * timers too) until cleared. */
	bool hold_hv, hold_drv;
	int log_level; /* -1: silent */
};

/* Defaults: both cores' default configurations, driver first, echo on. */
void sim_opts_default(struct sim_opts *o);
/*
 * Build a simulation (NULL: defaults). Registers sim_free() with
 * ovmc_test_defer(), so the test never frees it itself. Unless no_start,
 * both sides are started in the configured order, but nothing is pumped:
 * call sim_run() or sim_ready().
 */
struct sim *sim_new(const struct sim_opts *o);
void sim_free(void *s);
/* Start what no_start held back, in the configured order. */
void sim_start(struct sim *s);
/* Attach the hypervisor core to the partition's VMC (and install the backend). */
void sim_attach_hv(struct sim *s);

/* Pump both cores until neither has anything left to do (due timers fire too). */
void sim_run(struct sim *s);
/* Move the virtual clock by `ns`, firing every deadline on the way. */
void sim_advance(struct sim *s, uint64_t ns);
/*
 * Pump, advancing the clock from deadline to deadline, until poll() on `f`
 * reports one of `events` or `max_ns` of virtual time passed. Returns
 * whether it did.
 */
bool sim_wait(struct sim *s, struct sim_file *f, unsigned events, uint64_t max_ns);
/* Pump and assert that both sides reached READY. */
void sim_ready(struct sim *s);

/* ---- files ---- */
struct sim_file *sim_open(struct sim *s);
/* open + SETHMCID + run; asserts the session is open and writable. */
struct sim_file *sim_open_session(struct sim *s, const uint8_t id[OVMC_HMC_ID_LEN]);
void sim_close(struct sim *s, struct sim_file *f);
int sim_sethmcid(struct sim *s, struct sim_file *f, const uint8_t id[OVMC_HMC_ID_LEN]);
ssize_t sim_write(struct sim *s, struct sim_file *f, const void *buf, size_t len);
ssize_t sim_read(struct sim *s, struct sim_file *f, void *buf, size_t len);
unsigned sim_poll(struct sim *s, struct sim_file *f);

/* ---- helpers ---- */
/* A 32-byte HMC id: printable, derived from seed, no NUL terminator. */
void sim_make_id(uint8_t id[OVMC_HMC_ID_LEN], unsigned seed);
/* The hypervisor's open session on `index` (asserts there is one). */
struct ovmc_hv_session *sim_session(struct sim *s, unsigned index);
/* Send from the backend on the session of `index`; returns ovmc_hv_send(). */
int sim_backend_send(struct sim *s, unsigned index, const void *data, size_t len);
/* Forget recorded messages (the logs of opens and closes stay). */
void sim_clear_msgs(struct sim *s);
/* Number of traced entries with this header and type/format byte. */
size_t sim_count(const struct sim_entries *v, uint8_t header, uint8_t type);
/* Last traced entry with this header and type, NULL if none. */
const uint8_t *sim_last(const struct sim_entries *v, uint8_t header, uint8_t type);
/* Current negotiated MTU as the driver sees it. */
uint32_t sim_mtu(const struct sim *s);

#endif
