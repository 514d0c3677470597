defmodule NFTables.Port.SyncTest do
  @moduledoc """
  NFTables.Port.sync/3 against the kernel: converges tables in one
  transaction, changes only what differs (rules keep their handles), sends
  nothing when nothing differs, retries on a changed generation, and syncs
  large sets by difference.
  """
  use NFTables.Port.Case, async: true

  alias NFTables.Port.{Cache, Sync}

  @moduletag :kernel

  defp rule(c, mark, verdict \\ :accept, comment \\ nil) do
    attrs = %{
      family: :inet,
      table: "f",
      chain: c,
      exprs: [
        {:meta, %{key: :mark, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<mark::32>>}},
        {:counter, %{}},
        {:immediate, %{dreg: 0, verdict: verdict}}
      ]
    }

    attrs = if comment, do: Map.put(attrs, :userdata, comment), else: attrs
    {:add, :rule, attrs}
  end

  defp ip(i), do: <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>

  defp desired(marks, opts \\ []) do
    policy = Keyword.get(opts, :policy, :accept)
    elems = Keyword.get(opts, :elements, [1, 2, 3])

    [
      {:add, :table, %{family: :inet, name: "f"}},
      {:add, :chain,
       %{
         family: :inet,
         table: "f",
         name: "in",
         type: "filter",
         hooknum: :input,
         prio: 0,
         policy: policy
       }},
      {:add, :chain, %{family: :inet, table: "f", name: "side"}},
      {:add, :set, %{family: :inet, table: "f", name: "block", key_type: 7, key_len: 4}},
      {:add, :element,
       %{family: :inet, table: "f", set: "block", elements: Enum.map(elems, &%{key: ip(&1)})}},
      {:add, :counter, %{family: :inet, table: "f", name: "hits"}}
    ] ++ Enum.map(marks, &rule("in", &1)) ++ [rule("side", 99, :drop)]
  end

  defp marks(pid, chain \\ "in") do
    {:ok, rules} = NFTables.Port.list(pid, :rule, %{family: :inet, table: "f", chain: chain})

    Enum.map(rules, fn r ->
      r.exprs |> Enum.at(1) |> elem(1) |> Map.fetch!(:data) |> then(fn <<m::32>> -> m end)
    end)
  end

  defp handles(pid) do
    {:ok, rules} = NFTables.Port.list(pid, :rule, %{family: :inet, table: "f", chain: "in"})
    Map.new(rules, fn r -> {r.exprs |> Enum.at(1) |> elem(1) |> Map.fetch!(:data), r.handle} end)
  end

  defp no_event(ref) do
    receive do
      {:nftables, ^ref, e} -> flunk("unexpected event #{inspect(e)}")
    after
      300 -> :ok
    end
  end

  for with_cache <- [false, true] do
    @tag cache: with_cache
    test "converges, then changes nothing (cache: #{with_cache})", %{cache: with_cache} do
      pid = start_port!()
      # A table not in the desired state is left alone.
      :ok = NFTables.Port.commit(pid, [{:add, :table, %{family: :ip, name: "other"}}])
      opts = if with_cache, do: [cache: start_supervised!({Cache, port: pid})], else: []

      assert {:ok, %{added: 12, deleted: 0, genid: g1}} =
               NFTables.Port.sync(pid, desired([1, 2, 3]), opts)

      assert {:ok, g1} == NFTables.Port.genid(pid)
      assert marks(pid) == [1, 2, 3]
      before = handles(pid)

      # The same again: nothing sent, not even an empty transaction.
      {:ok, ref} = NFTables.Port.subscribe(pid)
      if with_cache, do: :ok = Cache.sync_point(opts[:cache])

      assert {:ok, %{added: 0, deleted: 0, updated: 0, genid: ^g1}} =
               NFTables.Port.sync(pid, desired([1, 2, 3]), opts)

      no_event(ref)
      assert {:ok, g1} == NFTables.Port.genid(pid)

      # Rules in front, in the middle, at the end; one gone; a policy; elements.
      want = [0, 1, 5, 6, 3, 7]
      if with_cache, do: :ok = Cache.sync_point(opts[:cache])

      assert {:ok, %{added: 6, deleted: 2, updated: 1}} =
               NFTables.Port.sync(pid, desired(want, policy: :drop, elements: [2, 3, 4, 5]), opts)

      assert marks(pid) == want
      after_ = handles(pid)
      # Unchanged rules kept their handles (and so their counters).
      for m <- [1, 3], do: assert(after_[<<m::32>>] == before[<<m::32>>])

      {:ok, [chain]} =
        NFTables.Port.list(pid, :chain, %{family: :inet, table: "f"})
        |> then(fn {:ok, cs} -> {:ok, Enum.filter(cs, &(&1.name == "in"))} end)

      assert chain.policy == :drop

      {:ok, [%{elements: elems}]} =
        NFTables.Port.list(pid, :element, %{family: :inet, table: "f", set: "block"})

      assert Enum.sort(Enum.map(elems, & &1.key)) == Enum.map([2, 3, 4, 5], &ip/1)
      assert {:ok, [%{name: "other"}]} = NFTables.Port.list(pid, :table, %{family: :ip})

      # Reordered, and a chain, a set and a counter that are no longer wanted.
      if with_cache, do: :ok = Cache.sync_point(opts[:cache])

      small =
        [
          {:add, :table, %{family: :inet, name: "f"}},
          {:add, :chain,
           %{
             family: :inet,
             table: "f",
             name: "in",
             type: "filter",
             hooknum: :input,
             prio: 0,
             policy: :drop
           }}
        ] ++ Enum.map([7, 6, 5, 3, 1, 0], &rule("in", &1))

      assert {:ok, %{deleted: deleted}} = NFTables.Port.sync(pid, small, opts)
      assert deleted > 0
      assert marks(pid) == [7, 6, 5, 3, 1, 0]

      assert {:ok, [%{name: "in"}]} =
               NFTables.Port.list(pid, :chain, %{family: :inet, table: "f"})

      assert {:ok, []} = NFTables.Port.list(pid, :set, %{family: :inet, table: "f"})
      assert {:ok, []} = NFTables.Port.list(pid, :counter, %{family: :inet, table: "f"})
      if with_cache, do: :ok = Cache.sync_point(opts[:cache])
      assert {:ok, %{added: 0, deleted: 0, updated: 0}} = NFTables.Port.sync(pid, small, opts)
    end
  end

  test "with a cache, a chain found equal is not read again until it changes" do
    pid = start_port!()
    cache = start_supervised!({Cache, port: pid})
    want = desired([1, 2, 3])
    {:ok, _} = NFTables.Port.sync(pid, want, cache: cache)
    :ok = Cache.sync_point(cache)
    # The first no-op reads the rules and remembers they are equal; the
    # second does not need them.
    assert {:ok, %{added: 0, deleted: 0}} = NFTables.Port.sync(pid, want, cache: cache)
    _ = :sys.get_state(cache)
    assert Cache.verified?(cache, {:inet, "f", "in"}, fingerprint(want, "in"))
    assert {:ok, %{added: 0, deleted: 0}} = NFTables.Port.sync(pid, want, cache: cache)

    # Someone adds a rule: the chain's version moves on, so it is compared again.
    nft!(pid, "add rule inet f in meta mark 77 accept")
    :ok = Cache.sync_point(cache)
    refute Cache.verified?(cache, {:inet, "f", "in"}, fingerprint(want, "in"))
    assert {:ok, %{added: 0, deleted: 1}} = NFTables.Port.sync(pid, want, cache: cache)
    assert marks(pid) == [1, 2, 3]

    # Other desired rules: another fingerprint, compared again.
    :ok = Cache.sync_point(cache)

    assert {:ok, %{added: 1, deleted: 0}} =
             NFTables.Port.sync(pid, desired([1, 2, 3, 4]), cache: cache)

    assert marks(pid) == [1, 2, 3, 4]
  end

  defp fingerprint(msgs, chain) do
    rules = for {:add, :rule, %{chain: ^chain} = r} <- msgs, do: r
    {:erlang.phash2(rules, 4_294_967_296), :erlang.phash2({:nfp_sync, rules}, 4_294_967_296)}
  end

  test "comments tell rules apart; a rule given with its handle is replaced" do
    pid = start_port!()
    base = Enum.take(desired([]), 2)

    {:ok, _} =
      NFTables.Port.sync(
        pid,
        base ++ [rule("in", 1, :accept, "one"), rule("in", 1, :accept, "two")]
      )

    [h1, h2] = handles_in_order(pid)

    # Same expressions, other comment: the rule with comment "one" goes.
    assert {:ok, %{added: 0, deleted: 1}} =
             NFTables.Port.sync(pid, base ++ [rule("in", 1, :accept, "two")])

    assert handles_in_order(pid) == [h2]

    {:add, :rule, r} = rule("in", 2, :drop, "two")

    assert {:ok, %{updated: 1, added: 0, deleted: 0}} =
             NFTables.Port.sync(pid, base ++ [{:add, :rule, Map.put(r, :handle, h2)}])

    assert handles_in_order(pid) == [h2]
    assert marks(pid) == [2]
    _ = h1
  end

  defp handles_in_order(pid) do
    {:ok, rules} = NFTables.Port.list(pid, :rule, %{family: :inet, table: "f", chain: "in"})
    Enum.map(rules, & &1.handle)
  end

  test "a changed generation makes it compute again, a bounded number of times" do
    pid = start_port!()
    cache = start_supervised!({Cache, port: pid})
    {:ok, _} = NFTables.Port.sync(pid, desired([1]), cache: cache)
    :ok = Cache.sync_point(cache)

    # The cache stops following: its generation is behind the kernel's.
    :sys.suspend(cache)
    nft!(pid, "add rule inet f in meta mark 42 accept")

    assert {:error, :generation_changed} =
             NFTables.Port.sync(pid, desired([1, 2]), cache: cache, retries: 0)

    task =
      Task.async(fn -> NFTables.Port.sync(pid, desired([1, 2]), cache: cache, retries: 3) end)

    Process.sleep(200)
    :sys.resume(cache)
    assert {:ok, %{added: 1, deleted: 1}} = Task.await(task, 30_000)
    assert marks(pid) == [1, 2]
  end

  test "dry run answers the difference and sends nothing" do
    pid = start_port!()
    {:ok, _} = NFTables.Port.sync(pid, desired([1, 2]))
    {:ok, g} = NFTables.Port.genid(pid)

    assert {:ok, %{added: 1, deleted: 1, msgs: msgs, genid: ^g}} =
             NFTables.Port.sync(pid, desired([1, 3]), dry_run: true)

    assert [{:delete, :rule, %{handle: _}}, {:add, :rule, %{position: _}}] = msgs
    assert {:ok, ^g} = NFTables.Port.genid(pid)
    assert marks(pid) == [1, 2]
  end

  test "a set of 50,000 elements that differs in 100 sends 100 element changes" do
    pid = start_port!(timeout: 120_000)
    cache = start_supervised!({Cache, port: pid})
    n = 50_000

    {:ok, %{added: added}} =
      NFTables.Port.sync(pid, desired([], elements: Enum.to_list(1..n)), cache: cache)

    assert added == n + 6
    :ok = Cache.sync_point(cache, 30_000)
    # 50 gone, 50 new.
    want = Enum.to_list(51..(n + 50))

    assert {:ok, %{added: 50, deleted: 50, msgs: msgs}} =
             NFTables.Port.sync(pid, desired([], elements: want), cache: cache, dry_run: true)

    sent = for {_, :element, %{elements: es}} <- msgs, reduce: 0, do: (acc -> acc + length(es))
    assert sent == 100

    assert {:ok, %{added: 50, deleted: 50}} =
             NFTables.Port.sync(pid, desired([], elements: want), cache: cache)

    :ok = Cache.sync_point(cache, 30_000)
    keys = Cache.elements(cache, :inet, "f", "block") |> Enum.map(& &1.key) |> Enum.sort()
    assert keys == Enum.map(want, &ip/1)
  end

  @tag :slow
  @tag timeout: 900_000
  test "a 1,000,000-element blocklist that differs in 100 entries sends 100 element changes" do
    pid = start_port!(timeout: :infinity, max_frame: 1_073_741_824)
    cache = start_supervised!({Cache, port: pid})
    n = 1_000_000

    {:ok, _} =
      NFTables.Port.sync(pid, desired([], elements: Enum.to_list(1..n)),
        cache: cache,
        timeout: 600_000
      )

    :ok = Cache.sync_point(cache, 300_000)
    want = Enum.to_list(51..(n + 50))

    assert {:ok, %{added: 50, deleted: 50, msgs: msgs}} =
             NFTables.Port.sync(pid, desired([], elements: want), cache: cache, dry_run: true)

    assert 100 ==
             for({_, :element, %{elements: es}} <- msgs, reduce: 0, do: (acc -> acc + length(es)))

    assert {:ok, %{added: 50, deleted: 50}} =
             NFTables.Port.sync(pid, desired([], elements: want), cache: cache)
  end

  test "a desired state it cannot read is refused, naming the message" do
    pid = start_port!()

    assert {:error, "sync: message 0 " <> rest} =
             NFTables.Port.sync(pid, [{:add, :chain, %{family: :inet, table: "nope", name: "c"}}])

    assert rest =~ "its table inet nope is not in the desired state"

    assert {:error, "sync: message 1 " <> rest} =
             NFTables.Port.sync(pid, [
               {:add, :table, %{family: :inet, name: "t"}},
               {:delete, :chain, %{family: :inet, table: "t", name: "c"}}
             ])

    assert rest =~ "made of :add messages"

    if Code.ensure_loaded?(NFTables.Port.Nft) do
      :ok
    else
      assert {:error, :nft_format_unavailable} = NFTables.Port.sync(pid, %{nftables: []})
    end

    # What the port refuses comes back as commit's error.
    assert {:error, %{index: 1, message: "commit: message 1 (add chain): " <> _}} =
             NFTables.Port.sync(pid, [
               {:add, :table, %{family: :inet, name: "t"}},
               {:add, :chain, %{family: :inet, table: "t", name: "c", policy: :bogus}}
             ])

    _ = Sync
  end
end
