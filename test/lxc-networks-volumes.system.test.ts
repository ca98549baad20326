/**
 * Managed networks and custom volumes on the real Incus daemon (scripts/setup-incus.sh):
 * created, re-applied as a no-op, drift made by hand fixed, a container on a managed network
 * gets its address by DHCP and writes into its volume, deleting the container keeps the
 * volume, and the refusals (an attached volume or a used network deleted, overlapping subnets,
 * a missing pool), and a client bound to one project never pruning what it inherits from the
 * default project. Every network (`optn…`, 198.18.200-250.0/24, no NAT), volume and container
 * here is the test's own and is removed after, also on failure.
 */
import { randomInt } from "node:crypto";
import { afterAll, describe, expect, it } from "vitest";
import { OpError } from "../src/errors.js";
import {
  createLinuxBridge,
  createProject,
  deleteIfPresent,
  dhcpAddress,
  inContainer,
  incus,
  isNotFound,
  plan,
  reconcile,
  removeBridge,
  removeContainers,
  removeProject,
  sh,
  testCtx,
  testImage,
  uid,
} from "./support/lxc.js";

const containers: string[] = [];
const volumes: string[] = [];
const networks: string[] = [];
const links: string[] = [];
afterAll(async () => {
  await removeContainers(containers);
  for (const name of volumes)
    await deleteIfPresent(`/1.0/storage-pools/default/volumes/custom/${name}`);
  for (const name of networks) await deleteIfPresent(`/1.0/networks/${name}`);
  for (const name of links) removeBridge(name);
});

/** Third octets already taken by this file, so two networks of one test never clash. */
const octets = new Set<number>();
function subnet(): string {
  let octet = randomInt(200, 251);
  while (octets.has(octet)) octet = randomInt(200, 251);
  octets.add(octet);
  return `198.18.${octet}`;
}

function network(fields: Record<string, unknown> = {}): { name: string } & Record<string, unknown> {
  const name = `optn${uid()}`;
  networks.push(name);
  return {
    name,
    ipv4_address: `${subnet()}.1/24`,
    ipv4_nat: false,
    ipv4_dhcp: true,
    ipv6_address: "none",
    ...fields,
  };
}

function volume(fields: Record<string, unknown> = {}): { name: string } & Record<string, unknown> {
  const name = `optest-${uid()}`;
  volumes.push(name);
  return { pool: "default", name, ...fields };
}

function container(fields: Record<string, unknown> = {}): { id: string } & Record<string, unknown> {
  const id = `optest-${uid()}`;
  containers.push(id);
  return { id, image: testImage, ...fields };
}

async function refusal(section: object): Promise<readonly string[]> {
  const error = await plan(section).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(OpError);
  return (error as OpError).details;
}

async function liveNetwork(name: string): Promise<{ config: Record<string, string> }> {
  return incus.request("GET", `/1.0/networks/${name}`);
}

async function liveVolume(
  name: string,
): Promise<{ config: Record<string, string>; used_by: string[] }> {
  return incus.request("GET", `/1.0/storage-pools/default/volumes/custom/${name}`);
}
describe("lxc networks and volumes", () => {
  it("creates a network, a volume and a container on them; re-applies as a no-op; fixes drift", async () => {
    const net = network();
    const vol = volume({ size: "64MiB", config: { "user.purpose": "test data" } });
    const ct = container({ network: net.name, volumes: [{ volume: vol.name, path: "/data" }] });
    const section = { networks: [net], volumes: [vol], containers: [ct] };

    const first = await reconcile(section);
    expect(Object.fromEntries(first.errors)).toEqual({});
    expect(first.actions.map((a) => `${a.kind} ${a.resource}`).sort()).toEqual([
      "create container",
      "create network",
      "create volume",
    ]);
    expect(first.remaining).toEqual([]);
    expect((await liveNetwork(net.name)).config).toMatchObject({
      "ipv4.address": net.ipv4_address,
      "ipv4.nat": "false",
      "ipv4.dhcp": "true",
      "user.op.managed": "true",
    });
    expect((await liveVolume(vol.name)).config).toMatchObject({
      size: "64MiB",
      "user.op.managed": "true",
    });

    // The container's address comes from the managed network's DHCP, in its subnet.
    const prefix = String(net.ipv4_address).replace(/\.1\/24$/, ".");
    expect(await dhcpAddress(ct.id)).toMatch(new RegExp(`^${prefix.replaceAll(".", "\\.")}\\d+$`));
    // It writes into its volume.
    expect(inContainer(ct.id, "echo kept > /data/file && cat /data/file")).toBe("kept\n");

    expect(await plan(section)).toEqual([]);

    sh("incus", ["network", "set", net.name, "ipv4.dhcp", "false"]);
    sh("incus", ["storage", "volume", "set", "default", vol.name, "user.purpose", "changed"]);
    const drift = await plan(section);
    expect(drift.map((a) => `${a.kind} ${a.resource} ${a.id}`).sort()).toEqual([
      `modify network ${net.name}`,
      `modify volume default/${vol.name}`,
    ]);
    expect(drift.find((a) => a.resource === "network")).toMatchObject({
      changes: [{ path: "config.ipv4.dhcp", before: "false", after: "true" }],
    });
    const fixed = await reconcile(section);
    expect(Object.fromEntries(fixed.errors)).toEqual({});
    expect(fixed.remaining).toEqual([]);
    expect((await liveNetwork(net.name)).config["ipv4.dhcp"]).toBe("true");
    expect((await liveVolume(vol.name)).config["user.purpose"]).toBe("test data");

    // Deleting what the container uses is refused with both names, before any change.
    const refused = await refusal({
      networks: [{ ...net, ensure: "absent" }],
      volumes: [{ ...vol, ensure: "absent" }],
      containers: [{ id: ct.id, image: testImage }],
    });
    expect(refused).toEqual([
      `/plugins/lxc/networks/0/ensure: network ${net.name} is in use by instance ${ct.id}, which stays; detach it first (or delete the containers in the same run)`,
      `/plugins/lxc/volumes/0/ensure: volume ${vol.name} of pool default is attached to instance ${ct.id}, which stays; detach it first (remove it from the container's "volumes" and apply), then delete it`,
    ]);
    expect(await liveVolume(vol.name)).toBeDefined();

    // Deleting the container keeps its volume and what it wrote there.
    const gone = await reconcile({
      networks: [net],
      volumes: [vol],
      containers: [{ ...ct, ensure: "absent" }],
    });
    expect(Object.fromEntries(gone.errors)).toEqual({});
    expect(gone.actions.map((a) => `${a.kind} ${a.resource}`)).toEqual(["delete container"]);
    expect((await liveVolume(vol.name)).used_by).toEqual([]);
    const again = container({ volumes: [{ volume: vol.name, path: "/data", readonly: true }] });
    expect(
      Object.fromEntries((await reconcile({ volumes: [vol], containers: [again] })).errors),
    ).toEqual({});
    expect(inContainer(again.id, "cat /data/file")).toBe("kept\n");

    // Torn down with ensure: absent in one run: the container first, then the volume and network.
    const down = await reconcile({
      networks: [{ ...net, ensure: "absent" }],
      volumes: [{ ...vol, ensure: "absent" }],
      containers: [{ ...again, ensure: "absent" }],
    });
    expect(Object.fromEntries(down.errors)).toEqual({});
    const deleteVolume = down.actions.find((a) => a.resource === "volume");
    expect(deleteVolume?.needs).toEqual([{ plugin: "lxc", resource: "container", id: again.id }]);
    await expect(liveVolume(vol.name)).rejects.toSatisfy(isNotFound);
    await expect(liveNetwork(net.name)).rejects.toSatisfy(isNotFound);
  });

  it("refuses a subnet that overlaps another network's or an address of the host", async () => {
    const first = network();
    expect(Object.fromEntries((await reconcile({ networks: [first] })).errors)).toEqual({});
    const wider = String(first.ipv4_address).replace(/\.\d+\.1\/24$/, ".0.1/16");
    const clash = network({ ipv4_address: wider });
    // (Other tests' networks in 198.18.0.0/16 may be listed too.)
    expect(await refusal({ networks: [clash] })).toEqual(
      expect.arrayContaining([
        `/plugins/lxc/networks/0/ipv4_address: ${wider} overlaps ${first.ipv4_address} of Incus network ${first.name} on this host; each network needs a subnet of its own`,
      ]),
    );

    // An address of the host on a link Incus does not manage.
    const hostLink = createLinuxBridge();
    links.push(hostLink);
    const hostNet = subnet();
    sh("ip", ["addr", "add", `${hostNet}.7/24`, "dev", hostLink]);
    const onHost = network({ ipv4_address: `${hostNet}.1/24` });
    expect(await refusal({ networks: [onHost] })).toEqual(
      expect.arrayContaining([
        `/plugins/lxc/networks/0/ipv4_address: ${hostNet}.1/24 overlaps ${hostNet}.7, an address of this host on another link; pick a subnet the host does not use`,
      ]),
    );
    const down = await reconcile({ networks: [{ ...first, ensure: "absent" }] });
    expect(Object.fromEntries(down.errors)).toEqual({});
  });

  it("refuses a missing pool, a network or volume that is not there, and a shrink", async () => {
    const vol = volume({ size: "64MiB" });
    expect(Object.fromEntries((await reconcile({ volumes: [vol] })).errors)).toEqual({});
    const missingPool = `optest-${uid()}`;
    const ct = container({
      network: `optn${uid()}`,
      volumes: [
        { volume: `optest-${uid()}`, path: "/a" },
        { volume: vol.name, pool: missingPool, path: "/b" },
      ],
    });
    const details = await refusal({
      volumes: [{ ...vol, size: "32MiB" }, volume({ pool: missingPool })],
      containers: [ct],
    });
    // The pools other tests may have made are left out of the comparison.
    const pools = /\(its pools: [^)]*\)/;
    expect(details.map((line) => line.replace(pools, "(its pools: …)"))).toEqual([
      `/plugins/lxc/volumes/0/size: volume ${vol.name} is 64MiB on this host; op grows a volume but does not shrink it (32MiB is smaller): copy the data to a new, smaller volume instead`,
      `/plugins/lxc/volumes/1/pool: storage pool ${missingPool} does not exist on this host (its pools: …)`,
      `/plugins/lxc/containers/0/network: network ${ct.network} is neither an Incus managed network on this host (incus network list) nor declared under plugins.lxc.networks`,
      `/plugins/lxc/containers/0/volumes/0/volume: volume ${(ct.volumes as { volume: string }[])[0]?.volume} is neither a custom volume of pool default on this host (incus storage volume list default) nor declared under plugins.lxc.volumes`,
      `/plugins/lxc/containers/0/volumes/1/pool: storage pool ${missingPool} does not exist on this host (its pools: …)`,
    ]);
    // Growing is done in place.
    const grown = await reconcile({ volumes: [{ ...vol, size: "128MiB" }] });
    expect(Object.fromEntries(grown.errors)).toEqual({});
    expect(grown.actions.map((a) => a.kind)).toEqual(["modify"]);
    expect((await liveVolume(vol.name)).config.size).toBe("128MiB");
    expect(
      (await reconcile({ volumes: [{ ...vol, size: "128MiB", ensure: "absent" }] })).errors,
    ).toEqual(new Map());
  });
});

describe("prune with a client bound to one project", () => {
  it("leaves op's network and profile of the default project alone: they are inherited", async () => {
    // Made by op with the default project's client, as another test running alongside does.
    const net = network();
    expect((await reconcile({ networks: [net] })).errors).toEqual(new Map());
    const profile = `optest-${uid()}`;
    await incus.request("POST", "/1.0/profiles", {
      name: profile,
      config: { "user.op.managed": "true" },
    });
    // A project of its own with no networks or profiles: Incus lists the default project's.
    const project = await createProject();
    try {
      const ctx = testCtx(undefined, project);
      expect(await plan({ prune: true }, ctx)).toEqual([]);
      // Still visible from the project: a container there may use the network.
      expect(await plan({ containers: [container({ network: net.name })] }, ctx)).toEqual([
        expect.objectContaining({ kind: "create", resource: "container" }),
      ]);
      const run = await reconcile({ prune: true }, ctx);
      expect(run.actions).toEqual([]);
      expect((await liveNetwork(net.name)).config["user.op.managed"]).toBe("true");
      expect(await incus.request("GET", `/1.0/profiles/${profile}`)).toBeDefined();
    } finally {
      await removeProject(project);
      await deleteIfPresent(`/1.0/profiles/${profile}`);
    }
  });
});
