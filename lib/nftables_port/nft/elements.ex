defmodule NFTables.Port.Nft.Elements do
  @moduledoc """
  Set elements both ways, between the port's low-level element maps
  (`%{key: bin, key_end: bin, flags: [...], data: bin, verdict: atom,
  chain: name, objref: name, timeout: ms, expiration: ms, userdata: bin,
  exprs: [...]}`) and the JSON elements of libnftables (nft 1.0.6).

  `up/2` does what `nft -j list` does with a set's elements
  (netlink_delinearize_setelem, then segtree.c): plain sets are sorted as
  nft sorts them (mergesort.c), interval sets are merged back into single
  values, prefixes, ranges and `*` wildcards (interval_map_decompose),
  concatenated intervals are split per field (concat_range_aggregate), the
  catch-all element prints as `"*"`, last.

  `down/3` does what nft 1.0.6 sends for JSON elements (intervals.c
  set_to_intervals): an interval becomes a start element and an end
  element (the value after its end, flagged `interval_end`), an interval
  that runs to the largest value instead marks its start "open" in the
  element's user data, a set that gets its first elements also gets the
  end element at 0 ("first segment"), adjacent and overlapping intervals
  merge on sets with auto-merge; concatenated intervals become `key` and
  `key_end`; `"*"` becomes the catch-all element.

  `set_info` (built by `NFTables.Port.Nft.Objects.set_info/1`):

      %{key_types: [type_name], key_len: n, key_byteorder: :host | :big | :invalid | nil,
        key_byteorders: [..] (optional, per concatenated field),
        field_len: [n] (desc_concat, optional),
        data_type: type_name | "verdict" | nil, data_types: [type_name] (concatenated data),
        data_len: n, data_byteorder: atom | nil, data_interval: boolean,
        obj_type: "counter" | ... | nil (object maps),
        flags: [set flag atoms], merge: boolean (auto-merge),
        set_exprs: n (how many statements the set gives its elements), typeof: ... }
  """

  import Bitwise

  alias NFTables.Port.Nft.{Udata, Value}

  @verdicts [:accept, :drop, :continue, :return, :jump, :goto, :break]

  # =====================================================================
  # up: low-level elements -> JSON elements

  @doc "The JSON elements of a set, in the order `nft -j list` prints them."
  @spec up(map(), [map()]) :: [term()]
  def up(_si, []), do: []

  def up(si, elems) do
    {catchall, rest} = Enum.split_with(elems, &catchall?/1)
    flags = Map.get(si, :flags, [])

    body =
      cond do
        :interval in flags and concat_interval?(si, rest) -> concat_ranges_up(si, rest)
        :interval in flags -> intervals_up(si, rest)
        true -> rest |> sort_plain(si) |> Enum.map(&elem_json(si, key_json(si, &1.key), &1))
      end

    body ++ Enum.map(catchall, &elem_json(si, "*", &1))
  end

  defp catchall?(e), do: :catchall in List.wrap(Map.get(e, :flags, []))
  defp interval_end?(e), do: :interval_end in List.wrap(Map.get(e, :flags, []))

  defp concat_interval?(si, elems) do
    length(Map.get(si, :key_types, [])) > 1 and
      (:concat in Map.get(si, :flags, []) or Enum.any?(elems, &Map.has_key?(&1, :key_end)))
  end

  # --- the fields of a key --------------------------------------------

  @doc """
  The fields of a set's key: `[{type_name, byteorder, bytes}]`, one per
  concatenated field (each padded to 4 bytes in the key), or one for a
  plain key (its bytes the key length).
  """
  @spec key_fields(map()) :: [{String.t(), atom(), non_neg_integer()}]
  def key_fields(si) do
    types = Map.get(si, :key_types, [])

    case types do
      [t] ->
        [{t, resolve_bo(t, Map.get(si, :key_byteorder)), Map.get(si, :key_len) || Value.bytes(t)}]

      _ ->
        fs =
          fields(
            types,
            Map.get(si, :key_byteorders),
            Map.get(si, :field_len),
            Map.get(si, :key_len)
          )

        # nft keeps host-order fields of concatenated intervals in big
        # endian (it switches their byte order only in plain sets)
        if :interval in Map.get(si, :flags, []),
          do:
            Enum.map(fs, fn {t, bo, l} ->
              {t, if(bo == :host and not string_type?(t), do: :big, else: bo), l}
            end),
          else: fs
    end
  end

  defp data_fields(si) do
    case Map.get(si, :data_types) || List.wrap(Map.get(si, :data_type)) do
      [t] ->
        len = Map.get(si, :data_len) || Value.bytes(t)
        len = if Map.get(si, :data_interval), do: div(len, 2), else: len
        [{t, resolve_bo(t, Map.get(si, :data_byteorder)), len}]

      types ->
        fields(types, Map.get(si, :data_byteorders), nil, Map.get(si, :data_len))
    end
  end

  defp fields(types, bos, field_len, total) do
    known =
      types
      |> Enum.with_index()
      |> Enum.map(fn {t, i} ->
        fl = field_len && Enum.at(field_len, i)
        b = Value.bytes(t)

        cond do
          is_integer(fl) and fl > 0 -> fl
          b > 0 -> b
          true -> nil
        end
      end)

    # one field of unknown size (a typeof integer) takes what is left
    padded_known = known |> Enum.reject(&is_nil/1) |> Enum.map(&Value.reg_bytes/1) |> Enum.sum()

    known =
      case Enum.count(known, &is_nil/1) do
        1 when is_integer(total) -> Enum.map(known, &(&1 || max(total - padded_known, 0)))
        _ -> Enum.map(known, &(&1 || 4))
      end

    types
    |> Enum.with_index()
    |> Enum.map(fn {t, i} ->
      bo = (bos && Enum.at(bos, i)) || Value.byteorder(t)
      {t, bo, Enum.at(known, i)}
    end)
  end

  defp resolve_bo(t, bo) when bo in [:host, :big], do: bo_or_type(t, bo)
  defp resolve_bo(t, _), do: Value.byteorder(t)

  # strings stay as they are whatever the byte order says
  defp bo_or_type(t, bo), do: if(string_type?(t), do: Value.byteorder(t), else: bo)

  defp string_type?(t), do: Map.get(Value.datatype!(t), :format) == :string

  defp prefix_type?(t), do: Map.get(Value.datatype!(t), :prefix, false) == true

  # Bytes whose order differs from the one Value reads for the type are
  # turned around first (a typeof integer of a payload field is big endian).
  defp swap?(t, bo, bin) do
    byte_size(bin) > 1 and not string_type?(t) and
      ((bo == :host and Value.byteorder(t) != :host) or
         (bo == :big and Value.byteorder(t) == :host))
  end

  defp reverse(bin), do: bin |> :binary.bin_to_list() |> Enum.reverse() |> :binary.list_to_bin()

  @doc "One field's bytes as JSON (a value of `type` kept in byte order `bo`)."
  @spec field_json(String.t(), atom(), binary()) :: term()
  def field_json(t, bo, bin) do
    bin = if swap?(t, bo, bin), do: reverse(bin), else: bin
    v = Value.decode(t, bin)

    case Map.get(Value.datatype!(t), :format) do
      # nft lists the flags of a bitmask set element as a | b | c (binops)
      :bitmask when is_list(v) ->
        Enum.reduce(tl(v), hd(v), fn f, acc -> %{|: [acc, f]} end)

      _ ->
        v
    end
  end

  defp split_fields(fields, bin) do
    {parts, _} =
      Enum.map_reduce(fields, bin, fn {t, bo, len}, rest ->
        padded = if length(fields) > 1, do: Value.reg_bytes(len), else: byte_size(rest)
        padded = min(padded, byte_size(rest))
        <<part::binary-size(padded), rest2::binary>> = rest
        take = min(len, padded)
        {{t, bo, binary_part(part, 0, take)}, rest2}
      end)

    parts
  end

  defp key_json(si, key) do
    case key_fields(si) do
      [{t, bo, _}] -> field_json(t, bo, key)
      fields -> %{concat: for({t, bo, b} <- split_fields(fields, key), do: field_json(t, bo, b))}
    end
  end

  # --- plain sets: nft's sort (mergesort.c expr_msort_cmp) ------------

  defp sort_plain(elems, si) do
    host = Map.get(si, :key_byteorder) == :host
    concat = length(Map.get(si, :key_types, [])) > 1

    bitmask =
      case Map.get(si, :key_types, []) do
        [t] -> Map.get(Value.datatype!(t), :format) == :bitmask
        _ -> false
      end

    # nft's merge sort puts equal values of the second half first: equal
    # values come out in the reverse of the kernel's order
    elems
    |> Enum.reverse()
    |> Enum.sort_by(fn e ->
      k = Map.get(e, :key, <<>>)

      cond do
        # a flag set element is listed as a | b | c and sorts by its first
        # (lowest) flag
        bitmask ->
          [{t, bo, _}] = key_fields(si)
          n = num(t, bo, k)
          band(n, -n)

        # values compare as numbers: host-order keys (and a concatenation
        # as a whole) little endian, the others big endian
        host or concat ->
          reverse(k)

        true ->
          k
      end
    end)
  end

  # --- a JSON element with its attributes ------------------------------

  defp elem_json(si, key, e) do
    wrapped = with_attrs(key, e)
    flags = Map.get(si, :flags, [])

    cond do
      :map in flags -> [wrapped, data_json(si, e)]
      :object in flags -> [wrapped, Map.get(e, :objref)]
      true -> wrapped
    end
  end

  defp with_attrs(key, e) do
    %{comment: comment} = Udata.elem_up(Map.get(e, :userdata))
    timeout = Map.get(e, :timeout, 0) || 0
    expires = Map.get(e, :expiration, 0) || 0
    stmts = Map.get(e, :exprs, []) || []

    if timeout == 0 and expires == 0 and comment == nil and stmts == [] do
      key
    else
      base =
        %{val: key}
        |> put_if(timeout != 0, :timeout, div(timeout, 1000))
        |> put_if(expires != 0, :expires, div(expires, 1000))
        |> put_if(comment != nil, :comment, comment)

      # nft 1.0.6 prints only an element's first statement; the port adds
      # them all, in order, as "stmt" where there are more
      base =
        case stmts do
          [first] ->
            Map.merge(stmt_json(first, false), base, fn _k, _a, b -> b end)

          [first | _] ->
            stmt_json(first, false)
            |> Map.merge(base, fn _k, _a, b -> b end)
            |> Map.put(:stmt, Enum.map(stmts, &stmt_json(&1, false)))

          [] ->
            base
        end

      %{elem: base}
    end
  end

  defp put_if(map, true, k, v), do: Map.put(map, k, v)
  defp put_if(map, false, _k, _v), do: map

  defp data_json(si, e) do
    cond do
      Map.get(si, :data_type) == "verdict" ->
        verdict_json(Map.get(e, :verdict), Map.get(e, :chain))

      Map.has_key?(e, :data) ->
        data = e.data

        case data_fields(si) do
          [{t, bo, len}] ->
            if Map.get(si, :data_interval) and byte_size(data) >= 2 * len do
              <<a::binary-size(len), b::binary-size(len), _::binary>> = data
              range_json(t, bo, a, b)
            else
              field_json(t, bo, data)
            end

          fields ->
            %{concat: for({t, bo, b} <- split_fields(fields, data), do: field_json(t, bo, b))}
        end

      true ->
        nil
    end
  end

  @doc "A verdict as JSON: `%{accept: nil}`, `%{jump: %{target: chain}}`."
  @spec verdict_json(atom() | nil, String.t() | nil) :: map() | nil
  def verdict_json(nil, _), do: nil
  def verdict_json(v, chain) when v in [:jump, :goto], do: %{v => %{target: chain}}
  def verdict_json(v, _), do: %{v => nil}

  # a data range (maps with interval data): a prefix where it is one
  defp range_json(t, bo, a, b) do
    na = num(t, bo, a)
    nb = num(t, bo, b)
    bits = byte_size(a) * 8
    range = nb - na

    cond do
      range == 0 ->
        field_json(t, bo, a)

      prefix_range?(na, range) and prefix_type?(t) ->
        %{prefix: %{addr: field_json(t, bo, a), len: bits - popcount(range)}}

      true ->
        %{range: [field_json(t, bo, a), field_json(t, bo, b)]}
    end
  end

  # --- stateful statements of elements and sets -------------------------

  @doc """
  A stateful expression of a set or element as nft prints the statement;
  `stateless` (a set's `stmt`) prints a counter as `%{counter: nil}` and a
  quota without what it used.
  """
  @spec stmt_json({atom(), map()}, boolean()) :: map()
  def stmt_json({:counter, a}, stateless) do
    if stateless,
      do: %{counter: nil},
      else: %{counter: %{packets: Map.get(a, :packets, 0), bytes: Map.get(a, :bytes, 0)}}
  end

  def stmt_json({:limit, a}, _stateless) do
    type = Map.get(a, :type, :pkts)
    rate = Map.get(a, :rate, 0)
    burst = Map.get(a, :burst, 0)
    inv = :inv in List.wrap(Map.get(a, :flags, [])) or Map.get(a, :flags) == 1

    {rate, rate_unit, burst, burst_unit} =
      if type in [:pkt_bytes, 1] do
        {r, ru} = data_unit(rate)
        {b, bu} = data_unit(burst)
        {r, ru, b, bu}
      else
        {rate, nil, burst, nil}
      end

    %{rate: rate, burst: burst, per: unit_name(Map.get(a, :unit, 1))}
    |> put_if(inv, :inv, true)
    |> put_if(rate_unit != nil, :rate_unit, rate_unit)
    |> put_if(burst_unit != nil, :burst_unit, burst_unit)
    |> then(&%{limit: &1})
  end

  def stmt_json({:quota, a}, stateless) do
    {v, vu} = data_unit(Map.get(a, :bytes, 0))
    used = Map.get(a, :consumed, 0)
    inv = :inv in List.wrap(Map.get(a, :flags, [])) or band(int_flags(Map.get(a, :flags)), 1) == 1

    base = %{val: v, val_unit: vu} |> put_if(inv, :inv, true)

    base =
      if not stateless and used != 0 do
        {u, uu} = data_unit(used)
        base |> Map.put(:used, u) |> Map.put(:used_unit, uu)
      else
        base
      end

    %{quota: base}
  end

  def stmt_json({:connlimit, a}, _stateless) do
    inv = :inv in List.wrap(Map.get(a, :flags, [])) or band(int_flags(Map.get(a, :flags)), 1) == 1
    %{"ct count": %{val: Map.get(a, :count, 0)} |> put_if(inv, :inv, true)}
  end

  # nft 1.0.6 has no JSON for `last`: it prints the statement's text
  def stmt_json({:last, a}, _stateless) do
    case Map.get(a, :set, 0) do
      0 -> "last used never"
      _ -> "last used #{Value.duration_text(Map.get(a, :msecs, 0))}"
    end
  end

  def stmt_json({name, a}, _stateless), do: %{name => a}

  defp int_flags(n) when is_integer(n), do: n
  defp int_flags(_), do: 0

  @doc "nft's get_rate: bytes in the largest unit (bytes, kbytes, mbytes) that divides them."
  @spec data_unit(non_neg_integer()) :: {non_neg_integer(), String.t()}
  def data_unit(0), do: {0, "bytes"}
  def data_unit(n), do: data_unit(n, ["bytes", "kbytes", "mbytes"])
  defp data_unit(n, [u]), do: {n, u}

  defp data_unit(n, [u | rest]),
    do: if(rem(n, 1024) == 0, do: data_unit(div(n, 1024), rest), else: {n, u})

  @doc "nft's get_unit: the name of a time unit in seconds."
  @spec unit_name(non_neg_integer()) :: String.t()
  def unit_name(1), do: "second"
  def unit_name(60), do: "minute"
  def unit_name(3600), do: "hour"
  def unit_name(86400), do: "day"
  def unit_name(604_800), do: "week"
  def unit_name(_), do: "error"

  @doc "Seconds of a time unit name (nft's seconds_from_unit)."
  @spec unit_seconds(String.t()) :: non_neg_integer() | nil
  def unit_seconds("second"), do: 1
  def unit_seconds("minute"), do: 60
  def unit_seconds("hour"), do: 3600
  def unit_seconds("day"), do: 86400
  def unit_seconds("week"), do: 604_800
  def unit_seconds(_), do: nil

  # --- interval sets (segtree.c interval_map_decompose) -----------------

  defp intervals_up(si, elems) do
    [{t, bo, len}] = key_fields(si)
    bits = len * 8
    max = (1 <<< bits) - 1

    sorted =
      elems
      |> Enum.map(fn e -> {num(t, bo, Map.get(e, :key, <<>>)), interval_end?(e), e} end)
      |> Enum.sort_by(fn {v, is_end, _} -> {v, if(is_end, do: 0, else: 1)} end)

    # points inside an interval get an end mark before them
    {ranges, _} =
      Enum.flat_map_reduce(sorted, false, fn {v, is_end, e} = x, inside ->
        cond do
          is_end -> {[x], false}
          inside -> {[{v, true, e}, x], true}
          true -> {[x], true}
        end
      end)

    {out, low} =
      Enum.reduce(ranges, {[], nil}, fn {v, is_end, e}, {out, low} ->
        case low do
          nil ->
            if is_end, do: {out, nil}, else: {out, {v, e}}

          {lv, le} ->
            out = [interval_json(si, t, bo, len, lv, le, v - 1) | out]
            if is_end, do: {out, nil}, else: {out, {v, e}}
        end
      end)

    out =
      case low do
        nil -> out
        {^max, le} -> [elem_json(si, field_json(t, bo, bytes_of(t, bo, max, len)), le) | out]
        {lv, le} -> [interval_json(si, t, bo, len, lv, le, max) | out]
      end

    _ = bits
    Enum.reverse(out)
  end

  defp interval_json(si, t, bo, len, low, low_elem, high) do
    range = high - low
    bits = len * 8
    low_bin = bytes_of(t, bo, low, len)

    key =
      cond do
        range == 0 ->
          field_json(t, bo, low_bin)

        prefix_range?(low, range) ->
          plen = bits - popcount(range)

          cond do
            prefix_type?(t) ->
              %{prefix: %{addr: field_json(t, bo, low_bin), len: plen}}

            string_type?(t) ->
              string_prefix(t, bo, low_bin, plen, len)

            true ->
              %{
                range: [field_json(t, bo, low_bin), field_json(t, bo, bytes_of(t, bo, high, len))]
              }
          end

        true ->
          %{range: [field_json(t, bo, low_bin), field_json(t, bo, bytes_of(t, bo, high, len))]}
      end

    elem_json(si, key, low_elem)
  end

  # interval_to_string: "eth*" where the prefix ends with the string
  defp string_prefix(t, bo, low_bin, plen, len) do
    str_len =
      case :binary.match(low_bin, <<0>>) do
        {pos, _} -> pos
        :nomatch -> len
      end

    if plen > len * 8 or rem(plen, 8) != 0 or str_len >= len or str_len == 0 do
      %{prefix: %{addr: field_json(t, bo, low_bin), len: plen}}
    else
      binary_part(low_bin, 0, str_len) <> "*"
    end
  end

  defp prefix_range?(low, range), do: band(range, range + 1) == 0 and band(low, range) == 0

  defp popcount(0), do: 0
  defp popcount(n), do: band(n, 1) + popcount(n >>> 1)

  # a key as a number: host-order (non-string) keys little endian
  defp num(t, bo, bin) do
    bits = bit_size(bin)

    if little?(t, bo) do
      <<n::size(bits)-little>> = bin
      n
    else
      <<n::size(bits)-big>> = bin
      n
    end
  end

  defp bytes_of(t, bo, n, len) do
    bits = len * 8
    if little?(t, bo), do: <<n::size(bits)-little>>, else: <<n::size(bits)-big>>
  end

  defp little?(t, bo), do: bo == :host and not string_type?(t)

  # --- concatenated intervals (segtree.c concat_range_aggregate) ---------

  defp concat_ranges_up(si, elems) do
    fields = key_fields(si)

    Enum.flat_map(elems, fn e ->
      cond do
        interval_end?(e) ->
          []

        true ->
          starts = split_fields(fields, Map.get(e, :key, <<>>))
          ends = split_fields(fields, Map.get(e, :key_end) || Map.get(e, :key, <<>>))

          parts =
            Enum.zip_with(starts, ends, fn {t, bo, a}, {_, _, b} ->
              concat_field_range(t, bo, a, b)
            end)

          [elem_json(si, %{concat: parts}, e)]
      end
    end)
  end

  defp concat_field_range(t, bo, a, b) do
    if a == b do
      field_json(t, bo, a)
    else
      string = string_type?(t)
      na = num(t, bo, a)
      nb = num(t, bo, b)
      plen = range_mask_len(na, nb, byte_size(a) * 8)

      cond do
        plen >= 0 and rem(plen, 8) == 0 and string ->
          binary_part(a, 0, div(plen, 8)) <> "*"

        plen < 0 or not prefix_type?(t) ->
          %{range: [field_json(t, bo, a), field_json(t, bo, b)]}

        true ->
          %{prefix: %{addr: field_json(t, bo, a), len: plen}}
      end
    end
  end

  defp range_mask_len(s, e, len) do
    if s <= e and band(s, 1) == 0 and band(e, 1) == 1 and len > 0 do
      range_mask_len(s >>> 1, e >>> 1, len - 1)
    else
      if s == e, do: len, else: -1
    end
  end

  # =====================================================================
  # down: JSON elements -> low-level elements

  @doc """
  The low-level elements nft 1.0.6 sends for JSON elements of a set.

  Options: `first_segment: false` leaves out the interval end at 0 that nft
  adds when a set gets its first elements (default true: nft adds it when
  it creates a set with elements, or adds to an empty one); `delete: true`
  for a delete (no first segment, no merging).
  """
  @spec down(map(), [term()], keyword()) :: {:ok, [map()]} | {:error, String.t()}
  def down(si, json_elems, opts \\ [])

  def down(si, json_elems, opts) when is_list(json_elems) do
    flags = Map.get(si, :flags, [])

    with {:ok, items} <- map_ok(json_elems, &parse_elem(si, &1)) do
      items = Enum.map(items, &fit_set_exprs(si, &1))

      cond do
        :interval in flags and length(Map.get(si, :key_types, [])) > 1 ->
          {:ok, Enum.map(items, &concat_interval_down(si, &1))}

        :interval in flags ->
          intervals_down(si, items, opts)

        true ->
          {:ok, Enum.map(items, &plain_down(si, &1))}
      end
    end
  end

  def down(_si, other, _opts), do: {:error, "elements must be a list, got: #{inspect(other)}"}

  defp map_ok(list, fun) do
    list
    |> Enum.with_index()
    |> Enum.reduce_while({:ok, []}, fn {x, i}, {:ok, acc} ->
      case fun.(x) do
        {:ok, y} -> {:cont, {:ok, [y | acc]}}
        {:error, m} -> {:halt, {:error, "element #{i}: #{m}"}}
      end
    end)
    |> case do
      {:ok, l} -> {:ok, Enum.reverse(l)}
      e -> e
    end
  end

  # A set with statements gives each element that comes without any its
  # own copies of them. nft 1.0.6 prints only an element's first statement:
  # an element with fewer statements than its set (that print) goes
  # without, so that the kernel gives it the set's.
  defp fit_set_exprs(si, %{attrs: %{exprs: ex} = a} = item) do
    n = Map.get(si, :set_exprs, 0) || 0
    if n > 0 and length(ex) < n, do: %{item | attrs: Map.delete(a, :exprs)}, else: item
  end

  defp fit_set_exprs(_si, item), do: item

  # An element: %{key: key_spec, attrs: low-level attrs (data, timeout, ...)}
  # key_spec: :catchall | {:value, bin} | {:range, lo_bin, hi_bin} (plain key)
  #           | {:concat, [{lo_bin, hi_bin}]} (concatenated key)
  defp parse_elem(si, json) do
    flags = Map.get(si, :flags, [])
    is_map = :map in flags or :object in flags

    {key_json, data_json} =
      case json do
        [k, d] when is_map -> {k, {:data, d}}
        %{} = m when is_map and is_map_key(m, :map) -> {m, :none}
        k -> {k, :none}
      end

    {key_json, attrs} = unwrap_elem(key_json)

    with {:ok, attrs} <- attrs,
         {:ok, key} <- parse_key(si, key_json),
         {:ok, attrs} <- add_data(si, attrs, data_json) do
      {:ok, %{key: key, attrs: attrs}}
    end
  end

  defp unwrap_elem(%{elem: %{val: v, stmt: stmts} = m}) when is_list(stmts) do
    {_, attrs} =
      unwrap_elem(%{
        elem:
          Map.drop(m, [
            :stmt | for({k, _} <- m, k not in [:val, :timeout, :expires, :comment], do: k)
          ])
      })

    exprs =
      Enum.reduce_while(stmts, {:ok, []}, fn s, {:ok, acc} ->
        case stmt_down(s) do
          {:ok, e} -> {:cont, {:ok, acc ++ [e]}}
          e -> {:halt, e}
        end
      end)

    attrs =
      with {:ok, a} <- attrs, {:ok, ex} <- exprs do
        {:ok, if(ex == [], do: a, else: Map.put(a, :exprs, ex))}
      end

    {v, attrs}
  end

  defp unwrap_elem(%{elem: %{val: v} = m}) do
    attrs =
      Enum.reduce_while(Map.drop(m, [:val]), {:ok, %{}}, fn
        {:timeout, s}, {:ok, a} when is_integer(s) ->
          {:cont, {:ok, Map.put(a, :timeout, s * 1000)}}

        {:expires, s}, {:ok, a} when is_integer(s) ->
          {:cont, {:ok, Map.put(a, :expiration, s * 1000)}}

        {:comment, c}, {:ok, a} when is_binary(c) ->
          {:cont, {:ok, Map.put(a, :comment, c)}}

        {k, v}, {:ok, a} ->
          case stmt_down(%{k => v}) do
            {:ok, e} -> {:cont, {:ok, Map.update(a, :exprs, [e], &(&1 ++ [e]))}}
            {:error, m} -> {:halt, {:error, m}}
          end
      end)

    {v, attrs}
  end

  defp unwrap_elem(v), do: {v, {:ok, %{}}}

  defp parse_key(_si, "*"), do: {:ok, :catchall}

  defp parse_key(si, json) do
    case key_fields(si) do
      [{t, bo, len}] ->
        parse_field_range(t, bo, len, json)

      fields ->
        case json do
          %{concat: parts} when length(parts) == length(fields) ->
            fields
            |> Enum.zip(parts)
            |> map_ok(fn {{t, bo, len}, p} ->
              case parse_field_range(t, bo, len, p) do
                {:ok, {:value, b}} -> {:ok, {b, b}}
                {:ok, {:range, a, b}} -> {:ok, {a, b}}
                e -> e
              end
            end)
            |> case do
              {:ok, l} -> {:ok, {:concat, l}}
              e -> e
            end

          _ ->
            {:error,
             "#{inspect(json)} is not a concatenation of #{length(fields)} values (#{Enum.map_join(fields, " . ", &elem(&1, 0))})"}
        end
    end
  end

  # a value, prefix, range or "str*" wildcard of one field
  defp parse_field_range(t, bo, len, %{prefix: %{addr: a, len: plen}}) when is_integer(plen) do
    with {:ok, lo} <- encode_field(t, bo, len, a) do
      bits = len * 8

      if plen < 0 or plen > bits do
        {:error, "prefix length #{plen} does not fit #{t}"}
      else
        n = num(t, bo, lo)
        host_mask = (1 <<< (bits - plen)) - 1
        lo_n = band(n, bnot(host_mask))
        {:ok, {:range, bytes_of(t, bo, lo_n, len), bytes_of(t, bo, bor(lo_n, host_mask), len)}}
      end
    end
  end

  defp parse_field_range(t, bo, len, %{range: [a, b]}) do
    with {:ok, lo} <- encode_field(t, bo, len, a),
         {:ok, hi} <- encode_field(t, bo, len, b) do
      if num(t, bo, lo) > num(t, bo, hi),
        do: {:error, "range #{inspect(a)}-#{inspect(b)} has its start after its end"},
        else: {:ok, {:range, lo, hi}}
    end
  end

  defp parse_field_range(t, bo, len, s) when is_binary(s) do
    if string_type?(t) and String.ends_with?(s, "*") and byte_size(s) > 1 do
      stem = binary_part(s, 0, byte_size(s) - 1)

      if byte_size(stem) >= len do
        {:error, "#{inspect(s)} is longer than #{t} (#{len} bytes)"}
      else
        pad = len - byte_size(stem)
        {:ok, {:range, stem <> :binary.copy(<<0>>, pad), stem <> :binary.copy(<<255>>, pad)}}
      end
    else
      with {:ok, b} <- encode_field(t, bo, len, s), do: {:ok, {:value, b}}
    end
  end

  defp parse_field_range(t, bo, len, v) do
    with {:ok, b} <- encode_field(t, bo, len, v), do: {:ok, {:value, b}}
  end

  @doc "Encodes one field's JSON value as its key bytes (`len` bytes, byte order `bo`)."
  @spec encode_field(String.t(), atom(), non_neg_integer(), term()) ::
          {:ok, binary()} | {:error, String.t()}
  def encode_field(t, bo, len, %{|: [a, b]}) do
    with {:ok, x} <- encode_field(t, bo, len, a),
         {:ok, y} <- encode_field(t, bo, len, b) do
      {:ok, bor_bin(x, y)}
    end
  end

  def encode_field(t, bo, len, v) do
    with {:ok, b} <- Value.encode(t, v, len: len) do
      b = fit(b, len, t)
      {:ok, if(swap?(t, bo, b), do: reverse(b), else: b)}
    end
  end

  defp bor_bin(x, y) do
    :binary.list_to_bin(Enum.zip_with(:binary.bin_to_list(x), :binary.bin_to_list(y), &bor/2))
  end

  # strings are NUL padded to the key length; numbers keep their size
  defp fit(b, len, t) when byte_size(b) < len do
    if string_type?(t) or Value.byteorder(t) == :host,
      do: Value.pad(b, len),
      else: :binary.copy(<<0>>, len - byte_size(b)) <> b
  end

  defp fit(b, _len, _t), do: b

  defp add_data(_si, attrs, :none), do: {:ok, attrs}

  defp add_data(si, attrs, {:data, d}) do
    flags = Map.get(si, :flags, [])

    cond do
      :object in flags ->
        if is_binary(d),
          do: {:ok, Map.put(attrs, :objref, d)},
          else: {:error, "object name #{inspect(d)} is not a string"}

      Map.get(si, :data_type) == "verdict" ->
        with {:ok, v} <- verdict_down(d), do: {:ok, Map.merge(attrs, v)}

      true ->
        case data_fields(si) do
          [{t, bo, len}] ->
            if Map.get(si, :data_interval) do
              with {:ok, r} <- parse_field_range(t, bo, len, d) do
                {lo, hi} =
                  case r do
                    {:value, b} -> {b, b}
                    {:range, a, b} -> {a, b}
                  end

                {:ok, Map.put(attrs, :data, lo <> hi)}
              end
            else
              with {:ok, b} <- encode_field(t, bo, len, d), do: {:ok, Map.put(attrs, :data, b)}
            end

          fields ->
            case d do
              %{concat: parts} when length(parts) == length(fields) ->
                fields
                |> Enum.zip(parts)
                |> map_ok(fn {{t, bo, len}, p} ->
                  with {:ok, b} <- encode_field(t, bo, len, p),
                       do: {:ok, Value.pad(b, Value.reg_bytes(len))}
                end)
                |> case do
                  {:ok, bins} -> {:ok, Map.put(attrs, :data, IO.iodata_to_binary(bins))}
                  e -> e
                end

              _ ->
                {:error, "#{inspect(d)} is not a concatenation of #{length(fields)} values"}
            end
        end
    end
  end

  @doc "A JSON verdict as element attributes: `%{verdict: :jump, chain: \"c\"}`."
  @spec verdict_down(term()) :: {:ok, map()} | {:error, String.t()}
  def verdict_down(%{} = m) when map_size(m) == 1 do
    [{k, v}] = Map.to_list(m)
    verdict = if is_atom(k), do: k, else: String.to_existing_atom(k)

    cond do
      verdict in [:jump, :goto] ->
        case v do
          %{target: c} when is_binary(c) -> {:ok, %{verdict: verdict, chain: c}}
          _ -> {:error, "#{verdict} needs %{target: chain}, got: #{inspect(v)}"}
        end

      verdict in @verdicts ->
        {:ok, %{verdict: verdict}}

      true ->
        {:error, "#{inspect(m)} is not a verdict"}
    end
  rescue
    ArgumentError -> {:error, "#{inspect(m)} is not a verdict"}
  end

  def verdict_down(v) when is_binary(v) do
    case Enum.find(@verdicts, &(Atom.to_string(&1) == v)) do
      nil -> {:error, "#{inspect(v)} is not a verdict"}
      a when a in [:jump, :goto] -> {:error, "#{v} needs a target chain"}
      a -> {:ok, %{verdict: a}}
    end
  end

  def verdict_down(v), do: {:error, "#{inspect(v)} is not a verdict"}

  @doc """
  A stateful statement of an element or a set (`%{counter: ...}`,
  `%{limit: ...}`, `%{quota: ...}`, `%{"ct count": ...}`) as the expression
  nft sends for it (netlink_gen_stmt_stateful).
  """
  @spec stmt_down(map()) :: {:ok, {atom(), map()}} | {:error, String.t()}
  def stmt_down(%{counter: c}) do
    c = if is_map(c), do: c, else: %{}
    attrs = for {k, v} <- c, k in [:packets, :bytes], is_integer(v), v != 0, into: %{}, do: {k, v}
    {:ok, {:counter, attrs}}
  end

  def stmt_down(%{limit: %{rate: rate, per: per} = l}) when is_integer(rate) do
    case unit_seconds(per) do
      nil ->
        {:error, "limit: unknown unit #{inspect(per)}"}

      unit ->
        rate_unit = Map.get(l, :rate_unit, "packets")
        burst = Map.get(l, :burst, 0) || 0
        flags = if Map.get(l, :inv) == true, do: [:inv], else: []

        if rate_unit == "packets" do
          {:ok,
           {:limit,
            %{
              rate: rate,
              unit: unit,
              type: :pkts,
              burst: if(burst == 0, do: 5, else: burst),
              flags: flags
            }}}
        else
          with {:ok, r} <- to_bytes(rate, rate_unit),
               {:ok, b} <- to_bytes(burst, Map.get(l, :burst_unit, "bytes")) do
            attrs = %{rate: r, unit: unit, type: :pkt_bytes, flags: flags}
            {:ok, {:limit, if(b > 0, do: Map.put(attrs, :burst, b), else: attrs)}}
          end
        end
    end
  end

  def stmt_down(%{quota: %{val: v} = q}) when is_integer(v) do
    with {:ok, bytes} <- to_bytes(v, Map.get(q, :val_unit, "bytes")),
         {:ok, used} <- to_bytes(Map.get(q, :used, 0) || 0, Map.get(q, :used_unit, "bytes")) do
      {:ok,
       {:quota,
        %{bytes: bytes, consumed: used, flags: if(Map.get(q, :inv) == true, do: [:inv], else: [])}}}
    end
  end

  def stmt_down(%{"ct count": %{val: n} = c}) when is_integer(n) do
    {:ok, {:connlimit, %{count: n, flags: if(Map.get(c, :inv) == true, do: [:inv], else: [])}}}
  end

  def stmt_down(other),
    do:
      {:error, "#{inspect(other)} is not a stateful statement (counter, limit, quota, ct count)"}

  @doc "Bytes of a number in a data unit (bytes, kbytes, mbytes)."
  @spec to_bytes(integer(), String.t()) :: {:ok, integer()} | {:error, String.t()}
  def to_bytes(n, "bytes"), do: {:ok, n}
  def to_bytes(n, "kbytes"), do: {:ok, n * 1024}
  def to_bytes(n, "mbytes"), do: {:ok, n * 1024 * 1024}
  def to_bytes(_n, u), do: {:error, "unknown data unit #{inspect(u)}"}

  # --- building the low-level elements ----------------------------------

  defp base_attrs(attrs, open \\ false) do
    {comment, attrs} = Map.pop(attrs, :comment)

    case Udata.elem_down(comment, open) do
      nil -> attrs
      ud -> Map.put(attrs, :userdata, ud)
    end
  end

  defp plain_down(_si, %{key: :catchall, attrs: a}),
    do: Map.put(base_attrs(a), :flags, [:catchall])

  defp plain_down(si, %{key: {:value, b}, attrs: a}),
    do: Map.put(base_attrs(a), :key, b) |> key_pad(si)

  defp plain_down(si, %{key: {:concat, parts}, attrs: a}) do
    key =
      parts
      |> Enum.map(fn {lo, _} -> Value.pad(lo, Value.reg_bytes(byte_size(lo))) end)
      |> IO.iodata_to_binary()

    Map.put(base_attrs(a), :key, key) |> key_pad(si)
  end

  defp plain_down(_si, %{key: {:range, _, _}}),
    do: raise(ArgumentError, "a range needs an interval set")

  defp key_pad(e, _si), do: e

  defp concat_interval_down(_si, %{key: :catchall, attrs: a}),
    do: Map.put(base_attrs(a), :flags, [:catchall])

  defp concat_interval_down(_si, %{key: {:concat, parts}, attrs: a}) do
    pad = fn b -> Value.pad(b, Value.reg_bytes(byte_size(b))) end
    key = parts |> Enum.map(fn {lo, _} -> pad.(lo) end) |> IO.iodata_to_binary()
    key_end = parts |> Enum.map(fn {_, hi} -> pad.(hi) end) |> IO.iodata_to_binary()
    base_attrs(a) |> Map.put(:key, key) |> Map.put(:key_end, key_end)
  end

  # intervals.c: sort, merge (auto-merge), then start + end elements
  defp intervals_down(si, items, opts) do
    [{t, bo, len}] = key_fields(si)
    flags = Map.get(si, :flags, [])
    max = (1 <<< (len * 8)) - 1

    {catchall, rest} = Enum.split_with(items, &(&1.key == :catchall))

    ranges =
      Enum.map(rest, fn
        %{key: {:value, b}, attrs: a} -> {num(t, bo, b), num(t, bo, b), a}
        %{key: {:range, lo, hi}, attrs: a} -> {num(t, bo, lo), num(t, bo, hi), a}
      end)
      |> Enum.sort_by(fn {lo, _, _} -> lo end)

    delete = Keyword.get(opts, :delete, false)

    # set_automerge runs only on sets with auto-merge (not on maps, not
    # on deletes); without it nft leaves overlaps to the kernel to refuse
    # (an anonymous interval set always merges: set_expr_alloc)
    merge = Map.get(si, :merge, false) or :anonymous in flags

    ranges =
      if delete or :map in flags or not merge,
        do: ranges,
        else: merge_ranges(ranges)

    anonymous = :anonymous in flags
    first = Keyword.get(opts, :first_segment, true) and not delete

    root =
      case ranges do
        [{lo, _, a} | _] when first and lo != 0 ->
          [Map.merge(data_only(a), %{key: bytes_of(t, bo, 0, len), flags: [:interval_end]})]

        _ ->
          []
      end

    {elems, pending} =
      Enum.reduce(ranges, {[], nil}, fn {lo, hi, a}, {acc, pending} ->
        acc =
          case pending do
            nil -> acc
            {end_n, end_elem} -> if anonymous and end_n == lo, do: acc, else: [end_elem | acc]
          end

        if hi == max do
          {[Map.put(base_attrs(a, true), :key, bytes_of(t, bo, lo, len)) | acc], nil}
        else
          end_elem =
            Map.merge(data_only(a), %{key: bytes_of(t, bo, hi + 1, len), flags: [:interval_end]})

          {[Map.put(base_attrs(a), :key, bytes_of(t, bo, lo, len)) | acc], {hi + 1, end_elem}}
        end
      end)

    elems =
      case pending do
        nil -> elems
        {_, e} -> [e | elems]
      end

    {:ok, root ++ Enum.reverse(elems) ++ Enum.map(catchall, &plain_down(si, &1))}
  end

  # the end element of a map interval carries no data (alloc_nftnl_setelem
  # leaves it out for interval ends)
  defp data_only(_a), do: %{}

  # setelem_automerge: ranges inside another go, overlapping and adjacent
  # ones merge
  defp merge_ranges([]), do: []

  defp merge_ranges([first | rest]) do
    {acc, last} =
      Enum.reduce(rest, {[], first}, fn {lo, hi, _a} = r, {acc, {plo, phi, pa} = prev} ->
        cond do
          plo <= lo and phi >= hi -> {acc, prev}
          lo <= phi -> {acc, {plo, max(phi, hi), pa}}
          lo - phi == 1 -> {acc, {plo, hi, pa}}
          true -> {[prev | acc], r}
        end
      end)

    Enum.reverse([last | acc])
  end
end
