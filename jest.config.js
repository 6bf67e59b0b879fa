/**
 * TFJS_NODE_MODULES: a node_modules folder holding @tensorflow/tfjs-node
 * outside this repository (scripts/tfjs-node-local.sh prints it); the tests
 * then resolve tfjs-node from it, and tfjs-node resolves @tensorflow/tfjs
 * from this repository's node_modules, so one tfjs engine serves both; the
 * environment shares the outer realm's typed arrays with the sandbox
 * (test/tfjs-node-environment.js).
 */
const path = require('path');

const tfjsNodeModules = process.env.TFJS_NODE_MODULES;

/** @type {import('jest').Config} */
module.exports = {
  testEnvironment: tfjsNodeModules ? '<rootDir>/test/tfjs-node-environment.js' : 'node',
  roots: ['<rootDir>/test'],
  testMatch: ['**/*.test.ts'],
  transform: {'^.+\\.ts$': 'ts-jest'},
  setupFiles: ['<rootDir>/test/setup.ts'],
  testTimeout: 60000,
  // The examples import the package by name (tsconfig's paths): its source.
  moduleNameMapper: {'^tfjs-normalization$': '<rootDir>/src/index.ts'},
  ...(tfjsNodeModules ? {modulePaths: [path.resolve(tfjsNodeModules), path.join(__dirname, 'node_modules')]} : {}),
};
