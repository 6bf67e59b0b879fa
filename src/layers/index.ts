/**
 * The layer factories (`layers.groupNormalization(args)`, ...), in the
 * style of `tf.layers`.
 */
import {GroupNormalization, GroupNormalizationArgs} from './group_normalization';
import {InstanceNormalization, InstanceNormalizationArgs} from './instance_normalization';
import {LayerNormalization, LayerNormalizationArgs} from './layer_normalization';
import {RMSNormalization, RMSNormalizationArgs} from './rms_normalization';

export function groupNormalization(args?: GroupNormalizationArgs): GroupNormalization {
  return new GroupNormalization(args);
}

export function instanceNormalization(args?: InstanceNormalizationArgs): InstanceNormalization {
  return new InstanceNormalization(args);
}

export function layerNormalization(args?: LayerNormalizationArgs): LayerNormalization {
  return new LayerNormalization(args);
}

export function rmsNormalization(args?: RMSNormalizationArgs): RMSNormalization {
  return new RMSNormalization(args);
}
