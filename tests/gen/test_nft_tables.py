"""schema/nft/ says what the installed nft (1.0.6) does.

The tables of schema/nft/ (datatypes, protocol header templates, extension
headers and options, expression keys) were taken from nftables 1.0.6's
sources. This test holds them against the nft binary itself, in a fresh
network namespace (`unshare -n`, never the host's ruleset):

- `nft describe <expr>` for every protocol field, extension header field,
  TCP/IP option field, SCTP chunk field and meta/ct/rt/fib/socket/osf/ipsec
  key: the datatype nft names and its length must be what the tables say,
  and for a datatype with a symbol table, the symbols (in order) and their
  values;
- `nft --debug=netlink` for every payload and extension header field: the
  bytes nft loads (base, byte offset, byte length, the mask of a bit field)
  must follow from the field's offset and length in bits; and for every
  meta key the kernel key nft loads must be the one the table names.

Skipped (with a message) when nft or unshare is missing or the namespace
cannot be made (not root). Run from the repository root:

    /usr/bin/python3 -m unittest tests.gen.test_nft_tables
"""

import os
import re
import shutil
import subprocess
import tempfile
import unittest

import yaml

HERE = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(os.path.dirname(HERE))
NFT_DIR = os.path.join(REPO, "schema", "nft")
ENUMS = os.path.join(REPO, "schema", "enums.yaml")
NFT = shutil.which("nft") or "/usr/sbin/nft"
UNSHARE = shutil.which("unshare")


def _load(name):
    with open(os.path.join(NFT_DIR, name), encoding="utf-8") as f:
        return yaml.safe_load(f)


def _can_run():
    if not UNSHARE or not os.path.exists(NFT):
        return "nft or unshare not installed"
    try:
        r = subprocess.run([UNSHARE, "-n", NFT, "-v"], capture_output=True, text=True, timeout=30)
    except OSError as e:
        return str(e)
    if r.returncode != 0:
        return "cannot run nft in a new network namespace: " + r.stderr.strip()
    if "v1.0.6" not in r.stdout:
        return "the tables describe nft 1.0.6, installed: " + r.stdout.strip()
    return None


SKIP = _can_run()


def nft_batch(text):
    """Runs the nft script `text` in a new network namespace with
    --debug=netlink; returns stdout+stderr (the bytecode nft sends)."""
    with tempfile.NamedTemporaryFile("w", suffix=".nft", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = subprocess.run([UNSHARE, "-n", NFT, "--debug=netlink", "-f", path],
                           capture_output=True, text=True, timeout=120)
    finally:
        os.unlink(path)
    return r.returncode, r.stdout + r.stderr


def describe_all(exprs):
    """`nft describe` for each expression, all in one namespace; returns
    {expr: output}."""
    script = ""
    for i, e in enumerate(exprs):
        script += f"echo '@@{i}'; {NFT} describe '{e}' 2>&1; "
    r = subprocess.run([UNSHARE, "-n", "sh", "-c", script], capture_output=True, text=True, timeout=300)
    out = {}
    parts = re.split(r"^@@(\d+)\n", r.stdout, flags=re.M)
    for i in range(1, len(parts), 2):
        out[exprs[int(parts[i])]] = parts[i + 1]
    return out


HEAD = re.compile(r"^\S+ expression, datatype (\S+) \(([^)]*)\)(?: \(basetype [^)]*\))?, (\d+) (bits|characters)")


def parse_describe(text):
    """(datatype name, length in bits, [(symbol, value)] or None)."""
    lines = text.splitlines()
    m = HEAD.match(lines[0]) if lines else None
    if not m:
        return None
    bits = int(m.group(3)) * (8 if m.group(4) == "characters" else 1)
    syms = None
    for i, line in enumerate(lines):
        if line.startswith("pre-defined symbolic constants"):
            base = 16 if "hexadecimal" in line else 10
            syms = []
            for s in lines[i + 1:]:
                if not s.startswith("\t"):
                    break
                name, value = s.strip().rsplit(None, 1)
                syms.append((name, int(value, base)))
            break
    return m.group(1), bits, syms


# Fields nft 1.0.6's text grammar has no words for (they are in nft's
# templates, so nft prints them, but `nft describe` and rules cannot name
# them): the tests check that nft refuses them, so the list stays true.
NOT_PARSABLE = {
    "rt0 reserved",  # rt0_hdr_field is only addr[N]
}
for _opt in ("eol", "nop", "maxseg", "window", "sack-perm", "sack", "timestamp", "md5sig",
             "mptcp", "fastopen"):
    NOT_PARSABLE.add(f"tcp option {_opt} kind")  # tcp options have no "kind" field word


@unittest.skipIf(SKIP, SKIP or "")
class NftTablesTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.datatypes = {d["name"]: d for d in _load("datatypes.yaml")["datatypes"]}
        cls.protocols = _load("protocols.yaml")["protocols"]
        cls.exthdrs = _load("exthdrs.yaml")["exthdrs"]
        cls.keys = _load("keys.yaml")

    def nft_name(self, dtype):
        return self.datatypes[dtype].get("nft-name", dtype)

    def check_described(self, expected):
        """expected: {expr: (datatype, bits)}; compares with nft describe,
        and the symbol tables of the datatypes."""
        got = describe_all(list(expected))
        errors = []
        for expr, (dtype, bits) in expected.items():
            d = parse_describe(got.get(expr, ""))
            if expr in NOT_PARSABLE:
                if d is not None or "syntax error" not in got.get(expr, ""):
                    errors.append(f"{expr!r}: listed as not parsable, nft says {got.get(expr, '')!r}")
                continue
            if d is None:
                errors.append(f"{expr!r}: nft describe says {got.get(expr, '')!r}")
                continue
            name, nbits, syms = d
            if name != self.nft_name(dtype) or nbits != bits:
                errors.append(f"{expr!r}: tables say {self.nft_name(dtype)}/{bits} bits, nft {name}/{nbits}")
            table = self.datatypes[dtype].get("symbols")
            if table is not None and syms is not None:
                want = [(s["name"], s["value"]) for s in table]
                if syms != want:
                    errors.append(f"{expr!r}: symbols of {dtype}: tables {want}, nft {syms}")
        if errors:
            self.fail(f"{len(errors)} mismatches:\n" + "\n".join(errors))

    # --- nft describe ------------------------------------------------------

    def test_protocol_fields_describe(self):
        expected = {}
        for p in self.protocols:
            for f in p.get("fields") or []:
                if "meta-key" in f:
                    continue
                expected[f"{p['name']} {f.get('text-name', f['name'])}"] = (f["type"], f["len"])
        self.assertGreater(len(expected), 90)
        self.check_described(expected)

    def test_exthdr_fields_describe(self):
        expected = {}
        prefix = {"ipv6": "", "tcp-options": "tcp option ", "ip-options": "ip option ",
                  "sctp-chunks": "sctp chunk "}
        for group, entries in self.exthdrs.items():
            for e in entries:
                for f in e.get("fields") or []:
                    expected[f"{prefix[group]}{e['name']} {f['name']}"] = (f["type"], f["len"])
        self.assertGreater(len(expected), 80)
        self.check_described(expected)

    def test_keys_describe(self):
        expected = {}
        for k in self.keys["meta"]:
            expected[f"meta {k['name']}"] = (k["type"], k["size"])
        for k in self.keys["ct"]:
            if k["type"] == "invalid":
                continue  # ct saddr/daddr/proto-src/proto-dst: the type comes from the context
            d = "original " if k["dir"] == "required" else ""
            expected[f"ct {d}{k['name']}"] = (k["type"], k["size"])
        for k in self.keys["rt"]:
            fam = k.get("family")
            expected[f"rt {fam + ' ' if fam else ''}{k['name']}"] = (k["type"], k["size"])
        for k in self.keys["socket"]:
            expected[f"socket {k['name']}{' level 1' if k.get('level') else ''}"] = (k["type"], k["size"])
        for k in self.keys["ipsec"]:
            fam = k.get("family")
            expected[f"ipsec in {fam + ' ' if fam else ''}{k['name']}"] = (k["type"], k["size"])
        for k in self.keys["osf"]:
            expected[f"osf {k['name']}"] = (k["type"], k["size"])
        for k in self.keys["fib"]:
            if k.get("kind") == "result":
                expected[f"fib daddr {k['name']}"] = (k["type"], k["size"])
        self.check_described(expected)

    def test_symbol_tables(self):
        """Every symbol table, in order and with its values, as nft describe
        lists it for an expression of that datatype."""
        exprs = {}
        for p in self.protocols:
            for f in p.get("fields") or []:
                if "meta-key" not in f:
                    exprs.setdefault(f["type"], f"{p['name']} {f.get('text-name', f['name'])}")
        for k in self.keys["meta"]:
            exprs.setdefault(k["type"], f"meta {k['name']}")
        for k in self.keys["ct"]:
            if k["dir"] == "none":
                exprs.setdefault(k["type"], f"ct {k['name']}")
        for k in self.keys["fib"]:
            if k.get("kind") == "result":
                exprs.setdefault(k["type"], f"fib daddr {k['name']}")
        exprs.setdefault("mh_type", "mh type")
        not_reachable = {
            "icmpx_code",  # only the code of `reject with icmpx`: no expression to describe
        }
        wanted = {n: d for n, d in self.datatypes.items() if d.get("symbols") and n not in not_reachable}
        missing = sorted(set(wanted) - set(exprs))
        self.assertEqual(missing, [], "no expression to describe these datatypes with")
        got = describe_all([exprs[n] for n in wanted])
        errors = []
        for n, d in wanted.items():
            r = parse_describe(got.get(exprs[n], ""))
            want = [(s["name"], s["value"]) for s in d["symbols"]]
            if r is None or r[0] != self.nft_name(n) or r[2] != want:
                errors.append(f"{n} ({exprs[n]!r}): tables {want}, nft {got.get(exprs[n])!r}")
        if errors:
            self.fail(f"{len(errors)} mismatches:\n" + "\n".join(errors))
        self.assertGreater(len(wanted), 20)

    # --- bytecode ----------------------------------------------------------

    FAMILY = {"ll": "bridge", "nh": None, "th": "ip"}

    def sample(self, dtype, bits):
        # `==` makes nft compare a flag type whole (without it, `tcp flags syn`
        # is a bit test with a mask)
        eq = "== " if self.datatypes[dtype]["format"] == "bitmask" else ""
        return eq + {
            "ipv4_addr": "1.2.3.4", "ipv6_addr": "::1", "ether_addr": "00:11:22:33:44:55",
            "ether_type": "ip", "inet_proto": "255", "inet_service": "22", "arp_op": "request",
            "tcp_flag": "syn", "icmp_type": "echo-request", "icmpv6_type": "echo-request",
            "icmp_code": "1", "icmpv6_code": "1", "igmp_type": "membership-query", "dscp": "cs1",
            "ecn": "ce", "dccp_pkttype": "request", "mh_type": "home-test",
        }.get(dtype, "1")

    LOAD = re.compile(r"\[ payload load (\d+)b @ (link|network|transport) header \+ (\d+) => reg 1 \]"
                      r"(?:\n  \[ bitwise reg 1 = \( reg 1 & (0x[0-9a-f]+) \) \^ 0x0+ \])?")
    BASES = {"ll": "link", "nh": "network", "th": "transport"}

    @staticmethod
    def expected_load(offset, bits):
        start = offset // 8
        end = (offset + bits + 7) // 8
        mask = None
        if offset % 8 or bits % 8:
            # nft's mask is the field's bits within the loaded bytes, written
            # as a host (little endian) 32-bit word per register
            n = end - start
            m = ((1 << bits) - 1) << (n * 8 - (offset - start * 8) - bits)
            mask = m.to_bytes(n, "big")
        return start, end - start, mask

    def test_payload_offsets(self):
        rules = {"bridge": [], "ip": [], "ip6": [], "arp": []}
        want = {k: [] for k in rules}
        for p in self.protocols:
            if p.get("pseudo"):
                continue
            fam = {"ether": "bridge", "vlan": "bridge", "arp": "arp", "ip": "ip", "ip6": "ip6",
                   "icmpv6": "ip6"}.get(p["name"], "ip")
            # vlan sits on ether: nft adds the ether header length
            shift = 112 if p["name"] == "vlan" else 0
            for f in p.get("fields") or []:
                if "meta-key" in f:
                    continue
                rules[fam].append(f"{p['name']} {f.get('text-name', f['name'])} {self.sample(f['type'], f['len'])}")
                want[fam].append((p["name"], f["name"], p["base"], f["offset"] + shift, f["len"]))
        errors = []
        for fam, rs in rules.items():
            script = f"table {fam} t {{\n chain c {{\n" + "".join(f"  {r}\n" for r in rs) + " }\n}\n"
            rc, out = nft_batch(script)
            self.assertEqual(rc, 0, out)
            blocks = [b for b in re.split(rf"^{fam} t c\n", out, flags=re.M)[1:]]
            self.assertEqual(len(blocks), len(rs), out)
            for (proto, field, base, offset, bits), block in zip(want[fam], blocks):
                loads = list(self.LOAD.finditer(block))
                start, nbytes, mask = self.expected_load(offset, bits)
                hit = False
                for m in loads:
                    if m.group(2) != self.BASES[base] or int(m.group(3)) != start or int(m.group(1)) != nbytes:
                        continue
                    if mask is None and m.group(4) is None:
                        hit = True
                    elif mask is not None and m.group(4) is not None:
                        got = int(m.group(4), 16).to_bytes(4, "little")[:nbytes]
                        hit = got == mask
                    if hit:
                        break
                if not hit:
                    errors.append(f"{proto} {field}: expected {self.BASES[base]} +{start} {nbytes}b "
                                  f"mask {mask.hex() if mask else None}, nft:\n{block}")
        if errors:
            self.fail(f"{len(errors)} mismatches:\n" + "\n".join(errors))

    EXTLOAD = re.compile(r"\[ exthdr load (?:(ipv6|tcpopt|ipv4) )?(\d+)b @ (\d+) \+ (\d+)")
    # libnftnl 1.2.4 prints no op name for sctp (its op table stops at ipv4)
    EXTOP = {"ipv6": "ipv6", "tcp-options": "tcpopt", "ip-options": "ipv4", "sctp-chunks": None}

    def test_exthdr_offsets(self):
        rules, want = [], []
        for group, entries in self.exthdrs.items():
            op = self.EXTOP[group]
            prefix = {"ipv6": "", "tcp-options": "tcp option ", "ip-options": "ip option ",
                      "sctp-chunks": "sctp chunk "}[group]
            for e in entries:
                num = e.get("type", e.get("kind"))
                for f in e.get("fields") or []:
                    if f"{prefix}{e['name']} {f['name']}" in NOT_PARSABLE:
                        continue
                    rules.append(f"{prefix}{e['name']} {f['name']} {self.sample(f['type'], f['len'])}")
                    want.append((op, num, f["offset"], f["len"], rules[-1]))
        script = "table inet t {\n chain c {\n" + "".join(f"  {r}\n" for r in rules) + " }\n}\n"
        rc, out = nft_batch(script)
        self.assertEqual(rc, 0, out)
        blocks = re.split(r"^inet t c\n", out, flags=re.M)[1:]
        self.assertEqual(len(blocks), len(rules), out)
        errors = []
        for (op, num, offset, bits, rule), block in zip(want, blocks):
            m = self.EXTLOAD.search(block)
            start, nbytes, _ = self.expected_load(offset, bits)
            if not m or (m.group(1), int(m.group(3)), int(m.group(4)), int(m.group(2))) != (op, num, start, nbytes):
                errors.append(f"{rule}: expected {op} {nbytes}b @ {num} + {start}, nft:\n{block}")
        if errors:
            self.fail(f"{len(errors)} mismatches:\n" + "\n".join(errors))

    def test_meta_keys_load(self):
        """The kernel key nft loads for `meta <name>` is our enums.yaml atom's
        constant (libnftnl prints the key by its kernel name)."""
        with open(ENUMS, encoding="utf-8") as f:
            enums = {e["name"]: e for e in yaml.safe_load(f)["enums"]}
        consts = {x["name"]: x["const"] for x in enums["meta_key"]["entries"]}
        rules, want = {"inet": [], "bridge": []}, {"inet": [], "bridge": []}
        for k in self.keys["meta"]:
            if k["name"] == "secmark":
                continue  # nft refuses `meta secmark <constant>` (secmarks are objects)
            if k["name"] == "nftrace":
                continue  # the kernel cannot load nftrace (EOPNOTSUPP), only set it
            fam = "bridge" if k["key"].startswith("bri_") else "inet"
            rules[fam].append(f"meta {k['name']} {self.sample(k['type'], k['size'])}")
            want[fam].append(consts[k["key"]])
        # libnftnl's names of the meta keys (src/expr/meta.c meta_key2str_array)
        libnftnl = {"NFT_META_LEN": "len", "NFT_META_PROTOCOL": "protocol", "NFT_META_PRIORITY": "priority",
                    "NFT_META_MARK": "mark", "NFT_META_IIF": "iif", "NFT_META_OIF": "oif",
                    "NFT_META_IIFNAME": "iifname", "NFT_META_OIFNAME": "oifname",
                    "NFT_META_IIFTYPE": "iiftype", "NFT_META_OIFTYPE": "oiftype",
                    "NFT_META_SKUID": "skuid", "NFT_META_SKGID": "skgid", "NFT_META_NFTRACE": "nftrace",
                    "NFT_META_RTCLASSID": "rtclassid", "NFT_META_SECMARK": "secmark",
                    "NFT_META_NFPROTO": "nfproto", "NFT_META_L4PROTO": "l4proto",
                    "NFT_META_BRI_IIFNAME": "bri_iifname", "NFT_META_BRI_OIFNAME": "bri_oifname",
                    "NFT_META_PKTTYPE": "pkttype", "NFT_META_CPU": "cpu", "NFT_META_IIFGROUP": "iifgroup",
                    "NFT_META_OIFGROUP": "oifgroup", "NFT_META_CGROUP": "cgroup",
                    "NFT_META_PRANDOM": "prandom", "NFT_META_SECPATH": "secpath",
                    "NFT_META_IIFKIND": "iifkind", "NFT_META_OIFKIND": "oifkind",
                    "NFT_META_BRI_IIFPVID": "bri_iifpvid", "NFT_META_BRI_IIFVPROTO": "bri_iifvproto",
                    "NFT_META_TIME_NS": "time", "NFT_META_TIME_DAY": "day", "NFT_META_TIME_HOUR": "hour",
                    "NFT_META_SDIF": "sdif", "NFT_META_SDIFNAME": "sdifname"}
        errors = []
        for fam in rules:
            script = f"table {fam} t {{\n chain c {{\n" + "".join(f"  {r}\n" for r in rules[fam]) + " }\n}\n"
            rc, out = nft_batch(script)
            # nft prints the bytecode before the kernel sees it; a kernel
            # without a module (nft_meta_bridge) may refuse the rule after that
            errs = [l for l in out.splitlines() if "Error:" in l]
            self.assertTrue(rc == 0 or all("Operation not supported" in l for l in errs), out)
            blocks = re.split(rf"^{fam} t c\n", out, flags=re.M)[1:]
            self.assertEqual(len(blocks), len(rules[fam]), out)
            for rule, const, block in zip(rules[fam], want[fam], blocks):
                m = re.search(r"\[ meta load (\S+) => reg 1 \]", block)
                if not m or m.group(1) != libnftnl[const]:
                    errors.append(f"{rule}: expected meta load {libnftnl[const]}, nft:\n{block}")
        if errors:
            self.fail(f"{len(errors)} mismatches:\n" + "\n".join(errors))


if __name__ == "__main__":
    unittest.main()
