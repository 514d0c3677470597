#!/bin/sh
# Regenerates the committed seed corpus tests/fuzz/seeds/ with Erlang's own
# term_to_binary (no Elixir, no Python). Run it only when the request
# format changes; the fuzzer never writes into seeds/.
#
# A seed is one control byte, then the payload (see fuzz_request.c):
#   0x40 | ...   the payload is one request term (the harness frames it);
#   0x80 | ...   the payload is a stream of {packet,4} frames.
# Handle ids are predictable: every input starts with an empty handle table,
# so the first handle is 65537, the second 65538, and so on.
set -eu
dir=$(cd "$(dirname "$0")" && pwd)/seeds
NFP_EXPR_SCHEMA=$(cd "$(dirname "$0")/../../schema/expressions" && pwd)
export NFP_EXPR_SCHEMA
rm -rf "$dir"
mkdir -p "$dir"
cd "$dir"
exec erl -noshell -eval '
W = fun(Name, Bin) -> ok = file:write_file(Name, Bin) end,
One = fun(Name, Term) -> W(Name, <<16#40, (term_to_binary(Term))/binary>>) end,
Frame = fun(B) -> <<(byte_size(B)):32, B/binary>> end,
Seq = fun(Name, Terms) ->
	W(Name, iolist_to_binary([16#a0 | [Frame(term_to_binary(T)) || T <- Terms]]))
      end,
Ping = term_to_binary({1, ping, []}),
H1 = 65537, H2 = 65538, H3 = 65539, H4 = 65540,
%% A freed slot is reused with the next generation: slot 1, generation 2.
H2b = (2 bsl 16 bor 1) + 1,

%% Control and the declarative ops (kernel ops fail without a socket).
One("ping", {1, ping, []}),
One("ping_id_max", {18446744073709551615, ping, []}),
One("self_check", {2, self_check, []}),
One("genid", {3, genid, []}),
One("dump", {4, dump, []}),
One("list_table", {5, list, [table, #{}]}),
One("list_chain_filter", {5, list, [chain, #{family => inet, table => <<"t">>}]}),
One("list_rule_filter", {5, list, [rule, #{family => ip, table => <<"t">>, chain => <<"c">>}]}),
One("list_set", {5, list, [set, #{table => <<"t">>}]}),
One("list_element", {5, list, [element, #{family => inet, table => <<"t">>, set => <<"s">>}]}),
One("socket_open", {6, socket_open, []}),

Table = #{family => inet, name => <<"t">>, flags => [dormant], userdata => <<1, 2, 3>>},
Chain = #{family => inet, table => <<"t">>, name => <<"input">>, hooknum => input,
	  prio => 0, policy => accept, type => <<"filter">>},
NetdevChain = #{family => netdev, table => <<"t">>, name => <<"in">>, hooknum => ingress,
		prio => -500, type => <<"filter">>, devices => [<<"lo">>, <<"eth0">>],
		flags => [base]},
Rule = #{family => inet, table => <<"t">>, chain => <<"input">>, userdata => <<"c">>,
	 exprs => [{meta, #{key => l4proto, dreg => 1}},
		   {cmp, #{sreg => 1, op => eq, data => <<6>>}},
		   {payload, #{base => transport, offset => 2, len => 2, dreg => 1}},
		   {range, #{sreg => 1, op => neq, from_data => <<0, 1>>, to_data => <<0, 1023>>}},
		   {bitwise, #{sreg => 1, dreg => 1, len => 4, mask => <<255, 255, 255, 0>>,
			       '\''xor'\'' => <<0, 0, 0, 0>>}},
		   {lookup, #{sreg => 1, set => <<"s">>, flags => [inv]}},
		   {counter, #{packets => 0, bytes => 0}},
		   {immediate, #{dreg => 0, verdict => accept}}]},
JumpRule = #{family => inet, table => <<"t">>, chain => <<"input">>,
	     exprs => [{immediate, #{dreg => 0, verdict => jump, chain => <<"other">>}}]},
Set = #{family => inet, table => <<"t">>, name => <<"s">>, flags => [interval, timeout],
	key_type => 7, key_len => 4, policy => memory, desc_size => 16, timeout => 60000},
Map = #{family => inet, table => <<"t">>, name => <<"m">>, flags => [map], key_type => 13,
	key_len => 2, data_type => 16#ffffff00, data_len => 16},
Elements = #{family => inet, table => <<"t">>, set => <<"s">>,
	     elements => [#{key => <<10, 0, 0, 1>>},
			  #{key => <<10, 0, 0, 2>>, key_end => <<10, 0, 0, 9>>, timeout => 1000,
			    userdata => <<"x">>},
			  #{key => <<0, 0, 0, 0>>, flags => [interval_end]}]},
VmapElements = #{family => inet, table => <<"t">>, set => <<"m">>,
		 elements => [#{key => <<0, 22>>, verdict => jump, chain => <<"ssh">>},
			      #{key => <<0, 80>>, verdict => drop}]},

Commit = fun(Name, Msgs, Opts) -> One(Name, {7, commit, [Msgs, Opts]}) end,
Commit("commit_table", [{add, table, Table}], #{}),
Commit("commit_chain", [{add, chain, Chain}], #{}),
Commit("commit_netdev_chain", [{create, chain, NetdevChain}], #{}),
Commit("commit_rule", [{add, rule, Rule}], #{}),
Commit("commit_jump_rule", [{insert, rule, JumpRule}], #{}),
Commit("commit_set", [{add, set, Set}], #{}),
Commit("commit_elements", [{add, element, Elements}], #{}),
Commit("commit_vmap", [{add, set, Map}, {add, element, VmapElements}], #{}),
Commit("commit_all", [{add, table, Table}, {add, chain, Chain}, {add, set, Set},
		      {add, element, Elements}, {add, rule, Rule}],
       #{echo => true, genid => 5}),
Commit("commit_verbs", [{delete, rule, #{family => inet, table => <<"t">>, chain => <<"input">>, handle => 4}},
			{replace, rule, maps:put(handle, 4, Rule)},
			{destroy, chain, Chain},
			{flush, chain, Chain},
			{flush, table, #{family => inet, name => <<"t">>}},
			{delete, element, Elements},
			{flush, ruleset, #{family => inet}},
			{delete, table, #{family => inet, handle => 1}}], #{echo => false}),
Commit("commit_empty", [], #{}),
Commit("commit_bad_attr", [{add, table, #{nme => <<"t">>}}], #{}),
Commit("commit_bad_verb", [{frob, table, #{}}], #{}),
Commit("commit_bad_expr", [{add, rule, #{exprs => [{warp, #{}}, {cmp, #{op => sideways}}]}}], #{}),

%% The handle API, as streams of requests.
Seq("seq_table", [{1, table_alloc, []},
		  {2, table_set, [H1, name, <<"t">>]},
		  {3, table_set, [H1, family, inet]},
		  {4, table_set, [H1, flags, [dormant, 2]]},
		  {5, table_set, [H1, userdata, <<0, 1, 2>>]},
		  {6, table_get, [H1, name]},
		  {7, table_get, [H1, flags]},
		  {8, table_to_map, [H1]},
		  {9, table_unset, [H1, flags]},
		  {10, table_free, [H1]},
		  {11, table_get, [H1, name]}]),
Seq("seq_chain", [{1, chain_alloc, []},
		  {2, chain_set, [H1, family, netdev]},
		  {3, chain_set, [H1, hooknum, ingress]},
		  {4, chain_set, [H1, devices, [<<"lo">>, <<"eth0">>]]},
		  {5, chain_set, [H1, prio, -150]},
		  {6, chain_get, [H1, devices]},
		  {7, chain_to_map, [H1]},
		  {8, chain_unset, [H1, prio]}]),
Seq("seq_rule", [{1, rule_alloc, []},
		 {2, expr_alloc, [payload]},
		 {3, expr_set, [H2, dreg, 1]},
		 {4, expr_set, [H2, base, network]},
		 {5, expr_get, [H2, base]},
		 {6, expr_to_map, [H2]},
		 {7, expr_unset, [H2, base]},
		 {8, rule_add_expr, [H1, H2]},
		 {9, rule_set, [H1, exprs, [{counter, #{}}]]},
		 {10, rule_set, [H1, table, <<"t">>]},
		 {11, rule_to_map, [H1]},
		 {12, rule_get, [H1, exprs]},
		 {13, expr_get, [H2, dreg]},
		 {14, rule_free, [H1]}]),
Seq("seq_set", [{1, set_alloc, []},
		{2, set_set, [H1, name, <<"s">>]},
		{3, set_set, [H1, table, <<"t">>]},
		{4, set_set, [H1, family, ip]},
		{5, set_set, [H1, key_len, 4]},
		{6, set_elem_alloc, []},
		{7, set_elem_set, [H2, key, <<10, 0, 0, 1>>]},
		{8, set_elem_set, [H2, verdict, accept]},
		{9, set_add_elem, [H1, H2]},
		{10, set_to_map, [H1]},
		{11, batch_new, []},
		{12, batch_add, [H2b, add, set, H1]},
		{13, batch_add, [H2b, add, element, H1]},
		{14, batch_add, [H2b, delete, element, H1]},
		{15, batch_free, [H2b]}]),
Seq("seq_batch", [{1, table_alloc, []},
		  {2, table_set, [H1, family, inet]},
		  {3, table_set, [H1, name, <<"t">>]},
		  {4, batch_new, []},
		  {5, batch_add, [H2, add, table, H1]},
		  {6, batch_add, [H2, flush, table, H1]},
		  {7, socket_open, []},
		  {8, batch_send, [H2, H3]},
		  {9, batch_send, [H2, H1]},
		  {10, socket_close, [H4]},
		  {11, batch_free, [H2]},
		  {12, table_free, [H1]}]),
Seq("seq_kinds", [{1, table_alloc, []},
		  {2, chain_alloc, []},
		  {3, table_set, [H2, name, <<"t">>]},
		  {4, chain_free, [H1]},
		  {5, rule_add_expr, [H2, H1]},
		  {6, batch_add, [H1, add, chain, H2]}]),

%% Framing: a zero-length frame, an oversize frame, then a ping.
W("frames_zero_oversize",
  iolist_to_binary([16#a0, <<0:32>>, <<20000:32>>, binary:copy(<<0>>, 20000),
		    Frame(Ping), <<5:32, 131, 104>>])),
W("frames_pings", iolist_to_binary([16#83, Frame(Ping), Frame(Ping), Frame(Ping)])),

%% Not requests.
W("bad_no_version", <<16#40, 104, 3, 97, 1, 100, 0, 4, "ping", 106>>),
W("bad_truncated", <<16#40, (binary:part(term_to_binary({1, table_set, [H1, name, <<"t">>]}), 0, 20))/binary>>),
W("bad_trailing", <<16#40, Ping/binary, 106>>),
W("bad_empty", <<16#40>>),
W("bad_compressed", <<16#40, (term_to_binary({1, ping, [binary:copy(<<"a">>, 100)]}, [compressed]))/binary>>),
One("bad_id_negative", {-1, ping, []}),
One("bad_id_float", {1.0, ping, []}),
One("bad_id_big", {18446744073709551616, ping, []}),
One("bad_not_tuple", [1, ping, []]),
One("bad_unknown_op", {1, frobnicate, []}),
One("bad_arity", {1, table_set, [H1]}),
One("bad_pid", {1, table_free, [self()]}),
One("bad_deep", {1, table_free, [lists:foldl(fun(_, A) -> [A] end, 1, lists:seq(1, 70))]}),
One("bad_charlist_args", {1, table_free, [5]}),
One("bad_improper_args", {1, table_free, [H1 | x]}),
One("bad_types", {1, table_set, [<<"h">>, 1.5, #{}]}),
Seq("bad_values", [{1, expr_alloc, [immediate]},
		  {2, expr_set, [H1, dreg, 1 bsl 100]},
		  {3, expr_set, [H1, dreg, -1]},
		  {4, expr_set, [H1, verdict, -3]},
		  {5, expr_set, [H1, verdict, 1 bsl 31]},
		  {6, expr_set, [H1, data, binary:copy(<<1>>, 100)]},
		  {7, expr_set, [H1, chain, <<"a", 0, "b">>]},
		  {8, expr_set, [H1, verdict, [accept]]},
		  {9, table_set, [H1, name, <<"t">>]},
		  {10, expr_to_map, [H1]}]),
W("bad_list_count", <<16#40, 131, 104, 3, 97, 1, 100, 0, 4, "ping", 108, 255, 255, 255, 255, 106>>),
%% One seed per expression of the schema (read with regular expressions:
%% every expression attribute is a one-line {name: ..., const: ..., type: ...}):
%% each attribute set through the handle API with a plausible value, then
%% the expression added to a rule and the rule put in a batch. And one
%% commit with a rule holding all of them. immediate is left out: its
%% data/verdict/chain share storage in libnftnl (see the regressions).
Sample = fun(<<"string">>) -> <<"x">>;
	    (<<"binary">>) -> <<1, 2, 3, 4>>;
	    (<<"s32">>) -> 0;
	    (<<"exprs">>) -> [{counter, #{}}];
	    (<<"strlist">>) -> [<<"lo">>];
	    (<<"u", _/binary>>) -> 1;
	    (_) -> skip
	 end,
Schema = os:getenv("NFP_EXPR_SCHEMA"),
Files = lists:sort(filelib:wildcard(filename:join(Schema, "*.yaml"))),
Exprs = lists:filtermap(fun(F) ->
	{ok, Y} = file:read_file(F),
	{match, [Name]} = re:run(Y, "^name: *([a-z0-9_]+)", [multiline, {capture, all_but_first, binary}]),
	Attrs = case re:run(Y, "- *\\{name: *([a-z0-9_]+), *const: *[A-Z0-9_]+, *type: *([a-z0-9]+)",
			    [global, {capture, all_but_first, binary}]) of
		    {match, M} -> [{binary_to_atom(A), V} || [A, T] <- M, (V = Sample(T)) =/= skip];
		    nomatch -> []
		end,
	case Name of
	    <<"immediate">> -> false;
	    _ -> {true, {binary_to_atom(Name), Attrs}}
	end
    end, Files),
lists:foreach(fun({Kind, Attrs}) ->
	Sets = [{10 + I, expr_set, [H2, A, V]} || {I, {A, V}} <- lists:zip(lists:seq(1, length(Attrs)), Attrs)],
	Seq("expr_" ++ atom_to_list(Kind),
	    [{1, rule_alloc, []}, {2, expr_alloc, [Kind]}] ++ Sets ++
	    [{3, expr_to_map, [H2]}, {4, rule_add_expr, [H1, H2]}, {5, rule_to_map, [H1]},
	     {6, batch_new, []}, {7, batch_add, [H2b, add, rule, H1]}])
    end, Exprs),
Commit("commit_every_expr",
       [{add, rule, #{family => inet, table => <<"t">>, chain => <<"c">>,
		      exprs => [{K, maps:from_list(As)} || {K, As} <- Exprs]}}], #{}),
halt().'
