/** What `op doctor` probes for the lxc plugin (loaded only by `op doctor`). */
import { createIncusClient } from "../../src/incus.js";
import { probeSeconds } from "../network/doctor.js";

/** Incus's API answers on its socket (the way op talks to it): its server version. */
export async function probeIncus(socket: string): Promise<string> {
  const client = createIncusClient(socket, { answerSeconds: probeSeconds });
  try {
    const server = await client.request<{ environment?: { server_version?: string } }>(
      "GET",
      "/1.0",
      undefined,
      { what: "reading the server's information" },
    );
    return `${socket}: Incus ${server.environment?.server_version ?? "(version not given)"}`;
  } finally {
    client.close();
  }
}
