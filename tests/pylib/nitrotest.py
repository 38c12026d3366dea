"""What several pytest suites share (tests/*/conftest.py and test files import it after
putting tests/pylib on sys.path): the build folder, running a helper with a deadline,
the block pattern of the test drivers, synthetic bzImages, free ports, the KVM check of
the suites that boot guests, an HTTP client for nitrod's Unix socket (bench/api.py uses it
too, without pytest: pytest is imported only where a test fails), a nitrod of a test's own
(Nitrod: tests/api and tests/system), and running a function as another uid (root only)."""
import http.client
import json
import os
import pathlib
import signal
import socket
import struct
import subprocess
import time

ROOT = pathlib.Path(__file__).resolve().parents[2]
# NITRO_BUILD=build/asan: the sanitizer build, where a suite supports it.
BUILD = pathlib.Path(os.environ.get("NITRO_BUILD", ROOT / "build"))
NITRO = BUILD / "nitro"
# NITROD=build/asan/nitrod: the sanitizer build.
NITROD = pathlib.Path(os.environ.get("NITROD", BUILD / "nitrod"))
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


def newc(entries):
    """A cpio newc archive of (path, mode, data) entries (directories: data None), owner
    root, times 0: what a test appends to the default guest image (gzip'd) as a second
    initramfs archive."""
    out = bytearray()
    for ino, (path, mode, data) in enumerate(entries + [("TRAILER!!!", 0, b"")], 1):
        name = path.encode() + b"\0"
        data = data or b""
        hdr = "070701" + "".join(f"{v:08x}" for v in (ino, mode, 0, 0, 1, 0, len(data), 0, 0, 0, 0, len(name), 0))
        out += hdr.encode() + name
        out += b"\0" * ((4 - len(out) % 4) % 4)
        out += data
        out += b"\0" * ((4 - len(out) % 4) % 4)
    return bytes(out)


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


# Without cgroup v2 nitrod refuses jailed launches unless told to run them without limits.
CGROUP_ARGS = [] if host_has_cgroup_v2() else ["--no-cgroups"]


class Nitrod:
    """A nitrod of a test's own: its socket folder/api.sock, its state folder/state, its
    output folder/nitrod.log. Requests may name files below files (--files; default folder).
    binary: another nitrod (the sanitizer build, a copy); wrap: a command it runs under
    (strace ...). call_timeout bounds each API call; wait_timeout and poll are how long and
    how often wait() and wait_state() look by default (a suite that boots guests in the
    emulated host needs more patience than one whose instances fail at once)."""

    def __init__(self, folder, extra=(), binary=None, wrap=(), files=None, call_timeout=30,
                 wait_timeout=20, poll=0.02):
        self.folder = pathlib.Path(folder)
        self.sock = str(self.folder / "api.sock")
        self.state = self.folder / "state"
        self.log = self.folder / "nitrod.log"
        self.files_dir = pathlib.Path(files) if files is not None else self.folder
        self.extra = ["--files", str(self.files_dir)] + CGROUP_ARGS + list(extra)
        self.binary = str(binary or NITROD)
        self.wrap = list(wrap)
        self.call_timeout = call_timeout
        self.wait_timeout = wait_timeout
        self.poll = poll
        self.proc = None

    def start(self, wait=True):
        self.files_dir.mkdir(parents=True, exist_ok=True)
        with open(self.log, "ab") as logf:
            self.proc = subprocess.Popen([*self.wrap, self.binary, "--socket", self.sock,
                                          "--state", str(self.state), *self.extra],
                                         stdin=subprocess.DEVNULL, stdout=logf, stderr=logf)
        if wait:
            deadline = time.time() + 30
            while time.time() < deadline:
                assert self.proc.poll() is None, f"nitrod exited: {self.log.read_text()}"
                try:
                    if self.call("GET", "/v1/volumes").status == 200:
                        return self
                except OSError:
                    pass
                time.sleep(0.01)
            raise AssertionError("nitrod never served")
        return self

    def stop(self, sig=signal.SIGTERM):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(sig)
            self.proc.wait(timeout=20)
        self.proc = None

    def call(self, method, path, body=None, raw=None, headers=None, timeout=None):
        return api_call(self.sock, method, path, body, raw, headers,
                        timeout or self.call_timeout)

    def json(self, method, path, body=None, expect=200):
        """The JSON of a reply that must have status expect."""
        r = self.call(method, path, body)
        assert r.status == expect, (method, path, r)
        return r.json()

    def instance(self, iid):
        return self.json("GET", f"/v1/instances/{iid}")

    def console(self, iid):
        r = self.call("GET", f"/v1/instances/{iid}/console")
        assert r.status == 200, r
        return r.body

    def wait(self, what, fn, timeout=None):
        """fn()'s first true value, polled; fails with what (a string, or a function that
        says it then) and the tail of nitrod's log after timeout seconds."""
        deadline = time.time() + (timeout or self.wait_timeout)
        while True:
            v = fn()
            if v:
                return v
            if time.time() > deadline:
                raise AssertionError(f"timed out waiting for {what() if callable(what) else what}"
                                     f"; nitrod log:\n{self.log.read_text()[-3000:]}")
            time.sleep(self.poll)

    def wait_state(self, iid, states, timeout=None):
        """The instance once its state is states (a name or a set of names)."""
        states = {states} if isinstance(states, str) else set(states)
        last = [None]

        def reached():
            last[0] = self.instance(iid)
            return last[0] if last[0]["state"] in states else None
        return self.wait(lambda: f"{iid} to be {sorted(states)}: stuck at {last[0]}", reached,
                         timeout)

    def launches(self, iid):
        """The chip's launch events of iid (one per start and reboot, bootfile.h)."""
        log = self.json("GET", "/v1/host/attestation?nonce=sys")["event_log"]
        return [e["description"] for e in log
                if e["type"] == "launch" and e["description"].startswith(iid + ",")]

    def instance_files(self, iid):
        """The text of each file in iid's state folder (hv.log, card0.log, ...)."""
        d = self.state / "instances" / iid
        return {p.name: p.read_text(errors="replace") for p in d.iterdir() if p.is_file()}

    def audit_lines(self):
        """The lines of calls and events: without the chip's signed heads (ANCHOR lines,
        which come every 64 lines and at start and stop) and the write-ahead lines of
        calls that may change state (status=0 detail=intent,...; docs/security.md)."""
        p = self.state / "audit.log"
        lines = p.read_text().splitlines() if p.exists() else []
        return [l for l in lines
                if " method=ANCHOR " not in l and " status=0 detail=intent," not in l]

    def cli(self, *args):
        """`nitro --host SOCKET ARGS` against this nitrod."""
        return subprocess.run([str(NITRO), "--host", self.sock, *args], capture_output=True,
                              text=True, timeout=60, stdin=subprocess.DEVNULL)


def as_uid(uid, fn):
    """Runs fn() as uid in a child and returns its (JSON-able) result."""
    return collect(spawn_as(uid, fn))
