# Tests that need the kernel (a fresh network namespace with nf_tables) are
# tagged :kernel. Where they cannot run they are excluded with the reason --
# except under CI=true, where that must fail the run. Tests tagged :slow run
# only with `mix test --include slow`.
exclude = [:slow]

exclude =
  case NFTables.PortCase.kernel_unavailable_reason() do
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

ExUnit.start(exclude: exclude, capture_log: true)
