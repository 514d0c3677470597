defmodule NFTables.Port.EventsTest do
  @moduledoc """
  Ruleset events from the kernel's NFNLGRP_NFTABLES group: changes made
  through the port and through `nft` in the same namespace reach the
  subscribers, transaction by transaction; overflow is reported.
  """
  use NFTables.Port.Case, async: true

  @moduletag :kernel

  defp next_event(ref, timeout \\ 5_000) do
    receive do
      {:nftables, ^ref, event} -> event
    after
      timeout -> flunk("no event within #{timeout} ms")
    end
  end

  # The events of one transaction, up to and including its :newgen.
  defp transaction(ref, acc \\ []) do
    case next_event(ref) do
      {:newgen, _} = gen -> Enum.reverse([gen | acc])
      event -> transaction(ref, [event | acc])
    end
  end

  defp no_event(ref, timeout \\ 200) do
    receive do
      {:nftables, ^ref, event} -> flunk("unexpected event #{inspect(event)}")
    after
      timeout -> :ok
    end
  end

  @accept [{:immediate, %{dreg: 0, verdict: :accept}}]
  @drop [{:immediate, %{dreg: 0, verdict: :drop}}]

  test "a transaction through the port arrives as its events and a :newgen" do
    pid = start_port!()
    {:ok, ref} = NFTables.Port.subscribe(pid)
    {:ok, g0} = NFTables.Port.genid(pid)

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "t"}},
        {:add, :chain, %{family: :inet, table: "t", name: "c"}},
        {:add, :rule, %{family: :inet, table: "t", chain: "c", exprs: @accept}},
        {:add, :set, %{family: :inet, table: "t", name: "s", key_type: 7, key_len: 4}},
        {:add, :element,
         %{family: :inet, table: "t", set: "s", elements: [%{key: <<10, 0, 0, 1>>}]}},
        {:add, :counter, %{family: :inet, table: "t", name: "k"}}
      ])

    events = transaction(ref)

    assert [
             {:add, :table, %{family: :inet, name: "t"}},
             {:add, :chain, %{family: :inet, table: "t", name: "c"}},
             {:add, :rule, %{chain: "c", exprs: @accept, handle: h}},
             {:add, :set, %{name: "s", key_len: 4}},
             {:add, :element, %{set: "s", elements: [%{key: <<10, 0, 0, 1>>}]}},
             {:add, :counter, %{name: "k", packets: 0}},
             {:newgen, %{genid: g1, pid: port_pid, name: "port_nftables"}}
           ] = events

    assert g1 == g0 + 1
    assert port_pid == NFTables.Port.os_pid(pid)
    assert is_integer(h)

    # Insert at the start, after a rule, replace: each says where it went.
    :ok =
      NFTables.Port.commit(pid, [
        {:insert, :rule, %{family: :inet, table: "t", chain: "c", exprs: @drop}}
      ])

    assert [{:insert, :rule, %{exprs: @drop} = ins}, {:newgen, %{genid: g2}}] = transaction(ref)
    refute Map.has_key?(ins, :position)
    assert g2 == g1 + 1

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :rule,
         %{family: :inet, table: "t", chain: "c", position: ins.handle, exprs: @drop}}
      ])

    assert [{:add, :rule, %{position: pos}}, {:newgen, _}] = transaction(ref)
    assert pos == ins.handle

    :ok =
      NFTables.Port.commit(pid, [
        {:delete, :rule, %{family: :inet, table: "t", chain: "c", handle: h}}
      ])

    assert [{:delete, :rule, %{handle: ^h, exprs: @accept}}, {:newgen, _}] = transaction(ref)

    # A commit that fails sends nothing.
    assert {:error, %{errno: :enoent}} =
             NFTables.Port.commit(pid, [{:delete, :table, %{family: :inet, name: "nope"}}])

    no_event(ref)
  end

  test "changes made with nft arrive too, with nft's process id" do
    pid = start_port!()
    {:ok, ref} = NFTables.Port.subscribe(pid)
    nft!(pid, "add table ip x")

    assert [{:add, :table, %{family: :ip, name: "x"}}, {:newgen, %{name: "nft", pid: nft_pid}}] =
             transaction(ref)

    assert is_integer(nft_pid) and nft_pid > 0
    nft!(pid, "add set ip x s { type ipv4_addr; }")
    assert [{:add, :set, %{name: "s"}}, {:newgen, _}] = transaction(ref)
    nft!(pid, "add element ip x s { 192.0.2.1, 192.0.2.2 }")
    elems = transaction(ref)
    keys = for {:add, :element, %{elements: es}} <- elems, e <- es, do: e.key
    assert Enum.sort(keys) == [<<192, 0, 2, 1>>, <<192, 0, 2, 2>>]
    nft!(pid, "delete element ip x s { 192.0.2.1 }")

    assert [{:delete, :element, %{set: "s", elements: [%{key: <<192, 0, 2, 1>>}]}}, {:newgen, _}] =
             transaction(ref)

    nft!(pid, "add quota ip x q { over 100 mbytes }")
    assert [{:add, :quota, %{name: "q", bytes: 104_857_600}}, {:newgen, _}] = transaction(ref)
    nft!(pid, "delete table ip x")
    deletes = transaction(ref)

    assert {:delete, :table, %{name: "x"}} in Enum.map(deletes, fn
             {:delete, :table, a} -> {:delete, :table, Map.take(a, [:name])}
             other -> other
           end)
  end

  test "filters, several subscribers, unsubscribe and a subscriber that dies" do
    pid = start_port!()
    {:ok, all} = NFTables.Port.subscribe(pid)
    {:ok, only_b} = NFTables.Port.subscribe(pid, table: "b", types: [:table, :chain])
    parent = self()

    dying =
      spawn(fn ->
        {:ok, r} = NFTables.Port.subscribe(pid)
        send(parent, {:subscribed, r})
      end)

    assert_receive {:subscribed, _}, 5_000
    ref = Process.monitor(dying)
    assert_receive {:DOWN, ^ref, :process, _, _}, 5_000

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "a"}},
        {:add, :table, %{family: :inet, name: "b"}},
        {:add, :chain, %{family: :inet, table: "b", name: "c"}},
        {:add, :set, %{family: :inet, table: "b", name: "s", key_type: 7, key_len: 4}}
      ])

    assert length(transaction(all)) == 5

    assert [
             {:add, :table, %{name: "b"}},
             {:add, :chain, %{table: "b", name: "c"}},
             {:newgen, _}
           ] = transaction(only_b)

    :ok = NFTables.Port.unsubscribe(pid, only_b)
    assert {:error, :not_subscribed} = NFTables.Port.unsubscribe(pid, only_b)
    :ok = NFTables.Port.unsubscribe(pid, all)
    # The dead subscriber was dropped: with nobody left the port closed its
    # event socket, and a change now reaches nobody.
    :ok = NFTables.Port.commit(pid, [{:add, :table, %{family: :inet, name: "z"}}])
    no_event(all)
    no_event(only_b, 0)

    # The socket opens again for a new subscriber.
    {:ok, again} = NFTables.Port.subscribe(pid)
    :ok = NFTables.Port.commit(pid, [{:delete, :table, %{family: :inet, name: "z"}}])
    assert [{:delete, :table, %{name: "z"}}, {:newgen, _}] = transaction(again)
  end

  test "bad subscriptions are refused and the nft format needs the translator" do
    pid = start_port!()

    assert {:error, "subscribe: unknown filter :colour" <> _} =
             NFTables.Port.subscribe(pid, colour: :red)

    assert {:error, "subscribe: format must be :low or :nft" <> _} =
             NFTables.Port.subscribe(pid, format: :json)

    if NFTables.Port.Events.nft_available?() do
      assert {:ok, ref} = NFTables.Port.subscribe(pid, format: :nft)
      :ok = NFTables.Port.unsubscribe(pid, ref)
    else
      assert {:error, :nft_format_unavailable} = NFTables.Port.subscribe(pid, format: :nft)
    end

    # The raw op refuses a second, different subscription id.
    assert :ok = NFTables.Port.Kernel.Events.subscribe(pid, 7, %{})

    assert {:error, %{message: "subscribe: already subscribed as 7; unsubscribe first"}} =
             NFTables.Port.Kernel.Events.subscribe(pid, 8, %{})

    assert {:error, %{message: "subscribe: unknown option :size (known: rcvbuf)"}} =
             NFTables.Port.Kernel.Events.subscribe(pid, 7, %{size: 1})

    assert {:error, %{message: "subscribe: option :rcvbuf: 1 is not from 1024 to 2^30 bytes"}} =
             NFTables.Port.Kernel.Events.subscribe(pid, 7, %{rcvbuf: 1})

    assert {:error, %{message: "unsubscribe: no subscription 8"}} =
             NFTables.Port.Kernel.Events.unsubscribe(pid, 8)

    assert :ok = NFTables.Port.Kernel.Events.unsubscribe(pid, 7)
    assert {:ok, :pong} = NFTables.Port.Control.ping(pid)
  end

  # Its burst of rules is larger than an ordinary user's socket buffers allow.
  @tag :root
  test "an overrun event socket reports :overflow" do
    pid = start_port!()
    # A small receive buffer overruns soon.
    {:ok, ref} = NFTables.Port.subscribe(pid, rcvbuf: 4096)

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "o"}},
        {:add, :set, %{family: :inet, table: "o", name: "s", key_type: 7, key_len: 4}}
      ])

    assert length(transaction(ref)) == 3

    # While the port is stopped nobody reads its event socket.
    os_kill!(pid, "STOP")

    elements =
      for i <- 0..19_999,
          do: %{key: <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>}

    file = Path.join(System.tmp_dir!(), "nfp-overflow-#{System.unique_integer([:positive])}.nft")

    body =
      elements
      |> Enum.map_join(",\n", fn %{key: <<a, b, c, d>>} -> "#{a}.#{b}.#{c}.#{d}" end)

    File.write!(file, "add element inet o s {\n" <> body <> "\n}\n")
    on_exit(fn -> File.rm(file) end)
    nft!(pid, ["-f", file])
    os_kill!(pid, "CONT")

    assert wait_for(ref, :overflow, 30_000)
    assert {:ok, :pong} = NFTables.Port.Control.ping(pid)
    # Events go on after an overflow.
    :ok = NFTables.Port.commit(pid, [{:delete, :table, %{family: :inet, name: "o"}}])
    assert wait_for(ref, {:delete, :table, "o"}, 10_000)
  end

  defp wait_for(ref, {verb, type, name}, timeout) do
    receive do
      {:nftables, ^ref, {^verb, ^type, %{name: ^name}}} -> true
      {:nftables, ^ref, _} -> wait_for(ref, {verb, type, name}, timeout)
    after
      timeout -> false
    end
  end

  defp wait_for(ref, wanted, timeout) do
    receive do
      {:nftables, ^ref, ^wanted} -> true
      {:nftables, ^ref, _} -> wait_for(ref, wanted, timeout)
    after
      timeout -> false
    end
  end
end
