defmodule NFTables.Port.Sync do
  @moduledoc """
  Desired state: converge whole tables to what they should hold, in one
  transaction, changing only what differs.

      {:ok, %{added: 2, deleted: 1, updated: 0, genid: 18}} =
        NFTables.Port.sync(pid, [
          {:add, :table, %{family: :inet, name: "filter"}},
          {:add, :chain, %{family: :inet, table: "filter", name: "input",
                           type: "filter", hooknum: :input, prio: 0, policy: :drop}},
          {:add, :rule, %{family: :inet, table: "filter", chain: "input", exprs: [...]}}
        ])

  `desired` is the complete content of one or more tables: every table
  named by an `{:add, :table, attrs}` message is made to hold exactly the
  chains, rules, sets, elements, stateful objects and flowtables listed
  for it, and nothing else (tables not named are left alone). It is given
  as low-level messages (`{:add, type, attrs}`, what `NFTables.Port.dump/2`
  gives) or as a high-level (nft) document, which
  `NFTables.Port.Nft.to_messages/1` translates (the one point where sync
  meets the nft vocabulary; `{:error, :nft_format_unavailable}` without
  it).

  How the difference is found (on canonical forms: handles, use counts,
  positions and counters' values are never compared):

    * tables, chains, sets, stateful objects, flowtables: by name; one that
      exists is left alone when every attribute the desired state gives has
      that value (attributes it leaves out are not compared). A table,
      chain, object or flowtable that differs is sent again as `:add`,
      which the kernel takes as an update (a chain's policy, a quota's
      limit); a set that differs is deleted and made again with its
      elements;
    * elements: by key (with `key_end` and `flags`); an element whose data
      differs is deleted and added;
    * rules, chain by chain, by their content (expressions and userdata,
      i.e. the comment) and order: the longest common subsequence of the
      current and the desired rules stays untouched (its rules keep their
      handles and counters), the current rules outside it are deleted by
      handle, the desired ones outside it are inserted at their place
      (after the kept rule before them, or before the kept rule after
      them). A desired rule that gives a `handle` replaces that rule when
      its content differs.

  What is there comes from `cache:` (an `NFTables.Port.Cache` of the same
  port: no kernel dump at all) or, without one, from listings of the
  desired tables. With a cache, a chain whose rules a sync found equal to
  the desired ones is remembered (the version of the chain's rules in the
  cache and a 64-bit fingerprint of the desired rules): while neither
  changes, a later sync does not read those rules again. The transaction is guarded by that generation
  (`commit(..., genid: g)`); when someone changed the ruleset meanwhile
  (`{:error, :generation_changed}`) the difference is computed again, at
  most `retries:` times (5). Nothing to change: no message is sent.

  Answers `{:ok, %{added: n, deleted: n, updated: n, genid: g}}` (objects
  and elements added, deleted, updated in place; `g` the generation after
  it), or with `dry_run: true`, without sending anything,
  `{:ok, %{added:, deleted:, updated:, genid:, msgs: msgs}}` (the
  transaction it would send). Errors: `{:error, reason}` with the
  commit's reason, `{:error, "sync: ..."}` for a desired state it cannot
  read.
  """

  alias NFTables.Port.Snapshot

  @obj_kinds Snapshot.obj_kinds()
  # Kernel-assigned, or transaction-local (ids of objects new in a batch).
  @volatile [:handle, :use, :position, :position_id, :id, :set_id]

  @doc "See the module doc."
  @spec sync(GenServer.server(), term(), keyword()) :: {:ok, map()} | {:error, term()}
  def sync(port, desired, opts \\ []) do
    with {:ok, msgs} <- desired_messages(desired),
         {:ok, want} <- parse(msgs) do
      attempt(port, want, opts, Keyword.get(opts, :retries, 5))
    end
  end

  defp attempt(port, want, opts, retries) do
    tables = Map.keys(want.tables)

    with {:ok, have} <- current(port, tables, opts) do
      {msgs, counts} = diff(want, have)
      result = Map.put(counts, :genid, have.genid)

      cond do
        Keyword.get(opts, :dry_run, false) ->
          {:ok, Map.put(result, :msgs, msgs)}

        msgs == [] ->
          {:ok, result}

        true ->
          case NFTables.Port.commit(port, msgs, genid: have.genid, timeout: Keyword.get(opts, :timeout, 120_000)) do
            :ok ->
              {:ok, %{result | genid: have.genid + 1}}

            {:error, :generation_changed} when retries > 0 ->
              catch_up(opts)
              attempt(port, want, opts, retries - 1)

            error ->
              error
          end
      end
    end
  end

  defp catch_up(opts) do
    case Keyword.get(opts, :cache) do
      nil -> :ok
      cache -> NFTables.Port.Cache.sync_point(cache, 5_000)
    end
  end

  defp current(port, tables, opts) do
    case Keyword.get(opts, :cache) do
      nil -> Snapshot.load(port, tables)
      # Rules stay in ETS until a chain needs them (see rules_diff/4).
      cache -> {:ok, NFTables.Port.Cache.snapshot(cache, tables, lazy_rules: true) |> Map.put(:cache, cache)}
    end
  end

  ## The desired state

  # The single point where a high-level document becomes messages.
  defp desired_messages(desired) when is_list(desired) do
    if Enum.all?(desired, &match?({_, _, %{}}, &1)),
      do: {:ok, desired},
      else: nft_document(desired)
  end

  defp desired_messages(desired), do: nft_document(desired)

  defp nft_document(doc) do
    if Code.ensure_loaded?(NFTables.Port.Nft) and
         function_exported?(NFTables.Port.Nft, :to_messages, 1) do
      case apply(NFTables.Port.Nft, :to_messages, [doc]) do
        {:ok, msgs} -> {:ok, msgs}
        {:error, _} = error -> error
        msgs when is_list(msgs) -> {:ok, msgs}
      end
    else
      {:error, :nft_format_unavailable}
    end
  end

  @doc false
  # The desired messages as a snapshot (genid 0).
  @spec parse([tuple()]) :: {:ok, Snapshot.t()} | {:error, String.t()}
  def parse(msgs) do
    msgs
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, Snapshot.empty()}, fn {msg, i}, {:ok, snap} ->
      case put(snap, msg) do
        {:ok, snap} -> {:cont, {:ok, snap}}
        {:error, why} -> {:halt, {:error, "sync: message #{i} (#{inspect(msg, limit: 6)}): #{why}"}}
      end
    end)
    |> case do
      {:ok, snap} ->
        rules = Map.new(snap.rules, fn {k, l} -> {k, Enum.reverse(l)} end)
        rules = Map.merge(Map.new(snap.chains, fn {k, _} -> {k, []} end), rules)
        elements = Map.merge(Map.new(snap.sets, fn {k, _} -> {k, %{}} end), snap.elements)
        {:ok, %{snap | rules: rules, elements: elements}}

      error ->
        error
    end
  end

  defp put(snap, {:add, :table, %{family: f, name: t} = a}),
    do: {:ok, put_in(snap, [:tables, {f, t}], a)}

  defp put(snap, {:add, type, %{family: f, table: t} = a}) do
    cond do
      not Map.has_key?(snap.tables, {f, t}) ->
        {:error, "its table #{f} #{t} is not in the desired state: add {:add, :table, ...} first"}

      true ->
        put_obj(snap, type, {f, t}, a)
    end
  end

  defp put(_snap, {:add, type, _}),
    do: {:error, "a #{type} needs :family and :table (a table :family and :name)"}

  defp put(_snap, {verb, _, _}),
    do: {:error, "the desired state is made of :add messages, not #{inspect(verb)}"}

  defp put(_snap, _), do: {:error, "not a {verb, type, attrs} message"}

  defp put_obj(snap, :chain, {f, t}, %{name: n} = a), do: {:ok, put_in(snap, [:chains, {f, t, n}], a)}
  defp put_obj(snap, :set, {f, t}, %{name: n} = a), do: {:ok, put_in(snap, [:sets, {f, t, n}], a)}

  defp put_obj(snap, :flowtable, {f, t}, %{name: n} = a),
    do: {:ok, put_in(snap, [:flowtables, {f, t, n}], a)}

  defp put_obj(snap, kind, {f, t}, %{name: n} = a) when kind in @obj_kinds,
    do: {:ok, put_in(snap, [:objs, {f, t, n, kind}], a)}

  defp put_obj(snap, :rule, {f, t}, %{chain: c} = a) do
    if Map.has_key?(snap.chains, {f, t, c}),
      do: {:ok, %{snap | rules: Map.update(snap.rules, {f, t, c}, [a], &[a | &1])}},
      else: {:error, "its chain #{c} is not in the desired state (before it)"}
  end

  defp put_obj(snap, :element, {f, t}, %{set: s, elements: es} = _a) when is_list(es) do
    if Map.has_key?(snap.sets, {f, t, s}) do
      elems = Map.new(es, &{Snapshot.elem_key(&1), &1})
      {:ok, %{snap | elements: Map.update(snap.elements, {f, t, s}, elems, &Map.merge(&1, elems))}}
    else
      {:error, "its set #{s} is not in the desired state (before it)"}
    end
  end

  defp put_obj(_snap, type, _t, _a), do: {:error, "cannot sync a #{inspect(type)} like this (missing :name, :chain or :elements?)"}

  ## The difference

  @doc false
  # {msgs, counts}: the transaction that turns `have` into `want` for
  # want's tables.
  @spec diff(Snapshot.t(), Snapshot.t()) :: {[tuple()], map()}
  def diff(want, have) do
    acc = %{del_rules: [], del_elems: [], del_chains: [], del_objs: [], adds: [], rules: [],
            added: 0, deleted: 0, updated: 0}

    acc =
      Enum.reduce(want.tables, acc, fn {{f, t} = tid, ta}, acc ->
        case Map.fetch(have.tables, tid) do
          :error -> new_table(want, tid, ta, acc)
          {:ok, have_ta} -> table_diff(want, have, tid, ta, have_ta, acc)
        end
        |> then(fn acc -> {f, t, acc} end)
        |> elem(2)
      end)

    msgs =
      Enum.reverse(acc.del_rules) ++
        Enum.reverse(acc.del_elems) ++
        Enum.reverse(acc.del_chains) ++
        Enum.reverse(acc.del_objs) ++ Enum.reverse(acc.adds) ++ Enum.reverse(acc.rules)

    {msgs, Map.take(acc, [:added, :deleted, :updated])}
  end

  defp of_table(map, {f, t}), do: Enum.filter(map, fn {k, _} -> elem(k, 0) == f and elem(k, 1) == t end)

  defp add(acc, msg, n \\ 1), do: %{acc | adds: [msg | acc.adds], added: acc.added + n}
  defp update(acc, msg), do: %{acc | adds: [msg | acc.adds], updated: acc.updated + 1}

  defp new_table(want, tid, ta, acc) do
    acc = add(acc, {:add, :table, ta})
    acc = Enum.reduce(of_table(want.sets, tid), acc, fn {_, a}, acc -> add(acc, {:add, :set, a}) end)
    acc = Enum.reduce(of_table(want.objs, tid), acc, fn {{_, _, _, k}, a}, acc -> add(acc, {:add, k, a}) end)
    acc = Enum.reduce(of_table(want.flowtables, tid), acc, fn {_, a}, acc -> add(acc, {:add, :flowtable, a}) end)
    acc = Enum.reduce(of_table(want.chains, tid), acc, fn {_, a}, acc -> add(acc, {:add, :chain, a}) end)
    acc = Enum.reduce(of_table(want.elements, tid), acc, fn {key, elems}, acc -> add_elems(acc, key, Map.values(elems)) end)

    Enum.reduce(of_table(want.rules, tid), acc, fn {{f, t, c}, rules}, acc ->
      Enum.reduce(rules, acc, fn r, acc ->
        %{acc | rules: [{:add, :rule, new_rule(r, f, t, c)} | acc.rules], added: acc.added + 1}
      end)
    end)
  end

  defp add_elems(acc, _key, []), do: acc

  defp add_elems(acc, {f, t, s}, elems),
    do: add(acc, {:add, :element, %{family: f, table: t, set: s, elements: elems}}, length(elems))

  defp del_elems(acc, _key, []), do: acc

  defp del_elems(acc, {f, t, s}, elems) do
    msg = {:delete, :element, %{family: f, table: t, set: s, elements: Enum.map(elems, &Snapshot.elem_key/1)}}
    %{acc | del_elems: [msg | acc.del_elems], deleted: acc.deleted + length(elems)}
  end

  defp table_diff(want, have, tid, ta, have_ta, acc) do
    acc = if same?(ta, have_ta), do: acc, else: update(acc, {:add, :table, ta})

    # Sets: a changed set is made again, elements and all.
    {acc, remade} =
      Enum.reduce(of_table(want.sets, tid), {acc, MapSet.new()}, fn {key, a}, {acc, remade} ->
        case Map.fetch(have.sets, key) do
          :error ->
            {add(acc, {:add, :set, a}) |> add_elems(key, Map.values(want.elements[key])), MapSet.put(remade, key)}

          {:ok, h} ->
            if same?(a, h) do
              {acc, remade}
            else
              acc = %{acc | del_objs: [{:delete, :set, keys(:set, h)} | acc.del_objs], deleted: acc.deleted + 1 + map_size(have.elements[key] || %{})}
              {add(acc, {:add, :set, a}) |> add_elems(key, Map.values(want.elements[key])), MapSet.put(remade, key)}
            end
        end
      end)

    acc =
      Enum.reduce(of_table(have.sets, tid), acc, fn {key, h}, acc ->
        if Map.has_key?(want.sets, key),
          do: acc,
          else: %{acc | del_objs: [{:delete, :set, keys(:set, h)} | acc.del_objs], deleted: acc.deleted + 1 + map_size(have.elements[key] || %{})}
      end)

    # Elements of the sets that stay.
    acc =
      Enum.reduce(of_table(want.elements, tid), acc, fn {key, welems}, acc ->
        if MapSet.member?(remade, key) do
          acc
        else
          helems = Map.get(have.elements, key, %{})

          {adds, dels} =
            Enum.reduce(welems, {[], []}, fn {k, e}, {adds, dels} ->
              case Map.fetch(helems, k) do
                :error -> {[e | adds], dels}
                {:ok, h} -> if same?(e, h), do: {adds, dels}, else: {[e | adds], [h | dels]}
              end
            end)

          dels = dels ++ for {k, h} <- helems, not Map.has_key?(welems, k), do: h
          acc |> del_elems(key, dels) |> add_elems(key, Enum.reverse(adds))
        end
      end)

    # Stateful objects and flowtables: update in place, delete the rest.
    acc =
      Enum.reduce(of_table(want.objs, tid), acc, fn {{_, _, _, kind} = key, a}, acc ->
        case Map.fetch(have.objs, key) do
          :error -> add(acc, {:add, kind, a})
          {:ok, h} -> if same?(drop_values(a), drop_values(h)), do: acc, else: update(acc, {:add, kind, a})
        end
      end)

    acc =
      Enum.reduce(of_table(have.objs, tid), acc, fn {{_, _, _, kind} = key, h}, acc ->
        if Map.has_key?(want.objs, key),
          do: acc,
          else: %{acc | del_objs: [{:delete, kind, keys(kind, h)} | acc.del_objs], deleted: acc.deleted + 1}
      end)

    acc =
      Enum.reduce(of_table(want.flowtables, tid), acc, fn {key, a}, acc ->
        case Map.fetch(have.flowtables, key) do
          :error -> add(acc, {:add, :flowtable, a})
          {:ok, h} -> if same?(a, h), do: acc, else: update(acc, {:add, :flowtable, a})
        end
      end)

    acc =
      Enum.reduce(of_table(have.flowtables, tid), acc, fn {key, h}, acc ->
        if Map.has_key?(want.flowtables, key),
          do: acc,
          else: %{acc | del_objs: [{:delete, :flowtable, keys(:flowtable, h)} | acc.del_objs], deleted: acc.deleted + 1}
      end)

    # Chains, then their rules.
    acc =
      Enum.reduce(of_table(want.chains, tid), acc, fn {key, a}, acc ->
        case Map.fetch(have.chains, key) do
          :error -> add(acc, {:add, :chain, a})
          {:ok, h} -> if same?(a, h), do: acc, else: update(acc, {:add, :chain, a})
        end
      end)

    acc =
      Enum.reduce(of_table(have.chains, tid), acc, fn {key, h}, acc ->
        if Map.has_key?(want.chains, key) do
          acc
        else
          n =
            case Map.get(have.rules, key, []) do
              {:lazy, _} -> length(elem(NFTables.Port.Cache.rules_with_version(have.cache, key), 0))
              rules -> length(rules)
            end
          %{acc | del_chains: [{:delete, :chain, keys(:chain, h)} | acc.del_chains], deleted: acc.deleted + 1 + n}
        end
      end)

    Enum.reduce(of_table(want.rules, tid), acc, fn {key, wrules}, acc ->
      rules_diff(key, wrules, Map.get(have.rules, key, []), acc, Map.get(have, :cache))
    end)
  end

  defp keys(:table, a), do: Map.take(a, [:family, :name])
  defp keys(_type, a), do: Map.take(a, [:family, :table, :name])

  # Every attribute the desired object gives has that value in the current
  # one (an absent one counts as empty).
  defp same?(want, have) do
    Enum.all?(want, fn
      {k, _} when k in @volatile -> true
      {k, v} -> canon(Map.get(have, k, empty(v))) == canon(v)
    end)
  end

  defp empty(v) when is_list(v), do: []
  defp empty(v) when is_integer(v), do: 0
  defp empty(_v), do: nil

  defp canon(v) when is_list(v), do: Enum.sort(v)
  defp canon(v), do: v

  # A stateful object's values (a counter's packets, a quota's consumed
  # bytes) are state, not configuration.
  defp drop_values(a), do: Map.drop(a, [:packets, :bytes, :consumed])

  ## Rules

  # Expression attributes the kernel reports at a default other than 0.
  @expr_defaults %{bitwise: %{op: :bool}}
  # Expression attributes that are state, not configuration (see expr_canon/1).
  @expr_state %{
    counter: [:packets, :bytes],
    quota: [:consumed],
    last: [:msecs, :set],
    lookup: [:set_id],
    dynset: [:set_id],
    objref: [:set_id]
  }

  @doc false
  # A rule's content, as compared: expressions (counters' values left out)
  # and userdata (the comment), compat settings.
  @spec rule_canon(map()) :: term()
  def rule_canon(r) do
    {Enum.map(Map.get(r, :exprs, []), &expr_canon/1), Map.get(r, :userdata),
     Map.get(r, :compat_proto), Map.get(r, :compat_flags)}
  end

  defp expr_canon({kind, a}) when is_map(a) do
    a =
      case kind do
        :counter -> Map.drop(a, [:packets, :bytes])
        :quota -> Map.delete(a, :consumed)
        :last -> Map.drop(a, [:msecs, :set])
        # A set new in the same batch is named by its transaction id too.
        k when k in [:lookup, :dynset, :objref] -> Map.delete(a, :set_id)
        _ -> a
      end

    # The kernel reports defaults nobody sent (a lookup's `flags: []`, a
    # bitwise's `op: :bool`): an attribute at its default is the same as
    # one left out.
    defaults = Map.get(@expr_defaults, kind, %{})
    {kind, :maps.filter(fn k, v -> v != [] and v != 0 and v != <<>> and Map.get(defaults, k) != v end, a)}
  end

  defp expr_canon(e), do: e

  # expr_canon({k, wa}) == expr_canon({k, ha}), without building either.
  defp same_attrs?(kind, wa, ha) do
    defaults = Map.get(@expr_defaults, kind, %{})
    ignored = Map.get(@expr_state, kind, [])

    covers?(:maps.next(:maps.iterator(ha)), wa, defaults, ignored) and
      covers?(:maps.next(:maps.iterator(wa)), ha, defaults, ignored)
  end

  # Every attribute of the iterated map is in other with the same value,
  # or at its default, or state.
  defp covers?(:none, _other, _defaults, _ignored), do: true

  defp covers?({k, v, it}, other, defaults, ignored) do
    ok =
      case other do
        %{^k => ^v} -> true
        %{^k => v2} -> k in ignored or (ignorable?(v, k, defaults) and ignorable?(v2, k, defaults))
        _ -> k in ignored or ignorable?(v, k, defaults)
      end

    ok and covers?(:maps.next(it), other, defaults, ignored)
  end

  defp ignorable?(v, _k, _defaults) when v == [] or v == 0 or v == <<>>, do: true
  defp ignorable?(v, k, defaults), do: Map.get(defaults, k) == v

  defp new_rule(r, f, t, c),
    do: r |> Map.drop([:handle, :position, :position_id, :id]) |> Map.merge(%{family: f, table: t, chain: c})

  # The largest middle part (after the common prefix and suffix) that gets
  # a real LCS; beyond it, the middle is deleted and inserted whole.
  @myers_limit 4_000_000

  # With a cache: a chain whose rules (at their current version) were
  # already found equal to these desired rules is not read again. The
  # fingerprint is 64 bits of hash of the desired rules as given.
  defp rules_diff(key, wrules, {:lazy, _version}, acc, cache) do
    fingerprint = {:erlang.phash2(wrules, 4_294_967_296), :erlang.phash2({:nfp_sync, wrules}, 4_294_967_296)}

    if NFTables.Port.Cache.verified?(cache, key, fingerprint) do
      acc
    else
      {hrules, version} = NFTables.Port.Cache.rules_with_version(cache, key)
      after_ = rules_diff(key, wrules, hrules, acc, nil)

      if after_ == acc and not Enum.any?(wrules, &Map.has_key?(&1, :handle)),
        do: NFTables.Port.Cache.verify(cache, key, version, fingerprint)

      after_
    end
  end

  defp rules_diff(key, wrules, hrules, acc, _cache) do
    {wrules, replaced, acc} =
      if Enum.any?(wrules, &Map.has_key?(&1, :handle)),
        do: by_handle(key, wrules, hrules, acc),
        else: {wrules, %{}, acc}

    if same_rules?(wrules, hrules) do
      acc
    else
      hcanon = Enum.map(hrules, fn h -> if replaced[h.handle], do: {:replaced, h.handle}, else: rule_canon(h) end)
      wcanon = Enum.map(wrules, fn w -> if Map.get(w, :handle) && replaced[w.handle], do: {:replaced, w.handle}, else: rule_canon(w) end)
      script = edit_script(hcanon, wcanon)
      walk(script, hrules, wrules, nil, key, acc)
    end
  end

  # Desired rules that name a handle: replace that rule when the content
  # differs.
  defp by_handle({f, t, c}, wrules, hrules, acc) do
    by_handle = Map.new(hrules, &{&1.handle, &1})

    {wrules, replaced, acc} =
      Enum.reduce(wrules, {[], %{}, acc}, fn w, {ws, rep, acc} ->
        case Map.get(w, :handle) && Map.fetch(by_handle, w.handle) do
          {:ok, h} ->
            if rule_canon(w) == rule_canon(h) do
              {[h | ws], rep, acc}
            else
              msg = {:replace, :rule, Map.merge(new_rule(w, f, t, c), %{handle: h.handle})}
              {[%{h | exprs: w.exprs} |> Map.put(:userdata, Map.get(w, :userdata)) | ws], Map.put(rep, h.handle, true),
               %{acc | rules: [msg | acc.rules], updated: acc.updated + 1}}
            end

          _ ->
            {[Map.delete(w, :handle) | ws], rep, acc}
        end
      end)

    {Enum.reverse(wrules), replaced, acc}
  end

  # The no-op fast path: the same rules in the same order, compared pair by
  # pair, each expression first as it is (one term comparison) and only
  # when that differs in its canonical form.
  defp same_rules?([], []), do: true

  defp same_rules?([w | ws], [h | hs]) do
    same_rule?(w, h) and same_rules?(ws, hs)
  end

  defp same_rules?(_, _), do: false

  defp same_rule?(w, h) do
    Map.get(w, :userdata) == Map.get(h, :userdata) and
      Map.get(w, :compat_proto) == Map.get(h, :compat_proto) and
      Map.get(w, :compat_flags) == Map.get(h, :compat_flags) and
      same_exprs?(Map.get(w, :exprs, []), Map.get(h, :exprs, []))
  end

  defp same_exprs?([], []), do: true
  defp same_exprs?([e | ws], [e | hs]), do: same_exprs?(ws, hs)

  defp same_exprs?([{k, wa} | ws], [{k, ha} | hs]) when is_map(wa) and is_map(ha),
    do: same_attrs?(k, wa, ha) and same_exprs?(ws, hs)

  defp same_exprs?(_, _), do: false

  defp edit_script(a, b) do
    {prefix, a1, b1} = common_prefix(a, b, [])
    {suffix, a2, b2} = common_suffix(a1, b1)
    middle =
      cond do
        a2 == [] and b2 == [] -> []
        length(a2) * length(b2) > @myers_limit -> [{:del, a2}, {:ins, b2}]
        true -> List.myers_difference(a2, b2)
      end

    Enum.reject([{:eq, prefix} | middle] ++ [{:eq, suffix}], &match?({_, []}, &1))
  end

  defp common_prefix([x | a], [x | b], acc), do: common_prefix(a, b, [x | acc])
  defp common_prefix(a, b, acc), do: {Enum.reverse(acc), a, b}

  defp common_suffix(a, b) do
    {rsuffix, ra, rb} = common_prefix(Enum.reverse(a), Enum.reverse(b), [])
    {Enum.reverse(rsuffix), Enum.reverse(ra), Enum.reverse(rb)}
  end

  # Walks the edit script with the current rules (handles) and the desired
  # ones (attrs) alongside.
  defp walk([], _h, _w, _prev, _key, acc), do: acc

  defp walk([{:eq, l} | rest], h, w, _prev, key, acc) do
    n = length(l)
    {kept, h} = Enum.split(h, n)
    walk(rest, h, Enum.drop(w, n), List.last(kept).handle, key, acc)
  end

  defp walk([{:del, l} | rest], h, w, prev, {f, t, c} = key, acc) do
    {gone, h} = Enum.split(h, length(l))
    dels = for r <- gone, do: {:delete, :rule, %{family: f, table: t, chain: c, handle: r.handle}}
    walk(rest, h, w, prev, key, %{acc | del_rules: Enum.reverse(dels) ++ acc.del_rules, deleted: acc.deleted + length(gone)})
  end

  defp walk([{:ins, l} | rest], h, w, prev, {f, t, c} = key, acc) do
    {new, w} = Enum.split(w, length(l))
    new = Enum.map(new, &new_rule(&1, f, t, c))

    msgs =
      cond do
        prev != nil ->
          # Each goes right after prev: add them last first.
          new |> Enum.reverse() |> Enum.map(&{:add, :rule, Map.put(&1, :position, prev)})

        (next = next_kept(rest, h)) != nil ->
          # Each goes right before next, in order.
          Enum.map(new, &{:insert, :rule, Map.put(&1, :position, next)})

        true ->
          Enum.map(new, &{:add, :rule, &1})
      end

    walk(rest, h, w, prev, key, %{acc | rules: Enum.reverse(msgs) ++ acc.rules, added: acc.added + length(new)})
  end

  # The handle of the first current rule that stays after this point.
  defp next_kept(script, h) do
    Enum.reduce_while(script, h, fn
      {:eq, _}, [r | _] -> {:halt, {:found, r.handle}}
      {:del, l}, h -> {:cont, Enum.drop(h, length(l))}
      {:ins, _}, h -> {:cont, h}
    end)
    |> case do
      {:found, handle} -> handle
      _ -> nil
    end
  end
end
