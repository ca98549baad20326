/**
 * The readiness steps' logic, against a scripted Incus and sshd (a fake: here the clock is
 * under the test's control, so timeouts are shown without waiting). The real thing, a Debian
 * cloud container reached over SSH, is test/lxc-provision.system.test.ts.
 */
import { describe, expect, it } from "vitest";
import { OpError } from "../../src/errors.js";
import type { IncusClient } from "../../src/incus.js";
import {
  addressOf,
  cloudInitErrors,
  cloudInitResult,
  type ReadyEnv,
  type ReadySpec,
  stepsFor,
  waitReady,
} from "./ready.js";

interface Script {
  /** Instance states returned by successive state reads (the last one repeats). */
  states: { status: string; address?: string }[];
  files: Record<string, string>;
  /** Banners by attempt; the last one repeats. */
  banners: ({ line: string } | { error: string })[];
}

function scripted(script: Script): { env: ReadyEnv; calls: string[] } {
  let clock = 0;
  let state = 0;
  let banner = 0;
  const calls: string[] = [];
  const incus = {
    request: async (_method: string, path: string) => {
      calls.push(`GET ${path}`);
      const current = script.states[Math.min(state++, script.states.length - 1)];
      return {
        status: current?.status,
        network: current?.address
          ? { eth0: { addresses: [{ family: "inet", address: current.address, scope: "global" }] } }
          : {},
      };
    },
    readFile: async (_name: string, path: string) => {
      calls.push(`read ${path}`);
      const text = script.files[path];
      return text === undefined ? undefined : Buffer.from(text);
    },
    fileType: async (_name: string, path: string) => {
      calls.push(`stat ${path}`);
      return path in script.files ? "file" : undefined;
    },
  } as unknown as IncusClient;
  const env: ReadyEnv = {
    incus,
    net: {
      banner: async (address) => {
        calls.push(`connect ${address}`);
        return script.banners[Math.min(banner++, script.banners.length - 1)] as { line: string };
      },
    },
    now: () => clock,
    sleep: async (ms) => {
      clock += ms;
    },
  };
  return { env, calls };
}

const everything: ReadySpec = { for: ["ssh", "cloud-init"], timeout: 60 };
const web = { name: "web", project: "default" };
const withTools = {
  "/usr/bin/cloud-init": "",
  "/usr/sbin/sshd": "",
};

describe("stepsFor", () => {
  it("takes the steps in order and adds what a step needs", () => {
    expect(stepsFor({ for: ["ssh"], timeout: 1 })).toEqual(["running", "ip", "ssh"]);
    expect(stepsFor({ for: ["cloud-init", "running"], timeout: 1 })).toEqual([
      "running",
      "cloud-init",
    ]);
    expect(stepsFor({ for: [], timeout: 1 })).toEqual([]);
  });
});

describe("addressOf and cloudInitErrors", () => {
  it("prefers eth0's global IPv4 address, then any global IPv6 one", () => {
    expect(
      addressOf({
        status: "Running",
        network: {
          lo: { addresses: [{ family: "inet", address: "127.0.0.1", scope: "local" }] },
          eth1: { addresses: [{ family: "inet", address: "198.18.1.2", scope: "global" }] },
          eth0: {
            addresses: [
              { family: "inet6", address: "fe80::1", scope: "link" },
              { family: "inet", address: "198.18.0.2", scope: "global" },
            ],
          },
        },
      }),
    ).toBe("198.18.0.2");
    expect(
      addressOf({
        status: "Running",
        network: {
          eth0: { addresses: [{ family: "inet6", address: "fd00::2", scope: "global" }] },
        },
      }),
    ).toBe("fd00::2");
    expect(addressOf({ status: "Running", network: null })).toBeUndefined();
  });

  it("reads cloud-init's errors from its result file", () => {
    expect(cloudInitErrors('{"v1":{"datasource":"NoCloud","errors":[]}}')).toEqual([]);
    expect(cloudInitErrors('{"v1":{"errors":["bad user-data"]}}')).toEqual(["bad user-data"]);
  });
});

describe("waitReady", () => {
  it("waits through each step and returns the address it found", async () => {
    const { env, calls } = scripted({
      states: [
        { status: "Stopped" },
        { status: "Running" },
        { status: "Running" },
        { status: "Running", address: "198.18.0.9" },
      ],
      files: { ...withTools, [cloudInitResult]: '{"v1":{"errors":[]}}' },
      banners: [{ error: "connection refused" }, { line: "SSH-2.0-OpenSSH_9.2p1 Debian" }],
    });
    await expect(waitReady(web, everything, env)).resolves.toEqual({ address: "198.18.0.9" });
    expect(calls.filter((call) => call.startsWith("connect"))).toEqual([
      "connect 198.18.0.9",
      "connect 198.18.0.9",
    ]);
    expect(calls).toContain(`read ${cloudInitResult}`);
  });

  it("times out naming the container, the step and what it last saw", async () => {
    const { env } = scripted({
      states: [{ status: "Running", address: "198.18.0.9" }],
      files: withTools,
      banners: [{ error: "connection refused" }],
    });
    const error = await waitReady(web, { for: ["ssh"], timeout: 30 }, env).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(OpError);
    expect((error as OpError).message).toBe(
      "container web was not ready within 30 s: still waiting for ssh (198.18.0.9:22: connection refused)",
    );
  });

  it("fails at once on an image without sshd or without cloud-init, instead of waiting", async () => {
    const noSshd = scripted({
      states: [{ status: "Running", address: "198.18.0.9" }],
      files: { "/usr/bin/cloud-init": "" },
      banners: [{ error: "connection refused" }],
    });
    await expect(waitReady(web, { for: ["ssh"], timeout: 600 }, noSshd.env)).rejects.toThrow(
      "container web: its image has no SSH server (/usr/sbin/sshd), so `wait` for ssh would never end",
    );
    expect(noSshd.calls.some((call) => call.startsWith("connect"))).toBe(false);
    const noCloudInit = scripted({
      states: [{ status: "Running" }],
      files: {},
      banners: [],
    });
    await expect(
      waitReady(web, { for: ["cloud-init"], timeout: 600 }, noCloudInit.env),
    ).rejects.toThrow(/its image has no cloud-init \(\/usr\/bin\/cloud-init\)/);
  });

  it("reports cloud-init's own errors, and refuses a service that is not SSH", async () => {
    const failed = scripted({
      states: [{ status: "Running" }],
      files: {
        ...withTools,
        [cloudInitResult]: '{"v1":{"errors":["user-data is not valid YAML"]}}',
      },
      banners: [],
    });
    const error = (await waitReady(web, { for: ["cloud-init"], timeout: 60 }, failed.env).catch(
      (e: unknown) => e,
    )) as OpError;
    expect(error.message).toBe("container web: cloud-init finished with errors");
    expect(error.details).toEqual(["user-data is not valid YAML"]);
    const http = scripted({
      states: [{ status: "Running", address: "198.18.0.9" }],
      files: withTools,
      banners: [{ line: "HTTP/1.1 400 Bad Request" }],
    });
    await expect(waitReady(web, { for: ["ssh"], timeout: 5 }, http.env)).rejects.toThrow(
      /answers "HTTP\/1.1 400 Bad Request", not SSH/,
    );
  });
});
