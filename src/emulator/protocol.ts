// The wire side of the emulator: how requests are routed to operation names and how answers and
// errors are written, as the real service does it. REST-JSON for the Scheduler API (errors as a
// JSON body with `Message` and the type in the x-amzn-errortype header), awsJson1_1 for the
// Tagging API's GetResources (the type also in the body's `__type`). Wire facts were checked
// against the installed SDK's schemas and the botocore service model for scheduler 2021-06-30.
import type http from 'node:http';
import { randomUUID } from 'node:crypto';

export type EmulatorErrorName =
  | 'ConflictException'
  | 'ThrottlingException'
  | 'InternalServerException'
  | 'ServiceQuotaExceededException'
  | 'AccessDeniedException'
  | 'ValidationException';

/** The awsJson1_1 target of the Resource Groups Tagging API's GetResources (the emulator serves it on POST /). */
export const TAGGING_TARGET_PREFIX = 'ResourceGroupsTaggingAPI_20170126.';

export class ApiError extends Error {
  constructor(
    readonly type: string,
    readonly status: number,
    message: string,
  ) {
    super(message);
  }
}

export const STATUS: Record<string, number> = {
  ValidationException: 400,
  ServiceQuotaExceededException: 402,
  AccessDeniedException: 403,
  ResourceNotFoundException: 404,
  ConflictException: 409,
  ThrottlingException: 429,
  InternalServerException: 500,
};

export const err = (type: EmulatorErrorName | 'ResourceNotFoundException', message: string): ApiError =>
  new ApiError(type, STATUS[type] ?? 400, message);

export interface Request {
  method: string;
  segments: string[]; // decoded path segments
  query: URLSearchParams;
  body: Record<string, unknown>;
}

export interface Reply {
  status: number;
  body: unknown;
}

export const ok = (body: unknown = {}): Reply => ({ status: 200, body });

export interface Route {
  op: string;
  label?: string;
  json11?: boolean;
}

/** Map method + path shape to an operation name and its single path label (if any). */
export function route(method: string, segments: string[], target?: string): Route | undefined {
  if (target !== undefined) {
    // awsJson1_1: POST / with X-Amz-Target; only GetResources of the Tagging API is served.
    if (method !== 'POST' || segments.length !== 0 || target !== `${TAGGING_TARGET_PREFIX}GetResources`) return undefined;
    return { op: 'GetResources', json11: true };
  }
  if (segments.length > 2) return undefined;
  const [root, label] = segments;
  const op = root === undefined ? undefined : (label === undefined ? COLLECTIONS : RESOURCES).get(root)?.get(method);
  return op ? { op, label } : undefined;
}

// Built once, not per request. Maps, so a path segment such as `__proto__` or `constructor`
// matches nothing.
const table = (t: Record<string, Record<string, string>>) => new Map(Object.entries(t).map(([k, v]) => [k, new Map(Object.entries(v))]));
/** Method → operation for a path of one segment (the collection). */
const COLLECTIONS = table({ 'schedule-groups': { GET: 'ListScheduleGroups' }, schedules: { GET: 'ListSchedules' }, tags: {} });
/** Method → operation for a path of two segments (one labelled resource). */
const RESOURCES = table({
  'schedule-groups': { POST: 'CreateScheduleGroup', GET: 'GetScheduleGroup', DELETE: 'DeleteScheduleGroup' },
  schedules: { POST: 'CreateSchedule', GET: 'GetSchedule', PUT: 'UpdateSchedule', DELETE: 'DeleteSchedule' },
  tags: { POST: 'TagResource', GET: 'ListTagsForResource', DELETE: 'UntagResource' },
});

/** Path segments, split before decoding: an ARN label arrives as one segment with '/' encoded as %2F. */
export function pathSegments(pathname: string): string[] {
  try {
    return pathname.split('/').filter((s) => s !== '').map((s) => decodeURIComponent(s));
  } catch {
    return [];
  }
}

export function parseBody(rawBody: string): Record<string, unknown> {
  if (rawBody.trim() === '') return {};
  try {
    const parsed: unknown = JSON.parse(rawBody);
    if (parsed && typeof parsed === 'object' && !Array.isArray(parsed)) return parsed as Record<string, unknown>;
  } catch {
    // fall through
  }
  throw new ApiError('SerializationException', 400, 'Request body is not a JSON object.');
}

export function send(res: http.ServerResponse, status: number, body: unknown, errorType?: string, json11 = false): void {
  // awsJson1_1 errors also carry the type in the body's __type.
  const payload = JSON.stringify(json11 && errorType ? { __type: errorType, ...(body as object) } : body);
  const headers: http.OutgoingHttpHeaders = {
    'content-type': json11 ? 'application/x-amz-json-1.1' : 'application/json',
    'content-length': Buffer.byteLength(payload),
    'x-amzn-requestid': randomUUID(),
  };
  if (errorType) headers['x-amzn-errortype'] = errorType;
  res.writeHead(status, headers);
  res.end(payload);
}

export function sendError(res: http.ServerResponse, e: ApiError, json11 = false): void {
  send(res, e.status, { Message: e.message }, e.type, json11);
}

const REASONS: Record<number, string> = { 500: 'Internal Server Error', 502: 'Bad Gateway', 503: 'Service Unavailable', 504: 'Gateway Timeout' };

/** What a proxy or load balancer in front of the service answers when it cannot reach it: an HTML page, no AWS error type. */
export function sendHtml(res: http.ServerResponse, status: number): void {
  const title = `${status} ${REASONS[status] ?? 'Error'}`;
  const payload = `<html>\r\n<head><title>${title}</title></head>\r\n<body>\r\n<center><h1>${title}</h1></center>\r\n</body>\r\n</html>\r\n`;
  res.writeHead(status, { 'content-type': 'text/html', 'content-length': Buffer.byteLength(payload) });
  res.end(payload);
}

// Opaque page tokens: base64url JSON carrying the last returned sort key (so items that exist
// throughout a listing are seen exactly once even if others come and go), the number of the page
// the token fetches (so a fault can kill the token of page N) and a nonce (so a listing restarted
// from the top gets tokens of its own, as a dead token of the real service stays dead).
export function encodeToken(op: string, after: string, page: number): string {
  return Buffer.from(JSON.stringify({ op, after, page, n: randomUUID().slice(0, 8) }), 'utf8').toString('base64url');
}

interface TokenFields {
  after: string;
  page: number;
}

export function readToken(op: string, raw: string): TokenFields | undefined {
  try {
    const parsed = JSON.parse(Buffer.from(raw, 'base64url').toString('utf8')) as { op?: unknown; after?: unknown; page?: unknown };
    if (parsed.op === op && typeof parsed.after === 'string') {
      return { after: parsed.after, page: typeof parsed.page === 'number' ? parsed.page : 2 };
    }
  } catch {
    // not one of ours
  }
  return undefined;
}

/** The real service answers ValidationException to a NextToken it did not issue or no longer honours. */
export const invalidToken = (): ApiError => err('ValidationException', 'The NextToken provided is invalid');

/** The Tagging API's own error for the same case. */
export const expiredPaginationToken = (): ApiError =>
  new ApiError('PaginationTokenExpiredException', 400, 'The PaginationToken is invalid or expired.');

export function decodeToken(op: string, raw: string | null): TokenFields | undefined {
  if (raw === null) return undefined;
  const t = readToken(op, raw);
  if (!t) throw invalidToken();
  return t;
}
