defmodule NFTables.RestoreTest do
  # dump/1 of one namespace, restore/2 into a fresh one: nft prints both
  # byte for byte the same, and list/3 agrees on every type (handles,
  # use counts and rule positions aside, which belong to each namespace).
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Slice

  @moduletag :kernel

  # Tables of the other families, through commit: base and regular chains,
  # jumps and gotos, an interval set, a map and a verdict map, lookups,
  # counters, comments.
  defp other_families do
    for {family, hook, l3} <- [
          {:ip, :input, :ip},
          {:ip6, :forward, :ip6},
          {:bridge, :forward, nil},
          {:arp, :input, nil}
        ] do
      t = %{family: family, table: "t_#{family}"}

      key =
        case l3 do
          :ip -> %{key_type: 7, key_len: 4, key: <<192, 0, 2, 1>>}
          :ip6 -> %{key_type: 8, key_len: 16, key: <<0x2001::16, 0xDB8::16, 0::96>>}
          nil -> %{key_type: 19, key_len: 4, key: <<5::32-native>>}
        end

      load =
        case l3 do
          :ip -> [{:payload, %{base: :network, offset: 16, len: 4, dreg: 1}}]
          :ip6 -> [{:payload, %{base: :network, offset: 24, len: 16, dreg: 1}}]
          nil -> [{:meta, %{key: :mark, dreg: 1}}]
        end

      [
        {:add, :table,
         %{family: family, name: t.table, userdata: Slice.comment_udata("#{family}")}},
        {:add, :chain,
         Map.merge(t, %{name: "base", type: "filter", hooknum: hook, prio: -10, policy: :accept})},
        {:add, :chain, Map.merge(t, %{name: "one", userdata: Slice.comment_udata("regular")})},
        {:add, :chain, Map.merge(t, %{name: "two"})},
        {:add, :set,
         Map.merge(t, %{name: "keys", key_type: key.key_type, key_len: key.key_len, id: 1})},
        {:add, :set,
         Map.merge(t, %{
           name: "vm",
           flags: [:map],
           key_type: key.key_type,
           key_len: key.key_len,
           data_type: 0xFFFFFF00,
           data_len: 16,
           id: 2
         })},
        {:add, :set,
         Map.merge(t, %{name: "ranges", flags: [:interval], key_type: 19, key_len: 4, id: 3})},
        {:add, :element, Map.merge(t, %{set: "keys", elements: [%{key: key.key}]})},
        {:add, :element,
         Map.merge(t, %{set: "vm", elements: [%{key: key.key, verdict: :jump, chain: "two"}]})},
        {:add, :element,
         Map.merge(t, %{
           set: "ranges",
           elements: [
             %{key: <<0::32>>, flags: [:interval_end]},
             %{key: <<0x10::32-big>>},
             %{key: <<0x20::32-big>>, flags: [:interval_end]}
           ]
         })},
        {:add, :rule,
         Map.merge(t, %{
           chain: "base",
           exprs:
             load ++
               [
                 {:lookup, %{sreg: 1, set: "keys"}},
                 {:counter, %{}},
                 {:immediate, %{dreg: 0, verdict: :jump, chain: "one"}}
               ]
         })},
        {:add, :rule,
         Map.merge(t, %{
           chain: "base",
           exprs: load ++ [{:lookup, %{sreg: 1, set: "vm", dreg: 0}}],
           userdata: Slice.comment_udata("vmap")
         })},
        {:add, :rule,
         Map.merge(t, %{
           chain: "one",
           exprs: [
             {:meta, %{key: :mark, dreg: 1}},
             {:lookup, %{sreg: 1, set: "ranges"}},
             {:immediate, %{dreg: 0, verdict: :goto, chain: "two"}}
           ]
         })},
        {:add, :rule,
         Map.merge(t, %{
           chain: "two",
           exprs: [{:counter, %{}}, {:immediate, %{dreg: 0, verdict: :return}}]
         })}
      ]
    end
    |> List.flatten()
  end

  @nft_ruleset """
  table inet filter {
  \tcomment "main inet table"
  \tset blocklist {
  \t\ttype ipv4_addr
  \t\tcomment "blocked hosts"
  \t\telements = { 10.0.0.1, 192.168.1.7 comment "bad host" }
  \t}

  \tset nets {
  \t\ttype ipv4_addr
  \t\tflags interval
  \t\telements = { 10.0.0.0/8, 172.16.0.0/12, 192.168.0.0/16 }
  \t}

  \tset ports6 {
  \t\ttype inet_service
  \t\tflags interval
  \t\telements = { 1000-2000, 3000-3999 }
  \t}

  \tset tmo {
  \t\ttype ipv4_addr
  \t\tflags timeout
  \t\ttimeout 1h
  \t}

  \tmap marks {
  \t\ttype ipv4_addr : mark
  \t\telements = { 10.1.1.1 : 0x00000010, 10.1.1.2 : 0x00000020 }
  \t}

  \tmap svc {
  \t\ttype inet_service : verdict
  \t\telements = { 22 : jump ssh, 80 : accept, 443 : goto web, 8080 : drop }
  \t}

  \tchain input {
  \t\ttype filter hook input priority filter; policy drop;
  \t\tcomment "input hook"
  \t\tiifname "lo" accept
  \t\tip saddr @blocklist counter drop comment "drop blocked"
  \t\tip saddr @nets jump lan
  \t\ttcp dport vmap @svc
  \t\tudp dport 53 accept
  \t\ttcp dport 100-200 counter drop
  \t\tmeta mark set ip saddr map @marks
  \t\tmeta mark & 0x0000ff00 == 0x00000100 return
  \t\tip saddr != @nets counter
  \t}

  \tchain lan {
  \t\tip protocol icmp accept
  \t\treturn
  \t}

  \tchain ssh {
  \t\tcounter accept
  \t}

  \tchain web {
  \t\ttcp dport @ports6 drop
  \t\taccept
  \t}

  \tchain output {
  \t\ttype filter hook output priority 10; policy accept;
  \t\tmeta l4proto tcp goto web
  \t}
  }
  table ip t4 {
  \tchain pre {
  \t\ttype filter hook prerouting priority -150; policy accept;
  \t\tip daddr 10.9.9.9 counter
  \t}

  \tchain fwdc {
  \t\ttype filter hook forward priority 0; policy drop;
  \t\tjump helper
  \t}

  \tchain helper {
  \t\tip ttl 1 drop
  \t}
  }
  table ip6 filter6 {
  \tset v6 {
  \t\ttype ipv6_addr
  \t\tflags interval
  \t\telements = { 2001:db8::/32, fe80::/10 }
  \t}

  \tchain input {
  \t\ttype filter hook input priority 0; policy accept;
  \t\tip6 saddr @v6 accept
  \t\tip6 nexthdr ipv6-icmp accept
  \t}
  }
  table bridge br {
  \tchain fwdc {
  \t\ttype filter hook forward priority 0; policy accept;
  \t\tether type ip counter
  \t\tmeta protocol ip6 drop
  \t}
  }
  table arp a {
  \tchain in {
  \t\ttype filter hook input priority 0; policy accept;
  \t\tarp operation 1 accept
  \t}
  }
  """

  # Restores the dump of `source` into a fresh port and compares the two.
  defp assert_restores(source, normalize \\ & &1) do
    assert {:ok, %{genid: genid, msgs: msgs} = dump} = Port.dump(source)
    assert is_integer(genid)
    assert msgs != []

    # The dump holds what list holds (without what the kernel assigns per
    # namespace), in dependency order.
    listed = Slice.list_all!(source)

    # A set without elements lists as `elements: []`; the dump has no
    # message for it.
    listed_nonempty =
      Map.update!(listed, :element, &Enum.reject(&1, fn s -> s.elements == [] end))

    for type <- Slice.types() do
      dumped = for {:add, ^type, attrs} <- msgs, do: attrs

      assert {type, Slice.without_kernel_assigned(dumped)} ==
               {type, Slice.without_kernel_assigned(listed_nonempty[type])}
    end

    # Dependency order: within each table, the table first, then its sets
    # and chains, then elements (verdict maps name chains) and rules.
    rank = %{table: 0, set: 1, chain: 1, element: 2, rule: 2}

    msgs
    |> Enum.group_by(fn {:add, type, attrs} ->
      {attrs.family, if(type == :table, do: attrs.name, else: attrs.table)}
    end)
    |> Enum.each(fn {table, table_msgs} ->
      ranks = Enum.map(table_msgs, fn {:add, type, _} -> rank[type] end)
      assert {table, ranks} == {table, Enum.sort(ranks)}
      assert [{:add, :table, _} | _] = table_msgs
    end)

    target = start_port!()
    assert Port.restore(target, dump) == :ok

    source_nft = nft!(source, "list ruleset")
    assert source_nft != ""
    assert normalize.(nft!(target, "list ruleset")) == normalize.(source_nft)
    assert Slice.comparable(Slice.list_all!(target)) == Slice.comparable(listed)
    target
  end

  test "the slice's ruleset of every family, built with commit, restores identically" do
    source = start_port!()
    assert Port.commit(source, Slice.ruleset() ++ other_families()) == :ok
    assert_restores(source, &Slice.normalize_nft/1)
  end

  test "a ruleset loaded with nft -f restores byte-identically" do
    source = start_port!()
    path = Path.join(System.tmp_dir!(), "nfp_restore_#{System.unique_integer([:positive])}.nft")
    File.write!(path, @nft_ruleset)
    on_exit(fn -> File.rm(path) end)
    nft!(source, ["-f", path])

    # Nothing time-dependent in it: no normalization at all.
    assert_restores(source)
  end

  test "a ruleset with gaps in its rule handles restores, rule order kept" do
    # Rules deleted in the source leave rule handles (and so the positions
    # list reports) that do not exist in the target.
    source = start_port!()

    rule = fn chain, mark ->
      {:add, :rule,
       %{
         family: :ip,
         table: "t",
         chain: chain,
         exprs: [
           {:meta, %{key: :mark, dreg: 1}},
           {:cmp, %{sreg: 1, op: :eq, data: <<mark::32-native>>}},
           {:counter, %{}}
         ]
       }}
    end

    assert {:ok, [_, _ | handles]} =
             Port.commit(
               source,
               [
                 {:add, :table, %{family: :ip, name: "t"}},
                 {:add, :chain, %{family: :ip, table: "t", name: "c"}}
               ] ++
                 Enum.map(1..5, &rule.("c", &1)),
               echo: true
             )

    deletes =
      for h <- Enum.take(handles, 4),
          do: {:delete, :rule, %{family: :ip, table: "t", chain: "c", handle: h}}

    assert Port.commit(source, deletes ++ [rule.("c", 7), rule.("c", 8)]) == :ok

    target = assert_restores(source)

    assert nft!(target, "list ruleset") == """
           table ip t {
           \tchain c {
           \t\tmeta mark 0x00000005 counter packets 0 bytes 0
           \t\tmeta mark 0x00000007 counter packets 0 bytes 0
           \t\tmeta mark 0x00000008 counter packets 0 bytes 0
           \t}
           }
           """
  end

  test "restoring an empty dump is a no-op; restore/2 takes {:ok, dump} and a message list" do
    empty = start_port!()
    assert {:ok, %{msgs: []} = dump} = Port.dump(empty)
    target = start_port!()
    assert Port.restore(target, dump) == :ok
    assert nft!(target, "list ruleset") == ""

    source = start_port!()
    assert Port.commit(source, [{:add, :table, %{family: :inet, name: "x"}}]) == :ok
    {:ok, dump} = Port.dump(source)
    t1 = start_port!()
    t2 = start_port!()
    assert Port.restore(t1, {:ok, dump}) == :ok
    assert Port.restore(t2, dump.msgs) == :ok
    assert nft!(t1, "list ruleset") == "table inet x {\n}\n"
    assert nft!(t2, "list ruleset") == "table inet x {\n}\n"
  end
end
