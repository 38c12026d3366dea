"""NitroTPM (issue 13) with the stock kernel: measured boot in the SHA-256 and SHA-384
banks, the event log, tpm2-tools (Debian's, copied with their libraries into a second
initramfs archive the kernel unpacks over the default one), a quote checked by
tpm2_checkquote on the host, the state across a guest reboot, and a TPM card killed with
a command in flight while the guest runs (that command fails, the next ones work, and the
guest's PCR extend and saved contexts survive the restart); the
ECC and RSA EK certificates verify against the chip's EK CA and certify the keys
tpm2_createek derives.

Two `nitro run`s, three guest boots: the main one (with a reboot inside the same run),
and one with the initrd plus a NUL byte."""
import base64
import gzip
import hashlib
import os
import pathlib
import re
import signal
import subprocess
import tempfile
import threading
import time

from conftest import NITRO, cmdline
from nitrotest import newc

IMAGES = pathlib.Path(os.environ.get("NITRO_CACHE", pathlib.Path.home() / ".cache/nitro")) / "images"
TPM2 = "/usr/bin/tpm2"
TCTI_DEVICE = "/usr/lib/x86_64-linux-gnu/libtss2-tcti-device.so.0"
NONCE = "1f2e3d4c5b6a7988"


def tools_archive(script):
    """tpm2 (tpm2-tools' multi-call binary), its libraries, the device TCTI and the test's
    guest script (/tpm-test.sh)."""
    libs = {TCTI_DEVICE}
    for f in (TPM2, TCTI_DEVICE):
        ldd = subprocess.run(["ldd", f], capture_output=True, text=True, check=True).stdout
        libs.update(m for m in re.findall(r"(/\S+\.so[.\d]*)", ldd))
    entries, dirs = [], set()
    files = [(TPM2, "/bin/tpm2")] + [(lib, lib) for lib in sorted(libs)]
    for src, dst in files:
        real = os.path.realpath(src)
        parts = pathlib.PurePosixPath(dst).parents
        for d in reversed(list(parts)[:-1]):
            if str(d) not in dirs:
                dirs.add(str(d))
                entries.append((str(d).lstrip("/"), 0o40755, None))
        entries.append((dst.lstrip("/"), 0o100755, pathlib.Path(real).read_bytes()))
    entries.append(("tpm-test.sh", 0o100755, script.encode()))
    return gzip.compress(newc(entries), compresslevel=1)


GUEST = r"""
export LD_LIBRARY_PATH=/lib/x86_64-linux-gnu:/usr/lib/x86_64-linux-gnu
export TPM2TOOLS_TCTI=device:/dev/tpmrm0
cd /tmp 2>/dev/null || { mkdir -p /tmp; cd /tmp; }
for p in 4 8 9; do echo "PCR$p=$(cat /sys/class/tpm/tpm0/pcr-sha256/$p)"; echo "PCR384-$p=$(cat /sys/class/tpm/tpm0/pcr-sha384/$p)"; done
if tpm2 getcap handles-persistent | grep -q 0x81000001; then
  echo TPM-PERSISTENT-OK; exit 0
fi
mkdir -p /sys/kernel/security; mount -t securityfs none /sys/kernel/security
echo "LOG=$(base64 /sys/kernel/security/tpm0/binary_bios_measurements | tr -d '\n')"
tpm2 getrandom --hex 16 && echo && echo GETRANDOM-OK
tpm2 nvread -C o 0x01c0000a -o ekcert.der && echo "FILE ekcert.der $(base64 ekcert.der | tr -d '\n')"
tpm2 createek -G ecc -c ek.ctx -u ek.pem -f pem && echo "FILE ek.pem $(base64 ek.pem | tr -d '\n')" 
tpm2 nvread -C o 0x01c00002 -o ekrsa.der && echo "FILE ekrsa.der $(base64 ekrsa.der | tr -d '\n')"
tpm2 createek -G rsa -c ekr.ctx -u ekr.pem -f pem && echo "FILE ekr.pem $(base64 ekr.pem | tr -d '\n')"
tpm2 getcap properties-variable | grep -i phEnable
tpm2 clear -c p >/dev/null 2>&1 || echo PLATFORM-CLEAR-REFUSED
tpm2 createprimary -Q -C o -G ecc -c prim.ctx && echo CREATEPRIMARY-OK
tpm2 startauthsession -S s.ctx && tpm2 policypcr -Q -S s.ctx -l sha256:9 -L pcr.pol && tpm2 flushcontext s.ctx
echo nitro-sealed-secret > secret
tpm2 create -Q -C prim.ctx -L pcr.pol -i secret -u seal.pub -r seal.priv && tpm2 load -Q -C prim.ctx -u seal.pub -r seal.priv -c seal.ctx
echo "UNSEAL=$(tpm2 unseal -c seal.ctx -p pcr:sha256:9)"
tpm2 create -Q -C prim.ctx -G ecc256:ecdsa-sha256:null -a 'fixedtpm|fixedparent|sensitivedataorigin|userwithauth|restricted|sign' -u ak.pub -r ak.priv && tpm2 load -Q -C prim.ctx -u ak.pub -r ak.priv -c ak.ctx
tpm2 readpublic -Q -c ak.ctx -f pem -o ak.pem
tpm2 quote -Q -c ak.ctx -l sha256:4,8,9 -q NONCE -m q.msg -s q.sig -o q.pcrs -g sha256 && echo QUOTE-OK
for f in ak.pem q.msg q.sig q.pcrs; do echo "FILE $f $(base64 $f | tr -d '\n')"; done
tpm2 pcrextend 9:sha256=0000000000000000000000000000000000000000000000000000000000000000
tpm2 unseal -c seal.ctx -p pcr:sha256:9 >/dev/null 2>&1 || echo UNSEAL-REFUSED-AFTER-EXTEND
echo "PCR9-EXTENDED=$(cat /sys/class/tpm/tpm0/pcr-sha256/9)"
# The host stops the TPM card (SIGSTOP), so that the next command (an RSA primary key) is
# certainly in flight when it then kills it (SIGKILL): that command fails, the next work.
echo STOP-CARD; sleep 3
( tpm2 createprimary -Q -C o -G rsa2048 -c rsa.ctx; echo "RSA-STATUS=$?" ) &
sleep 10; echo KILL-CARD; wait
tpm2 getrandom --hex 8 && echo && echo AFTER-RESTART-OK
# The restarted card resumed the TPM's volatile state: the guest's extend is still in
# PCR 9, and a context saved before the kill still loads.
echo "PCR9-AFTER=$(cat /sys/class/tpm/tpm0/pcr-sha256/9)"
tpm2 readpublic -Q -c prim.ctx >/dev/null && echo CONTEXT-KEPT
tpm2 createprimary -Q -C o -G ecc -c prim2.ctx && tpm2 evictcontrol -Q -C o -c prim2.ctx 0x81000001 && echo PERSISTED
reboot -f
""".replace("NONCE", NONCE)


def pcr(data):
    return hashlib.sha256(bytes(32) + hashlib.sha256(data).digest()).hexdigest().upper()


def pcr384(data):
    return hashlib.sha384(bytes(48) + hashlib.sha384(data).digest()).hexdigest().upper()




def children(pid):
    try:
        return [int(c) for c in pathlib.Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def card_pid(run_pid):
    """The nitro-card-tpm that this nitro run started (its child, by executable)."""
    for c in children(run_pid):
        try:
            if os.readlink(f"/proc/{c}/exe").endswith("nitro-card-tpm"):
                return c
        except OSError:
            pass
    return None


def test_tpm(tmp_path):
    kernel, base = IMAGES / "vmlinuz", IMAGES / "guest.img"
    initrd = tmp_path / "tpm-guest.img"
    initrd.write_bytes(base.read_bytes() + tools_archive(GUEST))
    state = tmp_path / "tpm-state"
    cmd = cmdline("sh /tpm-test.sh")
    env = dict(os.environ, NITRO_STATE=str(tmp_path / "host-state"))
    p = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--tpm-state", str(state), "--memory", "512",
                          "--kernel", str(kernel), "--initrd", str(initrd), "--cmdline", cmd],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace", env=env)
    out, err, stopped, killed = [], [], [], []
    threading.Thread(target=lambda: err.extend(p.stderr), daemon=True).start()
    deadline = time.time() + 900
    for line in p.stdout:
        out.append(line)
        if "STOP-CARD" in line and not stopped:
            c = card_pid(p.pid)
            assert c, "no TPM card process"
            os.kill(c, signal.SIGSTOP)
            stopped.append(c)
        if "KILL-CARD" in line and stopped and not killed:
            os.kill(stopped[0], signal.SIGKILL)
            killed.append(stopped[0])
        assert time.time() < deadline, "guest took too long"
    p.wait(timeout=60)
    text = "".join(out)
    guest = "".join(line for line in out if not line.startswith("["))  # no kernel log
    diag = f"status {p.returncode}\n--- guest\n{guest[-6000:]}\n--- stderr\n{''.join(err)[-3000:]}"
    assert p.returncode == 0, diag
    vals = dict(re.findall(r"^PCR(\d)=([0-9A-F]{64})", text, re.M))
    cmdline_str = cmd
    assert vals.get("4") == pcr(kernel.read_bytes()), diag
    assert vals.get("9") == pcr(initrd.read_bytes()), diag
    assert vals.get("8") == pcr(cmdline_str.encode()), diag
    # The SHA-384 bank, allocated beside SHA-256 on a new TPM, measured alike.
    v384 = dict(re.findall(r"^PCR384-(\d)=([0-9A-F]{96})", text, re.M))
    assert v384.get("4") == pcr384(kernel.read_bytes()), diag
    assert v384.get("9") == pcr384(initrd.read_bytes()), diag
    assert v384.get("8") == pcr384(cmdline_str.encode()), diag
    assert re.search(r"phEnable:\s*0", text), diag
    for mark in ("GETRANDOM-OK", "PLATFORM-CLEAR-REFUSED", "CREATEPRIMARY-OK", "UNSEAL=nitro-sealed-secret", "QUOTE-OK",
                 "UNSEAL-REFUSED-AFTER-EXTEND", "AFTER-RESTART-OK", "CONTEXT-KEPT", "PERSISTED",
                 "TPM-PERSISTENT-OK"):
        assert mark in text, f"{mark} missing\n{diag}"
    # The card was killed during a command: that one command failed (the guest did not
    # hang), the next ones worked, and the card came back with the TPM's state resumed.
    assert killed and "TPM card back" in "".join(err) and "TPM state resumed" in "".join(err), diag
    assert re.search(r"^RSA-STATUS=[1-9]", text, re.M), diag
    extended = re.search(r"^PCR9-EXTENDED=([0-9A-F]{64})", text, re.M).group(1)
    assert extended != vals["9"], diag
    assert re.search(r"^PCR9-AFTER=([0-9A-F]{64})", text, re.M).group(1) == extended, diag
    # The event log replays to the PCRs (tpm2_eventlog on the host).
    log = base64.b64decode(re.search(r"^LOG=(\S+)", text, re.M).group(1))
    (tmp_path / "log.bin").write_bytes(log)
    ev = subprocess.run(["tpm2_eventlog", str(tmp_path / "log.bin")], capture_output=True, text=True)
    assert ev.returncode == 0, ev.stderr
    for n in ("4", "8", "9"):
        assert re.search(rf"{n}\s*:\s*0x{vals[n]}", ev.stdout, re.I), ev.stdout
        assert re.search(rf"{n}\s*:\s*0x{v384[n]}", ev.stdout, re.I), ev.stdout
    # Every event carries both banks, as the header lists them.
    assert "numberOfAlgorithms: 2" in ev.stdout and "algorithmId: sha384" in ev.stdout, ev.stdout
    assert ev.stdout.count("DigestCount: 2") == 3 == ev.stdout.count("AlgorithmId: sha384"), ev.stdout
    # The quote verifies on the host against the AK, the nonce and the PCR values.
    files = dict(re.findall(r"^FILE (\S+) (\S+)", text, re.M))
    for name, b64 in files.items():
        (tmp_path / name).write_bytes(base64.b64decode(b64))
    chk = subprocess.run(["tpm2_checkquote", "-u", str(tmp_path / "ak.pem"), "-m", str(tmp_path / "q.msg"),
                          "-s", str(tmp_path / "q.sig"), "-f", str(tmp_path / "q.pcrs"), "-g", "sha256",
                          "-q", NONCE], capture_output=True, text=True)
    assert chk.returncode == 0, chk.stdout + chk.stderr
    # The EK certificate at NV 0x01c0000a verifies against the security chip's EK CA with
    # the openssl CLI, and certifies the key tpm2_createek derives (the standard template).
    ca = tmp_path / "host-state" / "ek-ca" / "ek-ca.pem"
    subprocess.run(["openssl", "x509", "-inform", "der", "-in", str(tmp_path / "ekcert.der"),
                    "-out", str(tmp_path / "ekcert.pem")], check=True)
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(tmp_path / "ekcert.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0 and ": OK" in v.stdout, v.stdout + v.stderr
    certkey = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "ekcert.pem"), "-pubkey", "-noout"],
                             capture_output=True, text=True, check=True).stdout
    ekkey = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(tmp_path / "ek.pem")],
                           capture_output=True, text=True, check=True).stdout
    assert certkey == ekkey
    assert (state / "ek-cert.der").read_bytes() == (tmp_path / "ekcert.der").read_bytes()
    # The RSA EK's certificate at 0x01c00002 likewise (template L-1: tpm2_createek -G rsa).
    subprocess.run(["openssl", "x509", "-inform", "der", "-in", str(tmp_path / "ekrsa.der"),
                    "-out", str(tmp_path / "ekrsa.pem")], check=True)
    v = subprocess.run(["openssl", "verify", "-CAfile", str(ca), str(tmp_path / "ekrsa.pem")],
                       capture_output=True, text=True)
    assert v.returncode == 0 and ": OK" in v.stdout, v.stdout + v.stderr
    certkey = subprocess.run(["openssl", "x509", "-in", str(tmp_path / "ekrsa.pem"), "-pubkey", "-noout"],
                             capture_output=True, text=True, check=True).stdout
    ekkey = subprocess.run(["openssl", "pkey", "-pubin", "-in", str(tmp_path / "ekr.pem")],
                           capture_output=True, text=True, check=True).stdout
    assert certkey == ekkey
    assert (state / "ek-cert-rsa.der").read_bytes() == (tmp_path / "ekrsa.der").read_bytes()
    # State at rest is ciphertext only.
    blob = (state / "permall.nvs").read_bytes()
    assert blob.startswith(b"NTPMNV01")

    # One NUL byte appended to the initrd, same kernel, command line and TPM state (a
    # stop/start): PCR 9 changes, PCR 4 and 8 do not; the persistent key is still there.
    nul = tmp_path / "nul.img"
    nul.write_bytes(initrd.read_bytes() + b"\0")
    r = subprocess.run([str(NITRO), "run", "--require-kvm", "--tpm-state", str(state), "--memory", "512",
                        "--kernel", str(kernel), "--initrd", str(nul), "--cmdline", cmd],
                       stdin=subprocess.DEVNULL, capture_output=True, text=True, errors="replace",
                       timeout=600, env=env)
    v2 = dict(re.findall(r"^PCR(\d)=([0-9A-F]{64})", r.stdout, re.M))
    assert r.returncode == 0 and len(v2) == 3, r.stdout[-3000:] + r.stderr[-2000:]
    assert v2["4"] == vals["4"] and v2["8"] == vals["8"]
    assert v2["9"] == pcr(nul.read_bytes()) != vals["9"]
    assert "TPM-PERSISTENT-OK" in r.stdout
