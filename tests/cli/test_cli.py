"""CLI tests: `nitro run` and `nitro-hv` reject bad arguments and inputs before booting.

Usage errors exit 2, other errors 1; either way the message is ONE line on stderr that
starts with "nitro: " (or "nitro-hv: ") and names the argument or file and the reason,
and nothing goes to stdout. No test here boots a guest or the emulated host: every input
fails validation (see conftest.py for the sandbox that guards against a bug letting one
through). Run: /usr/bin/python3 -m pytest -q tests/cli
"""
import os
import pathlib

import pytest

from conftest import make_bzimage, run_proc

DEFAULT_KERNEL = pathlib.Path.home() / ".cache" / "nitro" / "images" / "vmlinuz"
SANDBOX_MARKERS = ("SANDBOX_HV_REACHED", "SANDBOX_IMAGES_REACHED")


def assert_error(r, status, prefix, *needles):
    """Exit `status`, no hang, empty stdout, one stderr line: prefix ... needles."""
    assert not r.timed_out, f"hung (killed after the timeout): {r!r}"
    for m in SANDBOX_MARKERS:
        assert m not in r.err, f"validation passed and nitro went on to boot: {r!r}"
    assert r.status == status, r
    assert r.out == "", f"stdout should be empty: {r!r}"
    assert r.err.endswith("\n"), f"stderr should be one newline-terminated line: {r!r}"
    lines = r.err.splitlines()
    assert len(lines) == 1, f"stderr should be exactly one line: {r!r}"
    line = lines[0]
    assert line.startswith(prefix), f"stderr should start with {prefix!r}: {r!r}"
    for n in needles:
        assert str(n) in line, f"stderr should mention {str(n)!r}: {r!r}"
    return line


def host_ram_mib():
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) // 1024
    pytest.skip("no MemTotal in /proc/meminfo")


# ---- the kernel file ------------------------------------------------------------------

def test_kernel_missing(front, tmp_path):
    k = tmp_path / "no-such-bzImage"
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "No such file or directory")


def test_kernel_dangling_symlink(front, tmp_path):
    # Stands in for an unreadable kernel: the tests run as root, so chmod 000 reads fine.
    k = tmp_path / "dangling"
    k.symlink_to(tmp_path / "nowhere")
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "No such file or directory")


def test_kernel_unreadable_when_not_root(front, good_kernel):
    if os.geteuid() == 0:
        pytest.skip("running as root: chmod 000 does not stop root reading "
                    "(the directory and dangling-symlink cases cover open errors)")
    good_kernel.chmod(0)
    r = front("--kernel", good_kernel)
    assert_error(r, 1, front.prefix, f"kernel {good_kernel}", "Permission denied")


def test_kernel_is_directory(front, tmp_path):
    r = front("--kernel", tmp_path)
    assert_error(r, 1, front.prefix, f"kernel {tmp_path}", "Is a directory")


def test_kernel_is_text_file(front, tmp_path):
    k = tmp_path / "notes.txt"
    k.write_text("this is not a kernel\n" * 100)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "not a bzImage (no HdrS magic)")


def test_kernel_empty_file(front, tmp_path):
    k = tmp_path / "empty"
    k.write_bytes(b"")
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "not a bzImage (only 0 bytes)")


def test_kernel_truncated_after_setup(front, bzimage):
    # setup_sects 1: the protected-mode kernel would start at 1024, the file ends there.
    k = bzimage("cut-1024", size=1024)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "truncated bzImage")


def test_kernel_truncated_inside_header(front, bzimage):
    k = bzimage("cut-512", size=512)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "not a bzImage (only 512 bytes)")


def test_kernel_truncated_real_kernel(front, tmp_path):
    if not DEFAULT_KERNEL.is_file():
        pytest.skip(f"{DEFAULT_KERNEL} not present (build/nitro images makes it)")
    data = DEFAULT_KERNEL.read_bytes()
    sects = data[0x1F1] or 4
    k = tmp_path / "vmlinuz-cut"
    k.write_bytes(data[:(sects + 1) * 512])  # setup only, no protected-mode kernel
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "truncated bzImage")


def test_kernel_32bit_only(front, bzimage):
    k = bzimage("bz32", xloadflags=0)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "not a 64-bit kernel")


@pytest.mark.parametrize("fields,reason", [
    (dict(boot_flag=0), "not a bzImage (no HdrS magic)"),
    (dict(version=0x0200), "boot protocol 2.00 is too old"),
    (dict(jump_len=0x10), "setup header of bad length"),
    (dict(loadflags=0), "zImage loaded low"),
    (dict(payload_offset=0, payload_length=100000), "payload outside the file"),
    (dict(pref_address=0x1000), "corrupt bzImage (kernel address"),
    (dict(init_size=0), "corrupt bzImage (kernel address"),
], ids=["no-boot-flag", "old-protocol", "bad-header-length", "loaded-low",
        "payload-outside", "low-address", "zero-init-size"])
def test_kernel_bad_header(front, bzimage, fields, reason):
    k = bzimage("bad", **fields)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", reason)


def test_kernel_too_large(front, tmp_path):
    k = tmp_path / "huge"
    with open(k, "wb") as f:
        f.truncate(300 << 20)  # sparse
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}", "larger than 256 MiB")


def test_kernel_is_fifo_does_not_hang(front, tmp_path):
    # Nobody ever writes to this FIFO: opening it for reading must not block forever.
    k = tmp_path / "fifo"
    os.mkfifo(k)
    r = front("--kernel", k)
    assert_error(r, 1, front.prefix, f"kernel {k}")


def test_kernel_needs_more_memory(front, bzimage):
    k = bzimage("big-init", init_size=0x8000000)  # 16 MiB + 128 MiB > 64 MiB
    r = front("--kernel", k, "--memory", "64")
    assert_error(r, 1, front.prefix, "--memory 64", "this kernel needs at least")


# ---- the initrd -----------------------------------------------------------------------

def test_initrd_missing(front, good_kernel, tmp_path):
    i = tmp_path / "no-such-initrd"
    r = front("--kernel", good_kernel, "--initrd", i)
    assert_error(r, 1, front.prefix, f"initrd {i}", "No such file or directory")


def test_initrd_dangling_symlink(front, good_kernel, tmp_path):
    i = tmp_path / "initrd-link"
    i.symlink_to(tmp_path / "nowhere")
    r = front("--kernel", good_kernel, "--initrd", i)
    assert_error(r, 1, front.prefix, f"initrd {i}", "No such file or directory")


def test_initrd_empty(front, good_kernel, tmp_path):
    i = tmp_path / "empty.img"
    i.write_bytes(b"")
    r = front("--kernel", good_kernel, "--initrd", i)
    assert_error(r, 1, front.prefix, f"initrd {i}", "empty file")


def test_initrd_is_directory(front, good_kernel, tmp_path):
    d = tmp_path / "initrd.d"
    d.mkdir()
    r = front("--kernel", good_kernel, "--initrd", d)
    assert_error(r, 1, front.prefix, f"initrd {d}", "not a regular file")


def test_initrd_too_big_for_memory(front, good_kernel, tmp_path):
    i = tmp_path / "huge.img"
    with open(i, "wb") as f:
        f.truncate(70 << 20)  # sparse 70 MiB, the guest has 64
    r = front("--kernel", good_kernel, "--initrd", i, "--memory", "64")
    line = assert_error(r, 1, front.prefix, f"initrd {i}", "does not fit", "--memory")
    assert "71680 KiB" in line, r


def test_initrd_is_fifo_does_not_hang(front, good_kernel, tmp_path):
    i = tmp_path / "initrd-fifo"
    os.mkfifo(i)
    r = front("--kernel", good_kernel, "--initrd", i)
    assert_error(r, 1, front.prefix, f"initrd {i}")


# ---- the command line -----------------------------------------------------------------

def test_cmdline_too_long(front, good_kernel):
    r = front("--kernel", good_kernel, "--cmdline", "x" * 2048)
    assert_error(r, 1, front.prefix, "--cmdline", "2048 bytes", "at most 2047")


def test_cmdline_too_long_small_limit(front, bzimage):
    k = bzimage("small-cmdline", cmdline_size=16)
    r = front("--kernel", k, "--cmdline", "console=ttyS0 reboot=k")
    assert_error(r, 1, front.prefix, "--cmdline", "22 bytes", "at most 16")


def test_cmdline_too_long_real_kernel(front):
    if not DEFAULT_KERNEL.is_file():
        pytest.skip(f"{DEFAULT_KERNEL} not present (build/nitro images makes it)")
    limit = int.from_bytes(DEFAULT_KERNEL.read_bytes()[0x238:0x23C], "little")
    r = front("--kernel", DEFAULT_KERNEL, "--cmdline", "y" * (limit + 1))
    assert_error(r, 1, front.prefix, "--cmdline", f"at most {limit}")


# ---- numbers --------------------------------------------------------------------------

@pytest.mark.parametrize("value,reason", [
    ("0", "must be 64 to"),
    ("63", "must be 64 to"),
    ("abc", "not a number"),
    ("1e9", "not a number"),
    ("-1", "not a number"),
    ("", "not a number"),
    ("99999999999999999999", "not a number"),
    ("1048577", "must be 64 to"),
])
def test_memory_invalid(front, good_kernel, value, reason):
    r = front("--kernel", good_kernel, "--memory", value)
    assert_error(r, 2, front.prefix, f"--memory {value}", reason)


def test_memory_more_than_host(front, good_kernel):
    mib = host_ram_mib() + 1
    if mib > 1024 * 1024:
        pytest.skip("host has more than 1 TiB: the range check comes first")
    r = front("--kernel", good_kernel, "--memory", str(mib))
    assert_error(r, 2, front.prefix, f"--memory {mib}", "more than this host")


@pytest.mark.parametrize("value,reason", [
    ("0", "must be 1 to 254"),
    ("255", "must be 1 to 254"),
    ("x", "not a number"),
    ("-1", "not a number"),
    ("", "not a number"),
    ("99999999999999999999", "not a number"),
])
def test_cpus_invalid(front, good_kernel, value, reason):
    r = front("--kernel", good_kernel, "--cpus", value)
    assert_error(r, 2, front.prefix, f"--cpus {value}", reason)


# ---- option syntax --------------------------------------------------------------------

def test_unknown_flag(front, good_kernel):
    r = front("--kernel", good_kernel, "--frobnicate")
    assert_error(r, 2, front.prefix, "--frobnicate", "unknown option")


def test_stray_argument(front, good_kernel):
    r = front("--kernel", good_kernel, "extra")
    assert_error(r, 2, front.prefix, "extra", "unknown option")


@pytest.mark.parametrize("flag", ["--kernel", "--initrd", "--cmdline", "--cpus",
                                  "--memory", "--console-log"])
def test_flag_missing_value(front, good_kernel, flag):
    args = ["--kernel", str(good_kernel), flag] if flag != "--kernel" else [flag]
    r = front(*args)
    assert_error(r, 2, front.prefix, f"{flag}: missing value")


@pytest.mark.parametrize("flag", ["--initrd", "--cmdline", "--cpus", "--memory",
                                  "--console-log"])
def test_run_flag_missing_value_without_kernel(nitro, flag):
    # Without --kernel, `nitro run` appends the default --kernel (and --initrd): the flag
    # at the end must still be reported as missing its value, not eat "--kernel".
    r = nitro("run", flag)
    line = assert_error(r, 2, "nitro: ", f"{flag}: missing value")
    assert "--kernel" not in line, r


def test_hv_without_kernel(nitro_hv):
    r = nitro_hv("--cpus", "1")
    assert_error(r, 2, "nitro-hv: ", "--kernel: missing")


def test_hv_without_arguments(nitro_hv):
    r = nitro_hv()
    assert_error(r, 2, "nitro-hv: ", "--kernel: missing")


# ---- help and commands ----------------------------------------------------------------

def test_run_help(nitro):
    r = nitro("run", "--help")
    assert not r.timed_out, r
    assert r.status == 0, r
    assert r.err == "", r
    assert r.out.startswith("usage: nitro run"), r
    for opt in ("--cpus", "--memory", "--kernel", "--initrd", "--cmdline"):
        assert opt in r.out, r


def test_hv_help(nitro_hv):
    r = nitro_hv("--help")
    assert not r.timed_out, r
    assert r.status == 0, r
    assert r.err == "", r
    assert r.out.startswith("usage: nitro-hv"), r
    assert "--cpus" in r.out, r


def test_help(nitro):
    r = nitro("help")
    assert not r.timed_out, r
    assert r.status == 0, r
    assert r.err == "", r
    for word in ("usage: nitro", "run", "images", "emuhost", "--cpus"):
        assert word in r.out, r


def test_no_command(nitro):
    r = nitro()
    assert not r.timed_out, r
    assert r.status == 2, r
    assert r.out == "", r
    assert r.err.startswith("usage: nitro"), r


def test_unknown_command(nitro):
    r = nitro("frobnicate")
    assert_error(r, 2, "nitro: ", "frobnicate", "unknown command")


def test_images_takes_no_arguments(nitro):
    r = nitro("images", "extra")
    assert_error(r, 2, "nitro: ", "images", "takes no arguments")


def test_emuhost_without_command(nitro):
    r = nitro("emuhost")
    assert_error(r, 2, "nitro: ", "emuhost", "no command")


def test_emuhost_options_without_command(nitro):
    r = nitro("emuhost", "--memory", "1024", "--cpus", "2")
    assert_error(r, 2, "nitro: ", "emuhost", "no command")


def test_emuhost_empty_command(nitro):
    r = nitro("emuhost", "--")
    assert_error(r, 2, "nitro: ", "emuhost", "no command")


def test_emuhost_unknown_option(nitro):
    r = nitro("emuhost", "--frobnicate", "--", "true")
    assert_error(r, 2, "nitro: ", "--frobnicate", "unknown option")


@pytest.mark.parametrize("args,needle", [
    (["--memory", "100"], "--memory 100"),
    (["--cpus", "0"], "--cpus 0"),
])
def test_emuhost_bad_numbers(nitro, args, needle):
    r = nitro("emuhost", *args, "--", "true")
    assert_error(r, 2, "nitro: ", needle)


# ---- sanity of the helpers ------------------------------------------------------------

def test_synthetic_bzimage_layout():
    d = make_bzimage()
    assert len(d) == 4096
    assert d[0x1FE:0x200] == b"\x55\xaa" and d[0x202:0x206] == b"HdrS"
    assert d[0x201] == 0x62 and d[0x1F1] == 1 and d[0x211] == 1
    assert int.from_bytes(d[0x206:0x208], "little") == 0x020F
    assert int.from_bytes(d[0x238:0x23C], "little") == 2047
    assert int.from_bytes(d[0x258:0x260], "little") == 0x1000000
    assert len(make_bzimage(size=512)) == 512


def test_sandbox_guard_is_effective(sandbox, env):
    # The sandboxed nitro must find the stub tools/images.sh (conftest.py), so that a
    # validation bug can never start a download or QEMU. PATH is emptied so that even a
    # broken sandbox could not get far (the real images.sh needs mkdir, apt-get, ...).
    r = run_proc([sandbox / "bin" / "nitro", "emuhost", "--", "true"],
                 dict(env, PATH="/nonexistent"))
    assert not r.timed_out, r
    assert "SANDBOX_IMAGES_REACHED" in r.err, r
    assert r.status == 1, r


# ---- NitroTPM ------------------------------------------------------------------------

def test_tpm_state_missing_value(nitro):
    r = nitro("run", "--tpm-state")
    assert_error(r, 2, "nitro: ", "--tpm-state", "missing folder")


def test_tpm_state_not_a_folder(nitro, tmp_path):
    f = tmp_path / "file"
    f.write_text("x")
    r = nitro("run", "--tpm-state", f)
    assert_error(r, 1, "nitro: ", f"--tpm-state {f}", "not a folder")
