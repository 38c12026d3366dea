"""Security suite (issue 5): signed executables, attestation checked with the openssl CLI,
the audit log's hash chain, and the jailer + seccomp sandbox on real processes.

Runs as root on the build host (`make security-test`); needs no KVM. The guest boot under
the sandbox is tests/security/test_guest_sandbox.py (emulated host).
"""
import base64
import errno
import hashlib
import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import time

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1] / "pylib"))
from nitrotest import api_call, host_has_cgroup_v2  # noqa: E402

ROOT = pathlib.Path(__file__).resolve().parents[2]
BUILD = ROOT / "build"
CHIP = BUILD / "nitro-chip"
AUDIT = BUILD / "nitro-audit-verify"
PROBE = BUILD / "tests" / "security" / "jail-probe"
ANCHOR = BUILD / "keys" / "dev-anchor.pub.pem"
UID = 60001


def run(*args, **kw):
    return subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=60, **kw)


@pytest.fixture(scope="session", autouse=True)
def built():
    for f in (CHIP, AUDIT, PROBE, ANCHOR, BUILD / "nitro-hv.sig"):
        assert f.exists(), f"build first: make all {PROBE.relative_to(ROOT)} ({f} missing)"


@pytest.fixture
def state(tmp_path):
    return tmp_path / "chip"


# ---- signed executables ----

def test_signed_binary_measured(state):
    r = run(CHIP, "--state", state, "exec", BUILD / "nitro-hv")
    assert r.returncode == 0, r.stderr
    digest = hashlib.sha384((BUILD / "nitro-hv").read_bytes()).hexdigest()
    assert r.stdout.split()[0] == digest
    log = (state / "eventlog").read_text().splitlines()
    assert log == [f"0 0 exec {digest} {BUILD / 'nitro-hv'}"]


def test_flipped_byte_refused(state, tmp_path):
    hv = tmp_path / "nitro-hv"
    shutil.copy(BUILD / "nitro-hv", hv)
    shutil.copy(BUILD / "nitro-hv.sig", tmp_path / "nitro-hv.sig")
    assert run(CHIP, "--state", state, "exec", hv).returncode == 0
    data = bytearray(hv.read_bytes())
    data[len(data) // 2] ^= 0x01
    hv.write_bytes(bytes(data))
    r = run(CHIP, "--state", state, "exec", hv)
    assert r.returncode == 1
    assert f"nitro-hv {hv}: signature does not verify with trust anchor {ANCHOR}" in r.stderr
    assert len((state / "eventlog").read_text().splitlines()) == 1  # nothing logged
    # The jailer path refuses it too, before anything runs.
    r = run(CHIP, "--state", state, "jail", "--measure", "--kind", "hv", "--uid", UID, "--gid", UID,
            "--dir", tmp_path / "jail", "--", hv, "--help")
    assert r.returncode == 1 and "signature does not verify" in r.stderr


def test_missing_signature_refused(state, tmp_path):
    hv = tmp_path / "nitro-hv"
    shutil.copy(BUILD / "nitro-hv", hv)
    r = run(CHIP, "--state", state, "exec", hv)
    assert r.returncode == 1 and "no signature" in r.stderr


def test_sig_file_matches_openssl(tmp_path):
    """make's signature is what the documented openssl command verifies."""
    d = tmp_path / "digest"
    d.write_bytes(hashlib.sha384((BUILD / "nitro-hv").read_bytes()).digest())
    verify = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", ANCHOR, "-rawin", "-in", d,
              "-sigfile", BUILD / "nitro-hv.sig"]
    r = run(*verify)
    assert r.returncode == 0 and "Verified Successfully" in r.stdout, r.stderr
    d.write_bytes(hashlib.sha384(b"another binary").digest())
    assert run(*verify).returncode != 0


# ---- attestation ----

def openssl_verify(tmp_path, doc, data=None):
    (tmp_path / "data").write_bytes((data if data is not None else doc["signed_data"]).encode())
    (tmp_path / "sig").write_bytes(base64.b64decode(doc["signature"]))
    (tmp_path / "pub.pem").write_text(doc["public_key"])
    r = run("openssl", "pkeyutl", "-verify", "-pubin", "-inkey", tmp_path / "pub.pem", "-rawin",
            "-in", tmp_path / "data", "-sigfile", tmp_path / "sig")
    return r.returncode == 0


def replay(doc):
    """PCRs and the event-log digest recomputed from the event_log array (from the
    checkpoint's PCRs and line when the log was compacted; its signature is checked by
    check_doc)."""
    pcrs = [bytes(48)] * 8
    h = hashlib.sha384()
    cp = doc.get("checkpoint")
    if cp:
        pcrs = [bytes.fromhex(cp["pcrs"][str(i)]) for i in range(8)]
        h.update((cp["line"] + "\n").encode())
    for e in doc["event_log"]:
        d = bytes.fromhex(e["sha384"])
        pcrs[e["pcr"]] = hashlib.sha384(pcrs[e["pcr"]] + d).digest()
        h.update(f'{e["seq"]} {e["pcr"]} {e["type"]} {e["sha384"]} {e["description"]}\n'.encode())
    return [p.hex() for p in pcrs], h.hexdigest()


def check_checkpoint(doc, tmp_path):
    """A checkpoint's signature (the attestation key's, over its signed_data, verified with
    openssl), its line carrying exactly those values, and the event seqs continuing it."""
    cp = doc["checkpoint"]
    text = cp["signed_data"]
    fields = dict(l.split("=", 1) for l in text.splitlines()[1:])
    want = (f'{cp["seq"]} checkpoint ' + "".join(f'pcr{i}={cp["pcrs"][str(i)]},' for i in range(8))
            + f'prefix-sha384={fields["prefix-sha384"]},sig={cp["signature"]}')
    return (text.startswith("nitro-eventlog-checkpoint-v1\n") and int(fields["seq"]) == cp["seq"]
            and all(fields[f"pcr{i}"] == cp["pcrs"][str(i)] for i in range(8))
            and cp["line"] == want and f"checkpoint={cp['seq']}" in doc["signed_data"].splitlines()
            and [e["seq"] for e in doc["event_log"]] == list(range(cp["seq"], cp["seq"] + len(doc["event_log"])))
            and openssl_verify(tmp_path, {**doc, "signature": cp["signature"]}, text))


def check_doc(doc):
    pcrs, logd = replay(doc)
    lines = doc["signed_data"].splitlines()
    return (lines[1] == f"nonce={doc['nonce']}"
            and all(f"pcr{i}={pcrs[i]}" in lines and doc["pcrs"][str(i)] == pcrs[i] for i in range(8))
            and f"eventlog-sha384={logd}" in lines
            and f"events={len(doc['event_log'])}" in lines)


def test_attestation_verifies_with_openssl(state, tmp_path):
    for f in ("nitro-hv", "nitro-card-ebs"):
        assert run(CHIP, "--state", state, "exec", BUILD / f).returncode == 0
    kernel = tmp_path / "vmlinuz"
    kernel.write_bytes(os.urandom(4096))
    assert run(CHIP, "--state", state, "file", "1", "kernel", kernel).returncode == 0
    r = run(CHIP, "--state", state, "attest", "n0nce-42")
    assert r.returncode == 0, r.stderr
    doc = json.loads(r.stdout)
    assert doc["nonce"] == "n0nce-42" and len(doc["event_log"]) == 3
    assert openssl_verify(tmp_path, doc)
    assert check_doc(doc)
    # Tampering: a PCR in the signed bytes, the nonce, or the event log.
    assert not openssl_verify(tmp_path, doc, doc["signed_data"].replace("pcr1=", "pcr1=0", 1)[:-1])
    assert not openssl_verify(tmp_path, doc, doc["signed_data"].replace("n0nce-42", "n0nce-43"))
    doc2 = json.loads(r.stdout)
    doc2["event_log"][2]["sha384"] = hashlib.sha384(b"other kernel").hexdigest()
    assert not check_doc(doc2)
    # The key is kept private and reused.
    key = state / "attestation-key.pem"
    assert oct(key.stat().st_mode & 0o777) == "0o600"
    r2 = run(CHIP, "--state", state, "attest", "again")
    assert json.loads(r2.stdout)["public_key"] == doc["public_key"]


def test_event_log_compacted_to_a_signed_checkpoint_still_attests(state, tmp_path):
    """Issue 10 item 6: the event log grew by one line per launch forever. With a bound of
    8 events, 60 measurements leave a checkpoint and at most 8 events; the PCRs are the
    ones 60 extends give, the attestation replays from the checkpoint (openssl verifies both
    signatures), and a forged checkpoint stops the chip."""
    pcrs = [bytes(48)] * 8
    for i in range(60):
        f = tmp_path / f"initrd-{i}"
        f.write_bytes(os.urandom(64))
        r = run(CHIP, "--state", state, "--log-max", "8", "file", "2", "initrd", f)
        assert r.returncode == 0, r.stderr
        pcrs[2] = hashlib.sha384(pcrs[2] + hashlib.sha384(f.read_bytes()).digest()).digest()
    lines = (state / "eventlog").read_text().splitlines()
    assert len(lines) <= 9 and " checkpoint pcr0=" in lines[0], lines
    r = run(CHIP, "--state", state, "attest", "cp-1")
    doc = json.loads(r.stdout)
    assert doc["pcrs"]["2"] == pcrs[2].hex()
    assert openssl_verify(tmp_path, doc) and check_doc(doc) and check_checkpoint(doc, tmp_path)
    # Forged: the checkpoint's PCR 2 set to another value, its signature kept.
    log = state / "eventlog"
    text = log.read_text()
    log.write_text(text.replace(f"pcr2={doc['checkpoint']['pcrs']['2']}", "pcr2=" + "ab" * 48, 1))
    r = run(CHIP, "--state", state, "attest", "x")
    assert r.returncode == 1 and "forged checkpoint" in r.stderr, r.stderr
    # Or the checkpoint dropped (the events after it then start at the wrong seq).
    log.write_text("".join(l + "\n" for l in text.splitlines()[1:]))
    assert run(CHIP, "--state", state, "attest", "x").returncode == 1
    # Or the key removed: refused, and no new key is made to sign anything else.
    log.write_text(text)
    (state / "attestation-key.pem").unlink()
    r = run(CHIP, "--state", state, "attest", "x")
    assert r.returncode == 1 and "no attestation key" in r.stderr, r.stderr
    assert not (state / "attestation-key.pem").exists()


def test_attestation_bad_nonce(state):
    for n in ("", "a b", "x" * 129, "é"):
        r = run(CHIP, "--state", state, "attest", n)
        assert r.returncode == 1 and "nonce" in r.stderr


def test_event_log_corruption_refused(state):
    """A malformed event log stops the chip (it never attests over a log it cannot replay).
    A well-formed rewrite by root is not detectable from the state dir alone: see
    docs/security.md (the state dir is the chip's "hardware")."""
    assert run(CHIP, "--state", state, "exec", BUILD / "nitro-hv").returncode == 0
    log = state / "eventlog"
    log.write_text(log.read_text().replace(" 0 exec ", " 9 exec "))
    r = run(CHIP, "--state", state, "attest", "x")
    assert r.returncode == 1 and "eventlog" in r.stderr and "line 1" in r.stderr


# ---- audit log ----

def make_audit(path, n=6):
    for i in range(n):
        r = run(AUDIT, "--append", path, 1000 + i, "GET", f"/v1/instances/i-{i}", 200, "ok")
        assert r.returncode == 0, r.stderr


def test_audit_chain_intact(tmp_path):
    p = tmp_path / "audit.log"
    make_audit(p)
    r = run(AUDIT, p)
    assert r.returncode == 0 and "6 lines, chain intact" in r.stdout
    assert oct(p.stat().st_mode & 0o777) == "0o600"


def test_audit_edited_line_detected(tmp_path):
    p = tmp_path / "audit.log"
    make_audit(p)
    lines = p.read_text().splitlines(keepends=True)
    lines[3] = lines[3].replace("uid=1003", "uid=1999")
    p.write_text("".join(lines))
    r = run(AUDIT, p)
    assert r.returncode == 1 and "line 4: hash mismatch (line edited)" in r.stderr


def test_audit_removed_line_detected(tmp_path):
    p = tmp_path / "audit.log"
    make_audit(p)
    lines = p.read_text().splitlines(keepends=True)
    del lines[2]
    p.write_text("".join(lines))
    r = run(AUDIT, p)
    assert r.returncode == 1 and "line 3: prev does not match line 2" in r.stderr


# ---- jailer and seccomp ----

def jail(tmp_path, *cmd, kind="card-ebs", extra=(), **kw):
    return run(CHIP, "jail", "--kind", kind, "--uid", UID, "--gid", UID, "--dir", tmp_path / "jail",
               *extra, "--", *cmd, **kw)


def probe_report(r):
    assert r.returncode == 0, r.stderr
    return dict(l.split("=", 1) for l in r.stdout.splitlines() if "=" in l)


def test_jail_hides_host_and_drops_privileges(tmp_path):
    secret = tmp_path / "secret"
    secret.write_text("x")
    keep = os.open(secret, os.O_RDONLY)
    other = os.open(secret, os.O_RDONLY)
    try:
        r = jail(tmp_path, PROBE, extra=("--keep-fd", keep, "--bind", "/dev/kvm,dev,optional"),
                 pass_fds=(keep, other))
    finally:
        os.close(keep)
        os.close(other)
    rep = probe_report(r)
    assert rep["uid"] == rep["euid"] == rep["gid"] == str(UID)
    assert rep["ngroups"] == "0"
    assert rep["no_new_privs"] == "1"
    assert rep["shadow"] == rep["passwd"] == rep["home"] == rep["proc"] == "0"
    assert rep["root_writable"] == "0"
    assert rep["fds"] == f"0,1,2,{keep},"  # the kept fd only; `other` was closed
    if os.path.exists("/dev/kvm"):
        assert rep["kvm"] == "1"


def test_jail_passes_fds_at_the_numbers_asked(tmp_path):
    """A launcher's fd (a key pipe, an underlay socket) arrives at the number the jailed
    program's argv names, whatever its number in the launcher; nothing else leaks."""
    r1, w1 = os.pipe()
    r2, w2 = os.pipe()
    try:
        # swapped: each source sits on the other's target
        r = jail(tmp_path, PROBE, extra=("--pass-fd", f"{r1}:{r2}", "--pass-fd", f"{r2}:{r1}",
                                         "--pass-fd", f"{w1}:{max(r1, r2, w1, w2) + 5}"),
                 pass_fds=(r1, r2, w1, w2))
    finally:
        for f in (r1, w1, r2, w2):
            os.close(f)
    rep = probe_report(r)
    want = sorted({0, 1, 2, r1, r2, max(r1, r2, w1, w2) + 5})
    assert rep["fds"] == ",".join(str(f) for f in want) + ",", rep
    r = jail(tmp_path, PROBE, extra=("--pass-fd", "1:2"))
    assert r.returncode == 1 and "fd 1 to pass as 2" in r.stderr, r


def test_jail_refuses_root_and_reports_errors(tmp_path):
    r = run(CHIP, "jail", "--kind", "hv", "--uid", 0, "--gid", UID, "--dir", tmp_path / "j", "--", PROBE)
    assert r.returncode == 2  # usage: uid must be >= 1
    r = jail(tmp_path, PROBE, extra=("--bind", "/nonexistent/thing"))
    assert r.returncode == 1 and "bind /nonexistent/thing: No such file or directory" in r.stderr
    r = jail(tmp_path, "/nonexistent/bin")
    assert r.returncode == 1 and "/nonexistent/bin" in r.stderr


@pytest.mark.parametrize("kind", ["hv", "card-ebs", "card-vpc", "card-tpm", "card-vsock", "igw"])
def test_seccomp_allows_listed_calls(tmp_path, kind):
    for call in ("getpid", "eventfd"):
        r = jail(tmp_path, PROBE, "call", call, kind=kind, extra=("--seccomp",))
        assert r.returncode == 0 and f"survived {call}" in r.stdout and f"filter={kind}" in r.stdout, r


@pytest.mark.parametrize("kind,call", [("hv", "socket-inet"), ("hv", "openat"), ("hv", "ptrace"),
                                       ("hv", "fork"), ("hv", "mmap-exec"), ("card-ebs", "openat"),
                                       ("card-ebs", "mmap-exec"),
                                       ("card-ebs", "socket-inet"), ("card-vpc", "ptrace"),
                                       ("card-tpm", "socket-inet"), ("card-tpm", "mmap-exec"),
                                       ("card-tpm", "openat-append"), ("card-tpm", "fork"),
                                       ("card-vsock", "openat"), ("card-vsock", "socket-inet"),
                                       ("card-vsock", "socket-unix"), ("card-vsock", "fork"),
                                       ("card-vsock", "mmap-exec"), ("card-vsock", "ptrace"),
                                       ("igw", "socket-raw"), ("igw", "socket-inet6"),
                                       ("igw", "socket-unix"), ("igw", "bind"), ("igw", "ptrace"),
                                       ("igw", "fork"), ("igw", "mmap-exec"),
                                       ("igw", "openat-append")])
def test_seccomp_kills_with_sigsys(tmp_path, kind, call):
    r = jail(tmp_path, PROBE, "call", call, kind=kind, extra=("--seccomp",))
    assert r.returncode == 128 + signal.SIGSYS, (r.returncode, r.stdout, r.stderr)
    assert f"filter={kind}" in r.stdout and "survived" not in r.stdout


def test_seccomp_tpm_card_reads_its_state(tmp_path):
    # card-tpm may open read-only (its blobs, under the state folder's fd); appending or
    # anything but a truncating write-create is a kill (above).
    r = jail(tmp_path, PROBE, "call", "openat", kind="card-tpm", extra=("--seccomp",))
    assert r.returncode == 0 and "survived openat" in r.stdout, r


def test_seccomp_execve_refused_not_allowed(tmp_path):
    r = jail(tmp_path, PROBE, "call", "execve", kind="hv", extra=("--seccomp",))
    assert r.returncode == 0 and "survived execve rc=-1 errno=1" in r.stdout


def test_seccomp_unknown_kind_fails_closed(tmp_path):
    r = jail(tmp_path, PROBE, "call", "getpid", kind="card-nope", extra=("--seccomp",))
    assert r.returncode == 3 and "unknown process kind" in r.stderr


# ---- what each jailed process gets (issue 10 items 7, 8, 9, 12) ----

def test_jail_pid_namespace_hides_and_protects_host_processes(tmp_path):
    """The jailed process is pid 1 of its own PID namespace: it cannot see or signal a
    host process, not even one of its own uid (before: kill worked)."""
    victim = subprocess.Popen(["sleep", "60"], user=UID, group=UID)
    try:
        rep = probe_report(jail(tmp_path, PROBE))
        assert rep["pid"] == "1" and rep["ppid"] == "0", rep
        r = jail(tmp_path, PROBE, "kill", victim.pid)
        assert r.returncode == 0 and f"kill rc=-1 errno={errno.ESRCH}" in r.stdout, r
        time.sleep(0.1)
        assert victim.poll() is None, "the jailed process killed a host process"
    finally:
        victim.kill()
        victim.wait()


def test_jail_read_only_bind_is_read_only_below_too(tmp_path):
    """A folder bound read-only with a writable mount inside it (a tmpfs here): the
    submount is read-only in the jail too (before: writable)."""
    data = tmp_path / "data"
    sub = data / "sub"
    sub.mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "-o", "mode=0777,size=1m", "jailtest", sub], check=True)
    try:
        os.chmod(data, 0o755)
        r = jail(tmp_path, PROBE, "write", "/data/sub/x", extra=("--bind", f"{data}=/data"))
        assert r.returncode == 0 and f"ok=0 errno={errno.EROFS}" in r.stdout, r
        assert not (sub / "x").exists()
        # A writable bind stays writable (the attribute follows the flag, recursively).
        r = jail(tmp_path, PROBE, "write", "/data/sub/x", extra=("--bind", f"{data}=/data,rw"))
        assert r.returncode == 0 and "ok=1" in r.stdout, r
    finally:
        subprocess.run(["umount", sub], check=True)


@pytest.fixture
def host_services():
    """A TCP listener on 127.0.0.1 and an abstract unix socket in the host's network
    namespace: what a compromised card must not reach. Yields (port, name, accepted())."""
    tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    tcp.bind(("127.0.0.1", 0))
    tcp.listen(8)
    name = f"nitro-jail-test-{os.getpid()}"
    uds = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    uds.bind("\0" + name)
    uds.listen(8)
    for s in (tcp, uds):
        s.setblocking(False)

    def accepted():
        n = 0
        for s in (tcp, uds):
            try:
                while True:
                    c, _ = s.accept()
                    c.close()
                    n += 1
            except BlockingIOError:
                pass
        return n

    yield tcp.getsockname()[1], name, accepted
    tcp.close()
    uds.close()


@pytest.mark.parametrize("kind", ["card-vpc", "card-ebs"])
def test_card_seccomp_refuses_any_socket(tmp_path, host_services, kind):
    """Cards make no socket after set-up: TCP to 127.0.0.1 and an abstract unix socket
    end the card with SIGSYS even without a network namespace (before: the VPC card
    connected to both)."""
    port, name, accepted = host_services
    for call in (("tcp", port), ("abstract", name)):
        r = jail(tmp_path, PROBE, "call", *call, kind=kind, extra=("--seccomp",))
        assert r.returncode == 128 + signal.SIGSYS, (call, r)
        assert "survived" not in r.stdout
    assert accepted() == 0


def test_igw_seccomp_allows_outbound_tcp_only(tmp_path, host_services):
    """The internet gateway's NAT (nitro-vpc-igw) is the one process that makes sockets
    after set-up: AF_INET TCP/UDP, connected outward. It may not listen (bind is a kill,
    above), nor reach an abstract unix socket, nor open a raw or IPv6 socket."""
    port, name, accepted = host_services
    r = jail(tmp_path, PROBE, "call", "tcp", port, kind="igw", extra=("--seccomp",))
    assert r.returncode == 0 and "survived tcp rc=0" in r.stdout, r
    r = jail(tmp_path, PROBE, "call", "abstract", name, kind="igw", extra=("--seccomp",))
    assert r.returncode == 128 + signal.SIGSYS, r
    r = jail(tmp_path, PROBE, "call", "openat", kind="igw", extra=("--seccomp",))
    assert r.returncode == 0 and "survived openat" in r.stdout, r  # /etc/resolv.conf


def test_hv_seccomp_allows_only_unix_stream(tmp_path, host_services):
    port, name, accepted = host_services
    r = jail(tmp_path, PROBE, "call", "tcp", port, kind="hv", extra=("--seccomp",))
    assert r.returncode == 128 + signal.SIGSYS, r
    # AF_UNIX SOCK_STREAM is nitro-hv's (reconnecting to a card); its own network
    # namespace keeps the host's abstract sockets out of reach.
    r = jail(tmp_path, PROBE, "call", "abstract", name, kind="hv", extra=("--seccomp", "--newnet"))
    assert r.returncode == 0 and "survived abstract rc=-1" in r.stdout, r
    assert accepted() == 0


@pytest.mark.parametrize("kind", ["card-vpc", "card-ebs", "hv"])
def test_own_network_namespace_reaches_no_host_service(tmp_path, host_services, kind):
    """nitrod jails every process with its own network namespace: even without a filter,
    the host's loopback TCP services and abstract sockets are not there."""
    port, name, accepted = host_services
    for call in (("tcp", port), ("abstract", name)):
        r = jail(tmp_path, PROBE, "call", *call, kind=kind, extra=("--newnet",))
        assert r.returncode == 0 and f"survived {call[0]} rc=-1" in r.stdout, (call, r)
    assert accepted() == 0


# cgroup v2 limits: natively where this host has cgroup v2 with memory, pids and cpu,
# else (a hybrid cgroup v1 host) in the emulated host, which has (test_cgroups_in_...).
CGROOT = pathlib.Path("/sys/fs/cgroup")


def cgroup_v2():
    return host_has_cgroup_v2(CGROOT)


needs_cgroup = pytest.mark.skipif(not cgroup_v2(), reason="no cgroup v2 memory/pids/cpu on this "
                                  "host: test_cgroups_in_the_emulated_host runs these there")


def test_cgroups_in_the_emulated_host():
    if cgroup_v2():
        pytest.skip("this host has cgroup v2: the cgroup tests run natively")
    r = subprocess.run([BUILD / "nitro", "emuhost", "--memory", "1536", "--", "/usr/bin/python3", "-m",
                        "pytest", "-v", "--color=no", "-p", "no:cacheprovider", __file__, "-k", "cgroup_"],
                       capture_output=True, text=True, timeout=900)
    assert r.returncode == 0 and " 4 passed" in r.stdout, r.stdout[-4000:] + r.stderr[-2000:]


def cg_jail(tmp_path, name, *cmd, limits=(), **kw):
    return subprocess.Popen([str(a) for a in (CHIP, "jail", "--kind", "card-ebs", "--uid", UID, "--gid", UID,
                                              "--dir", tmp_path / "jail", "--cgroup", name, *limits,
                                              "--", *cmd)],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, **kw)


@needs_cgroup
def test_cgroup_fork_bomb_stops_at_pids_max(tmp_path):
    name = f"t{os.getpid()}"
    p = cg_jail(tmp_path, f"{name}/bomb", PROBE, "forkbomb", 500, limits=("--pids-max", 16))
    out, err = p.communicate(timeout=60)
    assert p.returncode == 0, err
    forks, e = (int(w.split("=")[1]) for w in out.split())
    assert forks == 15 and e == errno.EAGAIN, out  # 16 with the probe itself
    assert not (CGROOT / "nitro" / name).exists(), "the cgroup is removed when its process ends"


@needs_cgroup
def test_cgroup_limits_set_and_removed(tmp_path):
    name = f"t{os.getpid()}"
    p = cg_jail(tmp_path, f"{name}/probe", PROBE, "wait",
                limits=("--memory-max", 64 << 20, "--pids-max", 8, "--cpu-weight", 50))
    try:
        line = p.stderr.readline()
        assert line.startswith("nitro-chip: cgroup "), line
        leaf = pathlib.Path(line.split()[-1])
        assert leaf == CGROOT / "nitro" / name / "probe"
        for d in (leaf, leaf.parent):
            assert (d / "memory.max").read_text().strip() == str(64 << 20)
            assert (d / "pids.max").read_text().strip() == "8"
            assert (d / "cpu.weight").read_text().strip() == "50"
            if (d / "memory.swap.max").exists():
                assert (d / "memory.swap.max").read_text().strip() == "0"
        pids = (leaf / "cgroup.procs").read_text().split()
        assert len(pids) == 1
        st = (pathlib.Path("/proc") / pids[0] / "status").read_text()
        nspid = [l for l in st.splitlines() if l.startswith("NSpid:")][0].split()
        assert nspid[1:] == [pids[0], "1"], nspid  # pid 1 in its own namespace, born in the leaf
    finally:
        p.stdin.close()
        p.wait(timeout=30)
    assert p.returncode == 0
    assert not (CGROOT / "nitro" / name).exists()


@needs_cgroup
def test_cgroup_memory_max_stops_the_process(tmp_path):
    """memory.max holds: a jailed process that allocates past it is killed by the OOM
    killer of its cgroup, nothing else."""
    name = f"t{os.getpid()}"
    p = cg_jail(tmp_path, f"{name}/mem", PROBE, "eat", 24, limits=("--memory-max", 32 << 20))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 0 and "ate 24 MiB" in out, (p.returncode, out, err)
    p = cg_jail(tmp_path, f"{name}/mem", PROBE, "eat", 64, limits=("--memory-max", 32 << 20))
    out, err = p.communicate(timeout=120)
    assert p.returncode == 128 + signal.SIGKILL and "ate" not in out, (p.returncode, out, err)
    assert not (CGROOT / "nitro" / name).exists()


def api(sock, method, path, body=None):
    r = api_call(sock, method, path, body)
    return r.status, r.json()


@needs_cgroup
def test_cgroup_nitrod_instance_limits_namespaces_and_keys(tmp_path):
    """One instance through nitrod, jailed: each process in its cgroup leaf with the
    documented defaults (docs/security.md), pid 1 of its own PID namespace; the EBS card
    got its key on --key-fd and has no master.key in its jail; the VPC card has its own
    network namespace; the instance's cgroup goes when it is terminated."""
    if not os.path.exists("/dev/kvm"):
        pytest.fail("needs /dev/kvm: run it in the emulated host (test_cgroups_in_the_emulated_host)")
    sock, state = str(tmp_path / "api.sock"), tmp_path / "state"
    log = open(tmp_path / "nitrod.log", "w")
    d = subprocess.Popen([BUILD / "nitrod", "--socket", sock, "--state", state],
                         stdout=log, stderr=subprocess.STDOUT)
    iid = None
    try:
        for _ in range(500):
            if os.path.exists(sock):
                break
            assert d.poll() is None, (tmp_path / "nitrod.log").read_text()
            time.sleep(0.02)
        st, vol = api(sock, "POST", "/v1/volumes", {"size_mib": 16})
        assert st == 201 and vol["encrypted"], vol
        st, inst = api(sock, "POST", "/v1/instances", {"memory_mib": 128, "cpus": 1, "volumes": [vol["id"]],
                                                       "nics": [{"vpc": 3, "ip": "10.0.0.9/24"}]})
        assert st == 201, inst
        iid = inst["id"]
        for _ in range(1000):
            st, inst = api(sock, "GET", f"/v1/instances/{iid}")
            if inst["state"] != "pending":
                break
            time.sleep(0.02)
        assert inst["state"] == "running", (inst, (tmp_path / "nitrod.log").read_text())
        hv, (ebs, vpc) = inst["hv_pid"], inst["card_pids"]
        cg = CGROOT / "nitro" / iid
        mib = 1 << 20
        want = {cg: (128 + 256 + 2 * 128, 32 + 1 + 2 * 64, 100), cg / "hv": (128 + 256, 32 + 1, 100),
                cg / "c0": (128 + 128, 64, 100), cg / "c1": (128 + 128, 64, 100)}
        for d_, (mem, pids, weight) in want.items():
            assert (d_ / "memory.max").read_text().strip() == str(mem * mib), d_
            assert (d_ / "pids.max").read_text().strip() == str(pids), d_
            assert (d_ / "cpu.weight").read_text().strip() == str(weight), d_
        for pid, leaf in ((hv, "hv"), (ebs, "c0"), (vpc, "c1")):
            assert pathlib.Path(f"/proc/{pid}/cgroup").read_text().strip() == f"0::/nitro/{iid}/{leaf}"
            status = pathlib.Path(f"/proc/{pid}/status").read_text()
            assert [l for l in status.splitlines() if l.startswith("NSpid:")][0].split()[1:] == [str(pid), "1"]
        # The EBS card: its key came on a pipe; no master key anywhere in its jail.
        cmdline = pathlib.Path(f"/proc/{ebs}/cmdline").read_bytes().split(b"\0")
        assert b"--key-fd" in cmdline, cmdline
        found = [os.path.join(r, f) for r, _, fs in os.walk(f"/proc/{ebs}/root") for f in fs]
        assert found and not [f for f in found if "master.key" in f], found
        assert "master.key" not in pathlib.Path(f"/proc/{ebs}/mountinfo").read_text()
        # The VPC card: an empty network namespace of its own, the underlay as an fd.
        assert os.readlink(f"/proc/{vpc}/ns/net") != os.readlink("/proc/self/ns/net")
        assert b"--underlay-fd" in pathlib.Path(f"/proc/{vpc}/cmdline").read_bytes()
        st, _ = api(sock, "DELETE", f"/v1/instances/{iid}")
        assert st == 200
        for _ in range(1000):
            st, inst = api(sock, "GET", f"/v1/instances/{iid}")
            if inst["state"] == "terminated":
                break
            time.sleep(0.02)
        assert inst["state"] == "terminated", inst
        assert not cg.exists(), "the instance's cgroup is removed when it ends"
    finally:
        d.terminate()
        d.wait(timeout=30)
        log.close()
        if iid and (CGROOT / "nitro" / iid).exists():  # a failed test leaves nothing running
            for p in (CGROOT / "nitro" / iid).glob("*/cgroup.procs"):
                for pid in p.read_text().split():
                    os.kill(int(pid), signal.SIGKILL)
