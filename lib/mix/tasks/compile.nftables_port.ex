defmodule Mix.Tasks.Compile.NftablesPort do
  @shortdoc "Builds the C port priv/port_nftables with meson"

  @moduledoc """
  Mix compiler that builds the C port `priv/port_nftables` with meson.

  It is listed first in the project's `:compilers`, so `mix compile` runs it
  before the Elixir compiler. In the project root it:

    1. runs `meson setup build --buildtype=debugoptimized` when
       `build/build.ninja` does not exist yet;
    2. runs `meson compile -C build` (ninja makes this cheap when nothing
       changed);
    3. copies `build/port_nftables` to `priv/port_nftables` (mode 0755) when
       the content differs, through a temporary file and a rename so that a
       running port is never overwritten in place.

  meson's output is printed only when a step fails; the compiler then returns
  `{:error, [diagnostic]}`.

  Set `NFTABLES_PORT_SKIP_BUILD=1` to skip all of this (the compiler returns
  `:noop`), for example to compile the Elixir code on a machine without the
  C toolchain.

  Because Mix needs this module before `lib/` is compiled, `mix.exs` loads it
  from source with `Code.require_file/2`; see `run/1` for how it steps aside
  afterwards.
  """

  use Mix.Task.Compiler

  alias Mix.Task.Compiler.Diagnostic

  @build_dir "build"
  @binary "port_nftables"

  @impl Mix.Task.Compiler
  @spec run([String.t()]) :: :noop | {:ok | :noop | :error, [Diagnostic.t()]}
  def run(_args) do
    if skip_build?() do
      :noop
    else
      build(project_root())
    end
  after
    step_aside()
  end

  @doc false
  @spec project_root() :: Path.t()
  def project_root do
    case Mix.Project.project_file() do
      nil -> File.cwd!()
      file -> file |> Path.dirname() |> Path.expand()
    end
  end

  @spec skip_build?() :: boolean()
  defp skip_build? do
    System.get_env("NFTABLES_PORT_SKIP_BUILD") in ["1", "true", "yes"]
  end

  @spec build(Path.t()) :: {:ok | :noop | :error, [Diagnostic.t()]}
  defp build(root) do
    with {:ok, meson} <- find_meson(root),
         :ok <- check_sources(root),
         :ok <- setup(meson, root),
         :ok <- compile(meson, root) do
      install(root)
    end
  end

  @spec find_meson(Path.t()) :: {:ok, Path.t()} | {:error, [Diagnostic.t()]}
  defp find_meson(root) do
    case System.find_executable("meson") do
      nil ->
        error(root, "meson not found: run scripts/bootstrap (or set NFTABLES_PORT_SKIP_BUILD=1)")

      meson ->
        {:ok, meson}
    end
  end

  @spec check_sources(Path.t()) :: :ok | {:error, [Diagnostic.t()]}
  defp check_sources(root) do
    if File.regular?(Path.join(root, "meson.build")) do
      :ok
    else
      error(
        root,
        "meson.build not found in #{root}: the C port sources are missing " <>
          "(or set NFTABLES_PORT_SKIP_BUILD=1)"
      )
    end
  end

  @spec setup(Path.t(), Path.t()) :: :ok | {:error, [Diagnostic.t()]}
  defp setup(meson, root) do
    build_dir = Path.join(root, @build_dir)

    if File.regular?(Path.join(build_dir, "build.ninja")) do
      :ok
    else
      # A build directory left behind by an interrupted or failed setup
      # has to be reconfigured rather than set up from scratch.
      reconfigure =
        if File.regular?(Path.join([build_dir, "meson-private", "coredata.dat"])),
          do: ["--reconfigure"],
          else: []

      args = ["setup", @build_dir, "--buildtype=debugoptimized"] ++ reconfigure
      run_meson(meson, args, root, "meson setup")
    end
  end

  @spec compile(Path.t(), Path.t()) :: :ok | {:error, [Diagnostic.t()]}
  defp compile(meson, root) do
    run_meson(meson, ["compile", "-C", @build_dir], root, "meson compile")
  end

  @spec run_meson(Path.t(), [String.t()], Path.t(), String.t()) ::
          :ok | {:error, [Diagnostic.t()]}
  defp run_meson(meson, args, root, what) do
    case System.cmd(meson, args, cd: root, stderr_to_stdout: true) do
      {_output, 0} ->
        :ok

      {output, status} ->
        Mix.shell().info(output)
        error(root, "#{what} failed (exit status #{status}); its output is above")
    end
  rescue
    e in ErlangError ->
      error(root, "could not run #{meson}: #{Exception.message(e)}")
  end

  @spec install(Path.t()) :: {:ok | :noop | :error, [Diagnostic.t()]}
  defp install(root) do
    source = Path.join([root, @build_dir, @binary])
    target = Path.join([root, "priv", @binary])

    with {:ok, new} <- read(root, source, "meson compile did not produce #{source}") do
      # Content only: a copy someone gave file capabilities and mode 0750
      # stays as it is until the build really changes.
      if File.read(target) == {:ok, new} do
        {:noop, []}
      else
        copy(root, new, target)
      end
    end
  end

  @spec read(Path.t(), Path.t(), String.t()) :: {:ok, binary()} | {:error, [Diagnostic.t()]}
  defp read(root, path, message) do
    case File.read(path) do
      {:ok, content} -> {:ok, content}
      {:error, reason} -> error(root, "#{message} (#{:file.format_error(reason)})")
    end
  end

  @spec copy(Path.t(), binary(), Path.t()) :: {:ok | :error, [Diagnostic.t()]}
  defp copy(root, content, target) do
    tmp = target <> ".tmp#{System.unique_integer([:positive])}"

    result =
      with :ok <- File.mkdir_p(Path.dirname(target)),
           :ok <- File.write(tmp, content),
           :ok <- File.chmod(tmp, 0o755),
           :ok <- File.rename(tmp, target) do
        :ok
      end

    case result do
      :ok ->
        # Mix links priv/ into _build only when it exists, which it may not
        # have on the first build.
        Mix.Project.build_structure()
        Mix.shell().info("Generated priv/#{@binary}")
        {:ok, []}

      {:error, reason} ->
        File.rm(tmp)
        error(root, "could not install #{target}: #{:file.format_error(reason)}")
    end
  end

  @spec error(Path.t(), String.t()) :: {:error, [Diagnostic.t()]}
  defp error(root, message) do
    Mix.shell().error("** (nftables_port) " <> message)

    diagnostic = %Diagnostic{
      compiler_name: "nftables_port",
      file: Path.join(root, "meson.build"),
      position: nil,
      severity: :error,
      message: message
    }

    {:error, [diagnostic]}
  end

  # mix.exs loads this module from source, so it exists only in memory when
  # Mix runs it. The Elixir compiler then compiles lib/ -- this file
  # included -- and would warn about redefining the module. Unloading the
  # in-memory copy avoids that; Mix loads the compiled .beam from _build the
  # next time it needs the task. A copy loaded from a .beam is left alone.
  @spec step_aside() :: :ok
  defp step_aside do
    if :code.which(__MODULE__) == [] do
      :code.soft_purge(__MODULE__)
      :code.delete(__MODULE__)
    end

    :ok
  end
end
