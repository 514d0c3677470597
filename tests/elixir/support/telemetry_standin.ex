defmodule :telemetry do
  @moduledoc false
  # A stand-in for the :telemetry library (not a Debian package, so not
  # available to this project's own tests): the part of its API the tests
  # use, so that they check the calls NFTables.Port makes. Handlers live in
  # the public ETS table :telemetry_standin, which test_helper.exs creates.

  @table :telemetry_standin

  def attach(id, event, fun, config), do: attach_many(id, [event], fun, config)

  def attach_many(id, events, fun, config) do
    if :ets.lookup(@table, id) != [] do
      {:error, :already_exists}
    else
      :ets.insert(@table, {id, events, fun, config})
      :ok
    end
  end

  def detach(id) do
    case :ets.take(@table, id) do
      [] -> {:error, :not_found}
      _ -> :ok
    end
  end

  def execute(event, measurements, metadata) when is_list(event) and is_map(measurements) do
    if :ets.whereis(@table) != :undefined do
      for {id, events, fun, config} <- :ets.tab2list(@table), event in events do
        try do
          fun.(event, measurements, metadata, config)
        rescue
          _ -> detach(id)
        end
      end
    end

    :ok
  end
end
