"""The include graph of src/ (issue 11): no import circles, and the command line and the
controller include nothing of the hypervisor or the cards. cycles.py derives the graph;
the synthetic trees check that it does find a circle and does not hide one."""
import pathlib
import subprocess
import sys

import pytest

HERE = pathlib.Path(__file__).resolve().parent
SRC = HERE.parents[1] / "src"
sys.path.insert(0, str(HERE))
import cycles  # noqa: E402


def tree(tmp_path, files):
    for name, text in files.items():
        f = tmp_path / name
        f.parent.mkdir(parents=True, exist_ok=True)
        f.write_text(text)
    return tmp_path


def test_src_has_no_import_circles():
    r = subprocess.run([sys.executable, str(HERE / "cycles.py"), str(SRC)],
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "modules: " in r.stdout and "cycles: 0" in r.stdout


@pytest.mark.parametrize("part", ["cli", "controller"])
def test_part_includes_no_hypervisor_or_card(part):
    folders = cycles.folder_graph(cycles.module_graph(SRC))
    bad = sorted(d for d in folders[part] if d == "hv" or d.startswith("cards"))
    assert not bad, f"src/{part} includes {bad}"


def test_finds_a_module_circle(tmp_path):
    src = tree(tmp_path, {
        "a/x.h": "", "a/x.c": '#include "a/x.h"\n#include "a/y.h"\n',
        "a/y.h": "", "a/y.c": '#include "a/y.h"\n#include "a/x.h"\n',
    })
    assert cycles.cycles(cycles.module_graph(src)) == [["a/x", "a/y"]]


def test_finds_a_folder_circle(tmp_path):
    src = tree(tmp_path, {
        "a/x.h": "", "a/x.c": '#include "b/y.h"\n',
        "b/y.h": "", "b/y.c": '#include "a/z.h"\n', "a/z.h": "",
    })
    mods = cycles.module_graph(src)
    assert cycles.cycles(mods) == []
    assert cycles.cycles(cycles.folder_graph(mods)) == [["a", "b"]]


def test_private_header_is_its_modules_own(tmp_path):
    # x_internal.h includes x.h and x.c includes it back: one module, no circle ...
    files = {
        "a/x.h": "", "a/x.c": '#include "a/x.h"\n#include "a/x_internal.h"\n',
        "a/x_internal.h": '#include "a/x.h"\n',
    }
    assert cycles.cycles(cycles.module_graph(tree(tmp_path / "ok", files))) == []
    # ... but a real circle through the private header is still one.
    files.update({"a/x_internal.h": '#include "a/x.h"\n#include "a/y.h"\n',
                  "a/y.h": "", "a/y.c": '#include "a/x.h"\n'})
    assert cycles.cycles(cycles.module_graph(tree(tmp_path / "bad", files))) == [["a/x", "a/y"]]
