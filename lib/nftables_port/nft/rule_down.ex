defmodule NFTables.Port.Nft.Rule.Down do
  @moduledoc """
  A rule's statements (libnftables JSON) -> low-level expressions, doing
  what nft's evaluation and linearization do (evaluate.c,
  netlink_linearize.c), as an engine over the generated tables:

  - a header field names its protocol's template: offset, length, byte
    order; bit fields are loaded whole bytes and masked;
  - a field whose protocol the context does not establish gets the
    dependency nft adds (`meta l4proto tcp` before `tcp dport`, `meta
    nfproto ipv4` before `ip saddr` in inet, `meta protocol` in bridge and
    netdev, `ether type 8021q` before `vlan id`), emitted before the
    statement;
  - values are encoded by the datatype of what they are compared with;
    prefixes load only the bytes they need, as nft does;
  - anonymous sets and maps become sets created with the rule
    (`__set%d`, found by their transaction id);
  - concatenations fill consecutive 32-bit registers.

  `translate/2` answers `{exprs, extra_msgs}` (the sets to create first)
  or raises `NFTables.Port.Nft.Error` naming what was wrong and where.
  """

  alias NFTables.Port.Nft.{Error, Tables, Value}

  import Bitwise

  @ll 1
  @nh 2
  @th 3
  @base_atom %{@ll => :link, @nh => :network, @th => :transport}
  @base_by_name %{"ll" => @ll, "nh" => @nh, "th" => @th}

  defstruct family: :inet, table: nil, pctx: %{}, poff: %{}, out: [], pre: [], msgs: [],
            sets: %{}, next_id: 0, path: [], want: nil

  @verdicts ~w(accept drop continue return)a

  @doc """
  Translates statements of a rule in `family`/`table`. `opts`: `sets`, the
  named sets and maps the rule may refer to (name -> set info, for a map's
  data type), `first_set_id`, the transaction id of the first anonymous
  set it creates.
  """
  @spec translate([map()], keyword()) :: {[{atom(), map()}], [tuple()], non_neg_integer()}
  def translate(stmts, opts) do
    family = Keyword.fetch!(opts, :family)

    st = %__MODULE__{
      family: family,
      table: Keyword.fetch!(opts, :table),
      pctx: NFTables.Port.Nft.Rule.Up.init_pctx(family),
      sets: Keyword.get(opts, :sets, %{}),
      next_id: Keyword.get(opts, :first_set_id, 0x4E465000)
    }

    st =
      stmts
      |> Enum.with_index()
      |> Enum.reduce(st, fn {s, i}, st ->
        st = %{st | path: [:expr, i], pre: []}
        {exprs, st} = stmt(s, st)
        %{st | out: Enum.reverse(exprs) ++ st.pre ++ st.out}
      end)

    {st.out |> Enum.reverse() |> fix_loads() |> merge_payloads(), Enum.reverse(st.msgs), st.next_id}
  end

  defp fail(st, msg), do: raise(Error, message: msg, path: st.path)

  # ---------------------------------------------------------------------
  # statements: each answers {exprs in order, st}

  defp stmt(%{match: %{left: l, right: r} = m}, st) do
    match(st, Map.get(m, :op, "=="), l, r)
  end

  defp stmt(%{} = s, st) when map_size(s) == 1 do
    [{k, v}] = Map.to_list(s)
    stmt1(k, v, st)
  end

  defp stmt(s, st), do: fail(st, "a statement must be an object with one key, got #{inspect(s)}")

  defp stmt1(v, nil, st) when v in @verdicts, do: {[{:immediate, %{dreg: 0, verdict: v}}], st}

  defp stmt1(v, %{target: chain}, st) when v in [:jump, :goto] and is_binary(chain) do
    {[{:immediate, %{dreg: 0, verdict: v, chain: chain}}], st}
  end

  defp stmt1(:counter, nil, st), do: {[{:counter, %{packets: 0, bytes: 0}}], st}

  defp stmt1(:counter, %{} = c, st) do
    {[{:counter, %{packets: Map.get(c, :packets, 0), bytes: Map.get(c, :bytes, 0)}}], st}
  end

  defp stmt1(:counter, name, st) when is_binary(name), do: {[objref(:counter, name)], st}

  defp stmt1(kind, name, st) when kind in [:quota, :limit, :"ct helper", :"ct timeout", :"ct expectation", :secmark, :synproxy] and is_binary(name) do
    {[objref(objtype(kind), name)], st}
  end

  defp stmt1(kind, %{map: %{key: key, data: data}}, st)
       when kind in [:counter, :quota, :limit, :"ct helper", :"ct timeout", :"ct expectation", :secmark, :synproxy] do
    {kexprs, kinfo, st} = load(st, key, 1)
    {set_name, set_id, st} = set_ref(st, data, kinfo, %{obj_type: objtype(kind)})
    ref = %{set_sreg: 1, set_name: set_name}
    ref = if set_id, do: Map.put(ref, :set_id, set_id), else: ref
    {kexprs ++ [{:objref, ref}], st}
  end

  defp stmt1(:notrack, nil, st), do: {[{:notrack, %{}}], st}

  defp stmt1(:log, l, st), do: {[{:log, log(l || %{})}], st}

  defp stmt1(:limit, %{} = l, st), do: {[{:limit, limit(l)}], st}

  defp stmt1(:quota, %{} = q, st), do: {[{:quota, quota(q)}], st}

  defp stmt1(:mangle, %{key: key, value: value}, st), do: mangle(st, key, value)

  defp stmt1(:vmap, %{key: key, data: data}, st) do
    {kexprs, kinfo, st} = load(st, key, 1)
    {set_name, set_id, st} = set_ref(st, data, kinfo, %{data_type: "verdict"})
    {kexprs ++ [{:lookup, lookup_attrs(1, set_name, set_id, %{dreg: 0})}], st}
  end

  defp stmt1(kind, n, st) when kind in [:snat, :dnat], do: nat(st, kind, n || %{})
  defp stmt1(:masquerade, n, st), do: nat(st, :masq, n || %{})
  defp stmt1(:redirect, n, st), do: nat(st, :redir, n || %{})

  defp stmt1(:reject, r, st), do: reject(st, r || %{})

  defp stmt1(op, %{} = s, st) when op in [:set, :map] do
    dynset(st, s)
  end

  defp stmt1(:meter, %{} = m, st), do: meter(st, m)

  defp stmt1(k, _v, st), do: fail(st, "unknown or unsupported statement #{inspect(to_string(k))}")

  defp objtype(:"ct helper"), do: :ct_helper
  defp objtype(:"ct timeout"), do: :ct_timeout
  defp objtype(:"ct expectation"), do: :ct_expect
  defp objtype(k), do: k

  defp objref(type, name), do: {:objref, %{imm_type: type, imm_name: name}}

  # ---------------------------------------------------------------------
  # match

  defp match(st, op, left, right) do
    {lexprs, info, st} = load(st, left, 1)
    {rexprs, st} = compare(st, op, info, right)
    {lexprs ++ rexprs, st}
  end

  # The expressions comparing register 1 (holding `info`) with `right`.
  defp compare(st, op, info, right) do
    cond do
      set_ref?(right) ->
        {name, id, st} = set_ref(st, right, info, %{})
        flags = if op == "!=", do: [:inv], else: []
        {[{:lookup, lookup_attrs(1, name, id, %{flags: flags})}], st}

      match?(%{range: [_, _]}, right) ->
        %{range: [a, b]} = right
        from = encode!(st, info, a)
        to = encode!(st, info, b)

        case op do
          "!=" -> {[{:range, %{sreg: 1, op: :neq, from_data: from, to_data: to}}], st}
          _ -> {[{:cmp, %{sreg: 1, op: :gte, data: from}}, {:cmp, %{sreg: 1, op: :lte, data: to}}], st}
        end

      match?(%{prefix: _}, right) ->
        %{prefix: %{addr: addr, len: plen}} = right
        prefix_compare(st, op, info, addr, plen)

      bitmask?(info) and (op == "in" or (op == "==" and is_list(right))) ->
        mask = encode!(st, info, right)
        zero = zeros(byte_size(mask))
        {[{:bitwise, %{sreg: 1, dreg: 1, len: byte_size(mask), mask: mask, xor: zero, op: :bool}}, {:cmp, %{sreg: 1, op: :neq, data: zero}}], st}

      true ->
        data = encode!(st, info, right)
        {masked, data} = field_mask(info, data)
        {masked ++ [{:cmp, %{sreg: 1, op: cmp_op(st, op), data: data}}], st}
    end
  end

  defp cmp_op(_st, "=="), do: :eq
  defp cmp_op(_st, "!="), do: :neq
  defp cmp_op(_st, "<"), do: :lt
  defp cmp_op(_st, "<="), do: :lte
  defp cmp_op(_st, ">"), do: :gt
  defp cmp_op(_st, ">="), do: :gte
  defp cmp_op(_st, "in"), do: :eq
  defp cmp_op(st, op), do: fail(st, "unknown operator #{inspect(op)}")

  defp bitmask?(%{type: t}) when is_binary(t) do
    match?(%{format: :bitmask}, Tables.datatype(t))
  end

  defp bitmask?(_), do: false

  defp zeros(n), do: :binary.copy(<<0>>, n)

  # A bit field: the loaded bytes are masked and the value shifted into place.
  # A bit field was masked by its load: the value moves into place.
  defp field_mask(%{bitfield: {mask, shift}}, data) do
    v = :binary.decode_unsigned(data) <<< shift
    {[], <<v::size(byte_size(mask) * 8)>>}
  end

  defp field_mask(_info, data), do: {[], data}

  # addr/len: nft loads only the bytes the prefix covers, and masks a
  # partial last byte.
  defp prefix_compare(st, op, info, addr, plen) do
    full = encode!(st, info, addr)
    nbytes = div(plen + 7, 8)

    if info[:load] == nil do
      fail(st, "a prefix needs a header field or key on the left")
    end

    {load_kind, load} = info.load
    load = %{load | len: nbytes}
    mask_bits = plen
    mask = <<(((1 <<< mask_bits) - 1) <<< (nbytes * 8 - mask_bits))::size(nbytes * 8)>>
    value = :binary.part(full, 0, nbytes)

    masked =
      if rem(plen, 8) == 0,
        do: [],
        else: [{:bitwise, %{sreg: 1, dreg: 1, len: nbytes, mask: mask, xor: zeros(nbytes), op: :bool}}]

    value = if rem(plen, 8) == 0, do: value, else: band_bin(value, mask)
    # The load itself is replaced: the caller emitted a full-length one.
    st = %{st | out: st.out}
    {[{:__replace_load__, {load_kind, load}}] ++ masked ++ [{:cmp, %{sreg: 1, op: cmp_op(st, op), data: value}}], st}
  end

  defp band_bin(a, b) do
    n = byte_size(a)
    <<(:binary.decode_unsigned(a) &&& :binary.decode_unsigned(b))::size(n * 8)>>
  end

  defp encode!(st, %{concat: types}, %{concat: values}) when is_list(values) do
    if length(types) != length(values), do: fail(st, "a concatenation of #{length(types)} expressions compared with #{length(values)} values")

    Enum.zip(types, values)
    |> Enum.map(fn {t, v} -> Value.pad(encode!(st, %{type: t}, v), Value.reg_bytes(t)) end)
    |> IO.iodata_to_binary()
  end

  defp encode!(st, %{type: type} = info, value) do
    value = resolve_var(value)

    case Value.encode(type, value, len_opt(info)) do
      {:ok, b} -> b
      {:error, m} -> fail(st, m)
    end
  end

  defp len_opt(%{len: len, type: t}) when is_integer(len) do
    if Value.bytes(t) == 0, do: [len: len], else: []
  end

  defp len_opt(_), do: []

  defp resolve_var(v), do: v

  # ---------------------------------------------------------------------
  # loads: an expression into register `reg`: {exprs, info, st}
  # info: %{type: datatype, len: bytes, load: {kind, attrs}, bitfield: ...}

  defp load(st, %{payload: %{protocol: proto, field: field}}, reg) do
    p = Tables.protocol(proto) || fail(st, "unknown protocol #{inspect(proto)}")
    f = Enum.find(Map.get(p, :fields, []), &(&1.name == field and is_nil(Map.get(&1, :meta_key)))) ||
          fail(st, "unknown field #{inspect(field)} of #{proto} (known: #{Enum.map_join(p.fields, ", ", & &1.name)})")

    base = base_num(p.base)
    st = ensure_protocol(st, p, base)
    off = f.offset + Map.get(st.poff, base, 0)
    byte_off = div(off, 8)
    bit_in = rem(off, 8)
    nbytes = div(bit_in + f.len + 7, 8)
    attrs = %{base: @base_atom[base], offset: byte_off, len: nbytes, dreg: reg}
    info = %{type: f.type, len: nbytes, load: {:payload, attrs}, proto: p, field: f, base: base,
             byteorder: Map.get(f, :byteorder, :big)}

    info =
      if bit_in != 0 or rem(f.len, 8) != 0 do
        shift = nbytes * 8 - bit_in - f.len
        mask = <<(((1 <<< f.len) - 1) <<< shift)::size(nbytes * 8)>>
        Map.put(info, :bitfield, {mask, shift})
      else
        info
      end

    case info do
      %{bitfield: {mask, _}} ->
        {[{:payload, attrs}, {:bitwise, %{sreg: reg, dreg: reg, len: nbytes, mask: mask, xor: zeros(nbytes), op: :bool}}], info, st}

      _ ->
        {[{:payload, attrs}], info, st}
    end
  end

  defp load(st, %{payload: %{base: base, offset: off, len: len}}, reg) do
    b = @base_by_name[base] || fail(st, "unknown payload base #{inspect(base)} (known: ll, nh, th)")
    if rem(off, 8) != 0 or rem(len, 8) != 0, do: fail(st, "raw payload offsets and lengths must be whole bytes here")
    attrs = %{base: @base_atom[b], offset: div(off, 8), len: div(len, 8), dreg: reg}
    {[{:payload, attrs}], %{type: "integer", len: div(len, 8), load: {:payload, attrs}}, st}
  end

  defp load(st, %{meta: %{key: key}}, reg) do
    k = key!(st, "meta", key)
    st = meta_dependency(st, k)
    attrs = %{key: k.key, dreg: reg}
    {[{:meta, attrs}], %{type: k.type, len: div(k.size + 7, 8), load: {:meta, attrs}, meta: k.key, byteorder: Map.get(k, :byteorder, :host)}, st}
  end

  defp load(st, %{ct: %{key: key} = c}, reg) do
    k = key!(st, "ct", key)
    attrs = %{key: k.key, dreg: reg}
    attrs = if Map.has_key?(c, :dir), do: Map.put(attrs, :dir, String.to_existing_atom(c.dir)), else: attrs
    {[{:ct, attrs}], %{type: k.type, len: div(k.size + 7, 8), load: {:ct, attrs}, byteorder: Map.get(k, :byteorder, :host)}, st}
  end

  defp load(st, %{rt: %{key: key}}, reg) do
    k = key!(st, "rt", key)
    attrs = %{key: k.key, dreg: reg}
    {[{:rt, attrs}], %{type: k.type, len: div(k.size + 7, 8)}, st}
  end

  defp load(st, %{socket: %{key: key} = s}, reg) do
    k = key!(st, "socket", key)
    attrs = %{key: k.key, dreg: reg}
    attrs = if Map.has_key?(s, :level), do: Map.put(attrs, :level, s.level), else: attrs
    {[{:socket, attrs}], %{type: k.type, len: div(k.size + 7, 8)}, st}
  end

  defp load(st, %{fib: %{result: result} = f}, reg) do
    k = Enum.find(Tables.keys("fib"), &(&1.name == result and Map.get(&1, :kind) == "result")) ||
          fail(st, "unknown fib result #{inspect(result)}")

    flag_names = List.wrap(Map.get(f, :flags, []))

    flags =
      Enum.map(flag_names, fn n ->
        (Enum.find(Tables.keys("fib"), &(&1.name == n and Map.get(&1, :kind) == "flag")) ||
           fail(st, "unknown fib flag #{inspect(n)}")).key
      end)

    attrs = %{result: k.key, flags: flags, dreg: reg}
    {[{:fib, attrs}], %{type: k.type, len: div(k.size + 7, 8)}, st}
  end

  defp load(st, %{osf: %{key: key} = o}, reg) do
    k = key!(st, "osf", key)
    ttl =
      case Map.get(o, :ttl) do
        nil -> :strict
        "loose" -> :loose
        "skip" -> :skip
        t -> fail(st, "unknown osf ttl #{inspect(t)} (known: loose, skip)")
      end

    flags = if key == "version", do: [:version], else: []
    {[{:osf, %{dreg: reg, ttl: ttl, flags: flags}}], %{type: k.type, len: div(k.size + 7, 8)}, st}
  end

  defp load(st, %{ipsec: %{key: key} = x}, reg) do
    fam = Map.get(x, :family)

    k =
      Enum.find(Tables.keys("ipsec"), &(&1.name == key and (fam == nil or Map.get(&1, :family) in [nil, fam]))) ||
        fail(st, "unknown ipsec key #{inspect(key)}")

    dir =
      case Map.get(x, :dir, "in") do
        "in" -> :in
        "out" -> :out
        d -> fail(st, "unknown ipsec direction #{inspect(d)} (known: in, out)")
      end

    {[{:xfrm, %{dreg: reg, key: k.key, dir: dir, spnum: Map.get(x, :spnum, 0)}}], %{type: k.type, len: div(k.size + 7, 8)}, st}
  end

  defp load(st, %{numgen: %{mode: mode, mod: mod} = n}, reg) do
    k = key!(st, "numgen", mode)
    attrs = %{type: k.key, modulus: mod, dreg: reg}
    attrs = if Map.has_key?(n, :offset), do: Map.put(attrs, :offset, n.offset), else: attrs
    {[{:numgen, attrs}], %{type: "integer", len: 4}, st}
  end

  defp load(st, %{concat: parts}, reg) when is_list(parts) do
    {exprs, infos, st, _} =
      Enum.reduce(parts, {[], [], st, reg32(reg)}, fn part, {ex, infos, st, r32} ->
        {e, info, st} = load(st, part, reg_name(r32))
        {ex ++ e, infos ++ [info], st, r32 + div(Value.reg_bytes(info.len), 4)}
      end)

    len = Enum.reduce(infos, 0, &(Value.reg_bytes(&1.len) + &2))
    {exprs, %{concat: Enum.map(infos, & &1.type), infos: infos, len: len, byteorder: :invalid}, st}
  end

  defp load(st, %{map: %{key: key, data: data}}, reg) do
    {kexprs, kinfo, st} = load(st, key, reg)
    dtype = st.want || map_data_type(st, data, name_of(data))
    {name, id, st} = set_ref(%{st | want: nil}, data, kinfo, %{data_type: dtype})
    {kexprs ++ [{:lookup, lookup_attrs(reg, name, id, %{dreg: reg})}], data_info(dtype), st}
  end

  defp load(st, %{} = binop, reg) when map_size(binop) == 1 and is_map_key(binop, :&) or is_map_key(binop, :|) or is_map_key(binop, :^) do
    [{op, [l, r]}] = Map.to_list(binop)
    {lexprs, info, st} = load(st, l, reg)
    v = encode!(st, info, r)
    n = byte_size(v)
    ones = :binary.copy(<<255>>, n)

    {mask, xor} =
      case op do
        :& -> {v, zeros(n)}
        :| -> {bnot_bin(v), v}
        :^ -> {ones, v}
      end

    {lexprs ++ [{:bitwise, %{sreg: reg, dreg: reg, len: n, mask: mask, xor: xor, op: :bool}}], info, st}
  end

  defp load(st, %{} = shift, reg) when is_map_key(shift, :"<<") or is_map_key(shift, :">>") do
    [{op, [l, n]}] = Map.to_list(shift)
    {lexprs, info, st} = load(st, l, reg)
    len = info.len

    {lexprs ++ [{:bitwise, %{sreg: reg, dreg: reg, len: len, op: if(op == :"<<", do: :lshift, else: :rshift), data: <<n::32-native>>}}],
     info, st}
  end

  defp load(st, other, _reg) do
    fail(st, "unknown or unsupported expression #{inspect(other, limit: 5)}")
  end

  defp bnot_bin(b) do
    n = byte_size(b)
    <<(bnot(:binary.decode_unsigned(b)) &&& (1 <<< (n * 8)) - 1)::size(n * 8)>>
  end

  defp data_info("verdict"), do: %{type: "verdict", len: 16}
  defp data_info(types) when is_list(types), do: %{concat: types, len: Enum.reduce(types, 0, &(Value.reg_bytes(&1) + &2))}
  defp data_info(type), do: %{type: type, len: Value.bytes(type)}

  defp key!(st, group, name) do
    Tables.key(group, name) ||
      Enum.find(Tables.keys(group), &(&1.name == name)) ||
      fail(st, "unknown #{group} key #{inspect(name)} (known: #{Tables.keys(group) |> Enum.map(& &1.name) |> Enum.uniq() |> Enum.join(", ")})")
  end

  defp base_num(:ll), do: @ll
  defp base_num(:nh), do: @nh
  defp base_num(:th), do: @th
  defp base_num(_), do: 0

  # 32-bit register numbering as nft's: an offset that is a multiple of
  # four uses the 128-bit register's number.
  defp reg32(r) when r in 1..4, do: 8 + (r - 1) * 4
  defp reg32(r), do: r

  defp reg_name(r32) do
    off = r32 - 8
    if rem(off, 4) == 0, do: div(off, 4) + 1, else: r32
  end

  # ---------------------------------------------------------------------
  # protocol dependencies

  # Makes sure the context has protocol `p` at `base`, emitting nft's
  # dependency match before the statement when it does not.
  defp ensure_protocol(st, p, base) do
    case Map.get(st.pctx, base) do
      name when name == p.name ->
        st

      name when is_binary(name) and name != p.name ->
        lower = Tables.protocol(name)

        if lower && (Map.get(lower, :pseudo) || stacks?(lower, p)) do
          dependency(st, p, base)
        else
          if p.name == "th" do
            st
          else
            fail(st, "conflicting protocols: #{p.name} after #{name}")
          end
        end

      nil ->
        dependency(st, p, base)
    end
  end

  defp stacks?(lower, p), do: lower.base == p.base and Enum.any?(Map.get(lower, :links, []), &(&1.proto == p.name))

  # `th` (any transport header) needs no dependency.
  defp dependency(st, %{name: "th"}, _base), do: st

  defp dependency(st, p, @th) do
    # the network layer must be known too where the family does not say
    st = put_pctx(st, @th, p.name)
    dep_match(st, {:meta, %{key: :l4proto, dreg: 1}}, <<p.id>>)
  end

  defp dependency(st, p, @nh) do
    st = put_pctx(st, @nh, p.name)

    case st.family do
      :inet ->
        nf = Enum.find(Tables.protocol("inet").links, &(&1.proto == p.name)) || fail(st, "#{p.name} in an inet table")
        dep_match(st, {:meta, %{key: :nfproto, dreg: 1}}, <<nf.value>>)

      f when f in [:bridge, :netdev, :ip, :ip6] ->
        case Map.get(st.pctx, @ll) do
          # over a vlan header, its type field names the network protocol
          "vlan" ->
            vlan = Tables.protocol("vlan")
            f = Enum.find(vlan.fields, &(&1.name == vlan.protocol_key))
            off = div(f.offset + Map.get(st.poff, @ll, 0), 8)
            dep_match(st, {:payload, %{base: :link, offset: off, len: div(f.len, 8), dreg: 1}}, <<p.id::16>>)

          _ ->
            dep_match(st, {:meta, %{key: :protocol, dreg: 1}}, <<p.id::16>>)
        end

      f ->
        fail(st, "#{p.name} header in a #{f} table")
    end
  end

  defp dependency(st, %{name: "vlan"} = p, @ll) do
    st = if st.family != :bridge and Map.get(st.pctx, @ll) != "ether", do: dev_ether(st), else: st
    # vlan stacks on ether: ether's type field says 8021q, then vlan's
    # fields follow ether's header
    ether = Tables.protocol("ether")
    f = Enum.find(ether.fields, &(&1.name == ether.protocol_key))

    st
    |> dep_match({:payload, %{base: :link, offset: div(f.offset, 8), len: div(f.len, 8), dreg: 1}}, <<p.id::16>>)
    |> put_pctx(@ll, "vlan")
    |> Map.update!(:poff, &Map.put(&1, @ll, Tables.header_bits(ether)))
  end

  defp dependency(st, %{name: "ether"}, @ll) do
    case st.family do
      :bridge -> st
      f when f in [:arp] -> fail(st, "ether header in a #{f} table")
      _ -> dev_ether(st)
    end
  end

  defp dependency(st, p, base), do: fail(st, "no dependency for #{p.name} at base #{base}")

  defp dev_ether(st) do
    st |> dep_match({:meta, %{key: :iiftype, dreg: 1}}, <<1::16-native>>) |> put_pctx(@ll, "ether")
  end

  defp put_pctx(st, base, name), do: %{st | pctx: Map.put(st.pctx, base, name)}

  defp dep_match(st, load, data) do
    %{st | pre: [{:cmp, %{sreg: 1, op: :eq, data: data}}, load | st.pre]}
  end

  # meta keys with protocol meaning update the context when matched.
  defp meta_dependency(st, _k), do: st

  # ---------------------------------------------------------------------
  # sets

  defp set_ref?(v) when is_binary(v), do: String.starts_with?(v, "@")
  defp set_ref?(%{set: _}), do: true
  defp set_ref?(_), do: false

  # A set reference (`"@name"`) or an anonymous set (`%{set: [...]}`):
  # {name, id or nil, st}; an anonymous one is created before the rule.
  defp set_ref(st, "@" <> name, _kinfo, _extra), do: {name, nil, st}

  defp set_ref(st, %{set: elems}, kinfo, extra) when is_list(elems) do
    id = st.next_id
    map? = Map.has_key?(extra, :data_type) or Enum.any?(elems, &is_list/1) or Map.has_key?(extra, :obj_type)
    name = if map? and not Map.has_key?(extra, :obj_type), do: "__map%d", else: "__set%d"
    name = if Map.has_key?(extra, :obj_type), do: "__objmap%d", else: name
    key_types = Map.get(kinfo, :concat) || [kinfo.type]
    interval = Enum.any?(elems, &interval_elem?/1)

    data_type =
      cond do
        Map.has_key?(extra, :data_type) -> extra.data_type
        map? -> infer_data_type(elems)
        true -> nil
      end

    info = %{
      field_len: (Map.get(kinfo, :infos) || []) |> Enum.map(& &1.len) |> then(&if(&1 == [], do: nil, else: &1)),
      data_types: data_types(data_type),
      data_len: data_len(data_type),
      key_types: key_types,
      key_len: key_len(kinfo),
      data_type: data_type,
      flags: [:anonymous, :constant] ++ if(interval, do: [:interval], else: []) ++ if(map? and not Map.has_key?(extra, :obj_type), do: [:map], else: []) ++ if(Map.has_key?(extra, :obj_type), do: [:object], else: []),
      obj_type: Map.get(extra, :obj_type),
      key_byteorder: Map.get(kinfo, :byteorder, :invalid),
      data_byteorder: data_byteorder(data_type)
    }

    elements = elements_down(st, info, elems)
    set_msg = anon_set_msg(st, name, id, info, elements)
    elem_msg = {:add, :element, %{family: st.family, table: st.table, set: name, set_id: id, elements: elements}}
    {name, id, %{st | msgs: [elem_msg, set_msg | st.msgs], next_id: id + 1}}
  end

  defp set_ref(st, other, _kinfo, _extra), do: fail(st, "expected a set (\"@name\" or {\"set\": [...]}), got #{inspect(other)}")

  defp interval_elem?(%{prefix: _}), do: true
  defp interval_elem?(%{range: _}), do: true
  defp interval_elem?(%{concat: parts}), do: Enum.any?(parts, &interval_elem?/1)
  defp interval_elem?([k, _]), do: interval_elem?(k)
  defp interval_elem?(%{elem: %{val: v}}), do: interval_elem?(v)
  defp interval_elem?(s) when is_binary(s), do: String.ends_with?(s, "*") and s != "*"
  defp interval_elem?(_), do: false

  defp data_byteorder(nil), do: nil
  defp data_byteorder("verdict"), do: :invalid
  defp data_byteorder(t) when is_binary(t), do: Value.byteorder(t)
  defp data_byteorder(_), do: :invalid

  defp data_types(nil), do: nil
  defp data_types("verdict"), do: nil
  defp data_types(t) when is_binary(t), do: [t]
  defp data_types(ts), do: ts

  defp data_len(nil), do: nil
  defp data_len("verdict"), do: 16
  defp data_len(t) when is_binary(t), do: Value.bytes(t)
  defp data_len(ts), do: Enum.reduce(ts, 0, &(Value.reg_bytes(&1) + &2))

  defp infer_data_type([[_, %{} = v] | _]) when is_map_key(v, :accept) or is_map_key(v, :drop) or is_map_key(v, :jump) or is_map_key(v, :goto) or is_map_key(v, :continue) or is_map_key(v, :return),
    do: "verdict"

  defp infer_data_type(_), do: nil

  defp key_len(%{concat: _, len: len}), do: len
  defp key_len(%{len: len}), do: len

  # The set nft creates for an anonymous set or map (mnl_nft_set_add):
  # size = the elements it sends, concatenated intervals described field
  # by field, user data with the byte orders and auto-merge of intervals.
  defp anon_set_msg(st, name, id, info, elements) do
    interval = :interval in info.flags
    concat = length(info.key_types) > 1
    flags = if interval and concat, do: Enum.sort([:concat | info.flags]), else: Enum.sort(info.flags)

    attrs = %{
      family: st.family,
      table: st.table,
      name: name,
      id: id,
      flags: flags,
      key_type: Value.type_id(info.key_types),
      key_len: info.key_len,
      desc_size: length(elements)
    }

    attrs = if interval and concat, do: Map.put(attrs, :desc_concat, :binary.list_to_bin(info.field_len || [])), else: attrs
    map_data = info.data_type != nil and info.obj_type == nil

    attrs =
      case info.data_type do
        nil -> attrs
        "verdict" -> Map.merge(attrs, %{data_type: 0xFFFFFF00, data_len: 16})
        t when is_binary(t) -> Map.merge(attrs, %{data_type: Value.type_id(t), data_len: Value.bytes(t)})
        ts -> Map.merge(attrs, %{data_type: Value.type_id(ts), data_len: Enum.reduce(ts, 0, &(Value.reg_bytes(&1) + &2))})
      end

    attrs = if info.obj_type, do: Map.put(attrs, :obj_type, object_type_id(info.obj_type)), else: attrs

    udata =
      NFTables.Port.Nft.Udata.set_down(%{
        key_byteorder: info.key_byteorder,
        map_data: map_data and info.data_type != "verdict",
        has_data: map_data,
        data_byteorder: info.data_byteorder,
        data_interval: false,
        merge: interval and not concat
      })

    {:add, :set, Map.put(attrs, :userdata, udata)}
  end

  @object_types %{counter: 1, quota: 2, ct_helper: 3, limit: 4, connlimit: 5, tunnel: 6,
                  ct_timeout: 7, secmark: 8, ct_expect: 9, synproxy: 10}

  defp object_type_id(t) when is_atom(t), do: Map.fetch!(@object_types, t)

  defp elements_down(st, info, elems) do
    mod = NFTables.Port.Nft.Elements

    if Code.ensure_loaded?(mod) and function_exported?(mod, :down, 2) do
      case mod.down(info, elems) do
        {:ok, es} -> es
        {:error, m} -> fail(st, m)
      end
    else
      fail(st, "set elements cannot be translated (NFTables.Port.Nft.Elements is missing)")
    end
  end

  defp lookup_attrs(sreg, name, id, extra) do
    a = Map.merge(%{sreg: sreg, set: name}, extra)
    if id, do: Map.put(a, :set_id, id), else: a
  end

  defp name_of("@" <> n), do: n
  defp name_of(_), do: nil

  defp map_data_type(st, %{set: [[_, v] | _]}, _name), do: guess_type(v) || fail(st, "cannot tell the data type of the map's values")
  defp map_data_type(st, "@" <> name, _), do: Map.get(Map.get(st.sets, name, %{}), :data_type, "integer")
  defp map_data_type(_st, _, _), do: "integer"

  defp guess_type(v) when is_integer(v), do: "integer"

  defp guess_type(v) when is_binary(v) do
    cond do
      match?({:ok, _}, :inet.parse_ipv4strict_address(String.to_charlist(v))) -> "ipv4_addr"
      match?({:ok, _}, :inet.parse_ipv6strict_address(String.to_charlist(v))) -> "ipv6_addr"
      true -> "string"
    end
  end

  defp guess_type(%{concat: parts}), do: Enum.map(parts, &guess_type/1)
  defp guess_type(_), do: nil

  # ---------------------------------------------------------------------
  # other statements

  defp mangle(st, %{payload: _} = key, value) do
    {[{:payload, l}], info, st} = load(st, key, 1)
    {vexprs, st} = value_into(st, value, info, 1)
    p = info.proto
    csum = Map.get(p, :checksum_key)
    csum_field = csum && Enum.find(p.fields, &(&1.name == csum))

    attrs = %{base: l.base, offset: l.offset, len: l.len, sreg: 1}

    attrs =
      if csum_field && csum != info.field.name do
        Map.merge(attrs, %{csum_type: Map.get(p, :checksum_type, :inet), csum_offset: div(csum_field.offset, 8)})
      else
        attrs
      end

    attrs =
      if info.field.name in Map.get(p, :pseudohdr, []), do: Map.put(attrs, :flags, [:l4csum_pseudohdr]), else: attrs

    {vexprs ++ [{:payload, attrs}], st}
  end

  defp mangle(st, %{meta: %{key: key}}, value) do
    k = key!(st, "meta", key)
    {vexprs, st} = value_into(st, value, %{type: k.type, len: div(k.size + 7, 8)}, 1)
    {vexprs ++ [{:meta, %{key: k.key, sreg: 1}}], st}
  end

  defp mangle(st, %{ct: %{key: key} = c}, value) do
    k = key!(st, "ct", key)
    {vexprs, st} = value_into(st, value, %{type: k.type, len: div(k.size + 7, 8)}, 1)
    attrs = %{key: k.key, sreg: 1}
    attrs = if Map.has_key?(c, :dir), do: Map.put(attrs, :dir, String.to_existing_atom(c.dir)), else: attrs
    {vexprs ++ [{:ct, attrs}], st}
  end

  defp mangle(st, key, _), do: fail(st, "cannot set #{inspect(key)}")

  # A value into register `reg`: a constant (immediate) or an expression.
  defp value_into(st, value, info, reg) do
    st = %{st | want: Map.get(info, :concat) || Map.get(info, :type)}

    if constant?(value) do
      data = encode!(st, info, value)
      {[{:immediate, %{dreg: reg, data: data}}], st}
    else
      {exprs, _info, st} = load(st, value, reg)
      {exprs, %{st | want: nil}}
    end
  end

  defp constant?(v) when is_binary(v) or is_integer(v) or is_boolean(v), do: not set_ref?(v)
  defp constant?(%{concat: parts}), do: Enum.all?(parts, &constant?/1)
  defp constant?(v) when is_list(v), do: true
  defp constant?(_), do: false

  @log_flags %{"tcp sequence" => :tcpseq, "tcp options" => :tcpopt, "ip options" => :ipopt, "skuid" => :uid, "ether" => :macdecode}
  @log_levels ~w(emerg alert crit err warn notice info debug audit)

  defp log(l) do
    a = %{}
    a = if Map.has_key?(l, :prefix), do: Map.put(a, :prefix, l.prefix), else: a
    a = if Map.has_key?(l, :group), do: Map.put(a, :group, l.group), else: a
    a = if Map.has_key?(l, :snaplen), do: Map.put(a, :snaplen, l.snaplen), else: a
    a = if Map.has_key?(l, :"queue-threshold"), do: Map.put(a, :qthreshold, l[:"queue-threshold"]), else: a

    a =
      case Map.get(l, :level) do
        nil -> if Map.has_key?(l, :group), do: a, else: Map.put(a, :level, :warn)
        lvl when lvl in @log_levels -> Map.put(a, :level, String.to_existing_atom(lvl))
        lvl -> raise Error, "unknown log level #{inspect(lvl)} (known: #{Enum.join(@log_levels, ", ")})"
      end

    case List.wrap(Map.get(l, :flags, [])) do
      [] -> a
      ["all"] -> Map.put(a, :flags, Map.values(@log_flags))
      fs -> Map.put(a, :flags, Enum.map(fs, &(@log_flags[&1] || raise(Error, "unknown log flag #{inspect(&1)}"))))
    end
  end

  @per %{"second" => 1, "minute" => 60, "hour" => 3600, "day" => 86_400, "week" => 604_800}
  @units %{"bytes" => 1, "kbytes" => 1024, "mbytes" => 1024 * 1024}

  defp limit(l) do
    unit = @per[Map.get(l, :per, "second")] || raise(Error, "unknown limit unit #{inspect(l[:per])}")
    bytes? = Map.has_key?(l, :rate_unit) and l.rate_unit != "packets"
    rate = Map.fetch!(l, :rate) * if(bytes?, do: @units[l.rate_unit], else: 1)
    burst = Map.get(l, :burst, if(bytes?, do: 0, else: 5)) * if(bytes?, do: @units[Map.get(l, :burst_unit, "bytes")], else: 1)

    a = %{rate: rate, unit: unit, burst: burst, type: if(bytes?, do: :pkt_bytes, else: :pkts), flags: []}
    if Map.get(l, :inv), do: %{a | flags: [:inv]}, else: a
  end

  defp quota(q) do
    bytes = Map.fetch!(q, :val) * @units[Map.get(q, :val_unit, "bytes")]
    a = %{bytes: bytes, flags: if(Map.get(q, :inv), do: [:inv], else: [])}

    case Map.get(q, :used) do
      nil -> a
      u -> Map.put(a, :consumed, u * @units[Map.get(q, :used_unit, "bytes")])
    end
  end

  @nat_flags %{"random" => :proto_random, "fully-random" => :proto_random_fully, "persistent" => :persistent, "netmap" => :netmap}

  defp nat(st, kind, n) do
    family =
      case Map.get(n, :family) do
        "ip" -> :ip
        "ip6" -> :ip6
        nil -> if st.family in [:ip, :ip6], do: st.family, else: nil
        f -> fail(st, "unknown nat family #{inspect(f)}")
      end

    if kind in [:snat, :dnat] and st.family == :inet and Map.has_key?(n, :addr) and family == nil,
      do: fail(st, "ip or ip6 must be specified with address for inet tables")

    addr_type = if family == :ip6, do: "ipv6_addr", else: "ipv4_addr"
    flags = Enum.map(List.wrap(Map.get(n, :flags, [])), &(@nat_flags[&1] || fail(st, "unknown nat flag #{inspect(&1)}")))

    {exprs, attrs, st} =
      case Map.get(n, :addr) do
        nil ->
          {[], %{}, st}

        %{map: %{data: d}} = m ->
          want = if concat_data?(d), do: [addr_type, "inet_service"], else: addr_type
          {e, info, st} = load(%{st | want: want}, m, 1)

          case info do
            %{concat: [_, _]} -> {e, %{reg_addr_min: 1, reg_addr_max: 1, reg_proto_min: 9, reg_proto_max: 9, flags: [:map_ips, :proto_specified]}, st}
            _ -> {e, %{reg_addr_min: 1, reg_addr_max: 1, flags: [:map_ips]}, st}
          end

        %{range: [a, b]} ->
          {[{:immediate, %{dreg: 1, data: encode!(st, %{type: addr_type}, a)}}, {:immediate, %{dreg: 2, data: encode!(st, %{type: addr_type}, b)}}],
           %{reg_addr_min: 1, reg_addr_max: 2, flags: [:map_ips]}, st}

        a ->
          {[{:immediate, %{dreg: 1, data: encode!(st, %{type: addr_type}, a)}}], %{reg_addr_min: 1, reg_addr_max: 1, flags: [:map_ips]}, st}
      end

    port_reg = Map.get(attrs, :reg_addr_max, 0) + 1

    {exprs, attrs} =
      case Map.get(n, :port) do
        nil ->
          {exprs, attrs}

        %{range: [a, b]} ->
          {exprs ++ [{:immediate, %{dreg: port_reg, data: encode!(st, %{type: "inet_service"}, a)}}, {:immediate, %{dreg: port_reg + 1, data: encode!(st, %{type: "inet_service"}, b)}}],
           Map.merge(attrs, %{reg_proto_min: port_reg, reg_proto_max: port_reg + 1, flags: Map.get(attrs, :flags, []) ++ [:proto_specified]})}

        p ->
          {exprs ++ [{:immediate, %{dreg: port_reg, data: encode!(st, %{type: "inet_service"}, p)}}],
           Map.merge(attrs, %{reg_proto_min: port_reg, reg_proto_max: port_reg, flags: Map.get(attrs, :flags, []) ++ [:proto_specified]})}
      end

    attrs = Map.update(attrs, :flags, flags, &(&1 ++ flags))
    attrs = if attrs.flags == [], do: Map.delete(attrs, :flags), else: attrs

    case kind do
      k when k in [:snat, :dnat] ->
        a = Map.merge(attrs, %{type: k})
        a = if family, do: Map.put(a, :family, family), else: a
        {exprs ++ [{:nat, a}], st}

      k ->
        {exprs ++ [{k, attrs}], st}
    end
  end

  defp concat_data?(%{set: [[_, %{concat: _}] | _]}), do: true
  defp concat_data?(_), do: false

  defp reject(st, r) do
    case Map.get(r, :type) do
      nil ->
        {[{:reject, %{type: :icmpx_unreach, code: 1}}], st} |> reject_family(st, nil)

      "tcp reset" ->
        st = ensure_protocol(st, Tables.protocol("tcp"), @th)
        {[{:reject, %{type: :tcp_rst, code: 0}}], st}

      "icmpx" ->
        code = encode!(st, %{type: "icmpx_code"}, Map.get(r, :expr, "port-unreachable"))
        {[{:reject, %{type: :icmpx_unreach, code: :binary.decode_unsigned(code)}}], st}

      t when t in ["icmp", "icmpv6"] ->
        proto = if t == "icmp", do: "ip", else: "ip6"
        st = if st.family in [:inet, :bridge, :netdev], do: ensure_protocol(st, Tables.protocol(proto), @nh), else: st
        dt = if t == "icmp", do: "icmp_code", else: "icmpv6_code"
        code = encode!(st, %{type: dt}, Map.get(r, :expr, "port-unreachable"))
        {[{:reject, %{type: :icmp_unreach, code: :binary.decode_unsigned(code)}}], st}

      t ->
        fail(st, "unknown reject type #{inspect(t)}")
    end
  end

  # A plain reject: icmpx in inet (and bridge/netdev), icmp port
  # unreachable in ip, icmpv6 in ip6, as nft chooses.
  defp reject_family({_exprs, st}, st0, _) do
    case st0.family do
      :ip -> {[{:reject, %{type: :icmp_unreach, code: 3}}], st}
      :ip6 -> {[{:reject, %{type: :icmp_unreach, code: 4}}], st}
      _ -> {[{:reject, %{type: :icmpx_unreach, code: 1}}], st}
    end
  end

  defp dynset(st, s) do
    op = Map.get(s, :op, "add")
    {set_name, elem, data} =
      cond do
        Map.has_key?(s, :map) -> {s.map, s.elem, Map.get(s, :data)}
        true -> {Map.fetch!(s, :set), s.elem, nil}
      end

    "@" <> name = set_name
    {key, timeout} =
      case elem do
        %{elem: %{val: v} = e} -> {v, Map.get(e, :timeout)}
        v -> {v, nil}
      end

    types = st.sets |> Map.get(name, %{}) |> Map.get(:key_types)
    {kexprs, _kinfo, st} = value_into_key(st, key, 1, types)
    attrs = %{op: String.to_existing_atom(op), sreg_key: 1, set_name: name}
    attrs = if timeout, do: Map.put(attrs, :timeout, timeout * 1000), else: attrs

    {dexprs, attrs, st} =
      case data do
        nil -> {[], attrs, st}
        d ->
          {e, st} = value_into(st, d, %{type: map_data_type(st, "@" <> name, name), len: nil}, 2)
          {e, Map.put(attrs, :sreg_data, 2), st}
      end

    stmts = List.wrap(Map.get(s, :stmt, []))

    attrs =
      case stmts do
        [] -> attrs
        list ->
          exprs = Enum.flat_map(list, fn x -> x |> stmt(%{st | pre: []}) |> elem(0) end)
          Map.put(attrs, :exprs, exprs)
      end

    {kexprs ++ dexprs ++ [{:dynset, attrs}], st}
  end

  defp value_into_key(st, %{concat: parts} = key, reg, types) when is_list(types) and length(types) == length(parts) do
    if Enum.all?(parts, &constant?/1), do: fail(st, "a set update needs a key expression")

    {exprs, infos, st, _} =
      Enum.reduce(Enum.zip(parts, types), {[], [], st, reg32(reg)}, fn {part, t}, {ex, infos, st, r32} ->
        {e, info, st} =
          if constant?(part) do
            data = encode!(st, %{type: t}, part)
            {[{:immediate, %{dreg: reg_name(r32), data: data}}], %{type: t, len: byte_size(data)}, st}
          else
            load(st, part, reg_name(r32))
          end

        {ex ++ e, infos ++ [info], st, r32 + div(Value.reg_bytes(info.len), 4)}
      end)

    _ = key
    {exprs, %{concat: Enum.map(infos, & &1.type), infos: infos}, st}
  end

  defp value_into_key(st, key, reg, _types) do
    if constant?(key), do: fail(st, "a set update needs a key expression"), else: load(st, key, reg)
  end

  # A meter is a dynamic set of its own, created with the rule (nft names
  # it and flags it anonymous and dynamic).
  defp meter(st, m) do
    name = Map.fetch!(m, :name)
    {kexprs, info, st} = load(st, m.key, 1)
    {sexprs, _} = stmt(m.stmt, %{st | pre: []})
    id = st.next_id
    types = Map.get(info, :concat) || [info.type]

    set =
      {:add, :set,
       %{family: st.family, table: st.table, name: name, id: id, flags: [:anonymous, :eval],
         key_type: Value.type_id(types), key_len: info.len, desc_size: Map.get(m, :size, 0),
         userdata: NFTables.Port.Nft.Udata.set_down(%{key_byteorder: Map.get(info, :byteorder, :invalid)})}}

    st = %{st | msgs: [set | st.msgs], next_id: id + 1}
    {kexprs ++ [{:dynset, %{op: :add, sreg_key: 1, set_name: name, set_id: id, exprs: sexprs}}], st}
  end

  # nft merges matches of adjacent header bytes into one load and one
  # compare (rule.c stmt_reduce): on the link layer, or where the merged
  # load still fits 4 bytes.
  defp merge_payloads([{:payload, %{dreg: 1} = a}, {:cmp, %{op: :eq, sreg: 1} = c},
                       {:payload, %{dreg: 1} = b}, {:cmp, %{op: :eq, sreg: 1} = d} | rest] = list) do
    {first, fd, second, sd} = if a.offset <= b.offset, do: {a, c.data, b, d.data}, else: {b, d.data, a, c.data}
    total = first.len + second.len

    if Map.keys(a) -- [:sreg] == Map.keys(b) -- [:sreg] and a.base == b.base and first.offset + first.len == second.offset and
         total <= 16 and (a.base == :link or total <= 4) and not Map.has_key?(a, :sreg) do
      merge_payloads([{:payload, %{first | len: total}}, {:cmp, %{c | data: fd <> sd}} | rest])
    else
      [hd(list) | merge_payloads(tl(list))]
    end
  end

  defp merge_payloads([x | rest]), do: [x | merge_payloads(rest)]
  defp merge_payloads([]), do: []

  @doc false
  # The prefix compare replaces the full-length load the left side made.
  def fix_loads(exprs), do: fix_loads(exprs, [])

  defp fix_loads([], acc), do: Enum.reverse(acc)

  defp fix_loads([{kind, _} = _load, {:__replace_load__, {kind, new}} | rest], acc),
    do: fix_loads(rest, [{kind, new} | acc])

  defp fix_loads([x | rest], acc), do: fix_loads(rest, [x | acc])
end
