defmodule NFTables.Port.NftJsonTest do
  @moduledoc """
  The acceptance bar of the nft vocabulary (libnftables JSON), on every
  ruleset of nftables' own test suite (`../shared/testdata/rulesets/`):

  1. **in**: `nft -j list ruleset` of a namespace `nft -f` loaded, given to
     `NFTables.Port.commit/2` in an empty namespace, lists (`nft list
     ruleset`) the same, byte for byte. Counted beside `nft -j -f` itself
     doing the same.
  2. **lossless**: the port's own JSON of that namespace
     (`{"nftables": [{"list": {"ruleset": null}}]}` through `commit/2`),
     committed into an empty namespace, lists the same.
  3. **out**: the port's JSON holds everything `nft -j list ruleset`
     prints, in the same order (parsed, metainfo aside; the port may add
     keys nft drops).

  The test prints the three counts, and fails when a count falls below
  what this commit reached.
  """
  use ExUnit.Case, async: false

  import NFTables.Port.Case

  alias NFTables.Port.Nft
  alias NFTables.Port.Test.Roundtrip

  @moduletag :kernel
  @moduletag timeout: 900_000

  @shared Path.expand("../../../shared/testdata/rulesets", __DIR__)
  # What this commit reached; a lower count is a regression.
  @at_least %{in: 42, lossless: 51, out: 53}

  @list_ruleset ~s({"nftables": [{"list": {"ruleset": null}}]})

  defp netns!(fun) do
    ns = "nfp_js_#{System.unique_integer([:positive])}"
    {_, 0} = System.cmd("ip", ["netns", "add", ns])

    try do
      fun.(ns)
    after
      System.cmd("ip", ["netns", "del", ns])
    end
  end

  defp in_ns(ns, args, input \\ nil) do
    opts = [stderr_to_stdout: true]

    if input do
      path = Path.join(System.tmp_dir!(), "nfp_js_#{System.unique_integer([:positive])}.json")
      File.write!(path, input)

      try do
        System.cmd("ip", ["netns", "exec", ns | args ++ [path]], opts)
      after
        File.rm(path)
      end
    else
      System.cmd("ip", ["netns", "exec", ns | args], opts)
    end
  end

  # Commits `json` into a fresh namespace through a port and lists it with
  # nft there.
  defp load_through_port(json) do
    pid = start_port!()

    case NFTables.Port.commit(pid, json) do
      {:ok, ""} -> {:ok, nft!(pid, "list ruleset")}
      other -> {:error, other}
    end
  end

  defp check(file) do
    netns!(fn ns ->
      case in_ns(ns, ["nft", "-f", file]) do
        {_, 0} ->
          {want_text, 0} = in_ns(ns, ["nft", "list", "ruleset"])
          {nft_json, 0} = in_ns(ns, ["nft", "-j", "list", "ruleset"])
          {:ok, pid} = NFTables.Port.start_link(netns: ns)

          port_json =
            try do
              NFTables.Port.commit(pid, @list_ruleset)
            after
              GenServer.stop(pid)
            end

          %{
            in: same(load_through_port(nft_json), want_text),
            nft_in: netns!(fn ns2 ->
              case in_ns(ns2, ["nft", "-j", "-f"], nft_json) do
                {_, 0} -> same({:ok, elem(in_ns(ns2, ["nft", "list", "ruleset"]), 0)}, want_text)
                {out, _} -> {:error, String.trim(out)}
              end
            end),
            lossless:
              case port_json do
                {:ok, json} -> same(load_through_port(json), want_text)
                other -> {:error, other}
              end,
            out: out(nft_json, port_json)
          }

        {out, _} ->
          {:skip, out}
      end
    end)
  end

  defp same({:ok, got}, want) do
    if Roundtrip.normalize(got) == Roundtrip.normalize(want), do: :ok, else: {:differs, diff(want, got)}
  end

  defp same(other, _want), do: {:error, other}

  defp diff(want, got) do
    List.myers_difference(String.split(want, "\n"), String.split(got, "\n"))
    |> Enum.flat_map(fn
      {:eq, _} -> []
      {:del, l} -> Enum.map(l, &("- " <> &1))
      {:ins, l} -> Enum.map(l, &("+ " <> &1))
    end)
    |> Enum.take(12)
    |> Enum.join("\n")
  end

  # Every object nft prints, in order, with every key nft prints.
  defp out(nft_json, {:ok, port_json}) do
    {:ok, %{nftables: [_ | want]}} = Nft.Json.decode(nft_json)
    {:ok, %{nftables: [_ | got]}} = Nft.Json.decode(port_json)

    if length(want) != length(got) do
      {:error, "#{length(got)} objects, nft prints #{length(want)}"}
    else
      Enum.zip(want, got)
      |> Enum.find_value(:ok, fn {w, g} ->
        if w == strip_additions(w, g), do: nil, else: {:differs, "nft: #{Nft.Json.encode(w)}\nport: #{Nft.Json.encode(g)}"}
      end)
    end
  end

  defp out(_nft_json, other), do: {:error, other}

  # The port may add keys to an object that nft drops.
  defp strip_additions(w, g) when is_map(w) and is_map(g) and map_size(w) == 1 and map_size(g) == 1 do
    [{k, wv}] = Map.to_list(w)

    case Map.to_list(g) do
      [{^k, gv}] when is_map(wv) and is_map(gv) -> %{k => Map.take(gv, Map.keys(wv))}
      _ -> g
    end
  end

  defp strip_additions(_w, g), do: g

  # ip netns add: root only; the unprivileged run excludes :root.
  @tag :root
  test "nft's JSON in, the port's JSON lossless, the port's JSON out" do
    if System.cmd("id", ["-u"]) |> elem(0) |> String.trim() != "0" do
      if System.get_env("CI") == "true", do: flunk("needs root (ip netns add)")
    else
      results = for f <- Path.wildcard(Path.join(@shared, "*.nft")) |> Enum.sort(), do: {Path.basename(f), check(f)}
      loaded = for {n, %{} = r} <- results, do: {n, r}
      count = fn k -> Enum.count(loaded, fn {_, r} -> r[k] == :ok end) end

      IO.puts(
        "\nnft vocabulary on #{length(loaded)} rulesets: in #{count.(:in)} (nft -j -f itself: #{count.(:nft_in)}), " <>
          "lossless #{count.(:lossless)}, out #{count.(:out)}"
      )

      for {n, r} <- loaded, k <- [:in, :lossless, :out], r[k] != :ok do
        IO.puts("  #{k} #{n}: #{inspect(r[k], limit: 8, printable_limit: 600)}")
      end

      for k <- [:in, :lossless, :out] do
        assert count.(k) >= @at_least[k], "#{k}: #{count.(k)} rulesets, this commit reached #{@at_least[k]}"
      end

      # "in" should hold wherever nft's own loader manages it: the ones
      # where it does not yet are printed
      missed = for {n, r} <- loaded, r.nft_in == :ok and r.in != :ok, do: n
      if missed != [], do: IO.puts("  nft -j -f loads these, the port not yet: #{Enum.join(missed, ", ")}")
    end
  end

  test "the README's example: a document of Elixir terms in, JSON and the nft form out" do
    pid = start_port!()

    assert :ok =
             NFTables.Port.commit(pid, %{
               nftables: [
                 %{add: %{table: %{family: "inet", name: "fw"}}},
                 %{add: %{chain: %{family: "inet", table: "fw", name: "input", type: "filter", hook: "input", prio: 0, policy: "drop"}}},
                 %{
                   add: %{
                     rule: %{
                       family: "inet",
                       table: "fw",
                       chain: "input",
                       expr: [
                         %{match: %{op: "in", left: %{ct: %{key: "state"}}, right: ["established", "related"]}},
                         %{match: %{op: "==", left: %{payload: %{protocol: "tcp", field: "dport"}}, right: %{set: [22, 80, 443]}}},
                         %{accept: nil}
                       ]
                     }
                   }
                 }
               ]
             })

    assert nft!(pid, "list ruleset") =~ "ct state established,related tcp dport { 22, 80, 443 } accept"
    assert {:ok, json} = NFTables.Port.commit(pid, @list_ruleset)
    assert {:ok, %{nftables: [%{metainfo: _} | objects]}} = Nft.Json.decode(json)
    assert [%{rule: %{expr: [_, _, %{accept: nil}], handle: h}}] = for(%{rule: _} = r <- objects, do: r)
    assert is_integer(h)

    # A document that does not translate names the command and the place.
    assert {:error, %{index: 1, path: [:add, :rule, :expr, 0 | _], message: m}} =
             NFTables.Port.commit(pid, %{
               nftables: [
                 %{add: %{table: %{family: "inet", name: "fw"}}},
                 %{add: %{rule: %{family: "inet", table: "fw", chain: "input", expr: [%{match: %{op: "==", left: %{payload: %{protocol: "tcp", field: "dprot"}}, right: 1}}]}}}
               ]
             })

    assert m =~ "dprot"
  end
end
