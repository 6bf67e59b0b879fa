/**
 * The layer factories (`layers.groupNormalization(args)`, ...), in the
 * style of `tf.layers`. Each returns a new instance of the layer class of
 * the same name.
 *
 * @module layers
 */
import {FilterResponseNormalization, FilterResponseNormalizationArgs, TLU, TLUArgs} from './filter_response_normalization';
import {BatchNormalization, BatchNormalizationArgs} from './batch_normalization';
import {GroupNormalization, GroupNormalizationArgs} from './group_normalization';
import {InstanceNormalization, InstanceNormalizationArgs} from './instance_normalization';
import {LayerNormalization, LayerNormalizationArgs} from './layer_normalization';
import {LocalResponseNormalization, LocalResponseNormalizationArgs} from './local_response_normalization';
import {RMSNormalization, RMSNormalizationArgs} from './rms_normalization';
import {SpectralNormalization, SpectralNormalizationArgs} from './spectral_normalization';
import {UnitNormalization, UnitNormalizationArgs} from './unit_normalization';
import {WeightNormalization, WeightNormalizationArgs} from './weight_normalization';
import {WSConv1D, WSConv2D, WSConvArgs} from './weight_standardization';

/** A new {@link GroupNormalization} layer (Keras 3 defaults: 32 groups, axis -1, epsilon 1e-3). */
export function groupNormalization(args?: GroupNormalizationArgs): GroupNormalization {
  return new GroupNormalization(args);
}

/** A new {@link InstanceNormalization} layer (axis -1, epsilon 1e-3, no running statistics). */
export function instanceNormalization(args?: InstanceNormalizationArgs): InstanceNormalization {
  return new InstanceNormalization(args);
}

/** A new {@link LayerNormalization} layer (axis -1, epsilon 1e-3, center and scale). */
export function layerNormalization(args?: LayerNormalizationArgs): LayerNormalization {
  return new LayerNormalization(args);
}

/** A new {@link RMSNormalization} layer (axis -1, epsilon 1e-6). */
export function rmsNormalization(args?: RMSNormalizationArgs): RMSNormalization {
  return new RMSNormalization(args);
}

/** A new {@link UnitNormalization} layer (Keras 3.15: axis -1, `x / max(||x||, 1e-12)`). */
export function unitNormalization(args?: UnitNormalizationArgs): UnitNormalization {
  return new UnitNormalization(args);
}

/** A new {@link LocalResponseNormalization} layer (tf.nn's arguments by default; `convention: 'pytorch'` for PyTorch's). */
export function localResponseNormalization(args?: LocalResponseNormalizationArgs): LocalResponseNormalization {
  return new LocalResponseNormalization(args);
}

/** A new {@link WSConv2D} layer: tf.layers.conv2d with a weight-standardized kernel. */
export function wsConv2d(args: WSConvArgs): WSConv2D {
  return new WSConv2D(args);
}

/** A new {@link WSConv1D} layer: tf.layers.conv1d with a weight-standardized kernel. */
export function wsConv1d(args: WSConvArgs): WSConv1D {
  return new WSConv1D(args);
}

/** A new {@link FilterResponseNormalization} layer (TensorFlow Addons: epsilon 1e-6, axis [1, 2]). */
export function filterResponseNormalization(args?: FilterResponseNormalizationArgs): FilterResponseNormalization {
  return new FilterResponseNormalization(args);
}

/** A new {@link TLU} layer (TensorFlow Addons: `max(x, tau)`; `affine`: `max(x, alpha * x + tau)`). */
export function tlu(args?: TLUArgs): TLU {
  return new TLU(args);
}

/** A new {@link SpectralNormalization} wrapper (Keras 3: power iterations 1) of a layer with a kernel. */
export function spectralNormalization(args: SpectralNormalizationArgs): SpectralNormalization {
  return new SpectralNormalization(args);
}

/** A new {@link WeightNormalization} wrapper (TensorFlow Addons: data-dependent init by default). */
export function weightNormalization(args: WeightNormalizationArgs): WeightNormalization {
  return new WeightNormalization(args);
}

/** A new {@link BatchNormalization} layer (Keras 3 defaults: axis -1, momentum 0.99, epsilon 1e-3). */
export function batchNormalization(args?: BatchNormalizationArgs): BatchNormalization {
  return new BatchNormalization(args);
}
