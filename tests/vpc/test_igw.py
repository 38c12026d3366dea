"""The internet gateway (issue 15 item 5): a VPC card with --igw-fd joined by a
SOCK_SEQPACKET pair to a real nitro-vpc-igw (libslirp NAT, its seccomp list on), the
card in an empty network namespace as when jailed. The test plays the guest's TCP frame
by frame (build/vpc-driver) and the servers on the other side:
- the router address (base + 1) reaches a server on the host's loopback;
- an outside address (a network namespace joined by a veth pair, as another host) is
  reached through the NAT;
- what must not pass does not: 127.0.0.1 directly, the host's own (veth) address, an
  address inside the VPC's CIDR, a card without the gateway, the security group's egress
  rules; a flood of frames the NAT refuses leaves it running.

Run: make vpc-test (or /usr/bin/python3 -m pytest -v tests/vpc/test_igw.py)."""
import os
import socket
import struct
import subprocess
import threading
import time

import pytest

from conftest import BUILD
from frames import eth, ETH_IP, mac_bytes, parse_ip, tcp, udp

IGW = BUILD / "nitro-vpc-igw"
ME, ROUTER = "10.0.0.5", "10.0.0.1"
SYN, ACKF, PSH, FIN, RST = 0x02, 0x10, 0x08, 0x01, 0x04
GW_MAC = None


class Server:
    """A one-line TCP server: every connection gets b"hello from HOST\\n" and is counted."""

    def __init__(self, addr, name):
        self.s = socket.socket()
        self.s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.s.bind((addr, 0))
        self.s.listen(16)
        self.port = self.s.getsockname()[1]
        self.accepted = 0
        self.name = name
        threading.Thread(target=self._run, daemon=True).start()

    def _run(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.accepted += 1
            c.sendall(b"hello from " + self.name.encode() + b"\n")
            c.close()


class Conn:
    port = 41000

    def __init__(self, d, mac, gw, dst, dport):
        Conn.port += 1
        self.d, self.mac, self.gw, self.dst, self.dport = d, mac, gw, dst, dport
        self.sport, self.seq, self.ack = Conn.port, 5000, 0

    def send(self, flags, data=b""):
        self.d.send(eth(self.gw, self.mac, ETH_IP,
                        tcp(ME, self.dst, self.sport, self.dport, flags=flags, seq=self.seq,
                            ack=self.ack, data=data)))

    def seg(self, ms=1000):
        end = time.time() + ms / 1000
        while time.time() < end:
            f = self.d.recv(100)
            if f is None:
                continue
            p = parse_ip(f)
            if p and p["proto"] == 6 and p.get("dport") == self.sport:
                assert p["src"] == self.dst and p["hdr_ok"] and f[6:12] == self.gw, p
                assert f[0:6] == self.mac, p
                return p
        return None

    def connect(self, ms=3000):
        """SYN (resent each second); True once a SYN+ACK came back."""
        end = time.time() + ms / 1000
        while time.time() < end:
            self.send(SYN)
            p = self.seg(1000)
            if p and p["tcp_flags"] & (SYN | ACKF) == SYN | ACKF:
                self.seq += 1
                self.ack = (struct.unpack("!I", p["payload"][4:8])[0] + 1) & 0xFFFFFFFF
                self.send(ACKF)
                return True
        return False

    def read_all(self):
        out = b""
        while True:
            p = self.seg(3000)
            if p is None:
                return out
            off = (p["payload"][12] >> 4) * 4
            data = p["payload"][off:]
            out += data
            self.ack = (self.ack + len(data) + (1 if p["tcp_flags"] & FIN else 0)) & 0xFFFFFFFF
            self.send(ACKF)
            if p["tcp_flags"] & (FIN | RST):
                if p["tcp_flags"] & FIN:
                    self.send(FIN | ACKF)
                return out


@pytest.fixture
def outside():
    """A network namespace with a server, joined by a veth pair: 10.198.N.1 here (this
    host's own address: denied), 10.198.N.2 there (an outside host)."""
    tag = os.getpid() % 200
    ns, veth = f"igwout{tag}", [f"vi{tag}a", f"vi{tag}b"]
    here, there = f"10.198.{tag}.1", f"10.198.{tag}.2"

    def sh(*a):
        subprocess.run(a, check=True, capture_output=True)
    subprocess.run(["ip", "netns", "del", ns], capture_output=True)
    sh("ip", "netns", "add", ns)
    try:
        sh("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        sh("ip", "link", "set", veth[1], "netns", ns)
        sh("ip", "addr", "add", here + "/24", "dev", veth[0])
        sh("ip", "link", "set", veth[0], "up")
        sh("ip", "-n", ns, "addr", "add", there + "/24", "dev", veth[1])
        sh("ip", "-n", ns, "link", "set", veth[1], "up")
        sh("ip", "-n", ns, "link", "set", "lo", "up")
        srv = subprocess.Popen(
            ["ip", "netns", "exec", ns, "/usr/bin/python3", "-c",
             "import socket\ns=socket.socket()\ns.bind(('0.0.0.0',8080))\ns.listen(8)\n"
             "print('up',flush=True)\n"
             "while True:\n c,_=s.accept(); c.sendall(b'hello from outside\\n'); c.close()"],
            stdout=subprocess.PIPE, text=True)
        assert srv.stdout.readline().strip() == "up"
        yield here, there
        srv.kill()
        srv.wait()
    finally:
        subprocess.run(["ip", "link", "del", veth[0]], capture_output=True)
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)


def gateway(vpcnet, name, ip, extra=(), igw_args=()):
    """A card with the gateway: (card, driver, nat process, guest mac, gateway mac)."""
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    nat_err = open(os.path.join(vpcnet.sockdir, f"{name}.nat"), "w")
    nat = subprocess.Popen([str(IGW), "--fd", str(b.fileno()), "--ip", ip, *igw_args],
                           pass_fds=(b.fileno(),), stdout=nat_err, stderr=nat_err)
    b.close()
    c, d = vpcnet.card(name, 7, ip, empty_netns=True, pass_fds=(a.fileno(),),
                       extra=["--igw-fd", str(a.fileno()), *extra])
    a.close()
    mac = mac_bytes(d.config()["mac"])
    return c, d, nat, mac, mac_bytes("02:00:00:00:00:01") if False else gw_mac(d, mac)


def gw_mac(d, mac):
    from frames import arp_request, parse_arp
    d.send(arp_request(mac, ME, ROUTER))
    r = parse_arp(d.recv())
    assert r and r["op"] == 2, r
    return r["sha"]


def stop(nat):
    nat.terminate()
    nat.wait(timeout=10)
    return nat.returncode


@pytest.fixture
def built_igw(built):
    p = subprocess.run(["make", "-s", "build/nitro-vpc-igw"], cwd=BUILD.parent,
                       capture_output=True, text=True, timeout=600)
    assert p.returncode == 0 and IGW.exists(), p.stdout + p.stderr


def test_router_alias_and_outside_through_the_nat(vpcnet, built_igw, outside):
    here, there = outside
    lo = Server("127.0.0.1", "loopback")
    mine = Server(here, "this-host")
    c, d, nat, mac, gw = gateway(vpcnet, "a", ME + "/24", extra=["--vpc-cidr", "10.0.0.0/16"])
    try:
        # the router address is the host's loopback (slirp's host alias)
        k = Conn(d, mac, gw, ROUTER, lo.port)
        assert k.connect(), c.log()
        assert k.read_all() == b"hello from loopback\n"
        assert lo.accepted == 1
        # an outside address through the NAT
        k = Conn(d, mac, gw, there, 8080)
        assert k.connect(), c.log()
        assert k.read_all() == b"hello from outside\n"
        # never: the loopback directly, this host's own address, the VPC's own CIDR
        for dst, port in [("127.0.0.1", lo.port), (here, mine.port), ("10.0.9.9", 80),
                          ("169.254.169.123", 123), ("224.0.0.1", 80)]:
            assert not Conn(d, mac, gw, dst, port).connect(1500), dst
        assert lo.accepted == 1 and mine.accepted == 0
        st = c.stats()
        assert st["igw_tx"] > 0 and st["igw_rx"] > 0 and st["igw_send_errors"] == 0, st
        assert st["drop_no_route"] >= 4, st
        # UDP leaves too (a datagram to the loopback server's port through the alias)
        u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        u.bind(("127.0.0.1", 0))
        u.settimeout(5)
        d.send(eth(gw, mac, ETH_IP, udp(ME, ROUTER, 40404, u.getsockname()[1], b"dgram")))
        data, src = u.recvfrom(100)
        assert data == b"dgram"
        u.sendto(b"back", src)  # the reply comes back to the guest
        deadline = time.time() + 5
        got = None
        while time.time() < deadline and got is None:
            f = d.recv(200)
            p = f and parse_ip(f)
            if p and p["proto"] == 17 and p.get("dport") == 40404:
                got = p
        assert got and got["src"] == ROUTER and got["payload"][8:] == b"back", got
        assert nat.poll() is None, "the NAT died (seccomp?)"
    finally:
        rc = stop(nat)
    assert rc == 0, rc


def test_nat_refuses_what_the_core_would_not_send(vpcnet, built_igw, outside):
    """A compromised card (or a bug in the core) handing the NAT forbidden frames: it
    checks them itself (igw_policy.h) and keeps running."""
    here, there = outside
    lo = Server("127.0.0.1", "loopback")
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    nat = subprocess.Popen([str(IGW), "--fd", str(b.fileno()), "--ip", ME + "/24"],
                           pass_fds=(b.fileno(),), stderr=subprocess.PIPE)
    b.close()
    mac, gmac = bytes.fromhex("020000000005"), bytes.fromhex("020000000001")
    try:
        bad = [tcp(ME, "127.0.0.1", 1, lo.port), tcp("10.0.0.9", ROUTER, 1, lo.port),
               tcp(ME, here, 1, 22), tcp(ME, "10.0.0.7", 1, 80), udp(ME, ROUTER, 1, 67, b"x"),
               b"\x45" + b"\0" * 19, b""]
        for i in range(2000):
            a.send(eth(gmac, mac, ETH_IP, bad[i % len(bad)]))
        a.send(eth(gmac, mac, ETH_IP, tcp(ME, ROUTER, 2, lo.port)))  # one good SYN
        a.settimeout(5)
        f = a.recv(65536)
        p = parse_ip(f)
        assert p and p["src"] == ROUTER and p["tcp_flags"] & (SYN | ACKF) == SYN | ACKF, p
        assert lo.accepted == 0 or lo.accepted == 1  # the good one may be accepted
        assert nat.poll() is None
    finally:
        a.close()  # the card's end closing ends the NAT
        nat.wait(timeout=10)
    err = nat.stderr.read().decode()
    assert nat.returncode == 0, err
    assert "refused 2000" in err, err


def test_without_gateway_outside_is_dropped(vpcnet, built, outside):
    here, there = outside
    c, d = vpcnet.card("n", 7, ME + "/24", empty_netns=True)
    mac = mac_bytes(d.config()["mac"])
    gw = gw_mac(d, mac)
    assert not Conn(d, mac, gw, there, 8080).connect(1500)
    assert not Conn(d, mac, gw, ROUTER, 80).connect(1500)
    st = c.stats()
    assert st["igw_tx"] == 0 and st["drop_no_route"] >= 2, st


def test_security_group_egress_applies_to_the_gateway(vpcnet, built_igw, outside, tmp_path):
    here, there = outside
    lo = Server("127.0.0.1", "loopback")
    sg = tmp_path / "egress.sg"
    sg.write_text(f"egress tcp 8080 {there}/32\n")  # the outside server only
    c, d, nat, mac, gw = gateway(vpcnet, "s", ME + "/24", extra=["--sg", str(sg)])
    try:
        k = Conn(d, mac, gw, there, 8080)
        assert k.connect(), c.log()
        assert k.read_all() == b"hello from outside\n"
        assert not Conn(d, mac, gw, ROUTER, lo.port).connect(1500)
        assert lo.accepted == 0
        assert c.stats()["drop_sg_out"] >= 1
    finally:
        assert stop(nat) == 0
