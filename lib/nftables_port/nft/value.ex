defmodule NFTables.Port.Nft.Value do
  @moduledoc """
  Values of nft's datatypes, both ways: what a JSON document (or nft text)
  writes, and the bytes the kernel keeps.

  Every datatype comes from `NFTables.Port.Nft.Tables` (schema/nft/
  datatypes.yaml): its size, byte order, symbol table and `format`, which
  says how a value is read and printed. This module is the engine over
  those formats; it names no datatype of its own beyond the formats.

  Bytes are as the kernel keeps them: the datatype's size rounded up to
  whole bytes, big-endian types in network order, host-order types in this
  machine's order. A concatenation pads each part to 4 bytes (a 32-bit
  register), as nft lays it out.
  """

  alias NFTables.Port.Nft.Tables
  alias NFTables.Port.Nft.Value.System

  @type json :: integer() | String.t() | [String.t()] | boolean() | map()

  # nft packs a concatenation's type ids 6 bits each (TYPE_BITS).
  @type_bits 6
  @type_mask 0x3F

  @doc "The datatype named `type`, or raises an ArgumentError naming it."
  @spec datatype!(String.t()) :: map()
  def datatype!(type) do
    Tables.datatype(type) || raise ArgumentError, "unknown datatype #{inspect(type)}"
  end

  @doc "The datatype's size in bits (0 for a variable size)."
  @spec bits(String.t()) :: non_neg_integer()
  def bits(type), do: Map.get(datatype!(type), :size, 0)

  @doc "The datatype's size in bytes, rounded up (0 for a variable size)."
  @spec bytes(String.t()) :: non_neg_integer()
  def bytes(type), do: div(bits(type) + 7, 8)

  @doc "The datatype's byte order: `:big`, `:host` or `:invalid`."
  @spec byteorder(String.t()) :: atom()
  def byteorder(type), do: Map.get(datatype!(type), :byteorder, :invalid)

  @doc """
  The datatype names of a set key type id: one name for a plain type,
  several for a concatenation (nft packs ids 6 bits each, first part in the
  highest bits). `key_len` is only used to check the result.
  """
  @spec type_names(non_neg_integer(), non_neg_integer() | nil) :: [String.t()]
  def type_names(id, _key_len \\ nil) do
    case Tables.datatype_by_id(id) do
      %{name: name} when id <= @type_mask -> [name]
      _ -> split_concat_id(id, [])
    end
  end

  defp split_concat_id(0, acc), do: acc

  defp split_concat_id(id, acc) do
    part = Bitwise.band(id, @type_mask)
    name = (Tables.datatype_by_id(part) || %{name: "integer"}).name
    split_concat_id(Bitwise.bsr(id, @type_bits), [name | acc])
  end

  @doc "The set key type id of one datatype or of a concatenation of them."
  @spec type_id([String.t()] | String.t()) :: non_neg_integer()
  def type_id(type) when is_binary(type), do: datatype!(type).id

  def type_id([single]), do: type_id(single)

  def type_id(types) when is_list(types) do
    Enum.reduce(types, 0, fn t, acc -> Bitwise.bor(Bitwise.bsl(acc, @type_bits), type_id(t)) end)
  end

  @doc "Bytes of a concatenation part of `type` in a register: padded to 4."
  @spec reg_bytes(String.t() | non_neg_integer()) :: non_neg_integer()
  def reg_bytes(len) when is_integer(len), do: div(len + 3, 4) * 4
  def reg_bytes(type), do: reg_bytes(bytes(type))

  # ---------------------------------------------------------------------
  # JSON value -> bytes

  @doc """
  Encodes `value` (as a JSON document writes it) as the bytes of `type`.
  Answers `{:error, message}` naming the value and the type when it does
  not fit.
  """
  @spec encode(String.t(), json(), keyword()) :: {:ok, binary()} | {:error, String.t()}
  def encode(type, value, opts \\ []) do
    dt = datatype!(type)
    len = Keyword.get(opts, :len, div(Map.get(dt, :size, 0) + 7, 8))

    case parse(dt, value, len) do
      {:ok, int} when is_integer(int) -> int_bytes(dt, int, len)
      {:ok, bin} when is_binary(bin) -> {:ok, bin}
      {:error, _} = e -> e
    end
  rescue
    ArgumentError -> {:error, "#{inspect(value)} is not a valid #{type}"}
  end

  @doc "Encodes or raises an ArgumentError with the message."
  @spec encode!(String.t(), json(), keyword()) :: binary()
  def encode!(type, value, opts \\ []) do
    case encode(type, value, opts) do
      {:ok, b} -> b
      {:error, m} -> raise ArgumentError, m
    end
  end

  @doc "Encodes a concatenation: each part padded to 4 bytes."
  @spec encode_concat([String.t()], [json()]) :: {:ok, binary()} | {:error, String.t()}
  def encode_concat(types, values) when length(types) == length(values) do
    Enum.zip(types, values)
    |> Enum.reduce_while({:ok, []}, fn {t, v}, {:ok, acc} ->
      case encode(t, v) do
        {:ok, b} -> {:cont, {:ok, [pad(b, reg_bytes(byte_size(b))) | acc]}}
        e -> {:halt, e}
      end
    end)
    |> case do
      {:ok, parts} -> {:ok, parts |> Enum.reverse() |> IO.iodata_to_binary()}
      e -> e
    end
  end

  def encode_concat(types, values) do
    {:error, "a concatenation of #{length(types)} types (#{Enum.join(types, " . ")}) " <>
       "got #{length(values)} values"}
  end

  @doc """
  Decodes a concatenation's bytes (each part padded to 4 bytes) as `nft -j`
  prints its values; a part of variable size takes the rest.
  """
  @spec decode_concat([String.t()], binary()) :: [json()]
  def decode_concat(types, bin) do
    {vals, _} =
      Enum.map_reduce(types, bin, fn t, rest ->
        n = bytes(t)
        n = if n == 0, do: byte_size(rest), else: n
        <<v::binary-size(n), rest2::binary>> = rest
        pad = min(reg_bytes(n) - n, byte_size(rest2))
        <<_::binary-size(pad), rest3::binary>> = rest2
        {decode(t, v), rest3}
      end)

    vals
  end

  @doc "Pads `bin` with zero bytes to `len` bytes."
  @spec pad(binary(), non_neg_integer()) :: binary()
  def pad(bin, len) when byte_size(bin) >= len, do: bin
  def pad(bin, len), do: bin <> :binary.copy(<<0>>, len - byte_size(bin))

  defp int_bytes(dt, int, len) do
    bits = len * 8

    cond do
      int < 0 ->
        {:error, "#{int} is negative: not a valid #{dt.name}"}

      int >= Bitwise.bsl(1, max(Map.get(dt, :size, bits), 1)) and Map.get(dt, :size, 0) > 0 and
          Map.get(dt, :size) <= bits ->
        {:error, "#{int} is out of range for #{dt.name} (#{dt.size} bits)"}

      int >= Bitwise.bsl(1, bits) ->
        {:error, "#{int} does not fit in #{len} bytes of #{dt.name}"}

      Map.get(dt, :byteorder) == :host ->
        {:ok, <<int::size(bits)-little>>}

      true ->
        {:ok, <<int::size(bits)-big>>}
    end
  end

  # parse: a JSON value of a datatype -> integer (laid out by byte order)
  # or a binary (laid out already).
  defp parse(dt, value, len) do
    case Map.get(dt, :format) do
      :string -> parse_string(dt, value, len)
      :ipv4 -> parse_ipv4(value)
      :ipv6 -> parse_ipv6(value)
      :lladdr -> parse_lladdr(dt, value, len)
      :bitmask -> parse_bitmask(dt, value)
      :time -> parse_time(value)
      :boolean -> parse_boolean(value)
      :ifindex -> parse_ifindex(value)
      :classid -> parse_classid(value)
      :inet_proto -> parse_named(dt, value, &System.protocols/0)
      :uid -> parse_named(dt, value, &System.users/0)
      :gid -> parse_named(dt, value, &System.groups/0)
      _ -> parse_symbolic(dt, value)
    end
  end

  # A name from a system table (/etc/protocols, /etc/passwd, /etc/group),
  # as nft resolves them, or a number.
  defp parse_named(dt, value, table) when is_binary(value) do
    case Enum.find(table.(), fn {_n, name} -> name == value end) do
      {n, _} -> {:ok, n}
      nil -> parse_number(dt, value)
    end
  end

  defp parse_named(dt, value, _table), do: parse_symbolic(dt, value)

  defp parse_symbolic(dt, value) when is_integer(value), do: check_int(dt, value)

  defp parse_symbolic(dt, value) when is_binary(value) do
    case symbol_value(dt, value) do
      nil -> parse_number(dt, value)
      v -> {:ok, v}
    end
  end

  defp parse_symbolic(dt, value), do: {:error, "#{inspect(value)} is not a valid #{dt.name}"}

  defp parse_number(dt, "0x" <> hex) do
    case Integer.parse(hex, 16) do
      {n, ""} -> {:ok, n}
      _ -> {:error, "#{inspect("0x" <> hex)} is not a valid #{dt.name}"}
    end
  end

  defp parse_number(dt, s) do
    case Integer.parse(s) do
      {n, ""} when n >= 0 -> {:ok, n}
      _ -> {:error, "#{inspect(s)} is not a valid #{dt.name}#{symbol_hint(dt)}"}
    end
  end

  defp symbol_hint(dt) do
    case Map.get(dt, :symbols, []) do
      [] -> ""
      syms -> " (known: " <> Enum.map_join(Enum.take(syms, 12), ", ", & &1.name) <>
                if(length(syms) > 12, do: ", ...", else: "") <> ")"
    end
  end

  defp check_int(_dt, v) when v >= 0, do: {:ok, v}
  defp check_int(dt, v), do: {:error, "#{v} is negative: not a valid #{dt.name}"}

  # A symbol of the type or of its base types.
  defp symbol_value(dt, name) do
    case Enum.find(Map.get(dt, :symbols, []), &(&1.name == name)) do
      %{value: v} ->
        v

      nil ->
        case Map.get(dt, :basetype) do
          nil -> nil
          base when base == dt.name -> nil
          base -> symbol_value(datatype!(base), name)
        end
    end
  end

  defp parse_bitmask(dt, values) when is_list(values) do
    Enum.reduce_while(values, {:ok, 0}, fn v, {:ok, acc} ->
      case parse_symbolic(dt, v) do
        {:ok, n} -> {:cont, {:ok, Bitwise.bor(acc, n)}}
        e -> {:halt, e}
      end
    end)
  end

  defp parse_bitmask(dt, value), do: parse_symbolic(dt, value)

  defp parse_string(dt, value, len) when is_binary(value) do
    cond do
      len > 0 and byte_size(value) > len ->
        {:error, "#{inspect(value)} is longer than #{len} bytes, the size of #{dt.name}"}

      len > 0 ->
        {:ok, pad(value, len)}

      true ->
        {:ok, value}
    end
  end

  defp parse_string(dt, value, _len), do: {:error, "#{inspect(value)} is not a valid #{dt.name}"}

  defp parse_ipv4(value) when is_binary(value) do
    case :inet.parse_ipv4strict_address(String.to_charlist(value)) do
      {:ok, {a, b, c, d}} -> {:ok, <<a, b, c, d>>}
      _ -> {:error, "#{inspect(value)} is not a valid ipv4_addr"}
    end
  end

  defp parse_ipv4(value), do: {:error, "#{inspect(value)} is not a valid ipv4_addr"}

  defp parse_ipv6(value) when is_binary(value) do
    case :inet.parse_ipv6strict_address(String.to_charlist(value)) do
      {:ok, t} -> {:ok, t |> Tuple.to_list() |> Enum.map(&<<&1::16>>) |> IO.iodata_to_binary()}
      _ -> {:error, "#{inspect(value)} is not a valid ipv6_addr"}
    end
  end

  defp parse_ipv6(value), do: {:error, "#{inspect(value)} is not a valid ipv6_addr"}

  defp parse_lladdr(dt, value, len) when is_binary(value) do
    parts = String.split(value, ":")

    bytes =
      Enum.map(parts, fn p ->
        case Integer.parse(p, 16) do
          {n, ""} when n in 0..255 and byte_size(p) in 1..2 -> n
          _ -> nil
        end
      end)

    cond do
      Enum.any?(bytes, &is_nil/1) -> {:error, "#{inspect(value)} is not a valid #{dt.name}"}
      len > 0 and length(bytes) != len -> {:error, "#{inspect(value)} is not #{len} bytes: not a valid #{dt.name}"}
      true -> {:ok, :binary.list_to_bin(bytes)}
    end
  end

  defp parse_lladdr(dt, value, _len), do: {:error, "#{inspect(value)} is not a valid #{dt.name}"}

  # JSON times are seconds (nft's time_type_json); a string is nft's
  # "1d2h3m4s5ms" form. Kept in milliseconds.
  defp parse_time(value) when is_integer(value) and value >= 0, do: {:ok, value * 1000}
  defp parse_time(value) when is_binary(value), do: parse_duration(value)
  defp parse_time(value), do: {:error, "#{inspect(value)} is not a valid time"}

  @units %{"d" => 86_400_000, "h" => 3_600_000, "m" => 60_000, "s" => 1000, "ms" => 1}

  @doc "Parses nft's duration text (`1d2h3m4s5ms`) into milliseconds."
  @spec parse_duration(String.t()) :: {:ok, non_neg_integer()} | {:error, String.t()}
  def parse_duration(s) do
    case Regex.scan(~r/(\d+)(ms|d|h|m|s)/, s) do
      [] ->
        case Integer.parse(s) do
          {n, ""} -> {:ok, n * 1000}
          _ -> {:error, "#{inspect(s)} is not a valid time"}
        end

      parts ->
        if Enum.map_join(parts, &hd/1) == s do
          {:ok, Enum.reduce(parts, 0, fn [_, n, u], acc -> acc + String.to_integer(n) * @units[u] end)}
        else
          {:error, "#{inspect(s)} is not a valid time"}
        end
    end
  end

  defp parse_boolean(true), do: {:ok, 1}
  defp parse_boolean(false), do: {:ok, 0}
  defp parse_boolean("exists"), do: {:ok, 1}
  defp parse_boolean("missing"), do: {:ok, 0}
  defp parse_boolean(v), do: {:error, "#{inspect(v)} is not a valid boolean"}

  # Interface indexes: nft resolves names in the namespace it runs in; the
  # translator runs outside it, so only the loopback's fixed index is known.
  defp parse_ifindex("lo"), do: {:ok, 1}
  defp parse_ifindex(n) when is_integer(n) and n >= 0, do: {:ok, n}

  defp parse_ifindex(v) do
    case is_binary(v) && Integer.parse(v) do
      {n, ""} -> {:ok, n}
      _ -> {:error, "interface #{inspect(v)}: only \"lo\" or an interface index can be resolved here"}
    end
  end

  defp parse_classid("root"), do: {:ok, 0xFFFFFFFF}
  defp parse_classid("none"), do: {:ok, 0}

  defp parse_classid(v) when is_binary(v) do
    with [maj, min] <- String.split(v, ":"),
         {ma, ""} <- Integer.parse(maj, 16),
         {mi, ""} <- Integer.parse(min, 16) do
      {:ok, Bitwise.bor(Bitwise.bsl(ma, 16), mi)}
    else
      _ -> {:error, "#{inspect(v)} is not a valid classid"}
    end
  end

  defp parse_classid(v) when is_integer(v), do: {:ok, v}

  # ---------------------------------------------------------------------
  # bytes -> JSON value

  @doc "Decodes the bytes of `type` as `nft -j` prints the value."
  @spec decode(String.t(), binary()) :: json()
  def decode(type, bin) do
    dt = datatype!(type)

    case Map.get(dt, :format) do
      f when f in [:integer, :xinteger, :inet_service, :mark, :cgroupv2, :realm, :devgroup] ->
        int_json(to_int(dt, bin))

      :inet_proto ->
        named_json(System.protocols(), to_int(dt, bin))

      :uid ->
        named_json(System.users(), to_int(dt, bin))

      :gid ->
        named_json(System.groups(), to_int(dt, bin))

      :time ->
        div(to_int(dt, bin), 1000)

      :boolean ->
        to_int(dt, bin) != 0

      :bitmask ->
        flags_json(dt, to_int(dt, bin))

      :symbolic ->
        symbolic_json(dt, to_int(dt, bin))

      _ ->
        text(type, bin)
    end
  end

  defp named_json(table, n) do
    case List.keyfind(table, n, 0) do
      {_, name} -> name
      nil -> n
    end
  end

  defp int_json(n) when n <= 0xFFFFFFFFFFFFFFFF, do: n
  defp int_json(n), do: "0x" <> String.downcase(Integer.to_string(n, 16))

  defp symbolic_json(dt, v) do
    case symbol_name(dt, v) do
      nil -> int_json(v)
      name -> name
    end
  end

  defp symbol_name(dt, v) do
    case Enum.find(Map.get(dt, :symbols, []), &(&1.value == v)) do
      %{name: n} -> n
      nil -> nil
    end
  end

  # A bitmask value: its flags, as one name or a list of names.
  defp flags_json(dt, v) do
    case flag_names(dt, v) do
      [one] -> one
      many -> many
    end
  end

  @doc "The flag names of a bitmask value, lowest bit first (nft's order)."
  @spec flag_names(map(), non_neg_integer()) :: [String.t() | integer()]
  def flag_names(dt, 0) do
    case symbol_name(dt, 0) do
      nil -> [0]
      n -> [n]
    end
  end

  def flag_names(dt, v) do
    syms = Map.get(dt, :symbols, [])

    {names, rest} =
      Enum.reduce(syms, {[], v}, fn %{value: sv, name: n}, {acc, rest} ->
        if sv != 0 and Bitwise.band(rest, sv) == sv and single_bit?(sv),
          do: {[n | acc], Bitwise.band(rest, Bitwise.bnot(sv))},
          else: {acc, rest}
      end)

    names = Enum.reverse(names)
    if rest != 0, do: names ++ [rest], else: names
  end

  defp single_bit?(v), do: Bitwise.band(v, v - 1) == 0

  @doc "The integer value of the bytes, in the datatype's byte order."
  @spec to_int(map() | String.t(), binary()) :: non_neg_integer()
  def to_int(type, bin) when is_binary(type), do: to_int(datatype!(type), bin)

  def to_int(dt, bin) do
    bits = bit_size(bin)

    case Map.get(dt, :byteorder) do
      :host ->
        <<n::size(bits)-little>> = bin
        n

      _ ->
        <<n::size(bits)-big>> = bin
        n
    end
  end

  # ---------------------------------------------------------------------
  # bytes -> nft text

  @doc "The bytes of `type` as nft prints the value in text."
  @spec text(String.t(), binary()) :: String.t()
  def text(type, bin) do
    dt = datatype!(type)

    case Map.get(dt, :format) do
      :ipv4 -> bin |> :binary.bin_to_list() |> Enum.take(4) |> Enum.join(".")
      :ipv6 -> ipv6_text(bin)
      :lladdr -> bin |> :binary.bin_to_list() |> Enum.map_join(":", &hex2/1)
      :string -> string_text(bin)
      :ifname -> string_text(bin)
      :xinteger -> xint_text(dt, bin)
      :mark -> xint_text(dt, bin)
      :time -> duration_text(to_int(dt, bin))
      :boolean -> if to_int(dt, bin) != 0, do: "exists", else: "missing"
      :ifindex -> ifindex_text(to_int(dt, bin))
      :classid -> classid_text(to_int(dt, bin))
      :bitmask -> dt |> flag_names(to_int(dt, bin)) |> Enum.map_join(",", &to_string/1)
      :inet_proto -> to_string(named_json(System.protocols(), to_int(dt, bin)))
      :uid -> to_string(named_json(System.users(), to_int(dt, bin)))
      :gid -> to_string(named_json(System.groups(), to_int(dt, bin)))
      _ -> int_or_symbol_text(dt, to_int(dt, bin))
    end
  end

  defp int_or_symbol_text(dt, v) do
    case symbol_name(dt, v) do
      nil -> Integer.to_string(v)
      n -> n
    end
  end

  defp string_text(bin) do
    case :binary.split(bin, <<0>>) do
      [s | _] -> s
    end
  end

  defp xint_text(dt, bin) do
    digits = max(div(Map.get(dt, :size, byte_size(bin) * 8) + 3, 4), 1)
    "0x" <> String.pad_leading(String.downcase(Integer.to_string(to_int(dt, bin), 16)), digits, "0")
  end

  defp hex2(n), do: n |> Integer.to_string(16) |> String.downcase() |> String.pad_leading(2, "0")

  defp ipv6_text(bin) do
    words = for <<w::16 <- binary_part(bin, 0, min(byte_size(bin), 16))>>, do: w
    words |> List.to_tuple() |> :inet.ntoa() |> to_string()
  end

  defp ifindex_text(1), do: "lo"
  defp ifindex_text(n), do: Integer.to_string(n)

  defp classid_text(0xFFFFFFFF), do: "root"
  defp classid_text(0), do: "none"

  defp classid_text(v) do
    Integer.to_string(Bitwise.bsr(v, 16), 16) <> ":" <> Integer.to_string(Bitwise.band(v, 0xFFFF), 16)
  end

  @doc "Milliseconds as nft prints a duration (`1d2h3m4s5ms`)."
  @spec duration_text(non_neg_integer()) :: String.t()
  def duration_text(0), do: "0s"

  def duration_text(ms) do
    [{"d", 86_400_000}, {"h", 3_600_000}, {"m", 60_000}, {"s", 1000}, {"ms", 1}]
    |> Enum.reduce({ms, ""}, fn {u, n}, {rest, acc} ->
      if rest >= n, do: {rem(rest, n), acc <> "#{div(rest, n)}#{u}"}, else: {rest, acc}
    end)
    |> elem(1)
  end
end
