defmodule NFTables.SecurityTest do
  # The security model (docs/security.md) seen from outside the port: the
  # capability sets in /proc/<pid>/status of the live process for each way
  # of starting it, NO_NEW_PRIVS, dumpable, the refusal of an unsafe binary,
  # the drop of CAP_NET_ADMIN at shutdown, the input limits,
  # `mix nftables_port.install`, and every shell command of
  # docs/capabilities.md.
  #
  # Every kernel operation happens in a network namespace made for the test
  # (netns: :new, or `ip netns add` deleted afterwards); nothing here touches
  # the host's ruleset.
  #
  # Needs root, the user nobody / group nogroup and the tools of
  # libcap2-bin, util-linux, strace, iproute2 and nftables: skipped with the
  # reason otherwise, except under CI=true, where that fails the run.
  use NFTables.Port.Case, async: true

  import ExUnit.CaptureIO
  import NFTables.SecurityHelpers

  alias NFTables.Port
  alias NFTables.Port.{Batch, Control, Table}
  alias NFTables.Port.Kernel.Netlink
  alias Mix.Tasks.NftablesPort.Install

  @moduletag :kernel
  @moduletag :root

  @unavailable NFTables.SecurityHelpers.unavailable_reason()
  if @unavailable do
    if System.get_env("CI") == "true" and NFTables.SecurityHelpers.effective_uid() == 0 do
      raise "CI=true, but the security tests cannot run here: " <> @unavailable
    end

    IO.puts("Skipping NFTables.SecurityTest: " <> @unavailable)
    @moduletag skip: @unavailable
  end

  @net_admin "0000000000001000"
  @zero "0000000000000000"
  @warnings "warning: Failed to apply capabilities to process (continuing without CAP_NET_ADMIN)\n" <>
              "warning: Note: Netlink operations requiring CAP_NET_ADMIN will fail\n"
  @eperm "Operation not permitted (EPERM)"
  @eperm_commit %{errno: :eperm, index: nil, object: nil, attr: nil, message: @eperm}
  @eperm_op Map.delete(@eperm_commit, :object)

  # The bounding set this test runs with: what a port that may not drop it
  # keeps.
  defp own_bounding, do: proc_status!("self")["CapBnd"]

  defp self_check!(pid) do
    assert {:ok, check} = Control.self_check(pid)
    check
  end

  defp assert_proc_files_are_roots!(os_pid) do
    for file <- ~w(status environ maps mem fd ns) do
      assert %File.Stat{uid: 0, gid: 0} = File.lstat!("/proc/#{os_pid}/#{file}"),
             "/proc/#{os_pid}/#{file} is not root's"
    end
  end

  defp table_msgs(name), do: [{:add, :table, %{family: :inet, name: name}}]

  # The port is in the named namespace `ns`: commit a table through it,
  # list it through it, and find it with nft run in `ns`.
  defp assert_kernel_ops_work!(pid, ns, name) do
    assert Port.commit(pid, table_msgs(name)) == :ok
    assert {:ok, tables} = Port.list(pid, :table, %{family: :inet})
    assert name in Enum.map(tables, & &1.name)
    assert {:ok, genid} = Control.genid(pid)
    assert is_integer(genid)

    ruleset = cmd!("ip", ["netns", "exec", ns, "nft", "list", "ruleset"])
    assert ruleset =~ "table inet #{name} {"
  end

  describe "as root (netns: :new)" do
    test "runs as nobody/nogroup with exactly CAP_NET_ADMIN: CapEff, CapPrm, CapBnd 1000, CapInh and CapAmb 0, NoNewPrivs 1, Seccomp 2, not dumpable" do
      pid = start_port!(path: built_port!())
      os_pid = Port.os_pid(pid)
      status = proc_status!(os_pid)

      # Not root: no owner permission on root's files (security probe,
      # item 2), and no supplementary group of root's.
      assert status["Uid"] == "65534\t65534\t65534\t65534"
      assert status["Gid"] == "65534\t65534\t65534\t65534"
      assert status["Groups"] == ""
      assert status["CapEff"] == @net_admin
      assert status["CapPrm"] == @net_admin
      assert status["CapInh"] == @zero
      assert status["CapAmb"] == @zero
      assert status["CapBnd"] == @net_admin
      assert status["NoNewPrivs"] == "1"
      assert status["Seccomp"] == "2"

      check = self_check!(pid)

      assert %{landlock: abi} = check
      assert is_integer(abi) and abi >= 1

      assert check == %{
               effective: [:cap_net_admin],
               permitted: [:cap_net_admin],
               inheritable: [],
               ambient: [],
               bounding: [:cap_net_admin],
               no_new_privs: true,
               dumpable: false,
               pid: os_pid,
               user_namespace: :caller,
               uid: 65_534,
               gid: 65_534,
               groups: [],
               seccomp: :filter,
               landlock: abi
             }

      assert_self_check_matches_proc!(check, os_pid)
      assert cmd!("getpcaps", ["#{os_pid}"]) == "#{os_pid}: cap_net_admin=ep\n"
      assert cmd!("capsh", ["--decode=#{@net_admin}"]) == "0x#{@net_admin}=cap_net_admin\n"
      assert_proc_files_are_roots!(os_pid)

      # And it can use it, in its own namespace.
      assert Port.commit(pid, table_msgs("root_ok")) == :ok
      assert nft!(pid, "list tables") == "table inet root_ok\n"
    end
  end

  describe "as an unprivileged user with file capabilities" do
    test "nobody runs a root:nogroup 0750 copy with cap_net_admin+ep: CAP_NET_ADMIN alone, kernel operations work" do
      dir = tmp_dir!()
      path = copy_port!(dir, 0o750, true)
      assert cmd!("getcap", [path]) == "#{path} cap_net_admin=ep\n"
      ns = netns!()
      stderr = Path.join(dir, "stderr")

      pid = start_port_exactly!(path: path, command_prefix: unprivileged_prefix(ns, stderr))
      os_pid = Port.os_pid(pid)
      status = proc_status!(os_pid)

      assert status["Uid"] == "65534\t65534\t65534\t65534"
      assert status["Gid"] == "65534\t65534\t65534\t65534"
      assert status["Groups"] == ""
      assert status["CapEff"] == @net_admin
      assert status["CapPrm"] == @net_admin
      assert status["CapInh"] == @zero
      assert status["CapAmb"] == @zero
      # Reduced where the process may drop it: without CAP_SETPCAP it may
      # not, and keeps the bounding set it was started with.
      assert status["CapBnd"] == own_bounding()
      assert status["NoNewPrivs"] == "1"

      check = self_check!(pid)
      assert check.effective == [:cap_net_admin]
      assert check.permitted == [:cap_net_admin]
      assert check.inheritable == []
      assert check.ambient == []
      assert check.bounding == decode_caps(own_bounding())
      assert %{no_new_privs: true, dumpable: false} = check
      assert_self_check_matches_proc!(check, os_pid)
      assert cmd!("getpcaps", ["#{os_pid}"]) == "#{os_pid}: cap_net_admin=ep\n"

      # Not dumpable: the kernel gives the files of /proc/<pid>/ to root,
      # though the process runs as 65534 (the directory itself keeps the
      # process's owner).
      assert_proc_files_are_roots!(os_pid)

      assert_kernel_ops_work!(pid, ns, "fcaps")
      assert File.read!(stderr) == ""
    end

    test "file capabilities give nothing on a nosuid filesystem or under NO_NEW_PRIVS: the port warns" do
      dir = tmp_dir!()
      copy = copy_port!(dir, 0o750, true)
      nobody = ["--reuid=65534", "--regid=65534", "--clear-groups"]

      # NO_NEW_PRIVS set by a process of nobody that holds no capability,
      # before the exec (as under systemd's NoNewPrivileges=yes). (One
      # setpriv doing both as root would still hold root's permitted set at
      # the exec, and then the file gives nothing *new*.)
      {out, 0} =
        System.cmd(
          "sh",
          ["-c", ~s(exec "$@" </dev/null 2>&1), "sh", find("setpriv")] ++
            nobody ++ ["setpriv", "--no-new-privs", copy]
        )

      assert out == @warnings

      # The same file on a nosuid mount (a tmpfs, which does keep xattrs, in
      # a mount namespace of the test's own).
      mnt = Path.join(dir, "nosuid")
      File.mkdir_p!(mnt)

      script =
        "mount -t tmpfs -o nosuid,mode=755 none #{mnt} && cp -a #{copy} #{mnt}/ && " <>
          "getcap #{mnt}/port_nftables && " <>
          ~s(exec setpriv #{Enum.join(nobody, " ")} #{mnt}/port_nftables </dev/null 2>&1)

      {out, 0} = System.cmd(find("unshare"), ["-m", "sh", "-c", script], stderr_to_stdout: true)
      assert out == "#{mnt}/port_nftables cap_net_admin=ep\n" <> @warnings
    end

    test "control: a dumpable process of nobody owns its /proc/<pid>" do
      # What the port's /proc/<pid> would look like if it stayed dumpable:
      # a process of nobody that gained nothing at exec is dumpable, and its
      # /proc files are nobody's. (A port that gained file capabilities at
      # exec starts non-dumpable anyway; without them only its own
      # PR_SET_DUMPABLE = 0 gives /proc/<pid> to root.)
      port =
        Elixir.Port.open(
          {:spawn_executable, find("setpriv")},
          [
            :binary,
            :exit_status,
            args: ["--reuid=65534", "--regid=65534", "--clear-groups", "sleep", "30"]
          ]
        )

      {:os_pid, os_pid} = Elixir.Port.info(port, :os_pid)
      # Once it runs sleep: between setuid and exec it is not dumpable either.
      wait_until(fn -> File.read!("/proc/#{os_pid}/comm") == "sleep\n" end)
      assert proc_status!(os_pid)["Uid"] == "65534\t65534\t65534\t65534"
      assert %File.Stat{uid: 65_534, gid: 65_534} = File.stat!("/proc/#{os_pid}/status")
      System.cmd("kill", ["#{os_pid}"])
    end

    test "netns: \"name\" needs CAP_SYS_ADMIN: the unprivileged port cannot join and says so" do
      dir = tmp_dir!()
      path = copy_port!(dir, 0o750, true)
      ns = netns!()
      stderr = Path.join(dir, "stderr")

      prefix =
        stderr_to(stderr) ++ ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

      Process.flag(:trap_exit, true)

      assert Port.start_link(path: path, netns: ns, command_prefix: prefix) ==
               {:error, {:port_exit, 1}}

      assert File.read!(stderr) ==
               "error: cannot join /run/netns/#{ns}: Operation not permitted\n"
    end
  end

  describe "as an unprivileged user without capabilities" do
    setup do
      dir = tmp_dir!()
      ns = netns!()
      stderr = Path.join(dir, "stderr")
      path = copy_port!(dir, 0o755, false)
      assert cmd!("getcap", [path]) == ""
      pid = start_port_exactly!(path: path, command_prefix: unprivileged_prefix(ns, stderr))
      %{pid: pid, ns: ns, stderr: stderr}
    end

    test "warns exactly as documented, holds nothing, and /proc/<pid> is root's", ctx do
      %{pid: pid} = ctx
      assert File.read!(ctx.stderr) == @warnings

      os_pid = Port.os_pid(pid)
      status = proc_status!(os_pid)
      assert status["Uid"] == "65534\t65534\t65534\t65534"

      for field <- ["CapEff", "CapPrm", "CapInh", "CapAmb"], do: assert(status[field] == @zero)
      assert status["CapBnd"] == own_bounding()
      assert status["NoNewPrivs"] == "1"

      check = self_check!(pid)

      assert check == %{
               effective: [],
               permitted: [],
               inheritable: [],
               ambient: [],
               bounding: decode_caps(own_bounding()),
               no_new_privs: true,
               dumpable: false,
               pid: os_pid,
               user_namespace: :caller,
               uid: 65_534,
               gid: 65_534,
               groups: [],
               seccomp: :filter,
               landlock: check.landlock
             }

      assert is_integer(check.landlock)

      assert_self_check_matches_proc!(check, os_pid)
      assert cmd!("getpcaps", ["#{os_pid}"]) == "#{os_pid}: =\n"
      assert_proc_files_are_roots!(os_pid)
    end

    test "handles and batches work; every kernel operation gets the kernel's EPERM; the port keeps serving",
         %{pid: pid, ns: ns} do
      # Everything short of the kernel.
      assert {:ok, t} = Table.alloc(pid)
      assert Table.set(pid, t, :family, :inet) == :ok
      assert Table.set(pid, t, :name, "filter") == :ok
      assert Table.get(pid, t, :name) == {:ok, "filter"}
      assert Table.get(pid, t, :family) == {:ok, :inet}
      assert {:ok, b} = Batch.new(pid)
      assert Batch.add(pid, b, :add, :table, t) == {:ok, 0}
      # Opening a netlink socket needs no capability; sending on it does.
      assert {:ok, sock} = Netlink.socket_open(pid)

      # The kernel's answers, exactly.
      assert Control.genid(pid) == {:error, @eperm_commit}
      assert Port.genid(pid) == {:error, @eperm_commit}
      assert Port.list(pid, :table) == {:error, Map.put(@eperm_op, :object, %{type: :table})}

      assert Port.list(pid, :chain, %{family: :inet}) ==
               {:error, Map.put(@eperm_op, :object, %{type: :chain, family: :inet})}

      assert Port.get(pid, :table, %{family: :inet, name: "filter"}) ==
               {:error,
                Map.put(@eperm_op, :object, %{type: :table, family: :inet, name: "filter"})}

      assert Port.dump(pid) == {:error, @eperm_commit}
      assert Port.commit(pid, table_msgs("nope")) == {:error, @eperm_commit}
      assert Port.commit(pid, table_msgs("nope"), echo: true) == {:error, @eperm_commit}
      assert Batch.send(pid, b, sock) == {:error, @eperm_commit}

      assert Control.ping(pid) == {:ok, :pong}
      assert Table.free(pid, t) == :ok
      assert Netlink.socket_close(pid, sock) == :ok
      assert Control.ping(pid) == {:ok, :pong}

      # Nothing reached the namespace.
      assert cmd!("ip", ["netns", "exec", ns, "nft", "list", "ruleset"]) == ""
    end
  end

  describe "netns: :new without privileges" do
    test "an unprivileged port without capabilities gets a user and network namespace of its own, and CAP_NET_ADMIN there" do
      dir = tmp_dir!()
      path = copy_port!(dir, 0o755, false)
      stderr = Path.join(dir, "stderr")

      prefix =
        stderr_to(stderr) ++ ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]

      pid = start_port_exactly!(path: path, netns: :new, command_prefix: prefix)
      os_pid = Port.os_pid(pid)
      assert File.read!(stderr) == ""
      assert File.read_link!("/proc/#{os_pid}/ns/user") != File.read_link!("/proc/self/ns/user")
      assert File.read!("/proc/#{os_pid}/uid_map") =~ ~r/^\s*0\s+65534\s+1\n$/

      check = self_check!(pid)

      assert %{
               effective: [:cap_net_admin],
               permitted: [:cap_net_admin],
               bounding: [:cap_net_admin]
             } = check

      assert %{inheritable: [], ambient: [], no_new_privs: true, dumpable: false} = check
      assert_self_check_matches_proc!(check, os_pid)

      assert Port.commit(pid, table_msgs("sandbox")) == :ok

      # nft in the port's user and network namespace, as root there (uid 0
      # of that namespace is nobody outside). (PortCase.nft!/2 passes
      # --preserve-credentials, which leaves nft without capabilities there.)
      assert cmd!("nsenter", ["--target", "#{os_pid}", "--user", "--net", "nft", "list", "tables"]) ==
               "table inet sandbox\n"
    end

    test "fails with the kernel's reason where user namespaces are not allowed" do
      # A user namespace A of the test's own (the host's limit stays as it
      # is) that allows one user namespace below it, and that one, B, where
      # uid 65534 (not root: root would have to switch to nobody and could
      # not, 65534 being unmapped) without capabilities runs the port. The
      # port's own user namespace would be the second below A.
      dir = tmp_dir!()
      path = copy_port!(dir, 0o755, false)
      stderr = Path.join(dir, "stderr")

      prefix = [
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        "echo 1 > /proc/sys/user/max_user_namespaces && " <>
          "exec unshare --user --map-user=65534 --map-group=65534 " <>
          ~s(setpriv --inh-caps=-all --bounding-set=-all "$0" "$@" 2>>#{stderr})
      ]

      Process.flag(:trap_exit, true)

      assert Port.start_link(path: path, netns: :new, command_prefix: prefix) ==
               {:error, {:port_exit, 1}}

      assert File.read!(stderr) ==
               "error: cannot create a network namespace: No space left on device\n"
    end

    test "uid 0 of a user namespace without CAP_SETUID: refuses to run as root and says why" do
      # uid 0 of a user namespace that maps it to the host's root: its
      # owner permissions are root's on every file. The port must become
      # nobody, cannot, and does not start.
      dir = tmp_dir!()
      path = copy_port!(dir, 0o755, false)
      stderr = Path.join(dir, "stderr")

      prefix = [
        "unshare",
        "--user",
        "--map-root-user",
        "sh",
        "-c",
        ~s(exec setpriv --inh-caps=-all --bounding-set=-all "$0" "$@" 2>>#{stderr})
      ]

      Process.flag(:trap_exit, true)

      assert Port.start_link(path: path, netns: :new, command_prefix: prefix) ==
               {:error, {:port_exit, 1}}

      assert File.read!(stderr) ==
               "error: cannot switch to uid 65534 gid 65534: Operation not permitted\n"
    end
  end

  describe "file capabilities and the binary's mode" do
    for mode <- [0o751, 0o754, 0o755] do
      @mode mode
      test "mode #{Integer.to_string(mode, 8)} with cap_net_admin+ep: refuses to start and names the fix" do
        path = copy_port!(tmp_dir!(), @mode, true)
        assert cmd!("getcap", [path]) == "#{path} cap_net_admin=ep\n"

        stderr = Path.join(Path.dirname(path), "stderr")
        Process.flag(:trap_exit, true)

        assert Port.start_link(path: path, netns: :new, command_prefix: stderr_to(stderr)) ==
                 {:error, {:port_exit, 1}}

        {out, status} = System.cmd("sh", ["-c", ~s(exec "$0" </dev/null 2>&1), path])
        assert status == 1
        assert File.read!(stderr) == out
        mode = Integer.to_string(@mode, 8)

        assert [
                 "error: " <> first,
                 "error: refusing to start; restrict it to its owner and group: chmod 750 " <>
                   _named,
                 ""
               ] = String.split(out, "\n")

        assert first =~
                 ~r/^\S+ carries file capabilities and any user may access it \(mode #{mode}\)\.$/
      end
    end

    # The message names the binary's own path, never /proc/self/exe (the
    # path the port checks): `chmod 750 /proc/self/exe` run in a shell would
    # change the mode of chmod itself.
    test "the refusal names the binary's own path" do
      path = copy_port!(tmp_dir!(), 0o755, true)
      {out, 1} = System.cmd("sh", ["-c", ~s(exec "$0" </dev/null 2>&1), path])

      assert out ==
               "error: #{path} carries file capabilities and any user may access it (mode 755).\n" <>
                 "error: refusing to start; restrict it to its owner and group: chmod 750 #{path}\n"
    end

    test "without file capabilities mode 0755 starts (as root: CAP_NET_ADMIN alone); with them mode 0750 starts" do
      plain = copy_port!(tmp_dir!(), 0o755, false)
      pid = start_port!(path: plain)
      assert %{effective: [:cap_net_admin], bounding: [:cap_net_admin]} = self_check!(pid)

      capped = copy_port!(tmp_dir!(), 0o750, true)
      pid = start_port!(path: capped)
      assert %{effective: [:cap_net_admin], bounding: [:cap_net_admin]} = self_check!(pid)
      assert Control.ping(pid) == {:ok, :pong}
    end
  end

  # strace's lines about the port's own process (strace forks and runs it;
  # with -f each line starts with the pid it is about).
  defp capsets(file, port_pid) do
    file
    |> File.read!()
    |> String.split("\n", trim: true)
    |> Enum.filter(&String.starts_with?(&1, "#{port_pid} "))
  end

  defp traced_port!(file) do
    pid =
      start_port!(
        path: built_port!(),
        command_prefix: ["strace", "-f", "-e", "trace=capset", "-o", file]
      )

    strace_pid = Port.os_pid(pid)
    port_pid = self_check!(pid).pid
    assert port_pid != strace_pid
    {pid, strace_pid, port_pid}
  end

  defp assert_dropped_last!(file, port_pid) do
    lines = capsets(file, port_pid)
    calls = Enum.filter(lines, &(&1 =~ "capset("))

    # strace: 1234  capset({version=_LINUX_CAPABILITY_VERSION_3, pid=0},
    #                      {effective=1<<CAP_NET_ADMIN, permitted=1<<CAP_NET_ADMIN, inheritable=0}) = 0
    keep = "{effective=1<<CAP_NET_ADMIN, permitted=1<<CAP_NET_ADMIN, inheritable=0}) = 0"
    drop = "{effective=0, permitted=0, inheritable=0}) = 0"

    assert Enum.any?(calls, &String.ends_with?(&1, keep)),
           "no capset keeping CAP_NET_ADMIN alone:\n#{Enum.join(lines, "\n")}"

    assert String.ends_with?(List.last(calls), drop),
           "the last capset does not drop everything:\n#{Enum.join(lines, "\n")}"

    assert List.last(lines) =~ ~r/^#{port_pid}\s+\+\+\+ exited with 0 \+\+\+$/
  end

  describe "at shutdown" do
    test "closing stdin (GenServer.stop): the last capset drops CAP_NET_ADMIN, then exit 0" do
      file = Path.join(tmp_dir!(), "strace")
      {pid, strace_pid, port_pid} = traced_port!(file)

      assert Control.ping(pid) == {:ok, :pong}
      assert GenServer.stop(pid) == :ok
      wait_until(fn -> os_process_gone?(port_pid) and os_process_gone?(strace_pid) end)
      assert_dropped_last!(file, port_pid)
    end

    test "SIGTERM: the same" do
      file = Path.join(tmp_dir!(), "strace")
      {pid, strace_pid, port_pid} = traced_port!(file)
      ref = Process.monitor(pid)

      System.cmd("kill", ["-TERM", "#{port_pid}"])
      assert_receive {:DOWN, ^ref, :process, ^pid, {:port_exit, 0}}, 10_000
      wait_until(fn -> os_process_gone?(port_pid) and os_process_gone?(strace_pid) end)
      assert_dropped_last!(file, port_pid)
    end
  end

  describe "input limits" do
    test "--max-frame: bad frames get errors and the port goes on; a larger frame is refused with an error naming the limit, then exit 3" do
      port = raw_open(built_port!(), ["--netns", "new", "--max-frame", "64"])

      # Not ETF, not a request, a bad request id, an unknown op: each an
      # error reply, never an exit.
      Elixir.Port.command(port, <<131, 1, 2, 3>>)
      assert {nil, {:error, %{message: msg}}} = raw_recv(port)
      assert is_binary(msg)
      Elixir.Port.command(port, :erlang.term_to_binary(:hello))
      assert {nil, {:error, _}} = raw_recv(port)
      Elixir.Port.command(port, :erlang.term_to_binary({-1, :ping, []}))
      assert {nil, {:error, _}} = raw_recv(port)
      raw_send(port, 7, :no_such_op, [])
      assert {7, {:error, %{message: msg}}} = raw_recv(port)
      assert is_binary(msg)
      raw_send(port, 8, :table_set, [123_456, :name, "x"])
      assert {8, {:error, _}} = raw_recv(port)

      raw_send(port, 9, :ping, [])
      assert raw_recv(port) == {9, {:ok, :pong}}

      # A length over the limit: the stream's framing is broken.
      Elixir.Port.command(port, :binary.copy(<<0>>, 100))

      assert raw_recv(port) ==
               {nil,
                {:error,
                 %{
                   reason: :badarg,
                   index: nil,
                   message:
                     "frame of 100 bytes is larger than the limit of 64 bytes (--max-frame)"
                 }}}

      assert_receive {^port, {:exit_status, 3}}, 10_000
    end

    test "at most 65536 live handles; one more is an error until one is freed" do
      port = raw_open(built_port!(), ["--netns", "new"])

      # Pipelined: all requests written at once, then all replies read.
      for id <- 1..65_536, do: raw_send(port, id, :table_alloc, [])

      handles =
        for id <- 1..65_536 do
          assert {^id, {:ok, handle}} = raw_recv(port)
          handle
        end

      assert length(Enum.uniq(handles)) == 65_536

      raw_send(port, 0, :table_alloc, [])
      assert {0, {:error, %{message: msg}}} = raw_recv(port)
      assert msg =~ "too many live handles (the limit is 65536)"

      raw_send(port, 0, :table_free, [hd(handles)])
      assert raw_recv(port) == {0, :ok}
      raw_send(port, 0, :table_alloc, [])
      assert {0, {:ok, _}} = raw_recv(port)
      # The freed handle stays dead.
      raw_send(port, 0, :table_get, [hd(handles), :name])
      assert {0, {:error, _}} = raw_recv(port)
      Elixir.Port.close(port)
    end
  end

  defp install!(args) do
    capture_io(fn -> assert Install.run(args) == :ok end)
  end

  defp mode(path), do: Bitwise.band(File.stat!(path).mode, 0o7777)

  # These run the task in a separate `elixir`, where the failure is real:
  # another user, a mount namespace of its own.
  defp elixir_task(args) do
    ebin = :code.which(Install) |> Path.dirname()

    [
      find("elixir"),
      "-pa",
      ebin,
      "-e",
      "Mix.start(); Mix.Tasks.NftablesPort.Install.run(#{inspect(args)})"
    ]
  end

  describe "mix nftables_port.install" do
    test "installs a copy: root, mode 0750, cap_net_admin=ep; replaces it atomically, keeping its group" do
      dir = tmp_dir!()
      target = Path.join(dir, "port_nftables")

      out = install!([target])
      assert out =~ "Installed #{target}\n"
      assert out =~ "owner:        root:root (group unchanged)"
      assert out =~ "capabilities: cap_net_admin=ep (getcap: #{target} cap_net_admin=ep)"
      assert %File.Stat{uid: 0, gid: 0} = File.stat!(target)
      assert mode(target) == 0o750
      assert cmd!("getcap", [target]) == "#{target} cap_net_admin=ep\n"
      assert File.read!(target) == File.read!(built_port!())
      assert File.ls!(dir) == ["port_nftables"]

      # A port runs from it while it is installed again (given as a
      # directory this time): the file is replaced, not rewritten, and
      # keeps the group it was given.
      File.chgrp!(target, 65_534)
      cmd!("setcap", ["cap_net_admin+ep", target])
      pid = start_port!(path: target)
      inode = File.stat!(target).inode

      out = install!([dir])
      assert out =~ "owner:        root:nogroup (group unchanged)"
      assert File.stat!(target).inode != inode
      assert %File.Stat{uid: 0, gid: 65_534} = File.stat!(target)
      assert mode(target) == 0o750
      assert cmd!("getcap", [target]) == "#{target} cap_net_admin=ep\n"
      assert File.ls!(dir) == ["port_nftables"]
      assert Control.ping(pid) == {:ok, :pong}
    end

    test "--group sets the group" do
      target = Path.join(tmp_dir!(), "port_nftables")
      out = install!([target, "--group", "nogroup"])
      assert out =~ "owner:        root:nogroup (--group)"
      assert %File.Stat{uid: 0, gid: 65_534} = File.stat!(target)
    end

    test "errors: a missing directory, an unknown group, a bad option" do
      dir = tmp_dir!()
      missing = Path.join([dir, "no", "such", "dir", "port_nftables"])

      assert_raise Mix.Error,
                   ~r/the directory #{Regex.escape(Path.dirname(missing))} does not exist/,
                   fn ->
                     Install.run([missing])
                   end

      assert_raise Mix.Error, ~r/--group no-such-group-here: no such group/, fn ->
        Install.run([Path.join(dir, "port_nftables"), "--group", "no-such-group-here"])
      end

      assert_raise Mix.Error, ~r/unknown or bad option --frobnicate/, fn ->
        Install.run(["--frobnicate"])
      end

      assert_raise Mix.Error, ~r/at most one path/, fn -> Install.run(["a", "b"]) end
      assert File.ls!(dir) == []
    end

    test "not root: says to run it as root with sudo" do
      dir = tmp_dir!()
      target = Path.join(dir, "port_nftables")

      argv =
        ["--reuid=65534", "--regid=65534", "--clear-groups", "env", "HOME=#{dir}"] ++
          elixir_task([target])

      {out, status} = System.cmd(find("setpriv"), argv, stderr_to_stdout: true)

      assert status == 1
      assert out =~ "run it as root: sudo mix nftables_port.install #{target}"
      refute File.exists?(target)
    end

    test "setcap missing: says to install libcap2-bin" do
      target = Path.join(tmp_dir!(), "port_nftables")
      # /sbin is /usr/sbin on Debian 12; an empty tmpfs hides both.
      script = ~s(mount -t tmpfs none /usr/sbin && exec "$@")

      {out, status} =
        System.cmd(find("unshare"), ["-m", "sh", "-c", script, "sh"] ++ elixir_task([target]),
          stderr_to_stdout: true
        )

      assert status == 1

      assert out =~
               "setcap not found: it comes with the package libcap2-bin; install it with: apt-get install libcap2-bin"

      refute File.exists?(target)
    end

    test "a filesystem without extended attributes: says so, suggests another path or no file capabilities" do
      # ramfs keeps no xattrs (tmpfs does), mounted in a mount namespace of
      # the test's own.
      dir = tmp_dir!()
      script = ~s(mount -t ramfs none "$0" && "$@"; s=$?; ls -A "$0"; exit $s)
      args = ["-m", "sh", "-c", script, dir] ++ elixir_task([dir, "--no-compile"])
      {out, status} = System.cmd(find("unshare"), args, stderr_to_stdout: true)

      assert status == 1

      assert out =~
               "setcap cap_net_admin+ep failed: the filesystem of #{dir} does not support extended attributes (xattrs)"

      assert out =~ "Operation not supported"
      assert out =~ "Install to a path on another filesystem"
      assert out =~ "or run the port without file capabilities"
      # Nothing left behind: `ls -A` of the ramfs printed no file.
      refute out =~ ~r/^\.?port_nftables/m
    end
  end

  describe "the commands in the docs" do
    # Runs every shell command of docs/capabilities.md (and of README's
    # Capabilities and Troubleshooting) in the order the docs give them,
    # with /usr/local/sbin/port_nftables -> a temporary file, myapp ->
    # nobody / nogroup, <pid> -> a port started as nobody from the
    # installed file. NFTables.SecurityDocsTest checks that these are all
    # the commands the docs have.
    @tag timeout: 120_000
    test "each runs and says what the docs say" do
      dir = tmp_dir!()

      ctx = %{
        dir: dir,
        target: Path.join(dir, "port_nftables"),
        plain: copy_port!(tmp_dir!(), 0o755, false),
        ns: netns!(),
        unit: Path.join(dir, "nfp-app.service"),
        port: nil
      }

      ran =
        Enum.reduce(all_doc_commands(), {ctx, []}, fn command, {ctx, ran} ->
          kind = Map.fetch!(doc_commands(), command)
          {run_doc_command(kind, command, ctx), [kind | ran]}
        end)
        |> elem(1)

      assert :grep_cap in ran and :capsh_ambient in ran and :mix_install in ran
    end
  end

  defp substitute(command, ctx) do
    command =
      command
      |> String.replace("/usr/local/sbin/port_nftables", ctx.target)
      |> String.replace("root:myapp", "root:nogroup")
      |> String.replace("-g myapp", "-g nogroup")
      |> String.replace("--group myapp", "--group nogroup")
      |> String.replace("/etc/systemd/system/myapp.service", ctx.unit)

    refute command =~ "myapp.service" or command =~ ~r/\bmyapp\b/
    command
  end

  defp sh(command, opts \\ []) do
    System.cmd("sh", ["-c", command], [cd: root(), stderr_to_stdout: true] ++ opts)
  end

  # A port run as nobody from the installed file, for the <pid> commands.
  defp with_port(%{port: nil} = ctx) do
    stderr = Path.join(ctx.dir, "stderr")

    pid =
      start_port_exactly!(path: ctx.target, command_prefix: unprivileged_prefix(ctx.ns, stderr))

    %{ctx | port: {pid, Port.os_pid(pid)}}
  end

  defp with_port(ctx), do: ctx

  defp run_doc_command({:not_run, _reason}, _command, ctx), do: ctx

  defp run_doc_command(kind, command, ctx)
       when kind in [:grep_cap, :grep_no_new_privs, :grep_seccomp, :grep_uid, :getpcaps] do
    ctx = with_port(ctx)
    {_pid, os_pid} = ctx.port
    command = ctx |> then(&substitute(command, &1)) |> String.replace("<pid>", "#{os_pid}")
    {out, 0} = sh(command)

    expected =
      case kind do
        :grep_cap ->
          "CapInh:\t#{@zero}\nCapPrm:\t#{@net_admin}\nCapEff:\t#{@net_admin}\n" <>
            "CapBnd:\t#{own_bounding()}\nCapAmb:\t#{@zero}\n"

        :grep_no_new_privs ->
          "NoNewPrivs:\t1\n"

        :grep_seccomp ->
          "Seccomp:\t2\nSeccomp_filters:\t1\n"

        :grep_uid ->
          "Uid:\t65534\t65534\t65534\t65534\n"

        :getpcaps ->
          "#{os_pid}: cap_net_admin=ep\n"
      end

    assert out == expected, "#{command}:\n#{out}"
    ctx
  end

  defp run_doc_command(:mix_install, command, ctx) do
    # The build is the test run's own; NFTABLES_PORT_SKIP_BUILD keeps this
    # mix from running meson beside it.
    env = [{"MIX_ENV", "test"}, {"NFTABLES_PORT_SKIP_BUILD", "1"}]
    command = substitute(command, ctx)
    {out, status} = sh(command, env: env)
    assert status == 0, "#{command}:\n#{out}"
    assert out =~ "Installed #{ctx.target}\n"
    assert %File.Stat{uid: 0, gid: 65_534} = File.stat!(ctx.target)
    assert Bitwise.band(File.stat!(ctx.target).mode, 0o7777) == 0o750
    assert cmd!("getcap", [ctx.target]) == "#{ctx.target} cap_net_admin=ep\n"
    ctx
  end

  defp run_doc_command(:install, command, ctx) do
    command = substitute(command, ctx)
    assert {"", 0} = sh(command)
    assert %File.Stat{uid: 0, gid: 65_534} = File.stat!(ctx.target)
    assert Bitwise.band(File.stat!(ctx.target).mode, 0o7777) == 0o750
    # A new file: no file capabilities until setcap.
    assert cmd!("getcap", [ctx.target]) == ""
    ctx
  end

  defp run_doc_command(:setcap, command, ctx) do
    assert {"", 0} = sh(substitute(command, ctx))
    ctx
  end

  defp run_doc_command(:getcap, command, ctx) do
    assert sh(substitute(command, ctx)) == {"#{ctx.target} cap_net_admin=ep\n", 0}
    ctx
  end

  defp run_doc_command(:ls, command, ctx) do
    {out, 0} = sh(substitute(command, ctx))
    assert out =~ ~r/^-rwxr-x--- 1 root nogroup \d+ .* #{Regex.escape(ctx.target)}\n$/
    ctx
  end

  defp run_doc_command(:chmod, command, ctx) do
    # The trouble first: the installed file readable and runnable by all.
    # (chmod(1), not File.chmod!/2: Erlang also calls chown(path, -1, -1),
    # and any chown clears file capabilities.)
    cmd!("chmod", ["755", ctx.target])
    assert cmd!("getcap", [ctx.target]) == "#{ctx.target} cap_net_admin=ep\n"
    Process.flag(:trap_exit, true)

    assert Port.start_link(
             path: ctx.target,
             netns: :new,
             command_prefix: stderr_to(Path.join(ctx.dir, "refused"))
           ) ==
             {:error, {:port_exit, 1}}

    assert {"", 0} = sh(substitute(command, ctx))
    assert Bitwise.band(File.stat!(ctx.target).mode, 0o7777) == 0o750
    # chmod keeps the file capabilities, and the port starts again.
    assert cmd!("getcap", [ctx.target]) == "#{ctx.target} cap_net_admin=ep\n"
    assert Control.ping(start_port!(path: ctx.target)) == {:ok, :pong}
    ctx
  end

  defp run_doc_command(:capsh_decode, command, ctx) do
    assert sh(command) == {"0x#{@net_admin}=cap_net_admin\n", 0}
    ctx
  end

  defp run_doc_command(:max_user_namespaces, command, ctx) do
    {out, 0} = sh(command)
    assert out =~ ~r/^\d+\n$/
    # The tests create user namespaces, so here it is not 0.
    assert String.to_integer(String.trim(out)) > 0
    ctx
  end

  defp run_doc_command(:capsh_ambient, command, ctx) do
    # The recipe's own arguments, with myapp -> nobody; bash then runs the
    # port (a copy with no file capabilities) instead of the release.
    [capsh | args] = OptionParser.split(command)
    assert capsh == "capsh"
    assert List.last(args) == "exec /opt/myapp/bin/myapp start"

    args =
      Enum.map(args, fn
        "--user=myapp" -> "--user=nobody"
        arg -> arg
      end)

    recipe = Enum.drop(args, -1)

    # What a program started that way gets: CAP_NET_ADMIN, ambient too.
    {out, 0} =
      System.cmd(find("capsh"), recipe ++ ["grep -E 'Uid|Cap' /proc/self/status"],
        stderr_to_stdout: true
      )

    assert out ==
             "Uid:\t65534\t65534\t65534\t65534\nCapInh:\t#{@net_admin}\nCapPrm:\t#{@net_admin}\n" <>
               "CapEff:\t#{@net_admin}\nCapBnd:\t#{own_bounding()}\nCapAmb:\t#{@net_admin}\n"

    # The port started that way: CAP_NET_ADMIN, its ambient and inheritable
    # sets cleared, and it works.
    stderr = Path.join(ctx.dir, "capsh-stderr")

    prefix =
      ["ip", "netns", "exec", ctx.ns | stderr_to(stderr)] ++
        ["capsh" | recipe] ++ [~s(exec "$0" "$@")]

    pid = start_port_exactly!(path: ctx.plain, command_prefix: prefix)
    os_pid = Port.os_pid(pid)
    status = proc_status!(os_pid)
    assert status["Uid"] == "65534\t65534\t65534\t65534"
    assert {status["CapEff"], status["CapPrm"]} == {@net_admin, @net_admin}
    assert {status["CapInh"], status["CapAmb"]} == {@zero, @zero}

    check = self_check!(pid)

    assert %{effective: [:cap_net_admin], ambient: [], inheritable: [], no_new_privs: true} =
             check

    assert_self_check_matches_proc!(check, os_pid)
    assert_kernel_ops_work!(pid, ctx.ns, "ambient")
    assert File.read!(stderr) == ""
    ctx
  end

  defp run_doc_command(kind, command, ctx) when kind in [:systemd_verify, :systemd_security] do
    if find("systemd-analyze") do
      write_unit!(ctx)
      {out, status} = sh(substitute(command, ctx))
      assert status == 0, "#{command}:\n#{out}"

      case kind do
        :systemd_verify ->
          assert out == ""

        :systemd_security ->
          for setting <-
                ~w(User=/DynamicUser= NoNewPrivileges= ProtectSystem= ProtectHome= PrivateTmp=
                            CapabilityBoundingSet=~CAP_SYS_ADMIN RestrictAddressFamilies=~AF_PACKET) do
            assert out =~ ~r/^✓ #{Regex.escape(setting)}\s/m, "#{setting} not ✓ in:\n#{out}"
          end

          assert out =~ ~r/^✓ RestrictAddressFamilies=~AF_\(INET\|INET6\)\s/m
          # What the unit grants on purpose:
          assert out =~ ~r/^✗ AmbientCapabilities=\s/m
          assert out =~ ~r/^✗ CapabilityBoundingSet=~CAP_NET_ADMIN\s/m
      end
    else
      IO.puts("Not run: #{command} (systemd-analyze is not installed)")
    end

    ctx
  end

  # The unit from docs/capabilities.md, with ExecStart pointing at a file
  # that exists (systemd-analyze verify checks it).
  defp write_unit!(ctx) do
    [unit] = code_blocks("docs/capabilities.md", "ini")
    assert unit =~ "ExecStart=/opt/myapp/bin/myapp start\n"
    File.write!(ctx.unit, String.replace(unit, "/opt/myapp/bin/myapp", ctx.plain))
  end
end

defmodule NFTables.SecurityDocsTest do
  # The docs against the code and against the tests: every shell command in
  # them is one NFTables.SecurityTest runs, and the facts they state (the
  # warnings, the order of dropping privileges, the limits, the systemd
  # unit) are the port's. Needs nothing but the source tree.
  use ExUnit.Case, async: true

  import NFTables.SecurityHelpers

  defp read!(path), do: File.read!(Path.join(root(), path))

  test "every shell command in the docs is one the security tests run" do
    known = doc_commands()
    commands = all_doc_commands()

    unknown = Enum.reject(commands, &Map.has_key?(known, &1))

    assert unknown == [],
           "commands in the docs that no test runs: #{inspect(unknown, pretty: true)}"

    stale = Map.keys(known) -- commands
    assert stale == [], "commands the tests know that the docs no longer have: #{inspect(stale)}"

    # What is not run says so, where it stands.
    for {command, {:not_run, _reason}} <- known do
      doc = read!("docs/capabilities.md")
      [before | _] = String.split(doc, command, parts: 2)
      assert before |> String.slice(-600..-1) =~ "not run here"
    end
  end

  test "the warnings in the docs are the port's, word for word" do
    caps_c = read!("src/caps.c")

    for line <- [
          "warning: Failed to apply capabilities to process (continuing without CAP_NET_ADMIN)",
          "warning: Note: Netlink operations requiring CAP_NET_ADMIN will fail"
        ] do
      assert caps_c =~ line

      for doc <- ["docs/capabilities.md", "docs/security.md", "README.md"],
          do: assert(read!(doc) =~ line)
    end
  end

  test "docs/security.md gives the order of src/caps.c" do
    # One word that names each step, in src/caps.c's numbered list and in
    # docs/security.md's.
    words = [
      "refuse",
      "namespace",
      "nobody",
      "ambient",
      "bounding",
      "effective",
      "NO_NEW_PRIVS",
      "DUMPABLE",
      "/proc/sys/net",
      "seccomp"
    ]

    [_, caps_list] =
      Regex.run(
        ~r/At start, in this order \(main.c calls each\):\n(.*?)\n \* At shutdown/s,
        read!("src/caps.c")
      )

    caps_steps =
      Regex.scan(~r/^ \*\s+(\d+)\. (.*?)(?=^ \*\s+\d+\.|\z)/ms, caps_list, capture: :all_but_first)

    [_, doc_list] =
      Regex.run(
        ~r/## The order of dropping privileges\n(.*?)\n\*\*At shutdown\*\*/s,
        read!("docs/security.md")
      )

    doc_steps = Regex.scan(~r/^(\d+)\. (.*?)(?=^\d+\.|\z)/ms, doc_list, capture: :all_but_first)

    assert length(caps_steps) == length(words)
    assert length(doc_steps) == length(words)

    for {{[n, caps_text], [m, doc_text]}, {word, i}} <-
          Enum.zip(Enum.zip(caps_steps, doc_steps), Enum.with_index(words, 1)) do
      assert {n, m} == {"#{i}", "#{i}"}
      assert caps_text =~ ~r/#{word}/i, "src/caps.c step #{i} is not about #{word}: #{caps_text}"

      assert doc_text =~ ~r/#{word}/i,
             "docs/security.md step #{i} is not about #{word}: #{doc_text}"
    end
  end

  test "the limits in docs/security.md are the port's" do
    [_, frame] =
      Regex.run(
        ~r/#define NFP_FRAME_MAX_DEFAULT \((\d+)u \* 1024 \* 1024\)/,
        read!("src/frame.h")
      )

    [_, handles] = Regex.run(~r/#define NFP_MAX_HANDLES (\d+)/, read!("src/handles.h"))
    doc = read!("docs/security.md")

    assert doc =~ "at most #{frame} MiB (#{String.to_integer(frame) * 1024 * 1024} bytes)"
    assert doc =~ "At most #{handles} handles"
    assert doc =~ "(the limit is #{handles})"

    [_, mib] =
      Regex.run(~r/#define NFP_MAX_HANDLE_BYTES \((\d+)ull << 20\)/, read!("src/handles.h"))

    assert doc =~ "#{mib} MiB (#{String.to_integer(mib) * 1024 * 1024} bytes)"
    [_, socks] = Regex.run(~r/#define NFP_MAX_SOCKETS (\d+)/, read!("src/handles.h"))
    assert doc =~ "at most #{socks} sockets"

    assert read!("docs/protocol.md") =~
             "default #{String.to_integer(frame) * 1024 * 1024}, #{frame} MiB"
  end

  test "the systemd unit in docs/capabilities.md has the hardening the docs promise" do
    assert [unit] = code_blocks("docs/capabilities.md", "ini")

    for line <- [
          "NoNewPrivileges=yes",
          "AmbientCapabilities=CAP_NET_ADMIN",
          "CapabilityBoundingSet=CAP_NET_ADMIN",
          "ProtectSystem=strict",
          "ProtectHome=yes",
          "PrivateTmp=yes",
          "RestrictAddressFamilies=AF_NETLINK AF_UNIX"
        ] do
      assert unit =~ ~r/^#{Regex.escape(line)}$/m
    end
  end
end
