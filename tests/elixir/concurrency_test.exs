defmodule NFTables.ConcurrencyTest do
  # Many callers on one port at once, each with a different kind of
  # request: every caller gets its own reply.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.Table

  @moduletag :kernel

  @callers 50

  for held <- [false, true] do
    @held held
    test "#{@callers} concurrent callers doing commits, lists and handle ops each get their own reply#{if held, do: " (all in flight at once)"}" do
      run_mixed(start_port!(), @held)
    end
  end

  defp run_mixed(pid, held?) do
    # For the list callers: table ip "l<i>" holds exactly chain "c<i>".
    listers = for i <- 1..@callers, rem(i, 4) == 2, do: i

    setup =
      Enum.flat_map(listers, fn i ->
        [
          {:add, :table, %{family: :ip, name: "l#{i}"}},
          {:add, :chain, %{family: :ip, table: "l#{i}", name: "c#{i}"}}
        ]
      end)

    assert Port.commit(pid, setup) == :ok

    # Held: the port is stopped until every caller's first request is in
    # flight, so the port reads a burst of frames back to back.
    if held?, do: os_kill!(pid, "STOP")

    stream =
      Task.async_stream(1..@callers, &caller(pid, &1),
        max_concurrency: @callers,
        timeout: 60_000,
        ordered: true
      )

    results =
      if held? do
        runner = Task.async(fn -> Enum.to_list(stream) end)
        wait_until(fn -> map_size(:sys.get_state(pid).pending) == @callers end)
        os_kill!(pid, "CONT")
        runner |> Task.await(60_000) |> Enum.zip(1..@callers)
      else
        stream |> Enum.to_list() |> Enum.zip(1..@callers)
      end

    for {{:ok, result}, i} <- results do
      check(i, result)
    end

    assert length(results) == @callers

    # Every commit landed, once.
    {:ok, tables} = Port.list(pid, :table, %{family: :inet})
    committed = for i <- 1..@callers, rem(i, 4) == 0, do: "t#{i}"
    assert tables |> Enum.map(& &1.name) |> Enum.sort() == Enum.sort(committed)

    handles = Enum.map(tables, & &1.handle)
    assert length(Enum.uniq(handles)) == length(handles)
    assert map_size(:sys.get_state(pid).pending) == 0
  end

  # Four kinds of caller, by i mod 4.
  defp caller(pid, i) do
    case rem(i, 4) do
      0 ->
        # A commit with echo, then a list that must contain it.
        commit = Port.commit(pid, [{:add, :table, %{family: :inet, name: "t#{i}"}}], echo: true)
        {:commit, commit, Port.list(pid, :table, %{family: :inet})}

      1 ->
        # Handle ops on a table of its own.
        {:ok, t} = Table.alloc(pid)
        set_family = Table.set(pid, t, :family, :ip6)
        set_name = Table.set(pid, t, :name, "h#{i}")
        got = Table.get(pid, t, :name)
        map = Table.to_map(pid, t)
        {:handle, t, [set_family, set_name], got, map, Table.free(pid, t)}

      2 ->
        {:list, Port.list(pid, :chain, %{family: :ip, table: "l#{i}"})}

      3 ->
        # A kernel error of its own.
        {:error, Port.commit(pid, [{:delete, :table, %{family: :arp, name: "nope#{i}"}}])}
    end
  end

  defp check(i, {:commit, commit, listed}) do
    assert {:ok, [handle]} = commit
    assert is_integer(handle) and handle > 0
    assert {:ok, tables} = listed

    assert %{family: :inet, name: name, handle: ^handle} =
             Enum.find(tables, &(&1.name == "t#{i}")) ||
               flunk("t#{i} not listed: #{inspect(tables)}")

    assert name == "t#{i}"
  end

  defp check(i, {:handle, _t, sets, got, map, freed}) do
    assert sets == [:ok, :ok]
    assert got == {:ok, "h#{i}"}
    assert map == {:ok, %{family: :ip6, name: "h#{i}"}}
    assert freed == :ok
  end

  defp check(i, {:list, listed}) do
    assert {:ok, [chain]} = listed
    assert %{family: :ip, table: table, name: name} = chain
    assert {table, name} == {"l#{i}", "c#{i}"}
  end

  defp check(_i, {:error, result}) do
    assert {:error,
            %{index: 0, errno: :enoent, message: "No such file or directory (ENOENT)" <> _}} =
             result
  end

  test "#{@callers} concurrent handle allocations get distinct handles holding their own names" do
    pid = start_port!()

    results =
      1..@callers
      |> Task.async_stream(
        fn i ->
          {:ok, t} = Table.alloc(pid)
          :ok = Table.set(pid, t, :name, "n#{i}")
          {i, t, Table.get(pid, t, :name)}
        end,
        max_concurrency: @callers,
        timeout: 60_000
      )
      |> Enum.map(fn {:ok, r} -> r end)

    for {i, _t, got} <- results, do: assert(got == {:ok, "n#{i}"})
    handles = for {_i, t, _} <- results, do: t
    assert length(Enum.uniq(handles)) == @callers

    for {i, t, _} <- results, do: assert(Table.get(pid, t, :name) == {:ok, "n#{i}"})
  end
end
