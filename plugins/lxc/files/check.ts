/**
 * The checks of `containers[].files[]` that need only the file (op validate, and prepare's
 * first pass): a path op can name in the file API, exactly one of `content` and `source`, a
 * mode, content within its limit, each path once per container. Each problem names its JSON
 * path. A `source` is only resolved here; prepare opens and hashes it (files/prepare.ts).
 */
import type { LxcContainerSpec } from "../types.js";
import {
  type DesiredFile,
  defaultMode,
  type FileOrigin,
  maxContentBytes,
  withOrigin,
} from "./types.js";

type FileSpec = NonNullable<LxcContainerSpec["files"]>[number];

/** Why `path` cannot be a declared file's path, or undefined when it can. */
export function pathProblem(path: string): string | undefined {
  if (path.includes("\0")) return "a path with a NUL character cannot be written";
  if (!path.startsWith("/")) return `"${path}" is not absolute: write the full path, from /`;
  if (path === "/" || /^\/+$/.test(path))
    return `"/" is the container's root directory, not a file`;
  if (path.endsWith("/")) return `"${path}" ends with "/": a declared file is not a directory`;
  const parts = path.slice(1).split("/");
  if (parts.some((part) => part === ".."))
    return `"${path}" has a ".." component: op writes only the path it is given, with no way out of it`;
  if (parts.some((part) => part === "." || part === ""))
    return `"${path}" is not normalised (an empty or "." component): write it as ${normalise(path)}`;
  return undefined;
}

function normalise(path: string): string {
  return `/${path
    .split("/")
    .filter((part) => part !== "" && part !== ".")
    .join("/")}`;
}

/** `0644`, `644` → `0644`; undefined when it is not an octal permission mode. */
export function modeOf(mode: string): string | undefined {
  return /^0?[0-7]{3}$/.test(mode) ? `0${mode.slice(-3)}` : undefined;
}

/**
 * The container's declared files, checked; each problem goes to `problems` and its entry is
 * left out. `resolvePath` resolves a `source` from the state file's directory (op validate has
 * none and leaves a relative one as it is).
 */
export function checkFiles(
  specs: readonly FileSpec[],
  base: string,
  problems: { add(path: string, message: string): void },
  resolvePath: (path: string) => string,
): DesiredFile[] {
  const files: DesiredFile[] = [];
  const seen = new Map<string, string>();
  for (const [index, spec] of specs.entries()) {
    const at = `${base}/files/${index}`;
    let refused = false;
    const add = (field: string, message: string) => {
      refused = true;
      problems.add(field === "" ? at : `${at}/${field}`, message);
    };
    const wrong = pathProblem(spec.path);
    if (wrong !== undefined) add("path", wrong);
    else {
      const first = seen.get(spec.path);
      if (first !== undefined) add("path", `${spec.path} is also declared by ${first}`);
      else seen.set(spec.path, at);
    }
    const absent = spec.ensure === "absent";
    const given = (["content", "source", "mode", "uid", "gid"] as const).filter(
      (field) => spec[field] !== undefined,
    );
    if (absent && given.length > 0) {
      add(
        given[0] as string,
        `a file with "ensure": "absent" is deleted: drop ${given.map((field) => `"${field}"`).join(", ")}`,
      );
    }
    if (!absent && spec.content !== undefined && spec.source !== undefined)
      add("", 'give either "content" (the text) or "source" (a host file), not both');
    if (!absent && spec.content === undefined && spec.source === undefined)
      add("", 'a file needs "content" (the text) or "source" (a host file to copy)');
    const mode = spec.mode === undefined ? defaultMode : modeOf(spec.mode);
    if (mode === undefined)
      add(
        "mode",
        `"${spec.mode}" is not a permission mode: three octal digits, such as "0644" or "600"`,
      );
    const bytes = spec.content === undefined ? undefined : Buffer.from(spec.content, "utf8");
    if (bytes !== undefined && bytes.length > maxContentBytes) {
      add(
        "content",
        `the content is ${bytes.length} bytes, more than the limit of ${maxContentBytes} (1 MiB): put it in a host file and name it as "source"`,
      );
    }
    if (spec.source?.includes("\0")) add("source", "a path with a NUL character cannot be opened");
    if (refused || mode === undefined) continue;
    const origin: FileOrigin = {
      at,
      ...(bytes === undefined ? {} : { bytes }),
      ...(spec.source === undefined ? {} : { source: resolvePath(spec.source) }),
    };
    const file: DesiredFile = { path: spec.path, ensure: absent ? "absent" : "present" };
    if (!absent && bytes !== undefined) file.want = stateOf(bytes, mode, spec);
    // A source's hash and size are known once prepare has read it.
    else if (!absent)
      file.want = { sha256: "", size: 0, mode, uid: spec.uid ?? 0, gid: spec.gid ?? 0 };
    files.push(withOrigin(file, origin));
  }
  return files;
}

/** What a file of these bytes, mode and owner is. */
export function stateOf(
  bytes: Buffer,
  mode: string,
  owner: { uid?: number | undefined; gid?: number | undefined },
) {
  return {
    sha256: sha256(bytes),
    size: bytes.length,
    mode,
    uid: owner.uid ?? 0,
    gid: owner.gid ?? 0,
  };
}

export function sha256(bytes: Buffer): string {
  // Fetched here: only files that declare files pay for loading node:crypto.
  return process.getBuiltinModule("node:crypto").createHash("sha256").update(bytes).digest("hex");
}
