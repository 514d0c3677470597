# Tests that need the kernel (a fresh network namespace with nf_tables) are
# tagged :kernel. Where they cannot run they are excluded with the reason --
# except under CI=true, where that must fail the run. Tests tagged :slow run
# only with `mix test --include slow`.
exclude = [:slow]

exclude =
  case NFTables.Port.Case.kernel_unavailable_reason() do
    nil ->
      exclude

    reason ->
      if System.get_env("CI") == "true" do
        raise "CI=true, but the kernel tests cannot run here: " <> reason
      end

      IO.puts("Skipping tests tagged :kernel: " <> reason)
      [:kernel | exclude]
  end

if match?({:error, _}, NFTables.Port.find_port_binary()) do
  IO.puts(
    "Note: port_nftables not found (build it with `mix compile`, without " <>
      "NFTABLES_PORT_SKIP_BUILD); tests that start the port will fail."
  )
end

# Tests tagged :root need root itself (file capabilities, setcap, named
# namespaces in /run/netns, a port run as nobody): as an ordinary user they
# are skipped, with this reason, CI or not. Everything else runs as an
# ordinary user too, through unprivileged user namespaces.
exclude =
  if Regex.match?(~r/^Uid:\s+\d+\s+0\s/m, File.read!("/proc/self/status")) do
    exclude
  else
    IO.puts(
      "Skipping tests tagged :root: they need root (file capabilities, setcap, " <>
        "/run/netns, setpriv to nobody); this runs as an ordinary user"
    )

    [:root | exclude]
  end

# The :telemetry stand-in's handlers (tests/elixir/support/telemetry_standin.ex).
:ets.new(:telemetry_standin, [:named_table, :public, :set])

ExUnit.start(exclude: exclude, capture_log: true)
