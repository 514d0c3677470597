"""Load schema/*.yaml and validate it strictly.

The schema is the single source of truth of NFTables.Port: every object,
expression, attribute, enum and op. Anything it does not define is an error
here, at build time, with the file and the key that is wrong.
"""

import os
import re

import yaml

from .errors import SchemaError
from . import types as wiretypes

NAME_RE = re.compile(r"^[a-z][a-z0-9_]*$")
CONST_RE = re.compile(r"^[A-Z][A-Z0-9_]*$")
MODULE_RE = re.compile(r"^[A-Z][A-Za-z0-9]*(\.[A-Z][A-Za-z0-9]*)*$")

BACKENDS = ("table", "chain", "rule", "set", "set_elems", "set_elem", "obj", "flowtable")
VERBS = ("add", "create", "insert", "replace", "delete", "destroy", "flush")
ATTR_FLAGS = ("key", "readonly", "handle", "transient", "auto-id", "omit-zero", "gives-buffer",
              "unset-frees", "set-once")
MESSAGE_KINDS = ("new", "get", "del", "destroy")


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
    def __init__(self, owner, raw, path, key):
        self.owner = owner
        self.name = raw["name"]
        self.const = raw["const"]
        self.type = wiretypes.get(raw["type"])
        self.doc = raw["doc"].strip()
        self.nft = raw.get("nft")
        self.max_len = raw.get("max-len")
        self.enum_name = raw.get("enum")
        self.enum = None
        self.enum_by = raw.get("enum-by")
        self.flags = list(raw.get("flags", []))
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
        self.attrs = [Attr(self, a, path, f"attributes[{i}]")
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
        self.path = path


class Schema:
    def __init__(self):
        self.enums = {}
        self.objects = []
        self.exprs = []
        self.ops = []
        self.exclusions = []
        self.module_docs = {}
        self.files = []

    def object(self, name):
        for o in self.objects:
            if o.name == name:
                return o
        return None


# --- strict key checking -------------------------------------------------

def _check_keys(path, where, raw, required, optional):
    if not isinstance(raw, dict):
        raise SchemaError(path, where, f"expected a mapping, got {type(raw).__name__}")
    for k in raw:
        if k not in required and k not in optional:
            allowed = ", ".join(sorted(set(required) | set(optional)))
            raise SchemaError(path, f"{where}.{k}" if where else k,
                              f"unknown key (allowed: {allowed})")
    for k in required:
        if k not in raw:
            raise SchemaError(path, f"{where}.{k}" if where else k, "missing required key")
        if k == "doc" and (not isinstance(raw[k], str) or not raw[k].strip()):
            raise SchemaError(path, f"{where}.{k}" if where else k, "doc must be a non-empty string")


def _check_name(path, where, name):
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise SchemaError(path, where, f"name {name!r} must be lower_snake_case")


def _check_const(path, where, const):
    if not isinstance(const, str) or not CONST_RE.match(const):
        raise SchemaError(path, where, f"{const!r} is not a C constant name")


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
    _check_keys(path, "", data, ["enums"], [])
    for i, raw in enumerate(data["enums"]):
        where = f"enums[{i}]"
        _check_keys(path, where, raw, ["name", "kind", "doc", "entries"], [])
        _check_name(path, f"{where}.name", raw["name"])
        where = f"enums.{raw['name']}"
        if raw["kind"] not in ("values", "flags"):
            raise SchemaError(path, f"{where}.kind", "must be 'values' or 'flags'")
        if raw["name"] in schema.enums:
            raise SchemaError(path, where, "enum defined twice")
        seen = set()
        for j, e in enumerate(raw["entries"]):
            ew = f"{where}.entries[{j}]"
            _check_keys(path, ew, e, ["name", "doc"], ["const", "value", "nft"])
            _check_name(path, f"{ew}.name", e["name"])
            if ("const" in e) == ("value" in e):
                raise SchemaError(path, ew, "needs exactly one of 'const' and 'value'")
            if "const" in e:
                _check_const(path, f"{ew}.const", e["const"])
            elif not isinstance(e["value"], int):
                raise SchemaError(path, f"{ew}.value", "must be an integer")
            if e["name"] in seen:
                raise SchemaError(path, f"{ew}.name", f"duplicate entry {e['name']!r}")
            seen.add(e["name"])
        schema.enums[raw["name"]] = Enum(raw["name"], raw["kind"], raw["doc"].strip(),
                                         raw["entries"], path)


ATTR_REQUIRED = ["name", "const", "type", "doc"]
ATTR_OPTIONAL = ["enum", "enum-by", "max-len", "exact-len", "flags", "nft", "object",
                 "exclusive-with", "requires", "nla"]
NLA_RE = re.compile(r"^(none|NFTA_[A-Z0-9_]+(/NFTA_[A-Z0-9_]+)?)$")


def _validate_attrs(path, raw_attrs):
    if not isinstance(raw_attrs, list):
        raise SchemaError(path, "attributes", "must be a list")
    seen = set()
    for i, a in enumerate(raw_attrs):
        where = f"attributes[{i}]"
        _check_keys(path, where, a, ATTR_REQUIRED, ATTR_OPTIONAL)
        _check_name(path, f"{where}.name", a["name"])
        where = f"attributes.{a['name']}"
        _check_const(path, f"{where}.const", a["const"])
        if a["type"] not in wiretypes.NAMES:
            raise SchemaError(path, f"{where}.type",
                              f"unknown type {a['type']!r} (known: {', '.join(wiretypes.NAMES)})")
        if a["name"] in seen:
            raise SchemaError(path, where, "attribute defined twice")
        seen.add(a["name"])
        for f in a.get("flags", []):
            if f not in ATTR_FLAGS:
                raise SchemaError(path, f"{where}.flags", f"unknown flag {f!r} (known: {', '.join(ATTR_FLAGS)})")
        if "nla" in a and (not isinstance(a["nla"], str) or not NLA_RE.match(a["nla"])):
            raise SchemaError(path, f"{where}.nla",
                              "must be none, NFTA_X or NFTA_NEST/NFTA_X")
        t = wiretypes.get(a["type"])
        if "max-len" in a and (not isinstance(a["max-len"], int) or isinstance(a["max-len"], bool)
                               or a["max-len"] <= 0):
            raise SchemaError(path, f"{where}.max-len", "must be a positive integer")
        if "max-len" in a and not t.has_length:
            raise SchemaError(path, f"{where}.max-len", f"type {a['type']} has no length")
        if t.has_length and "max-len" not in a:
            raise SchemaError(path, f"{where}.max-len", f"type {a['type']} needs max-len")
        if "gives-buffer" in a.get("flags", []) and a["type"] != "binary":
            raise SchemaError(path, f"{where}.flags", "only a binary can give its buffer")
        if "exact-len" in a and a["type"] != "binary":
            raise SchemaError(path, f"{where}.exact-len", "only a binary can have an exact length")
        if "exact-len" in a and not isinstance(a["exact-len"], bool):
            raise SchemaError(path, f"{where}.exact-len", "must be true or false")
        if t.name == "string" and a.get("max-len", 0) > 1023:
            raise SchemaError(path, f"{where}.max-len", "strings are at most 1023 bytes")
        if "enum" in a and not t.can_enum:
            raise SchemaError(path, f"{where}.enum", f"type {a['type']} cannot have an enum")
        if "enum-by" in a:
            # Without a default 'enum', other values of the selector mean
            # a plain integer.
            if not t.can_enum:
                raise SchemaError(path, f"{where}.enum-by", f"type {a['type']} cannot have an enum")
            _check_keys(path, f"{where}.enum-by", a["enum-by"], ["attr", "cases"], [])
        if "requires" in a:
            _check_keys(path, f"{where}.requires", a["requires"], ["attr", "values"], [])
            if not isinstance(a["requires"]["values"], list) or not a["requires"]["values"]:
                raise SchemaError(path, f"{where}.requires.values", "must be a non-empty list")
        if t.needs_object and "object" not in a:
            raise SchemaError(path, f"{where}.object", f"type {a['type']} names the item object")


def _load_object(schema, path):
    raw = _load_yaml(path)
    _check_keys(path, "", raw, ["name", "doc", "backend", "attributes"],
                ["nft", "module", "messages", "verbs", "flush", "family-attr",
                 "handle-attr", "list-filter", "list-via", "fixed", "dump-order",
                 "list-per"])
    if "dump-order" in raw and (not isinstance(raw["dump-order"], int)
                                or isinstance(raw["dump-order"], bool)
                                or not 0 < raw["dump-order"] < 256):
        raise SchemaError(path, "dump-order", "must be an integer from 1 to 255")
    _check_name(path, "name", raw["name"])
    if raw["backend"] not in BACKENDS:
        raise SchemaError(path, "backend", f"unknown backend {raw['backend']!r} (known: {', '.join(BACKENDS)})")
    if "module" in raw and not MODULE_RE.match(raw["module"]):
        raise SchemaError(path, "module", "must be an Elixir module name")
    for k, v in raw.get("messages", {}).items():
        if k not in MESSAGE_KINDS:
            raise SchemaError(path, f"messages.{k}", f"unknown message kind (known: {', '.join(MESSAGE_KINDS)})")
        _check_const(path, f"messages.{k}", v)
    for v in raw.get("verbs", []):
        if v not in VERBS:
            raise SchemaError(path, "verbs", f"unknown verb {v!r} (known: {', '.join(VERBS)})")
    if "fixed" in raw:
        _check_keys(path, "fixed", raw["fixed"], ["const", "value"], [])
        _check_const(path, "fixed.const", raw["fixed"]["const"])
        _check_const(path, "fixed.value", raw["fixed"]["value"])
    if "list-per" in raw:
        _check_keys(path, "list-per", raw["list-per"], ["object", "copy"], [])
    if "flush" in raw:
        _check_keys(path, "flush", raw["flush"], ["msg", "backend", "copy"], [])
        _check_const(path, "flush.msg", raw["flush"]["msg"])
    _validate_attrs(path, raw["attributes"])
    if any(o.name == raw["name"] for o in schema.objects):
        raise SchemaError(path, "name", f"object {raw['name']!r} defined twice")
    schema.objects.append(Object(raw, path))


def _load_expr(schema, path):
    raw = _load_yaml(path)
    _check_keys(path, "", raw, ["name", "doc", "attributes"], ["nft"])
    _check_name(path, "name", raw["name"])
    _validate_attrs(path, raw["attributes"])
    if any(e.name == raw["name"] for e in schema.exprs):
        raise SchemaError(path, "name", f"expression {raw['name']!r} defined twice")
    schema.exprs.append(Expr(raw, path))


def _load_ops(schema, path):
    data = _load_yaml(path)
    _check_keys(path, "", data, ["ops", "modules"], [])
    for mod, doc in data["modules"].items():
        if not MODULE_RE.match(mod):
            raise SchemaError(path, f"modules.{mod}", "must be an Elixir module name")
        if not isinstance(doc, str) or not doc.strip():
            raise SchemaError(path, f"modules.{mod}", "doc must be a non-empty string")
        schema.module_docs[mod] = doc.strip()
    for i, raw in enumerate(data["ops"]):
        where = f"ops[{i}]"
        _check_keys(path, where, raw, ["name", "handler", "module", "function", "returns", "doc"],
                    ["args", "errors"])
        _check_name(path, f"{where}.name", raw["name"])
        where = f"ops.{raw['name']}"
        if not MODULE_RE.match(raw["module"]):
            raise SchemaError(path, f"{where}.module", "must be an Elixir module name")
        _check_name(path, f"{where}.function", raw["function"])
        if not isinstance(raw["handler"], str) or not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", raw["handler"]):
            raise SchemaError(path, f"{where}.handler", f"{raw['handler']!r} is not a C identifier")
        for j, a in enumerate(raw.get("args", [])):
            _check_keys(path, f"{where}.args[{j}]", a, ["name", "spec", "doc"], [])
        if raw.get("errors", "indexed") != "indexed":
            raise SchemaError(path, f"{where}.errors", "the only value is 'indexed'")
        schema.ops.append(Op(raw, path))
    for op in schema.ops:
        if op.module not in schema.module_docs:
            raise SchemaError(path, f"ops.{op.name}.module", f"module {op.module} has no entry in 'modules'")


def _load_coverage(schema, path):
    data = _load_yaml(path)
    _check_keys(path, "", data, ["exclusions"], [])
    for i, e in enumerate(data["exclusions"] or []):
        _check_keys(path, f"exclusions[{i}]", e, ["const", "why"], [])
        _check_const(path, f"exclusions[{i}].const", e["const"])
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


def load(root):
    """Load and validate the schema under `root` (the schema/ directory)."""
    schema = Schema()
    for fn in sorted(os.listdir(root)):
        if fn.startswith("enums") and fn.endswith(".yaml"):
            p = os.path.join(root, fn)
            _load_enums(schema, p)
            schema.files.append(p)
    for sub, loader in (("objects", _load_object), ("expressions", _load_expr)):
        d = os.path.join(root, sub)
        for fn in sorted(os.listdir(d)):
            if fn.endswith(".yaml"):
                p = os.path.join(d, fn)
                loader(schema, p)
                schema.files.append(p)
    ops = os.path.join(root, "ops.yaml")
    _load_ops(schema, ops)
    schema.files.append(ops)
    cov = os.path.join(root, "coverage.yaml")
    if os.path.exists(cov):
        _load_coverage(schema, cov)
        schema.files.append(cov)
    _add_handle_ops(schema)
    _resolve(schema)
    return schema
