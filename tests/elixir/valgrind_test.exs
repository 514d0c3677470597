defmodule NFTables.ValgrindTest do
  # One end-to-end run of 10,000 mixed requests against the port under
  # valgrind memcheck: the handle API (alloc/set/get/unset/to_map/free of
  # every object and expression kind), rules with expressions, sets with
  # elements, batches sent (succeeding and failing) and freed, commits
  # (succeeding, failing, echo, genid), list/get/dump of rulesets loaded
  # by nft, and bad input of every sort. Then EOF; the port must exit 0
  # (not valgrind's 99), with "ERROR SUMMARY: 0 errors" and nothing
  # definitely lost. A failure prints valgrind's report.
  #
  # Not :slow: it takes well under a minute, so it runs with `mix test`.
  # :kernel because the port runs in a fresh network namespace.
  use NFTables.Port.Case, async: true

  alias NFTables.Port.Test.RawPort

  @moduletag :valgrind
  @moduletag :kernel
  @moduletag timeout: 240_000
  # It loads rulesets with nft into the namespace of the port that runs
  # under valgrind, which an ordinary user cannot enter (the port is not
  # dumpable and valgrind runs it itself).
  @moduletag :root

  unless System.find_executable("valgrind") do
    @moduletag skip: "valgrind is not installed"
  end

  @requests 10_000
  @max_frame 65_536
  @rulesets Path.expand("rulesets", __DIR__)

  # Objects of the handle API with valid attribute values.
  @objects [
    table: %{family: :inet, name: "t", flags: [:dormant], userdata: <<1, 2, 3>>},
    chain: %{
      family: :inet,
      table: "t",
      name: "c",
      hooknum: :input,
      prio: -10,
      policy: :drop,
      type: "filter",
      userdata: "chain",
      flags: [:base]
    },
    rule: %{family: :inet, table: "t", chain: "c", userdata: "rule", position: 5},
    set: %{
      family: :inet,
      table: "t",
      name: "s",
      flags: [:interval, :timeout],
      key_type: 7,
      key_len: 4,
      data_type: 0,
      id: 9,
      policy: :memory,
      desc_size: 64,
      timeout: 60_000,
      gc_interval: 1000,
      userdata: <<0, 4, 2, 0, 0, 0>>,
      desc_concat: <<4, 2>>
    },
    set_elem: %{
      key: <<10, 0, 0, 1>>,
      key_end: <<10, 0, 0, 9>>,
      flags: [:interval_end],
      data: <<1, 2, 3, 4>>,
      timeout: 5000,
      userdata: "elem",
      objref: "cnt"
    },
    counter: %{family: :inet, table: "t", name: "cnt", packets: 7, bytes: 700, userdata: "u"},
    quota: %{family: :inet, table: "t", name: "q", bytes: 1_000_000, consumed: 10, flags: 1},
    limit: %{
      family: :inet,
      table: "t",
      name: "l",
      rate: 10,
      unit: 60,
      burst: 5,
      type: 0,
      flags: 0
    },
    ct_helper: %{family: :inet, table: "t", name: "h", helper: "ftp", l3proto: 2, l4proto: 6},
    ct_timeout: %{family: :inet, table: "t", name: "ct", l3proto: 2, l4proto: 6},
    ct_expect: %{
      family: :inet,
      table: "t",
      name: "e",
      l3proto: 2,
      l4proto: 6,
      dport: 21,
      timeout: 3000,
      size: 8
    },
    secmark: %{family: :inet, table: "t", name: "sm", ctx: "system_u:object_r:ssh_t:s0"},
    synproxy: %{family: :inet, table: "t", name: "sp", mss: 1460, wscale: 7, flags: 3},
    tunnel: %{
      family: :inet,
      table: "t",
      name: "tun",
      id: 42,
      ipv4_src: <<10, 0, 0, 1>>,
      ipv4_dst: <<10, 0, 0, 2>>,
      sport: 1000,
      dport: 4789,
      tos: 4,
      ttl: 64,
      flags: 1
    },
    flowtable: %{
      family: :inet,
      table: "t",
      name: "ft",
      hooknum: :ingress,
      prio: 0,
      devices: ["lo", "dummy0"],
      size: 1024,
      flags: [:counter]
    }
  ]

  # Every expression kind with valid attribute values.
  @exprs [
    bitwise: %{sreg: 1, dreg: 1, len: 4, op: :bool, mask: <<255, 255, 0, 0>>, xor: <<0, 0, 0, 0>>},
    byteorder: %{sreg: 1, dreg: 1, op: :hton, len: 4, size: 2},
    cmp: %{sreg: 1, op: :eq, data: <<0, 22>>},
    connlimit: %{count: 20, flags: [:inv]},
    counter: %{packets: 1, bytes: 64},
    ct: %{dreg: 1, key: :state, dir: :original},
    dup: %{sreg_addr: 1, sreg_dev: 2},
    dynset: %{
      sreg_key: 1,
      sreg_data: 2,
      op: :add,
      timeout: 1000,
      set_name: "s",
      set_id: 9,
      flags: [:expr]
    },
    exthdr: %{dreg: 1, type: 2, offset: 0, len: 2, flags: [:present], op: :tcpopt},
    fib: %{dreg: 1, result: :addrtype, flags: [:daddr]},
    flow_offload: %{table_name: "ft"},
    fwd: %{sreg_dev: 1, sreg_addr: 2, nfproto: :ip},
    hash: %{sreg: 1, dreg: 1, len: 4, modulus: 4, seed: 7, offset: 0, type: :jenkins},
    immediate: %{dreg: 0, verdict: :jump, chain: "c"},
    last: %{msecs: 100, set: 1},
    limit: %{rate: 5, unit: 1, burst: 10, type: :pkts, flags: [:inv]},
    log: %{prefix: "invalid: ", group: 1, snaplen: 64, qthreshold: 2, level: :warn, flags: [:uid]},
    lookup: %{sreg: 1, dreg: 0, set: "s", set_id: 9, flags: [:inv]},
    masq: %{flags: [:persistent], reg_proto_min: 1, reg_proto_max: 2},
    match: %{name: "conntrack", rev: 3, info: :binary.copy(<<0>>, 200)},
    meta: %{key: :mark, dreg: 1},
    nat: %{
      type: :snat,
      family: :ip,
      reg_addr_min: 1,
      reg_addr_max: 2,
      reg_proto_min: 3,
      reg_proto_max: 4,
      flags: [:proto_random]
    },
    notrack: %{},
    numgen: %{dreg: 1, modulus: 2, type: :incremental, offset: 0},
    objref: %{imm_type: :counter, imm_name: "cnt"},
    osf: %{dreg: 1, ttl: :loose, flags: [:version]},
    payload: %{base: :transport, offset: 2, len: 2, dreg: 1},
    queue: %{num: 1, total: 4, flags: [:bypass]},
    quota: %{bytes: 1000, flags: [:inv], consumed: 1},
    range: %{sreg: 1, op: :eq, from_data: <<0, 100>>, to_data: <<0, 200>>},
    redir: %{reg_proto_min: 1, reg_proto_max: 2, flags: [:proto_specified]},
    reject: %{type: :icmpx_unreach, code: 1},
    rt: %{key: :classid, dreg: 1},
    socket: %{key: :transparent, dreg: 1, level: 0},
    synproxy: %{mss: 1460, wscale: 7, flags: [:mss, :wscale]},
    target: %{name: "MARK", rev: 2, info: :binary.copy(<<1>>, 8)},
    tproxy: %{family: :ip, reg_addr: 1, reg_port: 2},
    tunnel: %{key: :id, dreg: 1},
    xfrm: %{dreg: 1, key: :reqid, dir: :in, spnum: 0}
  ]

  # A rule the kernel takes, in table inet "w#{round}".
  defp rule_exprs(i) do
    [
      {:meta, %{key: :l4proto, dreg: 1}},
      {:cmp, %{sreg: 1, op: :eq, data: <<6>>}},
      {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
      {:cmp, %{sreg: 1, op: :eq, data: <<i::16>>}},
      {:counter, %{}},
      {:immediate, %{dreg: 0, verdict: :accept}}
    ]
  end

  # The port runs with its seccomp filter on, which valgrind shares (see
  # src/seccomp.c): --vgdb=no, because valgrind's gdbserver FIFOs in /tmp
  # would be unlinked at exit, a call the filter rightly kills.
  defp valgrind_prefix(log) do
    [
      "valgrind",
      "--vgdb=no",
      "--error-exitcode=99",
      "--leak-check=full",
      "--errors-for-leak-kinds=definite",
      "--show-leak-kinds=definite",
      "--log-file=" <> log
    ]
  end

  setup do
    dir = Path.join(System.tmp_dir!(), "nfp_valgrind_#{System.unique_integer([:positive])}")
    File.mkdir_p!(dir)
    log = Path.join(dir, "valgrind.log")

    rp =
      RawPort.open(
        command_prefix: valgrind_prefix(log),
        extra: ["--max-frame", Integer.to_string(@max_frame)]
      )

    on_exit(fn ->
      RawPort.kill(rp)
      File.rm_rf(dir)
    end)

    Process.put(:count, 0)
    # The first request waits for valgrind to start the port.
    assert req(rp, :ping, [], 60_000) == {:ok, :pong}
    # With the seccomp filter on, as always (valgrind does not know the
    # Landlock system calls, so Landlock is off under it).
    assert {:ok, %{seccomp: :filter, landlock: :off}} = req(rp, :self_check, [])
    %{rp: rp, log: log}
  end

  test "10,000 mixed requests: no memory errors, nothing definitely lost, exit 0", %{
    rp: rp,
    log: log
  } do
    {usec, failure} =
      :timer.tc(fn ->
        try do
          workload(rp)
          nil
        rescue
          e in ExUnit.AssertionError -> e
        end
      end)

    count = Process.get(:count)
    {status, stderr} = RawPort.close(rp, 120_000)
    text = File.read!(log)
    report = "valgrind log (#{log}):\n" <> errors_of(text)

    # A failed request (or a crash) is reported with valgrind's view of it.
    if failure do
      flunk(
        "request #{count} failed: " <>
          Exception.message(failure) <> "\nexit status #{status}\n" <> report
      )
    end

    assert count >= @requests

    phases =
      Enum.map_join(Process.get(:phases, %{}), ", ", fn {name, {n, ms}} ->
        "#{name} #{n} in #{ms} ms"
      end)

    IO.puts(
      "\nvalgrind: #{count} requests in #{div(usec, 1_000_000)} s (#{phases}), " <>
        "exit status #{status}" <> summary_line(text)
    )

    assert text =~ "ERROR SUMMARY: 0 errors", report
    refute text =~ ~r/definitely lost: [1-9]/, report
    refute text =~ ~r/Invalid (read|write|free)/, report
    assert status == 0, "exit status #{status}; stderr: #{stderr}\n" <> report
  end

  ## The workload

  defp workload(rp) do
    load_rulesets(rp)
    Stream.iterate(1, &(&1 + 1)) |> Enum.find(fn round -> round(rp, round) >= @requests end)

    # Leave some of everything allocated: the port frees it at exit.
    {:ok, t} = req(rp, :table_alloc, [])
    ok!(rp, :table_set, [t, :name, "left"])
    {:ok, _} = req(rp, :expr_alloc, [:cmp])
    {:ok, r} = req(rp, :rule_alloc, [])
    {:ok, e} = req(rp, :expr_alloc, [:counter])
    ok!(rp, :rule_add_expr, [r, e])
    {:ok, b} = req(rp, :batch_new, [])
    {:ok, 0} = req(rp, :batch_add, [b, :add, :table, t])
    {:ok, _} = req(rp, :socket_open, [])
  end

  # Loads our rulesets with nft -f inside the port's namespace, so that
  # list and dump decode what nft makes (every statement kind).
  defp load_rulesets(rp) do
    os_pid = wait_until(fn -> RawPort.os_pid(rp) end)
    nsenter = ["--net=/proc/#{os_pid}/ns/net", "nft", "-f"]

    loaded =
      for file <- Path.wildcard(Path.join(@rulesets, "*.nft")),
          {_, 0} <- [System.cmd("nsenter", nsenter ++ [file], stderr_to_stdout: true)],
          do: file

    assert loaded != [], "nft -f loaded none of #{@rulesets}/*.nft"
  end

  defp round(rp, round) do
    phase(:handles, fn -> handle_objects(rp, round) end)
    phase(:exprs, fn -> expressions(rp, round) end)
    phase(:elements, fn -> set_with_elements(rp) end)
    phase(:batches, fn -> batches(rp, round) end)
    phase(:commits, fn -> commits(rp, round) end)
    phase(:listings, fn -> listings(rp, round) end)
    phase(:events, fn -> events(rp, round) end)
    phase(:bad_input, fn -> bad_input(rp, round) end)
    Process.get(:count)
  end

  # Counts requests and milliseconds per phase, for the summary line.
  defp phase(name, fun) do
    count0 = Process.get(:count)
    {usec, _} = :timer.tc(fun)
    {n, ms} = Map.get(Process.get(:phases, %{}), name, {0, 0})

    Process.put(
      :phases,
      Map.put(
        Process.get(:phases, %{}),
        name,
        {n + Process.get(:count) - count0, ms + div(usec, 1000)}
      )
    )
  end

  defp handle_objects(rp, round) do
    for {kind, attrs} <- rotate(@objects, round, 5) do
      {:ok, h} = req(rp, :"#{kind}_alloc", [])

      for {attr, value} <- attrs do
        ok!(rp, :"#{kind}_set", [h, attr, value])
        assert {:ok, _} = req(rp, :"#{kind}_get", [h, attr])
      end

      assert {:ok, map} = req(rp, :"#{kind}_to_map", [h])
      assert is_map(map)
      # Some libnftnl objects cannot unset: an error, not a crash.
      {attr, _} = Enum.at(Enum.to_list(attrs), rem(round, map_size(attrs)))

      case req(rp, :"#{kind}_unset", [h, attr]) do
        :ok -> :ok
        {:error, %{message: message}} -> assert message =~ "unset"
      end

      assert {:error, _} = req(rp, :"#{kind}_get", [h, :no_such_attr])
      assert {:error, _} = req(rp, :"#{kind}_set", [h, attr, {:bad}])
      ok!(rp, :"#{kind}_free", [h])
      assert {:error, _} = req(rp, :"#{kind}_free", [h])
    end
  end

  defp expressions(rp, round) do
    {:ok, rule} = req(rp, :rule_alloc, [])

    for {kind, attrs} <- rotate(@exprs, round, 13) do
      {:ok, e} = req(rp, :expr_alloc, [kind])

      for {attr, value} <- attrs do
        ok!(rp, :expr_set, [e, attr, value])
      end

      assert {:ok, {^kind, _}} = req(rp, :expr_to_map, [e])

      case Enum.to_list(attrs) do
        [] ->
          :ok

        list ->
          {attr, _} = Enum.at(list, rem(round, length(list)))
          assert {:ok, _} = req(rp, :expr_get, [e, attr])
          # libnftnl has no unset: the port rebuilds the expression.
          ok!(rp, :expr_unset, [e, attr])
          assert {:error, _} = req(rp, :expr_get, [e, attr])
      end

      # Half go to the rule (which then owns them), half are freed.
      if rem(round, 2) == 0,
        do: ok!(rp, :rule_add_expr, [rule, e]),
        else: ok!(rp, :expr_free, [e])
    end

    # A rule's expression list set whole, replacing what it had.
    exprs = Enum.take(rotate(@exprs, round, 13), 6)
    ok!(rp, :rule_set, [rule, :exprs, exprs])
    assert {:ok, %{exprs: listed}} = req(rp, :rule_to_map, [rule])
    assert length(listed) >= 6
    assert {:ok, _} = req(rp, :rule_get, [rule, :exprs])
    ok!(rp, :rule_free, [rule])
  end

  defp set_with_elements(rp) do
    {:ok, s} = req(rp, :set_alloc, [])
    for {a, v} <- @objects[:set], do: ok!(rp, :set_set, [s, a, v])

    for i <- 1..4 do
      {:ok, el} = req(rp, :set_elem_alloc, [])
      ok!(rp, :set_elem_set, [el, :key, <<10, 0, 0, i>>])
      ok!(rp, :set_elem_set, [el, :userdata, "e#{i}"])
      ok!(rp, :set_elem_set, [el, :exprs, [{:counter, %{packets: i}}]])
      ok!(rp, :set_add_elem, [s, el])
      assert {:error, _} = req(rp, :set_elem_free, [el])
    end

    assert {:ok, _} = req(rp, :set_to_map, [s])
    ok!(rp, :set_free, [s])
  end

  defp batches(rp, round) do
    table = "b#{round}"
    {:ok, sock} = req(rp, :socket_open, [])

    # A batch that lands: table, chain, rule (with expressions), set with
    # elements, counter.
    {:ok, b} = req(rp, :batch_new, [])
    t = obj(rp, :table, %{family: :inet, name: table})
    c = obj(rp, :chain, %{family: :inet, table: table, name: "c"})

    r = obj(rp, :rule, %{family: :inet, table: table, chain: "c", exprs: rule_exprs(round)})

    s =
      obj(rp, :set, %{
        family: :inet,
        table: table,
        name: "s",
        key_type: 7,
        key_len: 4,
        id: round
      })

    es = obj(rp, :set, %{family: :inet, table: table, name: "s", id: round})

    for i <- 1..3 do
      {:ok, el} = req(rp, :set_elem_alloc, [])
      ok!(rp, :set_elem_set, [el, :key, <<10, 1, round, i>>])
      ok!(rp, :set_add_elem, [es, el])
    end

    cnt = obj(rp, :counter, %{family: :inet, table: table, name: "cnt"})

    msgs = [
      {:add, :table, t},
      {:add, :chain, c},
      {:add, :rule, r},
      {:add, :set, s},
      {:add, :element, es},
      {:add, :counter, cnt}
    ]

    for {{verb, type, h}, i} <- Enum.with_index(msgs) do
      assert req(rp, :batch_add, [b, verb, type, h]) == {:ok, i}
    end

    ok!(rp, :batch_send, [b, sock])
    assert {:error, _} = req(rp, :batch_free, [b])

    # A batch that fails in the middle (the chain exists).
    {:ok, b2} = req(rp, :batch_new, [])
    {:ok, 0} = req(rp, :batch_add, [b2, :add, :counter, cnt])
    {:ok, 1} = req(rp, :batch_add, [b2, :create, :chain, c])
    {:ok, 2} = req(rp, :batch_add, [b2, :add, :rule, r])

    assert {:error, %{index: 1, errno: :eexist}} = req(rp, :batch_send, [b2, sock])

    # A batch built and thrown away; one sent over a closed socket.
    {:ok, b3} = req(rp, :batch_new, [])
    {:ok, 0} = req(rp, :batch_add, [b3, :delete, :table, t])
    ok!(rp, :batch_free, [b3])
    {:ok, b4} = req(rp, :batch_new, [])
    {:ok, 0} = req(rp, :batch_add, [b4, :delete, :table, t])
    assert {:error, _} = req(rp, :batch_add, [b4, :insert, :table, t])
    ok!(rp, :batch_send, [b4, sock])

    for {_verb, type, h} <- msgs do
      ok!(rp, :"#{free_kind(type)}_free", [h])
    end

    ok!(rp, :socket_close, [sock])
    assert {:error, _} = req(rp, :socket_close, [sock])
  end

  defp free_kind(:element), do: :set
  defp free_kind(kind), do: kind

  defp obj(rp, kind, attrs) do
    {:ok, h} = req(rp, :"#{kind}_alloc", [])
    for {a, v} <- attrs, do: ok!(rp, :"#{kind}_set", [h, a, v])
    h
  end

  defp commits(rp, round) do
    table = "w#{round}"
    tf = %{family: :inet, table: table}

    msgs = [
      {:add, :table, %{family: :inet, name: table, userdata: "round #{round}"}},
      {:add, :chain,
       Map.merge(tf, %{name: "in", type: "filter", hooknum: :input, prio: round, policy: :accept})},
      {:add, :chain, Map.put(tf, :name, "side")},
      {:add, :set, Map.merge(tf, %{name: "ports", key_type: 13, key_len: 2, id: 1})},
      {:add, :element,
       Map.merge(tf, %{set: "ports", elements: for(p <- 1..20, do: %{key: <<p::16>>})})},
      {:add, :counter, Map.merge(tf, %{name: "cnt", packets: round})},
      {:add, :quota, Map.merge(tf, %{name: "q", bytes: 1000})},
      {:add, :limit, Map.merge(tf, %{name: "l", rate: 10, unit: 1})},
      {:add, :rule, Map.merge(tf, %{chain: "in", exprs: rule_exprs(round)})},
      {:add, :rule,
       Map.merge(tf, %{
         chain: "in",
         exprs: [{:immediate, %{dreg: 0, verdict: :jump, chain: "side"}}]
       })}
    ]

    assert {:ok, handles} = req(rp, :commit, [msgs, %{echo: true}])
    assert length(handles) == length(msgs)

    # Failing in the middle: nothing lands.
    bad = [
      {:add, :chain, Map.put(tf, :name, "x")},
      {:delete, :chain, Map.put(tf, :name, "side")},
      {:add, :chain, Map.put(tf, :name, "y")}
    ]

    assert {:error, %{index: 1, errno: :ebusy}} = req(rp, :commit, [bad, %{}])

    # Optimistic concurrency.
    {:ok, genid} = req(rp, :genid, [])
    ok!(rp, :commit, [[{:add, :chain, Map.put(tf, :name, "g")}], %{genid: genid}])

    assert req(rp, :commit, [[{:add, :chain, Map.put(tf, :name, "h")}], %{genid: genid}]) ==
             {:error, :generation_changed}

    # Bad input to commit.
    assert {:error, _} = req(rp, :commit, [[{:add, :table, %{family: :inet, nme: "x"}}], %{}])
    assert {:error, _} = req(rp, :commit, [[{:frob, :table, %{}}], %{}])

    assert {:error, _} =
             req(rp, :commit, [[{:add, :rule, Map.put(tf, :exprs, [{:frob, %{}}])}], %{}])

    # Remove what the round before added, keeping the ruleset small.
    if round > 1 do
      previous = {:delete, :table, %{family: :inet, name: "w#{round - 1}"}}
      ok!(rp, :commit, [[previous], %{}])
    end
  end

  defp listings(rp, round) do
    types = [:table, :chain, :rule, :set, :element, :counter, :quota, :limit, :flowtable]

    for type <- rotate(types, round, 3) do
      assert {:ok, %{objects: objects}} = req(rp, :list, [type, %{}])
      assert is_list(objects)
    end

    assert {:ok, _} = req(rp, :list, [:rule, %{family: :inet, table: "w#{round}", chain: "in"}])
    assert {:ok, _} = req(rp, :get, [:table, %{family: :inet, name: "w#{round}"}])
    assert {:error, _} = req(rp, :get, [:table, %{family: :inet, name: "missing"}])

    assert {:ok, %{objects: [_ | _]}} =
             req(rp, :list, [:element, %{family: :inet, table: "w#{round}", set: "ports"}])

    if rem(round, 3) == 0 do
      assert {:ok, %{msgs: [_ | _]}} = req(rp, :dump, [])
    end

    assert {:ok, _} = req(rp, :self_check, [])
  end

  defp bad_input(rp, round) do
    deep = Enum.reduce(1..200, [], fn _, acc -> [acc] end)
    ping = :erlang.term_to_binary({1, :ping, []})

    frames = [
      <<>>,
      "not a term",
      binary_part(ping, 1, byte_size(ping) - 1),
      binary_part(ping, 0, byte_size(ping) - 2),
      :erlang.term_to_binary({-1, :ping, []}),
      :erlang.term_to_binary({Integer.pow(2, 64), :ping, []}),
      :erlang.term_to_binary({1, :ping}),
      :erlang.term_to_binary({7, :ping, [deep]}),
      :erlang.term_to_binary({7, :ping, [self()]})
    ]

    # (A frame over --max-frame ends the port with status 3: it is not
    # bad input the port goes on after, see bad_input_test.exs.)
    _ = round

    for frame <- frames do
      RawPort.send_raw(rp, frame)
      count()
      assert {_, {:error, %{message: message}}} = RawPort.recv(rp, 30_000)
      assert is_binary(message)
    end

    {:ok, t} = req(rp, :table_alloc, [])
    {:ok, e} = req(rp, :expr_alloc, [:ct])

    for {op, args} <- [
          {:no_such_op, []},
          {:ping, [1]},
          {:table_set, [t, :name]},
          {:table_set, [t, :name, String.duplicate("n", 256)]},
          {:table_set, [t, :name, "a\0b"]},
          {:table_set, [t, :userdata, :binary.copy(<<1>>, 257)]},
          {:table_set, [t, :flags, [:dormant | :owner]]},
          {:table_set, [t, :flags, List.duplicate(:bogus, 1000)]},
          {:table_set, [t, :family, :bogus]},
          {:expr_set, [e, :dir, 300]},
          {:expr_set, [e, :key, :bogus]},
          {:expr_set, [e, :dreg, -1]},
          {:expr_set, [e, :dreg, Integer.pow(2, 70)]},
          {:table_free, [t + 1_000_000]},
          {:expr_alloc, [:frob]},
          {:list, [:frob, %{}]},
          {:commit, [[{:add, :table, :junk}], %{}]},
          {:commit, [[], %{bogus: 1}]}
        ] do
      assert {:error, %{message: message}} = req(rp, op, args)
      assert is_binary(message)
    end

    ok!(rp, :table_free, [t])
    ok!(rp, :expr_free, [e])
  end

  ## Helpers

  defp req(rp, op, args, timeout \\ 30_000) do
    count()
    RawPort.request(rp, op, args, timeout: timeout)
  end

  defp ok!(rp, op, args) do
    result = req(rp, op, args)
    assert result == :ok, "#{op} #{inspect(args, limit: 8)}: #{inspect(result)}"
  end

  defp count, do: Process.put(:count, Process.get(:count, 0) + 1)

  # Ruleset events: subscribe, two transactions whose events (every object
  # kind the port decodes) arrive between and after the replies, then
  # unsubscribe.
  defp events(rp, round) do
    name = "ev#{round}"
    ok!(rp, :subscribe, [round, %{rcvbuf: 65_536 + round}])
    t = %{family: :inet, table: name}

    add = [
      {:add, :table, %{family: :inet, name: name, userdata: <<1, 2>>}},
      {:add, :chain, Map.merge(t, %{name: "c", type: "filter", hooknum: :input, prio: 0, policy: :drop})},
      {:add, :rule, Map.merge(t, %{chain: "c", userdata: "r", exprs: [{:counter, %{}}, {:immediate, %{dreg: 0, verdict: :accept}}]})},
      {:insert, :rule, Map.merge(t, %{chain: "c", exprs: [{:immediate, %{dreg: 0, verdict: :drop}}]})},
      {:add, :set, Map.merge(t, %{name: "s", key_type: 7, key_len: 4, flags: [:timeout], timeout: 60_000})},
      {:add, :element, Map.merge(t, %{set: "s", elements: [%{key: <<10, 0, 0, 1>>, userdata: "e"}, %{key: <<10, 0, 0, 2>>}]})},
      {:add, :counter, Map.merge(t, %{name: "k", packets: 3})},
      {:add, :quota, Map.merge(t, %{name: "q", bytes: 1000})}
    ]

    ids = for msgs <- [add, [{:delete, :table, %{family: :inet, name: name}}]] do
      id = System.unique_integer([:positive])
      count()
      RawPort.send_request(rp, {id, :commit, [msgs, %{}]})
      id
    end

    {replies, events} = collect(rp, round, ids, [], 0, 0)
    assert Enum.all?(replies, &(&1 == :ok)), inspect(replies)
    # add: eight objects, elements and a newgen; delete: the table, what it held, a newgen.
    assert events >= 16
    ok!(rp, :unsubscribe, [round])
  end

  # Until both replies and both transactions' :newgen came.
  defp collect(_rp, _sub, [], replies, events, 2), do: {replies, events}

  defp collect(rp, sub, ids, replies, events, gens) do
    case RawPort.recv(rp, 30_000) do
      {:event, ^sub, {:newgen, _}} -> collect(rp, sub, ids, replies, events + 1, gens + 1)
      {:event, ^sub, _} -> collect(rp, sub, ids, replies, events + 1, gens)
      {id, result} -> collect(rp, sub, List.delete(ids, id), [result | replies], events, gens)
    end
  end

  # A different slice of a list each round, so that every round differs.
  defp rotate(list, round, n) do
    len = length(list)
    start = rem(round * n, len)
    list |> Stream.cycle() |> Stream.drop(start) |> Enum.take(min(n, len))
  end

  defp summary_line(text) do
    case Regex.run(~r/ERROR SUMMARY: .*/, text) do
      [line] -> "; " <> String.replace(line, ~r/^==\d+== /, "")
      nil -> "; no ERROR SUMMARY in the log"
    end
  end

  # The error and leak records of a valgrind log, without the preamble.
  defp errors_of(text) do
    text
    |> String.split(~r/\n==\d+== \n/)
    |> Enum.reject(&(&1 =~ "Copyright" or &1 =~ "Command:"))
    |> Enum.join("\n\n")
    |> String.slice(0, 20_000)
  end
end
