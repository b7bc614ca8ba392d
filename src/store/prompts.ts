import { and, eq } from 'drizzle-orm';
import { PromptDefaults, PromptTemplateParams } from '../domain/prompts.js';
import { ConflictError, NotFoundError } from '../domain/errors.js';
import { parseOrThrow } from '../domain/validation.js';
import { col, jsonField, type FieldMap, type ListParams, type Page } from './listQuery.js';
import { isForeignKeyViolation, listPage, type Exec, type ResourceRepo, type ResourceRow } from './resources.js';
import * as s from './schema.js';

type Json = Record<string, unknown>;
type PromptRow = typeof s.prompts.$inferSelect;

/** Prompts own an optional reference to a prompt template, given by id or inline. */
export class PromptRepo {
  readonly fields: FieldMap;

  constructor(private readonly templates: ResourceRepo) {
    const t = s.prompts;
    this.fields = {
      id: col(t.id, 'uuid'), created_at: col(t.createdAt, 'time'), updated_at: col(t.updatedAt, 'time'),
      label: col(t.label, 'text'), description: col(t.description, 'text'), type: col(t.type, 'text'),
      prompt_template: col(t.promptTemplateId, 'uuid'),
      content: jsonField(t.data, 'content'), context_endpoint: jsonField(t.data, 'context_endpoint'), tags: jsonField(t.data, 'tags'),
    };
  }

  private async resolveTemplate(db: Exec, userId: string, v: unknown, loc: (string | number)[]): Promise<string | null> {
    if (v === null || v === undefined) return null;
    if (typeof v === 'string') return (await this.templates.assertOwned(db, userId, [v]))[0].id;
    const o = v as Json;
    if (typeof o.id === 'string') return (await this.templates.assertOwned(db, userId, [o.id]))[0].id;
    const params = parseOrThrow(PromptTemplateParams, o, loc) as Json;
    return (await this.templates.insert(db, userId, params)).id;
  }

  async insert(db: Exec, userId: string, params: Json, loc: (string | number)[] = ['body']): Promise<PromptRow> {
    const full: Json = { ...PromptDefaults, ...params };
    const { prompt_template, type, label, description, ...data } = full;
    const templateId = await this.resolveTemplate(db, userId, prompt_template, [...loc, 'prompt_template']);
    const [row] = await db.insert(s.prompts).values({
      userId, type: type as string, label: label as string | null, description: description as string | null,
      promptTemplateId: templateId, data,
    }).returning();
    return row;
  }

  async find(db: Exec, userId: string, id: string, lock = false): Promise<PromptRow | undefined> {
    const q = db.select().from(s.prompts).where(and(eq(s.prompts.id, id), eq(s.prompts.userId, userId))).limit(1);
    const [row] = lock ? await q.for('update') : await q;
    return row;
  }

  async get(db: Exec, userId: string, id: string, lock = false): Promise<PromptRow> {
    const row = await this.find(db, userId, id, lock);
    if (!row) throw new NotFoundError('prompt', id);
    return row;
  }

  async update(db: Exec, userId: string, id: string, patch: Json, loc: (string | number)[] = ['body']): Promise<PromptRow> {
    const row = await this.get(db, userId, id, true);
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined));
    const { prompt_template, type, label, description, ...data } = defined;
    const set: Partial<typeof s.prompts.$inferInsert> = { data: { ...row.data, ...data }, updatedAt: new Date() };
    if (type !== undefined) set.type = type as string;
    if (label !== undefined) set.label = label as string | null;
    if (description !== undefined) set.description = description as string | null;
    if (prompt_template !== undefined) {
      set.promptTemplateId = await this.resolveTemplate(db, userId, prompt_template, [...loc, 'prompt_template']);
    }
    const [updated] = await db.update(s.prompts).set(set).where(and(eq(s.prompts.id, id), eq(s.prompts.userId, userId))).returning();
    return updated;
  }

  async delete(db: Exec, userId: string, id: string): Promise<PromptRow> {
    const row = await this.get(db, userId, id);
    try {
      await db.delete(s.prompts).where(and(eq(s.prompts.id, id), eq(s.prompts.userId, userId)));
    } catch (err) {
      if (isForeignKeyViolation(err)) throw new ConflictError(`prompt ${id} is still used by an agent; give the agent another prompt first`);
      throw err;
    }
    return row;
  }

  /** The expanded form: the template as an object. */
  async expand(db: Exec, row: PromptRow): Promise<Json> {
    const tpl = row.promptTemplateId ? (await this.templates.find(db, row.userId, row.promptTemplateId)) ?? null : null;
    return this.expandWith(row, tpl);
  }

  expandWith(row: PromptRow, template: ResourceRow | null): Json {
    return this.shape(row, template ? this.templates.serialize(template) : null);
  }

  /** The normalized form: the template as its id. */
  normalize(row: PromptRow): Json {
    return this.shape(row, row.promptTemplateId);
  }

  private shape(row: PromptRow, template: unknown): Json {
    return {
      id: row.id, user_id: row.userId, ...PromptDefaults, ...row.data, prompt_template: template,
      type: row.type ?? 'prompt', label: row.label, description: row.description,
    };
  }

  async list(db: Exec, userId: string, params: ListParams): Promise<Page<Json>> {
    const page = await listPage(db, s.prompts, s.prompts.userId, userId, params, this.fields, this.fields.created_at, s.prompts.id);
    return { ...page, items: (page.items as PromptRow[]).map((r) => this.normalize(r)) };
  }
}
