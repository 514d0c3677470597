defmodule NFTables.HandleApiTest do
  # The handle API (libnftnl one to one): the same slice as
  # declarative_test.exs, built object by object with alloc/set, batched
  # with Batch.new/add/send over a Kernel.Netlink socket, then read back.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.{Batch, Chain, Expr, Rule, Set, SetElem, Table}
  alias NFTables.Port.Kernel.Netlink
  alias NFTables.Slice

  describe "with the kernel" do
    @describetag :kernel

    test "Batch.send creates every object of the slice; list returns what was set" do
      pid = start_port!()
      msgs = Slice.ruleset()

      # Slice.commit_with_handles also checks every set/get/to_map on the way.
      assert Slice.commit_with_handles(pid, msgs) == :ok

      listed = Slice.list_all!(pid)
      expected = Slice.expected(msgs)

      for type <- Slice.types() do
        assert Slice.comparable(listed)[type] == expected[type], "list #{type}"
      end

      assert Slice.normalize_nft(nft!(pid, "list ruleset")) == Slice.ruleset_nft()
    end

    test "the handle API and commit build identical rulesets" do
      by_handles = start_port!()
      by_commit = start_port!()

      assert Slice.commit_with_handles(by_handles, Slice.ruleset()) == :ok
      assert Port.commit(by_commit, Slice.ruleset()) == :ok

      assert Slice.comparable(Slice.list_all!(by_handles)) ==
               Slice.comparable(Slice.list_all!(by_commit))

      assert Slice.normalize_nft(nft!(by_handles, "list ruleset")) ==
               Slice.normalize_nft(nft!(by_commit, "list ruleset"))
    end

    test "a table written by hand: alloc, set, Batch over a socket, list" do
      pid = start_port!()

      assert {:ok, socket} = Netlink.socket_open(pid)
      assert {:ok, table} = Table.alloc(pid)
      assert Table.set(pid, table, :family, :ip6) == :ok
      assert Table.set(pid, table, :name, "hand") == :ok
      assert Table.set(pid, table, :flags, [:dormant]) == :ok

      assert {:ok, chain} = Chain.alloc(pid)

      for {attr, value} <- [
            family: :ip6,
            table: "hand",
            name: "in",
            type: "filter",
            hooknum: :prerouting,
            prio: -300,
            policy: :drop
          ] do
        assert Chain.set(pid, chain, attr, value) == :ok
      end

      assert {:ok, rule} = Rule.alloc(pid)

      for {attr, value} <- [family: :ip6, table: "hand", chain: "in"],
          do: assert(Rule.set(pid, rule, attr, value) == :ok)

      assert {:ok, counter} = Expr.alloc(pid, :counter)
      assert Rule.add_expr(pid, rule, counter) == :ok
      assert {:ok, verdict} = Expr.alloc(pid, :immediate)
      assert Expr.set(pid, verdict, :dreg, 0) == :ok
      assert Expr.set(pid, verdict, :verdict, :accept) == :ok
      assert Rule.add_expr(pid, rule, verdict) == :ok

      assert {:ok, batch} = Batch.new(pid)
      assert Batch.add(pid, batch, :add, :table, table) == {:ok, 0}
      assert Batch.add(pid, batch, :add, :chain, chain) == {:ok, 1}
      assert Batch.add(pid, batch, :add, :rule, rule) == {:ok, 2}
      assert Batch.send(pid, batch, socket) == :ok

      # The batch is gone once sent.
      assert {:error, %{message: message}} = Batch.free(pid, batch)
      assert message =~ "not a live handle"

      assert {:ok, [%{family: :ip6, name: "hand", flags: [:dormant]}]} = Port.list(pid, :table)

      assert {:ok, [%{name: "in", hooknum: :prerouting, prio: -300, policy: :drop}]} =
               Port.list(pid, :chain)

      assert {:ok, [%{chain: "in", exprs: exprs}]} = Port.list(pid, :rule)
      assert exprs == [counter: %{packets: 0, bytes: 0}, immediate: %{dreg: 0, verdict: :accept}]

      assert nft!(pid, "list ruleset") == """
             table ip6 hand {
             \tflags dormant

             \tchain in {
             \t\ttype filter hook prerouting priority raw; policy drop;
             \t\tcounter packets 0 bytes 0 accept
             \t}
             }
             """

      for {module, handle} <- [{Table, table}, {Chain, chain}, {Rule, rule}],
          do: assert(module.free(pid, handle) == :ok)

      assert Netlink.socket_close(pid, socket) == :ok
    end

    test "a batch can be sent over any open socket, and several batches over one" do
      pid = start_port!()
      assert {:ok, s1} = Netlink.socket_open(pid)
      assert {:ok, s2} = Netlink.socket_open(pid)
      assert s1 != s2

      for {name, socket} <- [{"a", s1}, {"b", s2}, {"c", s1}] do
        assert {:ok, table} = Table.alloc(pid)
        assert Table.set(pid, table, :family, :inet) == :ok
        assert Table.set(pid, table, :name, name) == :ok
        assert {:ok, batch} = Batch.new(pid)
        assert Batch.add(pid, batch, :add, :table, table) == {:ok, 0}
        assert Batch.send(pid, batch, socket) == :ok
        assert Table.free(pid, table) == :ok
      end

      assert {:ok, tables} = Port.list(pid, :table)
      assert tables |> Enum.map(& &1.name) |> Enum.sort() == ["a", "b", "c"]

      assert Netlink.socket_close(pid, s1) == :ok
      assert Netlink.socket_close(pid, s2) == :ok
      assert {:error, %{message: message}} = Netlink.socket_close(pid, s1)
      assert message =~ "not a live handle"
    end

    test "delete through the handle API" do
      pid = start_port!()
      assert Port.commit(pid, Slice.ruleset()) == :ok
      {:ok, rules} = Port.list(pid, :rule, %{family: :inet, table: "slice", chain: "gto"})
      [_, drop_rule] = rules

      assert {:ok, socket} = Netlink.socket_open(pid)
      assert {:ok, rule} = Rule.alloc(pid)

      for {attr, value} <- [family: :inet, table: "slice", chain: "gto", handle: drop_rule.handle],
          do: assert(Rule.set(pid, rule, attr, value) == :ok)

      assert {:ok, elements} = Set.alloc(pid)

      for {attr, value} <- [family: :inet, table: "slice", name: "addrs"],
          do: assert(Set.set(pid, elements, attr, value) == :ok)

      assert {:ok, elem} = SetElem.alloc(pid)
      assert SetElem.set(pid, elem, :key, <<10, 0, 0, 1>>) == :ok
      assert Set.add_elem(pid, elements, elem) == :ok

      assert {:ok, batch} = Batch.new(pid)
      assert Batch.add(pid, batch, :delete, :rule, rule) == {:ok, 0}
      assert Batch.add(pid, batch, :delete, :element, elements) == {:ok, 1}
      assert Batch.send(pid, batch, socket) == :ok

      assert {:ok, [remaining]} =
               Port.list(pid, :rule, %{family: :inet, table: "slice", chain: "gto"})

      assert remaining == hd(rules)

      assert {:ok, [%{elements: [%{key: <<10, 0, 0, 2>>}]}]} =
               Port.list(pid, :element, %{family: :inet, table: "slice", set: "addrs"})
    end
  end

  describe "without sending" do
    # Everything but Batch.send works without the kernel's nf_tables, but
    # the port still runs in its own namespace.
    @describetag :kernel

    test "alloc, set, get, unset, to_map and free of a table" do
      pid = start_port!()
      assert {:ok, t} = Table.alloc(pid)
      assert Table.to_map(pid, t) == {:ok, %{}}
      assert Table.set(pid, t, :family, :inet) == :ok
      assert Table.set(pid, t, :name, "x") == :ok
      assert Table.set(pid, t, :userdata, <<1, 2, 3>>) == :ok
      assert Table.set(pid, t, :flags, [:dormant, :owner]) == :ok
      assert Table.get(pid, t, :name) == {:ok, "x"}
      assert Table.get(pid, t, :flags) == {:ok, [:dormant, :owner]}

      assert Table.to_map(pid, t) ==
               {:ok,
                %{family: :inet, name: "x", userdata: <<1, 2, 3>>, flags: [:dormant, :owner]}}

      assert Table.set(pid, t, :name, "y") == :ok
      assert Table.get(pid, t, :name) == {:ok, "y"}
      assert Table.unset(pid, t, :userdata) == :ok
      assert {:error, %{message: message}} = Table.get(pid, t, :userdata)
      assert message =~ "userdata" and message =~ "not set"
      assert Table.to_map(pid, t) == {:ok, %{family: :inet, name: "y", flags: [:dormant, :owner]}}

      assert Table.free(pid, t) == :ok
      assert {:error, %{message: message}} = Table.get(pid, t, :name)
      assert message =~ "#{t}" and message =~ "not a live handle"
    end

    test "every expression kind: alloc, set, to_map" do
      pid = start_port!()

      exprs = [
        payload: %{dreg: 1, base: :network, offset: 16, len: 4},
        payload: %{
          sreg: 1,
          base: :transport,
          offset: 0,
          len: 2,
          csum_type: :inet,
          csum_offset: 16,
          flags: [:l4csum_pseudohdr]
        },
        meta: %{key: :iifname, dreg: 2},
        meta: %{key: :mark, sreg: 3},
        cmp: %{sreg: 1, op: :gte, data: <<1, 2>>},
        immediate: %{dreg: 0, verdict: :goto, chain: "x"},
        immediate: %{dreg: 4, data: <<9, 9, 9, 9>>},
        counter: %{packets: 7, bytes: 700},
        lookup: %{sreg: 1, dreg: 2, set: "m", flags: [:inv]},
        bitwise: %{
          sreg: 1,
          dreg: 1,
          len: 4,
          op: :bool,
          mask: <<255, 0, 0, 0>>,
          xor: <<0, 0, 0, 1>>
        },
        bitwise: %{sreg: 1, dreg: 2, len: 4, op: :lshift, data: <<8, 0, 0, 0>>},
        range: %{sreg: 1, op: :neq, from_data: <<0, 1>>, to_data: <<0, 9>>}
      ]

      for {kind, attrs} <- exprs do
        assert {:ok, e} = Expr.alloc(pid, kind)
        for {attr, value} <- attrs, do: assert(Expr.set(pid, e, attr, value) == :ok)
        assert Expr.to_map(pid, e) == {:ok, {kind, attrs}}
        assert Expr.free(pid, e) == :ok
      end
    end

    test "handles of freed or foreign objects are refused" do
      pid = start_port!()
      assert {:ok, t} = Table.alloc(pid)
      assert {:ok, c} = Chain.alloc(pid)

      assert {:error, %{message: message}} = Chain.set(pid, t, :name, "x")
      assert message =~ "table" and message =~ "chain"

      assert {:ok, b} = Batch.new(pid)
      assert {:error, %{message: message}} = Batch.add(pid, b, :add, :chain, t)
      assert message =~ "table" and message =~ "chain"

      assert Chain.free(pid, c) == :ok
      assert {:error, %{message: message}} = Batch.add(pid, b, :add, :chain, c)
      assert message =~ "not a live handle"
      assert Batch.free(pid, b) == :ok
      assert Port.Control.ping(pid) == {:ok, :pong}
    end
  end
end
