defmodule NFTables.Port.Events do
  @moduledoc """
  Ruleset events: what `NFTables.Port.subscribe/2` delivers.

  The port opens its event socket (a member of the kernel's
  `NFNLGRP_NFTABLES` multicast group) when the first process subscribes
  and closes it when the last one leaves; every change of the ruleset,
  whoever made it (this port, another port, `nft`), arrives as one event.
  Each subscriber gets `{:nftables, ref, event}`, where `event` is:

    * `{:add, type, attrs}` - a new (or updated) table, chain, set, stateful
      object (`:counter`, `:quota`, ...), flowtable or rule; `attrs` are what
      `NFTables.Port.list/4` gives for it, handles included. A rule comes
      with `position: handle` when it was placed after that rule;
    * `{:insert, :rule, attrs}` - a rule placed at the start of its chain;
    * `{:add, :element, %{family:, table:, set:, elements: [...]}}` and
      `{:delete, :element, ...}` - elements of a set;
    * `{:delete, type, attrs}` - an object deleted;
    * `{:newgen, %{genid: g, pid: p, name: "nft"}}` - the end of a
      transaction: every event before it (since the last `:newgen`) is one
      transaction, and the ruleset is now at generation `g`; `pid` and
      `name` are the process that committed it, where the kernel says;
    * `:overflow` - the port's event socket overran (ENOBUFS) and events
      were lost; whoever keeps state from events must reload it (as
      `NFTables.Port.Cache` does);
    * `{:unknown, msg_type}` - a message of the group the port does not
      decode.

  The format is the low-level one (the `{verb, type, attrs}` messages of
  `NFTables.Port.commit/3`). With `format: :nft` the object events are
  translated by `NFTables.Port.Nft.from_messages/1` (the nft vocabulary);
  see `to_nft/1`.

  This module also holds the subscription bookkeeping of the
  `NFTables.Port` server; those functions are internal.
  """

  @typedoc "An event, as described in the module doc."
  @type event ::
          {:add | :insert | :delete, atom(), map()}
          | {:newgen, map()}
          | :overflow
          | {:unknown, non_neg_integer()}

  # The id the server's one port-side subscription carries.
  @sub_id 1

  @filter_keys [:family, :table, :types, :format, :rcvbuf]

  @doc false
  @spec new() :: map()
  def new, do: %{subs: %{}, port: :off, waiting: []}

  @doc """
  Translates object events to the high-level (nft) form with
  `NFTables.Port.Nft.from_messages/1`: the single point where events meet
  the nft vocabulary. `{:error, :nft_format_unavailable}` when that module
  is not part of this build.
  """
  @spec to_nft(event()) :: {:ok, term()} | {:error, :nft_format_unavailable}
  def to_nft({verb, _type, _attrs} = msg) when verb in [:add, :insert, :delete] do
    if nft_available?() do
      case apply(NFTables.Port.Nft, :from_messages, [[msg]]) do
        {:ok, doc} -> {:ok, doc}
        {:error, _} = error -> error
        doc -> {:ok, doc}
      end
    else
      {:error, :nft_format_unavailable}
    end
  end

  def to_nft(other), do: {:ok, other}

  @doc false
  @spec nft_available?() :: boolean()
  def nft_available? do
    Code.ensure_loaded?(NFTables.Port.Nft) and
      function_exported?(NFTables.Port.Nft, :from_messages, 1)
  end

  @doc false
  @spec check_filter(term()) :: {:ok, map()} | {:error, term()}
  def check_filter(filter) do
    cond do
      not (is_list(filter) and Keyword.keyword?(filter)) and not is_map(filter) ->
        {:error, "subscribe: the filter must be a keyword list, got: #{inspect(filter, limit: 5)}"}

      bad = Enum.find(Map.keys(Map.new(filter)), &(&1 not in @filter_keys)) ->
        {:error,
         "subscribe: unknown filter #{inspect(bad)} (known: " <>
           Enum.map_join(@filter_keys, ", ", &inspect/1) <> ")"}

      true ->
        filter = Map.new(filter)

        case Map.get(filter, :format, :low) do
          :low ->
            {:ok, filter}

          :nft ->
            if nft_available?(), do: {:ok, filter}, else: {:error, :nft_format_unavailable}

          other ->
            {:error, "subscribe: format must be :low or :nft, got: #{inspect(other)}"}
        end
    end
  end

  ## The server's side (called from NFTables.Port's callbacks)

  @doc false
  # Returns {:reply, reply, state} or {:noreply, state}.
  def subscribe(pid, filter, from, state) do
    ev = state.events
    ref = make_ref()
    mon = Process.monitor(pid)
    sub = %{pid: pid, mon: mon, filter: filter}
    ev = %{ev | subs: Map.put(ev.subs, ref, sub)}

    case ev.port do
      :on ->
        {:reply, {:ok, ref}, %{state | events: ev}}

      :pending ->
        {:noreply, %{state | events: %{ev | waiting: [{from, ref} | ev.waiting]}}}

      :off ->
        ev = %{ev | port: :pending, waiting: [{from, ref}]}
        state = %{state | events: ev}
        opts = Map.take(filter, [:rcvbuf])
        {:noreply, NFTables.Port.__request__(state, :subscribe, [@sub_id, opts], &subscribed/2)}
    end
  end

  defp subscribed(result, state) do
    ev = state.events

    case result do
      :ok ->
        Enum.each(ev.waiting, fn {from, ref} -> GenServer.reply(from, {:ok, ref}) end)
        ev = %{ev | port: :on, waiting: []}
        # Everyone may have left meanwhile.
        maybe_close(%{state | events: ev})

      error ->
        subs =
          Enum.reduce(ev.waiting, ev.subs, fn {from, ref}, subs ->
            GenServer.reply(from, error)
            drop_sub(subs, ref)
          end)

        %{state | events: %{ev | port: :off, waiting: [], subs: subs}}
    end
  end

  @doc false
  def unsubscribe(ref, state) do
    ev = state.events

    case Map.fetch(ev.subs, ref) do
      {:ok, _sub} ->
        state = %{state | events: %{ev | subs: drop_sub(ev.subs, ref)}}
        {:ok, maybe_close(state)}

      :error ->
        {{:error, :not_subscribed}, state}
    end
  end

  @doc false
  def down(mon, state) do
    ev = state.events

    case Enum.find(ev.subs, fn {_ref, sub} -> sub.mon == mon end) do
      {ref, _sub} -> {:ok, elem(unsubscribe(ref, state), 1)}
      nil -> :error
    end
  end

  defp drop_sub(subs, ref) do
    case Map.pop(subs, ref) do
      {%{mon: mon}, subs} ->
        Process.demonitor(mon, [:flush])
        subs

      {nil, subs} ->
        subs
    end
  end

  defp maybe_close(%{events: %{port: :on, subs: subs} = ev} = state) when map_size(subs) == 0 do
    state = %{state | events: %{ev | port: :off}}
    NFTables.Port.__request__(state, :unsubscribe, [@sub_id], fn _result, state -> state end)
  end

  defp maybe_close(state), do: state

  @doc false
  def dispatch(@sub_id, event, state) do
    Enum.each(state.events.subs, fn {ref, %{pid: pid, filter: filter}} ->
      if wanted?(filter, event), do: deliver(pid, ref, filter, event)
    end)

    state
  end

  def dispatch(_other_sub, _event, state), do: state

  defp deliver(pid, ref, %{format: :nft}, event) do
    case to_nft(event) do
      {:ok, nft} -> send(pid, {:nftables, ref, nft})
      # What the translator cannot say comes as it is.
      {:error, _} -> send(pid, {:nftables, ref, event})
    end
  end

  defp deliver(pid, ref, _filter, event), do: send(pid, {:nftables, ref, event})

  defp wanted?(filter, {_verb, type, attrs}) when is_map(attrs) do
    Enum.all?(filter, fn
      {:family, family} -> Map.get(attrs, :family) == family
      {:table, table} -> table_scoped?(type, attrs, table)
      {:types, types} -> type in List.wrap(types)
      {:format, _} -> true
      {:rcvbuf, _} -> true
    end)
  end

  defp wanted?(_filter, _event), do: true

  defp table_scoped?(:table, attrs, table), do: Map.get(attrs, :name) == table
  defp table_scoped?(_type, attrs, table), do: Map.get(attrs, :table) == table
end
