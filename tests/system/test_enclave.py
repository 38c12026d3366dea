"""Nitro Enclaves end to end (issue 12): a parent instance with the NE device loads the stock
`nitro_enclaves` driver, `nitro-enclave run`s an EIF (tools/enclave_eif.sh), the enclave's
init sends the heartbeat, its payload gets an attestation document with the test's nonce
through the stock `nsm` driver's /dev/nsm and sends it to the parent over vsock; the
document is verified here with Debian's python3-cbor2 + python3-cryptography against
`nitro enclave root-cert` and `nitro eif build`'s PCRs. terminate gives CPUs and memory
back; two enclaves run at once; malformed EIFs are refused with a clear error.

The parent runs tests/system/enclave_e2e.sh (in build/enclave/parent-initrd.img) and reports
E2E-* lines on its console. The raw-ioctl launch (a client written from the kernel docs)
is tests/system/ne_ioctl.c of the NE device's work, not repeated here."""
import glob
import hashlib
import json
import os
import re
import secrets
import subprocess
import tempfile
import time

import pytest

from conftest import NITRO, cmdline

ENCLAVE = NITRO.parent / "enclave"
PARENT_INITRD = ENCLAVE / "parent-initrd.img"


def parent(step, *args, memory=1536, cpus=3, timeout=900):
    """Boots the parent with enclaves and runs one step of enclave_e2e.sh; the console."""
    assert PARENT_INITRD.exists(), "make build/enclave/parent-initrd.img"
    script = " ".join(["sh /enclave/e2e.sh", step, *args])
    p = subprocess.run([str(NITRO), "run", "--require-kvm", "--enclaves", "--cpus", str(cpus),
                        "--memory", str(memory), "--initrd", str(PARENT_INITRD),
                        "--cmdline", cmdline(script, extra="quiet")],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=timeout)
    out = p.stdout + p.stderr
    if os.environ.get("NITRO_E2E_DUMP"):  # the whole console, to read a failure
        (NITRO.parent / f"e2e-{step}.log").write_text(out)
    assert p.returncode == 0, out[-4000:]
    assert "E2E-NO-DEVICE" not in out, "no /dev/nitro_enclaves in the parent:\n" + out[-4000:]
    assert f"E2E-DONE {step}" in out, out[-4000:]
    return out


def lines(out, tag):
    return [ln.strip() for ln in out.splitlines() if ln.startswith(tag)]


def state(out, when):
    ln = [x for x in lines(out, "E2E-STATE ") if x.startswith(f"E2E-STATE {when} ")]
    assert ln, out[-3000:]
    return dict(kv.split("=", 1) for kv in ln[0].split()[2:])


def run_result(out, name):
    ln = [x for x in lines(out, "E2E-RUN ") if x.startswith(f"E2E-RUN {name} ")]
    assert ln, out[-3000:]
    m = re.match(r"E2E-RUN \S+ status=(\d+) ms=(\d+) json=(.*?) err=(.*)$", ln[0])
    return int(m.group(1)), (json.loads(m.group(3)) if m.group(3) else None), m.group(4)


def run_ms(out, name):
    """How long `nitro-enclave run` NAME took (it returns once the heartbeat came)."""
    ln = [x for x in lines(out, "E2E-RUN ") if x.startswith(f"E2E-RUN {name} ")]
    return int(re.match(r"E2E-RUN \S+ status=\d+ ms=(\d+) ", ln[0]).group(1))


def describe(out, when):
    ln = [x for x in lines(out, "E2E-DESCRIBE ") if x.startswith(f"E2E-DESCRIBE {when} ")]
    assert ln, out[-3000:]
    return json.loads(ln[0].split(" ", 2)[2])


def nsm_response(out):
    chunks = {}
    for ln in lines(out, "ENCLAVE-NSM "):
        m = re.fullmatch(r"ENCLAVE-NSM (\d+) ([0-9a-f]+)", ln)
        assert m, f"a console line of the response is damaged: {ln!r}"
        chunks[int(m.group(1))] = bytes.fromhex(m.group(2))
    end = lines(out, "ENCLAVE-NSM-END ")
    assert end, out[-4000:]
    total = int(end[0].split()[1])
    data = b"".join(chunks[o] for o in sorted(chunks))
    assert len(data) == total
    return data


def verify(doc, nonce, pcrs, root_pem):
    """The attestation-document checks of docs/enclaves.md (tests/pylib/attestation.py: the
    COSE signature, the chain to root_pem, CA flags, validity), then the nonce and the
    PCRs `nitro eif build` printed; raises on any failure. Returns the payload."""
    from attestation import verify_document

    p, _, _ = verify_document(doc, root_pem)
    assert p["nonce"] == nonce
    for i in (0, 1, 2):
        assert p["pcrs"][i].hex() == pcrs[f"PCR{i}"], f"PCR{i}"
    return p


def test_enclave_runs_its_memory_is_hidden_and_terminate_gives_back():
    out = parent("run")
    status, info, err = run_result(out, "idle")
    assert status == 0, err + out[-4000:]
    assert set(info) == {"EnclaveName", "EnclaveID", "ProcessID", "EnclaveCID", "NumberOfCPUs",
                         "CPUIDs", "MemoryMiB"}
    assert info["EnclaveName"] == "idle" and info["EnclaveCID"] == 16, info
    assert info["NumberOfCPUs"] == 1 and info["CPUIDs"] == [1] and info["MemoryMiB"] == 256
    print(f"\nenclave start: nitro-enclave run to heartbeat {run_ms(out, 'idle')} ms "
          "(idle.eif, 1 vCPU, 256 MiB, in the emulated host)")
    running = describe(out, "running")
    assert [(e["EnclaveID"], e["State"], e["Flags"]) for e in running] == [
        (info["EnclaveID"], "RUNNING", "NONE")], running
    # The parent's root reads the donated pages through the enclave process's own mapping:
    # zeros (nitro-hv's read-only zero slot), not the EIF the tool wrote at 8 MiB nor
    # anything the enclave wrote since. The same read path sees its own bytes.
    assert "E2E-PEEK-SELF nonzero=2097152" in out, out[-3000:]
    assert f"E2E-PEEK map={256 << 20} magic=00000000 nonzero=0" in out, out[-3000:]
    # While it ran, CPU 1 was the enclave's (offline in the parent), the pages taken.
    before, during, after = state(out, "before"), state(out, "running"), state(out, "after")
    assert during["pool"] == "1" and during["online"] == "0,2", during
    assert int(during["hp_nr"]) - int(during["hp_free"]) >= 128, during
    assert f'"EnclaveID":"{info["EnclaveID"]}"' in out and "\"Terminated\":true" in out
    assert describe(out, "after") == []
    assert before == after, (before, after)
    assert before["pool"] == "" and before["online"] == "0-2", before
    # Root in the parent onlined the donated CPU while the enclave ran: nitro-hv held that
    # vCPU out of KVM_RUN, so the kernel's bring-up failed and the CPU stayed offline; once
    # the enclave ended, it was released (the pool teardown onlined it: "after" above; an
    # offline/online round again works).
    held = lines(out, "E2E-ONLINE held ")
    assert held, out[-3000:]
    m = re.match(r"E2E-ONLINE held status=(\d+) ms=(\d+) cpu1=(\d) err=(.*)$", held[0])
    assert m and m.group(1) != "0" and m.group(3) == "0", held[0] + out[-3000:]
    print(f"\nonlining a held CPU failed after {m.group(2)} ms: {m.group(4)}")
    assert "E2E-ONLINE released status=0 cpu1=1" in out, out[-3000:]


@pytest.mark.skipif(not (NITRO.parent / "nitro-card-nsm").exists(),
                    reason="needs the NSM card (nitro-card-nsm)")
def test_attestation_from_an_enclave_verifies():
    nonce = secrets.token_bytes(32)
    out = parent("attest", nonce.hex())
    status, info, err = run_result(out, "attest")
    assert status == 0, err
    assert set(info) == {"EnclaveName", "EnclaveID", "ProcessID", "EnclaveCID", "NumberOfCPUs",
                         "CPUIDs", "MemoryMiB"}
    assert info["NumberOfCPUs"] == 1 and info["MemoryMiB"] == 256 and info["EnclaveCID"] > 3
    assert info["EnclaveID"].endswith(f"-enc{int(info['EnclaveID'].rsplit('enc', 1)[1], 16):x}")
    running = describe(out, "running")
    assert running and running[0]["EnclaveID"] == info["EnclaveID"]
    assert running[0]["State"] == "RUNNING" and running[0]["Flags"] == "NONE"
    assert "E2E-PARENT status=0" in out
    resp = nsm_response(out)
    import cbor2
    doc = cbor2.loads(resp)["Attestation"]["document"]
    pcrs = json.loads((ENCLAVE / "test.json").read_text())["Measurements"]
    root = subprocess.run([str(NITRO), "enclave", "root-cert"], capture_output=True,
                          check=True).stdout
    p = verify(doc, nonce, pcrs, root)
    # The parent's identity: module_id and PCR4 (SHA-384 of 48 zero bytes and its id).
    parent_id, slot = info["EnclaveID"].rsplit("-enc", 1)
    m_parent, m_slot = p["module_id"].rsplit("-enc", 1)
    assert (m_parent, int(m_slot, 16)) == (parent_id, int(slot, 16)), p["module_id"]
    assert p["pcrs"][4] == hashlib.sha384(bytes(48) + parent_id.encode()).digest()
    print(f"\nenclave attestation: {len(doc)}-byte document from {p['module_id']} verified "
          f"(nonce, PCR0-2 of test.eif, PCR4, chain to `nitro enclave root-cert`); "
          f"run to heartbeat {run_ms(out, 'attest')} ms")
    bad = bytearray(doc)
    bad[len(bad) // 2] ^= 1
    with pytest.raises(Exception):
        verify(bytes(bad), nonce, pcrs, root)
    with pytest.raises(AssertionError):
        verify(doc, b"another nonce", pcrs, root)
    # The enclave powered off after its payload; everything went back to the parent: the
    # CPU pool nitro-enclave set (and with it the CPU), and the huge pages it added.
    assert describe(out, "after") == []
    before, after = state(out, "before"), state(out, "after")
    assert before["pool"] == "" and after["pool"] == "", (before, after)
    assert after["online"] == before["online"]
    assert (after["hp_free"], after["hp_nr"]) == (before["hp_free"], before["hp_nr"])


def test_debug_console_is_kept_on_the_host():
    """A debug-mode enclave's console: the parent's nitro-hv keeps it in its run folder
    (RUN/enclave-UID.log, the newest 64 KiB at least) after the enclave ended, and `nitro
    enclave console RUN` prints it."""
    assert PARENT_INITRD.exists(), "make build/enclave/parent-initrd.img"
    rt = tempfile.mkdtemp(prefix="e2e-rt-")
    p = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--enclaves", "--cpus", "3",
                          "--memory", "1536", "--initrd", str(PARENT_INITRD), "--cmdline",
                          cmdline("sh /enclave/e2e.sh console", extra="quiet")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, env={**os.environ, "XDG_RUNTIME_DIR": rt})
    got, logs = None, []
    try:
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline and p.poll() is None and got is None:
            logs = glob.glob(os.path.join(rt, "nitro-run-*", "enclave-*.log"))
            if logs and b"enclave init: /bin/sh exited" in open(logs[0], "rb").read():
                got = subprocess.run([str(NITRO), "enclave", "console",
                                      os.path.dirname(logs[0])], capture_output=True)
            time.sleep(0.5)
        out = p.communicate(timeout=600)[0].decode(errors="replace")
    finally:
        if p.poll() is None:
            p.kill()
    assert got is not None, out[-4000:]
    assert got.returncode == 0, got.stderr
    assert [os.path.basename(x) for x in logs] == ["enclave-1.log"]
    con = got.stdout.decode(errors="replace")
    status, info, err = run_result(out, "dbg")
    assert status == 0 and info["EnclaveName"] == "dbg", err
    assert describe(out, "after") == []  # it had ended when the console was read
    assert "Linux version" in con and "enclave init: 4 module(s) loaded" in con, con[-3000:]
    assert "enclave payload: hello from" in con and "NITRO_TEST=42" in con, con[-3000:]
    assert len(got.stdout) <= 128 << 10
    # the run folder goes with the instance, consoles included
    assert not glob.glob(os.path.join(rt, "nitro-run-*")), os.listdir(rt)


def test_debug_console_from_the_parent_over_vsock():
    """`nitro-enclave console` in the parent, as nitro-cli: vsock CID 0 port CID + 10000,
    served by the vsock card from the enclave's console feed. The boot output comes first
    (kept), the stream stays open while the enclave runs and ends when it is terminated; a
    production enclave's console is refused in one line."""
    out = parent("vconsole")
    status, info, err = run_result(out, "vdbg")
    assert status == 0 and info["EnclaveCID"] > 3, err
    assert "E2E-CONSOLE-LIVE reading" in out, out[-4000:]
    st = lines(out, "E2E-CONSOLE-STATUS ")
    assert st == ["E2E-CONSOLE-STATUS 0"], (st, out[-4000:])
    con = "\n".join(ln[len("E2E-CON: "):] for ln in out.splitlines()
                    if ln.startswith("E2E-CON: "))
    assert "Linux version" in con and "enclave init: 4 module(s) loaded" in con, con[-3000:]
    assert "enclave init: running /bin/sleep" in con, con[-3000:]
    status, _, err = run_result(out, "prod")
    assert status == 0, err
    prod = lines(out, "E2E-CONSOLE-PROD ")
    assert prod and prod[0].startswith("E2E-CONSOLE-PROD 1 nitro-enclave: console: prod was "
                                       "not started with --debug-mode"), prod
    assert describe(out, "after") == []
    print(f"\nparent-side console: {len(con)} bytes of idle.eif's console over vsock "
          "(CID 0, port CID+10000), ended by terminate")


def span(out, name):
    """When `nitro-enclave run` NAME started and returned (ms since the parent booted)."""
    ln = [x for x in lines(out, "E2E-SPAN ") if x.startswith(f"E2E-SPAN {name} ")]
    assert ln, out[-3000:]
    return tuple(int(v) for v in ln[0].split()[2:4])


def test_two_enclaves_at_once_and_terminate_gives_back():
    """Three `nitro-enclave run`s started at the same moment in a parent whose enclave CPU
    pool holds two CPUs (aws-nitro-enclaves-cli #516: concurrent runs fail there): two
    enclaves boot at the same time (one heartbeat listener serves both), the third is
    refused in one line and gives back what it took; CPUs disjoint and never CPU 0, the
    huge pages of exactly two enclaves in use, terminate gives everything back."""
    out = parent("two", memory=2048, cpus=3)
    runs = {n: run_result(out, n) for n in ("one", "two", "three")}
    ok = {n: info for n, (st, info, _) in runs.items() if st == 0}
    failed = {n: err for n, (st, _, err) in runs.items() if st != 0}
    assert len(ok) == 2 and len(failed) == 1, (runs, out[-4000:])
    (loser, err), = failed.items()
    assert runs[loser][0] == 1, runs[loser]
    # refused by the driver at NE_CREATE_VM (no free core in the pool) or NE_ADD_VCPU
    assert re.fullmatch(r"nitro-enclave: run: NE_(CREATE_VM|ADD_VCPU \(vCPU 1 of 1\)): the "
                        r"enclave CPU pool has no free CPU left: .*\(NE_ERR_NO_CPUS_AVAIL_IN_"
                        r"POOL\)", err), err
    for n, info in ok.items():
        assert info["EnclaveName"] == n and info["NumberOfCPUs"] == 1, info
        assert info["EnclaveCID"] == {"one": info["EnclaveCID"], "two": 20, "three": 21}[n]
    a, b = ok.values()
    assert a["EnclaveCID"] != b["EnclaveCID"] and a["EnclaveID"] != b["EnclaveID"]
    assert set(a["CPUIDs"]).isdisjoint(b["CPUIDs"]), (a, b)
    assert 0 not in a["CPUIDs"] + b["CPUIDs"]
    # both booted at once: each run was under way while the other's enclave booted, and
    # they ended close together (one after the other, the later would end a whole boot,
    # about the earlier's run time, after it)
    (s1, e1), (s2, e2) = (span(out, n) for n in ok)
    assert s1 < e2 and s2 < e1, (s1, e1, s2, e2)
    assert abs(e1 - e2) < 0.6 * min(e1 - s1, e2 - s2), (s1, e1, s2, e2)
    both = describe(out, "both")
    assert sorted(e["EnclaveName"] for e in both) == sorted(ok)
    assert all(e["State"] == "RUNNING" for e in both), both
    first = re.search(r"^E2E-TERMINATE (\w+) ", out, re.M).group(1)
    assert first in ok
    assert [e["EnclaveName"] for e in describe(out, "one-left")] == [n for n in ok if n != first]
    assert describe(out, "none") == []
    before, running, after = state(out, "before"), state(out, "running"), state(out, "after")
    # exactly two enclaves' pages (2 x 96 of 2 MiB) in use; the refused run's given back
    assert int(before["hp_nr"]) - int(before["hp_free"]) == 0, before
    assert int(running["hp_nr"]) - int(running["hp_free"]) == 2 * 96, running
    assert int(running["hp_nr"]) == int(before["hp_nr"]) + 2 * 96, (before, running)
    # The user's pool stays (CPUs 1-2 offline in the parent, free for the next enclaves);
    # the huge pages nitro-enclave added are given back.
    assert after["pool"] == before["pool"] == "1-2" and after["online"] == before["online"]
    assert (after["hp_free"], after["hp_nr"]) == (before["hp_free"], before["hp_nr"])
    # the heartbeat listener ended with the last run that waited
    rundir = lines(out, "E2E-RUNDIR")
    assert rundir and "heartbeat.sock" not in rundir[0] and ".sock" not in rundir[0], rundir
    print(f"\nconcurrent runs: {', '.join(f'{n} {run_ms(out, n)} ms' for n in ok)} to heartbeat "
          f"(spans {s1}-{e1}, {s2}-{e2} ms); {loser} refused in {run_ms(out, loser)} ms")


def test_malformed_eifs_are_refused_with_a_clear_error():
    out = parent("malformed")
    status, _, err = run_result(out, "flipped")
    assert status == 1 and "the EIF is damaged: its CRC32 is" in err, err
    status, _, err = run_result(out, "truncated")
    assert status == 1 and "damaged" in err, err
    status, _, err = run_result(out, "toosmall")
    assert status == 2 and "an enclave needs at least 64 MiB; use --memory 64" in err, err
    # Well formed, so the tool's checks pass; the enclave's nitro-hv refuses it at START
    # (exit 5 -> ENOEXEC) and says why on the host.
    status, _, err = run_result(out, "notbz")
    assert status == 1 and ("NE_START_ENCLAVE: the enclave's hypervisor refused the image: "
                            "not a bootable EIF") in err, err
    assert re.search(r"nitro-hv: enclave \d+: EIF refused: its kernel section is not a "
                     r"bzImage", out), out[-4000:]
    assert describe(out, "after") == []
    assert state(out, "before") == state(out, "after")
