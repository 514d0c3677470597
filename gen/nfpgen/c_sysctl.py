"""The sysctl allow-list (schema/sysctl.yaml) as a C table for src/ops_sysctl.c.

Each entry is split at its wildcard component (`*`, an interface name):
the dotted name before and after it, and the path below /proc/sys/net
before and after it. Entries without a wildcard have only a prefix.
"""

from .c_common import banner, cstr


def split(name):
    """("net.ipv4.conf.", ".rp_filter", "ipv4/conf/", "/rp_filter") for a
    wildcard entry; (name, None, path, None) otherwise."""
    parts = name.split(".")
    if "*" not in parts:
        return name, None, "/".join(parts[1:]), None
    i = parts.index("*")
    before, after = parts[:i], parts[i + 1:]
    return (".".join(before) + ".", "." + ".".join(after),
            "/".join(before[1:]) + "/", "/" + "/".join(after))


def emit(schema, root):
    out = [banner(schema, "The sysctl allow-list: name, path below /proc/sys/net, type, range.", root),
           '#include <stddef.h>\n#include <stdint.h>\n\n#include "sysctl.h"\n']
    out.append("const struct nfp_sysctl nfp_sysctls[] = {")
    for s in schema.sysctls:
        name_pre, name_suf, path_pre, path_suf = split(s.name)
        lo, hi = (0, 1) if s.type == "bool" else s.range
        kind = "NFP_SYSCTL_BOOL" if s.type == "bool" else "NFP_SYSCTL_INT"
        suf = cstr(name_suf) if name_suf else "NULL"
        psuf = cstr(path_suf) if path_suf else "NULL"
        out.append(f"\t{{ {cstr(s.name)}, {cstr(name_pre)}, {suf}, {cstr(path_pre)}, {psuf}, "
                   f"{kind}, {lo}LL, {hi}LL }},")
    if not schema.sysctls:
        out.append("\t{ NULL, NULL, NULL, NULL, NULL, NFP_SYSCTL_INT, 0, 0 },")
    out.append("};\n")
    out.append(f"const size_t nfp_nsysctls = {len(schema.sysctls)};")
    return "\n".join(out) + "\n"
