#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The documentation's commands, run as written.

Every fenced block of README.md and every .nf block in the EXAMPLES of a
man page carries a marker that says what the test does with it:

  markdown  <!-- docs-test: run -->        roff  .\\" docs-test: run
            <!-- docs-test: run, stop -->        .\\" docs-test: run, stop
            <!-- docs-test: run, stop all -->
            <!-- docs-test: file NAME -->        (the block is the file NAME)
            <!-- docs-test: skip REASON -->

A block without one fails the test, so a new block cannot slip by.

  docs_test.py markers SOURCE            check the markers of every page
  docs_test.py run SOURCE PAGE           run the blocks of one page

A page runs as a user with a fresh shell would, in the source tree, from
the first block to the last; for man pages the programs are installed
first (cmake --install build). Everything happens in private mount and
pid namespaces: the source tree, /usr/local, /etc and /dev are overlays
whose changes are thrown away, /run and /tmp are empty, and when the run
ends the kernel kills whatever it started and every mount goes.

Lines, one command each:
- a daemon (openvmc, openvmcd, openvmc-hvd; with or without "&") starts in
  the background and the run goes on once it says READY=1 (sd_notify);
- "vmcctl trace" starts in the background and the run goes on once the
  daemon counts it as a trace client;
- another line ending in "&" starts in the background;
- "wait $!" waits for the last one started, which must exit 0;
- any other line runs in bash, must exit 0, and its exports and
  directory carry over to the next lines.
At the end of a block marked "stop" what it started is stopped (jobs
must have exited 0, daemons must exit 0 on SIGTERM), "stop all" stops
everything, and the end of the page stops everything.
"""

import os
import re
import select
import shlex
import signal
import socket
import struct
import subprocess
import sys
import time

DAEMONS = {"openvmc", "openvmcd", "openvmc-hvd"}
CTL_DEFAULTS = ["/run/openvmc/openvmc.ctl", "/run/openvmcd/drv.ctl", "/run/openvmc/hv.ctl"]
PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
SCRATCH = "/run/.docs-test"  # inside the namespace
LINE_TIMEOUT = 600  # the README's build line may rebuild
READY_TIMEOUT = 60
STOP_TIMEOUT = 60
MD_MARK = re.compile(r"^<!--\s*docs-test:\s*(.*?)\s*-->\s*$")
ROFF_MARK = re.compile(r'^\.\\"\s*docs-test:\s*(.*?)\s*$')


class Failure(Exception):
    pass


class Block:
    def __init__(self, page, line, mark, text):
        self.page, self.line, self.text = page, line, text
        # A skip's reason is free text; run takes options after commas.
        words = [mark] if mark.startswith("skip") else [w.strip() for w in mark.split(",")]
        self.kind = words[0].split()[0] if words[0] else ""
        self.arg = words[0][len(self.kind):].strip()
        self.stop = None
        for w in words[1:]:
            if w in ("stop", "stop all"):
                self.stop = w
            else:
                raise Failure(f"{page}:{line}: unknown docs-test option '{w}'")
        if self.kind not in ("run", "file", "skip"):
            raise Failure(f"{page}:{line}: unknown docs-test marker '{mark}'")
        if self.kind == "file" and not re.fullmatch(r"[A-Za-z0-9_.-]+", self.arg):
            raise Failure(f"{page}:{line}: docs-test: file needs a plain file name")
        if self.kind == "skip" and not self.arg:
            raise Failure(f"{page}:{line}: docs-test: skip needs a reason")


def markdown_blocks(path, name):
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, i = [], 0
    while i < len(lines):
        if not lines[i].startswith("```"):
            i += 1
            continue
        start = i
        j = i - 1
        while j >= 0 and not lines[j].strip():
            j -= 1
        m = MD_MARK.match(lines[j]) if j >= 0 else None
        i += 1
        body = []
        while i < len(lines) and not lines[i].startswith("```"):
            body.append(lines[i])
            i += 1
        if i == len(lines):
            raise Failure(f"{name}:{start + 1}: unterminated code block")
        i += 1
        if not m:
            raise Failure(f"{name}:{start + 1}: code block without a docs-test marker "
                          "(run, file NAME or skip REASON)")
        blocks.append(Block(name, start + 1, m.group(1), "\n".join(body) + "\n"))
    return blocks


def unroff(line):
    out, i = [], 0
    escapes = {"-": "-", "e": "\\", "&": "", "\\": "\\", " ": " ", "|": "", "^": ""}
    named = {"aq": "'", "dq": '"', "ti": "~", "ha": "^", "lq": '"', "rq": '"'}
    while i < len(line):
        c = line[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        n = line[i + 1:i + 2]
        if n in escapes:
            out.append(escapes[n])
            i += 2
        elif n == "(" and line[i + 2:i + 4] in named:
            out.append(named[line[i + 2:i + 4]])
            i += 4
        else:
            raise Failure(f"roff escape \\{n} in an example: add it to unroff()")
    return "".join(out)


def man_blocks(path, name):
    lines = open(path, encoding="utf-8").read().split("\n")
    blocks, in_examples, mark, seen = [], False, None, False
    i = 0
    while i < len(lines):
        l = lines[i]
        if l.startswith(".SH"):
            in_examples = l.split(None, 1)[1:] == ["EXAMPLES"]
            seen |= in_examples
            mark = None
        elif in_examples and ROFF_MARK.match(l):
            mark = (ROFF_MARK.match(l).group(1), i + 1)
        elif in_examples and l == ".nf":
            start = i + 1
            body = []
            i += 1
            while i < len(lines) and lines[i] != ".fi":
                if lines[i].startswith("."):
                    raise Failure(f"{name}:{i + 1}: a request inside an example block")
                body.append(unroff(lines[i]))
                i += 1
            if not mark:
                raise Failure(f"{name}:{start}: example without a docs-test marker "
                              "(.\\\" docs-test: run, file NAME or skip REASON)")
            blocks.append(Block(name, start, mark[0], "\n".join(body) + "\n"))
            mark = None
        elif in_examples and l and not l.startswith("."):
            mark = None  # text between the marker and the block: not its marker
        i += 1
    if not seen or not blocks:
        raise Failure(f"{name}: no EXAMPLES section with an example")
    return blocks


def pages(source):
    out = [("README.md", os.path.join(source, "README.md"))]
    for f in sorted(os.listdir(os.path.join(source, "man"))):
        if re.fullmatch(r".+\.[1-8]", f):
            out.append((f"man/{f}", os.path.join(source, "man", f)))
    return out


def blocks_of(name, path):
    return markdown_blocks(path, name) if name.endswith(".md") else man_blocks(path, name)


def commands(block):
    """The block's commands: (line number, text), continuations joined."""
    out, cur, first = [], "", None
    for n, l in enumerate(block.text.split("\n"), block.line + 1):
        if first is None:
            first = n
        if l.endswith("\\"):
            cur += l[:-1] + " "
            continue
        cur += l
        if cur.strip() and not cur.strip().startswith("#"):
            out.append((first, cur.strip()))
        cur, first = "", None
    return out


# ---- running ---------------------------------------------------------------


def log(msg):
    print(msg, flush=True)


def tail(path, n=40):
    try:
        with open(path, errors="replace") as f:
            lines = f.read().split("\n")
    except OSError:
        return ""
    cut = lines[-n:]
    return ("  ...\n" if len(lines) > n else "") + "\n".join("  | " + l for l in cut)


def words_of(line):
    try:
        return shlex.split(line, comments=True)
    except ValueError:
        return []


def ctl_status(path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    try:
        s.connect(path)
        s.sendall(b"status\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    finally:
        s.close()
    return data.decode(errors="replace")


def trace_clients(path):
    m = re.search(r"trace-clients (\d+)", ctl_status(path))
    return int(m.group(1)) if m else 0


class Proc:
    def __init__(self, kind, cmd, where, popen, out):
        self.kind, self.cmd, self.where, self.popen, self.out = kind, cmd, where, popen, out
        self.pid = popen.pid
        self.adopted = False  # pid is a daemon's forked child, not popen
        self.status = None
        self.counted = False  # "vmcctl trace --count": ends by itself

    def poll(self):
        if self.status is not None:
            return self.status
        if self.adopted:
            try:
                pid, st = os.waitpid(self.pid, os.WNOHANG)
            except ChildProcessError:
                self.status = 0
                return 0
            if pid:
                self.status = os.waitstatus_to_exitcode(st)
            return self.status
        self.status = self.popen.poll()
        return self.status

    def wait(self, timeout):
        end = time.monotonic() + timeout
        while self.poll() is None:
            if time.monotonic() > end:
                return None
            time.sleep(0.02)
        return self.status


class Session:
    def __init__(self, source, page):
        self.source, self.page = source, page
        self.cwd = source
        self.env = {"PATH": PATH, "HOME": "/tmp/home", "LANG": "C.UTF-8", "TERM": "dumb",
                    "USER": "root", "LOGNAME": "root", "SHELL": "/bin/bash"}
        os.makedirs("/tmp/home", exist_ok=True)
        self.running = []  # Proc, in start order
        self.n = 0

    def out_file(self):
        self.n += 1
        return os.path.join(SCRATCH, f"out.{self.n}")

    def fail(self, where, cmd, why, out=None):
        msg = f"FAILED {where}: {cmd}\n  {why}"
        if out:
            msg += "\n" + tail(out)
        for p in self.running:
            if p.kind == "daemon":
                msg += f"\n  daemon {p.cmd} ({p.where}), its log:\n" + tail(p.out, 15)
        raise Failure(msg)

    def spawn(self, line, use_exec, extra_env=None):
        out = self.out_file()
        env = dict(self.env, **(extra_env or {}))
        with open(out, "w") as f:
            popen = subprocess.Popen(["bash", "-c", ("exec " if use_exec else "") + line],
                                     cwd=self.cwd, env=env, stdin=subprocess.DEVNULL,
                                     stdout=f, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        return popen, out

    def daemon(self, where, line):
        nsock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        npath = os.path.join(SCRATCH, f"notify.{self.n + 1}")
        nsock.bind(npath)
        nsock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        popen, out = self.spawn(line, True, {"NOTIFY_SOCKET": npath})
        p = Proc("daemon", line, where, popen, out)
        self.running.append(p)
        end = time.monotonic() + READY_TIMEOUT
        try:
            while True:
                r, _, _ = select.select([nsock], [], [], 0.05)
                if r:
                    msg, anc, _, _ = nsock.recvmsg(4096, socket.CMSG_SPACE(12))
                    sender = None
                    for level, typ, data in anc:
                        if level == socket.SOL_SOCKET and typ == socket.SCM_CREDENTIALS:
                            sender = struct.unpack("iII", data[:12])[0]
                    if b"READY=1" in msg.split(b"\n"):
                        if sender and sender != p.pid:
                            p.pid, p.adopted = sender, True  # it went to the background
                        break
                    continue
                st = popen.poll()
                if st is not None and st != 0:
                    self.fail(where, line, f"exited with status {st} before it was ready", out)
                if time.monotonic() > end:
                    self.fail(where, line, f"not ready (READY=1) within {READY_TIMEOUT} s", out)
        finally:
            nsock.close()
            os.unlink(npath)
        log(f"  (ready: pid {p.pid})")

    def trace(self, where, line, words):
        i = words.index("trace")
        path, counted = None, False
        for k, w in enumerate(words[i + 1:], i + 1):
            if w in ("-c", "--control") and k + 1 < len(words):
                path = words[k + 1]
            elif w.startswith("--control="):
                path = w.split("=", 1)[1]
            elif w in ("-n", "--count") or w.startswith("--count="):
                counted = True
        path = path or self.env.get("OPENVMC_CONTROL")
        if not path:
            path = next((d for d in CTL_DEFAULTS if os.path.exists(d)), None)
        if not path:
            self.fail(where, line, "no control socket for the trace to watch")
        before = trace_clients(path)
        popen, out = self.spawn(line.rstrip("&").strip(), False)
        p = Proc("job", line, where, popen, out)
        p.counted = counted
        self.running.append(p)
        end = time.monotonic() + READY_TIMEOUT
        while trace_clients(path) <= before:
            if p.poll() is not None:
                if p.status == 0:
                    break  # it had its lines already
                self.fail(where, line, f"exited with status {p.status} at once", out)
            if time.monotonic() > end:
                self.fail(where, line, "not subscribed within the time")
            time.sleep(0.02)

    def background(self, where, line):
        popen, out = self.spawn(line.rstrip("&").strip(), False)
        self.running.append(Proc("job", line, where, popen, out))

    def foreground(self, where, line):
        out = self.out_file()
        envf, pwdf = out + ".env", out + ".pwd"
        script = (f"set -o pipefail\n{line}\n__rc=$?\nenv -0 > {shlex.quote(envf)}\n"
                  f"pwd > {shlex.quote(pwdf)}\nexit $__rc\n")
        with open(out, "w") as f:
            try:
                st = subprocess.run(["bash", "-c", script], cwd=self.cwd, env=self.env,
                                    stdin=subprocess.DEVNULL, stdout=f,
                                    stderr=subprocess.STDOUT, timeout=LINE_TIMEOUT,
                                    start_new_session=True).returncode
            except subprocess.TimeoutExpired:
                self.fail(where, line, f"still running after {LINE_TIMEOUT} s", out)
        print(tail(out, 12), flush=True)
        if st != 0:
            self.fail(where, line, f"exit status {st}", out)
        with open(envf, "rb") as f:
            env = dict(kv.split(b"=", 1) for kv in f.read().split(b"\0") if b"=" in kv)
        self.env = {k.decode(): v.decode() for k, v in env.items()
                    if k not in (b"_", b"SHLVL", b"PWD", b"OLDPWD", b"__rc")}
        self.cwd = open(pwdf).read().strip()

    def wait_last(self, where, line):
        if not self.running:
            self.fail(where, line, "nothing runs in the background")
        p = self.running[-1]
        st = p.wait(STOP_TIMEOUT)
        if st is None:
            self.fail(where, line, f"{p.cmd} ({p.where}) still running after {STOP_TIMEOUT} s",
                      p.out)
        print(tail(p.out, 12), flush=True)
        self.running.remove(p)
        if st != 0:
            self.fail(where, line, f"{p.cmd} ({p.where}) exited with status {st}", p.out)

    def stop(self, procs, why):
        procs = [p for p in procs if p in self.running]
        # The jobs that end by themselves first: the daemons serve them.
        for p in procs:
            if p.kind == "job" and (p.counted or "trace" not in words_of(p.cmd)):
                self.finish(p, why)
        for p in reversed(procs):
            if p.kind == "daemon":
                if p.poll() is None:
                    os.kill(p.pid, signal.SIGTERM)
                self.finish(p, why)
        for p in procs:
            if p in self.running:
                self.finish(p, why)

    def finish(self, p, why):
        st = p.wait(STOP_TIMEOUT)
        if st is None:
            self.fail(p.where, p.cmd, f"did not end within {STOP_TIMEOUT} s ({why})", p.out)
        log(f"  ({why}: {p.cmd} ended, status {st})")
        self.running.remove(p)
        if st != 0:
            what = "stopped with" if p.kind == "daemon" else "ended with"
            self.fail(p.where, p.cmd, f"{what} status {st}", p.out)

    def run_block(self, b):
        started = len(self.running)
        if b.kind == "file":
            path = os.path.join(self.cwd, b.arg)
            with open(path, "w") as f:
                f.write(b.text)
            log(f"== {b.page}:{b.line}: wrote {b.arg}")
            check_file(self.source, path, f"{b.page}:{b.line}")
            return
        log(f"== {b.page}:{b.line}: block ({'run' + (', ' + b.stop if b.stop else '')})")
        mine = []
        for n, line in commands(b):
            where = f"{b.page}:{n}"
            log(f"$ {line}")
            words = words_of(line)
            prog = os.path.basename(words[0]) if words else ""
            bg = line.endswith("&") and not line.endswith("&&")
            if re.fullmatch(r"wait\s+\$!", line.split("#")[0].strip()):
                self.wait_last(where, line)
                continue
            if prog in DAEMONS and not {"-h", "--help", "-V", "--version"} & set(words):
                self.daemon(where, line.split(" #")[0].strip().rstrip("&").strip())
            elif prog == "vmcctl" and "trace" in words:
                self.trace(where, line, words)
            elif bg:
                self.background(where, line)
            else:
                self.foreground(where, line)
        mine = self.running[started:]
        if b.stop == "stop":
            self.stop(mine, "end of the block")
        elif b.stop == "stop all":
            self.stop(list(self.running), "end of the block")

    def kill_all(self):
        for p in self.running:
            try:
                os.killpg(p.popen.pid, signal.SIGKILL)
            except OSError:
                pass
            if p.adopted:
                try:
                    os.kill(p.pid, signal.SIGKILL)
                except OSError:
                    pass


def check_file(source, path, where):
    """The examples' programs, stricter than their command line asks."""
    if path.endswith(".c"):
        cmd = ["cc", "-std=c11", "-Wall", "-Wextra", "-pedantic", "-Werror", "-fsyntax-only",
               "-I", os.path.join(source, "include"), path]
    elif path.endswith(".py"):
        cmd = ["python3", "-m", "py_compile", path]
    else:
        return
    r = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                       env={"PATH": PATH, "HOME": "/tmp/home"})
    log(f"  ({' '.join(cmd[:-1])} {os.path.basename(path)}: status {r.returncode})")
    if r.returncode != 0:
        raise Failure(f"FAILED {where}: {os.path.basename(path)} does not compile cleanly:\n"
                      + r.stdout)


def private_mounts(source):
    """Inside the namespaces: what the page may change, thrown away after."""
    def sh(*args):
        subprocess.run(args, check=True)
    sh("mount", "--make-rprivate", "/")
    sh("mount", "-t", "tmpfs", "-o", "mode=0755", "docs-test", "/run")
    for d in ("src", "usrlocal", "etc", "dev"):
        os.makedirs(f"{SCRATCH}/{d}/upper")
        os.makedirs(f"{SCRATCH}/{d}/work")
    for d, target in (("src", source), ("usrlocal", "/usr/local"), ("etc", "/etc"),
                      ("dev", "/dev")):
        sh("mount", "-t", "overlay", "docs-test", "-o",
           f"lowerdir={target},upperdir={SCRATCH}/{d}/upper,workdir={SCRATCH}/{d}/work", target)
    sh("mount", "-t", "tmpfs", "-o", "mode=1777", "docs-test", "/tmp")
    os.chdir(source)


def run_inside(source, name, path):
    blocks = blocks_of(name, path)
    private_mounts(source)
    s = Session(source, name)
    try:
        if name.startswith("man/"):
            log("== a fresh install: cmake --install build")
            s.foreground(f"{name}:setup", "cmake --install build >/dev/null")
        for b in blocks:
            if b.kind == "skip":
                log(f"== {b.page}:{b.line}: skipped: {b.arg}")
                continue
            s.run_block(b)
        s.stop(list(s.running), "end of the page")
    except Failure:
        s.kill_all()
        raise
    log(f"{name}: every command ran as written")


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "markers":
        source = os.path.abspath(sys.argv[2])
        n = {"run": 0, "file": 0, "skip": 0}
        try:
            for name, path in pages(source):
                for b in blocks_of(name, path):
                    n[b.kind] += 1
        except Failure as e:
            print(e, file=sys.stderr)
            return 1
        print(f"every block is marked: {n['run']} run, {n['file']} files, {n['skip']} skipped")
        return 0
    if len(sys.argv) == 4 and sys.argv[1] in ("run", "inside"):
        source, name = os.path.abspath(sys.argv[2]), sys.argv[3]
        path = os.path.join(source, name)
        if sys.argv[1] == "run":
            # Root and /dev/fuse: tests/needs.sh checks them first in the suite.
            # --kill-child: when this test is killed, the namespaces go too.
            return subprocess.run(["unshare", "--mount", "--pid", "--fork", "--mount-proc",
                                   "--kill-child", sys.executable, os.path.abspath(__file__),
                                   "inside", source, name]).returncode
        try:
            run_inside(source, name, path)
        except Failure as e:
            print(e, file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
