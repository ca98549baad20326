/**
 * `plugins.lxc.remote`: the section's Incus is reached over HTTPS (src/incus.ts), not the
 * local socket. The query binds the remote's client to the run's ctx; every later step of
 * the same run (prepare, apply, verify) finds it there through `incusOf`, so the file, not the
 * environment, says which Incus a plan was made against and applied to.
 *
 * On a remote, nothing of this host says anything about the containers: their veths, /proc,
 * the bridges and mount sources are on another machine. What op would read or fix here is
 * refused at plan time (remoteProblems), never half-done.
 */
import { createPrivateKey, X509Certificate } from "node:crypto";
import { lstatSync, readFileSync } from "node:fs";
import { incusTimeouts } from "../../src/context.js";
import { OpError } from "../../src/errors.js";
import { createIncusClient, type IncusClient, type IncusRemote } from "../../src/incus.js";
import type { Ctx, Problem } from "../../src/plugin.js";
import { describe, nicStatePath } from "./diff.js";
import { driftDevice } from "./nics/drift.js";
import { type LxcAction, type LxcLive, type LxcSection, nicDevice } from "./types.js";

type RemoteSpec = NonNullable<LxcSection["remote"]>;

const base = "/plugins/lxc/remote";

/** The client each run's ctx was bound to by its query, with the spec it was made from. */
const bound = new WeakMap<Ctx, { spec: string; client: IncusClient }>();

/** The run's Incus, if it has one: the remote its query bound, else the local one. */
export function runIncus(ctx: Ctx): IncusClient | undefined {
  return bound.get(ctx)?.client ?? ctx.incus;
}

/** The run's Incus: the remote its query bound, else the local one (ctx.incus). */
export function incusOf(ctx: Ctx): IncusClient {
  const remote = bound.get(ctx)?.client;
  if (remote !== undefined) return remote;
  if (ctx.incus === undefined) {
    throw new OpError("daemon-unavailable", "this run has no Incus client", {
      hint: "the lxc plugin needs ctx.incus (createCtx gives one)",
    });
  }
  return ctx.incus;
}

/** Whether the run's Incus is a remote one (nothing about its containers is on this host). */
export function isRemote(ctx: Ctx): boolean {
  return incusOf(ctx).remote !== undefined;
}

/**
 * The Incus the section names: its remote, bound to `ctx` for the rest of the run (made once
 * per ctx and spec), or the local one. `section` may not have been checked yet: the query
 * starts while the schemas run, so a malformed remote is an error here too.
 */
export function bindIncus(ctx: Ctx, section: unknown): IncusClient {
  const spec = (section as LxcSection | undefined)?.remote;
  if (spec === undefined) return incusOf(ctx);
  const key = JSON.stringify(spec);
  const known = bound.get(ctx);
  if (known?.spec === key) return known.client;
  known?.client.close();
  const client = createIncusClient(remoteOf(spec), {
    ...incusTimeouts(ctx.settings),
    onProgress: (message) => ctx.log.info(message),
  });
  bound.set(ctx, { spec: key, client });
  return client;
}

/** The file's problems with `remote` that its schema cannot say (pure: op validate runs it). */
export function checkRemote(section: LxcSection, path: string): string[] {
  const remote = section.remote;
  const problems: string[] = [];
  const containers = section.containers ?? [];
  containers.forEach((spec, c) => {
    if (spec.allow_move === true && spec.target === undefined)
      problems.push(
        `${path}/containers/${c}/allow_move: a move needs a "target" member to move to`,
      );
  });
  if (remote === undefined) return problems;
  const at = `${path}/remote`;
  if ((remote.url === undefined) === (remote.urls === undefined))
    problems.push(`${at}: give "url" or "urls" (one of them)`);
  if ((remote.server_cert === undefined) === (remote.trust === undefined))
    problems.push(
      `${at}: give "server_cert" (a PEM file) or "trust" (its SHA-256 fingerprint), one of them`,
    );
  // Host directories and their owners are on this host; the container would be on another.
  containers.forEach((spec, c) => {
    if ((spec.mounts ?? []).length > 0)
      problems.push(
        `${path}/containers/${c}/mounts: a mount of a host directory cannot be checked or owned on a remote Incus (the directory would be on the remote host); use a volume`,
      );
  });
  return problems;
}

/** The remote's URLs, certificate, key and pinned fingerprint, read and checked. */
export function remoteOf(spec: RemoteSpec): IncusRemote {
  if (typeof spec !== "object" || spec === null)
    throw invalid(
      base,
      "must be an object with url, client_cert, client_key, server_cert or trust",
    );
  const urls = spec.urls ?? (spec.url === undefined ? [] : [spec.url]);
  if (urls.length === 0) throw invalid(base, 'give "url" or "urls"');
  for (const [i, url] of urls.entries()) {
    const at = spec.urls === undefined ? `${base}/url` : `${base}/urls/${i}`;
    let parsed: URL;
    try {
      parsed = new URL(String(url));
    } catch {
      throw invalid(at, `${JSON.stringify(url)} is not a URL`);
    }
    // Plain HTTP would send op's requests, and accept Incus's answers, unauthenticated.
    if (parsed.protocol !== "https:")
      throw invalid(at, `${url}: only https:// URLs (Incus's API is served over TLS)`);
    if (parsed.username !== "" || parsed.password !== "" || parsed.pathname.length > 1)
      throw invalid(at, `${url}: give only https://HOST[:PORT], no path or credentials`);
  }
  // The key first: a key others can read is the worst of what can be wrong here.
  const clientKey = pemFile(spec.client_key, `${base}/client_key`, "key");
  const clientCert = pemFile(spec.client_cert, `${base}/client_cert`, "certificate");
  let fingerprint: string;
  if (spec.server_cert !== undefined) {
    fingerprint = certificate(
      pemFile(spec.server_cert, `${base}/server_cert`, "certificate"),
      `${base}/server_cert`,
    ).fingerprint256;
  } else if (typeof spec.trust === "string") {
    fingerprint = spec.trust;
  } else throw invalid(base, 'give "server_cert" or "trust"');
  fingerprint = fingerprint.replaceAll(":", "").toLowerCase();
  if (!/^[0-9a-f]{64}$/.test(fingerprint))
    throw invalid(`${base}/trust`, "a SHA-256 fingerprint is 64 hex digits (colons allowed)");
  // The certificate and the key must belong together, or every TLS handshake would fail.
  const key = createPrivateKey(clientKey);
  const cert = certificate(clientCert, `${base}/client_cert`);
  if (!cert.checkPrivateKey(key))
    throw invalid(`${base}/client_key`, `${spec.client_key} is not the key of ${spec.client_cert}`);
  return { urls: urls.map(String), clientCert, clientKey, fingerprint };
}

/** A PEM file's text; a key must be a regular file only its owner can read (0600 or less). */
function pemFile(path: unknown, at: string, kind: "certificate" | "key"): string {
  if (typeof path !== "string" || !/^\/[A-Za-z0-9._+@/-]*$/.test(path))
    throw invalid(
      at,
      `${JSON.stringify(path)} is not an absolute path of letters, digits and ._+@/-`,
    );
  let stat: ReturnType<typeof lstatSync>;
  try {
    stat = lstatSync(path);
  } catch (error) {
    throw invalid(at, `${path}: ${(error as NodeJS.ErrnoException).code ?? "unreadable"}`, {
      hint: "the files of `remote` are read on this host, where op runs",
    });
  }
  if (!stat.isFile())
    throw invalid(at, `${path} is not a regular file (a symlink is not followed)`);
  if (kind === "key" && (stat.mode & 0o077) !== 0)
    throw invalid(
      at,
      `${path} is readable by others (mode ${(stat.mode & 0o777).toString(8).padStart(4, "0")})`,
      {
        hint: `chmod 600 ${path}`,
      },
    );
  const text = readFileSync(path, "utf8");
  if (kind === "key") {
    try {
      createPrivateKey(text);
    } catch {
      throw invalid(at, `${path} is not a PEM private key`);
    }
  } else certificate(text, at);
  return text;
}

function certificate(pem: string, at: string): X509Certificate {
  try {
    return new X509Certificate(pem);
  } catch {
    throw invalid(at, "is not a PEM certificate");
  }
}

function invalid(at: string, message: string, options: { hint?: string } = {}): OpError {
  return new OpError("invalid-state", `${at}: ${message}`, {
    hint:
      options.hint ??
      "plugins.lxc.remote names the Incus op manages over HTTPS; nothing was changed",
  });
}

/**
 * Refuses, before any change, the fixes op makes on this host's kernel (a host veth renamed
 * back or re-enrolled, a container's `eth0` brought up through its namespace) when the
 * containers are on a remote Incus: there they would hit this host, not the container's.
 */
export function guardRemote(actions: readonly LxcAction[], live: LxcLive): Problem[] {
  if (live.remote === undefined) return [];
  return actions.flatMap((action) => {
    if (action.resource !== "container" || action.kind !== "modify") return [];
    // A running container's eth0 re-plugged comes back down: op restores it through the
    // container's namespace on this host, which a remote's is not.
    const replugged = action.before.status === "running" && action.after.running;
    const local = action.changes.filter(
      (change) =>
        driftDevice(change.path) !== undefined ||
        change.path === nicStatePath ||
        (replugged && change.path === `devices.${nicDevice}`),
    );
    if (local.length === 0) return [];
    return [
      {
        path: action.after.path,
        message: `container ${action.id} on the remote Incus ${live.remote}: ${local.map(describe).join(", ")} is a fix on the container's host, which op cannot make from here`,
        hint: "fix it on that host (or restart the container: Incus names and enrols its veth again at start)",
      },
    ];
  });
}
