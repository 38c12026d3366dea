"""Boots of the stock Debian 6.12 kernel on nitro-hv and the ways a guest can end."""
import re
import signal
import subprocess
import time

from conftest import BANNER, NITRO, cmdline


def meminfo_kib(out):
    m = re.search(r"MemTotal:\s+(\d+) kB", out)
    assert m, out[-2000:]
    return int(m.group(1))


DMI = "/sys/class/dmi/id"


def test_boot_one_cpu_to_userspace_and_poweroff(nitro):
    b = nitro("--cpus", "1", "--memory", "256", "--instance-id", "i-0123456789abcdef0",
              "--instance-type", "c5.xlarge",
              "--cmdline", cmdline("echo CPUS=$(nproc); grep MemTotal /proc/meminfo; "
                                   "for f in sys_vendor product_name product_uuid product_serial "
                                   f"bios_vendor; do echo DMI-$f=$(cat {DMI}/$f); done; "
                                   "poweroff -f"))
    assert b.status == 0, b
    assert BANNER in b.out, b
    assert "CPUS=1" in b.out, b
    assert "Hypervisor detected: KVM" in b.out, b
    assert "reboot: Power down" in b.out, b
    kib = meminfo_kib(b.out)
    assert 200 * 1024 < kib <= 256 * 1024, kib
    # The host decompressed the kernel: the guest never ran its decompressor.
    assert "Decompressing Linux" not in b.out
    # SMBIOS as EC2's: what cloud-init's ds-identify reads to pick its Ec2 data source
    # (product_uuid and product_serial equal ignoring case, both starting with ec2)
    dmi = dict(re.findall(r"^DMI-(\w+)=(.*?)\r?$", b.out, re.M))
    assert dmi.get("sys_vendor") == "Amazon EC2", b
    assert dmi.get("bios_vendor") == "Amazon EC2", b
    assert dmi.get("product_name") == "c5.xlarge", b
    uuid, serial = dmi.get("product_uuid", ""), dmi.get("product_serial", "")
    assert uuid.lower() == serial.lower(), dmi
    assert uuid.lower().replace("-", "").startswith("ec20123456789abcdef0"), dmi  # the id


TOPO = "/sys/devices/system/cpu/cpu$n/topology"


def test_boot_four_cpus_above_the_pci_hole(nitro):
    b = nitro("--cpus", "4", "--memory", "3584",
              "--cmdline", cmdline("echo CPUS=$(nproc); grep MemTotal /proc/meminfo; "
                                   "cat /sys/firmware/acpi/tables/APIC > /dev/null && echo MADT=ok; "
                                   f"for n in 0 1 2 3; do echo TOPO$n=$(cat {TOPO}/physical_package_id "
                                   f"{TOPO}/core_id {TOPO}/thread_siblings_list); done; "
                                   "grep -E '^(apicid|core id|cpu cores|siblings)' /proc/cpuinfo | "
                                   "tr -d ' \\t' | sed 's/^/CPUINFO-/'"))
    assert b.status == 0, b
    assert "CPUS=4" in b.out, b
    assert "smp: Brought up 1 node, 4 CPUs" in b.out, b
    assert "MADT=ok" in b.out, b
    # EC2's layout (m5.xlarge): one package of 2 cores x 2 threads; core id = APIC id / 2.
    topo = dict(re.findall(r"^TOPO(\d)=(.*?)\r?$", b.out, re.M))
    assert topo == {"0": "0 0 0-1", "1": "0 0 0-1", "2": "0 1 2-3", "3": "0 1 2-3"}, b
    info = re.findall(r"^CPUINFO-(\w+):(\d+)\r?$", b.out, re.M)
    assert [v for k, v in info if k == "apicid"] == ["0", "1", "2", "3"], info
    assert [v for k, v in info if k == "coreid"] == ["0", "0", "1", "1"], info
    assert {v for k, v in info if k == "cpucores"} == {"2"}, info
    assert {v for k, v in info if k == "siblings"} == {"4"}, info
    for line in ("Max. logical packages:   1", "Max. threads per core:   2",
                 "Num. cores per package:     2", "Num. threads per package:   4"):
        assert "CPU topo: " + line in b.out, b
    # No complaint about the CPUID topology (topology_common.c, topology_ext.c, smpboot.c).
    for bad in ("[Firmware Bug]", "Topology domain", "SMT detected", "APIC ID mismatch",
                "-sibling CPU", "not on the same node"):
        assert bad not in b.out, (bad, b)
    # 3.5 GiB: 3 GiB below the hole, 512 MiB above 4 GiB; the e820 map shows both.
    assert "[mem 0x0000000100000000-0x000000011fffffff] usable" in b.out, b
    kib = meminfo_kib(b.out)
    assert 3300 * 1024 < kib <= 3584 * 1024, kib


def test_guest_decompressor_path(nitro):
    b = nitro("--no-host-decompress", "--cmdline", cmdline("echo DONE"))
    assert b.status == 0, b
    assert "DONE" in b.out, b


def test_reboot_with_no_reboot_exits_zero(nitro):
    b = nitro("--no-reboot", "--cmdline", cmdline("reboot -f"))
    assert b.status == 0, b
    assert b.out.count(BANNER) == 1, b
    assert "reboot: Restarting system" in b.out, b


def test_reboot_boots_again():
    p = subprocess.Popen([str(NITRO), "run", "--require-kvm", "--cmdline", cmdline("reboot -f")],
                         stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                         text=True, errors="replace")
    seen, out, deadline = 0, [], time.monotonic() + 400
    try:
        for line in p.stdout:
            out.append(line)
            if BANNER in line:
                seen += 1
                if seen == 2:
                    break
            assert time.monotonic() < deadline, "".join(out[-50:])
    finally:
        p.send_signal(signal.SIGTERM)
        status = p.wait(timeout=30)
    assert seen == 2, "".join(out[-50:])
    assert status == 128 + signal.SIGTERM


def test_panic_reported_with_no_reboot(nitro):
    b = nitro("--no-reboot", "--cmdline", cmdline("echo c > /proc/sysrq-trigger"))
    assert b.status == 3, b
    assert "Kernel panic" in b.out, b
    assert "the guest kernel panicked" in b.err, b


def test_triple_fault_is_diagnosed(nitro):
    # reboot=t makes the kernel reset by triple fault.
    b = nitro("--cmdline", cmdline("reboot -f", base="console=ttyS0 reboot=t panic=-1"))
    assert b.status == 1, b
    lines = b.err.strip().splitlines()
    assert any("triple fault" in l for l in lines), b
    assert re.search(r"rip=[0-9a-f]{16}", b.err), b
    assert re.search(r"cr3=[0-9a-f]{16}", b.err), b


def test_console_input_reaches_the_guest_shell():
    """The default guest: a shell on ttyS0 reading nitro-hv's stdin; `poweroff` ends it."""
    p = subprocess.Popen([str(NITRO), "run", "--require-kvm"], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out, deadline = b"", time.monotonic() + 400
    try:
        while b"shell on the console" not in out:
            chunk = p.stdout.read1(4096)
            assert chunk and time.monotonic() < deadline, out[-3000:]
            out += chunk
        time.sleep(2)  # let the shell start reading
        p.stdin.write(b"echo hi-$((6*7))\n")
        p.stdin.flush()
        while b"hi-42" not in out:
            chunk = p.stdout.read1(4096)
            assert chunk and time.monotonic() < deadline, out[-3000:]
            out += chunk
        p.stdin.write(b"poweroff\n")
        p.stdin.flush()
        rest, err = p.communicate(timeout=120)
        out += rest
    finally:
        if p.poll() is None:
            p.kill()
    assert p.returncode == 0, (out[-3000:], err)
    assert b"reboot: Power down" in out
