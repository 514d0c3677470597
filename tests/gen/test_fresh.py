"""The committed generated files are what the committed schema makes.

elixir_stubs/ and docs/reference.md are generated but committed (the Elixir
side and readers of the repository use them without running the
generator). This test regenerates both from schema/ into temporary
directories and compares file sets and contents. It fails whenever someone
changes schema/ or gen/ without regenerating: that is its job.
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gensupport as gs  # noqa: E402

REGENERATE = ("/usr/bin/python3 gen/generate.py --schema schema "
              "--elixir-out elixir_stubs --docs-out docs/reference.md")


class CommittedOutputIsFresh(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="nfp-fresh-")
        cls.ex_out = os.path.join(cls._tmp.name, "elixir_stubs")
        cls.doc_out = os.path.join(cls._tmp.name, "reference.md")
        gs.generate("--schema", gs.REAL_SCHEMA, "--elixir-out", cls.ex_out,
                    "--docs-out", cls.doc_out)

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def assertSameTree(self, committed, generated, label, diff_label):
        problems = gs.compare_trees(gs.read_tree(committed), gs.read_tree(generated),
                                    diff_label, "generated")
        if problems:
            self.fail(f"{label} is stale: it is not what the generator makes from schema/.\n"
                      f"Regenerate it from the repository root with\n    {REGENERATE}\n"
                      "and commit the result with the schema change.\n\n" + "\n".join(problems))

    def test_elixir_stubs(self):
        committed = os.path.join(gs.REPO, "elixir_stubs")
        self.assertTrue(os.path.isdir(committed), f"elixir_stubs/ is missing; run {REGENERATE}")
        self.assertSameTree(committed, self.ex_out, "elixir_stubs/", "elixir_stubs")

    def test_reference_md(self):
        committed = os.path.join(gs.REPO, "docs", "reference.md")
        self.assertTrue(os.path.isfile(committed), f"docs/reference.md is missing; run {REGENERATE}")
        self.assertSameTree(committed, self.doc_out, "docs/reference.md", "docs")


if __name__ == "__main__":
    unittest.main()
