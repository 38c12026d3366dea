"""VPC networking between stock guests: `nitro run --nic` starts one nitro-card-vpc per
interface; the guests' virtio-net queues go straight to it (vhost-user) and the cards
find each other through the host-local mapping service under $NITRO_STATE.

Three guests run at once (started in the background; each guest's nitro_exec script
sequences itself with loops): G1 (VPC 1, 10.0.0.5, ping allowed in, 2 vCPUs: 2 queue
pairs) and G2 (VPC 1,
10.0.0.6, a security group opening TCP 8080 and ICMP but not 9090) get their addresses
by DHCP (busybox udhcpc) and ping each other; G3 (VPC 2, 10.0.0.5: the same address as
G1) cannot reach 10.0.0.6. G1 then connects with busybox nc to G2's 8080 (allowed) and
9090 (dropped by the security group). Run in the emulated host with --memory 6144:
    build/nitro emuhost --memory 6144 -- /usr/bin/python3 -m pytest -v tests/system/test_vpc.py
"""
import functools
import http.server
import os
import pathlib
import re
import subprocess
import sys
import threading
import time

from conftest import NITRO, cmdline

SG = """# G2: web on 8080 and ping from the subnet; nothing else comes in
ingress tcp 8080 10.0.0.0/24
ingress icmp all 10.0.0.0/24
"""
# G1: ping from the subnet (G2 is not in the VPC's default group, whose members accept
# only each other, as in AWS)
SG1 = "ingress icmp all 10.0.0.0/24\n"

DHCP = "udhcpc -i eth0 -n -q -t 20 -T 2 -O mtu"

# IMDSv2 from a stock busybox guest: the token by a hand-written PUT over nc (busybox wget
# cannot PUT), then wget with the token header; a GET without the token must get 401.
# (No double quotes: the script travels in the kernel command line's nitro_exec="...".)
IMDS = ("T=$(printf 'PUT /latest/api/token HTTP/1.0\\r\\n"
        "X-aws-ec2-metadata-token-ttl-seconds: 60\\r\\n\\r\\n' "
        "| timeout 15 nc -w 5 169.254.169.254 80 | tail -n 1); echo IMDS-TOKEN-LEN=${#T}; "
        "echo IMDS-IID=$(wget -q -O - --header X-aws-ec2-metadata-token:$T "
        "http://169.254.169.254/latest/meta-data/instance-id); "
        "echo IMDS-UD=$(wget -q -O - --header X-aws-ec2-metadata-token:$T "
        "http://169.254.169.254/latest/user-data); "
        "wget -q -O - http://169.254.169.254/latest/meta-data/instance-id; echo IMDS-NOTOKEN=$?; ")

G1 = (DHCP + "; ip -4 addr show eth0; ip route; " + IMDS +
      "i=0; until ping -c 1 -W 1 10.0.0.6 >/dev/null; do i=$((i+1)); [ $i -gt 150 ] && break; done; "
      "ping -c 3 -W 2 10.0.0.6; echo G1-PING=$?; "
      "echo hello-b | timeout 15 nc -w 5 10.0.0.6 9090; echo G1-NC-B=$?; "
      "echo hello-a | timeout 15 nc -w 5 10.0.0.6 8080; echo G1-NC-A=$?; sleep 3")

G2 = (DHCP + "; ip -4 addr show eth0; "
      "nc -l -p 9090 > /tmp/b & nc -l -p 8080 > /tmp/a & "
      "i=0; until ping -c 1 -W 1 10.0.0.5 >/dev/null; do i=$((i+1)); [ $i -gt 150 ] && break; done; "
      "ping -c 2 -W 2 10.0.0.5; echo G2-PING=$?; "
      "i=0; while [ ! -s /tmp/a ] && [ $i -lt 300 ]; do sleep 1; i=$((i+1)); done; "
      "sleep 2; echo G2-GOT-A=$(cat /tmp/a) G2-GOT-B=$(cat /tmp/b)")

G3 = (DHCP + "; ip -4 addr show eth0; "
      "i=0; while [ $i -lt 20 ]; do ping -c 1 -W 1 10.0.0.6 >/dev/null && echo G3-REACHED; "
      "i=$((i+1)); done; echo G3-DONE")


def start(env, nic, script, log, cpus=1, extra=()):
    f = open(log, "w")
    p = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--memory", "192", "--cpus",
                          str(cpus), "--nic", nic, "--cmdline", cmdline(script), *extra],
                         stdin=subprocess.DEVNULL, stdout=f,
                         stderr=subprocess.STDOUT, env=env)
    return p, f


def test_three_guests_dhcp_ping_isolation_and_security_group(tmp_path):
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    sg = tmp_path / "web.sg"
    sg.write_text(SG)
    sg1 = tmp_path / "ping.sg"
    sg1.write_text(SG1)
    runs = {}
    try:
        runs["g2"] = start(env, f"vpc=1,ip=10.0.0.6,sg={sg}", G2, tmp_path / "g2.log")
        time.sleep(2)
        ud = tmp_path / "user-data"
        ud.write_text("nitro-user-data-42")
        runs["g1"] = start(env, f"vpc=1,ip=10.0.0.5,sg={sg1}", G1, tmp_path / "g1.log", cpus=2,
                           extra=["--instance-id", "i-0abcdef0123456789", "--user-data", str(ud)])
        time.sleep(2)
        runs["g3"] = start(env, "vpc=2,ip=10.0.0.5", G3, tmp_path / "g3.log")
        deadline = time.time() + 900
        for name, (p, f) in runs.items():
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        for p, f in runs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
            f.close()
    out = {n: (tmp_path / f"{n}.log").read_text(errors="replace") for n in runs}
    every = "\n".join(f"--- {n}\n{o[-4000:]}" for n, o in out.items())
    for n, (p, f) in runs.items():
        assert p.returncode == 0, f"{n} exited {p.returncode}\n{every}"
        assert "nitro guest: exec status" in out[n], every
    # DHCP gave each guest its address, the router and the MTU
    assert "udhcpc: eth0 10.0.0.5/24 router 10.0.0.1" in out["g1"], every
    assert "udhcpc: eth0 10.0.0.6/24 router 10.0.0.1" in out["g2"], every
    assert "udhcpc: eth0 10.0.0.5/24 router 10.0.0.1" in out["g3"], every
    # G1 <-> G2 in VPC 1
    assert "G1-PING=0" in out["g1"], every
    assert "G2-PING=0" in out["g2"], every
    # G3 (VPC 2, same address as G1) never reaches VPC 1's 10.0.0.6
    # (the kernel echoes its command line, script included: match whole output lines)
    assert re.search(r"^G3-DONE", out["g3"], re.M), every
    assert not re.search(r"^G3-REACHED", out["g3"], re.M), every
    # G1 has 2 vCPUs: its card offers 2 queue pairs and Linux turned both on (control queue)
    assert "virtio_ctrl_ok=1 " in out["g1"], every
    # the security group: 8080 open, 9090 closed
    assert "G1-NC-A=0" in out["g1"], every
    assert "G1-NC-B=0" not in out["g1"], every
    assert "G2-GOT-A=hello-a" in out["g2"], every
    assert "hello-b" not in out["g2"], every
    # IMDS through the default router: token, instance id and user data; 401 without token
    assert re.search(r"^IMDS-TOKEN-LEN=56", out["g1"], re.M), every
    assert re.search(r"^IMDS-IID=i-0abcdef0123456789\r?$", out["g1"], re.M), every
    assert re.search(r"^IMDS-UD=nitro-user-data-42\r?$", out["g1"], re.M), every
    assert re.search(r"^IMDS-NOTOKEN=1", out["g1"], re.M), every


# The VPC resolver and the time server (issue 15 item 4), from a stock busybox guest whose
# initramfs also has tests/system/sntp.c (build/vpc-guest.img): R1 resolves R2's instance
# name through the resolver DHCP named (base + 2) and through 169.254.169.253, its PTR,
# gets NXDOMAIN for a name no instance has, then sets its clock 20 years back and steps it
# from 169.254.169.123.
VPC_IMG = NITRO.parent / "vpc-guest.img"
NAME = "ip-10-0-0-6.us-east-1.compute.internal"

R1 = (DHCP + "; cat /etc/resolv.conf; "
      "i=0; until nslookup " + NAME + " >/tmp/a 2>&1; do i=$((i+1)); [ $i -gt 30 ] && break; "
      "sleep 1; done; cat /tmp/a; "
      "nslookup " + NAME + " 169.254.169.253; "
      "nslookup 10.0.0.6; "
      "nslookup ip-10-0-0-9.us-east-1.compute.internal; echo R1-NX=$?; "
      "date -s '2006-01-02 03:04:05' >/dev/null; echo R1-BEFORE=$(date +%s); "
      "sntp -s 169.254.169.123; echo R1-SNTP=$?; echo R1-AFTER=$(date +%s)")
R2 = DHCP + "; sleep 60"


def test_resolver_and_time_server(tmp_path):
    assert VPC_IMG.exists(), "make build/vpc-guest.img"
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    runs = {}
    try:
        runs["r2"] = start(env, "vpc=1,ip=10.0.0.6", R2, tmp_path / "r2.log",
                           extra=["--initrd", str(VPC_IMG)])
        time.sleep(2)
        runs["r1"] = start(env, "vpc=1,ip=10.0.0.5", R1, tmp_path / "r1.log",
                           extra=["--initrd", str(VPC_IMG)])
        p, f = runs["r1"]
        p.wait(timeout=600)
        host_after = time.time()
    finally:
        for p, f in runs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
            f.close()
    out = (tmp_path / "r1.log").read_text(errors="replace")
    assert runs["r1"][0].returncode == 0, out[-5000:]
    # DHCP: the resolver at base + 2 and the domain of the instance names
    assert re.search(r"^search us-east-1\.compute\.internal", out, re.M), out[-5000:]
    assert re.search(r"^nameserver 10\.0\.0\.2", out, re.M), out[-5000:]
    # the name, through both addresses of the resolver
    assert len(re.findall(r"^Name:\s+" + re.escape(NAME) + r"\s*\nAddress: 10\.0\.0\.6", out,
                          re.M)) == 2, out[-5000:]
    assert re.search(r"^Address:\s+169\.254\.169\.253", out, re.M), out[-5000:]
    # the PTR of its address
    assert re.search(r"6\.0\.0\.10\.in-addr\.arpa\s+name = " + re.escape(NAME), out), out[-5000:]
    # no such instance
    assert "NXDOMAIN" in out and re.search(r"^R1-NX=1", out, re.M), out[-5000:]
    # time: 2006 before, the host's time after (the guest printed it before we read ours)
    before = int(re.search(r"^R1-BEFORE=(\d+)", out, re.M).group(1))
    after = int(re.search(r"^R1-AFTER=(\d+)", out, re.M).group(1))
    assert before < 1200000000, out[-3000:]
    assert re.search(r"^sntp: stratum 3 offset", out, re.M), out[-3000:]
    assert re.search(r"^R1-SNTP=0", out, re.M), out[-3000:]
    assert host_after - 120 < after <= host_after + 1, (after, host_after, out[-3000:])


# ---- the internet gateway (issue 15 item 5) ----------------------------------------------

KMODS = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache/nitro")) / "apt/root/usr/lib/modules"


def _sh(*a):
    subprocess.run(a, check=True, capture_output=True)


def _outside_host(tmp_path):
    """Another host as the emulated host sees it: a network namespace joined by a veth pair
    (10.197.0.1 here, 10.197.0.2 there: this host's own address is never a gateway
    destination) with web servers on 8080 and 8081. The emulated host loads veth from the
    Debian kernel package the images were built from."""
    ko = next(KMODS.glob("*/kernel/drivers/net/veth.ko*"), None)
    if ko is not None and not pathlib.Path("/sys/module/veth").exists():
        subprocess.run(["insmod", str(ko)], capture_output=True)
    subprocess.run(["ip", "netns", "del", "igwout"], capture_output=True)
    _sh("ip", "netns", "add", "igwout")
    _sh("ip", "link", "add", "igwa", "type", "veth", "peer", "name", "igwb")
    _sh("ip", "link", "set", "igwb", "netns", "igwout")
    _sh("ip", "addr", "add", "10.197.0.1/24", "dev", "igwa")
    _sh("ip", "link", "set", "igwa", "up")
    _sh("ip", "-n", "igwout", "addr", "add", "10.197.0.2/24", "dev", "igwb")
    _sh("ip", "-n", "igwout", "link", "set", "igwb", "up")
    _sh("ip", "-n", "igwout", "link", "set", "lo", "up")
    www = tmp_path / "www-outside"
    www.mkdir()
    (www / "index.html").write_text("nitro-outside-page")
    return [subprocess.Popen(["ip", "netns", "exec", "igwout", sys.executable, "-m",
                              "http.server", str(port), "--bind", "10.197.0.2",
                              "--directory", str(www)],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            for port in (8080, 8081)]


def test_internet_gateway_router_alias_outside_and_security_group(tmp_path):
    """G-IGW (VPC 3, created with --internet-gateway) fetches a page from a server on the
    emulated host's loopback through the router address 10.3.0.1 and one from an outside
    host (10.197.0.2:8080); its security group's egress rules keep 8081 closed. G-NO (VPC
    4, no gateway) reaches neither: traffic outside its VPC is dropped as before."""
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "state"))
    p = subprocess.run([str(NITRO), "vpc", "create", "3", "--cidr", "10.3.0.0/16",
                        "--internet-gateway"], env=env, capture_output=True, text=True)
    assert p.returncode == 0 and "igw=1" in p.stdout, p.stdout + p.stderr
    www = tmp_path / "www-lo"
    www.mkdir()
    (www / "page.txt").write_text("nitro-loopback-page")
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(www))
    lo = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=lo.serve_forever, daemon=True).start()
    port = lo.server_address[1]
    servers = _outside_host(tmp_path)
    sg = tmp_path / "igw.sg"
    sg.write_text(f"egress tcp {port} 10.3.0.1/32\negress tcp 8080 10.197.0.0/24\n")
    wget = "timeout 30 wget -q -O -"  # (busybox wget -T crashes: SIGSEGV)
    g_igw = (DHCP + "; cat /etc/resolv.conf; "
             f"echo IGW-LO=$({wget} http://10.3.0.1:{port}/page.txt); "
             f"echo IGW-OUT=$({wget} http://10.197.0.2:8080/); "
             f"{wget} http://10.197.0.2:8081/; echo IGW-SG=$?; sleep 1")
    g_no = (DHCP + "; "
            f"{wget} http://10.4.0.1:{port}/page.txt; echo NOGW-LO=$?; "
            f"{wget} http://10.197.0.2:8080/; echo NOGW-OUT=$?; sleep 1")
    runs = {}
    try:
        runs["igw"] = start(env, f"vpc=3,ip=10.3.0.5/24,sg={sg}", g_igw, tmp_path / "igw.log")
        runs["no"] = start(env, "vpc=4,ip=10.4.0.5/24", g_no, tmp_path / "no.log")
        deadline = time.time() + 900
        for name, (p, f) in runs.items():
            p.wait(timeout=max(1, deadline - time.time()))
    finally:
        for p, f in runs.values():
            if p.poll() is None:
                p.terminate()
                p.wait(timeout=30)
            f.close()
        for s in servers:
            s.kill()
            s.wait()
        lo.shutdown()
        subprocess.run(["ip", "link", "del", "igwa"], capture_output=True)
        subprocess.run(["ip", "netns", "del", "igwout"], capture_output=True)
    out = {n: (tmp_path / f"{n}.log").read_text(errors="replace") for n in runs}
    every = "\n".join(f"--- {n}\n{o[-4000:]}" for n, o in out.items())
    for n, (p, f) in runs.items():
        assert p.returncode == 0, f"{n} exited {p.returncode}\n{every}"
    assert "udhcpc: eth0 10.3.0.5/24 router 10.3.0.1" in out["igw"], every
    assert "compute.internal" in out["igw"], every  # the DHCP domain (local-hostname's)
    assert re.search(r"^IGW-LO=nitro-loopback-page\r?$", out["igw"], re.M), every
    assert re.search(r"^IGW-OUT=nitro-outside-page\r?$", out["igw"], re.M), every
    # (a dropped SYN: wget waits until timeout ends it; any failure status will do)
    assert re.search(r"^IGW-SG=[1-9]", out["igw"], re.M), every
    assert re.search(r"^NOGW-LO=[1-9]", out["no"], re.M), every
    assert re.search(r"^NOGW-OUT=[1-9]", out["no"], re.M), every
