"""The Elixir tables of nft's language: elixir_stubs/nft_tables.ex.

One module, `NFTables.Port.Nft.Tables`, holding schema/nft/ as Elixir data
with lookup functions. The translator (lib/nftables_port/nft/) walks these
tables and names no header field, datatype or key of its own.
"""

import re

from .elixir import HEADER, _heredoc

# Keys whose values become atoms (the rest stay strings or numbers).
ATOM_VALUES = {"base", "byteorder", "format", "key", "dir", "checksum_type", "icmp_dep", "meta_key"}


def _ex_key(k):
    return k.replace("-", "_")


def _atom(s):
    return ":" + s if re.fullmatch(r"[a-z_][a-zA-Z0-9_]*[?!]?", s) else ':"' + s + '"'


def _lit(v, key=None, indent=0):
    """An Elixir literal for a YAML value."""
    if v is None:
        return "nil"
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, str):
        if key in ATOM_VALUES:
            return _atom(v)
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"').replace("#{", "\\#{") + '"'
    if isinstance(v, list):
        if key in ("upper", "filter", "flags", "subtypes", "family", "hook_families", "order", "pseudohdr"):
            return "[" + ", ".join(_lit(x) for x in v) + "]"
        if not v:
            return "[]"
        pad = " " * (indent + 2)
        return "[\n" + ",\n".join(pad + _lit(x, None, indent + 2) for x in v) + "\n" + " " * indent + "]"
    if isinstance(v, dict):
        items = [f"{_ex_key(k)}: {_lit(x, _ex_key(k), indent + 2)}" for k, x in v.items() if k != "doc"]
        one = "%{" + ", ".join(items) + "}"
        if len(one) + indent < 96 and "\n" not in one:
            return one
        pad = " " * (indent + 2)
        return "%{\n" + ",\n".join(pad + i for i in items) + "\n" + " " * indent + "}"
    raise TypeError(f"no Elixir literal for {v!r}")


def _attr(name, value):
    return f"  @{name} {_lit(value, None, 2)}\n"


def _groups(name, groups):
    """A map of named groups (keys.yaml, exthdrs.yaml): string keys."""
    items = [f'    "{g}" => {_lit(v, None, 4)}' for g, v in groups.items()]
    return f"  @{name} %{{\n" + ",\n".join(items) + "\n  }\n"


MODULEDOC = """\
nft's language as data: datatypes, protocol header templates, extension
headers and the keys of meta, ct, rt, fib, socket, osf, ipsec, numgen and
hash, as nftables 1.0.6 has them. Generated from schema/nft/; the
translator in `NFTables.Port.Nft` walks these tables.

Every entry is a map with the keys of its YAML entry (dashes become
underscores); `docs/reference.md` lists them all.
"""


def emit(tables):
    if not tables.files:
        return None
    out = [HEADER.format(src="nft/*.yaml"), "defmodule NFTables.Port.Nft.Tables do\n",
           f"  @moduledoc {_heredoc(MODULEDOC, 2)}\n\n"]
    out.append(_attr("datatypes", tables.datatypes))
    out.append(_attr("protocols", tables.protocols))
    out.append(_groups("exthdrs", tables.exthdrs))
    out.append(_groups("keys", tables.keys))
    out.append('''
  @datatype_by_name Map.new(@datatypes, &{&1.name, &1})
  @datatype_by_id @datatypes |> Enum.reject(&Map.get(&1, :alias)) |> Enum.reverse() |> Map.new(&{&1.id, &1})
  @protocol_by_name Map.new(@protocols, &{&1.name, &1})
  @key_by_name Map.new(@keys, fn {group, ks} -> {group, Map.new(ks, &{&1.name, &1})} end)
  @key_by_atom Map.new(@keys, fn {group, ks} ->
                 {group, ks |> Enum.reverse() |> Enum.filter(&Map.get(&1, :key)) |> Map.new(&{&1.key, &1})}
               end)

  @doc "Every datatype, in the schema's order."
  @spec datatypes() :: [map()]
  def datatypes, do: @datatypes

  @doc "The datatype named `name` (nft's name, e.g. `\\"ipv4_addr\\"`), or nil."
  @spec datatype(String.t()) :: map() | nil
  def datatype(name), do: Map.get(@datatype_by_name, name)

  @doc "The datatype with nft's type id `id` (the first one listed), or nil."
  @spec datatype_by_id(non_neg_integer()) :: map() | nil
  def datatype_by_id(id), do: Map.get(@datatype_by_id, id)

  @doc "Every protocol header template, in the schema's order."
  @spec protocols() :: [map()]
  def protocols, do: @protocols

  @doc "The protocol named `name` (e.g. `\\"tcp\\"`), or nil."
  @spec protocol(String.t()) :: map() | nil
  def protocol(name), do: Map.get(@protocol_by_name, name)

  @doc "The field `field` of protocol `proto`, or nil."
  @spec field(String.t(), String.t()) :: map() | nil
  def field(proto, field) do
    case protocol(proto) do
      nil -> nil
      p -> Enum.find(Map.get(p, :fields, []), &(&1.name == field))
    end
  end

  @doc "A header's length in bits: its `length`, else where its last field ends."
  @spec header_bits(map()) :: non_neg_integer()
  def header_bits(%{} = p) do
    Map.get(p, :length) || Enum.reduce(Map.get(p, :fields, []), 0, &max(&1.offset + &1.len, &2))
  end

  @doc "The extension headers of a group (`\\"ipv6\\"`, `\\"tcp-options\\"`, ...)."
  @spec exthdrs(String.t()) :: [map()]
  def exthdrs(group), do: Map.get(@exthdrs, group, [])

  @doc "The keys of an expression family (`\\"meta\\"`, `\\"ct\\"`, ...)."
  @spec keys(String.t()) :: [map()]
  def keys(group), do: Map.get(@keys, group, [])

  @doc "The key of `group` that nft names `name`, or nil."
  @spec key(String.t(), String.t()) :: map() | nil
  def key(group, name), do: @key_by_name |> Map.get(group, %{}) |> Map.get(name)

  @doc "The key of `group` whose low-level atom is `atom`, or nil."
  @spec key_by_atom(String.t(), atom()) :: map() | nil
  def key_by_atom(group, atom), do: @key_by_atom |> Map.get(group, %{}) |> Map.get(atom)
end
''')
    return "".join(out)


def emit_docs(tables):
    """The reference section of nft's language tables."""
    if not tables.files:
        return ""
    out = ["\n## nft's language (schema/nft/)\n\n",
           "The tables the translator between nft's vocabulary and the low-level messages walks.\n\n",
           "### Datatypes\n\n| name | id | size (bits) | byte order | format | symbols |\n",
           "| --- | --- | --- | --- | --- | --- |\n"]
    for d in tables.datatypes:
        syms = ", ".join(f"`{s['name']}`" for s in d.get("symbols") or [])
        out.append(f"| `{d['name']}` | {d['id']} | {d.get('size', 0)} | {d.get('byteorder', 'invalid')} "
                   f"| {d['format']} | {syms} |\n")
    out.append("\n### Protocol headers\n\n")
    for p in tables.protocols:
        out.append(f"#### {p['name']}\n\n{p.get('desc', '')}")
        if p.get("base") not in (None, "none"):
            out.append(f" Base `{p['base']}`")
            if p.get("id") is not None:
                out.append(f", id {p['id']}")
            out.append(".")
        out.append("\n\n")
        if p.get("fields"):
            out.append("| field | offset | length | type |\n| --- | --- | --- | --- |\n")
            for f in p["fields"]:
                out.append(f"| `{f['name']}` | {f['offset']} | {f['len']} | `{f['type']}` |\n")
            out.append("\n")
    for group, entries in tables.exthdrs.items():
        out.append(f"### Extension headers: {group}\n\n")
        for e in entries:
            fields = ", ".join(f"`{f['name']}`" for f in e.get("fields") or [])
            out.append(f"- `{e['name']}`: {fields}\n")
        out.append("\n")
    for group, entries in tables.keys.items():
        out.append(f"### Keys: {group}\n\n| key | low-level | type |\n| --- | --- | --- |\n")
        for k in entries:
            low = f"`:{k['key']}`" if isinstance(k.get("key"), str) else str(k.get("key", ""))
            out.append(f"| `{k['name']}` | {low} | `{k.get('type', '')}` |\n")
        out.append("\n")
    return "".join(out)
