/**
 * How the sources spell a resource's id, the way each plugin's actions name it (and what of
 * Open vSwitch the network plugin reads). src/ may not
 * import plugins/ (src/layering.test.ts), so the sources take these from the caller:
 * plugins/watch-ids.ts builds them from the plugins' own ref functions, and the entry hands
 * them down with the registry.
 */
export interface SourceIds {
  /** The lxc plugin's container id: `NAME` in the default project, else `PROJECT/NAME`. */
  container(project: string, name: string): string;
  /** The network plugin's id of the link `name`. */
  link(name: string): string;
  /** The network plugin's id of a static route (`198.18.0.0/24 dev br0`, `::/0 dev br0`). */
  route(route: { to: string; dev: string; family: 4 | 6 }): string;
  /** The network plugin's one id for all of Open vSwitch. */
  readonly ovsDatabase: string;
  /** The Open vSwitch columns the network plugin reads, by table: a change to any other is no hint. */
  readonly ovsColumns: Readonly<Record<string, readonly string[]>>;
  /** The nftables plugin's id of a table (`inet/op_demo`). */
  table(family: string, name: string): string;
  /** Whether a link is a container's host-side veth by its name (`vi100`), an lxc concern too. */
  isContainerVeth(name: string): boolean;
}

/** The plugins the sources give hints for, by the names they are registered under. */
export const lxcPlugin = "lxc";
export const networkPlugin = "network";
export const nftablesPlugin = "nftables";
