import { MikroORM } from '@mikro-orm/postgresql';
import { Injectable } from '@nestjs/common';
import { randomUUID } from 'node:crypto';
import { ReadCoalescer } from '../database/read-coalescer';
import { runStatement, Statement, StatementTarget } from '../database/sql';
import type { CreateTicketOptionAttributes, TicketOptionView } from './ticket-option.document';

const VIEW_COLUMNS = 'id, name, description, allocation, purchased, held';

/** `purchased`, `version` and the timestamps take the table's defaults. */
export const INSERT_TICKET_OPTION: Statement = {
  name: 'ticket-option-insert',
  text: `INSERT INTO ticket_options (id, name, description, allocation) VALUES ($1, $2, $3, $4)
         RETURNING ${VIEW_COLUMNS}`,
};

/**
 * `held` counts unexpired holds only: the counter may still include holds that are due and not
 * swept yet (docs/design.md, Reservations), subtracted here by the database clock.
 */
export const READ_TICKET_OPTION: Statement = {
  name: 'ticket-option-read',
  text: `SELECT t.id, t.name, t.description, t.allocation, t.purchased,
                t.held - coalesce((SELECT sum(r.quantity) FROM reservations r
                                    WHERE r.ticket_option_id = t.id AND r.status = 'held'
                                      AND r.expires_at <= now()), 0)::int AS held
           FROM ticket_options t WHERE t.id = $1`,
};

/**
 * The `ticket_options` table, except the allocation counters, which only the option store
 * (src/allocation/postgres-ticket-option.store.ts) writes.
 */
@Injectable()
export class TicketOptionsRepository {
  /** Concurrent reads of one option share a statement (never one that started before them). */
  private readonly reads = new ReadCoalescer((id: string) => this.read(id));

  constructor(private readonly orm: MikroORM) {}

  /** Inserts a new option; `within` an open transaction, the insert joins it. */
  async create(
    attributes: CreateTicketOptionAttributes,
    within: StatementTarget = this.orm,
  ): Promise<TicketOptionView> {
    const { rows } = await runStatement<TicketOptionView>(within, {
      ...INSERT_TICKET_OPTION,
      values: [
        randomUUID(),
        attributes.name,
        attributes.description ?? null,
        attributes.allocation,
      ],
    });
    return rows[0];
  }

  /**
   * One prepared statement, not a unit-of-work fetch: this is the read buyers refresh during a
   * sale, and entity hydration would cost more than the query (measured in bench scenario 5).
   * The requests for one option that arrive while its statement runs share the next one
   * (src/database/read-coalescer.ts); each gets its own copy of the row.
   */
  async findById(id: string): Promise<TicketOptionView | null> {
    const row = await this.reads.get(id);
    return row && { ...row };
  }

  /** Reads asked for and statements they ran (requests / statements = sharing factor). */
  get readStats(): { reads: number; requests: number } {
    return this.reads.stats;
  }

  private async read(id: string): Promise<TicketOptionView | null> {
    const { rows } = await runStatement<TicketOptionView>(this.orm, {
      ...READ_TICKET_OPTION,
      values: [id],
    });
    return rows[0] ?? null;
  }
}
