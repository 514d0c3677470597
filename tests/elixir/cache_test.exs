defmodule NFTables.Port.CacheTest do
  @moduledoc """
  NFTables.Port.Cache against the kernel: reads without the kernel, kept
  current from events transaction by transaction, and equal to a fresh
  listing at every quiet point of 10,000 random changes made by 8
  processes through the port and through nft.
  """
  use NFTables.Port.Case, async: true

  alias NFTables.Port.{Cache, Snapshot}

  @moduletag :kernel

  @accept [{:immediate, %{dreg: 0, verdict: :accept}}]

  defp start_cache!(pid, opts \\ []) do
    start_supervised!({Cache, Keyword.put(opts, :port, pid)}, id: make_ref())
  end

  defp assert_fresh(cache, pid, tables \\ :all) do
    :ok = Cache.sync_point(cache, 20_000)
    {:ok, fresh} = Snapshot.load(pid, tables)
    snap = Cache.snapshot(cache, tables)
    assert snap.genid == fresh.genid

    for key <- [:tables, :chains, :sets, :objs, :flowtables, :rules, :elements] do
      assert {key, Map.fetch!(snap, key)} == {key, Map.fetch!(fresh, key)}
    end
  end

  test "reads come from the cache and follow every change" do
    pid = start_port!()

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "t"}},
        {:add, :chain,
         %{family: :inet, table: "t", name: "in", type: "filter", hooknum: :input, prio: 0, policy: :accept}},
        {:add, :rule, %{family: :inet, table: "t", chain: "in", exprs: @accept}},
        {:add, :set, %{family: :inet, table: "t", name: "s", key_type: 7, key_len: 4}},
        {:add, :element, %{family: :inet, table: "t", set: "s", elements: [%{key: <<1, 1, 1, 1>>}]}}
      ])

    cache = start_cache!(pid)
    assert_fresh(cache, pid)
    assert [%{name: "t"}] = Cache.tables(cache)
    assert [%{name: "in", policy: :accept}] = Cache.chains(cache, :inet, "t")
    assert [%{exprs: @accept, handle: h}] = Cache.rules(cache, :inet, "t", "in")
    assert [%{key: <<1, 1, 1, 1>>}] = Cache.elements(cache, :inet, "t", "s")
    assert %{name: "s"} = Cache.get(cache, :set, %{family: :inet, table: "t", name: "s"})
    assert nil == Cache.get(cache, :set, %{family: :inet, table: "t", name: "nope"})
    g0 = Cache.genid(cache)

    # A policy change, an insert at the start, a replace, nft's changes.
    :ok =
      NFTables.Port.commit(pid, [
        {:add, :chain, %{family: :inet, table: "t", name: "in", type: "filter", hooknum: :input, prio: 0, policy: :drop}},
        {:insert, :rule, %{family: :inet, table: "t", chain: "in", exprs: [{:immediate, %{dreg: 0, verdict: :continue}}]}},
        {:replace, :rule, %{family: :inet, table: "t", chain: "in", handle: h, exprs: [{:immediate, %{dreg: 0, verdict: :drop}}]}},
        {:add, :counter, %{family: :inet, table: "t", name: "k"}}
      ])

    nft!(pid, "add rule inet t in meta mark 7 counter accept; insert rule inet t in position #{h} meta mark 8 accept; add element inet t s { 2.2.2.2 }")
    assert_fresh(cache, pid)
    assert Cache.genid(cache) == g0 + 2
    assert [%{policy: :drop}] = Cache.chains(cache, :inet, "t")
    assert [{:counter, %{name: "k"}}] = Cache.objects(cache, :inet, "t")
    assert length(Cache.rules(cache, :inet, "t", "in")) == 4

    nft!(pid, "delete table inet t")
    assert_fresh(cache, pid)
    assert Cache.tables(cache) == []
    assert Cache.rules(cache, :inet, "t", "in") == []
    assert Cache.reloads(cache) == 0
  end

  test "a cache stops when its port does" do
    pid = start_port!()
    cache = start_supervised!(Supervisor.child_spec({Cache, port: pid}, id: make_ref(), restart: :temporary))
    mon = Process.monitor(cache)
    NFTables.Port.stop(pid)
    assert_receive {:DOWN, ^mon, :process, _, {:port_down, _}}, 5_000
  end

  test "a cache of chosen tables ignores the others" do
    pid = start_port!()

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "mine"}},
        {:add, :table, %{family: :inet, name: "other"}}
      ])

    cache = start_cache!(pid, tables: [{:inet, "mine"}])
    :ok = NFTables.Port.commit(pid, [{:add, :chain, %{family: :inet, table: "other", name: "c"}}])
    :ok = NFTables.Port.commit(pid, [{:add, :chain, %{family: :inet, table: "mine", name: "c"}}])
    assert_fresh(cache, pid, [{:inet, "mine"}])
    assert [%{name: "mine"}] = Cache.tables(cache)
    assert Cache.chains(cache, :inet, "other") == []
  end

  # Its burst is larger than an ordinary user's socket buffers allow.
  @tag :root
  test "after an overflow the cache reloads and is right again" do
    pid = start_port!()
    # The cache opens the event socket: a small buffer overruns soon.
    {:ok, probe} = NFTables.Port.subscribe(pid, rcvbuf: 4096)
    cache = start_cache!(pid)

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "o"}},
        {:add, :set, %{family: :inet, table: "o", name: "s", key_type: 7, key_len: 4}}
      ])

    :ok = Cache.sync_point(cache)
    os_kill!(pid, "STOP")
    elements = for i <- 0..19_999, do: %{key: <<10, 0, div(i, 256), rem(i, 256)>>}
    file = Path.join(System.tmp_dir!(), "nfp-cache-#{System.unique_integer([:positive])}.nft")
    on_exit(fn -> File.rm(file) end)

    File.write!(
      file,
      "add element inet o s {\n" <>
        Enum.map_join(elements, ",\n", fn %{key: <<a, b, c, d>>} -> "#{a}.#{b}.#{c}.#{d}" end) <>
        "\n}\n"
    )

    nft!(pid, ["-f", file])
    os_kill!(pid, "CONT")
    assert_receive {:nftables, ^probe, :overflow}, 30_000
    assert_fresh(cache, pid)
    assert Cache.reloads(cache) >= 1
    assert length(Cache.elements(cache, :inet, "o", "s")) == 20_000
  end

  ## 10,000 random changes by 8 processes

  @workers 8
  @rounds 10
  @changes 10_000
  @tables ["r1", "r2"]
  @chains ["c1", "c2", "c3"]

  @tag timeout: 300_000
  test "equals a fresh listing at every quiet point of 10,000 random changes" do
    pid = start_port!()
    base =
      for t <- @tables,
          msg <-
            [{:add, :table, %{family: :inet, name: t}}] ++
              for(c <- @chains, do: {:add, :chain, %{family: :inet, table: t, name: c}}) ++
              [
                {:add, :chain, %{family: :inet, table: t, name: "base", type: "filter", hooknum: :input, prio: 0, policy: :accept}},
                {:add, :set, %{family: :inet, table: t, name: "s", key_type: 7, key_len: 4}}
              ],
          do: msg

    :ok = NFTables.Port.commit(pid, base)
    cache = start_cache!(pid)
    per_worker = div(@changes, @workers * @rounds)
    seed = :erlang.phash2(make_ref())
    IO.puts("\n  cache stress seed #{seed}")

    total =
      Enum.reduce(1..@rounds, 0, fn round, total ->
        done =
          1..@workers
          |> Enum.map(fn w ->
            Task.async(fn ->
              :rand.seed(:exsss, {seed, round, w})
              worker(pid, cache, w, per_worker)
            end)
          end)
          |> Task.await_many(120_000)
          |> Enum.sum()

        # A quiet point: nobody changes anything now.
        assert_fresh(cache, pid)
        total + done
      end)

    assert total == @changes
    assert Cache.reloads(cache) == 0
    # The changes changed something: rules, elements, objects of both kinds.
    snap = Cache.snapshot(cache)
    assert snap.rules |> Map.values() |> Enum.map(&length/1) |> Enum.sum() > 2_000
    assert snap.elements |> Map.values() |> Enum.map(&map_size/1) |> Enum.sum() > 100
    assert map_size(snap.objs) > 10
  end

  # Makes n changes: some through the port, some as one nft batch. Returns n.
  defp worker(pid, cache, w, n) do
    {by_nft, by_port} = Enum.split(1..n, div(n, 3))
    Enum.each(by_port, fn _ -> port_change(pid, cache) end)
    nft_batch(pid, w, length(by_nft))
    n
  end

  defp pick(list), do: Enum.random(list)

  defp rule_exprs do
    [
      {:meta, %{key: :mark, dreg: 1}},
      {:cmp, %{sreg: 1, op: :eq, data: <<:rand.uniform(1_000_000)::32>>}},
      {:immediate, %{dreg: 0, verdict: pick([:accept, :drop, :continue])}}
    ]
  end

  defp some_rule(cache, t, c) do
    case Cache.rules(cache, :inet, t, c) do
      [] -> nil
      rules -> pick(rules)
    end
  end

  defp port_change(pid, cache) do
    t = pick(@tables)
    c = pick(@chains)
    base = %{family: :inet, table: t, chain: c}

    msg =
      case :rand.uniform(10) do
        n when n <= 3 ->
          {:add, :rule, Map.put(base, :exprs, rule_exprs())}

        4 ->
          {:insert, :rule, Map.put(base, :exprs, rule_exprs())}

        5 ->
          case some_rule(cache, t, c) do
            nil -> {:add, :rule, Map.put(base, :exprs, rule_exprs())}
            r -> {pick([:add, :insert]), :rule, Map.merge(base, %{position: r.handle, exprs: rule_exprs()})}
          end

        6 ->
          case some_rule(cache, t, c) do
            nil -> {:insert, :rule, Map.put(base, :exprs, rule_exprs())}
            r -> {:delete, :rule, Map.put(base, :handle, r.handle)}
          end

        7 ->
          case some_rule(cache, t, c) do
            nil -> {:insert, :rule, Map.put(base, :exprs, rule_exprs())}
            r -> {:replace, :rule, Map.merge(base, %{handle: r.handle, exprs: rule_exprs()})}
          end

        8 ->
          {:add, :element,
           %{family: :inet, table: t, set: "s", elements: [%{key: <<10, 0, :rand.uniform(4) - 1, :rand.uniform(256) - 1>>}]}}

        9 ->
          {:delete, :element,
           %{family: :inet, table: t, set: "s", elements: [%{key: <<10, 0, :rand.uniform(4) - 1, :rand.uniform(256) - 1>>}]}}

        10 ->
          {:add, :chain,
           %{family: :inet, table: t, name: "base", type: "filter", hooknum: :input, prio: 0, policy: pick([:accept, :drop])}}
      end

    # Many of them race (a handle another worker just deleted, an element
    # that is not there): a refused commit changes nothing.
    _ = NFTables.Port.commit(pid, [msg])
  end

  defp nft_batch(_pid, _w, 0), do: :ok

  defp nft_batch(pid, w, n) do
    lines =
      for _ <- 1..n do
        t = pick(@tables)
        c = pick(@chains)

        case :rand.uniform(5) do
          1 -> "insert rule inet #{t} #{c} meta mark #{:rand.uniform(9999)} counter drop"
          2 -> "add element inet #{t} s { 10.1.#{:rand.uniform(4) - 1}.#{:rand.uniform(255)} }"
          3 -> "add counter inet #{t} k#{w}_#{:rand.uniform(5)}"
          _ -> "add rule inet #{t} #{c} meta mark #{:rand.uniform(9999)} accept comment \"w#{w}\""
        end
      end

    file = Path.join(System.tmp_dir!(), "nfp-stress-#{System.unique_integer([:positive])}.nft")
    File.write!(file, Enum.join(lines, "\n") <> "\n")

    try do
      nft!(pid, ["-f", file])
    after
      File.rm(file)
    end
  end
end
