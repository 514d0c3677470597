defmodule NFTables.Port.Nft.Objects do
  @moduledoc """
  Tables, chains, sets and maps, elements, flowtables and the stateful
  objects (counter, quota, limit, ct helper, ct timeout, ct expectation,
  secmark, synproxy) between the port's low-level messages and libnftables
  JSON (nft 1.0.6), both ways.

  `up/2` gives, for one message of a dump or listing, the JSON object
  `nft -j list ruleset` prints for it (key for key), plus the keys below
  where nft 1.0.6 loses data. `down/3` gives, for one JSON command object,
  the messages nft 1.0.6 itself sends for it.

  ## Keys the port's JSON adds to nft 1.0.6's

  nft 1.0.6 ignores keys it does not know when it reads JSON, so a document
  with these keys still loads into nft; `strip_additions/1` removes them to
  get exactly what nft prints.

    * table: `"comment"` (nft 1.0.6 prints no table comment in JSON).
    * chain: `"comment"`; `"dev"` (a base chain's device: a string, or a
      list for several; nft 1.0.6 prints neither when listing); `"flags"`:
      `["offload"]` (a hardware offloaded chain).
    * set/map: `"typeof"`: `%{key: hex, data: hex, key_byteorder: "big",
      data_byteorder: "host"}`, the raw `typeof` expressions of the set's
      user data, hex encoded (nft 1.0.6 prints the datatype only, e.g.
      "integer" for `typeof vlan id`), with the byte order of the key (data)
      where it is not the datatype's (a payload field's integer is big
      endian);
      `"dynamic": true` (flag dynamic, NFT_SET_EVAL, which nft 1.0.6's JSON
      neither prints nor reads); `"auto-merge": true`;
      `"key-len"` / `"data-len"` (bytes, where the datatype does not give
      them, e.g. typeof string or integer keys); `"field-len"` (the field
      lengths of a concatenated interval key, where the datatypes do not
      give them); `"desc-size"` (the size nft gave a constant set, where it
      is not the one nft would compute); `"userdata"` (hex: the set's whole
      user data, only where the keys above do not rebuild it byte for byte).
    * element: `"stmt"`: all of an element's statements, in order, where
      it has more than one (nft 1.0.6 prints only the first, as a key of
      the element's object).
    * flowtable: `"flags"`: `["offload"]`, `"counter": true`.
    * the stateful objects: nothing is lost.
    * tunnel objects (nft 1.0.6 has no syntax or JSON for them) come up as
      `%{tunnel: attrs}`, the low-level attributes.
  """

  import Bitwise

  alias NFTables.Port.Nft.{Elements, Udata, Value}

  @verdict_type 0xFFFFFF00

  # NFT_OBJECT_* kinds and their JSON names
  @obj_kinds [
    counter: {1, "counter"},
    quota: {2, "quota"},
    ct_helper: {3, "ct helper"},
    limit: {4, "limit"},
    connlimit: {5, "ct count"},
    tunnel: {6, "tunnel"},
    ct_timeout: {7, "ct timeout"},
    secmark: {8, "secmark"},
    ct_expect: {9, "ct expectation"},
    synproxy: {10, "synproxy"}
  ]

  @obj_json_keys %{
    counter: :counter,
    quota: :quota,
    ct_helper: :"ct helper",
    limit: :limit,
    ct_timeout: :"ct timeout",
    secmark: :secmark,
    ct_expect: :"ct expectation",
    synproxy: :synproxy
  }

  @families %{
    "ip" => :ip,
    "ip6" => :ip6,
    "inet" => :inet,
    "arp" => :arp,
    "bridge" => :bridge,
    "netdev" => :netdev
  }

  @nfproto %{
    0 => "unspec",
    1 => "inet",
    2 => "ip",
    3 => "arp",
    5 => "netdev",
    7 => "bridge",
    10 => "ip6"
  }

  # the concatenation typeof stub nft writes for `type a . b` keys
  @concat_stub <<0, 4, 13, 0, 0, 0, 1, 0>>

  # =====================================================================
  # up

  @doc """
  The JSON object `nft -j list ruleset` prints for one message (plus the
  port's added keys), or nil for messages nft does not list as objects
  (elements: they print inside their set; anonymous sets: inside the rule
  that uses them).

  `ctx`: `%{msgs: msgs}` (the messages of the table, for a set's elements)
  and/or `%{elements: %{{family, table, set} => [elem]}}`.
  """
  @spec up(NFTables.Port.msg(), map()) :: map() | nil
  def up(msg, ctx \\ %{})

  def up({_verb, :table, a}, _ctx) do
    t =
      %{family: fam(a.family), name: a.name}
      |> put_handle(a)
      |> maybe(:flags, table_flags(Map.get(a, :flags, [])))
      |> maybe(:comment, Udata.comment(Map.get(a, :userdata)))

    %{table: t}
  end

  def up({_verb, :chain, a}, _ctx) do
    c =
      %{family: fam(a.family), table: a.table, name: a.name}
      |> put_handle(a)

    c =
      if base_chain?(a) do
        c
        |> Map.put(:type, Map.get(a, :type, "filter"))
        |> Map.put(:hook, Atom.to_string(Map.get(a, :hooknum)))
        |> Map.put(:prio, Map.get(a, :prio, 0))
        |> Map.put(:policy, Atom.to_string(Map.get(a, :policy, :accept)))
        |> maybe(:dev, chain_devs(a))
      else
        c
      end

    c =
      c
      |> maybe(:comment, Udata.comment(Map.get(a, :userdata)))
      |> maybe(:flags, if(:hw_offload in List.wrap(Map.get(a, :flags, [])), do: ["offload"]))

    %{chain: c}
  end

  def up({_verb, :set, a}, ctx) do
    if :anonymous in List.wrap(Map.get(a, :flags, [])), do: nil, else: set_up(a, ctx)
  end

  def up({_verb, :element, _a}, _ctx), do: nil

  def up({_verb, :flowtable, a}, _ctx) do
    flags = List.wrap(Map.get(a, :flags, []))

    f =
      %{family: fam(a.family), name: a.name, table: a.table}
      |> put_handle(a)
      |> Map.put(:hook, Atom.to_string(Map.get(a, :hooknum, :ingress)))
      |> Map.put(:prio, Map.get(a, :prio, 0))
      |> maybe(:dev, one_or_list(Map.get(a, :devices, [])))
      |> maybe(:flags, if(:hw_offload in flags, do: ["offload"]))
      |> maybe(:counter, if(:counter in flags, do: true))

    %{flowtable: f}
  end

  def up({_verb, :tunnel, a}, _ctx), do: %{tunnel: a}

  def up({_verb, kind, a}, _ctx) when is_map_key(@obj_json_keys, kind) do
    o =
      %{family: fam(a.family), name: a.name, table: a.table}
      |> put_handle(a)
      |> maybe(:comment, Udata.comment(Map.get(a, :userdata)))
      |> Map.merge(obj_body(kind, a))

    %{Map.fetch!(@obj_json_keys, kind) => o}
  end

  def up(_msg, _ctx), do: nil

  defp put_handle(m, a),
    do: if(Map.has_key?(a, :handle), do: Map.put(m, :handle, a.handle), else: m)

  defp maybe(m, _k, nil), do: m
  defp maybe(m, _k, []), do: m
  defp maybe(m, k, v), do: Map.put(m, k, v)

  defp fam(f) when is_atom(f), do: Atom.to_string(f)
  defp fam(f), do: to_string(f)

  defp one_or_list([]), do: nil
  defp one_or_list([one]), do: one
  defp one_or_list(many), do: many

  defp table_flags(flags) do
    names =
      flags
      |> List.wrap()
      |> Enum.map(fn
        :dormant -> "dormant"
        :owner -> "owner"
        other -> to_string(other)
      end)

    one_or_list(names)
  end

  defp base_chain?(a), do: Map.has_key?(a, :hooknum) or :base in List.wrap(Map.get(a, :flags, []))

  defp chain_devs(a) do
    case Map.get(a, :devices) do
      [_ | _] = d -> one_or_list(d)
      _ -> Map.get(a, :dev)
    end
  end

  # --- stateful objects -------------------------------------------------

  defp obj_body(:counter, a),
    do: %{packets: Map.get(a, :packets, 0), bytes: Map.get(a, :bytes, 0)}

  defp obj_body(:quota, a) do
    %{
      bytes: Map.get(a, :bytes, 0),
      used: Map.get(a, :consumed, 0),
      inv: band(int_flags(a), 1) == 1
    }
  end

  defp obj_body(:secmark, a), do: %{context: Map.get(a, :ctx, "")}

  defp obj_body(:ct_helper, a) do
    %{
      type: Map.get(a, :helper, ""),
      protocol: proto_json(Map.get(a, :l4proto, 0)),
      l3proto: nfproto(Map.get(a, :l3proto, 0))
    }
  end

  defp obj_body(:ct_timeout, a) do
    l4 = Map.get(a, :l4proto, 0)

    %{
      protocol: proto_json(l4),
      l3proto: nfproto(Map.get(a, :l3proto, 0)),
      policy: timeout_policy_json(l4, Map.get(a, :array))
    }
  end

  defp obj_body(:ct_expect, a) do
    %{
      protocol: proto_json(Map.get(a, :l4proto, 0)),
      dport: Map.get(a, :dport, 0),
      timeout: Map.get(a, :timeout, 0),
      size: Map.get(a, :size, 0),
      l3proto: nfproto(Map.get(a, :l3proto, 0))
    }
  end

  defp obj_body(:limit, a) do
    bytes = Map.get(a, :type, 0) in [1, :pkt_bytes]
    rate = Map.get(a, :rate, 0)
    burst = Map.get(a, :burst, 0)

    {rate, rate_unit, burst, burst_unit} =
      if bytes do
        {r, ru} = Elements.data_unit(rate)
        {b, bu} = Elements.data_unit(burst)
        {r, ru, b, bu}
      else
        {rate, nil, burst, nil}
      end

    %{rate: rate, per: Elements.unit_name(Map.get(a, :unit, 1))}
    |> maybe(:inv, if(band(int_flags(a), 1) == 1, do: true))
    |> maybe(:rate_unit, rate_unit)
    |> then(fn m ->
      if burst != 0, do: m |> Map.put(:burst, burst) |> maybe(:burst_unit, burst_unit), else: m
    end)
  end

  defp obj_body(:synproxy, a) do
    f = int_flags(a)

    # NF_SYNPROXY_OPT_TIMESTAMP 8, _SACK_PERM 4 (_MSS 1 and _WSCALE 2 go
    # with the values)
    flags =
      if(band(f, 0x8) != 0, do: ["timestamp"], else: []) ++
        if(band(f, 0x4) != 0, do: ["sack-perm"], else: [])

    %{mss: Map.get(a, :mss, 0), wscale: Map.get(a, :wscale, 0)} |> maybe(:flags, flags)
  end

  defp int_flags(a) do
    case Map.get(a, :flags, 0) do
      n when is_integer(n) -> n
      l when is_list(l) -> Enum.reduce(l, 0, fn f, acc -> bor(acc, flag_bit(f)) end)
      _ -> 0
    end
  end

  defp flag_bit(:inv), do: 1
  defp flag_bit(:depleted), do: 2
  defp flag_bit(:mss), do: 1
  defp flag_bit(:wscale), do: 2
  defp flag_bit(:sack_perm), do: 4
  defp flag_bit(:timestamp), do: 8
  defp flag_bit(_), do: 0

  defp proto_json(n), do: Value.decode("inet_proto", <<n>>)

  defp nfproto(n), do: Map.get(@nfproto, n, "unknown")

  # libnftnl NFTNL_CTTIMEOUT_* states and nft's defaults (rule.c)
  @tcp_states ~w(syn_sent syn_recv established fin_wait close_wait last_ack time_wait close syn_sent2 retrans unack)a
  @tcp_defaults [120, 60, 432_000, 120, 60, 30, 120, 10, 120, 300, 300]
  @udp_states ~w(unreplied replied)a
  @udp_defaults [30, 120]

  defp timeout_table(6), do: {@tcp_states, @tcp_defaults}
  defp timeout_table(17), do: {@udp_states, @udp_defaults}
  defp timeout_table(_), do: {[], []}

  defp timeout_policy_json(l4, array) do
    {states, defaults} = timeout_table(l4)
    values = if is_binary(array), do: for(<<v::32-native <- array>>, do: v), else: []

    pol =
      [states, defaults, values]
      |> Enum.zip()
      |> Enum.reject(fn {_s, d, v} -> d == v end)
      |> Map.new(fn {s, _d, v} -> {s, v} end)

    if pol == %{}, do: nil, else: pol
  end

  # --- sets -------------------------------------------------------------

  @doc """
  What rules and elements need to know of a set, from its message:
  `%{key_types, key_len, key_byteorder, key_byteorders, field_len,
  data_type ("verdict", a type name or nil), data_types, data_len,
  data_byteorder, data_interval, obj_type, flags, merge, comment,
  typeof_key, typeof_data, desc_size, family, table, name}`. This is the
  `set_info` of `NFTables.Port.Nft.Elements`.
  """
  @spec set_info(map()) :: map()
  def set_info(a) do
    {:ok, ud} =
      case Udata.set_up(Map.get(a, :userdata)) do
        {:ok, u} -> {:ok, u}
        {:error, _} -> Udata.set_up(nil)
      end

    flags = List.wrap(Map.get(a, :flags, []))
    key_types = Value.type_names(Map.get(a, :key_type, 4), Map.get(a, :key_len))

    {data_type, data_types} =
      cond do
        :map in flags ->
          case Map.get(a, :data_type) do
            @verdict_type ->
              {"verdict", ["verdict"]}

            nil ->
              {nil, []}

            id ->
              case Value.type_names(id, Map.get(a, :data_len)) do
                [one] -> {one, [one]}
                many -> {Enum.join(many, " . "), many}
              end
          end

        true ->
          {nil, []}
      end

    field_len =
      case Map.get(a, :desc_concat) do
        b when is_binary(b) and byte_size(b) > 0 -> :binary.bin_to_list(b)
        _ -> nil
      end

    %{
      family: Map.get(a, :family),
      table: Map.get(a, :table),
      name: Map.get(a, :name),
      key_types: key_types,
      key_len: Map.get(a, :key_len, 0),
      key_byteorder: ud.key_byteorder,
      key_byteorders: typeof_byteorders(ud.key_typeof, key_types),
      field_len: field_len,
      data_type: data_type,
      data_types: data_types,
      data_len: Map.get(a, :data_len, 0),
      data_byteorder: ud.data_byteorder,
      data_byteorders:
        if(length(data_types) > 1, do: typeof_byteorders(ud.data_typeof, data_types)),
      data_interval: ud.data_interval == true,
      obj_type: obj_type_name(Map.get(a, :obj_type)),
      flags: flags,
      merge: ud.merge,
      comment: ud.comment,
      typeof_key: ud.key_typeof,
      typeof_data: ud.data_typeof,
      desc_size: Map.get(a, :desc_size),
      set_exprs: length(Map.get(a, :exprs) || [])
    }
  end

  defp obj_type_name(nil), do: nil

  defp obj_type_name(n) do
    Enum.find_value(@obj_kinds, fn {_k, {id, name}} -> if id == n, do: name end) || n
  end

  # The byte order of each field of a typeof concatenation, as far as the
  # expression kinds tell it: payload and exthdr fields are big endian; the
  # others keep their datatype's.
  defp typeof_byteorders(nil, _types), do: nil

  defp typeof_byteorders(bin, types) when length(types) > 1 do
    kinds = typeof_kinds(bin)

    if length(kinds) == length(types) do
      Enum.zip_with(kinds, types, fn k, t ->
        cond do
          k in [7, 8] and Value.byteorder(t) != :host -> :big
          k in [9, 12, 15, 27] and t == "integer" -> :host
          true -> Value.byteorder(t)
        end
      end)
    end
  end

  defp typeof_byteorders(_bin, _types), do: nil

  # the expression kinds (enum expr_types) of a typeof TLV: one, or those
  # of a concatenation (13)
  defp typeof_kinds(bin) do
    with {:ok, tlvs} <- Udata.parse(bin),
         {0, <<kind::32-native>>} <- List.keyfind(tlvs, 0, 0) do
      case {kind, List.keyfind(tlvs, 1, 0)} do
        {13, {1, data}} ->
          case Udata.parse(data) do
            {:ok, nests} ->
              for {_i, nest} <- nests,
                  {:ok, sub} <- [Udata.parse(nest)],
                  {0, <<k::32-native>>} <- [List.keyfind(sub, 0, 0)],
                  do: k

            _ ->
              []
          end

        _ ->
          [kind]
      end
    else
      _ -> []
    end
  end

  defp set_elements(a, ctx) do
    key = {a.family, a.table, a.name}

    cond do
      is_map(Map.get(ctx, :elements)) and Map.has_key?(ctx.elements, key) ->
        Map.get(ctx.elements, key)

      is_list(Map.get(ctx, :msgs)) ->
        for {_, :element, e} <- ctx.msgs,
            e.family == a.family and e.table == a.table and e.set == a.name,
            el <- Map.get(e, :elements, []),
            do: el

      true ->
        []
    end
  end

  defp set_up(a, ctx) do
    si = set_info(a)
    flags = si.flags
    constant = :constant in flags

    {kind, map_json} =
      cond do
        :map in flags -> {:map, si.data_type}
        :object in flags -> {:map, si.obj_type}
        true -> {:set, nil}
      end

    elems = Elements.up(si, set_elements(a, ctx))

    s =
      %{family: fam(a.family), name: a.name, table: a.table, type: one_or_list(si.key_types)}
      |> put_handle(a)
      |> maybe(:comment, si.comment)
      |> maybe(:map, map_json)
      |> maybe(:policy, if(not constant and Map.get(a, :policy) == :memory, do: "memory"))
      |> maybe(:size, if(not constant and (Map.get(a, :desc_size) || 0) != 0, do: a.desc_size))
      |> maybe(:flags, json_set_flags(flags))
      |> maybe(:timeout, if((Map.get(a, :timeout) || 0) != 0, do: div(a.timeout, 1000)))
      |> maybe(
        :"gc-interval",
        if((Map.get(a, :gc_interval) || 0) != 0, do: div(a.gc_interval, 1000))
      )
      |> maybe(:elem, elems)
      |> maybe(:stmt, Enum.map(Map.get(a, :exprs, []) || [], &Elements.stmt_json(&1, true)))

    s = add_set_additions(s, a, si)
    %{kind => s}
  end

  defp json_set_flags(flags) do
    for {f, n} <- [constant: "constant", interval: "interval", timeout: "timeout"],
        f in flags,
        do: n
  end

  # the port's added keys: what nft 1.0.6's JSON does not say
  defp add_set_additions(s, a, si) do
    s =
      s
      |> maybe(:typeof, typeof_json(si))
      |> maybe(:dynamic, if(:eval in si.flags, do: true))
      |> maybe(:"auto-merge", if(si.merge, do: true))

    # what down would rebuild from the JSON so far
    derived = derived_set_attrs(s, si)

    s =
      s
      |> maybe(
        :"key-len",
        if(derived.key_len != Map.get(a, :key_len, 0), do: Map.get(a, :key_len))
      )
      |> maybe(
        :"data-len",
        if(:map in si.flags and derived.data_len != Map.get(a, :data_len, 0),
          do: Map.get(a, :data_len)
        )
      )
      |> maybe(
        :"field-len",
        if(si.field_len && derived.field_len != si.field_len, do: si.field_len)
      )

    # a typeof key's byte order is its expression's (a payload integer is
    # big endian): kept with the typeof where the datatype does not give it
    s =
      case s do
        %{typeof: t} ->
          {:ok, ud} = Udata.set_up(Map.get(a, :userdata))
          dud = derived_udata(s, si)

          t =
            t
            |> maybe(
              :key_byteorder,
              if(dud && dud.key_byteorder != ud.key_byteorder, do: bo_name(ud.key_byteorder))
            )
            |> maybe(
              :data_byteorder,
              if(dud && dud.data_byteorder != ud.data_byteorder, do: bo_name(ud.data_byteorder))
            )

          %{s | typeof: t}

        _ ->
          s
      end

    derived = derived_set_attrs(s, si)

    maybe(
      s,
      :userdata,
      if(derived.userdata != (Map.get(a, :userdata) || <<>>),
        do: Udata.hex(Map.get(a, :userdata) || <<>>)
      )
    )
  end

  defp derived_udata(s, si) do
    case derived_set_attrs(s, si) do
      %{userdata: u} when is_binary(u) ->
        {:ok, ud} = Udata.set_up(u)
        ud

      _ ->
        nil
    end
  end

  defp bo_name(nil), do: nil
  defp bo_name(a) when is_atom(a), do: Atom.to_string(a)
  defp bo_name(n), do: n

  defp bo_atom(nil), do: nil
  defp bo_atom(s) when s in ["host", "big", "invalid"], do: String.to_existing_atom(s)
  defp bo_atom(n) when is_integer(n), do: n
  defp bo_atom(_), do: nil

  # ---- the ONE place that will call the rule expression translation ------
  # (NFTables.Port.Nft.Rule, the integrator's): typeof expressions of a set.
  # Until it is wired, the typeof user data stays raw, as hex.
  @doc false
  @spec typeof_json(map()) :: map() | nil
  def typeof_json(si) do
    key = if si.typeof_key not in [nil, @concat_stub], do: Udata.hex(si.typeof_key)
    data = if si.typeof_data not in [nil, @concat_stub], do: Udata.hex(si.typeof_data)

    case {key, data} do
      {nil, nil} -> nil
      _ -> %{} |> maybe(:key, key) |> maybe(:data, data)
    end
  end

  @doc false
  @spec typeof_down(map() | nil) :: {:ok, {binary() | nil, binary() | nil}} | {:error, String.t()}
  def typeof_down(nil), do: {:ok, {nil, nil}}

  def typeof_down(%{} = t) do
    with {:ok, k} <- unhex_opt(Map.get(t, :key)),
         {:ok, d} <- unhex_opt(Map.get(t, :data)) do
      {:ok, {k, d}}
    end
  end

  def typeof_down(other),
    do: {:error, "typeof: expected %{key: hex, data: hex}, got: #{inspect(other)}"}

  # ---- end of the typeof hook ----------------------------------------------

  defp unhex_opt(nil), do: {:ok, nil}
  defp unhex_opt(s), do: Udata.unhex(s)

  @doc """
  The JSON objects of `msgs` with the port's added keys removed: exactly
  what nft 1.0.6 prints (`"dev"` of chains and the `"flags"`/`"counter"` of
  flowtables and chains that nft 1.0.6 does not print included).
  """
  @spec strip_additions(map()) :: map()
  def strip_additions(%{table: t}), do: %{table: Map.delete(t, :comment)}
  def strip_additions(%{chain: c}), do: %{chain: Map.drop(c, [:comment, :dev, :flags])}
  def strip_additions(%{flowtable: f}), do: %{flowtable: Map.drop(f, [:flags, :counter])}

  def strip_additions(%{} = m) when map_size(m) == 1 do
    case Map.to_list(m) do
      [{k, s}] when k in [:set, :map] ->
        s =
          Map.drop(s, [
            :typeof,
            :dynamic,
            :"auto-merge",
            :"key-len",
            :"data-len",
            :"field-len",
            :"desc-size",
            :userdata
          ])

        s = if is_list(s[:elem]), do: Map.put(s, :elem, Enum.map(s.elem, &strip_elem/1)), else: s
        %{k => s}

      _ ->
        m
    end
  end

  def strip_additions(other), do: other

  defp strip_elem([k, d]), do: [strip_elem(k), d]
  defp strip_elem(%{elem: e}), do: %{elem: Map.delete(e, :stmt)}
  defp strip_elem(e), do: e

  @doc """
  The anonymous sets of `msgs` (flag anonymous: `__set%d`, `__map%d` and
  meters), each with its elements as JSON:
  `%{{family, table, name} => set_info}` where `set_info` is `set_info/1`
  plus `elements: [json element]` (as nft prints them inside a rule,
  e.g. `[%{prefix: %{addr: "10.0.0.0", len: 8}}, "1.2.3.4"]`, or
  `[[key, data], ...]` for anonymous maps).
  """
  @spec anonymous_sets([NFTables.Port.msg()]) :: %{{atom(), String.t(), String.t()} => map()}
  def anonymous_sets(msgs) do
    elements =
      Enum.reduce(msgs, %{}, fn
        {_, :element, e}, acc ->
          Map.update(acc, {e.family, e.table, e.set}, e.elements, &(&1 ++ e.elements))

        _, acc ->
          acc
      end)

    for {_, :set, a} <- msgs, :anonymous in List.wrap(Map.get(a, :flags, [])), into: %{} do
      key = {a.family, a.table, a.name}
      si = set_info(a)
      {key, Map.put(si, :elements, Elements.up(si, Map.get(elements, key, [])))}
    end
  end

  @doc """
  The messages nft 1.0.6 sends for an anonymous set or map of a rule (a
  `{...}` in a match, a map, a vmap): the set (flags anonymous and
  constant, plus interval where an element is a range, prefix or
  wildcard, and concat for concatenated intervals; its size the number of
  elements as nft counts them; auto-merge as nft gives anonymous interval
  sets) and its elements.

  `spec`: `:type` (the key's JSON type: a name or a list of names), `:map`
  (the data's JSON type, "verdict", or nil for a set), optionally
  `:typeof_key` / `:typeof_data` (raw typeof user data, exactly as nft
  writes it for the rule's key (data) expression; none when absent),
  `:key_byteorder` / `:data_byteorder` (`:host | :big | :invalid`, the
  byte order of the rule's expression, where it is not the type's: e.g.
  `:big` for an integer payload field, `:host` for an integer meta key),
  `:key_len` / `:data_len` (bytes, where the types have no size),
  `:field_len` (bytes of each field of a concatenated interval key, where
  the types have no size), `:interval` (true/false to override the guess),
  `:id` (the set's transaction id: the element message gets it as
  `set_id`). Answers `{:ok, [set_msg, element_msg], set_info}`.
  """
  @spec anonymous_set_down(atom(), String.t(), String.t(), map(), [term()]) ::
          {:ok, [NFTables.Port.msg()], map()} | {:error, [term()], String.t()}
  def anonymous_set_down(family, table, name, spec, json_elems) do
    interval =
      case Map.get(spec, :interval) do
        nil -> Enum.any?(json_elems, &range_elem?/1)
        v -> v
      end

    kind = if Map.get(spec, :map), do: :map, else: :set

    b =
      %{type: spec.type, flags: ["constant"] ++ if(interval, do: ["interval"], else: [])}
      |> maybe(:map, Map.get(spec, :map))
      |> maybe(:"key-len", Map.get(spec, :key_len))
      |> maybe(:"data-len", Map.get(spec, :data_len))
      |> maybe(:"field-len", Map.get(spec, :field_len))
      # set_expr_alloc: an anonymous interval set merges (a map does not)
      |> maybe(:"auto-merge", if(interval and kind == :set, do: true))

    with {:ok, attrs, _si} <- set_attrs(kind, b, family, table, name) do
      {:ok, ud} = Udata.set_up(attrs.userdata)

      # the typeof TLVs of an anonymous set come from the rule's
      # expressions: exactly what the caller gives, none when it gives none
      ud =
        ud
        |> Map.merge(%{
          key_typeof: Map.get(spec, :typeof_key),
          data_typeof: Map.get(spec, :typeof_data),
          map_data: :map in attrs.flags,
          has_data: :map in attrs.flags or :object in attrs.flags
        })
        |> then(fn u ->
          if bo = Map.get(spec, :key_byteorder), do: %{u | key_byteorder: bo}, else: u
        end)
        |> then(fn u ->
          if bo = Map.get(spec, :data_byteorder), do: %{u | data_byteorder: bo}, else: u
        end)

      attrs =
        attrs
        |> Map.update!(:flags, &[:anonymous | &1])
        |> Map.put(:userdata, Udata.set_down(ud))
        |> maybe(:id, Map.get(spec, :id))

      si = set_info(attrs)

      with {:ok, lows} <- wrap_path(Elements.down(si, json_elems, first_segment: true), [:elem]) do
        attrs = constant_size(attrs, si, lows, %{})

        elem_attrs =
          %{family: family, table: table, set: name, elements: lows}
          |> maybe(:set_id, Map.get(spec, :id))

        {:ok, [{:add, :set, attrs}, {:add, :element, elem_attrs}], set_info(attrs)}
      end
    end
  end

  defp range_elem?([k, _d]), do: range_elem?(k)
  defp range_elem?(%{elem: %{val: v}}), do: range_elem?(v)
  defp range_elem?(%{concat: parts}), do: Enum.any?(parts, &range_elem?/1)
  defp range_elem?(%{range: _}), do: true
  defp range_elem?(%{prefix: _}), do: true
  defp range_elem?(s) when is_binary(s), do: String.ends_with?(s, "*") and s != "*"
  defp range_elem?(_), do: false

  # =====================================================================
  # down

  @doc """
  The low-level messages nft 1.0.6 sends for one JSON command: `verb` is
  `:add | :create | :insert | :replace | :delete | :destroy | :flush | :reset`
  and `obj` the command's object, e.g. `%{table: %{family: "inet", name: "t"}}`.

  `ctx`: `%{sets: sets}` for element commands, where `sets` maps
  `{family_atom, table, name}` (or `{family_atom, table}` to
  `%{name => set_info}`) to `set_info/1` of the set; `first_segment: false`
  when an interval set already has elements (see `Elements.down/3`).

  Answers `{:ok, msgs}` or `{:error, path, message}` (`path` the keys down
  to what is wrong).
  """
  @spec down(atom(), map(), map()) ::
          {:ok, [NFTables.Port.msg()]} | {:error, [term()], String.t()}
  def down(verb, obj, ctx \\ %{})

  def down(verb, %{} = obj, ctx) when map_size(obj) == 1 do
    [{kind, body}] = Map.to_list(obj)
    kind = if is_binary(kind), do: String.to_atom(kind), else: kind

    if is_map(body) do
      case do_down(verb, kind, body, ctx) do
        {:ok, msgs} -> {:ok, msgs}
        {:error, path, m} -> {:error, [kind | path], m}
        {:error, m} -> {:error, [kind], m}
      end
    else
      {:error, [kind], "expected an object, got: #{inspect(body)}"}
    end
  end

  def down(_verb, obj, _ctx),
    do: {:error, [], "expected one object, got: #{inspect(obj, limit: 5)}"}

  @port_verbs %{
    add: :add,
    create: :create,
    delete: :delete,
    destroy: :destroy,
    flush: :flush
  }

  # insert and replace are for rules only (nft has no insert table ...)
  defp pverb(verb, kind) do
    case Map.fetch(@port_verbs, verb) do
      {:ok, v} ->
        {:ok, v}

      :error when verb in [:insert, :replace] ->
        {:error, [], "#{verb} is for rules only, not for #{kind}"}

      :error ->
        {:error, [], "#{verb} #{kind} is not supported"}
    end
  end

  defp do_down(:reset, kind, _b, _ctx),
    do: {:error, [], "reset #{kind} is not supported: the port has no reset (a get with reset)"}

  defp do_down(verb, :table, b, _ctx) do
    with {:ok, v} <- pverb(verb, :table),
         {:ok, family} <- family(b) do
      base = %{family: family}

      cond do
        v in [:delete, :destroy] ->
          with {:ok, ident} <- name_or_handle(b, :name),
               do: {:ok, [{v, :table, Map.merge(base, ident)}]}

        v == :flush ->
          with {:ok, name} <- str(b, :name),
               do: {:ok, [{:flush, :table, Map.put(base, :name, name)}]}

        true ->
          with {:ok, name} <- str(b, :name),
               {:ok, flags} <- table_flags_down(Map.get(b, :flags)) do
            attrs =
              base
              |> Map.put(:name, name)
              |> Map.put(:flags, flags)
              |> maybe(:userdata, Udata.comment_udata(Map.get(b, :comment)))

            {:ok, [{v, :table, attrs}]}
          end
      end
    end
  end

  defp do_down(verb, :chain, b, _ctx) do
    with {:ok, v} <- pverb(verb, :chain),
         {:ok, family} <- family(b),
         {:ok, table} <- str(b, :table) do
      base = %{family: family, table: table}

      cond do
        v in [:delete, :destroy] ->
          with {:ok, ident} <- name_or_handle(b, :name),
               do: {:ok, [{v, :chain, Map.merge(base, ident)}]}

        v == :flush ->
          with {:ok, name} <- str(b, :name),
               do: {:ok, [{:flush, :chain, Map.put(base, :name, name)}]}

        true ->
          with {:ok, name} <- str(b, :name),
               {:ok, hook} <- chain_hook(b, family) do
            attrs =
              base
              |> Map.put(:name, name)
              |> Map.merge(hook)
              |> maybe(:userdata, Udata.comment_udata(Map.get(b, :comment)))
              |> maybe(
                :flags,
                if(Map.get(b, :flags) in [["offload"], "offload"], do: [:hw_offload])
              )

            {:ok, [{v, :chain, attrs}]}
          end
      end
    end
  end

  defp do_down(verb, kind, b, ctx) when kind in [:set, :map], do: set_down(verb, kind, b, ctx)

  defp do_down(verb, :element, b, ctx) do
    with {:ok, v} <- pverb(verb, :element),
         {:ok, family} <- family(b),
         {:ok, table} <- str(b, :table),
         {:ok, name} <- str(b, :name) do
      base = %{family: family, table: table, set: name}

      case {v, Map.get(b, :elem)} do
        {:flush, _} ->
          {:ok, [{:flush, :element, base}]}

        {_, elems} when is_list(elems) ->
          with {:ok, si} <- find_set(ctx, family, table, name),
               {:ok, lows} <-
                 wrap_path(
                   Elements.down(si, elems,
                     first_segment: Map.get(ctx, :first_segment, true),
                     delete: v in [:delete, :destroy]
                   ),
                   [:elem]
                 ) do
            {:ok, [{v, :element, Map.put(base, :elements, lows)}]}
          end

        {_, other} ->
          {:error, [:elem], "expected a list of elements, got: #{inspect(other)}"}
      end
    end
  end

  defp do_down(verb, :flowtable, b, _ctx) do
    with {:ok, v} <- pverb(verb, :flowtable),
         {:ok, family} <- family(b),
         {:ok, table} <- str(b, :table) do
      base = %{family: family, table: table}

      cond do
        v in [:delete, :destroy] ->
          with {:ok, ident} <- name_or_handle(b, :name),
               do: {:ok, [{v, :flowtable, Map.merge(base, ident)}]}

        v == :flush ->
          {:error, [], "flush flowtable is not a command"}

        true ->
          with {:ok, name} <- str(b, :name),
               {:ok, prio} <- prio(Map.get(b, :prio, 0), family, nil) do
            devs =
              case Map.get(b, :dev) do
                nil -> []
                d when is_binary(d) -> [d]
                l when is_list(l) -> l
              end

            flags =
              if(Map.get(b, :flags) in [["offload"], "offload"], do: [:hw_offload], else: []) ++
                if Map.get(b, :counter) == true, do: [:counter], else: []

            attrs =
              base
              |> Map.merge(%{
                name: name,
                hooknum: hook_atom(Map.get(b, :hook, "ingress")),
                prio: prio
              })
              |> maybe(:devices, devs)
              |> maybe(:flags, flags)

            {:ok, [{v, :flowtable, attrs}]}
          end
      end
    end
  end

  defp do_down(verb, json_kind, b, _ctx) do
    case Enum.find(@obj_json_keys, fn {_k, j} -> j == json_kind end) do
      nil -> {:error, [], "unknown object #{inspect(json_kind)}"}
      {kind, _} -> obj_down(verb, kind, b)
    end
  end

  defp wrap_path({:ok, x}, _path), do: {:ok, x}
  defp wrap_path({:error, m}, path), do: {:error, path, m}

  defp obj_down(verb, kind, b) do
    with {:ok, v} <- pverb(verb, kind),
         {:ok, family} <- family(b),
         {:ok, table} <- str(b, :table) do
      base = %{family: family, table: table}

      cond do
        v in [:delete, :destroy] ->
          with {:ok, ident} <- name_or_handle(b, :name),
               do: {:ok, [{v, kind, Map.merge(base, ident)}]}

        v == :flush ->
          {:error, [], "flush #{kind} is not a command"}

        true ->
          with {:ok, name} <- str(b, :name),
               {:ok, body} <- obj_attrs(kind, b) do
            attrs =
              base
              |> Map.put(:name, name)
              |> Map.merge(body)
              |> maybe(:userdata, Udata.comment_udata(Map.get(b, :comment)))

            {:ok, [{v, kind, attrs}]}
          end
      end
    end
  end

  defp obj_attrs(:counter, b) do
    {:ok, %{packets: int(b, :packets, 0), bytes: int(b, :bytes, 0)}}
  end

  defp obj_attrs(:quota, b) do
    {:ok,
     %{
       bytes: int(b, :bytes, 0),
       consumed: int(b, :used, 0),
       flags: if(Map.get(b, :inv) == true, do: 1, else: 0)
     }}
  end

  defp obj_attrs(:secmark, b) do
    with {:ok, c} <- str(b, :context), do: {:ok, %{ctx: c}}
  end

  defp obj_attrs(:ct_helper, b) do
    with {:ok, t} <- str(b, :type),
         {:ok, l4} <- l4proto(b),
         {:ok, l3} <- l3proto(b) do
      {:ok, maybe(%{helper: t, l4proto: l4}, :l3proto, l3)}
    end
  end

  defp obj_attrs(:ct_timeout, b) do
    with {:ok, l4} <- l4proto(b),
         {:ok, l3} <- l3proto(b),
         {:ok, array} <- timeout_array(l4, Map.get(b, :policy)) do
      {:ok, maybe(%{l4proto: l4, array: array}, :l3proto, l3)}
    end
  end

  defp obj_attrs(:ct_expect, b) do
    with {:ok, l4} <- l4proto(b),
         {:ok, l3} <- l3proto(b) do
      {:ok,
       maybe(
         %{
           l4proto: l4,
           dport: int(b, :dport, 0),
           timeout: int(b, :timeout, 0),
           size: int(b, :size, 0)
         },
         :l3proto,
         l3
       )}
    end
  end

  defp obj_attrs(:limit, b) do
    with {:ok, rate} <- int_req(b, :rate),
         {:ok, per} <- str(b, :per),
         unit when is_integer(unit) <-
           Elements.unit_seconds(per) || {:error, [:per], "unknown unit #{inspect(per)}"} do
      rate_unit = Map.get(b, :rate_unit, "packets")
      burst = int(b, :burst, 0)
      flags = if Map.get(b, :inv) == true, do: 1, else: 0

      if rate_unit == "packets" do
        {:ok, %{rate: rate, unit: unit, burst: burst, type: 0, flags: flags}}
      else
        with {:ok, r} <- Elements.to_bytes(rate, rate_unit),
             {:ok, bu} <- Elements.to_bytes(burst, Map.get(b, :burst_unit, "bytes")) do
          {:ok, %{rate: r, unit: unit, burst: bu, type: 1, flags: flags}}
        end
      end
    end
  end

  defp obj_attrs(:synproxy, b) do
    flags =
      Enum.reduce(List.wrap(Map.get(b, :flags, [])), 0, fn
        "timestamp", acc -> bor(acc, 0x8)
        "sack-perm", acc -> bor(acc, 0x4)
        _, acc -> acc
      end)

    mss = int(b, :mss, 0)
    wscale = int(b, :wscale, 0)
    # nft sets the mss and wscale options whenever it sends the values
    flags = flags |> bor(if(mss != 0, do: 0x1, else: 0)) |> bor(if(wscale != 0, do: 0x2, else: 0))
    {:ok, %{mss: mss, wscale: wscale, flags: flags}}
  end

  defp timeout_array(l4, policy) do
    {states, defaults} = timeout_table(l4)

    if states == [] do
      {:error, [:protocol], "ct timeout needs protocol tcp or udp"}
    else
      policy = policy || %{}

      names = Enum.map(states, &Atom.to_string/1)
      unknown = for {k, _} <- policy, to_string(k) not in names, do: to_string(k)

      if unknown != [] do
        {:error, [:policy],
         "unknown state #{Enum.join(unknown, ", ")} (known: #{Enum.join(names, ", ")})"}
      else
        values =
          Enum.zip(states, defaults)
          |> Enum.map(fn {s, d} -> Map.get(policy, s, Map.get(policy, Atom.to_string(s), d)) end)

        # libnftnl copies the whole array of 11 u32 (udp fills the first two)
        values = values ++ List.duplicate(0, 11 - length(values))
        {:ok, for(v <- values, into: <<>>, do: <<v::32-native>>)}
      end
    end
  end

  defp l4proto(b) do
    case Map.get(b, :protocol) do
      "tcp" -> {:ok, 6}
      "udp" -> {:ok, 17}
      n when is_integer(n) -> {:ok, n}
      nil -> {:ok, 0}
      other -> {:error, [:protocol], "protocol must be tcp or udp, got: #{inspect(other)}"}
    end
  end

  # no l3proto: nft sends none, the kernel takes the table's family
  defp l3proto(b) do
    case Map.get(b, :l3proto) do
      nil ->
        {:ok, nil}

      s ->
        case Enum.find(@nfproto, fn {_n, name} -> name == s end) do
          {n, _} -> {:ok, n}
          nil -> {:error, [:l3proto], "unknown l3proto #{inspect(s)}"}
        end
    end
  end

  # --- set and map down --------------------------------------------------

  defp set_down(verb, kind, b, ctx) do
    with {:ok, v} <- pverb(verb, kind),
         {:ok, family} <- family(b),
         {:ok, table} <- str(b, :table) do
      base = %{family: family, table: table}

      cond do
        v in [:delete, :destroy] ->
          with {:ok, ident} <- name_or_handle(b, :name),
               do: {:ok, [{v, :set, Map.merge(base, ident)}]}

        v == :flush ->
          with {:ok, name} <- str(b, :name),
               do: {:ok, [{:flush, :element, Map.put(base, :set, name)}]}

        true ->
          with {:ok, name} <- str(b, :name),
               {:ok, attrs, si} <- set_attrs(kind, b, family, table, name) do
            elems = Map.get(b, :elem)

            case elems do
              list when is_list(list) and list != [] ->
                with {:ok, lows} <-
                       wrap_path(
                         Elements.down(si, list, first_segment: Map.get(ctx, :first_segment, true)),
                         [:elem]
                       ) do
                  attrs = constant_size(attrs, si, lows, b)

                  {:ok,
                   [
                     {v, :set, attrs},
                     {v, :element, Map.merge(base, %{set: name, elements: lows})}
                   ]}
                end

              _ ->
                {:ok, [{v, :set, attrs}]}
            end
          end
      end
    end
  end

  # nft gives a constant set the number of its elements as size
  # (init->size: for intervals, twice the intervals plus the first segment)
  defp constant_size(attrs, si, lows, b) do
    cond do
      Map.has_key?(b, :"desc-size") ->
        Map.put(attrs, :desc_size, b[:"desc-size"])

      :constant in si.flags ->
        n =
          if :interval in si.flags and length(si.key_types) == 1 do
            flags = &Map.get(&1, :flags, [])
            starts = Enum.count(lows, &(flags.(&1) == [] or flags.(&1) == nil))
            catchall = Enum.count(lows, &(:catchall in flags.(&1)))
            root = if match?([%{flags: [:interval_end]} | _], lows), do: 1, else: 0
            # the elements, then once more each start and the first segment
            starts + catchall + starts + root
          else
            length(lows)
          end

        Map.put(attrs, :desc_size, n)

      true ->
        attrs
    end
  end

  @doc false
  # The set message's attributes and the set_info for its elements.
  def set_attrs(kind, b, family, table, name) do
    with {:ok, key_types} <- type_list(Map.get(b, :type), [:type]),
         {:ok, {typeof_key, typeof_data}} <-
           wrap_path(typeof_down(Map.get(b, :typeof)), [:typeof]),
         {:ok, json_flags} <- set_flags_down(Map.get(b, :flags)),
         {:ok, data} <- map_data(kind, Map.get(b, :map)),
         {:ok, stmts} <- stmts_down(Map.get(b, :stmt)) do
      concat = length(key_types) > 1
      interval = :interval in json_flags

      {data_types, obj_type} =
        case data do
          {:obj, id} -> {[], id}
          {:data, ts} -> {ts, nil}
          nil -> {[], nil}
        end

      key_len = Map.get(b, :"key-len") || types_len(key_types)

      data_len =
        if data_types != [], do: Map.get(b, :"data-len") || types_len(data_types), else: nil

      cond do
        key_len == 0 ->
          {:error, [:type],
           "type #{inspect(Map.get(b, :type))} has no size: give \"key-len\" (or typeof)"}

        data_len == 0 and data_types != ["verdict"] ->
          {:error, [:map], "map type #{inspect(Map.get(b, :map))} has no size: give \"data-len\""}

        true ->
          field_len =
            if interval and concat do
              Map.get(b, :"field-len") || Enum.map(key_types, &Value.bytes/1)
            end

          flags =
            json_flags ++
              if(data_types != [], do: [:map], else: []) ++
              if(obj_type, do: [:object], else: []) ++
              if(Map.get(b, :dynamic) == true, do: [:eval], else: []) ++
              if(interval and concat, do: [:concat], else: []) ++
              if(length(stmts) > 1, do: [:expr], else: []) ++
              if(
                is_integer(Map.get(b, :timeout)) and Map.get(b, :timeout) > 0 and
                  :timeout not in json_flags,
                do: [:timeout],
                else: []
              )

          constant = :constant in flags
          map_data = data_types != []

          ud_info = %{
            key_byteorder:
              bo_atom(get_in(b, [:typeof, :key_byteorder])) ||
                if(concat, do: :invalid, else: Value.byteorder(hd(key_types))),
            data_byteorder:
              if(map_data,
                do: bo_atom(get_in(b, [:typeof, :data_byteorder])) || data_byteorder(data_types)
              ),
            merge: Map.get(b, :"auto-merge") == true,
            key_typeof: typeof_key || if(concat, do: @concat_stub),
            data_typeof: typeof_data || if(length(data_types) > 1, do: @concat_stub),
            data_interval: false,
            comment: Map.get(b, :comment),
            map_data: map_data,
            has_data: map_data or obj_type != nil
          }

          userdata =
            case Map.get(b, :userdata) do
              hex when is_binary(hex) -> Udata.unhex(hex)
              _ -> {:ok, Udata.set_down(ud_info)}
            end

          with {:ok, userdata} <- wrap_path(userdata, [:userdata]) do
            attrs =
              %{
                family: family,
                table: table,
                name: name,
                key_type: Value.type_id(key_types),
                key_len: key_len
              }
              |> maybe(:flags, Enum.uniq(flags))
              |> maybe(:data_type, if(map_data, do: data_type_id(data_types)))
              |> maybe(:data_len, if(map_data, do: data_len))
              |> maybe(:obj_type, obj_type)
              |> maybe(
                :timeout,
                if(is_integer(b[:timeout]) and b[:timeout] > 0, do: b[:timeout] * 1000)
              )
              |> maybe(
                :gc_interval,
                if(is_integer(b[:"gc-interval"]) and b[:"gc-interval"] > 0,
                  do: b[:"gc-interval"] * 1000
                )
              )
              |> maybe(:policy, if(not constant and Map.get(b, :policy) == "memory", do: :memory))
              |> maybe(
                :desc_size,
                if(not constant and is_integer(b[:size]) and b[:size] > 0, do: b[:size])
              )
              |> maybe(:desc_concat, if(field_len, do: :binary.list_to_bin(field_len)))
              |> maybe(:userdata, userdata)
              |> maybe(:exprs, stmts)

            {:ok, si} = {:ok, set_info(attrs)}
            {:ok, attrs, si}
          end
      end
    end
  end

  defp data_byteorder(["verdict"]), do: :invalid
  defp data_byteorder([t]), do: Value.byteorder(t)
  defp data_byteorder(_), do: :invalid

  defp data_type_id(["verdict"]), do: @verdict_type
  defp data_type_id(ts), do: Value.type_id(ts)

  defp types_len(["verdict"]), do: 16
  defp types_len([t]), do: Value.bytes(t)
  defp types_len(ts), do: ts |> Enum.map(&Value.reg_bytes/1) |> Enum.sum()

  defp type_list(t, path) when is_binary(t) do
    types = if String.contains?(t, " . "), do: String.split(t, " . "), else: [t]
    check_types(types, path)
  end

  defp type_list([_ | _] = ts, path) do
    if Enum.all?(ts, &is_binary/1),
      do: check_types(ts, path),
      else: {:error, path, "type must be a string or a list of strings, got: #{inspect(ts)}"}
  end

  defp type_list(other, path),
    do: {:error, path, "type must be a string or a list of strings, got: #{inspect(other)}"}

  defp check_types(types, path) do
    case Enum.reject(types, &(&1 == "verdict" or datatype_known?(&1))) do
      [] -> {:ok, types}
      bad -> {:error, path, "unknown datatype #{Enum.map_join(bad, ", ", &inspect/1)}"}
    end
  end

  defp datatype_known?(t) do
    _ = Value.datatype!(t)
    true
  rescue
    ArgumentError -> false
  end

  defp map_data(:set, nil), do: {:ok, nil}
  defp map_data(:map, nil), do: {:error, [:map], "a map needs \"map\": its data type"}
  defp map_data(_kind, "verdict"), do: {:ok, {:data, ["verdict"]}}

  defp map_data(_kind, t) do
    case Enum.find(@obj_kinds, fn {_k, {_id, name}} -> name == t end) do
      {_, {id, _}} ->
        {:ok, {:obj, id}}

      nil ->
        with {:ok, ts} <- type_list(t, [:map]), do: {:ok, {:data, ts}}
    end
  end

  defp set_flags_down(nil), do: {:ok, []}
  defp set_flags_down(f) when is_binary(f), do: set_flags_down([f])

  defp set_flags_down(list) when is_list(list) do
    Enum.reduce_while(list, {:ok, []}, fn
      "constant", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:constant]}}

      "interval", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:interval]}}

      "timeout", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:timeout]}}

      "dynamic", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:eval]}}

      other, _ ->
        {:halt,
         {:error, [:flags],
          "unknown set flag #{inspect(other)} (known: constant, interval, timeout, dynamic)"}}
    end)
  end

  defp set_flags_down(other),
    do: {:error, [:flags], "flags must be a list, got: #{inspect(other)}"}

  defp stmts_down(nil), do: {:ok, []}

  defp stmts_down(list) when is_list(list) do
    list
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, []}, fn {s, i}, {:ok, acc} ->
      case Elements.stmt_down(s) do
        {:ok, e} -> {:cont, {:ok, acc ++ [e]}}
        {:error, m} -> {:halt, {:error, [:stmt, i], m}}
      end
    end)
  end

  defp stmts_down(other), do: {:error, [:stmt], "stmt must be a list, got: #{inspect(other)}"}

  defp find_set(ctx, family, table, name) do
    sets = Map.get(ctx, :sets, %{})

    found =
      Map.get(sets, {family, table, name}) ||
        get_in(sets, [Access.key({family, table}, %{}), Access.key(name)])

    case found do
      nil ->
        {:error, [:name], "set #{name} of table #{family} #{table} is not known (add it first)"}

      si ->
        {:ok, si}
    end
  end

  @doc """
  Adds the sets of `msgs` (as `down/3` made them) to `ctx.sets`, so that
  later element commands of the same document find them.
  """
  @spec remember(map(), [NFTables.Port.msg()]) :: map()
  def remember(ctx, msgs) do
    Enum.reduce(msgs, ctx, fn
      {v, :set, a}, acc when v in [:add, :create] and is_map_key(a, :key_type) ->
        Map.update(
          acc,
          :sets,
          %{{a.family, a.table, a.name} => set_info(a)},
          &Map.put(&1, {a.family, a.table, a.name}, set_info(a))
        )

      _, acc ->
        acc
    end)
  end

  # what down makes of a set's JSON (for the added keys of up)
  defp derived_set_attrs(s, si) do
    kind = if Map.has_key?(s, :map), do: :map, else: :set

    case set_attrs(kind, Map.drop(s, [:elem, :userdata]), si.family, si.table, si.name) do
      {:ok, attrs, dsi} ->
        %{
          key_len: attrs.key_len,
          data_len: Map.get(attrs, :data_len, 0),
          field_len: dsi.field_len,
          userdata: Map.get(attrs, :userdata, <<>>)
        }

      _ ->
        %{key_len: nil, data_len: nil, field_len: nil, userdata: nil}
    end
  end

  # --- chains -------------------------------------------------------------

  defp chain_hook(b, family) do
    case Map.get(b, :hook) do
      nil ->
        {:ok, %{}}

      hook ->
        with {:ok, type} <- str(b, :type),
             {:ok, prio} <- prio(Map.get(b, :prio), family, type),
             {:ok, policy} <- policy(Map.get(b, :policy)) do
          devs =
            case Map.get(b, :dev) do
              nil -> %{}
              d when is_binary(d) -> %{dev: d}
              [d] -> %{dev: d}
              l when is_list(l) -> %{devices: l}
            end

          {:ok,
           %{hooknum: hook_atom(hook), prio: prio, type: type}
           |> maybe(:policy, policy)
           |> Map.merge(devs)}
        end
    end
  end

  defp hook_atom(h) when is_binary(h), do: String.to_atom(h)
  defp hook_atom(h), do: h

  defp policy(nil), do: {:ok, nil}
  defp policy("accept"), do: {:ok, :accept}
  defp policy("drop"), do: {:ok, :drop}
  defp policy(p), do: {:error, [:policy], "unknown policy #{inspect(p)} (accept or drop)"}

  @std_prios %{
    "raw" => -300,
    "mangle" => -150,
    "dstnat" => -100,
    "filter" => 0,
    "security" => 50,
    "srcnat" => 100
  }
  @bridge_prios %{"dstnat" => -300, "filter" => -200, "out" => 100, "srcnat" => 300}

  defp prio(n, _family, _type) when is_integer(n), do: {:ok, n}
  defp prio(nil, _family, _type), do: {:error, [:prio], "a base chain needs \"prio\""}

  defp prio(s, family, _type) when is_binary(s) do
    table = if family == :bridge, do: @bridge_prios, else: @std_prios

    case Regex.run(~r/^\s*([a-z]+)\s*(?:([+-])\s*(\d+))?\s*$/, s) do
      [_, name | rest] when is_map_key(table, name) ->
        off =
          case rest do
            ["+", n] -> String.to_integer(n)
            ["-", n] -> -String.to_integer(n)
            _ -> 0
          end

        {:ok, table[name] + off}

      _ ->
        case Integer.parse(s) do
          {n, ""} -> {:ok, n}
          _ -> {:error, [:prio], "unknown priority #{inspect(s)}"}
        end
    end
  end

  defp prio(other, _f, _t), do: {:error, [:prio], "prio must be a number, got: #{inspect(other)}"}

  # --- common ---------------------------------------------------------------

  defp family(b) do
    case Map.get(b, :family) do
      f when is_map_key(@families, f) ->
        {:ok, Map.fetch!(@families, f)}

      f ->
        {:error, [:family],
         "unknown family #{inspect(f)} (known: #{Enum.join(Map.keys(@families), ", ")})"}
    end
  end

  defp str(b, k) do
    case Map.get(b, k) do
      s when is_binary(s) -> {:ok, s}
      nil -> {:error, [k], "missing #{inspect(Atom.to_string(k))}"}
      other -> {:error, [k], "#{k} must be a string, got: #{inspect(other)}"}
    end
  end

  defp int(b, k, default) do
    case Map.get(b, k) do
      n when is_integer(n) -> n
      _ -> default
    end
  end

  defp int_req(b, k) do
    case Map.get(b, k) do
      n when is_integer(n) -> {:ok, n}
      other -> {:error, [k], "#{k} must be a number, got: #{inspect(other)}"}
    end
  end

  defp name_or_handle(b, key) do
    case {Map.get(b, key), Map.get(b, :handle)} do
      {n, _} when is_binary(n) -> {:ok, %{key => n}}
      {_, h} when is_integer(h) -> {:ok, %{handle: h}}
      _ -> {:error, [key], "either #{key} or handle is needed"}
    end
  end

  defp table_flags_down(nil), do: {:ok, []}
  defp table_flags_down(f) when is_binary(f), do: table_flags_down([f])

  defp table_flags_down(list) when is_list(list) do
    Enum.reduce_while(list, {:ok, []}, fn
      "dormant", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:dormant]}}

      "owner", {:ok, acc} ->
        {:cont, {:ok, acc ++ [:owner]}}

      other, _ ->
        {:halt,
         {:error, [:flags], "unknown table flag #{inspect(other)} (known: dormant, owner)"}}
    end)
  end

  defp table_flags_down(other),
    do: {:error, [:flags], "flags must be a list, got: #{inspect(other)}"}
end
