/**
 * The file's half of `volumes[]` and of a container's `volumes`: each entry normalised (the
 * `size` field and `config.size` must agree), volumes declared once per pool and project, and
 * a container's attachments each at a path of their own. Pure; run by `op validate`
 * (plugins/lxc/check.ts) and by prepare.
 */
import { declaredFirst, ownedConfig, type TypedKey } from "../holding.js";
import type { ProblemSink } from "../objects.js";
import { defaultProject, volumeId } from "../refs.js";
import type { Devices, LxcContainerSpec, LxcSection } from "../types.js";
import { type AttachedVolume, type DesiredVolume, defaultPool } from "./types.js";

export function checkVolumes(
  section: LxcSection,
  base: string,
  problems: ProblemSink,
): DesiredVolume[] {
  const seen = new Map<string, string>();
  const volumes: DesiredVolume[] = [];
  for (const [index, spec] of (section.volumes ?? []).entries()) {
    const path = `${base}/volumes/${index}`;
    const project = spec.project ?? defaultProject;
    const id = volumeId(project, spec.pool, spec.name);
    if (!declaredFirst(seen, id, path, "volume", problems)) continue;
    const typed: TypedKey[] = [["size", `${path}/size`, spec.size]];
    const { config, adopt } = ownedConfig(spec, path, typed, problems);
    volumes.push({
      pool: spec.pool,
      name: spec.name,
      project,
      path,
      ensure: spec.ensure ?? "present",
      adopt,
      contentType: spec.content_type ?? "filesystem",
      ...(spec.description === undefined ? {} : { description: spec.description }),
      config,
    });
  }
  return volumes;
}

/** The disk device of an attached volume: `vol-NAME`. */
export function volumeDevice(volume: string): string {
  return `vol-${volume}`;
}

/**
 * A container's `volumes` as disk devices, added to `devices`; a path or a volume used twice
 * (also against its host-directory mounts) is a problem at the attachment's JSON path.
 */
export function attachVolumes(
  spec: LxcContainerSpec,
  path: string,
  devices: Devices,
  problems: ProblemSink,
): AttachedVolume[] {
  const attached: AttachedVolume[] = [];
  const paths = new Map(
    Object.entries(devices).flatMap(([name, device]) =>
      device.type === "disk" && device.path !== undefined ? [[device.path, name] as const] : [],
    ),
  );
  for (const [index, attachment] of (spec.volumes ?? []).entries()) {
    const at = `${path}/volumes/${index}`;
    const pool = attachment.pool ?? defaultPool;
    const device = volumeDevice(attachment.volume);
    const taken = paths.get(attachment.path);
    if (taken !== undefined) {
      problems.add(
        `${at}/path`,
        `${attachment.path} is already used by device ${taken} of this container; each volume needs a path of its own`,
      );
      continue;
    }
    if (devices[device] !== undefined) {
      problems.add(
        `${at}/volume`,
        `volume ${attachment.volume} is attached twice to this container (device ${device})`,
      );
      continue;
    }
    paths.set(attachment.path, device);
    devices[device] = {
      type: "disk",
      pool,
      source: attachment.volume,
      path: attachment.path,
      ...(attachment.readonly ? { readonly: "true" } : {}),
    };
    attached.push({ pool, volume: attachment.volume, path: at });
  }
  return attached;
}
