defmodule NFTables.Port.Nft.Json do
  @moduledoc """
  JSON text <-> the Elixir-terms form of a libnftables JSON document.

  The Elixir form is the same document with atom keys (`%{nftables: [...]}`)
  and `nil` for JSON's null. The codec is not written here: OTP's `:json`
  where the runtime has it (OTP 27 and later), else Debian's `erlang-jiffy`
  (Debian 12 has OTP 25).

  Keys are made atoms only when the atom exists already (every key of the
  vocabulary does, since the translator names them); an unknown key stays
  a string, and the translator reports it as unknown. So a document can
  never fill the atom table.
  """

  @vocabulary [NFTables.Port.Nft, NFTables.Port.Nft.Objects, NFTables.Port.Nft.Rule,
               NFTables.Port.Nft.Elements, NFTables.Port.Nft.Udata]

  @doc "Decodes JSON text into the Elixir-terms document."
  @spec decode(binary()) :: {:ok, term()} | {:error, String.t()}
  def decode(text) when is_binary(text) do
    # The vocabulary's atoms exist once the translator's modules are loaded.
    Enum.each(@vocabulary, &Code.ensure_loaded/1)
    {:ok, text |> raw_decode() |> atomize()}
  rescue
    e in [ErlangError, ArgumentError] -> {:error, "invalid JSON: " <> describe(e)}
  catch
    :throw, reason -> {:error, "invalid JSON: #{inspect(reason)}"}
  end

  @doc "Encodes the Elixir-terms document as JSON text."
  @spec encode(term()) :: binary()
  def encode(doc), do: doc |> for_codec() |> raw_encode()

  defp describe(%ErlangError{original: o}), do: inspect(o)
  defp describe(e), do: Exception.message(e)

  if Code.ensure_loaded?(:json) and function_exported?(:json, :decode, 1) do
    defp raw_decode(text), do: :json.decode(text)
    defp raw_encode(term), do: term |> :json.encode() |> IO.iodata_to_binary()
    defp null, do: :null
  else
    defp raw_decode(text), do: :jiffy.decode(text, [:return_maps])
    defp raw_encode(term), do: term |> :jiffy.encode() |> IO.iodata_to_binary()
    defp null, do: :null
  end

  defp atomize(m) when is_map(m) do
    Map.new(m, fn {k, v} -> {key(k), atomize(v)} end)
  end

  defp atomize(l) when is_list(l), do: Enum.map(l, &atomize/1)
  defp atomize(:null), do: nil
  defp atomize(v), do: v

  defp key(k) when is_binary(k) do
    String.to_existing_atom(k)
  rescue
    ArgumentError -> k
  end

  # nil -> null; atoms other than booleans become strings.
  defp for_codec(m) when is_map(m), do: Map.new(m, fn {k, v} -> {to_string(k), for_codec(v)} end)
  defp for_codec(l) when is_list(l), do: Enum.map(l, &for_codec/1)
  defp for_codec(nil), do: null()
  defp for_codec(b) when is_boolean(b), do: b
  defp for_codec(a) when is_atom(a), do: Atom.to_string(a)
  defp for_codec(v), do: v
end
