import { z } from '@hono/zod-openapi';

export { z };

export const Uuid = z.uuid({ message: 'must be a valid UUID' });

/** The same check outside a schema (CLI arguments, filter values). */
export const isUuid = (v: unknown): v is string => typeof v === 'string' && /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i.test(v);

/** E.164 syntax: 8–15 digits with a leading +; spaces, dashes, dots and parentheses are ignored. */
export function normalizePhone(input: string): string | null {
  const trimmed = input.trim();
  if (!/^\+?[\d\s().-]+$/.test(trimmed)) return null;
  const digits = trimmed.replace(/\D/g, '');
  if (digits.length < 8 || digits.length > 15 || digits.startsWith('0')) return null;
  return `+${digits}`;
}

export const PhoneNumberString = z
  .string()
  .transform((v, ctx) => {
    const n = normalizePhone(v);
    if (!n) {
      ctx.addIssue({ code: 'custom', message: 'must be a phone number in E.164 form, e.g. +14155550100 (the + is optional)' });
      return z.NEVER;
    }
    return n;
  })
  .openapi({ type: 'string', example: '+14155550100' });

/** Fluents adds a label and a description to every resource. */
export const labelled = {
  label: z.string().max(500).nullable().optional(),
  description: z.string().max(5000).nullable().optional(),
};

export const StringMap = z.record(z.string(), z.string());

export type Json = Record<string, unknown>;

/** Makes every field of a shape optional, for partial updates (absent = unchanged). */
export function optionalShape<S extends z.ZodRawShape>(shape: S): { [K in keyof S]: z.ZodOptional<S[K]> } {
  return Object.fromEntries(Object.entries(shape).map(([k, v]) => [k, (v as z.ZodType).optional()])) as never;
}

/** An http(s) URL: the server calls these, so no other scheme is accepted. */
export const HttpUrl = z.url({ protocol: /^https?$/, message: 'must be an http(s) URL' }).max(2048);

/**
 * An inline nested object that may carry its own id (as read back from a GET): with an id it names that
 * object, and its other fields edit it.
 */
export function withOptionalId(schema: z.ZodType): z.ZodType {
  const id = { id: Uuid.optional() };
  const u = schema as unknown as { options?: z.ZodObject[] };
  if (u.options) return z.discriminatedUnion('type', u.options.map((o) => o.extend(id)) as unknown as [z.ZodObject, ...z.ZodObject[]]);
  return (schema as z.ZodObject).extend(id);
}
