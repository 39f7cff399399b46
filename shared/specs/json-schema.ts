/**
 * JSON Schema (draft 2020-12, the dialect of OpenAPI 3.1 and of AsyncAPI 3 with a schema format)
 * generated from the zod schemas the handlers validate with, so a document can never describe a
 * field the code does not check, or miss one it does.
 */
import { z } from 'zod';

/** A JSON Schema object as `z.toJSONSchema` emits it. */
export type JsonSchema = Record<string, unknown>;

/**
 * Which side of a schema to describe: `input` for what a client writes (optional fields with
 * defaults stay optional), `output` for what the system writes.
 */
export type SchemaSide = 'input' | 'output';

/** Named schemas to publish, with the side each is described from. */
export type NamedSchemas = Readonly<
  Record<string, { readonly schema: z.ZodType; readonly side: SchemaSide }>
>;

/** Where components live; both documents keep their schemas under `components.schemas`. */
export const COMPONENTS = '#/components/schemas/';

/** A reference to a named component schema. */
export const ref = (name: string): JsonSchema => ({ $ref: `${COMPONENTS}${name}` });

/** Rules zod's refinements check that JSON Schema cannot show by itself, added per schema. */
export type SchemaAdditions = ReadonlyMap<z.ZodType, JsonSchema>;

/**
 * Generates one component per named schema. A schema nested inside another is referenced by name
 * when it is itself named (so `ItemId` is defined once); an unnamed recursive schema (a JSON value)
 * becomes `JsonValue`. Throws when a name is described differently from two sides, or when zod
 * would need a helper definition this module does not know how to name.
 */
export function componentSchemas(
  named: NamedSchemas,
  additions: SchemaAdditions = new Map(),
): Record<string, JsonSchema> {
  const out: Record<string, JsonSchema> = {};
  for (const side of ['input', 'output'] as const) {
    const registry = z.registry<{ id: string }>();
    for (const [id, entry] of Object.entries(named))
      if (entry.side === side) registry.add(entry.schema, { id });
    // Named schemas of the other side still become references, never inline copies.
    for (const [id, entry] of Object.entries(named))
      if (entry.side !== side && !registry.has(entry.schema)) registry.add(entry.schema, { id });
    const generated = z.toJSONSchema(registry, {
      target: 'draft-2020-12',
      io: side,
      unrepresentable: 'throw',
      uri: (id) => `${COMPONENTS}${id}`,
      override: ({ zodSchema, jsonSchema }) => {
        const extra = additions.get(zodSchema as unknown as z.ZodType);
        if (extra) Object.assign(jsonSchema, extra);
      },
    }).schemas;
    const shared = sharedNames(generated.__shared);
    for (const [id, schema] of Object.entries(generated)) {
      if (id === '__shared' || named[id]?.side !== side) continue;
      merge(out, id, open(renameShared(strip(schema), shared)));
    }
    if (shared.size > 0) merge(out, 'JsonValue', JSON_VALUE);
  }
  return sortKeys(out);
}

/** `z.json()`'s definition as zod emits it (its self-reference is `#`). */
const JSON_VALUE_RAW = strip(z.toJSONSchema(z.json(), { target: 'draft-2020-12' }) as JsonSchema);
const JSON_VALUE_SHAPE = JSON.stringify(selfRefs(JSON_VALUE_RAW, '#'));

/** Any JSON value (`metadata` values), referring to itself by name. */
const JSON_VALUE = transform(JSON_VALUE_RAW, (node) => (node.$ref === '#' ? ref('JsonValue') : undefined));

/**
 * Maps each helper definition zod shared between components to a public name. The only one the
 * contracts need is a JSON value; any other fails loudly so that it gets a name of its own.
 */
function sharedNames(shared: JsonSchema | undefined): Map<string, string> {
  const names = new Map<string, string>();
  const defs = (shared?.$defs ?? {}) as Record<string, JsonSchema>;
  for (const [def, schema] of Object.entries(defs)) {
    const shape = JSON.stringify(selfRefs(schema, `${COMPONENTS}__shared#/$defs/${def}`));
    if (shape !== JSON_VALUE_SHAPE)
      throw new Error(
        `a schema used by several contracts has no name (${shape.slice(0, 120)}…): name it in shared/specs`,
      );
    names.set(def, 'JsonValue');
  }
  return names;
}

/** Replaces references to `self` by `#self`, so two recursive definitions compare equal. */
function selfRefs(value: unknown, self: string): JsonSchema {
  return transform(value, (node) => (node.$ref === self ? { $ref: '#self' } : undefined));
}

/** Points references to zod's helper definitions at the named components that replace them. */
function renameShared(schema: JsonSchema, names: ReadonlyMap<string, string>): JsonSchema {
  return transform(schema, (node) => {
    const match = typeof node.$ref === 'string' ? /__shared#\/\$defs\/(\w+)$/.exec(node.$ref) : null;
    const name = match ? names.get(match[1] ?? '') : undefined;
    return name ? ref(name) : undefined;
  });
}

/** Drops the per-schema `$schema` / `$id`: the document's dialect and its component name say it. */
function strip(schema: JsonSchema): JsonSchema {
  const { $schema: _schema, $id: _id, ...rest } = schema;
  return rest;
}

/**
 * Drops `additionalProperties: false`, which zod emits for the output side: readers must ignore
 * fields they do not know, so that adding an optional field never breaks a client.
 */
function open(schema: JsonSchema): JsonSchema {
  return transform(schema, (node) => {
    if (node.additionalProperties !== false) return undefined;
    const { additionalProperties: _closed, ...rest } = node;
    return open(rest);
  });
}

function merge(out: Record<string, JsonSchema>, name: string, schema: JsonSchema): void {
  const existing = out[name];
  if (existing && JSON.stringify(existing) !== JSON.stringify(schema))
    throw new Error(`schema ${name} is described differently as input and as output`);
  out[name] = schema;
}

/** Rebuilds a JSON value bottom-up, replacing every object node for which `replace` returns one. */
function transform(value: unknown, replace: (node: JsonSchema) => JsonSchema | undefined): JsonSchema {
  const visit = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(visit);
    if (v === null || typeof v !== 'object') return v;
    const node = v as JsonSchema;
    return replace(node) ?? Object.fromEntries(Object.entries(node).map(([k, x]) => [k, visit(x)]));
  };
  return visit(value) as JsonSchema;
}

function sortKeys(record: Record<string, JsonSchema>): Record<string, JsonSchema> {
  return Object.fromEntries(Object.entries(record).sort(([a], [b]) => a.localeCompare(b)));
}
