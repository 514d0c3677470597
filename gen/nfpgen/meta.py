"""The meta-schema: what every key of every kind of schema file means.

gen/meta/<kind>.yaml is a JSON Schema (draft 2020-12) of one kind of
schema file, documenting every key; gen/meta/common.yaml holds the
definitions the kinds share. Validation (Debian's python3-jsonschema)
reports the first problem as a SchemaError naming the file and the key,
with the message the meta-schema gives (x-error, x-unknown-key).

A new kind of schema file is a new gen/meta/<kind>.yaml and one row of
schema.FILE_KINDS.
"""

import os

import jsonschema
import yaml

from .errors import SchemaError

META_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "meta")

_cache = {}


def _load(name):
    with open(os.path.join(META_DIR, name + ".yaml"), encoding="utf-8") as f:
        return yaml.safe_load(f)


def meta(kind):
    """The meta-schema of `kind`, with the shared definitions in its $defs."""
    if kind not in _cache:
        schema = _load(kind)
        defs = dict(_load("common")["$defs"])
        defs.update(schema.get("$defs", {}))
        schema["$defs"] = defs
        schema.setdefault("$schema", "https://json-schema.org/draft/2020-12/schema")
        jsonschema.Draft202012Validator.check_schema(schema)
        _cache[kind] = jsonschema.Draft202012Validator(schema)
    return _cache[kind]


def enum_of(kind, *path):
    """The values of an enum of the meta-schema: enum_of("common", "backend")."""
    node = _load(kind)["$defs"] if kind == "common" else _load(kind)
    for p in path:
        node = node[p]
    return tuple(node["enum"])


# Lists whose items are always named by index (an enum's entries, the
# coverage exclusions, an op's args), as the schema's errors always named
# them.
INDEX_LISTS = ("entries", "exclusions", "args")


def _key(error, data):
    """The key path of an error, as the schema's errors name keys: a list
    item by its name (attributes.name.type), but by its index where the
    item's own keys are wrong (attributes[3].default, attributes[3].name:
    the name may be what is wrong); items of a list of scalars by the
    list (attributes.name.flags)."""
    path = list(error.absolute_path)
    node, nodes = data, []
    for p in path:
        nodes.append(node)
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            node = None
    nodes.append(node)
    # The item whose own keys are wrong: the error is on it, or on its
    # doc or name.
    own = None
    if path and isinstance(path[-1], int):
        own = len(path) - 1
    elif len(path) >= 2 and path[-1] in ("doc", "name") and isinstance(path[-2], int):
        own = len(path) - 2
    elif error.validator in ("additionalProperties", "required") and path and isinstance(path[-1], int):
        own = len(path) - 1
    parts = []
    for i, p in enumerate(path):
        if isinstance(p, int):
            item = nodes[i + 1]
            if not isinstance(item, dict):
                continue                      # an item of a list of scalars
            name = item.get("name")
            by_index = (i == own or not isinstance(name, str)
                        or (i > 0 and path[i - 1] in INDEX_LISTS))
            parts.append(f"[{p}]" if by_index else f".{name}")
        else:
            parts.append(f".{p}")
    return "".join(parts).lstrip(".")


def _position(error, data):
    """Where an error is in the file, for reporting the first one."""
    pos, node = [], data
    for p in error.absolute_path:
        if isinstance(node, dict):
            keys = list(node)
            pos.append(keys.index(p) if p in keys else len(keys))
        else:
            pos.append(p if isinstance(p, int) else 0)
        try:
            node = node[p]
        except (KeyError, IndexError, TypeError):
            node = None
    # An unknown key is reported before a missing one, as before.
    rank = {"additionalProperties": 0, "required": 1}.get(error.validator, 2)
    return (pos, rank)


def _fmt(template, value, schema):
    known = ", ".join(str(v) for v in schema.get("enum", []))
    return template.format(value=value, known=known)


def validate(kind, data, path):
    """Raises SchemaError for the first problem of `data` (a parsed file of
    `kind`), naming `path` and the key."""
    for error in sorted(meta(kind).iter_errors(data), key=lambda e: _position(e, data)):
        key = _key(error, data)
        schema = error.schema
        if error.validator == "additionalProperties":
            allowed = sorted(schema.get("properties", {}))
            extra = [k for k in error.instance if k not in schema.get("properties", {})]
            extra_key = f"{key}.{extra[0]}" if key else str(extra[0])
            if "x-unknown-key" in schema:
                msg = schema["x-unknown-key"].format(allowed=", ".join(allowed))
            elif isinstance(schema.get("additionalProperties"), dict):
                # A map whose values are refused: the value's own message.
                continue
            else:
                msg = f"unknown key (allowed: {', '.join(allowed)})"
            raise SchemaError(path, extra_key, msg)
        if error.validator == "required":
            missing = next(k for k in error.validator_value if k not in error.instance)
            raise SchemaError(path, f"{key}.{missing}" if key else missing, "missing required key")
        if "propertyNames" in error.absolute_schema_path:
            # The refused name itself is the instance.
            key = f"{key}.{error.instance}" if key else str(error.instance)
        if "x-error" in schema:
            raise SchemaError(path, key or "(file)", _fmt(schema["x-error"], error.instance, schema))
        raise SchemaError(path, key or "(file)", error.message)
