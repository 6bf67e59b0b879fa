/**
 * tfjs-normalization: GroupNormalization, InstanceNormalization, a
 * configurable LayerNormalization and RMSNormalization for TensorFlow.js,
 * as functional ops (`ops`) and serializable layers (`layers` factories and
 * the classes).
 */
import './register';

import * as io from './io/index';
import * as layers from './layers/index';
import * as ops from './ops/index';

export {io, layers, ops};
export {GroupNormalization} from './layers/group_normalization';
export type {GroupNormalizationArgs} from './layers/group_normalization';
export {InstanceNormalization} from './layers/instance_normalization';
export type {InstanceNormalizationArgs} from './layers/instance_normalization';
export {LayerNormalization} from './layers/layer_normalization';
export type {LayerNormalizationArgs} from './layers/layer_normalization';
export {RMSNormalization} from './layers/rms_normalization';
export {BatchNormalization} from './layers/batch_normalization';
export type {BatchNormalizationArgs, RenormClipping} from './layers/batch_normalization';
export {AddonsGroupNormalization, AddonsInstanceNormalization} from './layers/addons';
export {ContribInstanceNormalization} from './layers/contrib_instance_normalization';
export type {ContribInstanceNormalizationArgs} from './layers/contrib_instance_normalization';
export {Pix2PixInstanceNormalization} from './layers/pix2pix_instance_normalization';
export type {Pix2PixInstanceNormalizationArgs} from './layers/pix2pix_instance_normalization';
export {instanceNormalizationFlavour} from './layers/instance_flavours';
export type {InstanceNormalizationFlavour} from './layers/instance_flavours';
export type {RMSNormalizationArgs} from './layers/rms_normalization';
export type {MaskingArgs, MaskingMode} from './layers/base';
export type {BatchNormOptions, GroupNormOptions, InstanceNormOptions, LayerNormOptions, RmsNormOptions} from './ops/index';
export type {Constraint, ConstraintIdentifier, Initializer, InitializerIdentifier, Regularizer, RegularizerIdentifier, SerializedObject} from './layers/identifiers';
export {UnitNormalization} from './layers/unit_normalization';
export type {UnitNormalizationArgs} from './layers/unit_normalization';
export type {UnitNormOptions} from './ops/index';
export {LocalResponseNormalization} from './layers/local_response_normalization';
export type {LocalResponseNormalizationArgs} from './layers/local_response_normalization';
export type {LocalResponseNormOptions, LrnConvention} from './ops/index';
export {WSConv1D, WSConv2D} from './layers/weight_standardization';
export type {WSConvArgs} from './layers/weight_standardization';
export type {WeightStandardizationOptions} from './ops/index';
export {FilterResponseNormalization, TLU} from './layers/filter_response_normalization';
export type {FilterResponseNormalizationArgs, TLUArgs} from './layers/filter_response_normalization';
export type {FilterResponseNormOptions} from './ops/index';
export {SpectralNormalization} from './layers/spectral_normalization';
export type {SpectralNormalizationArgs} from './layers/spectral_normalization';
export type {WrapperArgs} from './layers/wrapper';
export {WeightNormalization} from './layers/weight_normalization';
export type {WeightNormalizationArgs} from './layers/weight_normalization';
export {replaceBatchNormalization} from './convert';
export {checkTfjs} from './tfjs_instance';
export type {ReplaceBatchNormalizationOptions} from './convert';
