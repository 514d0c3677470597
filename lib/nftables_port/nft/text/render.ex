defmodule NFTables.Port.Nft.Text.Render do
  @moduledoc """
  Prints a libnftables JSON document (Elixir terms, atom keys, as
  `NFTables.Port.Nft.Json.decode/1` returns it) the way `nft list ruleset`
  (nftables 1.0.6) prints the same ruleset, byte for byte.

  The layout follows nft's own print functions: `table_print`,
  `chain_print`, `set_print`, `obj_print` and `flowtable_print` of
  src/rule.c, the statement printers of src/statement.c and the
  expression printers of src/expression.c and friends. Values that JSON
  carries in JSON form (a mark as `10`, a timeout in seconds) are printed
  in nft's text form from the datatype of the expression they are
  compared with or assigned to (`NFTables.Port.Nft.Tables`).

  What nft's JSON does not carry cannot be printed: a set's `typeof`
  (JSON has the datatypes), the `dynamic` flag and `auto-merge`, a chain's
  devices and comment, a table's owner, more than one statement of a set
  element. Where a document has these anyway (the port's JSON adds them:
  set `typeof`/`dynamic`/`auto-merge`, element `stmt` lists, chain `dev`
  lists and `comment`, flowtable `flags`) they are printed.

  Options: `handles: true` prints `# handle N` as `nft -a` does.
  """

  alias NFTables.Port.Nft.Tables

  @obj_kinds [:counter, :quota, :"ct helper", :limit, :"ct timeout", :secmark, :synproxy,
              :"ct expectation"]

  @doc "The document as `nft list ruleset` prints it."
  @spec render(map(), keyword()) :: String.t()
  def render(doc, opts \\ [])

  def render(%{nftables: objects}, opts) when is_list(objects) do
    handles = Keyword.get(opts, :handles, false)
    objects = Enum.reject(objects, &Map.has_key?(&1, :metainfo))

    tables =
      for %{table: t} <- objects, uniq: true, do: {t.family, t.name}

    by_table =
      Enum.group_by(objects, fn o ->
        [{_kind, body}] = Map.to_list(o)
        {Map.get(body, :family), Map.get(body, :table, Map.get(body, :name))}
      end)

    tables
    |> Enum.map(fn key ->
      group = Map.get(by_table, key, [])
      table = Enum.find_value(group, fn o -> Map.get(o, :table) |> table_body(key) end)
      table_text(table, group, handles)
    end)
    |> IO.iodata_to_binary()
  end

  def render(other, _opts), do: raise(ArgumentError, "not a libnftables document: #{inspect(other, limit: 5)}")

  defp table_body(%{family: f, name: n} = t, {f, n}), do: t
  defp table_body(_, _), do: nil

  # ---------------------------------------------------------------------
  # tables, chains, sets, objects, flowtables

  defp table_text(t, group, handles) do
    fam = t.family
    sets = for o <- group, s = Map.get(o, :set) || Map.get(o, :map) || Map.get(o, :meter), s != nil, into: %{}, do: {s.name, s}

    ctx = %{family: fam, sets: sets, handles: handles, dynamic: dynamic_sets(group)}

    objs =
      for o <- group, [{k, b}] = Map.to_list(o), k in @obj_kinds, do: {k, b}

    set_objs =
      for o <- group, [{k, b}] = Map.to_list(o), k in [:set, :map, :meter], do: {k, b}

    flowtables = for %{flowtable: f} <- group, do: f
    chains = for %{chain: c} <- group, do: c
    rules = Enum.group_by(for(%{rule: r} <- group, do: r), & &1.chain)

    head =
      ["table ", fam, " ", t.name, " {",
       if(handles, do: " # handle #{t.handle}", else: ""), "\n"]

    {flags, delim} =
      case table_flags(t) do
        [] -> {[], ""}
        fl -> {["\tflags ", Enum.join(fl, ","), "\n"], "\n"}
      end

    comment =
      case Map.get(t, :comment) do
        nil -> []
        c -> ["\tcomment \"", c, "\"\n"]
      end

    blocks =
      Enum.map(objs, fn {k, b} -> obj_text(k, b, ctx) end) ++
        Enum.map(set_objs, fn {k, b} -> set_text(k, b, ctx) end) ++
        Enum.map(flowtables, &flowtable_text(&1, ctx)) ++
        Enum.map(chains, &chain_text(&1, Map.get(rules, &1.name, []), ctx))

    body =
      case blocks do
        [] -> []
        [first | rest] -> [delim, first | Enum.map(rest, &["\n", &1])]
      end

    [head, flags, comment, body, "}\n"]
  end

  # nft sets the `dynamic` flag (NFT_SET_EVAL) on every set a rule adds
  # to or updates from the packet path (stmt_evaluate_set), so a
  # set that such a rule names has it; nft's JSON does not print the flag.
  defp dynamic_sets(group) do
    for %{rule: r} <- group, st <- List.wrap(Map.get(r, :expr)), name = dynset_target(st), name != nil,
        into: MapSet.new(),
        do: name
  end

  defp dynset_target(%{set: %{op: _, set: "@" <> name}}), do: name
  defp dynset_target(_), do: nil

  # nft 1.0.6's table_flags_json prints a single flag wrongly (the table's
  # name instead of the flag's); the one flag nft itself can leave on a
  # table that outlives it is "dormant".
  defp table_flags(t) do
    t
    |> Map.get(:flags)
    |> List.wrap()
    |> Enum.map(fn f -> if f in ["dormant", "owner"], do: f, else: "dormant" end)
    |> Enum.uniq()
  end

  defp handle_text(%{handles: true}, %{handle: h}), do: " # handle #{h}"
  defp handle_text(_, _), do: ""

  defp chain_text(c, rules, ctx) do
    comment =
      case Map.get(c, :comment) do
        nil -> ""
        cm -> "\n\t\tcomment \"#{cm}\""
      end

    base =
      if Map.has_key?(c, :hook) do
        devs =
          case Map.get(c, :dev) do
            nil -> ""
            d when is_binary(d) -> " device \"#{d}\""
            [d] -> " device \"#{d}\""
            [] -> ""
            ds when is_list(ds) -> " devices = { " <> Enum.join(ds, ", ") <> " }"
          end

        policy = if Map.get(c, :policy), do: " policy #{c.policy};", else: ""
        offload = if "offload" in List.wrap(Map.get(c, :flags)), do: " flags offload;", else: ""

        ["\t\ttype ", c.type, " hook ", c.hook, devs, " priority ",
         prio_text(ctx.family, c.hook, Map.get(c, :prio, 0)), ";", policy, offload, "\n"]
      else
        []
      end

    lines =
      Enum.map(rules, fn r ->
        ["\t\t", rule_text(r, ctx), "\n"]
      end)

    ["\tchain ", c.name, " {", handle_text(ctx, c), comment, "\n", base, lines, "\t}\n"]
  end

  @doc "One rule's statements as nft prints them (no indentation)."
  @spec rule_text(map(), map()) :: iodata()
  def rule_text(r, ctx) do
    exprs = Map.get(r, :expr, [])
    ctx = Map.put(ctx, :l3, rule_l3(exprs, ctx.family))
    stmts = Enum.map(exprs, &stmt(&1, ctx))
    comment = if c = Map.get(r, :comment), do: [" comment \"", c, "\""], else: []
    handle = if ctx.handles and Map.has_key?(r, :handle), do: " # handle #{r.handle}", else: ""
    [Enum.intersperse(stmts, " "), comment, handle]
  end

  # The chain priority as nft's prio2str prints it: a standard priority's
  # name within 10 of it, with the offset, where the family and hook allow
  # that name.
  @std_prios [{-300, "raw"}, {-150, "mangle"}, {-100, "dstnat"}, {0, "filter"}, {50, "security"}, {100, "srcnat"}]
  @bridge_prios [{-300, "dstnat"}, {-200, "filter"}, {100, "out"}, {300, "srcnat"}]

  defp prio_text(family, hook, prio) when is_integer(prio) do
    table = if family == "bridge", do: @bridge_prios, else: @std_prios

    Enum.find_value(table, Integer.to_string(prio), fn {v, name} ->
      if abs(prio - v) <= 10 do
        if prio_compat?(v, family, hook) do
          off = prio - v

          cond do
            off > 0 -> "#{name} + #{off}"
            off < 0 -> "#{name} - #{-off}"
            true -> name
          end
        else
          Integer.to_string(prio)
        end
      end
    end)
  end

  defp prio_text(_family, _hook, prio), do: to_string(prio)

  defp prio_compat?(v, "bridge", hook) do
    case v do
      -300 -> hook == "prerouting"
      -200 -> true
      100 -> hook == "output"
      300 -> hook == "postrouting"
      _ -> false
    end
  end

  defp prio_compat?(0, family, _hook), do: family in ~w(inet ip ip6 arp netdev)
  defp prio_compat?(v, family, _hook) when v in [-300, -150, 50], do: family in ~w(inet ip ip6)
  defp prio_compat?(-100, family, hook), do: family in ~w(inet ip ip6) and hook == "prerouting"
  defp prio_compat?(100, family, hook), do: family in ~w(inet ip ip6) and hook == "postrouting"
  defp prio_compat?(_, _, _), do: false

  defp flowtable_text(f, ctx) do
    devs =
      case List.wrap(Map.get(f, :dev)) do
        [] -> []
        ds -> ["\t\tdevices = { ", Enum.join(ds, ", "), " }\n"]
      end

    flags = List.wrap(Map.get(f, :flags))

    ["\tflowtable ", f.name, " {", handle_text(ctx, f), "\n",
     "\t\thook ", f.hook, " priority ", prio_text("netdev", f.hook, Map.get(f, :prio, 0)), "\n",
     devs,
     if("offload" in flags, do: "\t\tflags offload\n", else: []),
     if("counter" in flags or Map.get(f, :counter) == true, do: "\t\tcounter\n", else: []),
     "\t}\n"]
  end

  # The states of ct timeout policies, in nft's order (src/rule.c).
  @timeout_states %{
    "tcp" => ~w(syn_sent syn_recv established fin_wait close_wait last_ack time_wait close syn_sent2 retrans unack),
    "udp" => ~w(unreplied replied)
  }

  # Stateful objects: obj_print_data.
  defp obj_text(kind, o, ctx) do
    comment = if c = Map.get(o, :comment), do: ["\n\t\tcomment \"", c, "\""], else: []
    head = ["\t", Atom.to_string(kind), " ", o.name, " {", handle_text(ctx, o), comment]

    body =
      case kind do
        :counter ->
          ["\n\t\tpackets #{Map.get(o, :packets, 0)} bytes #{Map.get(o, :bytes, 0)}\n"]

        :quota ->
          {b, u} = rate_unit(Map.get(o, :bytes, 0))
          inv = if Map.get(o, :inv), do: "over ", else: ""

          used =
            case Map.get(o, :used, 0) do
              0 -> ""
              n -> {ub, uu} = rate_unit(n); " used #{ub} #{uu}"
            end

          ["\n\t\t", inv, "#{b} #{u}", used, "\n"]

        :secmark ->
          ["\n\t\t\"", Map.get(o, :context, ""), "\"\n"]

        :"ct helper" ->
          ["\n\t\ttype \"", o.type, "\" protocol ", to_string(o.protocol), "\n",
           "\t\tl3proto ", o.l3proto, "\n"]

        :"ct timeout" ->
          policy =
            case Map.get(o, :policy) do
              p when is_map(p) and map_size(p) > 0 ->
                p = Map.new(p, fn {k, v} -> {to_string(k), v} end)
                order = Map.get(@timeout_states, to_string(o.protocol), [])
                keys = Enum.filter(order, &Map.has_key?(p, &1)) ++ Enum.sort(Map.keys(p) -- order)
                Enum.map_join(keys, ", ", fn k -> "#{k} : #{p[k]}" end)

              _ ->
                ""
            end

          ["\n\t\tprotocol ", to_string(o.protocol), "\n", "\t\tl3proto ", o.l3proto, "\n",
           "\t\tpolicy = { ", policy, " }\n"]

        :"ct expectation" ->
          ["\n\t\tprotocol ", to_string(o.protocol), "\n",
           "\t\tdport #{o.dport}\n",
           "\t\ttimeout ", time_text(o.timeout), "\n",
           "\t\tsize #{o.size}\n",
           "\t\tl3proto ", o.l3proto, "\n"]

        :limit ->
          inv = if Map.get(o, :inv), do: "over ", else: ""
          burst = Map.get(o, :burst, 0)

          rate =
            case Map.get(o, :rate_unit) do
              nil ->
                ["rate ", inv, "#{o.rate}/#{o.per}",
                 if(burst > 0 and burst != 5, do: " burst #{burst} packets", else: "")]

              u ->
                ["rate ", inv, "#{o.rate} #{u}/#{o.per}",
                 if(burst > 0, do: " burst #{burst} #{Map.get(o, :burst_unit, "bytes")}", else: "")]
            end

          ["\n\t\t", rate, "\n"]

        :synproxy ->
          flags = List.wrap(Map.get(o, :flags))
          mss = if Map.has_key?(o, :mss), do: ["\n\t\tmss #{o.mss}"], else: []
          ws = if Map.has_key?(o, :wscale), do: ["\n\t\twscale #{o.wscale}"], else: []

          fl =
            if flags != [] do
              ts = if "timestamp" in flags, do: "timestamp", else: ""
              sack = if "sack-perm" in flags, do: "sack-perm", else: ""
              ["\n\t\t", ts, " ", sack]
            else
              []
            end

          [mss, ws, fl, "\n"]
      end

    [head, body, "\t}\n"]
  end

  # ---------------------------------------------------------------------
  # sets and maps: set_print_declaration, do_set_print

  defp set_text(kind, s, ctx) do
    key_types = List.wrap(s.type)
    data = Map.get(s, :map)
    flags = List.wrap(Map.get(s, :flags))
    constant = "constant" in flags

    type_line =
      case Map.get(s, :typeof) do
        nil ->
          ["type ", Enum.join(key_types, " . "),
           if(data, do: [" : ", if("interval" in List.wrap(Map.get(s, :data_flags)), do: "interval ", else: ""), type_join(data)], else: [])]

        tf ->
          ["typeof ", typeof_text(tf, :key, ctx),
           if(data, do: [" : ", typeof_text(tf, :data, ctx)], else: [])]
      end

    policy =
      if not constant and Map.get(s, :policy) not in [nil, "performance"],
        do: ["\t\tpolicy ", s.policy, "\n"], else: []

    size =
      if not constant and Map.get(s, :size, 0) > 0, do: ["\t\tsize #{s.size}\n"], else: []

    timeout = Map.get(s, :timeout)
    dynamic = "dynamic" in flags or Map.get(s, :dynamic) == true or MapSet.member?(ctx.dynamic, s.name)

    pflags =
      (if(constant, do: ["constant"], else: []) ++
         if(dynamic, do: ["dynamic"], else: []) ++
         if("interval" in flags, do: ["interval"], else: []) ++
         if("timeout" in flags, do: ["timeout"], else: []))

    # "timeout" alone does not make nft print the flags line when the set
    # has a default timeout; with other flags it is printed all the same.
    shown = if timeout not in [nil, 0], do: pflags -- ["timeout"], else: pflags
    flags_line = if shown == [], do: [], else: ["\t\tflags ", Enum.join(pflags, ","), "\n"]

    stmts =
      case List.wrap(Map.get(s, :stmt)) do
        [] -> []
        list -> ["\t\t", Enum.intersperse(Enum.map(list, &stmt(&1, Map.put(ctx, :stateless, true))), " "), "\n"]
      end

    automerge = if Map.get(s, :"auto-merge") == true or Map.get(s, :auto_merge) == true, do: ["\t\tauto-merge\n"], else: []
    timeout_line = if timeout not in [nil, 0], do: ["\t\ttimeout ", time_text(timeout * 1000), "\n"], else: []
    gc = Map.get(s, :"gc-interval")
    gc_line = if gc not in [nil, 0], do: ["\t\tgc-interval ", time_text(gc * 1000), "\n"], else: []
    comment = if c = Map.get(s, :comment), do: ["\t\tcomment \"", c, "\"\n"], else: []

    ktype = set_key_type(s)
    dtype = set_data_type(s)

    elements =
      case List.wrap(Map.get(s, :elem)) do
        [] ->
          []

        elems ->
          texts = Enum.map(elems, &elem_text(&1, ktype, dtype, ctx))
          ["\t\telements = ", set_braces(texts, delim_class(ktype)), "\n"]
      end

    ["\t", Atom.to_string(kind), " ", s.name, " {", handle_text(ctx, s), "\n",
     "\t\t", type_line, "\n", policy, size, flags_line, stmts, automerge, timeout_line, gc_line,
     comment, elements, "\t}\n"]
  end

  defp type_join(t) when is_list(t), do: Enum.join(t, " . ")
  defp type_join(t), do: t

  # typeof: expressions, as the port's JSON may carry them
  # (%{key: expr, data: expr} or a key expression alone).
  defp typeof_text(%{key: k} = tf, :key, ctx), do: expr(k, nil, ctx) |> then(fn t -> _ = tf; t end)
  defp typeof_text(%{data: d}, :data, ctx), do: expr(d, nil, ctx)
  defp typeof_text(k, :key, ctx) when is_map(k), do: expr(k, nil, ctx)
  defp typeof_text(k, _, _) when is_binary(k), do: k
  defp typeof_text(_, _, _), do: ""

  defp set_key_type(s) do
    case List.wrap(s.type) do
      [one] -> one
      many -> {:concat, many}
    end
  end

  defp set_data_type(s) do
    case Map.get(s, :map) do
      nil -> nil
      "verdict" -> :verdict
      l when is_list(l) -> {:concat, l}
      t when is_binary(t) ->
        cond do
          String.contains?(t, " . ") -> {:concat, String.split(t, " . ")}
          Tables.datatype(t) -> t
          true -> {:object, t}
        end
    end
  end

  # calculate_delim: how many elements nft puts on one line.
  @five ~w(nf_proto integer arp_op inet_proto inet_service tcp_flag dccp_pkttype mark
           iface_index classid uid gid ct_dir)
  @two ~w(ipv4_addr ct_state ct_status pkt_type)

  defp delim_class({:concat, _}), do: 1
  defp delim_class(t) when t in @five, do: 5
  defp delim_class(t) when t in @two, do: 2
  defp delim_class("xinteger"), do: 5
  defp delim_class(_), do: 1

  defp set_braces(texts, :single), do: ["{ ", Enum.intersperse(texts, ", "), " }"]

  defp set_braces(texts, per) do
    {out, _} =
      texts
      |> Enum.with_index()
      |> Enum.map_reduce(0, fn {t, i}, count ->
        if i == 0 do
          {t, 1}
        else
          if count < per do
            {[", ", t], count + 1}
          else
            {[",\n\t\t\t     ", t], 1}
          end
        end
      end)

    ["{ ", out, " }"]
  end

  # One element of a set or map: the key (with its element attributes),
  # and for maps " : " and the data.
  defp elem_text([k, v], ktype, dtype, ctx) when dtype != nil do
    [elem_text(k, ktype, nil, ctx), " : ", data_text(v, dtype, ctx)]
  end

  defp elem_text(%{elem: e}, ktype, _dtype, ctx) do
    val = Map.get(e, :val)
    stmts = elem_stmts(e, ctx)

    [value(val, ktype, ctx),
     Enum.map(stmts, &[" ", &1]),
     if(t = Map.get(e, :timeout), do: [" timeout ", time_text(t * 1000)], else: []),
     if(x = Map.get(e, :expires), do: [" expires ", time_text(x * 1000)], else: []),
     if(c = Map.get(e, :comment), do: [" comment \"", c, "\""], else: [])]
  end

  defp elem_text(v, ktype, _dtype, ctx), do: value(v, ktype, ctx)

  @elem_stmt_keys [:counter, :limit, :quota, :"ct count", :last]

  defp elem_stmts(e, ctx) do
    case Map.get(e, :stmt) do
      list when is_list(list) ->
        Enum.map(list, &stmt(&1, ctx))

      _ ->
        for k <- @elem_stmt_keys, Map.has_key?(e, k), do: stmt(%{k => Map.fetch!(e, k)}, ctx)
    end
  end

  defp data_text(v, :verdict, ctx), do: stmt(v, ctx)
  defp data_text(v, {:object, _}, _ctx) when is_binary(v), do: quote_str(v)
  defp data_text(v, dtype, ctx), do: value(v, dtype, ctx)

  # ---------------------------------------------------------------------
  # statements

  defp stmt(s, ctx) when is_map(s) do
    case Map.to_list(s) do
      [{k, v}] -> stmt(k, v, ctx)
      _ -> raise ArgumentError, "a statement must have one key: #{inspect(s)}"
    end
  end

  defp stmt(s, _ctx) when is_binary(s), do: s

  defp stmt(:match, m, ctx), do: match_text(m, ctx)

  defp stmt(v, nil, _ctx) when v in [:accept, :drop, :continue, :return, :queue, :break],
    do: Atom.to_string(v)

  defp stmt(v, %{target: t}, _ctx) when v in [:jump, :goto], do: "#{v} #{t}"

  defp stmt(kind, %{map: _} = m, ctx) when kind in [:counter, :quota, :limit, :synproxy],
    do: [Atom.to_string(kind), " name ", expr(m, {:object, kind}, ctx)]

  defp stmt(:counter, nil, _ctx), do: "counter"

  defp stmt(:counter, %{} = c, ctx) do
    if Map.get(ctx, :stateless),
      do: "counter",
      else: "counter packets #{Map.get(c, :packets, 0)} bytes #{Map.get(c, :bytes, 0)}"
  end

  defp stmt(:counter, name, ctx), do: objref("counter", name, ctx)
  defp stmt(:quota, name, ctx) when not is_map(name) or not is_map_key(name, :val), do: objref("quota", name, ctx)

  defp stmt(:quota, q, ctx) do
    inv = if Map.get(q, :inv), do: "over ", else: ""
    used = Map.get(q, :used, 0)

    ["quota ", inv, "#{q.val} #{Map.get(q, :val_unit, "bytes")}",
     if(used > 0 and not Map.get(ctx, :stateless, false),
       do: " used #{used} #{Map.get(q, :used_unit, "bytes")}", else: "")]
  end

  defp stmt(:limit, l, ctx) when not is_map(l) or not is_map_key(l, :rate), do: objref("limit", l, ctx)

  defp stmt(:limit, l, _ctx) do
    inv = if Map.get(l, :inv), do: "over ", else: ""
    burst = Map.get(l, :burst, 0)

    case Map.get(l, :rate_unit) do
      nil ->
        ["limit rate ", inv, "#{l.rate}/#{Map.get(l, :per, "second")}",
         if(burst not in [0, 5], do: " burst #{burst} packets", else: "")]

      u ->
        ["limit rate ", inv, "#{l.rate} #{u}/#{Map.get(l, :per, "second")}",
         if(burst != 0, do: " burst #{burst} #{Map.get(l, :burst_unit, "bytes")}", else: "")]
    end
  end

  defp stmt(:"ct helper", v, ctx), do: objref_set("ct helper set ", v, ctx)
  defp stmt(:"ct timeout", v, ctx), do: objref_set("ct timeout set ", v, ctx)
  defp stmt(:"ct expectation", v, ctx), do: objref_set("ct expectation set ", v, ctx)
  defp stmt(:secmark, v, ctx), do: objref_set("meta secmark set ", v, ctx)

  defp stmt(:synproxy, v, ctx) when is_binary(v) or (is_map(v) and is_map_key(v, :map)),
    do: objref("synproxy", v, ctx)

  defp stmt(:synproxy, v, _ctx) do
    v = v || %{}
    flags = List.wrap(Map.get(v, :flags))
    ts = if "timestamp" in flags, do: " timestamp", else: ""
    sack = if "sack-perm" in flags, do: " sack-perm", else: ""

    case {Map.get(v, :mss), Map.get(v, :wscale)} do
      {nil, nil} -> "synproxy#{ts}#{sack}"
      {m, nil} -> "synproxy mss #{m}#{ts}#{sack}"
      {m, w} -> "synproxy mss #{m || 0} wscale #{w}#{ts}#{sack}"
    end
  end

  defp stmt(:mangle, %{key: k, value: v}, ctx) do
    t = dtype(k, ctx)

    lhs =
      case k do
        %{ct: ct} -> ct_text(Map.delete(ct, :family), nil, ctx)
        _ -> expr(k, nil, ctx)
      end

    [lhs, " set ", value(v, t, ctx)]
  end

  defp stmt(:log, nil, _ctx), do: "log"

  defp stmt(:log, l, _ctx) do
    flags = List.wrap(Map.get(l, :flags))

    flag_text =
      if "all" in flags do
        " flags all"
      else
        tcp =
          case {"tcp sequence" in flags, "tcp options" in flags} do
            {true, true} -> " flags tcp sequence,options"
            {true, false} -> " flags tcp sequence"
            {false, true} -> " flags tcp options"
            _ -> ""
          end

        [tcp,
         if("ip options" in flags, do: " flags ip options", else: ""),
         if("skuid" in flags, do: " flags skuid", else: ""),
         if("ether" in flags, do: " flags ether", else: "")]
      end

    ["log",
     if(p = Map.get(l, :prefix), do: [" prefix \"", p, "\""], else: ""),
     if(g = Map.get(l, :group), do: " group #{g}", else: ""),
     if(s = Map.get(l, :snaplen), do: " snaplen #{s}", else: ""),
     if(q = Map.get(l, :"queue-threshold"), do: " queue-threshold #{q}", else: ""),
     if((lv = Map.get(l, :level)) && lv != "warn", do: " level #{lv}", else: ""),
     flag_text]
  end

  defp stmt(nat, n, ctx) when nat in [:snat, :dnat, :masquerade, :redirect] do
    n = n || %{}
    addr = Map.get(n, :addr)
    port = Map.get(n, :port)
    fam = Map.get(n, :family)
    type_flags = List.wrap(Map.get(n, :type_flags))
    flags = List.wrap(Map.get(n, :flags))

    addr_type =
      case fam do
        "ip6" -> "ipv6_addr"
        "ip" -> "ipv4_addr"
        _ -> if ctx.family == "ip6", do: "ipv6_addr", else: "ipv4_addr"
      end

    head =
      if addr != nil or port != nil do
        [if(fam in ["ip", "ip6"], do: [" ", fam], else: ""),
         if("prefix" in type_flags, do: " prefix", else: ""), " to"]
      else
        []
      end

    addr_text =
      cond do
        addr == nil ->
          []

        port != nil and ip6_value?(addr) ->
          [" [", value(addr, addr_type, ctx), "]"]

        port != nil and match?(%{range: [_, _]}, addr) and ip6_value?(hd(addr.range)) ->
          [a, b] = addr.range
          [" [", value(a, addr_type, ctx), "]-[", value(b, addr_type, ctx), "]"]

        true ->
          [" ", value(addr, addr_type, ctx)]
      end

    port_text =
      if port != nil do
        [if(addr == nil, do: " ", else: ""), ":", value(port, "inet_service", ctx)]
      else
        []
      end

    nat_flags =
      Enum.filter(["random", "fully-random", "persistent"], &(&1 in flags))

    flag_text = if nat_flags == [], do: "", else: [" ", Enum.join(nat_flags, ",")]

    [Atom.to_string(nat), head, addr_text, port_text, flag_text]
  end

  defp stmt(:reject, nil, _ctx), do: "reject"

  defp stmt(:reject, r, ctx) do
    case {Map.get(r, :type), Map.get(r, :expr)} do
      {"tcp reset", _} -> "reject with tcp reset"
      {"icmpx", e} when e in [nil, "port-unreachable", 1] -> "reject"
      {"icmpx", e} -> ["reject with icmpx ", value(e, "icmpx_code", ctx)]
      {"icmp", e} when e in [nil, "port-unreachable", 3] -> "reject"
      {"icmp", e} -> ["reject with icmp ", value(e, "icmp_code", ctx)]
      {"icmpv6", e} when e in [nil, "port-unreachable", 4] -> "reject"
      {"icmpv6", e} -> ["reject with icmpv6 ", value(e, "icmpv6_code", ctx)]
      _ -> "reject"
    end
  end

  defp stmt(:set, s, ctx) do
    set_name = String.trim_leading(s.set, "@")
    ktype = named_key_type(set_name, ctx)
    extra = Enum.map(List.wrap(Map.get(s, :stmt)), &[" ", stmt(&1, Map.put(ctx, :stateless, true))])
    [s.op, " ", s.set, " { ", elem_text(s.elem, ktype, nil, ctx), extra, " }"]
  end

  defp stmt(:map, %{op: op} = s, ctx) do
    name = String.trim_leading(s.map, "@")
    ktype = named_key_type(name, ctx)
    dtype = named_data_type(name, ctx)
    extra = Enum.map(List.wrap(Map.get(s, :stmt)), &[" ", stmt(&1, Map.put(ctx, :stateless, true))])

    [op, " ", s.map, " { ", elem_text(s.elem, ktype, nil, ctx), extra, " : ",
     data_text(s.data, dtype, ctx), " }"]
  end

  defp stmt(:meter, m, ctx) do
    ["meter ", if(n = Map.get(m, :name), do: [n, " "], else: ""), "size #{Map.get(m, :size, 0)} { ",
     elem_text(m.key, dtype(m.key, ctx), nil, ctx), " ", stmt(m.stmt, Map.put(ctx, :stateless, true)),
     " }"]
  end

  defp stmt(:queue, q, ctx) do
    q = q || %{}
    flags = List.wrap(Map.get(q, :flags))
    fl = Enum.filter(["bypass", "fanout"], &(&1 in flags))

    ["queue", if(fl == [], do: "", else: [" flags ", Enum.join(fl, ",")]),
     " to ", if(n = Map.get(q, :num), do: value(n, "integer", ctx), else: "0")]
  end

  defp stmt(:"ct count", c, _ctx),
    do: "ct count #{if Map.get(c, :inv), do: "over ", else: ""}#{c.val}"

  defp stmt(:notrack, _, _ctx), do: "notrack"

  defp stmt(:dup, nil, _ctx), do: "dup"

  defp stmt(:dup, d, ctx) do
    to_type = if ctx.family == "netdev", do: "iface_index", else: addr_type_of(d.addr)

    ["dup to ", value(d.addr, to_type, ctx),
     if(dev = Map.get(d, :dev), do: [" device ", value(dev, "iface_index", ctx)], else: "")]
  end

  defp stmt(:fwd, f, ctx) do
    case Map.get(f, :addr) do
      nil ->
        ["fwd to ", value(f.dev, "iface_index", ctx)]

      a ->
        ["fwd ", Map.get(f, :family, "ip"), " to ", value(a, addr_type_of(a), ctx), " device ",
         value(f.dev, "iface_index", ctx)]
    end
  end

  defp stmt(:tproxy, t, ctx) do
    addr = Map.get(t, :addr)
    port = Map.get(t, :port)

    ["tproxy", if(fam = Map.get(t, :family), do: [" ", fam], else: ""), " to",
     cond do
       addr == nil -> ""
       ip6_value?(addr) -> [" [", value(addr, "ipv6_addr", ctx), "]"]
       true -> [" ", value(addr, addr_type_of(addr), ctx)]
     end,
     if(port != nil, do: [if(addr == nil, do: " ", else: ""), ":", value(port, "inet_service", ctx)], else: "")]
  end

  defp stmt(:flow, f, _ctx), do: ["flow add ", f.flowtable]
  defp stmt(:reset, e, ctx), do: ["reset ", expr(e, nil, ctx)]

  defp stmt(:xt, x, _ctx), do: ["xt ", Map.get(x, :type, "match"), " ", Map.get(x, :name, "")]

  defp stmt(:vmap, %{key: k, data: d}, ctx) do
    [expr(k, nil, ctx), " vmap ", mappings(d, dtype(k, ctx), :verdict, ctx)]
  end

  defp stmt(:map, %{key: _} = m, ctx), do: expr(%{map: m}, nil, ctx)

  defp stmt(:last, l, _ctx) do
    case l do
      %{used: u} when is_integer(u) -> ["last used ", time_text(u)]
      _ -> "last used never"
    end
  end

  defp stmt(kind, v, _ctx) do
    raise ArgumentError, "unknown statement #{inspect(kind)}: #{inspect(v, limit: 8)}"
  end

  defp objref(kind, name, _ctx) when is_binary(name), do: [kind, " name ", quote_str(name)]
  defp objref(kind, e, ctx), do: [kind, " name ", value(e, {:object, kind}, ctx)]

  defp objref_set(prefix, name, _ctx) when is_binary(name), do: [prefix, quote_str(name)]
  defp objref_set(prefix, e, ctx), do: [prefix, value(e, {:object, prefix}, ctx)]

  defp named_key_type(name, ctx) do
    case Map.get(ctx.sets, name) do
      nil -> nil
      s -> set_key_type(s)
    end
  end

  defp named_data_type(name, ctx) do
    case Map.get(ctx.sets, name) do
      nil -> nil
      s -> set_data_type(s)
    end
  end

  # ---------------------------------------------------------------------
  # relational expressions

  # nft's flag comparison (flagcmp_expr_print): `tcp flags syn / fin,syn`;
  # JSON has it as a binop whose mask is a list.
  defp match_text(%{op: op, left: %{:& => [x, mask]}, right: r}, ctx) when is_list(mask) do
    t = dtype(x, ctx)
    [expr(x, nil, ctx), if(op == "!=", do: " != ", else: " "), value(r, t, ctx), " / ", value(mask, t, ctx)]
  end

  # tcp_option print: a raw option's presence is `tcp option N`
  defp match_text(%{op: "==", left: %{"tcp option": %{base: b, offset: 0}}, right: r}, _ctx)
       when is_boolean(r),
       do: ["tcp option #{b} ", if(r, do: "exists", else: "missing")]

  defp match_text(%{op: op, left: l, right: r}, ctx) do
    ctx = if ctx_l3_needed?(l, ctx), do: Map.put(ctx, :l3, l3_of_value(r, ctx)), else: ctx
    t = dtype(l, ctx)
    left = expr(l, nil, ctx)

    opt =
      case op do
        "in" -> " "
        "==" -> if must_print_eq?(l, r, t), do: " == ", else: " "
        o -> " #{o} "
      end

    [left, opt, value(r, t, ctx)]
  end

  defp must_print_eq?(l, r, t) do
    binop?(l) or (bitmask_type?(t) and plain_value?(r))
  end

  defp binop?(e) when is_map(e), do: Enum.any?(["&", "|", "^", "<<", ">>"], &Map.has_key?(e, String.to_atom(&1)))
  defp binop?(_), do: false

  defp plain_value?(v) when is_binary(v), do: not String.starts_with?(v, "@")
  defp plain_value?(v) when is_integer(v), do: true
  defp plain_value?(_), do: false

  defp bitmask_type?(t) when is_binary(t) do
    case Tables.datatype(t) do
      %{basetype: "bitmask"} -> true
      _ -> false
    end
  end

  defp bitmask_type?(_), do: false

  # ---------------------------------------------------------------------
  # expressions (left-hand side forms)

  @binops [:&, :|, :^, :"<<", :">>"]
  @prec %{:"<<" => 1, :">>" => 1, :& => 2, :^ => 3, :| => 4}

  # expr(e, type, ctx): an expression; `type` is the datatype a literal
  # in it has (from the other side of a relation or assignment).
  defp expr(e, type, ctx) when is_map(e) do
    case Map.to_list(e) do
      [{k, v}] -> expr(k, v, type, ctx)
      _ -> raise ArgumentError, "an expression must have one key: #{inspect(e, limit: 8)}"
    end
  end

  defp expr(e, type, ctx), do: value(e, type, ctx)

  defp expr(:payload, %{protocol: p, field: f}, _t, _ctx), do: [p, " ", f]
  defp expr(:payload, %{base: b, offset: o, len: l}, _t, _ctx), do: "@#{b},#{o},#{l}"

  defp expr(:meta, %{key: k}, _t, _ctx) do
    case Tables.key("meta", k) do
      %{unqualified: true} -> k
      _ -> "meta " <> k
    end
  end

  defp expr(:ct, ct, _t, ctx), do: ct_text(ct, nil, ctx)

  defp expr(:exthdr, x, _t, _ctx) do
    case Map.get(x, :field) do
      nil -> "exthdr #{x.name}"
      f -> "#{x.name} #{f}"
    end
  end

  defp expr(:"tcp option", x, _t, _ctx) do
    cond do
      Map.has_key?(x, :base) and Map.get(x, :offset, 0) == 0 and Map.get(x, :len, 0) == 0 ->
        "tcp option #{x.base}"

      Map.has_key?(x, :base) ->
        "tcp option @#{x.base},#{x.offset},#{x.len}"

      f = Map.get(x, :field) ->
        "tcp option #{x.name} #{f}"

      true ->
        "tcp option #{x.name}"
    end
  end

  defp expr(:"ip option", x, _t, _ctx),
    do: ["ip option ", x.name, if(f = Map.get(x, :field), do: [" ", f], else: "")]

  defp expr(:"sctp chunk", x, _t, _ctx),
    do: ["sctp chunk ", x.name, if(f = Map.get(x, :field), do: [" ", f], else: "")]

  defp expr(:"dccp option", x, _t, _ctx), do: "dccp option #{x.type}"

  defp expr(:rt, r, _t, _ctx) do
    fam = case Map.get(r, :family) do
      nil -> ""
      f -> f <> " "
    end

    "rt #{fam}#{r.key}"
  end

  defp expr(:fib, f, _t, _ctx) do
    flags = List.wrap(Map.get(f, :flags))
    ["fib ", Enum.map_join(flags, " . ", &to_string/1), " ", f.result]
  end

  defp expr(:socket, s, _t, _ctx) do
    case Map.get(s, :level) do
      nil -> "socket #{s.key}"
      l -> "socket #{s.key} level #{l}"
    end
  end

  defp expr(:osf, o, _t, _ctx) do
    ttl = case Map.get(o, :ttl) do
      nil -> ""
      t -> "ttl #{t} "
    end

    "osf #{ttl}#{o.key}"
  end

  defp expr(:ipsec, x, _t, _ctx) do
    spnum = case Map.get(x, :spnum, 0) do
      0 -> ""
      n -> " spnum #{n}"
    end

    fam = case Map.get(x, :family) do
      nil -> ""
      f -> " " <> f
    end

    "ipsec #{x.dir}#{spnum}#{fam} #{x.key}"
  end

  defp expr(:numgen, n, _t, _ctx) do
    off = Map.get(n, :offset, 0)
    "numgen #{n.mode} mod #{n.mod}" <> if(off != 0, do: " offset #{off}", else: "")
  end

  defp expr(:jhash, h, _t, ctx) do
    ["jhash ", expr(h.expr, nil, ctx), " mod #{h.mod}", hash_tail(h)]
  end

  defp expr(:symhash, h, _t, _ctx), do: ["symhash mod #{h.mod}", hash_tail(h)]

  defp expr(op, [a, b], t, ctx) when op in @binops do
    lt = dtype(a, ctx) || t
    rt = if op in [:"<<", :">>"], do: "integer", else: lt
    [binop_arg(op, a, lt, ctx), " #{op} ", binop_arg(op, b, rt, ctx)]
  end

  defp expr(:concat, parts, t, ctx) do
    types =
      case t do
        {:concat, ts} -> ts
        _ -> List.duplicate(nil, length(parts))
      end

    types = types ++ List.duplicate(nil, max(length(parts) - length(types), 0))

    parts
    |> Enum.zip(types)
    |> Enum.map(fn {p, pt} -> value(p, dtype(p, %{}) || pt, ctx) end)
    |> Enum.intersperse(" . ")
  end

  defp expr(:map, %{key: k, data: d}, t, ctx) do
    kt = dtype(k, ctx)

    {kw, dt} =
      case d do
        "@" <> name ->
          case named_data_type(name, ctx) do
            :verdict -> {" vmap ", :verdict}
            dt -> {" map ", dt}
          end

        %{set: elems} ->
          if vmap_elems?(elems), do: {" vmap ", :verdict}, else: {" map ", t}

        _ ->
          {" map ", t}
      end

    [expr(k, nil, ctx), kw, mappings(d, kt, dt, ctx)]
  end

  defp expr(:vmap, %{key: k, data: d}, _t, ctx) do
    [expr(k, nil, ctx), " vmap ", mappings(d, dtype(k, ctx), :verdict, ctx)]
  end

  defp expr(:prefix, %{addr: a, len: l}, t, ctx), do: [value(a, t, ctx), "/#{l}"]

  defp expr(:range, [a, b], t, ctx), do: [value(a, t, ctx), "-", value(b, t, ctx)]

  defp expr(:set, elems, t, ctx) when is_list(elems) do
    set_braces(Enum.map(elems, &elem_text(&1, t, nil, ctx)), :single)
  end

  defp expr(:elem, e, t, ctx), do: elem_text(%{elem: e}, t, nil, ctx)

  defp expr(v, nil, _t, _ctx) when v in [:accept, :drop, :continue, :return, :queue, :break],
    do: Atom.to_string(v)

  defp expr(v, %{target: tg}, _t, _ctx) when v in [:jump, :goto], do: "#{v} #{tg}"

  defp expr(kind, v, _t, _ctx) do
    raise ArgumentError, "unknown expression #{inspect(kind)}: #{inspect(v, limit: 8)}"
  end

  defp vmap_elems?([[_, v] | _]) when is_map(v) do
    case Map.keys(v) do
      [k] -> k in [:accept, :drop, :continue, :return, :jump, :goto, :queue]
      _ -> false
    end
  end

  defp vmap_elems?(_), do: false

  defp mappings("@" <> _ = name, _kt, _dt, _ctx), do: name

  defp mappings(%{set: elems}, kt, dt, ctx) do
    set_braces(Enum.map(elems, fn
      [k, v] -> [elem_text(k, kt, nil, ctx), " : ", data_text(v, dt, ctx)]
      other -> elem_text(other, kt, nil, ctx)
    end), :single)
  end

  defp mappings(other, kt, _dt, ctx), do: value(other, kt, ctx)

  defp hash_tail(h) do
    [if(s = Map.get(h, :seed), do: " seed 0x" <> String.downcase(Integer.to_string(s, 16)), else: ""),
     case Map.get(h, :offset, 0) do
       0 -> ""
       o -> " offset #{o}"
     end]
  end

  defp binop_arg(op, arg, t, ctx) do
    case arg_binop(arg) do
      {aop, _} ->
        if @prec[op] < @prec[aop], do: ["(", expr(arg, t, ctx), ")"], else: expr(arg, t, ctx)

      nil ->
        expr(arg, t, ctx)
    end
  end

  defp arg_binop(arg) when is_map(arg) do
    case Map.to_list(arg) do
      [{k, [_, _] = v}] when k in @binops -> {k, v}
      _ -> nil
    end
  end

  defp arg_binop(_), do: nil

  defp ct_text(ct, _t, ctx) do
    key = ct.key

    case Map.get(ct, :dir) do
      nil ->
        "ct #{key}"

      dir ->
        fam =
          if key in ["saddr", "daddr"] do
            case Map.get(ct, :family) || ct_family(ctx) do
              nil -> ""
              f -> f <> " "
            end
          else
            ""
          end

        "ct #{dir} #{fam}#{key}"
    end
  end

  defp ct_family(%{l3: f}) when f in ["ip", "ip6"], do: f
  defp ct_family(_), do: nil

  # A ct address whose network protocol the listing dropped (nft removes
  # the `meta nfproto` dependency): the compared value tells it.
  defp ctx_l3_needed?(%{ct: %{key: k, dir: _}}, ctx) when k in ["saddr", "daddr"],
    do: Map.get(ctx, :l3) == nil

  defp ctx_l3_needed?(_, _), do: false

  defp l3_of_value("@" <> name, ctx) do
    case named_key_type(name, ctx) do
      "ipv4_addr" -> "ip"
      "ipv6_addr" -> "ip6"
      _ -> nil
    end
  end

  defp l3_of_value(v, _ctx) when is_binary(v), do: if(String.contains?(v, ":"), do: "ip6", else: "ip")
  defp l3_of_value(%{prefix: %{addr: a}}, ctx), do: l3_of_value(a, ctx)
  defp l3_of_value(%{range: [a, _]}, ctx), do: l3_of_value(a, ctx)
  defp l3_of_value(%{set: [e | _]}, ctx), do: l3_of_value(e, ctx)
  defp l3_of_value(%{elem: %{val: v}}, ctx), do: l3_of_value(v, ctx)
  defp l3_of_value(_, _), do: nil

  # The network protocol a rule's expressions work on (nft's ct
  # expressions print it): the table's family, or a `meta nfproto` match.
  defp rule_l3(_exprs, family) when family in ["ip", "ip6"], do: family

  defp rule_l3(exprs, _family) do
    Enum.find_value(exprs, fn
      %{match: %{op: op, left: %{meta: %{key: "nfproto"}}, right: "ipv4"}} when op in ["==", "in"] -> "ip"
      %{match: %{op: op, left: %{meta: %{key: "nfproto"}}, right: "ipv6"}} when op in ["==", "in"] -> "ip6"
      _ -> nil
    end)
  end

  # ---------------------------------------------------------------------
  # datatypes of expressions

  @doc false
  def dtype(e, ctx) when is_map(e) do
    case Map.to_list(e) do
      [{:payload, %{protocol: p, field: f}}] ->
        field_type(Tables.field(p, f))

      # payload_init_raw: raw payloads print in hex, except th ports
      [{:payload, %{base: "th", offset: o, len: 16}}] when o in [0, 16] ->
        "inet_service"

      [{:payload, %{}}] ->
        "xinteger"

      [{:meta, %{key: k}}] ->
        key_type("meta", k)

      [{:ct, %{key: k} = ct}] ->
        case k do
          k when k in ["saddr", "daddr", "ip saddr", "ip daddr", "ip6 saddr", "ip6 daddr"] ->
            ct_addr_type(k, ct, ctx)

          k when k in ["proto-src", "proto-dst"] ->
            "inet_service"

          _ ->
            key_type("ct", k)
        end

      [{:rt, %{key: k}}] ->
        key_type("rt", k)

      [{:fib, %{result: r}}] ->
        # Tables.key("fib", "oif") is the flag of that name; the result is
        # the entry of kind "result"
        Enum.find_value(Tables.keys("fib"), fn k ->
          if k.name == r and Map.get(k, :kind) == "result", do: Map.get(k, :type)
        end)

      [{:socket, %{key: k}}] ->
        key_type("socket", k)

      [{:osf, %{key: k}}] ->
        key_type("osf", k) || "string"

      [{:ipsec, %{key: k} = x}] ->
        case k do
          k when k in ["saddr", "daddr"] -> if Map.get(x, :family) == "ip6", do: "ipv6_addr", else: "ipv4_addr"
          _ -> key_type("ipsec", k)
        end

      [{:exthdr, %{name: n} = x}] ->
        case Map.get(x, :field) do
          nil -> "boolean"
          f -> exthdr_type("ipv6", n, f)
        end

      [{:"tcp option", %{name: n} = x}] ->
        case Map.get(x, :field) do
          nil -> "boolean"
          f -> exthdr_type("tcp-options", n, f)
        end

      [{:"ip option", %{name: n} = x}] ->
        case Map.get(x, :field) do
          nil -> "boolean"
          f -> exthdr_type("ip-options", n, f)
        end

      [{:"sctp chunk", %{name: n} = x}] ->
        case Map.get(x, :field) do
          nil -> "boolean"
          f -> exthdr_type("sctp-chunks", n, f)
        end

      [{k, _}] when k in [:numgen, :jhash, :symhash] ->
        "integer"

      [{op, [a, _]}] when op in @binops ->
        dtype(a, ctx)

      [{:concat, parts}] ->
        {:concat, Enum.map(parts, &dtype(&1, ctx))}

      [{:map, %{data: "@" <> name}}] ->
        named_data_type(name, ctx)

      _ ->
        nil
    end
  end

  def dtype(_, _), do: nil

  defp field_type(%{type: t}), do: t
  defp field_type(_), do: nil

  defp key_type(group, k) do
    case Tables.key(group, k) do
      %{type: t} -> t
      _ -> nil
    end
  end

  defp exthdr_type(group, name, field) do
    group
    |> Tables.exthdrs()
    |> Enum.find_value(fn h ->
      if h.name == name, do: h |> Map.get(:fields, []) |> Enum.find(&(&1.name == field)) |> field_type()
    end)
  end

  defp ct_addr_type(_k, ct, ctx) do
    case Map.get(ct, :family) || Map.get(ctx, :l3) || Map.get(ctx, :family) do
      "ip6" -> "ipv6_addr"
      "ip" -> "ipv4_addr"
      _ -> nil
    end
  end

  defp addr_type_of(v) do
    if ip6_value?(v), do: "ipv6_addr", else: "ipv4_addr"
  end

  defp ip6_value?(v) when is_binary(v), do: String.contains?(v, ":")
  defp ip6_value?(_), do: false

  # ---------------------------------------------------------------------
  # values

  # value(v, type, ctx): a literal (JSON value) in nft's text form for its
  # datatype, or an expression.
  defp value(v, {:concat, ts}, ctx) when is_map(v) and is_map_key(v, :concat), do: expr(:concat, v.concat, {:concat, ts}, ctx)
  defp value(v, t, ctx) when is_map(v), do: expr(v, t, ctx)

  defp value(v, t, ctx) when is_list(v) do
    # a list of flags (ct state established,related) or values
    v |> Enum.map(&value(&1, t, ctx)) |> Enum.intersperse(",")
  end

  defp value("@" <> _ = ref, _t, _ctx), do: ref
  defp value("*", _t, _ctx), do: "*"
  defp value(v, {:object, _}, _ctx) when is_binary(v), do: quote_str(v)
  defp value(v, :verdict, ctx) when is_map(v), do: stmt(v, ctx)
  defp value(true, _t, _ctx), do: "exists"
  defp value(false, _t, _ctx), do: "missing"
  defp value(nil, _t, _ctx), do: ""

  defp value(v, t, _ctx) when is_binary(v) do
    if quoted_type?(t, v), do: quote_str(v), else: v
  end

  defp value(v, t, _ctx) when is_integer(v), do: int_text(t, v)

  defp value(v, _t, _ctx), do: to_string(v)

  defp quote_str(s), do: "\"" <> s <> "\""

  # Datatypes nft prints in double quotes (strings, interface names,
  # names of users, groups, labels, symbolic marks/realms/groups, ...).
  @quoted_formats [:string, :ifname, :ct_label, :cgroupv2, :date, :hour]
  @quoted_names_formats [:ifindex, :uid, :gid, :mark, :realm, :devgroup]

  defp quoted_type?(t, v) when is_binary(t) do
    case Tables.datatype(t) do
      %{format: f} when f in @quoted_formats -> true
      %{format: f} when f in @quoted_names_formats -> not numeric?(v)
      %{name: "day"} -> not numeric?(v)
      _ -> false
    end
  end

  defp quoted_type?(_, _), do: false

  defp numeric?(v), do: String.match?(v, ~r/^(0x[0-9a-fA-F]+|[0-9]+)$/)

  # An integer in the datatype's print form.
  defp int_text(t, n) when is_binary(t) do
    case Tables.datatype(t) do
      nil ->
        Integer.to_string(n)

      dt ->
        case Map.get(dt, :format) do
          :time -> time_text(n * 1000)
          :bitmask -> flags_text(dt, n)
          :symbolic -> symbol_text(dt, n)
          :inet_proto -> proto_text(n)
          :xinteger -> "0x" <> String.downcase(Integer.to_string(n, 16))
          :ct_label -> Integer.to_string(n)
          _ -> basefmt_text(dt, n)
        end
    end
  end

  defp int_text(_t, n), do: Integer.to_string(n)

  defp symbol_text(dt, n) do
    case Enum.find(Map.get(dt, :symbols, []), &(&1.value == n)) do
      %{name: name} -> name
      nil -> basefmt_text(dt, n)
    end
  end

  defp flags_text(dt, n) do
    # a bitmask value printed as nft's flags: names joined by "|" in a
    # set element, "," in a list; a single integer prints in hex.
    names = NFTables.Port.Nft.Value.flag_names(dt, n)

    if Enum.all?(names, &is_binary/1),
      do: Enum.join(names, " | "),
      else: basefmt_text(dt, n)
  end

  defp proto_text(n) do
    case List.keyfind(NFTables.Port.Nft.Value.System.protocols(), n, 0) do
      {_, name} -> name
      nil -> Integer.to_string(n)
    end
  end

  # integer_type_print: the first basefmt of the datatype or its base types.
  defp basefmt_text(dt, n) do
    case basefmt(dt) do
      nil ->
        Integer.to_string(n)

      fmt ->
        hex = String.downcase(Integer.to_string(n, 16))

        case Regex.run(~r/^0x%\.?(\d*)Zx$/, fmt) do
          [_, ""] -> "0x" <> hex
          [_, w] -> "0x" <> String.pad_leading(hex, String.to_integer(w), "0")
          _ -> Integer.to_string(n)
        end
    end
  end

  defp basefmt(nil), do: nil

  defp basefmt(dt) do
    case Map.get(dt, :basefmt) do
      nil ->
        case Map.get(dt, :basetype) do
          nil -> nil
          b when b == dt.name -> nil
          b -> basefmt(Tables.datatype(b))
        end

      f ->
        f
    end
  end

  @doc "Milliseconds as nft's time_print prints them (`1d2h3m4s5ms`)."
  @spec time_text(non_neg_integer()) :: String.t()
  def time_text(ms) do
    [{"d", 86_400_000}, {"h", 3_600_000}, {"m", 60_000}, {"s", 1000}, {"ms", 1}]
    |> Enum.reduce({ms, ""}, fn {u, unit}, {rest, acc} ->
      if rest >= unit, do: {rem(rest, unit), acc <> "#{div(rest, unit)}#{u}"}, else: {rest, acc}
    end)
    |> elem(1)
  end

  # get_rate: bytes in the largest unit that divides them.
  defp rate_unit(0), do: {0, "bytes"}

  defp rate_unit(n) do
    Enum.reduce_while(["bytes", "kbytes", "mbytes"], n, fn
      "mbytes", acc -> {:halt, {acc, "mbytes"}}
      u, acc -> if rem(acc, 1024) == 0, do: {:cont, div(acc, 1024)}, else: {:halt, {acc, u}}
    end)
  end
end
