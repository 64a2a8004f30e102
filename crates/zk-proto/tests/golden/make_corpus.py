#!/usr/bin/env python3
"""Derives the committed fuzz seed corpora (fuzz/corpus/<target>/) from vectors.txt and
server_frames.txt.

Run from this directory: python3 make_corpus.py. File names are the SHA-1 of the content,
as libFuzzer names its own corpus files. Deterministic: no randomness.
"""
import hashlib
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "..", "..", "..", "..", "fuzz", "corpus")

vectors = []
for source in ("vectors.txt", "server_frames.txt"):
    for line in open(os.path.join(HERE, source), encoding="utf-8"):
        if line.startswith("#") or not line.strip():
            continue
        kind, name, hexed = line.split()
        vectors.append((kind, name, bytes.fromhex(hexed)))


TARGETS = ("frame_decoder", "reply_decode", "watcher_event", "connect_response")
for target in TARGETS:  # regenerate from scratch (only this script's targets)
    d = os.path.join(CORPUS, target)
    if os.path.isdir(d):
        for name in os.listdir(d):
            os.remove(os.path.join(d, name))


def write(target, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, hashlib.sha1(data).hexdigest()), "wb") as f:
        f.write(data)


frames = [b for k, _, b in vectors if k.endswith("_frame") or k.startswith("reply_frame")]
replies = [b for k, _, b in vectors if k.startswith("reply_frame")]
responses = [b for k, _, b in vectors if k.endswith("Response") or k.endswith("Response~cesu8")]
events = [b for k, _, b in vectors if k.startswith("WatcherEvent")]
connects = [b for k, _, b in vectors if k.startswith("Connect")]

# frame_decoder: byte 0 = limits, bytes 1..9 = chunking seed, then a stream of frames.
for i in range(40):
    limits = [0xff, 0x3f, 0x00, 0x41, 0x80, 0xc1][i % 6]
    seed = struct.pack("<Q", 0x9E3779B97F4A7C15 * (i + 1) % (1 << 64))
    stream = b"".join(frames[(i * 7 + j * 3) % len(frames)] for j in range(1 + i % 5))
    if i % 10 == 9:
        stream = stream[: len(stream) // 2]  # a partial frame at the end
    write("frame_decoder", bytes([limits]) + seed + stream)
write("frame_decoder", bytes([0x3f]) + bytes(8) + struct.pack(">i", -1))

# reply_decode: response bodies, and whole reply payloads (header + body).
for body in responses:
    write("reply_decode", body)
for frame in replies:
    write("reply_decode", frame[4:])
    write("reply_decode", frame[4 + 16:])

# watcher_event: events and notification payloads.
for event in events:
    write("watcher_event", event)
    write("watcher_event", struct.pack(">iqi", -1, -1, 0) + event)
    write("watcher_event", event[:-1])

# connect_response: handshake records, plus the NotReadOnly reply header of reference §9.
for c in connects:
    write("connect_response", c)
    write("connect_response", c[:36])
write("connect_response", bytes.fromhex("00000000000000040000000 7ffffff89".replace(" ", "")))

# More structured seeds for the small targets.
paths = [b"", b"/", b"/t6/d", "/t\u00e9st/\u65e5\u672c".encode(), bytes.fromhex("2feda0bdedb880")]
for i, (etype, state) in enumerate([(-1, 0), (1, 3), (2, 3), (3, 3), (4, 3), (5, 3), (6, 3),
                                    (7, 3), (-1, -112), (-1, 5), (-1, 4), (99, 42)]):
    p = paths[i % len(paths)]
    event = struct.pack(">iii", etype, state, len(p)) + p
    write("watcher_event", event)
    write("watcher_event", struct.pack(">iqi", -1, -1, 0) + event)
write("watcher_event", struct.pack(">iii", 3, 3, -1))
write("watcher_event", struct.pack(">iii", 3, 3, -2))
write("watcher_event", struct.pack(">iii", 3, 3, 0x7fffffff) + b"/x")

passwd = bytes.fromhex("acfe521dc9284ac86abf8477ba04d91e")
for timeout, sid, ro in [(4000, 0x1000003a9a20000, b"\x00"), (4000, 0x1000009d79d0000, b"\x01"),
                         (0, 0, b"\x00"), (400, 0x200000000000001, b""), (-1, 5, b"\x02"),
                         (2**31 - 1, -1, b"\x01")]:
    base = struct.pack(">iiqi", 0, timeout, sid, 16) + (passwd if timeout else bytes(16))
    write("connect_response", base + ro)
    write("connect_response", base + ro + b"\x00")
for plen in (0, 15, 17, -1):
    body = passwd[:max(plen, 0)] + (b"\x00" if plen > 16 else b"")
    write("connect_response", struct.pack(">iiqi", 0, 4000, 1, plen) + body + b"\x00")
