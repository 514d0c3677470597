defmodule NFTables.PortServerTest do
  # The GenServer's own mechanics: request ids, concurrent callers, timeouts,
  # port exits, supervision, binary discovery and argument checks. Beyond
  # :ping ({:ok, :pong}) and an unknown op ({:error, binary}) it relies on no
  # op's meaning.
  #
  # async: false because some tests change PORT_NFTABLES_PATH.
  use NFTables.Port.Case, async: false

  alias NFTables.Port

  @ping_callers 50

  defp pending_count(pid), do: map_size(:sys.get_state(pid).pending)

  describe "requests" do
    @describetag :kernel

    test "ping answers {:ok, :pong}" do
      pid = start_port!()
      assert Port.call(pid, :ping, []) == {:ok, :pong}
    end

    test "the port runs in a network namespace of its own" do
      pid = start_port!()
      os_pid = Port.os_pid(pid)
      assert is_integer(os_pid)
      assert File.read_link!("/proc/#{os_pid}/ns/net") != File.read_link!("/proc/self/ns/net")
    end

    test "#{@ping_callers} concurrent callers each get {:ok, :pong}" do
      pid = start_port!()

      results =
        1..@ping_callers
        |> Task.async_stream(fn _ -> Port.call(pid, :ping, []) end,
          max_concurrency: @ping_callers,
          timeout: 30_000
        )
        |> Enum.to_list()

      assert length(results) == @ping_callers
      assert Enum.all?(results, &(&1 == {:ok, {:ok, :pong}}))
    end

    test "replies to requests in flight at once reach their own callers" do
      pid = start_port!()

      # Hold the port still so that every request is in flight before the
      # first reply comes, then let it answer them all.
      os_kill!(pid, "STOP")

      tasks =
        for i <- 1..@ping_callers do
          if rem(i, 2) == 0 do
            Task.async(fn -> {:ping, Port.call(pid, :ping, [])} end)
          else
            Task.async(fn -> {:bogus, Port.call(pid, :"no_such_op_#{i}", [])} end)
          end
        end

      wait_until(fn -> pending_count(pid) == @ping_callers end)
      os_kill!(pid, "CONT")

      for reply <- Task.await_many(tasks, 30_000) do
        case reply do
          {:ping, result} ->
            assert result == {:ok, :pong}

          {:bogus, result} ->
            assert {:error, %{message: message}} = result
            assert is_binary(message)
        end
      end

      assert pending_count(pid) == 0
    end

    test "an unknown op gets {:error, binary} and the port keeps serving" do
      pid = start_port!()
      assert {:error, %{message: message}} = Port.call(pid, :no_such_op, [1, 2, 3])
      assert is_binary(message)
      assert Port.call(pid, :ping, []) == {:ok, :pong}
    end

    test "a request that times out returns {:error, :timeout}; its late reply is dropped" do
      pid = start_port!()
      os_kill!(pid, "STOP")
      assert Port.call(pid, :ping, [], 100) == {:error, :timeout}
      assert pending_count(pid) == 0
      os_kill!(pid, "CONT")
      assert Port.call(pid, :ping, []) == {:ok, :pong}
      assert Process.alive?(pid)
    end

    test "a request larger than :max_frame is refused before it is sent" do
      pid = start_port!(max_frame: 1024)
      assert {:error, %{message: message}} = Port.call(pid, :ping, [:binary.copy("x", 2048)])
      assert message =~ "max_frame"
      assert Port.call(pid, :ping, []) == {:ok, :pong}
    end
  end

  describe "port exit" do
    @describetag :kernel

    test "killing the port answers a waiting caller at once and stops the server" do
      pid = start_port!()
      ref = Process.monitor(pid)

      # Stopped, the port cannot answer, so the request stays in flight.
      os_kill!(pid, "STOP")
      task = Task.async(fn -> Port.call(pid, :ping, [], 60_000) end)
      wait_until(fn -> pending_count(pid) == 1 end)

      os_kill!(pid, "KILL")

      # Well before the call's own 60 s timeout.
      assert {:error, {:port_exit, status}} = Task.await(task, 5_000)
      assert is_integer(status) and status != 0
      assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, ^status}}, 5_000
    end

    test "a supervisor restarts the server with a new port after the port is killed" do
      name = :"nftables_port_test_#{System.unique_integer([:positive])}"

      {:ok, sup} =
        Supervisor.start_link([{Port, name: name, netns: :new}], strategy: :one_for_one)

      on_exit(fn -> stop_quietly(sup) end)

      pid = Process.whereis(name)
      assert is_pid(pid)
      assert Port.call(name, :ping, []) == {:ok, :pong}
      ref = Process.monitor(pid)
      old_os_pid = os_kill!(name, "KILL")
      assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, _status}}, 5_000

      new_pid =
        wait_until(fn ->
          new_pid = Process.whereis(name)
          new_pid != nil and new_pid != pid and new_pid
        end)

      assert Port.call(name, :ping, []) == {:ok, :pong}
      assert Port.os_pid(new_pid) != old_os_pid
    end

    test "a port that exits while starting makes start_link/1 return {:port_exit, status}" do
      Process.flag(:trap_exit, true)
      netns = "nftables_port_test_no_such_netns_#{System.unique_integer([:positive])}"
      refute File.exists?("/run/netns/#{netns}")
      assert {:error, {:port_exit, status}} = Port.start_link(netns: netns)
      assert status != 0
    end

    test "stopping the server closes the port, which exits" do
      pid = start_port!()
      os_pid = Port.os_pid(pid)
      assert File.exists?("/proc/#{os_pid}")
      :ok = Port.stop(pid)
      wait_until(fn -> not File.exists?("/proc/#{os_pid}") end)
    end
  end

  describe "the port binary" do
    setup do
      saved = System.get_env("PORT_NFTABLES_PATH")

      on_exit(fn ->
        if saved,
          do: System.put_env("PORT_NFTABLES_PATH", saved),
          else: System.delete_env("PORT_NFTABLES_PATH")
      end)

      dir =
        Path.join(System.tmp_dir!(), "nftables_port_test_#{System.unique_integer([:positive])}")

      File.mkdir_p!(dir)
      on_exit(fn -> File.rm_rf!(dir) end)
      %{dir: dir}
    end

    test "find_port_binary/0 honours PORT_NFTABLES_PATH", %{dir: dir} do
      path = Path.join(dir, "port_nftables")
      File.write!(path, "#!/bin/sh\nexit 0\n")
      File.chmod!(path, 0o755)

      System.put_env("PORT_NFTABLES_PATH", path)
      assert Port.find_port_binary() == {:ok, path}
    end

    test "find_port_binary/0 skips a PORT_NFTABLES_PATH that does not exist", %{dir: dir} do
      missing = Path.join(dir, "missing")
      System.put_env("PORT_NFTABLES_PATH", missing)
      assert Port.find_port_binary() != {:ok, missing}
    end

    test "start_link/1 with a nonexistent :path returns an error", %{dir: dir} do
      missing = Path.join(dir, "missing")

      assert Port.start_link(path: missing) ==
               {:error, {:port_binary_not_found, missing}}
    end

    test "start_link/1 with a :path that is not executable returns an error", %{dir: dir} do
      path = Path.join(dir, "port_nftables")
      File.write!(path, "not a program")
      File.chmod!(path, 0o644)
      assert Port.start_link(path: path) == {:error, {:port_binary_not_found, path}}
    end

    test "start_link/1 rejects unknown options and bad values" do
      assert Port.start_link(bogus: 1) == {:error, {:invalid_option, {:bogus, 1}}}
      assert Port.start_link(netns: 42) == {:error, {:invalid_option, {:netns, 42}}}
      assert Port.start_link(netns: "../x") == {:error, {:invalid_option, {:netns, "../x"}}}
      assert Port.start_link(max_frame: 0) == {:error, {:invalid_option, {:max_frame, 0}}}
      assert Port.start_link(:nonsense) == {:error, {:invalid_option, :nonsense}}
    end
  end

  describe "argument checks" do
    # Bad arguments are refused before any request is sent, so no server is
    # needed: calling :no_such_server would exit the test.

    test "call/4" do
      assert {:error, %{message: message}} = Port.call(:no_such_server, "ping", [])
      assert is_binary(message)
      assert {:error, _} = Port.call(:no_such_server, :ping, :not_a_list)
      assert {:error, _} = Port.call(:no_such_server, :ping, [], -1)
    end

    test "commit/3" do
      assert {:error, %{message: message}} = Port.commit(:no_such_server, :nonsense)
      assert message =~ "list"

      assert {:error, %{message: message}} =
               Port.commit(:no_such_server, [{:add, :table, %{}}, {:add, :chain}])

      assert message =~ "message 1"
      assert {:error, _} = Port.commit(:no_such_server, [{:add, :table, %{}} | :tail])
      assert {:error, _} = Port.commit(:no_such_server, [{"add", :table, %{}}])
      assert {:error, _} = Port.commit(:no_such_server, [{:add, :table, [name: "t"]}])
      assert {:error, %{message: message}} = Port.commit(:no_such_server, [], bogus: true)
      assert message =~ "bogus"
      assert {:error, _} = Port.commit(:no_such_server, [], echo: :yes)
      assert {:error, _} = Port.commit(:no_such_server, [], genid: -1)
      assert {:error, _} = Port.commit(:no_such_server, [], :nonsense)
    end

    test "list/4" do
      assert {:error, _} = Port.list(:no_such_server, "table")
      assert {:error, _} = Port.list(:no_such_server, :table, "inet")
      assert {:error, _} = Port.list(:no_such_server, :table, [:inet])
      assert {:error, _} = Port.list(:no_such_server, :table, %{}, timeout: :soon)
    end

    test "dump/2, genid/2 and restore/3" do
      assert {:error, _} = Port.dump(:no_such_server, timeout: -5)
      assert {:error, _} = Port.genid(:no_such_server, bogus: 1)
      assert {:error, %{message: message}} = Port.restore(:no_such_server, 42)
      assert message =~ "restore"
      assert {:error, _} = Port.restore(:no_such_server, %{genid: 1, msgs: :nonsense})
      assert {:error, _} = Port.restore(:no_such_server, [:nonsense])
    end
  end

  @spec stop_quietly(pid()) :: :ok
  defp stop_quietly(pid) do
    Supervisor.stop(pid)
  catch
    :exit, _reason -> :ok
  end
end
