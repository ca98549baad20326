/**
 * How the plan treats `cloud_init` on an existing container. cloud-init reads its keys once,
 * at first boot, so a changed key does nothing to a container that has booted. op keeps the
 * keys in step (so the container is not reported as drifted forever) and the plan line says
 * the change takes effect when the container is re-created; with `recreate_on_change` op
 * replaces it (delete + create, as for a change of image).
 */
import type { FieldChange } from "../../../src/plugin.js";
import { cloudInitKeys } from "../cloud-init.js";
import type { DesiredContainer, LiveContainer } from "../types.js";

const keys: readonly string[] = Object.values(cloudInitKeys);

/** The `cloud-init.*` keys whose value differs between the file and the container. */
export function cloudInitChanged(desired: DesiredContainer, live: LiveContainer): string[] {
  return keys.filter((key) => desired.config[key] !== live.config[key]);
}

/** Why the container is replaced, when the file asks for it on a cloud-init change. */
export function cloudInitReplacement(
  desired: DesiredContainer,
  live: LiveContainer,
): string | undefined {
  if (desired.provision?.recreateOnCloudInitChange !== true) return undefined;
  const changed = cloudInitChanged(desired, live);
  if (changed.length === 0) return undefined;
  return `${changed.join(", ")} changed: replaced (delete + create) so cloud-init runs again (recreate_on_change)`;
}

/** The plan's words for a changed cloud-init key. */
export function describeCloudInit(change: FieldChange): string | undefined {
  const key = change.path.startsWith("config.") ? change.path.slice(7) : undefined;
  if (key === undefined || !keys.includes(key)) return undefined;
  const verb =
    change.before === undefined ? "add" : change.after === undefined ? "remove" : "change";
  return `${verb} ${key} (stored now; takes effect when the container is re-created, since cloud-init runs once; "recreate_on_change": true does that)`;
}
