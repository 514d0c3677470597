defmodule NFTables.Port.Test.Roundtrip do
  @moduledoc """
  The round trip of a real ruleset: load it with `nft -f` into a named
  network namespace A, `dump` it through the port there, `restore` it
  through a port in a fresh namespace B, and compare `nft list ruleset` of
  A and B. Only the values of `expires` may differ.
  """

  @doc "Runs the round trip of one .nft file; returns :ok, {:skip, why} or {:error, why}."
  def run(file) do
    ns = "nfp_rt_#{System.unique_integer([:positive])}"
    {_, 0} = System.cmd("ip", ["netns", "add", ns])

    try do
      case System.cmd("ip", ["netns", "exec", ns, "nft", "-f", file], stderr_to_stdout: true) do
        {out, 0} -> compare(ns, out)
        {out, _} -> {:skip, "nft -f does not load it: " <> String.trim(out)}
      end
    after
      System.cmd("ip", ["netns", "del", ns])
    end
  end

  defp compare(ns, _) do
    {:ok, a} = NFTables.Port.start_link(netns: ns)
    {:ok, b} = NFTables.Port.start_link(netns: :new)

    try do
      with {:ok, dump} <- NFTables.Port.dump(a),
           :ok <- restore(b, dump) do
        want = list_ruleset(["ip", "netns", "exec", ns])
        got = list_ruleset(nsenter(b))

        if normalize(want) == normalize(got),
          do: :ok,
          else: {:error, {:differs, want, got}}
      end
    after
      GenServer.stop(a)
      GenServer.stop(b)
    end
  end

  defp restore(pid, dump) do
    case NFTables.Port.restore(pid, dump) do
      :ok -> :ok
      {:error, reason} -> {:error, {:restore, reason, dump}}
    end
  end

  @doc "The command prefix that enters a port's network namespace."
  def nsenter(pid) do
    os_pid = NFTables.Port.os_pid(pid)

    if File.read_link("/proc/self/ns/user") == File.read_link("/proc/#{os_pid}/ns/user"),
      do: ["nsenter", "--target", "#{os_pid}", "--net"],
      else: ["nsenter", "--target", "#{os_pid}", "--user", "--net"]
  end

  defp list_ruleset([cmd | args]) do
    {out, 0} = System.cmd(cmd, args ++ ["nft", "list", "ruleset"], stderr_to_stdout: true)
    out
  end

  # Elements with a timeout count down between the two listings.
  def normalize(text), do: Regex.replace(~r/expires [0-9hms.d]+/, text, "expires X")
end
