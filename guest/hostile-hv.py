#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# A hypervisor that breaks each rule of docs/guest-link.md once, for QEMU's
# spapr-vmc device (scripts/qemu.sh starts QEMU against it). The device
# must close the link on every bad message and reconnect; a well-behaved
# connection at the end must stay up and get DELIVER answered. Prints one
# line per case; exits 1 if any case failed.
import array
import fcntl
import os
import socket
import struct
import sys
import time

MAGIC, HELLO, WELCOME, SEND, HV_STATE, CREDIT, DELIVER, DELIVER_RC = \
    0x474D564F, 1, 2, 5, 7, 8, 9, 10
H_CLOSED = 2
WINDOW = 16 << 20  # the device's default hv-window-size


def hdr(typ, length, seq=0, magic=MAGIC, version=1):
    return struct.pack('=IHHII', magic, version, typ, length, seq)


def welcome(status=0, entries=16, hv_open=1, epoch=1, pad=0):
    return hdr(WELCOME, 24) + struct.pack('=iIIIII', status, 1, entries, hv_open, epoch, pad)


def window(size=WINDOW, seal=True):
    fd = os.memfd_create('hv-window', os.MFD_ALLOW_SEALING)
    os.ftruncate(fd, size)
    if seal:
        fcntl.fcntl(fd, fcntl.F_ADD_SEALS, fcntl.F_SEAL_SHRINK)
    return fd


def with_fd(c, data, fd):
    c.sendmsg([data], [(socket.SOL_SOCKET, socket.SCM_RIGHTS, array.array('i', [fd]))])
    os.close(fd)


def linked(c):
    with_fd(c, welcome(), window())
    time.sleep(0.2)  # WELCOME taken before what follows


CASES = [
    ('bad magic', lambda c: c.sendall(hdr(WELCOME, 24, magic=1) + bytes(24))),
    ('bad version', lambda c: c.sendall(hdr(WELCOME, 24, version=2) + bytes(24))),
    ('unknown type', lambda c: c.sendall(hdr(77, 0))),
    ('length not the type\'s', lambda c: c.sendall(hdr(WELCOME, 0xFFFFFFFF))),
    ('a type of the other direction', lambda c: c.sendall(hdr(SEND, 24) + bytes(24))),
    ('WELCOME without the window', lambda c: c.sendall(welcome())),
    ('WELCOME with an unsealed window', lambda c: with_fd(c, welcome(), window(seal=False))),
    ('WELCOME with a window too small', lambda c: with_fd(c, welcome(), window(4096))),
    ('WELCOME with a reserved field set', lambda c: with_fd(c, welcome(pad=5), window())),
    ('WELCOME of 0 queue entries', lambda c: with_fd(c, welcome(entries=0), window())),
    ('a refusal with a descriptor', lambda c: with_fd(c, welcome(status=-28), window())),
    ('a WELCOME after a refusal', lambda c: (c.sendall(welcome(status=-28)), time.sleep(0.2),
                                             with_fd(c, welcome(), window()))),
    ('HV_STATE before WELCOME', lambda c: c.sendall(hdr(HV_STATE, 16) + bytes(16))),
    ('a second WELCOME', lambda c: (linked(c), c.sendall(welcome()))),
    ('CREDIT beyond the queue', lambda c: (linked(c), c.sendall(
        hdr(CREDIT, 8) + struct.pack('=II', 1, 1)))),
    ('HV_STATE credit beyond the queue', lambda c: (linked(c), c.sendall(
        hdr(HV_STATE, 16) + struct.pack('=IIII', 1, 2, 17, 0)))),
    ('a descriptor with HV_STATE', lambda c: (linked(c), with_fd(
        c, hdr(HV_STATE, 16) + struct.pack('=IIII', 1, 2, 16, 0), window()))),
    ('a sequence number on CREDIT', lambda c: (linked(c), c.sendall(
        hdr(CREDIT, 8, seq=3) + struct.pack('=II', 1, 0)))),
    ('DELIVER of an entry without the valid bit', lambda c: (linked(c), c.sendall(
        hdr(DELIVER, 16, seq=1) + bytes(16)))),
    ('64 KiB of garbage', lambda c: (linked(c), c.sendall(os.urandom(1 << 16)))),
]


def hello(c):
    c.settimeout(10)
    h = b''
    while len(h) < 48:
        d = c.recv(48 - len(h))
        if not d:
            break
        h += d
    magic, version, typ, length, seq = struct.unpack('=IHHII', h[:16]) if len(h) >= 16 else (0,) * 5
    if len(h) != 48 or (magic, version, typ, length, seq) != (MAGIC, 1, HELLO, 32, 0):
        return 'no valid HELLO'
    return None


def closed_by_device(c, seconds=3):
    c.settimeout(seconds)
    try:
        while c.recv(4096):
            pass
    except (ConnectionResetError, BrokenPipeError):
        pass
    except socket.timeout:
        return False
    return True


def main():
    path = sys.argv[1]
    srv = socket.socket(socket.AF_UNIX)
    srv.bind(path)
    srv.listen(4)
    srv.settimeout(15)
    failed = 0

    def result(name, why):
        nonlocal failed
        if why:
            failed += 1
            print('FAIL %s: %s' % (name, why), flush=True)
        else:
            print('ok %s' % name, flush=True)

    for name, act in CASES:
        try:
            c, _ = srv.accept()
        except socket.timeout:
            result(name, 'the device did not (re)connect')
            break
        why = hello(c)
        if not why:
            try:
                act(c)
            except OSError:
                pass  # the device closed early: fine
            if not closed_by_device(c):
                why = 'the link stayed up'
        c.close()
        result(name, why)

    # The control: a good hypervisor keeps the link and gets its DELIVER
    # answered (no guest CRQ: H_CLOSED, same sequence number).
    name = 'a well-behaved hypervisor keeps the link and DELIVER is answered'
    try:
        c, _ = srv.accept()
        why = hello(c)
        if not why:
            linked(c)
            c.sendall(hdr(DELIVER, 16, seq=41) + b'\x80' + bytes(15))
            c.settimeout(3)
            r = b''
            while len(r) < 24:
                d = c.recv(24 - len(r))
                if not d:
                    break
                r += d
            if r != hdr(DELIVER_RC, 8, seq=41) + struct.pack('=q', H_CLOSED):
                why = 'got %r instead of DELIVER_RC H_CLOSED' % r
            elif closed_by_device(c, 1):
                why = 'the device closed a good link'
        c.close()
    except (socket.timeout, OSError) as e:
        why = 'link failed: %s' % e
    result(name, why)
    return 1 if failed else 0


if __name__ == '__main__':
    sys.exit(main())
