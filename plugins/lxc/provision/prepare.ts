/**
 * A container's provisioning fields, normalised: `cloud_init` rendered into Incus's
 * `cloud-init.*` config keys (plugins/lxc/cloud-init.ts), `wait` with its default timeout, and
 * what `op inventory` needs (`groups`, `ansible_vars`, the login user). Problems go to the
 * container's problem list with their JSON paths, before anything on the host changes.
 */
import { isAbsolute } from "node:path";
import {
  type CloudInitSpec,
  cloudInitConfig,
  defaultCloudUser,
  looksLikeKey,
} from "../cloud-init.js";
import type { ReadySpec } from "../ready.js";
import type { LxcContainerSpec } from "../types.js";

/** Seconds `wait` allows all its steps together when the file gives no timeout. */
export const defaultWaitTimeout = 180;

/** What a container carries for provisioning (DesiredContainer.provision). */
export interface DesiredProvision {
  /** `wait`, with its timeout resolved. */
  wait?: ReadySpec;
  /** A change of the rendered `cloud-init.*` keys replaces the container (`recreate_on_change`). */
  recreateOnCloudInitChange: boolean;
  /** The login user cloud-init creates (`ansible_user`); undefined without `cloud_init`. */
  user?: string;
  groups: string[];
  ansibleVars: Record<string, unknown>;
}

/**
 * The `cloud-init.*` keys of `spec.cloud_init`, added to `config`, and the container's other
 * provisioning fields. `resolvePath` resolves a .pub path from the state file's directory; a
 * path it leaves relative (`op validate`, which has no directory) is checked by prepare instead.
 */
export function prepareProvision(
  spec: LxcContainerSpec,
  path: string,
  config: Record<string, string>,
  problems: { add(path: string, message: string): void },
  resolvePath: (path: string) => string,
): DesiredProvision {
  const cloudInit = spec.cloud_init as CloudInitSpec | undefined;
  if (cloudInit !== undefined) {
    const entries = (cloudInit.ssh_authorized_keys ?? []).map((entry) =>
      looksLikeKey(entry) ? entry : resolvePath(entry),
    );
    const found: { at: string; message: string }[] = [];
    const keys = cloudInitConfig(
      {
        ...cloudInit,
        ssh_authorized_keys: entries.filter((entry) => looksLikeKey(entry) || isAbsolute(entry)),
      },
      undefined,
      found,
    );
    // Entries were filtered: a problem's index is mapped back to the file's own.
    const kept = entries.flatMap((entry, i) =>
      looksLikeKey(entry) || isAbsolute(entry) ? [i] : [],
    );
    for (const problem of found) {
      const at = problem.at.replace(
        /^ssh_authorized_keys\/(\d+)/,
        (_, n: string) => `ssh_authorized_keys/${kept[Number(n)]}`,
      );
      problems.add(`${path}/cloud_init/${at}`, problem.message);
    }
    for (const [key, value] of Object.entries(keys)) {
      if (config[key] !== undefined && config[key] !== value) {
        problems.add(
          `${path}/config/${key}`,
          `${key} is also rendered from ${path}/cloud_init: give it in one place`,
        );
      }
      config[key] = value;
    }
  }
  return {
    ...(spec.wait === undefined
      ? {}
      : { wait: { for: [...spec.wait.for], timeout: spec.wait.timeout ?? defaultWaitTimeout } }),
    recreateOnCloudInitChange: cloudInit?.recreate_on_change ?? false,
    ...(cloudInit === undefined ? {} : { user: cloudInit.user ?? defaultCloudUser }),
    groups: [...(spec.groups ?? [])],
    ansibleVars: { ...(spec.ansible_vars ?? {}) },
  };
}

/** Whether the entry uses any provisioning field (a container without them carries none). */
export function provisioned(spec: LxcContainerSpec): boolean {
  return (
    spec.cloud_init !== undefined ||
    spec.wait !== undefined ||
    spec.groups !== undefined ||
    spec.ansible_vars !== undefined
  );
}
