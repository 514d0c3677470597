defmodule NFTables.Slice do
  @moduledoc """
  Test data and helpers for the objects of the current slice (table, chain,
  rule with payload/meta/cmp/immediate/counter/lookup/bitwise/range
  expressions, set, set elements):

    * `ruleset/0` - one table exercising every object and expression kind,
      as declarative messages, and `ruleset_nft/0`, what `nft list ruleset`
      must print for it;
    * `commit_with_handles/3` - sends declarative messages through the
      handle API instead (`Table.alloc/set`, ..., `Batch.new/add/send` over
      `Kernel.Netlink.socket_open/1`);
    * `expected/2` and `comparable/2` - turn what was sent and what `list`
      returned into the same shape, allowing for exactly the attributes the
      kernel adds (handles, use counts, rule positions, the `:base` chain
      flag, zero counters, empty flags, element expirations);
    * `list_all!/1`, `normalize_nft/1`.
  """

  import ExUnit.Assertions

  alias NFTables.Port

  @types [:table, :chain, :set, :element, :rule]

  @doc "The object types `list` knows, in dependency order."
  def types, do: @types

  ## Userdata TLVs as nft writes them (libnftnl's udata: type, length, value)

  @doc "A comment as nft stores it in table, chain, rule and element userdata (TLV type 0)."
  def comment_udata(text), do: tlv(0, text <> <<0>>)

  @doc "A comment as nft stores it in set userdata (NFTNL_UDATA_SET_COMMENT = 7)."
  def set_comment_udata(text), do: tlv(7, text <> <<0>>)

  @doc "Set userdata for the key (and data) byte order: 1 host, 2 big endian."
  def set_byteorder_udata(key, data \\ nil) do
    tlv(0, <<key::32-native>>) <> if(data, do: tlv(1, <<data::32-native>>), else: <<>>)
  end

  defp tlv(type, value), do: <<type, byte_size(value), value::binary>>

  ## The slice's ruleset

  @table "slice"
  @verdict_type 0xFFFFFF00

  @doc """
  Declarative messages building one `inet` table with every object and
  expression kind of the slice. Sets carry an `:id` (nft always sends one;
  the kernel requires NFTA_SET_ID on a new set).
  """
  def ruleset(table \\ @table) do
    t = %{family: :inet, table: table}

    [
      {:add, :table, %{family: :inet, name: table, userdata: comment_udata("slice table")}},
      {:add, :chain,
       Map.merge(t, %{
         name: "input",
         type: "filter",
         hooknum: :input,
         prio: 0,
         policy: :drop,
         userdata: comment_udata("input hook")
       })},
      {:add, :chain,
       Map.merge(t, %{name: "output", type: "filter", hooknum: :output, prio: 10, policy: :accept})},
      {:add, :chain, Map.merge(t, %{name: "jmp"})},
      {:add, :chain, Map.merge(t, %{name: "gto"})},
      {:add, :set,
       Map.merge(t, %{
         name: "addrs",
         key_type: 7,
         key_len: 4,
         id: 1,
         userdata: set_byteorder_udata(2) <> set_comment_udata("plain set")
       })},
      {:add, :set,
       Map.merge(t, %{
         name: "nets",
         flags: [:interval],
         key_type: 7,
         key_len: 4,
         id: 2,
         userdata: set_byteorder_udata(2)
       })},
      {:add, :set,
       Map.merge(t, %{
         name: "tmo",
         flags: [:timeout],
         key_type: 7,
         key_len: 4,
         timeout: 3_600_000,
         id: 3,
         userdata: set_byteorder_udata(2)
       })},
      {:add, :set,
       Map.merge(t, %{
         name: "marks",
         flags: [:map],
         key_type: 7,
         key_len: 4,
         data_type: 19,
         data_len: 4,
         id: 4,
         userdata: set_byteorder_udata(2, 1)
       })},
      {:add, :set,
       Map.merge(t, %{
         name: "ports",
         flags: [:map],
         key_type: 13,
         key_len: 2,
         data_type: @verdict_type,
         # The kernel keeps a verdict's length, sizeof(struct nft_verdict).
         data_len: 16,
         id: 5,
         userdata: set_byteorder_udata(2)
       })},
      {:add, :element,
       Map.merge(t, %{
         set: "addrs",
         elements: [
           %{key: <<10, 0, 0, 1>>},
           %{key: <<10, 0, 0, 2>>, userdata: comment_udata("second")}
         ]
       })},
      {:add, :element,
       Map.merge(t, %{
         set: "nets",
         # 10.0.0.0/24 and 192.168.0.0/16, as nft sends them.
         elements: [
           %{key: <<0, 0, 0, 0>>, flags: [:interval_end]},
           %{key: <<10, 0, 0, 0>>},
           %{key: <<10, 0, 1, 0>>, flags: [:interval_end]},
           %{key: <<192, 168, 0, 0>>},
           %{key: <<192, 169, 0, 0>>, flags: [:interval_end]}
         ]
       })},
      {:add, :element,
       Map.merge(t, %{set: "tmo", elements: [%{key: <<10, 0, 0, 3>>, timeout: 1_800_000}]})},
      {:add, :element,
       Map.merge(t, %{
         set: "marks",
         elements: [
           %{key: <<10, 1, 1, 1>>, data: <<0x10::32-native>>},
           %{key: <<10, 1, 1, 2>>, data: <<0x20::32-native>>}
         ]
       })},
      {:add, :element,
       Map.merge(t, %{
         set: "ports",
         elements: [
           %{key: <<22::16>>, verdict: :accept},
           %{key: <<23::16>>, verdict: :drop},
           %{key: <<80::16>>, verdict: :jump, chain: "jmp"},
           %{key: <<443::16>>, verdict: :goto, chain: "gto"}
         ]
       })},
      rule(t, "input", [
        {:meta, %{key: :l4proto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<6>>}},
        {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<22::16>>}},
        {:counter, %{}},
        {:immediate, %{dreg: 0, verdict: :accept}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :nfproto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<2>>}},
        {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
        {:lookup, %{sreg: 1, set: "addrs"}},
        {:immediate, %{dreg: 0, verdict: :drop}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :nfproto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<2>>}},
        {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
        {:lookup, %{sreg: 1, set: "nets", flags: [:inv]}},
        {:counter, %{}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :nfproto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<2>>}},
        {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
        {:lookup, %{sreg: 1, set: "nets"}},
        {:immediate, %{dreg: 0, verdict: :jump, chain: "jmp"}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :l4proto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<17>>}},
        {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
        {:range, %{sreg: 1, op: :eq, from_data: <<100::16>>, to_data: <<200::16>>}},
        {:immediate, %{dreg: 0, verdict: :goto, chain: "gto"}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :mark, dreg: 1}},
        {:bitwise,
         %{
           sreg: 1,
           dreg: 1,
           len: 4,
           op: :bool,
           mask: <<0xFF00::32-native>>,
           xor: <<0::32-native>>
         }},
        {:cmp, %{sreg: 1, op: :eq, data: <<0x100::32-native>>}},
        {:immediate, %{dreg: 0, verdict: :return}}
      ]),
      rule(t, "input", [
        {:meta, %{key: :nfproto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<2>>}},
        {:payload, %{base: :network, offset: 12, len: 4, dreg: 1}},
        {:lookup, %{sreg: 1, set: "marks", dreg: 1}},
        {:meta, %{key: :mark, sreg: 1}}
      ]),
      rule(t, "input", [
        {:payload, %{base: :transport, offset: 2, len: 2, dreg: 1}},
        {:lookup, %{sreg: 1, set: "ports", dreg: 0}}
      ]),
      rule(
        t,
        "input",
        [
          {:immediate, %{dreg: 1, data: <<7::32-native>>}},
          {:meta, %{key: :mark, sreg: 1}},
          {:counter, %{}}
        ],
        comment_udata("set mark")
      ),
      rule(t, "jmp", [{:counter, %{}}, {:immediate, %{dreg: 0, verdict: :accept}}]),
      rule(t, "gto", [
        {:meta, %{key: :l4proto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :neq, data: <<6>>}},
        {:immediate, %{dreg: 0, verdict: :return}}
      ]),
      rule(t, "gto", [{:immediate, %{dreg: 0, verdict: :drop}}]),
      rule(t, "output", [
        {:meta, %{key: :l4proto, dreg: 1}},
        {:cmp, %{sreg: 1, op: :eq, data: <<6>>}},
        {:immediate, %{dreg: 0, verdict: :goto, chain: "gto"}}
      ])
    ]
  end

  defp rule(t, chain, exprs, userdata \\ nil) do
    attrs = Map.merge(t, %{chain: chain, exprs: exprs})
    attrs = if userdata, do: Map.put(attrs, :userdata, userdata), else: attrs
    {:add, :rule, attrs}
  end

  @doc """
  What `nft list ruleset` prints for `ruleset/0`, with the element
  expiration of the timeout set replaced by `expires <T>` (see
  `normalize_nft/1`).
  """
  def ruleset_nft(table \\ @table) do
    """
    table inet #{table} {
    \tcomment "slice table"
    \tset addrs {
    \t\ttype ipv4_addr
    \t\tcomment "plain set"
    \t\telements = { 10.0.0.1, 10.0.0.2 comment "second" }
    \t}

    \tset nets {
    \t\ttype ipv4_addr
    \t\tflags interval
    \t\telements = { 10.0.0.0/24, 192.168.0.0/16 }
    \t}

    \tset tmo {
    \t\ttype ipv4_addr
    \t\ttimeout 1h
    \t\telements = { 10.0.0.3 timeout 30m expires <T> }
    \t}

    \tmap marks {
    \t\ttype ipv4_addr : mark
    \t\telements = { 10.1.1.1 : 0x00000010, 10.1.1.2 : 0x00000020 }
    \t}

    \tmap ports {
    \t\ttype inet_service : verdict
    \t\telements = { 22 : accept, 23 : drop, 80 : jump jmp, 443 : goto gto }
    \t}

    \tchain input {
    \t\tcomment "input hook"
    \t\ttype filter hook input priority filter; policy drop;
    \t\ttcp dport 22 counter packets 0 bytes 0 accept
    \t\tip saddr @addrs drop
    \t\tip saddr != @nets counter packets 0 bytes 0
    \t\tip saddr @nets jump jmp
    \t\tudp dport 100-200 goto gto
    \t\tmeta mark & 0x0000ff00 == 0x00000100 return
    \t\tmeta mark set ip saddr map @marks
    \t\tth dport vmap @ports
    \t\tmeta mark set 0x00000007 counter packets 0 bytes 0 comment "set mark"
    \t}

    \tchain output {
    \t\ttype filter hook output priority filter + 10; policy accept;
    \t\tmeta l4proto tcp goto gto
    \t}

    \tchain jmp {
    \t\tcounter packets 0 bytes 0 accept
    \t}

    \tchain gto {
    \t\tmeta l4proto != tcp return
    \t\tdrop
    \t}
    }
    """
  end

  @doc """
  `nft list ruleset` output with the one time-dependent part, the
  remaining time of timeout elements (`expires 29m59s990ms`), replaced by
  `expires <T>`.
  """
  def normalize_nft(text), do: Regex.replace(~r/expires [0-9hmsd]+/, text, "expires <T>")

  ## The handle API

  @doc """
  Sends `msgs` (declarative `{verb, type, attrs}` messages) as one batch
  through the handle API: every object is built with `<Type>.alloc/set`,
  expressions with `Expr.alloc/set` and `Rule.add_expr/3`, elements with
  `SetElem.alloc/set` and `Set.add_elem/3`, checked with `to_map`, appended
  with `Batch.add/5` and sent with `Batch.send/3` over a fresh socket.
  Returns what `Batch.send/3` returned; every handle is freed afterwards.
  """
  def commit_with_handles(pid, msgs) do
    {:ok, socket} = Port.Kernel.Netlink.socket_open(pid)
    {:ok, batch} = Port.Batch.new(pid)

    objects =
      msgs
      |> Enum.with_index()
      |> Enum.map(fn {{verb, type, attrs}, index} ->
        {module, handle} = build_object!(pid, type, attrs)
        assert Port.Batch.add(pid, batch, verb, type, handle) == {:ok, index}
        {module, handle}
      end)

    result = Port.Batch.send(pid, batch, socket)

    for {module, handle} <- objects, do: assert(module.free(pid, handle) == :ok)
    assert Port.Kernel.Netlink.socket_close(pid, socket) == :ok
    result
  end

  @doc "Builds one handle object from declarative attrs; returns `{module, handle}`."
  def build_object!(pid, :element, attrs) do
    {elements, attrs} = Map.pop(attrs, :elements, [])

    set_attrs =
      attrs
      |> Enum.map(fn
        {:set, name} -> {:name, name}
        {:set_id, id} -> {:id, id}
        other -> other
      end)
      |> Map.new()

    set = alloc_and_set!(pid, Port.Set, set_attrs)

    for elem_attrs <- elements do
      elem = alloc_and_set!(pid, Port.SetElem, elem_attrs)
      assert Port.Set.add_elem(pid, set, elem) == :ok
      # The set took the element over.
      assert {:error, %{message: message}} = Port.SetElem.to_map(pid, elem)
      assert message =~ "not a live handle"
    end

    {Port.Set, set}
  end

  def build_object!(pid, :rule, attrs) do
    {exprs, rule_attrs} = Map.pop(attrs, :exprs, [])
    # A rule's map always holds its (possibly empty) expression list.
    rule = alloc_and_set!(pid, Port.Rule, rule_attrs, Map.put(rule_attrs, :exprs, []))

    for {kind, expr_attrs} <- exprs do
      assert {:ok, expr} = Port.Expr.alloc(pid, kind)

      for {attr, value} <- expr_attrs do
        assert Port.Expr.set(pid, expr, attr, value) == :ok,
               "Expr.set #{kind} #{inspect(attr)} #{inspect(value)}"

        assert Port.Expr.get(pid, expr, attr) == {:ok, value}
      end

      assert Port.Expr.to_map(pid, expr) == {:ok, {kind, expr_attrs}}
      assert Port.Rule.add_expr(pid, rule, expr) == :ok
    end

    assert Port.Rule.to_map(pid, rule) == {:ok, Map.put(rule_attrs, :exprs, exprs)}
    {Port.Rule, rule}
  end

  def build_object!(pid, type, attrs) when type in [:table, :chain, :set] do
    module = Module.concat(Port, type |> Atom.to_string() |> Macro.camelize())
    {module, alloc_and_set!(pid, module, attrs)}
  end

  defp alloc_and_set!(pid, module, attrs, expected_map \\ nil) do
    assert {:ok, handle} = module.alloc(pid)

    for {attr, value} <- attrs do
      assert module.set(pid, handle, attr, value) == :ok,
             "#{inspect(module)}.set #{inspect(attr)} #{inspect(value)}"

      assert module.get(pid, handle, attr) == {:ok, value}
    end

    assert module.to_map(pid, handle) == {:ok, expected_map || attrs}
    handle
  end

  ## Comparing what was sent with what list returns

  @doc "Every object type listed: `%{type => [attrs]}`."
  def list_all!(pid, filter \\ %{}) do
    Map.new(@types, fn type ->
      assert {:ok, objects} = Port.list(pid, type, filter)
      {type, objects}
    end)
  end

  @doc """
  What `list` must return for the `:add` messages in `msgs`, as
  `%{type => [attrs]}` in `comparable/2` shape: sent attrs plus exactly the
  attributes the kernel adds with fixed values (`flags: []` on tables,
  `flags: [:base]` on base chains, zero counters, `flags: []` on lookups),
  minus the transaction-local set `:id` the kernel does not keep.
  """
  def expected(msgs) do
    adds = for {:add, type, attrs} <- msgs, do: {type, attrs}

    Map.new(@types, fn type ->
      objects = for {^type, attrs} <- adds, do: expected_object(type, attrs)
      {type, sort_objects(type, objects)}
    end)
  end

  defp expected_object(:table, attrs), do: Map.put_new(attrs, :flags, [])

  defp expected_object(:chain, attrs) do
    if Map.has_key?(attrs, :hooknum),
      do: Map.update(attrs, :flags, [:base], &Enum.uniq([:base | &1])),
      else: attrs
  end

  defp expected_object(:set, attrs), do: Map.delete(attrs, :id)

  defp expected_object(:element, attrs) do
    attrs
    |> Map.delete(:set_id)
    |> Map.update!(:elements, &Enum.sort/1)
  end

  defp expected_object(:rule, attrs) do
    Map.update!(attrs, :exprs, fn exprs ->
      Enum.map(exprs, fn
        {:counter, a} -> {:counter, Map.merge(%{packets: 0, bytes: 0}, a)}
        {:lookup, a} -> {:lookup, Map.put_new(a, :flags, [])}
        other -> other
      end)
    end)
  end

  @doc """
  `list` results (`%{type => [attrs]}`) without what the kernel assigns
  per namespace or per moment: handles, use counts, rule positions and
  element expirations (each checked to be a plausible value first).
  """
  def comparable(listed) do
    Map.new(listed, fn {type, objects} ->
      {type, sort_objects(type, Enum.map(objects, &comparable_object(type, &1)))}
    end)
  end

  defp comparable_object(:element, attrs) do
    Map.update!(attrs, :elements, fn elements ->
      elements
      |> Enum.map(fn elem ->
        case Map.pop(elem, :expiration) do
          {nil, elem} ->
            elem

          {expiration, elem} ->
            assert is_integer(expiration) and expiration > 0 and
                     expiration <= Map.fetch!(elem, :timeout),
                   "element expiration #{expiration} not within its timeout: #{inspect(elem)}"

            elem
        end
      end)
      |> Enum.sort()
    end)
  end

  defp comparable_object(type, attrs) do
    for key <- [:handle, :use, :position], Map.has_key?(attrs, key) do
      assert is_integer(attrs[key]) and attrs[key] >= 0,
             "#{type} #{key} is not an integer: #{inspect(attrs)}"
    end

    if type in [:table, :chain, :set, :rule] do
      assert is_integer(attrs[:handle]) and attrs[:handle] > 0,
             "#{type} has no handle: #{inspect(attrs)}"
    end

    Map.drop(attrs, [:handle, :use, :position])
  end

  @doc """
  Objects (attrs maps of one type) without handles, use counts, rule
  positions and element expirations, sorted: for comparing a dump, which
  may leave them out, with a listing.
  """
  def without_kernel_assigned(objects) do
    objects
    |> Enum.map(fn attrs ->
      attrs
      |> Map.drop([:handle, :use, :position])
      |> Map.update(:elements, nil, fn els ->
        Enum.sort(Enum.map(els, &Map.delete(&1, :expiration)))
      end)
      |> Map.reject(fn {key, value} -> key == :elements and value == nil end)
    end)
    |> Enum.sort()
  end

  # Tables, chains and sets by name (list order is the kernel's business);
  # rules keep their order within their chain, which is what matters.
  defp sort_objects(:rule, rules) do
    rules
    |> Enum.group_by(&{&1.family, &1.table, &1.chain})
    |> Enum.sort()
  end

  defp sort_objects(:element, elements),
    do: Enum.sort_by(elements, &{&1.family, &1.table, &1.set})

  defp sort_objects(_type, objects), do: Enum.sort_by(objects, &{&1.family, &1[:table], &1.name})
end
