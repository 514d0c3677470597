defmodule NFTables.LifecycleTest do
  # How the port process ends with the BEAM side, and the BEAM side with
  # the port; in every case no port_nftables process is left behind.
  # Complements port_server_test.exs ("port exit"), which covers a SIGKILL
  # with a waiting caller and a supervisor restart separately.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.Control

  @moduletag :kernel

  # Well below any request timeout used here (60 s): "at once".
  @prompt 5_000

  defp gone?(os_pid), do: not File.exists?("/proc/#{os_pid}")

  defp assert_gone(os_pid) do
    wait_until(fn -> gone?(os_pid) end, 5_000)
  end

  # A process that starts the server (linked to itself), reports it, and
  # then just waits.
  defp spawn_owner(opts \\ [netns: :new]) do
    test = self()

    owner =
      spawn(fn ->
        {:ok, pid} = Port.start_link(opts)
        send(test, {:started, self(), pid, Port.os_pid(pid)})

        receive do
          :never -> :ok
        end
      end)

    assert_receive {:started, ^owner, pid, os_pid}, 10_000
    assert is_integer(os_pid) and not gone?(os_pid)
    {owner, pid, os_pid}
  end

  defp pending_count(pid), do: map_size(:sys.get_state(pid).pending)

  defp kill_os(os_pid, signal) do
    {_, 0} = System.cmd("kill", ["-s", signal, Integer.to_string(os_pid)])
    :ok
  end

  # SIGSTOP, and make sure the process runs again when the test ends, even
  # if it fails: a stopped port never reads its EOF.
  defp pause_os(os_pid) do
    on_exit(fn ->
      # Only if it is still the port (not a reused pid).
      with {:ok, cmdline} <- File.read("/proc/#{os_pid}/cmdline"),
           true <- String.contains?(cmdline, "port_nftables") do
        System.cmd("kill", ["-s", "CONT", Integer.to_string(os_pid)], stderr_to_stdout: true)
      end
    end)

    kill_os(os_pid, "STOP")
  end

  describe "the BEAM side goes away" do
    test "the process that started the server is killed: server and port exit" do
      {owner, pid, os_pid} = spawn_owner()
      assert Control.ping(pid) == {:ok, :pong}
      ref = Process.monitor(pid)

      Process.exit(owner, :kill)

      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, @prompt
      assert_gone(os_pid)
    end

    test "the owner is killed while a request is in flight: the port still exits" do
      {owner, pid, os_pid} = spawn_owner()
      ref = Process.monitor(pid)

      # A request the stopped port cannot answer yet.
      pause_os(os_pid)

      task =
        Task.async(fn ->
          try do
            Port.call(pid, :ping, [], 60_000)
          catch
            :exit, reason -> {:exited, reason}
          end
        end)

      wait_until(fn -> pending_count(pid) == 1 end)

      Process.exit(owner, :kill)
      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, @prompt
      # The waiting caller hears of it at once.
      assert {:error, {:stopped, :killed}} = Task.await(task, @prompt)

      # The port reads EOF once it runs again.
      kill_os(os_pid, "CONT")
      assert_gone(os_pid)
    end

    test "the server process itself is killed (terminate/2 does not run): the port exits" do
      {_owner, pid, os_pid} = spawn_owner()
      ref = Process.monitor(pid)

      Process.exit(pid, :kill)

      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, @prompt
      assert_gone(os_pid)
    end

    test "the supervisor is killed: server and port exit" do
      {:ok, sup} = Supervisor.start_link([{Port, netns: :new}], strategy: :one_for_one)

      Process.unlink(sup)
      [{_, pid, :worker, _}] = Supervisor.which_children(sup)
      os_pid = Port.os_pid(pid)
      ref = Process.monitor(pid)

      Process.exit(sup, :kill)

      assert_receive {:DOWN, ^ref, :process, ^pid, :killed}, @prompt
      assert_gone(os_pid)
    end

    test "GenServer.stop with a caller waiting: the caller gets {:stopped, reason}; the port exits" do
      {:ok, pid} = Port.start_link(netns: :new)
      os_pid = Port.os_pid(pid)

      pause_os(os_pid)
      task = Task.async(fn -> Port.call(pid, :ping, [], 60_000) end)
      wait_until(fn -> pending_count(pid) == 1 end)

      assert GenServer.stop(pid, :normal, @prompt) == :ok
      assert Task.await(task, @prompt) == {:error, {:stopped, :normal}}

      kill_os(os_pid, "CONT")
      assert_gone(os_pid)
    end

    test "GenServer.stop: the port exits and leaves no process behind" do
      {:ok, pid} = Port.start_link(netns: :new)
      os_pid = Port.os_pid(pid)
      # The port runs no children of its own.
      assert File.read!("/proc/#{os_pid}/task/#{os_pid}/children") == ""

      assert GenServer.stop(pid) == :ok
      assert_gone(os_pid)
    end
  end

  describe "the port goes away" do
    test "SIGKILL while a caller waits: {:port_exit, _} at once; a supervisor restarts it" do
      name = :"nftables_lifecycle_#{System.unique_integer([:positive])}"

      {:ok, sup} =
        Supervisor.start_link([{Port, name: name, netns: :new}], strategy: :one_for_one)

      on_exit(fn ->
        try do
          Supervisor.stop(sup)
        catch
          :exit, _ -> :ok
        end
      end)

      pid = Process.whereis(name)
      old_os_pid = Port.os_pid(name)
      ref = Process.monitor(pid)

      # Paused, the port cannot answer: the request stays in flight.
      pause_os(old_os_pid)

      task =
        Task.async(fn ->
          {usec, result} = :timer.tc(fn -> Port.call(name, :ping, [], 60_000) end)
          {div(usec, 1000), result}
        end)

      wait_until(fn -> pending_count(pid) == 1 end)
      kill_os(old_os_pid, "KILL")

      {ms, result} = Task.await(task, 10_000)
      # 128 + 9 from the runtime's exit status of a killed child.
      assert {:error, {:port_exit, status}} = result
      assert status != 0
      assert ms < @prompt, "the caller waited #{ms} ms"
      assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, ^status}}, @prompt
      assert_gone(old_os_pid)

      new_pid =
        wait_until(fn ->
          new = Process.whereis(name)
          new != nil and new != pid and new
        end)

      new_os_pid = Port.os_pid(new_pid)
      assert new_os_pid != old_os_pid
      assert Port.call(name, :ping, []) == {:ok, :pong}
      # The new port has a network namespace of its own again.
      # (An ordinary user cannot read the links of the non-dumpable port;
      # then the port made a user namespace of its own, and a network one.)
      case File.read_link("/proc/#{new_os_pid}/ns/net") do
        {:ok, link} -> assert link != File.read_link!("/proc/self/ns/net")
        {:error, :eacces} -> assert Port.call(name, :ping, []) == {:ok, :pong}
      end
    end

    test "SIGTERM: the port exits 0; waiting callers and the server see {:port_exit, 0}" do
      Process.flag(:trap_exit, true)
      {:ok, pid} = Port.start_link(netns: :new)
      os_pid = Port.os_pid(pid)
      ref = Process.monitor(pid)

      # Queue a request behind the signal: the stopped port sees both when
      # it continues, and the signal ends it.
      pause_os(os_pid)
      task = Task.async(fn -> Port.call(pid, :ping, [], 60_000) end)
      wait_until(fn -> pending_count(pid) == 1 end)
      kill_os(os_pid, "TERM")
      kill_os(os_pid, "CONT")

      result = Task.await(task, @prompt)
      assert result in [{:ok, :pong}, {:error, {:port_exit, 0}}]
      assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, 0}}, @prompt
      assert_gone(os_pid)
    end

    test "SIGHUP and SIGINT end the port cleanly too (exit status 0)" do
      Process.flag(:trap_exit, true)

      for signal <- ["HUP", "INT"] do
        {:ok, pid} = Port.start_link(netns: :new)
        os_pid = Port.os_pid(pid)
        ref = Process.monitor(pid)
        kill_os(os_pid, signal)
        assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, 0}}, @prompt
        assert_gone(os_pid)
      end
    end
  end
end
