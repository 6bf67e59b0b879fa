import * as tf from '@tensorflow/tfjs';

import {unitNormImpl} from '../ops/unit_norm';
import {argError} from '../ops/validate';
import {ConfigDict} from './common';
import {NormalizationWrapper, WrapperArgs} from './wrapper';

/** Arguments of {@link SpectralNormalization} (Keras 3's). */
export interface SpectralNormalizationArgs extends WrapperArgs {
  /** Power iterations per training call. Default 1. */
  powerIterations?: number;
}

/**
 * Keras 3's `keras.layers.SpectralNormalization` (Miyato et al., 2018): wraps
 * a layer with a `kernel` (Dense, Conv1D/2D/3D, Conv2DTranspose, ...;
 * DepthwiseConv2D, whose kernel Keras 3 names `kernel` and tfjs
 * `depthwise_kernel`) or `embeddings` (Embedding) and keeps its spectral norm
 * near 1 (SeparableConv2D, with two kernels and no `kernel`, is an error, as
 * in Keras). It adds a
 * non-trainable `vector_u` of shape [1, kernel.shape[-1]] (truncated normal,
 * stddev 0.02). In training (`training: true`, as in `model.fit`) each call
 * runs `powerIterations` power iterations on the kernel reshaped to
 * [-1, kernel.shape[-1]], assigns the new `vector_u` and `kernel / sigma` to
 * the variables (unless the kernel is all zeros) and then calls the wrapped
 * layer; the gradient reaches the kernel variable as in Keras (sigma is not
 * differentiated). In inference the stored (normalized) kernel is used as is.
 * Serialized as a wrapper: the config holds the wrapped layer. Its weights
 * are in Keras 3's order, `[kernel, vector_u, bias]` (see `weights`).
 */
export class SpectralNormalization extends NormalizationWrapper {
  /** The serialization class name, `SpectralNormalization` (Keras 3's). */
  static className = 'SpectralNormalization';
  /** The keys of its arguments besides tf.layers.Layer's. */
  static override readonly argKeys: readonly string[] = ['layer', 'powerIterations'];
  /** Power iterations per training call. */
  readonly powerIterations: number;
  private kernel: tf.LayerVariable|null = null;
  private vectorU: tf.LayerVariable|null = null;

  constructor(args: SpectralNormalizationArgs) {
    super(args);
    const n = args.powerIterations ?? 1;
    if (typeof n !== 'number' || !Number.isInteger(n) || n <= 0) throw argError(this.who, 'powerIterations', n, 'an integer > 0');
    this.powerIterations = n;
  }

  protected buildShape(shape: tf.Shape): void {
    this.buildWrapped(shape);
    const kernel = this.wrappedWeight('kernel') ?? this.depthwiseKernel() ?? this.wrappedWeight('embeddings');
    if (kernel == null) {
      throw new Error(`${this.who}: the wrapped ${this.layer.getClassName()} layer '${this.layer.name}' has no 'kernel' ` +
                      "nor 'embeddings' weight (SpectralNormalization wraps Dense, Conv1D/2D/3D, Conv2DTranspose, " +
                      'DepthwiseConv2D, Embedding, ...).');
    }
    this.kernel = kernel;
    if (shape.length >= 1 && shape[shape.length - 1] != null) {
      this.inputSpec = [new tf.InputSpec({minNDim: 1, axes: {[-1]: shape[shape.length - 1] as number}})];
    }
    const out = kernel.shape[kernel.shape.length - 1] as number;
    this.vectorU = this.addParam('vector_u', [1, out], tf.initializers.truncatedNormal({mean: 0, stddev: 0.02}), {trainable: false});
  }

  /**
   * A DepthwiseConv2D's kernel: Keras 3's layer holds it as `kernel` (so
   * Keras wraps it), tfjs's as `depthwiseKernel` ('depthwise_kernel'). Not a
   * SeparableConv2D's: it has a pointwise kernel too and no `kernel` in Keras
   * either.
   */
  private depthwiseKernel(): tf.LayerVariable|null {
    if ((this.layer as unknown as {pointwiseKernel?: unknown}).pointwiseKernel != null) return null;
    const own = (this.layer as unknown as {depthwiseKernel?: unknown}).depthwiseKernel;
    return own instanceof tf.LayerVariable ? own : null;
  }

  /**
   * Keras 3's order: the kernel (the wrapper's own alias of the wrapped
   * layer's), vector_u, then the wrapped layer's other weights (`[kernel,
   * vector_u, bias]`), as its `weights` and `get_weights()`; so
   * `getWeights()`/`setWeights()` take Keras's arrays as they are. Before
   * the build: tf.layers.Layer's.
   */
  override get weights(): tf.LayerVariable[] {
    const kernel = this.kernel;
    if (kernel == null) return super.weights;
    return [kernel, ...this.ownWeights(), ...this.layer.weights.filter((w) => w !== kernel)];
  }

  /** The trainable weights in {@link weights}' order (Keras 3 filters its weights): none when not trainable. */
  override get trainableWeights(): tf.LayerVariable[] {
    return this.inWeightsOrder(super.trainableWeights);
  }

  /** As tf.layers.Layer's setter (this layer's own list). */
  override set trainableWeights(weights: tf.LayerVariable[]) {
    super.trainableWeights = weights;
  }

  /** The non-trainable weights in {@link weights}' order: `[vector_u]`; every weight when not trainable. */
  override get nonTrainableWeights(): tf.LayerVariable[] {
    return this.inWeightsOrder(super.nonTrainableWeights);
  }

  /** As tf.layers.Layer's setter (this layer's own list). */
  override set nonTrainableWeights(weights: tf.LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }

  /** This layer's own variables (vector_u), not the wrapped layer's. */
  private ownWeights(): tf.LayerVariable[] {
    const inner = new Set(this.layer.weights);
    return [...super.trainableWeights, ...super.nonTrainableWeights].filter((w) => !inner.has(w));
  }

  /** `list` sorted as {@link weights} (the same members). */
  private inWeightsOrder(list: tf.LayerVariable[]): tf.LayerVariable[] {
    if (this.kernel == null) return list;
    const members = new Set(list);
    return this.weights.filter((w) => members.has(w));
  }

  protected forward(x: tf.Tensor, _mask: tf.Tensor|null, training: boolean): tf.Tensor {
    if (training) this.normalizeKernel();
    return this.layer.call(x, {}) as tf.Tensor;
  }

  /**
   * One training update, as Keras's `normalized_weights`: power iterations
   * with `normalize` (x / max(||x||, 1e-7) over the whole vector), sigma =
   * v W uᵀ, then vector_u := u and kernel := kernel / sigma, both unchanged
   * when the kernel is all zeros. The variables are assigned directly (a
   * kernel constraint is not applied, as Keras's assign does not).
   */
  private normalizeKernel(): void {
    const kernel = (this.kernel as tf.LayerVariable).read() as tf.Variable;
    const vectorU = (this.vectorU as tf.LayerVariable).read() as tf.Variable;
    const out = kernel.shape[kernel.shape.length - 1];
    const [newU, newKernel] = tf.tidy(() => {
      const w = tf.reshape(kernel, [-1, out]);
      let u: tf.Tensor = vectorU;
      let v: tf.Tensor = u;
      for (let i = 0; i < this.powerIterations; i++) {
        v = unitNormImpl(tf.matMul(u, w, false, true), {axis: [0, 1], epsilon: 1e-7}, this.who);
        u = unitNormImpl(tf.matMul(v, w), {axis: [0, 1], epsilon: 1e-7}, this.who);
      }
      const sigma = tf.reshape(tf.matMul(tf.matMul(v, w), u, false, true), []);
      const allZero = tf.all(tf.equal(kernel, 0));
      return [tf.where(allZero, vectorU, u), tf.where(allZero, kernel, tf.div(kernel, sigma))];
    });
    vectorU.assign(newU);
    kernel.assign(newKernel);
    tf.dispose([newU, newKernel]);
  }

  protected argsConfig(): ConfigDict {
    return {layer: this.layerConfig(), powerIterations: this.powerIterations};
  }
}
