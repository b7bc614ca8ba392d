/**
 * Requests to URLs users configure (a prompt's context endpoint, external actions' webhooks) leave from
 * inside the deployment, so by default they may only reach public addresses: not loopback, private
 * networks, link-local (cloud metadata at 169.254.169.254) or carrier-grade NAT. The check happens on the
 * address actually connected to (a DNS answer that changes between check and connect gains nothing).
 * SWITCHBOARD_ALLOW_PRIVATE_URLS=true lifts it for deployments whose endpoints live on an internal network.
 */
import { lookup as dnsLookup, type LookupAddress } from 'node:dns';
import { BlockList, isIP } from 'node:net';
import { Agent, fetch as undiciFetch } from 'undici';

const blocked = new BlockList();
for (const [net, bits] of [
  ['0.0.0.0', 8], ['10.0.0.0', 8], ['100.64.0.0', 10], ['127.0.0.0', 8], ['169.254.0.0', 16], ['172.16.0.0', 12],
  ['192.0.0.0', 24], ['192.168.0.0', 16], ['198.18.0.0', 15], ['224.0.0.0', 4], ['240.0.0.0', 4],
] as const) blocked.addSubnet(net, bits, 'ipv4');
for (const [net, bits] of [['::', 128], ['::1', 128], ['fc00::', 7], ['fe80::', 10], ['ff00::', 8]] as const) blocked.addSubnet(net, bits, 'ipv6');

/** Whether `address` (an IP literal) is one a user's URL must not reach. */
export function isPrivateAddress(address: string): boolean {
  const family = isIP(address);
  if (family === 0) return false;
  if (family === 6) {
    const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
    if (mapped) return blocked.check(mapped[1], 'ipv4');
    return blocked.check(address, 'ipv6');
  }
  return blocked.check(address, 'ipv4');
}

export class PrivateAddressError extends Error {
  constructor(host: string) {
    super(`${host} is a private, loopback or link-local address; set SWITCHBOARD_ALLOW_PRIVATE_URLS=true to allow it`);
    this.name = 'PrivateAddressError';
  }
}

type LookupCallback = (err: NodeJS.ErrnoException | null, address: string | LookupAddress[], family?: number) => void;

function publicLookup(hostname: string, options: object, callback: LookupCallback): void {
  dnsLookup(hostname, { ...options, all: true }, (err, addresses) => {
    if (err) return callback(err, []);
    const list = addresses as LookupAddress[];
    const usable = list.filter((a) => !isPrivateAddress(a.address));
    if (usable.length === 0) return callback(Object.assign(new PrivateAddressError(hostname), { code: 'EPRIVATE' }), []);
    if ((options as { all?: boolean }).all) return callback(null, usable);
    callback(null, usable[0].address, usable[0].family);
  });
}

const guardedAgent = new Agent({ connect: { lookup: publicLookup as never } });

/**
 * `fetch` for users' URLs: the same interface, but a private destination fails (with PrivateAddressError as
 * the cause) unless `allowPrivate`.
 */
export function userUrlFetch(allowPrivate: boolean): typeof fetch {
  if (allowPrivate) return globalThis.fetch;
  return (async (input: string | URL | Request, init?: RequestInit) => {
    const url = new URL(input instanceof Request ? input.url : input.toString());
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isPrivateAddress(host) || host === 'localhost' || host.endsWith('.localhost')) {
      throw new TypeError('fetch failed', { cause: new PrivateAddressError(host) });
    }
    return undiciFetch(input as never, { ...(init as object), dispatcher: guardedAgent } as never) as unknown as Response;
  }) as typeof fetch;
}
