/**
 * Declared files (plugins/lxc/files/) on the real Incus daemon: `op plan` of one container with
 * 100 converged declared files (1 KiB each), against a node process that starts and fetches the
 * same 100 files through the REST API (`GET /1.0/instances/NAME/files?path=...`, all at once
 * over one keep-alive agent) and nothing else. op's plan also makes its query's bulk reads
 * (instances, images, networks, storage pools, projects, profiles); the floor does not. The
 * container is `opbench-…` and removed at the end, whatever happens.
 */
import { randomBytes } from "node:crypto";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadSettings } from "../src/host/settings.js";
import { type Figure, interleavedMediansMs, isolatedEnv, runOrThrow } from "./measure.js";
import { opBinary } from "./startup.js";

const socket = loadSettings(process.env).incus.socket;

/** A node start plus one GET of each file's path, all in flight together. */
function floorScript(name: string, paths: readonly string[]): string {
  return `
const http = require("node:http");
const agent = new http.Agent({ keepAlive: true });
const get = (path) => new Promise((resolve, reject) => {
  http.get({ socketPath: ${JSON.stringify(socket)}, path, agent }, (res) => {
    const chunks = [];
    res.on("data", (chunk) => chunks.push(chunk));
    res.on("end", () => res.statusCode === 200 ? resolve(Buffer.concat(chunks)) : reject(new Error(path)));
  }).on("error", reject);
});
Promise.all(${JSON.stringify(paths)}.map((path) =>
  get("/1.0/instances/${encodeURIComponent(name)}/files?path=" + encodeURIComponent(path))))
  .then(() => agent.destroy(), (error) => { console.error(error); process.exit(1); });
`;
}

export async function benchLxcFiles(runs = 9): Promise<Figure[]> {
  const tag = randomBytes(2).toString("hex");
  const name = `opbench-${tag}-files`;
  const dir = mkdtempSync(join(tmpdir(), "op-bench-files-"));
  const env = isolatedEnv(dir);
  const files = Array.from({ length: 100 }, (_, i) => ({
    path: `/etc/opbench/f${i}.conf`,
    content: `${randomBytes(512).toString("hex")}\n`,
  }));
  const file = join(dir, "files.json");
  writeFileSync(
    file,
    JSON.stringify({
      version: 1,
      plugins: {
        lxc: {
          containers: [{ id: name, image: "op-test/busybox", running: false, files }],
        },
      },
    }),
  );
  try {
    runOrThrow(opBinary, ["apply", file], { env });
    const script = floorScript(
      name,
      files.map((f) => f.path),
    );
    const [plan, floor] = (await interleavedMediansMs(runs, [
      () => {
        const out = runOrThrow(opBinary, ["plan", file], { env });
        if (!out.includes("No changes")) throw new Error(`bench state did not converge:\n${out}`);
      },
      () => runOrThrow(process.execPath, ["-e", script]),
    ])) as [number, number];
    return [
      {
        name: "op plan, 100 declared files in one container, converged",
        value: plan,
        unit: "ms",
        floor,
        floorLabel: "node start + 100 GET /1.0/instances/NAME/files?path=…",
        target: { ratio: 2 },
      },
    ];
  } finally {
    runOrThrow("bash", ["-c", `incus delete -f ${name} 2>/dev/null || true`]);
    rmSync(dir, { recursive: true, force: true });
  }
}
