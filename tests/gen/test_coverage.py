"""The schema covers every attribute libnftnl has, or says why not.

libnftnl's public headers name every attribute of every object and
expression as an enumerator (NFTNL_TABLE_NAME, NFTNL_EXPR_CT_DIR, ...).
This test parses the enumerators of

    /usr/include/libnftnl/{expr,table,chain,rule,set,object,flowtable,gen}.h

and fails for each NFTNL_* enumerator that is neither used by the schema
nor excluded, with its reason, in schema/coverage.yaml; and for each
exclusion that is stale (the schema covers the constant, or no header
defines it), duplicated or has no reason.

What counts:
- Only enumerators inside `enum ... { ... }` bodies whose name is
  NFTNL_[A-Z0-9_]+. #define'd names (NFTNL_*_MAX macros, aliases such as
  nftnl_expr_set_data) are not attribute ids and are skipped, and so are
  the `__NFTNL_*_MAX` sentinel enumerators (they start with "__"). Other
  enumerators that are not attributes (NFTNL_EXPR_BASE, NFTNL_OBJ_BASE,
  NFTNL_CTTIMEOUT_*_MAX, ...) must be excluded by name, with the reason.
- "Used by the schema": the `const` of an attribute of any object or
  expression, the `const` of an object's `fixed` attribute, or the `const`
  of an enum entry (array indexes such as NFTNL_CTTIMEOUT_TCP_SYN_SENT may
  be modelled as enum entries).

Run from the repository root with Debian's Python (it has PyYAML, which
nfpgen needs):

    /usr/bin/python3 -m unittest tests.gen.test_coverage
"""

import os
import re
import sys
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
GEN_DIR = os.path.join(REPO, "gen")
SCHEMA_DIR = os.path.join(REPO, "schema")
COVERAGE = "schema/coverage.yaml"

if GEN_DIR not in sys.path:
    sys.path.insert(0, GEN_DIR)

from nfpgen import schema as schema_mod  # noqa: E402

LIBNFTNL_INCLUDE = "/usr/include/libnftnl"
# The headers whose attributes the schema must cover.
COVERED_HEADERS = ("expr", "table", "chain", "rule", "set", "object", "flowtable", "gen")

# The expression kinds Debian 12's libnftnl 1.2.4 registers (the expr_ops
# array of src/expr_ops.c; `nm libnftnl.a | grep expr_ops_`), by the name
# nftnl_expr_alloc() takes.
LIBNFTNL_EXPRESSIONS = (
    "bitwise", "byteorder", "cmp", "connlimit", "counter", "ct", "dup", "dynset",
    "exthdr", "fib", "flow_offload", "fwd", "hash", "immediate", "last", "limit",
    "log", "lookup", "masq", "match", "meta", "nat", "notrack", "numgen",
    "objref", "osf", "payload", "queue", "quota", "range", "redir", "reject",
    "rt", "socket", "synproxy", "target", "tproxy", "tunnel", "xfrm",
)

CONST_RE = re.compile(r"^NFTNL_[A-Z0-9_]+$")
ENUM_BODY_RE = re.compile(r"\benum\b[^{;]*\{(.*?)\}", re.S)
DEFINE_RE = re.compile(r"^\s*#\s*define\s+(NFTNL_[A-Z0-9_]+)\b", re.M)
IDENT_RE = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)")


def _strip_comments(text):
    text = re.sub(r"/\*.*?\*/", " ", text, flags=re.S)
    return re.sub(r"//[^\n]*", " ", text)


def _without_directives(text):
    return "\n".join(l for l in text.split("\n") if not l.lstrip().startswith("#"))


def header_enumerators(path):
    """NFTNL_* enumerators defined inside enum bodies of one header."""
    with open(path, encoding="utf-8") as f:
        text = _without_directives(_strip_comments(f.read()))
    names = []
    for body in ENUM_BODY_RE.findall(text):
        for item in body.split(","):
            m = IDENT_RE.match(item)
            if m and CONST_RE.match(m.group(1)):
                names.append(m.group(1))
    return names


def header_defines(path):
    with open(path, encoding="utf-8") as f:
        return DEFINE_RE.findall(_strip_comments(f.read()))


def required_constants():
    """{const: header} of every enumerator the schema must cover."""
    out = {}
    for h in COVERED_HEADERS:
        path = os.path.join(LIBNFTNL_INCLUDE, h + ".h")
        for name in header_enumerators(path):
            out.setdefault(name, h + ".h")
    return out


def defined_constants():
    """Every NFTNL_* name any libnftnl header defines (enumerator or macro)."""
    out = set()
    for fn in sorted(os.listdir(LIBNFTNL_INCLUDE)):
        if fn.endswith(".h"):
            path = os.path.join(LIBNFTNL_INCLUDE, fn)
            out.update(header_enumerators(path))
            out.update(header_defines(path))
    return out


def schema_constants(schema):
    """NFTNL_* constants the schema uses: attributes, fixed attributes and
    enum entries."""
    used = set()
    for owner in list(schema.objects) + list(schema.exprs):
        for a in owner.attrs:
            used.add(a.const)
        fixed = getattr(owner, "fixed", None)
        if isinstance(fixed, dict) and "const" in fixed:
            used.add(fixed["const"])
    for enum in schema.enums.values():
        for e in enum.entries:
            if "const" in e:
                used.add(e["const"])
    return {c for c in used if CONST_RE.match(c)}


@unittest.skipUnless(os.path.isdir(LIBNFTNL_INCLUDE),
                     "libnftnl-dev is not installed (no /usr/include/libnftnl)")
class CoverageTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.schema = schema_mod.load(SCHEMA_DIR)
        cls.required = required_constants()
        cls.defined = defined_constants()
        cls.used = schema_constants(cls.schema)
        cls.exclusions = list(cls.schema.exclusions)
        cls.excluded = {e["const"] for e in cls.exclusions}

    def _none(self, problems, message):
        if problems:
            self.fail(message)

    def test_headers_parse(self):
        # Guards the parser: a few constants of each kind must be found.
        for c in ("NFTNL_TABLE_NAME", "NFTNL_EXPR_NAME", "NFTNL_EXPR_PAYLOAD_DREG",
                  "NFTNL_SET_ELEM_KEY", "NFTNL_OBJ_CTR_PKTS", "NFTNL_GEN_ID"):
            self.assertIn(c, self.required, f"the header parser missed {c}")
        self.assertFalse([c for c in self.required if c.startswith("__")])

    def test_every_constant_is_covered_or_excluded(self):
        missing = sorted(c for c in self.required
                         if c not in self.used and c not in self.excluded)
        self._none(missing, "\n" + "\n".join(
            f"{c} is neither in the schema nor excluded in {COVERAGE}: add it"
            f" (from libnftnl/{self.required[c]})" for c in missing))

    def test_no_stale_exclusions(self):
        problems = []
        for e in self.exclusions:
            c = e["const"]
            if c in self.used:
                problems.append(f"{c} is excluded in {COVERAGE} but the schema covers it:"
                                " remove the exclusion")
            if c not in self.defined:
                problems.append(f"{c} is excluded in {COVERAGE} but no libnftnl header"
                                " defines it: remove the exclusion")
        self._none(problems, "\n" + "\n".join(problems))

    def test_exclusions_have_reasons(self):
        empty = [e["const"] for e in self.exclusions
                 if not isinstance(e.get("why"), str) or not e["why"].strip()]
        self._none(empty, "\n" + "\n".join(
            f"{c}: the exclusion in {COVERAGE} needs a reason (why)" for c in empty))

    def test_exclusions_are_unique(self):
        seen, dups = set(), []
        for e in self.exclusions:
            if e["const"] in seen:
                dups.append(e["const"])
            seen.add(e["const"])
        self._none(dups, "\n" + "\n".join(
            f"{c} is excluded twice in {COVERAGE}" for c in dups))

    def test_schema_uses_only_defined_constants(self):
        unknown = sorted(c for c in self.used if c not in self.defined)
        self._none(unknown, "\n" + "\n".join(
            f"{c} is used by the schema but no libnftnl header defines it" for c in unknown))

    def test_every_libnftnl_expression_is_in_the_schema(self):
        have = {e.name for e in self.schema.exprs}
        missing = [n for n in LIBNFTNL_EXPRESSIONS if n not in have]
        self._none(missing, "\n" + "\n".join(
            f"expression {n} (registered by libnftnl) has no schema/expressions/{n}.yaml"
            for n in missing))

    def test_expression_attributes_belong_to_their_expression(self):
        # NFTNL_EXPR_<KIND>_* constants of one expression used in another
        # would silently set the wrong attribute (ids overlap across kinds).
        prefixes = {"counter": "CTR", "immediate": "IMM", "numgen": "NG",
                    "match": "MT", "target": "TG", "flow_offload": "FLOW"}
        wrong = []
        for e in self.schema.exprs:
            prefix = "NFTNL_EXPR_" + prefixes.get(e.name, e.name.upper()) + "_"
            for a in e.attrs:
                if not a.const.startswith(prefix):
                    wrong.append(f"expression {e.name}: attribute {a.name} uses {a.const},"
                                 f" not a {prefix}* constant")
        self._none(wrong, "\n" + "\n".join(wrong))


if __name__ == "__main__":
    unittest.main()
