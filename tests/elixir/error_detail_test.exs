defmodule NFTables.ErrorDetailTest do
  # Every error the issue names, answered with one shape and the detail
  # that says what is wrong: the object the message addressed, the
  # attribute the kernel blamed (its extended ACK, mapped back to the
  # schema), which object does not exist, nft's "did you mean", an overlap
  # for EEXIST on an interval set, a key length checked before sending.
  use NFTables.Port.Case, async: true

  alias NFTables.Port
  alias NFTables.Port.{Batch, Control, Errors, Table}
  alias NFTables.Port.Kernel.Netlink

  @moduletag :kernel

  @t %{family: :inet, table: "fw"}

  defp port_with_ruleset do
    pid = start_port!()

    assert Port.commit(pid, [
             {:add, :table, %{family: :inet, name: "fw"}},
             {:add, :chain, Map.put(@t, :name, "input")},
             {:add, :set, Map.merge(@t, %{name: "blocklist", key_type: 7, key_len: 4})},
             {:add, :set,
              Map.merge(@t, %{name: "ranges", key_type: 7, key_len: 4, flags: [:interval]})},
             {:add, :element,
              Map.merge(@t, %{
                set: "ranges",
                elements: [
                  %{key: <<10, 0, 0, 0>>},
                  %{key: <<10, 0, 1, 0>>, flags: [:interval_end]}
                ]
              })}
           ]) == :ok

    pid
  end

  defp kernel_error!(reply) do
    assert {:error, %{errno: errno, index: _, object: _, attr: _, message: message} = e} = reply
    assert map_size(e) == 5, "a kernel error has exactly five keys: #{inspect(e)}"
    assert is_atom(errno) and is_binary(message)
    e
  end

  describe "a missing object: which one, and did you mean" do
    test "a missing set: attr :name, the set named, the close one suggested" do
      pid = port_with_ruleset()
      reply = Port.commit(pid, [{:delete, :set, Map.put(@t, :name, "blocklst")}])
      e = kernel_error!(reply)

      assert %{errno: :enoent, index: 0, attr: :name} = e
      assert e.object == %{type: :set, family: :inet, table: "fw", name: "blocklst"}

      assert e.message ==
               "No such file or directory (ENOENT): set 'blocklst' does not exist in " <>
                 "table inet 'fw'; did you mean set 'blocklist' in table inet 'fw'? (attribute :name)"
    end

    test "a missing table: attr :table, the table named, the close one suggested" do
      pid = port_with_ruleset()

      e =
        kernel_error!(
          Port.commit(pid, [
            {:add, :table, %{family: :ip, name: "other"}},
            {:add, :chain, %{family: :inet, table: "fx", name: "c"}}
          ])
        )

      assert %{errno: :enoent, index: 1, attr: :table} = e
      assert e.object == %{type: :chain, family: :inet, table: "fx", name: "c"}
      assert e.message =~ "table inet 'fx' does not exist; did you mean table inet 'fw'?"
    end

    test "a typo of a rule's chain: attr :chain, the chain named and suggested" do
      pid = port_with_ruleset()
      e = kernel_error!(Port.commit(pid, [{:add, :rule, Map.merge(@t, %{chain: "inptu"})}]))
      assert %{errno: :enoent, index: 0, attr: :chain} = e
      assert e.object == %{type: :rule, family: :inet, table: "fw", chain: "inptu"}

      assert e.message =~
               "chain 'inptu' does not exist in table inet 'fw'; did you mean chain 'input'"
    end

    test "elements of a missing set: attr :set; nothing close: no suggestion" do
      pid = port_with_ruleset()

      e =
        kernel_error!(
          Port.commit(pid, [
            {:add, :element, Map.merge(@t, %{set: "allowlist", elements: [%{key: <<1::32>>}]})}
          ])
        )

      assert %{errno: :enoent, index: 0, attr: :set} = e
      assert e.object == %{type: :element, family: :inet, table: "fw", set: "allowlist"}
      assert e.message =~ "set 'allowlist' does not exist in table inet 'fw'"
      refute e.message =~ "did you mean"
    end

    test "the same name in another table is suggested" do
      pid = port_with_ruleset()
      assert Port.commit(pid, [{:add, :table, %{family: :ip, name: "fw"}}]) == :ok

      e =
        kernel_error!(
          Port.commit(pid, [{:delete, :chain, %{family: :ip, table: "fw", name: "input"}}])
        )

      assert e.message =~ "did you mean chain 'input' in table inet 'fw'?"
    end

    test "list of the elements of a missing set is an error, not an empty list" do
      pid = port_with_ruleset()
      e = kernel_error!(Port.list(pid, :element, Map.put(@t, :set, "nosuch")))
      assert %{errno: :enoent, index: nil, attr: :set} = e
      assert e.object == %{type: :element, family: :inet, table: "fw", set: "nosuch"}
      assert e.message =~ "set 'nosuch' does not exist in table inet 'fw'"

      # A set that exists and is empty is an empty list.
      assert {:ok, [%{set: "blocklist", elements: []}]} =
               Port.list(pid, :element, Map.put(@t, :set, "blocklist"))
    end

    test "get of a missing set and of a set in a missing table" do
      pid = port_with_ruleset()
      e = kernel_error!(Port.get(pid, :set, Map.put(@t, :name, "blocklis")))
      assert %{errno: :enoent, index: nil, attr: :name} = e
      assert e.object == %{type: :set, family: :inet, table: "fw", name: "blocklis"}
      assert e.message =~ "did you mean set 'blocklist' in table inet 'fw'?"

      e = kernel_error!(Port.get(pid, :set, %{family: :inet, table: "nope", name: "x"}))
      assert %{errno: :enoent, attr: :table} = e
      assert e.message =~ "table inet 'nope' does not exist"
    end

    test "the handle API's Batch.send answers the same shape" do
      pid = port_with_ruleset()
      {:ok, socket} = Netlink.socket_open(pid)
      {:ok, batch} = Batch.new(pid)
      {:ok, t} = Table.alloc(pid)
      :ok = Table.set(pid, t, :family, :inet)
      :ok = Table.set(pid, t, :name, "fx")
      {:ok, 0} = Batch.add(pid, batch, :delete, :table, t)
      e = kernel_error!(Batch.send(pid, batch, socket))
      assert %{errno: :enoent, index: 0, attr: :name} = e
      assert e.object == %{type: :table, family: :inet, name: "fx"}
      assert e.message =~ "table inet 'fx' does not exist; did you mean table inet 'fw'?"
    end
  end

  describe "what the kernel's errno alone does not say" do
    test "EEXIST on an interval set is an overlap" do
      pid = port_with_ruleset()

      e =
        kernel_error!(
          Port.commit(pid, [
            {:add, :element,
             Map.merge(@t, %{
               set: "ranges",
               elements: [
                 %{key: <<10, 0, 0, 128>>},
                 %{key: <<10, 0, 2, 0>>, flags: [:interval_end]}
               ]
             })}
          ])
        )

      assert %{errno: :eexist, index: 0, attr: :elements} = e
      assert e.object.type == :element and e.object.set == "ranges"
      assert e.message =~ "File exists (EEXIST): interval overlaps with an existing one"
      assert e.message =~ "elements[0]"
    end

    test "EEXIST on a set that is not an interval set says nothing more" do
      pid = port_with_ruleset()

      e =
        kernel_error!(
          Port.commit(pid, [
            {:create, :set, Map.merge(@t, %{name: "blocklist", key_type: 7, key_len: 4})}
          ])
        )

      assert %{errno: :eexist, index: 0, attr: :name} = e
      refute e.message =~ "overlap"
    end

    test "a key of the wrong length is refused before sending, naming the element" do
      pid = port_with_ruleset()
      els = for i <- 1..10, do: %{key: <<10, 1, 0, i>>}

      # The set from the kernel.
      assert {:error, %{reason: :badarg, index: 1, message: message}} =
               Port.commit(pid, [
                 {:add, :chain, Map.put(@t, :name, "x")},
                 {:add, :element,
                  Map.merge(@t, %{set: "blocklist", elements: els ++ [%{key: <<1, 2, 3>>}]})}
               ])

      assert message ==
               "commit: message 1 (add element): element 10: :key is 3 bytes, but set " <>
                 "'blocklist' in table inet 'fw' has key_len 4"

      # The set from the same batch, and a key_end.
      assert {:error, %{reason: :badarg, index: 1, message: message}} =
               Port.commit(pid, [
                 {:add, :set,
                  Map.merge(@t, %{name: "new", key_type: 7, key_len: 4, flags: [:interval]})},
                 {:add, :element,
                  Map.merge(@t, %{
                    set: "new",
                    elements: [%{key: <<1, 2, 3, 4>>, key_end: <<1, 2, 3, 4, 5>>}]
                  })}
               ])

      assert message =~ "element 0: :key_end is 5 bytes, but set 'new'"

      # Nothing was sent: the chain of the first message is not there.
      assert {:ok, chains} = Port.list(pid, :chain, @t)
      assert Enum.map(chains, & &1.name) == ["input"]

      assert Control.ping(pid) == {:ok, :pong}
    end

    test "the kernel's blamed attribute inside a rule's expressions" do
      pid = port_with_ruleset()

      e =
        kernel_error!(
          Port.commit(pid, [
            {:add, :rule,
             Map.merge(@t, %{
               chain: "input",
               exprs: [
                 {:payload, %{base: :network, offset: 12, dreg: 1}},
                 {:cmp, %{sreg: 1, op: :eq, data: <<10, 0, 0, 1>>}}
               ]
             })}
          ])
        )

      assert %{errno: :einval, index: 0, attr: :exprs} = e
      assert e.message =~ "exprs[0] (payload)"
    end

    test "the element a kernel error blames counts over split netlink messages" do
      pid = port_with_ruleset()
      # 5000 fresh elements, then one that overlaps: several netlink messages.
      els = for i <- 0..4999, do: %{key: <<11, 0, i::16>>, flags: []}

      els =
        Enum.flat_map(Enum.take_every(els, 2), fn %{key: <<11, 0, i::16>>} ->
          [%{key: <<11, 0, i::16>>}, %{key: <<11, 0, i + 1::16>>, flags: [:interval_end]}]
        end)

      bad = [%{key: <<10, 0, 0, 9>>}, %{key: <<10, 0, 0, 10>>, flags: [:interval_end]}]

      e =
        kernel_error!(
          Port.commit(pid, [
            {:add, :element, Map.merge(@t, %{set: "ranges", elements: els ++ bad})}
          ])
        )

      assert %{errno: :eexist, index: 0} = e
      [_, n] = Regex.run(~r/elements\[(\d+)\]/, e.message)
      assert String.to_integer(n) >= length(els)
    end
  end

  describe "caller errors: one shape of their own" do
    test "bad terms, unknown attributes and bad values from the port and the library" do
      pid = start_port!()

      for reply <- [
            Port.commit(pid, [{:add, :table, %{family: :inet, name: "x", bogus: 1}}]),
            Port.commit(pid, [{:add, :table, %{family: :frob, name: "x"}}]),
            Port.commit(pid, :nonsense),
            Port.commit(pid, [], bogus: true),
            Port.list(pid, :frob),
            Port.list(pid, :table, 5),
            Port.get(pid, :table, %{family: :inet, name: "x"}, timeout: -1),
            Port.call(pid, :no_such_op, []),
            Table.set(pid, 12_345, :name, "x")
          ] do
        assert {:error, %{reason: :badarg, index: index, message: message} = e} = reply
        assert map_size(e) == 3
        assert is_binary(message) and (is_nil(index) or is_integer(index))
      end

      assert {:error, %{reason: :badarg, index: 1}} =
               Port.commit(pid, [
                 {:add, :table, %{family: :inet, name: "ok"}},
                 {:add, :tabel, %{}}
               ])

      assert Control.ping(pid) == {:ok, :pong}
    end

    test "Errors.distance is Levenshtein's" do
      assert Errors.distance("blocklist", "blocklst") == 1
      assert Errors.distance("", "abc") == 3
      assert Errors.distance("input", "inptu") == 2
      assert Errors.distance("same", "same") == 0
    end
  end
end
