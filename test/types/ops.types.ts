/**
 * Type test (never run): uses of the ops that must type-check, and misuses
 * marked @ts-expect-error, which must not (tsc reports an unused
 * @ts-expect-error as an error). Checked against the sources by
 * `npm run typecheck` and against the built .d.ts by test/types.test.ts.
 */
import * as tf from '@tensorflow/tfjs';
import {ops} from 'tfjs-normalization';

declare const x1d: tf.Tensor1D;
declare const x2d: tf.Tensor2D;
declare const x3d: tf.Tensor3D;
declare const x4d: tf.Tensor4D;
declare const x5d: tf.Tensor5D;
declare const x6d: tf.Tensor<tf.Rank.R6>;
declare const xAny: tf.Tensor;
declare const v4d: tf.Variable<tf.Rank.R4>;
declare const gamma: tf.Tensor1D;

// Every op keeps the input's rank in its type.
export const g4: tf.Tensor4D = ops.groupNorm(x4d, {groups: 8, axis: -1, epsilon: 1e-5, gamma, beta: gamma});
export const g2: tf.Tensor2D = ops.groupNorm(x2d, {groups: 2});
export const g5: tf.Tensor5D = ops.groupNorm(x5d, {groups: 2, axis: 1});
export const i3: tf.Tensor3D = ops.instanceNorm(x3d);
export const i4: tf.Tensor4D = ops.instanceNorm(x4d, {epsilon: 1e-5, mask: x2d});
export const l1: tf.Tensor1D = ops.layerNorm(x1d);
export const l3: tf.Tensor3D = ops.layerNorm(x3d, {axis: [1, 2], rmsScaling: true});
export const l6: tf.Tensor<tf.Rank.R6> = ops.layerNorm(x6d, {axis: -1});
export const r3: tf.Tensor3D = ops.rmsNorm(x3d, {axis: -1, gamma});
export const r4: tf.Tensor4D = ops.rmsNorm(x4d);
// An input of unknown rank gives a tensor of unknown rank.
export const a: tf.Tensor = ops.layerNorm(xAny);
// A variable in gives a plain tensor of the same rank out.
export const fromVariable: tf.Tensor4D = ops.groupNorm(v4d, {groups: 4});
// The ops compose with tf's rank-typed ops.
export const composed: tf.Tensor4D = tf.relu(ops.groupNorm(x4d, {groups: 4}));

// Misuses.
// @ts-expect-error the output of a rank-2 input is not rank 4
export const wrongRank: tf.Tensor4D = ops.groupNorm(x2d, {groups: 2});
// @ts-expect-error nor is a rank-3 input's layer norm rank 2
export const wrongRank2: tf.Tensor2D = ops.layerNorm(x3d);
// @ts-expect-error an unknown-rank input does not give a rank-4 type
export const unknownRank: tf.Tensor4D = ops.rmsNorm(xAny);
// @ts-expect-error the output is not a Variable
export const notVariable: tf.Variable = ops.groupNorm(v4d, {groups: 4});
// @ts-expect-error groupNorm needs `groups`
ops.groupNorm(x4d, {axis: -1});
// @ts-expect-error groups is a number
ops.groupNorm(x4d, {groups: '8'});
// @ts-expect-error the input is a tensor, not an array
ops.layerNorm([[1, 2, 3]]);
// @ts-expect-error gamma is a tensor
ops.rmsNorm(x3d, {gamma: [1, 1, 1]});
// @ts-expect-error instanceNorm has no groups option
ops.instanceNorm(x4d, {groups: 2});
// @ts-expect-error rmsNorm has no beta
ops.rmsNorm(x3d, {beta: gamma});
