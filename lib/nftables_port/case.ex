defmodule NFTables.Port.Case do
  @moduledoc """
  ExUnit case template for tests of firewall code against the real kernel,
  each test with its own port in its own network namespace, never the
  host's ruleset.

      defmodule MyFirewallTest do
        use NFTables.Port.Case, async: true

        test "my rules land" do
          pid = start_port!()
          :ok = MyFirewall.apply(pid)
          assert nft!(pid, "list ruleset") =~ "tcp dport 22 accept"
        end
      end

  It imports this module's helpers:

    * `start_port!/1` - starts an `NFTables.Port` in a fresh network namespace,
      stopped when the test exits;
    * `nft!/2` - runs the system `nft` inside a port's network namespace (to
      read the ruleset back as nft sees it);
    * `netns_cmd!/3` - runs any command there;
    * `netns_pid/1` - the OS pid whose namespaces are the port's;
    * `os_kill!/2` - sends a signal to a port's OS process;
    * `wait_until/2` - polls until a function returns a truthy value.

  It works as root and as an ordinary user with unprivileged user
  namespaces. As root the port makes its own namespace (`netns: :new`). As
  an ordinary user the port cannot be entered (it makes itself non-dumpable,
  so its `/proc/<pid>/ns/` is closed to its own user), so the case first
  starts a small holder process of its own, `unshare --user --map-root-user
  --net cat`, which lives as long as the test, and starts the port inside
  the holder's namespaces (`nsenter --preserve-credentials --target HOLDER
  --user --net`); `nft!/2` enters the holder's namespaces the same way.

  Tests that need the kernel can be tagged `:kernel` and excluded with
  `kernel_unavailable_reason/0` in `test_helper.exs`:

      case NFTables.Port.Case.kernel_unavailable_reason() do
        nil -> ExUnit.start()
        reason -> IO.puts("skipping :kernel tests: " <> reason); ExUnit.start(exclude: [:kernel])
      end
  """

  use ExUnit.CaseTemplate

  using do
    quote do
      import NFTables.Port.Case
    end
  end

  @doc """
  Starts `NFTables.Port` under the test supervisor and returns its pid.

  `opts` are those of `NFTables.Port.start_link/1`; `netns: :new` is the
  default, so the port never works on the host's ruleset. The server is not
  linked to the test process and is not restarted: a port that dies stays
  dead, and ExUnit stops the server when the test exits.
  """
  @spec start_port!(keyword()) :: pid()
  def start_port!(opts \\ []) do
    {opts, holder} =
      if Keyword.has_key?(opts, :netns) or Keyword.has_key?(opts, :command_prefix) or root?() do
        {Keyword.put_new(opts, :netns, :new), nil}
      else
        holder = start_holder!()
        enter = [nsenter!(), "--preserve-credentials", "--target", "#{holder}", "--user", "--net"]
        {Keyword.put(opts, :command_prefix, enter), holder}
      end

    pid =
      {NFTables.Port, opts}
      |> Supervisor.child_spec(id: make_ref(), restart: :temporary)
      |> ExUnit.Callbacks.start_supervised!()

    if holder do
      :persistent_term.put({__MODULE__, pid}, holder)
      ExUnit.Callbacks.on_exit(fn -> :persistent_term.erase({__MODULE__, pid}) end)
    end

    pid
  end

  @doc """
  The OS pid whose network namespace (and user namespace, when it has its
  own) is the port's: the port's own, or that of the holder process
  `start_port!/1` started for it.
  """
  @spec netns_pid(GenServer.server()) :: non_neg_integer()
  def netns_pid(port) do
    pid = if is_pid(port), do: port, else: GenServer.whereis(port)

    case :persistent_term.get({__MODULE__, pid}, nil) do
      nil -> NFTables.Port.os_pid(port) || raise "the port has no OS pid"
      holder -> holder
    end
  end

  @spec root?() :: boolean()
  defp root? do
    case File.read("/proc/self/status") do
      {:ok, status} -> Regex.match?(~r/^Uid:\s+0\s/m, status)
      _ -> false
    end
  end

  @spec nsenter!() :: String.t()
  defp nsenter!, do: System.find_executable("nsenter") || raise("nsenter not found (util-linux)")

  # A process of the test's own (dumpable, so its namespaces can be
  # entered) in a new user and network namespace; it exits when the test
  # process does (its stdin closes).
  @spec start_holder!() :: non_neg_integer()
  defp start_holder! do
    unshare = System.find_executable("unshare") || raise "unshare not found (util-linux)"
    cat = System.find_executable("cat") || raise "cat not found"

    port =
      Port.open({:spawn_executable, unshare}, [
        :binary,
        args: ["--user", "--map-root-user", "--net", cat]
      ])

    {:os_pid, os_pid} = Port.info(port, :os_pid)
    own = ns_link!("self", "net")

    # unshare makes the namespaces, then writes the uid map: a process
    # entering before the map is written holds no capability there.
    wait_until(
      fn ->
        with {:ok, link} <- File.read_link("/proc/#{os_pid}/ns/net"),
             true <- link != own,
             {:ok, map} <- File.read("/proc/#{os_pid}/uid_map") do
          String.trim(map) != ""
        else
          _ -> false
        end
      end,
      5_000
    )

    os_pid
  end

  @doc """
  Runs the system `nft` with `args` (a list, or a string split like a shell
  would) inside the network namespace of `port`'s OS process and returns its
  output (stdout and stderr). Raises when `nft` fails.

  Refuses to run when the port shares the test's own network namespace, so
  a test can never change the host's ruleset through it.
  """
  @spec nft!(GenServer.server(), [String.t()] | String.t()) :: String.t()
  def nft!(port, args) do
    netns_cmd!(port, "nft", args)
  end

  @doc """
  Runs `command` with `args` inside the network namespace of `port`'s OS
  process (with `nsenter`) and returns its output (stdout and stderr).
  Raises when it fails, or when the port shares the test's own network
  namespace.

  When the port lives in a user namespace of its own (an unprivileged run),
  the command enters that user namespace too
  (`nsenter --target PID --user --net`); otherwise
  it enters only the network namespace (`nsenter --net=/proc/PID/ns/net`).
  """
  @spec netns_cmd!(GenServer.server(), String.t(), [String.t()] | String.t()) :: String.t()
  def netns_cmd!(port, command, args) do
    case netns_cmd(port, command, args) do
      {output, 0} ->
        output

      {output, status} ->
        args = if is_binary(args), do: OptionParser.split(args), else: args

        raise "#{command} #{Enum.join(args, " ")} failed with exit status #{status} " <>
                "in the namespace of OS pid #{netns_pid(port)}:\n#{output}"
    end
  end

  @doc """
  Like `netns_cmd!/3`, but returns `{output, exit_status}` instead of
  raising when the command fails (it still raises when the port shares
  the test's network namespace).
  """
  @spec netns_cmd(GenServer.server(), String.t(), [String.t()] | String.t()) ::
          {String.t(), non_neg_integer()}
  def netns_cmd(port, command, args) do
    args = if is_binary(args), do: OptionParser.split(args), else: args
    os_pid = netns_pid(port)

    if ns_link!("self", "net") == ns_link!(os_pid, "net") do
      raise "refusing to run #{command}: the port (OS pid #{os_pid}) shares this " <>
              "test's network namespace; start it with netns: :new"
    end

    enter =
      if ns_link!("self", "user") == ns_link!(os_pid, "user") do
        ["--net=/proc/#{os_pid}/ns/net"]
      else
        ["--preserve-credentials", "--target", Integer.to_string(os_pid), "--user", "--net"]
      end

    System.cmd(nsenter!(), enter ++ [command | args], stderr_to_stdout: true)
  end

  @spec ns_link!(non_neg_integer() | String.t(), String.t()) :: String.t()
  defp ns_link!(pid, ns) do
    path = "/proc/#{pid}/ns/#{ns}"

    case File.read_link(path) do
      {:ok, link} -> link
      {:error, reason} -> raise "cannot read #{path}: #{:file.format_error(reason)}"
    end
  end

  @doc """
  Sends `signal` (e.g. `"KILL"`, `"STOP"`, `"CONT"`) to the OS process of
  `port` and returns its OS pid.
  """
  @spec os_kill!(GenServer.server(), String.t()) :: non_neg_integer()
  def os_kill!(port, signal) do
    os_pid = NFTables.Port.os_pid(port) || raise "the port has no OS pid"

    # A port left stopped by a failing test would outlive it: wake it at
    # the end, so that it sees its stdin close and exits.
    if signal in ["STOP", "SIGSTOP"] do
      ExUnit.Callbacks.on_exit(fn ->
        System.cmd("kill", ["-s", "CONT", Integer.to_string(os_pid)], stderr_to_stdout: true)
      end)
    end

    case System.cmd("kill", ["-s", signal, Integer.to_string(os_pid)], stderr_to_stdout: true) do
      {_output, 0} -> os_pid
      {output, status} -> raise "kill -s #{signal} #{os_pid} failed (#{status}): #{output}"
    end
  end

  @doc """
  Calls `fun` every 10 ms until it returns a truthy value, which it returns;
  fails the test after `timeout` milliseconds.
  """
  @spec wait_until((() -> any()), non_neg_integer()) :: any()
  def wait_until(fun, timeout \\ 5_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    do_wait_until(fun, deadline, timeout)
  end

  @spec do_wait_until((() -> any()), integer(), non_neg_integer()) :: any()
  defp do_wait_until(fun, deadline, timeout) do
    cond do
      value = fun.() ->
        value

      System.monotonic_time(:millisecond) >= deadline ->
        ExUnit.Assertions.flunk("condition not met within #{timeout} ms")

      true ->
        Process.sleep(10)
        do_wait_until(fun, deadline, timeout)
    end
  end

  @doc """
  Whether tests tagged `:kernel` can run here; see
  `kernel_unavailable_reason/0`.
  """
  @spec kernel_available?() :: boolean()
  def kernel_available? do
    kernel_unavailable_reason() == nil
  end

  @doc """
  `nil` when tests tagged `:kernel` can run here, otherwise why not.

  They need Linux, `unshare` and `nsenter` (util-linux), `nft` (nftables),
  and a fresh network namespace with nf_tables in it: as root, or through an
  unprivileged user namespace. The probe runs `nft list ruleset` (read-only)
  in a new, empty network namespace; it never looks at the host's ruleset.
  """
  @spec kernel_unavailable_reason() :: String.t() | nil
  def kernel_unavailable_reason do
    cond do
      not File.exists?("/proc/self/ns/net") ->
        "not Linux, or /proc is not mounted"

      System.find_executable("unshare") == nil ->
        "unshare not found (util-linux): run scripts/bootstrap"

      System.find_executable("nsenter") == nil ->
        "nsenter not found (util-linux): run scripts/bootstrap"

      System.find_executable("nft") == nil ->
        "nft not found (nftables): run scripts/bootstrap"

      true ->
        probe_namespace()
    end
  end

  @spec probe_namespace() :: String.t() | nil
  defp probe_namespace do
    unshare = System.find_executable("unshare")
    probe = ["nft", "list", "ruleset"]

    attempts = [
      ["--net" | probe],
      ["--user", "--map-root-user", "--net" | probe]
    ]

    Enum.reduce_while(attempts, [], fn args, failures ->
      case System.cmd(unshare, args, stderr_to_stdout: true) do
        {_output, 0} ->
          {:halt, nil}

        {output, status} ->
          failure =
            "unshare #{Enum.join(args, " ")}: exit status #{status}: #{String.trim(output)}"

          {:cont, [failure | failures]}
      end
    end)
    |> case do
      nil ->
        nil

      failures ->
        "cannot use nf_tables in a new network namespace (tests need root or " <>
          "unprivileged user namespaces): " <> Enum.join(Enum.reverse(failures), "; ")
    end
  end
end
