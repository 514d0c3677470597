defmodule NFTables.TelemetryTest do
  # The :telemetry events of docs (NFTables.Port.Telemetry): their names,
  # measurements and metadata, against the stand-in :telemetry module. Not
  # async: no other test's events arrive meanwhile.
  use NFTables.Port.Case, async: false

  alias NFTables.Port

  @moduletag :kernel

  @events for op <- [:commit, :list, :dump],
              kind <- [:start, :stop],
              do: [:nftables_port, op, kind]
  @lifecycle for kind <- [:start, :exit, :stop], do: [:nftables_port, :port, kind]

  setup do
    me = self()
    id = make_ref()

    :ok =
      :telemetry.attach_many(
        id,
        @events ++ @lifecycle,
        fn event, measurements, metadata, _ ->
          send(me, {:telemetry, event, measurements, metadata})
        end,
        nil
      )

    on_exit(fn -> :telemetry.detach(id) end)
  end

  test "enabled when :telemetry is loaded" do
    assert NFTables.Port.Telemetry.enabled?()
  end

  test "commit, list and dump are spans with their metadata and outcome" do
    pid = start_port!()

    msgs = [
      {:add, :table, %{family: :inet, name: "t"}},
      {:add, :chain, %{family: :inet, table: "t", name: "c"}}
    ]

    assert Port.commit(pid, msgs) == :ok

    assert_receive {:telemetry, [:nftables_port, :commit, :start],
                    %{system_time: st, monotonic_time: _}, %{server: ^pid, op: :commit, msgs: 2}}

    assert is_integer(st)

    assert_receive {:telemetry, [:nftables_port, :commit, :stop],
                    %{duration: d, monotonic_time: _}, %{server: ^pid, msgs: 2, result: :ok}}

    assert is_integer(d) and d >= 0

    assert {:error, error} = Port.commit(pid, [{:delete, :table, %{family: :ip, name: "nope"}}])

    assert_receive {:telemetry, [:nftables_port, :commit, :stop], _,
                    %{server: ^pid, msgs: 1, result: :error, error: ^error}}

    assert %{errno: :enoent} = error

    assert {:ok, [_]} = Port.list(pid, :chain, %{family: :inet})

    assert_receive {:telemetry, [:nftables_port, :list, :start], _,
                    %{server: ^pid, type: :chain, filter: %{family: :inet}}}

    assert_receive {:telemetry, [:nftables_port, :list, :stop], %{duration: _},
                    %{result: :ok, type: :chain}}

    assert {:ok, %{msgs: [_, _]}} = Port.dump(pid)
    assert_receive {:telemetry, [:nftables_port, :dump, :start], _, %{server: ^pid}}
    assert_receive {:telemetry, [:nftables_port, :dump, :stop], _, %{server: ^pid, result: :ok}}
  end

  test "the port's lifecycle: start, exit and stop" do
    pid = start_port!()
    os_pid = Port.os_pid(pid)

    assert_receive {:telemetry, [:nftables_port, :port, :start], %{system_time: _, duration: d},
                    %{server: ^pid, os_pid: ^os_pid, path: path}}

    assert is_integer(d) and d > 0 and is_binary(path)

    ref = Process.monitor(pid)
    os_kill!(pid, "KILL")
    assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, 137}}, 5_000

    assert_receive {:telemetry, [:nftables_port, :port, :exit], %{system_time: _},
                    %{server: ^pid, os_pid: ^os_pid, reason: {:port_exit, 137}}}

    assert_receive {:telemetry, [:nftables_port, :port, :stop], _,
                    %{server: ^pid, reason: {:port_exit, 137}}}

    # A clean stop.
    pid = start_port!()
    assert_receive {:telemetry, [:nftables_port, :port, :start], _, %{server: ^pid}}
    :ok = Port.stop(pid)

    assert_receive {:telemetry, [:nftables_port, :port, :stop], _,
                    %{server: ^pid, reason: :normal}}
  end
end
