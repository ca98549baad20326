/**
 * The file-only checks of the container fields of issue 14 (check.ts → prepareContainer):
 * names per project, boot and snapshot keys given twice, schedules Incus would refuse,
 * ephemeral containers that must stop, snapshots listed twice, and the keys they become.
 */
import { describe, expect, it } from "vitest";
import { checkLxc } from "../check.js";
import { prepareContainer } from "../prepare.js";

const base = "/plugins/lxc";
const problems = (containers: object[]) => checkLxc({ containers }, base);

describe("container fields of issue 14", () => {
  it("allows a name twice in two projects, refuses it twice in one", () => {
    expect(
      problems([{ id: "web", project: "a" }, { id: "web", project: "b" }, { id: "web" }]),
    ).toEqual([]);
    expect(
      problems([
        { id: "web", project: "a" },
        { id: "x", name: "web", project: "a" },
      ]),
    ).toEqual([
      '/plugins/lxc/containers/1/name: name "a/web" is also used by /plugins/lxc/containers/0/id',
    ]);
  });

  it("keeps veths unique host-wide, across projects", () => {
    expect(
      problems([
        { id: 7, project: "a", bridge: "br0" },
        { id: 7, project: "b", bridge: "br0" },
      ]),
    ).toEqual([
      '/plugins/lxc/containers/1/id: veth "vi7" is also used by /plugins/lxc/containers/0/id',
    ]);
  });

  it("refuses boot.autostart and properties.onboot that disagree, accepts them agreeing", () => {
    expect(
      problems([{ id: "a", boot: { autostart: true }, properties: { onboot: "yes" } }]),
    ).toEqual([]);
    expect(problems([{ id: "a", boot: { autostart: false }, properties: { onboot: 1 } }])).toEqual([
      '/plugins/lxc/containers/0: autostart is given twice with different values: /plugins/lxc/containers/0/boot/autostart = "false", /plugins/lxc/containers/0/properties/onboot = "true"',
    ]);
  });

  it("refuses a schedule Incus would refuse, at the path it was given", () => {
    expect(problems([{ id: "a", snapshots: { schedule: "0 25 * * *" } }])).toEqual([
      '/plugins/lxc/containers/0/snapshots/schedule: not a schedule Incus accepts: "0 25 * * *": hour "25": out of range (0-23)',
    ]);
    expect(problems([{ id: "a", config: { "snapshots.schedule": "@often" } }])).toEqual([
      expect.stringMatching(
        /^\/plugins\/lxc\/containers\/0\/config\/snapshots.schedule: .*unknown alias/,
      ),
    ]);
  });

  it("refuses an ephemeral container that is not running, and a snapshot listed twice", () => {
    expect(
      problems([
        { id: "a", ephemeral: true, running: false },
        { id: "b", snapshots: { keep: [{ name: "s" }, { name: "s" }] } },
      ]),
    ).toEqual([
      '/plugins/lxc/containers/0/ephemeral: an ephemeral container is deleted when it stops, so it cannot be "running": false',
      '/plugins/lxc/containers/1/snapshots/keep/1/name: snapshot "s" is listed twice',
    ]);
  });

  it("turns boot and snapshots into Incus keys, with the tag of the named snapshots", () => {
    const lines: string[] = [];
    const container = prepareContainer(
      {
        id: "web",
        project: "tenant",
        description: "front",
        ephemeral: false,
        restart: "allowed",
        boot: { autostart: true, priority: 10, stop_priority: 5 },
        snapshots: {
          schedule: "@daily",
          expiry: "1w",
          pattern: "auto%d",
          keep: [{ name: "base", stateful: true }],
          prune: true,
        },
      },
      "/plugins/lxc/containers/0",
      "op-test/busybox",
      { add: (path, message) => lines.push(`${path}: ${message}`) },
    );
    expect(lines).toEqual([]);
    expect(container).toMatchObject({
      project: "tenant",
      description: "front",
      ephemeral: false,
      restartAllowed: true,
      snapshots: { keep: [{ name: "base", stateful: true }], prune: true },
    });
    expect(container.config).toMatchObject({
      "boot.autostart": "true",
      "boot.autostart.priority": "10",
      "boot.stop.priority": "5",
      "snapshots.schedule": "@daily",
      "snapshots.expiry": "1w",
      "snapshots.pattern": "auto%d",
      "user.op.snapshots": "base;prune",
    });
  });
});
