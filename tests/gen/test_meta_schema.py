"""The meta-schema (gen/meta/): it is valid JSON Schema, documents every
key, accepts the real schema, and refuses an unknown key in any kind of
schema file, naming the file and the key."""

import glob
import os
import shutil
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gensupport as gs  # noqa: E402

import jsonschema  # noqa: E402
import yaml  # noqa: E402

from nfpgen import meta, schema as schema_mod, types as wiretypes  # noqa: E402
from nfpgen.errors import SchemaError  # noqa: E402


def properties(node, where=""):
    """(where, name, subschema) of every property the meta-schema defines."""
    if isinstance(node, dict):
        for name, sub in (node.get("properties") or {}).items():
            yield f"{where}.{name}", name, sub
        for k, v in node.items():
            yield from properties(v, f"{where}.{k}")
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from properties(v, f"{where}[{i}]")


class MetaSchema(unittest.TestCase):
    def kinds(self):
        return [kind for _, kind, _ in schema_mod.FILE_KINDS]

    def test_every_kind_has_a_valid_meta_schema(self):
        for kind in self.kinds():
            with self.subTest(kind=kind):
                v = meta.meta(kind)
                jsonschema.Draft202012Validator.check_schema(v.schema)

    def test_every_key_is_documented(self):
        common = meta._load("common")["$defs"]
        for name in ["common"] + self.kinds():
            doc = meta._load(name)
            for where, key, sub in properties(doc):
                with self.subTest(file=f"gen/meta/{name}.yaml", key=where):
                    described = "description" in sub
                    if not described and "$ref" in sub:
                        described = "description" in common[sub["$ref"].split("/")[-1]]
                    self.assertTrue(described, f"gen/meta/{name}.yaml{where} has no description")

    def test_vocabularies_match_the_generator(self):
        self.assertEqual(set(meta.enum_of("common", "wire-type")), set(wiretypes.NAMES))

    def test_real_schema_files_validate(self):
        for pattern, kind, _ in schema_mod.FILE_KINDS:
            for path in glob.glob(os.path.join(gs.REAL_SCHEMA, pattern)):
                with self.subTest(file=os.path.relpath(path, gs.REPO)):
                    with open(path, encoding="utf-8") as f:
                        meta.validate(kind, yaml.safe_load(f), path)


class UnknownKeyInEveryKind(unittest.TestCase):
    """An unknown key, in a copy of the real schema, in one file of every
    kind and at several depths: the error names the file and the key."""

    CASES = [
        ("objects/table.yaml", lambda d: d.update(colour="red"), "colour"),
        ("objects/table.yaml", lambda d: d["attributes"][1].update(colour="red"),
         "attributes[1].colour"),
        ("objects/chain.yaml", lambda d: d["messages"].update(colour="x"), "messages.colour"),
        ("expressions/payload.yaml", lambda d: d["attributes"][0].update(colour=1),
         "attributes[0].colour"),
        ("enums.yaml", lambda d: d["enums"][0]["entries"][0].update(colour=1),
         f"enums.{{e0}}.entries[0].colour"),
        ("ops.yaml", lambda d: d["ops"][0].update(colour=1), "ops[0].colour"),
        ("coverage.yaml", lambda d: d.update(colour=1), "colour"),
    ]

    def test_unknown_keys(self):
        for rel, breaker, key in self.CASES:
            with self.subTest(file=rel, key=key):
                with tempfile.TemporaryDirectory() as tmp:
                    root = os.path.join(tmp, "schema")
                    shutil.copytree(gs.REAL_SCHEMA, root)
                    path = os.path.join(root, rel)
                    with open(path, encoding="utf-8") as f:
                        data = yaml.safe_load(f)
                    breaker(data)
                    with open(path, "w", encoding="utf-8") as f:
                        yaml.safe_dump(data, f, sort_keys=False)
                    want = key.format(e0=data.get("enums", [{}])[0].get("name"))
                    with self.assertRaises(SchemaError) as cm:
                        schema_mod.load(root)
                    self.assertEqual(cm.exception.path, path)
                    self.assertEqual(cm.exception.key, want)
                    self.assertRegex(cm.exception.message, r"^unknown key|^unknown message kind")
                    r = gs.run_generate("--schema", root, "--check")
                    self.assertEqual(r.returncode, 1)
                    self.assertTrue(r.stderr.startswith(f"schema error: {path}: {want}: "), r.stderr)


class ConstPrefix(unittest.TestCase):
    def test_a_const_is_derived_from_the_file_prefix(self):
        s = schema_mod.load(gs.REAL_SCHEMA)
        table = s.object("table")
        self.assertEqual(table.attr("name").const, "NFTNL_TABLE_NAME")
        # An attribute off the pattern keeps its own constant.
        counter = s.object("counter")
        self.assertEqual(counter.attr("packets").const, "NFTNL_OBJ_CTR_PKTS")

    def test_no_const_and_no_prefix_is_an_error(self):
        with tempfile.TemporaryDirectory() as tmp:
            root = os.path.join(tmp, "schema")
            shutil.copytree(gs.REAL_SCHEMA, root)
            path = os.path.join(root, "expressions/notrack.yaml")
            with open(os.path.join(root, "expressions/cmp.yaml"), encoding="utf-8") as f:
                cmp = yaml.safe_load(f)
            cmp.pop("const-prefix")
            with open(os.path.join(root, "expressions/cmp.yaml"), "w", encoding="utf-8") as f:
                yaml.safe_dump(cmp, f, sort_keys=False)
            with self.assertRaises(SchemaError) as cm:
                schema_mod.load(root)
            self.assertTrue(cm.exception.path.endswith("cmp.yaml"), str(cm.exception))
            self.assertEqual(cm.exception.key, "attributes[0].const")
            del path

    def test_libnftnl_work_arounds_have_their_own_key(self):
        s = schema_mod.load(gs.REAL_SCHEMA)
        userdata = s.object("table").attr("userdata")
        self.assertIn("unset-frees", userdata.flags)
        with open(os.path.join(gs.REAL_SCHEMA, "objects/table.yaml"), encoding="utf-8") as f:
            raw = yaml.safe_load(f)
        ud = next(a for a in raw["attributes"] if a["name"] == "userdata")
        self.assertEqual(ud["libnftnl"], ["unset-frees"])
        self.assertNotIn("flags", ud)


if __name__ == "__main__":
    unittest.main()
