// The service's input constraints (names, tokens, tags, page sizes), answered with the
// ValidationException messages the real service words that way.
import { err } from './protocol.js';

const NAME_RE = /^[0-9a-zA-Z\-_.]+$/;
const CLIENT_TOKEN_RE = /^[a-zA-Z0-9\-_]+$/;
export const ROLE_ARN_RE = /^arn:aws(-[a-z]+)?:iam::\d{12}:role\/[\w+=,.@/-]+$/;
export const TAG_ARN_RE = /^arn:(aws(?:-[a-z]+)?):scheduler:([a-z0-9-]+):(\d{12}):schedule-group\/([0-9a-zA-Z\-_.]+)$/;
export const MAX_TAGS = 200;

export function checkName(value: unknown, field: string): string {
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || !NAME_RE.test(value)) {
    throw err(
      'ValidationException',
      `1 validation error detected: Value '${String(value)}' at '${field}' failed to satisfy constraint: Member must satisfy regular expression pattern: [0-9a-zA-Z-_.]+ and have length between 1 and 64`,
    );
  }
  return value;
}

export function optionalName(value: string | null, field: string): string | undefined {
  return value === null ? undefined : checkName(value, field);
}

export function checkMaxResults(raw: string | null): number {
  if (raw === null) return 100; // the service's default page size is not documented; 100 is the model's maximum
  const n = Number(raw);
  if (!Number.isInteger(n) || n < 1 || n > 100) {
    throw err('ValidationException', `Value '${raw}' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100`);
  }
  return n;
}

export function checkClientToken(value: unknown): string | undefined {
  if (value === undefined || value === null) return undefined;
  if (typeof value !== 'string' || value.length < 1 || value.length > 64 || !CLIENT_TOKEN_RE.test(value)) {
    throw err('ValidationException', `Value '${String(value)}' at 'clientToken' failed to satisfy constraint`);
  }
  return value;
}

export function checkTagKey(key: unknown, field: string): string {
  if (typeof key !== 'string' || key.length < 1 || key.length > 128) {
    throw err('ValidationException', `Value at '${field}' failed to satisfy constraint: Member must have length between 1 and 128`);
  }
  // AWS treats the reserved prefix case-insensitively.
  if (key.toLowerCase().startsWith('aws:')) {
    throw err('ValidationException', `Tag keys starting with 'aws:' are reserved for AWS use: '${key}'`);
  }
  return key;
}

export function checkTagList(raw: unknown, field: string): Array<[string, string]> {
  if (raw === undefined || raw === null) return [];
  if (!Array.isArray(raw)) throw err('ValidationException', `'${field}' must be a list`);
  if (raw.length > MAX_TAGS) {
    throw err('ValidationException', `Value at '${field}' failed to satisfy constraint: Member must have length less than or equal to ${MAX_TAGS}`);
  }
  const seen = new Set<string>();
  return raw.map((t: unknown, i): [string, string] => {
    const tag = (t ?? {}) as { Key?: unknown; Value?: unknown };
    const key = checkTagKey(tag.Key, `${field}.${i + 1}.member.key`);
    const value = tag.Value;
    if (typeof value !== 'string' || value.length < 1 || value.length > 256) {
      throw err('ValidationException', `Value at '${field}.${i + 1}.member.value' failed to satisfy constraint: Member must have length between 1 and 256`);
    }
    // Unverified against AWS: duplicates in one call are rejected so callers cannot depend on last-wins.
    if (seen.has(key)) throw err('ValidationException', `Duplicate tag key '${key}' in '${field}'`);
    seen.add(key);
    return [key, value];
  });
}
