/**
 * A container's `cloud_init` field as Incus's `cloud-init.*` config keys. What op generates
 * (the login user with its SSH keys, packages) goes in `cloud-init.vendor-data`; the file's raw
 * `user_data` goes unchanged in `cloud-init.user-data`, and cloud-init itself merges the two
 * (user data wins), so op never has to parse or rewrite the user's own cloud-config. The
 * rendered documents are JSON, which is YAML, so no emitter is needed.
 */
import { isAbsolute, resolve } from "node:path";
import { readRegularFile } from "../../src/files.js";

export interface CloudInitSpec {
  user?: string;
  ssh_authorized_keys?: string[];
  packages?: string[];
  user_data?: string | Record<string, unknown>;
  network_config?: string | Record<string, unknown>;
  recreate_on_change?: boolean;
}

/** The login user when the file names none: the one Debian's cloud images have. */
export const defaultCloudUser = "debian";

export const cloudInitKeys = {
  vendorData: "cloud-init.vendor-data",
  userData: "cloud-init.user-data",
  networkConfig: "cloud-init.network-config",
} as const;

/** Where a problem is, relative to the container's `cloud_init`, and what it is. */
export interface CloudInitProblem {
  at: string;
  message: string;
}

/** The largest .pub file op reads: a key is a few hundred bytes, a list of them a few KB. */
const maxKeyFileBytes = 64 * 1024;

/**
 * Checks one OpenSSH public key line (`TYPE BASE64 [comment]`): the type is one ssh knows, the
 * blob is base64 whose first field names the same type, and the blob has that type's fields
 * and nothing more (so a truncated key is caught here, not at the first failed login).
 */
export function publicKeyProblem(line: string): string | undefined {
  const fields = line.trim().split(/\s+/);
  const [type, blob] = fields;
  if (type === undefined || blob === undefined)
    return "is not an OpenSSH public key (expected `TYPE BASE64 [comment]`)";
  if (
    !/^(ssh-(rsa|ed25519|dss)|ecdsa-sha2-nistp(256|384|521)|sk-(ssh-ed25519|ecdsa-sha2-nistp256)@openssh\.com)$/.test(
      type,
    )
  )
    return `has key type ${JSON.stringify(type.slice(0, 40))}, which is not an SSH public key type`;
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(blob)) return "has a key that is not base64";
  const bytes = Buffer.from(blob, "base64");
  const nameLength = bytes.length >= 4 ? bytes.readUInt32BE(0) : -1;
  if (nameLength < 0 || bytes.subarray(4, 4 + nameLength).toString("latin1") !== type)
    return `has a key whose content does not say ${type}`;
  try {
    parseWireKey(bytes, type);
  } catch (error) {
    return `has a damaged key (${(error as Error).message})`;
  }
  return undefined;
}

/** The SSH wire format of a public key: length-prefixed fields, all present and nothing after. */
function parseWireKey(bytes: Buffer, type: string): void {
  const fieldCount: Record<string, number> = {
    "ssh-rsa": 3,
    "ssh-dss": 5,
    "ssh-ed25519": 2,
    "ecdsa-sha2-nistp256": 3,
    "ecdsa-sha2-nistp384": 3,
    "ecdsa-sha2-nistp521": 3,
    "sk-ssh-ed25519@openssh.com": 3,
    "sk-ecdsa-sha2-nistp256@openssh.com": 4,
  };
  let offset = 0;
  for (let i = 0; i < (fieldCount[type] ?? 2); i++) {
    if (offset + 4 > bytes.length) throw new Error("it is cut short");
    const length = bytes.readUInt32BE(offset);
    offset += 4 + length;
    if (length === 0 || offset > bytes.length) throw new Error("it is cut short");
  }
  if (offset !== bytes.length) throw new Error("it has bytes after its last field");
  if (type === "ssh-ed25519" && bytes.readUInt32BE(4 + 11) !== 32)
    throw new Error("an ed25519 key is 32 bytes");
}

/** An entry written as a key (`TYPE BASE64...`) rather than as the path of a .pub file. */
export function looksLikeKey(entry: string): boolean {
  return /^\S+\s+[A-Za-z0-9+/]{16,}/.test(entry.trim());
}

/**
 * The keys of `ssh_authorized_keys`: an entry is a key, or a path (absolute, or from the state
 * file's directory) of a .pub file whose non-comment lines are keys.
 */
export function authorizedKeys(
  entries: readonly string[],
  stateDir: string | undefined,
  problems: CloudInitProblem[],
): string[] {
  const keys: string[] = [];
  entries.forEach((entry, i) => {
    const at = `ssh_authorized_keys/${i}`;
    if (looksLikeKey(entry)) {
      const problem = publicKeyProblem(entry);
      if (problem === undefined) keys.push(entry.trim());
      else problems.push({ at, message: `the key ${problem}` });
      return;
    }
    const path = isAbsolute(entry) ? entry : resolve(stateDir ?? process.cwd(), entry);
    let text: string;
    try {
      text = readRegularFile(path, { what: "public key file", maxBytes: maxKeyFileBytes }).toString(
        "utf8",
      );
    } catch (error) {
      problems.push({
        at,
        message: `${JSON.stringify(entry)} is neither a public key nor a readable .pub file (${(error as Error).message})`,
      });
      return;
    }
    const lines = text
      .split("\n")
      .map((line) => line.trim())
      .filter((line) => line !== "" && !line.startsWith("#"));
    if (lines.length === 0) problems.push({ at, message: `${path} holds no public key` });
    for (const [n, line] of lines.entries()) {
      const problem = publicKeyProblem(line);
      if (problem === undefined) keys.push(line);
      else problems.push({ at, message: `line ${n + 1} of ${path} ${problem}` });
    }
  });
  return keys;
}

/** The file's own text unchanged, or an object as JSON (after `header`, for cloud-config). */
function document(value: string | Record<string, unknown>, header = ""): string {
  return typeof value === "string" ? value : `${header}${JSON.stringify(value)}\n`;
}

/**
 * The `cloud-init.*` keys for `spec`. Problems (keys that are not keys, unreadable .pub files)
 * are added to `problems`; the keys returned are then incomplete and must not be applied.
 */
export function cloudInitConfig(
  spec: CloudInitSpec,
  stateDir: string | undefined,
  problems: CloudInitProblem[],
): Record<string, string> {
  const config: Record<string, string> = {};
  const keys = authorizedKeys(spec.ssh_authorized_keys ?? [], stateDir, problems);
  const vendor: Record<string, unknown> = {};
  if (spec.user !== undefined || keys.length > 0) {
    vendor.users = [
      {
        name: spec.user ?? defaultCloudUser,
        shell: "/bin/bash",
        sudo: "ALL=(ALL) NOPASSWD:ALL",
        lock_passwd: true,
        ...(keys.length > 0 ? { ssh_authorized_keys: keys } : {}),
      },
    ];
  }
  if (spec.packages !== undefined && spec.packages.length > 0) vendor.packages = spec.packages;
  if (Object.keys(vendor).length > 0)
    config[cloudInitKeys.vendorData] = document(vendor, "#cloud-config\n");
  if (spec.user_data !== undefined)
    config[cloudInitKeys.userData] = document(spec.user_data, "#cloud-config\n");
  if (spec.network_config !== undefined)
    config[cloudInitKeys.networkConfig] = document(spec.network_config);
  return config;
}
