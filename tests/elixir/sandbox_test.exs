defmodule NFTables.SandboxTest do
  # Least privilege beyond capabilities (docs/security.md): a port started
  # as root runs as nobody/nogroup (or the :user/:group it is given) with
  # CAP_NET_ADMIN alone, in every way of choosing its network namespace;
  # its seccomp filter and Landlock ruleset refuse what the main loop does
  # not need, shown with the test build's test_forbidden_call (and, as the
  # control, the same build with --no-sandbox, where the same calls work);
  # and strace sees no call of a real workload refused.
  #
  # Every kernel operation happens in a network namespace made for the test.
  use NFTables.Port.Case, async: true

  import NFTables.SecurityHelpers

  alias NFTables.Port
  alias NFTables.Port.Control
  alias NFTables.Port.Kernel.Netlink
  alias NFTables.Port.Test.RawPort

  @moduletag :kernel
  # nobody, file capabilities and the test build need root; the
  # unprivileged run excludes :root.
  @moduletag :root

  @unavailable NFTables.SecurityHelpers.unavailable_reason()
  if @unavailable do
    if System.get_env("CI") == "true" and System.cmd("id", ["-u"]) |> elem(0) |> String.trim() == "0" do
      raise "CI=true, but the sandbox tests cannot run here: " <> @unavailable
    end

    IO.puts("Skipping NFTables.SandboxTest: " <> @unavailable)
    @moduletag skip: @unavailable
  end

  @net_admin "0000000000001000"
  @nobody_ids "65534\t65534\t65534\t65534"
  @eperm "Operation not permitted (EPERM)"
  @eacces "Permission denied (EACCES)"
  # The BEAM's exit status of a process killed by SIGSYS (128 + 31): what
  # seccomp's SECCOMP_RET_KILL_PROCESS does.
  @sigsys_status 159

  # A copy of build/port_nftables_test (the linker writes that file in
  # place; a copy is never half written while someone rebuilds).
  defp test_build! do
    src = Path.expand("../../build/port_nftables_test", __DIR__)
    assert File.regular?(src), "#{src} not found: run mix compile"
    dst = Path.join(tmp_dir!("nfp-sandbox"), "port_nftables_test")
    File.cp!(src, dst)
    File.chmod!(dst, 0o755)
    dst
  end

  defp forbidden(rp, call) do
    case RawPort.request(rp, :test_forbidden_call, [call]) do
      {:error, %{message: "test_forbidden_call: " <> message}} -> {:error, message}
      other -> other
    end
  end

  defp table_msgs(name), do: [{:add, :table, %{family: :inet, name: name}}]

  defp stderr_file, do: Path.join(tmp_dir!("nfp-sandbox"), "stderr")

  describe "no root" do
    test "a named netns: nobody, CAP_NET_ADMIN there, ruleset and sysctl in that namespace" do
      ns = netns!()
      pid = start_port_exactly!(path: built_port!(), netns: ns)
      status = proc_status!(Port.os_pid(pid))
      assert status["Uid"] == @nobody_ids
      assert status["Gid"] == @nobody_ids
      assert status["CapEff"] == @net_admin
      assert status["Seccomp"] == "2"

      assert Port.commit(pid, table_msgs("named")) == :ok
      assert cmd!("ip", ["netns", "exec", ns, "nft", "list", "tables"]) == "table inet named\n"
      assert NFTables.Port.Sysctl.set(pid, "net.ipv4.ip_forward", true) == :ok
      assert cmd!("ip", ["netns", "exec", ns, "cat", "/proc/sys/net/ipv4/ip_forward"]) == "1\n"
    end

    test "without :netns, in the namespace it was started in (unshare -n): nobody too" do
      pid = start_port_exactly!(path: built_port!(), command_prefix: ["unshare", "-n"])
      status = proc_status!(Port.os_pid(pid))
      assert status["Uid"] == @nobody_ids
      assert status["CapEff"] == @net_admin
      assert Port.commit(pid, table_msgs("plain")) == :ok
      assert nft!(pid, "list tables") == "table inet plain\n"
    end

    test "root without CAP_SYS_ADMIN, netns: :new: nobody before its user namespace, so uid 0 there is nobody" do
      prefix = ["setpriv", "--inh-caps=-all", "--bounding-set=-sys_admin"]
      pid = start_port_exactly!(path: built_port!(), netns: :new, command_prefix: prefix)
      os_pid = Port.os_pid(pid)
      status = proc_status!(os_pid)
      assert status["Uid"] == @nobody_ids
      assert File.read!("/proc/#{os_pid}/uid_map") =~ ~r/^\s*0\s+65534\s+1\n$/
      assert File.read!("/proc/#{os_pid}/gid_map") =~ ~r/^\s*0\s+65534\s+1\n$/

      assert %{user_namespace: :own, uid: 0, seccomp: :filter, effective: [:cap_net_admin]} =
               Control.self_check(pid) |> elem(1)

      assert Port.commit(pid, table_msgs("userns")) == :ok
    end

    test ":user and :group choose another identity, by name or number" do
      pid = start_port!(path: built_port!(), user: "daemon")
      assert proc_status!(Port.os_pid(pid))["Uid"] == "1\t1\t1\t1"
      # The user's own group when no :group is given.
      assert proc_status!(Port.os_pid(pid))["Gid"] == "1\t1\t1\t1"
      assert %{uid: 1, gid: 1, groups: []} = Control.self_check(pid) |> elem(1)

      pid = start_port!(path: built_port!(), user: "nobody", group: "daemon")
      assert proc_status!(Port.os_pid(pid))["Gid"] == "1\t1\t1\t1"
      assert proc_status!(Port.os_pid(pid))["Uid"] == @nobody_ids

      pid = start_port!(path: built_port!(), user: 40_001, group: 40_002)
      status = proc_status!(Port.os_pid(pid))
      assert status["Uid"] == "40001\t40001\t40001\t40001"
      assert status["Gid"] == "40002\t40002\t40002\t40002"
      assert status["CapEff"] == @net_admin
      assert Port.commit(pid, table_msgs("numeric")) == :ok
    end

    test "refused: an unknown user or group, uid or gid 0, :user for a port not started as root" do
      Process.flag(:trap_exit, true)

      for {opts, message} <- [
            {[user: "nfp-no-such-user"], "error: --user nfp-no-such-user: no such user\n"},
            {[group: "nfp-no-such-group"], "error: --group nfp-no-such-group: no such group\n"},
            {[user: "root"],
             "error: refusing to run as uid 0: choose an unprivileged --user and --group\n"},
            {[user: "nobody", group: "root"],
             "error: refusing to run as gid 0: choose an unprivileged --user and --group\n"}
          ] do
        err = stderr_file()

        assert Port.start_link(
                 [path: built_port!(), netns: :new, command_prefix: stderr_to(err)] ++ opts
               ) ==
                 {:error, {:port_exit, 1}}

        assert File.read!(err) == message
      end

      err = stderr_file()
      nobody = stderr_to(err) ++ ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

      assert Port.start_link(
               path: built_port!(),
               netns: :new,
               user: "daemon",
               command_prefix: nobody
             ) ==
               {:error, {:port_exit, 1}}

      assert File.read!(err) ==
               "error: --user and --group need a port started as root (it runs as uid 65534 already)\n"

      assert Port.start_link(user: "") == {:error, {:invalid_option, {:user, ""}}}
      assert Port.start_link(group: -1) == {:error, {:invalid_option, {:group, -1}}}
    end

    test "nobody cannot write root's files: without the sandbox the kernel says EACCES, with it seccomp says EPERM" do
      rp = RawPort.open(path: test_build!(), extra: ["--no-sandbox"])
      assert forbidden(rp, :write_passwd) == {:error, "write_passwd: " <> @eacces}
      RawPort.close(rp)

      rp = RawPort.open(path: test_build!())
      assert forbidden(rp, :write_passwd) == {:error, "write_passwd: " <> @eperm}
      RawPort.close(rp)
    end
  end

  describe "seccomp and Landlock" do
    test "every forbidden call is refused and the port keeps serving; netlink for nftables still works" do
      rp = RawPort.open(path: test_build!())
      assert {:ok, %{seccomp: :filter, landlock: abi}} = RawPort.request(rp, :self_check, [])
      assert is_integer(abi)
      assert proc_status!(RawPort.os_pid(rp))["Seccomp"] == "2"

      # socket() of anything but NETLINK_NETFILTER; open() of any file
      # outside /proc/sys/net: EPERM from the filter.
      assert forbidden(rp, :route_socket) == {:error, "route_socket: " <> @eperm}
      assert forbidden(rp, :inet_socket) == {:error, "inet_socket: " <> @eperm}
      assert forbidden(rp, :open_passwd) == {:error, "open_passwd: " <> @eperm}
      assert forbidden(rp, :write_passwd) == {:error, "write_passwd: " <> @eperm}
      # openat() on the /proc/sys/net descriptor passes the filter; "../.."
      # out of it is Landlock's to refuse.
      assert forbidden(rp, :escape_sysctl) == {:error, "escape_sysctl: " <> @eacces}

      assert RawPort.request(rp, :ping, []) == {:ok, :pong}
      assert {:ok, sock} = RawPort.request(rp, :socket_open, [])
      assert RawPort.request(rp, :socket_close, [sock]) == :ok
      assert RawPort.request(rp, :commit, [table_msgs("still"), %{}]) == :ok
      assert RawPort.request(rp, :sysctl_get, ["net.ipv4.ip_forward"]) == {:ok, false}
      assert {0, ""} = RawPort.close(rp)
    end

    test "execve kills the port (SIGSYS), no reply" do
      rp = RawPort.open(path: test_build!())
      RawPort.send_raw(rp, :erlang.term_to_binary({1, :test_forbidden_call, [:execve]}))
      assert {@sigsys_status, _stderr} = RawPort.wait_exit(rp)
    end

    test "control: the same build with --no-sandbox makes every one of those calls" do
      rp = RawPort.open(path: test_build!(), extra: ["--no-sandbox"])
      assert {:ok, %{seccomp: :off, landlock: :off}} = RawPort.request(rp, :self_check, [])
      assert proc_status!(RawPort.os_pid(rp))["Seccomp"] == "0"

      for call <- [:route_socket, :inet_socket, :open_passwd, :escape_sysctl] do
        assert forbidden(rp, call) == {:ok, :allowed}, "#{call}"
      end

      # execve replaces the port with /bin/true, which exits 0 at once.
      RawPort.send_raw(rp, :erlang.term_to_binary({1, :test_forbidden_call, [:execve]}))
      assert {0, _stderr} = RawPort.wait_exit(rp)
    end

    test "the installed port has neither the test op nor --no-sandbox" do
      pid = start_port!(path: built_port!())

      assert {:error, %{reason: :badarg, message: "unknown op :test_forbidden_call"}} =
               Port.call(pid, :test_forbidden_call, [:execve])

      refute File.read!(built_port!()) =~ "test_forbidden_call"
      refute File.read!(built_port!()) =~ "--no-sandbox"

      {out, 2} = System.cmd(built_port!(), ["--no-sandbox"], stderr_to_stdout: true)
      assert out =~ "usage: port_nftables"
    end

    test "an unprivileged port has the filter too: with file capabilities, and in a user namespace of its own" do
      dir = tmp_dir!()
      ns = netns!()
      path = copy_port!(dir, 0o750, true)

      pid =
        start_port_exactly!(
          path: path,
          command_prefix: unprivileged_prefix(ns, Path.join(dir, "e"))
        )

      assert proc_status!(Port.os_pid(pid))["Seccomp"] == "2"

      assert {:ok, %{seccomp: :filter, uid: 65_534, user_namespace: :caller}} =
               Control.self_check(pid)

      assert Port.commit(pid, table_msgs("fcaps")) == :ok

      plain = copy_port!(tmp_dir!(), 0o755, false)
      nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
      pid = start_port_exactly!(path: plain, netns: :new, command_prefix: nobody)
      assert proc_status!(Port.os_pid(pid))["Seccomp"] == "2"
      # uid 0 of its own user namespace, which is 65534 outside.
      assert proc_status!(Port.os_pid(pid))["Uid"] == @nobody_ids
      assert {:ok, %{seccomp: :filter, uid: 0, user_namespace: :own}} = Control.self_check(pid)
      assert Port.commit(pid, table_msgs("own")) == :ok
      assert NFTables.Port.Sysctl.set(pid, "net.ipv4.ip_forward", true) == :ok
      assert NFTables.Port.Sysctl.get(pid, "net.ipv4.ip_forward") == {:ok, true}
    end

    test "strace -f: no system call of a real workload is refused, and the capability drop at exit still works" do
      file = Path.join(tmp_dir!(), "strace")

      pid =
        start_port!(
          path: built_port!(),
          command_prefix: ["strace", "-f", "-o", file]
        )

      port_pid = Control.self_check(pid) |> elem(1) |> Map.fetch!(:pid)

      assert Port.commit(pid, [
               {:add, :table, %{family: :inet, name: "w"}},
               {:add, :chain, %{family: :inet, table: "w", name: "c"}},
               {:add, :rule,
                %{
                  family: :inet,
                  table: "w",
                  chain: "c",
                  exprs: [{:counter, %{}}, {:immediate, %{dreg: 0, verdict: :accept}}]
                }}
             ]) == :ok

      assert {:ok, [_]} = Port.list(pid, :rule, %{family: :inet, table: "w"})
      assert {:ok, %{msgs: [_, _, _]}} = Port.dump(pid)

      assert {:error, %{errno: :enoent}} =
               Port.commit(pid, [{:delete, :table, %{family: :inet, name: "x"}}])

      assert {:ok, sock} = Netlink.socket_open(pid)
      assert Netlink.socket_close(pid, sock) == :ok
      assert NFTables.Port.Sysctl.set(pid, "net.ipv4.conf.all.rp_filter", 1) == :ok
      assert {:ok, 1} = NFTables.Port.Sysctl.get(pid, "net.ipv4.conf.all.rp_filter")
      assert {:error, _} = NFTables.Port.Sysctl.get(pid, "net.ipv4.conf.nfp0.rp_filter")
      assert {:ok, %{seccomp: :filter}} = Control.self_check(pid)
      assert GenServer.stop(pid) == :ok
      wait_until(fn -> os_process_gone?(port_pid) end)

      lines =
        file
        |> File.read!()
        |> String.split("\n", trim: true)
        |> Enum.filter(&String.starts_with?(&1, "#{port_pid} "))

      # From the filter on: nothing refused with EPERM, nothing killed.
      after_filter =
        Enum.drop_while(lines, &(not (&1 =~ ~r/seccomp\(SECCOMP_SET_MODE_FILTER|PR_SET_SECCOMP/)))

      assert after_filter != [], "no seccomp call in:\n" <> Enum.join(lines, "\n")
      refused = Enum.filter(tl(after_filter), &(&1 =~ "EPERM"))
      assert refused == [], "refused after the filter:\n" <> Enum.join(refused, "\n")
      refute Enum.any?(lines, &(&1 =~ "SIGSYS"))
      # The last capset drops CAP_NET_ADMIN, then exit 0.
      last_capset = lines |> Enum.filter(&(&1 =~ "capset(")) |> List.last()
      assert last_capset =~ "{effective=0, permitted=0, inheritable=0}) = 0"
      assert List.last(lines) =~ ~r/\+\+\+ exited with 0 \+\+\+$/
    end
  end
end
