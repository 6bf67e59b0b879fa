/**
 * Internal, for tests (src/index.ts does not export it): how many calls
 * ran on the SIMD loops, by direction and by where their arrays lived
 * ('copy': the cpu backend's arrays, 'view': the wasm backend's heap).
 * Tests read it to tell which loops ran.
 */
export const simdTrace = {forward: {copy: 0, view: 0}, backward: {copy: 0, view: 0}};
