#!/usr/bin/env python3
"""bench/media_sip.py - the RTP relay benchmark (issue 3): homeline vs rtpengine 10.5, side by side.

Per step (N concurrent calls, 172-byte G.711 RTP every 20 ms each way), for each server in turn:

  rtpengine  ../shared/bench/media/mediabench.py's own code (imported, not copied): its
             Rtpengine class starts `rtpengine --table=-1 --num-threads=2` exactly as
             run-media.sh does, and each step is mediabench.step(): ng offer/answer for N calls,
             rtpload, CPU sampling, ng delete, the anchor's pass criteria.
  homeline   the same mediabench.step(), with the ng offer/answer replaced by real SIP calls
             through homeline (the SBC case): 2N external-zone stations REGISTER (digest MD5,
             401) from distinct 127.0.0.1 UDP ports, A_i INVITEs B_i (407, INVITE with
             Proxy-Authorization), B_i answers 200 with its SDP, A_i ACKs. A_i's SDP names
             rtpload's port 10000+2i, B_i's 10001+2i; A sends to the relay port in the 200's SDP,
             B to the one in the INVITE's SDP, so every packet crosses two relay channels. The legs
             file, the rtpload command, its parsing and the pass criteria are mediabench's. After
             the step every call is ended with BYE from A_i.

The two servers alternate step by step (anchor N, homeline N, ...), so both see the same machine.
Each server has its own search for the max calls (mediabench's: grow by --factor until a step
fails, bisect to --resolution, confirm). Extra figures per homeline step: CPU per thread
(/proc/PID/task, relay-* workers vs the rest) over the measured window, RSS before/after the
calls are set up, and the relay counters of `homeline status --json`. rtpengine's RSS is read the
same way.

Output: <workdir>/results.json (both servers, every step), <workdir>/summary.md (tables).
"""
import argparse
import datetime as dt
import hashlib
import json
import os
import random
import re
import resource
import signal
import socket
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
BENCH = os.environ.get("BENCH_DIR") or os.path.join(HERE, "..", "..", "shared", "bench")
sys.path.insert(0, os.path.join(BENCH, "media"))
sys.path.insert(0, os.path.join(BENCH, "lib"))
import mediabench  # noqa: E402
import ngclient  # noqa: E402
import procstat  # noqa: E402

log = mediabench.log


# ---------------------------------------------------------------------------------------------
# A minimal SIP UA over raw UDP sockets (one socket per station).

class SipError(Exception):
    pass


def _hdr_name(n):
    n = n.strip().lower()
    return {"v": "via", "f": "from", "t": "to", "i": "call-id", "m": "contact", "l": "content-length",
            "c": "content-type", "k": "supported"}.get(n, n)


class Msg:
    def __init__(self, data):
        text = data.decode("utf-8", "replace")
        head, _, body = text.partition("\r\n\r\n")
        lines = head.split("\r\n")
        self.first = lines[0]
        self.headers = []  # (lower name, value) in order
        for line in lines[1:]:
            if line[:1] in (" ", "\t") and self.headers:
                n, v = self.headers[-1]
                self.headers[-1] = (n, v + " " + line.strip())
                continue
            n, _, v = line.partition(":")
            self.headers.append((_hdr_name(n), v.strip()))
        self.body = body
        parts = self.first.split(" ", 2)
        if parts[0] == "SIP/2.0":
            self.status, self.method = int(parts[1]), None
        else:
            self.status, self.method = None, parts[0]
        self.cseq_method = (self.get("cseq") or "0 X").split()[-1]

    def get(self, name):
        for n, v in self.headers:
            if n == name:
                return v
        return None

    def all(self, name):
        out = []
        for n, v in self.headers:
            if n == name:
                out.extend(x.strip() for x in split_commas(v))
        return out


def split_commas(v):
    out, cur, q, a = [], "", False, 0
    for ch in v:
        if ch == '"':
            q = not q
        elif ch == "<" and not q:
            a += 1
        elif ch == ">" and not q:
            a -= 1
        if ch == "," and not q and a == 0:
            out.append(cur)
            cur = ""
        else:
            cur += ch
    if cur.strip():
        out.append(cur)
    return out


def tag_of(v):
    m = re.search(r";\s*tag=([^;>\s]+)", v or "")
    return m.group(1) if m else None


def uri_of(v):
    m = re.search(r"<([^>]+)>", v or "")
    return m.group(1) if m else (v or "").split(";")[0].strip()


def parse_challenge(v):
    v = v.strip()
    if v.lower().startswith("digest"):
        v = v[6:]
    return {k.lower(): (q if q else t) for k, q, t in
            re.findall(r'(\w+)\s*=\s*(?:"([^"]*)"|([^,\s]+))', v)}


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


def digest(ch, method, uri, user, password, nc=1):
    realm, nonce = ch.get("realm", ""), ch.get("nonce", "")
    alg = ch.get("algorithm", "MD5")
    if alg.upper() not in ("MD5",):
        raise SipError(f"digest algorithm {alg} not supported by this client")
    ha1 = md5(f"{user}:{realm}:{password}")
    ha2 = md5(f"{method}:{uri}")
    parts = [f'username="{user}"', f'realm="{realm}"', f'nonce="{nonce}"', f'uri="{uri}"',
             f"algorithm={alg}"]
    qops = [q.strip() for q in ch.get("qop", "").split(",") if q.strip()]
    if "auth" in qops:
        cnonce = "%016x" % random.getrandbits(64)
        ncs = "%08x" % nc
        resp = md5(f"{ha1}:{nonce}:{ncs}:{cnonce}:auth:{ha2}")
        parts += [f'response="{resp}"', "qop=auth", f"nc={ncs}", f'cnonce="{cnonce}"']
    else:
        parts.append(f'response="{md5(f"{ha1}:{nonce}:{ha2}")}"')
    if "opaque" in ch:
        parts.append(f'opaque="{ch["opaque"]}"')
    return "Digest " + ", ".join(parts)


def rnd(n=10):
    return "%0*x" % (n, random.getrandbits(4 * n))


class Station:
    def __init__(self, number, password, ip, port):
        self.number, self.password, self.ip, self.port = number, password, ip, port
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 18)
        try:
            self.sock.bind((ip, port))
        except OSError:
            # held by another program on this shared box: any free port will do, homeline
            # sends to the address a station registered from
            self.sock.bind((ip, 0))
            self.port = self.sock.getsockname()[1]
        self.cseq = 0

    def close(self):
        self.sock.close()


class SipDriver:
    """Registers stations and places/answers/ends calls through a SIP server (homeline)."""

    def __init__(self, server, realm, local_ip, port_base, passwords, timeout=4.0):
        self.server, self.realm, self.local_ip = server, realm, local_ip
        self.port_base, self.passwords, self.timeout = port_base, passwords, timeout
        self.stations = {}
        self.stats = {"invites": 0, "answered": 0, "failed": 0, "byes": 0, "bye_failed": 0,
                      "unexpected": 0}

    def station(self, k):
        """k-th station: numbers are keys of self.passwords in order."""
        if k not in self.stations:
            number = self.numbers[k]
            self.stations[k] = Station(number, self.passwords[number], self.local_ip, self.port_base + k)
        return self.stations[k]

    @property
    def numbers(self):
        if not hasattr(self, "_numbers"):
            self._numbers = list(self.passwords)
        return self._numbers

    def close(self):
        for s in self.stations.values():
            s.close()
        self.stations = {}

    # -- transport
    def send(self, st, text, dest=None):
        st.sock.sendto(text.encode(), dest or self.server)

    def recv(self, st, want, timeout=None):
        """Reads st's socket until want(msg) is true; answers stray requests it must answer."""
        end = time.monotonic() + (timeout or self.timeout)
        while True:
            left = end - time.monotonic()
            if left <= 0:
                raise SipError(f"timeout at station {st.number}")
            st.sock.settimeout(left)
            try:
                data, src = st.sock.recvfrom(65535)
            except socket.timeout:
                raise SipError(f"timeout at station {st.number}")
            m = Msg(data)
            m.src = src
            if want(m):
                return m
            if m.method in ("OPTIONS", "NOTIFY", "UPDATE") and m.method != "ACK":
                self.send(st, self.response(m, 200, "OK", to_tag=None), src)
                self.stats["unexpected"] += 1

    def via(self, st, branch=None):
        return f"Via: SIP/2.0/UDP {st.ip}:{st.port};branch=z9hG4bK{branch or rnd(16)};rport"

    def response(self, req, code, reason, to_tag=None, extra="", body=""):
        lines = [f"SIP/2.0 {code} {reason}"]
        for n, v in req.headers:
            if n in ("via", "record-route"):
                lines.append(f"{n.title()}: {v}")
        lines.append(f"From: {req.get('from')}")
        to = req.get("to")
        if to_tag and not tag_of(to):
            to += f";tag={to_tag}"
        lines += [f"To: {to}", f"Call-ID: {req.get('call-id')}", f"CSeq: {req.get('cseq')}"]
        if extra:
            lines.append(extra.rstrip("\r\n"))
        if body:
            lines += ["Content-Type: application/sdp", f"Content-Length: {len(body)}", "", body]
        else:
            lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines)

    # -- REGISTER
    def register(self, ks, expires=3600, window=100):
        """REGISTERs stations ks (digest), `window` at a time in flight. Returns failures."""
        failed = 0
        for i in range(0, len(ks), window):
            batch = [self.station(k) for k in ks[i:i + window]]
            state = {}
            for st in batch:
                st.cseq += 1
                cid = rnd(20)
                state[st.number] = cid
                self.send(st, self._register(st, cid, st.cseq, expires))
            for st in batch:
                try:
                    r = self.recv(st, lambda m: m.status is not None and m.cseq_method == "REGISTER"
                                  and m.status >= 200)
                    if r.status == 401:
                        ch = parse_challenge(r.get("www-authenticate") or "")
                        st.cseq += 1
                        auth = digest(ch, "REGISTER", f"sip:{self.realm}", st.number, st.password)
                        self.send(st, self._register(st, state[st.number], st.cseq, expires, auth))
                except SipError:
                    failed += 1
                    state[st.number] = None
            for st in batch:
                if state[st.number] is None:
                    continue
                try:
                    r = self.recv(st, lambda m: m.status is not None and m.cseq_method == "REGISTER"
                                  and m.status >= 200 and m.status != 401)
                    if r.status != 200:
                        failed += 1
                        log(f"REGISTER {st.number}: {r.first}")
                except SipError:
                    failed += 1
        return failed

    def _register(self, st, cid, cseq, expires, auth=None):
        lines = [f"REGISTER sip:{self.realm} SIP/2.0", self.via(st), "Max-Forwards: 70",
                 f"From: <sip:{st.number}@{self.realm}>;tag={rnd(8)}", f"To: <sip:{st.number}@{self.realm}>",
                 f"Call-ID: {cid}", f"CSeq: {cseq} REGISTER",
                 f"Contact: <sip:{st.number}@{st.ip}:{st.port}>", f"Expires: {expires}",
                 "User-Agent: homeline-media-bench"]
        if auth:
            lines.append(f"Authorization: {auth}")
        lines += ["Content-Length: 0", "", ""]
        return "\r\n".join(lines)

    # -- calls
    def _invite(self, a, b_number, cid, ftag, cseq, branch, sdp, auth=None):
        ruri = f"sip:{b_number}@{self.realm}"
        lines = [f"INVITE {ruri} SIP/2.0", self.via(a, branch), "Max-Forwards: 70",
                 f"From: <sip:{a.number}@{self.realm}>;tag={ftag}", f"To: <sip:{b_number}@{self.realm}>",
                 f"Call-ID: {cid}", f"CSeq: {cseq} INVITE", f"Contact: <sip:{a.number}@{a.ip}:{a.port}>",
                 "Allow: INVITE, ACK, BYE, CANCEL, OPTIONS, UPDATE", "User-Agent: homeline-media-bench"]
        if auth:
            lines.append(f"Proxy-Authorization: {auth}")
        lines += ["Content-Type: application/sdp", f"Content-Length: {len(sdp)}", "", sdp]
        return "\r\n".join(lines)

    def _in_dialog(self, a, d, method, cseq, branch=None):
        lines = [f"{method} {d['target']} SIP/2.0", self.via(a, branch), "Max-Forwards: 70"]
        lines += [f"Route: {r}" for r in d["route"]]
        lines += [f"From: <sip:{a.number}@{self.realm}>;tag={d['ftag']}", f"To: {d['to']}",
                  f"Call-ID: {d['cid']}", f"CSeq: {cseq} {method}", "Content-Length: 0", "", ""]
        return "\r\n".join(lines)

    def call(self, i, a_k, b_k, a_rtp, b_rtp):
        """One call A->B; returns (dialog, a_dst, b_dst) with the relay addresses each side got."""
        a, b = self.station(a_k), self.station(b_k)
        cid, ftag = f"mb-{rnd(16)}", rnd(8)
        sdp_a = ngclient.make_sdp(self.local_ip, a_rtp, i + 1)
        branch = rnd(16)
        self.stats["invites"] += 1
        self.send(a, self._invite(a, b.number, cid, ftag, 1, branch, sdp_a))
        is_final = (lambda m: m.status is not None and m.status >= 200 and m.cseq_method == "INVITE"
                    and m.get("call-id") == cid)
        r = self.recv(a, is_final)
        cseq = 1
        if r.status in (401, 407):
            # ACK the challenge (same branch, To with the 407's tag)
            self.send(a, "\r\n".join([f"ACK sip:{b.number}@{self.realm} SIP/2.0", self.via(a, branch),
                                      "Max-Forwards: 70", f"From: <sip:{a.number}@{self.realm}>;tag={ftag}",
                                      f"To: {r.get('to')}", f"Call-ID: {cid}", "CSeq: 1 ACK",
                                      "Content-Length: 0", "", ""]))
            hname = "proxy-authenticate" if r.status == 407 else "www-authenticate"
            ch = parse_challenge(r.get(hname) or "")
            auth = digest(ch, "INVITE", f"sip:{b.number}@{self.realm}", a.number, a.password)
            cseq = 2
            self.send(a, self._invite(a, b.number, cid, ftag, 2, rnd(16), sdp_a, auth))
        elif r.status != 200:
            raise SipError(f"INVITE {a.number}->{b.number}: {r.first}")
        # B: the INVITE homeline sends it
        inv = self.recv(b, lambda m: m.method == "INVITE")
        b_dst = ngclient.sdp_media_addr(inv.body)
        btag = rnd(8)
        sdp_b = ngclient.make_sdp(self.local_ip, b_rtp, i + 100001)
        self.send(b, self.response(inv, 200, "OK", to_tag=btag,
                                   extra=f"Contact: <sip:{b.number}@{b.ip}:{b.port}>", body=sdp_b), inv.src)
        if r.status in (401, 407):
            r = self.recv(a, is_final)
        if r.status != 200:
            raise SipError(f"INVITE {a.number}->{b.number}: {r.first}")
        a_dst = ngclient.sdp_media_addr(r.body)
        d = {"cid": cid, "ftag": ftag, "to": r.get("to"), "target": uri_of(r.get("contact")),
             "route": list(reversed(r.all("record-route"))), "cseq": cseq, "a": a_k, "b": b_k}
        self.send(a, self._in_dialog(a, d, "ACK", cseq))
        self.recv(b, lambda m: m.method == "ACK")
        self.stats["answered"] += 1
        return d, a_dst, b_dst

    def bye(self, d):
        a, b = self.station(d["a"]), self.station(d["b"])
        d["cseq"] += 1
        self.send(a, self._in_dialog(a, d, "BYE", d["cseq"]))
        bye = self.recv(b, lambda m: m.method == "BYE")
        self.send(b, self.response(bye, 200, "OK"), bye.src)
        r = self.recv(a, lambda m: m.status is not None and m.cseq_method == "BYE")
        self.stats["byes"] += 1
        if r.status != 200:
            raise SipError(f"BYE: {r.first}")


# ---------------------------------------------------------------------------------------------
# homeline as a "server" for mediabench.step()

def read_rss_kb(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def task_ticks(pid):
    """{thread name: utime+stime ticks} over /proc/PID/task (threads of one name summed)."""
    out = {}
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return out
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/stat") as f:
                s = f.read()
        except OSError:
            continue
        name = s[s.index("(") + 1:s.rindex(")")]
        rest = s[s.rindex(")") + 2:].split()
        out[f"{name}/{tid}"] = int(rest[11]) + int(rest[12])
    return out


class Homeline:
    """What mediabench.step() takes as `ng` for homeline: SIP calls instead of ng offers."""

    def __init__(self, args, driver, pid):
        self.args, self.sip, self.pid = args, driver, pid
        self.registered = 0
        self.last = {}

    def ensure_registered(self, n):
        need = 2 * n
        # refresh everything every step: external-zone UDP registrations are short (120 s)
        t0 = time.time()
        failed = self.sip.register(list(range(need)), expires=3600)
        if failed:
            raise SystemExit(f"{failed} of {need} REGISTERs failed")
        self.registered = max(self.registered, need)
        log(f"homeline: {need} stations registered in {time.time() - t0:.1f} s")

    def setup(self, n, args, tag):
        self.ensure_registered(n)
        rss0 = read_rss_kb(self.pid)
        t0 = time.time()
        legs, failures = [], 0
        for i in range(n):
            a_port = args.gen_port_base + 2 * i
            b_port = a_port + 1
            try:
                d, a_dst, b_dst = self.sip.call(i, 2 * i, 2 * i + 1, a_port, b_port)
            except (SipError, ngclient.NgError) as e:
                failures += 1
                self.sip.stats["failed"] += 1
                log(f"call {i} failed: {e}")
                if failures > max(3, n // 100):
                    break
                continue
            legs.append((d, None, a_port, a_dst, b_port, b_dst))
        time.sleep(0.5)
        rss1 = read_rss_kb(self.pid)
        self.last = {"rss_before_kb": rss0, "rss_calls_kb": rss1, "setup_failed": failures,
                     "setup_s": round(time.time() - t0, 2),
                     "rss_per_call_bytes": (round((rss1 - rss0) * 1024 / len(legs)) if legs and rss0 and rss1
                                            else None)}
        log(f"homeline: {len(legs)} calls up in {time.time() - t0:.1f} s ({failures} failed), "
            f"RSS {rss0} -> {rss1} kB")
        if failures:
            # keep the step honest: a call that did not come up is a call without audio
            legs_missing = n - len(legs)
            self.last["calls_missing"] = legs_missing
        return legs

    def delete(self, legs):
        t0 = time.time()
        bad = 0
        for d, *_ in legs:
            try:
                self.sip.bye(d)
            except SipError:
                bad += 1
                self.sip.stats["bye_failed"] += 1
        self.last["bye_failed"] = bad
        time.sleep(0.5)
        self.last["rss_after_bye_kb"] = read_rss_kb(self.pid)
        log(f"homeline: {len(legs)} BYEs in {time.time() - t0:.1f} s ({bad} failed)")


class RtpengineRss:
    """Wraps the ng client for RSS before/after the offers (memory per call of the anchor)."""

    def __init__(self, ng, pid):
        self.ng, self.pid, self.last = ng, pid, {}


_orig_setup = mediabench.setup_calls
_orig_delete = mediabench.delete_calls


def _setup(ng, n, args, tag):
    if isinstance(ng, Homeline):
        return ng.setup(n, args, tag)
    if isinstance(ng, RtpengineRss):
        rss0 = read_rss_kb(ng.pid)
        legs = _orig_setup(ng.ng, n, args, tag)
        time.sleep(0.5)
        rss1 = read_rss_kb(ng.pid)
        ng.last = {"rss_before_kb": rss0, "rss_calls_kb": rss1,
                   "rss_per_call_bytes": round((rss1 - rss0) * 1024 / n) if rss0 and rss1 and n else None}
        return legs
    return _orig_setup(ng, n, args, tag)


def _delete(ng, legs):
    if isinstance(ng, Homeline):
        return ng.delete(legs)
    if isinstance(ng, RtpengineRss):
        return _orig_delete(ng.ng, legs)
    return _orig_delete(ng, legs)


mediabench.setup_calls = _setup
mediabench.delete_calls = _delete

# per-thread CPU of homeline over the same window mediabench measures (warm-up+0.5 .. end-0.5)
_orig_run_gen = mediabench.run_gen
THREAD_WATCH = {"pid": None, "result": None}


def udp_drops():
    """Kernel drops (receive buffer full) of UDP sockets on 127.0.0.1, summed by port range:
    gen = rtpload's ports (10000-19999), relay = 40000-59999, sip = the stations (20000-29999)."""
    out = {"gen": 0, "relay": 0, "sip": 0, "other": 0}
    try:
        with open("/proc/net/udp") as f:
            next(f)
            for line in f:
                p = line.split()
                port = int(p[1].split(":")[1], 16)
                drops = int(p[-1])
                k = ("gen" if 10000 <= port < 20000 else "sip" if 20000 <= port < 30000
                     else "relay" if 40000 <= port < 60000 else "other")
                out[k] += drops
    except (OSError, ValueError, IndexError):
        pass
    return out


def udp_snmp():
    """System-wide UDP counters (/proc/net/snmp) and softnet backlog drops."""
    out = {}
    try:
        with open("/proc/net/snmp") as f:
            rows = [line.split() for line in f if line.startswith("Udp:")]
        out = {k: int(v) for k, v in zip(rows[0][1:], rows[1][1:])}
        with open("/proc/net/softnet_stat") as f:
            out["softnet_dropped"] = sum(int(line.split()[1], 16) for line in f)
    except (OSError, IndexError, ValueError):
        pass
    return out


def _run_gen(args, legs_path, server_pids, stepdir, duration, warmup):
    pid = THREAD_WATCH["pid"]
    snmp0 = udp_snmp()
    THREAD_WATCH["result"] = None
    res = {}

    def watch():
        time.sleep(warmup + 0.5)
        t0, a, d0 = time.monotonic(), task_ticks(pid) if pid else {}, udp_drops()
        time.sleep(max(1.0, duration - 1.0))
        t1, b, d1 = time.monotonic(), task_ticks(pid) if pid else {}, udp_drops()
        res["udp_drops_window"] = {k: d1[k] - d0.get(k, 0) for k in d1}
        res["udp_drops_end"] = d1
        if not pid:
            return
        dtm = t1 - t0
        per = {k: round(100.0 * (b[k] - a.get(k, 0)) / procstat.HZ / dtm, 1) for k in b}
        res["threads"] = {k: v for k, v in sorted(per.items(), key=lambda x: -x[1]) if v > 0}
        res["relay_workers_pct"] = round(sum(v for k, v in per.items() if k.startswith("relay-")), 1)
        res["other_threads_pct"] = round(sum(v for k, v in per.items() if not k.startswith("relay-")), 1)
    th = threading.Thread(target=watch, daemon=True)
    th.start()
    out = _orig_run_gen(args, legs_path, server_pids, stepdir, duration, warmup)
    th.join(5)
    snmp1 = udp_snmp()
    res["udp_snmp_step"] = {k: snmp1[k] - snmp0.get(k, 0) for k in snmp1
                            if k in ("InDatagrams", "OutDatagrams", "RcvbufErrors", "SndbufErrors",
                                     "InErrors", "NoPorts", "softnet_dropped")}
    THREAD_WATCH["result"] = res
    return out


mediabench.run_gen = _run_gen


def autogroup(pid):
    try:
        with open(f"/proc/{pid}/autogroup") as f:
            return f.read().strip()
    except OSError:
        return None


def pin(pid, cpu):
    """Puts every thread of `pid` on CPU `cpu` (threads started later inherit it)."""
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            os.sched_setaffinity(int(tid), {cpu})
        except OSError:
            pass  # a thread that just ended


def homeline_status(hl_bin, data, config):
    try:
        p = subprocess.run([hl_bin, "--data", data, "--config", config, "status", "--json"],
                           capture_output=True, text=True, timeout=10)
        return json.loads(p.stdout)
    except Exception as e:  # noqa: BLE001
        return {"error": str(e)}


def relay_counters(st):
    """The relay part of homeline's status JSON (whatever its exact shape)."""
    if not isinstance(st, dict):
        return None
    r = st.get("relay")
    if isinstance(r, dict):
        return {k: v for k, v in r.items() if not isinstance(v, (list, dict))} | \
            {k: v for k, v in r.items() if isinstance(v, list) and k in ("workers",)}
    return None


# ---------------------------------------------------------------------------------------------

def us_per_pkt(cpu_pct, pps):
    if not cpu_pct or not pps:
        return None
    return round(cpu_pct / 100.0 * 1e6 / pps, 2)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--servers", default="rtpengine,homeline")
    ap.add_argument("--calls", default=None, help="fixed list of N (both servers) instead of a search")
    ap.add_argument("--also", default="300",
                    help="N measured for both servers besides the search (same-load comparison)")
    ap.add_argument("--start-calls", type=int, default=300)
    ap.add_argument("--factor", type=float, default=1.4)
    ap.add_argument("--resolution", type=float, default=0.08)
    ap.add_argument("--max-steps", type=int, default=9)
    ap.add_argument("--max-calls", type=int, default=2400)
    ap.add_argument("--duration", type=float, default=20)
    ap.add_argument("--warmup", type=float, default=3)
    ap.add_argument("--nice", type=int, default=-20)
    ap.add_argument("--threads", type=int, default=2, help="rtpengine --num-threads")
    ap.add_argument("--ng", default="127.0.0.1:2223")
    ap.add_argument("--hl-sip", default="127.0.0.1:25662", help="homeline's external listener")
    ap.add_argument("--hl-pid", type=int, required=False)
    ap.add_argument("--hl-bin", default=None)
    ap.add_argument("--hl-data", default=None)
    ap.add_argument("--hl-config", default=None)
    ap.add_argument("--realm", default="bench.local")
    ap.add_argument("--stations", default=None, help="CSV number,password,... of the stations")
    ap.add_argument("--sip-port-base", type=int, default=20000)
    ap.add_argument("--no-direct", action="store_true")
    ap.add_argument("--memory-calls", type=int, default=1000,
                    help="calls held (no media) for the memory-per-call reading; 0 = skip")
    ap.add_argument("--memory-settle", type=float, default=40)
    ap.add_argument("--workdir", required=True)
    ap.add_argument("--rtpload", default="/tmp/bench-anchors/bin/rtpload")
    # mediabench's criteria (its defaults)
    ap.add_argument("--max-loss", type=float, default=0.001)
    ap.add_argument("--max-busy", type=float, default=95.0)
    ap.add_argument("--max-p99-us", type=float, default=10000)
    ap.add_argument("--max-late-ticks", type=float, default=0.05)
    ap.add_argument("--quiet-threshold", type=float, default=10.0)
    ap.add_argument("--quiet-max-wait", type=float, default=60)
    ap.add_argument("--bg-max", type=float, default=25.0)
    ap.add_argument("--bg-retries", type=int, default=1)
    ap.add_argument("--cooldown", type=float, default=2.0)
    ap.add_argument("--pin", action="store_true",
                    help="relay server (all its threads) on CPU 1, this driver and so rtpload on "
                         "CPU 0, for both servers alike: on 2 cores neither then preempts the other")
    args = ap.parse_args()
    # fields mediabench.step()/Rtpengine read
    args.local_ip, args.gen_port_base, args.size = "127.0.0.1", 10000, 172
    args.rtp_port_min, args.rtp_port_max = 40000, 59999
    mediabench.NICE = ["nice", "-n", str(args.nice)] if args.nice else []
    servers = [s for s in args.servers.split(",") if s]

    def on_signal(signum, frame):
        raise KeyboardInterrupt
    signal.signal(signal.SIGTERM, on_signal)
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))

    os.makedirs(args.workdir, exist_ok=True)
    mediabench.build_rtpload(args.rtpload)
    results = {s: [] for s in servers}
    memory = {}
    best = {}
    if args.pin:
        # rtpload is this driver's child: it inherits CPU 0.
        pin(os.getpid(), 0)
    sched = {"driver (rtpload's parent)": autogroup(os.getpid()),
             "pinning": "servers on CPU 1, driver and rtpload on CPU 0" if args.pin else "none"}
    rtpe = None
    hl = None
    ctx = {}
    try:
        if "rtpengine" in servers:
            os.makedirs(os.path.join(args.workdir, "rtpengine"), exist_ok=True)
            rtpe = mediabench.Rtpengine(args, os.path.join(args.workdir, "rtpengine"))
            rpid = rtpe.start()
            # mediabench starts rtpengine in a new session (start_new_session=True), i.e. in an
            # autogroup of its own at nice 0 when CONFIG_SCHED_AUTOGROUP is on: give that
            # autogroup the same nice level as the bench's own (homeline, rtpload), or rtpengine
            # alone would compete with the machine's other jobs at nice 0.
            if args.nice:
                try:
                    with open(f"/proc/{rpid}/autogroup", "w") as f:
                        f.write(str(args.nice))
                except OSError as e:
                    log(f"note: could not set rtpengine's autogroup nice: {e}")
            if args.pin:
                pin(rpid, 1)
            ng = ngclient.NgClient(args.ng)
            ctx["rtpengine"] = (RtpengineRss(ng, rpid), [rpid], None)
            sched["rtpengine"] = autogroup(rpid)
        if "homeline" in servers:
            passwords = {}
            with open(args.stations) as f:
                for line in f.read().splitlines()[1:]:
                    p = line.split(",")
                    passwords[p[0]] = p[1]
            host, port = args.hl_sip.rsplit(":", 1)
            drv = SipDriver((host, int(port)), args.realm, args.local_ip, args.sip_port_base, passwords)
            if args.pin:
                pin(args.hl_pid, 1)
            hl = Homeline(args, drv, args.hl_pid)
            ctx["homeline"] = (hl, [args.hl_pid], args.hl_pid)
            sched["homeline"] = autogroup(args.hl_pid)
            os.makedirs(os.path.join(args.workdir, "homeline"), exist_ok=True)
        idx = {s: 0 for s in servers}

        def memory_phase(server, n, settle):
            """RSS with 0 and with n calls up (no media), each read after `settle` s, so that the
            RFC 3261 transaction timers of the set-up (32 s) have run out; first thing on a fresh
            server, so allocator pools are not pre-grown by earlier steps."""
            obj, pids, _ = ctx[server]
            pid = pids[0]
            if server == "homeline":
                obj.ensure_registered(n)
            time.sleep(settle)
            rss0 = read_rss_kb(pid)
            t0 = time.time()
            if server == "homeline":
                legs = obj.setup(n, args, "mem")
            else:
                legs = _orig_setup(obj.ng, n, args, f"mem-{int(time.time())}")
            t_up = time.time() - t0
            rss_up = read_rss_kb(pid)
            time.sleep(settle)
            rss1 = read_rss_kb(pid)
            if server == "homeline":
                obj.delete(legs)
            else:
                _orig_delete(obj.ng, legs)
            m = {"calls": len(legs), "settle_s": settle, "rss_idle_kb": rss0, "rss_just_up_kb": rss_up,
                 "rss_settled_kb": rss1, "setup_s": round(t_up, 2),
                 "bytes_per_call_settled": round((rss1 - rss0) * 1024 / max(1, len(legs))),
                 "bytes_per_call_just_up": round((rss_up - rss0) * 1024 / max(1, len(legs)))}
            log(f"memory {server}: {m}")
            memory[server] = m
            time.sleep(args.cooldown)

        if args.memory_calls:
            for s in servers:
                memory_phase(s, args.memory_calls, args.memory_settle)

        def do(server, n, direct=False):
            obj, pids, tpid = ctx[server]
            if 2 * n > len(getattr(obj, "sip", None).numbers if server == "homeline" else [0] * 2 * n):
                raise SystemExit(f"not enough stations for {n} calls")
            for attempt in range(args.bg_retries + 1):
                procstat.wait_quiet(lambda: pids, threshold=args.quiet_threshold,
                                    max_wait=args.quiet_max_wait, log=log)
                idx[server] += 1
                THREAD_WATCH["pid"] = tpid if not direct else None
                log(f"--- {server} step {idx[server]}: {n} calls{' (direct)' if direct else ''}")
                st0 = homeline_status(args.hl_bin, args.hl_data, args.hl_config) if server == "homeline" else None
                r = mediabench.step(args, obj, n, pids, os.path.join(args.workdir, server), idx[server],
                                    direct=direct)
                r["server"] = server
                r["us_per_pkt"] = us_per_pkt(r.get("cpu_relay_pct"), r.get("relayed_pps"))
                if THREAD_WATCH["result"]:
                    r["udp_drops"] = THREAD_WATCH["result"].get("udp_drops_window")
                    r["udp_snmp_step"] = THREAD_WATCH["result"].get("udp_snmp_step")
                if not direct:
                    r.update(getattr(obj, "last", {}) or {})
                    if THREAD_WATCH["result"] and "threads" in THREAD_WATCH["result"]:
                        r["thread_cpu"] = THREAD_WATCH["result"]
                        r["us_per_pkt_workers"] = us_per_pkt(THREAD_WATCH["result"].get("relay_workers_pct"),
                                                             r.get("relayed_pps"))
                if server == "homeline":
                    r["status_before"] = relay_counters(st0)
                    r["status_after"] = relay_counters(homeline_status(args.hl_bin, args.hl_data, args.hl_config))
                    if not direct and r.get("calls_missing"):
                        r["pass"] = False
                        r["fail_reason"] = f"{r['calls_missing']} calls not set up"
                bg = r.get("cpu_background_pct")
                if bg is None or bg <= args.bg_max:
                    break
                r["contaminated"] = True
                log(f"step contaminated by background load ({bg}% of a core); "
                    f"{'retrying' if attempt < args.bg_retries else 'keeping it (flagged)'}")
            log(f"    {server} N={n}: {'PASS' if r['pass'] else 'FAIL'} relay CPU {r.get('cpu_relay_pct')}% "
                f"= {r['us_per_pkt']} us/pkt; gen {r.get('cpu_gen_pct')}%"
                + (f"; workers {r['thread_cpu'].get('relay_workers_pct')}%" if r.get("thread_cpu") else "")
                + (f"; RSS/call {r.get('rss_per_call_bytes')} B" if r.get("rss_per_call_bytes") else "")
                + f"; kernel UDP drops in window {r.get('udp_drops')}; whole step {r.get('udp_snmp_step')}")
            results[server].append(r)
            with open(os.path.join(args.workdir, "partial.json"), "w") as f:
                json.dump(results, f, indent=1, default=str)
            time.sleep(args.cooldown)
            return r

        if args.calls:
            for n in [int(x) for x in args.calls.split(",")]:
                for s in servers:
                    do(s, n)
            for s in servers:
                p = [r["calls"] for r in results[s] if r["pass"]]
                best[s] = max(p) if p else None
        else:
            # the same-load comparison points first, then one search per server, interleaved
            for n in [int(x) for x in args.also.split(",") if x]:
                for s in servers:
                    do(s, n)
            state = {s: {"lo": None, "hi": None, "n": args.start_calls, "tried": set(), "done": False,
                         "steps": 0} for s in servers}
            for s in servers:  # the comparison points count for the search
                for r in results[s]:
                    st = state[s]
                    st["tried"].add(r["calls"])
                    if r["pass"]:
                        st["lo"] = max(st["lo"] or 0, r["calls"])
                    else:
                        st["hi"] = min(st["hi"] or 10**9, r["calls"])
                    nxt(st, args)
            while not all(state[s]["done"] for s in servers):
                for s in servers:
                    st = state[s]
                    if st["done"]:
                        continue
                    n = st["n"]
                    if n in st["tried"] or st["steps"] >= args.max_steps or n > args.max_calls:
                        st["done"] = True
                        continue
                    st["tried"].add(n)
                    st["steps"] += 1
                    r = do(s, n)
                    if r["pass"]:
                        st["lo"] = n if st["lo"] is None else max(st["lo"], n)
                    else:
                        st["hi"] = n if st["hi"] is None else min(st["hi"], n)
                    nxt(st, args)
            for s in servers:  # confirm, as mediabench does
                cand = state[s]["lo"]
                best[s] = None
                for _ in range(3):
                    if cand is None:
                        break
                    r = do(s, cand)
                    r["confirm"] = True
                    if r["pass"]:
                        best[s] = cand
                        break
                    cand = mediabench.nice(cand * 0.93)
        if not args.no_direct and any(best.values()):
            for s in servers:
                if best.get(s):
                    r = do(s, best[s], direct=True)
                    r["server"] = f"direct@{s}"
    finally:
        if rtpe:
            rtpe.stop()
        if hl:
            hl.sip.close()

    summary = {"time": dt.datetime.now().isoformat(timespec="seconds"), "argv": sys.argv,
               "rtpengine_cmd": getattr(rtpe, "cmdline", None), "max_calls": best, "steps": results, "memory": memory, "autogroups": sched,
               "sip_stats": hl.sip.stats if hl else None}
    for s in servers:
        at = [r for r in results[s] if r["calls"] == best.get(s) and r["pass"] and not r["direct"]]
        dr = [r for r in results[s] if r["direct"]]
        if at and dr:
            summary[f"{s}_added_latency_p50_us"] = round(at[-1]["lat_p50_us"] - dr[-1]["lat_p50_us"], 1)
            summary[f"{s}_added_latency_p99_us"] = round(at[-1]["lat_p99_us"] - dr[-1]["lat_p99_us"], 1)
    with open(os.path.join(args.workdir, "results.json"), "w") as f:
        json.dump(summary, f, indent=1, default=str)
    report(summary, servers, args.workdir)


def nxt(st, args):
    lo, hi = st["lo"], st["hi"]
    if hi is None:
        st["n"] = mediabench.nice(min(args.max_calls, (lo or args.start_calls) * args.factor)) if lo else st["n"]
    elif lo is None:
        st["n"] = mediabench.nice(hi / args.factor)
    else:
        if (hi - lo) / lo <= args.resolution:
            st["done"] = True
        st["n"] = mediabench.nice((lo + hi) / 2)


def report(summary, servers, workdir):
    lines = []

    def emit(s=""):
        print(s)
        lines.append(s)
    emit(f"autogroups: {summary.get('autogroups')}")
    emit("| server | calls | mode | relayed pps | loss | lat p50/p99/max µs | relay CPU % | µs/pkt | "
         "relay threads % | gen CPU % | bg % | busy % | UDP drops gen/relay | RSS/call B | pass |")
    emit("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    rows = []
    for s in servers:
        rows += summary["steps"][s]
    for r in rows:
        why = ""
        if not r["pass"] and not r["direct"]:
            why = r.get("fail_reason") or ", ".join(
                x for x, c in (("loss", r["loss"] > 0.001), ("p99", r.get("queueing")),
                               ("gen late", not r.get("gen_ok")), ("saturated", r.get("saturated"))) if c)
        tc = r.get("thread_cpu") or {}
        emit(f"| {r['server']} | {r['calls']}{' (confirm)' if r.get('confirm') else ''} | "
             f"{'direct' if r['direct'] else 'relay'} | {r['relayed_pps']} | {r['loss']:.5f} | "
             f"{r['lat_p50_us']}/{r['lat_p99_us']}/{r['lat_max_us']} | {r.get('cpu_relay_pct')} | "
             f"{r.get('us_per_pkt') if not r['direct'] else '–'} | {tc.get('relay_workers_pct', '–')} | "
             f"{r.get('cpu_gen_pct')} | {r.get('cpu_background_pct')} | {r.get('cpu_system_busy_pct')} | "
             f"{(r.get('udp_drops') or {}).get('gen', '–')}/{(r.get('udp_drops') or {}).get('relay', '–')} | "
             f"{r.get('rss_per_call_bytes', '–')} | "
             f"{'floor' if r['direct'] else ('yes' if r['pass'] else 'NO (' + why + ')')}"
             f"{' (bg!)' if r.get('contaminated') else ''} |")
    emit()
    for s in servers:
        emit(f"RESULT media [{s}] max concurrent calls = {summary['max_calls'].get(s)}"
             + (f"; added latency at max p50 {summary.get(s + '_added_latency_p50_us')} µs, "
                f"p99 {summary.get(s + '_added_latency_p99_us')} µs" if s + "_added_latency_p50_us" in summary else ""))
    for s, m in (summary.get("memory") or {}).items():
        emit(f"MEMORY [{s}] {m['calls']} calls held without media: RSS {m['rss_idle_kb']} -> {m['rss_settled_kb']} kB "
             f"after {m['settle_s']} s = {m['bytes_per_call_settled']} B per call "
             f"(just after set-up: {m['bytes_per_call_just_up']} B per call)")
    with open(os.path.join(workdir, "summary.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
