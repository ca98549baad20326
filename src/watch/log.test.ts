import { describe, expect, it } from "vitest";
import { createLog } from "./log.js";

describe("watch log", () => {
  const at = () => new Date("2026-12-03T06:00:00Z");

  it("writes key=value text, quoting what is not one word, leaving out undefined fields", () => {
    const lines: string[] = [];
    const log = createLog("text", (line) => lines.push(line), at);
    log("hint", {
      source: "ip",
      id: undefined,
      what: 'link br0 "deleted"\nx',
      plugins: ["lxc", "network"],
    });
    expect(lines).toEqual([
      'event=hint source=ip what="link br0 \\"deleted\\"\\nx" plugins=lxc,network\n',
    ]);
  });

  it("writes one JSON object per line with its time", () => {
    const lines: string[] = [];
    const log = createLog("json", (line) => lines.push(line), at);
    log("run-end", { corrected: 2, ok: true, error: undefined });
    expect(lines).toHaveLength(1);
    expect(JSON.parse(lines[0] as string)).toEqual({
      time: "2026-12-03T06:00:00.000Z",
      event: "run-end",
      corrected: 2,
      ok: true,
    });
  });
});
