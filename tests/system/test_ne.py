"""The Nitro Enclaves device in a parent instance (issue 12, item 1): `nitro run --enclaves`
gives a stock Debian guest the NE PCI device (1d0f:e4c1); the stock nitro_enclaves module
binds it, takes core 1 (CPUs 2 and 3; the parent has 2 cores x 2 threads, as EC2's
m5.xlarge) as its pool, and a raw-ioctl client
(tests/system/ne_ioctl.c, written from the kernel's ne_overview.rst) creates enclaves,
adds vCPUs and hugepage memory, gets every bad input refused with the driver's error
code, and sees START reach the enclave VM: the enclave's nitro-hv refuses a missing EIF and
one with a wrong CRC32 (ENOEXEC, the reason on nitro-hv's stderr), and the slot stays usable.
tests/system/test_enclave.py runs real enclaves."""
import re

from conftest import NITRO, cmdline

IMG = NITRO.parent / "ne-guest.img"

# <linux/nitro_enclaves.h>
NE_ERR_VCPU_ALREADY_USED = 256
NE_ERR_VCPU_NOT_IN_CPU_POOL = 257
NE_ERR_FULL_CORES_NOT_USED = 269
NE_ERR_INVALID_MEM_REGION_SIZE = 259
NE_ERR_UNALIGNED_MEM_REGION_ADDR = 261
NE_ERR_MEM_REGION_ALREADY_USED = 262
NE_ERR_MEM_NOT_HUGE_PAGE = 263
NE_ERR_NO_MEM_REGIONS_ADDED = 266
NE_ERR_NO_VCPUS_ADDED = 267
NE_ERR_ENCLAVE_MEM_MIN_SIZE = 268
NE_ERR_INVALID_VCPU = 271
NE_ERR_NO_CPUS_AVAIL_IN_POOL = 272
NE_ERR_INVALID_FLAG_VALUE = 274
NE_ERR_INVALID_ENCLAVE_CID = 275
ENOEXEC = 8


def steps(out):
    """{step: "ok ..." or "errno N"} from ne-ioctl's lines."""
    return {m[1]: m[2] for m in re.finditer(r"^(\w+) (ok(?: [\w=]+)?|errno \d+)\s*$", out, re.M)}


def test_stock_driver_drives_the_ne_device(nitro):
    assert IMG.exists(), "make build/ne-guest.img"
    b = nitro("--enclaves", "--cpus", "4", "--memory", "512", "--initrd", str(IMG),
              "--cmdline", cmdline("/bin/ne-guest"), timeout=600)
    out = b.out
    assert b.status == 0, b
    # The device and the module's probe: bound, /dev/nitro_enclaves, the CPU pool.
    assert "ne pci: " in out and "class 0x088000 driver nitro_enclaves" in out, b
    assert "ne dev: /dev/nitro_enclaves" in out, b
    assert "ne hugepages: 40" in out, b
    assert "ne cpu0 accepted" not in out, b  # CPU 0 stays the parent's
    # The driver groups the pool by the guest's topology: CPU 1 is CPU 0's sibling,
    # CPU 2 alone half a core.
    for c in (0, 1, 2, 3):
        core, sib = ("0", "0-1") if c < 2 else ("1", "2-3")
        assert f"ne topology: cpu{c} core {core} siblings {sib}" in out, b
    assert "ne cpu1 accepted" not in out, b
    assert "ne cpu2 accepted" not in out, b
    assert "CPU sibling 1 for CPU 0 is in CPU pool" in out, b
    assert "CPU 3 is not in CPU pool" in out, b  # the sibling of a pool of CPU 2 alone
    assert "ne cpus: 2,3" in out, b
    assert "ne online: 0-1" in out, b
    s = steps(out)
    assert "ne_ioctl done" in out, b

    def errno(step, n):
        assert s.get(step) == f"errno {n}", (step, s.get(step), out[-4000:])

    assert s["open"] == "ok"
    assert s["create_vm"] == "ok slot_uid=1", s
    assert s["create_vm2"] == "ok slot_uid=2", s
    errno("load_info_flags0", NE_ERR_INVALID_FLAG_VALUE)
    assert s["load_info"] == f"ok offset={8 << 20}", s
    errno("start_no_mem", NE_ERR_NO_MEM_REGIONS_ADDED)
    errno("start_flags2", NE_ERR_INVALID_FLAG_VALUE)
    for c in ("cid2", "cid3", "cid_u32max", "cid_64bit"):
        errno("start_" + c, NE_ERR_INVALID_ENCLAVE_CID)
    errno("mem_flags1", NE_ERR_INVALID_FLAG_VALUE)
    errno("mem_size_odd", NE_ERR_INVALID_MEM_REGION_SIZE)
    errno("mem_unaligned", NE_ERR_UNALIGNED_MEM_REGION_ADDR)
    errno("mem_not_huge", NE_ERR_MEM_NOT_HUGE_PAGE)
    assert s["mem_first"] == "ok", s  # SLOT_ADD_MEM accepted by the device
    errno("mem_again", NE_ERR_MEM_REGION_ALREADY_USED)
    # The first enclave's hugepage, added to the second: refused by the device itself
    # (the driver only knows its own enclave's regions); a page of its own is accepted.
    errno("vm2_mem_shared", NE_ERR_MEM_REGION_ALREADY_USED)
    assert "Error in slot add mem [rc=-262]" in out, out[-4000:]
    assert s["vm2_mem_own"] == "ok", s
    errno("start_small", NE_ERR_ENCLAVE_MEM_MIN_SIZE)
    assert s["mem_rest"] == "ok", s
    errno("start_no_vcpu", NE_ERR_NO_VCPUS_ADDED)
    errno("vcpu_99", NE_ERR_INVALID_VCPU)
    errno("vcpu_1_not_pool", NE_ERR_VCPU_NOT_IN_CPU_POOL)
    assert s["vcpu_auto"] == "ok vcpu=2", s  # SLOT_ADD_VCPU accepted by the device
    errno("vcpu_2_again", NE_ERR_VCPU_ALREADY_USED)
    errno("start_half_core", NE_ERR_FULL_CORES_NOT_USED)  # the 2-vCPU enclave needs both
    assert "Full CPU cores not used" in out, b
    assert s["vcpu_3"] == "ok vcpu=3", s
    errno("vm2_vcpu_auto", NE_ERR_NO_CPUS_AVAIL_IN_POOL)
    # Every driver check passed: START reached the glue and the spawner; the enclave's
    # nitro-hv read enclave offset 8 MiB and refused what it found (exit 5 -> ENOEXEC).
    errno("start", ENOEXEC)
    errno("start_bad_crc", ENOEXEC)
    assert 'enclave 1: no EIF at enclave memory offset 8 MiB (magic is not ".eif")' in b.err, b
    assert re.search(r"enclave 1: EIF refused \(CRC mismatch\): CRC32 is [0-9a-f]{8}, the "
                     r"header says 00000000", b.err), b
    assert "Error in enclave start [rc=-8]" in out, out[-4000:]
    # Closing both fds freed both slots (SLOT_FREE): a new enclave gets uid 3, CPU 2 and
    # the same hugepage again.
    assert s["create_vm3"] == "ok slot_uid=3", s
    assert s["vm3_vcpu_2"] == "ok vcpu=2", s
    assert s["vm3_mem"] == "ok", s
    assert "Error in slot free" not in out and "Error in enclave stop" not in out, out[-4000:]
    # Replies came by MSI-X vector 0 (the driver would time out after 120 s otherwise).
    assert "ne irqs: 2 cmd=" in out, out[-4000:]
    cmds = int(out.split("ne irqs: 2 cmd=")[1].split()[0])
    assert cmds >= 16, out[-4000:]  # every command above that reached the device
