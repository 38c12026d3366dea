"""Issue 10 items 1 and 2: what the security chip measures is exactly what boots.

Item 2 (boot files checked once, followed later): a caller who may write in a served
folder names a regular file at create time, then swaps it (or a folder on its path) for a
symbolic link to a file they may not read (a root-only secret, the host master key). Every
launch (create, start, reboot) must open the file again without following links and
refuse; the secret is never opened, measured or handed to nitro-hv. Each start records a
new launch measurement.

Item 1 (kernel cache poisoning): kernels whose payloads collide under the old 64-bit cache
key get separate entries, named by the SHA-384 of the whole file, and a planted entry is
replaced by what nitrod decompressed from the measured kernel.

Native, no guest boots: nitro-hv ends on these kernels (not a bzImage, or a vmlinux that
faults at once), which is after every measurement.
"""
import hashlib
import os
import struct
import subprocess
import time

import pytest

from conftest import BUILD, Nitrod


def events(d):
    return d.call("GET", "/v1/host/attestation?nonce=bootfiles").json()["event_log"]


def launch_events(d, iid):
    return [e for e in events(d) if e["type"] == "launch" and e["description"].startswith(iid + ",")]


def digests(d):
    return {e["sha384"] for e in events(d)}


def sha384(b):
    return hashlib.sha384(b).hexdigest()


@pytest.fixture
def secret(folder):
    """A root-only file outside every served folder."""
    outside = folder.parent / (folder.name + "-outside")
    outside.mkdir()
    s = outside / "secret"
    for f in (s, outside / "vmlinuz"):  # vmlinuz: reached through a swapped folder
        f.write_bytes(b"TOP SECRET: root only\n" * 64 + f.name.encode())
        os.chmod(f, 0o600)
    yield s
    for f in outside.iterdir():
        f.unlink()
    outside.rmdir()


def create(d, **spec):
    spec.setdefault("memory_mib", 128)
    return d.call("POST", "/v1/instances", spec)


def test_boot_files_must_be_plain_files_beneath_a_served_folder(nitrod, folder, bad_kernel, secret):
    (folder / "sub").mkdir()
    (folder / "inside-link").symlink_to(bad_kernel)
    (folder / "outside-link").symlink_to(secret)
    (folder / "dirlink").symlink_to(secret.parent)
    os.mkfifo(folder / "fifo-k")
    for spec, msg in [
        ({"kernel": str(folder / "nope")}, "No such file"),
        ({"kernel": str(folder / "sub")}, "not a regular file"),
        ({"kernel": str(folder / "fifo-k")}, "not a regular file"),
        ({"kernel": str(folder / "inside-link")}, "symbolic link"),
        ({"kernel": str(folder / "outside-link")}, "symbolic link"),
        ({"kernel": str(folder / "dirlink" / "secret")}, "symbolic link"),
        ({"kernel": bad_kernel, "initrd": str(folder / "outside-link")}, "symbolic link"),
    ]:
        r = create(nitrod, **spec)
        assert r.status == 400 and msg in r.json()["error"], (spec, r)
    assert nitrod.call("GET", "/v1/instances").json()["instances"] == []
    assert sha384(secret.read_bytes()) not in digests(nitrod)


@pytest.mark.parametrize("what", ["kernel", "initrd", "folder"])
def test_symlink_swapped_after_create_is_refused_at_start(nitrod, folder, bad_kernel, secret, what):
    (folder / "k").mkdir()
    kernel = folder / "k" / "vmlinuz"
    kernel.write_bytes(open(bad_kernel, "rb").read())
    initrd = folder / "initrd.img"
    initrd.write_bytes(b"an initrd\n" * 100)
    r = create(nitrod, kernel=str(kernel), initrd=str(initrd))
    assert r.status == 201, r
    iid = r.json()["id"]
    inst = nitrod.wait_state(iid, {"failed"})
    assert "nitro-hv" in inst["reason"], inst  # measured, handed over, refused by nitro-hv
    # The swap: the caller may write in the folder.
    if what == "kernel":
        kernel.unlink()
        kernel.symlink_to(secret)
    elif what == "initrd":
        initrd.unlink()
        initrd.symlink_to(secret)
    else:
        os.rename(folder / "k", folder / "k.old")
        (folder / "k").symlink_to(secret.parent)
    secret_digest = sha384((secret.parent / ("vmlinuz" if what == "folder" else "secret")).read_bytes())
    before = len(nitrod.audit_lines())
    r = nitrod.call("POST", f"/v1/instances/{iid}/start")
    assert r.status == 200, r
    inst = nitrod.wait_state(iid, {"failed"})
    assert inst["reason"].startswith("launch refused:") and "symbolic link" in inst["reason"], inst
    # nitrod (root) never read the secret: the chip never measured it, no nitro-hv got it.
    assert secret_digest not in digests(nitrod)
    assert len(launch_events(nitrod, iid)) == 1  # only the first launch
    audit = [l for l in nitrod.audit_lines()[before:] if " method=LAUNCH " in l]
    assert audit and "status=403" in audit[-1], nitrod.audit_lines()[before:]


def test_master_key_is_never_an_initrd(nitrod, folder, bad_kernel):
    v = nitrod.call("POST", "/v1/volumes", {"size_mib": 4}).json()  # makes the master key
    key = nitrod.state / "master.key"
    assert key.exists()
    initrd = folder / "initrd.img"
    initrd.write_bytes(b"an initrd\n" * 100)
    r = create(nitrod, kernel=bad_kernel, initrd=str(initrd), volumes=[v["id"]])
    assert r.status == 201, r
    iid = r.json()["id"]
    nitrod.wait_state(iid, {"failed"})
    initrd.unlink()
    initrd.symlink_to(key)
    nitrod.call("POST", f"/v1/instances/{iid}/start")
    inst = nitrod.wait_state(iid, {"failed"})
    assert "symbolic link" in inst["reason"], inst
    assert sha384(key.read_bytes()) not in digests(nitrod)


def test_every_start_is_measured_again(nitrod, bad_kernel):
    r = create(nitrod, kernel=bad_kernel, initrd=None, cmdline="console=ttyS0 x=1")
    iid = r.json()["id"]
    nitrod.wait_state(iid, {"failed"})
    kd = sha384(open(bad_kernel, "rb").read())
    cd = sha384(b"console=ttyS0 x=1")
    for n in (2, 3):
        assert nitrod.call("POST", f"/v1/instances/{iid}/start").status == 200
        nitrod.wait_state(iid, {"failed"})
        ev = launch_events(nitrod, iid)
        assert len(ev) == n, ev
        desc = ev[-1]["description"]
        assert desc == f"{iid},launch={n},kernel={kd},initrd=none,cmdline={cd},vmlinux=none", desc
        assert ev[-1]["pcr"] == 4 and ev[-1]["sha384"] == sha384(desc.encode())
    # A file changed in place between launches: the next launch measures the new bytes.
    with open(bad_kernel, "ab") as f:
        f.write(b"more\n")
    nitrod.call("POST", f"/v1/instances/{iid}/start")
    nitrod.wait_state(iid, {"failed"})
    kd2 = sha384(open(bad_kernel, "rb").read())
    assert f"kernel={kd2}," in launch_events(nitrod, iid)[-1]["description"]
    assert any(e["type"] == "kernel" and e["sha384"] == kd2 for e in events(nitrod))


# --- item 1: the kernel cache ---

def elf(mark):
    """An x86-64 vmlinux whose entry is ud2 (the guest faults at once) and whose first
    segment starts with mark."""
    eh = bytearray(64)
    eh[0:16] = b"\x7fELF" + bytes([2, 1, 1]) + bytes(9)
    struct.pack_into("<HHIQQQIHHHHHH", eh, 16, 2, 62, 1, 0x1000010, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    ph = struct.pack("<IIQQQQQQ", 1, 5, 0x100, 0xffffffff81000000, 0x1000000, 0x40, 0x40, 0x1000)
    ph += struct.pack("<IIQQQQQQ", 1, 6, 0x140, 0xffffffff81200000, 0x1200000, 0x20, 0x2000, 0x1000)
    body = bytearray(bytes(eh) + ph)
    body += bytes(0x100 - len(body))
    seg = bytearray(mark.ljust(16, b" ")[:16] + b"\x0f\x0b" + bytes(0x40 - 18))
    body += seg + bytes(range(0x20))
    return bytes(body)


def bz(payload):
    setup = bytearray(5 * 512)
    setup[0x1f1] = 4
    struct.pack_into("<H", setup, 0x1fe, 0xaa55)
    setup[0x200] = 0xEB
    setup[0x201] = 0x66
    setup[0x202:0x206] = b"HdrS"
    struct.pack_into("<H", setup, 0x206, 0x020F)
    setup[0x211] = 1
    struct.pack_into("<I", setup, 0x22C, 0x7FFFFFFF)
    struct.pack_into("<H", setup, 0x236, 3)
    struct.pack_into("<I", setup, 0x238, 2047)
    struct.pack_into("<II", setup, 0x248, 0x40, len(payload))
    struct.pack_into("<Q", setup, 0x258, 16 << 20)
    struct.pack_into("<I", setup, 0x260, 32 << 20)
    return bytes(setup) + bytes(0x40) + payload + bytes(0x40)


M = (1 << 64) - 1
C1 = 0xFF51AFD7ED558CCD


def old_state(p, nwords, length):
    h = 0x9E3779B97F4A7C15 ^ length
    for i in range(nwords):
        (w,) = struct.unpack_from("<Q", p, 8 * i)
        h = ((h ^ w) * C1) & M
        h ^= h >> 32
    return h


def old_key(p):
    """The cache key before issue 10 (p: a multiple of 8 bytes)."""
    h = old_state(p, len(p) // 8, len(p))
    return h ^ (h >> 29)


def zstd(data):
    return subprocess.run(["zstd", "-q", "-c", "-19"], input=data, capture_output=True, check=True).stdout


def colliding_kernels(length=0x400):
    victim_elf, evil_elf = elf(b"VICTIM"), elf(b"EVIL")
    vp = zstd(victim_elf).ljust(length, b"\0")
    ep = bytearray(zstd(evil_elf).ljust(length, b"\xee"))
    inv = pow(C1, -1, 1 << 64)
    t = old_state(vp, length // 8, length)
    x = t ^ (t >> 32)
    w = ((x * inv) & M) ^ old_state(bytes(ep), length // 8 - 1, length)
    struct.pack_into("<Q", ep, length - 8, w)
    assert old_key(vp) == old_key(bytes(ep))
    return bz(vp), victim_elf, bz(bytes(ep)), evil_elf


def entry(state, kernel_bytes):
    return state / "kcache" / f"vmlinux-{sha384(kernel_bytes)}"


def vmlinux_events(d):
    return [e for e in events(d) if e["type"] == "vmlinux"]


def test_colliding_kernels_get_their_own_cache_entries(nitrod, folder):
    victim, victim_elf, evil, evil_elf = colliding_kernels()
    (folder / "evil").write_bytes(evil)
    (folder / "victim").write_bytes(victim)
    # The attacker launches first (its vmlinux would have been cached under the shared key).
    a = create(nitrod, kernel=str(folder / "evil"), initrd=None).json()["id"]
    nitrod.wait_state(a, {"failed", "running"}, timeout=30)
    v = create(nitrod, kernel=str(folder / "victim"), initrd=None).json()["id"]
    nitrod.wait_state(v, {"failed", "running"}, timeout=30)
    for kernel, vml in ((evil, evil_elf), (victim, victim_elf)):
        e = entry(nitrod.state, kernel).read_bytes()
        assert e[:16] == b"NITRO-VMLINUX-v2" and e[16:64] == hashlib.sha384(kernel).digest()
        assert e[128:] == vml
    assert {e.name for e in (nitrod.state / "kcache").iterdir()} == {
        entry(nitrod.state, evil).name, entry(nitrod.state, victim).name}
    # The chip measured, for the victim's launch, the victim's own vmlinux.
    desc = launch_events(nitrod, v)[-1]["description"]
    assert f"kernel={sha384(victim)}," in desc and desc.endswith(f"vmlinux={sha384(victim_elf)}")
    assert any(e["sha384"] == sha384(victim_elf) and e["description"] == f"from-kernel={sha384(victim)}"
               for e in vmlinux_events(nitrod))
    for iid in (a, v):
        nitrod.call("DELETE", f"/v1/instances/{iid}")


def test_planted_cache_entry_is_replaced_not_booted(folder):
    victim, victim_elf, evil, evil_elf = colliding_kernels()
    (folder / "victim").write_bytes(victim)
    d = Nitrod(folder)
    d.start()
    try:
        # An entry planted under the victim's new key: self-consistent, the attacker's.
        kc = d.state / "kcache"
        kc.mkdir(exist_ok=True)
        hdr = (b"NITRO-VMLINUX-v2" + hashlib.sha384(victim).digest() + hashlib.sha384(evil_elf).digest()
               + struct.pack("<Q", len(evil_elf)) + bytes(8))
        entry(d.state, victim).write_bytes(hdr + evil_elf)
        # And the attacker's vmlinux under the old key name.
        (kc / f"vmlinux-{old_key(victim[0xa40:0xa40 + 0x400]):016x}").write_bytes(evil_elf)
        v = create(d, kernel=str(folder / "victim"), initrd=None).json()["id"]
        d.wait_state(v, {"failed", "running"}, timeout=30)
        assert entry(d.state, victim).read_bytes()[128:] == victim_elf
        assert launch_events(d, v)[-1]["description"].endswith(f"vmlinux={sha384(victim_elf)}")
        assert sha384(evil_elf) not in digests(d)
        d.call("DELETE", f"/v1/instances/{v}")
    finally:
        d.stop()


@pytest.mark.skipif(not (BUILD / "nitro-card-vpc").exists(), reason="no nitro-card-vpc")
def test_security_group_link_swap_is_refused(nitrod, folder, bad_kernel, secret):
    sg = folder / "web.sg"
    sg.write_text("ingress tcp 80 0.0.0.0/0\n")
    nic = {"vpc": 7, "ip": "10.0.0.9/24", "sg": str(sg)}
    r = create(nitrod, kernel=bad_kernel, initrd=None, nics=[nic])
    assert r.status == 201, r
    iid = r.json()["id"]
    nitrod.wait_state(iid, {"failed"})
    log = nitrod.state / "instances" / iid / "card0.log"
    assert "nitro-card-vpc: vpc 7 10.0.0.9:" in log.read_text(), log.read_text()  # it started
    sg.unlink()
    sg.symlink_to(secret)
    nitrod.call("POST", f"/v1/instances/{iid}/start")
    inst = nitrod.wait_state(iid, {"failed"})
    assert "nics sg" in inst["reason"] and "symbolic link" in inst["reason"], inst
    assert "SECRET" not in log.read_text()


# --- a guest in a reboot loop (every reboot is a launch: one more event log line) ---

def rebooting_kernel():
    """A zstd bzImage whose vmlinux resets the machine at once (i8042 reset: out 0x64, 0xfe)."""
    e = bytearray(elf(b"REBOOT"))
    at = e.index(b"REBOOT".ljust(16, b" ")) + 16
    code = b"\xb0\xfe\xe6\x64\xf4\xeb\xfd"  # mov al, 0xfe; out 0x64, al; hlt; jmp $-1
    e[at:at + len(code)] = code
    return bz(zstd(bytes(e)))


@pytest.mark.skipif(not os.access("/dev/kvm", os.R_OK | os.W_OK), reason="the guest must run: needs /dev/kvm")
def test_a_guest_rebooting_in_a_loop_cannot_grow_the_event_log(nitrod, folder):
    # Before: nitrod relaunched nitro-hv on every reboot, ~19 a second here, each a new
    # launch event (~460 bytes) in the chip's never-rewritten event log, without end.
    k = folder / "reboots.bz"
    k.write_bytes(rebooting_kernel())
    iid = create(nitrod, kernel=str(k), initrd=None).json()["id"]
    inst = nitrod.wait_state(iid, {"failed"}, timeout=30)
    assert "rebooted more than 5 times in a minute" in inst["reason"], inst
    n = len(launch_events(nitrod, iid))
    assert n == 6, n  # the first launch and 5 reboots
    time.sleep(1)
    assert len(launch_events(nitrod, iid)) == n
    audit = [l for l in nitrod.audit_lines() if " method=REBOOT " in l and iid in l]
    assert audit and "status=429" in audit[-1], audit
    # The caller may start it again (an audited call): the count starts afresh.
    assert nitrod.call("POST", f"/v1/instances/{iid}/start").status == 200
    inst = nitrod.wait_state(iid, {"failed"}, timeout=30)
    assert len(launch_events(nitrod, iid)) == 2 * n, inst


# --- item 2 without any link: a file the caller may not read ---

def test_a_caller_cannot_boot_a_file_it_may_not_read(folder):
    # Before: nitrod (root) opened, measured and handed to the guest any regular file
    # beneath a served folder: a root-only file, a file in a folder closed to the caller,
    # or a hard link to a file outside (where fs.protected_hardlinks is 0).
    from nitrotest import as_uid
    closed = folder / "closed"
    closed.mkdir(mode=0o700)
    (closed / "initrd").write_bytes(b"PRIVATE initrd of root\n" * 64)
    root_only = folder / "root-only"
    root_only.write_bytes(b"ROOT ONLY\n" * 64)
    os.chmod(root_only, 0o600)
    outside = folder.parent / (folder.name + "-hl")
    outside.mkdir(mode=0o700)
    secret = outside / "secret"
    secret.write_bytes(b"TOP SECRET\n" * 64)
    os.chmod(secret, 0o600)
    try:
        os.link(secret, folder / "hard-link")  # the kernel lets root; a caller where protected_hardlinks=0
        k = folder / "k"
        k.write_bytes(b"this is not a bzImage\n" * 100)
        readable = folder / "initrd"
        readable.write_bytes(b"an initrd\n" * 64)
        d = Nitrod(folder, extra=["--allow-uid", "4242"]).start()
        try:
            def caller():
                out = {}
                for name in ("closed/initrd", "root-only", "hard-link"):
                    r = create(d, kernel=str(k), initrd=str(folder / name))
                    out[name] = (r.status, r.json().get("error", ""))
                r = create(d, kernel=str(k), initrd=str(readable))
                out["ok"] = (r.status, r.json().get("id"))
                return out
            out = as_uid(4242, caller)
            for name in ("closed/initrd", "root-only", "hard-link"):
                assert out[name][0] == 400 and "uid 4242 may not read it" in out[name][1], out
            assert out["ok"][0] == 201, out
            iid = out["ok"][1]
            d.wait_state(iid, {"failed"})
            # Made unreadable after create: the next start opens it as the caller again.
            os.chmod(readable, 0o600)
            assert as_uid(4242, lambda: d.call("POST", f"/v1/instances/{iid}/start").status) == 200
            inst = d.wait_state(iid, {"failed"})
            assert "uid 4242 may not read it" in inst["reason"], inst
            for f in (closed / "initrd", root_only, secret):  # (readable was measured while it was)
                assert sha384(f.read_bytes()) not in digests(d), f
        finally:
            d.stop()
    finally:
        for f in outside.iterdir():
            f.unlink()
        outside.rmdir()
