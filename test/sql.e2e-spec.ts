import { MikroORM } from '@mikro-orm/postgresql';
import { poolOf, runStatement } from '../src/database/sql';
import { startMigratedOrm } from './support/test-app';

/** The one primitive every statement goes through (src/database/sql.ts), on a pool of one. */
describe('runStatement', () => {
  let orm: MikroORM;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ orm, close } = await startMigratedOrm(1));
  });
  afterAll(() => close());

  const backendPid = async () =>
    (await runStatement<{ pid: number }>(orm, { text: 'SELECT pg_backend_pid() AS pid' })).rows[0]
      .pid;

  it('keeps a named statement prepared on its connection, and passes parameters as parameters', async () => {
    const statement = { name: 'sql-spec-echo', text: 'SELECT $1::text AS echoed' };
    for (const value of ["it's", '1; DROP TABLE purchases']) {
      const { rows } = await runStatement<{ echoed: string }>(orm, {
        ...statement,
        values: [value],
      });
      expect(rows).toEqual([{ echoed: value }]);
    }
    const prepared = await runStatement<{ name: string }>(orm, {
      text: 'SELECT name FROM pg_prepared_statements',
    });
    expect(prepared.rows).toContainEqual({ name: 'sql-spec-echo' });
  });

  it('reports rowCount for writes', async () => {
    const { rowCount } = await runStatement(orm, {
      text: `INSERT INTO ticket_options (id, name, allocation)
             VALUES (gen_random_uuid(), 'a', 1), (gen_random_uuid(), 'b', 2)`,
    });
    expect(rowCount).toBe(2);
  });

  it('drops a connection that died under a statement, and the next statement gets a new one', async () => {
    const pool = await poolOf(orm);
    const before = await backendPid();
    await expect(
      runStatement(orm, { text: 'SELECT pg_terminate_backend(pg_backend_pid())' }),
    ).rejects.toMatchObject({ code: '57P01' });
    expect(pool.totalCount).toBe(0);
    const after = await backendPid();
    expect(after).not.toBe(before);
  });

  it('inside em.transactional, runs on the transaction: a rollback takes its writes back', async () => {
    const name = `rolled-back-${Date.now()}`;
    await expect(
      orm.em.fork().transactional(async (em) => {
        await runStatement(em, {
          text: `INSERT INTO ticket_options (id, name, allocation) VALUES (gen_random_uuid(), $1, 1)`,
          values: [name],
        });
        throw new Error('abort');
      }),
    ).rejects.toThrow('abort');
    const { rows } = await runStatement(orm, {
      text: 'SELECT 1 FROM ticket_options WHERE name = $1',
      values: [name],
    });
    expect(rows).toEqual([]);
  });
});
