"""Loads and checks schema/nft/: the tables of nft's own language.

These files describe what the translator between nft's vocabulary
(libnftables JSON, nft syntax) and the low-level messages needs to know
about the packet and the kernel's keys, the way nftables 1.0.6 has it:

    datatypes.yaml   datatypes (size, byte order, how values read and
                     print, symbol tables)
    protocols.yaml   protocol header templates (fields with offset,
                     length, datatype and byte order) and how the layers
                     link (ether type, IP protocol numbers)
    exthdrs.yaml     IPv6 extension headers, TCP and IP options, SCTP
                     chunks
    keys.yaml        the keys of meta, ct, rt, fib, socket, osf, ipsec,
                     numgen and hash with their datatypes

Every key of every entry is checked: an unknown key, a missing required
one, a datatype that does not exist or a duplicate name is an error that
names the file and the entry.
"""

import os

import yaml

from .errors import SchemaError

FILES = ("datatypes.yaml", "protocols.yaml", "exthdrs.yaml", "keys.yaml")

DATATYPE_KEYS = {"name": str, "id": int, "desc": str, "size": int, "byteorder": str,
                 "basetype": str, "format": str, "symbols": list, "doc": str,
                 "subtypes": list, "flags": list, "symbol-base": str, "basefmt": str,
                 "nft-name": str, "alias": bool, "prefix": bool}
DATATYPE_REQUIRED = ("name", "id", "format")
BYTEORDERS = ("big", "host", "invalid")

FIELD_KEYS = {"name": str, "offset": int, "len": int, "type": str, "byteorder": str,
              "icmp-dep": str, "meta-key": str, "doc": str, "index": int,
              "text-name": str}
FIELD_REQUIRED = ("name", "offset", "len", "type")

PROTOCOL_KEYS = {"name": str, "desc": str, "base": (str, type(None)), "id": (int, type(None)),
                 "protocol-key": (str, type(None)), "checksum-key": (str, type(None)),
                 "checksum-type": str, "length": int, "upper": list, "fields": list,
                 "filter": list, "doc": str, "pseudo": bool, "ids": (dict, list),
                 "desc-id": int, "hook-families": list, "links": (list, dict), "order": list,
                 "pseudohdr": list}
PROTOCOL_REQUIRED = ("name",)
BASES = ("ll", "nh", "th", "none", None)

KEY_KEYS = {"name": str, "key": (str, int, type(None)), "type": str, "size": int,
            "byteorder": str, "unqualified": bool, "dir": str, "doc": str,
            "family": (str, list), "base": str, "flags": list, "value": int,
            "kind": str, "family-from-context": bool, "flag": str, "ttl": (str, int),
            "parse-unqualified": bool, "aliases": list, "level": (int, bool, str)}
KEY_REQUIRED = ("name",)

EXTHDR_KEYS = {"name": str, "type": (int, type(None)), "kind": (int, type(None)),
               "length": (int, type(None)), "fields": list, "doc": str, "desc": str,
               "id": (int, type(None)), "routing-type": int, "block": int}


class NftTables:
    """What the files say, checked; the emitters read only this."""

    def __init__(self):
        self.files = []
        self.datatypes = []
        self.protocols = []
        self.exthdrs = {}
        self.keys = {}

    def datatype(self, name):
        return next((d for d in self.datatypes if d["name"] == name), None)


def _check_entry(path, where, entry, keys, required):
    if not isinstance(entry, dict):
        raise SchemaError(path, where, f"expected a mapping, got {type(entry).__name__}")
    for k, v in entry.items():
        if k not in keys:
            raise SchemaError(path, f"{where}.{k}", f"unknown key (known: {', '.join(sorted(keys))})")
        if not isinstance(v, keys[k]):
            raise SchemaError(path, f"{where}.{k}", f"wrong type {type(v).__name__}")
    for k in required:
        if k not in entry:
            raise SchemaError(path, where, f"missing required key {k!r}")


def _load_file(path):
    with open(path, encoding="utf-8") as f:
        raw = yaml.safe_load(f)
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise SchemaError(path, "", "expected a mapping at the top level")
    return raw


def _fields(path, where, fields):
    seen = set()
    for i, f in enumerate(fields):
        w = f"{where}.fields[{i}]"
        _check_entry(path, w, f, FIELD_KEYS, FIELD_REQUIRED)
        if f["name"] in seen:
            raise SchemaError(path, w, f"duplicate field {f['name']!r}")
        seen.add(f["name"])
        if f.get("byteorder", "big") not in BYTEORDERS:
            raise SchemaError(path, f"{w}.byteorder", f"one of {BYTEORDERS}")


def _load_datatypes(t, path, raw):
    _only(path, raw, ("datatypes",))
    names = set()
    for i, d in enumerate(raw.get("datatypes") or []):
        where = f"datatypes[{i}]"
        _check_entry(path, where, d, DATATYPE_KEYS, DATATYPE_REQUIRED)
        if d["name"] in names:
            raise SchemaError(path, where, f"duplicate datatype {d['name']!r}")
        names.add(d["name"])
        if d.get("byteorder", "invalid") not in BYTEORDERS:
            raise SchemaError(path, f"{where}.byteorder", f"one of {BYTEORDERS}")
        for j, s in enumerate(d.get("symbols") or []):
            if not isinstance(s, dict) or set(s) - {"name", "value", "doc"} or \
                    not isinstance(s.get("name"), str) or not isinstance(s.get("value"), int):
                raise SchemaError(path, f"{where}.symbols[{j}]", "expected {name: string, value: integer}")
        t.datatypes.append(d)


def _load_protocols(t, path, raw):
    _only(path, raw, ("protocols",))
    names = set()
    for i, p in enumerate(raw.get("protocols") or []):
        where = f"protocols[{i}]"
        _check_entry(path, where, p, PROTOCOL_KEYS, PROTOCOL_REQUIRED)
        if p["name"] in names:
            raise SchemaError(path, where, f"duplicate protocol {p['name']!r}")
        names.add(p["name"])
        if p.get("base") not in BASES:
            raise SchemaError(path, f"{where}.base", f"one of ll, nh, th, none")
        _fields(path, where, p.get("fields") or [])
        t.protocols.append(p)


def _load_exthdrs(t, path, raw):
    _only(path, raw, ("exthdrs",))
    for group, entries in (raw.get("exthdrs") or {}).items():
        if not isinstance(entries, list):
            raise SchemaError(path, f"exthdrs.{group}", "expected a list")
        names = set()
        for i, e in enumerate(entries):
            where = f"exthdrs.{group}[{i}]"
            _check_entry(path, where, e, EXTHDR_KEYS, ("name",))
            if e["name"] in names:
                raise SchemaError(path, where, f"duplicate {e['name']!r}")
            names.add(e["name"])
            _fields(path, where, e.get("fields") or [])
        t.exthdrs[group] = entries


def _load_keys(t, path, raw):
    for group, entries in raw.items():
        if not isinstance(entries, list):
            raise SchemaError(path, group, "expected a list")
        names = set()
        for i, k in enumerate(entries):
            where = f"{group}[{i}]"
            _check_entry(path, where, k, KEY_KEYS, KEY_REQUIRED)
            ident = (k["name"], str(k.get("family")), k.get("kind"))
            if ident in names:
                raise SchemaError(path, where, f"duplicate key {k['name']!r}")
            names.add(ident)
        t.keys[group] = entries


def _only(path, raw, allowed):
    for k in raw:
        if k not in allowed:
            raise SchemaError(path, k, f"unknown top-level key (known: {', '.join(allowed)})")


def _resolve(t):
    """Every datatype a field or key names must exist."""
    known = {d["name"] for d in t.datatypes}

    def check(path, where, name):
        if name is not None and known and name not in known:
            raise SchemaError(path, where, f"unknown datatype {name!r}")

    base = os.path.dirname(t.files[0]) if t.files else ""
    for i, p in enumerate(t.protocols):
        for j, f in enumerate(p.get("fields") or []):
            check(os.path.join(base, "protocols.yaml"), f"protocols[{i}].fields[{j}].type", f["type"])
    for group, entries in t.exthdrs.items():
        for i, e in enumerate(entries):
            for j, f in enumerate(e.get("fields") or []):
                check(os.path.join(base, "exthdrs.yaml"), f"exthdrs.{group}[{i}].fields[{j}].type", f["type"])
    for group, entries in t.keys.items():
        for i, k in enumerate(entries):
            check(os.path.join(base, "keys.yaml"), f"{group}[{i}].type", k.get("type"))


def load(schema_root):
    """Loads schema/nft/ below `schema_root`; an absent directory is an
    empty table set."""
    t = NftTables()
    d = os.path.join(schema_root, "nft")
    if not os.path.isdir(d):
        return t
    for fn in sorted(os.listdir(d)):
        if fn.endswith(".yaml") and fn not in FILES:
            raise SchemaError(os.path.join(d, fn), "", f"unknown file (known: {', '.join(FILES)})")
    loaders = {"datatypes.yaml": _load_datatypes, "protocols.yaml": _load_protocols,
               "exthdrs.yaml": _load_exthdrs, "keys.yaml": _load_keys}
    for fn in FILES:
        p = os.path.join(d, fn)
        if os.path.exists(p):
            t.files.append(p)
            loaders[fn](t, p, _load_file(p))
    _resolve(t)
    return t
