// A person's tags on runs (issue 15.9): stored by migration 8, listed with each run, filtered
// by, checked, and gone with their run.
import { afterAll, describe, expect, it } from 'vitest';
import { DatabaseError, createRun, deleteRun, getRun, listRuns, openDatabase, tagRun } from '../../../main/db/index.ts';
import { tempDir } from './helpers.ts';

const tmp = tempDir('autodidact-tags-');
afterAll(() => tmp.remove());

describe('run tags', () => {
  it('adds, removes, lists, filters by and deletes tags with their run', () => {
    const db = openDatabase(tmp.file('tags.db'));
    try {
      const a = createRun(db, { name: 'a', method: 'ttrl', model: 'm', dataset: 'd', config: {} });
      const b = createRun(db, { name: 'b', method: 'ttrl', model: 'm', dataset: 'd', config: {} });
      expect(a.tags).toEqual([]);
      expect(tagRun(db, a.id, { add: ['zeta', ' baseline ', 'zeta'] }).tags).toEqual(['baseline', 'zeta']);
      tagRun(db, b.id, { add: ['baseline'] });
      expect(tagRun(db, a.id, { remove: ['zeta', 'never-there'] }).tags).toEqual(['baseline']);
      expect(listRuns(db, { tag: 'baseline' }).map((r) => r.id)).toEqual([b.id, a.id]);
      expect(listRuns(db, { tag: 'zeta' })).toEqual([]);
      expect(listRuns(db).map((r) => r.tags)).toEqual([['baseline'], ['baseline']]);
      expect(() => tagRun(db, a.id, { add: ['two\nlines'] })).toThrow(/control character/);
      expect(() => tagRun(db, a.id, { add: ['   '] })).toThrow(DatabaseError);
      expect(() => tagRun(db, 999, { add: ['x'] })).toThrow(/No run 999/);
      deleteRun(db, a.id);
      expect(db.sql.prepare('SELECT run_id, tag FROM run_tags').all()).toEqual([{ run_id: b.id, tag: 'baseline' }]);
      expect(getRun(db, b.id)?.tags).toEqual(['baseline']);
    } finally {
      db.close();
    }
  });
});
