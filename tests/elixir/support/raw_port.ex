defmodule NFTables.Port.Test.RawPort do
  @moduledoc """
  Runs `port_nftables` without `NFTables.Port`, so a test can send it any
  bytes at all: whole `{:packet, 4}` frames that hold no valid request, or
  (with `packet: 0`) bytes that are not whole frames.

      rp = RawPort.open(extra: ["--max-frame", "1024"])
      RawPort.send_raw(rp, <<131, 1, 2, 3>>)
      {nil, {:error, %{message: message}}} = RawPort.recv(rp)
      {:ok, :pong} = RawPort.request(rp, :ping, [])
      {0, stderr} = RawPort.close(rp)

  ## Why a shell runs the port

  An Erlang port cannot close only the child's stdin: `Port.close/1` closes
  stdin and stdout together and no `{:exit_status, _}` message follows. To
  see how the port exits after EOF on stdin (and what it wrote to stderr),
  `/bin/sh` runs it, sends its stderr to a file, and writes its exit status
  to another when it ends:

      sh -c '"$@" 2>"$ERR"; s=$?; echo $s >"$STATUS"; exit $s' sh PORT ARGS...

  (only shell builtins, so nothing outlives the shell; the status counts
  once its line is complete; the shell's own stderr goes to /dev/null).

  The shell does not touch stdin or stdout: the port reads the BEAM's pipe
  and writes to it directly, exactly as when it is spawned on its own. When
  the port exits on its own (or is killed), `{:exit_status, status}` of the
  shell is the port's status (128 + signal number when a signal killed it).

  `os_pid/1` is the port's own OS pid (the shell's child), not the shell's.
  """

  import ExUnit.Assertions

  defstruct [:port, :packet, :path, :shell_pid, :dir, :status_file, :stderr_file]

  @type t :: %__MODULE__{
          port: port(),
          packet: 0 | 4,
          path: Path.t(),
          shell_pid: non_neg_integer(),
          dir: Path.t(),
          status_file: Path.t(),
          stderr_file: Path.t()
        }

  # The shell's own complaints (a killed child, a status file removed by
  # kill/1) go to /dev/null; the port's stderr goes to its file.
  @wrapper ~S|exec 2>/dev/null; "$@" 2>"$NFP_RAW_ERR"; s=$?; | <>
             ~S|echo $s >"$NFP_RAW_STATUS"; | <>
             ~S|exit $s|

  @doc """
  Starts the port and returns a handle.

  Options:

    * `:packet` - `4` (default): every `send_raw/2` is one frame, the
      runtime adds its length; `0`: bytes go out exactly as given and
      replies are split into frames by `recv/2` itself;
    * `:netns` - `"new"` (default): `--netns new`; `nil`: no `--netns`
      argument (only for a port started inside a namespace by
      `:command_prefix`);
    * `:extra` - more arguments for the port, e.g. `["--max-frame", "1024"]`;
    * `:command_prefix` - a command (found on `PATH`) and its arguments that
      run the port, e.g. `["valgrind", ...]`;
    * `:path` - another port binary (e.g. the test build).
  """
  @spec open(keyword()) :: t()
  def open(opts \\ []) do
    packet = Keyword.get(opts, :packet, 4)

    path =
      Keyword.get_lazy(opts, :path, fn ->
        {:ok, path} = NFTables.Port.find_port_binary()
        path
      end)

    netns =
      case Keyword.get(opts, :netns, "new") do
        nil -> []
        ns -> ["--netns", ns]
      end

    prefix =
      case Keyword.get(opts, :command_prefix, []) do
        [] -> []
        [cmd | rest] -> [System.find_executable(cmd) || cmd | rest]
      end

    dir = Path.join(System.tmp_dir!(), "nfp_raw_port_#{System.unique_integer([:positive])}")

    File.mkdir_p!(dir)
    status_file = Path.join(dir, "status")
    stderr_file = Path.join(dir, "stderr")

    packet_opt = if packet == 4, do: [{:packet, 4}], else: [:stream]

    port =
      Port.open(
        {:spawn_executable, "/bin/sh"},
        [
          :binary,
          :exit_status,
          :use_stdio,
          env: [
            {~c"NFP_RAW_ERR", String.to_charlist(stderr_file)},
            {~c"NFP_RAW_STATUS", String.to_charlist(status_file)}
          ],
          args:
            ["-c", @wrapper, "sh"] ++ prefix ++ [path] ++ netns ++ Keyword.get(opts, :extra, [])
        ] ++ packet_opt
      )

    {:os_pid, shell_pid} = Port.info(port, :os_pid)

    %__MODULE__{
      port: port,
      packet: packet,
      path: path,
      shell_pid: shell_pid,
      dir: dir,
      status_file: status_file,
      stderr_file: stderr_file
    }
  end

  @doc "The OS pid of the port process itself (the wrapper shell's child)."
  @spec os_pid(t()) :: non_neg_integer() | nil
  def os_pid(%__MODULE__{shell_pid: shell_pid}) do
    case File.read("/proc/#{shell_pid}/task/#{shell_pid}/children") do
      {:ok, children} ->
        case String.split(children) do
          [child | _] -> String.to_integer(child)
          [] -> nil
        end

      {:error, _} ->
        nil
    end
  end

  @doc "Sends `bin` as is: one frame with `packet: 4`, raw bytes with `packet: 0`."
  @spec send_raw(t(), iodata()) :: true
  def send_raw(%__MODULE__{port: port}, bin) do
    Port.command(port, bin)
  end

  @doc """
  Receives one reply frame and decodes it with `:erlang.binary_to_term/1`.
  Fails the test when none comes within `timeout` ms or the port exits.
  """
  @spec recv(t(), timeout()) :: term()
  def recv(rp, timeout \\ 5_000) do
    rp |> recv_frame(timeout) |> :erlang.binary_to_term()
  end

  @doc "Receives one raw reply frame (its bytes, without the length)."
  @spec recv_frame(t(), timeout()) :: binary()
  def recv_frame(%__MODULE__{port: port, packet: 4} = rp, timeout) do
    receive do
      {^port, {:data, frame}} -> frame
      {^port, {:exit_status, status}} -> exited(rp, status)
    after
      timeout -> flunk("no reply from the port within #{timeout} ms")
    end
  end

  def recv_frame(%__MODULE__{port: port, packet: 0} = rp, timeout) do
    buffer = Process.get({__MODULE__, port}, <<>>)

    case buffer do
      <<len::32, frame::binary-size(len), rest::binary>> ->
        Process.put({__MODULE__, port}, rest)
        frame

      _ ->
        receive do
          {^port, {:data, bytes}} ->
            Process.put({__MODULE__, port}, buffer <> bytes)
            recv_frame(rp, timeout)

          {^port, {:exit_status, status}} ->
            exited(rp, status)
        after
          timeout -> flunk("no reply from the port within #{timeout} ms")
        end
    end
  end

  @spec exited(t(), integer()) :: no_return()
  defp exited(rp, status) do
    stderr =
      case File.read(rp.stderr_file) do
        {:ok, ""} -> ""
        {:ok, text} -> "; its stderr:\n" <> text
        {:error, _} -> ""
      end

    flunk("the port exited with status #{status}" <> stderr)
  end

  @doc """
  Sends the request `{id, op, args}` and returns the result of the reply
  with that id (`:ok`, `{:ok, value}`, `{:error, reason}`). Fails the test
  when the reply carries another id.

  Options: `:id` (default: a fresh positive integer), `:timeout` (5 s).
  """
  @spec request(t(), atom(), list(), keyword()) :: term()
  def request(rp, op, args, opts \\ []) do
    id = Keyword.get_lazy(opts, :id, fn -> System.unique_integer([:positive]) end)
    send_request(rp, {id, op, args})

    case recv(rp, Keyword.get(opts, :timeout, 5_000)) do
      {^id, result} -> result
      other -> flunk("expected the reply to request #{id}, got: #{inspect(other, limit: 20)}")
    end
  end

  @doc "Sends `term` encoded with `:erlang.term_to_binary/1`, as one frame."
  @spec send_request(t(), term()) :: true
  def send_request(%__MODULE__{packet: 4} = rp, term),
    do: send_raw(rp, :erlang.term_to_binary(term))

  def send_request(%__MODULE__{packet: 0} = rp, term) do
    bin = :erlang.term_to_binary(term)
    send_raw(rp, [<<byte_size(bin)::32>>, bin])
  end

  @doc """
  Closes the port's stdin (and stdout) and waits up to `timeout` ms for the
  port to exit; returns `{exit_status, stderr}`.
  """
  @spec close(t(), timeout()) :: {non_neg_integer(), binary()}
  def close(%__MODULE__{port: port} = rp, timeout \\ 10_000) do
    try do
      Port.close(port)
    rescue
      ArgumentError -> :ok
    end

    wait_exit(rp, timeout)
  end

  @doc """
  Waits up to `timeout` ms for the port to end (on its own, or after
  `close/1`) and returns `{exit_status, stderr}`.
  """
  @spec wait_exit(t(), timeout()) :: {non_neg_integer(), binary()}
  def wait_exit(%__MODULE__{} = rp, timeout \\ 10_000) do
    deadline = System.monotonic_time(:millisecond) + timeout
    status = wait_status(rp, deadline, timeout)
    # Drain the port's own exit message, if it is still open.
    receive do
      {port, {:exit_status, _}} when port == rp.port -> :ok
    after
      0 -> :ok
    end

    stderr = File.read!(rp.stderr_file)
    File.rm_rf(rp.dir)
    {status, stderr}
  end

  defp wait_status(rp, deadline, timeout) do
    case File.read(rp.status_file) do
      {:ok, text}
      when byte_size(text) > 1 and binary_part(text, byte_size(text) - 1, 1) == "\n" ->
        text |> String.trim() |> String.to_integer()

      # Not there yet, or being written.
      _ ->
        if System.monotonic_time(:millisecond) >= deadline do
          flunk("the port did not exit within #{timeout} ms")
        else
          Process.sleep(10)
          wait_status(rp, deadline, timeout)
        end
    end
  end

  @doc """
  Kills the port (and the shell) with SIGKILL if they still run, and
  cleans up; for `on_exit`. Only processes whose command line is still
  this wrapper's or the port's are signalled (a pid may have been reused).
  """
  @spec kill(t()) :: :ok
  def kill(%__MODULE__{} = rp) do
    child = os_pid(rp)

    # The shell first, so that it does not report the killed child.
    for {pid, marker} <- [{rp.shell_pid, "NFP_RAW_STATUS"}, {child, rp.path}],
        pid != nil,
        ours?(pid, marker) do
      System.cmd("kill", ["-KILL", Integer.to_string(pid)], stderr_to_stdout: true)
    end

    try do
      Port.close(rp.port)
    rescue
      ArgumentError -> :ok
    end

    # The shell may be writing its status file just now: let it finish.
    wait_gone(rp.shell_pid, 100)
    File.rm_rf(rp.dir)
    :ok
  end

  defp wait_gone(_pid, 0), do: :ok

  defp wait_gone(pid, tries) do
    if File.exists?("/proc/#{pid}") do
      Process.sleep(10)
      wait_gone(pid, tries - 1)
    else
      :ok
    end
  end

  defp ours?(pid, marker) do
    case File.read("/proc/#{pid}/cmdline") do
      {:ok, cmdline} -> String.contains?(cmdline, marker)
      {:error, _} -> false
    end
  end
end
