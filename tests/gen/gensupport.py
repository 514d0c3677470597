"""Shared helpers of the generator tests (tests/gen/test_*.py).

Run the tests from the repository root with Debian's Python, which has
PyYAML:

    /usr/bin/python3 -m unittest discover -s tests/gen -t .

This module puts gen/ on sys.path, so that the tests can import nfpgen, and
runs gen/generate.py as a subprocess the way meson and developers do.
"""

import difflib
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GEN_DIR = os.path.join(REPO, "gen")
GENERATE = os.path.join(GEN_DIR, "generate.py")
FIXTURES = os.path.join(HERE, "fixtures")
SMALL_SCHEMA = os.path.join(FIXTURES, "small_schema")
SMALL_GOLDEN = os.path.join(FIXTURES, "small_golden")
REAL_SCHEMA = os.path.join(REPO, "schema")

# Leave no __pycache__ in gen/ (it is gitignored, but other people edit
# gen/ while these tests run).
sys.dont_write_bytecode = True
if GEN_DIR not in sys.path:
    sys.path.insert(0, GEN_DIR)

# The output layout of generate_all() and of small_golden/.
C_FILES = ("nfp_enums.c", "nfp_objects.c", "nfp_ops.c", "nfp_sysctl.c", "nfp_tables.h")
C_SOURCES = ("nfp_enums.c", "nfp_objects.c", "nfp_ops.c", "nfp_sysctl.c")


def run_generate(*args, timeout=120):
    """Runs gen/generate.py with this interpreter; returns the CompletedProcess."""
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1")
    return subprocess.run([sys.executable, GENERATE, *map(str, args)], env=env,
                          cwd=REPO, capture_output=True, text=True, timeout=timeout)


def generate(*args):
    """Runs gen/generate.py; raises AssertionError (a test failure) unless
    it exits 0. Usable from setUpClass too."""
    r = run_generate(*args)
    if r.returncode != 0:
        raise AssertionError(f"generate.py {' '.join(map(str, args))} exited {r.returncode}:\n"
                      f"{r.stdout}{r.stderr}")
    return r


def generate_all(schema_dir, out_dir):
    """Generates everything from `schema_dir` into out_dir/c, out_dir/elixir
    and out_dir/reference.md (the layout of fixtures/small_golden/)."""
    generate("--schema", schema_dir,
             "--c-out", os.path.join(out_dir, "c"),
             "--elixir-out", os.path.join(out_dir, "elixir"),
             "--docs-out", os.path.join(out_dir, "reference.md"))


def read_tree(root):
    """{relative path with '/': bytes} of every file under root (or of root
    itself when it is a file, under its base name)."""
    if os.path.isfile(root):
        with open(root, "rb") as f:
            return {os.path.basename(root): f.read()}
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for fn in sorted(filenames):
            p = os.path.join(dirpath, fn)
            rel = os.path.relpath(p, root).replace(os.sep, "/")
            with open(p, "rb") as f:
                out[rel] = f.read()
    return out


def unified_diff(expected, actual, name, expected_label="expected", actual_label="generated"):
    """A unified diff of two byte strings, as text."""
    a = expected.decode("utf-8", "replace").splitlines(keepends=True)
    b = actual.decode("utf-8", "replace").splitlines(keepends=True)
    lines = difflib.unified_diff(a, b, f"{expected_label}/{name}", f"{actual_label}/{name}")
    text = "".join(line if line.endswith("\n") else line + "\n\\ No newline at end of file\n"
                   for line in lines)
    return text or "(the files differ only in bytes that do not decode as UTF-8)\n"


def compare_trees(expected, actual, expected_label="expected", actual_label="generated",
                  max_diff_chars=20000):
    """Compares two {name: bytes} maps. Returns a list of problems (empty when
    they are equal): missing and extra files, then a unified diff per
    differing file, cut at max_diff_chars in total."""
    problems = []
    missing = sorted(set(expected) - set(actual))
    extra = sorted(set(actual) - set(expected))
    if missing:
        problems.append(f"in {expected_label} but not {actual_label}: {', '.join(missing)}")
    if extra:
        problems.append(f"in {actual_label} but not {expected_label}: {', '.join(extra)}")
    budget = max_diff_chars
    for name in sorted(set(expected) & set(actual)):
        if expected[name] == actual[name]:
            continue
        d = unified_diff(expected[name], actual[name], name, expected_label, actual_label)
        if budget <= 0:
            problems.append(f"{name} differs (diff left out)")
            continue
        if len(d) > budget:
            d = d[:budget] + "\n... (diff cut)\n"
        budget -= len(d)
        problems.append(f"{name} differs:\n{d}")
    return problems


def copy_schema(src, dst):
    """Copies a schema tree to dst (which must not exist); returns dst."""
    shutil.copytree(src, dst)
    return dst
