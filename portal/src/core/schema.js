// The event schemas of `schemas/` (JSON Schema 2020-12), the very files the Rust code
// embeds (crates/fundtrail-envelope/src/schema.rs), validated with Ajv, a maintained
// validator: an event is checked against event.v1.json, then its body against
// body/<type>.v<v>.json. `schemas.json` is written by build.mjs from `schemas/` and
// committed; CI fails if it differs from what the schemas give. As in Rust, `format`
// is an annotation, not a check (the types and patterns are).

import Ajv2020 from 'ajv/dist/2020.js';
import files from './schemas.json' with { type: 'json' };

/** The base URI of every schema file (Rust's `SCHEMA_BASE`): its path under it is its id. */
export const SCHEMA_BASE = 'https://fundtrail.example/schemas/';

let compiled = null;

function schemas() {
  if (compiled) return compiled;
  const ajv = new Ajv2020({ strict: false, validateFormats: false, allErrors: false, verbose: true });
  for (const [path, schema] of Object.entries(files)) ajv.addSchema(schema, SCHEMA_BASE + path);
  compiled = ajv;
  return ajv;
}

export class SchemaError extends Error {
  constructor(message) {
    super(message);
    this.name = 'SchemaError';
  }
}

function check(path, value) {
  const validate = schemas().getSchema(SCHEMA_BASE + path);
  if (!validate) throw new SchemaError(`no schema ${path}`);
  if (!validate(value)) throw new SchemaError(`${path}: ${validate.errors[0].instancePath}: ${words(validate.errors[0])}`);
}

/** Ajv's error in the words of the Rust validator (the `jsonschema` crate), where they are known. */
function words(e) {
  switch (e.keyword) {
    case 'required':
      return `${JSON.stringify(e.params.missingProperty)} is a required property`;
    case 'additionalProperties':
      return `Additional properties are not allowed ('${e.params.additionalProperty}' was unexpected)`;
    case 'type':
      return `${JSON.stringify(e.data)} is not of type ${JSON.stringify(e.params.type)}`;
    case 'pattern':
      return `${JSON.stringify(e.data)} does not match ${JSON.stringify(e.params.pattern)}`;
    default:
      return e.message;
  }
}

/** Throws a SchemaError ("schema: path: message") unless `event` matches its schemas. */
export function validateEvent(event) {
  check('event.v1.json', event);
  const path = `body/${event.type}.v${event.v}.json`;
  if (!Object.hasOwn(files, path)) throw new SchemaError(`no schema for event type ${JSON.stringify(event.type)} version ${event.v}`);
  check(path, event.body);
}
