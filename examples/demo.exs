# The main job: apply an example firewall through the port into a throwaway
# network namespace, then print it back as `nft list ruleset` shows it.
#
#   scripts/demo          (installs what is missing, builds, runs this)

alias NFTables.Port

tcp = 6
ssh = <<0, 22>>
https = <<1, 187>>

{:ok, pid} = Port.start_link(netns: :new)

ruleset = [
  {:add, :table, %{family: :inet, name: "demo"}},
  {:add, :set,
   %{family: :inet, table: "demo", name: "blocklist", key_type: 7, key_len: 4,
     flags: [:interval], id: 1}},
  {:add, :element,
   %{family: :inet, table: "demo", set: "blocklist",
     elements: [
       # 198.51.100.0/24 as an interval: the start, and the end flagged.
       %{key: <<198, 51, 100, 0>>},
       %{key: <<198, 51, 101, 0>>, flags: [:interval_end]},
       %{key: <<203, 0, 113, 7>>},
       %{key: <<203, 0, 113, 8>>, flags: [:interval_end]}
     ]}},
  {:add, :chain,
   %{family: :inet, table: "demo", name: "input", type: "filter", hooknum: :input,
     prio: 0, policy: :drop}},
  {:add, :chain, %{family: :inet, table: "demo", name: "services"}},
  # iif "lo" accept
  {:add, :rule,
   %{family: :inet, table: "demo", chain: "input",
     exprs: [
       {:meta, %{key: :iifname, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: <<"lo", 0::size(14)-unit(8)>>}},
       {:immediate, %{dreg: 0, verdict: :accept}}
     ]}},
  # ip saddr @blocklist counter drop
  {:add, :rule,
   %{family: :inet, table: "demo", chain: "input",
     exprs: [
       {:meta, %{key: :nfproto, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: <<2>>}},
       {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
       {:lookup, %{sreg: 1, set: "blocklist"}},
       {:counter, %{}},
       {:immediate, %{dreg: 0, verdict: :drop}}
     ]}},
  # meta l4proto tcp jump services
  {:add, :rule,
   %{family: :inet, table: "demo", chain: "input",
     exprs: [
       {:meta, %{key: :l4proto, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: <<tcp>>}},
       {:immediate, %{dreg: 0, verdict: :jump, chain: "services"}}
     ]}},
  # tcp dport 22 counter accept; tcp dport 443 accept
  {:add, :rule,
   %{family: :inet, table: "demo", chain: "services",
     exprs: [
       {:meta, %{key: :l4proto, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: <<tcp>>}},
       {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: ssh}},
       {:counter, %{}},
       {:immediate, %{dreg: 0, verdict: :accept}}
     ]}},
  {:add, :rule,
   %{family: :inet, table: "demo", chain: "services",
     exprs: [
       {:meta, %{key: :l4proto, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: <<tcp>>}},
       {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
       {:cmp, %{sreg: 1, op: :eq, data: https}},
       {:immediate, %{dreg: 0, verdict: :accept}}
     ]}}
]

case Port.commit(pid, ruleset, echo: true) do
  {:ok, handles} ->
    IO.puts("Applied #{length(ruleset)} messages in one transaction; kernel handles: #{inspect(handles)}")

  {:error, reason} ->
    IO.puts(:stderr, "commit failed: #{inspect(reason)}")
    System.halt(1)
end

{:ok, %{genid: genid, msgs: msgs}} = Port.dump(pid)
IO.puts("Dumped generation #{genid}: #{length(msgs)} messages\n")

os_pid = Port.os_pid(pid)

args =
  if File.read_link("/proc/self/ns/user") == File.read_link("/proc/#{os_pid}/ns/user"),
    do: ["--target", "#{os_pid}", "--net"],
    else: ["--target", "#{os_pid}", "--user", "--net"]

case System.cmd("nsenter", args ++ ["nft", "list", "ruleset"], stderr_to_stdout: true) do
  {out, 0} ->
    IO.puts("nft list ruleset (in the port's namespace):\n")
    IO.write(out)

  {out, status} ->
    IO.puts(:stderr, "nft list ruleset failed (#{status}): #{out}")
    System.halt(1)
end
