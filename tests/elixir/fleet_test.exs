defmodule NFTables.Port.FleetTest do
  @moduledoc """
  NFTables.Port.Fleet over real Erlang distribution: local BEAM nodes
  started with OTP's :peer, each running its own port in its own network
  namespace.
  """
  use NFTables.Port.Case, async: false

  alias NFTables.Port.Fleet

  @moduletag :kernel
  @moduletag timeout: 180_000

  setup_all do
    unless Node.alive?() do
      {_, 0} = System.cmd("epmd", ["-daemon"])
      name = :"nfp_fleet_#{System.unique_integer([:positive])}@127.0.0.1"
      {:ok, _} = Node.start(name, :longnames)
      on_exit(fn -> Node.stop() end)
    end

    :ok
  end

  defp start_peer!(tag) do
    paths = Enum.flat_map(:code.get_path(), &[~c"-pa", &1])
    cookie = Atom.to_charlist(Node.get_cookie())

    {:ok, peer, node} =
      :peer.start(%{
        name: :"nfp_#{tag}_#{System.unique_integer([:positive])}",
        host: ~c"127.0.0.1",
        longnames: true,
        args: [~c"-setcookie", cookie | paths]
      })

    on_exit(fn ->
      try do
        :peer.stop(peer)
      catch
        :exit, _ -> :ok
      end
    end)
    {:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:elixir], 30_000)
    {:ok, _} = :erpc.call(node, Application, :ensure_all_started, [:logger], 30_000)
    {:ok, _member} = :erpc.call(node, Fleet, :start_member, [[netns: :new], :edge], 60_000)
    node
  end

  defp desired(marks) do
    [
      {:add, :table, %{family: :inet, name: "fleet"}},
      {:add, :chain,
       %{family: :inet, table: "fleet", name: "in", type: "filter", hooknum: :input, prio: 0, policy: :accept}}
    ] ++
      for m <- marks do
        {:add, :rule,
         %{
           family: :inet,
           table: "fleet",
           chain: "in",
           exprs: [
             {:meta, %{key: :mark, dreg: 1}},
             {:cmp, %{sreg: 1, op: :eq, data: <<m::32>>}},
             {:immediate, %{dreg: 0, verdict: :drop}}
           ]
         }}
      end
  end

  defp rules_on(node) do
    {:ok, rules} = :erpc.call(node, NFTables.Port, :list, [NFTables.Port, :rule, %{family: :inet, table: "fleet"}])
    length(rules)
  end

  @tag :root
  test "one sync converges every node; a node that conflicts reports its error" do
    # This node's :pg scope sees the members the peers join.
    start_supervised!(Fleet)
    nodes = for tag <- [:a, :b, :c], do: start_peer!(tag)
    [a, b, c] = nodes

    # Each port is in a namespace of its own: the nodes do not share a ruleset.
    os_pids = for n <- nodes, do: :erpc.call(n, NFTables.Port, :os_pid, [NFTables.Port])
    netns = for p <- os_pids, do: File.read_link!("/proc/#{p}/ns/net")
    assert length(Enum.uniq(netns)) == 3
    refute File.read_link!("/proc/self/ns/net") in netns

    # Dry run: every node's difference, nothing changed.
    diff = Fleet.diff(nodes, desired([1, 2]))
    assert map_size(diff) == 3
    for n <- nodes, do: assert({:ok, %{added: 4, msgs: [_, _, _, _]}} = diff[n])
    for n <- nodes, do: assert({:ok, []} = :erpc.call(n, NFTables.Port, :list, [NFTables.Port, :table, %{}]))

    result = Fleet.sync(nodes, desired([1, 2]))
    assert %{^a => {:ok, %{added: 4}}, ^b => {:ok, %{added: 4}}, ^c => {:ok, %{added: 4}}} = result
    for n <- nodes, do: assert(rules_on(n) == 2)

    # Again: nothing to do anywhere. The group reaches the same ports.
    wait_until(fn -> length(Fleet.members(:edge)) == 3 end, 10_000)
    assert %{^a => {:ok, %{added: 0, deleted: 0}}, ^b => {:ok, %{added: 0}}, ^c => {:ok, %{added: 0}}} =
             Fleet.sync({:group, :edge}, desired([1, 2]))

    # On b the chain is now hooked elsewhere: the kernel refuses to move it.
    :ok =
      :erpc.call(b, NFTables.Port, :commit, [
        NFTables.Port,
        [
          {:delete, :chain, %{family: :inet, table: "fleet", name: "in"}},
          {:add, :chain,
           %{family: :inet, table: "fleet", name: "in", type: "filter", hooknum: :output, prio: 0, policy: :accept}}
        ]
      ])

    result = Fleet.sync(nodes, desired([1, 2, 3]))
    assert {:ok, %{added: 1}} = result[a]
    assert {:error, _reason} = result[b]
    assert {:ok, %{added: 1}} = result[c]
    assert rules_on(a) == 3 and rules_on(c) == 3

    # A rollout stops at the first failure: c is not attempted.
    result = Fleet.sync([a, b, c], desired([4]), mode: :rollout)
    assert {:ok, %{added: 1, deleted: 3}} = result[a]
    assert {:error, _} = result[b]
    assert {:error, :not_attempted} = result[c]
    assert rules_on(a) == 1 and rules_on(c) == 3

    # A node that is down answers an error, the others converge.
    dead = :"nfp_nobody@127.0.0.1"
    result = Fleet.sync([a, dead], desired([4, 5]), timeout: 10_000)
    assert {:ok, %{added: 1}} = result[a]
    assert {:error, {:erpc, :noconnection}} = result[dead]
  end
end
