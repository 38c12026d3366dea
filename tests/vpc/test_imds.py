"""The instance metadata service of nitro-card-vpc (169.254.169.254:80), driven byte by
byte: the test driver is the guest, and this file plays the guest's TCP (SYN, ACK, data,
FIN written out as frames), so every IP header the card sends back is seen as the guest
sees it (TTL 1 on the token reply).

Run: make vpc-test (or /usr/bin/python3 -m pytest -v tests/vpc/test_imds.py)."""
import json
import struct
import time

from frames import arp_request, eth, ETH_IP, mac_bytes, parse_arp, parse_ip, tcp

IMDS = "169.254.169.254"
ME = "10.0.0.5"
SYN, ACKF, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04


class Conn:
    """One TCP connection from the guest to the IMDS."""
    port = 40000

    def __init__(self, d, mac, gw):
        Conn.port += 1
        self.d, self.mac, self.gw, self.sport = d, mac, gw, Conn.port
        self.seq, self.ack = 1000, 0
        self.ttls = []
        self.fin = False
        self._send(SYN)
        self.seq += 1
        sa = self._recv_seg()
        assert sa and sa["tcp_flags"] & (SYN | ACKF) == SYN | ACKF, sa
        self.ack = (struct.unpack("!I", sa["payload"][4:8])[0] + 1) & 0xFFFFFFFF
        self._send(ACKF)

    def _send(self, flags, data=b""):
        # Paced under the link-local allowance (1024 packets/s): this client does not
        # retransmit what the allowance drops, a real stack would.
        time.sleep(0.0012)
        self.d.send(eth(self.gw, self.mac, ETH_IP,
                        tcp(ME, IMDS, self.sport, 80, flags=flags, seq=self.seq, ack=self.ack,
                            data=data)))

    def _recv_seg(self, ms=1000):
        while True:
            f = self.d.recv(ms)
            if f is None:
                return None
            p = parse_ip(f)
            if p and p["proto"] == 6 and p["dport"] == self.sport:
                assert p["src"] == IMDS and p["hdr_ok"] and f[6:12] == self.gw, p
                return p

    def request(self, raw):
        """Sends raw bytes, returns what comes back until FIN or a pause (keep-alive)."""
        if raw:
            self._send(PSH | ACKF, raw)
            self.seq += len(raw)
        out = b""
        while True:
            p = self._recv_seg(500 if out else 2000)
            if p is None:
                return out
            off = (p["payload"][12] >> 4) * 4
            data = p["payload"][off:]
            if data:
                self.ttls.append(p["ttl"])
                out += data
                self.ack = (self.ack + len(data)) & 0xFFFFFFFF
            if p["tcp_flags"] & RST:
                self.fin = True
                return out
            if p["tcp_flags"] & FIN:
                self.ack = (self.ack + 1) & 0xFFFFFFFF
                self.fin = True
                self._send(ACKF)
                return out
            self._send(ACKF)

    def close(self):
        if not self.fin:
            self._send(FIN | ACKF)
            self.seq += 1
            self.request(b"")


def parse(resp):
    head, _, body = resp.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    assert resp, "no reply"
    code = int(lines[0].split()[1])
    hdrs = {k.lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    assert int(hdrs["content-length"]) == len(body), resp
    return code, hdrs, body


def start(vpcnet, extra=()):
    c, d = vpcnet.card("a", 7, ME + "/24", extra=list(extra))
    mac = mac_bytes(d.config()["mac"])
    d.send(arp_request(mac, ME, IMDS))  # the guest's on-link route asks for it
    r = parse_arp(d.recv())
    assert r and r["op"] == 2 and r["spa"] == IMDS, r
    return c, d, mac, r["sha"]


def get(d, mac, gw, path, token=None, extra=""):
    k = Conn(d, mac, gw)
    hdr = f"X-aws-ec2-metadata-token: {token}\r\n" if token else ""
    resp = k.request(f"GET {path} HTTP/1.1\r\nHost: {IMDS}\r\n{hdr}{extra}"
                     "Connection: close\r\n\r\n".encode())
    k.close()
    return parse(resp)


def put_token(d, mac, gw, ttl="21600", extra=""):
    k = Conn(d, mac, gw)
    hdr = f"X-aws-ec2-metadata-token-ttl-seconds: {ttl}\r\n" if ttl is not None else ""
    resp = k.request(f"PUT /latest/api/token HTTP/1.1\r\nHost: {IMDS}\r\n{hdr}{extra}"
                     "Connection: close\r\n\r\n".encode())
    k.close()
    return parse(resp), k.ttls


def test_imds_token_flow(vpcnet, tmp_path):
    ud = tmp_path / "ud"
    ud.write_bytes(b"#!/bin/sh\necho hi\n")
    key = tmp_path / "key.pub"
    key.write_text("ssh-ed25519 AAAATEST nitro@test\n")
    c, d, mac, gw = start(vpcnet, ["--instance-id", "i-0abcdef0123456789", "--instance-type",
                                   "c5.xlarge", "--user-data", str(ud), "--ssh-key", str(key)])
    (code, hdrs, tok), ttls = put_token(d, mac, gw, "300")
    assert code == 200 and len(tok) == 56, (code, tok)
    assert hdrs["x-aws-ec2-metadata-token-ttl-seconds"] == "300"
    assert ttls and all(t == 1 for t in ttls), f"token reply TTLs {ttls}"
    tok = tok.decode()
    code, _, body = get(d, mac, gw, "/latest/meta-data/instance-id", tok)
    assert (code, body) == (200, b"i-0abcdef0123456789")
    # ... and an ordinary reply leaves with a normal TTL
    k = Conn(d, mac, gw)
    k.request(f"GET /latest/meta-data/instance-type HTTP/1.0\r\n"
              f"X-aws-ec2-metadata-token: {tok}\r\n\r\n".encode())
    assert k.ttls and all(t > 1 for t in k.ttls), k.ttls
    for path, want in [("/latest/meta-data/instance-type", b"c5.xlarge"),
                       ("/2021-03-23/meta-data/local-ipv4", ME.encode()),
                       ("/2009-04-04/meta-data/mac", ":".join(f"{x:02x}" for x in mac).encode()),
                       ("/latest/user-data", b"#!/bin/sh\necho hi\n"),
                       ("/latest/meta-data/public-keys/0/openssh-key",
                        b"ssh-ed25519 AAAATEST nitro@test"),
                       ("/latest/meta-data/placement/region", b"us-east-1")]:
        code, _, body = get(d, mac, gw, path, tok)
        assert (code, body) == (200, want), (path, code, body)
    # every listed entry answers 200 (a crawl as cloud-init does)
    todo, seen = ["/latest/meta-data/"], 0
    while todo:
        p = todo.pop()
        code, _, body = get(d, mac, gw, p, tok)
        assert code == 200, (p, code, body, c.stats())
        seen += 1
        if p.endswith("/"):
            for name in body.decode().split("\n"):
                todo.append(p + name.split("=")[0] + ("/" if "=" in name else ""))
    assert seen > 30
    code, _, body = get(d, mac, gw, "/latest/meta-data/", tok)
    assert not body.endswith(b"\n") and b"network/" in body
    st = c.stats()
    assert st["imds_packets"] > 0 and st["linklocal_allowance_exceeded"] == 0


def test_imds_region(vpcnet):
    """--region (nitro run --region, nitrod's "region"): the placement, the availability
    zone, the names and the identity document of the region; us-east-1 without it."""
    c, d, mac, gw = start(vpcnet, ["--region", "eu-west-1", "--instance-id",
                                   "i-0abcdef0123456789"])
    (code, _, tok), _ = put_token(d, mac, gw)
    tok = tok.decode()
    name = "ip-" + ME.replace(".", "-") + ".eu-west-1.compute.internal"
    for path, want in [("/latest/meta-data/placement/region", b"eu-west-1"),
                       ("/latest/meta-data/placement/availability-zone", b"eu-west-1a"),
                       ("/latest/meta-data/local-hostname", name.encode()),
                       ("/latest/meta-data/hostname", name.encode())]:
        code, _, body = get(d, mac, gw, path, tok)
        assert (code, body) == (200, want), (path, code, body)
    code, _, body = get(d, mac, gw, "/latest/dynamic/instance-identity/document", tok)
    doc = json.loads(body)
    assert code == 200 and doc["region"] == "eu-west-1", body
    assert doc["availabilityZone"] == "eu-west-1a", body


def test_imds_errors(vpcnet):
    c, d, mac, gw = start(vpcnet)
    # required (the default): no token -> 401; unknown token -> 401
    assert get(d, mac, gw, "/latest/meta-data/instance-id")[0] == 401
    assert get(d, mac, gw, "/latest/meta-data/instance-id", "A" * 56)[0] == 401
    # bad TTLs -> 400
    for ttl in [None, "0", "21601", "abc", "-5", "010", ""]:
        (code, _, _), _ = put_token(d, mac, gw, ttl)
        assert code == 400, (ttl, code)
    # X-Forwarded-For -> 403 on the PUT and the GET
    (code, _, _), _ = put_token(d, mac, gw, "60", "X-Forwarded-For: 1.2.3.4\r\n")
    assert code == 403
    (code, _, tok), _ = put_token(d, mac, gw, "1")
    assert code == 200
    assert get(d, mac, gw, "/latest/meta-data/ami-id", tok.decode(),
               "X-Forwarded-For: 1.2.3.4\r\n")[0] == 403
    assert get(d, mac, gw, "/latest/meta-data/nope", tok.decode())[0] == 404
    time.sleep(1.2)  # the 1-second token has expired
    assert get(d, mac, gw, "/latest/meta-data/ami-id", tok.decode())[0] == 401


def test_imds_optional_and_pipelining(vpcnet):
    c, d, mac, gw = start(vpcnet, ["--imds", "optional"])
    code, _, body = get(d, mac, gw, "/latest/meta-data/instance-id")
    assert code == 200 and body.startswith(b"i-")
    k = Conn(d, mac, gw)
    two = (b"GET /latest/meta-data/ami-id HTTP/1.1\r\nHost: x\r\n\r\n"
           b"GET /latest/meta-data/instance-type HTTP/1.1\r\nConnection: close\r\n\r\n")
    out = k.request(two)
    while not k.fin:
        out += k.request(b"")
    assert out.count(b"HTTP/1.1 200 OK") == 2 and out.endswith(b"m5.large"), out


def test_imds_disabled(vpcnet):
    c, d, mac, gw = start(vpcnet, ["--imds", "disabled"])
    (code, _, _), _ = put_token(d, mac, gw, "60")
    assert code == 403, "a 403 on the token PUT is cloud-init's 'IMDS disabled'"
    assert get(d, mac, gw, "/latest/meta-data/instance-id")[0] == 403


def test_imds_linklocal_allowance(vpcnet):
    c, d, mac, gw = start(vpcnet)
    syn = eth(gw, mac, ETH_IP, tcp(ME, IMDS, 50000, 9, flags=SYN))  # port 9: dropped
    d.burst(syn, 250)  # 250 at once: more than the 100 ms burst the allowance holds
    d.recv_all(200)
    st = c.stats()
    assert st["linklocal_allowance_exceeded"] > 0, st
    assert st["drop_linklocal"] == st["linklocal_allowance_exceeded"]


def test_imds_connection_limit_evicts_the_idlest(vpcnet):
    # A guest process that opens connections and never uses them cannot lock the IMDS
    # out: at 64 the least recently active one ends (RST) to make room.
    c, d, mac, gw = start(vpcnet, ["--imds", "optional"])
    idle = [Conn(d, mac, gw) for _ in range(64)]
    assert c.stats()["imds_conns_evicted"] == 0
    code, _, body = get(d, mac, gw, "/latest/meta-data/instance-id")
    assert code == 200 and body.startswith(b"i-"), body
    st = c.stats()
    assert st["imds_conns_evicted"] >= 1, st
    # the first (idlest) one was reset: a request on it gets no answer but a RST
    k = idle[0]
    out = k.request(b"GET /latest/meta-data/ami-id HTTP/1.1\r\n\r\n")
    assert not out.startswith(b"HTTP/1.1 200"), out
    # a recent one still works
    out = idle[-1].request(b"GET /latest/meta-data/ami-id HTTP/1.1\r\nConnection: close\r\n\r\n")
    assert out.startswith(b"HTTP/1.1 200"), out
