/**
 * Credential resolution, in one place and one order:
 *   1. the connection the agent names explicitly (transcriber.account_connection,
 *      openai_account_connection, a key stored on the voice itself);
 *   2. the user's own account connection of the vendor's type (the most recently updated one);
 *   3. the platform's default from the environment (OPENAI_API_KEY, DEEPGRAM_API_KEY, …).
 * Nothing found fails with a message naming the connection type to add, which becomes the call's
 * `error_message`.
 */
import { trimSlash, VENDORS, type VendorId } from './vendors.js';
import type { VendorAccess } from './types.js';

export interface StoredConnection {
  id: string;
  type: string;
  credentials?: Record<string, unknown> | null;
  config?: Record<string, unknown> | null;
}

/** The user's connections with secrets in clear (the store implements this, scoped to one user). */
export interface ConnectionLookup {
  byId(id: string): Promise<StoredConnection | null>;
  latestOfType(type: string): Promise<StoredConnection | null>;
}

export type Env = Record<string, string | undefined>;

export class MissingCredentialError extends Error {
  constructor(readonly connectionType: string, readonly purpose: string, detail?: string) {
    super(detail ?? `${purpose} needs an ${connectionType} account connection (none found, and no platform default is set)`);
    this.name = 'MissingCredentialError';
  }
}

/** What the agent supplies directly for one vendor: a connection (by id or loaded) or bare fields. */
export type Explicit =
  | { connectionId: string }
  | { connection: StoredConnection }
  | { fields: Record<string, string | null | undefined> };

const str = (v: unknown): string | undefined => (typeof v === 'string' && v.trim() ? v.trim() : undefined);

async function explicitFields(vendor: VendorId, explicit: Explicit | undefined, lookup: ConnectionLookup, purpose: string): Promise<Record<string, unknown> | undefined> {
  if (!explicit) return undefined;
  const spec = VENDORS[vendor];
  if ('fields' in explicit) return Object.values(explicit.fields).some((v) => str(v)) ? explicit.fields : undefined;
  const conn = 'connection' in explicit ? explicit.connection : await lookup.byId(explicit.connectionId);
  if (!conn) {
    const id = 'connectionId' in explicit ? explicit.connectionId : '?';
    throw new MissingCredentialError(spec.connection, purpose, `${purpose}: account connection ${id} does not exist`);
  }
  if (conn.type !== spec.connection) {
    throw new MissingCredentialError(spec.connection, purpose,
      `${purpose}: account connection ${conn.id} is an ${conn.type}, but ${spec.title} needs an ${spec.connection}`);
  }
  return { ...(conn.config ?? {}), ...(conn.credentials ?? {}) };
}

/**
 * The key, base URL and extras for `vendor`. `purpose` names what needs it in error messages
 * ("transcriber_deepgram", "voice_eleven_labs", "llm_fallback (anthropic)").
 */
export async function resolveAccess(
  vendor: VendorId,
  o: { purpose: string; explicit?: Explicit; lookup: ConnectionLookup; env: Env },
): Promise<VendorAccess> {
  const spec = VENDORS[vendor];
  let fields = await explicitFields(vendor, o.explicit, o.lookup, o.purpose);
  let source: 'explicit' | 'connection' | 'env' = 'explicit';
  if (!fields || !str(fields[spec.keyField])) {
    // An explicit connection without a key (e.g. a voice with api_key null) still counts as chosen
    // only if it carries one; otherwise the user's connection of the type applies.
    const own = await o.lookup.latestOfType(spec.connection);
    const ownFields = own ? { ...(own.config ?? {}), ...(own.credentials ?? {}) } : undefined;
    if (ownFields && (str(ownFields[spec.keyField]) || (spec.keyOptional && spec.baseUrlField && str(ownFields[spec.baseUrlField])))) {
      fields = { ...ownFields, ...stripEmpty(fields) };
      source = 'connection';
    } else if (!fields || !(spec.keyOptional && spec.baseUrlField && str(fields[spec.baseUrlField]))) {
      fields = undefined;
      source = 'env';
    }
  }

  const apiKey = source === 'env' ? str(o.env[spec.keyEnv]) : str(fields?.[spec.keyField]);
  const baseFromConnection = spec.baseUrlField && source !== 'env' ? str(fields?.[spec.baseUrlField]) : undefined;
  const extra: Record<string, string> = {};
  for (const [name, x] of Object.entries(spec.extras ?? {})) {
    const v = (source === 'env' ? undefined : str(fields?.[x.field])) ?? (x.env ? str(o.env[x.env]) : undefined) ?? x.fallback;
    if (v !== undefined) extra[name] = v;
    else if (x.required && (apiKey || source !== 'env')) {
      throw new MissingCredentialError(spec.connection, o.purpose, `${o.purpose}: the ${spec.connection} has no ${x.field}${x.env ? ` (and ${x.env} is not set)` : ''}`);
    }
  }
  if (!apiKey && !spec.keyOptional) {
    throw new MissingCredentialError(spec.connection, o.purpose,
      `${o.purpose} needs an ${spec.connection} account connection (none found, and ${spec.keyEnv} is not set)`);
  }
  let baseUrl = baseFromConnection ?? str(o.env[spec.baseUrlEnv]) ?? spec.defaultBaseUrl;
  if (baseUrl.includes('{region}')) baseUrl = baseUrl.replace('{region}', extra.region ?? '');
  if (!baseUrl) {
    throw new MissingCredentialError(spec.connection, o.purpose,
      `${o.purpose}: no base URL for ${spec.title}: set ${spec.baseUrlField ?? 'it'} on the ${spec.connection} or ${spec.baseUrlEnv}`);
  }
  return { apiKey: apiKey ?? '', baseUrl: trimSlash(baseUrl), extra };
}

function stripEmpty(f: Record<string, unknown> | undefined): Record<string, unknown> {
  return Object.fromEntries(Object.entries(f ?? {}).filter(([, v]) => str(v) !== undefined));
}
