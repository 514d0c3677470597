defmodule NFTables.Port.RoundtripTest do
  @moduledoc """
  The acceptance bar of dump and restore: every ruleset of nftables' own
  test suite (`../shared/testdata/rulesets/`) and of our own
  (`tests/elixir/rulesets/`) that `nft -f` loads in a fresh namespace is
  dumped through the port there, restored through a port in a second fresh
  namespace, and both list byte-identically with `nft list ruleset` (only
  `expires` values may differ).
  """
  use NFTables.Port.Case, async: false

  alias NFTables.Port.Test.Roundtrip

  @moduletag :kernel
  @moduletag timeout: 600_000

  # scripts/test-unprivileged runs a copy of the tree elsewhere: it says
  # where the shared rulesets are.
  defp shared do
    System.get_env("NFTABLES_PORT_SHARED_RULESETS") ||
      Path.expand("../../../shared/testdata/rulesets", __DIR__)
  end

  @ours Path.expand("rulesets", __DIR__)

  defp files(dir), do: dir |> Path.join("*.nft") |> Path.wildcard() |> Enum.sort()

  defp run_all(files) do
    results =
      for file <- files do
        result = Roundtrip.run(file)
        {Path.basename(file), result}
      end

    passed = Enum.count(results, fn {_, r} -> r == :ok end)
    skipped = for {name, {:skip, why}} <- results, do: "#{name}: #{why}"
    failed = for {name, {:error, why}} <- results, do: {name, why}

    IO.puts(
      "\nround trip: #{passed} of #{length(results)} rulesets pass" <>
        if(skipped == [], do: "", else: ", #{length(skipped)} not loadable by nft -f")
    )

    Enum.each(skipped, &IO.puts("  skipped #{&1}"))
    {passed, skipped, failed}
  end

  defp explain({name, {:differs, want, got}}) do
    diff =
      List.myers_difference(String.split(want, "\n"), String.split(got, "\n"))
      |> Enum.flat_map(fn
        {:eq, _} -> []
        {:del, lines} -> Enum.map(lines, &("- " <> &1))
        {:ins, lines} -> Enum.map(lines, &("+ " <> &1))
      end)
      |> Enum.join("\n")

    "#{name}: nft list ruleset differs (- source namespace, + restored):\n#{diff}"
  end

  defp explain({name, other}), do: "#{name}: #{inspect(other, limit: 40, printable_limit: 400)}"

  test "every shared ruleset round-trips byte-identically" do
    files = files(shared())

    if files == [] do
      msg = "no rulesets found in #{shared()}"
      if System.get_env("CI") == "true", do: flunk(msg), else: IO.puts("skipping: " <> msg)
    else
      {passed, skipped, failed} = run_all(files)
      assert failed == [], Enum.map_join(failed, "\n\n", &explain/1)
      # Every file of that folder loads with Debian 12's nft (its README).
      assert skipped == [], "nft -f did not load: #{inspect(skipped)}"
      assert passed == length(files)
    end
  end

  test "our own rulesets of the same kinds round-trip byte-identically" do
    files = files(@ours)
    assert files != [], "no rulesets in #{@ours}"
    {passed, skipped, failed} = run_all(files)
    assert failed == [], Enum.map_join(failed, "\n\n", &explain/1)
    assert skipped == [], "our own rulesets must load: #{inspect(skipped)}"
    assert passed == length(files)
  end
end
