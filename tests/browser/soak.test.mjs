// The soak drill in CI size (tests/browser/soak.mjs says what it checks; scripts/drill runs
// 1000 requests). Run: node --test tests/browser/soak.test.mjs
import { test } from 'node:test';
import { runSoak } from './soak.mjs';

const REQUESTS = Number(process.env.WICK_SOAK_REQUESTS ?? 150);
const SWITCH_EVERY = Number(process.env.WICK_SOAK_SWITCH_EVERY ?? 75);
const SEED = Number(process.env.WICK_SOAK_SEED ?? 20261207);

test(`soak: ${REQUESTS} requests with aborts, overflows, bad parameters and model switches`, async () => {
  const { counts } = await runSoak({ requests: REQUESTS, switchEvery: SWITCH_EVERY, seed: SEED, log: console.log });
  console.log(`soak: ${REQUESTS} requests, seed ${SEED}: ${JSON.stringify(counts)}`);
});
