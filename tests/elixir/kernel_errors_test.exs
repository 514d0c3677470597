defmodule NFTables.KernelErrorsTest do
  # Errors that come from the kernel (not from the port's own checks), each
  # in the middle of a multi-message transaction, through commit/3 and the
  # handle API's Batch.send/4:
  #
  #   EEXIST  create of an existing table
  #   ENOENT  delete of a missing table, set, rule or object
  #   EBUSY   delete of a chain that another chain jumps to
  #   EINVAL  a payload expression without :len
  #   EPERM   no CAP_NET_ADMIN (the kernel refuses the whole batch)
  #
  # Each comes back as {:error, %{errno: atom, index: i, object: map,
  # attr: atom | nil, message: binary}} (error_detail_test.exs checks the
  # detail);
  # afterwards `nft list ruleset` shows exactly the ruleset from before,
  # although the messages before the failing one were valid.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.{Batch, Control}
  alias NFTables.Port.Kernel.Netlink

  @moduletag :kernel

  @t %{family: :inet, table: "keep"}

  # Something to keep: two tables, chains (one jumping to another), a set
  # with elements, a counter and rules.
  defp ruleset do
    t = @t

    [
      {:add, :table, %{family: :inet, name: "keep"}},
      {:add, :table, %{family: :ip, name: "other"}},
      {:add, :chain,
       Map.merge(t, %{name: "input", type: "filter", hooknum: :input, prio: 0, policy: :accept})},
      {:add, :chain, Map.put(t, :name, "target")},
      {:add, :chain, %{family: :ip, table: "other", name: "lonely"}},
      {:add, :set, Map.merge(t, %{name: "ports", key_type: 13, key_len: 2, id: 1})},
      {:add, :element,
       Map.merge(t, %{set: "ports", elements: [%{key: <<0, 22>>}, %{key: <<0, 80>>}]})},
      {:add, :counter, Map.merge(t, %{name: "hits", packets: 3, bytes: 300})},
      {:add, :rule,
       Map.merge(t, %{
         chain: "input",
         exprs: [
           {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
           {:cmp, %{sreg: 1, op: :eq, data: <<0, 22>>}},
           {:immediate, %{dreg: 0, verdict: :jump, chain: "target"}}
         ]
       })},
      {:add, :rule, Map.merge(t, %{chain: "target", exprs: [{:counter, %{}}]})}
    ]
  end

  # Valid messages to put before and after the failing one: had the batch
  # not been atomic, they would have landed.
  defp before_msgs do
    [
      {:add, :table, %{family: :inet, name: "fresh"}},
      {:add, :chain, %{family: :inet, table: "fresh", name: "c"}},
      {:add, :chain, Map.put(@t, :name, "added")},
      {:delete, :rule, Map.merge(@t, %{chain: "target", handle: rule_handle(:target)})},
      {:delete, :element, Map.merge(@t, %{set: "ports", elements: [%{key: <<0, 80>>}]})}
    ]
  end

  defp after_msgs do
    [
      {:add, :chain, %{family: :ip, table: "other", name: "later"}},
      {:delete, :table, %{family: :ip, name: "other"}}
    ]
  end

  defp rule_handle(:target), do: Process.get(:target_rule_handle)

  # The kernel error's shape; its message starts with the errno's text.
  defp assert_kernel_error(reply, index, errno, message) do
    assert {:error, %{index: ^index, errno: ^errno, message: got, object: object, attr: attr}} =
             reply

    assert String.starts_with?(got, message), "#{inspect(got)} starts with #{inspect(message)}"
    assert is_nil(object) or is_atom(object.type)
    assert is_atom(attr)
  end

  defp port_with_ruleset(opts \\ []) do
    pid = start_port!(opts)
    assert Port.commit(pid, ruleset()) == :ok

    {:ok, [%{handle: handle}]} = Port.list(pid, :rule, Map.put(@t, :chain, "target"))
    Process.put(:target_rule_handle, handle)

    before = snapshot(pid)
    assert before.nft =~ "jump target"
    assert before.nft =~ "counter hits"
    {pid, before}
  end

  defp snapshot(pid) do
    {:ok, %{msgs: msgs}} = Port.dump(pid)
    %{nft: nft!(pid, "list ruleset"), msgs: msgs}
  end

  defp assert_unchanged(pid, before) do
    after_ = snapshot(pid)
    # Byte for byte, with handles (`-a`) too: nothing was added and removed.
    assert after_.nft == before.nft
    assert after_.msgs == before.msgs
    assert Control.ping(pid) == {:ok, :pong}
  end

  @failing [
    {"EEXIST: create of an existing table", :eexist, "File exists (EEXIST)",
     quote(do: {:create, :table, %{family: :inet, name: "keep"}})},
    {"ENOENT: delete of a missing table", :enoent, "No such file or directory (ENOENT)",
     quote(do: {:delete, :table, %{family: :ip6, name: "missing"}})},
    {"ENOENT: delete of a missing set", :enoent, "No such file or directory (ENOENT)",
     quote(do: {:delete, :set, Map.put(@t, :name, "missing")})},
    {"ENOENT: delete of a rule by a handle that does not exist", :enoent,
     "No such file or directory (ENOENT)",
     quote(do: {:delete, :rule, Map.merge(@t, %{chain: "input", handle: 999_999})})},
    {"ENOENT: delete of a missing counter", :enoent, "No such file or directory (ENOENT)",
     quote(do: {:delete, :counter, Map.put(@t, :name, "misses")})},
    {"EBUSY: delete of a chain another chain jumps to", :ebusy, "Device or resource busy (EBUSY)",
     quote(do: {:delete, :chain, Map.put(@t, :name, "target")})},
    {"EINVAL: a payload expression without :len", :einval, "Invalid argument (EINVAL)",
     quote(
       do:
         {:add, :rule,
          Map.merge(@t, %{
            chain: "input",
            exprs: [
              {:payload, %{base: :network, offset: 12, dreg: 1}},
              {:cmp, %{sreg: 1, op: :eq, data: <<10, 0, 0, 1>>}}
            ]
          })}
     )}
  ]

  describe "commit/3" do
    for {name, errno, message, failing} <- @failing do
      @errno errno
      @message message
      test "#{name}: its index, errno and message; nothing of the batch lands" do
        {pid, before} = port_with_ruleset()
        index = length(before_msgs())
        msgs = before_msgs() ++ [unquote(failing)] ++ after_msgs()

        assert_kernel_error(Port.commit(pid, msgs), index, @errno, @message)
        assert_unchanged(pid, before)

        # The same with echo: true.
        assert_kernel_error(Port.commit(pid, msgs, echo: true), index, @errno, @message)

        assert_unchanged(pid, before)

        # As the first and as the last message.
        assert {:error, %{index: 0, errno: @errno}} = Port.commit(pid, [unquote(failing)])

        assert {:error, %{index: ^index, errno: @errno}} =
                 Port.commit(pid, before_msgs() ++ [unquote(failing)])

        assert_unchanged(pid, before)

        # Without the failing message, the rest is fine.
        assert Port.commit(pid, before_msgs() ++ after_msgs()) == :ok
        assert nft!(pid, "list ruleset") =~ "table inet fresh"
      end
    end

    test "the failing message's index counts messages, not netlink messages" do
      # An element message of 5000 elements travels as several netlink
      # messages; the index is still the client's message index.
      {pid, before} = port_with_ruleset()
      elements = for p <- 1000..5999, do: %{key: <<p::16>>}

      msgs = [
        {:add, :element, Map.merge(@t, %{set: "ports", elements: elements})},
        {:add, :element, Map.merge(@t, %{set: "ports", elements: elements})},
        {:delete, :chain, Map.put(@t, :name, "target")},
        {:add, :chain, Map.put(@t, :name, "x")}
      ]

      assert_kernel_error(Port.commit(pid, msgs), 2, :ebusy, "Device or resource busy (EBUSY)")

      assert_unchanged(pid, before)
    end

    test "two failing messages: the first one is reported" do
      {pid, before} = port_with_ruleset()

      msgs = [
        {:add, :chain, Map.put(@t, :name, "ok")},
        {:delete, :chain, Map.put(@t, :name, "target")},
        {:create, :table, %{family: :inet, name: "keep"}}
      ]

      assert {:error, %{index: 1, errno: :ebusy}} = Port.commit(pid, msgs)
      assert_unchanged(pid, before)
    end
  end

  describe "Batch.send/4 (the handle API)" do
    # Builds each message's object with alloc/set, adds it to a batch and
    # sends it over a socket of its own; returns what send returned.
    defp send_batch(pid, msgs) do
      {:ok, socket} = Netlink.socket_open(pid)
      {:ok, batch} = Batch.new(pid)

      objects =
        for {{verb, type, attrs}, i} <- Enum.with_index(msgs) do
          module = module_of(type)
          {:ok, h} = module.alloc(pid)
          for {attr, value} <- attrs, do: assert(module.set(pid, h, attr, value) == :ok)
          assert Batch.add(pid, batch, verb, type, h) == {:ok, i}
          {module, h}
        end

      result = Batch.send(pid, batch, socket)
      for {module, h} <- objects, do: assert(module.free(pid, h) == :ok)
      assert Netlink.socket_close(pid, socket) == :ok
      result
    end

    defp module_of(:table), do: NFTables.Port.Table
    defp module_of(:chain), do: NFTables.Port.Chain
    defp module_of(:rule), do: NFTables.Port.Rule
    defp module_of(:set), do: NFTables.Port.Set
    defp module_of(:counter), do: NFTables.Port.Obj.Counter

    @handle_failing Enum.reject(@failing, fn {name, _, _, _} -> name =~ "rule by a handle" end)

    for {name, errno, message, failing} <- @handle_failing do
      @errno errno
      @message message
      test "#{name}" do
        {pid, before} = port_with_ruleset()
        # Element messages are built from a set handle: leave that one out.
        pre = Enum.reject(before_msgs(), &match?({_, :element, _}, &1))
        msgs = pre ++ [unquote(failing)] ++ after_msgs()

        assert_kernel_error(send_batch(pid, msgs), length(pre), @errno, @message)

        assert_unchanged(pid, before)
      end
    end
  end

  describe "EPERM without CAP_NET_ADMIN" do
    # A named namespace (ip netns add) and a port as nobody: root only.
    @describetag :root
    # In its own new user namespace (netns: :new as nobody) the port would
    # hold CAP_NET_ADMIN over its new network namespace. So the test makes
    # a named network namespace as root, fills it through a privileged
    # port, and runs a second port in it as nobody, without --netns:
    #   ip netns exec NS setpriv --reuid=65534 --regid=65534 --clear-groups PORT
    # `ip netns exec` and setpriv exec, so the port's OS pid is the port's.

    setup do
      for cmd <- ["ip", "setpriv"] do
        assert System.find_executable(cmd), "#{cmd} is needed for this test"
      end

      {:ok, path} = Port.find_port_binary()
      assert_runnable_by_nobody!(path)

      ns = "nfp_kernel_errors_#{System.unique_integer([:positive])}"
      assert {_, 0} = System.cmd("ip", ["netns", "add", ns], stderr_to_stdout: true)
      on_exit(fn -> System.cmd("ip", ["netns", "delete", ns], stderr_to_stdout: true) end)

      root = start_port!(netns: ns)
      assert Port.commit(root, ruleset()) == :ok
      {:ok, [%{handle: handle}]} = Port.list(root, :rule, Map.put(@t, :chain, "target"))
      Process.put(:target_rule_handle, handle)

      # The port's stderr goes to a file (sh execs, so the OS pid stays the
      # port's). No :netns option: start_port!/1 would add netns: :new.
      stderr = Path.join(System.tmp_dir!(), "#{ns}.stderr")
      on_exit(fn -> File.rm(stderr) end)

      nobody =
        {Port,
         command_prefix: [
           "sh",
           "-c",
           ~S|exec "$@" 2>"$0"|,
           stderr,
           "ip",
           "netns",
           "exec",
           ns,
           "setpriv",
           "--reuid=65534",
           "--regid=65534",
           "--clear-groups"
         ]}
        |> Supervisor.child_spec(id: make_ref(), restart: :temporary)
        |> start_supervised!()

      %{ns: ns, root: root, nobody: nobody, stderr: stderr, before: snapshot(root)}
    end

    # The port, and every directory above it, must be executable by nobody.
    defp assert_runnable_by_nobody!(path) do
      path
      |> Path.expand()
      |> Path.split()
      |> Enum.scan(&Path.join(&2, &1))
      |> Enum.each(fn p ->
        %File.Stat{mode: mode} = File.stat!(p)

        assert Bitwise.band(mode, 0o001) != 0,
               "#{p} (mode #{Integer.to_string(mode, 8)}) is not executable by other users"
      end)
    end

    test "the unprivileged port runs as nobody in the namespace, without CAP_NET_ADMIN", ctx do
      os_pid = Port.os_pid(ctx.nobody)
      status = File.read!("/proc/#{os_pid}/status")
      assert status =~ ~r/^Uid:\s+65534\s+65534\s+65534\s+65534$/m
      assert status =~ ~r/^CapEff:\s+0+$/m
      assert status =~ ~r/^CapPrm:\s+0+$/m
      assert {"#{ctx.ns}\n", 0} == System.cmd("ip", ["netns", "identify", "#{os_pid}"])

      assert {:ok, %{effective: [], permitted: []}} = Control.self_check(ctx.nobody)

      # The warning the design asks for, and it keeps serving.
      stderr = File.read!(ctx.stderr)

      assert stderr =~
               "warning: Failed to apply capabilities to process (continuing without CAP_NET_ADMIN)\n" <>
                 "warning: Note: Netlink operations requiring CAP_NET_ADMIN will fail\n"

      assert Control.ping(ctx.nobody) == {:ok, :pong}
    end

    test "commit: EPERM for the whole transaction (index nil); nothing lands", ctx do
      msgs = before_msgs() ++ [{:add, :chain, Map.put(@t, :name, "more")}] ++ after_msgs()

      eperm = %{
        index: nil,
        errno: :eperm,
        object: nil,
        attr: nil,
        message: "Operation not permitted (EPERM)"
      }

      assert Port.commit(ctx.nobody, msgs) == {:error, eperm}
      assert Port.commit(ctx.nobody, msgs, echo: true) == {:error, eperm}

      assert_unchanged(ctx.root, ctx.before)
      # The same batch from the privileged port lands.
      assert Port.commit(ctx.root, msgs) == :ok
    end

    test "Batch.send: EPERM for the whole batch (index nil); nothing lands", ctx do
      msgs = [
        {:add, :table, %{family: :inet, name: "fresh"}},
        {:delete, :chain, Map.put(@t, :name, "target")}
      ]

      assert send_batch(ctx.nobody, msgs) ==
               {:error,
                %{
                  index: nil,
                  errno: :eperm,
                  object: nil,
                  attr: nil,
                  message: "Operation not permitted (EPERM)"
                }}

      assert_unchanged(ctx.root, ctx.before)
    end

    test "other kernel ops: the same EPERM map, index nil; the handle API still works", ctx do
      eperm = %{index: nil, errno: :eperm, attr: nil, message: "Operation not permitted (EPERM)"}
      assert Port.list(ctx.nobody, :table) == {:error, Map.put(eperm, :object, %{type: :table})}
      assert Port.genid(ctx.nobody) == {:error, Map.put(eperm, :object, nil)}
      assert Port.dump(ctx.nobody) == {:error, Map.put(eperm, :object, nil)}

      assert Port.get(ctx.nobody, :table, %{family: :inet, name: "keep"}) ==
               {:error, Map.put(eperm, :object, %{type: :table, family: :inet, name: "keep"})}

      {:ok, t} = NFTables.Port.Table.alloc(ctx.nobody)
      assert NFTables.Port.Table.set(ctx.nobody, t, :name, "x") == :ok
      assert NFTables.Port.Table.free(ctx.nobody, t) == :ok
      assert Control.ping(ctx.nobody) == {:ok, :pong}
      assert_unchanged(ctx.root, ctx.before)
    end
  end
end
