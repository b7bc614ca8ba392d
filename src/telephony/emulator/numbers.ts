/**
 * The emulator's phone numbers: a deterministic inventory of numbers for sale and the account's own
 * (incoming) numbers.
 *
 * Followed:
 *  - "AvailablePhoneNumber Local / TollFree resources"
 *    (https://www.twilio.com/docs/phone-numbers/api/availablephonenumberlocal-resource,
 *    https://www.twilio.com/docs/phone-numbers/api/availablephonenumber-tollfree-resource): item fields
 *    friendly_name, phone_number, lata, locality, rate_center, latitude, longitude, region, postal_code,
 *    iso_country, address_requirements, beta, capabilities {voice, SMS, MMS}; filters AreaCode, Contains
 *    ("Valid characters are *, 0-9, a-z, A-Z. The * character matches any single digit"; at least two
 *    characters), InRegion, InLocality, PageSize.
 *  - "IncomingPhoneNumber resource" (https://www.twilio.com/docs/phone-numbers/api/incomingphonenumber-resource):
 *    the fields a number carries (voice_url, voice_method, status_callback, …).
 *
 * Inventory: for every known area code the numbers +1 {area code} 555 0100, 0101, … (the 555-01xx range
 * is reserved for fiction, so nothing real is ever dialled); toll-free likewise under 800, 833, … 888.
 * A number the account bought, or one marked taken with `reserve()`, is no longer offered.
 */
import { formatNumber, newSid, rfc2822 } from './util.js';

export interface AreaInfo {
  locality: string;
  region: string;
  postalCode: string;
  latitude: number;
  longitude: number;
  lata: string;
  rateCenter: string;
}

export const DEFAULT_AREA_CODES: Record<string, AreaInfo> = {
  '415': { locality: 'San Francisco', region: 'CA', postalCode: '94105', latitude: 37.7749, longitude: -122.4194, lata: '722', rateCenter: 'SNFC CNTRL' },
  '213': { locality: 'Los Angeles', region: 'CA', postalCode: '90012', latitude: 34.0522, longitude: -118.2437, lata: '730', rateCenter: 'LSAN DA 01' },
  '212': { locality: 'New York', region: 'NY', postalCode: '10001', latitude: 40.7128, longitude: -74.006, lata: '132', rateCenter: 'NWYRCYZN01' },
  '312': { locality: 'Chicago', region: 'IL', postalCode: '60601', latitude: 41.8781, longitude: -87.6298, lata: '358', rateCenter: 'CHICAGO' },
  '512': { locality: 'Austin', region: 'TX', postalCode: '78701', latitude: 30.2672, longitude: -97.7431, lata: '558', rateCenter: 'AUSTIN' },
  '206': { locality: 'Seattle', region: 'WA', postalCode: '98101', latitude: 47.6062, longitude: -122.3321, lata: '674', rateCenter: 'SEATTLE' },
  '617': { locality: 'Boston', region: 'MA', postalCode: '02108', latitude: 42.3601, longitude: -71.0589, lata: '128', rateCenter: 'BOSTON' },
  '303': { locality: 'Denver', region: 'CO', postalCode: '80202', latitude: 39.7392, longitude: -104.9903, lata: '656', rateCenter: 'DENVER' },
  '305': { locality: 'Miami', region: 'FL', postalCode: '33130', latitude: 25.7617, longitude: -80.1918, lata: '460', rateCenter: 'MIAMI' },
  '404': { locality: 'Atlanta', region: 'GA', postalCode: '30303', latitude: 33.749, longitude: -84.388, lata: '438', rateCenter: 'ATLANTA' },
};

export const DEFAULT_TOLL_FREE_PREFIXES = ['800', '833', '844', '855', '866', '877', '888'];

export type NumberKind = 'local' | 'toll-free';

export interface AvailableNumberJson {
  friendly_name: string;
  phone_number: string;
  lata: string | null;
  locality: string | null;
  rate_center: string | null;
  latitude: string | null;
  longitude: string | null;
  region: string | null;
  postal_code: string | null;
  iso_country: string;
  address_requirements: string;
  beta: boolean;
  capabilities: { voice: boolean; SMS: boolean; MMS: boolean };
}

export interface IncomingNumber {
  sid: string;
  accountSid: string;
  phoneNumber: string;
  friendlyName: string;
  kind: NumberKind;
  voiceUrl: string | null;
  voiceMethod: 'GET' | 'POST';
  voiceFallbackUrl: string | null;
  voiceFallbackMethod: 'GET' | 'POST';
  statusCallback: string | null;
  statusCallbackMethod: 'GET' | 'POST';
  voiceApplicationSid: string | null;
  dateCreated: number;
  dateUpdated: number;
}

export interface NumberSearch {
  kind: NumberKind;
  areaCode?: string;
  contains?: string;
  inRegion?: string;
  inLocality?: string;
  pageSize: number;
}

const KEYPAD: Record<string, string> = {
  A: '2', B: '2', C: '2', D: '3', E: '3', F: '3', G: '4', H: '4', I: '4', J: '5', K: '5', L: '5',
  M: '6', N: '6', O: '6', P: '7', Q: '7', R: '7', S: '7', T: '8', U: '8', V: '8', W: '9', X: '9', Y: '9', Z: '9',
};

/** Twilio's Contains pattern as a RegExp over the number's digits, or an error message. */
export function containsPattern(pattern: string): RegExp | string {
  const p = pattern.replace(/^\+/, '');
  if (p.length < 2) return 'Contains must have at least two characters';
  let re = '';
  for (const ch of p.toUpperCase()) {
    if (/[0-9]/.test(ch)) re += ch;
    else if (ch === '*') re += '\\d';
    else if (KEYPAD[ch]) re += KEYPAD[ch];
    else return `Contains may only hold *, 0-9, a-z and A-Z, not "${ch}"`;
  }
  return new RegExp(re);
}

export class NumberInventory {
  readonly owned = new Map<string, IncomingNumber>();
  private readonly taken = new Set<string>();

  constructor(
    readonly areaCodes: Record<string, AreaInfo> = DEFAULT_AREA_CODES,
    readonly perAreaCode = 100,
    readonly tollFreePrefixes: string[] = DEFAULT_TOLL_FREE_PREFIXES,
  ) {
    if (!Number.isInteger(perAreaCode) || perAreaCode < 1 || perAreaCode > 9900) throw new RangeError('perAreaCode must be 1–9900');
  }

  private *all(kind: NumberKind, areaCode?: string): Generator<string> {
    const codes = kind === 'local' ? Object.keys(this.areaCodes) : this.tollFreePrefixes;
    for (const code of codes) {
      if (areaCode && code !== areaCode) continue;
      for (let k = 0; k < this.perAreaCode; k++) yield `+1${code}555${String(100 + k).padStart(4, '0')}`;
    }
  }

  kindOf(number: string): NumberKind | undefined {
    const m = /^\+1(\d{3})555(\d{4})$/.exec(number);
    if (!m) return undefined;
    const k = Number(m[2]) - 100;
    if (k < 0 || k >= this.perAreaCode) return undefined;
    if (this.areaCodes[m[1]]) return 'local';
    if (this.tollFreePrefixes.includes(m[1])) return 'toll-free';
    return undefined;
  }

  /** On sale: in the inventory, not owned by the account, not taken by "someone else". */
  isAvailable(number: string): boolean {
    return this.kindOf(number) !== undefined && !this.taken.has(number) && !this.findOwned(number);
  }

  /** Marks an inventory number as bought by someone else (it stops being offered), or frees it again. */
  reserve(number: string, taken = true): void {
    if (taken) this.taken.add(number);
    else this.taken.delete(number);
  }

  search(q: NumberSearch): AvailableNumberJson[] | { error: string } {
    let re: RegExp | undefined;
    if (q.contains) {
      const p = containsPattern(q.contains);
      if (typeof p === 'string') return { error: p };
      re = p;
    }
    const out: AvailableNumberJson[] = [];
    for (const number of this.all(q.kind, q.areaCode)) {
      if (out.length >= q.pageSize) break;
      if (!this.isAvailable(number)) continue;
      if (re && !re.test(number.slice(1))) continue;
      const item = this.describe(number);
      if (q.inRegion && item.region?.toUpperCase() !== q.inRegion.toUpperCase()) continue;
      if (q.inLocality && item.locality?.toUpperCase() !== q.inLocality.toUpperCase()) continue;
      out.push(item);
    }
    return out;
  }

  firstAvailable(kind: NumberKind, areaCode: string): string | undefined {
    for (const n of this.all(kind, areaCode)) if (this.isAvailable(n)) return n;
    return undefined;
  }

  describe(number: string): AvailableNumberJson {
    const area = this.kindOf(number) === 'local' ? this.areaCodes[number.slice(2, 5)] : undefined;
    return {
      friendly_name: formatNumber(number), phone_number: number,
      lata: area?.lata ?? null, locality: area?.locality ?? null, rate_center: area?.rateCenter ?? null,
      latitude: area ? area.latitude.toFixed(6) : null, longitude: area ? area.longitude.toFixed(6) : null,
      region: area?.region ?? null, postal_code: area?.postalCode ?? null, iso_country: 'US',
      address_requirements: 'none', beta: false, capabilities: { voice: true, SMS: true, MMS: area !== undefined },
    };
  }

  findOwned(number: string): IncomingNumber | undefined {
    for (const n of this.owned.values()) if (n.phoneNumber === number) return n;
    return undefined;
  }

  /** Adds `number` to the account (bought through the API, or given to the emulator up front). */
  add(accountSid: string, number: string, fields: Partial<Omit<IncomingNumber, 'sid' | 'accountSid' | 'phoneNumber'>> = {}): IncomingNumber {
    const now = Date.now();
    const n: IncomingNumber = {
      sid: newSid('PN'), accountSid, phoneNumber: number, friendlyName: formatNumber(number),
      kind: this.kindOf(number) ?? (/^\+18(00|33|44|55|66|77|88)/.test(number) ? 'toll-free' : 'local'),
      voiceUrl: null, voiceMethod: 'POST', voiceFallbackUrl: null, voiceFallbackMethod: 'POST',
      statusCallback: null, statusCallbackMethod: 'POST', voiceApplicationSid: null,
      dateCreated: now, dateUpdated: now,
      ...fields,
    };
    this.owned.set(n.sid, n);
    return n;
  }

  release(sid: string): boolean {
    return this.owned.delete(sid);
  }
}

/** The IncomingPhoneNumber resource as Twilio's JSON shows it. */
export function incomingNumberJson(n: IncomingNumber): Record<string, unknown> {
  const uri = `/2010-04-01/Accounts/${n.accountSid}/IncomingPhoneNumbers/${n.sid}.json`;
  return {
    account_sid: n.accountSid, address_requirements: 'none', address_sid: null, api_version: '2010-04-01', beta: false,
    bundle_sid: null, capabilities: { voice: true, sms: true, mms: n.kind === 'local', fax: false },
    date_created: rfc2822(n.dateCreated), date_updated: rfc2822(n.dateUpdated), emergency_address_sid: null,
    emergency_address_status: 'unregistered', emergency_status: 'Inactive', friendly_name: n.friendlyName,
    identity_sid: null, origin: 'twilio', phone_number: n.phoneNumber, sid: n.sid,
    sms_application_sid: '', sms_fallback_method: 'POST', sms_fallback_url: '', sms_method: 'POST', sms_url: '',
    status: 'in-use', status_callback: n.statusCallback ?? '', status_callback_method: n.statusCallbackMethod,
    subresource_uris: { assigned_add_ons: uri.replace(/\.json$/, '/AssignedAddOns.json') },
    trunk_sid: null, uri, voice_application_sid: n.voiceApplicationSid ?? '', voice_caller_id_lookup: false,
    voice_fallback_method: n.voiceFallbackMethod, voice_fallback_url: n.voiceFallbackUrl ?? '',
    voice_method: n.voiceMethod, voice_receive_mode: 'voice', voice_url: n.voiceUrl ?? '',
  };
}
