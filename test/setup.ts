// Silences tfjs's one-time "install tfjs-node" banner in the test output.
const warn = console.warn;
console.warn = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && args[0].includes('looks like you are running TensorFlow.js in Node.js')) return;
  warn(...args);
};
const log = console.log;
console.log = (...args: unknown[]) => {
  if (typeof args[0] === 'string' && /^=+$|looks like you are running TensorFlow\.js in Node\.js/.test(args[0].trim())) return;
  log(...args);
};
