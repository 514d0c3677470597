defmodule NFTables.SecurityHelpers do
  @moduledoc """
  Helpers for `tests/elixir/security_test.exs`: what the port's process looks
  like from outside (`/proc/<pid>/status`, decoded capability masks), copies
  of the binary with file capabilities, named network namespaces made with
  `ip netns`, running the port as an unprivileged user, and reading the shell
  commands and examples out of the docs.

  Everything that touches the kernel happens in a network namespace made for
  the test (`netns: :new`, or `netns!/0`); nothing here changes the host's
  ruleset.
  """

  import ExUnit.Assertions

  @nobody 65_534
  @nogroup 65_534

  @doc "uid and gid of `nobody` / `nogroup`, the unprivileged user of these tests."
  @spec nobody() :: {non_neg_integer(), non_neg_integer()}
  def nobody, do: {@nobody, @nogroup}

  # Tools the security tests run, with the Debian package that has them.
  @tools [
    {"setcap", "libcap2-bin"},
    {"getcap", "libcap2-bin"},
    {"getpcaps", "libcap2-bin"},
    {"capsh", "libcap2-bin"},
    {"setpriv", "util-linux"},
    {"unshare", "util-linux"},
    {"strace", "strace"},
    {"ip", "iproute2"},
    {"nft", "nftables"},
    {"sh", "dash"}
  ]

  @doc """
  `nil` when the security tests can run here, otherwise why not: they need
  root (to copy the binary with file capabilities, make network namespaces
  and become `nobody`), the user `nobody` and group `nogroup`, and the tools
  of libcap2-bin, util-linux, strace, iproute2 and nftables.
  """
  @spec unavailable_reason() :: String.t() | nil
  def unavailable_reason do
    missing = for {tool, package} <- @tools, find(tool) == nil, do: "#{tool} (#{package})"

    cond do
      effective_uid() != 0 ->
        "they need root (this runs as uid #{effective_uid()})"

      missing != [] ->
        "missing: #{Enum.join(missing, ", ")}; run scripts/bootstrap"

      not match?({_, 0}, System.cmd("getent", ["passwd", "nobody"])) or
          not match?({_, 0}, System.cmd("getent", ["group", "nogroup"])) ->
        "no user nobody or group nogroup"

      true ->
        nil
    end
  end

  @doc "The effective uid of this BEAM (from /proc/self/status)."
  @spec effective_uid() :: non_neg_integer()
  def effective_uid do
    [_real, effective | _] = proc_status!("self") |> Map.fetch!("Uid") |> String.split()
    String.to_integer(effective)
  end

  @doc "Finds `tool` on PATH or in the sbin directories (not on a user's PATH)."
  @spec find(String.t()) :: String.t() | nil
  def find(tool) do
    System.find_executable(tool) ||
      Enum.find_value(["/usr/sbin", "/sbin"], fn dir ->
        path = Path.join(dir, tool)
        if File.regular?(path), do: path
      end)
  end

  ## /proc and capability masks

  @doc "`/proc/<pid>/status` as a map of field name to (trimmed) value."
  @spec proc_status!(non_neg_integer() | String.t()) :: %{String.t() => String.t()}
  def proc_status!(pid) do
    "/proc/#{pid}/status"
    |> File.read!()
    |> String.split("\n", trim: true)
    |> Map.new(fn line ->
      [key, value] = String.split(line, ":", parts: 2)
      {key, String.trim(value)}
    end)
  end

  # Bit number => name, as in linux/capability.h (and libcap's cap_to_name).
  @cap_names ~w(
    cap_chown cap_dac_override cap_dac_read_search cap_fowner cap_fsetid
    cap_kill cap_setgid cap_setuid cap_setpcap cap_linux_immutable
    cap_net_bind_service cap_net_broadcast cap_net_admin cap_net_raw
    cap_ipc_lock cap_ipc_owner cap_sys_module cap_sys_rawio cap_sys_chroot
    cap_sys_ptrace cap_sys_pacct cap_sys_admin cap_sys_boot cap_sys_nice
    cap_sys_resource cap_sys_time cap_sys_tty_config cap_mknod cap_lease
    cap_audit_write cap_audit_control cap_setfcap cap_mac_override
    cap_mac_admin cap_syslog cap_wake_alarm cap_block_suspend cap_audit_read
    cap_perfmon cap_bpf cap_checkpoint_restore
  )a

  @doc """
  Decodes a capability mask as `/proc/<pid>/status` shows it
  (`"0000000000001000"`) into capability atoms in bit order, the order
  `NFTables.Port.Control.self_check/1` lists them in.
  """
  @spec decode_caps(String.t()) :: [atom()]
  def decode_caps(hex) do
    mask = String.to_integer(hex, 16)

    for bit <- 0..63, Bitwise.band(mask, Bitwise.bsl(1, bit)) != 0 do
      Enum.at(@cap_names, bit) || :"cap_#{bit}"
    end
  end

  @doc "What `capsh --decode=<hex>` says the mask holds, as atoms."
  @spec capsh_decode!(String.t()) :: [atom()]
  def capsh_decode!(hex) do
    {out, 0} = System.cmd(find("capsh"), ["--decode=#{hex}"], stderr_to_stdout: true)
    # "0x0000000000001000=cap_net_admin" (nothing after "=" for 0)
    ["0x" <> ^hex, names] = out |> String.trim() |> String.split("=", parts: 2)
    names |> String.split(",", trim: true) |> Enum.map(&String.to_atom/1)
  end

  @doc """
  Checks `self_check` against `/proc/<pid>/status` of the same process: the
  five capability sets (masks decoded into names, both with our table and
  with `capsh --decode`), NoNewPrivs, and the pid. Returns the status map.
  """
  @spec assert_self_check_matches_proc!(map(), non_neg_integer()) :: map()
  def assert_self_check_matches_proc!(check, os_pid) do
    status = proc_status!(os_pid)
    assert check.pid == os_pid

    for {field, key} <- [
          {"CapEff", :effective},
          {"CapPrm", :permitted},
          {"CapInh", :inheritable},
          {"CapAmb", :ambient},
          {"CapBnd", :bounding}
        ] do
      assert decode_caps(status[field]) == Map.fetch!(check, key),
             "#{field} #{status[field]} decodes to #{inspect(decode_caps(status[field]))}, " <>
               "self_check says #{key}: #{inspect(Map.fetch!(check, key))}"

      assert capsh_decode!(status[field]) == Map.fetch!(check, key)
    end

    assert status["NoNewPrivs"] == if(check.no_new_privs, do: "1", else: "0")
    status
  end

  ## Files, binaries, namespaces

  @doc """
  A fresh directory under the system's temp dir, mode 0755 so that `nobody`
  can reach a binary inside it; removed when the test exits.
  """
  @spec tmp_dir!(String.t()) :: Path.t()
  def tmp_dir!(prefix \\ "nfp-security") do
    unique = "#{System.pid()}-#{System.unique_integer([:positive])}"
    dir = Path.join(System.tmp_dir!(), "#{prefix}-#{unique}")
    File.rm_rf!(dir)
    File.mkdir_p!(dir)
    File.chmod!(dir, 0o755)
    ExUnit.Callbacks.on_exit(fn -> File.rm_rf(dir) end)
    dir
  end

  @doc """
  The port binary the other tests run: the project's `priv/port_nftables`.
  (The Mix compiler replaces it with one rename after each build, so a copy
  taken from it is never half written, unlike `build/port_nftables`, which
  the linker writes in place while someone rebuilds.)
  """
  @spec built_port!() :: Path.t()
  def built_port! do
    path = Path.expand("../../../priv/port_nftables", __DIR__)
    assert File.regular?(path), "#{path} not found: run mix compile"
    path
  end

  @doc """
  Copies the port into `dir` as `port_nftables`, owned by root and group
  `nogroup`, with `mode`, and runs `setcap cap_net_admin+ep` on it when
  `caps` is true (after chown, which would clear file capabilities).
  """
  @spec copy_port!(Path.t(), non_neg_integer(), boolean()) :: Path.t()
  def copy_port!(dir, mode, caps) do
    path = Path.join(dir, "port_nftables")
    File.cp!(built_port!(), path)
    File.chown!(path, 0)
    File.chgrp!(path, @nogroup)
    File.chmod!(path, mode)
    if caps, do: cmd!("setcap", ["cap_net_admin+ep", path])
    path
  end

  @doc "Runs a tool (found with `find/1`) and returns its output; raises unless it exits 0."
  @spec cmd!(String.t(), [String.t()], keyword()) :: String.t()
  def cmd!(tool, args, opts \\ []) do
    exe = find(tool) || flunk("#{tool} not found")

    case System.cmd(exe, args, [stderr_to_stdout: true] ++ opts) do
      {out, 0} -> out
      {out, status} -> flunk("#{tool} #{Enum.join(args, " ")} exited #{status}:\n#{out}")
    end
  end

  @doc """
  Makes a named network namespace (`ip netns add`) for the test and deletes
  it when the test exits. The port joins it through
  `command_prefix: ["ip", "netns", "exec", ns, ...]`.
  """
  @spec netns!() :: String.t()
  def netns! do
    # The BEAM's pid too: a run that died may have left its namespaces.
    ns = "nfp-sec-#{System.pid()}-#{System.unique_integer([:positive])}"
    cmd!("ip", ["netns", "add", ns])
    ExUnit.Callbacks.on_exit(fn -> System.cmd("ip", ["netns", "delete", ns]) end)
    ns
  end

  @doc """
  The command prefix that runs the port in `ns` as `nobody`/`nogroup` with
  no supplementary groups, its stderr appended to `stderr_file`.
  """
  @spec unprivileged_prefix(String.t(), Path.t()) :: [String.t()]
  def unprivileged_prefix(ns, stderr_file) do
    ["ip", "netns", "exec", ns | stderr_to(stderr_file)] ++
      ["setpriv", "--reuid=#{@nobody}", "--regid=#{@nogroup}", "--clear-groups"]
  end

  @doc """
  A prefix (a shell that `exec`s the rest) that appends the port's stderr to
  `file`. The shell replaces itself, so the port keeps the OS pid the BEAM
  sees.
  """
  @spec stderr_to(Path.t()) :: [String.t()]
  def stderr_to(file), do: ["sh", "-c", ~s(exec "$0" "$@" 2>>#{file})]

  @doc """
  Starts `NFTables.Port` under the test supervisor with exactly `opts` (no
  default `netns`, unlike `NFTables.Port.Case.start_port!/1`).
  """
  @spec start_port_exactly!(keyword()) :: pid()
  def start_port_exactly!(opts) do
    {NFTables.Port, opts}
    |> Supervisor.child_spec(id: make_ref(), restart: :temporary)
    |> ExUnit.Callbacks.start_supervised!()
  end

  @doc "Whether the OS process `os_pid` is gone (or a zombie)."
  @spec os_process_gone?(non_neg_integer()) :: boolean()
  def os_process_gone?(os_pid) do
    case File.read("/proc/#{os_pid}/stat") do
      {:ok, stat} -> stat |> String.split(") ") |> List.last() |> String.starts_with?("Z")
      {:error, _} -> true
    end
  end

  ## A raw port, for frames NFTables.Port would never send

  @doc "Opens the port binary directly, `{:packet, 4}`, with `args`."
  @spec raw_open(Path.t(), [String.t()]) :: port()
  def raw_open(path, args) do
    Port.open({:spawn_executable, path}, [
      :binary,
      {:packet, 4},
      :exit_status,
      :use_stdio,
      args: args
    ])
  end

  @doc "Sends `{id, op, args}` without waiting."
  @spec raw_send(port(), non_neg_integer(), atom(), list()) :: true
  def raw_send(port, id, op, args), do: Port.command(port, :erlang.term_to_binary({id, op, args}))

  @doc "Receives the next reply frame, decoded."
  @spec raw_recv(port(), timeout()) :: term()
  def raw_recv(port, timeout \\ 10_000) do
    receive do
      {^port, {:data, frame}} -> :erlang.binary_to_term(frame)
      {^port, {:exit_status, status}} -> flunk("the port exited with status #{status}")
    after
      timeout -> flunk("no reply from the port within #{timeout} ms")
    end
  end

  ## Docs

  @doc """
  The docs whose shell commands must all be run by the tests: a file, and
  the `## section` of it (`nil`: all of it).
  """
  @spec command_docs() :: [{Path.t(), String.t() | nil}]
  def command_docs do
    [
      {"docs/capabilities.md", nil},
      {"docs/security.md", nil},
      {"README.md", "Capabilities"},
      {"README.md", "Troubleshooting"}
    ]
  end

  @doc """
  Every shell command the docs may show, exactly as they show it, and how
  `security_test.exs` runs it (or why it does not: `{:not_run, reason}`;
  the doc must then say "not run here").
  """
  @spec doc_commands() :: %{String.t() => atom() | {:not_run, String.t()}}
  def doc_commands do
    %{
      "mix nftables_port.install /usr/local/sbin/port_nftables --group myapp" => :mix_install,
      "install -o root -g myapp -m 750 priv/port_nftables /usr/local/sbin/port_nftables" =>
        :install,
      "setcap cap_net_admin+ep /usr/local/sbin/port_nftables" => :setcap,
      "getcap /usr/local/sbin/port_nftables" => :getcap,
      "ls -l /usr/local/sbin/port_nftables" => :ls,
      "chmod 750 /usr/local/sbin/port_nftables" => :chmod,
      (~s(capsh --caps="cap_net_admin+eip cap_setpcap,cap_setuid,cap_setgid+ep" ) <>
         "--keep=1 --user=myapp --addamb=cap_net_admin " <>
         "-- -c 'exec /opt/myapp/bin/myapp start'") => :capsh_ambient,
      "systemd-analyze verify /etc/systemd/system/myapp.service" => :systemd_verify,
      "systemd-analyze security --offline=true /etc/systemd/system/myapp.service" =>
        :systemd_security,
      "grep Cap /proc/<pid>/status" => :grep_cap,
      "grep NoNewPrivs /proc/<pid>/status" => :grep_no_new_privs,
      "grep Seccomp /proc/<pid>/status" => :grep_seccomp,
      "grep Uid /proc/<pid>/status" => :grep_uid,
      "getpcaps <pid>" => :getpcaps,
      "capsh --decode=0000000000001000" => :capsh_decode,
      "cat /proc/sys/user/max_user_namespaces" => :max_user_namespaces,
      "docker run --cap-add=NET_ADMIN myimage" => {:not_run, "no Docker on the test machines"}
    }
  end

  @doc "The shell commands of all `command_docs/0`, in order, each once."
  @spec all_doc_commands() :: [String.t()]
  def all_doc_commands do
    command_docs()
    |> Enum.flat_map(fn {file, section} -> shell_commands(file, section) end)
    |> Enum.uniq()
  end

  @doc "The project root."
  @spec root() :: Path.t()
  def root, do: Path.expand("../../..", __DIR__)

  @doc """
  The fenced code blocks of `lang` (e.g. "sh", "ini") in a Markdown file,
  in order, each as its text. `section` limits it to the `## section` of
  that name.
  """
  @spec code_blocks(Path.t(), String.t(), String.t() | nil) :: [String.t()]
  def code_blocks(file, lang, section \\ nil) do
    text = File.read!(Path.join(root(), file))
    text = if section, do: section!(text, section, file), else: text

    ~r/^[ \t]*```#{lang}\n(.*?)^[ \t]*```$/ms
    |> Regex.scan(text, capture: :all_but_first)
    |> Enum.map(fn [block] -> block end)
  end

  @spec section!(String.t(), String.t(), Path.t()) :: String.t()
  defp section!(text, name, file) do
    case Regex.run(~r/^## #{Regex.escape(name)}\n(.*?)(?=^## |\z)/ms, text) do
      [_, body] -> body
      nil -> flunk("#{file} has no section ## #{name}")
    end
  end

  @doc """
  The shell commands in the `sh` blocks: one per line, a trailing `\\`
  continues a line, comment lines and blank lines are skipped.
  """
  @spec shell_commands(Path.t(), String.t() | nil) :: [String.t()]
  def shell_commands(file, section \\ nil) do
    file
    |> code_blocks("sh", section)
    |> Enum.flat_map(fn block ->
      block
      |> String.replace(~r/\\\n\s*/, "")
      |> String.split("\n")
      |> Enum.map(&String.trim/1)
      |> Enum.reject(&(&1 == "" or String.starts_with?(&1, "#")))
    end)
  end
end
