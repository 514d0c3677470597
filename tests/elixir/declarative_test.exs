defmodule NFTables.DeclarativeTest do
  # Every object and expression kind of the slice, created with commit/3
  # and read back with list/3 and with nft itself.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Slice

  @moduletag :kernel

  test "commit creates every object of the slice; list returns what was sent" do
    pid = start_port!()
    msgs = Slice.ruleset()

    assert {:ok, handles} = Port.commit(pid, msgs, echo: true)
    assert length(handles) == length(msgs)

    # Elements have no handle; everything else got a distinct positive one
    # (per type: chains, sets and rules of one table share a counter).
    for {{_verb, type, _attrs}, handle} <- Enum.zip(msgs, handles) do
      if type == :element,
        do: assert(handle == nil),
        else: assert(is_integer(handle) and handle > 0, "#{type}: #{inspect(handle)}")
    end

    listed = Slice.list_all!(pid)
    expected = Slice.expected(msgs)

    for type <- Slice.types() do
      assert Slice.comparable(listed)[type] == expected[type], "list #{type}"
    end

    # The handles echoed are the ones list reports.
    echoed = fn type ->
      for {{_, ^type, attrs}, handle} <- Enum.zip(msgs, handles),
          do: {Map.get(attrs, :chain), Map.get(attrs, :name), handle}
    end

    [table] = listed.table
    assert echoed.(:table) == [{nil, table.name, table.handle}]

    assert Enum.sort(echoed.(:chain)) ==
             Enum.sort(for c <- listed.chain, do: {nil, c.name, c.handle})

    assert Enum.sort(echoed.(:set)) ==
             Enum.sort(for s <- listed.set, do: {nil, s.name, s.handle})

    assert Enum.sort(echoed.(:rule)) ==
             Enum.sort(for r <- listed.rule, do: {r.chain, nil, r.handle})

    assert Slice.normalize_nft(nft!(pid, "list ruleset")) == Slice.ruleset_nft()
  end

  test "list filters by family, table, chain and set" do
    pid = start_port!()
    assert :ok = Port.commit(pid, Slice.ruleset("one") ++ Slice.ruleset("two"))

    assert :ok =
             Port.commit(pid, [
               {:add, :table, %{family: :ip, name: "one"}},
               {:add, :chain, %{family: :ip, table: "one", name: "c"}}
             ])

    assert {:ok, tables} = Port.list(pid, :table, %{family: :inet})
    assert tables |> Enum.map(& &1.name) |> Enum.sort() == ["one", "two"]
    assert {:ok, [%{family: :ip, name: "one"}]} = Port.list(pid, :table, %{family: :ip})
    assert {:ok, []} = Port.list(pid, :table, %{family: :ip6})

    assert {:ok, chains} = Port.list(pid, :chain, %{family: :inet, table: "two"})

    assert Enum.map(chains, &{&1.table, &1.name}) |> Enum.sort() ==
             Enum.sort(for c <- ["input", "output", "jmp", "gto"], do: {"two", c})

    assert {:ok, rules} = Port.list(pid, :rule, %{family: :inet, table: "one", chain: "gto"})
    assert Enum.map(rules, &{&1.table, &1.chain}) == [{"one", "gto"}, {"one", "gto"}]

    assert {:ok, [first, second]} =
             Port.list(pid, :rule, %{family: :inet, table: "two", chain: "gto"})

    assert first.exprs == [
             meta: %{key: :l4proto, dreg: 1},
             cmp: %{sreg: 1, op: :neq, data: <<6>>},
             immediate: %{dreg: 0, verdict: :return}
           ]

    assert second.exprs == [immediate: %{dreg: 0, verdict: :drop}]

    assert {:ok, [elements]} =
             Port.list(pid, :element, %{family: :inet, table: "two", set: "ports"})

    assert %{family: :inet, table: "two", set: "ports"} = elements
    assert length(elements.elements) == 4

    assert {:ok, sets} = Port.list(pid, :set, %{family: :inet, table: "one"})
    assert sets |> Enum.map(& &1.name) |> Enum.sort() == ~w(addrs marks nets ports tmo)
  end

  test "a set added without :id, as list returns it, is accepted" do
    # list/3 never returns :id (the kernel does not keep it), and list's maps
    # must be accepted back by commit/3; nft sends an id for every new set
    # because the kernel insists on NFTA_SET_ID, so the port has to as well.
    pid = start_port!()

    assert Port.commit(pid, [
             {:add, :table, %{family: :inet, name: "filter"}},
             {:add, :set, %{family: :inet, table: "filter", name: "blk", key_type: 7, key_len: 4}}
           ]) == :ok

    assert {:ok, [%{name: "blk", key_type: 7, key_len: 4}]} = Port.list(pid, :set)
  end

  test "each verdict and immediate data round-trips on its own" do
    pid = start_port!()

    assert :ok =
             Port.commit(pid, [
               {:add, :table, %{family: :ip, name: "v"}},
               {:add, :chain,
                %{
                  family: :ip,
                  table: "v",
                  name: "base",
                  type: "filter",
                  hooknum: :forward,
                  prio: -5,
                  policy: :accept
                }},
               {:add, :chain, %{family: :ip, table: "v", name: "target"}}
             ])

    verdicts = [
      %{dreg: 0, verdict: :accept},
      %{dreg: 0, verdict: :drop},
      %{dreg: 0, verdict: :return},
      %{dreg: 0, verdict: :jump, chain: "target"},
      %{dreg: 0, verdict: :goto, chain: "target"},
      %{dreg: 1, data: <<1, 2, 3, 4>>},
      %{dreg: 1, data: <<0xAB>>}
    ]

    msgs =
      for attrs <- verdicts do
        {:add, :rule, %{family: :ip, table: "v", chain: "base", exprs: [{:immediate, attrs}]}}
      end

    assert {:ok, handles} = Port.commit(pid, msgs, echo: true)
    assert {:ok, rules} = Port.list(pid, :rule, %{family: :ip, table: "v", chain: "base"})
    assert Enum.map(rules, & &1.handle) == handles
    assert Enum.map(rules, & &1.exprs) == Enum.map(verdicts, &[immediate: &1])

    assert {:ok, [base, target]} = Port.list(pid, :chain, %{family: :ip, table: "v"})
    assert %{name: "base", prio: -5, hooknum: :forward, flags: [:base]} = base
    assert target == %{family: :ip, table: "v", name: "target", handle: target.handle, use: 2}
  end

  test "base chains of the arp family hook input and output" do
    # The arp family has hooks of its own: NF_ARP_IN 0, NF_ARP_OUT 1,
    # NF_ARP_FORWARD 2 (not the inet family's numbers).
    pid = start_port!()

    assert Port.commit(pid, [
             {:add, :table, %{family: :arp, name: "a"}},
             {:add, :chain,
              %{
                family: :arp,
                table: "a",
                name: "in",
                type: "filter",
                hooknum: :input,
                prio: 0,
                policy: :accept
              }},
             {:add, :chain,
              %{
                family: :arp,
                table: "a",
                name: "out",
                type: "filter",
                hooknum: :output,
                prio: 0,
                policy: :accept
              }}
           ]) == :ok

    assert nft!(pid, "list ruleset") == """
           table arp a {
           \tchain in {
           \t\ttype filter hook input priority filter; policy accept;
           \t}

           \tchain out {
           \t\ttype filter hook output priority filter; policy accept;
           \t}
           }
           """

    assert {:ok, chains} = Port.list(pid, :chain, %{family: :arp})
    assert Enum.map(chains, &{&1.name, &1.hooknum}) == [{"in", :input}, {"out", :output}]
  end

  test "an arp base chain made by nft lists with its own hook" do
    pid = start_port!()
    nft!(pid, ["add", "table", "arp", "a"])
    nft!(pid, ["add", "chain", "arp", "a", "in", "{ type filter hook input priority 0; }"])
    assert {:ok, [%{name: "in", hooknum: :input}]} = Port.list(pid, :chain, %{family: :arp})
  end

  defp mark_rule(table, chain, mark, extra \\ %{}) do
    {:add, :rule,
     Map.merge(
       %{
         family: :ip,
         table: table,
         chain: chain,
         exprs: [
           {:meta, %{key: :mark, dreg: 1}},
           {:cmp, %{sreg: 1, op: :eq, data: <<mark::32-native>>}},
           {:counter, %{}}
         ]
       },
       extra
     )}
  end

  test "list's maps commit back into a fresh namespace, also after rules were deleted" do
    # Deleting rules leaves gaps in the rule handles, so a position the
    # kernel reports in one namespace names no rule in another.
    source = start_port!()

    assert {:ok, [_, _ | handles]} =
             Port.commit(
               source,
               [
                 {:add, :table, %{family: :ip, name: "t"}},
                 {:add, :chain, %{family: :ip, table: "t", name: "c"}}
               ] ++ Enum.map(1..5, &mark_rule("t", "c", &1)),
               echo: true
             )

    deletes =
      for h <- Enum.take(handles, 4),
          do: {:delete, :rule, %{family: :ip, table: "t", chain: "c", handle: h}}

    assert Port.commit(source, deletes ++ [mark_rule("t", "c", 7), mark_rule("t", "c", 8)]) == :ok

    listed = Slice.list_all!(source)
    msgs = for type <- [:table, :chain, :rule], attrs <- listed[type], do: {:add, type, attrs}

    target = start_port!()
    assert Port.commit(target, msgs) == :ok
    assert nft!(target, "list ruleset") == nft!(source, "list ruleset")
  end

  test "insert, replace and add with a position; flush; destroy" do
    pid = start_port!()

    assert {:ok, [_, _, first]} =
             Port.commit(
               pid,
               [
                 {:add, :table, %{family: :ip, name: "t"}},
                 {:add, :chain, %{family: :ip, table: "t", name: "c"}},
                 mark_rule("t", "c", 1)
               ],
               echo: true
             )

    {:add, :rule, insert} = mark_rule("t", "c", 2, %{position: first})
    {:add, :rule, replace} = mark_rule("t", "c", 3, %{handle: first})
    after_first = mark_rule("t", "c", 4, %{position: first})

    assert {:ok, [inserted, ^first, added]} =
             Port.commit(pid, [{:insert, :rule, insert}, {:replace, :rule, replace}, after_first],
               echo: true
             )

    assert inserted not in [first, added]

    assert {:ok, rules} = Port.list(pid, :rule, %{family: :ip, table: "t", chain: "c"})
    assert Enum.map(rules, & &1.handle) == [inserted, first, added]

    assert Enum.map(rules, fn %{exprs: [_, {:cmp, %{data: <<m::32-native>>}}, _]} -> m end) ==
             [2, 3, 4]

    assert Port.commit(pid, [{:flush, :chain, %{family: :ip, table: "t", name: "c"}}]) == :ok
    assert Port.list(pid, :rule) == {:ok, []}

    assert Port.commit(pid, [
             {:destroy, :table, %{family: :ip, name: "missing"}},
             {:destroy, :chain, %{family: :ip, table: "t", name: "c"}}
           ]) == :ok

    assert Port.list(pid, :chain) == {:ok, []}
    assert Port.commit(pid, [{:flush, :ruleset, %{}}]) == :ok
    assert nft!(pid, "list ruleset") == ""
  end

  test "genid: a commit against a stale generation aborts, and nothing of it lands" do
    pid = start_port!()
    assert {:ok, genid} = Port.genid(pid)
    assert Port.commit(pid, [{:add, :table, %{family: :ip, name: "a"}}], genid: genid) == :ok
    assert {:ok, newer} = Port.genid(pid)
    assert newer > genid

    assert Port.commit(pid, [{:add, :table, %{family: :ip, name: "b"}}], genid: genid) ==
             {:error, :generation_changed}

    assert {:ok, [%{name: "a"}]} = Port.list(pid, :table)
    assert Port.genid(pid) == {:ok, newer}
  end
end
