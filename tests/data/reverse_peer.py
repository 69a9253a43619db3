#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hypervisor script for the exec backend tests (docs/framing.md).

Greets every session it is told about (OPEN), answers each MESSAGE with its
bytes reversed, and says goodbye after CLOSE - on a session that no longer
exists, which the backend must drop as stale. A few messages are commands:
  exit     exit with status 3 at once
  stale    first send to a wrong session number and to an index not open
  burst:N  answer with N messages "burst 0" .. "burst N-1"
  garbage  send a frame with a non-zero flags byte
Run: exec:python3 tests/data/reverse_peer.py
"""
import struct
import sys

OPEN, MESSAGE, CLOSE = 1, 2, 3
HEADER = struct.Struct(">IBBHBBH")  # length, type, flags, partition, index, session, reserved
inp, out = sys.stdin.buffer, sys.stdout.buffer


def read_exact(n):
    data = inp.read(n)
    if data is None or len(data) < n:
        sys.exit(0)  # the hypervisor went away
    return data


def send(ftype, partition, index, session, payload=b"", flags=0):
    try:
        out.write(HEADER.pack(8 + len(payload), ftype, flags, partition, index, session, 0)
                  + payload)
        out.flush()
    except BrokenPipeError:
        sys.exit(0)  # the hypervisor went away


while True:
    length, ftype, flags, part, index, session, _ = HEADER.unpack(read_exact(HEADER.size))
    payload = read_exact(length - 8)
    if ftype == OPEN:
        send(MESSAGE, part, index, session,
             b"hello partition %d index %d session %d" % (part, index, session))
    elif ftype == CLOSE:
        send(MESSAGE, part, index, session, b"goodbye")
    elif payload == b"exit":
        sys.exit(3)
    else:
        if payload == b"stale":
            send(MESSAGE, part, index, session ^ 0x80, b"wrong number")
            send(MESSAGE, part, (index + 7) & 0xFF, session, b"wrong index")
        elif payload.startswith(b"burst:"):
            for i in range(int(payload[6:])):
                send(MESSAGE, part, index, session, b"burst %d" % i)
            continue
        elif payload == b"garbage":
            send(MESSAGE, part, index, session, b"bad flags", flags=1)
            continue
        send(MESSAGE, part, index, session, payload[::-1])
