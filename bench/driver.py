#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""The benchmark driver; bench/run builds what it needs and calls it.

Runs every case for every contender (the port through bench/port_bench.exs,
`nft -f`, `nft -j -f`, bench/raw_loader), each load in a fresh network
namespace, and writes a markdown report. See bench/README.md.
"""
import argparse
import atexit
import datetime
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(BENCH)
CONTENDERS = ["port", "nft", "json", "raw"]
LABEL = {"port": "port", "nft": "nft -f", "json": "nft -j -f", "raw": "raw (floor)"}

# --- the ruleset as nft text and JSON (keep in step with ruleset.exs and
# --- raw_loader.c; the equivalence check at the smallest size catches drift)


def ip(x):
    return f"{x >> 24}.{(x >> 16) & 255}.{(x >> 8) & 255}.{x & 255}"


def rule_text(i):
    port, a, b, c = 1 + i % 65535, (i >> 8) & 255, i & 255, (i >> 16) & 255
    return [
        f"ip saddr 10.{a}.{b}.0/24 tcp dport {port} counter accept",
        f"ip daddr 172.16.{(i % 16) * 16}.0/20 udp dport {port} drop",
        f"tcp dport {port} counter drop",
        "ip saddr @blk counter drop",
        f"ip saddr 10.{c}.{a}.{b} tcp dport {port} jump sub",
        f"udp dport {port} counter accept",
    ][i % 6]


def rule_json(i):
    port, a, b, c = 1 + i % 65535, (i >> 8) & 255, i & 255, (i >> 16) & 255

    def m(proto, field, right):
        return {"match": {"op": "==", "left": {"payload": {"protocol": proto, "field": field}},
                          "right": right}}

    def pfx(addr, n):
        return {"prefix": {"addr": addr, "len": n}}

    cnt = {"counter": None}
    return [
        [m("ip", "saddr", pfx(f"10.{a}.{b}.0", 24)), m("tcp", "dport", port), cnt, {"accept": None}],
        [m("ip", "daddr", pfx(f"172.16.{(i % 16) * 16}.0", 20)), m("udp", "dport", port),
         {"drop": None}],
        [m("tcp", "dport", port), cnt, {"drop": None}],
        [m("ip", "saddr", "@blk"), cnt, {"drop": None}],
        [m("ip", "saddr", f"10.{c}.{a}.{b}"), m("tcp", "dport", port), {"jump": {"target": "sub"}}],
        [m("udp", "dport", port), cnt, {"accept": None}],
    ][i % 6]


def chain_rules(n, nchains, c):
    return range(c, n, nchains)


def rules_text(n, nchains):
    out = ["table inet bench {", "\tset blk { type ipv4_addr; }", "\tchain sub {", "\t\tcounter return", "\t}"]
    for c in range(nchains):
        out.append(f"\tchain c{c} {{")
        if c == 0:
            out.append("\t\ttype filter hook input priority 0; policy accept;")
        out.extend("\t\t" + rule_text(i) for i in chain_rules(n, nchains, c))
        out.append("\t}")
    out.append("}")
    return "\n".join(out) + "\n"


def rules_json(n, nchains):
    t = {"family": "inet", "table": "bench"}
    objs = [{"table": {"family": "inet", "name": "bench"}},
            {"set": dict(t, name="blk", type="ipv4_addr")},
            {"chain": dict(t, name="sub")}]
    for c in range(nchains):
        ch = dict(t, name=f"c{c}")
        if c == 0:
            ch.update(type="filter", hook="input", prio=0, policy="accept")
        objs.append({"chain": ch})
    objs.append({"rule": dict(t, chain="sub", expr=[{"counter": None}, {"return": None}])})
    for c in range(nchains):
        objs.extend({"rule": dict(t, chain=f"c{c}", expr=rule_json(i))}
                    for i in chain_rules(n, nchains, c))
    return json.dumps({"nftables": objs})


def elems_keys(n, kind):
    if kind == "plain":
        return [ip(0x0A000000 + i) for i in range(n)]
    return [ip(0x20000000 + i * 512) for i in range(n)]


def elems_text(n, kind):
    name, flags = ("plain", "") if kind == "plain" else ("nets", " flags interval;")
    suffix = "" if kind == "plain" else "/24"
    body = ", ".join(k + suffix for k in elems_keys(n, kind))
    return (f"table inet bench {{\n\tset {name} {{ type ipv4_addr;{flags} "
            f"elements = {{ {body} }} }}\n}}\n")


def elems_json(n, kind):
    t = {"family": "inet", "table": "bench"}
    if kind == "plain":
        s, elems = dict(t, name="plain", type="ipv4_addr"), elems_keys(n, kind)
    else:
        s = dict(t, name="nets", type="ipv4_addr", flags=["interval"])
        elems = [{"prefix": {"addr": k, "len": 24}} for k in elems_keys(n, kind)]
    return json.dumps({"nftables": [{"table": {"family": "inet", "name": "bench"}}, {"set": s},
                                    {"element": dict(t, name=s["name"], elem=elems)}]})


SMALL_SETUP = {
    # A table and the set "lat" for the one-element latency.
    "lat": "table inet bench {\n\tset lat { type ipv4_addr; }\n}\n",
    # Eight sets and eight chains, one of each per concurrent caller.
    "rate": "table inet bench {\n" + "".join(
        f"\tset cs{k} {{ type ipv4_addr; }}\n\tchain cc{k} {{\n\t}}\n" for k in range(8)) + "}\n",
}

# --- processes and namespaces -----------------------------------------------


def log(msg):
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)


class Namespaces:
    def __init__(self):
        self.n = 0
        self.live = set()
        atexit.register(self.cleanup)

    def new(self):
        self.n += 1
        name = f"nfbench{os.getpid()}_{self.n}"
        subprocess.run(["ip", "netns", "add", name], check=True)
        self.live.add(name)
        return name

    def delete(self, name):
        if name in self.live:
            subprocess.run(["ip", "netns", "del", name], check=False)
            self.live.discard(name)

    def cleanup(self):
        for name in list(self.live):
            self.delete(name)


def kv(line):
    return {k: v for k, v in re.findall(r"(\w+)=(\S+)", line)}


def num(v):
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


class Bench:
    def __init__(self, args):
        self.args = args
        self.ns = Namespaces()
        self.tmp = tempfile.mkdtemp(prefix="nfbench.")
        atexit.register(shutil.rmtree, self.tmp, True)
        self.raw_bin = args.raw
        self.results = {}       # case -> contender -> [run dicts]
        self.notes = {}         # case -> [text]
        self.listings = {}      # case -> contender -> listing text
        self.port = None

    # the port server: one BEAM for the whole run
    def port_cmd(self, line, timeout=3600):
        if self.port is None:
            env = dict(os.environ, MIX_ENV=self.args.mix_env)
            self.port = subprocess.Popen(
                ["mix", "run", "--no-compile", "bench/port_bench.exs", "serve"], cwd=ROOT, env=env,
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True, bufsize=1)
        self.port.stdin.write(line + "\n")
        self.port.stdin.flush()
        out = []
        deadline = time.time() + timeout
        while time.time() < deadline:
            ln = self.port.stdout.readline()
            if not ln:
                raise RuntimeError(f"port_bench.exs exited during: {line}")
            ln = ln.strip()
            if ln == "DONE":
                break
            if ln.startswith("ERROR"):
                raise RuntimeError(f"port_bench.exs: {line}: {ln}")
            if ln.startswith("RESULT "):
                out.append(kv(ln))
        return out

    def in_ns(self, ns, argv, timeout=3600):
        p = subprocess.run(["ip", "netns", "exec", ns] + argv, capture_output=True, text=True,
                           timeout=timeout)
        if p.returncode != 0:
            raise RuntimeError(f"{' '.join(argv)} in {ns} failed ({p.returncode}): "
                               f"{p.stderr.strip()[-2000:]}")
        return p.stdout

    def raw(self, ns, *args):
        lines = [ln for ln in self.in_ns(ns, [self.raw_bin] + [str(a) for a in args]).splitlines()
                 if "case=" in ln]
        return kv(lines[-1])

    def nft_exec(self, ns, count, argv):
        return self.raw(ns, "exec", count, "--", *argv)

    def nft_file(self, ns, path, use_json):
        r = self.nft_exec(ns, 1, ["nft"] + (["-j"] if use_json else []) + ["-f", path])
        r["total_ms"] = str(num(r["median_us"]) / 1000)
        return r

    def setup(self, ns, what):
        path = os.path.join(self.tmp, f"setup_{what}.nft")
        with open(path, "w") as f:
            f.write(SMALL_SETUP[what])
        self.in_ns(ns, ["nft", "-f", path])

    def add(self, case, contender, run):
        self.results.setdefault(case, {}).setdefault(contender, []).append(run)

    def write(self, name, text):
        path = os.path.join(self.tmp, name)
        with open(path, "w") as f:
            f.write(text)
        return path

    # --- cases ---------------------------------------------------------------

    def load_case(self, case, kind, n, param, compare):
        """One transaction into an empty namespace; a fresh one per run and contender."""
        log(f"{case}: generating nft text and JSON")
        if kind == "rules":
            text, js = rules_text(n, param), rules_json(n, param)
            port_line, raw_args = f"rules {n} {param}", ["rules", n, param]
        else:
            text, js = elems_text(n, param), elems_json(n, param)
            port_line, raw_args = f"elems {n} {param}", ["elems", n, param]
        tpath, jpath = self.write(f"{case}.nft", text), self.write(f"{case}.json", js)
        del text, js
        for run in range(self.args.runs):
            for who in CONTENDERS:
                ns = self.ns.new()
                try:
                    log(f"{case}: run {run + 1}/{self.args.runs}: {LABEL[who]}")
                    if who == "port":
                        r = self.port_cmd(f"{port_line} {ns}")[0]
                    elif who == "raw":
                        r = self.raw(ns, *raw_args)
                    else:
                        r = self.nft_file(ns, tpath if who == "nft" else jpath, who == "json")
                    if r.get("ok") != "1":
                        raise RuntimeError(f"{case}: {who} failed: {r}")
                    self.add(case, who, r)
                    if compare and run == 0:
                        self.listings.setdefault(case, {})[who] = self.in_ns(
                            ns, ["nft", "list", "ruleset"])
                finally:
                    self.ns.delete(ns)
        for p in (tpath, jpath):
            os.unlink(p)

    def dump_case(self, case, n, nchains):
        """The same loaded ruleset (loaded once, by the raw loader), dumped runs times."""
        ns = self.ns.new()
        try:
            log(f"{case}: loading {n} rules in {nchains} chains")
            load = self.raw(ns, "rules", n, nchains)
            self.notes.setdefault(case, []).append(f"loaded by raw_loader in {load['total_ms']} ms")
            runs = self.args.runs
            log(f"{case}: port")
            for r in self.port_cmd(f"dump {','.join([ns] * runs)}"):
                self.add(case, "port", r)
            for who, argv in (("nft", ["nft", "list", "ruleset"]),
                              ("json", ["nft", "-j", "list", "ruleset"])):
                log(f"{case}: {LABEL[who]}")
                r = self.nft_exec(ns, runs, argv)
                for s in r["samples_us"].split(","):
                    self.add(case, who, dict(r, total_ms=str(num(s) / 1000)))
            log(f"{case}: raw (a dump per chain; and one dump of everything)")
            for _ in range(runs):
                self.add(case, "raw", self.raw(ns, "dump"))
                self.add(case, "raw_all", self.raw(ns, "dump", "all"))
        finally:
            self.ns.delete(ns)

    def lat_case(self, case, nrules):
        ns = self.ns.new()
        try:
            if nrules:
                log(f"{case}: loading {nrules} rules")
                self.raw(ns, "rules", nrules, 10)
            self.setup(ns, "lat")
            runs, count = self.args.runs, self.args.lat_calls
            log(f"{case}: port ({count} commits and {count} pings per run)")
            for r in self.port_cmd(f"lat {count} {','.join([ns] * runs)}"):
                self.add(case if r["case"] == "lat" else case + "_ping", "port", r)
            log(f"{case}: raw")
            for _ in range(runs):
                self.add(case, "raw", self.raw(ns, "lat", count))
            log(f"{case}: nft ({self.args.nft_calls} processes per run)")
            for run in range(runs):
                self.add(case, "nft", self.nft_exec(
                    ns, self.args.nft_calls,
                    ["nft", "add", "element", "inet", "bench", "lat", f"{{ 10.202.{run}.1 }}"]))
        finally:
            self.ns.delete(ns)

    def rate_case(self, case, kind):
        """A fixed amount of work (rule commits slow down as chains grow):
        8 callers x per_caller commits."""
        per = self.args.rate_elems if kind == "elem" else self.args.rate_rules
        for run in range(self.args.runs):
            for who in ("port", "nft", "raw"):
                ns = self.ns.new()
                try:
                    self.setup(ns, "rate")
                    log(f"{case}: run {run + 1}/{self.args.runs}: {LABEL[who]}")
                    if who == "port":
                        r = self.port_cmd(f"rate {per} {kind} {ns}")[0]
                    elif who == "raw":
                        r = self.raw(ns, "rate", per * 8, kind)
                    else:
                        argv = (["nft", "add", "element", "inet", "bench", "cs%w", "{ 10.1.2.3 }"]
                                if kind == "elem" else
                                ["nft", "add", "rule", "inet", "bench", "cc%w", "tcp", "dport", "3",
                                 "counter", "drop"])
                        r = self.raw(ns, "execpar", 8, self.args.nft_rate, "--", *argv)
                    self.add(case, who, r)
                finally:
                    self.ns.delete(ns)

    def profile(self, case, line, tool):
        """Runs one port command with the port under a profiler (start_link's
        :command_prefix): perf record -e cpu-clock (user and kernel; this VM has
        no hardware counters) or valgrind --tool=callgrind (user space, exact
        instruction counts)."""
        data = os.path.join(self.tmp, re.sub(r"\W+", "_", case) + "." + tool)
        if tool == "perf":
            prefix = f"prefix=perf,record,-q,-e,cpu-clock,-F,2000,-o,{data},--"
        else:
            prefix = f"prefix=valgrind,-q,--tool=callgrind,--callgrind-out-file={data}"
        ns = self.ns.new()
        try:
            m = re.match(r"(dump|lat)( (\d+))?", line)
            if m:
                self.raw(ns, "rules", self.prof_rules if m.group(1) == "lat" else
                         int(line.split()[-1]), 10)
                if m.group(1) == "dump":
                    line = "dump"
                else:
                    self.setup(ns, "lat")
            elif line.startswith("rate"):
                self.setup(ns, "rate")
            log(f"profile ({tool}) {case}: {line}")
            res = self.port_cmd(f"{line} {ns} {prefix}")
            # The profiler writes its data once the port has exited.
            for _ in range(1200):
                if not subprocess.run(["pgrep", "-f", data], capture_output=True).stdout:
                    break
                time.sleep(0.1)
        finally:
            self.ns.delete(ns)
        out = {}
        if tool == "perf":
            for sort in ("dso", "dso,sym"):
                p = subprocess.run(["perf", "report", "-i", data, "--stdio", "--no-children",
                                    "--sort", sort, "--percent-limit", "0.7"],
                                   capture_output=True, text=True)
                out[sort] = "\n".join(ln for ln in p.stdout.splitlines()
                                      if ln.strip() and not ln.startswith("#"))
        else:
            for mode in ("self", "inclusive"):
                p = subprocess.run(["callgrind_annotate", f"--inclusive={'yes' if mode != 'self' else 'no'}",
                                    data], capture_output=True, text=True)
                lines = p.stdout.splitlines()
                try:
                    lines = lines[lines.index(next(ln for ln in lines if "file:function" in ln)) + 2:]
                except StopIteration:
                    pass
                lines = [re.sub(r"\s*\[/\S+/([^/\]]+)\]$", r"  [\1]", ln)
                         for ln in lines if ln.strip()]
                if mode == "inclusive":
                    # the port's own functions and the libraries', not main's callers,
                    # nor callgrind's recursion cycles (name'2), which count twice
                    lines = [ln for ln in lines if ("port_nftables]" in ln or "libnftnl" in ln
                             or "libmnl" in ln or "snprintf" in ln) and "'" not in ln]
                    lines = [ln for ln in lines if not re.search(
                        r"\((below main)|main\.c:main|frame\.c:nfp_reader|main\.c:on_frame|nfp_dispatch\b", ln)]
                out[mode] = "\n".join(lines[:25])
        return res, out


# --- report -----------------------------------------------------------------

def med(runs, key):
    vals = [num(r.get(key)) for r in runs if num(r.get(key)) is not None]
    return statistics.median(vals) if vals else None


def fmt(v, unit=""):
    if v is None:
        return "-"
    if abs(v) >= 100:
        s = f"{v:,.0f}"
    elif abs(v) >= 10:
        s = f"{v:.1f}"
    else:
        s = f"{v:.2f}"
    return s + unit


def sh(cmd):
    try:
        return subprocess.run(cmd, shell=True, capture_output=True, text=True).stdout.strip()
    except OSError:
        return "?"


def environment():
    cpu = sh("grep -m1 'model name' /proc/cpuinfo | cut -d: -f2").strip()
    mem = sh("awk '/MemTotal/ {printf \"%.1f GiB\", $2/1048576}' /proc/meminfo")
    buildtype = "?"
    try:
        with open(os.path.join(ROOT, "build/meson-info/intro-buildoptions.json")) as f:
            buildtype = next(o["value"] for o in json.load(f) if o["name"] == "buildtype")
    except (OSError, StopIteration, ValueError):
        pass
    return [
        ("date", datetime.datetime.now().astimezone().strftime("%Y-%m-%d %H:%M %Z")),
        ("kernel", platform.release()),
        ("CPU", f"{cpu}, {os.cpu_count()} cores, {mem}"),
        ("nft", sh("nft --version")),
        ("libnftnl / libmnl", sh("pkg-config --modversion libnftnl") + " / " +
         sh("pkg-config --modversion libmnl")),
        ("Erlang/OTP / Elixir", sh("erl -noshell -eval 'io:put_chars(erlang:system_info(otp_release)), halt().'")
         + " / " + sh("elixir --version | tail -1")),
        ("port binary", f"priv/port_nftables copied to bench/_build at the start (meson buildtype "
                        f"{buildtype}); commit {os.environ.get('BENCH_PORT_BUILD', '?')}"),
        ("raw_loader", "cc -O2"),
    ]


def rows_for(s):
    """Rows of the times table: (case, title, metric key, unit, kind); kind
    "time" (lower is better) or "rate" (higher is better). s divides sizes."""
    def k(n):
        return f"{n // s:,}"
    rows = [("rules_10k", f"load {k(10000)} rules (10 chains)"),
            ("rules_100k", f"load {k(100000)} rules (10 chains)"),
            ("elems_plain_100k", f"load {k(100000)} addresses (plain set)"),
            ("elems_plain_1m", f"load {k(1000000)} addresses (plain set)"),
            ("elems_interval_100k", f"load {k(100000)} CIDRs (interval set)"),
            ("elems_interval_1m", f"load {k(1000000)} CIDRs (interval set)"),
            ("dump_10k", f"dump {k(10000)} rules (10 chains)"),
            ("dump_100k", f"dump {k(100000)} rules (10 chains)"),
            ("dump_10k_1ch", f"dump {k(10000)} rules, 1 chain"),
            ("dump_10k_100ch", f"dump {k(10000)} rules, 100 chains"),
            ("dump_100k_1ch", f"dump {k(100000)} rules, 1 chain"),
            ("dump_100k_100ch", f"dump {k(100000)} rules, 100 chains")]
    out = [(c, t, "total_ms", " ms", "time") for c, t in rows]
    for case, title in (("lat_0", "add 1 element, empty ruleset"),
                        ("lat_100k", f"add 1 element, {k(100000)} rules loaded"),
                        ("lat_0_ping", "BEAM<->port ping (transport floor)"),
                        ("lat_100k_ping", f"BEAM<->port ping, {k(100000)} rules loaded")):
        out += [(case, f"{title}: median", "median_us", " us", "time"),
                (case, f"{title}: p99", "p99_us", " us", "time")]
    out += [("rate_elem", "commits/s, 8 callers x 12,500 one-element commits" if s == 1 else
             "commits/s, 8 callers x 1,000 one-element commits", "per_s", "/s", "rate"),
            ("rate_rule", "commits/s, 8 callers x 1,000 one-rule commits" if s == 1 else
             "commits/s, 8 callers x 200 one-rule commits", "per_s", "/s", "rate")]
    return out


def ratio(v, floor, kind):
    if v is None or not floor:
        return None
    return floor / v if kind == "rate" else v / floor


def report(b, env, started, finished, load0, load1, profiles):
    R = b.results
    out = ["# NFTables.Port benchmark: results", ""]
    out += [f"Command: `{b.args.command_line}`; median of {b.args.runs} run(s) per case and "
            f"contender{' (QUICK: smaller sizes)' if b.args.quick else ''}.", ""]
    out += ["| | |", "| --- | --- |"] + [f"| {k} | {v} |" for k, v in env]
    out += [f"| load average (1/5/15 min) | before: {load0}; after: {load1} |",
            f"| wall time of the run | {(finished - started) / 60:.1f} min |", ""]
    out += ["## Times", "",
            "Ratios are to the raw floor (bench/raw_loader.c): x times slower; for rates, "
            "raw rate / contender rate. `-`: not measured for that contender.", "",
            "| case | port | nft -f | nft -j -f | raw (floor) | port/raw | nft/raw | nft -j/raw |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, title, key, unit, kind in b.rows:
        if case not in R:
            continue
        m = {w: med(R[case].get(w, []), key) for w in CONTENDERS}
        rt = {w: ratio(m[w], m["raw"], kind) for w in CONTENDERS}
        out.append(f"| {title} | " + " | ".join(fmt(m[w], unit) for w in CONTENDERS) + " | " +
                   " | ".join(fmt(rt[w], "x") for w in ("port", "nft", "json")) + " |")
    out += ["", "nft times include starting the nft process (it is one per command: that is "
            "how nft is used); `add 1 element` for nft is one `nft add element` process per call, "
            f"{b.args.nft_calls} calls per run, and its commits/s come from 8 parallel loops of "
            f"{b.args.nft_rate} such processes each.", ""]

    # memory
    out += ["## Peak memory (VmHWM of the port process / the raw loader; max RSS of nft)", "",
            "| case | port | raw (floor) | port/raw | nft -f | nft -j -f |",
            "| --- | ---: | ---: | ---: | ---: | ---: |"]
    for case, title, key, unit, kind in b.rows:
        if case not in R or not (case.startswith("rules") or case.startswith("elems")):
            continue
        p, r = med(R[case].get("port", []), "hwm_kb"), med(R[case].get("raw", []), "hwm_kb")
        n, j = (med(R[case].get(w, []), "child_maxrss_kb") for w in ("nft", "json"))
        mib = (lambda v: None if v is None else v / 1024)
        out.append(f"| {title} | {fmt(mib(p), ' MiB')} | {fmt(mib(r), ' MiB')} | "
                   f"{fmt(ratio(p, r, 'time'), 'x')} | {fmt(mib(n), ' MiB')} | {fmt(mib(j), ' MiB')} |")
    out.append("")

    # where the time goes
    out += ["## Where the time goes (medians)", "",
            "Port: wall time of the call; CPU time of the port process (user + system; the "
            "kernel runs the transaction inside the port's sendmsg(), so system time is mostly "
            "nf_tables); `term_to_binary` / `binary_to_term` of the same request / reply and "
            "copying it to another process, timed separately in the BEAM (the GenServer decodes or "
            "encodes once per call; `GenServer.call` copies the request into the server, "
            "`GenServer.reply` the decoded reply into the caller). Port wall minus port CPU is "
            "roughly the BEAM's share. Raw: its CPU time, building the libnftnl objects and "
            "batch, then sendto() to the ACK (the kernel).", "",
            "| case | port wall | port CPU (user / sys) | BEAM encode or decode | BEAM copy | "
            "ETF bytes | raw wall | raw CPU (user / sys) | raw build | raw kernel |",
            "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"]
    for case, title, key, unit, kind in b.rows:
        if case not in R or not (case.startswith(("rules", "elems", "dump"))):
            continue
        P, W = R[case].get("port", []), R[case].get("raw", [])
        beam = med(P, "t2b_ms") if case[0] in "re" else med(P, "b2t_ms")
        size = med(P, "request_bytes") if case[0] in "re" else med(P, "reply_bytes")
        ru, rs = med(W, "user_ms"), med(W, "sys_ms")
        out.append(
            f"| {title} | {fmt(med(P, 'total_ms'), ' ms')} | {fmt(med(P, 'cpu_ms'), ' ms')} "
            f"({fmt(med(P, 'user_ms'))} / {fmt(med(P, 'sys_ms'))}) | {fmt(beam, ' ms')} | "
            f"{fmt(med(P, 'copy_ms'), ' ms')} | "
            f"{fmt(None if size is None else size / 1048576, ' MiB')} | {fmt(med(W, 'total_ms'), ' ms')} | "
            + (f"{fmt(ru + rs, ' ms')} ({fmt(ru)} / {fmt(rs)})" if ru is not None else "-") +
            f" | {fmt(med(W, 'build_ms'), ' ms')} | {fmt(med(W, 'kernel_ms'), ' ms')} |")
    out.append("")

    dumps = [(c, t) for c, t, *_ in b.rows if c.startswith("dump") and c in R]
    if dumps:
        out += ["## The quadratic dump", "",
                "The kernel resumes a rule dump by walking from the first rule the dump covers "
                "to where the previous skb (at most 32 KiB) ended. One GETRULE dump of everything "
                "(what `nft list ruleset` does) is therefore quadratic in the total number of "
                "rules; a dump per chain (table and chain named, what the port and the raw floor "
                "do) only in each chain's length. Medians:", "",
                "| case | raw, a dump per chain (floor) | raw, one dump of everything | port | "
                "nft list ruleset |", "| --- | ---: | ---: | ---: | ---: |"]
        for c, t in dumps:
            out.append(f"| {t} | " + " | ".join(fmt(med(R[c].get(w, []), "total_ms"), " ms")
                                               for w in ("raw", "raw_all", "port", "nft")) + " |")
        out.append("")

    out += targets(b)

    # equivalence
    out += ["## Same ruleset for every contender", "",
            "`nft list ruleset` of each contender's namespace after the first run, compared "
            "with what `nft -f` loaded from the text:", ""]
    for case, lst in b.listings.items():
        ref = lst.get("nft")
        for who in ("port", "json", "raw"):
            if who not in lst or ref is None:
                continue
            if lst[who] == ref:
                out.append(f"- {case}: {LABEL[who]}: identical ({len(ref.splitlines())} lines)")
            elif sorted(re.split(r"[\s,]+", lst[who])) == sorted(re.split(r"[\s,]+", ref)):
                # A hash set lists its elements in hash order, which differs
                # from one namespace (hash seed) to the next.
                out.append(f"- {case}: {LABEL[who]}: the same elements, listed in another "
                           f"order (hash set) ({len(ref.splitlines())} lines)")
            else:
                a, c = ref.splitlines(), lst[who].splitlines()
                diff = [f"{x!r} vs {y!r}" for x, y in zip(a, c) if x != y][:3]
                out.append(f"- {case}: {LABEL[who]}: DIFFERS ({len(a)} vs {len(c)} lines; first: "
                           f"{'; '.join(diff)})")
    out.append("")

    # notes and raw runs
    if b.notes:
        out += ["## Notes", ""] + [f"- {c}: {'; '.join(n)}" for c, n in b.notes.items()] + [""]
    out += ["## Every run", "", "<details><summary>key=value lines per case and contender</summary>", "",
            "```"]
    for case, by in R.items():
        for who, runs in by.items():
            for i, r in enumerate(runs):
                out.append(f"{case} {who} {i + 1}: " + " ".join(f"{k}={v}" for k, v in r.items()
                                                                 if k not in ("case",)))
    out += ["```", "", "</details>", ""]

    if profiles:
        out += ["## Profiles of the port", "",
                "The port process only (not the BEAM), run under a profiler through "
                "`start_link`'s `:command_prefix`, so slower than unprofiled. `perf record -e "
                "cpu-clock` samples user and kernel by timer (this VM has no hardware counters, and "
                "its paravirtual interrupt handling piles some kernel samples onto "
                "`pvm_irq_enable`); callgrind counts user-space instructions exactly (no kernel).",
                ""]
        for case, (res, rep) in profiles.items():
            out += [f"### {case}", "", "The profiled run: `" +
                    " ".join(f"{k}={v}" for k, v in (res[0] if res else {}).items()) + "`", ""]
            if "dso" in rep:
                out += ["By object:", "", "```", rep["dso"], "```", "", "By symbol:", "", "```",
                        "\n".join(rep["dso,sym"].splitlines()[:30]), "```", ""]
            else:
                out += ["Instructions by function, self:", "", "```", rep["self"], "```", "",
                        "Inclusive (the port's functions and libnftnl/libmnl):", "", "```",
                        rep["inclusive"], "```", ""]
    return "\n".join(out)


def targets(b):
    R = b.results

    def m(case, who, key):
        return med(R.get(case, {}).get(who, []), key)

    rows = []

    def within(label, case, key, limit):
        p, r = m(case, "port", key), m(case, "raw", key)
        if p is None or r is None:
            return
        x = p / r
        rows.append((label, f"{fmt(p)} vs raw {fmt(r)} ms: {x:.2f}x", x <= limit,
                     f"{'under' if x <= limit else 'over'} by {abs(x - limit) / limit * 100:.0f}%"))

    big = "" if not b.args.quick else " (quick sizes)"
    within(f"load 100k rules <= 1.15x raw{big}", "rules_100k", "total_ms", 1.15)
    within(f"load 1M addresses <= 1.15x raw{big}", "elems_plain_1m", "total_ms", 1.15)
    within(f"load 1M CIDRs <= 1.15x raw{big}", "elems_interval_1m", "total_ms", 1.15)
    within("dump 10k rules <= 1.15x raw", "dump_10k", "total_ms", 1.15)
    within(f"dump 100k rules <= 1.15x raw{big}", "dump_100k", "total_ms", 1.15)
    l0, l1 = m("lat_0", "port", "median_us"), m("lat_100k", "port", "median_us")
    if l1 is not None:
        rows.append(("1-element commit median < 100 us with 100k rules", f"{fmt(l1)} us", l1 < 100,
                     f"{'under' if l1 < 100 else 'over'} by {abs(l1 - 100):.0f} us"))
    if l0 is not None and l1 is not None:
        d = l1 - l0
        ok = abs(d) <= max(5, 0.1 * l0)
        rows.append(("... and the same as with no rules (within 10% or 5 us)",
                     f"{fmt(l0)} us empty, {fmt(l1)} us with 100k rules", ok, f"{d:+.0f} us"))
    for case, what in (("rate_elem", "elements"), ("rate_rule", "rules")):
        v = m(case, "port", "per_s")
        if v is not None:
            rows.append((f">= 20,000 commits/s from 8 callers ({what})", f"{v:,.0f}/s", v >= 20000,
                         f"{'over' if v >= 20000 else 'under'} by {abs(v - 20000) / 200:.0f}%"))
    p, r = m("rules_100k", "port", "hwm_kb"), m("rules_100k", "raw", "hwm_kb")
    if p and r:
        rows.append((f"port peak memory, 100k-rule load, < 2x raw{big}",
                     f"{p / 1024:.1f} MiB vs {r / 1024:.1f} MiB: {p / r:.2f}x", p / r < 2,
                     f"{'under' if p / r < 2 else 'over'} by {abs(p / r - 2) / 2 * 100:.0f}%"))
    out = ["## Targets", "", "| target | measured (medians) | met? | margin |", "| --- | --- | --- | --- |"]
    out += [f"| {a} | {c} | {'met' if ok else '**missed**'} | {d} |" for a, c, ok, d in rows]
    return out + [""]


# --- main -------------------------------------------------------------------

def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument("--profile", action="store_true")
    ap.add_argument("--only", default="", help="comma-separated case prefixes")
    ap.add_argument("--raw", required=True)
    ap.add_argument("--mix-env", default="prod")
    ap.add_argument("--out", default=os.path.join(BENCH, "results", "latest.md"))
    ap.add_argument("--command-line", default="bench/run")
    args = ap.parse_args()
    if args.quick:
        args.lat_calls, args.nft_calls = 200, 20
        args.rate_elems, args.rate_rules, args.nft_rate = 1000, 200, 5
    else:
        args.lat_calls, args.nft_calls = 1000, 100
        args.rate_elems, args.rate_rules, args.nft_rate = 12500, 1000, 25
    b = Bench(args)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(1))

    s = 10 if args.quick else 1        # the quick sizes are a tenth
    b.rows = rows_for(s)
    b.prof_rules = 100000 // s
    plan = [
        ("rules_10k", lambda: b.load_case("rules_10k", "rules", 10000 // s, 10, True)),
        ("rules_100k", lambda: b.load_case("rules_100k", "rules", 100000 // s, 10, False)),
        ("elems_plain_100k", lambda: b.load_case("elems_plain_100k", "elems", 100000 // s, "plain", True)),
        ("elems_interval_100k", lambda: b.load_case("elems_interval_100k", "elems", 100000 // s, "interval", True)),
        ("elems_plain_1m", lambda: b.load_case("elems_plain_1m", "elems", 1000000 // s, "plain", False)),
        ("elems_interval_1m", lambda: b.load_case("elems_interval_1m", "elems", 1000000 // s, "interval", False)),
        ("dump_10k", lambda: b.dump_case("dump_10k", 10000 // s, 10)),
        ("dump_100k", lambda: b.dump_case("dump_100k", 100000 // s, 10)),
        ("dump_10k_1ch", lambda: b.dump_case("dump_10k_1ch", 10000 // s, 1)),
        ("dump_10k_100ch", lambda: b.dump_case("dump_10k_100ch", 10000 // s, 100)),
        ("dump_100k_1ch", lambda: b.dump_case("dump_100k_1ch", 100000 // s, 1)),
        ("dump_100k_100ch", lambda: b.dump_case("dump_100k_100ch", 100000 // s, 100)),
        ("lat_0", lambda: b.lat_case("lat_0", 0)),
        ("lat_100k", lambda: b.lat_case("lat_100k", 100000 // s)),
        ("rate_elem", lambda: b.rate_case("rate_elem", "elem")),
        ("rate_rule", lambda: b.rate_case("rate_rule", "rule")),
    ]
    only = [p for p in args.only.split(",") if p]
    load0 = open("/proc/loadavg").read().split()[:3]
    started = time.time()
    env = environment()
    for name, fn in plan:
        if only and not any(name.startswith(p) for p in only):
            continue
        fn()
    profiles = {}
    if args.profile:
        n = 100000 // s
        for case, line, tool in (
                (f"perf: load {n:,} rules", f"rules {n} 10", "perf"),
                (f"perf: load {1000000 // s:,} addresses", f"elems {1000000 // s} plain", "perf"),
                (f"perf: dump {n:,} rules (10 chains)", f"dump {n}", "perf"),
                (f"perf: {args.lat_calls * 5:,} one-element commits, {n:,} rules loaded",
                 f"lat {args.lat_calls * 5}", "perf"),
                (f"perf: 8 callers x {args.rate_elems:,} one-element commits",
                 f"rate {args.rate_elems} elem", "perf"),
                (f"callgrind: load {n // 10:,} rules", f"rules {n // 10} 10", "callgrind"),
                (f"callgrind: load {n:,} addresses", f"elems {n} plain", "callgrind"),
                (f"callgrind: dump {n // 10:,} rules (10 chains)", f"dump {n // 10}", "callgrind")):
            profiles[case] = b.profile(case, line, tool)
    finished = time.time()
    load1 = open("/proc/loadavg").read().split()[:3]
    if b.port:
        b.port.stdin.close()
        b.port.wait(timeout=60)
    text = report(b, env, started, finished, " ".join(load0), " ".join(load1), profiles)
    os.makedirs(os.path.dirname(args.out), exist_ok=True)
    with open(args.out, "w") as f:
        f.write(text)
    print(text)
    log(f"written to {args.out}")


if __name__ == "__main__":
    main()
