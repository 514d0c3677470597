# Watch and converge, measured (bench/README.md, "watch_bench"):
#
#   mix run bench/watch_bench.exs [--quick] [--out FILE]
#
#   1. event latency: one-element commits by this process; from the call to
#      the subscriber's {:nftables, ref, event} of that element; median and
#      p99, next to the commit's own round trip;
#   2. a cache read of a 10,000-rule chain (NFTables.Port.Cache.rules/4)
#      against NFTables.Port.list/4 of the same chain;
#   3. a no-op NFTables.Port.sync/3 of 100,000 rules with a cache (the first
#      and the repeated ones), against
#      one NFTables.Port.dump/2 and against the same sync without a cache
#      (which lists the table). The port's GenServer is suspended during
#      the cached sync: it cannot talk to the kernel at all, so it made no
#      dump.
#
# Every port runs with netns: :new; the host's ruleset is never touched.
# Writes a markdown report to bench/results/watch-latest.md (or --out).
Code.require_file("ruleset.exs", __DIR__)

defmodule Bench.Watch do
  alias NFTables.Port.Cache

  def main(args) do
    {opts, _, _} = OptionParser.parse(args, strict: [quick: :boolean, out: :string])
    quick = Keyword.get(opts, :quick, false)
    out = Keyword.get(opts, :out, Path.join(__DIR__, "results/watch-latest.md"))
    sizes = if quick, do: %{lat: 200, chain: 1_000, sync: 10_000, reads: 20}, else: %{lat: 2_000, chain: 10_000, sync: 100_000, reads: 50}

    load = File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")
    {commit, 0} = System.cmd("git", ["rev-parse", "--short", "HEAD"], cd: Path.join(__DIR__, ".."))
    lat = latency(sizes.lat)
    read = cache_read(sizes.chain, sizes.reads)
    sync = noop_sync(sizes.sync)
    load_after = File.read!("/proc/loadavg") |> String.split() |> Enum.take(3) |> Enum.join(" ")

    report = """
    # Watch and converge: events, cache, sync

    `mix run bench/watch_bench.exs#{if quick, do: " --quick", else: ""}` at commit #{String.trim(commit)}, #{DateTime.utc_now() |> DateTime.truncate(:second)}.
    #{System.schedulers_online()} schedulers; load average #{load} before, #{load_after} after.
    **The machine was shared and busy during this run** (other engineers'
    builds and test suites): the numbers are indicative, not a baseline.

    ## 1. Event latency (#{sizes.lat} one-element commits)

    | what | median | p99 |
    | --- | ---: | ---: |
    | commit call -> subscriber's event | #{us(lat.event.median)} | #{us(lat.event.p99)} |
    | commit call -> commit's reply | #{us(lat.reply.median)} | #{us(lat.reply.p99)} |

    Both are measured from the commit call; the event is stamped by the
    subscriber process when it receives `{:nftables, ref, event}`. The event
    arrives #{if lat.event.median <= lat.reply.median, do: "before", else: "after"} the commit's own reply at the median
    (the kernel multicasts at commit time, before its ACK; the port reads
    its event socket in the same poll loop as requests).

    ## 2. Reading a chain of #{sizes.chain} rules

    | what | median |
    | --- | ---: |
    | `Cache.rules/4` (ETS) | #{us(read.cache)} |
    | `NFTables.Port.list(pid, :rule, %{chain: ...})` | #{us(read.list)} |

    #{ratio(read.list, read.cache)} faster from the cache; both return the same #{sizes.chain} rules.

    ## 3. A no-op sync of #{sizes.sync} rules

    | what | median |
    | --- | ---: |
    | `sync(pid, desired, cache: cache)`, nothing to do: the first time (reads and compares every rule) | #{us(sync.cold)} |
    | the same again (chains already found equal, unchanged since: not read again) | #{us(sync.cached)} |
    | `sync(pid, desired)` without a cache (lists the table) | #{us(sync.uncached)} |
    | `NFTables.Port.dump(pid)` | #{us(sync.dump)} |

    A repeated no-op sync takes #{Float.round(sync.cached / sync.dump * 100, 1)} % of a dump's time, the first one
    #{Float.round(sync.cold / sync.dump * 100, 1)} % (target: under 10 %). Each answered `#{inspect(sync.answer)}`
    and ran with the port's server suspended (no request to the port, so no
    kernel dump). The cache remembers, per chain, the version of its rules
    that a sync found equal to a fingerprint (64 bits of hash) of the
    desired rules; while neither changes, the rules are not copied out of
    ETS again.
    """

    File.mkdir_p!(Path.dirname(out))
    File.write!(out, report)
    IO.puts(report)
  end

  defp us(v) when v >= 10_000, do: "#{Float.round(v / 1000, 1)} ms"
  defp us(v), do: "#{Float.round(v * 1.0, 1)} µs"
  defp ratio(a, b), do: "#{round(a / max(b, 0.1))}x"

  defp stats(samples) do
    s = Enum.sort(samples)
    n = length(s)
    %{median: Enum.at(s, div(n, 2)), p99: Enum.at(s, min(n - 1, div(n * 99, 100)))}
  end

  defp median(samples), do: stats(samples).median

  defp port!(opts \\ []) do
    {:ok, pid} = NFTables.Port.start_link([netns: :new, timeout: :infinity, max_frame: 1_073_741_824] ++ opts)
    pid
  end

  defp latency(n) do
    pid = port!()

    :ok =
      NFTables.Port.commit(pid, [
        {:add, :table, %{family: :inet, name: "lat"}},
        {:add, :set, %{family: :inet, table: "lat", name: "s", key_type: 7, key_len: 4}}
      ])

    # The subscriber is a process of its own that stamps each event as it
    # receives it; this process stamps the call.
    parent = self()

    listener =
      spawn_link(fn ->
        {:ok, ref} = NFTables.Port.subscribe(pid, types: [:element])
        send(parent, :listening)
        listen(parent, ref)
      end)

    receive do
      :listening -> :ok
    after
      10_000 -> raise "the listener did not subscribe"
    end

    samples =
      for i <- 1..n do
        key = <<10, div(i, 65_536), div(rem(i, 65_536), 256), rem(i, 256)>>
        msg = {:add, :element, %{family: :inet, table: "lat", set: "s", elements: [%{key: key}]}}
        t0 = System.monotonic_time(:nanosecond)
        :ok = NFTables.Port.commit(pid, [msg])
        t1 = System.monotonic_time(:nanosecond)

        t2 =
          receive do
            {:event_at, ^key, at} -> at
          after
            5_000 -> raise "no event for element #{i}"
          end

        {(t1 - t0) / 1000, (t2 - t0) / 1000}
      end

    Process.unlink(listener)
    Process.exit(listener, :kill)
    NFTables.Port.stop(pid)
    {reply, event} = Enum.unzip(samples)
    %{reply: stats(reply), event: stats(event)}
  end

  defp listen(parent, ref) do
    receive do
      {:nftables, ^ref, {:add, :element, %{elements: [%{key: key}]}}} ->
        send(parent, {:event_at, key, System.monotonic_time(:nanosecond)})
        listen(parent, ref)

      {:nftables, ^ref, _} ->
        listen(parent, ref)
    end
  end

  defp cache_read(n, reads) do
    pid = port!()
    msgs = Bench.Ruleset.rules(n, 1)
    :ok = NFTables.Port.commit(pid, msgs)
    {:ok, cache} = Cache.start_link(port: pid)
    :ok = Cache.sync_point(cache, 60_000)
    filter = %{family: :inet, table: "bench", chain: "c0"}
    {:ok, listed} = NFTables.Port.list(pid, :rule, filter)
    cached = Cache.rules(cache, :inet, "bench", "c0")
    true = length(cached) == n and Enum.map(cached, & &1.handle) == Enum.map(listed, & &1.handle)

    c = for _ <- 1..reads, do: elem(:timer.tc(fn -> Cache.rules(cache, :inet, "bench", "c0") end), 0)
    l = for _ <- 1..max(div(reads, 5), 3), do: elem(:timer.tc(fn -> NFTables.Port.list(pid, :rule, filter) end), 0)
    GenServer.stop(cache)
    NFTables.Port.stop(pid)
    %{cache: median(c), list: median(l)}
  end

  defp noop_sync(n) do
    pid = port!()
    desired = Bench.Ruleset.rules(n, 10)
    {:ok, _} = NFTables.Port.sync(pid, desired, timeout: 600_000)
    {:ok, cache} = Cache.start_link(port: pid)
    :ok = Cache.sync_point(cache, 120_000)

    cached =
      for _ <- 1..6 do
        :sys.suspend(pid)

        try do
          {t, {:ok, answer}} = :timer.tc(fn -> NFTables.Port.sync(pid, desired, cache: cache) end)
          %{added: 0, deleted: 0, updated: 0} = answer
          {t, answer}
        after
          :sys.resume(pid)
        end
      end

    uncached =
      for _ <- 1..3 do
        {t, {:ok, %{added: 0, deleted: 0}}} = :timer.tc(fn -> NFTables.Port.sync(pid, desired) end)
        t
      end

    dumps = for _ <- 1..3, do: elem(:timer.tc(fn -> {:ok, _} = NFTables.Port.dump(pid) end), 0)
    GenServer.stop(cache)
    NFTables.Port.stop(pid)

    [{cold, _} | steady] = cached

    %{
      cold: cold,
      cached: median(Enum.map(steady, &elem(&1, 0))),
      answer: cached |> hd() |> elem(1),
      uncached: median(uncached),
      dump: median(dumps)
    }
  end
end

Bench.Watch.main(System.argv())
