/**
 * Weight-standardized convolutions (Qiao et al., 2019): WSConv2D and
 * WSConv1D are tfjs's Conv2D and Conv1D whose kernel is standardized per
 * output channel (ops.weightStandardization) every time the layer runs.
 * The raw kernel is the layer's weight (saved, loaded, trained); the
 * standardized one exists only inside call().
 */
import * as tf from '@tensorflow/tfjs';
import type {Conv1D as TfConv1D, Conv2D as TfConv2D, ConvLayerArgs} from '@tensorflow/tfjs-layers/dist/layers/convolutional';

import {checkEpsilon, show} from '../ops/validate';
import {weightStandardization, WS_EPSILON} from '../ops/weight_standardization';
import {ConfigDict, dropMask, Kwargs, layerWho} from './common';

/** Arguments of {@link WSConv2D} and {@link WSConv1D}: tf.layers.conv2d's / conv1d's and `standardizationEpsilon`. */
export interface WSConvArgs extends ConvLayerArgs {
  /** Added to the kernel's per-channel variance (default 1e-5). */
  standardizationEpsilon?: number;
}

type ConvClass<T> = new (args: ConvLayerArgs) => T;

/**
 * tfjs does not export its conv classes; they are taken from its
 * serialization registry (where tf.layers.conv2d's class is registered),
 * so no layer is made (which would advance tfjs's default-name counters).
 */
function tfjsClass<T>(className: string): ConvClass<T> {
  const entry = tf.serialization.SerializationMap.getMap().classNameMap[className];
  if (entry == null) throw new Error(`tfjs-normalization: tfjs's '${className}' layer class is not registered`);
  return entry[0] as unknown as ConvClass<T>;
}

interface KernelHolder {
  kernel: tf.LayerVariable;
}

/**
 * Runs the conv's own call with its kernel swapped for the standardized one
 * (call is synchronous, so nothing else sees the swap); everything else
 * (bias, activation, fused kernels, dataFormat, dilation) is tfjs's.
 */
function callStandardized(layer: tf.layers.Layer & KernelHolder, epsilon: number, run: () => tf.Tensor|tf.Tensor[]): tf.Tensor|tf.Tensor[] {
  return tf.tidy(() => {
    const raw = layer.kernel;
    const w = weightStandardization(raw.read(), {axis: -1, epsilon});
    layer.kernel = {read: () => w} as unknown as tf.LayerVariable;
    try {
      return run();
    } finally {
      layer.kernel = raw;
    }
  });
}

function standardizationEpsilon(className: string, args: WSConvArgs|undefined): number {
  const name = typeof args?.name === 'string' ? args.name : '?';
  return checkEpsilon(layerWho(className, name), args?.standardizationEpsilon ?? WS_EPSILON);
}

function convArgs(className: string, args: WSConvArgs): ConvLayerArgs {
  if (args == null || typeof args !== 'object' || Array.isArray(args)) {
    throw new Error(`${className}: the layer arguments must be an object; received ${show(args)}.`);
  }
  const rest: WSConvArgs = {...args};
  delete rest.standardizationEpsilon;
  return rest;
}

function fromConvConfig<T extends tf.serialization.Serializable>(
    cls: tf.serialization.SerializableConstructor<T>, config: ConfigDict, className: string): T {
  if (config == null || typeof config !== 'object' || Array.isArray(config)) {
    throw new Error(`${className}: the config must be an object; received ${show(config)}.`);
  }
  const rest: ConfigDict = {...config};
  delete rest.customObjects;
  return new cls(rest as never);
}

/**
 * The type of a weight-standardized conv class: named, so that the
 * declarations of WSConv2D and WSConv1D can spell their base (an anonymous
 * class type over tfjs's protected members cannot be written into a .d.ts).
 */
interface WSConvClass<T> {
  /** Builds the layer from the conv's arguments plus `standardizationEpsilon`. */
  new (args: WSConvArgs): T & {
    /** Added to the kernel's per-channel variance. */
    readonly standardizationEpsilon: number,
  };
  /** Rebuilds the layer from its config (tfjs passes customObjects in it, which is dropped). */
  fromConfig<S extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<S>, config: ConfigDict): S;
}

/**
 * The weight-standardized variant of a tfjs conv class: the same layer with
 * `standardizationEpsilon` in its arguments and config and its kernel
 * standardized in every call. WSConv2D and WSConv1D differ only in the conv
 * they extend and their class name.
 */
function weightStandardized<T extends tf.layers.Layer>(Base: ConvClass<T>, className: string): WSConvClass<T> {
  const LayerBase: ConvClass<tf.layers.Layer> = Base;
  class Standardized extends LayerBase {
    /** Added to the kernel's per-channel variance. */
    readonly standardizationEpsilon: number;

    constructor(args: WSConvArgs) {
      const epsilon = standardizationEpsilon(className, args);
      super(convArgs(className, args));
      this.standardizationEpsilon = epsilon;
    }

    /**
     * Runs the convolution with the kernel standardized per output channel (the stored kernel is left raw).
     * Like Keras 3's conv layers it does not support masking: a mask ends here (see dropMask).
     */
    override call(inputs: tf.Tensor|tf.Tensor[], kwargs: Kwargs): tf.Tensor|tf.Tensor[] {
      dropMask(kwargs);
      return callStandardized(this as unknown as tf.layers.Layer & KernelHolder, this.standardizationEpsilon,
                              () => super.call(inputs, kwargs));
    }

    /** No mask leaves it, as Keras 3's conv layers drop theirs (tfjs's conv would throw on an incoming mask). */
    override computeMask(): tf.Tensor|tf.Tensor[] {
      return null as unknown as tf.Tensor;  // tfjs's type has no null; its layers return null for "no mask"
    }

    /** The convolution's config plus `standardizationEpsilon`. */
    override getConfig(): ConfigDict {
      return {...super.getConfig(), standardizationEpsilon: this.standardizationEpsilon};
    }

    /** Rebuilds the layer from its config (tfjs passes customObjects in it, which is dropped). */
    static fromConfig<S extends tf.serialization.Serializable>(cls: tf.serialization.SerializableConstructor<S>, config: ConfigDict): S {
      return fromConvConfig(cls, config, className);
    }
  }
  // Standardized's instances are T's (it extends Base); TypeScript types them as Base's declared Layer.
  return Standardized as unknown as WSConvClass<T>;
}

/**
 * A weight-standardized 2-D convolution: tf.layers.conv2d with its kernel
 * `[kh, kw, in, filters]` standardized over kh, kw and in for each filter
 * (`(W - mean) / sqrt(var + standardizationEpsilon)`) in every call. Takes
 * all of conv2d's arguments; serializes as `WSConv2D` with conv2d's config
 * plus `standardization_epsilon`; its weights are conv2d's (the raw kernel).
 * Pair it with GroupNormalization (GN + WS, as in BiT).
 */
export class WSConv2D extends weightStandardized(tfjsClass<TfConv2D>('Conv2D'), 'WSConv2D') {
  /** The serialization class name, `WSConv2D`. */
  static className = 'WSConv2D';
}

/**
 * A weight-standardized 1-D convolution: tf.layers.conv1d with its kernel
 * `[k, in, filters]` standardized over k and in for each filter in every
 * call; serializes as `WSConv1D` (conv1d's config plus
 * `standardization_epsilon`).
 */
export class WSConv1D extends weightStandardized(tfjsClass<TfConv1D>('Conv1D'), 'WSConv1D') {
  /** The serialization class name, `WSConv1D`. */
  static className = 'WSConv1D';
}
