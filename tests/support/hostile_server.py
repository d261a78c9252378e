#!/usr/bin/env python3
# A hostile sync server for tests/integration/hostile_server_test.cpp (issue #23). It speaks just
# enough of sync protocol v1 (POST /v1/push, GET /v1/changes, GET /v1/records, the /v1/ws
# WebSocket) to be reached, then answers each request, at a random moment, in one of the bad ways
# a broken or malicious server can: garbage status lines, a header flood, bodies over any cap,
# broken chunked encoding, JSON nested 200,000 deep, NaN/Infinity and out-of-range numbers, wrong
# types, invalid UTF-8, replies drip-fed a byte a second, replies never sent, connections cut or
# reset, and mutated replies from the fuzz corpora; WebSocket handshakes and frames the same way.
# Some replies are correct, so the runs have successes too.
#
#   hostile_server.py PORT SEED [CORPUS_DIR ...]
#
# Bounded: a request's headers at most 64 KiB and its body at most 16 MiB (else the connection is
# closed); every drip and stall ends after 40 s. Writes one line per request to stderr:
# "<path> <mode>", so a test can tell which ways were used. Stops on SIGTERM/SIGINT.
import asyncio
import base64
import hashlib
import json
import os
import random
import signal
import struct
import sys

port = int(sys.argv[1])
rng = random.Random(int(sys.argv[2]))
corpus = []
for d in sys.argv[3:]:
    if os.path.isdir(d):
        for name in sorted(os.listdir(d)):
            p = os.path.join(d, name)
            if os.path.isfile(p):
                with open(p, "rb") as f:
                    corpus.append(f.read(1 << 20))
if not corpus:
    corpus = [b'{"acked": ["a-1", "a-2"], "conflicts": [], "cseq": 7}',
              b'{"changes": [{"cseq": 1, "id": "a-1", "stream": "s", "seq": 1, "t_us": 5, "commit_us": 9}], "next": 1}',
              b'{"records": [{"key": "k", "value": 1, "version": 2}]}']

DEEP = b"[" * 200000 + b"]" * 200000
WS_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC11B65"
MAX_HEADERS = 64 * 1024
MAX_BODY = 16 << 20
used = {}


def note(path, mode):
    used[mode] = used.get(mode, 0) + 1
    sys.stderr.write("%s %s\n" % (path, mode))
    sys.stderr.flush()


def mutate(b):
    b = bytearray(b)
    for _ in range(rng.randint(1, 8)):
        if not b:
            b = bytearray(b"{")
        i = rng.randrange(len(b))
        op = rng.randrange(5)
        if op == 0:
            b[i] = rng.randrange(256)
        elif op == 1:
            del b[i:i + rng.randint(1, 16)]
        elif op == 2:
            b[i:i] = rng.choice([b"[", b"{", b'"', b"\xff", b"1e999", b"NaN", b"-", b"\x00", b"99999999999999999999999", b"[[[[[[[["])
        elif op == 3:
            del b[i:]
        else:
            j = rng.randrange(len(b))
            b[i:i] = b[j:j + rng.randint(1, 64)]
    return bytes(b)


def good_body(path, body):
    if path.startswith("/v1/push"):
        try:
            ids = [op["id"] for op in json.loads(body)["ops"]]
        except Exception:
            ids = []
        return json.dumps({"acked": ids, "conflicts": [], "cseq": rng.randint(1, 1000)}).encode()
    if path.startswith("/v1/changes"):
        return b'{"changes": [], "next": 0}'
    if path.startswith("/v1/records"):
        return b'{"records": []}'
    return b"ok"


def bad_body(kind):
    if kind == "deep":
        return b'{"acked": ' + DEEP + b', "changes": ' + DEEP + b', "records": ' + DEEP + b', "next": 1}'
    if kind == "nan":
        return b'{"acked": [NaN], "cseq": Infinity, "changes": [{"cseq": -Infinity, "id": "x"}], "next": NaN, "records": [NaN]}'
    if kind == "huge_numbers":
        return (b'{"acked": [1e999], "cseq": 18446744073709551616, "changes": [{"cseq": 1e308, "id": 5, "stream": null, '
                b'"seq": -99999999999999999999, "t_us": 1e400, "commit_us": -1}], "next": 1e999, '
                b'"records": [{"key": 1, "value": 1e999, "version": 1e300}]}')
    if kind == "wrong_types":
        return b'{"acked": "all", "conflicts": 7, "cseq": "x", "changes": {"a": 1}, "next": [1], "records": "none"}'
    if kind == "bad_utf8":
        return (b'{"acked": ["\xff\xfe\xc3\x28"], "conflicts": [{"id": "\xed\xa0\x80", "key": "\xc0\xaf"}], "cseq": 1, '
                b'"changes": [{"cseq": 1, "id": "\xf8\x88\x80\x80\x80", "stream": "s\xff"}], "next": 1, '
                b'"records": [{"key": "\xc0\xaf", "value": "\xff", "version": 1}]}')
    if kind == "mutated":
        return mutate(rng.choice(corpus))
    if kind == "not_json":
        return bytes(rng.randrange(256) for _ in range(rng.randint(0, 300)))
    return b"{}"


async def drip(writer, data, seconds=40):
    for i in range(min(len(data), seconds)):
        writer.write(data[i:i + 1])
        await writer.drain()
        await asyncio.sleep(1)


async def reply(writer, path, body):
    modes = ["good", "good", "good", "body", "body", "body", "body", "status_garbage", "header_flood", "many_headers",
             "over_cap", "chunked_bad", "chunked_over_cap", "drip", "stall", "close", "reset", "half_body",
             "5xx_garbage", "length_mismatch"]
    mode = rng.choice(modes)
    # Records are read to start the fanout load (20 attempts, then the run cannot start) and by
    # the audit: half of them good, so runs get past the start and the audit gets further.
    if path.startswith("/v1/records") and rng.random() < 0.4:
        mode = "good"
    kind = rng.choice(["deep", "nan", "huge_numbers", "wrong_types", "bad_utf8", "mutated", "mutated", "not_json"])
    if mode == "body":
        mode = "body:" + kind
    note(path, mode)  # before: a drip or a stall may end with the client closing on it
    if rng.random() < 0.3:
        await asyncio.sleep(rng.uniform(0, 1.5))
    if mode == "good":
        b = good_body(path, body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
    elif mode.startswith("body:"):
        b = bad_body(kind)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
    elif mode == "status_garbage":
        writer.write(rng.choice([b"HTTP/1.1 2x0 OK\r\n\r\n", b"HTTP/9.9 200 OK\r\nContent-Length: 2\r\n\r\n{}",
                                 b"\x00\x01\x02garbage\r\n\r\n", b"HTTP/1.1 99999999999 Big\r\n\r\n",
                                 b"HTTP/1.1 200 " + b"O" * 100000 + b"\r\n\r\n"]))
    elif mode == "header_flood":
        writer.write(b"HTTP/1.1 200 OK\r\nX-Flood: " + b"a" * (256 * 1024) + b"\r\nContent-Length: 2\r\n\r\n{}")
    elif mode == "many_headers":
        writer.write(b"HTTP/1.1 200 OK\r\n" + b"".join(b"X-H%d: v\r\n" % i for i in range(20000)) + b"Content-Length: 2\r\n\r\n{}")
    elif mode == "over_cap":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1099511627776\r\n\r\n" + b"[" * 65536)
    elif mode == "chunked_bad":
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n" +
                     rng.choice([b"zz\r\n{}\r\n0\r\n\r\n", b"ffffffffffffffffffff\r\n{}", b"2\r\n{}XX0\r\n\r\n", b"-1\r\n\r\n"]))
    elif mode == "chunked_over_cap":
        writer.write(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
        chunk = b"10000\r\n" + b"[" * 65536 + b"\r\n"
        for _ in range(400):  # 25 MiB, past every body cap
            writer.write(chunk)
            await writer.drain()
    elif mode == "drip":
        b = good_body(path, body)
        await drip(writer, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % len(b) + b)
    elif mode == "stall":
        await asyncio.sleep(40)
    elif mode == "close":
        pass
    elif mode == "reset":
        sock = writer.get_extra_info("socket")
        if sock is not None:
            sock.setsockopt(__import__("socket").SOL_SOCKET, __import__("socket").SO_LINGER, struct.pack("ii", 1, 0))
    elif mode == "half_body":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n{\"acked\": [")
    elif mode == "5xx_garbage":
        b = bad_body("mutated")
        writer.write(b"HTTP/1.1 %d Oops\r\nContent-Length: %d\r\n\r\n" % (rng.choice([500, 502, 503, 507, 599]), len(b)) + b)
    elif mode == "length_mismatch":
        b = good_body(path, body)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n" + b + b"HTTP/1.1 garbage\r\n\r\n")
    keep = mode in ("good", "body:deep", "body:nan", "body:huge_numbers", "body:wrong_types", "body:bad_utf8",
                    "body:mutated", "body:not_json", "5xx_garbage")
    await writer.drain()
    return keep


def ws_frame(opcode, payload, fin=True, length=None):
    n = len(payload) if length is None else length
    head = bytes([(0x80 if fin else 0) | opcode])
    if n < 126:
        head += bytes([n])
    elif n < 65536:
        head += bytes([126]) + struct.pack(">H", n)
    else:
        head += bytes([127]) + struct.pack(">Q", n)
    return head + payload


async def websocket(reader, writer, path, headers):
    key = headers.get(b"sec-websocket-key", b"")
    accept = base64.b64encode(hashlib.sha1(key + WS_GUID).digest())
    mode = rng.choice(["good", "good", "good", "bad_accept", "not_101", "no_upgrade", "stall", "close"])
    note(path, "ws_handshake:" + mode)
    if mode == "stall":
        await asyncio.sleep(40)
        return
    if mode == "close":
        return
    if mode == "not_101":
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")
        await writer.drain()
        return
    if mode == "bad_accept":
        accept = base64.b64encode(b"not the right accept key!")
    upgrade = b"" if mode == "no_upgrade" else b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
    writer.write(b"HTTP/1.1 101 Switching Protocols\r\n" + upgrade + b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
    await writer.drain()
    if mode != "good":
        return
    seq = 0
    for _ in range(rng.randint(1, 30)):
        if rng.random() < 0.3:
            await asyncio.sleep(rng.uniform(0, 1))
        kind = rng.choice(["change", "change", "change", "deep", "bad_utf8", "binary", "huge_length", "reserved_opcode",
                           "fragmented_ping", "over_max", "mutated", "nan", "wrong_types", "bad_close", "ping_flood",
                           "drip", "continuation_first"])
        note(path, "ws_frame:" + kind)
        if kind == "change":
            seq += 1
            m = {"cseq": seq, "id": "hostile-%d" % seq, "stream": "live-0", "seq": seq, "t_us": seq, "commit_us": seq}
            writer.write(ws_frame(0x1, json.dumps(m).encode()))
        elif kind == "deep":
            writer.write(ws_frame(0x1, b'{"cseq": ' + DEEP + b"}"))
        elif kind == "bad_utf8":
            writer.write(ws_frame(0x1, b'{"cseq": 1, "id": "\xff\xfe"}'))
        elif kind == "binary":
            writer.write(ws_frame(0x2, bytes(rng.randrange(256) for _ in range(100))))
        elif kind == "huge_length":
            writer.write(ws_frame(0x1, b"{}", length=1 << 62))
            break
        elif kind == "reserved_opcode":
            writer.write(ws_frame(0x3, b"x"))
        elif kind == "fragmented_ping":
            writer.write(ws_frame(0x9, b"p", fin=False))
        elif kind == "over_max":
            writer.write(ws_frame(0x1, b'{"x": "' + b"a" * (5 << 20) + b'"}'))
        elif kind == "mutated":
            writer.write(ws_frame(0x1, mutate(rng.choice(corpus))))
        elif kind == "nan":
            writer.write(ws_frame(0x1, b'{"cseq": NaN, "seq": Infinity}'))
        elif kind == "wrong_types":
            writer.write(ws_frame(0x1, b'{"cseq": "one", "id": 7, "stream": [], "seq": {}}'))
        elif kind == "bad_close":
            writer.write(ws_frame(0x8, struct.pack(">H", 999) + b"\xff"))
        elif kind == "ping_flood":
            for _ in range(1000):
                writer.write(ws_frame(0x9, b"ping"))
        elif kind == "drip":
            await drip(writer, ws_frame(0x1, b'{"cseq": 1}'), seconds=20)
        elif kind == "continuation_first":
            writer.write(ws_frame(0x0, b"{}"))
        await writer.drain()
    if rng.random() < 0.5:
        await asyncio.sleep(rng.uniform(0, 5))


async def serve(reader, writer):
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            if len(head) > MAX_HEADERS:
                return
            lines = head.split(b"\r\n")
            parts = lines[0].split(b" ")
            path = parts[1].decode("latin-1") if len(parts) > 1 else "?"
            headers = {}
            for line in lines[1:]:
                if b":" in line:
                    k, v = line.split(b":", 1)
                    headers[k.strip().lower()] = v.strip()
            n = int(headers.get(b"content-length", b"0") or 0)
            if n > MAX_BODY:
                return
            body = await reader.readexactly(n) if n else b""
            if headers.get(b"upgrade", b"").lower() == b"websocket":
                await websocket(reader, writer, path, headers)
                return
            if not await reply(writer, path, body):
                return
    except (asyncio.IncompleteReadError, asyncio.LimitOverrunError, ConnectionError, ValueError):
        pass
    finally:
        try:
            writer.close()
        except Exception:
            pass


async def main():
    server = await asyncio.start_server(serve, "127.0.0.1", port, limit=MAX_HEADERS + 1024, backlog=1024)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for s in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(s, stop.set)
    async with server:
        await stop.wait()
    sys.stderr.write("modes used: %s\n" % json.dumps(used, sort_keys=True))


asyncio.run(main())
