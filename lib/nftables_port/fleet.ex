defmodule NFTables.Port.Fleet do
  @moduledoc """
  One desired state on many hosts: each BEAM node runs its own
  `NFTables.Port` on its own kernel, and the fleet applies
  `NFTables.Port.sync/3` on every one of them over Erlang distribution
  (`:erpc`), answering per node.

      NFTables.Port.Fleet.sync([:"a@10.0.0.1", :"b@10.0.0.2"], desired)
      #=> %{:"a@10.0.0.1" => {:ok, %{added: 3, deleted: 0, updated: 0, genid: 12}},
      #     :"b@10.0.0.2" => {:error, %{index: 4, errno: :ebusy, ...}}}

  Targets are a list of nodes, whose port is the one registered as
  `port:` (`NFTables.Port` unless told), or `{:group, name}`: the ports
  that joined that `:pg` group (`join/2`), wherever they run. The fleet has
  no transport of its own: `:erpc` carries the calls and `:pg` the
  membership (its scope is started by `start_link/1`, e.g. as
  `{NFTables.Port.Fleet, []}` in each node's supervision tree).

  Options (the rest go to `NFTables.Port.sync/3`: `cache:` names each
  node's cache, `retries:`, ...):

    * `mode: :parallel` (default) - every node at once;
    * `mode: :rollout` - one node after the other, in the order given,
      stopping at the first that fails; the nodes after it answer
      `{:error, :not_attempted}`;
    * `dry_run: true` - changes nothing; each node answers its difference
      (`{:ok, %{added:, deleted:, updated:, msgs: msgs, genid:}}`);
    * `port:` - the registered name of the port on each node;
    * `timeout:` - per node, in ms (60_000); a node that does not answer
      in time, or is down, answers `{:error, {:erpc, reason}}`.
  """

  @scope __MODULE__

  @typedoc "What `sync/3` targets."
  @type targets :: [node()] | {:group, term()}

  @doc "The fleet's `:pg` scope on this node (a child for a supervision tree)."
  @spec start_link(keyword()) :: {:ok, pid()} | {:error, term()}
  def start_link(_opts \\ []), do: :pg.start_link(@scope)

  @doc false
  def child_spec(opts),
    do: %{id: __MODULE__, start: {__MODULE__, :start_link, [opts]}, type: :worker}

  @doc "Makes a port of this node a member of `group` (the `:pg` scope must run)."
  @spec join(term(), GenServer.server()) :: :ok
  def join(group, port \\ NFTables.Port) do
    :pg.join(@scope, group, GenServer.whereis(port))
  end

  @doc "The ports in `group`, on every node."
  @spec members(term()) :: [pid()]
  def members(group), do: :pg.get_members(@scope, group)

  @doc "See the module doc."
  @spec sync(targets(), term(), keyword()) :: %{node() => {:ok, map()} | {:error, term()}}
  def sync(targets, desired, opts \\ []) do
    {mode, opts} = Keyword.pop(opts, :mode, :parallel)
    {port, opts} = Keyword.pop(opts, :port, NFTables.Port)
    {timeout, opts} = Keyword.pop(opts, :timeout, 60_000)
    calls = calls(targets, port)

    case mode do
      :parallel -> parallel(calls, desired, opts, timeout)
      :rollout -> rollout(calls, desired, opts, timeout)
    end
  end

  @doc "The difference on every node, changing nothing: `sync/3` with `dry_run: true`."
  @spec diff(targets(), term(), keyword()) :: %{node() => {:ok, map()} | {:error, term()}}
  def diff(targets, desired, opts \\ []), do: sync(targets, desired, Keyword.put(opts, :dry_run, true))

  defp calls({:group, group}, _port), do: Enum.map(members(group), &{node(&1), &1})
  defp calls(nodes, port) when is_list(nodes), do: Enum.map(nodes, &{&1, port})

  defp parallel(calls, desired, opts, timeout) do
    calls
    |> Enum.map(fn {node, port} ->
      {node, :erpc.send_request(node, NFTables.Port, :sync, [port, desired, opts])}
    end)
    |> Map.new(fn {node, req} -> {node, receive_answer(req, timeout)} end)
  end

  defp rollout(calls, desired, opts, timeout) do
    {answers, _failed} =
      Enum.reduce(calls, {%{}, false}, fn
        {node, _port}, {acc, true} ->
          {Map.put(acc, node, {:error, :not_attempted}), true}

        {node, port}, {acc, false} ->
          answer = receive_answer(:erpc.send_request(node, NFTables.Port, :sync, [port, desired, opts]), timeout)
          {Map.put(acc, node, answer), not match?({:ok, _}, answer)}
      end)

    answers
  end

  defp receive_answer(req, timeout) do
    case :erpc.receive_response(req, timeout) do
      {:ok, _} = ok -> ok
      {:error, _} = error -> error
      other -> {:error, {:unexpected, other}}
    end
  catch
    :error, {:erpc, reason} -> {:error, {:erpc, reason}}
    :exit, reason -> {:error, {:exit, reason}}
    :error, reason -> {:error, {:exception, reason}}
    :throw, value -> {:error, {:throw, value}}
  end

  @doc """
  Starts this node's member, not linked to the caller (so that a remote
  `:erpc.call/4` can start it): the `:pg` scope when it does not run, an
  `NFTables.Port` with `port_opts` (registered as `:name`, default
  `NFTables.Port`), joined to `group` when given. Returns `{:ok, pid}` of
  the supervisor that holds them; `stop_member/1` stops it.
  """
  @spec start_member(keyword(), term() | nil) :: {:ok, pid()} | {:error, term()}
  def start_member(port_opts, group \\ nil) do
    port_opts = Keyword.put_new(port_opts, :name, NFTables.Port)
    caller = self()
    ref = make_ref()
    pid = :erlang.spawn(__MODULE__, :__member__, [port_opts, group, caller, ref])
    mon = Process.monitor(pid)

    receive do
      {^ref, result} ->
        Process.demonitor(mon, [:flush])
        result

      {:DOWN, ^mon, :process, _, reason} ->
        {:error, reason}
    after
      30_000 -> {:error, :timeout}
    end
  end

  @doc "Stops a member started with `start_member/2`."
  @spec stop_member(pid()) :: :ok
  def stop_member(pid) do
    mon = Process.monitor(pid)
    send(pid, :stop)

    receive do
      {:DOWN, ^mon, :process, _, _} -> :ok
    after
      10_000 -> Process.exit(pid, :kill) && :ok
    end
  end

  @doc false
  def __member__(port_opts, group, caller, ref) do
    Process.flag(:trap_exit, true)
    scope = if Process.whereis(@scope), do: [], else: [child_spec([])]

    case Supervisor.start_link(scope ++ [{NFTables.Port, port_opts}], strategy: :one_for_one) do
      {:ok, sup} ->
        if group, do: join(group, port_opts[:name])
        send(caller, {ref, {:ok, self()}})

        receive do
          :stop -> Supervisor.stop(sup)
          {:EXIT, ^sup, _} -> :ok
        end

      error ->
        send(caller, {ref, error})
    end
  end
end
