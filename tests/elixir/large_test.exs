defmodule NFTables.Port.LargeTest do
  @moduledoc """
  Transactions of any size: a million rules and a million set elements,
  each in one atomic commit, and dumped back. Slow (tens of seconds), so
  tagged :slow: `scripts/test` runs them under CI or with
  NFTABLES_PORT_SLOW=1. Timings live in bench/, not here.
  """
  use NFTables.Port.Case, async: false

  @moduletag :kernel
  @moduletag :slow
  @moduletag timeout: 900_000

  @million 1_000_000
  @chains 100

  defp rule(chain, i) do
    {:add, :rule,
     %{
       family: :inet,
       table: "big",
       chain: chain,
       exprs: [
         {:meta, %{key: :l4proto, dreg: 1}},
         {:cmp, %{sreg: 1, op: :eq, data: <<6>>}},
         {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
         {:cmp,
          %{sreg: 1, op: :eq, data: <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>}},
         {:counter, %{}},
         {:immediate, %{dreg: 0, verdict: :accept}}
       ]
     }}
  end

  test "a million rules in one transaction, listed back" do
    pid = start_port!(timeout: :infinity, max_frame: 1_073_741_824)

    chains =
      for c <- 1..@chains,
          do: {:add, :chain, %{family: :inet, table: "big", name: "c#{c}"}}

    rules = for i <- 0..(@million - 1), do: rule("c#{rem(i, @chains) + 1}", i)
    msgs = [{:add, :table, %{family: :inet, name: "big"}} | chains] ++ rules

    assert :ok = NFTables.Port.commit(pid, msgs)

    {:ok, listed} = NFTables.Port.list(pid, :rule, %{family: :inet, table: "big"})
    assert length(listed) == @million

    # Every rule is there once, in its chain, with what was sent.
    counts = Enum.frequencies_by(listed, & &1.chain)
    assert map_size(counts) == @chains
    assert Enum.all?(counts, fn {_, n} -> n == div(@million, @chains) end)
    sample = Enum.find(listed, &(&1.chain == "c7"))
    {:add, :rule, sent} = rule("c7", 6)
    assert sample.exprs |> Enum.at(3) == sent.exprs |> Enum.at(3)
  end

  test "a million set elements in one transaction, listed back" do
    pid = start_port!(timeout: :infinity, max_frame: 1_073_741_824)

    elements =
      for i <- 0..(@million - 1),
          do: %{key: <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>}

    assert {:ok, _} =
             NFTables.Port.commit(
               pid,
               [
                 {:add, :table, %{family: :inet, name: "big"}},
                 {:add, :set,
                  %{family: :inet, table: "big", name: "blk", key_type: 7, key_len: 4}},
                 {:add, :element, %{family: :inet, table: "big", set: "blk", elements: elements}}
               ],
               echo: true
             )

    {:ok, [listed]} =
      NFTables.Port.list(pid, :element, %{family: :inet, table: "big", set: "blk"})

    assert length(listed.elements) == @million
    keys = MapSet.new(listed.elements, & &1.key)
    assert MapSet.size(keys) == @million
    assert MapSet.member?(keys, <<10, 15, 66, 63>>)
  end

  test "a transaction that fails on its last of a million elements leaves nothing" do
    pid = start_port!(timeout: :infinity, max_frame: 1_073_741_824)

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "big"}},
        {:add, :set, %{family: :inet, table: "big", name: "blk", key_type: 7, key_len: 4}}
      ])

    elements =
      for i <- 0..(@million - 1),
          do: %{key: <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>}

    assert {:error, %{index: 1, errno: :enoent}} =
             NFTables.Port.commit(pid, [
               {:add, :element, %{family: :inet, table: "big", set: "blk", elements: elements}},
               {:add, :element,
                %{family: :inet, table: "big", set: "nope", elements: [%{key: <<1, 2, 3, 4>>}]}}
             ])

    assert {:ok, [%{elements: []}]} =
             NFTables.Port.list(pid, :element, %{family: :inet, table: "big", set: "blk"})
  end
end
