/** Fixtures the nftables plugin's unit and system tests share. */

/** Real nft output (nft 1.0.6, `-j -s`), trimmed to one table with one of each kind. */
export const nftListing = JSON.stringify({
  nftables: [
    { metainfo: { version: "1.0.6", release_name: "Lester Gooch #5", json_schema_version: 1 } },
    { table: { family: "inet", name: "t", handle: 7 } },
    {
      set: {
        family: "inet",
        name: "s",
        table: "t",
        type: "ipv4_addr",
        handle: 3,
        flags: ["timeout"],
        elem: [{ elem: { val: "198.18.0.1", timeout: 3600, expires: 3599 } }, "198.18.0.2"],
      },
    },
    {
      map: {
        family: "inet",
        name: "v",
        table: "t",
        type: "inet_service",
        handle: 4,
        map: "verdict",
        elem: [[22, { jump: { target: "d" } }]],
      },
    },
    {
      chain: {
        family: "inet",
        table: "t",
        name: "c",
        handle: 1,
        type: "filter",
        hook: "input",
        prio: 0,
        policy: "drop",
      },
    },
    { chain: { family: "inet", table: "t", name: "d", handle: 2 } },
    {
      rule: {
        family: "inet",
        table: "t",
        chain: "c",
        handle: 9,
        comment: "x",
        expr: [{ counter: null }, { accept: null }],
      },
    },
    { counter: { family: "inet", name: "hits", table: "t", handle: 5 } },
    { table: { family: "ip", name: "other", handle: 8 } },
  ],
});
