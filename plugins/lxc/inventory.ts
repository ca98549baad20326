/**
 * `op inventory`: the file's containers as an Ansible inventory. A host is a container the file
 * declares and Incus runs, with `ansible_host` (its address), `ansible_user` (its cloud-init
 * user) and the file's `ansible_vars`; groups come from `groups`. Three formats (YAML, INI,
 * JSON) and the dynamic-inventory protocol's `--list` / `--host NAME` answers.
 */
import { stringify } from "yaml";
import { OpError } from "../../src/errors.js";

export interface InventoryHost {
  name: string;
  groups: string[];
  vars: Record<string, unknown>;
}

export type InventoryFormat = "yaml" | "ini" | "json";

/** A host's variables as Ansible gets them: op's connection variables, then the file's. */
export function hostEntry(
  name: string,
  address: string | undefined,
  user: string | undefined,
  groups: readonly string[],
  vars: Readonly<Record<string, unknown>>,
): InventoryHost {
  return {
    name,
    groups: [...groups],
    vars: {
      ...(address === undefined ? {} : { ansible_host: address }),
      ...(user === undefined ? {} : { ansible_user: user }),
      ...vars,
    },
  };
}

/** Group names, each with its hosts in file order; hosts in no group are `ungrouped`. */
function groupsOf(hosts: readonly InventoryHost[]): Map<string, string[]> {
  const groups = new Map<string, string[]>();
  for (const host of hosts) {
    for (const group of host.groups.length === 0 ? ["ungrouped"] : host.groups) {
      const members = groups.get(group) ?? [];
      if (!members.includes(host.name)) members.push(host.name);
      groups.set(group, members);
    }
  }
  return groups;
}

/** The dynamic-inventory `--list` answer (hostvars under `_meta`, so Ansible asks no more). */
export function listJson(hosts: readonly InventoryHost[]): Record<string, unknown> {
  const groups = groupsOf(hosts);
  return {
    _meta: { hostvars: Object.fromEntries(hosts.map((host) => [host.name, host.vars])) },
    all: { children: [...groups.keys()] },
    ...Object.fromEntries([...groups].map(([group, members]) => [group, { hosts: members }])),
  };
}

/** The dynamic-inventory `--host NAME` answer: its variables, `{}` for a host op does not list. */
export function hostJson(hosts: readonly InventoryHost[], name: string): Record<string, unknown> {
  return hosts.find((host) => host.name === name)?.vars ?? {};
}

/** Ansible's YAML inventory: every group under `all.children`, host variables given once. */
function yamlInventory(hosts: readonly InventoryHost[]): string {
  const seen = new Set<string>();
  const children: Record<string, unknown> = {};
  for (const [group, members] of groupsOf(hosts)) {
    children[group] = {
      hosts: Object.fromEntries(
        members.map((name) => {
          const first = !seen.has(name);
          seen.add(name);
          const vars = first ? hostJson(hosts, name) : {};
          return [name, Object.keys(vars).length === 0 ? null : vars];
        }),
      ),
    };
  }
  return stringify({ all: { children } });
}

/**
 * Ansible's INI inventory. Its reader takes a value as a Python literal, else as a string: a
 * string is written bare or quoted, a number as is, a boolean as True/False; a value INI cannot
 * hold (a list, an object, a string with a newline) is refused with its host and variable.
 */
function iniInventory(hosts: readonly InventoryHost[]): string {
  const seen = new Set<string>();
  const sections: string[] = [];
  for (const [group, members] of groupsOf(hosts)) {
    const lines = members.map((name) => {
      const first = !seen.has(name);
      seen.add(name);
      const vars = first ? Object.entries(hostJson(hosts, name)) : [];
      return [name, ...vars.map(([key, value]) => `${key}=${iniValue(name, key, value)}`)].join(
        " ",
      );
    });
    sections.push(`[${group}]\n${lines.join("\n")}\n`);
  }
  return sections.join("\n");
}

function iniValue(host: string, key: string, value: unknown): string {
  if (typeof value === "boolean") return value ? "True" : "False";
  if (typeof value === "number") return String(value);
  if (typeof value === "string" && /^[^\s"'#;=\\[\]{}]+$/.test(value)) return value;
  if (typeof value === "string" && !/[\n\r]/.test(value)) return JSON.stringify(value);
  throw new OpError(
    "invalid-state",
    `host ${host}: ${key} cannot be written in an INI inventory (${Array.isArray(value) ? "a list" : typeof value === "string" ? "a string of several lines" : "an object"})`,
    { hint: "use --format yaml or --format json" },
  );
}

export function renderInventory(hosts: readonly InventoryHost[], format: InventoryFormat): string {
  switch (format) {
    case "json":
      return `${JSON.stringify(listJson(hosts), null, 2)}\n`;
    case "ini":
      return iniInventory(hosts);
    case "yaml":
      return yamlInventory(hosts);
  }
}
