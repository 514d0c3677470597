"""Attribute wire types: one class per type.

Each class says how the type appears in the C descriptor table (the engine in
src/attr.c does the conversion at run time), in Elixir typespecs and in the
reference documentation.
"""


class WireType:
    name = None
    c_wire = None
    has_length = False   # needs max-len
    can_enum = False
    can_flags = False
    needs_object = False
    elixir = "term()"
    doc = ""

    def elixir_spec(self, attr):
        if attr.enum is not None:
            if attr.enum.kind == "flags":
                return "[atom() | non_neg_integer()] | non_neg_integer()"
            return "atom() | integer()"
        return self.elixir

    def doc_type(self, attr):
        s = self.doc
        if attr.max_len is not None:
            s += f", exactly {attr.max_len} bytes" if attr.exact_len else f", at most {attr.max_len} bytes"
        return s


class U8(WireType):
    name, c_wire, can_enum, can_flags = "u8", "NFP_W_U8", True, True
    elixir, doc = "0..255", "unsigned 8-bit integer"


class U16(WireType):
    name, c_wire, can_enum, can_flags = "u16", "NFP_W_U16", True, True
    elixir, doc = "0..65535", "unsigned 16-bit integer"


class U32(WireType):
    name, c_wire, can_enum, can_flags = "u32", "NFP_W_U32", True, True
    elixir, doc = "0..4_294_967_295", "unsigned 32-bit integer"


class U64(WireType):
    name, c_wire, can_enum, can_flags = "u64", "NFP_W_U64", True, True
    elixir, doc = "non_neg_integer()", "unsigned 64-bit integer"


class S32(WireType):
    name, c_wire, can_enum = "s32", "NFP_W_S32", True
    elixir, doc = "integer()", "signed 32-bit integer"


class String(WireType):
    name, c_wire, has_length = "string", "NFP_W_STRING", True
    elixir, doc = "String.t()", "string (binary without NUL bytes)"


class Binary(WireType):
    name, c_wire, has_length = "binary", "NFP_W_BINARY", True
    elixir, doc = "binary()", "binary, network byte order as the kernel keeps it"


class StrList(WireType):
    name, c_wire, has_length = "strlist", "NFP_W_STRLIST", True
    elixir, doc = "[String.t()]", "list of strings"

    def doc_type(self, attr):
        return f"list of strings, each at most {attr.max_len} bytes"


class Exprs(WireType):
    name, c_wire, needs_object = "exprs", "NFP_W_EXPRS", True
    elixir = "[{atom(), map()}]"
    doc = "list of expressions `{name, attrs}`"

    def doc_type(self, attr):
        return self.doc


class Objects(WireType):
    name, c_wire, needs_object = "objects", "NFP_W_OBJECTS", True
    elixir = "[map()]"

    def doc_type(self, attr):
        return f"list of `{attr.elem_object}` attribute maps"


_ALL = [U8, U16, U32, U64, S32, String, Binary, StrList, Exprs, Objects]
_BY_NAME = {t.name: t() for t in _ALL}
NAMES = [t.name for t in _ALL]


def get(name):
    return _BY_NAME[name]
