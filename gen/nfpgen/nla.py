"""Netlink attribute types of schema attributes, for error reports.

The kernel's extended ACK names the offending attribute by its offset in
the message the port sent. To turn that back into a schema name, every
attribute row carries the netlink type (NFTA_*) it travels as, and the nest
it sits in (0 at the top level).

An attribute's `nla:` key says it explicitly: `NFTA_X`, a nested
`NFTA_NEST/NFTA_X`, or `none`. Without it, the type is derived from the
libnftnl constant (NFTNL_TABLE_NAME -> NFTA_TABLE_NAME, NFTNL_EXPR_CMP_SREG
-> NFTA_CMP_SREG) when the kernel's UAPI header defines that name, and is
none otherwise (families travel in the nfgenmsg header, not as attributes).
"""

import os
import re

HEADER = "/usr/include/linux/netfilter/nf_tables.h"

_known = None


def known_names(header=HEADER):
    """{NFTA_* name: the enum that defines it} of the UAPI header (empty
    without the header)."""
    global _known
    if _known is None:
        _known = {}
        try:
            with open(header, encoding="utf-8") as f:
                text = f.read()
        except OSError:
            return _known
        for enum, body in re.findall(r"enum\s+(\w+)\s*\{(.*?)\}", text, re.S):
            for name in re.findall(r"^\s*(NFTA_[A-Z0-9_]+)", body, re.M):
                _known.setdefault(name, enum)
    return _known


def _home(owner):
    """The enum most of the owner's derived names are in: its own message's
    attributes (a derived name in another enum, NFTA_SET_DESC_SIZE of the
    nested set description, is not at the top level)."""
    cached = getattr(owner, "_nla_home", False)
    if cached is not False:
        return cached
    counts = {}
    for a in owner.attrs:
        if a.nla is None:
            enum = known_names().get(derive(a.const) or "")
            if enum:
                counts[enum] = counts.get(enum, 0) + 1
    home = max(sorted(counts), key=lambda e: counts[e]) if counts else None
    owner._nla_home = home
    return home


def derive(const):
    """The NFTA_* name that follows libnftnl's naming, or None."""
    if const.startswith("NFTNL_EXPR_"):
        return "NFTA_" + const[len("NFTNL_EXPR_"):]
    if const.startswith("NFTNL_"):
        return "NFTA_" + const[len("NFTNL_"):]
    return None


def resolve(attr):
    """(nla, nla_in): C expressions for the attribute's type and nest."""
    spec = attr.nla
    if spec == "none":
        return None, None
    if spec is None:
        name = derive(attr.const)
        if name is None or known_names().get(name) is None:
            return None, None
        if known_names()[name] != _home(attr.owner):
            return None, None
        return name, None
    parts = spec.split("/")
    if len(parts) == 1:
        return parts[0], None
    return parts[1], parts[0]
