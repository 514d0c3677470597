defmodule NFTables.Port.Nft.Value.System do
  @moduledoc """
  The system tables nft resolves some values with: protocol names
  (`/etc/protocols`, getprotobynumber), user and group names
  (`/etc/passwd`, `/etc/group`, getpwuid). nft prints what these files
  say on the machine it runs on; so does the translator, which reads them
  once and keeps them in `:persistent_term`. A missing file is an empty
  table: values then print as numbers.
  """

  @doc "`[{number, name}]` of /etc/protocols, in file order."
  @spec protocols() :: [{non_neg_integer(), String.t()}]
  def protocols, do: cached(:protocols, fn -> parse("/etc/protocols", &protocol_line/1) end)

  @doc "`[{uid, name}]` of /etc/passwd."
  @spec users() :: [{non_neg_integer(), String.t()}]
  def users, do: cached(:users, fn -> parse("/etc/passwd", &passwd_line/1) end)

  @doc "`[{gid, name}]` of /etc/group."
  @spec groups() :: [{non_neg_integer(), String.t()}]
  def groups, do: cached(:groups, fn -> parse("/etc/group", &passwd_line/1) end)

  defp cached(key, fun) do
    k = {__MODULE__, key}

    case :persistent_term.get(k, nil) do
      nil ->
        v = fun.()
        :persistent_term.put(k, v)
        v

      v ->
        v
    end
  end

  defp parse(path, line_fun) do
    case File.read(path) do
      {:ok, text} ->
        text
        |> String.split("\n")
        |> Enum.flat_map(line_fun)
        # getprotobynumber and getpwuid answer the first entry of a number.
        |> Enum.uniq_by(&elem(&1, 0))

      {:error, _} ->
        []
    end
  end

  defp protocol_line(line) do
    case line |> String.split("#") |> hd() |> String.split() do
      [name, num | _] ->
        case Integer.parse(num) do
          {n, ""} -> [{n, name}]
          _ -> []
        end

      _ ->
        []
    end
  end

  defp passwd_line(line) do
    case String.split(line, ":") do
      [name, _pw, id | _] ->
        case Integer.parse(id) do
          {n, ""} -> [{n, name}]
          _ -> []
        end

      _ ->
        []
    end
  end
end
