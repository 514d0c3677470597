defmodule NFTables.Port.NftTextRenderTest do
  @moduledoc """
  `NFTables.Port.Nft.Text.Render.render/1` against nft itself: every
  ruleset of `../shared/testdata/rulesets/` and of `rulesets_text/` is
  loaded with `nft -f` into a throwaway network namespace, listed there
  with `nft -j list ruleset` and `nft list ruleset`, and the rendering of
  the decoded JSON must be the text, byte for byte (`expires` values
  count down between the two listings and are masked).

  A few shared rulesets use what nft 1.0.6's JSON does not carry (a set's
  typeof, `dynamic` on a set no rule updates, `auto-merge`, a chain's
  devices, the second statement of an element). For those the test
  checks that the text differs only in those lines.
  """
  use ExUnit.Case, async: false

  alias NFTables.Port.Nft.Json
  alias NFTables.Port.Nft.Text.Render

  @moduletag :kernel
  # ip netns add: root only; the unprivileged run skips it.
  @moduletag :root
  @moduletag timeout: 600_000

  @shared Path.expand("../../../shared/testdata/rulesets", __DIR__)
  @ours Path.expand("rulesets_text", __DIR__)

  # What nft's JSON loses, as the lines of `nft list ruleset` it affects.
  @typeof ~r/^\t\t(typeof|type) /
  @set_flags ~r/^\t\tflags /
  @element_lines ~r/^\t\telements = |^\t\t\t     /
  @lossy %{
    "chains__0042chain_variable_0.nft" => [~r/^\t\ttype filter hook ingress /],
    "maps__typeof_maps_0.nft" => [@typeof],
    "nft-f__0025empty_dynset_0.nft" => [@set_flags, @element_lines],
    "sets__0029named_ifname_dtype_0.nft" => [@typeof],
    "sets__0048set_counters_0.nft" => [@typeof],
    "sets__0052overlap_0.nft" => [~r/^\t\tauto-merge$/],
    "sets__0060set_multistmt_0.nft" => [@element_lines],
    "sets__0070stacked_l2_headers.nft" => [@typeof],
    "sets__typeof_sets_1.nft" => [@typeof]
  }

  setup_all do
    # The renderer's atoms must exist before decoding (Json keeps unknown
    # keys as strings).
    Code.ensure_loaded!(Render)
    :ok
  end

  defp files(dir), do: dir |> Path.join("*.nft") |> Path.wildcard() |> Enum.sort()

  # nft's two listings of a ruleset file, from a throwaway namespace.
  defp listings(file) do
    ns = "nfp_txt_#{System.unique_integer([:positive])}"
    {_, 0} = System.cmd("ip", ["netns", "add", ns])

    try do
      nft = fn args -> System.cmd("ip", ["netns", "exec", ns, "nft" | args], stderr_to_stdout: true) end

      case nft.(["-f", file]) do
        {_, 0} ->
          {json, 0} = nft.(["-j", "list", "ruleset"])
          {text, 0} = nft.(["list", "ruleset"])
          {:ok, json, text}

        {out, _} ->
          {:skip, String.trim(out)}
      end
    after
      System.cmd("ip", ["netns", "del", ns])
    end
  end

  defp mask(text), do: Regex.replace(~r/expires [0-9dhms]+/, text, "expires X")

  defp render_file(file) do
    case listings(file) do
      {:ok, json, text} ->
        {:ok, doc} = Json.decode(json)

        got =
          try do
            Render.render(doc)
          rescue
            e -> "render raised: " <> Exception.format(:error, e, __STACKTRACE__)
          end

        {:ok, mask(text), mask(got)}

      skip ->
        skip
    end
  end

  defp diff_lines(want, got) do
    want
    |> String.split("\n")
    |> List.myers_difference(String.split(got, "\n"))
    |> Enum.flat_map(fn
      {:eq, _} -> []
      {:del, lines} -> Enum.map(lines, &{:want, &1})
      {:ins, lines} -> Enum.map(lines, &{:got, &1})
    end)
  end

  defp explain(name, want, got) do
    lines =
      diff_lines(want, got)
      |> Enum.map_join("\n", fn
        {:want, l} -> "- " <> l
        {:got, l} -> "+ " <> l
      end)

    "#{name}: rendering differs from nft list ruleset (- nft, + render):\n#{lines}"
  end

  defp run_all(files, lossy) do
    for file <- files do
      name = Path.basename(file)

      case render_file(file) do
        {:ok, same, same} ->
          {name, :exact}

        {:ok, want, got} ->
          case Map.get(lossy, name) do
            nil ->
              {name, {:error, explain(name, want, got)}}

            allowed ->
              bad =
                for {_side, l} <- diff_lines(want, got),
                    not Enum.any?(allowed, &Regex.match?(&1, l)),
                    do: l

              if bad == [], do: {name, :lossy}, else: {name, {:error, explain(name, want, got)}}
          end

        {:skip, why} ->
          {name, {:skip, why}}
      end
    end
  end

  defp report(label, results) do
    exact = Enum.count(results, &match?({_, :exact}, &1))
    lossy = Enum.count(results, &match?({_, :lossy}, &1))
    skipped = for {n, {:skip, why}} <- results, do: "#{n}: #{why}"

    IO.puts(
      "\nnft text (#{label}): #{exact} of #{length(results)} print byte for byte" <>
        if(lossy > 0, do: ", #{lossy} differ only where nft's JSON loses data", else: "") <>
        if(skipped == [], do: "", else: ", #{length(skipped)} not loadable")
    )

    Enum.each(skipped, &IO.puts("  skipped #{&1}"))
    for {_, {:error, msg}} <- results, do: msg
  end

  test "renders every shared ruleset as nft list ruleset prints it" do
    results = run_all(files(@shared), @lossy)
    errors = report("shared rulesets", results)
    assert length(results) >= 50
    assert errors == [], Enum.join(errors, "\n\n")

    # the known losses are still losses of nft's JSON only (else the
    # list above is stale)
    for {name, :exact} <- results, do: refute(Map.has_key?(@lossy, name), "#{name} now renders exactly")
  end

  test "renders our statement and object rulesets exactly" do
    results = run_all(files(@ours), %{})
    errors = report("rulesets_text", results)
    assert length(results) >= 5
    assert errors == [], Enum.join(errors, "\n\n")
    assert for({n, {:skip, why}} <- results, do: {n, why}) == []
  end

  test "prints handles when asked, as nft -a does" do
    file = Path.join(@ours, "stmts_basic.nft")
    ns = "nfp_txt_#{System.unique_integer([:positive])}"
    {_, 0} = System.cmd("ip", ["netns", "add", ns])

    try do
      nft = fn args -> System.cmd("ip", ["netns", "exec", ns, "nft" | args], stderr_to_stdout: true) end
      {_, 0} = nft.(["-f", file])
      {json, 0} = nft.(["-j", "list", "ruleset"])
      {text, 0} = nft.(["-a", "list", "ruleset"])
      {:ok, doc} = Json.decode(json)
      got = Render.render(doc, handles: true)
      assert got == text, explain("stmts_basic.nft (handles)", text, got)
    after
      System.cmd("ip", ["netns", "del", ns])
    end
  end

  test "raises a clear error on what is not a document" do
    assert_raise ArgumentError, ~r/not a libnftables document/, fn -> Render.render(%{foo: 1}) end
  end
end
