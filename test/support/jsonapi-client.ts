import { randomUUID } from 'node:crypto';

export const JSONAPI = 'application/vnd.api+json';

export interface ApiResponse {
  status: number;
  headers: Headers;
  /** The parsed JSON body (undefined when empty). */
  body: any;
  text: string;
}

/** A small HTTP client over real sockets (Node's fetch), speaking JSON:API by default. */
export class JsonApiClient {
  constructor(private readonly baseUrl: string) {}

  async request(
    method: string,
    path: string,
    options: { body?: unknown; rawBody?: string | Buffer; headers?: Record<string, string> } = {},
  ): Promise<ApiResponse> {
    const headers: Record<string, string> = { ...options.headers };
    let body: string | Buffer | undefined = options.rawBody;
    if (options.body !== undefined) {
      body = JSON.stringify(options.body);
      headers['content-type'] ??= JSONAPI;
    }
    const response = await fetch(`${this.baseUrl}${path}`, { method, headers, body });
    const text = await response.text();
    let parsed: unknown;
    try {
      parsed = text === '' ? undefined : JSON.parse(text);
    } catch {
      parsed = undefined;
    }
    return { status: response.status, headers: response.headers, body: parsed, text };
  }

  get(path: string, headers?: Record<string, string>): Promise<ApiResponse> {
    return this.request('GET', path, { headers });
  }

  delete(path: string, headers?: Record<string, string>): Promise<ApiResponse> {
    return this.request('DELETE', path, { headers });
  }

  post(path: string, body: unknown, headers?: Record<string, string>): Promise<ApiResponse> {
    return this.request('POST', path, { body, headers });
  }

  async createTicketOption(
    attributes: Record<string, unknown> = { name: 'General admission', allocation: 100 },
  ): Promise<string> {
    const response = await this.post('/ticket_options', ticketOptionBody(attributes));
    if (response.status !== 201) {
      throw new Error(`create ticket option failed: ${response.status} ${response.text}`);
    }
    return response.body.data.id as string;
  }

  purchase(
    optionId: string,
    quantity: unknown,
    userId: string = randomUUID(),
  ): Promise<ApiResponse> {
    return this.post('/purchases', purchaseBody(optionId, quantity, userId));
  }
}

export function ticketOptionBody(attributes: Record<string, unknown>): unknown {
  return { data: { type: 'ticket_options', attributes } };
}

export function purchaseBody(
  optionId: string | undefined,
  quantity: unknown,
  userId: string = randomUUID(),
): {
  data: {
    type: string;
    attributes: Record<string, unknown>;
    relationships: Record<string, unknown>;
  };
} {
  const relationships: Record<string, unknown> = { user: { data: { type: 'users', id: userId } } };
  if (optionId !== undefined) {
    relationships.ticket_option = { data: { type: 'ticket_options', id: optionId } };
  }
  return { data: { type: 'purchases', attributes: { quantity }, relationships } };
}

/** A hold request; `optionId` undefined for the nested route, which takes it from the path. */
export function reservationBody(
  optionId: string | undefined,
  quantity: unknown,
  options: { userId?: string; ttlSeconds?: unknown } = {},
): {
  data: {
    type: string;
    attributes: Record<string, unknown>;
    relationships: Record<string, unknown>;
  };
} {
  const attributes: Record<string, unknown> = { quantity };
  if (options.ttlSeconds !== undefined) attributes.ttl_seconds = options.ttlSeconds;
  const relationships: Record<string, unknown> = {
    user: { data: { type: 'users', id: options.userId ?? randomUUID() } },
  };
  if (optionId !== undefined) {
    relationships.ticket_option = { data: { type: 'ticket_options', id: optionId } };
  }
  return { data: { type: 'reservations', attributes, relationships } };
}

/** A confirmation: a purchase naming only the reservation (the rest is taken from it). */
export function confirmationBody(
  reservationId: string,
  extra: { attributes?: Record<string, unknown>; relationships?: Record<string, unknown> } = {},
): {
  data: {
    type: string;
    attributes?: Record<string, unknown>;
    relationships: Record<string, unknown>;
  };
} {
  return {
    data: {
      type: 'purchases',
      ...(extra.attributes ? { attributes: extra.attributes } : {}),
      relationships: {
        reservation: { data: { type: 'reservations', id: reservationId } },
        ...extra.relationships,
      },
    },
  };
}

/** The exact error object docs/design.md, Wire contract prescribes for an oversell (detail may differ). */
export const INVALID_PURCHASE_QUANTITY = {
  status: '400',
  code: 'invalid_purchase_quantity',
  title: 'Unable to purchase provided quantity',
  source: { pointer: '/data/attributes/quantity' },
};
