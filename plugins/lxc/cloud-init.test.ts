import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import {
  authorizedKeys,
  type CloudInitProblem,
  cloudInitConfig,
  cloudInitKeys,
  publicKeyProblem,
} from "./cloud-init.js";

// Public halves of throw-away keys made with ssh-keygen for these tests.
const ed25519 =
  "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIJORgS9S4xbYAbM+XCJ8GYU7bJniy2f4XdvAiE2HRoxR alice@example";
const rsa =
  "ssh-rsa AAAAB3NzaC1yc2EAAAADAQABAAABAQDN1w3wOQn0ijUkebMeCZW8/3slLDgNdYVP3FTacNyqUDVYvlTA5Je9MJVsELDpM/Ff0k51eI/+5Z8NEpOka8qb1WvA0CwlCz3ZPi3d+6GkC2zqeU6FIGqJbJm5MD+Mc+G1nW4BVlwFl3hGuL+MYkqdQ7exQHTPjsHBhsZLgva39PbxEVwHsflGJZhbf103AvpnSKyvOP4leMldmgc+ky26Py0pCgkP1FjClNaG+0mKhbXntsYhjxmGsLuxwpMnqIF8ceT924jn4avrwbEkfc2YIP1sq0w6KQmsyZTA/VZw99ddIRUdKafExsJjcHKsvc1TC3eqJmKNAYyOAmJOubKj";
const ecdsa =
  "ecdsa-sha2-nistp256 AAAAE2VjZHNhLXNoYTItbmlzdHAyNTYAAAAIbmlzdHAyNTYAAABBBHzLzUfHrwAJPgYDmaXiqyMXbbLlTDG+WKA9nnxvcTjNEO62tnevX3GfnnwS012w+XYJGkZfQRTvAJTpbHnnnlo= bob";

const dir = mkdtempSync(join(tmpdir(), "op-cloud-init-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("publicKeyProblem", () => {
  it("accepts ed25519, rsa and ecdsa keys, with or without a comment", () => {
    for (const key of [ed25519, rsa, ecdsa, ed25519.split(" ").slice(0, 2).join(" ")])
      expect(publicKeyProblem(key)).toBeUndefined();
  });

  it("refuses what is not a key, naming why", () => {
    expect(publicKeyProblem("hello")).toMatch(/not an OpenSSH public key/);
    expect(publicKeyProblem("ssh-foo AAAA")).toMatch(/not an SSH public key type/);
    expect(publicKeyProblem("ssh-ed25519 not*base64")).toMatch(/not base64/);
    // An rsa blob labelled ed25519.
    expect(publicKeyProblem(`ssh-ed25519 ${rsa.split(" ")[1]}`)).toMatch(
      /does not say ssh-ed25519/,
    );
    // Cut short by a copy-paste: the last field's length runs past the end.
    const blob = ed25519.split(" ")[1] as string;
    const cut = Buffer.from(blob, "base64").subarray(0, 40).toString("base64");
    expect(publicKeyProblem(`ssh-ed25519 ${cut}`)).toMatch(/cut short/);
    const longer = Buffer.concat([Buffer.from(blob, "base64"), Buffer.from([0])]).toString(
      "base64",
    );
    expect(publicKeyProblem(`ssh-ed25519 ${longer}`)).toMatch(/after its last field/);
    // A private key pasted by mistake.
    expect(publicKeyProblem("-----BEGIN OPENSSH PRIVATE KEY-----")).toMatch(
      /not an SSH public key type/,
    );
  });
});

describe("authorizedKeys", () => {
  it("takes keys as given and reads .pub files, relative to the state file's directory", () => {
    writeFileSync(join(dir, "team.pub"), `# the team\n${rsa}\n\n${ecdsa}\n`);
    const problems: CloudInitProblem[] = [];
    expect(authorizedKeys([ed25519, "team.pub"], dir, problems)).toEqual([ed25519, rsa, ecdsa]);
    expect(problems).toEqual([]);
  });

  it("names the entry, the file and the line of each bad key", () => {
    writeFileSync(join(dir, "bad.pub"), `${rsa}\nssh-rsa AAAA\n`);
    writeFileSync(join(dir, "empty.pub"), "# nothing\n");
    const problems: CloudInitProblem[] = [];
    const keys = authorizedKeys(
      ["bad.pub", "missing.pub", "empty.pub", "ssh-ed25519 AAAAAAAAAAAAAAAAAAAAAAAA"],
      dir,
      problems,
    );
    expect(keys).toEqual([rsa]);
    expect(problems).toEqual([
      { at: "ssh_authorized_keys/0", message: expect.stringMatching(/^line 2 of .*bad\.pub/) },
      {
        at: "ssh_authorized_keys/1",
        message: expect.stringMatching(/"missing\.pub" is neither a public key nor a readable/),
      },
      {
        at: "ssh_authorized_keys/2",
        message: expect.stringMatching(/empty\.pub holds no public key/),
      },
      { at: "ssh_authorized_keys/3", message: expect.stringMatching(/^the key has a key whose/) },
    ]);
  });
});

describe("cloudInitConfig", () => {
  it("puts op's user and packages in vendor-data and the file's user data unchanged in user-data", () => {
    const problems: CloudInitProblem[] = [];
    const config = cloudInitConfig(
      {
        user: "dev",
        ssh_authorized_keys: [ed25519],
        packages: ["git"],
        user_data: "#!/bin/sh\necho hi\n",
        network_config: { version: 2, ethernets: { eth0: { dhcp4: true } } },
      },
      dir,
      problems,
    );
    expect(problems).toEqual([]);
    const vendor = config[cloudInitKeys.vendorData] as string;
    expect(vendor.startsWith("#cloud-config\n")).toBe(true);
    expect(JSON.parse(vendor.slice("#cloud-config\n".length))).toEqual({
      users: [
        {
          name: "dev",
          shell: "/bin/bash",
          sudo: "ALL=(ALL) NOPASSWD:ALL",
          lock_passwd: true,
          ssh_authorized_keys: [ed25519],
        },
      ],
      packages: ["git"],
    });
    expect(config[cloudInitKeys.userData]).toBe("#!/bin/sh\necho hi\n");
    expect(JSON.parse(config[cloudInitKeys.networkConfig] as string)).toEqual({
      version: 2,
      ethernets: { eth0: { dhcp4: true } },
    });
  });

  it("gives no keys for an empty cloud_init and a cloud-config for user data given as an object", () => {
    expect(cloudInitConfig({}, dir, [])).toEqual({});
    expect(cloudInitConfig({ user_data: { runcmd: [["touch", "/x"]] } }, dir, [])).toEqual({
      [cloudInitKeys.userData]: '#cloud-config\n{"runcmd":[["touch","/x"]]}\n',
    });
  });
});
