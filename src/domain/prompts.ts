import { z, HttpUrl, labelled, optionalShape, Uuid } from './common.js';

export const CollectField = z.object({
  field_type: z.literal('field_type_email'),
  label: z.string(),
  name: z.string(),
  description: z.string().nullable().optional(),
}).openapi('CollectField');

const templateFields = {
  label: z.string().max(500).nullable().optional(),
  description: z.string().max(5000).nullable().optional(),
  required_context_keys: z.array(z.string().min(1)).max(200),
};

export const PromptTemplateParams = z.object(templateFields).openapi('PromptTemplateParams');
export const PromptTemplateUpdateParams = z.object(optionalShape(templateFields)).openapi('PromptTemplateUpdateParams');
export const PromptTemplateDefaults = { label: '', description: null };

/** Inline template in a prompt: a full template (with id) is a reference; without id it is created. */
const PromptTemplateInline = z.object({ id: Uuid.optional(), ...templateFields, required_context_keys: templateFields.required_context_keys.optional() });

const promptFields = {
  content: z.string().max(200_000),
  // Vocode takes CollectField objects; Fluents documents plain strings (deprecated). Both are kept as given.
  collect_fields: z.array(z.union([CollectField, z.string()])).max(100).nullable(),
  context_endpoint: HttpUrl.nullable(),
  prompt_template: z.union([Uuid, PromptTemplateInline]).nullable(),
  type: z.enum(['prompt', 'block']),
  tags: z.array(z.string().max(100)).max(100),
  ...labelled,
};

export const PromptParams = z.object(optionalShape(promptFields)).openapi('PromptParams');
export const PromptUpdateParams = z.object(optionalShape(promptFields)).openapi('PromptUpdateParams');

export const PromptDefaults = {
  content: '', collect_fields: null, context_endpoint: null, type: 'prompt', tags: [], label: null, description: null,
};
