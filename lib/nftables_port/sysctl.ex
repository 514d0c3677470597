defmodule NFTables.Port.Sysctl do
  @moduledoc """
  Network sysctls through the port, in the port's own network namespace
  (what a router needs: `net.ipv4.ip_forward`, `net.ipv6.conf.all.forwarding`,
  `rp_filter`, the conntrack limits, ...).

      {:ok, pid} = NFTables.Port.start_link(netns: :new)
      :ok = NFTables.Port.Sysctl.set(pid, "net.ipv4.ip_forward", true)
      {:ok, true} = NFTables.Port.Sysctl.get(pid, "net.ipv4.ip_forward")
      {:ok, 0} = NFTables.Port.Sysctl.get(pid, "net.ipv4.conf.lo.rp_filter")

  Only the names of the allow-list `schema/sysctl.yaml` (listed in
  `docs/reference.md`, "Sysctls") are accepted; one component of a name
  may be an interface name, `all` or `default` where the list has `*`. A
  bool sysctl reads as `true`/`false` and takes `true`/`false`; an int one
  takes an integer within its range. The port builds the path below
  `/proc/sys/net` from the list's entry, never following a symbolic link,
  and needs CAP_NET_ADMIN over its namespace to write (which it has, as
  the unprivileged uid it runs as too). Errors name the sysctl and what was
  wrong: `{:error, "sysctl_set: net.ipv4.conf.all.rp_filter takes 0 to 2, got 3"}`,
  `{:error, "sysctl_get: net.ipv4.conf.eth9.rp_filter: cannot open it: No such file or directory (ENOENT)"}`.
  """

  alias NFTables.Port.Kernel.Sysctl, as: Raw

  @doc "Reads sysctl `name`: `{:ok, boolean() | integer()}` or `{:error, reason}`."
  @spec get(GenServer.server(), String.t(), timeout() | nil) ::
          {:ok, boolean() | integer()} | {:error, String.t()}
  def get(server, name, timeout \\ nil)

  def get(server, name, timeout) when is_binary(name), do: Raw.get(server, name, timeout)

  def get(_server, name, _timeout),
    do: {:error, "sysctl_get: the name must be a string, got: #{inspect(name, limit: 5)}"}

  @doc "Writes sysctl `name`: `:ok` or `{:error, reason}`."
  @spec set(GenServer.server(), String.t(), boolean() | integer(), timeout() | nil) ::
          :ok | {:error, String.t()}
  def set(server, name, value, timeout \\ nil)

  def set(server, name, value, timeout)
      when is_binary(name) and (is_boolean(value) or is_integer(value)),
      do: Raw.set(server, name, value, timeout)

  def set(_server, name, value, _timeout) do
    {:error,
     "sysctl_set: expected a string name and a boolean or integer value, got: " <>
       "#{inspect(name, limit: 5)}, #{inspect(value, limit: 5)}"}
  end
end
