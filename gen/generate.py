#!/usr/bin/env python3
"""Generate NFTables.Port's C tables, Elixir wrappers and reference docs.

    generate.py --schema DIR --c-out DIR          # C tables (meson, at build time)
    generate.py --schema DIR --elixir-out DIR     # elixir_stubs/
    generate.py --schema DIR --docs-out FILE      # docs/reference.md
    generate.py --schema DIR --check              # validate only

A schema error exits 1 with `file: key: message`.
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from nfpgen import schema as schema_mod  # noqa: E402
from nfpgen import c_enums, c_objects, c_ops, c_sysctl, docs, elixir  # noqa: E402
from nfpgen import nft_elixir, nft_schema  # noqa: E402
from nfpgen.errors import SchemaError  # noqa: E402


def write_if_changed(path, content):
    try:
        with open(path, encoding="utf-8") as f:
            if f.read() == content:
                return
    except FileNotFoundError:
        pass
    with open(path, "w", encoding="utf-8") as f:
        f.write(content)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--schema", required=True)
    p.add_argument("--c-out")
    p.add_argument("--elixir-out")
    p.add_argument("--docs-out")
    p.add_argument("--check", action="store_true")
    p.add_argument("--depfile", help="write a Makefile depfile of every file read")
    args = p.parse_args(argv)
    root = os.path.dirname(os.path.abspath(args.schema))
    try:
        schema = schema_mod.load(args.schema)
        # nft's language tables feed only the Elixir side and the docs.
        nft = nft_schema.load(args.schema) if (args.elixir_out or args.docs_out or args.check) \
            else nft_schema.NftTables()
    except SchemaError as e:
        print(f"schema error: {e}", file=sys.stderr)
        return 1
    if args.c_out:
        os.makedirs(args.c_out, exist_ok=True)
        write_if_changed(os.path.join(args.c_out, "nfp_enums.c"), c_enums.emit(schema, root))
        write_if_changed(os.path.join(args.c_out, "nfp_objects.c"), c_objects.emit(schema, root))
        write_if_changed(os.path.join(args.c_out, "nfp_ops.c"), c_ops.emit(schema, root))
        write_if_changed(os.path.join(args.c_out, "nfp_tables.h"), c_ops.emit_header(schema, root))
        write_if_changed(os.path.join(args.c_out, "nfp_sysctl.c"), c_sysctl.emit(schema, root))
    if args.elixir_out:
        os.makedirs(args.elixir_out, exist_ok=True)
        files = elixir.emit_all(schema)
        nft_module = nft_elixir.emit(nft)
        if nft_module is not None:
            files["nft_tables.ex"] = nft_module
        for name, content in files.items():
            write_if_changed(os.path.join(args.elixir_out, name), content)
        for stale in set(os.listdir(args.elixir_out)) - set(files):
            if stale.endswith(".ex"):
                os.remove(os.path.join(args.elixir_out, stale))
    if args.docs_out:
        write_if_changed(args.docs_out, docs.emit(schema) + nft_elixir.emit_docs(nft))
    if args.depfile:
        # Every schema file and generator module: a new or changed one
        # makes the build regenerate.
        here = os.path.dirname(os.path.abspath(__file__))
        deps = [os.path.abspath(f) for f in schema.files + nft.files]
        deps += [os.path.abspath(os.path.join(args.schema, d)) for d in ("objects", "expressions")]
        deps += [os.path.join(here, "nfpgen", f) for f in sorted(os.listdir(os.path.join(here, "nfpgen")))
                 if f.endswith(".py")]
        deps += [os.path.join(here, "meta", f) for f in sorted(os.listdir(os.path.join(here, "meta")))
                 if f.endswith(".yaml")]
        target = os.path.join(args.c_out or ".", "nfp_enums.c")
        with open(args.depfile, "w", encoding="utf-8") as f:
            f.write(target + ": " + " \\\n  ".join(d.replace(" ", "\\ ") for d in deps) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
