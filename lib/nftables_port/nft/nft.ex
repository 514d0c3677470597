defmodule NFTables.Port.Nft do
  @moduledoc """
  nft's own vocabulary, libnftables JSON, translated to and from the
  port's low-level messages, in the BEAM and without a port.

  A document is `%{nftables: [command | object, ...]}` with atom keys (the
  JSON text form decodes to it with `NFTables.Port.Nft.Json`):

      %{nftables: [
        %{add: %{table: %{family: "inet", name: "fw"}}},
        %{add: %{rule: %{family: "inet", table: "fw", chain: "input",
                         expr: [%{match: %{op: "==",
                                           left: %{payload: %{protocol: "tcp", field: "dport"}},
                                           right: 22}},
                                %{accept: nil}]}}}
      ]}

  - `to_messages/2` translates a document down to the messages
    `NFTables.Port.commit/3` takes, doing what nft's evaluation does
    (protocol dependencies, byte order, anonymous sets).
  - `from_messages/2` translates messages, as `NFTables.Port.dump/1` and
    `NFTables.Port.list/4` return them, up to the document `nft -j list
    ruleset` prints, folding dependencies as nft's listing does.

  Both are pure: users translate, validate and review rules in their own
  unit tests with no port, no privilege and no kernel.

  ## What the port's JSON adds to nft's

  Where nft 1.0.6's JSON loses data, the port's JSON keeps it in an added
  key, so that its own output loads back unchanged (see
  `NFTables.Port.Nft.Objects` for the object keys). A rule whose
  expressions the translator cannot name yet is kept as
  `%{bytecode: [...]}` statements (the low-level expressions, byte data as
  hex strings): lossless, and refused by nft itself.
  """

  alias NFTables.Port.Nft.{Error, Value}
  alias NFTables.Port.Nft.Rule.Up

  @metainfo %{metainfo: %{version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1}}

  @typedoc "A libnftables JSON document in Elixir terms (atom keys)."
  @type document :: %{nftables: [map()]}

  @doc "The metainfo object `nft -j` prints first."
  @spec metainfo() :: map()
  def metainfo, do: @metainfo

  # ---------------------------------------------------------------------
  # down: document -> messages

  @verbs ~w(add create insert replace delete destroy flush reset)a
  @objects [:table, :chain, :rule, :set, :map, :element, :flowtable, :counter, :quota, :limit,
            :"ct helper", :"ct timeout", :"ct expectation", :secmark, :synproxy, :ruleset]

  @doc """
  Translates a document to low-level messages for `NFTables.Port.commit/3`.

  Answers `{:ok, msgs, origins}`, `origins` giving for each message the
  index of the document's command it came from (a kernel error on message
  `k` is the command `Enum.at(origins, k)`), or `{:error, %{index: i, path:
  [...], message: m}}` naming the command and the place inside it that does
  not translate. Objects given without a command (as `nft -j list` prints
  them) are added. `list` commands are not messages: see
  `NFTables.Port.commit/3`.

  Options: `sets`, what is known of sets already in the kernel
  (`%{{family, table} => %{name => set_info}}`), for rules that use them.
  """
  @spec to_messages(document() | [map()], keyword()) ::
          {:ok, [NFTables.Port.msg()], [non_neg_integer()]} | {:error, map()}
  def to_messages(doc, opts \\ [])

  def to_messages(%{nftables: cmds}, opts) when is_list(cmds), do: to_messages(cmds, opts)

  def to_messages(cmds, opts) when is_list(cmds) do
    known = doc_sets(cmds, Keyword.get(opts, :sets, %{}))

    cmds
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, [], [], 0x4E465000}, fn {cmd, i}, {:ok, msgs, origins, next_id} ->
      case command_down(cmd, known, next_id) do
        {:ok, new, next_id} ->
          {:cont, {:ok, msgs ++ new, origins ++ List.duplicate(i, length(new)), next_id}}

        {:error, path, message} ->
          {:halt, {:error, %{index: i, path: path, message: message}}}
      end
    end)
    |> case do
      {:ok, msgs, origins, _} -> {:ok, msgs, origins}
      err -> err
    end
  end

  def to_messages(other, _opts) do
    {:error, %{index: nil, path: [], message: "expected %{nftables: [...]}, got: #{inspect(other, limit: 5)}"}}
  end

  defp command_down(%{metainfo: _}, _known, id), do: {:ok, [], id}

  defp command_down(%{} = cmd, known, id) when map_size(cmd) == 1 do
    case Map.to_list(cmd) do
      [{verb, %{} = obj}] when verb in @verbs -> object_down(verb, obj, known, id, [verb])
      [{:list, _}] -> {:ok, [], id}
      [{obj, _} = pair] when obj in @objects -> object_down(:add, Map.new([pair]), known, id, [])
      [{k, _}] -> {:error, [k], "unknown command or object #{inspect(to_string(k))} (commands: #{Enum.join(@verbs ++ [:list], ", ")})"}
    end
  end

  defp command_down(cmd, _known, _id), do: {:error, [], "a command must be an object with one key, got: #{inspect(cmd, limit: 5)}"}

  defp object_down(verb, %{rule: r}, known, id, path) when verb in [:add, :create, :insert, :replace] do
    with {:ok, family} <- family_atom(r, path ++ [:rule]),
         :ok <- require_keys(r, [:table, :chain], path ++ [:rule]) do
      {exprs, set_msgs, id} =
        NFTables.Port.Nft.Rule.Down.translate(Map.get(r, :expr, []),
          family: family,
          table: r.table,
          sets: Map.get(known, {family, r.table}, %{}),
          first_set_id: id
        )

      attrs = %{family: family, table: r.table, chain: r.chain, exprs: exprs}
      attrs = put_opt(attrs, :userdata, rule_udata(Map.get(r, :comment)))

      attrs =
        case verb do
          :replace -> put_opt(attrs, :handle, Map.get(r, :handle))
          :insert -> put_opt(attrs, :position, Map.get(r, :handle))
          _ -> put_opt(attrs, :position, Map.get(r, :handle) && Map.get(r, :position))
        end

      {:ok, set_msgs ++ [{port_verb(verb), :rule, attrs}], id}
    end
  rescue
    e in Error -> {:error, path ++ [:rule | e.path], e.message}
  end

  defp object_down(verb, obj, known, id, path) do
    objects = NFTables.Port.Nft.Objects

    if Code.ensure_loaded?(objects) and function_exported?(objects, :down, 3) do
      case objects.down(verb, obj, %{sets: known}) do
        {:ok, msgs} -> {:ok, msgs, id}
        {:error, p, m} -> {:error, path ++ p, m}
      end
    else
      {:error, path, "objects translation unavailable"}
    end
  end

  defp port_verb(:insert), do: :insert
  defp port_verb(:replace), do: :replace
  defp port_verb(v), do: v

  defp family_atom(%{family: f}, path) when is_binary(f) do
    if f in ~w(ip ip6 inet arp bridge netdev),
      do: {:ok, String.to_existing_atom(f)},
      else: {:error, path ++ [:family], "unknown family #{inspect(f)} (known: ip, ip6, inet, arp, bridge, netdev)"}
  end

  defp family_atom(_, path), do: {:error, path ++ [:family], "missing family"}

  defp require_keys(m, keys, path) do
    case Enum.find(keys, &(not Map.has_key?(m, &1))) do
      nil -> :ok
      k -> {:error, path ++ [k], "missing #{k}"}
    end
  end

  defp put_opt(m, _k, nil), do: m
  defp put_opt(m, k, v), do: Map.put(m, k, v)

  # nft's rule user data: the comment as TLV type 0, NUL-terminated.
  defp rule_udata(nil), do: nil
  defp rule_udata(c) when is_binary(c), do: <<0, byte_size(c) + 1>> <> c <> <<0>>

  # What the document itself says of its sets (for rules that use them),
  # over what the caller knows of the kernel's.
  defp doc_sets(cmds, known) do
    Enum.reduce(cmds, known, fn cmd, acc ->
      obj =
        case cmd do
          %{add: o} -> o
          %{create: o} -> o
          o -> o
        end

      case obj do
        %{set: %{family: f, table: t, name: n} = s} -> put_set(acc, f, t, n, s)
        %{map: %{family: f, table: t, name: n} = s} -> put_set(acc, f, t, n, s)
        _ -> acc
      end
    end)
  end

  defp put_set(acc, f, t, n, s) when is_binary(f) do
    key = {String.to_existing_atom(f), t}
    info = %{key_types: List.wrap(Map.get(s, :type, "integer")), data_type: json_data_type(Map.get(s, :map))}
    Map.update(acc, key, %{n => info}, &Map.put(&1, n, info))
  rescue
    ArgumentError -> acc
  end

  defp put_set(acc, _f, _t, _n, _s), do: acc

  defp json_data_type(nil), do: nil
  defp json_data_type([one]), do: one
  defp json_data_type(t), do: t

  # ---------------------------------------------------------------------
  # up: messages -> document

  @doc """
  Translates low-level messages (a dump's `msgs`, or objects as `list`
  returns them wrapped as `{:add, type, attrs}`) to the document `nft -j
  list ruleset` prints for them. Options: `metainfo: false` leaves out the
  metainfo object.
  """
  @spec from_messages([NFTables.Port.msg()], keyword()) :: {:ok, document()} | {:error, map()}
  def from_messages(msgs, opts \\ []) do
    objects = up_objects(msgs)
    objects = if Keyword.get(opts, :metainfo, true), do: [@metainfo | objects], else: objects
    {:ok, %{nftables: objects}}
  rescue
    e in Error -> {:error, %{index: nil, path: e.path, message: e.message}}
  end

  @doc "As `from_messages/2`, raising on failure."
  @spec from_messages!([NFTables.Port.msg()], keyword()) :: document()
  def from_messages!(msgs, opts \\ []) do
    case from_messages(msgs, opts) do
      {:ok, doc} -> doc
      {:error, e} -> raise Error, message: e.message, path: e.path
    end
  end

  # nft's listing order: per table, the table, its stateful objects, its
  # named sets, its flowtables, its chains, then the rules of every chain.
  defp up_objects(msgs) do
    sets = set_infos(msgs)

    tables =
      for {_verb, :table, a} <- msgs, do: {a.family, a.name}

    grouped = Enum.group_by(msgs, fn {_v, _t, a} -> {Map.get(a, :family), Map.get(a, :table, Map.get(a, :name))} end)

    Enum.flat_map(Enum.uniq(tables), fn key ->
      group = Map.get(grouped, key, [])
      {fam, tname} = key
      tsets = Map.get(sets, key, %{})

      {rules, others} = Enum.split_with(group, &match?({_, :rule, _}, &1))
      table = for {_, :table, a} = m <- others, a.name == tname, do: m
      chains = for {_, :chain, _} = m <- others, do: m
      named_sets = for {_, :set, a} = m <- others, not anonymous?(a), do: m
      flowtables = for {_, :flowtable, _} = m <- others, do: m
      objs = for {_, t, _} = m <- others, t not in [:table, :chain, :set, :element, :flowtable, :rule], do: m

      Enum.flat_map(table ++ objs ++ named_sets ++ flowtables ++ chains, &object_up(&1, tsets, group)) ++
        Enum.map(rules, &rule_up(&1, fam, tsets))
    end)
  end

  defp anonymous?(a), do: :anonymous in List.wrap(Map.get(a, :flags, []))

  # Objects other than rules: NFTables.Port.Nft.Objects.
  defp object_up(msg, sets, group) do
    objects = NFTables.Port.Nft.Objects

    if Code.ensure_loaded?(objects) and function_exported?(objects, :up, 2) do
      case objects.up(msg, %{sets: sets, msgs: group}) do
        nil -> []
        list when is_list(list) -> list
        obj -> [obj]
      end
    else
      raise Error, "objects translation unavailable"
    end
  end

  @doc false
  # A rule message -> the rule object, its expressions translated; a rule
  # the translator cannot name stays as bytecode.
  def rule_up({_verb, :rule, a}, family, sets) do
    exprs = Map.get(a, :exprs, [])

    stmts =
      try do
        Up.translate(exprs, family, sets)
      rescue
        e in [Error, MatchError, FunctionClauseError, KeyError, ArgumentError, CaseClauseError] ->
          [%{bytecode: %{reason: Exception.message(e), exprs: bytecode(exprs)}}]
      end

    rule = %{family: Atom.to_string(family), table: a.table, chain: a.chain}
    rule = if Map.has_key?(a, :handle), do: Map.put(rule, :handle, a.handle), else: rule
    rule = Map.put(rule, :expr, stmts)

    rule =
      case rule_comment(a) do
        nil -> rule
        c -> Map.put(rule, :comment, c)
      end

    %{rule: rule}
  end

  defp rule_comment(a) do
    udata = NFTables.Port.Nft.Udata

    with bin when is_binary(bin) <- Map.get(a, :userdata),
         true <- Code.ensure_loaded?(udata) and function_exported?(udata, :rule_comment, 1) do
      udata.rule_comment(bin)
    else
      _ -> comment_tlv(Map.get(a, :userdata))
    end
  end

  # nft's rule user data: TLV {type u8, len u8, value}; type 0 the comment.
  defp comment_tlv(<<0, len, value::binary-size(len), _::binary>>), do: String.trim_trailing(value, <<0>>)
  defp comment_tlv(<<_t, len, _::binary-size(len), rest::binary>>), do: comment_tlv(rest)
  defp comment_tlv(_), do: nil

  defp bytecode(exprs) do
    Enum.map(exprs, fn {kind, attrs} ->
      %{Atom.to_string(kind) => Map.new(attrs, fn {k, v} -> {k, hexify(v)} end)}
    end)
  end

  defp hexify(v) when is_binary(v) do
    if String.printable?(v), do: v, else: "0x" <> Base.encode16(v, case: :lower)
  end

  defp hexify(v) when is_list(v), do: Enum.map(v, &hexify/1)
  defp hexify({k, m}) when is_atom(k) and is_map(m), do: %{k => Map.new(m, fn {a, b} -> {a, hexify(b)} end)}
  defp hexify(v), do: v

  # What rules need to know of each set: key and data types, flags, and
  # the elements of anonymous sets, decoded.
  @doc false
  def set_infos(msgs) do
    elements =
      Enum.reduce(msgs, %{}, fn
        {_, :element, a}, acc ->
          Map.update(acc, {a.family, a.table, a.set}, a.elements, &(&1 ++ a.elements))

        _, acc ->
          acc
      end)

    for {_, :set, a} <- msgs, reduce: %{} do
      acc ->
        info = set_info(a, Map.get(elements, {a.family, a.table, a.name}, []))
        Map.update(acc, {a.family, a.table}, %{a.name => info}, &Map.put(&1, a.name, info))
    end
  end

  @verdict_type 0xFFFFFF00

  @doc false
  def set_info(a, elements) do
    flags = List.wrap(Map.get(a, :flags, []))

    data_type =
      case Map.get(a, :data_type) do
        nil -> nil
        @verdict_type -> "verdict"
        id -> id |> Value.type_names(Map.get(a, :data_len)) |> single_or_list()
      end

    info = %{
      name: a.name,
      key_types: Value.type_names(Map.get(a, :key_type, 4), Map.get(a, :key_len)),
      key_len: Map.get(a, :key_len, 0),
      data_type: data_type,
      data_len: Map.get(a, :data_len, 0),
      obj_type: Map.get(a, :obj_type),
      flags: flags,
      anonymous: :anonymous in flags,
      desc_size: Map.get(a, :desc_size, 0),
      family: a.family,
      userdata: Map.get(a, :userdata),
      data_interval: false
    }

    objects = NFTables.Port.Nft.Objects

    info =
      if Code.ensure_loaded?(objects) and function_exported?(objects, :set_info, 1),
        do: Map.merge(info, objects.set_info(a)),
        else: info

    if info.anonymous, do: Map.put(info, :elements_json, elements_up(info, elements)), else: info
  end

  # Plain (non-interval) elements only; intervals come from Elements.
  defp simple_elements_up(info, elements) do
    Enum.map(elements, fn e ->
      key =
        case {Map.get(e, :key), info.key_types} do
          {nil, _} -> "*"
          {k, [t]} -> Value.decode(t, k)
          {k, ts} -> %{concat: Value.decode_concat(ts, k)}
        end

      case info.data_type do
        nil -> key
        "verdict" -> [key, %{Map.get(e, :verdict) => if(Map.has_key?(e, :chain), do: %{target: e.chain})}]
        t when is_binary(t) -> [key, Value.decode(t, Map.get(e, :data, <<>>))]
        ts -> [key, %{concat: Value.decode_concat(ts, Map.get(e, :data, <<>>))}]
      end
    end)
  end

  defp single_or_list([one]), do: one
  defp single_or_list(many), do: many

  defp elements_up(info, elements) do
    mod = NFTables.Port.Nft.Elements

    if Code.ensure_loaded?(mod) and function_exported?(mod, :up, 2) do
      mod.up(info, elements)
    else
      simple_elements_up(info, elements)
    end
  end
end
