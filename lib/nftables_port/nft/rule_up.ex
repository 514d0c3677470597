defmodule NFTables.Port.Nft.Rule.Up do
  @moduledoc """
  A rule's low-level expressions -> the statements `nft -j list` prints.

  What nft's listing does (netlink_delinearize.c), as an engine over the
  generated tables: registers are followed from the expressions that load
  them to the ones that use them; payload loads are named by the protocol
  header templates of the protocol context, which protocol matches (`meta
  l4proto tcp`, `ip protocol`, `ether type`, ...) update; a protocol match
  that a later header match implies is dropped, the way nft folds
  dependencies; values are printed by their datatypes.

  An expression this module cannot name raises `NFTables.Port.Nft.Error`;
  `NFTables.Port.Nft.Rule.up/2` then keeps the rule losslessly as bytecode.
  """

  alias NFTables.Port.Nft.{Error, Tables, Value}

  import Bitwise

  # nft's proto bases.
  @ll 1
  @nh 2
  @th 3
  @base_of %{link: @ll, network: @nh, transport: @th, inner: 4}
  @base_name %{@ll => "ll", @nh => "nh", @th => "th", 4 => "ih"}

  defstruct family: :inet, regs: %{}, out: [], pctx: %{}, poff: %{}, pstack: %{}, pdeps: %{}, sets: %{}, n: 0, icmp: nil

  @doc """
  Translates `exprs` (the `exprs` of a low-level rule) of a rule in
  `family`; `sets` maps the names of the table's sets to what
  `NFTables.Port.Nft.Elements` knows of them (anonymous ones with their
  elements).
  """
  @spec translate([{atom(), map()}], atom(), map()) :: [map()]
  def translate(exprs, family, sets \\ %{}) do
    st = %__MODULE__{family: family, sets: sets, pctx: init_pctx(family)}
    st =
      Enum.reduce(exprs, st, fn e, st ->
        Process.put({__MODULE__, :pctx}, {st.pctx, st.poff})
        expr(e, st)
      end)

    Process.delete({__MODULE__, :pctx})
    st = postprocess(st)

    st.out
    |> Enum.reverse()
    |> Enum.reject(&(&1 == :killed))
    |> Enum.map(fn %{json: j} -> j end)
  end

  # ---------------------------------------------------------------------
  # protocol context

  @doc false
  def init_pctx(family) do
    fam = Atom.to_string(family)

    Enum.reduce(Tables.protocols(), %{}, fn p, acc ->
      if fam in Map.get(p, :hook_families, []) do
        Map.put(acc, @base_of[base_atom(p.base)] || base_num(p.base), p.name)
      else
        acc
      end
    end)
  end

  defp base_atom(:ll), do: :link
  defp base_atom(:nh), do: :network
  defp base_atom(:th), do: :transport
  defp base_atom(_), do: nil

  defp base_num(:ll), do: @ll
  defp base_num(:nh), do: @nh
  defp base_num(:th), do: @th
  defp base_num(_), do: 0

  # The protocol a protocol-key match selects: `value` of the field of
  # `proto` that links the next layer.
  defp upper(proto, value) do
    case Tables.protocol(proto) do
      nil ->
        nil

      p ->
        case Enum.find(Map.get(p, :links, []), &(&1.value == value)) do
          nil -> nil
          %{proto: name} -> Tables.protocol(name)
        end
    end
  end

  # ---------------------------------------------------------------------
  # registers

  defp reg32(r) when r in 1..4, do: 8 + (r - 1) * 4
  defp reg32(r), do: r

  defp put_reg32(st, r32, item), do: %{st | regs: Map.put(st.regs, r32, item)}

  defp put_reg(st, reg, item), do: %{st | regs: Map.put(st.regs, reg32(reg), item)}

  defp get_reg!(st, reg) do
    case Map.fetch(st.regs, reg32(reg)) do
      {:ok, item} -> item
      :error -> raise Error, "register #{reg} is read before it is written"
    end
  end

  # Items of consecutive registers from `reg` covering `len` bytes: the
  # parts of a concatenation.
  defp get_concat!(st, reg, len) do
    r = reg32(reg)
    take_concat(st, r, len, [])
  end

  defp take_concat(_st, _r, len, acc) when len <= 0, do: Enum.reverse(acc)

  defp take_concat(st, r, len, acc) do
    case Map.fetch(st.regs, r) do
      {:ok, item} ->
        l = item_len(item)
        take_concat(st, r + div(Value.reg_bytes(l), 4), len - Value.reg_bytes(l), [item | acc])

      :error ->
        raise Error, "register #{r} is read before it is written"
    end
  end

  defp item_len(%{len: l}), do: l
  defp item_len(%{bytes: b}), do: byte_size(b)

  # ---------------------------------------------------------------------
  # statements

  defp emit(st, json, extra \\ %{}) do
    %{st | out: [Map.put(extra, :json, json) | st.out], n: st.n + 1}
  end

  # ---------------------------------------------------------------------
  # expressions

  defp expr({:payload, %{dreg: dreg} = a}, st) do
    base = @base_of[a.base] || raise(Error, "payload base #{inspect(a.base)}")
    put_reg(st, dreg, %{k: :payload, base: base, offset: a.offset * 8, len: a.len})
  end

  defp expr({:payload, %{sreg: sreg} = a}, st) do
    base = @base_of[a.base]
    value = get_reg!(st, sreg)
    item = %{k: :payload, base: base, offset: a.offset * 8, len: a.len}

    case resolve_payload(st, item) do
      [{proto, field}] ->
        key = payload_json(proto, field)
        st = kill_dependency(st, proto, field, base)
        emit(st, %{mangle: %{key: key, value: value_json(value, field.type, field.len)}})

      _ ->
        key = raw_payload_json(item)
        emit(st, %{mangle: %{key: key, value: value_json(value, "integer", a.len * 8)}})
    end
  end

  defp expr({:meta, %{dreg: dreg, key: key}}, st) do
    k = Tables.key_by_atom("meta", key) || raise(Error, "meta key #{inspect(key)}")

    put_reg(st, dreg, %{
      k: :meta,
      key: key,
      json: %{meta: %{key: k.name}},
      type: k.type,
      len: div(k.size + 7, 8)
    })
  end

  defp expr({:meta, %{sreg: sreg, key: key}}, st) do
    k = Tables.key_by_atom("meta", key) || raise(Error, "meta key #{inspect(key)}")
    value = get_reg!(st, sreg)
    emit(st, %{mangle: %{key: %{meta: %{key: k.name}}, value: value_json(value, k.type, k.size)}})
  end

  defp expr({:ct, %{dreg: dreg, key: key} = a}, st) do
    k = Tables.key_by_atom("ct", key) || raise(Error, "ct key #{inspect(key)}")
    json = ct_json(k, a)
    put_reg(st, dreg, %{k: :ct, key: key, json: json, type: ct_type(k, a, st), len: div(k.size + 7, 8)})
  end

  defp expr({:ct, %{sreg: sreg, key: key} = a}, st) do
    k = Tables.key_by_atom("ct", key) || raise(Error, "ct key #{inspect(key)}")
    value = get_reg!(st, sreg)
    emit(st, %{mangle: %{key: ct_json(k, a), value: value_json(value, k.type, k.size)}})
  end

  defp expr({:immediate, %{dreg: 0} = a}, st) do
    emit(st, verdict_json(a))
  end

  defp expr({:immediate, %{dreg: dreg, data: data}}, st) do
    put_reg(st, dreg, %{k: :value, bytes: data, len: byte_size(data)})
  end

  defp expr({:cmp, %{sreg: sreg, op: op, data: data}}, st) do
    left = get_reg!(st, sreg)
    match(st, left, op, %{k: :value, bytes: data, len: byte_size(data)})
  end

  defp expr({:range, %{sreg: sreg, op: op, from_data: from, to_data: to}}, st) do
    left = get_reg!(st, sreg)
    match(st, left, if(op == :neq, do: :neq, else: :eq), {:range, from, to})
  end

  defp expr({:bitwise, %{sreg: sreg, dreg: dreg} = a}, st) do
    inner = get_reg!(st, sreg)

    item =
      case Map.get(a, :op, :bool) do
        :bool -> %{k: :binop, inner: inner, mask: a.mask, xor: a.xor, len: a.len}
        op -> %{k: :shift, inner: inner, op: op, data: a.data, len: a.len}
      end

    put_reg(st, dreg, item)
  end

  defp expr({:lookup, %{sreg: sreg} = a}, st) do
    set = Map.get(st.sets, a.set) || raise(Error, "lookup in set #{inspect(a.set)} that the dump does not have")
    key = lookup_key(st, sreg, set)

    case Map.get(a, :dreg) do
      nil ->
        op = if :inv in List.wrap(Map.get(a, :flags, [])), do: :neq, else: :eq
        match(st, key, op, {:set, a.set, set})

      0 ->
        {kjson, st} = key_json_pp(st, key, set)
        emit(st, %{vmap: %{key: kjson, data: set_json(st, a.set, set)}})

      dreg ->
        {kjson, st} = key_json_pp(st, key, set)
        data_type =
          case Map.get(set, :data_types) do
            [_, _ | _] = ts -> ts
            _ -> Map.get(set, :data_type, "integer")
          end

        json = %{map: %{key: kjson, data: set_json(st, a.set, set)}}
        data_len = Map.get(set, :data_len, 4)
        item = %{k: :map, json: json, type: data_type, len: data_len}
        st = put_reg(st, dreg, item)

        # concatenated data (nat's address . port): the later parts are
        # registers of the same map
        case data_type do
          [_ | rest] when rest != [] ->
            first = data_type |> hd() |> Value.reg_bytes()
            put_reg32(st, reg32(dreg) + div(first, 4), %{k: :map_part, of: item, len: data_len - first})

          _ ->
            st
        end
    end
  end

  defp expr({:counter, a}, st) do
    emit(st, %{counter: %{packets: Map.get(a, :packets, 0), bytes: Map.get(a, :bytes, 0)}})
  end

  defp expr({:notrack, _}, st), do: emit(st, %{notrack: nil})

  defp expr({:log, a}, st) do
    emit(st, %{log: log_json(a)})
  end

  defp expr({:limit, a}, st) do
    emit(st, %{limit: limit_json(a)})
  end

  defp expr({:quota, a}, st) do
    {val, unit} = rate_unit(Map.get(a, :bytes, 0))
    j = %{val: val, val_unit: unit}
    j = if :inv in List.wrap(Map.get(a, :flags, [])), do: Map.put(j, :inv, true), else: j

    j =
      case Map.get(a, :consumed, 0) do
        0 -> j
        used -> {u, uu} = rate_unit(used); Map.merge(j, %{used: u, used_unit: uu})
      end

    emit(st, %{quota: j})
  end

  defp expr({:objref, %{imm_type: type, imm_name: name}}, st) do
    emit(st, %{objref_key(type) => name})
  end

  defp expr({:objref, %{set_sreg: sreg, set_name: set_name}}, st) do
    set = Map.get(st.sets, set_name) || raise(Error, "objref map #{inspect(set_name)} not in the dump")
    key = lookup_key(st, sreg, set)
    {kjson, st} = key_json_pp(st, key, set)
    type = objref_key(Map.get(set, :obj_type, :counter))
    emit(st, %{type => %{map: %{key: kjson, data: set_json(st, set_name, set)}}})
  end

  defp expr({:dynset, a}, st) do
    set = Map.get(st.sets, a.set_name) || raise(Error, "dynset set #{inspect(a.set_name)} not in the dump")
    key = lookup_key(st, a.sreg_key, set)
    {kjson, st} = key_json_pp(st, key, set)
    stmts = Enum.map(List.wrap(Map.get(a, :exprs, [])), &stmt_only/1)

    elem =
      case Map.get(a, :timeout, 0) do
        0 -> kjson
        t -> %{elem: %{val: kjson, timeout: div(t, 1000)}}
      end

    elem =
      case Map.get(a, :sreg_data) do
        nil ->
          elem

        dreg ->
          data = get_reg!(st, dreg)
          {elem, value_json(data, Map.get(set, :data_type, "integer"), Map.get(set, :data_len, 4) * 8)}
      end

    {op, json} =
      case elem do
        {k, v} -> {:map, %{op: Atom.to_string(a.op), elem: k, data: v, map: "@" <> a.set_name}}
        k -> {:set, %{op: Atom.to_string(a.op), elem: k, set: "@" <> a.set_name}}
      end

    json = if stmts == [], do: json, else: Map.put(json, :stmt, stmts)

    if meter?(set) and stmts != [] and not Map.has_key?(a, :sreg_data) do
      emit(st, %{meter: %{key: kjson, stmt: meter_stmt(stmts), size: Map.get(set, :desc_size, 0), name: a.set_name}})
    else
      emit(st, %{op => json})
    end
  end

  defp expr({:nat, a}, st), do: emit(st, nat_json(st, a))
  defp expr({:masq, a}, st), do: emit(st, %{masquerade: nat_common(st, a, nil)})
  defp expr({:redir, a}, st), do: emit(st, %{redirect: nat_common(st, a, nil)})

  defp expr({:reject, a}, st), do: emit(st, reject_json(st, a))

  defp expr({:fib, %{dreg: dreg} = a}, st) do
    k = Tables.key_by_atom("fib", a.result) || raise(Error, "fib result #{inspect(a.result)}")
    flags = List.wrap(Map.get(a, :flags, []))

    names =
      Tables.keys("fib")
      |> Enum.filter(&(Map.get(&1, :kind) == "flag" and &1.key in flags and &1.name != "present"))
      |> Enum.map(& &1.name)

    json = %{fib: %{result: k.name, flags: if(length(names) == 1, do: hd(names), else: names)}}
    type = if :present in flags, do: "boolean", else: k.type
    put_reg(st, dreg, %{k: :fib, json: json, type: type, len: div(k.size + 7, 8)})
  end

  defp expr({:rt, %{dreg: dreg, key: key}}, st) do
    k = Tables.key_by_atom("rt", key) || raise(Error, "rt key #{inspect(key)}")
    json = %{rt: rt_json(k)}
    put_reg(st, dreg, %{k: :rt, json: json, type: k.type, len: div(k.size + 7, 8)})
  end

  defp expr({:socket, %{dreg: dreg, key: key} = a}, st) do
    k = Tables.key_by_atom("socket", key) || raise(Error, "socket key #{inspect(key)}")
    j = %{key: k.name}
    j = if Map.get(k, :level), do: Map.put(j, :level, Map.get(a, :level, 0)), else: j
    put_reg(st, dreg, %{k: :socket, json: %{socket: j}, type: k.type, len: div(k.size + 7, 8)})
  end

  defp expr({:xfrm, %{dreg: dreg, key: key} = a}, st) do
    k = Tables.key_by_atom("ipsec", key) || raise(Error, "ipsec key #{inspect(key)}")
    j = %{key: k.name}
    j = if Map.get(k, :family), do: Map.put(j, :family, k.family), else: j
    j = Map.merge(j, %{dir: Atom.to_string(Map.get(a, :dir, :in)), spnum: Map.get(a, :spnum, 0)})
    put_reg(st, dreg, %{k: :xfrm, json: %{ipsec: j}, type: k.type, len: div(k.size + 7, 8)})
  end

  defp expr({:osf, %{dreg: dreg} = a}, st) do
    key = if :version in List.wrap(Map.get(a, :flags, [])), do: "version", else: "name"
    k = Tables.key("osf", key) || raise(Error, "osf key #{key}")
    j = %{key: key}

    j =
      case Map.get(a, :ttl, :strict) do
        :loose -> Map.put(j, :ttl, "loose")
        :skip -> Map.put(j, :ttl, "skip")
        _ -> j
      end

    put_reg(st, dreg, %{k: :osf, json: %{osf: j}, type: k.type, len: div(k.size + 7, 8)})
  end

  defp expr({:numgen, %{dreg: dreg} = a}, st) do
    k = Tables.key_by_atom("numgen", a.type) || raise(Error, "numgen type #{inspect(a.type)}")
    j = %{mode: k.name, mod: a.modulus}
    j = if Map.get(a, :offset, 0) != 0, do: Map.put(j, :offset, a.offset), else: j
    put_reg(st, dreg, %{k: :numgen, json: %{numgen: j}, type: "integer", len: 4})
  end

  defp expr({:hash, %{dreg: dreg} = a}, st) do
    k = Tables.key_by_atom("hash", a.type) || raise(Error, "hash type #{inspect(a.type)}")
    j = %{mod: a.modulus}
    j = if Map.get(a, :seed, 0) != 0, do: Map.put(j, :seed, a.seed), else: j
    j = if Map.get(a, :offset, 0) != 0, do: Map.put(j, :offset, a.offset), else: j

    j =
      case Map.get(a, :sreg) do
        nil ->
          j

        sreg ->
          parts = get_concat!(st, sreg, a.len)
          Map.put(j, :expr, concat_json(st, parts))
      end

    put_reg(st, dreg, %{k: :hash, json: %{k.name => j}, type: "integer", len: 4})
  end

  defp expr({kind, _a}, _st) do
    raise Error, "no translation for the #{kind} expression yet"
  end

  # A statement inside a dynset: translated on its own.
  defp stmt_only(e) do
    st = expr(e, %__MODULE__{})
    [%{json: j}] = st.out
    j
  end

  defp meter?(set), do: Map.get(set, :anonymous, false)

  defp meter_stmt([one]), do: one
  defp meter_stmt(many), do: many

  # ---------------------------------------------------------------------
  # matches

  # left OP right -> a match statement, with nft's postprocessing.
  defp match(st, %{k: :binop} = left, op, %{k: :value} = right) do
    binop_match(st, left, op, right)
  end

  defp match(st, %{k: :binop, inner: %{k: :payload} = inner} = left, op, right) do
    case bitfield_st(st, inner, left.mask) do
      {p, f} ->
        st = kill_dependency(st, p, f, inner.base)
        emit(st, match_json(op, payload_json(p, f), right_json(st, right, f.type, f.len)))

      nil ->
        raise Error, "no translation for a masked payload match on a set"
    end
  end

  defp match(st, %{k: :payload} = left, op, %{k: :value, bytes: bytes} = right) when op in [:eq, :neq] do
    case resolve_payload(st, left) do
      nil ->
        case short_prefix(st, left) do
          {p, f} ->
            st = kill_dependency(st, p, f, left.base)
            addr = Value.decode(f.type, Value.pad(bytes, div(f.len, 8)))
            emit(st, match_json(op, payload_json(p, f), %{prefix: %{addr: addr, len: left.len * 8}}))

          nil ->
            emit(st, match_json(op, raw_payload_json(left), int_value(bytes)))
        end

      fields ->
        expand_payload_match(st, fields, op, right)
    end
  end

  defp match(st, %{k: :payload} = left, op, right) do
    {ljson, type, st} = payload_left(st, left)
    st |> emit(match_json(op, ljson, right_json(st, right, type, left.len))) |> merge_range()
  end

  defp match(st, %{k: kind} = left, op, right) when kind in [:meta, :ct] do
    rj = right_json(st, right, left.type, left.len * 8)
    st = emit(st, match_json(op, left.json, rj), %{left: left, right: right, op: op})
    meta_postprocess(st, left, op, right)
  end

  defp match(st, %{k: :concat, parts: parts}, op, right) do
    {ljson, st} = concat_json_pp(st, parts)
    types = Enum.map(parts, &item_type/1)
    emit(st, match_json(op, ljson, right_json(st, right, types, 0)))
  end

  defp match(st, %{json: json, type: type, len: len}, op, right) do
    st |> emit(match_json(op, json, right_json(st, right, type, len * 8))) |> merge_range()
  end

  defp match(_st, left, _op, _right) do
    raise Error, "no translation for a match on #{inspect(left.k)}"
  end

  # `x >= a` then `x <= b` on the same left is `x a-b` (and `<`, `>` its
  # negation), as nft's expr_postprocess_range merges them.
  defp merge_range(%{out: [%{json: %{match: m2}} = s2, %{json: %{match: m1}} | rest]} = st)
       when m1.left == m2.left do
    op =
      case {m1.op, m2.op} do
        {">=", "<="} -> "=="
        {"<", ">"} -> "!="
        _ -> nil
      end

    if op do
      merged = %{s2 | json: %{match: %{op: op, left: m1.left, right: %{range: [m1.right, m2.right]}}}}
      %{st | out: [merged | rest], n: st.n - 1}
    else
      st
    end
  end

  defp merge_range(st), do: st

  defp match_json(op, left, right) do
    %{match: %{op: op_str(op), left: left, right: right}}
  end

  defp op_str(:eq), do: "=="
  defp op_str(:neq), do: "!="
  defp op_str(:lt), do: "<"
  defp op_str(:lte), do: "<="
  defp op_str(:gt), do: ">"
  defp op_str(:gte), do: ">="
  defp op_str(:in), do: "in"

  defp right_json(_st, %{k: :value, bytes: b}, types, _bits) when is_list(types) do
    %{concat: Value.decode_concat(types, b)}
  end

  defp right_json(_st, %{k: :value, bytes: b}, type, _bits), do: Value.decode(type, b)

  defp right_json(_st, {:range, from, to}, type, _bits) do
    %{range: [Value.decode(type, from), Value.decode(type, to)]}
  end

  defp right_json(st, {:set, name, set}, _type, _bits), do: set_json(st, name, set)

  defp int_value(bytes) do
    n = :binary.decode_unsigned(bytes)
    if n <= 0xFFFFFFFFFFFFFFFF, do: n, else: "0x" <> String.downcase(Integer.to_string(n, 16))
  end

  defp item_type(%{type: t}), do: t
  defp item_type(%{k: :payload}), do: "integer"
  defp item_type(_), do: "integer"

  # A set reference: a named set as "@name", an anonymous one inline.
  defp set_json(_st, name, set) do
    if Map.get(set, :anonymous, false) do
      %{set: Map.get(set, :elements_json, [])}
    else
      "@" <> name
    end
  end

  # ---------------------------------------------------------------------
  # payload

  # The header fields a payload load covers, in the current protocol
  # context: [{proto, field}], or nil when the protocol or a field is
  # unknown.
  defp resolve_payload(st, %{base: base, offset: off0, len: len} = item) do
    off = off0 - Map.get(st.poff, base, 0)

    with proto when is_binary(proto) <- Map.get(st.pctx, base),
         %{} = p <- Tables.protocol(proto),
         true <- off >= 0 do
      cover(p, off, off + len * 8, [])
    else
      _ -> lower_header(st, item) || th_fallback(base, off, len)
    end
  end

  # A field of a header below a stacked one (ether below vlan).
  defp lower_header(st, %{base: base, offset: off, len: len}) do
    Enum.find_value(Map.get(st.pstack, base, []), fn {name, start} ->
      p = Tables.protocol(name)
      rel = off - start
      if rel >= 0 and rel + len * 8 <= Tables.header_bits(p), do: cover(p, rel, rel + len * 8, [])
    end)
  end

  # Transport ports without a known protocol: nft's `th` pseudo header.
  defp th_fallback(@th, off, len) do
    case Tables.protocol("th") do
      nil -> nil
      p -> cover(p, off, off + len * 8, [])
    end
  end

  defp th_fallback(_, _, _), do: nil

  defp cover(_p, from, to, acc) when from >= to, do: Enum.reverse(acc)

  defp cover(p, from, to, acc) do
    case Enum.find(Map.get(p, :fields, []), fn f ->
           f.offset == from and rem(f.len, 8) == 0 and f.len > 0 and from + f.len <= to and
             is_nil(Map.get(f, :meta_key))
         end) do
      nil -> nil
      f -> cover(p, from + f.len, to, [{p, f} | acc])
    end
  end

  # A load of the first bytes of a field: nft loads only the bytes a
  # prefix needs (ip saddr 10.0.0.0/8 loads one byte).
  defp short_prefix(st, %{base: base, offset: off, len: len}) do
    with proto when is_binary(proto) <- Map.get(st.pctx, base),
         %{} = p <- Tables.protocol(proto),
         %{} = f <- Enum.find(p.fields, &(&1.offset == off and &1.len > len * 8 and is_nil(Map.get(&1, :meta_key)))),
         %{} <- Enum.find(Tables.datatypes(), &(&1.name == f.type and Map.get(&1, :prefix))) do
      {p, f}
    else
      _ -> nil
    end
  end

  defp payload_json(p, f), do: %{payload: %{protocol: p.name, field: f.name}}

  defp raw_payload_json(%{base: base, offset: off, len: len}) do
    %{payload: %{base: @base_name[base], offset: off, len: len * 8}}
  end

  # The left side of a non-value match on a payload (sets, ranges, ...).
  defp payload_left(st, item) do
    case resolve_payload(st, item) do
      [{p, f}] ->
        {payload_json(p, f), f.type, kill_dependency(st, p, f, item.base)}

      _ ->
        {raw_payload_json(item), "integer", st}
    end
  end

  # payload == value over one or more fields: one match per field, each
  # updating the protocol context (nft's payload_match_expand).
  defp expand_payload_match(st, fields, op, %{bytes: bytes}) do
    {st, _} =
      Enum.reduce(fields, {st, bytes}, fn {p, f}, {st, rest} ->
        n = div(f.len, 8)
        <<v::binary-size(n), rest2::binary>> = rest
        st = kill_dependency(st, p, f, base_num(p.base))
        json = match_json(op, payload_json(p, f), Value.decode(f.type, v))
        dep = %{left: %{k: :payload, proto: p.name, field: f.name}, op: op, value: v}
        st = emit(st, json, dep)
        st = if op == :eq, do: protocol_update(st, p, f, v), else: st
        {st, rest2}
      end)

    st
  end

  # A protocol-key field matched by value selects the next layer's protocol.
  defp protocol_update(st, p, f, v) do
    if Map.get(p, :protocol_key) == f.name do
      value = :binary.decode_unsigned(v)

      case upper(p.name, value) do
        nil ->
          st

        up ->
          b = base_num(up.base)
          base = base_num(p.base)

          # A stacked protocol (vlan over ether) stays at the same base,
          # its fields after the lower header.
          store_base = if b == base, do: base - 1, else: base
          st = %{st | pctx: Map.put(st.pctx, b, up.name)}

          st =
            if b == base do
              start = Map.get(st.poff, b, 0)
              %{st | poff: Map.put(st.poff, b, start + Tables.header_bits(p)),
                     pstack: Map.update(st.pstack, b, [{p.name, start}], &[{p.name, start} | &1])}
            else
              st
            end
          store_dependency(st, store_base)
      end
    else
      st
    end
  end

  defp store_dependency(st, base) do
    %{st | pdeps: Map.put(st.pdeps, base + 1, st.n - 1)}
  end

  # A header field of protocol `p` at `base` implies the protocol match that
  # selected `p`: drop that match (nft's payload_dependency_kill).
  defp kill_dependency(st, p, f, base) do
    case Map.fetch(st.pdeps, base) do
      {:ok, idx} ->
        dep = Enum.at(st.out, st.n - 1 - idx)

        if dep != :killed and may_kill?(st, dep, p, f, base) do
          %{st | out: List.replace_at(st.out, st.n - 1 - idx, :killed), pdeps: Map.delete(st.pdeps, base)}
        else
          st
        end

      :error ->
        st
    end
  end

  defp may_kill?(st, %{left: left, op: :eq} = dep, p, f, base) do
    multi = st.family in [:bridge, :netdev, :inet]

    cond do
      # ip6 nexthdr / ip protocol as a dependency of a transport header is
      # kept in bridge, inet and netdev: it restricts the network protocol.
      multi and left.k == :payload and left.proto in ["ip", "ip6"] and base == @th ->
        false

      multi and left.k == :payload and base == @ll and left.proto == "vlan" ->
        false

      multi and left.k == :payload and base == @ll and left.proto == "ether" ->
        dep.value == <<0x81, 0x00>>

      base == @th and left.k == :payload and left.proto in ["icmp", "icmpv6"] ->
        icmp_kill?(dep, p, f)

      true ->
        true
    end
  end

  defp may_kill?(_st, _dep, _p, _f, _base), do: false

  defp icmp_kill?(_dep, _p, f) do
    case Map.get(f, :icmp_dep) do
      nil -> false
      _ -> false
    end
  end

  # meta/ct protocol matches (meta nfproto, meta l4proto, meta protocol)
  # update the protocol context and may be dependencies themselves
  # (nft's ct_meta_common_postprocess).
  defp meta_postprocess(st, %{k: :meta, key: key} = left, :eq, %{k: :value, bytes: bytes}) do
    {base, via} =
      case key do
        :nfproto -> {@ll, "inet"}
        :protocol -> {@ll, "netdev"}
        :l4proto -> {@nh, "inet-service"}
        :iiftype -> {0, :dev}
        _ -> {nil, nil}
      end

    if base do
      value = Value.to_int(left.type, bytes)
      st = meta_kill(st, key, base, value)

      st =
        case dev_or_upper(via, value) do
          nil -> st
          up -> %{st | pctx: Map.put(st.pctx, base_num(up.base), up.name)}
        end

      store_dependency(st, base)
    else
      st
    end
  end

  defp meta_postprocess(st, _left, _op, _right), do: st

  # meta iiftype ether (ARPHRD_ETHER) makes the link layer ethernet.
  defp dev_or_upper(:dev, 1), do: Tables.protocol("ether")
  defp dev_or_upper(:dev, _), do: nil
  defp dev_or_upper(via, value), do: upper(via, value)

  # A meta protocol match at a base where a dependency was stored.
  defp meta_kill(st, key, base, value) do
    case Map.fetch(st.pdeps, base) do
      {:ok, idx} ->
        dep = Enum.at(st.out, st.n - 2 - idx + 1)

        if dep != :killed and meta_may_kill?(st, dep, key, value) do
          %{st | out: List.replace_at(st.out, st.n - 1 - idx, :killed), pdeps: Map.delete(st.pdeps, base)}
        else
          st
        end

      :error ->
        st
    end
  end

  defp meta_may_kill?(st, %{left: %{k: :meta, key: dkey}, right: %{bytes: b}}, key, l4) when dkey in [:nfproto, :protocol] do
    nfproto =
      case {dkey, b} do
        {:nfproto, <<v>>} -> v
        {:protocol, <<ethertype::16>>} -> ethertype_nfproto(ethertype)
        _ -> 0
      end

    case st.family do
      f when f in [:inet, :netdev, :bridge] ->
        key != :l4proto or
          (l4 in [1, 58] and not ((nfproto == 2 and l4 == 58) or (nfproto == 10 and l4 == 1)))

      :ip ->
        nfproto == 2

      :ip6 ->
        nfproto == 10

      _ ->
        true
    end
  end

  defp meta_may_kill?(_st, _dep, _key, _l4), do: true

  # The nfproto (meta nfproto value) of the network protocol an ethertype
  # names, from the tables: ip 0x0800 -> 2, ip6 0x86dd -> 10, else 0.
  defp ethertype_nfproto(ethertype) do
    with %{name: name} <- Enum.find(Tables.protocols(), &(&1.base == :nh and Map.get(&1, :id) == ethertype)),
         %{value: v} <- Enum.find(Tables.protocol("inet").links, &(&1.proto == name)) do
      v
    else
      _ -> 0
    end
  end

  # ---------------------------------------------------------------------
  # bitwise: masks, prefixes, flags

  defp binop_match(st, %{inner: inner, mask: mask, xor: xor} = b, op, %{bytes: value}) do
    zero = :binary.copy(<<0>>, byte_size(mask))

    cond do
      xor != zero ->
        raise Error, "bitwise with xor in a match"

      inner.k == :payload ->
        payload_mask_match(st, inner, mask, op, value)

      # flags: `ct state established,related` is (ct state & 6) != 0
      Map.has_key?(inner, :type) and flag_type?(inner.type) and value == zero and op == :neq ->
        rj = Value.decode(inner.type, mask)
        st = emit(st, match_json(:in, inner.json, rj))
        st

      Map.has_key?(inner, :type) and flag_type?(inner.type) and value == mask and op == :eq ->
        rj = Value.decode(inner.type, mask)
        emit(st, match_json(:eq, inner.json, rj))

      Map.has_key?(inner, :json) ->
        bj = %{"&": [inner.json, Value.decode(inner.type, mask)]}
        emit(st, match_json(op, bj, Value.decode(inner.type, value)))

      true ->
        raise Error, "bitwise on #{inspect(b.inner.k)}"
    end
  end

  defp flag_type?(type) do
    case Tables.datatype(type) do
      %{format: :bitmask} -> true
      _ -> false
    end
  end

  # payload & mask == value: a bit field (ip dscp, vlan id, tcp flags) or
  # a prefix (ip saddr 10.0.0.0/8).
  defp payload_mask_match(st, item, mask, op, value) do
    bits = byte_size(mask) * 8
    m = :binary.decode_unsigned(mask)
    lead = leading_zeros(m, bits)
    ones = popcount(m)
    trail = bits - lead - ones
    contiguous = m == (1 <<< ones) - 1 <<< trail

    case Map.get(st.pctx, item.base) |> then(&(&1 && Tables.protocol(&1))) do
      %{} = p when contiguous ->
        field_off = item.offset - Map.get(st.poff, item.base, 0) + lead

        case Enum.find(p.fields, &(&1.offset == field_off and &1.len == ones and is_nil(Map.get(&1, :meta_key)))) do
          %{} = f ->
            v = (:binary.decode_unsigned(value) &&& m) >>> trail
            vb = <<v::size(div(f.len + 7, 8) * 8)>>
            st = kill_dependency(st, p, f, item.base)
            st = emit(st, match_json(op, payload_json(p, f), Value.decode(f.type, vb)),
                  %{left: %{k: :payload, proto: p.name, field: f.name}, op: op, value: vb})
            if op == :eq, do: protocol_update(st, p, f, vb), else: st

          nil ->
            prefix_match(st, p, item, lead, ones, op, value, bits)
        end

      %{} = p ->
        flags_payload_match(st, p, item, mask, op, value)

      nil ->
        raw = raw_payload_json(item)
        emit(st, match_json(op, %{"&": [raw, int_value(mask)]}, int_value(value)))
    end
  end

  # A prefix of a whole field: lead == 0 and the field spans the load.
  defp prefix_match(st, p, item, 0, ones, op, value, bits) do
    case Enum.find(p.fields, &(&1.offset == item.offset and &1.len == bits)) do
      %{} = f ->
        st = kill_dependency(st, p, f, item.base)
        right = %{prefix: %{addr: Value.decode(f.type, value), len: ones}}
        emit(st, match_json(op, payload_json(p, f), right))

      nil ->
        emit(st, match_json(op, %{"&": [raw_payload_json(item), int_value(:binary.copy(<<255>>, 1))]}, int_value(value)))
    end
  end

  defp prefix_match(st, _p, item, _lead, _ones, op, value, _bits) do
    emit(st, match_json(op, raw_payload_json(item), int_value(value)))
  end

  defp flags_payload_match(st, _p, item, mask, op, value) do
    case resolve_payload(st, item) do
      [{p, f}] ->
        st = kill_dependency(st, p, f, item.base)
        zero = :binary.copy(<<0>>, byte_size(mask))

        json =
          if op == :neq and value == zero do
            match_json(:in, payload_json(p, f), Value.decode(f.type, mask))
          else
            match_json(op, %{"&": [payload_json(p, f), Value.decode(f.type, mask)]}, Value.decode(f.type, value))
          end

        emit(st, json)

      _ ->
        emit(st, match_json(op, %{"&": [raw_payload_json(item), int_value(mask)]}, int_value(value)))
    end
  end

  defp leading_zeros(m, bits), do: bits - bit_length(m)
  defp bit_length(0), do: 0
  defp bit_length(m), do: 1 + bit_length(m >>> 1)
  defp popcount(0), do: 0
  defp popcount(m), do: (m &&& 1) + popcount(m >>> 1)

  # ---------------------------------------------------------------------
  # keys of lookups and maps

  defp lookup_key(st, sreg, set) do
    types = Map.get(set, :key_types, ["integer"])

    if length(types) > 1 do
      %{k: :concat, parts: get_concat!(st, sreg, Map.get(set, :key_len, 0))}
    else
      get_reg!(st, sreg)
    end
  end

  # The JSON of a key expression, and the state with dependencies folded.
  defp key_json_pp(st, %{k: :concat, parts: parts}, _set), do: concat_json_pp(st, parts)

  defp key_json_pp(st, %{k: :binop, inner: %{k: :payload}} = item, _set) do
    {%{concat: [j]}, st} = concat_json_pp(st, [item])
    {j, st}
  end

  defp key_json_pp(st, %{k: :payload} = item, _set) do
    {j, _t, st} = payload_left(st, item)
    {j, st}
  end

  defp key_json_pp(st, item, set), do: {value_json(item, hd(Map.get(set, :key_types, ["integer"])), 0), st}

  defp concat_json_pp(st, parts) do
    {js, st} =
      Enum.map_reduce(parts, st, fn
        %{k: :payload} = item, st ->
          {j, _t, st} = payload_left(st, item)
          {j, st}

        %{k: :binop, inner: %{k: :payload} = inner, mask: mask} = item, st ->
          case bitfield_st(st, inner, mask) do
            {p, f} -> {payload_json(p, f), kill_dependency(st, p, f, inner.base)}
            nil -> {value_json(item, "integer", 0), st}
          end

        item, st ->
          {value_json(item, item_type(item), 0), st}
      end)

    {%{concat: js}, st}
  end

  defp concat_json(st, parts), do: st |> concat_json_pp(parts) |> elem(0)

  # The JSON of a register's content used as a value.
  defp value_json(%{k: :value, bytes: b}, type, _bits), do: Value.decode(type, b)
  defp value_json(%{json: j}, _type, _bits), do: j
  defp value_json(%{k: :payload} = item, _type, _bits), do: raw_payload_json(item)

  defp value_json(%{k: :binop, inner: %{k: :payload} = inner, mask: mask} = b, type, bits) do
    case bitfield(inner, mask) do
      {p, f} -> payload_json(p, f)
      nil -> binop_json(b, type, bits)
    end
  end

  defp value_json(%{k: :binop} = b, type, bits), do: binop_json(b, type, bits)

  defp value_json(%{k: :shift, inner: inner, op: op, data: data}, type, bits) do
    n = Value.to_int(%{byteorder: :host}, data)
    sym = if op == :lshift, do: :"<<", else: :">>"
    %{sym => [value_json(inner, type, bits), n]}
  end

  defp value_json(%{k: :concat, parts: parts}, _type, _bits) do
    %{concat: Enum.map(parts, &value_json(&1, item_type(&1), 0))}
  end

  defp binop_json(%{inner: inner, mask: mask, xor: xor}, type, bits) do
    ij = value_json(inner, type, bits)
    zero = :binary.copy(<<0>>, byte_size(mask))
    full = :binary.copy(<<255>>, byte_size(mask))
    type = if inner.k == :payload, do: "integer", else: type

    cond do
      xor == zero -> %{"&": [ij, Value.decode(type, mask)]}
      mask == full -> %{"^": [ij, Value.decode(type, xor)]}
      true -> %{"|": [ij, Value.decode(type, xor)]}
    end
  end

  defp bitfield_st(st, item, mask) do
    Process.put({__MODULE__, :pctx}, {st.pctx, st.poff})
    bitfield(item, mask)
  end

  # The bit field of a header that `payload & mask` selects, if any.
  defp bitfield(%{base: base, offset: off}, mask) do
    bits = byte_size(mask) * 8
    m = :binary.decode_unsigned(mask)
    lead = leading_zeros(m, bits)
    ones = popcount(m)
    trail = bits - lead - ones

    with true <- m == (1 <<< ones) - 1 <<< trail,
         {pctx, poff} <- Process.get({__MODULE__, :pctx}, {%{}, %{}}),
         proto when is_binary(proto) <- Map.get(pctx, base),
         %{} = p <- Tables.protocol(proto),
         %{} = f <- Enum.find(p.fields, &(&1.offset == off - Map.get(poff, base, 0) + lead and &1.len == ones and is_nil(Map.get(&1, :meta_key)))) do
      {p, f}
    else
      _ -> nil
    end
  end


  # ---------------------------------------------------------------------
  # statements' JSON

  defp verdict_json(%{verdict: v} = a) when v in [:jump, :goto] do
    %{v => %{target: Map.fetch!(a, :chain)}}
  end

  defp verdict_json(%{verdict: v}), do: %{v => nil}

  defp ct_json(k, a) do
    j = %{key: k.name}

    case Map.get(a, :dir) do
      nil -> %{ct: j}
      dir -> %{ct: Map.put(j, :dir, Atom.to_string(dir))}
    end
  end

  defp ct_type(k, _a, _st), do: k.type

  defp rt_json(k) do
    case Map.get(k, :family) do
      nil -> %{key: k.name}
      fam -> %{key: k.name, family: fam}
    end
  end

  @log_flags [tcpseq: "tcp sequence", tcpopt: "tcp options", ipopt: "ip options", uid: "skuid", macdecode: "ether"]

  defp log_json(a) do
    j = %{}
    j = if Map.has_key?(a, :prefix), do: Map.put(j, :prefix, a.prefix), else: j
    j = if Map.has_key?(a, :group), do: Map.put(j, :group, a.group), else: j
    j = if Map.has_key?(a, :snaplen), do: Map.put(j, :snaplen, a.snaplen), else: j
    j = if Map.has_key?(a, :qthreshold), do: Map.put(j, :"queue-threshold", a.qthreshold), else: j

    j =
      case Map.get(a, :level) do
        nil -> j
        :warn -> j
        l -> Map.put(j, :level, Atom.to_string(l))
      end

    flags = List.wrap(Map.get(a, :flags, []))

    names =
      if length(flags) == 5, do: ["all"], else: for({f, n} <- @log_flags, f in flags, do: n)

    j =
      case names do
        [] -> j
        [one] -> Map.put(j, :flags, one)
        many -> Map.put(j, :flags, many)
      end

    if j == %{}, do: nil, else: j
  end

  @units ~w(second minute hour day week)

  defp limit_json(a) do
    unit = Map.get(a, :unit, 1)
    per = Enum.find(Enum.zip([1, 60, 3600, 86_400, 604_800], @units), fn {s, _} -> s == unit end)
    per = if per, do: elem(per, 1), else: "#{unit} seconds"

    {rate, rate_unit, burst, burst_unit} =
      case Map.get(a, :type, :pkts) do
        :pkt_bytes ->
          {r, ru} = rate_unit(Map.get(a, :rate, 0))
          {b, bu} = rate_unit(Map.get(a, :burst, 0))
          {r, ru, b, bu}

        _ ->
          {Map.get(a, :rate, 0), nil, Map.get(a, :burst, 0), nil}
      end

    j = %{rate: rate, burst: burst, per: per}
    j = if :inv in List.wrap(Map.get(a, :flags, [])), do: Map.put(j, :inv, true), else: j
    j = if rate_unit, do: Map.put(j, :rate_unit, rate_unit), else: j
    if burst_unit, do: Map.put(j, :burst_unit, burst_unit), else: j
  end

  # nft's get_rate: the largest unit the value is a whole multiple of.
  defp rate_unit(v) do
    Enum.reduce_while([{"mbytes", 1024 * 1024}, {"kbytes", 1024}], {v, "bytes"}, fn {u, n}, acc ->
      if v >= n and rem(v, n) == 0, do: {:halt, {div(v, n), u}}, else: {:cont, acc}
    end)
    |> case do
      {^v, "bytes"} -> {v, "bytes"}
      other -> other
    end
  end

  defp objref_key(s) when is_binary(s), do: s |> String.replace("_", " ") |> objref_key_s()
  defp objref_key(:counter), do: :counter
  defp objref_key(:quota), do: :quota
  defp objref_key(:limit), do: :limit
  defp objref_key(:ct_helper), do: :"ct helper"
  defp objref_key(:ct_timeout), do: :"ct timeout"
  defp objref_key(:ct_expect), do: :"ct expectation"
  defp objref_key(:secmark), do: :secmark
  defp objref_key(:synproxy), do: :synproxy
  defp objref_key(:tunnel), do: :tunnel
  defp objref_key(other), do: raise(Error, "objref of type #{inspect(other)}")

  @objref_names %{"counter" => :counter, "quota" => :quota, "limit" => :limit, "ct helper" => :"ct helper",
                  "ct timeout" => :"ct timeout", "ct expectation" => :"ct expectation", "secmark" => :secmark,
                  "synproxy" => :synproxy, "tunnel" => :tunnel}

  defp objref_key_s(s), do: Map.get(@objref_names, s) || raise(Error, "objref of type #{inspect(s)}")

  # nft keeps a nat statement's family only in inet tables.
  # (and when the port comes from the address map: nft's is_nat_proto_map).
  defp nat_json(st, a) do
    proto_map = is_integer(Map.get(a, :reg_proto_min)) and map_part?(st, a.reg_proto_min)
    family = if st.family == :inet or proto_map, do: Map.get(a, :family), else: nil
    j = nat_common(st, a, family)
    %{a.type => j}
  end

  defp nat_common(st, a, family) do
    addr_type = if family == :ip6 or (family == nil and Map.get(a, :family) == :ip6), do: "ipv6_addr", else: "ipv4_addr"
    j = %{}
    j = if family in [:ip, :ip6], do: Map.put(j, :family, Atom.to_string(family)), else: j

    j =
      case {Map.get(a, :reg_addr_min), Map.get(a, :reg_addr_max)} do
        {nil, _} -> j
        {r, nil} -> Map.put(j, :addr, value_json(get_reg!(st, r), addr_type, 0))
        {r, r} -> Map.put(j, :addr, value_json(get_reg!(st, r), addr_type, 0))
        {r1, r2} ->
          Map.put(j, :addr, %{range: [value_json(get_reg!(st, r1), addr_type, 0), value_json(get_reg!(st, r2), addr_type, 0)]})
      end

    j =
      case {Map.get(a, :reg_proto_min), Map.get(a, :reg_proto_max)} do
        {nil, _} -> j
        {r, _} when is_integer(r) and r > 0 -> if map_part?(st, r), do: j, else: port_json(st, j, r, Map.get(a, :reg_proto_max))
        {r, nil} -> Map.put(j, :port, value_json(get_reg!(st, r), "inet_service", 0))
        {r, r} -> Map.put(j, :port, value_json(get_reg!(st, r), "inet_service", 0))
        {r1, r2} ->
          Map.put(j, :port, %{range: [value_json(get_reg!(st, r1), "inet_service", 0), value_json(get_reg!(st, r2), "inet_service", 0)]})
      end

    flags = List.wrap(Map.get(a, :flags, []))

    names =
      for {f, n} <- [proto_random: "random", proto_random_fully: "fully-random", persistent: "persistent", netmap: "netmap"],
          f in flags,
          do: n

    j =
      case names do
        [] -> j
        [one] -> Map.put(j, :flags, one)
        many -> Map.put(j, :flags, many)
      end

    if j == %{}, do: nil, else: j
  end

  defp map_part?(st, r), do: match?(%{k: :map_part}, Map.get(st.regs, reg32(r)))

  defp port_json(st, j, r, r2) when r2 in [nil, r], do: Map.put(j, :port, value_json(get_reg!(st, r), "inet_service", 0))

  defp port_json(st, j, r1, r2) do
    Map.put(j, :port, %{range: [value_json(get_reg!(st, r1), "inet_service", 0), value_json(get_reg!(st, r2), "inet_service", 0)]})
  end

  defp reject_json(_st, a) do
    case Map.get(a, :type) do
      :tcp_rst ->
        %{reject: %{type: "tcp reset"}}

      :icmpx_unreach ->
        %{reject: %{type: "icmpx", expr: Value.decode("icmpx_code", <<Map.get(a, :code, 0)>>)}}

      :icmp_unreach ->
        %{reject: %{type: "icmp", expr: Value.decode("icmp_code", <<Map.get(a, :code, 0)>>)}}

      _ ->
        %{reject: nil}
    end
  end

  # ---------------------------------------------------------------------

  defp postprocess(st), do: st
end
