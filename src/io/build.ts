/** Building a model from a topology with a record of the variables it made, for cleanup that touches nothing else. */
import * as tf from '@tensorflow/tfjs';

/**
 * Builds the model from its topology and returns it with the variables its
 * construction registered. tf.models.modelFromJSON without a weights
 * manifest builds the model synchronously, before its first await, so the
 * variables registered during the call are this load's own, never those of
 * a concurrent load or of the app.
 */
export function buildModel(topology: tf.io.ModelJSON['modelTopology']): {model: Promise<tf.LayersModel>, created: tf.Variable[]} {
  const registered = tf.engine().registeredVariables;
  const before = new Set(Object.keys(registered));
  let model: Promise<tf.LayersModel>;
  try {
    model = tf.models.modelFromJSON({modelTopology: topology});
  } catch (e) {
    model = Promise.reject(e);
  }
  const created = Object.keys(registered).filter((n) => !before.has(n)).map((n) => registered[n]);
  return {model, created};
}

/** Disposes those of `created` that are still registered (the same objects, not a reused name). */
export function disposeCreated(created: readonly tf.Variable[]): void {
  const registered = tf.engine().registeredVariables;
  for (const v of created) {
    if (registered[v.name] === v) v.dispose();
  }
}
