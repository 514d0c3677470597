defmodule NFTables.ReadmeTest do
  # The README's first snippet, as written. start_link() without :netns
  # keeps the port in this test's own network namespace; the snippet only
  # opens and closes a netlink socket, which touches no ruleset.
  use NFTables.Port.Case, async: true

  import ExUnit.CaptureIO

  test "the README snippet prints ok" do
    output =
      capture_io(fn ->
        {:ok, pid} = NFTables.Port.start_link()

        # The port shares this test's namespace: nothing below may change it.
        # (An ordinary user cannot read the non-dumpable port's /proc links.)
        os_pid = NFTables.Port.os_pid(pid)

        case File.read_link("/proc/#{os_pid}/ns/net") do
          {:ok, link} -> assert link == File.read_link!("/proc/self/ns/net")
          {:error, :eacces} -> :ok
        end

        case NFTables.Port.Kernel.Netlink.socket_open(pid) do
          {:ok, socket_id} ->
            IO.puts("ok")
            NFTables.Port.Kernel.Netlink.socket_close(pid, socket_id)

          {:error, %{message: message}} ->
            IO.puts("failed: #{message}")
        end

        :ok = NFTables.Port.stop(pid)
      end)

    assert output == "ok\n"
  end
end
