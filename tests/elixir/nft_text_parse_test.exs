defmodule NFTables.Port.NftTextParseTest do
  @moduledoc """
  NFTables.Port.Nft.Text.Parser against nft itself: each ruleset of
  ../shared/testdata/rulesets (and tests/elixir/rulesets_parse/) is parsed,
  encoded as JSON, loaded with `nft -j -f` into one fresh namespace and the
  original with `nft -f` into another; `nft list ruleset` must be equal.
  Files nft's own 1.0.6 JSON cannot express (typeof, flag dynamic, several
  devices, element statements, auto-merge) are counted apart.
  """
  use ExUnit.Case, async: false

  alias NFTables.Port.Nft.Text.Parser

  @shared Path.expand("../../../shared/testdata/rulesets", __DIR__)
  @own Path.expand("rulesets_parse", __DIR__)
  @at_least 47

  defp run(ns, args), do: System.cmd("ip", ["netns", "exec", ns | args], stderr_to_stdout: true)

  defp check(f) do
    a = "nfp_pa_#{System.unique_integer([:positive])}"
    b = "nfp_pb_#{System.unique_integer([:positive])}"
    {_, 0} = System.cmd("ip", ["netns", "add", a])
    {_, 0} = System.cmd("ip", ["netns", "add", b])

    try do
      case run(b, ["nft", "-f", f]) do
        {_, st} when st != 0 ->
          :text_fails

        _ ->
          {want, 0} = run(b, ["nft", "list", "ruleset"])

          case Parser.parse(File.read!(f)) do
            {:error, e} ->
              {:parse_error, e}

            {:ok, doc} ->
              jf = Path.join(System.tmp_dir!(), "#{a}.json")
              File.write!(jf, NFTables.Port.Nft.Json.encode(doc))

              try do
                case run(a, ["nft", "-j", "-f", jf]) do
                  {_, st} when st != 0 -> :json_fails
                  _ -> if elem(run(a, ["nft", "list", "ruleset"]), 0) == want, do: :pass, else: :differ
                end
              after
                File.rm(jf)
              end
          end
      end
    after
      System.cmd("ip", ["netns", "del", a])
      System.cmd("ip", ["netns", "del", b])
    end
  end

  @tag :kernel
  @tag timeout: 600_000
  @tag :root
  test "parsed scripts load into nft as the same ruleset" do
    files = Path.wildcard(Path.join(@shared, "*.nft")) ++ Path.wildcard(Path.join(@own, "*.nft"))
    res = Enum.map(files, &{Path.basename(&1), check(&1)})
    counts = Enum.frequencies_by(res, fn {_, r} -> if is_tuple(r), do: elem(r, 0), else: r end)
    IO.puts("\nnft text parse oracle: #{inspect(counts)}")
    for {f, r} <- res, r != :pass, do: IO.puts("  #{f}: #{inspect(r)}")
    assert Map.get(counts, :parse_error, 0) == 0, inspect(for {f, {:parse_error, e}} <- res, do: {f, e})
    assert Map.get(counts, :pass, 0) >= @at_least
  end

  @errors [
    {"include \"foo.nft\"\n", 1, 1, "include is not supported"},
    {"add table ip t\nadd chain ip t c\nadd rule ip t c tcp dport 22 acept\n", 3, 30, "unexpected 'acept'"},
    {"table ip t {\n  chain c {\n    tcp dport 22 accept\n", 4, 1, "unexpected end of file"},
    {"add rule ip t c meta foo 1\n", 1, 22, "meta key"},
    {"add rule ip t c ip sadr 1.2.3.4\n", 1, 20, "not a field of ip"},
    {"add rule ip t c iifname \"lo accept\n", 1, 25, "unterminated string"},
    {"add rule ip t c tcp dport $nope accept\n", 1, 27, "unknown identifier 'nope'"},
    {"add table ip t }\n", 1, 16, "unexpected '}'"},
    {"frobnicate table ip t\n", 1, 1, "expecting a command"}
  ]

  test "malformed scripts answer line, column and a message naming the problem" do
    for {src, line, col, msg} <- @errors do
      assert {:error, e} = Parser.parse(src)
      assert {e.line, e.column} == {line, col}, "#{inspect(src)}: #{inspect(e)}"
      assert e.message =~ msg, "#{inspect(src)}: #{inspect(e)}"
      assert e.snippet == src |> String.split("\n") |> Enum.at(line - 1)
    end
  end
end
