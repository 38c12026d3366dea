"""Ethernet / ARP / IPv4 / ICMP / UDP / TCP / DHCP frames built and parsed byte by byte
for the VPC card tests (no third-party packet library: every field is spelled out)."""
import ipaddress
import struct

BROADCAST = b"\xff" * 6
ETH_IP = 0x0800
ETH_ARP = 0x0806


def mac_bytes(s):
    return bytes(int(x, 16) for x in s.split(":"))


def mac_str(b):
    return ":".join(f"{x:02x}" for x in b)


def ip_bytes(s):
    return ipaddress.IPv4Address(s).packed


def csum(data):
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack(f"!{len(data) // 2}H", data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def eth(dst, src, etype, payload):
    return dst + src + struct.pack("!H", etype) + payload


def arp_request(src_mac, src_ip, target_ip):
    body = struct.pack("!HHBBH", 1, ETH_IP, 6, 4, 1) + src_mac + ip_bytes(src_ip) + \
        b"\0" * 6 + ip_bytes(target_ip)
    return eth(BROADCAST, src_mac, ETH_ARP, body)


def parse_arp(frame):
    """-> dict with op, sha, spa, tha, tpa (or None if not ARP)."""
    if len(frame) < 42 or struct.unpack("!H", frame[12:14])[0] != ETH_ARP:
        return None
    htype, ptype, hlen, plen, op = struct.unpack("!HHBBH", frame[14:22])
    return dict(dst=frame[0:6], src=frame[6:12], htype=htype, ptype=ptype, hlen=hlen,
                plen=plen, op=op, sha=frame[22:28], spa=str(ipaddress.IPv4Address(frame[28:32])),
                tha=frame[32:38], tpa=str(ipaddress.IPv4Address(frame[38:42])))


def ipv4(src, dst, proto, payload, ttl=64, ident=1, flags_frag=0x4000, tos=0):
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, tos, 20 + len(payload), ident, flags_frag, ttl,
                      proto, 0, ip_bytes(src), ip_bytes(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    return hdr + payload


def _pseudo(src, dst, proto, length):
    return ip_bytes(src) + ip_bytes(dst) + struct.pack("!BBH", 0, proto, length)


def udp(src, dst, sport, dport, data):
    u = struct.pack("!HHHH", sport, dport, 8 + len(data), 0) + data
    c = csum(_pseudo(src, dst, 17, len(u)) + u) or 0xFFFF
    return ipv4(src, dst, 17, u[:6] + struct.pack("!H", c) + u[8:])


def tcp(src, dst, sport, dport, flags=0x02, seq=1000, ack=0, data=b""):
    t = struct.pack("!HHIIBBHHH", sport, dport, seq, ack, 5 << 4, flags, 65535, 0, 0) + data
    c = csum(_pseudo(src, dst, 6, len(t)) + t)
    return ipv4(src, dst, 6, t[:16] + struct.pack("!H", c) + t[18:])


def icmp_echo(src, dst, ident=0x1234, seq=1, data=b"nitro-ping", reply=False):
    i = struct.pack("!BBHHH", 0 if reply else 8, 0, 0, ident, seq) + data
    i = i[:2] + struct.pack("!H", csum(i)) + i[4:]
    return ipv4(src, dst, 1, i)


def parse_ip(frame):
    """-> dict(src, dst, proto, ttl, payload, ...) for an IPv4 frame, else None."""
    if len(frame) < 34 or struct.unpack("!H", frame[12:14])[0] != ETH_IP:
        return None
    p = frame[14:]
    ihl = (p[0] & 15) * 4
    total = struct.unpack("!H", p[2:4])[0]
    d = dict(dst_mac=frame[0:6], src_mac=frame[6:12], ihl=ihl, total=total, ttl=p[8],
             proto=p[9], hdr_ok=csum(p[:ihl]) == 0,
             src=str(ipaddress.IPv4Address(p[12:16])), dst=str(ipaddress.IPv4Address(p[16:20])),
             payload=p[ihl:total])
    if d["proto"] in (6, 17) and len(d["payload"]) >= 4:
        d["sport"], d["dport"] = struct.unpack("!HH", d["payload"][:4])
    if d["proto"] == 6 and len(d["payload"]) >= 14:
        d["tcp_flags"] = d["payload"][13]
    return d


# ---- DHCP ----------------------------------------------------------------------------

DHCP_MAGIC = b"\x63\x82\x53\x63"
DISCOVER, OFFER, REQUEST, DECLINE, ACK, NAK, RELEASE = 1, 2, 3, 4, 5, 6, 7


def dhcp(mac, msg_type, xid=0x3903F326, requested=None, server=None, ciaddr="0.0.0.0"):
    bootp = struct.pack("!BBBBIHH", 1, 1, 6, 0, xid, 0, 0x8000) + ip_bytes(ciaddr) + \
        b"\0" * 12 + mac + b"\0" * 10 + b"\0" * 192 + DHCP_MAGIC
    opts = bytes([53, 1, msg_type])
    if requested:
        opts += bytes([50, 4]) + ip_bytes(requested)
    if server:
        opts += bytes([54, 4]) + ip_bytes(server)
    opts += bytes([55, 5, 1, 3, 6, 26, 51]) + b"\xff"
    payload = bootp + opts
    src = ciaddr
    return eth(BROADCAST, mac, ETH_IP, udp(src, "255.255.255.255", 68, 67, payload))


def parse_dhcp(frame):
    """-> dict(op, xid, yiaddr, chaddr, options{code: bytes}) or None."""
    ip = parse_ip(frame)
    if not ip or ip["proto"] != 17 or ip.get("sport") != 67 or ip.get("dport") != 68:
        return None
    b = ip["payload"][8:]
    if len(b) < 240 or b[236:240] != DHCP_MAGIC:
        return None
    opts, i = {}, 240
    while i < len(b) and b[i] != 255:
        if b[i] == 0:
            i += 1
            continue
        if i + 1 >= len(b):
            break
        code, ln = b[i], b[i + 1]
        opts[code] = b[i + 2:i + 2 + ln]
        i += 2 + ln
    return dict(ip=ip, op=b[0], xid=struct.unpack("!I", b[4:8])[0],
                yiaddr=str(ipaddress.IPv4Address(b[16:20])), chaddr=b[28:34], options=opts)
