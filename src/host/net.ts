/**
 * What op asks of the network itself, apart from configuring it: whether a service answers. Only
 * the readiness checks of the lxc plugin use it (is a container's sshd up?), and only towards
 * the address of a container op just created.
 */
import type { Socket } from "node:net";

export interface Net {
  /**
   * Connects to `address`:`port` and returns the first line the server sends (an SSH server's
   * `SSH-2.0-…` banner), or why there is none: refused, unreachable, silent for `timeoutMs`.
   */
  banner(
    address: string,
    port: number,
    timeoutMs: number,
  ): Promise<{ line: string } | { error: string }>;
}

export function createNet(): Net {
  return {
    banner: (address, port, timeoutMs) =>
      new Promise((resolve) => {
        // Fetched here: node:net is needed by the few runs that wait for a container.
        const { createConnection } = process.getBuiltinModule("node:net");
        let received = "";
        const socket: Socket = createConnection({ host: address, port });
        const done = (answer: { line: string } | { error: string }) => {
          clearTimeout(timer);
          socket.destroy();
          resolve(answer);
        };
        const timer = setTimeout(
          () => done({ error: `no answer within ${timeoutMs / 1000} s` }),
          timeoutMs,
        );
        socket.setEncoding("latin1");
        socket.on("data", (chunk: string) => {
          received += chunk;
          const end = received.indexOf("\n");
          if (end !== -1 || received.length > 255)
            done({ line: received.slice(0, end === -1 ? 255 : end).replace(/\r$/, "") });
        });
        socket.on("error", (error: NodeJS.ErrnoException) =>
          done({ error: error.code === "ECONNREFUSED" ? "connection refused" : error.message }),
        );
        socket.on("end", () => done({ error: "closed without a greeting" }));
      }),
  };
}
