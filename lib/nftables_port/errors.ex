defmodule NFTables.Port.Errors do
  @moduledoc """
  The two shapes of `{:error, reason}` that `NFTables.Port` answers, and
  what the library adds to the kernel's answer.

  A **kernel error** (the kernel refused a request):

      %{errno: :enoent, index: 2 | nil, object: %{type: :set, family: :inet,
        table: "fw", name: "blocklst"} | nil, attr: :name | nil,
        message: "No such file or directory (ENOENT): set 'blocklst' does not
        exist in table inet 'fw'; did you mean set 'blocklist' in table inet 'fw'?"}

    * `errno` - the kernel's errno as a lower-case atom;
    * `index` - the failing message of a batch (`commit`, `Batch.send`;
      the ops marked `errors: indexed` in `schema/ops.yaml`), else `nil`;
    * `object` - what the failing message or request addressed: its type
      and its key attributes, read back from the message the port sent;
    * `attr` - the attribute the kernel blamed (its extended ACK's offset,
      mapped back to the schema's name), or that the port found wrong;
    * `message` - the errno's text, the kernel's own message when it sent
      one, and what the library worked out: which object does not exist,
      a "did you mean" from a cheap lookup, that `:eexist` on an interval
      set means an overlap.

  A **caller error** (a bad term, an unknown attribute or value; or, with
  reason `:failed`, something the port itself could not do, such as
  memory or replies lost to a full socket buffer):

      %{reason: :badarg | :failed, index: 3 | nil, message: "..."}

  Besides these, the server answers atoms: `:timeout`, `:generation_changed`,
  `{:port_exit, status}`, `:port_closed`.
  """

  @typedoc "A kernel error."
  @type kernel_error :: %{
          errno: atom(),
          index: non_neg_integer() | nil,
          object: %{required(:type) => atom(), optional(atom()) => term()} | nil,
          attr: atom() | nil,
          message: String.t()
        }

  @typedoc "A caller error (`:badarg`) or the port's own failure (`:failed`)."
  @type caller_error :: %{
          reason: :badarg | :failed,
          index: non_neg_integer() | nil,
          message: String.t()
        }

  @type t :: kernel_error() | caller_error()

  @doc false
  @spec badarg(String.t(), non_neg_integer() | nil) :: {:error, caller_error()}
  def badarg(message, index \\ nil),
    do: {:error, %{reason: :badarg, index: index, message: message}}

  @doc false
  # Adds what the library knows to a kernel error of `op`. `request` runs a
  # request on the same server without explaining its errors. Never fails:
  # whatever goes wrong leaves the error as the port sent it.
  @spec explain(kernel_error(), atom(), list(), (atom(), list() -> term())) :: kernel_error()
  def explain(%{errno: errno} = error, op, args, request) do
    error = fill_object(error, op, args)

    case explain_(errno, error, op, args, request) do
      nil -> error
      text -> %{error | message: insert(error.message, text)}
    end
  rescue
    _ -> error
  catch
    :exit, _ -> error
  end

  # "ENOENT (EXXX): what the library knows (attribute :x)": the
  # explanation comes before the port's note of the attribute.
  defp insert(message, text) do
    case String.split(message, " (attribute ", parts: 2) do
      [head, tail] -> head <> ": " <> text <> " (attribute " <> tail
      [head] -> head <> ": " <> text
    end
  end

  # The port reads the object back from the message it sent; where it
  # could not (a message it could not parse), the caller's message says it.
  defp fill_object(%{object: %{type: type} = obj, index: i} = error, :commit, [msgs | _])
       when map_size(obj) == 1 and is_integer(i) do
    case Enum.at(msgs, i) do
      {_verb, ^type, attrs} ->
        %{error | object: Map.merge(Map.take(attrs, [:family, :table, :name, :set, :chain]), obj)}

      _ ->
        error
    end
  end

  defp fill_object(error, _op, _args), do: error

  defp explain_(:enoent, %{object: %{type: _} = obj} = error, op, args, request) do
    missing(obj, error.attr, op, args, request)
  end

  defp explain_(:eexist, %{object: %{type: :element} = obj}, op, args, request) do
    if interval_set?(obj, op, args, request),
      do: "interval overlaps with an existing one",
      else: nil
  end

  defp explain_(_errno, _error, _op, _args, _request), do: nil

  # Which object of the message did not exist, and what the user may have
  # meant.
  defp missing(%{family: family, table: table} = obj, attr, _op, _args, request) do
    tables = names(request, :table, %{}, fn t -> {t.family, t.name} end)

    cond do
      {family, table} not in tables ->
        "table #{family} '#{table}' does not exist" <>
          suggest(tables, {family, table}, fn {f, n} -> "table #{f} '#{n}'" end)

      true ->
        case missing_child(obj, attr) do
          {type, name} ->
            siblings = names(request, type, %{}, fn o -> {o.family, o.table, o.name} end)

            "#{type} '#{name}' does not exist in table #{family} '#{table}'" <>
              suggest(siblings, {family, table, name}, fn {f, t, n} ->
                "#{type} '#{n}' in table #{f} '#{t}'"
              end)

          nil ->
            nil
        end
    end
  end

  defp missing(%{type: :table, family: family, name: name}, _attr, _op, _args, request) do
    tables = names(request, :table, %{}, fn t -> {t.family, t.name} end)

    "table #{family} '#{name}' does not exist" <>
      suggest(tables, {family, name}, fn {f, n} -> "table #{f} '#{n}'" end)
  end

  defp missing(_obj, _attr, _op, _args, _request), do: nil

  # The named object a message needs besides its table.
  defp missing_child(%{type: :rule, chain: chain}, attr) when attr in [:chain, nil],
    do: {:chain, chain}

  defp missing_child(%{type: :element, set: set}, attr) when attr in [:set, nil], do: {:set, set}

  defp missing_child(%{type: type, name: name}, attr)
       when attr in [:name, nil] and is_binary(name),
       do: {type, name}

  defp missing_child(_obj, _attr), do: nil

  defp names(request, type, filter, key) do
    case request.(:list, [type, filter]) do
      {:ok, %{objects: objects}} -> Enum.map(objects, key)
      _ -> []
    end
  end

  # nft's "did you mean": the same name elsewhere, or a close one.
  defp suggest(candidates, {_, _, _} = wanted, render), do: suggest_(candidates, wanted, render)
  defp suggest(candidates, wanted, render), do: suggest_(candidates, wanted, render)

  defp suggest_(candidates, wanted, render) do
    name = elem(wanted, tuple_size(wanted) - 1)

    candidates
    |> Enum.reject(&(&1 == wanted))
    |> Enum.map(fn c -> {distance(elem(c, tuple_size(c) - 1), name), c} end)
    |> Enum.filter(fn {d, _} -> d <= max(1, div(String.length(name) + 1, 3)) end)
    |> Enum.sort()
    |> case do
      [{_, best} | _] -> "; did you mean #{render.(best)}?"
      [] -> ""
    end
  end

  @doc false
  # Levenshtein distance.
  @spec distance(String.t(), String.t()) :: non_neg_integer()
  def distance(a, b) do
    b = String.graphemes(b)

    a
    |> String.graphemes()
    |> Enum.reduce({1, Enum.to_list(0..length(b))}, fn ca, {i, prev} ->
      row =
        b
        |> Enum.zip(prev)
        |> Enum.zip(tl(prev))
        |> Enum.reduce({[i], i}, fn {{cb, diag}, up}, {acc, left} ->
          v = Enum.min([left + 1, up + 1, diag + if(ca == cb, do: 0, else: 1)])
          {[v | acc], v}
        end)
        |> elem(0)
        |> Enum.reverse()

      {i + 1, row}
    end)
    |> elem(1)
    |> List.last()
  end

  defp interval_set?(%{family: f, table: t, set: s}, op, args, request) do
    in_batch =
      case {op, args} do
        {:commit, [msgs | _]} ->
          Enum.find_value(msgs, fn
            {v, :set, %{family: ^f, table: ^t, name: ^s} = a} when v in [:add, :create] ->
              {:ok, a}

            _ ->
              nil
          end)

        _ ->
          nil
      end

    attrs =
      case in_batch do
        {:ok, a} ->
          a

        nil ->
          case request.(:get, [:set, %{family: f, table: t, name: s}]) do
            {:ok, a} -> a
            _ -> %{}
          end
      end

    :interval in List.wrap(Map.get(attrs, :flags, []))
  end

  defp interval_set?(_obj, _op, _args, _request), do: false

  @doc false
  # Element keys are checked against the set's key_len before a commit is
  # sent: the kernel takes a key of the wrong length in one message and
  # refuses it with a bare EINVAL. The set comes from the same batch, or
  # from the kernel (one lookup per set); a set found in neither is left
  # to the kernel.
  @spec check_key_lens([tuple()], (atom(), list() -> term())) :: :ok | {:error, caller_error()}
  def check_key_lens(msgs, request) do
    msgs
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, %{}}, fn
      {{verb, :set, %{family: f, table: t, name: n} = a}, _i}, {:ok, sets}
      when verb in [:add, :create] ->
        {:cont, {:ok, Map.put(sets, {f, t, n}, a)}}

      {{verb, :element, %{family: f, table: t, set: s, elements: els}}, i}, {:ok, sets}
      when verb in [:add, :create, :delete, :destroy] and is_list(els) ->
        {set, sets} = lookup_set(sets, {f, t, s}, request)

        case bad_key(els, set) do
          nil ->
            {:cont, {:ok, sets}}

          {j, attr, size, want} ->
            {:halt,
             badarg(
               "commit: message #{i} (#{verb} element): element #{j}: :#{attr} is " <>
                 "#{size} bytes, but set '#{s}' in table #{f} '#{t}' has key_len #{want}",
               i
             )}
        end

      _, acc ->
        {:cont, acc}
    end)
    |> case do
      {:ok, _} -> :ok
      error -> error
    end
  end

  defp lookup_set(sets, key, request) do
    case Map.fetch(sets, key) do
      {:ok, set} ->
        {set, sets}

      :error ->
        {f, t, s} = key

        set =
          case request.(:get, [:set, %{family: f, table: t, name: s}]) do
            {:ok, set} -> set
            _ -> nil
          end

        {set, Map.put(sets, key, set)}
    end
  end

  defp bad_key(els, %{key_len: want}) when is_integer(want) do
    els
    |> Enum.with_index()
    |> Enum.find_value(fn {el, j} ->
      Enum.find_value([:key, :key_end], fn attr ->
        case el do
          %{^attr => key} when is_binary(key) and byte_size(key) != want ->
            {j, attr, byte_size(key), want}

          _ ->
            nil
        end
      end)
    end)
  end

  defp bad_key(_els, _set), do: nil
end
