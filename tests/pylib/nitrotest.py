"""What several pytest suites share (tests/*/conftest.py and test files import it after
putting tests/pylib on sys.path): the build folder, running a helper with a deadline,
the block pattern of the test drivers, synthetic bzImages, free ports, the KVM check of
the suites that boot guests, an HTTP client for nitrod's Unix socket (bench/api.py uses it
too, without pytest: pytest is imported only where a test fails), and running a function
as another uid (root only)."""
import http.client
import json
import os
import pathlib
import signal
import socket
import struct
import subprocess

ROOT = pathlib.Path(__file__).resolve().parents[2]
# NITRO_BUILD=build/asan: the sanitizer build, where a suite supports it.
BUILD = pathlib.Path(os.environ.get("NITRO_BUILD", ROOT / "build"))
SECTOR = 512


def run_timed(argv, timeout, env=None):
    """(exit status, stdout, stderr, timed_out) of argv in its own process group (stdin
    /dev/null); when it runs longer than timeout seconds that group (and only it) is killed
    and timed_out is True."""
    p = subprocess.Popen([str(a) for a in argv], stdin=subprocess.DEVNULL,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
                         start_new_session=True)
    timed_out = False
    try:
        out, err = p.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        timed_out = True
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        out, err = p.communicate()
    return p.returncode, out.decode(errors="replace"), err.decode(errors="replace"), timed_out


def run(argv, timeout, env=None):
    """(exit status, stdout, stderr) of argv as run_timed() runs it; fails the test when it
    runs longer than timeout seconds."""
    status, out, err, timed_out = run_timed(argv, timeout, env)
    if timed_out:
        import pytest
        pytest.fail(f"{argv} hung for {timeout} s\n--- stdout\n{out}\n--- stderr\n{err}")
    return status, out, err


def pattern(sector, count):
    """What `vu-blk-driver check` writes (tests/driver/driver.h): byte j of sector s is
    (s*37 + j + 0x5a) % 256."""
    return bytes(((s * 37 + j + 0x5a) & 0xff) for s in range(sector, sector + count)
                 for j in range(SECTOR))


def make_bzimage(size=4096, setup_sects=1, version=0x020F, jump_len=0x62, loadflags=1,
                 xloadflags=1, cmdline_size=2047, initrd_addr_max=0x7FFFFFFF,
                 pref_address=0x1000000, init_size=0x2000000, payload_offset=0,
                 payload_length=0, boot_flag=0xAA55, magic=b"HdrS"):
    """A minimal image that src/boot/boot.c bzimage_parse() accepts (with the defaults)."""
    d = bytearray(max(size, 0x264))
    d[0x1F1] = setup_sects
    struct.pack_into("<H", d, 0x1FE, boot_flag)
    d[0x200] = 0xEB  # jmp short
    d[0x201] = jump_len  # setup header ends at 0x202 + this
    d[0x202:0x206] = magic
    struct.pack_into("<H", d, 0x206, version)
    d[0x211] = loadflags
    struct.pack_into("<I", d, 0x22C, initrd_addr_max)
    struct.pack_into("<H", d, 0x236, xloadflags)
    struct.pack_into("<I", d, 0x238, cmdline_size)
    struct.pack_into("<I", d, 0x248, payload_offset)
    struct.pack_into("<I", d, 0x24C, payload_length)
    struct.pack_into("<Q", d, 0x258, pref_address)
    struct.pack_into("<I", d, 0x260, init_size)
    return bytes(d[:size]) if size < len(d) else bytes(d)


def free_port(kind=socket.SOCK_STREAM):
    """A port on 127.0.0.1 that nothing listens on right now (TCP, or UDP with SOCK_DGRAM)."""
    s = socket.socket(socket.AF_INET, kind)
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def require_real_kvm(how):
    """Fails the test unless /dev/kvm is hardware-assisted; how says where it can run."""
    cpuinfo = open("/proc/cpuinfo").read()
    if not os.path.exists("/dev/kvm") or not (" svm" in cpuinfo or " vmx" in cpuinfo):
        import pytest
        pytest.fail(f"needs a hardware-assisted /dev/kvm: {how}")


def host_has_cgroup_v2(root="/sys/fs/cgroup"):
    """Whether root is a cgroup v2 hierarchy offering memory, pids and cpu (what nitrod
    limits jailed processes with; a hybrid cgroup v1 host has none of them there)."""
    try:
        have = (pathlib.Path(root) / "cgroup.controllers").read_text().split()
    except OSError:
        return False
    return {"memory", "pids", "cpu"} <= set(have)


class UnixHTTPConnection(http.client.HTTPConnection):
    """HTTP/1.1 over a Unix stream socket (nitrod's API)."""

    def __init__(self, path, timeout=30):
        super().__init__("nitrod", timeout=timeout)
        self.unix_path = path

    def connect(self):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.unix_path)
        self.sock = s


class Reply:
    def __init__(self, status, headers, body):
        self.status = status
        self.headers = headers
        self.body = body

    def json(self):
        return json.loads(self.body)

    def __repr__(self):
        return f"<{self.status} {self.body[:500]!r}>"


def api_call(sock, method, path, body=None, raw=None, headers=None, timeout=30):
    """One request to nitrod on sock: body is sent as JSON, raw as it is."""
    c = UnixHTTPConnection(sock, timeout=timeout)
    data = raw if raw is not None else (json.dumps(body) if body is not None else None)
    h = {"Content-Type": "application/json"}
    h.update(headers or {})
    c.request(method, path, body=data, headers=h)
    r = c.getresponse()
    rep = Reply(r.status, dict(r.getheaders()), r.read().decode(errors="replace"))
    c.close()
    return rep


def read_until_closed(sock_path, timeout=5):
    """Connects to the Unix socket, sends nothing and returns all it gets until it closes."""
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(str(sock_path))
    data = b""
    while chunk := s.recv(4096):
        data += chunk
    s.close()
    return data.decode()


def spawn_as(uid, fn):
    """Forks a child that runs fn() as uid (and gid uid, no groups) and sends back its
    result as JSON; returns a handle for collect(). The parent goes on meanwhile."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            os.setgroups([])
            os.setgid(uid)
            os.setuid(uid)
            out = json.dumps(fn())
        except BaseException as e:  # noqa: B036 (reported to the parent)
            out = json.dumps({"exception": f"{type(e).__name__}: {e}"})
        os.write(w, out.encode())
        os._exit(0)
    os.close(w)
    return pid, r


def collect(handle):
    """fn's result; an exception in the child fails here."""
    pid, r = handle
    data = b""
    while chunk := os.read(r, 1 << 16):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    out = json.loads(data)
    if isinstance(out, dict) and "exception" in out:
        raise AssertionError(f"as another uid: {out['exception']}")
    return out


def as_uid(uid, fn):
    """Runs fn() as uid in a child and returns its (JSON-able) result."""
    return collect(spawn_as(uid, fn))
