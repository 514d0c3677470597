# The port contender of the benchmark (bench/README.md); bench/run drives it.
#
#   mix run bench/port_bench.exs COMMAND ARGS... NS[,NS...] [prefix=CMD,ARG,...]
#   mix run bench/port_bench.exs serve      # commands one per line on stdin
#
# Commands (one run per namespace in the list, a fresh port for each run):
#
#   rules N CHAINS NSS          load the mix of N rules in CHAINS chains, one commit
#   elems N plain|interval NSS  load N addresses (or N CIDRs) into a set, one commit
#   dump NSS                    NFTables.Port.list(pid, :rule, %{})
#   lat COUNT NSS               COUNT one-element commits into set "lat", then
#                               COUNT NFTables.Port.Control.ping/1, timed one by one
#   rate COUNT elem|rule NSS    8 concurrent callers commit one element (into
#                               cs0..cs7) or one rule (into cc0..cc7), COUNT times each
#
# Namespaces are made (ip netns add), filled and removed by the caller; the
# port joins them with `netns: NS`. `prefix=` runs the port under another
# program (start_link's :command_prefix), e.g. perf record. Messages are
# built before the clock starts; a call is timed from the Elixir call to its
# reply. Every result is one line `RESULT key=value ...` on stdout; `serve`
# ends the answer to each command with a line `DONE`.
Code.require_file("ruleset.exs", __DIR__)

defmodule Bench.Port do
  alias Bench.Ruleset

  def main(["serve"]) do
    case IO.read(:stdio, :line) do
      :eof ->
        :ok

      line ->
        # Each command in its own process, so its garbage goes with it.
        args = String.split(line)
        task = Task.async(fn -> run(args) end)
        Task.await(task, :infinity)
        IO.puts("DONE")
        main(["serve"])
    end
  end

  def main(args), do: run(args)

  defp run(args) do
    {prefix, args} =
      case List.last(args) do
        "prefix=" <> p -> {String.split(p, ","), Enum.drop(args, -1)}
        _ -> {[], args}
      end

    Process.put(:prefix, prefix)
    command(args)
  rescue
    e ->
      IO.puts("ERROR " <> String.replace(Exception.format(:error, e, __STACKTRACE__), "\n", " | "))
  end

  defp command(["rules", n, chains, nss]) do
    {n, chains} = {String.to_integer(n), String.to_integer(chains)}
    loads("rules", nss, fn -> Ruleset.rules(n, chains) end)
  end

  defp command(["elems", n, kind, nss]) do
    n = String.to_integer(n)
    kind = String.to_existing_atom(kind)
    loads("elems_#{kind}", nss, fn -> Ruleset.elements(n, kind) end)
  end

  defp command(["dump", nss]) do
    each_run(nss, fn pid, run ->
      :erlang.garbage_collect()
      c0 = cpu(pid)
      {us, {:ok, rules}} = :timer.tc(fn -> NFTables.Port.list(pid, :rule, %{}) end)
      cpu = cpu_delta(c0, cpu(pid))
      # What decoding such a reply costs the BEAM (the GenServer does it once).
      bin = :erlang.term_to_binary({1, {:ok, %{objects: rules}}})
      {b2t, _} = :timer.tc(fn -> :erlang.binary_to_term(bin) end)
      copy = copy_us(rules)

      result([case: "dump", run: run, ok: 1, total_ms: ms(us), rules: length(rules)] ++ cpu ++
               [reply_bytes: byte_size(bin), b2t_ms: ms(b2t), copy_ms: ms(copy), hwm_kb: hwm(pid)])
    end)
  end

  defp command(["lat", count, nss]) do
    count = String.to_integer(count)

    each_run(nss, fn pid, run ->
      base = 0x0AC90000 + run * 4096
      # Warm up both paths, then time them one call at a time.
      for k <- 1..50, do: :ok = NFTables.Port.commit(pid, Ruleset.one_element("lat", base + k))
      for _ <- 1..50, do: {:ok, :pong} = NFTables.Port.Control.ping(pid)

      msgs = for k <- 1..count, do: Ruleset.one_element("lat", base + 100 + k)

      commit =
        Enum.map(msgs, fn m -> elem(:timer.tc(fn -> :ok = NFTables.Port.commit(pid, m) end), 0) end)

      ping =
        for _ <- 1..count,
            do: elem(:timer.tc(fn -> {:ok, :pong} = NFTables.Port.Control.ping(pid) end), 0)

      result([case: "lat", run: run, ok: 1] ++ stats(commit) ++ [hwm_kb: hwm(pid)])
      result([case: "ping", run: run, ok: 1] ++ stats(ping))
    end)
  end

  defp command(["rate", count, kind, nss]) do
    count = String.to_integer(count)

    commit_fun = fn k, n ->
      case kind do
        "elem" -> Ruleset.one_element("cs#{k}", 0x0A000000 + (120 + k) * 65_536 + rem(n, 65_536))
        "rule" -> Ruleset.one_rule("cc#{k}")
      end
    end

    each_run(nss, fn pid, run ->
      parent = self()

      # Every caller waits for the go, then commits count times. (A fixed
      # amount of work: rule commits get slower as the chains grow.)
      callers =
        for k <- 0..7 do
          spawn_link(fn ->
            receive do
              :go -> send(parent, {:done, k, loop(pid, k, 0, count, commit_fun)})
            end
          end)
        end

      c0 = cpu(pid)
      t0 = System.monotonic_time(:microsecond)
      for c <- callers, do: send(c, :go)
      counts = for k <- 0..7, do: receive(do: ({:done, ^k, n} -> n))
      t1 = System.monotonic_time(:microsecond)
      cpu = cpu_delta(c0, cpu(pid))
      total = Enum.sum(counts)

      result([case: "rate_#{kind}", run: run, ok: 1, commits: total,
             seconds: Float.round((t1 - t0) / 1.0e6, 3),
             per_s: round(total / ((t1 - t0) / 1.0e6)), min_caller: Enum.min(counts),
             max_caller: Enum.max(counts)] ++ cpu ++ [hwm_kb: hwm(pid)])
    end)
  end

  defp command(args), do: raise(ArgumentError, "bad arguments #{inspect(args)}")

  defp loop(_pid, _k, n, n, _commit_fun), do: n

  defp loop(pid, k, n, count, commit_fun) do
    :ok = NFTables.Port.commit(pid, commit_fun.(k, n))
    loop(pid, k, n + 1, count, commit_fun)
  end

  # Build the messages, start a port, time the commit; once per namespace.
  defp loads(what, nss, build) do
    for {ns, run} <- Enum.with_index(String.split(nss, ","), 1) do
      msgs = build.()
      # What the BEAM spends on the request before the port sees it: the
      # GenServer.call copies it into the server process, which encodes it.
      {t2b, bytes} = :timer.tc(fn -> byte_size(:erlang.term_to_binary(msgs)) end)
      copy = copy_us(msgs)
      pid = start(ns)
      :erlang.garbage_collect()
      c0 = cpu(pid)
      {us, reply} = :timer.tc(fn -> NFTables.Port.commit(pid, msgs) end)
      cpu = cpu_delta(c0, cpu(pid))
      ok = if reply == :ok, do: 1, else: 0

      if ok == 0,
        do: IO.puts(:stderr, "port_bench.exs: #{what} failed: #{inspect(reply, limit: 20)}")

      result([case: what, run: run, ok: ok, total_ms: ms(us), msgs: length(msgs)] ++ cpu ++
               [request_bytes: bytes, t2b_ms: ms(t2b), copy_ms: ms(copy), hwm_kb: hwm(pid),
                os_pid: os_pid(pid)])

      NFTables.Port.stop(pid)
    end
  end

  defp each_run(nss, fun) do
    for {ns, run} <- Enum.with_index(String.split(nss, ","), 1) do
      pid = start(ns)
      fun.(pid, run)
      NFTables.Port.stop(pid)
    end
  end

  defp start(ns) do
    {:ok, pid} =
      NFTables.Port.start_link(
        netns: ns,
        timeout: :infinity,
        max_frame: 2_000_000_000,
        command_prefix: Process.get(:prefix, [])
      )

    pid
  end

  # Sending a term to another process copies it: what GenServer.call (the
  # request) and GenServer.reply (the reply) cost for a big term.
  defp copy_us(term) do
    parent = self()
    pid = spawn(fn -> receive(do: ({:term, _t} -> send(parent, :got))) end)
    {us, _} = :timer.tc(fn -> send(pid, {:term, term}); receive(do: (:got -> :ok)) end)
    us
  end

  defp os_pid(pid), do: NFTables.Port.os_pid(pid) || -1

  # Peak resident memory of the port process (not of the BEAM), read just
  # before the port is stopped.
  defp hwm(pid) do
    with os_pid when is_integer(os_pid) <- NFTables.Port.os_pid(pid),
         {:ok, status} <- File.read("/proc/#{os_pid}/status"),
         [_, kb] <- Regex.run(~r/VmHWM:\s+(\d+) kB/, status) do
      String.to_integer(kb)
    else
      _ -> -1
    end
  end

  # CPU time of the port process (user and system: the kernel runs a
  # transaction inside the port's sendmsg()), from /proc: schedstat in ns,
  # stat's utime/stime in clock ticks (1/100 s).
  defp cpu(pid) do
    os_pid = NFTables.Port.os_pid(pid)

    with {:ok, sched} <- File.read("/proc/#{os_pid}/schedstat"),
         {:ok, stat} <- File.read("/proc/#{os_pid}/stat") do
      [_, rest] = String.split(stat, ") ", parts: 2)
      fields = String.split(rest)
      {String.to_integer(hd(String.split(sched))), String.to_integer(Enum.at(fields, 11)),
       String.to_integer(Enum.at(fields, 12))}
    else
      _ -> nil
    end
  end

  defp cpu_delta({n0, u0, s0}, {n1, u1, s1}),
    do: [cpu_ms: Float.round((n1 - n0) / 1.0e6, 1), user_ms: (u1 - u0) * 10, sys_ms: (s1 - s0) * 10]

  defp cpu_delta(_, _), do: []

  defp stats(samples) do
    s = Enum.sort(samples)
    n = length(s)

    [
      n: n,
      median_us: Enum.at(s, div(n, 2)),
      p99_us: Enum.at(s, trunc((n - 1) * 0.99)),
      mean_us: Float.round(Enum.sum(s) / n, 1),
      min_us: hd(s),
      max_us: List.last(s)
    ]
  end

  defp ms(us), do: Float.round(us / 1000, 3)

  defp result(kv) do
    IO.puts("RESULT " <> Enum.map_join(kv, " ", fn {k, v} -> "#{k}=#{v}" end))
  end
end

Bench.Port.main(System.argv())
