# The project's own Mix compiler (it builds the C port with meson) lives in
# lib/, but Mix needs it before lib/ is compiled, so load it from source here.
# It unloads itself after running so that compiling lib/ does not warn about
# redefining it.
Code.require_file("lib/mix/tasks/compile.nftables_port.ex", __DIR__)

defmodule NFTables.Port.MixProject do
  use Mix.Project

  def project do
    [
      app: :nftables_port,
      version: "0.1.0",
      elixir: "~> 1.14",
      elixirc_paths: elixirc_paths(Mix.env()),
      compilers: [:nftables_port] ++ Mix.compilers(),
      start_permanent: Mix.env() == :prod,
      deps: [],
      test_paths: ["tests/elixir"],
      # JSON text: OTP 27+ has :json; on OTP 25 Debian's erlang-jiffy (scripts/bootstrap).
      xref: [exclude: [:jiffy, :json]]
    ]
  end

  def application do
    [extra_applications: [:logger]]
  end

  defp elixirc_paths(:test), do: ["lib", "elixir_stubs", "tests/elixir/support"]
  defp elixirc_paths(_env), do: ["lib", "elixir_stubs"]
end
