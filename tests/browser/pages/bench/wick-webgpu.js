// wick on its WebGPU backend (backend: 'webgpu'); otherwise the same as wick.js.
import { open as openWick } from './wick.js';

export function open(args) {
  return openWick({ ...args, backend: 'webgpu' });
}
