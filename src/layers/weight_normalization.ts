import * as tf from '@tensorflow/tfjs';

import {unitNormImpl} from '../ops/unit_norm';
import {checkBoolean} from '../ops/validate';
import {ConfigDict, Kwargs} from './common';
import {NormalizationWrapper, WrapperArgs} from './wrapper';

/** Arguments of {@link WeightNormalization} (TensorFlow Addons'). */
export interface WeightNormalizationArgs extends WrapperArgs {
  /** Data-dependent initialization of g and the bias from the first batch. Default true. */
  dataInit?: boolean;
}

/** A linear activation, to run the wrapped layer without its activation (TFA's naked clone). */
const LINEAR = {getClassName: () => 'linear', apply: (x: tf.Tensor) => x};

/**
 * TensorFlow Addons' `Addons>WeightNormalization` (Salimans & Kingma, 2016):
 * wraps a layer with a `kernel` (Dense, Conv1D/2D/3D, ...) and computes it
 * with `kernel = l2_normalize(v, every axis but the last) * g`, where `v` is
 * the wrapped layer's own kernel variable (still named `kernel`, as TFA's
 * files name it) and `g` a trainable [units] weight (ones). A non-trainable
 * bool `initialized` records whether g was initialized; on the first call
 * with data (not on a loaded model, whose `initialized` is true):
 *
 * - `dataInit: true` (default): as TFA's `_data_dep_init`, the wrapped layer
 *   without activation runs on the batch with TFA's "naked clone" weights
 *   (`data_dep_init/kernel`, `data_dep_init/bias`: non-trainable copies of
 *   the wrapped layer's weights taken when the layer is built, as TFA's
 *   clone takes them), its moments over every axis but the last give
 *   `scale = 1 / sqrt(var + 1e-10)`, then `g := g * scale` and
 *   `bias := -mean * scale`;
 * - `dataInit: false`: `g := ||v||` per output unit (TFA's `_init_norm`); no
 *   clone weights.
 *
 * Weights in tf.keras 2's order, as a TFA model's file lists them: `g`, the
 * wrapped layer's (`kernel` = v, `bias`), `initialized`, then the clone's
 * (`data_dep_init/kernel`, `data_dep_init/bias`).
 */
export class WeightNormalization extends NormalizationWrapper {
  /** The serialization class name, TensorFlow Addons' `Addons>WeightNormalization`. */
  static className = 'Addons>WeightNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['layer', 'dataInit'];
  /** Whether g and the bias are initialized from the first batch. */
  readonly dataInit: boolean;
  private vWeight: tf.LayerVariable|null = null;
  private gWeight: tf.LayerVariable|null = null;
  private initializedWeight: tf.LayerVariable|null = null;
  /** TFA's naked clone's weights (data init only): the wrapped layer's short weight name -> its copy. */
  private cloneWeights = new Map<string, tf.LayerVariable>();
  private normAxes: number[] = [];
  /**
   * The data of `initialized` last read as true: while the variable holds it,
   * the flag is not read back again (a GPU sync per call); any write
   * (setWeights, loading a file, an assign) gives the variable new data, and
   * the flag is read again, as TFA reads it on every call.
   */
  private initializedData: object|null = null;

  constructor(args: WeightNormalizationArgs) {
    super(args);
    this.dataInit = checkBoolean(this.who, 'dataInit', args.dataInit ?? true);
  }

  /** The wrapped layer's kernel variable (TFA's `v`). */
  get v(): tf.LayerVariable|null {
    return this.vWeight;
  }

  protected buildShape(shape: tf.Shape): void {
    this.buildWrapped(shape);
    const kernel = this.wrappedWeight('kernel');
    if (kernel == null) {
      throw new Error(`${this.who}: the wrapped ${this.layer.getClassName()} layer '${this.layer.name}' has no 'kernel' ` +
                      'weight; WeightNormalization wraps a layer with a kernel (Dense, Conv1D/2D/3D, ...)' +
                      ((this.layer as unknown as {cell?: unknown}).cell != null ?
                           ' (TensorFlow Addons also wraps RNN layers, normalizing their cell\'s recurrent_kernel: not supported here).' : '.'));
    }
    this.vWeight = kernel;
    const rank = kernel.shape.length;
    this.normAxes = Array.from({length: rank - 1}, (_, i) => i);
    this.inputSpec = [new tf.InputSpec({shape: [null, ...shape.slice(1)]})];
    this.gWeight = this.addParam('g', [kernel.shape[rank - 1] as number], tf.initializers.ones());
    this.initializedWeight = this.addWeight('initialized', [], 'bool', tf.initializers.zeros(), undefined, false);
    if (this.dataInit) {
      // TFA builds a non-trainable clone of the wrapped layer under the name scope 'data_dep_init' and copies
      // the wrapped layer's weights into it (wrappers.py, build()); the copies are part of its weights and files.
      for (const w of this.layer.weights) {
        const short = w.originalName.split('/').pop() as string;
        const copy = this.addWeight(`data_dep_init/${short}`, w.shape, w.dtype, tf.initializers.zeros(), undefined, false);
        copy.write(w.read());
        this.cloneWeights.set(short, copy);
      }
    }
  }

  /** tf.keras 2's order (TFA's): g before the wrapped layer's weights, initialized and the clone's after them. */
  protected override get ownWeightsFirst(): boolean {
    return true;
  }

  /**
   * The wrapped layer's call with its kernel replaced by `kernel`; `clone`:
   * as TFA's naked clone, with the clone's bias and without activation.
   */
  private callWith(x: tf.Tensor, kernel: tf.Tensor, clone: boolean): tf.Tensor {
    const inner = this.layer as unknown as {kernel: unknown, bias: unknown, activation: unknown};
    const saved = {kernel: inner.kernel, bias: inner.bias, activation: inner.activation};
    inner.kernel = {read: () => kernel};
    const cloneBias = this.cloneWeights.get('bias');
    if (clone) {
      inner.activation = LINEAR;
      if (cloneBias != null && inner.bias != null) inner.bias = cloneBias;
    }
    try {
      return this.layer.call(x, {} as Kwargs) as tf.Tensor;
    } finally {
      inner.kernel = saved.kernel;
      inner.bias = saved.bias;
      inner.activation = saved.activation;
    }
  }

  private initializeIfNeeded(x: tf.Tensor): void {
    const flag = (this.initializedWeight as tf.LayerVariable).read();
    const dataOf = (t: tf.Tensor) => (t as unknown as {dataId: object}).dataId;
    if (this.initializedData !== null && dataOf(flag) === this.initializedData) return;
    if (flag.dataSync()[0] !== 0) {
      this.initializedData = dataOf(flag);
      return;
    }
    const v = (this.vWeight as tf.LayerVariable).read();
    const g = (this.gWeight as tf.LayerVariable).read() as tf.Variable;
    const bias = this.wrappedWeight('bias');
    const [newG, newBias] = tf.tidy(() => {
      if (!this.dataInit) {
        const depth = v.shape[v.shape.length - 1];
        return [tf.norm(tf.reshape(v, [-1, depth]), 'euclidean', 0), null];
      }
      const cloneKernel = this.cloneWeights.get('kernel');
      const xInit = this.callWith(x, cloneKernel != null ? cloneKernel.read() : v, true);
      // A Conv2DTranspose's kernel ends with its input channels: g has one entry per input channel. TFA then tiles
      // the per-output-channel scale floor(|g| / channels) times (for its RNN path's fused kernels), which gives
      // g's size only for a multiple of the channels, and assigns the bias -mean * scale, which fits only when the
      // sizes are equal; anything else fails in TFA too.
      const channels = xInit.shape[xInit.rank - 1];
      const rep = Math.floor(g.size / channels);
      if (channels !== g.size && (rep * channels !== g.size || bias != null)) {
        throw new Error(`${this.who}: data init: the wrapped ${this.layer.getClassName()} layer '${this.layer.name}' ` +
                        `outputs ${channels} channels, but g has ${g.size} (kernel.shape[-1], as TensorFlow Addons ` +
                        "sizes it: a transposed convolution's input channels); TFA's data init fails here too (it " +
                        'tiles the scale to a multiple of the channels only, and assigns the bias -mean * scale). ' +
                        'Use dataInit: false, or as many input as output channels (a multiple of them without bias).');
      }
      const axes = Array.from({length: xInit.rank - 1}, (_, i) => i);
      const {mean, variance} = tf.moments(xInit, axes);
      const perChannel = tf.div(1, tf.sqrt(tf.add(variance, 1e-10)));
      const scale = channels === g.size ? perChannel : tf.tile(perChannel, [rep]);
      return [tf.mul(g, scale), bias != null ? tf.neg(tf.mul(mean, scale)) : null];
    });
    g.assign(newG);
    if (newBias != null && bias != null) (bias.read() as tf.Variable).assign(newBias);
    const yes = tf.scalar(true, 'bool');
    (flag as tf.Variable).assign(yes);
    tf.dispose([newG, newBias, yes]);
    this.initializedData = dataOf(flag);
  }

  protected forward(x: tf.Tensor): tf.Tensor {
    this.initializeIfNeeded(x);
    const v = (this.vWeight as tf.LayerVariable).read();
    const g = (this.gWeight as tf.LayerVariable).read();
    // TF's l2_normalize: v * rsqrt(max(sum(v²), 1e-12)), i.e. v / max(||v||, 1e-6).
    return tf.tidy(() => this.callWith(x, tf.mul(unitNormImpl(v, {axis: this.normAxes, epsilon: 1e-6}, this.who), g), false));
  }

  protected argsConfig(): ConfigDict {
    return {layer: this.layerConfig(), dataInit: this.dataInit};
  }
}
