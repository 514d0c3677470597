defmodule NFTables.Port do
  @moduledoc """
  Manages Linux nftables over netlink through the C port `port_nftables`.

  `NFTables.Port` is a `GenServer` that owns one `port_nftables` process
  (an Erlang port speaking `{:packet, 4}` frames of External Term Format, see
  `docs/protocol.md`). Every request gets a fresh request id; replies are
  matched by id, so any number of callers may have requests in flight at
  once and each gets only its own reply. The server never blocks waiting for
  the port.

  ## Starting

      {:ok, pid} = NFTables.Port.start_link(netns: :new)

  Options (see `start_link/1`): `:name`, `:path`, `:netns`, `:timeout`,
  `:max_frame`. Put it in a supervision tree with
  `{NFTables.Port, name: MyApp.Firewall}`.

  ## The declarative API

      :ok =
        NFTables.Port.commit(pid, [
          {:add, :table, %{family: :inet, name: "filter"}},
          {:add, :chain, %{family: :inet, table: "filter", name: "input",
                           type: "filter", hooknum: :input, prio: 0}}
        ])

      {:ok, tables} = NFTables.Port.list(pid, :table, family: :inet)
      {:ok, dump} = NFTables.Port.dump(pid)
      :ok = NFTables.Port.restore(other_pid, dump)

  `commit/3` sends all messages as one netlink transaction: all of it lands
  or none of it does. A kernel error names the failing message, the object
  it addressed and the attribute the kernel blamed:
  `{:error, %{errno: :enoent, index: i, object: %{...}, attr: :name,
  message: "..."}}`; every error shape is in `NFTables.Port.Errors`.

  The handle API (`NFTables.Port.Table`, `NFTables.Port.Batch`, ...) and
  the other ops are generated from `schema/` into `elixir_stubs/`; they all
  go through `call/4`.

  ## Timeouts and failures

  Every request has a timeout (the `:timeout` given to `start_link/1`,
  30 seconds unless told otherwise, or the one given to the call). When it
  expires the caller gets `{:error, :timeout}`; a reply arriving later is
  dropped.

  When the port process exits, every waiting caller gets
  `{:error, {:port_exit, status}}` at once and the server stops with reason
  `{:port_exit, status}`, so a supervisor can start a fresh one.
  """

  use GenServer

  require Logger

  @default_timeout 30_000
  @default_max_frame 536_870_912
  # Extra time the caller waits beyond a request's own timeout, so that the
  # server's `{:error, :timeout}` normally arrives before the caller gives up.
  @call_grace 5_000

  alias NFTables.Port.{Errors, Telemetry}

  @typedoc "A running `NFTables.Port` server: a pid or a registered name."
  @type server :: GenServer.server()

  @typedoc "What the port replies to a request."
  @type reply :: :ok | {:ok, term()} | {:error, term()}

  @typedoc "A verb of a declarative message."
  @type verb :: :add | :create | :insert | :replace | :delete | :destroy | :flush

  @typedoc "A declarative message: `{verb, object_type, attrs}`."
  @type msg :: {verb(), atom(), map()}

  @typedoc "An option of `start_link/1`."
  @type option ::
          {:name, GenServer.name()}
          | {:path, Path.t()}
          | {:netns, :new | String.t()}
          | {:timeout, timeout()}
          | {:max_frame, pos_integer()}
          | {:command_prefix, [String.t()]}
          | {:user, String.t() | non_neg_integer()}
          | {:group, String.t() | non_neg_integer()}

  @typedoc "An option of `commit/3` and `restore/3`."
  @type commit_option ::
          {:echo, boolean()} | {:genid, non_neg_integer()} | {:timeout, timeout()}

  @start_options [:name, :path, :netns, :timeout, :max_frame, :command_prefix, :user, :group]

  ## Starting and stopping

  @doc """
  Starts the server and its port, linked to the caller.

  Options:

    * `:name` - registers the server (any `t:GenServer.name/0`); also the
      child spec's id.
    * `:path` - the `port_nftables` executable; found with
      `find_port_binary/0` when not given.
    * `:netns` - `:new` makes the port unshare a fresh network namespace
      (`--netns new`; inside a new user namespace when unprivileged), so the
      host's ruleset is never touched; a string joins `/run/netns/<name>`
      (`--netns <name>`). Without it the port works in the caller's network
      namespace.
    * `:timeout` - the default request timeout in milliseconds (or
      `:infinity`), 30_000 unless given.
    * `:max_frame` - the largest request frame in bytes
      (`--max-frame N`); larger requests are refused before they are sent.
    * `:command_prefix` - a command and its arguments that run the port
      (e.g. `["setpriv", "--reuid=nobody", ...]`, `["valgrind", ...]`,
      `["strace", "-o", file, ...]`): the first is found on `PATH`, the
      port binary and its arguments follow the rest.
    * `:user`, `:group` - a port started as root switches to this user and
      group (names or ids; `--user`, `--group`) after entering its
      namespace, keeping CAP_NET_ADMIN alone. Default: `nobody` and
      `nogroup` (with `:user` alone, that user's own group). uid or gid 0
      is refused; a port not started as root refuses them (it runs as its
      user already). See docs/security.md.

  The server counts as started once the port has answered a `:ping`, so
  the port has set up its namespace by the time `start_link/1` returns.

  Returns, without starting anything, `{:error, :port_binary_not_found}`
  when no executable is found, `{:error, {:port_binary_not_found, path}}`
  when the given `:path` is not an executable file, and
  `{:error, {:invalid_option, option}}` for an option it does not know or a
  bad value. When the server starts but the port does not, the server exits
  (which, as with any `GenServer`, also exits a linked caller that does not
  trap exits) and `start_link/1` returns `{:error, reason}`:
  `{:port_open_failed, posix}` when the executable cannot be spawned,
  `{:port_exit, status}` when the port exits before answering (e.g. it
  could not join the network namespace), `:port_start_timeout` when it does
  not answer within `:timeout`.
  """
  @spec start_link([option()]) :: GenServer.on_start()
  def start_link(opts \\ []) do
    with :ok <- check_options(opts),
         {:ok, path} <- resolve_path(opts),
         {:ok, args} <- port_args(opts) do
      {path, args} =
        case Keyword.get(opts, :command_prefix, []) do
          [] -> {path, args}
          [cmd | rest] -> {System.find_executable(cmd) || cmd, rest ++ [path | args]}
        end

      config = %{
        path: path,
        args: args,
        timeout: Keyword.get(opts, :timeout, @default_timeout),
        max_frame: Keyword.get(opts, :max_frame, @default_max_frame)
      }

      case Keyword.fetch(opts, :name) do
        {:ok, name} -> GenServer.start_link(__MODULE__, config, name: name)
        :error -> GenServer.start_link(__MODULE__, config)
      end
    end
  end

  @doc """
  A child spec for supervisors; the id is the `:name` option when given,
  `NFTables.Port` otherwise.
  """
  @spec child_spec([option()]) :: Supervisor.child_spec()
  def child_spec(opts) do
    %{
      id: Keyword.get(opts, :name, __MODULE__),
      start: {__MODULE__, :start_link, [opts]}
    }
  end

  @doc """
  Stops the server; closing the port's stdin makes the port exit cleanly.
  """
  @spec stop(server(), term(), timeout()) :: :ok
  def stop(server, reason \\ :normal, timeout \\ :infinity) do
    GenServer.stop(server, reason, timeout)
  end

  @doc """
  Finds the `port_nftables` executable.

  Tries, in order, and returns the first that is an executable file:
  `$PORT_NFTABLES_PATH`, `/usr/local/sbin/port_nftables`,
  `/usr/sbin/port_nftables`, the `priv/port_nftables` of the
  `:nftables_port` application, and the `priv/port_nftables` of the source
  tree this module was compiled from.
  """
  @spec find_port_binary() :: {:ok, Path.t()} | {:error, :port_binary_not_found}
  def find_port_binary do
    case Enum.find(port_binary_candidates(), &executable_file?/1) do
      nil -> {:error, :port_binary_not_found}
      path -> {:ok, path}
    end
  end

  @doc false
  @spec port_binary_candidates() :: [Path.t()]
  def port_binary_candidates do
    env =
      case System.get_env("PORT_NFTABLES_PATH") do
        nil -> []
        "" -> []
        path -> [path]
      end

    app_dir =
      try do
        [Application.app_dir(:nftables_port, "priv/port_nftables")]
      rescue
        ArgumentError -> []
      end

    priv_dir =
      case :code.priv_dir(:nftables_port) do
        {:error, _} -> []
        dir -> [Path.join(List.to_string(dir), "port_nftables")]
      end

    source_tree = [Path.expand("../priv/port_nftables", __DIR__)]

    Enum.uniq(
      env ++
        ["/usr/local/sbin/port_nftables", "/usr/sbin/port_nftables"] ++
        app_dir ++ priv_dir ++ source_tree
    )
  end

  @doc """
  The OS pid of the port process, e.g. to reach its namespaces through
  `/proc/<pid>/ns/`.
  """
  @spec os_pid(server()) :: non_neg_integer() | nil
  def os_pid(server) do
    GenServer.call(server, :os_pid)
  end

  ## Low-level requests

  @doc """
  Sends one request `{id, op, args}` to the port and returns its reply.

  `op` is an atom of the wire protocol (`schema/ops.yaml`), `args` a list.
  The reply is `:ok`, `{:ok, value}` or `{:error, reason}`, as the port sent
  it; `{:error, :timeout}` when no reply came within `timeout` milliseconds
  (the server's default when `nil`), `{:error, {:port_exit, status}}` when
  the port exited meanwhile.
  """
  @spec call(server(), atom(), list(), timeout() | nil) :: reply()
  def call(server, op, args, timeout \\ nil)

  def call(server, op, args, timeout)
      when is_atom(op) and is_list(args) and
             (is_nil(timeout) or timeout == :infinity or
                (is_integer(timeout) and timeout >= 0)) do
    case request(server, op, args, timeout) do
      {:error, %{errno: _} = error} ->
        {:error, Errors.explain(error, op, args, &request(server, &1, &2, timeout))}

      reply ->
        reply
    end
  end

  def call(_server, op, args, timeout) do
    Errors.badarg(
      "call: expected an atom op, a list of args and a timeout, got: " <>
        "#{inspect(op)}, #{inspect(args, limit: 5)}, #{inspect(timeout)}"
    )
  end

  # One request, its reply as the port sent it.
  @spec request(server(), atom(), list(), timeout() | nil) :: reply()
  defp request(server, op, args, timeout) do
    caller_timeout = if is_integer(timeout), do: timeout + @call_grace, else: :infinity
    GenServer.call(server, {:request, op, args, timeout}, caller_timeout)
  end

  ## The declarative API

  @doc """
  Commits `msgs` (a list of `{verb, type, attrs}`) as one netlink
  transaction: all of it lands or none of it does.

  Verbs: `:add`, `:create`, `:insert`, `:replace`, `:delete`, `:destroy`,
  `:flush`. `attrs` is a map of the object's attributes, e.g.
  `{:add, :table, %{family: :inet, name: "filter"}}`.

  Options (a keyword list or map):

    * `echo: true` - returns `{:ok, handles}`, the handle the kernel assigned
      to each message (`nil` where it has none);
    * `genid: n` - aborts if the ruleset changed since generation `n`
      (see `genid/2`);
    * `timeout: ms` - for this call only.

  A kernel error names the failing message and what it addressed:
  `{:error, %{errno: :enoent, index: i, object: %{type: :set, ...},
  attr: :name, message: "..."}}` (see `NFTables.Port.Errors`). Element
  keys are checked against their set's `key_len` before anything is sent.
  """
  @spec commit(server(), [msg()] | binary() | NFTables.Port.Nft.document()) ::
          :ok | {:ok, term()} | {:error, term()}
  def commit(server, msgs), do: commit(server, msgs, [])

  @doc """
  Commits nft's own vocabulary, libnftables JSON, as the original
  NFTables.Port did: `json` is JSON text (`{"nftables": [...]}`) or the
  same document as Elixir terms (`%{nftables: [...]}`). The third
  argument is a timeout (ms) or options (`timeout:`, `genid:`).

  The document's commands are one transaction. JSON text answers
  `{:ok, ""}` for writes and `{:ok, json}` when the document has `list`
  commands (as `nft -j list ...` prints); the Elixir-terms document answers
  `:ok` and `{:ok, document}`. Failures: `{:error, %{index: i, errno:
  atom, message: m}}` (the kernel refused command `i` of the document),
  `{:error, %{index: i, path: [...], message: m}}` (command `i` does not
  translate; `path` leads to the place inside it). See
  `NFTables.Port.Nft`.
  """
  @spec commit(server(), binary() | NFTables.Port.Nft.document(), timeout() | keyword()) ::
          :ok | {:ok, term()} | {:error, term()}
  def commit(server, json, opts) when is_binary(json) do
    with {:ok, opts} <- nft_opts(opts),
         {:ok, doc} <- json_doc(json) do
      case NFTables.Port.Nft.Commit.run(server, doc, opts) do
        :ok -> {:ok, ""}
        {:ok, doc} -> {:ok, NFTables.Port.Nft.Json.encode(doc)}
        {:error, _} = e -> e
      end
    end
  end

  def commit(server, %{nftables: _} = doc, opts) do
    with {:ok, opts} <- nft_opts(opts), do: NFTables.Port.Nft.Commit.run(server, doc, opts)
  end

  @spec commit(server(), [msg()], [commit_option()] | map()) ::
          :ok
          | {:ok, [non_neg_integer() | nil]}
          | {:error, Errors.t() | :generation_changed | term()}
  def commit(server, msgs, opts) do
    with :ok <- check_msgs(msgs),
         {:ok, opts} <- options_map("commit", opts, [:echo, :genid, :timeout]),
         :ok <- check_commit_options(opts),
         {timeout, opts} = Map.pop(opts, :timeout),
         :ok <- Errors.check_key_lens(msgs, &request(server, &1, &2, timeout)) do
      Telemetry.span(:commit, %{server: server, msgs: length(msgs)}, fn ->
        call(server, :commit, [msgs, opts], timeout)
      end)
    end
  end

  @doc """
  Lists objects of one `type` (`:table`, `:chain`, `:rule`, `:set`,
  `:element`, `:counter`, `:flowtable`, ...) from the kernel as attribute
  maps, each of which `commit/3` accepts back.

  `filter` (a map or keyword list) narrows the listing by `:family`,
  `:table`, `:chain` or `:set`. Options: `:timeout`, and `with_genid: true`
  to get `{:ok, %{genid: genid, objects: objects}}`: the generation the
  listing reflects, for a later `commit(..., genid: genid)`.
  """
  @spec list(server(), atom(), map() | keyword(), timeout: timeout(), with_genid: boolean()) ::
          {:ok, [map()]} | {:ok, %{genid: non_neg_integer(), objects: [map()]}} | {:error, term()}
  def list(server, type, filter \\ %{}, opts \\ []) do
    {with_genid, opts} = Keyword.pop(List.wrap(opts), :with_genid, false)
    {format, opts} = Keyword.pop(opts, :format)

    if format == :nft,
      do: NFTables.Port.Nft.Commit.list_nft(server, type, filter, opts),
      else: list_low(server, type, filter, opts, with_genid)
  end

  defp list_low(server, type, filter, opts, with_genid) do
    with :ok <- check_type(type),
         {:ok, filter} <- filter_map(filter),
         {:ok, timeout} <- timeout_option("list", opts) do
      Telemetry.span(:list, %{server: server, type: type, filter: filter}, fn ->
        case call(server, :list, [type, filter], timeout) do
          {:ok, %{objects: objects}} when not with_genid -> {:ok, objects}
          other -> other
        end
      end)
    end
  end

  @doc """
  One object of `type` by its keys (`family`, `table`, `name`, or `handle`
  where the kernel takes one), as an attribute map. A missing object is a
  kernel error `%{errno: :enoent, object: ..., message: "..."}` (see
  `NFTables.Port.Errors`). The only option is
  `:timeout`.
  """
  @spec get(server(), atom(), map() | keyword(), timeout: timeout()) ::
          {:ok, map()} | {:error, term()}
  def get(server, type, keys, opts \\ []) do
    {format, opts} = Keyword.pop(List.wrap(opts), :format)

    with :ok <- check_type(type),
         {:ok, keys} <- filter_map(keys),
         {:ok, timeout} <- timeout_option("get", opts) do
      case {format, call(server, :get, [type, keys], timeout)} do
        {:nft, {:ok, obj}} -> NFTables.Port.Nft.Commit.get_nft(server, type, obj, opts)
        {_, reply} -> reply
      end
    end
  end

  @doc """
  The whole ruleset, from one consistent generation, as
  `{:ok, %{genid: genid, msgs: msgs}}`; `msgs` are `{:add, type, attrs}`
  messages in dependency order, ready for `restore/3`.

  The only option is `:timeout`.
  """
  @spec dump(server(), timeout: timeout()) ::
          {:ok, %{genid: non_neg_integer(), msgs: [msg()]}} | {:error, Errors.t() | term()}
  def dump(server, opts \\ []) do
    {format, opts} = Keyword.pop(List.wrap(opts), :format)

    with {:ok, timeout} <- timeout_option("dump", opts) do
      case format do
        :nft -> NFTables.Port.Nft.Commit.dump_nft(server, opts)
        _ -> Telemetry.span(:dump, %{server: server}, fn -> call(server, :dump, [], timeout) end)
      end
    end
  end

  @doc """
  Replays a dump in one transaction with `commit/3`.

  `dump` is what `dump/2` returned (`%{msgs: msgs}`, with or without the
  `{:ok, _}`) or a plain list of messages. `opts` are those of `commit/3`;
  the dump's own `genid` belongs to the ruleset it came from and is not
  used.
  """
  @spec restore(server(), map() | [msg()] | {:ok, map()}, [commit_option()] | map()) ::
          :ok | {:ok, [non_neg_integer() | nil]} | {:error, Errors.t() | term()}
  def restore(server, dump, opts \\ [])
  def restore(server, {:ok, %{msgs: msgs}}, opts), do: commit(server, msgs, opts)
  def restore(server, %{msgs: msgs}, opts), do: commit(server, msgs, opts)
  def restore(server, msgs, opts) when is_list(msgs), do: commit(server, msgs, opts)

  def restore(_server, dump, _opts) do
    Errors.badarg(
      "restore: expected the map returned by dump/1 or a list of messages, got: " <>
        inspect(dump, limit: 5)
    )
  end

  @doc """
  The kernel's current ruleset generation id, for `commit/3`'s `:genid`.

  The only option is `:timeout`.
  """
  @spec genid(server(), timeout: timeout()) ::
          {:ok, non_neg_integer()} | {:error, Errors.t() | term()}
  def genid(server, opts \\ []) do
    with {:ok, timeout} <- timeout_option("genid", opts) do
      call(server, :genid, [], timeout)
    end
  end

  ## Events, the cache, desired state

  @doc """
  Subscribes `subscriber` (the caller unless given as `:pid` in `filter`)
  to the ruleset's events; returns `{:ok, ref}`. Each change then arrives
  as `{:nftables, ref, event}` (see `NFTables.Port.Events` for the
  events). By the time this returns the port listens: every change
  committed afterwards is delivered.

  `filter`: `family: f`, `table: name` (objects of that table),
  `types: [:rule, :element, ...]`; `{:newgen, _}` and `:overflow` always
  pass. `rcvbuf: bytes` sizes the port's event socket when this
  subscription opens it (64 MiB unless given). `format: :nft` delivers object events in the nft vocabulary
  (`{:error, :nft_format_unavailable}` without it). A subscriber that
  dies is dropped; the port closes its event socket when none is left.
  """
  @spec subscribe(server(), keyword()) :: {:ok, reference()} | {:error, term()}
  def subscribe(server, filter \\ []) do
    {pid, filter} =
      if is_list(filter), do: Keyword.pop(filter, :pid, self()), else: {self(), filter}

    with {:ok, filter} <- NFTables.Port.Events.check_filter(filter) do
      GenServer.call(server, {:subscribe, pid, filter}, @default_timeout)
    end
  end

  @doc "Ends a subscription made with `subscribe/2`; no events follow."
  @spec unsubscribe(server(), reference()) :: :ok | {:error, :not_subscribed}
  def unsubscribe(server, ref) do
    GenServer.call(server, {:unsubscribe, ref}, @default_timeout)
  end

  @doc """
  Converges tables to a desired state in one transaction; see
  `NFTables.Port.Sync.sync/3` for `desired` and the options.
  """
  @spec sync(server(), term(), keyword()) :: {:ok, map()} | {:error, term()}
  def sync(server, desired, opts \\ []) do
    NFTables.Port.Sync.sync(server, desired, opts)
  end

  ## GenServer callbacks

  defp nft_opts(t) when is_integer(t) or t == :infinity, do: {:ok, [timeout: t]}
  defp nft_opts(opts) when is_list(opts), do: {:ok, Keyword.take(opts, [:timeout, :genid])}
  defp nft_opts(opts) when is_map(opts), do: nft_opts(Map.to_list(opts))
  defp nft_opts(other), do: {:error, "commit: expected a timeout or options, got: #{inspect(other)}"}

  defp json_doc(json) do
    case NFTables.Port.Nft.Json.decode(json) do
      {:ok, %{nftables: _} = doc} -> {:ok, doc}
      {:ok, other} -> {:error, %{index: nil, path: [], message: "expected {\"nftables\": [...]}, got: #{inspect(other, limit: 5)}"}}
      {:error, m} -> {:error, %{index: nil, path: [], message: m}}
    end
  end

  @impl GenServer
  def init(config) do
    # Trapping exits makes terminate/2 run on shutdown, so the port is
    # closed (EOF on its stdin) and exits cleanly.
    Process.flag(:trap_exit, true)

    started = System.monotonic_time()

    with {:ok, port} <- open_port(config),
         :ok <- handshake(port, config.timeout) do
      os_pid =
        case Port.info(port, :os_pid) do
          {:os_pid, os_pid} -> os_pid
          nil -> nil
        end

      Telemetry.execute(
        [:nftables_port, :port, :start],
        %{system_time: System.system_time(), duration: System.monotonic_time() - started},
        %{server: self(), os_pid: os_pid, path: config.path}
      )

      {:ok,
       %{
         port: port,
         os_pid: os_pid,
         path: config.path,
         timeout: config.timeout,
         max_frame: config.max_frame,
         # Request 0 was the handshake.
         next_id: 1,
         # request id => {from, timer reference or nil}
         pending: %{},
         # subscribers of ruleset events (NFTables.Port.Events)
         events: NFTables.Port.Events.new()
       }}
    end
  end

  @spec open_port(map()) :: {:ok, port()} | {:stop, {:port_open_failed, term()}}
  defp open_port(config) do
    port_opts = [:binary, {:packet, 4}, :exit_status, :use_stdio, args: config.args]
    {:ok, Port.open({:spawn_executable, config.path}, port_opts)}
  rescue
    e in ErlangError -> {:stop, {:port_open_failed, e.original}}
  end

  # Waits for the port to answer a ping before the server counts as started:
  # by then the port has set up its namespace and capabilities, and a port
  # that cannot start (no such netns, unsafe file capabilities, ...) makes
  # start_link fail with its exit status instead of starting a server that
  # dies at once.
  @spec handshake(port(), timeout()) :: :ok | {:stop, term()}
  defp handshake(port, timeout) do
    Port.command(port, :erlang.term_to_binary({0, :ping, []}))

    receive do
      {^port, {:data, frame}} ->
        case decode(frame) do
          {:ok, {0, {:ok, :pong}}} -> :ok
          {:ok, other} -> stop_port(port, {:handshake_failed, other})
          :error -> stop_port(port, {:handshake_failed, frame})
        end

      {^port, {:exit_status, status}} ->
        {:stop, {:port_exit, status}}

      {:EXIT, ^port, reason} ->
        {:stop, {:port_closed, reason}}
    after
      timeout -> stop_port(port, :port_start_timeout)
    end
  end

  @spec stop_port(port(), term()) :: {:stop, term()}
  defp stop_port(port, reason) do
    Port.close(port)
    {:stop, reason}
  rescue
    ArgumentError -> {:stop, reason}
  end

  @impl GenServer
  def handle_call(:os_pid, _from, state) do
    {:reply, state.os_pid, state}
  end

  def handle_call({:subscribe, pid, filter}, from, state) do
    NFTables.Port.Events.subscribe(pid, filter, from, state)
  end

  def handle_call({:unsubscribe, ref}, _from, state) do
    {reply, state} = NFTables.Port.Events.unsubscribe(ref, state)
    {:reply, reply, state}
  end

  def handle_call({:request, op, args, timeout}, from, state) do
    id = state.next_id
    state = %{state | next_id: id + 1}
    frame = :erlang.term_to_binary({id, op, args})

    cond do
      byte_size(frame) > state.max_frame ->
        {:reply,
         Errors.badarg(
           "#{op}: the request is #{byte_size(frame)} bytes, more than max_frame " <>
             "(#{state.max_frame} bytes)"
         ), state}

      send_frame(state.port, frame) ->
        timer = start_timer(id, timeout || state.timeout)
        {:noreply, %{state | pending: Map.put(state.pending, id, {from, timer})}}

      true ->
        {:reply, {:error, :port_closed}, state}
    end
  end

  @impl GenServer
  def handle_info({port, {:data, frame}}, %{port: port} = state) do
    {:noreply, handle_frame(frame, state)}
  end

  def handle_info({port, {:exit_status, status}}, %{port: port} = state) do
    port_exited(state, {:port_exit, status})
    reply_all(state, {:error, {:port_exit, status}})
    {:stop, {:port_exit, status}, %{state | port: nil, pending: %{}}}
  end

  def handle_info({:request_timeout, id}, state) do
    case Map.pop(state.pending, id) do
      {{fun, _timer}, pending} when is_function(fun, 2) ->
        {:noreply, fun.({:error, :timeout}, %{state | pending: pending})}

      {{from, _timer}, pending} ->
        GenServer.reply(from, {:error, :timeout})
        {:noreply, %{state | pending: pending}}

      {nil, _pending} ->
        {:noreply, state}
    end
  end

  def handle_info({:EXIT, port, reason}, %{port: port} = state) do
    # The port closed without an exit status (e.g. a driver error).
    port_exited(state, {:port_closed, reason})
    reply_all(state, {:error, {:port_closed, reason}})
    {:stop, {:port_closed, reason}, %{state | port: nil, pending: %{}}}
  end

  def handle_info({:EXIT, _pid, :normal}, state) do
    {:noreply, state}
  end

  def handle_info({:EXIT, _pid, reason}, state) do
    # A linked process other than the parent died: behave as if exits were
    # not trapped.
    {:stop, reason, state}
  end

  def handle_info({:DOWN, mon, :process, _pid, _reason} = message, state) do
    case NFTables.Port.Events.down(mon, state) do
      {:ok, state} -> {:noreply, state}
      :error -> handle_info({:unexpected, message}, state)
    end
  end

  def handle_info(message, state) do
    Logger.warning("NFTables.Port: unexpected message #{inspect(message, limit: 10)}")
    {:noreply, state}
  end

  @impl GenServer
  def terminate(reason, state) do
    if state.port do
      try do
        Port.close(state.port)
      rescue
        ArgumentError -> :ok
      end
    end

    Telemetry.execute(
      [:nftables_port, :port, :stop],
      %{system_time: System.system_time()},
      %{server: self(), os_pid: state.os_pid, reason: reason}
    )

    reply_all(state, {:error, {:stopped, reason}})
  end

  ## Internals

  @spec port_exited(map(), term()) :: :ok
  defp port_exited(state, reason) do
    Telemetry.execute(
      [:nftables_port, :port, :exit],
      %{system_time: System.system_time()},
      %{server: self(), os_pid: state.os_pid, reason: reason}
    )
  end

  @doc false
  # Sends a request of the server's own; `fun.(result, state)` gets its
  # reply (or `{:error, :timeout}`) and returns the new state.
  @spec __request__(map(), atom(), list(), (reply(), map() -> map())) :: map()
  def __request__(state, op, args, fun) do
    id = state.next_id
    state = %{state | next_id: id + 1}

    if send_frame(state.port, :erlang.term_to_binary({id, op, args})) do
      timer = start_timer(id, state.timeout)
      %{state | pending: Map.put(state.pending, id, {fun, timer})}
    else
      fun.({:error, :port_closed}, state)
    end
  end

  @spec handle_frame(binary(), map()) :: map()
  defp handle_frame(frame, state) do
    case decode(frame) do
      {:ok, {id, result}} when is_integer(id) ->
        deliver(id, result, state)

      {:ok, {nil, {:error, reason}}} ->
        Logger.warning(
          "NFTables.Port: the port rejected a request it could not identify: " <>
            inspect(reason, limit: 20)
        )

        state

      {:ok, {:event, sub_id, event}} ->
        NFTables.Port.Events.dispatch(sub_id, event, state)

      {:ok, other} ->
        Logger.warning(
          "NFTables.Port: unexpected frame from the port: #{inspect(other, limit: 10)}"
        )

        state

      :error ->
        Logger.error(
          "NFTables.Port: the port sent a frame that is not ETF (#{byte_size(frame)} bytes)"
        )

        state
    end
  end

  @spec deliver(integer(), reply(), map()) :: map()
  defp deliver(id, result, state) do
    case Map.pop(state.pending, id) do
      {{fun, timer}, pending} when is_function(fun, 2) ->
        # The server's own request (NFTables.Port.Events).
        cancel_timer(timer)
        fun.(result, %{state | pending: pending})

      {{from, timer}, pending} ->
        cancel_timer(timer)
        GenServer.reply(from, result)
        %{state | pending: pending}

      {nil, _pending} when id >= 0 and id < state.next_id ->
        Logger.debug("NFTables.Port: dropped the late reply to request #{id}")
        state

      {nil, _pending} ->
        Logger.warning("NFTables.Port: reply to unknown request id #{id}")
        state
    end
  end

  # The port is trusted (we spawned it), so no :safe: replies may carry
  # atoms this node has not seen yet.
  @spec decode(binary()) :: {:ok, term()} | :error
  defp decode(frame) do
    {:ok, :erlang.binary_to_term(frame)}
  rescue
    ArgumentError -> :error
  end

  @spec send_frame(port() | nil, binary()) :: boolean()
  defp send_frame(nil, _frame), do: false

  defp send_frame(port, frame) do
    Port.command(port, frame)
  rescue
    ArgumentError -> false
  end

  @spec start_timer(non_neg_integer(), timeout()) :: reference() | nil
  defp start_timer(_id, :infinity), do: nil
  defp start_timer(id, timeout), do: Process.send_after(self(), {:request_timeout, id}, timeout)

  @spec cancel_timer(reference() | nil) :: :ok
  defp cancel_timer(nil), do: :ok
  defp cancel_timer(timer), do: Process.cancel_timer(timer, async: true, info: false)

  @spec reply_all(map(), term()) :: :ok
  defp reply_all(state, reply) do
    Enum.each(state.pending, fn
      {_id, {fun, timer}} when is_function(fun, 2) ->
        cancel_timer(timer)
        fun.(reply, %{state | pending: %{}})

      {_id, {from, timer}} ->
        cancel_timer(timer)
        GenServer.reply(from, reply)
    end)
  end

  ## Options and argument checks

  @spec check_options(term()) :: :ok | {:error, {:invalid_option, term()}}
  defp check_options(opts) do
    cond do
      not Keyword.keyword?(opts) ->
        {:error, {:invalid_option, opts}}

      bad = Enum.find(opts, fn {key, _} -> key not in @start_options end) ->
        {:error, {:invalid_option, bad}}

      bad = Enum.find(opts, &(not valid_option?(&1))) ->
        {:error, {:invalid_option, bad}}

      true ->
        :ok
    end
  end

  @spec valid_option?({atom(), term()}) :: boolean()
  defp valid_option?({:name, _name}), do: true
  defp valid_option?({:path, path}), do: is_binary(path) and path != ""
  defp valid_option?({:netns, :new}), do: true

  defp valid_option?({:netns, name}) when is_binary(name),
    do: name not in ["", ".", ".."] and not String.contains?(name, ["/", <<0>>])

  defp valid_option?({:timeout, :infinity}), do: true
  defp valid_option?({:timeout, ms}), do: is_integer(ms) and ms >= 0
  defp valid_option?({:max_frame, n}), do: is_integer(n) and n > 0

  defp valid_option?({:command_prefix, prefix}),
    do: is_list(prefix) and Enum.all?(prefix, &(is_binary(&1) and &1 != ""))

  defp valid_option?({key, id}) when key in [:user, :group] and is_integer(id), do: id >= 0

  defp valid_option?({key, name}) when key in [:user, :group] and is_binary(name),
    do: name != "" and not String.contains?(name, <<0>>)

  defp valid_option?(_option), do: false

  @spec resolve_path([option()]) :: {:ok, Path.t()} | {:error, term()}
  defp resolve_path(opts) do
    case Keyword.fetch(opts, :path) do
      {:ok, path} ->
        if executable_file?(path),
          do: {:ok, path},
          else: {:error, {:port_binary_not_found, path}}

      :error ->
        find_port_binary()
    end
  end

  @spec port_args([option()]) :: {:ok, [String.t()]}
  defp port_args(opts) do
    netns =
      case Keyword.fetch(opts, :netns) do
        {:ok, :new} -> ["--netns", "new"]
        {:ok, name} -> ["--netns", name]
        :error -> []
      end

    max_frame =
      case Keyword.fetch(opts, :max_frame) do
        {:ok, n} -> ["--max-frame", Integer.to_string(n)]
        :error -> []
      end

    identity =
      Enum.flat_map([user: "--user", group: "--group"], fn {key, flag} ->
        case Keyword.fetch(opts, key) do
          {:ok, id} when is_integer(id) -> [flag, Integer.to_string(id)]
          {:ok, name} -> [flag, name]
          :error -> []
        end
      end)

    {:ok, netns ++ max_frame ++ identity}
  end

  @spec executable_file?(Path.t()) :: boolean()
  defp executable_file?(path) do
    case File.stat(path) do
      {:ok, %File.Stat{type: :regular, mode: mode}} -> Bitwise.band(mode, 0o111) != 0
      _ -> false
    end
  end

  @spec check_msgs(term(), non_neg_integer()) :: :ok | {:error, Errors.caller_error()}
  defp check_msgs(msgs, index \\ 0)
  defp check_msgs([], _index), do: :ok

  defp check_msgs([msg | rest], index) do
    if valid_msg?(msg) do
      check_msgs(rest, index + 1)
    else
      Errors.badarg(
        "commit: message #{index} is not {verb, type, attrs} with an atom verb and " <>
          "type and a map of attributes: #{inspect(msg, limit: 5)}",
        index
      )
    end
  end

  defp check_msgs(msgs, 0) do
    Errors.badarg(
      "commit: msgs must be a list of {verb, type, attrs}, got: #{inspect(msgs, limit: 5)}"
    )
  end

  defp check_msgs(_tail, _index), do: Errors.badarg("commit: msgs must be a proper list")

  @spec valid_msg?(term()) :: boolean()
  defp valid_msg?({verb, type, attrs}), do: is_atom(verb) and is_atom(type) and is_map(attrs)
  defp valid_msg?(_msg), do: false

  @spec check_commit_options(map()) :: :ok | {:error, Errors.caller_error()}
  defp check_commit_options(opts) do
    Enum.find_value(opts, :ok, fn
      {:echo, echo} when is_boolean(echo) -> nil
      {:genid, genid} when is_integer(genid) and genid >= 0 -> nil
      {:timeout, :infinity} -> nil
      {:timeout, ms} when is_integer(ms) and ms >= 0 -> nil
      {key, value} -> Errors.badarg("commit: invalid option #{key}: #{inspect(value, limit: 5)}")
    end)
  end

  @spec options_map(String.t(), term(), [atom()]) ::
          {:ok, map()} | {:error, Errors.caller_error()}
  defp options_map(what, opts, known) do
    map =
      cond do
        is_map(opts) -> opts
        is_list(opts) and Keyword.keyword?(opts) -> Map.new(opts)
        true -> nil
      end

    cond do
      map == nil ->
        Errors.badarg(
          "#{what}: options must be a keyword list or a map, got: #{inspect(opts, limit: 5)}"
        )

      unknown = Enum.find(Map.keys(map), &(&1 not in known)) ->
        Errors.badarg(
          "#{what}: unknown option #{inspect(unknown)} (known: " <>
            Enum.map_join(known, ", ", &inspect/1) <> ")"
        )

      true ->
        {:ok, map}
    end
  end

  @spec timeout_option(String.t(), term()) ::
          {:ok, timeout() | nil} | {:error, Errors.caller_error()}
  defp timeout_option(what, opts) do
    with {:ok, map} <- options_map(what, opts, [:timeout]) do
      case Map.get(map, :timeout) do
        nil -> {:ok, nil}
        :infinity -> {:ok, :infinity}
        ms when is_integer(ms) and ms >= 0 -> {:ok, ms}
        other -> Errors.badarg("#{what}: invalid option timeout: #{inspect(other)}")
      end
    end
  end

  @spec check_type(term()) :: :ok | {:error, Errors.caller_error()}
  defp check_type(type) when is_atom(type) and not is_nil(type) and not is_boolean(type),
    do: :ok

  defp check_type(type),
    do:
      Errors.badarg(
        "list: the object type must be an atom such as :table, got: #{inspect(type, limit: 5)}"
      )

  @spec filter_map(term()) :: {:ok, map()} | {:error, Errors.caller_error()}
  defp filter_map(filter) when is_map(filter), do: {:ok, filter}

  defp filter_map(filter) when is_list(filter) do
    if Keyword.keyword?(filter),
      do: {:ok, Map.new(filter)},
      else: filter_error(filter)
  end

  defp filter_map(filter), do: filter_error(filter)

  @spec filter_error(term()) :: {:error, Errors.caller_error()}
  defp filter_error(filter) do
    Errors.badarg(
      "list: the filter must be a map or a keyword list, got: #{inspect(filter, limit: 5)}"
    )
  end
end
