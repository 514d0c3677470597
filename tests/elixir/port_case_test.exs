defmodule NFTables.Port.CaseTest do
  # The test helpers themselves: nft! must work inside the port's network
  # namespace and nowhere else.
  use NFTables.Port.Case, async: true

  @moduletag :kernel

  test "nft! runs nft in the port's network namespace, not the host's" do
    pid = start_port!()
    table = "nfp_port_case_#{System.unique_integer([:positive])}"

    assert nft!(pid, "list ruleset") == ""
    nft!(pid, ["add", "table", "inet", table])
    assert nft!(pid, "list tables") =~ "table inet #{table}"

    # Read-only look at the host: the table is not there. (An ordinary
    # user cannot read the host's ruleset: then the namespaces differ.)
    case System.cmd("nft", ["list", "tables"], stderr_to_stdout: true) do
      {host, 0} ->
        refute host =~ table

      {_, _} ->
        assert File.read_link!("/proc/#{netns_pid(pid)}/ns/net") !=
                 File.read_link!("/proc/self/ns/net")
    end
  end

  test "nft! raises when nft fails" do
    pid = start_port!()

    assert_raise RuntimeError, ~r/failed with exit status/, fn ->
      nft!(pid, "list table inet nope")
    end
  end

  test "kernel_available?/0 agrees with kernel_unavailable_reason/0" do
    assert kernel_available?() == (kernel_unavailable_reason() == nil)
  end
end
