defmodule NFTables.Port.Nft.Commit do
  @moduledoc """
  A libnftables JSON document run against a port: what
  `NFTables.Port.commit/2,3` does with a JSON text or an Elixir-terms
  document.

  The document's write commands are translated to low-level messages
  (`NFTables.Port.Nft.to_messages/2`) and committed as one transaction:
  all of it lands or none of it does. Its `list` commands are answered
  after that, from one consistent reading of the kernel
  (`snapshot/2`), in the order of the document, as `nft -j list` prints
  them.
  """

  alias NFTables.Port.Nft

  @object_types [:counter, :quota, :limit, :ct_helper, :ct_timeout, :ct_expect, :secmark, :synproxy, :tunnel]
  @retries 5

  @doc """
  Runs `doc`. Answers `:ok` (writes only), `{:ok, doc}` (the list
  commands' objects, with the metainfo first) or `{:error, reason}`:
  `%{index: i, path: path, message: m}` when command `i` does not
  translate, `%{index: i, errno: e, message: m}` when the kernel refuses
  the transaction at command `i`.
  """
  @spec run(GenServer.server(), map(), keyword()) :: :ok | {:ok, map()} | {:error, term()}
  def run(server, %{nftables: cmds} = doc, opts) when is_list(cmds) do
    {lists, _writes} = Enum.split_with(Enum.with_index(cmds), fn {c, _} -> match?(%{list: _}, c) end)

    with {:ok, known} <- kernel_sets(server, doc, opts),
         {:ok, msgs, origins} <- Nft.to_messages(doc, sets: known),
         :ok <- commit(server, msgs, origins, opts) do
      case lists do
        [] -> :ok
        _ -> list(server, Enum.map(lists, &elem(&1, 0)), opts)
      end
    end
  end

  def run(_server, other, _opts) do
    {:error, %{index: nil, path: [], message: "expected a document %{nftables: [...]}, got: #{inspect(other, limit: 5)}"}}
  end

  defp commit(_server, [], _origins, _opts), do: :ok

  defp commit(server, msgs, origins, opts) do
    case NFTables.Port.commit(server, msgs, Keyword.take(opts, [:timeout, :genid])) do
      :ok ->
        :ok

      {:ok, _} ->
        :ok

      {:error, %{index: i} = e} when is_integer(i) ->
        {:error, %{e | index: Enum.at(origins, i)}}

      other ->
        other
    end
  end

  # Rules may use sets that are in the kernel already: what their maps
  # hold decides how a lookup's result is read.
  defp kernel_sets(server, %{nftables: cmds}, opts) do
    if Enum.any?(cmds, &rule_cmd?/1) do
      case NFTables.Port.list(server, :set, %{}, Keyword.take(opts, [:timeout])) do
        {:ok, sets} ->
          {:ok,
           Enum.reduce(sets, %{}, fn a, acc ->
             info = Nft.set_info(a, [])
             Map.update(acc, {a.family, a.table}, %{a.name => info}, &Map.put(&1, a.name, info))
           end)}

        {:error, _} ->
          {:ok, %{}}
      end
    else
      {:ok, %{}}
    end
  end

  defp rule_cmd?(%{rule: _}), do: true
  defp rule_cmd?(%{} = c) when map_size(c) == 1, do: match?([{_, %{rule: _}}], Map.to_list(c))
  defp rule_cmd?(_), do: false

  # ---------------------------------------------------------------------
  # list commands

  defp list(server, cmds, opts) do
    with {:ok, msgs} <- snapshot(server, opts),
         {:ok, %{nftables: objects}} <- Nft.from_messages(msgs, metainfo: false) do
      selected = Enum.flat_map(cmds, fn %{list: what} -> select(objects, what) end)
      {:ok, %{nftables: [Nft.metainfo() | selected]}}
    end
  end

  defp select(objects, %{ruleset: _}), do: objects
  defp select(objects, %{tables: _} = w), do: for(%{table: t} = o <- objects, fam?(t, w.tables), do: o)
  defp select(objects, %{chains: _} = w), do: for(%{chain: c} = o <- objects, fam?(c, w.chains), do: o)
  defp select(objects, %{sets: _} = w), do: for(%{set: s} = o <- objects, fam?(s, w.sets), do: o)
  defp select(objects, %{maps: _} = w), do: for(%{map: s} = o <- objects, fam?(s, w.maps), do: o)

  defp select(objects, %{table: %{family: f, name: n}}) do
    for o <- objects, in_table?(o, f, n), do: o
  end

  defp select(objects, %{chain: %{family: f, table: t, name: n}}) do
    for o <- objects,
        match?(%{chain: %{family: ^f, table: ^t, name: ^n}}, o) or match?(%{rule: %{family: ^f, table: ^t, chain: ^n}}, o),
        do: o
  end

  defp select(objects, %{} = w) when map_size(w) == 1 do
    [{kind, %{family: f, table: t, name: n}}] = Map.to_list(w)
    for %{^kind => %{family: ^f, table: ^t, name: ^n}} = o <- objects, do: o
  end

  defp select(_objects, _), do: []

  defp fam?(_o, nil), do: true
  defp fam?(o, %{family: f}), do: o.family == f
  defp fam?(_o, _), do: true

  defp in_table?(%{table: %{family: f, name: n}}, f, n), do: true

  defp in_table?(o, f, n) do
    [{_k, v}] = Map.to_list(o)
    is_map(v) and Map.get(v, :family) == f and Map.get(v, :table) == n
  end

  @doc """
  The whole ruleset as low-level `:add` messages with the kernel's
  handles, from one generation: listed type by type, and listed again
  when the generation changed in between.
  """
  @spec snapshot(GenServer.server(), keyword()) :: {:ok, [NFTables.Port.msg()]} | {:error, term()}
  def snapshot(server, opts \\ []), do: snapshot(server, Keyword.take(opts, [:timeout]), @retries)

  defp snapshot(_server, _opts, 0), do: {:error, "the ruleset kept changing while it was listed"}

  defp snapshot(server, opts, tries) do
    with {:ok, g, tables} <- list(server, :table, %{}, opts),
         {:ok, ^g, chains} <- list(server, :chain, %{}, opts),
         {:ok, ^g, sets} <- list(server, :set, %{}, opts),
         {:ok, ^g, objs} <- list_objects(server, g, opts),
         {:ok, ^g, flowtables} <- list(server, :flowtable, %{}, opts),
         {:ok, ^g, elements} <- list_elements(server, g, sets, opts),
         {:ok, ^g, rules} <- list(server, :rule, %{}, opts) do
      add = fn type, list -> Enum.map(list, &{:add, type, &1}) end

      {:ok,
       add.(:table, tables) ++ objs ++ add.(:set, sets) ++ add.(:flowtable, flowtables) ++
         add.(:chain, chains) ++ elements ++ add.(:rule, rules)}
    else
      {:ok, _other_gen, _} -> snapshot(server, opts, tries - 1)
      {:error, _} = e -> e
    end
  end

  defp list(server, type, filter, opts) do
    case NFTables.Port.list(server, type, filter, [with_genid: true] ++ opts) do
      {:ok, %{genid: g, objects: objects}} -> {:ok, g, objects}
      {:error, _} = e -> e
    end
  end

  defp list_objects(server, g, opts) do
    Enum.reduce_while(@object_types, {:ok, g, []}, fn type, {:ok, g, acc} ->
      case list(server, type, %{}, opts) do
        {:ok, ^g, objs} -> {:cont, {:ok, g, acc ++ Enum.map(objs, &{:add, type, &1})}}
        {:ok, other, _} -> {:halt, {:ok, other, []}}
        {:error, _} -> {:cont, {:ok, g, acc}}
      end
    end)
  end

  defp list_elements(server, g, sets, opts) do
    Enum.reduce_while(sets, {:ok, g, []}, fn s, {:ok, g, acc} ->
      case list(server, :element, %{family: s.family, table: s.table, set: s.name}, opts) do
        {:ok, ^g, []} ->
          {:cont, {:ok, g, acc}}

        {:ok, ^g, elems} ->
          msg = {:add, :element, %{family: s.family, table: s.table, set: s.name, elements: flatten_elements(elems)}}
          {:cont, {:ok, g, acc ++ [msg]}}

        {:ok, other, _} ->
          {:halt, {:ok, other, []}}

        {:error, _} = e ->
          {:halt, e}
      end
    end)
  end

  # list(:element) answers element messages or single elements.
  defp flatten_elements(elems) do
    Enum.flat_map(elems, fn
      %{elements: es} -> es
      e -> [e]
    end)
  end

  # ---------------------------------------------------------------------
  # format: :nft for list, get and dump

  @doc false
  # list(server, type, filter, format: :nft): the objects of `type` as
  # `nft -j list` prints them (rules need the whole table for their
  # anonymous sets, so the reading is a snapshot).
  def list_nft(server, type, filter, opts) do
    filter = Map.new(filter)

    with {:ok, msgs} <- snapshot(server, opts),
         {:ok, %{nftables: objects}} <- Nft.from_messages(msgs, metainfo: false) do
      key = json_key(type)

      {:ok, for(%{^key => o} = obj <- objects, matches?(o, filter, type), do: obj)}
    end
  end

  @doc false
  def get_nft(server, type, obj, opts) do
    filter = Map.take(obj, [:family, :table, :name, :chain, :handle])
    filter = if type == :table, do: Map.delete(filter, :table), else: filter

    case list_nft(server, type, filter, opts) do
      {:ok, [one | _]} -> {:ok, one}
      {:ok, []} -> {:error, "not found in the listing"}
      other -> other
    end
  end

  @doc false
  def dump_nft(server, opts) do
    with {:ok, msgs} <- snapshot(server, opts), do: Nft.from_messages(msgs)
  end

  defp json_key(:ct_helper), do: :"ct helper"
  defp json_key(:ct_timeout), do: :"ct timeout"
  defp json_key(:ct_expect), do: :"ct expectation"
  defp json_key(t), do: t

  defp matches?(o, filter, type) do
    Enum.all?(filter, fn
      {:family, f} -> to_string(o[:family]) == to_string(f)
      {:table, t} when type == :table -> o[:name] == t
      {:table, t} -> o[:table] == t
      {:chain, c} -> o[:chain] == c
      {:set, _} -> true
      {k, v} -> Map.get(o, k) == v
    end)
  end
end
