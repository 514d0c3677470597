defmodule NFTables.Port.Snapshot do
  @moduledoc """
  The content of some tables (or of the whole ruleset) at one generation,
  keyed for lookups: what `NFTables.Port.Cache` keeps and what
  `NFTables.Port.Sync` compares against.

      %{genid: g,
        tables:     %{{family, table} => attrs},
        chains:     %{{family, table, chain} => attrs},
        sets:       %{{family, table, set} => attrs},
        objs:       %{{family, table, name, kind} => attrs},   # :counter, :quota, ...
        flowtables: %{{family, table, name} => attrs},
        rules:      %{{family, table, chain} => [attrs]},      # in the chain's order
        elements:   %{{family, table, set} => %{element_key => attrs}}}

  Attributes are those of `NFTables.Port.list/4` (handles included), less
  what changes without an event: `:use` counts and an element's
  `:expiration`; a rule's `:position` is implied by its place.
  """

  @typedoc "`{family, table_name}`"
  @type table_id :: {atom(), String.t()}

  @type t :: %{
          genid: non_neg_integer(),
          tables: map(),
          chains: map(),
          sets: map(),
          objs: map(),
          flowtables: map(),
          rules: map(),
          elements: map()
        }

  @obj_kinds [
    :counter,
    :quota,
    :limit,
    :ct_helper,
    :ct_timeout,
    :ct_expect,
    :secmark,
    :synproxy,
    :tunnel
  ]

  @doc "The stateful object kinds (`list/4` types)."
  @spec obj_kinds() :: [atom()]
  def obj_kinds, do: @obj_kinds

  @doc "An empty snapshot at generation `genid`."
  @spec empty(non_neg_integer()) :: t()
  def empty(genid \\ 0) do
    %{
      genid: genid,
      tables: %{},
      chains: %{},
      sets: %{},
      objs: %{},
      flowtables: %{},
      rules: %{},
      elements: %{}
    }
  end

  @doc """
  Loads a snapshot from the port: of every table (`:all`) or of the given
  `[{family, name}]`. Several listings, all of one generation: when the
  ruleset changed between them, it lists again (`:attempts`, default 20).
  """
  @spec load(GenServer.server(), :all | [table_id()], keyword()) :: {:ok, t()} | {:error, term()}
  def load(port, tables \\ :all, opts \\ []) do
    attempts = Keyword.get(opts, :attempts, 20)
    timeout = Keyword.get(opts, :timeout)
    do_load(port, tables, timeout, attempts, nil)
  end

  defp do_load(_port, _tables, _timeout, 0, last),
    do: {:error, {:ruleset_kept_changing, last}}

  defp do_load(port, tables, timeout, attempts, _last) do
    with {:ok, g0, present} <- present_tables(port, tables, timeout) do
      types = [:chain, :set, :flowtable, :rule, :element | @obj_kinds]
      # Only tables that exist can be listed by name (ENOENT otherwise).
      filters = if tables == :all, do: [%{}], else: Enum.map(present, &{&1.family, &1.name})

      result =
        Enum.reduce_while(types, {:ok, [{:table, present}], MapSet.new([g0])}, fn type, acc ->
          Enum.reduce_while(filters, acc, fn filter, {:ok, acc, genids} ->
            case list(port, type, filter, timeout) do
              {:ok, %{genid: g, objects: objs}} ->
                {:cont, {:ok, [{type, objs} | acc], MapSet.put(genids, g)}}

              error ->
                {:halt, error}
            end
          end)
          |> case do
            {:ok, _, _} = ok -> {:cont, ok}
            error -> {:halt, error}
          end
        end)

      case result do
        {:ok, lists, genids} ->
          case MapSet.to_list(genids) do
            [genid] -> {:ok, build(genid, Enum.reverse(lists))}
            many -> do_load(port, tables, timeout, attempts - 1, many)
          end

        error ->
          error
      end
    end
  end

  defp present_tables(port, :all, timeout) do
    with {:ok, %{genid: g, objects: objs}} <- list(port, :table, %{}, timeout), do: {:ok, g, objs}
  end

  defp present_tables(port, tables, timeout) do
    with {:ok, %{genid: g, objects: objs}} <- list(port, :table, %{}, timeout) do
      wanted = MapSet.new(tables)
      {:ok, g, Enum.filter(objs, &MapSet.member?(wanted, {&1.family, &1.name}))}
    end
  end

  defp list(port, type, {family, table}, timeout),
    do: list(port, type, %{family: family, table: table}, timeout)

  defp list(port, type, filter, timeout) do
    NFTables.Port.list(port, type, filter, with_genid: true, timeout: timeout || 120_000)
  end

  defp build(genid, lists) do
    Enum.reduce(lists, empty(genid), fn {type, objs}, snap ->
      Enum.reduce(objs, snap, &put(&2, type, &1))
    end)
    |> ensure_rule_lists()
    |> ensure_element_maps()
  end

  # Every set has an element map, empty or not.
  defp ensure_element_maps(snap) do
    %{snap | elements: Map.new(snap.sets, fn {key, _} -> {key, Map.get(snap.elements, key, %{})} end)}
  end

  # Rules listed come in order: put/3 prepends, so reverse once.
  defp ensure_rule_lists(snap) do
    rules =
      Map.new(snap.chains, fn {key, _} -> {key, Enum.reverse(Map.get(snap.rules, key, []))} end)

    %{snap | rules: rules}
  end

  defp put(snap, :table, a), do: put_in(snap, [:tables, {a.family, a.name}], clean(:table, a))

  defp put(snap, :chain, a),
    do: put_in(snap, [:chains, {a.family, a.table, a.name}], clean(:chain, a))

  defp put(snap, :set, a), do: put_in(snap, [:sets, {a.family, a.table, a.name}], clean(:set, a))

  defp put(snap, :flowtable, a),
    do: put_in(snap, [:flowtables, {a.family, a.table, a.name}], clean(:flowtable, a))

  defp put(snap, :rule, a) do
    key = {a.family, a.table, a.chain}
    %{snap | rules: Map.update(snap.rules, key, [clean(:rule, a)], &[clean(:rule, a) | &1])}
  end

  defp put(snap, :element, a) do
    key = {a.family, a.table, a.set}
    elems = Map.new(a.elements, fn e -> {elem_key(e), clean(:set_elem, e)} end)
    %{snap | elements: Map.update(snap.elements, key, elems, &Map.merge(&1, elems))}
  end

  defp put(snap, kind, a) when kind in @obj_kinds,
    do: put_in(snap, [:objs, {a.family, a.table, a.name, kind}], clean(kind, a))

  @doc """
  What identifies an element within its set: its key, its interval end
  and its flags (an interval's end and the catch-all differ by them).
  """
  @spec elem_key(map()) :: map()
  def elem_key(e), do: Map.take(e, [:key, :key_end, :flags])

  @doc """
  An object's attributes less what changes without an event (`:use`, an
  element's `:expiration`) and a rule's `:position`.
  """
  @spec clean(atom(), map()) :: map()
  def clean(:rule, a), do: Map.drop(a, [:position, :position_id, :use])
  def clean(:set_elem, a), do: Map.delete(a, :expiration)
  def clean(_type, a), do: Map.delete(a, :use)

  @doc "The table ids a snapshot holds."
  @spec table_ids(t()) :: [table_id()]
  def table_ids(snap), do: Map.keys(snap.tables)

  @doc "The part of a snapshot that belongs to the given tables."
  @spec only(t(), [table_id()]) :: t()
  def only(snap, tables) do
    set = MapSet.new(tables)
    keep = fn map -> Map.filter(map, fn {key, _} -> MapSet.member?(set, {elem(key, 0), elem(key, 1)}) end) end

    %{
      snap
      | tables: keep.(snap.tables),
        chains: keep.(snap.chains),
        sets: keep.(snap.sets),
        objs: keep.(snap.objs),
        flowtables: keep.(snap.flowtables),
        rules: keep.(snap.rules),
        elements: keep.(snap.elements)
    }
  end
end
