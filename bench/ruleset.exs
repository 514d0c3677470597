# The benchmark's ruleset as NFTables.Port messages. The same ruleset is
# written as nft text and JSON by bench/driver.py and built with libnftnl by
# bench/raw_loader.c; keep the three in step (bench/run compares what each
# one loads, with `nft list ruleset`, at the smallest size).
defmodule Bench.Ruleset do
  @moduledoc false

  @table "bench"
  @inet %{family: :inet, table: @table}
  # nft's user data of an ipv4_addr set: key byte order big endian.
  @set_udata <<0, 4, 2, 0, 0, 0>>

  def table, do: {:add, :table, %{family: :inet, name: @table}}

  def set(name, flags, id) do
    {:add, :set,
     Map.merge(@inet, %{
       name: name,
       flags: flags,
       key_type: 7,
       key_len: 4,
       id: id,
       userdata: @set_udata
     })}
  end

  def chain(name, base? \\ false)

  def chain(name, true),
    do:
      {:add, :chain,
       Map.merge(@inet, %{name: name, type: "filter", hooknum: :input, prio: 0, policy: :accept})}

  def chain(name, false), do: {:add, :chain, Map.put(@inet, :name, name)}

  @doc "Table, set blk, chain sub, chains c0 (base) .. c<n-1>, n rules, chain by chain."
  def rules(n, nchains) do
    chains = for c <- 0..(nchains - 1), do: chain("c#{c}", c == 0)
    sub_rule = rule("sub", [{:counter, %{}}, {:immediate, %{dreg: 0, verdict: :return}}])

    rules =
      for c <- 0..(nchains - 1), i <- c..(n - 1)//nchains, do: rule("c#{c}", exprs(i))

    [table(), set("blk", [], 1), chain("sub") | chains] ++ [sub_rule | rules]
  end

  def rule(chain, exprs),
    do: {:add, :rule, Map.merge(@inet, %{chain: chain, exprs: exprs})}

  @doc "The expressions of rule i of the mix (raw_loader.c rule_exprs)."
  def exprs(i) do
    port = 1 + rem(i, 65_535)
    a = Bitwise.band(Bitwise.bsr(i, 8), 255)
    b = Bitwise.band(i, 255)
    c = Bitwise.band(Bitwise.bsr(i, 16), 255)

    case rem(i, 6) do
      # ip saddr 10.a.b.0/24 tcp dport P counter accept
      0 ->
        ipv4() ++
          [payload(:network, 12, 3), cmp(<<10, a, b>>)] ++
          l4(6, port) ++ [counter(), verdict(:accept)]

      # ip daddr 172.16.X.0/20 udp dport P drop
      1 ->
        ipv4() ++
          [
            payload(:network, 16, 4),
            {:bitwise,
             %{sreg: 1, dreg: 1, len: 4, mask: <<255, 255, 240, 0>>, xor: <<0, 0, 0, 0>>}},
            cmp(<<172, 16, rem(i, 16) * 16, 0>>)
          ] ++ l4(17, port) ++ [verdict(:drop)]

      # tcp dport P counter drop
      2 ->
        l4(6, port) ++ [counter(), verdict(:drop)]

      # ip saddr @blk counter drop
      3 ->
        ipv4() ++
          [payload(:network, 12, 4), {:lookup, %{sreg: 1, set: "blk"}}, counter(),
           verdict(:drop)]

      # ip saddr 10.c.a.b tcp dport P jump sub
      4 ->
        ipv4() ++
          [payload(:network, 12, 4), cmp(<<10, c, a, b>>)] ++
          l4(6, port) ++ [{:immediate, %{dreg: 0, verdict: :jump, chain: "sub"}}]

      # udp dport P counter accept
      5 ->
        l4(17, port) ++ [counter(), verdict(:accept)]
    end
  end

  defp ipv4, do: [{:meta, %{key: :nfproto, dreg: 1}}, cmp(<<2>>)]

  defp l4(proto, port),
    do: [{:meta, %{key: :l4proto, dreg: 1}}, cmp(<<proto>>), payload(:transport, 2, 2), cmp(<<port::16>>)]

  defp payload(base, offset, len),
    do: {:payload, %{base: base, offset: offset, len: len, dreg: 1}}

  defp cmp(data), do: {:cmp, %{sreg: 1, op: :eq, data: data}}
  defp counter, do: {:counter, %{}}
  defp verdict(v), do: {:immediate, %{dreg: 0, verdict: v}}

  @doc "Table, set and n elements: addresses 10.0.0.0 + i, or CIDRs 32.0.0.0 + 512 i /24."
  def elements(n, :plain) do
    elems = for i <- 0..(n - 1), do: %{key: <<0x0A000000 + i::32>>}
    [table(), set("plain", [], 1), element_msg("plain", elems)]
  end

  def elements(n, :interval) do
    # As nft sends CIDRs to an interval set: 0.0.0.0 closes the range below
    # the first start, then every /24 is its start and its (flagged) end.
    elems =
      for i <- 0..(n - 1), reduce: [] do
        acc ->
          start = 0x20000000 + i * 512
          [%{key: <<start + 256::32>>, flags: [:interval_end]}, %{key: <<start::32>>} | acc]
      end

    elems = [%{key: <<0::32>>, flags: [:interval_end]} | Enum.reverse(elems)]
    [table(), set("nets", [:interval], 1), element_msg("nets", elems)]
  end

  def element_msg(set, elems),
    do: {:add, :element, Map.merge(@inet, %{set: set, elements: elems})}

  @doc "One commit of one element into set."
  def one_element(set, key), do: [element_msg(set, [%{key: <<key::32>>}])]

  @doc "One commit of one rule (kind 2 of the mix: tcp dport 3 counter drop) into chain."
  def one_rule(chain), do: [rule(chain, exprs(2))]
end
