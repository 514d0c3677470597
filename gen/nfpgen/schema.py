"""Load schema/*.yaml and validate it strictly.

The schema is the single source of truth of NFTables.Port: every object,
expression, attribute, enum and op. Anything it does not define is an error
here, at build time, with the file and the key that is wrong.

What each key of each kind of file means is the meta-schema's
(gen/meta/<kind>.yaml, JSON Schema, checked by meta.py); this module adds
what the meta-schema cannot say (duplicates, checks against the wire
types, references between files) and builds the model the emitters read.
"""

import glob
import os
import re

import yaml

from .errors import SchemaError
from . import meta
from . import types as wiretypes

# The vocabularies live in the meta-schema (gen/meta/), which documents them.
BACKENDS = meta.enum_of("common", "backend")
VERBS = meta.enum_of("common", "verb")
ATTR_FLAGS = (meta.enum_of("common", "attribute", "properties", "flags", "items")
              + meta.enum_of("common", "attribute", "properties", "libnftnl", "items"))

if set(meta.enum_of("common", "wire-type")) != set(wiretypes.NAMES):
    raise RuntimeError("gen/meta/common.yaml's wire-type enum differs from nfpgen/types.py")


class Enum:
    def __init__(self, name, kind, doc, entries, path):
        self.name = name
        self.kind = kind            # "values" or "flags"
        self.doc = doc
        self.entries = entries      # list of dicts: name, const|value, doc, nft
        self.path = path

    def entry_names(self):
        return [e["name"] for e in self.entries]


class Attr:
    def __init__(self, owner, raw, path, key, const_prefix=None):
        self.owner = owner
        self.name = raw["name"]
        # Where it follows the file's pattern, the constant is derived.
        self.const = raw.get("const") or f"{const_prefix}{raw['name'].upper()}"
        self.type = wiretypes.get(raw["type"])
        self.doc = raw["doc"].strip()
        self.nft = raw.get("nft")
        self.max_len = raw.get("max-len")
        self.enum_name = raw.get("enum")
        self.enum = None
        self.enum_by = raw.get("enum-by")
        # The engine's flags, libnftnl's work-arounds among them.
        self.flags = list(raw.get("flags", [])) + list(raw.get("libnftnl", []))
        self.exact_len = raw.get("exact-len", False)
        # Attributes libnftnl keeps in the same storage: never both set.
        self.exclusive_with = list(raw.get("exclusive-with", []))
        # {attr, values}: setting this one needs attr to hold one of values
        # (set to the first when absent), so that libnftnl frees what it owns.
        self.requires = raw.get("requires")
        self.elem_object = raw.get("object")   # for list types: the item object
        # The netlink type it travels as (see nla.py); None: derived.
        self.nla = raw.get("nla")
        self.path = path
        self.key = key


class AttrOwner:
    """What has attributes: an object or an expression."""

    def _load_attrs(self, raw, path):
        prefix = raw.get("const-prefix")
        self.attrs = [Attr(self, a, path, f"attributes[{i}]", prefix)
                      for i, a in enumerate(raw.get("attributes", []))]

    def attr(self, name):
        for a in self.attrs:
            if a.name == name:
                return a
        return None


class Object(AttrOwner):
    """An nftables object (or a message type built on one libnftnl object)."""

    def __init__(self, raw, path):
        self.kind = "object"
        self.name = raw["name"]
        self.doc = raw["doc"].strip()
        self.nft = raw.get("nft")
        self.backend = raw["backend"]
        self.module = raw.get("module")
        self.messages = dict(raw.get("messages", {}))
        self.verbs = list(raw.get("verbs", []))
        self.flush = raw.get("flush")
        self.family_attr = raw.get("family-attr")
        self.handle_attr = raw.get("handle-attr")
        self.list_filter = list(raw.get("list-filter", []))
        self.list_via = raw.get("list-via")
        self.fixed = raw.get("fixed")     # {const, value}: set on every object
        self.dump_order = raw.get("dump-order", 0)
        # {object, copy}: list one dump per parent (a rule dump restarts at
        # its chain's start for every netlink message: per chain, the cost
        # is that chain's length squared, not the whole table's).
        self.list_per = raw.get("list-per")
        self.path = path
        self._load_attrs(raw, path)


class Expr(AttrOwner):
    """An expression kind: a sub-message of a rule selected by its name."""

    def __init__(self, raw, path):
        self.kind = "expr"
        self.name = raw["name"]
        self.doc = raw["doc"].strip()
        self.nft = raw.get("nft")
        self.path = path
        self._load_attrs(raw, path)


class Op:
    def __init__(self, raw, path):
        self.name = raw["name"]
        self.handler = raw["handler"]
        self.module = raw["module"]
        self.function = raw["function"]
        self.args = raw.get("args", [])
        self.returns = raw["returns"]
        self.doc = raw["doc"].strip()
        self.object = raw.get("object")
        # "indexed": a kernel error names the failing message's index.
        self.errors = raw.get("errors")
        # Compiled into the test build of the port only (NFP_TEST_BUILD).
        self.test_only = raw.get("test-only", False)
        self.path = path


class Sysctl:
    def __init__(self, raw, path):
        self.name = raw["name"]
        self.type = raw["type"]
        self.range = raw.get("range")
        self.doc = raw["doc"].strip()
        self.path = path


class Schema:
    def __init__(self):
        self.enums = {}
        self.objects = []
        self.exprs = []
        self.ops = []
        self.sysctls = []
        self.exclusions = []
        self.module_docs = {}
        self.files = []

    def object(self, name):
        for o in self.objects:
            if o.name == name:
                return o
        return None


def _load_yaml(path):
    with open(path, encoding="utf-8") as f:
        try:
            data = yaml.safe_load(f)
        except yaml.YAMLError as e:
            raise SchemaError(path, "(file)", f"invalid YAML: {e}") from None
    if not isinstance(data, dict):
        raise SchemaError(path, "(file)", "top level must be a mapping")
    return data


# --- per-file loaders ----------------------------------------------------

def _load_enums(schema, path):
    data = _load_yaml(path)
    meta.validate("enums", data, path)
    for raw in data["enums"]:
        where = f"enums.{raw['name']}"
        if raw["name"] in schema.enums:
            raise SchemaError(path, where, "enum defined twice")
        seen = set()
        for j, e in enumerate(raw["entries"]):
            if e["name"] in seen:
                raise SchemaError(path, f"{where}.entries[{j}].name", f"duplicate entry {e['name']!r}")
            seen.add(e["name"])
        schema.enums[raw["name"]] = Enum(raw["name"], raw["kind"], raw["doc"].strip(),
                                         raw["entries"], path)


def _validate_attrs(path, raw):
    """What the meta-schema cannot say: checks against the wire types."""
    seen = set()
    prefix = raw.get("const-prefix")
    for i, a in enumerate(raw["attributes"]):
        if "const" not in a and prefix is None:
            raise SchemaError(path, f"attributes[{i}].const",
                              "missing required key (or a const-prefix for the file)")
        where = f"attributes.{a['name']}"
        if a["name"] in seen:
            raise SchemaError(path, where, "attribute defined twice")
        seen.add(a["name"])
        t = wiretypes.get(a["type"])
        if "max-len" in a and not t.has_length:
            raise SchemaError(path, f"{where}.max-len", f"type {a['type']} has no length")
        if t.has_length and "max-len" not in a:
            raise SchemaError(path, f"{where}.max-len", f"type {a['type']} needs max-len")
        if "gives-buffer" in a.get("libnftnl", []) and a["type"] != "binary":
            raise SchemaError(path, f"{where}.libnftnl", "only a binary can give its buffer")
        if "exact-len" in a and a["type"] != "binary":
            raise SchemaError(path, f"{where}.exact-len", "only a binary can have an exact length")
        if t.name == "string" and a.get("max-len", 0) > 1023:
            raise SchemaError(path, f"{where}.max-len", "strings are at most 1023 bytes")
        if "enum" in a and not t.can_enum:
            raise SchemaError(path, f"{where}.enum", f"type {a['type']} cannot have an enum")
        if "enum-by" in a and not t.can_enum:
            # Without a default 'enum', other values of the selector mean
            # a plain integer.
            raise SchemaError(path, f"{where}.enum-by", f"type {a['type']} cannot have an enum")
        if t.needs_object and "object" not in a:
            raise SchemaError(path, f"{where}.object", f"type {a['type']} names the item object")


def _load_object(schema, path):
    raw = _load_yaml(path)
    meta.validate("object", raw, path)
    _validate_attrs(path, raw)
    if any(o.name == raw["name"] for o in schema.objects):
        raise SchemaError(path, "name", f"object {raw['name']!r} defined twice")
    schema.objects.append(Object(raw, path))


def _load_expr(schema, path):
    raw = _load_yaml(path)
    meta.validate("expression", raw, path)
    _validate_attrs(path, raw)
    if any(e.name == raw["name"] for e in schema.exprs):
        raise SchemaError(path, "name", f"expression {raw['name']!r} defined twice")
    schema.exprs.append(Expr(raw, path))


def _load_ops(schema, path):
    data = _load_yaml(path)
    meta.validate("ops", data, path)
    for mod, doc in data["modules"].items():
        schema.module_docs[mod] = doc.strip()
    for raw in data["ops"]:
        schema.ops.append(Op(raw, path))
    for op in schema.ops:
        if op.module not in schema.module_docs:
            raise SchemaError(path, f"ops.{op.name}.module", f"module {op.module} has no entry in 'modules'")


SYSCTL_COMPONENT_RE = re.compile(r"^[a-z0-9_]+$")


def _load_sysctls(schema, path):
    data = _load_yaml(path)
    meta.validate("sysctl", data, path)
    seen = set()
    for i, raw in enumerate(data["sysctls"]):
        where = f"sysctls[{i}]"
        name = raw["name"]
        parts = name.split(".") if isinstance(name, str) else []
        if len(parts) < 2 or parts[0] != "net":
            raise SchemaError(path, f"{where}.name", f"{name!r} must be a dotted name starting with 'net.'")
        where = f"sysctls.{name}"
        if parts.count("*") > 1 or parts[-1] == "*":
            raise SchemaError(path, f"{where}.name", "at most one '*' component, not the last")
        for p in parts:
            if p != "*" and not SYSCTL_COMPONENT_RE.match(p):
                raise SchemaError(path, f"{where}.name", f"component {p!r} must be [a-z0-9_]+ or '*'")
        if name in seen:
            raise SchemaError(path, where, "sysctl defined twice")
        seen.add(name)
        if raw["type"] not in ("bool", "int"):
            raise SchemaError(path, f"{where}.type", "must be 'bool' or 'int'")
        r = raw.get("range")
        if raw["type"] == "int":
            if (not isinstance(r, list) or len(r) != 2 or not all(isinstance(x, int) for x in r)
                    or r[0] > r[1] or r[0] < -2**31 or r[1] > 2**31 - 1):
                raise SchemaError(path, f"{where}.range", "an int needs range: [min, max] within 32 bits")
        elif r is not None:
            raise SchemaError(path, f"{where}.range", "a bool has no range")
        schema.sysctls.append(Sysctl(raw, path))


def _load_coverage(schema, path):
    data = _load_yaml(path)
    meta.validate("coverage", data, path)
    for e in data["exclusions"] or []:
        schema.exclusions.append(e)


# --- cross-references ----------------------------------------------------

HANDLE_OPS = (
    ("alloc", [], "{:ok, non_neg_integer()} | {:error, NFTables.Port.Errors.t()}",
     "Allocates an empty {obj} object and returns its handle."),
    ("set", [("handle", "non_neg_integer()", "a {obj} handle"),
             ("attr", "atom()", "an attribute name"),
             ("value", "term()", "the value, typed as the attribute says")],
     ":ok | {:error, NFTables.Port.Errors.t()}", "Sets one attribute of a {obj} object."),
    ("get", [("handle", "non_neg_integer()", "a {obj} handle"),
             ("attr", "atom()", "an attribute name")],
     "{:ok, term()} | {:error, NFTables.Port.Errors.t()}", "Reads one attribute of a {obj} object."),
    ("unset", [("handle", "non_neg_integer()", "a {obj} handle"),
               ("attr", "atom()", "an attribute name")],
     ":ok | {:error, NFTables.Port.Errors.t()}", "Clears one attribute of a {obj} object."),
    ("free", [("handle", "non_neg_integer()", "a {obj} handle")],
     ":ok | {:error, NFTables.Port.Errors.t()}", "Frees a {obj} object; its handle is no longer valid."),
    ("to_map", [("handle", "non_neg_integer()", "a {obj} handle")],
     "{:ok, map()} | {:error, NFTables.Port.Errors.t()}", "Every attribute that is set, as a map."),
)


def _add_handle_ops(schema):
    """Objects with a `module` get the six handle ops, generated."""
    for o in schema.objects:
        if not o.module:
            continue
        for verb, args, returns, doc in HANDLE_OPS:
            op_args = [{"name": n, "spec": s, "doc": d.format(obj=o.name)} for n, s, d in args]
            schema.ops.append(Op({
                "name": f"{o.name}_{verb}", "handler": f"nfp_op_obj_{verb}",
                "module": o.module, "function": verb, "args": op_args,
                "returns": returns, "doc": doc.format(obj=o.name),
            }, o.path))
            schema.ops[-1].object = o.name


def _resolve(schema):
    names = set()
    for op in schema.ops:
        if op.name in names:
            raise SchemaError(op.path, f"ops.{op.name}", "op defined twice")
        names.add(op.name)
    all_owners = [(o, o.path) for o in schema.objects] + [(e, e.path) for e in schema.exprs]
    for owner, path in all_owners:
        for a in owner.attrs:
            where = f"attributes.{a.name}"
            if a.enum_name is not None:
                if a.enum_name not in schema.enums:
                    raise SchemaError(path, f"{where}.enum", f"dangling enum reference {a.enum_name!r}")
                a.enum = schema.enums[a.enum_name]
                if a.enum.kind == "flags" and not a.type.can_flags:
                    raise SchemaError(path, f"{where}.enum", "a flags enum needs an unsigned type")
            if a.enum_by is not None:
                sel = owner.attr(a.enum_by["attr"])
                if sel is None or sel.enum is None:
                    raise SchemaError(path, f"{where}.enum-by.attr",
                                      f"{a.enum_by['attr']!r} is not an enum attribute of {owner.name}")
                for case, en in a.enum_by["cases"].items():
                    if case not in sel.enum.entry_names():
                        raise SchemaError(path, f"{where}.enum-by.cases.{case}",
                                          f"not a value of enum {sel.enum.name}")
                    if en not in schema.enums:
                        raise SchemaError(path, f"{where}.enum-by.cases.{case}",
                                          f"dangling enum reference {en!r}")
            for other in a.exclusive_with:
                o2 = owner.attr(other)
                if o2 is None:
                    raise SchemaError(path, f"{where}.exclusive-with", f"{other!r} is not an attribute of {owner.name}")
                if a.name not in o2.exclusive_with:
                    o2.exclusive_with.append(a.name)
            if a.requires is not None:
                sel = owner.attr(a.requires["attr"])
                if sel is None or sel.enum is None or not sel.type.can_enum:
                    raise SchemaError(path, f"{where}.requires.attr",
                                      f"{a.requires['attr']!r} is not an enum attribute of {owner.name}")
                for v in a.requires["values"]:
                    if v not in sel.enum.entry_names():
                        raise SchemaError(path, f"{where}.requires.values", f"{v!r} is not a value of enum {sel.enum.name}")
            if a.type.needs_object:
                target = a.elem_object
                known = [o.name for o in schema.objects]
                if a.type.name == "exprs":
                    pass  # items are expressions, chosen by name
                elif target not in known:
                    raise SchemaError(path, f"{where}.object", f"unknown object {target!r}")
    for o in schema.objects:
        for k in ("family_attr", "handle_attr"):
            v = getattr(o, k)
            if v is not None and o.attr(v) is None:
                raise SchemaError(o.path, k.replace("_", "-"), f"{v!r} is not an attribute of {o.name}")
        for f in o.list_filter:
            if o.attr(f) is None:
                raise SchemaError(o.path, "list-filter", f"{f!r} is not an attribute of {o.name}")
        if o.flush:
            tgt = o.flush["backend"]
            if tgt not in BACKENDS:
                raise SchemaError(o.path, "flush.backend", f"unknown backend {tgt!r}")
            for dst, src in o.flush["copy"].items():
                if o.attr(src) is None:
                    raise SchemaError(o.path, f"flush.copy.{dst}", f"{src!r} is not an attribute of {o.name}")
        if "flush" in o.verbs and not o.flush:
            raise SchemaError(o.path, "verbs", "verb flush needs a 'flush' block")
        if o.list_per:
            parent = schema.object(o.list_per["object"])
            if parent is None:
                raise SchemaError(o.path, "list-per.object", f"unknown object {o.list_per['object']!r}")
            for dst, src in o.list_per["copy"].items():
                if o.attr(dst) is None:
                    raise SchemaError(o.path, f"list-per.copy.{dst}", f"{dst!r} is not an attribute of {o.name}")
                if parent.attr(src) is None:
                    raise SchemaError(o.path, f"list-per.copy.{dst}", f"{src!r} is not an attribute of {parent.name}")
        if o.list_via and schema.object(o.list_via) is None:
            raise SchemaError(o.path, "list-via", f"unknown object {o.list_via!r}")
    for o in schema.objects:
        if o.flush:
            tgt_obj = [x for x in schema.objects if x.backend == o.flush["backend"]]
            for dst in o.flush["copy"]:
                if not any(x.attr(dst) for x in tgt_obj):
                    raise SchemaError(o.path, f"flush.copy.{dst}",
                                      f"no {o.flush['backend']} object has attribute {dst!r}")


# Which files are schema files of which kind: (glob under schema/, the
# meta-schema kind in gen/meta/, the loader). A new kind of schema file is
# one row here and one gen/meta/<kind>.yaml.
FILE_KINDS = [
    ("enums*.yaml", "enums", _load_enums),
    ("objects/*.yaml", "object", _load_object),
    ("expressions/*.yaml", "expression", _load_expr),
    ("ops.yaml", "ops", _load_ops),
    ("sysctl.yaml", "sysctl", _load_sysctls),
    ("coverage.yaml", "coverage", _load_coverage),
]


def load(root):
    """Load and validate the schema under `root` (the schema/ directory)."""
    schema = Schema()
    for pattern, _kind, loader in FILE_KINDS:
        found = sorted(glob.glob(os.path.join(root, pattern)))
        if pattern == "ops.yaml" and not found:
            raise SchemaError(os.path.join(root, pattern), "(file)", "missing")
        for p in found:
            loader(schema, p)
            schema.files.append(p)
    _add_handle_ops(schema)
    _resolve(schema)
    return schema
