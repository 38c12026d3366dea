"""nitrod's /v1/snapshots and "from_image"/"from_snapshot" on POST /v1/volumes (src/snapshot
through src/controller/api.c): create, list, get, restore, delete, the audit lines, one
store per uid, and the refusals (an image outside --files, an absurd qcow2, a running
instance's volume, a tampered store)."""
import os
import pathlib
import re
import subprocess

import pytest

from conftest import Nitrod  # noqa: E402
from nitrotest import as_uid  # noqa: E402

SNAP_RE = re.compile(r"^snap-[0-9a-f]{17}$")
MiB = 1 << 20


def image(folder, fmt="raw"):
    raw = folder / "img.raw"
    with open(raw, "wb") as f:
        f.truncate(6 * MiB)
        f.write(os.urandom(MiB))
        f.seek(4 * MiB)
        f.write(os.urandom(1000))
    if fmt == "raw":
        return raw
    out = folder / f"img.{fmt}"
    subprocess.run(["qemu-img", "convert", "-f", "raw", "-O", fmt, str(raw), str(out)],
                   check=True)
    return out


@pytest.mark.parametrize("fmt", ["raw", "qcow2"])
def test_volume_from_image(nitrod, folder, fmt):
    img = image(folder, fmt)
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(img)})
    assert r.status == 201, r
    v = r.json()
    assert v["size_mib"] == 6 and v["encrypted"] is True
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(img), "size_mib": 16})
    assert r.status == 201 and r.json()["size_mib"] == 16, r
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(img), "size_mib": 2})
    assert r.status == 400 and "smaller than the image" in r.json()["error"], r


def test_volume_from_image_refused(nitrod, folder, tmp_path):
    # A host file outside --files (the test's folder): never imported.
    outside = tmp_path / "secret.raw"
    outside.write_bytes(b"secret" * 1000)
    for p in (str(outside), "/etc/passwd"):
        r = nitrod.call("POST", "/v1/volumes", {"from_image": p})
        assert r.status == 400 and "outside the folders" in r.json()["error"], r
    # A symlink inside --files to a file outside: the opened file is what counts.
    link = folder / "link.raw"
    link.symlink_to(outside)
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(link)})
    assert r.status == 400 and "outside the folders" in r.json()["error"], r
    # A special file (a device such as /dev/watchdog: opening it has effects) is never
    # opened, only looked at through O_PATH. A FIFO shows it: a writer blocked in open()
    # would be released by any reader's open.
    import threading
    fifo = folder / "fifo.raw"
    os.mkfifo(fifo)
    opened = threading.Event()

    def writer():
        fd = os.open(fifo, os.O_WRONLY)
        opened.set()
        os.close(fd)
    t = threading.Thread(target=writer, daemon=True)
    t.start()
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(fifo)}, timeout=10)
    assert r.status == 400 and "not a regular file" in r.json()["error"], r
    assert not opened.wait(1.0), "nitrod opened the FIFO named as an image"
    os.close(os.open(fifo, os.O_RDONLY | os.O_NONBLOCK))  # release the writer
    t.join(5)
    huge = folder / "huge.qcow2"
    subprocess.run(["qemu-img", "create", "-q", "-f", "qcow2", str(huge), "100T"], check=True)
    r = nitrod.call("POST", "/v1/volumes", {"from_image": str(huge)})
    assert r.status == 400 and "virtual size" in r.json()["error"], r
    for body, msg in [({"from_image": "rel.raw"}, "absolute path"),
                      ({"from_image": str(huge), "from_snapshot": "snap-0123456789abcdef0"},
                       "exclude each other"),
                      ({"from_snapshot": "snap-xyz"}, "from_snapshot: expected")]:
        r = nitrod.call("POST", "/v1/volumes", body)
        assert r.status == 400 and msg in r.json()["error"], (body, r)
    assert nitrod.call("GET", "/v1/volumes").json()["volumes"] == []
    assert not [p for p in (nitrod.state / "volumes").glob("*") if p.is_file()]


def test_snapshot_lifecycle(nitrod, folder):
    img = image(folder)
    v = nitrod.call("POST", "/v1/volumes", {"from_image": str(img)}).json()
    r = nitrod.call("POST", "/v1/snapshots", {"volume_id": v["id"]})
    assert r.status == 201, r
    s1 = r.json()
    assert SNAP_RE.match(s1["id"]) and s1["volume_id"] == v["id"]
    assert s1["size_bytes"] == 6 * MiB and s1["new_chunks"] == 2
    r = nitrod.call("POST", "/v1/snapshots", {"volume_id": v["id"]})
    s2 = r.json()
    assert r.status == 201 and s2["new_chunks"] == 0 and s2["new_bytes"] == 0, r
    listed = nitrod.call("GET", "/v1/snapshots").json()["snapshots"]
    assert [x["id"] for x in listed] == [s1["id"], s2["id"]]
    got = nitrod.call("GET", f"/v1/snapshots/{s1['id']}").json()
    assert got["id"] == s1["id"] and got["size_mib"] == 6

    r = nitrod.call("POST", "/v1/volumes", {"from_snapshot": s1["id"], "size_mib": 8})
    assert r.status == 201 and r.json()["size_mib"] == 8, r
    nv = r.json()
    # The restored volume holds the same data: its own snapshot adds no chunk.
    r = nitrod.call("POST", "/v1/snapshots", {"volume_id": nv["id"]})
    assert r.status == 201 and r.json()["new_chunks"] == 0, r
    s3 = r.json()

    for sid in (s1["id"], s2["id"]):
        r = nitrod.call("DELETE", f"/v1/snapshots/{sid}")
        assert r.status == 200 and r.json()["freed_chunks"] == 0, r
    r = nitrod.call("DELETE", f"/v1/snapshots/{s3['id']}")
    assert r.status == 200 and r.json()["freed_chunks"] == 2, r
    assert nitrod.call("GET", "/v1/snapshots").json()["snapshots"] == []
    r = nitrod.call("GET", f"/v1/snapshots/{s1['id']}")
    assert r.status == 404, r
    r = nitrod.call("POST", "/v1/volumes", {"from_snapshot": s1["id"]})
    assert r.status == 404 and "not found" in r.json()["error"], r

    audit = "\n".join(nitrod.audit_lines())
    assert "route=/v1/snapshots status=201" in audit
    assert f"route=/v1/snapshots/{s3['id']} status=200" in audit


def test_snapshot_rejects(nitrod, folder, bad_kernel):
    for body, status, msg in [("{}", 400, "volume_id"),
                              ('{"volume_id": "vol-0123456789abcdef0"}', 404, "not found"),
                              ('{"volume_id": "vol-1", "x": 1}', 400, "unknown field")]:
        r = nitrod.call("POST", "/v1/snapshots", raw=body)
        assert r.status == status and msg in r.json()["error"], (body, r)
    for path in ("/v1/snapshots/snap-0123456789abcdef0", "/v1/snapshots/../../etc"):
        r = nitrod.call("GET", path)
        assert r.status == 404, (path, r)
    r = nitrod.call("PUT", "/v1/snapshots")
    assert r.status == 405, r


def test_snapshot_tampered_store(nitrod, folder):
    v = nitrod.call("POST", "/v1/volumes", {"from_image": str(image(folder))}).json()
    s = nitrod.call("POST", "/v1/snapshots", {"volume_id": v["id"]}).json()
    store = nitrod.state / "snapshots" / f"uid-{os.geteuid()}"
    chunk = sorted((store / "chunks").glob("*/*"))[0]
    data = bytearray(chunk.read_bytes())
    data[64] ^= 0x80
    chunk.write_bytes(data)
    r = nitrod.call("POST", "/v1/volumes", {"from_snapshot": s["id"]})
    assert r.status == 500 and "fails its check" in r.json()["error"], r
    assert len(nitrod.call("GET", "/v1/volumes").json()["volumes"]) == 1
    m = store / "manifests" / s["id"]
    m.write_bytes(m.read_bytes()[:-1] + b"\0")
    r = nitrod.call("GET", f"/v1/snapshots/{s['id']}")
    assert r.status == 500 and "fails its MAC" in r.json()["error"], r


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_snapshots_per_uid(folder):
    """Another uid neither lists, restores nor deletes a uid's snapshots."""
    d = Nitrod(folder, extra=["--allow-uid", "4242"]).start()
    try:
        v = d.call("POST", "/v1/volumes", {"size_mib": 2}).json()
        s = d.call("POST", "/v1/snapshots", {"volume_id": v["id"]}).json()

        def probe():
            a = d.call("GET", "/v1/snapshots").json()["snapshots"]
            b = d.call("DELETE", f"/v1/snapshots/{s['id']}").status
            c = d.call("POST", "/v1/volumes", {"from_snapshot": s["id"]}).status
            # Another uid's volume does not exist for it (owners: docs/api.md).
            e = d.call("POST", "/v1/snapshots", {"volume_id": v["id"]}).status
            return f"{len(a)} {b} {c} {e}"
        assert as_uid(4242, probe) == "0 404 404 404"
        assert [x["id"] for x in d.call("GET", "/v1/snapshots").json()["snapshots"]] == [s["id"]]
    finally:
        d.stop()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to switch uids")
def test_volume_from_an_image_the_caller_may_not_read_is_refused(folder):
    # Before: nitrod (root) imported any regular file beneath --files into the caller's
    # volume, which the caller's guest then reads: a root-only file, a file in a folder
    # closed to the caller, a hard link to a file outside.
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    (closed / "c.raw").write_bytes(b"PRIVATE" * 1000)
    root_only = folder / "root-only.raw"
    root_only.write_bytes(b"ROOT ONLY" * 1000)
    os.chmod(root_only, 0o600)
    readable = image(folder)
    d = Nitrod(folder, extra=["--allow-uid", "4242"]).start()
    try:
        def caller():
            out = {}
            for p in (closed / "c.raw", root_only, readable):
                r = d.call("POST", "/v1/volumes", {"from_image": str(p)})
                out[p.name] = (r.status, r.json().get("error", ""))
            return out
        out = as_uid(4242, caller)
        vols = d.call("GET", "/v1/volumes").json()["volumes"]
    finally:
        d.stop()
    for name in ("c.raw", "root-only.raw"):
        assert out[name][0] == 400 and "uid 4242 may not read it" in out[name][1], out
    assert out[readable.name][0] == 201, out
    assert len(vols) == 1, vols
