"""nfpgen: turns NFTables.Port's YAML schema into C tables, Elixir wrappers
and reference documentation.

Modules, one job each:
  schema   - loads schema/*.yaml and validates it strictly
  types    - one class per attribute wire type (C descriptor, Elixir spec, doc)
  c_enums, c_objects, c_ops - the C tables
  elixir   - the wrapper modules in elixir_stubs/
  docs     - docs/reference.md
"""
