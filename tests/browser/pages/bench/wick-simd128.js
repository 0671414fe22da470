// wick with plain SIMD128 kernels (relaxedSimd: false), to measure what relaxed SIMD adds;
// otherwise the same as wick.js.
import { open as openWick } from './wick.js';

export function open(args) {
  return openWick({ ...args, relaxedSimd: false });
}
