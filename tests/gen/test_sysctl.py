"""schema/sysctl.yaml: the allow-list's checks and the C table made from it.

The names must stay under /proc/sys/net (a dotted name starting with
"net.", components [a-z0-9_]+, at most one `*` that is not the last), an
int needs a 32-bit range, a bool has none; every error names the file and
the key. The real schema's table is split at the wildcard as
src/ops_sysctl.c expects.
"""

import os
import sys
import tempfile
import unittest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import gensupport as gs  # noqa: E402

from nfpgen import c_sysctl  # noqa: E402
from nfpgen import schema as schema_mod  # noqa: E402
from nfpgen.errors import SchemaError  # noqa: E402


def load_with(text):
    with tempfile.TemporaryDirectory(prefix="nfp-sysctl-") as d:
        root = gs.copy_schema(gs.SMALL_SCHEMA, os.path.join(d, "schema"))
        with open(os.path.join(root, "sysctl.yaml"), "w", encoding="utf-8") as f:
            f.write(text)
        return schema_mod.load(root)


def entry(name, typ="bool", extra=""):
    return f"sysctls:\n  - name: {name}\n    type: {typ}\n{extra}    doc: a doc\n"


class SysctlSchemaErrors(unittest.TestCase):
    def assertRefused(self, text, key, words):
        with self.assertRaises(SchemaError) as cm:
            load_with(text)
        self.assertTrue(cm.exception.path.endswith("sysctl.yaml"), cm.exception.path)
        self.assertEqual(cm.exception.key, key)
        self.assertIn(words, str(cm.exception))

    def test_names_stay_below_net(self):
        self.assertRefused(entry("kernel.panic"), "sysctls[0].name", "starting with 'net.'")
        self.assertRefused(entry('"net.ipv4.."'), "sysctls.net.ipv4...name", "component ''")
        self.assertRefused(entry('"net.ipv4./etc"'), "sysctls.net.ipv4./etc.name", "component '/etc'")
        self.assertRefused(entry('"net.*.conf.*.x"'), "sysctls.net.*.conf.*.x.name", "at most one '*'")
        self.assertRefused(entry('"net.ipv4.*"'), "sysctls.net.ipv4.*.name", "not the last")

    def test_types_and_ranges(self):
        self.assertRefused(entry("net.a", "string"), "sysctls.net.a.type", "'bool' or 'int'")
        self.assertRefused(entry("net.a", "int"), "sysctls.net.a.range", "range: [min, max]")
        self.assertRefused(entry("net.a", "int", "    range: [2, 1]\n"), "sysctls.net.a.range", "range")
        self.assertRefused(entry("net.a", "int", "    range: [0, 4294967296]\n"), "sysctls.net.a.range",
                           "32 bits")
        self.assertRefused(entry("net.a", "bool", "    range: [0, 1]\n"), "sysctls.net.a.range", "no range")

    def test_twice_and_unknown_keys(self):
        self.assertRefused(entry("net.a") + entry("net.a")[len("sysctls:\n"):], "sysctls.net.a", "twice")
        self.assertRefused(entry("net.a", "bool", "    mode: 644\n"), "sysctls[0].mode", "unknown key")


class SysctlTable(unittest.TestCase):
    def test_split_at_the_wildcard(self):
        self.assertEqual(c_sysctl.split("net.ipv4.ip_forward"),
                         ("net.ipv4.ip_forward", None, "ipv4/ip_forward", None))
        self.assertEqual(c_sysctl.split("net.ipv4.conf.*.rp_filter"),
                         ("net.ipv4.conf.", ".rp_filter", "ipv4/conf/", "/rp_filter"))

    def test_real_schema_has_what_a_router_needs(self):
        schema = schema_mod.load(gs.REAL_SCHEMA)
        names = {s.name: s for s in schema.sysctls}
        for name in ("net.ipv4.ip_forward", "net.ipv6.conf.*.forwarding", "net.ipv4.conf.*.rp_filter",
                     "net.netfilter.nf_conntrack_max"):
            self.assertIn(name, names)
        self.assertEqual(names["net.ipv4.conf.*.rp_filter"].range, [0, 2])
        c = c_sysctl.emit(schema, gs.REPO)
        self.assertIn('{ "net.ipv4.conf.*.rp_filter", "net.ipv4.conf.", ".rp_filter", "ipv4/conf/", '
                      '"/rp_filter", NFP_SYSCTL_INT, 0LL, 2LL },', c)
        self.assertIn(f"const size_t nfp_nsysctls = {len(schema.sysctls)};", c)


if __name__ == "__main__":
    unittest.main()
