"""C enum tables: `struct nfp_enum` per schema enum, entries sorted by name."""

from .c_common import INCLUDES, banner, comment, cstr


def c_name(enum_name):
    return f"nfp_enum_{enum_name}"


def emit(schema, root):
    out = [banner(schema, "Enum tables: atom <-> integer for every schema enum.", root), INCLUDES]
    for name in sorted(schema.enums):
        e = schema.enums[name]
        out.append(f"/* {e.name}: {comment(e.doc.splitlines()[0])} */")
        out.append(f"static const struct nfp_enum_entry {c_name(name)}_entries[] = {{")
        for ent in sorted(e.entries, key=lambda x: x["name"]):
            value = ent["const"] if "const" in ent else str(ent["value"])
            out.append(f"\t{{ {cstr(ent['name'])}, {value} }},")
        out.append("};\n")
        out.append(f"const struct nfp_enum {c_name(name)} = {{")
        out.append(f"\t.name = {cstr(name)},")
        out.append(f"\t.flags = {'true' if e.kind == 'flags' else 'false'},")
        out.append(f"\t.n = {len(e.entries)},")
        out.append(f"\t.entries = {c_name(name)}_entries,")
        out.append("};\n")
    out.append("const struct nfp_enum *const nfp_enums[] = {")
    for name in sorted(schema.enums):
        out.append(f"\t&{c_name(name)},")
    out.append("};\n")
    out.append(f"const size_t nfp_nenums = {len(schema.enums)};")
    return "\n".join(out) + "\n"
