defmodule NFTables.Port.NftObjectsTest do
  @moduledoc """
  The object half of the nft translator (`NFTables.Port.Nft.Objects`,
  `Elements`, `Udata`): tables, chains, sets and maps with their elements,
  flowtables and stateful objects, both ways.

  The kernel tests load every ruleset of nftables' own test suite
  (`../shared/testdata/rulesets/`), of ours (`tests/elixir/rulesets/`) and
  one more below with `nft -f` in a fresh namespace, dump it through the
  port, and check against nft itself:

    * up: every object of `nft -j list ruleset` other than rules equals
      `Objects.up/2` of the matching message (the port's added keys
      stripped), handles included;
    * down: `Objects.down/3` of the port's JSON of each object gives the
      messages of the dump (handles, ids and what the kernel adds aside).
  """
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.Nft.{Elements, Json, Objects, Udata}

  @shared Path.expand("../../../shared/testdata/rulesets", __DIR__)
  @ours Path.expand("rulesets", __DIR__)

  # What the rulesets above leave out: comments on tables and chains,
  # policies, netdev devices, every stateful object kind this kernel has,
  # set options (size, policy, timeouts, gc-interval, auto-merge, dynamic),
  # open-ended and merged intervals, element timeouts, comments and
  # catch-alls, string wildcards, typeof sets. (No dormant table: nft
  # 1.0.6 -j prints a freed string for table flags.)
  @extra """
  table inet extra {
    comment "the table"
    counter c1 { packets 1 bytes 2; comment "a counter" }
    quota q1 { over 100 mbytes used 10 bytes }
    quota q2 { 5000 bytes }
    limit l1 { rate 10/second burst 5 packets }
    limit l2 { rate over 1 mbytes/second burst 10 kbytes }
    limit l3 { rate 3/hour }
    synproxy sp { mss 1460 wscale 7 timestamp sack-perm }
    synproxy sp2 { mss 1400 wscale 2 }
    ct helper h { type "ftp" protocol tcp; l3proto ip; }
    ct helper h6 { type "sip" protocol udp; l3proto ip6; }
    ct timeout to { protocol tcp; l3proto ip; policy = { established: 100, close: 4 }; }
    ct timeout tu { protocol udp; l3proto ip; policy = { replied: 30 }; }
    ct expectation e { protocol tcp; dport 22; timeout 3s; size 4; l3proto ip; }
    set s { type ipv4_addr; flags dynamic,timeout; timeout 1m; gc-interval 30s; size 100; policy memory; comment "sc"; }
    set s2 { type ipv4_addr; flags interval; auto-merge; elements = { 1.2.3.0/24, 1.2.4.0/24, 10.0.0.1-10.0.0.5, 255.255.255.0/24 } }
    set s3 { type ipv4_addr; flags interval; elements = { 0.0.0.0/8, 10.0.0.0/8 comment "ten", 192.168.1.1 } }
    set s4 { type ipv4_addr; flags timeout; elements = { 1.1.1.1 timeout 1h comment "one", 2.2.2.2 } }
    set s5 { type ifname; flags interval; elements = { "eth*", "lo", "veth1" } }
    set s6 { type inet_service; flags interval; elements = { 22, 80-90, 1024-65535 } }
    set s7 { type mark; elements = { 1, 256, 65536 } }
    set s8 { typeof meta mark; elements = { 1, 2 } }
    set s9 { type ipv6_addr; flags interval; elements = { ::1, 2001:db8::/32 } }
    set s10 { type ipv4_addr . inet_service; flags interval; elements = { 10.0.0.0/8 . 22-25, 192.168.0.1 . 80 } }
    set s11 { type ipv4_addr; flags constant; elements = { 9.9.9.9, 8.8.8.8 } }
    map m { type ipv4_addr : counter; elements = { 1.1.1.1 : "c1" } }
    map m2 { type ipv4_addr : verdict; elements = { 1.1.1.1 : accept, 2.2.2.2 : goto c2, * : drop } }
    map m3 { type ipv4_addr : ipv4_addr . inet_service; elements = { 1.1.1.1 : 2.2.2.2 . 80 } }
    map m4 { type inet_service : mark; flags interval; elements = { 10-20 : 3, * : 5 } }
    map m5 {
      type ipv4_addr : interval ipv4_addr
      flags interval
      elements = { 10.0.0.0/8 : 1.1.1.1-1.1.1.10, 192.168.0.0/16 : 2.2.2.0/24 }
    }
    chain c { type filter hook input priority filter + 5; policy drop; comment "chc"; }
    chain c2 { comment "regular"; }
    chain c3 { type nat hook postrouting priority srcnat; policy accept; }
    chain c4 { type route hook output priority mangle; policy accept; }
  }
  table netdev nd {
    chain ing { type filter hook ingress devices = { lo } priority -100; policy accept; }
  }
  table arp a {
    chain o { type filter hook output priority 0; policy accept; }
  }
  table bridge b {
    chain p { type filter hook prerouting priority -300; policy accept; }
  }
  """

  describe "Udata" do
    test "parses and builds TLVs; a TLV past the end is an error" do
      bin = <<0, 4, 2, 0, 0, 0, 7, 3, ?s, ?c, 0>>
      assert {:ok, [{0, <<2, 0, 0, 0>>}, {7, "sc\0"}]} = Udata.parse(bin)
      assert Udata.build([{0, <<2, 0, 0, 0>>}, {7, "sc\0"}]) == bin
      assert {:error, msg} = Udata.parse(<<0, 9, 1>>)
      assert msg =~ "runs past the end"
    end

    test "a set's user data both ways, in nft's order" do
      {:ok, info} =
        Udata.set_up(
          <<0, 4, 1, 0, 0, 0, 1, 4, 0, 0, 0, 0, 2, 4, 1, 0, 0, 0, 6, 4, 0, 0, 0, 0, 7, 2, ?x, 0>>
        )

      assert info.key_byteorder == :host
      assert info.data_byteorder == :invalid
      assert info.merge
      assert info.comment == "x"
      assert info.data_interval == false

      assert Udata.set_down(Map.put(info, :map_data, true)) ==
               <<0, 4, 1, 0, 0, 0, 1, 4, 0, 0, 0, 0, 2, 4, 1, 0, 0, 0, 6, 4, 0, 0, 0, 0, 7, 2, ?x,
                 0>>

      # an object map writes its data interval but no data byte order
      assert Udata.set_down(%{key_byteorder: :big, has_data: true}) ==
               <<0, 4, 2, 0, 0, 0, 6, 4, 0, 0, 0, 0>>
    end

    test "comments and element user data" do
      assert Udata.comment(<<0, 3, ?h, ?i, 0>>) == "hi"
      assert Udata.comment(nil) == nil
      assert Udata.comment_udata("hi") == <<0, 3, ?h, ?i, 0>>

      assert Udata.elem_up(<<0, 2, ?a, 0, 1, 4, 1, 0, 0, 0>>) == %{
               comment: "a",
               interval_open: true
             }

      assert Udata.elem_down("a", true) == <<0, 2, ?a, 0, 1, 4, 1, 0, 0, 0>>
      assert Udata.elem_down(nil, false) == nil
    end
  end

  describe "Elements" do
    defp ipv4_interval(extra \\ %{}),
      do:
        Map.merge(
          %{key_types: ["ipv4_addr"], key_len: 4, key_byteorder: :big, flags: [:interval]},
          extra
        )

    test "an interval set: start and end elements, the first segment, an open end" do
      si = ipv4_interval()

      {:ok, elems} =
        Elements.down(si, [
          %{prefix: %{addr: "10.0.0.0", len: 8}},
          "192.168.0.1",
          %{range: ["200.0.0.0", "255.255.255.255"]}
        ])

      assert elems == [
               %{key: <<0, 0, 0, 0>>, flags: [:interval_end]},
               %{key: <<10, 0, 0, 0>>},
               %{key: <<11, 0, 0, 0>>, flags: [:interval_end]},
               %{key: <<192, 168, 0, 1>>},
               %{key: <<192, 168, 0, 2>>, flags: [:interval_end]},
               %{key: <<200, 0, 0, 0>>, userdata: <<1, 4, 1, 0, 0, 0>>}
             ]

      # listing merges them back (the kernel keeps them in any order)
      assert Elements.up(si, Enum.reverse(elems)) == [
               %{prefix: %{addr: "10.0.0.0", len: 8}},
               "192.168.0.1",
               %{range: ["200.0.0.0", "255.255.255.255"]}
             ]

      assert {:ok, [_, _, _]} =
               Elements.down(si, [%{prefix: %{addr: "10.0.0.0", len: 8}}], first_segment: true)

      assert {:ok, [_, _]} =
               Elements.down(si, [%{prefix: %{addr: "10.0.0.0", len: 8}}], first_segment: false)
    end

    test "auto-merge merges adjacent and overlapping intervals; without it they stay" do
      json = [
        %{prefix: %{addr: "10.0.0.0", len: 24}},
        %{prefix: %{addr: "10.0.1.0", len: 24}},
        "10.0.0.7"
      ]

      {:ok, merged} = Elements.down(ipv4_interval(%{merge: true}), json, first_segment: false)
      assert merged == [%{key: <<10, 0, 0, 0>>}, %{key: <<10, 0, 2, 0>>, flags: [:interval_end]}]
      {:ok, kept} = Elements.down(ipv4_interval(), Enum.take(json, 2), first_segment: false)
      assert length(kept) == 4
    end

    test "string wildcards, concatenated intervals, catch-all, element attributes" do
      si = %{key_types: ["ifname"], key_len: 16, key_byteorder: :host, flags: [:interval]}
      {:ok, elems} = Elements.down(si, ["eth*"], first_segment: false)
      assert [%{key: "eth" <> _}, %{key: "eti" <> _, flags: [:interval_end]}] = elems
      assert Elements.up(si, elems) == ["eth*"]

      cat = %{
        key_types: ["ipv4_addr", "inet_service"],
        key_len: 8,
        flags: [:interval, :concat],
        field_len: [4, 2]
      }

      {:ok, [e]} =
        Elements.down(cat, [
          %{concat: [%{prefix: %{addr: "10.0.0.0", len: 8}}, %{range: [22, 25]}]}
        ])

      assert e == %{
               key: <<10, 0, 0, 0, 0, 22, 0, 0>>,
               key_end: <<10, 255, 255, 255, 0, 25, 0, 0>>
             }

      assert Elements.up(cat, [e]) == [
               %{concat: [%{prefix: %{addr: "10.0.0.0", len: 8}}, %{range: [22, 25]}]}
             ]

      map = %{
        key_types: ["ipv4_addr"],
        key_len: 4,
        key_byteorder: :big,
        flags: [:map],
        data_type: "verdict"
      }

      json = [
        [%{elem: %{val: "1.1.1.1", timeout: 60, comment: "x"}}, %{jump: %{target: "c"}}],
        ["*", %{drop: nil}]
      ]

      {:ok, elems} = Elements.down(map, json)

      assert elems == [
               %{
                 key: <<1, 1, 1, 1>>,
                 timeout: 60_000,
                 userdata: <<0, 2, ?x, 0>>,
                 verdict: :jump,
                 chain: "c"
               },
               %{flags: [:catchall], verdict: :drop}
             ]

      assert Elements.up(map, Enum.reverse(elems)) == json
    end

    test "bad elements are errors that name the element" do
      si = ipv4_interval()
      assert {:error, msg} = Elements.down(si, ["1.1.1.1", "not an address"])
      assert msg =~ "element 1"
      assert {:error, msg} = Elements.down(si, [%{range: ["2.0.0.0", "1.0.0.0"]}])
      assert msg =~ "start after its end"
      cat = %{key_types: ["ipv4_addr", "inet_service"], key_len: 8, flags: []}
      assert {:error, msg} = Elements.down(cat, ["1.1.1.1"])
      assert msg =~ "not a concatenation of 2 values"

      assert {:error, _} =
               Elements.down(
                 %{key_types: ["ipv4_addr"], key_len: 4, flags: [:map], data_type: "verdict"},
                 [["1.1.1.1", %{nope: nil}]]
               )
    end

    test "stateful statements both ways" do
      for stmt <- [
            %{counter: %{packets: 3, bytes: 4}},
            %{limit: %{rate: 1, burst: 5, per: "second"}},
            %{
              limit: %{
                rate: 2,
                burst: 10,
                per: "minute",
                rate_unit: "mbytes",
                burst_unit: "kbytes",
                inv: true
              }
            },
            %{quota: %{val: 5, val_unit: "mbytes", used: 2, used_unit: "kbytes", inv: true}},
            %{"ct count": %{val: 4, inv: true}}
          ] do
        assert {:ok, expr} = Elements.stmt_down(stmt)
        assert Elements.stmt_json(expr, false) == stmt
      end

      assert {:error, _} = Elements.stmt_down(%{log: %{}})
    end
  end

  describe "Objects.down without the kernel" do
    test "objects nft 1.0.6 would send" do
      assert {:ok,
              [
                {:add, :secmark,
                 %{ctx: "system_u:object_r:x:s0", name: "s", family: :inet, table: "t"}}
              ]} =
               Objects.down(:add, %{
                 secmark: %{
                   family: "inet",
                   table: "t",
                   name: "s",
                   context: "system_u:object_r:x:s0"
                 }
               })

      assert {:ok, [{:delete, :chain, %{family: :ip, table: "t", handle: 7}}]} =
               Objects.down(:delete, %{chain: %{family: "ip", table: "t", handle: 7}})

      assert {:ok, [{:flush, :element, %{family: :ip, table: "t", set: "s"}}]} =
               Objects.down(:flush, %{set: %{family: "ip", table: "t", name: "s"}})

      assert {:ok, [{:create, :flowtable, ft}]} =
               Objects.down(:create, %{
                 flowtable: %{
                   family: "inet",
                   table: "t",
                   name: "f",
                   hook: "ingress",
                   prio: 10,
                   dev: ["lo", "eth0"],
                   counter: true
                 }
               })

      assert ft.devices == ["lo", "eth0"] and ft.flags == [:counter] and ft.hooknum == :ingress

      assert {:ok, [{:add, :chain, c}]} =
               Objects.down(:add, %{
                 chain: %{
                   family: "inet",
                   table: "t",
                   name: "c",
                   type: "filter",
                   hook: "input",
                   prio: "filter - 5",
                   policy: "drop"
                 }
               })

      assert c.prio == -5 and c.policy == :drop

      # elements of a set added in the same document
      {:ok, msgs} =
        Objects.down(:add, %{
          set: %{family: "ip", table: "t", name: "s", type: "ipv4_addr", flags: ["interval"]}
        })

      ctx = Objects.remember(%{}, msgs)

      assert {:ok, [{:add, :element, %{elements: [_, _, _]}}]} =
               Objects.down(
                 :add,
                 %{
                   element: %{
                     family: "ip",
                     table: "t",
                     name: "s",
                     elem: [%{prefix: %{addr: "10.0.0.0", len: 8}}]
                   }
                 },
                 ctx
               )
    end

    test "bad objects are errors with a path" do
      assert {:error, [:table, :family], msg} =
               Objects.down(:add, %{table: %{family: "inet6", name: "t"}})

      assert msg =~ "unknown family"

      assert {:error, [:set, :flags], _} =
               Objects.down(:add, %{
                 set: %{family: "ip", table: "t", name: "s", type: "ipv4_addr", flags: ["fast"]}
               })

      assert {:error, [:set, :type], _} =
               Objects.down(:add, %{
                 set: %{family: "ip", table: "t", name: "s", type: "no_such_type"}
               })

      assert {:error, [:element, :name], msg} =
               Objects.down(:add, %{
                 element: %{family: "ip", table: "t", name: "nope", elem: ["1.1.1.1"]}
               })

      assert msg =~ "not known"

      assert {:error, [:"ct timeout", :policy], _} =
               Objects.down(:add, %{
                 "ct timeout": %{
                   family: "ip",
                   table: "t",
                   name: "x",
                   protocol: "tcp",
                   policy: %{bogus: 1}
                 }
               })

      assert {:error, [:counter], _} =
               Objects.down(:reset, %{counter: %{family: "ip", table: "t", name: "c"}})

      assert {:error, [:table], msg} = Objects.down(:insert, %{table: %{family: "ip", name: "t"}})
      assert msg =~ "rules only"
      assert {:error, [], _} = Objects.down(:add, %{table: %{}, chain: %{}})
      assert {:error, [:table], _} = Objects.down(:add, %{table: "t"})
    end
  end

  describe "Objects.up without the kernel" do
    test "flowtables, secmarks, tunnels, handles" do
      assert Objects.up(
               {:add, :flowtable,
                %{
                  family: :inet,
                  table: "t",
                  name: "f",
                  handle: 3,
                  hooknum: :ingress,
                  prio: 10,
                  devices: ["lo", "eth0"],
                  flags: [:counter]
                }}
             ) ==
               %{
                 flowtable: %{
                   family: "inet",
                   table: "t",
                   name: "f",
                   handle: 3,
                   hook: "ingress",
                   prio: 10,
                   dev: ["lo", "eth0"],
                   counter: true
                 }
               }

      assert Objects.up(
               {:add, :secmark,
                %{family: :ip, table: "t", name: "s", ctx: "system_u:object_r:x:s0"}}
             ) ==
               %{
                 secmark: %{
                   family: "ip",
                   table: "t",
                   name: "s",
                   context: "system_u:object_r:x:s0"
                 }
               }

      assert %{tunnel: %{name: "tu"}} =
               Objects.up({:add, :tunnel, %{family: :ip, table: "t", name: "tu"}})

      assert Objects.up({:add, :element, %{family: :ip, table: "t", set: "s", elements: []}}) ==
               nil

      assert Objects.up(
               {:add, :set,
                %{
                  family: :ip,
                  table: "t",
                  name: "__set0",
                  flags: [:anonymous, :constant],
                  key_type: 7,
                  key_len: 4
                }}
             ) == nil

      # the port's added keys for what nft 1.0.6 -j loses, and strip_additions
      chain =
        {:add, :chain,
         %{
           family: :netdev,
           table: "t",
           name: "c",
           hooknum: :ingress,
           prio: 0,
           type: "filter",
           policy: :accept,
           devices: ["lo", "eth0"],
           userdata: Udata.comment_udata("x")
         }}

      assert %{chain: %{dev: ["lo", "eth0"], comment: "x"}} = Objects.up(chain)
      refute Map.has_key?(Objects.strip_additions(Objects.up(chain)).chain, :dev)

      set =
        {:add, :set,
         %{
           family: :ip,
           table: "t",
           name: "s",
           flags: [:eval],
           key_type: 7,
           key_len: 4,
           userdata: <<0, 4, 2, 0, 0, 0>>
         }}

      assert %{set: %{dynamic: true, type: "ipv4_addr"}} = Objects.up(set)
      assert {:ok, [{:add, :set, %{flags: [:eval]}}]} = Objects.down(:add, Objects.up(set))
    end
  end

  # ---------------------------------------------------------------------
  # against the kernel and nft itself

  @tag :kernel
  @tag timeout: 900_000
  test "up and down of every object of every ruleset agree with nft and the kernel" do
    extra =
      Path.join(System.tmp_dir!(), "nfp_objects_extra_#{System.unique_integer([:positive])}.nft")

    File.write!(extra, @extra)

    files =
      (Path.wildcard(Path.join(@shared, "*.nft")) ++ Path.wildcard(Path.join(@ours, "*.nft")))
      |> Enum.sort()
      |> Kernel.++([extra])

    results =
      for file <- files do
        {Path.basename(file), check_file(file)}
      end

    File.rm(extra)

    loaded = for {name, {:ok, r}} <- results, do: {name, r}
    skipped = for {name, :skip} <- results, do: name
    up_total = loaded |> Enum.map(fn {_, r} -> r.objects end) |> Enum.sum()
    up_ok = loaded |> Enum.map(fn {_, r} -> r.objects - length(r.up_fail) end) |> Enum.sum()
    down_total = loaded |> Enum.map(fn {_, r} -> r.downs end) |> Enum.sum()
    down_ok = loaded |> Enum.map(fn {_, r} -> r.downs - length(r.down_fail) end) |> Enum.sum()
    files_ok = Enum.count(loaded, fn {_, r} -> r.up_fail == [] and r.down_fail == [] end)

    IO.puts(
      "\nnft objects: #{files_ok} of #{length(loaded)} rulesets agree (#{length(skipped)} not loadable); " <>
        "up: #{up_ok} of #{up_total} objects equal nft -j; down: #{down_ok} of #{down_total} give the dump's messages"
    )

    nft_total = loaded |> Enum.map(fn {_, r} -> r.nft_downs end) |> Enum.sum()
    nft_ok = loaded |> Enum.map(fn {_, r} -> r.nft_downs - length(r.nft_fail) end) |> Enum.sum()

    IO.puts(
      "nft objects: down of nft's own JSON: #{nft_ok} of #{nft_total} objects (those nft -j -f loads) give what nft sent"
    )

    anon_total = loaded |> Enum.map(fn {_, r} -> r.anons end) |> Enum.sum()

    anon_ok =
      anon_total - (loaded |> Enum.map(fn {_, r} -> length(r.anon_fail) end) |> Enum.sum())

    IO.puts(
      "nft objects: anonymous sets of rules: #{anon_ok} of #{anon_total} rebuilt as the dump has them"
    )

    failures =
      for {name, r} <- loaded, f <- r.up_fail ++ r.down_fail ++ r.nft_fail ++ r.anon_fail do
        "#{name}: " <> inspect(f, limit: :infinity, printable_limit: 500)
      end

    assert failures == [], Enum.join(failures, "\n")
    assert up_total > 200
  end

  @tag :kernel
  test "deletes, destroys and flushes that down makes are what the kernel takes" do
    port = start_port!()

    path =
      Path.join(System.tmp_dir!(), "nfp_objects_del_#{System.unique_integer([:positive])}.nft")

    File.write!(path, @extra)
    nft!(port, ["-f", path])
    File.rm(path)
    {:ok, %{msgs: msgs}} = Port.dump(port)

    sets =
      for {_, :set, a} <- msgs, into: %{}, do: {{a.family, a.table, a.name}, Objects.set_info(a)}

    commit = fn verb, obj, ctx ->
      assert {:ok, m} = Objects.down(verb, obj, ctx)
      assert :ok = Port.commit(port, m), "#{verb} #{inspect(obj)}: #{inspect(m)}"
    end

    t = %{family: "inet", table: "extra"}
    # intervals, a single value, a string wildcard, a concatenated interval
    commit.(:delete, %{element: Map.merge(t, %{name: "s6", elem: [%{range: [80, 90]}, 22]})}, %{
      sets: sets
    })

    commit.(:delete, %{element: Map.merge(t, %{name: "s5", elem: ["eth*"]})}, %{sets: sets})

    commit.(
      :delete,
      %{
        element:
          Map.merge(t, %{
            name: "s10",
            elem: [%{concat: [%{prefix: %{addr: "10.0.0.0", len: 8}}, %{range: [22, 25]}]}]
          })
      },
      %{sets: sets}
    )

    commit.(:delete, %{element: Map.merge(t, %{name: "m2", elem: ["*"]})}, %{sets: sets})
    # and add back: an interval set that has elements gets no first segment
    commit.(:add, %{element: Map.merge(t, %{name: "s6", elem: [%{range: [100, 200]}]})}, %{
      sets: sets,
      first_segment: false
    })

    listing = nft!(port, ["list", "table", "inet", "extra"]) |> String.replace(~r/\s+/, " ")
    assert listing =~ ~r/set s6 \{[^}]*elements = \{ 100-200, 1024-65535 \}/s
    assert listing =~ ~r/set s5 \{[^}]*elements = \{ "lo", "veth1" \}/s
    assert listing =~ ~r/set s10 \{[^}]*elements = \{ 192.168.0.1 . 80 \}/s
    refute listing =~ "* : drop"

    commit.(:flush, %{set: Map.put(t, :name, "s3")}, %{})
    commit.(:flush, %{chain: Map.put(t, :name, "c")}, %{})
    commit.(:delete, %{map: Map.put(t, :name, "m")}, %{})
    {:ok, [%{handle: h}]} = Port.list(port, :counter, %{family: :inet, table: "extra"})
    commit.(:delete, %{counter: Map.put(t, :handle, h)}, %{})
    commit.(:destroy, %{quota: Map.put(t, :name, "q1")}, %{})
    commit.(:destroy, %{quota: Map.put(t, :name, "no_such_quota")}, %{})
    commit.(:delete, %{"ct helper": Map.put(t, :name, "h")}, %{})
    commit.(:delete, %{"ct timeout": Map.put(t, :name, "to")}, %{})
    commit.(:delete, %{"ct expectation": Map.put(t, :name, "e")}, %{})
    commit.(:delete, %{synproxy: Map.put(t, :name, "sp")}, %{})
    commit.(:delete, %{limit: Map.put(t, :name, "l1")}, %{})
    # m2 jumps to c2: it goes first
    commit.(:delete, %{map: Map.put(t, :name, "m2")}, %{})
    commit.(:delete, %{chain: Map.put(t, :name, "c2")}, %{})
    listing = nft!(port, ["list", "table", "inet", "extra"]) |> String.replace(~r/\s+/, " ")
    assert listing =~ ~r/set s3 \{\s*type ipv4_addr\s*flags interval\s*\}/s

    for gone <- [
          "map m ",
          "map m2",
          "counter c1",
          "quota q1",
          "ct helper h ",
          "ct timeout to",
          "ct expectation e",
          "synproxy sp ",
          "limit l1",
          "chain c2"
        ],
        do: refute(listing =~ gone, gone)

    {:ok, tables} = Port.list(port, :table)

    for %{family: f, name: n, handle: h} <- tables do
      commit.(:delete, %{table: %{family: Atom.to_string(f), handle: h}}, %{})
      _ = n
    end

    assert nft!(port, ["list", "ruleset"]) == ""
  end

  defp check_file(file) do
    port = start_port!()

    try do
      nft!(port, ["-f", file])
    rescue
      RuntimeError -> :skip
    else
      _ ->
        {:ok, %{msgs: msgs}} = Port.dump(port)
        msgs = with_handles(port, msgs)
        {:ok, doc} = Json.decode(nft!(port, ["-j", "list", "ruleset"]))

        want =
          Enum.reject(doc.nftables, &(Map.has_key?(&1, :rule) or Map.has_key?(&1, :metainfo)))

        got =
          for {_, type, a} = m <- msgs,
              type != :rule,
              obj = Objects.up(m, %{msgs: table_group(msgs, a)}),
              obj != nil,
              do: {m, obj}

        want = Enum.map(want, &no_expires/1)
        stripped = Enum.map(got, fn {_, o} -> o |> Objects.strip_additions() |> no_expires() end)

        up_fail =
          for(w <- want, w not in stripped, do: {:up_missing, w}) ++
            for(s <- stripped, s not in want, do: {:up_extra, s})

        down_fail =
          for {m, obj} <- got,
              reason = down_mismatch(m, obj, msgs),
              reason != nil,
              do: {:down, reason}

        anon_fail =
          for {_, :set, a} = m <- msgs,
              :constant in Map.get(a, :flags, []),
              :anonymous in a.flags,
              reason = anonymous_mismatch(m, msgs),
              reason != nil,
              do: {:anonymous, reason}

        anons = Enum.count(msgs, &match?({_, :set, %{flags: [:anonymous | _]}}, &1))

        GenServer.stop(port)
        {nft_downs, nft_fail} = check_nft_json_load(want)

        {:ok,
         %{
           objects: length(want),
           up_fail: up_fail,
           downs: length(got),
           down_fail: down_fail,
           nft_downs: nft_downs,
           nft_fail: nft_fail,
           anons: anons,
           anon_fail: anon_fail
         }}
    end
  end

  # an element's expires counts down between the dump and nft's listing
  defp no_expires(%{} = obj) when map_size(obj) == 1 do
    case Map.to_list(obj) do
      [{k, %{elem: elems} = s}] when k in [:set, :map] ->
        %{k => %{s | elem: Enum.map(elems, &elem_no_expires/1)}}

      _ ->
        obj
    end
  end

  defp no_expires(obj), do: obj

  defp elem_no_expires([k, d]), do: [elem_no_expires(k), d]
  defp elem_no_expires(%{elem: e}), do: %{elem: Map.delete(e, :expires)}
  defp elem_no_expires(e), do: e

  # an anonymous set of a rule: anonymous_set_down of its JSON elements
  # gives the set and elements the dump has
  defp anonymous_mismatch({_, :set, a} = m, msgs) do
    info = Objects.anonymous_sets(msgs) |> Map.fetch!({a.family, a.table, a.name})

    spec =
      %{
        type: one_or_list(info.key_types),
        typeof_key: info.typeof_key,
        typeof_data: info.typeof_data
      }
      |> Map.put(
        :map,
        if(:map in a.flags, do: info.data_type, else: if(:object in a.flags, do: info.obj_type))
      )
      |> Map.put(:key_len, a.key_len)
      |> Map.put(:data_len, Map.get(a, :data_len))
      |> Map.put(:interval, :interval in a.flags)
      |> Map.put(:key_byteorder, info.key_byteorder)
      |> Map.put(:data_byteorder, info.data_byteorder)
      |> Map.put(:field_len, info.field_len)

    els =
      for {_, :element, e} <- msgs,
          e.family == a.family and e.table == a.table and e.set == a.name,
          el <- e.elements,
          do: el

    want =
      [m] ++
        if(els == [],
          do: [],
          else: [
            {:add, :element, %{family: a.family, table: a.table, set: a.name, elements: els}}
          ]
        )

    case Objects.anonymous_set_down(a.family, a.table, a.name, spec, info.elements) do
      {:ok, got, _si} ->
        w = Enum.map(want, &norm/1)
        g = Enum.map(got, &norm/1)
        if w == g, do: nil, else: %{elements: info.elements, dump: w, down: g}

      error ->
        %{elements: info.elements, error: error}
    end
  end

  defp one_or_list([one]), do: one
  defp one_or_list(many), do: many

  # nft's own JSON (no added keys), loaded with `nft -j -f` in a fresh
  # namespace: Objects.down of each object gives what nft sent for it.
  # Objects nft 1.0.6 cannot load from its own JSON (a typeof string key
  # is "type": "string", which has no size) are left out; so is a set
  # whose elements nft 1.0.6 -j cannot read back.
  defp check_nft_json_load(objects) do
    port = start_port!()
    path = Path.join(System.tmp_dir!(), "nfp_objects_#{System.unique_integer([:positive])}.json")

    load = fn objs ->
      nft!(port, ["flush", "ruleset"])
      File.write!(path, Json.encode(%{nftables: Enum.map(objs, &%{add: &1})}))

      try do
        nft!(port, ["-j", "-f", path])
        true
      rescue
        RuntimeError -> false
      end
    end

    try do
      {sets, base} = Enum.split_with(objects, &(Map.has_key?(&1, :set) or Map.has_key?(&1, :map)))
      {tables, others} = Enum.split_with(base, &Map.has_key?(&1, :table))

      # each object with what it needs (tables; chains and objects for maps)
      loadable =
        if load.(tables) do
          ok_others = Enum.filter(others, &load.(tables ++ [&1]))
          tables ++ ok_others ++ Enum.filter(sets, &load.(tables ++ ok_others ++ [&1]))
        else
          []
        end

      # nft 1.0.6 -j -f drops a ct timeout's policy and l3proto (it writes
      # them into the ct helper's fields) and a set's comment; the port
      # sends what the JSON says
      loadable = Enum.reject(loadable, &Map.has_key?(&1, :"ct timeout"))

      if loadable == [] do
        {0, []}
      else
        true = load.(loadable)
        {:ok, %{msgs: msgs}} = Port.dump(port)

        fails =
          for obj <- loadable,
              reason = nft_down_mismatch(obj, msgs),
              reason != nil,
              do: {:nft_json_down, reason}

        {length(loadable), fails}
      end
    after
      File.rm(path)
      GenServer.stop(port)
    end
  end

  defp nft_down_mismatch(obj, msgs) do
    obj =
      case obj do
        %{set: s} -> %{set: Map.delete(s, :comment)}
        %{map: s} -> %{map: Map.delete(s, :comment)}
        other -> other
      end

    case Objects.down(:add, obj, %{}) do
      {:ok, got} ->
        want =
          Enum.flat_map(got, fn {_, type, a} ->
            key = fn {_, t, b} ->
              t == type and b.family == a.family and Map.get(b, :table) == Map.get(a, :table) and
                Map.get(b, :name) == Map.get(a, :name) and Map.get(b, :set) == Map.get(a, :set)
            end

            case Enum.filter(msgs, key) do
              [] ->
                [{:missing, type}]

              found when type == :element ->
                [
                  {:add, :element,
                   %{
                     (hd(found)
                      |> elem(2))
                     | elements: Enum.flat_map(found, &elem(&1, 2).elements)
                   }}
                ]

              [one | _] ->
                [one]
            end
          end)

        # nft 1.0.6 -j -f ignores an element's statements (the kernel gives
        # it its set's); the port keeps them
        w = Enum.map(want, &(&1 |> norm_or() |> no_elem_exprs()))
        g = Enum.map(got, &(&1 |> norm_or() |> no_elem_exprs()))
        if w == g, do: nil, else: %{json: obj, nft_sent: w, down: g}

      error ->
        %{json: obj, error: error}
    end
  end

  defp no_elem_exprs({:element, a}),
    do: {:element, Map.update!(a, :elements, &Enum.map(&1, fn e -> Map.delete(e, :exprs) end))}

  defp no_elem_exprs(m), do: m

  defp norm_or({:missing, t}), do: {:missing, t}
  defp norm_or(m), do: norm(m)

  defp table_group(msgs, a) do
    key = {a.family, Map.get(a, :table, Map.get(a, :name))}

    Enum.filter(msgs, fn {_, _, b} -> {b.family, Map.get(b, :table, Map.get(b, :name))} == key end)
  end

  # dump leaves handles out; list gives them
  defp with_handles(port, msgs) do
    types =
      msgs |> Enum.map(&elem(&1, 1)) |> Enum.uniq() |> Enum.reject(&(&1 in [:rule, :element]))

    handles =
      for type <- types, {:ok, objs} = Port.list(port, type), o <- objs, into: %{} do
        {{type, o.family, Map.get(o, :table), o.name}, o.handle}
      end

    Enum.map(msgs, fn {v, t, a} ->
      case Map.fetch(handles, {t, a.family, Map.get(a, :table), Map.get(a, :name)}) do
        {:ok, h} -> {v, t, Map.put(a, :handle, h)}
        :error -> {v, t, a}
      end
    end)
  end

  defp down_mismatch({_, type, a} = m, obj, msgs) do
    want =
      [m] ++
        if type == :set do
          els =
            for {_, :element, e} <- msgs,
                e.family == a.family and e.table == a.table and e.set == a.name,
                el <- e.elements,
                do: el

          if els == [],
            do: [],
            else: [
              {:add, :element, %{family: a.family, table: a.table, set: a.name, elements: els}}
            ]
        else
          []
        end

    # through JSON text and back, as a user would have it
    {:ok, %{nftables: [text_obj]}} = Json.decode(Json.encode(%{nftables: [obj]}))

    case Objects.down(:add, text_obj, %{}) do
      {:ok, got} ->
        w = Enum.map(want, &norm/1)
        g = Enum.map(got, &norm/1)
        if w == g, do: nil, else: %{json: obj, dump: w, down: g}

      error ->
        %{json: obj, error: error}
    end
  end

  # what the kernel adds or keeps of its own
  defp norm({_v, :chain, a}) do
    a =
      a
      |> Map.drop([:handle, :use])
      |> Map.update(:flags, nil, &(&1 -- [:base]))
      |> drop_empty(:flags)

    case a do
      %{dev: d, devices: [d]} -> Map.delete(a, :devices)
      %{devices: [d]} -> a |> Map.delete(:devices) |> Map.put(:dev, d)
      _ -> a
    end
    |> then(&{:chain, &1})
  end

  defp norm({_v, :set, a}) do
    a =
      a
      |> Map.drop([:handle, :id, :use])
      |> Map.update(:flags, [], &Enum.sort/1)
      |> drop_empty(:flags)
      |> Map.update(:exprs, nil, &Enum.map(&1, fn e -> nexpr(e) end))
      |> drop_empty(:exprs)

    {:set, a}
  end

  defp norm({_v, :element, a}),
    do:
      {:element,
       a
       |> Map.drop([:set_id])
       |> Map.update!(:elements, fn es -> es |> Enum.map(&nelem/1) |> Enum.sort() end)}

  defp norm({_v, :table, a}),
    do: {:table, a |> Map.drop([:handle, :use, :owner]) |> drop_empty(:flags)}

  defp norm({_v, t, a}), do: {t, Map.drop(a, [:handle, :use])}

  # expirations count down; counters the kernel starts at 0
  defp nelem(e) do
    e
    |> Map.update(:exprs, nil, &Enum.map(&1, fn x -> nexpr(x) end))
    |> drop_empty(:exprs)
    |> Map.drop([:expiration])
    |> drop_empty(:flags)
  end

  defp nexpr({:counter, c}), do: {:counter, Map.merge(%{packets: 0, bytes: 0}, c)}
  defp nexpr(x), do: x

  defp drop_empty(m, k), do: if(Map.get(m, k) in [[], nil], do: Map.delete(m, k), else: m)
end
