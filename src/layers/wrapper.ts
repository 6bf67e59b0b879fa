/**
 * The base of this package's wrapper layers (SpectralNormalization,
 * WeightNormalization): a {@link NormalizationLayer} that holds another layer
 * (`layer`, an instance or a serialized `{className, config}`), builds it
 * with its own input shape, computes the wrapped layer's output shape, and
 * serializes as Keras wrappers do: the config holds the wrapped layer as
 * `{className, config}`. It does not support masking, as Keras's wrappers
 * (an incoming mask is dropped, as Keras drops it). Its weights are the wrapped layer's, then its own
 * (both trainable lists, then both non-trainable ones; its own first where
 * the reference wrapper has them so, as TFA's); disposing it disposes
 * them all (tfjs's dispose goes through `weights`).
 */
import * as tf from '@tensorflow/tfjs';

import {argError} from '../ops/validate';
import {NormalizationLayer} from './base';
import {ConfigDict, dropMask, Kwargs, LayerArgs} from './common';
import {SerializedObject} from './identifiers';

/** Arguments of a wrapper: the layer it wraps. */
export interface WrapperArgs extends LayerArgs {
  /** The wrapped layer: an instance, or a serialized `{className, config}` (as a config holds it). */
  layer: tf.layers.Layer|SerializedObject;
}

/** The wrapped layer from an instance or a `{className, config}` (through tf.serialization's registry). */
function toLayer(who: string, value: unknown): tf.layers.Layer {
  if (value instanceof tf.layers.Layer) return value;
  const v = value as {className?: unknown, config?: unknown}|null;
  if (v != null && typeof v === 'object' && typeof v.className === 'string') {
    const entry = tf.serialization.SerializationMap.getMap().classNameMap[v.className];
    if (entry === undefined) throw argError(who, 'layer', v.className, 'a layer class tfjs knows');
    const config = (v.config ?? {}) as ConfigDict;
    const obj = entry[1](entry[0], config);
    if (obj instanceof tf.layers.Layer) return obj;
    throw argError(who, 'layer', v.className, 'a layer class');
  }
  throw argError(who, 'layer', value === undefined ? 'undefined' : typeof value, 'a tf.layers.Layer or a serialized {className, config}');
}

/** A layer that wraps another (see the file header). */
export abstract class NormalizationWrapper extends NormalizationLayer {
  /** The wrapped layer. */
  readonly layer: tf.layers.Layer;

  constructor(args: WrapperArgs) {
    super(args);
    this.layer = toLayer(this.who, (args as {layer?: unknown}|undefined)?.layer);
    // Keras 3's Wrapper (SpectralNormalization) and tf.keras 2's (TFA's WeightNormalization) do not support
    // masking: the wrapped layer runs without the mask and the mask ends here.
    this.supportsMasking = false;
  }

  /** The wrapped computation, without a mask; the mask ends here (see dropMask). */
  override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor {
    dropMask(kwargs);
    return super.call(inputs, kwargs);
  }

  /**
   * No mask leaves a wrapper, as Keras drops it after a layer that does not
   * support masking (tfjs's default would throw on an incoming mask).
   */
  override computeMask(): tf.Tensor|tf.Tensor[] {
    // tfjs's declared type has no null, but its layers return null for "no mask" (as Layer.computeMask does).
    return null as unknown as tf.Tensor;
  }

  /** Builds the wrapped layer (if it is not) with this layer's input shape. */
  protected buildWrapped(shape: tf.Shape): void {
    if (!this.layer.built) {
      this.layer.build(shape);
      this.layer.built = true;
    }
  }

  /**
   * The wrapped layer's weight held as its property `name` ('kernel',
   * 'bias', 'embeddings'), or null: Keras's `hasattr(layer, 'kernel')`, and
   * what the wrapped layer's call reads (WeightNormalization substitutes that
   * property). Not a weight of that name found among `layer.weights`: those
   * include a nested layer's, and an RNN (its cell's kernel), a
   * TimeDistributed or Bidirectional wrapper or a model has no kernel of its
   * own (Keras and TFA raise for them; a nested kernel was normalized by
   * SpectralNormalization, and WeightNormalization's substitute was never read).
   */
  protected wrappedWeight(name: string): tf.LayerVariable|null {
    const own = (this.layer as unknown as Record<string, unknown>)[name];
    return own instanceof tf.LayerVariable ? own : null;
  }

  /**
   * Whether this layer's own weights come before the wrapped layer's in each
   * list (tf.keras 2's order, as TensorFlow Addons' wrappers have it); false:
   * the wrapped layer's first.
   */
  protected get ownWeightsFirst(): boolean {
    return false;
  }

  /** The wrapped layer's output shape. */
  override computeOutputShape(inputShape: tf.Shape|tf.Shape[]): tf.Shape {
    return this.layer.computeOutputShape(inputShape) as tf.Shape;
  }

  /** The wrapped layer's trainable weights and this layer's (see ownWeightsFirst); none when not trainable. */
  override get trainableWeights(): tf.LayerVariable[] {
    if (!this.trainable) return [];
    const own = super.trainableWeights;
    return this.ownWeightsFirst ? [...own, ...this.layer.trainableWeights] : [...this.layer.trainableWeights, ...own];
  }

  /** As tf.layers.Layer's setter (this layer's own list). */
  override set trainableWeights(weights: tf.LayerVariable[]) {
    super.trainableWeights = weights;
  }

  /** The wrapped layer's non-trainable weights and this layer's (every weight when not trainable; see ownWeightsFirst). */
  override get nonTrainableWeights(): tf.LayerVariable[] {
    const own = this.trainable ? super.nonTrainableWeights : [...super.trainableWeights, ...super.nonTrainableWeights];
    const inner = this.trainable ? this.layer.nonTrainableWeights : this.layer.weights;
    return this.ownWeightsFirst ? [...own, ...inner] : [...inner, ...own];
  }

  /** As tf.layers.Layer's setter (this layer's own list). */
  override set nonTrainableWeights(weights: tf.LayerVariable[]) {
    super.nonTrainableWeights = weights;
  }

  /** Whether the layer (and so the wrapped layer) is trainable. */
  override get trainable(): boolean {
    return super.trainable;
  }

  /** Sets trainable on this layer and the wrapped one. */
  override set trainable(value: boolean) {
    super.trainable = value;
    if (this.layer != null) this.layer.trainable = value;
  }

  /** The wrapped layer as `{className, config}`. */
  protected layerConfig(): ConfigDict {
    return {className: this.layer.getClassName(), config: this.layer.getConfig()} as unknown as ConfigDict;
  }
}
