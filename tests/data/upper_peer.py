#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Hypervisor script for the layer-2 device tests (l2dev_test.c), spoken
through the exec backend (docs/framing.md).

Greets every session at OPEN with "welcome " and the HMC id (trailing NULs
cut), unsolicited, and answers each MESSAGE with its bytes in upper case.

  upper_peer.py [TRIGGER]

With TRIGGER, every open session also gets an unsolicited "later" once the
file TRIGGER exists: a message nobody asked for, sent while the
application is (the test makes sure) blocked in read().
"""
import os
import select
import struct
import sys

OPEN, MESSAGE, CLOSE = 1, 2, 3
HEADER = struct.Struct(">IBBHBBH")  # length, type, flags, partition, index, session, reserved
TRIGGER_POLL_S = 0.02
trigger = sys.argv[1] if len(sys.argv) > 1 else None
out = sys.stdout.buffer
waiting = set()  # sessions that still get "later"


def send(key, payload):
    part, index, session = key
    out.write(HEADER.pack(8 + len(payload), MESSAGE, 0, part, index, session, 0) + payload)
    out.flush()


buf = b""
while True:
    # Stdin is read unbuffered so that select() sees every byte still pending.
    ready, _, _ = select.select([0], [], [], TRIGGER_POLL_S if waiting else None)
    if waiting and os.path.exists(trigger):
        for key in sorted(waiting):
            send(key, b"later")
        waiting.clear()
    if not ready:
        continue
    chunk = os.read(0, 65536)
    if not chunk:
        break  # the hypervisor stopped
    buf += chunk
    while len(buf) >= HEADER.size:
        length = struct.unpack_from(">I", buf)[0]
        if len(buf) < 4 + length:
            break
        _, ftype, _, part, index, session, _ = HEADER.unpack_from(buf)
        payload, buf = buf[HEADER.size:4 + length], buf[4 + length:]
        key = (part, index, session)
        if ftype == OPEN:
            send(key, b"welcome " + payload.rstrip(b"\0"))
            if trigger:
                waiting.add(key)
        elif ftype == MESSAGE:
            send(key, payload.upper())
        elif ftype == CLOSE:
            waiting.discard(key)
