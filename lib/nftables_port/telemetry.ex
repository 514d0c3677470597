defmodule NFTables.Port.Telemetry do
  @moduledoc """
  `:telemetry` events of `NFTables.Port`.

  They are emitted when the application has the `:telemetry` library
  loaded (add `{:telemetry, "~> 1.0"}` to your deps); without it nothing
  is emitted and nothing else changes. There is no event bus of the
  library's own: attach handlers with `:telemetry.attach/4` as usual.

  ## Operations

  `commit`, `list` and `dump` (through `NFTables.Port.commit/3`,
  `restore/3`, `list/4` and `dump/2`) are spans, in the caller's process:

    * `[:nftables_port, op, :start]` - measurements `%{system_time:,
      monotonic_time:}`; metadata `%{server:, op:}`, plus `msgs:` (how many
      messages) for commit, `type:` and `filter:` for list;
    * `[:nftables_port, op, :stop]` - measurements `%{duration:,
      monotonic_time:}` (native time units); the start's metadata plus
      `result: :ok | :error` and, on error, `error:` (the reason).

  ## The port's lifecycle

  Emitted by the server process:

    * `[:nftables_port, :port, :start]` - the port answered its first ping;
      measurements `%{system_time:, duration:}` (the start's duration);
      metadata `%{server:, os_pid:, path:}`;
    * `[:nftables_port, :port, :exit]` - the port exited or closed;
      measurements `%{system_time:}`; metadata `%{server:, os_pid:,
      reason:}`, `reason` being `{:port_exit, status}` or `{:port_closed,
      why}`;
    * `[:nftables_port, :port, :stop]` - the server stopped (and closed the
      port); measurements `%{system_time:}`; metadata `%{server:, os_pid:,
      reason:}`.
  """

  @doc "Whether `:telemetry` is loaded, so that events are emitted."
  @spec enabled?() :: boolean()
  def enabled? do
    Code.ensure_loaded?(:telemetry) and function_exported?(:telemetry, :execute, 3)
  end

  @doc false
  @spec execute([atom()], map(), map()) :: :ok
  def execute(event, measurements, metadata) do
    if enabled?() do
      # apply/3: :telemetry is optional, and not known at compile time.
      apply(:telemetry, :execute, [event, measurements, metadata])
    end

    :ok
  end

  @doc false
  # Runs fun as the span [:nftables_port, op, :start | :stop].
  @spec span(atom(), map(), (() -> term())) :: term()
  def span(op, metadata, fun) do
    if enabled?() do
      start = System.monotonic_time()
      metadata = Map.put(metadata, :op, op)

      execute(
        [:nftables_port, op, :start],
        %{system_time: System.system_time(), monotonic_time: start},
        metadata
      )

      result = fun.()
      stop = System.monotonic_time()

      outcome =
        case result do
          {:error, reason} -> %{result: :error, error: reason}
          _ -> %{result: :ok}
        end

      execute(
        [:nftables_port, op, :stop],
        %{duration: stop - start, monotonic_time: stop},
        Map.merge(metadata, outcome)
      )

      result
    else
      fun.()
    end
  end
end
