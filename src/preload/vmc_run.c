// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * vmc-run: run an unmodified program with libopenvmc-preload.so, so that
 * its /dev/ibmvmc is a file of an openvmc daemon's session socket: no
 * device file, FUSE or root needed.
 *
 *   openvmc --no-device /tmp/vmc &
 *   vmc-run --device /tmp/vmc/ibmvmc python3 app.py
 *
 * It refuses, with the reason, what LD_PRELOAD cannot reach: statically
 * linked programs, 32-bit ones, and set-user-ID or set-group-ID ones. See
 * vmc-run(1) and docs/preload.md.
 */
#include <openvmc/common.h>

#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define LIB_NAME "libopenvmc-preload.so"
#define DEFAULT_DEVICE "/dev/ibmvmc"
#define EXIT_USAGE 2
/* Long options without a short form (docs/options.md). */
enum { OPT_SOCKET = 256, OPT_PRELOAD };
/* As a shell that cannot run a command. */
#define EXIT_CANNOT 126
#define EXIT_NOT_FOUND 127

#ifndef OVMC_PRELOAD_INSTALLED
#error OVMC_PRELOAD_INSTALLED must name the installed preload library
#endif

static void usage(FILE *out)
{
	fputs("Usage: vmc-run [options] PROGRAM [ARGS...]\n"
	      "Run PROGRAM with its /dev/ibmvmc served by an openvmc daemon's session\n"
	      "socket (libopenvmc-preload.so): no device file, FUSE or root needed.\n"
	      "\n"
	      "  -d, --device PATH    the device path the program opens\n"
	      "                       (default: $OPENVMC_DEVICE, else " DEFAULT_DEVICE ")\n"
	      "      --socket PATH    the daemon's session socket\n"
	      "                       (default: $OPENVMC_SOCKET, else the device path + \".sock\")\n"
	      "      --preload LIB    the preload library (default: next to vmc-run, else\n"
	      "                       " OVMC_PRELOAD_INSTALLED ")\n"
	      "  -h, --help           this text\n"
	      "  -V, --version        the version\n"
	      "\n"
	      "Exit status: PROGRAM's, or 2 for a usage error, 126 if PROGRAM cannot run\n"
	      "under the preload (static, 32-bit, set-user-ID), 127 if it is not found.\n",
	      out);
}

static int usage_error(const char *what)
{
	fprintf(stderr, "vmc-run: %s\nTry 'vmc-run --help'.\n", what);
	return EXIT_USAGE;
}

/* PROGRAM as execvp() would find it; false if nowhere. */
static bool find_program(const char *name, char *out, size_t size)
{
	const char *path = getenv("PATH");

	if (strchr(name, '/')) {
		snprintf(out, size, "%s", name);
		return access(out, F_OK) == 0;
	}
	if (!path)
		path = "/usr/local/bin:/usr/bin:/bin";
	for (const char *p = path;; p++) {
		const char *end = strchrnul(p, ':');
		int len = (int)(end - p);

		snprintf(out, size, "%.*s%s%s", len, p, len ? "/" : "", name);
		if (access(out, X_OK) == 0)
			return true;
		if (!*end)
			return false;
		p = end;
	}
}

/*
 * Can the dynamic loader put the preload library into `file`? NULL if yes,
 * else why not. A script is judged by its interpreter (`depth` levels).
 */
static const char *why_not(const char *file, int depth)
{
	static char why[PATH_MAX + 128];
	unsigned char buf[256];
	Elf64_Ehdr eh;
	struct stat st;
	ssize_t n;
	int fd = open(file, O_RDONLY | O_CLOEXEC);

	if (fd < 0 || fstat(fd, &st) != 0) {
		snprintf(why, sizeof(why), "%s: %s", file, strerror(errno));
		if (fd >= 0)
			close(fd);
		return why;
	}
	if ((st.st_mode & (S_ISUID | S_ISGID)) && getuid() != 0) {
		close(fd);
		snprintf(why, sizeof(why),
			 "%s is set-user-ID or set-group-ID: the loader ignores LD_PRELOAD for it",
			 file);
		return why;
	}
	n = pread(fd, buf, sizeof(buf) - 1, 0);
	if (n >= 2 && buf[0] == '#' && buf[1] == '!') {
		char *interp = (char *)buf + 2;

		close(fd);
		buf[n] = '\0';
		interp += strspn(interp, " \t");
		interp[strcspn(interp, " \t\n")] = '\0';
		if (depth == 0 || !*interp)
			return NULL; /* the loader will say what it thinks */
		return why_not(interp, depth - 1);
	}
	if (n < (ssize_t)sizeof(eh) || memcmp(buf, ELFMAG, SELFMAG) != 0) {
		close(fd);
		return NULL; /* not ELF: whatever execve makes of it */
	}
	memcpy(&eh, buf, sizeof(eh));
	if (eh.e_ident[EI_CLASS] != ELFCLASS64) {
		close(fd);
		snprintf(why, sizeof(why),
			 "%s is a 32-bit program: the preload library is 64-bit", file);
		return why;
	}
	for (unsigned i = 0; i < eh.e_phnum; i++) {
		Elf64_Phdr ph;

		if (pread(fd, &ph, sizeof(ph), (off_t)(eh.e_phoff + (Elf64_Off)i * eh.e_phentsize)) !=
		    (ssize_t)sizeof(ph))
			break;
		if (ph.p_type == PT_INTERP) {
			close(fd);
			return NULL;
		}
	}
	close(fd);
	snprintf(why, sizeof(why),
		 "%s is statically linked: no dynamic loader, so LD_PRELOAD cannot reach it "
		 "(link it dynamically, or use the client library, openvmc/client.h)",
		 file);
	return why;
}

static bool next_to_us(char *out, size_t size)
{
	char self[PATH_MAX - sizeof(LIB_NAME) - 1];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = '\0';
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = '\0';
	snprintf(out, size, "%s/%s", self, LIB_NAME);
	return access(out, R_OK) == 0;
}

int main(int argc, char **argv)
{
	static const struct option longs[] = {
		{"device", required_argument, NULL, 'd'},
		{"socket", required_argument, NULL, OPT_SOCKET},
		{"preload", required_argument, NULL, OPT_PRELOAD},
		{"help", no_argument, NULL, 'h'},
		{"version", no_argument, NULL, 'V'},
		{NULL, 0, NULL, 0},
	};
	const char *device = NULL, *sock = NULL, *lib = getenv("OPENVMC_PRELOAD");
	const char *old, *why;
	char libbuf[PATH_MAX], prog[PATH_MAX], *preload;
	int c;

	/* '+': the options after PROGRAM are its own. */
	while ((c = getopt_long(argc, argv, "+d:hV", longs, NULL)) != -1) {
		switch (c) {
		case 'd':
			device = optarg;
			break;
		case OPT_SOCKET:
			sock = optarg;
			break;
		case OPT_PRELOAD:
			lib = optarg;
			break;
		case 'h':
			usage(stdout);
			return 0;
		case 'V':
			printf("vmc-run (openvmc) %s\n", OVMC_VERSION_STRING);
			return 0;
		default:
			fputs("Try 'vmc-run --help'.\n", stderr);
			return EXIT_USAGE;
		}
	}
	if (optind >= argc)
		return usage_error("no PROGRAM given");
	if (device && device[0] != '/')
		return usage_error("--device takes an absolute path");
	if (!lib || !*lib)
		lib = next_to_us(libbuf, sizeof(libbuf)) ? libbuf : OVMC_PRELOAD_INSTALLED;
	if (access(lib, R_OK) != 0) {
		fprintf(stderr, "vmc-run: %s: %s\n", lib, strerror(errno));
		return EXIT_CANNOT;
	}
	if (!find_program(argv[optind], prog, sizeof(prog))) {
		fprintf(stderr, "vmc-run: %s: command not found\n", argv[optind]);
		return EXIT_NOT_FOUND;
	}
	why = why_not(prog, 2);
	if (why) {
		fprintf(stderr, "vmc-run: %s\n", why);
		return EXIT_CANNOT;
	}
	old = getenv("LD_PRELOAD");
	if (asprintf(&preload, "%s%s%s", lib, old && *old ? ":" : "", old ? old : "") < 0)
		return EXIT_CANNOT;
	/* A socket named for another device would not fit this one. */
	if (device && !sock)
		unsetenv("OPENVMC_SOCKET");
	if (setenv("LD_PRELOAD", preload, 1) != 0 ||
	    (device && setenv("OPENVMC_DEVICE", device, 1) != 0) ||
	    (sock && setenv("OPENVMC_SOCKET", sock, 1) != 0)) {
		perror("vmc-run: setenv");
		return EXIT_CANNOT;
	}
	execv(prog, argv + optind);
	fprintf(stderr, "vmc-run: %s: %s\n", prog, strerror(errno));
	return errno == ENOENT ? EXIT_NOT_FOUND : EXIT_CANNOT;
}
