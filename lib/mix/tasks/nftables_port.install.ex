defmodule Mix.Tasks.NftablesPort.Install do
  @shortdoc "Installs port_nftables with CAP_NET_ADMIN as a file capability"

  @moduledoc """
  Installs the built port with the one capability it needs.

      mix nftables_port.install [PATH] [--group NAME] [--no-compile]

  Run it as root. It:

    1. builds the project (`mix compile`) unless `--no-compile` is given;
    2. copies the built `priv/port_nftables` to `PATH`
       (`/usr/local/sbin/port_nftables` when not given; an existing
       directory gets a `port_nftables` inside it) through a temporary file
       in the same directory that is renamed over the target at the end, so
       a running port is never overwritten in place and nobody ever sees a
       half-written file;
    3. makes root the owner; the group stays what it was (root for a new
       file, the old file's group when replacing one) unless
       `--group NAME` is given;
    4. sets the mode to 0750: the owner and the group may run it, nobody
       else (the port refuses to start when a binary with file capabilities
       is accessible to "other");
    5. runs `setcap cap_net_admin+ep` on it, and checks with `getcap` that
       the installed file carries `cap_net_admin=ep`;
    6. prints what it did.

  `NFTables.Port.find_port_binary/0` looks at `/usr/local/sbin/port_nftables`
  before the application's `priv/`, so after installing there the port
  runs with CAP_NET_ADMIN for every member of the group.

  Run it again after every rebuild: a new binary has no file capabilities.

  It fails (exits non-zero) and says what to do when it is not run as
  root, when `setcap` or `getcap` is missing (package libcap2-bin), when
  the target directory does not exist, and when the filesystem cannot hold
  file capabilities (no extended attributes). See `docs/capabilities.md`.
  """

  use Mix.Task

  @default_path "/usr/local/sbin/port_nftables"
  @binary "port_nftables"
  @capability "cap_net_admin+ep"
  @sbin_dirs ["/usr/sbin", "/sbin", "/usr/local/sbin"]

  @impl Mix.Task
  @spec run([String.t()]) :: :ok
  def run(args) do
    {opts, path} = parse_args(args)
    target = target_path(path)

    check_root!(target)
    setcap = find_tool!("setcap")
    getcap = find_tool!("getcap")
    check_directory!(target)
    group = if name = opts[:group], do: lookup_group!(name)

    unless opts[:no_compile], do: Mix.Task.run("compile")

    source = source_binary!()
    gid = install!(source, target, group, setcap)
    getcap_line = verify!(getcap, target)

    Mix.shell().info("""
    Installed #{target}
      from:         #{source}
      owner:        root:#{group_name(gid)} (#{if group, do: "--group", else: "group unchanged"})
      mode:         0750 (owner and group may run it, nobody else)
      capabilities: cap_net_admin=ep (getcap: #{getcap_line})
    Members of that group run it with CAP_NET_ADMIN and nothing else.
    Run this task again after every rebuild: a new binary has no file capabilities.\
    """)

    :ok
  end

  ## Arguments

  @spec parse_args([String.t()]) :: {keyword(), String.t() | nil}
  defp parse_args(args) do
    case OptionParser.parse(args, strict: [group: :string, no_compile: :boolean]) do
      {opts, [], []} ->
        {opts, nil}

      {opts, [path], []} ->
        {opts, path}

      {_opts, _rest, [{bad, _} | _]} ->
        Mix.raise("mix nftables_port.install: unknown or bad option #{bad}\n" <> usage())

      {_opts, _paths, []} ->
        Mix.raise("mix nftables_port.install takes at most one path\n" <> usage())
    end
  end

  @spec usage() :: String.t()
  defp usage do
    "usage: mix nftables_port.install [PATH] [--group NAME] [--no-compile] " <>
      "(PATH defaults to #{@default_path})"
  end

  @spec target_path(String.t() | nil) :: Path.t()
  defp target_path(nil), do: @default_path

  defp target_path(path) do
    path = Path.expand(path)
    if File.dir?(path), do: Path.join(path, @binary), else: path
  end

  ## Checks, before anything is built or written

  @spec check_root!(Path.t()) :: :ok
  defp check_root!(target) do
    case effective_uid() do
      0 ->
        :ok

      uid ->
        suffix = if target == @default_path, do: "", else: " #{target}"

        Mix.raise(
          "mix nftables_port.install must change the file's owner and set a file " <>
            "capability, which only root may do (this runs as uid #{uid}): " <>
            "run it as root: sudo mix nftables_port.install#{suffix}"
        )
    end
  end

  # The effective uid, from /proc/self/status ("Uid: real effective saved fs").
  @spec effective_uid() :: non_neg_integer() | :unknown
  defp effective_uid do
    with {:ok, status} <- File.read("/proc/self/status"),
         [_, euid] <- Regex.run(~r/^Uid:\s+\d+\s+(\d+)/m, status) do
      String.to_integer(euid)
    else
      _ -> :unknown
    end
  end

  @spec find_tool!(String.t()) :: Path.t()
  defp find_tool!(name) do
    System.find_executable(name) ||
      Enum.find_value(@sbin_dirs, fn dir ->
        path = Path.join(dir, name)
        if executable?(path), do: path
      end) ||
      Mix.raise(
        "#{name} not found: it comes with the package libcap2-bin; " <>
          "install it with: apt-get install libcap2-bin"
      )
  end

  @spec executable?(Path.t()) :: boolean()
  defp executable?(path) do
    match?(
      {:ok, %File.Stat{type: :regular, mode: mode}} when Bitwise.band(mode, 0o111) != 0,
      File.stat(path)
    )
  end

  @spec check_directory!(Path.t()) :: :ok
  defp check_directory!(target) do
    dir = Path.dirname(target)

    unless File.dir?(dir) do
      Mix.raise(
        "cannot install #{target}: the directory #{dir} does not exist; " <>
          "create it (mkdir -p #{dir}) or give another path"
      )
    end

    :ok
  end

  @spec lookup_group!(String.t()) :: {String.t(), non_neg_integer()}
  defp lookup_group!(name) do
    with getent when is_binary(getent) <- System.find_executable("getent"),
         {line, 0} <- System.cmd(getent, ["group", name], stderr_to_stdout: true),
         [_, _, gid | _] <- String.split(String.trim(line), ":") do
      {name, String.to_integer(gid)}
    else
      _ -> Mix.raise("--group #{name}: no such group (see getent group #{name})")
    end
  end

  ## Installing

  # The project's own priv/ when this is the nftables_port project itself,
  # otherwise the priv/ of the nftables_port dependency as built.
  @spec source_binary!() :: Path.t()
  defp source_binary! do
    app_priv =
      try do
        Application.app_dir(:nftables_port, "priv/#{@binary}")
      rescue
        ArgumentError -> nil
      end

    candidates =
      if Mix.Project.config()[:app] == :nftables_port,
        do: [project_priv(), app_priv],
        else: [app_priv, project_priv()]

    candidates = Enum.reject(candidates, &is_nil/1)

    Enum.find(candidates, &File.regular?/1) ||
      Mix.raise(
        "the built port was not found (looked at #{Enum.join(candidates, ", ")}): " <>
          "build it with mix compile"
      )
  end

  @spec project_priv() :: Path.t() | nil
  defp project_priv do
    case Mix.Project.project_file() do
      nil -> nil
      file -> Path.join([Path.dirname(file), "priv", @binary])
    end
  end

  # Copy, owner, group, mode and capability are all set on a temporary file
  # next to the target, which then replaces it with one rename. Any chown
  # clears file capabilities (File.chmod/2 calls chown(path, -1, -1) as
  # well), so setcap comes last.
  @spec install!(Path.t(), Path.t(), {String.t(), non_neg_integer()} | nil, Path.t()) ::
          non_neg_integer()
  defp install!(source, target, group, setcap) do
    dir = Path.dirname(target)

    tmp =
      Path.join(dir, ".#{Path.basename(target)}.install-#{System.unique_integer([:positive])}")

    gid =
      case {group, File.stat(target)} do
        {{_name, gid}, _} -> gid
        {nil, {:ok, %File.Stat{gid: gid}}} -> gid
        {nil, _} -> nil
      end

    try do
      step!(File.cp(source, tmp), "copy #{source} to #{tmp}")
      step!(File.chown(tmp, 0), "make root the owner of #{tmp}")
      if gid, do: step!(File.chgrp(tmp, gid), "set the group of #{tmp}")
      step!(File.chmod(tmp, 0o750), "chmod 750 #{tmp}")
      setcap!(setcap, tmp, target)
      step!(File.rename(tmp, target), "rename #{tmp} to #{target}")
    after
      File.rm(tmp)
    end

    {:ok, %File.Stat{gid: gid}} = File.stat(target)
    gid
  end

  @spec step!(:ok | {:error, File.posix()}, String.t()) :: :ok
  defp step!(:ok, _what), do: :ok

  defp step!({:error, :eacces}, what),
    do:
      Mix.raise(
        "could not #{what}: permission denied; run it as root: sudo mix nftables_port.install"
      )

  defp step!({:error, :erofs}, what),
    do: Mix.raise("could not #{what}: the filesystem is read-only; give a path on a writable one")

  defp step!({:error, reason}, what),
    do: Mix.raise("could not #{what}: #{:file.format_error(reason)}")

  @spec setcap!(Path.t(), Path.t(), Path.t()) :: :ok
  defp setcap!(setcap, tmp, target) do
    case System.cmd(setcap, [@capability, tmp], stderr_to_stdout: true) do
      {_output, 0} ->
        :ok

      {output, status} ->
        output = String.trim(output)

        cond do
          output =~ "Operation not supported" ->
            Mix.raise(
              "setcap #{@capability} failed: the filesystem of #{Path.dirname(target)} " <>
                "does not support extended attributes (xattrs), where file capabilities " <>
                "are kept (#{output}). Install to a path on another filesystem (ext4, " <>
                "xfs, btrfs, tmpfs keep them), e.g. mix nftables_port.install " <>
                "#{@default_path}, or run the port without file capabilities " <>
                "(ambient capabilities, sudo: see docs/capabilities.md)"
            )

          output =~ "Operation not permitted" ->
            Mix.raise(
              "setcap #{@capability} was not permitted (#{output}); setting file " <>
                "capabilities takes root with CAP_SETFCAP: run it as root: " <>
                "sudo mix nftables_port.install"
            )

          true ->
            Mix.raise("setcap #{@capability} #{tmp} failed (exit status #{status}): #{output}")
        end
    end
  end

  @spec verify!(Path.t(), Path.t()) :: String.t()
  defp verify!(getcap, target) do
    {output, status} = System.cmd(getcap, [target], stderr_to_stdout: true)
    line = String.trim(output)

    if status == 0 and line =~ "cap_net_admin=ep" do
      line
    else
      Mix.raise(
        "#{target} was installed, but getcap does not show cap_net_admin=ep on it " <>
          "(getcap said: #{inspect(line)}); run setcap #{@capability} #{target} and " <>
          "check the filesystem keeps extended attributes"
      )
    end
  end

  @spec group_name(non_neg_integer()) :: String.t()
  defp group_name(gid) do
    with getent when is_binary(getent) <- System.find_executable("getent"),
         {line, 0} <- System.cmd(getent, ["group", Integer.to_string(gid)]),
         [name | _] <- String.split(line, ":") do
      name
    else
      _ -> Integer.to_string(gid)
    end
  end
end
