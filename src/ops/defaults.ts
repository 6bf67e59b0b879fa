/**
 * The defaults of the public ops' options, in one table: each op takes its
 * defaults from here, and the layers whose defaults are the same (Keras's)
 * take them from here too.
 */
export const OP_DEFAULTS = {
  /** groupNorm: no default for `groups` (it is required). Keras's epsilon. */
  groupNorm: {axis: -1, epsilon: 1e-3},
  /** instanceNorm: TensorFlow Addons' epsilon. */
  instanceNorm: {axis: -1, epsilon: 1e-3},
  /** layerNorm: Keras's epsilon. */
  layerNorm: {axis: -1, epsilon: 1e-3, rmsScaling: false},
  /** rmsNorm: Keras 3 RMSNormalization's epsilon. */
  rmsNorm: {axis: -1, epsilon: 1e-6},
} as const;
