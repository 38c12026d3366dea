"""A minimal Python 3 for a test initramfs: the host's Debian interpreter and only the
standard-library modules a given script imports when it runs (found by running it on the
host: every module file then in sys.modules), with the shared libraries the interpreter
and those extension modules load (ldd). Used to run Debian's python3 tools in the guest
(amazon-ec2-utils' ebsnvme-id: tests/system/test_controller.py)."""
import os
import subprocess
import sys

COLLECT = r"""
import runpy, sys
sys.argv = sys.argv[1:]
try:
    runpy.run_path(sys.argv[0], run_name="__main__")
except BaseException:
    pass
files = set()
for m in list(sys.modules.values()):
    f = getattr(m, "__file__", None)
    if f:
        files.add(f)
    for p in getattr(m, "__path__", None) or []:
        init = p + "/__init__.py"
        files.add(init)
sys.stdout = sys.__stdout__
print("\n".join(sorted(files)))
"""


def _libs(path):
    out = subprocess.run(["ldd", path], capture_output=True, text=True).stdout
    libs = []
    for line in out.splitlines():
        parts = line.split()
        if "=>" in parts and len(parts) > parts.index("=>") + 1 and parts[parts.index("=>") + 1].startswith("/"):
            libs.append(parts[parts.index("=>") + 1])
        elif parts and parts[0].startswith("/"):
            libs.append(parts[0])
    return libs


def python_files(script, *args):
    """SRC=DEST arguments for tests/system/nvme_initrd.sh: /usr/bin/python3, the modules
    `python3 SCRIPT ARGS...` imports on this host, their libraries, and the script."""
    exe = os.path.realpath("/usr/bin/python3")
    r = subprocess.run(["/usr/bin/python3", "-c", COLLECT, script, *args],
                       capture_output=True, text=True, timeout=60)
    mods = [f for f in r.stdout.split("\n") if f.startswith("/usr/lib/python3")
            and os.path.exists(f)]
    assert any(f.endswith("/os.py") for f in mods), r
    files = {exe: "/usr/bin/python3", script: script}
    for f in mods:
        files[os.path.realpath(f)] = f
    for f in [exe] + [m for m in mods if m.endswith(".so")]:
        for lib in _libs(f):
            files[os.path.realpath(lib)] = lib
    # the landmark getpath looks for, and the encodings package python needs at start
    ver = f"python{sys.version_info.major}.{sys.version_info.minor}"
    files[f"/usr/lib/{ver}/os.py"] = f"/usr/lib/{ver}/os.py"
    return [f"{src}={dst}" for src, dst in sorted(files.items())]


if __name__ == "__main__":
    print("\n".join(python_files(*sys.argv[1:])))
