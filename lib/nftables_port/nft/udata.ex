defmodule NFTables.Port.Nft.Udata do
  @moduledoc """
  nft's user data: the TLVs (libnftnl's `nftnl_udata`) that nft 1.0.6 keeps
  in the `userdata` attribute of tables, chains, sets, set elements, rules
  and stateful objects. The kernel only stores them; `nft list` reads them
  back (comments, a set's key byte order, `typeof` expressions, auto-merge).

  Each TLV is one byte of type, one byte of length and the value. Numbers
  (`u32`) are in this machine's byte order (little endian here), strings
  end with a NUL byte, as libnftnl writes them.

  Types, by object (libnftnl/udata.h):

    * table, chain, rule, object: 0 comment
    * rule: 1 ebtables policy
    * set: 0 key byte order, 1 data byte order, 2 merge elements (auto-merge),
      3 key typeof, 4 data typeof, 5 expr (unused by nft 1.0.6),
      6 data interval, 7 comment
    * set element: 0 comment, 1 flags (1: the interval is open at its end)
  """

  import Bitwise

  # set TLV types
  @set_keybyteorder 0
  @set_databyteorder 1
  @set_merge_elements 2
  @set_key_typeof 3
  @set_data_typeof 4
  @set_data_interval 6
  @set_comment 7

  # byte orders (nft's enum byteorder)
  @byteorders %{0 => :invalid, 1 => :host, 2 => :big}

  @typedoc "One TLV: {type, value bytes}."
  @type tlv :: {non_neg_integer(), binary()}

  @doc """
  Splits user data into its TLVs. Answers `{:error, message}` for bytes
  that are not a TLV list (a length past the end).
  """
  @spec parse(binary() | nil) :: {:ok, [tlv()]} | {:error, String.t()}
  def parse(nil), do: {:ok, []}
  def parse(bin) when is_binary(bin), do: do_parse(bin, [])

  defp do_parse(<<>>, acc), do: {:ok, Enum.reverse(acc)}

  defp do_parse(<<type, len, value::binary-size(len), rest::binary>>, acc),
    do: do_parse(rest, [{type, value} | acc])

  defp do_parse(rest, _acc),
    do: {:error, "user data: a TLV runs past the end (#{inspect(rest, limit: 16)})"}

  @doc "Joins TLVs into user data bytes."
  @spec build([tlv()]) :: binary()
  def build(tlvs) do
    for {type, value} <- tlvs, into: <<>>, do: <<type, byte_size(value), value::binary>>
  end

  @doc "A u32 TLV value, as libnftnl writes it (host byte order)."
  @spec u32(non_neg_integer()) :: binary()
  def u32(n), do: <<n::32-native>>

  @doc "A string TLV value: the string and its NUL, as `nftnl_udata_put_strz` writes it."
  @spec strz(String.t()) :: binary()
  def strz(s), do: s <> <<0>>

  @doc "The string of a strz TLV value (up to its first NUL)."
  @spec unstrz(binary()) :: String.t()
  def unstrz(bin) do
    case :binary.split(bin, <<0>>) do
      [s | _] -> s
    end
  end

  # ---------------------------------------------------------------------
  # comments of tables, chains, rules, objects and elements (type 0)

  @doc """
  The comment in the user data of a table, chain, rule, object or set
  element (TLV type 0), or nil.
  """
  @spec comment(binary() | nil) :: String.t() | nil
  def comment(bin) do
    case parse(bin) do
      {:ok, tlvs} ->
        case List.keyfind(tlvs, 0, 0) do
          {0, v} -> unstrz(v)
          nil -> nil
        end

      {:error, _} ->
        nil
    end
  end

  @doc "A rule's comment (user data TLV type 0), or nil."
  @spec rule_comment(binary() | nil) :: String.t() | nil
  def rule_comment(bin), do: comment(bin)

  @doc "User data holding just a comment (type 0), or nil for no comment."
  @spec comment_udata(String.t() | nil) :: binary() | nil
  def comment_udata(nil), do: nil
  def comment_udata(c), do: build([{0, strz(c)}])

  # ---------------------------------------------------------------------
  # set elements: 0 comment, 1 flags

  @doc "A set element's user data: `%{comment: s | nil, interval_open: bool}`."
  @spec elem_up(binary() | nil) :: %{comment: String.t() | nil, interval_open: boolean()}
  def elem_up(bin) do
    tlvs =
      case parse(bin) do
        {:ok, t} -> t
        _ -> []
      end

    comment = with {0, v} <- List.keyfind(tlvs, 0, 0), do: unstrz(v)

    open =
      case List.keyfind(tlvs, 1, 0) do
        {1, <<f::32-native>>} -> band(f, 1) == 1
        _ -> false
      end

    %{comment: comment, interval_open: open}
  end

  @doc """
  A set element's user data as nft 1.0.6 writes it (comment first, then the
  flags), or nil when there is neither.
  """
  @spec elem_down(String.t() | nil, boolean()) :: binary() | nil
  def elem_down(nil, false), do: nil

  def elem_down(comment, open) do
    tlvs =
      if(comment, do: [{0, strz(comment)}], else: []) ++
        if open, do: [{1, u32(1)}], else: []

    build(tlvs)
  end

  # ---------------------------------------------------------------------
  # sets

  @typedoc """
  A set's user data, decoded. `key_typeof`/`data_typeof` are the raw bytes
  of the typeof TLVs (nested TLVs of nft's expression udata), nil when
  absent; byte orders are `:invalid | :host | :big` (nil when absent).
  """
  @type set_info :: %{
          key_byteorder: atom() | nil,
          data_byteorder: atom() | nil,
          merge: boolean(),
          key_typeof: binary() | nil,
          data_typeof: binary() | nil,
          data_interval: boolean() | nil,
          comment: String.t() | nil,
          other: [tlv()]
        }

  @doc "Decodes a set's user data (nil or empty gives all defaults)."
  @spec set_up(binary() | nil) :: {:ok, set_info()} | {:error, String.t()}
  def set_up(bin) do
    with {:ok, tlvs} <- parse(bin) do
      info =
        Enum.reduce(
          tlvs,
          %{
            key_byteorder: nil,
            data_byteorder: nil,
            merge: false,
            key_typeof: nil,
            data_typeof: nil,
            data_interval: nil,
            comment: nil,
            other: []
          },
          fn
            {@set_keybyteorder, <<n::32-native>>}, acc ->
              %{acc | key_byteorder: Map.get(@byteorders, n, n)}

            {@set_databyteorder, <<n::32-native>>}, acc ->
              %{acc | data_byteorder: Map.get(@byteorders, n, n)}

            {@set_merge_elements, <<n::32-native>>}, acc ->
              %{acc | merge: n != 0}

            {@set_key_typeof, v}, acc ->
              %{acc | key_typeof: v}

            {@set_data_typeof, v}, acc ->
              %{acc | data_typeof: v}

            {@set_data_interval, <<n::32-native>>}, acc ->
              %{acc | data_interval: n != 0}

            {@set_comment, v}, acc ->
              %{acc | comment: unstrz(v)}

            tlv, acc ->
              %{acc | other: acc.other ++ [tlv]}
          end
        )

      {:ok, info}
    end
  end

  @doc """
  A set's user data as nft 1.0.6 writes it (mnl_nft_set_add): key byte
  order; data byte order (maps with data); merge elements (when
  auto-merge); key typeof; data typeof and data interval (maps with data);
  comment. `info` has the keys of `t:set_info/0` (missing ones are absent);
  `:map_data` says the set is a map with data (nft writes the data byte
  order and data interval only then).
  """
  @spec set_down(map()) :: binary()
  def set_down(info) do
    bo = fn a -> a |> byteorder_id() |> u32() end
    map_data = Map.get(info, :map_data, false)
    # an object map has set->data too (a string): nft writes its data
    # interval, but no data byte order
    has_data = Map.get(info, :has_data, map_data)

    tlvs =
      [{@set_keybyteorder, bo.(Map.get(info, :key_byteorder) || :invalid)}] ++
        if(map_data,
          do: [{@set_databyteorder, bo.(Map.get(info, :data_byteorder) || :invalid)}],
          else: []
        ) ++
        if(Map.get(info, :merge), do: [{@set_merge_elements, u32(1)}], else: []) ++
        if(Map.get(info, :key_typeof), do: [{@set_key_typeof, info.key_typeof}], else: []) ++
        if(has_data and Map.get(info, :data_typeof),
          do: [{@set_data_typeof, info.data_typeof}],
          else: []
        ) ++
        if(has_data,
          do: [{@set_data_interval, u32(if(Map.get(info, :data_interval), do: 1, else: 0))}],
          else: []
        ) ++
        if(Map.get(info, :comment), do: [{@set_comment, strz(info.comment)}], else: [])

    build(tlvs)
  end

  @doc "nft's byte order number of `:invalid | :host | :big`."
  @spec byteorder_id(atom() | non_neg_integer()) :: non_neg_integer()
  def byteorder_id(:invalid), do: 0
  def byteorder_id(:host), do: 1
  def byteorder_id(:big), do: 2
  def byteorder_id(n) when is_integer(n), do: n

  @doc "Bytes as lowercase hex (the lossless form of typeof bytes in JSON)."
  @spec hex(binary()) :: String.t()
  def hex(bin), do: Base.encode16(bin, case: :lower)

  @doc "The bytes of a hex string, or `{:error, message}`."
  @spec unhex(String.t()) :: {:ok, binary()} | {:error, String.t()}
  def unhex(s) when is_binary(s) do
    case Base.decode16(s, case: :mixed) do
      {:ok, b} -> {:ok, b}
      :error -> {:error, "#{inspect(s)} is not a hex string"}
    end
  end

  def unhex(other), do: {:error, "#{inspect(other)} is not a hex string"}
end
