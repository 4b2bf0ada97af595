import { MikroORM } from '@mikro-orm/postgresql';
import { startMigratedOrm } from './support/test-app';

/**
 * Entities, migrations and the live schema agree: after every migration has run on an empty
 * database, the ORM's schema diff (what `npm run migration:create` would write) is empty. If an
 * entity drifts from the migrations, the next generated migration would silently undo the
 * difference, e.g. drop a CHECK constraint or a table the entities do not know.
 */
describe('schema', () => {
  let orm: MikroORM;
  let close: () => Promise<void>;
  beforeAll(async () => {
    ({ orm, close } = await startMigratedOrm(2));
  });
  afterAll(() => close());

  it('the ORM finds nothing to change in a freshly migrated database', async () => {
    expect(await orm.schema.getUpdateSchemaSQL({ wrap: false })).toBe('');
  });

  it('and the migrator agrees: no migration is needed', async () => {
    expect(await orm.migrator.checkSchema()).toBe(false);
  });
});
