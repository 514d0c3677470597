"""C descriptor tables of objects and expressions.

Each attribute becomes one `struct nfp_attr` row; rows are sorted by name so
that the engine finds an attribute by binary search.
"""

from .c_common import INCLUDES, banner, comment, cstr
from .c_enums import c_name as enum_c_name
from . import nla as nla_mod

FLAG_C = {"key": "NFP_A_KEY", "readonly": "NFP_A_READONLY", "handle": "NFP_A_HANDLE",
          "transient": "NFP_A_TRANSIENT", "auto-id": "NFP_A_AUTO_ID",
          "omit-zero": "NFP_A_OMIT_ZERO", "gives-buffer": "NFP_A_GIVE_BUFFER",
          "unset-frees": "NFP_A_UNSET_FREES", "set-once": "NFP_A_SET_ONCE"}
VERB_C = {"add": "NFP_VERB_ADD", "create": "NFP_VERB_CREATE", "insert": "NFP_VERB_INSERT",
          "replace": "NFP_VERB_REPLACE", "delete": "NFP_VERB_DELETE",
          "destroy": "NFP_VERB_DESTROY", "flush": "NFP_VERB_FLUSH"}


def obj_c_name(name):
    return f"nfp_obj_{name}"


def expr_c_name(name):
    return f"nfp_expr_{name}"


def _sel(prefix, owner, a, schema, out):
    """The enum selector of attribute `a`, emitted before its table."""
    sel_attr = owner.attr(a.enum_by["attr"])
    cases = sorted(a.enum_by["cases"].items())
    consts = []
    for case, _ in cases:
        ent = next(e for e in sel_attr.enum.entries if e["name"] == case)
        consts.append(ent.get("const", str(ent.get("value"))))
    n = f"{prefix}_{a.name}_sel"
    out.append(f"static const int64_t {n}_values[] = {{ {', '.join(consts)} }};")
    out.append(f"static const struct nfp_enum *const {n}_enums[] = {{ "
               + ", ".join(f"&{enum_c_name(en)}" for _, en in cases) + " };")
    out.append(f"static const struct nfp_enum_sel {n} = {{")
    out.append(f"\t.attr = {sel_attr.const}, .n = {len(cases)},")
    out.append(f"\t.values = {n}_values, .enums = {n}_enums,")
    out.append("};\n")
    return f"&{n}"


def _attr_table(prefix, owner, schema, out):
    sels = {}
    for a in owner.attrs:
        if a.enum_by is not None:
            sels[a.name] = _sel(prefix, owner, a, schema, out)
    extra = {}
    for a in owner.attrs:
        fields = []
        if a.exclusive_with:
            n = f"{prefix}_{a.name}_excl"
            consts = ", ".join(owner.attr(x).const for x in sorted(a.exclusive_with))
            out.append(f"static const uint16_t {n}[] = {{ {consts} }};")
            fields += [f".excl = {n}", f".nexcl = {len(a.exclusive_with)}"]
        if a.requires is not None:
            sel = owner.attr(a.requires["attr"])
            vals = []
            for v in a.requires["values"]:
                ent = next(e for e in sel.enum.entries if e["name"] == v)
                vals.append(ent.get("const", str(ent.get("value"))))
            n = f"{prefix}_{a.name}_requires"
            out.append(f"static const int64_t {n}_values[] = {{ {', '.join(vals)} }};")
            out.append(f"static const struct nfp_requires {n} = {{")
            out.append(f"\t.attr = {sel.const}, .n = {len(vals)}, .values = {n}_values,")
            out.append("};")
            fields.append(f".requires = &{n}")
        if fields:
            extra[a.name] = fields
    if extra:
        out.append("")
    out.append(f"static const struct nfp_attr {prefix}_attrs[] = {{")
    for a in sorted(owner.attrs, key=lambda x: x.name):
        flags = " | ".join([FLAG_C[f] for f in a.flags]
                           + (["NFP_A_EXACT_LEN"] if a.exact_len else [])) or "0"
        fields = [f".name = {cstr(a.name)}", f".id = {a.const}", f".wire = {a.type.c_wire}",
                  f".flags = {flags}"]
        if a.max_len is not None:
            fields.append(f".max_len = {a.max_len}")
        if a.enum is not None:
            fields.append(f".enm = &{enum_c_name(a.enum.name)}")
        if a.name in sels:
            fields.append(f".sel = {sels[a.name]}")
        if a.type.name == "objects":
            fields.append(f".item = &{obj_c_name(a.elem_object)}")
        nla, nla_in = nla_mod.resolve(a)
        if nla:
            fields.append(f".nla = {nla}")
        if nla_in:
            fields.append(f".nla_in = {nla_in}")
        fields += extra.get(a.name, [])
        out.append(f"\t{{ /* {comment(a.doc.splitlines()[0][:70])} */")
        out.append("\t\t" + ",\n\t\t".join(fields) + ",")
        out.append("\t},")
    out.append("};\n")


def _flush(o, schema, out):
    fl = o.flush
    srcs, dsts = [], []
    for dst, src in fl["copy"].items():
        srcs.append(o.attr(src).const)
        tgt = next(x.attr(dst) for x in schema.objects
                   if x.backend == fl["backend"] and x.attr(dst))
        dsts.append(tgt.const)
    n = f"{obj_c_name(o.name)}_flush"
    out.append(f"static const uint16_t {n}_src[] = {{ {', '.join(srcs)} }};")
    out.append(f"static const uint16_t {n}_dst[] = {{ {', '.join(dsts)} }};")
    out.append(f"static const struct nfp_flush {n} = {{")
    out.append(f"\t.msg = {fl['msg']}, .backend = &nfp_backend_{fl['backend']}, .n = {len(srcs)},")
    out.append(f"\t.src = {n}_src, .dst = {n}_dst,")
    out.append("};\n")
    return f"&{n}"


def emit(schema, root):
    out = [banner(schema, "Descriptor tables of every object and expression.", root), INCLUDES]
    for o in sorted(schema.objects, key=lambda x: x.name):
        prefix = obj_c_name(o.name)
        out.append(f"/* --- object {o.name}: {comment(o.doc.splitlines()[0])} */\n")
        _attr_table(prefix, o, schema, out)
        flush = _flush(o, schema, out) if o.flush else "NULL"
        if o.list_per:
            parent = schema.object(o.list_per["object"])
            pairs = list(o.list_per["copy"].items())
            n = f"{prefix}_list_per"
            out.append(f"static const uint16_t {n}_src[] = {{ {', '.join(parent.attr(s_).const for _, s_ in pairs)} }};")
            out.append(f"static const uint16_t {n}_dst[] = {{ {', '.join(o.attr(d).const for d, _ in pairs)} }};")
            out.append(f"static const struct nfp_list_per {n} = {{")
            out.append(f"\t.obj = &{obj_c_name(parent.name)}, .n = {len(pairs)},")
            out.append(f"\t.src = {n}_src, .dst = {n}_dst,")
            out.append("};\n")
        if o.list_filter:
            consts = ", ".join(o.attr(f).const for f in o.list_filter)
            out.append(f"static const uint16_t {prefix}_list_filter[] = {{ {consts} }};\n")
        verbs = " | ".join(f"(1u << {VERB_C[v]})" for v in o.verbs) or "0"
        m = o.messages
        out.append(f"const struct nfp_obj {prefix} = {{")
        out.append(f"\t.name = {cstr(o.name)},")
        out.append(f"\t.backend = &nfp_backend_{o.backend},")
        out.append(f"\t.nattrs = {len(o.attrs)},")
        out.append(f"\t.attrs = {prefix}_attrs,")
        for k in ("new", "get", "del", "destroy"):
            out.append(f"\t.msg_{k} = {m.get(k, 'NFP_MSG_NONE')},")
        out.append(f"\t.verbs = {verbs},")
        fa = o.attr(o.family_attr).const if o.family_attr else "NFP_NO_ATTR"
        ha = o.attr(o.handle_attr).const if o.handle_attr else "NFP_NO_ATTR"
        out.append(f"\t.family_attr = {fa},")
        out.append(f"\t.handle_attr = {ha},")
        out.append(f"\t.flush = {flush},")
        if o.list_filter:
            out.append(f"\t.nlist_filter = {len(o.list_filter)},")
            out.append(f"\t.list_filter = {prefix}_list_filter,")
        if o.list_via:
            out.append(f"\t.list_via = &{obj_c_name(o.list_via)},")
        if o.list_per:
            out.append(f"\t.list_per = &{prefix}_list_per,")
        if o.fixed:
            out.append(f"\t.fixed_attr = {o.fixed['const']},")
            out.append(f"\t.fixed_value = {o.fixed['value']},")
        else:
            out.append("\t.fixed_attr = NFP_NO_ATTR,")
        out.append(f"\t.dump_order = {o.dump_order},")
        out.append(f"\t.handle_api = {'true' if o.module else 'false'},")
        out.append("};\n")
    out.append("const struct nfp_obj *const nfp_objects[] = {")
    for o in sorted(schema.objects, key=lambda x: x.name):
        out.append(f"\t&{obj_c_name(o.name)},")
    out.append("};\n")
    out.append(f"const size_t nfp_nobjects = {len(schema.objects)};\n")

    for e in sorted(schema.exprs, key=lambda x: x.name):
        prefix = expr_c_name(e.name)
        out.append(f"/* --- expression {e.name}: {comment(e.doc.splitlines()[0])} */\n")
        _attr_table(prefix, e, schema, out)
        out.append(f"const struct nfp_expr {prefix} = {{")
        out.append(f"\t.name = {cstr(e.name)},")
        out.append(f"\t.nattrs = {len(e.attrs)},")
        out.append(f"\t.attrs = {prefix}_attrs,")
        out.append("};\n")
    out.append("const struct nfp_expr *const nfp_exprs[] = {")
    for e in sorted(schema.exprs, key=lambda x: x.name):
        out.append(f"\t&{expr_c_name(e.name)},")
    out.append("};\n")
    out.append(f"const size_t nfp_nexprs = {len(schema.exprs)};")
    return "\n".join(out) + "\n"
