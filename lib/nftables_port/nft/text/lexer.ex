defmodule NFTables.Port.Nft.Text.Lexer do
  @moduledoc """
  The tokenizer of `NFTables.Port.Nft.Text.Parser`: nft's scanner
  (src/scanner.l of nftables 1.0.6) without its keyword table.

  Tokens are `{kind, value, line, column}` (1-based), kind one of
  - `:str`   a bare word: identifier, keyword, address, time string, classid
  - `:qstr`  a quoted string (value without the quotes)
  - `:num`   a decimal or hexadecimal number (value an integer)
  - `:punct` an operator or separator (value the text: "{", "==", "/", ...)
  - `:nl`    end of line (nft's NEWLINE; `;` is `:punct`)
  - `:eof`

  As flex does, the longest match wins among addresses, time strings,
  numbers, classids and identifiers (`10.0.0.1` is one word, `10-20` is
  three tokens, `sip-5060u` one).
  """

  import Bitwise, only: [<<<: 2]

  @type token :: {atom(), term(), pos_integer(), pos_integer()}

  hex4 = "[[:xdigit:]]{1,4}"
  ip4 = "(?:[0-9]{1,3}\\.){3}[0-9]{1,3}"

  v6 = fn n ->
    # nft's v6NK rules: k groups "h:", the compressed "::", n - k groups ":h".
    for k <- 0..n do
      left = if k == 0, do: ":", else: "(?:#{hex4}:){#{k}}"
      right = if n - k == 0, do: ":", else: "(?::#{hex4}){#{n - k}}"
      left <> right
    end
  end

  alts =
    ["(?:#{hex4}:){7}#{hex4}"] ++
      Enum.flat_map(7..1//-1, fn n -> v6.(n) end) ++
      [":(?::[fF]{4}):#{ip4}", "::#{ip4}", "::"]

  @ip6_alts Enum.map(alts, &Regex.compile!("\\A(?:" <> &1 <> ")"))
  @ip6 "(?:" <> Enum.join(alts, "|") <> ")"

  @word_patterns [
    {:mac, ~r/\A(?:[[:xdigit:]]{1,2}:){5}[[:xdigit:]]{1,2}/},
    {:ip4, Regex.compile!("\\A" <> ip4)},
    {:time, ~r/\A(?:[0-9]+d)?(?:[0-9]+h)?(?:[0-9]+m(?!s))?(?:[0-9]+s)?(?:[0-9]+ms)?/},
    {:num, ~r/\A(?:0[xX][[:xdigit:]]+|[0-9]+)/},
    {:classid, ~r/\A[[:xdigit:]]{1,4}:[[:xdigit:]]{1,4}(?=[ \t\n:\-},]|\z)/},
    {:astr, ~r/\A(?:[a-zA-Z_.][a-zA-Z0-9\/\-_.]*\\?\*(?:[a-zA-Z_.][a-zA-Z0-9\/\-_.]*)?|\\\*)/},
    {:str, ~r/\A[a-zA-Z_.][a-zA-Z0-9\/\-_.]*/}
  ]

  @ip6_bracket Regex.compile!("\\A\\[(" <> @ip6 <> ")\\]")

  @puncts ["==", "!=", "<=", ">=", "<<", ">>", "<", ">", ",", ".", ":", ";", "{", "}", "[", "]",
           "(", ")", "^", "&", "|", "!", "/", "*", "@", "$", "=", "+", "-", "~"]

  @doc "Splits a script into tokens, or answers the first character nft's scanner would refuse."
  @spec tokenize(binary()) :: {:ok, [token()]} | {:error, map()}
  def tokenize(src) when is_binary(src) do
    {:ok, scan(src, 1, 1, [])}
  catch
    {:lex_error, line, col, msg} -> {:error, %{line: line, column: col, message: msg}}
  end

  defp scan(<<>>, l, c, acc), do: Enum.reverse([{:eof, nil, l, c} | acc])
  defp scan(<<"\\\r\n", rest::binary>>, l, _c, acc), do: scan(rest, l + 1, 1, acc)
  defp scan(<<"\\\n", rest::binary>>, l, _c, acc), do: scan(rest, l + 1, 1, acc)
  defp scan(<<"\r\n", rest::binary>>, l, c, acc), do: scan(rest, l + 1, 1, [{:nl, nil, l, c} | acc])
  defp scan(<<"\n", rest::binary>>, l, c, acc), do: scan(rest, l + 1, 1, [{:nl, nil, l, c} | acc])
  defp scan(<<ch, rest::binary>>, l, c, acc) when ch in [?\s, ?\t, ?\r], do: scan(rest, l, c + 1, acc)

  defp scan(<<"#", _::binary>> = s, l, c, acc) do
    case :binary.match(s, "\n") do
      {pos, _} -> scan(binary_part(s, pos, byte_size(s) - pos), l, c + pos, acc)
      :nomatch -> scan(<<>>, l, c + byte_size(s), acc)
    end
  end

  defp scan(<<"\"", rest::binary>>, l, c, acc) do
    case :binary.match(rest, "\"") do
      {pos, _} ->
        value = binary_part(rest, 0, pos)

        if String.contains?(value, "\n") do
          throw({:lex_error, l, c, "unterminated string: the closing \" is missing on this line"})
        end

        rest2 = binary_part(rest, pos + 1, byte_size(rest) - pos - 1)
        scan(rest2, l, c + String.length(value) + 2, [{:qstr, value, l, c} | acc])

      :nomatch ->
        throw({:lex_error, l, c, "unterminated string: the closing \" is missing"})
    end
  end

  defp scan(s, l, c, acc) do
    punct = Enum.find(@puncts, &String.starts_with?(s, &1))

    # flex: the longest match; on a tie the operator rules, listed first, win
    w =
      case word(s) do
        {_, len} = w when punct == nil or len > byte_size(punct) -> w
        _ -> nil
      end

    case w do
      {kind, len} ->
        text = binary_part(s, 0, len)
        rest = binary_part(s, len, byte_size(s) - len)
        scan(rest, l, c + String.length(text), [token(kind, text, l, c) | acc])

      nil ->
        case punct do
          nil ->
            ch =
              case s do
                <<ch::utf8, _::binary>> -> <<ch::utf8>>
                <<b, _::binary>> -> <<b>>
              end

            throw({:lex_error, l, c, "syntax error, unexpected junk character #{inspect(ch)}"})

          p ->
            rest = binary_part(s, byte_size(p), byte_size(s) - byte_size(p))
            scan(rest, l, c + byte_size(p), [{:punct, p, l, c} | acc])
        end
    end
  end

  defp token(:num, text, l, c) do
    v =
      case text do
        <<"0", x, hex::binary>> when x in [?x, ?X] -> String.to_integer(hex, 16)
        _ -> String.to_integer(text)
      end

    if v >= 1 <<< 64, do: {:str, text, l, c}, else: {:num, v, l, c}
  end

  defp token(:ip6b, text, l, c), do: {:str, String.slice(text, 1..-2//1), l, c}
  defp token(_kind, text, l, c), do: {:str, text, l, c}

  # The longest match; ties go to the earlier pattern, as in flex.
  defp word(s) do
    cands =
      for {kind, re} <- [{:ip6b, @ip6_bracket} | @word_patterns],
          [{0, len} | _] <- [Regex.run(re, s, return: :index)],
          len > 0,
          do: {kind, len}

    cands =
      case s do
        <<ch, _::binary>> when ch in ?0..?9 or ch in ?a..?f or ch in ?A..?F or ch == ?: ->
          ip6 = for re <- @ip6_alts, [{0, len} | _] <- [Regex.run(re, s, return: :index)], do: {:ip6, len}
          # addresses come first in nft's scanner
          ip6 ++ cands

        _ ->
          cands
      end

    case cands do
      [] -> nil
      _ -> Enum.reduce(cands, fn {_, len} = x, {_, best} = b -> if len > best, do: x, else: b end)
    end
  end
end
