defmodule NFTables.Port.Test.Roundtrip do
  @moduledoc """
  The round trip of a real ruleset: load it with `nft -f` into the
  namespace of a port A, `dump` it through the port there, `restore` it
  through a port in a fresh namespace B, and compare `nft list ruleset` of
  A and B. Only the values of `expires` may differ.
  """

  @doc """
  Runs the round trip of one .nft file, in the calling test (both ports
  come from `NFTables.Port.Case.start_port!/1`, so it works as root and as
  an ordinary user); returns :ok, {:skip, why} or {:error, why}.
  """
  def run(file) do
    a = NFTables.Port.Case.start_port!()

    try do
      case NFTables.Port.Case.netns_cmd(a, "nft", ["-f", file]) do
        {out, 0} -> compare(a, out)
        {out, _} -> {:skip, "nft -f does not load it: " <> String.trim(out)}
      end
    after
      GenServer.stop(a)
    end
  end

  defp compare(a, _) do
    b = NFTables.Port.Case.start_port!()

    try do
      with {:ok, dump} <- NFTables.Port.dump(a),
           :ok <- restore(b, dump) do
        want = NFTables.Port.Case.nft!(a, "list ruleset")
        got = NFTables.Port.Case.nft!(b, "list ruleset")

        if normalize(want) == normalize(got),
          do: :ok,
          else: {:error, {:differs, want, got}}
      end
    after
      GenServer.stop(b)
    end
  end

  defp restore(pid, dump) do
    case NFTables.Port.restore(pid, dump) do
      :ok -> :ok
      {:error, reason} -> {:error, {:restore, reason, dump}}
    end
  end

  # Elements with a timeout count down between the two listings.
  def normalize(text), do: Regex.replace(~r/expires [0-9hms.d]+/, text, "expires X")
end
