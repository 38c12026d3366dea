"""Native tests of nitro-card-vpc: real cards, the test driver as the guest, the mapping
service in a private $NITRO_STATE, Geneve over loopback UDP between the cards.

Run: make vpc-test (or /usr/bin/python3 -m pytest -v tests/vpc)."""
import os
import signal
import socket
import struct
import subprocess
import time

import pytest

from conftest import DRIVER, NITRO, Driver
from nitrotest import free_port
from frames import (ACK, DISCOVER, ETH_IP, NAK, OFFER, REQUEST, arp_request, dhcp, eth,
                    icmp_echo, ip_bytes, ipv4, mac_bytes, mac_str, parse_arp, parse_dhcp,
                    parse_ip, tcp, udp)

GW = None  # the gateway MAC, learned from the first ARP reply


def gateway_mac(d, mine_mac, mine_ip, gw_ip):
    d.send(arp_request(mine_mac, mine_ip, gw_ip))
    r = parse_arp(d.recv())
    assert r and r["op"] == 2, r
    return r["sha"]


def only_ip(frames):
    return [f for f in frames if parse_ip(f)]


def test_config_space(vpcnet):
    c, d = vpcnet.card("a", 7, "10.0.0.5/24")
    cfg = d.config()
    mac = mac_bytes(cfg["mac"])
    assert mac[0] & 2 and not mac[0] & 1, f"locally administered unicast: {cfg['mac']}"
    assert cfg["status"] == "1" and cfg["pairs"] == "1" and cfg["mtu"] == "9001"
    # the same (vpc, ip) always gets the same MAC, another ip another one
    c2, d2 = vpcnet.card("b", 7, "10.0.0.6/24")
    assert d2.config()["mac"] != cfg["mac"]
    rec = (vpcnet.map / "7_10.0.0.5").read_text()
    assert f"mac={cfg['mac']}" in rec and "underlay=127.0.0.1:" in rec, rec


def test_arp_gateway_byte_by_byte(vpcnet):
    c, d = vpcnet.card("a", 7, "10.0.0.5/24")
    mac = mac_bytes(d.config()["mac"])
    d.send(arp_request(mac, "10.0.0.5", "10.0.0.1"))
    f = d.recv()
    assert f is not None, "no ARP reply for the gateway"
    gw = f[22:28]
    expect = (mac + gw + b"\x08\x06" + b"\x00\x01\x08\x00\x06\x04\x00\x02" + gw +
              ip_bytes("10.0.0.1") + mac + ip_bytes("10.0.0.5"))
    assert f[:42] == expect, f.hex()
    assert all(b == 0 for b in f[42:]), "padding must be zero"
    assert gw[0] & 2 and not gw[0] & 1 and gw != mac
    # off-subnet -> the gateway MAC too; our own address (DAD probe) -> silence
    d.send(arp_request(mac, "10.0.0.5", "8.8.8.8"))
    r = parse_arp(d.recv())
    assert r and r["sha"] == gw and r["spa"] == "8.8.8.8"
    d.send(arp_request(mac, "10.0.0.5", "10.0.0.5"))
    assert d.recv(200) is None
    assert c.stats()["arp_replies"] == 2


def test_arp_peer_and_unknown(vpcnet):
    a, da = vpcnet.card("a", 7, "10.0.0.5/24")
    b, db = vpcnet.card("b", 7, "10.0.0.6/24")
    amac, bmac = mac_bytes(da.config()["mac"]), mac_bytes(db.config()["mac"])
    da.send(arp_request(amac, "10.0.0.5", "10.0.0.6"))
    r = parse_arp(da.recv())
    assert r and r["op"] == 2 and r["sha"] == bmac and r["spa"] == "10.0.0.6", r
    da.send(arp_request(amac, "10.0.0.5", "10.0.0.77"))  # nobody has it
    assert da.recv(200) is None
    assert db.recv(100) is None, "ARP is answered by the card: nothing reaches peers"


def test_dhcp_offer_and_ack(vpcnet):
    c, d = vpcnet.card("a", 7, "10.1.2.5/24", extra=["--mtu", "1500"])
    mac = mac_bytes(d.config()["mac"])
    d.send(dhcp(mac, DISCOVER, xid=0x11223344))
    o = parse_dhcp(d.recv())
    assert o, "no DHCP OFFER"
    assert o["op"] == 2 and o["xid"] == 0x11223344 and o["chaddr"] == mac
    assert o["yiaddr"] == "10.1.2.5"
    opt = o["options"]
    assert opt[53] == bytes([OFFER])
    assert opt[54] == ip_bytes("10.1.2.1") and opt[3] == ip_bytes("10.1.2.1")
    assert opt[1] == ip_bytes("255.255.255.0")
    assert opt[6][:4] == ip_bytes("10.1.2.2"), "DNS = subnet base + 2"
    assert struct.unpack("!H", opt[26])[0] == 1500
    assert struct.unpack("!I", opt[51])[0] > 0
    assert o["ip"]["src"] == "10.1.2.1" and o["ip"]["hdr_ok"]
    d.send(dhcp(mac, REQUEST, xid=0x11223345, requested="10.1.2.5", server="10.1.2.1"))
    a = parse_dhcp(d.recv())
    assert a and a["options"][53] == bytes([ACK]) and a["yiaddr"] == "10.1.2.5"
    d.send(dhcp(mac, REQUEST, xid=0x11223346, requested="10.1.2.9", server="10.1.2.1"))
    n = parse_dhcp(d.recv())
    assert n and n["options"][53] == bytes([NAK])


def pair(vpcnet, vpc=7, ips=("10.0.0.5", "10.0.0.6"), **kw):
    a, da = vpcnet.card("a", vpc, ips[0] + "/24", **kw.get("a", {}))
    b, db = vpcnet.card("b", vpc, ips[1] + "/24", **kw.get("b", {}))
    amac, bmac = mac_bytes(da.config()["mac"]), mac_bytes(db.config()["mac"])
    return (a, da, amac), (b, db, bmac)


def test_forwarding_between_two_cards(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    ping = icmp_echo("10.0.0.5", "10.0.0.6", seq=1)
    da.send(eth(bmac, amac, ETH_IP, ping))
    f = db.recv(1000)
    assert f is not None, f"nothing arrived: a={a.stats()} b={b.stats()}"
    assert f[:6] == bmac and f[6:12] == amac, "same subnet: sender's MAC as the source"
    assert f[14:] == ping, "the IP packet arrives unchanged"
    pong = icmp_echo("10.0.0.6", "10.0.0.5", seq=1, reply=True)
    db.send(eth(amac, bmac, ETH_IP, pong))
    g = da.recv(1000)
    assert g is not None and g[14:] == pong
    # a frame sent to the gateway MAC is routed the same way
    gw = gateway_mac(da, amac, "10.0.0.5", "10.0.0.1")
    ping2 = icmp_echo("10.0.0.5", "10.0.0.6", seq=2)
    da.send(eth(gw, amac, ETH_IP, ping2))
    f = db.recv(1000)
    assert f is not None and f[14:] == ping2
    sa, sb = a.stats(), b.stats()
    assert sa["tx_forwarded"] >= 2 and sb["rx_forwarded"] >= 2, (sa, sb)
    assert sa["underlay_sent"] >= 2 and sb["underlay_received"] >= 2


def test_forwarding_with_launcher_made_underlays_in_empty_netns(vpcnet):
    """Issue 10 item 7: a card in an empty network namespace (as jailed by nitrod) gets
    its underlay socket from its launcher (--underlay-fd) and still forwards."""
    socks = []
    for _ in range(2):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind(("127.0.0.1", 0))
        socks.append(s)
    try:
        (a, da, amac), (b, db, bmac) = pair(
            vpcnet, a={"underlay_sock": socks[0], "empty_netns": True},
            b={"underlay_sock": socks[1], "empty_netns": True})
        rec = (vpcnet.map / "7_10.0.0.5").read_text()
        assert f"underlay=127.0.0.1:{socks[0].getsockname()[1]}" in rec, rec
    finally:
        for s in socks:
            s.close()
    ping = icmp_echo("10.0.0.5", "10.0.0.6", seq=1)
    da.send(eth(bmac, amac, ETH_IP, ping))
    f = db.recv(1000)
    assert f is not None and f[14:] == ping, f"nothing arrived: a={a.stats()} b={b.stats()}"
    pong = icmp_echo("10.0.0.6", "10.0.0.5", seq=1, reply=True)
    db.send(eth(amac, bmac, ETH_IP, pong))
    g = da.recv(1000)
    assert g is not None and g[14:] == pong
    # Anything but a bound IPv4 UDP socket is refused.
    t = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for bad, msg in ((t, "is not an IPv4 UDP socket"), (u, "must be bound")):
            with pytest.raises(AssertionError, match=msg):
                vpcnet.card("c", 7, "10.0.0.7/24", driver=False, underlay_sock=bad)
    finally:
        t.close()
        u.close()


def test_isolation_between_vpcs(vpcnet):
    """Same private address in two VPCs: traffic never crosses."""
    a, da = vpcnet.card("a", 7, "10.0.0.5/24")
    b, db = vpcnet.card("b", 7, "10.0.0.6/24")
    x, dx = vpcnet.card("x", 8, "10.0.0.6/24")  # VPC 8 reuses 10.0.0.6
    y, dy = vpcnet.card("y", 8, "10.0.0.7/24")
    amac = mac_bytes(da.config()["mac"])
    ymac = mac_bytes(dy.config()["mac"])
    gw = gateway_mac(da, amac, "10.0.0.5", "10.0.0.1")
    da.send(eth(gw, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 1000, 2000, b"vpc7")))
    f = db.recv(1000)
    assert f is not None and parse_ip(f)["payload"][8:] == b"vpc7"
    assert dx.recv(300) is None, "VPC 8's 10.0.0.6 got VPC 7's packet"
    # VPC 7 has no 10.0.0.7: no route, even though VPC 8 has one
    da.send(eth(gw, amac, ETH_IP, udp("10.0.0.5", "10.0.0.7", 1000, 2000, b"leak")))
    assert dy.recv(300) is None
    assert a.stats()["drop_no_route"] >= 1
    # a Geneve packet to y's underlay port that carries VPC 7's VNI is refused
    dy.config()
    port = int((vpcnet.map / "8_10.0.0.7").read_text().split("underlay=127.0.0.1:")[1].split()[0])
    amap = (vpcnet.map / "7_10.0.0.5").read_text()
    inner = eth(ymac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.7", 1000, 2000, b"x"))
    geneve = struct.pack("!BBHI", 0, 0, 0x6558, 7 << 8) + inner
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(geneve, ("127.0.0.1", port))
    s.close()
    assert dy.recv(300) is None
    assert y.stats()["drop_wrong_vni"] == 1, (amap, y.stats())


def test_antispoofing(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    # guest side: a source IP or MAC that is not the interface's own
    da.send(eth(bmac, amac, ETH_IP, icmp_echo("10.0.0.99", "10.0.0.6")))
    da.send(eth(bmac, b"\x02\x11\x22\x33\x44\x55", ETH_IP, icmp_echo("10.0.0.5", "10.0.0.6")))
    assert db.recv(300) is None
    assert a.stats()["drop_spoof_out"] == 2
    # underlay side: a datagram claiming to be from 10.0.0.5 but not from a's card
    bport = int((vpcnet.map / "7_10.0.0.6").read_text().split("underlay=127.0.0.1:")[1].split()[0])
    inner = eth(bmac, amac, ETH_IP, icmp_echo("10.0.0.5", "10.0.0.6"))
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.sendto(struct.pack("!BBHI", 0, 0, 0x6558, 7 << 8) + inner, ("127.0.0.1", bport))
    s.close()
    assert db.recv(300) is None
    assert b.stats()["drop_spoof_in"] == 1


def test_bad_frames_are_dropped_and_counted(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    gw = gateway_mac(da, amac, "10.0.0.5", "10.0.0.1")
    good = icmp_echo("10.0.0.5", "10.0.0.6")
    bad = [
        amac[:10],                                               # runt
        eth(bmac, amac, 0x8100, b"\x00\x05\x08\x00" + good),     # VLAN tag
        eth(bmac, amac, 0x86DD, b"\x60" + b"\0" * 60),           # IPv6
        eth(bmac, amac, ETH_IP, good[:30]),                      # truncated IP
        eth(bmac, amac, ETH_IP, ipv4("10.0.0.5", "10.0.0.6", 17, b"\0" * 20,
                                     flags_frag=0x2000)),         # fragment
        eth(bmac, amac, ETH_IP, b"\x46" + good[1:]),             # bad IHL / checksum
    ]
    for f in bad:
        da.send(f)
    assert db.recv(300) is None
    st = a.stats()
    dropped = sum(v for k, v in st.items() if k.startswith("drop_")) + st["virtio_tx_runt"]
    assert dropped >= len(bad), st
    # still serving
    da.send(eth(gw, amac, ETH_IP, good))
    assert db.recv(1000) is not None
    # malformed Geneve on the underlay
    bport = int((vpcnet.map / "7_10.0.0.6").read_text().split("underlay=127.0.0.1:")[1].split()[0])
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for g in (b"", b"\x00", b"\xc0" * 8, struct.pack("!BBHI", 0x3F, 0, 0x6558, 7 << 8)):
        s.sendto(g, ("127.0.0.1", bport))
    s.close()
    time.sleep(0.2)
    assert b.stats()["drop_bad_geneve"] >= 3
    assert db.recv(100) is None


def test_vanished_peer(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    db.close()
    assert b.stop() == 0
    assert not (vpcnet.map / "7_10.0.0.6").exists(), "the card removes its record at exit"
    time.sleep(0.1)  # inotify tells the other card
    da.send(eth(bmac, amac, ETH_IP, icmp_echo("10.0.0.5", "10.0.0.6")))
    assert a.stats()["drop_no_route"] >= 1
    vpcnet.cards.remove(b)


def test_address_in_use(vpcnet):
    vpcnet.card("a", 7, "10.0.0.5/24", driver=False)
    with pytest.raises(AssertionError, match="already in use"):
        vpcnet.card("a2", 7, "10.0.0.5/24", driver=False)
    vpcnet.cards = vpcnet.cards[:1]


def test_pps_allowance(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet, a={"extra": ["--pps", "50"]})
    da.burst(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 1000, 2000, b"x")), 60)
    got = db.recv_all(300)
    st = a.stats()
    assert st["pps_allowance_exceeded"] > 0, st
    assert 0 < len(got) < 60


def test_nitro_net_stats(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    da.send(eth(bmac, amac, ETH_IP, icmp_echo("10.0.0.5", "10.0.0.6")))
    assert db.recv(1000) is not None
    r = subprocess.run([str(NITRO), "net", "stats"], capture_output=True, text=True,
                       env=dict(os.environ, NITRO_STATE=str(vpcnet.state)), timeout=10)
    assert r.returncode == 0, r.stderr
    lines = sorted(r.stdout.splitlines())
    assert len(lines) == 2, r.stdout
    assert lines[0].startswith("vpc=7 ip=10.0.0.5 ") and lines[1].startswith("vpc=7 ip=10.0.0.6 ")
    for k in ("bw_in_allowance_exceeded=0", "bw_out_allowance_exceeded=0",
              "pps_allowance_exceeded=0", "conntrack_allowance_exceeded=0"):
        assert k in lines[0], lines[0]
    assert "tx_forwarded=1" in lines[0] and "rx_forwarded=1" in lines[1]


# ---- security groups ------------------------------------------------------------------

WEB_SG = "# web server: TCP 80 from the subnet, nothing else in; all out\ningress tcp 80 10.0.0.0/24\n"


def test_security_group_stateful(vpcnet, tmp_path):
    sg = tmp_path / "web.sg"
    sg.write_text(WEB_SG)
    (a, da, amac), (b, db, bmac) = pair(vpcnet, b={"sg": sg})
    # TCP 80 opens, and B's answer comes back to A (tracked by both cards)
    da.send(eth(bmac, amac, ETH_IP, tcp("10.0.0.5", "10.0.0.6", 40000, 80, flags=0x02)))
    f = db.recv(1000)
    assert f is not None and parse_ip(f)["dport"] == 80
    db.send(eth(amac, bmac, ETH_IP, tcp("10.0.0.6", "10.0.0.5", 80, 40000, flags=0x12,
                                        seq=5000, ack=1001)))
    g = da.recv(1000)
    assert g is not None and parse_ip(g)["tcp_flags"] == 0x12, "the reply of a tracked flow"
    # TCP 81, UDP 80 and ping are not opened
    da.send(eth(bmac, amac, ETH_IP, tcp("10.0.0.5", "10.0.0.6", 40001, 81, flags=0x02)))
    da.send(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 40002, 80, b"u")))
    da.send(eth(bmac, amac, ETH_IP, icmp_echo("10.0.0.5", "10.0.0.6")))
    assert db.recv(300) is None
    assert b.stats()["drop_sg_in"] == 3
    # B (not in the default group) cannot open a flow to A (default group: only members)
    db.send(eth(amac, bmac, ETH_IP, tcp("10.0.0.6", "10.0.0.5", 40003, 22, flags=0x02)))
    assert da.recv(300) is None
    assert a.stats()["drop_sg_in"] >= 1


def test_default_group_members_reach_each_other(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    for port in (22, 443, 5432):
        da.send(eth(bmac, amac, ETH_IP, tcp("10.0.0.5", "10.0.0.6", 40000 + port, port)))
        f = db.recv(1000)
        assert f is not None and parse_ip(f)["dport"] == port


def test_conntrack_table_full(vpcnet):
    (a, da, amac), (b, db, bmac) = pair(vpcnet, a={"extra": ["--conntrack-max", "2"]})
    # two UDP streams (sent, answered, sent again): assured flows fill A's table
    for port in (1001, 1002):
        da.send(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 5000, port, b"x")))
        assert db.recv(1000) is not None
        db.send(eth(amac, bmac, ETH_IP, udp("10.0.0.6", "10.0.0.5", port, 5000, b"y")))
        assert da.recv(1000) is not None
        da.send(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 5000, port, b"z")))
        assert db.recv(1000) is not None
    for port in (1003, 1004):
        da.send(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 5000, port, b"x")))
    got = db.recv_all(300)
    assert got == [], [parse_ip(f)["dport"] for f in got]
    st = a.stats()
    assert st["conntrack_allowance_exceeded"] == 2 and st["conntrack_allowance_available"] == 0
    assert st["conntrack_evicted"] == 0


def test_conntrack_evicts_unanswered_flows(vpcnet):
    """Flows nobody answered (half-open TCP, UDP into the void) make room for new ones,
    oldest first: a flood of them cannot lock the guest's new flows out (issue 10)."""
    (a, da, amac), (b, db, bmac) = pair(vpcnet, a={"extra": ["--conntrack-max", "2"]})
    for port in (1001, 1002, 1003, 1004):
        da.send(eth(bmac, amac, ETH_IP, tcp("10.0.0.5", "10.0.0.6", 40000, port, flags=0x02)))
    got = db.recv_all(300)
    assert [parse_ip(f)["dport"] for f in got] == [1001, 1002, 1003, 1004]
    st = a.stats()
    assert st["conntrack_evicted"] == 2 and st["conntrack_allowance_exceeded"] == 0


def test_unsealed_guest_memory_refused(vpcnet):
    """Issue 10 item 10: the VPC card mapped whatever memory a frontend offered; one that
    then truncated its memfd killed the card with SIGBUS. Every card now refuses memory
    not sealed against shrinking, and lives on for the next frontend."""
    c = vpcnet.card("a", 7, "10.0.0.5/24", driver=False)
    p = subprocess.run([str(DRIVER), "run", c.socket, "--no-seal"], input="quit\n",
                       capture_output=True, text=True, timeout=30)
    assert p.returncode != 0 and "ready" not in p.stdout, (p.stdout, p.stderr)
    assert c.proc.poll() is None, c.log()
    assert "not sealed against shrinking" in c.log(), c.log()
    d = Driver(c.socket)
    vpcnet.drivers.append(d)
    mac = mac_bytes(d.config()["mac"])
    d.send(arp_request(mac, "10.0.0.5", "10.0.0.1"))
    assert parse_arp(d.recv(1000)), "the card serves the next (sealed) frontend"


def test_crashed_card_removes_its_mapping_record(vpcnet):
    """A card killed by a fault (the SIGBUS of a truncated guest memfd) used to leave its
    mapping record behind, so peers kept sending to a dead address."""
    c = vpcnet.card("a", 7, "10.0.0.5/24", driver=False)
    rec = vpcnet.map / "7_10.0.0.5"
    assert rec.exists()
    c.proc.send_signal(signal.SIGBUS)
    assert c.proc.wait(timeout=10) == -signal.SIGBUS
    vpcnet.cards.remove(c)  # it was meant to die
    c.err.close()
    assert not rec.exists(), rec.read_text()


def test_bad_security_group_file(vpcnet, tmp_path):
    sg = tmp_path / "bad.sg"
    sg.write_text("ingress tcp 80 10.0.0.0/24\ningress tcp 99999 10.0.0.0/24\n")
    with pytest.raises(AssertionError, match=r"bad.sg:2"):
        vpcnet.card("a", 7, "10.0.0.5/24", sg=sg, driver=False)
    vpcnet.cards.clear()


def test_mapping_file_form(vpcnet, tmp_path):
    """A planned mapping file (as hosts that share no folder would use): fixed underlay
    ports and MACs; cards only read it, and pick up an edit."""
    pa, pb = free_port(socket.SOCK_DGRAM), free_port(socket.SOCK_DGRAM)
    amac, bmac = "02:00:00:00:0a:05", "02:00:00:00:0a:06"
    mp = tmp_path / "vpc.map"
    mp.write_text(f"# planned by hand\nvpc=7 ip=10.0.0.5 mac={amac} underlay=127.0.0.1:{pa} default_sg=1\n"
                  f"vpc=7 ip=10.0.0.6 mac={bmac} underlay=127.0.0.1:{pb} default_sg=1\n"
                  "this line is not a record\n")
    a, da = vpcnet.card("a", 7, "10.0.0.5/24", map_path=mp, underlay=f"127.0.0.1:{pa}",
                        extra=["--mac", amac])
    b, db = vpcnet.card("b", 7, "10.0.0.6/24", map_path=mp, underlay=f"127.0.0.1:{pb}",
                        extra=["--mac", bmac])
    ping = icmp_echo("10.0.0.5", "10.0.0.6")
    da.send(eth(mac_bytes(bmac), mac_bytes(amac), ETH_IP, ping))
    f = db.recv(1000)
    assert f is not None and f[14:] == ping
    assert "line 4" in a.log() or "mapping file" in a.log(), a.log()
    assert not (vpcnet.map).exists() or not any(vpcnet.map.iterdir()), "file form: no records written"
    # an edit that drops b: a stops sending to it
    mp.write_text(f"vpc=7 ip=10.0.0.5 mac={amac} underlay=127.0.0.1:{pa} default_sg=1\n")
    time.sleep(2.5)
    da.send(eth(mac_bytes(bmac), mac_bytes(amac), ETH_IP, ping))
    assert db.recv(300) is None
    assert a.stats()["drop_no_route"] >= 1


def test_burst_uses_gso_and_gro_without_corruption(vpcnet):
    """The driver's bench mode blasts one valid frame; the underlay batches them into UDP
    GSO sends, the receiver splits GRO buffers back: every datagram must still be a valid
    Geneve packet (no drop_bad_geneve / spoof / not_for_us) and arrive."""
    (a, da, amac), (b, db, bmac) = pair(vpcnet)
    da.close()
    db.close()
    vpcnet.drivers.clear()
    frame = eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 4000, 5000, bytes(18)))
    assert len(frame) == 60
    from conftest import DRIVER
    r = subprocess.run([str(DRIVER), "bench", "--tx", a.socket, "--rx", b.socket, "--frame",
                        frame.hex(), "--seconds", "1"], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0, r.stderr
    got = dict(w.split("=") for w in r.stdout.split())
    sa, sb = a.stats(), b.stats()
    assert int(got["received"]) > 1000, (got, sa, sb)
    assert sa["underlay_gso_sends"] > 0, sa
    assert 0 < sb["underlay_received"] <= sa["underlay_sent"]  # a full socket buffer drops
    bad = {k: v for k, v in sb.items() if k.startswith("drop_") and v}
    assert not bad, bad
    assert sb["rx_forwarded"] == sb["underlay_received"], sb
    # what the card put in the rx ring, less what was still there when the driver stopped
    delivered = sb["rx_forwarded"] - sb["virtio_rx_no_buffer"]
    assert 0 <= delivered - int(got["received"]) <= 256, (got, sb)


def test_bandwidth_allowance(vpcnet):
    """1 Mbit/s (bursts of 100 ms: 12.5 kB): 30 frames of 1.4 kB sent at once overflow it."""
    (a, da, amac), (b, db, bmac) = pair(vpcnet, a={"extra": ["--bandwidth", "1"]})
    da.burst(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 1000, 2000, bytes(1400))), 30)
    got = db.recv_all(300)
    st = a.stats()
    assert st["bw_out_allowance_exceeded"] > 0, st
    assert 0 < len(got) < 30 and st["bw_in_allowance_exceeded"] == 0
    assert b.stats()["bw_in_allowance_exceeded"] == 0


def test_sigusr1_prints_counters(vpcnet):
    c, d = vpcnet.card("a", 7, "10.0.0.5/24")
    mac = mac_bytes(d.config()["mac"])
    d.send(arp_request(mac, "10.0.0.5", "10.0.0.1"))
    assert d.recv() is not None
    c.proc.send_signal(signal.SIGUSR1)
    for _ in range(100):
        if "arp_replies=1" in c.log():
            break
        time.sleep(0.02)
    line = [ln for ln in c.log().splitlines() if "arp_replies=" in ln]
    assert line and line[0].startswith("nitro-card-vpc: vpc 7 10.0.0.5: "), c.log()
    assert "tx_packets=1 " in line[0] and "pps_allowance_exceeded=0" in line[0]


def test_multiqueue(vpcnet):
    """--queue-pairs 2: one pair until the driver sets 2 on the control queue (bad values
    are refused); frames leave from either tx queue; what arrives comes on one rx queue
    per sending card."""
    a, da = vpcnet.card("a", 7, "10.0.0.5/24", pairs=2, extra=["--queue-pairs", "2"])
    b, db = vpcnet.card("b", 7, "10.0.0.6/24", pairs=2, extra=["--queue-pairs", "2"])
    assert da.config()["pairs"] == "2"
    for bad in (0, 3):
        assert da.ctrl(4, 0, struct.pack("<H", bad)) == 1, f"VQ_PAIRS_SET {bad} must fail"
    assert da.ctrl(4, 0, b"\x02") == 1, "a short command fails"
    assert da.ctrl(9, 9) == 1, "an unknown class fails"
    assert da.ctrl(4, 0, struct.pack("<H", 2)) == 0 and db.ctrl(4, 0, struct.pack("<H", 2)) == 0
    amac, bmac = mac_bytes(da.config()["mac"]), mac_bytes(db.config()["mac"])
    pairs_seen = set()
    for q in (0, 1, 1, 0):
        da.send(eth(bmac, amac, ETH_IP, udp("10.0.0.5", "10.0.0.6", 1000 + q, 2000, b"q%d" % q)),
                pair=q)
        f = db.recv(1000)
        assert f is not None and parse_ip(f)["payload"][8:] == b"q%d" % q
        pairs_seen.add(db.last_pair)
    assert len(pairs_seen) == 1, "one sending card: one rx queue (its flows stay in order)"
    assert a.stats()["virtio_ctrl_ok"] == 1 and a.stats()["virtio_ctrl_err"] == 4
