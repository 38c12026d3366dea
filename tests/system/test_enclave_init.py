"""The enclave's /init (src/enclave/init) booted as an ORDINARY guest: the test EIF's kernel
and ramdisks (tools/enclave_eif.sh: boot.cpio.gz + hello.cpio.gz as one initrd) under
`nitro run`. With no vsock peer the heartbeat fails with one clear line and init goes on:
it loads the modules the ramdisk carries, reads /env and /cmd, runs the command, reaps it
and powers the VM off."""
import re
import subprocess

from conftest import NITRO, cmdline

ENCLAVE = NITRO.parent / "enclave"
KERNEL_CMDLINE = "console=ttyS0 reboot=k panic=-1 random.trust_cpu=on"


def test_init_runs_cmd_without_a_vsock_peer_and_powers_off(nitro):
    initrd = ENCLAVE / "hello-initrd.img"
    assert initrd.exists(), "build first: make enclave-eif"
    b = nitro("--cpus", "1", "--memory", "256", "--initrd", str(initrd),
              "--cmdline", KERNEL_CMDLINE, timeout=240)
    out = b.out + b.err
    assert b.status == 0, b
    # The four modules of /lib/modules/load, none failed.
    assert "enclave init: 4 module(s) loaded\r\n" in out or "enclave init: 4 module(s) loaded\n" in out, b
    # No vsock peer: one line that says so, and init went on.
    m = re.search(r"enclave init: no heartbeat to the parent \(CID 3, port 9000\): ([^\r\n]+)", out)
    assert m and "going on" in m.group(1), b
    # /cmd ran with /env's environment; the NSM driver loaded but found no device.
    m = re.search(r"enclave payload: hello from (\S+), NITRO_TEST=(\S*), nsm: ([^\r\n]*)", out)
    assert m, b
    assert m.group(1).startswith("6.12"), m.group(0)
    assert m.group(2) == "42", m.group(0)
    assert "No such file" in m.group(3), m.group(0)
    assert "enclave init: /bin/sh exited with status 0; powering off" in out, b
    # /env and /cmd were read once and removed before the command ran: one "running" line.
    assert out.count("enclave init: running /bin/sh (2 argument(s), 2 environment variable(s))") == 1, b


def test_default_guest_image_carries_nitro_enclave(nitro):
    """guest.img loads the enclave driver and vsock and has /bin/nitro-enclave; without the
    NE device the tool says what to change, in one line."""
    # The image as this checkout builds it, made just before the boot: the image cache is
    # shared (~/.cache/nitro), and another checkout's `nitro images` may have rebuilt it
    # since the emulated host started.
    subprocess.run([str(NITRO), "images"], check=True, timeout=300)
    b = nitro("--cpus", "1", "--memory", "256", "--cmdline", cmdline(
        "grep -cE '^(nitro_enclaves|vsock|vmw_vsock_virtio_transport) ' /proc/modules; "
        "nitro-enclave describe; echo DESCRIBE=$?; "
        "nitro-enclave run --eif-path /nonexistent.eif --cpu-count 1 --memory 64; echo RUN=$?; "
        "nitro-enclave run --eif-path /bin/busybox --cpu-count 1 --memory 64; echo RUN2=$?; "
        "nitro-enclave run --cpu-count 1 --memory 64; echo RUN3=$?"), timeout=240)
    out = b.out + b.err
    assert b.status == 0, b
    assert re.search(r"^3\r?$", out, re.M), b
    assert re.search(r"^\[\]\r?\nDESCRIBE=0", out, re.M), b
    assert "nitro-enclave: run: /nonexistent.eif: No such file or directory" in out, b
    assert "RUN=1" in out, b
    assert 'nitro-enclave: run: /bin/busybox: not an EIF (no ".eif" magic)' in out, b
    assert "RUN2=1" in out, b
    assert "nitro-enclave: run: --eif-path FILE is required" in out and "RUN3=2" in out, b
