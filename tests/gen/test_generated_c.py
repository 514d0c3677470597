"""The generated C compiles, and its name tables are sorted for bsearch.

1. The C generated from schema/ (and from the small fixture schema) passes
   `cc -fsyntax-only -Wall -Wextra -Werror` against src/ and erl_interface's
   headers. Skipped, with the reason, when cc or erl is missing.
2. src/lookup.c finds ops, objects, expressions, attributes and enum entries
   by binary search with strcmp. So every such table must be in strictly
   increasing strcmp order (no duplicates), and its count field (nfp_nops,
   .nattrs, .n, ...) must be its length. This parses the generated arrays and
   checks both, and cross-checks the names against the loaded schema so that
   a parser that finds nothing cannot pass.
"""

import functools
import os
import re
import shutil
import subprocess
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gensupport as gs  # noqa: E402

import yaml  # noqa: E402

from nfpgen import schema as schema_mod  # noqa: E402

CSTR = r'"((?:[^"\\]|\\.)*)"'


def unescape(s):
    return re.sub(r"\\(.)", r"\1", s)


@functools.lru_cache(maxsize=None)
def erl_interface_include():
    """erl_interface's include dir, or None when erl is not installed."""
    erl = shutil.which("erl")
    if erl is None:
        return None
    r = subprocess.run([erl, "-noshell", "-eval",
                        'io:format("~s",[code:lib_dir(erl_interface)]),halt().'],
                       capture_output=True, text=True, timeout=120)
    if r.returncode != 0 or not r.stdout.strip():
        return None
    return os.path.join(r.stdout.strip(), "include")


def compiler_or_skip(testcase):
    cc = shutil.which("cc")
    if cc is None:
        testcase.skipTest("cc not found: cannot compile the generated C")
    inc = erl_interface_include()
    if inc is None:
        testcase.skipTest("erl not found: cannot locate erl_interface's include dir (ei.h)")
    return cc, inc


def syntax_check(cc, erl_inc, c_dir, source):
    cmd = [cc, "-fsyntax-only", "-Wall", "-Wextra", "-Werror",
           "-I", os.path.join(gs.REPO, "src"), "-I", c_dir, "-I", erl_inc,
           os.path.join(c_dir, source)]
    r = subprocess.run(cmd, cwd=gs.REPO, capture_output=True, text=True, timeout=300)
    return cmd, r


# --- parsing the generated tables ---------------------------------------

def _blocks(text, decl_re):
    """{identifier: body} of every `decl_re = {` ... `};` at column 0."""
    pat = re.compile(r"^" + decl_re + r" = \{\n(.*?)^\};", re.M | re.S)
    return {m.group(1): m.group(2) for m in pat.finditer(text)}


def _field(body, name, what):
    m = re.search(r"^\t\." + name + r" = (.+?),$", body, re.M)
    if m is None:
        raise AssertionError(f"no .{name} in {what}")
    return m.group(1)


def _size(text, name):
    m = re.search(r"^const size_t " + name + r" = (\d+);$", text, re.M)
    if m is None:
        raise AssertionError(f"no `const size_t {name}`")
    return int(m.group(1))


def parse_tables(c_dir):
    """The binary-searched tables of the generated C, as
    {table label: (names in array order, count field)}, plus the name sets
    used for the schema cross-check."""
    with open(os.path.join(c_dir, "nfp_ops.c"), encoding="utf-8") as f:
        ops_c = f.read()
    with open(os.path.join(c_dir, "nfp_objects.c"), encoding="utf-8") as f:
        objs_c = f.read()
    with open(os.path.join(c_dir, "nfp_enums.c"), encoding="utf-8") as f:
        enums_c = f.read()
    tables = {}

    # nfp_ops[]: rows `\t{ "name", handler, nargs, obj },`
    body = _blocks(ops_c, r"const struct nfp_op (nfp_ops)\[\]")["nfp_ops"]
    ops = [unescape(n) for n in re.findall(r"^\t\{ " + CSTR + ",", body, re.M)]
    tables["nfp_ops"] = (ops, _size(ops_c, "nfp_nops"))

    # Attribute tables, and the objects / expressions that point at them.
    attr_tables = {
        ident: [unescape(n) for n in re.findall(r"^\t\t\.name = " + CSTR + ",$", body, re.M)]
        for ident, body in _blocks(objs_c, r"static const struct nfp_attr (\w+)\[\]").items()}
    owners = {}
    for kind in ("obj", "expr"):
        structs = _blocks(objs_c, r"const struct nfp_" + kind + r" (\w+)")
        names = {}
        for ident, body in structs.items():
            what = f"struct nfp_{kind} {ident}"
            name = unescape(re.fullmatch(CSTR, _field(body, "name", what)).group(1))
            names[ident] = name
            attrs = _field(body, "attrs", what)
            if attrs not in attr_tables:
                raise AssertionError(f"{what}: .attrs = {attrs} is not a parsed attribute table")
            tables[f"{kind} {name}: {attrs}[]"] = (attr_tables[attrs],
                                                  int(_field(body, "nattrs", what)))
            owners.setdefault(kind, {})[name] = set(attr_tables[attrs])
        arr = "nfp_objects" if kind == "obj" else "nfp_exprs"
        body = _blocks(objs_c, r"const struct nfp_" + kind + r" \*const (" + arr + r")\[\]")[arr]
        idents = re.findall(r"^\t&(\w+),$", body, re.M)
        tables[arr] = ([names[i] for i in idents],
                       _size(objs_c, "nfp_nobjects" if kind == "obj" else "nfp_nexprs"))

    # Enum entry tables: rows `\t{ "name", VALUE },`
    entry_tables = {
        ident: [unescape(n) for n in re.findall(r"^\t\{ " + CSTR + ",", body, re.M)]
        for ident, body in _blocks(enums_c, r"static const struct nfp_enum_entry (\w+)\[\]").items()}
    enums = {}
    for ident, body in _blocks(enums_c, r"const struct nfp_enum (\w+)").items():
        what = f"struct nfp_enum {ident}"
        name = unescape(re.fullmatch(CSTR, _field(body, "name", what)).group(1))
        entries = _field(body, "entries", what)
        tables[f"enum {name}: {entries}[]"] = (entry_tables[entries], int(_field(body, "n", what)))
        enums[name] = set(entry_tables[entries])
    return tables, {"ops": set(ops), "objects": owners.get("obj", {}),
                    "exprs": owners.get("expr", {}), "enums": enums}


def strcmp_key(name):
    return name.encode("utf-8")


class GeneratedC(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="nfp-c-")
        cls.dirs = {}
        for label, schema in (("schema/", gs.REAL_SCHEMA), ("small_schema/", gs.SMALL_SCHEMA)):
            d = os.path.join(cls._tmp.name, label.strip("/"))
            gs.generate("--schema", schema, "--c-out", d)
            cls.dirs[label] = (schema, d)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_generated_c_compiles(self):
        cc, inc = compiler_or_skip(self)
        for label, (_, d) in self.dirs.items():
            for src in gs.C_SOURCES:
                with self.subTest(schema=label, file=src):
                    cmd, r = syntax_check(cc, inc, d, src)
                    self.assertEqual(r.returncode, 0,
                                     f"{' '.join(cmd)}\nexited {r.returncode}:\n{r.stderr}")
                    self.assertEqual(r.stderr, "")

    def test_tables_sorted_for_binary_search(self):
        for label, (_, d) in self.dirs.items():
            tables, _ = parse_tables(d)
            self.assertTrue(tables["nfp_ops"][0], f"{label}: parsed no ops")
            for table, (names, count) in sorted(tables.items()):
                # An expression without attributes has an empty table.
                with self.subTest(schema=label, table=table):
                    self.assertEqual(count, len(names), "count field is not the array length")
                    for a, b in zip(names, names[1:]):
                        self.assertLess(strcmp_key(a), strcmp_key(b),
                                        f"{a!r} before {b!r}: not in strictly increasing strcmp "
                                        f"order, so bsearch misses names\nnames: {names}")

    def test_tables_hold_every_schema_name(self):
        for label, (schema_dir, d) in self.dirs.items():
            with self.subTest(schema=label):
                s = schema_mod.load(schema_dir)
                _, found = parse_tables(d)
                self.assertEqual(found["ops"], {op.name for op in s.ops})
                self.assertEqual(found["objects"],
                                 {o.name: {a.name for a in o.attrs} for o in s.objects})
                self.assertEqual(found["exprs"],
                                 {e.name: {a.name for a in e.attrs} for e in s.exprs})
                self.assertEqual(found["enums"],
                                 {n: set(e.entry_names()) for n, e in s.enums.items()})


class KnownCOutputBugs(unittest.TestCase):
    """Generated C that is wrong today. Reported as generator bugs; remove
    @expectedFailure once fixed (an unexpected success fails the run)."""

    def test_doc_with_comment_terminator_compiles(self):
        # c_objects._attr_table writes `/* <first line of the doc> */` (and
        # c_enums / c_objects do the same for enum and object docs), so a doc
        # containing "*/" ends the comment early and the rest is parsed as C.
        cc, inc = compiler_or_skip(self)
        with tempfile.TemporaryDirectory(prefix="nfp-c-comment-") as d:
            schema = gs.copy_schema(gs.SMALL_SCHEMA, os.path.join(d, "schema"))
            p = os.path.join(schema, "expressions", "cmp.yaml")
            with open(p, encoding="utf-8") as f:
                data = yaml.safe_load(f)
            data["attributes"][0]["doc"] = "Register to compare (r0 */ r1 are not used)."
            with open(p, "w", encoding="utf-8") as f:
                yaml.safe_dump(data, f, sort_keys=False)
            out = os.path.join(d, "c")
            gs.generate("--schema", schema, "--c-out", out)
            cmd, r = syntax_check(cc, inc, out, "nfp_objects.c")
            self.assertEqual(r.returncode, 0, r.stderr)


if __name__ == "__main__":
    unittest.main()
