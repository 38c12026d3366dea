"""Two "hosts": two network namespaces joined by a veth pair (10.199.x.1 <-> 10.199.x.2,
MTU 1500) as the underlay, one card in each (--underlay its namespace's address), a
mapping directory both see (as hosts sharing one). The guests (the test driver, in the
root namespace: vhost-user sockets are files) talk across it. Needs root and `ip`."""
import os
import shutil
import subprocess

import pytest

from frames import ETH_IP, eth, icmp_echo, mac_bytes, parse_ip, udp


def sh(*args):
    subprocess.run(args, check=True, capture_output=True, timeout=20)


@pytest.fixture
def two_hosts():
    if os.geteuid() != 0 or not shutil.which("ip"):
        pytest.skip("needs root and iproute2")
    tag = f"{os.getpid() % 100000}"
    net = (os.getpid() % 200) + 20
    ns = [f"nvpc{tag}a", f"nvpc{tag}b"]
    ips = [f"10.{net}.99.1", f"10.{net}.99.2"]
    veth = [f"vv{tag}a", f"vv{tag}b"]
    try:
        for n in ns:
            sh("ip", "netns", "add", n)
            sh("ip", "-n", n, "link", "set", "lo", "up")
        sh("ip", "link", "add", veth[0], "type", "veth", "peer", "name", veth[1])
        for i in range(2):
            sh("ip", "link", "set", veth[i], "netns", ns[i])
            sh("ip", "-n", ns[i], "addr", "add", ips[i] + "/24", "dev", veth[i])
            sh("ip", "-n", ns[i], "link", "set", veth[i], "up")
        yield ns, ips
    finally:
        for n in ns:
            subprocess.run(["ip", "netns", "del", n], capture_output=True, timeout=20)


def test_two_hosts_over_veth(vpcnet, two_hosts, tmp_path):
    ns, ips = two_hosts
    shared = tmp_path / "shared-map"
    a, da = vpcnet.card("a", 9, "10.0.0.5/24", netns=ns[0], underlay=ips[0], map_path=shared)
    b, db = vpcnet.card("b", 9, "10.0.0.6/24", netns=ns[1], underlay=ips[1], map_path=shared)
    rec = (shared / "9_10.0.0.6").read_text()
    assert f"underlay={ips[1]}:" in rec, rec
    amac, bmac = mac_bytes(da.config()["mac"]), mac_bytes(db.config()["mac"])
    ping = icmp_echo("10.0.0.5", "10.0.0.6", seq=7)
    da.send(eth(bmac, amac, ETH_IP, ping))
    f = db.recv(2000)
    assert f is not None, f"a={a.stats()} b={b.stats()} {a.log()} {b.log()}"
    assert f[14:] == ping and f[6:12] == amac
    db.send(eth(amac, bmac, ETH_IP, icmp_echo("10.0.0.6", "10.0.0.5", seq=7, reply=True)))
    assert da.recv(2000) is not None
    # a jumbo frame (VPC MTU 9001) crosses the 1500-byte underlay (IP fragments it)
    big = udp("10.0.0.5", "10.0.0.6", 7000, 7001, bytes(range(256)) * 30)
    da.send(eth(bmac, amac, ETH_IP, big))
    g = db.recv(2000)
    assert g is not None and g[14:] == big
    assert a.stats()["underlay_sent"] >= 2 and b.stats()["underlay_received"] >= 2
    assert parse_ip(g)["total"] == len(big)
