"""Attacks on nitrod's API socket and its client (issue 10 items 3, 11, 14, 16): each test
performs the attack and fails on the code before the fix (docs/security.md, "Attacks")."""
import json
import os
import re
import socket
import sqlite3
import subprocess
import time

import pytest

from conftest import BUILD, NITRO, Nitrod
from nitrotest import as_uid, collect, read_until_closed, spawn_as

NOBODY = 65534
root_only = pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")


def failed_instance(d, kernel, **extra):
    spec = {"kernel": kernel, "initrd": None, "memory_mib": 128}
    spec.update(extra)
    r = d.call("POST", "/v1/instances", spec)
    assert r.status == 201, r
    return d.wait_state(r.json()["id"], {"failed"})


def audit_fields(line):
    return dict(f.split("=", 1) for f in line.split(" ")[1:] if "=" in f)


# --- item 3: one local user locking everyone out of the API ---

SLOW_HEAD = b"GET /v1/instances HTTP/1.1\r\nHost: x\r\nX-Slow: "


def slowloris(sock, n, seconds):
    """Opens n connections and trickles one header byte per connection every 0.2 s for
    `seconds`, never finishing a request. Reports, per connection, when nitrod closed it
    (a send failed: seconds after its connect, None if never) and the start of what
    nitrod sent."""
    conns = []
    for _ in range(n):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.setblocking(False)
        give_up = time.monotonic() + 2
        while True:
            try:
                s.connect(sock)
                break
            except BlockingIOError:  # the listen backlog is full: nitrod accepts no more
                if time.monotonic() > give_up:
                    break
                time.sleep(0.01)
        conns.append({"s": s, "t0": time.monotonic(), "sent": 0, "closed": None, "got": b""})
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        for c in conns:
            if c["closed"] is not None:
                continue
            try:
                data = c["s"].recv(4096)
                c["got"] += data  # b"": nitrod sent all it will; it may still read
            except BlockingIOError:
                pass
            except OSError:
                c["closed"] = time.monotonic() - c["t0"]
            if c["closed"] is None:
                b = SLOW_HEAD[c["sent"]:c["sent"] + 1] or b"a"
                try:
                    c["s"].send(b)
                    c["sent"] += 1
                except OSError:
                    c["closed"] = time.monotonic() - c["t0"]
                    try:  # what nitrod sent before it closed
                        c["got"] += c["s"].recv(4096)
                    except OSError:
                        pass
        time.sleep(0.2)
    for c in conns:
        c["s"].close()
    return [{"closed": c["closed"], "got": c["got"][:200].decode(errors="replace"),
             "sent": c["sent"]} for c in conns]


def refusal_count(line):
    """How many refusals one ACCEPT (or EVICT) audit line stands for: its own and those not
    logged before it (a uid's evictions and refusals share one count)."""
    detail = audit_fields(line)["detail"].replace("%20", " ")
    m = re.search(r"(?:refused|evicted) \((\d+) more refusals not logged\)$", detail)
    return 1 + (int(m.group(1)) if m else 0)


@root_only
def test_600_slow_connections_of_one_uid_do_not_lock_root_out(folder):
    d = Nitrod(folder, extra=["--allow-uid", str(NOBODY), "--request-deadline", "3"]).start()
    try:
        flood = spawn_as(NOBODY, lambda: slowloris(d.sock, 600, 6.0))
        time.sleep(1.0)  # the flood is connected and trickling
        slowest = 0.0
        for _ in range(20):
            t = time.monotonic()
            try:
                r = d.call("GET", "/v1/instances", timeout=3)
                assert r.status == 200, r
            except OSError as e:  # timed out: root is locked out
                slowest = max(slowest, 99.0)
                print(f"root request failed during the flood: {e!r}")
            slowest = max(slowest, time.monotonic() - t)
            time.sleep(0.1)
        conns = collect(flood)
        assert slowest < 1.0, f"a root request took {slowest:.2f} s during the flood"
        # The count of the refusals not logged comes with the uid's next refusal line,
        # a second on: 17 connections, the 17th refused.
        time.sleep(1.1)
        late = collect(spawn_as(NOBODY, lambda: slowloris(d.sock, 17, 0.5)))
        assert sum(c["closed"] is not None and c["closed"] < 0.5 for c in late) == 1, late
    finally:
        d.stop()
    refused = [c for c in conns if c["closed"] is not None and c["closed"] < 1.0]
    kept = [c for c in conns if c not in refused]
    # At most 16 (the per-uid default) were admitted; every other one was refused at
    # accept with a 429 waiting in its socket.
    assert len(kept) == 16, (len(kept), len(refused))
    assert all(c["got"].startswith("HTTP/1.1 429 ") for c in refused), \
        [c["got"] for c in refused if not c["got"].startswith("HTTP/1.1 429 ")][:3]
    # The admitted ones trickled a header byte every 0.2 s (MHD's idle timeout never
    # fires) and were closed at the 3 s request deadline.
    for c in kept:
        assert c["closed"] is not None and 2.5 <= c["closed"] <= 5.0, c
        assert c["got"] == "", c  # no answer: just closed
        assert c["sent"] >= 10, c
    lines = d.audit_lines()
    accept = [l for l in lines if f" uid={NOBODY} method=ACCEPT " in l]
    assert accept and all("status=429" in l for l in accept), accept[:3]
    # Rate-limited: a handful of lines (one per second at most), yet every refusal counted.
    assert len(accept) <= 8, len(accept)
    assert sum(refusal_count(l) for l in accept) == len(refused) + 1, accept
    deadline = [l for l in lines if f" uid={NOBODY} " in l and "status=408" in l]
    assert len(deadline) == 16 and all("request%20deadline" in l for l in deadline), deadline[:3]
    v = subprocess.run([str(BUILD / "nitro-audit-verify"), str(d.state / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v


def test_a_body_trickled_byte_by_byte_is_cut_at_the_deadline(folder):
    # Every read resets the idle timeout (10 s); the request deadline (2 s) does not move.
    d = Nitrod(folder, extra=["--request-deadline", "2"]).start()
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(d.sock)
        t0 = time.monotonic()
        s.sendall(b"POST /v1/volumes HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n")
        s.setblocking(False)
        closed = None
        while closed is None and time.monotonic() - t0 < 8:
            try:
                s.send(b" ")
                if s.recv(100) == b"":
                    closed = time.monotonic() - t0
            except BlockingIOError:
                pass
            except OSError:
                closed = time.monotonic() - t0
            time.sleep(0.2)
        s.close()
        assert closed is not None and 1.5 <= closed <= 4, closed
        time.sleep(0.2)
        line = [l for l in d.audit_lines() if "method=POST" in l][-1]
        f = audit_fields(line)
        assert f["status"] == "408" and f["route"] == "/v1/volumes", line
        assert "request%20deadline" in f["detail"], line
        assert d.call("GET", "/v1/volumes").json()["volumes"] == []
    finally:
        d.stop()


@root_only
def test_roots_reserved_slots(folder):
    # Even with no per-uid cap to speak of, other uids get at most 64 - 32 connections.
    d = Nitrod(folder, extra=["--allow-uid", str(NOBODY), "--max-connections", "64",
                              "--max-conn-per-uid", "1000", "--request-deadline", "30"]).start()
    try:
        flood = spawn_as(NOBODY, lambda: slowloris(d.sock, 100, 3.0))
        time.sleep(1.0)
        held = [socket.socket(socket.AF_UNIX) for _ in range(20)]  # root's own idle ones
        for s in held:
            s.connect(d.sock)
        t = time.monotonic()
        r = d.call("GET", "/v1/volumes", timeout=5)
        assert r.status == 200 and time.monotonic() - t < 1.0, r
        conns = collect(flood)
        for s in held:
            s.close()
    finally:
        d.stop()
    refused = [c for c in conns if c["closed"] is not None and c["closed"] < 1.0]
    assert len(conns) - len(refused) == 32, len(refused)
    assert all(c["got"].startswith("HTTP/1.1 503 ") for c in refused), refused[:2]
    assert "kept for root" in refused[0]["got"], refused[0]
    assert any(f" uid={NOBODY} method=ACCEPT " in l and "status=503" in l for l in d.audit_lines())


@root_only
def test_a_uid_not_allowed_is_refused_before_it_sends_anything(folder):
    d = Nitrod(folder, extra=["--allow-uid", "4242", "--request-deadline", "2"]).start()
    try:
        out = as_uid(4243, lambda: read_until_closed(d.sock))

        # The client names the refusal, though nitrod closed before it sent its request.
        def cli():
            return [subprocess.run([str(NITRO), "--host", d.sock, "instances", "list"],
                                   capture_output=True, text=True, timeout=30).stderr
                    for _ in range(10)]
        errs = as_uid(4243, cli)

        # Its connections wait only to drop what it sends, 16 at most, until the deadline.
        flood = spawn_as(4243, lambda: slowloris(d.sock, 100, 3.5))
        time.sleep(0.5)
        t = time.monotonic()
        assert d.call("GET", "/v1/volumes", timeout=5).status == 200
        assert time.monotonic() - t < 1.0
        conns = collect(flood)
    finally:
        d.stop()
    assert out.startswith("HTTP/1.1 403 ") and "this uid may not use nitrod" in out, out
    assert set(errs) == {"nitro: this uid may not use nitrod\n"}, errs
    assert all(c["got"].startswith("HTTP/1.1 403 ") for c in conns), conns[:2]
    lingered = [c for c in conns if c["closed"] is None or c["closed"] >= 1.0]
    assert len(lingered) == 16, len(lingered)
    assert all(c["closed"] is not None and 1.5 <= c["closed"] <= 3.5 for c in lingered), lingered
    assert any(" uid=4243 method=ACCEPT " in l and "status=403" in l for l in d.audit_lines())


@root_only
def test_many_uids_not_allowed_do_not_lock_out_an_allowed_uid(folder):
    # A user with a subordinate uid range (newuidmap: 65536 uids) connects from many uids
    # none of which is allowed. Before: each uid kept 16 connections until the deadline,
    # 40 uids held all 480 slots but root's and the allowed uid 4242 got 503.
    d = Nitrod(folder, extra=["--allow-uid", "4242", "--request-deadline", "6"]).start()
    try:
        floods = [spawn_as(5000 + i, lambda: slowloris(d.sock, 16, 4.0)) for i in range(40)]
        time.sleep(2.0)
        t = time.monotonic()
        r = as_uid(4242, lambda: [d.call("GET", "/v1/volumes", timeout=5).status for _ in range(3)])
        took = time.monotonic() - t
        conns = [c for f in floods for c in collect(f)]
    finally:
        d.stop()
    assert r == [200, 200, 200], r
    assert took < 2.0, took
    assert all(c["got"].startswith("HTTP/1.1 403 ") or c["got"] == "" for c in conns), conns[:2]
    kept = [c for c in conns if c["closed"] is None or c["closed"] >= 1.0]
    assert len(kept) <= 16, len(kept)


@root_only
def test_many_allowed_uids_do_not_lock_out_another_allowed_uid(folder):
    # 30 allowed uids (15 --allow-uid, 15 --admin-uid), 16 slow connections each: together
    # they hold all 480 slots but root's. Before: uid 4242, allowed too, got 503 until
    # their request deadline. Now a uid below its fair share (480 / 31 uids = 15) takes the
    # slot of the connection reading a request the longest of the uid holding the most.
    attackers = [6001 + i for i in range(15)] + [6101 + i for i in range(15)]
    extra = ["--allow-uid", "4242", "--request-deadline", "15"]
    for i, uid in enumerate(attackers):
        extra += ["--allow-uid" if i < 15 else "--admin-uid", str(uid)]
    d = Nitrod(folder, extra=extra).start()
    try:
        floods = {uid: spawn_as(uid, lambda: slowloris(d.sock, 16, 9.0)) for uid in attackers}
        time.sleep(2.0)  # 480 connected and trickling
        # The victim holds 4 slow connections of its own, then calls.
        held = spawn_as(4242, lambda: slowloris(d.sock, 4, 5.0))
        time.sleep(0.5)
        # An attacker uid at (or over) its fair share evicts no one: refused at once.
        again = as_uid(attackers[0], lambda: read_until_closed(d.sock))

        def calls():
            out = []
            for _ in range(3):
                t = time.monotonic()
                r = d.call("GET", "/v1/volumes", timeout=5)
                out.append((r.status, time.monotonic() - t))
            return out
        victim = as_uid(4242, calls)
        t = time.monotonic()
        root = d.call("GET", "/v1/volumes", timeout=5).status
        root_took = time.monotonic() - t
        held = collect(held)
        conns = {uid: collect(f) for uid, f in floods.items()}
        time.sleep(1.2)  # the audit lines are made durable within 20 ms
    finally:
        d.stop()
    assert [s for s, _ in victim] == [200, 200, 200], victim
    assert max(took for _, took in victim) < 1.0, victim
    assert root == 200 and root_took < 1.0, root_took
    assert again.startswith("HTTP/1.1 429 ") or again.startswith("HTTP/1.1 503 "), again
    # The victim's own slow connections were not evicted back.
    assert all(c["closed"] is None for c in held), held
    # Its 4 held connections and its first call each evicted one attacker connection (a
    # later call too when it came before nitrod saw the previous one close), each time of a
    # uid holding 16 (the most), told so with a 503; no other was cut.
    evicted = {uid: [c for c in cs if c["closed"] is not None] for uid, cs in conns.items()}
    evicted = {uid: cs for uid, cs in evicted.items() if cs}
    n = sum(len(cs) for cs in evicted.values())
    assert 5 <= n <= 7, evicted
    assert all(len(cs) == 1 for cs in evicted.values()), evicted
    for cs in evicted.values():
        assert cs[0]["got"].startswith("HTTP/1.1 503 ") and "held 16 connections" in cs[0]["got"], cs
        assert "for uid 4242" in cs[0]["got"], cs
    # Every eviction is audited, as the evicted uid's.
    lines = [l for l in d.audit_lines() if " method=EVICT " in l]
    assert sorted(int(audit_fields(l)["uid"]) for l in lines) == sorted(evicted), lines
    assert all("status=503" in l and "evicted" in audit_fields(l)["detail"] for l in lines), lines
    assert sum(refusal_count(l) for l in lines) == n, lines
    v = subprocess.run([str(BUILD / "nitro-audit-verify"), str(d.state / "audit.log")],
                       capture_output=True, text=True)
    assert v.returncode == 0, v


# --- item 11: the audit log records the route the router dispatched, whole ---

def test_audit_records_the_canonical_route(nitrod):
    before = len(nitrod.audit_lines())
    assert nitrod.call("GET", "//v1///instances//").status == 200
    r = nitrod.call("GET", "/v1/" + "/" * 200 + "b" * 240)  # 444 bytes, 244 canonical
    assert r.status == 404, r
    lines = nitrod.audit_lines()[before:]
    assert audit_fields(lines[0])["route"] == "/v1/instances", lines[0]
    assert audit_fields(lines[1])["route"] == "/v1/" + "b" * 240, lines[1]


def test_a_route_too_long_to_log_whole_is_refused_414(nitrod):
    before = len(nitrod.audit_lines())
    r = nitrod.call("GET", "/v1/instances/" + "a" * 300)
    assert r.status == 414 and "route too long" in r.json()["error"], r
    line = nitrod.audit_lines()[before]
    f = audit_fields(line)
    assert f["status"] == "414" and f["route"] == "-", line
    assert "route%20too%20long%20(314%20bytes" in f["detail"], line
    # 255 bytes is still routed (and logged whole).
    r = nitrod.call("GET", "/v1/" + "c" * 251)
    assert r.status == 404, r
    assert audit_fields(nitrod.audit_lines()[-1])["route"] == "/v1/" + "c" * 251


# --- item 14: instances and volumes belong to the uid that created them ---

@root_only
def test_other_uids_cannot_see_or_touch_what_is_not_theirs(folder, bad_kernel):
    d = Nitrod(folder, extra=["--allow-uid", "4242", "--allow-uid", "4243",
                              "--admin-uid", "4244"]).start()
    try:
        def owner_creates():
            v = d.call("POST", "/v1/volumes", {"size_mib": 1}).json()
            inst = failed_instance(d, bad_kernel, console=True, volumes=[v["id"]])
            return {"vol": v, "inst": inst}
        mine = as_uid(4242, owner_creates)
        iid, vid = mine["inst"]["id"], mine["vol"]["id"]

        def intruder():
            out = {"lists": [d.call("GET", "/v1/instances").json(),
                             d.call("GET", "/v1/volumes").json()]}
            own = d.call("POST", "/v1/volumes", {"size_mib": 1}).json()["id"]
            calls = [("GET", f"/v1/instances/{iid}", None),
                     ("GET", f"/v1/instances/{iid}/console", None),
                     ("POST", f"/v1/instances/{iid}/stop", None),
                     ("POST", f"/v1/instances/{iid}/start", None),
                     ("POST", f"/v1/instances/{iid}/reboot", None),
                     ("DELETE", f"/v1/instances/{iid}", None),
                     ("GET", f"/v1/volumes/{vid}", None),
                     ("POST", f"/v1/volumes/{vid}/detach", None),
                     ("POST", f"/v1/volumes/{vid}/attach", {"instance_id": iid}),
                     ("DELETE", f"/v1/volumes/{vid}", None),
                     ("POST", f"/v1/volumes/{own}/attach", {"instance_id": iid}),
                     ("POST", "/v1/instances", {"kernel": bad_kernel, "volumes": [vid]})]
            out["calls"] = []
            for m, p, b in calls:
                r = d.call(m, p, b)
                out["calls"].append((m, p, r.status, r.body))
            return out
        seen = as_uid(4243, intruder)
        assert seen["lists"] == [{"instances": []}, {"volumes": []}], seen["lists"]
        for m, p, status, body in seen["calls"]:
            assert status == 404 and "not found" in body, (m, p, status, body)
        # Nothing changed: still failed, still attached. The owner is shown.
        r = d.call("GET", f"/v1/instances/{iid}").json()
        assert r["state"] == "failed" and [x["id"] for x in r["volumes"]] == [vid], r
        assert mine["inst"]["owner"] == 4242 and mine["vol"]["owner"] == 4242, mine
        assert r["owner"] == 4242, r

        # The owner and the admin see it; root sees everything, the intruder's volume too.
        def lists():
            return [i["id"] for i in d.call("GET", "/v1/instances").json()["instances"]] + \
                   [v["id"] for v in d.call("GET", "/v1/volumes").json()["volumes"]]
        assert as_uid(4242, lists) == [iid, vid]
        admin = as_uid(4244, lists)
        assert admin[:2] == [iid, vid] and len(admin) == 3, admin
        assert lists() == admin
        assert as_uid(4244, lambda: d.call("GET", f"/v1/instances/{iid}/console").status) == 200
        # An instance takes only its owner's volumes, even from an admin.
        rootvol = d.call("POST", "/v1/volumes", {"size_mib": 1}).json()
        r = d.call("POST", f"/v1/volumes/{rootvol['id']}/attach", {"instance_id": iid})
        assert r.status == 409 and "owner" in r.json()["error"], r
        # The owner still acts on it.
        assert as_uid(4242, lambda: d.call("DELETE", f"/v1/instances/{iid}").status) == 200
    finally:
        d.stop()


@root_only
def test_state_from_before_owners_is_roots(folder, bad_kernel):
    d = Nitrod(folder).start()
    v = d.call("POST", "/v1/volumes", {"size_mib": 1}).json()
    inst = failed_instance(d, bad_kernel)
    d.stop()
    # Rewrite the rows as an older nitrod stored them: no owner.
    db = sqlite3.connect(d.state / "nitrod.db")
    for table in ("instances", "volumes"):
        for rid, doc in db.execute(f"SELECT id, doc FROM {table}").fetchall():
            j = json.loads(doc)
            assert j.pop("owner") == 0
            db.execute(f"UPDATE {table} SET doc = ? WHERE id = ?", (json.dumps(j), rid))
    db.commit()
    db.close()
    d.extra += ["--allow-uid", "4242"]
    d.start()
    try:
        got = as_uid(4242, lambda: [d.call("GET", "/v1/instances").json(),
                                    d.call("GET", f"/v1/volumes/{v['id']}").status])
        assert got == [{"instances": []}, 404], got
        r = d.call("GET", f"/v1/instances/{inst['id']}").json()
        assert r["owner"] == 0, r
        assert d.call("GET", f"/v1/volumes/{v['id']}").json()["owner"] == 0
    finally:
        d.stop()


# --- item 16: the console client does not let a guest drive the operator's terminal ---

def test_console_escapes_terminal_control_sequences(nitrod, bad_kernel):
    inst = failed_instance(nitrod, bad_kernel, console=True)
    guest = (b"boot ok\r\n\x1b]0;pwned\x07 title set\n\x1b[2J cleared\t\x9b8m \xc2\x9b31m "
             b"\x00\x7f caf\xc3\xa9 \xe2\x82\xac\n")
    (nitrod.state / "instances" / inst["id"] / "console.log").write_bytes(guest)

    def console(*extra):
        p = subprocess.run([str(NITRO), "--host", nitrod.sock, "instances", "console",
                            inst["id"], *extra], capture_output=True, timeout=30)
        assert p.returncode == 0, p
        return p.stdout
    out = console()
    assert out == (b"boot ok\r\n\\x1b]0;pwned\\x07 title set\n\\x1b[2J cleared\t\\x9b8m \\u009b31m "
                   b"\\x00\\x7f caf\xc3\xa9 \xe2\x82\xac\n"), out
    assert not any(b < 0x20 and b not in b"\r\n\t" for b in out), out
    assert console("--raw") == guest
    p = subprocess.run([str(NITRO), "--host", nitrod.sock, "instances", "console", inst["id"],
                        "--bogus"], capture_output=True, text=True, timeout=30)
    assert p.returncode == 2, p


def test_host_attestation_is_for_admins_only(folder):
    """The host attestation's event log names every instance's kernel, initrd and command
    line: an allowed uid that is no admin must not read other owners' measurements."""
    d = Nitrod(folder, extra=["--allow-uid", "4243", "--admin-uid", "4244"]).start()
    try:
        def get():
            r = d.call("GET", "/v1/host/attestation?nonce=x")
            return [r.status, r.body]
        status, body = as_uid(4243, get)
        assert status == 403 and "admin" in json.loads(body)["error"], (status, body)
        assert "event_log" not in body, body
        status, body = as_uid(4244, get)
        assert status == 200 and json.loads(body)["event_log"], (status, body)
        assert d.call("GET", "/v1/host/attestation?nonce=x").status == 200
    finally:
        d.stop()
