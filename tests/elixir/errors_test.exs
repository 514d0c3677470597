defmodule NFTables.ErrorsTest do
  # Kernel errors (a batch is all or nothing; the error names the failing
  # message) and bad input (a clear {:error, binary}; the port keeps
  # serving), through commit/3 and through the handle API.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.{Batch, Chain, Control, Expr, Rule, Set, SetElem, Table}
  alias NFTables.Port.Kernel.Netlink
  alias NFTables.Slice

  @moduletag :kernel

  @enoent %{errno: :enoent, message: "No such file or directory (ENOENT)"}

  # A kernel error's index, errno and the errno's text (the detail after it
  # is error_detail_test.exs's).
  defp short({:error, %{errno: errno, index: index, object: _, attr: _, message: message}}) do
    [text | _] = String.split(message, ")", parts: 2)
    {:error, %{index: index, errno: errno, message: text <> ")"}}
  end

  defp short(other), do: other

  # A port holding the slice's ruleset, and a snapshot of it.
  defp port_with_ruleset do
    pid = start_port!()
    assert Port.commit(pid, Slice.ruleset()) == :ok
    {pid, snapshot(pid)}
  end

  defp snapshot(pid), do: {nft!(pid, "list ruleset"), Slice.list_all!(pid)}

  defp assert_unchanged(pid, {nft_before, listed_before}) do
    {nft_after, listed_after} = snapshot(pid)
    assert Slice.normalize_nft(nft_after) == Slice.normalize_nft(nft_before)
    # Handles and use counts included: nothing was added and removed again.
    assert Map.update!(listed_after, :element, &strip_expiration/1) ==
             Map.update!(listed_before, :element, &strip_expiration/1)
  end

  defp strip_expiration(element_lists) do
    for set <- element_lists,
        do: Map.update!(set, :elements, fn els -> Enum.map(els, &Map.delete(&1, :expiration)) end)
  end

  defp handle_batch(pid, objects) do
    {:ok, socket} = Netlink.socket_open(pid)
    {:ok, batch} = Batch.new(pid)

    handles =
      objects
      |> Enum.with_index()
      |> Enum.map(fn {{verb, type, attrs}, i} ->
        {module, handle} = Slice.build_object!(pid, type, attrs)
        assert Batch.add(pid, batch, verb, type, handle) == {:ok, i}
        {module, handle}
      end)

    result = Batch.send(pid, batch, socket)
    for {module, handle} <- handles, do: module.free(pid, handle)
    Netlink.socket_close(pid, socket)
    result
  end

  describe "kernel errors" do
    @failing_third [
      {:add, :table, %{family: :inet, name: "new"}},
      {:add, :chain, %{family: :inet, table: "slice", name: "newchain"}},
      {:delete, :chain, %{family: :inet, table: "slice", name: "missing"}},
      {:add, :chain, %{family: :inet, table: "new", name: "after"}}
    ]

    test "commit: the third message fails; nothing of the batch lands" do
      {pid, before} = port_with_ruleset()

      assert short(Port.commit(pid, @failing_third)) == {:error, Map.put(@enoent, :index, 2)}
      assert_unchanged(pid, before)

      # Also with echo: true, and when the failing message deletes a rule.
      {:ok, [%{handle: handle} | _]} =
        Port.list(pid, :rule, %{family: :inet, table: "slice", chain: "jmp"})

      msgs = [
        {:delete, :rule, %{family: :inet, table: "slice", chain: "jmp", handle: handle}},
        {:flush, :chain, %{family: :inet, table: "slice", name: "gto"}},
        {:delete, :rule, %{family: :inet, table: "slice", chain: "jmp", handle: handle + 1000}}
      ]

      assert short(Port.commit(pid, msgs, echo: true)) == {:error, Map.put(@enoent, :index, 2)}
      assert_unchanged(pid, before)
    end

    test "commit: create of an existing object fails with :eexist at its index" do
      {pid, before} = port_with_ruleset()

      msgs = [
        {:add, :table, %{family: :ip, name: "fresh"}},
        {:delete, :set, %{family: :inet, table: "slice", name: "tmo"}},
        {:add, :chain, %{family: :inet, table: "slice", name: "jmp"}},
        {:create, :chain, %{family: :inet, table: "slice", name: "gto"}}
      ]

      assert short(Port.commit(pid, msgs)) ==
               {:error, %{index: 3, errno: :eexist, message: "File exists (EEXIST)"}}

      assert_unchanged(pid, before)
      assert {:ok, []} = Port.list(pid, :table, %{family: :ip})
    end

    test "Batch.send: the third message fails; nothing of the batch lands" do
      {pid, before} = port_with_ruleset()

      assert short(handle_batch(pid, @failing_third)) == {:error, Map.put(@enoent, :index, 2)}
      assert_unchanged(pid, before)

      # The same batch without its failing message lands entirely.
      good = List.delete_at(@failing_third, 2)
      assert handle_batch(pid, good) == :ok
      assert {:ok, tables} = Port.list(pid, :table)
      assert tables |> Enum.map(& &1.name) |> Enum.sort() == ["new", "slice"]

      assert {:ok, [%{name: "after"}]} = Port.list(pid, :chain, %{family: :inet, table: "new"})
    end

    test "an element list split over many netlink messages still counts as one message" do
      pid = start_port!()

      elements = for i <- 1..20_000, do: %{key: <<10, i::24>>}

      base = [
        {:add, :table, %{family: :ip, name: "t"}},
        {:add, :set, %{family: :ip, table: "t", name: "s", key_type: 7, key_len: 4}},
        {:add, :element, %{family: :ip, table: "t", set: "s", elements: elements}}
      ]

      assert short(
               Port.commit(
                 pid,
                 base ++ [{:delete, :chain, %{family: :ip, table: "t", name: "nope"}}]
               )
             ) ==
               {:error, Map.put(@enoent, :index, 3)}

      # A bad key at the very end of a long second element list.
      bad =
        {:add, :element,
         %{family: :ip, table: "t", set: "s", elements: elements ++ [%{key: <<1, 2, 3>>}]}}

      msgs = base ++ [bad, {:add, :table, %{family: :ip, name: "u"}}]

      # The library checks the key against the set's key_len first...
      assert {:error, %{reason: :badarg, index: 3, message: message}} = Port.commit(pid, msgs)

      assert message =~
               "element 20000: :key is 3 bytes, but set 's' in table ip 't' has key_len 4"

      # ...the kernel refuses it too, and the port names the element.
      assert {:error, %{index: 3, errno: :einval, attr: :elements, message: message}} =
               Port.call(pid, :commit, [msgs, %{}])

      assert message == "Invalid argument (EINVAL) (attribute elements[20000])"

      assert nft!(pid, "list ruleset") == ""

      assert {:ok, [_, _, nil]} = Port.commit(pid, base, echo: true)
      assert {:ok, [%{elements: listed}]} = Port.list(pid, :element)
      assert Enum.sort(listed) == Enum.sort(elements)
    end

    test "listing what does not exist; a kernel error of a non-batch op has index nil" do
      pid = start_port!()
      assert Port.list(pid, :chain, %{family: :inet, table: "nope"}) == {:ok, []}
      assert Port.list(pid, :rule, %{family: :inet, table: "nope", chain: "c"}) == {:ok, []}

      # The elements of a set are fetched from the set, which must exist.
      assert short(Port.list(pid, :element, %{family: :inet, table: "nope", set: "s"})) ==
               {:error, Map.put(@enoent, :index, nil)}

      assert Control.ping(pid) == {:ok, :pong}
    end
  end

  describe "bad input to commit" do
    @bad_commits [
      {"unknown verb", [{:frob, :table, %{family: :inet, name: "x"}}], [":frob", "verb"]},
      {"unknown type", [{:add, :tabel, %{family: :inet, name: "x"}}], [":tabel", "type"]},
      {"verb not valid for the type", [{:insert, :table, %{family: :inet, name: "x"}}],
       [":insert", "table"]},
      {"unknown attribute", [{:add, :table, %{family: :inet, nme: "x"}}], [":nme", "table"]},
      {"enum value not in the enum", [{:add, :table, %{family: :inetx, name: "x"}}],
       [":inetx", "family"]},
      {"flag not in the enum",
       [{:add, :table, %{family: :inet, name: "x", flags: [:dormant, :bogus]}}],
       [":bogus", "table_flags"]},
      {"wrong type: integer for a string", [{:add, :table, %{family: :inet, name: 5}}],
       [":name", "binary"]},
      {"wrong type: string for an enum", [{:add, :table, %{family: "inet", name: "x"}}],
       [":family"]},
      {"wrong type: float", [{:add, :chain, %{family: :inet, table: "x", name: "c", prio: 1.5}}],
       [":prio", "float"]},
      {"u32 out of range",
       [{:add, :set, %{family: :inet, table: "x", name: "s", key_len: 4_294_967_296}}],
       [":key_len", "4294967296", "range"]},
      {"u32 negative", [{:add, :set, %{family: :inet, table: "x", name: "s", key_len: -1}}],
       [":key_len", "-1"]},
      {"s32 out of range",
       [{:add, :chain, %{family: :inet, table: "x", name: "c", prio: 2_147_483_648}}],
       [":prio", "2147483648", "range"]},
      {"s32 below range",
       [{:add, :chain, %{family: :inet, table: "x", name: "c", prio: -2_147_483_649}}],
       [":prio", "-2147483649", "range"]},
      {"u64 out of range",
       [
         {:add, :set,
          %{family: :inet, table: "x", name: "s", timeout: 18_446_744_073_709_551_616}}
       ], [":timeout", "64"]},
      {"string too long", [{:add, :table, %{family: :inet, name: String.duplicate("a", 256)}}],
       [":name", "256", "255"]},
      {"string with NUL", [{:add, :table, %{family: :inet, name: "a\0b"}}], [":name", "NUL"]},
      {"unknown expression",
       [{:add, :rule, %{family: :inet, table: "x", chain: "c", exprs: [{:frob, %{}}]}}],
       [":frob", "expression"]},
      {"unknown expression attribute",
       [
         {:add, :rule,
          %{family: :inet, table: "x", chain: "c", exprs: [{:cmp, %{sreg: 1, opp: :eq}}]}}
       ], [":opp", "cmp"]},
      {"expression enum value",
       [
         {:add, :rule,
          %{family: :inet, table: "x", chain: "c", exprs: [{:cmp, %{sreg: 1, op: :equal}}]}}
       ], [":equal", "cmp_op"]},
      {"expression wrong type",
       [
         {:add, :rule,
          %{family: :inet, table: "x", chain: "c", exprs: [{:payload, %{offset: "2"}}]}}
       ], [":offset", "payload"]},
      {"expression not a tuple",
       [{:add, :rule, %{family: :inet, table: "x", chain: "c", exprs: [:counter]}}],
       ["expression"]},
      {"element attribute",
       [{:add, :element, %{family: :inet, table: "x", set: "s", elements: [%{kee: <<1>>}]}}],
       [":kee", "set_elem"]},
      {"element verdict",
       [
         {:add, :element,
          %{family: :inet, table: "x", set: "s", elements: [%{key: <<1>>, verdict: :maybe}]}}
       ], [":maybe", "verdict"]},
      {"second message bad",
       [
         {:add, :table, %{family: :inet, name: "x"}},
         {:add, :table, %{family: :inet, name: "y", bogus: 1}}
       ], ["message 1", ":bogus"]}
    ]

    for {name, msgs, fragments} <- @bad_commits do
      @msgs msgs
      @fragments fragments
      test "#{name}: {:error, binary} naming it; nothing lands; the port keeps serving" do
        {pid, before} = port_with_ruleset()
        assert {:error, %{message: message}} = Port.commit(pid, @msgs)
        assert is_binary(message), inspect(message)
        assert message =~ "commit"

        for fragment <- @fragments do
          assert message =~ fragment, "#{inspect(fragment)} not in #{inspect(message)}"
        end

        assert Control.ping(pid) == {:ok, :pong}
        assert_unchanged(pid, before)
      end
    end

    test "an unknown op" do
      pid = start_port!()
      assert {:error, %{message: message}} = Port.call(pid, :no_such_op, [1, :two, "three"])
      assert message =~ "no_such_op"
      assert Control.ping(pid) == {:ok, :pong}
    end

    test "an unknown commit option, list type, filter and family" do
      pid = start_port!()
      assert {:error, %{message: message}} = Port.call(pid, :commit, [[], %{bogus: 1}])
      assert message =~ ":bogus"
      assert {:error, %{message: message}} = Port.call(pid, :list, [:frob, %{}])
      assert message =~ ":frob"
      assert {:error, %{message: message}} = Port.call(pid, :list, [:table, %{family: :frob}])
      assert message =~ ":frob" and message =~ "family"
      assert {:error, %{message: message}} = Port.call(pid, :list, [:table, %{bogus: 1}])
      assert message =~ ":bogus"
      assert {:error, %{message: message}} = Port.call(pid, :table_set, [65_537, :name])
      assert message =~ "table_set" and message =~ "3" and message =~ "2"
      assert Control.ping(pid) == {:ok, :pong}
    end
  end

  describe "bad input to the handle API" do
    setup do
      pid = start_port!()
      {:ok, table} = Table.alloc(pid)
      :ok = Table.set(pid, table, :family, :inet)
      :ok = Table.set(pid, table, :name, "t")
      %{pid: pid, table: table}
    end

    test "Table.set with an unknown attribute, enum value, flag, type or length", %{
      pid: pid,
      table: t
    } do
      cases = [
        {:nme, "x", [":nme", "table"]},
        {:family, :bogus, [":bogus", "family"]},
        {:flags, [:nope], [":nope", "table_flags"]},
        {:flags, :dormant, [":flags", "list"]},
        {:name, 5, [":name", "binary"]},
        {:name, String.duplicate("n", 256), [":name", "255"]},
        {:userdata, :binary.copy(<<1>>, 257), [":userdata", "256"]}
      ]

      for {attr, value, fragments} <- cases do
        assert {:error, %{message: message}} = Table.set(pid, t, attr, value)
        assert is_binary(message)
        assert message =~ "table_set"
        for f <- fragments, do: assert(message =~ f, "#{inspect(f)} not in #{inspect(message)}")
        # The object is as it was.
        assert Table.to_map(pid, t) == {:ok, %{family: :inet, name: "t"}}
        assert Control.ping(pid) == {:ok, :pong}
      end
    end

    test "out-of-range integers", %{pid: pid} do
      {:ok, c} = Chain.alloc(pid)
      {:ok, s} = Set.alloc(pid)
      {:ok, e} = SetElem.alloc(pid)

      for {result, fragments} <- [
            {Chain.set(pid, c, :prio, 2_147_483_648), [":prio", "range"]},
            {Chain.set(pid, c, :prio, -2_147_483_649), [":prio", "range"]},
            {Set.set(pid, s, :key_len, -3), [":key_len", "-3"]},
            {Set.set(pid, s, :key_len, 4_294_967_296), [":key_len", "range"]},
            {SetElem.set(pid, e, :timeout, 18_446_744_073_709_551_616), [":timeout", "64"]},
            {SetElem.set(pid, e, :verdict, :maybe), [":maybe", "verdict"]}
          ] do
        assert {:error, %{message: message}} = result
        for f <- fragments, do: assert(message =~ f, "#{inspect(f)} not in #{inspect(message)}")
      end

      assert Chain.to_map(pid, c) == {:ok, %{}}
      assert Set.to_map(pid, s) == {:ok, %{}}
      assert SetElem.to_map(pid, e) == {:ok, %{}}
      assert Control.ping(pid) == {:ok, :pong}
    end

    test "expressions: unknown kind, attribute, enum value, type", %{pid: pid} do
      assert {:error, %{message: message}} = Expr.alloc(pid, :frob)
      assert message =~ ":frob"
      assert {:error, %{message: message}} = Expr.alloc(pid, "cmp")
      assert message =~ "atom"

      {:ok, e} = Expr.alloc(pid, :cmp)
      assert {:error, %{message: message}} = Expr.set(pid, e, :opp, :eq)
      assert message =~ ":opp" and message =~ "cmp"
      assert {:error, %{message: message}} = Expr.set(pid, e, :op, :equal)
      assert message =~ ":equal" and message =~ "cmp_op"
      assert {:error, %{message: message}} = Expr.set(pid, e, :data, 5)
      assert message =~ ":data" and message =~ "binary"
      assert {:error, %{message: message}} = Expr.set(pid, e, :sreg, -1)
      assert message =~ ":sreg"
      assert Expr.to_map(pid, e) == {:ok, {:cmp, %{}}}
      assert Control.ping(pid) == {:ok, :pong}
    end

    test "batches: unknown verb, type, mismatched handle", %{pid: pid, table: t} do
      {:ok, b} = Batch.new(pid)
      assert {:error, %{message: message}} = Batch.add(pid, b, :frob, :table, t)
      assert message =~ ":frob"
      assert {:error, %{message: message}} = Batch.add(pid, b, :add, :tabel, t)
      assert message =~ ":tabel"
      assert {:error, %{message: message}} = Batch.add(pid, b, :insert, :table, t)
      assert message =~ ":insert" and message =~ "table"
      assert {:error, %{message: message}} = Batch.add(pid, b, :add, :rule, t)
      assert message =~ "table" and message =~ "rule"
      assert {:error, %{message: message}} = Batch.send(pid, b, 99_999)
      assert message =~ "99999"
      assert Batch.free(pid, b) == :ok
      assert Control.ping(pid) == {:ok, :pong}
    end

    test "a small-integer handle gets the handle error, not a decoding error", %{pid: pid} do
      # [7] and [5, 6] travel as ETF STRING_EXT (a list of bytes); they are
      # proper argument lists all the same.
      assert {:error, %{message: message}} = Table.free(pid, 7)
      assert message =~ "7" and message =~ "not a live handle", message
      assert {:error, %{message: message}} = Rule.add_expr(pid, 5, 6)
      assert message =~ "not a live handle", message
      assert {:error, %{message: message}} = Netlink.socket_close(pid, 1)
      assert message =~ "not a live handle", message
      assert Control.ping(pid) == {:ok, :pong}
    end
  end
end
