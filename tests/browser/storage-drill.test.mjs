// The storage drills, CI-sized (tests/browser/drill.mjs; scripts/drill runs the long version):
// 100 downloads cut at random seeded points and resumed, two and three tabs on one model, bits
// flipped in stored models. Nothing may hang, every case must end with the right model, and no
// wrong model may ever be stored. Run: node --test tests/browser/storage-drill.test.mjs
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { runDrills, table } from './drill.mjs';

test('storage drills: random cuts, several tabs, flipped bits', { timeout: 240_000 }, async () => {
  const seed = Number(process.env.WICK_DRILL_SEED ?? 1);
  const rows = await runDrills({ seed, cases: 100, tabRounds: 6, flips: 4 });
  console.log(`seed ${seed}\n${table(rows)}`);
  for (const r of rows) {
    assert.equal(r.wrong, 0, `${r.drill}: wrong models stored`);
    assert.deepEqual(r.failures, [], r.drill);
    assert.equal(r.passed, r.cases, r.drill);
  }
  const cut = rows[0];
  assert.ok(cut.attempts > cut.cases * 1.5, `the faults struck: ${cut.attempts} attempts for ${cut.cases} cases`);
});
