#!/usr/bin/env python3
"""SIP-over-TLS load client for bench/tls.sh (Python 3 standard library only; loopback only).

Modes (every mode is bounded in count and time and exits by itself):
  idle     open --count TLS connections (--concurrency handshakes at a time), print
           "OPEN <n>", hold them until stdin closes or --hold seconds pass, then close.
  register --conns persistent TLS connections, each registering its own station in a loop
           (REGISTER -> 401 -> REGISTER + MD5 digest -> 200) for --duration seconds; prints
           the registrations completed per second.
  connect  --count registrations, each on a new TLS connection (handshake, REGISTER, 401,
           REGISTER + digest, 200, close), --concurrency at a time; prints the rate.
Stations are numbers --first.. with password "Hl7kQ9v<number>" (bench/tls.sh imports them).
"""
import argparse
import asyncio
import hashlib
import os
import ssl
import sys
import time


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def ctx():
    c = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    c.check_hostname = False
    c.verify_mode = ssl.CERT_NONE  # the bench measures the server, not the PKI
    c.minimum_version = ssl.TLSVersion.TLSv1_2
    return c


class Ua:
    def __init__(self, host, port, user, realm):
        self.host, self.port, self.user, self.realm = host, port, user, realm
        self.cseq = 0
        self.call_id = f"{user}-{os.getpid()}-{time.monotonic_ns()}@bench"

    async def open(self, context):
        self.r, self.w = await asyncio.open_connection(self.host, self.port, ssl=context)
        self.local = self.w.get_extra_info("sockname")

    async def transaction(self, auth=None):
        self.cseq += 1
        uri = f"sip:{self.host}:{self.port};transport=tls"
        lh, lp = self.local[0], self.local[1]
        msg = (
            f"REGISTER {uri} SIP/2.0\r\n"
            f"Via: SIP/2.0/TLS {lh}:{lp};branch=z9hG4bK{self.cseq}x{self.user};rport\r\n"
            f"Max-Forwards: 70\r\n"
            f"From: <sip:{self.user}@{self.host}>;tag=t{self.user}\r\n"
            f"To: <sip:{self.user}@{self.host}>\r\n"
            f"Call-ID: {self.call_id}\r\n"
            f"CSeq: {self.cseq} REGISTER\r\n"
            f"Contact: <sip:{self.user}@{lh}:{lp};transport=tls>\r\n"
            f"Expires: 3600\r\n"
            + (f"Authorization: {auth}\r\n" if auth else "")
            + "Content-Length: 0\r\n\r\n"
        )
        self.w.write(msg.encode())
        head = (await self.r.readuntil(b"\r\n\r\n")).decode(errors="replace")
        return head

    async def register(self):
        head = await self.transaction()
        if not head.startswith("SIP/2.0 401"):
            raise RuntimeError(head.split("\r\n", 1)[0])
        chal = next(l for l in head.split("\r\n") if l.lower().startswith("www-authenticate:"))
        nonce = chal.split('nonce="', 1)[1].split('"', 1)[0]
        uri = f"sip:{self.host}:{self.port};transport=tls"
        ha1 = md5(f"{self.user}:{self.realm}:Hl7kQ9v{self.user}")
        ha2 = md5(f"REGISTER:{uri}")
        nc, cnonce = "00000001", f"c{self.cseq}"
        resp = md5(f"{ha1}:{nonce}:{nc}:{cnonce}:auth:{ha2}")
        auth = (
            f'Digest username="{self.user}", realm="{self.realm}", nonce="{nonce}", '
            f'uri="{uri}", response="{resp}", algorithm=MD5, cnonce="{cnonce}", qop=auth, nc={nc}'
        )
        head = await self.transaction(auth)
        if not head.startswith("SIP/2.0 200"):
            raise RuntimeError(head.split("\r\n", 1)[0])


async def idle(a):
    context = ctx()
    conns, failed = [], 0
    sem = asyncio.Semaphore(a.concurrency)

    async def one(i):
        nonlocal failed
        async with sem:
            try:
                r, w = await asyncio.wait_for(
                    asyncio.open_connection(a.host, a.port, ssl=context), 30
                )
                conns.append(w)
            except Exception:
                failed += 1

    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(a.count))), a.hold)
    print(f"OPEN {len(conns)} failed {failed} in {time.monotonic() - t0:.1f} s", flush=True)
    loop = asyncio.get_running_loop()
    stdin_closed = loop.run_in_executor(None, sys.stdin.read)
    try:
        await asyncio.wait_for(stdin_closed, a.hold)
    except asyncio.TimeoutError:
        pass
    for w in conns:
        w.close()


async def register(a):
    context = ctx()
    uas = [Ua(a.host, a.port, str(a.first + i), a.realm) for i in range(a.conns)]
    await asyncio.gather(*(u.open(context) for u in uas))
    done, errors = 0, 0
    deadline = time.monotonic() + a.duration

    async def loop(u):
        nonlocal done, errors
        while time.monotonic() < deadline:
            try:
                await u.register()
                done += 1
            except Exception as e:
                errors += 1
                if errors < 5:
                    print(f"error: {e}", file=sys.stderr)
                return

    t0 = time.monotonic()
    await asyncio.gather(*(loop(u) for u in uas))
    dt = time.monotonic() - t0
    print(f"REGISTERED {done} errors {errors} in {dt:.1f} s = {done / dt:.0f}/s over {a.conns} connections")


async def connect(a):
    context = ctx()
    sem = asyncio.Semaphore(a.concurrency)
    done, errors = 0, 0

    async def one(i):
        nonlocal done, errors
        async with sem:
            u = Ua(a.host, a.port, str(a.first + i % a.users), a.realm)
            try:
                await asyncio.wait_for(u.open(context), 30)
                await asyncio.wait_for(u.register(), 30)
                done += 1
            except Exception as e:
                errors += 1
                if errors < 5:
                    print(f"error: {e!r}", file=sys.stderr)
            finally:
                if hasattr(u, "w"):
                    u.w.close()

    t0 = time.monotonic()
    await asyncio.wait_for(asyncio.gather(*(one(i) for i in range(a.count))), a.duration)
    dt = time.monotonic() - t0
    print(f"CONNECTED+REGISTERED {done} errors {errors} in {dt:.1f} s = {done / dt:.0f}/s")


def main():
    p = argparse.ArgumentParser()
    p.add_argument("mode", choices=["idle", "register", "connect"])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, required=True)
    p.add_argument("--realm", default="homeline")
    p.add_argument("--first", type=int, default=300000)
    p.add_argument("--users", type=int, default=100)
    p.add_argument("--count", type=int, default=1000)
    p.add_argument("--conns", type=int, default=50)
    p.add_argument("--concurrency", type=int, default=50)
    p.add_argument("--duration", type=float, default=20)
    p.add_argument("--hold", type=float, default=120)
    a = p.parse_args()
    if a.host not in ("127.0.0.1", "::1", "localhost"):
        sys.exit("loopback only")
    asyncio.run({"idle": idle, "register": register, "connect": connect}[a.mode](a))


if __name__ == "__main__":
    main()
