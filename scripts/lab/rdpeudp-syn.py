#!/usr/bin/env python3
"""Sends RDPEUDP client SYNs as MS-RDPEUDP 2.2.2.5 lays them out, the way a
client starts RDP over UDP: RDPUDP_FEC_HEADER (snSourceAck = -1, window 64,
flags CORRELATION_ID|SYNEX|SYN), RDPUDP_SYNDATA_PAYLOAD (random initial
sequence number, MTUs 1232/1232), RDPUDP_CORRELATION_ID_PAYLOAD,
RDPUDP_SYNDATAEX_PAYLOAD (version 2), zero padding to 1232 bytes. Three
tries, 3.5 s and 2.7 s apart (what mstsc was seen to do, PROTOCOLS.md §7);
stops early if a SYN+ACK comes back.

    rdpeudp-syn.py SERVER [PORT]
"""
import os
import socket
import struct
import sys

server = sys.argv[1]
port = int(sys.argv[2]) if len(sys.argv) > 2 else 3389

corr = bytes([0x11]) + os.urandom(15).replace(b"\r", b"\x01")
isn = struct.unpack("!I", os.urandom(4))[0]
syn = struct.pack("!IHH", 0xFFFFFFFF, 64, 0x1000 | 0x0800 | 0x0001)
syn += struct.pack("!IHH", isn, 1232, 1232)
syn += corr + bytes(16)
syn += struct.pack("!HH", 0x0001, 0x0002)
syn = syn.ljust(1232, b"\x00")

s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
for wait in (3.5, 2.7, 3.0):
    s.sendto(syn, (server, port))
    s.settimeout(wait)
    try:
        data, _ = s.recvfrom(2048)
        flags = struct.unpack("!H", data[6:8])[0] if len(data) >= 8 else 0
        if flags & 0x0005 == 0x0005:
            print("SYN+ACK received")
            break
    except socket.timeout:
        pass
