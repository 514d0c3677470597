defmodule NFTables.Port.Nft.Text.Parser do
  @moduledoc """
  nft's own script syntax (what `nft -f` reads, nftables 1.0.6) read into
  the libnftables JSON document (Elixir terms, atom keys) that means the
  same thing, so that `NFTables.Port.Nft.to_messages/2` can translate it.

      iex> {:ok, doc} = NFTables.Port.Nft.Text.Parser.parse("add table inet fw")
      iex> doc
      %{nftables: [%{add: %{table: %{family: "inet", name: "fw"}}}]}

  What it reads: `table`/`chain`/`set`/`map`/`flowtable`/object blocks as
  `nft list ruleset` prints them; the commands `add`, `create`, `insert`,
  `replace`, `delete`, `destroy`, `flush`, `reset`, `list`, `rename` with
  `handle`, `position` and `index`; `define`/`redefine`/`undefine` and
  `$variables`; comments, `;`, line continuations. `include` is refused:
  the port reads no files.

  Rule statements become the JSON statements of libnftables-json(5) as
  nft's JSON parser accepts them. Types and protocol dependencies are not
  resolved here (that is the translator's job): values stay as written,
  numbers as integers, everything else as strings (`"1.2.3.4"`,
  `"established"`, `"@set"`). An operator-less match is `"=="`, except
  where nft's implicit operator means more than equality -- a list
  (`ct state established,related`) or a bitmask field (`tcp flags syn`)
  -- where it is `"in"`, which nft's JSON parser reads as the same
  implicit operator. Standard chain priorities (`filter`, `dstnat + 10`)
  become the numbers JSON needs; time values (`1h30m`) become seconds.

  Errors answer `%{line:, column:, message:, snippet:}`, 1-based, where
  nft's caret would point, the snippet the offending source line.
  """

  alias NFTables.Port.Nft.Text.Lexer

  @families ~w(ip ip6 inet arp bridge netdev)
  @defs :nft_text_parser_defines

  @type error :: %{line: pos_integer(), column: pos_integer(), message: String.t(), snippet: String.t()}

  @doc """
  Parses an nft script. Options: `:defines`, a map or keyword list of
  variables set beforehand (as `nft -D name=value`), values as JSON has
  them.
  """
  @spec parse(binary(), keyword()) :: {:ok, %{nftables: [map()]}} | {:error, error()}
  def parse(script, opts \\ []) when is_binary(script) do
    case Lexer.tokenize(script) do
      {:ok, toks} ->
        pre = Map.new(Keyword.get(opts, :defines, []), fn {k, v} -> {to_string(k), v} end)
        old = Process.put(@defs, [pre])

        try do
          {:ok, %{nftables: parse_input(toks, [])}}
        catch
          {:nft_parse_error, {line, col}, msg} -> {:error, err(script, line, col, msg)}
        after
          if old, do: Process.put(@defs, old), else: Process.delete(@defs)
        end

      {:error, e} ->
        {:error, err(script, e.line, e.column, e.message)}
    end
  end

  defp err(script, line, col, msg) do
    snippet = script |> String.split("\n") |> Enum.at(line - 1, "") |> String.trim_trailing("\r")
    %{line: line, column: col, message: msg, snippet: snippet}
  end

  # ---------------------------------------------------------------------
  # token helpers

  defp fail(tok, msg), do: throw({:nft_parse_error, {elem(tok, 2), elem(tok, 3)}, msg})

  defp unexpected(tok, expecting) do
    what =
      case tok do
        {:eof, _, _, _} -> "end of file"
        {:nl, _, _, _} -> "newline"
        {:qstr, v, _, _} -> "quoted string \"#{v}\""
        {:num, v, _, _} -> "number #{v}"
        {_, v, _, _} -> "'#{v}'"
      end

    fail(tok, "syntax error, unexpected #{what}" <> if(expecting, do: ", expecting #{expecting}", else: ""))
  end

  defp word?([{:str, w, _, _} | _], w), do: true
  defp word?(_, _), do: false

  defp punct?([{:punct, p, _, _} | _], p), do: true
  defp punct?(_, _), do: false

  defp head_word([{:str, w, _, _} | _]), do: w
  defp head_word(_), do: nil

  defp expect_word([{:str, w, _, _} | rest], w), do: rest
  defp expect_word([t | _], w), do: unexpected(t, "'#{w}'")

  defp expect_punct([{:punct, p, _, _} | rest], p), do: rest
  defp expect_punct([t | _], p), do: unexpected(t, "'#{p}'")

  defp skip_nl([{:nl, _, _, _} | rest]), do: skip_nl(rest)
  defp skip_nl(ts), do: ts

  defp skip_sep([{:nl, _, _, _} | rest]), do: skip_sep(rest)
  defp skip_sep([{:punct, ";", _, _} | rest]), do: skip_sep(rest)
  defp skip_sep(ts), do: ts

  defp terminator?([{:nl, _, _, _} | _]), do: true
  defp terminator?([{:eof, _, _, _} | _]), do: true
  defp terminator?([{:punct, p, _, _} | _]) when p in [";", "}"], do: true
  defp terminator?(_), do: false

  # An identifier: a bare word, a quoted string, or a variable.
  defp identifier([{:str, w, _, _} | rest], _what), do: {w, rest}
  defp identifier([{:qstr, w, _, _} | rest], _what), do: {w, rest}
  defp identifier([{:punct, "$", _, _} | _] = ts, what) do
    {v, rest} = variable(ts)

    case v do
      s when is_binary(s) -> {s, rest}
      i when is_integer(i) -> {Integer.to_string(i), rest}
      _ -> fail(hd(ts), "variable used as #{what} must be a string")
    end
  end

  defp identifier([t | _], what), do: unexpected(t, what)

  defp number([{:num, n, _, _} | rest], _what), do: {n, rest}
  defp number([{:punct, "$", _, _} | _] = ts, what) do
    case variable(ts) do
      {n, rest} when is_integer(n) -> {n, rest}
      _ -> fail(hd(ts), "variable used as #{what} must be a number")
    end
  end

  defp number([t | _], what), do: unexpected(t, what)

  # ---------------------------------------------------------------------
  # variables

  defp variable([{:punct, "$", _, _} = d, {:str, name, _, _} | rest]), do: {lookup(d, name), rest}
  defp variable([{:punct, "$", _, _}, t | _]), do: unexpected(t, "a variable name after '$'")

  defp lookup(tok, name) do
    scopes = Process.get(@defs, [%{}])

    case Enum.find_value(scopes, fn s -> Map.fetch(s, name) |> ok_value() end) do
      {:v, v} -> v
      nil -> fail(tok, "unknown identifier '#{name}'")
    end
  end

  defp ok_value({:ok, v}), do: {:v, v}
  defp ok_value(:error), do: nil

  defp define(name, value) do
    [top | rest] = Process.get(@defs, [%{}])
    Process.put(@defs, [Map.put(top, name, value) | rest])
  end

  defp undefine(tok, name) do
    [top | rest] = Process.get(@defs, [%{}])

    if Map.has_key?(top, name),
      do: Process.put(@defs, [Map.delete(top, name) | rest]),
      else: fail(tok, "undefined symbol '#{name}'")
  end

  defp push_scope, do: Process.put(@defs, [%{} | Process.get(@defs, [%{}])])
  defp pop_scope, do: Process.put(@defs, tl(Process.get(@defs)))

  # ---------------------------------------------------------------------
  # input: commands separated by newlines or ';'

  defp parse_input(ts, acc) do
    case skip_sep(ts) do
      [{:eof, _, _, _} | _] ->
        acc |> Enum.reverse() |> List.flatten()

      [{:punct, "}", _, _} = t | _] ->
        fail(t, "syntax error, unexpected '}': no block is open here")

      ts ->
        {cmds, rest} = command(ts)

        case rest do
          [{:nl, _, _, _} | _] -> parse_input(rest, [cmds | acc])
          [{:punct, ";", _, _} | _] -> parse_input(rest, [cmds | acc])
          [{:eof, _, _, _} | _] -> parse_input(rest, [cmds | acc])
          [t | _] -> unexpected(t, "newline or ';'")
        end
    end
  end

  @verbs ~w(add create insert replace delete destroy flush reset list rename)
  @objects ~w(table chain rule set map element flowtable counter quota limit ct secmark synproxy)

  defp command([{:str, "include", _, _} = t | _]),
    do: fail(t, "include is not supported: the port reads no files; put the included rules in the script itself")

  defp command([{:str, w, _, _} | rest]) when w in ["define", "redefine"] do
    {name, rest} = var_name(rest)
    rest = expect_punct(rest, "=")
    {value, rest} = initializer(rest)
    define(name, value)
    {[], rest}
  end

  defp command([{:str, "undefine", _, _} | rest]) do
    [t | _] = rest
    {name, rest} = var_name(rest)
    undefine(t, name)
    {[], rest}
  end

  defp command([{:str, verb, _, _} | rest]) when verb in @verbs, do: verb_command(verb, rest)
  defp command([{:str, obj, _, _} | _] = ts) when obj in @objects, do: verb_command("add", ts)

  defp command([{:str, w, _, _} = t | _]) when w in ~w(describe monitor export import),
    do: fail(t, "'#{w}' is not supported in a script read by the port")

  defp command([t | _]),
    do: unexpected(t, "a command (add, create, insert, replace, delete, flush, reset, list, define, table, chain, ...)")

  defp var_name([{:str, name, _, _} | rest]), do: {name, rest}
  defp var_name([t | _]), do: unexpected(t, "a variable name")

  defp initializer([{:punct, "{", _, _}, {:punct, "}", _, _} | rest]), do: {%{set: []}, rest}

  defp initializer(ts) do
    {v, rest} = rhs_list(ts, :rhs)
    {v, rest}
  end

  # ---------------------------------------------------------------------
  # commands

  defp verb_command(verb, ts) do
    v = String.to_atom(verb)

    case ts do
      [{:str, "table", _, _} | rest] -> table_cmd(v, rest)
      [{:str, "tables", _, _} | rest] when v == :list -> {list_all(:tables, rest)}
      [{:str, "chain", _, _} | rest] -> chain_cmd(v, rest)
      [{:str, "rule", _, _} | rest] -> rule_cmd(v, rest)
      [{:str, "ruleset", _, _} | rest] -> ruleset_cmd(v, rest)
      [{:str, w, _, _} | rest] when w in ["set", "map", "meter"] -> set_cmd(v, String.to_atom(w), rest)
      [{:str, "element", _, _} | rest] -> element_cmd(v, rest)
      [{:str, "flowtable", _, _} | rest] -> flowtable_cmd(v, rest)
      [{:str, "ct", _, _}, {:str, k, _, _} | rest] when k in ["helper", "timeout", "expectation"] ->
        obj_cmd(v, :"ct #{k}", rest)

      [{:str, w, _, _} | rest] when w in ["counter", "quota", "limit", "secmark", "synproxy"] ->
        obj_cmd(v, String.to_atom(w), rest)

      [{:str, w, _, _} | rest]
      when w in ~w(chains sets maps counters quotas limits flowtables meters secmarks synproxys) ->
        {list_all(String.to_atom(w), rest)}

      [{:str, "ct", _, _}, {:str, w, _, _} | rest] when w in ["helpers", "timeouts", "expectations"] ->
        {list_all(:"ct #{w}", rest)}

      [{:str, _, _, _} | _] when v in [:add, :insert, :create, :replace] ->
        # `add ip t c <rule>`: nft's rule without the `rule` keyword
        rule_cmd(v, ts)

      [t | _] ->
        unexpected(t, "an object (table, chain, rule, set, map, element, flowtable, counter, quota, ...)")
    end
    |> case do
      {{cmds}, rest} -> {cmds, rest}
      {cmds, rest} -> {cmds, rest}
      {tuple} -> tuple
    end
  end

  defp list_all(what, ts) do
    {fam, rest} =
      case ts do
        [{:str, f, _, _} | rest] when f in @families -> {f, rest}
        _ -> {nil, ts}
      end

    obj = if fam, do: %{family: fam}, else: nil
    {[%{list: %{what => obj}}], rest}
  end

  defp ruleset_cmd(v, ts) when v in [:list, :flush, :reset] do
    {obj, rest} =
      case ts do
        [{:str, f, _, _} | rest] when f in @families -> {%{family: f}, rest}
        _ -> {nil, ts}
      end

    {[%{v => %{ruleset: obj}}], rest}
  end

  defp ruleset_cmd(_v, [t | _]), do: fail(t, "ruleset can only be listed, flushed or reset")

  # family? name
  defp table_spec([{:str, f, _, _}, next | _] = ts) when f in @families do
    case next do
      {kind, _, _, _} when kind in [:str, :qstr] -> table_name(tl(ts), f)
      {:punct, "$", _, _} -> table_name(tl(ts), f)
      _ -> table_name(ts, "ip")
    end
  end

  defp table_spec(ts), do: table_name(ts, "ip")

  defp table_name(ts, fam) do
    {name, rest} = identifier(ts, "a table name")
    {%{family: fam, name: name}, rest}
  end

  defp chain_spec(ts) do
    {t, rest} = table_spec(ts)
    {name, rest} = identifier(rest, "a chain name")
    {%{family: t.family, table: t.name, name: name}, rest}
  end

  defp handle_spec([{:str, "handle", _, _} | rest]) do
    {h, rest} = number(rest, "a handle number")
    {h, rest}
  end

  defp handle_spec(_), do: nil

  defp table_cmd(v, ts) do
    case ts do
      [{:str, f, _, _}, {:str, "handle", _, _} | rest] when f in @families and v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{table: %{family: f, handle: h}}}], rest}

      [{:str, "handle", _, _} | rest] when v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{table: %{family: "ip", handle: h}}}], rest}

      _ ->
        {t, rest} = table_spec(ts)

        case rest do
          [{:punct, "{", _, _} | rest] when v in [:add, :create] ->
            table_block(v, t, rest)

          _ ->
            {[%{v => %{table: t}}], rest}
        end
    end
  end

  defp chain_cmd(v, ts) do
    {t, rest} = table_spec(ts)

    case rest do
      [{:str, "handle", _, _} | rest] when v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{chain: %{family: t.family, table: t.name, handle: h}}}], rest}

      _ ->
        {name, rest} = identifier(rest, "a chain name")
        c = %{family: t.family, table: t.name, name: name}

        case {v, rest} do
          {:rename, _} ->
            {new, rest} = identifier(rest, "the new chain name")
            {[%{rename: %{chain: Map.put(c, :newname, new)}}], rest}

          {v, [{:punct, "{", _, _} | rest]} when v in [:add, :create] ->
            {chain, rules, rest} = chain_block(c, rest)
            {[%{v => %{chain: chain}} | Enum.map(rules, &%{add: %{rule: &1}})], rest}

          _ ->
            {[%{v => %{chain: c}}], rest}
        end
    end
  end

  defp rule_cmd(v, ts) do
    {c, rest} = chain_spec(ts)
    r = %{family: c.family, table: c.table, chain: c.name}

    {r, rest} =
      case rest do
        [{:str, w, _, _} | rest2] when w in ["handle", "position", "index"] ->
          {n, rest2} = number(rest2, "a #{w} number")
          key = if w == "index", do: :index, else: :handle
          {Map.put(r, key, n), rest2}

        _ ->
          {r, rest}
      end

    case v do
      v when v in [:delete, :destroy, :reset] ->
        {[%{v => %{rule: r}}], rest}

      _ ->
        {stmts, comment, rest} = rule_body(rest)
        r = Map.put(r, :expr, stmts)
        r = if comment, do: Map.put(r, :comment, comment), else: r
        {[%{v => %{rule: r}}], rest}
    end
  end

  defp set_cmd(v, kind, ts) do
    {t, rest} = table_spec(ts)

    case rest do
      [{:str, "handle", _, _} | rest] when v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{kind => %{family: t.family, table: t.name, handle: h}}}], rest}

      _ ->
        {name, rest} = identifier(rest, "a set name")
        s = %{family: t.family, table: t.name, name: name}

        case rest do
          [{:punct, "{", _, _} | rest] when v in [:add, :create] ->
            {s, rest} = set_block(kind, s, rest)
            {[%{v => %{kind => s}}], rest}

          _ ->
            {[%{v => %{kind => s}}], rest}
        end
    end
  end

  defp element_cmd(v, ts) do
    {t, rest} = table_spec(ts)
    {name, rest} = identifier(rest, "a set name")
    rest0 = rest

    case rest do
      [{:punct, "{", _, _} | _] ->
        {%{set: elems}, rest} = set_literal(rest)
        {[%{v => %{element: %{family: t.family, table: t.name, name: name, elem: elems}}}], rest}

      [{:punct, "$", _, _} | _] ->
        case variable(rest0) do
          {%{set: elems}, rest} -> {[%{v => %{element: %{family: t.family, table: t.name, name: name, elem: elems}}}], rest}
          _ -> fail(hd(rest0), "the elements must be a set { ... }")
        end

      [t | _] ->
        unexpected(t, "'{' and the elements")
    end
  end

  defp flowtable_cmd(v, ts) do
    {t, rest} = table_spec(ts)

    case rest do
      [{:str, "handle", _, _} | rest] when v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{flowtable: %{family: t.family, table: t.name, handle: h}}}], rest}

      _ ->
        {name, rest} = identifier(rest, "a flowtable name")
        f = %{family: t.family, table: t.name, name: name}

        case rest do
          [{:punct, "{", _, _} | rest] when v in [:add, :create] ->
            {f, rest} = flowtable_block(f, rest)
            {[%{v => %{flowtable: f}}], rest}

          _ ->
            {[%{v => %{flowtable: f}}], rest}
        end
    end
  end

  defp obj_cmd(v, kind, ts) do
    {t, rest} = table_spec(ts)

    case rest do
      [{:str, "handle", _, _} | rest] when v in [:delete, :destroy] ->
        {h, rest} = number(rest, "a handle number")
        {[%{v => %{kind => %{family: t.family, table: t.name, handle: h}}}], rest}

      _ ->
        {name, rest} = identifier(rest, "an object name")
        o = %{family: t.family, table: t.name, name: name}

        cond do
          v in [:add, :create] and punct?(rest, "{") ->
            {o, rest} = obj_block(kind, o, tl(rest))
            {[%{v => %{kind => o}}], rest}

          v in [:add, :create] and kind in [:counter, :quota, :limit, :secmark, :synproxy] and
              not terminator?(rest) ->
            # `add counter t c packets 1 bytes 2`: the block's lines inline
            {o, rest} = obj_line(kind, o, rest)
            {[%{v => %{kind => o}}], rest}

          true ->
            {[%{v => %{kind => o}}], rest}
        end
    end
  end

  # ---------------------------------------------------------------------
  # table block: `table ip t { ... }`

  defp table_block(v, t, ts) do
    push_scope()
    {t, items, rest} = table_items(t, ts, [])
    pop_scope()

    # The table, its objects, chains, sets, flowtables, then the rules, so
    # that every rule and every verdict map element finds what it references.
    {rules, others} = Enum.split_with(items, &match?({:rule, _}, &1))
    rank = fn {k, _} -> Map.fetch!(%{obj: 0, chain: 1, set: 2, flowtable: 3}, k) end
    others = Enum.sort_by(others, rank)
    cmds = [%{v => %{table: t}} | Enum.map(others, fn {_, o} -> %{add: o} end)] ++ Enum.map(rules, fn {_, r} -> %{add: %{rule: r}} end)
    {cmds, rest}
  end

  defp table_items(t, ts, acc) do
    case skip_sep(ts) do
      [{:punct, "}", _, _} | rest] ->
        {t, Enum.reverse(acc), rest}

      [{:str, "chain", _, _} | rest] ->
        {name, rest} = identifier(rest, "a chain name")
        c = %{family: t.family, table: t.name, name: name}
        rest = expect_punct(rest, "{")
        {chain, rules, rest} = chain_block(c, rest)
        items = Enum.reverse([{:chain, %{chain: chain}} | Enum.map(rules, &{:rule, &1})])
        table_items(t, after_item(rest), items ++ acc)

      [{:str, w, _, _} | rest] when w in ["set", "map"] ->
        {name, rest} = identifier(rest, "a set name")
        rest = expect_punct(rest, "{")
        kind = String.to_atom(w)
        {s, rest} = set_block(kind, %{family: t.family, table: t.name, name: name}, rest)
        table_items(t, after_item(rest), [{:set, %{kind => s}} | acc])

      [{:str, "flowtable", _, _} | rest] ->
        {name, rest} = identifier(rest, "a flowtable name")
        rest = expect_punct(rest, "{")
        {f, rest} = flowtable_block(%{family: t.family, table: t.name, name: name}, rest)
        table_items(t, after_item(rest), [{:flowtable, %{flowtable: f}} | acc])

      [{:str, "ct", _, _}, {:str, k, _, _} | rest] when k in ["helper", "timeout", "expectation"] ->
        kind = :"ct #{k}"
        {name, rest} = identifier(rest, "an object name")
        rest = expect_punct(rest, "{")
        {o, rest} = obj_block(kind, %{family: t.family, table: t.name, name: name}, rest)
        table_items(t, after_item(rest), [{:obj, %{kind => o}} | acc])

      [{:str, w, _, _} | rest] when w in ["counter", "quota", "limit", "secmark", "synproxy"] ->
        kind = String.to_atom(w)
        {name, rest} = identifier(rest, "an object name")
        rest = expect_punct(rest, "{")
        {o, rest} = obj_block(kind, %{family: t.family, table: t.name, name: name}, rest)
        table_items(t, after_item(rest), [{:obj, %{kind => o}} | acc])

      [{:str, "flags", _, _} | rest] ->
        {flags, rest} = word_list(rest, "a table flag (dormant)")
        table_items(Map.put(t, :flags, single(flags)), after_line(rest), acc)

      [{:str, "comment", _, _} | rest] ->
        {c, rest} = identifier(rest, "a comment string")
        table_items(Map.put(t, :comment, c), after_line(rest), acc)

      [{:str, w, _, _} | _] = ts when w in ["define", "redefine", "undefine"] ->
        {_, rest} = command(ts)
        table_items(t, after_line(rest), acc)

      [tok | _] ->
        unexpected(tok, "chain, set, map, flowtable, counter, quota, ct, limit, secmark, synproxy, flags, comment or '}'")
    end
  end

  # After a block item: a newline, ';' or the closing '}'.
  defp after_item(ts), do: after_line(ts)

  defp after_line([{:nl, _, _, _} | _] = ts), do: ts
  defp after_line([{:punct, ";", _, _} | _] = ts), do: ts
  defp after_line([{:punct, "}", _, _} | _] = ts), do: ts
  defp after_line([t | _]), do: unexpected(t, "newline or ';'")

  defp word_list(ts, what) do
    {w, rest} = identifier(ts, what)

    case rest do
      [{:punct, ",", _, _} | rest] ->
        {more, rest} = word_list(rest, what)
        {[w | more], rest}

      _ ->
        {[w], rest}
    end
  end

  # ---------------------------------------------------------------------
  # chain block

  defp chain_block(c, ts), do: chain_items(c, ts, [])

  defp chain_items(c, ts, rules) do
    case skip_sep(ts) do
      [{:punct, "}", _, _} | rest] ->
        {c, Enum.reverse(rules), rest}

      [{:str, "type", _, _} | rest] ->
        {type, rest} = identifier(rest, "a chain type (filter, nat, route)")
        rest = expect_word(rest, "hook")
        {hook, rest} = identifier(rest, "a hook name")
        c = Map.merge(c, %{type: type, hook: hook})

        {c, rest} =
          case rest do
            [{:str, "device", _, _} | rest] ->
              {dev, rest} = identifier(rest, "a device name")
              {Map.put(c, :dev, dev), rest}

            [{:str, "devices", _, _} | rest] ->
              rest = expect_punct(rest, "=")
              {devs, rest} = device_list(rest)
              {Map.put(c, :dev, single(devs)), rest}

            _ ->
              {c, rest}
          end

        rest = expect_word(rest, "priority")
        {prio, rest} = priority(rest, c.family, hook)
        chain_items(Map.put(c, :prio, prio), after_line(rest), rules)

      [{:str, "policy", _, _} | rest] ->
        {p, rest} =
          case rest do
            [{:str, p, _, _} | rest] when p in ["accept", "drop"] -> {p, rest}
            [{:punct, "$", _, _} | _] -> identifier(rest, "a policy")
            [t | _] -> unexpected(t, "policy accept or drop")
          end

        chain_items(Map.put(c, :policy, p), after_line(rest), rules)

      [{:str, "devices", _, _} | rest] ->
        rest = expect_punct(rest, "=")
        {devs, rest} = device_list(rest)
        chain_items(Map.put(c, :dev, single(devs)), after_line(rest), rules)

      [{:str, "comment", _, _}, {:qstr, s, _, _} | rest] ->
        chain_items(Map.put(c, :comment, s), after_line(rest), rules)

      [{:str, w, _, _} | _] = ts when w in ["define", "redefine", "undefine"] ->
        {_, rest} = command(ts)
        chain_items(c, after_line(rest), rules)

      [{:eof, _, _, _} = t | _] ->
        unexpected(t, "'}' to close the chain block")

      ts ->
        {stmts, comment, rest} = rule_body(ts)
        r = %{family: c.family, table: c.table, chain: c.name, expr: stmts}
        r = if comment, do: Map.put(r, :comment, comment), else: r
        chain_items(c, after_line(rest), [r | rules])
    end
  end

  defp single([one]), do: one
  defp single(many), do: many

  defp device_list([{:punct, "{", _, _} | rest]) do
    {devs, rest} = device_items(skip_nl(rest), [])
    {devs, rest}
  end

  defp device_list(ts) do
    {d, rest} = identifier(ts, "a device name")
    {[d], rest}
  end

  defp device_items([{:punct, "}", _, _} | rest], acc), do: {Enum.reverse(acc), rest}

  defp device_items(ts, acc) do
    {d, rest} =
      case ts do
        [{:punct, "$", _, _} | _] ->
          case variable(ts) do
            {%{set: l}, rest} -> {l, rest}
            {l, rest} when is_list(l) -> {l, rest}
            {d, rest} -> {[d], rest}
          end

        _ ->
          {d, rest} = identifier(ts, "a device name")
          {[d], rest}
      end

    rest = skip_nl(rest)

    case rest do
      [{:punct, ",", _, _} | rest] -> device_items(skip_nl(rest), Enum.reverse(d) ++ acc)
      [{:punct, "}", _, _} | _] -> device_items(rest, Enum.reverse(d) ++ acc)
      [t | _] -> unexpected(t, "',' or '}'")
    end
  end

  @std_prio %{"raw" => -300, "mangle" => -150, "dstnat" => -100, "filter" => 0, "security" => 50, "srcnat" => 100}
  @bridge_prio %{"dstnat" => -300, "filter" => -200, "out" => 100, "srcnat" => 300}

  defp priority(ts, family, _hook) do
    {base, rest} =
      case ts do
        [{:num, n, _, _} | rest] ->
          {n, rest}

        [{:punct, "-", _, _}, {:num, n, _, _} | rest] ->
          {-n, rest}

        [{:punct, "$", _, _} | _] ->
          case variable(ts) do
            {n, rest} when is_integer(n) -> {n, rest}
            {s, rest} when is_binary(s) -> {prio_name(hd(ts), s, family), rest}
            _ -> fail(hd(ts), "a priority variable must be a number or a priority name")
          end

        [{:str, name, _, _} = t | rest] ->
          {prio_name(t, name, family), rest}

        [{:qstr, name, _, _} = t | rest] ->
          {prio_name(t, name, family), rest}

        [t | _] ->
          unexpected(t, "a priority (a number or raw, mangle, dstnat, filter, security, srcnat)")
      end

    case rest do
      [{:punct, op, _, _}, {:num, n, _, _} | rest] when op in ["+", "-"] ->
        {if(op == "+", do: base + n, else: base - n), rest}

      _ ->
        {base, rest}
    end
  end

  defp prio_name(tok, name, family) do
    table = if family == "bridge", do: @bridge_prio, else: @std_prio

    case Integer.parse(name) do
      {n, ""} ->
        n

      _ ->
        case Map.fetch(table, name) do
          {:ok, n} -> n
          :error -> fail(tok, "'#{name}' is not a valid priority in this family (#{Enum.join(Map.keys(table), ", ")}, or a number)")
        end
    end
  end

  # ---------------------------------------------------------------------
  # set / map block

  defp set_block(kind, s, ts), do: set_items(kind, s, ts)

  defp set_items(kind, s, ts) do
    case skip_sep(ts) do
      [{:punct, "}", _, _} | rest] ->
        {s, rest}

      [{:str, "type", _, _} | rest] ->
        {key, rest} = dtype(rest)
        s = Map.put(s, :type, key)

        {s, rest} =
          case rest do
            [{:punct, ":", _, _} | rest] ->
              {data, rest} = map_dtype(rest)
              {Map.put(s, :map, data), rest}

            _ ->
              {s, rest}
          end

        set_items(kind, s, after_line(rest))

      [{:str, "typeof", _, _} | rest] ->
        {key, rest} = concat_expr(rest, :lhs)
        s = s |> Map.put(:type, typeof_type(key)) |> Map.put(:typeof, %{key: key})

        {s, rest} =
          case rest do
            [{:punct, ":", _, _}, {:str, "verdict", _, _} | rest] ->
              {Map.put(s, :map, "verdict"), rest}

            [{:punct, ":", _, _} | rest] ->
              rest = if word?(rest, "interval"), do: tl(rest), else: rest
              {data, rest} = concat_expr(rest, :lhs)
              {s |> Map.put(:map, typeof_type(data)) |> put_in([:typeof, :data], data), rest}

            _ ->
              {s, rest}
          end

        set_items(kind, s, after_line(rest))

      [{:str, "flags", _, _} | rest] ->
        {flags, rest} = word_list(rest, "a set flag (constant, interval, timeout, dynamic)")
        # nft 1.0.6's JSON has no flag dynamic; the port's JSON says "dynamic": true
        {dyn, flags} = Enum.split_with(flags, &(&1 == "dynamic"))
        s = if dyn != [], do: Map.put(s, :dynamic, true), else: s
        s = if flags != [], do: Map.put(s, :flags, flags), else: s
        set_items(kind, s, after_line(rest))

      [{:str, "timeout", _, _} | rest] ->
        {secs, rest} = time_value(rest)
        set_items(kind, Map.put(s, :timeout, secs), after_line(rest))

      [{:str, "gc-interval", _, _} | rest] ->
        {secs, rest} = time_value(rest)
        set_items(kind, Map.put(s, :"gc-interval", secs), after_line(rest))

      [{:str, "size", _, _} | rest] ->
        {n, rest} = number(rest, "a set size")
        set_items(kind, Map.put(s, :size, n), after_line(rest))

      [{:str, "policy", _, _} | rest] ->
        {p, rest} = identifier(rest, "a set policy (performance, memory)")
        set_items(kind, Map.put(s, :policy, p), after_line(rest))

      [{:str, "auto-merge", _, _} | rest] ->
        set_items(kind, Map.put(s, :"auto-merge", true), after_line(rest))

      [{:str, "comment", _, _} | rest] ->
        {c, rest} = identifier(rest, "a comment string")
        set_items(kind, Map.put(s, :comment, c), after_line(rest))

      [{:str, "elements", _, _} | rest] ->
        rest = expect_punct(rest, "=")

        {elems, rest} =
          case rest do
            [{:punct, "$", _, _} | _] ->
              case variable(rest) do
                {%{set: e}, rest} -> {e, rest}
                {v, rest} -> {List.wrap(v), rest}
              end

            _ ->
              {%{set: e}, rest} = set_literal(rest)
              {e, rest}
          end

        set_items(kind, Map.put(s, :elem, elems), after_line(rest))

      [{:str, w, _, _} | _] = ts when w in ["counter", "limit", "quota"] ->
        {stmts, rest} = set_stmts(ts, [])
        set_items(kind, Map.update(s, :stmt, stmts, &(&1 ++ stmts)), after_line(rest))

      [tok | _] ->
        unexpected(tok, "type, typeof, flags, timeout, gc-interval, size, policy, elements, counter, comment or '}'")
    end
  end

  defp dtype(ts) do
    {t, rest} = identifier(ts, "a data type")

    case rest do
      [{:punct, ".", _, _} | rest] ->
        {more, rest} = dtype(rest)
        {[t | List.wrap(more)], rest}

      _ ->
        {t, rest}
    end
  end

  defp map_dtype(ts) do
    case ts do
      [{:str, "interval", _, _} | rest] -> dtype(rest)
      _ -> dtype(ts)
    end
  end

  # typeof: JSON 1.0.6 has only datatype names; the common expressions map to theirs.
  @typeof_types %{
    {"ip", "saddr"} => "ipv4_addr", {"ip", "daddr"} => "ipv4_addr",
    {"ip6", "saddr"} => "ipv6_addr", {"ip6", "daddr"} => "ipv6_addr",
    {"ether", "saddr"} => "ether_addr", {"ether", "daddr"} => "ether_addr",
    {"ip", "protocol"} => "inet_proto", {"ip6", "nexthdr"} => "inet_proto",
    {"ether", "type"} => "ether_type", {"vlan", "id"} => "integer"
  }
  @typeof_meta %{"iifname" => "ifname", "oifname" => "ifname", "mark" => "mark", "l4proto" => "inet_proto",
                 "nfproto" => "nf_proto", "iif" => "iface_index", "oif" => "iface_index",
                 "protocol" => "ether_type", "skuid" => "uid", "skgid" => "gid", "cpu" => "integer"}
  @typeof_ct %{"state" => "ct_state", "mark" => "mark", "status" => "ct_status", "zone" => "integer"}

  defp typeof_type(%{concat: parts}), do: Enum.map(parts, &typeof_type/1)

  defp typeof_type(e) do
    case e do
      %{payload: %{protocol: p, field: f}} when f in ["sport", "dport"] and p in ~w(tcp udp th sctp dccp udplite) -> "inet_service"
      %{payload: %{protocol: p, field: f}} -> Map.get(@typeof_types, {p, f}, "integer")
      %{meta: %{key: k}} -> Map.get(@typeof_meta, k, "integer")
      %{ct: %{key: k}} -> Map.get(@typeof_ct, k, "integer")
      %{osf: _} -> "string"
      _ -> "integer"
    end
  end

  defp time_value([{:str, s, _, _} = t | rest]) do
    case parse_time(s) do
      {:ok, secs} -> {secs, rest}
      :error -> fail(t, "'#{s}' is not a time value (e.g. 30s, 1h30m)")
    end
  end

  defp time_value([{:num, n, _, _} | rest]), do: {n, rest}
  defp time_value([{:qstr, s, _, _} = t | rest]), do: time_value([{:str, s, elem(t, 2), elem(t, 3)} | rest])
  defp time_value([t | _]), do: unexpected(t, "a time value (e.g. 30s, 1h30m)")

  @time_units %{"d" => 86_400_000, "h" => 3_600_000, "m" => 60_000, "s" => 1000, "ms" => 1}

  defp parse_time(s) do
    case Regex.scan(~r/([0-9]+)(ms|d|h|m|s)/, s) do
      [] ->
        :error

      parts ->
        if Enum.map_join(parts, &hd/1) == s do
          ms = Enum.reduce(parts, 0, fn [_, n, u], acc -> acc + String.to_integer(n) * @time_units[u] end)
          {:ok, div(ms, 1000)}
        else
          :error
        end
    end
  end

  # ---------------------------------------------------------------------
  # flowtable and object blocks

  defp flowtable_block(f, ts) do
    case skip_sep(ts) do
      [{:punct, "}", _, _} | rest] ->
        {f, rest}

      [{:str, "hook", _, _} | rest] ->
        {hook, rest} = identifier(rest, "a hook name")
        rest = expect_word(rest, "priority")
        {prio, rest} = priority(rest, f.family, hook)
        flowtable_block(Map.merge(f, %{hook: hook, prio: prio}), after_line(rest))

      [{:str, "devices", _, _} | rest] ->
        rest = expect_punct(rest, "=")
        {devs, rest} = device_list(rest)
        flowtable_block(Map.put(f, :dev, single(devs)), after_line(rest))

      [{:str, "flags", _, _} | rest] ->
        {flags, rest} = word_list(rest, "a flowtable flag (offload)")
        flowtable_block(Map.put(f, :flags, flags), after_line(rest))

      [{:str, "counter", _, _} | rest] ->
        flowtable_block(Map.put(f, :counter, true), after_line(rest))

      [t | _] ->
        unexpected(t, "hook, devices, flags, counter or '}'")
    end
  end

  defp obj_block(kind, o, ts) do
    case skip_sep(ts) do
      [{:punct, "}", _, _} | rest] ->
        {o, rest}

      [{:str, "comment", _, _} | rest] ->
        {c, rest} = identifier(rest, "a comment string")
        obj_block(kind, Map.put(o, :comment, c), after_line(rest))

      ts ->
        {o, rest} = obj_line(kind, o, ts)
        obj_block(kind, o, after_line(rest))
    end
  end

  defp obj_line(:counter, o, ts) do
    {c, rest} = counter_args(ts)
    {Map.merge(o, c || %{}), rest}
  end

  defp obj_line(:quota, o, ts) do
    {q, rest} = quota_args(ts)
    {Map.merge(o, quota_obj(q)), rest}
  end

  defp obj_line(:limit, o, ts) do
    rest = expect_word(ts, "rate")
    {l, rest} = limit_args(rest)
    {Map.merge(o, l), rest}
  end

  defp obj_line(:secmark, o, ts) do
    {c, rest} = identifier(ts, "a security context string")
    {Map.put(o, :context, c), rest}
  end

  defp obj_line(:synproxy, o, ts) do
    {s, rest} = synproxy_args(ts, %{})
    {Map.merge(o, s), rest}
  end

  defp obj_line(:"ct helper", o, ts) do
    case ts do
      [{:str, "type", _, _} | rest] ->
        {type, rest} = identifier(rest, "a helper type string")
        rest = expect_word(rest, "protocol")
        {proto, rest} = identifier(rest, "tcp or udp")
        {Map.merge(o, %{type: type, protocol: proto}), rest}

      [{:str, "l3proto", _, _} | rest] ->
        {p, rest} = identifier(rest, "ip, ip6 or inet")
        {Map.put(o, :l3proto, p), rest}

      [t | _] ->
        unexpected(t, "type, l3proto or comment")
    end
  end

  defp obj_line(:"ct timeout", o, ts) do
    case ts do
      [{:str, "protocol", _, _} | rest] ->
        {p, rest} = identifier(rest, "tcp or udp")
        {Map.put(o, :protocol, p), rest}

      [{:str, "l3proto", _, _} | rest] ->
        {p, rest} = identifier(rest, "ip or ip6")
        {Map.put(o, :l3proto, p), rest}

      [{:str, "policy", _, _} | rest] ->
        rest = expect_punct(rest, "=")
        rest = expect_punct(rest, "{")
        {pol, rest} = timeout_policy(skip_nl(rest), %{})
        {Map.put(o, :policy, pol), rest}

      [t | _] ->
        unexpected(t, "protocol, l3proto, policy or comment")
    end
  end

  defp obj_line(:"ct expectation", o, ts) do
    case ts do
      [{:str, "protocol", _, _} | rest] ->
        {p, rest} = identifier(rest, "tcp or udp")
        {Map.put(o, :protocol, p), rest}

      [{:str, "l3proto", _, _} | rest] ->
        {p, rest} = identifier(rest, "ip or ip6")
        {Map.put(o, :l3proto, p), rest}

      [{:str, "dport", _, _} | rest] ->
        {p, rest} = number(rest, "a port")
        {Map.put(o, :dport, p), rest}

      [{:str, "timeout", _, _} | rest] ->
        {t, rest} = time_ms(rest)
        {Map.put(o, :timeout, t), rest}

      [{:str, "size", _, _} | rest] ->
        {n, rest} = number(rest, "a size")
        {Map.put(o, :size, n), rest}

      [t | _] ->
        unexpected(t, "protocol, l3proto, dport, timeout, size or comment")
    end
  end

  defp time_ms([{:num, n, _, _} | rest]), do: {n, rest}

  defp time_ms([{:str, s, _, _} = t | rest]) do
    case Regex.scan(~r/([0-9]+)(ms|d|h|m|s)/, s) do
      [] -> fail(t, "'#{s}' is not a time value")
      parts -> {Enum.reduce(parts, 0, fn [_, n, u], acc -> acc + String.to_integer(n) * @time_units[u] end), rest}
    end
  end

  defp time_ms([t | _]), do: unexpected(t, "a time value")

  defp timeout_policy([{:punct, "}", _, _} | rest], acc), do: {acc, rest}

  defp timeout_policy(ts, acc) do
    {state, rest} = identifier(ts, "a conntrack state name")
    rest = expect_punct(rest, ":")
    {secs, rest} = time_value(rest)
    acc = Map.put(acc, String.to_atom(state), secs)

    case skip_nl(rest) do
      [{:punct, ",", _, _} | rest] -> timeout_policy(skip_nl(rest), acc)
      [{:punct, "}", _, _} | _] = rest -> timeout_policy(rest, acc)
      [t | _] -> unexpected(t, "',' or '}'")
    end
  end

  # ---------------------------------------------------------------------
  # rules

  defp rule_body(ts) do
    {stmts, comment, rest} = stmts(ts, [], nil)

    if stmts == [] and comment == nil do
      unexpected(hd(rest), "a rule statement")
    end

    {stmts, comment, rest}
  end

  defp stmts(ts, acc, comment) do
    if terminator?(ts) do
      {Enum.reverse(acc), comment, ts}
    else
      case ts do
        [{:str, "comment", _, _} | rest] ->
          {c, rest} = identifier(rest, "a comment string")
          stmts(rest, acc, c)

        _ ->
          {s, rest} = stmt(ts)
          stmts(rest, [s | acc], comment)
      end
    end
  end

  @verdicts ~w(accept drop continue return)

  defp stmt([{:str, v, _, _} | rest]) when v in @verdicts, do: {%{String.to_atom(v) => nil}, rest}

  defp stmt([{:str, v, _, _} | rest]) when v in ["jump", "goto"] do
    {target, rest} = identifier(rest, "a chain name")
    {%{String.to_atom(v) => %{target: target}}, rest}
  end

  defp stmt([{:str, "counter", _, _} | rest]) do
    case rest do
      [{:str, "name", _, _} | rest] ->
        {ref, rest} = objref_expr(rest)
        {%{counter: ref}, rest}

      _ ->
        {c, rest} = counter_args(rest)
        {%{counter: c}, rest}
    end
  end

  defp stmt([{:str, "log", _, _} | rest]) do
    {opts, rest} = log_args(rest, %{})
    {%{log: if(opts == %{}, do: nil, else: opts)}, rest}
  end

  defp stmt([{:str, "limit", _, _} | rest]) do
    case rest do
      [{:str, "name", _, _} | rest] ->
        {ref, rest} = objref_expr(rest)
        {%{limit: ref}, rest}

      _ ->
        rest = expect_word(rest, "rate")
        {l, rest} = limit_args(rest)
        {%{limit: l}, rest}
    end
  end

  defp stmt([{:str, "quota", _, _} | rest]) do
    case rest do
      [{:str, "name", _, _} | rest] ->
        {ref, rest} = objref_expr(rest)
        {%{quota: ref}, rest}

      _ ->
        {q, rest} = quota_args(rest)
        {%{quota: q}, rest}
    end
  end

  defp stmt([{:str, "ct", _, _}, {:str, k, _, _}, {:str, "set", _, _} | rest]) when k in ["helper", "timeout", "expectation"] do
    {v, rest} = value_expr(rest)
    {%{:"ct #{k}" => v}, rest}
  end

  defp stmt([{:str, "ct", _, _}, {:str, "count", _, _} | rest]) do
    {inv, rest} = if word?(rest, "over"), do: {true, tl(rest)}, else: {false, rest}
    {n, rest} = number(rest, "a connection count")
    c = %{val: n}
    {%{"ct count": if(inv, do: Map.put(c, :inv, true), else: c)}, rest}
  end

  defp stmt([{:str, "notrack", _, _} | rest]), do: {%{notrack: nil}, rest}

  defp stmt([{:str, nat, _, _} | rest]) when nat in ["snat", "dnat"] do
    {fam, rest} =
      case rest do
        [{:str, f, _, _} | rest2] when f in ["ip", "ip6"] ->
          if word?(rest2, "to") or word?(rest2, "addr"), do: {f, rest2}, else: {nil, rest}

        _ ->
          {nil, rest}
      end

    rest = if word?(rest, "to"), do: tl(rest), else: rest
    {args, rest} = nat_target(rest, %{})
    args = if fam, do: Map.put(args, :family, fam), else: args
    {flags, rest} = nat_flags(rest)
    args = if flags != [], do: Map.put(args, :flags, single(flags)), else: args
    {%{String.to_atom(nat) => args}, rest}
  end

  defp stmt([{:str, nat, _, _} | rest]) when nat in ["masquerade", "redirect"] do
    {args, rest} =
      case rest do
        [{:str, "to", _, _} | rest] ->
          rest = if punct?(rest, ":"), do: tl(rest), else: rest
          {p, rest} = port_value(rest)
          {%{port: p}, rest}

        [{:punct, ":", _, _} | rest] ->
          {p, rest} = port_value(rest)
          {%{port: p}, rest}

        _ ->
          {%{}, rest}
      end

    {flags, rest} = nat_flags(rest)
    args = if flags != [], do: Map.put(args, :flags, single(flags)), else: args
    {%{String.to_atom(nat) => if(args == %{}, do: nil, else: args)}, rest}
  end

  defp stmt([{:str, "reject", _, _} | rest]) do
    case rest do
      [{:str, "with", _, _}, {:str, "tcp", _, _}, {:str, "reset", _, _} | rest] ->
        {%{reject: %{type: "tcp reset"}}, rest}

      [{:str, "with", _, _}, {:str, t, _, _} | rest] when t in ["icmp", "icmpv6", "icmpx"] ->
        rest = if word?(rest, "type"), do: tl(rest), else: rest
        {code, rest} = const_value(rest)
        {%{reject: %{type: t, expr: code}}, rest}

      [{:str, "with", _, _}, t | _] ->
        unexpected(t, "icmp, icmpv6, icmpx or tcp reset")

      _ ->
        {%{reject: nil}, rest}
    end
  end

  defp stmt([{:str, "dup", _, _} | rest]) do
    rest = if word?(rest, "ip") or word?(rest, "ip6"), do: tl(rest), else: rest
    rest = expect_word(rest, "to")

    case rest do
      [{:str, "device", _, _} | rest] ->
        {d, rest} = value_expr(rest)
        {%{dup: %{dev: d}}, rest}

      _ ->
        {a, rest} = value_expr(rest)

        case rest do
          [{:str, "device", _, _} | rest] ->
            {d, rest} = value_expr(rest)
            {%{dup: %{addr: a, dev: d}}, rest}

          _ ->
            {%{dup: %{addr: a}}, rest}
        end
    end
  end

  defp stmt([{:str, "fwd", _, _} | rest]) do
    {fam, rest} =
      case rest do
        [{:str, f, _, _} | rest] when f in ["ip", "ip6"] -> {f, rest}
        _ -> {nil, rest}
      end

    rest = expect_word(rest, "to")
    {a, rest} = value_expr(rest)

    case rest do
      [{:str, "device", _, _} | rest] ->
        {d, rest} = value_expr(rest)
        f = %{addr: a, dev: d}
        {%{fwd: if(fam, do: Map.put(f, :family, fam), else: f)}, rest}

      _ ->
        {%{fwd: %{dev: a}}, rest}
    end
  end

  defp stmt([{:str, "queue", _, _} | rest]) do
    {q, rest} = queue_args(rest, %{})
    {%{queue: if(q == %{}, do: nil, else: q)}, rest}
  end

  defp stmt([{:str, op, _, _}, {:punct, "@", _, _} | _] = ts) when op in ["add", "update", "delete"] do
    [_ | rest] = ts
    {name, rest} = set_ref(rest)
    rest = expect_punct(rest, "{")
    {key, rest} = concat_expr(rest, :value)
    {elem_opts, rest} = elem_options(rest, %{})
    {stmts0, elem_opts} = Map.pop(elem_opts, :stmt, [])
    key = if elem_opts == %{}, do: key, else: %{elem: Map.put(elem_opts, :val, key)}

    {data, rest} =
      case rest do
        [{:punct, ":", _, _} | rest] ->
          {d, rest} = value_expr(rest)
          {d, rest}

        _ ->
          {nil, rest}
      end

    {stmts, rest} = set_stmts(rest, [])
    stmts = stmts0 ++ stmts
    rest = expect_punct(rest, "}")

    s =
      if data != nil,
        do: %{map: %{op: op, elem: key, data: data, map: "@" <> name}},
        else: %{set: %{op: op, elem: key, set: "@" <> name}}

    s = if stmts != [], do: update_in(s, [Enum.at(Map.keys(s), 0)], &Map.put(&1, :stmt, stmts)), else: s
    {s, rest}
  end

  defp stmt([{:str, "meter", _, _} | rest]) do
    {name, rest} = identifier(rest, "a meter name")

    {size, rest} =
      case rest do
        [{:str, "size", _, _} | rest] -> number(rest, "a meter size")
        _ -> {nil, rest}
      end

    rest = expect_punct(rest, "{")
    {key, rest} = concat_expr(rest, :value)
    {elem_opts, rest} = elem_options(rest, %{})
    {stmts0, elem_opts} = Map.pop(elem_opts, :stmt, [])
    key = if elem_opts == %{}, do: key, else: %{elem: Map.put(elem_opts, :val, key)}
    {stmts, rest} = set_stmts(rest, [])
    st = List.first(stmts0 ++ stmts)
    rest = expect_punct(rest, "}")
    m = %{name: name, key: key, stmt: st}
    {%{meter: if(size, do: Map.put(m, :size, size), else: m)}, rest}
  end

  defp stmt([{:str, "flow", _, _} | rest]) do
    rest =
      case rest do
        [{:str, w, _, _} | rest] when w in ["add", "offload"] -> rest
        [t | _] -> unexpected(t, "'add'")
      end

    {name, rest} = set_ref(rest)
    {%{flow: %{op: "add", flowtable: "@" <> name}}, rest}
  end

  defp stmt([{:str, "tproxy", _, _} | rest]) do
    {fam, rest} =
      case rest do
        [{:str, f, _, _} | rest] when f in ["ip", "ip6"] -> {f, rest}
        _ -> {nil, rest}
      end

    rest = expect_word(rest, "to")
    {args, rest} = nat_target(rest, %{})
    args = if fam, do: Map.put(args, :family, fam), else: args
    {%{tproxy: args}, rest}
  end

  defp stmt([{:str, "synproxy", _, _} | rest]) do
    case rest do
      [{:str, "name", _, _} | rest] ->
        {ref, rest} = objref_expr(rest)
        {%{synproxy: ref}, rest}

      _ ->
        {s, rest} = synproxy_args(rest, %{})
        {%{synproxy: if(s == %{}, do: nil, else: s)}, rest}
    end
  end

  defp stmt([{:str, "xt", _, _} = t | _]), do: fail(t, "xt statements (iptables-nft compat) cannot be written in a script")

  defp stmt(ts), do: match_stmt(ts)

  defp set_ref([{:punct, "@", _, _}, {kind, name, _, _} | rest]) when kind in [:str, :qstr], do: {name, rest}
  defp set_ref([{:punct, "@", _, _}, t | _]), do: unexpected(t, "a set name after '@'")
  defp set_ref([t | _]), do: unexpected(t, "'@' and a name")

  defp set_stmts(ts, acc) do
    case ts do
      [{:str, w, _, _} | _] when w in ["counter", "limit", "quota", "log", "ct", "connlimit"] ->
        {s, rest} = stmt(ts)
        set_stmts(rest, [s | acc])

      _ ->
        {Enum.reverse(acc), ts}
    end
  end

  defp objref_expr(ts) do
    case ts do
      [{:qstr, n, _, _} | rest] -> {n, rest}
      [{:punct, "$", _, _} | _] -> variable(ts)
      [{:str, _, _, _} | _] -> value_expr(ts)
      [t | _] -> unexpected(t, "an object name")
    end
  end

  defp counter_args(ts) do
    case ts do
      [{:str, "packets", _, _} | rest] ->
        {p, rest} = number(rest, "a packet count")
        rest = expect_word(rest, "bytes")
        {b, rest} = number(rest, "a byte count")
        {%{packets: p, bytes: b}, rest}

      _ ->
        {nil, ts}
    end
  end

  @log_levels ~w(emerg alert crit err warn notice info debug audit)

  defp log_args(ts, acc) do
    case ts do
      [{:str, "prefix", _, _} | rest] ->
        {p, rest} =
          case rest do
            [{:qstr, p, _, _} | rest] -> {p, rest}
            [{:punct, "$", _, _} | _] -> identifier(rest, "a prefix string")
            [{:str, p, _, _} | rest] -> {p, rest}
            [t | _] -> unexpected(t, "a prefix string")
          end

        log_args(rest, Map.put(acc, :prefix, p))

      [{:str, "level", _, _} | rest] ->
        case rest do
          [{:str, l, _, _} | rest] when l in @log_levels -> log_args(rest, Map.put(acc, :level, l))
          [{:qstr, l, _, _} | rest] when l in @log_levels -> log_args(rest, Map.put(acc, :level, l))
          [t | _] -> unexpected(t, "a log level (#{Enum.join(@log_levels, ", ")})")
        end

      [{:str, k, _, _} | rest] when k in ["group", "snaplen", "queue-threshold"] ->
        {n, rest} = number(rest, "a number")
        log_args(rest, Map.put(acc, String.to_atom(k), n))

      [{:str, "flags", _, _} | rest] ->
        {flags, rest} = log_flags(rest, [])
        log_args(rest, Map.update(acc, :flags, flags, &(&1 ++ flags)))

      _ ->
        {acc, ts}
    end
  end

  defp log_flags(ts, acc) do
    {flag, rest} =
      case ts do
        [{:str, "tcp", _, _}, {:str, f, _, _} | rest] when f in ["sequence", "options"] ->
          {more, rest} = log_more(rest, ["tcp " <> f], "tcp")
          {more, rest}

        [{:str, "ip", _, _}, {:str, "options", _, _} | rest] ->
          {["ip options"], rest}

        [{:str, f, _, _} | rest] when f in ["skuid", "ether", "all"] ->
          {[f], rest}

        [t | _] ->
          unexpected(t, "a log flag (tcp sequence, tcp options, ip options, skuid, ether, all)")
      end

    case rest do
      [{:punct, ",", _, _} | rest] -> log_flags(rest, acc ++ flag)
      _ -> {acc ++ flag, rest}
    end
  end

  # `tcp sequence,options`
  defp log_more([{:punct, ",", _, _}, {:str, f, _, _} | rest], acc, p) when f in ["sequence", "options"],
    do: log_more(rest, acc ++ [p <> " " <> f], p)

  defp log_more(ts, acc, _p), do: {acc, ts}

  @rate_units ~w(bytes kbytes mbytes)
  @time_unit_words ~w(second minute hour day week)

  defp limit_args(ts) do
    {inv, rest} = if word?(ts, "over"), do: {true, tl(ts)}, else: {false, ts}
    {rate, rest} = number(rest, "a rate")

    {unit, rest} =
      case rest do
        [{:str, u, _, _} | rest] when u in @rate_units -> {u, rest}
        _ -> {"packets", rest}
      end

    rest = expect_punct(rest, "/")

    {per, rest} =
      case rest do
        [{:str, p, _, _} | rest] when p in @time_unit_words -> {p, rest}
        [t | _] -> unexpected(t, "a time unit (second, minute, hour, day, week)")
      end

    l = %{rate: rate, per: per}
    l = if unit != "packets", do: Map.put(l, :rate_unit, unit), else: l
    l = if inv, do: Map.put(l, :inv, true), else: l

    case rest do
      [{:str, "burst", _, _} | rest] ->
        {b, rest} = number(rest, "a burst")

        case rest do
          [{:str, u, _, _} | rest] when u in @rate_units ->
            {l |> Map.put(:burst, b) |> Map.put(:burst_unit, u), rest}

          [{:str, "packets", _, _} | rest] ->
            {Map.put(l, :burst, b), rest}

          _ ->
            {Map.put(l, :burst, b), rest}
        end

      _ ->
        {l, rest}
    end
  end

  defp quota_args(ts) do
    {inv, rest} =
      case ts do
        [{:str, "over", _, _} | rest] -> {true, rest}
        [{:str, "until", _, _} | rest] -> {false, rest}
        _ -> {false, ts}
      end

    {val, rest} = number(rest, "a quota")
    {unit, rest} = byte_unit(rest)
    q = %{val: val, val_unit: unit}
    q = if inv, do: Map.put(q, :inv, true), else: q

    case rest do
      [{:str, "used", _, _} | rest] ->
        {u, rest} = number(rest, "a used amount")
        {uu, rest} = byte_unit(rest)
        {q |> Map.put(:used, u) |> Map.put(:used_unit, uu), rest}

      _ ->
        {q, rest}
    end
  end

  @byte_mult %{"bytes" => 1, "kbytes" => 1024, "mbytes" => 1024 * 1024}

  defp quota_obj(q) do
    o = %{bytes: q.val * @byte_mult[q.val_unit]}
    o = if q[:inv], do: Map.put(o, :inv, true), else: o
    if q[:used], do: Map.put(o, :used, q.used * @byte_mult[q.used_unit]), else: o
  end

  defp byte_unit([{:str, u, _, _} | rest]) when u in @rate_units, do: {u, rest}
  defp byte_unit([t | _]), do: unexpected(t, "a byte unit (bytes, kbytes, mbytes)")

  defp synproxy_args(ts, acc) do
    case ts do
      [{:str, "mss", _, _} | rest] ->
        {n, rest} = number(rest, "an mss")
        synproxy_args(rest, Map.put(acc, :mss, n))

      [{:str, "wscale", _, _} | rest] ->
        {n, rest} = number(rest, "a window scale")
        synproxy_args(rest, Map.put(acc, :wscale, n))

      [{:str, f, _, _} | rest] when f in ["timestamp", "sack-perm"] ->
        synproxy_args(rest, Map.update(acc, :flags, [f], &(&1 ++ [f])))

      _ ->
        {acc, ts}
    end
  end

  defp queue_args(ts, acc) do
    case ts do
      [{:str, "num", _, _} | rest] ->
        {n, rest} = queue_num(rest)
        queue_args(rest, Map.put(acc, :num, n))

      [{:str, "to", _, _} | rest] ->
        {n, rest} = queue_num(rest)
        queue_args(rest, Map.put(acc, :num, n))

      [{:str, "flags", _, _} | rest] ->
        {flags, rest} = word_list(rest, "a queue flag (bypass, fanout)")
        queue_args(rest, Map.update(acc, :flags, flags, &(&1 ++ flags)))

      [{:str, f, _, _} | rest] when f in ["bypass", "fanout"] ->
        queue_args(rest, Map.update(acc, :flags, [f], &(&1 ++ [f])))

      [{:punct, ",", _, _}, {:str, f, _, _} | rest] when f in ["bypass", "fanout"] ->
        queue_args(rest, Map.update(acc, :flags, [f], &(&1 ++ [f])))

      _ ->
        acc = if is_list(acc[:flags]), do: Map.put(acc, :flags, single(acc.flags)), else: acc
        {acc, ts}
    end
  end

  defp queue_num(ts) do
    case ts do
      [{:num, a, _, _}, {:punct, "-", _, _}, {:num, b, _, _} | rest] -> {%{range: [a, b]}, rest}
      _ -> value_expr(ts)
    end
  end

  # addr[:port] for snat/dnat/tproxy; either may be an expression or a map.
  defp nat_target(ts, acc) do
    case ts do
      [{:punct, ":", _, _} | rest] ->
        {p, rest} = port_value(rest)
        {Map.put(acc, :port, p), rest}

      _ ->
        {a, rest} = nat_addr(ts)
        acc = Map.put(acc, :addr, a)

        case rest do
          [{:punct, ":", _, _} | rest] ->
            {p, rest} = port_value(rest)
            {Map.put(acc, :port, p), rest}

          _ ->
            {acc, rest}
        end
    end
  end

  defp nat_addr(ts), do: value_expr(ts)

  defp port_value(ts) do
    {p, rest} = multiton(ts, :value)

    case rest do
      [{:str, "map", _, _} | rest] ->
        {d, rest} = rhs_primary(rest, :rhs)
        {%{map: %{key: p, data: d}}, rest}

      _ ->
        {p, rest}
    end
  end

  defp nat_flags(ts) do
    case ts do
      [{:str, f, _, _} | rest] when f in ["persistent", "random", "fully-random", "netmap"] ->
        case rest do
          [{:punct, ",", _, _} | rest] ->
            {more, rest} = nat_flags(rest)
            {[f | more], rest}

          _ ->
            {more, rest} = nat_flags(rest)
            {[f | more], rest}
        end

      _ ->
        {[], ts}
    end
  end

  # ---------------------------------------------------------------------
  # match / mangle / vmap statements

  @relops %{"==" => "==", "!=" => "!=", "<" => "<", ">" => ">", "<=" => "<=", ">=" => ">=",
            "eq" => "==", "ne" => "!=", "lt" => "<", "gt" => ">", "le" => "<=", "ge" => ">="}

  @stmt_words ~w(accept drop continue return jump goto counter log limit quota notrack snat dnat
                 masquerade redirect reject dup fwd queue meter flow tproxy synproxy comment)

  defp match_stmt(ts) do
    [first | _] = ts
    {lhs, rest} = concat_expr(ts, :lhs)

    case rest do
      [{:str, "set", _, _} | rest] ->
        {v, rest} = value_expr(rest)
        {%{mangle: %{key: lhs, value: v}}, rest}

      [{:str, "vmap", _, _} | rest] ->
        {d, rest} = rhs_primary(rest, :data)
        {%{vmap: %{key: lhs, data: d}}, rest}

      _ ->
        {lhs, rest} =
          case rest do
            [{:str, "map", _, _} | rest] ->
              {d, rest} = rhs_primary(rest, :rhs)
              {%{map: %{key: lhs, data: d}}, rest}

            _ ->
              {lhs, rest}
          end

        {op, rest} =
          case rest do
            [{:punct, p, _, _} | rest] when is_map_key(@relops, p) -> {@relops[p], rest}
            [{:str, p, _, _} | rest] when is_map_key(@relops, p) -> {@relops[p], rest}
            [{:punct, "!", _, _} | rest] -> {"!=", rest}
            _ -> {nil, rest}
          end

        if terminator?(rest) or (head_word(rest) in @stmt_words and op == nil) do
          fail(elem_pos(rest, first), "syntax error, #{describe_lhs(lhs)} needs a value to compare with")
        end

        {rhs, rest} = rhs_list(rest, :rhs)

        op =
          cond do
            op != nil -> op
            is_list(rhs) -> "in"
            bitmask?(lhs) and not is_map(rhs) -> "in"
            true -> "=="
          end

        {%{match: %{op: op, left: lhs, right: rhs}}, rest}
    end
  end

  defp elem_pos([t | _], _first), do: t

  defp describe_lhs(%{payload: %{protocol: p, field: f}}), do: "'#{p} #{f}'"
  defp describe_lhs(%{meta: %{key: k}}), do: "'meta #{k}'"
  defp describe_lhs(%{ct: %{key: k}}), do: "'ct #{k}'"
  defp describe_lhs(_), do: "the expression"

  defp bitmask?(%{ct: %{key: k}}) when k in ["state", "status", "event", "label"], do: true
  defp bitmask?(%{payload: %{protocol: "tcp", field: "flags"}}), do: true
  defp bitmask?(%{"&": _}), do: false
  defp bitmask?(_), do: false

  # rhs, possibly a comma list (nft's list_rhs_expr) -> a JSON array
  defp rhs_list(ts, ctx) do
    {first, rest} = concat_expr(ts, ctx)

    case rest do
      [{:punct, ",", _, _} | _] ->
        {items, rest} = more_list(rest, [first])
        {items, rest}

      _ ->
        {first, rest}
    end
  end

  defp more_list([{:punct, ",", _, _} | rest], acc) do
    {item, rest} = concat_expr(rest, :rhs)
    more_list(rest, [item | acc])
  end

  defp more_list(ts, acc), do: {acc |> Enum.reverse() |> Enum.flat_map(&List.wrap/1), ts}

  # A value expression (mangle values, nat addresses, ...): an
  # expression or a constant.
  defp value_expr(ts) do
    {v, rest} = concat_expr(ts, :value)

    case rest do
      [{:str, "map", _, _} | rest] ->
        {d, rest} = rhs_primary(rest, :rhs)
        {%{map: %{key: v, data: d}}, rest}

      _ ->
        {v, rest}
    end
  end

  defp const_value(ts), do: rhs_primary(ts, :rhs)

  # ---------------------------------------------------------------------
  # expressions

  defp concat_expr(ts, ctx) do
    {first, rest} = multiton(ts, ctx)
    concat_more(rest, ctx, [first])
  end

  defp concat_more([{:punct, ".", _, _} | rest], ctx, acc) do
    {next, rest} = multiton(rest, ctx)
    concat_more(rest, ctx, [next | acc])
  end

  defp concat_more(ts, _ctx, [one]), do: {one, ts}

  defp concat_more(ts, _ctx, acc) do
    parts = acc |> Enum.reverse() |> Enum.flat_map(fn %{concat: p} -> p; x -> [x] end)
    {%{concat: parts}, ts}
  end

  # basic [- basic | / len] (ranges and prefixes are for values only)
  defp multiton(ts, ctx) do
    {a, rest} = or_expr(ts, ctx)

    case rest do
      [{:punct, "-", _, _} | rest] when ctx != :lhs ->
        {b, rest} = or_expr(rest, ctx)
        {%{range: [a, b]}, rest}

      [{:punct, "/", _, _} | rest] when ctx != :lhs ->
        {n, rest} = number(rest, "a prefix length")
        {%{prefix: %{addr: a, len: n}}, rest}

      _ ->
        {a, rest}
    end
  end

  defp or_expr(ts, ctx), do: binop(ts, ctx, ["|"], &xor_expr/2)
  defp xor_expr(ts, ctx), do: binop(ts, ctx, ["^"], &and_expr/2)
  defp and_expr(ts, ctx), do: binop(ts, ctx, ["&"], &shift_expr/2)
  defp shift_expr(ts, ctx), do: binop(ts, ctx, ["<<", ">>"], &primary/2)

  defp binop(ts, ctx, ops, next) do
    {a, rest} = next.(ts, ctx)
    binop_more(rest, ctx, ops, next, a)
  end

  defp binop_more([{:punct, op, _, _} | rest] = ts, ctx, ops, next, a) do
    if op in ops do
      # the operand of a binop in a match is a value
      {b, rest} = next.(rest, if(ctx == :lhs, do: :rhs, else: ctx))
      binop_more(rest, ctx, ops, next, %{String.to_atom(op) => [a, b]})
    else
      {a, ts}
    end
  end

  defp binop_more(ts, _ctx, _ops, _next, a), do: {a, ts}

  defp primary(ts, :lhs) do
    case keyword_expr(ts) do
      nil ->
        case ts do
          [{:punct, "(", _, _} | rest] ->
            {e, rest} = concat_expr(rest, :lhs)
            {e, expect_punct(rest, ")")}

          [{:punct, "$", _, _} | _] ->
            variable(ts)

          [t | _] ->
            unexpected(t, "a statement or a match expression (ip, tcp, meta, ct, ...)")
        end

      found ->
        found
    end
  end

  defp primary(ts, :value) do
    case keyword_expr(ts) do
      nil -> rhs_primary(ts, :value)
      found -> found
    end
  end

  defp primary(ts, ctx), do: rhs_primary(ts, ctx)

  # constants, sets, references
  defp rhs_primary(ts, ctx) do
    case ts do
      [{:num, n, _, _} | rest] ->
        {n, rest}

      [{:qstr, s, _, _} | rest] ->
        {s, rest}

      [{:str, v, _, _} | rest] when ctx == :data and v in @verdicts ->
        {%{String.to_atom(v) => nil}, rest}

      [{:str, v, _, _} | rest] when ctx == :data and v in ["jump", "goto"] ->
        {target, rest} = identifier(rest, "a chain name")
        {%{String.to_atom(v) => %{target: target}}, rest}

      [{:str, "exists", _, _} | rest] ->
        {true, rest}

      [{:str, "missing", _, _} | rest] ->
        {false, rest}

      [{:str, s, _, _} | rest] ->
        {s, rest}

      [{:punct, "$", _, _} | _] ->
        variable(ts)

      [{:punct, "@", _, _} | _] ->
        {name, rest} = set_ref(ts)
        {"@" <> name, rest}

      [{:punct, "{", _, _} | _] ->
        set_literal(ts, ctx)

      [{:punct, "(", _, _} | rest] ->
        {e, rest} = concat_expr(rest, ctx)
        {e, expect_punct(rest, ")")}

      [{:punct, "*", _, _} | rest] ->
        {"*", rest}

      [{:punct, "-", _, _}, {:num, n, _, _} | rest] ->
        {-n, rest}

      [t | _] ->
        unexpected(t, "a value")
    end
  end

  # { elem, elem : data, ... }
  defp set_literal(ts, ctx \\ :rhs) do
    rest = expect_punct(ts, "{")
    {elems, rest} = set_elems(skip_nl(rest), ctx, [])
    {%{set: elems}, rest}
  end

  defp set_elems([{:punct, "}", _, _} | rest], _ctx, acc), do: {Enum.reverse(acc), rest}

  defp set_elems(ts, ctx, acc) do
    {key, rest} = elem_key(ts)
    {opts, rest} = elem_options(rest, %{})

    {item, rest} =
      case rest do
        [{:punct, ":", _, _} | rest] ->
          {data, rest} = concat_expr(rest, :data)
          key = elem_with(key, opts)
          {[[key, data]], rest}

        _ ->
          case key do
            {:spliced, items} ->
              {items, rest}

            _ ->
              {[elem_with(key, opts)], rest}
          end
      end

    rest = skip_nl(rest)

    case rest do
      [{:punct, ",", _, _} | rest] -> set_elems(skip_nl(rest), ctx, Enum.reverse(item) ++ acc)
      [{:punct, "}", _, _} | _] -> set_elems(rest, ctx, Enum.reverse(item) ++ acc)
      [{:eof, _, _, _} = t | _] -> unexpected(t, "'}' to close the set")
      [t | _] -> unexpected(t, "',' or '}'")
    end
  end

  defp elem_with(key, opts) when opts == %{}, do: key

  defp elem_with(key, opts) do
    opts =
      case Map.pop(opts, :stmt) do
        {nil, o} -> o
        {[one], o} -> Map.merge(o, one)
        {many, o} -> Map.put(o, :stmt, many)
      end

    %{elem: Map.put(opts, :val, key)}
  end

  # A set element key; a variable holding a set is spliced in.
  defp elem_key([{:punct, "$", _, _} | _] = ts) do
    case variable(ts) do
      {%{set: items}, [next | _] = rest} when elem(next, 0) != :punct or elem(next, 1) != "." -> {{:spliced, items}, rest}
      {items, rest} when is_list(items) -> {{:spliced, items}, rest}
      {_v, _rest} -> concat_expr(ts, :rhs)
    end
  end

  defp elem_key([{:punct, "*", _, _} | rest]), do: {"*", rest}
  defp elem_key(ts), do: concat_expr(ts, :rhs)

  defp elem_options(ts, acc) do
    case ts do
      [{:str, "timeout", _, _} | rest] ->
        {s, rest} = time_value(rest)
        elem_options(rest, Map.put(acc, :timeout, s))

      [{:str, "expires", _, _} | rest] ->
        {s, rest} = time_value(rest)
        elem_options(rest, Map.put(acc, :expires, s))

      [{:str, "comment", _, _} | rest] ->
        {c, rest} = identifier(rest, "a comment string")
        elem_options(rest, Map.put(acc, :comment, c))

      [{:str, w, _, _} | _] when w in ["counter", "limit", "quota"] ->
        {s, rest} = stmt(ts)
        elem_options(rest, Map.update(acc, :stmt, [s], &(&1 ++ [s])))

      _ ->
        {acc, ts}
    end
  end

  # ---------------------------------------------------------------------
  # keyword expressions: payload, meta, ct, ...

  @payload_protos ~w(ether vlan arp ip icmp igmp ip6 icmpv6 ah esp comp udp udplite tcp dccp sctp th gre)
  @payload_fields %{
    "ether" => ~w(saddr daddr type),
    "vlan" => ~w(id cfi dei pcp type),
    "arp" => ~w(htype ptype hlen plen operation saddr daddr),
    "ip" => ~w(version hdrlength dscp ecn length id frag-off ttl protocol checksum saddr daddr),
    "icmp" => ~w(type code checksum id sequence gateway mtu),
    "igmp" => ~w(type mrt checksum group),
    "ip6" => ~w(version dscp ecn flowlabel length nexthdr hoplimit saddr daddr),
    "icmpv6" => ~w(type code checksum parameter-problem packet-too-big id sequence max-delay),
    "ah" => ~w(nexthdr hdrlength reserved spi sequence),
    "esp" => ~w(spi sequence),
    "comp" => ~w(nexthdr flags cpi),
    "udp" => ~w(sport dport length checksum),
    "udplite" => ~w(sport dport checksum),
    "tcp" => ~w(sport dport sequence ackseq doff reserved flags window checksum urgptr),
    "dccp" => ~w(sport dport type),
    "sctp" => ~w(sport dport vtag checksum),
    "th" => ~w(sport dport),
    "gre" => ~w(flags version protocol)
  }

  @meta_keys ~w(length protocol priority random secmark mark iif iifname iiftype oif oifname oiftype
                skuid skgid nftrace rtclassid ibrname obrname pkttype cpu iifgroup oifgroup cgroup
                secpath time day hour nfproto l4proto iifkind oifkind ibrpvid ibrvproto sdif sdifname
                broute)
  @meta_unqualified ~w(mark iif iifname iiftype oif oifname oiftype skuid skgid nftrace rtclassid
                       ibriport obriport ibrname obrname pkttype cpu iifgroup oifgroup cgroup)
  @meta_alias %{"ibriport" => "ibrname", "obriport" => "obrname", "ibridgename" => "ibrname",
                "obridgename" => "obrname", "ipsec" => "secpath"}

  @ct_keys ~w(state direction status mark expiration helper l3proto protocol saddr daddr proto-src
              proto-dst label bytes packets avgpkt zone event id secmark ip saddr)
  @ct_dir_keys ~w(saddr daddr proto-src proto-dst l3proto protocol bytes packets avgpkt zone ip ip6)

  @exthdrs %{
    "hbh" => ~w(nexthdr hdrlength),
    "rt" => ~w(nexthdr hdrlength type seg-left),
    "rt0" => ~w(addr reserved),
    "rt2" => ~w(addr),
    "srh" => ~w(last-entry flags tag sid seg-left),
    "frag" => ~w(nexthdr reserved frag-off reserved2 more-fragments id),
    "dst" => ~w(nexthdr hdrlength),
    "mh" => ~w(nexthdr hdrlength type reserved checksum)
  }

  defp keyword_expr(ts) do
    case ts do
      [{:str, "ip", _, _}, {:str, "option", _, _} | rest] ->
        {name, rest} = identifier(rest, "an ip option name")
        {field, rest} = opt_field(rest)
        {%{"ip option": Map.merge(%{name: name}, field)}, rest}

      [{:str, "tcp", _, _}, {:str, "option", _, _} | rest] ->
        {name, rest} =
          case rest do
            [{:num, n, _, _} | rest] -> {n, rest}
            _ -> identifier(rest, "a tcp option name")
          end

        {field, rest} = opt_field(rest)
        {%{"tcp option": Map.merge(%{name: name}, field)}, rest}

      [{:str, "sctp", _, _}, {:str, "chunk", _, _} | rest] ->
        {name, rest} = identifier(rest, "an sctp chunk name")
        {field, rest} = opt_field(rest)
        {%{"sctp chunk": Map.merge(%{name: name}, field)}, rest}

      [{:str, "rt", _, _}, {:str, k, _, _} | rest] when k in ["classid", "nexthop", "mtu", "ipsec"] ->
        {%{rt: %{key: k}}, rest}

      [{:str, "rt", _, _}, {:str, f, _, _}, {:str, k, _, _} | rest] when f in ["ip", "ip6"] and k in ["nexthop", "mtu", "classid"] ->
        {%{rt: %{key: k, family: f}}, rest}

      [{:str, p, _, _}, {:str, f, _, _} = ft | rest] when p in @payload_protos ->
        if f in Map.fetch!(@payload_fields, p) do
          {%{payload: %{protocol: p, field: f}}, rest}
        else
          fail(ft, "'#{f}' is not a field of #{p} (#{Enum.join(Map.fetch!(@payload_fields, p), ", ")})")
        end

      [{:str, p, _, _}, tok | _] when p in @payload_protos and p != "ip" ->
        unexpected(tok, "a #{p} header field (#{Enum.join(Map.fetch!(@payload_fields, p), ", ")})")

      [{:str, "ip", _, _}, tok | _] ->
        unexpected(tok, "an ip header field (#{Enum.join(Map.fetch!(@payload_fields, "ip"), ", ")}) or option")

      [{:str, e, _, _}, {:str, f, _, _} | rest] when is_map_key(@exthdrs, e) ->
        if f in Map.fetch!(@exthdrs, e) do
          {%{exthdr: %{name: e, field: f}}, rest}
        else
          if e == "rt", do: nil, else: unexpected(hd(tl(ts)), "a #{e} header field (#{Enum.join(@exthdrs[e], ", ")})")
        end

      [{:str, "exthdr", _, _}, {:str, e, _, _}, {:str, "exists", _, _} | _] ->
        [_ | rest] = ts
        [_ | rest] = rest
        {%{exthdr: %{name: e}}, rest}

      [{:str, "meta", _, _}, {:str, k, _, _} = t | rest] ->
        k = Map.get(@meta_alias, k, k)

        if k in @meta_keys,
          do: {%{meta: %{key: k}}, rest},
          else: unexpected(t, "a meta key (#{Enum.join(@meta_keys, ", ")})")

      [{:str, "meta", _, _}, t | _] ->
        unexpected(t, "a meta key")

      [{:str, k, _, _} | rest] when k in @meta_unqualified ->
        {%{meta: %{key: Map.get(@meta_alias, k, k)}}, rest}

      [{:str, "ct", _, _} | rest] ->
        ct_expr(rest)

      [{:str, "fib", _, _} | rest] ->
        fib_expr(rest, [])

      [{:str, "socket", _, _} | rest] ->
        case rest do
          [{:str, "cgroupv2", _, _}, {:str, "level", _, _}, {:num, n, _, _} | rest] ->
            {%{socket: %{key: "cgroupv2", level: n}}, rest}

          [{:str, k, _, _} | rest] when k in ["transparent", "mark", "wildcard"] ->
            {%{socket: %{key: k}}, rest}

          [t | _] ->
            unexpected(t, "a socket key (transparent, mark, wildcard, cgroupv2)")
        end

      [{:str, "osf", _, _} | rest] ->
        {ttl, rest} =
          case rest do
            [{:str, "ttl", _, _}, {:str, t, _, _} | rest] -> {t, rest}
            _ -> {nil, rest}
          end

        case rest do
          [{:str, k, _, _} | rest] when k in ["name", "version"] ->
            o = %{key: k}
            {%{osf: if(ttl, do: Map.put(o, :ttl, ttl), else: o)}, rest}

          [t | _] ->
            unexpected(t, "osf name or version")
        end

      [{:str, "numgen", _, _} | rest] ->
        {mode, rest} =
          case rest do
            [{:str, m, _, _} | rest] when m in ["inc", "random"] -> {m, rest}
            [t | _] -> unexpected(t, "inc or random")
          end

        rest = expect_word(rest, "mod")
        {mod, rest} = number(rest, "a modulus")
        {off, rest} = offset(rest)
        n = %{mode: mode, mod: mod}
        {%{numgen: if(off, do: Map.put(n, :offset, off), else: n)}, rest}

      [{:str, h, _, _} | rest] when h in ["jhash", "symhash"] ->
        {e, rest} =
          if h == "jhash" do
            {e, rest} = concat_expr(rest, :lhs)
            {e, rest}
          else
            {nil, rest}
          end

        rest = expect_word(rest, "mod")
        {mod, rest} = number(rest, "a modulus")

        {seed, rest} =
          case rest do
            [{:str, "seed", _, _} | rest] -> number(rest, "a seed")
            _ -> {nil, rest}
          end

        {off, rest} = offset(rest)
        j = %{mod: mod}
        j = if e, do: Map.put(j, :expr, e), else: j
        j = if seed, do: Map.put(j, :seed, seed), else: j
        j = if off, do: Map.put(j, :offset, off), else: j
        {%{String.to_atom(h) => j}, rest}

      [{:str, "ipsec", _, _}, {:str, dir, _, _} | rest] when dir in ["in", "out"] ->
        {spnum, rest} =
          case rest do
            [{:str, "spnum", _, _}, {:num, n, _, _} | rest] -> {n, rest}
            _ -> {nil, rest}
          end

        {fam, rest} =
          case rest do
            [{:str, f, _, _} | rest] when f in ["ip", "ip6"] -> {f, rest}
            _ -> {nil, rest}
          end

        {key, rest} = identifier(rest, "an ipsec key (reqid, spi, saddr, daddr)")
        x = %{key: key, dir: dir}
        x = if spnum, do: Map.put(x, :spnum, spnum), else: x
        x = if fam, do: Map.put(x, :family, fam), else: x
        {%{ipsec: x}, rest}

      [{:punct, "@", _, _}, {:str, base, _, _}, {:punct, ",", _, _} | rest] when base in ["ll", "nh", "th", "ih"] ->
        {off, rest} = number(rest, "an offset")
        rest = expect_punct(rest, ",")
        {len, rest} = number(rest, "a length")
        {%{payload: %{base: base, offset: off, len: len}}, rest}

      _ ->
        nil
    end
  end

  defp offset([{:str, "offset", _, _} | rest]), do: number(rest, "an offset")
  defp offset(ts), do: {nil, ts}

  defp opt_field(ts) do
    case ts do
      [{:str, "exists", _, _} | _] -> {%{}, ts}
      [{:str, "missing", _, _} | _] -> {%{}, ts}
      [{:str, f, _, _} | rest] when f not in @stmt_words and f != "set" -> {%{field: f}, rest}
      _ -> {%{}, ts}
    end
  end

  defp ct_expr(ts) do
    {dir, rest} =
      case ts do
        [{:str, d, _, _} | rest] when d in ["original", "reply"] -> {d, rest}
        _ -> {nil, ts}
      end

    {fam, rest} =
      case rest do
        [{:str, f, _, _}, {:str, k, _, _} | rest2] when f in ["ip", "ip6"] and k in ["saddr", "daddr"] ->
          {f, [hd(tl(rest)) | rest2]}

        _ ->
          {nil, rest}
      end

    case rest do
      [{:str, k, _, _} | rest] when k in @ct_keys ->
        c = %{key: k}
        c = if dir, do: Map.put(c, :dir, dir), else: c
        c = if fam, do: Map.put(c, :family, fam), else: c
        {%{ct: c}, rest}

      [t | _] ->
        unexpected(t, "a conntrack key (state, status, mark, direction, expiration, helper, label, zone, ...)")
    end
  end

  @fib_flags ~w(saddr daddr mark iif oif)

  defp fib_expr(ts, flags) do
    case ts do
      [{:str, f, _, _} | rest] when f in @fib_flags ->
        case rest do
          [{:punct, ".", _, _} | rest] -> fib_expr(rest, [f | flags])
          _ -> fib_result(rest, Enum.reverse([f | flags]))
        end

      [t | _] ->
        unexpected(t, "a fib flag (saddr, daddr, mark, iif, oif)")
    end
  end

  defp fib_result(ts, flags) do
    case ts do
      [{:str, r, _, _} | rest] when r in ["oif", "oifname", "type"] ->
        {%{fib: %{result: r, flags: single(flags)}}, rest}

      [t | _] ->
        unexpected(t, "a fib result (oif, oifname, type)")
    end
  end
end
