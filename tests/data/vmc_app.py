# SPDX-License-Identifier: GPL-2.0-or-later
# A management program in another language, written for Linux's
# /dev/ibmvmc: os.open, fcntl.ioctl, os.write, os.read. The preload tests
# run it unchanged under vmc-run.  Usage: vmc_app.py DEVICE HMC-ID
import errno
import fcntl
import os
import stat
import struct
import sys
import time

VMC_IOCTL_SETHMCID = 0x4008CC00
VMC_IOCTL_QUERY = 0x800CCC01

fd = os.open(sys.argv[1], os.O_RDWR)
print("character device:", stat.S_ISCHR(os.fstat(fd).st_mode))
for _ in range(1000):
    query = bytearray(12)
    fcntl.ioctl(fd, VMC_IOCTL_QUERY, query)
    if struct.unpack("iii", query)[1] == 3:
        break
    time.sleep(0.01)
print("state", struct.unpack("iii", query)[1])
fcntl.ioctl(fd, VMC_IOCTL_SETHMCID, sys.argv[2].encode().ljust(32, b"\0"))
for _ in range(1000):
    try:
        os.write(fd, b"hello from python")
        break
    except OSError as e:
        if e.errno != errno.EBUSY:
            raise
        time.sleep(0.01)
print("reply", os.read(fd, 4096).decode())
try:
    fcntl.ioctl(fd, 1, b"x" * 32)
except OSError as e:
    print("ioctl 1:", errno.errorcode[e.errno])
os.close(fd)
