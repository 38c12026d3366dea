"""The VPC resolver (VPC base + 2 and 169.254.169.253, UDP 53) and the time server
(169.254.169.123, UDP 123) of nitro-card-vpc, driven frame by frame: the test driver is
the guest's virtio-net, DNS and NTP messages are written here by hand, the host's
resolver is a UDP socket of this test (--dns-upstream).

Run: make vpc-test (or /usr/bin/python3 -m pytest -v tests/vpc/test_dns.py)."""
import socket
import struct
import time

from frames import (DISCOVER, ETH_IP, arp_request, dhcp, eth, ip_bytes, mac_bytes,
                    parse_arp, parse_dhcp, parse_ip, udp)

ME, PEER = "10.0.0.5", "10.0.0.6"
DOMAIN = "eu-west-1.compute.internal"
LINKLOCAL_DNS, NTP = "169.254.169.253", "169.254.169.123"


def qname(name):
    return b"".join(bytes([len(l)]) + l.encode() for l in name.split(".") if l) + b"\0"


def query(name, qtype=1, qid=0x1234, flags=0x0100, edns=None):
    q = struct.pack("!HHHHHH", qid, flags, 1, 0, 0, 1 if edns else 0)
    q += qname(name) + struct.pack("!HH", qtype, 1)
    if edns:
        q += b"\0" + struct.pack("!HHIH", 41, edns, 0, 0)
    return q


def read_name(m, off):
    labels, end = [], None
    while True:
        l = m[off]
        if l & 0xC0 == 0xC0:
            end = end or off + 2
            off = struct.unpack("!H", m[off:off + 2])[0] & 0x3FFF
            continue
        if l == 0:
            return ".".join(labels), end or off + 1
        labels.append(m[off + 1:off + 1 + l].decode())
        off += 1 + l


def parse_reply(m):
    qid, flags, qd, an, ns, ar = struct.unpack("!HHHHHH", m[:12])
    off, answers = 12, []
    for _ in range(qd):
        _, off = read_name(m, off)
        off += 4
    for _ in range(an):
        name, off = read_name(m, off)
        t, c, ttl, rl = struct.unpack("!HHIH", m[off:off + 10])
        rd = m[off + 10:off + 10 + rl]
        val = socket.inet_ntoa(rd) if t == 1 else read_name(m, off + 10)[0] if t == 12 else rd
        answers.append((name, t, ttl, val))
        off += 10 + rl
    return dict(id=qid, qr=flags >> 15, aa=(flags >> 10) & 1, tc=(flags >> 9) & 1,
                ra=(flags >> 7) & 1, rcode=flags & 15, qd=qd, an=answers, ar=ar)


class Guest:
    def __init__(self, d, mac, gw):
        self.d, self.mac, self.gw = d, mac, gw
        self.sport = 33000

    def send(self, dst, dport, data, sport=None):
        time.sleep(0.0012)  # under the link-local allowance
        self.sport += 1
        self.d.send(eth(self.gw, self.mac, ETH_IP, udp(ME, dst, sport or self.sport, dport, data)))
        return sport or self.sport

    def recv(self, sport, ms=1000):
        while True:
            f = self.d.recv(ms)
            if f is None:
                return None
            p = parse_ip(f)
            if p and p["proto"] == 17 and p.get("dport") == sport:
                assert p["hdr_ok"] and f[6:12] == self.gw and p["dst"] == ME, p
                return p

    def ask(self, dst, msg, dport=53):
        sport = self.send(dst, dport, msg)
        p = self.recv(sport)
        if p is None:
            return None, None
        assert p["src"] == dst and p["sport"] == dport, p
        return p, p["payload"][8:]


class Upstream:
    """The host's resolver: answers every A query with 192.0.2.99, records what it got."""

    def __init__(self):
        self.s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.s.bind(("127.0.0.1", 0))
        self.s.settimeout(2)
        self.addr = "127.0.0.1:%d" % self.s.getsockname()[1]

    def serve_one(self, answer=True, mangle=None):
        m, peer = self.s.recvfrom(4096)
        qid = m[:2]
        _, end = read_name(m, 12)
        question = m[12:end + 4]
        if not answer:
            return m, peer
        r = qid + struct.pack("!HHHHH", 0x8180, 1, 1, 0, 0) + question
        r += struct.pack("!HHHIH", 0xC00C, 1, 1, 300, 4) + socket.inet_aton("192.0.2.99")
        if mangle:
            r = mangle(r)
        self.s.sendto(r, peer)
        return m, peer


def start(vpcnet, extra=()):
    c, d = vpcnet.card("a", 7, ME + "/24", extra=["--region", "eu-west-1"] + list(extra))
    vpcnet.card("b", 7, PEER + "/24", driver=False)
    mac = mac_bytes(d.config()["mac"])
    d.send(arp_request(mac, ME, "10.0.0.2"))  # the resolver in the subnet answers ARP
    r = parse_arp(d.recv())
    assert r and r["op"] == 2 and r["spa"] == "10.0.0.2", r
    return c, d, Guest(d, mac, r["sha"])


def test_instance_names_and_ptr(vpcnet):
    up = Upstream()
    c, d, g = start(vpcnet, ["--dns-upstream", up.addr])
    for server in ["10.0.0.2", LINKLOCAL_DNS]:
        # the 0x20 case of the question comes back as it was asked
        _, m = g.ask(server, query(f"IP-10-0-0-6.{DOMAIN.upper()}", qid=0x4242))
        r = parse_reply(m)
        assert (r["id"], r["qr"], r["aa"], r["rcode"]) == (0x4242, 1, 1, 0), r
        assert r["an"] == [(f"IP-10-0-0-6.{DOMAIN.upper()}", 1, 60, PEER)], r
        assert qname(f"IP-10-0-0-6.{DOMAIN.upper()}") in m
    r = parse_reply(g.ask("10.0.0.2", query(f"ip-10-0-0-5.{DOMAIN}"))[1])  # itself
    assert r["an"][0][3] == ME
    r = parse_reply(g.ask("10.0.0.2", query("6.0.0.10.in-addr.arpa", qtype=12))[1])
    assert r["rcode"] == 0 and r["aa"] and r["an"] == [
        ("6.0.0.10.in-addr.arpa", 12, 60, f"ip-10-0-0-6.{DOMAIN}")], r
    # an existing name, another type: NOERROR without answers
    r = parse_reply(g.ask("10.0.0.2", query(f"ip-10-0-0-6.{DOMAIN}", qtype=28))[1])
    assert (r["rcode"], r["an"]) == (0, []), r
    # no such instance, not an instance name, deeper names: NXDOMAIN
    for name in [f"ip-10-0-0-9.{DOMAIN}", f"www.{DOMAIN}", f"ip-10-0-0-06.{DOMAIN}",
                 f"x.ip-10-0-0-6.{DOMAIN}", f"ip-10-0-0-256.{DOMAIN}"]:
        r = parse_reply(g.ask("10.0.0.2", query(name))[1])
        assert (r["rcode"], r["aa"], r["an"]) == (3, 1, []), (name, r)
    r = parse_reply(g.ask("10.0.0.2", query("9.0.0.10.in-addr.arpa", qtype=12))[1])
    assert r["rcode"] == 3, r
    # another VPC's instance at the same address is not this VPC's
    vpcnet.card("x", 8, "10.0.0.7/24", driver=False)
    r = parse_reply(g.ask("10.0.0.2", query(f"ip-10-0-0-7.{DOMAIN}"))[1])
    assert r["rcode"] == 3, r
    st = c.stats()
    assert st["dns_answered_local"] >= 10 and st["service_packets"] >= 10, st


def test_forwarding_to_the_host_resolver(vpcnet):
    up = Upstream()
    c, d, g = start(vpcnet, ["--dns-upstream", up.addr])
    sport = g.send("10.0.0.2", 53, query("www.example.com", qid=0x7777))
    m, _ = up.serve_one()
    assert m[2:] == query("www.example.com", qid=0x7777)[2:]  # as the guest sent it
    p = g.recv(sport)
    assert p and p["src"] == "10.0.0.2", p
    r = parse_reply(p["payload"][8:])
    assert r["id"] == 0x7777 and r["an"] == [("www.example.com", 1, 300, "192.0.2.99")], r
    # the PTR of an address outside the VPC is the host resolver's too
    sport = g.send(LINKLOCAL_DNS, 53, query("8.8.8.8.in-addr.arpa", qtype=12))
    up.serve_one()
    p = g.recv(sport)
    assert p and p["src"] == LINKLOCAL_DNS, p
    # an answer for another question (or another id) is not passed on
    sport = g.send("10.0.0.2", 53, query("a.example.com", qid=0x1111))
    up.serve_one(mangle=lambda r: r.replace(b"\x01a\x07example", b"\x01b\x07example"))
    assert g.recv(sport, 500) is None
    sport = g.send("10.0.0.2", 53, query("c.example.com", qid=0x2222))
    up.serve_one(mangle=lambda r: bytes([r[0] ^ 1]) + r[1:])
    assert g.recv(sport, 500) is None
    # an answer larger than the guest accepts (512 without EDNS): TC, the question only
    sport = g.send("10.0.0.2", 53, query("big.example.com", qid=0x3333))
    up.serve_one(mangle=lambda r: r[:2] + r[2:6] + struct.pack("!H", 40) + r[8:] +
                 r[-16:] * 39)
    p = g.recv(sport)
    r = parse_reply(p["payload"][8:])
    assert (r["id"], r["tc"], r["an"]) == (0x3333, 1, []), r
    st = c.stats()
    assert st["dns_forwarded"] == 5 and st["dns_upstream_answers"] == 3, st
    assert st["dns_upstream_bad"] == 2 and st["dns_truncated"] == 1, st


def test_forwarding_from_an_empty_network_namespace(vpcnet, monkeypatch):
    """As nitrod runs it: no network of its own, the sockets made by its launcher, and
    its seccomp filter (NITRO_SECCOMP=card-vpc: no socket creation)."""
    monkeypatch.setenv("NITRO_SECCOMP", "card-vpc")
    # (the sanitizer build: LeakSanitizer's exit-time scan needs calls the filter forbids)
    monkeypatch.setenv("ASAN_OPTIONS", "detect_leaks=0")
    up = Upstream()
    ul = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    ul.bind(("127.0.0.1", 0))
    dns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    dns.connect(up.s.getsockname())
    c, d = vpcnet.card("a", 7, ME + "/24", underlay_sock=ul, dns_sock=dns, empty_netns=True)
    g = Guest(d, mac_bytes(d.config()["mac"]), bytes.fromhex("02005e000001"))
    sport = g.send(LINKLOCAL_DNS, 53, query("www.example.org", qid=0x5151))
    up.serve_one()
    r = parse_reply(g.recv(sport)["payload"][8:])
    assert r["id"] == 0x5151 and r["an"][0][3] == "192.0.2.99", r
    p, m = g.ask(NTP, ntp_request(), dport=123)  # clock_gettime under the filter
    assert len(m) == 48
    assert c.stats()["dns_upstream_answers"] == 1


def test_malformed_queries(vpcnet):
    c, d, g = start(vpcnet)
    # without an upstream, names that are no instance's are refused
    r = parse_reply(g.ask("10.0.0.2", query("www.example.com"))[1])
    assert (r["rcode"], r["ra"]) == (5, 0), r
    # a compression pointer to itself (a loop) in the question: FORMERR
    loop = struct.pack("!HHHHHH", 0x99, 0x100, 1, 0, 0, 0) + b"\xc0\x0c" + b"\0\1\0\1"
    r = parse_reply(g.ask("10.0.0.2", loop)[1])
    assert (r["id"], r["rcode"], r["qd"]) == (0x99, 1, 0), r
    # a forward pointer, a label running past the end, two questions, an answer in a query
    for bad in [struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\xc0\x20\0\1\0\1",
                struct.pack("!HHHHHH", 1, 0x100, 1, 0, 0, 0) + b"\x3fabc",
                query("a.b")[:4] + b"\0\2" + query("a.b")[6:] + qname("c") + b"\0\1\0\1",
                query("a.b")[:6] + b"\0\1" + query("a.b")[8:],
                query("a.b")[:-2]]:
        r = parse_reply(g.ask("10.0.0.2", bad)[1])
        assert r["rcode"] == 1, (bad, r)
    # opcode STATUS: NOTIMP; EDNS version 1: BADVERS (extended rcode in the OPT)
    r = parse_reply(g.ask("10.0.0.2", query("a.b", flags=0x1000))[1])
    assert r["rcode"] == 4, r
    m = g.ask("10.0.0.2", query("a.b", edns=1232)[:-6] + struct.pack("!IH", 0x00010000, 0))[1]
    r = parse_reply(m)
    assert r["rcode"] == 0 and r["ar"] == 1 and m[-6] == 1, (r, m)
    # a response sent to the resolver, a runt, a bad UDP checksum: no answer at all
    for msg in [query("a.b", flags=0x8100), b"\x01\x02\x03"]:
        sport = g.send("10.0.0.2", 53, msg)
        assert g.recv(sport, 300) is None
    frame = eth(g.gw, g.mac, ETH_IP, udp(ME, "10.0.0.2", 33999, 53, query("a.b")))
    g.d.send(frame[:40] + bytes([frame[40] ^ 0xFF]) + frame[41:])
    assert g.recv(33999, 300) is None
    # TCP to 53 and UDP to other ports of the resolver are not served
    st = c.stats()
    assert st["service_bad_udp"] == 1 and st["dns_formerr"] >= 6, st


def ntp_request(xmt=b"\x12\x34\x56\x78\x9a\xbc\xde\xf0", mode=3, vn=4):
    return bytes([vn << 3 | mode, 0, 6, 0xEC]) + b"\0" * 36 + xmt


def test_time_server(vpcnet):
    c, d, g = start(vpcnet)
    before = time.time()
    p, m = g.ask(NTP, ntp_request(), dport=123)
    after = time.time()
    assert p and len(m) == 48, p
    assert m[0] == (4 << 3 | 4) and m[1] == 3 and m[2] == 6, m[:4]  # LI 0, v4, server, st 3
    assert m[24:32] == b"\x12\x34\x56\x78\x9a\xbc\xde\xf0"  # origin = our transmit
    rx = struct.unpack("!I", m[32:36])[0] - 2208988800
    tx = struct.unpack("!II", m[40:48])
    tx = tx[0] - 2208988800 + tx[1] / 2**32
    assert before - 1 <= rx <= after + 1 and before - 0.01 <= tx <= after + 0.01, (before, tx)
    assert struct.unpack("!I", m[8:12])[0] < 65536  # root dispersion under a second
    # version 3 gets version 3
    assert g.ask(NTP, ntp_request(vn=3), dport=123)[1][0] == (3 << 3 | 4)
    # server-mode packets, short ones, a zero transmit timestamp, version 5: no answer
    for bad in [ntp_request(mode=4), ntp_request()[:47], ntp_request(xmt=b"\0" * 8),
                ntp_request(vn=5), ntp_request(mode=1)]:
        sport = g.send(NTP, 123, bad)
        assert g.recv(sport, 300) is None, bad
    # other ports of the time server's address: dropped as no route
    g.send(NTP, 53, query("a.b"))
    st = c.stats()
    assert st["ntp_requests"] == 7 and st["ntp_answered"] == 2, st
    assert st["drop_no_route"] >= 1


def test_dhcp_hands_out_resolver_and_domain(vpcnet):
    c, d = vpcnet.card("a", 7, ME + "/24", extra=["--region", "eu-west-1"])
    mac = mac_bytes(d.config()["mac"])
    d.send(dhcp(mac, DISCOVER))
    o = parse_dhcp(d.recv())
    assert o["options"][6] == ip_bytes("10.0.0.2"), o
    assert o["options"][15] == DOMAIN.encode(), o
    assert o["options"][42] == ip_bytes(NTP), o


def test_linklocal_allowance_covers_dns(vpcnet):
    c, d, g = start(vpcnet)
    q = query(f"ip-10-0-0-6.{DOMAIN}")
    frame = eth(g.gw, g.mac, ETH_IP, udp(ME, "10.0.0.2", 34000, 53, q))
    for _ in range(4):
        d.burst(frame, 250)
    time.sleep(0.3)
    st = c.stats()
    assert st["linklocal_allowance_exceeded"] > 0 and st["dns_queries"] < 1000, st
    assert st["dns_queries"] + st["linklocal_allowance_exceeded"] == 1000, st
