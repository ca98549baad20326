/**
 * What `op watch` listens to: a source turns a daemon's change events (Incus `/1.0/events`,
 * `ip monitor`, `nft -j monitor`, an OVSDB `monitor`) into hints. A hint is never trusted as
 * state: it only says which plugin (and, when the source can tell, which resource) to read
 * and plan again. What the host is, is always read by the plugin's own query.
 */
import type { Observable } from "rxjs";

export interface Hint {
  /** The plugin whose resources the change may concern: "lxc", "network", "nftables". */
  plugin: string;
  /**
   * The resource's id as that plugin's actions name it (`ct1`, `br0`, `inet/op_demo`), when
   * the event names it; absent, the hint is about the plugin as a whole.
   */
  id?: string;
  /** The source that saw it ("incus", "ip", "nft", "ovsdb"), for the log. */
  source: string;
  /** One line for the log: what the event said, e.g. "link br0 deleted". */
  what: string;
}

export interface HintSource {
  /** "incus", "ip", "nft", "ovsdb". */
  readonly name: string;
  /** The plugins whose hints it gives: a watch starts only the sources its file needs. */
  readonly plugins: readonly string[];
  /**
   * Subscribing starts listening (a process, a socket); unsubscribing stops it and leaves no
   * process behind. The stream errors when the daemon goes away or the listener falls behind:
   * the watch then resubscribes with back-off and meanwhile relies on its full resync.
   */
  hints(): Observable<Hint>;
}
