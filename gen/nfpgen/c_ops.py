"""The op dispatch table (sorted by op name) and the shared header."""

from .c_common import banner, cstr
from .c_enums import c_name as enum_c_name
from .c_objects import obj_c_name, expr_c_name


def emit(schema, root):
    out = [banner(schema, "Op dispatch table: op atom -> handler, arity, object.", root),
           '#include <stddef.h>\n\n#include "desc.h"\n#include "nfp_tables.h"\n#include "ops.h"\n']
    out.append("const struct nfp_op nfp_ops[] = {")
    for op in sorted(schema.ops, key=lambda x: x.name):
        obj = f"&{obj_c_name(op.object)}" if op.object else "NULL"
        if op.test_only:
            out.append("#ifdef NFP_TEST_BUILD\t/* the test build of the port only */")
        indexed = "true" if op.errors == "indexed" else "false"
        out.append(f"\t{{ {cstr(op.name)}, {op.handler}, {len(op.args)}, {obj}, {indexed} }},")
        if op.test_only:
            out.append("#endif")
    out.append("};\n")
    n_all = len(schema.ops)
    n_port = len([op for op in schema.ops if not op.test_only])
    if n_all != n_port:
        out.append(f"#ifdef NFP_TEST_BUILD\nconst size_t nfp_nops = {n_all};\n#else")
    out.append(f"const size_t nfp_nops = {n_port};")
    if n_all != n_port:
        out.append("#endif")
    return "\n".join(out) + "\n"


def emit_header(schema, root):
    out = [banner(schema, "Declarations of the generated tables.", root)]
    out.append("#ifndef NFP_TABLES_H\n#define NFP_TABLES_H\n")
    out.append('#include "desc.h"\n')
    for name in sorted(schema.enums):
        out.append(f"extern const struct nfp_enum {enum_c_name(name)};")
    for o in sorted(schema.objects, key=lambda x: x.name):
        out.append(f"extern const struct nfp_obj {obj_c_name(o.name)};")
    for e in sorted(schema.exprs, key=lambda x: x.name):
        out.append(f"extern const struct nfp_expr {expr_c_name(e.name)};")
    out.append("\n#endif /* NFP_TABLES_H */")
    return "\n".join(out) + "\n"
