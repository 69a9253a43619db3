// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * ovmc-bench: every path of the channel next to its floor, in one run
 * (docs/performance.md; scripts/bench.sh builds a release build and runs
 * it). It starts the real daemons itself, in a private directory under
 * /tmp, and removes everything again, also on an error or Ctrl-C. Needs
 * root and /dev/fuse (exit 77 without them).
 *
 *   ovmc-bench [--quick] [--mode pinned|unpinned|both] [--csv FILE] [--json FILE]
 */
#include "bench.h"

#include <openvmc/common.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#ifndef OVMC_BENCH_BIN_DIR
#error OVMC_BENCH_BIN_DIR must name the directory of the daemons
#endif

#define SKIP 77
#define TPUT_SIZE 4096
#define MAX_ROWS 256
/* Between the last message and the idle window. */
#define IDLE_SETTLE_MS 100

const size_t bench_sizes[BENCH_NSIZES] = {32, 256, 4096, 16384};

struct bench_rows {
	struct bench_row v[MAX_ROWS];
	size_t n;
};

struct bench_row *bench_add(struct bench_rows *rows, const char *mode, const char *path,
			    const char *metric, size_t size, double median, double p99,
			    const char *unit)
{
	struct bench_row *r;

	if (rows->n == MAX_ROWS)
		bench_die("too many results");
	r = &rows->v[rows->n++];
	memset(r, 0, sizeof(*r));
	snprintf(r->mode, sizeof(r->mode), "%s", mode);
	snprintf(r->path, sizeof(r->path), "%s", path);
	snprintf(r->metric, sizeof(r->metric), "%s", metric);
	snprintf(r->unit, sizeof(r->unit), "%s", unit);
	r->size = size;
	r->median = median;
	r->p99 = p99;
	r->ratio = -1;
	r->met = -1;
	return r;
}

/*
 * Each figure's floor and the target (issue 11). A floor path of
 * "" means the row's own path: the 64-session figures compare with the
 * same path's lone session.
 */
static const struct rule {
	const char *path, *metric; /* NULL: any */
	const char *floor_path, *floor_metric;
	char op; /* '<' at most, 'l' below, '>' at least, '=' exactly, 0 none */
	double target;
} rules[] = {
	{"core", "rtt", "memcpy", "rtt", 0, 0},
	{"openvmc", "rtt", "bare-fuse", "rtt", '<', 1.10},
	{"daemons", "rtt", "bare-fuse", "rtt", '<', 1.60},
	{"openvmc", "tput", "bare-fuse", "tput", '>', 0.95},
	{"daemons", "tput", "bare-fuse", "tput", '>', 0.80},
	{"socketpair", "tput", "bare-fuse", "tput", 0, 0},
	{NULL, "rtt64-idle", "", "rtt-lone", 0, 0},
	{NULL, "rtt64-paced", "", "rtt-lone", '<', 1.05},
	{NULL, "rtt64-saturated", "", "rtt-lone", 0, 0},
	{NULL, "idle-cpu", NULL, NULL, '=', 0},
	{NULL, "rss", NULL, NULL, 'l', 4.0},
};

static const struct bench_row *find(const struct bench_rows *rows, const char *mode,
				    const char *path, const char *metric, size_t size)
{
	for (size_t i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];

		if (!strcmp(r->mode, mode) && !strcmp(r->path, path) && !strcmp(r->metric, metric) &&
		    r->size == size)
			return r;
	}
	return NULL;
}

static void judge(struct bench_rows *rows)
{
	for (size_t i = 0; i < rows->n; i++) {
		struct bench_row *r = &rows->v[i];

		for (size_t k = 0; k < sizeof(rules) / sizeof(rules[0]); k++) {
			const struct rule *u = &rules[k];
			double x = r->median;

			if ((u->path && strcmp(u->path, r->path)) || strcmp(u->metric, r->metric))
				continue;
			if (u->floor_path) {
				const char *fp = *u->floor_path ? u->floor_path : r->path;
				const struct bench_row *f =
					find(rows, r->mode, fp, u->floor_metric, r->size);

				if (!f || f->median <= 0)
					break;
				snprintf(r->floor, sizeof(r->floor), "%s%s%s", fp,
					 *u->floor_path ? "" : " ", *u->floor_path ? "" : "lone");
				/* A path may have measured its own (paired) ratio. */
				if (r->ratio < 0)
					r->ratio = r->median / f->median;
				x = r->ratio;
			}
			switch (u->op) {
			case '<':
				snprintf(r->target, sizeof(r->target), "<=%.2f", u->target);
				r->met = x <= u->target;
				break;
			case '>':
				snprintf(r->target, sizeof(r->target), ">=%.2f", u->target);
				r->met = x >= u->target;
				break;
			case '=':
				snprintf(r->target, sizeof(r->target), "=%g", u->target);
				r->met = x == u->target;
				break;
			case 'l':
				snprintf(r->target, sizeof(r->target), "<%g", u->target);
				r->met = x < u->target;
				break;
			default:
				break;
			}
			break;
		}
	}
}

/* ---- one mode: pinned to CPU 0, or free ---- */

/*
 * Every path is measured in ROUNDS slices, in turn with the others, so
 * that a change of load on the machine (other work, frequency) meets the
 * floors and openvmc's paths alike: the ratios are what matters.
 */
#define ROUNDS 10

enum { P_SOCKETPAIR, P_FUSE, P_CORE, P_OPENVMC, P_DAEMONS, NPATHS };

struct path {
	const char *name;
	int fd;                   /* the echo to measure, or -1 for the core */
	struct bench_core *core;
	double med[BENCH_NSIZES], p99[BENCH_NSIZES];
	double tput[ROUNDS]; /* MiB/s of each round's slice */
};

static void path_rtt(struct path *p, size_t size, unsigned n, double *v)
{
	if (p->core)
		bench_core_rtt_samples(p->core, size, n, v);
	else
		bench_fd_rtt_samples(p->fd, size, n, v);
}

static void measure_rtt(const struct bench_cfg *cfg, struct path *paths)
{
	unsigned per = cfg->iters / ROUNDS ? cfg->iters / ROUNDS : 1, n = per * ROUNDS;
	double *v[NPATHS];

	for (int k = 0; k < NPATHS; k++) {
		v[k] = calloc(n, sizeof(double));
		if (!v[k])
			bench_die("out of memory");
	}
	for (int i = 0; i < BENCH_NSIZES; i++) {
		size_t size = bench_sizes[i];

		for (int k = 0; k < NPATHS; k++)
			path_rtt(&paths[k], size, n / 10 + 1, NULL);
		for (unsigned r = 0; r < ROUNDS; r++)
			for (int k = 0; k < NPATHS; k++)
				path_rtt(&paths[k], size, per, v[k] + r * per);
		for (int k = 0; k < NPATHS; k++)
			bench_stats(v[k], n, &paths[k].med[i], &paths[k].p99[i]);
	}
	for (int k = 0; k < NPATHS; k++)
		free(v[k]);
}

static void measure_tput(const struct bench_cfg *cfg, struct path *paths)
{
	unsigned per = cfg->tput_msgs / ROUNDS ? cfg->tput_msgs / ROUNDS : 1;

	for (unsigned r = 0; r < ROUNDS; r++)
		for (int k = 0; k < NPATHS; k++)
			if (!paths[k].core)
				paths[k].tput[r] = (double)per * TPUT_SIZE /
						   bench_fd_tput_s(paths[k].fd, TPUT_SIZE, per) /
						   (1024.0 * 1024.0);
}

/*
 * A path's throughput is the median of its slices, and its ratio the median
 * of the rounds' own ratios to bare FUSE: a slow spell (docs/performance.md)
 * that covers one path's slice and not the floor's then moves neither.
 */
static void tput_rows(struct bench_rows *rows, const char *mode, struct path *paths)
{
	for (int k = 0; k < NPATHS; k++) {
		double v[ROUNDS], ratios[ROUNDS], m, p;
		struct bench_row *row;

		if (paths[k].core)
			continue;
		for (int r = 0; r < ROUNDS; r++) {
			v[r] = paths[k].tput[r];
			ratios[r] = paths[k].tput[r] / paths[P_FUSE].tput[r];
		}
		bench_stats(v, ROUNDS, &m, &p);
		row = bench_add(rows, mode, paths[k].name, "tput", TPUT_SIZE, m, -1, "MiB/s");
		if (k != P_FUSE) {
			bench_stats(ratios, ROUNDS, &m, &p);
			row->ratio = m;
		}
	}
}

/* CPU of every daemon over one idle window (a session open on each), and
 * their resident sets. */
static void idle_rows(const struct bench_cfg *cfg, struct bench_rows *rows, const char *mode,
		      const struct bench_daemons *one, const struct bench_daemons *pair)
{
	pid_t pids[3] = {one->pid, pair->pid, pair->hv_pid};
	const char *names[3] = {"openvmc", "openvmcd", "openvmc-hvd"};
	double before[3];

	/* The window opens once the work before it is done: openvmcd sends the
	 * reports it holds within 10 ms of the last message. */
	bench_sleep_ms(IDLE_SETTLE_MS);
	for (int i = 0; i < 3; i++)
		before[i] = bench_cpu_ms(pids[i]);
	bench_sleep_ms(cfg->idle_ms);
	for (int i = 0; i < 3; i++) {
		bench_add(rows, mode, names[i], "idle-cpu", 0, bench_cpu_ms(pids[i]) - before[i],
			  -1, "ms");
		bench_add(rows, mode, names[i], "rss", 0, (double)bench_rss_kib(pids[i]) / 1024.0,
			  -1, "MiB");
	}
}

static void sessions_rows(const struct bench_cfg *cfg, struct bench_rows *rows, const char *mode,
			  bool pair)
{
	struct bench_daemons d;

	bench_log("%s: %s, 64 sessions", mode, pair ? "openvmcd + openvmc-hvd" : "openvmc");
	bench_daemons_start(cfg, pair, 64, 4096, &d);
	bench_sessions(cfg, &d, mode, pair ? "daemons" : "openvmc", rows);
	bench_daemons_stop(&d);
}

static void run_mode(const struct bench_cfg *cfg, struct bench_rows *rows, const char *mode,
		     const cpu_set_t *cpus)
{
	struct path paths[NPATHS] = {
		[P_SOCKETPAIR] = {.name = "socketpair"}, [P_FUSE] = {.name = "bare-fuse"},
		[P_CORE] = {.name = "core", .fd = -1},   [P_OPENVMC] = {.name = "openvmc"},
		[P_DAEMONS] = {.name = "daemons"},
	};
	struct bench_daemons one, pair;
	char dir[64], echo[96];
	pid_t sp_pid, echo_pid;

	/* Everything started from here on inherits the mask (taskset -c 0). */
	if (sched_setaffinity(0, sizeof(*cpus), cpus))
		bench_die("sched_setaffinity: %s", strerror(errno));
	bench_tmpdir(dir, sizeof(dir));

	bench_log("%s: memcpy", mode);
	for (int i = 0; i < BENCH_NSIZES; i++) {
		double m, p;

		bench_memcpy_rtt(bench_sizes[i], cfg->iters, &m, &p);
		bench_add(rows, mode, "memcpy", "rtt", bench_sizes[i], m, p, "us");
	}

	bench_log("%s: starting the floors, the cores, openvmc, openvmcd + openvmc-hvd", mode);
	paths[P_SOCKETPAIR].fd = bench_socketpair_start(&sp_pid);
	snprintf(echo, sizeof(echo), "%s/echo", dir);
	echo_pid = bench_fuse_echo_start(echo);
	paths[P_FUSE].fd = open(echo, O_RDWR | O_CLOEXEC);
	if (paths[P_FUSE].fd < 0)
		bench_die("%s: %s", echo, strerror(errno));
	paths[P_CORE].core = bench_core_new();
	bench_daemons_start(cfg, false, 1, BENCH_MAX_SIZE, &one);
	paths[P_OPENVMC].fd = bench_session_open(&one, 0);
	bench_daemons_start(cfg, true, 1, BENCH_MAX_SIZE, &pair);
	paths[P_DAEMONS].fd = bench_session_open(&pair, 0);

	bench_log("%s: round trips, every path in turn", mode);
	measure_rtt(cfg, paths);
	bench_log("%s: 4 KiB throughput, every path in turn", mode);
	measure_tput(cfg, paths);
	for (int k = 0; k < NPATHS; k++)
		for (int i = 0; i < BENCH_NSIZES; i++)
			bench_add(rows, mode, paths[k].name, "rtt", bench_sizes[i], paths[k].med[i],
				  paths[k].p99[i], "us");
	tput_rows(rows, mode, paths);
	/* Idle with a session open: nothing may tick. */
	bench_log("%s: idle", mode);
	idle_rows(cfg, rows, mode, &one, &pair);

	for (int k = 0; k < NPATHS; k++)
		if (paths[k].fd >= 0)
			close(paths[k].fd);
	bench_core_free(paths[P_CORE].core);
	bench_daemons_stop(&one);
	bench_daemons_stop(&pair);
	bench_stop_pid(echo_pid);
	bench_stop_pid(sp_pid);

	sessions_rows(cfg, rows, mode, false);
	sessions_rows(cfg, rows, mode, true);
}

/* ---- output ---- */

static void fmt_num(char *buf, size_t size, double v, int prec)
{
	if (v < 0)
		snprintf(buf, size, "-");
	else
		snprintf(buf, size, "%.*f", prec, v);
}

static const char *met_word(int met)
{
	return met < 0 ? "" : met ? "met" : "NOT MET";
}

static void print_table(const struct bench_rows *rows, FILE *out)
{
	unsigned met = 0, missed = 0;

	fprintf(out, "%-9s %-11s %-16s %6s %10s %10s %-6s %-14s %7s %-7s %s\n", "mode", "path",
		"metric", "size", "median", "p99", "unit", "floor", "ratio", "target", "");
	for (size_t i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];
		char size[24], med[24], p99[24], ratio[24];

		if (r->size)
			snprintf(size, sizeof(size), "%zu", r->size);
		else
			snprintf(size, sizeof(size), "-");
		fmt_num(med, sizeof(med), r->median, r->median >= 100 ? 1 : 2);
		fmt_num(p99, sizeof(p99), r->p99, r->p99 >= 100 ? 1 : 2);
		fmt_num(ratio, sizeof(ratio), r->ratio, 2);
		if (r->ratio >= 0)
			strcat(ratio, "x");
		fprintf(out, "%-9s %-11s %-16s %6s %10s %10s %-6s %-14s %7s %-7s %s\n", r->mode,
			r->path, r->metric, size, med, p99, r->unit, *r->floor ? r->floor : "-",
			ratio, *r->target ? r->target : "-", met_word(r->met));
		met += r->met == 1;
		missed += r->met == 0;
	}
	fprintf(out, "targets: %u met, %u not met\n", met, missed);
}

static void write_csv(const struct bench_rows *rows, const char *file)
{
	FILE *f = fopen(file, "w");

	if (!f)
		bench_die("%s: %s", file, strerror(errno));
	fputs("mode,path,metric,size,median,p99,unit,floor,ratio,target,met\n", f);
	for (size_t i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];

		fprintf(f, "%s,%s,%s,%zu,%.3f,", r->mode, r->path, r->metric, r->size, r->median);
		if (r->p99 >= 0)
			fprintf(f, "%.3f", r->p99);
		fprintf(f, ",%s,%s,", r->unit, r->floor);
		if (r->ratio >= 0)
			fprintf(f, "%.3f", r->ratio);
		fprintf(f, ",%s,%s\n", r->target, r->met < 0 ? "" : r->met ? "yes" : "no");
	}
	if (fclose(f))
		bench_die("%s: %s", file, strerror(errno));
}

static void write_json(const struct bench_rows *rows, const struct bench_cfg *cfg,
		       const char *file)
{
	FILE *f = fopen(file, "w");
	struct utsname u;
	char when[32];
	time_t t = time(NULL);

	if (!f)
		bench_die("%s: %s", file, strerror(errno));
	uname(&u);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", gmtime(&t));
	fprintf(f,
		"{\n  \"date\": \"%s\",\n  \"machine\": {\"cpus\": %ld, \"kernel\": \"%s\", "
		"\"arch\": \"%s\"},\n",
		when, sysconf(_SC_NPROCESSORS_ONLN), u.release, u.machine);
	fprintf(f, "  \"iterations\": %u, \"throughput_messages\": %u, \"idle_ms\": %u,\n",
		cfg->iters, cfg->tput_msgs, cfg->idle_ms);
	fputs("  \"rows\": [\n", f);
	for (size_t i = 0; i < rows->n; i++) {
		const struct bench_row *r = &rows->v[i];

		fprintf(f,
			"    {\"mode\": \"%s\", \"path\": \"%s\", \"metric\": \"%s\", \"size\": %zu, "
			"\"median\": %.3f, ",
			r->mode, r->path, r->metric, r->size, r->median);
		if (r->p99 >= 0)
			fprintf(f, "\"p99\": %.3f, ", r->p99);
		else
			fputs("\"p99\": null, ", f);
		fprintf(f, "\"unit\": \"%s\", \"floor\": ", r->unit);
		if (*r->floor)
			fprintf(f, "\"%s\", \"ratio\": %.3f, ", r->floor, r->ratio);
		else
			fputs("null, \"ratio\": null, ", f);
		if (r->met >= 0)
			fprintf(f, "\"target\": \"%s\", \"met\": %s}", r->target,
				r->met ? "true" : "false");
		else
			fputs("\"target\": null, \"met\": null}", f);
		fputs(i + 1 < rows->n ? ",\n" : "\n", f);
	}
	fputs("  ]\n}\n", f);
	if (fclose(f))
		bench_die("%s: %s", file, strerror(errno));
}

static void usage(FILE *out)
{
	fputs("Usage: ovmc-bench [options]\n"
	      "\n"
	      "Measures the floors (SEQPACKET socketpair, a bare FUSE echo file, memcpy)\n"
	      "and openvmc's paths (core to core, openvmc, openvmcd + openvmc-hvd): round\n"
	      "trips at 32, 256, 4096 and 16384 bytes, 4 KiB throughput, 64 sessions, CPU\n"
	      "when idle, resident memory; each figure with its ratio to its floor and the\n"
	      "target of issue 11. Starts the daemons itself; needs root and /dev/fuse.\n"
	      "\n"
	      "  -q, --quick           a short run (2000 round trips, 1 s idle)\n"
	      "  -i, --iters N         round trips per size (20000)\n"
	      "  -I, --idle-ms MS      idle CPU window (10000)\n"
	      "  -m, --mode MODE       pinned (all on CPU 0), unpinned or both (both)\n"
	      "  -c, --csv FILE        also write the figures as CSV\n"
	      "  -j, --json FILE       also write them as JSON\n"
	      "  -b, --bin-dir DIR     where openvmc, openvmcd, openvmc-hvd are\n"
	      "  -h, --help            this text\n"
	      "  -V, --version         the version\n",
	      out);
}

static unsigned parse_uint(const char *s, const char *what)
{
	char *end;
	unsigned long v;

	errno = 0;
	v = strtoul(s, &end, 10);
	if (errno || !*s || *end || v == 0 || v > 100000000ul)
		bench_die("bad %s: %s", what, s);
	return (unsigned)v;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"quick", no_argument, NULL, 'q'},     {"iters", required_argument, NULL, 'i'},
		{"idle-ms", required_argument, NULL, 'I'}, {"mode", required_argument, NULL, 'm'},
		{"csv", required_argument, NULL, 'c'},  {"json", required_argument, NULL, 'j'},
		{"bin-dir", required_argument, NULL, 'b'}, {"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},       {NULL, 0, NULL, 0},
	};
	struct bench_cfg cfg = {.iters = 20000, .idle_ms = 10000, .bin_dir = OVMC_BENCH_BIN_DIR};
	static struct bench_rows rows;
	const char *csv = NULL, *json = NULL, *mode = "both";
	cpu_set_t all, cpu0;
	int c;

	while ((c = getopt_long(argc, argv, "qi:I:m:c:j:b:hV", longs, NULL)) != -1) {
		switch (c) {
		case 'q':
			cfg.iters = 2000;
			cfg.idle_ms = 1000;
			break;
		case 'i':
			cfg.iters = parse_uint(optarg, "--iters");
			break;
		case 'I':
			cfg.idle_ms = parse_uint(optarg, "--idle-ms");
			break;
		case 'm':
			mode = optarg;
			if (strcmp(mode, "pinned") && strcmp(mode, "unpinned") && strcmp(mode, "both"))
				bench_die("--mode: pinned, unpinned or both");
			break;
		case 'c':
			csv = optarg;
			break;
		case 'j':
			json = optarg;
			break;
		case 'b':
			cfg.bin_dir = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("ovmc-bench (openvmc) %s\n", OVMC_VERSION_STRING);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (optind != argc) {
		usage(stderr);
		return 2;
	}
	cfg.tput_msgs = cfg.iters;
	cfg.sess_iters = cfg.iters / 4 + 1;
	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK)) {
		fprintf(stderr, "ovmc-bench: skipped: needs root and /dev/fuse to mount\n");
		return SKIP;
	}
	if (sched_getaffinity(0, sizeof(all), &all))
		bench_die("sched_getaffinity: %s", strerror(errno));
	CPU_ZERO(&cpu0);
	CPU_SET(0, &cpu0);
	bench_cleanup_init();
	if (strcmp(mode, "unpinned"))
		run_mode(&cfg, &rows, "pinned", &cpu0);
	if (strcmp(mode, "pinned"))
		run_mode(&cfg, &rows, "unpinned", &all);
	judge(&rows);
	print_table(&rows, stdout);
	if (csv)
		write_csv(&rows, csv);
	if (json)
		write_json(&rows, &cfg, json);
	return 0;
}
