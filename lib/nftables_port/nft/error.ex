defmodule NFTables.Port.Nft.Error do
  @moduledoc """
  Raised inside the translator when a document or a message cannot be
  translated; the public functions of `NFTables.Port.Nft` rescue it and
  answer `{:error, %{index: i, path: [...], message: m}}`.
  """
  defexception message: "cannot translate", path: []
end
