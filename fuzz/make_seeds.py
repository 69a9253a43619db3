#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Write the seed corpus of every fuzz target into fuzz/corpus/TARGET.

The seeds reach READY and open sessions, so fuzzing starts where the
protocol is deep: each input of the drv and hv targets starts from a
chosen state (byte 0) and then runs operations (see fuzz_drv.c and
fuzz_hv.c for their encoding). The pcapng seed (corpus/pcapng/) is a real
capture of an echo session, made with `openvmc --capture`, not here.
"""
import os
import struct

here = os.path.dirname(os.path.abspath(__file__))


def put(target, name, data):
    d = os.path.join(here, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


def hmc(type_, status=0, owner=0, session=0, index=0, buf=0, tail=0, pad=0):
    return bytes([0x80, type_, status, owner, session, index]) + struct.pack(
        ">HII", buf, pad, tail)


def caps(type_, status=0, hmcs=1, pool=32, mtu=4096, crq=256, ver=0x0101):
    return bytes([0x80, type_, status, 0, 0, hmcs]) + struct.pack(">HIHH", pool, mtu, crq, ver)


def init(fmt):
    return bytes([0xC0, fmt]) + bytes(14)


# ---- wire: entries, and backend frames ----
put("wire", "init", init(1))
put("wire", "caps", caps(0x01))
put("wire", "caps-resp", caps(0x81))
put("wire", "add-buf", hmc(0x04, owner=1, session=1, buf=5, tail=0x1000))
put("wire", "signal", hmc(0x06, session=1, buf=3, tail=100))
put("wire", "transport", bytes([0xFF, 0x01]) + bytes(14))
frame = struct.pack(">IBBHBBH", 8 + 5, 2, 0, 1, 0, 1, 0) + b"hello"
put("wire", "frames", frame + struct.pack(">IBBHBBH", 8 + 32, 1, 0, 1, 0, 1, 0) + bytes(32)
    + struct.pack(">IBBHBBH", 8, 3, 0, 1, 0, 1, 0))

# ---- drv: byte 0 the start (0 ready, 1 a session open, 2 no hypervisor core) ----
FILEOP = 5            # op % 12 == 5..8: a file operation follows
OPEN, SETID, WRITE, READ, CLOSE, POLL = range(6)
RUN, HOLD, ADVANCE, RESET = 3, 4, 9, 10


def fop(sel, k, *rest):
    return bytes([FILEOP, sel, k]) + bytes(rest)


def u16(v):
    return struct.pack(">H", v)


def drv_inject_struct(e):
    return bytes([1]) + e


session_traffic = (fop(WRITE, 0) + u16(100) + bytes([RUN]) + fop(READ, 0) + u16(4096)
                   + bytes([RUN]))
put("drv", "ready-open-write-read", bytes([0]) + fop(OPEN, 1) + fop(SETID, 1, 9)
    + bytes([RUN]) + fop(WRITE, 1) + u16(64) + bytes([RUN]) + fop(READ, 1) + u16(64)
    + fop(CLOSE, 1) + bytes([RUN]))
put("drv", "session-traffic", bytes([1]) + session_traffic * 4)
put("drv", "session-hostile-signal", bytes([1]) + drv_inject_struct(
    hmc(5, session=1, buf=31, tail=0)) + bytes([RUN]) + session_traffic)
put("drv", "session-hold-hv-flood", bytes([1, HOLD]) + (drv_inject_struct(
    hmc(3, index=200, buf=1)) + bytes([RUN])) * 40 + bytes([HOLD, RUN]) + session_traffic)
put("drv", "scripted-hv-handshake", bytes([2, 2]) + init(2) + bytes([RUN, 1])
    + caps(0) + bytes([RUN, 1]) + hmc(3, buf=0, tail=0) + bytes([RUN]))
put("drv", "reset-mid-session", bytes([1]) + session_traffic + bytes([RESET, 1, RUN])
    + fop(READ, 0) + u16(10) + fop(CLOSE, 0) + bytes([ADVANCE, 100]))

# ---- hv: byte 0 the start (0 ready, 1 a session open, 2 hypervisor waiting for INIT) ----
HFILEOP, HRUN, HHOLD, HADV, HSEND, HRESET = 5, 3, 4, 8, 9, 10


def hfop(sel, k, *rest):
    return bytes([HFILEOP, sel, k]) + bytes(rest)


hv_traffic = (hfop(2, 0) + u16(200) + bytes([HRUN]) + hfop(3, 0) + u16(4096) + bytes([HRUN]))
put("hv", "session-traffic", bytes([1]) + hv_traffic * 4)
put("hv", "session-backend-sends", bytes([1]) + (bytes([HSEND]) + u16(300) + bytes([0])) * 8
    + bytes([HRUN]) + hv_traffic)
put("hv", "hold-driver-close-flood", bytes([1, HHOLD]) + (bytes([1]) + hmc(2, session=1))
    * 50 + bytes([HHOLD, HRUN]))
put("hv", "partition-handshake", bytes([2, 2]) + init(2) + bytes([HRUN, 1]) + caps(0)
    + bytes([HRUN, HHOLD, HRUN]))
put("hv", "open-two-and-close", bytes([0]) + hfop(0, 1) + hfop(1, 1, 3) + hfop(0, 2)
    + hfop(1, 2, 4) + bytes([HRUN]) + hfop(2, 2) + u16(10) + bytes([HRUN]) + hfop(4, 1)
    + hfop(4, 2) + bytes([HRUN]))

# ---- router: messages, each (how, u16 length, bytes) ----


def rhdr(target, opcode, token, flags, data):
    return (bytes([0xDE, 0xCA, 0xFF, 32]) + struct.pack(">IIHBBIHH", 32 + len(data), token,
            target, 0, flags, len(data), opcode, 0) + bytes(8) + data)


def rmsg(how, m):
    return bytes([how]) + u16(len(m)) + m


xchg = rhdr(0x8000, 0x0001, 1, 0x80, b"")
echo = rhdr(0x8000, 0x0103, 2, 0x80, b"ping")
put("router", "exchange-echo-close", rmsg(1 | 8, xchg) + rmsg(1 | 8, echo)
    + rmsg(1 | 8, rhdr(0x8000, 0x0002, 3, 0x80, b"")))
put("router", "direct-calls", rmsg(0, xchg) + rmsg(8, echo) + rmsg(8, rhdr(0x8001, 0x0007, 4,
    0x80, b"x" * 40)))
put("router", "bad-lengths", rmsg(2 | 8, bytes(40)) + rmsg(6 | 1 | 8, bytes(100)))

# ---- ctl: request lines ----
put("ctl", "read-only", b"\x00status\nsessions\nhelp\ntrace\n")
put("ctl", "admin", b"\x01send 0 00ff10\nrestart failed\nrestart deregistered\nsend 300 zz\n")
put("ctl", "errors", b"\x01bogus\nsend\nsend 0 abc\nrestart sideways\nstatus extra\n")

# ---- guest: byte 0 the receiving side (0 daemon, 1 device), byte 1 the read size ----
def gl(type_, body, seq=0):
    return struct.pack("<IHHII", 0x474D564F, 1, type_, len(body), seq) + body


hello = gl(1, struct.pack("<IIIIQQ", 0x30000002, 0x80000002, 0x40000002, 0x81000002,
                          4 << 20, 16 << 20))
put("guest", "device-session", bytes([0, 7]) + hello + gl(3, struct.pack("<II", 256, 0))
    + gl(5, struct.pack("<II", 1, 0) + bytes([0xC0, 0x01]) + bytes(14))
    + gl(6, struct.pack("<qQQQQQ", 0, 100, 0x80000002, 0x1000, 0x81000002, 0x2000))
    + gl(10, struct.pack("<q", 0), seq=1) + gl(4, b""))
put("guest", "daemon-side", bytes([1, 64])
    + gl(2, struct.pack("<iIIIII", 0, 1, 256, 1, 1, 0))
    + gl(7, struct.pack("<IIII", 1, 2, 256, 0)) + gl(8, struct.pack("<II", 2, 5))
    + gl(9, bytes([0xC0, 0x02]) + bytes(14), seq=3))

# ---- xproc: byte 0 bit 0 a mailbox, then operations: op, u16 length, bytes ----
def xop(op, rec):
    return bytes([op]) + struct.pack(">H", len(rec)) + rec


def xrec(type_, body=b""):
    # The first byte picks the type when op has 0x10 (the header is rewritten).
    return bytes([type_]) + bytes(15) + body


def xcall(opcode, *args):
    return struct.pack("<QII", opcode, len(args), 0) + struct.pack("<5Q", *(list(args) + [0] * (5 - len(args))))


report = struct.pack("<II", 1, 0) + struct.pack("<q5Q", 0, 64, 0x81000001, 0, 0x71000001, 0)
put("xproc", "mailbox-hcalls", bytes([1]) + xop(0x10, xrec(5))
    + xop(0x11, xrec(3, xcall(0xFC, 0x71000001, 0x4000, 4096)))
    + xop(0x11, xrec(8, xcall(0x110, 64, 0x71000001, 0, 0x81000001, 0)
                     + xcall(0x108, 0x71000001, 0x8001000000000000, 0)))
    + xop(0x12, b"") + xop(0x03, b""))
put("xproc", "reports-ahead", bytes([1]) + xop(0x10, xrec(10, report))
    + xop(0x51, xrec(3, xcall(0x104, 0x71000001, 1))))
put("xproc", "socket-only", bytes([0]) + xop(0x10, xrec(5))
    + xop(0x10, xrec(3, xcall(0x104, 0x71000001, 1))) + xop(0x10, xrec(7)))
put("xproc", "bad-mailbox", bytes([1]) + xop(0x31, xrec(3, xcall(0xFC)))
    + xop(0x91, xrec(8)) + xop(0x02, b"\x00" * 8))
