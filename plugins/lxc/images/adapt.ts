/**
 * What op adds to a system tarball to make it an Incus image (`images[].adapt`): files appended
 * to the rootfs (networkd enabled with a DHCP .network for eth0, a systemd generator for
 * containers) and the metadata (metadata.yaml with its templates). Pure: the build streams them
 * (tarball.ts).
 */
import { stringify } from "yaml";
import type { LxcImageSpec } from "../types.js";
import { sourceShaProperty } from "./types.js";

export type TarballAdapt = NonNullable<LxcImageSpec["adapt"]>;

/** A file appended to the rootfs: a path relative to its root, no leading `./` or `/`. */
export type AdaptFile =
  | { type: "file"; path: string; mode: number; content: string }
  | { type: "symlink"; path: string; target: string };

/** Where systemd-networkd is enabled: what `systemctl enable systemd-networkd` links. */
const networkdLinks: AdaptFile[] = [
  {
    type: "symlink",
    path: "etc/systemd/system/multi-user.target.wants/systemd-networkd.service",
    target: "/lib/systemd/system/systemd-networkd.service",
  },
  {
    type: "symlink",
    path: "etc/systemd/system/sockets.target.wants/systemd-networkd.socket",
    target: "/lib/systemd/system/systemd-networkd.socket",
  },
  {
    type: "file",
    path: "etc/systemd/network/50-op-eth0.network",
    mode: 0o644,
    content:
      "# written by op (images[].adapt.networkd)\n[Match]\nName=eth0\n\n[Network]\nDHCP=yes\n",
  },
];

/**
 * op's systemd generator. systemd runs generators early at boot, before it loads units, with
 * three output directories; a unit linked to /dev/null in the second (early) one is masked over
 * anything in /etc. In a container (systemd-detect-virt says so) it masks what needs the host's
 * kernel or hardware: the kernel's debug, tracing and config file systems, the FUSE control
 * file system and binfmt_misc (mounting them is refused), udev (no uevents reach a container),
 * module loading, the audit socket (the audit netlink belongs to the host), the hardware clock
 * sync and remounting / (the container's root is set up by Incus). systemd-sysctl stays: the
 * network's keys are the container's own, and a key it may not set only logs a line.
 */
const generator = `#!/bin/sh
# op's systemd generator (images[].adapt.lxc_generator): masks, in a container only, the units
# that need the host's kernel or hardware. systemctl cannot be used by a generator.
set -eu
early=\${2:-}
[ -n "$early" ] || exit 0
virt=$(systemd-detect-virt --container 2>/dev/null || true)
case "$virt" in "" | none) exit 0 ;; esac
mask() {
  for unit in "$@"; do
    ln -sf /dev/null "$early/$unit"
  done
}
mask sys-kernel-config.mount sys-kernel-debug.mount sys-kernel-tracing.mount \\
  sys-fs-fuse-connections.mount proc-sys-fs-binfmt_misc.automount \\
  systemd-udevd.service systemd-udevd-control.socket systemd-udevd-kernel.socket \\
  systemd-udev-trigger.service systemd-udev-settle.service systemd-hwdb-update.service \\
  systemd-modules-load.service kmod-static-nodes.service systemd-journald-audit.socket \\
  systemd-remount-fs.service hwclock.service systemd-timesyncd.service
`;

export function adaptationFiles(adapt: TarballAdapt): AdaptFile[] {
  return [
    ...(adapt.networkd === true ? networkdLinks : []),
    ...(adapt.lxc_generator === true
      ? [
          {
            type: "file" as const,
            path: "etc/systemd/system-generators/op-container",
            mode: 0o755,
            content: generator,
          },
        ]
      : []),
  ];
}

/** Incus's name of the host's architecture, the default of metadata.yaml's. */
export function hostArchitecture(): string {
  const names: Record<string, string> = {
    x64: "x86_64",
    arm64: "aarch64",
    arm: "armv7l",
    ia32: "i686",
    ppc64: "ppc64le",
    riscv64: "riscv64",
    s390x: "s390x",
    loong64: "loongarch64",
  };
  return names[process.arch] ?? process.arch;
}

/**
 * Why a template path is refused, or undefined: Incus writes the rendered file at that path in
 * the instance, so it must be absolute, name a file (not `/` or a directory), and hold no
 * control character (a NUL would cut it short) and no `.`/`..` component.
 */
export function templatePathProblem(path: string): string | undefined {
  if (!path.startsWith("/")) return `template path "${path}" is not absolute`;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what is refused
  if (/[\x00-\x1f\x7f]/.test(path))
    return `template path ${JSON.stringify(path)} holds a control character`;
  const parts = path.slice(1).split("/");
  if (path.endsWith("/") || parts.some((part) => part === "" || part === "." || part === ".."))
    return `template path "${path}" must name a file: no empty, "." or ".." component and no trailing "/"`;
  return undefined;
}

/** The metadata tarball's files: metadata.yaml, then one template file per templated path. */
export function metadataFiles(input: {
  file: string;
  sourceSha256: string;
  created: number;
  adapt: TarballAdapt;
}): { path: string; content: string }[] {
  const { adapt } = input;
  const paths = Object.keys(adapt.templates ?? {}).sort();
  const templateFile = (i: number, path: string) =>
    `t${i}-${path.slice(1).replace(/[^A-Za-z0-9._-]/g, "_")}.tpl`;
  const metadata = {
    architecture: adapt.architecture ?? hostArchitecture(),
    creation_date: input.created,
    properties: {
      description: `built by op from ${input.file}`,
      ...adapt.properties,
      [sourceShaProperty]: input.sourceSha256,
    },
    ...(adapt.profiles === undefined ? {} : { profiles: adapt.profiles }),
    ...(paths.length === 0
      ? {}
      : {
          templates: Object.fromEntries(
            paths.map((path, i) => [
              path,
              { when: ["create", "copy"], create_only: false, template: templateFile(i, path) },
            ]),
          ),
        }),
  };
  return [
    { path: "metadata.yaml", content: stringify(metadata) },
    ...paths.map((path, i) => ({
      path: `templates/${templateFile(i, path)}`,
      content: adapt.templates?.[path] ?? "",
    })),
  ];
}
