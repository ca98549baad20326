/**
 * The instance an `op exec` or `op file` command names, read from Incus before anything is
 * sent to it: that it exists, whether op created it (a command refuses one it did not, unless
 * `--any`), and whether it runs (exec needs it running; Incus reads and writes the files of a
 * stopped container too).
 */
import { OpError } from "../../../src/errors.js";
import type { IncusClient } from "../../../src/incus.js";
import type { InstanceName } from "../../../src/plugin.js";
import { defaultProject } from "../refs.js";
import { tags } from "../types.js";

export interface InstanceTarget {
  name: string;
  project: string;
  /** Incus's status, lower case: `running`, `stopped`, `frozen`... */
  status: string;
  /** op created it (`user.op.managed=true`). */
  managed: boolean;
}

const instanceName = /^[A-Za-z](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$/;
const projectName = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;

/**
 * `NAME` or `PROJECT/NAME` as typed on the command line; a name Incus could not have (shell or
 * path characters, too long) is a usage error naming what was given.
 */
export function parseInstanceName(text: string): InstanceName {
  const slash = text.indexOf("/");
  const [project, name] =
    slash < 0 ? [undefined, text] : [text.slice(0, slash), text.slice(slash + 1)];
  if (project !== undefined && !projectName.test(project))
    throw new OpError(
      "usage",
      `${JSON.stringify(text)}: ${JSON.stringify(project)} is not an Incus project name`,
      {
        hint: "a project name has 1 to 63 letters, digits, '.', '_' and '-', starting with a letter or digit",
      },
    );
  if (!instanceName.test(name))
    throw new OpError(
      "usage",
      `${JSON.stringify(text)}: ${JSON.stringify(name)} is not an Incus instance name`,
      {
        hint: "an instance name has 1 to 63 letters, digits and '-', starts with a letter and does not end with '-'",
      },
    );
  return project === undefined ? { name } : { project, name };
}

interface InstanceAnswer {
  name: string;
  status: string;
  config?: Record<string, string>;
}

/**
 * Reads the instance and checks it may be worked on: it exists; op created it, or `any` is
 * given; it runs, when `running` is asked.
 */
export async function instanceTarget(
  incus: IncusClient,
  wanted: InstanceName,
  options: { any: boolean; running: boolean },
): Promise<InstanceTarget> {
  const project = wanted.project ?? incus.project ?? defaultProject;
  const shown = project === defaultProject ? wanted.name : `${project}/${wanted.name}`;
  const path = `/1.0/instances/${encodeURIComponent(wanted.name)}?project=${encodeURIComponent(project)}`;
  let answer: InstanceAnswer;
  try {
    answer = await incus.request<InstanceAnswer>("GET", path, undefined, {
      what: `reading instance ${shown}`,
    });
  } catch (error) {
    if (error instanceof OpError && /Project not found$/.test(error.message))
      throw new OpError("not-found", `project ${project} does not exist`, {
        hint: "incus project list shows the projects",
      });
    if (error instanceof OpError && /not found$/i.test(error.message))
      throw new OpError("not-found", `instance ${shown} does not exist`, {
        hint:
          project === defaultProject
            ? "incus list shows the instances; one in another project is named PROJECT/NAME"
            : `incus list --project ${project} shows that project's instances`,
      });
    throw error;
  }
  const target: InstanceTarget = {
    name: answer.name,
    project,
    status: answer.status.toLowerCase(),
    managed: answer.config?.[tags.managed] === "true",
  };
  if (!target.managed && !options.any)
    throw new OpError(
      "invalid-state",
      `instance ${shown} was not created by op (it lacks ${tags.managed}=true)`,
      {
        hint: "give --any to work in an instance op does not manage",
      },
    );
  if (options.running && target.status !== "running")
    throw new OpError(
      "invalid-state",
      `instance ${shown} is ${target.status}, and a command runs only in a running instance`,
      {
        hint: `start it first: incus start ${target.name}${project === defaultProject ? "" : ` --project ${project}`}, or declare "running": true and op apply`,
      },
    );
  return target;
}
