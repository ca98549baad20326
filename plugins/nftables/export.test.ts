/**
 * `op export` of nftables from the text nft prints (`nft -a -s list ruleset`, recorded from
 * nft 1.0.6): tables with op's mark only, unless all; sets, maps, wrapped elements, dynamic
 * sets without elements, base chains, and what the format lacks told as notes. The round trip
 * through nft itself is test/export.system.test.ts.
 */
import { describe, expect, it } from "vitest";
import { validate_nftables } from "../../src/generated/validators.js";
import { exportFromListing } from "./export.js";

const listing = `table inet opex_t { # handle 1
\tcomment "managed by op"
\tset lab { # handle 3
\t\ttype ipv4_addr
\t\tflags interval
\t\telements = { 198.18.0.0/24, 198.18.9.9 }
\t}

\tset pairs { # handle 4
\t\ttype ipv4_addr . inet_service
\t\telements = { 198.18.0.1 . 22,
\t\t\t     198.18.0.2 . 80 }
\t}

\tset dyn { # handle 5
\t\ttypeof ip saddr
\t\tsize 1000
\t\tflags dynamic,timeout
\t\ttimeout 1h
\t\tcomment "d"
\t\telements = { 198.18.3.3 timeout 1h expires 59m }
\t}

\tmap verdicts { # handle 6
\t\ttype ipv4_addr : verdict
\t\telements = { 198.18.1.1 : drop, 198.18.1.2 : jump services }
\t}

\tchain services { # handle 1
\t\tudp dport 53 accept # handle 8
\t}

\tchain input { # handle 2
\t\ttype filter hook input priority filter; policy drop;
\t\tct state established,related accept # handle 9
\t\ttcp dport { 22, 80 } counter accept # handle 11
\t\tip saddr @lab accept comment "lab" # handle 12
\t}

\tchain ingress { # handle 14
\t\ttype filter hook ingress device "opexv0" priority -150; policy accept;
\t}
}
table ip foreign { # handle 2
\tflowtable ft { # handle 3
\t\thook ingress priority filter
\t\tdevices = { opexv0 }
\t}

\tchain c { # handle 1
\t\tcounter # handle 2
\t}
}
`;

describe("nftables export from nft's text", () => {
  it("gives op's tables in the file's format", () => {
    const { section, notes } = exportFromListing(listing, { all: false });
    expect(validate_nftables(section), JSON.stringify(validate_nftables.errors)).toBe(true);
    expect(section).toEqual({
      tables: [
        {
          family: "inet",
          name: "opex_t",
          sets: [
            {
              name: "lab",
              type: "ipv4_addr",
              flags: ["interval"],
              elements: ["198.18.0.0/24", "198.18.9.9"],
            },
            {
              name: "pairs",
              type: "ipv4_addr . inet_service",
              elements: ["198.18.0.1 . 22", "198.18.0.2 . 80"],
            },
            {
              name: "dyn",
              type: "typeof ip saddr",
              size: 1000,
              flags: ["dynamic", "timeout"],
              timeout: "1h",
              comment: "d",
            },
          ],
          maps: [
            {
              name: "verdicts",
              type: "ipv4_addr",
              map: "verdict",
              elements: [
                ["198.18.1.1", "drop"],
                ["198.18.1.2", "jump services"],
              ],
            },
          ],
          chains: [
            { name: "services", rules: ["udp dport 53 accept"] },
            {
              name: "input",
              type: "filter",
              hook: "input",
              priority: "filter",
              policy: "drop",
              rules: [
                "ct state established,related accept",
                "tcp dport { 22, 80 } counter accept",
                'ip saddr @lab accept comment "lab"',
              ],
            },
            {
              name: "ingress",
              type: "filter",
              hook: "ingress",
              device: "opexv0",
              priority: -150,
              policy: "accept",
            },
          ],
        },
      ],
    });
    expect(notes).toEqual([
      "flowtable ft in table ip/foreign: op's format has no flowtables; left out",
    ]);
  });

  it("with all, also the tables op did not mark", () => {
    const { section } = exportFromListing(listing, { all: true });
    expect(validate_nftables(section)).toBe(true);
    expect((section as { tables: { name: string }[] }).tables.map((t) => t.name)).toEqual([
      "opex_t",
      "foreign",
    ]);
  });

  it("exports nothing from an empty ruleset", () => {
    expect(exportFromListing("", { all: true })).toEqual({ section: undefined, notes: [] });
  });
});
