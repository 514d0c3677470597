defmodule NFTables.Port.Cache do
  @moduledoc """
  A copy of the ruleset (or of chosen tables) in ETS, kept current from
  the port's events: reads never touch the kernel.

      children = [
        {NFTables.Port, name: MyApp.Firewall},
        {NFTables.Port.Cache, port: MyApp.Firewall, name: MyApp.FirewallCache}
      ]

      NFTables.Port.Cache.rules(MyApp.FirewallCache, :inet, "filter", "input")

  At start the cache subscribes to the port's events, then loads the
  content with listings of one generation (`NFTables.Port.Snapshot.load/3`).
  From then on it collects each transaction's events and applies them at
  the transaction's end (the `{:newgen, ...}` event), never half a
  transaction; it knows the generation it reflects (`genid/1`). A
  transaction it has already loaded is skipped; when the next
  generation is not the one after its own (a gap), when the event socket
  overflowed, or when an event cannot be placed (a rule after a rule it
  does not know), it loads everything again (`reloads/1` counts that).

  Reads (`tables/1`, `chains/3`, `rules/4`, `sets/3`, `elements/4`,
  `objects/3`, `get/3`) go to the ETS table straight from the caller and
  cost in proportion to what they return. Attributes are those of
  `NFTables.Port.list/4`, less what changes without an event (`:use`
  counts, an element's `:expiration`; counters' values are as of their
  last event).

  Options: `:port` (required), `:tables` (`:all`, the default, or
  `[{family, name}]`), `:name`. The cache stops when its port does.

  While a transaction (or a reload) is being written into ETS, a read that
  runs at that very moment may see part of it; `genid/1` moves on only
  once the whole transaction is in.
  """

  use GenServer

  alias NFTables.Port.Snapshot

  @type cache :: GenServer.server()

  ## Starting

  @doc "Starts a cache; see the module doc for the options."
  @spec start_link(keyword()) :: GenServer.on_start()
  def start_link(opts) do
    {name, opts} = Keyword.pop(opts, :name)
    port = Keyword.fetch!(opts, :port)
    tables = Keyword.get(opts, :tables, :all)
    gen_opts = if name, do: [name: name], else: []
    GenServer.start_link(__MODULE__, %{port: port, tables: tables}, gen_opts)
  end

  @doc false
  def child_spec(opts) do
    %{id: Keyword.get(opts, :name, __MODULE__), start: {__MODULE__, :start_link, [opts]}}
  end

  ## Reads (straight from ETS)

  @doc "Tables, as `list(:table)` gives them."
  @spec tables(cache()) :: [map()]
  def tables(cache), do: select(cache, {{:table, :_, :_}, :"$1"})

  @doc "The chains of a table."
  @spec chains(cache(), atom(), String.t()) :: [map()]
  def chains(cache, family, table), do: select(cache, {{:chain, family, table, :_}, :"$1"})

  @doc "The sets of a table."
  @spec sets(cache(), atom(), String.t()) :: [map()]
  def sets(cache, family, table), do: select(cache, {{:set, family, table, :_}, :"$1"})

  @doc "The flowtables of a table."
  @spec flowtables(cache(), atom(), String.t()) :: [map()]
  def flowtables(cache, family, table),
    do: select(cache, {{:flowtable, family, table, :_}, :"$1"})

  @doc "The stateful objects of a table, as `{kind, attrs}`."
  @spec objects(cache(), atom(), String.t()) :: [{atom(), map()}]
  def objects(cache, family, table) do
    :ets.select(tab(cache), [
      {{{:obj, family, table, :_, :"$2"}, :"$1"}, [], [{{:"$2", :"$1"}}]}
    ])
  end

  @doc "The rules of a chain, in order; `[]` when there is no such chain."
  @spec rules(cache(), atom(), String.t(), String.t()) :: [map()]
  def rules(cache, family, table, chain), do: rules_of(tab(cache), {family, table, chain})

  @doc "The elements of a set (in no particular order)."
  @spec elements(cache(), atom(), String.t(), String.t()) :: [map()]
  def elements(cache, family, table, set),
    do: select(cache, {{:elem, family, table, set, :_}, :"$1"})

  @doc """
  One object: `get(cache, :chain, %{family: :inet, table: "t", name: "c"})`;
  types `:table`, `:chain`, `:set`, `:flowtable` and the object kinds.
  `nil` when there is none.
  """
  @spec get(cache(), atom(), map()) :: map() | nil
  def get(cache, type, keys) do
    key =
      case type do
        :table -> {:table, keys.family, keys.name}
        :chain -> {:chain, keys.family, keys.table, keys.name}
        :set -> {:set, keys.family, keys.table, keys.name}
        :flowtable -> {:flowtable, keys.family, keys.table, keys.name}
        kind -> {:obj, keys.family, keys.table, keys.name, kind}
      end

    case :ets.lookup(tab(cache), key) do
      [{_, attrs}] -> attrs
      [] -> nil
    end
  end

  @doc "The generation the cache reflects."
  @spec genid(cache()) :: non_neg_integer()
  def genid(cache) do
    [{_, g}] = :ets.lookup(tab(cache), {:meta, :genid})
    g
  end

  @doc "How many times the cache loaded the ruleset again (overflow, gap)."
  @spec reloads(cache()) :: non_neg_integer()
  def reloads(cache) do
    [{_, n}] = :ets.lookup(tab(cache), {:meta, :reloads})
    n
  end

  @doc """
  Waits until the cache reflects generation `genid` or a later one;
  `{:error, :timeout}` after `timeout` ms.
  """
  @spec await(cache(), non_neg_integer(), timeout()) :: :ok | {:error, :timeout}
  def await(cache, genid, timeout \\ 5_000) do
    if genid(cache) >= genid do
      :ok
    else
      call_timeout = if timeout == :infinity, do: :infinity, else: timeout + 5_000

      try do
        GenServer.call(cache, {:await, genid, timeout}, call_timeout)
      catch
        :exit, {:timeout, _} -> {:error, :timeout}
      end
    end
  end

  @doc """
  Waits until the cache reflects the kernel's current generation (asks
  the port for it).
  """
  @spec sync_point(cache(), timeout()) :: :ok | {:error, term()}
  def sync_point(cache, timeout \\ 5_000) do
    with {:ok, g} <- NFTables.Port.genid(port(cache)), do: await(cache, g, timeout)
  end

  @doc "The whole content as an `NFTables.Port.Snapshot` (of the given tables, or all)."
  @spec snapshot(cache(), :all | [Snapshot.table_id()], keyword()) :: Snapshot.t()
  def snapshot(cache, tables \\ :all, opts \\ []) do
    tab = tab(cache)
    lazy = Keyword.get(opts, :lazy_rules, false)
    ids = if tables == :all, do: Enum.map(tables(cache), &{&1.family, &1.name}), else: tables
    genid = genid(cache)

    Enum.reduce(ids, Snapshot.empty(genid), fn {f, t}, snap ->
      case :ets.lookup(tab, {:table, f, t}) do
        [] -> snap
        [{_, ta}] -> snapshot_table(tab, f, t, ta, snap, lazy)
      end
    end)
  end

  defp snapshot_table(tab, f, t, ta, snap, lazy) do
    by = fn pattern -> :ets.select(tab, [{{pattern, :"$1"}, [], [:"$_"]}]) end
    chains = by.({:chain, f, t, :_})
    sets = by.({:set, f, t, :_})

    %{
      snap
      | tables: Map.put(snap.tables, {f, t}, ta),
        chains: Enum.into(chains, snap.chains, fn {{_, f, t, c}, a} -> {{f, t, c}, a} end),
        sets: Enum.into(sets, snap.sets, fn {{_, f, t, s}, a} -> {{f, t, s}, a} end),
        flowtables:
          Enum.into(by.({:flowtable, f, t, :_}), snap.flowtables, fn {{_, f, t, n}, a} ->
            {{f, t, n}, a}
          end),
        objs:
          Enum.into(by.({:obj, f, t, :_, :_}), snap.objs, fn {{_, f, t, n, k}, a} ->
            {{f, t, n, k}, a}
          end),
        rules:
          Enum.into(chains, snap.rules, fn {{_, f, t, c}, _} ->
            {{f, t, c}, if(lazy, do: {:lazy, version_of(tab, {f, t, c})}, else: rules_of(tab, {f, t, c}))}
          end),
        elements:
          Enum.into(sets, snap.elements, fn {{_, f, t, s}, _} ->
            elems = :ets.select(tab, [{{{:elem, f, t, s, :"$1"}, :"$2"}, [], [{{:"$1", :"$2"}}]}])
            {{f, t, s}, Map.new(elems)}
          end)
    }
  end

  # A chain's rules are one object {key, rules, version}: the version
  # changes with every write, so that sync can tell an unchanged chain
  # without copying its rules out of ETS.
  defp rules_of(tab, {f, t, c}) do
    case :ets.lookup(tab, {:rules, f, t, c}) do
      [{_, rules, _version}] -> rules
      [] -> []
    end
  end

  defp version_of(tab, {f, t, c}) do
    :ets.lookup_element(tab, {:rules, f, t, c}, 3)
  rescue
    ArgumentError -> nil
  end

  @doc false
  # Whether the chain's rules, at their current version, were found equal
  # to desired rules of this fingerprint (NFTables.Port.Sync).
  @spec verified?(cache(), {atom(), String.t(), String.t()}, term()) :: boolean()
  def verified?(cache, {f, t, c} = key, fingerprint) do
    tab = tab(cache)

    case :ets.lookup(tab, {:verified, f, t, c}) do
      [{_, version, ^fingerprint}] -> version != nil and version == version_of(tab, key)
      _ -> false
    end
  end

  @doc false
  @spec rules_with_version(cache(), {atom(), String.t(), String.t()}) :: {[map()], term()}
  def rules_with_version(cache, {f, t, c}) do
    case :ets.lookup(tab(cache), {:rules, f, t, c}) do
      [{_, rules, version}] -> {rules, version}
      [] -> {[], nil}
    end
  end

  @doc false
  # Records that the chain's rules at `version` equal desired rules of
  # this fingerprint.
  @spec verify(cache(), {atom(), String.t(), String.t()}, term(), term()) :: :ok
  def verify(cache, key, version, fingerprint),
    do: GenServer.cast(cache, {:verified, key, version, fingerprint})

  @doc "The port the cache follows."
  @spec port(cache()) :: GenServer.server()
  def port(cache) do
    [{_, port}] = :ets.lookup(tab(cache), {:meta, :port})
    port
  end

  defp select(cache, {key, val}), do: :ets.select(tab(cache), [{{key, val}, [], [val]}])

  # The ETS table of a cache: kept in :persistent_term per server pid, so
  # that a read costs no message.
  defp tab(cache) do
    pid = GenServer.whereis(cache) || exit({:noproc, {__MODULE__, cache}})

    case :persistent_term.get({__MODULE__, pid}, nil) do
      nil -> GenServer.call(pid, :tab)
      tab -> tab
    end
  end

  ## The server

  @impl GenServer
  def init(%{port: port, tables: tables}) do
    tab = :ets.new(__MODULE__, [:ordered_set, :protected, read_concurrency: true])
    :persistent_term.put({__MODULE__, self()}, tab)
    :ets.insert(tab, [{{:meta, :port}, port}, {{:meta, :reloads}, 0}, {{:meta, :genid}, 0}])


    with {:ok, ref} <- NFTables.Port.subscribe(port),
         mon = Process.monitor(GenServer.whereis(port)),
         state = %{
           mon: mon,
           port: port,
           tables: if(tables == :all, do: :all, else: MapSet.new(tables)),
           tab: tab,
           ref: ref,
           genid: 0,
           txn: [],
           waiters: []
         },
         {:ok, state} <- load(state) do
      {:ok, state}
    else
      {:error, reason} -> {:stop, reason}
    end
  end

  @impl GenServer
  def terminate(_reason, _state) do
    :persistent_term.erase({__MODULE__, self()})
  end

  @impl GenServer
  def handle_call(:tab, _from, state), do: {:reply, state.tab, state}

  def handle_call({:await, genid, timeout}, from, state) do
    if state.genid >= genid do
      {:reply, :ok, state}
    else
      timer = if timeout == :infinity, do: nil, else: Process.send_after(self(), {:await_timeout, from}, timeout)
      {:noreply, %{state | waiters: [{genid, from, timer} | state.waiters]}}
    end
  end

  @impl GenServer
  def handle_cast({:verified, {f, t, c} = key, version, fingerprint}, state) do
    if version != nil and version == version_of(state.tab, key),
      do: :ets.insert(state.tab, {{:verified, f, t, c}, version, fingerprint})

    {:noreply, state}
  end

  @impl GenServer
  def handle_info({:nftables, ref, event}, %{ref: ref} = state) do
    {:noreply, on_event(event, state)}
  end

  def handle_info({:DOWN, mon, :process, _, reason}, %{mon: mon} = state) do
    # Without its port the cache can no longer follow the ruleset.
    {:stop, {:port_down, reason}, state}
  end

  def handle_info({:await_timeout, from}, state) do
    {mine, rest} = Enum.split_with(state.waiters, fn {_g, f, _t} -> f == from end)
    Enum.each(mine, fn {_g, f, _t} -> GenServer.reply(f, {:error, :timeout}) end)
    {:noreply, %{state | waiters: rest}}
  end

  def handle_info(_other, state), do: {:noreply, state}

  defp on_event({:newgen, %{genid: g}}, state) do
    txn = Enum.reverse(state.txn)
    state = %{state | txn: []}

    cond do
      g <= state.genid -> state
      g != state.genid + 1 -> reload(state)
      true ->
        case apply_txn(txn, state) do
          :ok -> set_genid(state, g)
          :reload -> reload(state)
        end
    end
  end

  defp on_event(:overflow, state), do: reload(%{state | txn: []})
  defp on_event({:unknown, _}, state), do: reload(%{state | txn: []})
  defp on_event(event, state), do: %{state | txn: [event | state.txn]}

  defp set_genid(state, g) do
    :ets.insert(state.tab, {{:meta, :genid}, g})
    {ready, waiting} = Enum.split_with(state.waiters, fn {w, _f, _t} -> w <= g end)

    Enum.each(ready, fn {_w, from, timer} ->
      if timer, do: Process.cancel_timer(timer)
      GenServer.reply(from, :ok)
    end)

    %{state | genid: g, waiters: waiting}
  end

  defp reload(state) do
    :ets.update_counter(state.tab, {:meta, :reloads}, 1)

    case load(state) do
      {:ok, state} -> state
      {:error, reason} -> exit({:cache_reload_failed, reason})
    end
  end

  defp load(state) do
    tables = if state.tables == :all, do: :all, else: MapSet.to_list(state.tables)

    with {:ok, snap} <- Snapshot.load(state.port, tables) do
      tab = state.tab
      :ets.select_delete(tab, [
        {{{:_, :_, :_}, :_}, [], [true]},
        {{{:_, :_, :_, :_}, :_}, [], [true]},
        {{{:_, :_, :_, :_}, :_, :_}, [], [true]},
        {{{:_, :_, :_, :_, :_}, :_}, [], [true]}
      ])
      rows =
        Enum.map(snap.tables, fn {{f, t}, a} -> {{:table, f, t}, a} end) ++
          Enum.map(snap.chains, fn {{f, t, c}, a} -> {{:chain, f, t, c}, a} end) ++
          Enum.map(snap.sets, fn {{f, t, s}, a} -> {{:set, f, t, s}, a} end) ++
          Enum.map(snap.flowtables, fn {{f, t, n}, a} -> {{:flowtable, f, t, n}, a} end) ++
          Enum.map(snap.objs, fn {{f, t, n, k}, a} -> {{:obj, f, t, n, k}, a} end) ++
          Enum.map(snap.rules, fn {{f, t, c}, r} -> {{:rules, f, t, c}, r, version()} end) ++
          Enum.flat_map(snap.elements, fn {{f, t, s}, elems} ->
            Enum.map(elems, fn {k, e} -> {{:elem, f, t, s, k}, e} end)
          end)

      :ets.insert(tab, rows)
      {:ok, set_genid(state, snap.genid)}
    end
  end

  ## Applying one transaction

  defp wanted?(%{tables: :all}, _f, _t), do: true
  defp wanted?(%{tables: set}, f, t), do: MapSet.member?(set, {f, t})

  defp apply_txn(events, state) do
    work =
      Enum.reduce_while(events, %{}, fn event, work ->
        case apply_event(event, work, state) do
          :reload -> {:halt, :reload}
          work -> {:cont, work}
        end
      end)

    case work do
      :reload -> :reload
      work -> write_rules(work, state)
    end
  end

  defp apply_event({verb, type, a}, work, state) do
    {f, t} = table_of(type, a)

    if wanted?(state, f, t), do: do_apply(verb, type, a, work, state.tab), else: work
  end

  defp table_of(:table, a), do: {a.family, a.name}
  defp table_of(_type, a), do: {a.family, a.table}

  defp do_apply(:add, :table, a, work, tab) do
    merge(tab, {:table, a.family, a.name}, Snapshot.clean(:table, a))
    work
  end

  defp do_apply(:delete, :table, a, work, tab) do
    f = a.family
    t = a.name
    :ets.delete(tab, {:table, f, t})

    :ets.select_delete(tab, [
      {{{:_, f, t, :_}, :_}, [], [true]},
      {{{:_, f, t, :_}, :_, :_}, [], [true]},
      {{{:_, f, t, :_, :_}, :_}, [], [true]}
    ])

    Map.new(work, fn
      {{^f, ^t, _} = key, _} -> {key, :deleted}
      other -> other
    end)
  end

  defp do_apply(:add, :chain, a, work, tab) do
    key = {a.family, a.table, a.name}
    merge(tab, {:chain, a.family, a.table, a.name}, Snapshot.clean(:chain, a))

    case Map.get(work, key) do
      :deleted -> Map.put(work, key, new_work([]))
      nil -> if :ets.member(tab, {:rules, a.family, a.table, a.name}), do: work, else: Map.put(work, key, new_work([]))
      _ -> work
    end
  end

  defp do_apply(:delete, :chain, a, work, tab) do
    :ets.delete(tab, {:chain, a.family, a.table, a.name})
    Map.put(work, {a.family, a.table, a.name}, :deleted)
  end

  defp do_apply(:add, :set, a, work, tab) do
    merge(tab, {:set, a.family, a.table, a.name}, Snapshot.clean(:set, a))
    work
  end

  defp do_apply(:delete, :set, a, work, tab) do
    :ets.delete(tab, {:set, a.family, a.table, a.name})
    :ets.select_delete(tab, [{{{:elem, a.family, a.table, a.name, :_}, :_}, [], [true]}])
    work
  end

  defp do_apply(:add, :flowtable, a, work, tab) do
    merge(tab, {:flowtable, a.family, a.table, a.name}, Snapshot.clean(:flowtable, a))
    work
  end

  defp do_apply(:delete, :flowtable, a, work, tab) do
    :ets.delete(tab, {:flowtable, a.family, a.table, a.name})
    work
  end

  defp do_apply(:add, :element, a, work, tab) do
    :ets.insert(
      tab,
      Enum.map(a.elements, fn e ->
        {{:elem, a.family, a.table, a.set, Snapshot.elem_key(e)}, Snapshot.clean(:set_elem, e)}
      end)
    )

    work
  end

  defp do_apply(:delete, :element, a, work, tab) do
    Enum.each(a.elements, fn e ->
      :ets.delete(tab, {:elem, a.family, a.table, a.set, Snapshot.elem_key(e)})
    end)

    work
  end

  defp do_apply(verb, :rule, a, work, tab) do
    key = {a.family, a.table, a.chain}

    w =
      case Map.get(work, key) do
        nil -> new_work(rules_of(tab, key))
        :deleted -> new_work([])
        w -> w
      end

    case rule_op(w, verb, Snapshot.clean(:rule, a), Map.get(a, :position)) do
      :reload -> :reload
      w -> Map.put(work, key, w)
    end
  end

  defp do_apply(:add, kind, a, work, tab) do
    merge(tab, {:obj, a.family, a.table, a.name, kind}, Snapshot.clean(kind, a))
    work
  end

  defp do_apply(:delete, kind, a, work, tab) do
    :ets.delete(tab, {:obj, a.family, a.table, a.name, kind})
    work
  end

  # An update (a chain's new policy, a table's flags) may carry only what
  # changed: merge it into what is there.
  defp merge(tab, key, attrs) do
    case :ets.lookup(tab, key) do
      [{_, old}] -> :ets.insert(tab, {key, Map.merge(old, attrs)})
      [] -> :ets.insert(tab, {key, attrs})
    end
  end

  ## A chain's rules within a transaction
  #
  # list ++ reverse(tail) minus the handles in dels is the chain; appends
  # go to tail and deletes to dels without walking the list, so a
  # transaction of n appends or deletes costs O(n), not O(n^2). A rule
  # placed after another (position) walks the list once; one that names a
  # rule not placed yet (the kernel reports positions as they are at the
  # end of the transaction) waits in deferred until that rule is placed.

  defp new_work(list), do: %{list: list, tail: [], dels: MapSet.new(), deferred: []}

  defp rule_op(w, :delete, r, _pos), do: %{w | dels: MapSet.put(w.dels, r.handle)}

  defp rule_op(w, verb, r, nil) do
    cond do
      MapSet.member?(w.dels, r.handle) ->
        # Replaced: the new rule takes the old one's place.
        list =
          Enum.map(w.list ++ Enum.reverse(w.tail), fn
            %{handle: h} when h == r.handle -> r
            other -> other
          end)

        %{w | list: list, tail: [], dels: MapSet.delete(w.dels, r.handle)}

      verb == :insert ->
        %{w | list: [r | w.list]}

      true ->
        %{w | tail: [r | w.tail]}
    end
    |> place_deferred(r.handle)
  end

  defp rule_op(w, _verb, r, pos) do
    w = materialize(w)

    case insert_after(w.list, pos, r) do
      {:ok, list} -> place_deferred(%{w | list: list}, r.handle)
      :error -> %{w | deferred: [{pos, r} | w.deferred]}
    end
  end

  defp place_deferred(%{deferred: []} = w, _handle), do: w

  defp place_deferred(w, handle) do
    case Enum.split_with(w.deferred, fn {pos, _} -> pos == handle end) do
      {[], _} ->
        w

      {ready, rest} ->
        Enum.reduce(ready, %{w | deferred: rest}, fn {pos, r}, w -> rule_op(w, :add, r, pos) end)
    end
  end

  defp materialize(%{tail: [], dels: dels} = w) when map_size(dels) == 0, do: w

  defp materialize(w) do
    list = w.list ++ Enum.reverse(w.tail)

    list =
      if MapSet.size(w.dels) == 0,
        do: list,
        else: Enum.reject(list, &MapSet.member?(w.dels, &1.handle))

    %{w | list: list, tail: [], dels: MapSet.new()}
  end

  defp insert_after(list, pos, r) do
    case Enum.split_while(list, &(&1.handle != pos)) do
      {_before, []} -> :error
      {before, [p | rest]} -> {:ok, before ++ [p, r | rest]}
    end
  end

  defp version, do: System.unique_integer([:positive, :monotonic])

  defp write_rules(work, state) do
    Enum.reduce_while(work, :ok, fn
      {{f, t, c}, :deleted}, :ok ->
        :ets.delete(state.tab, {:rules, f, t, c})
        {:cont, :ok}

      {{f, t, c}, w}, :ok ->
        w = materialize(w)

        if w.deferred == [] do
          :ets.insert(state.tab, {{:rules, f, t, c}, w.list, version()})
          {:cont, :ok}
        else
          {:halt, :reload}
        end
    end)
  end
end
