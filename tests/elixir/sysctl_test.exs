defmodule NFTables.SysctlTest do
  # NFTables.Port.Sysctl against the real kernel, always in the port's own
  # network namespace (netns: :new): values read back by the port and by
  # `cat` in that namespace, the host's own values untouched, and every
  # refusal named (not on the allow-list, a bad interface name, a value of
  # the wrong type or out of range, a sysctl the kernel does not have or
  # will not let a namespace write).
  use NFTables.Port.Case, async: true

  alias NFTables.Port.Sysctl

  @moduletag :kernel

  defp cat!(pid, path), do: netns_cmd!(pid, "cat", [path])

  test "ip_forward and ipv6 forwarding: set in the port's namespace, not on the host" do
    host_v4 = File.read!("/proc/sys/net/ipv4/ip_forward")
    host_v6 = File.read!("/proc/sys/net/ipv6/conf/all/forwarding")
    pid = start_port!()

    assert Sysctl.get(pid, "net.ipv4.ip_forward") == {:ok, false}
    assert Sysctl.set(pid, "net.ipv4.ip_forward", true) == :ok
    assert Sysctl.get(pid, "net.ipv4.ip_forward") == {:ok, true}
    assert cat!(pid, "/proc/sys/net/ipv4/ip_forward") == "1\n"

    assert Sysctl.set(pid, "net.ipv6.conf.all.forwarding", true) == :ok
    assert Sysctl.get(pid, "net.ipv6.conf.all.forwarding") == {:ok, true}
    assert cat!(pid, "/proc/sys/net/ipv6/conf/all/forwarding") == "1\n"

    assert Sysctl.set(pid, "net.ipv4.ip_forward", false) == :ok
    assert cat!(pid, "/proc/sys/net/ipv4/ip_forward") == "0\n"

    assert File.read!("/proc/sys/net/ipv4/ip_forward") == host_v4
    assert File.read!("/proc/sys/net/ipv6/conf/all/forwarding") == host_v6
  end

  test "a wildcard component: an interface name, all, default" do
    pid = start_port!()

    for ifname <- ["lo", "all", "default"] do
      name = "net.ipv4.conf.#{ifname}.rp_filter"
      assert Sysctl.set(pid, name, 2) == :ok
      assert Sysctl.get(pid, name) == {:ok, 2}
      assert cat!(pid, "/proc/sys/net/ipv4/conf/#{ifname}/rp_filter") == "2\n"
      assert Sysctl.set(pid, name, 0) == :ok
      assert Sysctl.get(pid, name) == {:ok, 0}
    end

    # A name with a dot, as VLAN interfaces have, is one component.
    netns_cmd!(pid, "ip", ["link", "add", "vl.0", "type", "veth", "peer", "name", "vp.0"])
    assert Sysctl.set(pid, "net.ipv4.conf.vl.0.rp_filter", 1) == :ok
    assert cat!(pid, "/proc/sys/net/ipv4/conf/vl.0/rp_filter") == "1\n"
    assert Sysctl.set(pid, "net.ipv6.conf.vl.0.disable_ipv6", true) == :ok
    assert Sysctl.get(pid, "net.ipv6.conf.vl.0.disable_ipv6") == {:ok, true}
  end

  test "refusals name the sysctl and what was wrong; the port keeps serving" do
    pid = start_port!()

    not_listed =
      "is not a sysctl the port may use (the allow-list is schema/sysctl.yaml, " <>
        "see docs/reference.md#sysctls)"

    bad_if =
      "is not an interface name (1 to 15 bytes, no '/', ':', NUL or white space, not . or ..)"

    for {call, expected} <- [
          {{:get, "net.core.somaxconn"}, "sysctl_get: net.core.somaxconn " <> not_listed},
          {{:get, "kernel.panic"}, "sysctl_get: kernel.panic " <> not_listed},
          {{:get, "net.ipv4.ip_forward.x"}, "sysctl_get: net.ipv4.ip_forward.x " <> not_listed},
          {{:get, "net/ipv4/ip_forward"}, "sysctl_get: net/ipv4/ip_forward " <> not_listed},
          {{:get, "net.ipv4.conf..rp_filter"},
           "sysctl_get: net.ipv4.conf..rp_filter " <> not_listed},
          {{:get, "net.ipv4.conf.../rp_filter"},
           "sysctl_get: net.ipv4.conf.../rp_filter " <> not_listed},
          {{:get, "net.ipv4.conf....rp_filter"},
           "sysctl_get: net.ipv4.conf....rp_filter: .. " <> bad_if},
          {{:get, "net.ipv4.conf.a/b.rp_filter"},
           "sysctl_get: net.ipv4.conf.a/b.rp_filter: a/b " <> bad_if},
          {{:get, "net.ipv4.conf.a b.rp_filter"},
           "sysctl_get: net.ipv4.conf.a b.rp_filter: a b " <> bad_if},
          {{:get, "net.ipv4.conf.a:1.rp_filter"},
           "sysctl_get: net.ipv4.conf.a:1.rp_filter: a:1 " <> bad_if},
          {{:get, "net.ipv4.conf.#{String.duplicate("x", 16)}.rp_filter"},
           "sysctl_get: net.ipv4.conf.#{String.duplicate("x", 16)}.rp_filter: " <>
             String.duplicate("x", 16) <> " " <> bad_if},
          {{:get, "net.ipv4.ip_forward\0"}, "sysctl_get: the sysctl name contains a NUL byte"},
          {{:get, ""}, "sysctl_get: a sysctl name is 1 to 255 bytes, got 0"},
          {{:get, String.duplicate("n", 256)},
           "sysctl_get: a sysctl name is 1 to 255 bytes, got 256"},
          {{:set, "net.ipv4.conf.all.rp_filter", 3},
           "sysctl_set: net.ipv4.conf.all.rp_filter takes 0 to 2, got 3"},
          {{:set, "net.ipv4.conf.all.rp_filter", -1},
           "sysctl_set: net.ipv4.conf.all.rp_filter takes 0 to 2, got -1"},
          {{:set, "net.ipv4.conf.all.rp_filter", true},
           "sysctl_set: net.ipv4.conf.all.rp_filter: expected an integer, got an atom"},
          {{:set, "net.ipv4.ip_forward", 1},
           "sysctl_set: net.ipv4.ip_forward takes true or false, got an integer"},
          {{:set, "net.netfilter.nf_conntrack_tcp_timeout_established", 0},
           "sysctl_set: net.netfilter.nf_conntrack_tcp_timeout_established takes 1 to 2147483647, got 0"},
          {{:get, "net.ipv4.conf.nfp-none.rp_filter"},
           "sysctl_get: net.ipv4.conf.nfp-none.rp_filter: cannot open it: No such file or directory (ENOENT)"},
          {{:set, "net.ipv4.conf.nfp-none.rp_filter", 1},
           "sysctl_set: net.ipv4.conf.nfp-none.rp_filter: cannot open it: No such file or directory (ENOENT)"}
        ] do
      got =
        case call do
          {:get, name} -> Sysctl.get(pid, name)
          {:set, name, value} -> Sysctl.set(pid, name, value)
        end

      assert {:error, %{reason: :badarg, message: ^expected}} = got, "#{inspect(call)}"
    end

    # The raw op checks its arguments too.
    assert message(NFTables.Port.call(pid, :sysctl_get, [:"net.ipv4.ip_forward"])) ==
             "sysctl_get: name: expected a binary, got an atom"

    assert message(NFTables.Port.call(pid, :sysctl_set, ["net.ipv4.ip_forward", "1"])) ==
             "sysctl_set: net.ipv4.ip_forward takes true or false, got a binary"

    assert message(Sysctl.get(pid, :ip_forward)) ==
             "sysctl_get: the name must be a string, got: :ip_forward"

    assert NFTables.Port.Control.ping(pid) == {:ok, :pong}
  end

  # Caller errors are `%{reason: :badarg, message: m}`.
  defp message({:error, %{message: m}}), do: m
  defp message({:error, m}) when is_binary(m), do: m
  defp message(other), do: other

  @conntrack File.exists?("/proc/sys/net/netfilter/nf_conntrack_max")
  @tag skip: if(@conntrack, do: false, else: "nf_conntrack is not loaded on this host")
  test "conntrack: the limits are read here, and the kernel keeps nf_conntrack_max read-only outside the initial namespace" do
    pid = start_port!()
    assert {:ok, max} = Sysctl.get(pid, "net.netfilter.nf_conntrack_max")
    assert is_integer(max) and max > 0
    assert {:ok, count} = Sysctl.get(pid, "net.netfilter.nf_conntrack_count")
    assert count >= 0

    assert {:error,
            %{
              message:
                "sysctl_set: net.netfilter.nf_conntrack_max: cannot open it: Permission denied (EACCES)"
            }} = Sysctl.set(pid, "net.netfilter.nf_conntrack_max", max)

    assert Sysctl.set(pid, "net.netfilter.nf_conntrack_tcp_timeout_established", 3600) == :ok
    assert Sysctl.get(pid, "net.netfilter.nf_conntrack_tcp_timeout_established") == {:ok, 3600}
    assert cat!(pid, "/proc/sys/net/netfilter/nf_conntrack_tcp_timeout_established") == "3600\n"
  end

  test "docs/reference.md lists every sysctl of the allow-list" do
    reference = File.read!(Path.expand("../../docs/reference.md", __DIR__))
    [_, table] = String.split(reference, "## Sysctls\n", parts: 2)

    for name <- [
          "net.ipv4.ip_forward",
          "net.ipv6.conf.*.forwarding",
          "net.ipv4.conf.*.rp_filter",
          "net.netfilter.nf_conntrack_max"
        ] do
      assert table =~ "| `#{name}` |"
    end
  end
end
